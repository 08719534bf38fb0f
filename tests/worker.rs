//! Processing that survives its handlers, on every backend (`MemoryInbox`, a
//! SQLite file, and the PostgreSQL server the tests start): panics, processes
//! that die mid-handler, handlers slower than their lease or their timeout,
//! lost leases, a shutdown with work in flight, wake-ups and an outage.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::deliveries::{accept, body};
use voyado_webhooks::{
    AsyncEventHandler, Context, Envelope, Inbox, LoyaltyAddPoints, MemoryInbox, NO_OUTCOME, OffsetDateTime,
    RetryPolicy, State, Stopped, Webhook, Worker,
};

/// Three attempts, retried at once.
fn webhook(lease: Duration) -> Arc<Webhook> {
    Arc::new(
        Webhook::new(common::deliveries::SECRET)
            .unwrap()
            .with_lease(lease)
            .with_retry_policy(RetryPolicy::new(3).with_backoff(Duration::ZERO, Duration::ZERO)),
    )
}

/// A handler whose behaviour is picked by the contact id: `poison` panics,
/// `slow` takes `slow` to finish, `hang` never finishes; any other succeeds.
/// It records every run's start, and any run that overlapped another of the
/// same delivery.
#[derive(Default)]
struct Probe {
    slow: Duration,
    started: Mutex<Vec<(String, u32, Instant)>>,
    finished: Mutex<Vec<String>>,
    running: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
}

impl Probe {
    fn slow(slow: Duration) -> Arc<Probe> {
        Arc::new(Probe {
            slow,
            ..Probe::default()
        })
    }

    /// How often each message id was started.
    fn runs(&self, message_id: &str) -> usize {
        let started = self.started.lock().unwrap();
        started.iter().filter(|(id, _, _)| id == message_id).count()
    }

    fn finished(&self) -> Vec<String> {
        self.finished.lock().unwrap().clone()
    }
}

/// Leaves the running set when dropped, so an abandoned run leaves it too.
struct Running<'a>(&'a Probe, String);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.lock().unwrap().remove(&self.1);
    }
}

impl AsyncEventHandler for Probe {
    type Error = std::io::Error;

    async fn loyalty_add_points(
        &self,
        ctx: &Context,
        event: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), Self::Error> {
        let id = ctx.message_id().to_owned();
        self.started
            .lock()
            .unwrap()
            .push((id.clone(), ctx.attempt(), Instant::now()));
        if !self.running.lock().unwrap().insert(id.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let _running = Running(self, id.clone());
        match event.payload.contact_id.as_str() {
            "poison" => panic!("poison pill for {id}"),
            "slow" => tokio::time::sleep(self.slow).await,
            "hang" => tokio::time::sleep(Duration::from_secs(3600)).await,
            _ => {}
        }
        self.finished.lock().unwrap().push(id);
        Ok(())
    }
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

/// Waits up to `limit` for `probe` to have started `message_id` once.
async fn started(probe: &Probe, message_id: &str, limit: Duration) -> bool {
    eventually(limit, || async move { probe.runs(message_id) == 1 }).await
}

/// Waits up to `limit` for `message_id` to be in `wanted` in `inbox`.
async fn reaches<I: Inbox>(inbox: &I, message_id: &str, wanted: State, limit: Duration) -> bool {
    eventually(limit, || async move { state(inbox, message_id).await == wanted }).await
}

/// A worker on `inbox`, spawned, and the sender that stops it.
fn spawn_worker<I: Inbox + 'static>(
    worker: Worker<I, Probe>,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Stopped>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let signal = async {
            let _ = stopped.await;
        };
        worker.run_until(signal).await.unwrap()
    });
    (stop, task)
}

async fn state<I: Inbox>(inbox: &I, message_id: &str) -> State {
    inbox.get(message_id).await.unwrap().unwrap().state
}

