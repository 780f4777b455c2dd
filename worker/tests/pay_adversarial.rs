//! The money-in routes (`/v1/checkout`, `/v1/portal`, `/v1/subscriptions/{cancel,resume,change,unpause}`)
//! attacked: buyers naming subjects they do not manage, hostile quantities and URLs,
//! idempotency keys reused, a change while another waits, providers answering garbage,
//! and the store failing. Provider calls go to a FAKE (a transport that records each
//! request and answers like Stripe would, idempotency keys included); the store is the
//! in-memory one behind a gate that can fail any call.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{json, Value};

use common::{block, field, form, raw, stripe_headers, text, user_token, CallGate, Gated, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::StoreError;
use tollgate_worker::supabase::PgError;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const NOW: i64 = 1_800_007_200;
const U1: &str = "00000000-0000-4000-8000-000000000001";
const U2: &str = "00000000-0000-4000-8000-000000000002";
const ORG: &str = "00000000-0000-4000-8000-0000000000aa";

// ------------------------------------------------------------------ a fake provider

type Override = Box<dyn Fn(&OutRequest) -> Option<Result<OutResponse, TransportError>>>;

/// Answers like Stripe: a Checkout Session per idempotency key (the same key with other
/// parameters is Stripe's 400 `idempotency_error`), portal sessions, a subscription read,
/// schedules that attach to the subscription and are released from it. `over` answers
/// first when it returns something.
/// Each idempotency key Stripe saw: the request's body and the id it answered with.
type SeenKeys = BTreeMap<String, (Vec<u8>, String)>;

#[derive(Clone)]
struct Fake {
    seen: Rc<RefCell<Vec<OutRequest>>>,
    over: Rc<RefCell<Option<Override>>>,
    subscription: Rc<RefCell<Value>>,
    keys: Rc<RefCell<SeenKeys>>,
    sessions: Rc<Cell<u32>>,
}

fn ok(v: Value) -> Result<OutResponse, TransportError> {
    Ok(OutResponse { status: 200, headers: Headers::new(), body: v.to_string().into_bytes() })
}
fn status(s: u16, v: Value) -> Result<OutResponse, TransportError> {
    Ok(OutResponse { status: s, headers: Headers::new(), body: v.to_string().into_bytes() })
}

impl Transport for Fake {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        self.seen.borrow_mut().push(req.clone());
        if let Some(r) = self.over.borrow().as_ref().and_then(|f| f(&req)) {
            return r;
        }
        let path = req.url.split_once(".test").map_or(req.url.as_str(), |(_, p)| p).to_string();
        let body = req.body.clone().unwrap_or_default();
        if path == "/v1/checkout/sessions" {
            let key = req.headers.get("idempotency-key").map(str::to_string);
            if let Some(k) = &key {
                if let Some((b, id)) = self.keys.borrow().get(k) {
                    if *b != body {
                        return status(400, json!({"error": {"type": "idempotency_error", "message": format!(
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request.")}}));
                    }
                    return ok(json!({"id": id, "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/{id}")}));
                }
            }
            self.sessions.set(self.sessions.get() + 1);
            let id = format!("cs_test_{}", self.sessions.get());
            if let Some(k) = key {
                self.keys.borrow_mut().insert(k, (body, id.clone()));
            }
            return ok(json!({"id": id, "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/{id}")}));
        }
        if path == "/v1/billing_portal/sessions" {
            return ok(json!({"id": "bps_1", "url": "https://billing.stripe.com/p/session/1"}));
        }
        if path.starts_with("/v1/prices") {
            return ok(json!({"object": "list", "data": []}));
        }
        if req.method == Method::Get && path.starts_with("/v1/subscriptions/") {
            return ok(self.subscription.borrow().clone());
        }
        if path == "/v1/subscription_schedules" {
            self.subscription.borrow_mut()["schedule"] = json!("sub_sched_1");
            return ok(json!({"id": "sub_sched_1", "object": "subscription_schedule", "phases": [{
                "start_date": NOW - 5 * 86_400, "end_date": NOW + 25 * 86_400,
                "items": [{"price": "price_current", "quantity": 1}]}]}));
        }
        if path.starts_with("/v1/subscription_schedules/") && path.ends_with("/release") {
            self.subscription.borrow_mut()["schedule"] = Value::Null;
            return ok(json!({"id": "sub_sched_1", "status": "released"}));
        }
        ok(json!({"id": "x", "status": "active"}))
    }
}

// ------------------------------------------------------------------ a store that fails on demand

#[derive(Default)]
struct Gate {
    /// Calls by name that fail (each once) with `error`.
    fail: RefCell<Vec<&'static str>>,
    error: RefCell<Option<StoreError>>,
    failed: Cell<u64>,
}

impl CallGate for Gate {
    fn before(&self, call: &'static str) -> Result<(), StoreError> {
        let mut f = self.fail.borrow_mut();
        if let Some(i) = f.iter().position(|c| *c == call) {
            f.remove(i);
            self.failed.set(self.failed.get() + 1);
            return Err(self.error.borrow().clone().unwrap_or_else(|| StoreError::Unavailable("503 the database is unreachable".into())));
        }
        Ok(())
    }
    fn failed(&self) -> u64 {
        self.failed.get()
    }
}

// ------------------------------------------------------------------ the app

struct H {
    app: App<Fake, Gated<Gate>>,
    fake: Fake,
}

impl H {
    fn new(catalog: &str) -> H {
        let vars: Vec<(String, String)> = [
            ("SUPABASE_URL", "http://127.0.0.1:1"),
            ("SUPABASE_SERVICE_ROLE_KEY", "svc"),
            ("SUPABASE_JWT_SECRET", common::JWT_SECRET),
            ("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET),
            ("CATALOG", catalog),
            ("STRIPE_SECRET_KEY", "sk_test_fake"),
            ("STRIPE_API_BASE", "https://stripe.fake.test"),
            ("RAZORPAY_KEY_ID", "rzp_test_id"),
            ("RAZORPAY_KEY_SECRET", "rzp_test_secret"),
            ("RAZORPAY_API_BASE", "https://razorpay.fake.test"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = Config::from_lookup(|k| vars.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone())).expect("config");
        let fake = Fake {
            seen: Rc::default(),
            over: Rc::default(),
            subscription: Rc::new(RefCell::new(Value::Null)),
            keys: Rc::default(),
            sessions: Rc::default(),
        };
        let store = Gated { inner: MemoryStore::new(), gate: Gate::default() };
        store.inner.add_user(U1);
        store.inner.add_user(U2);
        let app = App::with_store(config, fake.clone(), store).expect("app");
        H { app, fake }
    }

    fn store(&self) -> &MemoryStore {
        &self.app.ctx.store.inner
    }

    async fn post(&self, path: &str, uid: &str, body: Value) -> (u16, Value) {
        self.post_h(path, self.bearer(uid), body, NOW).await
    }

    fn bearer(&self, uid: &str) -> Headers {
        Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, NOW)))
    }

    async fn post_h(&self, path: &str, headers: Headers, body: Value, at: i64) -> (u16, Value) {
        let r = self.post_raw(path, headers, body.to_string().into_bytes(), at).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn post_raw(&self, path: &str, headers: Headers, body: Vec<u8>, at: i64) -> tollgate_worker::http::AppResponse {
        let req = InRequest { method: Method::Post, path: path.into(), query: String::new(), headers, body };
        self.app.handle(req, Timestamp(at)).await
    }

    async fn stripe(&self, ev: &Value) {
        let r = raw(&self.app, Method::Post, "/webhooks/stripe", stripe_headers(ev, NOW), ev.to_string().as_bytes(), NOW).await;
        assert_eq!(r.status, 200, "{}", text(&r));
    }

    fn calls(&self) -> usize {
        self.fake.seen.borrow().len()
    }

    fn form(&self, n: usize) -> Vec<(String, String)> {
        form(&self.fake.seen.borrow()[n])
    }

    /// `uid` subscribed to `offer` (Stripe `sub`, customer `cus`), its current period paid.
    async fn subscriber(&self, uid: &str, sub: &str, cus: &str, offer: &str, amount: i64) {
        let (start, end) = (NOW - 5 * 86_400, NOW + 25 * 86_400);
        self.stripe(&sub_event(&format!("evt_{sub}_created"), "created", sub, cus, uid, offer, start, end)).await;
        self.stripe(&invoice_paid(sub, cus, offer, amount, start, end)).await;
        *self.fake.subscription.borrow_mut() = json!({"id": sub, "object": "subscription", "status": "active", "schedule": null,
            "items": {"data": [{"id": "si_1", "quantity": 1, "price": {"id": "price_current", "product": "prod_video"}}]}});
    }
}



fn buy(offer: &str) -> Value {
    json!({"offer": offer, "success_url": "https://app.example.com/done", "cancel_url": "https://app.example.com/pricing"})
}

#[allow(clippy::too_many_arguments)]
fn sub_event(id: &str, kind: &str, sub: &str, cus: &str, uid: &str, offer: &str, start: i64, end: i64) -> Value {
    json!({
        "id": id, "object": "event", "api_version": "2025-03-31.basil", "created": start,
        "type": format!("customer.subscription.{kind}"), "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": sub, "object": "subscription", "customer": cus, "status": "active",
            "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
            "start_date": start, "created": start, "trial_start": null, "trial_end": null,
            "metadata": {"offer_key": offer, "user_id": uid},
            "items": {"object": "list", "data": [{
                "id": format!("si_{sub}"), "object": "subscription_item", "quantity": 1,
                "price": {"id": format!("price_{}", offer.to_lowercase()), "object": "price", "metadata": {"offer_key": offer}},
                "current_period_start": start, "current_period_end": end,
            }]},
        }},
    })
}

fn invoice_paid(sub: &str, cus: &str, offer: &str, amount: i64, start: i64, end: i64) -> Value {
    json!({
        "id": format!("evt_in_{sub}"), "object": "event", "api_version": "2025-03-31.basil", "created": start,
        "type": "invoice.paid", "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("in_{sub}"), "object": "invoice", "customer": cus, "status": "paid", "paid": true,
            "amount_paid": amount, "amount_due": amount, "currency": "usd", "created": start,
            "billing_reason": "subscription_create",
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub, "metadata": {}}},
            "period_start": start, "period_end": end,
            "lines": {"object": "list", "data": [{
                "id": format!("il_{sub}"), "object": "line_item", "amount": amount, "currency": "usd", "quantity": 1,
                "period": {"start": start, "end": end},
                "pricing": {"type": "price_details", "price_details": {"price": format!("price_{}", offer.to_lowercase()), "product": "prod_x"}},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {"subscription": sub}},
            }]},
            "payments": {"object": "list", "data": [{"payment": {"type": "payment_intent", "payment_intent": format!("pi_{sub}")}}]},
        }},
    })
}

