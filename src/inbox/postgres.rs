//! [`PostgresInbox`]: the inbox in a PostgreSQL file (feature `postgres`).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::sql::{Dialect, Statements, Tables, sql_inbox};

/// An [`Inbox`](crate::Inbox) in PostgreSQL, for several receiver instances
/// and workers sharing one database: workers claim due deliveries with
/// `FOR UPDATE SKIP LOCKED`, so they never wait on each other's rows.
///
/// A delivery [`Webhook::accept`](crate::Webhook::accept) answered 200 is
/// committed (at the server's own `synchronous_commit`, on by default).
///
/// ```
/// use voyado_webhooks::{Inbox, PostgresInbox};
///
/// # async fn run() -> Result<(), sqlx::Error> {
/// let inbox = PostgresInbox::connect("postgres://voyado@localhost/shop").await?;
/// println!("{:?}", inbox.counts().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresInbox {
    pool: PgPool,
    sql: Statements,
}

/// The schema of an inbox in PostgreSQL: what [`PostgresInbox::connect`] creates if
/// it is missing, for running as a migration of your own instead.
///
/// ```
/// let sql = voyado_webhooks::postgres_schema(&voyado_webhooks::Tables::default());
/// assert!(sql.contains("CREATE TABLE IF NOT EXISTS voyado_deliveries"));
/// ```
pub fn schema(tables: &Tables) -> String {
    super::sql::schema(Dialect::Postgres, tables)
}

impl PostgresInbox {
    /// Connects to the database at `url` (`postgres://user:password@host/db`),
    /// with the default [`Tables`], creating them if missing.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, Tables::default()).await
    }

    /// [`connect`](Self::connect) with tables of your own naming.
    pub async fn connect_with(url: &str, tables: Tables) -> Result<Self, sqlx::Error> {
        // A short acquire time-out: with the database down, `accept` answers 503
        // promptly, well within Svix's 15 seconds.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let inbox = Self::from_pool(pool, &tables);
        inbox.migrate().await?;
        Ok(inbox)
    }
}

sql_inbox!(PostgresInbox, PgPool, sqlx::postgres::PgRow, Dialect::Postgres);
