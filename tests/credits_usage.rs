//! Credits and usage: quotes and their rounding, the charge plan and its
//! denials, period renewal with capped rollover and reset pools, free amounts,
//! adjustments, and idempotent purchases and usage.

#[path = "events/support.rs"]
mod support;

use proptest::prelude::*;
use support::*;
use tollgate::billing::*;
use tollgate::credits::{
    capped_rollover, ChargeOutcome, DenyReason, EntryKind, LotKind, NewLot, OveragePolicy, Wallet,
};
use tollgate::money::Decimal;
use tollgate::usage::{overage_cost, plan_usage, quote, UsageError, UsageRequest};

/// A paid invoice of `sub` for the period `[ps, pe)` with one item of `offer`.
fn paid(sub: &str, k: usize, offer: &str, ps: i64, pe: i64) -> Fact {
    paid_at(sub, k, offer, ps, pe, ps + 60, 2900)
}

fn use_(id: &str, pool: &str, units: u64, at: i64) -> Fact {
    Fact::usage(
        UsageFact {
            request_id: id.into(),
            subject: Subject::user("c"),
            pool: pool.into(),
            units,
            model: Some("standard".into()),
            quality: Some("standard".into()),
            takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
        },
        t(at),
    )
}

const C: &str = "user:c";

#[test]
fn video_studio_prices_exactly() {
    let cat = shipped("video-studio");
    let cost = |m: &str, q: &str, s: u64| quote(&cat, m, q, s).unwrap().cost.amount;
    assert_eq!(cost("standard", "watermark", 60), 60); // 0.01 x 1.0 x 60
    assert_eq!(cost("standard", "standard", 30), 54); // 0.015 x 1.2 x 30 = 0.54
    assert_eq!(cost("pro", "ultra_hd", 10), 120); // 0.06 x 2.0 x 10
    assert_eq!(cost("ultra", "studio", 7), 263); // 2.625 -> 2.63
    let q = quote(&cat, "ultra", "studio", 7).unwrap();
    assert_eq!(q.overage_cost.amount, 394); // 3.9375 -> 3.94
    assert_eq!(q.pool, "video_seconds");
    assert_eq!((q.base_price_per_second.to_string(), q.multiplier.to_string()), ("0.15".into(), "2.5".into()));
    assert_eq!(overage_cost(&cat, "ultra", "studio", 7).unwrap(), 394);
    assert_eq!(overage_cost(&cat, "ultra", "studio", 0).unwrap(), 0);
    // Unpriced combinations and empty requests are malformed questions.
    let e = quote(&cat, "standard", "studio", 10).unwrap_err();
    assert!(matches!(e, UsageError::UnknownRate { .. }));
    assert!(e.to_string().contains("ultra x studio"));
    assert_eq!(quote(&cat, "pro", "hd", 0).unwrap_err().code(), "out_of_range");
    assert_eq!(quote(&shipped("org-seats"), "pro", "hd", 5).unwrap_err(), UsageError::NoUsagePricing);
}

fn exact(d: &Decimal) -> (u128, u128) {
    (d.mantissa as u128, 10u128.pow(d.scale))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, rng_seed: proptest::test_runner::RngSeed::Fixed(2), failure_persistence: None, ..ProptestConfig::default() })]

    /// The quote rounds up once on the total: it is the least whole number of
    /// cents not below the exact price, never a sum of rounded seconds.
    #[test]
    fn quotes_round_up_once(rate in 0..11usize, seconds in 1..86_400u64) {
        static CAT: std::sync::OnceLock<tollgate::Catalog> = std::sync::OnceLock::new();
        let cat = CAT.get_or_init(|| shipped("video-studio"));
        let r = &cat.doc.usage.as_ref().unwrap().rates[rate];
        let q = quote(cat, &r.model, &r.quality, seconds).unwrap();
        let ((bn, bd), (mn, md)) = (exact(&r.base_price_per_second), exact(&r.multiplier));
        // cents = seconds x base x multiplier x 100, as a fraction num / den.
        let (num, den) = (seconds as u128 * bn * mn * 100, bd * md);
        let c = q.cost.amount as u128;
        prop_assert!(c * den >= num && (c.saturating_sub(1)) * den < num || (num == 0 && c == 0));
        let per_second = (bn * mn * 100).div_ceil(bd * md);
        prop_assert!(c <= per_second * seconds as u128);
        prop_assert!(q.overage_cost.amount >= q.cost.amount);
    }
}

