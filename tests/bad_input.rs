//! Rule 9: any bad input is a `ParseError`, never a panic.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use voyado_webhooks::{EventEnvelope, EventType, ParseError, ParseErrorKind};

fn fail(body: &[u8]) -> ParseError {
    match EventEnvelope::from_slice(body) {
        Ok(event) => panic!("parsed {:?}: {event:?}", String::from_utf8_lossy(body)),
        Err(error) => error,
    }
}

fn syntax_position(error: &ParseError) -> (usize, usize) {
    match error.kind() {
        ParseErrorKind::Syntax { line, column, .. } => (*line, *column),
        other => panic!("not a syntax error: {other:?} ({error})"),
    }
}

#[test]
fn malformed_json_reports_line_and_column() {
    let error = fail(b"{\n  \"eventType\": \"loyalty.addPoints\",\n  \"payload\": {\"amount\": 1,}\n}");
    assert_eq!(syntax_position(&error), (3, 27));
    assert!(
        error.to_string().contains("invalid JSON at line 3 column 27"),
        "{error}"
    );
    // The event type was read before the syntax error, so it is named.
    assert_eq!(error.event_type(), Some(&EventType::LoyaltyAddPoints));

    for body in [
        &b""[..],
        b"   ",
        b"{",
        b"{\"eventType\": ",
        b"{\"eventType\": \"x\"",
        b"{\"eventType\": \"x\", \"payload\": {}} trailing",
        b"{\"eventType\": \"x\", \"payload\": {}}}",
        b"{'eventType': 'x'}",
        b"{\"eventType\": \"x\", \"payload\": {\"a\": 01}}",
        b"{\"eventType\": \"x\", \"payload\": {\"a\": NaN}}",
        b"{\"eventType\": \"x\", \"payload\": \"\x01\"}",
    ] {
        let error = fail(body);
        syntax_position(&error);
    }
}

#[test]
fn invalid_utf8_is_a_syntax_error() {
    let error = fail(b"{\"eventType\": \"loyalty.addPoints\", \"payload\": {\"contactId\": \"\xff\xfe\"}}");
    syntax_position(&error);
    let error = fail(b"\xef\xbb\xbf{\"eventType\": \"x\", \"payload\": {}}");
    syntax_position(&error);
}

#[test]
fn a_body_that_is_not_an_object_says_so() {
    for (body, found) in [
        ("[1, 2]", "[1, 2]"),
        ("42", "42"),
        ("\"loyalty.addPoints\"", "\"loyalty.addPoints\""),
        ("null", "null"),
    ] {
        let error = fail(body.as_bytes());
        assert_eq!(
            error.kind(),
            &ParseErrorKind::InvalidValue {
                expected: "a JSON object",
                found: found.into()
            },
            "{body}"
        );
        assert_eq!(error.path(), None);
    }
}

