//! Reading a delivery's values. serde_json reads the JSON; a field's value is
//! read by plain Rust ([`Field`]) either from its raw text ([`RawText`],
//! [`Exact`]) or from the value serde_json hands over where that reads the same
//! ([`Fast`]). Decimals are always read from their text: that keeps them exact
//! without serde_json's `arbitrary_precision` (and unaffected by it when another
//! crate in the build turns it on). Errors are explained from the text, so
//! every one quotes what it found.
//!
//! The files here are the reader's jobs: [`scalar`] reads a field's value,
//! [`number`] and [`timestamp`] parse what it holds, and [`depth`] guards
//! nesting before serde_json sees a body.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{ParseError, ParseErrorKind};
use crate::event_type::EventType;

pub(crate) mod depth;
pub(crate) mod number;
pub(crate) mod scalar;
pub(crate) mod timestamp;

pub(crate) use scalar::Field;
use scalar::Visit;

/// How a body's nesting was checked, which decides what [`Trace::keep`] checks.
#[derive(Debug, Default)]
pub(crate) enum Depth {
    /// Not checked (a generic `Deserialize`): each kept value is checked.
    #[default]
    Unchecked,
    /// The whole body was checked by [`depth::guard`].
    Checked,
    /// The body nested too deeply and was rewritten: the value holding the byte
    /// at this address is the one that did.
    TooDeepAt(usize),
}

/// Records what was read before a failure and the failure itself, so
/// `EventEnvelope::from_slice` can hand back a structured [`ParseError`] while a
/// generic `Deserialize` still gets a complete message.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) event_type: Option<EventType>,
    pub(crate) event_id: Option<String>,
    pub(crate) failure: Option<ParseError>,
    pub(crate) depth: Depth,
    /// The payload, captured before the event type was known, holds the value
    /// that nests too deeply: it comes first in the body, so any failure found
    /// before the payload is read is reported as that one.
    pub(crate) too_deep_payload: bool,
    /// In a rewritten body, the field whose value serde_json was reading when
    /// it failed: the too-deep value's field, if the failure came after it.
    pub(crate) reading: Option<String>,
}

impl Trace {
    /// Records a failure at `path` and returns it as the deserializer's error.
    pub(crate) fn fail<E: de::Error>(&mut self, path: String, kind: ParseErrorKind) -> E {
        let too_deep = ParseErrorKind::TooDeep {
            limit: depth::MAX_DEPTH,
        };
        let (path, kind) = match kind {
            ParseErrorKind::TooDeep { .. } => (path, kind),
            _ if self.too_deep_payload => ("payload".to_owned(), too_deep),
            _ => (path, kind),
        };
        let error =
            ParseError::new(kind, Some(path)).with_event(self.event_type.as_ref(), self.event_id.as_deref());
        let message = E::custom(&error);
        self.failure = Some(error);
        message
    }

    /// Reads `raw` as the value of `path`, recording a failure.
    pub(crate) fn read<T: Field, E: de::Error>(
        &mut self,
        path: impl FnOnce() -> String,
        raw: &str,
    ) -> Result<T, E> {
        if self.too_deep(raw) {
            return Err(self.fail(
                path(),
                ParseErrorKind::TooDeep {
                    limit: depth::MAX_DEPTH,
                },
            ));
        }
        T::read(raw).map_err(|p| {
            let kind = ParseErrorKind::InvalidValue {
                expected: p.expected,
                found: p.found,
            };
            self.fail(path(), kind)
        })
    }

    /// Keeps a value of `path` as its JSON text, refusing one nested too deeply.
    pub(crate) fn keep<'de, R: RawText<'de>, E: de::Error>(
        &mut self,
        raw: R,
        path: impl FnOnce() -> String,
    ) -> Result<Box<RawValue>, E> {
        if self.too_deep(raw.text()) {
            return Err(self.fail(
                path(),
                ParseErrorKind::TooDeep {
                    limit: depth::MAX_DEPTH,
                },
            ));
        }
        Ok(raw.into_box())
    }

    /// Notes, in a rewritten body, that the reader failed in the value of `path`
    /// (the innermost such field is kept); returns the error.
    pub(crate) fn failed_in<E>(&mut self, path: impl FnOnce() -> String, error: E) -> E {
        if matches!(self.depth, Depth::TooDeepAt(_)) && self.reading.is_none() {
            self.reading = Some(path());
        }
        error
    }

