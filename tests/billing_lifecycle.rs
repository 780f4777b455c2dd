//! The reducer's rules, one scenario each, on the sample events: attribution,
//! duplicates, renewal and rollover, cancellation, deletion, past due with
//! grace, re-subscription, trials, refunds, disputes, bundles, Razorpay's
//! lifecycle, and the incremental reducer.

#[path = "events/support.rs"]
mod support;

use serde_json::{json, Value};
use support::*;
use tollgate::billing::*;
use tollgate::model::Status;
use tollgate::{Reason, Timestamp};

fn with(paths: &[&'static str], extra: &[&'static str]) -> Vec<&'static str> {
    paths.iter().chain(extra.iter()).copied().collect()
}

fn usage(subject: &str, id: &str, pool: &str, units: u64, at: i64) -> Fact {
    Fact::usage(
        UsageFact {
            request_id: id.into(),
            subject: Subject::parse(subject).unwrap(),
            pool: pool.into(),
            units,
            model: Some("standard".into()),
            quality: Some("standard".into()),
            takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
        },
        t(at),
    )
}

/// Every order of `facts` (all of them for up to 5 facts, else rotations and reversals).
fn orders(facts: &[Fact]) -> Vec<Vec<Fact>> {
    fn perms(v: Vec<Fact>) -> Vec<Vec<Fact>> {
        if v.len() <= 1 {
            return vec![v];
        }
        let mut out = Vec::new();
        for i in 0..v.len() {
            let mut rest = v.clone();
            let x = rest.remove(i);
            for mut p in perms(rest) {
                p.insert(0, x.clone());
                out.push(p);
            }
        }
        out
    }
    if facts.len() <= 5 {
        return perms(facts.to_vec());
    }
    let mut out = Vec::new();
    for k in 0..facts.len() {
        let mut v = facts.to_vec();
        v.rotate_left(k);
        out.push(v.clone());
        v.reverse();
        out.push(v);
    }
    out
}

#[test]
fn first_period_grants_access_and_the_allowance_in_any_order() {
    let cat = catalog();
    let facts = facts(&cat, FIRST_PERIOD);
    let st = fold(&cat, &facts, T0 + 10 * DAY);
    let d = access(&cat, &st, USER, "studio", "basic", T0 + 10 * DAY);
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::Active);
    assert_eq!(d.grant.as_deref(), Some("stripe:sub_1Pgc6rB7WZ01zgkWNy0Cn5nw:studio"));
    assert_eq!(d.holds_until, Some(t(P1E)));
    assert!(!has(&cat, &st, USER, "studio", "pro", T0 + DAY));
    assert!(!has(&cat, &st, USER, "studio", "basic", P1E + 1), "nothing past the paid period");
    assert_eq!(st.balance(USER, "video_seconds"), 1800, "the period's allowance");
    assert_eq!(st.balance(USER, "free_drafts"), 2, "the Razorpay AI app's free drafts");
    assert_eq!(st.customers.get(CUS), Some(&Subject::user("u_123")));
    assert!(st.pending.is_empty());
    assert_eq!(st.subscriptions[SUB].status, SubStatus::Active);
    for order in orders(&facts) {
        assert_eq!(reduce(&cat, &order, t(T0 + 10 * DAY)), st);
    }
}

#[test]
fn events_before_their_attribution_wait_and_then_apply() {
    let cat = catalog();
    let all = facts(&cat, FIRST_PERIOD);
    let (checkout, rest): (Vec<Fact>, Vec<Fact>) =
        all.iter().cloned().partition(|f| matches!(f.body, FactBody::Purchase(_)));
    let st = fold(&cat, &rest, T0 + DAY);
    assert_eq!(st.pending.len(), 3, "two snapshots and an invoice wait: {:?}", st.pending);
    assert!(st
        .pending
        .iter()
        .all(|p| p.waiting_for.contains(&SUB.to_string()) && p.waiting_for.contains(&CUS.to_string())));
    assert!(st.subjects.is_empty());
    assert_eq!(st.facts.pending, 3);
    // The checkout arrives last: everything applies, as if it had come first.
    let mut r = Reducer::from_facts(&cat, &rest, t(T0 + DAY));
    assert_eq!(r.apply(checkout[0].clone(), t(T0 + DAY)), Applied::Replayed);
    assert!(r.state().pending.is_empty());
    assert_eq!(r.state(), &fold(&cat, &all, T0 + DAY));
    // The app's own customer link attributes them too.
    let mut linked = rest.clone();
    linked.push(Fact::customer_link(Provider::Stripe, "cus_QXg1o8vcGmoR32", Subject::user("u_123"), t(T0 + 50 * DAY)));
    let st = fold(&cat, &linked, T0 + DAY);
    assert!(st.pending.is_empty());
    assert!(has(&cat, &st, USER, "studio", "basic", T0 + DAY));
}

#[test]
fn duplicates_and_two_event_ids_for_one_change_count_once() {
    let cat = catalog();
    let base = facts(&cat, FIRST_PERIOD);
    let st = fold(&cat, &base, T0 + DAY);
    let mut dup = base.clone();
    dup.extend(base.iter().cloned());
    dup.extend(facts(&cat, &["stripe/invoice.payment_succeeded.acacia.json"]));
    let st2 = fold(&cat, &dup, T0 + DAY);
    assert_eq!(st2, st);
    assert_eq!(st2.facts.unique, 4);
    assert_eq!(st2.balance(USER, "video_seconds"), 1800, "one allowance, not two");
}

#[test]
fn renewal_carries_unused_allowance_capped_at_one_period() {
    let cat = catalog();
    let renew = with(
        FIRST_PERIOD,
        &["stripe/customer.subscription.updated.renewed.acacia.json", "stripe/invoice.paid.renewal.acacia.json"],
    );
    let mut fs = facts(&cat, &renew);
    fs.push(usage(USER, "req_1", "video_seconds", 600, T0 + 5 * DAY));
    let st = fold(&cat, &fs, P1E + 2 * DAY);
    // rollover = min(max(0, 1800 + 0 - 600), 1800) = 1200, plus the new 1800.
    assert_eq!(st.balance(USER, "video_seconds"), 3000);
    assert_eq!(access(&cat, &st, USER, "studio", "basic", P1E + DAY).holds_until, Some(t(P2E)));
    let w = &st.subject(USER).unwrap().wallet;
    let rollover = w.lots.iter().find(|l| l.kind == tollgate::credits::LotKind::Rollover).unwrap();
    assert_eq!((rollover.granted, rollover.valid_to), (1200, Some(t(P2E))));
    // Using more than the allowance: nothing carries over, the rest is overage.
    let mut fs2 = facts(&cat, &renew);
    fs2.push(usage(USER, "req_big", "video_seconds", 2500, T0 + 5 * DAY));
    let st = fold(&cat, &fs2, P1E + 2 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 1800);
    let over = &st.subject(USER).unwrap().overage;
    assert_eq!((over[0].units, over[0].cost), (700, Some(1890)), "700 s x 0.015 x 1.2 x 1.5 = 18.90 USD");
    // Without a renewal the allowance simply ends with the period.
    let st = fold(&cat, &facts(&cat, FIRST_PERIOD), P1E + DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 0);
}

#[test]
fn cancellation_keeps_access_until_the_period_ends() {
    let cat = catalog();
    let paths = with(
        FIRST_PERIOD,
        &[
            "stripe/customer.subscription.updated.renewed.acacia.json",
            "stripe/invoice.paid.renewal.acacia.json",
            "stripe/customer.subscription.updated.cancel_at_period_end.basil.json",
        ],
    );
    let st = fold(&cat, &facts(&cat, &paths), P1E + 11 * DAY);
    let d = access(&cat, &st, USER, "studio", "basic", P1E + 11 * DAY);
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::CanceledUntilPeriodEnd);
    assert_eq!(d.holds_until, Some(t(P2E)));
    assert!(!has(&cat, &st, USER, "studio", "basic", P2E));
    // The deletion at the period end changes nothing before it.
    let st2 =
        fold(&cat, &facts(&cat, &with(&paths, &["stripe/customer.subscription.deleted.basil.json"])), P1E + 11 * DAY);
    assert!(has(&cat, &st2, USER, "studio", "basic", P2E - 1));
    assert!(!has(&cat, &st2, USER, "studio", "basic", P2E));
    assert_eq!(st2.subscriptions[SUB].status, SubStatus::Ended);
}

