//! [`EventEnvelope`]: one delivery, typed by its event type, and its dispatch to a
//! handler.

use std::future::Future;
use std::str::FromStr;

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};

use crate::context::Context;
use crate::envelope::Envelope;
use crate::error::ParseError;
use crate::event_type::EventType;
use crate::handler::{AsyncEventHandler, EventHandler};
use crate::payload::Payload;
use crate::raw::{Extra, RawPayload};
use crate::read::depth;

mod parse;

/// Generates [`EventEnvelope`] from the table in [`crate::events`].
macro_rules! event_envelope {
    (
        [$($args:tt)*]
        typed { $( $(#[$doc:meta])* $variant:ident = $wire:literal => $payload:ident, $method:ident $(, Preference::$pref:ident)? as $kind:ident $(($entity:ident))?; )* }
        untyped { $( $(#[$udoc:meta])* $uvariant:ident = $uwire:literal => $umethod:ident as $ukind:ident $(($uentity:ident))?; )* }
    ) => {
        /// One Voyado Engage webhook delivery, typed by its event type.
        ///
        /// Parse the raw request body with [`EventEnvelope::from_slice`] (or `str::parse`,
        /// or any serde deserializer), then either `match` on it or hand it to an
        /// [`EventHandler`] with [`dispatch`](EventEnvelope::dispatch).
        ///
        /// Reading is tolerant, because Voyado's own documentation disagrees with itself:
        /// field names match ignoring case and `_`/`-`, fields come in any order, numbers
        /// may be strings, optional fields may be `null` or `""`, and unknown fields and
        /// event types are kept rather than refused. See the crate documentation for the
        /// full rules.
        ///
        /// ```
        /// use voyado_webhooks::EventEnvelope;
        ///
        /// let body = br#"{
        ///   "eventType": "point.balance.updated",
        ///   "id": "8b3c7f0e-balance",
        ///   "isEncrypted": false,
        ///   "payload": {"balance": 250.0000, "contactId": "c-1", "accountId": 12,
        ///               "definitionId": "1", "balanceExpires": "2025-12-31T23:59:59+01:00"},
        ///   "tenant": "acme"
        /// }"#;
        /// match EventEnvelope::from_slice(body)? {
        ///     EventEnvelope::PointBalanceUpdated(event) => {
        ///         assert_eq!(event.payload.balance.to_string(), "250.0000");
        ///         assert_eq!(event.tenant.as_deref(), Some("acme"));
        ///     }
        ///     other => println!("not handled: {}", other.event_type()),
        /// }
        /// # Ok::<(), voyado_webhooks::ParseError>(())
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        #[allow(
            clippy::large_enum_variant,
            reason = "one value per delivery; boxing would cost an allocation for nothing"
        )]
        pub enum EventEnvelope {
            $( #[doc = concat!("`", $wire, "`.")] $variant(Envelope<crate::payload::$payload>), )*
            /// Any event with `isEncrypted: true`; the payload is kept as received.
            Encrypted(Envelope<RawPayload>),
            /// Any other event type, including those Voyado names without publishing a
            /// payload; the payload is kept as received.
            Unknown(Envelope<RawPayload>),
        }

        impl EventEnvelope {
            /// The contact the event is about; `None` for encrypted and unknown events.
            ///
            /// ```
            /// use voyado_webhooks::EventEnvelope;
            ///
            /// let body = r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 5, "contactId": "c-1"}}"#;
            /// assert_eq!(body.parse::<EventEnvelope>()?.contact_id(), Some("c-1"));
            /// # Ok::<(), voyado_webhooks::ParseError>(())
            /// ```
            pub fn contact_id(&self) -> Option<&str> {
                match self {
                    $( EventEnvelope::$variant(e) => Some(e.payload.contact_id()), )*
                    EventEnvelope::Encrypted(_) | EventEnvelope::Unknown(_) => None,
                }
            }

            /// The contact the event is about, for any event: a typed payload's,
            /// or one read from a raw payload ([`Envelope::<RawPayload>::contact_id`]).
            pub(crate) fn contact(&self) -> Option<std::borrow::Cow<'_, str>> {
                match self {
                    EventEnvelope::Unknown(e) => e.contact_id().map(std::borrow::Cow::Owned),
                    other => other.contact_id().map(std::borrow::Cow::Borrowed),
                }
            }

            /// The entity whose state this event sets, within its contact, for a
            /// *state* event; `None` for a *fact* (`loyalty.addPoints`,
            /// `reward.voucher.created`, `promotion.multichannel.assigned`,
            /// `contact.created`), an encrypted event and an unknown one.
            ///
            /// The entity is the event type for the three preference events,
            /// `contact.updated` and `contact.deleted`; for
            /// `point.balance.updated`, the event type with the point account (or
            /// its definition); for `contact.consent.changed`, the event type
            /// with the payload's `consentId`, if it has one. An inbox handles
            /// the states of one contact one at a time, in the order Svix created
            /// them, and supersedes one older than a state already applied for its
            /// entity; `contact.deleted` supersedes every older state of its
            /// contact (README, "Order and state").
            ///
            /// ```
            /// use voyado_webhooks::EventEnvelope;
            ///
            /// let balance = r#"{"eventType": "point.balance.updated",
            ///                   "payload": {"balance": 5, "contactId": "c-1", "accountId": 12}}"#;
            /// let balance = balance.parse::<EventEnvelope>()?;
            /// assert_eq!(balance.entity().as_deref(), Some("point.balance.updated account 12"));
            ///
            /// let points = r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 5, "contactId": "c-1"}}"#;
            /// assert_eq!(points.parse::<EventEnvelope>()?.entity(), None);
            /// # Ok::<(), voyado_webhooks::ParseError>(())
            /// ```
            pub fn entity(&self) -> Option<std::borrow::Cow<'_, str>> {
                match self {
                    $( EventEnvelope::$variant(e) => crate::order::entity_of!(e, $kind $(($entity))?), )*
                    EventEnvelope::Encrypted(_) => None,
                    EventEnvelope::Unknown(e) => match e.event_type {
                        $( EventType::$uvariant => crate::order::entity_of!(e, $ukind $(($uentity))?), )*
                        _ => None,
                    },
                }
            }

            /// The payload's fields this crate does not know, for a typed event;
            /// `None` for encrypted and unknown events, whose payload is kept whole
            /// ([`raw_payload`](Self::raw_payload)).
            ///
            /// ```
            /// use voyado_webhooks::EventEnvelope;
            ///
            /// let body = r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 5, "contactId": "c-1", "tier": "gold"}}"#;
            /// let event = body.parse::<EventEnvelope>()?;
            /// let names: Vec<&str> = event.payload_extra().into_iter().flat_map(|e| e.iter()).map(|(k, _)| k).collect();
            /// assert_eq!(names, ["tier"]);
            /// # Ok::<(), voyado_webhooks::ParseError>(())
            /// ```
            pub fn payload_extra(&self) -> Option<&Extra> {
                match self {
                    $( EventEnvelope::$variant(e) => Some(e.payload.extra()), )*
                    EventEnvelope::Encrypted(_) | EventEnvelope::Unknown(_) => None,
                }
            }

            /// The payload as received, for an encrypted or unknown event; `None`
            /// for a typed one.
            ///
            /// ```
            /// use voyado_webhooks::EventEnvelope;
            ///
            /// let event = r#"{"eventType": "contact.created", "payload": {"contactId": "c-1"}}"#.parse::<EventEnvelope>()?;
            /// assert_eq!(event.raw_payload().map(|p| p.get()), Some(r#"{"contactId": "c-1"}"#));
            /// # Ok::<(), voyado_webhooks::ParseError>(())
            /// ```
            pub fn raw_payload(&self) -> Option<&RawPayload> {
                match self {
                    $( EventEnvelope::$variant(_) => None, )*
                    EventEnvelope::Encrypted(e) | EventEnvelope::Unknown(e) => Some(&e.payload),
                }
            }

            /// Calls the `handler` method for this event, with the delivery's context.
            ///
            /// ```
            /// use std::cell::Cell;
            /// use voyado_webhooks::{Context, Envelope, EventEnvelope, EventHandler, LoyaltyAddPoints};
            ///
            /// struct Points(Cell<usize>);
            /// impl EventHandler for Points {
            ///     type Error = std::convert::Infallible;
            ///     fn loyalty_add_points(&self, _: &Context, _: &Envelope<LoyaltyAddPoints>) -> Result<(), Self::Error> {
            ///         self.0.set(self.0.get() + 1);
            ///         Ok(())
            ///     }
            /// }
            ///
            /// let handler = Points(Cell::new(0));
            /// let ctx = Context::new("msg_1", voyado_webhooks::OffsetDateTime::now_utc());
            /// let body = r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 5, "contactId": "c-1"}}"#;
            /// body.parse::<EventEnvelope>()?.dispatch(&ctx, &handler)?;
            /// assert_eq!(handler.0.get(), 1);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn dispatch<H: EventHandler + ?Sized>(&self, ctx: &Context, handler: &H) -> Result<(), H::Error> {
                match self {
                    $( EventEnvelope::$variant(e) => handler.$method(ctx, e), )*
                    EventEnvelope::Encrypted(e) => handler.encrypted(ctx, e),
                    EventEnvelope::Unknown(e) => match e.event_type {
                        $( EventType::$uvariant => handler.$umethod(ctx, e), )*
                        _ => handler.unknown(ctx, e),
                    },
                }
            }

            /// Calls the `handler` method for this event, with the delivery's
            /// context, and awaits it. The future is `Send`, so it can run inside an
            /// axum or actix-web handler.
            #[allow(clippy::manual_async_fn, reason = "the signature promises `Send`")]
            pub fn dispatch_async<'a, H: AsyncEventHandler + ?Sized>(
                &'a self,
                ctx: &'a Context,
                handler: &'a H,
            ) -> impl Future<Output = Result<(), H::Error>> + Send + 'a {
                async move {
                    match self {
                        $( EventEnvelope::$variant(e) => handler.$method(ctx, e).await, )*
                        EventEnvelope::Encrypted(e) => handler.encrypted(ctx, e).await,
                        EventEnvelope::Unknown(e) => match e.event_type {
                            $( EventType::$uvariant => handler.$umethod(ctx, e).await, )*
                            _ => handler.unknown(ctx, e).await,
                        },
                    }
                }
            }
        }

        /// Evaluates `$body` with `$e` bound to the envelope of whichever variant
        /// `$event` is, whatever its payload type.
        macro_rules! each {
            ($event:expr, $e:ident => $body:expr) => {
                match $event {
                    $( EventEnvelope::$variant($e) => $body, )*
                    EventEnvelope::Encrypted($e) | EventEnvelope::Unknown($e) => $body,
                }
            };
        }
    };
}

