//! Handler traits: implement the methods for the events you use, and
//! [`EventEnvelope::dispatch`](crate::EventEnvelope::dispatch) calls them.
//!
//! Every method has a default. The three preference methods forward to
//! `contact_preference_changed`; everything else forwards to `unhandled`, which
//! accepts the event. So a handler overrides only what it uses, and can log the
//! rest in one place. The per-event methods come from the table in
//! [`crate::events`].

use std::future::Future;

use crate::envelope::Envelope;
use crate::event_type::EventType;
use crate::payload::{ContactPreferenceChanged, Preference};
use crate::raw::RawPayload;

/// The body of a per-event method's default: forward to
/// `contact_preference_changed` for a preference event, else to `unhandled`.
macro_rules! forward {
    ($self:ident, $event:ident, $pref:ident) => {
        $self.contact_preference_changed(Preference::$pref, $event)
    };
    ($self:ident, $event:ident) => {
        $self.unhandled(&$event.event_type, $event.id.as_deref())
    };
}

/// Generates [`EventHandler`] and [`AsyncEventHandler`] from the table in
/// [`crate::events`].
macro_rules! handlers {
    (
        [$($args:tt)*]
        typed { $( $(#[$doc:meta])* $variant:ident = $wire:literal => $payload:ident, $method:ident $(, Preference::$pref:ident)?; )* }
        untyped { $( $(#[$udoc:meta])* $uvariant:ident = $uwire:literal; )* }
    ) => {
        /// Receives events one method per event type, synchronously.
        ///
        /// ```
        /// use voyado_webhooks::{Envelope, EventEnvelope, EventHandler, EventType, PointBalanceUpdated};
        ///
        /// struct Balances;
        ///
        /// impl EventHandler for Balances {
        ///     type Error = std::io::Error;
        ///
        ///     fn point_balance_updated(&self, event: &Envelope<PointBalanceUpdated>) -> Result<(), Self::Error> {
        ///         println!("{} now has {} points", event.payload.contact_id, event.payload.balance);
        ///         Ok(())
        ///     }
        ///
        ///     fn unhandled(&self, event_type: &EventType, id: Option<&str>) -> Result<(), Self::Error> {
        ///         println!("ignored {event_type} {id:?}");
        ///         Ok(())
        ///     }
        /// }
        ///
        /// let body = r#"{"eventType": "point.balance.updated", "payload": {"balance": 10, "contactId": "c-1"}}"#;
        /// body.parse::<EventEnvelope>()?.dispatch(&Balances)?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub trait EventHandler {
            /// What a method returns when it fails; the receiver answers with an error
            /// status so the delivery is retried.
            type Error;

            $(
                #[doc = concat!("`", $wire, "`; ", forward_doc!($($pref)?), ".")]
                fn $method(&self, event: &Envelope<crate::payload::$payload>) -> Result<(), Self::Error> {
                    forward!(self, event $(, $pref)?)
                }
            )*

            /// Any of the three preference events; defaults to [`unhandled`](Self::unhandled).
            fn contact_preference_changed(
                &self,
                preference: Preference,
                event: &Envelope<ContactPreferenceChanged>,
            ) -> Result<(), Self::Error> {
                let _ = preference;
                forward!(self, event)
            }

            /// Any event with an encrypted payload; defaults to [`unhandled`](Self::unhandled).
            fn encrypted(&self, event: &Envelope<RawPayload>) -> Result<(), Self::Error> {
                forward!(self, event)
            }

            /// Any event type without a typed payload; defaults to [`unhandled`](Self::unhandled).
            fn unknown(&self, event: &Envelope<RawPayload>) -> Result<(), Self::Error> {
                forward!(self, event)
            }

            /// Every event whose method is not overridden, with its type and id.
            /// Defaults to accepting it.
            fn unhandled(&self, event_type: &EventType, id: Option<&str>) -> Result<(), Self::Error> {
                let _ = (event_type, id);
                Ok(())
            }
        }

        /// Receives events one method per event type, asynchronously: the same methods
        /// and defaults as [`EventHandler`], returning `Send` futures. Implement the
        /// methods as `async fn`; no runtime is needed or brought in.
        ///
        /// ```
        /// use voyado_webhooks::{AsyncEventHandler, Envelope, EventEnvelope, RewardVoucherCreated};
        ///
        /// struct Vouchers;
        ///
        /// impl AsyncEventHandler for Vouchers {
        ///     type Error = std::io::Error;
        ///
        ///     async fn reward_voucher_created(&self, event: &Envelope<RewardVoucherCreated>) -> Result<(), Self::Error> {
        ///         // e.g. store event.payload.unique_code in the database
        ///         Ok(())
        ///     }
        /// }
        ///
        /// async fn receive(body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
        ///     EventEnvelope::from_slice(body)?.dispatch_async(&Vouchers).await?;
        ///     Ok(())
        /// }
        /// ```
        pub trait AsyncEventHandler: Send + Sync {
            /// What a method returns when it fails; the receiver answers with an error
            /// status so the delivery is retried.
            type Error;

            $(
                #[doc = concat!("`", $wire, "`; ", forward_doc!($($pref)?), ".")]
                fn $method(
                    &self,
                    event: &Envelope<crate::payload::$payload>,
                ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                    forward!(self, event $(, $pref)?)
                }
            )*

            /// Any of the three preference events; defaults to [`unhandled`](Self::unhandled).
            fn contact_preference_changed(
                &self,
                preference: Preference,
                event: &Envelope<ContactPreferenceChanged>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                let _ = preference;
                forward!(self, event)
            }

            /// Any event with an encrypted payload; defaults to [`unhandled`](Self::unhandled).
            fn encrypted(&self, event: &Envelope<RawPayload>) -> impl Future<Output = Result<(), Self::Error>> + Send {
                forward!(self, event)
            }

            /// Any event type without a typed payload; defaults to [`unhandled`](Self::unhandled).
            fn unknown(&self, event: &Envelope<RawPayload>) -> impl Future<Output = Result<(), Self::Error>> + Send {
                forward!(self, event)
            }

            /// Every event whose method is not overridden, with its type and id.
            /// Defaults to accepting it.
            fn unhandled(
                &self,
                event_type: &EventType,
                id: Option<&str>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                let _ = (event_type, id);
                async { Ok(()) }
            }
        }
    };
}

/// The default a per-event method's documentation names.
macro_rules! forward_doc {
    ($pref:ident) => {
        "defaults to [`contact_preference_changed`](Self::contact_preference_changed)"
    };
    () => {
        "defaults to [`unhandled`](Self::unhandled)"
    };
}

crate::events::events!(handlers);
