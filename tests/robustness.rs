//! Hostile input, generated: random bytes, token soup, structure-aware mutations
//! of every fixture, extreme decimals and timestamps, deep nesting, long strings,
//! invalid UTF-8 and repeated keys. The properties hold for every case: no panic;
//! an error is one line naming a field or a position; a parsed event survives a
//! serialize/parse round trip; decimals keep every digit and their scale; a
//! timestamp keeps its instant and offset; and typed fields equal what a strict
//! reference parse of the same JSON reads.
//!
//! Each property runs 2,048 cases (`cases` below).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use common::mutate::{self, assert_explains, assert_round_trips};
use common::strict;
use proptest::prelude::*;
use voyado_webhooks::{Decimal, EventEnvelope, OffsetDateTime, ParseErrorKind};

/// Parses `body`: an event that round-trips, or an error that explains itself.
/// Either way the generic `Deserialize` (which reads every value from its text,
/// with no fast path) must agree with `from_slice`.
fn parse_checked(body: &[u8]) -> Option<EventEnvelope> {
    let exact = serde_json::from_slice::<EventEnvelope>(body).ok();
    match EventEnvelope::from_slice(body) {
        Ok(event) => {
            assert_round_trips(&event);
            assert_eq!(exact.as_ref(), Some(&event), "the exact reading differs");
            Some(event)
        }
        Err(error) => {
            assert_explains(&error);
            // The generic reader does not check the whole body's UTF-8 first,
            // and measures a kept value's nesting from that value.
            let too_deep = matches!(error.kind(), ParseErrorKind::TooDeep { .. });
            if std::str::from_utf8(body).is_ok() && !too_deep && exact.is_some() {
                panic!("from_slice refused what the exact reading read: {error}");
            }
            None
        }
    }
}

fn fixtures() -> Vec<String> {
    common::all_fixture_names()
        .iter()
        .map(|name| String::from_utf8(common::fixture(name)).unwrap())
        .collect()
}

