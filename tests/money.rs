//! Money is conserved by construction: a charge is recorded with what it took, and every
//! fold applies exactly that, whatever arrives later and in whatever order.
//!
//! The examples are the ways credits used to be created or destroyed at the seams (a
//! crafted idempotency key, an admin credit folded twice, overage charged again in
//! tokens, a subscription moved between subjects). The property test runs a small
//! store the way the worker runs the real one: charges decided by the core against the
//! stored lots, recorded as facts, and every other fact folded with the charges' per-lot
//! totals and written whole; deliveries late, early, twice; after every step the store
//! is checked against a plain reference of what was granted and taken.

#[path = "events/support.rs"]
mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use support::*;
use tollgate::billing::*;
use tollgate::charge::{charge, request_id, ChargeDecision, ChargeInput, ChargeRequest, Refusal};
use tollgate::credits::{OveragePolicy, Wallet};
use tollgate::model::Entitlements;
use tollgate::Catalog;

const U: &str = "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e";

fn studio() -> Catalog {
    shipped("video-studio")
}

fn user() -> Subject {
    Subject::user(U)
}

/// A paid one-time token bundle of `offer` bought at `at`.
fn bundle(id: &str, offer: &str, at: i64) -> Fact {
    Fact {
        key: format!("stripe:checkout:cs_{id}:paid"),
        provider: Provider::Stripe,
        event: format!("evt_{id}"),
        at: t(at),
        body: FactBody::Purchase(Purchase {
            id: format!("stripe:cs_{id}"),
            mode: PurchaseMode::Payment,
            outcome: PurchaseOutcome::Paid,
            subject: Some(user()),
            customer: Some("stripe:cus_m".into()),
            subscription: None,
            offer: Some(offer.into()),
            quantity: 1,
            clouds: vec![],
            payment_refs: vec![format!("stripe:pi_{id}")],
            amount: 1900,
            currency: "usd".into(),
            no_payment_required: false,
        }),
        catalog_version: None,
    }
}

fn refund(id: &str, at: i64) -> Fact {
    Fact {
        key: format!("stripe:refund:re_{id}"),
        provider: Provider::Stripe,
        event: format!("evt_re_{id}"),
        at: t(at),
        body: FactBody::Refund(Reversal {
            id: format!("stripe:re_{id}"),
            payment_refs: vec![format!("stripe:pi_{id}")],
            amount: 1900,
            reversed: 1900,
            own_amount: 0,
            currency: "usd".into(),
            outcome: None,
        }),
        catalog_version: None,
    }
}

fn admin_credit(id: &str, amount: i64, at: i64) -> Fact {
    Fact::credit_adjustment(CreditAdjustment::by_operator(user(), id, "video_seconds", amount, "", None), t(at))
}

/// A store as the worker keeps it: facts (charges apart), lots with their `used`.
#[derive(Clone, Default)]
struct Store {
    facts: Vec<Fact>,
    charges: BTreeMap<String, (String, Vec<UsageTake>, u64)>,
    wallet: Wallet,
    allow_overages: bool,
}

impl Store {
    fn usage(&self) -> UsageTotals {
        let mut lots = BTreeMap::new();
        for l in &self.wallet.lots {
            if l.used > 0 {
                lots.insert(l.key.clone(), l.used);
            }
        }
        let mut out = UsageTotals::new();
        if !lots.is_empty() {
            out.insert(user().to_string(), lots);
        }
        out
    }

    /// A delivery: the fact is stored (once by key) and the subject folded and written whole.
    fn deliver(&mut self, cat: &Catalog, f: Fact, now: i64) {
        if !self.facts.iter().any(|x| x.key == f.key) {
            self.facts.push(f);
        }
        self.refold(cat, now);
    }

    fn refold(&mut self, cat: &Catalog, now: i64) {
        let st = reduce_with_usage(cat, &self.facts, &self.usage(), t(now));
        if let Some(s) = st.subjects.get(&user().to_string()) {
            // Written whole; each lot carries the store's `used` (checked unchanged).
            let before = self.usage();
            for l in &s.wallet.lots {
                let read = before.get(&user().to_string()).and_then(|m| m.get(&l.key)).copied().unwrap_or(0);
                assert_eq!(l.used, read, "the fold applied every charge of lot {}", l.key);
            }
            assert!(s.wallet.uncovered.is_empty(), "{:?}", s.wallet.uncovered);
            self.wallet = s.wallet.clone();
        }
    }

