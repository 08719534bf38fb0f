//! Dispatch: each event reaches its method, defaults forward as documented, and the
//! async handler's future is `Send`.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use voyado_webhooks::Context as Ctx;
use voyado_webhooks::{
    AsyncEventHandler, ContactPreferenceChanged, Envelope, EventEnvelope, EventHandler, EventType, Extra,
    LoyaltyAddPoints, ParseError, ParseErrorKind, PointBalanceUpdated, Preference, RawPayload,
    RewardVoucherCreated,
};

/// One delivery of each variant, with the method each must reach.
fn deliveries() -> Vec<(EventEnvelope, &'static str)> {
    let cases = [
        (
            r#"{"eventType": "contact.acceptsEmail.changed", "id": "1", "payload": {"contactId": "c"}}"#,
            "email",
        ),
        (
            r#"{"eventType": "contact.acceptsSms.changed", "id": "2", "payload": {"contactId": "c"}}"#,
            "sms",
        ),
        (
            r#"{"eventType": "contact.acceptsPostal.changed", "id": "3", "payload": {"contactId": "c"}}"#,
            "postal",
        ),
        (
            r#"{"eventType": "loyalty.addPoints", "id": "4", "payload": {"amount": 1, "contactId": "c"}}"#,
            "points",
        ),
        (
            r#"{"eventType": "point.balance.updated", "id": "5", "payload": {"balance": 1, "contactId": "c"}}"#,
            "balance",
        ),
        (
            r#"{"eventType": "reward.voucher.created", "id": "6", "payload": {"Amount": 1, "ContactId": "c", "Id": "v", "UniqueCode": "u"}}"#,
            "voucher",
        ),
        (
            r#"{"eventType": "loyalty.addPoints", "id": "7", "isEncrypted": true, "payload": "abc"}"#,
            "encrypted",
        ),
        (
            r#"{"eventType": "contact.created", "id": "8", "payload": {}}"#,
            "created",
        ),
        (
            r#"{"eventType": "contact.consent.changed", "id": "9", "payload": {"contactId": "c"}}"#,
            "consent",
        ),
        (
            r#"{"eventType": "contact.updated", "id": "10", "payload": {"id": "c"}}"#,
            "updated",
        ),
        (
            r#"{"eventType": "contact.deleted", "id": "11", "payload": {"contactId": "c"}}"#,
            "deleted",
        ),
        (
            r#"{"eventType": "promotion.multichannel.assigned", "id": "12", "payload": {"contactId": "c", "promotionId": "p"}}"#,
            "promotion",
        ),
        (
            r#"{"eventType": "order.shipped", "id": "13", "payload": {}}"#,
            "unknown",
        ),
    ];
    cases
        .iter()
        .map(|(json, method)| (json.parse().unwrap(), *method))
        .collect()
}

/// The context of the test deliveries.
fn ctx() -> Ctx {
    Ctx::new("msg_test", voyado_webhooks::OffsetDateTime::UNIX_EPOCH)
}

/// Overrides every method and records which ran, with the message id it got.
#[derive(Default)]
struct Everything(Mutex<Vec<String>>);

