//! The offer a denial shows unlocks what was denied for this subject (every requirement
//! of a tool, never an offer it already holds), and checkout sells no second plan of a
//! product already subscribed.

use std::collections::BTreeMap;

use tollgate::billing::facts::{SubStatus, Subject};
use tollgate::catalog::Provider;
use tollgate::checkout::{self, Account, Held, Purchase};
use tollgate::decide::{self, Usage};
use tollgate::{Catalog, Entitlements, Grant, Source, Status, Timestamp};

fn vcm() -> Catalog {
    Catalog::from_toml(include_str!("../catalogs/vcm-suite.toml")).unwrap()
}
fn org_cat() -> Catalog {
    Catalog::from_toml(include_str!("../catalogs/org-seats.toml")).unwrap()
}

const NOW: Timestamp = Timestamp(1_800_000_000);
const U: &str = "6f1c1c3e-0000-4000-8000-000000000001";
const O: &str = "6f1c1c3e-0000-4000-8000-0000000000aa";

fn grant(id: &str, product: &str, tier: &str, offer: &str) -> Grant {
    Grant {
        id: id.into(),
        product: product.into(),
        tier: tier.into(),
        source: Source::Stripe,
        status: Status::Active,
        valid_from: Timestamp(NOW.0 - 86_400),
        valid_to: Some(Timestamp(NOW.0 + 20 * 86_400)),
        past_due_since: None,
        offer: Some(offer.into()),
        source_ref: Some("sub_1".into()),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

/// The grants an offer gives (bundles: on the products named in `chosen`).
fn grants_of(c: &Catalog, offer: &str, chosen: &[&str]) -> Vec<Grant> {
    let o = c.offer(offer).unwrap();
    let mut out = vec![];
    for (i, g) in o.grants.iter().enumerate() {
        let products: Vec<String> = match (&g.product, g.all_products, g.choose) {
            (Some(p), _, _) => vec![p.clone()],
            (None, true, _) => c.products().iter().filter(|p| p.tiers.contains(&g.tier)).map(|p| p.id.clone()).collect(),
            _ => chosen.iter().map(|s| s.to_string()).collect(),
        };
        for p in products {
            out.push(grant(&format!("stripe:sub_1:{i}:{p}"), &p, &g.tier, offer));
        }
    }
    out
}

fn user() -> Account {
    Account { subject: Subject::user(U), role: None, subscriptions: vec![], customers: vec![], seats_used: 0, email: None }
}
fn buy(offer: &str) -> Purchase {
    Purchase {
        offer: offer.into(),
        quantity: None,
        clouds: vec![],
        success_url: "https://app.example.com/ok".into(),
        cancel_url: "https://app.example.com/no".into(),
        price: None,
    }
}
fn live(offer: &str) -> Held {
    Held {
        provider: Provider::Stripe,
        id: "sub_1".into(),
        offer: Some(offer.into()),
        status: SubStatus::Active,
        quantity: 1,
        cancel_at_period_end: false,
        current_period_end: Some(Timestamp(NOW.0 + 20 * 86_400)),
        products: vec![],
    }
}

/// A tool that needs a cloud's tier and a plan capability: the offer on the lock is the
/// cheapest that meets both (a two-cloud bundle gives video pro and suite pro), not the
/// cheapest for the first (Video Cloud Pro alone gives no `use_ai` and leaves it locked).
#[test]
fn a_tools_upgrade_unlocks_the_tool() {
    let c = vcm();
    let usage: Usage = BTreeMap::new();
    let none = Entitlements::default();
    for tool in ["auto-subtitles", "video-upscaler", "ai-caption-writer"] {
        let t = decide::tool_state(&c, &none, tool, &usage, NOW).unwrap();
        assert!(t.locked);
        let offer = t.decision.upgrade.expect("an upgrade is offered").offer;
        let bought = Entitlements::new(grants_of(&c, &offer, &["video", "creation"]));
        let after = decide::tool_state(&c, &bought, tool, &usage, NOW).unwrap();
        assert!(!after.locked, "`{tool}`: the offered upgrade `{offer}` leaves it locked ({:?})", after.decision.reason);
    }
}

/// A subscriber of the two-cloud bundle (video + writing) denied File Cloud Pro is shown
/// an offer it can have, not the bundle it already holds: the three-cloud bundle, which
/// its subscription moves to (a change; checkout would bill both bundles for video and
/// writing, so it refuses and says so).
#[test]
fn the_cheapest_upgrade_is_not_an_offer_the_subject_already_holds() {
    let c = vcm();
    let ents = Entitlements::new(grants_of(&c, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &["video", "writing"]));
    let d = decide::has_access(&c, &ents, "file", "pro", NOW).unwrap();
    assert!(!d.allowed);
    let offer = d.upgrade.expect("an upgrade").offer;
    assert_eq!(offer, "SUITE_PRO_THREE_CLOUDS_MONTHLY");
    // Following the advice is possible: a change of the running bundle, not a second one.
    let mut a = user();
    a.subscriptions.push(Held {
        products: [("suite", "pro"), ("video", "pro"), ("writing", "pro")].map(|(p, t)| (p.into(), t.into())).to_vec(),
        ..live("SUITE_PRO_TWO_CLOUDS_MONTHLY")
    });
    let clouds: Vec<String> = ["file", "video", "writing"].map(String::from).to_vec();
    let p = Purchase { clouds: clouds.clone(), ..buy(&offer) };
    let r = checkout::checkout(&c, &p, &a, NOW).expect_err("both bundles would bill video and writing");
    assert_eq!(r.code, checkout::RefusalCode::AlreadySubscribed);
    assert!(r.message.contains("/v1/subscriptions/change"), "{}", r.message);
    let ch = checkout::change(&c, &a, None, &offer, &clouds).expect("the bundle moves to the bigger one");
    assert!(ch.upgrade, "a higher price: now, prorated");
    // The dialog's list says so: the offer replaces the running bundle, for the difference.
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Access { product: "file", tier: "pro" }, NOW).unwrap();
    let first = &list[0];
    assert_eq!(first.upgrade.offer, offer);
    let r = first.replaces.as_ref().expect("a change of the running bundle");
    assert_eq!((r.subscription.as_str(), r.offer.as_str()), ("sub_1", "SUITE_PRO_TWO_CLOUDS_MONTHLY"));
    assert_eq!(r.difference.as_ref().map(|m| (m.amount, m.currency.as_str())), Some((12000 - 9900, "usd")));
    // An offer that leaves part of the bundle out replaces nothing (a purchase beside it).
    assert!(list.iter().filter(|u| u.upgrade.offer == "CLOUD_ALL_PRO_MONTHLY").all(|u| u.replaces.is_some()));
    let nothing = decide::offers_unlocking(&c, &Entitlements::default(), decide::Ask::Access { product: "file", tier: "pro" }, NOW).unwrap();
    assert!(nothing.iter().all(|u| u.replaces.is_none()), "nothing held, nothing replaced");
}

/// A bundle bought beside a running subscription it holds wholly (the Pro plan inside a
/// two-cloud bundle), or that holds it wholly (a two-cloud bundle beside all clouds), would
/// bill twice for the same thing: checkout sends the subscription to a change. A bundle
/// that only shares some of it (Video Cloud Pro beside a bundle on file and music) sells.
#[test]
fn checkout_sends_a_subscription_a_bundle_would_bill_twice_to_a_change() {
    let c = vcm();
    let two = |clouds: &[&str]| Purchase { clouds: clouds.iter().map(|s| s.to_string()).collect(), ..buy("SUITE_PRO_TWO_CLOUDS_MONTHLY") };
    let holding = |offer: &str, products: &[(&str, &str)]| {
        let mut a = user();
        a.subscriptions.push(Held { products: products.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect(), ..live(offer) });
        a
    };
    let plan = holding("SUITE_PRO_MONTHLY", &[("suite", "pro")]);
    assert_eq!(checkout::checkout(&c, &two(&["video", "writing"]), &plan, NOW).unwrap_err().code, checkout::RefusalCode::AlreadySubscribed);
    assert!(checkout::change(&c, &plan, None, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &["video".into(), "writing".into()]).is_ok());
    let all: Vec<(&str, &str)> = c.products().iter().filter(|p| p.tiers.iter().any(|t| t == "pro")).map(|p| (p.id.as_str(), "pro")).collect();
    let everything = holding("CLOUD_ALL_PRO_MONTHLY", &all);
    assert_eq!(checkout::checkout(&c, &two(&["file", "music"]), &everything, NOW).unwrap_err().code, checkout::RefusalCode::AlreadySubscribed);
    let video = holding("CLOUD_VIDEO_PRO_MONTHLY", &[("video", "pro")]);
    assert_eq!(checkout::checkout(&c, &two(&["video", "writing"]), &video, NOW).unwrap_err().code, checkout::RefusalCode::AlreadySubscribed);
    assert!(checkout::checkout(&c, &two(&["file", "music"]), &video, NOW).is_ok(), "nothing billed twice");
    // Ending at its period's end, the subscription is no obstacle.
    let mut ending = plan.clone();
    ending.subscriptions[0].cancel_at_period_end = true;
    assert!(checkout::checkout(&c, &two(&["video", "writing"]), &ending, NOW).is_ok());
}

/// A Starter subscriber buying Pro at `POST /v1/checkout` would get a second, full-price
/// subscription of the same product beside Starter (only the higher tier counts, no
/// proration): checkout sends a running subscriber of the product to the plan change.
#[test]
fn checkout_refuses_a_second_plan_of_a_product_already_subscribed() {
    let c = vcm();
    let mut a = user();
    a.subscriptions.push(live("SUITE_STARTER_MONTHLY"));
    let r = checkout::checkout(&c, &buy("SUITE_PRO_MONTHLY"), &a, NOW);
    assert!(r.is_err(), "a second suite subscription was sold beside a live one: {:?}", r.map(|c| c.path));
}

/// A bundle subscriber buys a single cloud the bundle does not hold: the products its
/// grants give now decide, not every cloud the bundle could have been bought with. A plan
/// of a cloud it does hold is still a second subscription of it.
#[test]
fn a_bundle_subscriber_buys_a_cloud_outside_its_chosen_ones() {
    let c = vcm();
    let mut a = user();
    a.subscriptions.push(Held {
        products: [("creation", "pro"), ("suite", "pro"), ("writing", "pro")].map(|(p, t)| (p.into(), t.into())).to_vec(),
        ..live("SUITE_PRO_TWO_CLOUDS_MONTHLY")
    });
    let r = checkout::checkout(&c, &buy("CLOUD_VIDEO_PRO_MONTHLY"), &a, NOW);
    assert!(r.is_ok(), "Video Cloud was refused beside a Creation and Writing bundle: {:?}", r.err());
    let r = checkout::checkout(&c, &buy("CLOUD_WRITING_PRO_MONTHLY"), &a, NOW).expect_err("writing is held");
    assert_eq!(r.code, checkout::RefusalCode::AlreadySubscribed);
    assert!(r.message.contains("`writing`"), "{}", r.message);
    // Not yet written (no grants): every cloud the bundle may give counts as held.
    a.subscriptions[0].products.clear();
    assert!(checkout::checkout(&c, &buy("CLOUD_VIDEO_PRO_MONTHLY"), &a, NOW).is_err());
}

/// The same for an organization (one plan subscription per organization): an owner on
/// Professional buying Business is sent to the plan change.
#[test]
fn an_organization_gets_one_plan_subscription() {
    let c = org_cat();
    let a = Account {
        subject: Subject::org(O),
        role: Some(checkout::Role::Owner),
        subscriptions: vec![Held { quantity: 5, ..live("ORG_PROFESSIONAL_MONTHLY") }],
        customers: vec![(Provider::Stripe, "cus_1".into())],
        seats_used: 5,
        email: None,
    };
    let mut p = buy("ORG_BUSINESS_MONTHLY");
    p.quantity = Some(5);
    let r = checkout::checkout(&c, &p, &a, NOW);
    assert!(r.is_err(), "a second organization plan was sold beside a live one");
}

/// An organization on Professional (CA$25.00 a seat a month) asking for Business is offered
/// the change of its subscription, priced as a seat's difference (CA$20.00 a seat), said to
/// be a seat's: the subscription pays it once for each of its seats.
#[test]
fn an_organizations_change_is_priced_per_seat() {
    let c = org_cat();
    let ents = Entitlements::new(grants_of(&c, "ORG_PROFESSIONAL_MONTHLY", &[]));
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Access { product: "org", tier: "BUSINESS" }, NOW).unwrap();
    let monthly = list.iter().find(|u| u.upgrade.offer == "ORG_BUSINESS_MONTHLY").expect("Business monthly is offered");
    let r = monthly.replaces.as_ref().expect("a change of the running plan");
    assert_eq!(r.offer, "ORG_PROFESSIONAL_MONTHLY");
    assert_eq!(r.difference.as_ref().map(|m| (m.amount, m.currency.as_str())), Some((4500 - 2500, "cad")));
    assert!(r.per_seat, "the difference is a seat's: {r:?}");
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["per_seat"], true, "{json}");
    assert!(list.iter().filter_map(|u| u.replaces.as_ref()).all(|r| r.per_seat), "every organization plan is a seat's: {list:?}");
    // A user's change (a price for the whole subscription) says nothing of seats.
    let v = vcm();
    let ents = Entitlements::new(grants_of(&v, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &["video", "writing"]));
    let list = decide::offers_unlocking(&v, &ents, decide::Ask::Access { product: "file", tier: "pro" }, NOW).unwrap();
    let r = list[0].replaces.as_ref().expect("a change");
    assert!(!r.per_seat && serde_json::to_value(r).unwrap().get("per_seat").is_none());
}

