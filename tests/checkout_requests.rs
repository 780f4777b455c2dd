//! Every money-in request the core builds for the example catalogs, checked against what
//! Stripe's and Razorpay's own API references say a request must be: parameter names,
//! allowed values, amounts in minor units, the attribution the webhooks read back, and
//! refusals decided before any provider is called.
//!
//! References (each assertion below names the one it relies on):
//! - Stripe Checkout Session create: https://docs.stripe.com/api/checkout/sessions/create
//! - Stripe metadata limits: https://docs.stripe.com/api/metadata
//! - Stripe billing portal session: https://docs.stripe.com/api/customer_portal/sessions/create
//! - Stripe subscription update: https://docs.stripe.com/api/subscriptions/update
//! - Stripe schedule create/update: https://docs.stripe.com/api/subscription_schedules/create,
//!   https://docs.stripe.com/api/subscription_schedules/update
//! - Razorpay subscription create: https://razorpay.com/docs/api/payments/subscriptions/create-subscription
//! - Razorpay subscription update: https://razorpay.com/docs/api/payments/subscriptions/subscriptions/update-subscription
//!   and its guide https://razorpay.com/docs/subscriptions/update-subscriptions/
//! - Razorpay order create: https://razorpay.com/docs/api/orders/create

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use tollgate::billing::facts::{SubStatus, Subject};
use tollgate::catalog::{Interval, Offer, Provider, SubjectKind};
use tollgate::checkout::{self, Account, Body, Call, Held, Method, Purchase, Role};
use tollgate::{Catalog, Timestamp};

const NOW: Timestamp = Timestamp(1_800_000_000);
const U: &str = "6f1c1c3e-0000-4000-8000-000000000001";
const O: &str = "6f1c1c3e-0000-4000-8000-0000000000aa";
const OK_URL: &str = "https://app.example.com/ok";
const BACK_URL: &str = "https://app.example.com/pricing";

/// Every example catalog, by file name.
fn catalogs() -> Vec<(String, Catalog)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogs");
    let mut out: Vec<(String, Catalog)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let src = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let cat = Catalog::from_toml(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, cat)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 4, "the example catalogs are found");
    out
}

fn provider(cat: &Catalog, o: &Offer) -> Provider {
    checkout::provider_of(cat, o)
}

fn recurring(o: &Offer) -> bool {
    o.price.interval != Interval::OneTime
}

fn stripe_interval(i: Interval) -> Option<&'static str> {
    match i {
        Interval::Month => Some("month"),
        Interval::Year => Some("year"),
        Interval::OneTime => None,
    }
}

/// The products a bundle's buyer picks: the first `choose` of each choosing grant.
fn clouds_for(o: &Offer) -> Vec<String> {
    let mut out = vec![];
    for g in &o.grants {
        if let Some(n) = g.choose {
            let picked: Vec<String> = g
                .from
                .iter()
                .filter(|p| !out.contains(*p))
                .take(n as usize)
                .cloned()
                .collect();
            out.extend(picked);
        }
    }
    out
}

fn subject_for(o: &Offer) -> Subject {
    match o.subject {
        SubjectKind::User => Subject::user(U),
        SubjectKind::Organization => Subject::org(O),
    }
}

fn account_for(o: &Offer) -> Account {
    let subject = subject_for(o);
    let org = subject.is_org();
    Account {
        subject,
        role: org.then_some(Role::Owner),
        subscriptions: vec![],
        customers: vec![],
        seats_used: 0,
        email: Some("ada@example.com".into()),
    }
}

fn quantity_for(o: &Offer) -> u32 {
    if o.priced_per_seat() || !recurring(o) {
        3
    } else {
        1
    }
}

fn purchase_for(o: &Offer) -> Purchase {
    Purchase {
        offer: o.key.clone(),
        quantity: Some(quantity_for(o)),
        clouds: clouds_for(o),
        success_url: OK_URL.into(),
        cancel_url: BACK_URL.into(),
        price: None,
    }
}

fn form(c: &Call) -> &[(String, String)] {
    match &c.body {
        Body::Form(f) => f,
        other => panic!(
            "{} {}: not a form body: {other:?}",
            c.provider.as_str(),
            c.path
        ),
    }
}

fn json_body(c: &Call) -> &serde_json::Map<String, Value> {
    match &c.body {
        Body::Json(Value::Object(m)) => m,
        other => panic!(
            "{} {}: not a JSON object body: {other:?}",
            c.provider.as_str(),
            c.path
        ),
    }
}

/// The form as a map, refusing a key sent twice (Stripe reads one value per key).
fn fields(c: &Call) -> BTreeMap<&str, &str> {
    let mut m = BTreeMap::new();
    for (k, v) in form(c) {
        assert!(
            m.insert(k.as_str(), v.as_str()).is_none(),
            "{}: `{k}` sent twice",
            c.path
        );
    }
    m
}

/// The top-level parameter of a bracketed form key (`a[b][c]` → `a`).
fn top(k: &str) -> &str {
    k.split('[').next().unwrap()
}

