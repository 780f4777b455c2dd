//! Adversarial tests of money and credits in the core: quotes and their rounding, minor
//! digits and formatting, the charge plan and holds, credit lots (spending order, expiry,
//! revocation, rollover, paused subscriptions), and limit windows around their
//! boundaries. Each property is checked against a plain reference written here.

#[path = "events/support.rs"]
mod support;
mod common;

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use common::shipped_src;
use proptest::prelude::*;
use support::*;
use tollgate::billing::*;
use tollgate::catalog::LimitPeriod;
use tollgate::charge::{charge_units, hold_until, ChargeDecision, ChargeInput, Refusal, UnitsRequest};
use tollgate::credits::{
    capped_rollover, plan_charge, renewal_rollover, ChargeOutcome, DenyReason, LotKind, NewLot, OveragePolicy, Pricer,
    Wallet, MAX_CREDIT,
};
use tollgate::meter::{self, overage_period, window, BillingPeriod};
use tollgate::model::Entitlements;
use tollgate::money::{ceil_minor, minor_digits, Decimal, Money};
use tollgate::usage::{overage_cost, plan_usage, quote, UsageRequest};
use tollgate::{Catalog, Grant, Source, Status, Timestamp};

/// Runs a property `cases` times from a fixed random stream (the same inputs every run).
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

fn studio() -> Catalog {
    shipped("video-studio")
}

/// The Video Studio catalog with its usage priced in `currency`.
fn studio_in(currency: &str) -> Catalog {
    let src = shipped_src("video-studio");
    let from = "[usage]\npool = \"video_seconds\"\ncurrency = \"usd\"";
    assert!(src.contains(from));
    let src = src.replace(from, &format!("[usage]\npool = \"video_seconds\"\ncurrency = \"{currency}\""));
    Catalog::parse(&src).expect("valid catalog")
}

fn new_lot<'a>(key: &str, kind: LotKind, amount: i64, at: i64, to: Option<i64>, sub: Option<&'a str>) -> NewLot<'a> {
    NewLot {
        key: key.into(),
        pool: "video_seconds",
        kind,
        amount,
        at: Timestamp(at),
        valid_to: to.map(Timestamp),
        source: "src",
        subscription: sub,
        catalog_version: None,
    }
}

/// The exact ceiling of `units x factors x 10^digits` as a reference (u128, `None` on overflow).
fn reference_ceil(units: u64, factors: &[Decimal], digits: u32) -> Option<u128> {
    let mut num: u128 = (units as u128).checked_mul(10u128.pow(digits))?;
    let mut den: u128 = 1;
    for f in factors {
        num = num.checked_mul(f.mantissa as u128)?;
        den = den.checked_mul(10u128.pow(f.scale))?;
    }
    Some(num / den + u128::from(num % den != 0))
}

// ---------------------------------------------------------------------------------------------
// Money: minor digits, formatting, exact rounding.
// ---------------------------------------------------------------------------------------------

#[test]
fn zero_and_three_digit_currencies_format_exactly() {
    let m = |amount: i64, c: &str| Money { amount, currency: c.into() }.display();
    assert_eq!(m(1234, "kwd"), "1.234 KWD");
    assert_eq!(m(5, "kwd"), "0.005 KWD");
    assert_eq!(m(1000, "bhd"), "1.000 BHD");
    assert_eq!(m(-1, "bhd"), "-0.001 BHD");
    assert_eq!(m(5, "jpy"), "5 JPY");
    assert_eq!(m(1_000_000_000_000, "jpy"), "1000000000000 JPY");
    assert_eq!(m(1_000_000_000_000, "usd"), "$10000000000.00");
    assert_eq!(m(-5, "usd"), "-$0.05");
    // The extremes of i64 never panic.
    assert_eq!(m(i64::MIN, "usd"), "-$92233720368547758.08");
    assert_eq!(m(i64::MAX, "kwd"), "9223372036854775.807 KWD");
    assert_eq!((minor_digits("jpy"), minor_digits("krw"), minor_digits("kwd"), minor_digits("bhd")), (0, 0, 3, 3));
}

/// ISO 4217 gives the Libyan dinar and the Iraqi dinar three minor digits, and both are
/// currencies money may be priced in (`is_currency`); a code in capitals is the same
/// currency.
#[test]
fn iso_three_digit_dinars() {
    for c in ["lyd", "iqd"] {
        assert!(tollgate::money::is_currency(c), "{c}");
    }
    assert_eq!(minor_digits("lyd"), 3, "LYD: 3 minor digits in ISO 4217");
    assert_eq!(minor_digits("iqd"), 3, "IQD: 3 minor digits in ISO 4217");
    assert_eq!(minor_digits("KWD"), 3);
    assert_eq!(minor_digits("JPY"), 0);
}

#[test]
fn quotes_in_kwd_and_jpy_round_up_once_in_their_own_minor_units() {
    let kwd = studio_in("kwd");
    // 0.015 x 1.2 x 30 = 0.54 KWD = 540 fils exactly; 1 s = 0.018 KWD = 18 fils exactly.
    assert_eq!(quote(&kwd, "standard", "standard", 30).unwrap().cost.amount, 540);
    assert_eq!(quote(&kwd, "standard", "standard", 1).unwrap().cost.amount, 18);
    // 7 s of ultra studio: 0.15 x 2.5 x 7 = 2.625 KWD; overage x1.5 = 3.9375 -> 3.938.
    let q = quote(&kwd, "ultra", "studio", 7).unwrap();
    assert_eq!((q.cost.amount, q.overage_cost.amount), (2625, 3938));
    assert_eq!(q.cost.display(), "2.625 KWD");
    let jpy = studio_in("jpy");
    // 0.018 yen -> 1 yen; 7 s = 0.126 -> 1 yen (never 7, one per second).
    assert_eq!(quote(&jpy, "standard", "standard", 1).unwrap().cost.amount, 1);
    assert_eq!(quote(&jpy, "standard", "standard", 7).unwrap().cost.amount, 1);
    assert_eq!(quote(&jpy, "standard", "standard", 100).unwrap().cost.amount, 2); // 1.8 -> 2
    assert_eq!(overage_cost(&jpy, "standard", "standard", 100).unwrap(), 3); // 2.7 -> 3
}

