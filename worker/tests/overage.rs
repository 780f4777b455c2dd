//! The overage cap through `/v1/usage/consume` on the in-memory store: the cap holds for
//! the subscription's billing period (not the calendar month), and a second subscription
//! bought mid-period does not give it again (`tollgate::meter::overage_period`). With 90
//! of a 100-cent cap spent, a further 90 cents of overage is refused for the rest of the
//! period.
mod common;

use serde_json::{json, Value};

use common::{block, user_token, NoNetwork};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const DAY: i64 = 86_400;
const T0: i64 = 1_800_000_000;
const U1: &str = "00000000-0000-4000-8000-0000000000e1";

async fn call(app: &App<NoNetwork, MemoryStore>, method: Method, path: &str, key: &str, body: Value, now: i64) -> (u16, Value) {
    let mut headers = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, now)));
    if !key.is_empty() {
        headers = headers.with("idempotency-key", key);
    }
    let req = InRequest { method, path: path.into(), query: String::new(), headers, body: body.to_string().into_bytes() };
    let r = app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// A Stripe `customer.subscription.created` of U1 to `offer`, active over [start, end).
fn sub_created(n: u32, offer: &str, start: i64, end: i64) -> Value {
    json!({
        "id": format!("evt_sub_{n}"), "object": "event", "api_version": "2025-03-31.basil", "created": start,
        "type": "customer.subscription.created", "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("sub_{n}"), "object": "subscription", "customer": "cus_e1", "status": "active",
            "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
            "start_date": start, "created": start, "trial_start": null, "trial_end": null,
            "metadata": {"offer_key": offer, "user_id": U1},
            "items": {"object": "list", "data": [{
                "id": format!("si_{n}"), "object": "subscription_item", "quantity": 1,
                "price": {"id": format!("price_{}", offer.to_lowercase()), "object": "price", "metadata": {"offer_key": offer}},
                "current_period_start": start, "current_period_end": end,
            }]},
        }},
    })
}

/// The paid first invoice of `sub_<n>` (price `price`, `amount` cents) for [start, end).
fn invoice_paid(n: u32, offer: &str, amount: i64, start: i64, end: i64) -> Value {
    let sub = format!("sub_{n}");
    json!({
        "id": format!("evt_in_{n}"), "object": "event", "api_version": "2025-03-31.basil", "created": start,
        "type": "invoice.paid", "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("in_{n}"), "object": "invoice", "customer": "cus_e1", "status": "paid", "paid": true,
            "amount_paid": amount, "amount_due": amount, "currency": "usd", "created": start,
            "billing_reason": "subscription_create",
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub, "metadata": {}}},
            "period_start": start, "period_end": end,
            "lines": {"object": "list", "data": [{
                "id": format!("il_{n}"), "object": "line_item", "amount": amount, "currency": "usd", "quantity": 1,
                "period": {"start": start, "end": end},
                "pricing": {"type": "price_details", "price_details": {"price": format!("price_{}", offer.to_lowercase()), "product": "prod_x"}},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {"subscription": sub}},
            }]},
            "payments": {"object": "list", "data": [{"payment": {"type": "payment_intent", "payment_intent": format!("pi_in_{n}")}}]},
        }},
    })
}

/// Plan from 2027-01-15 08:00 (T0), billed monthly: [T0, T0 + 30 days).
#[test]
fn the_cap_holds_for_the_subscriptions_billing_period_not_the_calendar_month() {
    block(async {
        let app = App::with_store(common::config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).unwrap();
        app.ctx.store.add_user(U1);
        let (s, v) = common::stripe(&app, &sub_created(1, "VIDEO_CREATOR_MONTHLY", T0, T0 + 30 * DAY), T0).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = common::stripe(&app, &invoice_paid(1, "VIDEO_CREATOR_MONTHLY", 2900, T0, T0 + 30 * DAY), T0 + 5).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = call(&app, Method::Put, "/v1/preferences", "", json!({"allow_overages": true, "overage_limit": 100}), T0 + 60).await;
        assert_eq!(s, 200, "{v}");
        let render = |secs: u32| json!({"model": "standard", "quality": "watermark", "seconds": secs});
        // 2027-01-30: the allowance used up, then 90 cents of overage.
        let jan30 = T0 + 15 * DAY;
        let (s, v) = call(&app, Method::Post, "/v1/usage/consume", "c1", render(1800), jan30).await;
        assert_eq!((s, &v["record"]["overage_units"]), (200, &json!(0)), "{v}");
        let (s, v) = call(&app, Method::Post, "/v1/usage/consume", "c2", render(60), jan30 + 60).await;
        assert_eq!((s, &v["record"]["overage_minor"]), (200, &json!(90)), "{v}");
        // 2027-02-02, same billing period [2027-01-15, 2027-02-14): the window is the
        // subscription's, and another 90 cents would pass the cap.
        let feb2 = T0 + 18 * DAY;
        let (_, pref) = call(&app, Method::Get, "/v1/preferences", "", Value::Null, feb2).await;
        let (s, v) = call(&app, Method::Post, "/v1/usage/consume", "c3", render(60), feb2).await;
        assert_eq!(
            (pref["period"]["start"].as_str(), s),
            (Some("2027-01-15T08:00:00Z"), 402),
            "the overage cap counted over the calendar month, not the billing period: \
             GET /v1/preferences = {pref}; the consume answered {v}"
        );
    });
}

