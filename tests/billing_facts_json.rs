//! The stored form of billing facts, locked down byte for byte. Facts live as JSON
//! in `billing_facts` and are read back by the worker, so every kind must write
//! exactly these bytes, read back equal, and the shapes stored earlier (without
//! fields added since, with keys reordered by PostgreSQL's jsonb, with Unix-second
//! times, with fields this version does not know) must still read.

use serde_json::Value;
use tollgate::billing::*;
use tollgate::time::Timestamp;

const T: Timestamp = Timestamp::from_unix(1_767_225_600); // 2026-01-01T00:00:00Z

fn fact(key: &str, provider: Provider, event: &str, body: FactBody) -> Fact {
    Fact {
        key: key.into(),
        provider,
        event: event.into(),
        at: T,
        body,
        catalog_version: None,
    }
}

fn item(price: Option<&str>, offer: Option<&str>, quantity: u32) -> Item {
    Item {
        price: price.map(Into::into),
        offer: offer.map(Into::into),
        quantity,
    }
}

fn reversal(outcome: Option<DisputeOutcome>, currency: &str) -> Reversal {
    Reversal {
        id: "stripe:dp_1".into(),
        payment_refs: vec!["stripe:ch_1".into(), "stripe:pi_1".into()],
        amount: 2000,
        reversed: 2000,
        own_amount: 0,
        currency: currency.into(),
        outcome,
    }
}

