//! Bad input at the admin API and in access tokens is refused before it is stored or
//! trusted, and a snapshot expires no later than the balances it carries (native, on the
//! in-memory store).

mod common;

use serde_json::{json, Value};

use common::{block, b64, hmac, ADMIN_SECRET, JWT_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const NOW: i64 = 1_800_000_000;
const U1: &str = "00000000-0000-4000-8000-0000000000a1";

fn app(catalog: &str) -> App<common::NoNetwork, MemoryStore> {
    let mut config = common::config("http://127.0.0.1:1", "svc", catalog);
    config.snapshot_secret = Some([7u8; 32]);
    let app = App::with_store(config, common::NoNetwork, MemoryStore::new()).expect("app");
    app.ctx.store.add_user(U1);
    app
}

async fn call(app: &App<common::NoNetwork, MemoryStore>, method: Method, path: &str, headers: Headers, body: Vec<u8>, now: i64) -> (u16, Value) {
    let req = InRequest { method, path: path.into(), query: String::new(), headers, body };
    let r = app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

async fn admin(app: &App<common::NoNetwork, MemoryStore>, path: &str, body: Value, now: i64) -> (u16, Value) {
    let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
    call(app, Method::Post, path, h, body.to_string().into_bytes(), now).await
}

fn token_with(claims: Value) -> String {
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(claims.to_string().as_bytes());
    let sig = b64(&hmac(JWT_SECRET, &format!("{head}.{body}")));
    format!("{head}.{body}.{sig}")
}

fn user_headers(uid: &str, now: i64) -> Headers {
    Headers::new().with("authorization", format!("Bearer {}", common::user_token(uid, ISSUER, now)))
}

/// An admin grant whose `valid_to` is unix seconds outside the years 0000-9999 is a 400,
/// as the same instant written as text is: stored, it could not be read back, and every
/// route of the user would fail.
#[test]
fn an_admin_grant_out_of_the_years_is_refused() {
    block(async {
        let app = app("vcm-suite");
        let grant = |valid_to: i64| json!({"user_id": U1, "grants": [{"product": "video", "tier": "pro", "id": "far", "valid_to": valid_to}]});
        let (s, v) = admin(&app, "/v1/admin/grants", grant(99_999_999_999_999), NOW).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_grant")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("outside the years 0000 to 9999"), "{v}");
        let (s, v) = call(&app, Method::Get, "/v1/entitlements", user_headers(U1, NOW + 1), vec![], NOW + 1).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = admin(&app, "/v1/admin/grants", grant(NOW + 86_400), NOW + 2).await;
        assert_eq!(s, 201, "{v}");
    });
}

/// An admin credit carries at most `MAX_CREDIT` units (a whole number JavaScript reads
/// exactly); more is a 400, and balances add up without wrapping.
#[test]
fn admin_credits_are_bounded_and_balances_never_wrap() {
    block(async {
        let app = app("video-studio");
        let max = tollgate::credits::MAX_CREDIT;
        let credit = |id: &str, amount: i64| json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": amount, "id": id}]});
        let (s, v) = admin(&app, "/v1/admin/grants", credit("big", i64::MAX / 2 + 1), NOW).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_credit")), "{v}");
        for (i, id) in ["a", "b"].iter().enumerate() {
            let (s, v) = admin(&app, "/v1/admin/grants", credit(id, max), NOW + i as i64).await;
            assert_eq!(s, 201, "{v}");
        }
        let (s, v) = call(&app, Method::Get, "/v1/entitlements", user_headers(U1, NOW + 5), vec![], NOW + 5).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["snapshot"]["balances"]["video_seconds"].as_i64(), Some(2 * max), "{v}");
    });
}

/// Credits ending within the snapshot's lifetime: the snapshot expires when they do, so
/// the browser never counts a balance the worker no longer has.
#[test]
fn a_snapshot_expires_no_later_than_the_credits_it_counts() {
    block(async {
        let app = app("video-studio");
        let lot_end = NOW + 600;
        let (s, v) = admin(&app, "/v1/admin/grants",
            json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 100, "id": "short", "valid_to": lot_end}]}), NOW).await;
        assert_eq!(s, 201, "{v}");
        let (s, v) = call(&app, Method::Get, "/v1/entitlements", user_headers(U1, NOW + 1), vec![], NOW + 1).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["snapshot"]["balances"]["video_seconds"].as_i64(), Some(100), "{v}");
        let expires = Timestamp::parse(v["snapshot"]["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(expires, Timestamp(lot_end), "{v}");
    });
}

/// NumericDates may carry a fraction (RFC 7519): a token not valid for another hour is
/// refused whether its `nbf` is whole or not, a fractional `exp` is read, and a claim
/// that is not a number is malformed rather than ignored.
#[test]
fn token_dates_with_fractions_are_read_not_ignored() {
    block(async {
        let app = app("vcm-suite");
        let get = |claims: Value| {
            let h = Headers::new().with("authorization", format!("Bearer {}", token_with(claims)));
            call(&app, Method::Get, "/v1/entitlements", h, vec![], NOW)
        };
        let base = |extra: Value| {
            let mut c = json!({"sub": U1, "role": "authenticated", "aud": "authenticated", "iss": ISSUER, "exp": NOW + 7200});
            c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            c
        };
        let (s, v) = get(base(json!({"nbf": (NOW + 3600) as f64 + 0.5}))).await;
        assert_eq!(s, 401, "{v}");
        let (s, v) = get(base(json!({"exp": (NOW + 60) as f64 + 0.25}))).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = get(base(json!({"nbf": "soon"}))).await;
        assert_eq!(s, 401, "{v}");
    });
}
