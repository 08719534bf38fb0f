//! Handler traits: implement the methods for the events you use, and
//! [`EventEnvelope::dispatch`](crate::EventEnvelope::dispatch) calls them.
//!
//! Every method has a default. The three preference methods forward to
//! `contact_preference_changed`; everything else forwards to `unhandled`, which
//! accepts the event. So a handler overrides only what it uses, and can log the
//! rest in one place. Every method gets the delivery's [`Context`] first (its
//! Svix message id, to make the handler's writes idempotent). The per-event
//! methods come from the table in [`crate::events`].

use std::future::Future;

use crate::context::Context;
use crate::envelope::Envelope;
use crate::event_type::EventType;
use crate::payload::{ContactPreferenceChanged, Preference};
use crate::raw::RawPayload;

/// The body of a per-event method's default: forward to
/// `contact_preference_changed` for a preference event, else to `unhandled`.
macro_rules! forward {
    ($self:ident, $ctx:ident, $event:ident, $pref:ident) => {
        $self.contact_preference_changed($ctx, Preference::$pref, $event)
    };
    ($self:ident, $ctx:ident, $event:ident) => {
        $self.unhandled($ctx, &$event.event_type, $event.id.as_deref())
    };
}

/// Generates [`EventHandler`] and [`AsyncEventHandler`] from the table in
/// [`crate::events`].
macro_rules! handlers {
    (
        [$($args:tt)*]
        typed { $( $(#[$doc:meta])* $variant:ident = $wire:literal => $payload:ident, $method:ident $(, Preference::$pref:ident)? as $kind:ident $(($entity:ident))?; )* }
        untyped { $( $(#[$udoc:meta])* $uvariant:ident = $uwire:literal => $umethod:ident as $ukind:ident $(($uentity:ident))?; )* }
    ) => {
        /// Receives events one method per event type, synchronously.
        ///
        /// ```
        /// use voyado_webhooks::{Context, Envelope, EventEnvelope, EventHandler, EventType, PointBalanceUpdated};
        ///
        /// struct Balances;
        ///
        /// impl EventHandler for Balances {
        ///     type Error = std::io::Error;
        ///
        ///     fn point_balance_updated(&self, ctx: &Context, event: &Envelope<PointBalanceUpdated>) -> Result<(), Self::Error> {
        ///         println!("{}: {} now has {} points", ctx.message_id(), event.payload.contact_id, event.payload.balance);
        ///         Ok(())
        ///     }
        ///
        ///     fn unhandled(&self, _: &Context, event_type: &EventType, id: Option<&str>) -> Result<(), Self::Error> {
        ///         println!("ignored {event_type} {id:?}");
        ///         Ok(())
        ///     }
        /// }
        ///
        /// let body = r#"{"eventType": "point.balance.updated", "payload": {"balance": 10, "contactId": "c-1"}}"#;
        /// let ctx = Context::new("msg_1", voyado_webhooks::OffsetDateTime::now_utc());
        /// body.parse::<EventEnvelope>()?.dispatch(&ctx, &Balances)?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub trait EventHandler {
            /// What a method returns when it fails; the receiver answers with an error
            /// status so the delivery is retried.
            type Error;

            $(
                #[doc = concat!("`", $wire, "`; ", forward_doc!($($pref)?), ".")]
                fn $method(&self, ctx: &Context, event: &Envelope<crate::payload::$payload>) -> Result<(), Self::Error> {
                    forward!(self, ctx, event $(, $pref)?)
                }
            )*

            $(
                #[doc = concat!("`", $uwire, "`, whose payload Voyado has not published, kept as received; ")]
                #[doc = "defaults to [`unknown`](Self::unknown), which saw these events before they had a method."]
                fn $umethod(&self, ctx: &Context, event: &Envelope<RawPayload>) -> Result<(), Self::Error> {
                    self.unknown(ctx, event)
                }
            )*

            /// Any of the three preference events; defaults to [`unhandled`](Self::unhandled).
            fn contact_preference_changed(
                &self,
                ctx: &Context,
                preference: Preference,
                event: &Envelope<ContactPreferenceChanged>,
            ) -> Result<(), Self::Error> {
                let _ = preference;
                forward!(self, ctx, event)
            }

            /// Any event with an encrypted payload; defaults to [`unhandled`](Self::unhandled).
            fn encrypted(&self, ctx: &Context, event: &Envelope<RawPayload>) -> Result<(), Self::Error> {
                forward!(self, ctx, event)
            }

            /// Any event type without a typed payload or a method of its own;
            /// defaults to [`unhandled`](Self::unhandled).
            fn unknown(&self, ctx: &Context, event: &Envelope<RawPayload>) -> Result<(), Self::Error> {
                forward!(self, ctx, event)
            }

            /// Every event whose method is not overridden, with its type and id.
            /// Defaults to accepting it.
            fn unhandled(&self, ctx: &Context, event_type: &EventType, id: Option<&str>) -> Result<(), Self::Error> {
                let _ = (ctx, event_type, id);
                Ok(())
            }
        }

        /// Receives events one method per event type, asynchronously: the same methods
        /// and defaults as [`EventHandler`], returning `Send` futures. Implement the
        /// methods as `async fn`; no runtime is needed or brought in.
        ///
        /// ```
        /// use voyado_webhooks::{AsyncEventHandler, Context, Envelope, EventEnvelope, RewardVoucherCreated};
        ///
        /// struct Vouchers;
        ///
        /// impl AsyncEventHandler for Vouchers {
        ///     type Error = std::io::Error;
        ///
        ///     async fn reward_voucher_created(&self, ctx: &Context, event: &Envelope<RewardVoucherCreated>) -> Result<(), Self::Error> {
        ///         // e.g. INSERT the voucher keyed by ctx.message_id() … ON CONFLICT DO NOTHING
        ///         Ok(())
        ///     }
        /// }
        ///
        /// async fn receive(ctx: &Context, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
        ///     EventEnvelope::from_slice(body)?.dispatch_async(ctx, &Vouchers).await?;
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
                    ctx: &Context,
                    event: &Envelope<crate::payload::$payload>,
                ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                    forward!(self, ctx, event $(, $pref)?)
                }
            )*

            $(
                #[doc = concat!("`", $uwire, "`, whose payload Voyado has not published, kept as received; ")]
                #[doc = "defaults to [`unknown`](Self::unknown), which saw these events before they had a method."]
                fn $umethod(
                    &self,
                    ctx: &Context,
                    event: &Envelope<RawPayload>,
                ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                    self.unknown(ctx, event)
                }
            )*

            /// Any of the three preference events; defaults to [`unhandled`](Self::unhandled).
            fn contact_preference_changed(
                &self,
                ctx: &Context,
                preference: Preference,
                event: &Envelope<ContactPreferenceChanged>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                let _ = preference;
                forward!(self, ctx, event)
            }

            /// Any event with an encrypted payload; defaults to [`unhandled`](Self::unhandled).
            fn encrypted(&self, ctx: &Context, event: &Envelope<RawPayload>) -> impl Future<Output = Result<(), Self::Error>> + Send {
                forward!(self, ctx, event)
            }

            /// Any event type without a typed payload or a method of its own;
            /// defaults to [`unhandled`](Self::unhandled).
            fn unknown(&self, ctx: &Context, event: &Envelope<RawPayload>) -> impl Future<Output = Result<(), Self::Error>> + Send {
                forward!(self, ctx, event)
            }

            /// Every event whose method is not overridden, with its type and id.
            /// Defaults to accepting it.
            fn unhandled(
                &self,
                ctx: &Context,
                event_type: &EventType,
                id: Option<&str>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                let _ = (ctx, event_type, id);
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

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use forward_doc;

crate::events::events!(handlers);