#[test]
fn the_largest_priced_request_neither_overflows_nor_panics() {
    // max_units = 1e12 at a rate whose dearest price is exactly the catalog's largest amount.
    let src = shipped_src("video-studio");
    let usage_at = src.find("[usage]").unwrap();
    let tail_at = src[usage_at..].find("\n# ----").map(|i| usage_at + i).unwrap_or(src.len());
    for (currency, base) in [("usd", "0.01"), ("kwd", "0.001"), ("jpy", "1")] {
        let usage = format!(
            "[usage]\npool = \"video_seconds\"\ncurrency = \"{currency}\"\noverage_multiplier = \"10\"\ndefault_overage_limit = 1000000000000\nmax_units = 1000000000000\nrates = [{{ model = \"m\", quality = \"q\", base_price_per_second = \"{base}\", multiplier = \"0.1\" }}]\n"
        );
        let s = format!("{}{}{}", &src[..usage_at], usage, &src[tail_at..]);
        let cat = Catalog::parse(&s).unwrap_or_else(|e| panic!("{currency}: {e}"));
        let q = quote(&cat, "m", "q", 1_000_000_000_000).unwrap();
        assert_eq!(q.overage_cost.amount, 1_000_000_000_000, "{currency}");
        assert_eq!(q.cost.amount, 100_000_000_000, "{currency}");
        assert_eq!(overage_cost(&cat, "m", "q", 1_000_000_000_000).unwrap(), 1_000_000_000_000);
        // A wallet with nothing, overage allowed up to the largest amount: billed exactly.
        let policy = OveragePolicy { allowed: true, limit: Some(1_000_000_000_000), spent: 0 };
        let req = UsageRequest { request_id: "r".into(), model: "m".into(), quality: "q".into(), seconds: 1_000_000_000_000 };
        match plan_usage(&cat, &Wallet::new(), &req, &policy, Timestamp(0)).unwrap() {
            ChargeOutcome::Charge(p) => {
                assert_eq!((p.overage_units, p.overage_cost), (1_000_000_000_000, 1_000_000_000_000));
            }
            d => panic!("{d:?}"),
        }
        // One minor unit already spent: over the cap.
        let spent = OveragePolicy { spent: 1, ..policy.clone() };
        assert!(!plan_usage(&cat, &Wallet::new(), &req, &spent, Timestamp(0)).unwrap().is_allowed());
        // Spent near i64::MAX: no overflow, a denial.
        let huge = OveragePolicy { spent: i64::MAX, ..policy };
        assert!(!plan_usage(&cat, &Wallet::new(), &req, &huge, Timestamp(0)).unwrap().is_allowed());
    }
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (0u64..2_000_000, 0u32..=9).prop_map(|(mantissa, scale)| Decimal { mantissa, scale })
}

/// `ceil_minor` is the least whole minor unit not below the exact amount, in any
/// currency's digits, or an error exactly when that does not fit in i64.
#[test]
fn ceil_minor_is_the_exact_ceiling() {
    run(800, (prop_oneof![0u64..100_000, 0u64..=1_000_000_000_000u64, Just(u64::MAX)], proptest::collection::vec(decimal(), 0..4), prop::sample::select(vec!["usd", "jpy", "kwd", "bhd", "krw", "inr"])), |(units, factors, currency)| {
    let digits = minor_digits(currency);
    let got = ceil_minor(units, &factors, currency);
    match reference_ceil(units, &factors, digits) {
        Some(r) if r <= i64::MAX as u128 => prop_assert_eq!(got, Ok(r as i64)),
        Some(_) => prop_assert!(got.is_err()),
        None => prop_assert!(got.is_err(), "overflowing product answered {:?}", got),
    }
    Ok(())
    });
}

/// Every rate of the shipped catalog, every currency digits: the quote is exact,
/// `overage_cost` of the same units equals the quote's overage, and a split never
/// costs less than the whole (rounded once, never per part).
#[test]
fn quotes_match_the_reference_in_every_digit_count() {
    run(800, (0..11usize, 1u64..=86_400, 1u64..86_400, prop::sample::select(vec!["usd", "jpy", "kwd"])), |(rate, seconds, split, currency)| {
    static CATS: std::sync::OnceLock<Vec<(String, Catalog)>> = std::sync::OnceLock::new();
    let cats = CATS.get_or_init(|| ["usd", "jpy", "kwd"].iter().map(|c| (c.to_string(), studio_in(c))).collect());
    let cat = &cats.iter().find(|(c, _)| c == currency).unwrap().1;
    let u = cat.doc.usage.as_ref().unwrap();
    let r = &u.rates[rate];
    let q = quote(cat, &r.model, &r.quality, seconds).unwrap();
    let digits = minor_digits(currency);
    let exp = reference_ceil(seconds, &[r.base_price_per_second, r.multiplier], digits).unwrap() as i64;
    let exp_over = reference_ceil(seconds, &[r.base_price_per_second, r.multiplier, u.overage_multiplier], digits).unwrap() as i64;
    prop_assert_eq!(q.cost.amount, exp);
    prop_assert_eq!(q.overage_cost.amount, exp_over);
    prop_assert_eq!(&q.cost.currency, currency);
    prop_assert_eq!(overage_cost(cat, &r.model, &r.quality, seconds).unwrap(), exp_over);
    prop_assert!(q.cost.amount >= 0 && q.overage_cost.amount >= q.cost.amount);
    if split < seconds {
        let a = quote(cat, &r.model, &r.quality, split).unwrap().cost.amount;
        let b = quote(cat, &r.model, &r.quality, seconds - split).unwrap().cost.amount;
        prop_assert!(a + b >= q.cost.amount);
        prop_assert!(a + b <= q.cost.amount + 1, "rounded once each: at most one minor unit apart");
    }
    Ok(())
    });
}


// ---------------------------------------------------------------------------------------------
// The charge plan.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct LotSpec {
    kind: LotKind,
    amount: i64,
    from: i64,
    to: Option<i64>,
}

fn lot_spec() -> impl Strategy<Value = LotSpec> {
    (
        prop::sample::select(vec![LotKind::Allowance, LotKind::Rollover, LotKind::Purchase, LotKind::Free, LotKind::Adjustment]),
        1i64..3000,
        0i64..50,
        prop::option::of(1i64..200),
    )
        .prop_map(|(kind, amount, from, to)| {
            // Period lots always end; purchases never.
            let to = match kind {
                LotKind::Allowance | LotKind::Rollover => Some(from + to.unwrap_or(100)),
                LotKind::Purchase => None,
                _ => to.map(|d| from + d),
            };
            LotSpec { kind, amount, from, to }
        })
}

