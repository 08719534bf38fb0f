//! Writing Voyado's documented wire form: each field under its documented name,
//! decimals as JSON numbers with their exact digits, timestamps in RFC 3339 with
//! their offset, absent options left out.

use rust_decimal::Decimal;
use serde::ser::{Error as _, SerializeMap};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event_type::EventType;
use crate::raw::Extra;

/// A field's value, written into a map.
pub(crate) trait Wire {
    /// Writes the field under `key`. An absent field is left out, unless `extra`
    /// holds a field that would be read in its place (one of `names`): it is then
    /// written as `null`, so reading the output back keeps that one in `extra`.
    fn write<M: SerializeMap>(
        &self,
        key: &'static str,
        names: &[&str],
        extra: &Extra,
        map: &mut M,
    ) -> Result<(), M::Error>;
}

/// A non-optional field type, written as itself.
pub(crate) trait WireScalar {
    fn write_value<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error>;
}

impl<T: WireScalar> Wire for T {
    fn write<M: SerializeMap>(
        &self,
        key: &'static str,
        _: &[&str],
        _: &Extra,
        map: &mut M,
    ) -> Result<(), M::Error> {
        self.write_value(key, map)
    }
}

impl<T: WireScalar> Wire for Option<T> {
    fn write<M: SerializeMap>(
        &self,
        key: &'static str,
        names: &[&str],
        extra: &Extra,
        map: &mut M,
    ) -> Result<(), M::Error> {
        match self {
            Some(value) => value.write_value(key, map),
            None if names.iter().any(|name| extra.has_field(name)) => map.serialize_entry(key, &()),
            None => Ok(()),
        }
    }
}

/// Types serde writes as they should be.
macro_rules! as_serde {
    ($($ty:ty),*) => {$(
        impl WireScalar for $ty {
            fn write_value<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
                map.serialize_entry(key, self)
            }
        }
    )*};
}
as_serde!(String, i64, bool, EventType);

impl WireScalar for Decimal {
    fn write_value<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        // A JSON number with exactly these digits: serde_json's own numbers would
        // go through f64 and lose them.
        let number = RawValue::from_string(self.to_string()).map_err(M::Error::custom)?;
        map.serialize_entry(key, &number)
    }
}

impl WireScalar for OffsetDateTime {
    fn write_value<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        let text = self.format(&Rfc3339).map_err(M::Error::custom)?;
        map.serialize_entry(key, &text)
    }
}
