//! [`Worker`] (feature `worker`): processes an inbox on the caller's tokio
//! runtime until told to stop.
//!
//! The loop claims only as many deliveries as it has free slots, so no claim
//! waits for its turn; each runs in a task of its own, which renews the claim
//! while the handler runs (fenced by the attempt number) and abandons the
//! handler if the claim is lost or the handler outlives its timeout. A task
//! hands its outcome back (a transactional handler's success is recorded in
//! its own commit); outcomes are recorded a batch at a time, one statement for
//! all that finished while the previous one ran, successes and failures alike,
//! beside the loop, which claims the freed slots meanwhile.
//! Between claims the loop waits for the first of: a task finishing, a batch
//! recorded, the inbox's [`Doorbell`](crate::Doorbell), a failed delivery's
//! retry coming due, the poll interval, or the shutdown signal.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::inbox::{Inbox, Outcome, Processed, Record, State, age, later};
use crate::process::{Attempted, Concluded, Handles, panic_message};
use crate::retention::Retention;
use crate::trace::{self, Span};
use crate::verify::Webhook;

/// Deliveries in flight at once, by default.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// How often an idle worker looks for due deliveries it was not woken for, by
/// default: retries coming due, and leases lapsed in other processes.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long a handler may run before it is abandoned as a failed attempt, by
/// default.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping worker waits for the deliveries in flight, by default.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(15);
/// The longest a worker waits before claiming again after the inbox failed.
const INBOX_RETRY: Duration = Duration::from_secs(1);
/// How long a stopping worker waits for the answer to a claim under way: a
/// round trip, many times over. One not back by then waits on an inbox that
/// is not there, and the stop must not wait on it.
const CLAIM_AT_STOP: Duration = Duration::from_millis(250);

/// Processes the deliveries in an [`Inbox`]: runs
/// [`Webhook::process`](crate::Webhook::process)'s steps with concurrency,
/// wake-ups, lease renewal, a handler timeout and graceful shutdown, on the
/// caller's tokio runtime.
///
/// What it guarantees, on top of the inbox's:
///
/// - **A handler's failure, panic or timeout is a failed attempt**, retried by
///   the webhook's [`RetryPolicy`](crate::RetryPolicy) and dead after the
///   last; the worker and the other deliveries go on.
/// - **A claim is kept while its handler runs**: renewed every third of the
///   webhook's lease ([`Webhook::with_lease`](crate::Webhook::with_lease)), so
///   no other worker starts a delivery whose handler is still running, however
///   long it takes. If a renewal is refused (the claim was taken over) or the
///   lease lapses unrenewed (the inbox unreachable), the handler is abandoned
///   and nothing is recorded over the new holder.
/// - **A delivery accepted in this process is started at once**, and on
///   PostgreSQL one accepted by any process (`LISTEN`/`NOTIFY`); polling is the
///   fallback.
/// - **A stop lets running work finish**: once the shutdown signal fires, no
///   new delivery is claimed (the answer to a claim already under way is
///   waited for a moment, and what it took is run), and
///   [`run_until`](Self::run_until) returns when the deliveries in flight have
///   finished, or after the grace period (from the signal), when the rest are
///   abandoned: still claimed, they are retried after their lease.
/// - **An inbox outage stops nothing**: a failed claim is tried again within a
///   second; an outcome that could not be recorded leaves the delivery to be
///   claimed again after its lease.
///
/// What it does not, with an [`AsyncEventHandler`](crate::AsyncEventHandler):
/// a handler's effect and the inbox's record of it are two commits, so a
/// crash between them runs the handler again. Key your writes by
/// [`Context::message_id`](crate::Context::message_id), or, where they go to
/// the inbox's database, make the handler a
/// [`TransactionalHandler`](crate::TransactionalHandler) and run it
/// [`InTransaction`](crate::InTransaction): effect and record are then one
/// commit.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use voyado_webhooks::{AsyncEventHandler, MemoryInbox, Webhook, Worker};
///
/// struct Shop;
/// impl AsyncEventHandler for Shop {
///     type Error = std::convert::Infallible;
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let webhook = Arc::new(Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
/// let inbox = Arc::new(MemoryInbox::new());
/// let worker = Worker::new(webhook.clone(), inbox.clone(), Arc::new(Shop))
///     .concurrency(8)
///     .poll_interval(Duration::from_secs(5));
/// // In a real receiver the signal is Ctrl-C: `async { tokio::signal::ctrl_c().await.ok(); }`.
/// let stopped = worker.run_until(tokio::time::sleep(Duration::from_millis(10))).await?;
/// assert_eq!(stopped.processed.handled, 0);
/// # Ok(())
/// # }
/// ```
pub struct Worker<I: ?Sized, H: ?Sized> {
    webhook: Arc<Webhook>,
    inbox: Arc<I>,
    handler: Arc<H>,
    concurrency: usize,
    batch_size: Option<usize>,
    poll_interval: Duration,
    handler_timeout: Duration,
    grace_period: Duration,
    retention: Option<Retention>,
}

/// What a worker did before [`Worker::run_until`] returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stopped {
    /// Attempts recorded (handled, failed to be retried, dead), and those
    /// whose claim was lost (taken over, or lapsed unrenewed: the handler was
    /// abandoned, or its outcome refused), with nothing recorded. `skipped`
    /// stays 0: a worker claims no more than it can start.
    pub processed: Processed,
    /// Attempts whose outcome the inbox failed to record; each is claimed
    /// again after its lease.
    pub unrecorded: usize,
    /// Deliveries still running when the grace period ended: abandoned, and
    /// claimed again after their lease.
    pub cut_off: usize,
}

