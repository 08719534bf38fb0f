//! Transactional handlers against the real databases (a SQLite file, and the
//! PostgreSQL server the tests start): what a handler writes in the inbox's
//! transaction is committed with the delivery's mark or not at all. A dropped
//! attempt, an error, a panic, a timeout or a lost claim leaves none of its
//! writes, and the retry applies them once; the effects table has no unique
//! key, so a second application would show.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::deliveries::{SECRET, accept, body};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};
use tokio::sync::Notify;
use voyado_webhooks::{
    Context, Envelope, Handles, InTransaction, Inbox, LoyaltyAddPoints, PostgresInbox, RetryPolicy,
    SqliteInbox, State, TransactionalHandler, TransactionalInbox, Webhook, Worker,
};

/// What the handler does after its write, by message id and attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Returns an error.
    Fail,
    /// Panics.
    Panic,
    /// Waits until released.
    Hang,
    /// Sleeps this long (past the worker's handler timeout).
    Stall(Duration),
}

/// The text the injected panics carry, kept out of the test's output.
const INJECTED: &str = "injected panic after writing";

/// Which fault a message id's attempt meets.
type Faults = Box<dyn Fn(&str, u32) -> Fault + Send + Sync>;

/// Inserts `(message_id, attempt)` into `effects` (no unique key), then does
/// what its fault says.
struct Effects {
    fault: Faults,
    written: Notify,
    release: Notify,
}

impl Effects {
    fn new(fault: impl Fn(&str, u32) -> Fault + Send + Sync + 'static) -> Effects {
        Effects {
            fault: Box::new(fault),
            written: Notify::new(),
            release: Notify::new(),
        }
    }

    async fn after_write(&self, ctx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.written.notify_one();
        match (self.fault)(ctx.message_id(), ctx.attempt()) {
            Fault::None => Ok(()),
            Fault::Fail => Err("failed after writing".into()),
            Fault::Panic => panic!("{INJECTED}"),
            Fault::Hang => {
                self.release.notified().await;
                Ok(())
            }
            Fault::Stall(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }
}

macro_rules! effects_on {
    ($db:ty, $conn:ty) => {
        impl TransactionalHandler<$db> for Effects {
            type Error = Box<dyn std::error::Error + Send + Sync>;

            async fn loyalty_add_points(
                &self,
                tx: &mut $conn,
                ctx: &Context,
                _: &Envelope<LoyaltyAddPoints>,
            ) -> Result<(), Self::Error> {
                sqlx::query("INSERT INTO effects (message_id, attempt) VALUES ($1, $2)")
                    .bind(ctx.message_id())
                    .bind(i64::from(ctx.attempt()))
                    .execute(&mut *tx)
                    .await?;
                self.after_write(ctx).await
            }
        }
    };
}
effects_on!(Sqlite, SqliteConnection);
effects_on!(Postgres, PgConnection);

/// The effects table beside each inbox, and a direct write to it.
trait EffectsTable: TransactionalInbox + 'static {
    async fn create_effects(&self);
    /// Every `(message_id, attempt)` committed, in no order.
    async fn effects(&self) -> Vec<(String, i64)>;
    /// Writes an effect in `tx`, as a handler would.
    async fn write_in(&self, tx: &mut sqlx::Transaction<'static, Self::Database>, id: &str, attempt: i64);
}

macro_rules! effects_table {
    ($inbox:ty, $serial:literal) => {
        impl EffectsTable for $inbox {
            async fn create_effects(&self) {
                sqlx::raw_sql(concat!(
                    "CREATE TABLE effects (n ",
                    $serial,
                    ", message_id TEXT NOT NULL, attempt BIGINT NOT NULL)"
                ))
                .execute(self.pool())
                .await
                .unwrap();
            }

            async fn effects(&self) -> Vec<(String, i64)> {
                sqlx::query_as("SELECT message_id, attempt FROM effects")
                    .fetch_all(self.pool())
                    .await
                    .unwrap()
            }

            async fn write_in(
                &self,
                tx: &mut sqlx::Transaction<'static, Self::Database>,
                id: &str,
                attempt: i64,
            ) {
                sqlx::query("INSERT INTO effects (message_id, attempt) VALUES ($1, $2)")
                    .bind(id)
                    .bind(attempt)
                    .execute(&mut **tx)
                    .await
                    .unwrap();
            }
        }
    };
}
effects_table!(SqliteInbox, "INTEGER PRIMARY KEY");
effects_table!(PostgresInbox, "BIGSERIAL PRIMARY KEY");

/// A lease of `lease`, failed attempts retried at once, ten in all.
fn webhook(lease: Duration) -> Webhook {
    Webhook::new(SECRET)
        .unwrap()
        .with_lease(lease)
        .with_retry_policy(RetryPolicy::new(10).with_backoff(Duration::ZERO, Duration::ZERO))
}

/// Hides the injected panics' messages, and only those.
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|message| message == INJECTED);
        if !injected {
            default(info);
        }
    }));
}

