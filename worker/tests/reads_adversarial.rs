//! The signed-in read routes and the small settings routes attacked: `GET /v1/entitlements`
//! (the signed snapshot, verified with the core's verifier as the package does), `GET
//! /v1/usage` (hostile query strings), `GET`/`PUT /v1/preferences` (bad values, repeated
//! and interleaved changes) and `POST /v1/export`, on the in-memory store and on the
//! `Gated` store that fails or interleaves any of its calls.

mod common;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use serde_json::{json, Value};

use common::{block, config, hmac, now_or_never, stripe_taken, user_token, Between, FailNext, Gated, NoNetwork, ADMIN_SECRET, STRIPE_SECRET};
use tollgate::snapshot::{parse_public_key, verify_for_subject, Snapshot, SnapshotError};
use tollgate::time::Timestamp;
use tollgate::Catalog;
use tollgate_worker::app::App;
use tollgate_worker::http::{AppResponse, Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::Store;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000d1";
const U2: &str = "00000000-0000-4000-8000-0000000000d2";
const ORG_A: &str = "00000000-0000-4000-8000-0000000000a1";
const ORG_B: &str = "00000000-0000-4000-8000-0000000000b1";

// ------------------------------------------------------------------ helpers

fn app_on<S: Store>(catalog: &str, store: S, ttl: i64) -> App<NoNetwork, S> {
    let mut c = config("http://127.0.0.1:1", "svc", catalog);
    c.snapshot_secret = Some([9u8; 32]);
    c.snapshot_ttl_secs = ttl;
    App::with_store(c, NoNetwork, store).expect("app")
}

fn memory(catalog: &str) -> App<NoNetwork, MemoryStore> {
    let app = app_on(catalog, MemoryStore::new(), 3600);
    app.ctx.store.add_user(U1);
    app.ctx.store.add_user(U2);
    app
}

fn bearer(uid: &str, now: i64) -> Headers {
    Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)))
}

fn admin() -> Headers {
    Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"))
}

async fn send<S: Store>(app: &App<NoNetwork, S>, method: Method, path: &str, h: Headers, body: Vec<u8>, now: i64) -> AppResponse {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path.to_string(), String::new()),
    };
    app.handle(InRequest { method, path, query, headers: h, body }, Timestamp(now)).await
}

fn json_of(r: &AppResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

async fn get<S: Store>(app: &App<NoNetwork, S>, uid: &str, path: &str, now: i64) -> (u16, Value) {
    let r = send(app, Method::Get, path, bearer(uid, now), vec![], now).await;
    (r.status, json_of(&r))
}

async fn put_prefs<S: Store>(app: &App<NoNetwork, S>, uid: &str, body: &str, now: i64) -> (u16, Value) {
    let r = send(app, Method::Put, "/v1/preferences", bearer(uid, now), body.as_bytes().to_vec(), now).await;
    (r.status, json_of(&r))
}

async fn admin_grants<S: Store>(app: &App<NoNetwork, S>, body: Value, now: i64) {
    let r = send(app, Method::Post, "/v1/admin/grants", admin(), body.to_string().into_bytes(), now).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

async fn track<S: Store>(app: &App<NoNetwork, S>, uid: &str, key: &str, body: Value, now: i64) -> (u16, Value) {
    let h = bearer(uid, now).with("idempotency-key", key);
    let r = send(app, Method::Post, "/v1/track", h, body.to_string().into_bytes(), now).await;
    (r.status, json_of(&r))
}

/// A promotion of the suite's `tier` to `uid` over all of 2027.
fn suite(uid: &str, tier: &str) -> Value {
    json!({"user_id": uid, "grants": [{"product": "suite", "tier": tier, "source": "promotion", "id": "p",
            "valid_from": "2027-01-01T00:00:00Z", "valid_to": "2027-12-31T00:00:00Z"}]})
}

/// The snapshot of `GET /v1/entitlements` verified as the package does: with the key the
/// worker publishes, for the signed-in subject, at `now`.
fn verified(v: &Value, uid: &str, now: i64) -> Result<Snapshot, SnapshotError> {
    let key = parse_public_key(v["public_key"].as_str().expect("public_key")).expect("a key");
    verify_for_subject(v["token"].as_str().expect("token"), &[(v["kid"].as_str().expect("kid"), key)], &format!("user:{uid}"), Timestamp(now))
}

async fn snapshot<S: Store>(app: &App<NoNetwork, S>, uid: &str, now: i64) -> Snapshot {
    let (s, v) = get(app, uid, "/v1/entitlements", now).await;
    assert_eq!(s, 200, "{v}");
    let snap = verified(&v, uid, now).unwrap_or_else(|e| panic!("{e}: {v}"));
    // What the body shows is what is signed.
    assert_eq!(serde_json::to_value(&snap).unwrap(), v["snapshot"], "the body's snapshot is the signed one");
    snap
}

/// An error answer that says nothing of the store: a JSON error with a known code and a
/// message with no table, call or SQL in it.
fn assert_store_error_says_nothing(s: u16, v: &Value, what: &str) {
    assert!(s == 503 || s == 500, "{what}: {s} {v}");
    let code = v["error"]["code"].as_str().unwrap_or("");
    assert!(code == "store_unavailable" || code == "store_error", "{what}: {v}");
    let text = v.to_string();
    for leak in ["failed", "rpc", "tollgate_", "select", "usage_records", "relation"] {
        assert!(!text.contains(leak), "{what}: the body shows `{leak}`: {v}");
    }
}




fn gated(catalog: &str) -> App<NoNetwork, Gated<FailNext>> {
    let app = app_on(catalog, Gated { inner: MemoryStore::new(), gate: FailNext::default() }, 3600);
    app.ctx.store.inner.add_user(U1);
    app.ctx.store.inner.add_user(U2);
    app
}

// ------------------------------------------------------------------ GET /v1/entitlements

/// The snapshot verifies with the core's verifier and the published key, says exactly what
/// the store holds (the grant, the balance), is issued now and expires after exactly
/// `SNAPSHOT_TTL_SECONDS` (valid the second before, expired at it); and it is refused for
/// another subject.
#[test]
fn the_snapshot_verifies_and_says_exactly_what_the_store_holds() {
    block(async {
        let app = app_on("video-studio", MemoryStore::new(), 900);
        app.ctx.store.add_user(U1);
        admin_grants(&app, json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 600, "id": "c1"}],
            "grants": [{"product": "video", "tier": "pro", "source": "promotion", "id": "g",
                        "valid_from": "2027-01-01T00:00:00Z", "valid_to": "2027-06-01T00:00:00Z"}]}), NOW - 10).await;
        let (s, v) = get(&app, U1, "/v1/entitlements", NOW).await;
        assert_eq!(s, 200, "{v}");
        let snap = verified(&v, U1, NOW).expect("verifies");
        assert_eq!(snap.issued_at, Timestamp(NOW));
        assert_eq!(snap.expires_at, Timestamp(NOW + 900), "the TTL: {v}");
        assert_eq!(snap.catalog_id, "video-studio");
        assert_eq!(snap.grants.len(), 1, "{:?}", snap.grants);
        let g = &snap.grants[0];
        assert_eq!((g.product.as_str(), g.tier.as_str()), ("video", "pro"));
        assert_eq!(g.valid_to, Some(Timestamp::parse("2027-06-01T00:00:00Z").unwrap()));
        let stored = app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        assert_eq!(stored, 600);
        assert_eq!(serde_json::to_value(&snap.balances).unwrap()["video_seconds"], json!(stored), "{v}");
        // The last second it is valid, and the first it is not.
        assert!(verified(&v, U1, NOW + 899).is_ok());
        assert!(matches!(verified(&v, U1, NOW + 900), Err(SnapshotError::Expired { .. })));
        // Another user's token is not this one.
        assert!(matches!(verified(&v, U2, NOW), Err(SnapshotError::WrongSubject { .. })));
    })
}