/// How one delivery's task ended.
enum Ran {
    /// The attempt ended with its claim still held: its outcome is to be
    /// recorded.
    Ended(Ending),
    /// Recorded already, in a transactional handler's commit.
    Recorded(Concluded),
    /// The claim was lost: nothing was recorded.
    LostLease,
    /// The inbox failed to record the outcome.
    Unrecorded,
}

/// An attempt's outcome waiting to be recorded: its claim (message id,
/// attempt), the error and retry time if it failed, and its span.
struct Ending {
    message_id: String,
    attempt: u32,
    failure: Option<(String, Option<OffsetDateTime>)>,
    span: Span,
}

impl Ending {
    fn outcome(&self) -> Outcome<'_> {
        let (message_id, attempt) = (self.message_id.as_str(), self.attempt);
        match &self.failure {
            None => Outcome::Done { message_id, attempt },
            Some((error, retry_at)) => Outcome::Failed {
                message_id,
                attempt,
                error,
                retry_at: *retry_at,
            },
        }
    }

    /// What is recorded once its outcome is.
    fn concluded(&self) -> Concluded {
        match &self.failure {
            None => Concluded::Handled,
            Some((_, Some(at))) => Concluded::Failed(*at),
            Some((_, None)) => Concluded::Dead,
        }
    }
}

