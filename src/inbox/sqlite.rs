//! [`SqliteInbox`]: the inbox in a SQLite file (feature `sqlite`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use super::group::{Group, Job, Row};
use super::sql::{Dialect, Statements, Tables, sql_inbox};

/// An [`Inbox`](crate::Inbox) in a SQLite database: a file, no server. The
/// embedded default, for one receiver process (SQLite takes one writer at a
/// time; for several instances use `PostgresInbox`).
///
/// Writes are committed with `synchronous = FULL` in WAL mode, so a delivery
/// [`Webhook::accept`](crate::Webhook::accept) answered 200 survives a crash or
/// a power cut.
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
    sql: Arc<Statements>,
    group: Arc<Group>,
    #[cfg(feature = "worker")]
    doorbell: Arc<crate::wake::Doorbell>,
}

impl SqliteInbox {
    fn assemble(pool: SqlitePool, sql: Arc<Statements>, _: &Tables) -> Self {
        SqliteInbox {
            pool,
            sql,
            group: Arc::default(),
            #[cfg(feature = "worker")]
            doorbell: Arc::default(),
        }
    }

    /// Wakes the workers on this inbox (feature `worker`): one file, one
    /// process, so this process's are all there are.
    async fn stored(&self) {
        self.stored_by_writer();
    }

    fn stored_by_writer(&self) {
        #[cfg(feature = "worker")]
        self.doorbell.ring();
    }
}

/// Inserts a group commit's `batch` in one transaction (one alone as it is),
/// a statement a row, in process: whether each was stored now.
async fn insert_all(pool: &SqlitePool, sql: &Statements, batch: &[Job]) -> Result<Vec<bool>, sqlx::Error> {
    fn insert<'q>(store: &'q str, row: &'q Row) -> sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments<'q>> {
        sqlx::query(store)
            .bind(row.message_id.as_str())
            .bind(row.timestamp)
            .bind(row.received_at)
            .bind(row.body.as_slice())
            .bind(row.state)
            .bind(row.error.as_deref())
            .bind(row.received_at)
            .bind(row.created_at)
            .bind(row.contact_id.as_deref())
            .bind(row.entity.as_deref())
    }
    if let [job] = batch {
        return Ok(vec![
            insert(&sql.store, &job.row).fetch_optional(pool).await?.is_some(),
        ]);
    }
    let mut tx = pool.begin().await?;
    let mut stored = Vec::with_capacity(batch.len());
    for job in batch {
        stored.push(
            insert(&sql.store, &job.row)
                .fetch_optional(&mut *tx)
                .await?
                .is_some(),
        );
    }
    tx.commit().await?;
    Ok(stored)
}

/// The schema of an inbox in SQLite: what [`SqliteInbox::connect`] creates if
/// it is missing, for running as a migration of your own instead.
///
/// ```
/// let sql = voyado_webhooks::sqlite_schema(&voyado_webhooks::Tables::default());
/// assert!(sql.contains("CREATE TABLE IF NOT EXISTS voyado_deliveries"));
/// ```
pub fn schema(tables: &Tables) -> String {
    super::sql::schema(Dialect::Sqlite, tables)
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
        let inbox = Self::from_pool(pool, &tables);
        inbox.migrate().await?;
        Ok(inbox)
    }
}

sql_inbox!(
    SqliteInbox,
    sqlx::Sqlite,
    SqlitePool,
    sqlx::sqlite::SqliteRow,
    Dialect::Sqlite
);
