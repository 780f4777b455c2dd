//! Adversarial tests of organization seats: the seat book (`seats.rs`), the organization
//! rules (`orgs.rs`) and the seat parts of the billing fold (capacity from subscription
//! quantities, the order facts of one second are folded in). The fold must give one answer
//! whatever order facts arrive in and however often each is told.

#[path = "events/support.rs"]
mod support;

use proptest::prelude::*;
use support::*;
use tollgate::billing::facts::{FactBody, Item, Provider, SubStatus, SubscriptionSnapshot};
use tollgate::billing::members::{check_allocation, effective_entitlements};
use tollgate::billing::{reduce, BillingState, Fact, Reducer, Subject};
use tollgate::orgs::{self, Invite, Member, Org, RefusalCode, Role};
use tollgate::seats::{subscription_seats, Membership, SeatBook, SeatReason};
use tollgate::Timestamp;

const ACME: &str = "org:acme";
const PRO: &str = "TEAM_PROFESSIONAL_MONTHLY";
const BUSINESS: &str = "TEAM_BUSINESS_MONTHLY";

/// A subscription snapshot of organization `org`: `quantity` of `offer`, in `status`, told
/// at `at`, its period `period`.
fn snap(
    id: &str,
    org: &str,
    offer: &str,
    quantity: u32,
    status: SubStatus,
    at: i64,
    period: (i64, i64),
) -> Fact {
    Fact {
        key: format!("test:{id}:{at}:{quantity}:{status:?}"),
        provider: Provider::Stripe,
        event: format!("evt_{id}_{at}"),
        at: t(at),
        body: FactBody::Subscription(SubscriptionSnapshot {
            id: format!("stripe:{id}"),
            customer: None,
            status,
            items: vec![Item {
                price: None,
                offer: Some(offer.into()),
                quantity,
            }],
            period_start: Some(t(period.0)),
            period_end: Some(t(period.1)),
            started_at: Some(t(period.0)),
            trial_end: None,
            cancel_at_period_end: false,
            cancel_at: None,
            ended_at: None,
            subject: Some(Subject::org(org)),
            clouds: vec![],
            created: false,
            follows: None,
        }),
        catalog_version: None,
    }
}

/// Acme's team plan (`sub_team`), active for the first period.
fn team(quantity: u32, at: i64) -> Fact {
    acme("sub_team", PRO, quantity, SubStatus::Active, at)
}

/// Acme's subscription `id`: `quantity` of `offer`, in `status`, told at `at`, for the first
/// period.
fn acme(id: &str, offer: &str, quantity: u32, status: SubStatus, at: i64) -> Fact {
    snap(id, "acme", offer, quantity, status, at, (T0, P1E))
}

/// Acme's subscription `id` (`quantity` of `offer`) ended at `at`.
fn ended(id: &str, offer: &str, quantity: u32, at: i64) -> Fact {
    with(acme(id, offer, quantity, SubStatus::Ended, at), |s| {
        s.ended_at = Some(t(at))
    })
}

/// The same snapshot with an edit.
fn with(mut f: Fact, edit: impl FnOnce(&mut SubscriptionSnapshot)) -> Fact {
    if let FactBody::Subscription(s) = &mut f.body {
        edit(s);
    }
    f.key = format!(
        "{}:{}",
        f.key,
        serde_json::to_string(&f.body).unwrap().len()
    );
    f
}

fn give(user: &str, req: &str, at: i64) -> Fact {
    Fact::seat_assigned(Subject::org("acme"), Subject::user(user), req, t(at))
}

fn take(user: &str, req: &str, at: i64) -> Fact {
    Fact::seat_released(Subject::org("acme"), Subject::user(user), req, t(at))
}

/// Seats given to `users` in this order, a second apart from `T0 + 20`, each request named
/// by its user's initial.
fn in_line(users: &[&str]) -> Vec<Fact> {
    users
        .iter()
        .enumerate()
        .map(|(i, u)| give(u, &u[..1], T0 + 20 + i as i64))
        .collect()
}

/// Holders as [`holders`] gives them.
fn line_of(hs: &[(&str, bool)]) -> Vec<(String, bool)> {
    hs.iter().map(|(u, over)| (u.to_string(), *over)).collect()
}

/// The book's holders as `(user, over_capacity)`.
fn holders(st: &BillingState, org: &str) -> Vec<(String, bool)> {
    st.seats[org]
        .holders
        .iter()
        .map(|h| (h.user.id.clone(), h.over_capacity))
        .collect()
}

fn seated(st: &BillingState, org: &str, user: &str) -> bool {
    st.seats
        .get(org)
        .is_some_and(|b| b.holds_seat(&Subject::user(user)))
}

fn members(users: &[&str]) -> Vec<Membership> {
    users
        .iter()
        .map(|u| Membership {
            org: "acme".into(),
            user: (*u).into(),
            role: None,
        })
        .collect()
}

