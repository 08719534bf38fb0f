//! How fast the durable inbox takes and works off deliveries, against what the
//! same database does without the crate, measured in the same run on loopback,
//! with every commit synced to disk (SQLite `synchronous = FULL`, PostgreSQL
//! `fsync` and `synchronous_commit` on):
//!
//! - *accept*: signed deliveries accepted per second at concurrency 64, over
//!   HTTP/1.1 keep-alive connections to axum, with `Webhook::accept` on the
//!   inbox (concurrent accepts share a commit); *bare*: the same requests to an
//!   axum handler that does the same single `INSERT … ON CONFLICT DO NOTHING`
//!   of the body, without verifying or parsing, one commit each. With each
//!   side's p99 latency. On SQLite and on PostgreSQL (a throwaway local server).
//! - *workers*: deliveries processed per second by `Webhook::process` on
//!   PostgreSQL, with one worker and with two; and by a `Worker` at
//!   concurrency 8 whose handler writes one row, through the inbox's
//!   transaction (`InTransaction`: one commit a delivery) against through the
//!   pool (two commits: the handler's, and the batched mark).
//!
//! ```text
//! cargo bench --bench accept --features http,sqlite,postgres,worker
//! ```
//!
//! Each figure is the best of three runs of `DELIVERIES` requests (latencies:
//! the median of the three runs' p99), the runs on ours and on the bare handler
//! alternating.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a benchmark"
)]

// The tests' throwaway server, started durable.
#[path = "../tests/common/postgres.rs"]
#[allow(dead_code, reason = "the benchmark never stops it mid-run")]
mod postgres;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use voyado_webhooks::{
    AsyncEventHandler, Context, Envelope, InTransaction, Inbox, LoyaltyAddPoints, PostgresInbox, SqliteInbox,
    Tables, TransactionalHandler, Webhook, Worker,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const DELIVERIES: usize = 6_000;
const CONCURRENCY: usize = 64;
/// Deliveries each worker run applies.
const WORKED: usize = 2_000;
const BODY: &str = include_str!("../tests/fixtures/loyalty.addPoints.json");

/// The bare baseline's one statement: the same columns the inbox writes.
const BARE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bare_deliveries (message_id TEXT PRIMARY KEY, \
    timestamp BIGINT NOT NULL, received_at BIGINT NOT NULL, body BYTEA NOT NULL, state TEXT NOT NULL, \
    attempts BIGINT NOT NULL, last_error TEXT, due_at BIGINT NOT NULL)";
const BARE_INSERT: &str = "INSERT INTO bare_deliveries VALUES ($1, $2, $3, $4, 'pending', 0, NULL, $5) \
    ON CONFLICT (message_id) DO NOTHING";

/// Serves `router` on a free loopback port.
async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn accept_router<I: Inbox + 'static>(webhook: Webhook, inbox: Arc<I>) -> Router {
    async fn accept<I: Inbox + 'static>(
        State((webhook, inbox)): State<(Arc<Webhook>, Arc<I>)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let status = match webhook.accept(&headers, &body, &*inbox).await {
            Ok(accepted) => accepted.status_code(),
            Err(error) => error.status_code(),
        };
        StatusCode::from_u16(status).unwrap()
    }
    Router::new()
        .route("/", post(accept::<I>))
        .with_state((Arc::new(webhook), inbox))
}

/// The same single INSERT, written by hand for each database.
macro_rules! bare_router {
    ($db:ty, $pool:expr) => {{
        async fn bare(State(pool): State<sqlx::Pool<$db>>, headers: HeaderMap, body: Bytes) -> StatusCode {
            let id = headers
                .get("svix-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let done = sqlx::query(BARE_INSERT)
                .bind(id)
                .bind(now)
                .bind(now * 1000)
                .bind(body.as_ref())
                .bind(now * 1000)
                .execute(&pool)
                .await;
            if done.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
        Router::new().route("/", post(bare)).with_state($pool)
    }};
}

/// Sends `DELIVERIES` signed requests over `CONCURRENCY` keep-alive connections,
/// message ids prefixed by `run`; returns requests per second and the p99 of
/// their latencies. Every answer must be 200.
async fn load(addr: std::net::SocketAddr, run: &str) -> (f64, Duration) {
    let webhook = Webhook::new(SECRET).unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let connections: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (webhook, next, run) = (webhook.clone(), next.clone(), run.to_owned());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut buffer = vec![0u8; 4096];
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= DELIVERIES {
                        return latencies;
                    }
                    let id = format!("msg_{run}_{i}");
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    let request = format!(
                        "POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nsvix-id: {id}\r\nsvix-timestamp: {now}\r\nsvix-signature: {}\r\n\r\n{BODY}",
                        BODY.len(),
                        webhook.sign(&id, now, BODY.as_bytes())
                    );
                    let sent = Instant::now();
                    stream.write_all(request.as_bytes()).await.unwrap();
                    // Responses have no body: read to the end of the headers.
                    let mut read = 0;
                    while !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = stream.read(&mut buffer[read..]).await.unwrap();
                        assert!(n > 0, "connection closed");
                        read += n;
                    }
                    latencies.push(sent.elapsed());
                    assert!(buffer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buffer[..read]));
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(DELIVERIES);
    for connection in connections {
        latencies.extend(connection.await.unwrap());
    }
    let rate = DELIVERIES as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies[latencies.len() * 99 / 100])
}

