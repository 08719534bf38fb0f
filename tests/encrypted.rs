//! Encrypted deliveries: the vectors made by OpenSSL (`tests/fixtures/encrypted/
//! make-vectors.sh`) decrypt to the typed events their plaintext makes, and every
//! failure is a clear error.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use voyado_webhooks::{
    DecryptError, Decryptor, EventEnvelope, EventType, ParseErrorKind, RawPayload, ReceiveError, Webhook,
};

const KEY: &str = "VoyadoEngageFixtureKey0123456789";

/// Each vector with the plaintext `make-vectors.sh` encrypted into it.
fn vectors() -> Vec<(String, Vec<u8>, String)> {
    common::fixture_names("encrypted")
        .into_iter()
        .map(|name| {
            let plaintext = common::fixture(&name.replace(".json", ".plaintext"));
            let plaintext = String::from_utf8(plaintext).unwrap().trim_end().to_owned();
            (name.clone(), common::fixture(&name), plaintext)
        })
        .collect()
}

fn decryptor() -> Decryptor {
    Decryptor::new(KEY).unwrap()
}

fn raw(json: &str) -> RawPayload {
    RawPayload::from_json(json).unwrap()
}

/// The same delivery unencrypted: the envelope with the plaintext as its payload.
fn unencrypted(body: &[u8], plaintext: &str) -> EventEnvelope {
    let mut value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value["isEncrypted"] = false.into();
    value["payload"] = serde_json::Value::Null;
    let text = value
        .to_string()
        .replace(r#""payload":null"#, &format!(r#""payload":{plaintext}"#));
    text.parse().unwrap()
}

#[test]
fn every_vector_decrypts_to_the_event_its_plaintext_makes() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 6, "one per typed event");
    for (name, body, plaintext) in vectors {
        let event = EventEnvelope::from_slice(&body).unwrap();
        assert!(matches!(event, EventEnvelope::Encrypted(_)), "{name}");
        let decrypted = event
            .clone()
            .decrypt(&decryptor())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!decrypted.is_encrypted());
        assert_eq!(decrypted.event_type(), event.event_type());
        assert_eq!(decrypted.id(), event.id());
        assert_eq!(decrypted.tenant(), Some("nordicoutdoor"));
        assert_eq!(decrypted, unencrypted(&body, &plaintext), "{name}");
        assert!(
            !matches!(decrypted, EventEnvelope::Unknown(_) | EventEnvelope::Encrypted(_)),
            "{name}"
        );
    }
}

#[test]
fn decrypted_fields_are_exact() {
    let body = common::fixture("encrypted/reward.voucher.created.json");
    let event = EventEnvelope::from_slice(&body)
        .unwrap()
        .decrypt(&decryptor())
        .unwrap();
    let EventEnvelope::RewardVoucherCreated(e) = event else {
        panic!()
    };
    assert_eq!(e.id.as_deref(), Some("ae517283-cf96-4b60-afa8-607e5dc1e057"));
    assert_eq!(e.payload.amount.to_string(), "50.00");
    assert_eq!(e.payload.unique_code, "RV-7Q2M-9XK4");
    assert_eq!(e.payload.currency.as_deref(), Some("SEK"));
    let valid_to = e.payload.valid_to.unwrap();
    assert_eq!(
        (valid_to.nanosecond(), valid_to.offset().whole_hours()),
        (123_456_700, 2)
    );

    let body = common::fixture("encrypted/loyalty.addPoints.json");
    let EventEnvelope::LoyaltyAddPoints(e) = EventEnvelope::from_slice(&body)
        .unwrap()
        .decrypt(&decryptor())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(e.payload.amount.to_string(), "100.10");
    assert_eq!(e.payload.contact_id, "0a3f7c2e-51b4-4d8e-b1a2-8c9d0e1f2a3b");
    assert_eq!(e.payload.point_definition_id, Some(1));
    assert_eq!(e.payload.user_id, None);
    assert_eq!(e.payload.source_id.as_deref(), Some("AUTO-2024-0513-001"));
}

fn encrypted_delivery(event_type: &str, plaintext: &str) -> EventEnvelope {
    let payload = decryptor().encrypt_payload(&RawPayload::from_json(plaintext).unwrap(), &[3; 16]);
    let body = format!(
        r#"{{"eventType": "{event_type}", "id": "e-7", "isEncrypted": true, "payload": {payload}, "x": 1}}"#
    );
    body.parse().unwrap()
}