fn team_access(st: &BillingState, user: &str, ms: &[Membership], at: i64) -> bool {
    let e = effective_entitlements(st, user, ms);
    tollgate::decide::has_access(&catalog(), &e, "team", "PROFESSIONAL", t(at))
        .unwrap()
        .allowed
}

/// A member `id` without a seat, its address `email`.
fn seatless(id: &str, role: Role, email: Option<&str>) -> Member {
    Member {
        user_id: id.into(),
        role,
        seat: false,
        email: email.map(Into::into),
        joined_at: None,
    }
}

/// Invite `i1` of Acme, sent by `own` at `now` to `email` as `role` with a seat, open for
/// seven days.
fn invite(email: &str, role: Role, now: Timestamp) -> Invite {
    Invite {
        id: "i1".into(),
        organization_id: "acme".into(),
        email: email.into(),
        role,
        seat: true,
        expires_at: now.plus_days(7),
        created_by: Some("own".into()),
        created_at: Some(now),
        accepted_at: None,
        accepted_by: None,
        revoked_at: None,
    }
}

// ------------------------------------------------------------------ the book alone

/// A holder the count dropped to zero (the subscription ended) is refused as any other
/// user is then: the organization has no seats at all, not "every seat is taken".
#[test]
fn a_holder_of_an_organization_without_seats_is_told_there_are_none() {
    let mut b = SeatBook::new(Subject::org("o"));
    let ann = Subject::user("ann");
    b.assign(&ann, 1, Timestamp(1), "r1").unwrap();
    b.set_capacity(0);
    let fresh = b.check(&Subject::user("bob"), 0).unwrap_err();
    assert_eq!(fresh.reason, SeatReason::NoSeats);
    let holder = b.check(&ann, 0).unwrap_err();
    assert_eq!(holder.reason, SeatReason::NoSeats, "{holder}");
    assert!(!holder.to_string().contains("are taken"), "{holder}");
    // With seats again, the holder's place gives one back.
    assert!(b.check(&ann, 1).is_ok());
}

/// Releasing someone who never held a seat changes nothing and says so.
#[test]
fn releasing_a_user_never_seated_changes_nothing() {
    let mut b = SeatBook::new(Subject::org("o"));
    b.assign(&Subject::user("ann"), 2, Timestamp(1), "r1")
        .unwrap();
    let before = b.clone();
    assert!(!b.release(&Subject::user("bob")));
    assert!(
        !b.release(&Subject::org("ann")),
        "an organization named ann is not the user ann"
    );
    assert_eq!(b, before);
    assert!(b.release(&Subject::user("ann")));
    assert!(
        !b.release(&Subject::user("ann")),
        "released twice: the second frees nothing"
    );
    assert_eq!(b.used(), 0);
}

/// Seats go to users of organizations: an organization is never seated, and a user's book
/// gives nothing; neither leaves a holder behind.
#[test]
fn seats_are_of_organizations_and_for_users() {
    let mut b = SeatBook::new(Subject::org("o"));
    let r = b
        .assign(&Subject::org("other"), 5, Timestamp(1), "r1")
        .unwrap_err();
    assert_eq!(r.reason, SeatReason::NotAUser);
    let mut u = SeatBook::new(Subject::user("o"));
    let r = u
        .assign(&Subject::user("ann"), 5, Timestamp(1), "r2")
        .unwrap_err();
    assert_eq!(r.reason, SeatReason::NotAnOrganization);
    assert!(b.holders.is_empty() && u.holders.is_empty());
    assert_eq!(
        (b.refused.len(), u.refused.len()),
        (1, 1),
        "each refusal is recorded"
    );
    assert_eq!(b.refused[0].request_id, "r1");
}

/// The line survives the count going down to zero and up again: the same people, in the
/// same order, take the seats back.
#[test]
fn the_line_survives_the_count_dropping_to_zero_and_rising() {
    let mut b = SeatBook::new(Subject::org("o"));
    let users: Vec<Subject> = ["a", "b", "c", "d"]
        .iter()
        .map(|u| Subject::user(*u))
        .collect();
    for (i, u) in users.iter().enumerate() {
        b.assign(u, 4, Timestamp(i as i64), "r").unwrap();
    }
    for cap in [0, 2, 1, 3, 4, 10, 0] {
        b.set_capacity(cap);
        for (i, u) in users.iter().enumerate() {
            assert_eq!(b.holds_seat(u), (i as u32) < cap, "cap {cap}, holder {i}");
            assert_eq!(b.holders[i].over_capacity, (i as u32) >= cap);
        }
    }
    // Nobody new gets in while the over-count holders wait.
    b.set_capacity(2);
    assert_eq!(
        b.check(&Subject::user("e"), 2).unwrap_err().reason,
        SeatReason::NoSeatsLeft
    );
    b.release(&users[0]);
    b.set_capacity(2);
    assert!(b.holds_seat(&users[2]), "the next in line moves up");
}