/// Every kind of fact, each with every optional field set and with none, next
/// to the exact JSON it is stored as.
fn cases() -> Vec<(Fact, &'static str)> {
    let u1 = Subject::user("u1");
    let o1 = Subject::org("o1");
    vec![
        (
            fact(
                "link:stripe:cus_1:user:u1",
                Provider::App,
                "",
                FactBody::CustomerLinked(CustomerLink {
                    customer: "stripe:cus_1".into(),
                    subject: u1.clone(),
                }),
            ),
            r#"{"key":"link:stripe:cus_1:user:u1","provider":"app","at":"2026-01-01T00:00:00Z","type":"customer_linked","customer":"stripe:cus_1","subject":"user:u1"}"#,
        ),
        (
            fact(
                "purchase:stripe:cs_1",
                Provider::Stripe,
                "evt_1",
                FactBody::Purchase(Purchase {
                    id: "stripe:cs_1".into(),
                    mode: PurchaseMode::Subscription,
                    outcome: PurchaseOutcome::Paid,
                    subject: Some(o1.clone()),
                    customer: Some("stripe:cus_1".into()),
                    subscription: Some("stripe:sub_1".into()),
                    offer: Some("SUITE_PRO_MONTHLY".into()),
                    quantity: 3,
                    clouds: vec!["video".into(), "creation".into()],
                    payment_refs: vec!["stripe:pi_1".into(), "stripe:in_1".into()],
                    amount: 4900,
                    currency: "usd".into(),
                    no_payment_required: true,
                }),
            ),
            r#"{"key":"purchase:stripe:cs_1","provider":"stripe","event":"evt_1","at":"2026-01-01T00:00:00Z","type":"purchase","id":"stripe:cs_1","mode":"subscription","outcome":"paid","subject":"org:o1","customer":"stripe:cus_1","subscription":"stripe:sub_1","offer":"SUITE_PRO_MONTHLY","quantity":3,"clouds":["video","creation"],"payment_refs":["stripe:pi_1","stripe:in_1"],"amount":4900,"currency":"usd","no_payment_required":true}"#,
        ),
        (
            fact(
                "purchase:razorpay:pay_1",
                Provider::Razorpay,
                "",
                FactBody::Purchase(Purchase {
                    id: "razorpay:pay_1".into(),
                    mode: PurchaseMode::Payment,
                    outcome: PurchaseOutcome::Unpaid,
                    subject: None,
                    customer: None,
                    subscription: None,
                    offer: None,
                    quantity: 1,
                    clouds: vec![],
                    payment_refs: vec![],
                    amount: 0,
                    currency: String::new(),
                    no_payment_required: false,
                }),
            ),
            r#"{"key":"purchase:razorpay:pay_1","provider":"razorpay","at":"2026-01-01T00:00:00Z","type":"purchase","id":"razorpay:pay_1","mode":"payment","outcome":"unpaid","quantity":1,"amount":0}"#,
        ),
        (
            fact(
                "sub:stripe:sub_1:a1",
                Provider::Stripe,
                "evt_2",
                FactBody::Subscription(SubscriptionSnapshot {
                    id: "stripe:sub_1".into(),
                    customer: Some("stripe:cus_1".into()),
                    status: SubStatus::PastDue,
                    items: vec![
                        item(Some("price_1"), Some("VIDEO_PRO_MONTHLY"), 2),
                        item(None, None, 1),
                    ],
                    period_start: Some(T),
                    period_end: Some(T.plus_days(31)),
                    started_at: Some(T.plus_days(-10)),
                    trial_end: Some(T.plus_days(-3)),
                    cancel_at_period_end: true,
                    cancel_at: Some(T.plus_days(31)),
                    ended_at: Some(T.plus_days(40)),
                    subject: Some(u1.clone()),
                    clouds: vec!["video".into()],
                    created: false,
                    follows: None,
                }),
            ),
            r#"{"key":"sub:stripe:sub_1:a1","provider":"stripe","event":"evt_2","at":"2026-01-01T00:00:00Z","type":"subscription","id":"stripe:sub_1","customer":"stripe:cus_1","status":"past_due","items":[{"price":"price_1","offer":"VIDEO_PRO_MONTHLY","quantity":2},{"quantity":1}],"period_start":"2026-01-01T00:00:00Z","period_end":"2026-02-01T00:00:00Z","started_at":"2025-12-22T00:00:00Z","trial_end":"2025-12-29T00:00:00Z","cancel_at_period_end":true,"cancel_at":"2026-02-01T00:00:00Z","ended_at":"2026-02-10T00:00:00Z","subject":"user:u1","clouds":["video"]}"#,
        ),
        (
            fact(
                "sub:razorpay:sub_2:b2",
                Provider::Razorpay,
                "",
                FactBody::Subscription(SubscriptionSnapshot {
                    id: "razorpay:sub_2".into(),
                    customer: None,
                    status: SubStatus::Incomplete,
                    items: vec![],
                    period_start: None,
                    period_end: None,
                    started_at: None,
                    trial_end: None,
                    cancel_at_period_end: false,
                    cancel_at: None,
                    ended_at: None,
                    subject: None,
                    clouds: vec![],
                    created: false,
                    follows: None,
                }),
            ),
            r#"{"key":"sub:razorpay:sub_2:b2","provider":"razorpay","at":"2026-01-01T00:00:00Z","type":"subscription","id":"razorpay:sub_2","status":"incomplete","items":[]}"#,
        ),
        (
            fact(
                "invoice:stripe:in_1:paid",
                Provider::Stripe,
                "evt_3",
                FactBody::InvoicePaid(InvoicePaid {
                    id: "stripe:in_1".into(),
                    subscription: "stripe:sub_1".into(),
                    customer: Some("stripe:cus_1".into()),
                    items: vec![item(Some("price_1"), None, 1)],
                    period_start: Some(T),
                    period_end: Some(T.plus_days(31)),
                    amount: 1900,
                    currency: "eur".into(),
                    payment_refs: vec!["stripe:ch_1".into()],
                }),
            ),
            r#"{"key":"invoice:stripe:in_1:paid","provider":"stripe","event":"evt_3","at":"2026-01-01T00:00:00Z","type":"invoice_paid","id":"stripe:in_1","subscription":"stripe:sub_1","customer":"stripe:cus_1","items":[{"price":"price_1","quantity":1}],"period_start":"2026-01-01T00:00:00Z","period_end":"2026-02-01T00:00:00Z","amount":1900,"currency":"eur","payment_refs":["stripe:ch_1"]}"#,
        ),
        (
            fact(
                "invoice:razorpay:inv_1:paid",
                Provider::Razorpay,
                "",
                FactBody::InvoicePaid(InvoicePaid {
                    id: "razorpay:inv_1".into(),
                    subscription: "razorpay:sub_2".into(),
                    customer: None,
                    items: vec![],
                    period_start: None,
                    period_end: None,
                    amount: 0,
                    currency: String::new(),
                    payment_refs: vec![],
                }),
            ),
            r#"{"key":"invoice:razorpay:inv_1:paid","provider":"razorpay","at":"2026-01-01T00:00:00Z","type":"invoice_paid","id":"razorpay:inv_1","subscription":"razorpay:sub_2","items":[],"amount":0}"#,
        ),
        (
            fact(
                "invoice:stripe:in_2:failed:2",
                Provider::Stripe,
                "evt_4",
                FactBody::InvoiceFailed(InvoiceFailed {
                    id: "stripe:in_2".into(),
                    subscription: "stripe:sub_1".into(),
                    customer: Some("stripe:cus_1".into()),
                    attempt: 2,
                    amount_due: 0,
                    currency: String::new(),
                    next_retry: None,
                    payment: None,
                }),
            ),
            r#"{"key":"invoice:stripe:in_2:failed:2","provider":"stripe","event":"evt_4","at":"2026-01-01T00:00:00Z","type":"invoice_failed","id":"stripe:in_2","subscription":"stripe:sub_1","customer":"stripe:cus_1","attempt":2}"#,
        ),
        (
            fact(
                "invoice:razorpay:inv_2:failed",
                Provider::Razorpay,
                "",
                FactBody::InvoiceFailed(InvoiceFailed {
                    id: "razorpay:inv_2".into(),
                    subscription: "razorpay:sub_2".into(),
                    customer: None,
                    attempt: 0,
                    amount_due: 0,
                    currency: String::new(),
                    next_retry: None,
                    payment: None,
                }),
            ),
            r#"{"key":"invoice:razorpay:inv_2:failed","provider":"razorpay","at":"2026-01-01T00:00:00Z","type":"invoice_failed","id":"razorpay:inv_2","subscription":"razorpay:sub_2","attempt":0}"#,
        ),
        (
            fact(
                "stripe:invoice:in_3:failed:1",
                Provider::Stripe,
                "evt_5",
                FactBody::InvoiceFailed(InvoiceFailed {
                    id: "stripe:in_3".into(),
                    subscription: "stripe:sub_1".into(),
                    customer: None,
                    attempt: 1,
                    amount_due: 2900,
                    currency: "usd".into(),
                    next_retry: Some(Timestamp(1767312000)),
                    payment: None,
                }),
            ),
            r#"{"key":"stripe:invoice:in_3:failed:1","provider":"stripe","event":"evt_5","at":"2026-01-01T00:00:00Z","type":"invoice_failed","id":"stripe:in_3","subscription":"stripe:sub_1","attempt":1,"amount_due":2900,"currency":"usd","next_retry":"2026-01-02T00:00:00Z"}"#,
        ),
        (
            fact(
                "invoice_payment:stripe:inpay_1",
                Provider::Stripe,
                "evt_5",
                FactBody::InvoicePayment(InvoicePayment {
                    id: "stripe:inpay_1".into(),
                    invoice: "stripe:in_1".into(),
                    payment_refs: vec!["stripe:pi_1".into(), "stripe:ch_1".into()],
                    amount: 1900,
                    currency: "usd".into(),
                }),
            ),
            r#"{"key":"invoice_payment:stripe:inpay_1","provider":"stripe","event":"evt_5","at":"2026-01-01T00:00:00Z","type":"invoice_payment","id":"stripe:inpay_1","invoice":"stripe:in_1","payment_refs":["stripe:pi_1","stripe:ch_1"],"amount":1900,"currency":"usd"}"#,
        ),
        (
            fact(
                "invoice_payment:stripe:inpay_2",
                Provider::Stripe,
                "",
                FactBody::InvoicePayment(InvoicePayment {
                    id: "stripe:inpay_2".into(),
                    invoice: "stripe:in_2".into(),
                    payment_refs: vec![],
                    amount: 0,
                    currency: String::new(),
                }),
            ),
            r#"{"key":"invoice_payment:stripe:inpay_2","provider":"stripe","at":"2026-01-01T00:00:00Z","type":"invoice_payment","id":"stripe:inpay_2","invoice":"stripe:in_2","payment_refs":[],"amount":0}"#,
        ),
        (
            fact(
                "refund:stripe:re_1",
                Provider::Stripe,
                "evt_6",
                FactBody::Refund(reversal(None, "usd")),
            ),
            r#"{"key":"refund:stripe:re_1","provider":"stripe","event":"evt_6","at":"2026-01-01T00:00:00Z","type":"refund","id":"stripe:dp_1","payment_refs":["stripe:ch_1","stripe:pi_1"],"amount":2000,"reversed":2000,"currency":"usd"}"#,
        ),
        (
            fact(
                "refund:razorpay:rfnd_1",
                Provider::Razorpay,
                "",
                FactBody::Refund(reversal(None, "")),
            ),
            r#"{"key":"refund:razorpay:rfnd_1","provider":"razorpay","at":"2026-01-01T00:00:00Z","type":"refund","id":"stripe:dp_1","payment_refs":["stripe:ch_1","stripe:pi_1"],"amount":2000,"reversed":2000}"#,
        ),
        (
            fact(
                "razorpay:refund:rfnd_2:processed",
                Provider::Razorpay,
                "evt_rz",
                FactBody::Refund(Reversal {
                    id: "razorpay:rfnd_2".into(),
                    payment_refs: vec!["razorpay:pay_2".into()],
                    amount: 0,
                    reversed: 0,
                    own_amount: 9950,
                    currency: "inr".into(),
                    outcome: None,
                }),
            ),
            r#"{"key":"razorpay:refund:rfnd_2:processed","provider":"razorpay","event":"evt_rz","at":"2026-01-01T00:00:00Z","type":"refund","id":"razorpay:rfnd_2","payment_refs":["razorpay:pay_2"],"amount":0,"reversed":0,"own_amount":9950,"currency":"inr"}"#,
        ),
        (
            fact(
                "dispute:stripe:dp_1",
                Provider::Stripe,
                "evt_7",
                FactBody::Dispute(reversal(None, "usd")),
            ),
            r#"{"key":"dispute:stripe:dp_1","provider":"stripe","event":"evt_7","at":"2026-01-01T00:00:00Z","type":"dispute","id":"stripe:dp_1","payment_refs":["stripe:ch_1","stripe:pi_1"],"amount":2000,"reversed":2000,"currency":"usd"}"#,
        ),
        (
            fact(
                "dispute:stripe:dp_1:won",
                Provider::Stripe,
                "evt_8",
                FactBody::Dispute(reversal(Some(DisputeOutcome::Won), "usd")),
            ),
            r#"{"key":"dispute:stripe:dp_1:won","provider":"stripe","event":"evt_8","at":"2026-01-01T00:00:00Z","type":"dispute","id":"stripe:dp_1","payment_refs":["stripe:ch_1","stripe:pi_1"],"amount":2000,"reversed":2000,"currency":"usd","outcome":"won"}"#,
        ),
        (
            fact(
                "dispute:razorpay:disp_1:lost",
                Provider::Razorpay,
                "",
                FactBody::Dispute(reversal(Some(DisputeOutcome::Lost), "")),
            ),
            r#"{"key":"dispute:razorpay:disp_1:lost","provider":"razorpay","at":"2026-01-01T00:00:00Z","type":"dispute","id":"stripe:dp_1","payment_refs":["stripe:ch_1","stripe:pi_1"],"amount":2000,"reversed":2000,"outcome":"lost"}"#,
        ),
        (
            fact(
                "usage:req_1",
                Provider::App,
                "",
                FactBody::Usage(UsageFact {
                    request_id: "req_1".into(),
                    subject: u1.clone(),
                    pool: "video_seconds".into(),
                    units: 30,
                    model: Some("fast".into()),
                    quality: Some("hd".into()),
                    takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
                }),
            ),
            r#"{"key":"usage:req_1","provider":"app","at":"2026-01-01T00:00:00Z","type":"usage","request_id":"req_1","subject":"user:u1","pool":"video_seconds","units":30,"model":"fast","quality":"hd"}"#,
        ),
        (
            fact(
                "usage:req_2",
                Provider::App,
                "",
                FactBody::Usage(UsageFact {
                    request_id: "req_2".into(),
                    subject: o1.clone(),
                    pool: "ai_credits".into(),
                    units: 0,
                    model: None,
                    quality: None,
                    takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
                }),
            ),
            r#"{"key":"usage:req_2","provider":"app","at":"2026-01-01T00:00:00Z","type":"usage","request_id":"req_2","subject":"org:o1","pool":"ai_credits","units":0}"#,
        ),
        (
            Fact::seat_assigned(o1.clone(), u1.clone(), "r1", T),
            r#"{"key":"seat:org:o1:user:u1:assign:r1","provider":"app","at":"2026-01-01T00:00:00Z","type":"seat_assigned","org":"org:o1","user":"user:u1","request_id":"r1"}"#,
        ),
        (
            Fact::seat_released(o1.clone(), u1.clone(), "r2", T),
            r#"{"key":"seat:org:o1:user:u1:release:r2","provider":"app","at":"2026-01-01T00:00:00Z","type":"seat_released","org":"org:o1","user":"user:u1","request_id":"r2"}"#,
        ),
        (
            Fact::credit_adjustment(
                CreditAdjustment {
                    id: "adj_1".into(),
                    subject: u1.clone(),
                    pool: "ai_credits".into(),
                    amount: -50,
                    reason: "support ticket 12".into(),
                    valid_to: None,
                },
                T,
            ),
            r#"{"key":"adjustment:adj_1","provider":"app","at":"2026-01-01T00:00:00Z","type":"credit_adjustment","id":"adj_1","subject":"user:u1","pool":"ai_credits","amount":-50,"reason":"support ticket 12"}"#,
        ),
        (
            Fact::credit_adjustment(
                CreditAdjustment {
                    id: "adj_2".into(),
                    subject: o1.clone(),
                    pool: "ai_credits".into(),
                    amount: 100,
                    reason: String::new(),
                    valid_to: None,
                },
                T,
            ),
            r#"{"key":"adjustment:adj_2","provider":"app","at":"2026-01-01T00:00:00Z","type":"credit_adjustment","id":"adj_2","subject":"org:o1","pool":"ai_credits","amount":100}"#,
        ),
        (
            Fact::credit_adjustment(
                CreditAdjustment {
                    id: "admin:comp%3A7:video_seconds".into(),
                    subject: u1.clone(),
                    pool: "video_seconds".into(),
                    amount: 600,
                    reason: String::new(),
                    valid_to: Some(Timestamp(1_770_000_000)),
                },
                T,
            ),
            r#"{"key":"adjustment:admin:comp%3A7:video_seconds","provider":"app","at":"2026-01-01T00:00:00Z","type":"credit_adjustment","id":"admin:comp%3A7:video_seconds","subject":"user:u1","pool":"video_seconds","amount":600,"valid_to":"2026-02-02T02:40:00Z"}"#,
        ),
        (
            fact(
                "usage:user:u1:00112233445566778899aabbccddeeff",
                Provider::App,
                "",
                FactBody::Usage(UsageFact {
                    request_id: "user:u1:00112233445566778899aabbccddeeff".into(),
                    subject: u1.clone(),
                    pool: "video_seconds".into(),
                    units: 30,
                    model: Some("standard".into()),
                    quality: Some("standard".into()),
                    takes: Some(vec![UsageTake { lot: "purchase:a".into(), units: 20 }]),
                    overage_units: 10,
                    overage_cost: 27,
                    currency: "usd".into(),
                }),
            ),
            r#"{"key":"usage:user:u1:00112233445566778899aabbccddeeff","provider":"app","at":"2026-01-01T00:00:00Z","type":"usage","request_id":"user:u1:00112233445566778899aabbccddeeff","subject":"user:u1","pool":"video_seconds","units":30,"model":"standard","quality":"standard","takes":[{"lot":"purchase:a","units":20}],"overage_units":10,"overage_cost":27,"currency":"usd"}"#,
        ),
        (
            Fact::grant_given(
                GrantGiven {
                    id: "spring:2026".into(),
                    subject: u1.clone(),
                    product: "video".into(),
                    tier: "pro".into(),
                    source: tollgate::Source::Promotion,
                    valid_from: T,
                    valid_to: Some(Timestamp(1_770_000_000)),
                },
                T,
            ),
            r#"{"key":"grant:user:u1:promotion:spring%3A2026:5d0d679a12ee1e23","provider":"app","at":"2026-01-01T00:00:00Z","type":"grant_given","id":"spring:2026","subject":"user:u1","product":"video","tier":"pro","source":"promotion","valid_from":"2026-01-01T00:00:00Z","valid_to":"2026-02-02T02:40:00Z"}"#,
        ),
    ]
}

