//! Parsing provider events into facts: every sample event, both Stripe API
//! shapes, Razorpay's payloads, ignored types and malformed bodies.

#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;
use tollgate::billing::*;

fn one(facts: Vec<Fact>) -> Fact {
    assert_eq!(facts.len(), 1, "{facts:?}");
    facts.into_iter().next().unwrap()
}

fn err(raw: &str) -> ParseError {
    parse_stripe_event(&catalog(), raw).expect_err("should not parse")
}

#[test]
fn every_sample_event_parses() {
    let cat = catalog();
    for dir in ["stripe", "razorpay"] {
        let mut names: Vec<_> = std::fs::read_dir(format!("{}/tests/events/{dir}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert!(names.len() >= 10);
        for n in names {
            let raw = event(&format!("{dir}/{n}"));
            let p =
                if dir == "stripe" { parse_stripe_event(&cat, &raw) } else { parse_razorpay_event(&cat, &raw, None) };
            let p = p.unwrap_or_else(|e| panic!("{dir}/{n}: {e}"));
            assert!(n.starts_with(&p.event().event_type), "{n} is a {}", p.event().event_type);
            for f in p.facts() {
                // Facts survive the store: JSON and back.
                let back: Fact = serde_json::from_str(&serde_json::to_string(f).unwrap()).unwrap();
                assert_eq!(&back, f);
                assert!(!f.refs().is_empty());
            }
        }
    }
}

#[test]
fn checkout_for_a_subscription() {
    let f = one(stripe_facts(&catalog(), &event("stripe/checkout.session.completed.subscription.json")));
    assert_eq!(f.at, t(T0 + 4));
    assert_eq!(f.event, "evt_1Pgc6wB7WZ01zgkWcheckout1");
    let FactBody::Purchase(p) = &f.body else { panic!("{f:?}") };
    assert_eq!(p.mode, PurchaseMode::Subscription);
    assert_eq!(p.outcome, PurchaseOutcome::Paid);
    assert_eq!(p.subject, Some(Subject::user("u_123")));
    assert_eq!(p.customer.as_deref(), Some(CUS));
    assert_eq!(p.subscription.as_deref(), Some(SUB));
    assert_eq!(p.offer.as_deref(), Some("STUDIO_BASIC_MONTHLY"));
    assert!(f.key.ends_with(":paid"));
}

#[test]
fn one_time_checkout_finds_the_offer_from_its_line_price() {
    let f = one(stripe_facts(&catalog(), &event("stripe/checkout.session.completed.payment.json")));
    let FactBody::Purchase(p) = &f.body else { panic!() };
    assert_eq!(p.mode, PurchaseMode::Payment);
    assert_eq!(p.offer.as_deref(), Some("TOKENS_30_MIN"), "no offer_key in metadata: the line's price id maps it");
    assert!(p.payment_refs.contains(&"stripe:pi_1PgafyB7WZ01zgkWSjxsAJo3".to_string()));
    assert_eq!((p.amount, p.currency.as_str()), (1900, "usd"));
}

#[test]
fn async_payments_grant_only_when_paid() {
    let cat = catalog();
    let unpaid = one(stripe_facts(&cat, &event("stripe/checkout.session.completed.unpaid.json")));
    let ok = one(stripe_facts(&cat, &event("stripe/checkout.session.async_payment_succeeded.json")));
    let no = one(stripe_facts(&cat, &event("stripe/checkout.session.async_payment_failed.json")));
    let outcome = |f: &Fact| match &f.body {
        FactBody::Purchase(p) => p.outcome,
        _ => panic!(),
    };
    assert_eq!(outcome(&unpaid), PurchaseOutcome::Unpaid);
    assert_eq!(outcome(&ok), PurchaseOutcome::Paid);
    assert_eq!(outcome(&no), PurchaseOutcome::Failed);
    // A completed session that was already paid and the async success are one change.
    let paid_now = one(stripe_facts(
        &cat,
        &edit("stripe/checkout.session.completed.unpaid.json", |v| obj(v)["payment_status"] = json!("paid")),
    ));
    assert_eq!(paid_now.key, ok.key);
    // Subject from metadata.user_id when there is no client_reference_id.
    let FactBody::Purchase(p) = &ok.body else { panic!() };
    assert_eq!(p.subject, Some(Subject::user("u_123")));
}

#[test]
fn subscription_period_on_the_items_since_basil_and_on_the_subscription_before() {
    let cat = catalog();
    let basil = one(stripe_facts(&cat, &event("stripe/customer.subscription.updated.active.basil.json")));
    let acacia = one(stripe_facts(&cat, &event("stripe/customer.subscription.updated.renewed.acacia.json")));
    let (FactBody::Subscription(b), FactBody::Subscription(a)) = (&basil.body, &acacia.body) else { panic!() };
    assert_eq!((b.period_start, b.period_end), (Some(t(T0)), Some(t(P1E))));
    assert_eq!((a.period_start, a.period_end), (Some(t(P1E)), Some(t(P2E))));
    for s in [a, b] {
        assert_eq!(s.status, SubStatus::Active);
        assert_eq!(s.customer.as_deref(), Some(CUS));
        assert_eq!(s.items.len(), 1);
        assert_eq!(
            s.items[0].offer.as_deref(),
            Some("STUDIO_BASIC_MONTHLY"),
            "Stripe's example price is in the catalog"
        );
        assert_eq!(s.items[0].quantity, 1);
    }
    // Same subscription, same state, basil shape turned into the acacia shape: same snapshot.
    let moved = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        let o = obj(v);
        let it = &mut o["items"]["data"][0];
        let (s, e) = (it["current_period_start"].take(), it["current_period_end"].take());
        o["current_period_start"] = s;
        o["current_period_end"] = e;
    });
    let moved = one(stripe_facts(&cat, &moved));
    assert_eq!(moved.body, basil.body);
    assert_eq!(moved.key, basil.key, "the key names the change, not the payload shape");
}

