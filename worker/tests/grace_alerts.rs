//! Alerts that turn with time, not with an event: a failed payment's `grace_ending` (the
//! Razorpay AI app's catalog: one day before a grace of three days) opens when the
//! scheduled run comes in its last day, and resolves in the first run after it, with no
//! webhook in between (the run folds the subject again); a trial's `trial_ending` likewise.
//! On the same Razorpay webhooks: a subscription's last cycle, charged (49900 paise,
//! PREMIUM with 2000 `ai_credits` a period) and completed in the same second, gives its
//! access to the cycle's end and its credits, whichever of the two events arrives first;
//! a pause that leaves none of the period's credits spendable opens the pool's
//! low-balance alert, and the resumption resolves it.
mod common;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use common::{block, hmac, user_token, JWT_SECRET, STRIPE_SECRET, ADMIN_SECRET, NoNetwork};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;

const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000d1";
const RZP: &str = "rzp_review_secret";

fn app() -> App<NoNetwork, MemoryStore> {
    let vars: BTreeMap<&str, String> = [
        ("SUPABASE_URL", "http://127.0.0.1:1".to_string()),
        ("SUPABASE_SERVICE_ROLE_KEY", "svc".to_string()),
        ("SUPABASE_JWT_SECRET", JWT_SECRET.to_string()),
        ("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET.to_string()),
        ("RAZORPAY_WEBHOOK_SECRET", RZP.to_string()),
        ("ADMIN_SECRET", ADMIN_SECRET.to_string()),
        ("CATALOG", "razorpay-ai".to_string()),
    ]
    .into_iter()
    .collect();
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let app = App::with_store(config, NoNetwork, MemoryStore::new()).expect("app");
    app.ctx.store.add_user(U1);
    app
}

fn sub_event(ev: &str, status: &str, start: i64, end: i64, created: i64) -> Value {
    json!({"entity": "event", "account_id": "acc_x", "event": ev, "contains": ["subscription"],
        "payload": {"subscription": {"entity": {
            "id": "sub_r1", "entity": "subscription", "plan_id": "plan_premium_monthly",
            "customer_id": "cust_r1", "status": status, "current_start": start, "current_end": end,
            "ended_at": null, "quantity": 1, "notes": {"user_id": U1}, "charge_at": end,
            "start_at": start, "end_at": start + 365 * DAY, "auth_attempts": 0, "total_count": 12,
            "paid_count": 1, "customer_notify": true, "created_at": start, "expire_by": null,
            "short_url": null, "has_scheduled_changes": false, "change_scheduled_at": null,
            "source": "api", "payment_method": "card", "offer_id": null, "remaining_count": 11}}},
        "created_at": created})
}

/// `subscription.charged` of the cycle [start, end] with the subscription's `status`: its
/// payment of 49900 paise pays invoice `invoice`.
fn charged(status: &str, start: i64, end: i64, created: i64, invoice: &str) -> Value {
    let mut ev = sub_event("subscription.charged", status, start, end, created);
    ev["contains"] = json!(["subscription", "payment"]);
    ev["payload"]["payment"] = json!({"entity": {
        "id": format!("pay_{invoice}"), "entity": "payment", "amount": 49900, "currency": "INR",
        "status": "captured", "order_id": null, "invoice_id": invoice, "international": false,
        "method": "card", "amount_refunded": 0, "refund_status": null, "captured": true,
        "customer_id": "cust_r1", "notes": {}, "created_at": created}});
    ev
}

/// `POST /v1/check` of `feature` for U1 at `now`.
async fn check(app: &App<NoNetwork, MemoryStore>, feature: &str, now: i64) -> Value {
    let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, "http://127.0.0.1:1/auth/v1", now)));
    let (s, v) = common::call(app, Method::Post, "/v1/check", h, &json!({"feature": feature}), now).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn razorpay(app: &App<NoNetwork, MemoryStore>, id: &str, ev: &Value, now: i64) -> Value {
    let body = ev.to_string();
    let sig = hex::encode(hmac(RZP, &body));
    let headers = Headers::new().with("x-razorpay-signature", sig).with("x-razorpay-event-id", id);
    let req = InRequest { method: Method::Post, path: "/webhooks/razorpay".into(), query: String::new(), headers, body: body.into_bytes() };
    let r = app.handle(req, Timestamp(now)).await;
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(r.status, 200, "{v}");
    v
}

