//! Handling inline (`Webhook::handle`) behind axum, served on a free loopback
//! port and sent real HTTP requests: every fixture, forged and stale signatures,
//! a replayed duplicate, an unreadable body and a failing handler. (The receiver
//! examples use the inbox instead: `tests/http_inbox.rs`.)

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use voyado_webhooks::{
    AsyncEventHandler, Context, Envelope, EventType, Handled, MemoryIdempotencyStore, PointBalanceUpdated,
    ReceiveError, Webhook,
};

const PATH: &str = "/webhooks/voyado";
const DEVELOPMENT_SECRET: &str = "whsec_dm95YWRvLXdlYmhvb2tzIGxvY2FsIGRldmVsb3BtZW50IG9ubHk=";

/// An inline endpoint: the signing secret, the claims, and the handler.
struct Receiver<H> {
    webhook: Webhook,
    store: MemoryIdempotencyStore,
    handler: H,
}

fn router(receiver: Arc<Receiver<Recorder>>) -> Router {
    Router::new().route(PATH, post(receive)).with_state(receiver)
}

async fn receive(
    State(receiver): State<Arc<Receiver<Recorder>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Handled, ReceiveError> {
    let Receiver {
        webhook,
        store,
        handler,
    } = &*receiver;
    webhook.handle(&headers, &body, store, handler).await
}

/// Records every event it gets, fails for the contact `fail-me`, and for the
/// contact `slow` notes that it started, then waits for a permit.
struct Recorder(
    Mutex<Vec<String>>,
    tokio::sync::Semaphore,
    std::sync::atomic::AtomicBool,
);

impl Default for Recorder {
    fn default() -> Self {
        Recorder(
            Mutex::default(),
            tokio::sync::Semaphore::new(0),
            Default::default(),
        )
    }
}

impl Recorder {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl AsyncEventHandler for Recorder {
    type Error = String;

    async fn point_balance_updated(
        &self,
        ctx: &Context,
        event: &Envelope<PointBalanceUpdated>,
    ) -> Result<(), String> {
        if event.payload.contact_id == "fail-me" {
            return Err("the points database is down".into());
        }
        if event.payload.contact_id == "slow" {
            self.2.store(true, std::sync::atomic::Ordering::SeqCst);
            self.1.acquire().await.unwrap().forget();
        }
        self.unhandled(ctx, &event.event_type, event.id.as_deref()).await
    }

    async fn unhandled(&self, _: &Context, event_type: &EventType, id: Option<&str>) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push(format!("{event_type} {}", id.unwrap_or("-")));
        Ok(())
    }
}

struct Server {
    addr: std::net::SocketAddr,
    receiver: Arc<Receiver<Recorder>>,
    signer: Webhook,
}

async fn start() -> Server {
    start_with(Webhook::new(DEVELOPMENT_SECRET).unwrap()).await
}

async fn start_with(webhook: Webhook) -> Server {
    let receiver = Arc::new(Receiver {
        webhook,
        store: MemoryIdempotencyStore::new(),
        handler: Recorder::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(Arc::clone(&receiver));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        addr,
        receiver,
        signer: Webhook::new(DEVELOPMENT_SECRET).unwrap(),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Server {
    /// POSTs `body` with the given headers over a fresh connection; returns the status.
    async fn post(&self, headers: &[(&str, String)], body: &[u8]) -> u16 {
        let mut request = format!(
            "POST {PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let status_line = String::from_utf8_lossy(&response)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {status_line:?}"))
    }

    /// POSTs `body` signed as message `id` at `timestamp`.
    async fn deliver_at(&self, id: &str, timestamp: i64, body: &[u8]) -> u16 {
        self.post(&self.signer.signed_headers(id, timestamp, body), body)
            .await
    }

    async fn deliver(&self, id: &str, body: &[u8]) -> u16 {
        self.deliver_at(id, now(), body).await
    }
}

use common::fixture;

#[tokio::test]
async fn every_fixture_is_handled_once_with_200() {
    let server = start().await;
    let names = common::fixture_names("");
    let mut expected = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let body = fixture(name);
        assert_eq!(server.deliver(&format!("msg_{i}"), &body).await, 200, "{name}");
        let event = voyado_webhooks::EventEnvelope::from_slice(&body).unwrap();
        expected.push(format!("{} {}", event.event_type(), event.id().unwrap_or("-")));
    }
    assert_eq!(server.receiver.handler.seen(), expected);
    // The unknown event types and the encrypted one were among them, and answered 200.
    assert!(expected.iter().any(|e| e.starts_with("contact.deleted ")));
    assert!(expected.iter().any(|e| e.starts_with("contact.created ")));
}

#[tokio::test]
async fn a_replayed_delivery_is_answered_200_but_handled_once() {
    let server = start().await;
    let body = fixture("loyalty.addPoints.json");
    assert_eq!(server.deliver("msg_dup", &body).await, 200);
    assert_eq!(server.deliver("msg_dup", &body).await, 200);
    assert_eq!(server.deliver_at("msg_dup", now() - 60, &body).await, 200);
    assert_eq!(
        server.receiver.handler.seen(),
        ["loyalty.addPoints 8c3f5061-ad74-4f4e-8d86-4e5c3bafce34"]
    );
}

#[tokio::test]
async fn forged_stale_and_unsigned_deliveries_are_401() {
    let server = start().await;
    let body = fixture("point.balance.updated.json");
    let ts = now().to_string();

    let other_secret = Webhook::new("whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0").unwrap();
    let forged = other_secret.signed_headers("msg_forged", now(), &body);
    assert_eq!(server.post(&forged, &body).await, 401, "wrong secret");

    let headers = server.signer.signed_headers("msg_swapped", now(), b"{}");
    assert_eq!(
        server.post(&headers, &body).await,
        401,
        "signature of another body"
    );

    assert_eq!(
        server.deliver_at("msg_stale", now() - 600, &body).await,
        401,
        "10 minutes old"
    );
    assert_eq!(
        server.deliver_at("msg_future", now() + 600, &body).await,
        401,
        "10 minutes ahead"
    );

    let truncated = [
        ("svix-id", "msg_v1".to_owned()),
        ("svix-timestamp", ts.clone()),
        ("svix-signature", "v1,".to_owned()),
    ];
    assert_eq!(server.post(&truncated, &body).await, 401, "an empty v1 signature");
    assert_eq!(server.post(&[], &body).await, 401, "no headers");

    assert!(server.receiver.handler.seen().is_empty(), "the handler never ran");
    assert!(server.receiver.store.is_empty(), "nothing was recorded as seen");
}

#[tokio::test]
async fn an_authentic_but_unreadable_body_is_400() {
    let server = start().await;
    assert_eq!(
        server
            .deliver(
                "msg_bad_json",
                br#"{"eventType": "loyalty.addPoints", "payload": {"#
            )
            .await,
        400
    );
    let wrong_field =
        br#"{"eventType": "loyalty.addPoints", "payload": {"amount": "lots", "contactId": "c"}}"#;
    assert_eq!(server.deliver("msg_bad_field", wrong_field).await, 400);
    assert_eq!(server.deliver("msg_not_utf8", b"\xff\xfe").await, 400);
    assert!(server.receiver.handler.seen().is_empty());
}

#[tokio::test]
async fn a_handler_error_is_500_and_the_retry_is_handled_again() {
    let server = start().await;
    let failing = br#"{"eventType": "point.balance.updated", "id": "e-1", "payload": {"balance": 1, "contactId": "fail-me"}}"#;
    assert_eq!(server.deliver("msg_fails", failing).await, 500);
    assert!(
        server.receiver.store.is_empty(),
        "the failed delivery was not recorded as seen"
    );
    // Svix's retry is handled (and fails again), not skipped as a duplicate.
    assert_eq!(server.deliver("msg_fails", failing).await, 500);
    // Another delivery still goes through.
    assert_eq!(
        server
            .deliver("msg_ok", &fixture("point.balance.updated.json"))
            .await,
        200
    );
    assert_eq!(server.receiver.handler.seen().len(), 1);
}

/// Svix's retry arrives while the first attempt's handler still runs: it is
/// answered 409 (so Svix retries later), never 200, and the delivery is handled
/// once, by the first attempt.
#[tokio::test]
async fn a_retry_during_a_running_attempt_is_409_over_http() {
    let server = Arc::new(start().await);
    let slow = br#"{"eventType": "point.balance.updated", "id": "e-slow", "payload": {"balance": 1, "contactId": "slow"}}"#;
    let first = {
        let server = server.clone();
        tokio::spawn(async move { server.deliver("msg_slow", slow).await })
    };
    // Wait until the first attempt's handler is running.
    while !server
        .receiver
        .handler
        .2
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.deliver("msg_slow", slow).await,
        409,
        "the retry during the attempt"
    );
    server.receiver.handler.1.add_permits(1);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(server.deliver("msg_slow", slow).await, 200, "a duplicate now");
    assert_eq!(server.receiver.handler.seen(), ["point.balance.updated e-slow"]);
}

fn encrypted_fixture() -> Vec<u8> {
    fixture("encrypted/point.balance.updated.json")
}

#[tokio::test]
async fn an_encrypted_delivery_without_a_key_is_503_and_retried_later() {
    let server = start().await;
    assert_eq!(server.deliver("msg_enc", &encrypted_fixture()).await, 503);
    assert!(server.receiver.handler.seen().is_empty());
    assert!(server.receiver.store.is_empty(), "the retry will be handled");
}

#[cfg(feature = "decrypt")]
#[tokio::test]
async fn an_encrypted_delivery_is_decrypted_and_handled() {
    let key = voyado_webhooks::Decryptor::new("VoyadoEngageFixtureKey0123456789").unwrap();
    let server = start_with(Webhook::new(DEVELOPMENT_SECRET).unwrap().with_decryptor(key)).await;
    assert_eq!(server.deliver("msg_enc", &encrypted_fixture()).await, 200);
    assert_eq!(
        server.receiver.handler.seen(),
        ["point.balance.updated 9d406172-be85-4a5f-9e97-5f6d4cb0df46"]
    );

    let wrong = voyado_webhooks::Decryptor::new("WrongKeyWrongKeyWrongKeyWrongKey").unwrap();
    let server = start_with(Webhook::new(DEVELOPMENT_SECRET).unwrap().with_decryptor(wrong)).await;
    assert_eq!(server.deliver("msg_enc", &encrypted_fixture()).await, 500);
    assert!(server.receiver.handler.seen().is_empty());
}
