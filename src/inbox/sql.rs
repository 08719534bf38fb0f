//! What the SQL inboxes share: table names, the statements in each dialect,
//! time columns, and the `Inbox` and `IdempotencyStore` implementations
//! (`sql_inbox!`), written once for every sqlx driver.

use time::OffsetDateTime;

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
    /// The deliveries table's name: on PostgreSQL, also the channel the
    /// workers are notified on.
    #[cfg(feature = "postgres")]
    pub(crate) fn deliveries(&self) -> &str {
        &self.deliveries
    }

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

/// Where the SQL differs between databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// Placeholder number `n` (from 1): `$n` in both dialects (sqlx binds SQLite's
/// by their number), so one value can stand in several places.
fn arg(n: usize) -> String {
    format!("${n}")
}

/// Placeholders `1..=count`, comma-separated.
#[cfg(feature = "sqlite")]
fn args(count: usize) -> String {
    (1..=count).map(arg).collect::<Vec<_>>().join(", ")
}

/// The schema of an inbox: what the inboxes' `connect` creates if it is
/// missing, for running as a migration of your own instead. Times are Unix
/// milliseconds (the Svix timestamp Unix seconds).
pub(crate) fn schema(dialect: Dialect, tables: &Tables) -> String {
    format!("{}{}", create_tables(dialect, tables), create_indexes(tables))
}

/// Columns added since the first schema: `migrate` adds them to a table made
/// before, where `CREATE TABLE IF NOT EXISTS` leaves it as it was.
const ADDED_COLUMNS: [(&str, &str); 3] = [
    ("created_at", "BIGINT"),
    ("contact_id", "TEXT"),
    ("entity", "TEXT"),
];

/// The indexes, made once the columns they cover exist.
fn create_indexes(Tables { deliveries: d, .. }: &Tables) -> String {
    format!(
        "-- Only what a claim may take, in the order it takes it (oldest created first):
-- a claim reads the rows it claims and no more, and finished rows leave the index.
CREATE INDEX IF NOT EXISTS {d}_claim_order ON {d} ({CLAIM_ORDER}) WHERE state IN ('pending', 'failed', 'processing');
DROP INDEX IF EXISTS {d}_claimable;
DROP INDEX IF EXISTS {d}_due;
-- What `erase_contact` looks for.
CREATE INDEX IF NOT EXISTS {d}_contact ON {d} (contact_id) WHERE contact_id IS NOT NULL;
-- A contact's done states, in the order Svix created them: what supersedes
-- what. Only done ones, so that claiming a state writes no entry here; by
-- contact, not entity, so that one range read finds a state's superseders.
DROP INDEX IF EXISTS {d}_lane;
CREATE INDEX IF NOT EXISTS {d}_done_states ON {d} (contact_id, created_at, message_id)
    WHERE entity IS NOT NULL AND state = 'done';
-- At most one of a contact's states in hand at a time, whoever claims it.
CREATE UNIQUE INDEX IF NOT EXISTS {d}_lane_held ON {d} (contact_id) WHERE entity IS NOT NULL AND state = 'processing';
"
    )
}

fn create_tables(
    dialect: Dialect,
    Tables {
        deliveries: d,
        claims: c,
    }: &Tables,
) -> String {
    // Keyed by the message id, with no surrogate id to write. (SQLite's
    // WITHOUT ROWID measured slower: rows of a whole body, inserted in random
    // key order, split its pages.)
    let body = match dialect {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => "BLOB",
        #[cfg(feature = "postgres")]
        Dialect::Postgres => "BYTEA",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {d} (
    message_id  TEXT PRIMARY KEY,
    timestamp   BIGINT NOT NULL,   -- when Svix signed it, Unix seconds
    received_at BIGINT NOT NULL,   -- Unix milliseconds
    body        {body} NOT NULL,   -- the raw body, as signed
    state       TEXT NOT NULL,     -- pending, processing, done, failed, dead
    attempts    BIGINT NOT NULL,
    last_error  TEXT,
    due_at      BIGINT NOT NULL,   -- Unix milliseconds: next attempt, or lease end
    created_at  BIGINT,            -- Unix milliseconds: when Svix created it, from its id
    contact_id  TEXT,              -- the contact it is about, if one can be read
    entity      TEXT               -- what it is the state of, for a state in its contact's lane
);
CREATE TABLE IF NOT EXISTS {c} (
    message_id  TEXT PRIMARY KEY,
    done        BOOLEAN NOT NULL,
    lease_until BIGINT NOT NULL    -- Unix milliseconds: lease end, or when done
);
"
    )
}