#[test]
fn the_charge_plan_spends_allowance_then_tokens_then_overage() {
    let cat = catalog();
    let mut fs = vec![link("cus_c", "c", T0), paid("sub_c", 0, "STUDIO_BASIC_MONTHLY", T0, P1E)];
    // 1800 s of allowance; a 30-minute token bundle bought on day 2.
    let tokens = edit("stripe/checkout.session.completed.payment.json", |v| {
        v["created"] = serde_json::json!(T0 + 2 * DAY);
        obj(v)["client_reference_id"] = serde_json::json!("c");
        obj(v)["customer"] = serde_json::json!("cus_c");
    });
    fs.extend(stripe_facts(&cat, &tokens));
    let st = fold(&cat, &fs, T0 + 3 * DAY);
    let w = &st.subject(C).unwrap().wallet;
    let now = t(T0 + 3 * DAY);
    let req = |s: u64| UsageRequest {
        request_id: "r".into(),
        model: "standard".into(),
        quality: "standard".into(),
        seconds: s,
    };
    let no = OveragePolicy::default();

    let ChargeOutcome::Charge(p) = plan_usage(&cat, w, &req(3000), &no, now).unwrap() else { panic!() };
    assert_eq!((p.from_allowance, p.from_purchased, p.overage_units, p.overage_cost), (1800, 1200, 0, 0));
    assert_eq!(p.cost, quote(&cat, "standard", "standard", 3000).unwrap().cost.amount, "one pricing function");
    assert_eq!(p.takes[0].kind, LotKind::Allowance);

    let ChargeOutcome::Deny(d) = plan_usage(&cat, w, &req(4000), &no, now).unwrap() else { panic!() };
    assert_eq!((d.reason, d.available, d.required, d.cost), (DenyReason::InsufficientBalance, 3600, 4000, 7200));
    assert_eq!(d.reason.as_str(), "insufficient_balance");
    assert!(d.to_string().contains("3600 available, 4000 required"), "{d}");

    let yes = OveragePolicy { allowed: true, ..Default::default() };
    let ChargeOutcome::Charge(p) = plan_usage(&cat, w, &req(4000), &yes, now).unwrap() else { panic!() };
    assert_eq!(
        (p.overage_units, p.overage_cost),
        (400, 1080),
        "400 s x 0.018 x 1.5 = 10.80 USD, under the 100 USD default"
    );

    let capped = OveragePolicy { allowed: true, limit: Some(1000), spent: 0 };
    let ChargeOutcome::Deny(d) = plan_usage(&cat, w, &req(4000), &capped, now).unwrap() else { panic!() };
    assert_eq!((d.reason, d.overage_cost, d.overage_limit), (DenyReason::OverageLimitExceeded, 1080, 1000));
    let spent = OveragePolicy { allowed: true, limit: None, spent: 9000 };
    assert!(!plan_usage(&cat, w, &req(4000), &spent, now).unwrap().is_allowed(), "9000 + 1080 > 10000");

    // The plan as JSON: a tagged value the app can show.
    let j = serde_json::to_value(plan_usage(&cat, w, &req(4000), &no, now).unwrap()).unwrap();
    assert_eq!(j["outcome"], "deny");
    assert_eq!(j["reason"], "insufficient_balance");
    assert!(plan_usage(&cat, w, &req(5), &no, now).unwrap().is_allowed());
    assert!(plan_usage(&cat, w, &UsageRequest { model: "nope".into(), ..req(5) }, &no, now).is_err());
}

