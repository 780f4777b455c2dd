//! The decision rules: unit tests for the parts the fixtures do not reach, and
//! property tests for the invariants every decision keeps.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tollgate::decide::{self, ExportPolicy, Reason, Usage};
use tollgate::time::DAY;
use tollgate::{Catalog, Engine, Entitlements, Grant, Source, Status, Timestamp};

/// Two products: `a` with a default tier, `b` without; 3 days of grace.
const RULES: &str = r#"
[catalog]
id = "rules"
name = "Rules"
version = "1"
currency = "usd"
grace_period_days = 3

[[products]]
id = "a"
tiers = ["free", "basic", "pro", "enterprise"]
default_tier = "free"

[[products]]
id = "b"
tiers = ["creator", "pro", "agency"]

[[offers]]
key = "A_BASIC"
label = "A Basic"
price = { amount = 1000, currency = "usd", interval = "month" }
grants = [{ product = "a", tier = "basic" }]

[[offers]]
key = "A_PRO_YEARLY"
label = "A Pro yearly"
price = { amount = 24000, currency = "usd", interval = "year" }
grants = [{ product = "a", tier = "pro" }]

[[offers]]
key = "A_PRO_HIDDEN"
label = "A Pro legacy"
price = { amount = 100, currency = "usd", interval = "month" }
grants = [{ product = "a", tier = "pro" }]
hidden = true

[[offers]]
key = "B_AGENCY"
label = "B Agency"
price = { amount = 5000, currency = "usd", interval = "month" }
grants = [{ product = "b", tier = "agency" }]

[[capabilities]]
id = "a_pro_feature"
product = "a"
min_tier = "pro"

[[capabilities]]
id = "b_any"
product = "b"
min_tier = "creator"

[[limits]]
id = "a_runs"
product = "a"
values = { free = 1, basic = 5, pro = "unlimited", enterprise = "unlimited" }

[[tools]]
id = "t-pro-and-runs"
label = "Pro tool with runs"
page = "p"
requires = { product = "a", tier = "pro", limit = "a_runs" }

[[tools]]
id = "t-basic"
label = "Basic tool"
page = "p"
requires = { product = "a", tier = "basic" }

[[tools]]
id = "t-b"
label = "B tool"
page = "q"
requires = { capability = "b_any" }
"#;

fn rules() -> Catalog {
    Catalog::from_toml(RULES).expect("the rules catalog is valid")
}

/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600;

fn at(days: i64) -> Timestamp {
    Timestamp(T0 + days * DAY)
}