// ------------------------------------------------------------------ who buys

/// An organization's id is a UUID, which the SQL store reads in either case; every other
/// route (`/v1/check`, `/v1/track`, the admin routes, `/v1/orgs/{id}`) lower-cases it so
/// that one organization is one subject. An admin buying for `ORG` spelled in upper case
/// buys for the organization, and the session carries the one spelling the store writes.
#[test]
fn a_checkout_for_an_organization_named_in_upper_case_is_that_organizations() {
    block(async {
        let h = H::new("org-seats");
        h.store().add_org(ORG);
        h.store().add_member(ORG, U1, "owner");
        let mut body = buy("ORG_PROFESSIONAL_MONTHLY");
        body["organization_id"] = json!(ORG.to_ascii_uppercase());
        body["quantity"] = json!(2);
        let (s, v) = h.post("/v1/checkout", U1, body).await;
        assert_eq!(s, 200, "the owner buying for their organization: {v}");
        assert_eq!(v["subject"], format!("org:{ORG}"), "{v}");
        let f = h.form(h.calls() - 1);
        assert_eq!(field(&f, "client_reference_id"), Some(format!("org:{ORG}").as_str()));
        assert_eq!(field(&f, "subscription_data[metadata][subject]"), Some(format!("org:{ORG}").as_str()));
    });
}

