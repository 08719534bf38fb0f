//! Receive Voyado Engage webhooks: typed events, tolerant parsing, handler traits.
//!
//! Voyado Engage (a retail CRM and loyalty platform) POSTs a JSON event, through
//! Svix, whenever a contact's marketing preferences change, points are added, a
//! point balance moves or a reward voucher is created. This crate turns that body
//! into an [`EventEnvelope`] with exact decimal amounts and typed timestamps, and
//! hands it to your [`EventHandler`] or [`AsyncEventHandler`]. It brings no
//! runtime and no HTTP framework: call it from axum, actix-web or anything else.
//!
//! This is not an official Voyado product.
//!
//! # Receiving
//!
//! With the `verify` feature (on by default), [`Webhook`] checks the Svix
//! signature over the raw body and [`Webhook::handle`] runs the whole pipeline:
//! verify, parse, claim the delivery so retries are neither lost nor handled
//! twice ([`IdempotencyStore`]), dispatch with its [`Context`], and the status to
//! answer Svix with ([`ReceiveError::status_code`]). With
//! `decrypt`, `Webhook::with_decryptor` also turns encrypted payloads back into
//! typed events. `examples/axum_receiver.rs` and `examples/actix_receiver.rs` are
//! complete receivers to start from.
//!
//! For deliveries that must survive crashes and outages, [`Webhook::accept`]
//! stores each authentic delivery in an [`Inbox`] before answering 200: a
//! [`MemoryInbox`], `SqliteInbox` (feature `sqlite`) or `PostgresInbox`
//! (feature `postgres`, for several instances). A `Worker` (feature `worker`)
//! applies what is stored, on your tokio runtime: with concurrency, retries,
//! dead letters, panics and timeouts counted as failed attempts, leases renewed
//! while handlers run, and wake-ups the moment a delivery is stored;
//! [`Webhook::process`] is one batch of the same steps, for a loop of your own.
//!
//! Svix delivers in no order, so the inbox orders what it keeps: states (a
//! preference, a point balance, a consent, the contact itself) are applied one
//! at a time per contact, oldest-created first ([`Context::created_at`], read
//! from the message id), and one older than a state already applied for its
//! entity is [`State::Superseded`] instead of handled; facts (points added, a
//! voucher) are all handled. [`Retention`] drops finished bodies, then rows,
//! by age, and [`Inbox::erase_contact`] erases a deleted contact at once.
//!
//! # Features
//!
//! - `verify` (default): [`Webhook`], the receive pipelines, the idempotency
//!   store and the memory inbox (`hmac`, `sha2`, `base64`, `subtle`, `zeroize`).
//! - `http`: [`HeaderSource`] for `http::HeaderMap` (http 1.x, as used by axum),
//!   and `http_status()` on the outcomes.
//! - `axum`: `IntoResponse` for the outcomes (`axum-core`), so an axum handler
//!   returns `Result<Accepted, ReceiveError>` as it is.
//! - `actix`: [`HeaderSource`] for actix-web's `HeaderMap`, `Responder` and
//!   `ResponseError` for the outcomes (`actix-web` 4).
//! - `tracing`: a span per delivery, and a warning the first time an unknown event
//!   type or field name is seen (`tracing`).
//! - `test-util`: builders for every payload struct and `Envelope`, and signed
//!   test requests (`Webhook::signed_headers`, `Webhook::signed_request`).
//! - `decrypt`: `Decryptor` and `EventEnvelope::decrypt` (`aes`, `cbc`, `base64`).
//! - `sqlite`, `postgres`: `SqliteInbox` and `PostgresInbox` (`sqlx` 0.8, on the
//!   caller's tokio runtime).
//! - `worker`: `Worker` and `Doorbell` (`tokio`, on the caller's runtime).
//!
//! ```
//! use voyado_webhooks::{Context, Envelope, EventEnvelope, EventHandler, LoyaltyAddPoints};
//!
//! struct PointFollower;
//!
//! impl EventHandler for PointFollower {
//!     type Error = std::convert::Infallible;
//!
//!     fn loyalty_add_points(&self, ctx: &Context, event: &Envelope<LoyaltyAddPoints>) -> Result<(), Self::Error> {
//!         let points = &event.payload;
//!         // ctx.message_id() is the same on every retry: key your writes by it.
//!         println!("{}: +{} points for {}", ctx.message_id(), points.amount, points.contact_id);
//!         Ok(())
//!     }
//! }
//!
//! let body = br#"{"eventType": "loyalty.addPoints", "id": "e-1", "isEncrypted": false,
//!                 "payload": {"amount": 100.10, "contactId": "c-1", "pointDefinitionId": 1,
//!                             "source": "Automation"}, "tenant": "acme"}"#;
//! let event = EventEnvelope::from_slice(body)?;
//! let ctx = Context::new("msg_1", voyado_webhooks::OffsetDateTime::now_utc());
//! event.dispatch(&ctx, &PointFollower)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is accepted
//!
//! Voyado's documentation disagrees with itself on casing, id field names and
//! types, so reading is tolerant, and keeps what it does not know:
//!
//! 1. Field names match ignoring ASCII case and `_`/`-` (`contactId`, `ContactId`,
//!    `contact_id`), in the envelope and every payload.
//! 2. The envelope id is read from `id` or `eventId` for every event type. If both
//!    are present, the first in the document is the id and the other is kept in
//!    [`Envelope::extra`]. No id is `None`.
//! 3. Fields come in any order; a payload before `eventType` is read too.
//! 4. An unknown event type is [`EventEnvelope::Unknown`]; unknown fields go to
//!    `extra`. Neither is an error. A field repeated under another spelling or
//!    alias keeps its first value that is not `null` or `""`; a later one goes to
//!    `extra`.
//! 5. Decimals are a JSON number or a numeric string, exact in digits and scale
//!    (`100.10` stays `100.10`, 28 significant digits survive); a value that would
//!    need rounding is an error. This holds whether or not serde_json's
//!    `arbitrary_precision` feature is on in your build.
//! 6. Integers are a number, a numeric string (`"42"`) or an integral float
//!    (`42.0`). String fields also take a number, kept as its text. `isEncrypted`
//!    is a boolean or `"true"`/`"false"`.
//! 7. Timestamps take `T`, `t` or a space between date and time, any number of
//!    fraction digits (past nanoseconds truncated), and `Z`, `z`, `±HH:MM`,
//!    `±HHMM`, `±HH` or no offset (UTC). The offset is kept.
//! 8. Optional fields may be missing, `null` or `""` (all `None`). A required
//!    field missing, `null` or malformed is a [`ParseError`] naming it.
//! 9. Any bad input is a [`ParseError`], never a panic.
//!
//! Serializing an [`EventEnvelope`] writes Voyado's documented wire form, and
//! reading that back gives an equal event.
//!
//! # Limits
//!
//! What does not fit is a [`ParseError`] naming the field, never a rounding or a
//! wrap-around:
//!
//! - Decimals: at most 2^96 − 1 (`79228162514264337593543950335`) in magnitude,
//!   with at most 28 digits after the point, once any exponent is applied
//!   (`1.5e-3` is `0.0015`; `0e30` is `0`). The sign is kept, even on zero.
//! - Integers: `i64`.
//! - Timestamps: years 0000 to 9999, real calendar dates, offsets up to ±23:59
//!   (RFC 3339's range).
//! - Nesting: 128 levels of arrays and objects in all, the envelope counted
//!   ([`EventEnvelope::MAX_DEPTH`]), so that serde_json reads again whatever was
//!   kept (it takes 127 levels on its own). A body nested deeper is refused
//!   where it passes the limit, in memory bounded by the limit, as
//!   [`ParseErrorKind::TooDeep`] naming the field.
//! - Error messages: under 1 KB whatever the body. The event type, id and field
//!   path are kept to 64 characters and a quoted value to 60, and every line
//!   break in them (Unicode's U+0085, U+2028 and U+2029 too) is escaped.
//! - Size: none of its own. Limit the body size in your HTTP framework.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// On docs.rs (nightly), mark each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// A public type that cannot be named from outside is one left out of the
// re-exports below.
#![deny(unnameable_types)]