#[test]
fn a_late_update_never_revives_a_deleted_subscription() {
    let cat = catalog();
    let mut fs = facts(
        &cat,
        &with(
            FIRST_PERIOD,
            &[
                "stripe/customer.subscription.updated.renewed.acacia.json",
                "stripe/customer.subscription.deleted.basil.json",
            ],
        ),
    );
    let late = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        v["id"] = json!("evt_late_update");
        v["created"] = json!(P2E + 100);
        obj(v)["items"]["data"][0]["current_period_start"] = json!(P2E);
        obj(v)["items"]["data"][0]["current_period_end"] = json!(P3E);
    });
    fs.extend(stripe_facts(&cat, &late));
    let st = fold(&cat, &fs, P2E + 200);
    assert_eq!(st.subscriptions[SUB].status, SubStatus::Ended);
    assert!(!has(&cat, &st, USER, "studio", "basic", P2E + 200));
    assert!(st.facts.stale >= 1);
    for order in orders(&fs) {
        assert_eq!(reduce(&cat, &order, t(P2E + 200)), st);
    }
}

#[test]
fn past_due_keeps_access_for_the_grace_period_and_a_payment_restores_it() {
    let cat = catalog();
    let paths = with(
        FIRST_PERIOD,
        &[
            "stripe/customer.subscription.updated.renewed.acacia.json",
            "stripe/invoice.paid.renewal.acacia.json",
            "stripe/invoice.payment_failed.basil.json",
            "stripe/customer.subscription.updated.past_due.basil.json",
        ],
    );
    let fs = facts(&cat, &paths);
    let st = fold(&cat, &fs, P2E + DAY);
    let g = &st.subject(USER).unwrap().grants[0];
    assert_eq!(g.status, Status::PastDue);
    assert_eq!(g.past_due_since, Some(t(P2E + 3600)), "grace runs from the first failure");
    let d = access(&cat, &st, USER, "studio", "basic", P2E + 2 * DAY);
    assert_eq!((d.allowed, d.reason), (true, Reason::GracePeriod));
    assert_eq!(d.holds_until, Some(t(P2E + 3600 + 3 * DAY)));
    let d = access(&cat, &st, USER, "studio", "basic", P2E + 3600 + 3 * DAY);
    assert!(!d.allowed);
    // The retry succeeds: active again, through the new period.
    let paid = edit("stripe/invoice.paid.renewal.acacia.json", |v| {
        v["id"] = json!("evt_retry_paid");
        v["created"] = json!(P2E + 2 * DAY);
        let o = obj(v);
        o["id"] = json!("in_1Pgd2kB7WZ01zgkWq0Rr2x9A");
        o["lines"]["data"][0]["period"] = json!({"start": P2E, "end": P3E});
    });
    let mut fs2 = fs.clone();
    fs2.extend(stripe_facts(&cat, &paid));
    let st = fold(&cat, &fs2, P2E + 2 * DAY);
    let d = access(&cat, &st, USER, "studio", "basic", P2E + 10 * DAY);
    assert_eq!((d.allowed, d.reason, d.holds_until), (true, Reason::Active, Some(t(P3E))));
    assert_eq!(st.subscriptions[SUB].past_due_since, None);
}

/// A Stripe subscription whose payment collection is paused (`pause_collection` set,
/// status still `active`: the customer's "pause my subscription") is paused from the
/// moment the event telling it was created: its grants end there and say since when,
/// and a denial says `paused`. The update that clears `pause_collection` (Stripe sends
/// one when it resumes, also at `resumes_at`) resumes it.
#[test]
fn a_paused_collection_pauses_the_subscription_until_it_resumes() {
    let cat = catalog();
    let pause_at = T0 + 10 * DAY;
    let resume_at = T0 + 15 * DAY;
    let snapshot = |id: &str, at: i64, pause: serde_json::Value| {
        edit("stripe/customer.subscription.updated.active.basil.json", |v| {
            v["id"] = json!(id);
            v["created"] = json!(at);
            obj(v)["pause_collection"] = pause;
        })
    };
    let mut fs = facts(&cat, FIRST_PERIOD);
    let pause = json!({"behavior": "void", "resumes_at": resume_at});
    fs.extend(stripe_facts(&cat, &snapshot("evt_pause_collection", pause_at, pause)));
    let st = fold(&cat, &fs, pause_at + DAY);
    let grants = &st.subject(USER).unwrap().grants;
    assert!(!grants.is_empty());
    assert!(
        grants.iter().all(|g| g.paused_since == Some(t(pause_at)) && g.valid_to == Some(t(pause_at))),
        "{grants:?}"
    );
    assert!(has(&cat, &st, USER, "studio", "basic", pause_at - 1), "access up to the pause");
    let d = access(&cat, &st, USER, "studio", "basic", pause_at + DAY);
    assert_eq!((d.allowed, d.reason), (false, Reason::Paused));
    assert_eq!(st.subscriptions[SUB].status, SubStatus::Paused);
    for order in orders(&fs) {
        assert_eq!(reduce(&cat, &order, t(pause_at + DAY)), st);
    }
    // Resumed: collection no longer paused, the plan again, nothing says paused.
    fs.extend(stripe_facts(&cat, &snapshot("evt_resume_collection", resume_at, json!(null))));
    let st = fold(&cat, &fs, resume_at + DAY);
    let d = access(&cat, &st, USER, "studio", "basic", resume_at + DAY);
    assert_eq!((d.allowed, d.reason, d.holds_until), (true, Reason::Active, Some(t(P1E))));
    assert!(st.subject(USER).unwrap().grants.iter().all(|g| g.paused_since.is_none()));
    assert_eq!(st.subscriptions[SUB].status, SubStatus::Active);
}

#[test]
fn deletion_ends_access_at_once() {
    let cat = catalog();
    let mut fs = facts(&cat, FIRST_PERIOD);
    let del = edit("stripe/customer.subscription.deleted.basil.json", |v| {
        v["created"] = json!(T0 + 10 * DAY);
        let o = obj(v);
        o["ended_at"] = json!(T0 + 10 * DAY);
        o["cancel_at_period_end"] = json!(false);
        o["items"]["data"][0]["current_period_start"] = json!(T0);
        o["items"]["data"][0]["current_period_end"] = json!(P1E);
    });
    fs.extend(stripe_facts(&cat, &del));
    let st = fold(&cat, &fs, T0 + 11 * DAY);
    assert!(has(&cat, &st, USER, "studio", "basic", T0 + 10 * DAY - 1));
    assert!(!has(&cat, &st, USER, "studio", "basic", T0 + 10 * DAY));
}

#[test]
fn resubscribing_never_loses_days() {
    let cat = catalog();
    let mut fs = facts(&cat, FIRST_PERIOD);
    // Canceled at the period end (P1E)...
    fs.extend(stripe_facts(
        &cat,
        &edit("stripe/customer.subscription.updated.active.basil.json", |v| {
            v["id"] = json!("evt_cancel_1");
            v["created"] = json!(T0 + 5 * DAY);
            obj(v)["cancel_at_period_end"] = json!(true);
        }),
    ));
    // ...then a new subscription on day 20, ending 20 days after the old one.
    let new_sub = |created: i64, end: i64, status: &str, evt: &str| {
        edit("stripe/customer.subscription.updated.active.basil.json", |v| {
            v["id"] = json!(evt);
            v["created"] = json!(created);
            let o = obj(v);
            o["id"] = json!("sub_again");
            o["status"] = json!(status);
            o["metadata"] = json!({"user_id": "u_123"});
            o["items"]["data"][0]["current_period_start"] = json!(T0 + 20 * DAY);
            o["items"]["data"][0]["current_period_end"] = json!(end);
        })
    };
    let mut a = fs.clone();
    a.extend(stripe_facts(&cat, &new_sub(T0 + 20 * DAY, P1E + 20 * DAY, "active", "evt_new_1")));
    let st = fold(&cat, &a, T0 + 21 * DAY);
    assert_eq!(access(&cat, &st, USER, "studio", "basic", P1E + 10 * DAY).holds_until, Some(t(P1E + 20 * DAY)));
    assert_eq!(st.subject(USER).unwrap().grants.len(), 2);
    // The new one is deleted at once: the old one still runs to its end.
    let mut b = a.clone();
    let del = edit("stripe/customer.subscription.deleted.basil.json", |v| {
        v["created"] = json!(T0 + 21 * DAY);
        let o = obj(v);
        o["id"] = json!("sub_again");
        o["ended_at"] = json!(T0 + 21 * DAY);
        o["metadata"] = json!({"user_id": "u_123"});
    });
    b.extend(stripe_facts(&cat, &del));
    let st = fold(&cat, &b, T0 + 22 * DAY);
    let d = access(&cat, &st, USER, "studio", "basic", T0 + 25 * DAY);
    assert_eq!((d.allowed, d.holds_until), (true, Some(t(P1E))));
}