/// Every statement, with the table names written in once.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub(crate) create_tables: String,
    pub(crate) create_indexes: String,
    /// The deliveries table's columns, as rows of `name`.
    pub(crate) columns: String,
    /// `ALTER TABLE … ADD COLUMN` for each of [`ADDED_COLUMNS`].
    pub(crate) add_columns: Vec<(&'static str, String)>,
    pub(crate) erase_contact: String,
    pub(crate) drop_bodies: String,
    /// Taken first in `migrate`'s transaction, where the database needs it.
    pub(crate) migration_lock: Option<String>,
    /// On SQLite, one row of a group commit's batch.
    #[cfg(feature = "sqlite")]
    pub(crate) store: String,
    /// On PostgreSQL, a group commit's batch in one statement, from arrays,
    /// with the `NOTIFY` that wakes the workers.
    #[cfg(feature = "postgres")]
    pub(crate) store_all: String,
    pub(crate) claim_due: String,
    pub(crate) renew: String,
    pub(crate) mark_done: String,
    pub(crate) record_all: String,
    /// What begins a handler's transaction.
    pub(crate) begin: &'static str,
    /// `mark_done` in a handler's transaction, also refused if a newer state
    /// of its entity is done.
    pub(crate) mark_done_in: String,
    pub(crate) mark_failed: String,
    pub(crate) get: String,
    pub(crate) list: String,
    pub(crate) replay: String,
    pub(crate) counts: String,
    pub(crate) purge_deliveries: String,
    pub(crate) purge_claims: String,
    pub(crate) claim: String,
    pub(crate) claim_state: String,
    pub(crate) complete: String,
    pub(crate) release: String,
}

const COLUMNS: &str = "message_id, timestamp, received_at, body, state, attempts, last_error, due_at, created_at, contact_id, entity";

/// The rows `n` of `{d}` that supersede row `row`: its contact's done states
/// created after it, of its own entity or the contact's deletion. One range of
/// `{d}_done_states`, empty unless `row` is superseded.
fn newer_done_states(d: &str, row: &str) -> String {
    format!(
        "FROM {d} AS n WHERE n.contact_id = {row}.contact_id AND n.entity IS NOT NULL \
         AND n.state = 'done' AND (n.created_at, n.message_id) > ({row}.created_at, {row}.message_id) \
         AND n.entity IN ({row}.entity, '{DELETION}')"
    )
}

/// What supersedes row `c`: its contact's newest done deletion created after
/// it, else the newest done state of its entity created after it.
fn superseder(d: &str) -> String {
    format!(
        "(SELECT n.message_id {} \
         ORDER BY CASE WHEN n.entity = '{DELETION}' THEN 0 ELSE 1 END, n.created_at DESC, n.message_id DESC LIMIT 1)",
        newer_done_states(d, "c")
    )
}

/// Whether the row of `{d}` being updated or deleted is superseded: what
/// `claim_due` finds with [`superseder`], as a condition that stops at the
/// first superseding row.
fn superseded(d: &str) -> String {
    format!("EXISTS (SELECT 1 {})", newer_done_states(d, d))
}

/// What claims are ordered by: when Svix created the message, or when it was
/// received where its id does not say.
const CLAIM_ORDER: &str = "COALESCE(created_at, received_at), message_id";

/// The entity whose done state supersedes every older state of its contact.
const DELETION: &str = crate::order::DELETION;

