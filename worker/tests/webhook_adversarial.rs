//! Provider webhooks attacked end to end through the app on the in-memory store: signatures
//! at their edges (tolerance, several v1s, rotated secrets, Razorpay's exact raw body),
//! redeliveries, reorderings, events kept until their user
//! appears, refunds and disputes after usage, hostile bodies, and a store failing at each of
//! its calls (5xx, nothing of its insides, nothing paid lost).

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use common::{block, hmac, raw, text, user_token, CallGate, Gated, NoNetwork, ADMIN_SECRET, JWT_SECRET, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{AppResponse, Headers, Method, Transport};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::{Store, StoreError};

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const U1: &str = "00000000-0000-4000-8000-0000000000c1";
const U2: &str = "00000000-0000-4000-8000-0000000000c2";
const OLD_SECRET: &str = "whsec_rotated_out_0123456789abcdef";
const RZP_SECRET: &str = "rzp_webhook_secret_adversarial";

fn config_with(catalog: &str, stripe_secrets: &str) -> Config {
    let vars: BTreeMap<&str, String> = [
        ("SUPABASE_URL", "http://127.0.0.1:1".to_string()),
        ("SUPABASE_SERVICE_ROLE_KEY", "svc".to_string()),
        ("SUPABASE_JWT_SECRET", JWT_SECRET.to_string()),
        ("STRIPE_WEBHOOK_SECRETS", stripe_secrets.to_string()),
        ("RAZORPAY_WEBHOOK_SECRET", RZP_SECRET.to_string()),
        ("ADMIN_SECRET", ADMIN_SECRET.to_string()),
        ("CATALOG", catalog.to_string()),
        ("SNAPSHOT_SIGNING_KEY", "11".repeat(32)),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(|k| vars.get(k).cloned()).expect("config")
}

fn app_on(catalog: &str) -> App<NoNetwork, MemoryStore> {
    let app = App::with_store(config_with(catalog, STRIPE_SECRET), NoNetwork, MemoryStore::new()).expect("app");
    app.ctx.store.add_user(U1);
    app
}

fn sig(secret: &str, t: i64, body: &[u8]) -> String {
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    // common::hmac takes text: the bodies here are UTF-8.
    hex::encode(hmac(secret, std::str::from_utf8(&msg).expect("utf-8")))
}

async fn stripe_body<T: Transport, S: Store>(app: &App<T, S>, body: &[u8], now: i64) -> AppResponse {
    let h = Headers::new().with("stripe-signature", format!("t={now},v1={}", sig(STRIPE_SECRET, now, body)));
    raw(app, Method::Post, "/webhooks/stripe", h, body, now).await
}

async fn stripe_ev<T: Transport, S: Store>(app: &App<T, S>, ev: &Value, now: i64) -> (u16, Value) {
    let r = stripe_body(app, ev.to_string().as_bytes(), now).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

async fn razorpay_body<T: Transport, S: Store>(app: &App<T, S>, body: &[u8], event_id: Option<&str>, now: i64) -> AppResponse {
    let mut h = Headers::new().with("x-razorpay-signature", tollgate::verify::sign_razorpay(body, RZP_SECRET));
    if let Some(id) = event_id {
        h = h.with("x-razorpay-event-id", id);
    }
    raw(app, Method::Post, "/webhooks/razorpay", h, body, now).await
}

fn json_of(r: &AppResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn admin() -> Headers {
    Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"))
}

fn seconds(app: &App<NoNetwork, MemoryStore>, uid: &str) -> i64 {
    app.ctx.store.balance(&Subject::user(uid), "video_seconds")
}

/// `uid` buys Video Studio's 30-minute pack (1800 seconds) as checkout `cs_<n>`, paid by `pi_<n>`.
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

/// Charge `ch_<n>` of `pi_<n>` refunded by `refunded` of its 1900.
fn refund(n: &str, refunded: i64, at: i64) -> Value {
    json!({
        "id": format!("evt_re_{n}_{refunded}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
        "type": "charge.refunded", "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("ch_{n}"), "object": "charge", "amount": 1900, "amount_refunded": refunded,
            "refunded": refunded == 1900, "payment_intent": format!("pi_{n}"), "currency": "usd", "created": at,
        }},
    })
}

/// Dispute `dp_<n>` of charge `ch_<n>` (payment `pi_<n>`) in `status`, told by `ty`.
fn dispute(n: &str, ty: &str, status: &str, amount: i64, at: i64) -> Value {
    json!({
        "id": format!("evt_dp_{n}_{ty}_{status}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
        "type": ty, "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("dp_{n}"), "object": "dispute", "amount": amount, "charge": format!("ch_{n}"),
            "payment_intent": format!("pi_{n}"), "currency": "usd", "status": status, "created": at,
        }},
    })
}

async fn track<T: Transport, S: Store>(app: &App<T, S>, uid: &str, key: &str, quantity: u64, now: i64) -> (u16, Value) {
    let h = Headers::new()
        .with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)))
        .with("idempotency-key", key);
    common::call(app, Method::Post, "/v1/track", h, &json!({"feature": "video_seconds", "quantity": quantity}), now).await
}

// ------------------------------------------------------------------ signatures