/// A credit that ends before the TTL ends the snapshot with it (its balance would be
/// wrong after); one that ended exactly now counts nothing and shortens nothing.
#[test]
fn a_credit_ending_within_the_ttl_ends_the_snapshot_then_and_not_one_second_later() {
    block(async {
        let app = memory("video-studio");
        let ends = Timestamp(NOW + 100).to_rfc3339();
        admin_grants(&app, json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 60, "id": "short", "valid_to": ends}]}), NOW - 10).await;
        let snap = snapshot(&app, U1, NOW).await;
        assert_eq!(snap.expires_at, Timestamp(NOW + 100));
        assert_eq!(serde_json::to_value(&snap.balances).unwrap()["video_seconds"], json!(60));
        // A second before the end: still 60, a one-second snapshot.
        let snap = snapshot(&app, U1, NOW + 99).await;
        assert_eq!(snap.expires_at, Timestamp(NOW + 100));
        // At the end: nothing of it counts, and the snapshot lasts the whole TTL.
        let snap = snapshot(&app, U1, NOW + 100).await;
        assert_eq!(snap.expires_at, Timestamp(NOW + 100 + 3600));
        let b = serde_json::to_value(&snap.balances).unwrap();
        assert!(b["video_seconds"].is_null() || b["video_seconds"] == 0, "an ended credit is still counted: {b}");
    })
}

/// A user with no rows at all (never paid, never granted; known to the database or not)
/// gets a valid signed snapshot of nothing, never a 5xx; the free credits of a catalog
/// that gives them are in it for a known user.
#[test]
fn a_user_with_no_rows_gets_a_valid_snapshot_of_nothing() {
    block(async {
        for catalog in ["vcm-suite", "video-studio", "org-seats", "razorpay-ai"] {
            let app = memory(catalog);
            let stranger = "00000000-0000-4000-8000-0000000000ee";
            for uid in [U1, stranger] {
                let (s, v) = get(&app, uid, "/v1/entitlements", NOW).await;
                assert_eq!(s, 200, "{catalog} {uid}: {v}");
                let snap = verified(&v, uid, NOW).unwrap_or_else(|e| panic!("{catalog} {uid}: {e}"));
                assert!(snap.grants.is_empty() && snap.organizations.is_empty(), "{catalog}: {v}");
                assert_eq!(snap.expires_at, Timestamp(NOW + 3600), "{catalog}: {v}");
            }
            if catalog == "razorpay-ai" {
                let snap = snapshot(&app, U1, NOW + 1).await;
                assert_eq!(serde_json::to_value(&snap.balances).unwrap()["free_drafts"], json!(2), "the free drafts");
            }
        }
    })
}