/// A subscription that ends at its period's end is no obstacle: the next plan is bought at
/// checkout (a Razorpay cancellation cannot be undone, so no change of it is possible).
#[test]
fn a_plan_is_bought_beside_a_subscription_ending_at_its_period_end() {
    let c = vcm();
    let mut a = user();
    a.subscriptions.push(Held { cancel_at_period_end: true, ..live("SUITE_STARTER_MONTHLY") });
    assert!(checkout::checkout(&c, &buy("SUITE_PRO_MONTHLY"), &a, NOW).is_ok());
}

/// Every example catalog, for a subject with nothing and for a holder of each offer: the
/// offers listed for a locked tool start with the one its lock names, none is held
/// already, and each, bought with the products it preselects, unlocks the tool.
#[test]
fn every_offer_listed_for_a_locked_tool_unlocks_it() {
    for name in ["vcm-suite", "video-studio", "razorpay-ai", "org-seats"] {
        let path = format!("{}/catalogs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let c = Catalog::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let usage: Usage = BTreeMap::new();
        let mut subjects = vec![(String::from("nothing"), Entitlements::default())];
        for o in c.offers() {
            let products: Vec<&str> = c.products().iter().map(|p| p.id.as_str()).collect();
            let chosen: Vec<&str> = products.iter().copied().take(c.offer_choices(o) as usize).collect();
            subjects.push((o.key.clone(), Entitlements::new(grants_of(&c, &o.key, &chosen))));
        }
        for (who, ents) in &subjects {
            for tool in c.tools() {
                let t = decide::tool_state(&c, ents, &tool.id, &usage, NOW).unwrap();
                let list = decide::offers_unlocking(&c, ents, decide::Ask::Tool { tool: &tool.id, usage: &usage }, NOW).unwrap();
                if !t.locked {
                    assert!(list.is_empty(), "{name}/{who}/{}: unlocked, yet offers listed", tool.id);
                    continue;
                }
                assert_eq!(
                    list.first().map(|u| u.upgrade.offer.clone()),
                    t.decision.upgrade.as_ref().map(|u| u.offer.clone()),
                    "{name}/{who}/{}: the lock names the first offer listed",
                    tool.id
                );
                for u in &list {
                    assert_ne!(&u.upgrade.offer, who, "{name}: `{who}` is offered what it holds");
                    let clouds: Vec<&str> = u.clouds.iter().map(String::as_str).collect();
                    let mut grants = ents.grants.clone();
                    grants.extend(grants_of(&c, &u.upgrade.offer, &clouds));
                    let after = decide::tool_state(&c, &Entitlements::new(grants), &tool.id, &usage, NOW).unwrap();
                    assert!(!after.locked, "{name}/{who}/{}: `{}` with {clouds:?} leaves it locked", tool.id, u.upgrade.offer);
                }
            }
        }
    }
}

/// The two-cloud bundle's holder denied File Cloud Pro: the bundle it holds is not
/// listed, and a bundle listed preselects File Cloud.
#[test]
fn the_offers_listed_leave_out_what_is_held() {
    let c = vcm();
    let ents = Entitlements::new(grants_of(&c, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &["video", "writing"]));
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Access { product: "file", tier: "pro" }, NOW).unwrap();
    let keys: Vec<&str> = list.iter().map(|u| u.upgrade.offer.as_str()).collect();
    assert!(!keys.contains(&"SUITE_PRO_TWO_CLOUDS_MONTHLY"), "{keys:?}");
    assert_eq!(Some(keys[0]), decide::has_access(&c, &ents, "file", "pro", NOW).unwrap().upgrade.as_ref().map(|u| u.offer.as_str()));
    for u in list.iter().filter(|u| u.choose > 0) {
        assert_eq!(u.clouds.first().map(String::as_str), Some("file"), "{u:?}");
        assert_eq!(u.clouds.len() as u32, u.choose, "{u:?}");
    }
    assert!(decide::offers_unlocking(&c, &ents, decide::Ask::Access { product: "video", tier: "pro" }, NOW).unwrap().is_empty());
    assert!(matches!(
        decide::offers_unlocking(&c, &ents, decide::Ask::Access { product: "nope", tier: "pro" }, NOW),
        Err(decide::DecideError::UnknownProduct(_))
    ));
}

