//! Transactional handlers (features `sqlite`, `postgres`): the handler writes
//! through the inbox's own transaction, and the delivery is marked done in
//! the same commit, so an effect that was committed is never applied again.
//!
//! Why a third trait and not a method on the other two: the transaction is
//! typed by its database (`&mut SqliteConnection` or `&mut PgConnection`),
//! which the other traits know nothing of, and a handler writing elsewhere
//! should not see a transaction it must not use. [`TransactionalHandler`] has
//! the same methods and defaults, each taking the transaction first; the
//! event table in [`crate::events`] generates it, as it does the others.

use std::error::Error;
use std::future::Future;

use crate::context::Context;
use crate::envelope::Envelope;
use crate::event::EventEnvelope;
use crate::event_type::EventType;
use crate::inbox::{Record, TransactionalInbox};
use crate::payload::{ContactPreferenceChanged, Preference};
use crate::process::{Attempted, Run, caught};
use crate::raw::RawPayload;
use crate::trace::Span;
use crate::verify::Webhook;

/// The body of a per-event method's default, as in the other handler traits.
macro_rules! forward_in {
    ($self:ident, $tx:ident, $ctx:ident, $event:ident, $pref:ident) => {
        $self.contact_preference_changed($tx, $ctx, Preference::$pref, $event)
    };
    ($self:ident, $tx:ident, $ctx:ident, $event:ident) => {
        $self.unhandled($tx, $ctx, &$event.event_type, $event.id.as_deref())
    };
}

