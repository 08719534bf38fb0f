//! Wake-ups (feature `worker`): how a delivery an inbox stores reaches the
//! workers waiting on that inbox at once, instead of at their next poll.
//!
//! A [`Doorbell`] is a counter in a `tokio::sync::watch` channel: ringing bumps
//! it, and each worker's [`Wakeups`] sees any bump since it last looked, so a
//! ring between a worker's claim and its wait is never missed, and every worker
//! wakes. An inbox shared by several processes (PostgreSQL) also rings it from
//! a listener the first subscription starts, one per inbox handle and so one
//! connection per process, stopped when the last subscription is dropped.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts the task that rings a doorbell from outside the process.
type StartListener = Box<dyn Fn(watch::Sender<u64>) -> JoinHandle<()> + Send + Sync>;

/// What an [`Inbox`](crate::Inbox) rings when it has stored or replayed a
/// delivery, and what workers on it wait on between polls.
///
/// The built-in inboxes ring their own; an inbox of your own returns one from
/// [`Inbox::doorbell`](crate::Inbox::doorbell) and rings it from `store` and
/// `replay`.
///
/// ```
/// use voyado_webhooks::Doorbell;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let doorbell = Doorbell::new();
/// let mut wakeups = doorbell.subscribe();
/// doorbell.ring();
/// wakeups.rung().await; // returns at once: it was rung since `subscribe`
/// # }
/// ```
pub struct Doorbell {
    rung: watch::Sender<u64>,
    listener: Option<StartListener>,
    listening: Mutex<Weak<Listening>>,
}

/// A running listener, aborted when the last [`Wakeups`] holding it is dropped.
struct Listening(JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Doorbell {
    /// A doorbell rung from within this process only.
    pub fn new() -> Self {
        Doorbell {
            rung: watch::Sender::new(0),
            listener: None,
            listening: Mutex::new(Weak::new()),
        }
    }

    /// A doorbell also rung by a task `start` spawns, while anyone subscribes.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_listener(
        start: impl Fn(watch::Sender<u64>) -> JoinHandle<()> + Send + Sync + 'static,
    ) -> Self {
        Doorbell {
            listener: Some(Box::new(start)),
            ..Doorbell::new()
        }
    }

    /// Wakes every worker waiting on this doorbell, and every one that waits
    /// next without having cleared its [`Wakeups`] since.
    pub fn ring(&self) {
        self.rung.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Wake-ups from now on. On an inbox shared between processes, the first
    /// subscription starts listening for the others (inside a tokio runtime).
    pub fn subscribe(&self) -> Wakeups {
        let listening = self.listener.as_ref().map(|start| {
            let mut running = self.listening.lock().unwrap_or_else(PoisonError::into_inner);
            running.upgrade().unwrap_or_else(|| {
                let listening = Arc::new(Listening(start(self.rung.clone())));
                *running = Arc::downgrade(&listening);
                listening
            })
        });
        Wakeups {
            rung: self.rung.subscribe(),
            _listening: listening,
        }
    }
}

impl Default for Doorbell {
    fn default() -> Self {
        Doorbell::new()
    }
}

impl fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doorbell")
            .field("rings", &*self.rung.borrow())
            .field("listens", &self.listener.is_some())
            .finish()
    }
}

/// One worker's view of a [`Doorbell`]: whether it was rung since the worker
/// last cleared it.
#[derive(Debug)]
pub struct Wakeups {
    rung: watch::Receiver<u64>,
    _listening: Option<Arc<Listening>>,
}

impl fmt::Debug for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Listening")
    }
}

impl Wakeups {
    /// Forgets the rings so far: call it before looking for work, so that a
    /// ring while looking ends the next [`rung`](Self::rung).
    pub fn clear(&mut self) {
        self.rung.borrow_and_update();
    }

    /// Waits until the doorbell is rung, returning at once if it was since the
    /// last [`clear`](Self::clear).
    pub async fn rung(&mut self) {
        if self.rung.changed().await.is_err() {
            // The doorbell is gone with its inbox: nothing will ring again.
            std::future::pending::<()>().await;
        }
    }
}