#[test]
fn a_typed_payload_that_is_not_an_object_says_so() {
    for (payload, found) in [
        ("[1]", "an array"),
        ("42", "42"),
        ("null", "null"),
        ("true", "true"),
        ("\"abc\"", "\"abc\""),
    ] {
        for first in [true, false] {
            let json = if first {
                format!(r#"{{"eventType": "point.balance.updated", "id": "e", "payload": {payload}}}"#)
            } else {
                format!(r#"{{"payload": {payload}, "eventType": "point.balance.updated", "id": "e"}}"#)
            };
            let error = fail(json.as_bytes());
            assert_eq!(error.path(), Some("payload"), "{json}");
            assert_eq!(
                error.kind(),
                &ParseErrorKind::InvalidValue {
                    expected: "an object",
                    found: found.into()
                },
                "{json}"
            );
            assert_eq!(error.event_id(), Some("e"));
        }
    }
}

#[test]
fn envelope_fields_of_the_wrong_type() {
    for (json, path) in [
        (r#"{"eventType": 5, "payload": {}}"#, "eventType"),
        (r#"{"eventType": "", "payload": {}}"#, "eventType"),
        (r#"{"eventType": null, "payload": {}}"#, "eventType"),
        (r#"{"eventType": "x", "id": [1], "payload": {}}"#, "id"),
        (r#"{"eventType": "x", "tenant": {}, "payload": {}}"#, "tenant"),
        (
            r#"{"eventType": "x", "is_encrypted": 1, "payload": {}}"#,
            "is_encrypted",
        ),
    ] {
        let error = fail(json.as_bytes());
        assert_eq!(error.path(), Some(path), "{json}");
        assert!(
            matches!(error.kind(), ParseErrorKind::InvalidValue { .. }),
            "{json}"
        );
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let nest = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for depth in [129, 100_000] {
        let nested = nest(depth);
        for (json, path) in [
            (
                format!(r#"{{"eventType": "x.y", "payload": {nested}}}"#),
                "payload",
            ),
            (
                format!(r#"{{"payload": {nested}, "eventType": "x.y"}}"#),
                "payload",
            ),
            (
                format!(r#"{{"eventType": "x.y", "isEncrypted": true, "payload": {nested}}}"#),
                "payload",
            ),
            (
                format!(r#"{{"eventType": "x.y", "payload": {{}}, "extra": {nested}}}"#),
                "extra",
            ),
            (
                format!(
                    r#"{{"eventType": "loyalty.addPoints", "payload": {{"amount": 1, "contactId": "c", "deep": {nested}}}}}"#
                ),
                "payload.deep",
            ),
            (
                format!(r#"{{"payload": {{"deep": {nested}}}, "eventType": "loyalty.addPoints"}}"#),
                "payload.deep",
            ),
        ] {
            let error = fail(json.as_bytes());
            assert_eq!(
                error.kind(),
                &ParseErrorKind::TooDeep { limit: 128 },
                "{path} at {depth}"
            );
            assert_eq!(error.path(), Some(path));
        }
    }
    // 128 levels in all are fine, the envelope included, and serde_json reads
    // back whatever was kept; one more is refused.
    let json = format!(
        r#"{{"eventType": "x.y", "payload": {{"a": 1}}, "extra": {}}}"#,
        nest(127)
    );
    let EventEnvelope::Unknown(event) = EventEnvelope::from_slice(json.as_bytes()).unwrap() else {
        panic!()
    };
    let kept = event.extra.get("extra").unwrap().get();
    assert!(serde_json::from_str::<serde_json::Value>(kept).is_ok());
    let json = format!(
        r#"{{"eventType": "x.y", "payload": {{"a": 1}}, "extra": {}}}"#,
        nest(128)
    );
    let error = fail(json.as_bytes());
    assert_eq!(error.kind(), &ParseErrorKind::TooDeep { limit: 128 });
    assert_eq!(error.path(), Some("extra"));
    // Typed fields are read by serde_json, which has the same limit.
    let json = format!(
        r#"{{"eventType": "loyalty.addPoints", "payload": {{"amount": {}, "contactId": "c"}}}}"#,
        nest(100_000)
    );
    assert!(EventEnvelope::from_slice(json.as_bytes()).is_err());
}

#[test]
fn huge_values_are_errors_or_kept_not_panics() {
    let digits = "9".repeat(10_000);
    let json = format!(
        r#"{{"eventType": "loyalty.addPoints", "payload": {{"amount": {digits}, "contactId": "c"}}}}"#
    );
    let error = fail(json.as_bytes());
    assert_eq!(error.path(), Some("payload.amount"));
    let ParseErrorKind::InvalidValue { found, .. } = error.kind() else {
        panic!()
    };
    assert!(found.len() < 100, "the message quotes a bounded excerpt");

    let json = format!(r#"{{"eventType": "x.y", "payload": {{"n": {digits}e99999}}}}"#);
    let EventEnvelope::Unknown(event) = EventEnvelope::from_slice(json.as_bytes()).unwrap() else {
        panic!()
    };
    assert!(event.payload.get().ends_with("e99999}"), "kept verbatim");

    let exponent = r#"{"eventType": "loyalty.addPoints", "payload": {"amount": 1e99999999999999999999, "contactId": "c"}}"#;
    assert_eq!(fail(exponent.as_bytes()).path(), Some("payload.amount"));
}

/// Every part of a message taken from the body (event type, id, field path,
/// the value found) is bounded: a message stays under 1 KB whatever the body,
/// and still names the field.
#[test]
fn messages_stay_under_1_kb_whatever_the_body() {
    let huge = "x".repeat(1 << 20);
    let separators = "\u{2028}".repeat(1 << 16);
    let underscores = "_".repeat(1_000_000);
    for (body, path) in [
        // A 1 MiB id and a missing field.
        (
            format!(
                r#"{{"eventType": "loyalty.addPoints", "id": "{huge}", "payload": {{"contactId": "c"}}}}"#
            ),
            "payload.amount",
        ),
        // A key that matches `balance` once `_` is ignored, with a bad value.
        (
            format!(
                r#"{{"eventType": "point.balance.updated", "payload": {{"contactId": "c", "balance{underscores}": "{huge}"}}}}"#
            ),
            "payload.balance___",
        ),
        // An unknown event type of 1 MiB with a bad tenant, in line separators.
        (
            format!(r#"{{"eventType": "{huge}", "id": "{separators}", "tenant": [1], "payload": {{}}}}"#),
            "tenant",
        ),
        // A too-deep value under a 64 Ki-character key of separators.
        (
            format!(
                r#"{{"eventType": "x.y", "payload": {{}}, "{separators}": {}}}"#,
                "[".repeat(200)
            ),
            "\u{2028}",
        ),
    ] {
        let error = fail(body.as_bytes());
        let message = error.to_string();
        assert!(message.len() < 1024, "{} bytes: {message}", message.len());
        assert!(
            error.path().is_some_and(|p| p.starts_with(path)),
            "{:?} for {path}",
            error.path()
        );
        assert!(error.event_id().is_none_or(|id| id.len() < 1024));
        common::mutate::assert_explains(&error);
    }
}

/// No character that ends a line, Unicode's own line breaks included, reaches a
/// message unescaped, so no delivery can forge a log line.
#[test]
fn unicode_line_breaks_are_escaped_in_messages() {
    for c in ['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'] {
        // Written as JSON escapes: a raw control character is a syntax error.
        let e = format!("\\u{:04x}", u32::from(c));
        let body =
            format!(r#"{{"eventType": "a{e}b", "id": "i{e}d", "tenant": [], "payload": {{"k{e}": 1}}}}"#);
        let message = fail(body.as_bytes()).to_string();
        assert!(!message.contains(c), "{c:?} in {message}");
        assert!(message.contains(&c.escape_debug().to_string()), "{message}");
        let body = format!(
            r#"{{"eventType": "loyalty.addPoints", "payload": {{"contactId": "c", "amount": "1{e}2"}}}}"#
        );
        let message = fail(body.as_bytes()).to_string();
        assert!(!message.contains(c), "{c:?} in {message}");
    }
}

/// A body nested too deeply is refused where it passes the limit, in memory
/// bounded by the limit rather than the depth (the allocation figures are in
/// `tests/allocations.rs`), and the error names the field however the rest of
/// the body goes on.
#[test]
fn too_deep_values_are_refused_at_the_limit() {
    let open = "[".repeat(10_000_000);
    for body in [
        format!(r#"{{"eventType": "x.y", "payload": {{}}, "deep": {open}"#),
        format!(r#"{{"eventType": "x.y", "payload": {{}}, "deep": {open}]]]"#),
        format!(r#"{{"payload": {{"deep": {{"a": {open}"#),
    ] {
        let error = fail(body.as_bytes());
        assert_eq!(error.kind(), &ParseErrorKind::TooDeep { limit: 128 });
        common::mutate::assert_explains(&error);
    }
    // A syntax error before the depth is reported as such.
    let error = fail(format!(r#"{{"eventType": x, "deep": {open}"#).as_bytes());
    assert!(matches!(error.kind(), ParseErrorKind::Syntax { .. }), "{error}");
}