fn wallet_of(specs: &[LotSpec]) -> Wallet {
    let mut w = Wallet::new();
    for (i, s) in specs.iter().enumerate() {
        assert!(w.credit(new_lot(&format!("lot{i:02}"), s.kind, s.amount, s.from, s.to, None)));
    }
    w
}

/// The spending order as documented: period lots first (the one that ends first before the
/// other), then everything else, earliest end first and oldest first.
fn reference_order(specs: &[LotSpec], at: i64) -> Vec<usize> {
    let mut ix: Vec<usize> = (0..specs.len()).filter(|&i| specs[i].to.is_none_or(|t| at < t)).collect();
    ix.sort_by_key(|&i| {
        let s = &specs[i];
        let period = matches!(s.kind, LotKind::Allowance | LotKind::Rollover);
        (!period, s.to.unwrap_or(i64::MAX), s.from, format!("lot{i:02}"))
    });
    ix
}

/// A charge takes exactly its units from usable lots, in the documented order, never more
/// than a lot holds; overage only when allowed and within the cap, priced on the overage
/// units alone and rounded up once.
#[test]
fn the_charge_plan_takes_exactly_in_order_and_caps_overage() {
    run(500, (proptest::collection::vec(lot_spec(), 0..8), 0i64..150, 1u64..10_000, 0..11usize, any::<bool>(), prop::option::of(0i64..20_000), 0i64..20_000), |(specs, at, seconds, rate, allowed, limit, spent)| {
    static CAT: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    let cat = CAT.get_or_init(studio);
    let u = cat.doc.usage.as_ref().unwrap();
    let r = &u.rates[rate];
    let w = wallet_of(&specs);
    let policy = OveragePolicy { allowed, limit, spent };
    let req = UsageRequest { request_id: "r".into(), model: r.model.clone(), quality: r.quality.clone(), seconds };
    let out = plan_usage(cat, &w, &req, &policy, Timestamp(at)).unwrap();
    // Reference: walk the lots in order.
    let mut left = seconds as i64;
    let mut takes = Vec::new();
    for i in reference_order(&specs, at) {
        if left == 0 { break; }
        let t = specs[i].amount.min(left);
        left -= t;
        takes.push((format!("lot{i:02}"), t));
    }
    let short = left;
    let over_cost = if short > 0 { reference_ceil(short as u64, &[r.base_price_per_second, r.multiplier, u.overage_multiplier], 2).unwrap() as i64 } else { 0 };
    let cap = limit.unwrap_or(u.default_overage_limit);
    let cost = reference_ceil(seconds, &[r.base_price_per_second, r.multiplier], 2).unwrap() as i64;
    match out {
        ChargeOutcome::Charge(p) => {
            prop_assert!(short == 0 || (allowed && spent + over_cost <= cap), "charged past the rules: {:?}", p);
            let got: Vec<(String, i64)> = p.takes.iter().map(|t| (t.lot.clone(), t.units)).collect();
            prop_assert_eq!(got, takes);
            for t in &p.takes {
                let l = w.lot(&t.lot).unwrap();
                prop_assert!(t.units > 0 && t.units <= l.remaining);
            }
            prop_assert_eq!(p.from_allowance + p.from_purchased + p.overage_units, seconds as i64);
            prop_assert_eq!(p.overage_units, short);
            prop_assert_eq!(p.overage_cost, over_cost);
            prop_assert_eq!(p.cost, cost);
        }
        ChargeOutcome::Deny(d) => {
            prop_assert!(short > 0);
            let reason = if !allowed { DenyReason::InsufficientBalance } else { DenyReason::OverageLimitExceeded };
            prop_assert_eq!(d.reason, reason);
            prop_assert!(!allowed || spent + over_cost > cap);
            prop_assert_eq!(d.available, seconds as i64 - short);
            prop_assert_eq!((d.overage_units, d.overage_cost, d.cost), (short, over_cost, cost));
        }
    }
    Ok(())
    });
}


/// A pricer whose prices are large: the cap arithmetic must not overflow.
struct Dear;
impl Pricer for Dear {
    fn cost(&self, _u: i64) -> i64 {
        i64::MAX
    }
    fn overage_cost(&self, _u: i64) -> i64 {
        i64::MAX
    }
    fn currency(&self) -> &str {
        "usd"
    }
    fn default_limit(&self) -> i64 {
        i64::MAX
    }
}

#[test]
fn overage_at_the_edges_of_i64_is_refused_not_wrapped() {
    let w = Wallet::new();
    let p = OveragePolicy { allowed: true, limit: None, spent: 1 };
    match plan_charge(&w, "video_seconds", i64::MAX, Timestamp(0), &Dear, &p) {
        ChargeOutcome::Deny(d) => assert_eq!(d.reason, DenyReason::OverageLimitExceeded),
        o => panic!("1 + i64::MAX is over a cap of i64::MAX: {o:?}"),
    }
    let p = OveragePolicy { allowed: true, limit: None, spent: 0 };
    assert!(plan_charge(&w, "video_seconds", i64::MAX, Timestamp(0), &Dear, &p).is_allowed());
}

// ---------------------------------------------------------------------------------------------
// Charges of credits and holds.
// ---------------------------------------------------------------------------------------------

fn razorpay_with_hold(minutes: Option<u32>) -> Catalog {
    let mut src = shipped_src("razorpay-ai");
    if let Some(m) = minutes {
        src = src.replacen("[catalog]\n", &format!("[catalog]\nhold_minutes = {m}\n"), 1);
    }
    Catalog::parse(&src).expect("valid")
}