// Modules in the order they depend on each other: each imports only from those
// above it (`scripts/module-graph` checks), and every per-event list comes from
// the table in `events`.
mod events;
mod field_name;
mod ksuid;
#[cfg(any(feature = "verify", feature = "decrypt"))]
mod lenient_base64;
mod text;

mod context;
mod event_type;
mod headers;
#[cfg(feature = "verify")]
mod idempotency;

mod error;
mod raw;

mod read;
mod write;

mod envelope;
#[cfg(feature = "test-util")]
pub mod test_util;

mod order;
mod payload;

mod handler;

#[cfg(feature = "decrypt")]
mod decrypt;
mod event;

#[cfg(feature = "verify")]
mod trace;

#[cfg(feature = "verify")]
mod policy;
#[cfg(feature = "worker")]
mod wake;

#[cfg(feature = "verify")]
mod inbox;
#[cfg(feature = "verify")]
mod retention;

#[cfg(feature = "verify")]
mod verify;

#[cfg(feature = "verify")]
mod receive;

#[cfg(feature = "verify")]
mod process;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod transaction;

#[cfg(feature = "worker")]
mod worker;

#[cfg(all(feature = "verify", any(feature = "http", feature = "actix")))]
mod respond;

pub use context::Context;
#[cfg(feature = "decrypt")]
pub use decrypt::{DecryptError, Decryptor, KeyError};
pub use envelope::Envelope;
pub use error::{ParseError, ParseErrorKind};
pub use event::EventEnvelope;
pub use event_type::EventType;
pub use handler::{AsyncEventHandler, EventHandler};
pub use headers::HeaderSource;
#[cfg(feature = "verify")]
pub use idempotency::{
    Claim, DEFAULT_CAPACITY, DEFAULT_LEASE, DEFAULT_MAX_BYTES, DEFAULT_TTL, ENTRY_OVERHEAD, IdempotencyStore,
    MemoryIdempotencyStore,
};
// Every public payload struct, so a new one needs no edit here.
#[cfg(feature = "verify")]
pub use inbox::{
    Counts, ERASED, Inbox, Incoming, MemoryInbox, NO_OUTCOME, Outcome, Processed, Record, SUPERSEDED_BY,
    State,
};
#[cfg(feature = "postgres")]
pub use inbox::{PostgresInbox, postgres_schema};
#[cfg(feature = "sqlite")]
pub use inbox::{SqliteInbox, sqlite_schema};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use inbox::{Tables, TransactionalInbox};
pub use payload::*;
#[cfg(feature = "verify")]
pub use policy::RetryPolicy;
#[cfg(feature = "verify")]
pub use process::{Accepted, Handles};
pub use raw::{Extra, RawPayload};
#[cfg(feature = "verify")]
pub use receive::{Delivery, Handled, ReceiveError};
#[cfg(feature = "verify")]
pub use retention::{
    DEFAULT_BODY_RETENTION, DEFAULT_ID_RETENTION, DEFAULT_RETENTION_INTERVAL, Pruned, Retention,
    SVIX_RETRY_WINDOW,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use transaction::{InTransaction, TransactionalHandler};
#[cfg(feature = "verify")]
pub use verify::{DEFAULT_TOLERANCE, SecretError, VerifiedHeaders, VerifyError, Webhook};
#[cfg(feature = "worker")]
pub use wake::{Doorbell, Wakeups};
#[cfg(feature = "worker")]
pub use worker::{
    DEFAULT_CONCURRENCY, DEFAULT_GRACE_PERIOD, DEFAULT_HANDLER_TIMEOUT, DEFAULT_POLL_INTERVAL, Stopped,
    Worker,
};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Decimal amounts, as used in payloads (re-exported from `rust_decimal`).
pub use rust_decimal::Decimal;
/// Timestamps with their offset, as used in payloads (re-exported from `time`).
pub use time::OffsetDateTime;
