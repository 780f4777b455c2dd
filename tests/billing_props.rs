//! Property tests over generated event streams.
//!
//! A stream is a few customers' realistic lifecycles: Stripe (in the API shape
//! before or after 2025-03-31) or Razorpay; a checkout, the app's own customer
//! link or subscription metadata naming the buyer; periods renewed, paid after
//! a failure, left unpaid, refunded (at once, or half and, after the next renewal,
//! the rest) or disputed (disputes left open, won, closed
//! as an inquiry, or lost); invoices of the 2025-03-31 shape whose payment is
//! linked by `invoice_payment.paid` instead of listed; cancellation at the period
//! end or deletion; token purchases (some refunded or disputed, whole or in part); usage; seat
//! assignments for organizations; and the duplicate deliveries providers make
//! (redeliveries, invoice.paid next to invoice.payment_succeeded, Razorpay's
//! order.paid next to payment.captured). Every event
//! is a webhook body built from the sample events and parsed by the real parser
//! (from the JSON value, to keep thousands of streams fast; the string entry
//! points only add `serde_json::from_str`).
//!
//! Properties: idempotence (duplicates change nothing), order independence (any
//! permutation with duplicates folds to the same state), a won dispute leaves no
//! trace (the state equals the state without its facts), the incremental reducer
//! agrees with the fold, losslessness (without its attribution a fact waits in
//! `pending`, and it applies when the attribution arrives), and the credit
//! invariants (no negative balance, ledger sums equal balances, each ledger key
//! once, every usage unit either taken from a lot or billed as overage).
//!
//! Runs are deterministic (the random generator starts from a fixed value) and
//! write no regression files.

#[path = "events/support.rs"]
mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use support::*;
use tollgate::billing::*;
use tollgate::Catalog;

const HOUR: i64 = 3600;
const MONTH: i64 = 30 * DAY;

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x7011_6a7e_b111),
        failure_persistence: None,
        max_shrink_iters: 4000,
        ..Config::default()
    }
}

struct Templates {
    sub_basil: Value,
    sub_acacia: Value,
    inv_basil: Value,
    inv_acacia: Value,
    co_sub: Value,
    co_pay: Value,
    refund: Value,
    dispute: Value,
    dispute_closed: Value,
    invoice_payment: Value,
    rz_charged: Value,
    rz_captured: Value,
    rz_refund: Value,
    rz_dispute: Value,
}

/// Keeps every scalar field of a Stripe object and only the nested objects the
/// parser reads (the sample events are parsed whole in `billing_parse`); a
/// smaller body keeps thousands of generated streams fast.
fn slim(v: &mut Value, keep: &[&str]) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, x| !(x.is_object() || x.is_array()) || keep.contains(&k.as_str()));
        for (_, x) in m.iter_mut() {
            match x {
                Value::Array(a) => a.iter_mut().for_each(|e| slim(e, keep)),
                Value::Object(_) => slim(x, keep),
                _ => {}
            }
        }
    }
}

fn stripe_tpl(path: &str) -> Value {
    let mut v = json(path);
    const KEEP: &[&str] = &[
        "data",
        "object",
        "items",
        "metadata",
        "lines",
        "parent",
        "payments",
        "line_items",
        "price",
        "plan",
        "pricing",
        "price_details",
        "period",
        "subscription_details",
        "subscription_item_details",
        "payment",
        "refunds",
    ];
    slim(&mut v, KEEP);
    v
}

fn tpl() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| Templates {
        sub_basil: stripe_tpl("stripe/customer.subscription.updated.active.basil.json"),
        sub_acacia: stripe_tpl("stripe/customer.subscription.updated.renewed.acacia.json"),
        inv_basil: stripe_tpl("stripe/invoice.paid.basil.json"),
        inv_acacia: stripe_tpl("stripe/invoice.payment_succeeded.acacia.json"),
        co_sub: stripe_tpl("stripe/checkout.session.completed.subscription.json"),
        co_pay: stripe_tpl("stripe/checkout.session.completed.payment.json"),
        refund: stripe_tpl("stripe/charge.refunded.json"),
        dispute: stripe_tpl("stripe/charge.dispute.created.json"),
        dispute_closed: stripe_tpl("stripe/charge.dispute.closed.won.json"),
        invoice_payment: stripe_tpl("stripe/invoice_payment.paid.basil.json"),
        rz_charged: json("razorpay/subscription.charged.json"),
        rz_captured: json("razorpay/payment.captured.json"),
        rz_refund: json("razorpay/refund.processed.json"),
        rz_dispute: json("razorpay/payment.dispute.created.json"),
    })
}

fn cat() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(catalog)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Acacia,
    Basil,
    Razorpay,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Attr {
    Checkout,
    Link,
    Metadata,
}

