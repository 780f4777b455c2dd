//! An adversarial pass over the operator's routes (`/v1/admin/*`), native on the in-memory
//! store: an attacker without the admin secret, and a careless operator (credits sent twice,
//! with or without an id, with other values under one id; amounts and times of every odd
//! shape; unknown pools, products, tiers and subjects; ids that read like the keys the
//! system writes; kept events attributed twice or at once; bodies with fields of the wrong
//! shape). After every step money is conserved: a pool's balance is what was credited less
//! what was charged, no credit lands twice, and every refusal is a JSON 4xx that writes
//! nothing and tells nothing of the store's insides.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use serde_json::{json, Value};

use common::{block, raw, text, NoNetwork, ADMIN_SECRET, JWT_SECRET, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{AppResponse, Headers, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::Store;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000b1";
const U2: &str = "00000000-0000-4000-8000-0000000000b2";
/// A well-formed user id no one has.
const GHOST: &str = "00000000-0000-4000-8000-0000000000bf";
const ORG: &str = "00000000-0000-4000-8000-0000000000c1";

// ------------------------------------------------------------------ harness

fn config(catalog: &str) -> Config {
    let mut c = common::config("http://127.0.0.1:1", "svc", catalog);
    c.snapshot_secret = Some([5u8; 32]);
    c
}

fn app(catalog: &str) -> App<NoNetwork, MemoryStore> {
    let app = App::with_store(config(catalog), NoNetwork, MemoryStore::new()).expect("app");
    for u in [U1, U2] {
        app.ctx.store.add_user_with_email(u, &common::email_of(u));
    }
    app.ctx.store.add_org(ORG);
    app
}

fn admin_headers() -> Headers {
    Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"))
}

fn user_headers(uid: &str, now: i64) -> Headers {
    Headers::new().with("authorization", format!("Bearer {}", common::token_with_email(uid, ISSUER, now)))
}

/// A 4xx whose body is `{"error": {"code", "message"}}` with `code`, JSON, naming nothing
/// of the store (tables, SQL, constraints).
fn assert_refused(r: &AppResponse, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", text(r));
    let v = r.body_json();
    assert_eq!(v["error"]["code"].as_str(), Some(code), "{what}: {v}");
    let message = v["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}: no message: {v}"));
    assert!(!message.is_empty(), "{what}");
    assert_eq!(r.headers.get("content-type"), Some("application/json; charset=utf-8"), "{what}");
    let lower = text(r).to_lowercase();
    for inside in ["sql", "constraint", "relation", "postgres", "panicked", "fact_conflict", "fold_stale"] {
        assert!(!lower.contains(inside), "{what}: the answer tells of the store ({inside}): {}", text(r));
    }
}

async fn post_admin(app: &App<NoNetwork, MemoryStore>, path: &str, body: &Value, now: i64) -> AppResponse {
    raw(app, Method::Post, path, admin_headers(), body.to_string().as_bytes(), now).await
}

async fn grants(app: &App<NoNetwork, MemoryStore>, body: &Value, now: i64) -> AppResponse {
    post_admin(app, "/v1/admin/grants", body, now).await
}

fn credit(subject: &str, pool: &str, id: &str, amount: Value) -> Value {
    json!({"user_id": subject, "credits": [{"pool": pool, "amount": amount, "id": id}]})
}

fn balance(app: &App<NoNetwork, MemoryStore>, uid: &str, pool: &str) -> i64 {
    app.ctx.store.balance(&Subject::user(uid), pool)
}

/// What the subject's lots of `pool` were given in all (as stored).
fn granted(app: &App<NoNetwork, MemoryStore>, uid: &str, pool: &str) -> i64 {
    app.ctx.store.lots(&Subject::user(uid)).iter().filter(|l| l.pool == pool).map(|l| l.granted).sum()
}

/// Spends `seconds` of standard-quality video as `uid` under `key` (one second costs one
/// unit of `video_seconds` in Video Studio's standard watermark quote).
async fn consume(app: &App<NoNetwork, MemoryStore>, uid: &str, key: &str, seconds: i64, now: i64) -> AppResponse {
    let body = json!({"model": "standard", "quality": "watermark", "seconds": seconds}).to_string();
    let h = user_headers(uid, now).with("idempotency-key", key);
    raw(app, Method::Post, "/v1/usage/consume", h, body.as_bytes(), now).await
}

/// Balance = what the lots were given - what was charged from them, and the stored
/// balance says the same.
fn assert_conserved(app: &App<NoNetwork, MemoryStore>, uid: &str, pool: &str, credited: i64, spent: i64, what: &str) {
    assert_eq!(granted(app, uid, pool), credited, "{what}: credited in all");
    let used: i64 = app.ctx.store.lots(&Subject::user(uid)).iter().filter(|l| l.pool == pool).map(|l| l.used).sum();
    assert_eq!(used, spent, "{what}: charged in all");
    assert_eq!(balance(app, uid, pool), credited - spent, "{what}: balance");
}

// ------------------------------------------------------------------ credits sent twice

/// A credit retried (at once, a minute later, a day later) gives its units once; the same
/// id with another amount, another expiry or another reason is a 409 `already_granted`,
/// and the refused credit moves no balance, before or after a charge.
#[test]
fn a_credit_id_reused_with_other_values_is_409_and_moves_no_balance() {
    block(async {
        let app = app("video-studio");
        let pool = "video_seconds";
        let r = grants(&app, &credit(U1, pool, "comp-1", json!(600)), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_conserved(&app, U1, pool, 600, 0, "first");
        for at in [NOW, NOW + 60, NOW + DAY] {
            let r = grants(&app, &credit(U1, pool, "comp-1", json!(600)), at).await;
            assert_eq!(r.status, 201, "retry at {at}: {}", text(&r));
            assert_conserved(&app, U1, pool, 600, 0, "retried");
        }
        let r = consume(&app, U1, "render-1", 100, NOW + 10).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_conserved(&app, U1, pool, 600, 100, "after a charge");
        for (i, other) in [
            credit(U1, pool, "comp-1", json!(900)),
            credit(U1, pool, "comp-1", json!(1)),
            json!({"user_id": U1, "credits": [{"pool": pool, "amount": 600, "id": "comp-1", "valid_to": NOW + 30 * DAY}]}),
            json!({"user_id": U1, "credits": [{"pool": pool, "amount": 600, "id": "comp-1", "reason": "again"}]}),
        ]
        .iter()
        .enumerate()
        {
            let r = grants(&app, other, NOW + 20 + i as i64).await;
            assert_refused(&r, 409, "already_granted", &format!("other values {other}"));
            assert_conserved(&app, U1, pool, 600, 100, &format!("after the refused {other}"));
        }
        // Retried again after the refusals: still once.
        let r = grants(&app, &credit(U1, pool, "comp-1", json!(600)), NOW + 2 * DAY).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_conserved(&app, U1, pool, 600, 100, "final");
    })
}

/// One request naming one credit id twice: with the same values it credits once; with
/// other values it is refused whole (nothing of it is credited, nor of the other credits
/// it carries).
#[test]
fn one_request_naming_a_credit_id_twice_credits_once_or_nothing() {
    block(async {
        let app = app("video-studio");
        let pool = "video_seconds";
        let same = json!({"user_id": U1, "credits": [
            {"pool": pool, "amount": 100, "id": "twice"}, {"pool": pool, "amount": 100, "id": "twice"}]});
        let r = grants(&app, &same, NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_conserved(&app, U1, pool, 100, 0, "the same credit twice in one request");
        let other = json!({"user_id": U2, "credits": [
            {"pool": pool, "amount": 50, "id": "fine"},
            {"pool": pool, "amount": 100, "id": "clash"}, {"pool": pool, "amount": 700, "id": "clash"}]});
        let r = grants(&app, &other, NOW + 1).await;
        assert!((400..500).contains(&r.status), "one id, two amounts: {}", text(&r));
        assert_conserved(&app, U2, pool, 0, 0, "a refused request credits nothing");
        // Then sent right: credited once.
        let right = json!({"user_id": U2, "credits": [{"pool": pool, "amount": 100, "id": "clash"}]});
        let r = grants(&app, &right, NOW + 2).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_conserved(&app, U2, pool, 100, 0, "then right");
    })
}

/// One credit id on two pools is two credits (the id names the credit within its pool),
/// each once; the same id for two subjects is each one's own.
#[test]
fn a_credit_id_is_one_credit_per_pool_and_subject() {
    block(async {
        let app = app("razorpay-ai");
        let body = json!({"user_id": U1, "credits": [
            {"pool": "ai_credits", "amount": 40, "id": "welcome"}, {"pool": "free_drafts", "amount": 3, "id": "welcome"}]});
        for at in [NOW, NOW + 5] {
            let r = grants(&app, &body, at).await;
            assert_eq!(r.status, 201, "{}", text(&r));
        }
        assert_eq!(granted(&app, U1, "ai_credits"), 40);
        let r = grants(&app, &credit(U2, "ai_credits", "welcome", json!(40)), NOW + 6).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_eq!(granted(&app, U2, "ai_credits"), 40);
        assert_eq!(granted(&app, U1, "ai_credits"), 40, "U1's credit untouched");
    })
}

// ------------------------------------------------------------------ amounts, pools, subjects

/// Amounts of every wrong shape (strings, decimals, exponents, negative, zero, over the
/// limit, booleans, null, missing) and credits with unknown pools or without an id are
/// 400 `invalid_credit`, and credit nothing.
#[test]
fn odd_amounts_pools_and_ids_are_400_and_credit_nothing() {
    block(async {
        let app = app("video-studio");
        let pool = "video_seconds";
        let max = tollgate::credits::MAX_CREDIT;
        for amount in [
            json!("600"),
            json!("6e2"),
            json!(600.0),
            json!(0.5),
            json!(-600),
            json!(0),
            json!(max + 1),
            json!(u64::MAX),
            json!(true),
            json!(null),
            json!([600]),
            json!({"units": 600}),
            serde_json::from_str::<Value>("1e3").unwrap(),
            serde_json::from_str::<Value>("-0").unwrap(),
        ] {
            let r = grants(&app, &credit(U1, pool, "odd", amount.clone()), NOW).await;
            assert_refused(&r, 400, "invalid_credit", &format!("amount {amount}"));
        }
        let r = grants(&app, &json!({"user_id": U1, "credits": [{"pool": pool, "id": "odd"}]}), NOW).await;
        assert_refused(&r, 400, "invalid_credit", "no amount");
        for p in [json!("video_minutes"), json!(""), json!(7), json!(null), json!("VIDEO_SECONDS")] {
            let body = json!({"user_id": U1, "credits": [{"pool": p, "amount": 5, "id": "p"}]});
            let r = grants(&app, &body, NOW).await;
            assert_refused(&r, 400, "invalid_credit", &format!("pool {p}"));
        }
        for id in [json!(""), json!(42), json!(null), json!("x".repeat(201))] {
            let body = json!({"user_id": U1, "credits": [{"pool": pool, "amount": 5, "id": id}]});
            let r = grants(&app, &body, NOW).await;
            assert_refused(&r, 400, "invalid_credit", &format!("id {id}"));
        }
        // A credit ending now or before is refused; one ending in a second is given.
        for to in [json!(NOW), json!(NOW - 1), json!("2020-01-01T00:00:00Z")] {
            let body = json!({"user_id": U1, "credits": [{"pool": pool, "amount": 5, "id": "late", "valid_to": to}]});
            let r = grants(&app, &body, NOW).await;
            assert_refused(&r, 400, "invalid_credit", &format!("valid_to {to}"));
        }
        assert_eq!(granted(&app, U1, pool), 0);
        assert!(app.ctx.store.ledger(&Subject::user(U1)).is_empty());
        assert_eq!(max, 1_000_000_000_000_000, "the README's limit: 1 to 10^15 units");
        let r = grants(&app, &credit(U1, pool, "max", json!(max)), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
    })
}

/// Unknown products and tiers (or of the wrong case or type), sources an operator may not
/// give, and grant ids that are not strings are 400 `invalid_grant` and grant nothing.
#[test]
fn odd_grants_are_400_and_grant_nothing() {
    block(async {
        let app = app("vcm-suite");
        for g in [
            json!({"product": "vid", "tier": "pro"}),
            json!({"product": "Video", "tier": "pro"}),
            json!({"product": "video", "tier": "Pro"}),
            json!({"product": "video", "tier": "platinum"}),
            json!({"product": "video"}),
            json!({"tier": "pro"}),
            json!({"product": 1, "tier": "pro"}),
            json!({"product": "video", "tier": "pro", "source": "stripe"}),
            json!({"product": "video", "tier": "pro", "source": "subscription"}),
            json!({"product": "video", "tier": "pro", "source": 1}),
            json!({"product": "video", "tier": "pro", "id": ""}),
            json!({"product": "video", "tier": "pro", "id": 2026}),
            json!({"product": "video", "tier": "pro", "id": ["spring"]}),
            json!({"product": "video", "tier": "pro", "id": "x".repeat(201)}),
        ] {
            let r = grants(&app, &json!({"user_id": U1, "grants": [g]}), NOW).await;
            assert_refused(&r, 400, "invalid_grant", &format!("grant {g}"));
        }
        assert!(app.ctx.store.grants(&Subject::user(U1)).is_empty());
    })
}

/// Two grants whose ids are numbers are two grants of the operator's, not one grant under
/// the product's name: a number where the id's text belongs is refused rather than read
/// as no id (which falls back to the product, so the second grant would replace the first
/// and a third, unnamed, grant would too).
#[test]
fn a_grant_id_that_is_not_text_never_becomes_the_products_id() {
    block(async {
        let app = app("vcm-suite");
        let g = |id: Value, tier: &str| json!({"user_id": U1, "grants": [{"product": "video", "tier": tier, "id": id,
                                                                     "valid_to": NOW + 30 * DAY}]});
        let r = grants(&app, &g(json!(2026), "pro"), NOW).await;
        assert_refused(&r, 400, "invalid_grant", "a numeric grant id");
        let r = grants(&app, &g(json!("2026"), "pro"), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        let r = grants(&app, &g(json!("2027"), "basic"), NOW + 1).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_eq!(app.ctx.store.grants(&Subject::user(U1)).len(), 2, "two grants of two ids");
    })
}

/// `grants` and `credits` must be arrays when given: a lone object (the operator forgot
/// the brackets) or any other value beside valid entries is refused, never skipped while
/// the rest is granted and answered 201.
#[test]
fn grants_or_credits_that_are_not_arrays_are_refused_not_skipped() {
    block(async {
        let app = app("video-studio");
        let good_credit = json!([{"pool": "video_seconds", "amount": 10, "id": "ok"}]);
        let good_grant = json!([{"product": "video", "tier": "pro", "valid_to": NOW + DAY}]);
        for (field, v) in [
            ("grants", json!({"product": "video", "tier": "pro"})),
            ("grants", json!("video:pro")),
            ("grants", json!(1)),
            ("grants", json!(true)),
            ("credits", json!({"pool": "video_seconds", "amount": 10, "id": "lone"})),
            ("credits", json!("10")),
        ] {
            let mut body = json!({"user_id": U1});
            body[field] = v.clone();
            if field == "grants" {
                body["credits"] = good_credit.clone();
            } else {
                body["grants"] = good_grant.clone();
            }
            let r = grants(&app, &body, NOW).await;
            assert!((400..500).contains(&r.status), "{field} = {v}: {}", text(&r));
            let code = r.body_json()["error"]["code"].as_str().unwrap_or("").to_string();
            assert!(code.starts_with("invalid_"), "{field} = {v}: {}", text(&r));
        }
        assert_eq!(granted(&app, U1, "video_seconds"), 0, "nothing credited");
        assert!(app.ctx.store.grants(&Subject::user(U1)).is_empty(), "nothing granted");
        // `null` is no list: the other field alone is granted.
        let r = grants(&app, &json!({"user_id": U1, "grants": null, "credits": good_credit}), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        // Empty lists are nothing to grant.
        let r = grants(&app, &json!({"user_id": U1, "grants": [], "credits": []}), NOW).await;
        assert_refused(&r, 400, "nothing_to_grant", "empty lists");
    })
}

/// The subject: exactly one of `user_id` and `organization_id`, each a UUID string. A
/// number (or anything else) in one beside a valid other is not "absent": 400. Unknown
/// users and organizations are 404 and nothing is stored; an organization's id given as
/// a user's is unknown; an upper-case id is the same subject.
#[test]
fn subjects_are_exactly_one_known_uuid() {
    block(async {
        let app = app("video-studio");
        let c = json!([{"pool": "video_seconds", "amount": 10, "id": "s"}]);
        for subject in [
            json!({}),
            json!({"user_id": U1, "organization_id": ORG}),
            json!({"user_id": 5, "organization_id": ORG}),
            json!({"user_id": U1, "organization_id": false}),
            json!({"user_id": [U1]}),
            json!({"user_id": "alice"}),
            json!({"user_id": format!("{U1} ")}),
            json!({"organization_id": "acme"}),
        ] {
            let mut body = subject.clone();
            body["credits"] = c.clone();
            let r = grants(&app, &body, NOW).await;
            assert_refused(&r, 400, "invalid_subject", &format!("subject {subject}"));
        }
        for subject in [json!({"user_id": GHOST}), json!({"user_id": ORG}), json!({"organization_id": U1})] {
            let mut body = subject.clone();
            body["credits"] = c.clone();
            let r = grants(&app, &body, NOW).await;
            assert_refused(&r, 404, "unknown_subject", &format!("subject {subject}"));
        }
        assert_eq!(app.ctx.store.lots(&Subject::Org(ORG.to_string())).len(), 0);
        assert_eq!(granted(&app, GHOST, "video_seconds"), 0);
        // An organization is credited as itself; an upper-case id is the same user.
        let r = grants(&app, &json!({"organization_id": ORG, "credits": c}), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_eq!(app.ctx.store.balance(&Subject::Org(ORG.to_string()), "video_seconds"), 10);
        for at in [NOW, NOW + 1] {
            let r = grants(&app, &json!({"user_id": U1.to_ascii_uppercase(), "credits": c}), at).await;
            assert_eq!(r.status, 201, "{}", text(&r));
            let r = grants(&app, &json!({"user_id": U1, "credits": c}), at).await;
            assert_eq!(r.status, 201, "{}", text(&r));
        }
        assert_conserved(&app, U1, "video_seconds", 10, 0, "one credit under both spellings");
    })
}

// ------------------------------------------------------------------ times

/// Times: RFC 3339 with any offset or a fraction, and unix seconds (a number or digits)
/// are read; a date alone, a decimal number, text that is no time, a window backwards or
/// empty, and years past 9999 are 400 `invalid_grant`. A window entirely in the past is
/// accepted (it records access that ended, or closes a grant) and gives no access now.
#[test]
fn grant_times_in_odd_formats() {
    block(async {
        let app = app("vcm-suite");
        let g = |from: Value, to: Value, id: &str| {
            json!({"user_id": U1, "grants": [{"product": "video", "tier": "pro", "id": id, "valid_from": from, "valid_to": to}]})
        };
        let day = Timestamp(NOW + DAY).to_rfc3339();
        for (from, to) in [
            (json!(NOW), json!(NOW)),
            (json!(NOW), json!(NOW - 1)),
            (json!("2027-01-15"), json!(null)),
            (json!(null), json!("2027-13-01T00:00:00Z")),
            (json!(null), json!("tomorrow")),
            (json!(null), json!("")),
            (json!(null), json!(1.8e9)),
            (json!(null), json!((NOW + DAY) as f64 + 0.5)),
            (json!(null), json!("10000-01-01T00:00:00Z")),
            (json!(null), json!(i64::MAX)),
            (json!(null), json!(u64::MAX)),
            (json!(null), json!(true)),
            (json!(null), json!({"at": NOW + DAY})),
            (json!(null), json!(NOW - DAY)),
        ] {
            let r = grants(&app, &g(from.clone(), to.clone(), "odd"), NOW).await;
            assert_refused(&r, 400, "invalid_grant", &format!("{from} .. {to}"));
        }
        assert!(app.ctx.store.grants(&Subject::user(U1)).is_empty());
        // One instant, four spellings: one grant, one fact.
        for (i, to) in [
            json!(day),
            json!(NOW + DAY),
            json!((NOW + DAY).to_string()),
            json!(Timestamp(NOW + DAY + 5 * 3600 + 1800).to_rfc3339().replace('Z', "+05:30")),
        ]
        .into_iter()
        .enumerate()
        {
            let r = grants(&app, &g(json!(NOW), to.clone(), "spellings"), NOW + i as i64).await;
            assert_eq!(r.status, 201, "{to}: {}", text(&r));
            assert_eq!(r.body_json()["grants"][0]["valid_to"], json!(day), "{to}");
        }
        let rows = app.ctx.store.grants(&Subject::user(U1));
        assert_eq!(rows.len(), 1, "{rows:?}");
        // A window in the past: accepted, gives nothing now.
        let r = grants(&app, &g(json!(NOW - 10 * DAY), json!(NOW - 5 * DAY), "past"), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        let rows = app.ctx.store.grants(&Subject::user(U1));
        let past = rows.iter().find(|r| r.to_string().contains("past")).expect("the past grant is recorded");
        assert_ne!(past["status"], "active", "{past}");
    })
}

// ------------------------------------------------------------------ ids that read like system keys

/// An operator's credit id that reads like a key the system writes (a payment's, a
/// charge's, a lot's, another subject's adjustment, with colons, percent signs and
/// control-free unicode) is a credit of its own: each one credits once, nothing the
/// system wrote is replaced, and the balance is the sum of them less what was charged.
#[test]
fn credit_ids_that_read_like_system_keys_are_credits_of_their_own() {
    block(async {
        let app = app("video-studio");
        let pool = "video_seconds";
        let r = grants(&app, &credit(U1, pool, "base", json!(1000)), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        let r = consume(&app, U1, "render-1", 100, NOW + 1).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let usage_id = r.body_json()["usage_id"].as_str().unwrap_or_default().to_string();
        let lots: Vec<String> = app.ctx.store.lots(&Subject::user(U1)).iter().map(|l| l.key.clone()).collect();
        let mut ids: Vec<String> = vec![
            "stripe:pi_1".into(),
            "stripe:cs_1".into(),
            "usage:render-1".into(),
            format!("usage:{usage_id}"),
            "render-1".into(),
            format!("admin:user:{U1}:base:{pool}"),
            format!("user:{U1}:base:{pool}"),
            "base:video_seconds".into(),
            "base%3Avideo_seconds".into(),
            "joined".into(),
            "free".into(),
            "seat:x:y:assign:z".into(),
            "ключ-🔑".into(),
        ];
        ids.extend(lots.iter().cloned());
        ids.extend(lots.iter().map(|l| l.trim_start_matches("adjustment:").to_string()));
        ids.sort();
        ids.dedup();
        let mut credited = 1000;
        for (i, id) in ids.iter().enumerate() {
            for retry in 0..2 {
                let r = grants(&app, &credit(U1, pool, id, json!(7)), NOW + 10 + i as i64 + retry).await;
                assert_eq!(r.status, 201, "id {id:?}: {}", text(&r));
            }
            credited += 7;
            assert_conserved(&app, U1, pool, credited, 100, &format!("after id {id:?}"));
        }
        // The charge is still one charge, and a retry of it is a replay.
        let r = consume(&app, U1, "render-1", 100, NOW + 500).await;
        assert_eq!((r.status, r.body_json()["replayed"].as_bool()), (200, Some(true)), "{}", text(&r));
        assert_conserved(&app, U1, pool, credited, 100, "final");
        assert_eq!(app.ctx.store.charges(&Subject::user(U1)).len(), 1);
    })
}

/// A grant id that reads like another grant's key (its source's prefix, a subscription's
/// grant, a seat's lent grant) is a manual grant of its own: the other stays as it was.
#[test]
fn grant_ids_that_read_like_other_grants_are_grants_of_their_own() {
    block(async {
        let app = app("vcm-suite");
        let g = |id: &str, source: &str, tier: &str| {
            json!({"user_id": U1, "grants": [{"product": "video", "tier": tier, "source": source, "id": id, "valid_to": NOW + 30 * DAY}]})
        };
        let r = grants(&app, &g("spring", "promotion", "pro"), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        for id in ["promotion:spring", "spring", "promotion%3Aspring", "stripe:sub_1", "org:x:video"] {
            let r = grants(&app, &g(id, "manual_grant", "basic"), NOW + 1).await;
            assert_eq!(r.status, 201, "{id}: {}", text(&r));
        }
        let rows = app.ctx.store.grants(&Subject::user(U1));
        assert_eq!(rows.len(), 6, "{rows:#?}");
        let promo: Vec<&Value> = rows.iter().filter(|r| r["tier"] == "pro").collect();
        assert_eq!(promo.len(), 1, "the promotion is untouched: {rows:#?}");
    })
}

// ------------------------------------------------------------------ auth

/// The admin secret alone opens the admin routes: a user's token (also of a user the
/// operator credits), the JWT secret, the service key, the Stripe secret, the secret in
/// another scheme or in the query, and an empty or blank header are 401 JSON answers;
/// an `ADMIN_SECRET` set blank disables the routes (404) for everyone, an empty secret
/// presented included. Nothing is written by any of them.
#[test]
fn only_the_admin_secret_opens_the_admin_routes() {
    block(async {
        let app = app("video-studio");
        let body = credit(U1, "video_seconds", "stolen", json!(1_000_000)).to_string();
        for h in [
            user_headers(U1, NOW),
            Headers::new().with("authorization", format!("Bearer {JWT_SECRET}")),
            Headers::new().with("authorization", "Bearer svc"),
            Headers::new().with("authorization", format!("Bearer {STRIPE_SECRET}")),
            Headers::new().with("authorization", format!("Basic {ADMIN_SECRET}")),
            Headers::new().with("authorization", ADMIN_SECRET),
            Headers::new().with("authorization", "Bearer "),
            Headers::new().with("authorization", "Bearer"),
            Headers::new().with("x-admin-secret", " "),
            Headers::new().with("x-admin-secret", ADMIN_SECRET.to_uppercase()),
            Headers::new().with("x-admin-secret", format!("{ADMIN_SECRET} x")),
            Headers::new().with("admin-secret", ADMIN_SECRET),
        ] {
            let r = raw(&app, Method::Post, "/v1/admin/grants", h.clone(), body.as_bytes(), NOW).await;
            assert_refused(&r, 401, "bad_admin_secret", &format!("{h:?}"));
            assert_eq!(r.headers.get("www-authenticate"), Some("Bearer"));
        }
        let r = raw(&app, Method::Post, &format!("/v1/admin/grants?admin_secret={ADMIN_SECRET}"), Headers::new(), body.as_bytes(), NOW).await;
        assert_refused(&r, 401, "bad_admin_secret", "the secret in the query");
        assert_eq!(granted(&app, U1, "video_seconds"), 0);
        // The right secret, by either header (and the bearer scheme in any case).
        for (i, h) in [
            admin_headers(),
            Headers::new().with("x-admin-secret", ADMIN_SECRET),
            Headers::new().with("authorization", format!("bearer {ADMIN_SECRET}")),
        ]
        .into_iter()
        .enumerate()
        {
            let b = credit(U1, "video_seconds", &format!("ok-{i}"), json!(1)).to_string();
            let r = raw(&app, Method::Post, "/v1/admin/grants", h, b.as_bytes(), NOW).await;
            assert_eq!(r.status, 201, "{}", text(&r));
        }
        assert_eq!(granted(&app, U1, "video_seconds"), 3);

        // ADMIN_SECRET blank: disabled, whatever is presented.
        for blank in ["", "   ", "\t"] {
            let mut c = config("video-studio");
            c.admin_secret = Config::from_lookup(|k| match k {
                "ADMIN_SECRET" => Some(blank.to_string()),
                "SUPABASE_URL" => Some("http://127.0.0.1:1".into()),
                "SUPABASE_SERVICE_ROLE_KEY" => Some("svc".into()),
                "SUPABASE_JWT_SECRET" => Some(JWT_SECRET.into()),
                _ => None,
            })
            .expect("config")
            .admin_secret;
            assert_eq!(c.admin_secret, None, "{blank:?} is no secret");
            let off = App::with_store(c, NoNetwork, MemoryStore::new()).expect("app");
            off.ctx.store.add_user(U1);
            for h in [
                Headers::new().with("authorization", "Bearer  "),
                Headers::new().with("x-admin-secret", blank),
                Headers::new(),
                admin_headers(),
            ] {
                let r = raw(&off, Method::Post, "/v1/admin/grants", h.clone(), body.as_bytes(), NOW).await;
                assert_refused(&r, 404, "not_found", &format!("disabled {blank:?} {h:?}"));
            }
            assert_eq!(off.ctx.store.balance(&Subject::user(U1), "video_seconds"), 0);
        }
    })
}

// ------------------------------------------------------------------ bodies

/// A body that names a field twice is ambiguous (JSON readers disagree on which one
/// counts): an operator's money request carrying `amount` or `user_id` twice is refused,
/// never read as the last one.
#[test]
fn an_admin_body_naming_a_field_twice_is_refused() {
    block(async {
        let app = app("video-studio");
        for body in [
            format!(r#"{{"user_id":"{U1}","credits":[{{"pool":"video_seconds","amount":1000000,"amount":10,"id":"dup"}}]}}"#),
            format!(r#"{{"user_id":"{U2}","user_id":"{U1}","credits":[{{"pool":"video_seconds","amount":10,"id":"dup"}}]}}"#),
            format!(r#"{{"user_id":"{U1}","credits":[{{"pool":"video_seconds","amount":10,"id":"a","id":"b"}}]}}"#),
        ] {
            let r = raw(&app, Method::Post, "/v1/admin/grants", admin_headers(), body.as_bytes(), NOW).await;
            assert!((400..500).contains(&r.status), "{body}: {}", text(&r));
            assert_eq!(r.body_json()["error"]["code"].as_str().map(|c| !c.is_empty()), Some(true), "{}", text(&r));
        }
        assert_eq!(granted(&app, U1, "video_seconds"), 0);
        assert_eq!(granted(&app, U2, "video_seconds"), 0);
    })
}

/// Bodies of odd shapes: deeply nested, a thousand credits, unknown fields, unicode
/// escapes. Nothing panics; what is valid is credited exactly once per id.
#[test]
fn big_and_nested_bodies_are_answered_cleanly() {
    block(async {
        let app = app("video-studio");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let body = format!(r#"{{"user_id":"{U1}","credits":{deep}}}"#);
        let r = raw(&app, Method::Post, "/v1/admin/grants", admin_headers(), body.as_bytes(), NOW).await;
        assert!((400..500).contains(&r.status), "{}", &text(&r)[..text(&r).len().min(300)]);
        let many: Vec<Value> = (0..1000).map(|i| json!({"pool": "video_seconds", "amount": 1, "id": format!("m-{}", i % 500), "note": "x"})).collect();
        let r = grants(&app, &json!({"user_id": U1, "credits": many, "extra": {"a": 1}}), NOW).await;
        assert_eq!(r.status, 201, "{}", &text(&r)[..text(&r).len().min(300)]);
        assert_conserved(&app, U1, "video_seconds", 500, 0, "500 ids, each twice");
        let escaped = format!(r#"{{"user_id":"{U1}","credits":[{{"pool":"video\u005fseconds","amount":3,"id":"\u00e9"}}]}}"#);
        let r = raw(&app, Method::Post, "/v1/admin/grants", admin_headers(), escaped.as_bytes(), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_conserved(&app, U1, "video_seconds", 503, 0, "escaped");
    })
}

// ------------------------------------------------------------------ seats

/// The operator's seats: unknown organizations (to give or to take back a seat) and
/// non-members (to give one) are 404, and no organization is made by asking; actions other
/// than assign and release, and request ids that are not text, are 400; taking back a seat
/// no one holds in an organization that exists is `released`, retried the same.
#[test]
fn operator_seats_refuse_the_unknown_and_retry_cleanly() {
    block(async {
        let app = app("org-seats");
        let seat = |org: &str, user: &str, action: Value, rid: Value| {
            json!({"organization_id": org, "user_id": user, "action": action, "request_id": rid})
        };
        let r = post_admin(&app, "/v1/admin/seats", &seat(GHOST, U1, json!("assign"), json!("r1")), NOW).await;
        assert_refused(&r, 404, "unknown_organization", "assign in no organization");
        let r = post_admin(&app, "/v1/admin/seats", &seat(ORG, U1, json!("assign"), json!("r1")), NOW).await;
        assert_refused(&r, 404, "not_a_member", "assign to a non-member");
        for action in [json!("give"), json!("ASSIGN"), json!(1), json!("")] {
            let r = post_admin(&app, "/v1/admin/seats", &seat(ORG, U1, action.clone(), json!("r1")), NOW).await;
            assert_refused(&r, 400, "invalid_action", &format!("action {action}"));
        }
        for rid in [json!(7), json!(true), json!({"id": 1})] {
            let r = post_admin(&app, "/v1/admin/seats", &seat(ORG, U1, json!("release"), rid.clone()), NOW).await;
            assert_refused(&r, 400, "invalid_request_id", &format!("request_id {rid}"));
        }
        for (org, user) in [("00000000-0000-4000-8000-0000000000cf", U1), ("00000000-0000-4000-8000-0000000000ce", GHOST)] {
            let r = post_admin(&app, "/v1/admin/seats", &seat(org, user, json!("release"), json!("r2")), NOW).await;
            assert_refused(&r, 404, "unknown_organization", &format!("release of {user} in {org}"));
            // No organization was made by it.
            let r = post_admin(&app, "/v1/admin/seats", &seat(org, user, json!("assign"), json!("r3")), NOW + 1).await;
            assert_refused(&r, 404, "unknown_organization", &format!("then assign of {user} in {org}"));
        }
        // Taking back a seat no one holds, in an organization that exists, asks nothing of
        // the member: released (it was never held), and retried the same.
        for at in [NOW, NOW + 1] {
            let r = post_admin(&app, "/v1/admin/seats", &seat(ORG, GHOST, json!("release"), json!("r4")), at).await;
            assert_eq!((r.status, r.body_json()["status"].as_str()), (200, Some("released")), "{}", text(&r));
        }
        assert!(!app.ctx.store.seat_held(ORG, U1).await.unwrap());
    })
}

// ------------------------------------------------------------------ kept events

fn envelope(id: &str, ty: &str, at: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
           "livemode": false, "pending_webhooks": 1, "data": {"object": object}})
}

/// A paid checkout of Video Studio's 30-minute pack (1800 seconds) naming no buyer.
fn unattributed_pack(n: &str, at: i64) -> Value {
    envelope(
        &format!("evt_cs_{n}"),
        "checkout.session.completed",
        at,
        json!({"id": format!("cs_{n}"), "object": "checkout.session", "mode": "payment", "status": "complete",
               "payment_status": "paid", "customer": format!("cus_{n}"), "subscription": null,
               "payment_intent": format!("pi_{n}"), "client_reference_id": null,
               "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN"}, "amount_total": 1900, "currency": "usd", "created": at}),
    )
}

async fn stripe(app: &App<NoNetwork, MemoryStore>, ev: &Value, now: i64) -> AppResponse {
    raw(app, Method::Post, "/webhooks/stripe", common::stripe_headers(ev, now), ev.to_string().as_bytes(), now).await
}

async fn attribute(app: &App<NoNetwork, MemoryStore>, body: Value, now: i64) -> AppResponse {
    post_admin(app, "/v1/admin/attribute", &body, now).await
}

/// A kept purchase attributed to a user who does not exist, to an organization, to the
/// wrong provider, or as an event never kept: refused, still kept, nothing credited. Then
/// attributed for real, twice in a row and twice at once, and retried a day later: the pack
/// is credited once; a charge between keeps balance = credits - usage; the same event to
/// another user is 409 and credits no one.
#[test]
fn a_kept_purchase_attributed_again_and_at_once_credits_once() {
    block(async {
        let app = app("video-studio");
        let pool = "video_seconds";
        let r = stripe(&app, &unattributed_pack("p1", NOW - 60), NOW - 60).await;
        assert_eq!((r.status, r.body_json()["status"].as_str()), (200, Some("kept")), "{}", text(&r));
        for (body, status, code) in [
            (json!({"event": "evt_cs_p1", "user_id": GHOST}), 404, "unknown_subject"),
            (json!({"event": "evt_cs_p1", "organization_id": GHOST}), 404, "unknown_subject"),
            (json!({"event": "evt_cs_p1", "user_id": ORG}), 404, "unknown_subject"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "provider": "razorpay"}), 404, "unknown_event"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "provider": "Stripe"}), 400, "invalid_provider"),
            (json!({"event": "evt_cs_nope", "user_id": U1}), 404, "unknown_event"),
            (json!({"event": "cs_p1", "user_id": U1}), 404, "unknown_event"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "offer": "VIDEO_TOKENS_99_MIN"}), 409, "invalid_offer"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "offer": 5}), 400, "invalid_offer"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "by": ""}), 400, "invalid_by"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "by": "a\nb"}), 400, "invalid_by"),
            (json!({"event": 1, "user_id": U1}), 400, "invalid_event"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "organization_id": ORG}), 400, "invalid_subject"),
            (json!({"event": "evt_cs_p1", "user_id": 5, "organization_id": ORG}), 400, "invalid_subject"),
            (json!({"event": "evt_cs_p1", "user_id": U1, "organization_id": false}), 400, "invalid_subject"),
        ] {
            let r = attribute(&app, body.clone(), NOW).await;
            assert_refused(&r, status, code, &format!("{body}"));
        }
        assert_eq!(app.ctx.store.kept().len(), 1, "still kept");
        assert_eq!(granted(&app, U1, pool), 0);

        // Twice at once.
        let a = attribute(&app, json!({"event": "evt_cs_p1", "user_id": U1}), NOW);
        let b = attribute(&app, json!({"event": "evt_cs_p1", "user_id": U1}), NOW);
        let (a, b) = futures_util::future::join(a, b).await;
        let mut statuses: Vec<String> = [&a, &b].iter().map(|r| r.body_json()["status"].as_str().unwrap_or("").to_string()).collect();
        statuses.sort();
        for r in [&a, &b] {
            assert_eq!(r.status, 200, "{}", text(r));
        }
        assert!(statuses.contains(&"attributed".to_string()), "{statuses:?}");
        assert_conserved(&app, U1, pool, 1800, 0, "attributed at once twice");
        assert!(app.ctx.store.kept().is_empty());

        let r = consume(&app, U1, "after-pack", 300, NOW + 1).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        for at in [NOW + 2, NOW + DAY] {
            let r = attribute(&app, json!({"event": "evt_cs_p1", "user_id": U1}), at).await;
            assert_eq!((r.status, r.body_json()["status"].as_str()), (200, Some("already_attributed")), "{}", text(&r));
            assert_conserved(&app, U1, pool, 1800, 300, "retried");
        }
        // The same payment delivered again by Stripe: nothing more.
        let r = stripe(&app, &unattributed_pack("p1", NOW - 60), NOW + 3).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_conserved(&app, U1, pool, 1800, 300, "redelivered");
        let r = attribute(&app, json!({"event": "evt_cs_p1", "user_id": U2}), NOW + 4).await;
        assert_refused(&r, 409, "attributed_to_other", "to another user");
        assert_eq!(granted(&app, U2, pool), 0);
        assert_conserved(&app, U1, pool, 1800, 300, "final");
    })
}

