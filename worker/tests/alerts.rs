//! Alerts and the outbox through the worker's own routes on the in-memory store (the
//! Razorpay AI app's catalog: 80% and 100% of `monthly_ai_credits`): crossing both
//! thresholds queues exactly two alerts, a replayed use none; a new window resolves them;
//! deliveries are signed (checked here with the core's signer; the end-to-end suite checks
//! them with the `standardwebhooks` package), retried with the same webhook-id, in order
//! per subject, and an endpoint can be disabled and enabled again. A property test checks
//! exactly-once crossings under any sequence of uses, replays and refolds.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use proptest::prelude::*;
use serde_json::{json, Value};

use common::{block, config, user_token, ADMIN_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000c1";
const U2: &str = "00000000-0000-4000-8000-0000000000c2";
const ISSUER: &str = "http://127.0.0.1:1/auth/v1";

/// An app's endpoint: records what it is sent, answers `status`.
#[derive(Clone)]
struct Receiver {
    sent: Rc<RefCell<Vec<OutRequest>>>,
    status: Rc<RefCell<u16>>,
}
impl Transport for Receiver {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        self.sent.borrow_mut().push(req);
        Ok(OutResponse { status: *self.status.borrow(), headers: Headers::new(), body: b"ok".to_vec() })
    }
}

struct T {
    app: App<Receiver, MemoryStore>,
    rx: Receiver,
}

