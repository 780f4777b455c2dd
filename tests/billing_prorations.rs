//! Plan changes on Stripe's invoices: proration lines pay for what they say, the credit
//! lines of the old plan give nothing, and a renewal carrying last period's prorations
//! gives one period's allowance.

#[path = "events/support.rs"]
mod support;

use serde_json::{json, Value};
use support::*;
use tollgate::billing::*;

const UP: i64 = T0 + 15 * DAY;

/// The subscription after an upgrade from Studio Basic to Studio Pro at UP.
fn upgraded_snapshot(cat: &tollgate::Catalog) -> Vec<Fact> {
    let raw = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        v["id"] = json!("evt_upgrade_sub");
        v["created"] = json!(UP);
        let it = &mut obj(v)["items"]["data"][0];
        it["price"]["id"] = json!("price_pro_monthly");
        it["plan"]["id"] = json!("price_pro_monthly");
    });
    stripe_facts(cat, &raw)
}

fn line(price: &str, amount: i64, quantity: i64, start: i64, end: i64, id: &str) -> Value {
    json!({
        "id": id, "object": "line_item", "amount": amount, "currency": "usd", "quantity": quantity,
        "parent": {"type": "subscription_item_details", "subscription_item_details": {
            "proration": true, "subscription": "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw", "subscription_item": "si_QXhVnC2h0Jczwc"}},
        "period": {"start": start, "end": end},
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_x"}}
    })
}

/// An upgrade's two proration lines: the unused time on Basic credited, the rest of the
/// period on Pro charged.
fn upgrade_lines() -> Value {
    json!([
        line("price_1PgafmB7WZ01zgkW6dKueIc5", -1450, 1, UP, P1E, "il_unused_basic"),
        line("price_pro_monthly", 3950, 1, UP, P1E, "il_rest_pro"),
    ])
}

/// The invoice event at `path` as the upgrade's invoice `in_upgrade` (event `evt`, at
/// UP + 2, its two proration lines); `more` edits the invoice further.
fn upgrade_event(path: &str, evt: &str, more: impl FnOnce(&mut Value)) -> String {
    edit(path, |v| {
        v["id"] = json!(evt);
        v["created"] = json!(UP + 2);
        let o = obj(v);
        o["id"] = json!("in_upgrade");
        o["billing_reason"] = json!("subscription_update");
        o["lines"]["data"] = upgrade_lines();
        more(o);
    })
}

/// Stripe's invoice for an upgrade with `always_invoice` (the catalog's default).
fn upgrade_invoice(cat: &tollgate::Catalog) -> Vec<Fact> {
    let raw = upgrade_event("stripe/invoice.paid.basil.json", "evt_upgrade_inv", |o| {
        o["amount_paid"] = json!(2500);
        o["payments"] = json!(null);
    });
    stripe_facts(cat, &raw)
}

#[test]
fn an_upgrade_proration_invoice_grants_the_new_plans_allowance_not_both() {
    let cat = catalog();
    let mut fs = facts(&cat, FIRST_PERIOD);
    fs.extend(upgraded_snapshot(&cat));
    fs.extend(upgrade_invoice(&cat));
    let st = fold(&cat, &fs, UP + DAY);
    assert!(has(&cat, &st, USER, "studio", "pro", UP + DAY));
    // Studio Pro gives 7200 video seconds a period; Basic 1800. The credit line for the
    // unused Basic time is not a purchase of Basic.
    assert_eq!(st.balance(USER, "video_seconds"), 7200, "the Pro allowance for the period");
}

