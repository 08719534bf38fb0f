//! Reading a delivery: the envelope visitor, where the event type picks the
//! payload's parser.
//!
//! When `eventType` comes before `payload` (the usual order) the payload is read
//! straight into its struct. When it comes after, the payload's text is captured
//! and read once the type is known. serde_json reads all of it.
//!
//! A body is read once with [`Fast`]; only a body it fails on (a syntax error,
//! a value of the wrong form, or a string field holding a fraction, which
//! serde_json would have made an `f64`) is read again with [`Exact`], which
//! reads every value from its text and explains what was wrong. A body in the
//! documented forms costs one pass.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::EventEnvelope;
use crate::envelope::Envelope;
use crate::error::{ParseError, ParseErrorKind};
use crate::event_type::EventType;
use crate::field_name::field_names;
use crate::payload::{Payload, PayloadSeed, Put, Received};
use crate::raw::{Extra, RawPayload};
use crate::read::{Depth, Exact, Fast, Field, Key, RawText, Reader, Trace, depth, keep_next};
use crate::text::quote;

/// Reads a delivery from its body: any delivery, and every error explained.
pub(crate) fn from_str(body: &str) -> Result<EventEnvelope, ParseError> {
    match depth::guard(body) {
        None => {
            let checked = || Trace {
                depth: Depth::Checked,
                ..Trace::default()
            };
            // Read fast; anything that fails is read again exactly, to explain it.
            // The event is read into one place and moved from it once: it is
            // large, and each layer that returned it cost a copy.
            let mut deserializer = serde_json::Deserializer::from_str(body);
            let mut event = None;
            let read = read_into::<Fast, _>(&mut checked(), &mut deserializer, &mut event)
                .and_then(|()| deserializer.end());
            match event {
                Some(event) if read.is_ok() => Ok(event),
                _ => read_body(body, checked()),
            }
        }
        Some(rewritten) => {
            let at = rewritten.body.as_ptr().addr().saturating_add(rewritten.at);
            let trace = Trace {
                depth: Depth::TooDeepAt(at),
                ..Trace::default()
            };
            match read_body(&rewritten.body, trace) {
                Err(error) => Err(error),
                // Every field's value is read or kept, and the one holding byte
                // `at` refused: so the body itself was the value.
                Ok(_) => Err(ParseError::new(
                    ParseErrorKind::TooDeep {
                        limit: depth::MAX_DEPTH,
                    },
                    None,
                )),
            }
        }
    }
}

/// Whether a syntax error at `line` and `column` of `body` lies past byte `at`.
fn after(body: &str, at: usize, (line, column): (usize, usize)) -> bool {
    let before = body.get(..at).unwrap_or(body);
    let at_line = before.matches('\n').count().saturating_add(1);
    let at_column = at.saturating_sub(before.rfind('\n').map_or(0, |n| n.saturating_add(1)));
    (line, column) > (at_line, at_column)
}

/// Reads a (depth-checked) body with serde_json.
fn read_body(body: &str, mut trace: Trace) -> Result<EventEnvelope, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let result = read::<Exact<&RawValue>, _>(&mut trace, &mut deserializer)
        .and_then(|event| deserializer.end().map(|()| event));
    result.map_err(|error| parse_error(&error, trace, body.as_bytes()))
}

/// Reads one delivery with any deserializer, its fields as `M` reads them.
pub(crate) fn read<'de, M: Reader<'de>, D: Deserializer<'de>>(
    trace: &mut Trace,
    deserializer: D,
) -> Result<EventEnvelope, D::Error> {
    let mut event = None;
    read_into::<M, D>(trace, deserializer, &mut event)?;
    // `visit_map` fills it in whenever it succeeds.
    event.ok_or_else(|| de::Error::custom("a Voyado Engage webhook delivery (a JSON object)"))
}

/// Reads one delivery into `event` (filled in whenever this succeeds).
fn read_into<'de, M: Reader<'de>, D: Deserializer<'de>>(
    trace: &mut Trace,
    deserializer: D,
    event: &mut Option<EventEnvelope>,
) -> Result<(), D::Error> {
    deserializer.deserialize_map(EnvelopeVisitor::<M> {
        trace,
        event,
        reader: PhantomData,
    })
}

/// Reads the envelope into `event`: the event is large, and filling it in
/// where it will stay saves copying it out through each layer of serde.
struct EnvelopeVisitor<'t, M> {
    trace: &'t mut Trace,
    event: &'t mut Option<EventEnvelope>,
    reader: PhantomData<fn() -> M>,
}

