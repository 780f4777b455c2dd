//! Adversarial tests of the upgrade offers a denial names (`decide::offers_unlocking`,
//! `Unlock`, `Replaced`, the offer on a lock, `export_policy`) and of their agreement with
//! checkout: the offer named is the cheapest one that unlocks the question given what the
//! subject holds, never one it holds, never one checkout (a purchase, or the change the
//! offer says it is) would refuse, and every offer listed really unlocks it.

#[path = "events/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use support::shipped;
use tollgate::billing::facts::{SubStatus, Subject};
use tollgate::catalog::{Interval, Provider};
use tollgate::checkout::{self, Account, Held, Purchase, Role};
use tollgate::decide::{self, Ask, Unlock, Usage};
use tollgate::{Catalog, Entitlements, Grant, Source, Status, Timestamp};

const NOW: Timestamp = Timestamp(1_800_000_000);
const DAY: i64 = 86_400;
const U: &str = "6f1c1c3e-0000-4000-8000-000000000001";
const O: &str = "6f1c1c3e-0000-4000-8000-0000000000aa";

const EXAMPLES: [&str; 4] = ["vcm-suite", "video-studio", "razorpay-ai", "org-seats"];

/// What checkout says to each listed offer it refuses: "OFFER: why".
fn refusals(c: &Catalog, e: &Entitlements, list: &[Unlock]) -> Vec<String> {
    refusals_named(c, e, list, |u| u.upgrade.offer.clone())
}

/// What checkout says to each listed offer it refuses: "NAME: why", `name` naming the offer.
fn refusals_named(
    c: &Catalog,
    e: &Entitlements,
    list: &[Unlock],
    name: impl Fn(&Unlock) -> String,
) -> Vec<String> {
    list.iter()
        .filter_map(|u| {
            checkout_accepts(c, e, u)
                .err()
                .map(|w| format!("{}: {w}", name(u)))
        })
        .collect()
}

/// Checkout accepts every listed offer.
fn accepts_all(c: &Catalog, e: &Entitlements, list: &[Unlock]) {
    for u in list {
        assert!(checkout_accepts(c, e, u).is_ok(), "{u:?}");
    }
}

/// How a subscription stands now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Active,
    Trialing,
    /// Canceled at its period's end (still counts until then).
    Ending,
    /// Past due, inside the catalog's grace.
    PastDueInGrace,
    /// Past due, its grace over.
    PastDuePastGrace,
    /// Paused a day ago (as the reducer writes it: canceled grants ending at the pause).
    Paused,
}

/// One grant of subscription `sub` (a provider id such as `sub_1`), as the reducer writes it.
fn grant(sub: &str, product: &str, tier: &str, offer: &str, st: St) -> Grant {
    let mut g = Grant {
        id: format!("stripe:{sub}:{product}"),
        product: product.into(),
        tier: tier.into(),
        source: Source::Stripe,
        status: Status::Active,
        valid_from: Timestamp(NOW.0 - 40 * DAY),
        valid_to: Some(Timestamp(NOW.0 + 20 * DAY)),
        past_due_since: None,
        offer: Some(offer.into()),
        source_ref: Some(format!("stripe:{sub}")),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    };
    match st {
        St::Active => {}
        St::Trialing => g.status = Status::Trial,
        St::Ending => g.status = Status::Canceled,
        St::PastDueInGrace => {
            g.status = Status::PastDue;
            g.valid_to = Some(Timestamp(NOW.0 - 3_600));
            g.past_due_since = Some(Timestamp(NOW.0 - 3_600));
        }
        St::PastDuePastGrace => {
            g.status = Status::PastDue;
            g.valid_to = Some(Timestamp(NOW.0 - 30 * DAY));
            g.past_due_since = Some(Timestamp(NOW.0 - 30 * DAY));
        }
        St::Paused => {
            g.status = Status::Canceled;
            g.valid_to = Some(Timestamp(NOW.0 - DAY));
            g.paused_since = Some(Timestamp(NOW.0 - DAY));
        }
    }
    g
}

/// The grants subscription `sub` to `offer` gives (a bundle: on `chosen`, placed as the
/// catalog's one rule places them), the highest tier per product, standing `st`.
fn sub(c: &Catalog, sub: &str, offer: &str, chosen: &[&str], st: St) -> Vec<Grant> {
    let o = c.offer(offer).unwrap();
    let clouds: Vec<String> = chosen.iter().map(|s| s.to_string()).collect();
    c.offer_gives(o, &clouds)
        .into_iter()
        .map(|(p, t)| {
            let tier = c.product(&p).unwrap().tiers[t].clone();
            grant(sub, &p, &tier, offer, st)
        })
        .collect()
}

fn ents(grants: Vec<Vec<Grant>>) -> Entitlements {
    Entitlements::new(grants.into_iter().flatten().collect())
}

/// What a subject holding the one subscription `sub_1` (see [`sub`]) holds.
fn one_sub(c: &Catalog, offer: &str, chosen: &[&str], st: St) -> Entitlements {
    ents(vec![sub(c, "sub_1", offer, chosen, st)])
}

/// The offers that unlock `ask` for `e`, now.
fn unlocking(c: &Catalog, e: &Entitlements, ask: Ask) -> Vec<Unlock> {
    decide::offers_unlocking(c, e, ask, NOW).unwrap()
}

