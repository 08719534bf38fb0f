//! A durable inbox: store an authentic delivery, acknowledge it, and process it
//! from the store with retries, dead letters and replay.
//!
//! [`Webhook::accept`](crate::Webhook::accept) answers 200 only once the raw
//! delivery is committed; [`Webhook::process`](crate::Webhook::process) claims
//! due deliveries under a lease, dispatches them, and records the outcome. The
//! attempt number a claim gets is its token: a worker whose lease lapsed and was
//! taken over cannot record an outcome over the new holder's.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryInbox;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresInbox, schema as postgres_schema};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::Tables;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteInbox, schema as sqlite_schema};

/// Where a stored delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Stored, not yet attempted (or replayed).
    Pending,
    /// Claimed by a worker, until its lease ends.
    Processing,
    /// Handled.
    Done,
    /// An attempt failed (or the delivery does not parse); retried when due.
    Failed,
    /// Failed on its last allowed attempt: waits for a replay.
    Dead,
}

impl State {
    /// The name stored in a database column.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Processing => "processing",
            State::Done => "done",
            State::Failed => "failed",
            State::Dead => "dead",
        }
    }

    /// The state a stored name stands for.
    pub fn from_name(name: &str) -> Option<State> {
        [
            State::Pending,
            State::Processing,
            State::Done,
            State::Failed,
            State::Dead,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// An authentic delivery, as [`Webhook::accept`](crate::Webhook::accept) stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incoming<'a> {
    /// The Svix message id: unique in the inbox.
    pub message_id: &'a str,
    /// When Svix signed the delivery.
    pub timestamp: OffsetDateTime,
    /// When this receiver got it.
    pub received_at: OffsetDateTime,
    /// The raw body, exactly as signed.
    pub body: &'a [u8],
    /// Why the body does not parse, if it does not: it is stored as failed.
    pub error: Option<String>,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The Svix message id.
    pub message_id: String,
    /// When Svix signed the delivery.
    pub timestamp: OffsetDateTime,
    /// When this receiver stored it.
    pub received_at: OffsetDateTime,
    /// The raw body.
    pub body: Vec<u8>,
    /// Where it stands.
    pub state: State,
    /// Attempts made so far (claims taken).
    pub attempts: u32,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// When it is next due (pending and failed deliveries), or when its lease
    /// ends (processing ones).
    pub due_at: OffsetDateTime,
}

/// How many deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Stored, not yet attempted.
    pub pending: u64,
    /// Claimed by a worker.
    pub processing: u64,
    /// Handled.
    pub done: u64,
    /// Failed, to be retried.
    pub failed: u64,
    /// Out of attempts.
    pub dead: u64,
}

/// What [`Webhook::process`](crate::Webhook::process) did in one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Processed {
    /// Deliveries handled.
    pub handled: usize,
    /// Deliveries that failed and will be retried.
    pub failed: usize,
    /// Deliveries that failed on their last allowed attempt.
    pub dead: usize,
    /// Deliveries claimed but left alone, because their lease had lapsed before
    /// their turn in the batch; they are claimed again later.
    pub skipped: usize,
}

/// When a failed delivery is retried, and how often.
///
/// ```
/// use std::time::Duration;
/// use voyado_webhooks::RetryPolicy;
///
/// let policy = RetryPolicy::new(5).with_backoff(Duration::from_secs(10), Duration::from_secs(60));
/// assert_eq!(policy.delay_after(1), Some(Duration::from_secs(10)));
/// assert_eq!(policy.delay_after(3), Some(Duration::from_secs(40)));
/// assert_eq!(policy.delay_after(4), Some(Duration::from_secs(60)));
/// assert_eq!(policy.delay_after(5), None, "the fifth failure is the last");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    first: Duration,
    max: Duration,
}

impl RetryPolicy {
    /// At most `max_attempts` attempts (at least one), retried after 5 seconds,
    /// doubling up to an hour.
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            first: Duration::from_secs(5),
            max: Duration::from_secs(60 * 60),
        }
    }

    /// The same policy waiting `first` after the first failure, doubling up to
    /// `max`.
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first = first;
        self.max = max.max(first);
        self
    }

    /// How long to wait after failed attempt number `attempt`, or `None` if it
    /// was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(31);
        Some(self.first.saturating_mul(1 << doublings).min(self.max))
    }
}

/// The default: 10 attempts over about 4 hours (5 s, 10 s, 20 s … capped at an
/// hour between attempts).
impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(10)
    }
}

/// A durable store of deliveries. Every method is one atomic step, so several
/// receivers and workers can share one inbox where the backend allows it.
///
/// Implemented by [`MemoryInbox`], `SqliteInbox` (feature `sqlite`) and
/// `PostgresInbox` (feature `postgres`); each is an
/// [`IdempotencyStore`](crate::IdempotencyStore) too.
pub trait Inbox: Send + Sync {
    /// Why the inbox could not answer.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores a delivery unless its message id is stored already: `true` if it
    /// was stored now. Returns only once the delivery is durable.
    fn store(&self, delivery: &Incoming<'_>) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Claims up to `limit` due deliveries for `lease`, oldest first: pending
    /// and failed ones whose time has come, and processing ones whose lease
    /// lapsed. Each claim counts an attempt; the returned records carry it.
    fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Record>, Self::Error>> + Send;

    /// Marks a delivery claimed as attempt `attempt` done. Does nothing if that
    /// claim was taken over.
    fn mark_done(
        &self,
        message_id: &str,
        attempt: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Records attempt `attempt`'s error: the delivery is retried at `retry_at`,
    /// or dead if that is `None`. Does nothing if that claim was taken over.
    fn mark_failed(
        &self,
        message_id: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The delivery with this message id.
    fn get(&self, message_id: &str) -> impl Future<Output = Result<Option<Record>, Self::Error>> + Send;

    /// Up to `limit` deliveries in `state`, oldest first.
    fn list(
        &self,
        state: State,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Record>, Self::Error>> + Send;

    /// Makes a failed, dead or done delivery pending and due now, keeping its
    /// attempts: `true` if there was one to replay.
    fn replay(
        &self,
        message_id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// How many deliveries are in each state.
    fn counts(&self) -> impl Future<Output = Result<Counts, Self::Error>> + Send;

    /// Deletes done deliveries received before `before`: how many.
    fn purge_done(&self, before: OffsetDateTime) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// `time` + a std `Duration`, saturating at the end of time.
pub(crate) fn later(at: OffsetDateTime, by: Duration) -> OffsetDateTime {
    at.checked_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX))
        .unwrap_or(at)
}