#[test]
fn every_kind_writes_exactly_the_stored_bytes_and_reads_back() {
    let cases = cases();
    let mut kinds: Vec<&str> = cases.iter().map(|(f, _)| f.body.type_name()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds.len(),
        13,
        "every FactBody variant is covered: {kinds:?}"
    );
    for (f, stored) in &cases {
        // Bytes, as the CLI and digests write them.
        assert_eq!(serde_json::to_string(f).unwrap(), *stored, "{}", f.key);
        // The worker's path: into a JSON value (the `fact` column) and back out of one.
        let v = serde_json::to_value(f).unwrap();
        assert_eq!(
            v,
            serde_json::from_str::<Value>(stored).unwrap(),
            "{}",
            f.key
        );
        assert_eq!(&serde_json::from_value::<Fact>(v).unwrap(), f, "{}", f.key);
        // Read from text.
        assert_eq!(
            &serde_json::from_str::<Fact>(stored).unwrap(),
            f,
            "{}",
            f.key
        );
    }
    // A list of facts, as `tollgate_related_facts` returns it.
    let all: Vec<Fact> = cases.iter().map(|(f, _)| f.clone()).collect();
    let list = format!(
        "[{}]",
        cases.iter().map(|(_, s)| *s).collect::<Vec<_>>().join(",")
    );
    assert_eq!(serde_json::to_string(&all).unwrap(), list);
    assert_eq!(
        serde_json::from_value::<Vec<Fact>>(serde_json::from_str(&list).unwrap()).unwrap(),
        all
    );
}

