//! A durable inbox: store an authentic delivery, acknowledge it, and process it
//! from the store with retries, dead letters and replay.
//!
//! [`Webhook::accept`](crate::Webhook::accept) answers 200 only once the raw
//! delivery is committed; [`Webhook::process`](crate::Webhook::process) claims
//! due deliveries under a lease, dispatches them, and records the outcome. The
//! attempt number a claim gets is its token: a worker whose lease lapsed and was
//! taken over can neither renew it nor record an outcome over the new holder's.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

#[cfg(feature = "worker")]
use crate::wake::Doorbell;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod group;
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
    /// Not handled, because a newer state of its entity was applied first
    /// ([`EventEnvelope::entity`](crate::EventEnvelope::entity)): its error
    /// names the delivery that superseded it.
    Superseded,
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
            State::Superseded => "superseded",
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
            State::Superseded,
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
    /// The contact the event is about, if one can be read (what
    /// [`Inbox::erase_contact`] finds it by).
    pub contact_id: Option<&'a str>,
    /// The entity whose state the event sets, for a state event
    /// ([`EventEnvelope::entity`](crate::EventEnvelope::entity)): `None` for a
    /// fact.
    pub entity: Option<&'a str>,
}

impl<'a> Incoming<'a> {
    /// When Svix created the message, read from its id
    /// ([`Context::created_at`](crate::Context::created_at)).
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        crate::ksuid::created_at(self.message_id)
    }

    /// The lane the delivery is ordered in: its contact and entity, when it is
    /// a state whose contact and creation time are known. `None` for the rest,
    /// which are handled as they come. The inboxes store the entity only then.
    pub fn lane(&self) -> Option<(&'a str, &'a str)> {
        self.created_at()?;
        self.contact_id.zip(self.entity)
    }
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
    /// The contact the event is about, if one could be read when it was
    /// stored.
    pub contact_id: Option<String>,
    /// The entity whose state the event sets, if it is a state ordered in its
    /// contact's lane ([`Incoming::lane`]).
    pub entity: Option<String>,
}

impl Record {
    /// When Svix created the message, read from its id
    /// ([`Context::created_at`](crate::Context::created_at)).
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        crate::ksuid::created_at(&self.message_id)
    }
}

/// What to record of one attempt, for [`Inbox::record_all`].
///
/// ```
/// use voyado_webhooks::Outcome;
///
/// let done = Outcome::Done { message_id: "msg_1", attempt: 1 };
/// let failed = Outcome::Failed { message_id: "msg_2", attempt: 3, error: "timeout", retry_at: None };
/// assert_eq!((done.message_id(), failed.attempt()), ("msg_1", 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Handled: marked done.
    Done {
        /// The delivery's message id.
        message_id: &'a str,
        /// The attempt its claim was taken as.
        attempt: u32,
    },
    /// Failed with `error`: retried at `retry_at`, or dead if that is `None`.
    Failed {
        /// The delivery's message id.
        message_id: &'a str,
        /// The attempt its claim was taken as.
        attempt: u32,
        /// What went wrong, as kept in `last_error`.
        error: &'a str,
        /// When it is retried; `None` makes it dead.
        retry_at: Option<OffsetDateTime>,
    },
}

impl<'a> Outcome<'a> {
    /// The delivery's message id.
    pub fn message_id(&self) -> &'a str {
        match *self {
            Outcome::Done { message_id, .. } | Outcome::Failed { message_id, .. } => message_id,
        }
    }

    /// The attempt the outcome is fenced by.
    pub fn attempt(&self) -> u32 {
        match *self {
            Outcome::Done { attempt, .. } | Outcome::Failed { attempt, .. } => attempt,
        }
    }
}

