//! Organizations run by their members, through every route on the in-memory store (the
//! same routes run against PostgreSQL in tests/e2e/orgs.test.mjs): an owner invites on a
//! 2-seat plan, the third seat is refused, accepting gives the tier, the quantity raised
//! and lowered by Stripe's subscription events moves the seats in the core's order,
//! members and admins are refused what they may not do, invite tokens are single-use,
//! expire and belong to one address, each member's Idempotency-Keys are its own, and a
//! member gives back an organization's use it made (a removed or unseated one does not,
//! also when the removal lands between the route's read and the settling); an operator's
//! seat goes only to a member.

mod common;

use serde_json::{json, Value};

use common::{block, ADMIN_SECRET, ANN, BOB, CAT, EVE, OWNER};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::store::Store;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

use common::email_of as email;

fn token(uid: &str, now: i64) -> String {
    common::token_with_email(uid, ISSUER, now)
}

struct T {
    app: App<common::NoNetwork, MemoryStore>,
    /// The clock: every request is one second after the last, so facts keep their order.
    now: std::cell::Cell<i64>,
}

impl T {
    fn new() -> T {
        let config = common::config("http://127.0.0.1:1", "svc", "org-seats");
        let mut config = config;
        config.snapshot_secret = Some([7u8; 32]);
        let app = App::with_store(config, common::NoNetwork, MemoryStore::new()).expect("app");
        for u in [OWNER, ANN, BOB, CAT, EVE] {
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

    /// A request with an Idempotency-Key.
    async fn call_with(&self, method: Method, path: &str, uid: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let now = self.tick();
        self.call_at(now, method, path, uid, key, body).await
    }

    /// A request made at `now` (a clock behind the last request's: another isolate's).
    async fn call_at(&self, now: i64, method: Method, path: &str, uid: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut h = Headers::new().with("authorization", format!("Bearer {}", token(uid, now)));
        if let Some(k) = key {
            h = h.with("idempotency-key", k);
        }
        self.send(now, method, path, h, body).await
    }

    /// An operator's request (the admin secret), at the next tick.
    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let now = self.tick();
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        self.send(now, Method::Post, path, h, Some(body)).await
    }

    async fn send(&self, now: i64, method: Method, path: &str, headers: Headers, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = InRequest { method, path: path.into(), query: String::new(), headers, body };
        let r = self.app.handle(req, Timestamp(now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    /// A Stripe event, delivered at the next tick (its `created`, as the events below are made).
    async fn stripe(&self, event: Value) {
        let now = self.tick();
        common::stripe_taken(&self.app, &event, now).await;
    }

    async fn invite(&self, org: &str, by: &str, who: &str, seat: bool) -> (u16, Value) {
        self.call(Method::Post, &format!("/v1/orgs/{org}/invites"), by, Some(json!({"email": email(who), "role": "member", "seat": seat}))).await
    }

    async fn accept(&self, token: &str, uid: &str) -> (u16, Value) {
        self.call(Method::Post, &format!("/v1/invites/{token}/accept"), uid, None).await
    }

    /// `who` invited to `org` by its owner (with a seat when `seat`), and accepted.
    async fn join(&self, org: &str, who: &str, seat: bool) {
        let (s, inv) = self.invite(org, OWNER, who, seat).await;
        assert_eq!(s, 201, "{inv}");
        assert_eq!(self.accept(inv["token"].as_str().unwrap(), who).await.0, 200);
    }

    /// Acme, created by its owner, on the Business plan with `quantity` seats: its id.
    async fn subscribed_org(&self, quantity: u32) -> String {
        let (_, v) = self.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": "Acme"}))).await;
        let org = v["id"].as_str().unwrap().to_string();
        self.stripe(subscription("customer.subscription.created", &org, quantity, self.now.get() + 1)).await;
        org
    }

    /// Acme on the Business plan with `quantity` seats, `member` invited with a seat and
    /// accepted: the organization's id.
    async fn seated_org(&self, quantity: u32, member: &str) -> String {
        let org = self.subscribed_org(quantity).await;
        self.join(&org, member, true).await;
        org
    }

    /// A course `who` authors for the organization (`courses`: the use of
    /// `max_courses_authored` for it), under Idempotency-Key `key`: its usage id.
    async fn author(&self, who: &str, key: &str, courses: &Value) -> String {
        let (s, v) = self.call_with(Method::Post, "/v1/track", who, Some(key), Some(courses.clone())).await;
        assert_eq!(s, 200, "{v}");
        v["usage_id"].as_str().expect("a usage id").to_string()
    }

    /// `who` asks to release usage `id`.
    async fn release(&self, id: &str, who: &str) -> (u16, Value) {
        self.call(Method::Post, &format!("/v1/usage/{id}/release"), who, Some(json!({}))).await
    }

    /// The organization as the user's signed snapshot carries it.
    async fn snapshot_org(&self, uid: &str) -> Value {
        let (s, v) = self.call(Method::Get, "/v1/entitlements", uid, None).await;
        assert_eq!(s, 200, "{v}");
        v["snapshot"]["organizations"][0].clone()
    }

    async fn snapshot_grants(&self, uid: &str) -> Vec<String> {
        let (_, v) = self.call(Method::Get, "/v1/entitlements", uid, None).await;
        v["snapshot"]["grants"].as_array().unwrap().iter().map(|g| format!("{}:{}", g["product"], g["tier"])).collect()
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

#[test]
fn an_organization_invites_seats_and_follows_its_quantity() {
    block(async {
        let t = T::new();
        let (s, v) = t.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": "  Acme Learning "}))).await;
        assert_eq!((s, v["role"].as_str(), v["name"].as_str()), (201, Some("owner"), Some("Acme Learning")), "{v}");
        let org = v["id"].as_str().unwrap().to_string();
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        assert_eq!((s, v["plan"]["status"].as_str(), v["seats"]["count"].as_u64()), (200, Some("none"), Some(0)), "{v}");
        assert_eq!(t.invite(&org, OWNER, ANN, true).await.1["error"]["code"], "no_seat", "no plan, no seat");

        // A 2-seat Business plan, from Stripe's subscription event.
        t.stripe(subscription("customer.subscription.created", &org, 2, t.now.get() + 1)).await;
        let (_, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        assert_eq!((v["plan"]["tier"].as_str(), v["plan"]["status"].as_str()), (Some("BUSINESS"), Some("active")), "{v}");
        assert_eq!(v["seats"], json!({"count": 2, "used": 0, "reserved": 0, "available": 2}));

        // Three invites with a seat: the third is refused, the pending two hold theirs.
        let (s, a) = t.invite(&org, OWNER, ANN, true).await;
        assert_eq!(s, 201, "{a}");
        let (s, b) = t.invite(&org, OWNER, BOB, true).await;
        assert_eq!(s, 201, "{b}");
        let (s, v) = t.invite(&org, OWNER, CAT, true).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("no_seat")), "{v}");
        assert_eq!(v["error"]["seats"], json!({"count": 2, "used": 0, "reserved": 2, "available": 0}));
        let (s, c) = t.invite(&org, OWNER, CAT, false).await;
        assert_eq!(s, 201, "without a seat, Cat is invited: {c}");
        let stored = t.app.ctx.store.invites(&org);
        assert_eq!(stored.len(), 3);
        assert!(stored.iter().all(|i| i.expires_at == Timestamp(i.expires_at.0) && i.created_by.as_deref() == Some(OWNER)));

        // Accepting: membership and the reserved seat; the tier reaches the member's snapshot.
        let (s, v) = t.accept(a["token"].as_str().unwrap(), ANN).await;
        assert_eq!((s, v["seat"].as_bool(), v["role"].as_str()), (200, Some(true), Some("member")), "{v}");
        let (s, v) = t.accept(b["token"].as_str().unwrap(), BOB).await;
        assert_eq!((s, v["seat"].as_bool()), (200, Some(true)), "{v}");
        let (s, v) = t.accept(c["token"].as_str().unwrap(), CAT).await;
        assert_eq!((s, v["seat"].as_bool()), (200, Some(false)), "{v}");
        assert!(t.snapshot_grants(ANN).await.contains(&"\"org\":\"BUSINESS\"".to_string()));
        assert!(!t.snapshot_grants(CAT).await.contains(&"\"org\":\"BUSINESS\"".to_string()));
        let cat = t.snapshot_org(CAT).await;
        assert_eq!((cat["seat"].as_bool(), cat["role"].as_str()), (Some(false), Some("member")), "{cat}");
        assert_eq!(cat["seats"], json!({"count": 2, "used": 2, "reserved": 0, "available": 0}));
        // Who gave the seat: the one who sent the invite.
        assert_eq!(t.app.ctx.store.seat_by(&org, ANN), (Some(OWNER.to_string()), None));

        // A member sees the plan and their own seat, not the members; cannot invite or seat.
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), CAT, None).await;
        assert_eq!((s, v["seat"].as_bool(), v.get("members").is_none()), (200, Some(false), true), "{v}");
        assert_eq!(t.invite(&org, CAT, EVE, false).await.0, 403);
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/seats"), CAT, Some(json!({"user_id": CAT, "action": "give"}))).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("not_org_admin")), "{v}");
        let (s, _) = t.call(Method::Get, &format!("/v1/orgs/{org}"), EVE, None).await;
        assert_eq!(s, 404, "a stranger does not see the organization");
        // The owner's view lists members with role and seat.
        let (_, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        let seats: Vec<(String, bool)> = v["members"].as_array().unwrap().iter()
            .map(|m| (m["user_id"].as_str().unwrap().to_string(), m["seat"].as_bool().unwrap())).collect();
        assert_eq!(seats, [(OWNER.into(), false), (ANN.into(), true), (BOB.into(), true), (CAT.into(), false)]);

        // Three seats bought: the third member gets one.
        t.stripe(subscription("customer.subscription.updated", &org, 3, t.now.get() + 1)).await;
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/seats"), OWNER, Some(json!({"user_id": CAT, "action": "give"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "{v}");
        assert_eq!(t.snapshot_org(CAT).await["seat"], true);

        // Roles: only the owner changes them; an admin cannot demote or remove the owner.
        let (s, v) = t.call(Method::Patch, &format!("/v1/orgs/{org}/members/{BOB}"), OWNER, Some(json!({"role": "admin"}))).await;
        assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");
        let (s, v) = t.call(Method::Patch, &format!("/v1/orgs/{org}/members/{OWNER}"), BOB, Some(json!({"role": "member"}))).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("owner_only")), "{v}");
        let (s, _) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{OWNER}"), BOB, None).await;
        assert_eq!(s, 403);
        let (s, v) = t.call(Method::Patch, &format!("/v1/orgs/{org}/members/{OWNER}"), OWNER, Some(json!({"role": "admin"}))).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("last_owner")), "{v}");

        // One seat left: the latest seat holders lose theirs (Bob, then Cat), Ann keeps hers.
        t.stripe(subscription("customer.subscription.updated", &org, 1, t.now.get() + 1)).await;
        assert_eq!(t.snapshot_org(ANN).await["seat"], true);
        for u in [BOB, CAT] {
            let m = t.snapshot_org(u).await;
            assert_eq!(m["seat"], false, "{u}: {m}");
            assert!(!t.snapshot_grants(u).await.contains(&"\"org\":\"BUSINESS\"".to_string()), "{u}");
        }
        let lost: Vec<String> = t.app.ctx.store.org_history(&org).iter().filter(|h| h.kind == "seat_lost")
            .map(|h| h.user.clone().unwrap()).collect();
        assert_eq!(lost, [BOB, CAT], "the history says who lost a seat to the smaller count");
        // The seat Cat was given by the owner, taken by nobody: the count dropped.
        assert_eq!(t.app.ctx.store.seat_by(&org, CAT), (Some(OWNER.to_string()), None));

        // Members leave; an admin removes a member; the removed one's seat goes with it.
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{ANN}"), BOB, None).await;
        assert_eq!(s, 200, "{v}");
        let (s, _) = t.call(Method::Get, &format!("/v1/orgs/{org}"), ANN, None).await;
        assert_eq!(s, 404);
        assert_eq!(t.app.ctx.store.seat_by(&org, ANN), (Some(OWNER.to_string()), Some(BOB.to_string())));
        let (s, _) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{CAT}"), CAT, None).await;
        assert_eq!(s, 200);
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{OWNER}"), OWNER, None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("last_owner")));
        let kinds: Vec<String> = t.app.ctx.store.org_history(&org).iter().map(|h| h.kind.clone()).collect();
        for k in ["created", "invited", "invite_accepted", "seat_given", "role_changed", "seat_lost", "member_removed", "member_left", "seat_taken"] {
            assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
        }
    })
}

