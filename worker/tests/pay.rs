//! The money-in routes (`/v1/checkout`, `/v1/portal`, `/v1/subscriptions/*`,
//! `/v1/subscriptions/unpause`) on the
//! in-memory store. Provider calls go to a RECORDER (a transport that records each request
//! and answers the few fields of the object the provider would return, or a failure it
//! is told to give): what is checked here is the route's own work (refusals before any
//! call, attribution on the session, the webhook that completes it, failures mapped to
//! 502/504 with nothing written). That the requests are exactly what Stripe's and
//! Razorpay's own libraries send is checked against those libraries in
//! tests/e2e/checkout.test.mjs.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use common::{block, field, form, hmac, user_token, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const NOW: i64 = 1_800_007_200;
const U1: &str = "00000000-0000-4000-8000-000000000001";
const ORG: &str = "00000000-0000-4000-8000-0000000000aa";

/// How the recorder answers the next provider request.
#[derive(Clone, Debug)]
enum Answer {
    Ok,
    Status(u16, Value),
    Timeout,
}

/// Records provider requests (labelled stand-in: it only answers ids and urls).
#[derive(Clone)]
struct Recorder {
    seen: Rc<RefCell<Vec<OutRequest>>>,
    answer: Rc<RefCell<Answer>>,
    /// What a read of a Stripe subscription (`GET /v1/subscriptions/{id}`) answers.
    subscription: Rc<RefCell<Value>>,
}

impl Transport for Recorder {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        self.seen.borrow_mut().push(req.clone());
        let body = match self.answer.borrow().clone() {
            Answer::Timeout => return Err(TransportError::timed_out("no answer")),
            Answer::Status(s, v) => return Ok(OutResponse { status: s, headers: Headers::new(), body: v.to_string().into_bytes() }),
            Answer::Ok if req.url.ends_with("/v1/checkout/sessions") => json!({"id": "cs_test_1", "object": "checkout.session",
                "url": "https://checkout.stripe.com/c/pay/cs_test_1"}),
            Answer::Ok if req.url.ends_with("/v1/billing_portal/sessions") => json!({"id": "bps_1", "url": "https://billing.stripe.com/p/session/1"}),
            Answer::Ok if req.method == Method::Get && req.url.contains("/v1/subscriptions/") => self.subscription.borrow().clone(),
            Answer::Ok if req.url.ends_with("/resume") => json!({"id": "x", "status": "active"}),
            Answer::Ok => json!({"id": "x"}),
        };
        Ok(OutResponse { status: 200, headers: Headers::new(), body: body.to_string().into_bytes() })
    }
}


struct T {
    app: App<Recorder, MemoryStore>,
    rec: Recorder,
}

