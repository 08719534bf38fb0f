//! Group commit in `accept`, against a SQLite file and the PostgreSQL server
//! the tests start: deliveries that arrive while a commit runs share the
//! next one. The tests hold the inbox's writer up with a lock taken from
//! another connection, so that what arrives meanwhile forms one batch; then
//! a commit that fails answers 503 to every request in it (and stores none of
//! them), a duplicate within a batch is answered as one, and a request
//! dropped while its batch commits is stored all the same.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::deliveries::{SECRET, accept, body, now};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use tokio::task::JoinHandle;
use voyado_webhooks::{Accepted, Inbox, PostgresInbox, SqliteInbox, Webhook};

/// What a body must contain for the test's trigger to fail its commit.
const POISON: &str = "poison-commit";

/// A connection holding a lock that makes the inbox's inserts wait.
enum Hold {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Hold {
    async fn release(self) {
        match self {
            Hold::Sqlite(mut connection) => drop(connection.execute("ROLLBACK").await.unwrap()),
            Hold::Postgres(mut connection) => drop(connection.execute("ROLLBACK").await.unwrap()),
        }
    }
}

/// The database-specific parts: a trigger that fails, at commit, a
/// transaction that stored a poisoned body, and a lock that holds the writer.
trait Database: Inbox + Sized + Send + Sync + 'static {
    async fn poison(&self, url: &str);
    async fn cure(&self, url: &str);
    async fn hold(&self, url: &str) -> Hold;
}

