//! How fast `voyado-webhooks` is against the fastest thing that could replace it,
//! measured in the same run:
//!
//! - per event (`eventType` before `payload`) and for an unknown event:
//!   - `ours`: `EventEnvelope::from_slice`;
//!   - `strict`: a plain `#[derive(Deserialize)]` of exactly the documented
//!     fields (`tests/common/strict.rs`), with none of the tolerance;
//!   - `value`: `serde_json::Value`, what integrators write by hand today;
//!   - `bound`: a derive returning only the owned strings `ours` returns,
//!     every number and timestamp skipped: `value / bound` is about the most
//!     that `value / ours` could be for a reader built on serde_json;
//!   - `floor`: `serde::de::IgnoredAny`, reading the JSON and nothing more;
//! - `payload-first`: the buffered path (`payload` before `eventType`), ours
//!   against strict;
//! - `verify`: `Webhook::verify_at` against a bare HMAC-SHA256 (a pre-keyed
//!   state, the same message fed in the same parts) and base64 of it;
//! - `receive`: `Webhook::receive_at` + `dispatch` against that HMAC plus the
//!   strict parse;
//! - `size`: `loyalty.addPoints` with a kept `lines` array of 1 KiB, 64 KiB and
//!   1 MiB: time per byte at the largest size against the smallest, which stays
//!   near 1 when parse time is linear in the body's size; the floor's beside it.
//!
//! The parse and verify groups run [`ROUNDS`] times, one round after the other,
//! and each contender keeps its lowest median. `cargo bench --bench speed` runs
//! it all and ends with the table of ratios; `scripts/bench-ratios` adds the
//! machine's description.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a benchmark"
)]

use std::convert::Infallible;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Bencher, BenchmarkId, Criterion};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::Sha256;
use voyado_webhooks::{Envelope, EventEnvelope, EventHandler, LoyaltyAddPoints, OffsetDateTime, Webhook};

#[path = "../tests/common/mod.rs"]
mod common;

use common::strict::{
    Strict, StrictEventId, StrictLoyaltyAddPoints, StrictPointBalanceUpdated, StrictPreference,
    StrictRewardVoucherCreated, StrictUnknown,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MESSAGE_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";

/// One line of the final table: `numerator / denominator` of two benchmarks'
/// medians, and the target it must meet.
struct Ratio {
    name: String,
    numerator: String,
    denominators: Vec<String>,
    target: Target,
    /// What the ratio of medians is multiplied by (1, but for per-byte ratios).
    scale: f64,
}

/// What a ratio must be.
#[derive(Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
    /// Shown for context, with no target.
    Reported,
}

impl Target {
    fn holds(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(limit) => ratio <= limit,
            Target::AtLeast(limit) => ratio >= limit,
            Target::Reported => true,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::AtMost(limit) => write!(f, "≤ {limit:.2}"),
            Target::AtLeast(limit) => write!(f, "≥ {limit:.2}"),
            Target::Reported => f.write_str("(reported)"),
        }
    }
}

/// The least a reader built on serde_json can do and still return what `ours`
/// returns: the same owned strings (ids, tenant, texts) and a kept unknown
/// payload, with every decimal, integer, timestamp and the event type skipped
/// unread, from text checked once as UTF-8 ([`read_bound`]). A reader of the
/// same values does all this and more, so `value / bound` is about the highest
/// `value / ours` that a body allows.
#[allow(dead_code, reason = "the fields are read, never looked at")]
mod bound {
    use serde::Deserialize;
    use serde::de::IgnoredAny;
    use serde_json::value::RawValue;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Bound<P> {
        pub event_type: IgnoredAny,
        #[serde(alias = "eventId")]
        pub id: String,
        pub is_encrypted: bool,
        pub payload: P,
        pub tenant: String,
    }

