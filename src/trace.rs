//! What a receiver reports through `tracing` (feature `tracing`): one span per
//! delivery, and a warning the first time an unknown event type or field name
//! is seen. Without the feature, the same calls do nothing and compile away.
//!
//! Every field is bounded and holds nothing secret: ids, the event type, the
//! tenant and field names are cut to 64 characters on one line; no header
//! value but the message id, and nothing of the body but its field names, is
//! recorded.

use crate::event::EventEnvelope;

pub(crate) use imp::*;

/// How a delivery's handling ended, as the span's `outcome` field reads.
pub(crate) type Outcome = &'static str;

#[cfg(feature = "tracing")]
mod imp {
    use std::collections::HashSet;
    use std::future::Future;
    use std::sync::{Mutex, PoisonError};
    use std::time::Instant;

    use tracing::field::Empty;
    use tracing::instrument::{Instrument, Instrumented};

    use super::{EventEnvelope, Outcome};
    use crate::event_type::EventType;
    use crate::text::one_line_excerpt;

    /// The most characters of an id, tenant, event type or field name recorded.
    const MAX_CHARS: usize = 64;
    /// The most names warned about per process: past it, one last warning says
    /// so, and the set stops growing.
    const MAX_NAMES: usize = 256;

    fn bounded(text: &str) -> String {
        one_line_excerpt(text, MAX_CHARS, MAX_CHARS.saturating_mul(4))
    }

    /// The span of one delivery's handling (`voyado_webhooks.delivery`, at
    /// INFO), with the time it started. Dropped unfinished (a panic, or the
    /// request's future dropped), it records the outcome `abandoned`.
    pub(crate) struct Span {
        span: tracing::Span,
        started: Instant,
        finished: bool,
    }

    impl Span {
        /// A span for a delivery in `pipeline` (`handle`, `accept` or `process`).
        pub(crate) fn start(pipeline: &'static str) -> Span {
            let span = tracing::info_span!(
                "voyado_webhooks.delivery",
                pipeline,
                message_id = Empty,
                attempt = Empty,
                event_type = Empty,
                tenant = Empty,
                outcome = Empty,
                duration_ms = Empty,
            );
            Span {
                span,
                started: Instant::now(),
                finished: false,
            }
        }

        /// The delivery's authenticated message id, and the attempt.
        pub(crate) fn delivery(&self, message_id: &str, attempt: u32) {
            // Shortening allocates: not for a span no subscriber wants.
            if self.span.is_disabled() {
                return;
            }
            self.span.record("message_id", bounded(message_id));
            self.span.record("attempt", attempt);
        }

        /// The event's type and tenant.
        pub(crate) fn event(&self, event: &EventEnvelope) {
            if self.span.is_disabled() {
                return;
            }
            self.span
                .record("event_type", bounded(event.event_type().as_str()));
            if let Some(tenant) = event.tenant() {
                self.span.record("tenant", bounded(tenant));
            }
        }

        /// How it ended, and how long it took; a DEBUG event marks the end.
        pub(crate) fn finish(mut self, outcome: Outcome) {
            self.end(outcome);
        }

        fn end(&mut self, outcome: Outcome) {
            self.finished = true;
            let elapsed = self.started.elapsed();
            self.span.record("outcome", outcome);
            self.span.record("duration_ms", elapsed.as_secs_f64() * 1e3);
            self.span.in_scope(|| tracing::debug!(outcome, "delivery done"));
        }

        /// `f`, run inside the span.
        pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
            self.span.in_scope(f)
        }

