//! The durable pipeline: [`Webhook::accept`] stores an authentic delivery and
//! acknowledges it, and [`Webhook::process`] handles what is stored, with
//! retries, dead letters and replay (see [`crate::Inbox`]).

use std::any::Any;
use std::error::Error;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt as _;
use time::OffsetDateTime;

use crate::context::Context;
use crate::event::EventEnvelope;
use crate::handler::AsyncEventHandler;
use crate::headers::HeaderSource;
use crate::inbox::{Inbox, Incoming, Processed, Record, State, later};
use crate::policy::{Processing, RetryPolicy};
use crate::receive::ReceiveError;
use crate::text::excerpt;
use crate::trace::{Outcome, Span};
use crate::verify::Webhook;

/// The most characters of an attempt's error an inbox keeps.
const ERROR_MAX_CHARS: usize = 1000;

/// What [`Webhook::accept`] did with an authentic delivery. Either way, answer
/// 200: it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accepted {
    /// Stored now, to be processed.
    Stored,
    /// Its message id was stored already: nothing was added.
    Duplicate,
}

impl Accepted {
    /// The HTTP status to answer with: 200.
    pub fn status_code(&self) -> u16 {
        200
    }

    /// The outcome a delivery's span records.
    fn outcome(&self) -> Outcome {
        match self {
            Accepted::Stored => "stored",
            Accepted::Duplicate => "duplicate",
        }
    }
}

