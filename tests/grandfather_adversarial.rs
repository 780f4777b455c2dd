//! Adversarial tests of catalog versions and grandfathering: chains of versions mixing
//! `keep`, `at_renewal` and `now`, rollbacks, trials, past-due and paused subscriptions
//! across a version change, offers and tiers that change, and facts read late.
//!
//! A small catalog with one product (`app`: free, basic, pro), one capability (`export`)
//! and one limit (`projects`); each version gives Basic its own project count, so the
//! limit tells whose terms a grant is held under.

#[path = "events/support.rs"]
mod support;
mod common;

use std::borrow::Cow;
use std::collections::BTreeMap;

use proptest::prelude::*;
use common::{versions, AppVersion, L};
use support::{paid_at, t, DAY, P1E, P2E, P3E, T0};
use tollgate::billing::{Fact, FactBody, Item, Provider, SubStatus, Subject, SubscriptionSnapshot};
use tollgate::grandfather::{self, Terms};
use tollgate::model::Entitlements;
use tollgate::{decide, Catalog, LimitValue};

const USER: &str = "user:u_gf";
const SUB: &str = "sub_gf";

/// One version of the test catalog (`common::AppVersion`; Pro has a 7-day trial here).
type V = AppVersion;

fn src(v: &V) -> String {
    V { pro_trial: Some(7), ..*v }.src("gf", "Grandfathering")
}

fn cat(v: &V) -> Catalog {
    V { pro_trial: Some(7), ..*v }.catalog("gf", "Grandfathering")
}

fn stamp(mut f: Fact, v: u32) -> Fact {
    f.catalog_version = Some(v);
    f
}

/// A snapshot of the subscription at `at`, read under version `v`.
#[allow(clippy::too_many_arguments)]
fn snap(
    status: SubStatus,
    offer: &str,
    (ps, pe): (i64, i64),
    at: i64,
    v: u32,
    trial_end: Option<i64>,
) -> Fact {
    Fact {
        key: format!("stripe:subscription:{SUB}:{at}"),
        provider: Provider::Stripe,
        event: format!("evt_snap_{at}"),
        at: t(at),
        body: FactBody::Subscription(SubscriptionSnapshot {
            id: format!("stripe:{SUB}"),
            customer: Some("stripe:cus_c".into()),
            status,
            items: vec![Item {
                price: None,
                offer: Some(offer.into()),
                quantity: 1,
            }],
            period_start: Some(t(ps)),
            period_end: Some(t(pe)),
            started_at: Some(t(T0)),
            trial_end: trial_end.map(t),
            cancel_at_period_end: false,
            cancel_at: None,
            ended_at: None,
            subject: Some(Subject::user("u_gf")),
            clouds: vec![],
            created: false,
            follows: None,
        }),
        catalog_version: Some(v),
    }
}

/// The paid invoice `k` of the subscription for `[ps, pe)`, paid at `at`, read under `v`.
fn paid(k: usize, offer: &str, (ps, pe): (i64, i64), at: i64, v: u32) -> Fact {
    stamp(paid_at(SUB, k, offer, ps, pe, at, 1000), v)
}

/// The first period `[T0, P1E)` of Basic, sold under `v`.
fn sale(v: u32) -> Vec<Fact> {
    vec![
        snap(SubStatus::Active, "BASIC", (T0, P1E), T0, v, None),
        paid(0, "BASIC", (T0, P1E), T0 + 1, v),
    ]
}

/// The renewal for `[ps, pe)` (k-th invoice): its snapshot and its payment, read under `v`.
fn renewal(k: usize, offer: &str, (ps, pe): (i64, i64), v: u32) -> Vec<Fact> {
    vec![
        snap(SubStatus::Active, offer, (ps, pe), ps, v, None),
        paid(k, offer, (ps, pe), ps + 60, v),
    ]
}

/// The periods after the first, `[P1E, P2E)`, `[P2E, P3E)` and 30 days from `P3E`.
const PERIODS: [(i64, i64); 3] = [(P1E, P2E), (P2E, P3E), (P3E, P3E + 30 * DAY)];

/// Basic's `k`-th renewal (k = 1..=3), of the `k`-th period after the first, read under `v`.
fn basic_renewal(k: usize, v: u32) -> Vec<Fact> {
    renewal(k, "BASIC", PERIODS[k - 1], v)
}