/// A member of one organization sees that organization (its grants, its role, no seat)
/// and nothing of another organization; without a seat no grant of its plan is lent into
/// the member's own grants.
#[test]
fn an_org_member_sees_its_organization_and_nothing_of_another() {
    block(async {
        let app = memory("org-seats");
        for org in [ORG_A, ORG_B] {
            app.ctx.store.add_org(org);
            admin_grants(&app, json!({"organization_id": org, "grants": [{"product": "org", "tier": "BUSINESS", "source": "promotion",
                "id": format!("g-{org}"), "valid_from": "2027-01-01T00:00:00Z", "valid_to": "2027-12-31T00:00:00Z"}]}), NOW - 10).await;
        }
        app.ctx.store.add_member(ORG_A, U1, "member");
        app.ctx.store.add_member(ORG_B, U2, "owner");
        let (s, v) = get(&app, U1, "/v1/entitlements", NOW).await;
        assert_eq!(s, 200, "{v}");
        let snap = verified(&v, U1, NOW).expect("verifies");
        let orgs = &v["snapshot"]["organizations"];
        assert_eq!(snap.organizations.len(), 1, "{orgs}");
        let text = orgs.to_string();
        assert!(text.contains(ORG_A) && !text.contains(ORG_B), "{orgs}");
        assert!(text.contains(&format!("g-{ORG_A}")) || orgs[0]["grants"].as_array().is_some_and(|g| !g.is_empty()), "{orgs}");
        assert!(snap.grants.is_empty(), "no seat, nothing lent: {:?}", snap.grants);
    })
}

/// `GET /v1/entitlements` failing at any store call it makes is a 5xx that says nothing of
/// the store, and the next request answers the snapshot a store that never failed gives.
#[test]
fn entitlements_failing_at_any_store_call_is_5xx_then_answers_whole() {
    for catalog in ["razorpay-ai", "video-studio"] {
        for call in ["subject_state", "user_organizations", "fold_input", "apply_fold"] {
            block(async {
                let app = gated(catalog);
                admin_grants(&app, json!({"user_id": U2, "credits": [{"pool": if catalog == "razorpay-ai" { "ai_credits" } else { "video_seconds" },
                    "amount": 50, "id": "c"}]}), NOW - 10).await;
                app.ctx.store.fail(call, 1);
                let (s, v) = get(&app, U1, "/v1/entitlements", NOW).await;
                if s != 200 {
                    assert_store_error_says_nothing(s, &v, &format!("{catalog} {call}"));
                }
                let snap = snapshot(&app, U1, NOW + 1).await;
                let want = if catalog == "razorpay-ai" { json!({"free_drafts": 2}) } else { json!({}) };
                let b = serde_json::to_value(&snap.balances).unwrap();
                let b: serde_json::Map<String, Value> = b.as_object().cloned().unwrap_or_default().into_iter().filter(|(_, n)| n != &json!(0)).collect();
                assert_eq!(Value::Object(b), want, "{catalog} {call}");
            });
        }
    }
}

/// `uid` buys Video Studio's 30-minute pack (1800 seconds) as checkout `cs_<n>`.
fn pack(n: &str, uid: &str, at: i64) -> Value {
    json!({
        "id": format!("evt_cs_{n}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
        "type": "checkout.session.completed", "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("cs_{n}"), "object": "checkout.session", "mode": "payment", "status": "complete",
            "payment_status": "paid", "customer": format!("cus_{n}"), "subscription": null,
            "payment_intent": format!("pi_{n}"), "client_reference_id": uid,
            "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN"}, "amount_total": 1900, "currency": "usd", "created": at,
        }},
    })
}

/// A user who paid before signing up sees the purchase at their first request (README:
/// "so the purchase shows at its first request rather than at the next scheduled run").
/// When that first request fails on the store (a 503, which the browser retries), the
/// retry must still show it: the fold on first sight is not spent by a request that failed.
#[test]
fn a_failed_first_request_does_not_spend_the_fold_that_shows_a_purchase_made_before_sign_up() {
    // "none": the same story with a store that never fails (the control).
    for call in ["none", "fold_input", "apply_fold"] {
        block(async {
            let app = app_on("video-studio", Gated { inner: MemoryStore::new(), gate: FailNext::default() }, 3600);
            let late = "00000000-0000-4000-8000-0000000000f1";
            stripe_taken(&app, &pack("early", late, NOW - 60), NOW - 50).await;
            app.ctx.store.inner.add_user(late);
            if call != "none" {
                app.ctx.store.fail(call, 1);
                let (s, v) = get(&app, late, "/v1/entitlements", NOW).await;
                assert_store_error_says_nothing(s, &v, call);
            }
            let snap = snapshot(&app, late, NOW + 5).await;
            let b = serde_json::to_value(&snap.balances).unwrap();
            assert_eq!(b["video_seconds"], json!(1800), "{call}: the retry does not show the pack bought before sign-up: {b}");
        });
    }
}

// ---- grandfathered terms (the VCM Suite, version 1 then 2), as worker/tests/grandfather.rs

fn envelope(id: &str, ty: &str, at: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
           "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
           "data": {"object": object}})
}