#[test]
fn recorded_usage_draws_the_same_way_and_counts_once() {
    let cat = catalog();
    let mut fs = vec![link("cus_c", "c", T0), paid("sub_c", 0, "STUDIO_BASIC_MONTHLY", T0, P1E)];
    fs.push(use_("req_1", "video_seconds", 1000, T0 + DAY));
    fs.push(use_("req_1", "video_seconds", 1000, T0 + DAY));
    fs.push(use_("req_2", "video_seconds", 1000, T0 + 2 * DAY));
    let st = fold(&cat, &fs, T0 + 3 * DAY);
    assert_eq!(st.balance(C, "video_seconds"), 0);
    let s = st.subject(C).unwrap();
    assert_eq!(s.overage.len(), 1);
    assert_eq!((s.overage[0].request_id.as_str(), s.overage[0].units, s.overage[0].cost), ("req_2", 200, Some(540)));
    // The fold keeps one usage entry per lot (`used:<lot>`), equal to what the lot gave.
    let usage_entries: Vec<_> = s.wallet.ledger.iter().filter(|e| e.kind == EntryKind::Usage && e.delta != 0).collect();
    assert_eq!(usage_entries.len(), 1);
    assert!(usage_entries.iter().all(|e| e.key.starts_with("used:")));
    assert_eq!(usage_entries.iter().map(|e| -e.delta).sum::<i64>(), 1800, "req_1 once, and req_2's first 800 s");
}

#[test]
fn renewal_follows_the_rollover_rule_over_several_periods() {
    let cat = catalog();
    let p = [T0, P1E, P2E, P3E, P3E + 30 * DAY];
    let mut fs = vec![link("cus_c", "c", T0)];
    for k in 0..4 {
        fs.push(paid("sub_c", k, "STUDIO_BASIC_MONTHLY", p[k], p[k + 1]));
    }
    fs.push(use_("a", "video_seconds", 600, T0 + DAY)); // period 1: 1800 - 600 -> roll 1200
    fs.push(use_("b", "video_seconds", 3500, P2E + DAY)); // period 3: 1800 + 1800 - 3500 -> roll 100
                                                          // The state as of `now`: the facts up to then.
    let upto = |now: i64| fs.iter().filter(|f| f.at.0 <= now).cloned().collect::<Vec<_>>();
    let bal = |now: i64| fold(&cat, &upto(now), now).balance(C, "video_seconds");
    assert_eq!(bal(T0 + 2 * DAY), 1200);
    assert_eq!(bal(P1E + DAY), 1800 + capped_rollover(1800, 0, 600)); // 3000
    assert_eq!(bal(P2E + 2 * HOURS), 1800 + capped_rollover(1800, 1200, 0)); // capped at 1800
    assert_eq!(bal(P2E + 2 * DAY), 100);
    assert_eq!(bal(P3E + DAY), 1800 + capped_rollover(1800, 1800, 3500)); // 1900
    assert_eq!(bal(p[4] + DAY), 0, "nothing renews after the last paid period");
    let st = fold(&cat, &fs, p[4] + DAY);
    let expired: i64 =
        st.subject(C).unwrap().wallet.ledger.iter().filter(|e| e.kind == EntryKind::Expire).map(|e| -e.delta).sum();
    assert!(expired > 0);
    st.check_invariants().unwrap();
}

const HOURS: i64 = 3600;