/// One side's figures: the best rate of its runs, and the median of their p99s.
struct Side {
    rate: f64,
    p99: Duration,
}

/// Three load runs on each of two servers, alternating, so that a drift in
/// the machine (a disk's sync latency) weighs on both alike.
async fn three_runs(ours: std::net::SocketAddr, bare: std::net::SocketAddr) -> (Side, Side) {
    let (mut runs_ours, mut runs_bare) = (Vec::new(), Vec::new());
    for run in 0..3 {
        runs_ours.push(load(ours, &format!("s{run}")).await);
        runs_bare.push(load(bare, &format!("b{run}")).await);
    }
    let side = |runs: Vec<(f64, Duration)>| {
        let rate = runs.iter().map(|(rate, _)| *rate).fold(0.0, f64::max);
        let mut p99s: Vec<Duration> = runs.iter().map(|(_, p99)| *p99).collect();
        p99s.sort();
        Side { rate, p99: p99s[1] }
    };
    (side(runs_ours), side(runs_bare))
}

/// The accept rows for one database.
fn accept_rows(database: &str, ours: &Side, bare: &Side, target: &str) {
    row(
        &format!("{database}: accepted / s (ours, bare)"),
        format!("{:.0}, {:.0}", ours.rate, bare.rate),
        "(reported)",
    );
    row(
        &format!("{database}: ours / bare"),
        format!("{:.2}", ours.rate / bare.rate),
        target,
    );
    row(
        &format!("{database}: p99 latency (ours, bare)"),
        format!("{:.1} ms, {:.1} ms", ms(ours.p99), ms(bare.p99)),
        "(reported)",
    );
    row(
        &format!("{database}: p99 ours / bare"),
        format!("{:.2}", ours.p99.as_secs_f64() / bare.p99.as_secs_f64()),
        "≤ 1.5",
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Sink;

impl AsyncEventHandler for Sink {
    type Error = std::convert::Infallible;
    async fn loyalty_add_points(
        &self,
        _: &Context,
        event: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), Self::Error> {
        std::hint::black_box(event);
        Ok(())
    }
}

/// Deliveries processed per second by `workers` workers, each with its own pool,
/// working off what `accept` stored.
async fn workers(url: &str, workers: usize) -> f64 {
    let webhook = Webhook::new(SECRET).unwrap();
    let mut inboxes = Vec::new();
    for _ in 0..workers {
        inboxes.push(Arc::new(PostgresInbox::connect(url).await.unwrap()));
    }
    let pending = inboxes[0].counts().await.unwrap().pending as usize;
    let start = Instant::now();
    let tasks: Vec<_> = inboxes
        .into_iter()
        .map(|inbox| {
            let webhook = webhook.clone();
            tokio::spawn(async move {
                let mut handled = 0;
                loop {
                    let processed = webhook.process(&*inbox, &Sink, 100).await.unwrap();
                    if processed.handled == 0 {
                        return handled;
                    }
                    handled += processed.handled;
                }
            })
        })
        .collect();
    let mut handled = 0;
    for task in tasks {
        handled += task.await.unwrap();
    }
    assert_eq!(handled, pending);
    handled as f64 / start.elapsed().as_secs_f64()
}

/// The handler of the worker runs: one row per delivery, through the pool
/// (a commit of its own) or, run `InTransaction`, through the inbox's
/// transaction.
struct Effects {
    pool: sqlx::PgPool,
    insert: String,
}

impl AsyncEventHandler for Effects {
    type Error = sqlx::Error;
    async fn loyalty_add_points(
        &self,
        ctx: &Context,
        _: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&self.insert)
            .bind(ctx.message_id())
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

impl TransactionalHandler<sqlx::Postgres> for Effects {
    type Error = sqlx::Error;
    async fn loyalty_add_points(
        &self,
        tx: &mut sqlx::PgConnection,
        ctx: &Context,
        _: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&self.insert)
            .bind(ctx.message_id())
            .execute(&mut *tx)
            .await
            .map(|_| ())
    }
}

/// Deliveries a worker at concurrency 8 applies per second, `WORKED` stored
/// first in tables of their own (named by `run`).
async fn worker_rate(url: &str, run: &str, transactional: bool) -> f64 {
    let tables = Tables::new(&format!("d_{run}"), &format!("c_{run}")).unwrap();
    let inbox = Arc::new(PostgresInbox::connect_with(url, tables).await.unwrap());
    let effects = format!("e_{run}");
    sqlx::raw_sql(&format!("CREATE TABLE {effects} (message_id TEXT NOT NULL)"))
        .execute(inbox.pool())
        .await
        .unwrap();
    let webhook = Arc::new(Webhook::new(SECRET).unwrap());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for i in 0..WORKED {
        let id = format!("msg_{run}_{i}");
        let headers = [
            ("svix-id", id.clone()),
            ("svix-timestamp", now.to_string()),
            ("svix-signature", webhook.sign(&id, now, BODY.as_bytes())),
        ];
        webhook.accept(&headers, BODY.as_bytes(), &*inbox).await.unwrap();
    }
    let handler = Effects {
        pool: inbox.pool().clone(),
        insert: format!("INSERT INTO {effects} (message_id) VALUES ($1)"),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async {
        let _ = stopped.await;
    };
    let start = Instant::now();
    let task = if transactional {
        let worker = Worker::new(webhook, inbox.clone(), Arc::new(InTransaction(handler))).concurrency(8);
        tokio::spawn(worker.run_until(signal))
    } else {
        let worker = Worker::new(webhook, inbox.clone(), Arc::new(handler)).concurrency(8);
        tokio::spawn(worker.run_until(signal))
    };
    while inbox.counts().await.unwrap().done < WORKED as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().unwrap().processed.handled, WORKED);
    WORKED as f64 / elapsed.as_secs_f64()
}

fn row(name: &str, value: String, target: &str) {
    println!("| {name} | {value} | {target} |");
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` ask this.
    }
    println!("\n| Measure | Measured | Target |");
    println!("|---|---|---|");

    let dir = std::env::temp_dir().join(format!("voyado-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = Arc::new(
        SqliteInbox::connect(&format!("sqlite://{}/inbox.db", dir.display()))
            .await
            .unwrap(),
    );
    sqlx::raw_sql(&BARE_TABLE.replace("BYTEA", "BLOB"))
        .execute(sqlite.pool())
        .await
        .unwrap();
    let (ours, bare) = three_runs(
        serve(accept_router(Webhook::new(SECRET).unwrap(), sqlite.clone())).await,
        serve(bare_router!(sqlx::Sqlite, sqlite.pool().clone())).await,
    )
    .await;
    accept_rows("SQLite", &ours, &bare, "≥ 2");

    let cluster = postgres::Cluster::start_durable();
    let pg = Arc::new(PostgresInbox::connect(&cluster.url()).await.unwrap());
    sqlx::raw_sql(BARE_TABLE).execute(pg.pool()).await.unwrap();
    let (ours, bare) = three_runs(
        serve(accept_router(Webhook::new(SECRET).unwrap(), pg.clone())).await,
        serve(bare_router!(sqlx::Postgres, pg.pool().clone())).await,
    )
    .await;
    accept_rows("PostgreSQL", &ours, &bare, "≥ 1.2");

    // The three accept runs stored 3 × DELIVERIES: half for each worker run.
    let stored = pg.counts().await.unwrap().pending;
    let one = {
        // Process half with one worker: claim what the other run will not.
        let half = (stored / 2) as usize;
        let webhook = Webhook::new(SECRET).unwrap();
        let start = Instant::now();
        let mut handled = 0;
        while handled < half {
            handled += webhook
                .process(&*pg, &Sink, 100.min(half - handled))
                .await
                .unwrap()
                .handled;
        }
        handled as f64 / start.elapsed().as_secs_f64()
    };
    let two = workers(&cluster.url(), 2).await;
    row(
        "PostgreSQL: processed / s, one worker",
        format!("{one:.0}"),
        "(reported)",
    );
    row(
        "PostgreSQL: processed / s, two workers",
        format!("{two:.0}"),
        "(reported)",
    );

    // Transactional handlers against the two-commit path, alternating.
    let (mut two_commits, mut one_commit): (f64, f64) = (0.0, 0.0);
    for round in 0..3 {
        two_commits = two_commits.max(worker_rate(&cluster.url(), &format!("p{round}"), false).await);
        one_commit = one_commit.max(worker_rate(&cluster.url(), &format!("t{round}"), true).await);
    }
    row(
        "PostgreSQL: applied / s, worker at 8, handler through the pool (two commits)",
        format!("{two_commits:.0}"),
        "(baseline)",
    );
    row(
        "PostgreSQL: applied / s, worker at 8, InTransaction (one commit)",
        format!("{one_commit:.0}"),
        "(reported)",
    );
    row(
        "PostgreSQL: InTransaction / two commits",
        format!("{:.2}", one_commit / two_commits),
        "(reported)",
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
