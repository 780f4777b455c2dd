//! Which catalog version a subscription's sale and renewals are made under when the facts
//! that tell them are read under different versions: a rollback (the store's active version
//! goes back to an older number), a renewal told by facts read under two versions, a trial's
//! conversion, and a change of plan.
//!
//! A small catalog with one product (`app`: free, basic, pro), one capability (`export`)
//! and one limit (`projects`); each version gives Basic and Pro their own project counts,
//! so the limit tells whose terms a grant is held under.

#[path = "events/support.rs"]
mod support;
mod common;

use std::collections::BTreeMap;

use common::{versions, AppVersion, L};
use support::{t, DAY, P1E, P2E, P3E, T0};
use tollgate::billing::{
    Fact, FactBody, InvoicePaid, Item, Provider, SubStatus, Subject, SubscriptionSnapshot,
};
use tollgate::{decide, grandfather, Catalog, LimitValue};

const USER: &str = "user:u_gv";
const SUB: &str = "stripe:sub_gv";

/// One version of the test catalog (`common::AppVersion`); Basic has a `trial_days` line
/// here, 0 unless said.
type V = AppVersion;

fn v(n: u32, basic: i64, policy: &'static str) -> V {
    V {
        basic_trial: Some(0),
        ..V::new(n, basic, policy)
    }
}

fn cat(v: V) -> Catalog {
    v.catalog("gv", "Versions")
}

/// Version 1 (Basic: 10 projects, `keep`, `export` from Basic) and version 2 (Basic: 20
/// projects under `policy`, `export` from Pro).
fn v1_and_v2(policy: &'static str) -> (Catalog, Catalog) {
    (
        cat(v(1, 10, "keep")),
        cat(V {
            export: "pro",
            ..v(2, 20, policy)
        }),
    )
}

fn items(offer: &str, quantity: u32) -> Vec<Item> {
    vec![Item {
        price: None,
        offer: Some(offer.into()),
        quantity,
    }]
}

/// A snapshot of the subscription at `at` for the period `[ps, pe)`, read under `read`.
fn snap(status: SubStatus, offer: &str, (ps, pe): (i64, i64), at: i64, read: u32) -> Fact {
    let trial_end = (status == SubStatus::Trialing).then(|| t(pe));
    snap_with(
        status,
        items(offer, 1),
        (ps, pe),
        at,
        read,
        trial_end,
        false,
    )
}

fn snap_with(
    status: SubStatus,
    items: Vec<Item>,
    (ps, pe): (i64, i64),
    at: i64,
    read: u32,
    trial_end: Option<tollgate::Timestamp>,
    cancel_at_period_end: bool,
) -> Fact {
    Fact {
        key: format!("stripe:subscription:{SUB}:{at}"),
        provider: Provider::Stripe,
        event: format!("evt_snap_{at}"),
        at: t(at),
        body: FactBody::Subscription(SubscriptionSnapshot {
            id: SUB.into(),
            customer: Some("stripe:cus_gv".into()),
            status,
            items,
            period_start: Some(t(ps)),
            period_end: Some(t(pe)),
            started_at: Some(t(T0)),
            trial_end,
            cancel_at_period_end,
            cancel_at: None,
            ended_at: None,
            subject: Some(Subject::user("u_gv")),
            clouds: vec![],
            created: false,
            follows: None,
        }),
        catalog_version: Some(read),
    }
}

/// The paid invoice `k` of `offer` for `[ps, pe)`, paid at `at`, read under `read`.
fn paid(k: usize, offer: &str, (ps, pe): (i64, i64), at: i64, amount: i64, read: u32) -> Fact {
    Fact {
        key: format!("stripe:invoice:in_gv_{k}:paid"),
        provider: Provider::Stripe,
        event: format!("evt_paid_{k}"),
        at: t(at),
        body: FactBody::InvoicePaid(InvoicePaid {
            id: format!("stripe:in_gv_{k}"),
            subscription: SUB.into(),
            customer: Some("stripe:cus_gv".into()),
            items: items(offer, 1),
            period_start: Some(t(ps)),
            period_end: Some(t(pe)),
            amount,
            currency: "usd".into(),
            payment_refs: vec![format!("stripe:pi_gv_{k}")],
        }),
        catalog_version: Some(read),
    }
}

