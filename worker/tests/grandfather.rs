//! Grandfathering through the worker's routes on the in-memory store (the VCM Suite's
//! catalog): a Basic subscriber who bought under version 1 keeps `heavy_tools` when
//! version 2 moves it to Pro with `keep` (its `/v1/check` and its signed snapshot, which
//! carries the terms so a browser with only version 2 decides the same), and loses it at
//! its renewal under version 2 with `at_renewal`, not before; a buyer under version 2
//! does not get it; a later version that keeps leaves a subscriber on the terms a renewal
//! moved it to. A member seated in two organizations keeps what the one on older terms
//! gives (the Org Seats catalog). An older version is read from the store once per isolate.
//! (The same against PostgreSQL under `wrangler dev`: tests/e2e/catalogs.test.mjs.)

mod common;

use serde_json::{json, Value};

use common::{block, config, hmac, user_token, NoNetwork, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate::Catalog;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;

const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const OLD: &str = "00000000-0000-4000-8000-0000000000c1";
const NEW: &str = "00000000-0000-4000-8000-0000000000c2";
const ISSUER: &str = "http://127.0.0.1:1/auth/v1";

struct T {
    app: App<NoNetwork, MemoryStore>,
}

impl T {
    fn new() -> T {
        let mut config = config("http://127.0.0.1:1", "svc", "vcm-suite");
        config.snapshot_secret = Some([7u8; 32]);
        let app = App::with_store(config, NoNetwork, MemoryStore::new()).expect("app");
        app.ctx.store.add_user(OLD);
        app.ctx.store.add_user(NEW);
        T { app }
    }
    async fn call(&self, method: Method, path: &str, headers: Headers, body: Vec<u8>, at: i64) -> (u16, Value) {
        let req = InRequest { method, path: path.into(), query: String::new(), headers, body };
        let r = self.app.handle(req, Timestamp(at)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }
    async fn stripe(&self, event: &Value) {
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{NOW}.{payload}")));
        let headers = Headers::new().with("stripe-signature", format!("t={NOW},v1={sig}"));
        let (status, v) = self.call(Method::Post, "/webhooks/stripe", headers, payload.into_bytes(), NOW).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("applied")), "{v}");
    }
    /// Pushes a catalog document and makes it active (as `tollgate catalog push` does).
    fn push(&self, doc: &Value) -> i64 {
        self.app.ctx.store.push_catalog(doc.clone(), true)
    }
    /// [`T::push`], and lets the worker see it at once (as `GET /v1/catalog` does).
    async fn push_seen(&self, doc: &Value) -> i64 {
        let v = self.push(doc);
        let (status, _) = self.call(Method::Get, "/v1/catalog", Headers::new(), vec![], NOW).await;
        assert_eq!(status, 200);
        v
    }
    async fn heavy_tools(&self, uid: &str) -> bool {
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, NOW)));
        let (status, v) = self.call(Method::Post, "/v1/check", h, json!({"feature": "heavy_tools"}).to_string().into_bytes(), NOW).await;
        assert_eq!(status, 200, "{v}");
        v["allowed"].as_bool().expect("allowed")
    }
    async fn snapshot(&self, uid: &str) -> Value {
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(uid, ISSUER, NOW)));
        let (status, v) = self.call(Method::Get, "/v1/entitlements", h, vec![], NOW).await;
        assert_eq!(status, 200, "{v}");
        v["snapshot"].clone()
    }
}

fn envelope(id: &str, ty: &str, at: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
           "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
           "data": {"object": object}})
}

/// `uid` subscribes to Basic (checkout) and pays its first period `[start, end)`.
fn subscribed(uid: &str, tag: &str, start: i64, end: i64) -> [Value; 2] {
    [
        envelope(
            &format!("evt_cs_{tag}"),
            "checkout.session.completed",
            start,
            json!({"id": format!("cs_{tag}"), "object": "checkout.session", "mode": "subscription", "status": "complete",
                   "payment_status": "paid", "customer": format!("cus_{tag}"), "subscription": format!("sub_{tag}"),
                   "client_reference_id": uid, "metadata": {"offer_key": "SUITE_BASIC_MONTHLY"},
                   "amount_total": 2900, "currency": "usd", "created": start}),
        ),
        paid(tag, 1, start, end),
    ]
}

