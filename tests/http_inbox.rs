//! The axum receiver example's endpoint on the inbox, served on a free loopback
//! port and sent real HTTP requests, then processed by its `Shop` handler on a
//! real SQLite file: every fixture is stored before 200 and applied once; a
//! forgery is 401 and stored nowhere; an authentic body that does not parse, and
//! an encrypted one without a key, are answered 200 and kept, failed, for
//! replay. Then the router as integrators test theirs, with a `signed_request`:
//! the outcomes are the responses, with empty bodies, and axum's own answers
//! before the crate sees a request (404, 405, 413 over the body limit) are as
//! documented. Last, the examples' start-up errors name the variable at fault.
//! (The actix-web example: `tests/actix_receiver.rs`.)

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

#[allow(dead_code, reason = "the example's main is not used here")]
#[path = "../examples/axum_receiver.rs"]
mod axum_receiver;

use std::sync::Arc;

use sqlx::Row;
use tokio::net::TcpListener;
use voyado_webhooks::{InTransaction, Inbox, SqliteInbox, State, Webhook};

use axum_receiver::router;
use axum_receiver::support::{DEVELOPMENT_SECRET, Endpoint, PATH, Shop, post_signed};

struct Server {
    addr: std::net::SocketAddr,
    inbox: Arc<SqliteInbox>,
    shop: InTransaction<Shop<SqliteInbox>>,
    signer: Webhook,
}

async fn start(name: &str) -> Server {
    let inbox = SqliteInbox::connect(&common::sqlite_file(&format!("http-{name}")))
        .await
        .unwrap();
    let shop = Shop::new(inbox.clone());
    shop.migrate().await.unwrap();
    let shop = InTransaction(shop);
    let inbox = Arc::new(inbox);
    let endpoint = Arc::new(Endpoint {
        webhook: Arc::new(Webhook::new(DEVELOPMENT_SECRET).unwrap()),
        inbox: inbox.clone(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(endpoint)).await.unwrap() });
    Server {
        addr,
        inbox,
        shop,
        signer: Webhook::new(DEVELOPMENT_SECRET).unwrap(),
    }
}

impl Server {
    /// POSTs `body` signed (by `signer`) as message `id`; returns the status.
    async fn deliver_signed(&self, signer: &Webhook, id: &str, body: &[u8]) -> u16 {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        post_signed(&self.addr.to_string(), signer, id, now, body)
            .await
            .unwrap()
    }

    async fn deliver(&self, id: &str, body: &[u8]) -> u16 {
        self.deliver_signed(&self.signer, id, body).await
    }

    /// Processes until nothing is due.
    async fn process(&self) -> usize {
        let mut handled = 0;
        loop {
            let processed = self.signer.process(&*self.inbox, &self.shop, 100).await.unwrap();
            if processed.handled + processed.failed + processed.dead + processed.superseded == 0 {
                return handled;
            }
            handled += processed.handled;
        }
    }

    /// A contact's consents: each preference and its value.
    async fn consents(&self, contact: &str) -> Vec<(String, Option<bool>)> {
        let pool = self.inbox.pool();
        sqlx::query("SELECT preference, accepts FROM shop_consents WHERE contact_id = $1 ORDER BY preference")
            .bind(contact)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }

    async fn ledger(&self) -> Vec<(String, String)> {
        let pool = self.inbox.pool();
        sqlx::query("SELECT message_id, amount FROM shop_points_ledger ORDER BY message_id")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }
}

#[tokio::test]
async fn every_fixture_is_stored_before_200_and_applied_once() {
    let server = start("fixtures").await;
    let names = common::fixture_names("");
    for (i, name) in names.iter().enumerate() {
        let body = common::fixture(name);
        assert_eq!(server.deliver(&format!("msg_{i}"), &body).await, 200, "{name}");
        // Svix's retry of the same message: 200, no second row.
        assert_eq!(server.deliver(&format!("msg_{i}"), &body).await, 200, "{name}");
    }
    assert_eq!(server.inbox.counts().await.unwrap().pending, names.len() as u64);
    assert_eq!(server.process().await, names.len());
    // Every loyalty.addPoints fixture lands in the ledger once, its amount exact.
    let ledger = server.ledger().await;
    let points: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("loyalty.addPoints"))
        .collect();
    assert_eq!(ledger.len(), points.len(), "{ledger:?}");
    assert!(ledger.iter().any(|(_, amount)| amount == "100.10"), "{ledger:?}");
    // Processed again: nothing is applied twice.
    for id in 0..names.len() {
        server
            .inbox
            .replay(&format!("msg_{id}"), time::OffsetDateTime::now_utc())
            .await
            .unwrap();
    }
    server.process().await;
    assert_eq!(server.ledger().await, ledger);
}

