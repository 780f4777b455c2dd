//! `POST /v1/check` and `POST /v1/track` through the worker's own routes on the in-memory
//! store: with the VCM Suite's catalog, the workflow runs a day of a Starter subscriber,
//! replays and reused keys, capabilities, and every bad request's answer; with the
//! Razorpay AI app's, credit pools (free drafts from the first request, AI credits). (The same
//! routes run against PostgreSQL under `wrangler dev` in tests/e2e/track.test.mjs.)

mod common;

use serde_json::{json, Value};

use common::{block, config, user_token, NoNetwork, ADMIN_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;

struct T {
    app: App<NoNetwork, MemoryStore>,
}

impl T {
    fn new() -> T {
        T::with("vcm-suite")
    }

    fn with(catalog: &str) -> T {
        let app = App::with_store(config("http://127.0.0.1:1", "svc", catalog), NoNetwork, MemoryStore::new()).expect("app");
        T { app }
    }

    async fn call(&self, path: &str, headers: Headers, body: Value, now: i64) -> (u16, Value) {
        let req = InRequest { method: Method::Post, path: path.into(), query: String::new(), headers, body: body.to_string().into_bytes() };
        let r = self.app.handle(req, Timestamp(now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    /// A user holding `tier` of the suite (through an operator's grant).
    async fn user(&self, id: &str, tier: Option<&str>) -> String {
        self.app.ctx.store.add_user(id);
        if let Some(tier) = tier {
            let body = json!({"user_id": id, "grants": [{"product": "suite", "tier": tier, "source": "promotion", "id": "t",
                                "valid_from": "2027-01-01T00:00:00Z", "valid_to": "2027-12-31T00:00:00Z"}]});
            let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
            let (status, v) = self.call("/v1/admin/grants", h, body, NOW).await;
            assert_eq!(status, 201, "{v}");
        }
        id.to_string()
    }

    async fn track(&self, uid: &str, key: &str, body: Value, now: i64) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now))).with("idempotency-key", key);
        self.call("/v1/track", h, body, now).await
    }

    async fn check(&self, uid: &str, body: Value, now: i64) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)));
        self.call("/v1/check", h, body, now).await
    }
}

fn runs() -> Value {
    json!({"feature": "workflow_runs_per_day"})
}

const U1: &str = "00000000-0000-4000-8000-000000000001";
const U2: &str = "00000000-0000-4000-8000-000000000002";

#[test]
fn starter_runs_three_workflows_a_day_and_the_fourth_is_refused_with_the_cheapest_upgrade() {
    block(async {
        let t = T::new();
        let u = t.user(U1, Some("starter")).await;
        let (s, c) = t.check(&u, runs(), NOW).await;
        assert_eq!((s, c["allowed"].clone(), c["remaining"].clone()), (200, json!(true), json!(2)), "{c}");
        assert_eq!(c["resets_at"], "2027-01-16T00:00:00Z");
        for (i, left) in [2, 1, 0].into_iter().enumerate() {
            let (s, v) = t.track(&u, &format!("run-{i}"), runs(), NOW + i as i64).await;
            assert_eq!(s, 200, "{v}");
            assert_eq!((v["allowed"].clone(), v["remaining"].clone(), v["replayed"].clone()), (json!(true), json!(left), json!(false)));
            assert!(v["usage_id"].is_string());
        }
        let (s, v) = t.track(&u, "run-3", runs(), NOW + 5).await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(v["error"]["code"], "limit_reached");
        assert_eq!(v["error"]["upgrade"]["offer"], "SUITE_BASIC_MONTHLY");
        // check agrees, and changes nothing
        let (_, c) = t.check(&u, runs(), NOW + 6).await;
        assert_eq!((c["allowed"].clone(), c["used"].clone(), c["reason"].clone()), (json!(false), json!(3), json!("limit_reached")));
        // the next UTC day counts from zero
        let (s, v) = t.track(&u, "run-next-day", runs(), NOW + 14 * 3600).await;
        assert_eq!((s, v["remaining"].clone()), (200, json!(2)), "{v}");
    });
}

