//! `cargo xtask demo`, part 2: a realistic subscription lifecycle for each example
//! catalog, replayed through the core exactly as the worker does it: each provider
//! event is built in the provider's shape (Stripe's current API shape, Razorpay's
//! webhook payloads), signed with the provider's scheme, verified, parsed into facts
//! and folded by the reducer; after every step the demo prints what the subject may do
//! and its balances. Usage is planned with the core's charge rules before it is
//! recorded, and seats are checked with the core's allocation rule.
//!
//! Everything runs at fixed instants (from 2026-03-01), so the output is the same on
//! every run. At the end of each story the same facts are folded again in reverse
//! order, with every event delivered twice: the state must be identical.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use tollgate::billing::{reduce_set, BillingState, Fact, FactSet, Insert, Parsed, Subject};
use tollgate::catalog::Catalog;
use tollgate::credits::{ChargeOutcome, DenyReason, OveragePolicy};
use tollgate::decide::{self, Decision};
use tollgate::model::Entitlements;
use tollgate::seats::Membership;
use tollgate::time::{Timestamp, DAY};
use tollgate::usage::{self, UsageRequest};
use tollgate::verify::{self, StripeVerifier};

use crate::package::catalogs;
use crate::util::{note, Result};

/// 2026-03-01T00:00:00Z: where every story starts.
const T0: i64 = 1_772_323_200;
const HOUR: i64 = 3600;
/// Endpoint secrets of the demo (local, made up; nothing is sent anywhere).
const STRIPE_SECRET: &str = "whsec_demo_local_only";
const RAZORPAY_SECRET: &str = "rzp_demo_local_only";

fn date(t: i64) -> String {
    let s = Timestamp(t).to_rfc3339();
    format!("{} {}", &s[..10], &s[11..16])
}

pub(crate) fn money(amount: i64, currency: &str) -> String {
    let sym = match currency {
        "usd" => "$",
        "cad" => "CA$",
        "inr" => "₹",
        _ => "",
    };
    format!("{sym}{}.{:02}", amount / 100, amount % 100)
}

// ---------------------------------------------------------------- provider events

pub(crate) struct Ids {
    pub n: u32,
    pub tag: String,
}

impl Ids {
    pub(crate) fn next(&mut self, prefix: &str) -> String {
        self.n += 1;
        format!("{prefix}_demo{}{:03}", self.tag, self.n)
    }
}

/// The same event delivered again by the provider (a retry: same event id).
pub(crate) fn again(event: &Value) -> Value {
    event.clone()
}

/// The same object change sent under a new event id (Stripe can describe one change
/// in two deliveries): still one fact.
fn resent(ids: &mut Ids, event: &Value) -> Value {
    let mut e = event.clone();
    e["id"] = json!(ids.next("evt"));
    e
}

fn stripe_event(ids: &mut Ids, ty: &str, object: Value, created: i64) -> Value {
    json!({
        "id": ids.next("evt"), "object": "event", "api_version": "2025-03-31.basil", "created": created,
        "data": { "object": object }, "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }, "type": ty,
    })
}

/// One Stripe subscription of a subject to an offer, and the events it goes through
/// (the shapes of Stripe's API version 2025-03-31).
#[derive(Clone)]
pub(crate) struct StripeSub {
    subject: Value,
    /// Whether the subscription object itself names the subject (the app set
    /// `subscription_data.metadata`); otherwise only the checkout does.
    pub attributed: bool,
    offer: String,
    price: String,
    currency: String,
    amount: i64,
    customer: String,
    id: String,
    start: i64,
    quantity: u32,
    clouds: Vec<String>,
}

impl StripeSub {
    pub(crate) fn new(cat: &Catalog, ids: &mut Ids, subject: Value, offer: &str, start: i64) -> StripeSub {
        let o = cat.offer(offer).unwrap_or_else(|| panic!("offer {offer} is in the catalog"));
        StripeSub {
            subject,
            attributed: true,
            offer: offer.to_string(),
            price: o.stripe_price_ids.first().cloned().unwrap_or_else(|| format!("price_{}", offer.to_lowercase())),
            currency: o.price.currency.clone(),
            amount: o.price.amount,
            customer: ids.next("cus"),
            id: ids.next("sub"),
            start,
            quantity: 1,
            clouds: Vec::new(),
        }
    }

    fn metadata(&self) -> Value {
        let mut m = json!({ "offer_key": self.offer });
        for k in ["user_id", "organization_id"] {
            if let Some(v) = self.subject.get(k) {
                m[k] = v.clone();
            }
        }
        if !self.clouds.is_empty() {
            m["clouds"] = json!(self.clouds.join(","));
        }
        m
    }