/// Seats per subscription never overflow, whatever the quantity.
#[test]
fn huge_quantities_saturate() {
    let cat = catalog();
    let items = |offer: &str, q: u32| Item {
        price: None,
        offer: Some(offer.into()),
        quantity: q,
    };
    assert_eq!(
        subscription_seats(&cat, &[items(BUSINESS, u32::MAX)]),
        u32::MAX
    );
    assert_eq!(
        subscription_seats(&cat, &[items(PRO, u32::MAX), items(PRO, u32::MAX)]),
        u32::MAX
    );
    assert_eq!(subscription_seats(&cat, &[items("NOT_AN_OFFER", 7)]), 0);
    let fs = vec![
        acme("sub_a", BUSINESS, u32::MAX, SubStatus::Active, T0 + 10),
        acme("sub_b", PRO, u32::MAX, SubStatus::Active, T0 + 10),
        give("ann", "r1", T0 + 20),
    ];
    let st = fold(&cat, &fs, T0 + DAY);
    assert_eq!(st.seats[ACME].seats, u32::MAX);
    assert!(seated(&st, ACME, "ann"));
}

// ------------------------------------------------------------------ ids

/// `user:` in front of an id names a user, with or without the spaces around it, as
/// `Subject::parse` reads it: a membership row never turns a user into an organization.
#[test]
fn a_user_written_with_spaces_is_still_a_user() {
    let st = fold(
        &catalog(),
        &[team(2, T0 + 10), give("ann", "r1", T0 + 20)],
        T0 + DAY,
    );
    let ms = vec![Membership {
        org: " user:acme".into(),
        user: "ann".into(),
        role: None,
    }];
    assert!(
        effective_entitlements(&st, "ann", &ms).grants.is_empty(),
        "a user's membership of user:acme lends nothing"
    );
    let e = check_allocation(&st, " user:acme", "ann", &ms).unwrap_err();
    assert_eq!(e.reason, SeatReason::NotAnOrganization, "{e}");
    // Bare ids and explicit kinds keep working.
    assert!(check_allocation(&st, "acme", "ann", &members(&["ann"])).is_ok());
    assert!(check_allocation(&st, " org:acme ", " user:ann ", &members(&["ann"])).is_ok());
}

/// Unicode ids fold and are looked up like any other; lookalike ids stay apart.
#[test]
fn unicode_ids_are_ids() {
    let cat = catalog();
    let org = "Ä©mé-組織";
    let fs = vec![
        snap("sub_u", org, PRO, 1, SubStatus::Active, T0 + 10, (T0, P1E)),
        Fact::seat_assigned(
            Subject::org(org),
            Subject::user("👩\u{200D}💻"),
            "r1",
            t(T0 + 20),
        ),
        Fact::seat_assigned(Subject::org(org), Subject::user("👩💻"), "r2", t(T0 + 21)),
    ];
    let st = fold(&cat, &fs, T0 + DAY);
    let key = format!("org:{org}");
    assert_eq!(
        holders(&st, &key),
        vec![("👩\u{200D}💻".to_string(), false)]
    );
    assert_eq!(
        st.seats[&key].refused.len(),
        1,
        "one seat, the lookalike is someone else"
    );
    let ms = vec![Membership {
        org: org.into(),
        user: "👩\u{200D}💻".into(),
        role: None,
    }];
    assert!(check_allocation(&st, org, "👩\u{200D}💻", &ms).is_ok());
    assert!(!effective_entitlements(&st, "👩\u{200D}💻", &ms)
        .grants
        .is_empty());
}

/// A user and an organization with the same id are two subjects: a seat "for" the
/// organization itself is refused, and a user's book gets no seats from an organization.
#[test]
fn a_user_and_an_organization_of_one_id_are_not_confused() {
    let cat = catalog();
    let fs = vec![
        team(3, T0 + 10),
        Fact::seat_assigned(
            Subject::org("acme"),
            Subject::org("acme"),
            "self",
            t(T0 + 20),
        ),
        Fact::seat_assigned(
            Subject::user("acme"),
            Subject::user("ann"),
            "user_book",
            t(T0 + 21),
        ),
        give("acme", "user_acme", T0 + 22),
    ];
    let st = fold(&cat, &fs, T0 + DAY);
    assert_eq!(
        holders(&st, ACME),
        vec![("acme".to_string(), false)],
        "only the user acme is seated"
    );
    assert!(st.seats[ACME].holders[0].user == Subject::user("acme"));
    assert_eq!(st.seats[ACME].refused[0].reason, SeatReason::NotAUser);
    let ub = &st.seats["user:acme"];
    assert_eq!((ub.seats, ub.holders.len()), (0, 0));
    assert_eq!(ub.refused[0].reason, SeatReason::NotAnOrganization);
    // The user acme buys an organization's plan for itself: the organization acme gets
    // no seats from it, and the user's book seats nobody.
    let mine = with(team(3, T0 + 10), |s| {
        s.subject = Some(Subject::user("acme"))
    });
    let fs = vec![
        mine,
        give("ann", "a", T0 + 20),
        Fact::seat_assigned(Subject::user("acme"), Subject::user("bob"), "b", t(T0 + 21)),
    ];
    let st = fold(&cat, &fs, T0 + DAY);
    assert_eq!(st.seats[ACME].seats, 0);
    assert_eq!(st.seats[ACME].refused[0].reason, SeatReason::NoSeats);
    assert!(st.seats["user:acme"].holders.is_empty());
    let rows = tollgate::billing::effects::subject_rows(&st, &Default::default());
    let user_row = rows
        .iter()
        .find(|r| r.key == "user:acme")
        .expect("the user's rows");
    assert_eq!(
        (user_row.seat_count, user_row.seats.as_ref()),
        (None, None),
        "a user has no seats to write"
    );
}

