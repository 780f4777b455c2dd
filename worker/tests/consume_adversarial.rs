//! The paid-action routes attacked: charges (`POST /v1/usage/consume`), holds and their
//! settling, expired holds, tracked uses against limits (`/v1/track`, `/v1/check`) and
//! overage with its cap per billing period, on the in-memory store (and the `Gated` store
//! that fails or interleaves any call). Money must be conserved: what the lots hold moves
//! by exactly what was charged, once per request id; a hold gives back exactly what it took,
//! once; a limit is never passed.

mod common;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use serde_json::{json, Value};

use common::{block, config, now_or_never, stripe, user_token, Between, FailNext, Gated, NoNetwork, ADMIN_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::{SettleAnswer, Store};

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const U1: &str = "00000000-0000-4000-8000-000000000001";

fn app_on<S: Store>(catalog: &str, store: S) -> App<NoNetwork, S> {
    App::with_store(config("http://127.0.0.1:1", "svc", catalog), NoNetwork, store).expect("app")
}

fn memory(catalog: &str) -> App<NoNetwork, MemoryStore> {
    let app = app_on(catalog, MemoryStore::new());
    app.ctx.store.add_user(U1);
    app
}

fn user(key: &str, now: i64) -> Headers {
    let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, now)));
    if key.is_empty() {
        h
    } else {
        h.with("idempotency-key", key)
    }
}

fn admin() -> Headers {
    Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"))
}

async fn post<S: Store>(app: &App<NoNetwork, S>, path: &str, h: Headers, body: &[u8], now: i64) -> (u16, Value) {
    let req = InRequest { method: Method::Post, path: path.into(), query: String::new(), headers: h, body: body.to_vec() };
    let r = app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

async fn post_json<S: Store>(app: &App<NoNetwork, S>, path: &str, h: Headers, body: Value, now: i64) -> (u16, Value) {
    post(app, path, h, body.to_string().as_bytes(), now).await
}

/// An operator's credit of `amount` units of `pool` to U1 (lot id `id`), valid until `valid_to`.
async fn credit<S: Store>(app: &App<NoNetwork, S>, pool: &str, amount: i64, id: &str, valid_to: Option<&str>, now: i64) {
    let body = json!({"user_id": U1, "credits": [{"pool": pool, "amount": amount, "id": id, "valid_to": valid_to}]});
    let (s, v) = post_json(app, "/v1/admin/grants", admin(), body, now).await;
    assert_eq!(s, 201, "{v}");
}

async fn consume<S: Store>(app: &App<NoNetwork, S>, key: &str, seconds: Value, now: i64) -> (u16, Value) {
    let body = json!({"model": "standard", "quality": "watermark", "seconds": seconds});
    post_json(app, "/v1/usage/consume", user(key, now), body, now).await
}

async fn track<S: Store>(app: &App<NoNetwork, S>, key: &str, body: Value, now: i64) -> (u16, Value) {
    post_json(app, "/v1/track", user(key, now), body, now).await
}

async fn settle<S: Store>(app: &App<NoNetwork, S>, id: &str, what: &str, now: i64) -> (u16, Value) {
    post_json(app, &format!("/v1/usage/{id}/{what}"), user("", now), json!({}), now).await
}

/// What U1 may spend of `pool` at `now`, as `POST /v1/check` says.
async fn spendable<S: Store>(app: &App<NoNetwork, S>, pool: &str, now: i64) -> Value {
    let (s, v) = post_json(app, "/v1/check", user("", now), json!({"feature": pool}), now).await;
    assert_eq!(s, 200, "{v}");
    v["limit"].clone()
}

async fn prefs<S: Store>(app: &App<NoNetwork, S>, body: Value, now: i64) -> (u16, Value) {
    let req = InRequest {
        method: Method::Put,
        path: "/v1/preferences".into(),
        query: String::new(),
        headers: user("", now),
        body: body.to_string().into_bytes(),
    };
    let r = app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// Every lot of U1 adds up: granted = remaining + used + revoked + expired.
fn lots_add_up(store: &MemoryStore) {
    for l in store.lots(&Subject::user(U1)) {
        assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "{l:?}");
        assert!(l.remaining >= 0 && l.used >= 0, "{l:?}");
    }
}


// ------------------------------------------------------------------ hostile request bodies

/// `seconds` that is not a whole number from the catalog's range is a 400 and charges
/// nothing, whatever its JSON type or size.
#[test]
fn consume_refuses_every_malformed_seconds_and_charges_nothing() {
    block(async {
        let app = memory("video-studio");
        credit(&app, "video_seconds", 1000, "start", None, NOW).await;
        assert_eq!(prefs(&app, json!({"allow_overages": true, "overage_limit": 1_000_000}), NOW).await.0, 200);
        let bad = [
            json!(0),
            json!(-1),
            json!(1.5),
            json!(10.0),
            json!("10"),
            json!(null),
            json!(true),
            json!([10]),
            json!({"n": 10}),
            json!(u64::MAX),
            json!(i64::MAX),
            json!(86_401),
            json!(1e20),
        ];
        for (i, seconds) in bad.iter().enumerate() {
            let (s, v) = consume(&app, &format!("bad-{i}"), seconds.clone(), NOW).await;
            assert_eq!(s, 400, "seconds {seconds}: {v}");
        }
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 1000);
        assert!(app.ctx.store.charges(&Subject::user(U1)).is_empty(), "{:?}", app.ctx.store.charges(&Subject::user(U1)));
        // The edges of the range are charged.
        assert_eq!(consume(&app, "one", json!(1), NOW).await.0, 200);
        let (s, v) = consume(&app, "most", json!(86_400), NOW).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["record"]["overage_units"], json!(86_400 - 999), "{v}");
        lots_add_up(&app.ctx.store);
    });
}

