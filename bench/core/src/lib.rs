//! The work a webhook costs the core, for `cargo xtask bench`: verify the
//! `Stripe-Signature` of a ~4 KB `invoice.paid` event (Stripe's own example object,
//! current API shape, compact JSON), parse it into facts, and fold them with the
//! facts the worker would load for that subscription (its checkout and its
//! `customer.subscription.created`), as the worker does for every delivery.
//!
//! [`setup`] prepares the inputs once; [`run`] does the work `n` times. The host
//! times `run` (natively with `Instant`, in Node with `process.hrtime`).

use std::sync::OnceLock;

use tollgate::billing::{parse_stripe_event, reduce, Fact, Parsed};
use tollgate::verify::StripeVerifier;
use tollgate::{Catalog, Timestamp};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen::prelude::wasm_bindgen;

const SECRET: &str = "whsec_bench_local_only";
/// 2026-03-01T00:00:10Z: the event's signing time and the verifier's clock.
const NOW: i64 = 1_772_323_210;

struct Inputs {
    catalog: Catalog,
    verifier: StripeVerifier,
    event: String,
    header: String,
    related: Vec<Fact>,
}

static INPUTS: OnceLock<Inputs> = OnceLock::new();

fn compact(json: &str) -> String {
    serde_json::to_string(&serde_json::from_str::<serde_json::Value>(json).expect("valid JSON")).expect("serialises")
}

fn facts(catalog: &Catalog, raw: &str) -> Vec<Fact> {
    match parse_stripe_event(catalog, raw).expect("a sample event parses") {
        Parsed::Facts { facts, .. } => facts,
        Parsed::Ignored { reason, .. } => panic!("a sample event was ignored: {reason}"),
    }
}

fn inputs() -> &'static Inputs {
    INPUTS.get_or_init(|| {
        let catalog = Catalog::parse(include_str!("../../../tests/events/catalog.toml")).expect("the test catalog");
        let event = compact(include_str!("../../../tests/events/stripe/invoice.paid.basil.json"));
        let header = tollgate::verify::sign_stripe(event.as_bytes(), SECRET, Timestamp(NOW));
        let mut related = facts(&catalog, &compact(include_str!("../../../tests/events/stripe/checkout.session.completed.subscription.json")));
        related.extend(facts(&catalog, &compact(include_str!("../../../tests/events/stripe/customer.subscription.created.basil.json"))));
        let verifier = StripeVerifier::new([SECRET]).expect("a valid secret");
        Inputs { catalog, verifier, event, header, related }
    })
}

/// The whole work once; returns a small number derived from the result, so that
/// nothing can be optimised away.
fn once(i: &Inputs) -> u32 {
    let now = Timestamp(NOW);
    i.verifier.verify(i.event.as_bytes(), Some(&i.header), now).expect("the signature verifies");
    let mut all = i.related.clone();
    all.extend(facts(&i.catalog, &i.event));
    let st = reduce(&i.catalog, &all, now);
    (st.subjects.len() + st.subscriptions.len() * 2 + st.payments.len() * 4) as u32
}

/// Prepares the inputs and checks the work gives the expected state; returns the
/// event's size in bytes.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen)]
pub fn setup() -> u32 {
    let i = inputs();
    let st = {
        let mut all = i.related.clone();
        all.extend(facts(&i.catalog, &i.event));
        reduce(&i.catalog, &all, Timestamp(NOW))
    };
    assert!(st.pending.is_empty(), "every fact is attributed");
    assert!(
        st.subjects.values().any(|s| s.grants.iter().any(|g| g.product == "studio")),
        "the invoice's subscription grants the studio product"
    );
    i.event.len() as u32
}

/// Does the work `n` times.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen)]
pub fn run(n: u32) -> u32 {
    let i = inputs();
    let mut acc = 0u32;
    for _ in 0..n {
        acc = acc.wrapping_add(once(i));
    }
    acc
}