// ------------------------------------------------------------------ the fold

/// A retried seat (the same request told again later) is one seat, held since the first
/// telling, whatever order the two arrive in.
#[test]
fn the_same_seat_told_twice_is_one_seat() {
    let cat = catalog();
    let first = give("ann", "r1", T0 + 100).by("own");
    let retry = give("ann", "r1", T0 + 160).by("adm");
    let base = vec![team(1, T0 + 10)];
    for order in [[&first, &retry], [&retry, &first]] {
        let mut fs = base.clone();
        fs.extend(order.iter().map(|f| (*f).clone()));
        fs.push(give("bob", "r2", T0 + 120));
        let st = fold(&cat, &fs, T0 + DAY);
        assert_eq!(holders(&st, ACME), vec![("ann".to_string(), false)]);
        assert_eq!(st.seats[ACME].holders[0].since, t(T0 + 100));
        assert_eq!(
            st.seats[ACME].refused.len(),
            1,
            "bob, after ann's first telling"
        );
        assert_eq!(st.facts.unique, 3);
    }
}

/// A subscription and a seat of the same second: the seat sees the subscription's seats.
/// A deletion and a seat of the same second: the seat sees none.
#[test]
fn a_seat_in_the_second_a_subscription_starts_or_ends() {
    let cat = catalog();
    let st = fold(
        &cat,
        &[give("ann", "r1", T0 + 10), team(1, T0 + 10)],
        T0 + DAY,
    );
    assert!(seated(&st, ACME, "ann"));
    let end = ended("sub_team", PRO, 1, T0 + 50);
    let st = fold(
        &cat,
        &[
            team(2, T0 + 10),
            give("ann", "r1", T0 + 20),
            end,
            give("bob", "r2", T0 + 50),
        ],
        T0 + DAY,
    );
    assert_eq!(holders(&st, ACME), vec![("ann".to_string(), true)]);
    assert_eq!(st.seats[ACME].refused[0].reason, SeatReason::NoSeats);
}

/// The count drops and rises again: the holders it dropped below wait in their place,
/// newcomers are refused meanwhile, and the rise seats the waiting holders first.
#[test]
fn a_count_that_drops_and_rises_again_seats_the_same_people() {
    let cat = catalog();
    let mut fs = vec![team(3, T0 + 10)];
    fs.extend(in_line(&["ann", "bob", "cy"]));
    fs.push(team(1, T0 + DAY));
    fs.push(give("dee", "d", T0 + DAY + 5));
    let low = fold(&cat, &fs, T0 + 2 * DAY);
    assert_eq!(holders(&low, ACME), line_of(&[("ann", false), ("bob", true), ("cy", true)]));
    assert_eq!(low.seats[ACME].refused[0].reason, SeatReason::NoSeatsLeft);
    fs.push(team(3, T0 + 3 * DAY));
    let high = fold(&cat, &fs, T0 + 4 * DAY);
    assert_eq!(holders(&high, ACME), line_of(&[("ann", false), ("bob", false), ("cy", false)]));
    assert!(!seated(&high, ACME, "dee"), "a refused seat stays refused");
    let ms = members(&["ann", "bob", "cy", "dee"]);
    assert!(team_access(&high, "cy", &ms, T0 + 4 * DAY));
    assert!(!team_access(&low, "cy", &ms, T0 + 2 * DAY));
}

/// A subscription told without its organization, then the link from its customer to the
/// organization told days later: the seats given meanwhile are given, as if the link had
/// been known all along, in whichever order the facts arrive.
#[test]
fn seats_given_before_a_late_link_are_given() {
    let cat = catalog();
    let sub = with(team(2, T0 + 10), |s| {
        s.subject = None;
        s.customer = Some("stripe:cus_late".into());
    });
    let link = Fact::customer_link(
        Provider::Stripe,
        "cus_late",
        Subject::org("acme"),
        t(T0 + 5 * DAY),
    );
    let seats = [give("ann", "a", T0 + 20), give("bob", "b", T0 + DAY)];
    let without = fold(
        &cat,
        &[sub.clone(), seats[0].clone(), seats[1].clone()],
        T0 + 2 * DAY,
    );
    assert_eq!(
        without.seats[ACME].refused.len(),
        2,
        "no organization known: no seats"
    );
    let mut fs = vec![link, seats[1].clone(), sub, seats[0].clone()];
    let st = fold(&cat, &fs, T0 + 6 * DAY);
    assert_eq!(holders(&st, ACME), line_of(&[("ann", false), ("bob", false)]));
    assert!(st.seats[ACME].refused.is_empty());
    fs.reverse();
    assert_eq!(fold(&cat, &fs, T0 + 6 * DAY).seats, st.seats);
}

