//! Any headers and body: verification never panics, and never passes without the
//! right signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voyado_webhooks::Webhook;

fuzz_target!(|input: (&str, &str, &str, &[u8])| {
    let (id, timestamp, signature, body) = input;
    let webhook = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let headers = [("svix-id", id), ("svix-timestamp", timestamp), ("svix-signature", signature)];
    let now = time::OffsetDateTime::from_unix_timestamp(1_614_265_330).unwrap();
    if webhook.verify_at(&headers, body, now).is_ok() {
        let expected = webhook.sign(id, timestamp.parse().unwrap(), body);
        assert!(signature.split_ascii_whitespace().any(|entry| entry == expected));
    }
    let _ = webhook.receive_at(&headers, body, now);
});
