//! De-duplicating deliveries handled inline: [`IdempotencyStore`], its leased
//! claims, and [`MemoryIdempotencyStore`].
//!
//! Svix delivers at least once: after a failure, or an answer slower than about
//! 15 s, it sends the same message again with the same `svix-id`. A retry can
//! arrive while the first attempt is still running. So a delivery is *claimed*
//! for a lease before its handler runs, *completed* when the handler succeeds,
//! and *released* when it fails; a claim whose holder vanished (a panic, a
//! dropped request, a crash) lapses when its lease ends.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a claim holds by default: an inline handler, or a whole
/// `Webhook::process` batch, must finish well within it (a `Worker` renews it
/// while each handler runs), and a claim whose holder vanished is taken again
/// after it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// What [`IdempotencyStore::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Claim {
    /// Nobody handled the delivery or holds it now: the caller holds it for the
    /// lease, and must `complete` or `release` it.
    New,
    /// Another attempt holds an unexpired claim: do not handle it now (answer
    /// 409, and Svix retries later).
    InProgress,
    /// The delivery was handled: a duplicate (answer 200).
    Done,
}

/// Records which deliveries are being handled and which were, keyed by the Svix
/// message id ([`Delivery::idempotency_key`](crate::Delivery::idempotency_key)).
///
/// [`MemoryIdempotencyStore`] does this within one process. With several
/// receiver instances, back it with your database: a table keyed by the message
/// id with a state and a lease expiry, where `claim` inserts the row or takes it
/// over when its lease has expired, in one statement:
///
/// ```sql
/// CREATE TABLE voyado_claims (
///     message_id  TEXT PRIMARY KEY,
///     done        BOOLEAN NOT NULL DEFAULT false,
///     lease_until TIMESTAMPTZ NOT NULL
/// );
/// -- claim: New when a row comes back with done = false and our lease; else
/// -- look the row up: done means Done, otherwise InProgress
/// INSERT INTO voyado_claims (message_id, lease_until) VALUES ($1, now() + $2)
/// ON CONFLICT (message_id) DO UPDATE SET lease_until = excluded.lease_until
///     WHERE NOT voyado_claims.done AND voyado_claims.lease_until < now()
/// RETURNING done;
/// -- complete
/// UPDATE voyado_claims SET done = true WHERE message_id = $1;
/// -- release
/// DELETE FROM voyado_claims WHERE message_id = $1 AND NOT done;
/// ```
///
/// The crate's durable inboxes implement this trait too.
pub trait IdempotencyStore: Send + Sync {
    /// Why the store could not answer; the receiver answers 503, so Svix retries.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Claims `key` for `lease`, unless it is done or held by an unexpired claim.
    /// Two concurrent claims of one key must not both get [`Claim::New`].
    fn claim(&self, key: &str, lease: Duration) -> impl Future<Output = Result<Claim, Self::Error>> + Send;

    /// Marks a claimed `key` handled: every later claim gets [`Claim::Done`].
    fn complete(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Gives up a claim after its handler failed, so Svix's retry is handled.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Called, synchronously, when a claim's holder vanished before it could
    /// complete or release it: its handler panicked, or the request's future was
    /// dropped. The default does nothing, and the claim lapses when its lease
    /// ends; a store that can give the claim up at once (as the memory store
    /// does) overrides it.
    fn abandon(&self, key: &str) {
        let _ = key;
    }
}

impl<T: IdempotencyStore + ?Sized> IdempotencyStore for &T {
    type Error = T::Error;
    fn claim(&self, key: &str, lease: Duration) -> impl Future<Output = Result<Claim, Self::Error>> + Send {
        (**self).claim(key, lease)
    }
    fn complete(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).complete(key)
    }
    fn release(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).release(key)
    }
    fn abandon(&self, key: &str) {
        (**self).abandon(key);
    }
}

impl<T: IdempotencyStore + ?Sized> IdempotencyStore for Arc<T> {
    type Error = T::Error;
    fn claim(&self, key: &str, lease: Duration) -> impl Future<Output = Result<Claim, Self::Error>> + Send {
        (**self).claim(key, lease)
    }
    fn complete(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).complete(key)
    }
    fn release(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).release(key)
    }
    fn abandon(&self, key: &str) {
        (**self).abandon(key);
    }
}