/// The paid invoice `k` of `sub_<tag>` for `[start, end)`.
fn paid(tag: &str, k: u32, start: i64, end: i64) -> Value {
    envelope(
        &format!("evt_in_{tag}_{k}"),
        "invoice.paid",
        start,
        json!({"id": format!("in_{tag}_{k}"), "object": "invoice", "customer": format!("cus_{tag}"), "status": "paid",
               "amount_due": 2900, "amount_paid": 2900, "amount_remaining": 0, "attempt_count": 1, "currency": "usd", "created": start,
               "parent": {"type": "subscription_details", "subscription_details": {"subscription": format!("sub_{tag}"), "metadata": {}}},
               "lines": {"object": "list", "data": [{"id": "il_1", "object": "line_item", "amount": 2900, "currency": "usd",
                   "quantity": 1, "period": {"start": start, "end": end},
                   "pricing": {"type": "price_details", "price_details": {"price": "price_vcm_basic_monthly", "product": "prod_x"}}}]}}),
    )
}

/// The embedded catalog `name` as a document.
fn embedded(name: &str) -> Value {
    let c = tollgate_worker::ctx::embedded_catalog(name).expect("embedded");
    serde_json::from_str(&c.to_json()).unwrap()
}

/// The VCM Suite catalog as embedded (version 1 once pushed).
fn v1() -> Value {
    embedded("vcm-suite")
}

/// Version 2: Basic costs 39 USD and `heavy_tools` needs Pro; Basic's subscribers follow `policy`.
fn v2(policy: &str) -> Value {
    let mut doc = v1();
    for c in doc["capabilities"].as_array_mut().unwrap() {
        if c["id"] == "heavy_tools" {
            c["min_tier"] = json!("pro");
        }
    }
    for o in doc["offers"].as_array_mut().unwrap() {
        if o["key"] == "SUITE_BASIC_MONTHLY" {
            o["price"]["amount"] = json!(3900);
            o["migration"] = json!(policy);
        }
    }
    Catalog::from_json(&doc.to_string()).expect("v2 is valid");
    doc
}

async fn story(policy: &str) -> T {
    let t = T::new();
    assert_eq!(t.push(&v1()), 1);
    for e in subscribed(OLD, "old", NOW - 20 * DAY, NOW + 10 * DAY) {
        t.stripe(&e).await;
    }
    assert!(t.heavy_tools(OLD).await, "Basic has heavy tools under v1");
    assert_eq!(t.push(&v2(policy)), 2);
    // A webhook checks the active version at once: what it sells is sold under v2.
    for e in subscribed(NEW, "new", NOW - DAY, NOW + 29 * DAY) {
        t.stripe(&e).await;
    }
    t
}

#[test]
fn keep_holds_the_old_terms_and_a_new_buyer_gets_the_new_ones() {
    block(async {
        let t = story("keep").await;
        assert!(!t.heavy_tools(NEW).await, "a buyer under v2 gets v2's Basic");
        assert!(t.heavy_tools(OLD).await, "the v1 subscriber keeps heavy tools");
        assert_eq!(t.app.ctx.store.version_reads.get(), 1, "v1 is read once");
        assert!(t.heavy_tools(OLD).await);
        assert_eq!(t.app.ctx.store.version_reads.get(), 1, "and kept");
        // Its snapshot carries v1's terms of the suite; the new buyer's carries none.
        let s = t.snapshot(OLD).await;
        assert_eq!(s["grants"][0]["catalog_version"], 1, "{s}");
        assert_eq!((s["terms"][0]["product"].as_str(), s["terms"][0]["version"].as_u64()), (Some("suite"), Some(1)), "{s}");
        let snap: tollgate::snapshot::Snapshot = serde_json::from_value(s).unwrap();
        let active = Catalog::from_json(&v2("keep").to_string()).unwrap().with_version(2);
        let decided = tollgate::decide::can(&snap.catalog(&active), &snap.entitlements(&active).unwrap(), "heavy_tools", Timestamp(NOW)).unwrap();
        assert!(decided.allowed, "the browser decides as the worker does");
        assert!(!tollgate::decide::can(&active, &snap.entitlements(&active).unwrap(), "heavy_tools", Timestamp(NOW)).unwrap().allowed);
        assert!(t.snapshot(NEW).await.get("terms").is_none());
        // A renewal under v2 changes nothing with `keep`.
        t.stripe(&paid("old", 2, NOW - DAY, NOW + 40 * DAY)).await;
        assert!(t.heavy_tools(OLD).await);
    });
}

