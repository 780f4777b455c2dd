//! Grandfathering: a grant is held under the catalog version it was sold under until the
//! active version's offer says otherwise (`keep`, `at_renewal`, `now`); prices for new
//! purchases come from the active version. The Stripe sample story of `tests/events`,
//! read under version 1 of a catalog, then renewed under version 2, which moves the
//! `hd_export` capability from Studio Basic to Studio Pro and lowers Basic's project limit.

#[path = "events/support.rs"]
mod support;

use std::collections::BTreeMap;
use support::*;
use tollgate::billing::Fact;
use tollgate::catalog::Migration;
use tollgate::grandfather::{self, Terms};
use tollgate::{decide, Catalog, LimitValue};

const EXTRA_V1: &str = r#"
[[capabilities]]
id = "hd_export"
product = "studio"
min_tier = "basic"

[[limits]]
id = "projects"
product = "studio"
values = { free = 1, basic = 10, pro = 100 }
"#;

/// Version 1: the test catalog with `hd_export` from Basic up and 10 projects on Basic.
fn v1() -> Catalog {
    let src = format!("{}\n{EXTRA_V1}", event("catalog.toml"));
    Catalog::parse(&src).expect("v1 is valid").with_version(1)
}

/// Version 2: Basic costs 39 USD, `hd_export` needs Pro, Basic has 5 projects; Basic's
/// existing subscribers follow `policy` (none written: the default).
fn v2(policy: Option<&str>) -> Catalog {
    let mut src = format!("{}\n{EXTRA_V1}", event("catalog.toml"))
        .replace("min_tier = \"basic\"", "min_tier = \"pro\"")
        .replace("basic = 10, pro = 100", "basic = 5, pro = 100");
    let basic = "key = \"STUDIO_BASIC_MONTHLY\"\nlabel = \"Studio Basic\"\nprice = { amount = 2900,";
    assert!(src.contains(basic));
    let raised = match policy {
        Some(p) => format!("key = \"STUDIO_BASIC_MONTHLY\"\nlabel = \"Studio Basic\"\nmigration = \"{p}\"\nprice = {{ amount = 3900,"),
        None => "key = \"STUDIO_BASIC_MONTHLY\"\nlabel = \"Studio Basic\"\nprice = { amount = 3900,".to_string(),
    };
    src = src.replace(basic, &raised);
    Catalog::parse(&src).expect("v2 is valid").with_version(2)
}

fn versions(cats: &[&Catalog]) -> BTreeMap<u32, Catalog> {
    cats.iter().map(|c| (c.version.unwrap(), (*c).clone())).collect()
}

/// The story's first period read under `sold`, and its renewal (when `renewed_by` is given)
/// read under that version.
fn story(sold: &Catalog, renewed_by: Option<&Catalog>) -> Vec<Fact> {
    let mut fs = facts(sold, FIRST_PERIOD);
    if let Some(c) = renewed_by {
        fs.extend(facts(
            c,
            &["stripe/customer.subscription.updated.renewed.acacia.json", "stripe/invoice.paid.renewal.acacia.json"],
        ));
    }
    fs
}

/// Can the story's user export in HD at `at` with `active` active, and how many projects may
/// it have? The facts are folded as the worker folds them, with the older versions at hand.
fn held(active: &Catalog, older: &BTreeMap<u32, Catalog>, fs: &[Fact], at: i64) -> (bool, LimitValue) {
    let st = tollgate::billing::reduce_sold(active, older, fs, &Default::default(), t(at));
    st.check_invariants().expect("credit invariants hold");
    let ents = st.entitlements_for(USER);
    let (cat, _) = grandfather::catalog_for(active, older, &ents.grants, t(at));
    let can = decide::can(&cat, &ents, "hd_export", t(at)).unwrap().allowed;
    let projects = decide::limit(&cat, &ents, "projects", t(at)).unwrap().limit;
    (can, projects)
}

const BEFORE_RENEWAL: i64 = P1E - DAY;
const AFTER_RENEWAL: i64 = P1E + DAY;