/// An [`IdempotencyStore`] in memory, bounded in time, entries and bytes, with no
/// background thread: expired and evicted entries are dropped as new ones come.
///
/// Within one process, a completed key is reported [`Claim::Done`] until it
/// expires (after [`DEFAULT_TTL`], Svix's whole retry schedule) or is evicted
/// (oldest first, past [`DEFAULT_CAPACITY`] keys or [`DEFAULT_MAX_BYTES`] of
/// them). Claims and released keys do not count against those bounds: only
/// handled deliveries do. A claim whose holder vanished is released at once.
/// It cannot see keys recorded before a restart or by another instance: for
/// that, use a durable inbox or your database.
///
/// ```
/// use std::time::Duration;
/// use voyado_webhooks::{Claim, IdempotencyStore, MemoryIdempotencyStore};
///
/// # async fn run() -> Result<(), std::convert::Infallible> {
/// let store = MemoryIdempotencyStore::new();
/// let lease = Duration::from_secs(60);
/// assert_eq!(store.claim("msg_1", lease).await?, Claim::New);
/// assert_eq!(store.claim("msg_1", lease).await?, Claim::InProgress, "a retry while it runs");
/// store.release("msg_1").await?; // its handler failed
/// assert_eq!(store.claim("msg_1", lease).await?, Claim::New);
/// store.complete("msg_1").await?;
/// assert_eq!(store.claim("msg_1", lease).await?, Claim::Done);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryIdempotencyStore {
    ttl: Duration,
    capacity: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

/// Svix retries for 27 h 35 min after the first attempt (immediately, then after
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h); 28 hours covers that and the
/// attempts' own time-outs.
pub const DEFAULT_TTL: Duration = Duration::from_secs(28 * 60 * 60);

/// Handled keys kept at most by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Bytes of handled keys kept at most by default, each counted as its length
/// plus [`ENTRY_OVERHEAD`]: message ids have no length limit.
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

/// What each kept key costs besides its text, for [`MemoryIdempotencyStore::with_max_bytes`].
pub const ENTRY_OVERHEAD: usize = 64;

/// The shortest time-to-live: de-duplication needs a window.
const MIN_TTL: Duration = Duration::from_secs(1);

#[derive(Debug)]
enum Entry {
    Claimed { until: Instant },
    Done { at: Instant },
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Box<str>, Entry>,
    /// Handled keys by the number they were completed under, oldest first.
    done: BTreeMap<u64, Box<str>>,
    done_bytes: usize,
    next: u64,
}

impl State {
    fn cost(key: &str) -> usize {
        key.len().saturating_add(ENTRY_OVERHEAD)
    }

    /// Drops the oldest handled key.
    fn pop_oldest(&mut self) {
        if let Some((_, key)) = self.done.pop_first() {
            self.done_bytes = self.done_bytes.saturating_sub(Self::cost(&key));
            self.entries.remove(&key);
        }
    }

    /// Drops handled keys older than `ttl`.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((_, key)) = self.done.first_key_value() {
            match self.entries.get(key) {
                Some(Entry::Done { at, .. }) if now.saturating_duration_since(*at) < ttl => break,
                _ => self.pop_oldest(),
            }
        }
    }
}

impl MemoryIdempotencyStore {
    /// A store keeping handled keys for [`DEFAULT_TTL`], at most
    /// [`DEFAULT_CAPACITY`] of them in [`DEFAULT_MAX_BYTES`].
    pub fn new() -> Self {
        MemoryIdempotencyStore {
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
            max_bytes: DEFAULT_MAX_BYTES,
            state: Mutex::default(),
        }
    }