fn access<'a>(product: &'a str, tier: &'a str) -> Ask<'a> {
    Ask::Access { product, tier }
}

/// The store's view of the subject's subscriptions, from its grants (recurring offers only).
fn account(c: &Catalog, e: &Entitlements, org: bool) -> Account {
    let mut by_ref: BTreeMap<String, Vec<&Grant>> = BTreeMap::new();
    for g in &e.grants {
        if let Some(r) = &g.source_ref {
            by_ref.entry(r.clone()).or_default().push(g);
        }
    }
    let mut subscriptions = vec![];
    for (r, gs) in by_ref {
        let first = gs.iter().min_by_key(|g| g.id.clone()).unwrap();
        let Some(offer) = first.offer.as_deref().and_then(|k| c.offer(k)) else {
            continue;
        };
        if offer.price.interval == Interval::OneTime {
            continue;
        }
        let paused = gs.iter().any(|g| g.paused_since.is_some());
        let status = if paused {
            SubStatus::Paused
        } else if gs.iter().any(|g| g.status == Status::PastDue) {
            SubStatus::PastDue
        } else if gs.iter().any(|g| g.status == Status::Trial) {
            SubStatus::Trialing
        } else {
            SubStatus::Active
        };
        subscriptions.push(Held {
            provider: checkout::provider_of(c, offer),
            id: r.split_once(':').map_or(r.as_str(), |x| x.1).to_string(),
            offer: Some(offer.key.clone()),
            status,
            quantity: 1,
            cancel_at_period_end: !paused && gs.iter().all(|g| g.status == Status::Canceled),
            current_period_end: Some(Timestamp(NOW.0 + 20 * DAY)),
            products: gs
                .iter()
                .map(|g| (g.product.clone(), g.tier.clone()))
                .collect(),
        });
    }
    Account {
        subject: if org {
            Subject::org(O)
        } else {
            Subject::user(U)
        },
        role: org.then_some(Role::Owner),
        subscriptions,
        customers: vec![(Provider::Stripe, "cus_1".into())],
        seats_used: 0,
        email: None,
    }
}

fn is_org_catalog(c: &Catalog) -> bool {
    c.offers()
        .iter()
        .all(|o| o.subject == tollgate::catalog::SubjectKind::Organization)
}

/// Does checkout accept the unlock as the dialog lists it: a purchase at checkout, or (when
/// it `replaces` a subscription) the change of that subscription?
fn checkout_accepts(c: &Catalog, e: &Entitlements, u: &Unlock) -> Result<(), String> {
    let a = account(c, e, is_org_catalog(c));
    match &u.replaces {
        None => {
            let p = Purchase {
                offer: u.upgrade.offer.clone(),
                quantity: None,
                clouds: u.clouds.clone(),
                success_url: "https://app.example.com/ok".into(),
                cancel_url: "https://app.example.com/no".into(),
                price: None,
            };
            checkout::checkout(c, &p, &a, NOW)
                .map(|_| ())
                .map_err(|r| format!("purchase refused: {:?} {}", r.code, r.message))
        }
        Some(r) => checkout::change(c, &a, Some(&r.subscription), &u.upgrade.offer, &u.clouds)
            .map(|_| ())
            .map_err(|x| {
                format!(
                    "change of {} refused: {:?} {}",
                    r.subscription, x.code, x.message
                )
            }),
    }
}

fn keys(list: &[Unlock]) -> Vec<&str> {
    list.iter().map(|u| u.upgrade.offer.as_str()).collect()
}

/// Every property of the rule for one subject and one locked-or-not tool; the broken ones as
/// messages.
fn check_tool(
    c: &Catalog,
    who: &str,
    e: &Entitlements,
    tool: &str,
    usage: &Usage,
    out: &mut Vec<String>,
) {
    let t = decide::tool_state(c, e, tool, usage, NOW).unwrap();
    let list = unlocking(c, e, Ask::Tool { tool, usage });
    let tag = format!("{}/{who}/{tool}", c.meta().id);
    if !t.locked {
        if !list.is_empty() {
            out.push(format!(
                "{tag}: unlocked, yet offers listed {:?}",
                keys(&list)
            ));
        }
        return;
    }
    let named = t.decision.upgrade.as_ref().map(|u| u.offer.as_str());
    if list.first().map(|u| u.upgrade.offer.as_str()) != named {
        out.push(format!(
            "{tag}: the lock names {named:?}, the list starts {:?}",
            keys(&list)
        ));
    }
    let mut seen = BTreeSet::new();
    for u in &list {
        let k = u.upgrade.offer.as_str();
        if !seen.insert(k) {
            out.push(format!("{tag}: `{k}` listed twice"));
        }
        let offer = c.offer(k).unwrap();
        if offer.hidden {
            out.push(format!("{tag}: hidden `{k}` listed"));
        }
        if decide::holds_offer(c, e, k, NOW) {
            out.push(format!("{tag}: `{k}` is held already"));
        }
        if u.clouds.len() as u32 != u.choose {
            out.push(format!(
                "{tag}: `{k}` chooses {} but preselects {:?}",
                u.choose, u.clouds
            ));
        }
        let chosen: Vec<&str> = u.clouds.iter().map(String::as_str).collect();
        let mut after = e.grants.clone();
        after.extend(sub(c, "sub_new", k, &chosen, St::Active));
        let unlocked = !decide::tool_state(c, &Entitlements::new(after), tool, usage, NOW)
            .unwrap()
            .locked;
        if !unlocked {
            out.push(format!("{tag}: `{k}` with {chosen:?} leaves it locked"));
        }
        if let Err(why) = checkout_accepts(c, e, u) {
            out.push(format!(
                "{tag}: `{k}` with {chosen:?} (replaces {:?}): {why}",
                u.replaces.as_ref().map(|r| &r.subscription)
            ));
        }
        if let Some(r) = &u.replaces {
            let held = c.offer(&r.offer).unwrap();
            let same = held.price.currency == offer.price.currency
                && held.priced_per_seat() == offer.priced_per_seat();
            let want =
                same.then(|| offer.price.monthly_equivalent() - held.price.monthly_equivalent());
            if r.difference.as_ref().map(|m| m.amount) != want {
                out.push(format!(
                    "{tag}: `{k}` replacing `{}`: difference {:?}, expected {want:?}",
                    r.offer, r.difference
                ));
            }
            if r.per_seat != (same && offer.priced_per_seat()) {
                out.push(format!(
                    "{tag}: `{k}` replacing `{}`: per_seat {}",
                    r.offer, r.per_seat
                ));
            }
        }
    }
    // Cheapest first: the list is sorted by the catalog's own order of offers.
    for w in list.windows(2) {
        let (a, b) = (
            c.offer(&w[0].upgrade.offer).unwrap(),
            c.offer(&w[1].upgrade.offer).unwrap(),
        );
        if c.cheaper(a, b) != std::cmp::Ordering::Less {
            out.push(format!("{tag}: `{}` listed before `{}`", a.key, b.key));
        }
    }
}