#[test]
fn invite_tokens_are_single_use_expire_and_belong_to_one_address() {
    block(async {
        let t = T::new();
        let (_, v) = t.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": "Globex"}))).await;
        let org = v["id"].as_str().unwrap().to_string();
        let (_, a) = t.invite(&org, OWNER, ANN, false).await;
        let tok = a["token"].as_str().unwrap();
        assert!(a["accept"].as_str().unwrap().ends_with(&format!("/v1/invites/{tok}/accept")));
        // Another address, then the right one, then again.
        let (s, v) = t.accept(tok, EVE).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("wrong_email")), "{v}");
        let first = t.accept(tok, ANN).await;
        assert_eq!(first.0, 200);
        // The invitee again (a retry): the same acceptance, nothing more written.
        assert_eq!(t.accept(tok, ANN).await, first);
        // Expired.
        let (_, b) = t.invite(&org, OWNER, BOB, false).await;
        t.app.ctx.store.expire_invite(b["id"].as_str().unwrap(), Timestamp(T0));
        let (s, v) = t.accept(b["token"].as_str().unwrap(), BOB).await;
        assert_eq!((s, v["error"]["code"].as_str()), (410, Some("invite_expired")), "{v}");
        // Revoked, by an owner; listed before, not after.
        let (_, c) = t.invite(&org, OWNER, CAT, false).await;
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}/invites"), OWNER, None).await;
        assert_eq!((s, v["invites"].as_array().map(Vec::len)), (200, Some(2)), "{v}");
        let cid = c["id"].as_str().unwrap();
        assert_eq!(t.call(Method::Get, &format!("/v1/orgs/{org}/invites"), ANN, None).await.0, 403);
        assert_eq!(t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{cid}"), ANN, None).await.0, 403);
        assert_eq!(t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{cid}"), OWNER, None).await.0, 200);
        let (s, v) = t.accept(c["token"].as_str().unwrap(), CAT).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("invite_revoked")), "{v}");
        let (_, v) = t.call(Method::Get, &format!("/v1/orgs/{org}/invites"), OWNER, None).await;
        assert_eq!(v["invites"].as_array().unwrap().len(), 1, "only the expired one is still open: {v}");
        // Unknown tokens, bad bodies.
        assert_eq!(t.accept("not-a-token", ANN).await.0, 404);
        for (body, code) in [
            (json!({"email": "nope"}), "invalid_email"),
            (json!({"email": "x@example.com", "role": "owner"}), "invalid_role"),
            (json!({"email": "x@example.com", "seat": "yes"}), "invalid_body"),
            (json!({}), "invalid_body"),
        ] {
            let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/invites"), OWNER, Some(body)).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some(code)), "{v}");
        }
        let (s, v) = t.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": ""}))).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_name")));
        assert_eq!(t.call(Method::Get, "/v1/orgs/not-a-uuid", OWNER, None).await.0, 404);
    })
}

