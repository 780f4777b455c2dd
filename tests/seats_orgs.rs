//! Organizations and seats (the Org Seats app): seat counts from subscription
//! quantities, allocation refused past the count, membership and a seat both
//! needed for a member to get the organization's grants; what an organization's plan
//! shows while a payment for more seats is past due.

#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;
use tollgate::billing::*;
use tollgate::decide;
use tollgate::orgs;
use tollgate::billing::members::{check_allocation, effective_entitlements};
use tollgate::seats::{subscription_seats, Membership, SeatReason};

const ACME: &str = "org:acme";
const TEAM_SUB: &str = "stripe:sub_1PgTeaB7WZ01zgkWteamplan";

fn team(quantity: u32, created: i64) -> Vec<Fact> {
    let raw = edit("stripe/customer.subscription.updated.team.basil.json", |v| {
        v["id"] = json!(format!("evt_team_{quantity}_{created}"));
        v["created"] = json!(created);
        obj(v)["items"]["data"][0]["quantity"] = json!(quantity);
    });
    stripe_facts(&catalog(), &raw)
}

fn seat(user: &str, at: i64) -> Fact {
    Fact::seat_assigned(Subject::org("acme"), Subject::user(user), &format!("seat_{user}"), t(at))
}

fn members(users: &[&str]) -> Vec<Membership> {
    users.iter().map(|u| Membership { org: "acme".into(), user: (*u).into(), role: Some("member".into()) }).collect()
}

fn team_access(st: &BillingState, user: &str, ms: &[Membership], at: i64) -> bool {
    let e = effective_entitlements(st, user, ms);
    decide::has_access(&catalog(), &e, "team", "PROFESSIONAL", t(at)).unwrap().allowed
}

#[test]
fn seats_follow_the_quantity_and_the_fourth_is_refused() {
    let cat = catalog();
    let mut fs = team(3, T0 + 200);
    for (i, u) in ["ann", "bob", "cy", "dee"].iter().enumerate() {
        fs.push(seat(u, T0 + DAY + i as i64));
    }
    let st = fold(&cat, &fs, T0 + 2 * DAY);
    let book = &st.seats[ACME];
    assert_eq!((book.seats, book.used()), (3, 3));
    assert_eq!(book.refused.len(), 1);
    let r = &book.refused[0];
    assert_eq!((r.reason, r.user.as_str(), r.seats, r.used), (SeatReason::NoSeatsLeft, "user:dee", 3, 3));
    assert_eq!(r.reason.as_str(), "no_seats_left");
    assert!(r.to_string().contains("has 3 seat(s) and all 3 are taken"), "{r}");
    // The same refusal, asked before recording: a value with the reason.
    let ms = members(&["ann", "bob", "cy", "dee"]);
    let e = check_allocation(&st, "acme", "dee", &ms).unwrap_err();
    assert_eq!(e.reason, SeatReason::NoSeatsLeft);
    assert!(check_allocation(&st, "acme", "ann", &ms).is_ok(), "already seated");
}

#[test]
fn members_need_a_seat_and_seated_users_need_membership() {
    let cat = catalog();
    let mut fs = team(3, T0 + 200);
    fs.extend(["ann", "bob", "cy", "dee"].iter().enumerate().map(|(i, u)| seat(u, T0 + DAY + i as i64)));
    let st = fold(&cat, &fs, T0 + 2 * DAY);
    let ms = members(&["ann", "bob", "dee"]);
    let at = T0 + 3 * DAY;
    assert!(team_access(&st, "ann", &ms, at), "member with a seat");
    assert!(!team_access(&st, "dee", &ms, at), "member without a seat");
    assert!(!team_access(&st, "cy", &ms, at), "seat without membership");
    assert!(!team_access(&st, "zed", &ms, at), "neither");
    let e = effective_entitlements(&st, "user:ann", &ms);
    assert!(e.grants.iter().any(|g| g.id == format!("{TEAM_SUB}:team")));
    assert_eq!(e.subject, "user:ann");
    assert_eq!(e.balances.get("free_drafts"), Some(&2), "the user's own balances");
    // Limits with an explicit unlimited: per-tier features read through the composed grants.
    let f = decide::can(&cat, &effective_entitlements(&st, "dee", &ms), "nothing", t(at));
    assert!(f.is_err(), "unknown capabilities are malformed questions");
    assert!(check_allocation(&st, "acme", "zed", &ms).unwrap_err().reason == SeatReason::NotAMember);
}

