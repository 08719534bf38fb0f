//! The durable pipeline: [`Webhook::accept`] stores an authentic delivery and
//! acknowledges it, and [`Webhook::process`] handles what is stored, with
//! retries, dead letters and replay (see [`crate::Inbox`]).

use std::error::Error;
use std::future::Future;

use time::OffsetDateTime;

use crate::context::Context;
use crate::handler::AsyncEventHandler;
use crate::headers::HeaderSource;
use crate::inbox::{Inbox, Incoming, Processed, later};
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
            // Read now only to keep its error with it; `process` reads it again.
            let error = match span.in_scope(|| self.open(body)) {
                Ok(event) => {
                    span.event(&event);
                    None
                }
                Err(error) => Some(error.to_string()),
            };
            let unreadable = error.is_some();
            let incoming = Incoming {
                message_id: &message_id,
                timestamp,
                received_at: OffsetDateTime::now_utc(),
                body,
                error,
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

    /// Handles up to `limit` due deliveries from `inbox`: claims them for the
    /// webhook's lease ([`with_lease`](Self::with_lease)), parses and decrypts
    /// each, dispatches it to `handler` with a [`Context`] whose `attempt()`
    /// counts, and records it done, or its error and when to retry it (by the
    /// webhook's [`RetryPolicy`](crate::RetryPolicy)), or dead after the last
    /// attempt.
    ///
    /// The crate runs nothing by itself: call this from your own task, in a loop
    /// with a pause when it handled nothing (the examples use a tokio task).
    /// Several workers may call it on one shared inbox: a claim is exclusive
    /// until its lease ends, and a worker that dies mid-batch leaves its
    /// deliveries to be claimed again after that. The lease covers the whole
    /// batch: a delivery whose lease lapsed before its turn is skipped (counted
    /// in [`Processed::skipped`](crate::Processed::skipped)) and claimed again
    /// later, so choose `limit` and the lease so that a batch fits. A handler that panics unwinds
    /// through this call; its delivery is claimed again when the lease ends.
    pub async fn process<I, H>(&self, inbox: &I, handler: &H, limit: usize) -> Result<Processed, I::Error>
    where
        I: Inbox + ?Sized,
        H: AsyncEventHandler + ?Sized,
        H::Error: Into<Box<dyn Error + Send + Sync>>,
    {
        let claimed = inbox
            .claim_due(limit, self.lease, OffsetDateTime::now_utc())
            .await?;
        let mut processed = Processed::default();
        for record in claimed {
            let span = Span::start("process");
            span.delivery(&record.message_id, record.attempts);
            // The lease covers the whole batch: a delivery whose lease lapsed
            // while earlier ones ran may be another worker's now. Leave it.
            if record.due_at <= OffsetDateTime::now_utc() {
                processed.skipped = processed.skipped.saturating_add(1);
                span.finish("skipped");
                continue;
            }
            let ctx =
                Context::new(record.message_id.as_str(), record.timestamp).with_attempt(record.attempts);
            let outcome = match span.in_scope(|| self.open(&record.body)) {
                Ok(event) => {
                    span.event(&event);
                    span.instrument(event.dispatch_async(&ctx, handler))
                        .await
                        .map_err(|error| ReceiveError::handler(error).to_string())
                }
                Err(error) => Err(error.to_string()),
            };
            let (recorded, outcome) = match outcome {
                Ok(()) => {
                    let done = inbox.mark_done(&record.message_id, record.attempts);
                    processed.handled = processed.handled.saturating_add(1);
                    (span.instrument(done).await, "handled")
                }
                Err(error) => {
                    let retry_at = self
                        .retry
                        .delay_after(record.attempts)
                        .map(|delay| later(OffsetDateTime::now_utc(), delay));
                    let error = excerpt(&error, ERROR_MAX_CHARS, ERROR_MAX_CHARS.saturating_mul(4));
                    let failed = inbox.mark_failed(&record.message_id, record.attempts, &error, retry_at);
                    let recorded = span.instrument(failed).await;
                    match retry_at {
                        Some(_) => {
                            processed.failed = processed.failed.saturating_add(1);
                            (recorded, "failed")
                        }
                        None => {
                            processed.dead = processed.dead.saturating_add(1);
                            (recorded, "dead")
                        }
                    }
                }
            };
            if let Err(error) = recorded {
                span.finish("store_failed");
                return Err(error);
            }
            span.finish(outcome);
        }
        Ok(processed)
    }
}