impl Everything {
    fn saw(&self, ctx: &Ctx, what: &str) -> Result<(), ()> {
        self.0
            .lock()
            .unwrap()
            .push(format!("{what} {}", ctx.message_id()));
        Ok(())
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl EventHandler for Everything {
    type Error = ();
    fn contact_accepts_email_changed(
        &self,
        ctx: &Ctx,
        _: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), ()> {
        self.saw(ctx, "email")
    }
    fn contact_accepts_sms_changed(
        &self,
        ctx: &Ctx,
        _: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), ()> {
        self.saw(ctx, "sms")
    }
    fn contact_accepts_postal_changed(
        &self,
        ctx: &Ctx,
        _: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), ()> {
        self.saw(ctx, "postal")
    }
    fn loyalty_add_points(&self, ctx: &Ctx, _: &Envelope<LoyaltyAddPoints>) -> Result<(), ()> {
        self.saw(ctx, "points")
    }
    fn point_balance_updated(&self, ctx: &Ctx, _: &Envelope<PointBalanceUpdated>) -> Result<(), ()> {
        self.saw(ctx, "balance")
    }
    fn reward_voucher_created(&self, ctx: &Ctx, _: &Envelope<RewardVoucherCreated>) -> Result<(), ()> {
        self.saw(ctx, "voucher")
    }
    fn encrypted(&self, ctx: &Ctx, _: &Envelope<RawPayload>) -> Result<(), ()> {
        self.saw(ctx, "encrypted")
    }
    fn contact_created(&self, ctx: &Ctx, _: &Envelope<RawPayload>) -> Result<(), ()> {
        self.saw(ctx, "created")
    }
    fn contact_consent_changed(&self, ctx: &Ctx, _: &Envelope<RawPayload>) -> Result<(), ()> {
        self.saw(ctx, "consent")
    }
    fn contact_updated(&self, ctx: &Ctx, _: &Envelope<RawPayload>) -> Result<(), ()> {
        self.saw(ctx, "updated")
    }
    fn contact_deleted(&self, ctx: &Ctx, _: &Envelope<RawPayload>) -> Result<(), ()> {
        self.saw(ctx, "deleted")
    }
    fn promotion_multichannel_assigned(&self, ctx: &Ctx, _: &Envelope<RawPayload>) -> Result<(), ()> {
        self.saw(ctx, "promotion")
    }
    fn unknown(&self, ctx: &Ctx, _: &Envelope<RawPayload>) -> Result<(), ()> {
        self.saw(ctx, "unknown")
    }
}

/// A handler written before the named events had methods, catching them in
/// `unknown`, still gets them there, payload and all.
#[test]
fn named_events_without_a_method_of_their_own_still_reach_unknown() {
    #[derive(Default)]
    struct Old(Mutex<Vec<String>>);
    impl EventHandler for Old {
        type Error = ();
        fn unknown(&self, _: &Ctx, event: &Envelope<RawPayload>) -> Result<(), ()> {
            let seen = format!("{} {}", event.event_type, event.payload.get());
            self.0.lock().unwrap().push(seen);
            Ok(())
        }
    }
    let handler = Old::default();
    let body = r#"{"eventType": "contact.deleted", "payload": {"contactId": "c-9"}}"#;
    body.parse::<EventEnvelope>()
        .unwrap()
        .dispatch(&ctx(), &handler)
        .unwrap();
    assert_eq!(
        handler.0.into_inner().unwrap(),
        [r#"contact.deleted {"contactId": "c-9"}"#]
    );
}

#[test]
fn each_variant_reaches_its_method() {
    let handler = Everything::default();
    for (event, method) in deliveries() {
        event.dispatch(&ctx(), &handler).unwrap();
        assert_eq!(handler.take(), [format!("{method} msg_test")]);
    }
}

/// Overrides only the two catch-alls.
#[derive(Default)]
struct Defaults(Mutex<Vec<String>>);

impl EventHandler for Defaults {
    type Error = ();
    fn contact_preference_changed(
        &self,
        _: &Ctx,
        preference: Preference,
        event: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), ()> {
        self.0
            .lock()
            .unwrap()
            .push(format!("{preference} {}", event.payload.contact_id));
        Ok(())
    }
    fn unhandled(&self, _: &Ctx, event_type: &EventType, id: Option<&str>) -> Result<(), ()> {
        self.0
            .lock()
            .unwrap()
            .push(format!("unhandled {event_type} {}", id.unwrap_or("-")));
        Ok(())
    }
}

#[test]
fn defaults_forward_to_the_catch_alls() {
    let handler = Defaults::default();
    for (event, _) in deliveries() {
        event.dispatch(&ctx(), &handler).unwrap();
    }
    assert_eq!(
        handler.0.into_inner().unwrap(),
        [
            "acceptsEmail c",
            "acceptsSms c",
            "acceptsPostal c",
            "unhandled loyalty.addPoints 4",
            "unhandled point.balance.updated 5",
            "unhandled reward.voucher.created 6",
            "unhandled loyalty.addPoints 7",
            "unhandled contact.created 8",
            "unhandled contact.consent.changed 9",
            "unhandled contact.updated 10",
            "unhandled contact.deleted 11",
            "unhandled promotion.multichannel.assigned 12",
            "unhandled order.shipped 13",
        ]
    );
}

#[test]
fn a_handler_with_no_overrides_accepts_everything() {
    struct Nothing;
    impl EventHandler for Nothing {
        type Error = std::convert::Infallible;
    }
    for (event, _) in deliveries() {
        assert_eq!(event.dispatch(&ctx(), &Nothing), Ok(()));
    }
    // Through a trait object too.
    let dynamic: &dyn EventHandler<Error = std::convert::Infallible> = &Nothing;
    assert_eq!(deliveries()[0].0.dispatch(&ctx(), dynamic), Ok(()));
}

#[test]
fn a_handler_error_comes_back() {
    struct Failing;
    impl EventHandler for Failing {
        type Error = String;
        fn point_balance_updated(
            &self,
            _: &Ctx,
            event: &Envelope<PointBalanceUpdated>,
        ) -> Result<(), String> {
            Err(format!("database down for {}", event.payload.contact_id))
        }
    }
    let results: Vec<_> = deliveries()
        .into_iter()
        .map(|(event, _)| event.dispatch(&ctx(), &Failing))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert_eq!(results[4], Err("database down for c".to_owned()));
}

/// Polls a future to completion; the handlers here never wait.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[derive(Default)]
struct AsyncRecorder(Mutex<Vec<String>>);

impl AsyncEventHandler for AsyncRecorder {
    type Error = String;
    async fn contact_preference_changed(
        &self,
        _: &Ctx,
        preference: Preference,
        _: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), String> {
        self.0.lock().unwrap().push(preference.to_string());
        Ok(())
    }
    async fn reward_voucher_created(
        &self,
        _: &Ctx,
        event: &Envelope<RewardVoucherCreated>,
    ) -> Result<(), String> {
        Err(format!("voucher {} refused", event.payload.unique_code))
    }
    async fn unhandled(&self, _: &Ctx, event_type: &EventType, _: Option<&str>) -> Result<(), String> {
        self.0.lock().unwrap().push(format!("unhandled {event_type}"));
        Ok(())
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn async_dispatch_routes_like_sync_dispatch_with_send_futures() {
    let handler = AsyncRecorder::default();
    let ctx = ctx();
    let mut errors = Vec::new();
    for (event, _) in deliveries() {
        if let Err(e) = block_on(assert_send(event.dispatch_async(&ctx, &handler))) {
            errors.push(e);
        }
    }
    assert_eq!(errors, ["voucher u refused"]);
    assert_eq!(
        handler.0.into_inner().unwrap(),
        [
            "acceptsEmail",
            "acceptsSms",
            "acceptsPostal",
            "unhandled loyalty.addPoints",
            "unhandled point.balance.updated",
            "unhandled loyalty.addPoints",
            "unhandled contact.created",
            "unhandled contact.consent.changed",
            "unhandled contact.updated",
            "unhandled contact.deleted",
            "unhandled promotion.multichannel.assigned",
            "unhandled order.shipped",
        ]
    );
}

#[test]
fn public_types_are_send_sync_and_errors_are_errors() {
    fn data<T: Send + Sync + Clone + PartialEq + Eq + std::fmt::Debug + 'static>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    data::<EventEnvelope>();
    data::<Envelope<RawPayload>>();
    data::<EventType>();
    data::<ContactPreferenceChanged>();
    data::<LoyaltyAddPoints>();
    data::<PointBalanceUpdated>();
    data::<RewardVoucherCreated>();
    data::<Preference>();
    data::<RawPayload>();
    data::<Extra>();
    data::<ParseError>();
    data::<ParseErrorKind>();
    data::<Ctx>();
    error::<ParseError>();
}