#[test]
fn reset_pools_refill_to_the_allowance_on_each_paid_invoice() {
    let cat = catalog();
    let mut fs = vec![link("cus_c", "c", T0)];
    fs.push(paid("sub_c", 0, "STUDIO_PRO_MONTHLY", T0, P1E));
    fs.push(use_("g1", "ai_credits", 300, T0 + DAY));
    assert_eq!(fold(&cat, &fs, T0 + 2 * DAY).balance(C, "ai_credits"), 1700);
    fs.push(paid("sub_c", 1, "STUDIO_PRO_MONTHLY", P1E, P2E));
    let st = fold(&cat, &fs, P1E + DAY);
    assert_eq!(st.balance(C, "ai_credits"), 2000, "Razorpay AI app: min(remaining + limit, limit) = limit");
    assert_eq!(st.balance(C, "video_seconds"), 7200 + 7200, "the capped pool carries over");
}

#[test]
fn an_upgrade_within_a_period_tops_up_the_allowance_once() {
    let cat = catalog();
    let mut fs = vec![link("cus_c", "c", T0), paid("sub_c", 0, "STUDIO_BASIC_MONTHLY", T0, P1E)];
    let mut up = paid("sub_c", 9, "STUDIO_PRO_MONTHLY", T0 + 10 * DAY, P1E);
    up.at = t(T0 + 10 * DAY);
    fs.push(up);
    let st = fold(&cat, &fs, T0 + 11 * DAY);
    assert_eq!(st.balance(C, "video_seconds"), 7200, "topped up from 1800 to the Pro allowance");
    assert_eq!(st.balance(C, "ai_credits"), 2000);
}

#[test]
fn free_amounts_adjustments_and_pool_checks() {
    let cat = catalog();
    let mut fs = vec![
        use_("d1", "free_drafts", 1, T0),
        use_("d2", "free_drafts", 1, T0 + 1),
        use_("d3", "free_drafts", 1, T0 + 2),
    ];
    let st = fold(&cat, &fs, T0 + DAY);
    assert_eq!(st.balance(C, "free_drafts"), 0, "two free drafts, never below zero");
    let s = st.subject(C).unwrap();
    assert_eq!(
        (s.overage.len(), s.overage[0].cost),
        (1, None),
        "drafts are not priced: the third is recorded, not charged"
    );
    fs.push(Fact::credit_adjustment(
        CreditAdjustment {
            id: "comp_1".into(),
            subject: Subject::user("c"),
            pool: "video_seconds".into(),
            amount: 500,
            reason: "compensation".into(),
            valid_to: None,
        },
        t(T0 + DAY),
    ));
    fs.push(Fact::credit_adjustment(
        CreditAdjustment {
            id: "fix_1".into(),
            subject: Subject::user("c"),
            pool: "video_seconds".into(),
            amount: -800,
            reason: "migration".into(),
            valid_to: None,
        },
        t(T0 + 2 * DAY),
    ));
    fs.push(use_("v1", "nonexistent_pool", 5, T0 + 3 * DAY));
    let st = fold(&cat, &fs, T0 + 4 * DAY);
    assert_eq!(st.balance(C, "video_seconds"), 0, "a debit adjustment takes what there is, no more");
    assert_eq!(st.pending.len(), 1, "usage of an unknown pool waits for a catalog that has it");
    assert!(st.pending[0].reason.contains("nonexistent_pool"));
}

#[test]
fn token_purchases_are_idempotent_per_payment() {
    let cat = catalog();
    let paths =
        ["stripe/checkout.session.completed.unpaid.json", "stripe/checkout.session.async_payment_succeeded.json"];
    let mut fs = facts(&cat, &paths);
    let paid_at_once = edit("stripe/checkout.session.completed.unpaid.json", |v| {
        obj(v)["payment_status"] = serde_json::json!("paid");
        v["id"] = serde_json::json!("evt_other_delivery");
    });
    fs.extend(stripe_facts(&cat, &paid_at_once));
    fs.extend(facts(&cat, &paths));
    let st = fold(&cat, &fs, T0 + 9 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 7200);
    assert_eq!(st.subject(USER).unwrap().wallet.lots.iter().filter(|l| l.kind == LotKind::Purchase).count(), 1);
}

