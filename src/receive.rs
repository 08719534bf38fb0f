//! The receive pipeline: verify, parse, de-duplicate, dispatch, and the status to
//! answer Svix with.
//!
//! Svix counts a delivery as done only when it gets a 2xx within about 15 s, and
//! retries every other answer (immediately, then after 5 s, 5 min, 30 min, 2 h,
//! 5 h, 10 h and 10 h). The status therefore does not stop retries; it tells
//! whoever reads the delivery log in the Svix portal what went wrong:
//!
//! | Outcome | Status | Why |
//! |---|---|---|
//! | handled, a duplicate, or an event type nobody handles | 200 | done; never send it again |
//! | [`VerifyError`] | 401 | wrong secret, a stale or replayed request, or not from Svix |
//! | [`ParseError`] | 400 | a body this crate cannot read: fix or upgrade, and the retries get through |
//! | another attempt is running ([`ReceiveError::InProgress`]) | 409 | a retry while the first attempt's handler runs: the handler does not run twice at once, and Svix asks again later |
//! | handler failed ([`ReceiveError::Handler`]) | 500 | a passing fault: the claim is released and the retry may succeed |
//! | the store failed ([`ReceiveError::Store`]) | 503 | the database is down: nothing was handled, and the retry gets through |
//! | encrypted, and the webhook has no decryptor ([`ReceiveError::NoDecryptor`]) | 503 | deploy the key: the retries get through |
//! | encrypted, and decryption failed (`ReceiveError::Decrypt`) | 500, whatever the cause | most likely the wrong key; see below |
//!
//! Every decryption failure answers the same 500, whether the padding was bad,
//! the plaintext was not UTF-8 or JSON, or the decrypted payload did not parse.
//! The body is authenticated before it is decrypted, so only a holder of the
//! signing secret reaches decryption at all; but end-to-end encryption is
//! meant to keep out even those who relay deliveries, Svix included, and
//! Svix holds the signing secret. An answer that told a bad padding from a bad
//! payload would be a padding oracle for them. The cause is in the error, for
//! your logs; do not send it back.

use std::error::Error;
use std::future::Future;

use time::OffsetDateTime;

use crate::context::Context;
use crate::error::ParseError;
use crate::event::EventEnvelope;
use crate::handler::AsyncEventHandler;
use crate::headers::HeaderSource;
use crate::idempotency::{Claim, IdempotencyStore};
use crate::trace::{self, Outcome, Span};
use crate::verify::{VerifyError, Webhook};

/// An authentic, parsed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The Svix message id (`svix-id`): the same on every retry.
    pub message_id: String,
    /// When Svix signed this attempt.
    pub timestamp: OffsetDateTime,
    /// The event.
    pub event: EventEnvelope,
}

impl Delivery {
    /// The key to de-duplicate retries by: the Svix message id. (The event's own
    /// `id` is not always present.)
    pub fn idempotency_key(&self) -> &str {
        &self.message_id
    }

    /// The context handlers get: the message id and timestamp, attempt 1.
    pub fn context(&self) -> Context {
        Context::new(self.message_id.as_str(), self.timestamp)
    }
}