#[test]
fn at_renewal_moves_the_subscriber_at_its_renewal_and_not_before() {
    block(async {
        let t = story("at_renewal").await;
        assert!(t.heavy_tools(OLD).await, "v1's terms until the renewal");
        t.stripe(&paid("old", 2, NOW - DAY, NOW + 40 * DAY)).await;
        assert!(!t.heavy_tools(OLD).await, "v2's terms from the renewal on");
        assert!(t.snapshot(OLD).await.get("terms").is_none());
    });
}

#[test]
fn now_moves_every_subscriber_at_once_without_reading_old_versions() {
    block(async {
        let t = story("now").await;
        assert!(!t.heavy_tools(OLD).await);
        assert_eq!(t.app.ctx.store.version_reads.get(), 0);
    });
}

/// Version 2 moves heavy tools to Pro and Basic's subscribers `at_renewal`: the v1
/// subscriber renews under it and loses heavy tools, as version 2 said. Version 3 only
/// raises Basic's price again and says nothing about its subscribers (keep): the subscriber
/// stays on the terms it renewed onto, so heavy tools are not handed back, in its
/// `/v1/check` and in its signed snapshot (version 2's terms) alike.
#[test]
fn a_later_version_that_keeps_does_not_undo_what_an_at_renewal_version_moved() {
    block(async {
        let t = story("at_renewal").await;
        t.stripe(&paid("old", 2, NOW - DAY, NOW + 40 * DAY)).await;
        assert!(!t.heavy_tools(OLD).await, "renewed under v2: v2's terms");
        let mut three = v2("keep");
        for o in three["offers"].as_array_mut().unwrap() {
            if o["key"] == "SUITE_BASIC_MONTHLY" {
                o["price"]["amount"] = json!(4900);
            }
        }
        assert_eq!(t.push_seen(&three).await, 3);
        assert!(!t.heavy_tools(OLD).await, "v3 keeps: v2's terms, not v1's");
        let s = t.snapshot(OLD).await;
        assert_eq!((s["terms"][0]["product"].as_str(), s["terms"][0]["version"].as_u64()), (Some("suite"), Some(2)), "{s}");
        assert!(!t.heavy_tools(NEW).await, "a buyer under v2 keeps v2's terms");
    });
}

// ------------------------------------------------------------------ Org Seats: two organizations

const T0: i64 = 1_800_000_000;
const OWNER: &str = "00000000-0000-4000-8000-000000000001";
const ANN: &str = "00000000-0000-4000-8000-000000000002";

/// The Org Seats app's worker, whose clock moves one second per request.
struct Orgs {
    app: App<NoNetwork, MemoryStore>,
    now: std::cell::Cell<i64>,
}

