//! Failed payments kept as records: what is due, the attempts, the next retry, the grace
//! end, and the later payment that settles it; the same record from any order of the
//! facts and through any redelivery.

#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;
use tollgate::billing::effects::subject_rows;
use tollgate::billing::*;

const INVOICE: &str = "stripe:in_1Pgd2kB7WZ01zgkWq0Rr2x9A";
const RZP: &str = "user:u_456";
const RSUB: &str = "razorpay:sub_00000000000001";

fn renewal_failed() -> Vec<&'static str> {
    let mut v = FIRST_PERIOD.to_vec();
    v.extend([
        "stripe/customer.subscription.updated.renewed.acacia.json",
        "stripe/invoice.paid.renewal.acacia.json",
        "stripe/invoice.payment_failed.basil.json",
        "stripe/customer.subscription.updated.past_due.basil.json",
    ]);
    v
}

/// The second attempt of the same invoice, a day later.
fn second_attempt() -> String {
    edit("stripe/invoice.payment_failed.basil.json", |v| {
        v["id"] = json!("evt_fail_2");
        v["created"] = json!(P2E + 3600 + DAY);
        let o = obj(v);
        o["attempt_count"] = json!(2);
        o["next_payment_attempt"] = json!(P2E + 3600 + 3 * DAY);
    })
}

/// The retry that pays the invoice.
fn paid_retry() -> String {
    edit("stripe/invoice.paid.renewal.acacia.json", |v| {
        v["id"] = json!("evt_retry_paid");
        v["created"] = json!(P2E + 2 * DAY);
        let o = obj(v);
        o["id"] = json!("in_1Pgd2kB7WZ01zgkWq0Rr2x9A");
        o["lines"]["data"][0]["period"] = json!({"start": P2E, "end": P3E});
    })
}

#[test]
fn a_failed_stripe_invoice_is_kept_with_what_is_due() {
    let cat = catalog();
    let f = stripe_facts(&cat, &event("stripe/invoice.payment_failed.basil.json"));
    let FactBody::InvoiceFailed(i) = &f[0].body else { panic!("{f:?}") };
    assert_eq!((i.amount_due, i.currency.as_str(), i.attempt), (2900, "usd", 1));
    assert_eq!(i.next_retry, Some(t(1777852800)));

    let st = fold(&cat, &facts(&cat, &renewal_failed()), P2E + DAY);
    let r = &st.failed_payments[INVOICE];
    assert_eq!(r.subject, Some(Subject::user("u_123")));
    assert_eq!((r.subscription.as_str(), r.amount_due, r.currency.as_str(), r.attempts), (SUB, 2900, "usd", 1));
    assert_eq!(r.next_retry, Some(t(1777852800)));
    assert_eq!(r.first_failed_at, t(P2E + 3600));
    assert_eq!(r.grace_until, Some(t(P2E + 3600 + 3 * DAY)), "the catalog's three days from the first failure");
    assert!(r.is_open());
    // The store's row, for the subject only.
    let rows = subject_rows(&st, &Default::default());
    let mine = rows.iter().find(|x| x.key == USER).unwrap();
    assert_eq!(mine.failed_payments.len(), 1);
    let row = &mine.failed_payments[0];
    assert_eq!((row.provider.as_str(), row.invoice_id.as_str(), row.attempt_count), ("stripe", "in_1Pgd2kB7WZ01zgkWq0Rr2x9A", 1));
    assert_eq!((row.resolved_at, row.resolution), (None, None));
}

#[test]
fn a_second_attempt_updates_the_record_and_a_redelivery_changes_nothing() {
    let cat = catalog();
    let mut fs = facts(&cat, &renewal_failed());
    fs.extend(stripe_facts(&cat, &second_attempt()));
    let st = fold(&cat, &fs, P2E + 2 * DAY);
    let r = &st.failed_payments[INVOICE];
    assert_eq!(r.attempts, 2);
    assert_eq!(r.next_retry, Some(t(P2E + 3600 + 3 * DAY)));
    assert_eq!(r.first_failed_at, t(P2E + 3600));
    assert_eq!(r.last_failed_at, t(P2E + 3600 + DAY));
    // Redelivered (another event id, same change) and re-folded: the same state.
    let mut again = fs.clone();
    again.extend(stripe_facts(&cat, &second_attempt().replace("evt_fail_2", "evt_fail_2_again")));
    again.extend(fs.iter().cloned());
    assert_eq!(fold(&cat, &again, P2E + 2 * DAY), st);
}

