//! What was paid stays what it was paid for: a refund of an ended subscription takes back
//! what it handed to another subscription's rollover, an offer a new catalog version dropped
//! still folds as it was sold, and a Razorpay payment gives no more than its amount pays for.

#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;
use tollgate::billing::*;

const C: &str = "user:c";

fn snapshot(sub: &str, status: SubStatus, offer: &str, ps: i64, pe: i64, at: i64) -> Fact {
    Fact {
        key: format!("stripe:subscription:{sub}:{at}"),
        provider: Provider::Stripe,
        event: format!("evt_snap_{sub}_{at}"),
        at: t(at),
        body: FactBody::Subscription(SubscriptionSnapshot {
            id: format!("stripe:{sub}"),
            customer: Some("stripe:cus_c".into()),
            status,
            items: vec![Item { price: None, offer: Some(offer.into()), quantity: 1 }],
            period_start: Some(t(ps)),
            period_end: Some(t(pe)),
            started_at: Some(t(ps)),
            trial_end: None,
            cancel_at_period_end: false,
            cancel_at: None,
            ended_at: (status == SubStatus::Ended).then(|| t(at)),
            subject: None,
            clouds: vec![],
            created: false,
            follows: None,
        }),
        catalog_version: None,
    }
}

fn failed(sub: &str, invoice: &str, attempt: u32, at: i64) -> Fact {
    Fact {
        key: format!("stripe:invoice:{invoice}:failed:{attempt}"),
        provider: Provider::Stripe,
        event: format!("evt_fail_{invoice}_{attempt}"),
        at: t(at),
        body: FactBody::InvoiceFailed(InvoiceFailed {
            id: format!("stripe:{invoice}"),
            subscription: format!("stripe:{sub}"),
            customer: Some("stripe:cus_c".into()),
            attempt,
            amount_due: 2900,
            currency: "usd".into(),
            next_retry: None,
            payment: None,
        }),
        catalog_version: None,
    }
}

/// `charge.refunded` of the charge of payment intent `pi` (cumulative `refunded` of `amount`).
fn refund(pi: &str, amount: i64, refunded: i64, at: i64) -> Fact {
    Fact {
        key: format!("stripe:charge:ch_{pi}:refunded:{refunded}"),
        provider: Provider::Stripe,
        event: format!("evt_refund_{pi}_{refunded}"),
        at: t(at),
        body: FactBody::Refund(Reversal {
            id: format!("stripe:ch_{pi}"),
            payment_refs: vec![format!("stripe:ch_{pi}"), format!("stripe:{pi}")],
            amount,
            reversed: refunded,
            own_amount: 0,
            currency: "usd".into(),
            outcome: None,
        }),
        catalog_version: None,
    }
}

/// A refund of an ended subscription's invoice, after its unused allowance was handed to
/// another subscription's rollover lot, takes the handed units back from that lot: the user
/// holds what sub_b alone gives (7200), as when the refund came first.
#[test]
fn a_refund_takes_back_credits_an_ended_subscription_handed_to_a_new_one() {
    let cat = catalog();
    let b_start = T0 + 3 * DAY;
    let facts = vec![
        link("cus_c", "c", T0),
        snapshot("sub_a", SubStatus::Active, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 30),
        paid_at("sub_a", 0, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 60, 2900),
        // sub_a is cancelled at once (the user moves to Pro) ...
        snapshot("sub_a", SubStatus::Ended, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 2 * DAY),
        // ... and a new Pro subscription is paid: sub_a's unused 1800 s roll into it.
        paid_at("sub_b", 0, "STUDIO_PRO_MONTHLY", b_start, b_start + 31 * DAY, b_start + 60, 7900),
    ];
    let before = fold(&cat, &facts, T0 + 5 * DAY);
    assert_eq!(before.balance(C, "video_seconds"), 9000, "7200 + 1800 handed over");
    // sub_a's invoice is then refunded in full.
    let mut all = facts.clone();
    all.push(refund("pi_sub_a_0", 2900, 2900, T0 + 4 * DAY));
    let st = fold(&cat, &all, T0 + 5 * DAY);
    assert_eq!(st.balance(C, "video_seconds"), 7200, "the refunded 1800 s are still held (rollover lot of sub_b)");
}