const PICK_ONE_EXPORTS: &str = r#"
[catalog]
id = "exports"
name = "Exports"
version = "1"
currency = "usd"
grace_period_days = 0

[[products]]
id = "suite"
tiers = ["free", "starter", "basic", "pro"]
default_tier = "free"

[[products]]
id = "extra"
tiers = ["free", "pro"]
default_tier = "free"

[[offers]]
key = "PICK_ONE"
label = "Pick one"
price = { amount = 500, currency = "usd", interval = "month" }
grants = [{ choose = 1, from = ["suite", "extra"], tier = "pro" }]

[[offers]]
key = "SUITE_BASIC"
label = "Basic"
price = { amount = 2900, currency = "usd", interval = "month" }
grants = [{ product = "suite", tier = "basic" }]

[[capabilities]]
id = "export_full_res"
product = "suite"
min_tier = "basic"

[[capabilities]]
id = "watermark_exports"
product = "suite"
tiers = ["starter"]
"#;

/// A subscriber of the "Pick one" bundle who picked `extra` tries to export: the refusal
/// names Basic, as `can(export_full_res)` does, never "Pick one", the bundle it holds
/// (checkout would refuse it: already subscribed).
#[test]
fn a_refused_export_does_not_name_an_offer_the_subject_holds() {
    let c = Catalog::from_toml(PICK_ONE_EXPORTS).unwrap();
    let ents = Entitlements::new(vec![grant("stripe:sub_1:extra", "extra", "pro", "PICK_ONE")]);
    let can = decide::can(&c, &ents, "export_full_res", NOW).unwrap();
    assert_eq!(can.upgrade.as_ref().map(|u| u.offer.as_str()), Some("SUITE_BASIC"));
    match decide::export_policy(&c, &ents, NOW).unwrap() {
        decide::ExportPolicy::Refused { upgrade, .. } => assert_eq!(upgrade.map(|u| u.offer).as_deref(), Some("SUITE_BASIC")),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A Starter subscriber who canceled at the period's end is denied AI tools: Pro is listed
/// as a purchase, which checkout sells beside the ending subscription, not as replacing it
/// (a change, "both would be billed"): Starter bills nothing more.
#[test]
fn a_subscription_ending_at_its_period_end_is_not_replaced() {
    let c = vcm();
    let ents = Entitlements::new(vec![Grant { status: Status::Canceled, ..grant("stripe:sub_1:suite", "suite", "starter", "SUITE_STARTER_MONTHLY") }]);
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Capability("use_ai"), NOW).unwrap();
    let first = list.first().expect("an offer unlocks AI tools");
    assert_eq!(first.upgrade.offer, "SUITE_PRO_MONTHLY");
    assert_eq!(first.replaces, None);
    let mut a = user();
    a.subscriptions.push(Held { cancel_at_period_end: true, ..live("SUITE_STARTER_MONTHLY") });
    assert!(checkout::checkout(&c, &buy(&first.upgrade.offer), &a, NOW).is_ok(), "checkout sells it beside");
    // Renewing, the same subscription is replaced: Pro is a change of it.
    let renewing = Entitlements::new(vec![grant("stripe:sub_1:suite", "suite", "starter", "SUITE_STARTER_MONTHLY")]);
    let list = decide::offers_unlocking(&c, &renewing, decide::Ask::Capability("use_ai"), NOW).unwrap();
    assert_eq!(list[0].replaces.as_ref().map(|r| r.offer.as_str()), Some("SUITE_STARTER_MONTHLY"));
}

/// A holder of two single-cloud subscriptions (Video Cloud Pro and Writing Cloud Pro, the
/// same price) denied File Cloud Pro sees "Pro – All Clouds" as replacing one of them:
/// the same one whatever order the store lists the grants in (at one price, the smaller
/// subscription id).
#[test]
fn the_subscription_an_offer_replaces_does_not_depend_on_grant_order() {
    let c = vcm();
    let v = Grant { source_ref: Some("stripe:sub_v".into()), ..grant("stripe:sub_v:video", "video", "pro", "CLOUD_VIDEO_PRO_MONTHLY") };
    let w = Grant { source_ref: Some("stripe:sub_w".into()), ..grant("stripe:sub_w:writing", "writing", "pro", "CLOUD_WRITING_PRO_MONTHLY") };
    let replaced_by_all = |grants: Vec<Grant>| {
        decide::offers_unlocking(&c, &Entitlements::new(grants), decide::Ask::Access { product: "file", tier: "pro" }, NOW)
            .unwrap()
            .into_iter()
            .find(|u| u.upgrade.offer == "CLOUD_ALL_PRO_MONTHLY")
            .and_then(|u| u.replaces)
            .map(|r| r.subscription)
    };
    assert_eq!(replaced_by_all(vec![v.clone(), w.clone()]).as_deref(), Some("sub_v"));
    assert_eq!(replaced_by_all(vec![w, v]).as_deref(), Some("sub_v"));
}

/// A Pro subscriber whose payment failed and whose grace is over is denied AI tools
/// (`grace_ended`). Pro, the plan it still subscribes to, is never named (checkout refuses
/// it: already subscribed; paying the open invoice restores it): the denial names the
/// cheapest other offer that unlocks them, the two-cloud bundle, as a change of the
/// running subscription, which the plan change accepts.
#[test]
fn a_past_due_subscriber_is_not_sold_the_plan_they_still_subscribe_to() {
    let c = vcm();
    let g = Grant {
        status: Status::PastDue,
        past_due_since: Some(Timestamp(NOW.0 - 10 * 86_400)),
        source_ref: Some("stripe:sub_1".into()),
        ..grant("stripe:sub_1:suite", "suite", "pro", "SUITE_PRO_MONTHLY")
    };
    let ents = Entitlements::new(vec![g]);
    let d = decide::can(&c, &ents, "use_ai", NOW).unwrap();
    assert_eq!((d.allowed, d.reason), (false, decide::Reason::GraceEnded));
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Capability("use_ai"), NOW).unwrap();
    let keys: Vec<&str> = list.iter().map(|u| u.upgrade.offer.as_str()).collect();
    assert!(!keys.contains(&"SUITE_PRO_MONTHLY"), "{keys:?}");
    let first = list.first().expect("an offer is listed");
    assert_eq!(first.upgrade.offer, "SUITE_PRO_TWO_CLOUDS_MONTHLY");
    assert_eq!(d.upgrade.as_ref().map(|u| &u.offer), Some(&first.upgrade.offer));
    let r = first.replaces.as_ref().expect("a change of the past-due subscription");
    assert_eq!((r.subscription.as_str(), r.offer.as_str()), ("sub_1", "SUITE_PRO_MONTHLY"));
    let mut a = user();
    a.subscriptions.push(Held { status: SubStatus::PastDue, products: vec![("suite".into(), "pro".into())], ..live("SUITE_PRO_MONTHLY") });
    assert_eq!(checkout::checkout(&c, &buy("SUITE_PRO_MONTHLY"), &a, NOW).unwrap_err().code, checkout::RefusalCode::AlreadySubscribed);
    let ch = checkout::change(&c, &a, None, &first.upgrade.offer, &first.clouds);
    assert!(ch.is_ok(), "`{}` is named as a change and the change is refused: {:?}", first.upgrade.offer, ch.err());
}

