//! Handling inline (`Webhook::handle`) with leased claims: every fault a
//! delivery can meet while its handler runs, against the memory store. A retry
//! during a running attempt is answered 409, never 200; a failed, panicking or
//! dropped attempt leaves the delivery to be handled by the next retry; a store
//! that fails answers 503 without running the handler; a handled one is a
//! duplicate.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use voyado_webhooks::{
    AsyncEventHandler, Claim, Context, Envelope, Handled, IdempotencyStore, LoyaltyAddPoints,
    MemoryIdempotencyStore, OffsetDateTime, ReceiveError, Webhook,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &[u8] =
    br#"{"eventType": "loyalty.addPoints", "id": "e-1", "payload": {"amount": 10, "contactId": "c-1"}}"#;

/// Signed headers for `message_id`, now.
fn headers(webhook: &Webhook, message_id: &str) -> [(&'static str, String); 3] {
    webhook.signed_headers(message_id, OffsetDateTime::now_utc().unix_timestamp(), BODY)
}

/// What a test's handler does on each call, in turn: the last repeats.
#[derive(Clone, Copy, Debug)]
enum Step {
    Succeed,
    Panic,
    /// Waits for a permit from `gate`, then succeeds.
    Wait,
    /// Waits for a permit from `gate`, then fails.
    WaitThenFail,
}

struct Points {
    steps: Vec<Step>,
    calls: AtomicUsize,
    /// Message ids applied (successful calls), with the context's attempt.
    applied: Mutex<Vec<(String, u32)>>,
    gate: Semaphore,
    /// Calls that have started, so a test can wait for one to be running.
    started: Semaphore,
}

impl Points {
    fn new(steps: &[Step]) -> Self {
        Points {
            steps: steps.to_vec(),
            calls: AtomicUsize::new(0),
            applied: Mutex::default(),
            gate: Semaphore::new(0),
            started: Semaphore::new(0),
        }
    }

    fn applied(&self) -> Vec<(String, u32)> {
        self.applied.lock().unwrap().clone()
    }
}

impl AsyncEventHandler for Points {
    type Error = std::io::Error;

    async fn loyalty_add_points(
        &self,
        ctx: &Context,
        _: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), Self::Error> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let step = self.steps[call.min(self.steps.len() - 1)];
        self.started.add_permits(1);
        if matches!(step, Step::Wait | Step::WaitThenFail) {
            self.gate.acquire().await.unwrap().forget();
        }
        match step {
            Step::Succeed | Step::Wait => {
                self.applied
                    .lock()
                    .unwrap()
                    .push((ctx.message_id().to_owned(), ctx.attempt()));
                Ok(())
            }
            Step::WaitThenFail => Err(std::io::Error::other("points database down")),
            Step::Panic => panic!("handler bug"),
        }
    }
}

async fn handle(
    webhook: &Webhook,
    store: &(impl IdempotencyStore + ?Sized),
    handler: &Points,
    message_id: &str,
) -> Result<Handled, ReceiveError> {
    webhook
        .handle(&headers(webhook, message_id), BODY, store, handler)
        .await
}

fn status(result: &Result<Handled, ReceiveError>) -> u16 {
    match result {
        Ok(handled) => handled.status_code(),
        Err(error) => error.status_code(),
    }
}

/// Defect 1: attempt 1 is slow and then fails; Svix's retry arrives meanwhile.
/// It used to be answered 200 as a duplicate, and the event was lost.
#[tokio::test]
async fn a_retry_during_a_running_attempt_is_answered_409_and_handled_later() {
    let webhook = Webhook::new(SECRET).unwrap();
    let store = MemoryIdempotencyStore::new();
    let handler = Points::new(&[Step::WaitThenFail, Step::Succeed]);

    let first = handle(&webhook, &store, &handler, "msg_slow");
    let retry = async {
        handler.started.acquire().await.unwrap().forget();
        let retry = handle(&webhook, &store, &handler, "msg_slow").await;
        handler.gate.add_permits(1);
        retry
    };
    let (first, retry) = tokio::join!(first, retry);
    assert_eq!(status(&retry), 409, "{retry:?}");
    assert!(matches!(retry, Err(ReceiveError::InProgress)));
    assert_eq!(status(&first), 500, "{first:?}");
    assert!(handler.applied().is_empty());

    let later = handle(&webhook, &store, &handler, "msg_slow").await;
    assert!(matches!(later, Ok(Handled::Processed(_))), "{later:?}");
    assert_eq!(handler.applied(), [("msg_slow".to_owned(), 1)]);
    let again = handle(&webhook, &store, &handler, "msg_slow").await;
    assert!(matches!(again, Ok(Handled::Duplicate(_))), "{again:?}");
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        2,
        "the duplicate did not run"
    );
}