#[test]
fn fewer_seats_unseat_the_latest_holders() {
    let cat = catalog();
    let mut fs = team(3, T0 + 200);
    fs.extend(["ann", "bob", "cy"].iter().enumerate().map(|(i, u)| seat(u, T0 + DAY + i as i64)));
    fs.extend(team(1, T0 + 5 * DAY));
    let st = fold(&cat, &fs, T0 + 6 * DAY);
    let book = &st.seats[ACME];
    assert_eq!(book.seats, 1);
    let over: Vec<_> = book.holders.iter().map(|h| (h.user.id.as_str(), h.over_capacity)).collect();
    assert_eq!(over, vec![("ann", false), ("bob", true), ("cy", true)]);
    let ms = members(&["ann", "bob", "cy"]);
    assert!(team_access(&st, "ann", &ms, T0 + 6 * DAY));
    assert!(!team_access(&st, "bob", &ms, T0 + 6 * DAY));
    // A seat freed: the next in line holds one again.
    let mut fs2 = fs.clone();
    fs2.push(Fact::seat_released(Subject::org("acme"), Subject::user("ann"), "rel_ann", t(T0 + 7 * DAY)));
    let st = fold(&cat, &fs2, T0 + 8 * DAY);
    assert!(team_access(&st, "bob", &ms, T0 + 8 * DAY));
    assert!(!team_access(&st, "ann", &ms, T0 + 8 * DAY));
}

#[test]
fn no_subscription_no_seats_and_seats_end_with_the_subscription() {
    let cat = catalog();
    let st = fold(&cat, &[seat("ann", T0)], T0 + DAY);
    let r = &st.seats[ACME].refused[0];
    assert_eq!(r.reason, SeatReason::NoSeats, "a seat before any subscription is refused");
    let ms = members(&["ann"]);
    assert_eq!(check_allocation(&st, "acme", "ann", &ms).unwrap_err().reason, SeatReason::NoSeats);
    assert_eq!(check_allocation(&st, "user:ann", "ann", &ms).unwrap_err().reason, SeatReason::NotAnOrganization);
    // The subscription ends: its seats go with it.
    let mut fs = team(2, T0 + 200);
    fs.push(seat("ann", T0 + DAY));
    let del = edit("stripe/customer.subscription.deleted.basil.json", |v| {
        v["created"] = json!(T0 + 10 * DAY);
        let o = obj(v);
        o["id"] = json!("sub_1PgTeaB7WZ01zgkWteamplan");
        o["customer"] = json!("cus_TeamOrg0001");
        o["metadata"] = json!({"org_id": "acme"});
        o["ended_at"] = json!(T0 + 10 * DAY);
        o["items"]["data"][0]["price"]["id"] = json!("price_team_pro");
    });
    fs.extend(stripe_facts(&cat, &del));
    let st = fold(&cat, &fs, T0 + 11 * DAY);
    assert_eq!(st.seats[ACME].seats, 0);
    assert!(!team_access(&st, "ann", &ms, T0 + 11 * DAY));
    let before: Vec<Fact> = fs.iter().filter(|f| f.at.0 <= T0 + 5 * DAY).cloned().collect();
    assert!(team_access(&fold(&cat, &before, T0 + 5 * DAY), "ann", &ms, T0 + 5 * DAY), "seated while it ran");
}