/// How a dispute ends (if it does, within the stream).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Close {
    Open,
    Won,
    /// An inquiry closed without a chargeback (Stripe `warning_closed`).
    InquiryClosed,
    Lost,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pay {
    Paid,
    FailThenPaid,
    FailOnly,
    Refunded,
    /// Refunded half a few days in, the rest after the next renewal.
    RefundedInHalves,
    Disputed(Close),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    Runs,
    CanceledAtPeriodEnd(usize),
    DeletedNow(usize, i64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Reverse {
    Keep,
    Partial,
    Full,
    Dispute(Close),
    /// A dispute of half the payment.
    DisputedPart(Close),
    /// Two refunds of half the payment each (Razorpay: the second told without the payment).
    InHalves,
}

#[derive(Clone, Debug)]
struct Customer {
    shape: Shape,
    org: bool,
    offer: usize,
    quantity: u32,
    start_h: i64,
    periods: Vec<Pay>,
    attr: Attr,
    end: Ending,
    dup_paid: bool,
    /// API 2025-03-31 shape: the invoice without `payments`; `invoice_payment.paid` links
    /// the payment intent to it.
    pay_links: bool,
    link_h: i64,
    purchases: Vec<(i64, usize, Reverse)>,
    usage: Vec<(i64, u64, usize)>,
    seats: Vec<(i64, u8, bool)>,
}

fn pay() -> impl Strategy<Value = Pay> {
    prop_oneof![
        5 => Just(Pay::Paid),
        2 => Just(Pay::FailThenPaid),
        1 => Just(Pay::FailOnly),
        1 => Just(Pay::Refunded),
        1 => Just(Pay::RefundedInHalves),
        2 => close().prop_map(Pay::Disputed),
    ]
}

fn close() -> impl Strategy<Value = Close> {
    prop_oneof![Just(Close::Open), Just(Close::Won), Just(Close::InquiryClosed), Just(Close::Lost)]
}

fn customer() -> impl Strategy<Value = Customer> {
    let who = (
        prop_oneof![Just(Shape::Acacia), Just(Shape::Basil), Just(Shape::Razorpay)],
        prop::bool::weighted(0.3),
        0..3usize,
        1..4u32,
        0..500i64,
        prop_oneof![Just(Attr::Checkout), Just(Attr::Link), Just(Attr::Metadata)],
    );
    let life = (
        prop::collection::vec(pay(), 1..4),
        (0..3u8, 0..4usize, 1..700i64),
        (any::<bool>(), any::<bool>()),
        0..3500i64,
    );
    let extras = (
        prop::collection::vec(
            (
                0..3000i64,
                0..3usize,
                prop_oneof![
                    3 => Just(Reverse::Keep),
                    1 => Just(Reverse::Partial),
                    1 => Just(Reverse::Full),
                    2 => close().prop_map(Reverse::Dispute),
                    1 => close().prop_map(Reverse::DisputedPart),
                    1 => Just(Reverse::InHalves),
                ],
            ),
            0..3,
        ),
        prop::collection::vec((0..3000i64, 1..4000u64, 0..3usize), 0..6),
        prop::collection::vec((0..3000i64, 0..5u8, prop::bool::weighted(0.8)), 0..6),
    );
    (who, life, extras).prop_map(|(who, life, extras)| {
        let (shape, org, offer, quantity, start_h, attr) = who;
        let (periods, (end_kind, end_k, end_h), (dup_paid, pay_links), link_h) = life;
        let (purchases, usage, seats) = extras;
        let end = match end_kind {
            0 => Ending::Runs,
            1 => Ending::CanceledAtPeriodEnd(end_k),
            _ => Ending::DeletedNow(end_k, end_h),
        };
        Customer {
            shape,
            org,
            offer,
            quantity,
            start_h,
            periods,
            attr,
            end,
            dup_paid,
            pay_links,
            link_h,
            purchases,
            usage,
            seats,
        }
    })
}

fn scenario() -> impl Strategy<Value = Vec<Customer>> {
    prop::collection::vec(customer(), 1..4)
}

const USER_PRICES: [&str; 3] = ["price_1PgafmB7WZ01zgkW6dKueIc5", "price_pro_monthly", "price_bundle_two"];
const USER_OFFERS: [&str; 3] = ["STUDIO_BASIC_MONTHLY", "STUDIO_PRO_MONTHLY", "BUNDLE_TWO_PRO_MONTHLY"];
const USER_PLANS: [&str; 3] = ["plan_basic_monthly", "plan_pro_monthly", "plan_bundle_two"];
const ORG_PRICES: [&str; 3] = ["price_team_pro", "price_team_business", "price_team_pro"];
const ORG_OFFERS: [&str; 3] = ["TEAM_PROFESSIONAL_MONTHLY", "TEAM_BUSINESS_MONTHLY", "TEAM_PROFESSIONAL_MONTHLY"];
const CLOUDS: [&str; 3] = ["video,writing", "writing,music", "music,video"];
const TOKEN_OFFERS: [&str; 3] = ["TOKENS_30_MIN", "TOKENS_2_HOURS", "AI_TOPUP_500"];
const TOKEN_PRICES: [i64; 3] = [1900, 5900, 19900];
const TOKEN_CURRENCIES: [&str; 3] = ["USD", "USD", "INR"];
const POOLS: [&str; 3] = ["video_seconds", "ai_credits", "free_drafts"];

/// Builds one customer's events and parses them.
struct Emitter<'a> {
    c: &'a Customer,
    n: usize,
    out: Vec<Fact>,
    evt: usize,
}

impl Emitter<'_> {
    fn subject(&self) -> Subject {
        if self.c.org {
            Subject::org(format!("o{}", self.n))
        } else {
            Subject::user(format!("u{}", self.n))
        }
    }
    fn id(&self) -> String {
        self.subject().id
    }
    fn bundle(&self) -> bool {
        !self.c.org && self.c.offer == 2
    }
    fn offer(&self) -> &'static str {
        if self.c.org {
            ORG_OFFERS[self.c.offer]
        } else {
            USER_OFFERS[self.c.offer]
        }
    }
    fn price(&self) -> &'static str {
        if self.c.org {
            ORG_PRICES[self.c.offer]
        } else {
            USER_PRICES[self.c.offer]
        }
    }
    fn plan(&self) -> &'static str {
        if self.c.org {
            "plan_team_pro"
        } else {
            USER_PLANS[self.c.offer]
        }
    }
    fn meta(&self, with_subject: bool) -> Value {
        let mut m = json!({});
        if with_subject {
            m[if self.c.org { "org_id" } else { "user_id" }] = json!(self.id());
        }
        if self.bundle() {
            m["clouds"] = json!(CLOUDS[self.n % 3]);
        }
        m
    }
    fn next_evt(&mut self) -> String {
        self.evt += 1;
        format!("evt_{}_{}", self.n, self.evt)
    }
    fn stripe(&mut self, v: Value) {
        match parse_stripe_value(cat(), &v) {
            Ok(Parsed::Facts { facts, .. }) => self.out.extend(facts),
            other => panic!("{other:?}"),
        }
    }
    fn razorpay(&mut self, v: Value) {
        let id = self.next_evt();
        match parse_razorpay_value(cat(), &v, Some(&id)) {
            Ok(Parsed::Facts { facts, .. }) => self.out.extend(facts),
            other => panic!("{other:?}"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn snapshot(&mut self, ty: &str, status: &str, ps: i64, pe: i64, at: i64, cancel: bool, ended: Option<i64>) {
        let basil = self.c.shape == Shape::Basil;
        let mut v = if basil { tpl().sub_basil.clone() } else { tpl().sub_acacia.clone() };
        v["id"] = json!(self.next_evt());
        v["type"] = json!(ty);
        v["created"] = json!(at);
        let meta = self.meta(self.c.attr == Attr::Metadata);
        let (n, q, price) = (self.n, self.c.quantity, self.price());
        let o = obj(&mut v);
        o["id"] = json!(format!("sub_{n}"));
        o["customer"] = json!(format!("cus_{n}"));
        o["status"] = json!(status);
        o["metadata"] = meta;
        o["cancel_at_period_end"] = json!(cancel);
        o["cancel_at"] = if cancel { json!(pe) } else { json!(null) };
        o["ended_at"] = json!(ended);
        let it = &mut o["items"]["data"][0];
        it["price"]["id"] = json!(price);
        it["plan"]["id"] = json!(price);
        it["quantity"] = json!(q);
        if basil {
            it["current_period_start"] = json!(ps);
            it["current_period_end"] = json!(pe);
        } else {
            o["current_period_start"] = json!(ps);
            o["current_period_end"] = json!(pe);
        }
        self.stripe(v);
    }

    fn invoice(&mut self, ty: &str, k: usize, ps: i64, pe: i64, at: i64, attempt: u32) {
        let basil = self.c.shape == Shape::Basil;
        let mut v = if basil { tpl().inv_basil.clone() } else { tpl().inv_acacia.clone() };
        v["id"] = json!(self.next_evt());
        v["type"] = json!(ty);
        v["created"] = json!(at);
        let (n, q, price) = (self.n, self.c.quantity, self.price());
        let paid = ty != "invoice.payment_failed";
        let o = obj(&mut v);
        let sub = format!("sub_{n}");
        o["id"] = json!(format!("in_{n}_{k}"));
        o["customer"] = json!(format!("cus_{n}"));
        o["status"] = json!(if paid { "paid" } else { "open" });
        o["attempt_count"] = json!(attempt);
        o["amount_paid"] = json!(if paid { 2900 } else { 0 });
        let line = &mut o["lines"]["data"][0];
        line["period"] = json!({"start": ps, "end": pe});
        line["quantity"] = json!(q);
        if basil {
            line["pricing"]["price_details"]["price"] = json!(price);
            line["parent"]["subscription_item_details"]["subscription"] = json!(sub);
            o["parent"]["subscription_details"]["subscription"] = json!(sub);
            if self.c.pay_links {
                o.as_object_mut().unwrap().remove("payments");
            } else {
                o["payments"]["data"][0]["payment"]["payment_intent"] = json!(format!("pi_{n}_{k}"));
            }
        } else {
            line["price"]["id"] = json!(price);
            line["plan"]["id"] = json!(price);
            line["subscription"] = json!(sub);
            o["subscription"] = json!(sub);
            o["charge"] = json!(format!("ch_{n}_{k}"));
            o["payment_intent"] = json!(format!("pi_{n}_{k}"));
        }
        self.stripe(v);
        if basil && paid && self.c.pay_links {
            let mut v = tpl().invoice_payment.clone();
            v["id"] = json!(self.next_evt());
            v["created"] = json!(at);
            let o = obj(&mut v);
            o["id"] = json!(format!("inpay_{n}_{k}"));
            o["invoice"] = json!(format!("in_{n}_{k}"));
            o["payment"]["payment_intent"] = json!(format!("pi_{n}_{k}"));
            self.stripe(v);
        }
    }

    fn checkout_sub(&mut self, at: i64) {
        let mut v = tpl().co_sub.clone();
        v["id"] = json!(self.next_evt());
        v["created"] = json!(at);
        let mut meta = self.meta(false);
        meta["offer_key"] = json!(self.offer());
        let (n, id) = (self.n, self.id());
        let o = obj(&mut v);
        o["id"] = json!(format!("cs_{n}"));
        o["customer"] = json!(format!("cus_{n}"));
        o["subscription"] = json!(format!("sub_{n}"));
        o["invoice"] = json!(format!("in_{n}_0"));
        o["client_reference_id"] = json!(id);
        o["metadata"] = meta;
        self.stripe(v);
    }

    fn refund(&mut self, ch: String, pi: String, amount: i64, refunded: i64, at: i64) {
        let mut v = tpl().refund.clone();
        v["id"] = json!(self.next_evt());
        v["created"] = json!(at);
        let o = obj(&mut v);
        o["id"] = json!(ch);
        o["payment_intent"] = json!(pi);
        o["amount"] = json!(amount);
        o["amount_refunded"] = json!(refunded);
        self.stripe(v);
    }

    /// A dispute of `amount` opened at `at` and, unless it stays open, closed ten days later.
    fn dispute(&mut self, ch: String, pi: String, amount: i64, at: i64, close: Close) {
        let mut v = tpl().dispute.clone();
        v["id"] = json!(self.next_evt());
        v["created"] = json!(at);
        let d = format!("dp_{}_{}", self.n, self.evt);
        let inquiry = close == Close::InquiryClosed;
        let o = obj(&mut v);
        o["id"] = json!(d);
        o["charge"] = json!(ch);
        o["payment_intent"] = json!(pi);
        o["status"] = json!(if inquiry { "warning_needs_response" } else { "needs_response" });
        o["amount"] = json!(amount);
        self.stripe(v);
        let status = match close {
            Close::Open => return,
            Close::Won => "won",
            Close::InquiryClosed => "warning_closed",
            Close::Lost => "lost",
        };
        let mut v = tpl().dispute_closed.clone();
        v["id"] = json!(self.next_evt());
        v["created"] = json!(at + 10 * DAY);
        let o = obj(&mut v);
        o["id"] = json!(d);
        o["charge"] = json!(ch);
        o["payment_intent"] = json!(pi);
        o["status"] = json!(status);
        o["amount"] = json!(amount);
        self.stripe(v);
    }

    #[allow(clippy::too_many_arguments)]
    fn rz_sub(&mut self, ty: &str, status: &str, ps: i64, pe: i64, at: i64, k: usize, paid: bool) {
        let mut v = tpl().rz_charged.clone();
        v["event"] = json!(ty);
        v["created_at"] = json!(at);
        let notes = if self.c.attr == Attr::Link { self.meta(false) } else { self.meta(true) };
        let (n, q, plan) = (self.n, self.c.quantity, self.plan());
        let s = &mut v["payload"]["subscription"]["entity"];
        s["id"] = json!(format!("sub_rz{n}"));
        s["customer_id"] = json!(format!("cust_{n}"));
        s["plan_id"] = json!(plan);
        s["status"] = json!(status);
        s["current_start"] = json!(ps);
        s["current_end"] = json!(pe);
        s["quantity"] = json!(q);
        s["paid_count"] = json!(k + 1);
        s["notes"] = if notes.as_object().unwrap().is_empty() { json!([]) } else { notes };
        if paid {
            let p = &mut v["payload"]["payment"]["entity"];
            p["id"] = json!(format!("pay_{n}_{k}"));
            p["invoice_id"] = json!(format!("inv_{n}_{k}"));
            p["created_at"] = json!(at - 5);
        } else {
            v["payload"].as_object_mut().unwrap().remove("payment");
            v["contains"] = json!(["subscription"]);
        }
        self.razorpay(v);
    }

    fn rz_reverse(&mut self, pay: String, amount: i64, refunded: i64, dispute: Option<Close>, at: i64) {
        let mut v = if dispute.is_some() { tpl().rz_dispute.clone() } else { tpl().rz_refund.clone() };
        v["created_at"] = json!(at);
        self.evt += 1;
        let rid = format!("x_{}_{}", self.n, self.evt);
        if let Some(close) = dispute {
            v["payload"]["dispute"]["entity"]["id"] = json!(rid);
            v["payload"]["dispute"]["entity"]["payment_id"] = json!(pay);
            v["payload"]["dispute"]["entity"]["amount"] = json!(refunded);
            v["payload"]["payment"]["entity"]["id"] = json!(pay);
            v["payload"]["payment"]["entity"]["amount"] = json!(amount);
            self.razorpay(v.clone());
            let (ev, status) = match close {
                Close::Open => return,
                Close::Won | Close::InquiryClosed => ("payment.dispute.won", "won"),
                Close::Lost => ("payment.dispute.lost", "lost"),
            };
            v["event"] = json!(ev);
            v["created_at"] = json!(at + 10 * DAY);
            v["payload"]["dispute"]["entity"]["status"] = json!(status);
        } else {
            v["payload"]["refund"]["entity"]["id"] = json!(rid);
            v["payload"]["refund"]["entity"]["payment_id"] = json!(pay);
            v["payload"]["refund"]["entity"]["amount"] = json!(refunded);
            v["payload"]["payment"]["entity"]["id"] = json!(pay);
            v["payload"]["payment"]["entity"]["amount"] = json!(amount);
            v["payload"]["payment"]["entity"]["amount_refunded"] = json!(refunded);
        }
        self.razorpay(v);
    }

    /// A Razorpay refund of `own` told without the payment entity (its own amount only).
    fn rz_refund_alone(&mut self, pay: String, own: i64, at: i64) {
        let mut v = tpl().rz_refund.clone();
        v["created_at"] = json!(at);
        self.evt += 1;
        let r = &mut v["payload"]["refund"]["entity"];
        r["id"] = json!(format!("x_{}_{}", self.n, self.evt));
        r["payment_id"] = json!(pay);
        r["amount"] = json!(own);
        v["payload"].as_object_mut().unwrap().remove("payment");
        v["contains"] = json!(["refund"]);
        self.razorpay(v);
    }

    fn emit(mut self) -> Vec<Fact> {
        let c = self.c.clone();
        let n = self.n;
        let t0 = T0 + c.start_h * HOUR;
        let last = match c.end {
            Ending::Runs => c.periods.len() - 1,
            Ending::CanceledAtPeriodEnd(k) | Ending::DeletedNow(k, _) => k.min(c.periods.len() - 1),
        };
        let rz = c.shape == Shape::Razorpay;
        for k in 0..=last {
            let (ps, pe) = (t0 + k as i64 * MONTH, t0 + (k as i64 + 1) * MONTH);
            // The first period must be paid for the subscription to start.
            let plan = if k == 0 && matches!(c.periods[k], Pay::FailOnly | Pay::FailThenPaid) {
                Pay::Paid
            } else {
                c.periods[k]
            };
            if rz {
                if k == 0 {
                    self.rz_sub("subscription.activated", "active", ps, pe, ps + 10, k, false);
                }
                match plan {
                    Pay::FailOnly | Pay::FailThenPaid => {
                        self.rz_sub("subscription.pending", "pending", ps, pe, ps + 30, k, false);
                        if plan == Pay::FailThenPaid {
                            self.rz_sub("subscription.charged", "active", ps, pe, ps + 2 * DAY, k, true);
                        } else {
                            self.rz_sub("subscription.halted", "halted", ps, pe, ps + 3 * DAY, k, false);
                        }
                    }
                    _ => self.rz_sub("subscription.charged", "active", ps, pe, ps + 20, k, true),
                }
                match plan {
                    Pay::Refunded => self.rz_reverse(format!("pay_{n}_{k}"), 7900, 7900, None, ps + 5 * DAY),
                    Pay::RefundedInHalves => {
                        self.rz_refund_alone(format!("pay_{n}_{k}"), 3950, ps + 5 * DAY);
                        self.rz_refund_alone(format!("pay_{n}_{k}"), 3950, ps + MONTH + 5 * DAY);
                    }
                    Pay::Disputed(c) => self.rz_reverse(format!("pay_{n}_{k}"), 7900, 7900, Some(c), ps + 6 * DAY),
                    _ => {}
                }
            } else {
                if k == 0 {
                    self.snapshot("customer.subscription.created", "incomplete", ps, pe, ps + 1, false, None);
                    self.invoice("invoice.paid", 0, ps, pe, ps + 2, 1);
                    if c.dup_paid {
                        self.invoice("invoice.payment_succeeded", 0, ps, pe, ps + 2, 1);
                    }
                    self.snapshot("customer.subscription.updated", "active", ps, pe, ps + 3, false, None);
                    if c.attr == Attr::Checkout {
                        self.checkout_sub(ps + 4);
                    }
                } else {
                    self.snapshot("customer.subscription.updated", "active", ps, pe, ps + 5, false, None);
                    match plan {
                        Pay::FailOnly | Pay::FailThenPaid => {
                            self.invoice("invoice.payment_failed", k, ps, pe, ps + HOUR, 1);
                            self.snapshot(
                                "customer.subscription.updated",
                                "past_due",
                                ps,
                                pe,
                                ps + HOUR + 100,
                                false,
                                None,
                            );
                            if plan == Pay::FailThenPaid {
                                self.invoice("invoice.paid", k, ps, pe, ps + 2 * DAY, 2);
                                self.snapshot(
                                    "customer.subscription.updated",
                                    "active",
                                    ps,
                                    pe,
                                    ps + 2 * DAY + 100,
                                    false,
                                    None,
                                );
                            }
                        }
                        _ => {
                            self.invoice("invoice.paid", k, ps, pe, ps + HOUR, 1);
                            if c.dup_paid {
                                self.invoice("invoice.payment_succeeded", k, ps, pe, ps + HOUR + 1, 1);
                            }
                        }
                    }
                }
                match plan {
                    Pay::Refunded => {
                        self.refund(format!("ch_{n}_{k}"), format!("pi_{n}_{k}"), 2900, 2900, ps + 5 * DAY)
                    }
                    Pay::RefundedInHalves => {
                        self.refund(format!("ch_{n}_{k}"), format!("pi_{n}_{k}"), 2900, 1450, ps + 5 * DAY);
                        self.refund(format!("ch_{n}_{k}"), format!("pi_{n}_{k}"), 2900, 2900, ps + MONTH + 5 * DAY);
                    }
                    Pay::Disputed(c) => {
                        self.dispute(format!("ch_{n}_{k}"), format!("pi_{n}_{k}"), 2900, ps + 6 * DAY, c)
                    }
                    _ => {}
                }
            }
        }
        // The end.
        let (ps, pe) = (t0 + last as i64 * MONTH, t0 + (last as i64 + 1) * MONTH);
        match c.end {
            Ending::Runs => {}
            Ending::CanceledAtPeriodEnd(_) => {
                if rz {
                    self.rz_sub("subscription.cancelled", "cancelled", ps, pe, ps + 10 * DAY, last, false);
                } else {
                    self.snapshot("customer.subscription.updated", "active", ps, pe, ps + 10 * DAY, true, None);
                    self.snapshot("customer.subscription.deleted", "canceled", ps, pe, pe + 2, true, Some(pe));
                }
            }
            Ending::DeletedNow(_, h) => {
                let at = ps + h * HOUR;
                if rz {
                    self.rz_sub("subscription.cancelled", "cancelled", ps, pe, at, last, false);
                } else {
                    self.snapshot("customer.subscription.deleted", "canceled", ps, pe, at, false, Some(at));
                }
            }
        }
        if c.attr == Attr::Link {
            let cus = if rz { format!("cust_{n}") } else { format!("cus_{n}") };
            let p = if rz { Provider::Razorpay } else { Provider::Stripe };
            self.out.push(Fact::customer_link(p, &cus, self.subject(), t(T0 + c.link_h * HOUR)));
        }
        // One-time purchases, usage and seats.
        if !c.org {
            for (j, (h, which, rev)) in c.purchases.iter().enumerate() {
                let at = T0 + h * HOUR;
                let (offer, amount) = (TOKEN_OFFERS[*which], TOKEN_PRICES[*which]);
                if rz {
                    let mut v = tpl().rz_captured.clone();
                    v["created_at"] = json!(at);
                    let p = &mut v["payload"]["payment"]["entity"];
                    p["id"] = json!(format!("pay_{n}_p{j}"));
                    p["amount"] = json!(amount);
                    p["currency"] = json!(TOKEN_CURRENCIES[*which]);
                    p["notes"] = json!({"user_id": format!("u{n}"), "offer_key": offer});
                    // Told again by `order.paid`, which carries the payment and its order.
                    if c.dup_paid {
                        let mut o = v.clone();
                        o["event"] = json!("order.paid");
                        o["created_at"] = json!(at + 1);
                        o["contains"] = json!(["payment", "order"]);
                        o["payload"]["order"] = json!({"entity": {
                            "id": v["payload"]["payment"]["entity"]["order_id"].clone(), "entity": "order", "amount": amount, "amount_paid": amount,
                            "amount_due": 0, "currency": TOKEN_CURRENCIES[*which], "status": "paid", "attempts": 1,
                        }});
                        self.razorpay(o);
                    }
                    self.razorpay(v);
                } else {
                    let mut v = tpl().co_pay.clone();
                    v["id"] = json!(self.next_evt());
                    v["created"] = json!(at);
                    let o = obj(&mut v);
                    o["id"] = json!(format!("cs_{n}_p{j}"));
                    o["customer"] = json!(format!("cus_{n}"));
                    o["client_reference_id"] = json!(format!("u{n}"));
                    o["payment_intent"] = json!(format!("pi_{n}_p{j}"));
                    o["amount_total"] = json!(amount);
                    o["metadata"] = json!({"offer_key": offer});
                    o.as_object_mut().unwrap().remove("line_items");
                    self.stripe(v);
                }
                let (pay, ch, pi) = (format!("pay_{n}_p{j}"), format!("ch_{n}_p{j}"), format!("pi_{n}_p{j}"));
                let later = at + DAY + (j as i64) * HOUR;
                match (rev, rz) {
                    (Reverse::Keep, _) => {}
                    (Reverse::Partial, false) => self.refund(ch, pi, amount, amount / 2, later),
                    (Reverse::Full, false) => self.refund(ch, pi, amount, amount, later),
                    (Reverse::Dispute(c), false) => self.dispute(ch, pi, amount, later, *c),
                    (Reverse::DisputedPart(c), false) => self.dispute(ch, pi, amount / 2, later, *c),
                    (Reverse::Partial, true) => self.rz_reverse(pay, amount, amount / 2, None, later),
                    (Reverse::Full, true) => self.rz_reverse(pay, amount, amount, None, later),
                    (Reverse::Dispute(c), true) => self.rz_reverse(pay, amount, amount, Some(*c), later),
                    (Reverse::DisputedPart(c), true) => self.rz_reverse(pay, amount, amount / 2, Some(*c), later),
                    (Reverse::InHalves, false) => {
                        self.refund(ch.clone(), pi.clone(), amount, amount / 2, later);
                        self.refund(ch, pi, amount, amount, later + 3 * DAY);
                    }
                    (Reverse::InHalves, true) => {
                        self.rz_reverse(pay.clone(), amount, amount / 2, None, later);
                        self.rz_refund_alone(pay, amount - amount / 2, later + 3 * DAY);
                    }
                }
            }
            for (i, (h, units, pool)) in c.usage.iter().enumerate() {
                self.out.push(Fact::usage(
                    UsageFact {
                        request_id: format!("req_{n}_{i}"),
                        subject: self.subject(),
                        pool: POOLS[*pool].into(),
                        units: if *pool == 2 { units % 3 } else { *units },
                        model: Some("standard".into()),
                        quality: Some("standard".into()),
                        takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
                    },
                    t(T0 + h * HOUR),
                ));
            }
        } else {
            for (i, (h, u, assign)) in c.seats.iter().enumerate() {
                let user = Subject::user(format!("m{n}_{u}"));
                let at = t(T0 + h * HOUR);
                let req = format!("seat_{n}_{i}");
                self.out.push(if *assign {
                    Fact::seat_assigned(self.subject(), user, &req, at)
                } else {
                    Fact::seat_released(self.subject(), user, &req, at)
                });
            }
        }
        self.out
    }
}

fn emit(sc: &[Customer]) -> Vec<Fact> {
    sc.iter().enumerate().flat_map(|(n, c)| Emitter { c, n, out: Vec::new(), evt: 0 }.emit()).collect()
}

/// A deterministic shuffle (xorshift).
fn shuffle<T>(v: &mut [T], mut x: u64) {
    x |= 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

fn horizon(facts: &[Fact]) -> i64 {
    facts.iter().map(|f| f.at.0).max().unwrap_or(T0)
}

/// The credit invariants, and that every unit of usage is accounted for.
fn check_credits(st: &BillingState, facts: &[Fact]) -> Result<(), TestCaseError> {
    st.check_invariants().map_err(TestCaseError::fail)?;
    for s in st.subjects.values() {
        for (pool, b) in &s.balances {
            prop_assert!(*b >= 0, "{} {pool} = {b}", s.subject);
        }
        let keys: BTreeSet<&str> = s.wallet.ledger.iter().map(|e| e.key.as_str()).collect();
        prop_assert_eq!(keys.len(), s.wallet.ledger.len());
    }
    // Every unit of usage is taken from a lot or billed as overage, exactly once: per
    // subject, what the lots record as used plus the overage equals the usage.
    let set: FactSet = facts.iter().cloned().collect();
    let mut units: BTreeMap<String, i64> = BTreeMap::new();
    for f in set.sorted() {
        let FactBody::Usage(u) = &f.body else { continue };
        *units.entry(u.subject.to_string()).or_insert(0) += u.units as i64;
    }
    for (subject, n) in units {
        let s = &st.subjects[&subject];
        let used: i64 = s.wallet.lots.iter().map(|l| l.used).sum();
        let over: i64 = s.overage.iter().map(|o| o.units).sum();
        prop_assert_eq!(used + over, n, "usage of {} not accounted for", subject);
        prop_assert!(s.wallet.uncovered.is_empty(), "{:?}", s.wallet.uncovered);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1200))]

    /// Duplicates and any order of arrival fold to the same state; the credit
    /// invariants hold; nothing is left pending when every attribution is there.
    #[test]
    fn idempotent_order_independent_and_consistent(
        sc in scenario(),
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..15),
        order in any::<u64>(),
        extra in 0..40 * DAY,
    ) {
        let facts = emit(&sc);
        let now = t(horizon(&facts) + extra);
        let base = reduce(cat(), &facts, now);
        check_credits(&base, &facts)?;
        prop_assert!(base.pending.is_empty(), "{:?}", base.pending);
        prop_assert_eq!(base.facts.unique, facts.iter().cloned().collect::<FactSet>().len());

        let mut noisy = facts.clone();
        for d in &dups {
            noisy.push(d.get(&facts).clone());
        }
        prop_assert_eq!(&reduce(cat(), &noisy, now), &base, "duplicates changed the state");
        shuffle(&mut noisy, order);
        prop_assert_eq!(&reduce(cat(), &noisy, now), &base, "the order of arrival changed the state");

        // A won dispute leaves no trace: the state is the state without it.
        let won: BTreeSet<&str> = facts
            .iter()
            .filter_map(|f| match &f.body {
                FactBody::Dispute(r) if r.outcome == Some(DisputeOutcome::Won) => Some(r.id.as_str()),
                _ => None,
            })
            .collect();
        if !won.is_empty() {
            let without: Vec<Fact> = facts
                .iter()
                .filter(|f| !matches!(&f.body, FactBody::Dispute(r) if won.contains(r.id.as_str())))
                .cloned()
                .collect();
            let mut st = reduce(cat(), &without, now);
            st.facts.unique = base.facts.unique;
            prop_assert_eq!(&st, &base, "a won dispute left a trace");
        }

        // Grants agree with the subscriptions they come from.
        for s in base.subscriptions.values() {
            if let (Some(subj), SubStatus::Active) = (&s.subject, s.status) {
                if s.revoked.is_none() && s.paid_through.is_some_and(|p| p > now) && !s.items.is_empty() {
                    let e = base.entitlements_for(&subj.to_string());
                    prop_assert!(e.grants.iter().any(|g| g.source_ref.as_deref() == Some(s.id.as_str())), "{} has no grant", s.id);
                }
            }
        }
    }

}