/// A failed seat increase: the seats it asked for are given during the grace; after it
/// the seats the period's first payment paid for remain, held by the first in line.
#[test]
fn seats_given_during_a_failed_increase_wait_after_its_grace() {
    let cat = catalog();
    let (mut fs, up) = failed_seat_increase(&cat);
    for (i, u) in ["ann", "bob", "cy"].iter().enumerate() {
        fs.push(give(u, &format!("r{i}"), up + 200 + i as i64));
    }
    let grace_end = up + 60 + 3 * DAY;
    let during = fold(&cat, &fs, grace_end - 1);
    assert_eq!(during.seats[ACME].seats, 10);
    assert!(holders(&during, ACME).iter().all(|(_, over)| !over));
    fs.push(give("dee", "r3", grace_end + 10));
    let after = fold(&cat, &fs, grace_end + DAY);
    assert_eq!(after.seats[ACME].seats, 1, "what was paid");
    assert_eq!(holders(&after, ACME), line_of(&[("ann", false), ("bob", true), ("cy", true)]));
    assert_eq!(
        after.seats[ACME].refused[0].reason,
        SeatReason::NoSeatsLeft,
        "dee, after the grace"
    );
    assert!(
        fold(&cat, &fs, P1E).seats[ACME].seats == 0,
        "the paid period over, nothing"
    );
}

/// Several subscriptions of one organization add up; one ending takes only its own seats.
#[test]
fn several_subscriptions_add_up_and_end_apart() {
    let cat = catalog();
    let a = acme("sub_a", PRO, 1, SubStatus::Active, T0 + 10);
    let b = acme("sub_b", BUSINESS, 1, SubStatus::Active, T0 + 11);
    let b_end = ended("sub_b", BUSINESS, 1, T0 + 5 * DAY);
    let mut fs = vec![a, b];
    fs.extend(in_line(&["ann", "bob", "cy", "dee"]));
    let st = fold(&cat, &fs, T0 + DAY);
    assert_eq!(st.seats[ACME].seats, 3, "1 + 2 per unit");
    assert_eq!(
        holders(&st, ACME).iter().filter(|(_, over)| !over).count(),
        3
    );
    assert_eq!(st.seats[ACME].refused.len(), 1);
    fs.push(b_end);
    let st = fold(&cat, &fs, T0 + 6 * DAY);
    assert_eq!(st.seats[ACME].seats, 1);
    assert_eq!(holders(&st, ACME), line_of(&[("ann", false), ("bob", true), ("cy", true)]));
}

/// What each standing of a subscription gives in seats: trialing and past due in grace
/// all of them, canceled at the period end until then, paused and ended none, past due
/// after the grace none when nothing was paid.
#[test]
fn what_each_standing_gives_in_seats() {
    let cat = catalog();
    let grace = 3 * DAY;
    // Two seats, Ann's and Bob's, then `extra`.
    let two_seats = || [vec![team(2, T0 + 10)], in_line(&["ann", "bob"])].concat();
    let st_at = |extra: Fact, now: i64| {
        let mut fs = two_seats();
        fs.push(extra);
        fold(&cat, &fs, now)
    };
    let at = T0 + 5 * DAY;
    let s = |status| acme("sub_team", PRO, 2, status, at);
    // Trialing.
    let trial = with(s(SubStatus::Trialing), |x| x.trial_end = Some(t(P1E)));
    assert_eq!(st_at(trial, at + DAY).seats[ACME].seats, 2);
    // Past due: in grace, then none (nothing was ever paid).
    assert_eq!(
        st_at(s(SubStatus::PastDue), at + grace - 1).seats[ACME].seats,
        2
    );
    assert_eq!(
        st_at(s(SubStatus::PastDue), at + grace).seats[ACME].seats,
        0
    );
    // Canceled at the period end: until it.
    let cpe = with(s(SubStatus::Active), |x| x.cancel_at_period_end = true);
    assert_eq!(st_at(cpe.clone(), P1E - 1).seats[ACME].seats, 2);
    assert_eq!(st_at(cpe, P1E).seats[ACME].seats, 0);
    // Paused: none from the pause, holders keep their places; resumed, they are back.
    let paused = st_at(s(SubStatus::Paused), at + 1);
    assert_eq!(paused.seats[ACME].seats, 0);
    assert_eq!(holders(&paused, ACME), line_of(&[("ann", true), ("bob", true)]));
    let mut fs = two_seats();
    fs.extend([
        s(SubStatus::Paused),
        give("cy", "c", at + 10),
        acme("sub_team", PRO, 2, SubStatus::Active, at + DAY),
    ]);
    let resumed = fold(&cat, &fs, at + 2 * DAY);
    assert_eq!(holders(&resumed, ACME), line_of(&[("ann", false), ("bob", false)]));
    assert_eq!(
        resumed.seats[ACME].refused[0].reason,
        SeatReason::NoSeats,
        "cy, while paused"
    );
    // Ended.
    assert_eq!(st_at(ended("sub_team", PRO, 2, at), at + 1).seats[ACME].seats, 0);
}