/// Basic's first period `[T0, P1E)`, sold under `read`.
fn sale(read: u32) -> Vec<Fact> {
    vec![
        snap(SubStatus::Active, "BASIC", (T0, P1E), T0, read),
        paid(0, "BASIC", (T0, P1E), T0 + 1, 1000, read),
    ]
}

/// The renewal for `[ps, pe)` (k-th invoice): its snapshot read under `snap_read`, its
/// payment a minute later read under `paid_read`.
fn renewal(
    k: usize,
    offer: &str,
    (ps, pe): (i64, i64),
    snap_read: u32,
    paid_read: u32,
) -> Vec<Fact> {
    vec![
        snap(SubStatus::Active, offer, (ps, pe), ps, snap_read),
        paid(k, offer, (ps, pe), ps + 60, 1000, paid_read),
    ]
}

/// The subject's app grant, and whether it exports and how many projects it may have at
/// `at`, with `active` active and `older` at hand (folded as the worker folds, in the order
/// given and reversed: both must agree).
fn held(
    active: &Catalog,
    older: &BTreeMap<u32, Catalog>,
    fs: &[Fact],
    at: i64,
) -> (tollgate::Grant, bool, LimitValue) {
    let one = |fs: &[Fact]| {
        let st = tollgate::billing::reduce_sold(active, older, fs, &Default::default(), t(at));
        st.check_invariants().expect("credit invariants hold");
        let ents = st.entitlements_for(USER);
        let g = ents
            .grants
            .iter()
            .find(|g| g.product == "app")
            .expect("an app grant")
            .clone();
        let (c, _) = grandfather::catalog_for(active, older, &ents.grants, t(at));
        let can = decide::can(&c, &ents, "export", t(at)).unwrap().allowed;
        let projects = decide::limit(&c, &ents, "projects", t(at)).unwrap().limit;
        (g, can, projects)
    };
    let forward = one(fs);
    let reversed: Vec<Fact> = fs.iter().rev().cloned().collect();
    assert_eq!(
        forward,
        one(&reversed),
        "the order facts are given in changes nothing"
    );
    forward
}

/// [`held`] told by the version the grant last renewed under: `(renewal_version, export,
/// projects)`.
fn renewed(
    active: &Catalog,
    older: &BTreeMap<u32, Catalog>,
    fs: &[Fact],
    at: i64,
) -> (Option<u32>, bool, LimitValue) {
    let (g, export, projects) = held(active, older, fs, at);
    (g.renewal_version, export, projects)
}

/// Version 2 (Basic: 20 projects, export from Pro) sold the subscription; then version 1
/// (10 projects, export from Basic) was made active again. A snapshot telling the buyer
/// cancels at the period's end, and later a renewal, are read under version 1. The sale was
/// made under version 2 and version 1's offer keeps its subscribers: the buyer keeps version
/// 2's terms. Neither fact sold the subscription, so neither moves its sale to version 1.
#[test]
fn after_a_rollback_a_later_fact_read_under_the_older_version_does_not_move_the_sale() {
    let (c1, c2) = v1_and_v2("keep");
    let older = versions(&[&c2]);
    // With version 2 still active, its buyer is on its terms.
    assert_eq!(
        held(&c2, &versions(&[&c1]), &sale(2), P1E - DAY)
            .0
            .catalog_version,
        Some(2)
    );
    // Rolled back: a snapshot of the first period read under version 1.
    let mut fs = sale(2);
    fs.push(snap_with(
        SubStatus::Active,
        items("BASIC", 1),
        (T0, P1E),
        T0 + 10 * DAY,
        1,
        None,
        true,
    ));
    let (g, export, projects) = held(&c1, &older, &fs, T0 + 11 * DAY);
    assert_eq!(
        (g.catalog_version, export, projects),
        (Some(2), false, L(20)),
        "a later snapshot is no sale"
    );
    // A renewal read under version 1.
    let mut fs = sale(2);
    fs.extend(renewal(1, "BASIC", (P1E, P2E), 1, 1));
    let (g, export, projects) = held(&c1, &older, &fs, P1E + DAY);
    assert_eq!(g.valid_to, Some(t(P2E)));
    assert_eq!(
        (g.catalog_version, export, projects),
        (Some(2), false, L(20)),
        "sold under version 2, renewed under a version that keeps"
    );
    assert_eq!(
        grandfather::versions_needed(&c1, std::slice::from_ref(&g)),
        vec![2]
    );
}