proptest! {
    #![proptest_config(config(600))]

    /// Without the checkouts and customer links, the facts they attribute wait
    /// in `pending` (none is dropped); adding them back, in any order, through
    /// the incremental reducer gives the full fold's state.
    #[test]
    fn lossless_until_attribution_arrives(sc in scenario(), order in any::<u64>()) {
        let facts = emit(&sc);
        let now = t(horizon(&facts) + DAY);
        let base = reduce(cat(), &facts, now);
        let (attribution, rest): (Vec<Fact>, Vec<Fact>) = facts
            .iter()
            .cloned()
            .partition(|f| matches!(f.body, FactBody::Purchase(_) | FactBody::CustomerLinked(_)));
        let partial = reduce(cat(), &rest, now);
        check_credits(&partial, &rest)?;
        let pending: BTreeSet<&str> = partial.pending.iter().map(|p| p.key.as_str()).collect();
        for (n, c) in sc.iter().enumerate() {
            // Razorpay subscriptions carry the buyer in their notes unless the app links the customer.
            let named_elsewhere = match c.shape {
                Shape::Razorpay => c.attr == Attr::Link,
                _ => c.attr != Attr::Metadata,
            };
            let sub = if c.shape == Shape::Razorpay { format!("razorpay:sub_rz{n}") } else { format!("stripe:sub_{n}") };
            for f in &rest {
                let about = match &f.body {
                    FactBody::Subscription(s) => s.id == sub,
                    FactBody::InvoicePaid(i) => i.subscription == sub,
                    _ => false,
                };
                // A snapshot after the subscription ended changes nothing, attributed or not.
                let superseded = matches!(f.body, FactBody::Subscription(_))
                    && base.subscriptions.get(&sub).is_some_and(|s| s.status.is_terminal() && s.version.is_some_and(|v| v < f.at));
                if about && named_elsewhere && !superseded {
                    prop_assert!(pending.contains(f.key.as_str()), "{} was dropped, not kept", f.key);
                }
            }
        }
        let mut r = Reducer::from_facts(cat(), &rest, now);
        let mut add = attribution.clone();
        shuffle(&mut add, order);
        for f in add {
            r.apply(f, now);
        }
        prop_assert_eq!(r.state(), &base);
        prop_assert!(r.state().pending.is_empty());
    }
}