/// A credit pool's `quantity` and `hold` are checked before anything is taken.
#[test]
fn track_on_a_pool_refuses_every_malformed_quantity_and_hold() {
    block(async {
        let app = memory("razorpay-ai");
        credit(&app, "ai_credits", 50, "start", None, NOW).await;
        for (i, q) in [json!(0), json!(-1), json!(1.5), json!("1"), json!(true), json!(1_000_000_001u64), json!(u64::MAX), json!(1e30)]
            .iter()
            .enumerate()
        {
            let (s, v) = track(&app, &format!("q{i}"), json!({"feature": "ai_credits", "quantity": q}), NOW).await;
            assert_eq!(s, 400, "quantity {q}: {v}");
        }
        for (i, h) in [json!("true"), json!(1), json!({})].iter().enumerate() {
            let (s, v) = track(&app, &format!("h{i}"), json!({"feature": "ai_credits", "quantity": 1, "hold": h}), NOW).await;
            assert_eq!(s, 400, "hold {h}: {v}");
        }
        assert_eq!(spendable(&app, "ai_credits", NOW).await, json!(50));
        // More than the balance: 402 with what is there, nothing taken.
        let (s, v) = track(&app, "big", json!({"feature": "ai_credits", "quantity": 1_000_000_000u64}), NOW).await;
        assert_eq!((s, v["error"]["available"].clone()), (402, json!(50)), "{v}");
        assert_eq!(spendable(&app, "ai_credits", NOW).await, json!(50));
    });
}

// ------------------------------------------------------------------ idempotency keys

/// One key sent to two routes (a credit spend, then a priced render) is one request id: the
/// second is 409 and takes nothing; the first replays.
#[test]
fn a_key_spent_on_a_pool_cannot_also_buy_a_render() {
    block(async {
        let app = memory("video-studio");
        credit(&app, "video_seconds", 100, "start", None, NOW).await;
        let (s, v) = track(&app, "k", json!({"feature": "video_seconds", "quantity": 10}), NOW).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = consume(&app, "k", json!(10), NOW + 1).await;
        assert_eq!(s, 409, "{v}");
        let (s, v) = consume(&app, "k", json!(500), NOW + 1).await;
        assert_eq!(s, 409, "a refusal is no way around the key: {v}");
        let (s, v) = track(&app, "k", json!({"feature": "video_seconds", "quantity": 10}), NOW + 2).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(true)), "{v}");
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 90);
    });
}

/// The same key, pool and quantity, once as a hold and once as a spend, are different
/// requests: the second is 409 and the first stands as it was.
#[test]
fn a_held_key_sent_again_without_hold_is_refused_not_answered_as_the_hold() {
    block(async {
        let app = memory("razorpay-ai");
        credit(&app, "ai_credits", 10, "start", None, NOW).await;
        let (s, v) = track(&app, "k", json!({"feature": "ai_credits", "quantity": 4, "hold": true}), NOW).await;
        assert_eq!((s, v["record"]["status"].clone()), (200, json!("held")), "{v}");
        let id = v["usage_id"].as_str().unwrap().to_string();
        let (s, v) = track(&app, "k", json!({"feature": "ai_credits", "quantity": 4}), NOW + 1).await;
        assert_eq!(s, 409, "{v}");
        // Released, the key still names the hold: a retry is its replay, never a new take.
        assert_eq!(settle(&app, &id, "release", NOW + 2).await.0, 200);
        let (s, v) = track(&app, "k", json!({"feature": "ai_credits", "quantity": 4, "hold": true}), NOW + 3).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(true)), "{v}");
        assert_eq!(spendable(&app, "ai_credits", NOW + 4).await, json!(10));
    });
}

/// Keys that differ only by surrounding blanks are the same key (the header is trimmed),
/// and keys that differ inside are different keys, unicode or not.
#[test]
fn keys_are_compared_exactly_after_trimming() {
    block(async {
        let app = memory("razorpay-ai");
        credit(&app, "ai_credits", 100, "start", None, NOW).await;
        let one = json!({"feature": "ai_credits", "quantity": 1});
        assert_eq!(track(&app, "clé-1", one.clone(), NOW).await.0, 200);
        let (s, v) = track(&app, "  clé-1  ", one.clone(), NOW).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(true)), "{v}");
        let (s, v) = track(&app, "cle\u{301}-1", one.clone(), NOW).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(false)), "another byte sequence is another key: {v}");
        assert_eq!(spendable(&app, "ai_credits", NOW).await, json!(98));
    });
}