#[test]
fn trials_are_trial_grants_until_the_trial_ends() {
    let cat = catalog();
    let st = fold(&cat, &facts(&cat, &["stripe/customer.subscription.created.trialing.basil.json"]), T0 + 3 * DAY);
    let d = access(&cat, &st, "user:u_789", "studio", "pro", T0 + 3 * DAY);
    assert_eq!((d.allowed, d.reason, d.holds_until), (true, Reason::Trial, Some(t(T0 + 7 * DAY))));
    assert_eq!(st.subject("user:u_789").unwrap().grants[0].status, Status::Trial);
    assert!(!has(&cat, &st, "user:u_789", "studio", "pro", T0 + 7 * DAY));
    // A checkout of an offer with trial days that charged nothing starts a trial on its own.
    let co = edit("stripe/checkout.session.completed.subscription.json", |v| {
        let o = obj(v);
        o["payment_status"] = json!("no_payment_required");
        o["amount_total"] = json!(0);
        o["metadata"]["offer_key"] = json!("STUDIO_PRO_MONTHLY");
    });
    let st = fold(&cat, &stripe_facts(&cat, &co), T0 + DAY);
    let d = access(&cat, &st, USER, "studio", "pro", T0 + DAY);
    assert_eq!((d.reason, d.holds_until), (Reason::Trial, Some(t(T0 + 4 + 7 * DAY))));
}

#[test]
fn a_checkout_alone_grants_until_a_snapshot_says_more() {
    let cat = catalog();
    let co = facts(&cat, &["stripe/checkout.session.completed.subscription.json"]);
    let st = fold(&cat, &co, T0 + DAY);
    let ts = |s: &str| Timestamp::parse(s).unwrap();
    assert_eq!(access(&cat, &st, USER, "studio", "basic", T0 + DAY).holds_until, Some(ts("2026-04-01T00:00:04Z")));
    assert_eq!(st.subscriptions[SUB].estimated_until, Some(ts("2026-04-01T00:00:04Z")));
    let mut more = co.clone();
    more.extend(facts(&cat, &["stripe/customer.subscription.updated.active.basil.json"]));
    let st = fold(&cat, &more, T0 + DAY);
    assert_eq!(access(&cat, &st, USER, "studio", "basic", T0 + DAY).holds_until, Some(t(P1E)));
}

#[test]
fn refunds_take_back_what_the_payment_granted_never_below_zero() {
    let cat = catalog();
    let buy = facts(&cat, &["stripe/checkout.session.completed.payment.json"]);
    let st = fold(&cat, &buy, T0 + 6 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 1800);
    // Half refunded: half the seconds go.
    let mut half = buy.clone();
    half.extend(facts(&cat, &["stripe/charge.refunded.partial.json"]));
    let st = fold(&cat, &half, T0 + 6 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 900, "floor(1800 x 950 / 1900)");
    // Then fully: the rest goes too, and only once.
    let mut full = half.clone();
    full.extend(facts(&cat, &["stripe/charge.refunded.json"]));
    let st = fold(&cat, &full, T0 + 8 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    let lot = &st
        .subject(USER)
        .unwrap()
        .wallet
        .lots
        .iter()
        .find(|l| l.kind == tollgate::credits::LotKind::Purchase)
        .unwrap()
        .clone();
    assert_eq!(lot.revoked, 1800);
    // Seconds already spent cannot be taken back: the balance stops at zero.
    let mut spent = buy.clone();
    spent.push(usage(USER, "req_spent", "video_seconds", 1500, T0 + 5 * DAY + 3600));
    spent.extend(facts(&cat, &["stripe/charge.refunded.json"]));
    let st = fold(&cat, &spent, T0 + 8 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    let p = &st.payments["stripe:cs_test_b1Tok00000000000000000000000000000000000000000000000000000"];
    assert_eq!(p.reversed, 1900);
    // One-time access is revoked by its refund.
    let life = edit("stripe/checkout.session.completed.payment.json", |v| {
        obj(v)["metadata"] = json!({"offer_key": "WRITING_LIFETIME"});
        obj(v).as_object_mut().unwrap().remove("line_items");
    });
    let mut fs = stripe_facts(&cat, &life);
    let st = fold(&cat, &fs, T0 + 6 * DAY);
    let d = access(&cat, &st, USER, "writing", "basic", T0 + 400 * DAY);
    assert_eq!((d.allowed, d.holds_until), (true, None), "bought for good");
    fs.extend(facts(&cat, &["stripe/charge.refunded.json"]));
    let st = fold(&cat, &fs, T0 + 8 * DAY);
    assert!(!has(&cat, &st, USER, "writing", "basic", T0 + 7 * DAY));
    assert!(has(&cat, &st, USER, "writing", "basic", T0 + 6 * DAY));
}

#[test]
fn a_dispute_revokes_the_disputed_period() {
    let cat = catalog();
    let mut fs = facts(&cat, FIRST_PERIOD);
    fs.push(usage(USER, "req_a", "video_seconds", 300, T0 + DAY));
    fs.extend(facts(&cat, &["stripe/charge.dispute.created.json"]));
    let st = fold(&cat, &fs, P1E - DAY + 10);
    assert!(has(&cat, &st, USER, "studio", "basic", P1E - DAY - 1));
    assert!(!has(&cat, &st, USER, "studio", "basic", P1E - DAY));
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    assert_eq!(st.subscriptions[SUB].revoked.as_ref().unwrap().by, "stripe:dp_1Pgc71B7WZ01zgkWMevJiAUx");
}

#[test]
fn a_refund_before_its_payment_waits() {
    let cat = catalog();
    let refund = facts(&cat, &["stripe/charge.refunded.json"]);
    let st = fold(&cat, &refund, T0 + 8 * DAY);
    assert_eq!(st.pending.len(), 1);
    assert!(st.pending[0].waiting_for.contains(&"stripe:pi_1PgafyB7WZ01zgkWSjxsAJo3".to_string()));
    let mut both = refund.clone();
    both.extend(facts(&cat, &["stripe/checkout.session.completed.payment.json"]));
    let st = fold(&cat, &both, T0 + 8 * DAY);
    assert!(st.pending.is_empty());
    assert_eq!(st.balance(USER, "video_seconds"), 0);
}

#[test]
fn bundles_grant_the_chosen_products() {
    let cat = catalog();
    let st = fold(&cat, &facts(&cat, &["stripe/checkout.session.completed.bundle.json"]), T0 + DAY);
    for (p, ok) in [("video", true), ("writing", true), ("music", false)] {
        assert_eq!(has(&cat, &st, "user:u_bundle", p, "pro", T0 + DAY), ok, "{p}");
    }
    // A later snapshot without metadata keeps the choice made at checkout.
    let snap = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
        v["created"] = json!(T0 + 400);
        let o = obj(v);
        o["id"] = json!("sub_1PgBunB7WZ01zgkWbundle00");
        o["customer"] = json!("cus_Bundle00000001");
        o["items"]["data"][0]["price"]["id"] = json!("price_bundle_two");
    });
    let mut fs = facts(&cat, &["stripe/checkout.session.completed.bundle.json"]);
    fs.extend(stripe_facts(&cat, &snap));
    let st = fold(&cat, &fs, T0 + DAY);
    assert!(has(&cat, &st, "user:u_bundle", "writing", "pro", T0 + 20 * DAY));
    assert!(!has(&cat, &st, "user:u_bundle", "music", "pro", T0 + 20 * DAY));
}

