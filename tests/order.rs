//! State that converges, on every backend (`MemoryInbox`, a SQLite file, and
//! the PostgreSQL server the tests start, through two pools): a handler with no
//! ordering logic ends with each entity's newest state however Svix orders,
//! repeats or retries the deliveries; facts are never skipped; a deleted
//! contact stays deleted; a failing older state never holds back a newer one;
//! and retention keeps what supersedes a late retry.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::deliveries::{SECRET, now};
use common::ksuid::svix_id;
use voyado_webhooks::{
    Accepted, AsyncEventHandler, ContactPreferenceChanged, Context, Decimal, Envelope, Inbox,
    LoyaltyAddPoints, MemoryInbox, OffsetDateTime, PointBalanceUpdated, Preference, RawPayload, Retention,
    RetryPolicy, SUPERSEDED_BY, State, Stopped, Webhook, Worker,
};

/// Retried once at once, or after an hour with `slow_retry`.
fn webhook(slow_retry: bool) -> Arc<Webhook> {
    let backoff = if slow_retry {
        Duration::from_secs(3600)
    } else {
        Duration::ZERO
    };
    Arc::new(
        Webhook::new(SECRET)
            .unwrap()
            .with_lease(Duration::from_secs(5))
            .with_retry_policy(RetryPolicy::new(3).with_backoff(backoff, backoff)),
    )
}

/// A handler that writes what it is given and nothing else, recording what it
/// applied, in order, and any two runs of one contact's deliveries at once. A
/// balance of -1 fails.
#[derive(Default)]
struct Ledger {
    balances: Mutex<HashMap<String, Decimal>>,
    consents: Mutex<HashMap<(String, Preference), Option<bool>>>,
    applied: Mutex<Vec<(String, String)>>,
    running: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
}

impl Ledger {
    /// The message ids applied for `contact`, in the order they were.
    fn applied(&self, contact: &str) -> Vec<String> {
        let applied = self.applied.lock().unwrap();
        applied
            .iter()
            .filter(|(c, _)| c == contact)
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn balance(&self, contact: &str) -> Option<Decimal> {
        self.balances.lock().unwrap().get(contact).copied()
    }

    /// Runs `write` as `contact`'s delivery `ctx`, noting an overlap with
    /// another of the contact's.
    async fn apply(&self, ctx: &Context, contact: &str, write: impl FnOnce(&Self)) {
        if !self.running.lock().unwrap().insert(contact.to_owned()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        // Long enough for a second worker to start the contact's next state
        // meanwhile, were it allowed to.
        tokio::time::sleep(Duration::from_millis(2)).await;
        write(self);
        let entry = (contact.to_owned(), ctx.message_id().to_owned());
        self.applied.lock().unwrap().push(entry);
        self.running.lock().unwrap().remove(contact);
    }
}

impl AsyncEventHandler for Ledger {
    type Error = std::io::Error;

    async fn point_balance_updated(
        &self,
        ctx: &Context,
        event: &Envelope<PointBalanceUpdated>,
    ) -> Result<(), Self::Error> {
        let payload = &event.payload;
        if payload.balance == Decimal::NEGATIVE_ONE {
            return Err(std::io::Error::other("the point master is down"));
        }
        self.apply(ctx, &payload.contact_id, |ledger| {
            let mut balances = ledger.balances.lock().unwrap();
            balances.insert(payload.contact_id.clone(), payload.balance);
        })
        .await;
        Ok(())
    }

    async fn contact_preference_changed(
        &self,
        ctx: &Context,
        preference: Preference,
        event: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), Self::Error> {
        let payload = &event.payload;
        self.apply(ctx, &payload.contact_id, |ledger| {
            let mut consents = ledger.consents.lock().unwrap();
            consents.insert((payload.contact_id.clone(), preference), payload.accepts);
        })
        .await;
        Ok(())
    }

    async fn loyalty_add_points(
        &self,
        ctx: &Context,
        event: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), Self::Error> {
        self.apply(ctx, &event.payload.contact_id, |_| {}).await;
        Ok(())
    }

    async fn contact_deleted(&self, ctx: &Context, event: &Envelope<RawPayload>) -> Result<(), Self::Error> {
        let payload: serde_json::Value = event.payload.parse().unwrap();
        let contact = payload["contactId"].as_str().unwrap().to_owned();
        self.apply(ctx, &contact, |ledger| {
            ledger.balances.lock().unwrap().remove(&contact);
        })
        .await;
        Ok(())
    }
}

fn balance_body(contact: &str, balance: i64) -> Vec<u8> {
    format!(
        r#"{{"eventType": "point.balance.updated", "id": "b-{contact}-{balance}",
            "payload": {{"balance": {balance}, "contactId": "{contact}", "accountId": 4711}}}}"#
    )
    .into_bytes()
}

