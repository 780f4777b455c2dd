//! Review of alerts, the outbox and the scheduled run (failing tests: each shows a bug).
//! On the in-memory store, with the Razorpay AI app's catalog (fewer than 100 `ai_credits`
//! left is an alert) and Video Studio with a `trial_ending` rule.

mod common;

use serde_json::{json, Value};

use common::{block, config, user_token, ADMIN_SECRET, NoNetwork};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000f1";
const ISSUER: &str = "http://127.0.0.1:1/auth/v1";

fn razorpay_ai() -> App<NoNetwork, MemoryStore> {
    let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), NoNetwork, MemoryStore::new()).expect("app");
    app.ctx.store.add_user(U1);
    app
}

async fn admin(app: &App<NoNetwork, MemoryStore>, path: &str, body: Value) -> (u16, Value) {
    let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
    common::call(app, Method::Post, path, h, &body, NOW).await
}

/// PREMIUM for U1 with 500 `ai_credits`.
async fn premium_with_500(app: &App<NoNetwork, MemoryStore>) {
    let (s, v) = admin(app, "/v1/admin/grants", json!({"user_id": U1, "grants": [{"product": "premium", "tier": "PREMIUM", "source": "promotion",
        "id": "p", "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}],
        "credits": [{"pool": "ai_credits", "amount": 500, "id": "c1"}]})).await;
    assert_eq!(s, 201, "{v}");
}

async fn hold(app: &App<NoNetwork, MemoryStore>, key: &str, quantity: u64, now: i64) -> Value {
    let h = Headers::new()
        .with("authorization", format!("Bearer {}", user_token(U1, ISSUER, now)))
        .with("idempotency-key", key);
    let (s, v) = common::call(app, Method::Post, "/v1/track", h, &json!({"feature": "ai_credits", "quantity": quantity, "hold": true}), now).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn open_rules(app: &App<NoNetwork, MemoryStore>, uid: &str) -> Vec<String> {
    app.ctx.store.alerts_of(&Subject::user(uid)).into_iter().filter(|a| a.2).map(|a| a.0).collect()
}

/// A hold of 450 of 500 credits leaves 50, under the catalog's 100: the pool's alert opens
/// (as a charge's does). The render fails and the app releases the hold: the pool holds
/// 500 again, its level is no longer crossed, so the alert must resolve (`alert.resolved`),
/// as the README says an alert does "when the level is no longer crossed". It stays open:
/// the release route (`worker/src/meter.rs` `settle`, then `webhook::settled`) applies no
/// pool check, so the app's "you are low on credits" email is never taken back, the signed
/// snapshot keeps telling the user they are low (`alerts`), and a later real crossing
/// finds the alert still open and sends nothing.
#[test]
fn releasing_a_hold_that_crossed_a_pool_threshold_resolves_the_alert() {
    block(async {
        let app = razorpay_ai();
        premium_with_500(&app).await;
        let v = hold(&app, "render-1", 450, NOW).await;
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 50);
        assert!(open_rules(&app, U1).iter().any(|r| r == "pool:ai_credits:100left"), "{:?}", open_rules(&app, U1));
        let id = v["usage_id"].as_str().expect("usage_id").to_string();
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, NOW + 60)));
        let (s, r) = common::call(&app, Method::Post, &format!("/v1/usage/{id}/release"), h, &json!({}), NOW + 60).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 500, "the release gave everything back");
        let open = open_rules(&app, U1);
        assert!(!open.iter().any(|r| r == "pool:ai_credits:100left"), "500 credits left again, the alert must resolve: open {open:?}");
    })
}

/// The same through the scheduled run: a hold nobody captured is given back at its end
/// (`hold_minutes`, 60 by default) by the run, which then resolves alerts of windows that
/// ended and delivers the outbox. The pool holds 500 again, yet its alert stays open: the
/// run's release (`worker/src/webhook.rs` `scheduled`, expired holds, then `settled`)
/// applies no pool check either (only a fold or a charge does).
#[test]
fn the_scheduled_run_releasing_an_expired_hold_resolves_the_pool_alert() {
    block(async {
        let app = razorpay_ai();
        premium_with_500(&app).await;
        hold(&app, "render-1", 450, NOW).await;
        assert!(open_rules(&app, U1).iter().any(|r| r == "pool:ai_credits:100left"));
        let out = app.scheduled(Timestamp(NOW + 2 * 3600)).await.expect("run");
        assert_eq!(out["released_holds"], 1, "{out}");
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 500);
        let open = open_rules(&app, U1);
        assert!(!open.iter().any(|r| r == "pool:ai_credits:100left"), "500 credits left again, the alert must resolve: open {open:?}");
    })
}

/// Video Studio with a `trial_ending` rule three days before the end (a catalog version in
/// the store). No event brings a trial's last days, so the scheduled run scans every
/// trialing subscription (`tollgate_trials`, keyset pages of 200) and folds again the
/// subject of each whose rule turned. But the scan reads at most 20 pages (`pages`,
/// `EXPIRY_PAGES`) from the start on every run, and a trialing subscription never leaves
/// it (unlike an expired lot, which a fold closes): with 4000 trials ahead of it in the
/// scan's order, the 4001st trial is never reached, on any run, and its user is never
/// warned. Expected: the run reaches every trialing subscription (or carries its cursor
/// over to the next run), so this user's `trial_ending` opens in its last three days.
#[test]
fn a_trial_behind_four_thousand_others_still_gets_its_trial_ending_alert() {
    block(async {
        let app = App::with_store(common::config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).unwrap();
        let mut doc: Value =
            serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        doc["alerts"] = json!([{"event": "trial_ending", "days": 3}]);
        app.ctx.store.push_catalog(doc, true);
        let t0: i64 = 1_800_000_000;
        // 4000 users' trials that end a month later, then U1's 14-day trial, last in the
        // scan's order (provider, subscription id).
        let trial = |n: usize, uid: &str, end: i64| {
            json!({
                "id": format!("evt_trial_{n}"), "object": "event", "api_version": "2025-03-31.basil", "created": t0, "type": "customer.subscription.created",
                "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
                "data": {"object": {
                    "id": format!("sub_{n:05}"), "object": "subscription", "customer": format!("cus_{n:05}"), "status": "trialing",
                    "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
                    "start_date": t0, "created": t0, "trial_start": t0, "trial_end": end,
                    "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": uid},
                    "items": {"object": "list", "data": [{
                        "id": format!("si_{n:05}"), "object": "subscription_item", "quantity": 1,
                        "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
                        "current_period_start": t0, "current_period_end": end,
                    }]},
                }},
            })
        };
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
        assert!(!open_rules(&app, U1).iter().any(|r| r.starts_with("trial_ending")), "not yet");
        // Runs every hour through U1's last three days.
        let mut at = end - 3 * DAY + 600;
        while at < end {
            app.scheduled(Timestamp(at)).await.unwrap();
            if open_rules(&app, U1).iter().any(|r| r.starts_with("trial_ending")) {
                return;
            }
            at += 6 * 3600;
        }
        panic!("no run in the trial's last three days opened its trial_ending alert: {:?}", open_rules(&app, U1));
    })
}