/// With `create_prorations`, the renewal invoice carries last period's proration lines
/// (credit for Basic, charge for Pro) next to the new period's Pro line.
#[test]
fn a_renewal_invoice_carrying_prorations_grants_one_allowance() {
    let cat = catalog();
    let mut fs = facts(&cat, FIRST_PERIOD);
    fs.extend(upgraded_snapshot(&cat));
    let raw = edit("stripe/invoice.paid.basil.json", |v| {
        v["id"] = json!("evt_renewal_inv");
        v["created"] = json!(P1E + 3600);
        let o = obj(v);
        o["id"] = json!("in_renewal_with_prorations");
        o["billing_reason"] = json!("subscription_cycle");
        o["amount_paid"] = json!(7900 + 2500);
        o["payments"] = json!(null);
        o["lines"]["data"] = upgrade_lines();
        o["lines"]["data"].as_array_mut().unwrap().push(line("price_pro_monthly", 7900, 1, P1E, P2E, "il_next_pro"));
        o["lines"]["data"][2]["parent"]["subscription_item_details"]["proration"] = json!(false);
    });
    fs.extend(stripe_facts(&cat, &raw));
    let st = fold(&cat, &fs, P1E + 2 * 3600);
    // Period 2: one Pro allowance (7200) plus the rollover of period 1's unused Basic
    // allowance, capped at one allowance; ai_credits (reset) exactly one Pro allowance.
    assert_eq!(st.balance(USER, "ai_credits"), 2000, "one Pro allowance of ai_credits");
}


/// The upgrade invoice paid through its own payment intent, and a refund of that charge
/// (`amount_refunded` of its 2500) at `at`.
fn upgrade_paid_by_its_own_charge(cat: &tollgate::Catalog, refunded: i64, at: i64) -> (Vec<Fact>, Vec<Fact>) {
    let raw = upgrade_event("stripe/invoice.paid.basil.json", "evt_upgrade_inv", |o| {
        o["amount_paid"] = json!(2500);
        o["payments"]["data"][0]["id"] = json!("inpay_upgrade");
        o["payments"]["data"][0]["amount_paid"] = json!(2500);
        o["payments"]["data"][0]["payment"]["payment_intent"] = json!("pi_upgrade");
    });
    let refund = edit("stripe/charge.refunded.invoice.basil.json", |v| {
        v["id"] = json!(format!("evt_refund_upgrade_{refunded}"));
        v["created"] = json!(at);
        let o = obj(v);
        o["id"] = json!("ch_upgrade");
        o["payment_intent"] = json!("pi_upgrade");
        o["amount"] = json!(2500);
        o["amount_captured"] = json!(2500);
        o["amount_refunded"] = json!(refunded);
        o["refunded"] = json!(refunded == 2500);
    });
    (stripe_facts(cat, &raw), stripe_facts(cat, &refund))
}

