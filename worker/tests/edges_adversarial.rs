//! An adversarial pass over the worker's HTTP edges (native, on the in-memory store, or on
//! the Supabase store over a transport that fails): every bad input is a clear 4xx with a
//! JSON error and writes nothing; a correctly signed provider event is never answered 4xx
//! and what cannot be applied yet is kept; a failing store is 5xx (with nothing of its
//! insides for a provider); wrong methods are 405 with `allow`, unknown paths 404; tokens
//! are checked before anything is read; caller-chosen request ids never meet the keys the
//! system writes; nothing panics.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use common::{b64, block, hmac, raw, text, NoNetwork, ADMIN_SECRET, JWT_SECRET, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{
    AppResponse, Headers, Method, OutRequest, OutResponse, Transport, TransportError,
};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::routes::ROUTES;
use tollgate_worker::state::Subject;
use tollgate_worker::store::Store;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-000000000001";
const BOB: &str = "00000000-0000-4000-8000-000000000003";
const RAZORPAY_SECRET: &str = "rzp_adversarial_secret";

// ------------------------------------------------------------------ harness

fn config(catalog: &str) -> Config {
    let mut c = common::config("http://127.0.0.1:1", "svc", catalog);
    c.razorpay_secrets = vec![RAZORPAY_SECRET.to_string()];
    c.snapshot_secret = Some([9u8; 32]);
    c
}

fn memory_app(catalog: &str) -> App<NoNetwork, MemoryStore> {
    let app = App::with_store(config(catalog), NoNetwork, MemoryStore::new()).expect("app");
    for u in [U1, BOB] {
        app.ctx.store.add_user_with_email(u, &common::email_of(u));
    }
    app
}

/// The response is `status` with a JSON `{"error": {"code", "message"}}` body (strings).
fn assert_error(r: &AppResponse, what: &str) {
    let v = r.body_json();
    assert!(
        v["error"]["code"].as_str().is_some_and(|c| !c.is_empty())
            && v["error"]["message"].as_str().is_some(),
        "{what}: {} without a JSON error: {}",
        r.status,
        text(r)
    );
    assert_eq!(
        r.headers.get("content-type"),
        Some("application/json; charset=utf-8"),
        "{what}"
    );
}

fn assert_4xx(r: &AppResponse, what: &str) {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {} {}",
        r.status,
        text(r)
    );
    assert_error(r, what);
}

fn claims(uid: &str, now: i64) -> Value {
    json!({"sub": uid, "role": "authenticated", "aud": "authenticated", "iss": ISSUER, "exp": now + 3600, "email": common::email_of(uid)})
}

fn sign_with(header: Value, claims: &Value, secret: &str) -> String {
    let head = b64(header.to_string().as_bytes());
    let body = b64(claims.to_string().as_bytes());
    let sig = b64(&hmac(secret, &format!("{head}.{body}")));
    format!("{head}.{body}.{sig}")
}

fn token(uid: &str, now: i64) -> String {
    sign_with(
        json!({"alg": "HS256", "typ": "JWT"}),
        &claims(uid, now),
        JWT_SECRET,
    )
}

fn user(uid: &str, now: i64) -> Headers {
    Headers::new().with("authorization", format!("Bearer {}", token(uid, now)))
}

fn admin() -> Headers {
    Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"))
}

fn stripe_headers(body: &[u8], now: i64) -> Headers {
    Headers::new().with(
        "stripe-signature",
        tollgate::verify::sign_stripe(body, STRIPE_SECRET, Timestamp(now)),
    )
}

async fn stripe_raw<T: Transport, S: Store>(app: &App<T, S>, body: &[u8], now: i64) -> AppResponse {
    raw(
        app,
        Method::Post,
        "/webhooks/stripe",
        stripe_headers(body, now),
        body,
        now,
    )
    .await
}

/// A concrete path for a route pattern (ids filled with a UUID).
fn concrete(pattern: &str) -> String {
    pattern.replace("{id}", "00000000-0000-4000-8000-0000000000ee")
}

// ------------------------------------------------------------------ bodies

/// Every route that reads a JSON body, sent an empty body, text that is not JSON, and JSON
/// that is not an object (an array, null, a number, a string), by a signed-in user or the
/// operator with an Idempotency-Key: a 4xx with a JSON error, and nothing stored.
#[test]
fn every_body_route_refuses_empty_non_json_and_non_object_bodies_with_a_json_4xx() {
    block(async {
        let app = memory_app("video-studio");
        let routes: &[(Method, &str, bool)] = &[
            (Method::Post, "/v1/usage/quote", false),
            (Method::Post, "/v1/usage/consume", false),
            (Method::Post, "/v1/check", false),
            (Method::Post, "/v1/track", false),
            (Method::Put, "/v1/preferences", false),
            (Method::Post, "/v1/checkout", false),
            (Method::Post, "/v1/portal", false),
            (Method::Post, "/v1/subscriptions/change", false),
            (Method::Post, "/v1/orgs", false),
            (Method::Post, "/v1/orgs/{id}/invites", false),
            (Method::Post, "/v1/orgs/{id}/seats", false),
            (Method::Patch, "/v1/orgs/{id}/members/{id}", false),
            (Method::Post, "/v1/admin/grants", true),
            (Method::Post, "/v1/admin/seats", true),
            (Method::Post, "/v1/admin/attribute", true),
            (Method::Post, "/v1/admin/endpoints", true),
        ];
        let bodies: &[&[u8]] = &[
            b"",
            b"not json",
            b"{\"feature\": ",
            b"\xff\xfe\x00garbage",
            b"[]",
            b"[{\"feature\": \"workflow_runs_per_day\"}]",
            b"null",
            b"42",
            b"\"a string\"",
            b"true",
        ];
        for (method, pattern, is_admin) in routes {
            for body in bodies {
                let h = if *is_admin { admin() } else { user(U1, NOW) }
                    .with("idempotency-key", "k-1")
                    .with("content-type", "application/json");
                let r = raw(&app, *method, &concrete(pattern), h, body, NOW).await;
                assert_4xx(
                    &r,
                    &format!(
                        "{} {pattern} {:?}",
                        method.as_str(),
                        String::from_utf8_lossy(body)
                    ),
                );
            }
        }
        assert_eq!(app.ctx.store.events(), 0, "a refused body stored an event");
        assert!(app.ctx.store.grants(&Subject::user(U1)).is_empty());
        assert!(app.ctx.store.ledger(&Subject::user(U1)).is_empty());
    })
}