    /// Notes a payload captured before the event type was known.
    pub(crate) fn captured_payload(&mut self, raw: &str) {
        self.too_deep_payload = matches!(self.depth, Depth::TooDeepAt(at) if depth::holds(raw, at));
    }

    /// Whether `raw` is the value that nests too deeply.
    fn too_deep(&self, raw: &str) -> bool {
        match self.depth {
            Depth::Checked => false,
            Depth::TooDeepAt(at) => depth::holds(raw, at),
            // A kept value sits inside the envelope, one level down.
            Depth::Unchecked => depth::exceeds(raw, depth::MAX_DEPTH.saturating_sub(1)),
        }
    }

    /// The value of a field that may be absent: its default, or a "missing" failure.
    pub(crate) fn require<T: Field, E: de::Error>(
        &mut self,
        value: Option<T>,
        path: impl FnOnce() -> String,
    ) -> Result<T, E> {
        match value.or_else(T::absent) {
            Some(value) => Ok(value),
            None => Err(self.fail(path(), ParseErrorKind::MissingField)),
        }
    }
}

/// How a value's raw JSON text is captured: borrowed from the body under
/// `from_slice` and `from_str`, owned under any other deserializer.
pub(crate) trait RawText<'de>: Deserialize<'de> {
    /// The value's JSON text, exactly as received.
    fn text(&self) -> &str;
    /// The value, to keep.
    fn into_box(self) -> Box<RawValue>;
}

impl<'de> RawText<'de> for &'de RawValue {
    fn text(&self) -> &str {
        self.get()
    }
    fn into_box(self) -> Box<RawValue> {
        self.to_owned()
    }
}

impl RawText<'_> for Box<RawValue> {
    fn text(&self) -> &str {
        self.get()
    }
    fn into_box(self) -> Box<RawValue> {
        self
    }
}

/// How a delivery's fields are read: each value from its captured text
/// ([`Exact`]), or straight from serde_json's value where that reads the same
/// ([`Fast`]). Values kept as JSON text are captured as [`Reader::Raw`] either way.
pub(crate) trait Reader<'de> {
    /// How a value's text is captured.
    type Raw: RawText<'de>;
    /// Whether a failure is explained: recorded in the [`Trace`] with what was
    /// read before it, such as the event type.
    const EXPLAINS: bool;
    /// Reads the next value of `map` as the field at `path`.
    fn field<T: Field, A: MapAccess<'de>>(
        map: &mut A,
        trace: &mut Trace,
        path: impl Fn() -> String,
    ) -> Result<T, A::Error>;
}

/// Reads every value from its text: what each error is explained from.
pub(crate) struct Exact<R>(PhantomData<fn() -> R>);

impl<'de, R: RawText<'de>> Reader<'de> for Exact<R> {
    type Raw = R;
    const EXPLAINS: bool = true;
    fn field<T: Field, A: MapAccess<'de>>(
        map: &mut A,
        trace: &mut Trace,
        path: impl Fn() -> String,
    ) -> Result<T, A::Error> {
        let raw: R = map.next_value().map_err(|e| trace.failed_in(&path, e))?;
        trace.read(path, raw.text())
    }
}

/// Reads strings, booleans, integers and `null` from serde_json's value (one
/// pass over their text instead of two), decimals from their text. It explains
/// nothing: on any failure the body is read again with [`Exact`], which reads
/// every value the same way and says what was wrong.
pub(crate) struct Fast;

impl<'de> Reader<'de> for Fast {
    type Raw = &'de RawValue;
    const EXPLAINS: bool = false;
    fn field<T: Field, A: MapAccess<'de>>(
        map: &mut A,
        trace: &mut Trace,
        path: impl Fn() -> String,
    ) -> Result<T, A::Error> {
        if T::FROM_TEXT {
            Exact::<&'de RawValue>::field(map, trace, path)
        } else {
            map.next_value_seed(Visit::<T>::new())
        }
    }
}

/// Keeps the next value of `map` (the field at `path`) as its JSON text.
pub(crate) fn keep_next<'de, M: Reader<'de>, A: MapAccess<'de>>(
    map: &mut A,
    trace: &mut Trace,
    path: impl Fn() -> String,
) -> Result<Box<RawValue>, A::Error> {
    let raw: M::Raw = map.next_value().map_err(|e| trace.failed_in(&path, e))?;
    trace.keep(raw, path)
}

/// A map key, borrowed from the input when it holds no escapes.
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }

    pub(crate) fn into_owned(self) -> String {
        match self {
            Key::Borrowed(s) => s.to_owned(),
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}