/// Stripe metadata: at most 50 keys, key names up to 40 characters, values up to 500
/// (https://docs.stripe.com/api/metadata).
fn check_stripe_metadata(
    f: &BTreeMap<&str, &str>,
    prefix: &str,
    what: &str,
) -> BTreeMap<String, String> {
    let p = format!("{prefix}[");
    let meta: BTreeMap<String, String> = f
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(p.as_str())
                .and_then(|r| r.strip_suffix(']'))
                .map(|r| (r.to_string(), v.to_string()))
        })
        .collect();
    assert!(meta.len() <= 50, "{what}: {prefix} has {} keys", meta.len());
    for (k, v) in &meta {
        assert!(
            !k.contains('[') && !k.is_empty() && k.len() <= 40,
            "{what}: {prefix} key `{k}`"
        );
        assert!(
            v.chars().count() <= 500,
            "{what}: {prefix}[{k}] is over 500 characters"
        );
    }
    meta
}

// ---------------------------------------------------------------------------------------------
// Checkout: one request per offer of every example catalog.
// ---------------------------------------------------------------------------------------------

/// The Checkout Session parameters the core may send, each a documented parameter of
/// https://docs.stripe.com/api/checkout/sessions/create.
const SESSION_PARAMS: &[&str] = &[
    "mode",
    "line_items",
    "client_reference_id",
    "metadata",
    "subscription_data",
    "payment_intent_data",
    "customer",
    "customer_email",
    "customer_creation",
    "success_url",
    "cancel_url",
    "allow_promotion_codes",
];

fn check_stripe_session(
    cat_name: &str,
    cat: &Catalog,
    o: &Offer,
    p: &Purchase,
    a: &Account,
    c: &Call,
) {
    let what = format!("{cat_name} {}", o.key);
    assert_eq!(
        (c.provider, c.method, c.path.as_str()),
        (Provider::Stripe, Method::Post, "/v1/checkout/sessions"),
        "{what}"
    );
    assert_eq!(
        c.body().unwrap().0,
        "application/x-www-form-urlencoded",
        "{what}"
    );
    let f = fields(c);
    for k in f.keys() {
        assert!(
            SESSION_PARAMS.contains(&top(k)),
            "{what}: `{k}` is not a Checkout Session parameter"
        );
    }
    // mode: `payment` for one-time prices, `subscription` for recurring ones.
    let rec = recurring(o);
    assert_eq!(
        f.get("mode").copied(),
        Some(if rec { "subscription" } else { "payment" }),
        "{what}: mode"
    );
    // line_items[0]: exactly one of `price` and `price_data`.
    let price = f.get("line_items[0][price]").copied();
    let has_data = f.keys().any(|k| k.starts_with("line_items[0][price_data]"));
    assert!(
        price.is_some() != has_data,
        "{what}: line_items[0] needs exactly one of price and price_data"
    );
    if let Some(pr) = price {
        let want = o.stripe_price_ids.first().or(p.price.as_ref()).unwrap();
        assert_eq!(pr, want, "{what}: the offer's own Stripe price");
    } else {
        // price_data: currency (ISO, lower case), unit_amount in the currency's minor unit,
        // product_data.name required, recurring.interval required for subscription mode.
        let cur = f["line_items[0][price_data][currency]"];
        assert_eq!(cur, o.price.currency, "{what}: price_data currency");
        assert!(
            cur.len() == 3 && cur.chars().all(|c| c.is_ascii_lowercase()),
            "{what}: currency `{cur}`"
        );
        assert_eq!(
            f["line_items[0][price_data][unit_amount]"],
            o.price.amount.to_string(),
            "{what}: unit_amount in minor units"
        );
        assert!(o.price.amount > 0);
        assert!(
            !f["line_items[0][price_data][product_data][name]"].is_empty(),
            "{what}: product_data[name] is required"
        );
        assert_eq!(
            f.get("line_items[0][price_data][recurring][interval]")
                .copied(),
            stripe_interval(o.price.interval),
            "{what}: recurring interval only (and always) for a subscription"
        );
        let pd = check_stripe_metadata(
            &f,
            "line_items[0][price_data][product_data][metadata]",
            &what,
        );
        assert_eq!(
            pd.get("offer_key").map(String::as_str),
            Some(o.key.as_str())
        );
    }
    // quantity: what was bought; more than one only for per-seat or one-time offers.
    let q: u32 = f["line_items[0][quantity]"].parse().unwrap();
    assert_eq!(q, p.quantity.unwrap_or(1), "{what}: quantity");
    assert!(q >= 1);
    if rec && !o.priced_per_seat() {
        assert_eq!(q, 1, "{what}: a plan is sold one at a time");
    }
    // Attribution: on the session, and on what the session creates (the subscription's
    // `subscription_data.metadata`, or the payment's `payment_intent_data.metadata`), which
    // is what customer.subscription.* and payment_intent.* events carry.
    let subject = a.subject.to_string();
    let on = if rec {
        "subscription_data[metadata]"
    } else {
        "payment_intent_data[metadata]"
    };
    let off = if rec {
        "payment_intent_data"
    } else {
        "subscription_data"
    };
    for prefix in ["metadata", on] {
        let m = check_stripe_metadata(&f, prefix, &what);
        assert_eq!(
            m.get("offer_key").map(String::as_str),
            Some(o.key.as_str()),
            "{what}: {prefix}[offer_key]"
        );
        assert_eq!(
            m.get("subject").map(String::as_str),
            Some(subject.as_str()),
            "{what}: {prefix}[subject]"
        );
        if !p.clouds.is_empty() {
            assert_eq!(
                m.get("clouds").cloned(),
                Some(p.clouds.join(",")),
                "{what}: {prefix}[clouds]"
            );
        }
    }
    // `subscription_data` is for subscription mode only, `payment_intent_data` for payment
    // mode only (each documented as "A subset of parameters to be passed to ... creation").
    assert!(
        !f.keys().any(|k| top(k) == off),
        "{what}: `{off}` in {} mode",
        f["mode"]
    );
    let cri = f["client_reference_id"];
    assert!(
        !cri.is_empty() && cri.len() <= 200,
        "{what}: client_reference_id is at most 200 characters"
    );
    // Trial: `subscription_data[trial_period_days]`, at least 1, the catalog's days.
    match f.get("subscription_data[trial_period_days]") {
        Some(d) => {
            assert!(
                rec && o.trial_days > 0,
                "{what}: a trial on an offer without one"
            );
            let d: u32 = d.parse().unwrap();
            assert!(d >= 1, "{what}: trial_period_days has to be at least 1");
            assert_eq!(d, o.trial_days, "{what}: the catalog's trial days");
        }
        None => assert!(
            !rec || o.trial_days == 0 || !a.subscriptions.is_empty(),
            "{what}: the catalog's trial is missing"
        ),
    }
    // customer XOR customer_email; customer_creation only in payment mode, never with a
    // customer ("Can only be set in payment and setup mode").
    let cust = f.get("customer").copied();
    assert!(
        !(cust.is_some() && f.contains_key("customer_email")),
        "{what}: both customer and customer_email"
    );
    match a.customers.iter().find(|(p, _)| *p == Provider::Stripe) {
        Some((_, id)) => assert_eq!(
            cust,
            Some(id.as_str()),
            "{what}: the subject's customer is reused"
        ),
        None => {
            assert_eq!(cust, None);
            assert_eq!(
                f.get("customer_email").copied(),
                a.email.as_deref(),
                "{what}: customer_email"
            );
        }
    }
    if let Some(cc) = f.get("customer_creation") {
        assert!(
            !rec && cust.is_none(),
            "{what}: customer_creation only in payment mode without a customer"
        );
        assert!(
            ["always", "if_required"].contains(cc),
            "{what}: customer_creation `{cc}`"
        );
    }
    assert_eq!(f.get("success_url").copied(), Some(OK_URL), "{what}");
    assert_eq!(f.get("cancel_url").copied(), Some(BACK_URL), "{what}");
    if let Some(v) = f.get("allow_promotion_codes") {
        assert_eq!(*v, "true");
        assert!(cat.meta().allow_promotion_codes);
    }
}