/// Two seated members of one organization count its `max_courses_authored`, each with the
/// key `course-1` (a client-side course id): two uses, neither answered as the other's
/// (which would count nothing and hand one member the other's usage id).
#[test]
fn two_members_keys_are_separate_requests() {
    block(async {
        let t = T::new();
        let (s, v) = t.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": "Acme"}))).await;
        assert_eq!(s, 201, "{v}");
        let org = v["id"].as_str().unwrap().to_string();
        t.stripe(subscription("customer.subscription.created", &org, 2, t.now.get() + 1)).await;
        for who in [ANN, BOB] {
            let (s, inv) = t.invite(&org, OWNER, who, true).await;
            assert_eq!(s, 201, "{inv}");
            let (s, v) = t.accept(inv["token"].as_str().unwrap(), who).await;
            assert_eq!((s, v["seat"].as_bool()), (200, Some(true)), "{v}");
        }
        let body = json!({"feature": "max_courses_authored", "organization_id": org});
        let (s, a) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-1"), Some(body.clone())).await;
        assert_eq!((s, a["replayed"].clone()), (200, json!(false)), "{a}");
        let (s, b) = t.call_with(Method::Post, "/v1/track", BOB, Some("course-1"), Some(body.clone())).await;
        assert_eq!(s, 200, "{b}");
        assert_ne!(b["usage_id"], a["usage_id"], "Bob was handed Ann's use: {b}");
        assert_eq!(b["replayed"], json!(false), "Bob's first use was answered as a replay: {b}");
        // A retry of Ann's is still hers.
        let (s, again) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-1"), Some(body.clone())).await;
        assert_eq!((s, again["replayed"].clone(), again["usage_id"].clone()), (200, json!(true), a["usage_id"].clone()), "{again}");
        let (_, c) = t.call(Method::Post, "/v1/check", ANN, Some(body)).await;
        assert_eq!(c["used"], json!(2), "two courses authored, counted: {c}");
    });
}

