//! What a paid period keeps, at its edges: after a failed seat increase's grace an
//! organization holds the seats the period's first payment paid for; a partial refund of a
//! renewal takes back only what that renewal paid for (not what an earlier period carried
//! over); a plan bought beside one ending at its period's end leaves the old one's credits
//! until its lots end; a trial's allowance, which nobody paid for, ends with the trial and
//! is not carried into the first paid period; a renewal told only by its paid invoice
//! starts the subscription's current period, and its monthly window, at the renewal.

#[path = "events/support.rs"]
mod support;

use serde_json::{json, Value};
use support::*;
use tollgate::billing::*;
use tollgate::credits::LotKind;

// ---------------------------------------------------------------------------------------
// Helpers: the sample events of tests/events, edited.
// ---------------------------------------------------------------------------------------

const ACME: &str = "org:acme";

/// `charge.refunded` (basil sample) of charge `ch` of payment intent `pi`: `refunded` of `amount`.
fn charge_refunded(evt: &str, at: i64, ch: &str, pi: &str, amount: i64, refunded: i64) -> String {
    edit("stripe/charge.refunded.invoice.basil.json", |v| {
        v["id"] = json!(evt);
        v["created"] = json!(at);
        let o = obj(v);
        o["id"] = json!(ch);
        o["payment_intent"] = json!(pi);
        o["amount"] = json!(amount);
        o["amount_refunded"] = json!(refunded);
        o["refunded"] = json!(refunded >= amount);
    })
}

/// A charge of `units` video seconds, as the store records one (no takes: the fold plans them).
fn usage(request_id: &str, subject: Subject, units: u64, at: tollgate::time::Timestamp) -> Fact {
    let body = UsageFact {
        request_id: request_id.into(),
        subject,
        pool: "video_seconds".into(),
        units,
        model: None,
        quality: None,
        takes: None,
        overage_units: 0,
        overage_cost: 0,
        currency: String::new(),
    };
    Fact::usage(body, at)
}

fn lot_of<'a>(st: &'a BillingState, subject: &str, key_part: &str) -> &'a tollgate::credits::Lot {
    st.subject(subject)
        .unwrap()
        .wallet
        .lots
        .iter()
        .find(|l| l.key.contains(key_part))
        .unwrap_or_else(|| panic!("no lot like `{key_part}`"))
}

// ---------------------------------------------------------------------------------------
// 1. Seats of a failed quantity increase outlive the grace period.
// ---------------------------------------------------------------------------------------

/// An organization raises its seats from 1 to 10 mid-period, and the proration invoice
/// for the 9 more fails (past due). During the grace it has the 10; after it, while what
/// the period's first payment paid for still counts (the plan, to the period's end), the 1
/// seat that payment paid for, not the 10 nobody paid.
#[test]
fn a_failed_seat_increase_gives_no_unpaid_seats_after_the_grace() {
    let cat = catalog();
    let (fs, up) = failed_seat_increase(&cat);

    // During the grace: the 10 seats (documented).
    let st = fold(&cat, &fs, up + DAY);
    assert_eq!(st.seats[ACME].seats, 10, "grace: the increase's seats");
    // After the grace, before the period's end: the plan is still held (the `:paid` grant)...
    let after = up + 5 * DAY;
    let st = fold(&cat, &fs, after);
    assert!(has(&cat, &st, ACME, "team", "PROFESSIONAL", after), "the period's first payment paid for the plan");
    // ...but only with the one seat that payment paid for.
    assert_eq!(
        st.seats[ACME].seats, 1,
        "after the grace the organization holds the 1 seat paid for, not the 10 of a failed proration"
    );
}

// ---------------------------------------------------------------------------------------
// 2. A partial refund of a renewal takes back units an earlier invoice paid for.
// ---------------------------------------------------------------------------------------