#[test]
fn seats_per_unit_come_from_the_offer() {
    let cat = catalog();
    let items = |offer: &str, q: u32| vec![Item { price: None, offer: Some(offer.into()), quantity: q }];
    assert_eq!(subscription_seats(&cat, &items("TEAM_BUSINESS_MONTHLY", 2)), 4, "two seats per unit");
    assert_eq!(subscription_seats(&cat, &items("TEAM_PROFESSIONAL_MONTHLY", 5)), 5);
    assert_eq!(subscription_seats(&cat, &items("STUDIO_PRO_MONTHLY", 5)), 0, "user plans give no seats");
    let mut both = items("TEAM_BUSINESS_MONTHLY", 1);
    both.extend(items("TEAM_PROFESSIONAL_MONTHLY", 3));
    assert_eq!(subscription_seats(&cat, &both), 5, "every item counts");
}

#[test]
fn the_organization_catalog_of_the_org_seats_app() {
    let cat = shipped("org-seats");
    let co = edit("stripe/checkout.session.completed.subscription.json", |v| {
        let o = obj(v);
        o["metadata"] = json!({"offer_key": "ORG_BUSINESS_MONTHLY", "quantity": "4"});
        o["client_reference_id"] = json!("globex");
    });
    let mut fs = stripe_facts(&cat, &co);
    fs.push(Fact::seat_assigned(Subject::org("globex"), Subject::user("ann"), "s1", t(T0 + DAY)));
    let st = reduce(&cat, &fs, t(T0 + 2 * DAY));
    assert_eq!(st.seats["org:globex"].seats, 4, "an organization offer: the client reference is the organization");
    let ms = vec![Membership { org: "org:globex".into(), user: "user:ann".into(), role: None }];
    let e = effective_entitlements(&st, "ann", &ms);
    assert!(decide::can(&cat, &e, "sso_enabled", t(T0 + 2 * DAY)).unwrap().allowed);
    let lim = decide::limit(&cat, &e, "max_courses_authored", t(T0 + 2 * DAY)).unwrap();
    assert_eq!(lim.limit, tollgate::LimitValue::Limited(50));
    // Without a seat: the default FREE tier only.
    let e = effective_entitlements(&st, "bo", &[Membership { org: "globex".into(), user: "bo".into(), role: None }]);
    assert!(!decide::can(&cat, &e, "sso_enabled", t(T0 + 2 * DAY)).unwrap().allowed);
}

/// "Would a seat be given to `user` now?" is no for a holder the seat count dropped below
/// (it keeps its place in line, not a seat), as the fold then gives none.
#[test]
fn check_allocation_refuses_a_holder_the_count_dropped_below() {
    let cat = catalog();
    let mut fs = team(2, T0 + 200);
    fs.push(seat("ann", T0 + DAY));
    fs.push(seat("bob", T0 + DAY + 1));
    fs.extend(team(1, T0 + 2 * DAY));
    let st = fold(&cat, &fs, T0 + 3 * DAY);
    let ms = members(&["ann", "bob"]);
    let err = check_allocation(&st, "acme", "bob", &ms).expect_err("bob is over the count");
    assert_eq!(err.reason, SeatReason::NoSeatsLeft);
    assert!(check_allocation(&st, "acme", "ann", &ms).is_ok(), "ann holds the one seat");
    let mut again = fs.clone();
    again.push(Fact::seat_assigned(Subject::org("acme"), Subject::user("bob"), "seat_bob_again", t(T0 + 3 * DAY)));
    let after = fold(&cat, &again, T0 + 4 * DAY);
    assert!(!after.seats[ACME].holds_seat(&Subject::user("bob")), "the fold gives none either");
}

/// An organization's name shows something: a name of invisible characters only (a
/// zero-width space, a byte order mark and a joiner) or one with a bidirectional
/// override is refused; joiners inside a name (an emoji sequence) are fine.
#[test]
fn an_organization_name_is_visible() {
    for name in ["\u{200B}", "\u{202E}", "\u{FEFF}\u{200D}", "Acme\u{202E}cm", " \u{2066} "] {
        assert!(tollgate::orgs::new_organization(name).is_err(), "{name:?} accepted as a name");
    }
    for name in ["Acme", "👩\u{200D}💻 Guild", "  Acme  "] {
        assert!(tollgate::orgs::new_organization(name).is_ok(), "{name:?} refused");
    }
}