/// The process future dropped after the handler wrote but before the commit
/// (a killed process, a cancelled request): nothing of the write is visible,
/// and the retry after the lease applies it once.
async fn dropped_attempt_leaves_nothing<I: EffectsTable>(inbox: &I)
where
    InTransaction<Effects>: Handles<I>,
{
    let webhook = webhook(Duration::from_millis(300));
    assert_eq!(accept(&webhook, inbox, "msg_dropped", &body("c-1")).await, 200);
    let handler = InTransaction(Effects::new(|_, attempt| match attempt {
        1 => Fault::Hang,
        _ => Fault::None,
    }));
    tokio::select! {
        processed = webhook.process(inbox, &handler, 10) => panic!("the hung attempt ended: {processed:?}"),
        () = handler.0.written.notified() => {}
    }
    assert_eq!(inbox.effects().await, []);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let processed = webhook.process(inbox, &handler, 10).await.unwrap();
    assert_eq!(processed.handled, 1, "{processed:?}");
    assert_eq!(inbox.effects().await, [("msg_dropped".to_owned(), 2)]);
    assert_eq!(
        inbox.get("msg_dropped").await.unwrap().unwrap().state,
        State::Done
    );
}

/// A handler's error or panic rolls its write back and records the attempt
/// as failed; the retry applies it once.
async fn failures_roll_back<I: EffectsTable>(inbox: &I)
where
    InTransaction<Effects>: Handles<I>,
{
    let webhook = webhook(Duration::from_secs(5));
    for id in ["msg_fails", "msg_panics"] {
        assert_eq!(accept(&webhook, inbox, id, &body("c-2")).await, 200);
    }
    let handler = InTransaction(Effects::new(|id, attempt| match (id, attempt) {
        ("msg_fails", 1) => Fault::Fail,
        ("msg_panics", 1) => Fault::Panic,
        _ => Fault::None,
    }));
    let processed = webhook.process(inbox, &handler, 10).await.unwrap();
    assert_eq!((processed.handled, processed.failed), (0, 2), "{processed:?}");
    assert_eq!(inbox.effects().await, []);
    let errors: Vec<String> = inbox
        .list(State::Failed, 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|record| record.last_error)
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("failed after writing")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("the handler panicked")),
        "{errors:?}"
    );
    let processed = webhook.process(inbox, &handler, 10).await.unwrap();
    assert_eq!(processed.handled, 2, "{processed:?}");
    let mut effects = inbox.effects().await;
    effects.sort();
    assert_eq!(
        effects,
        [("msg_fails".to_owned(), 2), ("msg_panics".to_owned(), 2)]
    );
}