#[test]
fn the_razorpay_catalog_of_the_razorpay_ai_app() {
    let cat = shipped("razorpay-ai");
    let raw = edit("razorpay/subscription.charged.json", |v| {
        v["payload"]["subscription"]["entity"]["plan_id"] = serde_json::json!("plan_premium_monthly");
    });
    let act = edit("razorpay/subscription.activated.json", |v| {
        v["payload"]["subscription"]["entity"]["plan_id"] = serde_json::json!("plan_premium_monthly");
    });
    let st = fold(&cat, &rzp_facts(&cat, &act), T0 + DAY);
    assert_eq!(st.balance("user:u_456", "ai_credits"), 0);
    assert_eq!(st.balance("user:u_456", "free_drafts"), 2);
    let mut fs = rzp_facts(&cat, &act);
    fs.extend(rzp_facts(&cat, &raw));
    let st = fold(&cat, &fs, T0 + DAY);
    assert_eq!(st.balance("user:u_456", "ai_credits"), 2000);
    assert!(has(&cat, &st, "user:u_456", "premium", "PREMIUM", T0 + DAY));
}

#[test]
fn wallet_primitives_refuse_double_posting() {
    let mut w = Wallet::new();
    let lot = |key: &str| NewLot {
        key: key.into(),
        pool: "p",
        kind: LotKind::Purchase,
        amount: 10,
        at: t(0),
        valid_to: None,
        source: "s",
        subscription: None,
        catalog_version: None,
    };
    assert!(w.credit(lot("a")));
    assert!(!w.credit(lot("a")));
    assert!(!w.credit(NewLot { amount: 0, ..lot("zero") }), "nothing to credit");
    assert!(w.debit("u", "p", 4, t(1), "u").is_some());
    assert!(w.debit("u", "p", 4, t(1), "u").is_none());
    assert_eq!(w.revoke("a", "r".into(), 100, t(2), "r"), 6);
    assert_eq!(w.revoke("a", "r".into(), 100, t(2), "r"), 0);
    let back: Wallet = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
    assert_eq!(back, w);
    let mut back = back;
    assert!(back.debit("u", "p", 1, t(3), "u").is_none(), "keys survive a round trip");
    w.check_invariants().unwrap();
}

/// A refund of `amount`'s `reversed` part of `payment`, at `at`.
fn refund(id: &str, payment: &str, amount: i64, reversed: i64, at: i64) -> Fact {
    Fact {
        key: format!("stripe:refund:{id}:{reversed}"),
        provider: Provider::Stripe,
        event: format!("evt_{id}_{reversed}"),
        at: t(at),
        body: FactBody::Refund(Reversal {
            id: format!("stripe:{id}"),
            payment_refs: vec![payment.to_string()],
            amount,
            reversed,
            own_amount: 0,
            currency: "usd".into(),
            outcome: None,
        }),
        catalog_version: None,
    }
}

/// A small goodwill refund of a period's invoice after its allowance was used up leaves the
/// lot empty and closed; an upgrade paid later in the same period still tops it up (the
/// 5400 seconds it paid for were credited to no lot).
#[test]
fn a_partial_refund_of_a_spent_allowance_blocks_the_upgrade_top_up() {
    let cat = catalog();
    let fs = vec![
        link("cus_c", "c", T0),
        paid_at("sub_c", 0, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 60, 2900),
        use_("all", "video_seconds", 1800, T0 + DAY),
        // $1 goodwill refund of the period's invoice.
        refund("re_1", "stripe:pi_sub_c_0", 2900, 100, T0 + 2 * DAY),
        // Upgrade to Pro within the same period: the proration tops up the allowance.
        paid_at("sub_c", 1, "STUDIO_PRO_MONTHLY", T0, P1E, T0 + 10 * DAY, 5000),
    ];
    let st = fold(&cat, &fs, T0 + 11 * DAY);
    let w = &st.subject(C).unwrap().wallet;
    let lots: Vec<_> = w.lots.iter().filter(|l| l.pool == "video_seconds").collect();
    assert_eq!(
        st.balance(C, "video_seconds"),
        7200 - 1800,
        "the upgrade's allowance (7200) less the 1800 s already used: {lots:#?}"
    );
}