impl T {
    fn new(catalog: &str, extra: &[(&str, &str)]) -> T {
        let mut vars: Vec<(String, String)> = [
            ("SUPABASE_URL", "http://127.0.0.1:1"),
            ("SUPABASE_SERVICE_ROLE_KEY", "svc"),
            ("SUPABASE_JWT_SECRET", common::JWT_SECRET),
            ("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET),
            ("CATALOG", catalog),
            ("STRIPE_SECRET_KEY", "sk_test_recorded"),
            ("STRIPE_API_BASE", "https://stripe.recorder.test/"),
            ("RAZORPAY_KEY_ID", "rzp_test_id"),
            ("RAZORPAY_KEY_SECRET", "rzp_test_secret"),
            ("RAZORPAY_API_BASE", "https://razorpay.recorder.test"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.retain(|(x, _)| x != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let config = Config::from_lookup(|k| vars.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone())).expect("config");
        let rec = Recorder { seen: Rc::default(), answer: Rc::new(RefCell::new(Answer::Ok)), subscription: Rc::default() };
        let app = App::with_store(config, rec.clone(), MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        T { app, rec }
    }

    async fn post(&self, path: &str, uid: &str, body: Value) -> (u16, Value) {
        self.post_as(path, Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, NOW))), body).await
    }

    /// A POST with an `Idempotency-Key` (what `/v1/usage/consume` needs).
    async fn post_keyed(&self, path: &str, uid: &str, key: &str, body: Value) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, NOW))).with("idempotency-key", key);
        self.post_as(path, h, body).await
    }

    async fn post_as(&self, path: &str, headers: Headers, body: Value) -> (u16, Value) {
        let req = InRequest { method: Method::Post, path: path.into(), query: String::new(), headers, body: body.to_string().into_bytes() };
        let r = self.app.handle(req, Timestamp(NOW)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn stripe(&self, event: &Value) -> (u16, Value) {
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{NOW}.{payload}")));
        let h = Headers::new().with("stripe-signature", format!("t={NOW},v1={sig}"));
        let req = InRequest { method: Method::Post, path: "/webhooks/stripe".into(), query: String::new(), headers: h, body: payload.into_bytes() };
        let r = self.app.handle(req, Timestamp(NOW)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    /// U1 subscribed to Video Studio Creator (`sub_1`), its period from five days ago to 25
    /// days ahead paid: the period's `(start, end)`.
    async fn creator_subscriber(&self) -> (i64, i64) {
        let (start, end) = (NOW - 5 * 86_400, NOW + 25 * 86_400);
        let created = sub_event("evt_sub_1", "created", "VIDEO_CREATOR_MONTHLY", "active", start, start, end, json!({}));
        assert_eq!(self.stripe(&created).await.0, 200);
        assert_eq!(self.stripe(&invoice_paid("VIDEO_CREATOR_MONTHLY", 2900, start, end)).await.0, 200);
        (start, end)
    }

    fn calls(&self) -> usize {
        self.rec.seen.borrow().len()
    }
}

fn buy(offer: &str) -> Value {
    json!({"offer": offer, "success_url": "https://app.example.com/done", "cancel_url": "https://app.example.com/pricing"})
}

#[test]
fn a_checkout_carries_its_attribution_and_the_webhook_it_leads_to_grants_the_purchase() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (s, v) = t.post("/v1/checkout", U1, buy("VIDEO_TOKENS_30_MIN")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((v["provider"].as_str(), v["id"].as_str()), (Some("stripe"), Some("cs_test_1")));
        assert_eq!(v["url"], "https://checkout.stripe.com/c/pay/cs_test_1");
        let req = t.rec.seen.borrow()[0].clone();
        assert_eq!((req.method, req.url.as_str()), (Method::Post, "https://stripe.recorder.test/v1/checkout/sessions"));
        assert_eq!(req.headers.get("authorization"), Some("Bearer sk_test_recorded"));
        assert_eq!(req.headers.get("content-type"), Some("application/x-www-form-urlencoded"));
        let f = form(&req);
        assert_eq!(field(&f, "mode"), Some("payment"));
        assert_eq!(field(&f, "client_reference_id"), Some(U1));
        assert_eq!(field(&f, "payment_intent_data[metadata][subject]"), Some(format!("user:{U1}").as_str()));
        // Nothing changed yet: access comes with the webhook of the completed session,
        // which carries exactly what the session was created with.
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 0);
        let meta: serde_json::Map<String, Value> = f
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("metadata[").map(|k| (k.trim_end_matches(']').to_string(), json!(v))))
            .collect();
        let ev = json!({"id": "evt_1", "object": "event", "api_version": "2025-03-31.basil", "created": NOW,
            "type": "checkout.session.completed", "livemode": false,
            "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "mode": "payment", "status": "complete",
                "payment_status": "paid", "customer": "cus_1", "subscription": null, "payment_intent": "pi_1",
                "client_reference_id": field(&f, "client_reference_id"), "metadata": meta,
                "amount_total": 1900, "currency": "usd", "created": NOW}}});
        let (s, v) = t.stripe(&ev).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{v}");
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 1800);
        // Now the buyer has a customer: the next checkout reuses it and the portal opens.
        let (s, _) = t.post("/v1/checkout", U1, buy("VIDEO_TOKENS_30_MIN")).await;
        assert_eq!(s, 200);
        assert_eq!(field(&form(&t.rec.seen.borrow()[1]), "customer"), Some("cus_1"));
        let (s, v) = t.post("/v1/portal", U1, json!({"return_url": "https://app.example.com/account"})).await;
        assert_eq!((s, v["url"].as_str()), (200, Some("https://billing.stripe.com/p/session/1")), "{v}");
        let p = form(&t.rec.seen.borrow()[2]);
        assert_eq!((field(&p, "customer"), field(&p, "return_url")), (Some("cus_1"), Some("https://app.example.com/account")));
    });
}

/// A worker set up for one Stripe mode (its `STRIPE_SECRET_KEY`) applies no event of the
/// other: a test-mode checkout (a test card) gave a live worker's buyer real credits when
/// the test endpoint's signing secret was among its webhook secrets. It is kept, not
/// applied (so a live event at a worker given a test key by mistake is not lost), and the
/// same event at a worker of its own mode applies.
#[test]
fn an_event_of_the_other_stripe_mode_is_kept_and_not_applied() {
    block(async {
        let ev = |live: bool| {
            json!({"id": "evt_mode", "object": "event", "api_version": "2025-03-31.basil", "created": NOW,
                "type": "checkout.session.completed", "livemode": live,
                "data": {"object": {"id": "cs_mode", "object": "checkout.session", "mode": "payment", "status": "complete",
                    "payment_status": "paid", "customer": "cus_1", "subscription": null, "payment_intent": "pi_mode",
                    "client_reference_id": U1, "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN", "subject": format!("user:{U1}")},
                    "amount_total": 1900, "currency": "usd", "created": NOW}}})
        };
        let live = T::new("video-studio", &[("STRIPE_SECRET_KEY", "sk_live_recorded")]);
        let (s, v) = live.stripe(&ev(false)).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("kept")), "{v}");
        assert!(v["reason"].as_str().is_some_and(|r| r.contains("test-mode event")), "{v}");
        assert_eq!(live.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 0, "a test payment bought nothing live");
        assert_eq!(live.app.ctx.store.kept().len(), 1, "kept for an operator");
        let (s, v) = live.stripe(&ev(true)).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{v}");
        assert_eq!(live.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 1800);

        for key in ["sk_test_recorded", "rk_test_restricted", "not-a-stripe-key"] {
            let t = T::new("video-studio", &[("STRIPE_SECRET_KEY", key)]);
            let (s, v) = t.stripe(&ev(false)).await;
            assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{key}: {v}");
            assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 1800, "{key}");
        }
        let t = T::new("video-studio", &[("STRIPE_SECRET_KEY", "rk_test_restricted")]);
        let (s, v) = t.stripe(&ev(true)).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("kept")), "{v}");
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 0);
    });
}