/// Razorpay notes: at most 15 key-value pairs, each value at most 256 characters
/// (https://razorpay.com/docs/api/payments/subscriptions/create-subscription,
/// https://razorpay.com/docs/api/orders/create).
fn check_notes(v: &Value, o: &Offer, a: &Account, what: &str) {
    let m = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: notes is an object"));
    assert!(m.len() <= 15, "{what}: {} notes", m.len());
    for (k, x) in m {
        let s = x
            .as_str()
            .unwrap_or_else(|| panic!("{what}: notes[{k}] is a string"));
        assert!(
            s.chars().count() <= 256,
            "{what}: notes[{k}] is over 256 characters"
        );
    }
    assert_eq!(m["offer_key"], o.key.as_str(), "{what}: notes.offer_key");
    assert_eq!(
        m["subject"],
        a.subject.to_string().as_str(),
        "{what}: notes.subject"
    );
}

fn check_razorpay_purchase(cat_name: &str, o: &Offer, p: &Purchase, a: &Account, c: &Call) {
    let what = format!("{cat_name} {}", o.key);
    assert_eq!(
        (c.provider, c.method),
        (Provider::Razorpay, Method::Post),
        "{what}"
    );
    assert_eq!(c.body().unwrap().0, "application/json", "{what}");
    let b = json_body(c);
    let q = p.quantity.unwrap_or(1);
    match o.price.interval.months() {
        Some(months) => {
            assert_eq!(c.path, "/v1/subscriptions", "{what}");
            for k in b.keys() {
                assert!(
                    [
                        "plan_id",
                        "total_count",
                        "quantity",
                        "start_at",
                        "expire_by",
                        "customer_notify",
                        "addons",
                        "offer_id",
                        "notes",
                        "notify_info"
                    ]
                    .contains(&k.as_str()),
                    "{what}: `{k}` is not a parameter of Create a Subscription"
                );
            }
            assert_eq!(
                b["plan_id"],
                o.razorpay_plan_ids[0].as_str(),
                "{what}: plan_id"
            );
            // total_count (required): billing cycles; "a maximum duration of 100 years".
            let n = b["total_count"]
                .as_u64()
                .unwrap_or_else(|| panic!("{what}: total_count is an integer"));
            assert!(
                n >= 1 && n * u64::from(months) <= 1200,
                "{what}: total_count {n} of {months}-month cycles"
            );
            assert_eq!(
                n * u64::from(months),
                120,
                "{what}: ten years of cycles, as the core intends"
            );
            let notify = &b["customer_notify"];
            assert!(
                notify.is_boolean() || notify == &json!(0) || notify == &json!(1),
                "{what}: customer_notify {notify}"
            );
            match b.get("quantity") {
                Some(x) => assert_eq!(x.as_u64(), Some(u64::from(q)), "{what}: quantity"),
                None => assert_eq!(q, 1, "{what}: quantity {q} dropped"),
            }
        }
        None => {
            assert_eq!(c.path, "/v1/orders", "{what}");
            for k in b.keys() {
                assert!(
                    [
                        "amount",
                        "currency",
                        "receipt",
                        "notes",
                        "partial_payment",
                        "first_payment_min_amount"
                    ]
                    .contains(&k.as_str()),
                    "{what}: `{k}` is not a parameter of Create an Order"
                );
            }
            // amount: in the currency subunit (paise), the whole purchase; at least ₹1.
            let amount = b["amount"]
                .as_i64()
                .unwrap_or_else(|| panic!("{what}: amount is an integer"));
            assert_eq!(
                amount,
                o.price.amount * i64::from(q),
                "{what}: amount in paise for {q}"
            );
            assert!(
                amount >= 100,
                "{what}: amount below the minimum of 100 subunits"
            );
            assert_eq!(
                b["currency"],
                o.price.currency.to_ascii_uppercase().as_str(),
                "{what}: currency"
            );
            let receipt = b["receipt"].as_str().unwrap();
            assert!(
                !receipt.is_empty() && receipt.len() <= 40,
                "{what}: receipt of at most 40 characters"
            );
        }
    }
    check_notes(&b["notes"], o, a, &what);
}