/// A member removed, then a seat given late (told after the removal): the fold seats
/// whoever a fact names, but a seat without membership lends nothing, and taking it frees
/// the place without asking for membership.
#[test]
fn a_seat_given_after_a_removal_lends_nothing_and_is_freed() {
    let cat = catalog();
    let mut fs = vec![
        team(1, T0 + 10),
        give("ann", "a", T0 + 20),
        take("ann", "removal", T0 + DAY),
        give("ann", "late", T0 + DAY + 1),
    ];
    let st = fold(&cat, &fs, T0 + 2 * DAY);
    assert!(seated(&st, ACME, "ann"), "the book holds ann");
    let ms = members(&["bob"]);
    assert!(
        !team_access(&st, "ann", &ms, T0 + 2 * DAY),
        "not a member: nothing lent"
    );
    assert_eq!(
        check_allocation(&st, "acme", "bob", &ms)
            .unwrap_err()
            .reason,
        SeatReason::NoSeatsLeft
    );
    fs.push(take("ann", "again", T0 + DAY + 2));
    fs.push(give("bob", "b", T0 + DAY + 3));
    let st = fold(&cat, &fs, T0 + 2 * DAY);
    assert!(seated(&st, ACME, "bob") && !seated(&st, ACME, "ann"));
}

/// Within one second seats are freed before they are given (documented on
/// `FactBody::rank`): one seat, taken from Ann and given to Bob in one second, is Bob's,
/// whichever of the two facts sorts first by key; and a holder released and given a seat
/// in one second has left the line first: the one behind it moves up, and it gets a seat
/// again only if one is free.
#[test]
fn within_one_second_seats_are_freed_first() {
    let cat = catalog();
    for (a_user, b_user) in [("ann", "zed"), ("zed", "ann")] {
        let fs = vec![
            team(1, T0 + 10),
            give(a_user, "1", T0 + 20),
            take(a_user, "2", T0 + 30),
            give(b_user, "3", T0 + 30),
        ];
        let st = fold(&cat, &fs, T0 + DAY);
        assert!(seated(&st, ACME, b_user), "{b_user} after {a_user}");
        assert!(st.seats[ACME].refused.is_empty());
    }
    let fs = vec![
        team(2, T0 + 10),
        give("ann", "1", T0 + 20),
        give("bob", "2", T0 + 21),
        team(1, T0 + 25),
        give("ann", "3", T0 + 30),
        take("ann", "4", T0 + 30),
    ];
    let st = fold(&cat, &fs, T0 + DAY);
    assert_eq!(holders(&st, ACME), line_of(&[("bob", false)]));
    assert_eq!(st.seats[ACME].refused[0].reason, SeatReason::NoSeatsLeft);
}

/// An organization whose quantity goes down to zero has zero seats, and says so to the
/// store (a seat count of 0, not none, which would leave the last count written); told
/// fact by fact to the incremental reducer, it ends as the whole fold.
#[test]
fn a_quantity_down_to_zero_is_zero_seats_however_it_is_folded() {
    let cat = catalog();
    let fs = vec![team(2, T0 + 10), team(0, T0 + DAY)];
    let whole = reduce(&cat, &fs, t(T0 + DAY));
    assert_eq!(whole.seats.get(ACME).map(|b| b.seats), Some(0));
    let rows = tollgate::billing::effects::subject_rows(&whole, &Default::default());
    let acme = rows.iter().find(|r| r.key == ACME).expect("acme's rows");
    assert_eq!(
        (acme.seat_count, acme.seats.as_deref()),
        (Some(0), Some(&[][..]))
    );
    // Each fact told as it happens: the second is one more step.
    let mut r = Reducer::new(&cat, t(T0));
    r.apply(fs[0].clone(), fs[0].at);
    assert_eq!(r.state().seats[ACME].seats, 2);
    assert_eq!(
        r.apply(fs[1].clone(), fs[1].at),
        tollgate::billing::Applied::Appended
    );
    assert_eq!(r.state().seats, whole.seats);
}