    pub(crate) fn checkout(&self, ids: &mut Ids, at: i64) -> Value {
        let cs = json!({
            "id": ids.next("cs"), "object": "checkout.session", "mode": "subscription", "status": "complete",
            "payment_status": "paid", "customer": self.customer, "subscription": self.id,
            "client_reference_id": self.subject.get("user_id").cloned().unwrap_or(Value::Null),
            "metadata": self.metadata(), "amount_total": self.amount * self.quantity as i64,
            "currency": self.currency, "created": at,
        });
        stripe_event(ids, "checkout.session.completed", cs, at)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn subscription(&self, ids: &mut Ids, ty: &str, at: i64, status: &str, period: (i64, i64), cancel: bool, ended: Option<i64>) -> Value {
        let obj = json!({
            "id": self.id, "object": "subscription", "customer": self.customer, "status": status,
            "cancel_at_period_end": cancel, "cancel_at": if cancel { json!(period.1) } else { Value::Null },
            "canceled_at": if cancel || ended.is_some() { json!(at) } else { Value::Null },
            "ended_at": ended, "start_date": self.start, "created": self.start,
            "metadata": if self.attributed { self.metadata() } else { json!({ "offer_key": self.offer }) },
            "trial_end": null,
            "items": { "object": "list", "data": [{
                "id": format!("si_{}", &self.id[4..]), "object": "subscription_item", "quantity": self.quantity,
                "price": { "id": self.price, "object": "price", "metadata": { "offer_key": self.offer } },
                "current_period_start": period.0, "current_period_end": period.1,
            }]},
        });
        stripe_event(ids, ty, obj, at)
    }

    pub(crate) fn invoice_paid(&self, ids: &mut Ids, at: i64, period: (i64, i64)) -> Value {
        let amount = self.amount * self.quantity as i64;
        let inv = json!({
            "id": ids.next("in"), "object": "invoice", "customer": self.customer, "status": "paid", "paid": true,
            "amount_paid": amount, "amount_due": amount, "currency": self.currency, "created": at,
            "billing_reason": if period.0 == self.start { "subscription_create" } else { "subscription_cycle" },
            "parent": { "type": "subscription_details", "subscription_details": { "subscription": self.id, "metadata": {} } },
            "period_start": period.0, "period_end": period.1,
            "lines": { "object": "list", "data": [{
                "id": ids.next("il"), "object": "line_item", "amount": amount, "currency": self.currency,
                "quantity": self.quantity, "period": { "start": period.0, "end": period.1 },
                "pricing": { "type": "price_details", "price_details": { "price": self.price, "product": "prod_demo" } },
                "parent": { "type": "subscription_item_details", "subscription_item_details": { "subscription": self.id } },
            }]},
            "payments": { "object": "list", "data": [{ "payment": { "type": "payment_intent", "payment_intent": ids.next("pi") } }] },
        });
        stripe_event(ids, "invoice.paid", inv, at)
    }

    fn invoice_failed(&self, ids: &mut Ids, at: i64) -> Value {
        let inv = json!({
            "id": ids.next("in"), "object": "invoice", "customer": self.customer, "status": "open", "paid": false,
            "attempt_count": 1, "amount_due": self.amount * self.quantity as i64, "currency": self.currency, "created": at,
            "parent": { "type": "subscription_details", "subscription_details": { "subscription": self.id, "metadata": {} } },
            "lines": { "object": "list", "data": [] },
        });
        stripe_event(ids, "invoice.payment_failed", inv, at)
    }
}

/// A one-time Stripe Checkout (token bundles).
pub(crate) fn stripe_one_time(cat: &Catalog, ids: &mut Ids, user: &str, offer: &str, at: i64) -> Value {
    let o = cat.offer(offer).unwrap_or_else(|| panic!("offer {offer} is in the catalog"));
    let cs = json!({
        "id": ids.next("cs"), "object": "checkout.session", "mode": "payment", "status": "complete",
        "payment_status": "paid", "customer": ids.next("cus"), "subscription": null,
        "payment_intent": ids.next("pi"), "client_reference_id": user, "metadata": { "offer_key": offer },
        "amount_total": o.price.amount, "currency": o.price.currency, "created": at,
    });
    stripe_event(ids, "checkout.session.completed", cs, at)
}

/// One Razorpay subscription (the Razorpay AI app), and its webhook payloads.
struct RazorpaySub {
    user: String,
    plan: String,
    id: String,
    customer: String,
    start: i64,
}

impl RazorpaySub {
    fn event(&self, ty: &str, at: i64, status: &str, period: (i64, i64), payment: Option<Value>) -> Value {
        let ended = matches!(status, "completed" | "cancelled").then_some(at);
        let mut payload = json!({ "subscription": { "entity": {
            "id": self.id, "entity": "subscription", "plan_id": self.plan, "customer_id": self.customer,
            "status": status, "current_start": period.0, "current_end": period.1, "ended_at": ended,
            "quantity": 1, "notes": { "user_id": self.user }, "charge_at": period.1, "start_at": self.start,
            "end_at": null, "auth_attempts": 0, "total_count": 12, "paid_count": 1, "created_at": self.start,
        }}});
        if let Some(p) = payment {
            payload["payment"] = json!({ "entity": p });
        }
        let contains: Vec<String> = payload.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        json!({ "entity": "event", "account_id": "acc_demo", "event": ty, "contains": contains, "payload": payload, "created_at": at })
    }