// ------------------------------------------------------------------ listings

/// A transport that counts what reaches it and fails every request.
#[derive(Clone, Default)]
struct Counting(Rc<Cell<usize>>);
impl Transport for Counting {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        self.0.set(self.0.get() + 1);
        Err(TransportError("counted".into()))
    }
}

/// A failed-payments cursor the store cannot read (`after` is the `next` of a page: an
/// instant, `|`, a row's id) is refused with 400 before the store is asked: sent on, the
/// SQL store fails the cast and the operator gets a 500 instead of a clear answer.
#[test]
fn a_failed_payments_cursor_that_is_no_cursor_is_400_before_the_store() {
    block(async {
        let counting = Counting::default();
        let app = App::new(config("video-studio"), counting.clone()).expect("app");
        // The first request reads the active catalog once (it fails here: the embedded one serves).
        let _ = raw(&app, Method::Get, "/healthz", Headers::new(), b"", NOW).await;
        let base = counting.0.get();
        for after in ["abc|def", "|", "x|00000000-0000-4000-8000-000000000001", "2027-01-01|x", "2027-13-01T00:00:00Z|a"] {
            let q = format!("/v1/admin/failed-payments?after={after}");
            let r = raw(&app, Method::Get, &q, admin_headers(), b"", NOW).await;
            assert_refused(&r, 400, "invalid_cursor", after);
        }
        assert_eq!(counting.0.get(), base, "a refused cursor never reaches the store");
        // A cursor as the store writes it passes (to a failing store here: 5xx).
        let q = "/v1/admin/failed-payments?after=2027-01-15T08:00:00Z|00000000-0000-4000-8000-000000000001";
        let r = raw(&app, Method::Get, q, admin_headers(), b"", NOW).await;
        assert!(r.status >= 500, "{}", text(&r));
    })
}