#[test]
fn a_hold_takes_exactly_its_units_and_stands_exactly_its_minutes() {
    for (minutes, secs) in [(None, 3600), (Some(1), 60), (Some(0), 0), (Some(u32::MAX), u32::MAX as i64 * 60)] {
        let cat = razorpay_with_hold(minutes);
        let now = Timestamp(1_772_323_200);
        assert_eq!(hold_until(&cat, now), Timestamp(now.0 + secs));
        assert_eq!(hold_until(&cat, Timestamp(i64::MAX - 1)).0, (i64::MAX - 1).saturating_add(secs), "saturates, never wraps");
        let mut w = Wallet::new();
        let lot = |key: &str, kind, amount, to: Option<i64>| NewLot {
            key: key.into(),
            pool: "ai_credits",
            kind,
            amount,
            at: Timestamp(now.0 - 10),
            valid_to: to.map(Timestamp),
            source: "s",
            subscription: None,
            catalog_version: None,
        };
        assert!(w.credit(lot("topup", LotKind::Purchase, 500, None)));
        assert!(w.credit(lot("allow", LotKind::Allowance, 7, Some(now.0 + 100))));
        let s = Subject::user("u");
        let ents = Entitlements::default();
        let pol = OveragePolicy { allowed: true, limit: None, spent: 0 };
        let input = ChargeInput { entitlements: &ents, wallet: &w, overage: &pol };
        for (units, hold) in [(1u64, true), (7, true), (8, false), (507, true)] {
            let req = UnitsRequest { subject: &s, idempotency_key: "k", pool: "ai_credits", units, hold };
            let ChargeDecision::Charge(c) = charge_units(&cat, input, &req, now).unwrap() else { panic!("{units}") };
            assert_eq!(c.hold_until, hold.then_some(Timestamp(now.0 + secs)));
            let took: i64 = c.takes.iter().map(|t| t.units).sum();
            assert_eq!(took, units as i64, "a hold reserves exactly its units");
            assert_eq!((c.plan.overage_units, c.plan.overage_cost, c.record.overage_minor), (0, 0, 0));
            assert_eq!(c.takes[0].lot, "allow", "the allowance, which ends, first");
            let mut after = w.clone();
            c.apply_to(&mut after);
            after.settle_all();
            assert!(after.uncovered.is_empty());
            assert_eq!(after.balance("ai_credits"), 507 - units as i64);
            after.check_invariants().unwrap();
        }
        // One more than the lots hold: refused whatever the overage preference (prepaid).
        let req = UnitsRequest { subject: &s, idempotency_key: "k", pool: "ai_credits", units: 508, hold: true };
        match charge_units(&cat, input, &req, now).unwrap() {
            ChargeDecision::Refuse(Refusal::Short { denial, .. }) => {
                assert_eq!((denial.available, denial.required), (507, 508));
            }
            d => panic!("{d:?}"),
        }
        // At the allowance's end it is no longer held: only the top-up counts.
        let req = UnitsRequest { subject: &s, idempotency_key: "k", pool: "ai_credits", units: 501, hold: true };
        assert!(matches!(charge_units(&cat, input, &req, Timestamp(now.0 + 100)).unwrap(), ChargeDecision::Refuse(_)));
    }
}

// ---------------------------------------------------------------------------------------------
// Lots: a random run against a reference model.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Grant(LotKind, i64, Option<i64>),
    /// A charge as the store makes it: planned, then recorded lot by lot.
    Charge(i64),
    Revoke(usize, i64),
    Advance(i64),
    ExpireLot(usize),
    TopUp(usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop::sample::select(vec![LotKind::Allowance, LotKind::Rollover, LotKind::Purchase, LotKind::Free, LotKind::Adjustment]),
              1i64..2000, prop::option::of(1i64..300))
            .prop_map(|(k, a, d)| Op::Grant(k, a, if k.is_period() { Some(d.unwrap_or(100)) } else if k == LotKind::Purchase { None } else { d })),
        4 => (1i64..3000).prop_map(Op::Charge),
        1 => (0usize..20, 1i64..3000).prop_map(|(i, u)| Op::Revoke(i, u)),
        2 => (0i64..120).prop_map(Op::Advance),
        1 => (0usize..20).prop_map(Op::ExpireLot),
        1 => (0usize..20, 1i64..500).prop_map(|(i, u)| Op::TopUp(i, u)),
    ]
}

#[derive(Clone, Debug)]
struct RefLot {
    key: String,
    kind: LotKind,
    from: i64,
    to: Option<i64>,
    granted: i64,
    remaining: i64,
    used: i64,
    revoked: i64,
    expired: i64,
    closed: bool,
}

#[test]
fn lots_follow_a_plain_reference() {
    run(400, proptest::collection::vec(op(), 1..40), |ops| {
    let mut w = Wallet::new();
    let mut model: Vec<RefLot> = Vec::new();
    let mut now = 0i64;
    for (n, o) in ops.iter().enumerate() {
        match o.clone() {
            Op::Grant(kind, amount, dur) => {
                let key = format!("lot{n:02}");
                let to = dur.map(|d| now + d);
                prop_assert!(w.credit(new_lot(&key, kind, amount, now, to, None)));
                model.push(RefLot { key, kind, from: now, to, granted: amount, remaining: amount, used: 0, revoked: 0, expired: 0, closed: false });
            }
            Op::Charge(units) => {
                let plan = w.plan_debit("video_seconds", units, Timestamp(now));
                // Reference order over the model's usable lots.
                let mut ix: Vec<usize> = (0..model.len())
                    .filter(|&i| !model[i].closed && model[i].remaining > 0 && model[i].to.is_none_or(|t| now < t))
                    .collect();
                ix.sort_by_key(|&i| (!model[i].kind.is_period(), model[i].to.unwrap_or(i64::MAX), model[i].from, model[i].key.clone()));
                let mut left = units;
                let mut exp = Vec::new();
                for i in ix {
                    if left == 0 { break; }
                    let t = model[i].remaining.min(left);
                    left -= t;
                    exp.push((model[i].key.clone(), t));
                    model[i].remaining -= t;
                    model[i].used += t;
                }
                let got: Vec<(String, i64)> = plan.takes.iter().map(|t| (t.lot.clone(), t.units)).collect();
                prop_assert_eq!(&got, &exp, "step {}", n);
                prop_assert_eq!(plan.shortfall, left);
                for t in &plan.takes {
                    w.record_usage(&t.lot, t.units);
                }
            }
            Op::Revoke(i, units) => {
                if model.is_empty() { continue; }
                let i = i % model.len();
                let key = model[i].key.clone();
                let took = w.revoke(&key, format!("refund:{n}"), units, Timestamp(now), "refund");
                let exp = units.min(model[i].remaining);
                prop_assert_eq!(took, exp, "revoke takes what is left");
                model[i].remaining -= exp;
                model[i].revoked += exp;
                if model[i].remaining == 0 { model[i].closed = true; }
            }
            Op::Advance(d) => {
                now += d;
                w.expire_through(Timestamp(now));
                for l in model.iter_mut().filter(|l| !l.closed && l.to.is_some_and(|t| t <= now)) {
                    l.expired += l.remaining;
                    l.remaining = 0;
                    l.closed = true;
                }
            }
            Op::ExpireLot(i) => {
                if model.is_empty() { continue; }
                let i = i % model.len();
                w.expire_lot(&model[i].key.clone(), Timestamp(now));
                let l = &mut model[i];
                if !l.closed {
                    l.expired += l.remaining;
                    l.remaining = 0;
                    l.closed = true;
                }
            }
            Op::TopUp(i, amount) => {
                if model.is_empty() { continue; }
                let i = i % model.len();
                // (A lot closed by expiry and topped up is its own test below.)
                if model[i].expired > 0 { continue; }
                let key = model[i].key.clone();
                let ok = w.top_up(&key, format!("topup:{n}"), amount, Timestamp(now), "up");
                let l = &mut model[i];
                let ended = l.to.is_some_and(|t| t <= now);
                prop_assert_eq!(ok, !ended);
                if ok {
                    l.closed = false;
                    l.granted += amount;
                    l.remaining += amount;
                }
            }
        }
        // After every step: the wallet is the model.
        w.settle_all();
        prop_assert!(w.uncovered.is_empty());
        w.check_invariants().map_err(|e| TestCaseError::fail(format!("step {n}: {e}")))?;
        for m in &model {
            let l = w.lot(&m.key).unwrap();
            prop_assert_eq!((l.granted, l.remaining, l.used, l.revoked, l.expired, l.closed),
                            (m.granted, m.remaining, m.used, m.revoked, m.expired, m.closed), "lot {} at step {}", m.key, n);
            prop_assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "lot {} adds up", m.key);
            prop_assert!(l.remaining >= 0);
        }
        let bal: i64 = model.iter().filter(|l| !l.closed).map(|l| l.remaining).sum();
        prop_assert_eq!(w.balance("video_seconds"), bal);
        let usable: (i64, i64) = model.iter().filter(|l| !l.closed && l.to.is_none_or(|t| now < t)).fold((0, 0), |a, l| {
            if l.kind.is_period() { (a.0 + l.remaining, a.1) } else { (a.0, a.1 + l.remaining) }
        });
        prop_assert_eq!(w.available("video_seconds", Timestamp(now)), usable);
        // Reading the wallet back gives the same wallet, and the same balance.
        let back: Wallet = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        prop_assert_eq!(back.balance("video_seconds"), bal);
    }
    Ok(())
    });
}