/// The story most tests begin with: Basic sold under v1 (10 projects, `keep`), then v2
/// (20 projects, `policy`, `export` from Pro) active. Returns v2, v1 at hand, and the sale.
fn sold_under_v1_then_v2(policy: &'static str) -> (Catalog, BTreeMap<u32, Catalog>, Vec<Fact>) {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, policy).export("pro"));
    (c2, versions(&[&c1]), sale(1))
}

/// The first renewal `[P1E, P2E)` told past due under v2, a minute into its period.
fn renewal_past_due() -> Fact {
    snap(SubStatus::PastDue, "BASIC", (P1E, P2E), P1E + 60, 2, None)
}

/// The first renewal's late payment, two days into its period, read under v2.
fn renewal_paid_late() -> Fact {
    paid(1, "BASIC", (P1E, P2E), P1E + 2 * DAY, 2)
}

/// The catalog the subject's decisions are made on at `at`, its entitlements and the terms
/// it is held under, with `active` active and `older` at hand (folded as the worker folds).
fn decided_on<'a>(
    active: &'a Catalog,
    older: &BTreeMap<u32, Catalog>,
    fs: &[Fact],
    at: i64,
) -> (Cow<'a, Catalog>, Entitlements, Vec<Terms>) {
    let st = tollgate::billing::reduce_sold(active, older, fs, &Default::default(), t(at));
    let ents = st.entitlements_for(USER);
    let (c, terms) = grandfather::catalog_for(active, older, &ents.grants, t(at));
    (c, ents, terms)
}

/// Does the subject export, and how many projects may it have at `at`, with `active`
/// active and `older` at hand (folded as the worker folds)?
fn held(
    active: &Catalog,
    older: &BTreeMap<u32, Catalog>,
    fs: &[Fact],
    at: i64,
) -> (bool, LimitValue) {
    let (c, ents, _) = decided_on(active, older, fs, at);
    let can = decide::can(&c, &ents, "export", t(at)).unwrap().allowed;
    let projects = decide::limit(&c, &ents, "projects", t(at)).unwrap().limit;
    (can, projects)
}

fn projects(active: &Catalog, older: &BTreeMap<u32, Catalog>, fs: &[Fact], at: i64) -> LimitValue {
    held(active, older, fs, at).1
}

fn grant(
    active: &Catalog,
    older: &BTreeMap<u32, Catalog>,
    fs: &[Fact],
    at: i64,
) -> tollgate::Grant {
    let st = tollgate::billing::reduce_sold(active, older, fs, &Default::default(), t(at));
    st.entitlements_for(USER)
        .grants
        .into_iter()
        .find(|g| g.product == "app")
        .expect("an app grant")
}

// ---------------------------------------------------------------------------------------
// Chains of versions.

/// v1 sells Basic (10); v2 `at_renewal` (20); v3 `keep` (30); v4 `at_renewal` (40).
/// The subscriber renews under v2 (moves to 20), under v3 (stays 20), and is on 20 under
/// v4 until its renewal under v4, then 40.
#[test]
fn chain_at_renewal_keep_at_renewal_moves_only_at_each_renewal() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "at_renewal"));
    let c3 = cat(&V::new(3, 30, "keep"));
    let c4 = cat(&V::new(4, 40, "at_renewal"));
    let mut fs = sale(1);
    // v2 active, before the renewal: v1's terms.
    assert_eq!(projects(&c2, &versions(&[&c1]), &fs, P1E - DAY), L(10));
    fs.extend(basic_renewal(1, 2));
    assert_eq!(projects(&c2, &versions(&[&c1]), &fs, P1E + DAY), L(20));
    // v3 keeps: still v2's.
    let older = versions(&[&c1, &c2]);
    assert_eq!(projects(&c3, &older, &fs, P1E + 2 * DAY), L(20));
    fs.extend(basic_renewal(2, 3));
    let older = versions(&[&c1, &c2]);
    assert_eq!(projects(&c3, &older, &fs, P2E + DAY), L(20));
    // v4 at_renewal: v2's terms until its renewal under v4.
    let older = versions(&[&c1, &c2, &c3]);
    assert_eq!(projects(&c4, &older, &fs, P2E + 2 * DAY), L(20));
    fs.extend(basic_renewal(3, 4));
    assert_eq!(projects(&c4, &older, &fs, P3E + DAY), L(40));
    // Then a v5 that keeps leaves it on v4's.
    let c5 = cat(&V::new(5, 50, "keep"));
    let older = versions(&[&c1, &c2, &c3, &c4]);
    assert_eq!(projects(&c5, &older, &fs, P3E + 2 * DAY), L(40));
}

