//! Metered actions (`tollgate::meter`) on the VCM Suite's catalog: the workflow runs a
//! day of each tier, the capabilities, windows in UTC, and a model-based run of random
//! uses against a plain counter; credit pools, and a seated member's own pool.

use proptest::prelude::*;
use tollgate::billing::facts::Subject;
use tollgate::decide::Reason;
use tollgate::meter::{self, MeterAnswer, MeterError, Remaining, Track, Use};
use tollgate::{Catalog, Entitlements, Grant, Source, Status, Timestamp};

fn vcm() -> Catalog {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/vcm-suite.toml")).unwrap();
    Catalog::from_toml(&src).unwrap()
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// A subject holding `tier` of the suite (or nothing).
fn holding(tier: Option<&str>) -> Entitlements {
    Entitlements {
        subject: "user:u1".into(),
        grants: tier
            .map(|t| Grant {
                id: "g1".into(),
                product: "suite".into(),
                tier: t.into(),
                source: Source::Stripe,
                status: Status::Active,
                valid_from: ts("2026-01-01T00:00:00Z"),
                valid_to: None,
                past_due_since: None,
                offer: None,
                source_ref: None,
                catalog_version: None,
                renewal_version: None,
                period_start: None,
                paused_since: None,
            })
            .into_iter()
            .collect(),
        balances: Default::default(),
        until: None,
    }
}

const RUNS: &str = "workflow_runs_per_day";

#[test]
fn starter_runs_three_a_day_then_is_offered_the_cheapest_unlimited_plan() {
    let cat = vcm();
    let now = ts("2026-03-05T15:00:00Z");
    let ents = holding(Some("starter"));
    for used in 0..3 {
        let c = meter::check(&cat, &ents, RUNS, 1, used, now).unwrap();
        assert!(c.allowed, "run {}", used + 1);
        assert_eq!(c.reason, Reason::WithinLimit);
        assert_eq!(c.remaining, Remaining::Count(2 - used));
        assert_eq!(c.resets_at, Some(ts("2026-03-06T00:00:00Z")));
        assert!(c.upgrade.is_none());
    }
    let fourth = meter::check(&cat, &ents, RUNS, 1, 3, now).unwrap();
    assert!(!fourth.allowed);
    assert_eq!(fourth.reason, Reason::LimitReached);
    assert_eq!(fourth.remaining, Remaining::Count(0));
    assert_eq!(fourth.upgrade.as_ref().map(|u| u.offer.as_str()), Some("SUITE_BASIC_MONTHLY"));
    // Two at once when one is left: refused whole, nothing partly counted.
    let two = meter::check(&cat, &ents, RUNS, 2, 2, now).unwrap();
    assert!(!two.allowed);
    assert_eq!(two.remaining, Remaining::Count(1));
}

#[test]
fn without_a_plan_workflows_are_refused_with_the_starter_offer_and_basic_is_unlimited() {
    let cat = vcm();
    let now = ts("2026-03-05T15:00:00Z");
    let none = meter::check(&cat, &holding(None), RUNS, 1, 0, now).unwrap();
    assert!(!none.allowed);
    assert_eq!(none.upgrade.as_ref().map(|u| u.offer.as_str()), Some("SUITE_STARTER_MONTHLY"));
    let basic = meter::check(&cat, &holding(Some("basic")), RUNS, 5, 1_000, now).unwrap();
    assert!(basic.allowed);
    assert_eq!((basic.remaining, basic.limit), (Remaining::Unlimited, Remaining::Unlimited));
}

#[test]
fn a_capability_is_checked_and_counts_nothing() {
    let cat = vcm();
    let now = ts("2026-03-05T15:00:00Z");
    let s = Subject::user("u1");
    let asked = Use { subject: &s, idempotency_key: "k", feature: "use_ai", quantity: 1, scope: None, actor: None };
    match meter::track(&cat, &holding(Some("starter")), &asked, 0, now).unwrap() {
        Track::Refuse(c) => {
            assert_eq!(c.feature, "use_ai");
            assert!(c.upgrade.is_some(), "the cheapest plan with AI is offered");
        }
        other => panic!("starter has no AI: {other:?}"),
    }
    match meter::track(&cat, &holding(Some("pro")), &asked, 0, now).unwrap() {
        Track::Allow(c, None) => assert!(c.allowed),
        other => panic!("pro uses AI, nothing counted: {other:?}"),
    }
}

#[test]
fn an_answer_says_a_refusal_in_words_once_and_a_track_carries_its_use() {
    let cat = vcm();
    let now = ts("2026-03-05T15:00:00Z");
    let ents = holding(Some("starter"));
    let fourth = meter::check(&cat, &ents, RUNS, 1, 3, now).unwrap();
    let (code, message) = fourth.refusal().unwrap();
    assert_eq!(code, "limit_reached");
    let label = &fourth.upgrade.as_ref().unwrap().label;
    assert_eq!(message, format!("The limit of {RUNS} is reached. Upgrade to {label} to continue."));
    let checked = serde_json::to_value(MeterAnswer::checked(fourth.clone())).unwrap();
    assert_eq!(checked["message"], serde_json::json!(message));
    assert_eq!(checked["reason"], "limit_reached", "the decision's fields stand beside it: {checked}");
    assert!(checked.get("usage_id").is_none() && checked.get("replayed").is_none(), "a check records nothing: {checked}");

    let first = meter::check(&cat, &ents, RUNS, 1, 0, now).unwrap();
    assert!(first.refusal().is_none());
    let tracked = serde_json::to_value(MeterAnswer::tracked(first, None, false)).unwrap();
    assert!(tracked.get("message").is_none(), "{tracked}");
    assert_eq!((&tracked["usage_id"], &tracked["replayed"]), (&serde_json::Value::Null, &serde_json::json!(false)));

    let none = meter::check(&cat, &holding(None), "use_ai", 1, 0, now).unwrap();
    let (code, message) = none.refusal().unwrap();
    assert_eq!(code, "not_entitled");
    assert!(message.starts_with("Your plan does not include use_ai. Upgrade to "), "{message}");
}

#[test]
fn unknown_features_pools_and_bad_quantities_are_typed_errors() {
    let cat = vcm();
    let now = ts("2026-03-05T15:00:00Z");
    let ents = holding(Some("pro"));
    assert_eq!(meter::check(&cat, &ents, "teleport", 1, 0, now).unwrap_err(), MeterError::UnknownFeature("teleport".into()));
    assert_eq!(meter::check(&cat, &ents, RUNS, 0, 0, now).unwrap_err(), MeterError::BadQuantity(0));
    let video = Catalog::from_toml(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/video-studio.toml")).unwrap()).unwrap();
    let pool = video.doc.credit_pools[0].id.clone();
    assert_eq!(meter::check(&video, &ents, &pool, 1, 0, now).unwrap_err(), MeterError::Pool(pool));
}

#[test]
fn a_count_carries_its_window_limit_and_a_request_id_no_key_can_forge() {
    let cat = vcm();
    let now = ts("2026-03-05T23:59:59Z");
    let s = Subject::user("u1");
    let asked = Use { subject: &s, idempotency_key: "usage:user:u1:x", feature: RUNS, quantity: 1, scope: None, actor: None };
    let Track::Allow(_, Some(count)) = meter::track(&cat, &holding(Some("starter")), &asked, 0, now).unwrap() else {
        panic!("allowed and counted");
    };
    assert_eq!(count.window_start, ts("2026-03-05T00:00:00Z"));
    assert_eq!(count.max, Some(3));
    assert!(count.request_id.starts_with("user:u1:") && !count.request_id.contains("usage:"));
    let other = Use { quantity: 2, ..asked };
    let Track::Allow(_, Some(c2)) = meter::track(&cat, &holding(Some("starter")), &other, 0, now).unwrap() else {
        panic!("allowed");
    };
    assert_eq!(c2.request_id, count.request_id, "the key names the request");
    assert_ne!(c2.request_hash, count.request_hash, "another body under the same key is told apart");
}

proptest! {
    /// Random uses over days, against a plain per-day counter: the core admits a use
    /// exactly when the reference has room, and never lets a day pass its limit.
    #[test]
    fn uses_match_a_plain_daily_counter(
        tier in prop::sample::select(vec!["free", "starter", "basic"]),
        uses in prop::collection::vec((0i64..3, 0i64..86_400, 1u64..3), 1..60),
    ) {
        let cat = vcm();
        let ents = holding(Some(tier));
        let limit = match tier { "free" => Some(0), "starter" => Some(3), _ => None };
        let mut days = std::collections::BTreeMap::<i64, u64>::new();
        let mut sorted = uses.clone();
        sorted.sort();
        for (day, secs, q) in sorted {
            let now = Timestamp(ts("2026-03-01T00:00:00Z").unix() + day * 86_400 + secs);
            let used = *days.get(&day).unwrap_or(&0);
            let c = meter::check(&cat, &ents, RUNS, q, used, now).unwrap();
            let room = limit.is_none_or(|l| used + q <= l);
            prop_assert_eq!(c.allowed, room);
            if c.allowed {
                days.insert(day, used + q);
            }
            prop_assert!(limit.is_none_or(|l| days.get(&day).copied().unwrap_or(0) <= l));
            prop_assert_eq!(meter::window(cat.doc.limits[0].period, now).start.unix() % 86_400, 0);
        }
    }
}

fn razorpay() -> Catalog {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/razorpay-ai.toml")).unwrap();
    Catalog::from_toml(&src).unwrap()
}

/// A wallet with `free` units of the free drafts, as a joined user's fold leaves it.
fn drafts(free: i64) -> tollgate::credits::Wallet {
    let mut w = tollgate::credits::Wallet::new();
    w.credit(tollgate::credits::NewLot {
        key: "free:user:u1:free_drafts".into(),
        pool: "free_drafts",
        kind: tollgate::credits::LotKind::Free,
        amount: free,
        at: ts("2026-03-01T00:00:00Z"),
        valid_to: None,
        source: "catalog",
        subscription: None,
        catalog_version: None,
    });
    w
}

#[test]
fn a_user_is_joined_once_and_an_organization_never() {
    use tollgate::billing::facts::Fact;
    let cat = razorpay();
    let now = ts("2026-03-05T15:00:00Z");
    let u = Subject::user("u1");
    let f = Fact::joining(&cat, &u, &tollgate::credits::Wallet::new(), now).expect("a new user joins");
    assert_eq!(f.key, "joined:user:u1");
    assert_eq!(Fact::joining(&cat, &u, &drafts(2), now), None, "holding the free lot: nothing to do");
    assert_eq!(Fact::joining(&cat, &Subject::org("o1"), &tollgate::credits::Wallet::new(), now), None);
    assert_eq!(Fact::joining(&vcm(), &u, &tollgate::credits::Wallet::new(), now), None, "no free amounts in the catalog");
    // The fold of that one fact gives the free drafts.
    let st = tollgate::billing::reduce(&cat, &[f], now);
    let w = &st.subjects["user:u1"].wallet;
    assert_eq!(w.available("free_drafts", now), (0, 2));
}

#[test]
fn credit_pools_are_checked_against_the_lots_and_refused_with_a_credit_offer() {
    let cat = razorpay();
    let now = ts("2026-03-05T15:00:00Z");
    let ents = holding(None);
    let c = meter::check_pool(&cat, &ents, &drafts(2), "free_drafts", 2, now).unwrap();
    assert!(c.allowed);
    assert_eq!((c.remaining, c.limit), (Remaining::Count(0), Remaining::Count(2)));
    let c = meter::check_pool(&cat, &ents, &drafts(2), "free_drafts", 3, now).unwrap();
    assert!(!c.allowed);
    assert_eq!(c.reason, Reason::LimitReached);
    let c = meter::check_pool(&cat, &ents, &drafts(2), "ai_credits", 1, now).unwrap();
    assert_eq!((c.allowed, c.reason), (false, Reason::NoEntitlement));
    assert_eq!(c.upgrade.map(|u| u.offer), Some("AI_CREDITS_TOPUP_500".to_string()));
}

#[test]
fn a_charge_of_credits_takes_its_units_and_nothing_else() {
    use tollgate::charge::{charge_units, ChargeDecision, ChargeInput, Refusal, UnitsRequest};
    use tollgate::credits::OveragePolicy;
    let cat = razorpay();
    let now = ts("2026-03-05T15:00:00Z");
    let ents = holding(None);
    let w = drafts(2);
    let policy = OveragePolicy { allowed: true, limit: Some(1_000_000), spent: 0 };
    let input = ChargeInput { entitlements: &ents, wallet: &w, overage: &policy };
    let s = Subject::user("u1");
    let req = UnitsRequest { subject: &s, idempotency_key: "k", pool: "free_drafts", units: 2, hold: false };
    let ChargeDecision::Charge(c) = charge_units(&cat, input, &req, now).unwrap() else { panic!("two drafts") };
    assert_eq!((c.record.units, c.record.cost_minor, c.record.overage_units), (2, 0, 0));
    assert_eq!(c.takes.iter().map(|t| t.units).sum::<i64>(), 2);
    assert!(c.quote.is_none() && c.record.model.is_none());
    // Even with overages allowed, credits are never lent: a third is short.
    let req = UnitsRequest { units: 3, ..req };
    match charge_units(&cat, input, &req, now).unwrap() {
        ChargeDecision::Refuse(Refusal::Short { denial: d, .. }) => assert_eq!((d.available, d.required), (2, 3)),
        other => panic!("short: {other:?}"),
    }
    let bad = UnitsRequest { units: 0, ..req };
    assert_eq!(charge_units(&cat, input, &bad, now).unwrap_err().code(), "invalid_quantity");
    let unknown = UnitsRequest { pool: "gold", ..req };
    assert_eq!(charge_units(&cat, input, &unknown, now).unwrap_err().code(), "unknown_pool");
}

const PLUS_AND_TOKENS: &str = r#"
[catalog]
id = "credits"
name = "Credits"
version = "1"
currency = "usd"
grace_period_days = 0

[[products]]
id = "app"
tiers = ["plus"]

[[credit_pools]]
id = "tokens"
label = "Tokens"
unit = "token"

[[offers]]
key = "PLUS_MONTHLY"
label = "Plus"
price = { amount = 500, currency = "usd", interval = "month" }
grants = [{ product = "app", tier = "plus" }]
credits = [{ pool = "tokens", amount = 100, per = "period" }]

[[offers]]
key = "TOKENS_500"
label = "500 tokens"
price = { amount = 1000, currency = "usd", interval = "one_time" }
credits = [{ pool = "tokens", amount = 500, per = "once" }]
"#;

/// A Plus subscriber ($5/month, 100 tokens a period) who used up this period's tokens asks
/// for one more: the refusal names the 500-token top-up, the cheapest offer it can buy
/// that puts tokens in the pool, never Plus, the plan it already pays for (checkout
/// refuses it: already subscribed). The same from the snapshot, the lots and a charge.
/// Without the plan, Plus is the cheapest and is named.
#[test]
fn an_exhausted_pool_does_not_name_the_subscription_the_subject_already_holds() {
    use tollgate::charge::{charge_units, ChargeDecision, ChargeInput, Refusal, UnitsRequest};
    let cat = Catalog::from_toml(PLUS_AND_TOKENS).unwrap();
    let now = ts("2026-03-05T15:00:00Z");
    let plus = Grant {
        id: "stripe:sub_1:app".into(),
        product: "app".into(),
        tier: "plus".into(),
        offer: Some("PLUS_MONTHLY".into()),
        source_ref: Some("stripe:sub_1".into()),
        valid_to: Some(ts("2026-03-20T00:00:00Z")),
        ..holding(Some("plus")).grants.remove(0)
    };
    let mut ents = Entitlements::new(vec![plus]);
    ents.balances.insert("tokens".into(), 0);
    let offer = |c: &tollgate::meter::Check| c.upgrade.as_ref().map(|u| u.offer.clone());
    let snapshot = meter::check_feature(&cat, &ents, "tokens", 1, 0, now).unwrap();
    assert_eq!((snapshot.allowed, offer(&snapshot).as_deref()), (false, Some("TOKENS_500")));
    let wallet = tollgate::credits::Wallet::default();
    let lots = meter::check_pool(&cat, &ents, &wallet, "tokens", 1, now).unwrap();
    assert_eq!(offer(&lots), offer(&snapshot));
    let policy = tollgate::credits::OveragePolicy { allowed: false, limit: Some(0), spent: 0 };
    let input = ChargeInput { entitlements: &ents, wallet: &wallet, overage: &policy };
    let s = Subject::user("u1");
    let req = UnitsRequest { subject: &s, idempotency_key: "k", pool: "tokens", units: 1, hold: false };
    match charge_units(&cat, input, &req, now).unwrap() {
        ChargeDecision::Refuse(Refusal::Short { upgrade, .. }) => assert_eq!(upgrade.as_deref(), Some("TOKENS_500")),
        other => panic!("short: {other:?}"),
    }
    let none = meter::check_feature(&cat, &Entitlements::default(), "tokens", 1, 0, now).unwrap();
    assert_eq!(offer(&none).as_deref(), Some("PLUS_MONTHLY"));
}

fn studio() -> Catalog {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/video-studio.toml")).unwrap();
    Catalog::from_toml(&src).unwrap()
}

/// Video Studio, a user with no plan and no seconds asks for 5,000 seconds: the refusal
/// names the cheapest offer that puts 5,000 seconds in (the 2 Hour Bundle, 7,200 seconds,
/// $59), not the 30 Min Bundle (1,800 seconds, $19), after which the same request is still
/// refused. A user holding 4,000 seconds lacks 1,000: the 30 Min Bundle then. No offer
/// puts 40,000 in: the one that puts the most (Studio, 36,000 a period) leaves the least
/// to find.
#[test]
fn a_pool_refusal_names_an_offer_with_enough_credits_for_the_request() {
    use tollgate::charge::{charge, ChargeDecision, ChargeInput, ChargeRequest, Refusal};
    let cat = studio();
    let now = ts("2026-03-05T15:00:00Z");
    let named = |held: Option<i64>, quantity: u64| {
        let ents = held.map_or_else(Entitlements::default, holding_seconds);
        let c = meter::check_feature(&cat, &ents, "video_seconds", quantity, 0, now).unwrap();
        assert!(!c.allowed);
        c.upgrade.expect("an upgrade is named").offer
    };
    let offer = named(None, 5000);
    assert_eq!(offer, "VIDEO_TOKENS_2_HOURS");
    // Bought, its seconds land in the pool and the same request is allowed.
    let gives: i64 = cat.offer(&offer).unwrap().credits.iter().filter(|g| g.pool == "video_seconds").map(|g| g.amount).sum();
    assert!(meter::check_feature(&cat, &holding_seconds(gives), "video_seconds", 5000, 0, now).unwrap().allowed);
    assert_eq!(named(Some(4000), 5000), "VIDEO_TOKENS_30_MIN");
    assert_eq!(named(None, 40_000), "VIDEO_STUDIO_MONTHLY");
    // A charge's refusal names the same.
    let s = Subject::user("u1");
    let policy = tollgate::credits::OveragePolicy { allowed: false, limit: Some(0), spent: 0 };
    let (ents, wallet) = (Entitlements::default(), tollgate::credits::Wallet::default());
    let input = ChargeInput { entitlements: &ents, wallet: &wallet, overage: &policy };
    let req = ChargeRequest { subject: &s, idempotency_key: "k", model: "standard", quality: "standard", seconds: 5000 };
    match charge(&cat, input, &req, now).unwrap() {
        ChargeDecision::Refuse(Refusal::NotEntitled { upgrade, .. }) => assert_eq!(upgrade.as_deref(), Some("VIDEO_TOKENS_2_HOURS")),
        other => panic!("not entitled: {other:?}"),
    }
}

/// A snapshot's subject holding `n` video seconds (and no plan).
fn holding_seconds(n: i64) -> Entitlements {
    let mut ents = Entitlements::default();
    ents.balances.insert("video_seconds".into(), n);
    ents
}

#[test]
fn a_scope_counts_a_limit_per_thing_and_is_refused_elsewhere() {
    let cat = vcm();
    let now = ts("2026-03-05T10:00:00Z");
    let s = Subject::user("u1");
    let per = |scope| Use { subject: &s, idempotency_key: "k", feature: RUNS, quantity: 1, scope, actor: None };
    let Track::Allow(_, Some(a)) = meter::track(&cat, &holding(Some("starter")), &per(Some("project-1")), 0, now).unwrap() else {
        panic!("allowed");
    };
    assert_eq!((a.feature.as_str(), a.counter.as_str()), (RUNS, "workflow_runs_per_day:project-1"));
    let Track::Allow(_, Some(b)) = meter::track(&cat, &holding(Some("starter")), &per(None), 0, now).unwrap() else {
        panic!("allowed");
    };
    assert_eq!(b.counter, RUNS);
    assert_ne!(a.request_hash, b.request_hash, "the same key for another scope is another request");
    let long = "x".repeat(meter::MAX_SCOPE + 1);
    for bad in ["", "a b", "ü", long.as_str()] {
        assert!(matches!(meter::track(&cat, &holding(Some("starter")), &per(Some(bad)), 0, now), Err(MeterError::BadScope(_))), "{bad:?}");
    }
    let on_capability = Use { feature: "use_ai", ..per(Some("p")) };
    assert!(matches!(meter::track(&cat, &holding(Some("pro")), &on_capability, 0, now), Err(MeterError::BadScope(_))));
    assert_eq!(meter::counter_of(&cat, "use_ai", None).unwrap(), None);
}

#[test]
fn only_a_seated_member_acts_for_its_organization() {
    use tollgate::seats::{acting_for, ActError};
    let g = holding(Some("pro")).grants;
    let orgs = vec![("o1".to_string(), true, g.clone()), ("o2".to_string(), false, g.clone())];
    let ents = acting_for("o1", &orgs).unwrap();
    assert_eq!((ents.subject.as_str(), ents.grants.len()), ("org:o1", g.len()));
    assert_eq!(acting_for("o2", &orgs).unwrap_err(), ActError::NoSeat);
    assert_eq!(acting_for("o3", &orgs).unwrap_err(), ActError::NotMember);
}

/// The Org Seats app with one credit pool that its Professional (monthly) plan, an
/// organization's plan, fills every period, and a member seated in organization `o1` on
/// that plan: the seat lends the organization's grant (`org:o1:...`) to the member for
/// access and capabilities only; the pool's allowance goes to the organization's lots.
fn org_pool_and_member() -> (Catalog, Entitlements) {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/org-seats.toml")).unwrap();
    let src = src.replace("trial_days = 14\n", "trial_days = 14\ncredits = [{ pool = \"ai_minutes\", amount = 100, per = \"period\" }]\n")
        + "\n[[credit_pools]]\nid = \"ai_minutes\"\nlabel = \"AI minutes\"\nunit = \"minute\"\n";
    let c = Catalog::from_toml(&src).unwrap();
    let org_grant = Grant {
        id: "stripe:sub_org:org".into(),
        product: "org".into(),
        tier: "PROFESSIONAL".into(),
        source: Source::Stripe,
        status: Status::Active,
        valid_from: ts("2026-03-01T00:00:00Z"),
        valid_to: Some(ts("2026-04-01T00:00:00Z")),
        past_due_since: None,
        offer: Some("ORG_PROFESSIONAL_MONTHLY".into()),
        source_ref: Some("stripe:sub_org".into()),
        catalog_version: None,
        renewal_version: None,
        period_start: Some(ts("2026-03-01T00:00:00Z")),
        paused_since: None,
    };
    let member = tollgate::seats::merge_seated_grants(Entitlements::default(), &[("o1".into(), true, vec![org_grant])]);
    assert!(member.grants[0].lent_by_seat(), "setup: the organization's grant is lent");
    (c, member)
}

/// A member's own pool never refills with its organization's plan (the allowance goes to
/// the organization's lots): a pool check says `resets_at: null` and a snapshot's
/// `refills` leaves the pool out, as every per-subject rule leaves out lent grants.
#[test]
fn a_members_own_pool_does_not_refill_with_its_organizations_plan() {
    let (c, member) = org_pool_and_member();
    let now = ts("2026-03-10T00:00:00Z");
    assert_eq!(meter::pool_refill(&c, &member, "ai_minutes", now), None, "the member's own pool is not refilled by the organization's plan");
    assert_eq!(meter::check_feature(&c, &member, "ai_minutes", 1, 0, now).unwrap().resets_at, None);
    assert!(meter::pool_refills(&c, &member, now).is_empty(), "a snapshot's `refills` names no pool of the member");
}

/// The organization's plan a seat lends is not the member's own plan: a member holding no
/// lot of a pool may not draw on it (`no_entitlement`, from a snapshot and from the lots
/// alike), rather than being told it ran out of credits it can never hold.
#[test]
fn a_member_without_lots_may_not_draw_on_a_pool_by_its_organizations_plan() {
    let (c, member) = org_pool_and_member();
    let now = ts("2026-03-10T00:00:00Z");
    let wallet = tollgate::credits::Wallet::new();
    assert!(!tollgate::usage::may_draw(&c, &member, &wallet, "ai_minutes", now));
    let from_snapshot = meter::check_feature(&c, &member, "ai_minutes", 1, 0, now).unwrap();
    assert_eq!((from_snapshot.allowed, from_snapshot.reason), (false, Reason::NoEntitlement));
    let from_lots = meter::check_pool(&c, &member, &wallet, "ai_minutes", 1, now).unwrap();
    assert_eq!(from_lots, from_snapshot, "the worker's check and the browser's say the same");
}

fn razorpay_with(edit: impl Fn(String) -> String) -> Catalog {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/razorpay-ai.toml")).unwrap();
    Catalog::from_toml(&edit(src)).unwrap()
}

/// A Premium subscriber of `offer` since `from`.
fn premium(offer: &str, from: &str) -> Entitlements {
    let mut e = holding(Some("PREMIUM"));
    let g = &mut e.grants[0];
    g.product = "premium".into();
    g.valid_from = ts(from);
    g.offer = Some(offer.into());
    e
}

#[test]
fn a_monthly_allowance_on_a_yearly_plan_renews_on_the_subscriptions_day() {
    let cat = razorpay_with(|s| s);
    let li = cat.limit_index("monthly_ai_credits").unwrap();
    let yearly = premium("PREMIUM_YEARLY", "2026-01-15T09:30:00Z");
    let w = meter::limit_window(&cat, &yearly, li, ts("2026-03-20T00:00:00Z"));
    assert_eq!((w.start, w.resets_at), (ts("2026-03-15T09:30:00Z"), Some(ts("2026-04-15T09:30:00Z"))));
    let w = meter::limit_window(&cat, &yearly, li, ts("2026-03-15T09:29:59Z"));
    assert_eq!(w.start, ts("2026-02-15T09:30:00Z"), "the day before the subscription's day is still the last window");
    // From the 31st: the shorter months end on their last day, counted from the anchor.
    let late = premium("PREMIUM_YEARLY", "2026-01-31T00:00:00Z");
    let w = meter::limit_window(&cat, &late, li, ts("2026-03-10T00:00:00Z"));
    assert_eq!((w.start, w.resets_at), (ts("2026-02-28T00:00:00Z"), Some(ts("2026-03-31T00:00:00Z"))));
    // No subscription behind the tier: the calendar month.
    let w = meter::limit_window(&cat, &holding(None), li, ts("2026-03-20T00:00:00Z"));
    assert_eq!((w.start, w.resets_at), (ts("2026-03-01T00:00:00Z"), Some(ts("2026-04-01T00:00:00Z"))));
    // The check counts in that window and says when it resets.
    let c = meter::check(&cat, &yearly, "monthly_ai_credits", 1, 1999, ts("2026-03-20T00:00:00Z")).unwrap();
    assert_eq!((c.allowed, c.resets_at), (true, Some(ts("2026-04-15T09:30:00Z"))));
    let s = Subject::user("u1");
    let asked = Use { subject: &s, idempotency_key: "k", feature: "monthly_ai_credits", quantity: 1, scope: None, actor: None };
    let Track::Allow(_, Some(count)) = meter::track(&cat, &yearly, &asked, 0, ts("2026-03-20T00:00:00Z")).unwrap() else {
        panic!("allowed and counted");
    };
    assert_eq!(count.window_start, ts("2026-03-15T09:30:00Z"));
}

#[test]
fn a_billing_period_limit_counts_over_the_offers_interval() {
    let cat = razorpay_with(|s| s.replace("period = \"month\"\nanchor = \"subscription\"", "period = \"billing_period\""));
    let li = cat.limit_index("monthly_ai_credits").unwrap();
    let yearly = premium("PREMIUM_YEARLY", "2026-01-15T00:00:00Z");
    let w = meter::limit_window(&cat, &yearly, li, ts("2027-03-20T00:00:00Z"));
    assert_eq!((w.start, w.resets_at), (ts("2027-01-15T00:00:00Z"), Some(ts("2028-01-15T00:00:00Z"))));
    let monthly = premium("PREMIUM_MONTHLY", "2026-01-15T00:00:00Z");
    let w = meter::limit_window(&cat, &monthly, li, ts("2026-03-20T00:00:00Z"));
    assert_eq!((w.start, w.resets_at), (ts("2026-03-15T00:00:00Z"), Some(ts("2026-04-15T00:00:00Z"))));
    // A grant with no offer (given by hand): the calendar month.
    let mut by_hand = premium("PREMIUM_MONTHLY", "2026-01-15T00:00:00Z");
    by_hand.grants[0].offer = None;
    assert_eq!(meter::limit_window(&cat, &by_hand, li, ts("2026-03-20T00:00:00Z")).start, ts("2026-03-01T00:00:00Z"));
    assert_eq!(meter::used_in(&w, Some((w.start, 7))), 7);
    assert_eq!(meter::used_in(&w, Some((ts("2026-02-15T00:00:00Z"), 7))), 0, "an older window has reset");
}

#[test]
fn a_billing_period_turns_with_the_providers_period_after_a_trial() {
    // Subscribed on 1 March with a 7-day trial: the provider's paid periods run from
    // 8 March. The billing-period window, the anchored monthly one and the overage cap's
    // period are all that period, not one counted from the trial's start.
    let billing = razorpay_with(|s| s.replace("period = \"month\"\nanchor = \"subscription\"", "period = \"billing_period\""));
    let li = billing.limit_index("monthly_ai_credits").unwrap();
    let mut trial = premium("PREMIUM_MONTHLY", "2026-03-01T00:00:00Z");
    trial.grants[0].period_start = Some(ts("2026-03-08T00:00:00Z"));
    let now = ts("2026-04-03T00:00:00Z");
    let w = meter::limit_window(&billing, &trial, li, now);
    assert_eq!((w.start, w.resets_at), (ts("2026-03-08T00:00:00Z"), Some(ts("2026-04-08T00:00:00Z"))));
    let period = meter::BillingPeriod { since: ts("2026-03-01T00:00:00Z"), start: ts("2026-03-08T00:00:00Z"), end: ts("2026-04-08T00:00:00Z") };
    assert_eq!(w, meter::overage_period(&[period], now));
    let monthly = razorpay();
    let w = meter::limit_window(&monthly, &trial, monthly.limit_index("monthly_ai_credits").unwrap(), now);
    assert_eq!(w.start, ts("2026-03-08T00:00:00Z"));
    // Billed on the 31st: the provider's period after February runs from the 28th to
    // the 31st of March, and so does the window (not to the 28th).
    let mut late = premium("PREMIUM_MONTHLY", "2026-01-31T00:00:00Z");
    late.grants[0].period_start = Some(ts("2026-02-28T00:00:00Z"));
    late.grants[0].valid_to = Some(ts("2026-03-31T00:00:00Z"));
    let w = meter::limit_window(&billing, &late, li, ts("2026-03-29T00:00:00Z"));
    assert_eq!((w.start, w.resets_at), (ts("2026-02-28T00:00:00Z"), Some(ts("2026-03-31T00:00:00Z"))));
    // Without the provider's period: from the grant's start, as before.
    trial.grants[0].period_start = None;
    assert_eq!(meter::limit_window(&billing, &trial, li, now).start, ts("2026-04-01T00:00:00Z"));
}

#[test]
fn a_subscription_anchor_is_for_monthly_windows() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/razorpay-ai.toml")).unwrap();
    let bad = src.replace("period = \"month\"\nanchor = \"subscription\"", "period = \"day\"\nanchor = \"subscription\"");
    let e = Catalog::from_toml(&bad).unwrap_err().to_string();
    assert!(e.contains("anchor"), "{e}");
}

/// A Premium (monthly) subscriber of the Razorpay AI app with 200 AI credits left asks for
/// 1,500: the refusal named Premium (yearly), a second plan of the product it subscribes
/// to, which checkout refuses (already subscribed: a change, not a purchase). It names an
/// offer the subscriber can buy: a top-up.
#[test]
fn a_pool_refusal_never_names_a_second_plan_of_a_product_the_subject_subscribes_to() {
    use tollgate::billing::facts::SubStatus;
    use tollgate::catalog::Provider;
    use tollgate::checkout::{self, Account, Held, Purchase};
    let c = Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).unwrap();
    let now = Timestamp(1_800_000_000);
    let premium = Grant {
        id: "razorpay:sub_1:premium".into(),
        product: "premium".into(),
        tier: "PREMIUM".into(),
        source: Source::Razorpay,
        status: Status::Active,
        valid_from: Timestamp(now.0 - 86_400),
        valid_to: Some(Timestamp(now.0 + 20 * 86_400)),
        past_due_since: None,
        offer: Some("PREMIUM_MONTHLY".into()),
        source_ref: Some("razorpay:sub_1".into()),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    };
    let mut ents = Entitlements::new(vec![premium]);
    ents.balances.insert("ai_credits".into(), 200);
    let check = meter::check_feature(&c, &ents, "ai_credits", 1500, 0, now).unwrap();
    assert!(!check.allowed);
    let named = check.upgrade.expect("a refusal names an offer").offer;
    let account = Account {
        subject: Subject::user("u1"),
        role: None,
        subscriptions: vec![Held {
            provider: Provider::Razorpay,
            id: "sub_1".into(),
            offer: Some("PREMIUM_MONTHLY".into()),
            status: SubStatus::Active,
            quantity: 1,
            cancel_at_period_end: false,
            current_period_end: Some(Timestamp(now.0 + 20 * 86_400)),
            products: vec![("premium".into(), "PREMIUM".into())],
        }],
        customers: vec![],
        seats_used: 0,
        email: None,
    };
    let buy = Purchase {
        offer: named.clone(),
        quantity: None,
        clouds: vec![],
        success_url: "https://app.example.com/ok".into(),
        cancel_url: "https://app.example.com/no".into(),
        price: None,
    };
    let sold = checkout::checkout(&c, &buy, &account, now);
    assert!(sold.is_ok(), "the pool refusal names `{named}`, which checkout refuses: {:?}", sold.err());
}