/// A refund of an upgrade's proration charge takes back what that charge paid for (the
/// Pro top-up of the period's allowance, and Pro itself), never what the period's first
/// invoice paid for: Basic's allowance and Basic until the period's end stay.
#[test]
fn a_refunded_upgrade_falls_back_to_what_the_first_invoice_paid_for() {
    let cat = catalog();
    let refund_at = UP + 3 * DAY;
    let (upgrade, refund) = upgrade_paid_by_its_own_charge(&cat, 2500, refund_at);
    let mut fs = facts(&cat, FIRST_PERIOD);
    fs.extend(upgraded_snapshot(&cat));
    fs.extend(upgrade);
    let st = fold(&cat, &fs, UP + DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 7200);
    assert!(has(&cat, &st, USER, "studio", "pro", UP + DAY));
    fs.extend(refund);
    let st = fold(&cat, &fs, refund_at + DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 1800, "Basic's allowance for the period stays");
    assert!(!has(&cat, &st, USER, "studio", "pro", refund_at + DAY), "no Pro after the refund");
    let d = access(&cat, &st, USER, "studio", "basic", refund_at + DAY);
    assert!(d.allowed, "Basic, which the first invoice paid for, stays: {d:?}");
    assert_eq!(d.holds_until, Some(t(P1E)));
    // The period's first invoice refunded too: nothing of the period stays.
    let mut both = fs.clone();
    let first = edit("stripe/charge.refunded.invoice.basil.json", |v| v["created"] = json!(refund_at + DAY));
    both.extend(stripe_facts(&cat, &first));
    let st = fold(&cat, &both, refund_at + 2 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    assert!(!has(&cat, &st, USER, "studio", "basic", refund_at + 2 * DAY));
    // The next period paid on Pro gives Pro again.
    let mut next = fs.clone();
    let raw = edit("stripe/invoice.paid.basil.json", |v| {
        v["id"] = json!("evt_renewal_pro");
        v["created"] = json!(P1E + 3600);
        let o = obj(v);
        o["id"] = json!("in_renewal_pro");
        o["billing_reason"] = json!("subscription_cycle");
        o["amount_paid"] = json!(7900);
        o["payments"]["data"][0]["id"] = json!("inpay_renewal");
        o["payments"]["data"][0]["payment"]["payment_intent"] = json!("pi_renewal");
        o["lines"]["data"] = json!([line("price_pro_monthly", 7900, 1, P1E, P2E, "il_next_pro")]);
        o["lines"]["data"][0]["parent"]["subscription_item_details"]["proration"] = json!(false);
        o["period_start"] = json!(P1E);
        o["period_end"] = json!(P2E);
    });
    next.extend(stripe_facts(&cat, &raw));
    let st = fold(&cat, &next, P1E + 2 * 3600);
    assert!(has(&cat, &st, USER, "studio", "pro", P1E + 2 * 3600));
}

/// Half the upgrade's charge refunded takes half of what it added (2700 of the 5400 Pro
/// seconds it topped up), not half of the whole period's allowance.
#[test]
fn a_half_refunded_upgrade_takes_half_of_what_it_added() {
    let cat = catalog();
    let (upgrade, refund) = upgrade_paid_by_its_own_charge(&cat, 1250, UP + 3 * DAY);
    let mut fs = facts(&cat, FIRST_PERIOD);
    fs.extend(upgraded_snapshot(&cat));
    fs.extend(upgrade);
    fs.extend(refund);
    let st = fold(&cat, &fs, UP + 4 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 7200 - 2700);
    assert!(has(&cat, &st, USER, "studio", "pro", UP + 4 * DAY), "a partial refund keeps the plan");
}

/// The upgrade's proration invoice fails, and the subscription turns past due: Pro lasts
/// through the grace period, and after it Basic, which the period's first invoice paid for,
/// lasts to the period's end (not nothing from the end of the grace).
#[test]
fn a_failed_upgrade_falls_back_to_the_plan_paid_for_after_the_grace() {
    let cat = catalog();
    let mut fs = facts(&cat, FIRST_PERIOD);
    fs.extend(upgraded_snapshot(&cat));
    let failed = upgrade_event("stripe/invoice.payment_failed.basil.json", "evt_upgrade_failed", |o| {
        o["amount_due"] = json!(2500);
        o["amount_remaining"] = json!(2500);
        o["next_payment_attempt"] = json!(UP + 2 + DAY);
    });
    fs.extend(stripe_facts(&cat, &failed));
    let past_due = edit("stripe/customer.subscription.updated.past_due.basil.json", |v| {
        v["id"] = json!("evt_upgrade_past_due");
        v["created"] = json!(UP + 3);
        let it = &mut obj(v)["items"]["data"][0];
        it["price"]["id"] = json!("price_pro_monthly");
        it["plan"]["id"] = json!("price_pro_monthly");
        it["current_period_start"] = json!(T0);
        it["current_period_end"] = json!(P1E);
    });
    fs.extend(stripe_facts(&cat, &past_due));
    let st = fold(&cat, &fs, UP + 10 * DAY);
    assert!(has(&cat, &st, USER, "studio", "pro", UP + DAY), "Pro in the grace period");
    let late = UP + 10 * DAY;
    assert!(!has(&cat, &st, USER, "studio", "pro", late), "no Pro after the grace");
    let d = access(&cat, &st, USER, "studio", "basic", late);
    assert!(d.allowed, "Basic, paid for, after the grace: {d:?}");
    assert_eq!(d.holds_until, Some(t(P1E)));
    assert!(!has(&cat, &st, USER, "studio", "basic", P1E + 1), "and not past the period it paid for");
}