/// Why a delivery was not handled, and what to answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The delivery failed signature verification.
    #[error("rejected delivery: {0}")]
    Verify(#[from] VerifyError),
    /// The delivery is authentic but its body could not be read.
    #[error("unreadable delivery: {0}")]
    Parse(#[from] ParseError),
    /// The event handler failed.
    #[error("event handler failed: {0}")]
    Handler(Box<dyn Error + Send + Sync>),
    /// Another attempt at this delivery holds an unexpired claim (its handler is
    /// running, or vanished less than a lease ago). Answered 409: Svix retries
    /// later, when that attempt has finished or its lease has lapsed.
    #[error("another attempt at this delivery is running")]
    InProgress,
    /// The idempotency store or inbox failed: nothing was handled or stored.
    /// Answered 503, so Svix retries.
    #[error("the idempotency store failed: {0}")]
    Store(Box<dyn Error + Send + Sync>),
    /// The payload is encrypted and the webhook has no decryptor (see
    /// `Webhook::with_decryptor`, feature `decrypt`). Answered 503, so switching
    /// encryption on before the key is deployed loses nothing: Svix retries.
    #[error("the payload is encrypted and no decryption key is configured")]
    NoDecryptor,
    /// The payload is encrypted and could not be decrypted.
    #[cfg(feature = "decrypt")]
    #[error("could not decrypt the delivery: {0}")]
    Decrypt(#[from] crate::decrypt::DecryptError),
}

impl ReceiveError {
    /// A handler's error, answered with 500 so Svix retries the delivery.
    ///
    /// ```
    /// use voyado_webhooks::ReceiveError;
    ///
    /// let error = ReceiveError::handler("database unavailable");
    /// assert_eq!(error.status_code(), 500);
    /// assert_eq!(error.to_string(), "event handler failed: database unavailable");
    /// ```
    pub fn handler(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        ReceiveError::Handler(error.into())
    }

    /// The HTTP status to answer with (see the table in the module docs):
    /// 401 for verification failures, 400 for unreadable bodies, 409 while
    /// another attempt runs, 500 for handler and decryption failures (every
    /// decryption failure alike), 503 for a store failure or an encrypted
    /// delivery without a key.
    pub fn status_code(&self) -> u16 {
        match self {
            ReceiveError::Verify(_) => 401,
            ReceiveError::Parse(_) => 400,
            ReceiveError::InProgress => 409,
            ReceiveError::Handler(_) => 500,
            ReceiveError::Store(_) | ReceiveError::NoDecryptor => 503,
            // One status whatever the cause (see the module docs).
            #[cfg(feature = "decrypt")]
            ReceiveError::Decrypt(_) => 500,
        }
    }
}

/// What [`Webhook::handle`] did with a delivery. Either way, answer 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The handler ran and succeeded.
    Processed(Delivery),
    /// The message id was seen before: the handler did not run again.
    Duplicate(Delivery),
}

impl Handled {
    /// The delivery.
    pub fn delivery(&self) -> &Delivery {
        match self {
            Handled::Processed(delivery) | Handled::Duplicate(delivery) => delivery,
        }
    }

    /// The HTTP status to answer with: 200.
    pub fn status_code(&self) -> u16 {
        200
    }
}

impl Webhook {
    /// Verifies a delivery, then parses it, and decrypts it if it is encrypted.
    /// `body` must be the raw request body. An encrypted delivery is an error
    /// ([`ReceiveError::NoDecryptor`]) unless the webhook has a decryptor.
    ///
    /// ```
    /// use voyado_webhooks::{EventEnvelope, Webhook};
    ///
    /// let webhook = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    /// let body = br#"{"eventType": "point.balance.updated", "payload": {"balance": 10, "contactId": "c-1"}}"#;
    /// let now = time::OffsetDateTime::now_utc().unix_timestamp();
    /// let signature = webhook.sign("msg_1", now, body);
    /// let headers = [("svix-id", "msg_1"), ("svix-timestamp", &now.to_string()), ("svix-signature", &signature)];
    ///
    /// let delivery = webhook.receive(&headers, body)?;
    /// assert_eq!(delivery.idempotency_key(), "msg_1");
    /// assert!(matches!(delivery.event, EventEnvelope::PointBalanceUpdated(_)));
    ///
    /// let forged = webhook.receive(&headers, br#"{"eventType": "point.balance.updated"}"#).unwrap_err();
    /// assert_eq!(forged.status_code(), 401);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn receive(
        &self,
        headers: &(impl HeaderSource + ?Sized),
        body: &[u8],
    ) -> Result<Delivery, ReceiveError> {
        self.receive_at(headers, body, OffsetDateTime::now_utc())
    }

    /// [`receive`](Self::receive) as of `now`.
    pub fn receive_at(
        &self,
        headers: &(impl HeaderSource + ?Sized),
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Delivery, ReceiveError> {
        let verified = self.verify_at(headers, body, now)?;
        let event = self.open(body)?;
        Ok(Delivery {
            message_id: verified.message_id.to_owned(),
            timestamp: verified.timestamp,
            event,
        })
    }

    /// Parses an authentic body, and decrypts it if it is encrypted.
    pub(crate) fn open(&self, body: &[u8]) -> Result<EventEnvelope, ReceiveError> {
        let event = self.decrypt(EventEnvelope::from_slice(body)?)?;
        trace::unknown_names(&event);
        Ok(event)
    }

    /// An encrypted event decrypted, if the webhook has a decryptor.
    fn decrypt(&self, event: EventEnvelope) -> Result<EventEnvelope, ReceiveError> {
        if !matches!(event, EventEnvelope::Encrypted(_)) {
            return Ok(event);
        }
        #[cfg(feature = "decrypt")]
        if let Some(decryptor) = &self.decryptor {
            return Ok(event.decrypt(decryptor)?);
        }
        Err(ReceiveError::NoDecryptor)
    }

    /// The whole pipeline: [`receive`](Self::receive), claim the delivery in
    /// `store` for the webhook's lease ([`with_lease`](Self::with_lease)),
    /// dispatch it to `handler` with its [`Context`], then complete the claim, or
    /// release it if the handler failed. Answer with the result's
    /// `status_code()`:
    ///
    /// | Situation | Claim | What happens | Answer |
    /// |---|---|---|---|
    /// | first delivery | `New` | the handler runs; on success the claim is completed | 200 ([`Handled::Processed`]) |
    /// | the handler fails | `New` | the claim is released | 500 ([`ReceiveError::Handler`]) |
    /// | a retry while an attempt runs | `InProgress` | the handler does not run | 409 ([`ReceiveError::InProgress`]) |
    /// | a retry after success | `Done` | the handler does not run | 200 ([`Handled::Duplicate`]) |
    /// | the store fails | – | the handler does not run (or its success is not recorded) | 503 ([`ReceiveError::Store`]) |
    ///
    /// If the handler panics, or the returned future is dropped while it runs
    /// (the client went away), the claim is given up through
    /// [`IdempotencyStore::abandon`], at once by the memory store, or when its
    /// lease ends; the next retry is then handled. A handler therefore runs
    /// more than once only when an earlier run failed, panicked, was dropped or
    /// outlived its lease: make its writes idempotent with
    /// [`Context::message_id`] for an effect that is exactly once.
    ///
    /// Inline deliveries are handled as they arrive, in no order: a retry of
    /// an older state can come after a newer one. Where the handler keeps
    /// state, compare [`Context::created_at`] (then the message id, within its
    /// 4 ms) in its own write, never [`Context::timestamp`]; or use an inbox,
    /// which orders states by entity ([`Webhook::accept`]).
    ///
    /// Verification and parsing happen before the future is created, so it
    /// borrows neither `headers` nor `body`.
    pub fn handle<'a, H, S>(
        &'a self,
        headers: &(impl HeaderSource + ?Sized),
        body: &[u8],
        store: &'a S,
        handler: &'a H,
    ) -> impl Future<Output = Result<Handled, ReceiveError>> + Send + 'a
    where
        H: AsyncEventHandler + ?Sized,
        H::Error: Into<Box<dyn Error + Send + Sync>>,
        S: IdempotencyStore + ?Sized,
    {
        let span = Span::start("handle");
        let received = span.in_scope(|| self.receive(headers, body));
        if let Ok(delivery) = &received {
            span.delivery(&delivery.message_id, 1);
            span.event(&delivery.event);
        }
        let handled = async move {
            let delivery = received?;
            let key = delivery.idempotency_key();
            match store
                .claim(key, self.processing.lease)
                .await
                .map_err(ReceiveError::store)?
            {
                Claim::Done => return Ok(Handled::Duplicate(delivery)),
                Claim::InProgress => return Err(ReceiveError::InProgress),
                Claim::New => {}
            }
            let held = Held { store, key };
            let handled = delivery.event.dispatch_async(&delivery.context(), handler).await;
            held.settle();
            match handled.map_err(ReceiveError::handler) {
                Ok(()) => {
                    store.complete(key).await.map_err(ReceiveError::store)?;
                    Ok(Handled::Processed(delivery))
                }
                Err(error) => {
                    // If the release fails too, the claim lapses with its lease.
                    let _ = store.release(key).await;
                    Err(error)
                }
            }
        };
        async move {
            let result = span.instrument(handled).await;
            span.finish(match &result {
                Ok(handled) => handled.outcome(),
                Err(error) => error.outcome(),
            });
            result
        }
    }
}

