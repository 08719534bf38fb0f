//! The one list of events: every per-event list in the crate is generated from
//! the table in [`events!`], so adding an event is one row here.
//!
//! # Adding a typed event
//!
//! 1. Define its payload struct with `payload!` in `src/payload.rs`.
//! 2. Add a row under `typed` below: the `EventType` and `EventEnvelope` variant,
//!    the wire name, the payload type and the handler method (and, for a
//!    preference event, the `Preference` its default forwards with).
//! 3. Add a fixture named `tests/fixtures/{wire name}.json`.
//! 4. Add its rows to README's event table and `CHANGELOG.md`.
//!
//! `EventType`, `EventEnvelope`, its accessors and serialization, the payload
//! reader's `match` (which has no catch-all arm), and both handler traits with
//! their dispatch all follow from the row; a row without a payload type or
//! handler method does not compile, and tests fail for a missing fixture or
//! README row. An event Voyado names without publishing its payload goes under
//! `untyped`: it gets an `EventType` variant and a handler method taking its
//! raw payload (`Envelope<RawPayload>`), and arrives as `EventEnvelope::Unknown`.

/// Calls the macro `$consumer` with the table of events, and with `[$args]`
/// first (empty when none are given):
///
/// ```text
/// typed { $(#[doc])* Variant = "wire.name" => PayloadType, handler_method $(, Preference::Which)?; … }
/// untyped { $(#[doc])* Variant = "wire.name" => handler_method; … }
/// ```
macro_rules! events {
    ($consumer:ident $(, $($args:tt)*)?) => {
        $consumer! {
            [$($($args)*)?]
            typed {
                /// A contact's email marketing preference changed.
                ContactAcceptsEmailChanged = "contact.acceptsEmail.changed"
                    => ContactPreferenceChanged, contact_accepts_email_changed, Preference::Email;
                /// A contact's SMS marketing preference changed.
                ContactAcceptsSmsChanged = "contact.acceptsSms.changed"
                    => ContactPreferenceChanged, contact_accepts_sms_changed, Preference::Sms;
                /// A contact's postal marketing preference changed.
                ContactAcceptsPostalChanged = "contact.acceptsPostal.changed"
                    => ContactPreferenceChanged, contact_accepts_postal_changed, Preference::Postal;
                /// Points were added to a contact (sent to tenants using the "point
                /// follower" solution).
                LoyaltyAddPoints = "loyalty.addPoints" => LoyaltyAddPoints, loyalty_add_points;
                /// A contact's point balance changed.
                PointBalanceUpdated = "point.balance.updated" => PointBalanceUpdated, point_balance_updated;
                /// A reward voucher was created.
                RewardVoucherCreated = "reward.voucher.created" => RewardVoucherCreated, reward_voucher_created;
            }
            untyped {
                /// A contact's consent changed (payload not published).
                ContactConsentChanged = "contact.consent.changed" => contact_consent_changed;
                /// A contact was created (payload not published).
                ContactCreated = "contact.created" => contact_created;
                /// A contact was updated (payload not published).
                ContactUpdated = "contact.updated" => contact_updated;
                /// A contact was deleted (payload not published).
                ContactDeleted = "contact.deleted" => contact_deleted;
                /// A multichannel promotion was assigned (payload not published).
                PromotionMultichannelAssigned = "promotion.multichannel.assigned" => promotion_multichannel_assigned;
            }
        }
    };
}
pub(crate) use events;