/// The subjects of a sweep: nothing, and one subscription to each recurring offer (a
/// bundle on its first eligible products) standing `st`.
fn holders(c: &Catalog, st: St) -> Vec<(String, Entitlements)> {
    let mut out = vec![(String::from("nothing"), Entitlements::default())];
    for o in c
        .offers()
        .iter()
        .filter(|o| o.price.interval != Interval::OneTime && !o.grants.is_empty())
    {
        let eligible: Vec<&str> = c
            .products()
            .iter()
            .filter(|p| c.offer_tiers_on(o, &p.id).1.is_some())
            .map(|p| p.id.as_str())
            .collect();
        let n = c.offer_choices(o) as usize;
        // Two picks per bundle: its first eligible products, and its last ones.
        let mut picks = vec![eligible.iter().copied().take(n).collect::<Vec<_>>()];
        if n > 0 {
            picks.push(eligible.iter().rev().copied().take(n).collect());
        }
        for chosen in picks {
            out.push((
                format!("{}{chosen:?}@{st:?}", o.key),
                one_sub(c, &o.key, &chosen, st),
            ));
        }
    }
    out
}

fn sweep(st: St) -> Vec<String> {
    let mut out = vec![];
    for name in EXAMPLES {
        let c = shipped(name);
        if st == St::PastDueInGrace && c.meta().grace_period_days == 0 {
            // No grace: "in grace" is past it (the past-grace sweep covers it).
            continue;
        }
        let mut usages: Vec<Usage> = vec![BTreeMap::new()];
        // Every limit used up to its top finite value, too.
        let mut used = BTreeMap::new();
        for l in &c.doc.limits {
            let top = l.values.values().filter_map(|v| match v {
                tollgate::LimitValue::Limited(n) => Some(*n),
                _ => None,
            });
            used.insert(l.id.clone(), top.max().unwrap_or(0));
        }
        usages.push(used);
        for (who, e) in holders(&c, st) {
            for usage in &usages {
                for tool in c.tools() {
                    check_tool(&c, &who, &e, &tool.id, usage, &mut out);
                }
            }
        }
    }
    out
}

fn report(failures: Vec<String>) {
    let n = failures.len();
    let shown: Vec<String> = failures.into_iter().take(25).collect();
    assert!(
        n == 0,
        "{n} broken properties, the first ones:\n{}",
        shown.join("\n")
    );
}

#[test]
fn sweep_every_locked_tool_for_active_subscribers() {
    report(sweep(St::Active));
}
#[test]
fn sweep_every_locked_tool_for_trialing_subscribers() {
    report(sweep(St::Trialing));
}
#[test]
fn sweep_every_locked_tool_for_subscribers_ending_at_period_end() {
    report(sweep(St::Ending));
}
#[test]
fn sweep_every_locked_tool_for_past_due_subscribers_in_grace() {
    report(sweep(St::PastDueInGrace));
}
#[test]
fn sweep_every_locked_tool_for_past_due_subscribers_past_grace() {
    report(sweep(St::PastDuePastGrace));
}
#[test]
fn sweep_every_locked_tool_for_paused_subscribers() {
    report(sweep(St::Paused));
}

// ---------------------------------------------------------------------------------------
// Targeted cases.
// ---------------------------------------------------------------------------------------

fn vcm() -> Catalog {
    shipped("vcm-suite")
}

fn file_pro() -> Ask<'static> {
    access("file", "pro")
}

