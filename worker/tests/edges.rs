//! The worker's HTTP edges (native, on the in-memory store or on the Supabase store over a
//! scripted transport): revoking an accepted or revoked invite, an acceptance retried after
//! a store failure, a non-string field never taken for its default, no store internals in
//! the public catalog route's error, upper-case ids as the same subject.

mod common;

use std::cell::Cell;

use serde_json::{json, Value};

use common::{block, CallGate, Gated, NoNetwork, ANN, BOB, OWNER};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::{Store, StoreError};

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

use common::email_of as email;

fn token(uid: &str, now: i64) -> String {
    common::token_with_email(uid, ISSUER, now)
}

// ------------------------------------------------------------------ a store that fails on demand

/// The in-memory store, except that the next `fail_folds` writes of a fold
/// (`tollgate_apply_fold`) fail as PostgREST does when the database is briefly
/// unreachable (503): nothing of that fold is written.
type Flaky = Gated<FailFolds>;

#[derive(Default)]
struct FailFolds {
    fail_folds: Cell<u32>,
}

impl CallGate for FailFolds {
    fn before(&self, call: &'static str) -> Result<(), StoreError> {
        if call == "apply_fold" && self.fail_folds.get() > 0 {
            self.fail_folds.set(self.fail_folds.get() - 1);
            return Err(StoreError::Unavailable("503 PGRST000 could not connect to the database".into()));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ an organization harness

/// The Org Seats app's worker on `store`, its users known with their emails; every
/// request one second after the last.
struct Orgs<S: Store> {
    app: App<NoNetwork, S>,
    now: Cell<i64>,
}

impl<S: Store> Orgs<S> {
    fn new(store: S) -> Orgs<S> {
        let mut config = common::config("http://127.0.0.1:1", "svc", "org-seats");
        config.snapshot_secret = Some([7u8; 32]);
        Orgs { app: App::with_store(config, NoNetwork, store).expect("app"), now: Cell::new(T0) }
    }

    fn tick(&self) -> i64 {
        self.now.set(self.now.get() + 1);
        self.now.get()
    }

    async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        let now = self.tick();
        let h = Headers::new().with("authorization", format!("Bearer {}", token(uid, now)));
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = InRequest { method, path: path.into(), query: String::new(), headers: h, body };
        let r = self.app.handle(req, Timestamp(now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    /// A Stripe event, correctly signed, delivered at the next tick.
    async fn stripe(&self, event: Value) {
        let now = self.tick();
        common::stripe_taken(&self.app, &event, now).await;
    }

    /// A new organization owned by OWNER, on a `seats`-seat Business plan (Stripe).
    async fn org_with_seats(&self, seats: u32) -> String {
        let (s, v) = self.call(Method::Post, "/v1/orgs", OWNER, Some(json!({"name": "Acme"}))).await;
        assert_eq!(s, 201, "{v}");
        let org = v["id"].as_str().unwrap().to_string();
        let at = self.now.get() + 1;
        self.stripe(json!({"id": format!("evt_sub_{at}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
            "type": "customer.subscription.created", "livemode": false, "data": {"object": {
            "id": "sub_org1", "object": "subscription", "customer": "cus_org1", "status": "active",
            "cancel_at_period_end": false, "start_date": T0, "created": T0,
            "metadata": {"organization_id": org, "offer_key": "ORG_BUSINESS_MONTHLY"},
            "items": {"object": "list", "data": [{"id": "si_org1", "object": "subscription_item", "quantity": seats,
                "price": {"id": "price_org_business", "object": "price", "lookup_key": "ORG_BUSINESS_MONTHLY", "metadata": {}},
                "current_period_start": T0, "current_period_end": T0 + 30 * DAY}]}}}}))
        .await;
        org
    }

    async fn invite(&self, org: &str, who: &str, seat: bool) -> Value {
        let (s, v) = self
            .call(Method::Post, &format!("/v1/orgs/{org}/invites"), OWNER, Some(json!({"email": email(who), "role": "member", "seat": seat})))
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }
}

fn memory_orgs() -> Orgs<MemoryStore> {
    let store = MemoryStore::new();
    for u in [OWNER, ANN, BOB] {
        store.add_user_with_email(u, &email(u));
    }
    Orgs::new(store)
}

// ------------------------------------------------------------------ revoking an accepted invite

/// Revoking an accepted invite is 409 `invite_used`; revoking one twice answers the same
/// both times (the organization lists open invites only: the invite is read by its id).
#[test]
fn revoking_an_accepted_or_revoked_invite_is_not_answered_as_unknown() {
    block(async {
        let t = memory_orgs();
        let org = t.org_with_seats(2).await;
        let a = t.invite(&org, ANN, false).await;
        let (s, v) = t.call(Method::Post, &format!("/v1/invites/{}/accept", a["token"].as_str().unwrap()), ANN, None).await;
        assert_eq!(s, 200, "{v}");
        let accepted = a["id"].as_str().unwrap();
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{accepted}"), OWNER, None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("invite_used")), "an accepted invite: {v}");

        let b = t.invite(&org, BOB, false).await;
        let bid = b["id"].as_str().unwrap();
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{bid}"), OWNER, None).await;
        assert_eq!(s, 200, "the first revoke: {v}");
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{bid}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "a second revoke answers as the first: {v}");
    })
}

// ------------------------------------------------------------------ accept, half written

/// Accepting an invite that reserved a seat writes the membership, then gives the seat: a
/// store failure between the two is answered 5xx, and the invitee's retry is answered as
/// the acceptance, with the seat given then.
#[test]
fn an_accept_retried_after_a_store_failure_still_gives_the_reserved_seat() {
    block(async {
        let store = Flaky::default();
        for u in [OWNER, ANN, BOB] {
            store.inner.add_user_with_email(u, &email(u));
        }
        let t = Orgs::new(store);
        let org = t.org_with_seats(2).await;
        let a = t.invite(&org, ANN, true).await;
        let path = format!("/v1/invites/{}/accept", a["token"].as_str().unwrap());
        t.app.ctx.store.fail_folds.set(1);
        let (s, v) = t.call(Method::Post, &path, ANN, None).await;
        assert!(s >= 500, "the store failed: the caller is told to retry: {s} {v}");
        // The retry, with the store back.
        let (s, v) = t.call(Method::Post, &path, ANN, None).await;
        let held = t.app.ctx.store.seat_held(&org, ANN).await.unwrap();
        assert_eq!((s, v["seat"].as_bool(), held), (200, Some(true), true), "the retry must give the reserved seat: {v}");
    })
}

// ------------------------------------------------------------------ invite role of the wrong type

/// An invite's `role` that is not a string (`true`, `1`, a list) is 400 `invalid_role` and
/// stores nothing: it is never taken for the default role.
#[test]
fn an_invite_with_a_role_that_is_not_a_string_is_refused() {
    block(async {
        let t = memory_orgs();
        let org = t.org_with_seats(2).await;
        for role in [json!(true), json!(1), json!(["admin"]), json!({"name": "admin"})] {
            let (s, v) = t
                .call(Method::Post, &format!("/v1/orgs/{org}/invites"), OWNER, Some(json!({"email": email(ANN), "role": role})))
                .await;
            assert!(
                s == 400 && matches!(v["error"]["code"].as_str(), Some("invalid_role" | "invalid_body")),
                "role {role}: {s} {v}"
            );
        }
        assert!(t.app.ctx.store.invites(&org).is_empty(), "nothing stored: {:?}", t.app.ctx.store.invites(&org));
    })
}

// ------------------------------------------------------------------ store internals to anonymous callers

/// A PostgREST that answers every call with a database error naming its tables.
#[derive(Clone, Default)]
struct BrokenPostgrest;
impl Transport for BrokenPostgrest {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        Ok(OutResponse {
            status: 500,
            headers: Headers::new().with("content-type", "application/json"),
            body: json!({"code": "42P01", "details": null, "hint": null,
                         "message": "relation \"public.tollgate_catalogs\" does not exist"})
            .to_string()
            .into_bytes(),
        })
    }
}

/// `GET /v1/catalog` answers anyone: when the store cannot give the catalog, its 503 says
/// so without the store's error (that goes to the worker's log).
#[test]
fn the_public_catalog_route_does_not_leak_store_internals() {
    block(async {
        let config = common::config("http://127.0.0.1:54321", "svc", "vcm-suite");
        let app = App::new(config, BrokenPostgrest).expect("app");
        let req = InRequest { method: Method::Get, path: "/v1/catalog".into(), query: String::new(), headers: Headers::new(), body: vec![] };
        let r = app.handle(req, Timestamp(T0)).await;
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!((r.status, r.body_json()["error"]["code"].as_str()), (503, Some("catalog_unavailable")), "{body}");
        for internal in ["tollgate_catalogs", "42P01", "relation", "store unavailable"] {
            assert!(!body.contains(internal), "an anonymous caller is shown `{internal}`: {body}");
        }
    })
}

// ------------------------------------------------------------------ upper-case ids

/// An admin credit to a user named in upper case is the user's (the store writes ids in
/// lower case): not 404, not a second subject.
#[test]
fn an_upper_case_user_id_names_the_same_subject() {
    block(async {
        const CAROL: &str = "abcdef00-0000-4000-8000-00000000000c";
        let store = MemoryStore::new();
        store.add_user(CAROL);
        let app = App::with_store(common::config("http://127.0.0.1:1", "svc", "video-studio"), common::NoNetwork, store).unwrap();
        let h = Headers::new().with("authorization", format!("Bearer {}", common::ADMIN_SECRET));
        let body = json!({"user_id": CAROL.to_ascii_uppercase(), "credits": [{"pool": "video_seconds", "amount": 60, "id": "c1"}]});
        let (s, v) = common::call(&app, Method::Post, "/v1/admin/grants", h, &body, T0).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(app.ctx.store.balance(&Subject::user(CAROL), "video_seconds"), 60);
    })
}