fn subscribed(uid: &str, tag: &str, start: i64, end: i64) -> [Value; 2] {
    [
        envelope(&format!("evt_cs_{tag}"), "checkout.session.completed", start,
            json!({"id": format!("cs_{tag}"), "object": "checkout.session", "mode": "subscription", "status": "complete",
                   "payment_status": "paid", "customer": format!("cus_{tag}"), "subscription": format!("sub_{tag}"),
                   "client_reference_id": uid, "metadata": {"offer_key": "SUITE_BASIC_MONTHLY"},
                   "amount_total": 2900, "currency": "usd", "created": start})),
        envelope(&format!("evt_in_{tag}_1"), "invoice.paid", start,
            json!({"id": format!("in_{tag}_1"), "object": "invoice", "customer": format!("cus_{tag}"), "status": "paid",
                   "amount_due": 2900, "amount_paid": 2900, "amount_remaining": 0, "attempt_count": 1, "currency": "usd", "created": start,
                   "parent": {"type": "subscription_details", "subscription_details": {"subscription": format!("sub_{tag}"), "metadata": {}}},
                   "lines": {"object": "list", "data": [{"id": "il_1", "object": "line_item", "amount": 2900, "currency": "usd",
                       "quantity": 1, "period": {"start": start, "end": end},
                       "pricing": {"type": "price_details", "price_details": {"price": "price_vcm_basic_monthly", "product": "prod_x"}}}]}})),
    ]
}

fn v1() -> Value {
    let c = tollgate_worker::ctx::embedded_catalog("vcm-suite").expect("embedded");
    serde_json::from_str(&c.to_json()).unwrap()
}

/// Version 2: `heavy_tools` needs Pro; Basic's older subscribers keep their terms.
fn v2() -> Value {
    let mut doc = v1();
    for c in doc["capabilities"].as_array_mut().unwrap() {
        if c["id"] == "heavy_tools" {
            c["min_tier"] = json!("pro");
        }
    }
    for o in doc["offers"].as_array_mut().unwrap() {
        if o["key"] == "SUITE_BASIC_MONTHLY" {
            o["price"]["amount"] = json!(3900);
            o["migration"] = json!("keep");
        }
    }
    Catalog::from_json(&doc.to_string()).expect("v2 is valid");
    doc
}

async fn stripe_at<S: Store>(app: &App<NoNetwork, S>, ev: &Value, now: i64) {
    let payload = ev.to_string();
    let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{payload}")));
    let h = Headers::new().with("stripe-signature", format!("t={now},v1={sig}"));
    let r = send(app, Method::Post, "/webhooks/stripe", h, payload.into_bytes(), now).await;
    assert_eq!((r.status, json_of(&r)["status"].as_str()), (200, Some("applied")), "{}", String::from_utf8_lossy(&r.body));
}

/// A Basic subscriber who bought under version 1 keeps `heavy_tools` under version 2, and
/// its snapshot carries version 1's terms so the browser decides the same. When the store
/// cannot give version 1 just then, the worker must not sign, for a whole TTL, a snapshot
/// that decides the subscriber under version 2's terms (the browser would refuse
/// `heavy_tools` for an hour while `/v1/check` allows it a second later): a 5xx, or a
/// snapshot with the terms.
#[test]
fn a_snapshot_is_not_signed_without_the_terms_the_store_could_not_give() {
    block(async {
        let app = gated("vcm-suite");
        assert_eq!(app.ctx.store.inner.push_catalog(v1(), true), 1);
        for e in subscribed(U1, "old", NOW - 20 * DAY, NOW + 10 * DAY) {
            stripe_at(&app, &e, NOW - 60).await;
        }
        assert_eq!(app.ctx.store.inner.push_catalog(v2(), true), 2);
        let r = send(&app, Method::Get, "/v1/catalog", Headers::new(), vec![], NOW - 30).await;
        assert_eq!(r.status, 200);
        assert_eq!(app.ctx.store.inner.version_reads.get(), 0, "version 1 is not cached yet");
        app.ctx.store.fail("catalog_version", u32::MAX);
        let (s, v) = get(&app, U1, "/v1/entitlements", NOW).await;
        app.ctx.store.fail("catalog_version", 0);
        if s != 200 {
            assert_store_error_says_nothing(s, &v, "catalog_version");
        } else {
            let snap = verified(&v, U1, NOW).expect("verifies");
            let active = Catalog::from_json(&v2().to_string()).unwrap().with_version(2);
            let ents = snap.entitlements(&active).unwrap();
            let browser = tollgate::decide::can(&snap.catalog(&active), &ents, "heavy_tools", Timestamp(NOW)).unwrap();
            assert!(
                browser.allowed,
                "signed until {} without version 1's terms ({}): the browser refuses heavy_tools the subscriber holds",
                snap.expires_at,
                v["snapshot"]["terms"]
            );
        }
        // Once the store answers, the snapshot carries the terms.
        let snap = snapshot(&app, U1, NOW + 1).await;
        assert_eq!(snap.terms.len(), 1, "{:?}", snap.terms);
    })
}

// ------------------------------------------------------------------ GET /v1/usage

/// Three workflow runs of a Starter subscriber on 2027-01-15 (NOW) and one on the 16th.
async fn runs_on_two_days(app: &App<NoNetwork, MemoryStore>) {
    admin_grants(app, suite(U1, "starter"), NOW - 10).await;
    for i in 0..3 {
        assert_eq!(track(app, U1, &format!("a{i}"), json!({"feature": "workflow_runs_per_day"}), NOW + i).await.0, 200);
    }
    assert_eq!(track(app, U1, "b0", json!({"feature": "workflow_runs_per_day"}), NOW + DAY).await.0, 200);
}