crate::events::events!(event_envelope);

impl EventEnvelope {
    /// Parses a delivery from the raw request body.
    ///
    /// Every failure is a [`ParseError`] naming the event, the field and what was
    /// wrong; no input makes it panic, and a body nested more than
    /// [`MAX_DEPTH`](Self::MAX_DEPTH) levels deep is refused at that depth.
    ///
    /// ```
    /// use voyado_webhooks::{EventEnvelope, EventType};
    ///
    /// let event = EventEnvelope::from_slice(br#"{"eventType": "order.shipped", "payload": {}}"#)?;
    /// assert_eq!(event.event_type(), &EventType::Other("order.shipped".into()));
    /// assert!(EventEnvelope::from_slice(b"{not json").is_err());
    /// # Ok::<(), voyado_webhooks::ParseError>(())
    /// ```
    pub fn from_slice(body: &[u8]) -> Result<EventEnvelope, ParseError> {
        // One check of the whole body is cheaper than serde_json's check of each
        // string and captured value.
        match std::str::from_utf8(body) {
            Ok(body) => parse::from_str(body),
            Err(error) => Err(ParseError::not_utf8(body, error.valid_up_to())),
        }
    }

    /// How deeply a body may nest arrays and objects, counting the envelope
    /// itself: 128. A value kept from it (in `extra`, or an unknown event's
    /// payload) is then at most 127 levels deep, which serde_json reads again.
    pub const MAX_DEPTH: usize = depth::MAX_DEPTH;