#[test]
fn refusals_and_bad_bodies_are_answered_before_any_provider_call() {
    block(async {
        let t = T::new("vcm-suite", &[]);
        let cases = [
            (buy("NOPE"), 404, "unknown_offer"),
            (buy("SUITE_PRO_TWO_CLOUDS_MONTHLY"), 400, "invalid_clouds"),
            (json!({"offer": "SUITE_PRO_MONTHLY"}), 400, "invalid_body"),
            (json!({"offer": 5, "success_url": "https://a.example", "cancel_url": "https://a.example"}), 400, "invalid_body"),
            (json!({"offer": "SUITE_PRO_MONTHLY", "success_url": "/relative", "cancel_url": "https://a.example"}), 400, "invalid_url"),
            (json!({"offer": "SUITE_PRO_MONTHLY", "success_url": "https://a.example", "cancel_url": "https://a.example", "quantity": -1}), 400, "invalid_body"),
            (json!({"offer": "SUITE_PRO_MONTHLY", "success_url": "https://a.example", "cancel_url": "https://a.example", "organization_id": "x"}), 400, "invalid_body"),
            (json!({"offer": "SUITE_PRO_MONTHLY", "success_url": "https://a.example", "cancel_url": "https://a.example", "organization_id": ORG}), 404, "unknown_organization"),
        ];
        for (body, status, code) in cases {
            let (s, v) = t.post("/v1/checkout", U1, body.clone()).await;
            assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{body}: {v}");
        }
        let (s, v) = t.post("/v1/portal", U1, json!({"return_url": "https://a.example"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_customer")));
        let (s, v) = t.post("/v1/subscriptions/cancel", U1, json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_subscription")));
        let (s, v) = t.post("/v1/subscriptions/change", U1, json!({"offer": "SUITE_PRO_MONTHLY"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_subscription")));
        // An organization's billing is its owners' and admins'.
        let o = T::new("org-seats", &[]);
        o.app.ctx.store.add_org(ORG);
        o.app.ctx.store.add_member(ORG, U1, "member");
        let body = json!({"offer": "ORG_PROFESSIONAL_MONTHLY", "success_url": "https://a.example", "cancel_url": "https://a.example",
                          "organization_id": ORG, "quantity": 3});
        let (s, v) = o.post("/v1/checkout", U1, body.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("not_org_admin")), "{v}");
        let (s, v) = o.post("/v1/checkout", U1, json!({"offer": "ORG_PROFESSIONAL_MONTHLY", "success_url": "https://a.example", "cancel_url": "https://a.example"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("wrong_subject")));
        assert_eq!(t.calls() + o.calls(), 0, "no refused request reached a provider");
        o.app.ctx.store.add_member(ORG, U1, "admin");
        let (s, v) = o.post("/v1/checkout", U1, body).await;
        assert_eq!(s, 200, "{v}");
        // The Org Seats catalog sells by lookup key: the price is searched first (none is
        // published on the recorder, so the session sells from the catalog's amount).
        let seen = o.rec.seen.borrow().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].method, seen[0].url.as_str()), (Method::Get, "https://stripe.recorder.test/v1/prices?lookup_keys[0]=ORG_PROFESSIONAL_MONTHLY&active=true&limit=1"));
        let f = form(&seen[1]);
        assert_eq!(field(&f, "line_items[0][price_data][unit_amount]"), Some("2500"));
        assert_eq!((field(&f, "line_items[0][quantity]"), field(&f, "client_reference_id")), (Some("3"), Some(format!("org:{ORG}").as_str())));
    });
}

#[test]
fn provider_failures_are_502_and_504_and_nothing_is_written() {
    block(async {
        let t = T::new("video-studio", &[]);
        *t.rec.answer.borrow_mut() = Answer::Status(400, json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
            "message": "No such price: 'price_x'"}}));
        let (s, v) = t.post("/v1/checkout", U1, buy("VIDEO_PRO_MONTHLY")).await;
        assert_eq!((s, v["error"]["code"].as_str(), v["error"]["provider_code"].as_str()), (502, Some("provider_error"), Some("resource_missing")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("No such price"));
        *t.rec.answer.borrow_mut() = Answer::Timeout;
        let (s, v) = t.post("/v1/checkout", U1, buy("VIDEO_PRO_MONTHLY")).await;
        assert_eq!((s, v["error"]["code"].as_str()), (504, Some("provider_timeout")), "{v}");
        let req = t.rec.seen.borrow()[1].clone();
        assert_eq!(req.timeout_ms, Some(20_000));
        assert!(t.app.ctx.store.grants(&Subject::user(U1)).is_empty());
        // Not configured: a clear 500, no call.
        let n = T::new("video-studio", &[("STRIPE_SECRET_KEY", "")]);
        let (s, v) = n.post("/v1/checkout", U1, buy("VIDEO_PRO_MONTHLY")).await;
        assert_eq!((s, v["error"]["code"].as_str()), (500, Some("not_configured")));
        assert_eq!(n.calls(), 0);
    });
}

#[test]
fn razorpay_offers_go_to_razorpay_with_basic_auth_and_json() {
    block(async {
        let t = T::new("razorpay-ai", &[]);
        let (s, v) = t.post("/v1/checkout", U1, buy("AI_CREDITS_TOPUP_500")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((v["provider"].as_str(), v["order"]["key_id"].as_str()), (Some("razorpay"), Some("rzp_test_id")));
        let req = t.rec.seen.borrow()[0].clone();
        assert_eq!(req.url, "https://razorpay.recorder.test/v1/orders");
        assert_eq!(req.headers.get("authorization"), Some("Basic cnpwX3Rlc3RfaWQ6cnpwX3Rlc3Rfc2VjcmV0"));
        let body: Value = serde_json::from_slice(req.body.as_deref().unwrap()).unwrap();
        assert_eq!((body["amount"].as_i64(), body["notes"]["offer_key"].as_str()), (Some(9900), Some("AI_CREDITS_TOPUP_500")));
    });
}

/// A Stripe `customer.subscription.<kind>` of U1 to `offer` over [start, end), `created` at `at`.
fn sub_event(id: &str, kind: &str, offer: &str, status: &str, at: i64, start: i64, end: i64, extra: Value) -> Value {
    let mut obj = json!({
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status,
        "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
        "start_date": start, "created": start, "trial_start": null, "trial_end": null,
        "metadata": {"offer_key": offer, "user_id": U1},
        "items": {"object": "list", "data": [{
            "id": "si_1", "object": "subscription_item", "quantity": 1,
            "price": {"id": format!("price_{}", offer.to_lowercase()), "object": "price", "metadata": {"offer_key": offer}},
            "current_period_start": start, "current_period_end": end,
        }]},
    });
    for (k, v) in extra.as_object().unwrap() {
        obj[k] = v.clone();
    }
    json!({
        "id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at,
        "type": format!("customer.subscription.{kind}"), "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": obj},
    })
}

/// The paid first invoice of `sub_1` for [start, end).
fn invoice_paid(offer: &str, amount: i64, start: i64, end: i64) -> Value {
    json!({
        "id": "evt_in_1", "object": "event", "api_version": "2025-03-31.basil", "created": start,
        "type": "invoice.paid", "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": "in_1", "object": "invoice", "customer": "cus_1", "status": "paid", "paid": true,
            "amount_paid": amount, "amount_due": amount, "currency": "usd", "created": start,
            "billing_reason": "subscription_create",
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1", "metadata": {}}},
            "period_start": start, "period_end": end,
            "lines": {"object": "list", "data": [{
                "id": "il_1", "object": "line_item", "amount": amount, "currency": "usd", "quantity": 1,
                "period": {"start": start, "end": end},
                "pricing": {"type": "price_details", "price_details": {"price": format!("price_{}", offer.to_lowercase()), "product": "prod_x"}},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {"subscription": "sub_1"}},
            }]},
            "payments": {"object": "list", "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_in_1"}}]},
        }},
    })
}