/// `now` moves at once, with or without a renewal; a renewal under a `now` version moves
/// the grant for good (a later `keep` version keeps it on the `now` version's terms).
#[test]
fn chain_keep_now_keep_a_renewal_under_now_sticks() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "now").export("pro"));
    let c3 = cat(&V::new(3, 30, "keep"));
    let mut fs = sale(1);
    assert_eq!(
        held(&c2, &versions(&[&c1]), &fs, P1E - DAY),
        (false, L(20)),
        "now: at once"
    );
    fs.extend(basic_renewal(1, 2));
    assert_eq!(held(&c2, &versions(&[&c1]), &fs, P1E + DAY), (false, L(20)));
    assert_eq!(
        held(&c3, &versions(&[&c1, &c2]), &fs, P1E + 2 * DAY),
        (false, L(20)),
        "renewed under now: v2's for good"
    );
}

/// Documented: a `now` version moves a grant for good only if it renewed while it was
/// active. Sold under v1, v2 `now` active without a renewal, then v3 `keep`: back to v1.
#[test]
fn now_without_a_renewal_is_not_for_good_as_documented() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "now"));
    let c3 = cat(&V::new(3, 30, "keep"));
    let fs = sale(1);
    assert_eq!(projects(&c2, &versions(&[&c1]), &fs, P1E - 2 * DAY), L(20));
    assert_eq!(projects(&c3, &versions(&[&c1, &c2]), &fs, P1E - DAY), L(10));
}

/// Keep under three newer versions, renewing under each: the terms of v1 throughout.
#[test]
fn keep_across_three_renewals_and_three_versions() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "keep").export("pro"));
    let c3 = cat(&V::new(3, 30, "keep").export("pro"));
    let c4 = cat(&V::new(4, 40, "keep").export("pro"));
    let mut fs = sale(1);
    fs.extend(basic_renewal(1, 2));
    fs.extend(basic_renewal(2, 3));
    fs.extend(basic_renewal(3, 4));
    let older = versions(&[&c1, &c2, &c3]);
    assert_eq!(held(&c4, &older, &fs, P3E + DAY), (true, L(10)));
    // A buyer under v4 gets v4's.
    let fresh: Vec<Fact> = sale(4);
    assert_eq!(held(&c4, &older, &fresh, P1E - DAY), (false, L(40)));
}

// ---------------------------------------------------------------------------------------
// Renewals at the activation second, and readings of the same renewal under two versions.

/// The renewal is told at the very second v2 (`at_renewal`) became active: both its
/// facts read under v2. It moves the grant; before that second v1's terms hold.
#[test]
fn a_renewal_at_the_activation_second_moves_under_at_renewal() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "at_renewal"));
    let mut fs = sale(1);
    fs.extend(basic_renewal(1, 2));
    let older = versions(&[&c1]);
    assert_eq!(projects(&c2, &older, &fs, P1E), L(20));
    assert_eq!(projects(&c2, &older, &sale(1), P1E - 1), L(10));
}

/// The same event delivered twice, read under version 9 and again (a retry) under version
/// 10: the sale is the earliest reading's, as with versions 1 and 2.
#[test]
fn a_retry_read_under_version_10_does_not_move_a_sale_made_under_version_9() {
    let c9 = cat(&V::new(9, 10, "keep"));
    let c10 = cat(&V::new(10, 20, "keep").export("pro"));
    let older = versions(&[&c9]);
    let first = sale(9);
    let retried: Vec<Fact> = first.iter().cloned().map(|f| stamp(f, 10)).collect();
    let both: Vec<Fact> = first.iter().chain(retried.iter()).cloned().collect();
    assert_eq!(
        grant(&c10, &older, &first, P1E - DAY).catalog_version,
        Some(9)
    );
    let g = grant(&c10, &older, &both, P1E - DAY);
    assert_eq!(
        g.catalog_version,
        Some(9),
        "read under 9 first, retried under 10"
    );
    assert_eq!(held(&c10, &older, &both, P1E - DAY), (true, L(10)));
    // The same with 1 and 2.
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "keep").export("pro"));
    let both: Vec<Fact> = sale(1)
        .into_iter()
        .chain(sale(1).into_iter().map(|f| stamp(f, 2)))
        .collect();
    assert_eq!(
        held(&c2, &versions(&[&c1]), &both, P1E - DAY),
        (true, L(10))
    );
}

