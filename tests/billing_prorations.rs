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

/// Stripe's invoice for an upgrade with `always_invoice` (the catalog's default): one
/// proration line crediting the unused time on the old price, one charging the rest of the
/// period on the new price.
fn upgrade_invoice(cat: &tollgate::Catalog) -> Vec<Fact> {
    let raw = edit("stripe/invoice.paid.basil.json", |v| {
        v["id"] = json!("evt_upgrade_inv");
        v["created"] = json!(UP + 2);
        let o = obj(v);
        o["id"] = json!("in_upgrade");
        o["billing_reason"] = json!("subscription_update");
        o["amount_paid"] = json!(2500);
        o["payments"] = json!(null);
        o["lines"]["data"] = json!([
            line("price_1PgafmB7WZ01zgkW6dKueIc5", -1450, 1, UP, P1E, "il_unused_basic"),
            line("price_pro_monthly", 3950, 1, UP, P1E, "il_rest_pro"),
        ]);
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
        o["lines"]["data"] = json!([
            line("price_1PgafmB7WZ01zgkW6dKueIc5", -1450, 1, UP, P1E, "il_unused_basic"),
            line("price_pro_monthly", 3950, 1, UP, P1E, "il_rest_pro"),
            line("price_pro_monthly", 7900, 1, P1E, P2E, "il_next_pro"),
        ]);
        o["lines"]["data"][2]["parent"]["subscription_item_details"]["proration"] = json!(false);
    });
    fs.extend(stripe_facts(&cat, &raw));
    let st = fold(&cat, &fs, P1E + 2 * 3600);
    // Period 2: one Pro allowance (7200) plus the rollover of period 1's unused Basic
    // allowance, capped at one allowance; ai_credits (reset) exactly one Pro allowance.
    assert_eq!(st.balance(USER, "ai_credits"), 2000, "one Pro allowance of ai_credits");
}