/// Fields of the wrong type or out of range (numbers as strings, floats for integers,
/// negatives, zero, numbers past u64, booleans) are 400 with a JSON error; nothing is
/// charged, counted or granted.
#[test]
fn fields_of_the_wrong_type_or_range_are_400() {
    block(async {
        let app = memory_app("video-studio");
        let bad_quantities = [
            json!("2"),
            json!(1.5),
            json!(-1),
            json!(0),
            json!(1e30),
            json!(true),
            json!([1]),
            json!({"n": 1}),
            serde_json::from_str::<Value>("18446744073709551616").unwrap(),
            json!(u64::MAX),
        ];
        for q in &bad_quantities {
            for path in ["/v1/check", "/v1/track"] {
                let body = json!({"feature": "video_seconds", "quantity": q}).to_string();
                let h = user(U1, NOW).with("idempotency-key", format!("q-{q}"));
                let r = raw(&app, Method::Post, path, h, body.as_bytes(), NOW).await;
                assert_eq!(r.status, 400, "{path} quantity {q}: {}", text(&r));
                assert_error(&r, path);
            }
        }
        for s in [
            json!("30"),
            json!(30.5),
            json!(-30),
            json!(0),
            json!(1e30),
            json!(null),
            json!(u64::MAX),
        ] {
            for path in ["/v1/usage/quote", "/v1/usage/consume"] {
                let body =
                    json!({"model": "standard", "quality": "watermark", "seconds": s}).to_string();
                let h = user(U1, NOW).with("idempotency-key", format!("s-{s}"));
                let r = raw(&app, Method::Post, path, h, body.as_bytes(), NOW).await;
                assert_eq!(r.status, 400, "{path} seconds {s}: {}", text(&r));
                assert_error(&r, path);
            }
        }
        for (field, v) in [
            ("feature", json!(1)),
            ("feature", json!("")),
            ("scope", json!(7)),
            ("organization_id", json!("acme")),
            ("organization_id", json!(1)),
            ("hold", json!("yes")),
        ] {
            let mut body = json!({"feature": "video_seconds", "quantity": 1});
            body[field] = v.clone();
            let r = raw(
                &app,
                Method::Post,
                "/v1/track",
                user(U1, NOW).with("idempotency-key", "f"),
                body.to_string().as_bytes(),
                NOW,
            )
            .await;
            assert_eq!(r.status, 400, "track {field}={v}: {}", text(&r));
        }
        for body in [
            json!({"allow_overages": "true"}),
            json!({"allow_overages": true, "overage_limit": "100"}),
            json!({"allow_overages": true, "overage_limit": 1.5}),
            json!({"allow_overages": true, "currency": 5}),
            json!({"allow_overages": true, "overage_limit": -1}),
        ] {
            let r = raw(
                &app,
                Method::Put,
                "/v1/preferences",
                user(U1, NOW),
                body.to_string().as_bytes(),
                NOW,
            )
            .await;
            assert_eq!(r.status, 400, "preferences {body}: {}", text(&r));
            assert_error(&r, "preferences");
        }
        for q in [json!("2"), json!(-1), json!(1.5), json!(4_294_967_296u64)] {
            let body = json!({"offer": "VIDEO_TOKENS_30_MIN", "success_url": "https://a.example", "cancel_url": "https://a.example", "quantity": q});
            let r = raw(
                &app,
                Method::Post,
                "/v1/checkout",
                user(U1, NOW),
                body.to_string().as_bytes(),
                NOW,
            )
            .await;
            assert_eq!(r.status, 400, "checkout quantity {q}: {}", text(&r));
        }
        for amount in [
            json!("60"),
            json!(60.5),
            json!(-60),
            json!(0),
            json!(1e20),
            json!(i64::MAX),
        ] {
            let body = json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": amount, "id": "c"}]});
            let r = raw(
                &app,
                Method::Post,
                "/v1/admin/grants",
                admin(),
                body.to_string().as_bytes(),
                NOW,
            )
            .await;
            assert_eq!(r.status, 400, "credit amount {amount}: {}", text(&r));
            assert_error(&r, "grants");
        }
        // An admin credit id of 10,000 characters, and a grant window backwards.
        let body = json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 5, "id": "x".repeat(10_000)}]});
        assert_eq!(
            raw(
                &app,
                Method::Post,
                "/v1/admin/grants",
                admin(),
                body.to_string().as_bytes(),
                NOW
            )
            .await
            .status,
            400
        );
        let body = json!({"user_id": U1, "grants": [{"product": "video", "tier": "pro", "valid_from": NOW, "valid_to": NOW - 1}]});
        assert_eq!(
            raw(
                &app,
                Method::Post,
                "/v1/admin/grants",
                admin(),
                body.to_string().as_bytes(),
                NOW
            )
            .await
            .status,
            400
        );
        assert_eq!(app.ctx.store.events(), 0);
        assert!(
            app.ctx
                .store
                .ledger(&Subject::user(U1))
                .iter()
                .all(|e| !format!("{e:?}").contains("usage")),
            "nothing charged"
        );
        assert!(
            app.ctx.store.grants(&Subject::user(U1)).is_empty(),
            "nothing granted"
        );
    })
}

// ------------------------------------------------------------------ idempotency keys

/// Idempotency-Keys over 200 bytes, with control characters, or blank where one is
/// required are 400 `invalid_idempotency_key` / `missing_idempotency_key`; a unicode key is
/// a key like any other (the same key replays, another charges again).
#[test]
fn idempotency_keys_are_checked_and_unicode_ones_work() {
    block(async {
        let app = memory_app("video-studio");
        let grant = json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 1000, "id": "start"}]});
        assert_eq!(
            raw(
                &app,
                Method::Post,
                "/v1/admin/grants",
                admin(),
                grant.to_string().as_bytes(),
                NOW
            )
            .await
            .status,
            201
        );
        let render =
            json!({"model": "standard", "quality": "watermark", "seconds": 10}).to_string();
        let consume = |key: Option<String>| {
            let mut h = user(U1, NOW);
            if let Some(k) = key {
                h = h.with("idempotency-key", k);
            }
            let app = &app;
            let render = render.clone();
            async move {
                raw(
                    app,
                    Method::Post,
                    "/v1/usage/consume",
                    h,
                    render.as_bytes(),
                    NOW,
                )
                .await
            }
        };
        for (key, code) in [
            (None, "missing_idempotency_key"),
            (Some("   ".to_string()), "missing_idempotency_key"),
            (Some("k".repeat(201)), "invalid_idempotency_key"),
            (Some("k".repeat(1_000_000)), "invalid_idempotency_key"),
            (Some("a\u{7}b".to_string()), "invalid_idempotency_key"),
            (Some("a\u{0}b".to_string()), "invalid_idempotency_key"),
            (Some("a\tb".to_string()), "invalid_idempotency_key"),
            (Some("a\u{85}b".to_string()), "invalid_idempotency_key"),
        ] {
            let r = consume(key.clone()).await;
            assert_eq!(
                (r.status, r.body_json()["error"]["code"].as_str()),
                (400, Some(code)),
                "{:?}",
                key.map(|k| k.chars().take(20).collect::<String>())
            );
        }
        let before = app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        let unicode = "ключ-🔑-مفتاح-\u{202e}-キー".to_string();
        let first = consume(Some(unicode.clone())).await;
        assert_eq!(first.status, 200, "{}", text(&first));
        let again = consume(Some(unicode.clone())).await;
        assert_eq!(
            (again.status, again.body_json()["replayed"].as_bool()),
            (200, Some(true)),
            "{}",
            text(&again)
        );
        assert_eq!(again.body_json()["usage_id"], first.body_json()["usage_id"]);
        // Exactly 200 bytes is a key; the key is trimmed.
        let r = consume(Some(format!("  {}  ", "z".repeat(200)))).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let after = app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        assert_eq!(before - after, 20, "two charges of 10 seconds, one replay");
    })
}

// ------------------------------------------------------------------ tokens