#[test]
fn every_item_is_read_with_its_quantity() {
    let cat = catalog();
    let raw = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        let items = &mut obj(v)["items"]["data"];
        let mut extra = items[0].clone();
        extra["id"] = json!("si_second");
        extra["price"]["id"] = json!("price_team_business");
        extra["quantity"] = json!(4);
        extra["current_period_end"] = json!(P1E + 10);
        items.as_array_mut().unwrap().push(extra);
    });
    let FactBody::Subscription(s) = one(stripe_facts(&cat, &raw)).body else { panic!() };
    let offers: Vec<_> = s.items.iter().map(|i| (i.offer.clone().unwrap(), i.quantity)).collect();
    assert_eq!(offers, vec![("STUDIO_BASIC_MONTHLY".into(), 1), ("TEAM_BUSINESS_MONTHLY".into(), 4)]);
    assert_eq!(s.period_end, Some(t(P1E + 10)), "the latest item end");
    // An item whose price is not in the catalog is kept, without an offer.
    let raw = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        obj(v)["items"]["data"][0]["price"]["id"] = json!("price_elsewhere");
        obj(v)["items"]["data"][0]["plan"]["id"] = json!("price_elsewhere");
    });
    let FactBody::Subscription(s) = one(stripe_facts(&cat, &raw)).body else { panic!() };
    assert_eq!(s.items[0].price.as_deref(), Some("price_elsewhere"));
    assert_eq!(s.items[0].offer, None);
}

#[test]
fn both_invoice_shapes_give_the_same_fact() {
    let cat = catalog();
    let basil = one(stripe_facts(&cat, &event("stripe/invoice.paid.basil.json")));
    let acacia = one(stripe_facts(&cat, &event("stripe/invoice.payment_succeeded.acacia.json")));
    assert_eq!(basil.key, acacia.key, "invoice.paid and invoice.payment_succeeded are one change");
    let (FactBody::InvoicePaid(b), FactBody::InvoicePaid(a)) = (&basil.body, &acacia.body) else { panic!() };
    assert_eq!(b.subscription, SUB);
    assert_eq!(a.subscription, SUB);
    assert_eq!((b.period_start, b.period_end), (Some(t(T0)), Some(t(P1E))));
    assert_eq!((a.period_start, a.period_end), (b.period_start, b.period_end));
    assert_eq!(a.items, b.items);
    assert_eq!(b.items[0].offer.as_deref(), Some("STUDIO_BASIC_MONTHLY"));
    assert!(b.payment_refs.contains(&"stripe:pi_3Pgc6uB7WZ01zgkW0h1nvY7c".to_string()), "basil: invoice.payments");
    assert!(a.payment_refs.contains(&"stripe:ch_3Pgc6uB7WZ01zgkW0bHkq1Lm".to_string()), "acacia: invoice.charge");
    let set: FactSet = [basil, acacia].into_iter().collect();
    assert_eq!(set.len(), 1);
}

#[test]
fn failed_invoices_refunds_and_disputes() {
    let cat = catalog();
    let f = one(stripe_facts(&cat, &event("stripe/invoice.payment_failed.basil.json")));
    let FactBody::InvoiceFailed(i) = &f.body else { panic!() };
    assert_eq!((i.subscription.as_str(), i.attempt), (SUB, 1));
    let f = one(stripe_facts(&cat, &event("stripe/charge.refunded.json")));
    let FactBody::Refund(r) = &f.body else { panic!() };
    assert!(r.is_full());
    assert!(r.payment_refs.contains(&"stripe:pi_1PgafyB7WZ01zgkWSjxsAJo3".to_string()));
    let f = one(stripe_facts(&cat, &event("stripe/charge.refunded.partial.json")));
    let FactBody::Refund(r) = &f.body else { panic!() };
    assert_eq!((r.amount, r.reversed, r.is_full()), (1900, 950, false));
    let f = one(stripe_facts(&cat, &event("stripe/charge.dispute.created.json")));
    let FactBody::Dispute(d) = &f.body else { panic!() };
    assert_eq!(d.payment_refs[0], "stripe:ch_3Pgc6uB7WZ01zgkW0bHkq1Lm");
    // The disputed amount; the charge's is not in the dispute (the fold knows it).
    assert_eq!((d.amount, d.reversed), (0, 2900));
}

#[test]
fn deletion_trial_team_and_bundle() {
    let cat = catalog();
    let f = one(stripe_facts(&cat, &event("stripe/customer.subscription.deleted.basil.json")));
    let FactBody::Subscription(s) = &f.body else { panic!() };
    assert_eq!(s.status, SubStatus::Ended);
    assert_eq!(s.ended_at, Some(t(P2E)));
    assert!(f.key.ends_with(":deleted"));

    let f = one(stripe_facts(&cat, &event("stripe/customer.subscription.created.trialing.basil.json")));
    let FactBody::Subscription(s) = &f.body else { panic!() };
    assert_eq!(s.status, SubStatus::Trialing);
    assert_eq!(s.trial_end, Some(t(T0 + 7 * DAY)));
    assert_eq!(s.subject, Some(Subject::user("u_789")), "metadata.user_id on the subscription");

    let f = one(stripe_facts(&cat, &event("stripe/customer.subscription.updated.team.basil.json")));
    let FactBody::Subscription(s) = &f.body else { panic!() };
    assert_eq!(s.subject, Some(Subject::org("acme")));
    assert_eq!((s.items[0].offer.as_deref(), s.items[0].quantity), (Some("TEAM_PROFESSIONAL_MONTHLY"), 3));

    let f = one(stripe_facts(&cat, &event("stripe/checkout.session.completed.bundle.json")));
    let FactBody::Purchase(p) = &f.body else { panic!() };
    assert_eq!(p.clouds, vec!["video", "writing"]);
}

