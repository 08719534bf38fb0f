//! One struct per event payload, and how a payload is read.
//!
//! Every struct matches its field names ignoring ASCII case and `_`/`-`, takes the
//! tolerant value forms of [`crate::read`], and keeps unknown fields in `extra`. A
//! field that appears twice (or under two aliases) keeps its first value that is
//! not `null` or `""`; a later one with a value goes to `extra`.

use std::fmt;
use std::marker::PhantomData;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::error::ParseErrorKind;
use crate::field_name::field_names;
use crate::raw::{Extra, RawPayload};
use crate::read::{Field, Key, Reader, Trace, keep_next};
use crate::write::Wire;

/// A payload struct: read from a JSON object, written in Voyado's wire form.
pub(crate) trait Payload: Sized + Serialize {
    /// Reads the payload's fields from `map`, as the [`Reader`] `M` reads them.
    fn read<'de, A: MapAccess<'de>, M: Reader<'de>>(map: A, trace: &mut Trace) -> Result<Self, A::Error>;
    /// The contact the event is about.
    fn contact_id(&self) -> &str;
    /// The payload's fields this crate does not know.
    fn extra(&self) -> &Extra;
}

/// Defines a payload struct from its fields: `name: Type = ["wireName", "alias"…]`.
/// The first name is the one written by `Serialize`. Every payload names the
/// contact it is about in a `contact_id` field.
macro_rules! payload {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $ty:ty = [$wire:literal $(, $alias:literal)*],
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
            /// Fields this crate does not know, kept as received.
            pub extra: Extra,
        }

        impl Payload for $name {
            fn read<'de, A: MapAccess<'de>, M: Reader<'de>>(
                mut map: A,
                trace: &mut Trace,
            ) -> Result<Self, A::Error> {
                field_names! { enum Name { $($field = [$wire $(, $alias)*],)* } }

                $( let mut $field: Option<$ty> = None; )*
                let mut extra = Extra::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let path = || format!("payload.{}", key.as_str());
                    match Name::of(key.as_str()) {
                        $(
                            Some(Name::$field) if $field.as_ref().is_none_or(Field::is_absent) => {
                                $field = Some(M::field(&mut map, trace, path)?);
                            }
                        )*
                        _ => {
                            let kept = keep_next::<M, A>(&mut map, trace, path)?;
                            extra.push(key.into_owned(), kept);
                        }
                    }
                }
                Ok($name {
                    $( $field: trace.require::<_, A::Error>($field, || concat!("payload.", $wire).to_owned())?, )*
                    extra,
                })
            }

            fn contact_id(&self) -> &str {
                &self.contact_id
            }

            fn extra(&self) -> &Extra {
                &self.extra
            }
        }

        #[cfg(feature = "test-util")]
        impl $name {
            /// A builder with test values for the required fields (`String`s
            /// like `contactId-1`, amounts of 100), `None` for the optional
            /// ones, and no unknown fields (feature `test-util`).
            pub fn builder() -> crate::test_util::Builder<$name> {
                use crate::test_util::TestValue;
                crate::test_util::Builder($name {
                    $( $field: TestValue::test_value($wire), )*
                    extra: Extra::new(),
                })
            }
        }

        #[cfg(feature = "test-util")]
        impl crate::test_util::Builder<$name> {
            $(
                $(#[$field_meta])*
                pub fn $field(mut self, value: impl crate::test_util::IntoField<$ty>) -> Self {
                    self.0.$field = value.into_field();
                    self
                }
            )*

            /// A payload field this crate does not know, with `value` as its JSON.
            pub fn extra(mut self, name: &str, value: impl Serialize) -> Result<Self, serde_json::Error> {
                crate::test_util::push(&mut self.0.extra, name, value)?;
                Ok(self)
            }
        }

        /// Writes Voyado's wire form: documented names, decimals as exact JSON
        /// numbers, timestamps as RFC 3339, `None` fields left out, `extra` verbatim.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                $( Wire::write(&self.$field, $wire, &[$wire $(, $alias)*], &self.extra, &mut map)?; )*
                self.extra.write(&mut map)?;
                map.end()
            }
        }
    };
}