/// A catalog `id` of products `a`, `b`, `c` and `d` with `tiers` (the first the default),
/// in US dollars with no grace, selling `offers` (TOML).
fn letters(id: &str, tiers: &[&str], offers: &str) -> Catalog {
    let tiers = tiers.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
    let products: String = ["a", "b", "c", "d"]
        .iter()
        .map(|p| format!("[[products]]\nid = \"{p}\"\ntiers = [{tiers}]\ndefault_tier = \"free\"\n\n"))
        .collect();
    let head = format!("[catalog]\nid = \"{id}\"\nname = \"{id}\"\nversion = \"1\"\ncurrency = \"usd\"\ngrace_period_days = 0\n\n");
    Catalog::from_toml(&format!("{head}{products}{offers}")).unwrap()
}

const TWO_CHOICES: &str = r#"# One product from a or b, and one from c or d.
[[offers]]
key = "MIX"
label = "Mix"
price = { amount = 1000, currency = "usd", interval = "month" }
grants = [
  { choose = 1, from = ["a", "b"], tier = "pro" },
  { choose = 1, from = ["c", "d"], tier = "pro" },
]

[[offers]]
key = "A_AND_B"
label = "A and B"
price = { amount = 5000, currency = "usd", interval = "month" }
grants = [{ product = "a", tier = "pro" }, { product = "b", tier = "pro" }]