// ------------------------------------------------------------------ holds

/// A capture is in time strictly before `hold_until` and too late at it, whatever clock
/// the request carries; a capture in time is final for the scheduled run too.
#[test]
fn a_capture_is_in_time_until_the_second_before_hold_until() {
    block(async {
        let app = memory("razorpay-ai");
        credit(&app, "ai_credits", 10, "start", None, NOW).await;
        let hold = |n: u64| json!({"feature": "ai_credits", "quantity": n, "hold": true});
        let (_, v) = track(&app, "a", hold(3), NOW).await;
        let a = v["usage_id"].as_str().unwrap().to_string();
        let (_, v) = track(&app, "b", hold(3), NOW).await;
        let b = v["usage_id"].as_str().unwrap().to_string();
        let until = NOW + 3600;
        let (s, r) = settle(&app, &a, "capture", until - 1).await;
        assert_eq!((s, r["status"].clone()), (200, json!("captured")), "{r}");
        let (s, r) = settle(&app, &b, "capture", until).await;
        assert_eq!((s, r["error"]["code"].clone()), (409, json!("hold_expired")), "{r}");
        let report = app.scheduled(Timestamp(until)).await.unwrap();
        assert_eq!(report["released_holds"], 1, "only the one not captured: {report}");
        assert_eq!(spendable(&app, "ai_credits", until + 1).await, json!(7));
        // A clock that went back does not capture what was released.
        let (s, r) = settle(&app, &b, "capture", NOW + 5).await;
        assert_eq!((s, r["error"]["code"].clone()), (409, json!("released")), "{r}");
        assert_eq!(spendable(&app, "ai_credits", until + 2).await, json!(7));
        lots_add_up(&app.ctx.store);
    });
}

/// Two releases of one hold landing together (the user's, and another request's between
/// the route's read and its settling) give back what it took once.
#[test]
fn a_release_racing_another_release_gives_back_once() {
    block(async {
        let app = memory("razorpay-ai");
        credit(&app, "ai_credits", 10, "start", None, NOW).await;
        let (_, v) = track(&app, "h", json!({"feature": "ai_credits", "quantity": 6, "hold": true}), NOW).await;
        let id = v["usage_id"].as_str().unwrap().to_string();
        let inner = id.clone();
        app.ctx.store.before_next_settle(move |s| {
            let r = now_or_never(s.settle(&Subject::user(U1), &inner, true, Timestamp(NOW + 1), None)).unwrap();
            assert!(matches!(r, SettleAnswer::Settled(ref x) if x.status == "released" && !x.replayed));
        });
        let (s, r) = settle(&app, &id, "release", NOW + 1).await;
        assert_eq!((s, r["status"].clone(), r["replayed"].clone()), (200, json!("released"), json!(true)), "{r}");
        assert_eq!(spendable(&app, "ai_credits", NOW + 2).await, json!(10));
        let report = app.scheduled(Timestamp(NOW + 7200)).await.unwrap();
        assert_eq!(report["released_holds"], 0, "{report}");
        assert_eq!(spendable(&app, "ai_credits", NOW + 7201).await, json!(10));
        lots_add_up(&app.ctx.store);
    });
}

/// A capture landing between a release's read and its settling: the hold is final, the
/// release is refused and gives nothing back.
#[test]
fn a_release_racing_a_capture_gives_nothing_back() {
    block(async {
        let app = memory("razorpay-ai");
        credit(&app, "ai_credits", 10, "start", None, NOW).await;
        let (_, v) = track(&app, "h", json!({"feature": "ai_credits", "quantity": 6, "hold": true}), NOW).await;
        let id = v["usage_id"].as_str().unwrap().to_string();
        let inner = id.clone();
        app.ctx.store.before_next_settle(move |s| {
            now_or_never(s.settle(&Subject::user(U1), &inner, false, Timestamp(NOW + 1), None)).unwrap();
        });
        let (s, r) = settle(&app, &id, "release", NOW + 1).await;
        assert_eq!((s, r["error"]["code"].clone()), (409, json!("not_held")), "{r}");
        assert_eq!(spendable(&app, "ai_credits", NOW + 2).await, json!(4));
        lots_add_up(&app.ctx.store);
    });
}

/// The scheduled run releasing an expired hold while its owner releases it too: given
/// back once.
#[test]
fn the_scheduled_run_and_the_owner_releasing_together_give_back_once() {
    block(async {
        let app = Rc::new(memory("razorpay-ai"));
        credit(&*app, "ai_credits", 10, "start", None, NOW).await;
        let (_, v) = track(&*app, "h", json!({"feature": "ai_credits", "quantity": 6, "hold": true}), NOW).await;
        let id = v["usage_id"].as_str().unwrap().to_string();
        let late = NOW + 2 * 3600;
        let weak = Rc::downgrade(&app);
        app.ctx.store.before_next_settle(move |_| {
            let app = weak.upgrade().unwrap();
            let report = now_or_never(app.scheduled(Timestamp(late))).unwrap();
            assert_eq!(report["released_holds"], 1, "{report}");
        });
        let (s, r) = settle(&*app, &id, "release", late).await;
        assert_eq!((s, r["status"].clone(), r["replayed"].clone()), (200, json!("released"), json!(true)), "{r}");
        assert_eq!(spendable(&*app, "ai_credits", late + 1).await, json!(10));
        lots_add_up(&app.ctx.store);
    });
}