/// The sale's own facts read under two versions (the subscription's first snapshot retried
/// after version 2 was pushed, its first payment read under version 1): the earliest
/// telling of the sale decides, as before.
#[test]
fn the_sale_is_the_earliest_telling_of_the_first_period() {
    let (c1, c2) = v1_and_v2("keep");
    let fs = vec![
        snap(SubStatus::Active, "BASIC", (T0, P1E), T0, 2),
        paid(0, "BASIC", (T0, P1E), T0 + 1, 1000, 1),
    ];
    let (g, export, projects) = held(&c2, &versions(&[&c1]), &fs, P1E - DAY);
    assert_eq!(
        (g.catalog_version, export, projects),
        (Some(1), true, L(10))
    );
}

/// A renewal whose payment was read under version 1 and whose snapshot (created a minute
/// before the payment, but retried) was read after version 2 (`at_renewal`) was pushed: the
/// renewal was first told while version 1 was active, so it was a renewal under version 1,
/// which keeps. The subscriber moves at its next renewal under version 2.
#[test]
fn a_renewal_told_under_two_versions_is_the_earliest_tellings() {
    let (c1, c2) = v1_and_v2("at_renewal");
    let older = versions(&[&c1]);
    let mut fs = sale(1);
    fs.extend(renewal(1, "BASIC", (P1E, P2E), 2, 1));
    assert_eq!(
        renewed(&c2, &older, &fs, P1E + DAY),
        (Some(1), true, L(10)),
        "renewed under version 1"
    );
    // Told the other way round (the payment retried): the same.
    let mut other = sale(1);
    other.extend(renewal(1, "BASIC", (P1E, P2E), 1, 2));
    assert_eq!(
        renewed(&c2, &older, &other, P1E + DAY),
        (Some(1), true, L(10))
    );
    // Applied one fact at a time, as told, the state is the one a whole fold gives.
    let mut r = tollgate::billing::Reducer::new(&c2, t(T0));
    for f in &fs {
        r.apply(f.clone(), f.at);
    }
    r.apply(fs[0].clone(), t(P1E + DAY));
    let whole = tollgate::billing::reduce(&c2, &fs, t(P1E + DAY));
    assert_eq!(
        r.state().entitlements_for(USER).grants,
        whole.entitlements_for(USER).grants
    );
    assert_eq!(
        whole.subscriptions[SUB].renewal_version, None,
        "version 1 moved nothing"
    );
    // The next renewal, under version 2, moves it.
    fs.extend(renewal(2, "BASIC", (P2E, P3E), 2, 2));
    assert_eq!(
        renewed(&c2, &older, &fs, P2E + DAY),
        (Some(2), false, L(20))
    );
    // Both facts of a renewal read under version 2: it moves at once.
    let mut both = sale(1);
    both.extend(renewal(1, "BASIC", (P1E, P2E), 2, 2));
    assert_eq!(held(&c2, &older, &both, P1E + DAY).2, L(20));
}

/// A Basic trial begun under version 1 converts (its first paid period) while version 2,
/// whose Basic moves its subscribers `at_renewal`, is active. The conversion is the first
/// payment of the sale made at checkout, not a renewal: the subscriber stays on version 1's
/// terms through its first paid period and moves at its first renewal under version 2.
#[test]
fn a_trial_converted_under_an_at_renewal_version_is_no_renewal() {
    let c1 = cat(V {
        basic_trial: Some(7),
        ..v(1, 10, "keep")
    });
    let c2 = cat(V {
        basic_trial: Some(7),
        export: "pro",
        ..v(2, 20, "at_renewal")
    });
    let older = versions(&[&c1]);
    let te = T0 + 7 * DAY;
    let first = (te, P1E + 7 * DAY);
    let mut fs = vec![
        snap(SubStatus::Trialing, "BASIC", (T0, te), T0, 1),
        paid(0, "BASIC", (T0, te), T0 + 1, 0, 1),
    ];
    let (g, export, projects) = held(&c2, &older, &fs, T0 + DAY);
    assert_eq!(
        (g.status, export, projects),
        (tollgate::Status::Trial, true, L(10)),
        "the trial: version 1's terms"
    );
    // Converted under version 2: the snapshot keeps naming the trial's end, as Stripe's does.
    fs.push(snap_with(
        SubStatus::Active,
        items("BASIC", 1),
        first,
        te,
        2,
        Some(t(te)),
        false,
    ));
    fs.push(paid(1, "BASIC", first, te + 60, 1000, 2));
    let (g, export, projects) = held(&c2, &older, &fs, te + DAY);
    assert_eq!((g.catalog_version, g.renewal_version), (Some(1), Some(1)));
    assert_eq!(
        (export, projects),
        (true, L(10)),
        "the conversion is the sale's first paid period"
    );
    // Its first renewal under version 2 moves it.
    fs.extend(renewal(2, "BASIC", (first.1, first.1 + 30 * DAY), 2, 2));
    assert_eq!(
        renewed(&c2, &older, &fs, first.1 + DAY),
        (Some(2), false, L(20))
    );
}