/// The rules of U1's open alerts.
fn open_rules(app: &App<NoNetwork, MemoryStore>) -> Vec<String> {
    open_rules_of(app, U1)
}

fn open_rules_of(app: &App<NoNetwork, MemoryStore>, uid: &str) -> Vec<String> {
    let subject = tollgate_worker::state::Subject::user(uid);
    app.ctx.store.alerts_of(&subject).into_iter().filter(|a| a.2).map(|a| a.0).collect()
}

/// Video Studio with a `trial_ending` rule three days before the end (a catalog version in
/// the store).
fn video_studio_warning_of_trials_ending() -> App<NoNetwork, MemoryStore> {
    let app = App::with_store(common::config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).unwrap();
    let mut doc: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
    doc["alerts"] = json!([{"event": "trial_ending", "days": 3}]);
    app.ctx.store.push_catalog(doc, true);
    app
}

/// `customer.subscription.created` (event `evt`) of a Video Studio Creator subscription
/// (`sub_<n>`, customer `cus_<n>`) of user `uid`, trialing from `t0` to `end`.
fn trial_created(evt: &str, n: &str, uid: &str, t0: i64, end: i64) -> Value {
    json!({
        "id": evt, "object": "event", "api_version": "2025-03-31.basil", "created": t0, "type": "customer.subscription.created",
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("sub_{n}"), "object": "subscription", "customer": format!("cus_{n}"), "status": "trialing",
            "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
            "start_date": t0, "created": t0, "trial_start": t0, "trial_end": end,
            "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": uid},
            "items": {"object": "list", "data": [{
                "id": format!("si_{n}"), "object": "subscription_item", "quantity": 1,
                "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
                "current_period_start": t0, "current_period_end": end,
            }]},
        }},
    })
}

#[test]
fn grace_ending_opens_in_the_graces_last_day_and_resolves_after_it_by_the_scheduled_run() {
    block(async {
        let app = app();
        let t0: i64 = 1_800_000_000;
        let t1 = t0 + 30 * DAY; // the renewal fails here
        razorpay(&app, "evt_1", &sub_event("subscription.activated", "active", t0, t1, t0 + 10), t0 + 10).await;
        razorpay(&app, "evt_2", &sub_event("subscription.pending", "pending", t1, t1 + 30 * DAY, t1 + 30), t1 + 30).await;
        let rules = open_rules(&app);
        assert!(rules.iter().any(|r| r.starts_with("payment_failed")), "{rules:?}");
        assert!(!rules.iter().any(|r| r.starts_with("grace_ending")), "not yet: {rules:?}");
        // A run before the last day changes nothing.
        app.scheduled(Timestamp(t1 + 30 + DAY)).await.unwrap();
        assert!(!open_rules(&app).iter().any(|r| r.starts_with("grace_ending")));
        // Grace is 3 days from the failure; grace_ending (1 day) holds in [t1+2d, t1+3d).
        app.scheduled(Timestamp(t1 + 30 + 2 * DAY + 3600)).await.unwrap();
        let rules = open_rules(&app);
        assert!(rules.iter().any(|r| r.starts_with("grace_ending")), "in the grace's last day: {rules:?}");
        // The first run after the grace ended resolves it.
        app.scheduled(Timestamp(t1 + 30 + 3 * DAY + 3600)).await.unwrap();
        let rules = open_rules(&app);
        assert!(!rules.iter().any(|r| r.starts_with("grace_ending")), "after the grace: {rules:?}");
    })
}