impl Statements {
    pub(crate) fn new(dialect: Dialect, tables: &Tables) -> Self {
        let Tables {
            deliveries: d,
            claims: c,
        } = tables;
        let a = arg;
        // PostgreSQL lets concurrent workers claim different rows; SQLite has one
        // writer at a time, so its statement is exclusive anyway.
        let skip_locked = match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => "",
            #[cfg(feature = "postgres")]
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        Statements {
            create_tables: create_tables(dialect, tables),
            create_indexes: create_indexes(tables),
            migration_lock: match dialect {
                // One writer at a time: the transaction is the lock.
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => None,
                // `CREATE … IF NOT EXISTS` races between sessions there.
                #[cfg(feature = "postgres")]
                Dialect::Postgres => Some(format!(
                    "SELECT pg_advisory_xact_lock(hashtext('voyado_webhooks {d}'))"
                )),
            },
            columns: match dialect {
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => format!("SELECT name FROM pragma_table_info('{d}')"),
                // Unquoted names are folded to lower case.
                #[cfg(feature = "postgres")]
                Dialect::Postgres => format!(
                    "SELECT column_name::text AS name FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = lower('{d}')"
                ),
            },
            add_columns: ADDED_COLUMNS
                .iter()
                .map(|(name, kind)| (*name, format!("ALTER TABLE {d} ADD COLUMN {name} {kind}")))
                .collect(),
            // The body goes, the id stays (a late retry is still a duplicate),
            // and the error says why the delivery can no longer be replayed.
            erase_contact: format!(
                "UPDATE {d} SET body = {}, last_error = {} \
                 WHERE contact_id = {} AND state IN ('done', 'dead', 'superseded') AND length(body) > 0",
                a(1),
                a(2),
                a(3)
            ),
            drop_bodies: format!(
                "UPDATE {d} SET body = {} WHERE state IN ('done', 'superseded') AND received_at < {} \
                 AND length(body) > 0",
                a(1),
                a(2)
            ),
            #[cfg(feature = "postgres")]
            store_all: format!(
                "WITH stored AS (INSERT INTO {d} (message_id, timestamp, received_at, body, state, attempts, \
                 last_error, due_at, created_at, contact_id, entity) \
                 SELECT id, ts, received, body, state, 0, error, received, created, contact, entity \
                 FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bytea[], $5::text[], $6::text[], \
                 $7::bigint[], $8::text[], $9::text[]) \
                 AS r (id, ts, received, body, state, error, created, contact, entity) \
                 ON CONFLICT (message_id) DO NOTHING RETURNING message_id) \
                 SELECT message_id, pg_notify('{d}', '') IS NULL AS notified FROM stored"
            ),
            // A row when the delivery was stored (or, below, replayed).
            #[cfg(feature = "sqlite")]
            store: format!(
                "INSERT INTO {d} (message_id, timestamp, received_at, body, state, attempts, last_error, due_at, \
                 created_at, contact_id, entity) \
                 VALUES ({}, 0, {}, {}, {}, {}, {}) ON CONFLICT (message_id) DO NOTHING RETURNING 1",
                args(5),
                a(6),
                a(7),
                a(8),
                a(9),
                a(10)
            ),
            // One statement claims the due, makes the exhausted dead and the
            // outdated superseded, so that nothing slips between the three.
            // `due`: the oldest claimable rows, but none of a lane another row
            // holds, with the columns their fate needs, as locked; `fates`:
            // what becomes of each, materialized (inlined, PostgreSQL evaluated
            // `superseder` twice: for the window and for the update); `turn`:
            // only the oldest of a lane is claimed. Should two PostgreSQL
            // sessions still claim in one lane at once, the `{d}_lane_held`
            // index refuses the second.
            claim_due: format!(
                "WITH due AS (SELECT message_id, contact_id, entity, created_at, received_at, state, attempts \
                 FROM {d} AS c WHERE state IN ('pending', 'failed', 'processing') AND due_at <= {now} \
                 AND (entity IS NULL OR NOT EXISTS (SELECT 1 FROM {d} AS h WHERE h.contact_id = c.contact_id \
                 AND h.entity IS NOT NULL AND h.state = 'processing' AND h.message_id <> c.message_id)) \
                 ORDER BY {CLAIM_ORDER} LIMIT {limit}{skip_locked}), \
                 fates AS MATERIALIZED (SELECT c.message_id AS pid, c.contact_id AS lane, c.entity AS entity, \
                 {order_c} AS o1, c.message_id AS o2, \
                 CASE WHEN c.state = 'processing' AND c.attempts >= {max} THEN 1 ELSE 0 END AS exhausted, \
                 CASE WHEN c.entity IS NOT NULL THEN {superseder} END AS superseder \
                 FROM due AS c), \
                 picked AS (SELECT pid, exhausted, superseder, ROW_NUMBER() OVER (PARTITION BY \
                 CASE WHEN entity IS NULL OR exhausted = 1 OR superseder IS NOT NULL THEN pid ELSE lane END \
                 ORDER BY o1, o2) AS turn FROM fates) \
                 UPDATE {d} SET \
                 state = CASE WHEN exhausted = 1 THEN 'dead' WHEN superseder IS NOT NULL THEN 'superseded' \
                 ELSE 'processing' END, \
                 last_error = CASE WHEN exhausted = 1 THEN {no_outcome} \
                 WHEN superseder IS NOT NULL THEN {superseded_by} || superseder ELSE last_error END, \
                 attempts = CASE WHEN exhausted = 1 OR superseder IS NOT NULL THEN attempts ELSE attempts + 1 END, \
                 due_at = CASE WHEN exhausted = 1 OR superseder IS NOT NULL THEN due_at ELSE {lease_end} END \
                 FROM picked WHERE {d}.message_id = picked.pid AND picked.turn = 1 RETURNING {COLUMNS}",
                lease_end = a(1),
                now = a(2),
                max = a(3),
                no_outcome = a(4),
                limit = a(5),
                superseded_by = a(6),
                order_c = "COALESCE(c.created_at, c.received_at)",
                superseder = superseder(d),
            ),
            renew: format!(
                "UPDATE {d} SET due_at = {} WHERE message_id = {} AND state = 'processing' AND attempts = {}",
                a(1),
                a(2),
                a(3)
            ),
            mark_done: format!(
                "UPDATE {d} SET state = 'done', last_error = NULL \
                 WHERE message_id = {} AND state = 'processing' AND attempts = {}",
                a(1),
                a(2)
            ),
            // `$1` is a JSON array of `[message_id, attempt, state, error,
            // due_at]`: one parameter, bound alike in both dialects. A done
            // one's error is null and its due time kept.
            record_all: match dialect {
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => format!(
                    "UPDATE {d} SET state = o.state, last_error = o.error, due_at = COALESCE(o.due, {d}.due_at) \
                     FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempt, \
                     json_extract(value, '$[2]') AS state, json_extract(value, '$[3]') AS error, \
                     json_extract(value, '$[4]') AS due FROM json_each({})) AS o \
                     WHERE {d}.state = 'processing' AND {d}.message_id = o.id AND {d}.attempts = o.attempt \
                     RETURNING {d}.message_id, {d}.attempts",
                    a(1)
                ),
                #[cfg(feature = "postgres")]
                Dialect::Postgres => format!(
                    "UPDATE {d} SET state = o.state, last_error = o.error, due_at = COALESCE(o.due, {d}.due_at) \
                     FROM (SELECT value ->> 0 AS id, (value ->> 1)::bigint AS attempt, value ->> 2 AS state, \
                     value ->> 3 AS error, (value ->> 4)::bigint AS due \
                     FROM jsonb_array_elements({}::jsonb)) AS o \
                     WHERE {d}.state = 'processing' AND {d}.message_id = o.id AND {d}.attempts = o.attempt \
                     RETURNING {d}.message_id, {d}.attempts",
                    a(1)
                ),
            },
            begin: match dialect {
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => "BEGIN IMMEDIATE",
                #[cfg(feature = "postgres")]
                Dialect::Postgres => "BEGIN",
            },
            mark_done_in: format!(
                "UPDATE {d} SET state = 'done', last_error = NULL \
                 WHERE message_id = {} AND state = 'processing' AND attempts = {} \
                 AND (entity IS NULL OR NOT {superseded})",
                a(1),
                a(2),
                superseded = superseded(d),
            ),
            mark_failed: format!(
                "UPDATE {d} SET state = {}, last_error = {}, due_at = {} \
                 WHERE message_id = {} AND state = 'processing' AND attempts = {}",
                a(1),
                a(2),
                a(3),
                a(4),
                a(5)
            ),
            get: format!("SELECT {COLUMNS} FROM {d} WHERE message_id = {}", a(1)),
            list: format!(
                "SELECT {COLUMNS} FROM {d} WHERE state = {} ORDER BY received_at, message_id LIMIT {}",
                a(1),
                a(2)
            ),
            replay: format!(
                "UPDATE {d} SET state = 'pending', due_at = {} \
                 WHERE message_id = {} AND state IN ('failed', 'dead', 'done', 'superseded') AND length(body) > 0 \
                 RETURNING 1",
                a(1),
                a(2)
            ),
            counts: format!(
                "SELECT state, COUNT(*) AS n, MIN(due_at) AS due, MIN(received_at) AS received \
                 FROM {d} GROUP BY state"
            ),
            // The newest done state of an entity stays, to supersede a late
            // older one.
            purge_deliveries: format!(
                "DELETE FROM {d} WHERE state IN ('done', 'superseded') AND received_at < {} \
                 AND (entity IS NULL OR state = 'superseded' OR {superseded})",
                a(1),
                superseded = superseded(d),
            ),
            purge_claims: format!("DELETE FROM {c} WHERE done AND lease_until < {}", a(1)),
            claim: format!(
                "INSERT INTO {c} (message_id, done, lease_until) VALUES ({}, FALSE, {}) \
                 ON CONFLICT (message_id) DO UPDATE SET lease_until = excluded.lease_until \
                 WHERE NOT {c}.done AND {c}.lease_until <= {} RETURNING done",
                a(1),
                a(2),
                a(3)
            ),
            claim_state: format!("SELECT done FROM {c} WHERE message_id = {}", a(1)),
            complete: format!(
                "UPDATE {c} SET done = TRUE, lease_until = {} WHERE message_id = {}",
                a(1),
                a(2)
            ),
            release: format!("DELETE FROM {c} WHERE message_id = {} AND NOT done", a(1)),
        }
    }
}