/// Period 1 (invoice in_1, 1800 s) leaves 1200 s unused, carried into period 2 when its
/// renewal in_2 is paid (1200 + 1800). Half of in_2 refunded takes back half of what in_2
/// put in (900 s), nothing of the 1200 in_1 paid for (a refund of in_1 reaches them, through
/// the lot they were carried from). Balance 2100.
#[test]
fn a_partial_refund_of_a_renewal_leaves_the_units_carried_from_the_paid_period_before() {
    let cat = catalog();
    let mut fs = facts(
        &cat,
        &[
            "stripe/customer.subscription.created.basil.json",
            "stripe/invoice.paid.basil.json",
            "stripe/customer.subscription.updated.active.basil.json",
            "stripe/checkout.session.completed.subscription.json",
            "stripe/customer.subscription.updated.renewed.acacia.json",
            "stripe/invoice.paid.renewal.acacia.json",
        ],
    );
    fs.push(usage("req_600", Subject::user("u_123"), 600, t(T0 + 5 * DAY)));
    let st = fold(&cat, &fs, P1E + 2 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 3000, "1200 carried + 1800 of period 2");

    // Half of the renewal's charge (in_1PhRnp..., 2900) refunded.
    fs.extend(stripe_facts(
        &cat,
        &charge_refunded("evt_half_renewal", P1E + 3 * DAY, "ch_3PhRnpB7WZ01zgkWrenewch", "pi_3PhRnpB7WZ01zgkWrenewpi", 2900, 1450),
    ));
    let st = fold(&cat, &fs, P1E + 4 * DAY);
    let rollover = st.subject(USER).unwrap().wallet.lots.iter().find(|l| l.kind == LotKind::Rollover).unwrap().clone();
    assert_eq!(rollover.revoked, 0, "the rollover lot holds what in_1 paid for; in_1 was not refunded: {rollover:?}");
    assert_eq!(st.balance(USER, "video_seconds"), 1200 + 900, "half of in_2's 1800 goes, nothing of period 1's");
}

// ---------------------------------------------------------------------------------------
// 3. A new subscription expires a still-running one's credits.
// ---------------------------------------------------------------------------------------

/// A Studio Pro subscriber (7200 s, paid to P1E) turns auto-renew off and buys Studio
/// Basic beside it on day 10 (checkout sells a plan beside one ending at its period's end).
/// Pro's lot still holds its 7200 s until P1E, next to Basic's 1800: a subscription that
/// will end has not ended, and a lot expires at its own end.
#[test]
fn buying_a_plan_beside_one_canceled_at_its_period_end_keeps_the_old_periods_credits() {
    let cat = catalog();
    let cus = "cus_c";
    let user = "user:c";
    let mut fs = vec![link(cus, "c", T0)];
    // Studio Pro, paid for [T0, P1E).
    fs.extend(stripe_facts(&cat, &sub_updated("evt_a1", T0 + 10, "sub_a", cus, "price_pro_monthly", 1, "active", (T0, P1E), |_| {})));
    fs.extend(stripe_facts(
        &cat,
        &invoice_paid(
            "evt_a_in1",
            T0 + 11,
            "in_a1",
            "sub_a",
            cus,
            json!([line("sub_a", "price_pro_monthly", 7900, 1, T0, P1E, "il_a1", false)]),
            7900,
            "pi_a1",
        ),
    ));
    // Day 2: auto-renew off.
    fs.extend(stripe_facts(
        &cat,
        &sub_updated("evt_a2", T0 + 2 * DAY, "sub_a", cus, "price_pro_monthly", 1, "active", (T0, P1E), |o| {
            o["cancel_at_period_end"] = json!(true);
        }),
    ));
    // Day 10: Studio Basic, a new subscription.
    let b0 = T0 + 10 * DAY;
    fs.extend(stripe_facts(&cat, &sub_updated("evt_b1", b0, "sub_b", cus, "price_1PgafmB7WZ01zgkW6dKueIc5", 1, "active", (b0, P1E + 10 * DAY), |_| {})));
    fs.extend(stripe_facts(
        &cat,
        &invoice_paid(
            "evt_b_in1",
            b0 + 1,
            "in_b1",
            "sub_b",
            cus,
            json!([line("sub_b", "price_1PgafmB7WZ01zgkW6dKueIc5", 2900, 1, b0, P1E + 10 * DAY, "il_b1", false)]),
            2900,
            "pi_b1",
        ),
    ));
    let st = fold(&cat, &fs, b0 + DAY);
    assert!(has(&cat, &st, user, "studio", "pro", b0 + DAY), "Pro still runs until P1E");
    let pro = lot_of(&st, user, &format!("allowance:stripe:sub_a:{P1E}:video_seconds"));
    assert_eq!(pro.expired, 0, "the Pro period's lot ends at P1E, not when Basic is paid: {pro:?}");
    assert_eq!(st.balance(user, "video_seconds"), 7200 + 1800);
}

// ---------------------------------------------------------------------------------------
// 4. A trial's allowance ends with the trial.
// ---------------------------------------------------------------------------------------