    fn payment(&self, ids: &mut Ids, at: i64, amount: i64) -> Value {
        json!({
            "id": ids.next("pay"), "entity": "payment", "amount": amount, "currency": "INR", "status": "captured",
            "order_id": ids.next("order"), "invoice_id": ids.next("inv"), "method": "card", "captured": true,
            "customer_id": self.customer, "created_at": at, "notes": { "user_id": self.user },
        })
    }
}

// ---------------------------------------------------------------- the replay

/// What a story shows after each step: one product and tier, and the balances.
struct Probe {
    product: &'static str,
    tier: &'static str,
}

/// One provider delivery as it reaches the core.
enum Delivery {
    Stripe(Value),
    Razorpay(Value, String),
    /// A fact the app records itself (usage, seats).
    App(Fact),
}

struct Story<'c> {
    cat: &'c Catalog,
    facts: FactSet,
    /// Every delivery as it happened (for the reverse-order check at the end).
    log: Vec<Fact>,
    subject: String,
    memberships: Vec<Membership>,
    probe: Probe,
    stripe: StripeVerifier,
    state: BillingState,
    ids: Ids,
    rows: Vec<[String; 4]>,
}

impl<'c> Story<'c> {
    fn new(cat: &'c Catalog, subject: &str, probe: Probe, tag: &str) -> Story<'c> {
        Story {
            cat,
            facts: FactSet::new(),
            log: Vec::new(),
            subject: subject.to_string(),
            memberships: Vec::new(),
            probe,
            stripe: StripeVerifier::new([STRIPE_SECRET]).expect("a valid secret"),
            state: BillingState::empty(Timestamp(T0)),
            ids: Ids { n: 0, tag: tag.to_string() },
            rows: Vec::new(),
        }
    }

    /// Signs, verifies and parses one delivery, and stores its facts.
    fn deliver(&mut self, d: Delivery, at: i64) -> Result<(String, Vec<Fact>)> {
        let now = Timestamp(at);
        let (label, facts) = match d {
            Delivery::Stripe(v) => {
                let raw = serde_json::to_string(&v).map_err(|e| e.to_string())?;
                let header = verify::sign_stripe(raw.as_bytes(), STRIPE_SECRET, now);
                self.stripe
                    .verify(raw.as_bytes(), Some(&header), now)
                    .map_err(|e| format!("the demo's own Stripe signature does not verify: {e}"))?;
                let parsed = tollgate::billing::parse_stripe_event(self.cat, &raw).map_err(|e| format!("{e}"))?;
                let ty = parsed.event().event_type.clone();
                match parsed {
                    Parsed::Facts { facts, .. } => (ty, facts),
                    Parsed::Ignored { reason, .. } => (format!("{ty} (ignored: {reason})"), Vec::new()),
                }
            }
            Delivery::Razorpay(v, event_id) => {
                let raw = serde_json::to_string(&v).map_err(|e| e.to_string())?;
                let sig = verify::sign_razorpay(raw.as_bytes(), RAZORPAY_SECRET);
                verify::verify_razorpay(raw.as_bytes(), Some(&sig), &[RAZORPAY_SECRET])
                    .map_err(|e| format!("the demo's own Razorpay signature does not verify: {e}"))?;
                let parsed =
                    tollgate::billing::parse_razorpay_event(self.cat, &raw, Some(&event_id)).map_err(|e| format!("{e}"))?;
                let ty = parsed.event().event_type.clone();
                (ty, parsed.facts().to_vec())
            }
            Delivery::App(f) => (f.body.type_name().replace('_', " "), vec![f]),
        };
        Ok((label, facts))
    }

    /// One step: deliveries at `at`, then the subject's state printed.
    fn step(&mut self, at: i64, what: &str, deliveries: Vec<Delivery>) -> Result<()> {
        let mut outcomes: Vec<&str> = Vec::new();
        let mut new_keys = Vec::new();
        for d in deliveries {
            let (_label, facts) = self.deliver(d, at)?;
            for f in facts {
                self.log.push(f.clone());
                new_keys.push(f.key.clone());
                outcomes.push(match self.facts.insert(f) {
                    Insert::New | Insert::Replaced => "applied",
                    Insert::Duplicate => "duplicate",
                });
            }
        }
        self.state = reduce_set(self.cat, &self.facts, Timestamp(at));
        let kept = self.state.pending.iter().filter(|p| new_keys.contains(&p.key)).count();
        let result = if outcomes.is_empty() {
            String::new()
        } else if outcomes.iter().all(|o| *o == "duplicate") {
            " → duplicate, nothing changes".to_string()
        } else if kept > 0 {
            format!(" → {kept} kept until attributed")
        } else {
            String::new()
        };
        self.record(at, &format!("{what}{result}"));
        Ok(())
    }

    fn ents(&self) -> Entitlements {
        if self.memberships.is_empty() {
            self.state.entitlements_for(&self.subject)
        } else {
            tollgate::billing::members::effective_entitlements(&self.state, &self.subject, &self.memberships)
        }
    }

    fn access(&self, at: i64) -> String {
        let d = decide::has_access(self.cat, &self.ents(), self.probe.product, self.probe.tier, Timestamp(at));
        match d {
            Ok(d) => describe(&d),
            Err(e) => format!("error: {e}"),
        }
    }

    /// What the subject may spend of each pool at `at` (as its snapshot says), and what its
    /// lots hold where that is more (a paused subscription's credits are kept, not spendable).
    fn balances(&self, at: i64) -> String {
        let Some(s) = self.state.subject(&self.subject) else { return "—".into() };
        let spendable = usage::balances(&s.wallet, &s.grants, Timestamp(at));
        if spendable.is_empty() {
            return "—".into();
        }
        spendable
            .iter()
            .map(|(k, v)| match s.balances.get(k) {
                Some(held) if held > v => format!("{k} {v} (holds {held})"),
                _ => format!("{k} {v}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn record(&mut self, at: i64, what: &str) {
        let row = [date(at), what.to_string(), self.access(at), self.balances(at)];
        self.rows.push(row);
    }

    /// Time passes without any event: the decision at `at`.
    fn wait(&mut self, at: i64, what: &str) {
        self.state = reduce_set(self.cat, &self.facts, Timestamp(at));
        self.record(at, what);
    }

    /// The same facts, every one delivered twice, in reverse order: the same state.
    fn check_order_independence(&self, at: i64) -> Result<String> {
        let mut set = FactSet::new();
        for f in self.log.iter().rev().chain(self.log.iter()) {
            set.insert(f.clone());
        }
        let again = reduce_set(self.cat, &set, Timestamp(at));
        let forward = reduce_set(self.cat, &self.facts, Timestamp(at));
        if again != forward {
            return Err(format!("{}: reversed and duplicated delivery gave a different state", self.cat.meta().id));
        }
        forward.check_invariants().map_err(|e| format!("{}: {e}", self.cat.meta().id))?;
        Ok(format!(
            "✓ the same {} facts delivered twice each, in reverse order, fold to the identical state; ledger invariants hold",
            self.facts.len()
        ))
    }

    fn print(&self, title: &str, footer: &[String]) {
        println!();
        println!("{title}");
        let head = ["WHEN", "WHAT HAPPENED", &format!("ACCESS ({} ≥ {})", self.probe.product, self.probe.tier), "BALANCES"];
        let mut w = [0usize; 4];
        for r in self.rows.iter().map(|r| r.each_ref().map(|s| s.as_str())).chain([head]) {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        w[1] = w[1].min(64);
        let line = |r: [&str; 4]| {
            let mut s = String::from("  ");
            for (i, c) in r.iter().enumerate() {
                s.push_str(c);
                if i < 3 {
                    s.push_str(&" ".repeat(w[i].saturating_sub(c.chars().count()) + 2));
                }
            }
            println!("{}", s.trim_end());
        };
        line(head);
        for r in &self.rows {
            // Long descriptions wrap onto their own line.
            if r[1].chars().count() > w[1] {
                line([r[0].as_str(), r[1].as_str(), "", ""]);
                line(["", "", r[2].as_str(), r[3].as_str()]);
            } else {
                line(r.each_ref().map(|s| s.as_str()));
            }
        }
        for f in footer {
            println!("  {f}");
        }
    }
}

fn describe(d: &Decision) -> String {
    let until = d.holds_until.map(|t| format!(" until {}", date(t.unix()))).unwrap_or_default();
    if d.allowed {
        let tier = d.tier.as_deref().unwrap_or("?");
        format!("✓ {tier}, {}{until}", d.reason.as_str())
    } else {
        let up = d.upgrade.as_ref().map(|u| format!("; cheapest: {}", u.display)).unwrap_or_default();
        format!("✗ {}{up}", d.reason.as_str())
    }
}

/// Periods of a monthly story: `[T0, P1)`, `[P1, P2)`, `[P2, P3)`.
const P1: i64 = T0 + 31 * DAY; // 2026-04-01
const P2: i64 = P1 + 30 * DAY; // 2026-05-01
const P3: i64 = P2 + 31 * DAY; // 2026-06-01

/// The subscription story every Stripe catalog goes through: purchase, renewal, a
/// failed payment and its grace, recovery, cancel at period end, expiry.
fn stripe_story(st: &mut Story, sub: &StripeSub) -> Result<()> {
    let grace = st.cat.meta().grace_period_days as i64;
    let ids = &mut st.ids;
    let buy = vec![
        Delivery::Stripe(sub.checkout(ids, T0)),
        Delivery::Stripe(sub.subscription(ids, "customer.subscription.created", T0, "active", (T0, P1), false, None)),
        Delivery::Stripe(sub.invoice_paid(ids, T0 + 1, (T0, P1))),
    ];
    let o = st.cat.offer(&sub.offer).expect("offer");
    let q = if sub.quantity > 1 { format!(" × {} seats", sub.quantity) } else { String::new() };
    st.step(T0 + 1, &format!("purchase: {} at {}{q} (checkout, subscription, invoice paid)", o.label, money(o.price.amount, &o.price.currency)), buy)?;
    let renew = vec![
        Delivery::Stripe(sub.invoice_paid(&mut st.ids, P1 + HOUR, (P1, P2))),
        Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P1 + HOUR + 1, "active", (P1, P2), false, None)),
    ];
    st.step(P1 + HOUR + 1, "renewal: invoice paid for the second period", renew)?;
    let fail = vec![
        Delivery::Stripe(sub.invoice_failed(&mut st.ids, P2 + HOUR)),
        Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P2 + HOUR + 1, "past_due", (P2, P3), false, None)),
    ];
    st.step(P2 + HOUR + 1, &format!("failed payment: card declined, past due ({grace}-day grace in this catalog)"), fail)?;
    if grace > 1 {
        st.wait(P2 + (grace - 1) * DAY, "… still inside the grace period");
    }
    st.wait(P2 + grace * DAY + 2 * HOUR, "… the grace period is over");
    let recover = vec![
        Delivery::Stripe(sub.invoice_paid(&mut st.ids, P2 + (grace + 1) * DAY, (P2, P3))),
        Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P2 + (grace + 1) * DAY + 1, "active", (P2, P3), false, None)),
    ];
    st.step(P2 + (grace + 1) * DAY + 1, "recovery: the retried payment succeeds", recover)?;
    let c = vec![Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P2 + 12 * DAY, "active", (P2, P3), true, None))];
    st.step(P2 + 12 * DAY, "cancel at period end (customer portal)", c)?;
    st.wait(P3 - DAY, "… one day before the period ends");
    let end = vec![Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.deleted", P3, "canceled", (P2, P3), false, Some(P3)))];
    st.step(P3 + HOUR, "expiry: the subscription ends with its period", end)?;
    Ok(())
}

