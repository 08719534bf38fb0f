//! A Voyado Engage webhook receiver with actix-web, ready to copy into a backend.
//!
//! ```text
//! VOYADO_WEBHOOK_SECRET=whsec_... cargo run --example actix_receiver --features actix,sqlite,postgres,worker
//! # on PostgreSQL instead of the SQLite file voyado-example.db:
//! DATABASE_URL=postgres://user:password@localhost/shop VOYADO_WEBHOOK_SECRET=whsec_... \
//!   cargo run --example actix_receiver --features actix,sqlite,postgres,worker
//! ```
//!
//! The same receiver as `axum_receiver`: `POST /webhooks/voyado` verifies the Svix
//! signature over the raw body and stores the delivery in a durable inbox,
//! answering 200 once it is committed, and a worker beside the server applies
//! what is stored. It listens on `VOYADO_WEBHOOK_ADDR` (default
//! `127.0.0.1:3000`). Ctrl-C stops the server (actix-web's own signal
//! handling), then the worker once the deliveries in flight are done.
//!
//! Before the crate sees a request, actix-web answers 405 to another method on
//! the path, 404 to another path, and 413 to a body over its default limit of
//! 256 KiB for `web::Bytes`. Engage's events are a few KB; to change the
//! limit, add `.app_data(web::PayloadConfig::new(bytes))` to the app.

use std::error::Error;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use actix_web::{App, HttpRequest, HttpServer, web};
use voyado_webhooks::{Accepted, Handles, InTransaction, Inbox, ReceiveError};

pub mod support;
use support::{
    BackgroundWorker, Database, Endpoint, PATH, Setting, Shop, listen_addr, sample_curl, webhook_from_env,
};

/// Serves `POST /webhooks/voyado` on an app: `App::new().configure(routes(endpoint))`.
pub fn routes<I: Inbox + 'static>(endpoint: web::Data<Endpoint<I>>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(endpoint)
            .service(web::resource(PATH).post(receive::<I>));
    }
}

/// The endpoint: verifies the delivery and stores it, answering 200 once it is
/// committed (the outcome is the response, feature `actix`). It takes the body
/// as raw bytes: the signature is over those bytes, and re-serialized JSON
/// would never match.
async fn receive<I: Inbox + 'static>(
    endpoint: web::Data<Endpoint<I>>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<Accepted, ReceiveError> {
    let headers: &HeaderMap = request.headers();
    let accepted = endpoint.webhook.accept(headers, &body, &*endpoint.inbox).await;
    accepted.inspect_err(|error| eprintln!("webhook: {error}"))
}

/// Serves the endpoint on `inbox`, with a worker processing it, until Ctrl-C.
async fn serve<I: Inbox + 'static>(inbox: I, shop: Shop<I>) -> Result<(), Box<dyn Error>>
where
    InTransaction<Shop<I>>: Handles<I>,
{
    let endpoint = web::Data::new(Endpoint {
        webhook: Arc::new(webhook_from_env()?),
        inbox: Arc::new(inbox),
    });
    let worker = BackgroundWorker::start(&endpoint, shop);
    let addr = listen_addr();
    let app = endpoint.clone();
    let server = HttpServer::new(move || App::new().configure(routes(app.clone())))
        .bind(&addr)
        .map_err(|error| Setting::new("VOYADO_WEBHOOK_ADDR", format!("{addr}: {error}")))?;
    for addr in server.addrs() {
        println!("{}", sample_curl(&endpoint.webhook, &addr.to_string()));
    }
    server.run().await?;
    println!("worker stopped: {:?}", worker.stop().await?);
    Ok(())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let database = support::database_from_env().await?;
    match database {
        Database::Sqlite(inbox) => serve(inbox.clone(), Shop::new(inbox)).await,
        Database::Postgres(inbox) => serve(inbox.clone(), Shop::new(inbox)).await,
    }
}
