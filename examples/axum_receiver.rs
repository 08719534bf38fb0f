//! A Voyado Engage webhook receiver with axum, ready to copy into a backend.
//!
//! ```text
//! VOYADO_WEBHOOK_SECRET=whsec_... cargo run --example axum_receiver --features axum,sqlite,postgres,worker
//! # on PostgreSQL instead of the SQLite file voyado-example.db:
//! DATABASE_URL=postgres://user:password@localhost/shop VOYADO_WEBHOOK_SECRET=whsec_... \
//!   cargo run --example axum_receiver --features axum,sqlite,postgres,worker
//! ```
//!
//! `POST /webhooks/voyado` verifies the Svix signature over the raw body and
//! stores the delivery in a durable inbox, answering 200 only once it is
//! committed; a [`Worker`](voyado_webhooks::Worker) beside the server applies
//! what is stored, retrying what fails. The example handler keeps points,
//! balances, vouchers and consents in the same database. It listens on
//! `VOYADO_WEBHOOK_ADDR` (default `127.0.0.1:3000`) and prints a `curl`
//! command that sends a correctly signed sample event. Ctrl-C stops the
//! server, then the worker once the deliveries in flight are done.
//!
//! Before the crate sees a request, axum answers 405 to another method on the
//! path, 404 to another path, and 413 to a body over its default limit of
//! 2 MB. Engage's events are a few KB; to change the limit, add
//! `.layer(axum::extract::DefaultBodyLimit::max(bytes))` to the router.

use std::error::Error;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use voyado_webhooks::{Accepted, Handles, InTransaction, Inbox, ReceiveError};

pub mod support;
use support::{
    BackgroundWorker, Database, Endpoint, PATH, Setting, Shop, listen_addr, sample_curl, webhook_from_env,
};

/// The router serving `POST /webhooks/voyado`.
pub fn router<I: Inbox + 'static>(endpoint: Arc<Endpoint<I>>) -> Router {
    Router::new().route(PATH, post(receive::<I>)).with_state(endpoint)
}

/// The endpoint: verifies the delivery and stores it, answering 200 once it is
/// committed (the outcome is the response, feature `axum`). It takes the body
/// as raw bytes: the signature is over those bytes, and re-serialized JSON
/// would never match.
async fn receive<I: Inbox + 'static>(
    State(endpoint): State<Arc<Endpoint<I>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Accepted, ReceiveError> {
    let accepted = endpoint.webhook.accept(&headers, &body, &*endpoint.inbox).await;
    accepted.inspect_err(|error| eprintln!("webhook: {error}"))
}

/// Serves the endpoint on `inbox`, with a worker processing it, until Ctrl-C.
async fn serve<I: Inbox + 'static>(inbox: I, shop: Shop<I>) -> Result<(), Box<dyn Error>>
where
    InTransaction<Shop<I>>: Handles<I>,
{
    let endpoint = Arc::new(Endpoint {
        webhook: Arc::new(webhook_from_env()?),
        inbox: Arc::new(inbox),
    });
    let addr = listen_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|error| Setting::new("VOYADO_WEBHOOK_ADDR", format!("{addr}: {error}")))?;
    println!(
        "{}",
        sample_curl(&endpoint.webhook, &listener.local_addr()?.to_string())
    );

    let worker = BackgroundWorker::start(&endpoint, shop);
    axum::serve(listener, router(endpoint))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("worker stopped: {:?}", worker.stop().await?);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let database = support::database_from_env().await?;
    match database {
        Database::Sqlite(inbox) => serve(inbox.clone(), Shop::new(inbox)).await,
        Database::Postgres(inbox) => serve(inbox.clone(), Shop::new(inbox)).await,
    }
}