impl Database for SqliteInbox {
    async fn poison(&self, _: &str) {
        // A deferred foreign key is checked at commit.
        sqlx::raw_sql(
            "CREATE TABLE parent (id TEXT PRIMARY KEY);
             CREATE TABLE child (parent_id TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER poison AFTER INSERT ON voyado_deliveries
             WHEN CAST(NEW.body AS TEXT) LIKE '%poison-commit%'
             BEGIN INSERT INTO child VALUES ('missing'); END;",
        )
        .execute(self.pool())
        .await
        .unwrap();
    }

    async fn cure(&self, _: &str) {
        sqlx::raw_sql("DROP TRIGGER poison")
            .execute(self.pool())
            .await
            .unwrap();
    }

    async fn hold(&self, url: &str) -> Hold {
        let mut connection = SqliteConnection::connect(url).await.unwrap();
        connection.execute("BEGIN IMMEDIATE").await.unwrap();
        Hold::Sqlite(connection)
    }
}

impl Database for PostgresInbox {
    async fn poison(&self, _: &str) {
        // A deferred constraint trigger runs at commit.
        sqlx::raw_sql(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 IF position('poison-commit' IN convert_from(NEW.body, 'UTF8')) > 0 THEN
                     RAISE EXCEPTION 'a poisoned body';
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON voyado_deliveries
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .execute(self.pool())
        .await
        .unwrap();
    }

    async fn cure(&self, _: &str) {
        sqlx::raw_sql("DROP TRIGGER poison ON voyado_deliveries")
            .execute(self.pool())
            .await
            .unwrap();
    }

    async fn hold(&self, url: &str) -> Hold {
        let mut connection = PgConnection::connect(url).await.unwrap();
        connection.execute("BEGIN").await.unwrap();
        connection
            .execute("LOCK TABLE voyado_deliveries IN SHARE MODE")
            .await
            .unwrap();
        Hold::Postgres(connection)
    }
}

/// `accept` of `body` as `id`, in a task of its own.
fn spawn_accept<I: Inbox + 'static>(
    webhook: &Arc<Webhook>,
    inbox: &Arc<I>,
    id: &str,
    body: Vec<u8>,
) -> JoinHandle<Result<Accepted, u16>> {
    let (webhook, inbox, id) = (webhook.clone(), inbox.clone(), id.to_owned());
    tokio::spawn(async move {
        let headers = webhook.signed_headers(&id, now(), &body);
        webhook
            .accept(&headers, &body, &*inbox)
            .await
            .map_err(|error| error.status_code())
    })
}

/// The first delivery after the hold is taken by the writer alone, which
/// then waits for the lock; those sent after it queue for the next batch.
async fn a_failed_commit_answers_503_to_its_whole_batch<I: Database>(inbox: Arc<I>, url: &str) {
    let webhook = Arc::new(Webhook::new(SECRET).unwrap());
    inbox.poison(url).await;
    let mut batch: Vec<(String, Vec<u8>)> = (0..9)
        .map(|i| (format!("msg_b{i}"), body(&format!("c-{i}"))))
        .collect();
    batch.push(("msg_poison".to_owned(), body(POISON)));
    let hold = inbox.hold(url).await;
    let first = spawn_accept(&webhook, &inbox, "msg_first", body("c-first"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rest: Vec<_> = batch
        .iter()
        .map(|(id, body)| spawn_accept(&webhook, &inbox, id, body.clone()))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!first.is_finished(), "the held writer waits");
    hold.release().await;
    assert_eq!(first.await.unwrap(), Ok(Accepted::Stored));
    for (task, (id, _)) in rest.into_iter().zip(&batch) {
        assert_eq!(task.await.unwrap(), Err(503), "{id}: its batch's commit failed");
        assert!(inbox.get(id).await.unwrap().is_none(), "{id} is not half stored");
    }
    // Svix retries each of them; without the poison, all are stored.
    inbox.cure(url).await;
    for (id, body) in &batch {
        assert_eq!(accept(&webhook, &*inbox, id, body).await, 200);
        assert!(inbox.get(id).await.unwrap().is_some(), "{id}");
    }
}

async fn a_duplicate_within_a_batch_is_a_duplicate<I: Database>(inbox: Arc<I>, url: &str) {
    let webhook = Arc::new(Webhook::new(SECRET).unwrap());
    let hold = inbox.hold(url).await;
    let first = spawn_accept(&webhook, &inbox, "msg_first_dup", body("c-first"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let twice: Vec<_> = (0..2)
        .map(|_| spawn_accept(&webhook, &inbox, "msg_dup", body("c-dup")))
        .collect();
    let other = spawn_accept(&webhook, &inbox, "msg_other", body("c-other"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    hold.release().await;
    assert_eq!(first.await.unwrap(), Ok(Accepted::Stored));
    let mut answers = Vec::new();
    for task in twice {
        answers.push(task.await.unwrap().unwrap());
    }
    answers.sort_by_key(|answer| *answer == Accepted::Duplicate);
    assert_eq!(answers, [Accepted::Stored, Accepted::Duplicate]);
    assert_eq!(other.await.unwrap(), Ok(Accepted::Stored));
    assert!(inbox.get("msg_dup").await.unwrap().is_some());
}

async fn a_dropped_request_is_stored_with_its_batch<I: Database>(inbox: Arc<I>, url: &str) {
    let webhook = Arc::new(Webhook::new(SECRET).unwrap());
    let hold = inbox.hold(url).await;
    let first = spawn_accept(&webhook, &inbox, "msg_first_drop", body("c-first"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dropped = spawn_accept(&webhook, &inbox, "msg_dropped", body("c-dropped"));
    let kept = spawn_accept(&webhook, &inbox, "msg_kept", body("c-kept"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The request goes away (Svix's 15 s time-out, a client that hung up)
    // while its delivery waits for the commit.
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    hold.release().await;
    assert_eq!(first.await.unwrap(), Ok(Accepted::Stored));
    assert_eq!(kept.await.unwrap(), Ok(Accepted::Stored));
    assert!(
        inbox.get("msg_dropped").await.unwrap().is_some(),
        "stored with its batch"
    );
    // Svix, which had no answer, retries: a duplicate, answered 200.
    let retried = webhook
        .accept(
            &webhook.signed_headers("msg_dropped", now(), &body("c-dropped")),
            &body("c-dropped"),
            &*inbox,
        )
        .await;
    assert_eq!(retried.unwrap(), Accepted::Duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit() {
    let url = common::sqlite_file("group");
    let inbox = Arc::new(SqliteInbox::connect(&url).await.unwrap());
    a_duplicate_within_a_batch_is_a_duplicate(inbox.clone(), &url).await;
    a_dropped_request_is_stored_with_its_batch(inbox.clone(), &url).await;
    a_failed_commit_answers_503_to_its_whole_batch(inbox, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_group_commit() {
    let cluster = common::postgres::Cluster::start();
    let url = cluster.url();
    let inbox = Arc::new(PostgresInbox::connect(&url).await.unwrap());
    a_duplicate_within_a_batch_is_a_duplicate(inbox.clone(), &url).await;
    a_dropped_request_is_stored_with_its_batch(inbox.clone(), &url).await;
    a_failed_commit_answers_503_to_its_whole_batch(inbox, &url).await;
}