#[test]
fn every_offer_of_every_catalog_checks_out_as_its_provider_requires() {
    let mut seen = BTreeSet::new();
    for (name, cat) in catalogs() {
        for o in cat.offers().iter().filter(|o| !o.hidden) {
            let p = purchase_for(o);
            for with_customer in [false, true] {
                let mut a = account_for(o);
                if with_customer {
                    a.customers.push((Provider::Stripe, "cus_1".into()));
                    a.customers.push((Provider::Razorpay, "cust_R".into()));
                }
                let c = checkout::checkout(&cat, &p, &a, NOW)
                    .unwrap_or_else(|r| panic!("{name} {}: refused {r:?}", o.key));
                match provider(&cat, o) {
                    Provider::Stripe => check_stripe_session(&name, &cat, o, &p, &a, &c),
                    Provider::Razorpay => check_razorpay_purchase(&name, o, &p, &a, &c),
                }
                seen.insert((provider(&cat, o).as_str(), recurring(o)));
            }
            // A catalog that sells by lookup key: the price found is sold, and nothing else.
            if provider(&cat, o) == Provider::Stripe
                && checkout::price_lookup(&cat, &o.key).is_some()
            {
                let l = checkout::price_lookup(&cat, &o.key).unwrap();
                assert_eq!((l.method, &l.body), (Method::Get, &Body::None));
                assert!(
                    l.path.starts_with("/v1/prices?lookup_keys[0]="),
                    "{}",
                    l.path
                );
                let mut found = p.clone();
                found.price = Some("price_found".into());
                let a = account_for(o);
                let c = checkout::checkout(&cat, &found, &a, NOW).unwrap();
                check_stripe_session(&name, &cat, o, &found, &a, &c);
                assert_eq!(c.field("line_items[0][price]"), Some("price_found"));
            }
        }
    }
    // The catalogs exercise all four kinds of purchase.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn a_trial_is_sent_once_and_only_on_a_subscription() {
    for (name, cat) in catalogs() {
        for o in cat
            .offers()
            .iter()
            .filter(|o| !o.hidden && provider(&cat, o) == Provider::Stripe)
        {
            let c = checkout::checkout(&cat, &purchase_for(o), &account_for(o), NOW).unwrap();
            let want = (recurring(o) && o.trial_days > 0).then(|| o.trial_days.to_string());
            assert_eq!(
                c.field("subscription_data[trial_period_days]")
                    .map(str::to_string),
                want,
                "{name} {}",
                o.key
            );
        }
    }
}

#[test]
fn refusals_come_before_any_request_for_every_offer() {
    for (name, cat) in catalogs() {
        for o in cat.offers().iter().filter(|o| !o.hidden) {
            // Another subject kind, a bad URL, no quantity, a member of an organization.
            let mut wrong = account_for(o);
            wrong.subject = if wrong.subject.is_org() {
                Subject::user(U)
            } else {
                Subject::org(O)
            };
            wrong.role = wrong.subject.is_org().then_some(Role::Owner);
            assert!(
                checkout::checkout(&cat, &purchase_for(o), &wrong, NOW).is_err(),
                "{name} {}: wrong subject",
                o.key
            );
            let mut bad = purchase_for(o);
            bad.success_url = "ftp://x".into();
            assert!(
                checkout::checkout(&cat, &bad, &account_for(o), NOW).is_err(),
                "{name} {}: bad url",
                o.key
            );
            let mut zero = purchase_for(o);
            zero.quantity = Some(0);
            assert!(
                checkout::checkout(&cat, &zero, &account_for(o), NOW).is_err(),
                "{name} {}: quantity 0",
                o.key
            );
            if o.subject == SubjectKind::Organization {
                let mut member = account_for(o);
                member.role = Some(Role::Member);
                assert!(
                    checkout::checkout(&cat, &purchase_for(o), &member, NOW).is_err(),
                    "{name} {}: member",
                    o.key
                );
            }
            if recurring(o) && !o.priced_per_seat() {
                let mut two = purchase_for(o);
                two.quantity = Some(2);
                assert!(
                    checkout::checkout(&cat, &two, &account_for(o), NOW).is_err(),
                    "{name} {}: two of a plan",
                    o.key
                );
            }
        }
    }
}