fn vcm_suite(cat: &Catalog) -> Result<()> {
    let user = "user:ana";
    let mut st = Story::new(cat, user, Probe { product: "suite", tier: "pro" }, "v");
    let sub = StripeSub::new(cat, &mut st.ids, json!({ "user_id": "ana" }), "SUITE_PRO_MONTHLY", T0);
    stripe_story(&mut st, &sub)?;
    // Re-subscribe, to a bundle this time: Pro plus two chosen clouds.
    let t = P3 + 5 * DAY;
    let mut b = StripeSub::new(cat, &mut st.ids, json!({ "user_id": "ana" }), "SUITE_PRO_TWO_CLOUDS_MONTHLY", t);
    b.clouds = vec!["video".into(), "music".into()];
    b.attributed = false;
    let ev = vec![
        Delivery::Stripe(b.subscription(&mut st.ids, "customer.subscription.created", t, "active", (t, t + 30 * DAY), false, None)),
        Delivery::Stripe(b.invoice_paid(&mut st.ids, t + 1, (t, t + 30 * DAY))),
    ];
    st.step(t + 1, "re-subscribe: Pro – 2 Clouds; subscription and invoice arrive before the checkout", ev)?;
    let checkout = b.checkout(&mut st.ids, t + 2);
    st.step(t + 2, "the checkout (video, music chosen) names the buyer: the kept events apply", vec![Delivery::Stripe(checkout.clone())])?;
    st.step(t + 3, "that checkout delivered again (a Stripe retry)", vec![Delivery::Stripe(again(&checkout))])?;
    let ents = st.ents();
    let tools = decide::page_state(cat, &ents, None, &Default::default(), Timestamp(t + 3)).map_err(|e| e.to_string())?;
    let open: Vec<&str> = tools.iter().filter(|x| !x.locked).map(|x| x.tool.as_str()).collect();
    let mut held: Vec<String> = ents
        .grants
        .iter()
        .filter(|g| g.valid_to.is_none_or(|v| v > Timestamp(t + 3)))
        .map(|g| format!("{} {}", g.product, g.tier))
        .collect();
    held.sort();
    let footer = vec![
        format!("grants now: {}", held.join(", ")),
        format!("tools open now: {} of {} ({})", open.len(), tools.len(), open.iter().take(8).copied().collect::<Vec<_>>().join(", ") + if open.len() > 8 { ", …" } else { "" }),
        st.check_order_independence(t + 3)?,
    ];
    st.print(&format!("{} (catalogs/vcm-suite.toml): {user}, Stripe", cat.meta().name), &footer);
    Ok(())
}