/// Stripe's "pause payment collection" leaves a subscription `active` (or `trialing`,
/// `past_due`) and sets `pause_collection`: the customer paused it all the same, so the
/// snapshot says paused, whatever the `behavior` (one Stripe adds later included) and
/// whether or not it names a `resumes_at`. A `pause_collection` of `null` (or none) is
/// not a pause, and a subscription that ended or never started stays what it was.
#[test]
fn a_paused_collection_is_a_pause() {
    let cat = catalog();
    let status = |path: &str, pause: Option<serde_json::Value>| {
        let raw = edit(path, |v| match pause {
            Some(p) => obj(v)["pause_collection"] = p,
            None => {
                obj(v).as_object_mut().unwrap().remove("pause_collection");
            }
        });
        let f = one(stripe_facts(&cat, &raw));
        let FactBody::Subscription(s) = &f.body else { panic!("{f:?}") };
        (s.status, f.key.clone())
    };
    let running = [
        "stripe/customer.subscription.updated.active.basil.json",
        "stripe/customer.subscription.updated.renewed.acacia.json",
        "stripe/customer.subscription.updated.past_due.basil.json",
        "stripe/customer.subscription.created.trialing.basil.json",
    ];
    let pauses = [
        json!({"behavior": "void", "resumes_at": null}),
        json!({"behavior": "keep_as_draft", "resumes_at": P2E}),
        json!({"behavior": "mark_uncollectible"}),
        json!({"behavior": "a_behavior_stripe_adds_later", "resumes_at": null}),
        json!({}),
    ];
    for path in running {
        let (told, key) = status(path, Some(json!(null)));
        assert_ne!(told, SubStatus::Paused, "{path}: collection not paused");
        assert_eq!(status(path, None), (told, key.clone()), "{path}: no `pause_collection` is `null`");
        for p in &pauses {
            let (paused, paused_key) = status(path, Some(p.clone()));
            assert_eq!(paused, SubStatus::Paused, "{path} with {p}");
            assert_ne!(paused_key, key, "{path}: the pause is another snapshot than the running one");
        }
    }
    let p = Some(json!({"behavior": "void", "resumes_at": null}));
    assert_eq!(status("stripe/customer.subscription.created.basil.json", p.clone()).0, SubStatus::Incomplete);
    assert_eq!(status("stripe/customer.subscription.deleted.basil.json", p).0, SubStatus::Ended);
}

#[test]
fn unknown_and_irrelevant_events_are_acknowledged() {
    let cat = catalog();
    let p = parse_stripe_event(&cat, &event("stripe/plan.created.json")).unwrap();
    match p {
        Parsed::Ignored { event, reason } => {
            assert_eq!(event.event_type, "plan.created");
            assert!(reason.contains("plan.created"));
        }
        other => panic!("{other:?}"),
    }
    let setup = edit("stripe/checkout.session.completed.payment.json", |v| obj(v)["mode"] = json!("setup"));
    assert!(matches!(parse_stripe_event(&cat, &setup).unwrap(), Parsed::Ignored { .. }));
    let no_sub = edit("stripe/invoice.paid.basil.json", |v| {
        obj(v)["parent"] = json!(null);
        obj(v)["lines"]["data"][0]["parent"] = json!(null);
    });
    assert!(matches!(parse_stripe_event(&cat, &no_sub).unwrap(), Parsed::Ignored { .. }));
}

/// Money in that no price or metadata maps to an offer is never dropped: it is a purchase
/// of no offer, which waits in `pending` until an operator names the offer.
#[test]
fn a_paid_checkout_that_maps_to_no_offer_is_a_purchase_that_waits() {
    let cat = catalog();
    let not_ours = edit("stripe/checkout.session.completed.payment.json", |v| {
        obj(v)["line_items"]["data"][0]["price"]["id"] = json!("price_donation");
    });
    let parsed = parse_stripe_event(&cat, &not_ours).unwrap();
    let f = one(parsed.facts().to_vec());
    let FactBody::Purchase(p) = &f.body else { panic!("{f:?}") };
    assert_eq!((p.offer.as_deref(), p.outcome, p.amount), (None, PurchaseOutcome::Paid, 1900));
    let st = reduce(&cat, &[f.clone()], t(T0 + 100));
    assert_eq!(st.pending.len(), 1, "{:?}", st.pending);
    assert_eq!(st.pending[0].key, f.key);
    assert!(st.pending[0].reason.contains("names an offer"), "{}", st.pending[0].reason);
    assert!(st.pending[0].waiting_for.contains(&p.id));
    assert!(st.entitlements_for("user:u_123").grants.is_empty());
}

fn warnings_of(raw: &str) -> (Vec<Fact>, Vec<String>) {
    let p = parse_stripe_event(&catalog(), raw).unwrap_or_else(|e| panic!("{e}"));
    (p.facts().to_vec(), p.warnings().to_vec())
}

fn purchase(facts: &[Fact]) -> Purchase {
    match &facts[0].body {
        FactBody::Purchase(p) => p.clone(),
        other => panic!("{other:?}"),
    }
}