/// A hold taken from credits that end before the hold does: released after their end, the
/// units it gives back are not spendable (they expired), and the lot still adds up.
#[test]
fn a_hold_released_after_its_lot_ended_gives_back_nothing_spendable() {
    block(async {
        let app = memory("razorpay-ai");
        // 2027-01-15T10:10:00Z: ten minutes after NOW, well inside the hour of the hold.
        credit(&app, "ai_credits", 10, "short", Some("2027-01-15T10:10:00Z"), NOW).await;
        let (s, v) = track(&app, "h", json!({"feature": "ai_credits", "quantity": 6, "hold": true}), NOW).await;
        assert_eq!(s, 200, "{v}");
        let id = v["usage_id"].as_str().unwrap().to_string();
        let after_end = NOW + 1200;
        assert_eq!(spendable(&app, "ai_credits", after_end).await, json!(0));
        let (s, r) = settle(&app, &id, "release", after_end).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(spendable(&app, "ai_credits", after_end + 1).await, json!(0), "expired units came back");
        let (s, v) = track(&app, "after", json!({"feature": "ai_credits", "quantity": 1}), after_end + 2).await;
        assert_eq!(s, 402, "spent expired credits: {v}");
        app.scheduled(Timestamp(after_end + 3)).await.unwrap();
        lots_add_up(&app.ctx.store);
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 0, "{:?}", app.ctx.store.lots(&Subject::user(U1)));
    });
}

/// A hold's release failing in the store changes nothing and is 5xx; the retry releases it
/// once. The scheduled run that fails on one hold still releases it on a later run.
#[test]
fn a_failed_release_is_retried_and_gives_back_once() {
    block(async {
        let app = app_on("razorpay-ai", Gated { inner: MemoryStore::new(), gate: FailNext::default() });
        app.ctx.store.inner.add_user(U1);
        credit(&app, "ai_credits", 10, "start", None, NOW).await;
        let (_, v) = track(&app, "h", json!({"feature": "ai_credits", "quantity": 6, "hold": true}), NOW).await;
        let id = v["usage_id"].as_str().unwrap().to_string();
        app.ctx.store.fail("settle", 1);
        let (s, r) = settle(&app, &id, "release", NOW + 1).await;
        assert!(s >= 500, "{s} {r}");
        assert_eq!(spendable(&app, "ai_credits", NOW + 2).await, json!(4));
        let (s, r) = settle(&app, &id, "release", NOW + 3).await;
        assert_eq!((s, r["replayed"].clone()), (200, json!(false)), "{r}");
        let (_, v) = track(&app, "hold-2", json!({"feature": "ai_credits", "quantity": 5, "hold": true}), NOW + 4).await;
        assert_eq!(v["remaining"], json!(5), "{v}");
        app.ctx.store.fail("settle", 1);
        let r1 = app.scheduled(Timestamp(NOW + 2 * 3600)).await.unwrap();
        assert_eq!(r1["released_holds"], 0, "{r1}");
        let r2 = app.scheduled(Timestamp(NOW + 3 * 3600)).await.unwrap();
        assert_eq!(r2["released_holds"], 1, "{r2}");
        assert_eq!(spendable(&app, "ai_credits", NOW + 3 * 3600 + 1).await, json!(10));
        lots_add_up(&app.ctx.store.inner);
    });
}

// ------------------------------------------------------------------ a store that fails




/// A render whose store fails at any one of its calls is 5xx (or charged) and, retried
/// under its key, charged exactly once: the balance moves by the render's seconds once.
#[test]
fn a_render_failing_at_any_store_call_is_charged_once_when_retried() {
    for call in ["subject_state", "counter", "charge", "charge_replay", "apply_fold", "fold_input", "record_alerts"] {
        block(async {
            let app = app_on("video-studio", Gated { inner: MemoryStore::new(), gate: FailNext::default() });
            app.ctx.store.inner.add_user(U1);
            credit(&app, "video_seconds", 100, "start", None, NOW).await;
            assert_eq!(prefs(&app, json!({"allow_overages": true, "overage_limit": 1000}), NOW).await.0, 200);
            // Warm: the kept state exists for the second render, fresh for the first.
            for (n, key) in ["r1", "r2"].iter().enumerate() {
                let at = NOW + 10 * n as i64;
                app.ctx.store.fail(call, 1);
                let (s, v) = consume(&app, key, json!(30), at).await;
                assert!(s == 200 || s >= 500, "{call}: {s} {v}");
                let (s, v) = consume(&app, key, json!(30), at + 1).await;
                assert_eq!(s, 200, "{call}: {v}");
                let (s, v) = consume(&app, key, json!(30), at + 2).await;
                assert_eq!((s, v["replayed"].clone()), (200, json!(true)), "{call}: {v}");
            }
            assert_eq!(app.ctx.store.inner.balance(&Subject::user(U1), "video_seconds"), 40, "{call}");
            assert_eq!(app.ctx.store.inner.charges(&Subject::user(U1)).len(), 2, "{call}");
            lots_add_up(&app.ctx.store.inner);
        });
    }
}

