//! Any headers and body: verification never panics, never passes without the
//! right signature, and always passes with it. The timestamp is derived from
//! `now` (or taken as fuzzed text), and the signature is made with one of the
//! webhook's two secrets, with a stranger's, or taken as fuzzed text, so the
//! signature comparison and the parse inside `receive_at` are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voyado_webhooks::{ReceiveError, Webhook};

const NOW: i64 = 1_614_265_330;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ROTATED: &str = "whsec_bmV3IHNlY3JldCBhZnRlciByb3RhdGlvbg==";
const STRANGER: &str = "whsec_dGhlIHdyb25nIHNlY3JldA==";

fuzz_target!(|input: (&str, i16, Option<&str>, u8, &str, &[u8])| {
    let (id, skew, timestamp_text, signer, signature_text, body) = input;
    let webhook = Webhook::new(SECRET).unwrap().with_secret(ROTATED).unwrap();
    let timestamp = match timestamp_text {
        Some(text) => text.to_owned(),
        None => (NOW + i64::from(skew)).to_string(),
    };
    let signed = timestamp.parse::<i64>().ok().and_then(|seconds| {
        let secret = match signer % 4 {
            0 => SECRET,
            1 => ROTATED,
            2 => STRANGER,
            _ => return None,
        };
        Some(Webhook::new(secret).unwrap().sign(id, seconds, body))
    });
    // A made signature, with the fuzzed text as further entries around it.
    let signature = match &signed {
        Some(made) if signer & 4 == 0 => format!("{made} {signature_text}"),
        Some(made) => format!("{signature_text} {made}"),
        None => signature_text.to_owned(),
    };
    let headers = [("svix-id", id), ("svix-timestamp", &timestamp), ("svix-signature", &signature)];
    let now = time::OffsetDateTime::from_unix_timestamp(NOW).unwrap();

    let verified = webhook.verify_at(&headers, body, now);
    if verified.is_ok() {
        // Passing needs a canonical timestamp within 5 minutes and an entry
        // that is one of the two secrets' signatures.
        let seconds: i64 = timestamp.parse().unwrap();
        assert_eq!(seconds.to_string(), timestamp);
        assert!((seconds - NOW).abs() <= 300);
        let expected = [SECRET, ROTATED].map(|s| Webhook::new(s).unwrap().sign(id, seconds, body));
        assert!(signature.split_ascii_whitespace().any(|entry| expected.contains(&entry.to_owned())));
    }
    let genuine = timestamp_text.is_none() && i64::from(skew).abs() <= 300 && signer % 4 < 2;
    if genuine {
        assert!(verified.is_ok(), "{headers:?}: {verified:?}");
    }
    match webhook.receive_at(&headers, body, now) {
        // A genuine delivery is refused only for its body.
        Err(ReceiveError::Verify(error)) => assert!(!genuine, "{error}"),
        Err(error) => assert!(error.to_string().lines().count() == 1, "{error}"),
        Ok(delivery) => assert_eq!(delivery.message_id, id),
    }
});