field_names! {
    enum Name {
        EventType = ["eventType"],
        Id = ["id", "eventId"],
        Tenant = ["tenant"],
        IsEncrypted = ["isEncrypted"],
        Payload = ["payload"],
    }
}

impl<'de, M: Reader<'de>> Visitor<'de> for EnvelopeVisitor<'_, M> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Voyado Engage webhook delivery (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let trace = self.trace;
        let out = self.event;
        let mut event_type: Option<EventType> = None;
        let mut tenant: Option<Option<String>> = None;
        let mut is_encrypted: Option<Option<bool>> = None;
        let mut captured: Option<M::Raw> = None;
        let mut extra = Extra::new();

        while let Some(key) = map.next_key::<Key<'de>>()? {
            let path = || key.as_str().to_owned();
            match Name::of(key.as_str()) {
                Some(Name::Payload) if out.is_none() && captured.is_none() => match &event_type {
                    Some(event_type) => {
                        let encrypted = is_encrypted.flatten();
                        let source = Stream::<A, M>(&mut map, PhantomData);
                        read_payload(event_type, encrypted, source, trace, out)?;
                    }
                    None => {
                        let raw: M::Raw = map.next_value().map_err(|e| trace.failed_in(payload_path, e))?;
                        trace.captured_payload(raw.text());
                        captured = Some(raw);
                    }
                },
                Some(Name::EventType) if event_type.is_none() => {
                    let read: EventType = M::field(&mut map, trace, path)?;
                    // Only to name the event in an error: `Fast` reports none.
                    if M::EXPLAINS {
                        trace.event_type = Some(read.clone());
                    }
                    event_type = Some(read);
                }
                // The trace holds the id, to name it in errors. A null or empty id
                // does not take the place of a later alias.
                Some(Name::Id) if trace.event_id.is_none() => {
                    trace.event_id = M::field(&mut map, trace, path)?;
                }
                Some(Name::Tenant) if tenant.as_ref().is_none_or(Field::is_absent) => {
                    tenant = Some(M::field(&mut map, trace, path)?);
                }
                Some(Name::IsEncrypted) if is_encrypted.as_ref().is_none_or(Field::is_absent) => {
                    is_encrypted = Some(M::field(&mut map, trace, path)?);
                }
                _ => {
                    let kept = keep_next::<M, A>(&mut map, trace, path)?;
                    extra.push(key.into_owned(), kept);
                }
            }
        }

        let event_type = trace.require::<_, A::Error>(event_type, || "eventType".to_owned())?;
        let is_encrypted = is_encrypted.flatten().unwrap_or(false);
        if out.is_none() {
            let encrypted = Some(is_encrypted);
            match captured {
                Some(raw) => read_payload(&event_type, encrypted, Captured(raw, PhantomData), trace, out)?,
                None => read_payload(&event_type, encrypted, Missing(PhantomData), trace, out)?,
            }
        }
        if is_encrypted && !matches!(out, Some(EventEnvelope::Encrypted(_))) {
            *out = out
                .take()
                .map(EventEnvelope::into_encrypted)
                .transpose()
                .map_err(de::Error::custom)?;
        }
        if let Some(event) = out {
            if !is_encrypted {
                refuse_string_payload(event, trace)?;
            }
            event.set_head(trace.event_id.take(), tenant.flatten(), is_encrypted, extra);
        }
        Ok(())
    }
}

/// A string payload that is not encrypted, where an object was expected, is an
/// error. (`read_payload` returns it as `Encrypted`.)
fn refuse_string_payload<E: de::Error>(event: &EventEnvelope, trace: &mut Trace) -> Result<(), E> {
    match event {
        EventEnvelope::Encrypted(event) => {
            let kind = ParseErrorKind::InvalidValue {
                expected: "an object",
                found: quote(event.payload.get()),
            };
            Err(trace.fail(payload_path(), kind))
        }
        _ => Ok(()),
    }
}

/// Reads a decrypted payload as the payload of `event_type`, naming the event as
/// `event_id` in errors. The envelope fields are left for the caller to fill in.
#[cfg(feature = "decrypt")]
pub(crate) fn decrypted_payload(
    event_type: &EventType,
    event_id: Option<String>,
    payload: RawPayload,
) -> Result<EventEnvelope, ParseError> {
    let mut trace = Trace {
        event_type: Some(event_type.clone()),
        event_id,
        ..Trace::default()
    };
    let raw: Box<RawValue> = payload.into();
    let source = Captured::<_, serde_json::Error>(raw, PhantomData);
    let mut event = None;
    // `read_payload` fills it in whenever it succeeds.
    read_payload(event_type, Some(false), source, &mut trace, &mut event)
        .and_then(|()| event.ok_or_else(|| de::Error::custom("a payload object")))
        .and_then(|event| refuse_string_payload(&event, &mut trace).map(|()| event))
        .map_err(|error| match trace.failure.take() {
            Some(failure) => failure.with_event(trace.event_type.as_ref(), trace.event_id.as_deref()),
            None => ParseError::syntax(&error),
        })
}