/// A `loyalty.addPoints` delivery with `amount` written as `amount`.
fn add_points(amount: &str) -> String {
    format!(r#"{{"eventType":"loyalty.addPoints","id":"e","payload":{{"amount":{amount},"contactId":"c"}}}}"#)
}

fn amount_of(body: &str) -> Result<Decimal, voyado_webhooks::ParseError> {
    match EventEnvelope::from_slice(body.as_bytes())? {
        EventEnvelope::LoyaltyAddPoints(event) => Ok(event.payload.amount),
        other => panic!("{other:?}"),
    }
}

/// Every cut of every fixture, and every byte position replaced by a character
/// that breaks JSON or UTF-8: never a panic, and each error explains itself.
#[test]
fn every_truncation_and_byte_flip_of_every_fixture() {
    let replacements: &[&[u8]] = &[
        b"", b"\"", b"{", b"}", b"[", b"0", b"-", b".", b"e", b"\\", b"\xff", b"\xc3", b"null", b"\"\"",
    ];
    let (mut parsed, mut failed) = (0usize, 0usize);
    for name in common::all_fixture_names() {
        let original = common::fixture(&name);
        for at in 0..original.len() {
            for replacement in replacements {
                let mut body = original[..at].to_vec();
                body.extend_from_slice(replacement);
                body.extend_from_slice(&original[at + 1..]);
                match parse_checked(&body) {
                    Some(_) => parsed += 1,
                    None => failed += 1,
                }
            }
            // Cut before the closing brace: never valid.
            let cut = parse_checked(&original[..at]);
            assert!(
                cut.is_none() || !original[at..].contains(&b'}'),
                "{name} cut at {at}"
            );
        }
    }
    assert!(parsed > 1000 && failed > 1000, "parsed {parsed}, failed {failed}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any bytes at all.
    #[test]
    fn random_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_checked(&body);
    }

    /// JSON-like token soup, which reaches far deeper than random bytes.
    #[test]
    fn token_soup(tokens in proptest::collection::vec(prop::sample::select(TOKENS), 0..64)) {
        parse_checked(tokens.concat().as_bytes());
    }

    /// Structure-aware mutations of every fixture (see `common/mutate.rs`):
    /// meaning-keeping ones must parse to the same event.
    #[test]
    fn mutated_fixtures(pick in any::<prop::sample::Index>(), choices in proptest::collection::vec(any::<u8>(), 0..48)) {
        let fixtures = fixtures();
        let fixture = pick.get(&fixtures);
        let mutated = mutate::Fixture::new(fixture).unwrap().mutate(&choices);
        mutate::check(&mutated);
    }

    /// Any decimal text, as a number or a string, with or without an exponent:
    /// exact to the digit and the scale when a `Decimal` holds it, and an error
    /// naming the field (never a rounding) when it does not.
    #[test]
    fn decimals_keep_every_digit_and_their_scale(
        negative in any::<bool>(),
        int in "0|[1-9][0-9]{0,39}",
        frac in proptest::option::of("[0-9]{1,40}"),
        exponent in proptest::option::of(-40i32..40),
        quoted in any::<bool>(),
    ) {
        let mut text = format!("{}{int}", if negative { "-" } else { "" });
        if let Some(frac) = &frac {
            text = format!("{text}.{frac}");
        }
        if let Some(exponent) = exponent {
            text = format!("{text}e{exponent}");
        }
        // The exact value as digits and a scale, computed on the text.
        let frac = frac.unwrap_or_default();
        let mut digits = format!("{int}{frac}");
        let mut scale = frac.len() as i64 - i64::from(exponent.unwrap_or(0));
        if scale < 0 {
            digits.push_str(&"0".repeat((-scale) as usize));
            scale = 0;
        }
        let digits = digits.trim_start_matches('0');
        let fits = scale <= 28 && (digits.len() < 29 || (digits.len() == 29 && digits <= "79228162514264337593543950335"));

        let body = add_points(&if quoted { format!("\"{text}\"") } else { text.clone() });
        match amount_of(&body) {
            Ok(amount) => {
                prop_assert!(fits, "{text} was accepted as {amount}");
                prop_assert_eq!(amount.scale() as i64, scale, "{}", text);
                prop_assert_eq!(amount.mantissa().unsigned_abs().to_string(), if digits.is_empty() { "0" } else { digits });
                prop_assert_eq!(amount.is_sign_negative(), negative, "the sign, even of zero");
                assert_round_trips(&EventEnvelope::from_slice(body.as_bytes()).unwrap());
            }
            Err(error) => {
                prop_assert!(!fits, "{} was refused: {}", text, error);
                prop_assert_eq!(error.path(), Some("payload.amount"));
                assert_explains(&error);
            }
        }
    }

    /// Any instant with any offset, in any accepted form: the same instant and
    /// the same offset come back.
    #[test]
    fn timestamps_keep_instant_and_offset(
        unix in -62_135_596_800i64..253_402_300_799,
        nanos in 0u32..1_000_000_000,
        precision in 0usize..12,
        offset_minutes in -(23 * 60 + 59)..=(23i32 * 60 + 59),
        separator in prop::sample::select(&["T", "t", " "][..]),
        offset_form in 0usize..4,
    ) {
        let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
        let instant = OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let Some(local) = instant.checked_to_offset(offset) else {
            return Ok(()); // outside the years a timestamp can have
        };
        let local = local.replace_nanosecond(nanos).unwrap();
        let fraction = format!("{nanos:09}{}", "7".repeat(3));
        let fraction = match precision {
            0 => String::new(),
            p => format!(".{}", &fraction[..p]),
        };
        let kept_nanos = fraction.get(1..).map_or(0, |f| format!("{:0<9}", &f[..f.len().min(9)]).parse().unwrap());
        let (h, m) = (offset_minutes.abs() / 60, offset_minutes.abs() % 60);
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let offset_text = match offset_form {
            0 if offset_minutes == 0 => "Z".to_owned(),
            1 => format!("{sign}{h:02}{m:02}"),
            2 if m == 0 => format!("{sign}{h:02}"),
            3 if offset_minutes == 0 => String::new(),
            _ => format!("{sign}{h:02}:{m:02}"),
        };
        let text = format!(
            "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}{fraction}{offset_text}",
            local.year(), local.month() as u8, local.day(), local.hour(), local.minute(), local.second()
        );
        let body = format!(r#"{{"eventType":"point.balance.updated","id":"e","payload":{{"balance":1,"contactId":"c","balanceExpires":"{text}"}}}}"#);
        let event = parse_checked(body.as_bytes());
        let Some(EventEnvelope::PointBalanceUpdated(event)) = event else {
            panic!("{text} was refused");
        };
        let expires = event.payload.balance_expires.unwrap();
        prop_assert_eq!(expires.offset(), offset, "{}", text);
        prop_assert_eq!(expires, local.replace_nanosecond(kept_nanos).unwrap(), "{}", text);
    }

    /// Deep nesting anywhere: accepted up to 128 levels in all (the envelope and
    /// a typed payload count), refused past them.
    #[test]
    fn nesting_at_any_depth(depth in 0usize..400, at in 0usize..3) {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let (body, levels_around) = match at {
            0 => (format!(r#"{{"eventType":"x.y","payload":{nested}}}"#), 1),
            1 => (format!(r#"{{"eventType":"x.y","payload":{{}},"more":{nested}}}"#), 1),
            _ => (format!(r#"{{"eventType":"loyalty.addPoints","payload":{{"amount":1,"contactId":"c","more":{nested}}}}}"#), 2),
        };
        let parsed = parse_checked(body.as_bytes()).is_some();
        prop_assert_eq!(parsed, depth + levels_around <= EventEnvelope::MAX_DEPTH, "{} levels", depth);
    }

    /// Long strings and odd characters are kept exactly, wherever they are.
    #[test]
    fn long_strings_are_kept_exactly(text in "(\\PC|\\\\n|\\\\\"){1,64}", repeat in 1usize..500) {
        let value = text.repeat(repeat);
        let json = serde_json::to_string(&value).unwrap();
        let body = format!(r#"{{"eventType":"loyalty.addPoints","tenant":{json},"payload":{{"amount":1,"contactId":{json},"note":{json}}}}}"#);
        let Some(EventEnvelope::LoyaltyAddPoints(event)) = parse_checked(body.as_bytes()) else {
            panic!("refused");
        };
        let tenant = event.tenant.as_deref().unwrap_or("");
        prop_assert_eq!(tenant, value.as_str());
        prop_assert_eq!(&event.payload.contact_id, &value);
        prop_assert_eq!(event.payload.extra.get("note").unwrap().get(), json.as_str());
    }

    /// A byte that is not UTF-8 anywhere in a fixture is a syntax error with its
    /// position.
    #[test]
    fn invalid_utf8_anywhere(pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), byte in 0x80u8..=0xff) {
        let names = common::all_fixture_names();
        let mut body = common::fixture(pick.get(&names).as_str());
        let at = at.index(body.len());
        body.insert(at, byte);
        prop_assume!(std::str::from_utf8(&body).is_err());
        let error = EventEnvelope::from_slice(&body).unwrap_err();
        assert_explains(&error);
        prop_assert!(matches!(error.kind(), ParseErrorKind::Syntax { .. }), "{}", error);
    }

    /// A field repeated under any spelling: the first value that is not `null`
    /// or `""` is the field, every later one is kept in `extra`.
    #[test]
    fn repeated_keys(values in proptest::collection::vec(prop::sample::select(&["null", "\"\"", "\"a\"", "\"b\"", "7"][..]), 1..6), casing in proptest::collection::vec(0usize..4, 6)) {
        let names = ["source", "Source", "SOURCE", "so_urce"];
        let members: Vec<String> = values.iter().zip(&casing).map(|(v, &c)| format!(r#""{}":{v}"#, names[c])).collect();
        let body = format!(r#"{{"eventType":"loyalty.addPoints","payload":{{"amount":1,"contactId":"c",{}}}}}"#, members.join(","));
        let Some(EventEnvelope::LoyaltyAddPoints(event)) = parse_checked(body.as_bytes()) else {
            panic!("refused");
        };
        let first = values.iter().position(|v| !matches!(*v, "null" | "\"\""));
        let expected = first.map(|i| values[i].trim_matches('"').to_owned());
        prop_assert_eq!(event.payload.source, expected);
        let kept = first.map_or(0, |i| values.len() - i - 1);
        prop_assert_eq!(event.payload.extra.len(), kept);
    }

    /// Differential: a valid delivery in the documented form reads the same
    /// through the crate as through the strict reference derive.
    #[test]
    fn typed_fields_equal_a_strict_parse(
        id in "[a-f0-9-]{1,36}",
        contact in "[a-zA-Z0-9 åäö-]{1,40}",
        text in proptest::option::of("[a-zA-Z0-9 .,éü\"\\\\/]{1,30}"),
        amount in -999_999_999_999_999i64..999_999_999_999_999,
        scale in 0u32..15,
        number in proptest::option::of(any::<i64>()),
        when in proptest::option::of((0i64..253_402_300_799, 0u32..1_000_000_000, -1439i32..1439)),
        accepts in proptest::option::of(any::<bool>()),
    ) {
        let amount = Decimal::new(amount, scale);
        let json = |s: &str| serde_json::to_string(s).unwrap();
        let when = when.and_then(|(unix, nanos, minutes)| {
            let offset = time::UtcOffset::from_whole_seconds(minutes * 60).ok()?;
            let local = OffsetDateTime::from_unix_timestamp(unix).ok()?.checked_to_offset(offset)?;
            local.replace_nanosecond(nanos).ok()
        });
        let when_json = when.map(|t| json(&t.format(&time::format_description::well_known::Rfc3339).unwrap()));
        let optional = |name: &str, value: Option<String>| value.map(|v| format!(r#","{name}":{v}"#)).unwrap_or_default();
        let envelope = |event_type: &str, payload: String| format!(
            r#"{{"eventType":"{event_type}","id":{},"isEncrypted":false,"payload":{payload},"tenant":"t"}}"#, json(&id)
        );

        let body = envelope("contact.acceptsEmail.changed", format!(
            r#"{{"contactId":{}{}}}"#, json(&contact), optional("acceptsEmail", accepts.map(|b| b.to_string()))
        ));
        let reference: strict::Strict<strict::StrictPreference> = serde_json::from_str(&body).unwrap();
        let Some(EventEnvelope::ContactAcceptsEmailChanged(ours)) = parse_checked(body.as_bytes()) else { panic!() };
        prop_assert_eq!(ours.id.as_deref(), Some(reference.id.as_str()));
        prop_assert_eq!(&ours.payload.contact_id, &reference.payload.contact_id);
        prop_assert_eq!(ours.payload.accepts, reference.payload.accepts_email);

        let body = envelope("loyalty.addPoints", format!(
            r#"{{"amount":{amount},"contactId":{}{}{}}}"#, json(&contact),
            optional("pointDefinitionId", number.map(|n| n.to_string())), optional("description", text.as_deref().map(json))
        ));
        let reference: strict::Strict<strict::StrictLoyaltyAddPoints> = serde_json::from_str(&body).unwrap();
        let Some(EventEnvelope::LoyaltyAddPoints(ours)) = parse_checked(body.as_bytes()) else { panic!() };
        prop_assert_eq!(ours.payload.amount, reference.payload.amount);
        prop_assert_eq!(ours.payload.amount.to_string(), amount.to_string(), "the scale too");
        prop_assert_eq!(ours.payload.point_definition_id, reference.payload.point_definition_id);
        prop_assert_eq!(ours.payload.description, reference.payload.description);
        prop_assert_eq!(ours.tenant, Some(reference.tenant));

        let body = envelope("point.balance.updated", format!(
            r#"{{"balance":{amount},"contactId":{}{}{}}}"#, json(&contact),
            optional("definitionId", text.as_deref().map(json)), optional("balanceExpires", when_json.clone())
        ));
        let reference: strict::Strict<strict::StrictPointBalanceUpdated> = serde_json::from_str(&body).unwrap();
        let Some(EventEnvelope::PointBalanceUpdated(ours)) = parse_checked(body.as_bytes()) else { panic!() };
        prop_assert_eq!(ours.payload.balance, reference.payload.balance);
        prop_assert_eq!(ours.payload.definition_id, reference.payload.definition_id);
        prop_assert_eq!(ours.payload.balance_expires, reference.payload.balance_expires);
        prop_assert_eq!(ours.payload.balance_expires.map(|t| t.offset()), reference.payload.balance_expires.map(|t| t.offset()));

        let body = format!(
            r#"{{"eventId":{},"eventType":"reward.voucher.created","isEncrypted":false,"payload":{{"Amount":{amount},"ContactId":{},"Id":{},"UniqueCode":{}{}}},"tenant":"t"}}"#,
            json(&id), json(&contact), json(&id), json(&contact), optional("ValidTo", when_json)
        );
        let reference: strict::StrictEventId<strict::StrictRewardVoucherCreated> = serde_json::from_str(&body).unwrap();
        let Some(EventEnvelope::RewardVoucherCreated(ours)) = parse_checked(body.as_bytes()) else { panic!() };
        prop_assert_eq!(ours.id, Some(reference.event_id));
        prop_assert_eq!(ours.payload.amount, reference.payload.amount);
        prop_assert_eq!(&ours.payload.unique_code, &reference.payload.unique_code);
        prop_assert_eq!(ours.payload.valid_to, reference.payload.valid_to);
        prop_assert_eq!(ours.payload.valid_to.map(|t| t.offset()), reference.payload.valid_to.map(|t| t.offset()));
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\"eventType\"",
    "\"eventId\"",
    "\"id\"",
    "\"payload\"",
    "\"isEncrypted\"",
    "\"tenant\"",
    "\"loyalty.addPoints\"",
    "\"point.balance.updated\"",
    "\"reward.voucher.created\"",
    "\"contact.acceptsSms.changed\"",
    "\"x.y\"",
    "\"amount\"",
    "\"Amount\"",
    "\"balance\"",
    "\"contactId\"",
    "\"ContactId\"",
    "\"Id\"",
    "\"UniqueCode\"",
    "\"ValidTo\"",
    "\"balanceExpires\"",
    "\"accepts\"",
    "\"2024-05-13T10:12:33.1234567+02:00\"",
    "\"2024-13-01T00:00:00Z\"",
    "1",
    "-0",
    "100.10",
    "1e400",
    "79228162514264337593543950336",
    "9223372036854775808",
    "\"12.5\"",
    "true",
    "\"false\"",
    "null",
    "\"\"",
    " ",
    "\n",
    "\\u0000",
    "\\",
    "\u{e9}",
    "\u{1F600}",
];

/// Limits, as documented in the crate's "Limits" section.
#[test]
fn documented_limits() {
    // The largest decimal: 2^96 - 1, at any scale up to 28.
    assert_eq!(
        amount_of(&add_points("79228162514264337593543950335")).unwrap(),
        Decimal::MAX
    );
    assert_eq!(
        amount_of(&add_points("-79228162514264337593543950335")).unwrap(),
        Decimal::MIN
    );
    assert_eq!(
        amount_of(&add_points("7.9228162514264337593543950335"))
            .unwrap()
            .scale(),
        28
    );
    for over in [
        "79228162514264337593543950336",
        "0.00000000000000000000000000001",
        "1.00000000000000000000000000000",
        "1e29",
        "1e-29",
    ] {
        let error = amount_of(&add_points(over)).unwrap_err();
        assert_eq!(error.path(), Some("payload.amount"), "{over}");
        assert!(
            matches!(error.kind(), ParseErrorKind::InvalidValue { .. }),
            "{over}"
        );
    }

    // Integers are i64.
    let points = |id: &str| {
        let body = format!(
            r#"{{"eventType":"loyalty.addPoints","payload":{{"amount":1,"contactId":"c","pointDefinitionId":{id}}}}}"#
        );
        match EventEnvelope::from_slice(body.as_bytes()) {
            Ok(EventEnvelope::LoyaltyAddPoints(event)) => Ok(event.payload.point_definition_id),
            Ok(other) => panic!("{other:?}"),
            Err(error) => Err(error),
        }
    };
    assert_eq!(points("9223372036854775807").unwrap(), Some(i64::MAX));
    assert_eq!(points("-9223372036854775808").unwrap(), Some(i64::MIN));
    for over in [
        "9223372036854775808",
        "-9223372036854775809",
        "1e19",
        "\"9223372036854775808\"",
        "1.5",
    ] {
        let error = points(over).unwrap_err();
        assert_eq!(error.path(), Some("payload.pointDefinitionId"), "{over}");
    }

    // Timestamps: years 0000 to 9999, offsets within ±23:59, real dates only.
    let expires = |at: &str| {
        let body = format!(
            r#"{{"eventType":"point.balance.updated","payload":{{"balance":1,"contactId":"c","balanceExpires":"{at}"}}}}"#
        );
        EventEnvelope::from_slice(body.as_bytes()).map(|_| ())
    };
    for ok in [
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999-23:59",
        "2024-02-29T00:00:00Z",
    ] {
        assert!(expires(ok).is_ok(), "{ok}");
    }
    for out in [
        "10000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
    ] {
        let error = expires(out).err().unwrap_or_else(|| panic!("{out} was accepted"));
        assert_eq!(error.path(), Some("payload.balanceExpires"), "{out}");
        assert_explains(&error);
    }
}

/// Display never spreads over lines, even for names and values that hold line
/// breaks.
#[test]
fn errors_stay_on_one_line() {
    for body in [
        "[1,\n2]",
        "{\"eventType\":\"a\\nb\",\"id\":\"x\\ny\",\"payload\":{},\"extra\":[1,\n2],\"deep\":",
        "{\"eventType\":\"loyalty.addPoints\",\"payload\":{\"amount\":[1,\n2],\"contactId\":\"c\"}}",
        "{\"eventType\":\"loyalty.addPoints\",\"payload\":{\"amount\":1}}",
        "{\"eventType\":\"loyalty.\\r\\naddPoints\",\"payload\":{\"a\\nb\":[[[[]]]]},\"tenant\":7,\"isEncrypted\":[\n]}",
    ] {
        let error = EventEnvelope::from_slice(body.as_bytes()).unwrap_err();
        assert_explains(&error);
    }
}
