//! [`Envelope`]: the fields every delivery shares around its payload.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::event_type::EventType;
use crate::field_name::key_matches;
use crate::raw::{Extra, RawPayload};
use crate::write::Wire;

/// One delivery: the envelope fields every event shares, and its payload `P`.
///
/// The id is read from `id` or `eventId` (Voyado uses `eventId` for
/// `reward.voucher.created` only). If both are present the first one in the
/// document is the id and the other is kept in `extra`, so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope<P> {
    /// The event's id (`id` or `eventId`), if the delivery has one. The Svix
    /// message id, not this, is what stays the same across retries.
    pub id: Option<String>,
    /// The event type.
    pub event_type: EventType,
    /// The Engage tenant that sent the event.
    pub tenant: Option<String>,
    /// Whether the payload is encrypted (`isEncrypted`; absent means `false`).
    pub is_encrypted: bool,
    /// The payload.
    pub payload: P,
    /// Envelope fields this crate does not know, kept as received.
    pub extra: Extra,
}

impl<P> Envelope<P> {
    /// An envelope holding only an event type and a payload.
    pub(crate) fn bare(event_type: EventType, payload: P) -> Self {
        Envelope {
            id: None,
            event_type,
            tenant: None,
            is_encrypted: false,
            payload,
            extra: Extra::new(),
        }
    }

    /// The same envelope around another payload.
    pub(crate) fn with_payload<Q>(self, payload: Q) -> Envelope<Q> {
        Envelope {
            id: self.id,
            event_type: self.event_type,
            tenant: self.tenant,
            is_encrypted: self.is_encrypted,
            payload,
            extra: self.extra,
        }
    }

    /// The name the id is written under: Voyado's for this event type, unless
    /// `extra` already holds a field of that name.
    fn id_key(&self) -> &'static str {
        let (documented, other) = match self.event_type {
            EventType::RewardVoucherCreated => ("eventId", "id"),
            _ => ("id", "eventId"),
        };
        if self.extra.has_field(documented) {
            other
        } else {
            documented
        }
    }
}

/// Writes Voyado's documented wire form: camelCase, `eventId` for
/// `reward.voucher.created`, absent options left out (or `null` where `extra` has a
/// field of the same name), `extra` verbatim.
impl Envelope<RawPayload> {
    /// The contact an event with a raw payload is about, read tolerantly: the
    /// payload's `contactId` (any casing, `_` or `-`), or for
    /// `contact.created`, `contact.updated` and `contact.deleted`, whose payload
    /// Voyado has not published and may be the contact itself, its `id`. A string or a number, not empty; `None` when
    /// there is none (or the payload is encrypted, or not an object). Never an
    /// error: what is guessed here never fails a delivery.
    ///
    /// ```
    /// use voyado_webhooks::EventEnvelope;
    ///
    /// let deleted = r#"{"eventType": "contact.deleted", "payload": {"id": "c-7"}}"#.parse::<EventEnvelope>()?;
    /// let EventEnvelope::Unknown(event) = deleted else { unreachable!() };
    /// assert_eq!(event.contact_id().as_deref(), Some("c-7"));
    ///
    /// let assigned = r#"{"eventType": "promotion.multichannel.assigned",
    ///                    "payload": {"id": "a-1", "contactId": "c-7", "promotionId": "p-1"}}"#;
    /// let EventEnvelope::Unknown(event) = assigned.parse::<EventEnvelope>()? else { unreachable!() };
    /// assert_eq!(event.contact_id().as_deref(), Some("c-7"));
    /// # Ok::<(), voyado_webhooks::ParseError>(())
    /// ```
    pub fn contact_id(&self) -> Option<String> {
        contact_in(&self.event_type, &self.payload.parse().ok()?)
    }
}

/// The contact of a body that does not parse as its event, read as loosely as
/// [`Envelope::<RawPayload>::contact_id`] reads a raw payload, so that an
/// authentic delivery stored unreadable can still be erased with its contact.
pub(crate) fn contact_in_body(body: &[u8]) -> Option<String> {
    let envelope: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    let field = |name: &str| {
        envelope
            .iter()
            .find(|(key, _)| key_matches(key, name))
            .map(|(_, value)| value)
    };
    let event_type = match field("eventType") {
        Some(serde_json::Value::String(name)) => EventType::from(name.as_str()),
        _ => EventType::Other(String::new()),
    };
    match field("payload")? {
        serde_json::Value::Object(payload) => contact_in(&event_type, payload),
        _ => None,
    }
}

/// A payload's `contactId`, or for the contact events, whose payload may be
/// the contact itself, its `id`: a string or a number, not empty.
fn contact_in(
    event_type: &EventType,
    payload: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let named = |name: &str| text_in(payload, name);
    // Not `contact.consent.changed`: its `id` may be the consent's.
    let contact_is_the_payload = matches!(
        event_type,
        EventType::ContactCreated | EventType::ContactUpdated | EventType::ContactDeleted
    );
    named("contactId").or_else(|| contact_is_the_payload.then(|| named("id")).flatten())
}

/// A raw payload's field `name` (any casing, `_` or `-`), as text: a string
/// or a number, not empty.
pub(crate) fn text_in(payload: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    payload.iter().find_map(|(key, value)| {
        let text = match value {
            serde_json::Value::String(text) if !text.is_empty() => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            _ => return None,
        };
        key_matches(key, name).then_some(text)
    })
}

impl<P: Serialize> Serialize for Envelope<P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("eventType", &self.event_type)?;
        if let Some(id) = &self.id {
            map.serialize_entry(self.id_key(), id)?;
        }
        map.serialize_entry("isEncrypted", &self.is_encrypted)?;
        map.serialize_entry("payload", &self.payload)?;
        Wire::write(&self.tenant, "tenant", &["tenant"], &self.extra, &mut map)?;
        self.extra.write(&mut map)?;
        map.end()
    }
}