/// An operator's credit whose validity ended before it was given gives nothing (it was
/// credited as a lot that never expired).
#[test]
fn an_adjustment_already_expired_becomes_credits_that_never_expire() {
    let cat = catalog();
    let fs = vec![Fact::credit_adjustment(
        CreditAdjustment {
            id: "promo_1".into(),
            subject: Subject::user("c"),
            pool: "video_seconds".into(),
            amount: 500,
            reason: "promotion".into(),
            valid_to: Some(t(T0 - DAY)),
        },
        t(T0),
    )];
    let st = fold(&cat, &fs, T0 + 400 * DAY);
    let lot = st.subject(C).unwrap().wallet.lot("adjustment:promo_1").cloned();
    assert_eq!(st.balance(C, "video_seconds"), 0, "credits that expired before they were given: {lot:#?}");
}

/// An operator's debit (a negative `CreditAdjustment`) is counted as revoked on the lots it
/// takes from, so each still adds up (it lowered `remaining` and counted the units nowhere).
#[test]
fn a_debit_adjustment_breaks_the_lot_identity() {
    let cat = catalog();
    let adj = |id: &str, amount: i64, at: i64| {
        Fact::credit_adjustment(
            CreditAdjustment {
                id: id.into(),
                subject: Subject::user("c"),
                pool: "video_seconds".into(),
                amount,
                reason: "fix".into(),
                valid_to: None,
            },
            t(at),
        )
    };
    let st = fold(&cat, &[adj("give", 500, T0), adj("take", -200, T0 + 1)], T0 + DAY);
    let l = st.subject(C).unwrap().wallet.lot("adjustment:give").cloned().unwrap();
    assert_eq!(st.balance(C, "video_seconds"), 300);
    assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "200 units unaccounted: {l:#?}");
}

/// A period's invoice refunded after the renewal carried its unused allowance into a
/// rollover lot: the refund takes the carried seconds back from the rollover, as the same
/// refund a day before the renewal takes them from the allowance (it left them rolling on).
#[test]
fn a_refund_after_the_renewal_takes_back_what_rolled_over() {
    let cat = catalog();
    let base = basic_periods(2);
    // Period 1's invoice refunded in full, just before the renewal ...
    let mut before = base.clone();
    before.push(refund("re_1", "stripe:pi_sub_c_0", 2900, 2900, P1E - DAY));
    let b = fold(&cat, &before, P1E + 3 * DAY).balance(C, "video_seconds");
    // ... or two days after it.
    let mut after = base.clone();
    after.push(refund("re_1", "stripe:pi_sub_c_0", 2900, 2900, P1E + 2 * DAY));
    let st = fold(&cat, &after, P1E + 3 * DAY);
    let a = st.balance(C, "video_seconds");
    assert_eq!(b, 1800, "refunded before the renewal: period 2's allowance only");
    let lots: Vec<_> = st.subject(C).unwrap().wallet.lots.iter().map(|l| (&l.key, l.kind, l.granted, l.remaining, l.revoked)).collect();
    assert_eq!(a, b, "refunded after the renewal, the rolled-over 1800 s are taken back: {lots:#?}");
}

/// Customer `c` subscribed to Studio Basic (`sub_c`, $29 a month), its first `periods`
/// periods from T0 paid (invoice `k` for period `k + 1`, a minute into it).
fn basic_periods(periods: usize) -> Vec<Fact> {
    let starts = [T0, P1E, P2E, P3E];
    let mut fs = vec![link("cus_c", "c", T0)];
    fs.extend((0..periods).map(|k| paid("sub_c", k, "STUDIO_BASIC_MONTHLY", starts[k], starts[k + 1])));
    fs
}

