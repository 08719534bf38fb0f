//! [`MemoryInbox`]: the inbox in one process's memory.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use super::{
    Counts, ERASED, Inbox, Incoming, NO_OUTCOME, Record, State, age, claim_order, later, superseded_by,
};
use crate::idempotency::{Claim, IdempotencyStore, MemoryIdempotencyStore};
use crate::order::DELETION;

/// An [`Inbox`] in memory: for tests, and for a single process that may lose
/// what it holds when it stops. Deliveries are kept until purged.
///
/// ```
/// use voyado_webhooks::{Inbox, MemoryInbox, State};
///
/// # async fn run() -> Result<(), std::convert::Infallible> {
/// let inbox = MemoryInbox::new();
/// assert_eq!(inbox.counts().await?.pending, 0);
/// assert!(inbox.list(State::Dead, 10).await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryInbox {
    deliveries: Mutex<Deliveries>,
    claims: MemoryIdempotencyStore,
    #[cfg(feature = "worker")]
    doorbell: crate::wake::Doorbell,
}

#[derive(Debug, Default)]
struct Deliveries {
    by_id: HashMap<String, (u64, Record)>,
    next: u64,
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        // Every change leaves the map consistent: a poisoned lock is safe to use.
        self.deliveries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the workers on this inbox (feature `worker`).
    fn ring(&self) {
        #[cfg(feature = "worker")]
        self.doorbell.ring();
    }

    /// The records matching `keep`, oldest first, at most `limit`.
    fn oldest(&self, limit: usize, keep: impl Fn(&Record) -> bool) -> Vec<Record> {
        let deliveries = self.lock();
        let mut found: Vec<&(u64, Record)> = deliveries.by_id.values().filter(|(_, r)| keep(r)).collect();
        found.sort_by_key(|(order, _)| *order);
        found.into_iter().take(limit).map(|(_, r)| r.clone()).collect()
    }
}

impl Inbox for MemoryInbox {
    type Error = Infallible;

    async fn store(&self, delivery: &Incoming<'_>) -> Result<bool, Infallible> {
        let mut deliveries = self.lock();
        if deliveries.by_id.contains_key(delivery.message_id) {
            return Ok(false);
        }
        let order = deliveries.next;
        deliveries.next = order.wrapping_add(1);
        let record = Record {
            message_id: delivery.message_id.to_owned(),
            timestamp: delivery.timestamp,
            received_at: delivery.received_at,
            body: delivery.body.to_vec(),
            state: if delivery.error.is_some() {
                State::Failed
            } else {
                State::Pending
            },
            attempts: 0,
            last_error: delivery.error.clone(),
            due_at: delivery.received_at,
            contact_id: delivery.contact_id.map(str::to_owned),
            entity: delivery.lane().map(|(_, entity)| entity.to_owned()),
        };
        deliveries
            .by_id
            .insert(record.message_id.clone(), (order, record));
        drop(deliveries);
        self.ring();
        Ok(true)
    }

    async fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, Infallible> {
        let mut deliveries = self.lock();
        for (_, record) in deliveries.by_id.values_mut() {
            if record.state == State::Processing && record.due_at <= now && record.attempts >= max_attempts {
                record.state = State::Dead;
                record.last_error = Some(NO_OUTCOME.to_owned());
            }
        }
        // Lanes with a delivery in hand, here or lapsed (it is claimed again
        // first, or made dead above).
        let held: HashMap<&str, &str> = deliveries
            .by_id
            .values()
            .filter(|(_, r)| r.state == State::Processing)
            .filter_map(|(_, r)| Some((lane_of(r)?, r.message_id.as_str())))
            .collect();
        let mut due: Vec<(OffsetDateTime, &str)> = deliveries
            .by_id
            .values()
            .map(|(_, r)| r)
            .filter(|r| {
                matches!(r.state, State::Pending | State::Failed | State::Processing) && r.due_at <= now
            })
            .filter(|r| lane_of(r).is_none_or(|lane| held.get(lane).is_none_or(|id| *id == r.message_id)))
            .map(claim_order)
            .collect();
        due.sort();
        let due: Vec<String> = due.into_iter().take(limit).map(|(_, id)| id.to_owned()).collect();
        let mut taken = std::collections::HashSet::new();
        let mut claimed = Vec::new();
        for id in due {
            let superseder = deliveries
                .by_id
                .get(&id)
                .and_then(|(_, r)| superseder(&deliveries, r));
            let Some((_, record)) = deliveries.by_id.get_mut(&id) else {
                continue;
            };
            if let Some(newer) = superseder {
                record.state = State::Superseded;
                record.last_error = Some(superseded_by(&newer));
                claimed.push(record.clone());
                continue;
            }
            // One per lane: the oldest.
            if let Some(lane) = lane_of(record).map(str::to_owned) {
                if !taken.insert(lane) {
                    continue;
                }
            }
            record.state = State::Processing;
            record.attempts = record.attempts.saturating_add(1);
            record.due_at = later(now, lease);
            claimed.push(record.clone());
        }
        Ok(claimed)
    }