/// Nothing in the body names the buyer: `user_id`, `subject`, `client_reference_id` or
/// `metadata` sent by a caller are ignored, and the session is the caller's alone.
#[test]
fn a_buyer_cannot_name_another_user_as_the_subject() {
    block(async {
        let h = H::new("video-studio");
        let mut body = buy("VIDEO_TOKENS_30_MIN");
        for (k, v) in [
            ("user_id", json!(U2)),
            ("subject", json!(format!("user:{U2}"))),
            ("client_reference_id", json!(U2)),
            ("metadata", json!({"subject": format!("user:{U2}"), "offer_key": "VIDEO_TOKENS_5_HOURS"})),
            ("price", json!("price_free")),
            ("amount", json!(1)),
            ("currency", json!("inr")),
        ] {
            body[k] = v;
        }
        let (s, v) = h.post("/v1/checkout", U1, body).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["subject"], format!("user:{U1}"));
        let f = h.form(0);
        assert_eq!(field(&f, "client_reference_id"), Some(U1));
        assert_eq!(field(&f, "metadata[offer_key]"), Some("VIDEO_TOKENS_30_MIN"));
        assert_eq!(field(&f, "line_items[0][price_data][unit_amount]"), Some("1900"));
        assert_eq!(field(&f, "line_items[0][price_data][currency]"), Some("usd"));
        assert!(f.iter().all(|(_, v)| !v.contains(U2) && !v.contains("price_free")), "{f:?}");
        assert_eq!(field(&f, "line_items[0][price]"), None, "{f:?}");
    });
}