/// A removal whose clock reads a second before a seat was given to the member (another
/// isolate's clock): its release folds before the give, so the member is not removed
/// (409 `still_seated`) rather than removed while seated and made a member again by the
/// next fold; sent again, it removes the member and the seat.
#[test]
fn a_removal_behind_a_seat_given_is_refused_until_sent_again() {
    block(async {
        let t = T::new();
        let org = t.subscribed_org(2).await;
        t.join(&org, ANN, false).await;
        let seats = format!("/v1/orgs/{org}/seats");
        let (s, v) = t.call(Method::Post, &seats, OWNER, Some(json!({"user_id": ANN, "action": "give"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "{v}");
        let given = t.now.get();
        let member = format!("/v1/orgs/{org}/members/{ANN}");
        let (s, v) = t.call_at(given - 1, Method::Delete, &member, OWNER, None, None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("still_seated")), "{v}");
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), ANN, None).await;
        assert_eq!(s, 200, "still a member: {v}");
        let (s, v) = t.call(Method::Delete, &member, OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        t.stripe(subscription("customer.subscription.updated", &org, 3, t.now.get() + 1)).await;
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), ANN, None).await;
        assert_eq!(s, 404, "removed for good: {v}");
    });
}

/// A seat given by a request that checked membership just before the member was removed
/// lands after the removal: the fold records the seat but never makes a member; the
/// removed member stays out through later folds, and an owner can free the seat.
#[test]
fn a_seat_folded_after_a_removal_does_not_bring_the_member_back() {
    block(async {
        let t = T::new();
        let org = t.seated_org(2, ANN).await;
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{ANN}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        // The late seat: what a give that read Ann as a member writes after her removal.
        let now = t.tick();
        let late = tollgate::orgs::seat_fact(&org, ANN, true, OWNER, "late-give", Timestamp(now));
        tollgate_worker::webhook::apply_facts(&t.app.ctx, None, vec![late], Timestamp(now)).await.unwrap();
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), ANN, None).await;
        assert_eq!(s, 404, "a folded seat made Ann a member again: {v}");
        t.stripe(subscription("customer.subscription.updated", &org, 3, t.now.get() + 1)).await;
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), ANN, None).await;
        assert_eq!(s, 404, "the next fold made Ann a member again: {v}");
        assert!(t.snapshot_grants(ANN).await.is_empty(), "Ann is given the plan without membership");
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/seats"), OWNER, Some(json!({"user_id": ANN, "action": "take"}))).await;
        assert_eq!(s, 200, "the owner frees the seat: {v}");
        assert!(!t.app.ctx.store.seat_held(&org, ANN).await.unwrap());
    });
}