// ---------------------------------------------------------------------------------------
// Rollbacks and republishing.

/// The same version given both as active and among the older ones, and its content pushed
/// again as a new version: nothing changes for anyone.
#[test]
fn publishing_the_same_version_twice_is_harmless() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "at_renewal"));
    let mut fs = sale(1);
    let a = held(&c2, &versions(&[&c1]), &fs, P1E - DAY);
    assert_eq!(a, held(&c2, &versions(&[&c1, &c2]), &fs, P1E - DAY));
    assert_eq!(a, (true, L(10)));
    fs.extend(basic_renewal(1, 2));
    let b = held(&c2, &versions(&[&c1]), &fs, P1E + DAY);
    assert_eq!(b, held(&c2, &versions(&[&c1, &c2]), &fs, P1E + DAY));
    assert_eq!(b, (true, L(20)));
    // v2's content pushed again as v3 (same policy): until a renewal under v3, v2's terms,
    // which are the same.
    let c3 = cat(&V::new(3, 20, "at_renewal"));
    assert_eq!(
        held(&c3, &versions(&[&c1, &c2]), &fs, P1E + 2 * DAY),
        (true, L(20))
    );
}

// ---------------------------------------------------------------------------------------
// Trials, past due, paused.

/// A Basic subscriber sold under v1; v2 (`at_renewal`) active; the renewal's payment fails
/// and the subscription is past due under v2: still v1's terms (no renewal yet) during
/// the grace period; the late payment under v2 is the renewal and moves it.
#[test]
fn past_due_across_an_at_renewal_version_moves_only_when_paid() {
    let (c2, older, mut fs) = sold_under_v1_then_v2("at_renewal");
    fs.push(renewal_past_due());
    assert_eq!(
        held(&c2, &older, &fs, P1E + DAY),
        (true, L(10)),
        "past due, in grace: v1's terms"
    );
    fs.push(renewal_paid_late());
    fs.push(snap(
        SubStatus::Active,
        "BASIC",
        (P1E, P2E),
        P1E + 2 * DAY + 1,
        2,
        None,
    ));
    assert_eq!(
        held(&c2, &older, &fs, P1E + 3 * DAY),
        (false, L(20)),
        "paid: renewed under v2"
    );
}

/// Past due under v2 (`keep`): v1's terms in grace and after the late payment.
#[test]
fn past_due_across_a_keep_version_keeps() {
    let (c2, older, mut fs) = sold_under_v1_then_v2("keep");
    fs.push(renewal_past_due());
    assert_eq!(held(&c2, &older, &fs, P1E + DAY), (true, L(10)));
    fs.push(renewal_paid_late());
    assert_eq!(held(&c2, &older, &fs, P1E + 3 * DAY), (true, L(10)));
}

/// Paused under v2 (`at_renewal`) mid-period: the subscription gives nothing from the
/// pause on, whatever the version; before the pause v1's terms.
#[test]
fn paused_across_a_version_change() {
    let (c2, older, mut fs) = sold_under_v1_then_v2("at_renewal");
    let pause = T0 + 10 * DAY;
    fs.push(snap(SubStatus::Paused, "BASIC", (T0, P1E), pause, 2, None));
    assert_eq!(held(&c2, &older, &fs, pause - DAY), (true, L(10)));
    assert_eq!(
        held(&c2, &older, &fs, pause + DAY),
        (false, L(1)),
        "paused: the free tier"
    );
    assert_eq!(
        grant(&c2, &older, &fs, pause + DAY).renewal_version,
        Some(1),
        "a pause is no renewal"
    );
}