[[capabilities]]
id = "b_feature"
product = "b"
min_tier = "pro"

[[tools]]
id = "ab-tool"
label = "AB tool"
page = "p"
requires = { product = "a", tier = "pro", capability = "b_feature" }

[[tools]]
id = "b-tool"
label = "B tool"
page = "p"
requires = { capability = "b_feature" }
"#;

/// A bundle of two grants, "one of a or b" and "one of c or d", is not shown on a tool that
/// needs both a and b: no purchase of it gives both (its first grant gives one of them, its
/// second only c or d), and checkout refuses that choice. The lock names "A and B", the
/// only offer that unlocks it. On a tool that needs b alone the bundle is listed with b
/// and one of c or d, a choice checkout accepts.
#[test]
fn a_bundle_is_not_offered_for_two_products_only_one_of_its_choices_covers() {
    let c = letters("two-choices", &["free", "pro"], TWO_CHOICES);
    let usage = BTreeMap::new();
    let ents = Entitlements::default();
    let t = decide::tool_state(&c, &ents, "ab-tool", &usage, NOW).unwrap();
    assert!(t.locked);
    assert_eq!(t.decision.upgrade.map(|u| u.offer).as_deref(), Some("A_AND_B"));
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Tool { tool: "ab-tool", usage: &usage }, NOW).unwrap();
    let keys: Vec<&str> = list.iter().map(|u| u.upgrade.offer.as_str()).collect();
    assert_eq!(keys, ["A_AND_B"]);
    let mix = |clouds: &[&str]| Purchase { clouds: clouds.iter().map(|s| s.to_string()).collect(), ..buy("MIX") };
    let r = checkout::checkout(&c, &mix(&["a", "b"]), &user(), NOW).expect_err("no purchase of MIX gives a and b");
    assert_eq!(r.code, checkout::RefusalCode::InvalidClouds);
    assert!(r.message.contains("it gives 1 of a, b, and 1 of c, d"), "{}", r.message);
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Tool { tool: "b-tool", usage: &usage }, NOW).unwrap();
    let first = list.first().expect("an offer unlocks the B tool");
    assert_eq!((first.upgrade.offer.as_str(), first.clouds.as_slice()), ("MIX", ["b".to_string(), "c".to_string()].as_slice()));
    let p = Purchase { clouds: first.clouds.clone(), ..buy("MIX") };
    assert!(checkout::checkout(&c, &p, &user(), NOW).is_ok());
}

const OVERLAPPING_CHOICES: &str = r#"# One of a or b, and one more of a, b or c.
[[offers]]
key = "PAIR"
label = "Pair"
price = { amount = 3000, currency = "usd", interval = "one_time" }
grants = [
  { choose = 1, from = ["a", "b"], tier = "pro" },
  { choose = 1, from = ["a", "b", "c"], tier = "pro" },
]
"#;