    /// The same store keeping handled keys for `ttl`; a `ttl` under one second is
    /// taken as one second, since a store that forgets at once de-duplicates
    /// nothing.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(MIN_TTL);
        self
    }

    /// The same store keeping at most `capacity` handled keys (at least one),
    /// evicting the oldest first.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The same store keeping handled keys in at most `max_bytes`, each counted
    /// as its length plus [`ENTRY_OVERHEAD`], evicting the oldest first. One key
    /// is always kept, however long.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// How many handled keys are kept now.
    pub fn len(&self) -> usize {
        self.lock().done.len()
    }

    /// Whether no handled key is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change below leaves the maps consistent before anything that can
        // panic: a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn claim_at(&self, key: &str, lease: Duration, now: Instant) -> Claim {
        let mut state = self.lock();
        state.expire(now, self.ttl);
        match state.entries.get(key) {
            Some(Entry::Done { .. }) => return Claim::Done,
            Some(Entry::Claimed { until }) if *until > now => return Claim::InProgress,
            _ => {}
        }
        let until = now.checked_add(lease).unwrap_or(now);
        state.entries.insert(key.into(), Entry::Claimed { until });
        Claim::New
    }

    fn complete_at(&self, key: &str, now: Instant) {
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(Entry::Done { .. }) = state.entries.get(key) {
            return;
        }
        let number = state.next;
        state.next = state.next.wrapping_add(1);
        let key: Box<str> = key.into();
        state.done_bytes = state.done_bytes.saturating_add(State::cost(&key));
        state.done.insert(number, key.clone());
        state.entries.insert(key, Entry::Done { at: now });
        while state.done.len() > self.capacity || (state.done_bytes > self.max_bytes && state.done.len() > 1)
        {
            state.pop_oldest();
        }
    }

    fn release_claim(&self, key: &str) {
        let mut state = self.lock();
        if let Some(Entry::Claimed { .. }) = state.entries.get(key) {
            state.entries.remove(key);
        }
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl IdempotencyStore for MemoryIdempotencyStore {
    type Error = Infallible;

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, Infallible> {
        Ok(self.claim_at(key, lease, Instant::now()))
    }

    async fn complete(&self, key: &str) -> Result<(), Infallible> {
        self.complete_at(key, Instant::now());
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), Infallible> {
        self.release_claim(key);
        Ok(())
    }

    fn abandon(&self, key: &str) {
        self.release_claim(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    fn done(store: &MemoryIdempotencyStore, key: &str, now: Instant) {
        assert_eq!(store.claim_at(key, LEASE, now), Claim::New, "{key}");
        store.complete_at(key, now);
    }

    #[test]
    fn handled_keys_expire_after_the_ttl() {
        let store = MemoryIdempotencyStore::new().with_ttl(Duration::from_secs(10));
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        done(&store, "a", at(0));
        done(&store, "b", at(5));
        assert_eq!(store.claim_at("a", LEASE, at(9)), Claim::Done);
        assert_eq!(store.claim_at("a", LEASE, at(10)), Claim::New, "a expires now");
        assert_eq!(store.claim_at("b", LEASE, at(14)), Claim::Done);
    }

    #[test]
    fn a_zero_ttl_still_de_duplicates() {
        let store = MemoryIdempotencyStore::new().with_ttl(Duration::ZERO);
        let now = Instant::now();
        done(&store, "a", now);
        assert_eq!(store.claim_at("a", LEASE, now), Claim::Done);
    }

    #[test]
    fn a_claim_holds_for_its_lease_and_then_lapses() {
        let store = MemoryIdempotencyStore::new();
        let now = Instant::now();
        assert_eq!(store.claim_at("a", Duration::from_secs(5), now), Claim::New);
        let later = |s| now + Duration::from_secs(s);
        assert_eq!(store.claim_at("a", LEASE, later(4)), Claim::InProgress);
        assert_eq!(
            store.claim_at("a", LEASE, later(5)),
            Claim::New,
            "the lease lapsed"
        );
    }

    #[test]
    fn the_oldest_handled_keys_are_evicted_beyond_the_capacity() {
        let store = MemoryIdempotencyStore::new().with_capacity(3);
        let now = Instant::now();
        for key in ["a", "b", "c", "d"] {
            done(&store, key, now);
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.claim_at("a", LEASE, now), Claim::New, "a was evicted");
        assert_eq!(store.claim_at("d", LEASE, now), Claim::Done);
    }

    #[test]
    fn long_keys_are_bounded_by_bytes() {
        let store = MemoryIdempotencyStore::new().with_max_bytes(3 * (1000 + ENTRY_OVERHEAD));
        let now = Instant::now();
        let key = |i: usize| format!("{i}{}", "x".repeat(999));
        for i in 0..10 {
            done(&store, &key(i), now);
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.claim_at(&key(9), LEASE, now), Claim::Done);
        assert_eq!(store.claim_at(&key(6), LEASE, now), Claim::New);
    }

    /// Defect 3 of the durable-delivery issue: released claims used to count
    /// against the capacity, so failing retries evicted handled keys.
    #[test]
    fn released_claims_never_evict_handled_keys() {
        let store = MemoryIdempotencyStore::new();
        let now = Instant::now();
        done(&store, "msg_processed", now);
        for i in 0..100_000 {
            let key = format!("msg_failing_{}", i % 10);
            assert_eq!(store.claim_at(&key, LEASE, now), Claim::New);
            store.release_claim(&key);
        }
        assert_eq!(store.claim_at("msg_processed", LEASE, now), Claim::Done);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn completing_twice_or_releasing_a_handled_key_changes_nothing() {
        let store = MemoryIdempotencyStore::new();
        let now = Instant::now();
        done(&store, "a", now);
        store.complete_at("a", now);
        store.release_claim("a");
        store.abandon("a");
        assert_eq!(store.len(), 1);
        assert_eq!(store.claim_at("a", LEASE, now), Claim::Done);
    }

    #[test]
    fn concurrent_claims_give_one_new() {
        let store = Arc::new(MemoryIdempotencyStore::new());
        let now = Instant::now();
        let winners: usize = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|i| store.claim_at(&format!("k{i}"), LEASE, now) == Claim::New)
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1000);
    }
}