fn preference_body(contact: &str, field: &str, accepts: bool) -> Vec<u8> {
    format!(
        r#"{{"eventType": "contact.{field}.changed", "id": "e",
            "payload": {{"contactId": "{contact}", "{field}": {accepts}}}}}"#
    )
    .into_bytes()
}

fn points_body(contact: &str) -> Vec<u8> {
    format!(
        r#"{{"eventType": "loyalty.addPoints", "id": "p-{contact}",
            "payload": {{"amount": 10.50, "contactId": "{contact}"}}}}"#
    )
    .into_bytes()
}

fn deleted_body(contact: &str) -> Vec<u8> {
    format!(
        r#"{{"eventType": "contact.deleted", "id": "d-{contact}", "payload": {{"contactId": "{contact}"}}}}"#
    )
    .into_bytes()
}

/// Accepts a delivery signed now (a retry is signed anew, whenever it comes).
async fn accept<I: Inbox + ?Sized>(webhook: &Webhook, inbox: &I, message_id: &str, body: &[u8]) -> Accepted {
    let headers = webhook.signed_headers(message_id, now(), body);
    webhook.accept(&headers, body, inbox).await.unwrap()
}

/// A message id created `ms` milliseconds after `base` (a multiple of 4 ms,
/// the ids' resolution), `n` telling ids of one unit apart.
fn id_at(base: OffsetDateTime, ms: i64, n: u8) -> String {
    svix_id(base + time::Duration::milliseconds(ms * 4), n)
}

/// A base time of its own for each check, so their ids never meet.
fn base(check: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000 + check * 3600).unwrap()
}

async fn state<I: Inbox + ?Sized>(inbox: &I, message_id: &str) -> State {
    inbox.get(message_id).await.unwrap().unwrap().state
}

/// Waits until `done` holds, checking every 20 ms, for at most `limit`.
async fn eventually<F: Future<Output = bool>>(limit: Duration, mut done: impl FnMut() -> F) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// `worker`, spawned, and the sender that stops it.
fn spawn<I: Inbox + 'static>(
    worker: Worker<I, Ledger>,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Stopped>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        worker
            .run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    (stop, task)
}

/// Processes everything due now with `process`, as a receiver without a worker
/// does: what it handled and superseded.
async fn process_all<I: Inbox + ?Sized>(webhook: &Webhook, inbox: &I, ledger: &Ledger) -> (usize, usize) {
    let (mut handled, mut superseded) = (0, 0);
    loop {
        let processed = webhook.process(inbox, ledger, 16).await.unwrap();
        if processed.handled + processed.superseded + processed.failed + processed.dead == 0 {
            return (handled, superseded);
        }
        handled += processed.handled;
        superseded += processed.superseded;
    }
}

/// A tiny deterministic shuffle (xorshift), so a failure can be replayed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

const CONTACTS: usize = 20;
const UPDATES: i64 = 8;

