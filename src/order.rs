//! Which state each state event sets: the entity the inbox orders its
//! deliveries by, named by the function the event table gives its row (see
//! [`crate::events`] and README, "Order and state").
//!
//! An entity is a name within its contact, stored with the delivery: it must
//! not change between versions for an event already stored, so the names are
//! the wire names of the event types, with the id of the thing where a contact
//! has several.

use std::borrow::Cow;

use crate::envelope::Envelope;
use crate::payload::PointBalanceUpdated;
use crate::raw::RawPayload;

/// The entity of `contact.deleted`: it supersedes every older state of its
/// contact, whatever the entity.
pub(crate) const DELETION: &str = "contact.deleted";

/// The event type itself: a preference, the contact's own record, or its
/// deletion ([`DELETION`]).
pub(crate) fn by_type<P>(event: &Envelope<P>) -> Cow<'_, str> {
    Cow::Borrowed(event.event_type.as_str())
}

/// One point account's balance: by its account id, or by its point definition
/// where the account is not sent.
pub(crate) fn balance(event: &Envelope<PointBalanceUpdated>) -> Cow<'_, str> {
    let name = event.event_type.as_str();
    match (event.payload.account_id, &event.payload.definition_id) {
        (Some(account), _) => Cow::Owned(format!("{name} account {account}")),
        (None, Some(definition)) => Cow::Owned(format!("{name} definition {definition}")),
        (None, None) => Cow::Borrowed(name),
    }
}

/// One consent, by its `consentId` where the (unpublished) payload has one;
/// otherwise all of the contact's consents are one entity.
pub(crate) fn consent(event: &Envelope<RawPayload>) -> Cow<'_, str> {
    let name = event.event_type.as_str();
    let consent = event
        .payload
        .parse::<serde_json::Map<String, serde_json::Value>>()
        .ok()
        .and_then(|payload| crate::envelope::text_in(&payload, "consentId"));
    match consent {
        Some(consent) => Cow::Owned(format!("{name} {consent}")),
        None => Cow::Borrowed(name),
    }
}

/// A row's entity: `None` for a `fact`, the named function's for a `state`.
macro_rules! entity_of {
    ($event:expr, fact) => {{
        let _ = $event;
        None
    }};
    ($event:expr, state($entity:ident)) => {
        Some($crate::order::$entity($event))
    };
}
pub(crate) use entity_of;