/// Metadata the app wrote is never a reason to refuse a paid event: what the prices say
/// wins, and a wrong value is a warning.
#[test]
fn wrong_or_missing_metadata_is_a_warning_and_the_price_wins() {
    // An unknown offer key, with a line item whose price id is the catalog's: the price's offer.
    let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.payment.json", |v| {
        obj(v)["metadata"]["offer_key"] = json!("NOPE");
    }));
    assert_eq!(purchase(&facts).offer.as_deref(), Some("TOKENS_30_MIN"));
    assert!(w.iter().any(|w| w.contains("metadata.offer_key") && w.contains("NOPE")), "{w:?}");
    // Another offer of the catalog than the price's: the price's, with a warning.
    let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.payment.json", |v| {
        obj(v)["metadata"]["offer_key"] = json!("TOKENS_2_HOURS");
    }));
    assert_eq!(purchase(&facts).offer.as_deref(), Some("TOKENS_30_MIN"));
    assert!(w.iter().any(|w| w.contains("the price's is used")), "{w:?}");
    // A price published from the catalog: its lookup_key is the offer key.
    let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.payment.json", |v| {
        let price = &mut obj(v)["line_items"]["data"][0]["price"];
        price["id"] = json!("price_published_elsewhere");
        price["lookup_key"] = json!("TOKENS_2_HOURS");
    }));
    assert_eq!((purchase(&facts).offer.as_deref(), w.len()), (Some("TOKENS_2_HOURS"), 0), "{w:?}");
    // An unknown offer key and no line items (as Stripe sends the event): no offer, a
    // warning, and the purchase waits (see above) rather than the event being refused.
    let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.subscription.json", |v| {
        obj(v)["metadata"]["offer_key"] = json!("NOPE");
    }));
    assert_eq!(purchase(&facts).offer, None);
    assert_eq!(w, vec!["field `data.object.metadata.offer_key`: offer `NOPE` is not in the catalog".to_string()]);
    // No buyer at all: the purchase is read, naming nobody; it waits for an attribution.
    let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.subscription.json", |v| {
        obj(v)["client_reference_id"] = json!(null);
        obj(v)["customer"] = json!(null);
    }));
    let p = purchase(&facts);
    assert_eq!((p.subject, p.customer, p.offer.as_deref()), (None, None, Some("STUDIO_BASIC_MONTHLY")));
    assert!(w.is_empty(), "{w:?}");
    // A malformed buyer: set aside with a warning.
    let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.subscription.json", |v| {
        obj(v)["metadata"]["subject"] = json!("user:");
    }));
    assert_eq!(purchase(&facts).subject, None);
    assert!(w[0].contains("metadata.subject"), "{w:?}");
    // A bundle's products: too many, one not on offer, none: the purchase stands, the
    // choice is set aside with a warning.
    for (clouds, says) in
        [(Some("video,writing,music"), "bundle of 2 products"), (Some("video,studio"), "`studio` cannot be chosen"), (None, "no products were chosen")]
    {
        let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.bundle.json", |v| match clouds {
            Some(c) => obj(v)["metadata"]["clouds"] = json!(c),
            None => {
                obj(v)["metadata"].as_object_mut().unwrap().remove("clouds");
            }
        }));
        let p = purchase(&facts);
        assert_eq!((p.offer.as_deref(), p.clouds.len()), (Some("BUNDLE_TWO_PRO_MONTHLY"), 0));
        assert!(w.iter().any(|w| w.contains("metadata.clouds") && w.contains(says)), "{clouds:?}: {w:?}");
    }
    // A subscription whose price maps beats its metadata's unknown offer key.
    let (facts, w) = warnings_of(&edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        obj(v)["metadata"]["offer_key"] = json!("NOPE");
    }));
    let FactBody::Subscription(s) = &facts[0].body else { panic!() };
    assert!(s.items[0].offer.is_some(), "{s:?}");
    assert!(w.iter().any(|w| w.contains("NOPE")), "{w:?}");
    // A bad quantity in metadata: a warning, one unit.
    let (facts, w) = warnings_of(&edit("stripe/checkout.session.completed.subscription.json", |v| {
        obj(v)["metadata"]["quantity"] = json!("many");
    }));
    assert_eq!(purchase(&facts).quantity, 1);
    assert!(w[0].contains("metadata.quantity"), "{w:?}");
}