/// Tokens expired, not yet valid, of another issuer or audience, `alg: none`, signed with
/// another secret, without exp, of a role that is not a user's, with a `sub` that is not
/// a user id, malformed in every way: 401 with a JSON error and `www-authenticate`, and the
/// store is not asked for anything (the catalog read aside, which the first request makes).
#[test]
fn every_bad_token_is_401_before_anything_is_read() {
    block(async {
        let app = memory_app("video-studio");
        // Warm the isolate's catalog (read once; fresh for CATALOG_REFRESH_SECONDS).
        assert_eq!(
            raw(&app, Method::Get, "/healthz", Headers::new(), b"", NOW)
                .await
                .status,
            200
        );
        let asked = app.ctx.store.requests();
        let hs = json!({"alg": "HS256", "typ": "JWT"});
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(U1, NOW);
            f(&mut c);
            sign_with(hs.clone(), &c, JWT_SECRET)
        };
        let good = token(U1, NOW);
        let (h, b, _) = {
            let mut p = good.split('.');
            (
                p.next().unwrap().to_string(),
                p.next().unwrap().to_string(),
                p.next().unwrap().to_string(),
            )
        };
        let none_head = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let tokens: Vec<(String, String)> = vec![
            ("expired".into(), with(&|c| c["exp"] = json!(NOW - 31))),
            ("expired long ago".into(), with(&|c| c["exp"] = json!(0))),
            (
                "not yet valid".into(),
                with(&|c| c["nbf"] = json!(NOW + 3600)),
            ),
            (
                "wrong issuer".into(),
                with(&|c| c["iss"] = json!("https://evil.example/auth/v1")),
            ),
            (
                "issuer with trailing slash".into(),
                with(&|c| c["iss"] = json!(format!("{ISSUER}/"))),
            ),
            (
                "no issuer".into(),
                with(&|c| {
                    c.as_object_mut().unwrap().remove("iss");
                }),
            ),
            (
                "issuer not a string".into(),
                with(&|c| c["iss"] = json!(["http://127.0.0.1:1/auth/v1"])),
            ),
            ("wrong audience".into(), with(&|c| c["aud"] = json!("anon"))),
            (
                "no audience".into(),
                with(&|c| {
                    c.as_object_mut().unwrap().remove("aud");
                }),
            ),
            (
                "audience list without ours".into(),
                with(&|c| c["aud"] = json!(["x", "y"])),
            ),
            ("anon role".into(), with(&|c| c["role"] = json!("anon"))),
            (
                "service role".into(),
                with(&|c| c["role"] = json!("service_role")),
            ),
            (
                "no exp".into(),
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
            (
                "exp as a string".into(),
                with(&|c| c["exp"] = json!((NOW + 3600).to_string())),
            ),
            ("nbf as a string".into(), with(&|c| c["nbf"] = json!("0"))),
            (
                "sub not a uuid".into(),
                with(&|c| c["sub"] = json!("admin")),
            ),
            ("sub empty".into(), with(&|c| c["sub"] = json!(""))),
            ("sub a number".into(), with(&|c| c["sub"] = json!(1))),
            (
                "another secret".into(),
                sign_with(
                    hs.clone(),
                    &claims(U1, NOW),
                    "another-secret-with-at-least-32-characters!!",
                ),
            ),
            ("alg none, no signature".into(), format!("{none_head}.{b}.")),
            (
                "alg none, a signature".into(),
                format!("{none_head}.{b}.{}", b64(b"x")),
            ),
            (
                "alg None".into(),
                format!("{}.{b}.{}", b64(br#"{"alg":"None"}"#), b64(b"x")),
            ),
            (
                "alg HS512".into(),
                format!("{}.{b}.{}", b64(br#"{"alg":"HS512"}"#), b64(&[0u8; 64])),
            ),
            (
                "alg RS256 without keys".into(),
                format!(
                    "{}.{b}.{}",
                    b64(br#"{"alg":"RS256","kid":"k"}"#),
                    b64(&[0u8; 256])
                ),
            ),
            (
                "alg ES256 without keys".into(),
                format!("{}.{b}.{}", b64(br#"{"alg":"ES256"}"#), b64(&[0u8; 64])),
            ),
            (
                "header not JSON".into(),
                format!("{}.{b}.{}", b64(b"nope"), b64(b"x")),
            ),
            (
                "header an array".into(),
                format!("{}.{b}.{}", b64(b"[]"), b64(b"x")),
            ),
            (
                "payload swapped".into(),
                format!(
                    "{h}.{}.{}",
                    b64(claims(BOB, NOW).to_string().as_bytes()),
                    good.rsplit('.').next().unwrap()
                ),
            ),
            (
                "signature truncated".into(),
                good[..good.len() - 3].to_string(),
            ),
            ("two parts".into(), format!("{h}.{b}")),
            ("four parts".into(), format!("{good}.x")),
            ("empty parts".into(), "..".into()),
            ("not base64".into(), "!!!.???.***".into()),
            ("unicode".into(), "тест.🔑.مفتاح".into()),
            ("huge".into(), "a".repeat(200_000)),
        ];
        for path in [
            "/v1/entitlements",
            "/v1/usage/consume",
            "/v1/orgs/00000000-0000-4000-8000-0000000000ee",
        ] {
            let method = if path == "/v1/usage/consume" {
                Method::Post
            } else {
                Method::Get
            };
            for (what, t) in &tokens {
                let h = Headers::new()
                    .with("authorization", format!("Bearer {t}"))
                    .with("idempotency-key", "k");
                let r = raw(
                    &app,
                    method,
                    path,
                    h,
                    br#"{"model":"standard","quality":"watermark","seconds":10}"#,
                    NOW,
                )
                .await;
                assert_eq!(r.status, 401, "{path} {what}: {}", text(&r));
                assert_error(&r, what);
                assert_eq!(r.headers.get("www-authenticate"), Some("Bearer"), "{what}");
            }
            for header in [
                "",
                "Bearer",
                "Bearer ",
                "Basic dXNlcjpwYXNz",
                "Token abc",
                &good,
                &format!("Bearer{good}"),
                &format!("Bearer {ADMIN_SECRET}"),
            ] {
                let h = Headers::new()
                    .with("authorization", header)
                    .with("idempotency-key", "k");
                let r = raw(&app, method, path, h, b"{}", NOW).await;
                assert_eq!(
                    r.status,
                    401,
                    "{path} authorization `{}`: {}",
                    header.chars().take(30).collect::<String>(),
                    text(&r)
                );
                assert_error(&r, header);
            }
            let r = raw(&app, method, path, Headers::new(), b"{}", NOW).await;
            assert_eq!(
                (r.status, r.body_json()["error"]["code"].as_str()),
                (401, Some("missing_token"))
            );
        }
        assert_eq!(
            app.ctx.store.requests(),
            asked,
            "a refused token made the store answer something"
        );
        // The good token does get through (and the store is asked then).
        let r = raw(
            &app,
            Method::Get,
            "/v1/entitlements",
            user(U1, NOW),
            b"",
            NOW,
        )
        .await;
        assert_eq!(r.status, 200, "{}", text(&r));
        // Within the leeway: exp 30 s ago is still valid, 31 s is not (above).
        let r = raw(
            &app,
            Method::Get,
            "/v1/entitlements",
            Headers::new().with(
                "authorization",
                format!("Bearer {}", with(&|c| c["exp"] = json!(NOW - 30))),
            ),
            b"",
            NOW,
        )
        .await;
        assert_eq!(r.status, 200, "{}", text(&r));
    })
}

/// The admin routes take the admin secret only: a user's token, a wrong secret, a prefix
/// of it, and the secret with something after it are 401 with a JSON error.
#[test]
fn admin_routes_refuse_anything_but_the_admin_secret() {
    block(async {
        let app = memory_app("video-studio");
        for (path, methods, _) in ROUTES.iter().filter(|(p, _, _)| p.starts_with("/v1/admin")) {
            for h in [
                Headers::new(),
                user(U1, NOW),
                Headers::new().with("authorization", "Bearer wrong"),
                Headers::new().with(
                    "authorization",
                    format!("Bearer {}", &ADMIN_SECRET[..ADMIN_SECRET.len() - 1]),
                ),
                Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}x")),
                Headers::new().with("x-admin-secret", ""),
                Headers::new().with("x-admin-secret", format!("{ADMIN_SECRET}\0")),
                Headers::new()
                    .with("x-admin-secret", "wrong")
                    .with("authorization", format!("Bearer {ADMIN_SECRET}")),
            ] {
                let r = raw(&app, methods[0], &concrete(path), h.clone(), b"{}", NOW).await;
                assert_eq!(r.status, 401, "{path} {:?}: {}", h, text(&r));
                assert_error(&r, path);
            }
        }
    })
}

// ------------------------------------------------------------------ methods and paths

/// Every method on every path: a route's own methods are never 404/405; others are 405
/// with `allow` (and a JSON error); unknown paths, odd paths (double slashes, dot
/// segments, encoded slashes, unicode, 100 KB) are 404 with a JSON error; nothing panics.
#[test]
fn every_method_on_every_path_and_odd_paths() {
    block(async {
        let app = memory_app("video-studio");
        let all = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Other,
        ];
        for (pattern, methods, _) in ROUTES {
            let path = concrete(pattern);
            for m in all {
                let r = raw(&app, m, &path, Headers::new(), b"", NOW).await;
                if methods.contains(&m) {
                    assert!(
                        r.status != 404 && r.status != 405
                            || r.body_json()["error"]["code"] != "method_not_allowed",
                        "{path}"
                    );
                    assert!(
                        r.status < 500 || r.status == 503,
                        "{} {path}: {}",
                        m.as_str(),
                        text(&r)
                    );
                } else {
                    assert_eq!(r.status, 405, "{} {path}", m.as_str());
                    assert!(
                        r.headers
                            .get("allow")
                            .is_some_and(|a| a.contains("OPTIONS")),
                        "{path}"
                    );
                    if m != Method::Head {
                        assert_error(&r, &path);
                    } else {
                        assert!(r.body.is_empty(), "HEAD answers no body");
                    }
                }
            }
        }
        let long = format!("/v1/{}", "a".repeat(100_000));
        for path in [
            "/",
            "",
            "//",
            "/v1",
            "/v1/",
            "/v2/check",
            "/v1//check",
            "/v1/check/extra",
            "/v1/./check",
            "/v1/../v1/check",
            "/v1%2Fcheck",
            "/V1/CHECK",
            "/webhooks/stripe/x",
            "/webhooks/paypal",
            "/v1/orgs//invites",
            "/v1/usage//capture",
            "/v1/admin/endpoints//enable",
            "/v1/ünïcødé",
            "/v1/\u{0}",
            long.as_str(),
        ] {
            for m in [Method::Get, Method::Post, Method::Delete, Method::Other] {
                let r = raw(&app, m, path, Headers::new(), b"{}", NOW).await;
                assert_eq!(
                    r.status,
                    404,
                    "{} {:?}: {}",
                    m.as_str(),
                    path.chars().take(40).collect::<String>(),
                    text(&r)
                );
                assert_error(&r, path);
            }
        }
        // Ids in paths that are not UUIDs (or are strange) are 404s with a JSON error, not 5xx.
        for id in [
            "nope",
            "ünïcødé",
            &"9".repeat(5000),
            "00000000-0000-4000-8000-00000000000Z",
            "%00",
            "' OR 1=1 --",
        ] {
            for (m, path) in [
                (Method::Get, format!("/v1/orgs/{id}")),
                (Method::Get, format!("/v1/orgs/{id}/invites")),
                (Method::Delete, format!("/v1/orgs/{id}/invites/{id}")),
                (Method::Post, format!("/v1/usage/{id}/capture")),
                (Method::Post, format!("/v1/usage/{id}/release")),
                (Method::Post, format!("/v1/invites/{id}/accept")),
                (Method::Delete, format!("/v1/orgs/{id}/members/{id}")),
            ] {
                let r = raw(&app, m, &path, user(U1, NOW), b"", NOW).await;
                assert_4xx(&r, &path);
            }
            for path in [
                format!("/v1/admin/endpoints/{id}/enable"),
                format!("/v1/admin/endpoints/{id}/disable"),
            ] {
                let r = raw(&app, Method::Post, &path, admin(), b"", NOW).await;
                assert_4xx(&r, &path);
            }
        }
        // Query strings of every odd kind on the GET routes with parameters.
        for q in [
            "feature=",
            "feature=%zz",
            "feature=video_seconds&from=yesterday",
            "feature=video_seconds&from=2027-01-01&to=2026-01-01",
            "feature=video_seconds&from=1900-01-01&to=2900-01-01",
            "feature=nope",
            "feature=video_seconds&from=9999999999999999999",
        ] {
            let r = raw(
                &app,
                Method::Get,
                &format!("/v1/usage?{q}"),
                user(U1, NOW),
                b"",
                NOW,
            )
            .await;
            assert_4xx(&r, q);
        }
        for q in [
            "limit=0",
            "limit=201",
            "limit=-1",
            "limit=abc",
            "after=-5",
            "after=abc",
            "provider=paypal",
        ] {
            let r = raw(
                &app,
                Method::Get,
                &format!("/v1/admin/unattributed?{q}"),
                admin(),
                b"",
                NOW,
            )
            .await;
            assert_4xx(&r, q);
        }
        for q in [
            "status=closed",
            "limit=0",
            "limit=99999999999",
            &format!("after={}", "x".repeat(400)),
            "after=nopipe",
        ] {
            let r = raw(
                &app,
                Method::Get,
                &format!("/v1/admin/failed-payments?{q}"),
                admin(),
                b"",
                NOW,
            )
            .await;
            assert_4xx(&r, q);
        }
    })
}

// ------------------------------------------------------------------ provider events

/// Correctly signed Stripe deliveries the worker cannot read or apply (not JSON, not an
/// object, no type, no object, an object for a customer nobody knows, numbers where
/// strings belong, ids of 10,000 characters or with control characters): never a 4xx;
/// each is acknowledged 200 and, unless the core ignores its type, kept (or applied), and
/// the same delivery again is not stored twice.
#[test]
fn a_correctly_signed_stripe_event_is_never_refused() {
    block(async {
        let app = memory_app("video-studio");
        let sub = |id: &str, obj: Value| {
            json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": NOW,
                   "type": "customer.subscription.created", "livemode": false, "data": {"object": obj}})
        };
        let unknown_customer = json!({"id": "sub_ghost", "object": "subscription", "customer": "cus_ghost", "status": "active",
            "cancel_at_period_end": false, "start_date": NOW, "created": NOW, "metadata": {},
            "items": {"object": "list", "data": [{"id": "si_g", "object": "subscription_item", "quantity": 1,
                "price": {"id": "price_ghost", "object": "price", "metadata": {}},
                "current_period_start": NOW, "current_period_end": NOW + 30 * DAY}]}});
        let mut negative = unknown_customer.clone();
        negative["metadata"] = json!({"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": U1});
        negative["items"]["data"][0]["quantity"] = json!(-3);
        let mut float = negative.clone();
        float["items"]["data"][0]["quantity"] = json!(1.5);
        let mut stringy = negative.clone();
        stringy["items"]["data"][0]["current_period_end"] = json!("soon");
        let mut stranger = negative.clone();
        stranger["metadata"]["user_id"] = json!("99999999-0000-4000-8000-000000000999");
        let mut not_uuid = negative.clone();
        not_uuid["metadata"]["user_id"] = json!("robert'); DROP TABLE users;--");
        let bodies: Vec<(&str, Vec<u8>)> = vec![
            ("not json", b"this is not json".to_vec()),
            ("not utf-8", b"\xff\xfe\xfd".to_vec()),
            ("empty object", b"{}".to_vec()),
            ("array", b"[1,2,3]".to_vec()),
            ("null", b"null".to_vec()),
            ("no type", json!({"id": "evt_notype", "object": "event", "created": NOW}).to_string().into_bytes()),
            ("unknown type", json!({"id": "evt_unknown", "object": "event", "created": NOW, "type": "tollgate.nonsense",
                                    "data": {"object": {"id": "x"}}}).to_string().into_bytes()),
            ("type a number", json!({"id": "evt_typenum", "object": "event", "created": NOW, "type": 7, "data": {}}).to_string().into_bytes()),
            ("no data", json!({"id": "evt_nodata", "object": "event", "created": NOW, "type": "checkout.session.completed"}).to_string().into_bytes()),
            ("null object", json!({"id": "evt_nullobj", "object": "event", "created": NOW, "type": "invoice.paid",
                                   "data": {"object": null}}).to_string().into_bytes()),
            ("object an array", json!({"id": "evt_arrobj", "object": "event", "created": NOW, "type": "checkout.session.completed",
                                       "data": {"object": []}}).to_string().into_bytes()),
            ("created huge", json!({"id": "evt_huge", "object": "event", "created": 1e300, "type": "invoice.paid",
                                    "data": {"object": {"id": "in_x"}}}).to_string().into_bytes()),
            ("created a string", json!({"id": "evt_strcreated", "object": "event", "created": "yesterday", "type": "invoice.paid",
                                        "data": {"object": {"id": "in_y"}}}).to_string().into_bytes()),
            ("unknown customer", sub("evt_ghost", unknown_customer).to_string().into_bytes()),
            ("negative quantity", sub("evt_negative", negative).to_string().into_bytes()),
            ("float quantity", sub("evt_float", float).to_string().into_bytes()),
            ("period end a string", sub("evt_stringy", stringy).to_string().into_bytes()),
            ("a user the database does not know", sub("evt_stranger", stranger).to_string().into_bytes()),
            ("a user id that is not a uuid", sub("evt_notuuid", not_uuid).to_string().into_bytes()),
            ("id of 10,000 characters", json!({"id": "e".repeat(10_000), "object": "event", "created": NOW, "type": "invoice.paid",
                                               "data": {"object": {"id": "in_z"}}}).to_string().into_bytes()),
            ("id with control characters", json!({"id": "evt_\u{0}\u{7}\n", "object": "event", "created": NOW, "type": "invoice.paid",
                                                  "data": {"object": {"id": "in_w"}}}).to_string().into_bytes()),
            ("id a number", json!({"id": 12345, "object": "event", "created": NOW, "type": "invoice.paid",
                                   "data": {"object": {"id": "in_v"}}}).to_string().into_bytes()),
        ];
        for (what, body) in &bodies {
            let kept_before = app.ctx.store.kept().len();
            let events_before = app.ctx.store.events();
            let r = stripe_raw(&app, body, NOW).await;
            assert_eq!(
                r.status,
                200,
                "{what}: a correctly signed event was answered {}: {}",
                r.status,
                text(&r)
            );
            let v = r.body_json();
            let status = v["status"].as_str().unwrap_or_default().to_string();
            assert!(
                ["kept", "ignored", "applied", "duplicate"].contains(&status.as_str()),
                "{what}: {v}"
            );
            if status == "kept" || status == "applied" {
                assert!(
                    app.ctx.store.kept().len() > kept_before
                        || app.ctx.store.events() > events_before,
                    "{what}: answered {status} and nothing was stored: {v}"
                );
            }
            // Delivered again (a provider's retry): acknowledged, not stored twice.
            let kept_now = app.ctx.store.kept().len();
            let r = stripe_raw(&app, body, NOW + 60).await;
            assert_eq!(r.status, 200, "{what} again: {}", text(&r));
            assert_eq!(app.ctx.store.kept().len(), kept_now, "{what}: kept twice");
        }
        // What waits for a customer is kept (an operator lists it) rather than dropped.
        let kept: Vec<String> = app
            .ctx
            .store
            .kept()
            .into_iter()
            .map(|(_, e, _)| e)
            .collect();
        for id in ["evt_ghost", "evt_stranger"] {
            assert!(kept.iter().any(|e| e == id), "{id} not kept: {kept:?}");
        }
        let r = raw(
            &app,
            Method::Get,
            "/v1/admin/unattributed?limit=200",
            admin(),
            b"",
            NOW + 120,
        )
        .await;
        assert_eq!(
            r.status,
            200,
            "the listing reads every kept delivery, odd ones too: {}",
            text(&r)
        );
    })
}

/// A bad or missing signature is 400 with a JSON error (never 5xx, nothing stored), also
/// a signature from another secret, an old timestamp, a duplicated or enormous header.
#[test]
fn a_badly_signed_provider_event_is_a_json_400_and_stores_nothing() {
    block(async {
        let app = memory_app("video-studio");
        let body = json!({"id": "evt_sig", "object": "event", "created": NOW, "type": "invoice.paid", "data": {"object": {"id": "in_1"}}})
            .to_string()
            .into_bytes();
        let good = tollgate::verify::sign_stripe(&body, STRIPE_SECRET, Timestamp(NOW));
        let other = tollgate::verify::sign_stripe(
            &body,
            "whsec_someone_else_entirely_0000",
            Timestamp(NOW),
        );
        let old = tollgate::verify::sign_stripe(&body, STRIPE_SECRET, Timestamp(NOW - 3600));
        let future = tollgate::verify::sign_stripe(&body, STRIPE_SECRET, Timestamp(NOW + 3600));
        for (what, h) in [
            ("none", Headers::new()),
            ("empty", Headers::new().with("stripe-signature", "")),
            (
                "garbage",
                Headers::new().with("stripe-signature", "garbage"),
            ),
            (
                "another secret",
                Headers::new().with("stripe-signature", other),
            ),
            ("an hour old", Headers::new().with("stripe-signature", old)),
            (
                "an hour ahead",
                Headers::new().with("stripe-signature", future),
            ),
            (
                "t only",
                Headers::new().with("stripe-signature", format!("t={NOW}")),
            ),
            (
                "t not a number",
                Headers::new().with("stripe-signature", "t=abc,v1=00"),
            ),
            (
                "t huge",
                Headers::new().with("stripe-signature", "t=99999999999999999999999,v1=00"),
            ),
            (
                "v0 only",
                Headers::new().with("stripe-signature", good.replace("v1=", "v0=")),
            ),
            (
                "enormous",
                Headers::new().with(
                    "stripe-signature",
                    format!("t={NOW},{}", "v1=00,".repeat(100_000)),
                ),
            ),
            (
                "razorpay's header",
                Headers::new().with(
                    "x-razorpay-signature",
                    tollgate::verify::sign_razorpay(&body, RAZORPAY_SECRET),
                ),
            ),
        ] {
            let r = raw(&app, Method::Post, "/webhooks/stripe", h, &body, NOW).await;
            assert_eq!(r.status, 400, "{what}: {}", text(&r));
            assert_error(&r, what);
        }
        // The body changed after signing.
        let mut tampered = body.clone();
        tampered.push(b' ');
        let r = raw(
            &app,
            Method::Post,
            "/webhooks/stripe",
            Headers::new().with("stripe-signature", good.clone()),
            &tampered,
            NOW,
        )
        .await;
        assert_eq!(r.status, 400, "{}", text(&r));
        // Razorpay: no signature, a wrong one, Stripe's.
        for h in [
            Headers::new(),
            Headers::new().with("x-razorpay-signature", "00"),
            Headers::new().with(
                "x-razorpay-signature",
                tollgate::verify::sign_razorpay(&body, "another"),
            ),
            Headers::new().with("stripe-signature", good),
        ] {
            let r = raw(
                &app,
                Method::Post,
                "/webhooks/razorpay",
                h.with("x-razorpay-event-id", "evt_r"),
                &body,
                NOW,
            )
            .await;
            assert_eq!(r.status, 400, "{}", text(&r));
            assert_error(&r, "razorpay");
        }
        assert_eq!((app.ctx.store.events(), app.ctx.store.kept().len()), (0, 0));
    })
}

/// Correctly signed Razorpay deliveries the worker cannot read (not JSON, an unknown event,
/// a payment with no entity, no event id header, an event id header of 10,000 characters):
/// 200, never a 4xx, and kept unless ignored.
#[test]
fn a_correctly_signed_razorpay_event_is_never_refused() {
    block(async {
        let app = memory_app("razorpay-ai");
        let bodies: Vec<(&str, Vec<u8>, Option<String>)> = vec![
            ("not json", b"<xml/>".to_vec(), Some("evt_rzp_1".into())),
            ("unknown event", json!({"entity": "event", "event": "nonsense.happened", "payload": {}, "created_at": NOW}).to_string().into_bytes(), Some("evt_rzp_2".into())),
            ("payment without entity", json!({"entity": "event", "event": "payment.captured", "payload": {"payment": {}}, "created_at": NOW}).to_string().into_bytes(), Some("evt_rzp_3".into())),
            ("subscription for nobody", json!({"entity": "event", "event": "subscription.charged", "created_at": NOW,
                "payload": {"subscription": {"entity": {"id": "sub_nobody", "status": "active", "plan_id": "plan_x", "notes": {}}}}}).to_string().into_bytes(), Some("evt_rzp_4".into())),
            ("no event id", json!({"entity": "event", "event": "payment.captured", "created_at": NOW,
                "payload": {"payment": {"entity": {"id": "pay_x", "amount": 100, "currency": "INR", "status": "captured", "notes": {}}}}}).to_string().into_bytes(), None),
            ("event id of 10,000 characters", json!({"entity": "event", "event": "payment.captured", "created_at": NOW,
                "payload": {"payment": {"entity": {"id": "pay_y", "amount": 100, "currency": "INR", "status": "captured", "notes": {}}}}}).to_string().into_bytes(), Some("r".repeat(10_000))),
        ];
        for (what, body, id) in &bodies {
            let mut h = Headers::new().with(
                "x-razorpay-signature",
                tollgate::verify::sign_razorpay(body, RAZORPAY_SECRET),
            );
            if let Some(id) = id {
                h = h.with("x-razorpay-event-id", id.clone());
            }
            let before = (app.ctx.store.kept().len(), app.ctx.store.events());
            let r = raw(&app, Method::Post, "/webhooks/razorpay", h, body, NOW).await;
            assert_eq!(
                r.status,
                200,
                "{what}: a correctly signed event was answered {}: {}",
                r.status,
                text(&r)
            );
            let v = r.body_json();
            let status = v["status"].as_str().unwrap_or_default();
            assert!(
                ["kept", "ignored", "applied", "duplicate"].contains(&status),
                "{what}: {v}"
            );
            if status == "kept" || status == "applied" {
                assert!(
                    (app.ctx.store.kept().len(), app.ctx.store.events()) != before,
                    "{what}: {status} and nothing stored"
                );
            }
        }
    })
}

// ------------------------------------------------------------------ a failing store

/// A PostgREST that answers everything with a database error naming its insides.
#[derive(Clone, Default)]
struct BrokenPostgrest {
    calls: Rc<RefCell<usize>>,
}
impl Transport for BrokenPostgrest {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        *self.calls.borrow_mut() += 1;
        Ok(OutResponse {
            status: 500,
            headers: Headers::new().with("content-type", "application/json"),
            body: json!({"code": "42P01", "details": "secret_detail_tollgate_facts", "hint": null,
                         "message": "relation \"public.tollgate_facts\" does not exist"})
            .to_string()
            .into_bytes(),
        })
    }
}

/// A store that cannot be reached at all.
#[derive(Clone, Default)]
struct Down;
impl Transport for Down {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        Err(TransportError(
            "connection refused to db.internal.example:5432".into(),
        ))
    }
}

const INTERNALS: &[&str] = &[
    "tollgate_facts",
    "42P01",
    "relation",
    "secret_detail",
    "db.internal",
    "5432",
    "connection refused",
    "PGRST",
];

/// With the store failing (answering errors, or not answering): a correctly signed
/// provider event is 5xx with `retry-after` and no store internals; a signed-in route is
/// 5xx (never a 4xx that would stop a retry, never a 200); a refused signature or token
/// is still its 4xx.
#[test]
fn a_failing_store_is_5xx_and_providers_see_nothing_of_it() {
    block(async {
        let broken = App::new(config("video-studio"), BrokenPostgrest::default()).expect("app");
        let down = App::new(config("video-studio"), Down).expect("app");
        let event = json!({"id": "evt_store_down", "object": "event", "api_version": "2025-03-31.basil", "created": NOW,
            "type": "customer.subscription.created", "livemode": false, "data": {"object": {
                "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active", "cancel_at_period_end": false,
                "start_date": NOW, "created": NOW, "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": U1},
                "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item", "quantity": 1,
                    "price": {"id": "price_c", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
                    "current_period_start": NOW, "current_period_end": NOW + 30 * DAY}]}}}})
        .to_string()
        .into_bytes();
        macro_rules! check {
            ($app:expr, $name:expr) => {{
                let app = $app;
                for body in [event.clone(), b"not json at all".to_vec()] {
                    let r = stripe_raw(app, &body, NOW).await;
                    assert!(r.status >= 500, "{}: a signed event with the store down: {} {}", $name, r.status, text(&r));
                    assert!(r.headers.get("retry-after").is_some(), "{}", $name);
                    assert_error(&r, $name);
                    for i in INTERNALS {
                        assert!(!text(&r).contains(i), "{}: a provider is shown `{i}`: {}", $name, text(&r));
                    }
                    let rz = tollgate::verify::sign_razorpay(&body, RAZORPAY_SECRET);
                    let h = Headers::new().with("x-razorpay-signature", rz).with("x-razorpay-event-id", "evt_rz_down");
                    let r = raw(app, Method::Post, "/webhooks/razorpay", h, &body, NOW).await;
                    assert!(r.status >= 500, "{}: razorpay with the store down: {} {}", $name, r.status, text(&r));
                    for i in INTERNALS {
                        assert!(!text(&r).contains(i), "{}: a provider is shown `{i}`: {}", $name, text(&r));
                    }
                }
                // A bad signature stays a 400 (no retry of a forgery), a bad token a 401.
                let r = raw(app, Method::Post, "/webhooks/stripe", Headers::new().with("stripe-signature", "t=1,v1=00"), &event, NOW).await;
                assert_eq!(r.status, 400, "{}: {}", $name, text(&r));
                let r = raw(app, Method::Get, "/v1/entitlements", Headers::new().with("authorization", "Bearer x.y.z"), b"", NOW).await;
                assert_eq!(r.status, 401, "{}: {}", $name, text(&r));
                // Signed-in and operator routes: 5xx.
                let render = br#"{"model":"standard","quality":"watermark","seconds":10}"#;
                for (m, path, h, body) in [
                    (Method::Get, "/v1/entitlements", user(U1, NOW), &b""[..]),
                    (Method::Post, "/v1/usage/consume", user(U1, NOW).with("idempotency-key", "k"), &render[..]),
                    (Method::Post, "/v1/usage/quote", user(U1, NOW), &render[..]),
                    (Method::Post, "/v1/check", user(U1, NOW), &br#"{"feature":"video_seconds"}"#[..]),
                    (Method::Post, "/v1/track", user(U1, NOW).with("idempotency-key", "k"), &br#"{"feature":"video_seconds"}"#[..]),
                    (Method::Get, "/v1/preferences", user(U1, NOW), &b""[..]),
                    (Method::Get, "/v1/usage?feature=video_seconds", user(U1, NOW), &b""[..]),
                    (Method::Post, "/v1/orgs", user(U1, NOW), &br#"{"name":"Acme"}"#[..]),
                    (Method::Get, "/v1/orgs/00000000-0000-4000-8000-0000000000ee", user(U1, NOW), &b""[..]),
                    (Method::Post, "/v1/usage/00000000-0000-4000-8000-0000000000ee/capture", user(U1, NOW), &b""[..]),
                    (Method::Post, "/v1/checkout", user(U1, NOW), &br#"{"offer":"VIDEO_TOKENS_30_MIN","success_url":"https://a.example","cancel_url":"https://a.example"}"#[..]),
                    (Method::Post, "/v1/admin/grants", admin(), &br#"{"user_id":"00000000-0000-4000-8000-000000000001","credits":[{"pool":"video_seconds","amount":5,"id":"c"}]}"#[..]),
                    (Method::Get, "/v1/admin/unattributed", admin(), &b""[..]),
                    (Method::Get, "/v1/admin/failed-payments", admin(), &b""[..]),
                    (Method::Get, "/v1/admin/endpoints", admin(), &b""[..]),
                ] {
                    let r = raw(app, m, path, h, body, NOW).await;
                    assert!(r.status >= 500, "{}: {} {path} with the store down: {} {}", $name, m.as_str(), r.status, text(&r));
                    assert_error(&r, path);
                }
                // Nothing anyone may call without signing in shows the store's insides.
                for path in ["/healthz", "/v1/catalog", "/v1/nothing"] {
                    let r = raw(app, Method::Get, path, Headers::new(), b"", NOW).await;
                    for i in INTERNALS {
                        assert!(!text(&r).contains(i), "{}: GET {path} shows `{i}`: {}", $name, text(&r));
                    }
                }
            }};
        }
        check!(&broken, "broken");
        check!(&down, "down");
    })
}

// ------------------------------------------------------------------ subscriptions

/// Records provider requests, answering `{"id": "x", "status": "active"}`.
#[derive(Clone, Default)]
struct Recorder {
    seen: Rc<RefCell<Vec<OutRequest>>>,
}
impl Transport for Recorder {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        self.seen.borrow_mut().push(req);
        Ok(OutResponse {
            status: 200,
            headers: Headers::new(),
            body: json!({"id": "x", "status": "active"})
                .to_string()
                .into_bytes(),
        })
    }
}

/// `POST /v1/subscriptions/cancel` takes `{"subscription"?, "organization_id"?}` or no body.
/// A JSON body that is not an object (`[...]`, `null`, a number, a string) is bad input:
/// 400, and no cancellation is sent to the provider. (Read as `{}`, an array holding
/// `{"subscription": "sub_other"}` would cancel the caller's only subscription.)
#[test]
fn a_cancel_with_a_body_that_is_not_an_object_is_refused_not_read_as_empty() {
    block(async {
        let mut c = config("video-studio");
        c.stripe_secret_key = Some("sk_test_recorded".into());
        c.stripe_api_base = "https://stripe.recorder.test".into();
        let rec = Recorder::default();
        let app = App::with_store(c, rec.clone(), MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        let (start, end) = (NOW - 5 * DAY, NOW + 25 * DAY);
        let created = json!({"id": "evt_sub_1", "object": "event", "api_version": "2025-03-31.basil", "created": start,
            "type": "customer.subscription.created", "livemode": false, "data": {"object": {
                "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active", "cancel_at_period_end": false,
                "cancel_at": null, "canceled_at": null, "ended_at": null, "start_date": start, "created": start,
                "trial_start": null, "trial_end": null, "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": U1},
                "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item", "quantity": 1,
                    "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
                    "current_period_start": start, "current_period_end": end}]}}}});
        let r = stripe_raw(&app, created.to_string().as_bytes(), NOW).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        for path in [
            "/v1/subscriptions/cancel",
            "/v1/subscriptions/resume",
            "/v1/subscriptions/unpause",
        ] {
            for body in [
                &br#"[{"subscription": "sub_other"}]"#[..],
                b"[]",
                b"null",
                b"42",
                b"\"sub_1\"",
                b"true",
            ] {
                let r = raw(&app, Method::Post, path, user(U1, NOW), body, NOW).await;
                assert_eq!(
                    (r.status, r.body_json()["error"]["code"].as_str().is_some()),
                    (400, true),
                    "POST {path} with body {}: answered {} {}",
                    String::from_utf8_lossy(body),
                    r.status,
                    text(&r)
                );
            }
        }
        let seen: Vec<String> = rec
            .seen
            .borrow()
            .iter()
            .map(|r| format!("{} {}", r.method.as_str(), r.url))
            .collect();
        assert!(
            seen.is_empty(),
            "a malformed body reached the provider: {seen:?}"
        );
    })
}