#[test]
fn the_portal_session_names_the_customer_and_the_return_url_only() {
    // https://docs.stripe.com/api/customer_portal/sessions/create: `customer` (required),
    // `return_url`.
    for subject in [Subject::user(U), Subject::org(O)] {
        let a = Account {
            role: subject.is_org().then_some(Role::Admin),
            subject,
            subscriptions: vec![],
            customers: vec![(Provider::Stripe, "cus_1".into())],
            seats_used: 0,
            email: None,
        };
        let c = checkout::portal(&a, "https://app.example.com/account").unwrap();
        assert_eq!(
            (c.provider, c.method, c.path.as_str()),
            (
                Provider::Stripe,
                Method::Post,
                "/v1/billing_portal/sessions"
            )
        );
        let f = fields(&c);
        assert_eq!(
            f.keys().copied().collect::<Vec<_>>(),
            ["customer", "return_url"]
        );
        assert_eq!(f["customer"], "cus_1");
        assert_eq!(f["return_url"], "https://app.example.com/account");
    }
}

// ---------------------------------------------------------------------------------------------
// Plan changes: every pair of recurring offers of a catalog.
// ---------------------------------------------------------------------------------------------

fn held(provider: Provider, from: &Offer, status: SubStatus) -> Held {
    Held {
        provider,
        id: "sub_1".into(),
        offer: Some(from.key.clone()),
        status,
        quantity: quantity_for(from),
        cancel_at_period_end: false,
        current_period_end: Some(Timestamp(NOW.0 + 86_400)),
        products: vec![],
    }
}

/// The account of `from`'s subject holding `from`, as [`held`] writes it.
fn holding(from: &Offer, provider: Provider, status: SubStatus) -> Account {
    let mut a = account_for(from);
    a.subscriptions.push(held(provider, from, status));
    a
}

/// Stripe's subscription object (the one a recorded `customer.subscription.created` event
/// carries) on `from`'s price.
fn stripe_subscription(from: &Offer, quantity: u32) -> Value {
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/events/stripe/customer.subscription.created.basil.json"
    );
    let event: Value = serde_json::from_str(&std::fs::read_to_string(event).unwrap()).unwrap();
    let mut sub = event["data"]["object"].clone();
    assert_eq!(sub["object"], "subscription");
    sub["id"] = json!("sub_1");
    sub["status"] = json!("active");
    sub["schedule"] = Value::Null;
    sub["cancel_at_period_end"] = json!(false);
    sub["pause_collection"] = Value::Null;
    sub["currency"] = json!(from.price.currency);
    let item = &mut sub["items"]["data"][0];
    item["id"] = json!("si_1");
    item["quantity"] = json!(quantity);
    let price = &mut item["price"];
    price["id"] = json!(from
        .stripe_price_ids
        .first()
        .cloned()
        .unwrap_or_else(|| "price_from".into()));
    price["product"] = json!("prod_from");
    price["currency"] = json!(from.price.currency);
    price["unit_amount"] = json!(from.price.amount);
    price["recurring"] = json!({"interval": stripe_interval(from.price.interval), "interval_count": 1, "usage_type": "licensed"});
    sub
}

/// The schedule Stripe answers to `from_subscription`: one phase, the current period,
/// the subscription's item.
fn stripe_schedule(sub: &Value) -> Value {
    let item = &sub["items"]["data"][0];
    json!({
        "id": "sub_sched_1",
        "object": "subscription_schedule",
        "subscription": "sub_1",
        "status": "active",
        "end_behavior": "release",
        "current_phase": {"start_date": 1_797_000_000, "end_date": 1_800_086_400},
        "phases": [{
            "start_date": 1_797_000_000,
            "end_date": 1_800_086_400,
            "currency": sub["currency"],
            "metadata": {},
            "items": [{"price": item["price"]["id"], "quantity": item["quantity"], "metadata": {}}],
        }],
    })
}

/// The price of a subscription item as Stripe takes it (`price`, or `price_data` with
/// currency, product, unit_amount and recurring[interval], all required there).
fn check_item_price(f: &BTreeMap<&str, &str>, prefix: &str, to: &Offer, what: &str) {
    let price = f.get(format!("{prefix}[price]").as_str()).copied();
    let data: Vec<&&str> = f
        .keys()
        .filter(|k| k.starts_with(&format!("{prefix}[price_data]")))
        .collect();
    assert!(
        price.is_some() == data.is_empty(),
        "{what}: {prefix} needs exactly one of price and price_data"
    );
    match price {
        Some(p) => assert_eq!(p, to.stripe_price_ids[0], "{what}: {prefix}[price]"),
        None => {
            let g = |k: &str| {
                f.get(format!("{prefix}[price_data][{k}]").as_str())
                    .copied()
            };
            assert_eq!(
                g("currency"),
                Some(to.price.currency.as_str()),
                "{what}: price_data currency"
            );
            assert_eq!(
                g("product"),
                Some("prod_from"),
                "{what}: price_data product (product_data is not accepted here)"
            );
            assert_eq!(
                g("unit_amount"),
                Some(to.price.amount.to_string().as_str()),
                "{what}: price_data unit_amount"
            );
            assert_eq!(
                f.get(format!("{prefix}[price_data][recurring][interval]").as_str())
                    .copied(),
                stripe_interval(to.price.interval),
                "{what}: price_data recurring interval"
            );
            assert!(
                g("product_data][name").is_none(),
                "{what}: product_data is not a subscription item parameter"
            );
        }
    }
}