impl Orgs {
    fn new() -> Orgs {
        let mut config = config("http://127.0.0.1:1", "svc", "org-seats");
        config.snapshot_secret = Some([7u8; 32]);
        let app = App::with_store(config, NoNetwork, MemoryStore::new()).expect("app");
        for u in [OWNER, ANN] {
            app.ctx.store.add_user_with_email(u, &common::email_of(u));
        }
        Orgs { app, now: std::cell::Cell::new(T0) }
    }
    fn tick(&self) -> i64 {
        self.now.set(self.now.get() + 1);
        self.now.get()
    }
    async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        let now = self.tick();
        let h = Headers::new().with("authorization", format!("Bearer {}", common::token_with_email(uid, ISSUER, now)));
        common::call(&self.app, method, path, h, &body.unwrap_or(Value::Null), now).await
    }
    async fn stripe(&self, event: Value) {
        let (status, v) = common::stripe(&self.app, &event, self.tick()).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("applied")), "{v}");
    }
    /// Pushes a document, makes it active and lets the worker see it at once.
    async fn push(&self, doc: &Value) -> i64 {
        let v = self.app.ctx.store.push_catalog(doc.clone(), true);
        let now = self.tick();
        let req = InRequest { method: Method::Get, path: "/v1/catalog".into(), query: String::new(), headers: Headers::new(), body: vec![] };
        assert_eq!(self.app.handle(req, Timestamp(now)).await.status, 200);
        v
    }
    async fn allowed(&self, uid: &str, body: Value) -> bool {
        let (s, v) = self.call(Method::Post, "/v1/check", uid, Some(body)).await;
        assert_eq!(s, 200, "{v}");
        v["allowed"].as_bool().expect("allowed")
    }
    /// An organization OWNER creates and subscribes to `offer`, with ANN invited onto a seat.
    async fn org_with_ann(&self, tag: &str, offer: &str) -> String {
        let (s, v) = self.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": tag}))).await;
        assert_eq!(s, 201, "{v}");
        let org = v["id"].as_str().unwrap().to_string();
        let at = self.now.get() + 1;
        self.stripe(envelope(&format!("evt_sub_{tag}"), "customer.subscription.created", at, json!({
            "id": format!("sub_{tag}"), "object": "subscription", "customer": format!("cus_{tag}"), "status": "active",
            "cancel_at_period_end": false, "start_date": at, "created": at,
            "metadata": {"organization_id": org, "offer_key": offer},
            "items": {"object": "list", "data": [{"id": format!("si_{tag}"), "object": "subscription_item", "quantity": 2,
                "price": {"id": format!("price_{tag}"), "object": "price", "lookup_key": offer, "metadata": {}},
                "current_period_start": at, "current_period_end": at + 30 * DAY}]}})))
        .await;
        let body = json!({"email": common::email_of(ANN), "role": "member", "seat": true});
        let (s, inv) = self.call(Method::Post, &format!("/v1/orgs/{org}/invites"), OWNER, Some(body)).await;
        assert_eq!(s, 201, "{inv}");
        let (s, v) = self.call(Method::Post, &format!("/v1/invites/{}/accept", inv["token"].as_str().unwrap()), ANN, None).await;
        assert_eq!((s, v["seat"].as_bool()), (200, Some(true)), "{v}");
        org
    }
}

/// Ann holds a seat in organization A (Professional, bought under version 1, where the AI
/// coach comes with Professional). Version 2 moves the AI coach to Enterprise (keep: A keeps
/// it). Organization B then buys Business under version 2 and gives Ann a seat too. Her own
/// use (`/v1/check` without `organization_id`: every seated organization's grants) still
/// gives the AI coach, as acting for A and her snapshot's entry for A do: a second seat on a
/// newer, higher plan takes nothing away.
#[test]
fn a_second_seat_on_a_newer_plan_keeps_the_grandfathered_capability_of_the_first() {
    block(async {
        let t = Orgs::new();
        assert_eq!(t.push(&embedded("org-seats")).await, 1);
        let a = t.org_with_ann("a", "ORG_PROFESSIONAL_MONTHLY").await;
        let coach = json!({"feature": "ai_coach_access"});
        assert!(t.allowed(ANN, coach.clone()).await, "A's Professional has the AI coach under v1");
        let mut two = embedded("org-seats");
        for c in two["capabilities"].as_array_mut().unwrap() {
            if c["id"] == "ai_coach_access" {
                c["min_tier"] = json!("ENTERPRISE");
            }
        }
        Catalog::from_json(&two.to_string()).expect("v2 is valid");
        assert_eq!(t.push(&two).await, 2);
        assert!(t.allowed(ANN, coach.clone()).await, "keep: A's seat still gives it");
        let _b = t.org_with_ann("b", "ORG_BUSINESS_MONTHLY").await;
        assert!(t.allowed(ANN, json!({"feature": "ai_coach_access", "organization_id": a})).await, "acting for A");
        let (s, snap) = t.call(Method::Get, "/v1/entitlements", ANN, None).await;
        assert_eq!(s, 200, "{snap}");
        let entry = snap["snapshot"]["organizations"].as_array().unwrap().iter().find(|m| m["id"] == json!(a)).cloned().unwrap();
        assert_eq!(entry["terms"][0]["version"], json!(1), "{entry}");
        assert!(t.allowed(ANN, coach.clone()).await, "own use: A's seat gives the AI coach, B's does not take it away");
    });
}