/// 20 contacts with 8 balance updates each, created 4 ms apart and
/// interleaved, stored in a shuffled order with every fifth delivered twice,
/// while two workers (one per handle) process: every contact ends with its
/// newest balance, no two of a contact's deliveries ran at once, and what was
/// applied for a contact is in creation order.
async fn shuffled_balances_converge<I: Inbox + 'static>(name: &str, first: Arc<I>, second: Arc<I>) {
    let webhook = webhook(false);
    let ledger = Arc::new(Ledger::default());
    let finished = |counts: voyado_webhooks::Counts| (counts.done + counts.superseded) as usize;
    let earlier = finished(first.counts().await.unwrap());
    let workers = [first.clone(), second.clone()]
        .map(|inbox| spawn(Worker::new(webhook.clone(), inbox, ledger.clone()).concurrency(4)));
    let created = base(1);
    let contact = |c: usize| format!("{name}-balance-{c}");
    let mut deliveries = Vec::new();
    for version in 0..UPDATES {
        for c in 0..CONTACTS {
            let id = id_at(created, version * CONTACTS as i64 + c as i64, 0);
            deliveries.push((id, balance_body(&contact(c), version)));
        }
    }
    let stored = deliveries.len();
    let repeats: Vec<_> = deliveries.iter().step_by(5).cloned().collect();
    deliveries.extend(repeats);
    shuffle(&mut deliveries, 0x5eed);
    let mut duplicates = 0;
    for (i, (id, body)) in deliveries.iter().enumerate() {
        let inbox: &I = if i % 2 == 0 { &first } else { &second };
        if accept(&webhook, inbox, id, body).await == Accepted::Duplicate {
            duplicates += 1;
        }
    }
    assert_eq!(duplicates, deliveries.len() - stored);
    let finished = eventually(Duration::from_secs(60), || {
        let first = first.clone();
        async move { finished(first.counts().await.unwrap()) == earlier + stored }
    })
    .await;
    assert!(finished, "{name}: {:?}", first.counts().await.unwrap());
    let mut processed = voyado_webhooks::Processed::default();
    for (stop, task) in workers {
        stop.send(()).unwrap();
        let stopped = task.await.unwrap();
        processed.handled += stopped.processed.handled;
        processed.superseded += stopped.processed.superseded;
        assert_eq!(
            stopped.processed.failed + stopped.processed.dead + stopped.processed.lost,
            0
        );
    }
    assert_eq!(
        processed.handled + processed.superseded,
        stored,
        "{name}: {processed:?}"
    );
    assert_eq!(
        ledger.overlaps.load(Ordering::SeqCst),
        0,
        "{name}: a contact's states ran at once"
    );
    let newest = Decimal::from(UPDATES - 1);
    for c in 0..CONTACTS {
        let contact = contact(c);
        assert_eq!(ledger.balance(&contact), Some(newest), "{name}: {contact}");
        let applied = ledger.applied(&contact);
        assert!(
            applied.windows(2).all(|w| w[0] < w[1]),
            "{name}: {contact} applied out of order: {applied:?}"
        );
        assert_eq!(
            applied.last(),
            Some(&id_at(created, (UPDATES - 1) * CONTACTS as i64 + c as i64, 0))
        );
    }
    let superseded = ours(name, first.list(State::Superseded, 1000).await.unwrap());
    assert_eq!(superseded.len(), processed.superseded);
    for record in superseded {
        let error = record.last_error.unwrap();
        let by = error.strip_prefix(SUPERSEDED_BY).unwrap();
        assert!(
            by > record.message_id.as_str(),
            "{name}: {} superseded by older {by}",
            record.message_id
        );
        assert_eq!(state(&*first, by).await, State::Done);
    }
    retention_keeps_what_supersedes(name, &webhook, &*first, &ledger, created).await;
}

