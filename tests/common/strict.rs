//! Strict reference parsers: a plain `#[derive(Deserialize)]` of exactly the
//! documented fields of each event (fixed casing, `rust_decimal`'s default serde,
//! `time::serde::rfc3339`), with none of the crate's tolerance. The benchmarks
//! race them; `tests/robustness.rs` checks the crate reads what they read.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// The documented envelope, with `id`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strict<P> {
    pub event_type: String,
    pub id: String,
    pub is_encrypted: bool,
    pub payload: P,
    pub tenant: String,
}

/// The documented envelope of `reward.voucher.created`, with `eventId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrictEventId<P> {
    pub event_id: String,
    pub event_type: String,
    pub is_encrypted: bool,
    pub payload: P,
    pub tenant: String,
}

/// An unknown event: its payload kept as text.
pub type StrictUnknown = Strict<Box<RawValue>>;

/// `contact.acceptsEmail.changed` (not published; the crate's reading of it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrictPreference {
    pub contact_id: String,
    pub accepts_email: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrictLoyaltyAddPoints {
    pub amount: Decimal,
    pub contact_id: String,
    pub point_definition_id: Option<i64>,
    pub source: Option<String>,
    pub description: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub reason: Option<String>,
    pub source_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrictPointBalanceUpdated {
    pub balance: Decimal,
    pub contact_id: String,
    pub account_id: Option<i64>,
    pub definition_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub balance_expires: Option<OffsetDateTime>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StrictRewardVoucherCreated {
    pub amount: Decimal,
    pub contact_id: String,
    pub currency: Option<String>,
    pub id: String,
    pub unique_code: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub valid_from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub valid_to: Option<OffsetDateTime>,
}
