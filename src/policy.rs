//! How stored deliveries are processed: the lease a claim is held for, and
//! when a failed delivery is retried. [`Webhook`](crate::Webhook) carries them
//! for `handle`, `process` and the worker; the signature code never reads them.

use std::time::Duration;

use crate::idempotency::DEFAULT_LEASE;

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
/// assert_eq!(policy.max_attempts(), 5);
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

    /// How many attempts a delivery gets: claims, whether they ended in an
    /// outcome or not (a process that died mid-handler used one).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
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

/// The processing settings a [`Webhook`](crate::Webhook) carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Processing {
    /// How long `handle`, `process` and the worker claim a delivery for.
    pub(crate) lease: Duration,
    /// When a failed stored delivery is retried.
    pub(crate) retry: RetryPolicy,
}

impl Default for Processing {
    fn default() -> Self {
        Processing {
            lease: DEFAULT_LEASE,
            retry: RetryPolicy::default(),
        }
    }
}
