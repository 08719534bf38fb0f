//! [`Context`]: what a handler knows about the delivery besides its event.

use time::OffsetDateTime;

/// The delivery an event came in: its Svix message id, when Svix signed it, and
/// which attempt at handling it this is.
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
/// assert_eq!(ctx.attempt(), 1);
/// assert_eq!(ctx.with_attempt(3).attempt(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    message_id: String,
    timestamp: OffsetDateTime,
    attempt: u32,
}

impl Context {
    /// The context of a first attempt at the delivery `message_id`, signed at
    /// `timestamp`: for tests and replays.
    pub fn new(message_id: impl Into<String>, timestamp: OffsetDateTime) -> Self {
        Context {
            message_id: message_id.into(),
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

    /// When Svix signed this attempt.
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