#[test]
fn async_payment_grants_only_on_success() {
    let cat = catalog();
    let st = fold(&cat, &facts(&cat, &["stripe/checkout.session.completed.unpaid.json"]), T0 + 7 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    let st = fold(
        &cat,
        &facts(
            &cat,
            &["stripe/checkout.session.completed.unpaid.json", "stripe/checkout.session.async_payment_succeeded.json"],
        ),
        T0 + 9 * DAY,
    );
    assert_eq!(st.balance(USER, "video_seconds"), 7200);
    let st = fold(&cat, &facts(&cat, &["stripe/checkout.session.async_payment_failed.json"]), T0 + 9 * DAY);
    assert_eq!(st.balance(USER, "video_seconds"), 0);
}

const RZP: &str = "user:u_456";

#[test]
fn razorpay_credits_refill_on_charges_not_on_activation() {
    let cat = catalog();
    let st = fold(&cat, &facts(&cat, &["razorpay/subscription.activated.json"]), T0 + DAY);
    assert!(has(&cat, &st, RZP, "studio", "pro", T0 + DAY));
    assert_eq!(st.balance(RZP, "ai_credits"), 0, "Razorpay AI app: no refill on activation");
    let mut fs = facts(
        &cat,
        &[
            "razorpay/subscription.activated.json",
            "razorpay/subscription.charged.json",
            "razorpay/payment.captured.json",
        ],
    );
    fs.push(usage(RZP, "gen_1", "ai_credits", 500, T0 + 3 * DAY));
    let st = fold(&cat, &fs, T0 + 4 * DAY);
    assert_eq!(st.balance(RZP, "ai_credits"), 2000, "2000 refilled + 500 topped up - 500 used");
    assert_eq!(st.balance(RZP, "video_seconds"), 7200);
    fs.extend(facts(&cat, &["razorpay/subscription.charged.renewal.json"]));
    let st = fold(&cat, &fs, P1E + DAY);
    // ai_credits reset to the monthly amount (unused allowance does not carry), the
    // top-up stays; video seconds carry over, capped at one allowance.
    assert_eq!(st.balance(RZP, "ai_credits"), 2500);
    assert_eq!(st.balance(RZP, "video_seconds"), 14400);
    assert_eq!(access(&cat, &st, RZP, "studio", "pro", P1E + DAY).holds_until, Some(t(P2E)));
    // The top-up refunded: its credits go.
    fs.extend(facts(&cat, &["razorpay/refund.processed.json"]));
    let st = fold(&cat, &fs, P1E + DAY);
    assert_eq!(st.balance(RZP, "ai_credits"), 2000);
}

#[test]
fn razorpay_cancellation_halt_and_dispute() {
    let cat = catalog();
    let base = ["razorpay/subscription.activated.json", "razorpay/subscription.charged.json"];
    let st = fold(&cat, &facts(&cat, &with(&base, &["razorpay/subscription.cancelled.json"])), T0 + 13 * DAY);
    let d = access(&cat, &st, RZP, "studio", "pro", T0 + 13 * DAY);
    assert_eq!((d.allowed, d.reason, d.holds_until), (true, Reason::CanceledUntilPeriodEnd, Some(t(P1E))));
    // A cancelled subscription stays cancelled whatever comes later.
    let st2 = fold(
        &cat,
        &facts(
            &cat,
            &with(&base, &["razorpay/subscription.cancelled.json", "razorpay/subscription.charged.renewal.json"]),
        ),
        P1E + DAY,
    );
    assert_eq!(st2.subscriptions["razorpay:sub_00000000000001"].status, SubStatus::Canceled);
    // Halted after failed retries: grace from the first failure (pending).
    let st = fold(
        &cat,
        &facts(&cat, &with(&base, &["razorpay/subscription.pending.json", "razorpay/subscription.halted.json"])),
        P1E + 4 * DAY,
    );
    let g = &st.subject(RZP).unwrap().grants[0];
    assert_eq!((g.status, g.past_due_since), (Status::PastDue, Some(t(P1E + 30))));
    assert!(has(&cat, &st, RZP, "studio", "pro", P1E + 2 * DAY));
    assert!(!has(&cat, &st, RZP, "studio", "pro", P1E + 30 + 3 * DAY));
    // A dispute of the first charge takes back that period.
    let st = fold(&cat, &facts(&cat, &with(&base, &["razorpay/payment.dispute.created.json"])), T0 + 21 * DAY);
    assert!(!has(&cat, &st, RZP, "studio", "pro", T0 + 20 * DAY));
    assert_eq!(st.balance(RZP, "ai_credits"), 0);
}

/// Razorpay charges a subscription's last cycle and completes it in the same second
/// (`subscription.charged` for [P1E, P2E] and `subscription.completed`, both created at
/// P1E + 20): the payment gives the period it paid for, access to P2E and the cycle's 2000
/// AI credits, in either order of the two events (folded whole, or one after the other by
/// the incremental reducer), whichever of the two snapshots of that second folds first
/// (their keys end in digests of their content), and also when the `charged` snapshot
/// itself already says `completed`. The completed event takes nothing the charge gave (a
/// store keeps the lots a fold writes, so a later fold must still give them). A charge for
/// a period that began after the subscription was cancelled still gives nothing.
#[test]
fn a_last_cycle_charged_as_the_subscription_completes_gives_its_period_in_either_order() {
    let cat = catalog();
    let sub = "razorpay:sub_00000000000001";
    let base = facts(&cat, &["razorpay/subscription.activated.json", "razorpay/subscription.charged.json"]);
    let charged = |status: &str| {
        rzp_facts(
            &cat,
            &edit("razorpay/subscription.charged.renewal.json", |v| {
                v["payload"]["subscription"]["entity"]["status"] = json!(status);
            }),
        )
    };
    let completed = rzp_facts(
        &cat,
        &edit("razorpay/subscription.completed.json", |v| {
            v["created_at"] = json!(P1E + 20);
            let s = &mut v["payload"]["subscription"]["entity"];
            s["current_start"] = json!(P1E);
            s["current_end"] = json!(P2E);
            s["ended_at"] = json!(null);
        }),
    );
    // The completed snapshot's key sorting before, then after, the charged one's.
    let keyed = |tail: &str| {
        let mut f = completed.clone();
        f[0].key = format!("razorpay:subscription:sub_00000000000001:{}:{tail}", P1E + 20);
        f
    };
    let now = P1E + 10 * DAY;
    for status in ["active", "completed"] {
        let last = charged(status);
        for completed in [keyed("0"), keyed("g")] {
            let mut states = Vec::new();
            for second in [[&last, &completed], [&completed, &last]] {
                let all: Vec<Fact> = base.iter().chain(second[0]).chain(second[1]).cloned().collect();
                let st = fold(&cat, &all, now);
                let mut r = Reducer::new(&cat, t(now));
                for f in &all {
                    r.apply(f.clone(), t(now));
                }
                assert_eq!(r.state(), &st, "{status}: one event after the other");
                states.push(st);
            }
            let key = &completed[0].key;
            assert_eq!(states[0], states[1], "{status}, {key}: charged then completed, completed then charged");
            let st = &states[0];
            assert_eq!(st.subscriptions[sub].status, SubStatus::Canceled);
            let d = access(&cat, st, RZP, "studio", "pro", now);
            assert_eq!((d.allowed, d.holds_until), (true, Some(t(P2E))), "{status}, {key}: the last cycle was paid");
            assert!(!has(&cat, st, RZP, "studio", "pro", P2E), "{status}, {key}: nothing past it");
            assert_eq!(st.balance(RZP, "ai_credits"), 2000, "{status}, {key}: the last cycle's allowance");
            // The charge folded alone gives the same lots: the completed event takes none away.
            let alone = fold(&cat, &base.iter().chain(&last).cloned().collect::<Vec<_>>(), now);
            assert_eq!(alone.subject(RZP).unwrap().wallet.lots, st.subject(RZP).unwrap().wallet.lots, "{status}, {key}");
        }
    }
    // Cancelled within the first period: the next cycle's charge gives no period.
    let late = facts(
        &cat,
        &[
            "razorpay/subscription.activated.json",
            "razorpay/subscription.charged.json",
            "razorpay/subscription.cancelled.json",
            "razorpay/subscription.charged.renewal.json",
        ],
    );
    let st = fold(&cat, &late, P1E + DAY);
    assert!(!has(&cat, &st, RZP, "studio", "pro", P1E + DAY));
    assert_eq!(st.balance(RZP, "ai_credits"), 0);
}

#[test]
fn razorpay_redeliveries_under_new_ids_change_nothing() {
    let cat = catalog();
    let raw = event("razorpay/subscription.charged.json");
    let a = parse_razorpay_event(&cat, &raw, Some("evt_a")).unwrap().into_facts();
    let b = parse_razorpay_event(&cat, &raw, Some("evt_b")).unwrap().into_facts();
    let one = fold(&cat, &a, T0 + DAY);
    let mut both = a.clone();
    both.extend(b);
    assert_eq!(fold(&cat, &both, T0 + DAY), one);
}

#[test]
fn organizations_get_grants_and_seats_from_quantity() {
    let cat = catalog();
    let st = fold(&cat, &facts(&cat, &["stripe/customer.subscription.updated.team.basil.json"]), T0 + DAY);
    assert!(has(&cat, &st, "org:acme", "team", "PROFESSIONAL", T0 + DAY));
    assert_eq!(st.seats["org:acme"].seats, 3);
    assert_eq!(st.subscriptions["stripe:sub_1PgTeaB7WZ01zgkWteamplan"].seats, 3);
    assert!(!st.subject("org:acme").unwrap().balances.contains_key("free_drafts"), "free amounts are for users");
}

#[test]
fn unknown_subjects_get_the_free_amounts_and_state_round_trips() {
    let cat = catalog();
    let mut fs = facts(
        &cat,
        &with(
            FIRST_PERIOD,
            &["stripe/checkout.session.completed.payment.json", "stripe/customer.subscription.updated.team.basil.json"],
        ),
    );
    fs.push(usage(USER, "r1", "free_drafts", 1, T0 + DAY));
    fs.push(usage(USER, "r2", "video_seconds", 5000, T0 + 6 * DAY));
    let st = fold(&cat, &fs, T0 + 7 * DAY);
    let e = st.entitlements_for("someone_new");
    assert_eq!(e.subject, "user:someone_new");
    assert!(e.grants.is_empty());
    assert_eq!(e.balances.get("free_drafts"), Some(&2));
    assert_eq!(st.balance(USER, "free_drafts"), 1);
    assert_eq!(st.entitlements_for("u_123"), st.entitlements_for(USER), "a bare id is a user");
    let text = serde_json::to_string_pretty(&st).unwrap();
    let back: BillingState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, st);
    back.check_invariants().unwrap();
    for key in [
        "\"as_of\"",
        "\"subjects\"",
        "\"subscriptions\"",
        "\"customers\"",
        "\"payments\"",
        "\"seats\"",
        "\"pending\"",
        "\"defaults\"",
    ] {
        assert!(text.contains(key), "{key}");
    }
}