/// A claim held while its handler runs: dropped before the handler returns (a
/// panic unwinding, or the request's future dropped), it abandons the claim.
struct Held<'a, S: IdempotencyStore + ?Sized> {
    store: &'a S,
    key: &'a str,
}

impl<S: IdempotencyStore + ?Sized> Held<'_, S> {
    /// The handler has returned: the claim is completed or released from here
    /// on, never abandoned.
    fn settle(self) {
        std::mem::forget(self);
    }
}

impl<S: IdempotencyStore + ?Sized> Drop for Held<'_, S> {
    fn drop(&mut self) {
        self.store.abandon(self.key);
    }
}

impl Handled {
    /// The outcome a delivery's span records.
    fn outcome(&self) -> Outcome {
        match self {
            Handled::Processed(_) => "handled",
            Handled::Duplicate(_) => "duplicate",
        }
    }
}

impl ReceiveError {
    /// The outcome a delivery's span records.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            ReceiveError::Verify(_) => "rejected",
            ReceiveError::Parse(_) => "unreadable",
            ReceiveError::Handler(_) => "handler_failed",
            ReceiveError::InProgress => "in_progress",
            ReceiveError::Store(_) => "store_failed",
            ReceiveError::NoDecryptor => "no_decryption_key",
            #[cfg(feature = "decrypt")]
            ReceiveError::Decrypt(_) => "undecryptable",
        }
    }

    /// A store's error (an idempotency store's or an inbox's), answered with 503.
    pub(crate) fn store(error: impl Error + Send + Sync + 'static) -> Self {
        ReceiveError::Store(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status() {
        let parse = EventEnvelope::from_slice(b"{").unwrap_err();
        assert_eq!(
            ReceiveError::from(VerifyError::NoMatchingSignature).status_code(),
            401
        );
        assert_eq!(
            ReceiveError::from(VerifyError::MissingHeader("svix-id")).status_code(),
            401
        );
        assert_eq!(ReceiveError::from(parse).status_code(), 400);
        assert_eq!(
            ReceiveError::handler(std::io::Error::other("down")).status_code(),
            500
        );
    }

    #[test]
    fn errors_and_deliveries_can_cross_threads() {
        fn error<T: Error + Send + Sync + 'static>() {}
        fn data<T: Send + Sync + Clone + std::fmt::Debug>() {}
        error::<ReceiveError>();
        error::<VerifyError>();
        error::<crate::SecretError>();
        data::<Delivery>();
        data::<Handled>();
        data::<Webhook>();
        data::<crate::VerifiedHeaders<'static>>();
    }
}