/// The organization's only seat moved from one member to another (taken, then given) in
/// one second: seats are freed before they are given within a second, so the give is
/// answered with the seat and Bob holds it.
#[test]
fn a_seat_taken_and_given_to_another_member_in_one_second_is_given() {
    block(async {
        let t = T::new();
        let org = t.subscribed_org(1).await;
        for who in [ANN, BOB] {
            t.join(&org, who, false).await;
        }
        let seats = format!("/v1/orgs/{org}/seats");
        let (s, v) = t.call(Method::Post, &seats, OWNER, Some(json!({"user_id": ANN, "action": "give"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "{v}");
        let at = t.tick();
        let (s, v) = t.call_at(at, Method::Post, &seats, OWNER, None, Some(json!({"user_id": ANN, "action": "take"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
        let (s, v) = t.call_at(at, Method::Post, &seats, OWNER, None, Some(json!({"user_id": BOB, "action": "give"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "the free seat goes to Bob: {v}");
        assert!(t.app.ctx.store.seat_held(&org, BOB).await.unwrap());
        assert!(!t.app.ctx.store.seat_held(&org, ANN).await.unwrap());
    });
}

/// A member gives back a course it authored for its organization (a use of a limit without
/// a window): the record is the organization's, the member its actor (as in the SQL store,
/// tests/e2e/track.test.mjs).
#[test]
fn a_member_releases_the_course_it_authored_for_its_organization() {
    block(async {
        let t = T::new();
        let org = t.seated_org(1, ANN).await;
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let id = t.author(ANN, "course-1", &courses).await;
        let (s, r) = t.release(&id, ANN).await;
        assert_eq!((s, r["status"].clone()), (200, json!("released")), "{r}");
        let (_, c) = t.call(Method::Post, "/v1/check", ANN, Some(courses)).await;
        assert_eq!(c["used"], json!(0), "the slot came back: {c}");
    });
}

/// Releasing a use of a limit without a window resolves the limit's alert its level no
/// longer reaches, as the count it went back to says (the checks a counted use applies).
/// Acme's Business plan authors 50 courses; a catalog version alerts at 49 left (the 2nd
/// course): Ann authors two for Acme, the alert opens on Acme, she gives one back, it
/// resolves; a second course again opens it again.
#[test]
fn releasing_a_use_of_a_limit_without_a_window_resolves_its_alert() {
    block(async {
        let t = T::new();
        let mut doc: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("org-seats").unwrap().to_json()).unwrap();
        doc["alerts"] = json!([{"feature": "max_courses_authored", "units_left": [49]}]);
        t.app.ctx.store.push_catalog(doc, true);
        let org = t.seated_org(1, ANN).await;
        let acme = tollgate_worker::state::Subject::Org(org.clone());
        let open = || -> Vec<String> { t.app.ctx.store.alerts_of(&acme).into_iter().filter(|a| a.2).map(|a| a.0).collect() };
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        t.author(ANN, "course-1", &courses).await;
        let second = t.author(ANN, "course-2", &courses).await;
        assert_eq!(open(), vec!["limit:max_courses_authored:49left".to_string()]);
        let (s, r) = t.release(&second, ANN).await;
        assert_eq!((s, r["status"].clone()), (200, json!("released")), "{r}");
        assert!(open().is_empty(), "one course left, 49 to go: the alert resolves: {:?}", open());
        t.author(ANN, "course-3", &courses).await;
        assert_eq!(open(), vec!["limit:max_courses_authored:49left".to_string()], "a new crossing opens it again");
    });
}

/// Only a member holding a seat gives back a use it made for its organization, as only
/// such a member makes one: a use made for an organization changes its count as much
/// released as made. Ann and Bob each author a course for Acme; the owner takes Bob's
/// seat and removes Ann. With their still-valid tokens, each asks to release their course:
/// both are refused 404 `not_found` (as any usage the caller has no standing on: the
/// route's answer for another's usage), and Acme still counts two courses. Given his seat
/// back, Bob releases his.
#[test]
fn only_a_seated_member_gives_back_the_organizations_use_it_made() {
    block(async {
        let t = T::new();
        let org = t.seated_org(2, ANN).await;
        t.join(&org, BOB, true).await;
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let anns = t.author(ANN, "course-1", &courses).await;
        let bobs = t.author(BOB, "course-1", &courses).await;
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/seats"), OWNER, Some(json!({"user_id": BOB, "action": "take"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{ANN}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        // Removed, Ann acts for Acme in nothing: neither a new use nor a release.
        let (s, v) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-2"), Some(courses.clone())).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("not_a_member")), "{v}");
        let (s, r) = t.release(&anns, ANN).await;
        assert_eq!((s, r["error"]["code"].as_str()), (404, Some("not_found")), "a removed member's release: {r}");
        let (s, r) = t.release(&bobs, BOB).await;
        assert_eq!((s, r["error"]["code"].as_str()), (404, Some("not_found")), "an unseated member's release: {r}");
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/seats"), OWNER, Some(json!({"user_id": BOB, "action": "give"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "{v}");
        let (_, c) = t.call(Method::Post, "/v1/check", BOB, Some(courses.clone())).await;
        assert_eq!(c["used"], json!(2), "Acme's two courses are still counted: {c}");
        let (s, r) = t.release(&bobs, BOB).await;
        assert_eq!((s, r["status"].as_str()), (200, Some("released")), "seated again, Bob gives his course back: {r}");
        let (_, c) = t.call(Method::Post, "/v1/check", BOB, Some(courses)).await;
        assert_eq!(c["used"], json!(1), "{c}");
    });
}

/// A member releases a course it made for Acme, the answer is lost, and its seat is taken
/// before it retries: the retry changes nothing and is answered as the release was
/// (`replayed`), as a retried use is; a member removed since still gets 404.
#[test]
fn a_retried_release_is_answered_as_it_was_after_the_seat_is_taken() {
    block(async {
        let t = T::new();
        let org = t.seated_org(3, ANN).await;
        t.join(&org, BOB, true).await;
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let anns = t.author(ANN, "course-1", &courses).await;
        let bobs = t.author(BOB, "course-1", &courses).await;
        for (id, who) in [(&anns, ANN), (&bobs, BOB)] {
            let (s, r) = t.release(id, who).await;
            assert_eq!((s, r["status"].as_str()), (200, Some("released")), "{r}");
        }
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/seats"), OWNER, Some(json!({"user_id": BOB, "action": "take"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
        let (s, r) = t.release(&bobs, BOB).await;
        assert_eq!((s, r["status"].as_str(), r["replayed"].as_bool()), (200, Some("released"), Some(true)), "the unseated member's retry: {r}");
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{ANN}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        let (s, r) = t.release(&anns, ANN).await;
        assert_eq!((s, r["error"]["code"].as_str()), (404, Some("not_found")), "a removed member's retry: {r}");
    });
}

/// A removal, or a seat taken, that lands after the release route read what it reads and
/// before the store settles (another request's, between two store calls) is not passed:
/// the store settles a use made for an organization only while its maker acts for it as
/// the settling itself finds it (the core's `seats::may_settle`, in the store's one call;
/// in SQL `tollgate_release`, tests/e2e/orgs.test.mjs). Ann, Bob and Cat each hold a seat
/// of Acme; Ann and Bob each author a course for it. Ann is removed, then Bob's seat is
/// taken, each just as their release reaches the store: both get 404 `not_found`, as a
/// removed or unseated member does, and Acme still counts both courses.
#[test]
fn a_removal_or_a_seat_taken_just_before_the_settling_is_not_passed() {
    block(async {
        let t = T::new();
        let org = t.seated_org(3, ANN).await;
        t.join(&org, BOB, true).await;
        t.join(&org, CAT, true).await;
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let anns = t.author(ANN, "course-1", &courses).await;
        let bobs = t.author(BOB, "course-1", &courses).await;
        let counted = || async {
            let (s, c) = t.call(Method::Post, "/v1/check", CAT, Some(courses.clone())).await;
            assert_eq!(s, 200, "{c}");
            c["used"].clone()
        };
        assert_eq!(counted().await, json!(2));

        let o = org.clone();
        t.app.ctx.store.before_next_settle(move |store| store.remove_member(&o, ANN));
        let (s, r) = t.release(&anns, ANN).await;
        assert_eq!((s, r["error"]["code"].as_str()), (404, Some("not_found")), "removed as the release was settled: {r}");
        assert_eq!(counted().await, json!(2), "Ann's course is still Acme's");

        let o = org.clone();
        t.app.ctx.store.before_next_settle(move |store| store.free_seat(&o, BOB));
        let (s, r) = t.release(&bobs, BOB).await;
        assert_eq!((s, r["error"]["code"].as_str()), (404, Some("not_found")), "unseated as the release was settled: {r}");
        assert_eq!(counted().await, json!(2), "Bob's course is still Acme's");
    });
}

/// An operator's seat (`POST /v1/admin/seats`) goes only to a member of the organization,
/// as a seat from its owners does: a user never invited is refused 404 `not_a_member`
/// (and is neither seated nor made a member); a member is seated; a seat held by someone
/// who is no longer a member is still taken back.
#[test]
fn an_operators_seat_goes_only_to_a_member() {
    block(async {
        let t = T::new();
        let org = t.seated_org(2, ANN).await;
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), EVE, None).await;
        assert_eq!(s, 404, "Eve is a stranger to Acme: {v}");

        let seat = |user: &str, action: &str| json!({"organization_id": org, "user_id": user, "action": action});
        let (s, v) = t.admin("/v1/admin/seats", seat(EVE, "assign")).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_a_member")), "{v}");
        let (s, view) = t.call(Method::Get, &format!("/v1/orgs/{org}"), EVE, None).await;
        assert_eq!(s, 404, "a refused seat made Eve a member of Acme: {view}");
        assert!(!t.app.ctx.store.seat_held(&org, EVE).await.unwrap());
        let (s, v) = t.admin("/v1/admin/seats", json!({"organization_id": "00000000-0000-4000-8000-0000000000ff", "user_id": EVE})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("unknown_organization")), "{v}");

        // A member: seated by the operator, and released.
        t.join(&org, BOB, false).await;
        let (s, v) = t.admin("/v1/admin/seats", seat(BOB, "assign")).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("seated")), "{v}");
        let (s, v) = t.admin("/v1/admin/seats", seat(BOB, "release")).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("released")), "{v}");
        // Releasing asks no membership: an operator frees any seat the book holds.
        let (s, v) = t.admin("/v1/admin/seats", seat(EVE, "release")).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("released")), "{v}");
    });
}