/// jsonb hands objects back with their keys reordered (shorter keys first), so
/// `type` may come after the body's fields: the order must not matter.
#[test]
fn key_order_does_not_matter() {
    for (f, stored) in cases() {
        let v: Value = serde_json::from_str(stored).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
        let jsonb = format!(
            "{{{}}}",
            keys.iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), obj[k.as_str()]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(serde_json::from_str::<Fact>(&jsonb).unwrap(), f, "{jsonb}");
        keys.reverse();
        let reversed = format!(
            "{{{}}}",
            keys.iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), obj[k.as_str()]))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            serde_json::from_str::<Fact>(&reversed).unwrap(),
            f,
            "{reversed}"
        );
    }
}

/// Facts stored by earlier versions: a dispute without `outcome`, an invoice
/// payment without amount or currency, a time in Unix seconds, nulls for absent
/// options, and fields this version does not know (ignored, as before).
#[test]
fn earlier_shapes_still_read() {
    let dispute: Fact = serde_json::from_str(
        r#"{"key":"dispute:stripe:dp_9","provider":"stripe","event":"evt_9","at":1767225600,"type":"dispute","id":"stripe:dp_9","payment_refs":["stripe:ch_9"],"amount":500,"reversed":500,"currency":"usd"}"#,
    )
    .unwrap();
    assert_eq!(dispute.at, T);
    let FactBody::Dispute(r) = &dispute.body else {
        panic!("{dispute:?}")
    };
    assert_eq!(r.outcome, None);
    assert_eq!(r.id, "stripe:dp_9");

    let pay: Fact = serde_json::from_value(serde_json::json!({
        "key": "invoice_payment:stripe:inpay_9", "provider": "stripe", "at": "2026-01-01T05:30:00+05:30",
        "type": "invoice_payment", "id": "stripe:inpay_9", "invoice": "stripe:in_9", "payment_refs": ["stripe:pi_9"],
    }))
    .unwrap();
    assert_eq!(pay.at, T);
    assert_eq!(pay.event, "");
    assert_eq!(
        pay.body,
        FactBody::InvoicePayment(InvoicePayment {
            id: "stripe:inpay_9".into(),
            invoice: "stripe:in_9".into(),
            payment_refs: vec!["stripe:pi_9".into()],
            amount: 0,
            currency: String::new(),
        })
    );

    let sub: Fact = serde_json::from_value(serde_json::json!({
        "key": "k", "provider": "razorpay", "at": 1767225600, "type": "subscription", "id": "razorpay:sub_9",
        "customer": null, "status": "active", "items": [{"price": null, "quantity": 1, "note": "x"}],
        "period_end": null, "legacy_field": {"nested": [1, 2]}, "subject": "u9",
    }))
    .unwrap();
    let FactBody::Subscription(s) = &sub.body else {
        panic!("{sub:?}")
    };
    assert_eq!(s.customer, None);
    assert_eq!(s.items, vec![item(None, None, 1)]);
    assert_eq!(s.subject, Some(Subject::user("u9")));
    assert_eq!(s.period_end, None);
}