/// Pairs (catalog, from, to) of recurring offers a subscription may move between.
fn change_pairs() -> Vec<(String, Catalog, String, String)> {
    let mut out = vec![];
    for (name, cat) in catalogs() {
        let recurring_offers: Vec<&Offer> = cat
            .offers()
            .iter()
            .filter(|o| recurring(o) && !o.hidden)
            .collect();
        for from in &recurring_offers {
            for to in &recurring_offers {
                if from.key == to.key
                    || provider(&cat, from) != provider(&cat, to)
                    || from.subject != to.subject
                    || from.price.currency != to.price.currency
                {
                    continue;
                }
                out.push((name.clone(), cat.clone(), from.key.clone(), to.key.clone()));
            }
        }
    }
    out
}

#[test]
fn every_stripe_plan_change_is_an_update_stripe_accepts() {
    let mut upgrades = 0;
    let mut downgrades = 0;
    for (name, cat, from_key, to_key) in change_pairs() {
        let (from, to) = (cat.offer(&from_key).unwrap(), cat.offer(&to_key).unwrap());
        if provider(&cat, from) != Provider::Stripe {
            continue;
        }
        let what = format!("{name} {from_key} -> {to_key}");
        let a = holding(from, Provider::Stripe, SubStatus::Active);
        let clouds = clouds_for(to);
        let Ok(ch) = checkout::change(&cat, &a, None, &to_key, &clouds) else {
            continue;
        };
        assert_eq!(
            (ch.first.method, ch.first.path.as_str(), &ch.first.body),
            (Method::Get, "/v1/subscriptions/sub_1", &Body::None),
            "{what}"
        );
        let q = quantity_for(from);
        let sub = stripe_subscription(from, q);
        let second = ch
            .next(&cat, std::slice::from_ref(&sub))
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: nothing sent"));
        assert_eq!(
            (second.provider, second.method),
            (Provider::Stripe, Method::Post),
            "{what}"
        );
        let f = fields(&second);
        if ch.upgrade {
            upgrades += 1;
            // https://docs.stripe.com/api/subscriptions/update
            assert_eq!(second.path, "/v1/subscriptions/sub_1", "{what}");
            for k in f.keys() {
                assert!(
                    ["items", "proration_behavior", "metadata"].contains(&top(k)),
                    "{what}: `{k}`"
                );
            }
            assert_eq!(
                f.get("items[0][id]").copied(),
                Some("si_1"),
                "{what}: the item is replaced, not added"
            );
            check_item_price(&f, "items[0]", to, &what);
            assert_eq!(
                f.get("items[0][quantity]").copied(),
                Some(q.to_string().as_str()),
                "{what}: quantity kept"
            );
            let pb = f
                .get("proration_behavior")
                .copied()
                .unwrap_or("create_prorations");
            assert!(
                ["always_invoice", "create_prorations", "none"].contains(&pb),
                "{what}: proration_behavior `{pb}`"
            );
            let m = check_stripe_metadata(&f, "metadata", &what);
            assert_eq!(
                m.get("offer_key").map(String::as_str),
                Some(to_key.as_str()),
                "{what}: metadata[offer_key]"
            );
            assert_eq!(
                ch.next(&cat, &[sub.clone(), json!({"id": "sub_1"})])
                    .unwrap(),
                None,
                "{what}: one update"
            );
        } else {
            downgrades += 1;
            // https://docs.stripe.com/api/subscription_schedules/create: with
            // from_subscription "other parameters (such as phase values) cannot be set".
            assert_eq!(second.path, "/v1/subscription_schedules", "{what}");
            assert_eq!(
                f.keys().copied().collect::<Vec<_>>(),
                ["from_subscription"],
                "{what}"
            );
            assert_eq!(f["from_subscription"], "sub_1");
            let schedule = stripe_schedule(&sub);
            let third = ch
                .next(&cat, &[sub.clone(), schedule.clone()])
                .unwrap()
                .unwrap();
            assert_eq!(
                (third.method, third.path.as_str()),
                (Method::Post, "/v1/subscription_schedules/sub_sched_1"),
                "{what}"
            );
            let f = fields(&third);
            for k in f.keys() {
                assert!(
                    [
                        "phases",
                        "end_behavior",
                        "proration_behavior",
                        "metadata",
                        "default_settings"
                    ]
                    .contains(&top(k)),
                    "{what}: `{k}`"
                );
            }
            // The current phase: its own start (an active phase's start cannot move), its
            // end at the period end, its items unchanged.
            assert_eq!(
                f.get("phases[0][start_date]").copied(),
                Some("1797000000"),
                "{what}: phases[0][start_date]"
            );
            assert_eq!(
                f.get("phases[0][end_date]").copied(),
                Some("1800086400"),
                "{what}: phases[0][end_date]"
            );
            assert_eq!(
                f.get("phases[0][items][0][price]").copied(),
                sub["items"]["data"][0]["price"]["id"].as_str(),
                "{what}"
            );
            assert_eq!(
                f.get("phases[0][items][0][quantity]").copied(),
                Some(q.to_string().as_str()),
                "{what}"
            );
            // The next phase: starts where the current one ends (or is left to follow it).
            if let Some(s) = f.get("phases[1][start_date]") {
                assert_eq!(*s, "1800086400", "{what}");
            }
            check_item_price(&f, "phases[1][items][0]", to, &what);
            assert_eq!(
                f.get("phases[1][items][0][quantity]").copied(),
                Some(q.to_string().as_str()),
                "{what}"
            );
            let m = check_stripe_metadata(&f, "phases[1][metadata]", &what);
            assert_eq!(
                m.get("offer_key").map(String::as_str),
                Some(to_key.as_str()),
                "{what}: phases[1][metadata][offer_key]"
            );
            // end_date and iterations (or duration) are exclusive on a phase.
            for i in 0..2 {
                let set = ["end_date", "iterations", "duration[interval]"]
                    .iter()
                    .filter(|k| f.contains_key(format!("phases[{i}][{k}]").as_str()))
                    .count();
                assert!(
                    set <= 1,
                    "{what}: phases[{i}] sets more than one of end_date, iterations, duration"
                );
            }
            // release: the subscription keeps running on the new price after the last phase.
            assert_eq!(
                f.get("end_behavior").copied(),
                Some("release"),
                "{what}: end_behavior"
            );
            assert_eq!(
                ch.next(&cat, &[sub, schedule, json!({})]).unwrap(),
                None,
                "{what}"
            );
        }
    }
    assert!(
        upgrades > 0 && downgrades > 0,
        "{upgrades} upgrades, {downgrades} downgrades"
    );
}