proptest! {
    #![proptest_config(config(120))]

    /// Facts applied one at a time (in arrival order, with duplicates, the
    /// clock moving forward) give what a fold of the facts so far gives.
    #[test]
    fn incremental_reducer_agrees_at_every_step(sc in scenario(), order in any::<u64>(), jitter in 0..6u64) {
        let mut facts = emit(&sc);
        facts.sort_by(canonical_cmp);
        // Mostly in time order, with some facts arriving late and some twice.
        let mut arrivals = facts.clone();
        let mut s = order | 1;
        for _ in 0..jitter {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (s >> 33) as usize % arrivals.len();
            let j = (s >> 13) as usize % arrivals.len();
            arrivals.swap(i, j);
            let k = (s >> 40) as usize % arrivals.len();
            arrivals.push(arrivals[k].clone());
        }
        let mut r = Reducer::new(cat(), t(T0));
        let mut seen: Vec<Fact> = Vec::new();
        let mut clock = T0;
        for f in arrivals {
            clock = clock.max(f.at.0);
            seen.push(f.clone());
            r.apply(f, t(clock));
            prop_assert_eq!(r.state(), &reduce(cat(), &seen, t(clock)));
        }
    }
}

/// The generator really produces what the properties are about.
#[test]
fn streams_cover_the_lifecycle() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::new(config(1));
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut pending, mut statuses) = (0, BTreeSet::new());
    for _ in 0..200 {
        let sc = scenario().new_tree(&mut runner).unwrap().current();
        let facts = emit(&sc);
        for f in &facts {
            *kinds.entry(f.body.type_name()).or_insert(0) += 1;
            if let FactBody::Dispute(Reversal { outcome: Some(o), .. }) = &f.body {
                *kinds.entry(if *o == DisputeOutcome::Won { "dispute_won" } else { "dispute_lost" }).or_insert(0) += 1;
            }
        }
        let st = reduce(cat(), &facts, t(horizon(&facts)));
        for s in st.subscriptions.values() {
            statuses.insert(format!("{:?}", s.status));
        }
        let rest: Vec<Fact> = facts
            .into_iter()
            .filter(|f| !matches!(f.body, FactBody::Purchase(_) | FactBody::CustomerLinked(_)))
            .collect();
        pending += reduce(cat(), &rest, t(T0)).pending.len();
    }
    for k in [
        "purchase",
        "subscription",
        "invoice_paid",
        "invoice_failed",
        "refund",
        "dispute",
        "dispute_won",
        "dispute_lost",
        "invoice_payment",
        "usage",
        "seat_assigned",
        "customer_linked",
    ] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 20, "too few {k}: {kinds:?}");
    }
    for s in ["Active", "PastDue", "Canceled", "Ended"] {
        assert!(statuses.contains(s), "no {s} subscription in {statuses:?}");
    }
    assert!(pending > 100, "unattributed streams keep facts pending");
}
