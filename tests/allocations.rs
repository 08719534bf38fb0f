//! Heap allocations, counted by a global allocator: parsing allocates once per
//! owned string it hands back plus at most `PARSE_OVERHEAD`; its peak heap is at
//! most `PEAK_PER_BODY_BYTE` times the body, whatever the body's size or
//! nesting; and verifying a delivery allocates `VERIFY_ALLOCATIONS` times (none)
//! whatever the body's size.
//!
//! Runs without the test harness (`harness = false`), so no other thread
//! allocates while a count is taken.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a test fails by panicking"
)]

mod common;

use peak_alloc::PeakAlloc;
use stats_alloc::{Region, StatsAlloc};
use voyado_webhooks::{Envelope, EventEnvelope, EventType, Extra};

/// Counts allocations (`stats_alloc`) around an allocator that tracks the peak
/// of bytes in use (`peak_alloc`, whose counters are global).
#[global_allocator]
static GLOBAL: StatsAlloc<PeakAlloc> = StatsAlloc::new(PeakAlloc);

/// The most heap a parse may use at its peak, per byte of body.
const PEAK_PER_BODY_BYTE: usize = 5;

/// Allocations beyond the owned strings: the `extra` vectors (envelope and
/// payload), one allocation each when first used and one more per doubling past
/// 4 entries. The fixtures keep at most 7 unknown fields per object; the largest
/// overhead measured on them is 3.
const PARSE_OVERHEAD: usize = 3;

/// Verifying allocates nothing: the HMAC state is copied on the stack, signatures
/// are decoded on the stack, and the message id is borrowed from the headers.
#[cfg(feature = "verify")]
const VERIFY_ALLOCATIONS: usize = 0;

/// Allocations and reallocations while `f` runs.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(&GLOBAL);
    let out = f();
    let change = region.change();
    (out, change.allocations + change.reallocations)
}

/// Owned strings in `extra`: each key and each value.
fn kept(extra: &Extra) -> usize {
    extra.len() * 2
}

/// Owned strings in the envelope, besides its payload.
fn envelope<P>(event: &Envelope<P>) -> usize {
    usize::from(event.id.is_some())
        + usize::from(event.tenant.is_some())
        + usize::from(matches!(event.event_type, EventType::Other(_)))
        + kept(&event.extra)
}

/// Every owned string (or kept JSON text) in a parsed event.
fn owned_strings(event: &EventEnvelope) -> usize {
    let some = |s: &Option<String>| usize::from(s.is_some());
    match event {
        EventEnvelope::ContactAcceptsEmailChanged(e)
        | EventEnvelope::ContactAcceptsSmsChanged(e)
        | EventEnvelope::ContactAcceptsPostalChanged(e) => envelope(e) + 1 + kept(&e.payload.extra),
        EventEnvelope::LoyaltyAddPoints(e) => {
            let p = &e.payload;
            envelope(e)
                + 1
                + [
                    &p.source,
                    &p.description,
                    &p.user_id,
                    &p.user_name,
                    &p.reason,
                    &p.source_id,
                ]
                .into_iter()
                .map(some)
                .sum::<usize>()
                + kept(&p.extra)
        }
        EventEnvelope::PointBalanceUpdated(e) => {
            envelope(e) + 1 + some(&e.payload.definition_id) + kept(&e.payload.extra)
        }
        EventEnvelope::RewardVoucherCreated(e) => {
            envelope(e) + 3 + some(&e.payload.currency) + kept(&e.payload.extra)
        }
        EventEnvelope::Encrypted(e) | EventEnvelope::Unknown(e) => envelope(e) + 1,
        other => panic!("a new variant to count: {other:?}"),
    }
}

fn parsing_allocates_once_per_owned_string() {
    println!("parse: allocations / owned strings (allowed: owned + {PARSE_OVERHEAD})");
    for name in common::all_fixture_names() {
        let body = common::fixture(&name);
        let (event, count) = allocations(|| EventEnvelope::from_slice(&body));
        let event = event.unwrap();
        let owned = owned_strings(&event);
        println!("  {name:<60} {count:>3} / {owned:>3}");
        assert!(
            count <= owned + PARSE_OVERHEAD,
            "{name}: {count} allocations for {owned} owned strings"
        );
    }
}

#[cfg(feature = "verify")]
fn verifying_allocates_a_constant() {
    use voyado_webhooks::{OffsetDateTime, Webhook};

    let webhook = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    println!("verify: allocations by body size (allowed: {VERIFY_ALLOCATIONS})");
    for size in [0, 500, 64 * 1024, 4 * 1024 * 1024] {
        let body = vec![b'x'; size];
        let signature = webhook.sign("msg_1", now.unix_timestamp(), &body);
        // Several entries, as during a key rotation: each is checked.
        let signatures = format!("v1,AAAA v1,{signature} {signature}").replace("v1,v1,", "v1,");
        let timestamp = now.unix_timestamp().to_string();
        let headers = [
            ("svix-id", "msg_1"),
            ("svix-timestamp", timestamp.as_str()),
            ("svix-signature", signatures.as_str()),
        ];
        let (verified, count) = allocations(|| webhook.verify_at(&headers[..], &body, now));
        verified.unwrap();
        println!("  {size:>8} bytes: {count}");
        assert_eq!(count, VERIFY_ALLOCATIONS, "{size}-byte body");
    }
}

/// The peak of heap bytes in use while `f` runs, above what was in use before.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = PeakAlloc.current_usage();
    PeakAlloc.reset_peak_usage();
    let out = f();
    (out, PeakAlloc.peak_usage().saturating_sub(before))
}

/// A `loyalty.addPoints` delivery of about `size` bytes, most of it a kept array.
fn sized_body(size: usize) -> Vec<u8> {
    let line = r#"{"sku":"SKU-000123","quantity":2,"price":149.50,"name":"Trail shoe, \"Fjäll\" 42"},"#;
    let lines = line.repeat(size / line.len());
    format!(
        r#"{{"eventType":"loyalty.addPoints","id":"e-1","payload":{{"amount":1,"contactId":"c","lines":[{}]}}}}"#,
        lines.trim_end_matches(',')
    )
    .into_bytes()
}

fn peak_heap_is_linear_in_the_body() {
    println!("parse: peak heap / body bytes (allowed: {PEAK_PER_BODY_BYTE})");
    let deep = |open: usize, close: usize| {
        format!(
            r#"{{"eventType":"x.y","payload":{{}},"deep":{}{}}}"#,
            "[".repeat(open),
            "]".repeat(close)
        )
        .into_bytes()
    };
    let cases = [
        ("1 KiB", sized_body(1 << 10), true),
        ("64 KiB", sized_body(64 << 10), true),
        ("4 MiB", sized_body(4 << 20), true),
        ("10 MB of [, unclosed", deep(10_000_000, 0), false),
        ("1 MB deep, closed", deep(1_000_000, 1_000_000), false),
    ];
    for (name, body, parses) in cases {
        let (event, peak) = peak_heap(|| EventEnvelope::from_slice(&body));
        assert_eq!(event.is_ok(), parses, "{name}");
        let per_byte = peak as f64 / body.len() as f64;
        println!(
            "  {name:<24} {:>10} bytes: peak {peak:>10} ({per_byte:.2} per byte)",
            body.len()
        );
        assert!(peak <= PEAK_PER_BODY_BYTE * body.len(), "{name}: peak {peak}");
    }
}

fn main() {
    parsing_allocates_once_per_owned_string();
    peak_heap_is_linear_in_the_body();
    #[cfg(feature = "verify")]
    verifying_allocates_a_constant();
    println!("allocations: ok");
}