/// Stripe's tolerance is `|now - t| <= 300`: a signature exactly 300 s old or 300 s ahead is
/// taken and applied, 301 s either way is refused and stores nothing.
#[test]
fn stripe_timestamps_at_the_tolerance_edges() {
    block(async {
        let app = app_on("video-studio");
        for (n, t) in [("old", NOW - 300), ("ahead", NOW + 300)] {
            let body = pack(n, U1, NOW - 400).to_string();
            let h = Headers::new().with("stripe-signature", format!("t={t},v1={}", sig(STRIPE_SECRET, t, body.as_bytes())));
            let r = raw(&app, Method::Post, "/webhooks/stripe", h, body.as_bytes(), NOW).await;
            assert_eq!((r.status, json_of(&r)["status"].as_str()), (200, Some("applied")), "{n}: {}", text(&r));
        }
        assert_eq!(seconds(&app, U1), 3600);
        for (n, t) in [("older", NOW - 301), ("further", NOW + 301)] {
            let body = pack(n, U1, NOW - 400).to_string();
            let h = Headers::new().with("stripe-signature", format!("t={t},v1={}", sig(STRIPE_SECRET, t, body.as_bytes())));
            let r = raw(&app, Method::Post, "/webhooks/stripe", h, body.as_bytes(), NOW).await;
            assert_eq!(r.status, 400, "{n}: {}", text(&r));
            assert_eq!(json_of(&r)["error"]["code"], "timestamp_out_of_tolerance", "{n}");
        }
        assert_eq!(seconds(&app, U1), 3600, "nothing applied past the tolerance");
    })
}

/// During a secret's rotation Stripe signs with every active secret: a header with a
/// garbage v1, a v1 under a secret the endpoint does not know and the right one (in any
/// order, with spaces and a v0 decoy) is taken; the worker configured with the old and
/// the new secret takes a delivery signed with either alone.
#[test]
fn several_v1_signatures_and_rotated_secrets_are_taken() {
    block(async {
        let app = App::with_store(config_with("video-studio", &format!("{OLD_SECRET}, {STRIPE_SECRET}")), NoNetwork, MemoryStore::new())
            .expect("app");
        app.ctx.store.add_user(U1);
        let headers = |body: &str| {
            let good = sig(STRIPE_SECRET, NOW, body.as_bytes());
            let old = sig(OLD_SECRET, NOW, body.as_bytes());
            let other = sig("whsec_nobody_knows_this", NOW, body.as_bytes());
            vec![
                format!("t={NOW},v1={other},v1={good}"),
                format!("v1={good}, t={NOW}, v0={other}"),
                format!("t={NOW},v1=zz,v1={}", "0".repeat(64)) + &format!(",v1={old}"),
                format!("t={NOW},v1={old}"),
                format!("t={NOW},v1={}", good.to_uppercase()) + &format!(",v1={good}"),
            ]
        };
        for (i, _) in headers("").iter().enumerate() {
            let body = pack(&format!("rot{i}"), U1, NOW - 10).to_string();
            let h = Headers::new().with("stripe-signature", headers(&body)[i].clone());
            let r = raw(&app, Method::Post, "/webhooks/stripe", h, body.as_bytes(), NOW).await;
            assert_eq!((r.status, json_of(&r)["status"].as_str()), (200, Some("applied")), "header #{i}: {}", text(&r));
        }
        assert_eq!(seconds(&app, U1), 5 * 1800);
    })
}

/// Razorpay signs the exact raw body: a body with odd whitespace, escaped and raw
/// unicode, keys in another order and duplicate keys is taken as sent (never re-serialized
/// before the check), and applied.
#[test]
fn razorpay_signature_is_over_the_exact_raw_body() {
    block(async {
        let app = app_on("razorpay-ai");
        let body = format!(
            "{{\n  \"created_at\" : {at},\r\n\t\"event\":\"payment.captured\", \"entity\": \"event\", \"contains\":[\"payment\"],\
             \"payload\":{{\"payment\":{{\"entity\":{{\"id\":\"pay_h3raw\",\"entity\":\"payment\",\"amount\":9900,\"currency\":\"INR\",\
             \"status\":\"captured\",\"order_id\":\"order_h3raw\",\"captured\":true,\"description\":\"caf\\u00e9 \u{1F600} \u{202E}\",\
             \"notes\":{{\"user_id\":\"{U1}\",\"offer_key\":\"AI_CREDITS_TOPUP_500\",\"note\":\"\u{65e5}\u{672c}\"}},\"created_at\":{at}}}}}}}}}   \n",
            at = NOW - 5
        );
        let r = razorpay_body(&app, body.as_bytes(), Some("evt_rzp_raw"), NOW).await;
        assert_eq!((r.status, json_of(&r)["status"].as_str()), (200, Some("applied")), "{}", text(&r));
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 500);
        // One byte changed after signing: refused.
        let sigv = tollgate::verify::sign_razorpay(body.as_bytes(), RZP_SECRET);
        let tampered = body.replacen("9900", "9901", 1);
        let h = Headers::new().with("x-razorpay-signature", sigv).with("x-razorpay-event-id", "evt_rzp_raw2");
        let r = raw(&app, Method::Post, "/webhooks/razorpay", h, tampered.as_bytes(), NOW).await;
        assert_eq!(r.status, 400, "{}", text(&r));
    })
}