/// A handler panicking on every call: `process` returns normally each time,
/// the rest of its batch is handled, and the delivery is dead after exactly
/// three runs, with an error naming the panic.
async fn panic_is_a_failed_attempt<I: Inbox>(inbox: &I) {
    let webhook = webhook(Duration::from_secs(30));
    let probe = Probe::default();
    for (id, contact) in [("msg_a", "c-a"), ("msg_p", "poison"), ("msg_b", "c-b")] {
        assert_eq!(accept(&webhook, inbox, id, &body(contact)).await, 200);
    }
    let first = webhook.process(inbox, &probe, 10).await.unwrap();
    assert_eq!((first.handled, first.failed), (2, 1), "{first:?}");
    let record = inbox.get("msg_p").await.unwrap().unwrap();
    assert_eq!(record.state, State::Failed);
    let error = record.last_error.unwrap();
    assert!(
        error.contains("the handler panicked: poison pill for msg_p"),
        "{error}"
    );
    for _ in 0..2 {
        webhook.process(inbox, &probe, 10).await.unwrap();
    }
    let record = inbox.get("msg_p").await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (State::Dead, 3));
    assert!(record.last_error.unwrap().contains("panicked"));
    assert_eq!(
        webhook.process(inbox, &probe, 10).await.unwrap(),
        Default::default()
    );
    assert_eq!(probe.runs("msg_p"), 3);
    assert_eq!((probe.runs("msg_a"), probe.runs("msg_b")), (1, 1));
    assert_eq!(state(inbox, "msg_a").await, State::Done);
}

/// `process` dropped mid-handler again and again (as a killed process would
/// leave it): the delivery runs at most three times, then is dead.
async fn dropped_attempts_count<I: Inbox>(inbox: &I) {
    let lease = Duration::from_millis(150);
    let webhook = webhook(lease);
    let probe = Probe::default();
    let dead_before = inbox.counts().await.unwrap().dead;
    assert_eq!(accept(&webhook, inbox, "msg_h", &body("hang")).await, 200);
    for _ in 0..6 {
        let dropped =
            tokio::time::timeout(Duration::from_millis(50), webhook.process(inbox, &probe, 10)).await;
        assert!(dropped.is_err() || dropped.unwrap().unwrap() == Default::default());
        tokio::time::sleep(lease + Duration::from_millis(50)).await;
    }
    assert_eq!(probe.runs("msg_h"), 3, "one run per allowed attempt, no more");
    let record = inbox.get("msg_h").await.unwrap().unwrap();
    assert_eq!(record.state, State::Dead);
    assert_eq!(record.last_error.as_deref(), Some(NO_OUTCOME));
    assert_eq!(inbox.counts().await.unwrap().dead, dead_before + 1);
    // A replay grants one more run.
    assert!(inbox.replay("msg_h", OffsetDateTime::now_utc()).await.unwrap());
    let _ = tokio::time::timeout(Duration::from_millis(50), webhook.process(inbox, &probe, 10)).await;
    assert_eq!(probe.runs("msg_h"), 4);
}

/// Lease 300 ms, handler 1.2 s, two workers: the lease is renewed while the
/// handler runs, so the other worker never starts it; it runs once.
async fn slow_handler_keeps_its_lease<I: Inbox + 'static>(inboxes: [Arc<I>; 2]) {
    let webhook = webhook(Duration::from_millis(300));
    let probe = Probe::slow(Duration::from_millis(1200));
    let workers = inboxes.clone().map(|inbox| {
        spawn_worker(
            Worker::new(webhook.clone(), inbox, probe.clone()).poll_interval(Duration::from_millis(50)),
        )
    });
    assert_eq!(accept(&webhook, &*inboxes[0], "msg_s", &body("slow")).await, 200);
    let inbox = inboxes[0].clone();
    assert!(reaches(&*inbox, "msg_s", State::Done, Duration::from_secs(10)).await);
    // Longer than a lease again, for a takeover to show if there were one.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut handled = 0;
    for (stop, task) in workers {
        stop.send(()).unwrap();
        let stopped = task.await.unwrap();
        assert_eq!(stopped.processed.lost, 0, "{stopped:?}");
        handled += stopped.processed.handled;
    }
    assert_eq!(probe.runs("msg_s"), 1, "{:?}", probe.started.lock().unwrap());
    assert_eq!(probe.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(handled, 1);
    assert_eq!(inbox.get("msg_s").await.unwrap().unwrap().attempts, 1);
}

