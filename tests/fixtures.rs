//! Every bundled fixture parses, with every field checked, and survives a
//! serialize/parse round trip. The fixtures document what the wire looks like.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use time::OffsetDateTime;
use time::macros::datetime;
use voyado_webhooks::{Envelope, EventEnvelope, EventType, Extra, RawPayload};

fn load(name: &str) -> EventEnvelope {
    EventEnvelope::from_slice(&common::fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A decimal's exact text: equality of `Decimal`s ignores trailing zeros.
fn text(d: voyado_webhooks::Decimal) -> String {
    d.to_string()
}

/// An instant and the offset it was sent with: equality of `OffsetDateTime`s
/// ignores the offset.
fn exact(t: Option<OffsetDateTime>) -> Option<(OffsetDateTime, i32)> {
    t.map(|t| (t, t.offset().whole_seconds()))
}

fn assert_head<P>(e: &Envelope<P>, event_type: EventType, id: &str, tenant: Option<&str>, encrypted: bool) {
    assert_eq!(e.event_type, event_type);
    assert_eq!(e.id.as_deref(), Some(id));
    assert_eq!(e.tenant.as_deref(), tenant);
    assert_eq!(e.is_encrypted, encrypted);
}

const CONTACT: &str = "0a3f7c2e-51b4-4d8e-b1a2-8c9d0e1f2a3b";

#[test]
fn contact_accepts_email_changed() {
    let EventEnvelope::ContactAcceptsEmailChanged(e) = load("contact.acceptsEmail.changed.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::ContactAcceptsEmailChanged,
        "5f0c2d3e-7a41-4c1b-9a53-1b2f0e7d9c01",
        Some("nordicoutdoor"),
        false,
    );
    assert_eq!(e.payload.contact_id, CONTACT);
    assert_eq!(e.payload.accepts, Some(true));
    assert!(e.payload.extra.is_empty());
    assert!(e.extra.is_empty());
}

#[test]
fn contact_accepts_sms_changed_reads_value_and_keeps_the_rest() {
    let EventEnvelope::ContactAcceptsSmsChanged(e) = load("contact.acceptsSms.changed.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::ContactAcceptsSmsChanged,
        "6a1d3e4f-8b52-4d2c-ab64-2c3a1f8eac12",
        Some("nordicoutdoor"),
        false,
    );
    assert_eq!(e.payload.contact_id, CONTACT);
    assert_eq!(e.payload.accepts, Some(false));
    let extra: Vec<_> = e.payload.extra.iter().map(|(k, v)| (k, v.get())).collect();
    assert_eq!(extra, [("changedBy", "\"My Pages\"")]);
}

#[test]
fn contact_accepts_postal_changed_in_pascal_case_with_a_string_bool() {
    let EventEnvelope::ContactAcceptsPostalChanged(e) = load("contact.acceptsPostal.changed.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::ContactAcceptsPostalChanged,
        "7b2e4f50-9c63-4e3d-bc75-3d4b2a9fbd23",
        Some("nordicoutdoor"),
        false,
    );
    assert_eq!(e.payload.contact_id, "1b4a8d3f-62c5-4e9f-82b3-9daef1a2b3c4");
    assert_eq!(e.payload.accepts, Some(true));
    assert!(e.payload.extra.is_empty());
}

#[test]
fn loyalty_add_points() {
    let EventEnvelope::LoyaltyAddPoints(e) = load("loyalty.addPoints.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::LoyaltyAddPoints,
        "8c3f5061-ad74-4f4e-8d86-4e5c3bafce34",
        Some("nordicoutdoor"),
        false,
    );
    let p = &e.payload;
    assert_eq!(text(p.amount), "100.10");
    assert_eq!(p.contact_id, CONTACT);
    assert_eq!(p.point_definition_id, Some(1));
    assert_eq!(p.source.as_deref(), Some("Automation"));
    assert_eq!(p.description.as_deref(), Some("Birthday bonus"));
    assert_eq!(p.user_id.as_deref(), Some("7d1c9e2a-0b3f-4a5d-9e8f-1a2b3c4d5e6f"));
    assert_eq!(p.user_name.as_deref(), Some("Anna Lindqvist"));
    assert_eq!(p.reason.as_deref(), Some("Birthday"));
    assert_eq!(p.source_id.as_deref(), Some("AUTO-2024-0513-001"));
    assert!(p.extra.is_empty());
}

#[test]
fn loyalty_add_points_with_numbers_as_strings_nulls_and_empties() {
    let EventEnvelope::LoyaltyAddPoints(e) = load("loyalty.addPoints-numbers-as-strings.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::LoyaltyAddPoints,
        "d184a516-f2c9-4e93-92db-93a18f041389",
        Some("nordicoutdoor"),
        false,
    );
    let p = &e.payload;
    assert_eq!(text(p.amount), "150.00");
    assert_eq!(p.contact_id, "2c5b9e40-73d6-4fa0-93c4-aebf02b3c4d5");
    assert_eq!(p.point_definition_id, Some(42));
    assert_eq!(p.source.as_deref(), Some("POS"));
    assert_eq!(p.description, None, "\"\" is None");
    assert_eq!(p.user_id, None);
    assert_eq!(p.user_name, None);
    assert_eq!(p.reason.as_deref(), Some("Purchase"));
    assert_eq!(
        p.source_id.as_deref(),
        Some("20240513001"),
        "a number kept as its text"
    );
}

#[test]
fn point_balance_updated() {
    let EventEnvelope::PointBalanceUpdated(e) = load("point.balance.updated.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::PointBalanceUpdated,
        "9d406172-be85-4a5f-9e97-5f6d4cb0df45",
        Some("nordicoutdoor"),
        false,
    );
    let p = &e.payload;
    assert_eq!(text(p.balance), "250.0000");
    assert_eq!(p.contact_id, CONTACT);
    assert_eq!(p.account_id, Some(4711));
    assert_eq!(p.definition_id.as_deref(), Some("1"));
    assert_eq!(
        exact(p.balance_expires),
        exact(Some(datetime!(2025-12-31 23:59:59 +01:00)))
    );
    assert!(p.extra.is_empty());
}

#[test]
fn point_balance_updated_with_number_ids_and_nulls() {
    let EventEnvelope::PointBalanceUpdated(e) = load("point.balance.updated-number-ids-and-nulls.json")
    else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::PointBalanceUpdated,
        "e295b627-03da-4fa4-a3ec-a4b29015249a",
        None,
        false,
    );
    let p = &e.payload;
    assert_eq!(text(p.balance), "0");
    assert_eq!(p.contact_id, "3d6caf51-84e7-40b1-a4d5-bfc013c4d5e6");
    assert_eq!(p.account_id, Some(4712), "an integral float");
    assert_eq!(p.definition_id.as_deref(), Some("1"), "a number kept as its text");
    assert_eq!(p.balance_expires, None);
}

#[test]
fn point_balance_updated_with_the_payload_first() {
    let EventEnvelope::PointBalanceUpdated(e) = load("point.balance.updated-payload-first.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::PointBalanceUpdated,
        "f3a6c738-14eb-40b5-b4fd-b5c3a1263a0b",
        Some("nordicoutdoor"),
        false,
    );
    let p = &e.payload;
    assert_eq!(
        text(p.balance),
        "1234567890123456.789012345678",
        "28 significant digits"
    );
    assert_eq!(p.contact_id, "4e7db062-95f8-41c2-b5e6-c0d124d5e6f7");
    assert_eq!(p.account_id, Some(4713));
    assert_eq!(p.definition_id.as_deref(), Some("2"));
    assert_eq!(
        exact(p.balance_expires),
        exact(Some(datetime!(2026-01-31 23:59:59.9999999 UTC)))
    );
}

#[test]
fn point_balance_updated_keeps_extra_fields_and_the_second_id() {
    let EventEnvelope::PointBalanceUpdated(e) = load("point.balance.updated-extra-fields.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::PointBalanceUpdated,
        "37eaab7c-582f-44f9-b8d1-f907e56a7e4f",
        Some("nordicoutdoor"),
        false,
    );
    let envelope_extra: Vec<_> = e.extra.iter().map(|(k, v)| (k, v.get())).collect();
    assert_eq!(
        envelope_extra,
        [
            ("eventId", "\"legacy-37eaab7c\""),
            (
                "traceId",
                "\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\""
            ),
        ]
    );
    let p = &e.payload;
    assert_eq!(text(p.balance), "-12.5");
    assert_eq!(p.contact_id, "71a0e395-c82b-44f5-a8b9-f30457a8b92a");
    assert_eq!(p.account_id, Some(4714));
    assert_eq!(p.definition_id.as_deref(), Some("3"));
    assert_eq!(
        exact(p.balance_expires),
        exact(Some(datetime!(2025-06-30 00:00:00 -05:00)))
    );
    let payload_extra: Vec<_> = p.extra.iter().map(|(k, v)| (k, v.get())).collect();
    assert_eq!(
        payload_extra,
        [
            ("pointDefinitionName", "\"Bonus points\""),
            ("tier", r#"{"level": 2, "name": "Gold", "since": "2023-01-01"}"#),
            ("history", "[1.10, 2.20]"),
        ]
    );
}

#[test]
fn reward_voucher_created() {
    let EventEnvelope::RewardVoucherCreated(e) = load("reward.voucher.created.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::RewardVoucherCreated,
        "ae517283-cf96-4b60-afa8-607e5dc1e056",
        Some("nordicoutdoor"),
        false,
    );
    let p = &e.payload;
    assert_eq!(text(p.amount), "50.00");
    assert_eq!(p.contact_id, CONTACT);
    assert_eq!(p.currency.as_deref(), Some("SEK"));
    assert_eq!(p.id, "c2d4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e5f");
    assert_eq!(p.unique_code, "RV-7Q2M-9XK4");
    assert_eq!(
        exact(p.valid_from),
        exact(Some(datetime!(2024-05-13 00:00:00 +02:00)))
    );
    assert_eq!(
        exact(p.valid_to),
        exact(Some(datetime!(2024-08-13 23:59:59 +02:00)))
    );
    assert!(p.extra.is_empty());
    assert!(e.extra.is_empty());
}

#[test]
fn reward_voucher_created_with_id_and_camel_case() {
    let EventEnvelope::RewardVoucherCreated(e) = load("reward.voucher.created-id-camelcase.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::RewardVoucherCreated,
        "bf628394-d0a7-4c71-b0b9-718f6ed2f167",
        Some("nordicoutdoor"),
        false,
    );
    let p = &e.payload;
    assert_eq!(text(p.amount), "19.5");
    assert_eq!(p.contact_id, "1b4a8d3f-62c5-4e9f-82b3-9daef1a2b3c4");
    assert_eq!(p.currency.as_deref(), Some("EUR"));
    assert_eq!(p.id, "d3e5f709-2b4c-4d6e-9fa0-1b2c3d4e5f60");
    assert_eq!(p.unique_code, "RV-3H8P-2LW7");
    assert_eq!(
        exact(p.valid_from),
        exact(Some(datetime!(2023-02-08 12:15:59.212 UTC)))
    );
    assert_eq!(p.valid_to, None);
}

#[test]
fn reward_voucher_created_in_snake_case_with_7_digit_fractions() {
    let EventEnvelope::RewardVoucherCreated(e) =
        load("reward.voucher.created-snake-case-7-digit-fractions.json")
    else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::RewardVoucherCreated,
        "c0739405-e1b8-4d82-81ca-82907fe30278",
        Some("nordicoutdoor"),
        false,
    );
    let p = &e.payload;
    assert_eq!(text(p.amount), "122");
    assert_eq!(p.contact_id, "2c5b9e40-73d6-4fa0-93c4-aebf02b3c4d5");
    assert_eq!(p.currency.as_deref(), Some("NOK"));
    assert_eq!(p.id, "98765");
    assert_eq!(p.unique_code, "RV-8T5N-4QZ1");
    assert_eq!(
        exact(p.valid_from),
        exact(Some(datetime!(2024-05-13 10:12:33.1234567 +02:00)))
    );
    assert_eq!(
        exact(p.valid_to),
        exact(Some(datetime!(2024-06-13 10:12:33.1234567 UTC)))
    );
}

#[test]
fn contact_created_is_unknown_with_its_payload_verbatim() {
    let EventEnvelope::Unknown(e) = load("contact.created-unknown.json") else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::ContactCreated,
        "04b7d849-25fc-41c6-85ae-c6d4b2374b1c",
        Some("nordicoutdoor"),
        false,
    );
    assert_eq!(
        e.payload.get(),
        r#"{"contactId": "5f8ec173-a609-42d3-86f7-d1e235e6f708", "contactType": "Member", "score": 1.50}"#
    );
}

