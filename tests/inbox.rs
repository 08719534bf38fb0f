//! The durable inbox: one behaviour suite, run against every backend here
//! (`MemoryInbox`, and `SqliteInbox` on a real SQLite file), plus the faults
//! that need a real database: a restart between `accept` and `process`, and
//! workers sharing one inbox.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use voyado_webhooks::{
    AsyncEventHandler, Claim, Context, Envelope, EventType, Handled, IdempotencyStore, Inbox,
    LoyaltyAddPoints, MemoryInbox, OffsetDateTime, Outcome, ReceiveError, RetryPolicy, State, Webhook,
};

use common::deliveries::{SECRET, accept, body, now};

/// Retries at once, three attempts, short leases: so a test needs no waiting.
fn webhook() -> Webhook {
    Webhook::new(SECRET)
        .unwrap()
        .with_lease(Duration::from_millis(300))
        .with_retry_policy(RetryPolicy::new(3).with_backoff(Duration::ZERO, Duration::ZERO))
}

/// Applies points, recording each application with its message id and attempt;
/// fails while `broken`.
#[derive(Default)]
struct Ledger {
    broken: AtomicBool,
    applied: Mutex<Vec<(String, u32)>>,
}

impl Ledger {
    fn applied(&self) -> Vec<(String, u32)> {
        self.applied.lock().unwrap().clone()
    }
}

impl AsyncEventHandler for Ledger {
    type Error = std::io::Error;

    async fn loyalty_add_points(
        &self,
        ctx: &Context,
        _: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), Self::Error> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("ledger offline"));
        }
        self.applied
            .lock()
            .unwrap()
            .push((ctx.message_id().to_owned(), ctx.attempt()));
        Ok(())
    }

    async fn unhandled(
        &self,
        _: &Context,
        event_type: &EventType,
        _: Option<&str>,
    ) -> Result<(), Self::Error> {
        Err(std::io::Error::other(format!("unexpected {event_type}")))
    }
}