#[test]
fn facts_carry_the_version_they_were_read_under() {
    let (one, file) = (v1(), catalog());
    let stamped = facts(&one, FIRST_PERIOD);
    assert!(stamped.iter().all(|f| f.catalog_version == Some(1)));
    let json = serde_json::to_string(&stamped[0]).unwrap();
    assert!(json.contains("\"catalog_version\":1"), "{json}");
    let back: Fact = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stamped[0]);
    // A catalog without a version (a file) stamps nothing: the stored bytes are what they were.
    let plain = facts(&file, FIRST_PERIOD);
    assert!(plain.iter().all(|f| f.catalog_version.is_none()));
    assert!(!serde_json::to_string(&plain[0]).unwrap().contains("catalog_version"));
}

/// A grant records the version it was sold under and the one its renewals moved it to: a
/// renewal under a version whose offer migrates its subscribers moves it, one under a
/// version that keeps them does not.
#[test]
fn grants_record_the_version_sold_under_and_renewed_under() {
    let (one, two) = (v1(), v2(None));
    let g = fold(&v2(Some("at_renewal")), &story(&one, Some(&v2(Some("at_renewal")))), AFTER_RENEWAL).entitlements_for(USER).grants[0].clone();
    assert_eq!((g.catalog_version, g.renewal_version), (Some(1), Some(2)));
    let st = fold(&two, &story(&one, Some(&two)), AFTER_RENEWAL);
    let g = &st.entitlements_for(USER).grants[0];
    assert_eq!((g.catalog_version, g.renewal_version), (Some(1), Some(1)), "v2 keeps: the renewal moves nothing");
    // Each credit lot records the version of the fact that opened it: the first period's
    // allowance v1, the renewal's allowance and rollover v2.
    let lots = &st.subject(USER).unwrap().wallet.lots;
    let first = lots.iter().filter(|l| l.valid_to == Some(t(P1E))).collect::<Vec<_>>();
    let second = lots.iter().filter(|l| l.valid_to == Some(t(P2E))).collect::<Vec<_>>();
    assert!(!first.is_empty() && !second.is_empty(), "{lots:?}");
    assert!(first.iter().all(|l| l.catalog_version == Some(1)), "{first:?}");
    assert!(second.iter().all(|l| l.catalog_version == Some(2)), "{second:?}");
    let st = fold(&two, &story(&one, None), BEFORE_RENEWAL);
    let g = &st.entitlements_for(USER).grants[0];
    assert_eq!((g.catalog_version, g.renewal_version), (Some(1), Some(1)));
    // A subscription update that does not move the paid period is no renewal.
    let mut fs = story(&one, None);
    let update = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        v["id"] = serde_json::json!("evt_cancel_later");
        v["created"] = serde_json::json!(T0 + 3 * DAY);
        obj(v)["cancel_at_period_end"] = serde_json::json!(true);
    });
    fs.extend(stripe_facts(&two, &update));
    let g = fold(&two, &fs, BEFORE_RENEWAL).entitlements_for(USER).grants[0].clone();
    assert_eq!(g.renewal_version, Some(1));
}

#[test]
fn keep_holds_the_old_terms_until_the_grant_ends() {
    let (one, two) = (v1(), v2(Some("keep")));
    assert_eq!(two.offer("STUDIO_BASIC_MONTHLY").unwrap().migration, Migration::Keep);
    let older = versions(&[&one]);
    assert_eq!(held(&two, &older, &story(&one, None), BEFORE_RENEWAL), (true, LimitValue::Limited(10)));
    assert_eq!(held(&two, &older, &story(&one, Some(&two)), AFTER_RENEWAL), (true, LimitValue::Limited(10)));
    // A buyer under v2 gets v2's terms.
    assert_eq!(held(&two, &older, &story(&two, None), BEFORE_RENEWAL), (false, LimitValue::Limited(5)));
    // Without v1 at hand the host decides under the active terms (it must load v1 first).
    assert_eq!(grandfather::versions_needed(&two, &fold(&two, &story(&one, None), BEFORE_RENEWAL).entitlements_for(USER).grants), vec![1]);
    assert_eq!(held(&two, &BTreeMap::new(), &story(&one, None), BEFORE_RENEWAL), (false, LimitValue::Limited(5)));
}

