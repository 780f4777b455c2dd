//! Alerts that turn with time, not with an event: a failed payment's `grace_ending` (the
//! Razorpay AI app's catalog: one day before a grace of three days) opens when the
//! scheduled run comes in its last day, and resolves in the first run after it, with no
//! webhook in between (the run folds the subject again); a trial's `trial_ending` likewise.
mod common;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use common::{block, hmac, JWT_SECRET, STRIPE_SECRET, ADMIN_SECRET, NoNetwork};
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

fn open_rules(app: &App<NoNetwork, MemoryStore>) -> Vec<String> {
    let subject = tollgate_worker::state::Subject::user(U1);
    app.ctx.store.alerts_of(&subject).into_iter().filter(|a| a.2).map(|a| a.0).collect()
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
        let app = App::with_store(common::config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).unwrap();
        app.ctx.store.add_user(U1);
        let mut doc: Value =
            serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        doc["alerts"] = json!([{"event": "trial_ending", "days": 3}]);
        app.ctx.store.push_catalog(doc, true);
        let t0: i64 = 1_800_000_000;
        let end = t0 + 14 * DAY;
        let created = json!({
            "id": "evt_trial_1", "object": "event", "api_version": "2025-03-31.basil", "created": t0, "type": "customer.subscription.created",
            "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
            "data": {"object": {
                "id": "sub_t1", "object": "subscription", "customer": "cus_t1", "status": "trialing",
                "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
                "start_date": t0, "created": t0, "trial_start": t0, "trial_end": end,
                "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": U1},
                "items": {"object": "list", "data": [{
                    "id": "si_t1", "object": "subscription_item", "quantity": 1,
                    "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
                    "current_period_start": t0, "current_period_end": end,
                }]},
            }},
        });
        let (s, v) = common::stripe(&app, &created, t0).await;
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