// ------------------------------------------------------------------ redeliveries and ids

/// A Stripe redelivery (a later `t`, the same body) is `duplicate` and credits nothing
/// twice; so is the same payment told again by a second event id.
#[test]
fn stripe_redeliveries_credit_once() {
    block(async {
        let app = app_on("video-studio");
        let ev = pack("dup", U1, NOW - 30);
        assert_eq!(stripe_ev(&app, &ev, NOW).await.1["status"], "applied");
        for later in [NOW + 60, NOW + 3600, NOW + 3 * DAY] {
            let (s, v) = stripe_ev(&app, &ev, later).await;
            assert_eq!((s, v["status"].as_str()), (200, Some("duplicate")), "{v}");
        }
        let mut again = ev.clone();
        again["id"] = json!("evt_cs_dup_second");
        let (s, v) = stripe_ev(&app, &again, NOW + 10).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app, U1), 1800, "one payment credits once");
    })
}

/// Razorpay: the same body told under two event ids (a retry, or `order.paid` beside
/// `payment.captured` of one payment) credits once; a body sent without an event id and
/// sent again is recognised (its digest) and credits once.
#[test]
fn razorpay_one_payment_told_many_ways_credits_once() {
    block(async {
        let app = app_on("razorpay-ai");
        let payment = |id: &str| {
            json!({"id": id, "entity": "payment", "amount": 9900, "currency": "INR", "status": "captured",
                   "order_id": format!("order_{id}"), "captured": true, "amount_refunded": 0,
                   "notes": {"user_id": U1, "offer_key": "AI_CREDITS_TOPUP_500"}, "created_at": NOW - 20})
        };
        let captured = |id: &str| {
            json!({"entity": "event", "event": "payment.captured", "contains": ["payment"],
                   "payload": {"payment": {"entity": payment(id)}}, "created_at": NOW - 10})
            .to_string()
        };
        let order_paid = json!({"entity": "event", "event": "order.paid", "contains": ["payment", "order"],
            "payload": {"payment": {"entity": payment("pay_a")},
                        "order": {"entity": {"id": "order_pay_a", "entity": "order", "amount": 9900, "amount_paid": 9900,
                                             "currency": "INR", "status": "paid", "notes": {"user_id": U1, "offer_key": "AI_CREDITS_TOPUP_500"}}}},
            "created_at": NOW - 9})
        .to_string();
        for (id, body) in [(Some("e1"), captured("pay_a")), (Some("e2"), captured("pay_a")), (Some("e3"), order_paid)] {
            let r = razorpay_body(&app, body.as_bytes(), id, NOW).await;
            assert_eq!(r.status, 200, "{}", text(&r));
        }
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 500, "pay_a credits once");
        let body = captured("pay_b");
        let first = razorpay_body(&app, body.as_bytes(), None, NOW).await;
        assert_eq!(json_of(&first)["status"], "applied", "{}", text(&first));
        let second = razorpay_body(&app, body.as_bytes(), None, NOW + 60).await;
        assert_eq!((second.status, json_of(&second)["status"].as_str()), (200, Some("duplicate")), "{}", text(&second));
        assert_eq!(json_of(&first)["event"], json_of(&second)["event"]);
        assert_eq!(app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 1000);
    })
}


// ------------------------------------------------------------------ kept, then applied

/// A purchase by a user the database does not know yet is kept (200); once the user
/// signs up, the provider's own retry (an answer of 200 ends them, but a retry may already
/// be on its way) and the scheduled run apply it, exactly once, and leave nothing kept.
#[test]
fn a_purchase_for_a_user_who_signs_up_later_is_applied_once() {
    block(async {
        let app = app_on("video-studio");
        let ev = pack("late", U2, NOW - 30);
        let (s, v) = stripe_ev(&app, &ev, NOW).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("kept")), "{v}");
        assert!(v["waiting_for"].to_string().contains(U2), "{v}");
        assert_eq!(seconds(&app, U2), 0);
        app.ctx.store.add_user(U2);
        let (s, v) = stripe_ev(&app, &ev, NOW + 60).await;
        assert_eq!(s, 200, "{v}");
        let run = app.scheduled(Timestamp(NOW + 120)).await.expect("run");
        assert_eq!(seconds(&app, U2), 1800, "after the run {run}");
        assert!(app.ctx.store.kept().is_empty(), "still kept: {:?}", app.ctx.store.kept());
        // Another run, another redelivery: nothing more.
        app.scheduled(Timestamp(NOW + 240)).await.expect("run");
        let (s, _) = stripe_ev(&app, &ev, NOW + 300).await;
        assert_eq!(s, 200);
        assert_eq!(seconds(&app, U2), 1800);
    })
}

