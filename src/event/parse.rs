//! Reading a delivery: the envelope visitor, where the event type picks the
//! payload's parser.
//!
//! When `eventType` comes before `payload` (the usual order) the payload is read
//! straight into its struct. When it comes after, the payload's text is captured
//! and read once the type is known.
//!
//! The same visitors serve two readers: [`fast`], over the crate's own scanner,
//! for plain deliveries, and [`slow`], over serde_json, for everything else and
//! for explaining errors.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Envelope, EventEnvelope, EventType};
use crate::de::scan::{Scanner, Span, Value};
use crate::de::{Field, Key, RawText, Trace, field_names};
use crate::error::{ParseError, ParseErrorKind};
use crate::payload::{Payload, PayloadSeed, Received};
use crate::raw::{Extra, RawPayload};

/// Reads one delivery into `out`, capturing raw values as `R`.
///
/// The event is written in place rather than returned: returned, the event (over
/// 300 bytes) was copied once per layer it passed through.
pub(crate) struct EnvelopeSeed<'t, R> {
    trace: &'t mut Trace,
    out: &'t mut Option<EventEnvelope>,
    raw: PhantomData<fn() -> R>,
}

impl<'t, R> EnvelopeSeed<'t, R> {
    pub(crate) fn new(trace: &'t mut Trace, out: &'t mut Option<EventEnvelope>) -> Self {
        EnvelopeSeed {
            trace,
            out,
            raw: PhantomData,
        }
    }
}

impl<'de, R: RawText<'de>> DeserializeSeed<'de> for EnvelopeSeed<'_, R> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// Reads one delivery with any deserializer.
pub(crate) fn read<'de, R: RawText<'de>, D: Deserializer<'de>>(
    trace: &mut Trace,
    deserializer: D,
) -> Result<EventEnvelope, D::Error> {
    let mut out = None;
    EnvelopeSeed::<R>::new(trace, &mut out).deserialize(deserializer)?;
    written(out)
}

/// The event [`read_payload`] wrote into its slot: it always writes one before
/// returning `Ok`, so the error is never seen.
fn written<T, E: de::Error>(out: Option<T>) -> Result<T, E> {
    out.ok_or_else(|| E::custom("no event was read"))
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

/// The payload as far as it could be read when it was met.
enum Slot<R> {
    /// Read, into the event in `out` (its envelope fields filled in at the end).
    Read,
    /// Captured before the event type was known.
    Captured(R),
}

impl<'de, R: RawText<'de>> Visitor<'de> for EnvelopeSeed<'_, R> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Voyado Engage webhook delivery (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (trace, out) = (self.trace, self.out);
        let mut event_type: Option<EventType> = None;
        let mut tenant: Option<Option<String>> = None;
        let mut is_encrypted: Option<Option<bool>> = None;
        let mut payload: Option<Slot<R>> = None;
        let mut extra = Extra::new();

        while let Some(key) = map.next_key::<Key<'de>>()? {
            let name = Name::of(key.as_str());
            if let (Some(Name::Payload), None) = (name, &payload) {
                payload = Some(match &event_type {
                    Some(event_type) => {
                        let encrypted = is_encrypted.flatten();
                        let source = Stream::<A, R>(&mut map, PhantomData);
                        read_payload(event_type, encrypted, source, trace, out)?;
                        Slot::Read
                    }
                    None => Slot::Captured(map.next_value()?),
                });
                continue;
            }
            let raw: R = map.next_value()?;
            let text = raw.text();
            let path = || key.as_str().to_owned();
            match name {
                Some(Name::EventType) if event_type.is_none() => {
                    let read: EventType = trace.read::<_, A::Error>(path, text)?;
                    trace.event_type = Some(read.clone());
                    event_type = Some(read);
                }
                // The trace holds the id, to name it in errors. A null or empty id
                // does not take the place of a later alias.
                Some(Name::Id) if trace.event_id.is_none() => {
                    trace.event_id = trace.read::<_, A::Error>(path, text)?;
                }
                Some(Name::Tenant) if tenant.as_ref().is_none_or(Field::is_absent) => {
                    tenant = Some(trace.read::<_, A::Error>(path, text)?);
                }
                Some(Name::IsEncrypted) if is_encrypted.as_ref().is_none_or(Field::is_absent) => {
                    is_encrypted = Some(trace.read::<_, A::Error>(path, text)?);
                }
                _ => {
                    let kept = trace.keep::<R, A::Error>(raw, || key.as_str().to_owned())?;
                    extra.push(key.into_owned(), kept);
                }
            }
        }

        let event_type = trace.require::<_, A::Error>(event_type, || "eventType".to_owned())?;
        let is_encrypted = is_encrypted.flatten().unwrap_or(false);
        match payload {
            Some(Slot::Read) => {}
            Some(Slot::Captured(raw)) => {
                let source = Captured(raw, PhantomData);
                read_payload(&event_type, Some(is_encrypted), source, trace, out)?;
            }
            None => read_payload(&event_type, Some(is_encrypted), Missing(PhantomData), trace, out)?,
        }
        if is_encrypted {
            if let Some(event) = out.take_if(|event| !matches!(event, EventEnvelope::Encrypted(_))) {
                *out = Some(event.into_encrypted().map_err(de::Error::custom)?);
            }
        }
        let event = written(out.as_mut())?;
        if !is_encrypted {
            refuse_string_payload(event, trace)?;
        }
        event.set_head(trace.event_id.take(), tenant.flatten(), is_encrypted, extra);
        Ok(())
    }
}