const DAY15: &str = r#"{"day":"2027-01-15","units":3,"uses":3}"#;
const DAY16: &str = r#"{"day":"2027-01-16","units":1,"uses":1}"#;

fn days(v: &Value) -> String {
    v["days"].to_string()
}

/// README: "`from` and `to` are dates (`2027-01-31`, whole UTC days)". A date names a
/// whole UTC day, so `from=D&to=D` is that day (today 400 `invalid_range`), and `to=` today's
/// date counts today as the default range does (today it stops at today's first instant).
/// (A judgement call on the README's wording: `to` is read as an exclusive instant.)
#[test]
fn a_date_given_as_to_is_a_whole_utc_day() {
    block(async {
        let app = memory("vcm-suite");
        runs_on_two_days(&app).await;
        let at = NOW + DAY + 60;
        let (s, v) = get(&app, U1, "/v1/usage?feature=workflow_runs_per_day", at).await;
        assert_eq!((s, days(&v)), (200, format!("[{DAY15},{DAY16}]")), "the default counts today");
        let (s, v) = get(&app, U1, "/v1/usage?feature=workflow_runs_per_day&from=2027-01-15&to=2027-01-16", at).await;
        assert_eq!((s, days(&v)), (200, format!("[{DAY15},{DAY16}]")), "to = today's date should count today as the default does: {v}");
        let (s, v) = get(&app, U1, "/v1/usage?feature=workflow_runs_per_day&from=2027-01-15&to=2027-01-15", at).await;
        assert_eq!((s, days(&v)), (200, format!("[{DAY15}]")), "one day, from = to: {v}");
    })
}

