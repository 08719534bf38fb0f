//! Any body: an event or a `ParseError`, never a panic. A parsed event survives
//! a serialize/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voyado_webhooks::EventEnvelope;

fuzz_target!(|body: &[u8]| {
    let Ok(event) = EventEnvelope::from_slice(body) else {
        return;
    };
    let written = serde_json::to_string(&event).unwrap();
    let again = EventEnvelope::from_slice(written.as_bytes()).unwrap();
    assert_eq!(again, event);
    assert_eq!(serde_json::to_string(&again).unwrap(), written);
});