impl<I, H> Worker<I, H>
where
    I: Inbox + ?Sized + 'static,
    H: Handles<I> + ?Sized + 'static,
{
    /// A worker dispatching `inbox`'s deliveries to `handler`, with `webhook`'s
    /// lease, retry policy and decryption key: an
    /// [`AsyncEventHandler`](crate::AsyncEventHandler), or, on a SQL inbox, a
    /// [`TransactionalHandler`](crate::TransactionalHandler) in
    /// [`InTransaction`](crate::InTransaction), whose deliveries are marked
    /// done in the handler's own commit.
    pub fn new(webhook: Arc<Webhook>, inbox: Arc<I>, handler: Arc<H>) -> Self {
        Worker {
            webhook,
            inbox,
            handler,
            concurrency: DEFAULT_CONCURRENCY,
            batch_size: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
            grace_period: DEFAULT_GRACE_PERIOD,
            retention: None,
        }
    }

    /// At most `concurrency` deliveries in flight at once (at least 1; default
    /// [`DEFAULT_CONCURRENCY`]).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// At most `batch_size` deliveries claimed in one statement (at least 1;
    /// by default as many as the concurrency allows). Never more than the
    /// slots free, so no claimed delivery waits for its turn.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size.max(1));
        self
    }

    /// How often to look for due deliveries nothing woke the worker for
    /// (default [`DEFAULT_POLL_INTERVAL`]): leases lapsed in processes that
    /// died, and retries scheduled by other workers. This worker's own retries
    /// are claimed when they come due.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long a handler may run (default [`DEFAULT_HANDLER_TIMEOUT`]); past
    /// it, it is abandoned and the attempt recorded as failed.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// How long [`run_until`](Self::run_until) waits for the deliveries in
    /// flight after the signal (default [`DEFAULT_GRACE_PERIOD`]).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// Applies `retention` to the inbox when the worker starts and every
    /// [`Retention::interval`] while it runs, beside the deliveries (by
    /// default the worker keeps everything: call
    /// [`Retention::apply`] yourself, or give one worker per inbox a
    /// retention; several do no harm).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Processes deliveries until `shutdown` completes, then lets the ones in
    /// flight finish (up to the grace period) and returns what it did.
    ///
    /// It never fails: inbox errors are retried and handler errors recorded
    /// (the `Result` lets it sit behind `?` in a `main` that returns errors).
    /// The future is `Send`, so it can be `tokio::spawn`ed; run as many
    /// workers as you like, in one process or several, on one inbox.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<Stopped, Infallible> {
        let max_in_flight = self.concurrency;
        let batch = self.batch_size.unwrap_or(max_in_flight);
        let mut wakeups = self.inbox.doorbell().map(crate::wake::Doorbell::subscribe);
        trace::worker_started(max_in_flight, self.poll_interval, wakeups.is_some());
        let mut shutdown = std::pin::pin!(shutdown);
        // Aborted when dropped, as this returns.
        let mut background = JoinSet::new();
        if let Some(retention) = self.retention {
            background.spawn(prune(self.inbox.clone(), retention));
        }
        let mut tasks = JoinSet::new();
        let mut done = Completions::default();
        let mut stopped = Stopped::default();
        // Whether there may be due deliveries this worker has not claimed.
        let mut look = true;
        let mut next_poll = Instant::now();
        // When the stop began: the grace period runs from then.
        let stopping_since = loop {
            done.flush(&self.inbox);
            // Outcomes not yet recorded still hold their claims: at most
            // another `concurrency` of them.
            let free = match done.unrecorded() < max_in_flight {
                true => max_in_flight.saturating_sub(tasks.len()),
                false => 0,
            };
            if (look || Instant::now() >= next_poll) && free > 0 {
                if let Some(wakeups) = wakeups.as_mut() {
                    // A ring while claiming is kept for the wait below.
                    wakeups.clear();
                }
                let want = free.min(batch);
                let claim = self.claim(want);
                let mut claim = std::pin::pin!(claim);
                // A stop during a claim waits a moment for its answer: what the
                // claim took is run (or counted, if superseded) like any other,
                // rather than left to wait out its lease. A claim stuck on an
                // unreachable inbox is given up; if it had gone through, its
                // deliveries are taken again after their lease, as attempts
                // that ended without an outcome.
                let (claimed, stopping) = tokio::select! {
                    biased;
                    claimed = &mut claim => (claimed, None),
                    () = &mut shutdown => {
                        let since = Instant::now();
                        let wait = self.grace_period.min(CLAIM_AT_STOP);
                        match tokio::time::timeout(wait, claim).await {
                            Ok(claimed) => (claimed, Some(since)),
                            Err(_) => break since,
                        }
                    }
                };
                match claimed {
                    Ok(claimed) => {
                        // A full batch: there may be more.
                        look = claimed.len() == want;
                        next_poll = after(self.poll_interval);
                        for record in claimed {
                            if record.state == State::Superseded {
                                let span = Span::start("worker");
                                span.delivery(&record.message_id, record.attempts);
                                span.finish("superseded");
                                stopped.processed.superseded = stopped.processed.superseded.saturating_add(1);
                            } else {
                                tasks.spawn(self.run(record));
                            }
                        }
                    }
                    Err(error) => {
                        trace::inbox_failed("claim", &error);
                        look = false;
                        next_poll = after(self.poll_interval.min(INBOX_RETRY));
                    }
                }
                if let Some(since) = stopping {
                    break since;
                }
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break Instant::now(),
                Some(ran) = tasks.join_next() => {
                    // Every task finished by now, so that their slots are
                    // claimed in one statement.
                    let finished = std::iter::once(ran).chain(std::iter::from_fn(|| tasks.try_join_next()));
                    let before = stopped.processed;
                    done.count(&mut stopped, finished);
                    // A commit or a lost claim frees a lane, as below.
                    look |= stopped.processed != before;
                }
                Some(recorded) = done.recording.join_next() => {
                    if let Some(retry_at) = done.recorded(&mut stopped, recorded) {
                        next_poll = next_poll.min(instant_at(retry_at));
                    }
                    // A recorded outcome frees its lane: a state held back
                    // behind it may be claimed now.
                    look = true;
                }
                () = rung(wakeups.as_mut()) => {
                    trace::woken();
                    look = true;
                }
                () = tokio::time::sleep_until(next_poll), if free > 0 => look = true,
            }
        };
        trace::worker_stopping(tasks.len());
        let grace = tokio::time::sleep_until(after_from(stopping_since, self.grace_period));
        let mut grace = std::pin::pin!(grace);
        loop {
            done.flush(&self.inbox);
            if tasks.is_empty() && done.unrecorded() == 0 {
                break;
            }
            tokio::select! {
                Some(ran) = tasks.join_next() => {
                    let finished = std::iter::once(ran).chain(std::iter::from_fn(|| tasks.try_join_next()));
                    done.count(&mut stopped, finished);
                }
                Some(recorded) = done.recording.join_next() => {
                    done.recorded(&mut stopped, recorded);
                }
                () = &mut grace => {
                    stopped.cut_off = tasks.len();
                    tasks.shutdown().await;
                    done.abandon(&mut stopped).await;
                    break;
                }
            }
        }
        let processed = &stopped.processed;
        trace::worker_stopped(
            [
                processed.handled,
                processed.failed,
                processed.dead,
                processed.lost,
            ],
            stopped.unrecorded,
            stopped.cut_off,
        );
        Ok(stopped)
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Record>, I::Error> {
        let processing = self.webhook.processing;
        let max_attempts = processing.retry.max_attempts();
        self.inbox
            .claim_due(limit, processing.lease, max_attempts, OffsetDateTime::now_utc())
            .await
    }

    /// The task of one claimed delivery: the attempt, with the claim renewed
    /// while it runs; its outcome is handed back, to be recorded with others.
    fn run(&self, record: Record) -> impl Future<Output = Ran> + Send + 'static {
        let (webhook, inbox, handler) = (self.webhook.clone(), self.inbox.clone(), self.handler.clone());
        let (lease, timeout) = (self.webhook.processing.lease, self.handler_timeout);
        async move {
            let span = Span::start("worker");
            span.delivery(&record.message_id, record.attempts);
            let attempt = handler.run(&webhook, &*inbox, &record, &span);
            let failure = match keep_leased(&*inbox, &record, lease, timeout, attempt).await {
                Leased::Ended(Attempted::Succeeded) => None,
                Leased::Ended(Attempted::Failed(error)) => Some(error),
                Leased::TimedOut => Some(format!(
                    "the handler did not finish within its timeout of {timeout:?}"
                )),
                Leased::Ended(Attempted::Committed) => {
                    span.finish(Concluded::Handled.outcome());
                    return Ran::Recorded(Concluded::Handled);
                }
                Leased::Ended(Attempted::Refused) | Leased::Lost => {
                    trace::lease_lost(&record.message_id, record.attempts);
                    span.finish("lease_lost");
                    return Ran::LostLease;
                }
                Leased::Ended(Attempted::Inbox(error)) => {
                    trace::inbox_failed("record", &error);
                    span.finish("store_failed");
                    return Ran::Unrecorded;
                }
            };
            Ran::Ended(Ending {
                failure: failure.map(|error| webhook.failure(record.attempts, &error)),
                message_id: record.message_id,
                attempt: record.attempts,
                span,
            })
        }
    }
}