#[test]
fn the_incremental_reducer_agrees_with_the_fold() {
    let cat = catalog();
    let mut fs = facts(
        &cat,
        &with(
            FIRST_PERIOD,
            &[
                "stripe/customer.subscription.updated.renewed.acacia.json",
                "stripe/invoice.paid.renewal.acacia.json",
                "stripe/checkout.session.completed.payment.json",
                "stripe/charge.refunded.partial.json",
                "stripe/invoice.payment_failed.basil.json",
                "stripe/customer.subscription.updated.past_due.basil.json",
                "razorpay/subscription.activated.json",
                "razorpay/subscription.charged.json",
            ],
        ),
    );
    fs.push(usage(USER, "u1", "video_seconds", 100, T0 + 2 * DAY));
    fs.sort_by(canonical_cmp);
    let mut r = Reducer::new(&cat, t(T0));
    let mut appended = 0;
    for (i, f) in fs.iter().enumerate() {
        let now = f.at.0.max(T0) + 60;
        if r.apply(f.clone(), t(now)) == Applied::Appended {
            appended += 1;
        }
        assert_eq!(r.state(), &reduce(&cat, &fs[..=i], t(now)), "after {}", f.key);
    }
    assert!(appended >= 5, "facts in time order mostly append ({appended})");
    assert_eq!(r.apply(fs[3].clone(), t(P3E)), Applied::Duplicate);
    assert_eq!(r.state(), &reduce(&cat, &fs, t(P3E)));
}

/// `st` with its fact count set to `base`'s (the facts a comparison leaves out).
fn counted_as(mut st: BillingState, base: &BillingState) -> BillingState {
    st.facts.unique = base.facts.unique;
    st
}

const DISPUTE: &str = "stripe:dp_1Pgc71B7WZ01zgkWMevJiAUx";
const INVOICE: &str = "stripe:in_1Pgc6tB7WZ01zgkWu9fdqL6I";

#[test]
fn a_won_dispute_restores_access_as_if_it_never_happened() {
    let cat = catalog();
    let mut base = facts(&cat, FIRST_PERIOD);
    base.push(usage(USER, "req_a", "video_seconds", 300, T0 + DAY));
    let opened = facts(&cat, &["stripe/charge.dispute.created.json"]);
    let won = facts(&cat, &["stripe/charge.dispute.closed.won.json"]);
    let lost = facts(&cat, &["stripe/charge.dispute.closed.lost.json"]);
    let now = P1E + 25 * DAY;
    let during = P1E - DAY / 2; // after the dispute opened, before the period ends
    let plain = fold(&cat, &base, now);
    let open = fold(&cat, &[base.clone(), opened.clone()].concat(), now);
    assert!(!has(&cat, &open, USER, "studio", "basic", during), "an open dispute takes the period back");
    // Won: the grant, the allowance and the payment are what they were without it.
    let all_won = [base.clone(), opened.clone(), won.clone()].concat();
    let st = fold(&cat, &all_won, now);
    assert_eq!(counted_as(st.clone(), &plain), plain);
    assert_eq!(st.facts.unique, plain.facts.unique + 2);
    assert!(has(&cat, &st, USER, "studio", "basic", during));
    assert_eq!(access(&cat, &st, USER, "studio", "basic", during).holds_until, Some(t(P1E)));
    assert!(st.subscriptions[SUB].revoked.is_none());
    assert_eq!(st.payments[INVOICE].reversed, 0);
    assert_eq!(st.subject(USER).unwrap().wallet.lots.iter().map(|l| l.revoked).sum::<i64>(), 0);
    // In any order: the closing before the opening, the opening alone later, duplicates.
    for order in orders(&all_won) {
        assert_eq!(reduce(&cat, &order, t(now)), st);
    }
    let mut dups = all_won.clone();
    dups.extend(won.iter().chain(opened.iter()).cloned());
    assert_eq!(reduce(&cat, &dups, t(now)), st);
    assert_eq!(counted_as(fold(&cat, &[base.clone(), won.clone()].concat(), now), &plain), plain);
    // One at a time: the closing refolds what the opening took.
    let mut r = Reducer::from_facts(&cat, &[base.clone(), opened.clone()].concat(), t(now));
    assert_eq!(r.apply(won[0].clone(), t(now)), Applied::Replayed);
    assert_eq!(r.state(), &st);
    let mut r = Reducer::from_facts(&cat, &[base.clone(), won.clone()].concat(), t(now));
    r.apply(opened[0].clone(), t(now));
    assert_eq!(r.state(), &st);

    // Lost: it stays taken back, from the opening on.
    let st_lost = fold(&cat, &[base.clone(), opened.clone(), lost.clone()].concat(), now);
    assert_eq!(counted_as(st_lost.clone(), &open), open);
    assert!(!has(&cat, &st_lost, USER, "studio", "basic", during));
    assert_eq!(st_lost.subscriptions[SUB].revoked.as_ref().unwrap().by, DISPUTE);
    // A loss reported without the opening takes the payment back from the closing.
    let alone = fold(&cat, &[base.clone(), lost.clone()].concat(), now);
    assert_eq!(alone.payments[INVOICE].reversed, 2900);
    assert_eq!(alone.subscriptions[SUB].revoked.as_ref().unwrap().at, t(P1E + 19 * DAY));

    // An inquiry closed without a chargeback (warning_closed) counts as won.
    let inquiry = stripe_facts(
        &cat,
        &edit("stripe/charge.dispute.created.json", |v| obj(v)["status"] = json!("warning_needs_response")),
    );
    let closed = stripe_facts(
        &cat,
        &edit("stripe/charge.dispute.closed.won.json", |v| obj(v)["status"] = json!("warning_closed")),
    );
    let st_inq = fold(&cat, &[base.clone(), inquiry.clone()].concat(), now);
    assert!(!has(&cat, &st_inq, USER, "studio", "basic", during));
    let st_inq = fold(&cat, &[base.clone(), inquiry, closed].concat(), now);
    assert_eq!(counted_as(st_inq, &plain), plain);
    // Both outcomes reported (never from Stripe): the loss counts, with a warning.
    let both = fold(&cat, &[base.clone(), won.clone(), lost.clone()].concat(), now);
    assert!(both.subscriptions[SUB].revoked.is_some());
    assert!(both.warnings.iter().any(|w| w.contains("both won and lost")), "{:?}", both.warnings);
}

#[test]
fn a_won_dispute_leaves_later_facts_in_force() {
    let cat = catalog();
    let base = facts(&cat, FIRST_PERIOD);
    let disputes = facts(&cat, &["stripe/charge.dispute.created.json", "stripe/charge.dispute.closed.won.json"]);
    // Deleted half a day before the period ends: access ends then, won dispute or not.
    let gone = P1E - DAY / 2;
    let deleted = stripe_facts(
        &cat,
        &edit("stripe/customer.subscription.deleted.basil.json", |v| {
            v["created"] = json!(gone + 2);
            let o = obj(v);
            o["cancel_at_period_end"] = json!(false);
            o["cancel_at"] = json!(null);
            o["canceled_at"] = json!(gone);
            o["ended_at"] = json!(gone);
            o["items"]["data"][0]["current_period_start"] = json!(T0);
            o["items"]["data"][0]["current_period_end"] = json!(P1E);
        }),
    );
    let now = P1E + 25 * DAY;
    let plain = fold(&cat, &[base.clone(), deleted.clone()].concat(), now);
    let st = fold(&cat, &[base.clone(), deleted.clone(), disputes.clone()].concat(), now);
    assert_eq!(counted_as(st.clone(), &plain), plain);
    assert!(has(&cat, &st, USER, "studio", "basic", gone - 3600));
    assert!(!has(&cat, &st, USER, "studio", "basic", gone + 3600));
    // Renewed and then cancelled at the period end: the second period holds until P2E.
    let renewed = facts(
        &cat,
        &[
            "stripe/customer.subscription.updated.renewed.acacia.json",
            "stripe/invoice.paid.renewal.acacia.json",
            "stripe/customer.subscription.updated.cancel_at_period_end.basil.json",
        ],
    );
    let plain = fold(&cat, &[base.clone(), renewed.clone()].concat(), P1E + 20 * DAY);
    let st = fold(&cat, &[base.clone(), renewed, disputes].concat(), P1E + 20 * DAY);
    assert_eq!(counted_as(st.clone(), &plain), plain);
    let d = access(&cat, &st, USER, "studio", "basic", P1E + 20 * DAY);
    assert_eq!((d.allowed, d.reason, d.holds_until), (true, Reason::CanceledUntilPeriodEnd, Some(t(P2E))));
}