    /// The event type.
    pub fn event_type(&self) -> &EventType {
        each!(self, e => &e.event_type)
    }

    /// The event id (`id` or `eventId`), if the delivery has one.
    pub fn id(&self) -> Option<&str> {
        each!(self, e => e.id.as_deref())
    }

    /// The Engage tenant, if the delivery names it.
    pub fn tenant(&self) -> Option<&str> {
        each!(self, e => e.tenant.as_deref())
    }

    /// Whether the payload is encrypted.
    pub fn is_encrypted(&self) -> bool {
        each!(self, e => e.is_encrypted)
    }

    /// The envelope's fields this crate does not know, as received.
    pub fn extra(&self) -> &Extra {
        each!(self, e => &e.extra)
    }

    /// Decrypts an `Encrypted` event into the typed variant for its event type (or
    /// `Unknown`), with `is_encrypted` false. Any other event is returned as it is.
    ///
    /// ```
    /// use voyado_webhooks::{Decryptor, EventEnvelope};
    ///
    /// let decryptor = Decryptor::new("VoyadoEngageFixtureKey0123456789")?;
    /// let body = r#"{"eventType": "contact.acceptsEmail.changed", "isEncrypted": true,
    ///   "payload": "AAECAwQFBgcICQoLDA0OD-URVF_XKbleEgLhaHz7Y8TkWz0eDFi0scQfu_UXzU1GKfuM9zsyyDKuvkrkn_GCkVIA1XLfiYM3Pe96HdQHggCaweHjG2s6yBF9i7zE07ul"}"#;
    /// let event = body.parse::<EventEnvelope>()?.decrypt(&decryptor)?;
    /// let EventEnvelope::ContactAcceptsEmailChanged(event) = event else { unreachable!() };
    /// assert_eq!(event.payload.accepts, Some(false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "decrypt")]
    pub fn decrypt(
        self,
        decryptor: &crate::decrypt::Decryptor,
    ) -> Result<EventEnvelope, crate::decrypt::DecryptError> {
        let EventEnvelope::Encrypted(envelope) = self else {
            return Ok(self);
        };
        let plain = decryptor.decrypt_payload(&envelope.payload)?;
        let mut event = parse::decrypted_payload(&envelope.event_type, envelope.id.clone(), plain)?;
        event.set_head(envelope.id, envelope.tenant, false, envelope.extra);
        Ok(event)
    }

