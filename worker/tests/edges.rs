//! The worker's HTTP edges (native, on the in-memory store or on the Supabase store over a
//! scripted transport): revoking an accepted or revoked invite, an acceptance retried after
//! a store failure, a non-string field never taken for its default, no store internals in
//! the public catalog route's error, upper-case ids as the same subject.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;

use serde_json::{json, Value};

use common::{block, hmac, NoNetwork, STRIPE_SECRET};
use tollgate::alerts::{AlertCheck, OpenAlert};
use tollgate::charge::Charge;
use tollgate::checkout::Account;
use tollgate::meter::{Count, OverageChoice};
use tollgate::orgs::{Invite, OrgMembership};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::{Subject, SubjectState};
use tollgate_worker::store::{
    AlertsApplied, AttemptRecord, CatalogVersion, ChargeAnswer, Charged, Counted, Delivery, DueMessage, ExpiredHold,
    FoldApplied, FoldInput, FoldWrite, KeptEvent, Lapsed, OrgChange, OrgRead, SettleAnswer, SettledUse, Store, StoreError,
    StoredCatalog,
};

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const OWNER: &str = "00000000-0000-4000-8000-000000000001";
const ANN: &str = "00000000-0000-4000-8000-000000000002";
const BOB: &str = "00000000-0000-4000-8000-000000000003";

use common::email_of as email;

fn token(uid: &str, now: i64) -> String {
    common::token_with_email(uid, ISSUER, now)
}

// ------------------------------------------------------------------ a store that fails on demand

/// The in-memory store, except that the next `fail_folds` writes of a fold
/// (`tollgate_apply_fold`) fail as PostgREST does when the database is briefly
/// unreachable (503): nothing of that fold is written.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    fail_folds: Cell<u32>,
}