#[test]
fn the_paid_retry_resolves_it_in_any_order() {
    let cat = catalog();
    let mut fs = facts(&cat, &renewal_failed());
    fs.extend(stripe_facts(&cat, &paid_retry()));
    let st = fold(&cat, &fs, P2E + 3 * DAY);
    let r = &st.failed_payments[INVOICE];
    assert_eq!(r.resolved_at, Some(t(P2E + 2 * DAY)));
    assert_eq!(r.resolution, Some(Resolution::Paid));
    assert_eq!(r.resolved_by.as_deref(), Some(INVOICE));
    assert_eq!((r.next_retry, r.grace_until), (None, None));
    let rows = subject_rows(&st, &Default::default());
    let row = &rows.iter().find(|x| x.key == USER).unwrap().failed_payments[0];
    assert_eq!(row.resolution, Some("paid"));
    let mut rev = fs.clone();
    rev.reverse();
    assert_eq!(fold(&cat, &rev, P2E + 3 * DAY), st);
    let mut rot = fs.clone();
    rot.rotate_left(3);
    assert_eq!(fold(&cat, &rot, P2E + 3 * DAY), st);
}

#[test]
fn a_subscription_deleted_unpaid_ends_it() {
    let cat = catalog();
    let mut fs = facts(&cat, &renewal_failed());
    fs.extend(stripe_facts(
        &cat,
        &edit("stripe/customer.subscription.deleted.basil.json", |v| {
            v["created"] = json!(P2E + 10 * DAY);
            obj(v)["ended_at"] = json!(P2E + 10 * DAY);
        }),
    ));
    let st = fold(&cat, &fs, P2E + 11 * DAY);
    let r = &st.failed_payments[INVOICE];
    assert_eq!((r.resolution, r.resolved_at), (Some(Resolution::Ended), Some(t(P2E + 10 * DAY))));
}

#[test]
fn razorpay_pending_and_halted_are_one_payment_due_until_charged() {
    let cat = catalog();
    let base = ["razorpay/subscription.activated.json", "razorpay/subscription.charged.json"];
    let pend = rzp_facts(&cat, &event("razorpay/subscription.pending.json"));
    assert_eq!(pend.len(), 2, "the snapshot and the failure");
    let FactBody::InvoiceFailed(i) = &pend[1].body else { panic!("{pend:?}") };
    assert_eq!(i.id, format!("{RSUB}@{P1E}"));
    assert_eq!((i.amount_due, i.currency.as_str()), (7900, "usd"), "the plan's price in the catalog");
    assert_eq!(i.next_retry, Some(t(1777593600)));
    let mut fs = facts(&cat, &base);
    fs.extend(pend);
    fs.extend(facts(&cat, &["razorpay/subscription.halted.json"]));
    let st = fold(&cat, &fs, P1E + 2 * DAY);
    assert_eq!(st.failed_payments.len(), 1);
    let r = st.failed_payments.values().next().unwrap();
    assert_eq!(r.subject, Some(Subject::parse(RZP).unwrap()));
    assert_eq!(r.attempts, 2, "two failures reported");
    assert_eq!(r.next_retry, None, "halted: Razorpay stopped trying");
    assert!(r.is_open());
    // The next charge settles it.
    let charged = edit("razorpay/subscription.charged.renewal.json", |v| {
        v["created_at"] = json!(P1E + 3 * DAY);
    });
    fs.extend(rzp_facts(&cat, &charged));
    let st = fold(&cat, &fs, P1E + 4 * DAY);
    let r = st.failed_payments.values().next().unwrap();
    assert_eq!((r.resolution, r.resolved_at), (Some(Resolution::Paid), Some(t(P1E + 3 * DAY))));
}