fn video_studio(cat: &Catalog) -> Result<()> {
    let user = "user:ben";
    let mut st = Story::new(cat, user, Probe { product: "video", tier: "creator" }, "s");
    let sub = StripeSub::new(cat, &mut st.ids, json!({ "user_id": "ben" }), "VIDEO_PRO_MONTHLY", T0);
    // Purchase and first-period usage.
    let buy = vec![
        Delivery::Stripe(sub.checkout(&mut st.ids, T0)),
        Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.created", T0, "active", (T0, P1), false, None)),
        Delivery::Stripe(sub.invoice_paid(&mut st.ids, T0 + 1, (T0, P1))),
    ];
    st.step(T0 + 1, "purchase: Pro Plan at $79.00 (7200 s a month)", buy)?;
    consume(&mut st, T0 + 10 * DAY, "u1", "standard", "hd", 3000, false)?;
    // Renewal with capped rollover.
    let renew = vec![
        Delivery::Stripe(sub.invoice_paid(&mut st.ids, P1 + HOUR, (P1, P2))),
        Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P1 + HOUR + 1, "active", (P1, P2), false, None)),
    ];
    st.step(P1 + HOUR + 1, "renewal: 7200 s new, 4200 s unused roll over (cap: one period)", renew)?;
    // Tokens, then spending past the allowance.
    let tokens = stripe_one_time(cat, &mut st.ids, "ben", "VIDEO_TOKENS_2_HOURS", P1 + 5 * DAY);
    st.step(P1 + 5 * DAY, "token purchase: 2 hours of seconds ($59.00), one time", vec![Delivery::Stripe(tokens.clone())])?;
    let dup = resent(&mut st.ids, &tokens);
    st.step(P1 + 5 * DAY + 60, "the same purchase sent again under a new event id", vec![Delivery::Stripe(dup)])?;
    consume(&mut st, P1 + 10 * DAY, "u2", "pro", "ultra_hd", 9000, false)?;
    consume(&mut st, P1 + 12 * DAY, "u3", "standard", "standard", 12000, false)?;
    consume(&mut st, P1 + 12 * DAY + 60, "u4", "ultra", "studio", 20000, true)?;
    consume(&mut st, P1 + 12 * DAY + 120, "u5", "standard", "standard", 10000, true)?;
    // Failed payment (no grace in this catalog), cancel, expiry.
    let fail = vec![
        Delivery::Stripe(sub.invoice_failed(&mut st.ids, P2 + HOUR)),
        Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P2 + HOUR + 1, "past_due", (P2, P3), false, None)),
    ];
    st.step(P2 + HOUR + 1, "failed payment: past due; this catalog has no grace (as in the Video Studio app)", fail)?;
    let recover = vec![
        Delivery::Stripe(sub.invoice_paid(&mut st.ids, P2 + 2 * DAY, (P2, P3))),
        Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P2 + 2 * DAY + 1, "active", (P2, P3), false, None)),
    ];
    st.step(P2 + 2 * DAY + 1, "recovery: paid two days later, the period's allowance opens", recover)?;
    let c = vec![Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.updated", P2 + 12 * DAY, "active", (P2, P3), true, None))];
    st.step(P2 + 12 * DAY, "cancel at period end", c)?;
    let more = stripe_one_time(cat, &mut st.ids, "ben", "VIDEO_TOKENS_30_MIN", P2 + 20 * DAY);
    st.step(P2 + 20 * DAY, "token purchase: 30 minutes ($19.00)", vec![Delivery::Stripe(more)])?;
    let end = vec![Delivery::Stripe(sub.subscription(&mut st.ids, "customer.subscription.deleted", P3, "canceled", (P2, P3), false, Some(P3)))];
    st.step(P3 + HOUR, "expiry: the allowance closes; purchased seconds stay", end)?;
    consume(&mut st, P3 + 2 * DAY, "u6", "standard", "standard", 600, false)?;
    let t = P3 + 10 * DAY;
    let s2 = StripeSub::new(cat, &mut st.ids, json!({ "user_id": "ben" }), "VIDEO_CREATOR_MONTHLY", t);
    let ev = vec![
        Delivery::Stripe(s2.checkout(&mut st.ids, t)),
        Delivery::Stripe(s2.subscription(&mut st.ids, "customer.subscription.created", t, "active", (t, t + 30 * DAY), false, None)),
        Delivery::Stripe(s2.invoice_paid(&mut st.ids, t + 1, (t, t + 30 * DAY))),
    ];
    st.step(t + 1, "re-subscribe: Creator Plan ($29.00, 1800 s a month)", ev)?;
    let footer = vec![st.check_order_independence(t + 1)?];
    st.print(&format!("{} (catalogs/video-studio.toml): {user}, Stripe, the Video Studio app's seconds", cat.meta().name), &footer);
    Ok(())
}