/// A Starter subscriber whose subscription is paused is denied AI tools. Every plan of the
/// suite is left out (a paused subscription is resumed, not bought beside), but the
/// two-cloud bundle (which also gives suite pro) is named, as a purchase: checkout refuses
/// it, since the bundle would bill twice for what the paused subscription gives.
#[test]
fn a_paused_plan_subscriber_is_not_named_a_bundle_checkout_refuses() {
    let c = vcm();
    let e = one_sub(&c, "SUITE_STARTER_MONTHLY", &[], St::Paused);
    let d = decide::can(&c, &e, "use_ai", NOW).unwrap();
    assert_eq!((d.allowed, d.reason), (false, decide::Reason::Paused));
    let list = unlocking(&c, &e, Ask::Capability("use_ai"));
    let refused = refusals(&c, &e, &list);
    assert!(
        refused.is_empty(),
        "listed {:?}, denial names {:?}; checkout refuses:\n{}",
        keys(&list),
        d.upgrade.map(|u| u.offer),
        refused.join("\n")
    );
}

/// The same paused Starter subscriber exports: the refusal's offer (`export_policy`,
/// `cheapest_where`) must be one checkout sells; it names the two-cloud bundle.
#[test]
fn a_paused_subscribers_refused_export_names_no_offer_checkout_refuses() {
    let c = vcm();
    let e = one_sub(&c, "SUITE_STARTER_MONTHLY", &[], St::Paused);
    match decide::export_policy(&c, &e, NOW).unwrap() {
        decide::ExportPolicy::Refused {
            upgrade: Some(u), ..
        } => {
            let offer = c.offer(&u.offer).unwrap();
            let clouds: Vec<String> = c
                .products()
                .iter()
                .filter(|p| c.offer_tiers_on(offer, &p.id).1.is_some())
                .take(c.offer_choices(offer) as usize)
                .map(|p| p.id.clone())
                .collect();
            let as_listed = Unlock {
                upgrade: u.clone(),
                choose: c.offer_choices(offer),
                clouds,
                eligible: vec![],
                replaces: None,
            };
            let r = checkout_accepts(&c, &e, &as_listed);
            assert!(r.is_ok(), "export refused naming `{}`: {r:?}", u.offer);
        }
        other => assert!(
            matches!(other, decide::ExportPolicy::Refused { upgrade: None, .. }),
            "{other:?}"
        ),
    }
}

/// An Enterprise subscriber (Razorpay AI app) whose payment failed and whose grace is over
/// is denied AI generation. The denial names the Premium plans, as purchases: checkout
/// refuses both (a running subscription to `premium`: already subscribed; paying the open
/// invoice restores Enterprise).
#[test]
fn a_past_due_subscriber_past_grace_is_not_named_a_lower_plan_of_its_product() {
    let c = shipped("razorpay-ai");
    let e = one_sub(&c, "ENTERPRISE_MONTHLY", &[], St::PastDuePastGrace);
    let d = decide::can(&c, &e, "ai_generation", NOW).unwrap();
    assert_eq!((d.allowed, d.reason), (false, decide::Reason::GraceEnded));
    let list = unlocking(&c, &e, Ask::Capability("ai_generation"));
    let refused = refusals(&c, &e, &list);
    assert!(
        refused.is_empty(),
        "denial names {:?}; listed {:?}; checkout refuses:\n{}",
        d.upgrade.map(|u| u.offer),
        keys(&list),
        refused.join("\n")
    );
}

/// The same in the Video Studio catalog (no grace): a Studio subscriber past due is denied
/// its dashboard, and the lock names the Creator plan as a purchase checkout refuses.
#[test]
fn a_past_due_studio_subscriber_is_not_named_the_creator_plan_beside_it() {
    let c = shipped("video-studio");
    let e = one_sub(&c, "VIDEO_STUDIO_MONTHLY", &[], St::PastDuePastGrace);
    let usage = Usage::new();
    let t = decide::tool_state(&c, &e, "subscription-dashboard", &usage, NOW).unwrap();
    assert!(t.locked);
    if let Some(u) = &t.decision.upgrade {
        let list = unlocking(
            &c,
            &e,
            Ask::Tool {
                tool: "subscription-dashboard",
                usage: &usage,
            },
        );
        let first = list
            .iter()
            .find(|x| x.upgrade.offer == u.offer)
            .expect("the lock's offer is listed");
        let r = checkout_accepts(&c, &e, first);
        assert!(
            r.is_ok(),
            "the lock names `{}` (replaces {:?}): {r:?}",
            u.offer,
            first.replaces
        );
    }
}

/// A "Pro – All Clouds" subscriber past its grace is denied File Cloud Pro. The two- and
/// three-cloud bundles are listed as purchases: the running subscription already gives all
/// of them, so checkout refuses both (they would bill twice).
#[test]
fn a_past_due_all_clouds_subscriber_is_not_named_a_bundle_inside_its_plan() {
    let c = vcm();
    let e = one_sub(&c, "CLOUD_ALL_PRO_MONTHLY", &[], St::PastDuePastGrace);
    let list = unlocking(&c, &e, file_pro());
    let refused = refusals_named(&c, &e, &list, |u| {
        format!("{} {:?}", u.upgrade.offer, u.clouds)
    });
    assert!(
        refused.is_empty(),
        "listed {:?}; checkout refuses:\n{}",
        keys(&list),
        refused.join("\n")
    );
}

