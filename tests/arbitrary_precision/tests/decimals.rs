//! Exact decimals with serde_json's `arbitrary_precision` on.

#![allow(missing_docs, clippy::unwrap_used, clippy::panic, reason = "a test fails by panicking")]

use voyado_webhooks::EventEnvelope;

#[test]
fn arbitrary_precision_is_really_on() {
    let value: serde_json::Value = serde_json::from_str("100.10").unwrap();
    assert_eq!(value.to_string(), "100.10");
}

fn balance(event: &EventEnvelope) -> String {
    match event {
        EventEnvelope::PointBalanceUpdated(e) => e.payload.balance.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decimals_integers_and_number_strings_are_exact() {
    for (input, expected) in [
        ("100.10", "100.10"),
        ("\"100.10\"", "100.10"),
        ("250.0000", "250.0000"),
        ("9007199254740993", "9007199254740993"),
        ("1234567890123456.789012345678", "1234567890123456.789012345678"),
        ("1.5e2", "150"),
    ] {
        let json = format!(
            r#"{{"eventType": "point.balance.updated", "payload": {{"contactId": 7, "balance": {input}, "accountId": 42.0, "definitionId": 1.50}}}}"#
        );
        // The crate's own entry point, serde_json's, and through a `Value`.
        let direct = EventEnvelope::from_slice(json.as_bytes()).unwrap();
        let generic: EventEnvelope = serde_json::from_str(&json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let via_value: EventEnvelope = serde_json::from_value(value).unwrap();
        for event in [&direct, &generic, &via_value] {
            assert_eq!(balance(event), expected, "{input}");
            let EventEnvelope::PointBalanceUpdated(e) = event else { unreachable!() };
            assert_eq!(e.payload.contact_id, "7");
            assert_eq!(e.payload.account_id, Some(42));
            assert_eq!(e.payload.definition_id.as_deref(), Some("1.50"));
        }
        // And back out with the same digits.
        let written = serde_json::to_string(&direct).unwrap();
        assert_eq!(balance(&written.parse().unwrap()), expected);
    }
}

#[test]
fn extra_fields_and_unknown_payloads_keep_their_digits() {
    let json = r#"{"eventType": "x.y", "payload": {"n": 1.000000000000000000001}, "m": 0.10}"#;
    let EventEnvelope::Unknown(e) = EventEnvelope::from_slice(json.as_bytes()).unwrap() else { panic!() };
    assert_eq!(e.payload.get(), r#"{"n": 1.000000000000000000001}"#);
    assert_eq!(e.extra.get("m").map(|v| v.get()), Some("0.10"));
}
