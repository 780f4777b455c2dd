//! Shared by the billing, credits and seats tests: the test catalog, the sample
//! events of this folder, and small helpers to edit and parse them.
#![allow(dead_code)]

use serde_json::Value;
use tollgate::billing::{
    parse_razorpay_event, parse_stripe_event, reduce, BillingState, Fact, FactBody, InvoicePaid, Item, Provider, Parsed, Subject,
};
use tollgate::{decide, Catalog, Timestamp};

/// 2026-03-01T00:00:00Z, the start of the sample story; then the next three month starts.
pub const T0: i64 = 1_772_323_200;
pub const P1E: i64 = 1_775_001_600;
pub const P2E: i64 = 1_777_593_600;
pub const P3E: i64 = 1_780_272_000;
pub const DAY: i64 = 86_400;

pub const CUS: &str = "stripe:cus_QXg1o8vcGmoR32";
pub const SUB: &str = "stripe:sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
pub const USER: &str = "user:u_123";

pub fn t(s: i64) -> Timestamp {
    Timestamp(s)
}

pub fn catalog() -> Catalog {
    Catalog::parse(include_str!("catalog.toml")).expect("the test catalog is valid")
}

/// One of the shipped catalogs (`catalogs/<name>.toml`).
pub fn shipped(name: &str) -> Catalog {
    let p = format!("{}/catalogs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Catalog::parse(&std::fs::read_to_string(&p).expect("shipped catalog")).expect("shipped catalog is valid")
}

/// A sample event body (`stripe/invoice.paid.basil.json`).
pub fn event(path: &str) -> String {
    let p = format!("{}/tests/events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn json(path: &str) -> Value {
    serde_json::from_str(&event(path)).expect("sample events are JSON")
}

/// The sample event with an edit applied.
pub fn edit(path: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut v = json(path);
    f(&mut v);
    serde_json::to_string(&v).unwrap()
}

/// Stripe's `data.object` of an event value.
pub fn obj(v: &mut Value) -> &mut Value {
    &mut v["data"]["object"]
}

pub fn stripe_facts(cat: &Catalog, raw: &str) -> Vec<Fact> {
    match parse_stripe_event(cat, raw) {
        Ok(Parsed::Facts { facts, .. }) => facts,
        Ok(Parsed::Ignored { reason, .. }) => panic!("ignored: {reason}"),
        Err(e) => panic!("parse error: {e}"),
    }
}

pub fn rzp_facts(cat: &Catalog, raw: &str) -> Vec<Fact> {
    match parse_razorpay_event(cat, raw, None) {
        Ok(Parsed::Facts { facts, .. }) => facts,
        Ok(Parsed::Ignored { reason, .. }) => panic!("ignored: {reason}"),
        Err(e) => panic!("parse error: {e}"),
    }
}

/// Facts of several sample files (Stripe or Razorpay by folder).
pub fn facts(cat: &Catalog, paths: &[&str]) -> Vec<Fact> {
    paths
        .iter()
        .flat_map(|p| if p.starts_with("razorpay/") { rzp_facts(cat, &event(p)) } else { stripe_facts(cat, &event(p)) })
        .collect()
}

pub fn fold(cat: &Catalog, facts: &[Fact], now: i64) -> BillingState {
    let st = reduce(cat, facts, t(now));
    st.check_invariants().expect("credit invariants hold");
    st
}

/// Does `subject` hold `tier` of `product` at `at`, per the state's grants?
pub fn access(cat: &Catalog, st: &BillingState, subject: &str, product: &str, tier: &str, at: i64) -> decide::Decision {
    decide::has_access(cat, &st.entitlements_for(subject), product, tier, t(at)).expect("valid question")
}

pub fn has(cat: &Catalog, st: &BillingState, subject: &str, product: &str, tier: &str, at: i64) -> bool {
    access(cat, st, subject, product, tier, at).allowed
}

/// The Stripe story of the sample files, first period: the subscription is
/// created, its first invoice paid, it turns active, the checkout completes.
pub const FIRST_PERIOD: &[&str] = &[
    "stripe/customer.subscription.created.basil.json",
    "stripe/invoice.paid.basil.json",
    "stripe/customer.subscription.updated.active.basil.json",
    "stripe/checkout.session.completed.subscription.json",
];

/// Stripe customer `customer` (without its `stripe:` prefix) is `user`'s, from `at`.
pub fn link(customer: &str, user: &str, at: i64) -> Fact {
    Fact::customer_link(Provider::Stripe, customer, Subject::user(user), t(at))
}

/// A paid invoice `in_{sub}_{k}` of `sub` (customer `cus_c`) for `[ps, pe)` with one item
/// of `offer`, paid at `at` for `amount` US cents by `pi_{sub}_{k}`.
pub fn paid_at(sub: &str, k: usize, offer: &str, ps: i64, pe: i64, at: i64, amount: i64) -> Fact {
    Fact {
        key: format!("stripe:invoice:in_{sub}_{k}:paid"),
        provider: Provider::Stripe,
        event: format!("evt_{sub}_{k}"),
        at: t(at),
        body: FactBody::InvoicePaid(InvoicePaid {
            id: format!("stripe:in_{sub}_{k}"),
            subscription: format!("stripe:{sub}"),
            customer: Some("stripe:cus_c".into()),
            items: vec![Item { price: None, offer: Some(offer.into()), quantity: 1 }],
            period_start: Some(t(ps)),
            period_end: Some(t(pe)),
            amount,
            currency: "usd".into(),
            payment_refs: vec![format!("stripe:pi_{sub}_{k}")],
        }),
        catalog_version: None,
    }
}