#[test]
fn razorpay_payment_failed_needs_its_subscription() {
    let cat = catalog();
    let lone = json!({"entity": "event", "event": "payment.failed", "contains": ["payment"], "created_at": P1E,
        "payload": {"payment": {"entity": {"id": "pay_x", "entity": "payment", "amount": 49900, "currency": "INR", "status": "failed"}}}});
    let p = parse_razorpay_event(&cat, &lone.to_string(), Some("evt_x")).unwrap();
    assert!(matches!(p, Parsed::Ignored { .. }), "a failed one-time payment leaves nothing due");
    let sub = json("razorpay/subscription.pending.json")["payload"]["subscription"].clone();
    let with_sub = json!({"entity": "event", "event": "payment.failed", "contains": ["payment", "subscription"], "created_at": P1E,
        "payload": {"subscription": sub, "payment": {"entity": {"id": "pay_y", "entity": "payment", "amount": 49900,
            "currency": "INR", "status": "failed", "invoice_id": "inv_y"}}}});
    let f = parse_razorpay_event(&cat, &with_sub.to_string(), Some("evt_y")).unwrap().into_facts();
    let FactBody::InvoiceFailed(i) = &f[0].body else { panic!("{f:?}") };
    let cycle = format!("{RSUB}@{P1E}");
    assert_eq!((i.id.as_str(), i.subscription.as_str(), i.amount_due, i.currency.as_str()), (cycle.as_str(), RSUB, 49900, "inr"));
    assert_eq!(i.payment.as_deref(), Some("razorpay:pay_y"));
}

/// Razorpay tells one failed charge twice: `payment.failed` (the payment, naming its
/// invoice) and `subscription.pending` (the subscription's new state). Both are the one
/// payment due for the cycle, and the attempts are the failed payments, not the events.
#[test]
fn razorpay_payment_failed_and_pending_are_one_payment_due() {
    let cat = catalog();
    let sub = json("razorpay/subscription.pending.json")["payload"]["subscription"].clone();
    let failed = |pay: &str, at: i64, status: &str| {
        let mut s = sub.clone();
        s["entity"]["status"] = json!(status);
        json!({"entity": "event", "event": "payment.failed", "contains": ["payment", "subscription"], "created_at": at,
            "payload": {"subscription": s, "payment": {"entity": {"id": pay, "entity": "payment", "amount": 7900,
                "currency": "USD", "status": "failed", "invoice_id": "inv_cycle2"}}}})
        .to_string()
    };
    let mut fs = facts(&cat, &["razorpay/subscription.activated.json", "razorpay/subscription.charged.json"]);
    fs.extend(rzp_facts(&cat, &failed("pay_fail_1", P1E + 20, "pending")));
    fs.extend(rzp_facts(&cat, &event("razorpay/subscription.pending.json")));
    let st = fold(&cat, &fs, P1E + DAY);
    assert_eq!(st.failed_payments.len(), 1, "one charge failed: {:?}", st.failed_payments.keys().collect::<Vec<_>>());
    let r = st.failed_payments.values().next().unwrap();
    assert_eq!((r.attempts, r.amount_due), (1, 7900));
    // The retry fails too, and Razorpay stops: two failed payments, still one due.
    fs.extend(rzp_facts(&cat, &failed("pay_fail_2", P1E + 2 * DAY, "halted")));
    fs.extend(rzp_facts(&cat, &edit("razorpay/subscription.halted.json", |v| v["created_at"] = json!(P1E + 2 * DAY + 5))));
    let st = fold(&cat, &fs, P1E + 3 * DAY);
    assert_eq!(st.failed_payments.len(), 1);
    let r = st.failed_payments.values().next().unwrap();
    assert_eq!(r.attempts, 2, "two failed payments");
    assert_eq!(r.next_retry, None);
}
