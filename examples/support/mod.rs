//! What the receiver examples share: the endpoint, the database (SQLite by
//! default, PostgreSQL with `DATABASE_URL=postgres://…`), the worker that
//! processes what the endpoint stored, an example handler that keeps a small
//! schema of its own, and signed requests to try them with.

use std::error::Error;
use std::sync::Arc;

use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voyado_webhooks::{
    ContactPreferenceChanged, Context, Envelope, EventType, Handles, InTransaction, Inbox, LoyaltyAddPoints,
    PointBalanceUpdated, PostgresInbox, Preference, RawPayload, RewardVoucherCreated, SqliteInbox, Stopped,
    TransactionalHandler, TransactionalInbox, Webhook, Worker,
};

/// Where the endpoint is served.
pub const PATH: &str = "/webhooks/voyado";

/// For trying the example locally only. Never deploy with it: anyone who reads
/// this file could sign deliveries.
pub const DEVELOPMENT_SECRET: &str = "whsec_dm95YWRvLXdlYmhvb2tzIGxvY2FsIGRldmVsb3BtZW50IG9ubHk=";

/// The database the examples keep the inbox and their own tables in, unless
/// `DATABASE_URL` names another: a SQLite file, no setup.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://voyado-example.db";

/// The endpoint: the signing secret, and the inbox it stores deliveries in.
pub struct Endpoint<I> {
    /// The endpoint's signing secret (and decryption key, if any), shared with
    /// the worker.
    pub webhook: Arc<Webhook>,
    /// Where authentic deliveries are stored before they are acknowledged.
    pub inbox: Arc<I>,
}

/// A [`Worker`] running beside the server, until [`stop`](Self::stop)ped.
pub struct BackgroundWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<Stopped, std::convert::Infallible>>,
}

impl BackgroundWorker {
    /// Starts a worker applying what `endpoint` stores to `shop`, each
    /// delivery in the shop's transaction: 8 deliveries at a time, woken by
    /// each delivery stored (on PostgreSQL, by any instance), and polling
    /// every 5 seconds for retries. On PostgreSQL, run as many instances as
    /// you like: they share the work.
    pub fn start<I: Inbox + 'static>(endpoint: &Endpoint<I>, shop: Shop<I>) -> Self
    where
        InTransaction<Shop<I>>: Handles<I>,
    {
        let shop = Arc::new(InTransaction(shop));
        let worker = Worker::new(endpoint.webhook.clone(), endpoint.inbox.clone(), shop)
            .concurrency(8)
            .poll_interval(std::time::Duration::from_secs(5));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(worker.run_until(async {
            let _ = stopped.await;
        }));
        BackgroundWorker { stop, task }
    }

    /// Stops claiming, lets the deliveries in flight finish (up to the
    /// worker's grace period, 15 seconds), and says what the worker did.
    pub async fn stop(self) -> Result<Stopped, Box<dyn Error>> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}

/// The database `DATABASE_URL` names.
pub enum Database {
    /// A SQLite file: no server, one receiver process.
    Sqlite(SqliteInbox),
    /// PostgreSQL: several receivers and workers.
    Postgres(PostgresInbox),
}

/// Connects to `DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]), creating the
/// inbox's tables and [`Shop`]'s if they are missing.
pub async fn database_from_env() -> Result<Database, Setting> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let failed = |error: sqlx::Error| Setting::new("DATABASE_URL", format!("{url}: {error}"));
    Ok(if url.starts_with("postgres") {
        let inbox = PostgresInbox::connect(&url).await.map_err(failed)?;
        Shop::new(inbox.clone()).migrate().await.map_err(failed)?;
        Database::Postgres(inbox)
    } else {
        let inbox = SqliteInbox::connect(&url).await.map_err(failed)?;
        Shop::new(inbox.clone()).migrate().await.map_err(failed)?;
        Database::Sqlite(inbox)
    })
}