#[test]
fn malformed_events_name_the_field() {
    let e = err("{not json");
    assert_eq!(e.code(), "invalid_json");
    let e = err(&edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        obj(v).as_object_mut().unwrap().remove("customer");
    }));
    assert_eq!(e.to_string(), "missing field `data.object.customer`");
    let e = err(&edit("stripe/invoice.paid.basil.json", |v| v["created"] = json!("yesterday")));
    assert_eq!(e, ParseError::WrongType { path: "created".into(), expected: "an integer (Unix seconds)".into() });
    let e = err(&edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        obj(v)["items"]["data"][0].as_object_mut().unwrap().remove("current_period_end");
    }));
    assert_eq!(e.code(), "missing_field");
    assert!(e.to_string().contains("items.data[].current_period_end"), "{e}");
    let e = err(&edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        obj(v)["items"]["data"][0]["current_period_end"] = json!(T0 - 1);
    }));
    assert_eq!(e.code(), "invalid_value");
    let e =
        err(&edit("stripe/customer.subscription.updated.active.basil.json", |v| obj(v)["status"] = json!("zombie")));
    assert_eq!(e.path(), "data.object.status");
    assert!(e.to_string().contains("`zombie` is not a subscription status"));
    let e = err(&edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        obj(v)["items"]["data"][0]["quantity"] = json!(-2);
    }));
    assert_eq!(e.path(), "data.object.items.data[0].quantity");
    let e = err(&edit("stripe/charge.refunded.json", |v| {
        obj(v).as_object_mut().unwrap().remove("amount_refunded");
    }));
    assert_eq!(e.path(), "data.object.amount_refunded");
    let e = err(r#"{"object": "list", "data": []}"#);
    assert_eq!(e.path(), "object");
    let e = err(r#"[1, 2]"#);
    assert_eq!(e.code(), "wrong_type");
}

#[test]
fn razorpay_subscription_events() {
    let cat = catalog();
    let f = one(rzp_facts(&cat, &event("razorpay/subscription.activated.json")));
    let FactBody::Subscription(s) = &f.body else { panic!() };
    assert_eq!(s.id, "razorpay:sub_00000000000001");
    assert_eq!(s.status, SubStatus::Active);
    assert_eq!(s.items[0].offer.as_deref(), Some("STUDIO_PRO_MONTHLY"), "plan_id -> offer");
    assert_eq!(s.subject, Some(Subject::user("u_456")), "notes.user_id");
    assert_eq!(s.customer.as_deref(), Some("razorpay:cust_D00000000000001"));
    assert_eq!((s.period_start, s.period_end), (Some(t(T0)), Some(t(P1E))));
    assert_eq!(f.provider, Provider::Razorpay);

    let facts = rzp_facts(&cat, &event("razorpay/subscription.charged.json"));
    assert_eq!(facts.len(), 2, "a charge is a snapshot and a paid invoice");
    let FactBody::InvoicePaid(i) = &facts[1].body else { panic!() };
    assert_eq!(i.id, "razorpay:inv_00000000000001");
    assert_eq!(i.subscription, "razorpay:sub_00000000000001");
    assert!(i.payment_refs.contains(&"razorpay:pay_00000000000001".to_string()));
    assert_eq!(i.period_end, Some(t(P1E)));

    let status = |p: &str| match &rzp_facts(&cat, &event(p))[0].body {
        FactBody::Subscription(s) => s.status,
        _ => panic!(),
    };
    // A pending or halted subscription is also a payment due.
    for p in ["razorpay/subscription.pending.json", "razorpay/subscription.halted.json"] {
        let facts = rzp_facts(&cat, &event(p));
        assert_eq!(facts.len(), 2, "{p}: a snapshot and a failed payment");
        assert!(matches!(&facts[1].body, FactBody::InvoiceFailed(i) if i.subscription == "razorpay:sub_00000000000001"));
    }
    assert_eq!(status("razorpay/subscription.pending.json"), SubStatus::PastDue);
    assert_eq!(status("razorpay/subscription.halted.json"), SubStatus::PastDue);
    assert_eq!(status("razorpay/subscription.cancelled.json"), SubStatus::Canceled);
    assert_eq!(status("razorpay/subscription.completed.json"), SubStatus::Canceled);
    let FactBody::Subscription(s) = one(rzp_facts(&cat, &event("razorpay/subscription.updated.json"))).body else {
        panic!()
    };
    assert_eq!(s.items[0].quantity, 2);
}

#[test]
fn razorpay_payments_refunds_disputes() {
    let cat = catalog();
    let f = one(rzp_facts(&cat, &event("razorpay/payment.captured.json")));
    let FactBody::Purchase(p) = &f.body else { panic!() };
    assert_eq!((p.offer.as_deref(), p.mode), (Some("AI_TOPUP_500"), PurchaseMode::Payment));
    assert_eq!(p.subject, Some(Subject::user("u_456")));
    assert_eq!(p.currency, "inr");
    let sub_pay = parse_razorpay_event(&cat, &event("razorpay/payment.captured.subscription.json"), None).unwrap();
    let Parsed::Ignored { reason, .. } = sub_pay else { panic!() };
    assert!(reason.contains("subscription.charged"), "{reason}");
    let f = one(rzp_facts(&cat, &event("razorpay/refund.processed.json")));
    let FactBody::Refund(r) = &f.body else { panic!() };
    assert!(r.is_full());
    assert_eq!(r.payment_refs, vec!["razorpay:pay_00000000000009"]);
    assert_eq!((r.amount, r.reversed, r.own_amount), (19900, 19900, 19900));
    // Without the payment entity only the refund's own amount is told: the fold reads it
    // against the payment's amount.
    let f = one(rzp_facts(
        &cat,
        &edit("razorpay/refund.processed.json", |v| {
            v["payload"].as_object_mut().unwrap().remove("payment");
        }),
    ));
    let FactBody::Refund(r) = &f.body else { panic!() };
    assert_eq!((r.amount, r.reversed, r.own_amount, r.is_full()), (0, 0, 19900, false));
    let f = one(rzp_facts(&cat, &event("razorpay/payment.dispute.created.json")));
    let FactBody::Dispute(d) = &f.body else { panic!() };
    // The payment's amount (the event carries the payment) and the disputed amount.
    assert_eq!((d.amount, d.reversed), (7900, 7900));
}

/// Razorpay's `order.paid` carries the payment it was paid by (and the order): read as that
/// payment, with the fact `payment.captured` of it gives (one key, one content), so an
/// account subscribed to either event, or both, counts the purchase once.
#[test]
fn razorpay_order_paid_is_the_payment_it_carries() {
    let cat = catalog();
    let captured = one(rzp_facts(&cat, &event("razorpay/payment.captured.json")));
    let paid = one(rzp_facts(&cat, &event("razorpay/order.paid.json")));
    assert_eq!(paid.key, "razorpay:payment:pay_00000000000009:paid");
    assert_eq!((&paid.key, &paid.body), (&captured.key, &captured.body));
    let FactBody::Purchase(p) = &paid.body else { panic!() };
    assert_eq!((p.offer.as_deref(), p.amount, p.payment_refs.clone()), (Some("AI_TOPUP_500"), 19900, vec!["razorpay:order_00000000000009".to_string()]));
    // An order paid by a subscription's payment is applied from subscription.charged.
    let sub = parse_razorpay_event(
        &cat,
        &edit("razorpay/order.paid.json", |v| v["payload"]["payment"]["entity"]["invoice_id"] = json!("inv_1")),
        None,
    )
    .unwrap();
    assert!(matches!(sub, Parsed::Ignored { .. }), "{sub:?}");
    // It always carries the payment.
    let e = parse_razorpay_event(&cat, &edit("razorpay/order.paid.json", |v| drop(v["payload"].as_object_mut().unwrap().remove("payment"))), None)
        .unwrap_err();
    assert_eq!(e.to_string(), "missing field `payload.payment`");
}

/// Razorpay: the plan wins over the notes; a payment whose notes name no offer the catalog
/// has, or no buyer, is read (and waits for an operator) instead of being refused.
#[test]
fn razorpay_wrong_notes_are_warnings() {
    let cat = catalog();
    let parse = |raw: String| parse_razorpay_event(&cat, &raw, None).unwrap_or_else(|e| panic!("{e}"));
    let p = parse(edit("razorpay/payment.captured.json", |v| {
        v["payload"]["payment"]["entity"]["notes"]["offer_key"] = json!("GONE");
    }));
    let FactBody::Purchase(pur) = &p.facts()[0].body else { panic!() };
    assert_eq!((pur.offer.as_deref(), pur.subject.clone()), (None, Some(Subject::user("u_456"))));
    assert_eq!(p.warnings(), ["field `payload.payment.entity.notes.offer_key`: offer `GONE` is not in the catalog"]);
    let st = reduce(&cat, p.facts(), t(T0 + 100));
    assert_eq!(st.pending.len(), 1, "a payment of no known offer waits: {:?}", st.pending);
    let p = parse(edit("razorpay/payment.captured.json", |v| {
        let notes = &mut v["payload"]["payment"]["entity"]["notes"];
        notes.as_object_mut().unwrap().remove("user_id");
        v["payload"]["payment"]["entity"]["customer_id"] = json!(null);
    }));
    let FactBody::Purchase(pur) = &p.facts()[0].body else { panic!() };
    assert_eq!((pur.offer.as_deref(), pur.subject.clone()), (Some("AI_TOPUP_500"), None));
    let st = reduce(&cat, p.facts(), t(T0 + 100));
    assert!(st.pending[0].reason.contains("names no user"), "{:?}", st.pending);
    // A subscription's plan maps: the notes' other offer is a warning, the plan's is used.
    let p = parse(edit("razorpay/subscription.activated.json", |v| {
        v["payload"]["subscription"]["entity"]["notes"]["offer_key"] = json!("GONE");
        v["payload"]["subscription"]["entity"]["notes"]["clouds"] = json!("nope,nothing");
    }));
    let FactBody::Subscription(s) = &p.facts()[0].body else { panic!() };
    assert_eq!(s.items[0].offer.as_deref(), Some("STUDIO_PRO_MONTHLY"));
    assert!(p.warnings()[0].contains("the plan's is used"), "{:?}", p.warnings());
}

#[test]
fn razorpay_event_ids_come_from_the_header_or_the_body() {
    let cat = catalog();
    let raw = event("razorpay/subscription.activated.json");
    let a = parse_razorpay_event(&cat, &raw, Some("evt_hdr_1")).unwrap();
    assert_eq!(a.event().id, "evt_hdr_1");
    let b = parse_razorpay_event(&cat, &raw, None).unwrap();
    let c = parse_razorpay_event(&cat, &raw, Some("  ")).unwrap();
    assert!(b.event().id.starts_with("sha256:"));
    assert_eq!(b.event().id, c.event().id, "a retry of the same body has the same id");
    // Two deliveries under different event ids are still one fact.
    assert_eq!(a.facts()[0].key, b.facts()[0].key);
}

#[test]
fn razorpay_malformed_bodies() {
    let cat = catalog();
    let p = |raw: String| parse_razorpay_event(&cat, &raw, None).unwrap_err();
    let e = p(edit("razorpay/subscription.activated.json", |v| v["entity"] = json!("subscription")));
    assert_eq!(e.path(), "entity");
    let e = p(edit("razorpay/subscription.activated.json", |v| {
        v.as_object_mut().unwrap().remove("created_at");
    }));
    assert_eq!(e.to_string(), "missing field `created_at`");
    let e = p(edit("razorpay/subscription.activated.json", |v| {
        v["payload"]["subscription"]["entity"]["current_end"] = json!(null);
    }));
    assert_eq!(e.to_string(), "missing field `payload.subscription.entity.current_end`");
    let e = p(edit("razorpay/subscription.charged.json", |v| {
        v["payload"].as_object_mut().unwrap().remove("payment");
    }));
    assert_eq!(e.to_string(), "missing field `payload.payment`");
    let ignored = parse_razorpay_event(
        &cat,
        &edit("razorpay/subscription.activated.json", |v| v["event"] = json!("payment.authorized")),
        None,
    )
    .unwrap();
    assert!(matches!(ignored, Parsed::Ignored { .. }));
}

#[test]
fn provider_detection() {
    assert_eq!(detect_provider(&event("stripe/invoice.paid.basil.json")), Some(Provider::Stripe));
    assert_eq!(detect_provider(&event("razorpay/subscription.charged.json")), Some(Provider::Razorpay));
    assert_eq!(detect_provider("[]"), None);
}

#[test]
fn value_and_string_entry_points_agree() {
    let cat = catalog();
    for dir in ["stripe", "razorpay"] {
        for e in std::fs::read_dir(format!("{}/tests/events/{dir}", env!("CARGO_MANIFEST_DIR"))).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let path = format!("{dir}/{name}");
            let (raw, v) = (event(&path), json(&path));
            if dir == "stripe" {
                assert_eq!(parse_stripe_value(&cat, &v), parse_stripe_event(&cat, &raw), "{path}");
            } else {
                assert_eq!(
                    parse_razorpay_value(&cat, &v, Some("evt_x")),
                    parse_razorpay_event(&cat, &raw, Some("evt_x")),
                    "{path}"
                );
            }
        }
    }
    assert_eq!(parse_stripe_value(&cat, &json!([])).unwrap_err().code(), "wrong_type");
}