#[test]
fn a_key_replays_its_first_answer_and_refuses_another_body() {
    block(async {
        let t = T::new();
        let u = t.user(U1, Some("starter")).await;
        let (_, first) = t.track(&u, "k", runs(), NOW).await;
        let (s, again) = t.track(&u, "k", runs(), NOW + 1).await;
        assert_eq!(s, 200);
        assert_eq!(again["usage_id"], first["usage_id"]);
        assert_eq!(again["replayed"], true);
        let (_, c) = t.check(&u, runs(), NOW + 2).await;
        assert_eq!(c["used"], 1, "a replay counts nothing");
        let (s, v) = t.track(&u, "k", json!({"feature": "workflow_runs_per_day", "quantity": 2}), NOW + 3).await;
        assert_eq!((s, v["error"]["code"].clone()), (409, json!("key_reused")), "{v}");
        // Another user's identical key is another request.
        let other = t.user(U2, Some("starter")).await;
        let (s, v) = t.track(&other, "k", runs(), NOW).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(false)));
    });
}

#[test]
fn capabilities_are_checked_and_refused_with_their_upgrade() {
    block(async {
        let t = T::new();
        let u = t.user(U1, Some("starter")).await;
        let (s, v) = t.track(&u, "ai-1", json!({"feature": "use_ai"}), NOW).await;
        assert_eq!((s, v["error"]["code"].clone()), (403, json!("not_entitled")), "{v}");
        assert!(v["error"]["upgrade"]["offer"].is_string());
        let pro = t.user(U2, Some("pro")).await;
        let (s, v) = t.track(&pro, "ai-1", json!({"feature": "use_ai"}), NOW).await;
        assert_eq!((s, v["allowed"].clone(), v["usage_id"].clone()), (200, json!(true), Value::Null), "{v}");
    });
}

#[test]
fn bad_requests_get_clear_errors() {
    block(async {
        let t = T::new();
        let u = t.user(U1, Some("starter")).await;
        for (body, status, code) in [
            (json!({"feature": "teleport"}), 404, "unknown_feature"),
            (json!({}), 400, "invalid_request"),
            (json!({"feature": "workflow_runs_per_day", "quantity": 0}), 400, "invalid_quantity"),
            (json!({"feature": "workflow_runs_per_day", "quantity": -1}), 400, "invalid_quantity"),
            (json!({"feature": "workflow_runs_per_day", "quantity": "2"}), 400, "invalid_quantity"),
        ] {
            let (s, v) = t.track(&u, "bad", body.clone(), NOW).await;
            assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{body}: {v}");
        }
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(&u, ISSUER, NOW)));
        let (s, v) = t.call("/v1/track", h, runs(), NOW).await;
        assert_eq!((s, v["error"]["code"].clone()), (400, json!("missing_idempotency_key")));
        let (s, _) = t.call("/v1/check", Headers::new(), runs(), NOW).await;
        assert_eq!(s, 401, "no token, no answer");
        let (_, c) = t.check(&u, runs(), NOW).await;
        assert_eq!(c["used"], 0, "nothing was counted");
    });
}

#[test]
fn a_user_who_never_paid_spends_two_free_drafts_and_the_third_is_refused() {
    block(async {
        let t = T::with("razorpay-ai");
        let u = t.user(U1, None).await;
        let drafts = json!({"feature": "free_drafts"});
        let (s, c) = t.check(&u, drafts.clone(), NOW).await;
        assert_eq!((s, c["allowed"].clone(), c["remaining"].clone()), (200, json!(true), json!(1)), "{c}");
        for left in [1, 0] {
            let (s, v) = t.track(&u, &format!("draft-{left}"), drafts.clone(), NOW).await;
            assert_eq!((s, v["allowed"].clone(), v["remaining"].clone()), (200, json!(true), json!(left)), "{v}");
        }
        let (s, v) = t.track(&u, "draft-3", drafts.clone(), NOW).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("insufficient_balance")), "{v}");
        assert_eq!((v["error"]["available"].clone(), v["error"]["required"].clone()), (json!(0), json!(1)));
        // Retrying a spent draft's key replays it; it takes nothing more.
        let (s, v) = t.track(&u, "draft-1", drafts.clone(), NOW).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(true)), "{v}");
        // The free drafts came once: a second look gives none again.
        let (_, c) = t.check(&u, drafts, NOW + 60).await;
        assert_eq!((c["allowed"].clone(), c["remaining"].clone()), (json!(false), json!(0)), "{c}");
    });
}