/// The example handler's own tables. The handler writes them in the inbox's
/// transaction, which marks the delivery done in the same commit, so no write
/// needs a guard against being applied twice; and the inbox hands it each
/// contact's states oldest-created first, dropping one older than a state
/// already applied, so a balance or consent is simply set. Amounts are kept as
/// their exact decimal text.
pub const SHOP_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shop_points_ledger (
    message_id TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    amount     TEXT NOT NULL,
    reason     TEXT
);
CREATE TABLE IF NOT EXISTS shop_point_balances (
    contact_id TEXT PRIMARY KEY,
    balance    TEXT NOT NULL,
    message_id TEXT NOT NULL       -- the delivery that set it
);
CREATE TABLE IF NOT EXISTS shop_vouchers (
    voucher_id  TEXT PRIMARY KEY,
    contact_id  TEXT NOT NULL,
    unique_code TEXT NOT NULL,
    amount      TEXT NOT NULL,
    currency    TEXT
);
CREATE TABLE IF NOT EXISTS shop_consents (
    contact_id TEXT NOT NULL,
    preference TEXT NOT NULL,
    accepts    BOOLEAN,
    message_id TEXT NOT NULL,
    PRIMARY KEY (contact_id, preference)
);
";

/// An example handler: keeps points, balances, vouchers and consents beside
/// its inbox (`SqliteInbox` or `PostgresInbox`), writing through the inbox's
/// transaction (run it `InTransaction`). Returning an error rolls its writes
/// back and records the attempt as failed, and the delivery is retried.
#[derive(Clone)]
pub struct Shop<I> {
    inbox: I,
}

impl<I> Shop<I> {
    /// The shop beside `inbox`, in its database.
    pub fn new(inbox: I) -> Self {
        Shop { inbox }
    }

    /// The inbox the shop is beside.
    pub fn inbox(&self) -> &I {
        &self.inbox
    }
}