/// A buyer of a two-grant bundle ("one of a or b" and "one of a, b or c") chooses a and b,
/// a choice checkout sells (a from the first grant, b from the second). The fold of the
/// paid purchase gave a alone (each grant took the first product chosen that it may give):
/// it places the choice as checkout does (`Catalog::bundle_choice`), a and b.
#[test]
fn a_bundle_choice_checkout_sells_is_the_choice_the_purchase_gives() {
    let c = letters("overlap", &["free", "pro"], OVERLAPPING_CHOICES);
    assert!(checkout::checkout(&c, &Purchase { clouds: vec!["a".into(), "b".into()], ..buy("PAIR") }, &user(), NOW).is_ok(), "checkout sells a and b");
    let fact: tollgate::billing::Fact = serde_json::from_value(serde_json::json!({
        "key": "purchase:stripe:cs_1", "provider": "stripe", "event": "evt_1", "at": "2027-01-15T08:00:00Z",
        "type": "purchase", "id": "stripe:cs_1", "mode": "payment", "outcome": "paid",
        "subject": format!("user:{U}"), "offer": "PAIR", "quantity": 1, "clouds": ["a", "b"],
        "amount": 3000, "currency": "usd",
    }))
    .unwrap();
    let st = tollgate::billing::reduce(&c, &[fact], NOW);
    let ents = st.entitlements_for(&format!("user:{U}"));
    let mut got: Vec<(String, String)> = ents.grants.iter().map(|g| (g.product.clone(), g.tier.clone())).collect();
    got.sort();
    assert_eq!(got, [("a".to_string(), "pro".to_string()), ("b".to_string(), "pro".to_string())]);
}

const ONE_PRO_TWO_BASIC: &str = r#"# Three products: one of them at pro, the two others at basic.
[[offers]]
key = "TRIO"
label = "Trio"
price = { amount = 5000, currency = "usd", interval = "one_time" }
grants = [
  { choose = 1, from = ["a", "b", "c"], tier = "basic" },
  { choose = 1, from = ["a", "b", "c"], tier = "pro" },
  { choose = 1, from = ["a", "b", "c"], tier = "basic" },
]
"#;

/// A user denied b at pro is shown the Trio bundle (one product at pro, two at basic)
/// preselected as b, a, c, and buys exactly that. The paid purchase gave a at pro and b at
/// basic (any placement of the choice was taken): each product chosen, in order, gets the
/// highest tier the bundle can give it beside the ones before, so b is at pro.
#[test]
fn a_bundle_bought_for_the_product_the_upgrade_named_gives_it_at_the_tier_named() {
    let c = letters("trio", &["free", "basic", "pro"], ONE_PRO_TWO_BASIC);
    let none = Entitlements::default();
    assert!(!decide::has_access(&c, &none, "b", "pro", NOW).unwrap().allowed);
    let unlocks = decide::offers_unlocking(&c, &none, decide::Ask::Access { product: "b", tier: "pro" }, NOW).unwrap();
    let trio = unlocks.iter().find(|u| u.upgrade.offer == "TRIO").expect("Trio unlocks b at pro");
    let clouds: Vec<&str> = trio.clouds.iter().map(String::as_str).collect();
    assert!(checkout::checkout(&c, &Purchase { clouds: trio.clouds.clone(), ..buy("TRIO") }, &user(), NOW).is_ok(), "checkout sells {clouds:?}");
    let fact: tollgate::billing::Fact = serde_json::from_value(serde_json::json!({
        "key": "purchase:stripe:cs_1", "provider": "stripe", "event": "evt_1", "at": "2027-01-15T08:00:00Z",
        "type": "purchase", "id": "stripe:cs_1", "mode": "payment", "outcome": "paid",
        "subject": format!("user:{U}"), "offer": "TRIO", "quantity": 1, "clouds": clouds,
        "amount": 5000, "currency": "usd",
    }))
    .unwrap();
    let st = tollgate::billing::reduce(&c, &[fact], NOW);
    let ents = st.entitlements_for(&format!("user:{U}"));
    let mut got: Vec<(String, String)> = ents.grants.iter().map(|g| (g.product.clone(), g.tier.clone())).collect();
    got.sort();
    assert!(
        decide::has_access(&c, &ents, "b", "pro", NOW).unwrap().allowed,
        "bought Trio as {clouds:?} to unlock b at pro, and got {got:?}"
    );
}

/// The Razorpay AI app's `PREMIUM_MONTHLY` subscription `sub_p` of user U over
/// [start, end), paid, then paused at `paused` (Razorpay `subscription.paused`).
fn paused_premium(start: Timestamp, end: Timestamp, paused: Timestamp) -> Vec<tollgate::billing::Fact> {
    use tollgate::billing::facts::{Fact, FactBody, InvoicePaid, Item, Provider as P, SubscriptionSnapshot};
    let item = || vec![Item { price: Some("plan_premium_monthly".into()), offer: Some("PREMIUM_MONTHLY".into()), quantity: 1 }];
    let snap = |status: SubStatus, at: Timestamp| Fact {
        key: format!("razorpay:subscription:sub_p:{}", at.0),
        provider: P::Razorpay,
        event: String::new(),
        at,
        body: FactBody::Subscription(SubscriptionSnapshot {
            id: "razorpay:sub_p".into(),
            customer: None,
            status,
            items: item(),
            period_start: Some(start),
            period_end: Some(end),
            started_at: Some(start),
            trial_end: None,
            cancel_at_period_end: false,
            cancel_at: None,
            ended_at: None,
            subject: Some(Subject::user(U)),
            clouds: vec![],
            created: false,
            follows: None,
        }),
        catalog_version: None,
    };
    let paid = Fact {
        key: "razorpay:invoice:inv_p:paid".into(),
        provider: P::Razorpay,
        event: String::new(),
        at: start,
        body: FactBody::InvoicePaid(InvoicePaid {
            id: "razorpay:inv_p".into(),
            subscription: "razorpay:sub_p".into(),
            customer: None,
            items: item(),
            period_start: Some(start),
            period_end: Some(end),
            amount: 49900,
            currency: "inr".into(),
            payment_refs: vec!["razorpay:pay_p".into()],
        }),
        catalog_version: None,
    };
    vec![snap(SubStatus::Active, start), paid, snap(SubStatus::Paused, paused)]
}

