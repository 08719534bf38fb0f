//! Any body: an event or a `ParseError`, never a panic. A parsed event survives
//! a serialize/parse round trip. Where the fast path takes a body, serde_json's
//! path reads the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voyado_webhooks::EventEnvelope;

fuzz_target!(|body: &[u8]| {
    if let Ok(text) = std::str::from_utf8(body) {
        if let (Some(fast), slow) = voyado_webhooks::fuzz_both_readers(text) {
            assert_eq!(slow.as_ref(), Ok(&fast), "{text}");
        }
    }
    let Ok(event) = EventEnvelope::from_slice(body) else {
        return;
    };
    let written = serde_json::to_string(&event).unwrap();
    let again = EventEnvelope::from_slice(written.as_bytes()).unwrap();
    assert_eq!(again, event);
    assert_eq!(serde_json::to_string(&again).unwrap(), written);
});