/// `Wallet::debit` takes a usage charge's units from the lots; the `used` field is what
/// usage charges took, and `Lot::withdraw` says granted = remaining + used + revoked +
/// expired holds for every lot.
#[test]
fn a_usage_debit_is_counted_as_used_on_its_lots() {
    let mut w = Wallet::new();
    assert!(w.credit(new_lot("tokens", LotKind::Purchase, 100, 0, None, None)));
    let p = w.debit("usage:r1", "video_seconds", 40, Timestamp(1), "usage:r1").unwrap();
    assert_eq!(p.takes.iter().map(|t| t.units).sum::<i64>(), 40);
    w.check_invariants().unwrap();
    let l = w.lot("tokens").unwrap().clone();
    assert_eq!(l.remaining, 60);
    assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "40 units taken by a usage debit counted nowhere: {l:#?}");
}

/// A period lot closed early (a renewal told before its end: `expire_lot`), then topped up
/// within its period (an upgrade's proration for that period), then closed again: every
/// close must be in the ledger, so the lot's ledger still sums to what it holds.
#[test]
fn a_lot_closed_twice_keeps_its_ledger_equal_to_what_it_holds() {
    let mut w = Wallet::new();
    assert!(w.credit(new_lot("allow", LotKind::Allowance, 1, 0, Some(100), None)));
    w.expire_lot("allow", Timestamp(0));
    w.check_invariants().unwrap();
    let reopened = w.top_up("allow", "allow:topup:1".into(), 1, Timestamp(0), "up");
    w.check_invariants().unwrap();
    w.expire_lot("allow", Timestamp(0));
    let l = w.lot("allow").unwrap().clone();
    assert!(
        w.check_invariants().is_ok(),
        "top_up returned {reopened}; {:?}; lot {l:#?}; ledger {:#?}",
        w.check_invariants(),
        w.ledger
    );
}

// ---------------------------------------------------------------------------------------------
// Sums at the limits of i64.
// ---------------------------------------------------------------------------------------------

/// A wallet whose lots together hold more than i64::MAX units, each within `MAX_CREDIT`:
/// one small allowance and enough purchases of `MAX_CREDIT`.
fn overfull_wallet() -> Wallet {
    let mut w = Wallet::new();
    let lots = (i64::MAX / MAX_CREDIT) as usize + 2;
    for i in 0..lots {
        assert!(w.credit(NewLot { pool: "ai_credits", ..new_lot(&format!("p{i}"), LotKind::Purchase, MAX_CREDIT, 0, None, None) }));
    }
    assert!(w.credit(NewLot { pool: "ai_credits", ..new_lot("allow", LotKind::Allowance, 5, 0, Some(1_000_000_000_000), None) }));
    w
}

#[test]
fn balances_past_i64_saturate_in_balances_and_available() {
    let w = overfull_wallet();
    assert_eq!(w.balances()["ai_credits"], i64::MAX);
    let (a, b) = w.available("ai_credits", Timestamp(10));
    assert_eq!((a, b), (5, i64::MAX));
    let grants: Vec<Grant> = Vec::new();
    assert_eq!(tollgate::usage::balances(&w, &grants, Timestamp(10))["ai_credits"], i64::MAX);
}

/// `Wallet::balance` of the same wallet: the sum must saturate (or at least not panic), as
/// `MAX_CREDIT`'s doc says sums do.
#[test]
fn the_balance_of_a_pool_past_i64_does_not_panic() {
    let w = overfull_wallet();
    let b = std::panic::catch_unwind(|| w.balance("ai_credits"));
    assert_eq!(b.ok(), Some(i64::MAX), "Wallet::balance overflowed");
}

/// The worker's pool check on the same wallet: allowance 5 + purchases i64::MAX must not
/// overflow (it saturates everywhere else) and a request of 1 is allowed.
#[test]
fn a_pool_check_past_i64_does_not_overflow() {
    let cat = shipped("razorpay-ai");
    let w = overfull_wallet();
    let ents = Entitlements::default();
    let c = std::panic::catch_unwind(|| meter::check_pool(&cat, &ents, &w, "ai_credits", 1, Timestamp(10)).unwrap());
    let c = c.expect("check_pool overflowed adding allowance and purchases");
    assert!(c.allowed, "{c:?}");
}