/// Another user's subscription cannot be changed, canceled or un-canceled by naming its
/// id, nor its portal opened; an organization's billing is neither a member's nor an
/// outsider's. All refused before any provider call.
#[test]
fn another_subjects_subscription_is_never_moved() {
    block(async {
        let h = H::new("video-studio");
        h.subscriber(U1, "sub_1", "cus_1", "VIDEO_CREATOR_MONTHLY", 2900).await;
        let before = h.calls();
        for (path, body, code) in [
            ("/v1/subscriptions/change", json!({"offer": "VIDEO_PRO_MONTHLY", "subscription": "sub_1"}), "no_subscription"),
            ("/v1/subscriptions/change", json!({"offer": "VIDEO_PRO_MONTHLY"}), "no_subscription"),
            ("/v1/subscriptions/cancel", json!({"subscription": "sub_1"}), "no_subscription"),
            ("/v1/subscriptions/resume", json!({"subscription": "sub_1"}), "no_subscription"),
            ("/v1/subscriptions/cancel", json!({"subscription": "SUB_1"}), "no_subscription"),
            ("/v1/portal", json!({"return_url": "https://app.example.com/account"}), "no_customer"),
        ] {
            let (s, v) = h.post(path, U2, body.clone()).await;
            assert_eq!((s, v["error"]["code"].as_str()), (404, Some(code)), "{path} {body}: {v}");
        }
        // An organization: a member and an outsider manage none of its billing; to the
        // outsider it is one that does not exist (404, as for an organization there is not).
        h.store().add_org(ORG);
        h.store().add_member(ORG, U1, "member");
        const NONE: &str = "00000000-0000-4000-8000-0000000000ff";
        for (who, org, status, code) in
            [(U1, ORG, 403, "not_org_admin"), (U2, ORG, 404, "unknown_organization"), (U2, NONE, 404, "unknown_organization")]
        {
            for (path, body) in [
                ("/v1/subscriptions/change", json!({"offer": "VIDEO_PRO_MONTHLY", "organization_id": org})),
                ("/v1/subscriptions/cancel", json!({"organization_id": org})),
                ("/v1/subscriptions/resume", json!({"organization_id": org})),
                ("/v1/subscriptions/unpause", json!({"organization_id": org})),
                ("/v1/portal", json!({"return_url": "https://app.example.com/account", "organization_id": org})),
            ] {
                let (s, v) = h.post(path, who, body.clone()).await;
                assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{who} {org} {path}: {v}");
                if status == 404 {
                    // The same words whether the organization exists or not.
                    assert_eq!(v["error"]["message"].as_str(), Some(format!("no organization {org} you belong to").as_str()), "{v}");
                }
            }
        }
        assert_eq!(h.calls(), before, "no refused request reached Stripe");
    });
}

// ------------------------------------------------------------------ what is bought

/// Quantities that are not a whole number from 1 to 10,000 (or more than one of a plan
/// sold one at a time) are 400 before any provider call.
#[test]
fn hostile_quantities_are_400_before_any_provider_call() {
    block(async {
        let h = H::new("video-studio");
        for q in [
            json!(0),
            json!(-1),
            json!(2.5),
            json!(1.5e3),
            json!("3"),
            json!(true),
            json!([1]),
            json!({"n": 1}),
            json!(10_001),
            json!(4_294_967_296u64),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e300),
        ] {
            let mut body = buy("VIDEO_TOKENS_30_MIN");
            body["quantity"] = q.clone();
            let (s, v) = h.post("/v1/checkout", U1, body).await;
            assert_eq!(s, 400, "quantity {q}: {v}");
            assert!(matches!(v["error"]["code"].as_str(), Some("invalid_body" | "invalid_quantity")), "{q}: {v}");
        }
        let mut plan = buy("VIDEO_CREATOR_MONTHLY");
        plan["quantity"] = json!(2);
        let (s, v) = h.post("/v1/checkout", U1, plan).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_quantity")), "{v}");
        assert_eq!(h.calls(), 0);
        let mut most = buy("VIDEO_TOKENS_30_MIN");
        most["quantity"] = json!(10_000);
        let (s, v) = h.post("/v1/checkout", U1, most).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(field(&h.form(0), "line_items[0][quantity]"), Some("10000"));
    });
}

/// Three 30-minute packs bought in one checkout (quantity 3, paid 3 x $19) give three
/// packs' seconds when the completed session's webhook arrives.
#[test]
fn three_packs_bought_at_once_give_three_packs() {
    block(async {
        let h = H::new("video-studio");
        let mut body = buy("VIDEO_TOKENS_30_MIN");
        body["quantity"] = json!(3);
        let (s, v) = h.post("/v1/checkout", U1, body).await;
        assert_eq!(s, 200, "{v}");
        let f = h.form(0);
        assert_eq!(field(&f, "line_items[0][quantity]"), Some("3"));
        let meta: serde_json::Map<String, Value> = f
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("metadata[").map(|k| (k.trim_end_matches(']').to_string(), json!(v))))
            .collect();
        let ev = json!({"id": "evt_3", "object": "event", "api_version": "2025-03-31.basil", "created": NOW,
            "type": "checkout.session.completed", "livemode": false,
            "data": {"object": {"id": v["id"], "object": "checkout.session", "mode": "payment", "status": "complete",
                "payment_status": "paid", "customer": "cus_1", "subscription": null, "payment_intent": "pi_3",
                "client_reference_id": field(&f, "client_reference_id"), "metadata": meta,
                "amount_total": 3 * 1900, "currency": "usd", "created": NOW}}});
        h.stripe(&ev).await;
        assert_eq!(h.store().balance(&Subject::user(U1), "video_seconds"), 3 * 1800, "paid for three packs");
    });
}