#[test]
fn dispute_statuses_give_open_won_lost_or_refunded() {
    let cat = catalog();
    let dispute = |ty: &str, status: Option<&str>| {
        edit("stripe/charge.dispute.created.json", |v| {
            v["type"] = json!(ty);
            match status {
                Some(s) => obj(v)["status"] = json!(s),
                None => {
                    obj(v).as_object_mut().unwrap().remove("status");
                }
            }
        })
    };
    let state = |raw: &str| {
        let f = one(stripe_facts(&cat, raw));
        let FactBody::Dispute(d) = &f.body else { panic!("{f:?}") };
        (f.key.clone(), d.outcome)
    };
    let id = "dp_1Pgc71B7WZ01zgkWMevJiAUx";
    // Open: one fact for every event of the open dispute.
    for ty in ["charge.dispute.created", "charge.dispute.updated", "charge.dispute.funds_withdrawn"] {
        for s in ["warning_needs_response", "warning_under_review", "needs_response", "under_review"] {
            assert_eq!(state(&dispute(ty, Some(s))), (format!("stripe:dispute:{id}:created"), None), "{ty} {s}");
        }
    }
    assert_eq!(state(&dispute("charge.dispute.created", None)).1, None, "no status: open");
    // Closed: won (an inquiry closed without a chargeback counts as won), lost, or
    // closed by a refund (whose own event takes back what it refunded).
    for (s, o, end) in [
        ("won", DisputeOutcome::Won, "won"),
        ("warning_closed", DisputeOutcome::Won, "won"),
        ("prevented", DisputeOutcome::Won, "won"),
        ("lost", DisputeOutcome::Lost, "lost"),
        ("charge_refunded", DisputeOutcome::Refunded, "refunded"),
    ] {
        assert_eq!(
            state(&dispute("charge.dispute.closed", Some(s))),
            (format!("stripe:dispute:{id}:closed:{end}"), Some(o))
        );
        assert_eq!(state(&dispute("charge.dispute.updated", Some(s))).1, Some(o), "an update may report the end");
    }
    let f = one(stripe_facts(&cat, &event("stripe/charge.dispute.closed.won.json")));
    let FactBody::Dispute(d) = &f.body else { panic!() };
    assert_eq!(d.outcome, Some(DisputeOutcome::Won));
    assert_eq!(d.payment_refs, vec!["stripe:ch_3Pgc6uB7WZ01zgkW0bHkq1Lm", "stripe:pi_3Pgc6uB7WZ01zgkW0h1nvY7c"]);
    // The outcome survives the store; a stored open dispute (no `outcome`) reads as open.
    let back: Fact = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
    assert_eq!(back, f);
    let mut old = serde_json::to_value(one(stripe_facts(&cat, &event("stripe/charge.dispute.created.json")))).unwrap();
    assert!(old.get("outcome").is_none());
    old.as_object_mut().unwrap().remove("outcome");
    let old: Fact = serde_json::from_value(old).unwrap();
    assert!(matches!(old.body, FactBody::Dispute(Reversal { outcome: None, .. })));
    // Malformed: a closing without a final status, an unknown status.
    let e = err(&dispute("charge.dispute.closed", None));
    assert_eq!((e.code(), e.path()), ("missing_field", "data.object.status"));
    let e = err(&dispute("charge.dispute.closed", Some("under_review")));
    assert_eq!((e.code(), e.path()), ("invalid_value", "data.object.status"));
    let e = err(&dispute("charge.dispute.created", Some("pondering")));
    assert!(e.to_string().contains("warning_closed"), "{e}");
    // funds_reinstated carries no outcome of its own (charge.dispute.closed does).
    assert!(matches!(
        parse_stripe_event(&cat, &dispute("charge.dispute.funds_reinstated", Some("won"))).unwrap(),
        Parsed::Ignored { .. }
    ));
}