/// Defect 2: a panicking handler used to leave the key recorded, so every retry
/// was answered 200 and the event lost.
#[tokio::test]
async fn a_panicking_handler_leaves_the_delivery_to_the_retry() {
    let webhook = Webhook::new(SECRET).unwrap();
    let store = std::sync::Arc::new(MemoryIdempotencyStore::new());
    let handler = std::sync::Arc::new(Points::new(&[Step::Panic, Step::Succeed]));

    let task = {
        let (webhook, store, handler) = (webhook.clone(), store.clone(), handler.clone());
        tokio::spawn(async move { handle(&webhook, &*store, &handler, "msg_panic").await.map(|_| ()) })
    };
    assert!(task.await.unwrap_err().is_panic());

    let retry = handle(&webhook, &*store, &handler, "msg_panic").await;
    assert!(matches!(retry, Ok(Handled::Processed(_))), "{retry:?}");
    assert_eq!(handler.applied(), [("msg_panic".to_owned(), 1)]);
}

/// A request future dropped while its handler runs (the client went away, or
/// a framework's time-out) gives its claim up: the retry is handled.
#[tokio::test]
async fn a_dropped_request_leaves_the_delivery_to_the_retry() {
    let webhook = Webhook::new(SECRET).unwrap();
    let store = MemoryIdempotencyStore::new();
    let handler = Points::new(&[Step::Wait, Step::Succeed]);

    let first = handle(&webhook, &store, &handler, "msg_dropped");
    let timed_out = tokio::time::timeout(Duration::from_millis(50), first).await;
    assert!(timed_out.is_err(), "the handler was still waiting");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);

    let retry = handle(&webhook, &store, &handler, "msg_dropped").await;
    assert!(matches!(retry, Ok(Handled::Processed(_))), "{retry:?}");
    assert_eq!(handler.applied(), [("msg_dropped".to_owned(), 1)]);
}

/// The memory store without its `abandon`: what a database-backed store does.
/// A vanished attempt's claim then holds until its lease ends.
struct NoAbandon(MemoryIdempotencyStore);

impl IdempotencyStore for NoAbandon {
    type Error = std::convert::Infallible;
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, Self::Error> {
        self.0.claim(key, lease).await
    }
    async fn complete(&self, key: &str) -> Result<(), Self::Error> {
        self.0.complete(key).await
    }
    async fn release(&self, key: &str) -> Result<(), Self::Error> {
        self.0.release(key).await
    }
}

#[tokio::test]
async fn a_vanished_attempts_claim_lapses_with_its_lease() {
    let webhook = Webhook::new(SECRET)
        .unwrap()
        .with_lease(Duration::from_millis(300));
    let store = NoAbandon(MemoryIdempotencyStore::new());
    let handler = Points::new(&[Step::Wait, Step::Succeed]);

    let first = handle(&webhook, &store, &handler, "msg_lease");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), first)
            .await
            .is_err()
    );
    let within = handle(&webhook, &store, &handler, "msg_lease").await;
    assert!(matches!(within, Err(ReceiveError::InProgress)), "{within:?}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = handle(&webhook, &store, &handler, "msg_lease").await;
    assert!(matches!(after, Ok(Handled::Processed(_))), "{after:?}");
    assert_eq!(handler.applied(), [("msg_lease".to_owned(), 1)]);
}

/// A store that cannot be reached: every call fails.
struct Down;

impl IdempotencyStore for Down {
    type Error = std::io::Error;
    async fn claim(&self, _: &str, _: Duration) -> Result<Claim, Self::Error> {
        Err(std::io::Error::other("connection refused"))
    }
    async fn complete(&self, _: &str) -> Result<(), Self::Error> {
        Err(std::io::Error::other("connection refused"))
    }
    async fn release(&self, _: &str) -> Result<(), Self::Error> {
        Err(std::io::Error::other("connection refused"))
    }
}