#[test]
fn ai_credits_are_spent_to_zero_then_refused_with_the_top_up() {
    block(async {
        let t = T::with("razorpay-ai");
        let u = t.user(U1, None).await;
        let ai = |n: u64| json!({"feature": "ai_credits", "quantity": n});
        let (s, v) = t.track(&u, "ai-0", ai(1), NOW).await;
        assert_eq!((s, v["error"]["code"].clone()), (403, json!("not_entitled")), "{v}");
        assert_eq!(v["error"]["upgrade"]["offer"], "AI_CREDITS_TOPUP_500");
        let body = json!({"user_id": u, "credits": [{"pool": "ai_credits", "amount": 5, "id": "welcome"}]});
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        assert_eq!(t.call("/v1/admin/grants", h, body, NOW).await.0, 201);
        let (s, v) = t.track(&u, "ai-1", ai(3), NOW + 1).await;
        assert_eq!((s, v["remaining"].clone()), (200, json!(2)), "{v}");
        let (s, v) = t.track(&u, "ai-2", ai(3), NOW + 2).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("insufficient_balance")), "{v}");
        assert_eq!(v["error"]["upgrade"]["offer"], "AI_CREDITS_TOPUP_500");
        let (s, v) = t.track(&u, "ai-3", ai(2), NOW + 3).await;
        assert_eq!((s, v["remaining"].clone()), (200, json!(0)), "{v}");
        let (_, c) = t.check(&u, ai(1), NOW + 4).await;
        assert_eq!((c["allowed"].clone(), c["reason"].clone()), (json!(false), json!("limit_reached")), "{c}");
    });
}

async fn prefs(t: &T, uid: &str, body: Option<Value>, now: i64) -> (u16, Value) {
    let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)));
    let (method, bytes) = match body {
        Some(b) => (Method::Put, b.to_string().into_bytes()),
        None => (Method::Get, vec![]),
    };
    let req = InRequest { method, path: "/v1/preferences".into(), query: String::new(), headers: h, body: bytes };
    let r = t.app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

#[test]
fn users_set_their_overage_choice_and_bad_choices_are_refused() {
    block(async {
        let t = T::with("video-studio");
        let u = t.user(U1, None).await;
        let (s, v) = prefs(&t, &u, None, NOW).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((v["allow_overages"].clone(), v["overage_limit"].clone(), v["currency"].clone()), (json!(false), json!(10_000), json!("usd")));
        assert_eq!(v["period"]["start"], "2027-01-01T00:00:00Z", "no subscription: the UTC month");
        let (s, v) = prefs(&t, &u, Some(json!({"allow_overages": true, "overage_limit": 2500, "currency": "USD"})), NOW).await;
        assert_eq!((s, v["allow_overages"].clone(), v["overage_limit"].clone()), (200, json!(true), json!(2500)), "{v}");
        for (body, code) in [
            (json!({"allow_overages": true, "overage_limit": -1}), "invalid_overage_limit"),
            (json!({"allow_overages": true, "overage_limit": 1.5}), "invalid_overage_limit"),
            (json!({"allow_overages": true, "overage_limit": 100, "currency": "eur"}), "wrong_currency"),
            (json!({"overage_limit": 100}), "invalid_request"),
        ] {
            let (s, v) = prefs(&t, &u, Some(body.clone()), NOW).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some(code)), "{body}: {v}");
        }
        let (_, v) = prefs(&t, &u, None, NOW).await;
        assert_eq!(v["overage_limit"], 2500, "nothing refused was stored");
        let vcm = T::new();
        let w = vcm.user(U2, None).await;
        assert_eq!(prefs(&vcm, &w, None, NOW).await.0, 404, "no usage pricing, no overage");
    });
}

