//! Charges on the in-memory store: a hold's release seen by every isolate, a release into a
//! lot closed meanwhile folded again (`tollgate_release`, 20261206008000), and a retry of a
//! charged request answered as that charge after the catalog stopped taking its request.

mod common;

use serde_json::{json, Value};

use common::{block, config, stripe, user_token, NoNetwork, ADMIN_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::{SettleAnswer, Store};

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const NOW: i64 = 1_800_007_200;
const U1: &str = "00000000-0000-4000-8000-000000000001";

async fn call(app: &App<NoNetwork, MemoryStore>, method: Method, path: &str, headers: Headers, body: Value, now: i64) -> (u16, Value) {
    let req = InRequest { method, path: path.into(), query: String::new(), headers, body: body.to_string().into_bytes() };
    let r = app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// The Video Studio app's worker on an in-memory store that knows user U1.
fn studio() -> App<NoNetwork, MemoryStore> {
    let app = App::with_store(config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).unwrap();
    app.ctx.store.add_user(U1);
    app
}

/// U1's bearer token at `now`, with an Idempotency-Key unless `key` is empty.
fn user(key: &str, now: i64) -> Headers {
    let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, now)));
    if key.is_empty() { h } else { h.with("idempotency-key", key) }
}

/// A hold released by another isolate (the scheduled run, or the user's release routed
/// elsewhere) leaves this isolate's kept state short; its stamp moved, so the next consume
/// is planned again from the store and takes the seconds back, with no overage.
#[test]
fn a_release_elsewhere_makes_a_kept_state_stale_so_no_overage_is_billed_for_credits_held_again() {
    block(async {
        let app = studio();
        let admin = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        let body = json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 10, "id": "ten"}]});
        assert_eq!(call(&app, Method::Post, "/v1/admin/grants", admin, body, NOW).await.0, 201);
        let (s, v) = call(&app, Method::Put, "/v1/preferences", user("", NOW), json!({"allow_overages": true, "overage_limit": 1000}), NOW).await;
        assert_eq!(s, 200, "{v}");
        // Hold all 10 seconds.
        let (s, v) = call(&app, Method::Post, "/v1/track", user("h1", NOW), json!({"feature": "video_seconds", "quantity": 10, "hold": true}), NOW).await;
        assert_eq!(s, 200, "{v}");
        let id = v["usage_id"].as_str().unwrap().to_string();
        // Another isolate releases it (same store, not this isolate's kept state).
        let SettleAnswer::Settled(r) = app.ctx.store.settle(&Subject::user(U1), &id, true, Timestamp(NOW + 1), None).await.unwrap() else {
            panic!("U1's hold is U1's to release")
        };
        assert_eq!(r.status, "released");
        // The user has its 10 seconds again; a 10 s render should take them, no overage.
        let (s, v) = call(&app, Method::Post, "/v1/usage/consume", user("r1", NOW + 5),
                          json!({"model": "standard", "quality": "watermark", "seconds": 10}), NOW + 5).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["record"]["overage_units"], 0, "billed overage while holding the credits: {v}");
    });
}

/// U1 buys Video Studio's 30-minute token pack with Stripe Checkout (payment `pi_1`).
fn token_checkout() -> Value {
    token_checkout_at(1, NOW)
}

/// U1's `n`th token pack (`cs_<n>`, payment `pi_<n>`), bought at `at`.
fn token_checkout_at(n: u32, at: i64) -> Value {
    json!({
        "id": format!("evt_{n}"), "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": "checkout.session.completed",
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("cs_{n}"), "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
            "customer": "cus_1", "subscription": null, "payment_intent": format!("pi_{n}"),
            "client_reference_id": U1, "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN"},
            "amount_total": 1900, "currency": "usd", "created": at,
        }},
    })
}

/// A token pack keeps the seconds the catalog version it was bought under sold: version 2
/// sells the 30-minute pack with 600 seconds, and the pack bought under version 1 still
/// holds 1800 at every later fold (it was folded again with the active version's 600).
#[test]
fn a_new_catalog_version_changes_no_earlier_purchase() {
    block(async {
        let app = studio();
        let v1: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        assert_eq!(app.ctx.store.push_catalog(v1.clone(), true), 1);
        let (s, v) = stripe(&app, &token_checkout_at(1, NOW), NOW).await;
        assert_eq!(s, 200, "{v}");
        let seconds = || app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        assert_eq!(seconds(), 1800);
        let mut v2 = v1;
        for o in v2["offers"].as_array_mut().unwrap() {
            if o["key"] == "VIDEO_TOKENS_30_MIN" {
                o["credits"][0]["amount"] = json!(600);
            }
        }
        assert_eq!(app.ctx.store.push_catalog(v2, true), 2);
        let later = NOW + 3600;
        let (s, v) = stripe(&app, &token_checkout_at(2, later), later).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(), 1800 + 600, "each pack as its version sold it: {:#?}", app.ctx.store.lots(&Subject::user(U1)));
    });
}