/// Plans a usage request with the core's charge rules (allowance, then purchased
/// seconds, then overage when allowed) and records it when it is allowed.
fn consume(st: &mut Story, at: i64, req: &str, model: &str, quality: &str, seconds: u64, overage: bool) -> Result<()> {
    st.state = reduce_set(st.cat, &st.facts, Timestamp(at));
    let wallet = st.state.subject(&st.subject).map(|s| s.wallet.clone()).unwrap_or_default();
    let request = UsageRequest { request_id: req.into(), model: model.into(), quality: quality.into(), seconds };
    let policy = OveragePolicy { allowed: overage, limit: None, spent: 0 };
    let plan = usage::plan_usage(st.cat, &wallet, &request, &policy, Timestamp(at)).map_err(|e| e.to_string())?;
    let q = usage::quote(st.cat, model, quality, seconds).map_err(|e| e.to_string())?;
    let head = format!("generate {seconds} s, {model} × {quality} (quote {})", money(q.cost.amount, &q.cost.currency));
    match plan {
        ChargeOutcome::Charge(p) => {
            let mut parts = Vec::new();
            if p.from_allowance > 0 {
                parts.push(format!("{} s allowance", p.from_allowance));
            }
            if p.from_purchased > 0 {
                parts.push(format!("{} s purchased", p.from_purchased));
            }
            if p.overage_units > 0 {
                parts.push(format!("{} s overage billed {}", p.overage_units, money(p.overage_cost, &p.currency)));
            }
            let fact = Fact::usage(
                tollgate::billing::UsageFact {
                    request_id: req.into(),
                    subject: Subject::parse(&st.subject).map_err(|e| e.to_string())?,
                    pool: p.pool.clone(),
                    units: seconds,
                    model: Some(model.into()),
                    quality: Some(quality.into()),
                    takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
                },
                Timestamp(at),
            );
            st.step(at, &format!("{head}: charged from {}", parts.join(" + ")), vec![Delivery::App(fact)])
        }
        ChargeOutcome::Deny(d) => {
            let why = match d.reason {
                DenyReason::InsufficientBalance => "overages not allowed by the user".to_string(),
                DenyReason::OverageLimitExceeded => format!(
                    "{} s of overage would cost {}, over the {} cap",
                    d.overage_units,
                    money(d.overage_cost, &d.currency),
                    money(d.overage_limit, &d.currency)
                ),
                DenyReason::Paused => "the subscription is paused: its credits are kept until it resumes".to_string(),
            };
            st.wait(at, &format!("{head}: refused (402 {}): {} s available, {} s required; {why}", d.reason.as_str(), d.available, d.required));
            Ok(())
        }
    }
}