// ------------------------------------------------------------------ interleavings




fn between(catalog: &str) -> Rc<App<NoNetwork, Gated<Between>>> {
    let gate = Between { app: RefCell::new(Weak::new()), on: RefCell::new(None) };
    let app = Rc::new(app_on(catalog, Gated { inner: MemoryStore::new(), gate }));
    *app.ctx.store.gate.app.borrow_mut() = Rc::downgrade(&app);
    app.ctx.store.inner.add_user(U1);
    app
}

fn before(app: &App<NoNetwork, Gated<Between>>, call: &'static str, f: impl FnOnce(&App<NoNetwork, Gated<Between>>) + 'static) {
    *app.ctx.store.gate.on.borrow_mut() = Some((call, Box::new(f)));
}

/// Two renders whose overage together passes the cap, the second landing between the
/// first's decision and its charge: exactly one is billed overage, the other is refused
/// `overage_limit_exceeded`, and the period's spend never passes the cap.
#[test]
fn two_renders_racing_for_the_last_of_the_overage_cap_bill_one() {
    block(async {
        let app = between("video-studio");
        credit(&*app, "video_seconds", 1, "one", None, NOW).await;
        // 10 s of overage cost 15 cents: a cap of 20 covers one such render, not two.
        assert_eq!(prefs(&*app, json!({"allow_overages": true, "overage_limit": 20}), NOW).await.0, 200);
        assert_eq!(consume(&*app, "warm", json!(1), NOW).await.0, 200);
        before(&app, "charge", |app| {
            let (s, v) = now_or_never(consume(app, "b", json!(10), NOW + 1));
            assert_eq!((s, v["record"]["overage_minor"].clone()), (200, json!(15)), "{v}");
        });
        let (s, v) = consume(&*app, "a", json!(10), NOW + 1).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("overage_limit_exceeded")), "{v}");
        let (s, p) = {
            let req = InRequest { method: Method::Get, path: "/v1/preferences".into(), query: String::new(), headers: user("", NOW + 2), body: vec![] };
            let r = app.handle(req, Timestamp(NOW + 2)).await;
            (r.status, r.body_json())
        };
        assert_eq!((s, p["spent"].clone()), (200, json!(15)), "{p}");
    });
}

/// A render landing under the same key and body between another's decision and its
/// charge: one charge, both answered with it.
#[test]
fn the_same_render_twice_at_once_is_charged_once() {
    block(async {
        let app = between("video-studio");
        credit(&*app, "video_seconds", 100, "start", None, NOW).await;
        let first: Rc<RefCell<Value>> = Rc::default();
        let seen = first.clone();
        before(&app, "charge", move |app| {
            let (s, v) = now_or_never(consume(app, "k", json!(30), NOW));
            assert_eq!(s, 200, "{v}");
            *seen.borrow_mut() = v;
        });
        let (s, v) = consume(&*app, "k", json!(30), NOW).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(true)), "{v}");
        assert_eq!(v["usage_id"], first.borrow()["usage_id"]);
        assert_eq!(app.ctx.store.inner.balance(&Subject::user(U1), "video_seconds"), 70);
        // Another body under that key, landing the same way: 409, nothing more taken.
        before(&app, "charge", |app| {
            let (s, v) = now_or_never(consume(app, "k2", json!(20), NOW + 1));
            assert_eq!(s, 200, "{v}");
        });
        let (s, v) = consume(&*app, "k2", json!(21), NOW + 1).await;
        assert_eq!(s, 409, "{v}");
        assert_eq!(app.ctx.store.inner.balance(&Subject::user(U1), "video_seconds"), 50);
    });
}

/// A hold released by another request between a render's decision and its charge: the
/// render is planned again and takes the seconds given back, billing no overage for them.
#[test]
fn a_release_landing_before_a_charge_is_seen_by_the_charge() {
    block(async {
        let app = between("video-studio");
        credit(&*app, "video_seconds", 10, "ten", None, NOW).await;
        assert_eq!(prefs(&*app, json!({"allow_overages": true, "overage_limit": 1000}), NOW).await.0, 200);
        let (s, v) = track(&*app, "h", json!({"feature": "video_seconds", "quantity": 10, "hold": true}), NOW).await;
        assert_eq!(s, 200, "{v}");
        let id = v["usage_id"].as_str().unwrap().to_string();
        before(&app, "charge", move |app| {
            let (s, r) = now_or_never(settle(app, &id, "release", NOW + 1));
            assert_eq!(s, 200, "{r}");
        });
        let (s, v) = consume(&*app, "r", json!(10), NOW + 1).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["record"]["overage_units"], 0, "billed overage for credits given back: {v}");
        assert_eq!(app.ctx.store.inner.balance(&Subject::user(U1), "video_seconds"), 0);
    });
}

