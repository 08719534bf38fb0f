//! A Voyado Engage webhook receiver with actix-web, ready to copy into a backend.
//!
//! ```text
//! VOYADO_WEBHOOK_SECRET=whsec_... cargo run --example actix_receiver
//! # with payload encryption switched on in Engage:
//! VOYADO_WEBHOOK_SECRET=whsec_... VOYADO_WEBHOOK_ENCRYPTION_KEY=... \
//!   cargo run --example actix_receiver --features decrypt
//! ```
//!
//! The same endpoint as `axum_receiver`: `POST /webhooks/voyado` verifies the Svix
//! signature over the raw body, parses the event, skips retries it has already
//! handled, dispatches to an `AsyncEventHandler` and answers with the status Svix
//! should see. It listens on `VOYADO_WEBHOOK_ADDR` (default `127.0.0.1:3000`).

use std::error::Error;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use voyado_webhooks::{HeaderSource, MemoryIdempotencyStore};

pub mod support;
use support::{PATH, PrintHandler, Receiver, listen_addr, sample_curl, webhook_from_env};

/// actix-web has its own header map: this lends it to the crate.
struct ActixHeaders<'a>(&'a HeaderMap);

impl HeaderSource for ActixHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.to_str().ok()
    }
}

/// The endpoint. It takes the body as raw bytes: the signature is over those
/// bytes, and re-serialized JSON would never match.
async fn receive(
    receiver: web::Data<Receiver<PrintHandler>>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let status = receiver.respond(&ActixHeaders(request.headers()), &body).await;
    HttpResponse::new(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let webhook = webhook_from_env()?;
    let receiver = web::Data::new(Receiver {
        webhook: webhook.clone(),
        store: MemoryIdempotencyStore::new(),
        handler: PrintHandler,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(receiver.clone())
            .route(PATH, web::post().to(receive))
    })
    .bind(listen_addr())?;
    for addr in server.addrs() {
        println!("{}", sample_curl(&webhook, &addr.to_string()));
    }
    server.run().await?;
    Ok(())
}