/// 200 deliveries, one of them poison, a worker with concurrency 4: every
/// other one handled exactly once, the poison one dead, and `run_until`
/// returns after the signal.
async fn poison_among_many<I: Inbox + 'static>(inbox: Arc<I>) {
    let webhook = webhook(Duration::from_secs(30));
    let probe = Arc::new(Probe::default());
    for i in 0..200 {
        let contact = if i == 77 {
            "poison".to_owned()
        } else {
            format!("c-{i}")
        };
        assert_eq!(
            accept(&webhook, &*inbox, &format!("msg_{i}"), &body(&contact)).await,
            200
        );
    }
    let before = inbox.counts().await.unwrap();
    let (stop, task) =
        spawn_worker(Worker::new(webhook.clone(), inbox.clone(), probe.clone()).concurrency(4));
    let inbox_ref = &*inbox;
    assert!(
        eventually(Duration::from_secs(60), || async move {
            let counts = inbox_ref.counts().await.unwrap();
            counts.done == before.done + 199 && state(inbox_ref, "msg_77").await == State::Dead
        })
        .await
    );
    stop.send(()).unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.processed.handled, 199, "{stopped:?}");
    assert_eq!((stopped.processed.failed, stopped.processed.dead), (2, 1));
    let mut finished = probe.finished();
    assert_eq!(finished.len(), 199);
    finished.sort();
    finished.dedup();
    assert_eq!(finished.len(), 199, "none twice");
    assert_eq!(probe.runs("msg_77"), 3);
    let dead = inbox.get("msg_77").await.unwrap().unwrap();
    assert!(dead.last_error.unwrap().contains("panicked"));
    let counts = inbox.counts().await.unwrap();
    assert_eq!(counts.oldest_due, None, "nothing left due");
    assert!(counts.oldest_dead.is_some(), "{counts:?}");
}

/// An idle worker with a 30 s poll interval starts a delivery accepted on
/// `accepting` (the same inbox, or another process's handle on it) well within
/// a second.
async fn wakes_without_polling<I: Inbox + 'static>(name: &str, working: Arc<I>, accepting: Arc<I>) {
    let webhook = webhook(Duration::from_secs(30));
    let probe = Arc::new(Probe::default());
    let (stop, task) = spawn_worker(
        Worker::new(webhook.clone(), working, probe.clone()).poll_interval(Duration::from_secs(30)),
    );
    // Idle: its first look found nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 0..3 {
        let id = format!("msg_{name}_{round}");
        let accepted = Instant::now();
        assert_eq!(accept(&webhook, &*accepting, &id, &body("c-w")).await, 200);
        assert!(
            started(&probe, &id, Duration::from_secs(1)).await,
            "{id} not started within a second of its accept"
        );
        let at = probe.started.lock().unwrap().last().unwrap().2;
        assert!(at.duration_since(accepted) < Duration::from_secs(1));
    }
    // A burst from concurrent requests: every one is started without a poll,
    // the last ones by the notification that follows those sent meanwhile.
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (webhook, accepting, id) = (
            webhook.clone(),
            accepting.clone(),
            format!("msg_{name}_burst_{i}"),
        );
        burst.spawn(async move { accept(&webhook, &*accepting, &id, &body("c-b")).await });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let probe_ref = &*probe;
    let burst_started = eventually(Duration::from_secs(2), || async move {
        (0..50).all(|i| probe_ref.runs(&format!("msg_{name}_burst_{i}")) == 1)
    })
    .await;
    assert!(burst_started, "a burst not started within 2 s");
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().processed.handled, 53);
}

