//! Any body: an event or a `ParseError`, never a panic. Against serde_json, the
//! only reader: a body it finds malformed is refused, and whatever an accepted
//! body keeps as JSON text it reads again. A parsed event survives a
//! serialize/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use voyado_webhooks::EventEnvelope;

// Only the shared assertions are used here; the mutations serve `mutate`.
#[path = "../../tests/common/mutate.rs"]
#[allow(dead_code)]
mod mutate;

fuzz_target!(|body: &[u8]| {
    let parsed = EventEnvelope::from_slice(body);
    if serde_json::from_slice::<IgnoredAny>(body).is_err() {
        assert!(parsed.is_err(), "accepted malformed JSON");
    }
    match parsed {
        Ok(event) => mutate::assert_round_trips(&event),
        Err(error) => mutate::assert_explains(&error),
    }
});