/// A pack bought while the worker served its embedded catalog (no version in the store)
/// keeps the 1800 seconds that catalog sold once an operator pushes a first version selling
/// the pack with 600; a pack bought under that version gives 600.
#[test]
fn a_first_catalog_version_keeps_what_the_embedded_catalog_sold() {
    block(async {
        let app = studio();
        let (s, v) = stripe(&app, &token_checkout_at(1, NOW), NOW).await;
        assert_eq!(s, 200, "{v}");
        let seconds = || app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        assert_eq!(seconds(), 1800);
        let mut v1: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        for o in v1["offers"].as_array_mut().unwrap() {
            if o["key"] == "VIDEO_TOKENS_30_MIN" {
                o["credits"][0]["amount"] = json!(600);
            }
        }
        assert_eq!(app.ctx.store.push_catalog(v1, true), 1);
        let later = NOW + 3600;
        let (s, v) = stripe(&app, &token_checkout_at(2, later), later).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(), 1800 + 600, "{:#?}", app.ctx.store.lots(&Subject::user(U1)));
    });
}

/// A hold released after a partial refund closed its lot: the fold of the same facts says
/// 900 (half refunded, nothing used), and the release folds the subject again at once, so
/// the balance is 900 straight away, and an unrelated later fold changes nothing.
#[test]
fn a_hold_released_into_a_lot_a_refund_closed_is_folded_again_at_once() {
    block(async {
        let app = studio();
        let (s, v) = stripe(&app, &token_checkout(), NOW).await;
        assert_eq!(s, 200, "{v}");
        let balance = |now: i64| {
            let h = user("", now);
            let app = &app;
            async move { call(app, Method::Post, "/v1/check", h, json!({"feature": "video_seconds"}), now).await.1["limit"].clone() }
        };
        assert_eq!(balance(NOW + 1).await, json!(1800));
        let (s, v) = call(&app, Method::Post, "/v1/track", user("h1", NOW + 2), json!({"feature": "video_seconds", "quantity": 1200, "hold": true}), NOW + 2).await;
        assert_eq!(s, 200, "{v}");
        let id = v["usage_id"].as_str().unwrap().to_string();
        // Half the payment refunded.
        let refund = json!({
            "id": "evt_re_1", "object": "event", "api_version": "2025-03-31.basil", "created": NOW + 3, "type": "charge.refunded",
            "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
            "data": {"object": {
                "id": "ch_1", "object": "charge", "amount": 1900, "amount_refunded": 950, "refunded": false,
                "payment_intent": "pi_1", "currency": "usd", "created": NOW + 3,
            }},
        });
        let (s, v) = stripe(&app, &refund, NOW + 3).await;
        assert_eq!(s, 200, "{v}");
        // The job is abandoned: the hold is released.
        let (s, v) = call(&app, Method::Post, &format!("/v1/usage/{id}/release"), user("", NOW + 4), json!({}), NOW + 4).await;
        assert_eq!(s, 200, "{v}");
        let after_release = balance(NOW + 5).await;
        // An unrelated fold of the same subject (an operator's 1-second credit).
        let admin = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        let body = json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 1, "id": "one"}]});
        assert_eq!(call(&app, Method::Post, "/v1/admin/grants", admin, body, NOW + 6).await.0, 201);
        let after_refold = balance(NOW + 7).await;
        assert_eq!((after_release, after_refold), (json!(900), json!(901)),
                   "the release and the fold must agree on what the lot holds");
    });
}

/// A charged render retried after a new catalog version dropped its rate: the retry is the
/// charge (replayed), not a 400; a new request for that rate is the 400.
#[test]
fn a_retry_of_a_charge_is_its_replay_after_the_catalog_dropped_its_rate() {
    block(async {
        let app = studio();
        let admin = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        let body = json!({"user_id": U1, "credits": [{"pool": "video_seconds", "amount": 100, "id": "hundred"}]});
        assert_eq!(call(&app, Method::Post, "/v1/admin/grants", admin, body, NOW).await.0, 201);
        let render = json!({"model": "ultra", "quality": "standard", "seconds": 10});
        let (s, first) = call(&app, Method::Post, "/v1/usage/consume", user("r1", NOW), render.clone(), NOW).await;
        assert_eq!(s, 200, "{first}");
        // Version 1 of the catalog in the store: no ultra model at standard quality.
        let mut doc: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        doc["usage"]["rates"].as_array_mut().unwrap().retain(|r| !(r["model"] == "ultra" && r["quality"] == "standard"));
        assert_eq!(app.ctx.store.push_catalog(doc, true), 1);
        let later = NOW + 120;
        let (s, again) = call(&app, Method::Post, "/v1/usage/consume", user("r1", later), render.clone(), later).await;
        assert_eq!(s, 200, "{again}");
        assert_eq!((again["status"].clone(), again["usage_id"].clone()), (json!("replayed"), first["usage_id"].clone()), "{again}");
        let (s, fresh) = call(&app, Method::Post, "/v1/usage/consume", user("r2", later), render, later).await;
        assert_eq!(s, 400, "{fresh}");
    });
}

