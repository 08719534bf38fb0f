//! The `tracing` feature, seen by a subscriber that records every span field
//! and event: one span per delivery in each pipeline, with its outcome; one
//! warning per unknown event type or field name per process; nothing secret
//! and nothing unbounded in any field.
//!
//! One test, in order: the warnings are remembered per process.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use voyado_webhooks::{
    AsyncEventHandler, Context, Envelope, LoyaltyAddPoints, MemoryIdempotencyStore, MemoryInbox,
    OffsetDateTime, Webhook,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Fields = BTreeMap<String, String>;

/// Every span's fields, in the order the spans were made, and every event.
#[derive(Clone, Default)]
struct Recorder(Arc<Recorded>);

#[derive(Default)]
struct Recorded {
    spans: Mutex<Vec<Fields>>,
    events: Mutex<Vec<(Level, Fields)>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::from([("name".to_owned(), span.metadata().name().to_owned())]);
        span.record(&mut Collect(&mut fields));
        let mut spans = self.0.spans.lock().unwrap();
        spans.push(fields);
        Id::from_u64(spans.len() as u64)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        values.record(&mut Collect(&mut spans[span.into_u64() as usize - 1]));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        self.0
            .events
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn spans(&self) -> Vec<Fields> {
        self.0.spans.lock().unwrap().clone()
    }

    /// The warnings so far, as their message and field values.
    fn warnings(&self) -> Vec<String> {
        let events = self.0.events.lock().unwrap();
        let warnings = events.iter().filter(|(level, _)| *level == Level::WARN);
        warnings
            .map(|(_, fields)| fields.values().cloned().collect::<Vec<_>>().join(" | "))
            .collect()
    }

    /// Everything recorded, as one text, to search for what must not be there.
    fn everything(&self) -> String {
        format!("{:?} {:?}", self.spans(), self.0.events.lock().unwrap())
    }
}

struct Points;

impl AsyncEventHandler for Points {
    type Error = String;

    async fn loyalty_add_points(&self, _: &Context, _: &Envelope<LoyaltyAddPoints>) -> Result<(), String> {
        Ok(())
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn points(tenant: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"eventType": "loyalty.addPoints", "id": "e-1", "tenant": "{tenant}",{extra}
            "payload": {{"amount": 5, "contactId": "c-private-contact", "tier": "gold"}}}}"#
    )
    .into_bytes()
}

#[test]
fn spans_and_warnings() {
    let recorder = Recorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    tracing::subscriber::with_default(recorder.clone(), || runtime.block_on(run(&recorder)));
}