/// A holder of the two-cloud bundle on video and music, past its grace, is denied File
/// Cloud Pro. The three-cloud bundle keeps what the smaller one gave (video and music beside
/// file) and is a change of it, priced as the difference ($120 - $99).
#[test]
fn a_bigger_bundle_keeps_the_clouds_of_a_past_due_bundle_and_replaces_it() {
    let c = vcm();
    let e = one_sub(
        &c,
        "SUITE_PRO_TWO_CLOUDS_MONTHLY",
        &["video", "music"],
        St::PastDuePastGrace,
    );
    let list = unlocking(&c, &e, file_pro());
    let three = list
        .iter()
        .find(|u| u.upgrade.offer == "SUITE_PRO_THREE_CLOUDS_MONTHLY")
        .expect("three clouds listed");
    let got: BTreeSet<&str> = three.clouds.iter().map(String::as_str).collect();
    assert_eq!(got, BTreeSet::from(["file", "video", "music"]), "{three:?}");
    let r = three
        .replaces
        .as_ref()
        .expect("a change of the past-due bundle");
    assert_eq!(
        (r.offer.as_str(), r.difference.as_ref().map(|m| m.amount)),
        ("SUITE_PRO_TWO_CLOUDS_MONTHLY", Some(12000 - 9900))
    );
}

/// The same holder with its bundle running and paid: the three-cloud bundle preselects
/// file, video and music and is a change of it.
#[test]
fn a_bigger_bundle_keeps_the_clouds_of_an_active_bundle() {
    let c = vcm();
    let e = one_sub(
        &c,
        "SUITE_PRO_TWO_CLOUDS_MONTHLY",
        &["video", "music"],
        St::Active,
    );
    let list = unlocking(&c, &e, file_pro());
    assert_eq!(
        list[0].upgrade.offer,
        "SUITE_PRO_THREE_CLOUDS_MONTHLY",
        "{:?}",
        keys(&list)
    );
    assert_eq!(list[0].clouds, ["file", "video", "music"]);
    let r = list[0].replaces.as_ref().expect("a change");
    assert_eq!(
        (
            r.subscription.as_str(),
            r.difference.as_ref().map(|m| m.amount)
        ),
        ("sub_1", Some(2100))
    );
    assert!(checkout_accepts(&c, &e, &list[0]).is_ok());
}

/// Ending at its period's end, the bundle is kept in the bigger one's choice, and the bigger
/// one is bought beside it (no change, nothing billed twice), which checkout sells.
#[test]
fn a_bigger_bundle_beside_an_ending_bundle_is_a_purchase() {
    let c = vcm();
    let e = one_sub(
        &c,
        "SUITE_PRO_TWO_CLOUDS_MONTHLY",
        &["video", "music"],
        St::Ending,
    );
    let list = unlocking(&c, &e, file_pro());
    assert!(
        !keys(&list).contains(&"SUITE_PRO_TWO_CLOUDS_MONTHLY"),
        "the ending bundle is still held: {:?}",
        keys(&list)
    );
    let three = list
        .iter()
        .find(|u| u.upgrade.offer == "SUITE_PRO_THREE_CLOUDS_MONTHLY")
        .unwrap();
    assert_eq!(three.clouds, ["file", "video", "music"]);
    assert_eq!(three.replaces, None);
    for u in &list {
        assert_eq!(u.replaces, None, "{u:?}");
        assert!(checkout_accepts(&c, &e, u).is_ok(), "{u:?}");
    }
}

/// A trialing Starter subscriber: Starter is not offered again, Pro replaces the trial.
#[test]
fn a_trialing_subscriber_is_offered_a_change_of_its_trial() {
    let c = vcm();
    let e = one_sub(&c, "SUITE_STARTER_MONTHLY", &[], St::Trialing);
    let d = decide::can(&c, &e, "use_ai", NOW).unwrap();
    assert_eq!(
        d.upgrade.as_ref().map(|u| u.offer.as_str()),
        Some("SUITE_PRO_MONTHLY")
    );
    let list = unlocking(&c, &e, Ask::Capability("use_ai"));
    assert_eq!(list[0].upgrade.offer, "SUITE_PRO_MONTHLY");
    let r = list[0].replaces.as_ref().expect("a change of the trial");
    assert_eq!(
        (r.offer.as_str(), r.difference.as_ref().map(|m| m.amount)),
        ("SUITE_STARTER_MONTHLY", Some(5900 - 999))
    );
    accepts_all(&c, &e, &list);
    // Workflow runs: Starter's 3 are used; Basic is named, never Starter.
    let usage = Usage::from([("workflow_runs_per_day".to_string(), 3)]);
    let t = decide::tool_state(&c, &e, "workflow-runner", &usage, NOW).unwrap();
    assert_eq!(
        t.decision.upgrade.map(|u| u.offer).as_deref(),
        Some("SUITE_BASIC_MONTHLY")
    );
}

/// Inside its grace a past-due Basic subscriber still holds Basic: Basic is never named,
/// Pro is a change of it.
#[test]
fn a_past_due_subscriber_in_grace_is_offered_a_change() {
    let c = vcm();
    let e = one_sub(&c, "SUITE_BASIC_MONTHLY", &[], St::PastDueInGrace);
    assert_eq!(
        decide::can(&c, &e, "heavy_tools", NOW).unwrap().reason,
        decide::Reason::GracePeriod
    );
    let list = unlocking(&c, &e, Ask::Capability("use_ai"));
    assert!(!keys(&list).contains(&"SUITE_BASIC_MONTHLY"));
    assert_eq!(list[0].upgrade.offer, "SUITE_PRO_MONTHLY");
    assert_eq!(
        list[0].replaces.as_ref().map(|r| r.offer.as_str()),
        Some("SUITE_BASIC_MONTHLY")
    );
    accepts_all(&c, &e, &list);
}