#[tokio::test]
async fn a_forgery_is_401_and_stored_nowhere() {
    let server = start("forged").await;
    let other = Webhook::new("whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0").unwrap();
    let body = common::fixture("loyalty.addPoints.json");
    assert_eq!(server.deliver_signed(&other, "msg_forged", &body).await, 401);
    assert!(server.inbox.get("msg_forged").await.unwrap().is_none());
}

#[tokio::test]
async fn an_authentic_unreadable_or_undecryptable_body_is_kept_for_replay() {
    let server = start("kept").await;
    let unreadable =
        br#"{"eventType": "loyalty.addPoints", "payload": {"amount": "lots", "contactId": "c"}}"#;
    assert_eq!(server.deliver("msg_unreadable", unreadable).await, 200);
    let encrypted = common::fixture("encrypted/point.balance.updated.json");
    assert_eq!(server.deliver("msg_encrypted", &encrypted).await, 200);
    for (id, says) in [
        ("msg_unreadable", "payload.amount"),
        ("msg_encrypted", "no decryption key"),
    ] {
        let record = server.inbox.get(id).await.unwrap().unwrap();
        assert_eq!(record.state, State::Failed);
        assert!(record.last_error.as_deref().unwrap().contains(says), "{record:?}");
    }
    assert_eq!(
        server.inbox.get("msg_encrypted").await.unwrap().unwrap().body,
        encrypted
    );
}

/// Defect 1 of the ordering issue, over HTTP: a contact opts out (message B,
/// delivered at once), then Svix retries an older opt-in (message A, whose
/// first attempt had failed) a second later. The retry is signed later than
/// B, but A's id says it was created first: the contact stays opted out, and
/// its other preference is untouched. And two changes 45 ms apart, delivered
/// in order within one second: the second is applied. (Ordered by the
/// attempt's whole-second timestamp, as the example was, both came out wrong.)
#[tokio::test]
async fn a_late_retry_of_an_older_opt_in_leaves_the_newer_opt_out() {
    let server = start("order").await;
    let change = |contact: &str, field: &str, accepts: bool| {
        format!(
            r#"{{"eventType": "contact.{field}.changed", "id": "e", "payload": {{"contactId": "{contact}", "{field}": {accepts}}}}}"#
        )
        .into_bytes()
    };
    let base = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let at = |ms: i64, n: u8| common::ksuid::svix_id(base + time::Duration::milliseconds(ms), n);
    let (sms, opt_in, opt_out) = (at(0, 0), at(100, 1), at(145, 2));
    assert!(opt_in < opt_out, "ids sort by creation");
    assert_eq!(
        server.deliver(&sms, &change("c-1", "acceptsSms", true)).await,
        200
    );
    assert_eq!(
        server
            .deliver(&opt_out, &change("c-1", "acceptsEmail", false))
            .await,
        200
    );
    assert_eq!(server.process().await, 2);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        server
            .deliver(&opt_in, &change("c-1", "acceptsEmail", true))
            .await,
        200
    );
    // The inbox supersedes it: the handler never sees it.
    assert_eq!(server.process().await, 0);
    let late = server.inbox.get(&opt_in).await.unwrap().unwrap();
    assert_eq!(late.state, voyado_webhooks::State::Superseded, "{late:?}");
    assert!(late.last_error.unwrap().ends_with(&opt_out));
    let consents = server.consents("c-1").await;
    assert_eq!(
        consents,
        [
            ("acceptsEmail".to_owned(), Some(false)),
            ("acceptsSms".to_owned(), Some(true))
        ]
    );

    let (first, second) = (at(200, 3), at(245, 4));
    assert_eq!(
        server.deliver(&first, &change("c-2", "acceptsEmail", true)).await,
        200
    );
    assert_eq!(server.process().await, 1);
    assert_eq!(
        server
            .deliver(&second, &change("c-2", "acceptsEmail", false))
            .await,
        200
    );
    assert_eq!(server.process().await, 1);
    assert_eq!(
        server.consents("c-2").await,
        [("acceptsEmail".to_owned(), Some(false))]
    );
}