/// Generates [`read_payload`] from the table in [`crate::events`]: the event
/// type picks the payload's reader, with no catch-all arm, so a new event type
/// cannot be left out.
macro_rules! read_payload {
    (
        [$($args:tt)*]
        typed { $( $(#[$doc:meta])* $variant:ident = $wire:literal => $payload:ident, $method:ident $(, Preference::$pref:ident)? as $kind:ident $(($entity:ident))?; )* }
        untyped { $( $(#[$udoc:meta])* $uvariant:ident = $uwire:literal => $umethod:ident as $ukind:ident $(($uentity:ident))?; )* }
    ) => {
        /// Reads a payload into `out`, as the event its type makes. A string
        /// payload where an object was expected comes back as `Encrypted`, for the
        /// caller to accept or refuse once `isEncrypted` is known.
        fn read_payload<'de, S: Source<'de>>(
            event_type: &EventType,
            is_encrypted: Option<bool>,
            source: S,
            trace: &mut Trace,
            out: &mut Option<EventEnvelope>,
        ) -> Result<(), S::Error> {
            if is_encrypted == Some(true) {
                let raw = source.capture(trace)?;
                *out = Some(EventEnvelope::Encrypted(Envelope::bare(event_type.clone(), raw)));
                return Ok(());
            }
            match event_type {
                $( EventType::$variant => typed::<crate::payload::$payload, S>(event_type, source, trace, EventEnvelope::$variant, out), )*
                $( EventType::$uvariant )|* | EventType::Other(_) => {
                    let raw = source.capture(trace)?;
                    *out = Some(EventEnvelope::Unknown(Envelope::bare(event_type.clone(), raw)));
                    Ok(())
                }
            }
        }
    };
}

crate::events::events!(read_payload);

/// Reads a typed payload into its variant (or a string payload as `Encrypted`).
fn typed<'de, P: Payload, S: Source<'de>>(
    event_type: &EventType,
    source: S,
    trace: &mut Trace,
    variant: fn(Envelope<P>) -> EventEnvelope,
    out: &mut Option<EventEnvelope>,
) -> Result<(), S::Error> {
    source.read::<P, _>(
        trace,
        IntoVariant {
            event_type,
            variant,
            out,
        },
    )
}

/// Puts a typed payload into its variant in `out`.
struct IntoVariant<'a, P> {
    event_type: &'a EventType,
    variant: fn(Envelope<P>) -> EventEnvelope,
    out: &'a mut Option<EventEnvelope>,
}

impl<P> Put<P> for IntoVariant<'_, P> {
    // Inlined, the event is built where it stays.
    #[inline(always)]
    fn put(self, received: Received<P>) {
        let event_type = self.event_type.clone();
        *self.out = Some(match received {
            Received::Object(payload) => (self.variant)(Envelope::bare(event_type, payload)),
            Received::String(raw) => EventEnvelope::Encrypted(Envelope::bare(event_type, raw)),
        });
    }
}

fn payload_path() -> String {
    "payload".to_owned()
}

/// Where a payload is read from.
trait Source<'de>: Sized {
    type Error: de::Error;
    /// Reads the payload as `P` (or as a string) and puts it where `put` says.
    fn read<P: Payload, T: Put<P>>(self, trace: &mut Trace, put: T) -> Result<(), Self::Error>;
    /// Keeps the payload as it is.
    fn capture(self, trace: &mut Trace) -> Result<RawPayload, Self::Error>;
}

/// The next value of the envelope being read: the one-pass case.
struct Stream<'a, A, M>(&'a mut A, PhantomData<fn() -> M>);

impl<'de, A: MapAccess<'de>, M: Reader<'de>> Source<'de> for Stream<'_, A, M> {
    type Error = A::Error;
    fn read<P: Payload, T: Put<P>>(self, trace: &mut Trace, put: T) -> Result<(), A::Error> {
        let read = self.0.next_value_seed(PayloadSeed::<P, M, T>::new(trace, put));
        read.map_err(|e| trace.failed_in(payload_path, e))
    }
    fn capture(self, trace: &mut Trace) -> Result<RawPayload, A::Error> {
        keep_next::<M, A>(self.0, trace, payload_path).map(RawPayload::from)
    }
}

/// A payload captured before the event type was known.
struct Captured<R, E>(R, PhantomData<fn() -> E>);

impl<'de, R: RawText<'de>, E: de::Error> Source<'de> for Captured<R, E> {
    type Error = E;
    fn read<P: Payload, T: Put<P>>(self, trace: &mut Trace, put: T) -> Result<(), E> {
        let mut deserializer = serde_json::Deserializer::from_str(self.0.text());
        let read = PayloadSeed::<P, Exact<&RawValue>, T>::new(trace, put)
            .deserialize(&mut deserializer)
            .and_then(|()| deserializer.end());
        // Report the recorded failure: serde_json's positions would be relative to
        // the payload, not to the body.
        read.map_err(|error| match &trace.failure {
            Some(failure) => E::custom(failure),
            None => E::custom(error),
        })
    }
    fn capture(self, trace: &mut Trace) -> Result<RawPayload, E> {
        trace.keep(self.0, payload_path).map(RawPayload::from)
    }
}