// ---------------------------------------------------------------------------------------------
// Rollover and renewal through the fold.
// ---------------------------------------------------------------------------------------------

#[test]
fn rollover_formulas_hold_exactly_at_their_edges() {
    for (a, r, u) in [(0, 0, 0), (1800, 0, 1800), (1800, 0, 1801), (1800, 1800, 1800), (1800, 1800, 1799), (1, 1, 0), (1800, 0, 0)] {
        let exp = (a + r - u).max(0).min(a);
        assert_eq!(capped_rollover(a, r, u), exp, "{a} {r} {u}");
        assert_eq!(renewal_rollover(tollgate::catalog::Rollover::Capped, a, a + r - u), exp);
        assert_eq!(renewal_rollover(tollgate::catalog::Rollover::Reset, a, a + r - u), 0);
        assert_eq!(renewal_rollover(tollgate::catalog::Rollover::None, a, a + r - u), 0);
    }
    // Large values: no overflow at MAX_CREDIT.
    assert_eq!(capped_rollover(MAX_CREDIT, MAX_CREDIT, 0), MAX_CREDIT);
}

fn usage_fact(id: &str, pool: &str, units: u64, at: i64) -> Fact {
    Fact::usage(
        UsageFact {
            request_id: id.into(),
            subject: Subject::user("c"),
            pool: pool.into(),
            units,
            model: Some("standard".into()),
            quality: Some("standard".into()),
            takes: None,
            overage_units: 0,
            overage_cost: 0,
            currency: String::new(),
        },
        t(at),
    )
}

const C: &str = "user:c";

/// Over several monthly periods of 1800 s with random use, the balance at each period's
/// start is the allowance plus `min(max(0, allowance + rollover - used), allowance)`, and
/// that holds whether the renewal is told on time or days after the period ended.
#[test]
fn capped_rollover_through_the_fold() {
    run(60, (proptest::collection::vec(0u64..4000, 4), proptest::collection::vec(0i64..5, 4)), |(used, late)| {
    let cat = catalog();
    let p = [T0, P1E, P2E, P3E, P3E + 30 * DAY];
    let mut fs = vec![link("cus_c", "c", T0)];
    let a = 1800i64;
    let mut rollover = 0i64;
    for k in 0..4 {
        let at = if k == 0 { p[0] + 60 } else { p[k] + late[k] * DAY + 60 };
        fs.push(paid_at("sub_c", k, "STUDIO_BASIC_MONTHLY", p[k], p[k + 1], at, 2900));
        let st = fold(&cat, &fs, at + 1);
        prop_assert_eq!(st.balance(C, "video_seconds"), a + rollover, "period {} opens with allowance + rollover", k);
        if used[k] > 0 {
            fs.push(usage_fact(&format!("u{k}"), "video_seconds", used[k], at + 100));
        }
        let st = fold(&cat, &fs, at + 200);
        let left = (a + rollover - used[k] as i64).max(0);
        prop_assert_eq!(st.balance(C, "video_seconds"), left, "period {} after use", k);
        rollover = capped_rollover(a, rollover, used[k] as i64);
    }
    // After the last period ends unrenewed, everything left expires, exactly.
    let st = fold(&cat, &fs, p[4] + DAY);
    prop_assert_eq!(st.balance(C, "video_seconds"), 0);
    let w = &st.subject(C).unwrap().wallet;
    for l in &w.lots {
        prop_assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "{:?}", l);
    }
    Ok(())
    });
}


// ---------------------------------------------------------------------------------------------
// Balances are folds of facts, whatever order the facts are listed in.
// ---------------------------------------------------------------------------------------------

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
            subject: Some(Subject::user("c")),
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

fn refund_of(id: &str, reversed: i64, at: i64) -> Fact {
    Fact {
        key: format!("stripe:refund:re_{id}:{reversed}"),
        provider: Provider::Stripe,
        event: format!("evt_re_{id}_{reversed}"),
        at: t(at),
        body: FactBody::Refund(Reversal {
            id: format!("stripe:re_{id}"),
            payment_refs: vec![format!("stripe:pi_{id}")],
            amount: 1900,
            reversed,
            own_amount: 0,
            currency: "usd".into(),
            outcome: None,
        }),
        catalog_version: None,
    }
}

#[derive(Clone, Debug)]
enum FactSpec {
    Bundle(u8),
    Use(u64),
    Admin(i64),
    Refund(u8, i64),
    Renewal(u8),
}

fn fact_spec() -> impl Strategy<Value = FactSpec> {
    prop_oneof![
        2 => (0u8..3).prop_map(FactSpec::Bundle),
        3 => (1u64..3000).prop_map(FactSpec::Use),
        1 => (-1000i64..1000).prop_filter("nonzero", |a| *a != 0).prop_map(FactSpec::Admin),
        1 => ((0u8..3), prop::sample::select(vec![500i64, 1900])).prop_map(|(b, r)| FactSpec::Refund(b, r)),
        1 => (0u8..3).prop_map(FactSpec::Renewal),
    ]
}

#[test]
fn balances_do_not_depend_on_the_order_facts_are_listed_in() {
    run(60, (proptest::collection::vec(fact_spec(), 1..12), proptest::collection::vec(any::<prop::sample::Index>(), 12)), |(specs, perm)| {
    let cat = catalog();
    let mut fs = vec![link("cus_c", "c", T0)];
    let p = [T0, P1E, P2E, P3E];
    for (n, s) in specs.iter().enumerate() {
        let at = T0 + 1000 + n as i64 * 7 * DAY;
        fs.push(match *s {
            FactSpec::Bundle(b) => bundle(&format!("b{b}"), "TOKENS_30_MIN", at),
            FactSpec::Use(u) => usage_fact(&format!("u{n}"), "video_seconds", u, at),
            FactSpec::Admin(a) => Fact::credit_adjustment(
                CreditAdjustment { id: format!("adj{n}"), subject: Subject::user("c"), pool: "video_seconds".into(), amount: a, reason: "fix".into(), valid_to: None },
                t(at),
            ),
            FactSpec::Refund(b, r) => refund_of(&format!("b{b}"), r, at),
            FactSpec::Renewal(k) => paid_at("sub_c", k as usize, "STUDIO_BASIC_MONTHLY", p[k as usize], p[k as usize + 1], p[k as usize] + 60, 2900),
        });
    }
    let now = T0 + 200 * DAY;
    let a = fold(&cat, &fs, now);
    let mut shuffled = fs.clone();
    for (i, ix) in perm.iter().enumerate().take(shuffled.len()) {
        let j = ix.index(shuffled.len());
        shuffled.swap(i, j);
    }
    let b = fold(&cat, &shuffled, now);
    prop_assert_eq!(a.balance(C, "video_seconds"), b.balance(C, "video_seconds"));
    let lots = |st: &BillingState| st.subject(C).map(|s| {
        let mut v: Vec<_> = s.wallet.lots.iter().map(|l| (l.key.clone(), l.granted, l.remaining, l.used, l.revoked, l.expired)).collect();
        v.sort();
        v
    });
    prop_assert_eq!(lots(&a), lots(&b));
    prop_assert!(a.balance(C, "video_seconds") >= 0);
    Ok(())
    });
}