#[test]
fn round_trip_through_encrypt_payload_keeps_the_envelope() {
    let event = encrypted_delivery(
        "point.balance.updated",
        r#"{"balance": 12.50, "contactId": "c-1", "tier": "gold"}"#,
    );
    let EventEnvelope::PointBalanceUpdated(e) = event.decrypt(&decryptor()).unwrap() else {
        panic!()
    };
    assert_eq!(e.payload.balance.to_string(), "12.50");
    assert_eq!(e.payload.extra.get("tier").map(|v| v.get()), Some(r#""gold""#));
    assert_eq!(e.extra.get("x").map(|v| v.get()), Some("1"));
    assert_eq!(e.id.as_deref(), Some("e-7"));
}

#[test]
fn an_encrypted_event_without_a_payload_type_becomes_unknown() {
    let event = encrypted_delivery("contact.created", r#"{"contactId": "c-9"}"#);
    let EventEnvelope::Unknown(e) = event.decrypt(&decryptor()).unwrap() else {
        panic!()
    };
    assert_eq!(e.event_type, EventType::ContactCreated);
    assert_eq!(e.payload.get(), r#"{"contactId": "c-9"}"#);
    assert!(!e.is_encrypted);
}

#[test]
fn events_that_are_not_encrypted_are_returned_unchanged() {
    let body = common::fixture("loyalty.addPoints.json");
    let event = EventEnvelope::from_slice(&body).unwrap();
    assert_eq!(event.clone().decrypt(&decryptor()).unwrap(), event);
}

#[test]
fn a_decrypted_payload_that_does_not_parse_names_its_field_and_event() {
    let event = encrypted_delivery("loyalty.addPoints", r#"{"amount": "lots", "contactId": "c-1"}"#);
    let DecryptError::Parse(error) = event.decrypt(&decryptor()).unwrap_err() else {
        panic!()
    };
    assert_eq!(error.path(), Some("payload.amount"));
    assert_eq!(error.event_id(), Some("e-7"));
    assert_eq!(error.event_type(), Some(&EventType::LoyaltyAddPoints));
    assert!(matches!(error.kind(), ParseErrorKind::InvalidValue { .. }));
    let event = encrypted_delivery("loyalty.addPoints", r#""a string""#);
    let DecryptError::Parse(error) = event.decrypt(&decryptor()).unwrap_err() else {
        panic!()
    };
    assert_eq!(error.path(), Some("payload"));
}

#[test]
fn the_wrong_key_is_an_error() {
    let wrong = Decryptor::new("WrongKeyWrongKeyWrongKeyWrongKey").unwrap();
    for (name, body, _) in vectors() {
        let error = EventEnvelope::from_slice(&body)
            .unwrap()
            .decrypt(&wrong)
            .unwrap_err();
        assert!(
            matches!(
                error,
                DecryptError::BadPadding | DecryptError::NotUtf8 | DecryptError::NotJson(_)
            ),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn the_receive_pipeline_decrypts_or_asks_for_a_retry() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = common::fixture("encrypted/point.balance.updated.json");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signer = Webhook::new(secret).unwrap();
    let headers = signer.signed_headers("msg_enc", now, &body);

    let with_key = Webhook::new(secret).unwrap().with_decryptor(decryptor());
    let delivery = with_key.receive(&headers, &body).unwrap();
    assert!(matches!(delivery.event, EventEnvelope::PointBalanceUpdated(_)));

    let without_key = Webhook::new(secret).unwrap();
    let error = without_key.receive(&headers, &body).unwrap_err();
    assert!(matches!(error, ReceiveError::NoDecryptor));
    assert_eq!(error.status_code(), 503);

    let wrong_key = Webhook::new(secret)
        .unwrap()
        .with_decryptor(Decryptor::new("WrongKeyWrongKeyWrongKeyWrongKey").unwrap());
    let error = wrong_key.receive(&headers, &body).unwrap_err();
    assert!(matches!(error, ReceiveError::Decrypt(_)), "{error}");
    assert_eq!(error.status_code(), 500);
}

/// Whatever makes decryption fail, the answer is the same 500: a sender who
/// could tell a bad padding from a bad payload would have a padding oracle.
#[test]
fn every_decryption_failure_answers_the_same_status() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signer = Webhook::new(secret).unwrap();
    let receiver = Webhook::new(secret).unwrap().with_decryptor(decryptor());
    let wrong_key = Decryptor::new("WrongKeyWrongKeyWrongKeyWrongKey").unwrap();
    let envelope = |payload: &str| {
        format!(r#"{{"eventType": "point.balance.updated", "isEncrypted": true, "payload": {payload}}}"#)
    };
    let mut bodies = vec![
        envelope(r#""not base64!""#),
        envelope(r#""AAAA""#),
        envelope(r#""AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA""#),
        // Decrypts, but the payload lacks its required balance.
        envelope(
            decryptor()
                .encrypt_payload(&raw(r#"{"contactId": "c-1"}"#), &[1; 16])
                .get(),
        ),
    ];
    // Under the wrong key: bad padding mostly, garbage that passes the padding
    // now and then.
    for iv in 0..=255u8 {
        let plain = raw(r#"{"balance": 1, "contactId": "c-1"}"#);
        bodies.push(envelope(wrong_key.encrypt_payload(&plain, &[iv; 16]).get()));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut causes = std::collections::BTreeSet::new();
    for body in &bodies {
        let headers = signer.signed_headers("msg_enc", now, body.as_bytes());
        let error = receiver.receive(&headers, body.as_bytes()).unwrap_err();
        let ReceiveError::Decrypt(cause) = &error else {
            panic!("{body}: {error}")
        };
        causes.insert(format!("{cause:?}").split(['(', ' ']).next().unwrap().to_owned());
        assert_eq!(error.status_code(), 500, "{error}");
    }
    for cause in ["Base64", "TooShort", "NotBlockAligned", "Parse", "BadPadding"] {
        assert!(causes.contains(cause), "{cause} not reached: {causes:?}");
    }
}