/// `success_url`, `cancel_url` and `return_url` must be absolute http(s) URLs: one without
/// a host (`https:///x`, `https://?a`) is the route's 400 `invalid_url`, never sent to Stripe
/// to be refused there (a 502 the client would retry).
#[test]
fn urls_without_a_host_are_invalid_before_any_provider_call() {
    block(async {
        let h = H::new("video-studio");
        for bad in ["https:///done", "https://?next=1", "https://#top", "https://:443/", "http:///x", "https://@/", "javascript:alert(1)", "https://a b.example/"] {
            for k in ["success_url", "cancel_url"] {
                let mut body = buy("VIDEO_TOKENS_30_MIN");
                body[k] = json!(bad);
                let (s, v) = h.post("/v1/checkout", U1, body).await;
                assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_url")), "{k} = {bad:?}: {v}");
            }
        }
        assert_eq!(h.calls(), 0, "no invalid URL reached Stripe");
    });
}

/// Unicode and very long values: unknown offers, clouds and subscriptions are refused with
/// their own codes (never a 5xx); a URL of 2,048 characters is taken and one longer is not;
/// a non-ASCII URL reaches Stripe byte for byte (percent-encoded UTF-8).
#[test]
fn unicode_and_very_long_fields_are_refused_or_passed_on_intact() {
    block(async {
        let h = H::new("vcm-suite");
        let long = "Ω".repeat(50_000);
        for offer in ["SUITE_PRO_MONTHLY\u{0}", "ＳＵＩＴＥ_PRO_MONTHLY", "suite_pro_monthly", long.as_str(), "SUITE_PRO_MONTHLY ", "👀"] {
            let (s, v) = h.post("/v1/checkout", U1, buy(offer)).await;
            assert_eq!((s, v["error"]["code"].as_str()), (404, Some("unknown_offer")), "{:.40}: {v:.200}", offer);
            let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": offer})).await;
            assert!((400..500).contains(&s), "{:.40}: {s} {v:.200}", offer);
        }
        let mut body = buy("SUITE_PRO_TWO_CLOUDS_MONTHLY");
        body["clouds"] = json!(["vidéo", "writing"]);
        let (s, v) = h.post("/v1/checkout", U1, body).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_clouds")), "{v}");
        body = buy("SUITE_PRO_TWO_CLOUDS_MONTHLY");
        body["clouds"] = json!([long.clone(), "writing"]);
        let (s, v) = h.post("/v1/checkout", U1, body).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_clouds")), "{v:.200}");
        let (s, v) = h.post("/v1/subscriptions/cancel", U1, json!({"subscription": long})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("no_subscription")), "{v:.200}");
        assert_eq!(h.calls(), 0);

        let at_most = format!("https://app.example.com/{}", "a".repeat(2048 - "https://app.example.com/".len()));
        let mut body = buy("SUITE_PRO_MONTHLY");
        body["success_url"] = json!(at_most);
        assert_eq!(h.post("/v1/checkout", U1, body).await.0, 200);
        let mut body = buy("SUITE_PRO_MONTHLY");
        body["success_url"] = json!(format!("{at_most}a"));
        let (s, v) = h.post("/v1/checkout", U1, body).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_url")), "{v:.200}");
        let unicode = "https://app.example.com/fertig?name=Zoë&emoji=🎉";
        let mut body = buy("SUITE_PRO_MONTHLY");
        body["cancel_url"] = json!(unicode);
        let (s, v) = h.post("/v1/checkout", U1, body).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(field(&h.form(h.calls() - 1), "cancel_url"), Some(unicode));
    });
}

// ------------------------------------------------------------------ idempotency