/// A Razorpay AI app Premium (monthly) subscriber whose subscription is paused holds
/// nothing from the pause on: its grants end there like those of an ended subscription.
/// But the subscription still runs with Razorpay, and checkout refuses every other plan of
/// Premium beside it (already subscribed: it is resumed, not bought twice). So neither a
/// denial of AI generation nor a refusal to draw AI credits names a plan of Premium (they
/// named the yearly plan, the other interval of the paused one): the credit refusal names
/// the top-up, which checkout sells, the denial names nothing, and both say `paused`.
/// Resumed, the subscription gives its plan again and its grants no longer say paused.
#[test]
fn a_paused_subscriber_is_named_a_top_up_and_never_another_plan_of_its_product() {
    let c = Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).unwrap();
    let (start, end) = (Timestamp(NOW.0 - 5 * 86_400), Timestamp(NOW.0 + 25 * 86_400));
    let pause = Timestamp(NOW.0 - 86_400);
    let facts = paused_premium(start, end, pause);
    let st = tollgate::billing::reduce(&c, &facts, NOW);
    let ents = st.entitlements_for(&format!("user:{U}"));
    assert!(!ents.grants.is_empty(), "{st:?}");
    assert!(ents.grants.iter().all(|g| g.paused_since == Some(pause) && g.valid_to == Some(pause)), "{:?}", ents.grants);
    let d = decide::can(&c, &ents, "ai_generation", NOW).unwrap();
    assert_eq!((d.allowed, d.reason), (false, decide::Reason::Paused));
    assert_eq!(d.upgrade.as_ref().map(|u| u.offer.as_str()), None, "a plan of the paused product is named: {d:?}");
    let d = decide::has_access(&c, &ents, "premium", "PREMIUM", NOW).unwrap();
    assert_eq!((d.allowed, d.reason, d.upgrade), (false, decide::Reason::Paused, None));
    let list = decide::offers_unlocking(&c, &ents, decide::Ask::Capability("ai_generation"), NOW).unwrap();
    assert!(list.is_empty(), "{:?}", list.iter().map(|u| &u.upgrade.offer).collect::<Vec<_>>());
    let named = tollgate::usage::credit_offer(&c, &ents, "ai_credits", 600, NOW).map(|o| o.key.as_str());
    assert_eq!(named, Some("AI_CREDITS_TOPUP_500"));
    let pool = tollgate::meter::check_pool_holding(&c, &ents, "ai_credits", 600, 0, false, NOW).unwrap();
    assert_eq!((pool.reason, pool.upgrade.map(|u| u.offer)), (decide::Reason::Paused, Some("AI_CREDITS_TOPUP_500".into())));
    // Checkout, reading the store's subscription row, agrees.
    let mut a = user();
    a.subscriptions.push(Held { provider: Provider::Razorpay, id: "sub_p".into(), status: SubStatus::Paused, ..live("PREMIUM_MONTHLY") });
    for plan in ["PREMIUM_MONTHLY", "PREMIUM_YEARLY", "ENTERPRISE_MONTHLY"] {
        assert_eq!(checkout::checkout(&c, &buy(plan), &a, NOW).unwrap_err().code, checkout::RefusalCode::AlreadySubscribed, "{plan}");
    }
    assert!(checkout::checkout(&c, &buy("AI_CREDITS_TOPUP_500"), &a, NOW).is_ok());
    // Resumed: Premium again, and nothing says paused.
    let mut resumed = facts.clone();
    let mut again = facts[0].clone();
    again.key = "razorpay:subscription:sub_p:resumed".into();
    again.at = Timestamp(NOW.0 - 3_600);
    resumed.push(again);
    let ents = tollgate::billing::reduce(&c, &resumed, NOW).entitlements_for(&format!("user:{U}"));
    assert!(ents.grants.iter().all(|g| g.paused_since.is_none()), "{:?}", ents.grants);
    assert_eq!(decide::has_access(&c, &ents, "premium", "PREMIUM", NOW).unwrap().reason, decide::Reason::Active);
}

/// A paid one-time top-up of 500 AI credits (`AI_CREDITS_TOPUP_500`) by user U at `at`.
fn ai_top_up(at: Timestamp) -> tollgate::billing::facts::Fact {
    use tollgate::billing::facts::{Fact, FactBody, Provider as P, Purchase as Bought, PurchaseMode, PurchaseOutcome};
    Fact {
        key: "razorpay:payment:pay_topup:paid".into(),
        provider: P::Razorpay,
        event: String::new(),
        at,
        body: FactBody::Purchase(Bought {
            id: "razorpay:pay_topup".into(),
            mode: PurchaseMode::Payment,
            outcome: PurchaseOutcome::Paid,
            subject: Some(Subject::user(U)),
            customer: None,
            subscription: None,
            offer: Some("AI_CREDITS_TOPUP_500".into()),
            quantity: 1,
            clouds: vec![],
            payment_refs: vec![],
            amount: 9900,
            currency: "inr".into(),
            no_payment_required: false,
        }),
        catalog_version: None,
    }
}

