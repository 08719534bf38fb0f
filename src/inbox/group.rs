//! Group commit for the SQL inboxes' `store`: deliveries stored at the same
//! time share one transaction and one commit. One writer task per inbox
//! handle takes everything that arrived while its last commit ran, and
//! answers each store once the commit that holds it is done; with nothing
//! waiting it stops, and the next store starts it again, so an idle inbox adds
//! no delay. The writer is a task of its own, so that a store whose request is
//! dropped takes nobody else's answer with it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::{Incoming, millis};

/// The most deliveries one commit takes: more wait for the next.
const MAX_BATCH: usize = 512;

/// A delivery to store, owned by the writer, with the answer's way back.
pub(crate) struct Job {
    pub(crate) row: Row,
    reply: oneshot::Sender<Result<bool, Arc<sqlx::Error>>>,
}

/// An [`Incoming`] as its row's columns.
pub(crate) struct Row {
    pub(crate) message_id: String,
    pub(crate) timestamp: i64,
    pub(crate) received_at: i64,
    pub(crate) body: Vec<u8>,
    pub(crate) state: &'static str,
    pub(crate) error: Option<String>,
    pub(crate) created_at: Option<i64>,
    pub(crate) contact_id: Option<String>,
    pub(crate) entity: Option<String>,
}

impl Row {
    fn of(delivery: &Incoming<'_>) -> Row {
        let state = match delivery.error {
            Some(_) => super::State::Failed,
            None => super::State::Pending,
        };
        Row {
            message_id: delivery.message_id.to_owned(),
            timestamp: delivery.timestamp.unix_timestamp(),
            received_at: millis(delivery.received_at),
            body: delivery.body.to_vec(),
            state: state.as_str(),
            error: delivery.error.clone(),
            created_at: delivery.created_at().map(millis),
            contact_id: delivery.contact_id.map(str::to_owned),
            entity: delivery.lane().map(|(_, entity)| entity.to_owned()),
        }
    }
}

/// The stores waiting for the next commit.
#[derive(Debug, Default)]
pub(crate) struct Group {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Job>,
    /// A writer is running: it takes what waits.
    writing: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("waiting", &self.waiting.len())
            .field("writing", &self.writing)
            .finish()
    }
}

impl Group {
    /// Queues `delivery` for the next commit: the answer to wait for, and
    /// whether the caller must start the writer (none is running).
    pub(crate) fn push(&self, delivery: &Incoming<'_>) -> (Answer, bool) {
        let (reply, answer) = oneshot::channel();
        let mut queue = self.lock();
        queue.waiting.push(Job {
            row: Row::of(delivery),
            reply,
        });
        let start = !std::mem::replace(&mut queue.writing, true);
        (Answer(answer), start)
    }

    /// The writer's hold on the group: what it takes batches through, and
    /// what fails the stores left waiting if the writer ends abnormally.
    pub(crate) fn writer(self: &Arc<Self>) -> Writer {
        Writer {
            group: self.clone(),
            stopped: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running writer's hold on its [`Group`].
pub(crate) struct Writer {
    group: Arc<Group>,
    /// It found nothing waiting and stopped: the next store starts another,
    /// whose queue this one's drop must leave alone.
    stopped: bool,
}

impl Writer {
    /// The next batch, in message id order (so that concurrent commits from
    /// two inbox handles take their rows' locks in one order, and never
    /// deadlock); `None` once nothing waits, when the writer stops.
    pub(crate) fn next_batch(&mut self) -> Option<Vec<Job>> {
        let mut queue = self.group.lock();
        if queue.waiting.is_empty() {
            queue.writing = false;
            self.stopped = true;
            return None;
        }
        let taken = queue.waiting.len().min(MAX_BATCH);
        let rest = queue.waiting.split_off(taken);
        let mut batch = std::mem::replace(&mut queue.waiting, rest);
        drop(queue);
        batch.sort_by(|a, b| a.row.message_id.cmp(&b.row.message_id));
        Some(batch)
    }
}

/// A writer that ends before its queue is empty (its task aborted as its
/// runtime shuts down) answers the stores still waiting with an error, and
/// lets the next store start another.
impl Drop for Writer {
    fn drop(&mut self) {
        if !self.stopped {
            let mut queue = self.group.lock();
            queue.writing = false;
            queue.waiting.clear();
        }
    }
}

/// Answers every store of `batch`: whether each was stored now, or the
/// error that failed their commit, for all.
pub(crate) fn reply(batch: Vec<Job>, stored: Result<Vec<bool>, sqlx::Error>) {
    match stored {
        Ok(stored) => {
            for (job, stored) in batch.into_iter().zip(stored) {
                // A store whose request was dropped is stored all the same.
                let _ = job.reply.send(Ok(stored));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            let mut jobs = batch.into_iter();
            let last = jobs.next_back();
            for job in jobs {
                let _ = job.reply.send(Err(error.clone()));
            }
            // The last takes the writer's own reference: alone in its batch,
            // it gets the error itself.
            if let Some(job) = last {
                let _ = job.reply.send(Err(error));
            }
        }
    }
}

/// One store's answer, once its commit is done.
pub(crate) struct Answer(oneshot::Receiver<Result<bool, Arc<sqlx::Error>>>);

impl Answer {
    /// Whether the delivery was stored now (`false`: its id was stored
    /// already); the commit's error if it failed, which is shared by the
    /// batch (the original itself where it was the only one).
    pub(crate) async fn stored(self) -> Result<bool, sqlx::Error> {
        match self.0.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(error)) => Err(Arc::try_unwrap(error)
                .unwrap_or_else(|shared| sqlx::Error::Io(std::io::Error::other(shared)))),
            Err(_) => Err(sqlx::Error::Io(std::io::Error::other(
                "the inbox's writer stopped (its runtime shut down) before this delivery's commit",
            ))),
        }
    }
}