/// A member whose seat was taken after it counted a use retries that use (its first answer
/// lost): the retry is answered as that use (`replayed`, the same `usage_id`, nothing
/// counted again), while a new use and a check are refused 403 `no_seat`.
#[test]
fn a_retry_of_a_counted_use_is_answered_as_that_use_after_the_seat_is_taken() {
    block(async {
        let t = T::new();
        let org = t.seated_org(1, ANN).await;
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let (s, first) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-1"), Some(courses.clone())).await;
        assert_eq!((s, first["replayed"].clone()), (200, json!(false)), "{first}");
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/seats"), OWNER, Some(json!({"user_id": ANN, "action": "take"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");

        let (s, again) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-1"), Some(courses.clone())).await;
        assert_eq!((s, again["replayed"].clone(), again["usage_id"].clone()), (200, json!(true), first["usage_id"].clone()), "{again}");
        assert_eq!(again["used"], first["used"], "nothing counted again: {again}");
        let (s, new) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-2"), Some(courses.clone())).await;
        assert_eq!((s, new["error"]["code"].as_str()), (403, Some("no_seat")), "{new}");
        let (s, c) = t.call(Method::Post, "/v1/check", ANN, Some(courses.clone())).await;
        assert_eq!((s, c["error"]["code"].as_str()), (403, Some("no_seat")), "{c}");
        // Another request under the first use's key is still a reused key.
        let other = json!({"feature": "max_courses_authored", "organization_id": org, "quantity": 2});
        let (s, r) = t.call_with(Method::Post, "/v1/track", ANN, Some("course-1"), Some(other)).await;
        assert_eq!((s, r["error"]["code"].as_str()), (409, Some("key_reused")), "{r}");
    });
}