/// A handler past its timeout is abandoned as a failed attempt; a worker stops
/// after its grace period with the rest still claimed; a claim taken over is
/// abandoned with nothing recorded over the new holder.
async fn timeouts_grace_and_lost_leases<I: Inbox + 'static>(inbox: Arc<I>) {
    let webhook = webhook(Duration::from_secs(30));
    let probe = Arc::new(Probe::default());
    assert_eq!(accept(&webhook, &*inbox, "msg_t", &body("hang")).await, 200);
    let (stop, task) = spawn_worker(
        Worker::new(webhook.clone(), inbox.clone(), probe.clone())
            .handler_timeout(Duration::from_millis(200))
            .poll_interval(Duration::from_millis(50)),
    );
    assert!(reaches(&*inbox, "msg_t", State::Dead, Duration::from_secs(10)).await);
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert_eq!(
        (stopped.processed.failed, stopped.processed.dead),
        (2, 1),
        "{stopped:?}"
    );
    let record = inbox.get("msg_t").await.unwrap().unwrap();
    assert!(record.last_error.unwrap().contains("timeout of 200ms"));
    assert_eq!(probe.runs("msg_t"), 3);

    // Shutdown with a handler still running past the grace period.
    assert_eq!(accept(&webhook, &*inbox, "msg_g", &body("hang")).await, 200);
    let (stop, task) = spawn_worker(
        Worker::new(webhook.clone(), inbox.clone(), probe.clone()).grace_period(Duration::from_millis(100)),
    );
    assert!(started(&probe, "msg_g", Duration::from_secs(5)).await);
    let signalled = Instant::now();
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_eq!(stopped.cut_off, 1, "{stopped:?}");
    assert!(
        probe.running.lock().unwrap().is_empty(),
        "the handler was dropped"
    );
    assert_eq!(state(&*inbox, "msg_g").await, State::Processing, "still claimed");

    // A claim renewed by nobody lapses and is taken over: the first holder's
    // renewal is refused, it abandons its handler and records nothing.
    let short = Arc::new(Webhook::clone(&webhook).with_lease(Duration::from_millis(300)));
    assert_eq!(accept(&webhook, &*inbox, "msg_l", &body("hang")).await, 200);
    let (stop, task) = spawn_worker(Worker::new(short.clone(), inbox.clone(), probe.clone()));
    assert!(started(&probe, "msg_l", Duration::from_secs(5)).await);
    // Another worker's claim, as if the lease had lapsed: its attempt 2.
    let taken = loop {
        let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
        let claimed = inbox
            .claim_due(10, Duration::from_secs(60), 3, later)
            .await
            .unwrap();
        if let Some(record) = claimed.into_iter().find(|r| r.message_id == "msg_l") {
            break record;
        }
    };
    assert_eq!(taken.attempts, 2);
    let probe_ref = &*probe;
    assert!(
        eventually(Duration::from_secs(5), || async move {
            probe_ref.running.lock().unwrap().is_empty()
        })
        .await,
        "the first holder abandoned its handler"
    );
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert_eq!(stopped.processed.lost, 1, "{stopped:?}");
    let record = inbox.get("msg_l").await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.attempts),
        (State::Processing, 2),
        "the new holder's"
    );
    assert!(!inbox.renew("msg_l", 1, OffsetDateTime::now_utc()).await.unwrap());
    inbox.mark_done("msg_l", 2).await.unwrap();
    assert_eq!(state(&*inbox, "msg_l").await, State::Done);
}

/// Every check on one backend. `second` is another handle on the same inbox:
/// the same one in one process, a separate pool on PostgreSQL.
/// A real inbox, with a count of the calls that record outcomes.
struct Counted<I> {
    inbox: I,
    one_at_a_time: AtomicUsize,
    batches: AtomicUsize,
    outcomes: AtomicUsize,
    /// How long a claim's answer takes to come back after the inbox made it
    /// (a reply still on the wire).
    claim_reply: Duration,
    /// Set once a claim has taken something.
    claimed: std::sync::atomic::AtomicBool,
}