#[test]
fn the_overage_cap_holds_across_requests_in_a_period_and_resets_in_the_next() {
    block(async {
        let t = T::with("video-studio");
        let u = t.user(U1, None).await;
        let body = json!({"user_id": u, "credits": [{"pool": "video_seconds", "amount": 1, "id": "one"}]});
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        assert_eq!(t.call("/v1/admin/grants", h, body, NOW).await.0, 201);
        // 9 s of overage cost 14 cents and 10 s 15 (1.5 cents a second, rounded up): a cap
        // of 29 covers the first two requests of 10 s, not a third.
        assert_eq!(prefs(&t, &u, Some(json!({"allow_overages": true, "overage_limit": 29})), NOW).await.0, 200);
        let ten = json!({"model": "standard", "quality": "watermark", "seconds": 10});
        let consume = |key: &'static str, now: i64| {
            let h = Headers::new().with("authorization", format!("Bearer {}", user_token(&u, ISSUER, now))).with("idempotency-key", key);
            t.call("/v1/usage/consume", h, ten.clone(), now)
        };
        let (s, v) = consume("r1", NOW).await;
        assert_eq!((s, v["record"]["overage_minor"].clone()), (200, json!(14)), "{v}");
        let (s, v) = consume("r2", NOW + 1).await;
        assert_eq!((s, v["record"]["overage_minor"].clone()), (200, json!(15)), "{v}");
        let (s, v) = consume("r3", NOW + 2).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("overage_limit_exceeded")), "{v}");
        assert_eq!(v["error"]["overage_limit"], 29);
        let (_, p) = prefs(&t, &u, None, NOW + 3).await;
        assert_eq!(p["spent"], 29);
        // February: a new period, a new cap.
        let next = NOW + 31 * 86_400;
        let (s, v) = consume("r4", next).await;
        assert_eq!(s, 200, "{v}");
        let (_, p) = prefs(&t, &u, None, next).await;
        assert_eq!((p["spent"].clone(), p["period"]["start"].clone()), (json!(15), json!("2027-02-01T00:00:00Z")));
    });
}

async fn usage(t: &T, uid: &str, query: &str, now: i64) -> (u16, Value) {
    let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)));
    let req = InRequest { method: Method::Get, path: "/v1/usage".into(), query: query.into(), headers: h, body: vec![] };
    let r = t.app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

#[test]
fn usage_by_day_counts_each_use_once_on_its_utc_day() {
    block(async {
        let t = T::new();
        let u = t.user(U1, Some("starter")).await;
        for i in 0..3 {
            assert_eq!(t.track(&u, &format!("d1-{i}"), runs(), NOW + i).await.0, 200);
        }
        assert_eq!(t.track(&u, "d1-3", runs(), NOW + 9).await.0, 403, "refused: not a use");
        assert_eq!(t.track(&u, "d1-0", runs(), NOW + 10).await.0, 200, "a replay: not a second use");
        assert_eq!(t.track(&u, "d2-0", runs(), NOW + 86_400).await.0, 200);
        let (s, v) = usage(&t, &u, "feature=workflow_runs_per_day&from=2027-01-14&to=2027-01-17", NOW + 86_400).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["days"],
            json!([{"day": "2027-01-15", "units": 3, "uses": 3}, {"day": "2027-01-16", "units": 1, "uses": 1}])
        );
        let (_, v) = usage(&t, &u, "feature=workflow_runs_per_day", NOW + 86_400).await;
        assert_eq!((v["to"].clone(), v["days"].as_array().map(Vec::len)), (json!("2027-01-17T00:00:00Z"), Some(2)), "{v}");
        for (q, code) in [
            ("", "invalid_request"),
            ("feature=use_ai", "not_counted"),
            ("feature=teleport", "unknown_feature"),
            ("feature=workflow_runs_per_day&from=yesterday", "invalid_date"),
            ("feature=workflow_runs_per_day&from=2027-01-17&to=2027-01-15", "invalid_range"),
            ("feature=workflow_runs_per_day&from=2020-01-01&to=2027-01-15", "invalid_range"),
        ] {
            let (s, v) = usage(&t, &u, q, NOW).await;
            assert!(s == 400 || s == 404, "{q}: {s}");
            assert_eq!(v["error"]["code"].as_str(), Some(code), "{q}: {v}");
        }
    });
}

