//! Any payload: decryption never panics, and what it encrypts it decrypts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voyado_webhooks::{Decryptor, EventEnvelope, RawPayload};

fuzz_target!(|input: (&str, [u8; 16])| {
    let (text, iv) = input;
    let decryptor = Decryptor::new("VoyadoEngageFixtureKey0123456789").unwrap();
    if let Ok(payload) = RawPayload::from_json(serde_json::to_string(text).unwrap()) {
        let _ = decryptor.decrypt_payload(&payload);
    }
    if let Ok(plain) = RawPayload::from_json(text) {
        let encrypted = decryptor.encrypt_payload(&plain, &iv);
        assert_eq!(decryptor.decrypt_payload(&encrypted).unwrap(), plain);
        let body = format!(r#"{{"eventType": "loyalty.addPoints", "isEncrypted": true, "payload": {encrypted}}}"#);
        let _ = EventEnvelope::from_slice(body.as_bytes()).unwrap().decrypt(&decryptor);
    }
});