/// A user who signs up after paying sees the purchase at their first request, before any
/// scheduled run: the redelivery that arrives once they exist applies it (it is not a
/// `duplicate` of a delivery that applied nothing for them).
#[test]
fn a_redelivery_after_the_user_exists_applies_what_was_kept() {
    block(async {
        let app = app_on("video-studio");
        let ev = pack("late2", U2, NOW - 30);
        assert_eq!(stripe_ev(&app, &ev, NOW).await.1["status"], "kept");
        // Redelivered while the user is still unknown: the same kept event, nothing applied.
        let (s, v) = stripe_ev(&app, &ev, NOW + 30).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("duplicate")), "{v}");
        assert_eq!(app.ctx.store.kept().len(), 1, "{:?}", app.ctx.store.kept());
        app.ctx.store.add_user(U2);
        let (s, v) = stripe_ev(&app, &ev, NOW + 60).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{v}");
        assert_eq!(seconds(&app, U2), 1800, "the redelivery answered {v} and U2 holds nothing");
        assert!(app.ctx.store.kept().is_empty(), "resolved: {:?}", app.ctx.store.kept());
        // Told again after that: a duplicate, nothing twice.
        let (s, v) = stripe_ev(&app, &ev, NOW + 90).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("duplicate")), "{v}");
        assert_eq!(seconds(&app, U2), 1800);
    })
}

/// An unattributable purchase (no buyer) is kept, attributed by an operator, and its later
/// redeliveries and a retry of the attribution change nothing.
#[test]
fn an_operators_attribution_applies_once_whatever_follows() {
    block(async {
        let app = app_on("video-studio");
        let mut ev = pack("anon", U1, NOW - 30);
        ev["data"]["object"]["client_reference_id"] = Value::Null;
        let (s, v) = stripe_ev(&app, &ev, NOW).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("kept")), "{v}");
        let attribute = json!({"event": "evt_cs_anon", "user_id": U1, "by": "ops"});
        let (s, v) = common::call(&app, Method::Post, "/v1/admin/attribute", admin(), &attribute, NOW + 10).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app, U1), 1800);
        let (s, v) = stripe_ev(&app, &ev, NOW + 20).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = common::call(&app, Method::Post, "/v1/admin/attribute", admin(), &attribute, NOW + 30).await;
        assert_eq!(s, 200, "{v}");
        app.scheduled(Timestamp(NOW + 40)).await.expect("run");
        assert_eq!(seconds(&app, U1), 1800);
        assert!(app.ctx.store.kept().is_empty());
    })
}

// ------------------------------------------------------------------ refunds and disputes after usage

/// Usage, then a full refund: the pack's seconds left are taken back, what was used stays
/// used (no negative balance, no second charge), and redelivering the refund or the
/// checkout changes nothing.
#[test]
fn a_full_refund_after_usage_takes_back_what_is_left() {
    block(async {
        let app = app_on("video-studio");
        assert_eq!(stripe_ev(&app, &pack("r1", U1, NOW - 100), NOW - 90).await.1["status"], "applied");
        let (s, v) = track(&app, U1, "use-1", 600, NOW - 50).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app, U1), 1200);
        let (s, v) = stripe_ev(&app, &refund("r1", 1900, NOW), NOW).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app, U1), 0, "refunded: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
        for (ev, at) in [(refund("r1", 1900, NOW), NOW + 10), (pack("r1", U1, NOW - 100), NOW + 20)] {
            assert_eq!(stripe_ev(&app, &ev, at).await.0, 200);
        }
        assert_eq!(seconds(&app, U1), 0);
        let (s, v) = track(&app, U1, "use-2", 1, NOW + 30).await;
        assert_ne!(s, 200, "nothing left to use after the refund: {v}");
    })
}

/// Partial refunds in steps, delivered out of order (the 100% one first): the result is
/// the full refund's, never more.
#[test]
fn partial_refunds_out_of_order_take_back_one_full_refund() {
    block(async {
        let app = app_on("video-studio");
        assert_eq!(stripe_ev(&app, &pack("r2", U1, NOW - 100), NOW - 90).await.1["status"], "applied");
        assert_eq!(track(&app, U1, "use-1", 300, NOW - 50).await.0, 200);
        for (refunded, at) in [(1900, NOW + 30), (950, NOW + 10), (475, NOW)] {
            let (s, v) = stripe_ev(&app, &refund("r2", refunded, NOW + refunded / 100), at).await;
            assert_eq!(s, 200, "{v}");
        }
        assert_eq!(seconds(&app, U1), 0, "{:#?}", app.ctx.store.lots(&Subject::user(U1)));
    })
}

/// A refund delivered before the purchase it refunds (reordering): kept or applied, and
/// once the purchase arrives the pack is refunded: nothing to spend, nothing left kept.
#[test]
fn a_refund_before_its_purchase_still_refunds_it() {
    block(async {
        let app = app_on("video-studio");
        let (s, v) = stripe_ev(&app, &refund("r3", 1900, NOW), NOW).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = stripe_ev(&app, &pack("r3", U1, NOW - 100), NOW + 5).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app, U1), 0, "the refund told first is lost: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
        app.scheduled(Timestamp(NOW + 60)).await.expect("run");
        assert!(app.ctx.store.kept().is_empty(), "{:?}", app.ctx.store.kept());
    })
}

