//! Shared by the billing, credits and seats tests: the test catalog, the sample
//! events of this folder, and small helpers to edit and parse them.
#![allow(dead_code)]

use serde_json::{json, Value};
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

// Stripe events of the sample files, edited (API 2025-03-31 shapes).

/// A Stripe invoice line (API 2025-03-31 shape) of `price` for `[start, end)`.
#[allow(clippy::too_many_arguments)]
pub fn line(sub: &str, price: &str, amount: i64, quantity: i64, start: i64, end: i64, id: &str, proration: bool) -> Value {
    json!({
        "id": id, "object": "line_item", "amount": amount, "currency": "usd", "quantity": quantity,
        "parent": {"type": "subscription_item_details", "subscription_item_details": {
            "proration": proration, "subscription": sub, "subscription_item": "si_x"}},
        "period": {"start": start, "end": end},
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_x"}}
    })
}

/// The invoice event at `path` (a basil sample) as event `evt` at `at` of invoice `inv` of
/// `sub` / `cus` with `lines`; `more` edits the invoice further.
#[allow(clippy::too_many_arguments)]
fn invoice_event(path: &str, evt: &str, at: i64, inv: &str, sub: &str, cus: &str, lines: Value, more: impl FnOnce(&mut Value)) -> String {
    edit(path, |v| {
        v["id"] = json!(evt);
        v["created"] = json!(at);
        let o = obj(v);
        o["id"] = json!(inv);
        o["customer"] = json!(cus);
        o["parent"]["subscription_details"]["subscription"] = json!(sub);
        o["lines"]["data"] = lines;
        more(o);
    })
}

/// `invoice.paid` (basil sample) as invoice `inv` of `sub` / `cus`, event `evt` at `at`,
/// with `lines`, `amount_paid` and its payment intent `pi`.
#[allow(clippy::too_many_arguments)]
pub fn invoice_paid(evt: &str, at: i64, inv: &str, sub: &str, cus: &str, lines: Value, amount: i64, pi: &str) -> String {
    invoice_event("stripe/invoice.paid.basil.json", evt, at, inv, sub, cus, lines, |o| {
        o["amount_paid"] = json!(amount);
        o["amount_due"] = json!(amount);
        o["payments"]["data"][0]["payment"]["payment_intent"] = json!(pi);
        o["payments"]["data"][0]["amount_paid"] = json!(amount);
    })
}

/// `invoice.payment_failed` (basil sample) as invoice `inv` of `sub` / `cus` at `at`.
pub fn invoice_failed(evt: &str, at: i64, inv: &str, sub: &str, cus: &str, lines: Value, due: i64) -> String {
    invoice_event("stripe/invoice.payment_failed.basil.json", evt, at, inv, sub, cus, lines, |o| {
        o["amount_due"] = json!(due);
        o["amount_remaining"] = json!(due);
    })
}

/// `customer.subscription.updated` (basil sample) for `sub` of `cus`, at `at`, with one
/// item of `price` x `quantity` for `[ps, pe)`, `status`, and `more` edits.
#[allow(clippy::too_many_arguments)]
pub fn sub_updated(
    evt: &str,
    at: i64,
    sub: &str,
    cus: &str,
    price: &str,
    quantity: u32,
    status: &str,
    (ps, pe): (i64, i64),
    more: impl FnOnce(&mut Value),
) -> String {
    edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        v["id"] = json!(evt);
        v["created"] = json!(at);
        let o = obj(v);
        o["id"] = json!(sub);
        o["customer"] = json!(cus);
        o["status"] = json!(status);
        let it = &mut o["items"]["data"][0];
        it["price"]["id"] = json!(price);
        it["plan"]["id"] = json!(price);
        it["quantity"] = json!(quantity);
        it["current_period_start"] = json!(ps);
        it["current_period_end"] = json!(pe);
        more(o);
    })
}

/// The Org Seats team plan of the sample events: its Stripe subscription and customer.
pub const TEAM_SUB_ID: &str = "sub_1PgTeaB7WZ01zgkWteamplan";
pub const TEAM_CUS: &str = "cus_TeamOrg0001";

/// Acme's seat increase whose payment failed, as Stripe tells it: Acme's team plan
/// (`price_team_pro`) for 1 seat, its first invoice paid (2500); on day 10 (`up`, returned
/// with the facts) the quantity raised to 10, the proration invoice for the 9 more seats
/// failed a minute later (15300 due, after 1700 of the unused seat's credit), and the
/// subscription past due a minute after that.
pub fn failed_seat_increase(cat: &Catalog) -> (Vec<Fact>, i64) {
    let up = T0 + 10 * DAY;
    let plan = |evt: &str, at: i64, q: u32, status: &str| {
        sub_updated(evt, at, TEAM_SUB_ID, TEAM_CUS, "price_team_pro", q, status, (T0, P1E), |o| {
            o["metadata"] = json!({"org_id": "acme"});
        })
    };
    let mut fs = stripe_facts(cat, &plan("evt_team_1", T0 + 200, 1, "active"));
    let first = json!([line(TEAM_SUB_ID, "price_team_pro", 2500, 1, T0, P1E, "il_t1", false)]);
    fs.extend(stripe_facts(cat, &invoice_paid("evt_team_in1", T0 + 201, "in_team_1", TEAM_SUB_ID, TEAM_CUS, first, 2500, "pi_team_1")));
    fs.extend(stripe_facts(cat, &plan("evt_team_10", up, 10, "active")));
    let lines = json!([
        line(TEAM_SUB_ID, "price_team_pro", -1700, 1, up, P1E, "il_unused_1", true),
        line(TEAM_SUB_ID, "price_team_pro", 17000, 10, up, P1E, "il_rest_10", true),
    ]);
    fs.extend(stripe_facts(cat, &invoice_failed("evt_team_fail", up + 60, "in_team_up", TEAM_SUB_ID, TEAM_CUS, lines, 15300)));
    fs.extend(stripe_facts(cat, &plan("evt_team_pd", up + 120, 10, "past_due")));
    (fs, up)
}