payload! {
    /// The payload of `contact.acceptsEmail.changed`, `contact.acceptsSms.changed`
    /// and `contact.acceptsPostal.changed`: a contact's marketing preference changed.
    ///
    /// Voyado does not publish this payload. What is read here is a contact id and
    /// the new value, under any of the names it plausibly has; every other field is
    /// kept in `extra`. `Serialize` writes the value as `accepts`.
    ///
    /// ```
    /// use voyado_webhooks::{EventEnvelope, Preference};
    ///
    /// let body = r#"{"eventType": "contact.acceptsSms.changed", "id": "e-1",
    ///                "payload": {"contactId": "c-1", "acceptsSms": false}}"#;
    /// let EventEnvelope::ContactAcceptsSmsChanged(event) = EventEnvelope::from_slice(body.as_bytes())? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(event.payload.contact_id, "c-1");
    /// assert_eq!(event.payload.accepts, Some(false));
    /// # Ok::<(), voyado_webhooks::ParseError>(())
    /// ```
    pub struct ContactPreferenceChanged {
        /// The contact whose preference changed.
        contact_id: String = ["contactId"],
        /// The preference's new value, read from `accepts`, `value`, `newValue`,
        /// `acceptsEmail`, `acceptsSms` or `acceptsPostal`; `None` if none is present.
        accepts: Option<bool> = ["accepts", "value", "newValue", "acceptsEmail", "acceptsSms", "acceptsPostal"],
    }
}

payload! {
    /// The payload of `loyalty.addPoints`: points were added to a contact (sent to
    /// tenants using the "point follower" solution).
    ///
    /// ```
    /// use voyado_webhooks::EventEnvelope;
    ///
    /// let body = r#"{"eventType": "loyalty.addPoints", "id": "e-1",
    ///                "payload": {"amount": 100.10, "contactId": "c-1", "pointDefinitionId": 1}}"#;
    /// let EventEnvelope::LoyaltyAddPoints(event) = EventEnvelope::from_slice(body.as_bytes())? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(event.payload.amount.to_string(), "100.10");
    /// assert_eq!(event.payload.point_definition_id, Some(1));
    /// # Ok::<(), voyado_webhooks::ParseError>(())
    /// ```
    pub struct LoyaltyAddPoints {
        /// Points added, exactly as sent.
        amount: Decimal = ["amount"],
        /// The contact the points were added to.
        contact_id: String = ["contactId"],
        /// The point definition the points count towards.
        point_definition_id: Option<i64> = ["pointDefinitionId"],
        /// Where the transaction came from.
        source: Option<String> = ["source"],
        /// A description of the transaction.
        description: Option<String> = ["description"],
        /// The Engage user who added the points, if one did.
        user_id: Option<String> = ["userId"],
        /// That user's name.
        user_name: Option<String> = ["userName"],
        /// Why the points were added.
        reason: Option<String> = ["reason"],
        /// The id of the transaction in its source.
        source_id: Option<String> = ["sourceId"],
    }
}

payload! {
    /// The payload of `point.balance.updated`: a contact's point balance changed.
    ///
    /// ```
    /// use voyado_webhooks::EventEnvelope;
    ///
    /// let body = r#"{"eventType": "point.balance.updated", "id": "e-1",
    ///                "payload": {"balance": 250.0000, "contactId": "c-1", "definitionId": 7,
    ///                            "balanceExpires": "2025-12-31T23:59:59+01:00"}}"#;
    /// let EventEnvelope::PointBalanceUpdated(event) = EventEnvelope::from_slice(body.as_bytes())? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(event.payload.balance.to_string(), "250.0000");
    /// assert_eq!(event.payload.definition_id.as_deref(), Some("7"));
    /// assert_eq!(event.payload.balance_expires.map(|t| t.year()), Some(2025));
    /// # Ok::<(), voyado_webhooks::ParseError>(())
    /// ```
    pub struct PointBalanceUpdated {
        /// The new balance, exactly as sent.
        balance: Decimal = ["balance"],
        /// The contact whose balance changed.
        contact_id: String = ["contactId"],
        /// The point account.
        account_id: Option<i64> = ["accountId"],
        /// The point definition; documented as a string, sometimes sent as a number
        /// (kept as its text).
        definition_id: Option<String> = ["definitionId"],
        /// When the balance expires, with the offset it was sent with.
        balance_expires: Option<OffsetDateTime> = ["balanceExpires"],
    }
}

