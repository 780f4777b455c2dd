//! Attribution never lost: paid events that name no buyer, or whose prices map to no
//! offer, wait in `pending`; an operator's attribution (an `attributed` fact) applies
//! them, in any order, once; a retry changes nothing and another subject is refused.

#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;
use tollgate::billing::attribute::{attribute, known, Decision, Refusal, Request};
use tollgate::billing::*;

/// The sample subscription checkout with no buyer named anywhere (a checkout made outside
/// the app's own route): its customer is linked to nobody.
fn anonymous_checkout() -> String {
    edit("stripe/checkout.session.completed.subscription.json", |v| {
        obj(v)["client_reference_id"] = json!(null);
        obj(v)["metadata"] = json!({"offer_key": "STUDIO_BASIC_MONTHLY"});
    })
}

fn request(subject: &str, offer: Option<&str>) -> Request {
    Request {
        provider: Provider::Stripe,
        event: "evt_1Pgc6wB7WZ01zgkWcheckout1".into(),
        subject: Subject::parse(subject).unwrap(),
        offer: offer.map(str::to_string),
        clouds: vec![],
        by: "ops@example.com".into(),
        unknown: vec![],
    }
}

fn decided(cat: &tollgate::Catalog, req: &Request, event: &[Fact], cluster: &[Fact]) -> Fact {
    match attribute(cat, req, event, cluster, t(T0 + 10 * DAY)) {
        Ok(Decision::Attribute(f)) => f,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_checkout_naming_no_buyer_waits_and_the_operators_attribution_applies_it() {
    let cat = catalog();
    let checkout = stripe_facts(&cat, &anonymous_checkout());
    let snapshot = stripe_facts(&cat, &event("stripe/customer.subscription.updated.active.basil.json"));
    let paid = stripe_facts(&cat, &event("stripe/invoice.paid.basil.json"));
    let all: Vec<Fact> = checkout.iter().chain(&snapshot).chain(&paid).cloned().collect();
    let st = reduce(&cat, &all, t(T0 + 10 * DAY));
    assert!(st.subjects.is_empty(), "nobody holds anything yet: {:?}", st.subjects.keys());
    assert_eq!(st.pending.len(), 3, "{:?}", st.pending);
    assert!(st.pending.iter().any(|p| p.key == checkout[0].key && p.waiting_for.contains(&CUS.to_string())));

    // What an operator sees of the kept checkout.
    let k = known(&checkout);
    assert_eq!(k.customer.as_deref(), Some(CUS));
    assert_eq!(k.subscription.as_deref(), Some(SUB));
    assert_eq!(k.offer.as_deref(), Some("STUDIO_BASIC_MONTHLY"));
    assert_eq!(k.subject, None);
    assert!(k.payment.as_deref().unwrap().starts_with("stripe:cs_"));

    let fact = decided(&cat, &request("user:u_ops", None), &checkout, &all);
    let FactBody::Attributed(a) = &fact.body else { panic!() };
    assert_eq!((a.customer.as_deref(), a.subscription.as_deref()), (Some(CUS), Some(SUB)));
    assert_eq!(a.by, "ops@example.com");
    let with: Vec<Fact> = all.iter().cloned().chain([fact.clone()]).collect();
    let st = reduce(&cat, &with, t(T0 + 10 * DAY));
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    let g = st.entitlements_for("user:u_ops").grants;
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!((g[0].product.as_str(), g[0].tier.as_str()), ("studio", "basic"));
    assert_eq!(st.customers.get(CUS), Some(&Subject::user("u_ops")));
    // Any order, duplicates included: the same state.
    let mut shuffled = with.clone();
    shuffled.reverse();
    shuffled.push(fact.clone());
    assert_eq!(reduce(&cat, &shuffled, t(T0 + 10 * DAY)), st);
    // A later event of the same customer needs nothing more.
    let renewal = stripe_facts(&cat, &event("stripe/customer.subscription.updated.renewed.acacia.json"));
    let later: Vec<Fact> = with.iter().cloned().chain(renewal).collect();
    assert!(reduce(&cat, &later, t(P1E + DAY)).pending.is_empty());

    // Asked again: nothing to do. Asked for someone else: refused.
    assert_eq!(attribute(&cat, &request("user:u_ops", None), &checkout, &with, t(T0 + 11 * DAY)), Ok(Decision::Already));
    assert_eq!(
        attribute(&cat, &request("user:u_other", None), &checkout, &with, t(T0 + 11 * DAY)),
        Err(Refusal::AttributedToOther { subject: Subject::user("u_ops") })
    );
    // The same attribution said again (another operator, a second later) is the same fact.
    let again = Fact::attributed(Attributed { by: "someone else".into(), ..a.clone() }, t(T0 + 12 * DAY));
    assert_eq!(again.key, fact.key);
}

#[test]
fn a_checkout_of_a_buyer_named_elsewhere_is_attributed_to_them_already() {
    let cat = catalog();
    let checkout = stripe_facts(&cat, &event("stripe/checkout.session.completed.subscription.json"));
    assert_eq!(attribute(&cat, &request("user:u_123", None), &checkout, &checkout, t(T0 + DAY)), Ok(Decision::Already));
    assert_eq!(
        attribute(&cat, &request("user:u_9", None), &checkout, &checkout, t(T0 + DAY)),
        Err(Refusal::AttributedToOther { subject: Subject::user("u_123") })
    );
    // A refund names no buyer of its own: nothing to attribute.
    let refund = stripe_facts(&cat, &event("stripe/charge.refunded.json"));
    assert_eq!(attribute(&cat, &request("user:u_9", None), &refund, &refund, t(T0 + DAY)), Err(Refusal::NothingToAttribute));
}

/// A subscription whose price the catalog does not list (and whose metadata names no
/// offer) grants nothing and waits; the operator names the offer, and it grants.
#[test]
fn a_subscription_whose_price_maps_to_no_offer_waits_for_the_operators_offer() {
    let cat = catalog();
    let unmapped = |path: &str| {
        edit(path, |v| {
            let o = obj(v);
            if let Some(items) = o.pointer_mut("/items/data/0/price") {
                *items = json!({"id": "price_legacy_2019", "object": "price", "metadata": {}});
            }
            if let Some(line) = o.pointer_mut("/lines/data/0/pricing/price_details/price") {
                *line = json!("price_legacy_2019");
            }
            o["metadata"] = json!({"user_id": "u_legacy"});
        })
    };
    let snapshot = stripe_facts(&cat, &unmapped("stripe/customer.subscription.updated.active.basil.json"));
    let paid = stripe_facts(&cat, &unmapped("stripe/invoice.paid.basil.json"));
    let all: Vec<Fact> = snapshot.iter().chain(&paid).cloned().collect();
    let st = reduce(&cat, &all, t(T0 + DAY));
    assert!(st.entitlements_for("user:u_legacy").grants.is_empty());
    assert_eq!(st.pending.len(), 2, "the snapshot and the invoice wait: {:?}", st.pending);
    assert!(st.pending.iter().all(|p| p.reason.contains("price_legacy_2019")), "{:?}", st.pending);
    let k = known(&snapshot);
    assert_eq!((k.prices.clone(), k.offer.clone()), (vec!["price_legacy_2019".to_string()], None));

    // Without an offer the attribution would leave it waiting: refused, saying why.
    let req = Request { event: "evt_sub".into(), ..request("user:u_legacy", None) };
    let Err(Refusal::StillWaiting { reasons }) = attribute(&cat, &req, &snapshot, &all, t(T0 + DAY)) else { panic!() };
    assert!(reasons[0].contains("price_legacy_2019"), "{reasons:?}");
    // An offer the catalog lacks, or one sold to organizations: refused.
    let bad = Request { offer: Some("NOPE".into()), ..req.clone() };
    assert!(matches!(attribute(&cat, &bad, &snapshot, &all, t(T0 + DAY)), Err(Refusal::InvalidOffer { .. })));
    let org = Request { offer: Some("TEAM_BUSINESS_MONTHLY".into()), ..req.clone() };
    assert!(matches!(attribute(&cat, &org, &snapshot, &all, t(T0 + DAY)), Err(Refusal::InvalidOffer { .. })));

    let named = Request { offer: Some("STUDIO_PRO_MONTHLY".into()), ..req };
    let fact = decided(&cat, &named, &snapshot, &all);
    let with: Vec<Fact> = all.iter().cloned().chain([fact]).collect();
    let st = reduce(&cat, &with, t(T0 + DAY));
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    let g = st.entitlements_for("user:u_legacy").grants;
    assert_eq!((g.len(), g[0].tier.as_str(), g[0].offer.as_deref()), (1, "pro", Some("STUDIO_PRO_MONTHLY")));
    // The invoice now opens the offer's period credits too.
    assert_eq!(st.subscriptions[SUB].items[0].offer.as_deref(), Some("STUDIO_PRO_MONTHLY"));
}

/// A subscription checkout with a wrong offer key (and, as Stripe sends it, no line
/// items) is granted from the subscription's price: nothing waits.
#[test]
fn a_wrong_offer_key_on_a_subscription_checkout_is_granted_from_the_price() {
    let cat = catalog();
    let checkout = stripe_facts(
        &cat,
        &edit("stripe/checkout.session.completed.subscription.json", |v| {
            obj(v)["metadata"]["offer_key"] = json!("STUDIO_BASIC_MONTLY");
        }),
    );
    let snapshot = stripe_facts(&cat, &event("stripe/customer.subscription.updated.active.basil.json"));
    // In either arrival order: the checkout alone waits for the subscription's prices.
    let alone = reduce(&cat, &checkout, t(T0 + DAY));
    assert_eq!(alone.pending.len(), 1, "{:?}", alone.pending);
    let all: Vec<Fact> = checkout.iter().chain(&snapshot).cloned().collect();
    let st = reduce(&cat, &all, t(T0 + DAY));
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    let g = st.entitlements_for(USER).grants;
    assert_eq!((g.len(), g[0].offer.as_deref()), (1, Some("STUDIO_BASIC_MONTHLY")));
}

/// A one-time payment of no known offer waits; named by the operator, its credits land,
/// once.
#[test]
fn a_one_time_payment_of_no_known_offer_gets_the_operators_offer() {
    let cat = catalog();
    let raw = edit("stripe/checkout.session.completed.payment.json", |v| {
        obj(v)["line_items"]["data"][0]["price"]["id"] = json!("price_from_an_old_page");
    });
    let pay = stripe_facts(&cat, &raw);
    let st = reduce(&cat, &pay, t(T0 + DAY));
    assert_eq!(st.pending.len(), 1);
    assert_eq!(st.subjects[USER].balances.get("video_seconds"), None, "{:?}", st.subjects[USER].balances);
    let req = Request { event: "evt_pay".into(), ..request(USER, Some("TOKENS_30_MIN")) };
    let fact = decided(&cat, &req, &pay, &pay);
    let with: Vec<Fact> = pay.iter().cloned().chain([fact.clone(), fact]).collect();
    let st = reduce(&cat, &with, t(T0 + DAY));
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    assert_eq!(st.subjects[USER].balances.get("video_seconds"), Some(&1800));
    assert_eq!(attribute(&cat, &req, &pay, &with, t(T0 + DAY)), Ok(Decision::Already));
}

/// A bundle bought with a choice that does not fit: the purchase stands, and the
/// operator chooses the products.
#[test]
fn a_bundle_with_a_wrong_choice_gets_the_operators_choice() {
    let cat = catalog();
    let raw = edit("stripe/checkout.session.completed.bundle.json", |v| {
        obj(v)["metadata"]["clouds"] = json!("video,studio");
        obj(v)["client_reference_id"] = json!(null);
    });
    let parsed = parse_stripe_event(&cat, &raw).unwrap();
    assert!(parsed.warnings()[0].contains("`studio` cannot be chosen"), "{:?}", parsed.warnings());
    let facts = parsed.facts().to_vec();
    let mut req = Request { event: "evt_bundle".into(), ..request("user:u_b", None) };
    req.clouds = vec!["video".into(), "nope".into()];
    assert!(matches!(attribute(&cat, &req, &facts, &facts, t(T0 + DAY)), Err(Refusal::InvalidClouds { .. })));
    req.clouds = vec!["video".into(), "writing".into()];
    let fact = decided(&cat, &req, &facts, &facts);
    let st = reduce(&cat, &[facts, vec![fact]].concat(), t(T0 + DAY));
    let mut products: Vec<String> = st.entitlements_for("user:u_b").grants.into_iter().map(|g| g.product).collect();
    products.sort();
    assert_eq!(products, ["video", "writing"]);
}

/// Razorpay: a captured payment whose notes name an offer the catalog lacks waits, and
/// the operator's offer applies it.
#[test]
fn a_razorpay_payment_with_wrong_notes_gets_the_operators_offer() {
    let cat = catalog();
    let raw = edit("razorpay/payment.captured.json", |v| {
        v["payload"]["payment"]["entity"]["notes"]["offer_key"] = json!("AI_TOPUP_5OO");
    });
    let facts = rzp_facts(&cat, &raw);
    assert_eq!(reduce(&cat, &facts, t(T0 + DAY)).pending.len(), 1);
    let req = Request { provider: Provider::Razorpay, event: "evt_rzp".into(), ..request("user:u_456", Some("AI_TOPUP_500")) };
    let fact = decided(&cat, &req, &facts, &facts);
    let FactBody::Attributed(a) = &fact.body else { panic!() };
    assert_eq!(a.delivery, "razorpay:evt_rzp");
    let st = reduce(&cat, &[facts, vec![fact]].concat(), t(T0 + DAY));
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    assert!(st.subjects["user:u_456"].balances.values().any(|b| *b > 0), "{:?}", st.subjects["user:u_456"].balances);
}

/// The fact survives the store: its JSON form reads back the same (its delivery is not
/// the fact's own `event`).
#[test]
fn the_attribution_fact_reads_back_from_its_stored_form() {
    let cat = catalog();
    let checkout = stripe_facts(&cat, &anonymous_checkout());
    let fact = decided(&cat, &request("user:u_ops", Some("STUDIO_PRO_MONTHLY")), &checkout, &checkout);
    let text = serde_json::to_string(&fact).unwrap();
    assert!(text.contains(r#""delivery":"stripe:evt_1Pgc6wB7WZ01zgkWcheckout1""#), "{text}");
    assert!(text.contains(r#""type":"attributed""#), "{text}");
    let back: Fact = serde_json::from_str(&text).unwrap();
    assert_eq!(back, fact);
    assert!(back.refs().contains(&CUS.to_string()) && back.refs().contains(&"user:u_ops".to_string()));
}

/// A purchase linked to a user the store has no record of (a deleted account, another
/// environment's id) would wait for ever: the operator's attribution replaces the link,
/// in any order of the facts, for the purchase and every later event of its customer and
/// subscription, even one still naming that user. Without the store's word that it has no
/// record of the user, the purchase stays theirs.
#[test]
fn a_link_to_a_user_the_store_has_no_record_of_gives_way_to_the_operators_attribution() {
    let cat = catalog();
    let now = t(T0 + DAY);
    let checkout = stripe_facts(&cat, &event("stripe/checkout.session.completed.subscription.json"));
    let snapshot = stripe_facts(&cat, &event("stripe/customer.subscription.updated.active.basil.json"));
    let all: Vec<Fact> = checkout.iter().chain(&snapshot).cloned().collect();
    let gone = Subject::parse(USER).unwrap();
    assert_eq!(
        attribute(&cat, &request("user:u_ops", None), &checkout, &all, now),
        Err(Refusal::AttributedToOther { subject: gone.clone() }),
        "a user the store knows keeps the purchase"
    );
    let req = Request { unknown: vec![gone.clone()], ..request("user:u_ops", None) };
    let fact = match attribute(&cat, &req, &checkout, &all, now) {
        Ok(Decision::Attribute(f)) => f,
        other => panic!("{other:?}"),
    };
    let FactBody::Attributed(a) = &fact.body else { panic!() };
    assert_eq!(a.replaces.as_ref(), Some(&gone));
    assert!(fact.refs().contains(&USER.to_string()), "{:?}", fact.refs());
    let back: Fact = serde_json::from_str(&serde_json::to_string(&fact).unwrap()).unwrap();
    assert_eq!(back, fact);

    let with: Vec<Fact> = all.iter().cloned().chain([fact.clone()]).collect();
    let st = reduce(&cat, &with, now);
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    let g = st.entitlements_for("user:u_ops").grants;
    assert_eq!((g.len(), g[0].product.as_str(), g[0].tier.as_str()), (1, "studio", "basic"), "{g:?}");
    assert!(!st.subjects.contains_key(USER), "the replaced user holds nothing: {:?}", st.subjects.keys());
    assert_eq!(st.customers.get(CUS), Some(&Subject::user("u_ops")));
    assert!(st.warnings.iter().all(|w| !w.contains("linked")), "{:?}", st.warnings);
    // Any order, one at a time or at once: the same state.
    let mut reversed = with.clone();
    reversed.reverse();
    assert_eq!(reduce(&cat, &reversed, now), st);
    let mut r = Reducer::new(&cat, now);
    for f in &reversed {
        r.apply(f.clone(), now);
    }
    assert_eq!(r.state(), &st);

    // A later snapshot of the subscription still naming the replaced user: the buyer's.
    let renewed = stripe_facts(
        &cat,
        &edit("stripe/customer.subscription.updated.renewed.acacia.json", |v| {
            obj(v)["metadata"] = json!({"user_id": "u_123"});
        }),
    );
    let names_gone = |f: &Fact| matches!(&f.body, FactBody::Subscription(s) if s.subject.as_ref().map(|s| s.to_string()).as_deref() == Some(USER));
    assert!(renewed.iter().any(names_gone), "{renewed:?}");
    let later: Vec<Fact> = with.iter().cloned().chain(renewed.iter().cloned()).collect();
    let st = reduce(&cat, &later, t(P1E + DAY));
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    assert!(!st.subjects.contains_key(USER), "{:?}", st.subjects.keys());
    assert_eq!(st.subscriptions[SUB].subject, Some(Subject::user("u_ops")));
    let mut r = Reducer::from_facts(&cat, &with, now);
    for f in renewed {
        r.apply(f, t(P1E + DAY));
    }
    assert_eq!(r.state(), &st);

    // Asked again: nothing to do; for another subject the store knows: refused.
    assert_eq!(attribute(&cat, &req, &checkout, &with, now), Ok(Decision::Already));
    let other = Request { unknown: vec![gone], ..request("user:u_other", None) };
    assert_eq!(
        attribute(&cat, &other, &checkout, &with, now),
        Err(Refusal::AttributedToOther { subject: Subject::user("u_ops") })
    );
}