/// A retry under the same `Idempotency-Key` gets the same session; the key sent to Stripe
/// is scoped to the buyer (two users' same key are two sessions) and never the caller's raw
/// key.
#[test]
fn a_retry_gets_the_same_session_and_keys_are_the_buyers_own() {
    block(async {
        let h = H::new("video-studio");
        let keyed = |uid: &str| h.bearer(uid).with("idempotency-key", "buy-1");
        let (s1, a) = h.post_h("/v1/checkout", keyed(U1), buy("VIDEO_TOKENS_30_MIN"), NOW).await;
        let (s2, b) = h.post_h("/v1/checkout", keyed(U1), buy("VIDEO_TOKENS_30_MIN"), NOW + 30).await;
        assert_eq!((s1, s2), (200, 200), "{a} {b}");
        assert_eq!(a["id"], b["id"], "a retry is the same session");
        let (s3, c) = h.post_h("/v1/checkout", keyed(U2), buy("VIDEO_TOKENS_30_MIN"), NOW).await;
        assert_eq!(s3, 200, "{c}");
        assert_ne!(a["id"], c["id"], "another buyer's same key is another session");
        let keys: Vec<String> = h.fake.seen.borrow().iter().map(|r| r.headers.get("idempotency-key").unwrap_or("").to_string()).collect();
        assert_eq!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert!(keys.iter().all(|k| !k.is_empty() && k != "buy-1"), "{keys:?}");
        // Without a key, two requests are two sessions.
        let (_, d) = h.post("/v1/checkout", U1, buy("VIDEO_TOKENS_30_MIN")).await;
        let (_, e) = h.post("/v1/checkout", U1, buy("VIDEO_TOKENS_30_MIN")).await;
        assert_ne!(d["id"], e["id"]);
        // A key too long or with control characters: 400, nothing sent.
        let n = h.calls();
        for k in ["k".repeat(201), "a\u{7}b".to_string()] {
            let (s, v) = h.post_h("/v1/checkout", h.bearer(U1).with("idempotency-key", k), buy("VIDEO_TOKENS_30_MIN"), NOW).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_idempotency_key")), "{v}");
        }
        assert_eq!(h.calls(), n);
    });
}

/// The same `Idempotency-Key` for another purchase is the caller's mistake, as on every other
/// keyed route (409 `idempotency_key_reused`): not a 502 "Stripe refused the request" that
/// tells the client the provider failed and that it should retry (with the same key, for
/// ever).
#[test]
fn the_same_idempotency_key_for_another_purchase_is_a_4xx_not_a_provider_failure() {
    block(async {
        let h = H::new("video-studio");
        let keyed = || h.bearer(U1).with("idempotency-key", "buy-1");
        let (s, v) = h.post_h("/v1/checkout", keyed(), buy("VIDEO_TOKENS_30_MIN"), NOW).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = h.post_h("/v1/checkout", keyed(), buy("VIDEO_TOKENS_5_HOURS"), NOW + 5).await;
        assert!((400..500).contains(&s), "the same key for another offer: {s} {v}");
        assert_eq!(v["error"]["code"], "idempotency_key_reused", "{v}");
    });
}

// ------------------------------------------------------------------ plan changes


/// A change while an earlier downgrade waits: Stripe's schedule is released first, then the
/// new change is made (a new schedule for a downgrade, the price now for an upgrade).
#[test]
fn a_change_while_another_waits_releases_the_schedule_first() {
    block(async {
        let h = H::new("video-studio");
        h.subscriber(U1, "sub_1", "cus_1", "VIDEO_AGENCY_MONTHLY", 19900).await;
        let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": "VIDEO_PRO_MONTHLY"})).await;
        assert_eq!(s, 200, "{v}");
        let n = h.calls();
        let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": "VIDEO_STUDIO_MONTHLY"})).await;
        assert_eq!((s, v["effective"].as_str()), (200, Some("now")), "{v}");
        let urls: Vec<(Method, String)> = h.fake.seen.borrow()[n..].iter().map(|r| (r.method, r.url.clone())).collect();
        assert_eq!(
            urls,
            vec![
                (Method::Get, "https://stripe.fake.test/v1/subscriptions/sub_1".to_string()),
                (Method::Post, "https://stripe.fake.test/v1/subscription_schedules/sub_sched_1/release".to_string()),
                (Method::Post, "https://stripe.fake.test/v1/subscriptions/sub_1".to_string()),
            ]
        );
        let f = h.form(n + 2);
        assert_eq!(field(&f, "metadata[offer_key]"), Some("VIDEO_STUDIO_MONTHLY"));
        assert_eq!(field(&f, "items[0][price_data][unit_amount]"), Some("39900"));
        assert_eq!(field(&f, "items[0][price_data][product]"), Some("prod_video"));
    });
}

/// A downgrade waiting for the period's end is withdrawn by asking for the plan held: the
/// schedule is released (the subscription stays as it is), and asked again with nothing
/// waiting, the same plan is 409 `same_offer` after the read, with nothing changed.
#[test]
fn a_pending_downgrade_is_withdrawn_by_changing_back() {
    block(async {
        let h = H::new("video-studio");
        h.subscriber(U1, "sub_1", "cus_1", "VIDEO_AGENCY_MONTHLY", 19900).await;
        let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": "VIDEO_PRO_MONTHLY"})).await;
        assert_eq!((s, v["effective"].as_str()), (200, Some("period_end")), "{v}");
        let n = h.calls();
        let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": "VIDEO_AGENCY_MONTHLY"})).await;
        assert_eq!((s, v["withdrawn"].as_bool(), v["to"].as_str()), (200, Some(true), Some("VIDEO_AGENCY_MONTHLY")), "{v}");
        let urls: Vec<(Method, String)> = h.fake.seen.borrow()[n..].iter().map(|r| (r.method, r.url.clone())).collect();
        assert_eq!(
            urls,
            vec![
                (Method::Get, "https://stripe.fake.test/v1/subscriptions/sub_1".to_string()),
                (Method::Post, "https://stripe.fake.test/v1/subscription_schedules/sub_sched_1/release".to_string()),
            ]
        );
        let n = h.calls();
        let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": "VIDEO_AGENCY_MONTHLY"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("same_offer")), "{v}");
        let urls: Vec<Method> = h.fake.seen.borrow()[n..].iter().map(|r| r.method).collect();
        assert_eq!(urls, vec![Method::Get], "only the read");
    });
}

