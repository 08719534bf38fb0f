//! The tolerance rules of the crate documentation, one test (or more) per rule.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

use voyado_webhooks::{EventEnvelope, EventType, ParseError, ParseErrorKind};

fn parse(json: &str) -> EventEnvelope {
    EventEnvelope::from_slice(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn fail(json: &str) -> ParseError {
    match EventEnvelope::from_slice(json.as_bytes()) {
        Ok(event) => panic!("parsed: {event:?}\n{json}"),
        Err(error) => error,
    }
}

/// One minimal payload per typed event, in Voyado's own casing.
const TYPED: [(&str, &str); 6] = [
    (
        "contact.acceptsEmail.changed",
        r#"{"contactId": "c-1", "acceptsEmail": true}"#,
    ),
    (
        "contact.acceptsSms.changed",
        r#"{"contactId": "c-1", "acceptsSms": true}"#,
    ),
    (
        "contact.acceptsPostal.changed",
        r#"{"contactId": "c-1", "acceptsPostal": true}"#,
    ),
    (
        "loyalty.addPoints",
        r#"{"amount": 1.5, "contactId": "c-1", "pointDefinitionId": 1, "sourceId": "s"}"#,
    ),
    (
        "point.balance.updated",
        r#"{"balance": 1.5, "contactId": "c-1", "accountId": 2, "balanceExpires": "2024-01-01T00:00:00Z"}"#,
    ),
    (
        "reward.voucher.created",
        r#"{"Amount": 1.5, "ContactId": "c-1", "Id": "v", "UniqueCode": "U", "ValidTo": "2024-01-01T00:00:00Z"}"#,
    ),
];

fn envelope(event_type: &str, payload: &str) -> String {
    format!(
        r#"{{"eventType": "{event_type}", "id": "e-1", "isEncrypted": false, "payload": {payload}, "tenant": "t"}}"#
    )
}

/// Rewrites every key in `json` (keys are the strings followed by `:`).
fn rename_keys(json: &str, rename: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = json;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('"').unwrap();
        let word = &after[..end];
        let tail = &after[end + 1..];
        if tail.trim_start().starts_with(':') {
            out.push('"');
            out.push_str(&rename(word));
            out.push('"');
        } else {
            out.push('"');
            out.push_str(word);
            out.push('"');
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn snake(word: &str) -> String {
    let mut out = String::new();
    for c in word.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn pascal(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[test]
fn rule_1_field_names_ignore_case_and_separators() {
    type Rename = fn(&str) -> String;
    let spellings: [(&str, Rename); 5] = [
        ("snake_case", snake),
        ("kebab-case", |w| snake(w).replace('_', "-")),
        ("PascalCase", pascal),
        ("UPPERCASE", |w| w.to_ascii_uppercase()),
        ("lowercase", |w| w.to_ascii_lowercase()),
    ];
    for (event_type, payload) in TYPED {
        let reference = parse(&envelope(event_type, payload));
        assert!(!matches!(reference, EventEnvelope::Unknown(_)), "{event_type}");
        for (style, rename) in spellings {
            let json = rename_keys(&envelope(event_type, payload), rename);
            assert_eq!(parse(&json), reference, "{event_type} in {style}: {json}");
        }
    }
}

#[test]
fn rule_2_the_id_comes_from_id_or_event_id_for_every_event_type() {
    let all = TYPED
        .iter()
        .copied()
        .chain([("contact.created", "{}"), ("brand.new", "{}")]);
    for (event_type, payload) in all {
        for key in ["id", "eventId", "EventId", "event_id"] {
            let json = format!(r#"{{"{key}": "x-1", "eventType": "{event_type}", "payload": {payload}}}"#);
            let event = parse(&json);
            assert_eq!(event.id(), Some("x-1"), "{json}");
            assert_eq!(event.event_type(), &EventType::from(event_type));
        }
        let none = parse(&format!(
            r#"{{"eventType": "{event_type}", "payload": {payload}}}"#
        ));
        assert_eq!(none.id(), None);
    }
}

#[test]
fn rule_2_with_both_ids_the_first_wins_and_the_other_is_kept() {
    for (first, second) in [("id", "eventId"), ("eventId", "id")] {
        let json = format!(
            r#"{{"{first}": "one", "{second}": "two", "eventType": "point.balance.updated",
                "payload": {{"balance": 1, "contactId": "c"}}}}"#
        );
        let EventEnvelope::PointBalanceUpdated(e) = parse(&json) else {
            panic!()
        };
        assert_eq!(e.id.as_deref(), Some("one"));
        assert_eq!(e.extra.get(second).map(|v| v.get()), Some("\"two\""));
        // Written back and read again, the same choice is made.
        let again = parse(&serde_json::to_string(&e).unwrap());
        assert_eq!(again.id(), Some("one"));
    }
    // A null id does not hide a later one.
    let json = r#"{"id": null, "eventId": "two", "eventType": "x.y", "payload": {}}"#;
    assert_eq!(parse(json).id(), Some("two"));
    // Ids sent as numbers are kept as their text.
    assert_eq!(
        parse(r#"{"id": 12345, "eventType": "x.y", "payload": {}}"#).id(),
        Some("12345")
    );
}

#[test]
fn rule_3_fields_in_any_order() {
    for (event_type, payload) in TYPED {
        let reference = parse(&envelope(event_type, payload));
        let orders = [
            format!(
                r#"{{"payload": {payload}, "eventType": "{event_type}", "id": "e-1", "tenant": "t", "isEncrypted": false}}"#
            ),
            format!(
                r#"{{"tenant": "t", "payload": {payload}, "isEncrypted": false, "id": "e-1", "eventType": "{event_type}"}}"#
            ),
            format!(
                r#"{{"id": "e-1", "eventType": "{event_type}", "payload": {payload}, "isEncrypted": false, "tenant": "t"}}"#
            ),
        ];
        for json in orders {
            assert_eq!(parse(&json), reference, "{json}");
        }
        // Payload fields in reverse order.
        let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(payload).unwrap();
        let reversed: Vec<String> = fields
            .iter()
            .rev()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        let json = envelope(event_type, &format!("{{{}}}", reversed.join(", ")));
        assert_eq!(parse(&json), reference, "{json}");
    }
}

#[test]
fn rule_3_is_encrypted_after_the_payload() {
    let json = r#"{"eventType": "loyalty.addPoints", "payload": "q83vEjRW", "isEncrypted": true}"#;
    let EventEnvelope::Encrypted(e) = parse(json) else {
        panic!()
    };
    assert_eq!(e.payload.get(), "\"q83vEjRW\"");
    assert!(e.is_encrypted);
    // An object payload marked encrypted afterwards is still `Encrypted`, its text
    // written back from what was read.
    let json = r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 1.50, "contactId": "c", "x": [1]}, "isEncrypted": true}"#;
    let EventEnvelope::Encrypted(e) = parse(json) else {
        panic!()
    };
    assert_eq!(e.payload.get(), r#"{"amount":1.50,"contactId":"c","x":[1]}"#);
}

#[test]
fn rule_4_unknown_event_types_and_fields_are_kept() {
    for name in [
        "contact.consent.changed",
        "contact.created",
        "contact.updated",
        "promotion.multichannel.assigned",
    ] {
        let event = parse(&format!(r#"{{"eventType": "{name}", "payload": {{"a": 1}}}}"#));
        let EventEnvelope::Unknown(e) = event else {
            panic!("{name}")
        };
        assert_eq!(e.event_type.as_str(), name);
        assert!(
            !matches!(e.event_type, EventType::Other(_)),
            "{name} is a known name"
        );
        assert_eq!(e.payload.get(), r#"{"a": 1}"#);
    }
    let event = parse(r#"{"eventType": "order.shipped", "payload": [1, "two"], "new": {"x": null}}"#);
    let EventEnvelope::Unknown(e) = event else {
        panic!()
    };
    assert_eq!(e.event_type, EventType::Other("order.shipped".into()));
    assert_eq!(e.payload.get(), r#"[1, "two"]"#);
    assert_eq!(e.extra.get("new").map(|v| v.get()), Some(r#"{"x": null}"#));
    // No payload at all, for an event with no payload type: `null`.
    let EventEnvelope::Unknown(e) = parse(r#"{"eventType": "contact.deleted"}"#) else {
        panic!()
    };
    assert_eq!(e.payload.get(), "null");
}

#[test]
fn rule_4_a_repeated_field_keeps_its_first_value() {
    let json = r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 1, "contactId": "a", "contact_id": "b", "Amount": "junk"}}"#;
    let EventEnvelope::LoyaltyAddPoints(e) = parse(json) else {
        panic!()
    };
    assert_eq!(e.payload.contact_id, "a");
    assert_eq!(e.payload.amount.to_string(), "1");
    let extra: Vec<_> = e.payload.extra.iter().map(|(k, v)| (k, v.get())).collect();
    assert_eq!(extra, [("contact_id", "\"b\""), ("Amount", "\"junk\"")]);
    // The second eventType goes to extra too.
    let json = r#"{"eventType": "x.y", "event_type": "z", "payload": {}}"#;
    let event = parse(json);
    assert_eq!(event.event_type().as_str(), "x.y");
}

/// Found by fuzzing: repeats of a field that was `null` or `""` survive a round
/// trip (the first value wins, and a `null` or `""` does not count as one).
#[test]
fn rule_4_repeats_of_absent_fields_survive_a_round_trip() {
    for json in [
        r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 1, "contactId": "c", "description": "", "description": "x"}}"#,
        r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 1, "contactId": "c", "reason": null, "Reason": "x"}}"#,
        r#"{"eventType": "contact.acceptsSms.changed", "payload": {"contactId": "c", "value": null, "acceptsSms": true}}"#,
        r#"{"eventType": "x.y", "tenant": null, "tenant": "t", "payload": {}}"#,
    ] {
        let event = parse(json);
        let written = serde_json::to_string(&event).unwrap();
        assert_eq!(parse(&written), event, "{json}\n{written}");
        assert_eq!(serde_json::to_string(&parse(&written)).unwrap(), written);
    }
    let EventEnvelope::ContactAcceptsSmsChanged(e) = parse(
        r#"{"eventType": "contact.acceptsSms.changed", "payload": {"contactId": "c", "value": null, "acceptsSms": true}}"#,
    ) else {
        panic!()
    };
    assert_eq!(
        e.payload.accepts,
        Some(true),
        "a null does not take the place of a later alias"
    );
    assert!(e.payload.extra.is_empty());
}

fn balance(value: &str) -> Result<String, ParseError> {
    let json = format!(
        r#"{{"eventType": "point.balance.updated", "payload": {{"contactId": "c", "balance": {value}}}}}"#
    );
    match EventEnvelope::from_slice(json.as_bytes())? {
        EventEnvelope::PointBalanceUpdated(e) => Ok(e.payload.balance.to_string()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rule_5_decimals_are_exact() {
    let cases = [
        ("100.10", "100.10"),
        ("\"100.10\"", "100.10"),
        ("250.0000", "250.0000"),
        ("19.5", "19.5"),
        ("122", "122"),
        ("-0.01", "-0.01"),
        ("\" 42.00 \"", "42.00"),
        ("1.5e2", "150"),
        ("1E-2", "0.01"),
        ("0.1", "0.1"),
        // f64 can hold neither of these.
        ("9007199254740993", "9007199254740993"),
        ("1234567890123456.789012345678", "1234567890123456.789012345678"),
        ("79228162514264337593543950335", "79228162514264337593543950335"),
        ("0.0000000000000000000000000001", "0.0000000000000000000000000001"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            balance(input).as_deref().map_err(ToString::to_string),
            Ok(expected),
            "{input}"
        );
    }
}

#[test]
fn rule_5_a_decimal_that_would_be_rounded_is_an_error() {
    for input in [
        "1.23456789012345678901234567890",
        "79228162514264337593543950336",
        "1e100",
        "\"12,50\"",
        "\"1_000\"",
        "\"NaN\"",
        "\"\"",
        "true",
        "{}",
    ] {
        let error = balance(input).unwrap_err();
        assert_eq!(error.path(), Some("payload.balance"), "{input}");
        assert!(
            matches!(
                error.kind(),
                ParseErrorKind::InvalidValue {
                    expected: "a decimal number",
                    ..
                }
            ),
            "{input}: {error}"
        );
    }
}

#[test]
fn rule_6_integers_strings_and_booleans_take_each_others_forms() {
    let points = |id: &str| {
        let json = format!(
            r#"{{"eventType": "loyalty.addPoints", "isEncrypted": "false", "payload": {{"amount": 1, "contactId": 7, "pointDefinitionId": {id}}}}}"#
        );
        match EventEnvelope::from_slice(json.as_bytes()) {
            Ok(EventEnvelope::LoyaltyAddPoints(e)) => {
                assert_eq!(e.payload.contact_id, "7");
                Ok(e.payload.point_definition_id)
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        }
    };
    assert_eq!(points("42"), Ok(Some(42)));
    assert_eq!(points("\"42\""), Ok(Some(42)));
    assert_eq!(points("42.0"), Ok(Some(42)));
    assert_eq!(points("-3"), Ok(Some(-3)));
    assert_eq!(points("\"\""), Ok(None));
    assert!(points("42.5").is_err());
    assert!(points("\"forty\"").is_err());
    assert!(
        points("9223372036854775808")
            .unwrap_err()
            .contains("payload.pointDefinitionId")
    );

    for (value, expected) in [
        ("true", true),
        ("\"true\"", true),
        ("\"false\"", false),
        ("false", false),
        ("null", false),
    ] {
        let json = format!(r#"{{"eventType": "x.y", "isEncrypted": {value}, "payload": "abc"}}"#);
        assert_eq!(parse(&json).is_encrypted(), expected, "{value}");
    }
    let error = fail(r#"{"eventType": "x.y", "isEncrypted": "yes", "payload": {}}"#);
    assert_eq!(error.path(), Some("isEncrypted"));
}

#[test]
fn rule_6_a_number_in_a_string_field_is_kept_as_its_exact_text() {
    let definition = |value: &str| {
        let json = format!(
            r#"{{"eventType": "point.balance.updated", "id": 12, "payload": {{"balance": 1, "contactId": "c", "definitionId": {value}}}}}"#
        );
        match parse(&json) {
            EventEnvelope::PointBalanceUpdated(e) => {
                assert_eq!(e.id.as_deref(), Some("12"));
                e.payload.definition_id
            }
            other => panic!("{other:?}"),
        }
    };
    // serde_json would hand these over as the float 1.5, -0.0 and 1e21.
    for text in ["7", "-7", "1.50", "-0", "1E+21", "18446744073709551616"] {
        assert_eq!(definition(text).as_deref(), Some(text));
    }
    assert_eq!(definition(r#""a\u00e9""#).as_deref(), Some("aé"));
}

#[test]
fn rule_7_timestamps_in_every_form_keep_their_offset() {
    let expires = |value: &str| {
        let json = format!(
            r#"{{"eventType": "point.balance.updated", "payload": {{"contactId": "c", "balance": 1, "balanceExpires": "{value}"}}}}"#
        );
        match EventEnvelope::from_slice(json.as_bytes()) {
            Ok(EventEnvelope::PointBalanceUpdated(e)) => e
                .payload
                .balance_expires
                .map(|t| (t.unix_timestamp_nanos(), t.offset().whole_seconds())),
            other => panic!("{value}: {other:?}"),
        }
    };
    let base = 1_715_595_153_000_000_000_i128; // 2024-05-13T10:12:33Z
    assert_eq!(expires("2024-05-13T10:12:33Z"), Some((base, 0)));
    assert_eq!(expires("2024-05-13t10:12:33z"), Some((base, 0)));
    assert_eq!(expires("2024-05-13 10:12:33"), Some((base, 0)));
    assert_eq!(expires("2024-05-13T12:12:33+02:00"), Some((base, 7200)));
    assert_eq!(expires("2024-05-13T12:12:33+0200"), Some((base, 7200)));
    assert_eq!(expires("2024-05-13T12:12:33+02"), Some((base, 7200)));
    assert_eq!(expires("2024-05-13T04:42:33-05:30"), Some((base, -19800)));
    assert_eq!(
        expires("2024-05-13T10:12:33.1234567Z"),
        Some((base + 123_456_700, 0))
    );
    assert_eq!(
        expires("2024-05-13T10:12:33.123456789987Z"),
        Some((base + 123_456_789, 0))
    );
    assert_eq!(expires(""), None);
    let error = fail(
        r#"{"eventId": "e-9", "eventType": "reward.voucher.created",
            "payload": {"Amount": 1, "ContactId": "c", "Id": "v", "UniqueCode": "U", "ValidTo": "2024-13-01T00:00:00Z"}}"#,
    );
    assert_eq!(
        error.to_string(),
        r#"reward.voucher.created event "e-9": payload.ValidTo: expected an ISO 8601 timestamp, found "2024-13-01T00:00:00Z""#
    );
}

#[test]
fn rule_8_optional_fields_may_be_missing_null_or_empty() {
    for value in [None, Some("null"), Some("\"\"")] {
        let fields = [
            "source",
            "description",
            "userId",
            "userName",
            "reason",
            "sourceId",
            "pointDefinitionId",
        ];
        let optional: Vec<String> = match value {
            None => Vec::new(),
            Some(v) => fields.iter().map(|f| format!(r#", "{f}": {v}"#)).collect(),
        };
        let json = format!(
            r#"{{"eventType": "loyalty.addPoints", "payload": {{"amount": 1, "contactId": "c"{}}}}}"#,
            optional.concat()
        );
        let EventEnvelope::LoyaltyAddPoints(e) = parse(&json) else {
            panic!()
        };
        let p = &e.payload;
        assert_eq!(
            (
                &p.source,
                &p.description,
                &p.user_id,
                &p.user_name,
                &p.reason,
                &p.source_id,
                p.point_definition_id
            ),
            (&None, &None, &None, &None, &None, &None, None),
            "{json}"
        );
        assert!(p.extra.is_empty());
    }
}

#[test]
fn rule_8_a_required_field_missing_null_or_malformed_is_named() {
    let cases = [
        (
            r#"{"amount": 1}"#,
            "payload.contactId",
            "required field is missing",
        ),
        (
            r#"{"amount": 1, "contactId": null}"#,
            "payload.contactId",
            "expected a string, found null",
        ),
        (r#"{"amount": 1, "contactId": ""}"#, "payload.contactId", ""),
        (
            r#"{"contactId": "c"}"#,
            "payload.amount",
            "required field is missing",
        ),
        (
            r#"{"contactId": "c", "AMOUNT": [1]}"#,
            "payload.AMOUNT",
            "expected a decimal number, found [1]",
        ),
        (
            r#"{"contactId": "c", "amount": 1, "userId": {}}"#,
            "payload.userId",
            "expected a string, found {}",
        ),
    ];
    for (payload, path, message) in cases {
        let json = format!(r#"{{"eventType": "loyalty.addPoints", "id": "e-5", "payload": {payload}}}"#);
        match EventEnvelope::from_slice(json.as_bytes()) {
            // An empty required string is a string: accepted, as sent.
            Ok(EventEnvelope::LoyaltyAddPoints(e)) if message.is_empty() => {
                assert_eq!(e.payload.contact_id, "")
            }
            Ok(other) => panic!("{payload}: {other:?}"),
            Err(error) => {
                assert_eq!(error.path(), Some(path), "{payload}");
                assert_eq!(error.event_type(), Some(&EventType::LoyaltyAddPoints));
                assert_eq!(error.event_id(), Some("e-5"));
                assert_eq!(
                    error.to_string(),
                    format!("loyalty.addPoints event \"e-5\": {path}: {message}")
                );
            }
        }
    }
    let error = fail(r#"{"id": "e-6", "payload": {}}"#);
    assert_eq!(error.path(), Some("eventType"));
    assert_eq!(error.kind(), &ParseErrorKind::MissingField);
    assert_eq!(error.event_id(), Some("e-6"));
    let error = fail(r#"{"eventType": "loyalty.addPoints"}"#);
    assert_eq!(
        (error.path(), error.kind()),
        (Some("payload"), &ParseErrorKind::MissingField)
    );
}

#[test]
fn errors_name_the_event_even_when_its_id_comes_later() {
    let error = fail(r#"{"eventType": "loyalty.addPoints", "payload": {"contactId": "c"}, "id": "late"}"#);
    assert_eq!(error.event_id(), Some("late"));
    let error = fail(r#"{"isEncrypted": 3, "eventType": "loyalty.addPoints", "id": "later"}"#);
    assert_eq!(error.path(), Some("isEncrypted"));
    assert_eq!(error.event_type(), Some(&EventType::LoyaltyAddPoints));
    assert_eq!(error.event_id(), Some("later"));
}