pub(crate) use super::millis;

pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms).saturating_mul(1_000_000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Implements `Inbox` and `IdempotencyStore` for `$inbox` (with fields `pool:
/// $pool`, `sql: Arc<Statements>` and `group: Arc<Group>`, built by its
/// `assemble(pool, sql, &tables)`, a `stored()` to run after a delivery is
/// replayed and a `stored_by_writer()` after one is stored, an
/// `insert_all(pool, sql, batch)` beside it that commits a group's batch, and, with
/// feature `worker`, a `doorbell: Arc<Doorbell>` field) on the sqlx database
/// `$db` and its row type `$row`, `TransactionalInbox`, and its `from_pool`,
/// `migrate` and `pool`.
macro_rules! sql_inbox {
    ($inbox:ident, $db:ty, $pool:ty, $row:ty, $dialect:expr) => {
        impl $inbox {
            /// An inbox on a pool of your own, whose tables exist (see
            /// [`migrate`](Self::migrate) and the schema function beside it).
            pub fn from_pool(pool: $pool, tables: &$crate::inbox::sql::Tables) -> Self {
                let sql = std::sync::Arc::new($crate::inbox::sql::Statements::new($dialect, tables));
                Self::assemble(pool, sql, tables)
            }

            /// Creates the tables if they are missing, and adds the columns
            /// added since to a table made before: in one transaction, which
            /// on PostgreSQL first takes a lock, so that instances starting
            /// together migrate one after the other.
            pub async fn migrate(&self) -> Result<(), sqlx::Error> {
                use sqlx::Row as _;
                let mut tx = self.pool.begin().await?;
                if let Some(lock) = &self.sql.migration_lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                sqlx::raw_sql(&self.sql.create_tables)
                    .execute(&mut *tx)
                    .await?;
                let present = sqlx::query(&self.sql.columns)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|row| row.try_get::<String, _>("name"))
                    .collect::<Result<std::collections::HashSet<String>, sqlx::Error>>()?;
                for (name, add) in &self.sql.add_columns {
                    if !present.contains(*name) {
                        sqlx::query(add).execute(&mut *tx).await?;
                    }
                }
                sqlx::raw_sql(&self.sql.create_indexes)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }

            /// The connection pool.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }
        }

        /// The group commit's writer: commits what waits, a batch at a time,
        /// until nothing does.
        async fn write_batches(
            pool: $pool,
            sql: std::sync::Arc<$crate::inbox::sql::Statements>,
            mut writer: $crate::inbox::group::Writer,
        ) {
            while let Some(batch) = writer.next_batch() {
                // Each database's own, beside its inbox.
                let stored = insert_all(&pool, &sql, &batch).await;
                $crate::inbox::group::reply(batch, stored);
            }
        }

        fn record(row: &$row) -> Result<$crate::inbox::Record, sqlx::Error> {
            use sqlx::Row as _;
            let state: String = row.try_get("state")?;
            Ok($crate::inbox::Record {
                message_id: row.try_get("message_id")?,
                timestamp: time::OffsetDateTime::from_unix_timestamp(row.try_get("timestamp")?)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                received_at: $crate::inbox::sql::from_millis(row.try_get("received_at")?),
                body: row.try_get("body")?,
                state: $crate::inbox::State::from_name(&state)
                    .ok_or_else(|| sqlx::Error::Decode(format!("state {state:?}").into()))?,
                attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                last_error: row.try_get("last_error")?,
                due_at: $crate::inbox::sql::from_millis(row.try_get("due_at")?),
                contact_id: row.try_get("contact_id")?,
                entity: row.try_get("entity")?,
            })
        }

        impl $crate::inbox::Inbox for $inbox {
            type Error = sqlx::Error;

            async fn store(&self, delivery: &$crate::inbox::Incoming<'_>) -> Result<bool, sqlx::Error> {
                let (answer, start) = self.group.push(delivery);
                if start {
                    let writer = write_batches(self.pool.clone(), self.sql.clone(), self.group.writer());
                    match tokio::runtime::Handle::try_current() {
                        Ok(runtime) => drop(runtime.spawn(writer)),
                        // sqlx needs a runtime: without one the store fails
                        // in the writer, run here.
                        Err(_) => writer.await,
                    }
                }
                let stored = answer.stored().await?;
                if stored {
                    self.stored_by_writer();
                }
                Ok(stored)
            }

            async fn claim_due(
                &self,
                n: usize,
                lease: std::time::Duration,
                max_attempts: u32,
                now: time::OffsetDateTime,
            ) -> Result<Vec<$crate::inbox::Record>, sqlx::Error> {
                use $crate::inbox::State;
                use $crate::inbox::sql::{limit, millis};
                let mut conflicts = 0u8;
                let rows = loop {
                    let rows = sqlx::query(&self.sql.claim_due)
                        .bind(millis($crate::inbox::later(now, lease)))
                        .bind(millis(now))
                        .bind(i64::from(max_attempts))
                        .bind($crate::inbox::NO_OUTCOME)
                        .bind(limit(n))
                        .bind($crate::inbox::SUPERSEDED_BY)
                        .fetch_all(&self.pool)
                        .await;
                    match rows {
                        // Another session claimed in the same lane meanwhile:
                        // the next statement sees its claim.
                        Err(sqlx::Error::Database(error)) if error.is_unique_violation() && conflicts < 3 => {
                            conflicts = conflicts.saturating_add(1);
                        }
                        rows => break rows?,
                    }
                };
                let mut claimed = Vec::with_capacity(rows.len());
                for row in &rows {
                    let record = record(row)?;
                    // Made dead in the same statement, not claimed.
                    if matches!(record.state, State::Processing | State::Superseded) {
                        claimed.push(record);
                    }
                }
                // Returned rows come in no order: oldest first within the batch.
                claimed.sort_by(|a, b| $crate::inbox::claim_order(a).cmp(&$crate::inbox::claim_order(b)));
                Ok(claimed)
            }

            async fn renew(
                &self,
                message_id: &str,
                attempt: u32,
                until: time::OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let renewed = sqlx::query(&self.sql.renew)
                    .bind($crate::inbox::sql::millis(until))
                    .bind(message_id)
                    .bind(i64::from(attempt))
                    .execute(&self.pool)
                    .await?;
                Ok(renewed.rows_affected() == 1)
            }

            async fn mark_done(&self, message_id: &str, attempt: u32) -> Result<bool, sqlx::Error> {
                let marked = sqlx::query(&self.sql.mark_done)
                    .bind(message_id)
                    .bind(i64::from(attempt))
                    .execute(&self.pool)
                    .await?;
                Ok(marked.rows_affected() == 1)
            }

            async fn record_all(
                &self,
                outcomes: &[$crate::inbox::Outcome<'_>],
            ) -> Result<Vec<bool>, sqlx::Error> {
                use sqlx::Row as _;
                use $crate::inbox::sql::millis;
                use $crate::inbox::{Outcome, State};
                let now = millis(time::OffsetDateTime::now_utc());
                let rows: Vec<(&str, u32, &str, Option<&str>, Option<i64>)> = outcomes
                    .iter()
                    .map(|outcome| {
                        let (state, error, due) = match *outcome {
                            Outcome::Done { .. } => (State::Done, None, None),
                            Outcome::Failed {
                                error,
                                retry_at: Some(at),
                                ..
                            } => (State::Failed, Some(error), Some(millis(at))),
                            Outcome::Failed {
                                error,
                                retry_at: None,
                                ..
                            } => (State::Dead, Some(error), Some(now)),
                        };
                        (
                            outcome.message_id(),
                            outcome.attempt(),
                            state.as_str(),
                            error,
                            due,
                        )
                    })
                    .collect();
                let json = serde_json::to_string(&rows).map_err(|error| sqlx::Error::Encode(error.into()))?;
                let recorded = sqlx::query(&self.sql.record_all)
                    .bind(json)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| {
                        let attempt = u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX);
                        Ok((row.try_get::<String, _>("message_id")?, attempt))
                    })
                    .collect::<Result<std::collections::HashSet<(String, u32)>, sqlx::Error>>()?;
                Ok(outcomes
                    .iter()
                    .map(|outcome| recorded.contains(&(outcome.message_id().to_owned(), outcome.attempt())))
                    .collect())
            }

            async fn mark_failed(
                &self,
                message_id: &str,
                attempt: u32,
                error: &str,
                retry_at: Option<time::OffsetDateTime>,
            ) -> Result<bool, sqlx::Error> {
                use $crate::inbox::sql::millis;
                let (state, due) = match retry_at {
                    Some(at) => ($crate::inbox::State::Failed, millis(at)),
                    None => (
                        $crate::inbox::State::Dead,
                        millis(time::OffsetDateTime::now_utc()),
                    ),
                };
                let marked = sqlx::query(&self.sql.mark_failed)
                    .bind(state.as_str())
                    .bind(error)
                    .bind(due)
                    .bind(message_id)
                    .bind(i64::from(attempt))
                    .execute(&self.pool)
                    .await?;
                Ok(marked.rows_affected() == 1)
            }

            async fn get(&self, message_id: &str) -> Result<Option<$crate::inbox::Record>, sqlx::Error> {
                let row = sqlx::query(&self.sql.get)
                    .bind(message_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(record).transpose()
            }

            async fn list(
                &self,
                state: $crate::inbox::State,
                n: usize,
            ) -> Result<Vec<$crate::inbox::Record>, sqlx::Error> {
                let rows = sqlx::query(&self.sql.list)
                    .bind(state.as_str())
                    .bind($crate::inbox::sql::limit(n))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(record).collect()
            }

            async fn replay(&self, message_id: &str, now: time::OffsetDateTime) -> Result<bool, sqlx::Error> {
                let replayed = sqlx::query(&self.sql.replay)
                    .bind($crate::inbox::sql::millis(now))
                    .bind(message_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some();
                if replayed {
                    self.stored().await;
                }
                Ok(replayed)
            }

            async fn erase_contact(&self, contact_id: &str) -> Result<u64, sqlx::Error> {
                self.erase_contact_on(&self.pool, contact_id).await
            }

            async fn drop_bodies(&self, before: time::OffsetDateTime) -> Result<u64, sqlx::Error> {
                let dropped = sqlx::query(&self.sql.drop_bodies)
                    .bind(&b""[..])
                    .bind($crate::inbox::sql::millis(before))
                    .execute(&self.pool)
                    .await?;
                Ok(dropped.rows_affected())
            }

            async fn counts(&self) -> Result<$crate::inbox::Counts, sqlx::Error> {
                use sqlx::Row as _;
                use $crate::inbox::sql::from_millis;
                use $crate::inbox::{State, age};
                let now = time::OffsetDateTime::now_utc();
                let mut counts = $crate::inbox::Counts::default();
                let mut due: Option<i64> = None;
                for row in sqlx::query(&self.sql.counts).fetch_all(&self.pool).await? {
                    let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
                    let state = State::from_name(row.try_get("state")?);
                    let (oldest_due, received): (i64, i64) = (row.try_get("due")?, row.try_get("received")?);
                    match state {
                        Some(State::Pending) => counts.pending = n,
                        Some(State::Processing) => counts.processing = n,
                        Some(State::Done) => counts.done = n,
                        Some(State::Failed) => counts.failed = n,
                        Some(State::Dead) => counts.dead = n,
                        Some(State::Superseded) => counts.superseded = n,
                        None => {}
                    }
                    match state {
                        Some(State::Pending | State::Failed | State::Processing) => {
                            due = Some(due.map_or(oldest_due, |at| at.min(oldest_due)));
                        }
                        Some(State::Dead) => counts.oldest_dead = age(from_millis(received), now),
                        _ => {}
                    }
                }
                counts.oldest_due = due.and_then(|at| age(from_millis(at), now));
                Ok(counts)
            }

            async fn purge_done(&self, before: time::OffsetDateTime) -> Result<u64, sqlx::Error> {
                use $crate::inbox::sql::millis;
                let purged = sqlx::query(&self.sql.purge_deliveries)
                    .bind(millis(before))
                    .execute(&self.pool)
                    .await?;
                sqlx::query(&self.sql.purge_claims)
                    .bind(millis(before))
                    .execute(&self.pool)
                    .await?;
                Ok(purged.rows_affected())
            }

            #[cfg(feature = "worker")]
            fn doorbell(&self) -> Option<&$crate::wake::Doorbell> {
                Some(&self.doorbell)
            }
        }

        impl $crate::inbox::TransactionalInbox for $inbox {
            type Database = $db;

            async fn begin(&self) -> Result<sqlx::Transaction<'static, $db>, sqlx::Error> {
                self.pool.begin_with(self.sql.begin).await
            }

            async fn commit_done(
                &self,
                mut tx: sqlx::Transaction<'static, $db>,
                message_id: &str,
                attempt: u32,
            ) -> Result<bool, sqlx::Error> {
                let marked = sqlx::query(&self.sql.mark_done_in)
                    .bind(message_id)
                    .bind(i64::from(attempt))
                    .execute(&mut *tx)
                    .await?;
                if marked.rows_affected() == 1 {
                    tx.commit().await?;
                    Ok(true)
                } else {
                    tx.rollback().await?;
                    Ok(false)
                }
            }

            async fn erase_contact_in(
                &self,
                tx: &mut <$db as sqlx::Database>::Connection,
                contact_id: &str,
            ) -> Result<u64, sqlx::Error> {
                self.erase_contact_on(tx, contact_id).await
            }
        }

        impl $inbox {
            async fn erase_contact_on<'c, E>(&self, executor: E, contact_id: &str) -> Result<u64, sqlx::Error>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let erased = sqlx::query(&self.sql.erase_contact)
                    .bind(&b""[..])
                    .bind($crate::inbox::ERASED)
                    .bind(contact_id)
                    .execute(executor)
                    .await?;
                Ok(erased.rows_affected())
            }
        }

        /// Claims for inline handling ([`Webhook::handle`](crate::Webhook::handle)),
        /// in the claims table: one statement each, so they hold across
        /// processes sharing the database.
        impl $crate::idempotency::IdempotencyStore for $inbox {
            type Error = sqlx::Error;

            async fn claim(
                &self,
                key: &str,
                lease: std::time::Duration,
            ) -> Result<$crate::idempotency::Claim, sqlx::Error> {
                use sqlx::Row as _;
                use $crate::idempotency::Claim;
                use $crate::inbox::sql::millis;
                let now = time::OffsetDateTime::now_utc();
                let taken = sqlx::query(&self.sql.claim)
                    .bind(key)
                    .bind(millis($crate::inbox::later(now, lease)))
                    .bind(millis(now))
                    .fetch_optional(&self.pool)
                    .await?;
                if taken.is_some() {
                    return Ok(Claim::New);
                }
                let done: Option<bool> = sqlx::query(&self.sql.claim_state)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| row.try_get("done"))
                    .transpose()?;
                Ok(match done {
                    Some(true) => Claim::Done,
                    // Held, or released between the two statements: ask again later.
                    Some(false) | None => Claim::InProgress,
                })
            }

            async fn complete(&self, key: &str) -> Result<(), sqlx::Error> {
                sqlx::query(&self.sql.complete)
                    .bind($crate::inbox::sql::millis(time::OffsetDateTime::now_utc()))
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
            }

            async fn release(&self, key: &str) -> Result<(), sqlx::Error> {
                sqlx::query(&self.sql.release)
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
            }
        }
    };
}
pub(crate) use sql_inbox;