#[test]
fn keep_is_the_default() {
    let (one, two) = (v1(), v2(None));
    assert_eq!(two.offer("STUDIO_BASIC_MONTHLY").unwrap().migration, Migration::Keep);
    assert!(!two.to_json().contains("migration"), "the default is not written out");
    assert_eq!(held(&two, &versions(&[&one]), &story(&one, Some(&two)), AFTER_RENEWAL), (true, LimitValue::Limited(10)));
    // A grant written when every renewal recorded its version (renewed under v2, which
    // keeps) is read the same: v2's offer keeps it on v1's terms.
    let mut g = fold(&two, &story(&one, Some(&two)), AFTER_RENEWAL).entitlements_for(USER).grants[0].clone();
    g.renewal_version = Some(2);
    assert_eq!(grandfather::terms_version(&two, &versions(&[&one]), &g), Some(1));
}

#[test]
fn at_renewal_moves_the_grant_at_its_renewal_and_not_before() {
    let (one, two) = (v1(), v2(Some("at_renewal")));
    let older = versions(&[&one]);
    assert_eq!(held(&two, &older, &story(&one, None), BEFORE_RENEWAL), (true, LimitValue::Limited(10)));
    assert_eq!(held(&two, &older, &story(&one, Some(&two)), AFTER_RENEWAL), (false, LimitValue::Limited(5)));
    // A renewal read while v1 was still active keeps v1's terms.
    assert_eq!(held(&two, &older, &story(&one, Some(&one)), AFTER_RENEWAL), (true, LimitValue::Limited(10)));
}

/// Version 2 gives Basic 20 projects and moves its subscribers `at_renewal`; the Basic
/// subscriber sold under version 1 renews under it and has 20 projects. Version 3 only
/// raises Basic's price and says nothing about its subscribers (keep): they keep the terms
/// they are on, version 2's, through their renewals under version 3 too, and never fall
/// back to the 10 projects of version 1.
#[test]
fn a_later_keep_version_keeps_a_migrated_subscriber_on_the_terms_it_moved_to() {
    let one = v1();
    let src = format!("{}\n{EXTRA_V1}", event("catalog.toml")).replace("basic = 10, pro = 100", "basic = 20, pro = 100");
    let at_renewal = src.replace(
        "key = \"STUDIO_BASIC_MONTHLY\"\n",
        "key = \"STUDIO_BASIC_MONTHLY\"\nmigration = \"at_renewal\"\n",
    );
    let two = Catalog::parse(&at_renewal).unwrap().with_version(2);
    let fs = story(&one, Some(&two));
    assert_eq!(held(&two, &versions(&[&one]), &fs, AFTER_RENEWAL), (true, LimitValue::Limited(20)), "renewed onto v2's terms");
    let three = Catalog::parse(&src.replace("amount = 2900", "amount = 3900")).unwrap().with_version(3);
    let older = versions(&[&one, &two]);
    assert_eq!(held(&three, &older, &fs, AFTER_RENEWAL + DAY), (true, LimitValue::Limited(20)), "v3 keeps v2's terms");
    // What the host loads: the version sold under and the one the renewal may have moved it to.
    let grants = tollgate::billing::reduce_sold(&three, &older, &fs, &Default::default(), t(AFTER_RENEWAL)).entitlements_for(USER).grants;
    assert_eq!((grants[0].catalog_version, grants[0].renewal_version), (Some(1), Some(2)));
    assert_eq!(grandfather::versions_needed(&three, &grants), vec![1, 2]);
    // A renewal under v3, which keeps, leaves the subscriber on v2's terms.
    let third = edit("stripe/invoice.paid.renewal.acacia.json", |v| {
        v["id"] = serde_json::json!("evt_third_paid");
        v["created"] = serde_json::json!(P2E);
        let o = obj(v);
        o["id"] = serde_json::json!("in_third");
        o["lines"]["data"][0]["period"] = serde_json::json!({"start": P2E, "end": P3E});
    });
    let mut renewed = fs.clone();
    renewed.extend(stripe_facts(&three, &third));
    let grants = tollgate::billing::reduce_sold(&three, &older, &renewed, &Default::default(), t(P2E + DAY)).entitlements_for(USER).grants;
    assert_eq!((grants[0].valid_to, grants[0].renewal_version), (Some(t(P3E)), Some(2)), "a renewal under v3 (keep) moves nothing");
    assert_eq!(held(&three, &older, &renewed, P2E + DAY), (true, LimitValue::Limited(20)));
    // Had v2 kept its subscribers, its renewal would have moved nothing: v1's terms under v3.
    let kept = Catalog::parse(&src).unwrap().with_version(2);
    let fs = story(&one, Some(&kept));
    assert_eq!(held(&three, &versions(&[&one, &kept]), &fs, AFTER_RENEWAL + DAY), (true, LimitValue::Limited(10)));
}

