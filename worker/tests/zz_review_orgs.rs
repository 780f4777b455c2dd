//! Review of organizations and seats through the worker's routes (in-memory store): what a
//! removed member's token may still do to its former organization, and what an operator's
//! seat does to membership.

mod common;

use serde_json::{json, Value};

use common::{block, hmac, ADMIN_SECRET, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::store::Store;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const OWNER: &str = "00000000-0000-4000-8000-000000000001";
const ANN: &str = "00000000-0000-4000-8000-000000000002";
const BOB: &str = "00000000-0000-4000-8000-000000000003";
const EVE: &str = "00000000-0000-4000-8000-000000000005";

use common::email_of as email;

struct T {
    app: App<common::NoNetwork, MemoryStore>,
    now: std::cell::Cell<i64>,
}

impl T {
    fn new() -> T {
        let mut config = common::config("http://127.0.0.1:1", "svc", "org-seats");
        config.snapshot_secret = Some([7u8; 32]);
        let app = App::with_store(config, common::NoNetwork, MemoryStore::new()).expect("app");
        for u in [OWNER, ANN, BOB, EVE] {
            app.ctx.store.add_user_with_email(u, &email(u));
        }
        T { app, now: std::cell::Cell::new(T0) }
    }

    fn tick(&self) -> i64 {
        self.now.set(self.now.get() + 1);
        self.now.get()
    }

    async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, uid, None, body).await
    }

    async fn call_with(&self, method: Method, path: &str, uid: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let now = self.tick();
        let mut h = Headers::new().with("authorization", format!("Bearer {}", common::token_with_email(uid, ISSUER, now)));
        if let Some(k) = key {
            h = h.with("idempotency-key", k);
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = InRequest { method, path: path.into(), query: String::new(), headers: h, body };
        let r = self.app.handle(req, Timestamp(now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let now = self.tick();
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        let req = InRequest { method: Method::Post, path: path.into(), query: String::new(), headers: h, body: body.to_string().into_bytes() };
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

    /// Acme on the Business plan with `quantity` seats: its id.
    async fn org(&self, quantity: u32) -> String {
        let (s, v) = self.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": "Acme"}))).await;
        assert_eq!(s, 201, "{v}");
        let org = v["id"].as_str().unwrap().to_string();
        self.stripe(subscription("customer.subscription.created", &org, quantity, self.now.get() + 1)).await;
        org
    }

    /// `who` invited (with a seat or not) and accepted.
    async fn join(&self, org: &str, who: &str, seat: bool) {
        let (s, inv) = self
            .call(Method::Post, &format!("/v1/orgs/{org}/invites"), OWNER, Some(json!({"email": email(who), "role": "member", "seat": seat})))
            .await;
        assert_eq!(s, 201, "{inv}");
        let (s, v) = self.call(Method::Post, &format!("/v1/invites/{}/accept", inv["token"].as_str().unwrap()), who, None).await;
        assert_eq!((s, v["seat"].as_bool()), (200, Some(seat)), "{v}");
    }
}

fn event(kind: &str, at: i64, object: Value) -> Value {
    json!({"id": format!("evt_{kind}_{at}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
           "type": kind, "data": {"object": object}, "livemode": false})
}

/// The organization's Business plan, `quantity` seats.
fn subscription(kind: &str, org: &str, quantity: u32, at: i64) -> Value {
    event(kind, at, json!({
        "id": "sub_org1", "object": "subscription", "customer": "cus_org1", "status": "active",
        "cancel_at_period_end": false, "start_date": T0, "created": T0,
        "metadata": {"organization_id": org, "offer_key": "ORG_BUSINESS_MONTHLY"},
        "items": {"object": "list", "data": [{"id": "si_org1", "object": "subscription_item", "quantity": quantity,
            "price": {"id": "price_org_business", "object": "price", "lookup_key": "ORG_BUSINESS_MONTHLY", "metadata": {}},
            "current_period_start": T0, "current_period_end": T0 + 30 * DAY}]}}))
}

/// A removed member's token acts on its former organization's counter.
///
/// Ann, a seated member, authors a course for Acme (`max_courses_authored`, a limit
/// without a window, counted on the organization's counter). The owner then removes Ann.
/// With her still-valid token Ann releases that use (`POST /v1/usage/{id}/release`).
///
/// Expected: refused (404 `not_found`, as for any usage the caller has no standing on), and
/// Acme's count unchanged. Once removed, a user acts for the organization in nothing: a
/// new use for it is refused (`not_a_member`), and a release changes the organization's
/// counter just as much as a use does, in the other direction (here it gives Acme a
/// course slot back for a course that still exists). The README only promises a *member*
/// giving back a course it authored ("a member gives back an organization's use it made").
///
/// Actual: 200 `released` and Acme's count drops to 0: `settle` (memory.rs, and
/// `tollgate_settle` in SQL: `r.actor_id = s.user_id`) finds the record by its actor alone,
/// and `meter::settle` never asks whether the caller is still a member (or seated).
#[test]
fn a_removed_member_cannot_give_back_the_organizations_uses() {
    block(async {
        let t = T::new();
        let org = t.org(2).await;
        t.join(&org, ANN, true).await;
        t.join(&org, BOB, true).await;
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let (s, made) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-1"), Some(courses.clone())).await;
        assert_eq!(s, 200, "{made}");
        let id = made["usage_id"].as_str().expect("a usage id").to_string();

        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{ANN}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        // Removed: she acts for Acme in nothing...
        let (s, v) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-2"), Some(courses.clone())).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("not_a_member")), "{v}");

        // ...so she may not change Acme's count either.
        let (s, r) = t.call(Method::Post, &format!("/v1/usage/{id}/release"), ANN, Some(json!({}))).await;
        let (_, c) = t.call(Method::Post, "/v1/check", BOB, Some(courses)).await;
        assert_eq!(c["used"], json!(1), "Acme's one course is still counted after a removed member's release: {c}");
        assert_eq!(s, 404, "a removed member's release of the organization's use is refused: {r}");
    });
}

/// An operator's seat makes a stranger a member of the organization.
///
/// `POST /v1/admin/seats` is documented as giving "a member of an organization a seat"
/// (worker/src/admin.rs; README: "give / release an organization seat"), and the core has
/// the refusal for anyone else (`billing::members::check_allocation` ->
/// `SeatReason::NotAMember`, documented in ARCHITECTURE.md as what "the worker asks ...
/// before it records a seat assignment"). Membership comes from an accepted invite;
/// a seat is what a member is given.
///
/// Expected: a seat for Eve, who was never invited to Acme, is refused (4xx, e.g. 404
/// `not_a_member` as the members' own seats route answers), and Eve still does not see
/// Acme (`GET /v1/orgs/{id}` 404).
///
/// Actual: 200 `seated`, and Eve is now a member of Acme with a seat: the worker never
/// calls `check_allocation`, the core's fold (`Reducer::on_seat`) gives a seat to anyone,
/// and the store's fold (`apply_fold`, memory.rs and `tollgate_apply_fold` in SQL) inserts
/// every seat holder into `organization_members`. A mistyped user id thus hands a stranger
/// the organization's plan and its member list. (The same insertion is what lets a seat
/// given by `POST /v1/orgs/{id}/seats` concurrently with the member's removal bring the
/// removed member back: the route checks membership on its read, the fold re-adds.)
#[test]
fn an_operators_seat_does_not_make_a_stranger_a_member() {
    block(async {
        let t = T::new();
        let org = t.org(2).await;
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), EVE, None).await;
        assert_eq!(s, 404, "Eve is a stranger to Acme: {v}");

        let (s, v) = t.admin("/v1/admin/seats", json!({"organization_id": org, "user_id": EVE, "action": "assign"})).await;
        let (seen, view) = t.call(Method::Get, &format!("/v1/orgs/{org}"), EVE, None).await;
        assert_eq!(seen, 404, "a seat made Eve a member of Acme: {view}");
        assert!((400..500).contains(&s), "a seat for a non-member is refused: {s} {v}");
        assert!(!t.app.ctx.store.seat_held(&org, EVE).await.unwrap());
    });
}