/// The seats the organization view counts are the fold's: members holding one, not the
/// holders the count dropped below, so a seat freed by a removal is given to the next
/// member, and a holder over the count is not given one "again" past the count.
#[test]
fn the_organization_rules_count_seats_as_the_fold_does() {
    let cat = catalog();
    let mut fs = vec![team(2, T0 + 10)];
    fs.extend(in_line(&["ann", "bob"]));
    fs.push(team(1, T0 + DAY));
    let st = fold(&cat, &fs, T0 + 2 * DAY);
    let now = t(T0 + 2 * DAY);
    let member = |id: &str, role| Member {
        user_id: id.into(),
        role,
        seat: seated(&st, ACME, id),
        email: None,
        joined_at: None,
    };
    let org = Org {
        id: "acme".into(),
        name: "Acme".into(),
        seat_count: st.seats[ACME].seats,
        members: vec![
            member("own", Role::Owner),
            member("ann", Role::Member),
            member("bob", Role::Member),
        ],
        invites: vec![],
        grants: st.entitlements_for(ACME).grants,
    };
    assert_eq!((org.seats(now).used, org.seats(now).available), (1, 0));
    assert_eq!(
        orgs::seat(&org, "own", "bob", true, now).unwrap_err().code,
        RefusalCode::NoSeat
    );
    assert_eq!(
        orgs::seat(&org, "own", "ann", true, now),
        Ok(orgs::SeatMove::Unchanged)
    );
    let v = orgs::view(&cat, &org, "ann", now).unwrap();
    assert_eq!((v.seat, v.seats.count), (true, 1));
}

/// An invite to someone already a member is refused whatever case their stored address
/// is in, as accepting compares addresses (Unicode lower case); otherwise the invite would
/// reserve a seat that no acceptance can ever take.
#[test]
fn an_invite_to_a_member_is_refused_in_any_case() {
    let now = t(T0);
    let org = Org {
        id: "acme".into(),
        name: "Acme".into(),
        seat_count: 2,
        members: vec![
            seatless("own", Role::Owner, Some("own@example.com")),
            seatless("eva", Role::Member, Some("ÉVA@Example.com")),
        ],
        invites: vec![],
        grants: vec![],
    };
    let r = orgs::invite(&org, "own", "éva@example.com", "member", true, now).unwrap_err();
    assert_eq!(r.code, RefusalCode::AlreadyMember, "{r}");
    assert_eq!(
        orgs::invite(&org, "own", "ÉVA@EXAMPLE.COM", "member", true, now)
            .unwrap_err()
            .code,
        RefusalCode::AlreadyMember
    );
    // And accepting an invite sent to that address is answered as from a member.
    let i = invite("éva@example.com", Role::Member, now);
    assert_eq!(
        orgs::accept(&org, &i, "eva", Some("ÉVA@example.com"), now)
            .unwrap_err()
            .code,
        RefusalCode::AlreadyMember
    );
}

/// An invite is accepted only into the organization it was sent from, as it is revoked
/// only there: read with another organization, it is no invite of it, and gives no
/// membership nor the seat it reserved there.
#[test]
fn an_invite_of_another_organization_is_not_accepted_into_this_one() {
    let now = t(T0);
    let org = |id: &str| Org {
        id: id.into(),
        name: id.into(),
        seat_count: 1,
        members: vec![seatless("own", Role::Owner, None)],
        invites: vec![],
        grants: vec![],
    };
    let i = invite("ann@example.com", Role::Admin, now);
    let a = orgs::accept(&org("acme"), &i, "ann", Some("ann@example.com"), now).unwrap();
    assert_eq!((a.organization_id.as_str(), a.seat), ("acme", true));
    assert_eq!(
        orgs::revoke(&org("globex"), "own", Some(&i), now)
            .unwrap_err()
            .code,
        RefusalCode::UnknownInvite
    );
    let r = orgs::accept(&org("globex"), &i, "ann", Some("ann@example.com"), now).unwrap_err();
    assert_eq!(r.code, RefusalCode::UnknownInvite, "{r}");
}

// ------------------------------------------------------------------ order independence

/// One generated story: subscription quantities and standings over time, and seat facts
/// for a few users, many in the same seconds.
#[derive(Clone, Debug)]
enum Step {
    Plan { sub: u8, quantity: u32, status: u8 },
    Give { user: u8, req: u8 },
    Take { user: u8, req: u8 },
}

fn step() -> impl Strategy<Value = (i64, Step)> {
    let at = 0i64..12;
    prop_oneof![
        (at.clone(), 0u8..2, 0u32..4, 0u8..6).prop_map(|(at, sub, quantity, status)| (
            at,
            Step::Plan {
                sub,
                quantity,
                status
            }
        )),
        (at.clone(), 0u8..5, 0u8..3).prop_map(|(at, user, req)| (at, Step::Give { user, req })),
        (at, 0u8..5, 0u8..3).prop_map(|(at, user, req)| (at, Step::Take { user, req })),
    ]
}

const USERS: [&str; 5] = ["ann", "bob", "cy", "dee", "eve"];

