//! Subscription alerts and what a page shows of them, against the moments they warn of.
#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;
use tollgate::alerts::{subscription_checks, Level};
use tollgate::catalog::{AlertRule, SubscriptionEvent};
use tollgate::model::Status;

/// A Stripe subscription set to cancel on a date (`cancel_at`, without
/// `cancel_at_period_end`): its grant is canceled then, and the `subscription_canceled`
/// alert is crossed, ending then.
#[test]
fn cancel_at_is_a_cancellation_for_the_alert_too() {
    let mut cat = catalog();
    cat.doc.alerts = vec![AlertRule {
        feature: None,
        percent_used: vec![],
        units_left: vec![],
        event: Some(SubscriptionEvent::SubscriptionCanceled),
        days: None,
    }];
    let cancel_on = P2E - 10 * DAY;
    let upd = edit("stripe/customer.subscription.updated.cancel_at_period_end.basil.json", |v| {
        let o = obj(v);
        o["cancel_at_period_end"] = json!(false);
        o["cancel_at"] = json!(cancel_on);
    });
    let mut fs = facts(&cat, FIRST_PERIOD);
    fs.extend(stripe_facts(&cat, &upd));
    let now = 1_775_865_600 + DAY;
    let st = fold(&cat, &fs, now);
    let ents = st.entitlements_for(USER);
    let g = ents.grants.iter().find(|g| g.source_ref.as_deref() == Some(SUB)).expect("grant");
    assert_eq!((g.status, g.valid_to), (Status::Canceled, Some(t(cancel_on))), "the grant says: canceled");
    let checks = subscription_checks(&cat, &st, USER, t(now));
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].level, Level::Known { known: true }, "subscription_canceled not crossed: {:?}", checks[0]);
    assert_eq!(checks[0].alert["ends_at"], json!(t(cancel_on)), "it ends at cancel_at, not the period's end");
}

/// A `grace_ending` alert the store left open (no fold came since) is not shown once the
/// grace it warns of is over.
#[test]
fn grace_ending_is_not_shown_after_the_grace_ended() {
    use std::collections::BTreeMap;
    use tollgate::notices::{due_payments, notices, shown_alerts, StoredAlert, StoredPayment};
    let cat = shipped("razorpay-ai");
    let t0 = t(1_800_000_000);
    let grace = t0.plus_days(3);
    let rows = vec![StoredAlert {
        rule: "grace_ending:1:razorpay:sub_1@1".into(),
        kind: "grace_ending".into(),
        body: json!({"kind": "grace_ending", "invoice": "razorpay:sub_1@1", "subscription": "razorpay:sub_1", "grace_until": grace}),
        crossed_at: t0.plus_days(2),
        resolved_at: None,
    }];
    let due = due_payments(&[StoredPayment {
        provider: "razorpay".into(), invoice_id: "sub_1@1".into(), subscription_id: "sub_1".into(),
        amount_due: 49900, currency: "inr".into(), attempt_count: 1, next_retry_at: None,
        first_failed_at: t0, grace_until: Some(grace), resolved_at: None,
    }]);
    let now = grace.plus_days(2);
    let n = notices(&cat, &Default::default(), &shown_alerts(&rows, now), &due, &BTreeMap::new(), now);
    let msgs: Vec<&str> = n.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(!n.warnings.iter().any(|w| w.kind == "grace_ending"), "{msgs:?}");
}

