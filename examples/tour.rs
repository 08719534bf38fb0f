//! The crate's main job, end to end, with no setup: a receiver on a SQLite
//! file, a `Worker` beside it, and signed deliveries sent to it over HTTP as
//! Svix sends them: one of each event, a retry of one (a duplicate) and a
//! forgery. It prints what each was answered and what the worker did, then
//! exits (with 1 if anything was not as it should be).
//!
//! ```text
//! cargo run --example tour --all-features
//! cargo run --example tour --all-features -- --serve   # then keep serving, until Ctrl-C
//! ```
//!
//! The receiver is `axum_receiver`'s router and `Shop` handler, on a fresh
//! file in the system's temporary directory, with the development secret.

use std::error::Error;
use std::future::IntoFuture;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use voyado_webhooks::{Inbox, OffsetDateTime, SqliteInbox, Webhook};

#[allow(dead_code, reason = "the tour serves the receiver's router, not its main")]
#[path = "axum_receiver.rs"]
mod axum_receiver;
use axum_receiver::router;
use axum_receiver::support::{
    BackgroundWorker, DEVELOPMENT_SECRET, Endpoint, Shop, post_signed, sample_curl,
};

/// One delivery of each event Voyado documents, as the bundled samples have them.
const EVENTS: [(&str, &str); 6] = [
    (
        "contact.acceptsEmail.changed",
        include_str!("../tests/fixtures/contact.acceptsEmail.changed.json"),
    ),
    (
        "contact.acceptsSms.changed",
        include_str!("../tests/fixtures/contact.acceptsSms.changed.json"),
    ),
    (
        "contact.acceptsPostal.changed",
        include_str!("../tests/fixtures/contact.acceptsPostal.changed.json"),
    ),
    (
        "loyalty.addPoints",
        include_str!("../tests/fixtures/loyalty.addPoints.json"),
    ),
    (
        "point.balance.updated",
        include_str!("../tests/fixtures/point.balance.updated.json"),
    ),
    (
        "reward.voucher.created",
        include_str!("../tests/fixtures/reward.voucher.created.json"),
    ),
];

/// Sends every delivery, then waits for the worker; `Err` names what went wrong.
async fn tour(addr: &str, endpoint: &Endpoint<SqliteInbox>) -> Result<(), Box<dyn Error>> {
    let svix = Webhook::new(DEVELOPMENT_SECRET)?;
    let forger = Webhook::new("whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0")?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut unexpected = Vec::new();
    let mut send = async |what: String, signer: &Webhook, id: &str, body: &str, expected: u16| {
        let status = post_signed(addr, signer, id, now, body.as_bytes()).await?;
        let verdict = if status == expected { "" } else { "  <- unexpected" };
        println!("  {status}  {id:<12} {what}{verdict}");
        if status != expected {
            unexpected.push(format!("{what}: {status}, expected {expected}"));
        }
        Ok::<(), std::io::Error>(())
    };
    println!("Svix delivers: the answer, the message id, and what it is. The other lines are the");
    println!("endpoint's log and the worker applying each delivery (the Shop handler) as it arrives.\n");
    for (n, (event, body)) in EVENTS.iter().enumerate() {
        send(
            format!("{event}, stored"),
            &svix,
            &format!("msg_tour_{n}"),
            body,
            200,
        )
        .await?;
    }
    let (event, body) = EVENTS[3];
    let retry = "a retry of msg_tour_3: 200, and not stored again".to_owned();
    send(retry, &svix, "msg_tour_3", body, 200).await?;
    let forged = format!("{event} signed with another secret: refused, not stored");
    send(forged, &forger, "msg_tour_x", body, 401).await?;

    let inbox = &endpoint.inbox;
    let started = std::time::Instant::now();
    loop {
        let counts = inbox.counts().await?;
        if counts.done == EVENTS.len() as u64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("the worker did not finish within 10 s: {counts:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counts = inbox.counts().await?;
    println!(
        "\nThe inbox: {} done, {} pending, {} failed, {} dead; the forgery was never stored: {}",
        counts.done,
        counts.pending,
        counts.failed,
        counts.dead,
        inbox.get("msg_tour_x").await?.is_none()
    );
    let pool = inbox.pool();
    let ledger = sqlx::query("SELECT COUNT(*) FROM shop_points_ledger")
        .fetch_one(pool)
        .await?;
    let ledger: i64 = ledger.try_get(0)?;
    println!("The shop's points ledger: {ledger} row (the retry was not applied twice)");
    if ledger != 1 {
        unexpected.push(format!("{ledger} ledger rows, expected 1"));
    }
    if [counts.pending, counts.failed, counts.dead, counts.processing] != [0; 4] {
        unexpected.push(format!("{counts:?}"));
    }
    match unexpected.is_empty() {
        true => Ok(()),
        false => Err(unexpected.join("; ").into()),
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn Error>> {
    let serve = std::env::args().skip(1).any(|arg| arg == "--serve");
    let path = std::env::temp_dir().join("voyado-tour.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let inbox = SqliteInbox::connect(&format!("sqlite://{}", path.display())).await?;
    let shop = Shop::new(inbox.clone());
    shop.migrate().await?;
    println!("A receiver on {}, with a worker beside it.\n", path.display());

    let endpoint = Arc::new(Endpoint {
        webhook: Arc::new(Webhook::new(DEVELOPMENT_SECRET)?),
        inbox: Arc::new(inbox),
    });
    let worker = BackgroundWorker::start(&endpoint, shop);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(endpoint.clone())).with_graceful_shutdown(async move {
        let _ = server_stopped.await;
    });
    let server = tokio::spawn(server.into_future());

    let outcome = tour(&addr, &endpoint).await;
    if serve && outcome.is_ok() {
        println!("\n{}\nCtrl-C to stop.", sample_curl(&endpoint.webhook, &addr));
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_server.send(());
    server.await??;
    let stopped = worker.stop().await?;
    println!("The worker stopped: {stopped:?}");
    Ok(match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    })
}