async fn settle(t: &T, uid: &str, usage_id: &str, what: &str, now: i64) -> (u16, Value) {
    let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)));
    t.call(&format!("/v1/usage/{usage_id}/{what}"), h, json!({}), now).await
}

#[test]
fn a_hold_takes_credits_at_once_and_gives_back_exactly_what_it_took_unless_captured() {
    block(async {
        let t = T::with("razorpay-ai");
        let u = t.user(U1, None).await;
        let body = json!({"user_id": u, "credits": [{"pool": "ai_credits", "amount": 5, "id": "welcome"}]});
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        assert_eq!(t.call("/v1/admin/grants", h, body, NOW).await.0, 201);
        let hold = |n: u64| json!({"feature": "ai_credits", "quantity": n, "hold": true});
        let balance = || async { t.check(&u, json!({"feature": "ai_credits"}), NOW + 10).await.1["limit"].clone() };

        let (s, v) = t.track(&u, "h1", hold(3), NOW).await;
        assert_eq!((s, v["remaining"].clone(), v["record"]["status"].clone()), (200, json!(2), json!("held")), "{v}");
        assert_eq!(v["hold_until"], "2027-01-15T11:00:00Z", "the default hour");
        let id1 = v["usage_id"].as_str().unwrap().to_string();
        assert_eq!(balance().await, json!(2), "held credits count against the balance at once");
        let (s, r) = settle(&t, &u, &id1, "release", NOW + 1).await;
        assert_eq!((s, r["status"].clone(), r["replayed"].clone()), (200, json!("released"), json!(false)), "{r}");
        assert_eq!(balance().await, json!(5), "a release gives back exactly what the hold took");
        assert_eq!(settle(&t, &u, &id1, "release", NOW + 2).await.1["replayed"], true);
        let (s, r) = settle(&t, &u, &id1, "capture", NOW + 2).await;
        assert_eq!((s, r["error"]["code"].clone()), (409, json!("released")), "{r}");

        let (_, v) = t.track(&u, "h2", hold(2), NOW + 3).await;
        let id2 = v["usage_id"].as_str().unwrap().to_string();
        assert_eq!(settle(&t, &u, &id2, "capture", NOW + 4).await.0, 200);
        let (s, r) = settle(&t, &u, &id2, "release", NOW + 5).await;
        assert_eq!((s, r["error"]["code"].clone()), (409, json!("not_held")), "a captured hold is final: {r}");
        assert_eq!(balance().await, json!(3));

        // A hold nobody captures is released by the scheduled run once its hour is over.
        let (_, v) = t.track(&u, "h3", hold(3), NOW + 6).await;
        let id3 = v["usage_id"].as_str().unwrap().to_string();
        assert_eq!(balance().await, json!(0));
        let report = t.app.scheduled(Timestamp(NOW + 30 * 60)).await.unwrap();
        assert_eq!(report["released_holds"], 0, "not yet: {report}");
        // Its hour is over: a capture now is too late, whether or not the run came yet.
        let (s, r) = settle(&t, &u, &id3, "capture", NOW + 60 * 60 + 6).await;
        assert_eq!((s, r["error"]["code"].clone()), (409, json!("hold_expired")), "{r}");
        let report = t.app.scheduled(Timestamp(NOW + 61 * 60 + 6)).await.unwrap();
        assert_eq!(report["released_holds"], 1, "{report}");
        assert_eq!(balance().await, json!(3));
        assert_eq!(settle(&t, &u, &id3, "release", NOW + 62 * 60).await.1["replayed"], true);

        // Only credits are held; someone else's usage, or none at all, is 404.
        let (s, v) = t.track(&u, "h4", json!({"feature": "ai_generation", "hold": true}), NOW).await;
        assert!(s == 400 || s == 404, "{v}");
        let other = t.user(U2, None).await;
        assert_eq!(settle(&t, &other, &id2, "release", NOW).await.0, 404);
        assert_eq!(settle(&t, &u, "not-a-uuid", "release", NOW).await.0, 404);
    });
}