/// Reads a delivery on the fast path ([`crate::de::scan`]) into `out`, if it is
/// plain enough; `None` there leaves it to serde_json. (Written in place, not
/// returned, for the reason [`EnvelopeSeed`] gives.)
#[inline]
pub(crate) fn fast(body: &str, out: &mut Option<EventEnvelope>) {
    let mut trace = Trace::default();
    let mut scanner = Scanner::new(body);
    let read = EnvelopeSeed::<Span<'_>>::new(&mut trace, out)
        .deserialize(Value(&mut scanner))
        .and_then(|()| scanner.end());
    if read.is_err() {
        *out = None;
    }
}

/// Reads a delivery with serde_json: any delivery, and every error explained.
pub(crate) fn slow(body: &str) -> Result<EventEnvelope, ParseError> {
    let mut trace = Trace::default();
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let result = read::<&RawValue, _>(&mut trace, &mut deserializer)
        .and_then(|event| deserializer.end().map(|()| event));
    result.map_err(|error| parse_error(&error, trace, body.as_bytes()))
}

/// A string payload that is not encrypted, where an object was expected, is an
/// error. (`read_payload` returns it as `Encrypted`.)
fn refuse_string_payload<E: de::Error>(event: &EventEnvelope, trace: &mut Trace) -> Result<(), E> {
    match event {
        EventEnvelope::Encrypted(event) => {
            let kind = ParseErrorKind::InvalidValue {
                expected: "an object",
                found: crate::de::shorten(event.payload.get()),
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
        failure: None,
    };
    let raw: Box<RawValue> = payload.into();
    let source = Captured::<_, serde_json::Error>(raw, PhantomData);
    let mut out = None;
    read_payload(event_type, Some(false), source, &mut trace, &mut out)
        .and_then(|()| written(out))
        .and_then(|event| refuse_string_payload(&event, &mut trace).map(|()| event))
        .map_err(|error| match trace.failure.take() {
            Some(failure) => failure.with_event(trace.event_type.take(), trace.event_id.take()),
            None => ParseError::syntax(&error),
        })
}

/// Reads a payload into the event its type makes. A string payload where an
/// object was expected comes back as `Encrypted`, for the caller to accept or
/// refuse once `isEncrypted` is known.
#[inline]
fn read_payload<'de, S: Source<'de>>(
    event_type: &EventType,
    is_encrypted: Option<bool>,
    source: S,
    trace: &mut Trace,
    out: &mut Option<EventEnvelope>,
) -> Result<(), S::Error> {
    #[inline]
    fn typed<'de, P: Payload, S: Source<'de>>(
        event_type: &EventType,
        source: S,
        trace: &mut Trace,
        out: &mut Option<EventEnvelope>,
        variant: fn(Envelope<P>) -> EventEnvelope,
    ) -> Result<(), S::Error> {
        *out = Some(match source.read::<P>(trace)? {
            Received::Object(payload) => variant(Envelope::bare(event_type.clone(), payload)),
            Received::String(raw) => EventEnvelope::Encrypted(Envelope::bare(event_type.clone(), raw)),
        });
        Ok(())
    }
    use EventEnvelope as E;
    if is_encrypted == Some(true) {
        let raw = source.capture(trace)?;
        *out = Some(E::Encrypted(Envelope::bare(event_type.clone(), raw)));
        return Ok(());
    }
    match event_type {
        EventType::ContactAcceptsEmailChanged => {
            typed(event_type, source, trace, out, E::ContactAcceptsEmailChanged)
        }
        EventType::ContactAcceptsSmsChanged => {
            typed(event_type, source, trace, out, E::ContactAcceptsSmsChanged)
        }
        EventType::ContactAcceptsPostalChanged => {
            typed(event_type, source, trace, out, E::ContactAcceptsPostalChanged)
        }
        EventType::LoyaltyAddPoints => typed(event_type, source, trace, out, E::LoyaltyAddPoints),
        EventType::PointBalanceUpdated => typed(event_type, source, trace, out, E::PointBalanceUpdated),
        EventType::RewardVoucherCreated => typed(event_type, source, trace, out, E::RewardVoucherCreated),
        _ => {
            let raw = source.capture(trace)?;
            *out = Some(E::Unknown(Envelope::bare(event_type.clone(), raw)));
            Ok(())
        }
    }
}

fn payload_path() -> String {
    "payload".to_owned()
}

/// Where a payload is read from.
trait Source<'de>: Sized {
    type Error: de::Error;
    /// Reads the payload as `P` (or as a string).
    fn read<P: Payload>(self, trace: &mut Trace) -> Result<Received<P>, Self::Error>;
    /// Keeps the payload as it is.
    fn capture(self, trace: &mut Trace) -> Result<RawPayload, Self::Error>;
}

/// The next value of the envelope being read: the one-pass case.
struct Stream<'a, A, R>(&'a mut A, PhantomData<fn() -> R>);

