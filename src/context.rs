//! [`Context`]: what a handler knows about the delivery besides its event.

use time::OffsetDateTime;

use crate::ksuid;

/// The delivery an event came in: its Svix message id, when Svix created the
/// message and when it signed this attempt, and which attempt at handling it
/// this is.
///
/// The message id is the same on every retry of a delivery, so a handler can
/// make its own writes idempotent with it: a unique message-id column and
/// `INSERT … ON CONFLICT DO NOTHING` in the same transaction as the rest.
///
/// ```
/// use voyado_webhooks::{Context, OffsetDateTime};
///
/// let signed = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
/// let ctx = Context::new("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", signed);
/// assert_eq!(ctx.message_id(), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W");
/// // The id is a millisecond KSUID: it says when Svix created the message.
/// assert_eq!(ctx.created_at().map(|at| at.unix_timestamp()), Some(1_674_087_231));
/// assert_eq!(ctx.attempt(), 1);
/// assert_eq!(ctx.with_attempt(3).attempt(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    message_id: String,
    created_at: Option<OffsetDateTime>,
    timestamp: OffsetDateTime,
    attempt: u32,
}

impl Context {
    /// The context of a first attempt at the delivery `message_id`, signed at
    /// `timestamp`: for tests and replays. [`created_at`](Self::created_at) is
    /// read from the id.
    pub fn new(message_id: impl Into<String>, timestamp: OffsetDateTime) -> Self {
        let message_id = message_id.into();
        Context {
            created_at: ksuid::created_at(&message_id),
            message_id,
            timestamp,
            attempt: 1,
        }
    }

    /// The same context for attempt number `attempt` (1 for the first; 0 is
    /// taken as 1).
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// The Svix message id (`svix-id`): the same on every retry of a delivery.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// When Svix created the message (when Engage sent the event), to 4 ms:
    /// read from the message id, a millisecond KSUID after `msg_`, so the same
    /// on every retry, and what orders deliveries. `None` for an id that is not
    /// one (tests, other senders).
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        self.created_at
    }

    /// When Svix signed this attempt. Every attempt, retries included, is
    /// signed anew when it is sent, so this is no order: a retry of an older
    /// message carries a later time than a newer message's first attempt. Use
    /// [`created_at`](Self::created_at).
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp
    }

    /// Which attempt at handling the delivery this is, from 1. Handling inline
    /// (`Webhook::handle`), it is always 1: Svix does not say how often it has
    /// tried. An inbox counts its own attempts.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}