/// Credits that add up past what a balance may hold: an operator's credits bring a pool to
/// at most `MAX_BALANCE` (2^53 - 1, what JavaScript reads exactly). 9,300 credits of the
/// most one may carry, in one request under the body limit, would pass what the store's
/// 64-bit sum holds (PostgreSQL's `credit_balances` then fails every read of the user's
/// balances; the in-memory store overflows): refused whole. Up to the bound credits are
/// given, a retry of them is not counted again, and one unit more is refused.
#[test]
fn credits_never_bring_a_balance_past_what_it_holds() {
    block(async {
        let app = app("video-studio");
        let max = tollgate::credits::MAX_CREDIT;
        let bound = tollgate::credits::MAX_BALANCE;
        assert_eq!(bound, 9_007_199_254_740_991);
        let n = (i64::MAX / max + 100) as usize;
        let many: Vec<Value> = (0..n).map(|i| json!({"pool": "video_seconds", "amount": max, "id": format!("{i}")})).collect();
        let body = json!({"user_id": U1, "credits": many});
        assert!(body.to_string().len() < tollgate_worker::routes::MAX_BODY_BYTES);
        let r = grants(&app, &body, NOW).await;
        assert_refused(&r, 400, "balance_too_large", "9,300 credits of 10^15");
        assert_eq!(granted(&app, U1, "video_seconds"), 0);
        // Up to the bound, over several requests, each retried.
        let nine: Vec<Value> = (0..9).map(|i| json!({"pool": "video_seconds", "amount": max, "id": format!("n{i}")})).collect();
        let rest = credit(U1, "video_seconds", "rest", json!(bound - 9 * max));
        for at in [NOW, NOW + 1] {
            let r = grants(&app, &json!({"user_id": U1, "credits": nine}), at).await;
            assert_eq!(r.status, 201, "{}", text(&r));
            let r = grants(&app, &rest, at).await;
            assert_eq!(r.status, 201, "{}", text(&r));
        }
        assert_conserved(&app, U1, "video_seconds", bound, 0, "at the bound");
        let r = grants(&app, &credit(U1, "video_seconds", "one-more", json!(1)), NOW + 2).await;
        assert_refused(&r, 400, "balance_too_large", "one unit past the bound");
        // Spent from, there is room again; the balance is what was credited less what was spent.
        let r = consume(&app, U1, "big-1", 10, NOW + 3).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let r = grants(&app, &credit(U1, "video_seconds", "one-more", json!(10)), NOW + 4).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_conserved(&app, U1, "video_seconds", bound + 10, 10, "spent and credited again");
        // Another subject has a bound of its own.
        let r = grants(&app, &credit(U2, "video_seconds", "n0", json!(max)), NOW + 5).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        let r = raw(&app, Method::Get, "/v1/entitlements", user_headers(U1, NOW + 6), b"", NOW + 6).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.body_json()["snapshot"]["balances"]["video_seconds"].as_i64(), Some(bound));
    })
}