/// An offer the active catalog version dropped: what was bought under the version that
/// sold it (the first period, a token pack) folds as it was sold; nothing goes back to
/// pending and no grant is lost (`grandfather::keeping_sold`).
#[test]
fn an_offer_removed_in_a_new_catalog_version_keeps_what_its_buyers_paid_for() {
    let v1 = catalog().with_version(1);
    let src = include_str!("events/catalog.toml");
    let v2_src: String = src
        .split("[[offers]]")
        .enumerate()
        .map(|(i, p)| {
            if i == 0 {
                p.to_string()
            } else if p.contains("key = \"TOKENS_30_MIN\"") || p.contains("key = \"STUDIO_BASIC_MONTHLY\"") {
                String::new()
            } else {
                format!("[[offers]]{p}")
            }
        })
        .collect();
    let v2 = tollgate::Catalog::parse(&v2_src).expect("v2 is valid").with_version(2);
    let mut fs = facts(&v1, FIRST_PERIOD);
    fs.extend(facts(&v1, &["stripe/checkout.session.completed.payment.json"]));
    let sold: std::collections::BTreeMap<u32, tollgate::Catalog> = [(1, v1.clone())].into_iter().collect();
    let now = t(T0 + 6 * DAY);
    let under_v1 = reduce_sold(&v1, &sold, &fs, &Default::default(), now);
    assert_eq!(under_v1.balance(USER, "video_seconds"), 3600);
    let under_v2 = reduce_sold(&v2, &sold, &fs, &Default::default(), now);
    assert_eq!(under_v2.balance(USER, "video_seconds"), 3600, "tokens and allowance bought under v1");
    assert_eq!(under_v2.subject(USER).unwrap().grants.len(), 1, "the v1 subscriber's grant");
    assert!(under_v2.pending.is_empty(), "paid facts sent back to pending: {:?}", under_v2.pending);
    // The dropped offers are not sold again.
    assert!(v2.offer("TOKENS_30_MIN").is_none());
}

/// A token pack read before the store had catalog versions (under the deployment's own
/// catalog) credits what that catalog sold once a first version that sells it with fewer
/// seconds is active, when the host gives that catalog as `grandfather::UNVERSIONED`.
#[test]
fn a_pack_read_under_no_version_keeps_what_it_was_sold_with() {
    let own = catalog();
    let src = include_str!("events/catalog.toml");
    let v1 = tollgate::Catalog::parse(&src.replace(
        r#"credits = [{ pool = "video_seconds", amount = 1800, per = "once" }]"#,
        r#"credits = [{ pool = "video_seconds", amount = 600, per = "once" }]"#,
    ))
    .expect("v1 is valid")
    .with_version(1);
    let fs = facts(&own, &["stripe/checkout.session.completed.payment.json"]);
    assert!(fs.iter().all(|f| f.catalog_version.is_none()));
    let now = t(T0 + 6 * DAY);
    let sold: std::collections::BTreeMap<u32, tollgate::Catalog> =
        [(tollgate::grandfather::UNVERSIONED, own.clone())].into_iter().collect();
    assert_eq!(reduce_sold(&v1, &sold, &fs, &Default::default(), now).balance(USER, "video_seconds"), 1800);
    // Without it, the active version's amount.
    assert_eq!(reduce_sold(&v1, &Default::default(), &fs, &Default::default(), now).balance(USER, "video_seconds"), 600);
}

/// A Razorpay payment's notes come from the buyer's browser (Checkout's options): a
/// payment of one AI_TOPUP_500 (₹199) whose notes say 1000 of them gives one pack, and one
/// that pays for none, or in another currency, waits for an operator.
#[test]
fn razorpay_credits_never_exceed_what_the_payment_paid_for() {
    let cat = catalog();
    let raw = edit("razorpay/payment.captured.json", |v| {
        let p = &mut v["payload"]["payment"]["entity"];
        p["amount"] = json!(19900);
        p["currency"] = json!("INR");
        p["notes"] = json!({"user_id": "u_456", "offer_key": "AI_TOPUP_500", "quantity": "1000"});
    });
    let st = fold(&cat, &rzp_facts(&cat, &raw), T0 + 3 * DAY);
    assert_eq!(st.balance("user:u_456", "ai_credits"), 500, "₹199 paid for one pack of 500");
    for (amount, currency) in [(19899, "INR"), (19900, "USD")] {
        let raw = edit("razorpay/payment.captured.json", |v| {
            let p = &mut v["payload"]["payment"]["entity"];
            p["amount"] = json!(amount);
            p["currency"] = json!(currency);
            p["notes"] = json!({"user_id": "u_456", "offer_key": "AI_TOPUP_500", "quantity": "1"});
        });
        let st = fold(&cat, &rzp_facts(&cat, &raw), T0 + 3 * DAY);
        assert_eq!(st.balance("user:u_456", "ai_credits"), 0, "{amount} {currency}");
        assert_eq!(st.pending.len(), 1, "{amount} {currency}: kept for an operator");
    }
}

/// Stripe's later retry of an older period's invoice failing, after the next period's
/// invoice was paid, leaves the paid period's access (Stripe keeps the subscription
/// `active`: its latest invoice is paid, so no snapshot says otherwise); the old invoice
/// stays due.
#[test]
fn a_failed_retry_of_an_older_invoice_does_not_cut_a_paid_period() {
    let cat = catalog();
    let fs = vec![
        link("cus_c", "c", T0),
        paid_at("sub_a", 0, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 60, 2900),
        failed("sub_a", "in_p2", 1, P1E + 3600),
        // The next period's invoice is paid (a new card) ...
        paid_at("sub_a", 2, "STUDIO_BASIC_MONTHLY", P2E, P3E, P2E + 60, 2900),
        // ... and Stripe's last scheduled retry of the older one fails.
        failed("sub_a", "in_p2", 4, P2E + 2 * DAY),
    ];
    let st = fold(&cat, &fs, P2E + 10 * DAY);
    assert!(has(&cat, &st, C, "studio", "basic", P2E + 10 * DAY), "paid through {P3E}, cut after the grace");
}