/// After `shuffled_balances_converge`: retention drops every body and every
/// row but each account's newest done balance; a late retry of a purged older
/// balance is stored again, and superseded by the row that stayed; a retry of
/// the newest is still a duplicate.
async fn retention_keeps_what_supersedes<I: Inbox + ?Sized>(
    name: &str,
    webhook: &Webhook,
    inbox: &I,
    ledger: &Ledger,
    created: OffsetDateTime,
) {
    let later = OffsetDateTime::now_utc() + time::Duration::days(30);
    let pruned = Retention::default().apply(inbox, later).await.unwrap();
    // The earlier checks' deliveries are pruned too.
    let stored = (UPDATES as usize * CONTACTS) as u64;
    assert!(pruned.bodies >= stored, "{name}: {pruned:?}");
    assert!(
        pruned.deliveries >= stored - CONTACTS as u64,
        "{name}: {pruned:?}"
    );
    assert_eq!(inbox.counts().await.unwrap().superseded, 0, "{name}");
    let kept = ours(name, inbox.list(State::Done, 1000).await.unwrap());
    let mut newest: Vec<_> = (0..CONTACTS)
        .map(|c| id_at(created, (UPDATES - 1) * CONTACTS as i64 + c as i64, 0))
        .collect();
    newest.sort();
    let mut kept_ids: Vec<_> = kept.iter().map(|record| record.message_id.clone()).collect();
    kept_ids.sort();
    assert_eq!(
        kept_ids, newest,
        "{name}: not each account's newest balance was kept"
    );
    assert!(
        kept.iter().all(|record| record.body.is_empty()),
        "{name}: a body outlived its retention"
    );
    assert_eq!(
        Retention::default().apply(inbox, later).await.unwrap(),
        Default::default()
    );

    let contact = format!("{name}-balance-0");
    let older = id_at(created, 3 * CONTACTS as i64, 0);
    let newest = id_at(created, (UPDATES - 1) * CONTACTS as i64, 0);
    assert_eq!(
        accept(webhook, inbox, &older, &balance_body(&contact, 3)).await,
        Accepted::Stored
    );
    assert_eq!(
        accept(webhook, inbox, &newest, &balance_body(&contact, UPDATES - 1)).await,
        Accepted::Duplicate
    );
    assert_eq!(process_all(webhook, inbox, ledger).await, (0, 1), "{name}");
    assert_eq!(state(inbox, &older).await, State::Superseded);
    assert_eq!(ledger.balance(&contact), Some(Decimal::from(UPDATES - 1)));
}

/// The records of `shuffled_balances_converge`'s contacts.
fn ours(name: &str, records: Vec<voyado_webhooks::Record>) -> Vec<voyado_webhooks::Record> {
    let prefix = format!("{name}-balance-");
    let ours = |record: &voyado_webhooks::Record| {
        record
            .contact_id
            .as_deref()
            .is_some_and(|c| c.starts_with(&prefix))
    };
    records.into_iter().filter(ours).collect()
}

/// Facts are never superseded: points added before a balance that was applied,
/// and before other points, arrive late and are still handled.
async fn late_facts_are_applied<I: Inbox + ?Sized>(name: &str, inbox: &I) {
    let (webhook, ledger) = (webhook(false), Ledger::default());
    let contact = format!("{name}-facts");
    let created = base(2);
    let (old_points, balance, new_points) =
        (id_at(created, 0, 0), id_at(created, 1, 0), id_at(created, 2, 0));
    accept(&webhook, inbox, &new_points, &points_body(&contact)).await;
    accept(&webhook, inbox, &balance, &balance_body(&contact, 5)).await;
    assert_eq!(process_all(&webhook, inbox, &ledger).await, (2, 0), "{name}");
    accept(&webhook, inbox, &old_points, &points_body(&contact)).await;
    assert_eq!(process_all(&webhook, inbox, &ledger).await, (1, 0), "{name}");
    assert_eq!(ledger.applied(&contact).len(), 3);
    assert_eq!(state(inbox, &old_points).await, State::Done);
}