    /// A charge decided by the core from the stored lots, recorded with its takes.
    fn charge(&mut self, cat: &Catalog, key: &str, seconds: u64, now: i64) -> Result<u64, String> {
        let subject = user();
        let id = request_id(&subject, key);
        if let Some((_, _, units)) = self.charges.get(&id) {
            return Ok(*units); // replay: decided by the request id alone
        }
        let ents = Entitlements::default();
        let policy = OveragePolicy { allowed: self.allow_overages, limit: None, spent: 0 };
        let input = ChargeInput { entitlements: &ents, wallet: &self.wallet, overage: &policy };
        let req = ChargeRequest { subject: &subject, idempotency_key: key, model: "standard", quality: "standard", seconds };
        match charge(cat, input, &req, t(now)).map_err(|e| e.to_string())? {
            ChargeDecision::Refuse(Refusal::NotEntitled { .. }) => Err("not entitled".into()),
            ChargeDecision::Refuse(Refusal::Short { denial: d, .. }) => Err(d.to_string()),
            ChargeDecision::Charge(c) => {
                let FactBody::Usage(u) = &c.fact.body else { panic!("a usage fact") };
                assert_eq!(u.accounted(), Some(seconds), "takes plus overage are the units");
                for e in &c.entries {
                    assert!(e.key.starts_with(&format!("usage:{id}:")), "{}", e.key);
                }
                // The store's takes: remaining >= units, then remaining -= units, used += units.
                for tk in &c.takes {
                    let l = self.wallet.lot(&tk.lot).expect("a stored lot");
                    assert!(!l.closed && l.remaining >= tk.units, "the core took only what the lot holds");
                }
                c.apply_to(&mut self.wallet);
                self.charges.insert(id, (c.fact.key.clone(), c.takes.clone(), seconds));
                Ok(seconds)
            }
        }
    }

    fn balance(&self) -> i64 {
        self.wallet.balance("video_seconds")
    }
}

#[test]
fn a_crafted_idempotency_key_is_a_new_charge_that_pays() {
    let cat = studio();
    let mut s = Store::default();
    s.deliver(&cat, bundle("b1", "VIDEO_TOKENS_30_MIN", T0), T0);
    assert_eq!(s.charge(&cat, "k1", 30, T0 + 10), Ok(30));
    let lot = s.wallet.lots[0].key.clone();
    // The key of the first charge's per-lot entry, as a caller could read it.
    let crafted = format!("k1:{lot}");
    assert_eq!(s.charge(&cat, &crafted, 60, T0 + 20), Ok(60));
    assert_eq!(s.balance(), 1800 - 90, "the crafted key paid like any other");
    assert_ne!(request_id(&user(), &crafted), format!("{}:{lot}", request_id(&user(), "k1")));
    assert_eq!(s.charge(&cat, "k1", 30, T0 + 30), Ok(30), "a retry is answered, not charged");
    assert_eq!(s.balance(), 1710);
}

#[test]
fn an_admin_credit_is_charged_once_whatever_arrives_later() {
    let cat = studio();
    let mut s = Store::default();
    s.deliver(&cat, admin_credit("comp-1", 100, T0 + 100), T0 + 100);
    assert_eq!(s.charge(&cat, "r1", 30, T0 + 200), Ok(30));
    assert_eq!(s.balance(), 70);
    // A bundle bought two minutes before the charge, delivered after it.
    s.deliver(&cat, bundle("late", "VIDEO_TOKENS_30_MIN", T0 + 80), T0 + 300);
    assert_eq!(s.balance(), 1870, "100 - 30 + 1800");
    s.refold(&cat, T0 + 400); // a cron tick
    assert_eq!(s.balance(), 1870);
    let used: i64 = s.wallet.lots.iter().map(|l| l.used).sum();
    assert_eq!(used, 30, "one charge, counted once");
    s.wallet.check_invariants().unwrap();
}