fn org_seats(cat: &Catalog) -> Result<()> {
    let org = "org:acme";
    let mut st = Story::new(cat, org, Probe { product: "org", tier: "BUSINESS" }, "o");
    let mut sub = StripeSub::new(cat, &mut st.ids, json!({ "organization_id": "acme" }), "ORG_BUSINESS_MONTHLY", T0);
    sub.quantity = 2;
    stripe_story(&mut st, &sub)?;
    // Seats, in the second story: a new subscription of 2 seats, three members.
    let t = P3 + 3 * DAY;
    let mut s2 = StripeSub::new(cat, &mut st.ids, json!({ "organization_id": "acme" }), "ORG_BUSINESS_MONTHLY", t);
    s2.quantity = 2;
    let ev = vec![
        Delivery::Stripe(s2.checkout(&mut st.ids, t)),
        Delivery::Stripe(s2.subscription(&mut st.ids, "customer.subscription.created", t, "active", (t, t + 30 * DAY), false, None)),
        Delivery::Stripe(s2.invoice_paid(&mut st.ids, t + 1, (t, t + 30 * DAY))),
    ];
    st.step(t + 1, "re-subscribe: Business × 2 seats", ev)?;
    let members = ["user:cho", "user:dev", "user:eli"];
    st.memberships = members.iter().map(|u| Membership { org: org.into(), user: (*u).into(), role: None }).collect();
    let mut footer = Vec::new();
    for (i, u) in members.iter().enumerate() {
        let at = t + HOUR + i as i64 * 60;
        st.state = reduce_set(cat, &st.facts, Timestamp(at));
        match tollgate::billing::members::check_allocation(&st.state, org, u, &st.memberships) {
            Ok(()) => {
                let f = Fact::seat_assigned(Subject::parse(org).map_err(|e| e.to_string())?, Subject::parse(u).map_err(|e| e.to_string())?, &format!("seat-{i}"), Timestamp(at));
                st.step(at, &format!("seat given to {u}"), vec![Delivery::App(f)])?;
            }
            Err(r) => st.wait(at, &format!("seat for {u} refused (409): {}", r.reason.as_str())),
        }
    }
    let up = vec![Delivery::Stripe({
        let s3 = StripeSub { quantity: 3, ..s2.clone() };
        s3.subscription(&mut st.ids, "customer.subscription.updated", t + 2 * HOUR, "active", (t, t + 30 * DAY), false, None)
    })];
    st.step(t + 2 * HOUR, "quantity 2 → 3: one more seat", up)?;
    let at = t + 2 * HOUR + 60;
    st.state = reduce_set(cat, &st.facts, Timestamp(at));
    tollgate::billing::members::check_allocation(&st.state, org, "user:eli", &st.memberships).map_err(|r| format!("seat for eli: {}", r.reason.as_str()))?;
    let f = Fact::seat_assigned(Subject::parse(org).map_err(|e| e.to_string())?, Subject::parse("user:eli").map_err(|e| e.to_string())?, "seat-eli-2", Timestamp(at));
    st.step(at, "seat given to user:eli", vec![Delivery::App(f)])?;
    // What each member gets through the organization now.
    let at = t + 3 * HOUR;
    st.state = reduce_set(cat, &st.facts, Timestamp(at));
    let book = st.state.seats.get(org).map(|b| (b.seats, b.used())).unwrap_or((0, 0));
    footer.push(format!("seats: {} of {} used", book.1, book.0));
    for u in members {
        let ents = tollgate::billing::members::effective_entitlements(&st.state, u, &st.memberships);
        let d = decide::can(cat, &ents, "sso_enabled", Timestamp(at)).map_err(|e| e.to_string())?;
        let a = decide::has_access(cat, &ents, "org", "BUSINESS", Timestamp(at)).map_err(|e| e.to_string())?;
        footer.push(format!("{u}: org ≥ BUSINESS {}; sso_enabled {}", describe(&a), if d.allowed { "✓" } else { "✗" }));
    }
    footer.push(st.check_order_independence(at)?);
    st.print(&format!("{} (catalogs/org-seats.toml): {org}, Stripe, the Org Seats app's seats", cat.meta().name), &footer);
    Ok(())
}