/// A commit fenced by an attempt whose claim was taken over is refused, and
/// what its transaction wrote is rolled back; the new holder's commits.
async fn taken_over_commit_is_refused<I: EffectsTable>(inbox: &I)
where
    InTransaction<Effects>: Handles<I>,
{
    let webhook = webhook(Duration::from_secs(5));
    assert_eq!(accept(&webhook, inbox, "msg_taken", &body("c-3")).await, 200);
    let lease = Duration::from_millis(50);
    let now = voyado_webhooks::OffsetDateTime::now_utc;
    let first = inbox.claim_due(1, lease, 5, now()).await.unwrap();
    assert_eq!(first[0].attempts, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = inbox.claim_due(1, lease, 5, now()).await.unwrap();
    assert_eq!(second[0].attempts, 2);

    let mut old = inbox.begin().await.unwrap();
    inbox.write_in(&mut old, "msg_taken", 1).await;
    assert!(!inbox.commit_done(old, "msg_taken", 1).await.unwrap());
    assert_eq!(inbox.effects().await, []);
    assert_eq!(
        inbox.get("msg_taken").await.unwrap().unwrap().state,
        State::Processing
    );

    let mut new = inbox.begin().await.unwrap();
    inbox.write_in(&mut new, "msg_taken", 2).await;
    assert!(inbox.commit_done(new, "msg_taken", 2).await.unwrap());
    assert_eq!(inbox.effects().await, [("msg_taken".to_owned(), 2)]);
    assert_eq!(inbox.get("msg_taken").await.unwrap().unwrap().state, State::Done);
}

/// `count` deliveries, each accepted twice, handled by two workers whose
/// transactional handler fails, panics or outlives its timeout after writing
/// on some first attempts: every effect is committed exactly once.
///
/// `stalls` makes ten of them outlive a 150 ms timeout: on PostgreSQL only,
/// since on SQLite a stalled transaction holds the one write lock, and the
/// attempts waiting behind it time out too.
async fn exactly_once_with_two_workers<I: EffectsTable>(
    first: Arc<I>,
    second: Arc<I>,
    count: usize,
    stalls: bool,
) where
    InTransaction<Effects>: Handles<I>,
{
    quiet_injected_panics();
    let webhook = Arc::new(webhook(Duration::from_secs(5)));
    for i in 0..count {
        let (id, body) = (format!("msg_once_{i}"), body(&format!("c-{}", i % 100)));
        assert_eq!(accept(&webhook, &*first, &id, &body).await, 200);
        assert_eq!(accept(&webhook, &*second, &id, &body).await, 200);
    }
    assert_eq!(first.counts().await.unwrap().pending, count as u64);
    let fault = move |id: &str, attempt: u32| {
        let i: usize = id.trim_start_matches("msg_once_").parse().unwrap();
        match attempt {
            1 if stalls && i % 1000 == 3 => Fault::Stall(Duration::from_millis(400)),
            1 if i % 101 == 0 => Fault::Panic,
            1 if i % 7 == 0 => Fault::Fail,
            _ => Fault::None,
        }
    };
    let stop = Arc::new(Notify::new());
    let workers: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .map(|inbox| {
            let worker = Worker::new(
                webhook.clone(),
                inbox,
                Arc::new(InTransaction(Effects::new(fault))),
            )
            .concurrency(4)
            .handler_timeout(Duration::from_millis(if stalls { 150 } else { 5000 }))
            .poll_interval(Duration::from_millis(50));
            let stop = stop.clone();
            tokio::spawn(worker.run_until(async move { stop.notified().await }))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while first.counts().await.unwrap().done < count as u64 {
        assert!(Instant::now() < deadline, "{:?}", first.counts().await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.notify_waiters();
    let mut handled = 0;
    for worker in workers {
        let stopped = worker.await.unwrap().unwrap();
        assert_eq!(stopped.unrecorded, 0, "{stopped:?}");
        handled += stopped.processed.handled;
    }
    assert_eq!(handled, count);
    let mut applied: HashMap<String, Vec<i64>> = HashMap::new();
    for (id, attempt) in first.effects().await {
        applied.entry(id).or_default().push(attempt);
    }
    assert_eq!(applied.len(), count);
    let twice: Vec<_> = applied
        .iter()
        .filter(|(_, attempts)| attempts.len() != 1)
        .collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    // The faulted first attempts left nothing: their effect is a retry's.
    // (Others may be retried too: on SQLite, waiting for the write lock
    // behind a stalled handler counts against the timeout.)
    for (id, attempts) in &applied {
        if fault(id, 1) != Fault::None {
            assert!(attempts[0] > 1, "{id}: {attempts:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_transactional_handlers() {
    let inbox = Arc::new(
        SqliteInbox::connect(&common::sqlite_file("transactional"))
            .await
            .unwrap(),
    );
    inbox.create_effects().await;
    dropped_attempt_leaves_nothing(&*inbox).await;
    sqlx::raw_sql("DELETE FROM effects")
        .execute(inbox.pool())
        .await
        .unwrap();
    failures_roll_back(&*inbox).await;
    sqlx::raw_sql("DELETE FROM effects")
        .execute(inbox.pool())
        .await
        .unwrap();
    taken_over_commit_is_refused(&*inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_exactly_once_with_two_workers() {
    let inbox = Arc::new(SqliteInbox::connect(&common::sqlite_file("once")).await.unwrap());
    inbox.create_effects().await;
    exactly_once_with_two_workers(inbox.clone(), inbox, 10_000, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_transactional_handlers() {
    let cluster = common::postgres::Cluster::start();
    let inbox = PostgresInbox::connect(&cluster.url()).await.unwrap();
    inbox.create_effects().await;
    dropped_attempt_leaves_nothing(&inbox).await;
    sqlx::raw_sql("DELETE FROM effects")
        .execute(inbox.pool())
        .await
        .unwrap();
    failures_roll_back(&inbox).await;
    sqlx::raw_sql("DELETE FROM effects")
        .execute(inbox.pool())
        .await
        .unwrap();
    taken_over_commit_is_refused(&inbox).await;
}

/// Two instances (two pools): the first's handler hangs after writing until
/// its lease lapses and the second has taken the delivery over and committed;
/// then the first's commit is refused and its write is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_lease_refuses_the_old_holders_commit() {
    let cluster = common::postgres::Cluster::start();
    let first = Arc::new(PostgresInbox::connect(&cluster.url()).await.unwrap());
    let second = PostgresInbox::connect(&cluster.url()).await.unwrap();
    first.create_effects().await;
    let webhook = Arc::new(webhook(Duration::from_millis(300)));
    assert_eq!(accept(&webhook, &*first, "msg_lost", &body("c-4")).await, 200);
    let hangs = Arc::new(InTransaction(Effects::new(|_, attempt| match attempt {
        1 => Fault::Hang,
        _ => Fault::None,
    })));
    let old = {
        let (webhook, first, hangs) = (webhook.clone(), first.clone(), hangs.clone());
        tokio::spawn(async move { webhook.process(&*first, &*hangs, 10).await.unwrap() })
    };
    hangs.0.written.notified().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = webhook
        .process(&second, &InTransaction(Effects::new(|_, _| Fault::None)), 10)
        .await
        .unwrap();
    assert_eq!(taken.handled, 1, "{taken:?}");
    hangs.0.release.notify_one();
    let refused = old.await.unwrap();
    assert_eq!((refused.handled, refused.lost), (0, 1), "{refused:?}");
    assert_eq!(first.effects().await, [("msg_lost".to_owned(), 2)]);
    assert_eq!(first.get("msg_lost").await.unwrap().unwrap().state, State::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_exactly_once_with_two_workers() {
    let cluster = common::postgres::Cluster::start();
    let first = Arc::new(PostgresInbox::connect(&cluster.url()).await.unwrap());
    let second = Arc::new(PostgresInbox::connect(&cluster.url()).await.unwrap());
    first.create_effects().await;
    exactly_once_with_two_workers(first, second, 10_000, true).await;
}

/// The server goes away while a transactional handler has written and waits:
/// whether its commit fails or its lease lapses first, none of its write
/// stays, and once the server is back the retry applies it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_mid_transaction_applies_once() {
    let cluster = common::postgres::Cluster::start();
    let inbox = Arc::new(PostgresInbox::connect(&cluster.url()).await.unwrap());
    inbox.create_effects().await;
    let webhook = Arc::new(webhook(Duration::from_secs(1)));
    assert_eq!(accept(&webhook, &*inbox, "msg_outage", &body("c-5")).await, 200);
    let handler = Arc::new(InTransaction(Effects::new(|_, attempt| match attempt {
        1 => Fault::Hang,
        _ => Fault::None,
    })));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker =
        Worker::new(webhook, inbox.clone(), handler.clone()).poll_interval(Duration::from_millis(100));
    let task = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    handler.0.written.notified().await;
    cluster.stop();
    handler.0.release.notify_one();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    while inbox.get("msg_outage").await.ok().flatten().map(|r| r.state) != Some(State::Done) {
        assert!(Instant::now() < deadline, "not done after the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(()).unwrap();
    let stopped = task.await.unwrap().unwrap();
    assert_eq!(stopped.processed.handled, 1, "{stopped:?}");
    let effects = inbox.effects().await;
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert!(
        effects[0].1 >= 2,
        "the first attempt's write is gone: {effects:?}"
    );
}