/// A subject holding two subscriptions (Starter and Video Cloud Pro) denied Auto Subtitles
/// (video pro and AI tools): Pro alone unlocks it (video pro is held), as a change of
/// Starter; the two-cloud bundle keeps video and replaces the dearer Video Cloud Pro.
#[test]
fn two_subscriptions_the_cheapest_change_and_the_dearer_one_replaced() {
    let c = vcm();
    let e = ents(vec![
        sub(&c, "sub_s", "SUITE_STARTER_MONTHLY", &[], St::Active),
        sub(&c, "sub_v", "CLOUD_VIDEO_PRO_MONTHLY", &[], St::Active),
    ]);
    let usage = Usage::new();
    let t = decide::tool_state(&c, &e, "auto-subtitles", &usage, NOW).unwrap();
    assert_eq!(
        t.decision.upgrade.map(|u| u.offer).as_deref(),
        Some("SUITE_PRO_MONTHLY")
    );
    let list = unlocking(
        &c,
        &e,
        Ask::Tool {
            tool: "auto-subtitles",
            usage: &usage,
        },
    );
    assert_eq!(
        list[0].replaces.as_ref().map(|r| (
            r.subscription.as_str(),
            r.difference.as_ref().map(|m| m.amount)
        )),
        Some(("sub_s", Some(5900 - 999)))
    );
    let two = list
        .iter()
        .find(|u| u.upgrade.offer == "SUITE_PRO_TWO_CLOUDS_MONTHLY")
        .unwrap();
    assert!(two.clouds.contains(&"video".to_string()), "{two:?}");
    assert_eq!(
        two.replaces.as_ref().map(|r| r.subscription.as_str()),
        Some("sub_v")
    );
    accepts_all(&c, &e, &list);
}

/// A holder of the two-cloud bundle (video, writing) asks for a tool of a cloud outside it:
/// the single cloud is a purchase beside it, the bigger bundles keep video and writing.
#[test]
fn a_bundle_holder_asks_for_a_cloud_outside_it() {
    let c = vcm();
    let e = one_sub(
        &c,
        "SUITE_PRO_TWO_CLOUDS_MONTHLY",
        &["video", "writing"],
        St::Active,
    );
    let usage = Usage::new();
    let t = decide::tool_state(&c, &e, "ai-caption-writer", &usage, NOW).unwrap();
    assert_eq!(
        t.decision.upgrade.map(|u| u.offer).as_deref(),
        Some("CLOUD_CREATION_PRO_MONTHLY")
    );
    let list = unlocking(
        &c,
        &e,
        Ask::Tool {
            tool: "ai-caption-writer",
            usage: &usage,
        },
    );
    assert_eq!(list[0].replaces, None);
    let three = list
        .iter()
        .find(|u| u.upgrade.offer == "SUITE_PRO_THREE_CLOUDS_MONTHLY")
        .unwrap();
    assert_eq!(three.clouds, ["creation", "video", "writing"]);
    assert!(three.replaces.is_some());
    accepts_all(&c, &e, &list);
}

const MIXED: &str = r#"
[catalog]
id = "mixed"
name = "Mixed"
version = "1"
currency = "usd"
grace_period_days = 3

[[products]]
id = "app"
tiers = ["free", "basic", "pro"]
default_tier = "free"

[[offers]]
key = "BASIC_INR"
label = "Basic (India)"
price = { amount = 99900, currency = "inr", interval = "month" }
grants = [{ product = "app", tier = "basic" }]

[[offers]]
key = "PRO_USD"
label = "Pro"
price = { amount = 9900, currency = "usd", interval = "month" }
grants = [{ product = "app", tier = "pro" }]

[[offers]]
key = "PRO_INR"
label = "Pro (India)"
price = { amount = 799900, currency = "inr", interval = "month" }
grants = [{ product = "app", tier = "pro" }]

[[offers]]
key = "PRO_PROMO"
label = "Pro (promotion)"
price = { amount = 100, currency = "usd", interval = "month" }
grants = [{ product = "app", tier = "pro" }]
hidden = true

[[offers]]
key = "LEGACY_BASIC"
label = "Basic (legacy)"
price = { amount = 500, currency = "usd", interval = "month" }
grants = [{ product = "app", tier = "basic" }]
hidden = true

[[offers]]
key = "LIFETIME_BASIC"
label = "Basic for life"
price = { amount = 20000, currency = "usd", interval = "one_time" }
grants = [{ product = "app", tier = "basic" }]

[[offers]]
key = "BASIC_USD"
label = "Basic"
price = { amount = 2900, currency = "usd", interval = "month" }
grants = [{ product = "app", tier = "basic" }]
"#;