    /// Sets the envelope fields around the payload.
    pub(crate) fn set_head(
        &mut self,
        id: Option<String>,
        tenant: Option<String>,
        is_encrypted: bool,
        extra: Extra,
    ) {
        each!(self, e => {
            e.id = id;
            e.tenant = tenant;
            e.is_encrypted = is_encrypted;
            e.extra = extra;
        });
    }

    /// The same event with its payload kept as JSON text, as `Encrypted`.
    pub(crate) fn into_encrypted(self) -> Result<EventEnvelope, serde_json::Error> {
        each!(self, e => {
            let raw = serde_json::value::to_raw_value(&e.payload)?;
            Ok(EventEnvelope::Encrypted(e.with_payload(raw.into())))
        })
    }
}

#[cfg(feature = "test-util")]
impl<P: serde::Serialize> crate::test_util::Builder<crate::envelope::Envelope<P>> {
    /// The event a delivery of this envelope is read as (feature `test-util`):
    /// it is written in Voyado's wire form and read back, so the variant is
    /// the one its event type names, exactly as if Engage had sent it.
    ///
    /// ```
    /// use voyado_webhooks::{Envelope, EventEnvelope, EventType, LoyaltyAddPoints};
    ///
    /// let points = LoyaltyAddPoints::builder().contact_id("c-1").build();
    /// let event = Envelope::builder(EventType::LoyaltyAddPoints, points).into_event()?;
    /// assert_eq!(event.contact_id(), Some("c-1"));
    /// assert!(matches!(event, EventEnvelope::LoyaltyAddPoints(_)));
    /// # Ok::<(), voyado_webhooks::ParseError>(())
    /// ```
    pub fn into_event(self) -> Result<EventEnvelope, ParseError> {
        let envelope = self.build();
        // Writing the crate's own structs cannot fail; were it to, it reads as unreadable.
        let body = serde_json::to_vec(&envelope).map_err(|error| ParseError::syntax(&error))?;
        EventEnvelope::from_slice(&body)
    }
}

/// Same as [`EventEnvelope::from_slice`].
impl FromStr for EventEnvelope {
    type Err = ParseError;
    fn from_str(body: &str) -> Result<Self, ParseError> {
        parse::from_str(body)
    }
}

/// Reads a delivery from any serde deserializer, with the same tolerance as
/// [`EventEnvelope::from_slice`]; errors are the deserializer's, carrying the
/// [`ParseError`] message. Decimals stay exact with serde_json's deserializers;
/// a `serde_json::Value` has already rounded them unless `arbitrary_precision` is on.
impl<'de> Deserialize<'de> for EventEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse::read::<crate::read::Exact<Box<serde_json::value::RawValue>>, _>(
            &mut Default::default(),
            deserializer,
        )
    }
}

/// Writes Voyado's documented wire form (see [`Envelope`]); reading it back gives
/// an equal event.
impl Serialize for EventEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        each!(self, e => e.serialize(serializer))
    }
}