/// Instants with offsets are the same instants as in UTC (the `+` percent-encoded, as a
/// query must carry it); an instant without a zone and odd formats are 400 `invalid_date`;
/// percent-encoded names and values are read; nothing here is a 5xx.
#[test]
fn usage_reads_offsets_and_refuses_what_is_no_date() {
    block(async {
        let app = memory("vcm-suite");
        runs_on_two_days(&app).await;
        let at = NOW + DAY + 60;
        // 10:00:00Z is 05:00:00-05:00 and 15:30:00+05:30: the three runs at 10:00:00..02 are in from 10:00:00Z.
        for q in [
            "from=2027-01-15T10:00:00Z&to=2027-01-15T10:00:03Z",
            "from=2027-01-15T05:00:00-05:00&to=2027-01-15T05:00:03-05:00",
            "from=2027-01-15T15:30:00%2B05:30&to=2027-01-15T15:30:03%2B05:30",
            "%66rom=2027-01-15T10%3A00%3A00Z&t%6F=2027-01-15T10:00:03Z",
        ] {
            let (s, v) = get(&app, U1, &format!("/v1/usage?feature=workflow%5Fruns%5Fper%5Fday&{q}"), at).await;
            assert_eq!((s, days(&v)), (200, format!("[{DAY15}]")), "{q}: {v}");
        }
        // A second earlier start misses nothing; a second later one misses the first run.
        let (_, v) = get(&app, U1, "/v1/usage?feature=workflow_runs_per_day&from=2027-01-15T10:00:01Z&to=2027-01-15T10:00:03Z", at).await;
        assert_eq!(days(&v), r#"[{"day":"2027-01-15","units":2,"uses":2}]"#);
        let mut wrong = Vec::new();
        for bad in [
            "from=2027-01-15T10:00:00",
            "from=2027-1-15",
            "from=2027-02-30",
            "from=15/01/2027",
            "from=2027-01-15T25:00:00Z",
            "from=%zz",
            "from=",
            "to=2027-01-15T10:00:00%2B24:00",
            "from=%E2%80%8B2027-01-15",
            "from=2027-01-15%00",
        ] {
            let (s, v) = get(&app, U1, &format!("/v1/usage?feature=workflow_runs_per_day&{bad}"), at).await;
            if (s, v["error"]["code"].as_str()) != (400, Some("invalid_date")) {
                wrong.push(format!("{bad}: {s} from {} to {}", v["from"], v["to"]));
            }
        }
        assert!(wrong.is_empty(), "answered, not refused 400 invalid_date: {wrong:#?}");
    })
}

/// README: `from` and `to` are "dates (`2027-01-31`) or RFC 3339 instants". A bare number
/// is neither; today one of 10 digits (every Unix time of this era) is refused while one of
/// 9 or 11 is read as Unix seconds (a judgement call: either refuse them all or read them
/// all, not by their length).
#[test]
fn a_bare_number_as_a_date_is_read_the_same_whatever_its_length() {
    block(async {
        let app = memory("vcm-suite");
        runs_on_two_days(&app).await;
        let at = NOW + DAY + 60;
        let mut answers = Vec::new();
        for q in ["from=1799990000&to=1800010000", "from=999990000&to=999999999", "from=10000000000&to=10000086400"] {
            let (s, v) = get(&app, U1, &format!("/v1/usage?feature=workflow_runs_per_day&{q}"), at).await;
            answers.push((q, s, v["error"]["code"].clone()));
        }
        let first = (answers[0].1, answers[0].2.clone());
        assert!(
            answers.iter().all(|(_, s, c)| (*s, c.clone()) == first),
            "bare numbers are read or refused by their length: {answers:?}"
        );
    })
}

/// A parameter given twice (`feature=a&feature=b`, `to=..&to=..`) is ambiguous: readers
/// disagree on which counts (the worker reads the first well-formed one, a proxy or a log
/// may show the last); as the admin routes refuse a repeated field, a repeated parameter
/// should be a 400, not a guess. (A judgement call.)
#[test]
fn a_repeated_query_parameter_is_refused_not_guessed() {
    block(async {
        let app = memory("vcm-suite");
        runs_on_two_days(&app).await;
        let at = NOW + DAY + 60;
        for q in [
            "feature=workflow_runs_per_day&feature=teleport",
            "feature=workflow_runs_per_day&from=2027-01-15&from=2026-01-01",
            "feature=workflow_runs_per_day&to=2027-01-16&to=2027-01-17",
            // The first is malformed and skipped: the second is read silently.
            "feature=%zz&feature=workflow_runs_per_day",
        ] {
            let (s, v) = get(&app, U1, &format!("/v1/usage?{q}"), at).await;
            assert_eq!(s, 400, "{q}: {v}");
        }
    })
}

/// `%` must be followed by two hex digits: `%+1` is no escape (Rust's `from_str_radix`
/// takes a leading `+`), so a value holding it is malformed, not the byte 0x01.
#[test]
fn a_percent_escape_with_a_sign_is_malformed() {
    for query in ["x=%+1", "x=a%+Fb", "x=%-1"] {
        let r = InRequest { method: Method::Get, path: "/".into(), query: query.into(), headers: Headers::new(), body: vec![] };
        assert_eq!(r.query_param("x"), None, "{query} decodes to {:?}", r.query_param("x"));
    }
}

/// Ranges: exactly 366 days is answered, a second more is refused; `from` = `to` as
/// instants and reversed ranges are 400; dates at the ends of what the core reads (year
/// 0000, 9999) are answered or refused with a 400, never a 5xx or a panic.
#[test]
fn usage_ranges_at_their_limits_and_at_the_ends_of_time() {
    block(async {
        let app = memory("vcm-suite");
        runs_on_two_days(&app).await;
        let at = NOW + DAY + 60;
        let q = |from: &str, to: &str| format!("/v1/usage?feature=workflow_runs_per_day&from={from}&to={to}");
        let (s, v) = get(&app, U1, &q("2026-01-17T00:00:00Z", "2027-01-18T00:00:00Z"), at).await;
        assert_eq!((s, days(&v)), (200, format!("[{DAY15},{DAY16}]")), "366 days: {v}");
        let (s, v) = get(&app, U1, &q("2026-01-16T23:59:59Z", "2027-01-18T00:00:00Z"), at).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_range")), "{v}");
        for (from, to) in [("2027-01-15T10:00:00Z", "2027-01-15T10:00:00Z"), ("2027-01-16", "2027-01-15"), ("9999-12-31", "0000-01-01")] {
            let (s, v) = get(&app, U1, &q(from, to), at).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_range")), "{from}..{to}: {v}");
        }
        for path in [
            "/v1/usage?feature=workflow_runs_per_day&to=0000-01-01",
            "/v1/usage?feature=workflow_runs_per_day&to=0000-01-02T00:00:00Z",
            "/v1/usage?feature=workflow_runs_per_day&from=9999-12-31",
            "/v1/usage?feature=workflow_runs_per_day&to=9999-12-31T23:59:59Z",
            "/v1/usage?feature=workflow_runs_per_day&from=-0001-12-31&to=0000-01-05",
            "/v1/usage?feature=workflow_runs_per_day&to=10000-01-01",
        ] {
            let (s, v) = get(&app, U1, path, at).await;
            assert!(s == 200 || s == 400, "{path}: {s} {v}");
            if s == 200 {
                assert_eq!(days(&v), "[]", "{path}");
            }
        }
    })
}

/// Only the caller's own use is answered: another user's uses of the same feature, and a
/// credit pool's, are not in it; an unknown or capability feature is refused.
#[test]
fn usage_shows_only_the_callers_own_use() {
    block(async {
        let app = memory("vcm-suite");
        admin_grants(&app, suite(U2, "starter"), NOW - 10).await;
        assert_eq!(track(&app, U2, "x", json!({"feature": "workflow_runs_per_day"}), NOW).await.0, 200);
        let (s, v) = get(&app, U1, "/v1/usage?feature=workflow_runs_per_day", NOW + 60).await;
        assert_eq!((s, days(&v)), (200, "[]".to_string()), "{v}");
        let (_, v) = get(&app, U2, "/v1/usage?feature=workflow_runs_per_day", NOW + 60).await;
        assert_eq!(v["days"].as_array().map(Vec::len), Some(1), "{v}");
        for (q, code) in [("feature=Workflow_runs_per_day", "unknown_feature"), ("feature=workflow_runs_per_day%00", "unknown_feature"),
                          ("feature=+", "unknown_feature"), ("feature=heavy_tools", "not_counted"), ("from=2027-01-01", "invalid_request")] {
            let (s, v) = get(&app, U1, &format!("/v1/usage?{q}"), NOW).await;
            assert!(s == 400 || s == 404, "{q}: {s} {v}");
            assert_eq!(v["error"]["code"].as_str(), Some(code), "{q}: {v}");
        }
    })
}

// ------------------------------------------------------------------ store failures on every read route

/// Every read and settings route failing at any store call it makes is a 5xx that says
/// nothing of the store, and changes nothing: the same request afterwards answers as if
/// it never failed.
#[test]
fn every_read_route_failing_at_any_store_call_is_5xx_and_says_nothing_of_the_store() {
    let cases: &[(Method, &str, &str, &[&str])] = &[
        (Method::Get, "/v1/usage?feature=video_seconds", "", &["usage_by_day"]),
        (Method::Get, "/v1/preferences", "", &["subject_state", "counter"]),
        (Method::Put, "/v1/preferences", r#"{"allow_overages": true, "overage_limit": 777}"#, &["subject_state", "set_preferences", "counter"]),
        (Method::Post, "/v1/export", "{}", &["gate_state"]),
    ];
    for (method, path, body, calls) in cases {
        for call in *calls {
            block(async {
                let catalog = if path.contains("export") { "vcm-suite" } else { "video-studio" };
                let app = gated(catalog);
                if catalog == "vcm-suite" {
                    admin_grants(&app, suite(U1, "basic"), NOW - 10).await;
                }
                app.ctx.store.fail(call, 1);
                let r = send(&app, *method, path, bearer(U1, NOW), body.as_bytes().to_vec(), NOW).await;
                let what = format!("{} {path} at {call}", method.as_str());
                assert_store_error_says_nothing(r.status, &json_of(&r), &what);
                let r = send(&app, *method, path, bearer(U1, NOW + 1), body.as_bytes().to_vec(), NOW + 1).await;
                assert_eq!(r.status, 200, "{what}: the retry: {}", String::from_utf8_lossy(&r.body));
                if path.contains("preferences") {
                    let (_, p) = get(&app, U1, "/v1/preferences", NOW + 2).await;
                    let want = if *method == Method::Put { 777 } else { 10_000 };
                    assert_eq!(p["overage_limit"], want, "{what}: {p}");
                }
            });
        }
    }
}

// ------------------------------------------------------------------ /v1/preferences

/// Repeated changes: each answer and the next GET say the last choice; a cap of 0 is a cap
/// of nothing; a change of `allow_overages` alone keeps the cap; values that are no whole
/// number of minor units in range are 400 and change nothing; a user's choice is its own.
#[test]
fn repeated_preference_changes_keep_the_last_and_refuse_bad_values_whole() {
    block(async {
        let app = memory("video-studio");
        for (body, allow, cap) in [
            (r#"{"allow_overages": true, "overage_limit": 500}"#, true, 500),
            (r#"{"allow_overages": true, "overage_limit": 0}"#, true, 0),
            (r#"{"allow_overages": false}"#, false, 0),
            (r#"{"allow_overages": true, "overage_limit": null}"#, true, 0),
            (r#"{"allow_overages": true, "overage_limit": 1200, "currency": "usd"}"#, true, 1200),
            (r#"{"allow_overages": false, "overage_limit": 1200}"#, false, 1200),
        ] {
            let (s, v) = put_prefs(&app, U1, body, NOW).await;
            assert_eq!((s, v["allow_overages"].clone(), v["overage_limit"].clone()), (200, json!(allow), json!(cap)), "{body}: {v}");
            let (_, g) = get(&app, U1, "/v1/preferences", NOW).await;
            assert_eq!((g["allow_overages"].clone(), g["overage_limit"].clone()), (json!(allow), json!(cap)), "{body}: {g}");
        }
        for body in [
            r#"{"allow_overages": true, "overage_limit": -1}"#,
            r#"{"allow_overages": true, "overage_limit": 9223372036854775807}"#,
            r#"{"allow_overages": true, "overage_limit": 18446744073709551615}"#,
            r#"{"allow_overages": true, "overage_limit": 1e3}"#,
            r#"{"allow_overages": true, "overage_limit": "500"}"#,
            r#"{"allow_overages": "true", "overage_limit": 500}"#,
            r#"{"allow_overages": 1}"#,
            r#"{"allow_overages": true, "currency": "usd "}"#,
            r#"{"allow_overages": true, "currency": 5}"#,
            r#"[{"allow_overages": true}]"#,
            r#"{"allow_overages": true"#,
            "",
        ] {
            let (s, v) = put_prefs(&app, U1, body, NOW).await;
            assert_eq!(s, 400, "{body}: {v}");
            assert!(v["error"]["code"].is_string(), "{body}: {v}");
        }
        let (_, g) = get(&app, U1, "/v1/preferences", NOW).await;
        assert_eq!((g["allow_overages"].clone(), g["overage_limit"].clone()), (json!(false), json!(1200)), "nothing refused was stored: {g}");
        let (_, other) = get(&app, U2, "/v1/preferences", NOW).await;
        assert_eq!((other["allow_overages"].clone(), other["overage_limit"].clone()), (json!(false), json!(10_000)), "{other}");
    })
}




/// Two devices of one user: one raises the cap to 500 while the other turns overage off
/// without naming a cap ("a change of `allow_overages` alone keeps the cap"). Landing
/// between the second's read and its write, the first's new cap must survive: the second
/// named no cap, so it must not write back the cap it read before (a lost update).
#[test]
fn turning_overage_off_concurrently_with_a_cap_change_keeps_the_new_cap() {
    block(async {
        let gate = Between { app: RefCell::new(Weak::new()), on: RefCell::new(None) };
        let app = Rc::new(app_on("video-studio", Gated { inner: MemoryStore::new(), gate }, 3600));
        *app.ctx.store.gate.app.borrow_mut() = Rc::downgrade(&app);
        app.ctx.store.inner.add_user(U1);
        assert_eq!(put_prefs(&*app, U1, r#"{"allow_overages": true, "overage_limit": 100}"#, NOW).await.0, 200);
        *app.ctx.store.gate.on.borrow_mut() = Some((
            "set_preferences",
            Box::new(|app| {
                let (s, v) = now_or_never(put_prefs(app, U1, r#"{"allow_overages": true, "overage_limit": 500}"#, NOW + 1));
                assert_eq!((s, v["overage_limit"].clone()), (200, json!(500)), "{v}");
            }),
        ));
        let (s, v) = put_prefs(&*app, U1, r#"{"allow_overages": false}"#, NOW + 1).await;
        assert_eq!(s, 200, "{v}");
        let (_, g) = get(&*app, U1, "/v1/preferences", NOW + 2).await;
        assert_eq!(g["allow_overages"], false, "{g}");
        assert_eq!(g["overage_limit"], 500, "the cap raised meanwhile was written back to the one read before: {g}");
    })
}

/// The spend answered is the period's: a user's overage spent in January is not counted
/// in February's period, and a clock at the last second of the month still reads January.
#[test]
fn preferences_answer_the_period_of_the_moment_at_the_month_edge() {
    block(async {
        let app = memory("video-studio");
        admin_grants(&app, json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 1, "id": "one"}]}), NOW - 10).await;
        assert_eq!(put_prefs(&app, U1, r#"{"allow_overages": true, "overage_limit": 1000}"#, NOW).await.0, 200);
        let h = bearer(U1, NOW).with("idempotency-key", "r1");
        let body = json!({"model": "standard", "quality": "watermark", "seconds": 10}).to_string().into_bytes();
        let r = send(&app, Method::Post, "/v1/usage/consume", h, body, NOW).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let spent = json_of(&r)["record"]["overage_minor"].as_i64().expect("overage");
        assert!(spent > 0);
        let last = Timestamp::parse("2027-01-31T23:59:59Z").unwrap().unix();
        let (_, p) = get(&app, U1, "/v1/preferences", last).await;
        assert_eq!((p["spent"].clone(), p["period"]["start"].clone(), p["period"]["ends_at"].clone()),
                   (json!(spent), json!("2027-01-01T00:00:00Z"), json!("2027-02-01T00:00:00Z")), "{p}");
        let (_, p) = get(&app, U1, "/v1/preferences", last + 1).await;
        assert_eq!((p["spent"].clone(), p["period"]["start"].clone()), (json!(0), json!("2027-02-01T00:00:00Z")), "{p}");
        // A clock gone back to before the charge: the January period again, with its spend.
        let (_, p) = get(&app, U1, "/v1/preferences", NOW - 5).await;
        assert_eq!(p["spent"], json!(spent), "{p}");
    })
}

// ------------------------------------------------------------------ GET /v1/catalog

/// `GET /v1/catalog` and `HEAD`: the ETag is answered with 304 for `If-None-Match` naming
/// it (weak, in a list), 200 for any other; HEAD has no body; nothing needs a token, and
/// a token or a query string changes nothing.
#[test]
fn the_catalog_answers_its_etag_and_ignores_tokens_and_queries() {
    block(async {
        let app = memory("vcm-suite");
        let r = send(&app, Method::Get, "/v1/catalog", Headers::new(), vec![], NOW).await;
        assert_eq!(r.status, 200);
        let etag = r.headers.get("etag").expect("etag").to_string();
        let doc = json_of(&r);
        assert_eq!(doc["id"].as_str().or(doc["catalog"]["id"].as_str()), Some("vcm-suite"), "{doc}");
        for inm in [etag.clone(), format!("W/{etag}"), format!("\"x\", {etag}")] {
            let r = send(&app, Method::Get, "/v1/catalog", Headers::new().with("if-none-match", inm.clone()), vec![], NOW).await;
            assert_eq!((r.status, r.body.len()), (304, 0), "{inm}");
        }
        for inm in ["\"x\"", "", "W/", &etag[..etag.len() - 2]] {
            let r = send(&app, Method::Get, "/v1/catalog", Headers::new().with("if-none-match", inm), vec![], NOW).await;
            assert_eq!(r.status, 200, "{inm}");
        }
        let r = send(&app, Method::Head, "/v1/catalog", Headers::new(), vec![], NOW).await;
        assert_eq!((r.status, r.body.len(), r.headers.get("etag")), (200, 0, Some(etag.as_str())));
        let r = send(&app, Method::Get, "/v1/catalog?version=1&x=%zz", bearer(U1, NOW).with("authorization", "Bearer nonsense"), vec![], NOW).await;
        assert_eq!((r.status, json_of(&r)), (200, doc));
    })
}