/// A subscriber of the rupee Basic plan asks for Pro. A subscription's currency never
/// changes (checkout refuses a change across currencies), and a second plan of `app` beside
/// it is refused too: the dollar Pro can be neither bought nor moved to. The rupee Pro can
/// (a change, priced as the difference in rupees): it is the offer to name.
#[test]
fn a_rupee_subscriber_is_named_the_rupee_change_not_a_dollar_plan_checkout_refuses() {
    let c = Catalog::from_toml(MIXED).unwrap();
    let e = one_sub(&c, "BASIC_INR", &[], St::Active);
    let list = unlocking(&c, &e, access("app", "pro"));
    let d = decide::has_access(&c, &e, "app", "pro", NOW).unwrap();
    let refused = refusals_named(&c, &e, &list, |u| {
        format!("{} (replaces {:?})", u.upgrade.offer, u.replaces)
    });
    assert_eq!(
        d.upgrade.as_ref().map(|u| u.offer.as_str()),
        Some("PRO_INR"),
        "listed {:?}; checkout refuses:\n{}",
        keys(&list),
        refused.join("\n")
    );
    assert!(
        refused.is_empty(),
        "listed {:?}; checkout refuses:\n{}",
        keys(&list),
        refused.join("\n")
    );
}

/// Hidden offers are never named, however cheap; a hidden legacy plan held is replaced by a
/// visible one, priced as the difference.
#[test]
fn hidden_offers_are_never_named_and_a_hidden_plan_is_replaced() {
    let c = Catalog::from_toml(MIXED).unwrap();
    let none = Entitlements::default();
    let list = unlocking(&c, &none, access("app", "pro"));
    assert_eq!(keys(&list), ["PRO_USD", "PRO_INR"]);
    let e = one_sub(&c, "LEGACY_BASIC", &[], St::Active);
    let list = unlocking(&c, &e, access("app", "pro"));
    assert_eq!(list[0].upgrade.offer, "PRO_USD");
    let r = list[0]
        .replaces
        .as_ref()
        .expect("a change of the legacy plan");
    assert_eq!(
        (r.offer.as_str(), r.difference.as_ref().map(|m| m.amount)),
        ("LEGACY_BASIC", Some(9900 - 500))
    );
    assert!(checkout_accepts(&c, &e, &list[0]).is_ok());
}

/// A one-time purchase (Basic for life) beside a Basic subscription: Pro replaces the
/// subscription, never the purchase; with the purchase alone, Pro is bought.
#[test]
fn a_one_time_purchase_beside_a_subscription_is_never_replaced() {
    let c = Catalog::from_toml(MIXED).unwrap();
    let life = Grant {
        id: "stripe:cs_1:app".into(),
        source_ref: Some("stripe:cs_1".into()),
        valid_to: None,
        ..grant("cs_1", "app", "basic", "LIFETIME_BASIC", St::Active)
    };
    let e = ents(vec![
        vec![life.clone()],
        sub(&c, "sub_1", "BASIC_USD", &[], St::Active),
    ]);
    let list = unlocking(&c, &e, access("app", "pro"));
    assert_eq!(list[0].upgrade.offer, "PRO_USD");
    let r = list[0]
        .replaces
        .as_ref()
        .expect("a change of the subscription");
    assert_eq!(
        (
            r.subscription.as_str(),
            r.difference.as_ref().map(|m| m.amount)
        ),
        ("sub_1", Some(9900 - 2900))
    );
    assert!(checkout_accepts(&c, &e, &list[0]).is_ok());
    let alone = Entitlements::new(vec![life]);
    let list = unlocking(&c, &alone, access("app", "pro"));
    assert_eq!(list[0].upgrade.offer, "PRO_USD");
    assert_eq!(list[0].replaces, None);
    assert!(checkout_accepts(&c, &alone, &list[0]).is_ok());
}

fn ties(order: &[&str]) -> Catalog {
    let offers: std::collections::HashMap<&str, &str> = [
        (
            "B_PRO",
            "price = { amount = 1000, currency = \"usd\", interval = \"month\" }",
        ),
        (
            "A_PRO",
            "price = { amount = 1000, currency = \"usd\", interval = \"month\" }",
        ),
        (
            "C_PRO_YEARLY",
            "price = { amount = 12000, currency = \"usd\", interval = \"year\" }",
        ),
        (
            "AA_PRO_YEARLY",
            "price = { amount = 11990, currency = \"usd\", interval = \"year\" }",
        ),
    ]
    .into();
    let mut src = String::from("[catalog]\nid = \"ties\"\nname = \"Ties\"\nversion = \"1\"\ncurrency = \"usd\"\n\n[[products]]\nid = \"app\"\ntiers = [\"free\", \"pro\"]\ndefault_tier = \"free\"\n\n");
    for k in order {
        src.push_str(&format!("[[offers]]\nkey = \"{k}\"\nlabel = \"{k}\"\n{}\ngrants = [{{ product = \"app\", tier = \"pro\" }}]\n\n", offers[k]));
    }
    Catalog::from_toml(&src).unwrap()
}

/// Offers at the same monthly price (a yearly price's twelfth, rounded up, included) are
/// ranked by key, whatever order the catalog lists them in.
#[test]
fn equal_prices_rank_by_key_whatever_the_catalog_order() {
    let ask = access("app", "pro");
    let none = Entitlements::default();
    let mut seen = BTreeSet::new();
    for order in [
        ["B_PRO", "A_PRO", "C_PRO_YEARLY", "AA_PRO_YEARLY"],
        ["C_PRO_YEARLY", "AA_PRO_YEARLY", "A_PRO", "B_PRO"],
        ["A_PRO", "C_PRO_YEARLY", "B_PRO", "AA_PRO_YEARLY"],
    ] {
        let c = ties(&order);
        let list = unlocking(&c, &none, ask);
        let named = decide::has_access(&c, &none, "app", "pro", NOW)
            .unwrap()
            .upgrade
            .map(|u| u.offer);
        assert_eq!(named.as_deref(), Some(list[0].upgrade.offer.as_str()));
        seen.insert(keys(&list).join(","));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["AA_PRO_YEARLY,A_PRO,B_PRO,C_PRO_YEARLY"]
    );
}