async fn run(recorder: &Recorder) {
    let webhook = Webhook::new(SECRET).unwrap();
    let store = MemoryIdempotencyStore::new();

    // Handled inline: one span with every field, and a warning for each name
    // the crate does not know.
    let body = points("acme", r#" "traceId": "t-1","#);
    let headers = webhook.signed_headers("msg_1", now(), &body);
    webhook.handle(&headers, &body, &store, &Points).await.unwrap();
    let span = recorder.spans().pop().unwrap();
    assert_eq!(span["name"], "voyado_webhooks.delivery");
    assert_eq!(span["pipeline"], "handle");
    assert_eq!(span["message_id"], "msg_1");
    assert_eq!(span["attempt"], "1");
    assert_eq!(span["event_type"], "loyalty.addPoints");
    assert_eq!(span["tenant"], "acme");
    assert_eq!(span["outcome"], "handled");
    assert!(span["duration_ms"].parse::<f64>().unwrap() >= 0.0, "{span:?}");
    let warnings = recorder.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("| traceId |")), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("| payload.tier |")),
        "{warnings:?}"
    );

    // The same names again, in another delivery: no second warning. The retry
    // of a handled delivery is a duplicate.
    let body = points("acme", r#" "traceId": "t-2","#);
    let headers = webhook.signed_headers("msg_2", now(), &body);
    webhook.handle(&headers, &body, &store, &Points).await.unwrap();
    webhook.handle(&headers, &body, &store, &Points).await.unwrap();
    assert_eq!(recorder.spans().pop().unwrap()["outcome"], "duplicate");
    assert_eq!(recorder.warnings().len(), 2);

    // An unknown event type: warned about once.
    for id in ["msg_3", "msg_4"] {
        let body = br#"{"eventType": "points.moved", "payload": {"contactId": "c-1"}}"#;
        let headers = webhook.signed_headers(id, now(), body);
        webhook.handle(&headers, body, &store, &Points).await.unwrap();
    }
    let warnings = recorder.warnings();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[2].contains("points.moved"), "{warnings:?}");
    assert_eq!(recorder.spans().pop().unwrap()["event_type"], "points.moved");

    // A forgery: refused, and its claimed message id is not recorded.
    let stranger = Webhook::new("whsec_dGhlIHdyb25nIHNlY3JldA==").unwrap();
    let headers = stranger.signed_headers("msg_forged", now(), &body);
    webhook
        .handle(&headers, &body, &store, &Points)
        .await
        .unwrap_err();
    let span = recorder.spans().pop().unwrap();
    assert_eq!(span["outcome"], "rejected");
    assert!(!span.contains_key("message_id"), "{span:?}");

    // Accepted into an inbox, then processed: a span for each.
    let inbox = MemoryInbox::new();
    let body = points("acme", "");
    let headers = webhook.signed_headers("msg_5", now(), &body);
    webhook.accept(&headers, &body, &inbox).await.unwrap();
    let span = recorder.spans().pop().unwrap();
    assert_eq!(
        (span["pipeline"].as_str(), span["outcome"].as_str()),
        ("accept", "stored")
    );
    let unreadable = br#"{"eventType": "loyalty.addPoints", "payload": {"amount": "lots"}}"#;
    let headers = webhook.signed_headers("msg_6", now(), unreadable);
    webhook.accept(&headers, unreadable, &inbox).await.unwrap();
    assert_eq!(recorder.spans().pop().unwrap()["outcome"], "stored_unreadable");
    webhook.process(&inbox, &Points, 10).await.unwrap();
    let spans = recorder.spans();
    let processed: Vec<_> = spans.iter().filter(|s| s["pipeline"] == "process").collect();
    let outcomes: Vec<_> = processed
        .iter()
        .map(|s| (s["message_id"].as_str(), s["outcome"].as_str()))
        .collect();
    assert_eq!(outcomes.len(), 2, "{processed:?}");
    assert!(outcomes.contains(&("msg_5", "handled")), "{outcomes:?}");
    assert!(outcomes.contains(&("msg_6", "failed")), "{outcomes:?}");

    // Bounded: a long tenant and message id are cut, and past 256 unknown
    // names the warnings stop, saying so once.
    let long = "x".repeat(10_000);
    let body = points(&long, "");
    let headers = webhook.signed_headers(&long, now(), &body);
    webhook.handle(&headers, &body, &store, &Points).await.unwrap();
    let span = recorder.spans().pop().unwrap();
    assert!(span["tenant"].chars().count() <= 65, "{}", span["tenant"].len());
    assert!(
        span["message_id"].chars().count() <= 65,
        "{}",
        span["message_id"].len()
    );
    let many: String = (0..300).map(|i| format!(r#" "field{i}": {i},"#)).collect();
    let body = points("acme", &many);
    let headers = webhook.signed_headers("msg_many", now(), &body);
    webhook.handle(&headers, &body, &store, &Points).await.unwrap();
    let warnings = recorder.warnings();
    assert_eq!(warnings.len(), 256 + 1, "{}", warnings.len());
    assert!(warnings[256].contains("no more warnings"), "{}", warnings[256]);
    assert!(recorder.everything().len() < 200_000);

    #[cfg(feature = "worker")]
    worker_events(recorder).await;

    // Nothing secret: neither the secret, nor a signature, nor the body's values.
    let everything = recorder.everything();
    let signature = webhook.sign("msg_1", now(), b"x");
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &signature[..10],
        "c-private-contact",
        "gold",
    ] {
        assert!(!everything.contains(secret), "{secret} was recorded");
    }
}