/// A plan change to an offer in another currency is refused before any call (a
/// subscription's currency never changes), and so is buying that offer beside the running
/// plan of the same product.
#[test]
fn a_change_to_another_currency_is_refused_before_any_call() {
    block(async {
        let h = H::new("video-studio");
        let c = tollgate_worker::ctx::embedded_catalog("video-studio").expect("embedded");
        let mut doc: Value = serde_json::from_str(&c.to_json()).unwrap();
        let offers = doc["offers"].as_array_mut().unwrap();
        let mut eur = offers.iter().find(|o| o["key"] == "VIDEO_STUDIO_MONTHLY").unwrap().clone();
        eur["key"] = json!("VIDEO_STUDIO_MONTHLY_EUR");
        eur["price"]["currency"] = json!("eur");
        eur["price"]["amount"] = json!(36900);
        offers.push(eur);
        h.store().push_catalog(doc, true);
        h.subscriber(U1, "sub_1", "cus_1", "VIDEO_CREATOR_MONTHLY", 2900).await;
        let n = h.calls();
        let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": "VIDEO_STUDIO_MONTHLY_EUR"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("not_sellable")), "{v}");
        let (s, v) = h.post("/v1/checkout", U1, buy("VIDEO_STUDIO_MONTHLY_EUR")).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("already_subscribed")), "{v}");
        assert_eq!(h.calls(), n);
    });
}

// ------------------------------------------------------------------ providers misbehaving