const SEATS: &str = r#"
[catalog]
id = "seats"
name = "Seats"
version = "1"
currency = "cad"

[[products]]
id = "org"
tiers = ["FREE", "TEAM", "BIZ", "ENT"]
default_tier = "FREE"

[[offers]]
key = "TEAM_FLAT"
label = "Team (10 seats)"
price = { amount = 5000, currency = "cad", interval = "month" }
subject = "organization"
grants = [{ product = "org", tier = "TEAM" }]
seats = { included = 10, per_quantity = false }

[[offers]]
key = "BIZ_SEAT"
label = "Business (per seat)"
price = { amount = 1000, currency = "cad", interval = "month" }
subject = "organization"
grants = [{ product = "org", tier = "BIZ" }]

[[offers]]
key = "ENT_SEAT_YEARLY"
label = "Enterprise (per seat, yearly)"
price = { amount = 24000, currency = "cad", interval = "year" }
subject = "organization"
grants = [{ product = "org", tier = "ENT" }]
seats = { included = 1, per_quantity = true }

[[offers]]
key = "ENT_FLAT"
label = "Enterprise (flat)"
price = { amount = 90000, currency = "cad", interval = "month" }
subject = "organization"
grants = [{ product = "org", tier = "ENT" }]
seats = { included = 500, per_quantity = false }
"#;

/// A flat plan moved to a per-seat one: no difference (a seat's price is not comparable with
/// the whole), nothing said per seat. A per-seat plan (an organization's offer without
/// `seats`) moved to another per-seat one: a seat's difference, said per seat; to a flat
/// one: no difference.
#[test]
fn per_seat_and_whole_prices_are_never_subtracted() {
    let c = Catalog::from_toml(SEATS).unwrap();
    let e = one_sub(&c, "TEAM_FLAT", &[], St::Active);
    let list = unlocking(&c, &e, access("org", "BIZ"));
    let biz = list.iter().find(|u| u.upgrade.offer == "BIZ_SEAT").unwrap();
    let r = biz.replaces.as_ref().unwrap();
    assert_eq!((r.difference.clone(), r.per_seat), (None, false), "{r:?}");
    let e = one_sub(&c, "BIZ_SEAT", &[], St::Active);
    let list = unlocking(&c, &e, access("org", "ENT"));
    assert_eq!(keys(&list), ["ENT_SEAT_YEARLY", "ENT_FLAT"]);
    let r = list[0].replaces.as_ref().unwrap();
    assert_eq!(
        (r.difference.as_ref().map(|m| m.amount), r.per_seat),
        (Some(2000 - 1000), true),
        "{r:?}"
    );
    let r = list[1].replaces.as_ref().unwrap();
    assert_eq!((r.difference.clone(), r.per_seat), (None, false), "{r:?}");
    accepts_all(&c, &e, &list);
}

// ---------------------------------------------------------------------------------------
// Random holdings (subscriptions that count now: active, trialing, ending, past due in grace).
// ---------------------------------------------------------------------------------------

fn recurring_offers(c: &Catalog) -> Vec<String> {
    c.offers()
        .iter()
        .filter(|o| o.price.interval != Interval::OneTime && !o.grants.is_empty())
        .map(|o| o.key.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// Up to three subscriptions of the VCM Suite, each to any recurring offer (a bundle on
    /// any clouds), each counting now: every locked tool's list keeps the rule.
    #[test]
    fn random_counting_holdings_keep_the_rule(
        subs in proptest::collection::vec((0usize..100, proptest::collection::vec(0usize..10, 3), 0usize..4), 0..=3),
        tool in 0usize..30,
        runs in 0u64..5,
    ) {
        let c = vcm();
        let offers = recurring_offers(&c);
        let clouds: Vec<&str> = c.products().iter().map(|p| p.id.as_str()).filter(|p| *p != "suite").collect();
        let states = [St::Active, St::Trialing, St::Ending, St::PastDueInGrace];
        let mut grants = vec![];
        let mut taken = BTreeSet::new();
        for (i, (o, picks, st)) in subs.iter().enumerate() {
            let key = &offers[o % offers.len()];
            if !taken.insert(key.clone()) {
                continue;
            }
            let n = c.offer_choices(c.offer(key).unwrap()) as usize;
            let mut chosen: Vec<&str> = vec![];
            for p in picks.iter().copied().chain(0..10usize) {
                if chosen.len() < n && !chosen.contains(&clouds[p % clouds.len()]) {
                    chosen.push(clouds[p % clouds.len()]);
                }
            }
            grants.push(sub(&c, &format!("sub_{i}"), key, &chosen, states[*st]));
        }
        let e = ents(grants);
        let usage = Usage::from([("workflow_runs_per_day".to_string(), runs)]);
        let t = &c.tools()[tool % c.tools().len()];
        let mut out = vec![];
        check_tool(&c, "random", &e, &t.id, &usage, &mut out);
        prop_assert!(out.is_empty(), "{:?}\n{}", e.grants.iter().map(|g| (&g.id, &g.tier, g.status)).collect::<Vec<_>>(), out.join("\n"));
    }
}