impl Webhook {
    /// Verifies a delivery and stores it in `inbox`; answer with the result's
    /// `status_code()`. `body` must be the raw request body.
    ///
    /// Only an authentic delivery is stored, and the answer is 200 only once it
    /// is committed: from then on it is never lost. A repeated message id is
    /// answered 200 without a second row. An authentic body that does not parse
    /// (or cannot be decrypted yet) is stored too, as failed with its error, so
    /// an upgrade (or the key) plus a retry recovers it. A forged or stale one is
    /// 401 ([`ReceiveError::Verify`]); an inbox that cannot store is 503
    /// ([`ReceiveError::Store`]), and Svix retries.
    ///
    /// ```
    /// use voyado_webhooks::{Inbox, MemoryInbox, Webhook};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let webhook = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    /// let body = br#"{"eventType": "loyalty.addPoints", "payload": {"amount": 5, "contactId": "c-1"}}"#;
    /// let now = time::OffsetDateTime::now_utc().unix_timestamp();
    /// let headers = [("svix-id", "msg_1".to_owned()), ("svix-timestamp", now.to_string()),
    ///                ("svix-signature", webhook.sign("msg_1", now, body))];
    /// let inbox = MemoryInbox::new();
    /// assert_eq!(webhook.accept(&headers, body, &inbox).await?.status_code(), 200);
    /// assert_eq!(inbox.counts().await?.pending, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn accept<'a, I: Inbox + ?Sized>(
        &'a self,
        headers: &(impl HeaderSource + ?Sized),
        body: &'a [u8],
        inbox: &'a I,
    ) -> impl Future<Output = Result<Accepted, ReceiveError>> + Send + 'a {
        let span = Span::start("accept");
        let verified = span
            .in_scope(|| self.verify(headers, body))
            .map(|verified| (verified.message_id.to_owned(), verified.timestamp));
        async move {
            let (message_id, timestamp) = match verified {
                Ok(verified) => verified,
                Err(error) => {
                    let error = ReceiveError::from(error);
                    span.finish(error.outcome());
                    return Err(error);
                }
            };
            span.delivery(&message_id, 1);
            // Read now only to keep its error and its contact with it;
            // `process` reads it again.
            let opened = span.in_scope(|| self.open(body));
            let (error, contact_id, entity) = match &opened {
                Ok(event) => {
                    span.event(event);
                    (None, event.contact(), event.entity())
                }
                // Unreadable, it has no state to order.
                Err(error) => (
                    Some(error.to_string()),
                    crate::envelope::contact_in_body(body).map(std::borrow::Cow::Owned),
                    None,
                ),
            };
            let unreadable = error.is_some();
            let incoming = Incoming {
                message_id: &message_id,
                timestamp,
                received_at: OffsetDateTime::now_utc(),
                body,
                error,
                contact_id: contact_id.as_deref(),
                entity: entity.as_deref(),
            };
            let stored = span.instrument(inbox.store(&incoming)).await;
            let result = match stored.map_err(ReceiveError::store) {
                Ok(true) => Ok(Accepted::Stored),
                Ok(false) => Ok(Accepted::Duplicate),
                Err(error) => Err(error),
            };
            span.finish(match &result {
                Ok(Accepted::Stored) if unreadable => "stored_unreadable",
                Ok(accepted) => accepted.outcome(),
                Err(error) => error.outcome(),
            });
            result
        }
    }

    /// The same webhook claiming each delivery for `lease` (default
    /// [`DEFAULT_LEASE`](crate::DEFAULT_LEASE), 60 seconds): in
    /// [`handle`](Self::handle), a retry within it while the first attempt
    /// runs is answered 409; in [`process`](Self::process) it covers a whole
    /// batch; a [`Worker`](crate::Worker) renews it while each handler runs. A
    /// claim whose holder vanished is taken again after it.
    pub fn with_lease(mut self, lease: std::time::Duration) -> Webhook {
        self.processing.lease = lease;
        self
    }

    /// The same webhook retrying deliveries that failed in
    /// [`process`](Self::process) or a [`Worker`](crate::Worker) by `policy`
    /// (default: 10 attempts, 5 seconds after the first failure, doubling up to
    /// an hour).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Webhook {
        self.processing.retry = policy;
        self
    }

    /// Handles up to `limit` due deliveries from `inbox`: claims them for the
    /// webhook's lease ([`with_lease`](Self::with_lease)), parses and decrypts
    /// each, dispatches it to `handler` with a [`Context`] whose `attempt()`
    /// counts, and records it done, or its error and when to retry it (by the
    /// webhook's [`RetryPolicy`]), or dead after the last attempt.
    ///
    /// A handler that panics is a failed attempt like one that returns an
    /// error (`the handler panicked: …`, with its message): the rest of the
    /// batch goes on, and this call returns normally. An attempt that ends
    /// without an outcome (this future dropped, the process killed) still
    /// counts: a delivery claimed as often as the policy allows without an
    /// outcome is made dead when it comes due again
    /// ([`NO_OUTCOME`](crate::NO_OUTCOME)).
    ///
    /// `handler` is an [`AsyncEventHandler`], whose success is then marked
    /// done in a statement of its own, or, on a SQL inbox,
    /// [`InTransaction`](crate::InTransaction) around a
    /// [`TransactionalHandler`](crate::TransactionalHandler), whose writes and
    /// the mark commit together.
    ///
    /// This is one batch, run by whoever calls it; a [`Worker`](crate::Worker)
    /// (feature `worker`) runs them for you, with concurrency, wake-ups, lease
    /// renewal and a handler timeout. Several callers may share one inbox: a
    /// claim is exclusive until its lease ends. Nothing renews the lease here:
    /// it covers the whole batch, and a delivery whose lease lapsed before its
    /// turn is skipped (counted in [`Processed::skipped`](crate::Processed::skipped))
    /// and claimed again later, so choose `limit` and the lease so that a batch
    /// fits.
    pub async fn process<I, H>(&self, inbox: &I, handler: &H, limit: usize) -> Result<Processed, I::Error>
    where
        I: Inbox + ?Sized,
        H: Handles<I> + ?Sized,
    {
        let Processing { lease, retry } = self.processing;
        let claimed = inbox
            .claim_due(limit, lease, retry.max_attempts(), OffsetDateTime::now_utc())
            .await?;
        let mut processed = Processed::default();
        for record in claimed {
            let span = Span::start("process");
            span.delivery(&record.message_id, record.attempts);
            if record.state == State::Superseded {
                processed.superseded = processed.superseded.saturating_add(1);
                span.finish("superseded");
                continue;
            }
            // The lease covers the whole batch: a delivery whose lease lapsed
            // while earlier ones ran may be another worker's now. Leave it.
            if record.due_at <= OffsetDateTime::now_utc() {
                processed.skipped = processed.skipped.saturating_add(1);
                span.finish("skipped");
                continue;
            }
            let concluded = match handler.run(self, inbox, &record, &span).await {
                Attempted::Succeeded => self.conclude(inbox, &record, Ok(()), &span).await,
                Attempted::Failed(error) => self.conclude(inbox, &record, Err(error), &span).await,
                Attempted::Committed => Ok(Some(Concluded::Handled)),
                Attempted::Refused => Ok(None),
                Attempted::Inbox(error) => Err(error),
            };
            match concluded {
                Ok(Some(concluded)) => {
                    processed.count(concluded);
                    span.finish(concluded.outcome());
                }
                Ok(None) => {
                    processed.lost = processed.lost.saturating_add(1);
                    span.finish("lease_lost");
                }
                Err(error) => {
                    span.finish("store_failed");
                    return Err(error);
                }
            }
        }
        Ok(processed)
    }

    /// One attempt at a claimed delivery: parsed (and decrypted), then
    /// dispatched. Its error is the text to record; a panic in the handler is
    /// caught and is one too.
    pub(crate) async fn attempt<H>(&self, record: &Record, handler: &H, span: &Span) -> Result<(), String>
    where
        H: AsyncEventHandler + ?Sized,
        H::Error: Into<Box<dyn Error + Send + Sync>>,
    {
        let (ctx, event) = self.prepare(record, span)?;
        caught(span, event.dispatch_async(&ctx, handler)).await
    }

    /// A claimed delivery's context (counting its attempt) and event, parsed
    /// and decrypted: the error to record if it cannot be.
    pub(crate) fn prepare(&self, record: &Record, span: &Span) -> Result<(Context, EventEnvelope), String> {
        let ctx = Context::new(record.message_id.as_str(), record.timestamp).with_attempt(record.attempts);
        let event = span
            .in_scope(|| self.open(&record.body))
            .map_err(|error| error.to_string())?;
        span.event(&event);
        Ok((ctx, event))
    }

    /// Records how attempt `record.attempts` ended: done, or failed with when to
    /// retry it, or dead after the last attempt; `None` if its claim was lost
    /// and nothing was recorded.
    pub(crate) async fn conclude<I: Inbox + ?Sized>(
        &self,
        inbox: &I,
        record: &Record,
        result: Result<(), String>,
        span: &Span,
    ) -> Result<Option<Concluded>, I::Error> {
        let (id, attempt) = (record.message_id.as_str(), record.attempts);
        match result {
            Ok(()) => {
                let marked = span.instrument(inbox.mark_done(id, attempt)).await?;
                Ok(marked.then_some(Concluded::Handled))
            }
            Err(error) => {
                let (error, retry_at) = self.failure(attempt, &error);
                let marked = span
                    .instrument(inbox.mark_failed(id, attempt, &error, retry_at))
                    .await?;
                Ok(marked.then_some(retry_at.map_or(Concluded::Dead, Concluded::Failed)))
            }
        }
    }
}