/// The dispute event at `path`, made a dispute of `amount` of the token purchase's charge
/// (checkout.session.completed.payment.json), at `at`, with `status` if given.
fn dispute_of_token_purchase(cat: &tollgate::Catalog, path: &str, at: i64, amount: i64, status: Option<&str>) -> Vec<Fact> {
    stripe_facts(
        cat,
        &edit(path, |v| {
            v["created"] = json!(at);
            obj(v)["charge"] = json!("ch_1PgafuB7WZ01zgkWXYmPNZs8");
            obj(v)["payment_intent"] = json!("pi_1PgafyB7WZ01zgkWSjxsAJo3");
            obj(v)["amount"] = json!(amount);
            if let Some(s) = status {
                obj(v)["status"] = json!(s);
            }
        }),
    )
}

#[test]
fn a_won_dispute_of_a_token_purchase_gives_the_credits_back() {
    let cat = catalog();
    let buy = facts(&cat, &["stripe/checkout.session.completed.payment.json"]);
    let opened = dispute_of_token_purchase(&cat, "stripe/charge.dispute.created.json", T0 + 8 * DAY, 1900, None);
    let won = dispute_of_token_purchase(&cat, "stripe/charge.dispute.closed.won.json", T0 + 30 * DAY, 1900, None);
    let lost = dispute_of_token_purchase(&cat, "stripe/charge.dispute.closed.lost.json", T0 + 30 * DAY, 1900, None);
    let spend = usage(USER, "req_b", "video_seconds", 600, T0 + 20 * DAY);
    let now = T0 + 31 * DAY;
    let st = fold(&cat, &[buy.clone(), opened.clone()].concat(), now);
    assert_eq!(st.balance(USER, "video_seconds"), 0, "an open dispute takes the tokens");
    let plain = fold(&cat, &[buy.clone(), vec![spend.clone()]].concat(), now);
    let st = fold(&cat, &[buy.clone(), opened.clone(), vec![spend.clone()], won].concat(), now);
    assert_eq!(counted_as(st.clone(), &plain), plain);
    assert_eq!(st.balance(USER, "video_seconds"), 1200, "usage during the dispute drew on the tokens");
    assert!(st.subject(USER).unwrap().overage.is_empty());
    let st = fold(&cat, &[buy, opened, vec![spend], lost].concat(), now);
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    assert_eq!(st.subject(USER).unwrap().overage.iter().map(|o| o.units).sum::<i64>(), 600);
}

/// Half a token purchase disputed, the merchant refunds that half while the dispute is
/// open, and Stripe closes the dispute `charge_refunded`: the refund is what the customer
/// got back, once; the dispute's closing takes nothing more (it took the half while open,
/// and gives it back as the refund takes it), in either order of delivery.
#[test]
fn a_dispute_closed_by_a_refund_takes_back_only_what_was_refunded() {
    let cat = catalog();
    let buy = facts(&cat, &["stripe/checkout.session.completed.payment.json"]);
    let opened = dispute_of_token_purchase(&cat, "stripe/charge.dispute.created.json", T0 + 8 * DAY, 950, Some("needs_response"));
    let closed = dispute_of_token_purchase(&cat, "stripe/charge.dispute.closed.lost.json", T0 + 12 * DAY, 950, Some("charge_refunded"));
    let refunded = stripe_facts(&cat, &edit("stripe/charge.refunded.partial.json", |v| v["created"] = json!(T0 + 10 * DAY)));
    let now = T0 + 20 * DAY;
    let plain = fold(&cat, &[buy.clone(), refunded.clone()].concat(), now);
    assert_eq!(plain.balance(USER, "video_seconds"), 900, "half refunded: half the tokens stay");
    for order in [
        [buy.clone(), opened.clone(), refunded.clone(), closed.clone()].concat(),
        [buy.clone(), closed.clone(), opened.clone(), refunded.clone()].concat(),
    ] {
        let st = fold(&cat, &order, now);
        assert_eq!(st.balance(USER, "video_seconds"), 900, "the refunded half taken once, not twice");
    }
}

#[test]
fn razorpay_won_disputes_restore_and_lost_ones_keep_it_revoked() {
    let cat = catalog();
    let base = facts(&cat, &["razorpay/subscription.activated.json", "razorpay/subscription.charged.json"]);
    let opened = facts(&cat, &["razorpay/payment.dispute.created.json"]);
    let closing = |ev: &str, status: &str| {
        rzp_facts(
            &cat,
            &edit("razorpay/payment.dispute.created.json", |v| {
                v["event"] = json!(ev);
                v["created_at"] = json!(T0 + 25 * DAY);
                v["payload"]["dispute"]["entity"]["status"] = json!(status);
            }),
        )
    };
    let now = T0 + 26 * DAY;
    let plain = fold(&cat, &base, now);
    let st = fold(&cat, &[base.clone(), closing("payment.dispute.won", "won"), opened.clone()].concat(), now);
    assert_eq!(counted_as(st.clone(), &plain), plain);
    assert!(has(&cat, &st, RZP, "studio", "pro", T0 + 20 * DAY));
    // A fraud inquiry closed without a chargeback gives access back the same way.
    let st = fold(&cat, &[base.clone(), opened.clone(), closing("payment.dispute.closed", "closed")].concat(), now);
    assert_eq!(counted_as(st.clone(), &plain), plain);
    assert!(has(&cat, &st, RZP, "studio", "pro", T0 + 20 * DAY));
    let st = fold(&cat, &[base.clone(), opened.clone(), closing("payment.dispute.lost", "lost")].concat(), now);
    assert!(!has(&cat, &st, RZP, "studio", "pro", T0 + 20 * DAY));
    assert_eq!(st.balance(RZP, "ai_credits"), 0);
}

/// A dispute of part of a payment takes back that share of what the payment granted, as a
/// refund of the same amount does: the Razorpay AI app's 500-credit top-up paid ₹199 (19900
/// paise) and a chargeback of ₹99.50 (9950 paise) was lost, so 250 credits go, not 500.
/// Razorpay's dispute entity carries the disputed `amount`; its event carries the payment.
#[test]
fn a_lost_dispute_of_part_of_a_razorpay_payment_takes_back_only_the_disputed_share() {
    let cat = catalog();
    let buy = rzp_facts(&cat, &event("razorpay/payment.captured.json"));
    let lost = |payment_entity: bool| {
        rzp_facts(
            &cat,
            &edit("razorpay/payment.dispute.created.json", |v| {
                v["event"] = json!("payment.dispute.lost");
                v["created_at"] = json!(T0 + 20 * DAY);
                let d = &mut v["payload"]["dispute"]["entity"];
                d["payment_id"] = json!("pay_00000000000009");
                d["amount"] = json!(9950);
                d["status"] = json!("lost");
                let p = &mut v["payload"]["payment"]["entity"];
                p["id"] = json!("pay_00000000000009");
                p["amount"] = json!(19900);
                p["invoice_id"] = json!(null);
                if !payment_entity {
                    v["payload"].as_object_mut().unwrap().remove("payment");
                }
            }),
        )
    };
    let refund = rzp_facts(
        &cat,
        &edit("razorpay/refund.processed.json", |v| {
            v["payload"]["refund"]["entity"]["amount"] = json!(9950);
            v["payload"]["payment"]["entity"]["amount_refunded"] = json!(9950);
        }),
    );
    let now = T0 + 21 * DAY;
    assert_eq!(fold(&cat, &buy, now).balance("user:u_456", "ai_credits"), 500);
    let refunded = fold(&cat, &[buy.clone(), refund].concat(), now);
    assert_eq!(refunded.balance("user:u_456", "ai_credits"), 250, "refunded half");
    for carried in [true, false] {
        let st = fold(&cat, &[buy.clone(), lost(carried)].concat(), now);
        assert_eq!(st.balance("user:u_456", "ai_credits"), 250, "half the payment disputed and lost (payment in the event: {carried})");
        assert_eq!(st.payments["razorpay:pay_00000000000009"].reversed, 9950);
    }
}