/// The events of an open dispute (`charge.dispute.created`, then `.updated`) tell one fact
/// at different times. The core's fold keeps the earliest telling; the store keeps it too,
/// whichever event arrives first, so when the dispute took the payment back does not
/// depend on the order of delivery.
#[test]
fn an_open_disputes_fact_keeps_its_earliest_time_whatever_order_its_events_arrive_in() {
    block(async {
        let dispute = |id: &str, kind: &str, at: i64| json!({
            "id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": kind,
            "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
            "data": {"object": {
                "id": "dp_1", "object": "dispute", "amount": 1900, "charge": "ch_1", "payment_intent": "pi_1",
                "status": "needs_response", "reason": "general", "currency": "usd", "created": NOW + 10,
            }},
        });
        let created = dispute("evt_dp_1", "charge.dispute.created", NOW + 10);
        let updated = dispute("evt_dp_2", "charge.dispute.updated", NOW + 20);
        let mut told = Vec::new();
        for order in [[&created, &updated], [&updated, &created]] {
            let app = studio();
            let (s, v) = stripe(&app, &token_checkout(), NOW).await;
            assert_eq!(s, 200, "{v}");
            for ev in order {
                let at = ev["created"].as_i64().unwrap();
                let (s, v) = stripe(&app, ev, at).await;
                assert_eq!(s, 200, "{v}");
            }
            let refs = ["stripe:ch_1", "stripe:pi_1"].map(String::from).into_iter().collect();
            let input = app.ctx.store.fold_input(&refs).await.unwrap();
            told.push(input.facts.iter().filter(|f| f.key.starts_with("stripe:dispute:")).map(|f| (f.key.clone(), f.at)).collect::<Vec<_>>());
        }
        assert_eq!(told[0], vec![("stripe:dispute:dp_1:created".to_string(), Timestamp(NOW + 10))], "{told:?}");
        assert_eq!(told[1], told[0], "delivered .updated first, the store kept its later time");
    });
}

/// A refund of a subscription's first payment, made before the renewal but told after it:
/// the renewal had carried the first period's unused seconds over, and the refunded period
/// carries nothing. The fold of all the facts gives no rollover lot, and the store withdraws
/// the one the renewal's fold wrote (closed, nothing left), so the balance is what the facts
/// give: the renewal's own allowance, with the statement adding up to it.
#[test]
fn a_refund_told_after_the_renewal_withdraws_the_seconds_the_renewal_carried_over() {
    block(async {
        let app = studio();
        const P: i64 = 30 * 86_400;
        let s = NOW - P - 86_400;
        let event = |id: &str, ty: &str, at: i64, object: Value| {
            json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
                   "livemode": false, "data": {"object": object}})
        };
        let item = json!({"id": "si_1", "object": "subscription_item", "quantity": 1,
            "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
            "current_period_start": s, "current_period_end": s + P});
        let sub = json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
            "cancel_at_period_end": false, "start_date": s, "created": s,
            "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": U1}, "items": {"object": "list", "data": [item]}});
        let invoice = |n: i64, start: i64| {
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
        for e in [event("evt_cr", "customer.subscription.created", s, sub), invoice(0, s), invoice(1, s + P)] {
            let (status, v) = stripe(&app, &e, NOW).await;
            assert_eq!(status, 200, "{v}");
        }
        let u = Subject::user(U1);
        assert_eq!(app.ctx.store.balance(&u, "video_seconds"), 3600, "1800 carried over and 1800 of the renewal");

        let refund = json!({"id": "ch_0", "object": "charge", "amount": 2900, "amount_refunded": 2900, "refunded": true,
                            "payment_intent": "pi_0", "currency": "usd", "created": s + P - 3600});
        let (status, v) = stripe(&app, &event("evt_re_0", "charge.refunded", s + P - 3600, refund), NOW).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("applied")), "{v}");
        assert_eq!(app.ctx.store.balance(&u, "video_seconds"), 1800, "the refunded period carries nothing over");
        let lots = app.ctx.store.lots(&u);
        for l in &lots {
            assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "{l:?}");
        }
        let carried: Vec<_> = lots.iter().filter(|l| l.kind == tollgate::credits::LotKind::Rollover).collect();
        assert!(carried.iter().all(|l| l.closed && l.remaining == 0), "{carried:?}");
    });
}
