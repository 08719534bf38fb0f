//! De-duplicating deliveries: [`IdempotencyStore`] and an in-memory one.
//!
//! Svix delivers at least once: after a failure, or an answer slower than about
//! 15 s, it sends the same message again with the same `svix-id`. A receiver that
//! must not apply an event twice (points added twice, a voucher mailed twice)
//! records each id and skips the ones it has seen.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Remembers which deliveries were already handled, keyed by the Svix message id
/// ([`Delivery::idempotency_key`](crate::Delivery::idempotency_key)).
///
/// [`MemoryIdempotencyStore`] does this within one process. With several receiver
/// instances, or to survive restarts, back it with your database: a table with a
/// unique key, where `first_seen` is an insert that reports whether it inserted:
///
/// ```sql
/// CREATE TABLE voyado_deliveries (message_id TEXT PRIMARY KEY, received_at TIMESTAMPTZ NOT NULL DEFAULT now());
/// -- first_seen: true when one row was inserted
/// INSERT INTO voyado_deliveries (message_id) VALUES ($1) ON CONFLICT DO NOTHING;
/// -- forget
/// DELETE FROM voyado_deliveries WHERE message_id = $1;
/// -- now and then: Svix stops retrying after about 28 hours
/// DELETE FROM voyado_deliveries WHERE received_at < now() - interval '2 days';
/// ```
///
/// Stronger still, insert the key in the same transaction as the handler's own
/// writes, so the two are committed or rolled back together.
pub trait IdempotencyStore: Send + Sync {
    /// Records `key` and returns `true` if it was not recorded yet (handle the
    /// delivery), `false` if it was (a duplicate: answer 2xx and skip it). Two
    /// concurrent calls with one key must not both return `true`.
    fn first_seen(&self, key: &str) -> bool;

    /// Removes `key`, after its handler failed, so Svix's retry is handled
    /// rather than skipped as a duplicate.
    fn forget(&self, key: &str);
}

impl<T: IdempotencyStore + ?Sized> IdempotencyStore for &T {
    fn first_seen(&self, key: &str) -> bool {
        (**self).first_seen(key)
    }
    fn forget(&self, key: &str) {
        (**self).forget(key);
    }
}

impl<T: IdempotencyStore + ?Sized> IdempotencyStore for Arc<T> {
    fn first_seen(&self, key: &str) -> bool {
        (**self).first_seen(key)
    }
    fn forget(&self, key: &str) {
        (**self).forget(key);
    }
}

/// An [`IdempotencyStore`] in memory, bounded in time and size, with no
/// background thread: expired keys are dropped as new ones arrive.
///
/// It guarantees that, within one process, a key is reported first-seen once
/// until it expires (after [`DEFAULT_TTL`], Svix's whole retry schedule), is
/// evicted (oldest first, beyond the capacity), or is forgotten. It cannot see
/// keys recorded before a restart or by another receiver instance: for that, back
/// the trait with a database.
///
/// ```
/// use voyado_webhooks::{IdempotencyStore, MemoryIdempotencyStore};
///
/// let store = MemoryIdempotencyStore::new();
/// assert!(store.first_seen("msg_1"));
/// assert!(!store.first_seen("msg_1"), "a retry of msg_1 is a duplicate");
/// store.forget("msg_1"); // its handler failed: let the retry through
/// assert!(store.first_seen("msg_1"));
/// ```
#[derive(Debug)]
pub struct MemoryIdempotencyStore {
    ttl: Duration,
    capacity: usize,
    state: Mutex<State>,
}

/// Svix retries for 27 h 35 min after the first attempt (immediately, then after
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h); 28 hours covers that and the
/// attempts' own time-outs.
pub const DEFAULT_TTL: Duration = Duration::from_secs(28 * 60 * 60);

/// Keys kept at most by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    /// Each live key with the number of the entry that recorded it.
    seen: HashMap<Arc<str>, u64>,
    /// Entries oldest first. An entry whose number is not its key's in `seen`
    /// was forgotten (and maybe recorded again later) and is skipped.
    order: VecDeque<(u64, Instant, Arc<str>)>,
    next: u64,
}

impl MemoryIdempotencyStore {
    /// A store keeping keys for [`DEFAULT_TTL`], at most [`DEFAULT_CAPACITY`] of them.
    pub fn new() -> Self {
        MemoryIdempotencyStore {
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
            state: Mutex::default(),
        }
    }

    /// The same store keeping keys for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The same store keeping at most `capacity` keys (at least one), evicting the
    /// oldest first.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How many keys are recorded now.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no key is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the maps inconsistent: keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn first_seen_at(&self, key: &str, now: Instant) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        while let Some((_, at, _)) = state.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            state.pop_oldest();
        }
        if state.seen.contains_key(key) {
            return false;
        }
        let key: Arc<str> = key.into();
        let number = state.next;
        state.next = state.next.wrapping_add(1);
        state.seen.insert(Arc::clone(&key), number);
        state.order.push_back((number, now, key));
        while state.order.len() > self.capacity {
            state.pop_oldest();
        }
        true
    }
}

impl State {
    fn pop_oldest(&mut self) {
        if let Some((number, _, key)) = self.order.pop_front() {
            if self.seen.get(&key) == Some(&number) {
                self.seen.remove(&key);
            }
        }
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl IdempotencyStore for MemoryIdempotencyStore {
    fn first_seen(&self, key: &str) -> bool {
        self.first_seen_at(key, Instant::now())
    }

    fn forget(&self, key: &str) {
        self.lock().seen.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expire_after_the_ttl() {
        let store = MemoryIdempotencyStore::new().with_ttl(Duration::from_secs(10));
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        assert!(store.first_seen_at("a", at(0)));
        assert!(store.first_seen_at("b", at(5)));
        assert!(!store.first_seen_at("a", at(9)));
        assert!(store.first_seen_at("c", at(10)), "a expires now");
        assert!(store.first_seen_at("a", at(10)));
        assert!(!store.first_seen_at("b", at(14)));
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn the_oldest_keys_are_evicted_beyond_the_capacity() {
        let store = MemoryIdempotencyStore::new().with_capacity(3);
        let now = Instant::now();
        for key in ["a", "b", "c", "d"] {
            assert!(store.first_seen_at(key, now));
        }
        assert_eq!(store.len(), 3);
        assert!(store.first_seen_at("a", now), "a was evicted");
        assert!(!store.first_seen_at("d", now));
        assert!(!store.first_seen_at("c", now));
    }

    #[test]
    fn a_forgotten_key_is_first_seen_again_and_its_old_entry_is_harmless() {
        let store = MemoryIdempotencyStore::new().with_capacity(2);
        let now = Instant::now();
        assert!(store.first_seen_at("a", now));
        store.forget("a");
        assert!(store.is_empty());
        assert!(store.first_seen_at("a", now));
        assert!(store.first_seen_at("b", now));
        // The stale entry for the first "a" goes first, without taking the live "a".
        assert!(!store.first_seen_at("a", now));
        assert!(!store.first_seen_at("b", now));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn concurrent_callers_see_a_key_first_once() {
        let store = Arc::new(MemoryIdempotencyStore::new());
        let winners: usize = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || (0..1000).filter(|i| store.first_seen(&format!("k{i}"))).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1000);
    }
}