/// Everything an inbox must do, whatever keeps it.
async fn behaviour<I: Inbox + IdempotencyStore>(inbox: I) {
    let webhook = webhook();
    let ledger = Ledger::default();

    // Accept: stored once, durable before 200; forgeries never stored.
    assert_eq!(accept(&webhook, &inbox, "msg_1", &body("c-1")).await, 200);
    assert_eq!(
        accept(&webhook, &inbox, "msg_1", &body("c-1")).await,
        200,
        "a duplicate"
    );
    let forged = webhook
        .accept(
            &webhook.signed_headers("msg_x", now(), b"{}"),
            &body("c-x"),
            &inbox,
        )
        .await;
    assert!(matches!(forged, Err(ReceiveError::Verify(_))), "{forged:?}");
    let counts = inbox.counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed, counts.done), (1, 0, 0));
    let stored = inbox.get("msg_1").await.unwrap().unwrap();
    assert_eq!(stored.body, body("c-1"), "the raw body, exactly");
    assert_eq!(stored.state, State::Pending);

    // Process: handled once, with its attempt counted.
    let processed = webhook.process(&inbox, &ledger, 10).await.unwrap();
    assert_eq!(processed.handled, 1);
    assert_eq!(ledger.applied(), [("msg_1".to_owned(), 1)]);
    assert_eq!(inbox.get("msg_1").await.unwrap().unwrap().state, State::Done);
    assert_eq!(webhook.process(&inbox, &ledger, 10).await.unwrap().handled, 0);
    assert_eq!(accept(&webhook, &inbox, "msg_1", &body("c-1")).await, 200);
    assert_eq!(
        webhook.process(&inbox, &ledger, 10).await.unwrap().handled,
        0,
        "not again"
    );

    // A failing handler: retried, then dead; replayed once fixed.
    assert_eq!(accept(&webhook, &inbox, "msg_2", &body("c-2")).await, 200);
    ledger.broken.store(true, Ordering::SeqCst);
    for attempt in 1..=3 {
        let processed = webhook.process(&inbox, &ledger, 10).await.unwrap();
        let record = inbox.get("msg_2").await.unwrap().unwrap();
        assert_eq!(record.attempts, attempt);
        assert!(
            record.last_error.as_deref().unwrap().contains("ledger offline"),
            "{record:?}"
        );
        if attempt < 3 {
            assert_eq!((processed.failed, record.state), (1, State::Failed));
        } else {
            assert_eq!((processed.dead, record.state), (1, State::Dead));
        }
    }
    assert_eq!(
        webhook.process(&inbox, &ledger, 10).await.unwrap(),
        Default::default(),
        "dead stays dead"
    );
    let dead = inbox.list(State::Dead, 10).await.unwrap();
    assert_eq!(
        dead.iter().map(|r| r.message_id.as_str()).collect::<Vec<_>>(),
        ["msg_2"]
    );
    ledger.broken.store(false, Ordering::SeqCst);
    assert!(inbox.replay("msg_2", OffsetDateTime::now_utc()).await.unwrap());
    assert!(
        !inbox
            .replay("msg_missing", OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    assert_eq!(webhook.process(&inbox, &ledger, 10).await.unwrap().handled, 1);
    assert_eq!(
        ledger.applied().last(),
        Some(&("msg_2".to_owned(), 4)),
        "the fourth attempt"
    );

    // An authentic body that does not parse is kept, failed with its error, and
    // can be replayed.
    let unreadable = br#"{"eventType": "loyalty.addPoints", "payload": {"contactId": "c-3"}}"#;
    assert_eq!(accept(&webhook, &inbox, "msg_3", unreadable).await, 200);
    let record = inbox.get("msg_3").await.unwrap().unwrap();
    assert_eq!(record.state, State::Failed);
    assert!(
        record.last_error.as_deref().unwrap().contains("payload.amount"),
        "{record:?}"
    );
    assert_eq!(record.body, unreadable);
    for _ in 0..3 {
        webhook.process(&inbox, &ledger, 10).await.unwrap();
    }
    assert_eq!(inbox.get("msg_3").await.unwrap().unwrap().state, State::Dead);
    assert!(inbox.replay("msg_3", OffsetDateTime::now_utc()).await.unwrap());
    assert_eq!(inbox.get("msg_3").await.unwrap().unwrap().state, State::Pending);

    // A worker that dies mid-batch: its claims lapse with the lease and are taken
    // again, as a later attempt.
    assert_eq!(accept(&webhook, &inbox, "msg_4", &body("c-4")).await, 200);
    let lost = inbox
        .claim_due(10, Duration::from_millis(300), 3, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(lost.iter().any(|r| r.message_id == "msg_4"));
    assert_eq!(
        webhook.process(&inbox, &ledger, 10).await.unwrap().handled,
        0,
        "still claimed"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    ledger.broken.store(false, Ordering::SeqCst);
    let processed = webhook.process(&inbox, &ledger, 10).await.unwrap();
    assert!(processed.handled >= 1, "{processed:?}");
    assert!(ledger.applied().contains(&("msg_4".to_owned(), 2)));
    // The dead worker's outcome, recorded late, changes nothing.
    inbox.mark_failed("msg_4", 1, "late", None).await.unwrap();
    assert_eq!(inbox.get("msg_4").await.unwrap().unwrap().state, State::Done);

    // Several marked done in one call, each fenced by its own attempt.
    for (id, contact) in [("msg_6", "c-6"), ("msg_7", "c-7")] {
        assert_eq!(accept(&webhook, &inbox, id, &body(contact)).await, 200);
    }
    let claimed = inbox
        .claim_due(10, Duration::from_secs(60), 3, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let mut ids: Vec<(&str, u32)> = claimed
        .iter()
        .map(|r| (r.message_id.as_str(), r.attempts))
        .collect();
    ids.sort();
    assert_eq!(ids, [("msg_6", 1), ("msg_7", 1)]);
    let done = |message_id, attempt| Outcome::Done { message_id, attempt };
    let recorded = inbox
        .record_all(&[done("msg_6", 1), done("msg_7", 2), done("msg_missing", 1)])
        .await
        .unwrap();
    assert_eq!(recorded, [true, false, false]);
    assert_eq!(inbox.get("msg_6").await.unwrap().unwrap().state, State::Done);
    assert_eq!(
        inbox.get("msg_7").await.unwrap().unwrap().state,
        State::Processing,
        "another attempt's claim marks nothing"
    );
    assert_eq!(inbox.record_all(&[done("msg_7", 1)]).await.unwrap(), [true]);
    assert!(inbox.record_all(&[]).await.unwrap().is_empty());
    assert_eq!(inbox.get("msg_7").await.unwrap().unwrap().state, State::Done);

    // Failures in the same statement: one retried, one dead, one fenced out.
    for id in ["msg_f1", "msg_f2", "msg_f3"] {
        assert_eq!(accept(&webhook, &inbox, id, &body("c-f")).await, 200);
    }
    let claimed = inbox
        .claim_due(10, Duration::from_secs(60), 3, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let retry_at = OffsetDateTime::now_utc() + Duration::from_secs(600);
    let failed = |message_id, attempt, retry_at| Outcome::Failed {
        message_id,
        attempt,
        error: "it broke",
        retry_at,
    };
    let recorded = inbox
        .record_all(&[
            failed("msg_f1", 1, Some(retry_at)),
            failed("msg_f2", 1, None),
            failed("msg_f3", 2, Some(retry_at)),
        ])
        .await
        .unwrap();
    assert_eq!(recorded, [true, true, false]);
    let f1 = inbox.get("msg_f1").await.unwrap().unwrap();
    assert_eq!(
        (f1.state, f1.last_error.as_deref()),
        (State::Failed, Some("it broke"))
    );
    assert_eq!(f1.due_at.unix_timestamp(), retry_at.unix_timestamp());
    let f2 = inbox.get("msg_f2").await.unwrap().unwrap();
    assert_eq!(
        (f2.state, f2.last_error.as_deref()),
        (State::Dead, Some("it broke"))
    );
    assert_eq!(
        inbox.get("msg_f3").await.unwrap().unwrap().state,
        State::Processing
    );
    assert_eq!(inbox.record_all(&[done("msg_f3", 1)]).await.unwrap(), [true]);

    // Operations.
    let counts = inbox.counts().await.unwrap();
    assert_eq!((counts.done, counts.failed, counts.dead), (6, 1, 2), "{counts:?}");
    assert_eq!(counts.oldest_due, None, "{counts:?}");
    assert_eq!(
        inbox
            .purge_done(OffsetDateTime::now_utc() + time::Duration::SECOND)
            .await
            .unwrap(),
        6
    );
    assert_eq!(inbox.counts().await.unwrap().done, 0);
    assert!(inbox.get("msg_1").await.unwrap().is_none());

    // The inbox is an idempotency store for inline handling too.
    assert_eq!(
        inbox.claim("inline_1", Duration::from_secs(60)).await.unwrap(),
        Claim::New
    );
    assert_eq!(
        inbox.claim("inline_1", Duration::from_secs(60)).await.unwrap(),
        Claim::InProgress
    );
    inbox.release("inline_1").await.unwrap();
    let body = body("c-5");
    let handled = webhook
        .handle(
            &webhook.signed_headers("inline_1", now(), &body),
            &body,
            &inbox,
            &ledger,
        )
        .await
        .unwrap();
    assert!(matches!(handled, Handled::Processed(_)));
    assert_eq!(
        inbox.claim("inline_1", Duration::from_secs(60)).await.unwrap(),
        Claim::Done
    );
    // A claim whose holder vanished lapses with its lease.
    assert_eq!(
        inbox.claim("inline_2", Duration::from_millis(100)).await.unwrap(),
        Claim::New
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        inbox.claim("inline_2", Duration::from_secs(60)).await.unwrap(),
        Claim::New
    );
}

#[tokio::test]
async fn memory_inbox() {
    behaviour(MemoryInbox::new()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_inbox() {
    let inbox = voyado_webhooks::SqliteInbox::connect(&common::sqlite_file("behaviour"))
        .await
        .unwrap();
    behaviour(inbox).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_tables_can_be_renamed() {
    let tables = voyado_webhooks::Tables::new("shop_deliveries", "shop_claims").unwrap();
    let url = common::sqlite_file("renamed");
    let inbox = voyado_webhooks::SqliteInbox::connect_with(&url, tables)
        .await
        .unwrap();
    behaviour(inbox).await;
}

/// Everything accepted, then the process gone (every handle dropped, the pool
/// closed): a new process on the same file handles every delivery, once.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_deliveries_survive_a_restart_between_accept_and_process() {
    let url = common::sqlite_file("restart");
    let webhook = webhook();
    {
        let inbox = voyado_webhooks::SqliteInbox::connect(&url).await.unwrap();
        for i in 0..50 {
            assert_eq!(
                accept(&webhook, &inbox, &format!("msg_{i}"), &body(&format!("c-{i}"))).await,
                200
            );
        }
        inbox.pool().close().await;
    }
    let inbox = voyado_webhooks::SqliteInbox::connect(&url).await.unwrap();
    let ledger = Ledger::default();
    assert_eq!(webhook.process(&inbox, &ledger, 100).await.unwrap().handled, 50);
    let mut applied: Vec<String> = ledger.applied().into_iter().map(|(id, _)| id).collect();
    applied.sort();
    applied.dedup();
    assert_eq!(applied.len(), 50);
    assert_eq!(inbox.counts().await.unwrap().done, 50);
}

/// Two workers on one inbox, with every delivery accepted twice: each is
/// handled exactly once, on its first attempt if a batch fits in the lease.
async fn two_workers<I: Inbox + 'static>(inbox: std::sync::Arc<I>, deliveries: usize, lease: Duration) {
    two_workers_on([inbox.clone(), inbox], deliveries, lease).await;
}

/// [`two_workers`], each worker with its own handle on the inbox (its own
/// connection pool, for a database).
async fn two_workers_on<I: Inbox + 'static>(
    inboxes: [std::sync::Arc<I>; 2],
    deliveries: usize,
    lease: Duration,
) {
    let webhook = std::sync::Arc::new(webhook().with_lease(lease));
    let inbox = inboxes[0].clone();
    // Accepted by 16 concurrent requests, each delivery twice.
    let senders: Vec<_> = (0..16)
        .map(|sender| {
            let (webhook, inbox) = (webhook.clone(), inbox.clone());
            tokio::spawn(async move {
                for i in (sender..deliveries).step_by(16) {
                    for _ in 0..2 {
                        assert_eq!(
                            accept(&webhook, &*inbox, &format!("msg_{i}"), &body("c")).await,
                            200
                        );
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let ledger = std::sync::Arc::new(Ledger::default());
    let workers: Vec<_> = inboxes
        .into_iter()
        .map(|inbox| {
            let (webhook, ledger) = (webhook.clone(), ledger.clone());
            tokio::spawn(async move {
                let mut handled = 0;
                loop {
                    let processed = webhook.process(&*inbox, &*ledger, 25).await.unwrap();
                    if processed.handled == 0 {
                        return handled;
                    }
                    handled += processed.handled;
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert_eq!(total, deliveries);
    let applied = ledger.applied();
    assert_eq!(applied.len(), deliveries, "none twice");
    if lease >= Duration::from_secs(30) {
        assert!(applied.iter().all(|(_, attempt)| *attempt == 1));
    }
    assert_eq!(inbox.counts().await.unwrap().done, deliveries as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_inbox_two_workers() {
    two_workers(
        std::sync::Arc::new(MemoryInbox::new()),
        500,
        Duration::from_secs(30),
    )
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox_two_workers() {
    let inbox = voyado_webhooks::SqliteInbox::connect(&common::sqlite_file("workers"))
        .await
        .unwrap();
    // A lease a batch fits in: each SQLite commit is synced to disk.
    two_workers(std::sync::Arc::new(inbox), 500, Duration::from_secs(30)).await;
}

/// A handler that takes 100 ms a delivery, batches of 5 and a 250 ms lease: the
/// lease covers the batch, so the deliveries whose lease lapsed before their
/// turn are skipped (another worker may hold them by then) and handled later,
/// once each. Before they were skipped, they were handled anyway: two workers on
/// SQLite with a lease shorter than a batch handled 5 of 500 deliveries twice.
#[tokio::test]
async fn deliveries_whose_lease_lapsed_in_the_batch_are_left_for_later() {
    struct Slow(Ledger);
    impl AsyncEventHandler for Slow {
        type Error = std::io::Error;
        async fn loyalty_add_points(
            &self,
            ctx: &Context,
            e: &Envelope<LoyaltyAddPoints>,
        ) -> Result<(), Self::Error> {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.0.loyalty_add_points(ctx, e).await
        }
    }
    let webhook = webhook().with_lease(Duration::from_millis(250));
    let inbox = MemoryInbox::new();
    for i in 0..5 {
        assert_eq!(
            accept(&webhook, &inbox, &format!("msg_{i}"), &body("c")).await,
            200
        );
    }
    let slow = Slow(Ledger::default());
    let first = webhook.process(&inbox, &slow, 5).await.unwrap();
    assert!(
        first.skipped >= 2 && first.handled + first.skipped == 5,
        "{first:?}"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut handled = first.handled;
    while handled < 5 {
        let next = webhook.process(&inbox, &slow, 1).await.unwrap();
        assert_eq!(next.handled, 1, "{next:?}");
        handled += 1;
    }
    let applied = slow.0.applied();
    assert_eq!(applied.len(), 5, "none twice: {applied:?}");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_inbox() {
    let cluster = common::postgres::Cluster::start();
    let inbox = voyado_webhooks::PostgresInbox::connect(&cluster.url())
        .await
        .unwrap();
    behaviour(inbox).await;
    let tables = voyado_webhooks::Tables::new("shop_deliveries", "shop_claims").unwrap();
    let renamed = voyado_webhooks::PostgresInbox::connect_with(&cluster.url(), tables)
        .await
        .unwrap();
    behaviour(renamed).await;
}

/// Two workers, each with its own pool on one PostgreSQL server, and 10,000
/// deliveries each accepted twice: each handled exactly once.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_workers_with_separate_pools() {
    let cluster = common::postgres::Cluster::start();
    let url = cluster.url();
    let connect = || voyado_webhooks::PostgresInbox::connect(&url);
    let (first, second) = (connect().await.unwrap(), connect().await.unwrap());
    let inboxes = [std::sync::Arc::new(first), std::sync::Arc::new(second)];
    two_workers_on(inboxes, 10_000, Duration::from_secs(30)).await;
}

/// The database goes away mid-run: `accept` answers 503 (Svix will retry) and
/// `process` fails, losing nothing; once it is back, the retried deliveries are
/// accepted and every delivery is handled once.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_outage_loses_nothing() {
    let cluster = common::postgres::Cluster::start();
    let inbox = voyado_webhooks::PostgresInbox::connect(&cluster.url())
        .await
        .unwrap();
    let webhook = webhook();
    let ledger = Ledger::default();
    for i in 0..20 {
        assert_eq!(
            accept(&webhook, &inbox, &format!("msg_{i}"), &body("c")).await,
            200
        );
    }
    assert_eq!(webhook.process(&inbox, &ledger, 10).await.unwrap().handled, 10);

    cluster.stop();
    let mut refused = Vec::new();
    for i in 20..30 {
        let status = accept(&webhook, &inbox, &format!("msg_{i}"), &body("c")).await;
        assert_eq!(status, 503, "msg_{i}");
        refused.push(format!("msg_{i}"));
    }
    assert!(webhook.process(&inbox, &ledger, 10).await.is_err());

    cluster.start_again();
    // Svix retries what was refused.
    for id in &refused {
        assert_eq!(accept(&webhook, &inbox, id, &body("c")).await, 200, "{id}");
    }
    while webhook.process(&inbox, &ledger, 10).await.unwrap().handled > 0 {}
    let mut applied: Vec<String> = ledger.applied().into_iter().map(|(id, _)| id).collect();
    assert_eq!(applied.len(), 30, "none twice");
    applied.sort();
    applied.dedup();
    assert_eq!(applied.len(), 30);
    assert_eq!(inbox.counts().await.unwrap().done, 30);
}

/// A Svix message id says when the message was created: the same on every
/// attempt, on the stored record and in each attempt's context.
#[tokio::test]
async fn created_at_is_read_from_the_message_id_on_every_attempt() {
    #[derive(Default)]
    struct Created(Mutex<Vec<Option<OffsetDateTime>>>);
    impl AsyncEventHandler for Created {
        type Error = std::io::Error;
        async fn loyalty_add_points(
            &self,
            ctx: &Context,
            _: &Envelope<LoyaltyAddPoints>,
        ) -> Result<(), Self::Error> {
            let mut seen = self.0.lock().unwrap();
            seen.push(ctx.created_at());
            match seen.len() {
                1 => Err(std::io::Error::other("first attempt fails")),
                _ => Ok(()),
            }
        }
    }
    let (webhook, inbox, handler) = (webhook(), MemoryInbox::new(), Created::default());
    // Segment's published KSUID: 2017-10-10T04:00:47Z and 181 × 4 ms.
    let id = "msg_0ujtsYcgvSTl8PAuAdqWYSMnLOv";
    let created = OffsetDateTime::from_unix_timestamp_nanos(1_507_608_047_724_000_000).unwrap();
    assert_eq!(accept(&webhook, &inbox, id, &body("c-1")).await, 200);
    assert_eq!(inbox.get(id).await.unwrap().unwrap().created_at(), Some(created));
    assert_eq!(webhook.process(&inbox, &handler, 10).await.unwrap().failed, 1);
    assert_eq!(webhook.process(&inbox, &handler, 10).await.unwrap().handled, 1);
    assert_eq!(*handler.0.lock().unwrap(), [Some(created); 2]);
    // An id that is not a KSUID has none.
    assert_eq!(accept(&webhook, &inbox, "msg_1", &body("c-2")).await, 200);
    assert_eq!(inbox.get("msg_1").await.unwrap().unwrap().created_at(), None);
}

/// `erase_contact`: the bodies of a contact's done and dead deliveries go,
/// their ids stay (a late retry is a duplicate), and the rest is untouched.
async fn erasure<I: Inbox>(inbox: &I) {
    let webhook = webhook();
    let ledger = Ledger::default();
    let body = |id: &str| body(id).into_iter().collect::<Vec<u8>>();
    for (id, contact) in [("msg_e1", "c-e"), ("msg_e2", "c-e"), ("msg_e4", "c-other")] {
        assert_eq!(accept(&webhook, inbox, id, &body(contact)).await, 200);
    }
    assert_eq!(webhook.process(inbox, &ledger, 10).await.unwrap().handled, 3);
    // A dead one, and one still to be handled.
    let unreadable = br#"{"eventType": "loyalty.addPoints", "payload": {"contactId": "c-e"}}"#;
    assert_eq!(accept(&webhook, inbox, "msg_e2dead", unreadable).await, 200);
    for _ in 0..3 {
        webhook.process(inbox, &ledger, 10).await.unwrap();
    }
    assert_eq!(inbox.get("msg_e2dead").await.unwrap().unwrap().state, State::Dead);
    assert_eq!(accept(&webhook, inbox, "msg_e3", &body("c-e")).await, 200);
    let record = inbox.get("msg_e1").await.unwrap().unwrap();
    assert_eq!(record.contact_id.as_deref(), Some("c-e"), "read at accept");

    assert_eq!(inbox.erase_contact("c-e").await.unwrap(), 3);
    for id in ["msg_e1", "msg_e2", "msg_e2dead"] {
        let record = inbox.get(id).await.unwrap().unwrap();
        assert!(record.body.is_empty(), "{id}");
        assert_eq!(
            record.last_error.as_deref(),
            Some(voyado_webhooks::ERASED),
            "{id}"
        );
        assert!(
            !inbox.replay(id, OffsetDateTime::now_utc()).await.unwrap(),
            "{id}: nothing to replay"
        );
    }
    assert_eq!(
        inbox.get("msg_e3").await.unwrap().unwrap().body,
        body("c-e"),
        "still to be handled"
    );
    assert_eq!(inbox.get("msg_e4").await.unwrap().unwrap().body, body("c-other"));
    // Svix's late retry of an erased delivery: a duplicate, nothing stored.
    assert_eq!(accept(&webhook, inbox, "msg_e1", &body("c-e")).await, 200);
    assert!(inbox.get("msg_e1").await.unwrap().unwrap().body.is_empty());
    assert_eq!(inbox.erase_contact("c-e").await.unwrap(), 0, "once");
    assert_eq!(inbox.erase_contact("c-nobody").await.unwrap(), 0);
}

#[tokio::test]
async fn memory_inbox_erases_a_contact() {
    erasure(&MemoryInbox::new()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_inbox_erases_a_contact() {
    let inbox = voyado_webhooks::SqliteInbox::connect(&common::sqlite_file("erase"))
        .await
        .unwrap();
    erasure(&inbox).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_inbox_erases_a_contact() {
    let cluster = common::postgres::Cluster::start();
    let inbox = voyado_webhooks::PostgresInbox::connect(&cluster.url())
        .await
        .unwrap();
    erasure(&inbox).await;
}

/// The deliveries table as the first schema made it, with a delivery in it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const FIRST_SCHEMA: &str = "
CREATE TABLE voyado_deliveries (
    message_id TEXT PRIMARY KEY, timestamp BIGINT NOT NULL, received_at BIGINT NOT NULL,
    body BYTEA NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL, last_error TEXT,
    due_at BIGINT NOT NULL
);
CREATE INDEX voyado_deliveries_due ON voyado_deliveries (state, due_at);
-- Named as a later development version named its index of done states.
CREATE INDEX voyado_deliveries_lane ON voyado_deliveries (state, message_id);
INSERT INTO voyado_deliveries VALUES ('msg_old', 1700000000, 1700000000000, 'x', 'done', 1, NULL, 1700000000000);
";

/// An inbox made by the first schema gains the new columns on `connect`; its
/// delivery reads back, and new ones keep their contact.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn migrated<I: Inbox>(inbox: &I) {
    let old = inbox.get("msg_old").await.unwrap().unwrap();
    assert_eq!(
        (old.state, old.contact_id, old.body),
        (State::Done, None, b"x".to_vec())
    );
    erasure(inbox).await;
}

/// The indexes a migrated table ends with besides its primary key: today's,
/// and none that an earlier version made and this one dropped.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn assert_current_indexes(mut names: Vec<String>) {
    names.retain(|name| name.starts_with("voyado_deliveries_") && !name.ends_with("_pkey"));
    names.sort();
    assert_eq!(
        names,
        [
            "voyado_deliveries_claim_order",
            "voyado_deliveries_contact",
            "voyado_deliveries_done_states",
            "voyado_deliveries_lane_held",
        ]
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_inbox_migrates_a_table_of_the_first_schema() {
    let url = common::sqlite_file("migrate");
    {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        sqlx::raw_sql(&FIRST_SCHEMA.replace("BYTEA", "BLOB"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let inbox = voyado_webhooks::SqliteInbox::connect(&url).await.unwrap();
    migrated(&inbox).await;
    assert_current_indexes(
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'voyado_deliveries'",
        )
        .fetch_all(inbox.pool())
        .await
        .unwrap(),
    );
    // Connecting again changes nothing.
    let again = voyado_webhooks::SqliteInbox::connect(&url).await.unwrap();
    assert!(again.get("msg_old").await.unwrap().is_some());
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_inbox_migrates_a_table_of_the_first_schema() {
    let cluster = common::postgres::Cluster::start();
    {
        let pool = sqlx::PgPool::connect(&cluster.url()).await.unwrap();
        sqlx::raw_sql(FIRST_SCHEMA).execute(&pool).await.unwrap();
        pool.close().await;
    }
    // Two connecting at once: both migrate, neither fails.
    let url = cluster.url();
    let (first, second) = tokio::join!(
        voyado_webhooks::PostgresInbox::connect(&url),
        voyado_webhooks::PostgresInbox::connect(&url)
    );
    let (inbox, _) = (first.unwrap(), second.unwrap());
    migrated(&inbox).await;
    assert_current_indexes(
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE tablename = 'voyado_deliveries'")
            .fetch_all(inbox.pool())
            .await
            .unwrap(),
    );
}