impl Store for Flaky {
    fn requests(&self) -> u64 {
        self.inner.requests()
    }
    async fn active_catalog(&self, id: &str) -> Result<Option<StoredCatalog>, StoreError> {
        self.inner.active_catalog(id).await
    }
    async fn active_catalog_version(&self, id: &str) -> Result<Option<CatalogVersion>, StoreError> {
        self.inner.active_catalog_version(id).await
    }
    async fn catalog_version(&self, id: &str, version: u32) -> Result<Option<StoredCatalog>, StoreError> {
        self.inner.catalog_version(id, version).await
    }
    async fn subject_state(&self, subject: &Subject, ledger_key: Option<&str>) -> Result<SubjectState, StoreError> {
        self.inner.subject_state(subject, ledger_key).await
    }
    async fn gate_state(
        &self,
        subject: &Subject,
        counter: Option<(&Subject, &str)>,
    ) -> Result<(SubjectState, Option<(Timestamp, u64)>), StoreError> {
        self.inner.gate_state(subject, counter).await
    }
    async fn subject_exists(&self, subject: &Subject) -> Result<bool, StoreError> {
        self.inner.subject_exists(subject).await
    }
    async fn charge(&self, subject: &Subject, charge: &Charge, stamp: Option<&str>, period: Timestamp) -> Result<ChargeAnswer, StoreError> {
        self.inner.charge(subject, charge, stamp, period).await
    }
    async fn usage_by_day(&self, subject: &Subject, feature: &str, from: Timestamp, to: Timestamp) -> Result<Value, StoreError> {
        self.inner.usage_by_day(subject, feature, from, to).await
    }
    async fn usage_owner(&self, caller: &Subject, usage_id: &str) -> Result<Option<SettledUse>, StoreError> {
        self.inner.usage_owner(caller, usage_id).await
    }
    async fn settle(
        &self,
        subject: &Subject,
        usage_id: &str,
        release: bool,
        now: Timestamp,
        used: Option<SettledUse>,
    ) -> Result<SettleAnswer, StoreError> {
        self.inner.settle(subject, usage_id, release, now, used).await
    }
    async fn expired_holds(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<ExpiredHold>, StoreError> {
        self.inner.expired_holds(now, after, limit).await
    }
    async fn set_preferences(&self, subject: &Subject, choice: &OverageChoice) -> Result<(), StoreError> {
        Store::set_preferences(&self.inner, subject, choice).await
    }
    async fn counter(&self, subject: &Subject, limit: &str, window_start: Timestamp) -> Result<u64, StoreError> {
        self.inner.counter(subject, limit, window_start).await
    }
    async fn track_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Counted>, StoreError> {
        self.inner.track_replay(subject, request_id, request_hash).await
    }
    async fn track(&self, subject: &Subject, count: &Count) -> Result<Counted, StoreError> {
        self.inner.track(subject, count).await
    }
    async fn charge_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Charged>, StoreError> {
        self.inner.charge_replay(subject, request_id, request_hash).await
    }
    async fn fold_input(&self, refs: &BTreeSet<String>) -> Result<FoldInput, StoreError> {
        self.inner.fold_input(refs).await
    }
    async fn apply_fold(&self, fold: &FoldWrite<'_>) -> Result<FoldApplied, StoreError> {
        if self.fail_folds.get() > 0 {
            self.fail_folds.set(self.fail_folds.get() - 1);
            return Err(StoreError::Unavailable("503 PGRST000 could not connect to the database".into()));
        }
        self.inner.apply_fold(fold).await
    }
    async fn keep_delivery(&self, event: &Delivery, reason: &str) -> Result<bool, StoreError> {
        self.inner.keep_delivery(event, reason).await
    }
    async fn pending_attempt(&self, provider: &str, event_id: &str, error: &str) -> Result<(), StoreError> {
        self.inner.pending_attempt(provider, event_id, error).await
    }
    async fn kept_events(&self, provider: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<KeptEvent>, StoreError> {
        self.inner.kept_events(provider, after, limit).await
    }
    async fn kept_to_retry(&self, after: Option<&str>, limit: u32) -> Result<Vec<(String, KeptEvent)>, StoreError> {
        self.inner.kept_to_retry(after, limit).await
    }
    async fn kept_event(&self, provider: &str, event_id: &str) -> Result<Option<KeptEvent>, StoreError> {
        self.inner.kept_event(provider, event_id).await
    }
    async fn lapsed(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<Lapsed>, StoreError> {
        self.inner.lapsed(now, after, limit).await
    }
    async fn failed_payments(&self, open: Option<bool>, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.inner.failed_payments(open, after, limit).await
    }
    async fn failed_payments_due(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.inner.failed_payments_due(from, to, after, limit).await
    }
    async fn trials(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.inner.trials(from, to, after, limit).await
    }
    async fn record_alerts(&self, subject: &Subject, checks: &[AlertCheck], at: Timestamp) -> Result<AlertsApplied, StoreError> {
        self.inner.record_alerts(subject, checks, at).await
    }
    async fn open_windowed_alerts(&self, now: Timestamp, limit: u32) -> Result<Vec<(Subject, OpenAlert)>, StoreError> {
        self.inner.open_windowed_alerts(now, limit).await
    }
    async fn outbox_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueMessage>, StoreError> {
        self.inner.outbox_due(now, limit).await
    }
    async fn outbox_attempt(&self, message: i64, attempt: &AttemptRecord) -> Result<(), StoreError> {
        self.inner.outbox_attempt(message, attempt).await
    }
    async fn create_endpoint(&self, url: &str, events: &[String]) -> Result<Value, StoreError> {
        self.inner.create_endpoint(url, events).await
    }
    async fn endpoints(&self) -> Result<Value, StoreError> {
        self.inner.endpoints().await
    }
    async fn set_endpoint(&self, id: &str, enabled: bool, at: Timestamp) -> Result<Option<Value>, StoreError> {
        self.inner.set_endpoint(id, enabled, at).await
    }
    async fn seat_held(&self, org: &str, user: &str) -> Result<bool, StoreError> {
        self.inner.seat_held(org, user).await
    }
    async fn org(&self, org: &str) -> Result<Option<OrgRead>, StoreError> {
        self.inner.org(org).await
    }
    async fn invite(&self, token_digest: &str) -> Result<Option<(Invite, Option<OrgRead>)>, StoreError> {
        self.inner.invite(token_digest).await
    }
    async fn org_invite(&self, org: &str, invite: &str) -> Result<Option<Invite>, StoreError> {
        self.inner.org_invite(org, invite).await
    }
    async fn org_change(&self, change: &OrgChange) -> Result<Value, StoreError> {
        self.inner.org_change(change).await
    }
    async fn user_organizations(&self, user: &str, now: Timestamp) -> Result<Vec<OrgMembership>, StoreError> {
        self.inner.user_organizations(user, now).await
    }
    async fn account(&self, subject: &Subject, caller: &str) -> Result<Option<Account>, StoreError> {
        self.inner.account(subject, caller).await
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
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{payload}")));
        let h = Headers::new().with("stripe-signature", format!("t={now},v1={sig}"));
        let req = InRequest { method: Method::Post, path: "/webhooks/stripe".into(), query: String::new(), headers: h, body: payload.into_bytes() };
        let r = self.app.handle(req, Timestamp(now)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
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