    async fn renew(&self, message_id: &str, attempt: u32, until: OffsetDateTime) -> Result<bool, Infallible> {
        match self.lock().by_id.get_mut(message_id) {
            Some((_, record)) if record.state == State::Processing && record.attempts == attempt => {
                record.due_at = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_done(&self, message_id: &str, attempt: u32) -> Result<bool, Infallible> {
        match self.lock().by_id.get_mut(message_id) {
            Some((_, record)) if record.state == State::Processing && record.attempts == attempt => {
                record.state = State::Done;
                record.last_error = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_failed(
        &self,
        message_id: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<bool, Infallible> {
        match self.lock().by_id.get_mut(message_id) {
            Some((_, record)) if record.state == State::Processing && record.attempts == attempt => {
                record.last_error = Some(error.to_owned());
                match retry_at {
                    Some(at) => {
                        record.state = State::Failed;
                        record.due_at = at;
                    }
                    None => record.state = State::Dead,
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get(&self, message_id: &str) -> Result<Option<Record>, Infallible> {
        Ok(self.lock().by_id.get(message_id).map(|(_, r)| r.clone()))
    }

    async fn list(&self, state: State, limit: usize) -> Result<Vec<Record>, Infallible> {
        Ok(self.oldest(limit, |r| r.state == state))
    }

    async fn replay(&self, message_id: &str, now: OffsetDateTime) -> Result<bool, Infallible> {
        let replayed = match self.lock().by_id.get_mut(message_id) {
            Some((_, record))
                if matches!(
                    record.state,
                    State::Failed | State::Dead | State::Done | State::Superseded
                ) && !record.body.is_empty() =>
            {
                record.state = State::Pending;
                record.due_at = now;
                true
            }
            _ => false,
        };
        if replayed {
            self.ring();
        }
        Ok(replayed)
    }

    async fn erase_contact(&self, contact_id: &str) -> Result<u64, Infallible> {
        let mut erased = 0u64;
        for (_, record) in self.lock().by_id.values_mut() {
            let finished = matches!(record.state, State::Done | State::Dead | State::Superseded);
            if finished && record.contact_id.as_deref() == Some(contact_id) && !record.body.is_empty() {
                record.body = Vec::new();
                record.last_error = Some(ERASED.to_owned());
                erased = erased.saturating_add(1);
            }
        }
        Ok(erased)
    }

    async fn counts(&self) -> Result<Counts, Infallible> {
        let now = OffsetDateTime::now_utc();
        let mut counts = Counts::default();
        let (mut due, mut dead) = (None::<OffsetDateTime>, None::<OffsetDateTime>);
        for (_, record) in self.lock().by_id.values() {
            match record.state {
                State::Pending | State::Failed | State::Processing => {
                    due = Some(due.map_or(record.due_at, |at| at.min(record.due_at)));
                }
                State::Dead => dead = Some(dead.map_or(record.received_at, |at| at.min(record.received_at))),
                State::Done | State::Superseded => {}
            }
            let count = match record.state {
                State::Pending => &mut counts.pending,
                State::Processing => &mut counts.processing,
                State::Done => &mut counts.done,
                State::Failed => &mut counts.failed,
                State::Dead => &mut counts.dead,
                State::Superseded => &mut counts.superseded,
            };
            *count = count.saturating_add(1);
        }
        counts.oldest_due = due.and_then(|at| age(at, now));
        counts.oldest_dead = dead.and_then(|at| age(at, now));
        Ok(counts)
    }

    async fn drop_bodies(&self, before: OffsetDateTime) -> Result<u64, Infallible> {
        let mut dropped = 0u64;
        for (_, record) in self.lock().by_id.values_mut() {
            let finished = matches!(record.state, State::Done | State::Superseded);
            if finished && record.received_at < before && !record.body.is_empty() {
                record.body = Vec::new();
                dropped = dropped.saturating_add(1);
            }
        }
        Ok(dropped)
    }

    async fn purge_done(&self, before: OffsetDateTime) -> Result<u64, Infallible> {
        let mut deliveries = self.lock();
        let purged: Vec<String> = deliveries
            .by_id
            .values()
            .map(|(_, r)| r)
            .filter(|r| matches!(r.state, State::Done | State::Superseded) && r.received_at < before)
            // The newest done state of an entity stays: it is what supersedes
            // a late older one.
            .filter(|r| {
                r.state == State::Superseded || lane_of(r).is_none() || superseder(&deliveries, r).is_some()
            })
            .map(|r| r.message_id.clone())
            .collect();
        for id in &purged {
            deliveries.by_id.remove(id);
        }
        Ok(purged.len() as u64)
    }

    #[cfg(feature = "worker")]
    fn doorbell(&self) -> Option<&crate::wake::Doorbell> {
        Some(&self.doorbell)
    }
}

/// The lane a record is ordered in: its contact, if it has an entity.
fn lane_of(record: &Record) -> Option<&str> {
    record.entity.as_ref().and(record.contact_id.as_deref())
}

/// What supersedes `record`: its contact's newest done deletion created after
/// it, else the newest done delivery of its entity created after it (the SQL
/// inboxes name the same one).
fn superseder(deliveries: &Deliveries, record: &Record) -> Option<String> {
    let (lane, entity, created) = (lane_of(record)?, record.entity.as_deref()?, record.created_at()?);
    let key = (created, record.message_id.as_str());
    let newest_done = |of: &str| {
        deliveries
            .by_id
            .values()
            .map(|(_, r)| r)
            .filter(|r| r.state == State::Done && lane_of(r) == Some(lane) && r.entity.as_deref() == Some(of))
            .filter_map(|r| Some((r.created_at()?, r.message_id.as_str())))
            .filter(|newer| *newer > key)
            .max()
            .map(|(_, id)| id.to_owned())
    };
    newest_done(DELETION).or_else(|| newest_done(entity))
}

/// Claims for inline handling, kept beside the inbox in memory.
impl IdempotencyStore for MemoryInbox {
    type Error = Infallible;

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, Infallible> {
        self.claims.claim(key, lease).await
    }

    async fn complete(&self, key: &str) -> Result<(), Infallible> {
        self.claims.complete(key).await
    }

    async fn release(&self, key: &str) -> Result<(), Infallible> {
        self.claims.release(key).await
    }

    fn abandon(&self, key: &str) {
        self.claims.abandon(key);
    }
}