/// How many deliveries are in each state, and how long the oldest have waited:
/// what to alert on.
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
    /// Superseded by a newer state of their entity.
    pub superseded: u64,
    /// How long the delivery that has been due longest has waited since it
    /// came due (stored, its retry time, or its lease's end): `None` if nothing
    /// is due. A figure that grows means no worker is keeping up.
    pub oldest_due: Option<Duration>,
    /// How long ago the oldest dead delivery was received: `None` if none is
    /// dead.
    pub oldest_dead: Option<Duration>,
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
    /// Attempts whose claim was lost before their outcome was recorded (taken
    /// over by another worker, or lapsed unrenewed): nothing was recorded, and
    /// the new holder's attempt counts.
    pub lost: usize,
    /// Deliveries not handled because a newer state of their entity had been
    /// applied ([`State::Superseded`]).
    pub superseded: usize,
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

    /// Claims up to `limit` due deliveries for `lease`, oldest first (by when
    /// Svix created them, or when they were received where the id does not
    /// say): pending and failed ones whose time has come, and processing ones
    /// whose lease lapsed. Each claim counts an attempt; the returned records
    /// carry it, and their `due_at` is the lease's end.
    ///
    /// States are claimed in lanes ([`Incoming::lane`]): at most one delivery
    /// of a contact's states is processing at a time, across every worker on
    /// the inbox, and the oldest is claimed first. A state older than a done
    /// one of its entity (or than its contact's done `contact.deleted`) is not
    /// claimed but made [`State::Superseded`], with its superseder's id after
    /// [`SUPERSEDED_BY`] as its error, and returned too, with that state and
    /// its attempts unchanged, for the caller to count. A failed or dead older
    /// state never holds a newer one back.
    ///
    /// A processing delivery whose lease lapsed after its `max_attempts`-th
    /// claim (each of those attempts ended without an outcome: its process
    /// died, or it outlived its lease) is not claimed again but made dead, with
    /// [`NO_OUTCOME`] as its error.
    fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Record>, Self::Error>> + Send;

    /// Extends the lease of the delivery claimed as attempt `attempt` to
    /// `until`: `false` if that claim is no longer held (it lapsed and was
    /// taken over, or an outcome was recorded), and then nothing changes.
    fn renew(
        &self,
        message_id: &str,
        attempt: u32,
        until: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Marks a delivery claimed as attempt `attempt` done: `false` if that
    /// claim was no longer held (taken over), and then nothing changes.
    fn mark_done(
        &self,
        message_id: &str,
        attempt: u32,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Records each attempt's outcome in `outcomes`, as
    /// [`mark_done`](Self::mark_done) and [`mark_failed`](Self::mark_failed)
    /// do one at a time, in one statement where the backend allows: for each,
    /// in order, whether its claim was still held and it is recorded. The
    /// default calls those two for each.
    fn record_all(
        &self,
        outcomes: &[Outcome<'_>],
    ) -> impl Future<Output = Result<Vec<bool>, Self::Error>> + Send {
        async move {
            let mut recorded = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                recorded.push(match *outcome {
                    Outcome::Done { message_id, attempt } => self.mark_done(message_id, attempt).await?,
                    Outcome::Failed {
                        message_id,
                        attempt,
                        error,
                        retry_at,
                    } => self.mark_failed(message_id, attempt, error, retry_at).await?,
                });
            }
            Ok(recorded)
        }
    }

    /// Records attempt `attempt`'s error: the delivery is retried at `retry_at`,
    /// or dead if that is `None`. `false` if that claim was no longer held
    /// (taken over), and then nothing changes.
    fn mark_failed(
        &self,
        message_id: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

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

    /// Erases what the inbox keeps of contact `contact_id` (GDPR Art. 17, when
    /// Engage says the contact was deleted): the bodies of its deliveries that
    /// are done or dead become empty, with [`ERASED`] as their error, and
    /// cannot be replayed. Their message ids stay, so a late retry is still a
    /// duplicate and is not stored again. Deliveries still to be handled keep
    /// their bodies. How many were erased.
    fn erase_contact(&self, contact_id: &str) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// How many deliveries are in each state, and the ages of the oldest due
    /// and the oldest dead one.
    fn counts(&self) -> impl Future<Output = Result<Counts, Self::Error>> + Send;

    /// Empties the bodies of done and superseded deliveries received before
    /// `before`, keeping the rest of their rows (so a late retry is still a
    /// duplicate, and a done state still supersedes older ones): how many.
    /// Such a delivery can no longer be replayed. See
    /// [`Retention`](crate::Retention).
    fn drop_bodies(&self, before: OffsetDateTime) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Deletes done and superseded deliveries received before `before`,
    /// except the newest done state of each entity (which supersedes any
    /// older one that comes late): how many. A retry of a deleted one is
    /// stored and handled again, so keep them for longer than Svix retries
    /// ([`SVIX_RETRY_WINDOW`](crate::SVIX_RETRY_WINDOW)).
    fn purge_done(&self, before: OffsetDateTime) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// What workers on this inbox wait on between polls (feature `worker`):
    /// the inbox rings it when it stores or replays a delivery. `None`, the
    /// default, leaves the workers to poll.
    #[cfg(feature = "worker")]
    fn doorbell(&self) -> Option<&Doorbell> {
        None
    }
}

/// An inbox whose deliveries can be completed in a handler's own transaction
/// (features `sqlite` and `postgres`): what
/// [`InTransaction`](crate::InTransaction) runs on, and what a loop of your own
/// can use to the same end.
///
/// [`begin`](Self::begin) opens a transaction for the handler's writes;
/// [`commit_done`](Self::commit_done) marks the delivery done in it, fenced by
/// the attempt, and commits the handler's writes and the mark together, or rolls both
/// back. So a committed effect is never applied again, and an attempt whose
/// claim was lost leaves nothing behind.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub trait TransactionalInbox: Inbox<Error = sqlx::Error> {
    /// The sqlx database the transaction is on.
    type Database: sqlx::Database;

    /// Begins a transaction on a connection of the inbox's pool. On SQLite it
    /// takes the database's write lock at once (`BEGIN IMMEDIATE`), so that
    /// the mark at the end cannot fail on a write committed since the
    /// handler's first read.
    fn begin(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>> + Send;

    /// Marks the delivery claimed as attempt `attempt` done in `tx` and
    /// commits it: `true` if committed. If that claim is no longer held (it
    /// was taken over), or a newer state of its entity was applied meanwhile,
    /// `tx` is rolled back instead, with everything written in it, and this
    /// is `false`.
    fn commit_done(
        &self,
        tx: sqlx::Transaction<'static, Self::Database>,
        message_id: &str,
        attempt: u32,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;

    /// [`Inbox::erase_contact`] in a handler's transaction (a
    /// `contact.deleted` handler's, whose erasure then commits with the rest
    /// of its writes, or not at all). On SQLite the plain `erase_contact`
    /// would wait for the transaction's write lock.
    fn erase_contact_in(
        &self,
        tx: &mut <Self::Database as sqlx::Database>::Connection,
        contact_id: &str,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

/// The error a delivery is made dead with when its last allowed attempt, like
/// every one before it, ended without an outcome.
pub const NO_OUTCOME: &str = "every attempt ended without an outcome (its process stopped, or its handler \
     outlived the lease), the last allowed one included";

/// The error of a delivery whose body [`Inbox::erase_contact`] erased.
pub const ERASED: &str = "erased: the body was removed with its contact's data";

/// What claims are ordered by: when Svix created the message (or when it was
/// received, where its id does not say), then its id.
pub(crate) fn claim_order(record: &Record) -> (OffsetDateTime, &str) {
    (
        record.created_at().unwrap_or(record.received_at),
        record.message_id.as_str(),
    )
}

/// The error a superseded delivery is recorded with.
pub(crate) fn superseded_by(message_id: &str) -> String {
    format!("{SUPERSEDED_BY}{message_id}")
}

/// What the error of a [`State::Superseded`] delivery starts with, before the
/// id of the delivery that superseded it.
pub const SUPERSEDED_BY: &str = "superseded by a newer state of its entity: ";

/// How long ago `at` was at `now`, if it had passed.
pub(crate) fn age(at: OffsetDateTime, now: OffsetDateTime) -> Option<Duration> {
    let nanos = now
        .unix_timestamp_nanos()
        .checked_sub(at.unix_timestamp_nanos())?;
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

/// A time as the SQL inboxes store it: Unix milliseconds.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `time` + a std `Duration`, saturating at the end of time.
pub(crate) fn later(at: OffsetDateTime, by: Duration) -> OffsetDateTime {
    at.checked_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX))
        .unwrap_or(at)
}