/// A seat taken from Ann and given to Bob in one second is Bob's: within a second, seats
/// are freed before they are given.
#[test]
fn a_seat_freed_and_given_in_one_second_is_held() {
    let cat = catalog();
    let mut fs = team(1, T0 + 200);
    fs.push(seat("ann", T0 + DAY));
    fs.push(Fact::seat_released(Subject::org("acme"), Subject::user("ann"), "take_ann", t(T0 + 2 * DAY)));
    fs.push(Fact::seat_assigned(Subject::org("acme"), Subject::user("bob"), "seat_bob", t(T0 + 2 * DAY)));
    let st = fold(&cat, &fs, T0 + 3 * DAY);
    let book = &st.seats[ACME];
    assert!(book.refused.is_empty(), "refused: {:?}", book.refused);
    assert!(book.holds_seat(&Subject::user("bob")));
    assert!(!book.holds_seat(&Subject::user("ann")));
}

/// An organization whose payment for more seats failed is shown past due, in grace, with
/// the grace's end, and once the grace is over `unpaid`, while the seats the period's
/// first payment paid for keep working to the period's end.
///
/// Acme pays for 1 seat of its team plan, then raises the quantity to 10 on day 10; the
/// proration invoice for the 9 more seats fails and Stripe marks the subscription
/// `past_due`. The fold then gives the subscription two grants of the same tier: the
/// past-due one (the 10 seats, in grace) and the one of what the first payment paid for
/// (`:paid`, active to the period's end). The plan (`orgs::plan`, behind
/// `GET /v1/orgs/{id}`'s `plan` and `grace`, and the package's
/// `getOrganizationEntitlements`) says what the subscription is, whichever of its grants
/// gives the tier: this is what tells the owner to fix the card before the organization
/// drops back to the 1 seat paid for.
#[test]
fn a_past_due_seat_increase_shows_the_organization_past_due_in_grace_then_unpaid() {
    let cat = catalog();
    let (fs, up) = failed_seat_increase(&cat);

    // One day into the 3-day grace (from the failure): the 10 seats, past due.
    let now = up + DAY;
    let st = fold(&cat, &fs, now);
    assert_eq!(st.seats[ACME].seats, 10, "setup: in grace, the 10 seats");
    let grants = st.entitlements_for(ACME).grants;
    assert!(grants.iter().any(|g| g.status == tollgate::model::Status::Active), "setup: a grant of what was paid: {grants:#?}");
    let plan = orgs::plan(&cat, &grants, t(now));
    assert_eq!(
        (plan.status, plan.in_grace, plan.grace_ends_at, plan.tier.as_deref()),
        ("past_due", true, Some(t(up + 60 + 3 * DAY)), Some("PROFESSIONAL")),
        "a past-due organization in its grace is shown so: {plan:?} from {grants:#?}"
    );

    // The grace over: back to the 1 seat paid for, which still works to the period's end;
    // the plan says the organization is unpaid, not active.
    let later = up + 60 + 4 * DAY;
    let st = fold(&cat, &fs, later);
    assert_eq!(st.seats[ACME].seats, 1, "the seat paid for");
    let grants = st.entitlements_for(ACME).grants;
    let plan = orgs::plan(&cat, &grants, t(later));
    assert_eq!(
        (plan.status, plan.in_grace, plan.grace_ends_at, plan.tier.as_deref(), plan.valid_to),
        ("unpaid", false, Some(t(up + 60 + 3 * DAY)), Some("PROFESSIONAL"), Some(t(P1E))),
        "{plan:?} from {grants:#?}"
    );
    assert!(has(&cat, &st, ACME, "team", "PROFESSIONAL", later), "the paid seats keep the tier");
}
