//! The one list of events: every per-event list in the crate is generated from
//! the table in [`events!`], so adding an event is one row here.
//!
//! # Adding a typed event
//!
//! 1. Define its payload struct with `payload!` in `src/payload.rs`.
//! 2. Add a row under `typed` below: the `EventType` and `EventEnvelope` variant,
//!    the wire name, the payload type, the handler method (and, for a
//!    preference event, the `Preference` its default forwards with), and
//!    whether it is a `fact` or the `state` of an entity (see below).
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
/// typed { $(#[doc])* Variant = "wire.name" => PayloadType, handler_method $(, Preference::Which)? as Order; … }
/// untyped { $(#[doc])* Variant = "wire.name" => handler_method as Order; … }
/// ```
///
/// `Order` says how the inbox orders the event's deliveries (README, "Order and
/// state"):
///
/// - `fact`: something happened (points added, a voucher made). Every delivery
///   is handled, in any order.
/// - `state(entity)`: the event sets the state of one thing about its contact,
///   named by the function `crate::order::entity` (the preference, the point
///   account, the consent, the contact itself). Deliveries of one contact's
///   states are handled one at a time, in the order Svix created them, and one
///   older than a state already applied for its entity is superseded, not
///   handled. `contact.deleted`'s entity supersedes every older state of its
///   contact.
macro_rules! events {
    ($consumer:ident $(, $($args:tt)*)?) => {
        $consumer! {
            [$($($args)*)?]
            typed {
                /// A contact's email marketing preference changed.
                ContactAcceptsEmailChanged = "contact.acceptsEmail.changed"
                    => ContactPreferenceChanged, contact_accepts_email_changed, Preference::Email as state(by_type);
                /// A contact's SMS marketing preference changed.
                ContactAcceptsSmsChanged = "contact.acceptsSms.changed"
                    => ContactPreferenceChanged, contact_accepts_sms_changed, Preference::Sms as state(by_type);
                /// A contact's postal marketing preference changed.
                ContactAcceptsPostalChanged = "contact.acceptsPostal.changed"
                    => ContactPreferenceChanged, contact_accepts_postal_changed, Preference::Postal as state(by_type);
                /// Points were added to a contact (sent to tenants using the "point
                /// follower" solution).
                LoyaltyAddPoints = "loyalty.addPoints" => LoyaltyAddPoints, loyalty_add_points as fact;
                /// A contact's point balance changed.
                PointBalanceUpdated = "point.balance.updated" => PointBalanceUpdated, point_balance_updated as state(balance);
                /// A reward voucher was created.
                RewardVoucherCreated = "reward.voucher.created" => RewardVoucherCreated, reward_voucher_created as fact;
            }
            untyped {
                /// A contact's consent changed (payload not published).
                ContactConsentChanged = "contact.consent.changed" => contact_consent_changed as state(consent);
                /// A contact was created (payload not published).
                ContactCreated = "contact.created" => contact_created as fact;
                /// A contact was updated (payload not published).
                ContactUpdated = "contact.updated" => contact_updated as state(by_type);
                /// A contact was deleted (payload not published).
                ContactDeleted = "contact.deleted" => contact_deleted as state(by_type);
                /// A multichannel promotion was assigned (payload not published).
                PromotionMultichannelAssigned = "promotion.multichannel.assigned" => promotion_multichannel_assigned as fact;
            }
        }
    };
}
pub(crate) use events;