/// The shop's handler on one database: the statements suit both (`$n`
/// placeholders and `ON CONFLICT` are common to them), but sqlx types a query
/// by its database, so the impl is written once here and made for each.
macro_rules! shop_on {
    ($inbox:ty, $db:ty, $connection:ty) => {
        impl Shop<$inbox> {
            /// Creates the shop's tables if they are missing.
            pub async fn migrate(&self) -> Result<(), sqlx::Error> {
                sqlx::raw_sql(SHOP_SCHEMA)
                    .execute(self.inbox.pool())
                    .await
                    .map(|_| ())
            }
        }

        impl TransactionalHandler<$db> for Shop<$inbox> {
            type Error = sqlx::Error;

            async fn contact_preference_changed(
                &self,
                tx: &mut $connection,
                ctx: &Context,
                preference: Preference,
                event: &Envelope<ContactPreferenceChanged>,
            ) -> Result<(), Self::Error> {
                let (contact, accepts) = (&event.payload.contact_id, event.payload.accepts);
                sqlx::query(
                    "INSERT INTO shop_consents (contact_id, preference, accepts, message_id) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (contact_id, preference) DO UPDATE \
                     SET accepts = excluded.accepts, message_id = excluded.message_id",
                )
                .bind(contact)
                .bind(preference.as_str())
                .bind(accepts)
                .bind(ctx.message_id())
                .execute(&mut *tx)
                .await?;
                println!("{contact}: {preference} = {accepts:?}");
                Ok(())
            }

            async fn loyalty_add_points(
                &self,
                tx: &mut $connection,
                ctx: &Context,
                event: &Envelope<LoyaltyAddPoints>,
            ) -> Result<(), Self::Error> {
                let points = &event.payload;
                sqlx::query(
                    "INSERT INTO shop_points_ledger (message_id, contact_id, amount, reason) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(ctx.message_id())
                .bind(&points.contact_id)
                .bind(points.amount.to_string())
                .bind(points.reason.as_deref())
                .execute(&mut *tx)
                .await?;
                println!("{}: +{} points", points.contact_id, points.amount);
                Ok(())
            }

            async fn point_balance_updated(
                &self,
                tx: &mut $connection,
                ctx: &Context,
                event: &Envelope<PointBalanceUpdated>,
            ) -> Result<(), Self::Error> {
                let (contact, balance) = (&event.payload.contact_id, event.payload.balance);
                sqlx::query(
                    "INSERT INTO shop_point_balances (contact_id, balance, message_id) \
                     VALUES ($1, $2, $3) ON CONFLICT (contact_id) DO UPDATE \
                     SET balance = excluded.balance, message_id = excluded.message_id",
                )
                .bind(contact)
                .bind(balance.to_string())
                .bind(ctx.message_id())
                .execute(&mut *tx)
                .await?;
                println!("{contact}: balance {balance}");
                Ok(())
            }

            async fn reward_voucher_created(
                &self,
                tx: &mut $connection,
                _: &Context,
                event: &Envelope<RewardVoucherCreated>,
            ) -> Result<(), Self::Error> {
                let voucher = &event.payload;
                sqlx::query(
                    "INSERT INTO shop_vouchers (voucher_id, contact_id, unique_code, amount, currency) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&voucher.id)
                .bind(&voucher.contact_id)
                .bind(&voucher.unique_code)
                .bind(voucher.amount.to_string())
                .bind(voucher.currency.as_deref())
                .execute(&mut *tx)
                .await?;
                println!(
                    "{}: voucher {} worth {}",
                    voucher.contact_id, voucher.unique_code, voucher.amount
                );
                Ok(())
            }

            /// Engage deleted the contact: its rows go from the shop's tables,
            /// and what the inbox keeps of it is erased (the bodies of its
            /// handled and dead deliveries; their ids stay, so Svix's late
            /// retries are still duplicates), all in the one commit. Voyado has
            /// not published this payload: the contact id is read as
            /// `contactId` or `id`, and a delivery with neither fails, to be
            /// looked at among the dead ones, rather than be taken as done.
            async fn contact_deleted(
                &self,
                tx: &mut $connection,
                ctx: &Context,
                event: &Envelope<RawPayload>,
            ) -> Result<(), Self::Error> {
                let Some(contact) = event.contact_id() else {
                    return Err(sqlx::Error::Protocol(format!(
                        "{}: contact.deleted names no contact: {}",
                        ctx.message_id(),
                        event.payload.get()
                    )));
                };
                for table in [
                    "shop_points_ledger",
                    "shop_point_balances",
                    "shop_vouchers",
                    "shop_consents",
                ] {
                    let sql = format!("DELETE FROM {table} WHERE contact_id = $1");
                    sqlx::query(&sql).bind(&contact).execute(&mut *tx).await?;
                }
                let erased = self.inbox.erase_contact_in(tx, &contact).await?;
                println!("{contact}: deleted, {erased} stored deliveries erased");
                Ok(())
            }

            async fn unhandled(
                &self,
                _: &mut $connection,
                ctx: &Context,
                event_type: &EventType,
                id: Option<&str>,
            ) -> Result<(), Self::Error> {
                println!(
                    "{} not handled: {event_type} {}",
                    ctx.message_id(),
                    id.unwrap_or("(no id)")
                );
                Ok(())
            }
        }
    };
}

shop_on!(SqliteInbox, Sqlite, SqliteConnection);
shop_on!(PostgresInbox, Postgres, PgConnection);

/// A setting the receiver cannot start with: the environment variable, and
/// what is wrong with it. `main` shows it as it reads:
/// `Error: VOYADO_WEBHOOK_SECRET: the signing secret is not base64 …`.
pub struct Setting {
    variable: &'static str,
    problem: String,
}

impl Setting {
    /// `variable` cannot be used, because of `problem`.
    pub fn new(variable: &'static str, problem: impl std::fmt::Display) -> Self {
        Setting {
            variable,
            problem: problem.to_string(),
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

/// What `main` prints on an error: the same text, not a struct dump.
impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Error for Setting {}

/// The signing secret from `VOYADO_WEBHOOK_SECRET` (or the development one, with
/// a warning), and the decryption key from `VOYADO_WEBHOOK_ENCRYPTION_KEY` if
/// payload encryption is switched on in Engage.
pub fn webhook_from_env() -> Result<Webhook, Setting> {
    let secret = std::env::var("VOYADO_WEBHOOK_SECRET").ok();
    if secret.is_none() {
        eprintln!(
            "warning: VOYADO_WEBHOOK_SECRET is not set; using the DEVELOPMENT secret. Never deploy this."
        );
    }
    webhook_from(
        secret.as_deref(),
        std::env::var("VOYADO_WEBHOOK_ENCRYPTION_KEY").ok().as_deref(),
    )
}

/// [`webhook_from_env`] from the variables' values.
pub fn webhook_from(secret: Option<&str>, encryption_key: Option<&str>) -> Result<Webhook, Setting> {
    let secret = secret.unwrap_or(DEVELOPMENT_SECRET);
    let webhook = Webhook::new(secret).map_err(|error| Setting::new("VOYADO_WEBHOOK_SECRET", error))?;
    match encryption_key {
        Some(key) => with_encryption_key(webhook, key),
        // Encrypted deliveries are then answered 503: Svix retries them until the key is deployed.
        None => Ok(webhook),
    }
}

#[cfg(feature = "decrypt")]
fn with_encryption_key(webhook: Webhook, key: &str) -> Result<Webhook, Setting> {
    let decryptor = voyado_webhooks::Decryptor::new(key)
        .map_err(|error| Setting::new("VOYADO_WEBHOOK_ENCRYPTION_KEY", error))?;
    Ok(webhook.with_decryptor(decryptor))
}

#[cfg(not(feature = "decrypt"))]
fn with_encryption_key(_: Webhook, _: &str) -> Result<Webhook, Setting> {
    Err(Setting::new(
        "VOYADO_WEBHOOK_ENCRYPTION_KEY",
        "is set, but this build cannot decrypt: build with `--features decrypt`",
    ))
}

/// Where to listen: `VOYADO_WEBHOOK_ADDR`, or `127.0.0.1:3000`.
pub fn listen_addr() -> String {
    std::env::var("VOYADO_WEBHOOK_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
}

/// What to print on start: where the endpoint listens, and a `curl` command
/// sending it a correctly signed sample event. Its timestamp is now, so it is
/// accepted for 5 minutes.
pub fn sample_curl(webhook: &Webhook, addr: &str) -> String {
    let body = r#"{"eventType":"loyalty.addPoints","id":"sample-1","isEncrypted":false,"payload":{"amount":100.10,"contactId":"0a3f7c2e-51b4-4d8e-b1a2-8c9d0e1f2a3b","pointDefinitionId":1,"source":"Automation","reason":"Birthday"},"tenant":"sample"}"#;
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let message_id = format!("msg_sample_{timestamp}");
    let signature = webhook.sign(&message_id, timestamp, body.as_bytes());
    format!(
        "listening on http://{addr}{PATH}\n\nsend a signed sample event (valid for 5 minutes):\n\n\
         curl -i http://{addr}{PATH} -H 'content-type: application/json' \\\n  -H 'svix-id: {message_id}' -H 'svix-timestamp: {timestamp}' \\\n  -H 'svix-signature: {signature}' \\\n  --data-raw '{body}'\n"
    )
}

/// POSTs `body` to the endpoint at `addr` as Svix would: signed by `signer` as
/// message `message_id` at `timestamp`, over HTTP/1.1. The status it answered.
pub async fn post_signed(
    addr: &str,
    signer: &Webhook,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> std::io::Result<u16> {
    let mut request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\nsvix-id: {message_id}\r\nsvix-timestamp: {timestamp}\r\nsvix-signature: {}\r\n\r\n",
        body.len(),
        signer.sign(message_id, timestamp, body),
    )
    .into_bytes();
    request.extend_from_slice(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(&request).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))
}