#[test]
fn overage_billed_is_never_charged_again_in_tokens() {
    let cat = studio();
    let mut s = Store { allow_overages: true, ..Store::default() };
    s.deliver(&cat, admin_credit("zero", 1, T0), T0);
    assert_eq!(s.charge(&cat, "o1", 1, T0 + 1), Ok(1));
    assert_eq!(s.charge(&cat, "o2", 30, T0 + 120), Ok(30));
    let (_, takes, _) = &s.charges[&request_id(&user(), "o2")];
    assert!(takes.is_empty(), "all 30 s were overage");
    s.deliver(&cat, bundle("b", "VIDEO_TOKENS_30_MIN", T0 + 60), T0 + 180);
    assert_eq!(s.balance(), 1800, "the bundle bought a minute earlier holds all its seconds");
    let st = reduce(&cat, &s.facts, t(T0 + 200));
    assert!(st.subjects[&user().to_string()].overage.is_empty(), "overage is the charge's own record, not a fold's guess");
}

#[test]
fn a_refund_takes_what_is_left_after_every_charge() {
    let cat = studio();
    let mut s = Store::default();
    s.deliver(&cat, bundle("r", "VIDEO_TOKENS_30_MIN", T0), T0);
    assert_eq!(s.charge(&cat, "c1", 1000, T0 + 100), Ok(1000));
    // Refunded a minute before the charge, delivered after it.
    s.deliver(&cat, refund("r", T0 + 40), T0 + 200);
    assert_eq!(s.balance(), 0);
    let l = &s.wallet.lots[0];
    assert_eq!((l.granted, l.used, l.revoked), (1800, 1000, 800), "conserved: granted = used + revoked");
    s.wallet.check_invariants().unwrap();
}

#[test]
fn the_first_subject_of_a_subscription_keeps_it() {
    let cat = shipped("vcm-suite");
    let path = "stripe/customer.subscription.updated.active.basil.json";
    let first = edit(path, |v| obj(v)["metadata"]["user_id"] = serde_json::json!("first"));
    // A later snapshot of the same subscription naming someone else (what a stand-in
    // checkout or a tampered metadata field sends).
    let moved = edit(path, |v| {
        obj(v)["metadata"]["user_id"] = serde_json::json!("second");
        v["id"] = serde_json::json!("evt_moved");
        v["created"] = serde_json::json!(v["created"].as_i64().unwrap() + 3600);
        obj(v)["cancel_at_period_end"] = serde_json::json!(true);
    });
    let mut all = stripe_facts(&cat, &first);
    all.extend(stripe_facts(&cat, &moved));
    for order in [all.clone(), all.iter().rev().cloned().collect()] {
        let st = reduce(&cat, &order, t(T0 + DAY));
        let sub = st.subscriptions.values().next().expect("the subscription");
        assert_eq!(sub.subject, Some(Subject::user("first")), "the subscription stays with its first subject");
        assert!(sub.cancel_at_period_end, "and the later event still updates it");
        assert!(st.subjects.get("user:second").is_none_or(|s| s.grants.is_empty()), "nothing is granted to the other");
        assert!(st.warnings.iter().any(|w| w.contains("user:second")), "{:?}", st.warnings);
    }
}