/// A Video Studio Creator subscriber (1,800 seconds a month) asks to generate 20,000
/// seconds: `POST /v1/check` refused and named Studio (monthly), a second plan of the
/// product it subscribes to, which `POST /v1/checkout` refuses (409 `already_subscribed`).
/// The offer a pool refusal names is one checkout sells (a token pack).
#[test]
fn the_offer_a_pool_refusal_names_is_one_checkout_sells() {
    block(async {
        let t = T::new("video-studio", &[]);
        let end = NOW + 30 * 86_400;
        assert_eq!(t.stripe(&sub_event("evt_sub_1", "created", "VIDEO_CREATOR_MONTHLY", "active", NOW, NOW, end, json!({}))).await.0, 200);
        assert_eq!(t.stripe(&invoice_paid("VIDEO_CREATOR_MONTHLY", 2900, NOW, end)).await.0, 200);
        let (s, v) = t.post("/v1/check", U1, json!({"feature": "video_seconds", "quantity": 20000})).await;
        assert_eq!((s, v["allowed"].clone()), (200, json!(false)), "{v}");
        let named = v["upgrade"]["offer"].as_str().unwrap_or_else(|| panic!("a refusal names an offer: {v}")).to_string();
        let (s, r) = t.post("/v1/checkout", U1, buy(&named)).await;
        assert_eq!(s, 200, "the refusal named `{named}` and checkout answers {r}");
    });
}

/// A Video Studio Creator subscriber whose subscription Stripe cancels on a date (`cancel_at`
/// ten days ahead, not at the period's end) asks to generate 20,000 seconds: `POST /v1/check`
/// refuses and names Studio (monthly), a second plan of the product its running subscription
/// gives, which `POST /v1/checkout` refuses (409 `already_subscribed`). The offer a pool
/// refusal names should be one checkout sells.
#[test]
fn a_pool_refusal_beside_a_subscription_canceled_on_a_date_names_an_offer_checkout_sells() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (start, end) = t.creator_subscriber().await;
        let on_a_date = json!({"cancel_at": NOW + 10 * 86_400, "canceled_at": NOW - 86_400});
        let updated = sub_event("evt_sub_2", "updated", "VIDEO_CREATOR_MONTHLY", "active", NOW - 86_400, start, end, on_a_date);
        assert_eq!(t.stripe(&updated).await.0, 200);
        let (s, v) = t.post("/v1/check", U1, json!({"feature": "video_seconds", "quantity": 20000})).await;
        assert_eq!((s, v["allowed"].clone()), (200, json!(false)), "{v}");
        let named = v["upgrade"]["offer"].as_str().unwrap_or_else(|| panic!("a refusal names an offer: {v}")).to_string();
        let (s, r) = t.post("/v1/checkout", U1, buy(&named)).await;
        assert_eq!(s, 200, "the refusal named `{named}` and checkout answers {r}");
    });
}

