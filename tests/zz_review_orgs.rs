//! Review of organizations and seats in the core: what an organization's owners are shown
//! of its plan while a payment for more seats is past due.

#[path = "events/support.rs"]
mod support;

use serde_json::{json, Value};
use support::*;
use tollgate::orgs;

const TEAM_SUB: &str = "sub_1PgTeaB7WZ01zgkWteamplan";
const TEAM_CUS: &str = "cus_TeamOrg0001";
const ACME: &str = "org:acme";

/// A Stripe invoice line (API 2025-03-31 shape) of `price` for `[start, end)`.
fn line(sub: &str, price: &str, amount: i64, quantity: i64, start: i64, end: i64, id: &str, proration: bool) -> Value {
    json!({
        "id": id, "object": "line_item", "amount": amount, "currency": "usd", "quantity": quantity,
        "parent": {"type": "subscription_item_details", "subscription_item_details": {
            "proration": proration, "subscription": sub, "subscription_item": "si_x"}},
        "period": {"start": start, "end": end},
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_x"}}
    })
}

fn invoice_paid(evt: &str, at: i64, inv: &str, lines: Value, amount: i64, pi: &str) -> String {
    edit("stripe/invoice.paid.basil.json", |v| {
        v["id"] = json!(evt);
        v["created"] = json!(at);
        let o = obj(v);
        o["id"] = json!(inv);
        o["customer"] = json!(TEAM_CUS);
        o["parent"]["subscription_details"]["subscription"] = json!(TEAM_SUB);
        o["lines"]["data"] = lines;
        o["amount_paid"] = json!(amount);
        o["amount_due"] = json!(amount);
        o["payments"]["data"][0]["payment"]["payment_intent"] = json!(pi);
        o["payments"]["data"][0]["amount_paid"] = json!(amount);
    })
}

fn invoice_failed(evt: &str, at: i64, inv: &str, lines: Value, due: i64) -> String {
    edit("stripe/invoice.payment_failed.basil.json", |v| {
        v["id"] = json!(evt);
        v["created"] = json!(at);
        let o = obj(v);
        o["id"] = json!(inv);
        o["customer"] = json!(TEAM_CUS);
        o["parent"]["subscription_details"]["subscription"] = json!(TEAM_SUB);
        o["lines"]["data"] = lines;
        o["amount_due"] = json!(due);
        o["amount_remaining"] = json!(due);
    })
}

/// The organization's team plan, `quantity` seats, `status`, at `at`.
fn team(evt: &str, at: i64, quantity: u32, status: &str) -> String {
    edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        v["id"] = json!(evt);
        v["created"] = json!(at);
        let o = obj(v);
        o["id"] = json!(TEAM_SUB);
        o["customer"] = json!(TEAM_CUS);
        o["status"] = json!(status);
        o["metadata"] = json!({"org_id": "acme"});
        let it = &mut o["items"]["data"][0];
        it["price"]["id"] = json!("price_team_pro");
        it["plan"]["id"] = json!("price_team_pro");
        it["quantity"] = json!(quantity);
        it["current_period_start"] = json!(T0);
        it["current_period_end"] = json!(P1E);
    })
}

/// An organization's plan hides that it is past due after a failed seat increase.
///
/// Acme pays for 1 seat of its team plan, then raises the quantity to 10 on day 10; the
/// proration invoice for the 9 more seats fails and Stripe marks the subscription
/// `past_due`. The plan an organization shows its members and owners (`orgs::plan`, behind
/// `GET /v1/orgs/{id}`'s `plan` and `grace`, and the package's `getOrganizationEntitlements`
/// `status` / `inGracePeriod` / `gracePeriodEndsAt`) is documented as `past_due` while in
/// grace (src/orgs.rs: "`past_due` in grace, ... `unpaid` (grace over)"; the unit test
/// `every_member_sees_plan_seats_and_grace_and_managers_see_the_members`).
///
/// Expected, one day into the 3-day grace: status `past_due`, `in_grace` true and a
/// `grace_ends_at`: this is what tells the owner to fix the card before the organization
/// drops back to the 1 seat paid for (and the members beyond it lose theirs).
///
/// Actual: `active`, not in grace, no grace end. The fold gives a past-due subscription a
/// second grant for what the period's first payment paid for (`subscription_grants`, the
/// `:paid` grant, status `Active`, same tier), and `plan` takes the status from
/// `decide::effective_at`'s best grant, which prefers an `Active` reason over the
/// past-due one (`rank`), so the failed payment vanishes from the organization's view.
/// After the grace (the seats already cut to 1) it still says `active`, never `unpaid`.
#[test]
fn a_past_due_seat_increase_shows_the_organization_past_due_in_grace() {
    let cat = catalog();
    let up = T0 + 10 * DAY;
    let mut fs = stripe_facts(&cat, &team("evt_team_1", T0 + 200, 1, "active"));
    fs.extend(stripe_facts(
        &cat,
        &invoice_paid("evt_team_in1", T0 + 201, "in_team_1", json!([line(TEAM_SUB, "price_team_pro", 2500, 1, T0, P1E, "il_t1", false)]), 2500, "pi_team_1"),
    ));
    fs.extend(stripe_facts(&cat, &team("evt_team_10", up, 10, "active")));
    let lines = json!([
        line(TEAM_SUB, "price_team_pro", -1700, 1, up, P1E, "il_unused_1", true),
        line(TEAM_SUB, "price_team_pro", 17000, 10, up, P1E, "il_rest_10", true),
    ]);
    fs.extend(stripe_facts(&cat, &invoice_failed("evt_team_fail", up + 60, "in_team_up", lines, 15300)));
    fs.extend(stripe_facts(&cat, &team("evt_team_pd", up + 120, 10, "past_due")));

    let now = up + DAY;
    let st = fold(&cat, &fs, now);
    assert_eq!(st.seats[ACME].seats, 10, "setup: in grace, the 10 seats");
    let grants = st.entitlements_for(ACME).grants;
    let plan = orgs::plan(&cat, &grants, t(now));
    assert_eq!(
        (plan.status, plan.in_grace, plan.grace_ends_at.is_some()),
        ("past_due", true, true),
        "a past-due organization in its grace is shown so: {plan:?} from {grants:#?}"
    );
}