// ------------------------------------------------------------------ seat request ids

/// Org Seats with OWNER's organization on a 3-seat plan and BOB a member; every request a
/// second after the last unless given a time.
struct Seats {
    app: App<NoNetwork, MemoryStore>,
    now: std::cell::Cell<i64>,
    org: String,
}

impl Seats {
    async fn new() -> (Seats, Value) {
        let app = App::with_store(config("org-seats"), NoNetwork, MemoryStore::new()).expect("app");
        for u in [U1, BOB] {
            app.ctx.store.add_user_with_email(u, &common::email_of(u));
        }
        let t = Seats {
            app,
            now: std::cell::Cell::new(NOW),
            org: String::new(),
        };
        let (s, v) = t
            .call(
                Method::Post,
                "/v1/orgs",
                user(U1, t.tick()),
                json!({"name": "Acme"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let org = v["id"].as_str().unwrap().to_string();
        let at = t.tick();
        let ev = json!({"id": format!("evt_sub_{at}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
            "type": "customer.subscription.created", "livemode": false, "data": {"object": {
            "id": "sub_org1", "object": "subscription", "customer": "cus_org1", "status": "active",
            "cancel_at_period_end": false, "start_date": NOW, "created": NOW,
            "metadata": {"organization_id": org, "offer_key": "ORG_BUSINESS_MONTHLY"},
            "items": {"object": "list", "data": [{"id": "si_org1", "object": "subscription_item", "quantity": 3,
                "price": {"id": "price_org_business", "object": "price", "lookup_key": "ORG_BUSINESS_MONTHLY", "metadata": {}},
                "current_period_start": NOW, "current_period_end": NOW + 30 * DAY}]}}}});
        let r = stripe_raw(&t.app, ev.to_string().as_bytes(), at).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        // BOB invited with a seat, and accepted.
        let (s, inv) = t
            .call(
                Method::Post,
                &format!("/v1/orgs/{org}/invites"),
                user(U1, t.tick()),
                json!({"email": common::email_of(BOB), "role": "member", "seat": true}),
            )
            .await;
        assert_eq!(s, 201, "{inv}");
        let (s, v) = t
            .call(
                Method::Post,
                &format!("/v1/invites/{}/accept", inv["token"].as_str().unwrap()),
                user(BOB, t.tick()),
                Value::Null,
            )
            .await;
        assert_eq!((s, v["seat"].as_bool()), (200, Some(true)), "{v}");
        (Seats { org, ..t }, inv)
    }

    fn tick(&self) -> i64 {
        self.now.set(self.now.get() + 1);
        self.now.get()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: Headers,
        body: Value,
    ) -> (u16, Value) {
        self.call_at(self.now.get(), method, path, headers, body)
            .await
    }

    async fn call_at(
        &self,
        now: i64,
        method: Method,
        path: &str,
        headers: Headers,
        body: Value,
    ) -> (u16, Value) {
        let body = if body.is_null() {
            vec![]
        } else {
            body.to_string().into_bytes()
        };
        let r = raw(&self.app, method, path, headers, &body, now).await;
        (r.status, r.body_json())
    }

    async fn admin_seat(&self, now: i64, action: &str, request_id: Option<&str>) -> (u16, Value) {
        let mut body = json!({"organization_id": self.org, "user_id": BOB, "action": action});
        if let Some(id) = request_id {
            body["request_id"] = json!(id);
        }
        self.call_at(now, Method::Post, "/v1/admin/seats", admin(), body)
            .await
    }
}

/// An operator's `request_id` is the operator's own: one that happens to read
/// `invite:<invite id>` (the request id the worker gives the seat an accepted invite
/// reserved) must not land on that seat's fact. Here BOB's invited seat was taken back by
/// the owner; the operator seats BOB again, with two of three seats free: 200 `seated`
/// under any request id (the control: `op-1`), also under that one.
#[test]
fn an_operators_seat_request_id_never_lands_on_the_key_of_an_invites_seat() {
    block(async {
        for chosen in [None, Some("invite")] {
            let (t, inv) = Seats::new().await;
            let (s, v) = t
                .call(
                    Method::Post,
                    &format!("/v1/orgs/{}/seats", t.org),
                    user(U1, t.tick()),
                    json!({"user_id": BOB, "action": "take"}),
                )
                .await;
            assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
            let id = match chosen {
                None => "op-1".to_string(),
                Some(_) => format!("invite:{}", inv["id"].as_str().unwrap()),
            };
            let (s, v) = t.admin_seat(t.tick(), "assign", Some(&id)).await;
            assert_eq!(
                (s, v["status"].as_str()),
                (200, Some("seated")),
                "request_id {id:?}: {s} {v}"
            );
            assert!(t.app.ctx.store.seat_held(&t.org, BOB).await.unwrap());
        }
    })
}

/// The same for the request id the worker gives an operator's request that names none
/// (`<action>:<unix seconds>`): an operator who later chooses that text as its own
/// `request_id` makes a new change, not a copy of the old one. BOB is seated by the operator
/// (no request id) at T, his seat is taken by the owner, and the operator seats him again
/// with `request_id` `assign:T`: 200 `seated` (the control: `op-2`).
#[test]
fn an_operators_seat_request_id_never_lands_on_a_request_id_the_worker_made() {
    block(async {
        for chosen in [false, true] {
            let (t, _) = Seats::new().await;
            let path = format!("/v1/orgs/{}/seats", t.org);
            let take = || {
                t.call(
                    Method::Post,
                    &path,
                    user(U1, t.tick()),
                    json!({"user_id": BOB, "action": "take"}),
                )
            };
            let (s, v) = take().await;
            assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
            let at = t.tick();
            let (s, v) = t.admin_seat(at, "assign", None).await;
            assert_eq!(
                (s, v["status"].as_str()),
                (200, Some("seated")),
                "the operator's first seat: {v}"
            );
            let (s, v) = take().await;
            assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
            let id = if chosen {
                format!("assign:{at}")
            } else {
                "op-2".to_string()
            };
            let (s, v) = t.admin_seat(t.tick(), "assign", Some(&id)).await;
            assert_eq!(
                (s, v["status"].as_str()),
                (200, Some("seated")),
                "request_id {id:?}: {s} {v}"
            );
        }
    })
}

// ------------------------------------------------------------------ concurrency

/// Requests in flight together on one isolate: the same Idempotency-Key charges once, and
/// different keys each charge; the balance moves by exactly what was charged.
#[test]
fn concurrent_charges_under_one_key_charge_once() {
    block(async {
        let app = memory_app("video-studio");
        let grant = json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 500, "id": "start"}]});
        assert_eq!(
            raw(
                &app,
                Method::Post,
                "/v1/admin/grants",
                admin(),
                grant.to_string().as_bytes(),
                NOW
            )
            .await
            .status,
            201
        );
        let warm = raw(
            &app,
            Method::Post,
            "/v1/check",
            user(U1, NOW),
            br#"{"feature":"video_seconds"}"#,
            NOW,
        )
        .await;
        assert_eq!(warm.status, 200, "{}", text(&warm));
        let before = app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        let body = br#"{"feature":"video_seconds","quantity":10}"#;
        let same: Vec<_> = (0..6)
            .map(|_| {
                raw(
                    &app,
                    Method::Post,
                    "/v1/track",
                    user(U1, NOW).with("idempotency-key", "same"),
                    body,
                    NOW,
                )
            })
            .collect();
        let distinct: Vec<_> = (0..6)
            .map(|i| {
                raw(
                    &app,
                    Method::Post,
                    "/v1/track",
                    user(U1, NOW).with("idempotency-key", format!("k{i}")),
                    body,
                    NOW,
                )
            })
            .collect();
        let (a, b) = futures_join(same, distinct).await;
        let ids: std::collections::BTreeSet<String> = a
            .iter()
            .map(|r| {
                r.body_json()["usage_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert!(
            a.iter().all(|r| r.status == 200),
            "{:?}",
            a.iter().map(text).collect::<Vec<_>>()
        );
        assert_eq!(ids.len(), 1, "one usage under one key: {ids:?}");
        assert!(
            b.iter().all(|r| r.status == 200),
            "{:?}",
            b.iter().map(text).collect::<Vec<_>>()
        );
        let after = app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        assert_eq!(
            before - after,
            70,
            "one charge of 10 under the shared key and six of 10"
        );
    })
}

async fn futures_join<F: std::future::Future<Output = AppResponse>>(
    a: Vec<F>,
    b: Vec<F>,
) -> (Vec<AppResponse>, Vec<AppResponse>) {
    let all: Vec<F> = a.into_iter().chain(b).collect();
    let n = all.len() / 2;
    let mut out = join_all(all).await;
    let second = out.split_off(n);
    (out, second)
}

/// A minimal join of futures on the current thread (polled round-robin).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut futs: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (f, d) in futs.iter_mut().zip(done.iter_mut()) {
            if d.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *d = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(done.iter_mut().map(|d| d.take().unwrap()).collect())
        }
    })
    .await
}