// ------------------------------------------------------------------ overage at its edges

/// The cap is reached exactly (allowed) and never passed by one minor unit; a cap of 0
/// with overages allowed bills none; caps beyond the most are refused.
#[test]
fn the_overage_cap_is_reached_exactly_and_never_passed() {
    block(async {
        let app = memory("video-studio");
        credit(&app, "video_seconds", 1, "one", None, NOW).await;
        assert_eq!(consume(&app, "warm", json!(1), NOW).await.0, 200);
        // 0 with overages allowed: nothing past the balance.
        assert_eq!(prefs(&app, json!({"allow_overages": true, "overage_limit": 0}), NOW).await.0, 200);
        let (s, v) = consume(&app, "zero", json!(1), NOW).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("overage_limit_exceeded")), "{v}");
        // 10 s of overage cost exactly 15 cents.
        assert_eq!(prefs(&app, json!({"allow_overages": true, "overage_limit": 14}), NOW).await.0, 200);
        let (s, v) = consume(&app, "a", json!(10), NOW + 1).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("overage_limit_exceeded")), "{v}");
        assert_eq!(prefs(&app, json!({"allow_overages": true, "overage_limit": 15}), NOW).await.0, 200);
        let (s, v) = consume(&app, "a", json!(10), NOW + 2).await;
        assert_eq!((s, v["record"]["overage_minor"].clone()), (200, json!(15)), "{v}");
        let (s, v) = consume(&app, "b", json!(1), NOW + 3).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("overage_limit_exceeded")), "{v}");
        for limit in [json!(-1), json!(i64::MAX), json!(u64::MAX), json!(1_000_000_001), json!("15"), json!(1e3)] {
            let (s, v) = prefs(&app, json!({"allow_overages": true, "overage_limit": limit}), NOW).await;
            assert_eq!(s, 400, "{limit}: {v}");
        }
        // Turning overages off stops them whatever the cap.
        assert_eq!(prefs(&app, json!({"allow_overages": false, "overage_limit": 1_000_000}), NOW).await.0, 200);
        let (s, v) = consume(&app, "c", json!(1), NOW + 4).await;
        assert_eq!((s, v["error"]["code"].clone()), (402, json!("insufficient_balance")), "{v}");
    });
}

/// A clock that goes back into the previous period does not give the earlier period's
/// spend a second cap, nor take the later period's: each charge counts in the period that
/// holds its own moment, and replays are the charge they replay.
#[test]
fn a_clock_going_back_counts_overage_in_the_period_of_the_moment() {
    block(async {
        let app = memory("video-studio");
        credit(&app, "video_seconds", 1, "one", None, NOW).await;
        assert_eq!(consume(&app, "warm", json!(1), NOW).await.0, 200);
        assert_eq!(prefs(&app, json!({"allow_overages": true, "overage_limit": 15}), NOW).await.0, 200);
        let feb = NOW + 31 * 86_400;
        assert_eq!(consume(&app, "feb", json!(10), feb).await.0, 200);
        // Back in January: its own cap, unspent.
        let (s, v) = consume(&app, "jan", json!(10), NOW + 60).await;
        assert_eq!((s, v["record"]["overage_minor"].clone()), (200, json!(15)), "{v}");
        let (s, v) = consume(&app, "jan2", json!(1), NOW + 61).await;
        assert_eq!(s, 402, "{v}");
        // The February charge replays under its key at any clock.
        let (s, v) = consume(&app, "feb", json!(10), NOW + 62).await;
        assert_eq!((s, v["replayed"].clone()), (200, json!(true)), "{v}");
        let (s, v) = consume(&app, "feb2", json!(1), feb + 1).await;
        assert_eq!(s, 402, "February's cap is spent: {v}");
    });
}

// ------------------------------------------------------------------ limits at their edges

async fn starter(app: &App<NoNetwork, MemoryStore>, tier: &str) {
    let body = json!({"user_id": U1, "grants": [{"product": "suite", "tier": tier, "source": "promotion", "id": "t",
                        "valid_from": "2027-01-01T00:00:00Z", "valid_to": "2027-12-31T00:00:00Z"}]});
    let (s, v) = post_json(app, "/v1/admin/grants", admin(), body, NOW).await;
    assert_eq!(s, 201, "{v}");
}