/// Video Studio with a `trial_ending` rule three days before the end (a catalog version in
/// the store): a Stripe subscription in a 14-day trial is warned about in the run that
/// comes in those days, and the warning resolves in the first run after the trial ended,
/// with no event in between.
#[test]
fn trial_ending_opens_in_the_trials_last_days_and_resolves_after_it_by_the_scheduled_run() {
    block(async {
        let app = video_studio_warning_of_trials_ending();
        app.ctx.store.add_user(U1);
        let t0: i64 = 1_800_000_000;
        let end = t0 + 14 * DAY;
        let (s, v) = common::stripe(&app, &trial_created("evt_trial_1", "t1", U1, t0, end), t0).await;
        assert_eq!(s, 200, "{v}");
        let trial = |app: &App<NoNetwork, MemoryStore>| open_rules(app).iter().any(|r| r.starts_with("trial_ending"));
        assert!(!trial(&app), "not yet: {:?}", open_rules(&app));
        // A run before the last three days changes nothing.
        app.scheduled(Timestamp(t0 + 5 * DAY)).await.unwrap();
        assert!(!trial(&app), "{:?}", open_rules(&app));
        // `trial_ending` (3 days) holds in [end - 3d, end); this run is in it, 21 hours in.
        app.scheduled(Timestamp(end - 2 * DAY - 3 * 3600)).await.unwrap();
        assert!(trial(&app), "in the trial's last days: {:?}", open_rules(&app));
        // The first run after the trial ended resolves it.
        app.scheduled(Timestamp(end + 3600)).await.unwrap();
        assert!(!trial(&app), "after the trial: {:?}", open_rules(&app));
    })
}

/// The last cycle of a Razorpay subscription: Razorpay charges it ([t1, t2], 49900 paise)
/// and, the subscription having no cycle left, completes it; both events carry the same
/// `created_at` second, and the `charged` event's subscription may already say `completed`.
/// The payment gives the cycle it paid for: PREMIUM (the `ai_generation` capability) until
/// t2, though the subscription ended as it was paid.
#[test]
fn a_last_cycle_paid_as_the_subscription_completes_gives_access_to_the_cycles_end() {
    block(async {
        let t0: i64 = 1_800_000_000;
        let (t1, t2) = (t0 + 30 * DAY, t0 + 60 * DAY);
        for status in ["active", "completed"] {
            let app = app();
            for (id, ev, at) in [
                ("e1", sub_event("subscription.activated", "active", t0, t1, t0 + 5), t0 + 5),
                ("e2", charged("active", t0, t1, t0 + 6, "inv_c1"), t0 + 6),
                ("e3", charged(status, t1, t2, t1 + 5, "inv_c2"), t1 + 5),
                ("e4", sub_event("subscription.completed", "completed", t1, t2, t1 + 5), t1 + 6),
            ] {
                let v = razorpay(&app, id, &ev, at).await;
                assert_eq!(v["status"], "applied", "{status} {id}: {v}");
            }
            let c = check(&app, "ai_generation", t1 + 10 * DAY).await;
            assert_eq!(
                (c["allowed"].clone(), c["tier"].clone()),
                (json!(true), json!("PREMIUM")),
                "charged as {status}, ten days into the last cycle, paid 49900 paise for [t1, t2]: {c}"
            );
            let c = check(&app, "ai_generation", t2 + 1).await;
            assert_eq!(c["allowed"], json!(false), "charged as {status}, nothing past the paid cycle: {c}");
        }
    })
}