/// Engage deletes a contact: the example's shop forgets it, and the inbox
/// erases what it kept of it, other contacts untouched; Svix's late retry of
/// an erased delivery is a duplicate, not applied again.
#[tokio::test]
async fn a_deleted_contact_leaves_the_shop_and_the_inbox() {
    let server = start("erase").await;
    let points = |contact: &str| {
        format!(
            r#"{{"eventType": "loyalty.addPoints", "payload": {{"amount": 5, "contactId": "{contact}"}}}}"#
        )
    };
    let balance =
        r#"{"eventType": "point.balance.updated", "payload": {"balance": 50, "contactId": "c-del"}}"#;
    assert_eq!(server.deliver("msg_p1", points("c-del").as_bytes()).await, 200);
    assert_eq!(server.deliver("msg_b1", balance.as_bytes()).await, 200);
    assert_eq!(server.deliver("msg_k1", points("c-keep").as_bytes()).await, 200);
    assert_eq!(server.process().await, 3);
    let deleted = r#"{"eventType": "contact.deleted", "payload": {"contactId": "c-del"}}"#;
    assert_eq!(server.deliver("msg_del", deleted.as_bytes()).await, 200);
    assert_eq!(server.process().await, 1);

    let ledger = server.ledger().await;
    assert_eq!(ledger, [("msg_k1".to_owned(), "5".to_owned())]);
    let pool = server.inbox.pool();
    let balances: i64 = sqlx::query("SELECT COUNT(*) FROM shop_point_balances")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(balances, 0);
    for id in ["msg_p1", "msg_b1"] {
        let record = server.inbox.get(id).await.unwrap().unwrap();
        assert!(record.body.is_empty(), "{id} erased");
    }
    assert_eq!(
        server.inbox.get("msg_k1").await.unwrap().unwrap().body,
        points("c-keep").as_bytes()
    );
    // Svix retries an erased delivery: stored once already, so nothing is applied.
    assert_eq!(server.deliver("msg_p1", points("c-del").as_bytes()).await, 200);
    assert_eq!(server.process().await, 0);
    assert_eq!(server.ledger().await, ledger);
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A fresh SQLite inbox, for an example's endpoint without a server.
async fn inbox(name: &str) -> Arc<SqliteInbox> {
    let inbox = SqliteInbox::connect(&common::sqlite_file(&format!("router-{name}")))
        .await
        .unwrap();
    Arc::new(inbox)
}

#[tokio::test]
async fn the_axum_router_answers_signed_requests_with_the_outcome() {
    use axum::body::Body;
    use tower::ServiceExt;

    let endpoint = Arc::new(Endpoint {
        webhook: Arc::new(Webhook::new(DEVELOPMENT_SECRET).unwrap()),
        inbox: inbox("axum").await,
    });
    let signer = Webhook::new(DEVELOPMENT_SECRET).unwrap();
    let body = common::fixture("loyalty.addPoints.json");
    let send = |request: axum::http::Request<Body>| {
        let app = router(endpoint.clone());
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, bytes.len())
        }
    };
    let signed = |signer: &Webhook, id: &str, body: Vec<u8>| {
        signer
            .signed_request(PATH, id, now(), body)
            .unwrap()
            .map(Body::from)
    };

    assert_eq!(send(signed(&signer, "msg_1", body.clone())).await, (200, 0));
    assert_eq!(endpoint.inbox.counts().await.unwrap().pending, 1);
    let stranger = Webhook::new("whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0").unwrap();
    // Refused with the status alone: the error's text is not sent back.
    assert_eq!(send(signed(&stranger, "msg_2", body.clone())).await, (401, 0));

    // Before the crate sees the request: another method, another path, and a
    // body over axum's default limit of 2 MB.
    let mut get = signed(&signer, "msg_3", body.clone());
    *get.method_mut() = axum::http::Method::GET;
    assert_eq!(send(get).await.0, 405);
    let mut elsewhere = signed(&signer, "msg_4", body.clone());
    *elsewhere.uri_mut() = "/webhooks/other".parse().unwrap();
    assert_eq!(send(elsewhere).await.0, 404);
    let huge = [body.clone(), vec![b' '; 2 << 20]].concat();
    assert_eq!(send(signed(&signer, "msg_5", huge)).await.0, 413);
    // Raising the limit as the example says lets it through.
    let raised = router(endpoint.clone()).layer(axum::extract::DefaultBodyLimit::max(4 << 20));
    let huge = [body.clone(), vec![b' '; 2 << 20]].concat();
    let response = raised.oneshot(signed(&signer, "msg_6", huge)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(endpoint.inbox.counts().await.unwrap().pending, 2);
}

#[test]
fn a_bad_setting_names_its_variable_and_what_is_wrong() {
    use axum_receiver::support::webhook_from;

    let error = |secret, key| webhook_from(secret, key).err().map(|e| format!("{e:?}")).unwrap();
    assert_eq!(
        error(Some("  "), None),
        "VOYADO_WEBHOOK_SECRET: the signing secret is empty"
    );
    assert_eq!(
        error(Some("whsec_not base64!"), None),
        "VOYADO_WEBHOOK_SECRET: the signing secret is not base64 (expected `whsec_` followed by base64)"
    );
    let key = error(None, Some("short"));
    assert!(key.starts_with("VOYADO_WEBHOOK_ENCRYPTION_KEY: "), "{key}");
    #[cfg(feature = "decrypt")]
    assert_eq!(
        key,
        "VOYADO_WEBHOOK_ENCRYPTION_KEY: the encryption key must be 32 characters, found 5"
    );
    assert!(webhook_from(Some(DEVELOPMENT_SECRET), None).is_ok());
}