#[test]
fn now_moves_every_grant_at_once() {
    let (one, two) = (v1(), v2(Some("now")));
    let older = versions(&[&one]);
    assert_eq!(held(&two, &older, &story(&one, None), BEFORE_RENEWAL), (false, LimitValue::Limited(5)));
    assert!(grandfather::versions_needed(&two, &fold(&two, &story(&one, None), BEFORE_RENEWAL).entitlements_for(USER).grants).is_empty());
}

#[test]
fn a_rollback_keeps_the_newer_buyers_on_their_terms() {
    // v2 sold, then v1 activated again: v1's offer says nothing, so v2's buyer keeps v2's terms.
    let (one, two) = (v1(), v2(None));
    let older = versions(&[&two]);
    assert_eq!(held(&one, &older, &story(&two, None), BEFORE_RENEWAL), (false, LimitValue::Limited(5)));
    // And new purchases price from the active version at once.
    assert_eq!(one.offer("STUDIO_BASIC_MONTHLY").unwrap().price.amount, 2900);
    assert_eq!(two.offer("STUDIO_BASIC_MONTHLY").unwrap().price.amount, 3900);
}

#[test]
fn terms_hold_only_what_the_active_version_still_names() {
    let (one, two) = (v1(), v2(None));
    let st = fold(&two, &story(&one, None), BEFORE_RENEWAL);
    let grants = st.entitlements_for(USER).grants;
    let terms: Vec<Terms> = grandfather::terms(&two, &versions(&[&one]), &grants, t(BEFORE_RENEWAL));
    assert_eq!(terms.len(), 1);
    assert_eq!((terms[0].product.as_str(), terms[0].version), ("studio", 1));
    assert_eq!(terms[0].capabilities.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["hd_export"]);
    assert_eq!(terms[0].limits.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["projects"]);
    // A catalog without a version has no terms to apply.
    assert!(grandfather::terms(&catalog(), &versions(&[&one]), &grants, t(BEFORE_RENEWAL)).is_empty());
    // After the grant ended nothing is held under old terms.
    assert!(grandfather::terms(&two, &versions(&[&one]), &grants, t(P3E)).is_empty());
}

#[test]
fn the_order_grants_are_listed_in_never_changes_whose_terms_hold() {
    // Version 3 active; the subject holds Studio Basic twice at once, sold under
    // versions 1 and 2 (both kept): the terms are those of the smaller grant id,
    // whichever way the grants are listed.
    let (one, two) = (v1(), v2(None));
    let three = v2(None).with_version(3);
    let st = fold(&one, &story(&one, None), BEFORE_RENEWAL);
    let first = st.entitlements_for(USER).grants.into_iter().find(|g| g.product == "studio").unwrap();
    assert_eq!(first.catalog_version, Some(1));
    let mut second = first.clone();
    second.id = format!("{}~later", first.id);
    second.catalog_version = Some(2);
    let older = versions(&[&one, &two]);
    let at = t(BEFORE_RENEWAL);
    let forward = grandfather::terms(&three, &older, &[first.clone(), second.clone()], at);
    let backward = grandfather::terms(&three, &older, &[second.clone(), first.clone()], at);
    assert_eq!(forward, backward);
    assert_eq!(forward.iter().map(|t| (t.product.as_str(), t.version)).collect::<Vec<_>>(), [("studio", 1)]);
    // The grant that explains the answer is the same one.
    let ents = |grants: Vec<tollgate::Grant>| tollgate::Entitlements::new(grants);
    let (cat, _) = grandfather::catalog_for(&three, &older, &[second.clone(), first.clone()], at);
    let why = decide::has_access(&cat, &ents(vec![second, first.clone()]), "studio", "basic", at).unwrap();
    assert_eq!(why.grant.as_deref(), Some(first.id.as_str()));
}

