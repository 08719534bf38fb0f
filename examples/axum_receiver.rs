//! A Voyado Engage webhook receiver with axum, ready to copy into a backend.
//!
//! ```text
//! VOYADO_WEBHOOK_SECRET=whsec_... cargo run --example axum_receiver --features http
//! # with payload encryption switched on in Engage:
//! VOYADO_WEBHOOK_SECRET=whsec_... VOYADO_WEBHOOK_ENCRYPTION_KEY=... \
//!   cargo run --example axum_receiver --features http,decrypt
//! ```
//!
//! `POST /webhooks/voyado` verifies the Svix signature over the raw body, parses
//! the event, skips retries it has already handled, dispatches to an
//! `AsyncEventHandler` and answers with the status Svix should see. It listens on
//! `VOYADO_WEBHOOK_ADDR` (default `127.0.0.1:3000`) and prints a `curl` command
//! that sends a correctly signed sample event.

use std::error::Error;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use voyado_webhooks::{AsyncEventHandler, MemoryIdempotencyStore};

pub mod support;
pub use support::Receiver;
use support::{PATH, PrintHandler, listen_addr, sample_curl, webhook_from_env};

/// The router serving `POST /webhooks/voyado`.
pub fn router<H>(receiver: Arc<Receiver<H>>) -> Router
where
    H: AsyncEventHandler + 'static,
    H::Error: Into<Box<dyn Error + Send + Sync>>,
{
    Router::new().route(PATH, post(receive::<H>)).with_state(receiver)
}

/// The endpoint. It takes the body as raw bytes: the signature is over those
/// bytes, and re-serialized JSON would never match.
async fn receive<H>(State(receiver): State<Arc<Receiver<H>>>, headers: HeaderMap, body: Bytes) -> StatusCode
where
    H: AsyncEventHandler + 'static,
    H::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let status = receiver.respond(&headers, &body).await;
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let webhook = webhook_from_env()?;
    let listener = tokio::net::TcpListener::bind(listen_addr()).await?;
    let addr = listener.local_addr()?.to_string();
    println!("{}", sample_curl(&webhook, &addr));

    let receiver = Arc::new(Receiver {
        webhook,
        store: MemoryIdempotencyStore::new(),
        handler: PrintHandler,
    });
    axum::serve(listener, router(receiver))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