/// What [`Webhook::process`] and a [`Worker`](crate::Worker) run: every
/// [`AsyncEventHandler`] (whose success the worker records afterwards), and
/// [`InTransaction`](crate::InTransaction) around a
/// [`TransactionalHandler`](crate::TransactionalHandler) on a
/// [`TransactionalInbox`](crate::TransactionalInbox) (which records it in the
/// handler's own commit). Sealed: implemented by this crate only.
#[allow(private_bounds, reason = "sealed: what it requires is the crate's own")]
pub trait Handles<I: Inbox + ?Sized>: Run<I> {}

impl<I: Inbox + ?Sized, H: Run<I> + ?Sized> Handles<I> for H {}

/// How one claimed delivery's attempt runs: the parse, the handler and, for a
/// transactional one, its commit.
pub(crate) trait Run<I: Inbox + ?Sized>: Send + Sync {
    fn run<'a>(
        &'a self,
        webhook: &'a Webhook,
        inbox: &'a I,
        record: &'a Record,
        span: &'a Span,
    ) -> impl Future<Output = Attempted<I::Error>> + Send + 'a;
}

impl<I, H> Run<I> for H
where
    I: Inbox + ?Sized,
    H: AsyncEventHandler + ?Sized,
    H::Error: Into<Box<dyn Error + Send + Sync>>,
{
    async fn run(&self, webhook: &Webhook, _: &I, record: &Record, span: &Span) -> Attempted<I::Error> {
        match webhook.attempt(record, self, span).await {
            Ok(()) => Attempted::Succeeded,
            Err(error) => Attempted::Failed(error),
        }
    }
}

