//! Building events in tests (feature `test-util`): a [`Builder`] for every
//! payload struct and for [`Envelope`], with test values for the fields left
//! unset. The crate's structs are `#[non_exhaustive]`, so these are how your
//! own tests make one.
//!
//! ```
//! use voyado_webhooks::{Decimal, Envelope, EventType, RewardVoucherCreated};
//!
//! let voucher = RewardVoucherCreated::builder()
//!     .contact_id("c-1")
//!     .amount(Decimal::new(5000, 2))
//!     .currency("SEK")
//!     .build();
//! assert_eq!(voucher.amount.to_string(), "50.00");
//! assert_eq!(voucher.unique_code, "UniqueCode-1"); // unset: a test value
//! assert_eq!(voucher.valid_to, None);
//!
//! let event = Envelope::builder(EventType::RewardVoucherCreated, voucher)
//!     .id("e-1")
//!     .tenant("acme")
//!     .build();
//! assert_eq!(event.tenant.as_deref(), Some("acme"));
//! ```
//!
//! `Webhook::signed_headers` (and, with `http`, `Webhook::signed_request`)
//! sign a body for sending to your endpoint.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::envelope::Envelope;
use crate::event_type::EventType;
use crate::raw::Extra;

/// Builds a `T` one field at a time; [`build`](Self::build) gives it.
///
/// Made by `builder()` on every payload struct and on [`Envelope`]. Its setter
/// methods are named for the fields, and take anything that
/// [`IntoField`] converts: `"text"` for a `String` field, a value or `None`
/// for an optional one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<T>(pub(crate) T);

impl<T> Builder<T> {
    /// The value built.
    pub fn build(self) -> T {
        self.0
    }
}

/// What a builder's setter takes for a field of type `T`: the value itself, a
/// value for an `Option` field, or `&str` for a text field.
pub trait IntoField<T> {
    /// The field's value.
    fn into_field(self) -> T;
}

impl<T> IntoField<T> for T {
    fn into_field(self) -> T {
        self
    }
}

impl<T> IntoField<Option<T>> for T {
    fn into_field(self) -> Option<T> {
        Some(self)
    }
}

impl IntoField<String> for &str {
    fn into_field(self) -> String {
        self.to_owned()
    }
}

impl IntoField<Option<String>> for &str {
    fn into_field(self) -> Option<String> {
        Some(self.to_owned())
    }
}

/// The value a builder starts a field with, from the field's wire name:
/// `None` when optional, and otherwise one that reads as a test value.
pub(crate) trait TestValue {
    fn test_value(wire_name: &'static str) -> Self;
}

impl<T> TestValue for Option<T> {
    fn test_value(_: &'static str) -> Self {
        None
    }
}

/// `contactId-1`, `UniqueCode-1`: plainly a test value, and named for its field.
impl TestValue for String {
    fn test_value(wire_name: &'static str) -> Self {
        format!("{wire_name}-1")
    }
}

/// 100: a round amount, balance or voucher value.
impl TestValue for Decimal {
    fn test_value(_: &'static str) -> Self {
        Decimal::ONE_HUNDRED
    }
}

impl<P> Envelope<P> {
    /// A builder for an envelope of `event_type` around `payload`, with no id,
    /// no tenant, not encrypted, and no unknown fields until they are set
    /// (feature `test-util`).
    pub fn builder(event_type: EventType, payload: P) -> Builder<Envelope<P>> {
        Builder(Envelope::bare(event_type, payload))
    }
}

impl<P> Builder<Envelope<P>> {
    /// The event id.
    pub fn id(mut self, id: impl IntoField<Option<String>>) -> Self {
        self.0.id = id.into_field();
        self
    }

    /// The Engage tenant.
    pub fn tenant(mut self, tenant: impl IntoField<Option<String>>) -> Self {
        self.0.tenant = tenant.into_field();
        self
    }

    /// Whether the payload is encrypted.
    pub fn is_encrypted(mut self, is_encrypted: bool) -> Self {
        self.0.is_encrypted = is_encrypted;
        self
    }

    /// An envelope field this crate does not know, with `value` as its JSON.
    pub fn extra(mut self, name: &str, value: impl Serialize) -> Result<Self, serde_json::Error> {
        push(&mut self.0.extra, name, value)?;
        Ok(self)
    }
}

/// Appends `value`, as JSON, to `extra`.
pub(crate) fn push(extra: &mut Extra, name: &str, value: impl Serialize) -> Result<(), serde_json::Error> {
    extra.push(name, serde_json::value::to_raw_value(&value)?);
    Ok(())
}