// ---------------------------------------------------------------------------------------
// Offers, capabilities, limits and tiers that change.

/// v2 drops the Basic offer altogether (the product and tier stay): the paying Basic
/// subscriber keeps its grant and v1's terms, across a renewal told under v2.
#[test]
fn a_plan_removed_from_the_newer_version_strips_nothing() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let s2 = src(&V::new(2, 20, "now").export("pro"));
    let start = s2.find("[[offers]]\nkey = \"BASIC\"").unwrap();
    let end = s2.find("[[offers]]\nkey = \"PRO\"").unwrap();
    let s2 = format!("{}{}", &s2[..start], &s2[end..]);
    let c2 = Catalog::parse(&s2).unwrap().with_version(2);
    assert!(c2.offer("BASIC").is_none());
    let older = versions(&[&c1]);
    let mut fs = sale(1);
    assert_eq!(held(&c2, &older, &fs, P1E - DAY), (true, L(10)));
    fs.extend(basic_renewal(1, 2));
    assert_eq!(held(&c2, &older, &fs, P1E + DAY), (true, L(10)));
    // v3 brings it back with `now`: v3's terms at once.
    let c3 = cat(&V::new(3, 30, "now").export("pro"));
    assert_eq!(
        held(&c3, &versions(&[&c1, &c2]), &fs, P1E + 2 * DAY),
        (false, L(30))
    );
}

/// v2 renames the Basic offer's key to `BASIC_2`, keeping its Stripe price (the natural
/// rename: the price in Stripe is the same), with `at_renewal`. The Basic subscriber sold
/// under v1, whose facts name `BASIC`, keeps its grant and v1's terms until a renewal told
/// under v2 names the new key and moves it, as the new key's policy says.
#[test]
fn an_offer_renamed_keeping_its_stripe_price_keeps_its_subscribers_access() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = Catalog::parse(
        &src(&V::new(2, 20, "at_renewal").export("pro"))
            .replace("key = \"BASIC\"", "key = \"BASIC_2\""),
    )
    .unwrap()
    .with_version(2);
    renamed_offer_story(&c1, &c2);
}

/// The same rename with a new Stripe price for `BASIC_2`.
#[test]
fn an_offer_renamed_with_a_new_stripe_price_keeps_its_subscribers_access() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let s2 = src(&V::new(2, 20, "at_renewal").export("pro"))
        .replace("key = \"BASIC\"", "key = \"BASIC_2\"")
        .replace("[\"price_basic\"]", "[\"price_basic_2\"]");
    let c2 = Catalog::parse(&s2).unwrap().with_version(2);
    renamed_offer_story(&c1, &c2);
}

fn renamed_offer_story(c1: &Catalog, c2: &Catalog) {
    let (c1, c2) = (c1.clone(), c2.clone());
    let kept = grandfather::keeping_sold(&c2, &versions(&[&c1]));
    assert!(
        kept.offer("BASIC").is_some_and(|o| o.hidden),
        "v1's BASIC comes back, hidden, for its buyers"
    );
    let older = versions(&[&c1]);
    let mut fs = sale(1);
    assert_eq!(held(&c2, &older, &fs, P1E - DAY), (true, L(10)));
    fs.extend(renewal(1, "BASIC_2", (P1E, P2E), 2));
    assert_eq!(held(&c2, &older, &fs, P1E + DAY), (false, L(20)));
}

/// Documented: only ids the active version has are taken; a capability renamed in v2 is a
/// new capability, which follows v2; the old id cannot be asked about.
#[test]
fn a_renamed_capability_follows_the_active_version_as_documented() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = Catalog::parse(
        &src(&V::new(2, 20, "keep").export("pro")).replace("id = \"export\"", "id = \"export_hd\""),
    )
    .unwrap()
    .with_version(2);
    let (c, ents, _) = decided_on(&c2, &versions(&[&c1]), &sale(1), P1E - DAY);
    assert!(
        !decide::can(&c, &ents, "export_hd", t(P1E - DAY))
            .unwrap()
            .allowed
    );
    assert!(decide::can(&c, &ents, "export", t(P1E - DAY)).is_err());
    // The limit (not renamed) is still v1's.
    assert_eq!(
        decide::limit(&c, &ents, "projects", t(P1E - DAY))
            .unwrap()
            .limit,
        L(10)
    );
}