    pub type Unknown = Bound<Box<RawValue>>;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Preference {
        pub contact_id: String,
        pub accepts_email: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AddPoints {
        pub amount: IgnoredAny,
        pub contact_id: String,
        pub point_definition_id: IgnoredAny,
        pub source: Option<String>,
        pub description: Option<String>,
        pub user_id: Option<String>,
        pub user_name: Option<String>,
        pub reason: Option<String>,
        pub source_id: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Balance {
        pub balance: IgnoredAny,
        pub contact_id: String,
        pub account_id: IgnoredAny,
        pub definition_id: Option<String>,
        pub balance_expires: IgnoredAny,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Voucher {
        pub amount: IgnoredAny,
        pub contact_id: String,
        pub currency: Option<String>,
        pub id: String,
        pub unique_code: String,
        pub valid_from: IgnoredAny,
        pub valid_to: IgnoredAny,
    }
}

/// `point.balance.updated.json` with the payload first: the buffered path.
const PAYLOAD_FIRST: &str = r#"{
  "payload": {
    "balance": 250.0000,
    "contactId": "0a3f7c2e-51b4-4d8e-b1a2-8c9d0e1f2a3b",
    "accountId": 4711,
    "definitionId": "1",
    "balanceExpires": "2025-12-31T23:59:59+01:00"
  },
  "tenant": "nordicoutdoor",
  "isEncrypted": false,
  "id": "9d406172-be85-4a5f-9e97-5f6d4cb0df45",
  "eventType": "point.balance.updated"
}"#;

/// Times `routine` with criterion, keeping its output from the optimizer with
/// `std::hint::black_box` on a reference. Criterion 0.5's own `black_box`,
/// which `Bencher::iter` applies to what the closure returns, is a volatile
/// read on stable Rust: a copy of the output whose cost grows with its size
/// (328 bytes for an `EventEnvelope`, 32 for a `serde_json::Value`) and is
/// part of no parse. The output is still dropped inside the timed loop.
fn iter<O>(b: &mut Bencher<'_>, mut routine: impl FnMut() -> O) {
    b.iter(|| {
        let output = routine();
        black_box(&output);
    });
}

/// Reads `body` as `bound` does: one UTF-8 check of the whole body, as ours
/// makes, rather than serde_json's check of each string.
fn read_bound<B: for<'de> Deserialize<'de>>(body: &[u8]) -> B {
    serde_json::from_str(std::str::from_utf8(body).unwrap()).unwrap()
}

fn parse_group<S: for<'de> Deserialize<'de>, B: for<'de> Deserialize<'de>>(
    c: &mut Criterion,
    group: &str,
    body: &[u8],
    ratios: &mut Vec<Ratio>,
    round: u32,
) {
    // Every contender must read the body, or the race means nothing.
    EventEnvelope::from_slice(body).expect("ours");
    serde_json::from_slice::<S>(body).expect("strict");
    read_bound::<B>(body);
    let mut g = c.benchmark_group(group);
    g.bench_function(BenchmarkId::new("ours", round), |b| {
        iter(b, || EventEnvelope::from_slice(black_box(body)).unwrap())
    });
    g.bench_function(BenchmarkId::new("strict", round), |b| {
        iter(b, || serde_json::from_slice::<S>(black_box(body)).unwrap())
    });
    let payload_first = group.starts_with("payload-first");
    if !payload_first {
        g.bench_function(BenchmarkId::new("value", round), |b| {
            iter(b, || {
                serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("bound", round), |b| {
            iter(b, || read_bound::<B>(black_box(body)))
        });
        g.bench_function(BenchmarkId::new("floor", round), |b| {
            iter(b, || {
                serde_json::from_slice::<IgnoredAny>(black_box(body)).unwrap()
            })
        });
    }
    g.finish();
    if round > 0 {
        return;
    }

    // "a / b" of this group's contenders a and b.
    let ratio = |a: &str, b: &str, target: Target| Ratio {
        name: format!("{group}: {a} / {b}"),
        numerator: format!("{group}/{a}"),
        denominators: vec![format!("{group}/{b}")],
        target,
        scale: 1.0,
    };
    ratios.push(ratio(
        "ours",
        "strict",
        Target::AtMost(if payload_first { 1.5 } else { 1.25 }),
    ));
    if !payload_first {
        ratios.push(ratio("value", "ours", Target::AtLeast(1.5)));
        ratios.push(ratio("value", "bound", Target::Reported));
        ratios.push(ratio("ours", "floor", Target::Reported));
    }
}

/// The floor for any verifier: HMAC-SHA256 of `{id}.{timestamp}.{body}` from a
/// pre-keyed state, base64, compared with the header's signature.
fn bare_hmac(keyed: &Hmac<Sha256>, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let mut mac = keyed.clone();
    for part in [MESSAGE_ID.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
        mac.update(part);
    }
    let mut encoded = [0u8; 44];
    let len = STANDARD
        .encode_slice(mac.finalize().into_bytes(), &mut encoded)
        .unwrap();
    signature.as_bytes().get(3..) == encoded.get(..len)
}

struct Sink;

impl EventHandler for Sink {
    type Error = Infallible;

    fn loyalty_add_points(
        &self,
        _: &voyado_webhooks::Context,
        event: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), Infallible> {
        black_box(event);
        Ok(())
    }
}

fn verify_groups(c: &mut Criterion, ratios: &mut Vec<Ratio>, round: u32) {
    let body = common::fixture("loyalty.addPoints.json");
    let webhook = Webhook::new(SECRET).unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let timestamp = now.unix_timestamp().to_string();
    let signature = webhook.sign(MESSAGE_ID, now.unix_timestamp(), &body);
    let headers = [
        ("svix-id", MESSAGE_ID),
        ("svix-timestamp", timestamp.as_str()),
        ("svix-signature", signature.as_str()),
    ];
    let key = STANDARD.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    assert!(bare_hmac(&keyed, &timestamp, &body, &signature));
    webhook.verify_at(&headers[..], &body, now).unwrap();

    let mut g = c.benchmark_group("verify");
    g.bench_function(BenchmarkId::new("ours", round), |b| {
        iter(b, || {
            webhook
                .verify_at(black_box(&headers[..]), black_box(&body), now)
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("hmac", round), |b| {
        iter(b, || {
            assert!(bare_hmac(
                &keyed,
                black_box(&timestamp),
                black_box(&body),
                &signature
            ))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("receive");
    g.bench_function(BenchmarkId::new("ours", round), |b| {
        iter(b, || {
            let delivery = webhook
                .receive_at(black_box(&headers[..]), black_box(&body), now)
                .unwrap();
            delivery.event.dispatch(&delivery.context(), &Sink).unwrap();
        })
    });
    g.bench_function(BenchmarkId::new("strict", round), |b| {
        iter(b, || {
            serde_json::from_slice::<Strict<StrictLoyaltyAddPoints>>(black_box(&body)).unwrap()
        })
    });
    g.finish();
    if round > 0 {
        return;
    }

    ratios.push(Ratio {
        name: "verify: ours / bare HMAC".into(),
        numerator: "verify/ours".into(),
        denominators: vec!["verify/hmac".into()],
        target: Target::AtMost(1.1),
        scale: 1.0,
    });
    ratios.push(Ratio {
        name: "receive+dispatch / (bare HMAC + strict)".into(),
        numerator: "receive/ours".into(),
        denominators: vec!["verify/hmac".into(), "receive/strict".into()],
        target: Target::AtMost(1.25),
        scale: 1.0,
    });
}

/// A `loyalty.addPoints` delivery of about `size` bytes: its payload carries a
/// `lines` array that the crate keeps as received.
fn sized_body(size: usize) -> Vec<u8> {
    let line = r#"{"sku":"SKU-000123","quantity":2,"price":149.50,"name":"Trail shoe, \"Fjäll\" 42"},"#;
    let lines = line.repeat(size / line.len());
    format!(
        r#"{{"eventType":"loyalty.addPoints","id":"e-1","isEncrypted":false,"tenant":"acme","payload":{{"amount":100.10,"contactId":"c-1","lines":[{}]}}}}"#,
        lines.trim_end_matches(',')
    )
    .into_bytes()
}

/// Parse time per byte for growing bodies, ours and the floor: where the floor
/// slows per byte as much as ours, the machine (caches, branch prediction on a
/// body read over and over), not the parse, is what grows.
fn size_groups(c: &mut Criterion, ratios: &mut Vec<Ratio>) {
    const SIZES: [(&str, usize); 3] = [("1KiB", 1 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)];
    let mut g = c.benchmark_group("size");
    for (name, size) in SIZES {
        let body = sized_body(size);
        EventEnvelope::from_slice(&body).expect("ours");
        g.throughput(criterion::Throughput::Bytes(body.len() as u64));
        g.bench_function(BenchmarkId::new("ours", name), |b| {
            iter(b, || EventEnvelope::from_slice(black_box(&body)).unwrap())
        });
        g.bench_function(BenchmarkId::new("floor", name), |b| {
            iter(b, || {
                serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap()
            })
        });
    }
    g.finish();
    let (small, large) = (SIZES[0], SIZES[2]);
    let scale = sized_body(small.1).len() as f64 / sized_body(large.1).len() as f64;
    for (contender, target) in [("ours", Target::AtMost(1.5)), ("floor", Target::Reported)] {
        ratios.push(Ratio {
            name: format!("size: {contender}, time per byte, 1 MiB / 1 KiB"),
            numerator: format!("size/{contender}/{}", large.0),
            denominators: vec![format!("size/{contender}/{}", small.0)],
            target,
            scale,
        });
    }
}

/// How many times the parse and verify groups are measured, one after the
/// other. This machine's speed drifts by more than the targets' margins from
/// one second to the next (seen: the same code at 1100 and 2183 ns in one run);
/// a slow spell only ever adds time, so each contender's fastest round is the
/// one that tells.
const ROUNDS: u32 = 3;

/// The lowest median of a benchmark's rounds (`group/bench/round`), or the
/// median of a benchmark measured once (`group/bench`).
fn best_median_ns(id: &str, since: SystemTime) -> Option<f64> {
    let rounds = (0..ROUNDS).filter_map(|round| median_ns(&format!("{id}/{round}"), since));
    rounds.reduce(f64::min).or_else(|| median_ns(id, since))
}

/// The median criterion recorded for a benchmark since `since`, in nanoseconds.
fn median_ns(id: &str, since: SystemTime) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("criterion").join(id).join("new/estimates.json");
    // An older file is from another run: never mix runs in one ratio.
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates.pointer("/median/point_estimate")?.as_f64()
}

fn print_table(ratios: &[Ratio], since: SystemTime) {
    println!("\n| Ratio (best of {ROUNDS} rounds' medians) | Measured | Target | Holds |");
    println!("|---|---|---|---|");
    let mut all = true;
    for ratio in ratios {
        let numerator = best_median_ns(&ratio.numerator, since);
        let denominator: Option<f64> = ratio
            .denominators
            .iter()
            .map(|id| best_median_ns(id, since))
            .sum();
        match (numerator, denominator) {
            (Some(n), Some(d)) => {
                let r = n / d * ratio.scale;
                let holds = ratio.target.holds(r);
                all &= holds;
                println!(
                    "| {} | {r:.2} ({n:.0} ns / {d:.0} ns) | {} | {} |",
                    ratio.name,
                    ratio.target,
                    if holds { "yes" } else { "**no**" }
                );
            }
            _ => println!(
                "| {} | not measured in this run | {} | |",
                ratio.name, ratio.target
            ),
        }
    }
    println!("\nEvery target holds: {}", if all { "yes" } else { "no" });
}

fn main() {
    let start = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let mut ratios = Vec::new();
    let fixture = common::fixture;
    // Strings as real deliveries carry them: UUIDs, and free texts of 200
    // characters (one with a JSON escape), which the bundled fixtures keep short.
    let long = |text: &str| text.repeat(200 / text.len() + 1)[..200].to_owned();
    let long_points = String::from_utf8(fixture("loyalty.addPoints.json"))
        .unwrap()
        .replace("Birthday bonus", &long("Birthday bonus, "))
        .replace("Anna Lindqvist", &long("Anna Lindqvist \\u00e5 "))
        .replace("\"Birthday\"", &format!("\"{}\"", long("A birthday in May. ")));
    for round in 0..ROUNDS {
        let r = &mut ratios;
        parse_group::<Strict<StrictPreference>, bound::Bound<bound::Preference>>(
            &mut c,
            "contact.acceptsEmail.changed",
            &fixture("contact.acceptsEmail.changed.json"),
            r,
            round,
        );
        parse_group::<Strict<StrictLoyaltyAddPoints>, bound::Bound<bound::AddPoints>>(
            &mut c,
            "loyalty.addPoints",
            &fixture("loyalty.addPoints.json"),
            r,
            round,
        );
        parse_group::<Strict<StrictPointBalanceUpdated>, bound::Bound<bound::Balance>>(
            &mut c,
            "point.balance.updated",
            &fixture("point.balance.updated.json"),
            r,
            round,
        );
        parse_group::<StrictEventId<StrictRewardVoucherCreated>, bound::Bound<bound::Voucher>>(
            &mut c,
            "reward.voucher.created",
            &fixture("reward.voucher.created.json"),
            r,
            round,
        );
        parse_group::<StrictUnknown, bound::Unknown>(
            &mut c,
            "unknown.contact.created",
            &fixture("contact.created-unknown.json"),
            r,
            round,
        );
        parse_group::<Strict<StrictLoyaltyAddPoints>, bound::Bound<bound::AddPoints>>(
            &mut c,
            "long-strings.loyalty.addPoints",
            long_points.as_bytes(),
            r,
            round,
        );
        parse_group::<Strict<StrictPointBalanceUpdated>, bound::Bound<bound::Balance>>(
            &mut c,
            "payload-first.point.balance.updated",
            PAYLOAD_FIRST.as_bytes(),
            r,
            round,
        );
        verify_groups(&mut c, r, round);
    }
    size_groups(&mut c, &mut ratios);
    c.final_summary();
    print_table(&ratios, start);
}