/// A Video Studio Creator subscriber whose subscription Stripe pauses (`customer.subscription.updated`
/// with status `paused`) asks to generate 20,000 seconds: `POST /v1/usage/consume` refused
/// and named Studio (monthly), another plan of the product the paused subscription holds,
/// which `POST /v1/checkout` refuses (409 `already_subscribed`: the subscriber resumes it,
/// not buys a second plan). The refusal names a token pack, which checkout sells, and
/// `POST /v1/check` says the plan is paused.
#[test]
fn a_usage_refusal_beside_a_paused_subscription_names_a_token_pack_not_another_plan() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (start, end) = t.creator_subscriber().await;
        let paused = sub_event("evt_sub_2", "updated", "VIDEO_CREATOR_MONTHLY", "paused", NOW - 86_400, start, end, json!({}));
        let (s, v) = t.stripe(&paused).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{v}");
        let render = json!({"model": "standard", "quality": "watermark", "seconds": 20000});
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-1", render).await;
        assert!(s == 402 || s == 403, "refused: {s} {v}");
        let named = v["error"]["upgrade"].as_str().unwrap_or_else(|| panic!("a refusal names an offer: {v}")).to_string();
        let catalog = t.app.ctx.catalog();
        let offer = catalog.offer(&named).unwrap_or_else(|| panic!("`{named}` is an offer"));
        assert!(catalog.offer_tier_for(offer, "video").is_none(), "the refusal named `{named}`, a plan of the paused product: {v}");
        assert_eq!(named, "VIDEO_TOKENS_5_HOURS", "the pack that puts in the most seconds: {v}");
        let (s, r) = t.post("/v1/checkout", U1, buy(&named)).await;
        assert_eq!(s, 200, "the refusal named `{named}` and checkout answers {r}");
        let (s, r) = t.post("/v1/checkout", U1, buy("VIDEO_STUDIO_MONTHLY")).await;
        assert_eq!((s, r["error"]["code"].as_str()), (409, Some("already_subscribed")), "{r}");
        let (s, v) = t.post("/v1/check", U1, json!({"feature": "video_seconds", "quantity": 20000})).await;
        assert_eq!((s, v["allowed"].clone(), v["upgrade"]["offer"].as_str()), (200, json!(false), Some(named.as_str())), "{v}");
    });
}

/// A Video Studio Creator subscriber (1,800 seconds a month) pauses the subscription
/// through Stripe's "pause payment collection" (status still `active`, `pause_collection`
/// set) with the month's seconds unspent. While it is paused those seconds are not
/// spendable: `POST /v1/usage/consume` is refused, `paused` (402, with what is available
/// without them), `POST /v1/check` says `paused`, and the snapshot's balance holds none of
/// them. Once an update clears `pause_collection` the same seconds are spent again.
#[test]
fn a_paused_subscriptions_seconds_are_kept_and_spendable_again_once_it_resumes() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (start, end) = (NOW - 5 * 86_400, NOW + 25 * 86_400);
        let created = sub_event("evt_sub_1", "created", "VIDEO_CREATOR_MONTHLY", "active", start, start, end, json!({}));
        assert_eq!(t.stripe(&created).await.0, 200);
        assert_eq!(t.stripe(&invoice_paid("VIDEO_CREATOR_MONTHLY", 2900, start, end)).await.0, 200);
        let pause = json!({"pause_collection": {"behavior": "void", "resumes_at": null}});
        let paused = sub_event("evt_sub_2", "updated", "VIDEO_CREATOR_MONTHLY", "active", NOW - 86_400, start, end, pause);
        let (s, v) = t.stripe(&paused).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{v}");
        let render = json!({"model": "standard", "quality": "watermark", "seconds": 30});
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-paused", render.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (402, Some("paused")), "{v}");
        assert_eq!((v["error"]["available"].as_i64(), v["error"]["required"].as_i64()), (Some(0), Some(30)), "{v}");
        let (s, v) = t.post("/v1/check", U1, json!({"feature": "video_seconds", "quantity": 30})).await;
        assert_eq!((s, v["allowed"].clone(), v["reason"].as_str(), v["remaining"].as_i64()), (200, json!(false), Some("paused"), Some(0)), "{v}");
        use tollgate_worker::store::Store as _;
        let held = t.app.ctx.store.subject_state(&Subject::user(U1), None).await.expect("state");
        assert_eq!(held.balances(Timestamp(NOW)).get("video_seconds"), Some(&0), "nothing spendable while paused");
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 0, "the store's balance agrees");
        let held: i64 = t.app.ctx.store.lots(&Subject::user(U1)).iter().filter(|l| !l.closed).map(|l| l.remaining).sum();
        assert_eq!(held, 1800, "and nothing taken away");
        // Resumed: the same seconds, spent.
        let resumed = sub_event("evt_sub_3", "updated", "VIDEO_CREATOR_MONTHLY", "active", NOW - 3_600, start, end, json!({"pause_collection": null}));
        assert_eq!(t.stripe(&resumed).await.0, 200);
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-resumed", render).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["balances"]["video_seconds"].as_i64(), Some(1770), "{v}");
    });
}