/// Starter's 3 runs a day: one use of exactly 3 is allowed and leaves 0; one of 4 from
/// nothing is refused and counts nothing; the limit is never passed.
#[test]
fn a_limit_admits_a_use_of_exactly_what_is_left_and_not_one_more() {
    block(async {
        let app = memory("vcm-suite");
        starter(&app, "starter").await;
        let runs = |q: u64| json!({"feature": "workflow_runs_per_day", "quantity": q});
        let (s, v) = track(&app, "four", runs(4), NOW).await;
        assert_eq!((s, v["error"]["code"].clone()), (403, json!("limit_reached")), "{v}");
        let (s, c) = post_json(&app, "/v1/check", user("", NOW), runs(3), NOW).await;
        assert_eq!((s, c["allowed"].clone(), c["remaining"].clone()), (200, json!(true), json!(0)), "{c}");
        let (s, v) = track(&app, "three", runs(3), NOW).await;
        assert_eq!((s, v["remaining"].clone()), (200, json!(0)), "{v}");
        let (s, v) = track(&app, "one", runs(1), NOW + 1).await;
        assert_eq!(s, 403, "{v}");
        // The window ends at UTC midnight: the next second has all 3 again.
        let midnight = 1_800_057_600; // 2027-01-16T00:00:00Z
        assert_eq!(track(&app, "late", runs(1), midnight - 1).await.0, 403);
        let (s, v) = track(&app, "next", runs(3), midnight).await;
        assert_eq!((s, v["remaining"].clone()), (200, json!(0)), "{v}");
        // A use of a windowed limit is final.
        let id = v["usage_id"].as_str().unwrap().to_string();
        assert_eq!(settle(&app, &id, "release", midnight + 1).await.0, 409);
        assert_eq!(track(&app, "more", runs(1), midnight + 2).await.0, 403);
    });
}

/// A tier whose limit is 0 admits nothing, not even a first use; an unlimited tier counts
/// uses of any size up to the largest quantity without refusing or overflowing.
#[test]
fn a_limit_of_zero_admits_nothing_and_unlimited_admits_the_largest_quantities() {
    block(async {
        let app = memory("vcm-suite");
        starter(&app, "free").await;
        let runs = |q: u64| json!({"feature": "workflow_runs_per_day", "quantity": q});
        let (s, v) = track(&app, "z", runs(1), NOW).await;
        assert_eq!(s, 403, "{v}");
        let (_, c) = post_json(&app, "/v1/check", user("", NOW), runs(1), NOW).await;
        assert_eq!((c["allowed"].clone(), c["remaining"].clone()), (json!(false), json!(0)), "{c}");

        let app = memory("vcm-suite");
        starter(&app, "pro").await;
        for i in 0..5 {
            let (s, v) = track(&app, &format!("u{i}"), runs(1_000_000_000), NOW).await;
            assert_eq!((s, v["remaining"].clone()), (200, json!("unlimited")), "{v}");
        }
    });
}

// ------------------------------------------------------------------ holds and renewals

const P: i64 = 30 * 86_400;

fn event(id: &str, ty: &str, at: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
           "livemode": false, "data": {"object": object}})
}

/// U1's Creator subscription `sub_1` (1800 s a period, capped rollover) from `s`, and the
/// invoice paying its `n`th period.
fn creator(s: i64) -> (Value, impl Fn(i64) -> Value) {
    let item = json!({"id": "si_1", "object": "subscription_item", "quantity": 1,
        "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
        "current_period_start": s, "current_period_end": s + P});
    let sub = json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
        "cancel_at_period_end": false, "start_date": s, "created": s,
        "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": U1}, "items": {"object": "list", "data": [item]}});
    let invoice = move |n: i64| {
        let start = s + n * P;
        let inv = json!({"id": format!("in_{n}"), "object": "invoice", "customer": "cus_1", "status": "paid", "paid": true,
            "amount_paid": 2900, "amount_due": 2900, "currency": "usd", "created": start + 1,
            "billing_reason": if n == 0 { "subscription_create" } else { "subscription_cycle" },
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1", "metadata": {}}},
            "period_start": start, "period_end": start + P,
            "lines": {"object": "list", "data": [{"id": format!("il_{n}"), "object": "line_item", "amount": 2900,
                "currency": "usd", "quantity": 1, "period": {"start": start, "end": start + P},
                "pricing": {"type": "price_details", "price_details": {"price": "price_video_creator_monthly", "product": "prod_x"}},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {"subscription": "sub_1"}}}]},
            "payments": {"object": "list", "data": [{"payment": {"type": "payment_intent", "payment_intent": format!("pi_{n}")}}]}});
        event(&format!("evt_in_{n}"), "invoice.paid", start + 1, inv)
    };
    (event("evt_cr", "customer.subscription.created", s, sub), invoice)
}