#[test]
fn a_second_subscription_bought_mid_period_does_not_reset_the_overage_cap() {
    block(async {
        let app = App::with_store(common::config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).unwrap();
        app.ctx.store.add_user(U1);
        // Video Studio plus a second product sold on its own (no seconds, no usage).
        let mut doc: Value =
            serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        doc["products"].as_array_mut().unwrap().push(json!({"id": "captions", "name": "Captions", "tiers": ["on"]}));
        doc["offers"].as_array_mut().unwrap().push(json!({
            "key": "CAPTIONS_MONTHLY", "label": "Captions",
            "price": {"amount": 500, "currency": "usd", "interval": "month"},
            "grants": [{"product": "captions", "tier": "on"}],
        }));
        app.ctx.store.push_catalog(doc, true);

        // Day 0: the Creator plan, billed monthly from T0 (1800 seconds a period).
        let (s, v) = common::stripe(&app, &sub_created(1, "VIDEO_CREATOR_MONTHLY", T0, T0 + 30 * DAY), T0).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = common::stripe(&app, &invoice_paid(1, "VIDEO_CREATOR_MONTHLY", 2900, T0, T0 + 30 * DAY), T0 + 5).await;
        assert_eq!(s, 200, "{v}");
        let now = T0 + 3600;
        let (s, v) = call(&app, Method::Put, "/v1/preferences", "", json!({"allow_overages": true, "overage_limit": 100}), now).await;
        assert_eq!(s, 200, "{v}");

        // Day 1: the allowance used up, then 60 s of overage at $0.015/s = 90 cents of the 100-cent cap.
        let render = |secs: u32| json!({"model": "standard", "quality": "watermark", "seconds": secs});
        let d1 = T0 + DAY;
        let (s, v) = call(&app, Method::Post, "/v1/usage/consume", "c1", render(1800), d1).await;
        assert_eq!((s, &v["record"]["overage_units"]), (200, &json!(0)), "{v}");
        let (s, v) = call(&app, Method::Post, "/v1/usage/consume", "c2", render(60), d1 + 60).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["record"]["overage_minor"], 90, "{v}");
        // Another 90 cents would pass the cap: refused.
        let (s, v) = call(&app, Method::Post, "/v1/usage/consume", "c3", render(60), d1 + 120).await;
        assert_eq!(s, 402, "the cap holds on day 1: {v}");

        // Day 10: the user also subscribes to Captions (an unrelated product, $5/month).
        let d10 = T0 + 10 * DAY;
        let (s, v) = common::stripe(&app, &sub_created(2, "CAPTIONS_MONTHLY", d10, d10 + 30 * DAY), d10).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = common::stripe(&app, &invoice_paid(2, "CAPTIONS_MONTHLY", 500, d10, d10 + 30 * DAY), d10 + 5).await;
        assert_eq!(s, 200, "{v}");

        // Day 11, still inside the Creator plan's first billing period: 90 of 100 cents are
        // spent, so another 90 cents of overage must still be refused.
        let d11 = T0 + 11 * DAY;
        let (s, pref) = call(&app, Method::Get, "/v1/preferences", "", Value::Null, d11).await;
        let (s2, v) = call(&app, Method::Post, "/v1/usage/consume", "c4", render(60), d11).await;
        assert_eq!(
            s2, 402,
            "a second subscription reset the overage cap: charged {} cents more (total 180 > cap 100) in the same billing period; \
             GET /v1/preferences ({s}) says {pref}; consume answered {v}",
            v["record"]["overage_minor"]
        );
    });
}
