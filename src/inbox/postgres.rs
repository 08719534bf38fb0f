//! [`PostgresInbox`]: the inbox in a PostgreSQL database (feature `postgres`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::group::{Group, Job};
use super::sql::{Dialect, Statements, Tables, sql_inbox};

/// An [`Inbox`](crate::Inbox) in PostgreSQL, for several receiver instances
/// and workers sharing one database: workers claim due deliveries with
/// `FOR UPDATE SKIP LOCKED`, so they never wait on each other's rows.
///
/// A delivery [`Webhook::accept`](crate::Webhook::accept) answered 200 is
/// committed (at the server's own `synchronous_commit`, on by default).
/// Concurrent stores share a commit: the deliveries that arrived while the
/// last one ran go in one `INSERT` from arrays, which also sends the `NOTIFY`
/// on a channel named after the deliveries table that the workers of every
/// process `LISTEN` on (feature `worker`). A replay notifies after its commit,
/// in a transaction of its own committed without waiting for the disk, at most
/// one at a time from each inbox handle.
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
    sql: Arc<Statements>,
    group: Arc<Group>,
    notifier: Arc<Notifier>,
    #[cfg(feature = "worker")]
    doorbell: Arc<crate::wake::Doorbell>,
}

impl PostgresInbox {
    fn assemble(pool: PgPool, sql: Arc<Statements>, tables: &Tables) -> Self {
        PostgresInbox {
            notifier: Arc::new(Notifier::new(tables)),
            #[cfg(feature = "worker")]
            doorbell: Arc::new(doorbell(&pool, tables)),
            pool,
            sql,
            group: Arc::default(),
        }
    }

    /// Wakes the workers of this process (feature `worker`) and, by `NOTIFY`,
    /// those of every other.
    async fn stored(&self) {
        self.stored_by_writer();
        self.notifier.notify(&self.pool).await;
    }

    /// Wakes the workers of this process: the batch's statement notified the
    /// others.
    fn stored_by_writer(&self) {
        #[cfg(feature = "worker")]
        self.doorbell.ring();
    }
}

/// Inserts a group commit's `batch` in one statement, its rows as arrays,
/// and notifies the workers of every process in the same commit: whether each
/// was stored now (of two with one id, the first).
async fn insert_all(pool: &PgPool, sql: &Statements, batch: &[Job]) -> Result<Vec<bool>, sqlx::Error> {
    use sqlx::Row as _;
    fn column<'a, T>(batch: &'a [Job], of: impl Fn(&'a super::group::Row) -> T) -> Vec<T> {
        batch.iter().map(|job| of(&job.row)).collect()
    }
    let rows = sqlx::query(&sql.store_all)
        .bind(column(batch, |row| row.message_id.as_str()))
        .bind(column(batch, |row| row.timestamp))
        .bind(column(batch, |row| row.received_at))
        .bind(column(batch, |row| row.body.as_slice()))
        .bind(column(batch, |row| row.state))
        .bind(column(batch, |row| row.error.as_deref()))
        .bind(column(batch, |row| row.created_at))
        .bind(column(batch, |row| row.contact_id.as_deref()))
        .bind(column(batch, |row| row.entity.as_deref()))
        .fetch_all(pool)
        .await?;
    let mut stored = rows
        .iter()
        .map(|row| row.try_get::<String, _>("message_id"))
        .collect::<Result<std::collections::HashSet<String>, sqlx::Error>>()?;
    Ok(batch
        .iter()
        .map(|job| stored.remove(&job.row.message_id))
        .collect())
}

/// Sends the `NOTIFY` that follows replays, one at a time: a replay while one
/// is under way asks for one more after it, so every replay is followed by a
/// notification sent after its commit, and a burst of them costs two.
#[derive(Debug)]
struct Notifier {
    /// `SET LOCAL synchronous_commit = off; SELECT pg_notify(…)`: one
    /// implicit transaction, whose commit waits for no disk sync.
    statement: String,
    state: Mutex<Notifying>,
}

#[derive(Debug, Default)]
struct Notifying {
    /// A notification is under way.
    sending: bool,
    /// A replay committed since it started: one more is due.
    again: bool,
}

/// Clears `sending` if the future sending is dropped mid-way, so that the
/// next replay sends.
struct Sending<'a>(&'a Mutex<Notifying>);

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).sending = false;
    }
}

impl Notifier {
    fn new(tables: &Tables) -> Self {
        let channel = tables.deliveries();
        Notifier {
            statement: format!("SET LOCAL synchronous_commit = off; SELECT pg_notify('{channel}', '')"),
            state: Mutex::default(),
        }
    }

    async fn notify(&self, pool: &PgPool) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.sending {
                state.again = true;
                return;
            }
            state.sending = true;
        }
        let sending = Sending(&self.state);
        loop {
            // A failure only delays the workers until they poll.
            let _ = sqlx::raw_sql(&self.statement).execute(pool).await;
            let mut state = sending.0.lock().unwrap_or_else(PoisonError::into_inner);
            if !std::mem::take(&mut state.again) {
                // Cleared together with the check, so no store slips between.
                state.sending = false;
                drop(state);
                std::mem::forget(sending);
                return;
            }
        }
    }
}

/// Rung by this process's `store` and `replay`, and by the notifications of
/// every other process, through one `LISTEN` connection while a worker runs.
#[cfg(feature = "worker")]
fn doorbell(pool: &PgPool, tables: &Tables) -> crate::wake::Doorbell {
    let (pool, channel) = (pool.clone(), tables.deliveries().to_owned());
    crate::wake::Doorbell::with_listener(move |rung| {
        tokio::spawn(listen(pool.clone(), channel.clone(), rung))
    })
}

/// Rings `rung` on every notification on `channel`, and once each time the
/// connection is made (again), since notifications sent while it was down are
/// lost. Reconnects after a failure, waiting up to 5 seconds between tries;
/// ends when the pool is closed.
#[cfg(feature = "worker")]
async fn listen(pool: PgPool, channel: String, rung: tokio::sync::watch::Sender<u64>) {
    use sqlx::postgres::PgListener;

    let ring = || rung.send_modify(|count| *count = count.wrapping_add(1));
    let first_wait = Duration::from_millis(100);
    let mut wait = first_wait;
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                crate::trace::listen_failed(&channel, &error, wait);
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2).min(Duration::from_secs(5));
                continue;
            }
        };
        let error = match listener.listen(&channel).await {
            Ok(()) => {
                crate::trace::listening(&channel);
                wait = first_wait;
                ring();
                // `Ok(None)`: the connection was lost; make a new one and ring
                // once it listens.
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => ring(),
                        Ok(None) => break None,
                        Err(error) => break Some(error),
                    }
                }
            }
            Err(error) => Some(error),
        };
        match error {
            Some(sqlx::Error::PoolClosed) => return,
            Some(error) => {
                crate::trace::listen_failed(&channel, &error, wait);
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2).min(Duration::from_secs(5));
            }
            None => {}
        }
    }
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

sql_inbox!(
    PostgresInbox,
    sqlx::Postgres,
    PgPool,
    sqlx::postgres::PgRow,
    Dialect::Postgres
);