#[test]
fn a_named_event_without_a_published_payload_keeps_its_payload_and_fields() {
    let event = load("contact.deleted-unknown.json");
    assert_eq!(event.contact_id(), None);
    let EventEnvelope::Unknown(e) = event else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::ContactDeleted,
        "15c8e95a-360d-42d7-96bf-d7e5c3485c2d",
        Some("nordicoutdoor"),
        false,
    );
    assert_eq!(
        e.payload,
        RawPayload::from_json(r#"{"contactId": "60f9d284-b71a-43e4-97a8-e2f346f7a819"}"#).unwrap()
    );
    let mut extra = Extra::new();
    extra.push(
        "deliveredAt",
        serde_json::value::RawValue::from_string("\"2024-05-13T10:12:33Z\"".into()).unwrap(),
    );
    assert_eq!(e.extra, extra);
}

#[test]
fn an_encrypted_event_keeps_its_payload_string() {
    let event = load("encrypted/loyalty.addPoints.json");
    assert!(event.is_encrypted());
    let EventEnvelope::Encrypted(e) = event else {
        panic!("wrong variant")
    };
    assert_head(
        &e,
        EventType::LoyaltyAddPoints,
        "26d9fa6b-471e-43e8-a7c0-e8f6d4596d3e",
        Some("nordicoutdoor"),
        true,
    );
    // Byte for byte the string in the file.
    let file: serde_json::Value =
        serde_json::from_slice(&common::fixture("encrypted/loyalty.addPoints.json")).unwrap();
    assert_eq!(e.payload.get(), file["payload"].to_string());
    assert!(
        e.payload
            .get()
            .starts_with("\"__79_Pv6-fj39vX08_Lx8M6BBNcmna0yRlE")
    );
}