impl T {
    fn new() -> T {
        let rx = Receiver { sent: Rc::default(), status: Rc::new(RefCell::new(200)) };
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), rx.clone(), MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        app.ctx.store.add_user(U2);
        T { app, rx }
    }
    async fn call(&self, method: Method, path: &str, headers: Headers, body: Value, now: i64) -> (u16, Value) {
        common::call(&self.app, method, path, headers, &body, now).await
    }
    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        self.call(Method::Post, path, h, body, NOW).await
    }
    async fn premium(&self, uid: &str) {
        let (s, v) = self
            .admin("/v1/admin/grants", json!({"user_id": uid, "grants": [{"product": "premium", "tier": "PREMIUM", "source": "promotion",
                "id": "p", "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]}))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    async fn endpoint(&self) -> Value {
        let (s, v) = self.admin("/v1/admin/endpoints", json!({"url": "https://app.example/hooks", "events": ["alert.crossed", "alert.resolved"]})).await;
        assert_eq!(s, 201, "{v}");
        v
    }
    async fn track(&self, uid: &str, key: &str, quantity: u64, now: i64) -> (u16, Value) {
        let h = Headers::new()
            .with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)))
            .with("idempotency-key", key);
        self.call(Method::Post, "/v1/track", h, json!({"feature": "monthly_ai_credits", "quantity": quantity}), now).await
    }
    async fn deliver(&self, now: i64) {
        self.app.take_outbox_work();
        self.app.deliver(&|| Timestamp(now)).await.expect("deliver");
    }
    /// What the receiver got: (webhook-id, type, status, rule, subject).
    fn got(&self) -> Vec<(String, String, String, String, String)> {
        self.rx
            .sent
            .borrow()
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_slice(r.body.as_deref().unwrap_or_default()).unwrap();
                (
                    r.headers.get("webhook-id").unwrap_or("").to_string(),
                    v["type"].as_str().unwrap_or("").to_string(),
                    v["data"]["status"].as_str().unwrap_or("").to_string(),
                    v["data"]["rule"].as_str().unwrap_or("").to_string(),
                    v["data"]["subject"]["user_id"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

fn verify(secret: &str, r: &OutRequest) {
    let body = r.body.as_deref().unwrap();
    let ts: i64 = r.headers.get("webhook-timestamp").unwrap().parse().unwrap();
    let id = r.headers.get("webhook-id").unwrap();
    let want = tollgate::webhooks::sign(secret, id, Timestamp(ts), body).unwrap();
    assert_eq!(r.headers.get("webhook-signature"), Some(want[2].1.as_str()));
}

#[test]
fn eighty_then_a_hundred_percent_is_two_alerts_and_a_new_window_resolves_them() {
    block(async {
        let t = T::new();
        t.premium(U1).await;
        let ep = t.endpoint().await;
        let secret = ep["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(t.track(U1, "a", 1000, NOW).await.0, 200);
        assert!(!t.app.take_outbox_work(), "under 80%: nothing queued");
        assert_eq!(t.track(U1, "b", 600, NOW).await.0, 200);
        assert!(t.app.take_outbox_work(), "80% crossed: queued");
        t.deliver(NOW).await;
        assert_eq!(t.track(U1, "c", 400, NOW).await.0, 200);
        // Replayed: the same key again; nothing new.
        let (s, v) = t.track(U1, "c", 400, NOW).await;
        assert_eq!((s, v["replayed"].as_bool()), (200, Some(true)), "{v}");
        t.deliver(NOW).await;
        let got = t.got();
        let rules: Vec<(&str, &str)> = got.iter().map(|g| (g.1.as_str(), g.3.as_str())).collect();
        assert_eq!(rules, vec![("alert.crossed", "limit:monthly_ai_credits:80%"), ("alert.crossed", "limit:monthly_ai_credits:100%")]);
        for r in t.rx.sent.borrow().iter() {
            verify(&secret, r);
        }
        let body: Value = serde_json::from_slice(t.rx.sent.borrow()[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(body["data"]["units"], 1600);
        assert_eq!(body["data"]["limit"], 2000);
        assert_eq!(body["data"]["threshold"], json!({"percent_used": 80}));
        // The scheduled run at the window's end resolves both, once.
        let ends: Timestamp = serde_json::from_value(body["data"]["ends_at"].clone()).unwrap();
        let report = t.app.scheduled(Timestamp(ends.unix() - 1)).await.unwrap();
        assert_eq!(report["alerts_resolved"], 0, "{report}");
        let report = t.app.scheduled(ends).await.unwrap();
        assert_eq!((report["alerts_resolved"].as_u64(), report["webhooks_delivered"].as_u64()), (Some(2), Some(2)), "{report}");
        let report = t.app.scheduled(Timestamp(ends.unix() + 60)).await.unwrap();
        assert_eq!((report["alerts_resolved"].as_u64(), report["webhooks_delivered"].as_u64()), (Some(0), Some(0)), "{report}");
        let got = t.got();
        assert_eq!(got.len(), 4);
        assert!(got[2..].iter().all(|g| g.1 == "alert.resolved" && g.2 == "resolved"), "{got:?}");
        assert!(t.app.ctx.store.alerts_of(&Subject::user(U1)).iter().all(|a| !a.2), "none open");
    })
}

#[test]
fn a_failing_endpoint_is_retried_with_the_same_id_and_gets_everything_in_order_once_back() {
    block(async {
        let t = T::new();
        t.premium(U1).await;
        t.premium(U2).await;
        let ep = t.endpoint().await;
        let id = ep["id"].as_str().unwrap().to_string();
        *t.rx.status.borrow_mut() = 503;
        t.track(U1, "a", 1600, NOW).await;
        t.track(U2, "a", 2000, NOW).await;
        t.track(U1, "b", 400, NOW).await;
        t.deliver(NOW).await;
        // One attempt per subject (each subject's next message waits for the one before).
        let first = t.got();
        assert_eq!(first.len(), 2, "{first:?}");
        // Not due again before its backoff; due after it, with the same webhook-id.
        t.deliver(NOW + 10).await;
        assert_eq!(t.got().len(), 2);
        t.deliver(NOW + 31).await;
        let again = t.got();
        assert_eq!(again.len(), 4);
        assert_eq!((&again[2].0, &again[3].0), (&first[0].0, &first[1].0), "the same webhook-id on every retry");
        // Back up: everything, in order per subject.
        *t.rx.status.borrow_mut() = 204;
        t.deliver(NOW + 200).await;
        let got = t.got();
        let delivered: Vec<&(String, String, String, String, String)> = got[4..].iter().collect();
        let u1: Vec<&str> = delivered.iter().filter(|g| g.4 == U1).map(|g| g.3.as_str()).collect();
        let u2: Vec<&str> = delivered.iter().filter(|g| g.4 == U2).map(|g| g.3.as_str()).collect();
        assert_eq!(u1, vec!["limit:monthly_ai_credits:80%", "limit:monthly_ai_credits:100%"]);
        assert_eq!(u2, vec!["limit:monthly_ai_credits:80%", "limit:monthly_ai_credits:100%"]);
        assert!(t.app.ctx.store.outbox().iter().all(|m| m.2), "all delivered");
        // Disabled: nothing goes; enabled again: what waited goes at once.
        let (s, _) = t.admin(&format!("/v1/admin/endpoints/{id}/disable"), json!({})).await;
        assert_eq!(s, 200);
        t.track(U1, "c", 1, NOW + 300).await; // already at 100%: nothing new
        assert_eq!(t.app.ctx.store.outbox().len(), 4);
        let (s, v) = t.admin(&format!("/v1/admin/endpoints/{id}/enable"), json!({})).await;
        assert_eq!((s, v["endpoint"]["enabled"].as_bool()), (200, Some(true)), "{v}");
        let (s, v) = t.admin("/v1/admin/endpoints/00000000-0000-4000-8000-00000000ffff/enable", json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("unknown_endpoint")));
        let (s, _) = t.admin("/v1/admin/endpoints/nope/enable", json!({})).await;
        assert_eq!(s, 400);
    })
}

#[test]
fn an_endpoint_failing_for_three_days_is_disabled_and_its_messages_given_up() {
    block(async {
        let t = T::new();
        t.premium(U1).await;
        t.endpoint().await;
        *t.rx.status.borrow_mut() = 500;
        t.track(U1, "a", 1600, NOW).await;
        let mut now = NOW;
        while now < NOW + 4 * DAY {
            t.deliver(now).await;
            now += 3600;
        }
        let listed = block_list(&t).await;
        assert_eq!(listed[0]["enabled"], false, "{listed:?}");
        assert_eq!(listed[0]["given_up"], 1, "{listed:?}");
        let attempts = t.app.ctx.store.outbox()[0].3;
        assert!((10..=20).contains(&attempts), "exponential backoff over three days: {attempts} attempts");
    })
}

async fn block_list(t: &T) -> Vec<Value> {
    let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
    let (s, v) = t.call(Method::Get, "/v1/admin/endpoints", h, Value::Null, NOW).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.to_string().find("whsec_").is_none(), "no secret in a listing");
    v["endpoints"].as_array().cloned().unwrap_or_default()
}

#[test]
fn bad_endpoint_requests_are_400() {
    block(async {
        let t = T::new();
        for body in [
            json!({"url": "ftp://x"}),
            json!({"url": "http://app.example/hooks"}),
            json!({"url": "http://10.0.0.7/hooks"}),
            json!({"url": "https://x", "events": ["nope"]}),
            json!({"url": "https://x", "events": []}),
            json!({}),
        ] {
            let (s, v) = t.admin("/v1/admin/endpoints", body.clone()).await;
            assert_eq!(s, 400, "{body}: {v}");
        }
        // Plain http only to this machine (a receiver in development).
        for url in ["http://127.0.0.1:9/hooks", "http://localhost:9/hooks", "http://[::1]:9/hooks"] {
            let (s, v) = t.admin("/v1/admin/endpoints", json!({"url": url})).await;
            assert_eq!(s, 201, "{url}: {v}");
        }
    })
}

/// PREMIUM for U1 with 500 `ai_credits` (fewer than 100 left is an alert).
async fn premium_with_500(t: &T) {
    let (s, v) = t.admin("/v1/admin/grants", json!({"user_id": U1, "grants": [{"product": "premium", "tier": "PREMIUM", "source": "promotion",
        "id": "p", "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}],
        "credits": [{"pool": "ai_credits", "amount": 500, "id": "c1"}]})).await;
    assert_eq!(s, 201, "{v}");
}

/// A hold of `quantity` of U1's `ai_credits`.
async fn hold(t: &T, key: &str, quantity: u64, now: i64) -> Value {
    let h = Headers::new()
        .with("authorization", format!("Bearer {}", user_token(U1, ISSUER, now)))
        .with("idempotency-key", key);
    let (s, v) = t.call(Method::Post, "/v1/track", h, json!({"feature": "ai_credits", "quantity": quantity, "hold": true}), now).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn open_rules(t: &T, uid: &str) -> Vec<String> {
    t.app.ctx.store.alerts_of(&Subject::user(uid)).into_iter().filter(|a| a.2).map(|a| a.0).collect()
}

/// A hold of 450 of 500 credits leaves 50, under the catalog's 100: the pool's alert opens,
/// as a charge's does. Releasing the hold gives the 450 back: the level is no longer
/// crossed, so the alert resolves (`alert.resolved`) by the same pool checks a charge
/// applies, and a later crossing opens it again.
#[test]
fn releasing_a_hold_that_crossed_a_pool_threshold_resolves_the_pool_alert() {
    block(async {
        let t = T::new();
        premium_with_500(&t).await;
        t.endpoint().await;
        let v = hold(&t, "render-1", 450, NOW).await;
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 50);
        assert!(open_rules(&t, U1).iter().any(|r| r == "pool:ai_credits:100left"), "{:?}", open_rules(&t, U1));
        let id = v["usage_id"].as_str().expect("usage_id").to_string();
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, NOW + 60)));
        let (s, r) = t.call(Method::Post, &format!("/v1/usage/{id}/release"), h, json!({}), NOW + 60).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 500, "the release gave everything back");
        let open = open_rules(&t, U1);
        assert!(!open.iter().any(|r| r == "pool:ai_credits:100left"), "500 credits left again, the alert must resolve: open {open:?}");
        // A later real crossing is a new alert.
        hold(&t, "render-2", 450, NOW + 120).await;
        assert!(open_rules(&t, U1).iter().any(|r| r == "pool:ai_credits:100left"), "{:?}", open_rules(&t, U1));
        t.deliver(NOW + 180).await;
        let kinds: Vec<(String, String)> = t.got().into_iter().filter(|g| g.3 == "pool:ai_credits:100left").map(|g| (g.1, g.2)).collect();
        let want = |k: &str, st: &str| (k.to_string(), st.to_string());
        assert_eq!(kinds, vec![want("alert.crossed", "crossed"), want("alert.resolved", "resolved"), want("alert.crossed", "crossed")]);
    })
}

/// The same through the scheduled run: a hold nobody captured is given back at its end
/// (`hold_minutes`, 60 by default), and the pool's alert resolves as after a release by
/// the caller.
#[test]
fn the_scheduled_run_releasing_an_expired_hold_resolves_the_pool_alert() {
    block(async {
        let t = T::new();
        premium_with_500(&t).await;
        hold(&t, "render-1", 450, NOW).await;
        assert!(open_rules(&t, U1).iter().any(|r| r == "pool:ai_credits:100left"));
        let out = t.app.scheduled(Timestamp(NOW + 2 * 3600)).await.expect("run");
        assert_eq!(out["released_holds"], 1, "{out}");
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 500);
        let open = open_rules(&t, U1);
        assert!(!open.iter().any(|r| r == "pool:ai_credits:100left"), "500 credits left again, the alert must resolve: open {open:?}");
    })
}

#[derive(Clone, Debug)]
enum Op {
    Use(u64),
    Replay,
    Refold,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Whatever the uses, replays and refolds within a window, each threshold crossed is one
    /// alert, and a new window resolves every one of them exactly once.
    #[test]
    fn exactly_once_per_crossing(ops in proptest::collection::vec(prop_oneof![
        (1u64..700).prop_map(Op::Use), Just(Op::Replay), Just(Op::Refold)], 1..12)) {
        block(async {
            let t = T::new();
            t.premium(U1).await;
            t.endpoint().await;
            let mut used = 0u64;
            let mut n = 0;
            let mut last = 1u64;
            for op in &ops {
                match op {
                    Op::Use(q) => {
                        n += 1;
                        last = *q;
                        let (s, _) = t.track(U1, &format!("k{n}"), *q, NOW).await;
                        if s == 200 { used += q; }
                    }
                    Op::Replay if n > 0 => { t.track(U1, &format!("k{n}"), last, NOW).await; }
                    Op::Replay => {}
                    Op::Refold => { tollgate_worker::webhook::refold(&t.app.ctx, &format!("user:{U1}"), Timestamp(NOW)).await.unwrap(); }
                }
                t.deliver(NOW).await;
            }
            let crossed = [1600u64, 2000].iter().filter(|x| used >= **x).count();
            let got = t.got();
            prop_assert_eq!(got.iter().filter(|g| g.1 == "alert.crossed").count(), crossed);
            let ids: std::collections::BTreeSet<&String> = got.iter().map(|g| &g.0).collect();
            prop_assert_eq!(ids.len(), got.len(), "no message twice");
            t.app.scheduled(Timestamp(NOW + 40 * DAY)).await.unwrap();
            let got = t.got();
            prop_assert_eq!(got.iter().filter(|g| g.1 == "alert.resolved").count(), crossed);
            Ok(())
        })?;
    }
}