#[test]
fn one_scheduled_run_releases_every_expired_hold_past_the_first_page() {
    block(async {
        let mut t = T::with("razorpay-ai");
        // 501 releases are more than Workers Free's 50 subrequests: on Workers Paid's.
        t.app.ctx.config.subrequests = common::PAID;
        let u = t.user(U1, None).await;
        let body = json!({"user_id": u, "credits": [{"pool": "ai_credits", "amount": 1000, "id": "welcome"}]});
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        assert_eq!(t.call("/v1/admin/grants", h, body, NOW).await.0, 201);
        // More holds than one page of the run's query (500) end at the same moment.
        for i in 0..501 {
            let (s, v) = t.track(&u, &format!("h{i}"), json!({"feature": "ai_credits", "quantity": 1, "hold": true}), NOW).await;
            assert_eq!(s, 200, "{v}");
        }
        let balance = || async { t.check(&u, json!({"feature": "ai_credits"}), NOW + 2 * 60 * 60).await.1["limit"].clone() };
        assert_eq!(balance().await, json!(499));
        let report = t.app.scheduled(Timestamp(NOW + 2 * 60 * 60)).await.unwrap();
        assert_eq!(report["released_holds"], 501, "every expired hold, not only the first page: {report}");
        assert_eq!(balance().await, json!(1000));
    });
}

#[test]
fn exports_are_full_watermarked_or_refused_by_plan() {
    block(async {
        let t = T::new();
        let t = &t;
        let call = |uid: String| {
            let h = Headers::new().with("authorization", format!("Bearer {}", user_token(&uid, ISSUER, NOW)));
            async move { t.call("/v1/export", h, json!({}), NOW).await }
        };
        let none = t.user(U1, None).await;
        let (s, v) = call(none).await;
        assert_eq!((s, v["error"]["code"].clone(), v["error"]["message"].clone()), (403, json!("upgrade_required"), json!("Upgrade to export.")), "{v}");
        assert!(v["error"]["upgrade"]["offer"].is_string(), "{v}");
        let starter = t.user(U2, Some("starter")).await;
        assert_eq!(call(starter).await.1["policy"], "watermarked");
        let basic = t.user("00000000-0000-4000-8000-000000000003", Some("basic")).await;
        assert_eq!(call(basic).await.1["policy"], "full");
    });
}

#[test]
fn an_operators_credit_sent_again_a_second_later_is_the_same_credit() {
    block(async {
        let t = T::with("razorpay-ai");
        let uid = t.user("8d0fd2b3-9ca7-4d9e-a95f-9e13dded3301", None).await;
        let h = || Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        let credit = |amount: i64| json!({"user_id": uid, "credits": [{"pool": "ai_credits", "amount": amount, "id": "comp-1"}]});
        for at in [NOW, NOW + 1, NOW + 3600] {
            let (status, v) = t.call("/v1/admin/grants", h(), credit(120), at).await;
            assert_eq!(status, 201, "sent at {at}: {v}");
        }
        let (status, v) = t.call("/v1/admin/grants", h(), credit(999), NOW + 2).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("already_granted")), "{v}");
        let (status, v) = t.check(&uid, json!({"feature": "ai_credits"}), NOW + 5).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["limit"], json!(120), "given once: {v}");
    });
}
