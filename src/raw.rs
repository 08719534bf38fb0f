//! JSON kept exactly as received: [`RawPayload`] and [`Extra`].

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::field_name::key_matches;

/// A payload kept exactly as received: the payload of an event this crate has no
/// type for, or an encrypted one.
///
/// ```
/// use voyado_webhooks::EventEnvelope;
///
/// let body = r#"{"eventType": "contact.created", "id": "e-1", "payload": {"contactId": "c-9", "score": 1.50}}"#;
/// let EventEnvelope::Unknown(event) = EventEnvelope::from_slice(body.as_bytes())? else {
///     unreachable!("contact.created has no published payload");
/// };
/// // Byte for byte what was sent...
/// assert_eq!(event.payload.get(), r#"{"contactId": "c-9", "score": 1.50}"#);
/// // ...and readable into any type of your own.
/// #[derive(serde::Deserialize)]
/// struct Created { #[serde(rename = "contactId")] contact_id: String }
/// assert_eq!(event.payload.parse::<Created>()?.contact_id, "c-9");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RawPayload(Box<RawValue>);

impl RawPayload {
    /// Wraps JSON text, checking that it is one well-formed JSON value.
    pub fn from_json(json: impl Into<String>) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json.into()).map(RawPayload)
    }

    /// The JSON text, byte for byte as received.
    ///
    /// One exception: a typed event's string payload that arrives before
    /// `isEncrypted` has been read is re-encoded from its value, which differs
    /// from the original text only where that used optional escapes (`\u002B`
    /// for `+`, say). The string it holds is the same.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Deserializes the payload into `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }

    /// The payload as serde_json's [`RawValue`].
    pub fn as_raw_value(&self) -> &RawValue {
        &self.0
    }
}

impl From<Box<RawValue>> for RawPayload {
    fn from(raw: Box<RawValue>) -> Self {
        RawPayload(raw)
    }
}

impl From<RawPayload> for Box<RawValue> {
    fn from(raw: RawPayload) -> Self {
        raw.0
    }
}

impl fmt::Debug for RawPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawPayload").field(&self.get()).finish()
    }
}

impl fmt::Display for RawPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

/// Equal when the JSON text is identical.
impl PartialEq for RawPayload {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawPayload {}

impl Hash for RawPayload {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.get().hash(state);
    }
}

/// Written back verbatim.
impl Serialize for RawPayload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(RawPayload)
    }
}

/// Fields this crate has no name for, kept in the order received with their
/// values' JSON text untouched, and written back as they came.
///
/// Voyado adds fields without notice; a field landing here instead of failing the
/// parse is how this crate keeps working when it does.
///
/// ```
/// use voyado_webhooks::EventEnvelope;
///
/// let body = r#"{"eventType": "point.balance.updated", "traceId": "t-7",
///                "payload": {"contactId": "c-1", "balance": 10, "tier": "gold"}}"#;
/// let EventEnvelope::PointBalanceUpdated(event) = EventEnvelope::from_slice(body.as_bytes())? else {
///     unreachable!()
/// };
/// assert_eq!(event.extra.get("traceId").map(|v| v.get()), Some(r#""t-7""#));
/// assert_eq!(event.payload.extra.get("tier").map(|v| v.get()), Some(r#""gold""#));
/// # Ok::<(), voyado_webhooks::ParseError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Extra(Vec<(String, Box<RawValue>)>);

impl Extra {
    /// No fields.
    pub fn new() -> Self {
        Extra(Vec::new())
    }

    /// The value of the first field named exactly `key`.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The fields in the order received.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a field.
    pub fn push(&mut self, key: impl Into<String>, value: Box<RawValue>) {
        self.0.push((key.into(), value));
    }

    /// Whether some field would be read as `name` (ignoring case and `_`/`-`).
    pub(crate) fn has_field(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| key_matches(k, name))
    }

    /// Writes every field into `map`.
    pub(crate) fn write<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        self.0.iter().try_for_each(|(k, v)| map.serialize_entry(k, v))
    }
}

/// Equal when the names and the values' JSON text are identical, in order.
impl PartialEq for Extra {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

impl Eq for Extra {}
