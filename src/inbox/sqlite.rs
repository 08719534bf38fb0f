//! [`SqliteInbox`]: the inbox in a SQLite file (feature `sqlite`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, query};
use time::OffsetDateTime;

use super::{Counts, Inbox, Incoming, Record, State, later};
use crate::idempotency::{Claim, IdempotencyStore};

/// An [`Inbox`] in a SQLite database: a file, no server. The embedded default,
/// for one receiver process (SQLite takes one writer at a time; for several
/// instances use PostgreSQL).
///
/// Writes are committed with `synchronous = FULL` in WAL mode, so a delivery
/// [`Webhook::accept`](crate::Webhook::accept) answered 200 survives a crash or
/// a power cut. Times are stored as Unix milliseconds.
///
/// ```
/// use voyado_webhooks::{Inbox, SqliteInbox};
///
/// # async fn run() -> Result<(), sqlx::Error> {
/// let inbox = SqliteInbox::connect("sqlite://voyado-inbox.db").await?;
/// println!("{:?}", inbox.counts().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteInbox {
    pool: SqlitePool,
    sql: Statements,
}

/// The tables an inbox keeps its deliveries and its inline claims in.
///
/// ```
/// use voyado_webhooks::Tables;
///
/// let tables = Tables::new("shop_voyado_deliveries", "shop_voyado_claims").unwrap();
/// assert!(Tables::new("deliveries; DROP TABLE x", "claims").is_none());
/// # let _ = tables;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    deliveries: String,
    claims: String,
}

impl Tables {
    /// The two table names, each letters, digits and `_`, not starting with a
    /// digit; `None` for any other name (names are written into the SQL).
    pub fn new(deliveries: &str, claims: &str) -> Option<Tables> {
        let valid = |name: &str| {
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        };
        (valid(deliveries) && valid(claims) && deliveries != claims).then(|| Tables {
            deliveries: deliveries.to_owned(),
            claims: claims.to_owned(),
        })
    }
}

/// `voyado_deliveries` and `voyado_claims`.
impl Default for Tables {
    fn default() -> Self {
        Tables {
            deliveries: "voyado_deliveries".to_owned(),
            claims: "voyado_claims".to_owned(),
        }
    }
}

/// Every statement, with the table names written in once.
#[derive(Debug, Clone)]
struct Statements {
    schema: String,
    store: String,
    claim_due: String,
    mark_done: String,
    mark_failed: String,
    get: String,
    list: String,
    replay: String,
    counts: String,
    purge_deliveries: String,
    purge_claims: String,
    claim: String,
    claim_state: String,
    complete: String,
    release: String,
}

const COLUMNS: &str = "id, message_id, timestamp, received_at, body, state, attempts, last_error, due_at";

impl Statements {
    fn new(
        Tables {
            deliveries: d,
            claims: c,
        }: &Tables,
    ) -> Self {
        Statements {
            schema: schema(&Tables {
                deliveries: d.clone(),
                claims: c.clone(),
            }),
            store: format!(
                "INSERT INTO {d} (message_id, timestamp, received_at, body, state, attempts, last_error, due_at) \
                 VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (message_id) DO NOTHING"
            ),
            claim_due: format!(
                "UPDATE {d} SET state = 'processing', attempts = attempts + 1, due_at = ? WHERE id IN \
                 (SELECT id FROM {d} WHERE state IN ('pending', 'failed', 'processing') AND due_at <= ? \
                 ORDER BY id LIMIT ?) RETURNING {COLUMNS}"
            ),
            mark_done: format!(
                "UPDATE {d} SET state = 'done', last_error = NULL \
                 WHERE message_id = ? AND state = 'processing' AND attempts = ?"
            ),
            mark_failed: format!(
                "UPDATE {d} SET state = ?, last_error = ?, due_at = ? \
                 WHERE message_id = ? AND state = 'processing' AND attempts = ?"
            ),
            get: format!("SELECT {COLUMNS} FROM {d} WHERE message_id = ?"),
            list: format!("SELECT {COLUMNS} FROM {d} WHERE state = ? ORDER BY id LIMIT ?"),
            replay: format!(
                "UPDATE {d} SET state = 'pending', due_at = ? \
                 WHERE message_id = ? AND state IN ('failed', 'dead', 'done')"
            ),
            counts: format!("SELECT state, COUNT(*) AS n FROM {d} GROUP BY state"),
            purge_deliveries: format!("DELETE FROM {d} WHERE state = 'done' AND received_at < ?"),
            purge_claims: format!("DELETE FROM {c} WHERE done = 1 AND lease_until < ?"),
            claim: format!(
                "INSERT INTO {c} (message_id, done, lease_until) VALUES (?, 0, ?) \
                 ON CONFLICT (message_id) DO UPDATE SET lease_until = excluded.lease_until \
                 WHERE {c}.done = 0 AND {c}.lease_until <= ? RETURNING done"
            ),
            claim_state: format!("SELECT done FROM {c} WHERE message_id = ?"),
            complete: format!("UPDATE {c} SET done = 1, lease_until = ? WHERE message_id = ?"),
            release: format!("DELETE FROM {c} WHERE message_id = ? AND done = 0"),
        }
    }
}