#[test]
fn invoice_payments_link_a_payment_to_its_invoice() {
    let cat = catalog();
    let f = one(stripe_facts(&cat, &event("stripe/invoice_payment.paid.basil.json")));
    assert_eq!(f.key, "stripe:invoice_payment:inpay_1Pgc6tB7WZ01zgkWu9fdqL6I:paid");
    assert_eq!(f.body.type_name(), "invoice_payment");
    let FactBody::InvoicePayment(p) = &f.body else { panic!("{f:?}") };
    assert_eq!(p.invoice, "stripe:in_1Pgc6tB7WZ01zgkWu9fdqL6I");
    assert_eq!(p.payment_refs, vec!["stripe:pi_3Pgc6uB7WZ01zgkW0h1nvY7c"]);
    assert_eq!((p.amount, p.currency.as_str()), (2900, "usd"));
    // A store reaches the invoice from a refund of the payment, and back: they share refs.
    let refund = one(stripe_facts(&cat, &event("stripe/charge.refunded.invoice.basil.json")));
    let mut paid = edit("stripe/invoice.paid.basil.json", |v| {
        obj(v).as_object_mut().unwrap().remove("payments");
    });
    let invoice = one(stripe_facts(&cat, &paid));
    let shares = |a: &Fact, b: &Fact| a.refs().iter().any(|r| b.refs().contains(r));
    assert!(!shares(&refund, &invoice), "without the link, nothing connects them");
    assert!(shares(&refund, &f) && shares(&f, &invoice));
    // The charge (when the payment has no payment intent) and the shape that has the
    // ids at the top level are read too.
    let charge = edit("stripe/invoice_payment.paid.basil.json", |v| {
        obj(v)["payment"] = json!({"type": "charge", "charge": "ch_1PgafuB7WZ01zgkWXYmPNZs8"});
    });
    let FactBody::InvoicePayment(p) = one(stripe_facts(&cat, &charge)).body else { panic!() };
    assert_eq!(p.payment_refs, vec!["stripe:ch_1PgafuB7WZ01zgkWXYmPNZs8"]);
    let flat = edit("stripe/invoice_payment.paid.basil.json", |v| {
        obj(v).as_object_mut().unwrap().remove("payment");
        obj(v)["payment_intent"] = json!("pi_3Pgc6uB7WZ01zgkW0h1nvY7c");
        obj(v)["charge"] = json!(null);
    });
    let FactBody::InvoicePayment(q) = one(stripe_facts(&cat, &flat)).body else { panic!() };
    assert_eq!(q.payment_refs, vec!["stripe:pi_3Pgc6uB7WZ01zgkW0h1nvY7c"]);
    // An invoice that lists its payments (expanded) has the same refs either way.
    paid = edit("stripe/invoice.paid.basil.json", |v| {
        obj(v)["payments"]["data"][0] = json!({"id": "inpay_1", "object": "invoice_payment",
            "payment_intent": "pi_3Pgc6uB7WZ01zgkW0h1nvY7c", "status": "paid"});
    });
    let FactBody::InvoicePaid(i) = one(stripe_facts(&cat, &paid)).body else { panic!() };
    assert!(i.payment_refs.contains(&"stripe:pi_3Pgc6uB7WZ01zgkW0h1nvY7c".to_string()));
    // Not paid, or paid out of band: nothing to link.
    for (k, v) in [("status", json!("open")), ("payment", json!({"type": "payment_record", "payment_record": "pr_1"}))]
    {
        let raw = edit("stripe/invoice_payment.paid.basil.json", |x| obj(x)[k] = v.clone());
        assert!(matches!(parse_stripe_event(&cat, &raw).unwrap(), Parsed::Ignored { .. }), "{k}");
    }
    // Malformed: no invoice, not an invoice payment.
    let e = err(&edit("stripe/invoice_payment.paid.basil.json", |v| obj(v)["invoice"] = json!(null)));
    assert_eq!((e.code(), e.path()), ("missing_field", "data.object.invoice"));
    let e = err(&edit("stripe/invoice_payment.paid.basil.json", |v| obj(v)["object"] = json!("invoice")));
    assert_eq!((e.code(), e.path()), ("invalid_value", "data.object.object"));
}