/// Outcomes waiting to be recorded, a batch at a time (group commit): while
/// one batch's statement runs, the next gathers, and a freed slot is claimed
/// again without waiting for its delivery's record.
struct Completions<E> {
    waiting: Vec<Ending>,
    recording: JoinSet<Batch<E>>,
    in_recording: usize,
}

/// A recorded batch, and for each of its outcomes whether it was recorded
/// (its claim still held).
type Batch<E> = (Vec<Ending>, Result<Vec<bool>, E>);

impl<E> Default for Completions<E> {
    fn default() -> Self {
        Completions {
            waiting: Vec::new(),
            recording: JoinSet::new(),
            in_recording: 0,
        }
    }
}

impl<E: std::fmt::Display + Send + 'static> Completions<E> {
    /// Outcomes whose claims are held, not yet recorded.
    fn unrecorded(&self) -> usize {
        self.waiting.len().saturating_add(self.in_recording)
    }

    /// Starts recording what is waiting, unless a batch is being recorded.
    fn flush<I: Inbox<Error = E> + ?Sized + 'static>(&mut self, inbox: &Arc<I>) {
        if self.waiting.is_empty() || !self.recording.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.waiting);
        self.in_recording = batch.len();
        let inbox = inbox.clone();
        self.recording.spawn(async move {
            let outcomes: Vec<Outcome<'_>> = batch.iter().map(Ending::outcome).collect();
            let recorded = inbox.record_all(&outcomes).await;
            drop(outcomes);
            (batch, recorded)
        });
    }

    /// Counts how the `finished` tasks ended, keeping the outcomes to be
    /// recorded.
    fn count(
        &mut self,
        stopped: &mut Stopped,
        finished: impl Iterator<Item = Result<Ran, tokio::task::JoinError>>,
    ) {
        let add = |count: &mut usize| *count = count.saturating_add(1);
        for ran in finished {
            match ran {
                Ok(Ran::Ended(ending)) => self.waiting.push(ending),
                Ok(Ran::Recorded(concluded)) => stopped.processed.count(concluded),
                Ok(Ran::LostLease) => add(&mut stopped.processed.lost),
                Ok(Ran::Unrecorded) => add(&mut stopped.unrecorded),
                // The handler's panics are caught inside; this one was the inbox's.
                Err(error) => {
                    if let Ok(panic) = error.try_into_panic() {
                        trace::task_panicked(panic_message(&*panic));
                    }
                    add(&mut stopped.unrecorded);
                }
            }
        }
    }

    /// Gives up on the outcomes not recorded yet (the grace period is over):
    /// their claims stay, and they run again after their lease.
    async fn abandon(&mut self, stopped: &mut Stopped) {
        self.recording.shutdown().await;
        stopped.unrecorded = stopped.unrecorded.saturating_add(self.unrecorded());
        self.waiting.clear();
        self.in_recording = 0;
    }

    /// Counts a batch whose record has ended: the earliest time a failure in
    /// it is retried at.
    fn recorded(
        &mut self,
        stopped: &mut Stopped,
        recorded: Result<Batch<E>, tokio::task::JoinError>,
    ) -> Option<OffsetDateTime> {
        let count = std::mem::take(&mut self.in_recording);
        let mut retry_at: Option<OffsetDateTime> = None;
        match recorded {
            Ok((batch, Ok(recorded))) => {
                for (ending, recorded) in batch.into_iter().zip(recorded) {
                    if recorded {
                        let concluded = ending.concluded();
                        stopped.processed.count(concluded);
                        if let Concluded::Failed(at) = concluded {
                            retry_at = Some(retry_at.map_or(at, |soonest| soonest.min(at)));
                        }
                        ending.span.finish(concluded.outcome());
                    } else {
                        trace::lease_lost(&ending.message_id, ending.attempt);
                        stopped.processed.lost = stopped.processed.lost.saturating_add(1);
                        ending.span.finish("lease_lost");
                    }
                }
            }
            Ok((batch, Err(error))) => {
                trace::inbox_failed("record", &error);
                stopped.unrecorded = stopped.unrecorded.saturating_add(count);
                for ending in batch {
                    ending.span.finish("store_failed");
                }
            }
            // The inbox's `record_all` panicked.
            Err(error) => {
                if let Ok(panic) = error.try_into_panic() {
                    trace::task_panicked(panic_message(&*panic));
                }
                stopped.unrecorded = stopped.unrecorded.saturating_add(count);
            }
        }
        retry_at
    }
}