/// Parameters of Razorpay's Update a Subscription
/// (https://razorpay.com/docs/api/payments/subscriptions/subscriptions/update-subscription).
const RAZORPAY_UPDATE: &[&str] = &[
    "plan_id",
    "offer_id",
    "quantity",
    "remaining_count",
    "start_at",
    "schedule_change_at",
    "customer_notify",
];

#[test]
fn every_razorpay_plan_change_uses_updates_documented_fields() {
    let mut n = 0;
    for (name, cat, from_key, to_key) in change_pairs() {
        let (from, to) = (cat.offer(&from_key).unwrap(), cat.offer(&to_key).unwrap());
        if provider(&cat, from) != Provider::Razorpay {
            continue;
        }
        let what = format!("{name} {from_key} -> {to_key}");
        let a = holding(from, Provider::Razorpay, SubStatus::Active);
        let Ok(ch) = checkout::change(&cat, &a, None, &to_key, &clouds_for(to)) else {
            continue;
        };
        n += 1;
        assert_eq!(
            (ch.first.provider, ch.first.method, ch.first.path.as_str()),
            (Provider::Razorpay, Method::Patch, "/v1/subscriptions/sub_1"),
            "{what}"
        );
        let b = json_body(&ch.first);
        for k in b.keys() {
            assert!(
                RAZORPAY_UPDATE.contains(&k.as_str()),
                "{what}: `{k}` is not an update parameter"
            );
        }
        assert_eq!(
            b["plan_id"],
            to.razorpay_plan_ids[0].as_str(),
            "{what}: plan_id"
        );
        // schedule_change_at: `now` (default) or `cycle_end`.
        let at = b["schedule_change_at"].as_str().unwrap();
        assert_eq!(at, if ch.upgrade { "now" } else { "cycle_end" }, "{what}");
        assert!(
            b["quantity"].as_u64().is_some_and(|q| q >= 1),
            "{what}: quantity"
        );
        let notify = &b["customer_notify"];
        assert!(
            notify.is_null() || notify.is_boolean() || notify == &json!(0) || notify == &json!(1),
            "{what}: customer_notify"
        );
        assert_eq!(
            ch.next(&cat, &[json!({"id": "sub_1"})]).unwrap(),
            None,
            "{what}: one request"
        );
    }
    assert!(n > 0);
}

// ---------------------------------------------------------------------------------------------
// Failing on the current code.
// ---------------------------------------------------------------------------------------------

/// Razorpay updates only subscriptions in the `authenticated` and `active` states:
/// "You can only update Subscriptions in the authenticated and active states.
/// Subscriptions in the created, pending or halted state cannot be updated."
/// (https://razorpay.com/docs/subscriptions/update-subscriptions/ and
/// https://razorpay.com/docs/sg/payments/subscriptions/update, "Watch Out!").
/// The core maps Razorpay's `pending` and `halted` to past_due and keeps `paused` as paused
/// (src/billing/razorpay.rs), and `change` accepts any running status: the PATCH goes out
/// and Razorpay refuses it (a 502 to the caller) instead of a refusal decided here.
#[test]
fn razorpay_change_of_a_subscription_razorpay_cannot_update_is_refused_before_any_call() {
    for (name, cat, from_key, to_key) in change_pairs() {
        let from = cat.offer(&from_key).unwrap();
        if provider(&cat, from) != Provider::Razorpay {
            continue;
        }
        for status in [SubStatus::PastDue, SubStatus::Paused] {
            let a = holding(from, Provider::Razorpay, status);
            let r = checkout::change(&cat, &a, None, &to_key, &[]);
            assert!(
                r.is_err(),
                "{name} {from_key} -> {to_key}: a Razorpay subscription that is {status:?} (Razorpay `pending`/`halted`/`paused`) \
                 cannot be updated, yet the core sends {:?}",
                r.map(|c| c.first.body)
            );
        }
    }
}

