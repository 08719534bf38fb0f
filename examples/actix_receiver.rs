//! A Voyado Engage webhook receiver with actix-web, ready to copy into a backend.
//!
//! ```text
//! VOYADO_WEBHOOK_SECRET=whsec_... cargo run --example actix_receiver --features sqlite,postgres
//! # on PostgreSQL instead of the SQLite file voyado-example.db:
//! DATABASE_URL=postgres://user:password@localhost/shop VOYADO_WEBHOOK_SECRET=whsec_... \
//!   cargo run --example actix_receiver --features sqlite,postgres
//! ```
//!
//! The same receiver as `axum_receiver`: `POST /webhooks/voyado` verifies the Svix
//! signature over the raw body and stores the delivery in a durable inbox,
//! answering 200 once it is committed, and a task beside the server processes
//! what is stored. It listens on `VOYADO_WEBHOOK_ADDR` (default `127.0.0.1:3000`).

use std::error::Error;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use voyado_webhooks::{HeaderSource, Inbox};

pub mod support;
use support::{Database, Endpoint, PATH, Shop, listen_addr, process_forever, sample_curl, webhook_from_env};

/// actix-web has its own header map: this lends it to the crate.
struct ActixHeaders<'a>(&'a HeaderMap);

impl HeaderSource for ActixHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.to_str().ok()
    }
}

/// The endpoint. It takes the body as raw bytes: the signature is over those
/// bytes, and re-serialized JSON would never match.
async fn receive<I: Inbox + 'static>(
    endpoint: web::Data<Endpoint<I>>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let status = endpoint.respond(&ActixHeaders(request.headers()), &body).await;
    HttpResponse::new(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
}

/// Serves the endpoint on `inbox`, with a worker processing it.
async fn serve<I: Inbox + 'static>(inbox: I, shop: Shop) -> Result<(), Box<dyn Error>> {
    let webhook = webhook_from_env()?;
    let inbox = Arc::new(inbox);
    actix_web::rt::spawn(process_forever(webhook.clone(), inbox.clone(), shop));
    let endpoint = web::Data::new(Endpoint {
        webhook: webhook.clone(),
        inbox,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(endpoint.clone())
            .route(PATH, web::post().to(receive::<I>))
    })
    .bind(listen_addr())?;
    for addr in server.addrs() {
        println!("{}", sample_curl(&webhook, &addr.to_string()));
    }
    server.run().await?;
    Ok(())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let database = support::database_from_env().await?;
    let shop = Shop::for_database(&database);
    match database {
        Database::Sqlite(inbox) => serve(inbox, shop).await,
        Database::Postgres(inbox) => serve(inbox, shop).await,
    }
}
