//! [`Retention`]: how long an inbox keeps what it stored, in two tiers. A done
//! delivery's body (the contact's personal data) goes first; its row, which
//! makes a late retry a duplicate, stays for at least [`SVIX_RETRY_WINDOW`].

use std::time::Duration;

use time::OffsetDateTime;

use crate::inbox::Inbox;

/// How long after its first attempt Svix may still retry a message: the
/// periods of its retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h:
/// 27 h 35 min 5 s), each started when the attempt before it failed, plus 15 s
/// for each of the 8 attempts to time out. A message is never retried later
/// than this on its own; one replayed by hand from Svix is retried whenever.
pub const SVIX_RETRY_WINDOW: Duration = Duration::from_secs(27 * 3600 + 35 * 60 + 5 + 8 * 15);

/// How long the bodies of done deliveries are kept, by default.
pub const DEFAULT_BODY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long the rows of done deliveries are kept, by default.
pub const DEFAULT_ID_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often a [`Worker`](crate::Worker) applies its retention, by default.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// How long an inbox keeps the deliveries it has finished with (done, or
/// superseded by a newer state), in two tiers:
///
/// - the **body**, with the contact's personal data in it, for
///   [`bodies`](Self::bodies) after it was received (default
///   [`DEFAULT_BODY_RETENTION`]); afterwards the delivery can no longer be
///   replayed;
/// - the **row** (message id, state, contact id), for [`ids`](Self::ids)
///   (default [`DEFAULT_ID_RETENTION`], never less than
///   [`SVIX_RETRY_WINDOW`]), so a late retry is still answered as a
///   duplicate instead of being stored and handled again. The newest done
///   state of each entity stays past it, since it is what supersedes an
///   older one that comes later still.
///
/// Deliveries still to be handled, failed or dead keep everything. Run
/// [`apply`](Self::apply) from a scheduled job, or give the retention to a
/// worker ([`Worker::retention`](crate::Worker::retention)), which applies it
/// every [`every`](Self::every). To erase one contact at once, use
/// [`Inbox::erase_contact`].
///
/// ```
/// use std::time::Duration;
/// use voyado_webhooks::{Inbox, MemoryInbox, OffsetDateTime, Retention, SVIX_RETRY_WINDOW};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let retention = Retention::default()
///     .bodies(Duration::from_secs(6 * 3600))
///     // Raised to the retry window: a shorter one would store late retries again.
///     .ids(Duration::from_secs(60));
/// assert_eq!(retention.ids_kept(), SVIX_RETRY_WINDOW);
///
/// let inbox = MemoryInbox::new();
/// let pruned = retention.apply(&inbox, OffsetDateTime::now_utc()).await.unwrap();
/// assert_eq!((pruned.bodies, pruned.deliveries), (0, 0));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    bodies: Duration,
    ids: Duration,
    every: Duration,
}

/// What one [`Retention::apply`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pruned {
    /// Deliveries whose body was emptied ([`Inbox::drop_bodies`]).
    pub bodies: u64,
    /// Deliveries deleted with their rows ([`Inbox::purge_done`]).
    pub deliveries: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            bodies: DEFAULT_BODY_RETENTION,
            ids: DEFAULT_ID_RETENTION,
            every: DEFAULT_RETENTION_INTERVAL,
        }
    }
}

impl Retention {
    /// Keeps the bodies of finished deliveries for `age` after they were
    /// received (zero: drop them as soon as they are finished with).
    #[must_use]
    pub fn bodies(mut self, age: Duration) -> Self {
        self.bodies = age;
        self
    }

    /// Keeps the rows of finished deliveries for `age` after they were
    /// received, and never less than [`SVIX_RETRY_WINDOW`].
    #[must_use]
    pub fn ids(mut self, age: Duration) -> Self {
        self.ids = age.max(SVIX_RETRY_WINDOW);
        self
    }

    /// How often a worker applies it (default [`DEFAULT_RETENTION_INTERVAL`];
    /// at least a second).
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = interval.max(Duration::from_secs(1));
        self
    }

    /// How long bodies are kept.
    pub fn bodies_kept(&self) -> Duration {
        self.bodies
    }

    /// How long rows are kept.
    pub fn ids_kept(&self) -> Duration {
        self.ids
    }

    /// How often a worker applies it.
    pub fn interval(&self) -> Duration {
        self.every
    }

    /// Drops the bodies, then the rows, that are older than kept at `now`.
    /// Each step is one statement, safe to run from several processes at
    /// once.
    pub async fn apply<I: Inbox + ?Sized>(&self, inbox: &I, now: OffsetDateTime) -> Result<Pruned, I::Error> {
        let mut pruned = Pruned::default();
        if let Some(before) = ago(now, self.bodies) {
            pruned.bodies = inbox.drop_bodies(before).await?;
        }
        if let Some(before) = ago(now, self.ids) {
            pruned.deliveries = inbox.purge_done(before).await?;
        }
        Ok(pruned)
    }
}

/// `age` before `now`, or `None` if that is before any time there is (so
/// nothing is old enough).
fn ago(now: OffsetDateTime, age: Duration) -> Option<OffsetDateTime> {
    now.checked_sub(time::Duration::try_from(age).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_window_is_the_schedule_and_its_timeouts() {
        let schedule = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];
        let timeouts = 8 * 15;
        assert_eq!(
            SVIX_RETRY_WINDOW.as_secs(),
            schedule.iter().sum::<u64>() + timeouts
        );
    }

    #[test]
    fn ids_are_kept_at_least_the_retry_window() {
        assert_eq!(
            Retention::default().ids(Duration::ZERO).ids_kept(),
            SVIX_RETRY_WINDOW
        );
        let long = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(Retention::default().ids(long).ids_kept(), long);
        assert!(DEFAULT_ID_RETENTION >= SVIX_RETRY_WINDOW);
    }

    #[test]
    fn an_age_past_any_time_prunes_nothing() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(ago(now, Duration::MAX), None);
        assert_eq!(ago(now, Duration::ZERO), Some(now));
    }
}