/// Studio Pro with its 7-day trial: the subscription starts trialing and its first invoice
/// (`subscription_create`) is paid with $0 for `[T0, TE)`, which opens the period's 7200 s;
/// 1000 s are used during the trial. At TE the trial ends and the first paid invoice
/// (7900) opens 7200 s for `[TE, PE)`. The trial's 6200 unused seconds were paid by nobody:
/// they expire at TE and nothing of them is carried over, so the one payment buys one
/// period's 7200 s (a capped rollover would have carried 6200 more).
#[test]
fn a_trial_periods_allowance_does_not_roll_into_the_first_paid_period() {
    let cat = catalog();
    let (sub, cus, user) = ("sub_trial", "cus_trial", "user:trial");
    let te = T0 + 7 * DAY;
    let pe = te + 31 * DAY;
    // Stripe keeps `trial_start` and `trial_end` on the subscription after the trial.
    let trial = |o: &mut Value| {
        o["metadata"] = json!({"user_id": "trial"});
        o["trial_start"] = json!(T0);
        o["trial_end"] = json!(te);
    };
    let created = edit("stripe/customer.subscription.created.trialing.basil.json", |v| {
        v["id"] = json!("evt_trial_created");
        v["created"] = json!(T0 + 100);
        let o = obj(v);
        o["id"] = json!(sub);
        o["customer"] = json!(cus);
        o["items"]["data"][0]["subscription"] = json!(sub);
        trial(o);
    });
    let mut fs = stripe_facts(&cat, &created);
    // The trial's invoice: $0, paid, no payment behind it.
    let zero = edit("stripe/invoice.paid.basil.json", |v| {
        v["id"] = json!("evt_trial_in0");
        v["created"] = json!(T0 + 101);
        let o = obj(v);
        o["id"] = json!("in_trial_0");
        o["customer"] = json!(cus);
        o["billing_reason"] = json!("subscription_create");
        o["parent"]["subscription_details"]["subscription"] = json!(sub);
        o["lines"]["data"] = json!([line(sub, "price_pro_monthly", 0, 1, T0, te, "il_trial_0", false)]);
        for k in ["amount_due", "amount_paid", "subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax"] {
            o[k] = json!(0);
        }
        o["payments"]["data"] = json!([]);
    });
    fs.extend(stripe_facts(&cat, &zero));
    fs.push(usage("req_trial_1000", Subject::user("trial"), 1000, t(T0 + 3 * DAY)));
    // During the trial: the trial's allowance, as before.
    let st = fold(&cat, &fs, T0 + 4 * DAY);
    assert_eq!(st.balance(user, "video_seconds"), 7200 - 1000, "the trial's allowance is there to use");

    // TE: the trial ends, the first paid period starts and is paid.
    fs.extend(stripe_facts(&cat, &sub_updated("evt_trial_active", te + 30, sub, cus, "price_pro_monthly", 1, "active", (te, pe), trial)));
    fs.extend(stripe_facts(
        &cat,
        &invoice_paid(
            "evt_trial_in1",
            te + 60,
            "in_trial_1",
            sub,
            cus,
            json!([line(sub, "price_pro_monthly", 7900, 1, te, pe, "il_trial_1", false)]),
            7900,
            "pi_trial_1",
        ),
    ));
    let st = fold(&cat, &fs, te + DAY);
    let wallet = &st.subject(user).unwrap().wallet;
    let rolled: Vec<_> = wallet.lots.iter().filter(|l| l.kind == LotKind::Rollover).collect();
    assert!(rolled.is_empty(), "nothing of the trial is carried over: {rolled:?}");
    assert_eq!(st.balance(user, "video_seconds"), 7200, "one payment, one period's allowance");
    let paid = lot_of(&st, user, &format!("allowance:stripe:{sub}:{pe}:video_seconds"));
    assert_eq!((paid.granted, paid.remaining), (7200, 7200));
    let trial_lot = lot_of(&st, user, &format!("allowance:stripe:{sub}:{te}:video_seconds"));
    assert_eq!(
        (trial_lot.granted, trial_lot.used, trial_lot.expired, trial_lot.remaining, trial_lot.rolled_over),
        (7200, 1000, 6200, 0, false),
        "the trial's unused 6200 s end with the trial: {trial_lot:?}"
    );
}

// ---------------------------------------------------------------------------------------
// A renewal told by its paid invoice alone (the Razorpay AI app's Premium, billed on the 31st).
// ---------------------------------------------------------------------------------------

fn premium_fact(v: Value) -> Fact {
    serde_json::from_value(v).unwrap()
}

fn at(s: &str) -> tollgate::time::Timestamp {
    tollgate::time::Timestamp::parse(s).unwrap()
}