#[test]
fn folding_charges_as_totals_equals_folding_them_as_facts() {
    let cat = studio();
    let mut s = Store::default();
    s.deliver(&cat, bundle("a", "VIDEO_TOKENS_30_MIN", T0), T0);
    s.deliver(&cat, admin_credit("x", 50, T0 + 5), T0 + 5);
    for i in 0..4 {
        s.charge(&cat, &format!("k{i}"), 400, T0 + 10 + i).unwrap();
    }
    let mut with_usage = s.facts.clone();
    for (key, takes, units) in s.charges.values() {
        let id = key.trim_start_matches("usage:").to_string();
        with_usage.push(Fact::usage(
            UsageFact {
                request_id: id,
                subject: user(),
                pool: "video_seconds".into(),
                units: *units,
                model: None,
                quality: None,
                takes: Some(takes.clone()),
                overage_units: 0,
                overage_cost: 0,
                currency: String::new(),
            },
            t(T0 + 20),
        ));
    }
    let a = reduce(&cat, &with_usage, t(T0 + 100));
    let b = reduce_with_usage(&cat, &s.facts, &s.usage(), t(T0 + 100));
    let key = user().to_string();
    assert_eq!(a.subjects[&key].wallet.lots, b.subjects[&key].wallet.lots);
    assert_eq!(a.subjects[&key].balances, b.subjects[&key].balances);
    assert_eq!(b.subjects[&key].balances["video_seconds"], 1850 - 1600);
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    /// Buy bundle `n` at `at` (hours), delivered now.
    Buy { n: u8, back: u8 },
    /// Deliver the bundle bought earlier again.
    Redeliver { n: u8 },
    Admin { n: u8, amount: u16, back: u8 },
    Charge { key: u8, seconds: u16 },
    /// A key crafted from another charge's request id and a lot key.
    Crafted { key: u8, seconds: u16 },
    Refund { n: u8, back: u8 },
    Tick,
    Overages(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8, 0..5u8).prop_map(|(n, back)| Op::Buy { n, back }),
        (0..4u8).prop_map(|n| Op::Redeliver { n }),
        (0..3u8, 1..500u16, 0..5u8).prop_map(|(n, amount, back)| Op::Admin { n, amount, back }),
        (0..12u8, 1..1500u16).prop_map(|(key, seconds)| Op::Charge { key, seconds }),
        (0..12u8, 1..1500u16).prop_map(|(key, seconds)| Op::Crafted { key, seconds }),
        (0..4u8, 0..5u8).prop_map(|(n, back)| Op::Refund { n, back }),
        Just(Op::Tick),
        any::<bool>().prop_map(Op::Overages),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// After every step: no lot negative; per lot, granted = remaining + used + revoked
    /// + expired; the balance is what was credited minus what charges took and refunds
    /// revoked; every accepted charge is taken exactly once; a replay takes nothing.
    #[test]
    fn money_is_conserved_under_any_interleaving(ops in prop::collection::vec(op(), 1..60)) {
        let cat = studio();
        let mut s = Store::default();
        let mut now = T0 + 10 * DAY;
        let mut bought: BTreeMap<u8, Fact> = BTreeMap::new();
        let mut taken_by_charges = 0i64;
        for o in ops {
            now += 600;
            match o {
                Op::Buy { n, back } => {
                    let f = bundle(&format!("p{n}"), "VIDEO_TOKENS_30_MIN", now - i64::from(back) * 3600);
                    bought.entry(n).or_insert_with(|| f.clone());
                    s.deliver(&cat, bought[&n].clone(), now);
                }
                Op::Redeliver { n } => {
                    if let Some(f) = bought.get(&n) {
                        s.deliver(&cat, f.clone(), now);
                    }
                }
                Op::Admin { n, amount, back } => {
                    s.deliver(&cat, admin_credit(&format!("a{n}:{amount}"), i64::from(amount), now - i64::from(back) * 3600), now);
                }
                Op::Charge { key, seconds } | Op::Crafted { key, seconds } => {
                    let k = match o {
                        Op::Crafted { .. } => {
                            let lot = s.wallet.lots.first().map(|l| l.key.clone()).unwrap_or_default();
                            format!("{}:{lot}", request_id(&user(), &format!("k{key}")))
                        }
                        _ => format!("k{key}"),
                    };
                    let before = s.balance();
                    let known = s.charges.contains_key(&request_id(&user(), &k));
                    if let Ok(_units) = s.charge(&cat, &k, u64::from(seconds), now) {
                        let took = before - s.balance();
                        if known {
                            prop_assert_eq!(took, 0, "a replay takes nothing");
                        } else {
                            prop_assert!(took <= i64::from(seconds));
                            taken_by_charges += took;
                        }
                    } else {
                        prop_assert_eq!(before, s.balance(), "a refusal takes nothing");
                    }
                }
                Op::Refund { n, back } => {
                    if bought.contains_key(&n) {
                        s.deliver(&cat, refund(&format!("p{n}"), now - i64::from(back) * 3600), now);
                    }
                }
                Op::Tick => s.refold(&cat, now),
                Op::Overages(on) => s.allow_overages = on,
            }
            s.wallet.check_invariants().map_err(TestCaseError::fail)?;
            let mut credited = 0;
            let mut revoked = 0;
            for l in &s.wallet.lots {
                prop_assert!(l.remaining >= 0);
                prop_assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "lot {}", l.key);
                credited += l.granted;
                revoked += l.revoked + l.expired;
            }
            let used: i64 = s.wallet.lots.iter().map(|l| l.used).sum();
            prop_assert_eq!(used, taken_by_charges, "every charge taken once, none handed back");
            prop_assert_eq!(s.balance(), credited - used - revoked);
        }
    }
}