payload! {
    /// The payload of `reward.voucher.created`: a reward voucher was created for a
    /// contact. Voyado writes this payload in PascalCase; any casing is read.
    ///
    /// ```
    /// use voyado_webhooks::EventEnvelope;
    ///
    /// let body = r#"{"eventId": "e-1", "eventType": "reward.voucher.created",
    ///                "payload": {"Amount": 50.00, "ContactId": "c-1", "Currency": "SEK",
    ///                            "Id": "v-1", "UniqueCode": "ABC123",
    ///                            "ValidTo": "2025-01-31T23:59:59Z"}}"#;
    /// let EventEnvelope::RewardVoucherCreated(event) = EventEnvelope::from_slice(body.as_bytes())? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(event.id.as_deref(), Some("e-1"));
    /// assert_eq!(event.payload.unique_code, "ABC123");
    /// assert_eq!(event.payload.amount.to_string(), "50.00");
    /// assert_eq!(event.payload.valid_from, None);
    /// # Ok::<(), voyado_webhooks::ParseError>(())
    /// ```
    pub struct RewardVoucherCreated {
        /// The voucher's value, exactly as sent.
        amount: Decimal = ["Amount"],
        /// The contact the voucher belongs to.
        contact_id: String = ["ContactId"],
        /// The currency of `amount`, such as `SEK`.
        currency: Option<String> = ["Currency"],
        /// The voucher's id.
        id: String = ["Id"],
        /// The code the contact redeems.
        unique_code: String = ["UniqueCode"],
        /// When the voucher becomes valid.
        valid_from: Option<OffsetDateTime> = ["ValidFrom"],
        /// When the voucher stops being valid.
        valid_to: Option<OffsetDateTime> = ["ValidTo"],
    }
}

/// Which marketing preference a `contact.accepts*.changed` event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preference {
    /// `acceptsEmail`.
    Email,
    /// `acceptsSms`.
    Sms,
    /// `acceptsPostal`.
    Postal,
}

impl Preference {
    /// The preference's name in Engage: `acceptsEmail`, `acceptsSms` or `acceptsPostal`.
    ///
    /// ```
    /// assert_eq!(voyado_webhooks::Preference::Sms.as_str(), "acceptsSms");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Preference::Email => "acceptsEmail",
            Preference::Sms => "acceptsSms",
            Preference::Postal => "acceptsPostal",
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload as it arrived where a typed one was expected: an object, read into
/// `P`, or a string (an encrypted payload, if `isEncrypted` says so).
pub(crate) enum Received<P> {
    Object(P),
    String(RawPayload),
}

/// Where a payload read by [`PayloadSeed`] goes.
pub(crate) trait Put<P> {
    /// Takes the payload as it arrived.
    fn put(self, received: Received<P>);
}

/// Reads one payload value in a single pass, its fields as the [`Reader`] `M`
/// reads them, and hands it to `put` as [`Received<P>`]. Handing it on, rather
/// than returning it, lets the caller store it where it stays: returned
/// through serde's layers, the payload was copied at each one, and the copies
/// of its small fields stalled on the stores that had just written them.
pub(crate) struct PayloadSeed<'t, P, M, T> {
    trace: &'t mut Trace,
    put: T,
    types: PhantomData<fn() -> (P, M)>,
}

impl<'t, P, M, T: Put<P>> PayloadSeed<'t, P, M, T> {
    pub(crate) fn new(trace: &'t mut Trace, put: T) -> Self {
        PayloadSeed {
            trace,
            put,
            types: PhantomData,
        }
    }

    fn not_an_object<E: de::Error>(self, found: impl fmt::Display) -> E {
        let kind = ParseErrorKind::InvalidValue {
            expected: "an object",
            found: found.to_string(),
        };
        self.trace.fail("payload".to_owned(), kind)
    }
}

impl<'de, P: Payload, M: Reader<'de>, T: Put<P>> DeserializeSeed<'de> for PayloadSeed<'_, P, M, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, P: Payload, M: Reader<'de>, T: Put<P>> Visitor<'de> for PayloadSeed<'_, P, M, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let payload = P::read::<A, M>(map, self.trace)?;
        self.put.put(Received::Object(payload));
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        // serde_json hands over an unescaped string; writing it back gives the
        // original text exactly unless the original used optional escapes.
        let json = serde_json::to_string(v).map_err(E::custom)?;
        let raw = RawValue::from_string(json).map_err(E::custom)?;
        self.put.put(Received::String(raw.into()));
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_an_object("null"))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        Err(self.not_an_object(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        Err(self.not_an_object(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        Err(self.not_an_object(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.not_an_object(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_an_object("an array"))
    }
}