// ------------------------------------------------------------------ unauthenticated load

/// Forged webhook deliveries (no valid signature) are refused before anything is read:
/// however many arrive, the store is not asked for anything on their account.
#[test]
fn forged_webhooks_make_the_store_read_nothing() {
    block(async {
        let app = memory_app("video-studio");
        assert_eq!(
            raw(&app, Method::Get, "/healthz", Headers::new(), b"", NOW)
                .await
                .status,
            200
        );
        let asked = app.ctx.store.requests();
        for i in 0..20 {
            let r = raw(
                &app,
                Method::Post,
                "/webhooks/stripe",
                Headers::new().with("stripe-signature", "t=1,v1=00"),
                b"{}",
                NOW + i,
            )
            .await;
            assert_eq!(r.status, 400);
            let r = raw(
                &app,
                Method::Post,
                "/webhooks/razorpay",
                Headers::new().with("x-razorpay-signature", "00"),
                b"{}",
                NOW + i,
            )
            .await;
            assert_eq!(r.status, 400);
        }
        assert_eq!(
            app.ctx.store.requests(),
            asked,
            "40 forged deliveries made the store answer {} requests",
            app.ctx.store.requests() - asked
        );
    })
}

// ------------------------------------------------------------------ headers

/// Headers repeated (the first counts), in odd case, enormous, or wrong content types:
/// answered as the rules say, never a panic or a 5xx.
#[test]
fn odd_headers_are_answered_cleanly() {
    block(async {
        let app = memory_app("video-studio");
        let body = br#"{"feature":"video_seconds"}"#;
        // Case-insensitive names; the content type does not change how a JSON body is read.
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "application/json; charset=latin1",
        ] {
            let h = Headers(vec![
                ("AUTHORIZATION".into(), format!("bearer {}", token(U1, NOW))),
                ("Content-Type".into(), ct.into()),
            ]);
            let r = raw(&app, Method::Post, "/v1/check", h, body, NOW).await;
            assert_eq!(r.status, 200, "content-type {ct:?}: {}", text(&r));
        }
        // A second Authorization header does not replace the first (a valid one first).
        let h = Headers(vec![
            ("authorization".into(), format!("Bearer {}", token(U1, NOW))),
            ("authorization".into(), "Bearer forged".into()),
        ]);
        assert_eq!(
            raw(&app, Method::Post, "/v1/check", h, body, NOW)
                .await
                .status,
            200
        );
        let h = Headers(vec![
            ("authorization".into(), "Bearer forged".into()),
            ("authorization".into(), format!("Bearer {}", token(U1, NOW))),
        ]);
        assert_eq!(
            raw(&app, Method::Post, "/v1/check", h, body, NOW)
                .await
                .status,
            401
        );
        // An enormous header value of every kind.
        let big = "x".repeat(2_000_000);
        for name in [
            "authorization",
            "idempotency-key",
            "if-none-match",
            "content-length",
            "x-admin-secret",
            "stripe-signature",
        ] {
            let h = user(U1, NOW).with(name, big.clone());
            for (m, path) in [
                (Method::Post, "/v1/track"),
                (Method::Get, "/v1/catalog"),
                (Method::Post, "/v1/admin/grants"),
                (Method::Post, "/webhooks/stripe"),
            ] {
                let r = raw(&app, m, path, h.clone(), body, NOW).await;
                assert!(
                    r.status < 500 || r.status == 503,
                    "{name} on {path}: {} {}",
                    r.status,
                    text(&r)
                );
                if r.status >= 400 {
                    assert_error(&r, name);
                }
            }
        }
        // A content-length that is not a number is not a reason to refuse or to crash.
        for cl in ["-1", "abc", "1e9", " 12 ", "99999999999999999999999999"] {
            let r = raw(
                &app,
                Method::Post,
                "/v1/check",
                user(U1, NOW).with("content-length", cl),
                body,
                NOW,
            )
            .await;
            assert!(
                r.status == 200 || r.status == 413,
                "content-length {cl}: {} {}",
                r.status,
                text(&r)
            );
        }
    })
}