/// One-time purchases reach an account subscribed only to Razorpay's `order.paid` (which
/// carries the payment) as they reach one subscribed to `payment.captured`, and an account
/// subscribed to both counts each once, in either order; a refund of it takes it back.
#[test]
fn a_razorpay_order_paid_gives_the_purchase_once_beside_payment_captured() {
    let cat = catalog();
    let captured = rzp_facts(&cat, &event("razorpay/payment.captured.json"));
    let paid = rzp_facts(&cat, &event("razorpay/order.paid.json"));
    let now = T0 + 21 * DAY;
    for fs in [paid.clone(), [captured.clone(), paid.clone()].concat(), [paid.clone(), captured.clone()].concat()] {
        let st = fold(&cat, &fs, now);
        assert_eq!(st.balance(RZP, "ai_credits"), 500, "{fs:#?}");
        assert_eq!(st.payments.len(), 1);
    }
    let refunded = fold(&cat, &[paid, facts(&cat, &["razorpay/refund.processed.json"])].concat(), now);
    assert_eq!(refunded.balance(RZP, "ai_credits"), 0);
}

/// A Razorpay `refund.processed` that does not carry the payment entity tells only the
/// refund's own amount: it takes back that share of what the payment granted, read against
/// the payment's amount from the payment's own fact, not the whole. Refunds told one by one
/// add up, whether or not their events carry the payment; one whose payment is not known yet
/// waits for it. The Razorpay AI app's 500-credit top-up, ₹199 (19900 paise).
#[test]
fn a_razorpay_refund_without_its_payment_takes_back_only_its_share() {
    let cat = catalog();
    let buy = rzp_facts(&cat, &event("razorpay/payment.captured.json"));
    // Refund `id` of `amount` paise at day `day`; `refunded`: the payment's
    // `amount_refunded` when the event carries the payment.
    let refund = |id: &str, amount: i64, refunded: Option<i64>, day: i64| {
        rzp_facts(
            &cat,
            &edit("razorpay/refund.processed.json", |v| {
                v["created_at"] = json!(T0 + day * DAY);
                v["payload"]["refund"]["entity"]["id"] = json!(id);
                v["payload"]["refund"]["entity"]["amount"] = json!(amount);
                match refunded {
                    Some(r) => v["payload"]["payment"]["entity"]["amount_refunded"] = json!(r),
                    None => {
                        v["payload"].as_object_mut().unwrap().remove("payment");
                        v["contains"] = json!(["refund"]);
                    }
                }
            }),
        )
    };
    let now = T0 + 21 * DAY;
    let credits = |fs: &[Vec<Fact>]| fold(&cat, &fs.concat(), now).balance(RZP, "ai_credits");
    assert_eq!(credits(&[buy.clone()]), 500);
    let half = refund("rfnd_1", 9950, None, 10);
    assert_eq!(credits(&[buy.clone(), half.clone()]), 250, "half the payment refunded");
    assert_eq!(credits(&[buy.clone(), half.clone(), refund("rfnd_2", 9950, None, 12)]), 0, "and the other half");
    assert_eq!(credits(&[buy.clone(), refund("rfnd_1", 4975, Some(4975), 10), refund("rfnd_2", 4975, None, 12)]), 250);
    assert_eq!(credits(&[buy.clone(), refund("rfnd_1", 4975, None, 10), refund("rfnd_2", 4975, Some(9950), 12)]), 250);
    // As a fact stored before refunds carried their own amount kept it: in both the
    // payment's amount and the amount refunded.
    let mut stored = half.clone();
    let FactBody::Refund(r) = &mut stored[0].body else { panic!() };
    (r.amount, r.reversed, r.own_amount) = (9950, 9950, 0);
    assert_eq!(credits(&[buy.clone(), stored]), 250, "a refund read before, half the payment");
    // Before its payment is known, it waits; then it takes its share.
    let st = fold(&cat, &half, now);
    assert_eq!(st.pending.len(), 1, "{:?}", st.pending);
    let st = fold(&cat, &[half, buy].concat(), now);
    assert!(st.pending.is_empty());
    assert_eq!(st.balance(RZP, "ai_credits"), 250);
    assert_eq!(st.payments["razorpay:pay_00000000000009"].reversed, 9950);
}

/// A Stripe dispute whose amount is less than the charge's (part of an order disputed)
/// takes back that share, open or lost; one of the whole amount, or of no stated amount,
/// takes back everything. The 30-minute bundle: 1800 s for $19.00.
#[test]
fn a_stripe_dispute_of_part_of_a_charge_takes_back_only_the_disputed_share() {
    let cat = catalog();
    let buy = facts(&cat, &["stripe/checkout.session.completed.payment.json"]);
    let dispute = |path: &str, amount: Option<i64>| {
        stripe_facts(
            &cat,
            &edit(path, |v| {
                v["created"] = json!(T0 + 8 * DAY);
                obj(v)["charge"] = json!("ch_1PgafuB7WZ01zgkWXYmPNZs8");
                obj(v)["payment_intent"] = json!("pi_1PgafyB7WZ01zgkWSjxsAJo3");
                match amount {
                    Some(a) => obj(v)["amount"] = json!(a),
                    None => drop(obj(v).as_object_mut().unwrap().remove("amount")),
                }
            }),
        )
    };
    let now = T0 + 9 * DAY;
    let balance = |fs: Vec<Fact>| fold(&cat, &[buy.clone(), fs].concat(), now).balance(USER, "video_seconds");
    assert_eq!(balance(vec![]), 1800);
    assert_eq!(balance(dispute("stripe/charge.dispute.created.json", Some(950))), 900, "half the charge disputed");
    assert_eq!(balance(dispute("stripe/charge.dispute.closed.lost.json", Some(950))), 900, "and lost");
    assert_eq!(balance(dispute("stripe/charge.dispute.closed.lost.json", Some(1900))), 0, "the whole charge");
    assert_eq!(balance(dispute("stripe/charge.dispute.closed.lost.json", None)), 0, "no amount: the whole charge");
}

/// The story of the sample files in the 2025-03-31 shape as a webhook carries it:
/// the invoice without its (expandable) `payments`, so only `invoice_payment.paid`
/// links the payment intent to the invoice.
fn first_period_without_invoice_payments(cat: &tollgate::Catalog) -> Vec<Fact> {
    let invoice = edit("stripe/invoice.paid.basil.json", |v| {
        obj(v).as_object_mut().unwrap().remove("payments");
    });
    let mut fs = facts(cat, &[FIRST_PERIOD[0], FIRST_PERIOD[2], FIRST_PERIOD[3]]);
    fs.extend(stripe_facts(cat, &invoice));
    fs
}

#[test]
fn refunds_in_the_2025_03_31_shape_reach_their_invoice_through_its_payments() {
    let cat = catalog();
    let base = first_period_without_invoice_payments(&cat);
    let refund = facts(&cat, &["stripe/charge.refunded.invoice.basil.json"]);
    let link = facts(&cat, &["stripe/invoice_payment.paid.basil.json"]);
    let refunded_at = T0 + 10 * DAY;
    let now = T0 + 11 * DAY;
    // Without the link the refund cannot be attributed: it waits, and access stands.
    let waiting = fold(&cat, &[base.clone(), refund.clone()].concat(), now);
    assert_eq!(waiting.pending.len(), 1, "{:?}", waiting.pending);
    assert_eq!(waiting.pending[0].fact_type, "refund");
    assert!(waiting.pending[0].waiting_for.contains(&"stripe:pi_3Pgc6uB7WZ01zgkW0h1nvY7c".to_string()));
    assert!(has(&cat, &waiting, USER, "studio", "basic", now));
    // With it, the refund takes back the first period and its allowance.
    let all = [base.clone(), refund.clone(), link.clone()].concat();
    let st = fold(&cat, &all, now);
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    assert!(has(&cat, &st, USER, "studio", "basic", refunded_at - 1));
    assert!(!has(&cat, &st, USER, "studio", "basic", refunded_at + 1));
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    assert_eq!(st.payments[INVOICE].reversed, 2900);
    assert!(st.payments[INVOICE].refs.contains(&"stripe:pi_3Pgc6uB7WZ01zgkW0h1nvY7c".to_string()));
    assert_eq!(st.subscriptions[SUB].revoked.as_ref().unwrap().by, "stripe:ch_3Pgc6uB7WZ01zgkW0bHkq1Lm");
    // The same state as an invoice that lists its payments (plus the link fact).
    let listed = fold(&cat, &facts(&cat, &with(FIRST_PERIOD, &["stripe/charge.refunded.invoice.basil.json"])), now);
    assert_eq!(counted_as(st.clone(), &listed), listed);
    // In any order, the link first, last or twice; one at a time.
    for order in orders(&all) {
        assert_eq!(reduce(&cat, &order, t(now)), st);
    }
    let mut r = Reducer::from_facts(&cat, &[base.clone(), refund.clone()].concat(), t(now));
    assert_eq!(r.apply(link[0].clone(), t(now)), Applied::Replayed);
    assert_eq!(r.state(), &st);
    assert_eq!(r.apply(link[0].clone(), t(now)), Applied::Duplicate);
    assert_eq!(r.state(), &st);
    // The link and the refund before the invoice: the refund names the invoice it waits for.
    let early = fold(&cat, &[refund.clone(), link.clone()].concat(), now);
    assert_eq!(early.pending.len(), 1);
    assert!(early.pending[0].waiting_for.contains(&INVOICE.to_string()), "{:?}", early.pending);
    // A dispute of that payment reaches the invoice the same way.
    let disputed = fold(&cat, &[base, link, facts(&cat, &["stripe/charge.dispute.created.json"])].concat(), P1E);
    assert!(disputed.pending.is_empty());
    assert_eq!(disputed.subscriptions[SUB].revoked.as_ref().unwrap().by, DISPUTE);
    assert!(!has(&cat, &disputed, USER, "studio", "basic", P1E - DAY / 2));
}