/// A hold taken in the last minutes of a period and released after the renewal: had it
/// never been taken, the period's unused seconds would have carried over (capped at one
/// allowance). The release gives back exactly what it took, so the balance is what the
/// facts without it give: the renewal's allowance plus a full period carried over.
#[test]
fn a_hold_released_after_the_renewal_carries_over_as_if_never_taken() {
    block(async {
        let app = memory("video-studio");
        let s = NOW - P + 600;
        let (created, invoice) = creator(s);
        for e in [created, invoice(0)] {
            let (st, v) = stripe(&app, &e, s + 1).await;
            assert_eq!(st, 200, "{v}");
        }
        let u = Subject::user(U1);
        assert_eq!(app.ctx.store.balance(&u, "video_seconds"), 1800);
        // NOW is 10 minutes before the period ends: hold 1000 seconds for an hour.
        let (st, v) = track(&app, "job", json!({"feature": "video_seconds", "quantity": 1000, "hold": true}), NOW).await;
        assert_eq!(st, 200, "{v}");
        let id = v["usage_id"].as_str().unwrap().to_string();
        let renewal = s + P;
        let (st, v) = stripe(&app, &invoice(1), renewal + 1).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(app.ctx.store.balance(&u, "video_seconds"), 1800 + 800, "the held 1000 did not carry over");
        let (st, r) = settle(&app, &id, "release", renewal + 60).await;
        assert_eq!(st, 200, "{r}");
        lots_add_up(&app.ctx.store);
        assert_eq!(
            app.ctx.store.balance(&u, "video_seconds"),
            3600,
            "the release must leave what a fold of the facts without the hold gives: {:#?}",
            app.ctx.store.lots(&u)
        );
        assert_eq!(spendable(&app, "video_seconds", renewal + 61).await, json!(3600));
    });
}

// ------------------------------------------------------------------ what the store writes

/// `GET /v1/usage` is the caller's use: a hold released gave its credits back and is no
/// use, so a day with a released hold of 6 and a captured hold of 2 used 2 credits, once.
#[test]
fn usage_by_day_leaves_out_released_holds() {
    block(async {
        let app = memory("razorpay-ai");
        credit(&app, "ai_credits", 10, "start", None, NOW).await;
        let hold = |n: u64| json!({"feature": "ai_credits", "quantity": n, "hold": true});
        let (_, v) = track(&app, "a", hold(6), NOW).await;
        let a = v["usage_id"].as_str().unwrap().to_string();
        let (_, v) = track(&app, "b", hold(2), NOW + 1).await;
        let b = v["usage_id"].as_str().unwrap().to_string();
        assert_eq!(settle(&app, &a, "release", NOW + 2).await.0, 200);
        assert_eq!(settle(&app, &b, "capture", NOW + 3).await.0, 200);
        assert_eq!(spendable(&app, "ai_credits", NOW + 4).await, json!(8));
        let req = InRequest {
            method: Method::Get,
            path: "/v1/usage".into(),
            query: "feature=ai_credits&from=2027-01-15&to=2027-01-16".into(),
            headers: user("", NOW + 5),
            body: vec![],
        };
        let r = app.handle(req, Timestamp(NOW + 5)).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body_json()["days"],
            json!([{"day": "2027-01-15", "units": 2, "uses": 1}]),
            "the balance moved by 2, the usage says otherwise"
        );
    });
}

/// The Video Studio catalog with one more limit, `overage` (monthly, 100 for everyone):
/// a valid catalog (a limit id without `:`).
fn with_overage_limit() -> Value {
    let mut doc: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
    let tiers: serde_json::Map<String, Value> =
        ["creator", "pro", "agency", "studio"].iter().map(|t| (t.to_string(), json!(100))).collect();
    doc["limits"].as_array_mut().unwrap().push(json!({
        "id": "overage", "label": "Overage requests", "product": "video", "period": "month",
        "values": tiers, "without_entitlement": 100,
    }));
    doc
}

/// The overage cap's counter (`overage:usd`) and a limit's scoped counter are different
/// counters whatever the catalog names its limits: a use of limit `overage` with scope
/// `usd` neither spends the caller's overage cap nor is refused by overage billed.
#[test]
fn a_scoped_limit_never_counts_in_the_overage_counter() {
    block(async {
        let app = memory("video-studio");
        assert_eq!(app.ctx.store.push_catalog(with_overage_limit(), true), 1);
        credit(&app, "video_seconds", 1, "one", None, NOW).await;
        assert_eq!(consume(&app, "warm", json!(1), NOW).await.0, 200);
        assert_eq!(prefs(&app, json!({"allow_overages": true, "overage_limit": 15}), NOW).await.0, 200);
        // 15 uses of the limit, counted per scope `usd` (or, should the catalog be refused
        // for naming a limit so, an unknown feature: 404).
        let (tracked, v) = track(&app, "uses", json!({"feature": "overage", "scope": "usd", "quantity": 15}), NOW + 1).await;
        assert!(tracked == 200 || tracked == 404, "{tracked} {v}");
        // 10 s of overage cost 15 cents: exactly the cap, nothing of it spent yet.
        let (s, v) = consume(&app, "render", json!(10), NOW + 2).await;
        assert_eq!((s, v["record"]["overage_minor"].clone()), (200, json!(15)), "limit uses spent the overage cap: {v}");
        // And the 15 cents billed are not 15 more uses of the limit.
        if tracked == 200 {
            let (s, c) = post_json(&app, "/v1/check", user("", NOW + 3), json!({"feature": "overage", "scope": "usd"}), NOW + 3).await;
            assert_eq!((s, c["used"].clone()), (200, json!(15)), "{c}");
        }
    });
}