/// A contact opts in to email, then out; the opt-in's first attempt failed,
/// and Svix's retry of it (signed later than the opt-out) comes after the
/// opt-out was applied: it is superseded, and the contact stays opted out. An
/// SMS opt-in created before the opt-out and delivered later still is another
/// preference, and is applied.
async fn a_late_opt_in_never_undoes_an_opt_out<I: Inbox + ?Sized>(name: &str, inbox: &I) {
    let (webhook, ledger) = (webhook(false), Ledger::default());
    let contact = format!("{name}-consent");
    let created = base(6);
    let (opt_in, sms, opt_out) = (id_at(created, 0, 0), id_at(created, 1, 0), id_at(created, 2, 0));
    accept(
        &webhook,
        inbox,
        &opt_out,
        &preference_body(&contact, "acceptsEmail", false),
    )
    .await;
    assert_eq!(process_all(&webhook, inbox, &ledger).await, (1, 0), "{name}");
    accept(
        &webhook,
        inbox,
        &opt_in,
        &preference_body(&contact, "acceptsEmail", true),
    )
    .await;
    accept(
        &webhook,
        inbox,
        &sms,
        &preference_body(&contact, "acceptsSms", true),
    )
    .await;
    assert_eq!(process_all(&webhook, inbox, &ledger).await, (1, 1), "{name}");
    let consents = ledger.consents.lock().unwrap().clone();
    assert_eq!(
        consents.get(&(contact.clone(), Preference::Email)),
        Some(&Some(false)),
        "{name}"
    );
    assert_eq!(
        consents.get(&(contact.clone(), Preference::Sms)),
        Some(&Some(true)),
        "{name}"
    );
    assert_eq!(state(inbox, &opt_in).await, State::Superseded);
}

/// A balance created before the contact's deletion and delivered after it is
/// superseded by the deletion: the deleted contact does not come back.
async fn deletion_supersedes_older_states<I: Inbox + ?Sized>(name: &str, inbox: &I) {
    let (webhook, ledger) = (webhook(false), Ledger::default());
    let contact = format!("{name}-deleted");
    let created = base(3);
    let (balance, deleted, late) = (id_at(created, 0, 0), id_at(created, 2, 0), id_at(created, 1, 0));
    accept(&webhook, inbox, &balance, &balance_body(&contact, 5)).await;
    accept(&webhook, inbox, &deleted, &deleted_body(&contact)).await;
    assert_eq!(process_all(&webhook, inbox, &ledger).await, (2, 0), "{name}");
    assert_eq!(ledger.balance(&contact), None);
    accept(&webhook, inbox, &late, &balance_body(&contact, 9)).await;
    assert_eq!(process_all(&webhook, inbox, &ledger).await, (0, 1), "{name}");
    assert_eq!(
        ledger.balance(&contact),
        None,
        "{name}: a late balance revived a deleted contact"
    );
    let record = inbox.get(&late).await.unwrap().unwrap();
    assert_eq!(record.state, State::Superseded);
    assert_eq!(record.last_error, Some(format!("{SUPERSEDED_BY}{deleted}")));
}

/// An older balance that fails (retried in an hour) does not hold back a newer
/// one of its account, which is applied at once; when the older one comes due
/// it is superseded, never applied over the newer.
async fn failing_older_state_never_wedges<I: Inbox + ?Sized>(name: &str, inbox: &I) {
    let (webhook, ledger) = (webhook(true), Ledger::default());
    let contact = format!("{name}-wedge");
    let created = base(4);
    let (older, newer) = (id_at(created, 0, 0), id_at(created, 1, 0));
    accept(&webhook, inbox, &older, &balance_body(&contact, -1)).await;
    let processed = webhook.process(inbox, &ledger, 16).await.unwrap();
    assert_eq!(processed.failed, 1, "{name}");
    assert_eq!(state(inbox, &older).await, State::Failed);
    accept(&webhook, inbox, &newer, &balance_body(&contact, 7)).await;
    assert_eq!(process_all(&webhook, inbox, &ledger).await, (1, 0), "{name}");
    assert_eq!(ledger.balance(&contact), Some(Decimal::from(7)));
    let in_two_hours = OffsetDateTime::now_utc() + time::Duration::hours(2);
    let due = inbox
        .claim_due(16, Duration::from_secs(5), 3, in_two_hours)
        .await
        .unwrap();
    let due: Vec<_> = due.iter().map(|r| (r.message_id.as_str(), r.state)).collect();
    assert_eq!(due, [(older.as_str(), State::Superseded)], "{name}");
    assert_eq!(ledger.balance(&contact), Some(Decimal::from(7)));
}