/// A refusal that quotes the caller's input (an offer, a feature, a subscription id) sends
/// back at most 1,000 characters of message, however long the input (up to the 1 MiB body).
#[test]
fn a_refusal_never_sends_a_long_input_back_whole() {
    block(async {
        let app = memory_app("video-studio");
        let long = "é".repeat(400_000);
        for (path, body) in [
            ("/v1/checkout", json!({"offer": long, "success_url": "https://a.example", "cancel_url": "https://a.example"})),
            ("/v1/check", json!({"feature": long, "quantity": 1})),
            ("/v1/track", json!({"feature": long, "quantity": 1})),
            ("/v1/subscriptions/change", json!({"offer": long})),
            ("/v1/subscriptions/cancel", json!({"subscription": long})),
        ] {
            let bytes = body.to_string();
            assert!(bytes.len() < tollgate_worker::routes::MAX_BODY_BYTES, "{path}");
            let h = user(U1, NOW).with("idempotency-key", "long-input");
            let r = raw(&app, Method::Post, path, h, bytes.as_bytes(), NOW).await;
            assert!((400..500).contains(&r.status), "{path}: {} {}", r.status, &text(&r)[..200.min(text(&r).len())]);
            assert_error(&r, path);
            let message = r.body_json()["error"]["message"].as_str().unwrap_or("").to_string();
            assert!(message.chars().count() <= 1100, "{path}: a message of {} characters", message.chars().count());
            assert!(r.body.len() < 8_000, "{path}: an answer of {} bytes", r.body.len());
        }
    })
}