/// How an attempt ended, and what is left to record of it.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    expect(dead_code, reason = "the last three are a transactional handler's")
)]
pub(crate) enum Attempted<E> {
    /// The handler succeeded: the delivery is to be marked done.
    Succeeded,
    /// The handler failed (or the delivery does not parse): the error to record.
    Failed(String),
    /// Marked done in the handler's own commit.
    Committed,
    /// The handler's commit was refused, its writes rolled back: the claim
    /// was lost (or a newer state of its entity applied meanwhile).
    Refused,
    /// The inbox failed to begin or commit the handler's transaction: nothing
    /// is known to be recorded.
    Inbox(E),
}

impl Webhook {
    /// What to record of attempt `attempt`'s `error`: its excerpt, and when
    /// to retry it by the webhook's policy (`None`: it was the last).
    pub(crate) fn failure(&self, attempt: u32, error: &str) -> (String, Option<OffsetDateTime>) {
        let retry_at = self
            .processing
            .retry
            .delay_after(attempt)
            .map(|delay| later(OffsetDateTime::now_utc(), delay));
        let error = excerpt(error, ERROR_MAX_CHARS, ERROR_MAX_CHARS.saturating_mul(4));
        (error, retry_at)
    }
}

/// What was recorded of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Concluded {
    /// Done.
    Handled,
    /// Failed, retried at this time.
    Failed(OffsetDateTime),
    /// Failed on its last allowed attempt.
    Dead,
}

impl Concluded {
    /// The outcome a delivery's span records.
    pub(crate) fn outcome(self) -> Outcome {
        match self {
            Concluded::Handled => "handled",
            Concluded::Failed(_) => "failed",
            Concluded::Dead => "dead",
        }
    }
}

impl Processed {
    /// Counts one recorded attempt.
    pub(crate) fn count(&mut self, concluded: Concluded) {
        let count = match concluded {
            Concluded::Handled => &mut self.handled,
            Concluded::Failed(_) => &mut self.failed,
            Concluded::Dead => &mut self.dead,
        };
        *count = count.saturating_add(1);
    }
}

/// Runs a handler's `dispatched` future in `span`: its error, or the panic it
/// raised, as the text to record.
pub(crate) async fn caught<E>(
    span: &Span,
    dispatched: impl Future<Output = Result<(), E>>,
) -> Result<(), String>
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    match span.instrument(AssertUnwindSafe(dispatched).catch_unwind()).await {
        Ok(handled) => handled.map_err(|error| ReceiveError::handler(error).to_string()),
        Err(panic) => Err(format!("the handler panicked: {}", panic_message(&*panic))),
    }
}

/// The text a panic was raised with (`panic!("…")` gives a `&str` or a
/// `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a value that is not text")
}