/// How an attempt run under its lease ended.
enum Leased<T> {
    /// It finished, with this.
    Ended(T),
    /// It outlived the handler timeout.
    TimedOut,
    /// Its claim was lost (a renewal refused), or its lease ended unrenewed.
    Lost,
}

/// Runs `attempt` while renewing `record`'s claim every third of `lease`,
/// until it ends, outlives `timeout`, or loses its claim. Unless it ended, the
/// attempt is dropped (abandoned, and a transaction it had open rolled back)
/// before this returns. A renewal runs beside the attempt, never in its way:
/// a slow inbox does not stall the handler.
async fn keep_leased<I: Inbox + ?Sized, T>(
    inbox: &I,
    record: &Record,
    lease: Duration,
    timeout: Duration,
    attempt: impl Future<Output = T>,
) -> Leased<T> {
    let (id, attempt_number) = (record.message_id.as_str(), record.attempts);
    let beat = lease
        .checked_div(3)
        .unwrap_or(lease)
        .max(Duration::from_millis(1));
    let mut heartbeat = tokio::time::interval_at(after(beat), beat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut attempt = std::pin::pin!(attempt);
    let mut deadline = std::pin::pin!(tokio::time::sleep(timeout));
    let mut lapses = std::pin::pin!(tokio::time::sleep_until(instant_at(record.due_at)));
    let mut renewing: Option<Renewal<'_, I::Error>> = None;
    loop {
        tokio::select! {
            // The attempt first: one that has ended (a transactional one
            // committed) is not taken for lost by a renewal refused after it.
            biased;
            ended = &mut attempt => return Leased::Ended(ended),
            () = &mut deadline => return Leased::TimedOut,
            () = &mut lapses => return Leased::Lost,
            _ = heartbeat.tick(), if renewing.is_none() => {
                let until = later(OffsetDateTime::now_utc(), lease);
                renewing = Some((until, Box::pin(inbox.renew(id, attempt_number, until))));
            }
            renewed = renewal(renewing.as_mut()), if renewing.is_some() => {
                let asked = renewing.take().map(|(until, _)| until);
                match renewed {
                    Ok(true) => {
                        if let Some(until) = asked {
                            lapses.as_mut().reset(instant_at(until));
                        }
                    }
                    Ok(false) => return Leased::Lost,
                    Err(error) => trace::inbox_failed("renew", &error),
                }
            }
        }
    }
}

/// A renewal under way: the lease's end it asks for, and the inbox's answer.
type Renewal<'a, E> = (
    OffsetDateTime,
    Pin<Box<dyn Future<Output = Result<bool, E>> + Send + 'a>>,
);