/// Two invoices of the subscription paid by one payment intent (each linked to it by an
/// `invoice_payment.paid`): a refund of that payment reaches both, in proportion.
fn two_invoices_one_payment(cat: &tollgate::Catalog, refunded: i64) -> (Vec<Fact>, Vec<Fact>) {
    let mut fs = first_period_without_invoice_payments(cat);
    fs.extend(stripe_facts(
        cat,
        &edit("stripe/invoice.paid.basil.json", |v| {
            v["id"] = json!("evt_second_invoice_paid");
            v["created"] = json!(P1E + 60);
            let o = obj(v);
            o.as_object_mut().unwrap().remove("payments");
            o["id"] = json!("in_second");
            o["billing_reason"] = json!("subscription_cycle");
            o["created"] = json!(P1E);
            o["period_start"] = json!(P1E);
            o["period_end"] = json!(P1E);
            o["status_transitions"]["paid_at"] = json!(P1E + 60);
            for line in o["lines"]["data"].as_array_mut().unwrap() {
                line["period"] = json!({"start": P1E, "end": P2E});
            }
        }),
    ));
    fs.extend(facts(cat, &["stripe/invoice_payment.paid.basil.json"]));
    fs.extend(stripe_facts(
        cat,
        &edit("stripe/invoice_payment.paid.basil.json", |v| {
            v["id"] = json!("evt_second_invoice_payment");
            let o = obj(v);
            o["id"] = json!("inpay_second");
            o["invoice"] = json!("in_second");
        }),
    ));
    let refund = stripe_facts(
        cat,
        &edit("stripe/charge.refunded.invoice.basil.json", |v| {
            v["created"] = json!(P1E + 10 * DAY);
            let o = obj(v);
            o["amount"] = json!(5800);
            o["amount_captured"] = json!(5800);
            o["amount_refunded"] = json!(refunded);
        }),
    );
    (fs, refund)
}

#[test]
fn a_refund_of_a_payment_that_paid_several_invoices_reaches_each_of_them() {
    let cat = catalog();
    let second = "stripe:in_second";
    let now = P1E + 11 * DAY;
    let (base, refund) = two_invoices_one_payment(&cat, 5800);
    let before = fold(&cat, &base, now);
    assert!(has(&cat, &before, USER, "studio", "basic", now));
    assert!(before.payments.contains_key(second), "{:?}", before.payments.keys());
    let all = [base.clone(), refund].concat();
    let st = fold(&cat, &all, now);
    assert!(st.pending.is_empty(), "{:?}", st.pending);
    assert_eq!(st.payments[INVOICE].reversed, 2900);
    assert_eq!(st.payments[second].reversed, 2900);
    assert!(!has(&cat, &st, USER, "studio", "basic", now));
    assert_eq!(st.subscriptions[SUB].revoked.as_ref().unwrap().through, t(P2E));
    assert_eq!(st.balance(USER, "video_seconds"), 0);
    for order in orders(&all) {
        assert_eq!(reduce(&cat, &order, t(now)), st);
    }
    // Half of the payment refunded: half of each invoice, access kept.
    let (base, half) = two_invoices_one_payment(&cat, 2900);
    let st = fold(&cat, &[base, half].concat(), now);
    assert_eq!(st.payments[INVOICE].reversed, 1450);
    assert_eq!(st.payments[second].reversed, 1450);
    assert!(has(&cat, &st, USER, "studio", "basic", now));
}

/// A plan switched in the second the subscription was created (an app's "Switch" right
/// after its checkout): the update holds, whichever of the two snapshots' digests sorts
/// first, and in every order the events arrive in.
#[test]
fn a_change_in_the_second_of_the_creation_holds() {
    let cat = catalog();
    let at = json("stripe/customer.subscription.created.basil.json")["created"].as_i64().unwrap();
    for n in 0..8 {
        let created = edit("stripe/customer.subscription.created.basil.json", |v| {
            obj(v)["status"] = json!("active");
            obj(v)["start_date"] = json!(at - n);
        });
        let switched = edit("stripe/customer.subscription.updated.active.basil.json", |v| {
            v["created"] = json!(at);
            obj(v)["start_date"] = json!(at - n);
            obj(v)["items"]["data"][0]["price"]["id"] = json!("price_pro_monthly");
        });
        let mut fs = facts(&cat, &["stripe/checkout.session.completed.subscription.json"]);
        fs.extend(stripe_facts(&cat, &created));
        fs.extend(stripe_facts(&cat, &switched));
        for order in orders(&fs) {
            let st = reduce(&cat, &order, t(at + DAY));
            assert!(has(&cat, &st, USER, "studio", "pro", at + DAY), "variant {n}: the switch holds");
            let items = &st.subscriptions[SUB].items;
            assert_eq!(items[0].offer.as_deref(), Some("STUDIO_PRO_MONTHLY"), "variant {n}");
        }
    }
}

/// Three updates of one subscription in one second (a plan switched, then set to cancel at
/// the period's end): Stripe's `previous_attributes` say which state each followed, so
/// they fold in the order they were made whatever their digests, the order they arrive
/// in, or a fold fed one fact at a time.
#[test]
fn updates_of_one_second_fold_in_the_order_they_were_made() {
    let cat = catalog();
    let at = json("stripe/customer.subscription.updated.active.basil.json")["created"].as_i64().unwrap();
    for n in 0..6 {
        let update = |id: &str, price: &str, cancel: bool, before: Value| {
            edit("stripe/customer.subscription.updated.active.basil.json", |v| {
                v["id"] = json!(id);
                v["created"] = json!(at);
                v["data"]["previous_attributes"] = before;
                obj(v)["start_date"] = json!(at - n);
                obj(v)["cancel_at_period_end"] = json!(cancel);
                obj(v)["items"]["data"][0]["price"]["id"] = json!(price);
            })
        };
        let items = |price: &str| {
            let mut v = json("stripe/customer.subscription.updated.active.basil.json")["data"]["object"]["items"].clone();
            v["data"][0]["price"]["id"] = json!(price);
            json!({ "items": v })
        };
        let basic = update("evt_a", "price_1PgafmB7WZ01zgkW6dKueIc5", false, json!(null));
        let pro = update("evt_b", "price_pro_monthly", false, items("price_1PgafmB7WZ01zgkW6dKueIc5"));
        let ending = update("evt_c", "price_pro_monthly", true, json!({ "cancel_at_period_end": false }));
        let mut fs = facts(&cat, &["stripe/checkout.session.completed.subscription.json"]);
        for e in [&basic, &pro, &ending] {
            fs.extend(stripe_facts(&cat, e));
        }
        let whole = reduce(&cat, &fs, t(at + DAY));
        let sub = &whole.subscriptions[SUB];
        assert_eq!(sub.items[0].offer.as_deref(), Some("STUDIO_PRO_MONTHLY"), "variant {n}: the switch holds");
        assert!(sub.cancel_at_period_end, "variant {n}: and ends at the period's end");
        for order in orders(&fs) {
            assert_eq!(reduce(&cat, &order, t(at + DAY)), whole, "variant {n}");
            let mut r = Reducer::new(&cat, t(at));
            for f in &order {
                r.apply(f.clone(), t(at + DAY));
            }
            assert_eq!(r.state(), &whole, "variant {n}: fact by fact");
        }
    }
}