fn read_err(v: Value) -> String {
    let from_value = serde_json::from_value::<Fact>(v.clone())
        .expect_err("should not read")
        .to_string();
    let from_str = serde_json::from_str::<Fact>(&v.to_string())
        .expect_err("should not read")
        .to_string();
    assert!(
        from_str.starts_with(&from_value),
        "{from_str} / {from_value}"
    );
    from_value
}

/// A malformed stored fact is a typed error that names what is wrong.
#[test]
fn malformed_facts_name_the_field() {
    let base = || {
        serde_json::json!({"key": "usage:r", "provider": "app", "at": "2026-01-01T00:00:00Z", "type": "usage",
            "request_id": "r", "subject": "user:u1", "pool": "p", "units": 1})
    };
    assert!(serde_json::from_value::<Fact>(base()).is_ok());
    let without = |k: &str| {
        let mut v = base();
        v.as_object_mut().unwrap().remove(k);
        v
    };
    let with = |k: &str, x: Value| {
        let mut v = base();
        v[k] = x;
        v
    };
    assert_eq!(read_err(without("key")), "missing field `key`");
    assert_eq!(read_err(without("provider")), "missing field `provider`");
    assert_eq!(read_err(without("at")), "missing field `at`");
    assert_eq!(read_err(without("type")), "missing field `type`");
    assert_eq!(read_err(without("pool")), "missing field `pool`");
    assert_eq!(read_err(without("units")), "missing field `units`");
    let e = read_err(with("type", "bonus".into()));
    assert!(
        e.starts_with("unknown variant `bonus`, expected one of `customer_linked`, `purchase`"),
        "{e}"
    );
    assert!(e.contains("`credit_adjustment`"), "{e}");
    let e = read_err(with("provider", "paypal".into()));
    assert!(
        e.starts_with("unknown variant `paypal`, expected one of `stripe`, `razorpay`, `app`"),
        "{e}"
    );
    let e = read_err(with("units", "many".into()));
    assert!(
        e.starts_with("invalid type: string \"many\", expected u64"),
        "{e}"
    );
    let e = read_err(with("subject", "org:".into()));
    assert!(e.contains("`org:` is not a subject"), "{e}");
    let e = read_err(with("at", "yesterday".into()));
    assert!(
        e.starts_with("`yesterday` is not an RFC 3339 timestamp"),
        "{e}"
    );
    // The body is read by its tag: a usage fact's fields do not make a purchase.
    assert_eq!(
        read_err(with("type", "purchase".into())),
        "missing field `id`"
    );
    // Fields no kind knows are ignored, as they always were.
    assert!(serde_json::from_value::<Fact>(with("mode", "x".into())).is_ok());
    assert_eq!(
        read_err(with("type", Value::Null)),
        "invalid type: null, expected variant identifier"
    );
    let e = serde_json::from_str::<Fact>("[1]")
        .expect_err("not an object")
        .to_string();
    assert!(e.starts_with("invalid type: sequence, expected"), "{e}");
}