/// No payload at all: an error for a typed event, `null` for any other.
struct Missing<E>(PhantomData<fn() -> E>);

impl<'de, E: de::Error> Source<'de> for Missing<E> {
    type Error = E;
    fn read<P: Payload, T: Put<P>>(self, trace: &mut Trace, _: T) -> Result<(), E> {
        Err(trace.fail(payload_path(), ParseErrorKind::MissingField))
    }
    fn capture(self, _: &mut Trace) -> Result<RawPayload, E> {
        Ok(RawValue::NULL.to_owned().into())
    }
}

/// Reads `eventType` and the id only, ignoring every value: used to name the event
/// in an error that happened before they were read.
fn peek_event(input: &[u8]) -> (Option<EventType>, Option<String>) {
    struct Peek<'a>(&'a mut (Option<EventType>, Option<String>));
    impl<'de> Visitor<'de> for Peek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Key<'de>>()? {
                let raw: &RawValue = map.next_value()?;
                match Name::of(key.as_str()) {
                    Some(Name::EventType) if self.0.0.is_none() => {
                        self.0.0 = EventType::read(raw.get()).ok();
                    }
                    Some(Name::Id) if self.0.1.is_none() => {
                        self.0.1 = Option::<String>::read(raw.get()).ok().flatten();
                    }
                    _ => {}
                }
            }
            Ok(())
        }
    }
    let mut found = (None, None);
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    // Whatever was read before a failure is still worth having.
    let _ = de::Deserializer::deserialize_map(&mut deserializer, Peek(&mut found));
    found
}

/// `input` as text (it was read as such).
fn body_str(input: &[u8]) -> &str {
    std::str::from_utf8(input).unwrap_or_default()
}

/// Turns a failed parse of `input` into a [`ParseError`] naming what it can.
fn parse_error(error: &serde_json::Error, trace: Trace, input: &[u8]) -> ParseError {
    let failure = match trace.failure {
        Some(failure) => failure,
        None if error.is_data() => {
            // Well-formed JSON that is not an object: the only data error the
            // visitors leave unrecorded.
            let found = String::from_utf8_lossy(input);
            let kind = ParseErrorKind::InvalidValue {
                expected: "a JSON object",
                found: quote(found.trim()),
            };
            ParseError::new(kind, None)
        }
        // In a rewritten body, a syntax error past the replaced value comes after
        // the nesting that was refused there: that is the first problem.
        None => match trace.depth {
            Depth::TooDeepAt(at)
                if after(
                    body_str(input),
                    at.saturating_sub(input.as_ptr().addr()),
                    (error.line(), error.column()),
                ) =>
            {
                let path = trace
                    .reading
                    .or_else(|| trace.too_deep_payload.then(payload_path));
                ParseError::new(
                    ParseErrorKind::TooDeep {
                        limit: depth::MAX_DEPTH,
                    },
                    path,
                )
            }
            _ => ParseError::syntax(error),
        },
    };
    let failure = failure.with_event(trace.event_type.as_ref(), trace.event_id.as_deref());
    if failure.event_type().is_some() && failure.event_id().is_some() {
        return failure;
    }
    let (event_type, event_id) = peek_event(input);
    failure.with_event(event_type.as_ref(), event_id.as_deref())
}