/// A Video Studio Creator subscriber (1,800 seconds a month) who bought a pack of 30
/// minutes apart renders 30 seconds (taken from the month's seconds), then pauses the
/// subscription through Stripe's "pause payment collection". The store's balance
/// (`credit_balances`, which a replayed charge answers with) leaves the paused month's
/// seconds out, as the core does: a retry of the render answers `replayed` with the pack's
/// 1,800 seconds, what a new render's answer and the snapshot say may be spent, not the
/// month's 1,770 beside them. Nothing is taken away, and resumed they count again.
#[test]
fn a_replayed_charge_of_a_paused_subscriber_answers_only_what_may_be_spent() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (start, end) = t.creator_subscriber().await;
        let pack = json!({"id": "evt_pack", "object": "event", "api_version": "2025-03-31.basil", "created": NOW - 3 * 86_400,
            "type": "checkout.session.completed", "livemode": false,
            "data": {"object": {"id": "cs_pack", "object": "checkout.session", "mode": "payment", "status": "complete",
                "payment_status": "paid", "customer": "cus_1", "subscription": null, "payment_intent": "pi_pack",
                "client_reference_id": U1, "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN"},
                "amount_total": 1900, "currency": "usd", "created": NOW - 3 * 86_400}}});
        let (s, v) = t.stripe(&pack).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("applied")), "{v}");
        let render = json!({"model": "standard", "quality": "watermark", "seconds": 30});
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-1", render.clone()).await;
        assert_eq!((s, v["balances"]["video_seconds"].as_i64()), (200, Some(3570)), "{v}");
        let who = Subject::user(U1);
        let store = &t.app.ctx.store;

        let pause = json!({"pause_collection": {"behavior": "void", "resumes_at": null}});
        let paused = sub_event("evt_sub_2", "updated", "VIDEO_CREATOR_MONTHLY", "active", NOW - 86_400, start, end, pause);
        assert_eq!(t.stripe(&paused).await.0, 200);
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-1", render.clone()).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("replayed")), "{v}");
        assert_eq!(v["balances"]["video_seconds"].as_i64(), Some(1800), "the pack alone may be spent: {v}");
        assert_eq!(store.balance(&who, "video_seconds"), 1800);
        let held: i64 = store.lots(&who).iter().filter(|l| !l.closed).map(|l| l.remaining).sum();
        assert_eq!(held, 3570, "nothing taken away");
        // A new render takes from the pack; its answer and its retry's say the same.
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-2", render.clone()).await;
        assert_eq!((s, v["balances"]["video_seconds"].as_i64()), (200, Some(1770)), "{v}");
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-2", render.clone()).await;
        assert_eq!((s, v["status"].as_str(), v["balances"]["video_seconds"].as_i64()), (200, Some("replayed"), Some(1770)), "{v}");
        use tollgate_worker::store::Store as _;
        let state = store.subject_state(&who, None).await.expect("state");
        assert_eq!(state.balances(Timestamp(NOW)).get("video_seconds"), Some(&1770), "the snapshot's balance");

        // Resumed: the month's seconds count again.
        let resumed = sub_event("evt_sub_3", "updated", "VIDEO_CREATOR_MONTHLY", "active", NOW - 3_600, start, end, json!({"pause_collection": null}));
        assert_eq!(t.stripe(&resumed).await.0, 200);
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-1", render).await;
        assert_eq!((s, v["status"].as_str(), v["balances"]["video_seconds"].as_i64()), (200, Some("replayed"), Some(3540)), "{v}");
        assert_eq!(store.balance(&who, "video_seconds"), 3540);
    });
}

/// The form of request `n` the recorder saw, with its method and url.
fn sent(t: &T, n: usize) -> (Method, String, Vec<(String, String)>) {
    let req = t.rec.seen.borrow()[n].clone();
    (req.method, req.url.clone(), form(&req))
}