/// The same facts in any order give the same state (ARCHITECTURE.md): the last cycle's two
/// events of one second (see above), charged then completed or completed then charged,
/// leave the same balance, the cycle's 2000 credits. Charged first, its fold writes the
/// cycle's allowance lot, and the completed event's fold gives that lot again (the store
/// keeps the lots a fold writes); completed first, the charge's fold writes it.
#[test]
fn a_last_cycles_credits_are_the_same_whichever_of_its_two_events_arrives_first() {
    block(async {
        let t0: i64 = 1_800_000_000;
        let (t1, t2) = (t0 + 30 * DAY, t0 + 60 * DAY);
        let last = charged("active", t1, t2, t1 + 5, "inv_c2");
        let completed = sub_event("subscription.completed", "completed", t1, t2, t1 + 5);
        let mut balances = vec![];
        for order in [[("e3", &last), ("e4", &completed)], [("e4", &completed), ("e3", &last)]] {
            let app = app();
            razorpay(&app, "e1", &sub_event("subscription.activated", "active", t0, t1, t0 + 5), t0 + 5).await;
            razorpay(&app, "e2", &charged("active", t0, t1, t0 + 6, "inv_c1"), t0 + 6).await;
            for (i, (id, ev)) in order.iter().enumerate() {
                razorpay(&app, id, ev, t1 + 6 + i as i64).await;
            }
            balances.push(check(&app, "ai_credits", t1 + DAY).await["limit"].clone());
        }
        assert_eq!(balances[0], balances[1], "charged then completed vs completed then charged: {balances:?}");
        assert_eq!(balances[0], json!(2000), "the last cycle was paid: its allowance");
    })
}

/// A pool's low-balance alert compares what may be spent (`credit_balances`, the core's
/// `usage::balances`): a Premium subscriber's 2000 `ai_credits` of the month are kept but
/// not spendable while Razorpay has the subscription paused, so the pause's own fold (whose
/// checks include every pool the subject holds) opens `pool:ai_credits:100left` (0 left,
/// below 100) though the lots still hold 2000, and the resumption's fold resolves it.
#[test]
fn a_pause_that_leaves_nothing_spendable_opens_the_pools_alert_and_the_resumption_resolves_it() {
    block(async {
        let app = app();
        let t0: i64 = 1_800_000_000;
        let t1 = t0 + 30 * DAY;
        razorpay(&app, "e1", &sub_event("subscription.activated", "active", t0, t1, t0 + 5), t0 + 5).await;
        razorpay(&app, "e2", &charged("active", t0, t1, t0 + 6, "inv_c1"), t0 + 6).await;
        let low = "pool:ai_credits:100left";
        assert!(!open_rules(&app).iter().any(|r| r == low), "2000 credits: {:?}", open_rules(&app));

        let paused_at = t0 + 10 * DAY;
        razorpay(&app, "e3", &sub_event("subscription.paused", "paused", t0, t1, paused_at), paused_at).await;
        let c = check(&app, "ai_credits", paused_at + 60).await;
        assert_eq!((c["allowed"].clone(), c["reason"].as_str()), (json!(false), Some("paused")), "{c}");
        let who = tollgate_worker::state::Subject::user(U1);
        assert_eq!(app.ctx.store.balance(&who, "ai_credits"), 0, "nothing spendable while paused");
        let held: i64 = app.ctx.store.lots(&who).iter().filter(|l| !l.closed && l.pool == "ai_credits").map(|l| l.remaining).sum();
        assert_eq!(held, 2000, "and nothing taken away");
        assert!(open_rules(&app).iter().any(|r| r == low), "0 spendable, below 100: {:?}", open_rules(&app));

        let resumed_at = paused_at + DAY;
        razorpay(&app, "e4", &sub_event("subscription.resumed", "active", t0, t1, resumed_at), resumed_at).await;
        assert_eq!(app.ctx.store.balance(&who, "ai_credits"), 2000, "spendable again");
        assert!(!open_rules(&app).iter().any(|r| r == low), "resumed, 2000 spendable: {:?}", open_rules(&app));
        let alerts: Vec<(String, String, bool)> = app.ctx.store.alerts_of(&who).into_iter().filter(|a| a.0 == low).collect();
        assert_eq!(alerts.len(), 1, "one alert, crossed once and resolved once: {alerts:?}");
    })
}

