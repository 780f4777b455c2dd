//! The core's decision for one metered use, natively, for `cargo xtask bench`:
//! `tollgate::meter::track` of a Starter subscriber's workflow run (the VCM Suite
//! catalog: its tier, the limit's UTC day, the count to make), against a capability
//! check (`decide::can`) on the same entitlements as the baseline. Prints one JSON line,
//! `{"track_ns": [...], "can_ns": [...]}`, one figure per round, rounds by turns.

use std::hint::black_box;
use std::time::Instant;

use tollgate::billing::facts::Subject;
use tollgate::meter::{self, Track, Use};
use tollgate::{Catalog, Entitlements, Grant, Source, Status, Timestamp};

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;

fn per_op(mut f: impl FnMut() -> u32, ms: u128) -> f64 {
    let mut sink = 0u32;
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_millis() < ms {
        for _ in 0..1000 {
            sink ^= f();
        }
        n += 1000;
    }
    black_box(sink);
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let round_ms: u128 = std::env::var("BENCH_ROUND_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let catalog = Catalog::from_toml(include_str!("../../../catalogs/vcm-suite.toml")).expect("the VCM Suite catalog");
    let ents = Entitlements {
        subject: "user:u1".into(),
        grants: vec![Grant {
            id: "g1".into(),
            product: "suite".into(),
            tier: "starter".into(),
            source: Source::Stripe,
            status: Status::Active,
            valid_from: Timestamp(NOW - 86_400),
            valid_to: Some(Timestamp(NOW + 30 * 86_400)),
            past_due_since: None,
            offer: None,
            source_ref: None,
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        }],
        balances: Default::default(),
        until: None,
    };
    let subject = Subject::user("u1");
    let asked = Use { subject: &subject, idempotency_key: "run-1", feature: "workflow_runs_per_day", quantity: 1, scope: None, actor: None };
    let now = Timestamp(NOW);
    let track = || match meter::track(&catalog, black_box(&ents), black_box(&asked), 1, now) {
        Ok(Track::Allow(_, Some(c))) => c.request_id.len() as u32,
        other => panic!("a Starter run is counted: {other:?}"),
    };
    let can = || tollgate::decide::can(&catalog, black_box(&ents), "export_full_res", now).map(|d| d.allowed as u32).unwrap_or(7);
    let (mut t, mut c) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        t.push(format!("{:.1}", per_op(track, round_ms)));
        c.push(format!("{:.1}", per_op(can, round_ms)));
    }
    println!("{{\"track_ns\":[{}],\"can_ns\":[{}]}}", t.join(","), c.join(","));
}
