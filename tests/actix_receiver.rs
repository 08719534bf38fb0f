//! The actix-web receiver example's app, as integrators test theirs with
//! actix-web's test service and `signed_headers`: the outcomes are the
//! responses, with empty bodies, and actix-web's own answers before the crate
//! sees a request (404, 405, 413 over the body limit) are as documented.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

#[allow(dead_code, reason = "the example's main is not used here")]
#[path = "../examples/actix_receiver.rs"]
mod actix_receiver;

use std::sync::Arc;

use actix_receiver::support::{DEVELOPMENT_SECRET, Endpoint, PATH};
use voyado_webhooks::{Inbox, SqliteInbox, Webhook};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[actix_web::test]
async fn the_actix_app_answers_signed_requests_with_the_outcome() {
    use actix_web::{App, test, web};

    let inbox = SqliteInbox::connect(&common::sqlite_file("actix")).await.unwrap();
    let endpoint = web::Data::new(Endpoint {
        webhook: Arc::new(Webhook::new(DEVELOPMENT_SECRET).unwrap()),
        inbox: Arc::new(inbox),
    });
    let app = test::init_service(App::new().configure(actix_receiver::routes(endpoint.clone()))).await;
    let signer = Webhook::new(DEVELOPMENT_SECRET).unwrap();
    let body = common::fixture("loyalty.addPoints.json");
    let request = |signer: &Webhook, id: &str, body: &[u8]| {
        let mut request = test::TestRequest::post().uri(PATH).set_payload(body.to_vec());
        for header in signer.signed_headers(id, now(), body) {
            request = request.insert_header(header);
        }
        request
    };
    let send = |request: test::TestRequest| {
        let app = &app;
        async move {
            let response = test::call_service(app, request.to_request()).await;
            let status = response.status().as_u16();
            (status, test::read_body(response).await.len())
        }
    };

    assert_eq!(send(request(&signer, "msg_1", &body)).await, (200, 0));
    assert_eq!(endpoint.inbox.counts().await.unwrap().pending, 1);
    assert!(endpoint.inbox.get("msg_1").await.unwrap().is_some());
    let stranger = Webhook::new("whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0").unwrap();
    // Refused with the status alone: actix-web's default would send the text.
    assert_eq!(send(request(&stranger, "msg_2", &body)).await, (401, 0));

    // Before the crate sees the request: another method, another path, and a
    // body over actix-web's default limit of 256 KiB.
    let get = request(&signer, "msg_3", &body).method(actix_web::http::Method::GET);
    assert_eq!(send(get).await.0, 405);
    let elsewhere = request(&signer, "msg_4", &body).uri("/webhooks/other");
    assert_eq!(send(elsewhere).await.0, 404);
    let huge = [body.clone(), vec![b' '; 256 << 10]].concat();
    assert_eq!(send(request(&signer, "msg_5", &huge)).await.0, 413);
    // Raising the limit as the example says lets it through.
    let raised = test::init_service(
        App::new()
            .app_data(web::PayloadConfig::new(1 << 20))
            .configure(actix_receiver::routes(endpoint.clone())),
    )
    .await;
    let response = test::call_service(&raised, request(&signer, "msg_6", &huge).to_request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(endpoint.inbox.counts().await.unwrap().pending, 2);
}