/// Video Studio with a `trial_ending` rule three days before the end (a catalog version in
/// the store). No event brings a trial's last days, so the scheduled run scans trialing
/// subscriptions and folds again the subject of each whose rule turned. A trialing
/// subscription stays trialing (unlike an expired lot, which a fold closes): with 4000
/// trials ahead of it in the scan's order, the 4001st is still reached, and its user's
/// `trial_ending` opens in its last three days.
#[test]
fn the_trial_scan_reaches_every_trial_however_many_are_ahead_of_it() {
    block(async {
        let app = video_studio_warning_of_trials_ending();
        let t0: i64 = 1_800_000_000;
        // 4000 users' trials that end a month later, then U1's 14-day trial, last by
        // subscription id.
        let trial = |n: usize, uid: &str, end: i64| trial_created(&format!("evt_trial_{n}"), &format!("{n:05}"), uid, t0, end);
        for n in 0..4000 {
            let uid = format!("00000000-0000-4000-8000-{:012}", 100_000 + n);
            app.ctx.store.add_user(&uid);
            let (s, v) = common::stripe(&app, &trial(n, &uid, t0 + 30 * DAY), t0).await;
            assert_eq!(s, 200, "{v}");
        }
        app.ctx.store.add_user(U1);
        let end = t0 + 14 * DAY;
        let (s, v) = common::stripe(&app, &trial(99_999, U1, end), t0).await;
        assert_eq!(s, 200, "{v}");
        assert!(!open_rules_of(&app, U1).iter().any(|r| r.starts_with("trial_ending")), "not yet");
        // Runs every hour through U1's last three days.
        let mut at = end - 3 * DAY + 600;
        while at < end {
            app.scheduled(Timestamp(at)).await.unwrap();
            if open_rules_of(&app, U1).iter().any(|r| r.starts_with("trial_ending")) {
                return;
            }
            at += 6 * 3600;
        }
        panic!("no run in the trial's last three days opened its trial_ending alert: {:?}", open_rules_of(&app, U1));
    })
}

/// The grace scan reads the failed payments still due by the time their grace ends, only
/// those ending in the range asked (where a rule can turn), in keyset pages to the last,
/// whatever their order of first failure.
#[test]
fn the_grace_scan_reads_only_the_payments_whose_grace_ends_in_its_range_in_that_order() {
    block(async {
        let app = app();
        let t0: i64 = 1_800_000_000;
        // Three subscriptions whose renewals fail 10, 20 and 30 days in (graces of 3 days).
        for (n, days) in [(1, 30), (2, 10), (3, 20)] {
            let uid = format!("00000000-0000-4000-8000-0000000002{n:02}");
            app.ctx.store.add_user(&uid);
            let t1 = t0 + days * DAY;
            let of = |mut ev: Value| {
                ev["payload"]["subscription"]["entity"]["id"] = json!(format!("sub_g{n}"));
                ev["payload"]["subscription"]["entity"]["notes"]["user_id"] = json!(uid);
                ev
            };
            razorpay(&app, &format!("evt_g{n}a"), &of(sub_event("subscription.activated", "active", t0, t1, t0 + 10)), t0 + 10).await;
            razorpay(&app, &format!("evt_g{n}b"), &of(sub_event("subscription.pending", "pending", t1, t1 + 30 * DAY, t1 + 30)), t1 + 30).await;
        }
        let store = &app.ctx.store;
        use tollgate_worker::store::Store;
        let grace = |r: &Value| serde_json::from_value::<Timestamp>(r["grace_until"].clone()).unwrap().unix();
        // All three, one per page, by grace end.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.failed_payments_due(Timestamp(t0), Timestamp(t0 + 40 * DAY), after.as_deref(), 1).await.unwrap();
            let Some(last) = page.last() else { break };
            seen.push(grace(last));
            after = Some(last["cursor"].as_str().unwrap().to_string());
        }
        assert_eq!(seen, vec![t0 + 13 * DAY + 30, t0 + 23 * DAY + 30, t0 + 33 * DAY + 30]);
        // Only the one whose grace ends in (from, to]: the end is in, the start out.
        let only = store.failed_payments_due(Timestamp(t0 + 13 * DAY + 30), Timestamp(t0 + 23 * DAY + 30), None, 200).await.unwrap();
        assert_eq!(only.iter().map(grace).collect::<Vec<_>>(), vec![t0 + 23 * DAY + 30]);
        assert_eq!(only[0]["subject"]["user_id"], json!("00000000-0000-4000-8000-000000000203"));
    })
}