impl Recorder {
    /// The messages of the events at `level` so far.
    #[cfg(feature = "worker")]
    fn messages(&self, level: Level) -> Vec<Fields> {
        let events = self.0.events.lock().unwrap();
        events
            .iter()
            .filter(|(at, _)| *at == level)
            .map(|(_, fields)| fields.clone())
            .collect()
    }
}

/// A worker's start and stop (with what it did), its wake-ups, and a lease it
/// lost, as events; its deliveries' spans, as the pipeline `worker`.
#[cfg(feature = "worker")]
async fn worker_events(recorder: &Recorder) {
    use std::time::Duration;

    use voyado_webhooks::{Inbox, Worker};

    struct Hang;
    impl AsyncEventHandler for Hang {
        type Error = String;
        async fn loyalty_add_points(
            &self,
            _: &Context,
            _: &Envelope<LoyaltyAddPoints>,
        ) -> Result<(), String> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    }
    let has = |level: Level, message: &str| {
        recorder
            .messages(level)
            .into_iter()
            .find(|fields| fields.get("message").is_some_and(|m| m.contains(message)))
    };
    let webhook = Arc::new(
        Webhook::new(SECRET)
            .unwrap()
            .with_lease(Duration::from_millis(300)),
    );
    let inbox = Arc::new(MemoryInbox::new());
    let accept = |id: &'static str| {
        let (webhook, inbox) = (webhook.clone(), inbox.clone());
        async move {
            let body = points("acme", "");
            let headers = webhook.signed_headers(id, now(), &body);
            webhook.accept(&headers, &body, &*inbox).await.unwrap();
        }
    };
    let until = |id: &'static str, state: voyado_webhooks::State| {
        let inbox = inbox.clone();
        async move {
            while inbox.get(id).await.unwrap().unwrap().state != state {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(webhook.clone(), inbox.clone(), Arc::new(Points));
    let task = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(50)).await;
    accept("msg_w1").await;
    until("msg_w1", voyado_webhooks::State::Done).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let started = has(Level::INFO, "worker started").unwrap();
    assert_eq!(started["concurrency"], "4");
    assert_eq!(started["wakes"], "true");
    assert!(has(Level::DEBUG, "worker woken").is_some());
    let stopped = has(Level::INFO, "worker stopped").unwrap();
    assert_eq!(
        (stopped["handled"].as_str(), stopped["lost"].as_str()),
        ("1", "0")
    );
    let span = recorder
        .spans()
        .into_iter()
        .find(|span| span.get("pipeline").map(String::as_str) == Some("worker"));
    let span = span.unwrap();
    assert_eq!(
        (span["message_id"].as_str(), span["outcome"].as_str()),
        ("msg_w1", "handled")
    );

    // A claim taken over while its handler hangs: lost, and said so.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(webhook.clone(), inbox.clone(), Arc::new(Hang)).grace_period(Duration::ZERO);
    let task = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    accept("msg_w2").await;
    until("msg_w2", voyado_webhooks::State::Processing).await;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    inbox
        .claim_due(10, Duration::from_secs(60), 3, later)
        .await
        .unwrap();
    while has(Level::WARN, "lease lost").is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    let stopped = task.await.unwrap().unwrap();
    assert_eq!(stopped.processed.lost, 1, "{stopped:?}");
    let lost = has(Level::WARN, "lease lost").unwrap();
    assert_eq!(
        (lost["message_id"].as_str(), lost["attempt"].as_str()),
        ("msg_w2", "1")
    );
}