        /// `future`, run inside the span.
        pub(crate) fn instrument<F: Future>(&self, future: F) -> Instrumented<F> {
            future.instrument(self.span.clone())
        }
    }

    impl Drop for Span {
        fn drop(&mut self) {
            if !self.finished {
                self.end("abandoned");
            }
        }
    }

    /// A worker started on an inbox.
    #[cfg(feature = "worker")]
    pub(crate) fn worker_started(concurrency: usize, poll_interval: std::time::Duration, wakes: bool) {
        let poll_interval_ms = poll_interval.as_millis();
        tracing::info!(
            concurrency,
            poll_interval_ms,
            wakes,
            "voyado_webhooks worker started"
        );
    }

    /// A worker's shutdown signal fired, with deliveries still running.
    #[cfg(feature = "worker")]
    pub(crate) fn worker_stopping(in_flight: usize) {
        tracing::info!(in_flight, "voyado_webhooks worker stopping");
    }

    /// A worker stopped: what it did, and what it left.
    #[cfg(feature = "worker")]
    pub(crate) fn worker_stopped(
        [handled, failed, dead, lost]: [usize; 4],
        unrecorded: usize,
        cut_off: usize,
    ) {
        tracing::info!(
            handled,
            failed,
            dead,
            lost,
            unrecorded,
            cut_off,
            "voyado_webhooks worker stopped"
        );
    }

    /// A worker was woken by its inbox's doorbell.
    #[cfg(feature = "worker")]
    pub(crate) fn woken() {
        tracing::debug!("voyado_webhooks worker woken");
    }

    /// A claim was lost (another worker took it over) or lapsed unrenewed:
    /// its handler was abandoned, and nothing is recorded for it.
    #[cfg(feature = "worker")]
    pub(crate) fn lease_lost(message_id: &str, attempt: u32) {
        let message_id = bounded(message_id);
        tracing::warn!(
            message_id,
            attempt,
            "voyado_webhooks lease lost; the handler was abandoned"
        );
    }

    /// The inbox failed in a worker's `what` (claim, renew, record), which
    /// carries on.
    #[cfg(any(feature = "worker", feature = "sqlite", feature = "postgres"))]
    pub(crate) fn inbox_failed(what: &'static str, error: &dyn std::fmt::Display) {
        let error = bounded(&error.to_string());
        tracing::warn!(what, error, "voyado_webhooks inbox failed");
    }

    /// A worker applied its retention.
    #[cfg(feature = "worker")]
    pub(crate) fn pruned(bodies: u64, deliveries: u64) {
        tracing::debug!(bodies, deliveries, "voyado_webhooks retention applied");
    }

    /// A worker's task ended in a panic outside the handler (in the inbox).
    #[cfg(feature = "worker")]
    pub(crate) fn task_panicked(message: &str) {
        let message = bounded(message);
        tracing::error!(message, "voyado_webhooks worker task panicked");
    }

    /// Listening on a PostgreSQL channel for deliveries other processes store.
    #[cfg(all(feature = "worker", feature = "postgres"))]
    pub(crate) fn listening(channel: &str) {
        tracing::debug!(channel, "voyado_webhooks listening for notifications");
    }

    /// Listening failed; it is tried again after `wait`.
    #[cfg(all(feature = "worker", feature = "postgres"))]
    pub(crate) fn listen_failed(channel: &str, error: &sqlx::Error, wait: std::time::Duration) {
        let (error, wait_ms) = (bounded(&error.to_string()), wait.as_millis());
        tracing::warn!(
            channel,
            error,
            wait_ms,
            "voyado_webhooks LISTEN failed; reconnecting"
        );
    }

    /// The names warned about so far in this process.
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

    /// Warns about `event`'s event type if the crate does not know it, and about
    /// each field it does not know, the first time each is seen in this process.
    pub(crate) fn unknown_names(event: &EventEnvelope) {
        if !tracing::enabled!(tracing::Level::WARN) {
            return;
        }
        let event_type = event.event_type();
        if let EventType::Other(name) = event_type {
            warn_once(format!("event type {name}"), || {
                tracing::warn!(
                    event_type = bounded(name),
                    "Engage sent an event type this crate does not know; it is handled as unknown"
                );
            });
        }
        let fields = event.extra().iter().map(|(name, _)| ("", name));
        let payload = event.payload_extra().into_iter().flat_map(|extra| extra.iter());
        for (place, name) in fields.chain(payload.map(|(name, _)| ("payload.", name))) {
            warn_once(format!("{event_type} {place}{name}"), || {
                tracing::warn!(
                    event_type = bounded(event_type.as_str()),
                    field = format!("{place}{}", bounded(name)),
                    "Engage sent a field this crate does not know; it is kept in `extra`"
                );
            });
        }
    }

    /// Runs `warn` if `key` is new, and remembers it (up to [`MAX_NAMES`]).
    fn warn_once(key: String, warn: impl FnOnce()) {
        let key = bounded(&key);
        let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = seen.get_or_insert_with(HashSet::new);
        if seen.len() > MAX_NAMES || seen.contains(&key) {
            return;
        }
        if seen.len() == MAX_NAMES {
            tracing::warn!("{MAX_NAMES} unknown names warned about; no more warnings from this process");
            seen.insert(String::new());
            return;
        }
        seen.insert(key);
        warn();
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    use std::future::Future;

    use super::{EventEnvelope, Outcome};

    pub(crate) struct Span;

    impl Span {
        pub(crate) fn start(_: &'static str) -> Span {
            Span
        }

        pub(crate) fn delivery(&self, _: &str, _: u32) {}

        pub(crate) fn event(&self, _: &EventEnvelope) {}

        pub(crate) fn finish(self, _: Outcome) {}

        pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
            f()
        }

        pub(crate) fn instrument<F: Future>(&self, future: F) -> F {
            future
        }
    }

    pub(crate) fn unknown_names(_: &EventEnvelope) {}

    #[cfg(feature = "worker")]
    pub(crate) fn worker_started(_: usize, _: std::time::Duration, _: bool) {}

    #[cfg(feature = "worker")]
    pub(crate) fn worker_stopping(_: usize) {}

    #[cfg(feature = "worker")]
    pub(crate) fn worker_stopped(_: [usize; 4], _: usize, _: usize) {}

    #[cfg(feature = "worker")]
    pub(crate) fn woken() {}

    #[cfg(feature = "worker")]
    pub(crate) fn lease_lost(_: &str, _: u32) {}

    #[cfg(any(feature = "worker", feature = "sqlite", feature = "postgres"))]
    pub(crate) fn inbox_failed(_: &'static str, _: &dyn std::fmt::Display) {}

    #[cfg(feature = "worker")]
    pub(crate) fn pruned(_: u64, _: u64) {}

    #[cfg(feature = "worker")]
    pub(crate) fn task_panicked(_: &str) {}

    #[cfg(all(feature = "worker", feature = "postgres"))]
    pub(crate) fn listening(_: &str) {}

    #[cfg(all(feature = "worker", feature = "postgres"))]
    pub(crate) fn listen_failed(_: &str, _: &sqlx::Error, _: std::time::Duration) {}
}