/// v1 has a `legacy` tier, unused by anyone, and an exact-tier capability `watermark_free`
/// held at `legacy` and `basic`; v2 retires the `legacy` tier (keeping Basic's subscribers)
/// and gives `watermark_free` to Pro only, and halves Basic's projects. A Basic subscriber
/// sold under v1 keeps both what `watermark_free` and the 10 projects gave it: retiring a
/// tier nobody holds takes nothing from a paying subscriber.
#[test]
fn retiring_an_unused_tier_strips_no_grandfathered_terms() {
    let base = |v: &V| {
        src(v)
            .replace(
                "tiers = [\"free\", \"basic\", \"pro\"]",
                "tiers = [\"free\", \"legacy\", \"basic\", \"pro\"]",
            )
            .replace("values = { free = 1,", "values = { free = 1, legacy = 2,")
    };
    let wm_v1 = "\n[[capabilities]]\nid = \"watermark_free\"\nproduct = \"app\"\ntiers = [\"legacy\", \"basic\"]\n";
    let s1 = format!("{}{wm_v1}", base(&V::new(1, 10, "keep")));
    let c1 = Catalog::parse(&s1).unwrap().with_version(1);
    let wm_v2 =
        "\n[[capabilities]]\nid = \"watermark_free\"\nproduct = \"app\"\ntiers = [\"pro\"]\n";
    let s2 = format!("{}{wm_v2}", src(&V::new(2, 5, "keep").export("pro")));
    let c2 = Catalog::parse(&s2).unwrap().with_version(2);
    let at = P1E - DAY;
    let (c, ents, terms) = decided_on(&c2, &versions(&[&c1]), &sale(1), at);
    assert!(!terms.is_empty(), "the grant is held under v1's terms");
    let wm = decide::can(&c, &ents, "watermark_free", t(at))
        .unwrap()
        .allowed;
    let export = decide::can(&c, &ents, "export", t(at)).unwrap().allowed;
    let projects = decide::limit(&c, &ents, "projects", t(at)).unwrap().limit;
    assert_eq!(
        (wm, export, projects),
        (true, true, L(10)),
        "terms: {terms:?}"
    );
}

/// A version that is not active yet (pushed, to be activated later) has no effect: facts
/// read before its activation carry the active version, and a host deciding with v1
/// active (v2 only at hand) gives v1's terms.
#[test]
fn a_version_not_yet_active_has_no_effect() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "now").export("pro"));
    let mut fs = sale(1);
    fs.extend(basic_renewal(1, 1));
    assert_eq!(held(&c1, &versions(&[&c2]), &fs, P1E + DAY), (true, L(10)));
    // Activated: `now` at once.
    assert_eq!(held(&c2, &versions(&[&c1]), &fs, P1E + DAY), (false, L(20)));
}

/// New purchases always pay the active version's price, whatever version the subject's
/// existing grant is held under.
#[test]
fn prices_for_new_purchases_come_from_the_active_version() {
    let c1 = cat(&V::new(1, 10, "keep"));
    let c2 = cat(&V::new(2, 20, "keep"));
    let c3 = cat(&V::new(3, 30, "at_renewal"));
    for (c, n) in [(&c1, 1), (&c2, 2), (&c3, 3)] {
        assert_eq!(c.offer("BASIC").unwrap().price.amount, 1000 + n);
        let kept = grandfather::keeping_sold(c, &versions(&[&c1, &c2, &c3]));
        assert_eq!(kept.offer("BASIC").unwrap().price.amount, 1000 + n);
        assert!(!kept.offer("BASIC").unwrap().hidden);
    }
}

// ---------------------------------------------------------------------------------------
// Property: random chains of versions, renewals read in time order, facts told in any
// order; the terms follow the documented rule.