/// A seated member's own use of a limit (no `organization_id`) is decided by its own plan
/// (none: the FREE tier's one course) on its own counter; the organization's Business
/// courses count only on the organization's counter, never once more per member. A
/// capability the seat lends stays the member's without `organization_id`.
#[test]
fn a_members_own_use_of_a_limit_is_decided_by_its_own_plan() {
    block(async {
        let t = T::new();
        let org = t.seated_org(2, ANN).await;

        let for_org = json!({"feature": "max_courses_authored", "organization_id": org});
        let (s, c) = t.call(Method::Post, "/v1/check", ANN, Some(for_org)).await;
        assert_eq!((s, c["tier"].clone(), c["limit"].clone()), (200, json!("BUSINESS"), json!(50)), "{c}");
        let own = json!({"feature": "max_courses_authored"});
        let (s, c) = t.call(Method::Post, "/v1/check", ANN, Some(own.clone())).await;
        assert_eq!((s, c["tier"].clone(), c["limit"].clone()), (200, json!("FREE"), json!(1)), "{c}");
        let (s, _) = t.call_with(Method::Post, "/v1/track", ANN, Some("own-1"), Some(own.clone())).await;
        assert_eq!(s, 200);
        let (s, v) = t.call_with(Method::Post, "/v1/track", ANN, Some("own-2"), Some(own)).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("limit_reached")), "{v}");
        // The seat still lends the organization's capabilities.
        let (s, c) = t.call(Method::Post, "/v1/check", ANN, Some(json!({"feature": "advanced_analytics"}))).await;
        assert_eq!((s, c["allowed"].clone()), (200, json!(true)), "{c}");

        // The app deciding offline from the member's verified snapshot (which carries the
        // organization's grants, lent through the seat) answers as the worker did: its own
        // limit at its own plan, the lent capability held.
        let (s, v) = t.call(Method::Get, "/v1/entitlements", ANN, None).await;
        assert_eq!(s, 200, "{v}");
        let now = Timestamp(t.now.get());
        let key = tollgate::snapshot::parse_public_key(v["public_key"].as_str().unwrap()).unwrap();
        let snap = tollgate::snapshot::verify(v["token"].as_str().unwrap(), &[(v["kid"].as_str().unwrap(), key)], now).unwrap();
        assert!(snap.grants.iter().any(|g| g.lent_by_seat() && g.tier == "BUSINESS"), "{:?}", snap.grants);
        let active = t.app.ctx.catalog();
        let catalog = snap.catalog(&active);
        let ents = snap.entitlements(&catalog).unwrap();
        let own = tollgate::meter::check_feature(&catalog, &ents, "max_courses_authored", 1, 1, now).unwrap();
        assert_eq!((own.allowed, own.tier.as_deref(), own.limit), (false, Some("FREE"), tollgate::meter::Remaining::Count(1)), "{own:?}");
        let limit = tollgate::decide::limit(&catalog, &ents, "max_courses_authored", now).unwrap();
        assert_eq!(limit.tier.as_deref(), Some("FREE"));
        assert!(tollgate::decide::can(&catalog, &ents, "advanced_analytics", now).unwrap().allowed);
    });
}