/// The schema of an inbox in SQLite: what [`SqliteInbox::connect`] creates if
/// it is missing, for running as a migration of your own instead.
///
/// ```
/// let sql = voyado_webhooks::sqlite_schema(&voyado_webhooks::Tables::default());
/// assert!(sql.contains("CREATE TABLE IF NOT EXISTS voyado_deliveries"));
/// ```
pub fn schema(
    Tables {
        deliveries: d,
        claims: c,
    }: &Tables,
) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {d} (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT NOT NULL UNIQUE,
    timestamp   INTEGER NOT NULL,  -- when Svix signed it, Unix seconds
    received_at INTEGER NOT NULL,  -- Unix milliseconds
    body        BLOB NOT NULL,     -- the raw body, as signed
    state       TEXT NOT NULL,     -- pending, processing, done, failed, dead
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    due_at      INTEGER NOT NULL   -- Unix milliseconds: next attempt, or lease end
);
CREATE INDEX IF NOT EXISTS {d}_due ON {d} (state, due_at);
CREATE TABLE IF NOT EXISTS {c} (
    message_id  TEXT PRIMARY KEY,
    done        INTEGER NOT NULL,
    lease_until INTEGER NOT NULL   -- Unix milliseconds: lease end, or when done
);
"
    )
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms).saturating_mul(1_000_000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn record(row: &SqliteRow) -> Result<Record, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(Record {
        message_id: row.try_get("message_id")?,
        timestamp: OffsetDateTime::from_unix_timestamp(row.try_get("timestamp")?)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        received_at: from_millis(row.try_get("received_at")?),
        body: row.try_get("body")?,
        state: State::from_name(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("state {state:?}").into()))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error")?,
        due_at: from_millis(row.try_get("due_at")?),
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteInbox {
    /// Opens (creating it if missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`), with the default [`Tables`], creating them if missing.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, Tables::default()).await
    }

    /// [`connect`](Self::connect) with tables of your own naming.
    pub async fn connect_with(url: &str, tables: Tables) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database is one per connection: keep it to one.
        let connections = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await?;
        let inbox = Self::from_pool(pool, tables);
        inbox.migrate().await?;
        Ok(inbox)
    }

    /// An inbox on a pool of your own, whose tables exist (see
    /// [`migrate`](Self::migrate) and [`schema`]).
    pub fn from_pool(pool: SqlitePool, tables: Tables) -> Self {
        SqliteInbox {
            sql: Statements::new(&tables),
            pool,
        }
    }

    /// Creates the tables if they are missing.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(&self.sql.schema)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl Inbox for SqliteInbox {
    type Error = sqlx::Error;

    async fn store(&self, delivery: &Incoming<'_>) -> Result<bool, sqlx::Error> {
        let state = if delivery.error.is_some() {
            State::Failed
        } else {
            State::Pending
        };
        let done = query(&self.sql.store)
            .bind(delivery.message_id)
            .bind(delivery.timestamp.unix_timestamp())
            .bind(millis(delivery.received_at))
            .bind(delivery.body)
            .bind(state.as_str())
            .bind(delivery.error.as_deref())
            .bind(millis(delivery.received_at))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_due(
        &self,
        n: usize,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, sqlx::Error> {
        let rows = query(&self.sql.claim_due)
            .bind(millis(later(now, lease)))
            .bind(millis(now))
            .bind(limit(n))
            .fetch_all(&self.pool)
            .await?;
        let mut claimed: Vec<(i64, Record)> = rows
            .iter()
            .map(|row| Ok((row.try_get("id")?, record(row)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        claimed.sort_by_key(|(id, _)| *id);
        Ok(claimed.into_iter().map(|(_, record)| record).collect())
    }

    async fn mark_done(&self, message_id: &str, attempt: u32) -> Result<(), sqlx::Error> {
        query(&self.sql.mark_done)
            .bind(message_id)
            .bind(i64::from(attempt))
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn mark_failed(
        &self,
        message_id: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), sqlx::Error> {
        let (state, due) = match retry_at {
            Some(at) => (State::Failed, millis(at)),
            None => (State::Dead, millis(OffsetDateTime::now_utc())),
        };
        query(&self.sql.mark_failed)
            .bind(state.as_str())
            .bind(error)
            .bind(due)
            .bind(message_id)
            .bind(i64::from(attempt))
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn get(&self, message_id: &str) -> Result<Option<Record>, sqlx::Error> {
        let row = query(&self.sql.get)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn list(&self, state: State, n: usize) -> Result<Vec<Record>, sqlx::Error> {
        let rows = query(&self.sql.list)
            .bind(state.as_str())
            .bind(limit(n))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    async fn replay(&self, message_id: &str, now: OffsetDateTime) -> Result<bool, sqlx::Error> {
        let done = query(&self.sql.replay)
            .bind(millis(now))
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn counts(&self) -> Result<Counts, sqlx::Error> {
        let mut counts = Counts::default();
        for row in query(&self.sql.counts).fetch_all(&self.pool).await? {
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            match State::from_name(row.try_get("state")?) {
                Some(State::Pending) => counts.pending = n,
                Some(State::Processing) => counts.processing = n,
                Some(State::Done) => counts.done = n,
                Some(State::Failed) => counts.failed = n,
                Some(State::Dead) => counts.dead = n,
                None => {}
            }
        }
        Ok(counts)
    }

    async fn purge_done(&self, before: OffsetDateTime) -> Result<u64, sqlx::Error> {
        let purged = query(&self.sql.purge_deliveries)
            .bind(millis(before))
            .execute(&self.pool)
            .await?;
        query(&self.sql.purge_claims)
            .bind(millis(before))
            .execute(&self.pool)
            .await?;
        Ok(purged.rows_affected())
    }
}

/// Claims for inline handling ([`Webhook::handle`](crate::Webhook::handle)),
/// in the claims table: one statement each, so they hold across processes
/// sharing the file.
impl IdempotencyStore for SqliteInbox {
    type Error = sqlx::Error;

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, sqlx::Error> {
        let now = OffsetDateTime::now_utc();
        let taken = query(&self.sql.claim)
            .bind(key)
            .bind(millis(later(now, lease)))
            .bind(millis(now))
            .fetch_optional(&self.pool)
            .await?;
        if taken.is_some() {
            return Ok(Claim::New);
        }
        let done: Option<i64> = query(&self.sql.claim_state)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get("done"))
            .transpose()?;
        Ok(match done {
            Some(1) => Claim::Done,
            // Released between the two statements: the caller may try again.
            Some(_) | None => Claim::InProgress,
        })
    }

    async fn complete(&self, key: &str) -> Result<(), sqlx::Error> {
        query(&self.sql.complete)
            .bind(millis(OffsetDateTime::now_utc()))
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn release(&self, key: &str) -> Result<(), sqlx::Error> {
        query(&self.sql.release)
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