#[test]
fn an_unknown_policy_is_refused_with_its_line() {
    let src = format!("{}\n{EXTRA_V1}", event("catalog.toml")).replace(
        "key = \"STUDIO_BASIC_MONTHLY\"\n",
        "key = \"STUDIO_BASIC_MONTHLY\"\nmigration = \"later\"\n",
    );
    let e = Catalog::parse(&src).unwrap_err();
    let line = src.lines().position(|l| l.contains("migration = \"later\"")).unwrap() + 1;
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains("keep") && e.message.contains("at_renewal") && e.message.contains("now"), "{e}");
    // The JSON form is refused as well.
    let mut doc: serde_json::Value = serde_json::from_str(&v1().to_json()).unwrap();
    doc["offers"][0]["migration"] = serde_json::json!("sometimes");
    assert!(Catalog::from_json(&doc.to_string()).unwrap_err().to_string().contains("at_renewal"));
}

/// A Studio grant held under `version` (no offer: the default policy, keep).
fn studio(id: &str, tier: &str, status: tollgate::Status, from: i64, to: Option<i64>, version: u32) -> tollgate::Grant {
    tollgate::Grant {
        id: id.into(),
        product: "studio".into(),
        tier: tier.into(),
        source: tollgate::Source::Stripe,
        status,
        valid_from: t(from),
        valid_to: to.map(t),
        past_due_since: None,
        offer: None,
        source_ref: None,
        catalog_version: Some(version),
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

#[test]
fn a_snapshot_with_terms_expires_when_whose_terms_hold_can_change() {
    use tollgate::snapshot::{verify, Account, SnapshotError, SnapshotSigner};
    let (one, two) = (v1(), v2(None));
    let older = versions(&[&one]);
    let now = T0 + 10 * DAY;
    // Basic sold under version 1, canceled, ending in 10 minutes; Basic under version 2 runs on,
    // and Pro under version 2 from the same instant: after it, version 2's terms decide.
    let grants = vec![
        studio("g1", "basic", tollgate::Status::Canceled, T0, Some(now + 600), 1),
        studio("g2", "basic", tollgate::Status::Active, T0, Some(now + 30 * DAY), 2),
        studio("g3", "pro", tollgate::Status::Active, now + 600, Some(now + 30 * DAY), 2),
    ];
    assert_eq!(grandfather::terms_until(&two, &grants, t(now)), Some(t(now + 600)));
    let signer = SnapshotSigner::from_secret("k1", &[7u8; 32]).unwrap();
    let account = Account {
        terms: grandfather::terms(&two, &older, &grants, t(now)),
        terms_until: grandfather::terms_until(&two, &grants, t(now)),
        ..Default::default()
    };
    let mut ents = tollgate::Entitlements::new(grants.clone());
    ents.subject = "user:u".into();
    let signed = signer.issue_with_account(&ents, vec![], account, two.meta(), t(now), 3600).unwrap();
    assert_eq!(signed.snapshot.expires_at, t(now + 600), "not the hour's TTL");
    // Until then the browser decides as the worker does; after it the snapshot is expired.
    let keys = [("k1", signer.public_key())];
    let snap = verify(&signed.token, &keys, t(now + 60)).unwrap();
    let (worker, _) = grandfather::catalog_for(&two, &older, &grants, t(now + 60));
    let browser = snap.catalog(&two);
    for cat in [&worker, &browser] {
        assert!(decide::can(cat, &snap.entitlements(cat).unwrap(), "hd_export", t(now + 60)).unwrap().allowed);
    }
    assert!(matches!(verify(&signed.token, &keys, t(now + 1200)), Err(SnapshotError::Expired { .. })));
    // Without a grant under older terms nothing is capped.
    assert_eq!(grandfather::terms_until(&two, &grants[1..], t(now)), None);
}

#[test]
fn an_organizations_grandfathered_grant_gives_its_members_the_old_terms_in_the_browser_too() {
    use tollgate::orgs::{self, OrgMembership};
    let (one, two) = (v1(), v2(None));
    let older = versions(&[&one]);
    let now = T0 + 10 * DAY;
    let g = studio("sub_org:studio", "basic", tollgate::Status::Active, T0, None, 1);
    let ents = tollgate::Entitlements::new(vec![g.clone()]);
    // The worker: POST /v1/check for the organization decides on the catalog with its terms.
    let (cat, _) = grandfather::catalog_for(&two, &older, &ents.grants, t(now));
    assert!(decide::can(&cat, &ents, "hd_export", t(now)).unwrap().allowed, "Basic exported in HD under version 1");
    // The snapshot's membership carries the same terms; without them version 2's rule applied.
    let mut m = OrgMembership { id: "o1".into(), seat: true, grants: vec![g.clone()], ..Default::default() };
    assert!(!orgs::has_feature_access(&two, &m, "hd_export", t(now)).unwrap());
    m.terms = grandfather::terms(&two, &older, &m.grants, t(now));
    assert!(orgs::has_feature_access(&two, &m, "hd_export", t(now)).unwrap());
    assert_eq!(orgs::org_entitlements(&two, &m, t(now)).features.get("hd_export"), Some(&true));
    assert_eq!(orgs::org_entitlements(&two, &m, t(now)).limits.get("projects"), Some(&LimitValue::Limited(10)));
}

/// The checkout, the first invoice and the activation of a subscription were read under
/// version 1; Stripe's `customer.subscription.created`, created a second before them but
/// retried, was read after version 2 was pushed (which moves HD export to Pro and cuts
/// Basic to 5 projects, keeping its buyers' terms). The sale was made under version 1: the
/// buyer keeps its terms, however late the earlier event arrived.
#[test]
fn a_late_reading_of_an_earlier_event_does_not_move_the_sale_to_a_newer_version() {
    let (one, two) = (v1(), v2(None));
    let mut fs = facts(&two, &["stripe/customer.subscription.created.basil.json"]);
    fs.extend(facts(
        &one,
        &[
            "stripe/invoice.paid.basil.json",
            "stripe/customer.subscription.updated.active.basil.json",
            "stripe/checkout.session.completed.subscription.json",
        ],
    ));
    let older = versions(&[&one]);
    for order in [fs.clone(), fs.iter().rev().cloned().collect()] {
        let st = tollgate::billing::reduce_sold(&two, &older, &order, &Default::default(), t(BEFORE_RENEWAL));
        let g = st.entitlements_for(USER).grants.into_iter().find(|g| g.product == "studio").expect("a Studio grant");
        assert_eq!(g.catalog_version, Some(1), "checkout and first payment were read under version 1");
        assert_eq!(held(&two, &older, &order, BEFORE_RENEWAL), (true, LimitValue::Limited(10)));
    }
}

/// `src` without the `[[offers]]` block of `key`.
fn without_offer(src: &str, key: &str) -> String {
    let blocks: Vec<&str> = src.split("\n[[").collect();
    let kept: Vec<&str> =
        blocks.iter().copied().filter(|b| !b.starts_with(&format!("offers]]\nkey = \"{key}\"\n"))).collect();
    assert_eq!(kept.len() + 1, blocks.len(), "{key} removed once");
    kept.join("\n[[")
}

/// Version 2 drops the 30-minute token pack (its buyers under version 1 keep what they
/// bought) and, unrelated, retires Team's Business tier with its offer, which cannot come
/// back (the tier is gone from a product version 2 still has). The pack's buyer still gets
/// the 1800 seconds it paid for: each dropped offer comes back on its own, and the purchase
/// never waits for an operator because another dropped offer cannot.
#[test]
fn a_retired_tier_elsewhere_keeps_no_dropped_packs_credits_from_its_buyers() {
    let one = v1();
    let buy: Vec<Fact> = facts(&one, &["stripe/checkout.session.completed.payment.json"]);
    let at = T0 + 10 * DAY;
    let src = format!("{}\n{EXTRA_V1}", event("catalog.toml"));
    let only_pack = Catalog::parse(&without_offer(&src, "TOKENS_30_MIN")).unwrap().with_version(2);
    let st = tollgate::billing::reduce_sold(&only_pack, &versions(&[&one]), &buy, &Default::default(), t(at));
    assert_eq!(st.balance(USER, "video_seconds"), 1800, "a dropped pack keeps its credits");
    let retired = without_offer(&without_offer(&src, "TOKENS_30_MIN"), "TEAM_BUSINESS_MONTHLY")
        .replace("tiers = [\"FREE\", \"PROFESSIONAL\", \"BUSINESS\"]", "tiers = [\"FREE\", \"PROFESSIONAL\"]");
    let two = Catalog::parse(&retired).expect("v2 is valid").with_version(2);
    let st = tollgate::billing::reduce_sold(&two, &versions(&[&one]), &buy, &Default::default(), t(at));
    assert!(st.pending.is_empty(), "the paid pack waits for an operator: {:?}", st.pending);
    assert_eq!(st.balance(USER, "video_seconds"), 1800, "the pack credits what it was sold with");
    // The pack is back, hidden; the retired tier's offer is not.
    let kept = grandfather::keeping_sold(&two, &versions(&[&one]));
    assert!(kept.offer("TOKENS_30_MIN").is_some_and(|o| o.hidden));
    assert!(kept.offer("TEAM_BUSINESS_MONTHLY").is_none());
    assert_eq!(kept.version, Some(2));
}

/// A member seated in two organizations: A bought Team Professional under version 1, where
/// the coach comes with Professional; B bought Team Business under version 2, which adds
/// an Enterprise tier and moves the coach there (keep: A keeps it). The member's own use
/// (its grants with every seated organization's, `seats::for_own_use`) gives the coach, as
/// acting for A and its snapshot's entry for A do: B's higher plan on newer terms takes
/// nothing away. A's terms give the coach only; the member's limits stay its own.
#[test]
fn a_second_organizations_newer_plan_never_masks_the_first_ones_grandfathered_capability() {
    let coach = "\n[[capabilities]]\nid = \"coach\"\nproduct = \"team\"\nmin_tier = \"PROFESSIONAL\"\n";
    let src = format!("{}\n{EXTRA_V1}{coach}", event("catalog.toml"));
    let one = Catalog::parse(&src).unwrap().with_version(1);
    let two_src = src
        .replace("tiers = [\"FREE\", \"PROFESSIONAL\", \"BUSINESS\"]", "tiers = [\"FREE\", \"PROFESSIONAL\", \"BUSINESS\", \"ENTERPRISE\"]")
        .replace("min_tier = \"PROFESSIONAL\"", "min_tier = \"ENTERPRISE\"");
    let two = Catalog::parse(&two_src).unwrap().with_version(2);
    let older = versions(&[&one]);
    let now = t(T0 + 10 * DAY);
    let team = |id: &str, tier: &str, offer: &str, v: u32| tollgate::Grant {
        product: "team".into(),
        offer: Some(offer.into()),
        renewal_version: Some(v),
        ..studio(id, tier, tollgate::Status::Active, T0, Some(T0 + 30 * DAY), v)
    };
    let a = vec![team("stripe:sub_a:team", "PROFESSIONAL", "TEAM_PROFESSIONAL_MONTHLY", 1)];
    let b = vec![team("stripe:sub_b:team", "BUSINESS", "TEAM_BUSINESS_MONTHLY", 2)];
    // Acting for A, and the snapshot's entry for A: A's terms give the coach.
    let (for_a, _) = grandfather::catalog_for(&two, &older, &a, now);
    assert!(decide::can(&for_a, &tollgate::Entitlements::new(a.clone()), "coach", now).unwrap().allowed);
    let m = tollgate::orgs::OrgMembership {
        id: "A".into(),
        seat: true,
        grants: a.clone(),
        terms: grandfather::terms(&two, &older, &a, now),
        ..Default::default()
    };
    assert!(tollgate::orgs::has_feature_access(&two, &m, "coach", now).unwrap(), "the snapshot's entry for A");
    // Own use: the member's own (none) with both organizations' seats, in either order.
    for seats in [[("A", &a), ("B", &b)], [("B", &b), ("A", &a)]] {
        let seats: Vec<(String, bool, Vec<tollgate::Grant>)> = seats.iter().map(|(o, g)| (o.to_string(), true, (*g).clone())).collect();
        let ents = tollgate::seats::for_own_use(tollgate::Entitlements::default(), &seats, false);
        let (cat, terms) = grandfather::catalog_for(&two, &older, &ents.grants, now);
        let c = tollgate::meter::check(&cat, &ents, "coach", 1, 0, now).unwrap();
        assert!(c.allowed, "A's seat gives the coach; B's must not take it away: {c:?}");
        assert_eq!(terms.iter().map(|t| (t.product.as_str(), t.version)).collect::<Vec<_>>(), [("team", 1)]);
        assert_eq!(terms[0].capabilities.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["coach"]);
        assert!(terms[0].limits.is_empty(), "a seat's grants decide no limit");
    }
    // B alone: version 2's terms, no coach at Business.
    let ents = tollgate::seats::for_own_use(tollgate::Entitlements::default(), &[("B".into(), true, b.clone())], false);
    let (cat, _) = grandfather::catalog_for(&two, &older, &ents.grants, now);
    assert!(!tollgate::meter::check(&cat, &ents, "coach", 1, 0, now).unwrap().allowed);
}

/// A capability held at exact tiers (not "from a tier up") that a lower grant on older
/// terms holds: the subject holds it at its higher tier too, and a capability no grant
/// holds under its own terms stays refused, with the upgrade its highest grant's terms name.
#[test]
fn a_lower_grant_on_older_terms_holds_an_exact_tier_capability_at_the_subjects_tier() {
    let exact = "\n[[capabilities]]\nid = \"priority_render\"\nproduct = \"studio\"\ntiers = [\"basic\"]\n";
    let src = format!("{}\n{EXTRA_V1}{exact}", event("catalog.toml"));
    let one = Catalog::parse(&src).unwrap().with_version(1);
    let two = Catalog::parse(&src.replace("tiers = [\"basic\"]", "tiers = [\"free\"]")).unwrap().with_version(2);
    let older = versions(&[&one]);
    let now = T0 + 10 * DAY;
    let grants = vec![
        studio("g1", "basic", tollgate::Status::Active, T0, Some(now + DAY), 1),
        studio("g2", "pro", tollgate::Status::Active, T0, Some(now + 30 * DAY), 2),
    ];
    let ents = tollgate::Entitlements::new(grants.clone());
    let (cat, _) = grandfather::catalog_for(&two, &older, &grants, t(now));
    assert!(decide::can(&cat, &ents, "priority_render", t(now)).unwrap().allowed, "Basic under v1 holds it");
    // Once the Basic grant ends, Pro under v2 does not.
    let (cat, _) = grandfather::catalog_for(&two, &older, &grants, t(now + 2 * DAY));
    assert!(!decide::can(&cat, &ents, "priority_render", t(now + 2 * DAY)).unwrap().allowed);
    assert_eq!(grandfather::terms_until(&two, &grants, t(now)), Some(t(now + DAY)));
}

/// A Studio Basic subscriber's checkout, activation and subscription were read under
/// version 1; the first invoice's `invoice.paid` was retried and read after version 2 was
/// pushed, whose offer moves Basic's subscribers at their renewal. The first period was
/// taken as a renewal under version 2, and the subscriber lost HD export and 5 projects
/// before any renewal: the first period is the sale's, and version 1's terms hold until
/// the first renewal.
#[test]
fn a_late_reading_of_the_first_invoice_is_no_renewal_under_the_new_version() {
    let (one, two) = (v1(), v2(Some("at_renewal")));
    let mut fs = facts(&two, &["stripe/invoice.paid.basil.json"]);
    fs.extend(facts(
        &one,
        &[
            "stripe/customer.subscription.created.basil.json",
            "stripe/customer.subscription.updated.active.basil.json",
            "stripe/checkout.session.completed.subscription.json",
        ],
    ));
    let older: std::collections::BTreeMap<u32, Catalog> = [(1, one.clone())].into();
    let at = t(P1E - DAY);
    let st = tollgate::billing::reduce_sold(&two, &older, &fs, &Default::default(), at);
    let ents = st.entitlements_for(USER);
    let g = ents.grants.iter().find(|g| g.product == "studio").expect("a Studio grant");
    assert_eq!(g.catalog_version, Some(1), "sold under version 1");
    let (cat, _) = tollgate::grandfather::catalog_for(&two, &older, &ents.grants, at);
    let hd = tollgate::decide::can(&cat, &ents, "hd_export", at).unwrap().allowed;
    let projects = tollgate::decide::limit(&cat, &ents, "projects", at).unwrap().limit;
    assert_eq!(
        (hd, projects, g.renewal_version),
        (true, tollgate::LimitValue::Limited(10), Some(1)),
        "no renewal happened: version 1's terms until the first renewal"
    );
}