/// Basic sold under version 1; version 2 gives Pro 200 projects (its buyers keep their
/// terms). The subscriber upgrades to Pro while version 2 is active: a change of plan is a
/// new sale of Pro, made under version 2, so it has version 2's Pro (200), not version 1's
/// (100). A change of quantity of the same plan is no new sale.
#[test]
fn a_change_of_plan_is_sold_under_the_version_it_was_made_under() {
    let c1 = cat(v(1, 10, "keep"));
    let c2 = cat(V {
        pro: 200,
        ..v(2, 20, "keep")
    });
    let older = versions(&[&c1]);
    let change = T0 + 10 * DAY;
    let mut fs = sale(1);
    fs.push(snap(SubStatus::Active, "PRO", (T0, P1E), change, 2));
    fs.push(paid(1, "PRO", (change, P1E), change + 60, 3000, 2));
    let (g, _, projects) = held(&c2, &older, &fs, change + DAY);
    assert_eq!((g.tier.as_str(), g.offer.as_deref()), ("pro", Some("PRO")));
    assert_eq!(
        (g.catalog_version, projects),
        (Some(2), L(200)),
        "Pro sold under version 2"
    );
    // It renews under version 2 and stays there; under a version 3 that keeps, too.
    fs.extend(renewal(2, "PRO", (P1E, P2E), 2, 2));
    let c3 = cat(V {
        pro: 300,
        ..v(3, 30, "keep")
    });
    let (g, _, projects) = held(&c3, &versions(&[&c1, &c2]), &fs, P1E + DAY);
    assert_eq!((g.catalog_version, projects), (Some(2), L(200)));
    // Two seats of Basic under version 2 instead of one: still version 1's Basic.
    let mut more = sale(1);
    more.push(snap_with(
        SubStatus::Active,
        items("BASIC", 2),
        (T0, P1E),
        change,
        2,
        None,
        false,
    ));
    let (g, _, projects) = held(&c2, &older, &more, change + DAY);
    assert_eq!((g.catalog_version, projects), (Some(1), L(10)));
}

/// A change of plan after an `at_renewal` move: Basic moved to version 2 at its renewal,
/// then Pro is bought under version 3; version 2's Pro moves its subscribers at renewal,
/// but Pro never renewed under version 2, so the grant is on version 3's Pro terms while
/// version 4 (keep) is active.
#[test]
fn a_change_of_plan_forgets_where_the_old_plans_renewals_moved_it() {
    let c1 = cat(v(1, 10, "keep"));
    let c2 = cat(V {
        pro: 200,
        pro_policy: "at_renewal",
        ..v(2, 20, "at_renewal")
    });
    let c3 = cat(V {
        pro: 300,
        ..v(3, 30, "keep")
    });
    let c4 = cat(V {
        pro: 400,
        ..v(4, 40, "keep")
    });
    let mut fs = sale(1);
    fs.extend(renewal(1, "BASIC", (P1E, P2E), 2, 2));
    let (g, _, projects) = held(&c2, &versions(&[&c1]), &fs, P1E + DAY);
    assert_eq!((g.renewal_version, projects), (Some(2), L(20)));
    let change = P1E + 10 * DAY;
    fs.push(snap(SubStatus::Active, "PRO", (P1E, P2E), change, 3));
    let (g, _, projects) = held(&c4, &versions(&[&c1, &c2, &c3]), &fs, change + DAY);
    assert_eq!(
        (g.catalog_version, g.renewal_version, projects),
        (Some(3), Some(3), L(300))
    );
}