impl<'de, A: MapAccess<'de>, R: RawText<'de>> Source<'de> for Stream<'_, A, R> {
    type Error = A::Error;
    fn read<P: Payload>(self, trace: &mut Trace) -> Result<Received<P>, A::Error> {
        self.0.next_value_seed(PayloadSeed::<P, R>::new(trace))
    }
    fn capture(self, trace: &mut Trace) -> Result<RawPayload, A::Error> {
        let raw: R = self.0.next_value()?;
        trace.keep(raw, payload_path).map(RawPayload::from)
    }
}

/// A payload captured before the event type was known.
struct Captured<R, E>(R, PhantomData<fn() -> E>);

impl<'de, R: RawText<'de>, E: de::Error> Source<'de> for Captured<R, E> {
    type Error = E;
    fn read<P: Payload>(self, trace: &mut Trace) -> Result<Received<P>, E> {
        let mut deserializer = serde_json::Deserializer::from_str(self.0.text());
        let read = PayloadSeed::<P, &RawValue>::new(trace)
            .deserialize(&mut deserializer)
            .and_then(|received| deserializer.end().map(|()| received));
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
    fn read<P: Payload>(self, trace: &mut Trace) -> Result<Received<P>, E> {
        Err(trace.fail(payload_path(), ParseErrorKind::MissingField))
    }
    fn capture(self, _: &mut Trace) -> Result<RawPayload, E> {
        Ok(RawValue::NULL.to_owned().into())
    }
}

/// Reads `eventType` and the id only, ignoring every value: used to name the event
/// in an error that happened before they were read.
pub(crate) fn peek_event(input: &[u8]) -> (Option<EventType>, Option<String>) {
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

/// Turns a failed parse of `input` into a [`ParseError`] naming what it can.
pub(crate) fn parse_error(error: &serde_json::Error, trace: Trace, input: &[u8]) -> ParseError {
    let failure = match trace.failure {
        Some(failure) => failure,
        None if error.is_data() => {
            // Well-formed JSON that is not an object: the only data error the
            // visitors leave unrecorded.
            let found = String::from_utf8_lossy(input);
            let kind = ParseErrorKind::InvalidValue {
                expected: "a JSON object",
                found: crate::de::shorten(found.trim()),
            };
            ParseError::new(kind, None)
        }
        None => ParseError::syntax(error),
    };
    let failure = failure.with_event(trace.event_type, trace.event_id);
    if failure.event_type().is_some() && failure.event_id().is_some() {
        return failure;
    }
    let (event_type, event_id) = peek_event(input);
    failure.with_event(event_type, event_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut out = Vec::new();
        for dir in ["", "encrypted"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    out.push((name, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        out
    }

    fn fast_read(body: &str) -> Option<EventEnvelope> {
        let mut out = None;
        fast(body, &mut out);
        out
    }

    /// The fast path takes every fixture, and reads what serde_json reads;
    /// on fixtures cut or with a byte replaced anywhere, it reads the same or
    /// gives up.
    #[test]
    fn the_fast_path_reads_what_serde_json_reads() {
        let mut taken = 0usize;
        for (name, body) in fixtures() {
            let read = fast_read(&body);
            assert!(read.is_some(), "{name}");
            if let Some(read) = read {
                assert_eq!(slow(&body), Ok(read), "{name}");
            }
            for at in 0..body.len() {
                for replacement in [
                    "", "\"", "{", "}", "[", "0", "-", ".", "e", "\\", ",", "null", "\"\"",
                ] {
                    let (Some(before), Some(after)) = (body.get(..at), body.get(at + 1..)) else {
                        continue;
                    };
                    let mutated = format!("{before}{replacement}{after}");
                    if let Some(read) = fast_read(&mutated) {
                        taken += 1;
                        assert_eq!(slow(&mutated), Ok(read), "{mutated}");
                    }
                }
            }
        }
        assert!(taken > 1000, "{taken}");
    }
}