/// Every fixture: the accessors agree with the variant, and writing the event out
/// and reading it back gives the same event, digits, scales and offsets included.
#[test]
fn every_fixture_round_trips() {
    let names = common::all_fixture_names();
    for name in &names {
        let event = load(name);
        let json = serde_json::to_string(&event).unwrap();
        let again =
            EventEnvelope::from_slice(json.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
        assert_eq!(again, event, "{name}");
        // Equality of decimals and timestamps ignores scale and offset: the text does not.
        assert_eq!(serde_json::to_string(&again).unwrap(), json, "{name}");
        // Through serde's generic path too.
        let generic: EventEnvelope = serde_json::from_str(&json).unwrap();
        assert_eq!(generic, event, "{name}");
    }
}

/// `tests/fixtures/README.md` describes every fixture, and every file it
/// describes exists: a fixture is neither lost nor added without a word.
#[test]
fn every_fixture_is_described() {
    let readme = String::from_utf8(common::fixture("README.md")).unwrap();
    let described: Vec<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split_once('`').map(|(name, _)| name))
        .collect();
    for name in common::fixture_names("") {
        assert!(
            described.contains(&name.as_str()),
            "{name} is not in tests/fixtures/README.md"
        );
    }
    assert!(described.contains(&"encrypted/*.json"));
    for name in described.iter().filter(|name| !name.contains('*')) {
        assert!(
            common::fixtures_dir().join(name).is_file(),
            "{name} is described but missing"
        );
    }
}