/// Generates [`TransactionalHandler`] and its dispatch from the event table.
macro_rules! transactional {
    (
        [$($args:tt)*]
        typed { $( $(#[$doc:meta])* $variant:ident = $wire:literal => $payload:ident, $method:ident $(, Preference::$pref:ident)? as $kind:ident $(($entity:ident))?; )* }
        untyped { $( $(#[$udoc:meta])* $uvariant:ident = $uwire:literal => $umethod:ident as $ukind:ident $(($uentity:ident))?; )* }
    ) => {
        /// Receives events one method per event type, each with the inbox's
        /// open transaction to write through: run it with [`InTransaction`],
        /// and the delivery is marked done in that transaction before it
        /// commits (see [`TransactionalInbox`]).
        ///
        /// The same methods and defaults as
        /// [`AsyncEventHandler`](crate::AsyncEventHandler), each taking `tx`
        /// (`&mut SqliteConnection` or `&mut PgConnection`) first. A method's
        /// error, its panic, its timeout in a [`Worker`](crate::Worker) or a
        /// lost claim rolls everything it wrote back, and the attempt is
        /// retried as any other; so its writes need no guard against running
        /// twice (no `ON CONFLICT` keyed by the message id).
        ///
        /// ```
        /// use voyado_webhooks::{Context, Envelope, InTransaction, LoyaltyAddPoints, TransactionalHandler};
        /// use sqlx::{Sqlite, SqliteConnection};
        ///
        /// struct Points;
        ///
        /// impl TransactionalHandler<Sqlite> for Points {
        ///     type Error = sqlx::Error;
        ///
        ///     async fn loyalty_add_points(
        ///         &self,
        ///         tx: &mut SqliteConnection,
        ///         _: &Context,
        ///         event: &Envelope<LoyaltyAddPoints>,
        ///     ) -> Result<(), sqlx::Error> {
        ///         sqlx::query("UPDATE points SET total = total + $1 WHERE contact_id = $2")
        ///             .bind(event.payload.amount.to_string())
        ///             .bind(&event.payload.contact_id)
        ///             .execute(tx)
        ///             .await
        ///             .map(|_| ())
        ///     }
        /// }
        ///
        /// # async fn run(webhook: voyado_webhooks::Webhook, inbox: voyado_webhooks::SqliteInbox) -> Result<(), sqlx::Error> {
        /// let processed = webhook.process(&inbox, &InTransaction(Points), 100).await?;
        /// # let _ = processed;
        /// # Ok(())
        /// # }
        /// ```
        pub trait TransactionalHandler<DB: sqlx::Database>: Send + Sync {
            /// What a method returns when it fails: the transaction is rolled
            /// back and the delivery retried.
            type Error;

            $(
                #[doc = concat!("`", $wire, "`; ", crate::handler::forward_doc!($($pref)?), ".")]
                fn $method(
                    &self,
                    tx: &mut DB::Connection,
                    ctx: &Context,
                    event: &Envelope<crate::payload::$payload>,
                ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                    forward_in!(self, tx, ctx, event $(, $pref)?)
                }
            )*

            $(
                #[doc = concat!("`", $uwire, "`, whose payload Voyado has not published, kept as received; ")]
                #[doc = "defaults to [`unknown`](Self::unknown)."]
                fn $umethod(
                    &self,
                    tx: &mut DB::Connection,
                    ctx: &Context,
                    event: &Envelope<RawPayload>,
                ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                    self.unknown(tx, ctx, event)
                }
            )*

            /// Any of the three preference events; defaults to [`unhandled`](Self::unhandled).
            fn contact_preference_changed(
                &self,
                tx: &mut DB::Connection,
                ctx: &Context,
                preference: Preference,
                event: &Envelope<ContactPreferenceChanged>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                let _ = preference;
                forward_in!(self, tx, ctx, event)
            }

            /// Any event with an encrypted payload; defaults to [`unhandled`](Self::unhandled).
            fn encrypted(
                &self,
                tx: &mut DB::Connection,
                ctx: &Context,
                event: &Envelope<RawPayload>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                forward_in!(self, tx, ctx, event)
            }

            /// Any event type without a typed payload or a method of its own;
            /// defaults to [`unhandled`](Self::unhandled).
            fn unknown(
                &self,
                tx: &mut DB::Connection,
                ctx: &Context,
                event: &Envelope<RawPayload>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                forward_in!(self, tx, ctx, event)
            }

            /// Every event whose method is not overridden, with its type and id.
            /// Defaults to accepting it (the delivery is marked done, and
            /// nothing else is written).
            fn unhandled(
                &self,
                tx: &mut DB::Connection,
                ctx: &Context,
                event_type: &EventType,
                id: Option<&str>,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                let _ = (tx, ctx, event_type, id);
                async { Ok(()) }
            }
        }

        /// Calls `handler`'s method for `event` with the transaction.
        async fn dispatch_in<DB, H>(
            event: &EventEnvelope,
            tx: &mut DB::Connection,
            ctx: &Context,
            handler: &H,
        ) -> Result<(), H::Error>
        where
            DB: sqlx::Database,
            H: TransactionalHandler<DB> + ?Sized,
        {
            match event {
                $( EventEnvelope::$variant(e) => handler.$method(tx, ctx, e).await, )*
                EventEnvelope::Encrypted(e) => handler.encrypted(tx, ctx, e).await,
                EventEnvelope::Unknown(e) => match e.event_type {
                    $( EventType::$uvariant => handler.$umethod(tx, ctx, e).await, )*
                    _ => handler.unknown(tx, ctx, e).await,
                },
            }
        }
    };
}

crate::events::events!(transactional);

/// A [`TransactionalHandler`], for [`Webhook::process`] or a
/// [`Worker`](crate::Worker) on a [`TransactionalInbox`]: each attempt begins
/// a transaction, hands it to the handler, and marks the delivery done in it
/// before committing; a failure rolls it back and records the failed attempt
/// apart.
///
/// On SQLite the transaction holds the database's one write lock from its
/// start to its commit (every other write, `accept`'s and lease renewals
/// included, waits for it), so keep such a handler short; on PostgreSQL only
/// the rows it writes are locked.
#[derive(Debug, Clone, Copy, Default)]
pub struct InTransaction<H>(pub H);

impl<I, H> Run<I> for InTransaction<H>
where
    I: TransactionalInbox + ?Sized,
    H: TransactionalHandler<I::Database>,
    H::Error: Into<Box<dyn Error + Send + Sync>>,
{
    async fn run(
        &self,
        webhook: &Webhook,
        inbox: &I,
        record: &Record,
        span: &Span,
    ) -> Attempted<sqlx::Error> {
        let (ctx, event) = match webhook.prepare(record, span) {
            Ok(prepared) => prepared,
            Err(error) => return Attempted::Failed(error),
        };
        let mut tx = match span.instrument(inbox.begin()).await {
            Ok(tx) => tx,
            Err(error) => return Attempted::Inbox(error),
        };
        match caught(span, dispatch_in(&event, &mut *tx, &ctx, &self.0)).await {
            Ok(()) => match span
                .instrument(inbox.commit_done(tx, &record.message_id, record.attempts))
                .await
            {
                Ok(true) => Attempted::Committed,
                Ok(false) => Attempted::Refused,
                Err(error) => Attempted::Inbox(error),
            },
            // Dropping the transaction rolls it back as well, once its
            // connection goes back to the pool; this ends it before the
            // failure is recorded on another.
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    crate::trace::inbox_failed("rollback", &rollback);
                }
                Attempted::Failed(error)
            }
        }
    }
}
