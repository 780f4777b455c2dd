//! An organization's counted uses, on the in-memory store (the Org Seats catalog): the
//! member who used one gives it back (`POST /v1/usage/{id}/release`), as the SQL store
//! lets it (tests/e2e/track.test.mjs).

mod common;

use serde_json::{json, Value};

use common::{block, email_of as email, hmac, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const OWNER: &str = "00000000-0000-4000-8000-000000000001";
const ANN: &str = "00000000-0000-4000-8000-000000000002";
const BOB: &str = "00000000-0000-4000-8000-000000000003";

fn token(uid: &str, now: i64) -> String {
    common::token_with_email(uid, ISSUER, now)
}

struct T {
    app: App<common::NoNetwork, MemoryStore>,
    now: std::cell::Cell<i64>,
}

impl T {
    fn new() -> T {
        let mut config = common::config("http://127.0.0.1:1", "svc", "org-seats");
        config.snapshot_secret = Some([7u8; 32]);
        let app = App::with_store(config, common::NoNetwork, MemoryStore::new()).expect("app");
        for u in [OWNER, ANN, BOB] {
            app.ctx.store.add_user_with_email(u, &email(u));
        }
        T { app, now: std::cell::Cell::new(T0) }
    }

    fn tick(&self) -> i64 {
        self.now.set(self.now.get() + 1);
        self.now.get()
    }

    async fn call(&self, method: Method, path: &str, uid: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let now = self.tick();
        let mut h = Headers::new().with("authorization", format!("Bearer {}", token(uid, now)));
        if let Some(k) = key {
            h = h.with("idempotency-key", k);
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = InRequest { method, path: path.into(), query: String::new(), headers: h, body };
        let r = self.app.handle(req, Timestamp(now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn stripe(&self, event: Value) {
        let now = self.tick();
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{payload}")));
        let h = Headers::new().with("stripe-signature", format!("t={now},v1={sig}"));
        let req = InRequest { method: Method::Post, path: "/webhooks/stripe".into(), query: String::new(), headers: h, body: payload.into_bytes() };
        let r = self.app.handle(req, Timestamp(now)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }

    /// An organization on a `quantity`-seat plan of `offer`, with `members` invited and
    /// seated.
    async fn org(&self, offer: &str, quantity: u32, members: &[&str]) -> String {
        let (s, v) = self.call(Method::Post, "/v1/orgs", OWNER, None, Some(json!({"name": "Acme"}))).await;
        assert_eq!(s, 201, "{v}");
        let org = v["id"].as_str().unwrap().to_string();
        self.stripe(subscription("customer.subscription.created", &org, offer, quantity, self.now.get() + 1)).await;
        for who in members {
            let path = format!("/v1/orgs/{org}/invites");
            let (s, inv) = self.call(Method::Post, &path, OWNER, None, Some(json!({"email": email(who), "role": "member", "seat": true}))).await;
            assert_eq!(s, 201, "{inv}");
            let (s, v) = self.call(Method::Post, &format!("/v1/invites/{}/accept", inv["token"].as_str().unwrap()), who, None, None).await;
            assert_eq!((s, v["seat"].as_bool()), (200, Some(true)), "{v}");
        }
        org
    }

    async fn track(&self, uid: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(Method::Post, "/v1/track", uid, Some(key), Some(body)).await
    }

    async fn check(&self, uid: &str, body: Value) -> (u16, Value) {
        self.call(Method::Post, "/v1/check", uid, None, Some(body)).await
    }
}

fn event(kind: &str, at: i64, object: Value) -> Value {
    json!({"id": format!("evt_{kind}_{at}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
           "type": kind, "data": {"object": object}, "livemode": false})
}

fn subscription(kind: &str, org: &str, offer: &str, quantity: u32, at: i64) -> Value {
    event(kind, at, json!({
        "id": "sub_org1", "object": "subscription", "customer": "cus_org1", "status": "active",
        "cancel_at_period_end": false, "start_date": T0, "created": T0,
        "metadata": {"organization_id": org, "offer_key": offer},
        "items": {"object": "list", "data": [{"id": "si_org1", "object": "subscription_item", "quantity": quantity,
            "price": {"id": format!("price_{offer}"), "object": "price", "lookup_key": offer, "metadata": {}},
            "current_period_start": T0, "current_period_end": T0 + 30 * DAY}]}}))
}

/// A member gives back a course it authored for its organization (a use of a limit without
/// a window): the record is the organization's, and the member is its actor.
#[test]
fn a_member_releases_the_course_it_authored_for_its_organization() {
    block(async {
        let t = T::new();
        let org = t.org("ORG_PROFESSIONAL_MONTHLY", 1, &[ANN]).await;
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let (s, made) = t.track(ANN, "course-1", courses.clone()).await;
        assert_eq!(s, 200, "{made}");
        let id = made["usage_id"].as_str().expect("a usage id").to_string();
        let (s, r) = t.call(Method::Post, &format!("/v1/usage/{id}/release"), ANN, None, Some(json!({}))).await;
        assert_eq!(
            (s, r["status"].clone()),
            (200, json!("released")),
            "the member who authored the course cannot release it: {r}"
        );
        let (_, c) = t.check(ANN, courses).await;
        assert_eq!(c["used"], json!(0), "the slot came back: {c}");
    });
}