fn story_facts(steps: &[(i64, Step)]) -> Vec<Fact> {
    steps
        .iter()
        .map(|(at, s)| {
            let at = T0 + 100 + at * 3 * DAY / 2;
            match s {
                Step::Plan {
                    sub,
                    quantity,
                    status,
                } => {
                    let status = [
                        SubStatus::Active,
                        SubStatus::Trialing,
                        SubStatus::PastDue,
                        SubStatus::Paused,
                        SubStatus::Canceled,
                        SubStatus::Ended,
                    ][*status as usize];
                    let offer = if *sub == 0 { PRO } else { BUSINESS };
                    let f = snap(
                        &format!("sub_{sub}"),
                        "acme",
                        offer,
                        *quantity,
                        status,
                        at,
                        (T0, P2E),
                    );
                    with(f, |x| {
                        if status == SubStatus::Trialing {
                            x.trial_end = Some(t(P1E));
                        }
                    })
                }
                Step::Give { user, req } => give(USERS[*user as usize], &format!("g{req}"), at),
                Step::Take { user, req } => take(USERS[*user as usize], &format!("t{req}"), at),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any delivery order, with any fact told twice, folds to the same seats; and the
    /// incremental reducer, fed in that order, agrees with the whole fold.
    #[test]
    fn seats_do_not_depend_on_delivery_order(
        steps in prop::collection::vec(step(), 1..14),
        order in Just(()).prop_perturb(|_, mut rng| rng.next_u64()),
        twice in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let cat = catalog();
        let facts = story_facts(&steps);
        let now = t(T0 + 40 * DAY);
        let reference = reduce(&cat, &facts, now);
        let mut shuffled = facts.clone();
        // Told twice: the same fact again, and a seat's retry a few seconds later by
        // someone else (the set keeps the first telling).
        for (n, i) in twice.iter().enumerate() {
            let f = i.get(&facts).clone();
            let again = match &f.body {
                FactBody::SeatAssigned(_) | FactBody::SeatReleased(_) => {
                    Fact { at: Timestamp(f.at.0 + 1 + n as i64), ..f.clone() }.by("retry")
                }
                _ => f.clone(),
            };
            shuffled.push(f);
            shuffled.push(again);
        }
        // A Fisher-Yates shuffle from the generated number.
        let mut x = order | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let st = reduce(&cat, &shuffled, now);
        prop_assert_eq!(&st.seats, &reference.seats);
        let mut r = Reducer::new(&cat, now);
        for f in &shuffled {
            r.apply(f.clone(), now);
        }
        prop_assert_eq!(&r.state().seats, &reference.seats, "incremental after {:?}", shuffled.iter().map(|f| &f.key).collect::<Vec<_>>());
        // Told as it happens (each fact at its own time, most of them one more step).
        let mut live: Vec<Fact> = facts.clone();
        live.sort_by(tollgate::billing::facts::canonical_cmp);
        let mut r = Reducer::new(&cat, t(T0));
        for f in &live {
            r.apply(f.clone(), f.at);
        }
        let last = live.last().map_or(t(T0), |f| f.at);
        prop_assert_eq!(&r.state().seats, &reduce(&cat, &facts, last).seats, "told as it happens");
        // Every holder within the count holds a seat, the others none, and the count is
        // the sum of what the subscriptions give now.
        for b in reference.seats.values() {
            for (i, h) in b.holders.iter().enumerate() {
                prop_assert_eq!(h.over_capacity, i as u32 >= b.seats);
                prop_assert_eq!(b.holds_seat(&h.user), !h.over_capacity);
            }
            let mut users: Vec<_> = b.holders.iter().map(|h| h.user.clone()).collect();
            users.sort();
            users.dedup();
            prop_assert_eq!(users.len(), b.holders.len(), "a user is in the line once");
        }
    }

    /// A refusal in the fold says why truly: no seats at all when the count was zero, every
    /// seat taken (by holders in line, over the count ones included) otherwise.
    #[test]
    fn a_refusal_says_why(steps in prop::collection::vec(step(), 1..14)) {
        let cat = catalog();
        let st = reduce(&cat, &story_facts(&steps), t(T0 + 40 * DAY));
        let Some(book) = st.seats.get(ACME) else { return Ok(()) };
        for r in &book.refused {
            prop_assert!(r.at.is_some());
            match r.reason {
                SeatReason::NoSeats => prop_assert_eq!(r.seats, 0, "{:?}", r),
                SeatReason::NoSeatsLeft => prop_assert!(r.seats > 0 && r.used >= r.seats, "{:?}", r),
                other => prop_assert!(false, "{:?}: {:?}", other, r),
            }
        }
    }
}

/// An invite's address with an invisible character (a zero-width space, a bidirectional
/// override: it reads as another address in an admin's list) is refused, as an
/// organization's name is; a refusal quotes a long input cut short, not whole.
#[test]
fn invite_addresses_are_visible_and_refusals_quote_them_short() {
    for e in ["ann\u{200B}@example.test", "ann@exa\u{202E}mple.test", "\u{FEFF}ann@example.test", "ann@example.test\u{2060}"] {
        let r = tollgate::orgs::normalize_email(e).unwrap_err();
        assert_eq!(r.code, tollgate::orgs::RefusalCode::InvalidEmail, "{e:?}");
    }
    assert_eq!(tollgate::orgs::normalize_email(" Ann@Example.TEST ").unwrap(), "ann@example.test");
    let long = format!("{}@example.test", "a".repeat(300_000));
    let r = tollgate::orgs::normalize_email(&long).unwrap_err();
    assert!(r.message.chars().count() < 200, "{} characters", r.message.chars().count());
}