/// Defect 4: a store that cannot answer used to have to guess. Now nothing is
/// handled and Svix is asked to retry.
#[tokio::test]
async fn a_failing_store_answers_503_and_runs_nothing() {
    let webhook = Webhook::new(SECRET).unwrap();
    let handler = Points::new(&[Step::Succeed]);
    let result = handle(&webhook, &Down, &handler, "msg_down").await;
    assert_eq!(status(&result), 503, "{result:?}");
    let Err(error) = result else { panic!() };
    assert_eq!(
        error.to_string(),
        "the idempotency store failed: connection refused"
    );
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0);
}

/// A store whose `complete` fails after the handler succeeded: answered 503, so
/// Svix retries; the claim lapses with its lease, and the retry finds the
/// delivery again (the handler's own writes must be idempotent for this).
#[tokio::test]
async fn a_store_failing_after_the_handler_answers_503() {
    struct CompleteFails(MemoryIdempotencyStore);
    impl IdempotencyStore for CompleteFails {
        type Error = std::io::Error;
        async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, Self::Error> {
            Ok(self.0.claim(key, lease).await.unwrap_or(Claim::InProgress))
        }
        async fn complete(&self, _: &str) -> Result<(), Self::Error> {
            Err(std::io::Error::other("connection reset"))
        }
        async fn release(&self, key: &str) -> Result<(), Self::Error> {
            self.0.release(key).await.map_err(|never| match never {})
        }
    }
    let webhook = Webhook::new(SECRET)
        .unwrap()
        .with_lease(Duration::from_millis(100));
    let store = CompleteFails(MemoryIdempotencyStore::new());
    let handler = Points::new(&[Step::Succeed]);
    let result = handle(&webhook, &store, &handler, "msg_complete").await;
    assert_eq!(status(&result), 503, "{result:?}");
    assert_eq!(
        store.0.claim("msg_complete", Duration::from_secs(1)).await,
        Ok(Claim::InProgress),
        "not marked done, and held until the lease ends"
    );
}

/// Defect 5: handlers get the Svix message id and timestamp.
#[tokio::test]
async fn handlers_get_the_deliverys_context() {
    struct Seen(Mutex<Option<Context>>);
    impl AsyncEventHandler for Seen {
        type Error = std::convert::Infallible;
        async fn loyalty_add_points(
            &self,
            ctx: &Context,
            _: &Envelope<LoyaltyAddPoints>,
        ) -> Result<(), Self::Error> {
            *self.0.lock().unwrap() = Some(ctx.clone());
            Ok(())
        }
    }
    let webhook = Webhook::new(SECRET).unwrap();
    let headers = headers(&webhook, "msg_ctx");
    let handler = Seen(Mutex::new(None));
    let handled = webhook
        .handle(&headers, BODY, &MemoryIdempotencyStore::new(), &handler)
        .await
        .unwrap();
    let ctx = handler.0.lock().unwrap().clone().unwrap();
    assert_eq!(ctx.message_id(), "msg_ctx");
    assert_eq!(ctx.timestamp(), handled.delivery().timestamp);
    assert_eq!(ctx.timestamp().unix_timestamp().to_string(), headers[1].1);
    assert_eq!(ctx.attempt(), 1);
}

/// Many concurrent deliveries, each sent several times at once: each is applied
/// exactly once, and every answer is 200 or 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_applied_once() {
    let webhook = std::sync::Arc::new(Webhook::new(SECRET).unwrap());
    let store = std::sync::Arc::new(MemoryIdempotencyStore::new());
    let handler = std::sync::Arc::new(Points::new(&[Step::Succeed]));
    let mut tasks = Vec::new();
    for i in 0..200 {
        for _ in 0..4 {
            let (webhook, store, handler) = (webhook.clone(), store.clone(), handler.clone());
            tasks.push(tokio::spawn(async move {
                status(&handle(&webhook, &*store, &handler, &format!("msg_{i}")).await)
            }));
        }
    }
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status == 200 || status == 409, "{status}");
    }
    let mut applied: Vec<String> = handler.applied().into_iter().map(|(id, _)| id).collect();
    applied.sort();
    applied.dedup();
    assert_eq!(applied.len(), 200);
    assert_eq!(handler.applied().len(), 200, "none twice");
}