/// Ids that are not Svix's say nothing of when their message was created:
/// those deliveries are applied as they come, the later-stored last.
async fn unknown_creation_applies_as_it_comes<I: Inbox + ?Sized>(name: &str, inbox: &I) {
    let (webhook, ledger) = (webhook(false), Ledger::default());
    let contact = format!("{name}-plain");
    for (id, balance) in [(format!("{name}-plain-2"), 2), (format!("{name}-plain-1"), 1)] {
        accept(&webhook, inbox, &id, &balance_body(&contact, balance)).await;
        assert_eq!(process_all(&webhook, inbox, &ledger).await, (1, 0), "{name}");
        assert_eq!(inbox.get(&id).await.unwrap().unwrap().created_at(), None);
    }
    assert_eq!(ledger.balance(&contact), Some(Decimal::ONE));
}

/// A worker given a retention drops the bodies of what it handled.
async fn worker_applies_its_retention<I: Inbox + 'static>(name: &str, inbox: Arc<I>) {
    let webhook = webhook(false);
    let ledger = Arc::new(Ledger::default());
    let retention = Retention::default()
        .bodies(Duration::ZERO)
        .every(Duration::from_secs(1));
    let (stop, task) =
        spawn(Worker::new(webhook.clone(), inbox.clone(), ledger.clone()).retention(retention));
    let id = id_at(base(5), 0, 0);
    accept(&webhook, &*inbox, &id, &points_body(&format!("{name}-retained"))).await;
    let dropped = eventually(Duration::from_secs(10), || {
        let (inbox, id) = (inbox.clone(), id.clone());
        async move {
            let record = inbox.get(&id).await.unwrap().unwrap();
            record.state == State::Done && record.body.is_empty()
        }
    })
    .await;
    assert!(dropped, "{name}: {:?}", inbox.get(&id).await.unwrap());
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().processed.handled, 1);
}

async fn suite<I: Inbox + 'static>(name: &str, first: Arc<I>, second: Arc<I>) {
    late_facts_are_applied(name, &*first).await;
    a_late_opt_in_never_undoes_an_opt_out(name, &*first).await;
    deletion_supersedes_older_states(name, &*first).await;
    failing_older_state_never_wedges(name, &*first).await;
    unknown_creation_applies_as_it_comes(name, &*first).await;
    worker_applies_its_retention(name, first.clone()).await;
    // Last: its retention purges every done delivery.
    shuffled_balances_converge(name, first, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_inbox() {
    let inbox = Arc::new(MemoryInbox::new());
    suite("memory", inbox.clone(), inbox).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox() {
    let url = common::sqlite_file("order");
    let inbox = Arc::new(voyado_webhooks::SqliteInbox::connect(&url).await.unwrap());
    suite("sqlite", inbox.clone(), inbox).await;
}

/// Two handles with pools of their own, as two instances have: the lanes hold
/// across them.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inbox() {
    let cluster = common::postgres::Cluster::start();
    let url = cluster.url();
    let connect = || voyado_webhooks::PostgresInbox::connect(&url);
    let (first, second) = (connect().await.unwrap(), connect().await.unwrap());
    suite("postgres", Arc::new(first), Arc::new(second)).await;
}