/// The renewal under way's answer (never, if none is).
async fn renewal<E>(renewing: Option<&mut Renewal<'_, E>>) -> Result<bool, E> {
    match renewing {
        Some((_, renewal)) => renewal.await,
        None => std::future::pending().await,
    }
}

/// `wait` from now, or far ahead if that is past what the clock can hold.
/// Applies `retention` to `inbox` now and every interval after, until aborted.
async fn prune<I: Inbox + ?Sized>(inbox: Arc<I>, retention: Retention) {
    let mut every = tokio::time::interval(retention.interval());
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match retention.apply(&*inbox, OffsetDateTime::now_utc()).await {
            Ok(pruned) => trace::pruned(pruned.bodies, pruned.deliveries),
            Err(error) => trace::inbox_failed("retention", &error),
        }
    }
}

fn after(wait: Duration) -> Instant {
    after_from(Instant::now(), wait)
}

/// `wait` after `from`, as [`after`] does from now.
fn after_from(from: Instant, wait: Duration) -> Instant {
    from.checked_add(wait)
        .or_else(|| from.checked_add(Duration::from_secs(60 * 60 * 24 * 365)))
        .unwrap_or(from)
}

/// The monotonic instant of a wall-clock time (now, if it has passed).
fn instant_at(at: OffsetDateTime) -> Instant {
    after(age(OffsetDateTime::now_utc(), at).unwrap_or(Duration::ZERO))
}

/// Waits for the doorbell, or forever if the inbox has none.
async fn rung(wakeups: Option<&mut crate::wake::Wakeups>) {
    match wakeups {
        Some(wakeups) => wakeups.rung().await,
        None => std::future::pending().await,
    }
}

/// Shows the settings, not the webhook's keys or the handler.
impl<I: ?Sized, H: ?Sized> std::fmt::Debug for Worker<I, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("concurrency", &self.concurrency)
            .field("batch_size", &self.batch_size)
            .field("poll_interval", &self.poll_interval)
            .field("handler_timeout", &self.handler_timeout)
            .field("grace_period", &self.grace_period)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// A copy sharing the webhook, inbox and handler: to run several.
impl<I: ?Sized, H: ?Sized> Clone for Worker<I, H> {
    fn clone(&self) -> Self {
        Worker {
            webhook: self.webhook.clone(),
            inbox: self.inbox.clone(),
            handler: self.handler.clone(),
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            poll_interval: self.poll_interval,
            handler_timeout: self.handler_timeout,
            grace_period: self.grace_period,
            retention: self.retention,
        }
    }
}