/// A request whose credits mix a new id with an id given before with other values is a
/// 409 that credits nothing: the new credit is not applied either (a request applies whole
/// or not at all), and the same request without the reused id then credits once.
#[test]
fn a_request_with_one_reused_credit_id_credits_nothing() {
    block(async {
        let app = app("video-studio");
        let pool = "video_seconds";
        let r = grants(&app, &credit(U1, pool, "comp-1", json!(600)), NOW).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        let mixed = json!({"user_id": U1, "credits": [
            {"pool": pool, "amount": 50, "id": "comp-2"},
            {"pool": pool, "amount": 900, "id": "comp-1"},
        ], "grants": [{"product": "video", "tier": "pro", "source": "promotion", "id": "spring",
                       "valid_to": "2027-03-01T00:00:00Z"}]});
        for at in [NOW + 1, NOW + 2] {
            let r = grants(&app, &mixed, at).await;
            assert_refused(&r, 409, "already_granted", "a new credit beside a reused id");
            assert_conserved(&app, U1, pool, 600, 0, "after the refused request");
            assert!(app.ctx.store.lots(&Subject::user(U1)).iter().all(|l| !l.key.contains("comp-2")), "comp-2 was credited");
        }
        let r = grants(&app, &json!({"user_id": U1, "credits": [{"pool": pool, "amount": 50, "id": "comp-2"}]}), NOW + 3).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        assert_conserved(&app, U1, pool, 650, 0, "the new credit alone");
    })
}