/// A Video Studio Creator subscriber whose trial ended without a payment method (Stripe's
/// status `paused`) asks `POST /v1/subscriptions/unpause`: the worker reads the subscription,
/// sees the status, and sends Stripe's resume (a new billing period from now). Nothing
/// changes on the answer; Stripe's `customer.subscription.resumed` gives the plan back.
#[test]
fn a_subscription_stripe_paused_is_resumed_through_its_resume_endpoint_and_the_webhook_gives_it_back() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (start, end) = t.creator_subscriber().await;
        let paused = sub_event("evt_sub_2", "paused", "VIDEO_CREATOR_MONTHLY", "paused", NOW - 86_400, start, end, json!({}));
        assert_eq!(t.stripe(&paused).await.0, 200);
        let feature = json!({"feature": "video_seconds", "quantity": 30});
        let (_, v) = t.post("/v1/check", U1, feature.clone()).await;
        assert_eq!(v["reason"].as_str(), Some("paused"), "{v}");
        *t.rec.subscription.borrow_mut() = json!({"id": "sub_1", "object": "subscription", "status": "paused", "pause_collection": null});

        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((v["subscription"].as_str(), v["provider"].as_str(), v["provider_status"].as_str()), (Some("sub_1"), Some("stripe"), Some("active")));
        assert_eq!(t.calls(), 2, "the read, then the resumption");
        let (m, url, f) = sent(&t, 0);
        assert_eq!((m, url.as_str(), f.len()), (Method::Get, "https://stripe.recorder.test/v1/subscriptions/sub_1", 0));
        let (m, url, f) = sent(&t, 1);
        assert_eq!((m, url.as_str()), (Method::Post, "https://stripe.recorder.test/v1/subscriptions/sub_1/resume"));
        assert_eq!(f, vec![("billing_cycle_anchor".to_string(), "now".to_string())]);
        assert_eq!(t.rec.seen.borrow()[1].headers.get("authorization"), Some("Bearer sk_test_recorded"));
        // The answer changes nothing: the webhook does.
        let (_, v) = t.post("/v1/check", U1, feature.clone()).await;
        assert_eq!(v["reason"].as_str(), Some("paused"), "{v}");
        let resumed = sub_event("evt_sub_3", "resumed", "VIDEO_CREATOR_MONTHLY", "active", NOW - 60, NOW - 60, NOW - 60 + 30 * 86_400, json!({}));
        assert_eq!(t.stripe(&resumed).await.0, 200);
        let (_, v) = t.post("/v1/check", U1, feature).await;
        assert_eq!(v["allowed"], json!(true), "{v}");
        // Resumed: nothing left to resume, and nothing sent.
        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("not_paused")), "{v}");
        assert_eq!(t.calls(), 2);
    });
}

/// A Video Studio Creator subscriber paused through Stripe's "pause payment collection"
/// (status `active`, `pause_collection` set) asks `POST /v1/subscriptions/unpause` for it by id:
/// the worker reads the subscription and unsets `pause_collection` (an empty value); the
/// update Stripe then sends makes the month's seconds spendable again.
#[test]
fn a_paused_payment_collection_is_unset_and_the_update_that_follows_gives_the_seconds_back() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (start, end) = t.creator_subscriber().await;
        let pause = json!({"pause_collection": {"behavior": "void", "resumes_at": null}});
        let paused = sub_event("evt_sub_2", "updated", "VIDEO_CREATOR_MONTHLY", "active", NOW - 86_400, start, end, pause.clone());
        assert_eq!(t.stripe(&paused).await.0, 200);
        let mut sub = json!({"id": "sub_1", "object": "subscription", "status": "active"});
        sub["pause_collection"] = pause["pause_collection"].clone();
        *t.rec.subscription.borrow_mut() = sub;

        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({"subscription": "sub_1"})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(t.calls(), 2);
        assert_eq!(sent(&t, 0).0, Method::Get);
        let (m, url, f) = sent(&t, 1);
        assert_eq!((m, url.as_str()), (Method::Post, "https://stripe.recorder.test/v1/subscriptions/sub_1"));
        assert_eq!(f, vec![("pause_collection".to_string(), String::new())]);
        assert_eq!(t.rec.seen.borrow()[1].body.as_deref(), Some(&b"pause_collection="[..]));
        let render = json!({"model": "standard", "quality": "watermark", "seconds": 30});
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-before", render.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (402, Some("paused")), "still paused until the webhook: {v}");
        let resumed = sub_event("evt_sub_3", "updated", "VIDEO_CREATOR_MONTHLY", "active", NOW - 60, start, end, json!({"pause_collection": null}));
        assert_eq!(t.stripe(&resumed).await.0, 200);
        let (s, v) = t.post_keyed("/v1/usage/consume", U1, "render-after", render).await;
        assert_eq!((s, v["balances"]["video_seconds"].as_i64()), (200, Some(1770)), "{v}");
    });
}