impl<I> Counted<I> {
    fn new(inbox: I, claim_reply: Duration) -> Self {
        Counted {
            inbox,
            one_at_a_time: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
            outcomes: AtomicUsize::new(0),
            claim_reply,
            claimed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl<I: Inbox> Inbox for Counted<I> {
    type Error = I::Error;

    async fn store(&self, delivery: &voyado_webhooks::Incoming<'_>) -> Result<bool, I::Error> {
        self.inbox.store(delivery).await
    }
    async fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<voyado_webhooks::Record>, I::Error> {
        let claimed = self.inbox.claim_due(limit, lease, max_attempts, now).await;
        if claimed.as_ref().is_ok_and(|taken| !taken.is_empty()) {
            self.claimed.store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(self.claim_reply).await;
        claimed
    }
    async fn renew(&self, id: &str, attempt: u32, until: OffsetDateTime) -> Result<bool, I::Error> {
        self.inbox.renew(id, attempt, until).await
    }
    async fn mark_done(&self, id: &str, attempt: u32) -> Result<bool, I::Error> {
        self.one_at_a_time.fetch_add(1, Ordering::SeqCst);
        self.inbox.mark_done(id, attempt).await
    }
    async fn mark_failed(
        &self,
        id: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<bool, I::Error> {
        self.one_at_a_time.fetch_add(1, Ordering::SeqCst);
        self.inbox.mark_failed(id, attempt, error, retry_at).await
    }
    async fn record_all(&self, outcomes: &[voyado_webhooks::Outcome<'_>]) -> Result<Vec<bool>, I::Error> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.outcomes.fetch_add(outcomes.len(), Ordering::SeqCst);
        self.inbox.record_all(outcomes).await
    }
    async fn get(&self, id: &str) -> Result<Option<voyado_webhooks::Record>, I::Error> {
        self.inbox.get(id).await
    }
    async fn list(&self, state: State, limit: usize) -> Result<Vec<voyado_webhooks::Record>, I::Error> {
        self.inbox.list(state, limit).await
    }
    async fn replay(&self, id: &str, now: OffsetDateTime) -> Result<bool, I::Error> {
        self.inbox.replay(id, now).await
    }
    async fn erase_contact(&self, contact_id: &str) -> Result<u64, I::Error> {
        self.inbox.erase_contact(contact_id).await
    }
    async fn counts(&self) -> Result<voyado_webhooks::Counts, I::Error> {
        self.inbox.counts().await
    }
    async fn drop_bodies(&self, before: OffsetDateTime) -> Result<u64, I::Error> {
        self.inbox.drop_bodies(before).await
    }
    async fn purge_done(&self, before: OffsetDateTime) -> Result<u64, I::Error> {
        self.inbox.purge_done(before).await
    }
    fn doorbell(&self) -> Option<&voyado_webhooks::Doorbell> {
        self.inbox.doorbell()
    }
}

/// Successes and failures alike are recorded in batches, never one
/// statement each: 150 deliveries handled and 50 that panic on each of their
/// 3 attempts make 300 outcomes.
async fn outcomes_are_recorded_in_batches<I: Inbox + 'static>(name: &str, inbox: I) {
    let inbox = Arc::new(Counted::new(inbox, Duration::ZERO));
    let webhook = webhook(Duration::from_secs(30));
    for i in 0..200 {
        let contact = if i % 4 == 0 {
            "poison".to_owned()
        } else {
            format!("c-{i}")
        };
        assert_eq!(
            accept(&webhook, &*inbox, &format!("msg_batch_{i}"), &body(&contact)).await,
            200
        );
    }
    let before = inbox.counts().await.unwrap();
    let worker = Worker::new(webhook.clone(), inbox.clone(), Arc::new(Probe::default())).concurrency(8);
    let (stop, task) = spawn_worker(worker);
    let inbox_ref = &*inbox;
    assert!(
        eventually(Duration::from_secs(60), || async move {
            let counts = inbox_ref.counts().await.unwrap();
            counts.done == before.done + 150 && counts.dead == before.dead + 50
        })
        .await
    );
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert_eq!(
        (
            stopped.processed.handled,
            stopped.processed.failed,
            stopped.processed.dead
        ),
        (150, 100, 50),
        "{stopped:?}"
    );
    let (batches, outcomes) = (
        inbox.batches.load(Ordering::SeqCst),
        inbox.outcomes.load(Ordering::SeqCst),
    );
    assert_eq!(inbox.one_at_a_time.load(Ordering::SeqCst), 0);
    assert_eq!(outcomes, 300);
    println!("{name}: 300 outcomes recorded in {batches} statements");
    assert!(
        batches < outcomes,
        "{name}: {batches} statements for {outcomes} outcomes"
    );
}

/// A stop that comes while a claim's answer is on its way: what the claim
/// took is run and recorded, not left claimed until its lease ends (seen in
/// CI: superseded deliveries a stopping worker never counted).
async fn a_claim_under_way_at_the_stop_is_run<I: Inbox + 'static>(name: &str, inbox: I) {
    let inbox = Arc::new(Counted::new(inbox, Duration::from_millis(100)));
    let webhook = webhook(Duration::from_secs(30));
    let id = format!("msg_stop_during_claim_{name}");
    assert_eq!(accept(&webhook, &*inbox, &id, &body("c-stop")).await, 200);
    let worker = Worker::new(webhook.clone(), inbox.clone(), Arc::new(Probe::default()));
    let (stop, task) = spawn_worker(worker);
    let inbox_ref = &*inbox;
    let claimed = eventually(Duration::from_secs(10), || async move {
        inbox_ref.claimed.load(Ordering::SeqCst)
    })
    .await;
    assert!(claimed, "{name}: never claimed");
    assert_eq!(inbox.get(&id).await.unwrap().unwrap().state, State::Processing);
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert_eq!(stopped.processed.handled, 1, "{name}: {stopped:?}");
    let record = inbox.get(&id).await.unwrap().unwrap();
    assert_eq!(record.state, State::Done, "{name}");
}

async fn suite<I: Inbox + 'static>(first: Arc<I>, second: Arc<I>) {
    panic_is_a_failed_attempt(&*first).await;
    dropped_attempts_count(&*first).await;
    slow_handler_keeps_its_lease([first.clone(), second.clone()]).await;
    poison_among_many(first.clone()).await;
    wakes_without_polling("same_handle", first.clone(), first.clone()).await;
    wakes_without_polling("other_handle", second.clone(), first.clone()).await;
    timeouts_grace_and_lost_leases(first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_inbox() {
    let inbox = Arc::new(MemoryInbox::new());
    suite(inbox.clone(), inbox).await;
    outcomes_are_recorded_in_batches("memory", MemoryInbox::new()).await;
    a_claim_under_way_at_the_stop_is_run("memory", MemoryInbox::new()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox() {
    let url = common::sqlite_file("worker");
    let inbox = Arc::new(voyado_webhooks::SqliteInbox::connect(&url).await.unwrap());
    suite(inbox.clone(), inbox).await;
    let batched = voyado_webhooks::SqliteInbox::connect(&common::sqlite_file("worker-batches")).await;
    outcomes_are_recorded_in_batches("sqlite", batched.unwrap()).await;
    let stopping = voyado_webhooks::SqliteInbox::connect(&common::sqlite_file("worker-stop")).await;
    a_claim_under_way_at_the_stop_is_run("sqlite", stopping.unwrap()).await;
}

/// Two handles with pools of their own, as two processes have: wake-ups go
/// through `NOTIFY`.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inbox() {
    let cluster = common::postgres::Cluster::start();
    let url = cluster.url();
    let connect = || voyado_webhooks::PostgresInbox::connect(&url);
    let (first, second) = (connect().await.unwrap(), connect().await.unwrap());
    suite(Arc::new(first), Arc::new(second)).await;
    let tables = voyado_webhooks::Tables::new("batch_deliveries", "batch_claims").unwrap();
    let batched = voyado_webhooks::PostgresInbox::connect_with(&url, tables)
        .await
        .unwrap();
    outcomes_are_recorded_in_batches("postgres", batched).await;
    let tables = voyado_webhooks::Tables::new("stop_deliveries", "stop_claims").unwrap();
    let stopping = voyado_webhooks::PostgresInbox::connect_with(&url, tables)
        .await
        .unwrap();
    a_claim_under_way_at_the_stop_is_run("postgres", stopping).await;
}

/// The server goes away under an idle worker and comes back: the worker
/// survives, its `LISTEN` connection is made again, and a delivery another
/// process accepts afterwards wakes it within a second (its poll is 30 s).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_worker_survives_an_outage_and_listens_again() {
    let cluster = common::postgres::Cluster::start();
    let url = cluster.url();
    let connect = || voyado_webhooks::PostgresInbox::connect(&url);
    let (working, accepting) = (Arc::new(connect().await.unwrap()), connect().await.unwrap());
    let webhook = webhook(Duration::from_secs(30));
    let probe = Arc::new(Probe::default());
    let (stop, task) = spawn_worker(
        Worker::new(webhook.clone(), working.clone(), probe.clone()).poll_interval(Duration::from_secs(30)),
    );
    assert_eq!(
        accept(&webhook, &accepting, "msg_before", &body("c-1")).await,
        200
    );
    assert!(started(&probe, "msg_before", Duration::from_secs(2)).await);

    cluster.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start_again();
    // The listener reconnects within its backoff (at most 5 s) and rings once
    // on reconnecting: give it that, then accept.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let accepted = Instant::now();
    assert_eq!(accept(&webhook, &accepting, "msg_after", &body("c-2")).await, 200);
    assert!(
        started(&probe, "msg_after", Duration::from_secs(1)).await,
        "not woken within a second after the outage ({:?})",
        accepted.elapsed()
    );
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert_eq!(stopped.processed.handled, 2, "{stopped:?}");
}

/// The worker and its future can be sent to another thread.
#[test]
fn worker_and_its_future_are_send() {
    fn send<T: Send>(_: &T) {}
    let worker = Worker::new(
        webhook(Duration::from_secs(1)),
        Arc::new(MemoryInbox::new()),
        Arc::new(Probe::default()),
    );
    send(&worker);
    send(&worker.clone().run_until(async {}));
}

/// The server goes away while a handler runs and past its lease: the
/// delivery is not lost. Either the late record of its success still finds the
/// claim unclaimed (nobody could claim while the server was down) and marks it
/// done, or it is refused or fails and the delivery runs again: whichever the
/// timing gives, it ends done, recorded handled exactly once, with every other
/// run accounted for.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_while_a_handler_runs_loses_nothing() {
    let cluster = common::postgres::Cluster::start();
    let inbox = Arc::new(
        voyado_webhooks::PostgresInbox::connect(&cluster.url())
            .await
            .unwrap(),
    );
    let webhook = webhook(Duration::from_secs(3));
    let probe = Probe::slow(Duration::from_millis(1500));
    assert_eq!(accept(&webhook, &*inbox, "msg_o", &body("slow")).await, 200);
    let (stop, task) = spawn_worker(
        Worker::new(webhook.clone(), inbox.clone(), probe.clone()).poll_interval(Duration::from_millis(100)),
    );
    assert!(started(&probe, "msg_o", Duration::from_secs(2)).await);
    cluster.stop();
    // The handler finishes while the server is down, and its lease lapses.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(probe.finished(), ["msg_o"]);
    cluster.start_again();
    assert!(reaches(&*inbox, "msg_o", State::Done, Duration::from_secs(15)).await);
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    let runs = probe.runs("msg_o");
    assert!(runs == 1 || runs == 2, "{runs} runs");
    assert_eq!(stopped.processed.handled, 1, "{stopped:?}");
    assert_eq!(
        stopped.unrecorded + stopped.processed.lost,
        runs - 1,
        "{stopped:?}"
    );
    assert_eq!(inbox.get("msg_o").await.unwrap().unwrap().attempts as usize, runs);
}

/// With the server gone, a worker's claims wait on the pool: the signal still
/// stops it at once.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_worker_stops_promptly_in_an_outage() {
    let cluster = common::postgres::Cluster::start();
    let inbox = Arc::new(
        voyado_webhooks::PostgresInbox::connect(&cluster.url())
            .await
            .unwrap(),
    );
    let webhook = webhook(Duration::from_secs(30));
    let (stop, task) = spawn_worker(
        Worker::new(webhook, inbox, Arc::new(Probe::default())).poll_interval(Duration::from_millis(50)),
    );
    cluster.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert!(
        signalled.elapsed() < Duration::from_millis(500),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(stopped, Stopped::default());
}

/// Not a test of its own: `postgres_wakes_for_a_delivery_another_process_accepts`
/// runs this test binary again, as another process, to accept one delivery.
#[cfg(feature = "postgres")]
#[tokio::test]
#[ignore = "a helper, run as a child process by postgres_wakes_for_a_delivery_another_process_accepts"]
async fn child_process_accepts() {
    let (Ok(url), Ok(id)) = (
        std::env::var("VOYADO_CHILD_DATABASE_URL"),
        std::env::var("VOYADO_CHILD_MESSAGE_ID"),
    ) else {
        return;
    };
    let inbox = voyado_webhooks::PostgresInbox::connect(&url).await.unwrap();
    assert_eq!(
        accept(&webhook(Duration::from_secs(30)), &inbox, &id, &body("c-child")).await,
        200
    );
}

/// An idle worker with a 30 s poll starts a delivery that another process
/// (this test binary, run again) accepted, within a second of that process's
/// exit: by its `NOTIFY`.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_for_a_delivery_another_process_accepts() {
    let cluster = common::postgres::Cluster::start();
    let inbox = Arc::new(
        voyado_webhooks::PostgresInbox::connect(&cluster.url())
            .await
            .unwrap(),
    );
    let probe = Arc::new(Probe::default());
    let (stop, task) = spawn_worker(
        Worker::new(webhook(Duration::from_secs(30)), inbox, probe.clone())
            .poll_interval(Duration::from_secs(30)),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = cluster.url();
    let child = tokio::task::spawn_blocking(move || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process_accepts", "--ignored", "--quiet"])
            .env("VOYADO_CHILD_DATABASE_URL", url)
            .env("VOYADO_CHILD_MESSAGE_ID", "msg_from_another_process")
            .output()
            .unwrap()
    });
    let output = child.await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
    assert!(
        started(&probe, "msg_from_another_process", Duration::from_secs(1)).await,
        "not started within a second of the other process's exit"
    );
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().processed.handled, 1);
}

/// The server goes away after a handler succeeded: the record of its success
/// waits on the pool, and a stop does not wait for it past the grace period.
/// The delivery, still claimed, is handled again once its lease lapses.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stop_does_not_wait_past_its_grace_for_a_stuck_record() {
    let cluster = common::postgres::Cluster::start();
    let inbox = Arc::new(
        voyado_webhooks::PostgresInbox::connect(&cluster.url())
            .await
            .unwrap(),
    );
    let webhook = webhook(Duration::from_secs(2));
    let probe = Probe::slow(Duration::from_millis(300));
    assert_eq!(accept(&webhook, &*inbox, "msg_r", &body("slow")).await, 200);
    let (stop, task) = spawn_worker(
        Worker::new(webhook.clone(), inbox.clone(), probe.clone()).grace_period(Duration::from_millis(200)),
    );
    assert!(started(&probe, "msg_r", Duration::from_secs(2)).await);
    cluster.stop();
    let probe_ref = &*probe;
    assert!(
        eventually(Duration::from_secs(2), || async move {
            probe_ref.finished() == ["msg_r"]
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let signalled = Instant::now();
    stop.send(()).unwrap();
    let stopped = task.await.unwrap();
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(
        (stopped.unrecorded, stopped.processed.handled),
        (1, 0),
        "{stopped:?}"
    );

    cluster.start_again();
    let (stop, task) = spawn_worker(
        Worker::new(webhook, inbox.clone(), probe.clone()).poll_interval(Duration::from_millis(100)),
    );
    assert!(reaches(&*inbox, "msg_r", State::Done, Duration::from_secs(10)).await);
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().processed.handled, 1);
    assert_eq!(probe.runs("msg_r"), 2);
}