#[test]
fn serialize_writes_the_documented_wire_form() {
    let value: serde_json::Value =
        serde_json::to_value(load("reward.voucher.created-snake-case-7-digit-fractions.json")).unwrap();
    let expected = serde_json::json!({
        "eventType": "reward.voucher.created",
        "eventId": "c0739405-e1b8-4d82-81ca-82907fe30278",
        "isEncrypted": false,
        "payload": {
            "Amount": 122,
            "ContactId": "2c5b9e40-73d6-4fa0-93c4-aebf02b3c4d5",
            "Currency": "NOK",
            "Id": "98765",
            "UniqueCode": "RV-8T5N-4QZ1",
            "ValidFrom": "2024-05-13T10:12:33.1234567+02:00",
            "ValidTo": "2024-06-13T10:12:33.1234567Z"
        },
        "tenant": "nordicoutdoor"
    });
    assert_eq!(value, expected);
    let text = serde_json::to_string(&load("loyalty.addPoints.json")).unwrap();
    assert!(text.contains(r#""amount":100.10,"#), "{text}");
    assert!(
        text.starts_with(r#"{"eventType":"loyalty.addPoints","id":"8c3f5061"#),
        "{text}"
    );
}

/// The contact id of an event with a raw payload, read tolerantly and never
/// failing: `contactId` in any casing, else `id` for the contact events only.
#[test]
fn the_contact_id_of_a_raw_payload() {
    let contact = |json: &str| match json.parse::<EventEnvelope>().unwrap() {
        EventEnvelope::Unknown(e) | EventEnvelope::Encrypted(e) => e.contact_id(),
        other => panic!("{other:?}"),
    };
    for (name, id) in [
        (
            "contact.created-unknown.json",
            "5f8ec173-a609-42d3-86f7-d1e235e6f708",
        ),
        (
            "contact.deleted-unknown.json",
            "60f9d284-b71a-43e4-97a8-e2f346f7a819",
        ),
    ] {
        let body = String::from_utf8(common::fixture(name)).unwrap();
        assert_eq!(contact(&body).as_deref(), Some(id), "{name}");
    }
    let cases = [
        (
            r#"{"eventType": "contact.deleted", "payload": {"id": "c-1"}}"#,
            Some("c-1"),
        ),
        (
            r#"{"eventType": "contact.updated", "payload": {"Id": 42}}"#,
            Some("42"),
        ),
        (
            r#"{"eventType": "contact.created", "payload": {"contact_id": "c-2", "id": "x"}}"#,
            Some("c-2"),
        ),
        (
            r#"{"eventType": "contact.deleted", "payload": {"contactId": "", "id": "c-3"}}"#,
            Some("c-3"),
        ),
        (
            r#"{"eventType": "contact.deleted", "payload": {"contactId": null}}"#,
            None,
        ),
        (
            r#"{"eventType": "contact.consent.changed", "payload": {"ContactId": "c-4"}}"#,
            Some("c-4"),
        ),
        (
            r#"{"eventType": "contact.consent.changed", "payload": {"id": "consent-1"}}"#,
            None,
        ),
        (
            r#"{"eventType": "promotion.multichannel.assigned", "payload": {"id": "a-1"}}"#,
            None,
        ),
        (r#"{"eventType": "order.shipped", "payload": [1, 2]}"#, None),
        (r#"{"eventType": "contact.deleted", "payload": "text"}"#, None),
        (r#"{"eventType": "contact.deleted"}"#, None),
        (
            r#"{"eventType": "contact.deleted", "isEncrypted": true, "payload": "abc"}"#,
            None,
        ),
        (
            r#"{"eventType": "contact.deleted", "payload": {"contactId": {"nested": 1}}}"#,
            None,
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(contact(json).as_deref(), expected, "{json}");
    }
}