#[test]
fn razorpay_dispute_outcomes() {
    let cat = catalog();
    let raw = |ev: &str, status: &str| {
        edit("razorpay/payment.dispute.created.json", |v| {
            v["event"] = json!(ev);
            v["payload"]["dispute"]["entity"]["status"] = json!(status);
        })
    };
    let outcome = |r: &str| {
        let f = one(rzp_facts(&cat, r));
        let FactBody::Dispute(d) = f.body else { panic!() };
        (f.key.split(':').skip(3).collect::<Vec<_>>().join(":"), d.outcome)
    };
    assert_eq!(outcome(&raw("payment.dispute.under_review", "under_review")), ("created".into(), None));
    assert_eq!(outcome(&raw("payment.dispute.action_required", "open")), ("created".into(), None));
    assert_eq!(outcome(&raw("payment.dispute.won", "won")), ("closed:won".into(), Some(DisputeOutcome::Won)));
    assert_eq!(outcome(&raw("payment.dispute.lost", "lost")), ("closed:lost".into(), Some(DisputeOutcome::Lost)));
    assert_eq!(outcome(&raw("payment.dispute.closed", "won")), ("closed:won".into(), Some(DisputeOutcome::Won)));
    assert_eq!(outcome(&raw("payment.dispute.closed", "lost")), ("closed:lost".into(), Some(DisputeOutcome::Lost)));
    // A fraud inquiry closed without a chargeback takes nothing back: as won.
    assert_eq!(outcome(&raw("payment.dispute.closed", "closed")), ("closed:won".into(), Some(DisputeOutcome::Won)));
    let p = parse_razorpay_event(&cat, &raw("payment.dispute.closed", "under_review"), None).unwrap();
    assert!(matches!(p, Parsed::Ignored { .. }));
}

/// A Stripe key's mode, and an event of the other mode than the endpoint's: an error
/// naming both (a host keeps the event), never facts; an event that names no mode, or an
/// endpoint of no known mode, reads as before.
#[test]
fn an_event_of_the_other_stripe_mode_is_not_read() {
    use tollgate::billing::{parse_stripe_event_in, StripeMode};
    for (key, mode) in [
        ("sk_live_abc", Some(StripeMode::Live)),
        ("rk_live_abc", Some(StripeMode::Live)),
        (" sk_test_abc ", Some(StripeMode::Test)),
        ("rk_test_abc", Some(StripeMode::Test)),
        ("pk_live_abc", None),
        ("sk_abc", None),
        ("", None),
    ] {
        assert_eq!(StripeMode::of_key(key), mode, "{key:?}");
    }
    let cat = catalog();
    let raw = event("stripe/checkout.session.completed.payment.json");
    let mut v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    for live in [true, false] {
        v["livemode"] = json!(live);
        let text = v.to_string();
        let (same, other) = if live { (StripeMode::Live, StripeMode::Test) } else { (StripeMode::Test, StripeMode::Live) };
        assert_eq!(parse_stripe_event_in(&cat, &text, Some(same)), parse_stripe_event(&cat, &text));
        assert_eq!(parse_stripe_event_in(&cat, &text, None), parse_stripe_event(&cat, &text));
        let e = parse_stripe_event_in(&cat, &text, Some(other)).unwrap_err();
        assert_eq!((e.code(), e.path()), ("wrong_mode", "livemode"));
        assert!(e.to_string().starts_with(&format!("a {}-mode event at an endpoint that serves {} mode", if live { "live" } else { "test" }, other.as_str())), "{e}");
    }
    v.as_object_mut().unwrap().remove("livemode");
    let text = v.to_string();
    assert_eq!(parse_stripe_event_in(&cat, &text, Some(StripeMode::Live)), parse_stripe_event(&cat, &text));
    v["livemode"] = json!("yes");
    assert_eq!(parse_stripe_event_in(&cat, &v.to_string(), Some(StripeMode::Live)).unwrap_err().code(), "wrong_type");
}

/// An update tells the state it followed: Stripe's `previous_attributes` over its object
/// give the snapshot it came from (the same update told without them, with the earlier
/// values), and an event without them follows nothing.
#[test]
fn an_update_follows_the_state_its_previous_attributes_give() {
    let cat = catalog();
    let snapshot = |raw: &str| match stripe_facts(&cat, raw).into_iter().find_map(|f| match f.body {
        FactBody::Subscription(s) => Some(s),
        _ => None,
    }) {
        Some(s) => s,
        None => panic!("a snapshot"),
    };
    let path = "stripe/customer.subscription.updated.cancel_at_period_end.basil.json";
    let update = snapshot(&event(path));
    let earlier = snapshot(&edit(path, |v| {
        v["data"].as_object_mut().unwrap().remove("previous_attributes");
        obj(v)["cancel_at_period_end"] = json!(false);
    }));
    assert_eq!(earlier.follows, None);
    assert_eq!(update.follows, Some(earlier.digest()));
    assert_ne!(update.digest(), earlier.digest());
    // A nested object names only what changed in it; `null`, an attribute it did not have.
    let renamed = snapshot(&edit(path, |v| {
        obj(v)["metadata"] = json!({"offer_key": "STUDIO_PRO_MONTHLY", "clouds": "video"});
        v["data"]["previous_attributes"] = json!({"metadata": {"offer_key": "STUDIO_BASIC_MONTHLY", "clouds": null}});
    }));
    let before = snapshot(&edit(path, |v| {
        v["data"].as_object_mut().unwrap().remove("previous_attributes");
        obj(v)["metadata"] = json!({"offer_key": "STUDIO_BASIC_MONTHLY"});
    }));
    assert_eq!(renamed.follows, Some(before.digest()));
}

/// A subscription's creation and an update of the same second that read the same (a field
/// tollgate does not read changed) are one fact: the second telling restates the first.
#[test]
fn a_creation_and_an_update_that_read_the_same_are_one_fact() {
    let cat = catalog();
    let created_path = "stripe/customer.subscription.created.basil.json";
    let at = json(created_path)["created"].clone();
    let created = stripe_facts(&cat, &event(created_path));
    let updated = stripe_facts(&cat, &edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        v["created"] = at.clone();
        *obj(v) = json(created_path)["data"]["object"].clone();
        v["data"]["previous_attributes"] = json!({"description": "before"});
    }));
    let (c, u) = (&created[0], &updated[0]);
    assert_eq!(c.key, u.key, "one key");
    assert_ne!(c.body, u.body, "told differently");
    assert!(c.restates(u) && u.restates(c));
}