/// What `POST /v1/subscriptions/unpause` refuses: before any call, a subscription that is not
/// paused (409 `not_paused`), none at all or another's (404 `no_subscription`), an
/// organization's asked by a member (403 `not_org_admin`), a bad body (400); after the read,
/// one Stripe no longer has paused (409 `not_paused`, nothing else sent).
#[test]
fn a_resumption_is_refused_for_what_is_not_the_callers_or_not_paused() {
    block(async {
        let t = T::new("video-studio", &[]);
        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_subscription")), "{v}");
        let (start, end) = t.creator_subscriber().await;
        for body in [json!({}), json!({"subscription": "sub_1"})] {
            let (s, v) = t.post("/v1/subscriptions/unpause", U1, body).await;
            assert_eq!((s, v["error"]["code"].as_str()), (409, Some("not_paused")), "{v}");
        }
        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({"subscription": "sub_someone_elses"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_subscription")), "{v}");
        for body in [json!({"subscription": 5}), json!({"organization_id": "x"})] {
            let (s, v) = t.post("/v1/subscriptions/unpause", U1, body).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_body")), "{v}");
        }
        let other = "00000000-0000-4000-8000-000000000002";
        t.app.ctx.store.add_user(other);
        let paused = sub_event("evt_sub_2", "paused", "VIDEO_CREATOR_MONTHLY", "paused", NOW - 86_400, start, end, json!({}));
        assert_eq!(t.stripe(&paused).await.0, 200);
        let (s, v) = t.post("/v1/subscriptions/unpause", other, json!({"subscription": "sub_1"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_subscription")), "another's subscription: {v}");
        assert_eq!(t.calls(), 0, "no refused request reached Stripe");
        // Stripe has it running already (its webhook on the way): refused after the read.
        *t.rec.subscription.borrow_mut() = json!({"id": "sub_1", "object": "subscription", "status": "active", "pause_collection": null});
        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("not_paused")), "{v}");
        assert_eq!((t.calls(), sent(&t, 0).0), (1, Method::Get), "only the read");
        // A provider failure is the route's 502, as for every money-in route.
        *t.rec.answer.borrow_mut() = Answer::Status(404, json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such subscription: 'sub_1'"}}));
        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str(), v["error"]["provider_code"].as_str()), (502, Some("provider_error"), Some("resource_missing")), "{v}");

        // An organization's billing is its owners' and admins'.
        let o = T::new("org-seats", &[]);
        o.app.ctx.store.add_org(ORG);
        o.app.ctx.store.add_member(ORG, U1, "member");
        let (s, v) = o.post("/v1/subscriptions/unpause", U1, json!({"organization_id": ORG})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("not_org_admin")), "{v}");
        o.app.ctx.store.add_member(ORG, U1, "admin");
        let (s, v) = o.post("/v1/subscriptions/unpause", U1, json!({"organization_id": ORG})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_subscription")), "{v}");
        assert_eq!(o.calls(), 0);
    });
}

/// A Razorpay AI app subscriber whose subscription Razorpay paused asks
/// `POST /v1/subscriptions/unpause`: one request, Razorpay's resume with `resume_at` now (JSON,
/// Basic auth); `subscription.resumed` then gives Premium back.
#[test]
fn a_razorpay_subscription_is_resumed_now_in_one_request() {
    block(async {
        const RZP: &str = "rzp_pay_test_secret";
        let t = T::new("razorpay-ai", &[("RAZORPAY_WEBHOOK_SECRET", RZP)]);
        let (start, end) = (NOW - 5 * 86_400, NOW + 25 * 86_400);
        let rzp = |ev: &str, status: &str, created: i64| {
            json!({"entity": "event", "account_id": "acc_x", "event": ev, "contains": ["subscription"],
                "payload": {"subscription": {"entity": {
                    "id": "sub_r1", "entity": "subscription", "plan_id": "plan_premium_monthly",
                    "customer_id": "cust_r1", "status": status, "current_start": start, "current_end": end,
                    "ended_at": null, "quantity": 1, "notes": {"user_id": U1}, "charge_at": end,
                    "start_at": start, "end_at": start + 365 * 86_400, "auth_attempts": 0, "total_count": 12,
                    "paid_count": 1, "customer_notify": true, "created_at": start, "expire_by": null,
                    "short_url": null, "has_scheduled_changes": false, "change_scheduled_at": null,
                    "source": "api", "payment_method": "card", "offer_id": null, "remaining_count": 11}}},
                "created_at": created})
        };
        let deliver = |id: &'static str, ev: Value| {
            let body = ev.to_string();
            let sig = hex::encode(hmac(RZP, &body));
            let headers = Headers::new().with("x-razorpay-signature", sig).with("x-razorpay-event-id", id);
            InRequest { method: Method::Post, path: "/webhooks/razorpay".into(), query: String::new(), headers, body: body.into_bytes() }
        };
        let ai = json!({"feature": "ai_generation"});
        let r = t.app.handle(deliver("evt_r1", rzp("subscription.activated", "active", start + 10)), Timestamp(NOW)).await;
        assert_eq!(r.status, 200);
        let (_, v) = t.post("/v1/check", U1, ai.clone()).await;
        assert_eq!(v["allowed"], json!(true), "{v}");
        let r = t.app.handle(deliver("evt_r2", rzp("subscription.paused", "paused", NOW - 86_400)), Timestamp(NOW)).await;
        assert_eq!(r.status, 200);
        let (_, v) = t.post("/v1/check", U1, ai.clone()).await;
        assert_eq!(v["reason"].as_str(), Some("paused"), "{v}");

        let (s, v) = t.post("/v1/subscriptions/unpause", U1, json!({})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((v["subscription"].as_str(), v["provider"].as_str()), (Some("sub_r1"), Some("razorpay")));
        assert_eq!(t.calls(), 1);
        let req = t.rec.seen.borrow()[0].clone();
        assert_eq!((req.method, req.url.as_str()), (Method::Post, "https://razorpay.recorder.test/v1/subscriptions/sub_r1/resume"));
        assert_eq!(req.headers.get("authorization"), Some("Basic cnpwX3Rlc3RfaWQ6cnpwX3Rlc3Rfc2VjcmV0"));
        assert_eq!(req.headers.get("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, json!({"resume_at": "now"}));
        let (_, v) = t.post("/v1/check", U1, ai.clone()).await;
        assert_eq!(v["reason"].as_str(), Some("paused"), "the answer changes nothing: {v}");
        let r = t.app.handle(deliver("evt_r3", rzp("subscription.resumed", "active", NOW - 60)), Timestamp(NOW)).await;
        assert_eq!(r.status, 200);
        let (_, v) = t.post("/v1/check", U1, ai).await;
        assert_eq!(v["allowed"], json!(true), "{v}");
    });
}