/// The lots of `c` (key, granted, remaining, revoked, expired), for a failure's message.
fn lots(st: &BillingState) -> Vec<(String, i64, i64, i64, i64)> {
    st.subject(C).unwrap().wallet.lots.iter().map(|l| (l.key.clone(), l.granted, l.remaining, l.revoked, l.expired)).collect()
}

/// Refunded in two steps (half, then the rest: `amount_refunded` 1450, then 2900), a payment
/// takes back what one full refund of it takes, wherever its units went: each step takes
/// from a rollover lot only what of the payment's units is still there, never again what an
/// earlier step took. Period 1 leaves its 1800 s unused (rolled into period 2); period 2
/// uses 1200 of its own 1800 s, so at the next renewal 600 s of invoice 1 and the 1800 s
/// carried from period 1 roll on, capped to 1800 s. Invoice 1 refunded after that renewal
/// takes back the 600 s it carried over, once.
#[test]
fn a_payment_refunded_in_two_steps_takes_back_what_one_full_refund_takes() {
    let cat = catalog();
    let mut base = basic_periods(3);
    base.push(use_("p2", "video_seconds", 1200, P1E + DAY));
    let now = P2E + 3 * DAY;
    let one = fold(&cat, &[base.clone(), vec![refund("ch_1", "stripe:pi_sub_c_1", 2900, 2900, P2E + 2 * DAY)]].concat(), now);
    let halves = [
        refund("ch_1", "stripe:pi_sub_c_1", 2900, 1450, P2E + DAY),
        refund("ch_1", "stripe:pi_sub_c_1", 2900, 2900, P2E + 2 * DAY),
    ];
    let two = fold(&cat, &[base, halves.to_vec()].concat(), now);
    assert_eq!(one.balance(C, "video_seconds"), 1800 + 1800 - 600, "one full refund: {:#?}", lots(&one));
    assert_eq!(
        two.balance(C, "video_seconds"),
        one.balance(C, "video_seconds"),
        "the same payment refunded in full in two steps took more back: {:#?}",
        lots(&two)
    );
    let rollover = "rollover:stripe:sub_c:1780272000:video_seconds";
    assert_eq!(two.payments["stripe:in_sub_c_1"].taken.get(rollover), Some(&600));
}

/// A refund told after several renewals takes back what the payment paid for wherever the
/// renewals carried it, rollover lot after rollover lot, as one told after a single renewal
/// does (`a_refund_after_the_renewal_takes_back_what_rolled_over`). Period 1 (invoice 0)
/// leaves its 1800 s unused: they roll into period 2, whose 1800 s of use its own allowance
/// covers (spent before rollover), so they roll on into period 3. Invoice 0 refunded in full
/// a day after the first renewal, a day after the second, or half after each, leaves period
/// 3's allowance alone.
#[test]
fn a_refund_after_two_renewals_takes_back_what_rolled_over_twice() {
    let cat = catalog();
    let mut base = basic_periods(3);
    base.push(use_("p2", "video_seconds", 1800, P1E + 2 * DAY));
    let now = P2E + 3 * DAY;
    let refund_0 = |reversed: i64, at: i64| refund("ch_0", "stripe:pi_sub_c_0", 2900, reversed, at);
    for (told, refunds) in [
        ("refunded after one renewal", vec![refund_0(2900, P1E + DAY)]),
        ("refunded after two renewals, period 1's seconds are kept", vec![refund_0(2900, P2E + 2 * DAY)]),
        ("half after each renewal", vec![refund_0(1450, P1E + DAY), refund_0(2900, P2E + 2 * DAY)]),
    ] {
        let st = fold(&cat, &[base.clone(), refunds].concat(), now);
        assert_eq!(st.balance(C, "video_seconds"), 1800, "{told}: {:#?}", lots(&st));
    }
}
