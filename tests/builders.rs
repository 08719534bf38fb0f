//! The `test-util` builders, as an integrator's tests use them: every payload
//! struct and `Envelope` built from test values and setters, read back as the
//! event a delivery of it would be, and dispatched to a handler.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::sync::Mutex;

use voyado_webhooks::{
    ContactPreferenceChanged, Context, Decimal, Envelope, EventEnvelope, EventHandler, EventType,
    LoyaltyAddPoints, OffsetDateTime, PointBalanceUpdated, Preference, RewardVoucherCreated,
};

fn at(rfc3339: &str) -> OffsetDateTime {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn unset_fields_get_test_values() {
    let voucher = RewardVoucherCreated::builder().build();
    assert_eq!(voucher.contact_id, "ContactId-1");
    assert_eq!(voucher.id, "Id-1");
    assert_eq!(voucher.unique_code, "UniqueCode-1");
    assert_eq!(voucher.amount, Decimal::ONE_HUNDRED);
    assert_eq!(
        (voucher.currency, voucher.valid_from, voucher.valid_to),
        (None, None, None)
    );
    assert!(voucher.extra.is_empty());
    let points = LoyaltyAddPoints::builder().build();
    assert_eq!(points.contact_id, "contactId-1");
    assert_eq!(points.point_definition_id, None);
    let envelope = Envelope::builder(EventType::LoyaltyAddPoints, points).build();
    assert_eq!(
        (envelope.id, envelope.tenant, envelope.is_encrypted),
        (None, None, false)
    );
}

/// Every payload struct, every field set, read back as Engage's delivery of it
/// would be: the same event, under the variant its event type names.
#[test]
fn every_builder_makes_the_event_a_delivery_would_be() {
    let amount: Decimal = "1234.50".parse().unwrap();
    let events = [
        Envelope::builder(
            EventType::ContactAcceptsSmsChanged,
            ContactPreferenceChanged::builder()
                .contact_id("c-1")
                .accepts(false)
                .build(),
        )
        .id("e-1")
        .tenant("acme")
        .extra("traceId", "t-1")
        .unwrap()
        .into_event()
        .unwrap(),
        Envelope::builder(
            EventType::LoyaltyAddPoints,
            LoyaltyAddPoints::builder()
                .amount(amount)
                .contact_id("c-2")
                .point_definition_id(7)
                .source("Automation")
                .description("Birthday bonus")
                .user_id("u-1")
                .user_name("Ann")
                .reason("Birthday")
                .source_id("s-1")
                .extra("tier", serde_json::json!({"name": "gold"}))
                .unwrap()
                .build(),
        )
        .into_event()
        .unwrap(),
        Envelope::builder(
            EventType::PointBalanceUpdated,
            PointBalanceUpdated::builder()
                .balance(amount)
                .contact_id("c-3")
                .account_id(3)
                .definition_id("d-1")
                .balance_expires(at("2025-12-31T23:59:59+01:00"))
                .build(),
        )
        .into_event()
        .unwrap(),
        Envelope::builder(
            EventType::RewardVoucherCreated,
            RewardVoucherCreated::builder()
                .amount(amount)
                .contact_id("c-4")
                .currency("SEK")
                .id("v-1")
                .unique_code("ABC123")
                .valid_from(at("2025-01-01T00:00:00Z"))
                .valid_to(None)
                .build(),
        )
        .id("e-4")
        .into_event()
        .unwrap(),
    ];

    let EventEnvelope::ContactAcceptsSmsChanged(sms) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(
        (sms.payload.accepts, sms.tenant.as_deref()),
        (Some(false), Some("acme"))
    );
    assert_eq!(sms.extra.get("traceId").unwrap().get(), r#""t-1""#);
    let EventEnvelope::LoyaltyAddPoints(points) = &events[1] else {
        panic!("{:?}", events[1])
    };
    assert_eq!(points.payload.amount.to_string(), "1234.50");
    assert_eq!(points.payload.source_id.as_deref(), Some("s-1"));
    assert_eq!(
        points.payload.extra.get("tier").unwrap().get(),
        r#"{"name":"gold"}"#
    );
    let EventEnvelope::PointBalanceUpdated(balance) = &events[2] else {
        panic!("{:?}", events[2])
    };
    assert_eq!(
        balance.payload.balance_expires,
        Some(at("2025-12-31T23:59:59+01:00"))
    );
    let EventEnvelope::RewardVoucherCreated(voucher) = &events[3] else {
        panic!("{:?}", events[3])
    };
    assert_eq!(
        (voucher.id.as_deref(), voucher.payload.valid_to),
        (Some("e-4"), None)
    );

    // What a handler sees: the built event, dispatched with its preference.
    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);
    impl EventHandler for Seen {
        type Error = std::convert::Infallible;
        fn contact_preference_changed(
            &self,
            _: &Context,
            preference: Preference,
            event: &Envelope<ContactPreferenceChanged>,
        ) -> Result<(), Self::Error> {
            let seen = format!("{preference} {}", event.payload.contact_id);
            self.0.lock().unwrap().push(seen);
            Ok(())
        }
    }
    let seen = Seen::default();
    let ctx = Context::new("msg_1", OffsetDateTime::now_utc());
    for event in &events {
        event.dispatch(&ctx, &seen).unwrap();
    }
    assert_eq!(*seen.0.lock().unwrap(), ["acceptsSms c-1"]);
}

#[test]
fn a_payload_under_another_event_type_reads_as_that_delivery_would() {
    let points = LoyaltyAddPoints::builder().build();
    // Sent as a balance update, it lacks the balance.
    let error = Envelope::builder(EventType::PointBalanceUpdated, points.clone())
        .into_event()
        .unwrap_err();
    assert_eq!(error.path(), Some("payload.balance"), "{error}");
    // Under a type the crate does not know, it is kept as it is.
    let event = Envelope::builder(EventType::Other("points.moved".into()), points)
        .into_event()
        .unwrap();
    assert!(matches!(event, EventEnvelope::Unknown(_)), "{event:?}");
}