fn grant(
    id: &str,
    product: &str,
    tier: &str,
    status: Status,
    from: Timestamp,
    to: Option<Timestamp>,
) -> Grant {
    Grant {
        id: id.into(),
        product: product.into(),
        tier: tier.into(),
        source: Source::Stripe,
        status,
        valid_from: from,
        valid_to: to,
        past_due_since: None,
        offer: None,
        source_ref: None,
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------------------------

#[test]
fn upgrades_rank_by_monthly_equivalent_and_skip_hidden_offers() {
    let c = rules();
    let none = Entitlements::default();
    // A Pro yearly is $240/12 = $20/month; the hidden $1 legacy offer is never shown.
    let d = decide::has_access(&c, &none, "a", "pro", at(0)).unwrap();
    assert_eq!(
        d.upgrade.as_ref().map(|u| u.offer.as_str()),
        Some("A_PRO_YEARLY")
    );
    assert_eq!(d.upgrade.unwrap().display, "A Pro yearly — $240.00/year");
    // For basic, the $10 monthly basic beats the $20/month-equivalent pro.
    let d = decide::has_access(&c, &none, "a", "basic", at(0)).unwrap();
    assert_eq!(d.upgrade.map(|u| u.offer), Some("A_BASIC".to_string()));
}

#[test]
fn a_tool_is_explained_by_its_first_failing_requirement() {
    let c = rules();
    let basic = Entitlements::new(vec![grant(
        "g",
        "a",
        "basic",
        Status::Active,
        at(0),
        Some(at(30)),
    )]);
    let usage: Usage = BTreeMap::new();
    let t = decide::tool_state(&c, &basic, "t-pro-and-runs", &usage, at(1)).unwrap();
    assert!(t.locked);
    assert_eq!(t.decision.reason, Reason::TierTooLow);
    assert_eq!(
        t.decision.upgrade.map(|u| u.offer),
        Some("A_PRO_YEARLY".to_string())
    );
    assert_eq!(t.decision.holds_until, Some(at(30)));

    // Pro passes the tier; the limit is unlimited at pro, so any usage passes too.
    let pro = Entitlements::new(vec![grant(
        "g",
        "a",
        "pro",
        Status::Active,
        at(0),
        Some(at(30)),
    )]);
    let usage: Usage = [("a_runs".to_string(), 1_000u64)].into_iter().collect();
    let t = decide::tool_state(&c, &pro, "t-pro-and-runs", &usage, at(1)).unwrap();
    assert!(!t.locked);
    assert_eq!(t.decision.reason, Reason::WithinLimit);
    assert_eq!(t.label, "Pro tool with runs");

    // A capability of a product with no default tier: no grant at all.
    let t = decide::tool_state(&c, &pro, "t-b", &usage, at(1)).unwrap();
    assert!(t.locked);
    assert_eq!(t.decision.reason, Reason::NoEntitlement);
    assert_eq!(t.decision.tier, None);
    assert_eq!(
        t.decision.upgrade.map(|u| u.offer),
        Some("B_AGENCY".to_string())
    );

    assert_eq!(
        decide::tool_state(&c, &pro, "nope", &usage, at(1))
            .unwrap_err()
            .to_string(),
        "unknown tool `nope`"
    );
}

#[test]
fn page_state_is_the_tool_states_of_the_page_in_catalog_order() {
    let c = rules();
    let ents = Entitlements::new(vec![grant("g", "a", "basic", Status::Active, at(0), None)]);
    let usage = Usage::new();
    let page = decide::page_state(&c, &ents, Some("p"), &usage, at(1)).unwrap();
    let ids: Vec<&str> = page.iter().map(|t| t.tool.as_str()).collect();
    assert_eq!(ids, ["t-pro-and-runs", "t-basic"]);
    for t in &page {
        assert_eq!(
            t,
            &decide::tool_state(&c, &ents, &t.tool, &usage, at(1)).unwrap()
        );
    }
    assert_eq!(
        decide::page_state(&c, &ents, None, &usage, at(1))
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn next_change_is_the_earliest_future_boundary_of_any_product() {
    let c = rules();
    let mut late = grant("late", "a", "pro", Status::PastDue, at(0), Some(at(10)));
    late.past_due_since = Some(at(5));
    let ents = Entitlements::new(vec![
        grant("b1", "b", "creator", Status::Active, at(2), Some(at(20))),
        late, // grace ends at day 8
    ]);
    assert_eq!(decide::next_change(&c, &ents, at(0)), Some(at(2)));
    assert_eq!(decide::next_change(&c, &ents, at(2)), Some(at(8)));
    assert_eq!(decide::next_change(&c, &ents, at(8)), Some(at(10)));
    assert_eq!(decide::next_change(&c, &ents, at(10)), Some(at(20)));
    assert_eq!(decide::next_change(&c, &ents, at(20)), None);
}

#[test]
fn the_decision_at_holds_until_can_differ() {
    let c = rules();
    let ents = Entitlements::new(vec![grant(
        "g",
        "a",
        "pro",
        Status::Trial,
        at(0),
        Some(at(14)),
    )]);
    let before = decide::has_access(&c, &ents, "a", "pro", at(14).plus_seconds(-1)).unwrap();
    assert!(before.allowed);
    assert_eq!(before.holds_until, Some(at(14)));
    let after = decide::has_access(&c, &ents, "a", "pro", at(14)).unwrap();
    assert!(!after.allowed);
    assert_eq!(
        (after.reason, after.tier.as_deref(), after.holds_until),
        (Reason::Expired, Some("free"), None)
    );
}

#[test]
fn decisions_serialise_with_snake_case_reasons_and_rfc3339_times() {
    let c = rules();
    let ents = Entitlements::new(vec![grant(
        "g",
        "a",
        "basic",
        Status::Canceled,
        at(0),
        Some(at(31)),
    )]);
    let d = decide::has_access(&c, &ents, "a", "pro", at(1)).unwrap();
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["reason"], "tier_too_low");
    assert_eq!(v["tier"], "basic");
    assert_eq!(v["grant"], "g");
    assert_eq!(v["holds_until"], "2026-02-01T00:00:00Z");
    assert_eq!(v["upgrade"]["offer"], "A_PRO_YEARLY");
    let ok = decide::has_access(&c, &ents, "a", "basic", at(1)).unwrap();
    assert_eq!(
        serde_json::to_value(&ok).unwrap()["reason"],
        "canceled_until_period_end"
    );
    for r in [
        Reason::Active,
        Reason::GracePeriod,
        Reason::NotYetValid,
        Reason::LimitReached,
        Reason::DefaultTier,
    ] {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
}

#[test]
fn export_policy_needs_its_two_capabilities() {
    // A catalog without the export capabilities cannot answer the export question.
    let e = decide::export_policy(&rules(), &Entitlements::default(), at(0)).unwrap_err();
    assert_eq!(e.to_string(), "unknown capability `export_full_res`");
    let vcm = Catalog::from_toml(include_str!("../catalogs/vcm-suite.toml")).unwrap();
    let p = decide::export_policy(&vcm, &Entitlements::default(), at(0)).unwrap();
    match p {
        ExportPolicy::Refused { message, upgrade } => {
            assert_eq!(message, "Upgrade to export.");
            assert_eq!(upgrade.unwrap().display, "Starter — $9.99/month");
        }
        other => panic!("free must be refused, got {other:?}"),
    }
}

#[test]
fn engine_cache_follows_time_both_ways_and_drops_on_new_entitlements() {
    let c = rules();
    let mut e = Engine::new(
        c,
        Entitlements::new(vec![grant(
            "g",
            "a",
            "pro",
            Status::Active,
            at(10),
            Some(at(20)),
        )]),
    );
    let (a, pro) = (
        e.product_index("a").unwrap(),
        e.tier_index("a", "pro").unwrap(),
    );
    assert!(!e.check(a, pro, at(5)));
    assert!(e.check(a, pro, at(15)));
    assert!(!e.check(a, pro, at(25)));
    assert!(
        e.check(a, pro, at(19)),
        "going back in time must re-evaluate"
    );
    assert!(!e.check(a, pro, at(9)));
    assert!(e.check(a, 0, at(9)), "the default tier is held");
    e.set_entitlements(Entitlements::default());
    assert!(!e.check(a, pro, at(15)), "new entitlements drop the cache");
    assert!(
        !e.check(99, 0, at(15)),
        "an out-of-range product answers false"
    );
    assert!(
        !e.check(a, 99, at(15)),
        "an out-of-range tier answers false"
    );
    assert_eq!(
        e.product_index("zzz").unwrap_err().to_string(),
        "unknown product `zzz`"
    );
    assert!(e.tier_index("a", "gold").is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Times on an hourly grid over 60 days, so that grants share boundaries often.
fn time() -> impl Strategy<Value = Timestamp> {
    (0i64..60 * 24).prop_map(|h| Timestamp(T0 + h * 3600))
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Active),
        Just(Status::Trial),
        Just(Status::PastDue),
        Just(Status::Canceled)
    ]
}

fn any_grant() -> impl Strategy<Value = Grant> {
    (
        0usize..2,
        0usize..5,
        status(),
        time(),
        proptest::option::of(1i64..30 * 24),
        proptest::option::of(0i64..10 * 24),
        0u8..4,
    )
        .prop_map(|(p, t, status, from, len_h, pds_h, id)| {
            let (product, tiers): (&str, &[&str]) = if p == 0 {
                ("a", &["free", "basic", "pro", "enterprise", "legacy"])
            } else {
                ("b", &["creator", "pro", "agency", "pro", "gone"])
            };
            Grant {
                id: format!("g{id}"),
                product: product.into(),
                tier: tiers[t].into(),
                source: Source::Stripe,
                status,
                valid_from: from,
                valid_to: len_h.map(|h| from.plus_seconds(h * 3600)),
                past_due_since: pds_h.map(|h| from.plus_seconds(h * 3600)),
                offer: None,
                source_ref: None,
                catalog_version: None,
                renewal_version: None,
                period_start: None,
                paused_since: None,
            }
        })
}

fn grants() -> impl Strategy<Value = Vec<Grant>> {
    proptest::collection::vec(any_grant(), 0..8)
}

/// Every (product, tier) question the rules catalog has.
fn questions(c: &Catalog) -> Vec<(String, String)> {
    c.products()
        .iter()
        .flat_map(|p| p.tiers.iter().map(move |t| (p.id.clone(), t.clone())))
        .collect()
}

fn boundaries(g: &Grant, grace_days: u32) -> Vec<Timestamp> {
    let mut out = vec![g.valid_from];
    out.extend(g.valid_to);
    if g.status == Status::PastDue {
        out.push(decide::grace_end(g, grace_days));
    }
    out
}

// 256 cases each by default; set PROPTEST_CASES for a longer hunt.
proptest! {
    #[test]
    fn adding_a_grant_never_lowers_the_effective_tier(gs in grants(), extra in any_grant(), now in time()) {
        let c = rules();
        let before = Entitlements::new(gs.clone());
        let mut more = gs;
        more.push(extra);
        let after = Entitlements::new(more);
        for p in ["a", "b"] {
            let t0 = decide::effective(&c, &before, p, now).unwrap().tier;
            let t1 = decide::effective(&c, &after, p, now).unwrap().tier;
            prop_assert!(t1 >= t0, "product {}: {:?} -> {:?}", p, t0, t1);
        }
    }

    #[test]
    fn grant_order_never_changes_a_decision(gs in grants(), now in time(), order in any::<u64>()) {
        let c = rules();
        let mut shuffled = gs.clone();
        // A deterministic permutation from the generated u64 (Fisher-Yates with an LCG).
        let mut x = order | 1;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let (e1, e2) = (Entitlements::new(gs), Entitlements::new(shuffled));
        for (p, t) in questions(&c) {
            prop_assert_eq!(
                decide::has_access(&c, &e1, &p, &t, now).unwrap(),
                decide::has_access(&c, &e2, &p, &t, now).unwrap()
            );
        }
        for cap in ["a_pro_feature", "b_any"] {
            prop_assert_eq!(decide::can(&c, &e1, cap, now).unwrap(), decide::can(&c, &e2, cap, now).unwrap());
        }
        prop_assert_eq!(decide::limit(&c, &e1, "a_runs", now).unwrap(), decide::limit(&c, &e2, "a_runs", now).unwrap());
        prop_assert_eq!(decide::next_change(&c, &e1, now), decide::next_change(&c, &e2, now));
    }

    #[test]
    fn access_is_monotone_in_the_required_tier(gs in grants(), now in time()) {
        let c = rules();
        let ents = Entitlements::new(gs);
        for p in c.products() {
            let allowed: Vec<bool> = p
                .tiers
                .iter()
                .map(|t| decide::has_access(&c, &ents, &p.id, t, now).unwrap().allowed)
                .collect();
            // Once denied, every higher tier is denied too.
            prop_assert!(allowed.windows(2).all(|w| w[0] || !w[1]), "{}: {:?}", p.id, allowed);
        }
    }

    #[test]
    fn engine_check_agrees_with_has_access(
        gs in grants(),
        steps in proptest::collection::vec((time(), 0usize..2, 0usize..4, -2i64..=2), 1..40),
        swap_at in 0usize..40,
        other in grants(),
    ) {
        let c = rules();
        let mut ents = Entitlements::new(gs);
        let mut engine = Engine::new(c.clone(), ents.clone());
        for (i, (t, p, tier, nudge)) in steps.into_iter().enumerate() {
            if i == swap_at {
                ents = Entitlements::new(other.clone());
                engine.set_entitlements(ents.clone());
            }
            // Times jump around (forwards and backwards), sometimes a second off a boundary.
            let now = t.plus_seconds(nudge);
            let product = &c.products()[p];
            let tier = tier.min(product.tiers.len() - 1);
            let want = decide::has_access(&c, &ents, &product.id, &product.tiers[tier], now).unwrap().allowed;
            prop_assert_eq!(engine.check(p, tier, now), want, "step {} at {}", i, now);
        }
    }

    #[test]
    fn holds_until_is_a_real_boundary(gs in grants(), now in time(), probe in 0.0f64..1.0) {
        let c = rules();
        let grace = c.meta().grace_period_days;
        let ents = Entitlements::new(gs);
        for (p, t) in questions(&c) {
            let d = decide::has_access(&c, &ents, &p, &t, now).unwrap();
            match d.holds_until {
                Some(h) => {
                    prop_assert!(h > now);
                    // It is an instant at which one of the product's grants starts, ends or leaves grace.
                    prop_assert!(
                        ents.grants.iter().filter(|g| g.product == p).any(|g| boundaries(g, grace).contains(&h)),
                        "{} is no boundary of product {}", h, p
                    );
                    // The same answer holds anywhere before it: just before, and somewhere in between.
                    let span = h.0 - now.0;
                    let mid = now.plus_seconds(((span - 1) as f64 * probe) as i64);
                    for s in [h.plus_seconds(-1), mid] {
                        prop_assert_eq!(&decide::has_access(&c, &ents, &p, &t, s).unwrap(), &d, "at {}", s);
                    }
                    // And nothing changes earlier than it: it is the first boundary after now.
                    prop_assert_eq!(decide::next_change(&c, &Entitlements::new(
                        ents.grants.iter().filter(|g| g.product == p).cloned().collect()), now), Some(h));
                }
                None => {
                    // No boundary ahead: the answer holds for good.
                    let later = now.plus_seconds(400 * DAY);
                    prop_assert_eq!(&decide::has_access(&c, &ents, &p, &t, later).unwrap(), &d);
                }
            }
        }
    }

    #[test]
    fn a_grant_for_another_product_changes_nothing(gs in grants(), extra in any_grant(), now in time()) {
        let c = rules();
        let base = Entitlements::new(gs.clone());
        let mut more = gs;
        more.push(extra.clone());
        let more = Entitlements::new(more);
        for (p, t) in questions(&c).into_iter().filter(|(p, _)| *p != extra.product) {
            prop_assert_eq!(
                decide::has_access(&c, &base, &p, &t, now).unwrap(),
                decide::has_access(&c, &more, &p, &t, now).unwrap()
            );
        }
    }
}