fn policy_name(p: u8) -> &'static str {
    match p % 3 {
        0 => "keep",
        1 => "at_renewal",
        _ => "now",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Versions 1..=n (n up to 5), each with a random Basic policy and 10*v projects; the
    /// sale under version `first`, then renewal k (k = 1..=3) read under a non-decreasing
    /// version; the active version the last one. Expected: start on the sale's terms; a
    /// renewal under a version whose offer migrates moves onto it; under an active `now`,
    /// the active terms. The facts are given in a random order.
    #[test]
    fn terms_follow_the_chain(
        policies in proptest::collection::vec(0u8..3, 5),
        steps in proptest::collection::vec(0u32..2, 4),
        order in proptest::collection::vec(any::<u32>(), 8),
    ) {
        let cats: Vec<Catalog> = (1..=5u32).map(|n| cat(&V::new(n, 10 * n as i64, policy_name(policies[n as usize - 1])))).collect();
        // Versions read: the sale's, then each renewal's (non-decreasing).
        let mut v = 1u32;
        let mut read = Vec::new();
        for s in &steps {
            v = (v + s).min(5);
            read.push(v);
        }
        let active_n = *read.last().unwrap();
        let active = &cats[active_n as usize - 1];
        let older: BTreeMap<u32, Catalog> = cats.iter().filter(|c| c.version != Some(active_n)).map(|c| (c.version.unwrap(), c.clone())).collect();
        let mut fs = sale(read[0]);
        for (k, r) in read[1..].iter().enumerate() {
            fs.extend(basic_renewal(k + 1, *r));
        }
        // The model.
        let mut on = read[0];
        for r in &read[1..] {
            if policy_name(policies[*r as usize - 1]) != "keep" {
                on = *r;
            }
        }
        if policy_name(policies[active_n as usize - 1]) == "now" {
            on = active_n;
        }
        let at = P3E + DAY;
        // A random order of the facts.
        let mut shuffled: Vec<(u32, Fact)> = fs.iter().cloned().enumerate().map(|(i, f)| (order[i % order.len()].wrapping_add(i as u32), f)).collect();
        shuffled.sort_by_key(|(k, _)| *k);
        let shuffled: Vec<Fact> = shuffled.into_iter().map(|(_, f)| f).collect();
        let a = projects(active, &older, &fs, at);
        let b = projects(active, &older, &shuffled, at);
        prop_assert_eq!(a, b);
        prop_assert_eq!(a, L(10 * on as i64), "read {:?} policies {:?}", read, policies);
        // What the host loads covers what is used.
        let g = grant(active, &older, &fs, at);
        let needed = grandfather::versions_needed(active, std::slice::from_ref(&g));
        if on != active_n {
            prop_assert!(needed.contains(&on), "needed {:?}, on {}", needed, on);
        }
        prop_assert_eq!(grandfather::terms_version(active, &older, &g), if on == active_n { None } else { Some(on) });
    }

    /// Order-independence of the same facts, some of them told twice under a later
    /// version (retries): the answer is the same however the copies are ordered.
    #[test]
    fn retried_copies_in_any_order_give_one_answer(
        policies in proptest::collection::vec(0u8..3, 3),
        dup in proptest::collection::vec(any::<bool>(), 4),
        order in proptest::collection::vec(any::<u32>(), 8),
    ) {
        let cats: Vec<Catalog> = (1..=3u32).map(|n| cat(&V::new(n, 10 * n as i64, policy_name(policies[n as usize - 1])))).collect();
        let active = &cats[2];
        let older: BTreeMap<u32, Catalog> = cats[..2].iter().map(|c| (c.version.unwrap(), c.clone())).collect();
        let mut fs = sale(1);
        fs.extend(basic_renewal(1, 2));
        let mut all = fs.clone();
        for (i, f) in fs.iter().enumerate() {
            if dup[i % dup.len()] {
                all.push(stamp(f.clone(), 3));
            }
        }
        let forward = projects(active, &older, &all, P1E + DAY);
        let mut keyed: Vec<(u32, Fact)> = all.iter().cloned().enumerate().map(|(i, f)| (order[i % order.len()] ^ (i as u32).rotate_left(7), f)).collect();
        keyed.sort_by_key(|(k, _)| *k);
        let shuffled: Vec<Fact> = keyed.into_iter().map(|(_, f)| f).collect();
        prop_assert_eq!(forward, projects(active, &older, &shuffled, P1E + DAY));
        let reversed: Vec<Fact> = all.iter().rev().cloned().collect();
        prop_assert_eq!(forward, projects(active, &older, &reversed, P1E + DAY));
    }
}