/// A dispute opened after usage takes back what is left; won, it gives it all back (as
/// if it never happened: the usage stays charged once); its updates in between change
/// nothing.
#[test]
fn a_dispute_after_usage_opened_then_won() {
    block(async {
        let app = app_on("video-studio");
        assert_eq!(stripe_ev(&app, &pack("d1", U1, NOW - 100), NOW - 90).await.1["status"], "applied");
        assert_eq!(track(&app, U1, "use-1", 800, NOW - 50).await.0, 200);
        for (ty, status, at) in [
            ("charge.dispute.created", "needs_response", NOW),
            ("charge.dispute.updated", "under_review", NOW + 10),
            ("charge.dispute.funds_withdrawn", "under_review", NOW + 11),
        ] {
            let (s, v) = stripe_ev(&app, &dispute("d1", ty, status, 1900, at), at).await;
            assert_eq!(s, 200, "{ty}: {v}");
        }
        assert_eq!(seconds(&app, U1), 0, "open dispute: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
        let (s, v) = stripe_ev(&app, &dispute("d1", "charge.dispute.closed", "won", 1900, NOW + 20), NOW + 20).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app, U1), 1000, "won: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
    })
}

/// A refund and then a lost dispute of the same payment take back one payment's worth,
/// not two; a dispute of half the payment takes half of what is left.
#[test]
fn a_refund_and_a_lost_dispute_of_one_payment_take_it_back_once() {
    block(async {
        let app = app_on("video-studio");
        assert_eq!(stripe_ev(&app, &pack("d2", U1, NOW - 100), NOW - 90).await.1["status"], "applied");
        assert_eq!(stripe_ev(&app, &pack("d3", U1, NOW - 100), NOW - 90).await.1["status"], "applied");
        assert_eq!(seconds(&app, U1), 3600);
        assert_eq!(stripe_ev(&app, &refund("d2", 1900, NOW), NOW).await.0, 200);
        assert_eq!(stripe_ev(&app, &dispute("d2", "charge.dispute.closed", "lost", 1900, NOW + 5), NOW + 5).await.0, 200);
        assert_eq!(seconds(&app, U1), 1800, "pack d3 untouched: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
        assert_eq!(stripe_ev(&app, &dispute("d3", "charge.dispute.created", "needs_response", 950, NOW + 6), NOW + 6).await.0, 200);
        assert_eq!(seconds(&app, U1), 900, "half of d3 disputed: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
    })
}

// ------------------------------------------------------------------ hostile bodies

/// Bodies a signed sender could send: just under the 1 MiB limit, deeply nested JSON,
/// duplicate keys, unicode in ids and metadata, a NUL in a string, a BOM: never a 4xx,
/// never a 5xx on a healthy store, and redelivered never stored twice.
#[test]
fn hostile_but_signed_stripe_bodies_are_acknowledged() {
    block(async {
        let app = app_on("video-studio");
        let mut big = pack("big", U1, NOW - 10);
        big["data"]["object"]["metadata"]["note"] = json!("x".repeat(1024 * 1024 - 2000));
        let mut uni = pack("uni", U1, NOW - 10);
        uni["id"] = json!("evt_\u{1F600}_\u{202E}_é");
        uni["data"]["object"]["metadata"]["who"] = json!("\u{0}\u{FEFF}日本");
        let dup_keys = format!(
            r#"{{"id":"evt_dupkeys","id":"evt_dupkeys2","object":"event","type":"checkout.session.completed","created":{c},"livemode":false,"data":{{"object":{{"id":"cs_dk","object":"checkout.session","mode":"payment","status":"complete","payment_status":"paid","customer":"cus_dk","payment_intent":"pi_dk","client_reference_id":"{U2}","client_reference_id":"{U1}","metadata":{{"offer_key":"VIDEO_TOKENS_30_MIN"}},"amount_total":1900,"currency":"usd","created":{c}}}}}}}"#,
            c = NOW - 10
        );
        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(pack("bom", U1, NOW - 10).to_string().as_bytes());
        let bodies: Vec<(&str, Vec<u8>)> = vec![
            ("just under 1 MiB", big.to_string().into_bytes()),
            ("unicode ids and metadata", uni.to_string().into_bytes()),
            ("duplicate keys", dup_keys.into_bytes()),
            ("deeply nested", nested.into_bytes()),
            ("a byte order mark", bom),
        ];
        for (what, body) in &bodies {
            assert!(body.len() < 1024 * 1024, "{what}: {}", body.len());
            let r = stripe_body(&app, body, NOW).await;
            assert_eq!(r.status, 200, "{what}: {}", text(&r));
            let st = json_of(&r)["status"].as_str().unwrap_or_default().to_string();
            assert!(["applied", "kept", "ignored"].contains(&st.as_str()), "{what}: {}", text(&r));
            let kept = app.ctx.store.kept().len();
            let r = stripe_body(&app, body, NOW + 30).await;
            assert_eq!(r.status, 200, "{what} again: {}", text(&r));
            assert_eq!(app.ctx.store.kept().len(), kept, "{what}: kept twice");
        }
        // Duplicate keys are read as every JSON parser the providers' libraries use reads
        // them: the last one wins (U1 bought `cs_dk`), never a mix.
        assert_eq!(seconds(&app, U2), 0);
        assert_eq!(seconds(&app, U1), 3 * 1800, "big, unicode, duplicate keys: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
    })
}

/// A signed body that the core cannot read now is kept with what it said; the operator's
/// listing shows it, and the scheduled run retries it without failing the run.
#[test]
fn an_unreadable_signed_body_is_listed_and_retried_without_breaking_the_run() {
    block(async {
        let app = app_on("video-studio");
        let mut ev = pack("bad", U1, NOW - 10);
        ev["data"]["object"]["amount_total"] = json!("nineteen");
        let r = stripe_body(&app, ev.to_string().as_bytes(), NOW).await;
        assert_eq!((r.status, json_of(&r)["status"].as_str()), (200, Some("kept")), "{}", text(&r));
        let r = stripe_body(&app, b"\xEF\xBB\xBF{\"id\":\"evt_bomx\"}", NOW).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let run = app.scheduled(Timestamp(NOW + 60)).await.expect("the run goes on");
        assert_eq!(run["pending_retried"], 2, "{run}");
        let (s, v) = common::call(&app, Method::Get, "/v1/admin/unattributed", admin(), &Value::Null, NOW + 70).await;
        assert_eq!(s, 200, "{v}");
        let events = v["events"].as_array().expect("events");
        assert_eq!(events.len(), 2, "{v}");
        assert!(events.iter().any(|e| e["event"] == "evt_cs_bad"), "{v}");
    })
}

// ------------------------------------------------------------------ a failing store

/// Fails exactly the `n`th store call (counted from 1), then no more.
#[derive(Default)]
struct FailNth {
    n: Cell<u64>,
    seen: Cell<u64>,
    failed: Cell<Option<&'static str>>,
    unavailable: Cell<bool>,
}
impl CallGate for FailNth {
    fn before(&self, call: &'static str) -> Result<(), StoreError> {
        self.seen.set(self.seen.get() + 1);
        if self.seen.get() == self.n.get() {
            self.failed.set(Some(call));
            let internals = "relation \"public.tollgate_facts\" violates constraint secret_detail_h3 at db.internal:5432".to_string();
            return Err(if self.unavailable.get() {
                StoreError::Unavailable(internals)
            } else {
                StoreError::Decode(internals)
            });
        }
        Ok(())
    }
}

const INTERNALS: &[&str] = &["tollgate_facts", "secret_detail", "db.internal", "5432", "relation", "constraint"];

/// For every store call a delivery makes (a purchase applied, one kept for an unknown
/// user, an unreadable one kept, a refund), that call failing gives 5xx with
/// `retry-after` and none of the store's words, or a 200 that stored what it says; the
/// provider's retry then leaves exactly what one clean delivery leaves.
#[test]
fn a_store_failing_at_any_call_is_5xx_and_the_retry_loses_nothing() {
    block(async {
        let cases: Vec<(&str, Vec<Value>, i64, i64)> = vec![
            ("purchase", vec![pack("f", U1, NOW - 10)], 1800, 0),
            ("purchase then refund", vec![pack("f", U1, NOW - 10), refund("f", 1900, NOW - 5)], 0, 0),
            ("unknown user", vec![pack("g", U2, NOW - 10)], 0, 1),
        ];
        for (what, events, want_seconds, want_kept) in cases {
            for unavailable in [false, true] {
                for n in 1..=12u64 {
                    let app = App::with_store(config_with("video-studio", STRIPE_SECRET), NoNetwork, Gated::<FailNth>::default())
                        .expect("app");
                    app.ctx.store.inner.add_user(U1);
                    // Every event but the last goes through cleanly.
                    for ev in &events[..events.len() - 1] {
                        let r = stripe_body(&app, ev.to_string().as_bytes(), NOW).await;
                        assert_eq!(r.status, 200, "{}", text(&r));
                    }
                    let last = events.last().unwrap().to_string();
                    app.ctx.store.gate.seen.set(0);
                    app.ctx.store.gate.n.set(n);
                    app.ctx.store.gate.unavailable.set(unavailable);
                    let r = stripe_body(&app, last.as_bytes(), NOW).await;
                    let failed = app.ctx.store.gate.failed.take();
                    let body = text(&r);
                    assert!(r.status == 200 || r.status >= 500, "{what} #{n} ({failed:?}): {} {body}", r.status);
                    for i in INTERNALS {
                        assert!(!body.contains(i), "{what} #{n} ({failed:?}): the provider is shown `{i}`: {body}");
                    }
                    if r.status >= 500 {
                        assert!(r.headers.get("retry-after").is_some(), "{what} #{n}: {body}");
                    }
                    // The provider retries (or redelivers anyway) a minute later.
                    app.ctx.store.gate.n.set(0);
                    let r = stripe_body(&app, last.as_bytes(), NOW + 60).await;
                    assert_eq!(r.status, 200, "{what} #{n} ({failed:?}) retried: {}", text(&r));
                    let got = app.ctx.store.inner.balance(&Subject::user(U1), "video_seconds");
                    let kept = app.ctx.store.inner.kept().len() as i64;
                    assert_eq!(
                        (got, kept),
                        (want_seconds, want_kept),
                        "{what}: store call #{n} ({failed:?}, unavailable: {unavailable}) failing, then a retry: {:#?}",
                        app.ctx.store.inner.lots(&Subject::user(U1))
                    );
                }
            }
        }
    })
}

/// A failing store while a kept event is retried by the scheduled run: the run reports
/// it (or fails) and the next healthy run applies the event once.
#[test]
fn a_store_failing_during_the_retry_of_a_kept_event_loses_nothing() {
    block(async {
        for n in 1..=10u64 {
            let app =
                App::with_store(config_with("video-studio", STRIPE_SECRET), NoNetwork, Gated::<FailNth>::default()).expect("app");
            app.ctx.store.inner.add_user(U1);
            let r = stripe_body(&app, pack("k", U2, NOW - 10).to_string().as_bytes(), NOW).await;
            assert_eq!(json_of(&r)["status"], "kept", "{}", text(&r));
            app.ctx.store.inner.add_user(U2);
            app.ctx.store.gate.seen.set(0);
            app.ctx.store.gate.n.set(n);
            let _ = app.scheduled(Timestamp(NOW + 60)).await;
            let failed = app.ctx.store.gate.failed.take();
            app.ctx.store.gate.n.set(0);
            app.scheduled(Timestamp(NOW + 120)).await.expect("a healthy run");
            assert_eq!(
                app.ctx.store.inner.balance(&Subject::user(U2), "video_seconds"),
                1800,
                "call #{n} ({failed:?}) failing in a run, then a healthy run"
            );
            assert!(app.ctx.store.inner.kept().is_empty(), "#{n} ({failed:?}): {:?}", app.ctx.store.inner.kept());
        }
    })
}

// ------------------------------------------------------------------ clocks and one second

/// Stripe's clock a little ahead of the worker's: a pack whose event says it was created
/// 30 s from now is spendable at once, not only once the worker's clock catches up.
#[test]
fn a_purchase_told_by_a_clock_slightly_ahead_is_spendable_at_once() {
    block(async {
        let app = app_on("video-studio");
        let (s, v) = stripe_ev(&app, &pack("ahead", U1, NOW + 30), NOW).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{v}");
        assert_eq!(seconds(&app, U1), 1800);
        let (s, v) = track(&app, U1, "now-1", 10, NOW + 1).await;
        assert_eq!(s, 200, "paid for and refused: {v}");
    })
}

fn suite_sub(id: &str, ty: &str, status: &str, at: i64, uid: &str) -> Value {
    let mut obj = json!({"id": "sub_h3", "object": "subscription", "customer": "cus_h3", "status": status,
        "cancel_at_period_end": false, "start_date": NOW - 100, "created": NOW - 100, "metadata": {"user_id": uid},
        "items": {"object": "list", "data": [{"id": "si_h3", "object": "subscription_item", "quantity": 1,
            "price": {"id": "price_vcm_pro_monthly", "object": "price", "metadata": {}},
            "current_period_start": NOW - 100, "current_period_end": NOW - 100 + 30 * DAY}]}});
    if status == "canceled" {
        obj["ended_at"] = json!(at);
        obj["canceled_at"] = json!(at);
    }
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
           "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
           "data": {"object": obj}})
}

/// A subscription created and deleted in one second, told in either order: it ends
/// deleted (no grant active), as its deletion's own event says.
#[test]
fn a_subscription_created_and_deleted_in_one_second_ends_deleted_in_either_order() {
    block(async {
        for reversed in [false, true] {
            let app = app_on("vcm-suite");
            let created = suite_sub("evt_sub_c", "customer.subscription.created", "active", NOW - 100, U1);
            let deleted = suite_sub("evt_sub_d", "customer.subscription.deleted", "canceled", NOW - 100, U1);
            let order = if reversed { [&deleted, &created] } else { [&created, &deleted] };
            for ev in order {
                let (s, v) = stripe_ev(&app, ev, NOW).await;
                assert_eq!(s, 200, "{v}");
            }
            let g = app.ctx.store.grants(&Subject::user(U1));
            let active: Vec<&Value> = g.iter().filter(|g| g["status"] == "active").collect();
            assert!(active.is_empty(), "reversed: {reversed}: deleted, yet {active:#?}");
        }
    })
}

/// A dispute that was only an inquiry, closed without a chargeback (`warning_closed`),
/// takes nothing back in the end; a `charge_refunded` close after a refund takes back one
/// payment's worth.
#[test]
fn an_inquiry_closed_gives_everything_back() {
    block(async {
        let app = app_on("video-studio");
        assert_eq!(stripe_ev(&app, &pack("q1", U1, NOW - 100), NOW - 90).await.1["status"], "applied");
        assert_eq!(track(&app, U1, "use-1", 100, NOW - 50).await.0, 200);
        assert_eq!(stripe_ev(&app, &dispute("q1", "charge.dispute.created", "warning_needs_response", 1900, NOW), NOW).await.0, 200);
        assert_eq!(seconds(&app, U1), 0);
        assert_eq!(stripe_ev(&app, &dispute("q1", "charge.dispute.closed", "warning_closed", 1900, NOW + 5), NOW + 5).await.0, 200);
        assert_eq!(seconds(&app, U1), 1700, "{:#?}", app.ctx.store.lots(&Subject::user(U1)));
    })
}

// ------------------------------------------------------------------ Razorpay refunds after usage

fn rzp_payment(id: &str, refunded: i64) -> Value {
    json!({"id": id, "entity": "payment", "amount": 9900, "currency": "INR", "status": "captured",
           "order_id": format!("order_{id}"), "captured": true, "amount_refunded": refunded,
           "notes": {"user_id": U1, "offer_key": "AI_CREDITS_TOPUP_500"}, "created_at": NOW - 100})
}

fn rzp_refund(rid: &str, pay: &str, amount: i64, with_payment: Option<i64>, at: i64) -> String {
    let mut payload = json!({"refund": {"entity": {"id": rid, "entity": "refund", "amount": amount, "currency": "INR",
        "payment_id": pay, "status": "processed", "created_at": at}}});
    if let Some(total) = with_payment {
        payload["payment"] = json!({"entity": rzp_payment(pay, total)});
    }
    json!({"entity": "event", "event": "refund.processed", "contains": ["refund"], "payload": payload, "created_at": at}).to_string()
}

/// Two partial refunds of one top-up after usage, each told with the payment (its running
/// total) and one told again without it: together 6000 of 9900 paise, so 6000/9900 of the
/// 500 credits go back (at most what is left), never more.
#[test]
fn razorpay_partial_refunds_after_usage_take_back_their_share_once() {
    block(async {
        let app = app_on("razorpay-ai");
        let captured = json!({"entity": "event", "event": "payment.captured", "contains": ["payment"],
            "payload": {"payment": {"entity": rzp_payment("pay_r", 0)}}, "created_at": NOW - 90})
        .to_string();
        assert_eq!(json_of(&razorpay_body(&app, captured.as_bytes(), Some("c1"), NOW - 90).await)["status"], "applied");
        let credits = || app.ctx.store.balance(&Subject::user(U1), "ai_credits");
        assert_eq!(credits(), 500);
        for (id, body) in [
            ("r1", rzp_refund("rfnd_1", "pay_r", 3000, Some(3000), NOW)),
            ("r2", rzp_refund("rfnd_2", "pay_r", 3000, Some(6000), NOW + 10)),
            ("r2b", rzp_refund("rfnd_2", "pay_r", 3000, None, NOW + 10)),
            ("r1b", rzp_refund("rfnd_1", "pay_r", 3000, None, NOW)),
        ] {
            let r = razorpay_body(&app, body.as_bytes(), Some(id), NOW + 20).await;
            assert_eq!(r.status, 200, "{id}: {}", text(&r));
        }
        // 6000/9900 of 500 = 303.03: what is left of the 500 is 500 - 303 (or 304 rounded up).
        let left = credits();
        assert!((196..=197).contains(&left), "left {left}: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
    })
}

/// The first request of a user who paid before signing up shows the purchase (their
/// joining fold folds what was kept for them), before any scheduled run.
#[test]
fn a_user_who_paid_before_signing_up_sees_it_at_the_first_request() {
    block(async {
        let app = app_on("video-studio");
        assert_eq!(stripe_ev(&app, &pack("first", U2, NOW - 30), NOW).await.1["status"], "kept");
        app.ctx.store.add_user(U2);
        let (s, v) = track(&app, U2, "first-use", 10, NOW + 5).await;
        assert_eq!(s, 200, "the paid pack is not there yet: {v}");
    })
}

/// Times at the edges of what the core reads (the epoch, the last second of 9999) in a
/// purchase's and a subscription's fields: a signed event is answered 200 (applied or
/// kept), never a 5xx the provider would retry for days, and nothing panics.
#[test]
fn times_at_the_edges_of_what_is_read_are_never_a_5xx() {
    block(async {
        const LAST: i64 = 253_402_300_799;
        let mut bodies: Vec<(String, Value)> = Vec::new();
        for (i, at) in [0, 1, LAST - 1, LAST].into_iter().enumerate() {
            bodies.push((format!("pack created {at}"), pack(&format!("edge{i}"), U1, at)));
        }
        for (i, (status, end)) in [("active", LAST), ("past_due", LAST), ("trialing", LAST), ("past_due", LAST - 86_400), ("active", 1)]
            .into_iter()
            .enumerate()
        {
            let mut ev = suite_sub(&format!("evt_edge_sub{i}"), "customer.subscription.updated", status, NOW - 50, U1);
            ev["data"]["object"]["id"] = json!(format!("sub_edge{i}"));
            ev["data"]["object"]["items"]["data"][0]["current_period_end"] = json!(end);
            if status == "trialing" {
                ev["data"]["object"]["trial_end"] = json!(end);
            }
            if end == 1 {
                ev["data"]["object"]["items"]["data"][0]["current_period_start"] = json!(0);
                ev["data"]["object"]["start_date"] = json!(0);
                ev["data"]["object"]["created"] = json!(0);
            }
            bodies.push((format!("subscription {status} until {end}"), ev));
        }
        for catalog in ["video-studio", "vcm-suite"] {
            let app = app_on(catalog);
            for (what, ev) in &bodies {
                let (s, v) = stripe_ev(&app, ev, NOW).await;
                assert_eq!(s, 200, "{catalog}: {what}: {v}");
                let (s, v) = common::call(
                    &app,
                    Method::Get,
                    "/v1/entitlements",
                    Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, NOW))),
                    &Value::Null,
                    NOW,
                )
                .await;
                assert_eq!(s, 200, "{catalog}: after {what}: {v}");
            }
            let run = app.scheduled(Timestamp(NOW + 60)).await;
            assert!(run.is_ok(), "{catalog}: {run:?}");
        }
    })
}