/// A portal session Stripe answers without a `url` (a 200 of another shape, a proxy's
/// empty JSON) is a provider error: the route never answers 200 `{"url": null}`, which a
/// client would follow to "null".
#[test]
fn a_portal_answer_without_a_url_is_a_provider_error() {
    block(async {
        let h = H::new("video-studio");
        h.subscriber(U1, "sub_1", "cus_1", "VIDEO_CREATOR_MONTHLY", 2900).await;
        *h.fake.over.borrow_mut() = Some(Box::new(|r: &OutRequest| r.url.ends_with("/v1/billing_portal/sessions").then(|| ok(json!({})))));
        let (s, v) = h.post("/v1/portal", U1, json!({"return_url": "https://app.example.com/account"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (502, Some("provider_error")), "{v}");
    });
}

/// A Checkout Session Stripe answers with an id but no `url` cannot be opened: 502, not a
/// 200 whose `url` is null.
#[test]
fn a_checkout_session_without_a_url_is_a_provider_error() {
    block(async {
        let h = H::new("video-studio");
        *h.fake.over.borrow_mut() =
            Some(Box::new(|r: &OutRequest| r.url.ends_with("/v1/checkout/sessions").then(|| ok(json!({"id": "cs_no_url", "url": null})))));
        let (s, v) = h.post("/v1/checkout", U1, buy("VIDEO_TOKENS_30_MIN")).await;
        assert_eq!((s, v["error"]["code"].as_str()), (502, Some("provider_error")), "{v}");
    });
}

/// A plan change whose conversation breaks (garbage, a 5xx, a redirect, no answer) at any
/// step is 502/504 and sends nothing after the failing step.
#[test]
fn a_change_stops_at_the_first_provider_failure() {
    block(async {
        type Step = fn() -> Result<OutResponse, TransportError>;
        let answers: [(&str, Step, u16); 6] = [
            ("not json", || Ok(OutResponse { status: 200, headers: Headers::new(), body: b"<html>ok</html>".to_vec() }), 502),
            ("no items", || ok(json!({"id": "sub_1", "items": {"data": []}})), 502),
            ("5xx", || status(500, json!({"error": {"type": "api_error", "message": "boom"}})), 502),
            ("redirect", || status(302, json!(null)), 502),
            ("timeout", || Err(TransportError::timed_out("slow")), 504),
            ("unreachable", || Err(TransportError("connection reset".into())), 502),
        ];
        for (what, answer, want) in answers {
            for step in 0..3 {
                // The last step's answer is not read: any JSON completes the change.
                if what == "no items" && step == 2 {
                    continue;
                }
                let h = H::new("video-studio");
                h.subscriber(U1, "sub_1", "cus_1", "VIDEO_PRO_MONTHLY", 7900).await;
                let count = Rc::new(Cell::new(0));
                let c = count.clone();
                *h.fake.over.borrow_mut() = Some(Box::new(move |_: &OutRequest| {
                    c.set(c.get() + 1);
                    (c.get() == step + 1).then(answer)
                }));
                let (s, v) = h.post("/v1/subscriptions/change", U1, json!({"offer": "VIDEO_CREATOR_MONTHLY"})).await;
                assert_eq!(s, want, "{what} at step {step}: {v}");
                assert_eq!(h.calls(), step as usize + 1, "{what} at step {step}: nothing sent after the failure");
                assert!(h.store().grants(&Subject::user(U1)).iter().all(|g| g["tier"] != "creator"), "nothing written");
            }
        }
    });
}

// ------------------------------------------------------------------ the store failing

const INTERNALS: &[&str] = &["billing_subscriptions", "42P01", "relation", "secret_detail", "db.internal", "5432", "PGRST", "tollgate_account"];

/// With the store failing when the buyer's account is read, every money-in route is 5xx
/// (never a 4xx that stops a retry, never a provider call) and its body shows none of the
/// store's insides (tables, SQL codes, hosts): ARCHITECTURE.md, "A failing store is 5xx
/// with no store internals in the body".
#[test]
fn a_failing_store_is_5xx_without_store_internals_and_calls_no_provider() {
    block(async {
        let errors = [
            StoreError::Unavailable("503 PGRST000 could not connect to db.internal.example:5432".into()),
            StoreError::Rejected {
                status: 400,
                error: PgError {
                    code: Some("42P01".into()),
                    message: Some("relation \"public.billing_subscriptions\" does not exist".into()),
                    details: Some("secret_detail".into()),
                    hint: None,
                },
            },
            StoreError::Decode("tollgate_account: a status in {\"relation\": \"billing_subscriptions\"}".into()),
        ];
        for e in errors {
            let h = H::new("video-studio");
            h.subscriber(U1, "sub_1", "cus_1", "VIDEO_CREATOR_MONTHLY", 2900).await;
            let n = h.calls();
            for (path, body) in [
                ("/v1/checkout", buy("VIDEO_TOKENS_30_MIN")),
                ("/v1/portal", json!({"return_url": "https://app.example.com/account"})),
                ("/v1/subscriptions/cancel", json!({})),
                ("/v1/subscriptions/resume", json!({})),
                ("/v1/subscriptions/change", json!({"offer": "VIDEO_PRO_MONTHLY"})),
                ("/v1/subscriptions/unpause", json!({})),
            ] {
                *h.app.ctx.store.gate.error.borrow_mut() = Some(e.clone());
                h.app.ctx.store.gate.fail.borrow_mut().push("account");
                let r = h.post_raw(path, h.bearer(U1), body.to_string().into_bytes(), NOW).await;
                assert!(r.status >= 500, "{path} with the store failing ({e}): {} {}", r.status, text(&r));
                for i in INTERNALS {
                    assert!(!text(&r).contains(i), "{path}: the body shows `{i}`: {}", text(&r));
                }
            }
            assert_eq!(h.calls(), n, "no provider call without the account");
        }
    });
}

/// Checkout checks the catalog's active version at once, "so new purchases price from the
/// active version the moment it is active" (worker/README.md). When that check fails, the
/// purchase must not be sold at the isolate's older price: the route answers 5xx (nothing
/// sent), or prices from the active version.
#[test]
fn a_checkout_the_store_cannot_confirm_the_price_of_is_not_sold_at_a_stale_price() {
    block(async {
        let h = H::new("video-studio");
        let (s, v) = h.post("/v1/checkout", U1, buy("VIDEO_TOKENS_30_MIN")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(field(&h.form(0), "line_items[0][price_data][unit_amount]"), Some("1900"));
        let c = tollgate_worker::ctx::embedded_catalog("video-studio").expect("embedded");
        let mut doc: Value = serde_json::from_str(&c.to_json()).unwrap();
        for o in doc["offers"].as_array_mut().unwrap() {
            if o["key"] == "VIDEO_TOKENS_30_MIN" {
                o["price"]["amount"] = json!(2900);
            }
        }
        h.store().push_catalog(doc, true);
        h.app.ctx.store.gate.fail.borrow_mut().push("active_catalog_version");
        let (s, v) = h.post_h("/v1/checkout", h.bearer(U1), buy("VIDEO_TOKENS_30_MIN"), NOW + 1).await;
        if s == 200 {
            let f = h.form(h.calls() - 1);
            assert_eq!(field(&f, "line_items[0][price_data][unit_amount]"), Some("2900"), "sold at the price the store no longer has active: {v}");
        } else {
            assert!(s >= 500, "{s} {v}");
            assert_eq!(h.calls(), 1, "nothing sent");
        }
    });
}