/// An `ADMIN_SECRET` shorter than 16 characters keeps every admin route closed, even to
/// a caller who sends it (500 `not_configured`, saying why and not the secret), while the
/// other routes work on.
#[test]
fn a_short_admin_secret_keeps_the_admin_routes_closed() {
    block(async {
        for short in ["abc", "123456789012345", "ééééééééééééééé"] {
            let mut c = config("video-studio");
            c.admin_secret = Some(short.to_string());
            let app = App::with_store(c, NoNetwork, MemoryStore::new()).expect("app");
            app.ctx.store.add_user_with_email(U1, &common::email_of(U1));
            let body = credit(U1, "video_seconds", "guessed", json!(1_000)).to_string();
            for h in [
                Headers::new().with("authorization", format!("Bearer {short}")),
                Headers::new().with("x-admin-secret", short),
                Headers::new(),
            ] {
                let r = raw(&app, Method::Post, "/v1/admin/grants", h, body.as_bytes(), NOW).await;
                assert_eq!(r.status, 500, "{short:?}: {}", text(&r));
                let v = r.body_json();
                assert_eq!(v["error"]["code"], "not_configured", "{v}");
                assert!(v["error"]["message"].as_str().unwrap().contains("at least 16"), "{v}");
                assert!(!text(&r).contains(short), "the answer repeats the secret: {}", text(&r));
            }
            assert_eq!(granted(&app, U1, "video_seconds"), 0);
            let r = raw(&app, Method::Get, "/v1/entitlements", user_headers(U1, NOW), b"", NOW).await;
            assert_eq!(r.status, 200, "{short:?}: {}", text(&r));
        }
    })
}