// ---------------------------------------------------------------------------------------------
// Paused subscriptions' lots.
// ---------------------------------------------------------------------------------------------

fn paused_grant(sub: &str) -> Grant {
    Grant {
        id: format!("stripe:{sub}:video"),
        product: "video".into(),
        tier: "creator".into(),
        source: Source::Stripe,
        status: Status::Canceled,
        valid_from: Timestamp(0),
        valid_to: Some(Timestamp(50)),
        past_due_since: None,
        offer: Some("VIDEO_CREATOR_MONTHLY".into()),
        source_ref: Some(sub.into()),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: Some(Timestamp(50)),
    }
}

#[test]
fn a_paused_subscriptions_lots_are_set_aside_exactly_and_count_again_on_resume() {
    let cat = studio();
    let mut w = Wallet::new();
    assert!(w.credit(new_lot("allow", LotKind::Allowance, 1800, 0, Some(1000), Some("sub_1"))));
    assert!(w.credit(new_lot("roll", LotKind::Rollover, 300, 0, Some(1000), Some("sub_1"))));
    assert!(w.credit(new_lot("tokens", LotKind::Purchase, 700, 0, None, None)));
    assert!(w.credit(new_lot("other", LotKind::Allowance, 11, 0, Some(1000), Some("sub_2"))));
    let grants = vec![paused_grant("sub_1")];
    let now = Timestamp(100);
    assert_eq!(tollgate::usage::balances(&w, &grants, now)["video_seconds"], 711);
    assert_eq!(tollgate::usage::balances(&w, &[], now)["video_seconds"], 2811);
    let d = tollgate::usage::drawable(&w, &grants, now);
    assert_eq!(d.available("video_seconds", now), (11, 700));
    // A charge under the pause: only the 711 spendable; the paused credits never billed
    // as overage, and nothing taken from the paused lots.
    let ents = Entitlements::new(grants.clone());
    let pol = OveragePolicy { allowed: true, limit: None, spent: 0 };
    let s = Subject::user("u");
    let input = ChargeInput { entitlements: &ents, wallet: &w, overage: &pol };
    let req = tollgate::charge::ChargeRequest { subject: &s, idempotency_key: "k", model: "standard", quality: "standard", seconds: 711 };
    let ChargeDecision::Charge(c) = tollgate::charge::charge(&cat, input, &req, now).unwrap() else { panic!() };
    assert!(c.takes.iter().all(|t| t.lot == "tokens" || t.lot == "other"), "{:?}", c.takes);
    assert_eq!(c.takes.iter().map(|t| t.units).sum::<i64>(), 711);
    let req = tollgate::charge::ChargeRequest { seconds: 712, ..req };
    match tollgate::charge::charge(&cat, input, &req, now).unwrap() {
        ChargeDecision::Refuse(Refusal::Short { denial, .. }) => {
            assert_eq!((denial.reason, denial.available, denial.required), (DenyReason::Paused, 711, 712));
        }
        d => panic!("paused credits must not become overage: {d:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Limit windows.
// ---------------------------------------------------------------------------------------------

fn month_start(y: i32, m: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap().timestamp()
}

#[test]
fn windows_at_the_ends_of_time_do_not_panic() {
    for now in [Timestamp::MIN, Timestamp(Timestamp::MIN.0 + 1), Timestamp(-1), Timestamp(0), Timestamp::MAX] {
        let d = window(LimitPeriod::Day, now);
        assert!(d.start <= now && Some(now) < d.resets_at, "{now:?} {d:?}");
        let m = window(LimitPeriod::Month, now);
        assert!(m.start <= now && Some(now) < m.resets_at, "{now:?} {m:?}");
    }
    let m = window(LimitPeriod::Month, Timestamp::MAX);
    assert_eq!(m.start.0, Utc.with_ymd_and_hms(9999, 12, 1, 0, 0, 0).unwrap().timestamp());
    let m = window(LimitPeriod::Month, Timestamp::MIN);
    assert_eq!(m.resets_at, Some(Timestamp(Utc.with_ymd_and_hms(0, 2, 1, 0, 0, 0).unwrap().timestamp())));
}

/// Day and month windows start and end exactly at UTC midnights and month starts,
/// around every boundary, and follow each other without gap or overlap.
#[test]
fn calendar_windows_are_exact_around_their_boundaries() {
    run(1000, (1900i32..2400, 1u32..=12, -2i64..=2, prop_oneof![Just(0i64), Just(1), Just(-1), -86_400i64..86_400]), |(y, m, day_off, sec)| {
    let boundary = month_start(y, m);
    let now = Timestamp(boundary + day_off * DAY + sec);
    let d = DateTime::<Utc>::from_timestamp(now.0, 0).unwrap();
    // Day.
    let w = window(LimitPeriod::Day, now);
    let midnight = Utc.with_ymd_and_hms(d.year(), d.month(), d.day(), 0, 0, 0).unwrap().timestamp();
    prop_assert_eq!(w.start, Timestamp(midnight));
    prop_assert_eq!(w.resets_at, Some(Timestamp(midnight + DAY)));
    prop_assert_eq!(window(LimitPeriod::Day, Timestamp(midnight + DAY)).start, Timestamp(midnight + DAY));
    // Month (and a billing period without its subscription).
    for p in [LimitPeriod::Month, LimitPeriod::BillingPeriod] {
        let w = window(p, now);
        let (ny, nm) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
        prop_assert_eq!(w.start, Timestamp(month_start(d.year(), d.month())));
        prop_assert_eq!(w.resets_at, Some(Timestamp(month_start(ny, nm))));
        prop_assert!(w.start <= now && Some(now) < w.resets_at);
        prop_assert_eq!(window(p, w.resets_at.unwrap()).start, w.resets_at.unwrap());
        prop_assert_eq!(window(p, Timestamp(w.start.0 - 1)).resets_at, Some(w.start));
    }
    Ok(())
    });
}

/// A monthly limit anchored on a yearly subscription: each window starts `k` months after
/// the subscription's start, on its day (the month's last when shorter: the 31st, the
/// 29th of February), the windows follow each other without gap, and `now` is in its own.
#[test]
fn anchored_monthly_windows_step_from_the_anchor() {
    run(1000, (2023i32..2030, 1u32..=12, prop::sample::select(vec![1u32, 15, 28, 29, 30, 31]), 0u32..24, 0i64..1200, -3i64..=3), |(y, m, dd, hh, after_days, sec)| {
    static CAT: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    let cat = CAT.get_or_init(|| shipped("razorpay-ai"));
    let li = cat.limit_index("monthly_ai_credits").unwrap();
    // Clamp the day to the month (an anchor is a real instant).
    let last = (28..=31).rev().find(|d| Utc.with_ymd_and_hms(y, m, *d, 0, 0, 0).single().is_some()).unwrap();
    let anchor = Utc.with_ymd_and_hms(y, m, dd.min(last), hh, 0, 0).unwrap();
    let mut ents = Entitlements::new(vec![Grant {
        id: "razorpay:sub_y:premium".into(),
        product: "premium".into(),
        tier: "PREMIUM".into(),
        source: Source::Razorpay,
        status: Status::Active,
        valid_from: Timestamp(anchor.timestamp()),
        valid_to: None,
        past_due_since: None,
        offer: Some("PREMIUM_YEARLY".into()),
        source_ref: Some("sub_y".into()),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }]);
    ents.subject = "user:u".into();
    // Near a window boundary: now = the start of a later window +- a few seconds.
    let k0 = (after_days / 30) as u32;
    let b = anchor.checked_add_months(Months::new(k0)).unwrap().timestamp();
    let now = Timestamp((b + sec).max(anchor.timestamp()));
    let w = meter::limit_window(cat, &ents, li, now);
    prop_assert!(w.start <= now && Some(now) < w.resets_at, "{:?} not in {:?}", now, w);
    // The start is k months after the anchor, the reset k + 1.
    let k = (0..=k0 + 1).find(|k| anchor.checked_add_months(Months::new(*k)).unwrap().timestamp() == w.start.0);
    prop_assert!(k.is_some(), "start {:?} is no month step of {}", w.start, anchor);
    let k = k.unwrap();
    prop_assert_eq!(w.resets_at, Some(Timestamp(anchor.checked_add_months(Months::new(k + 1)).unwrap().timestamp())));
    // Contiguous: the next window starts where this one resets.
    let next = meter::limit_window(cat, &ents, li, w.resets_at.unwrap());
    prop_assert_eq!(next.start, w.resets_at.unwrap());
    if w.start.0 > anchor.timestamp() {
        let prev = meter::limit_window(cat, &ents, li, Timestamp(w.start.0 - 1));
        prop_assert_eq!(prev.resets_at, Some(w.start));
    }
    Ok(())
    });
}

/// The overage cap's window: the period while it holds, then periods of the same length,
/// `now` always inside and the windows contiguous.
#[test]
fn overage_windows_hold_now_and_follow_each_other() {
    run(1000, (0i64..1_000_000, 1i64..5_000_000, -10i64..50_000_000), |(start, len, off)| {
    let p = BillingPeriod { since: Timestamp(start), start: Timestamp(start), end: Timestamp(start + len) };
    let now = Timestamp(start + off);
    let w = overage_period(&[p], now);
    prop_assert!(w.start <= now && Some(now) < w.resets_at, "{:?} {:?}", now, w);
    if now >= p.start {
        prop_assert_eq!(w.resets_at.unwrap().0 - w.start.0, len);
        prop_assert_eq!((w.start.0 - start).rem_euclid(len), 0);
        let next = overage_period(&[p], w.resets_at.unwrap());
        prop_assert_eq!(next.start, w.resets_at.unwrap());
    }
    Ok(())
    });
}


/// A count up to u64's limits never overflows a limit check.
#[test]
fn limit_checks_at_u64_limits_do_not_overflow() {
    let cat = shipped("razorpay-ai");
    let ents = Entitlements::default();
    for used in [u64::MAX, u64::MAX - 1, 1u64 << 63] {
        let c = meter::check(&cat, &ents, "monthly_ai_credits", meter::MAX_QUANTITY, used, Timestamp(1_772_323_200)).unwrap();
        assert!(!c.allowed);
    }
    let mut w = Wallet::new();
    assert!(w.credit(NewLot { pool: "ai_credits", ..new_lot("p", LotKind::Purchase, MAX_CREDIT, 0, None, None) }));
    let c = meter::check_pool(&cat, &ents, &w, "ai_credits", meter::MAX_QUANTITY, Timestamp(10)).unwrap();
    assert!(c.allowed);
    assert_eq!(c.remaining, meter::Remaining::Count(MAX_CREDIT as u64 - meter::MAX_QUANTITY));
}

/// Through the fold: period 2's invoice paid two days before period 1 ends (the renewal
/// closes period 1's allowance early and carries it over), then an upgrade's proration for
/// period 1 paid a day before its end (tops the closed allowance up), then period 1 ends.
#[test]
fn an_early_renewal_then_an_upgrade_of_the_old_period_keeps_the_ledger_whole() {
    let cat = catalog();
    let fs = vec![
        link("cus_c", "c", T0),
        paid_at("sub_c", 0, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 60, 2900),
        paid_at("sub_c", 1, "STUDIO_BASIC_MONTHLY", P1E, P2E, P1E - 2 * DAY, 2900),
        paid_at("sub_c", 2, "STUDIO_PRO_MONTHLY", T0, P1E, P1E - DAY, 5000),
    ];
    let st = reduce(&cat, &fs, t(P1E + DAY));
    let w = &st.subject(C).unwrap().wallet;
    let lots: Vec<_> = w.lots.iter().map(|l| (&l.key, l.granted, l.remaining, l.used, l.revoked, l.expired, l.closed)).collect();
    assert!(st.check_invariants().is_ok(), "{:?}: {lots:#?}", st.check_invariants());
}