/// A Stripe snapshot of `stripe:sub_1` (Premium monthly) for `[ps, pe)`.
fn premium_snapshot(key: &str, told: &str, ps: &str, pe: &str) -> Fact {
    premium_fact(json!({"key": key, "provider": "stripe", "at": told, "type": "subscription", "id": "stripe:sub_1",
        "status": "active", "items": [{"offer": "PREMIUM_MONTHLY", "quantity": 1}], "period_start": ps,
        "period_end": pe, "started_at": "2026-01-31T00:00:00Z", "subject": "user:u1"}))
}

/// Stripe's `invoice.paid` of `stripe:sub_1` for `[ps, pe)`.
fn premium_invoice_paid(key: &str, told: &str, inv: &str, ps: &str, pe: &str) -> Fact {
    premium_fact(json!({"key": key, "provider": "stripe", "at": told, "type": "invoice_paid", "id": inv,
        "subscription": "stripe:sub_1", "items": [{"offer": "PREMIUM_MONTHLY", "quantity": 1}],
        "period_start": ps, "period_end": pe, "amount": 49900, "currency": "inr",
        "payment_refs": [format!("{inv}:pi")]}))
}

/// The first period Jan 31 -> Feb 28 is told by the subscription's snapshot and its
/// invoice; the renewal Feb 28 -> Mar 31 by the renewal's `invoice.paid` alone (Stripe
/// does not order deliveries: the renewal's `customer.subscription.updated` is late). The
/// paid invoice of the latest period starts the subscription's current period (the grant's
/// `period_start`, from which the `anchor = "subscription"` monthly limit counts, and the
/// store's `current_period_start`, the overage cap's window): on March 5th the window is
/// Feb 28 -> Mar 31, not one two-month window from Jan 31. An older invoice told later
/// never moves the period back, nor does a mid-period invoice (a plan change's, for the
/// rest of the period), and the renewal's snapshot, told before or after the invoice,
/// says the same.
#[test]
fn a_paid_invoice_of_the_latest_period_starts_the_subscriptions_current_period() {
    let c = shipped("razorpay-ai");
    let li = c.limit_index("monthly_ai_credits").unwrap();
    let first = vec![
        premium_snapshot("s1", "2026-01-31T00:00:00Z", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
        premium_invoice_paid("p1", "2026-01-31T00:00:01Z", "stripe:in_1", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
    ];
    let renewal = premium_invoice_paid("p2", "2026-02-28T01:00:00Z", "stripe:in_2", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z");
    let now = at("2026-03-05T00:00:00Z");
    let period = |facts: &[Fact]| {
        let st = reduce(&c, facts, now);
        let ents = st.entitlements_for("user:u1");
        let g = ents.grants.iter().find(|g| g.product == "premium").expect("the renewal was paid: Premium holds").clone();
        let w = tollgate::meter::limit_window(&c, &ents, li, now);
        let s = st.subscriptions.get("stripe:sub_1").expect("the subscription").clone();
        (g.valid_to, g.period_start, (w.start, w.resets_at), (s.period_start, s.period_end))
    };
    let (feb28, mar31) = (at("2026-02-28T00:00:00Z"), at("2026-03-31T00:00:00Z"));
    let expected = (Some(mar31), Some(feb28), (feb28, Some(mar31)), (Some(feb28), Some(mar31)));

    let mut facts = first.clone();
    facts.push(renewal.clone());
    assert_eq!(period(&facts), expected, "the renewal's paid invoice starts the current period on Feb 28");
    facts.reverse();
    assert_eq!(period(&facts), expected, "in any order");

    // The first period's invoice told again later (another telling, a later `at`) does not move it back.
    let mut late_old = facts.clone();
    late_old.push(premium_invoice_paid("p1-late", "2026-03-01T00:00:00Z", "stripe:in_1", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"));
    assert_eq!(period(&late_old), expected, "an older period's invoice told late never moves the period back");

    // A plan change's invoice for the rest of the period (its lines start at the change)
    // does not start a new period.
    let mut change = facts.clone();
    change.push(premium_invoice_paid("p3", "2026-03-03T00:00:00Z", "stripe:in_3", "2026-03-03T00:00:00Z", "2026-03-31T00:00:00Z"));
    assert_eq!(period(&change), expected, "a mid-period invoice keeps the period's start");

    // The renewal's own snapshot agrees, told before or after the invoice.
    for told in ["2026-02-28T00:00:05Z", "2026-02-28T02:00:00Z"] {
        let mut with_snapshot = facts.clone();
        with_snapshot.push(premium_snapshot("s2", told, "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"));
        assert_eq!(period(&with_snapshot), expected, "the renewal's snapshot told at {told}");
    }
}