fn razorpay_ai(cat: &Catalog) -> Result<()> {
    let user = "user:dia";
    let mut st = Story::new(cat, user, Probe { product: "premium", tier: "PREMIUM" }, "r");
    st.wait(T0, "signed up: no plan (free tier)");
    let r = RazorpaySub { user: "dia".into(), plan: "plan_premium_monthly".into(), id: st.ids.next("sub"), customer: st.ids.next("cust"), start: T0 };
    let ev = |st: &mut Story, v: Value| Delivery::Razorpay(v, st.ids.next("evt"));
    let a = r.event("subscription.activated", T0, "active", (T0, P1), None);
    let p = r.payment(&mut st.ids, T0 + 1, 49900);
    let c = r.event("subscription.charged", T0 + 1, "active", (T0, P1), Some(p));
    let d = vec![ev(&mut st, a), ev(&mut st, c)];
    st.step(T0 + 1, "purchase: Premium ₹499.00/month (activated, charged)", d)?;
    spend(&mut st, T0 + 9 * DAY, "g1", 1500)?;
    let p = r.payment(&mut st.ids, P1 + HOUR, 49900);
    let c = r.event("subscription.charged", P1 + HOUR, "active", (P1, P2), Some(p));
    let d = vec![ev(&mut st, c.clone())];
    st.step(P1 + HOUR, "renewal: charged; AI credits reset to 2000 (as in the Razorpay AI app)", d)?;
    let event_id = st.log.last().map(|f| f.event.clone()).unwrap_or_default();
    st.step(P1 + HOUR + 30, "the same charge redelivered (same x-razorpay-event-id)", vec![Delivery::Razorpay(c, event_id)])?;
    let h = r.event("subscription.halted", P2 + HOUR, "halted", (P2, P3), None);
    let d = vec![ev(&mut st, h)];
    st.step(P2 + HOUR, "payment failures: halted, past due (3-day grace)", d)?;
    st.wait(P2 + 2 * DAY, "… inside the grace period");
    st.wait(P2 + 3 * DAY + 2 * HOUR, "… the grace period is over");
    let p = r.payment(&mut st.ids, P2 + 4 * DAY, 49900);
    let c = r.event("subscription.charged", P2 + 4 * DAY, "active", (P2, P3), Some(p));
    let d = vec![ev(&mut st, c)];
    st.step(P2 + 4 * DAY, "recovery: charged", d)?;
    let x = r.event("subscription.cancelled", P2 + 10 * DAY, "cancelled", (P2, P3), None);
    let d = vec![ev(&mut st, x)];
    st.step(P2 + 10 * DAY, "cancelled: access kept until the paid period ends", d)?;
    st.wait(P3 + HOUR, "… the paid period is over");
    // Top-up without a plan, then re-subscribe.
    let topup = json!({ "entity": "event", "account_id": "acc_demo", "event": "payment.captured", "contains": ["payment"],
        "payload": { "payment": { "entity": {
            "id": st.ids.next("pay"), "entity": "payment", "amount": 9900, "currency": "INR", "status": "captured",
            "order_id": st.ids.next("order"), "invoice_id": null, "method": "upi", "captured": true,
            "customer_id": null, "created_at": P3 + 2 * DAY, "notes": { "user_id": "dia", "offer_key": "AI_CREDITS_TOPUP_500" } } } },
        "created_at": P3 + 2 * DAY });
    let d = vec![ev(&mut st, topup)];
    st.step(P3 + 2 * DAY, "top-up: 500 AI credits for ₹99.00", d)?;
    let t = P3 + 6 * DAY;
    let r2 = RazorpaySub { user: "dia".into(), plan: "plan_premium_monthly".into(), id: st.ids.next("sub"), customer: r.customer.clone(), start: t };
    let p = r2.payment(&mut st.ids, t + 1, 49900);
    let a = r2.event("subscription.activated", t, "active", (t, t + 30 * DAY), None);
    let c = r2.event("subscription.charged", t + 1, "active", (t, t + 30 * DAY), Some(p));
    let d = vec![ev(&mut st, a), ev(&mut st, c)];
    st.step(t + 1, "re-subscribe: Premium again", d)?;
    let footer = vec![st.check_order_independence(t + 1)?];
    st.print(&format!("{} (catalogs/razorpay-ai.toml): {user}, Razorpay, the Razorpay AI app's credits", cat.meta().name), &footer);
    Ok(())
}

/// Spends AI credits (the app records the usage once the generation is done).
fn spend(st: &mut Story, at: i64, req: &str, units: u64) -> Result<()> {
    st.state = reduce_set(st.cat, &st.facts, Timestamp(at));
    let have = st.state.balance(&st.subject, "ai_credits");
    if have < units as i64 {
        st.wait(at, &format!("generate with {units} AI credits: refused, {have} available"));
        return Ok(());
    }
    let f = Fact::usage(
        tollgate::billing::UsageFact {
            request_id: req.into(),
            subject: Subject::parse(&st.subject).map_err(|e| e.to_string())?,
            pool: "ai_credits".into(),
            units,
            model: None,
            quality: None,
            takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
        },
        Timestamp(at),
    );
    st.step(at, &format!("generations use {units} AI credits"), vec![Delivery::App(f)])
}

pub fn run(root: &Path) -> Result<()> {
    note("each event: built in the provider's shape, signed (Stripe: t=…,v1=HMAC-SHA256; Razorpay: hex HMAC),");
    note("verified, parsed into facts and folded by the reducer; the state is printed after each step");
    let cats: BTreeMap<String, Catalog> = catalogs(root)?.into_iter().collect();
    let get = |n: &str| cats.get(n).ok_or_else(|| format!("catalogs/{n}.toml is missing"));
    vcm_suite(get("vcm-suite")?)?;
    video_studio(get("video-studio")?)?;
    razorpay_ai(get("razorpay-ai")?)?;
    org_seats(get("org-seats")?)?;
    println!();
    Ok(())
}
