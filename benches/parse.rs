//! Parsing speed: the tolerant `EventEnvelope::from_slice` against a plain strict
//! `#[derive(Deserialize)]` of the same fields (serde_json, rust_decimal's and
//! time's own serde support), on the bundled fixtures.
//!
//! `cargo bench --bench parse` runs both in the same process and finishes by
//! printing, per event, the tolerant parse's time as a ratio of the strict one.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput};
use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use voyado_webhooks::EventEnvelope;

#[path = "../tests/common/mod.rs"]
mod common;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "only parsed")]
struct Strict<P> {
    event_type: String,
    #[serde(alias = "eventId")]
    id: Option<String>,
    tenant: Option<String>,
    is_encrypted: bool,
    payload: P,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "only parsed")]
struct StrictPreference {
    contact_id: String,
    accepts_email: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "only parsed")]
struct StrictLoyaltyAddPoints {
    amount: Decimal,
    contact_id: String,
    point_definition_id: Option<i64>,
    source: Option<String>,
    description: Option<String>,
    user_id: Option<String>,
    user_name: Option<String>,
    reason: Option<String>,
    source_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "only parsed")]
struct StrictPointBalanceUpdated {
    balance: Decimal,
    contact_id: String,
    account_id: Option<i64>,
    definition_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    balance_expires: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code, reason = "only parsed")]
struct StrictRewardVoucherCreated {
    amount: Decimal,
    contact_id: String,
    currency: Option<String>,
    id: String,
    unique_code: String,
    #[serde(with = "time::serde::rfc3339::option")]
    valid_from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    valid_to: Option<OffsetDateTime>,
}

/// Benchmarks one fixture both ways; returns the group's name.
fn compare<P: for<'de> Deserialize<'de>>(c: &mut Criterion, name: &str) -> String {
    let body = common::fixture(name);
    // Both must accept the fixture, or the comparison means nothing.
    EventEnvelope::from_slice(&body).expect("tolerant parse");
    serde_json::from_slice::<Strict<P>>(&body).expect("strict parse");

    let group_name = name.trim_end_matches(".json").to_owned();
    let mut group = c.benchmark_group(&group_name);
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("strict", |b| {
        b.iter(|| serde_json::from_slice::<Strict<P>>(black_box(&body)).unwrap())
    });
    group.bench_function("tolerant", |b| {
        b.iter(|| EventEnvelope::from_slice(black_box(&body)).unwrap())
    });
    group.finish();
    group_name
}

/// The mean time criterion recorded for one benchmark, in nanoseconds.
fn mean_ns(group: &str, bench: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target
        .join("criterion")
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates.pointer("/mean/point_estimate")?.as_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let groups = [
        compare::<StrictPreference>(&mut c, "contact.acceptsEmail.changed.json"),
        compare::<StrictLoyaltyAddPoints>(&mut c, "loyalty.addPoints.json"),
        compare::<StrictPointBalanceUpdated>(&mut c, "point.balance.updated.json"),
        compare::<StrictRewardVoucherCreated>(&mut c, "reward.voucher.created.json"),
    ];
    c.final_summary();

    println!("\ntolerant / strict, mean time (1.00 = as fast as the strict derive):");
    for group in groups {
        match (mean_ns(&group, "tolerant"), mean_ns(&group, "strict")) {
            (Some(tolerant), Some(strict)) => {
                println!(
                    "  {group:<32} {:.2}  ({tolerant:.0} ns vs {strict:.0} ns)",
                    tolerant / strict
                )
            }
            _ => println!("  {group:<32} (not measured in this run)"),
        }
    }
}