/// Razorpay counts a subscription's length in billing cycles of its plan: `total_count` is
/// "the number of billing cycles for which the customer should be charged", with "a
/// maximum duration of 100 years" (https://razorpay.com/docs/api/payments/subscriptions/create-subscription,
/// https://razorpay.com/docs/api/payments/subscriptions/fetch-subscription-id), and an update
/// keeps the remaining count unless `remaining_count` overwrites it ("This parameter is used
/// to update the total_count for a Subscription",
/// https://razorpay.com/docs/api/payments/subscriptions/subscriptions/update-subscription).
/// Checkout sells ten years (120 monthly or 10 yearly cycles). A change to a plan of
/// another period without `remaining_count` keeps the count of the old period: a yearly
/// subscriber moved to a monthly plan has at most 9 monthly cycles left, so the
/// subscription completes (access ends) within 9 months; a monthly subscriber moved to a
/// yearly plan is left with ~119 yearly cycles, past Razorpay's 100-year maximum.
#[test]
fn razorpay_change_to_a_plan_of_another_period_recounts_its_cycles() {
    let mut n = 0;
    for (name, cat, from_key, to_key) in change_pairs() {
        let (from, to) = (cat.offer(&from_key).unwrap(), cat.offer(&to_key).unwrap());
        if provider(&cat, from) != Provider::Razorpay || from.price.interval == to.price.interval {
            continue;
        }
        let a = holding(from, Provider::Razorpay, SubStatus::Active);
        let Ok(ch) = checkout::change(&cat, &a, None, &to_key, &[]) else {
            continue;
        };
        n += 1;
        let b = json_body(&ch.first);
        let months = u64::from(to.price.interval.months().unwrap());
        let remaining = b.get("remaining_count").and_then(Value::as_u64);
        assert!(
            remaining.is_some_and(|r| r >= 1 && r * months <= 1200),
            "{name} {from_key} ({:?}) -> {to_key} ({:?}): the update keeps the old plan's cycle count; \
             it must send `remaining_count` in cycles of the new plan, got {:?}",
            from.price.interval,
            to.price.interval,
            b.get("remaining_count")
        );
    }
    assert!(
        n > 0,
        "the Razorpay catalog has changes between monthly and yearly plans"
    );
}

/// A change of a subscription that a schedule already holds (a downgrade made before,
/// waiting for its period's end): Stripe makes no second schedule from it, and an upgrade
/// under it would be undone by the schedule's next phase. The schedule is released first
/// (https://docs.stripe.com/api/subscription_schedules/release: the subscription stays as it
/// is), then the change goes on as for a subscription without one.
#[test]
fn a_change_of_a_subscription_a_schedule_holds_releases_it_first() {
    let (mut ups, mut downs) = (0, 0);
    for (name, cat, from_key, to_key) in change_pairs() {
        let from = cat.offer(&from_key).unwrap();
        if provider(&cat, from) != Provider::Stripe {
            continue;
        }
        let a = holding(from, Provider::Stripe, SubStatus::Active);
        let Ok(ch) = checkout::change(
            &cat,
            &a,
            None,
            &to_key,
            &clouds_for(cat.offer(&to_key).unwrap()),
        ) else {
            continue;
        };
        let what = format!("{name} {from_key} -> {to_key}");
        let plain = stripe_subscription(from, quantity_for(from));
        let mut held_sub = plain.clone();
        held_sub["schedule"] = json!("sub_sched_old");
        let release = ch
            .next(&cat, std::slice::from_ref(&held_sub))
            .unwrap()
            .unwrap();
        assert_eq!(
            (release.method, release.path.as_str()),
            (
                Method::Post,
                "/v1/subscription_schedules/sub_sched_old/release"
            ),
            "{what}"
        );
        let released =
            json!({"id": "sub_sched_old", "object": "subscription_schedule", "status": "released"});
        // Then the same requests as for the subscription without a schedule.
        let after = ch
            .next(&cat, &[held_sub.clone(), released.clone()])
            .unwrap();
        let without = ch.next(&cat, std::slice::from_ref(&plain)).unwrap();
        assert_eq!(after, without, "{what}");
        if ch.upgrade {
            ups += 1;
            assert_eq!(
                ch.next(&cat, &[held_sub, released, json!({"id": "sub_1"})])
                    .unwrap(),
                None,
                "{what}"
            );
        } else {
            downs += 1;
            let schedule = stripe_schedule(&plain);
            assert_eq!(
                ch.next(&cat, &[held_sub, released, schedule.clone()])
                    .unwrap(),
                ch.next(&cat, &[plain, schedule]).unwrap(),
                "{what}"
            );
        }
    }
    assert!(ups > 0 && downs > 0, "upgrades {ups}, downgrades {downs}");
}

/// A downgrade of a subscription in its trial keeps the trial: the schedule's current phase
/// is sent again with its `trial_end` (a phase sent without one has none).
#[test]
fn a_downgrade_in_a_trial_keeps_the_trial() {
    let mut n = 0;
    for (name, cat, from_key, to_key) in change_pairs() {
        let from = cat.offer(&from_key).unwrap();
        if provider(&cat, from) != Provider::Stripe {
            continue;
        }
        let a = holding(from, Provider::Stripe, SubStatus::Trialing);
        let Ok(ch) = checkout::change(
            &cat,
            &a,
            None,
            &to_key,
            &clouds_for(cat.offer(&to_key).unwrap()),
        ) else {
            continue;
        };
        if ch.upgrade {
            continue;
        }
        let sub = stripe_subscription(from, quantity_for(from));
        let mut schedule = stripe_schedule(&sub);
        schedule["phases"][0]["trial_end"] = json!(1_799_000_000);
        let third = ch.next(&cat, &[sub, schedule]).unwrap().unwrap();
        assert_eq!(
            fields(&third).get("phases[0][trial_end]").copied(),
            Some("1799000000"),
            "{name} {from_key} -> {to_key}"
        );
        n += 1;
    }
    assert!(n > 0);
}