/// A Razorpay AI app Premium subscriber who bought a top-up of 500 AI credits pauses the
/// subscription with most of the month's 2000 credits unspent. While it is paused, the
/// credits the plan gave (its period's allowance) are not spendable: a use the top-up
/// covers takes the top-up alone; one that needs the allowance is refused, `paused`, by
/// the pool check and by the charge alike, and the balances a snapshot carries hold only
/// what may be spent. Nothing is taken away: the fold still holds every credit, and once
/// the subscription resumes the same allowance is spent first again.
#[test]
fn a_paused_subscriptions_allowance_is_kept_but_not_spent_while_top_ups_are() {
    use tollgate::charge::{charge_units, ChargeDecision, ChargeInput, Refusal, UnitsRequest};
    use tollgate::credits::{DenyReason, OveragePolicy};
    use tollgate::meter::{check_feature, check_pool, Remaining};
    let c = Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).unwrap();
    let (start, end) = (Timestamp(NOW.0 - 5 * 86_400), Timestamp(NOW.0 + 25 * 86_400));
    let pause = Timestamp(NOW.0 - 86_400);
    let mut facts = paused_premium(start, end, pause);
    facts.push(ai_top_up(Timestamp(start.0 + 3_600)));
    let subject = format!("user:{U}");
    let who = Subject::user(U);
    let st = tollgate::billing::reduce(&c, &facts, NOW);
    assert_eq!(st.balance(&subject, "ai_credits"), 2500, "the allowance is held: {st:?}");
    let wallet = &st.subject(&subject).unwrap().wallet;
    let top_up = wallet.lots.iter().find(|l| l.subscription.is_none() && l.pool == "ai_credits").expect("the top-up's lot").key.clone();
    let ents = st.entitlements_for(&subject);
    let never = OveragePolicy::default();
    let input = ChargeInput { entitlements: &ents, wallet, overage: &never };
    let units = |units: u64, key: &'static str| UnitsRequest { subject: &who, idempotency_key: key, pool: "ai_credits", units, hold: false };

    // The top-up covers it: taken from the top-up alone.
    let ok = check_pool(&c, &ents, wallet, "ai_credits", 500, NOW).unwrap();
    assert!(ok.allowed, "{ok:?}");
    match charge_units(&c, input, &units(500, "k1"), NOW).unwrap() {
        ChargeDecision::Charge(ch) => {
            assert!(ch.takes.iter().all(|t| t.lot == top_up), "only the top-up is spent: {:?}", ch.takes)
        }
        other => panic!("the top-up covers 500: {other:?}"),
    }
    // It needs the paused plan's credits: refused, paused.
    let no = check_pool(&c, &ents, wallet, "ai_credits", 600, NOW).unwrap();
    assert_eq!((no.allowed, no.reason, no.remaining), (false, decide::Reason::Paused, Remaining::Count(500)), "{no:?}");
    match charge_units(&c, input, &units(600, "k2"), NOW).unwrap() {
        ChargeDecision::Refuse(Refusal::Short { denial, .. }) => {
            assert_eq!((denial.reason, denial.available, denial.required), (DenyReason::Paused, 500, 600), "{denial:?}");
            assert_eq!(denial.reason.as_str(), "paused");
        }
        other => panic!("600 needs the paused allowance: {other:?}"),
    }
    // A snapshot carries what may be spent, and decides as the worker does.
    let balances = tollgate::usage::balances(wallet, &ents.grants, NOW);
    assert_eq!(balances.get("ai_credits"), Some(&500));
    let snap = Entitlements { balances, ..ents.clone() };
    for q in [500, 600, 2500] {
        assert_eq!(check_feature(&c, &snap, "ai_credits", q, 0, NOW).unwrap(), check_pool(&c, &ents, wallet, "ai_credits", q, NOW).unwrap(), "{q}");
    }

    // Resumed: the same allowance, spent first again.
    let mut again = facts[0].clone();
    again.key = "razorpay:subscription:sub_p:resumed".into();
    again.at = Timestamp(NOW.0 - 3_600);
    facts.push(again);
    let st = tollgate::billing::reduce(&c, &facts, NOW);
    assert_eq!(st.balance(&subject, "ai_credits"), 2500);
    let wallet = &st.subject(&subject).unwrap().wallet;
    let ents = st.entitlements_for(&subject);
    let input = ChargeInput { entitlements: &ents, wallet, overage: &never };
    assert!(check_pool(&c, &ents, wallet, "ai_credits", 2500, NOW).unwrap().allowed);
    match charge_units(&c, input, &units(600, "k3"), NOW).unwrap() {
        ChargeDecision::Charge(ch) => assert!(ch.takes.iter().all(|t| t.lot != top_up), "the allowance first: {:?}", ch.takes),
        other => panic!("resumed, 600 is covered: {other:?}"),
    }
    assert_eq!(tollgate::usage::balances(wallet, &ents.grants, NOW).get("ai_credits"), Some(&2500));
}

/// The entitlements a fold gives a paused subscriber (`BillingState::entitlements_for`,
/// which the CLI and the lifecycle story decide from) carry what may be spent, as a
/// snapshot's do (`usage::balances`): the top-up, not the plan's allowance. Nothing is
/// taken away: the fold's lots still hold both, and resumed the balance is whole again.
/// A pool the paused plan alone fills is still named, at zero (the subject holds lots in it).
#[test]
fn a_paused_subscribers_entitlements_carry_only_what_may_be_spent() {
    let c = Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).unwrap();
    let (start, end) = (Timestamp(NOW.0 - 5 * 86_400), Timestamp(NOW.0 + 25 * 86_400));
    let pause = Timestamp(NOW.0 - 86_400);
    let subject = format!("user:{U}");

    // The plan alone: its pool is held at zero while paused.
    let facts = paused_premium(start, end, pause);
    let st = tollgate::billing::reduce(&c, &facts, NOW);
    assert_eq!(st.balance(&subject, "ai_credits"), 2000, "the allowance is kept: {st:?}");
    assert_eq!(st.entitlements_for(&subject).balances.get("ai_credits"), Some(&0));

    // With a top-up: the top-up alone may be spent.
    let mut facts = facts;
    facts.push(ai_top_up(Timestamp(start.0 + 3_600)));
    let st = tollgate::billing::reduce(&c, &facts, NOW);
    assert_eq!(st.balance(&subject, "ai_credits"), 2500);
    let ents = st.entitlements_for(&subject);
    assert_eq!(ents.balances.get("ai_credits"), Some(&500), "{:?}", ents.balances);
    let wallet = &st.subject(&subject).unwrap().wallet;
    assert_eq!(ents.balances, tollgate::usage::balances(wallet, &ents.grants, NOW));
    assert_eq!(wallet.balance("ai_credits"), 2500, "nothing is taken away");

    // Resumed: the allowance counts again.
    let mut again = facts[0].clone();
    again.key = "razorpay:subscription:sub_p:resumed".into();
    again.at = Timestamp(NOW.0 - 3_600);
    facts.push(again);
    let st = tollgate::billing::reduce(&c, &facts, NOW);
    assert_eq!(st.entitlements_for(&subject).balances.get("ai_credits"), Some(&2500));
}
