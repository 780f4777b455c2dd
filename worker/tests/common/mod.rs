//! What the worker's native tests share: a configuration, signed user tokens, a
//! transport that refuses every outgoing request (the in-memory store needs none),
//! requests to the app (raw, JSON, a signed Stripe event), and the in-memory store behind
//! a gate that may fail any of its calls ([`Gated`]).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use tollgate::alerts::{AlertCheck, OpenAlert};
use tollgate::charge::Charge;
use tollgate::checkout::Account;
use tollgate::meter::{Count, OverageChoice};
use tollgate::orgs::{Invite, OrgMembership};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{AppResponse, Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::{Subject, SubjectState};
use tollgate_worker::store::{
    AlertsApplied, AttemptRecord, CatalogVersion, ChargeAnswer, Charged, Counted, Delivery, DueMessage, ExpiredHold,
    FoldApplied, FoldInput, FoldWrite, KeptEvent, Lapsed, OrgChange, OrgRead, SettleAnswer, SettledUse, Store, StoreError,
    StoredCatalog,
};

pub const JWT_SECRET: &str = "model-test-jwt-secret-with-at-least-32-characters";
pub const STRIPE_SECRET: &str = "whsec_model_test_0123456789abcdef";
pub const ADMIN_SECRET: &str = "model-admin-secret";

/// The users of the organization tests (orgs.rs, orgs_adversarial.rs, edges.rs): an
/// organization's owner and the people it invites.
pub const OWNER: &str = "00000000-0000-4000-8000-000000000001";
pub const ANN: &str = "00000000-0000-4000-8000-000000000002";
pub const BOB: &str = "00000000-0000-4000-8000-000000000003";
pub const CAT: &str = "00000000-0000-4000-8000-000000000004";
pub const EVE: &str = "00000000-0000-4000-8000-000000000005";

#[derive(Clone, Default)]
pub struct NoNetwork;
impl Transport for NoNetwork {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        Err(TransportError("no network in this test".into()))
    }
}

/// Workers Paid's subrequest limit: what tests of a run's paging through more rows than
/// Workers Free's 50 requests reach give the app (`SUBREQUESTS`).
pub const PAID: u64 = 10_000;

pub fn config(rest_url: &str, service_key: &str, catalog: &str) -> Config {
    let vars: BTreeMap<&str, String> = [
        ("SUPABASE_URL", rest_url.to_string()),
        ("SUPABASE_SERVICE_ROLE_KEY", service_key.to_string()),
        ("SUPABASE_JWT_SECRET", JWT_SECRET.to_string()),
        ("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET.to_string()),
        ("ADMIN_SECRET", ADMIN_SECRET.to_string()),
        ("CATALOG", catalog.to_string()),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(|k| vars.get(k).cloned()).expect("config")
}

pub fn b64(x: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x)
}

pub fn hmac(secret: &str, msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

pub fn user_token(uid: &str, issuer: &str, now: i64) -> String {
    signed_token(json!({"sub": uid, "role": "authenticated", "aud": "authenticated", "iss": issuer, "exp": now + 3600}))
}

/// A test user's address: the last character of its id `@example.com`.
pub fn email_of(uid: &str) -> String {
    format!("{}@example.com", &uid[uid.len() - 1..])
}

/// [`user_token`] carrying the user's email ([`email_of`]), as Supabase Auth issues it.
pub fn token_with_email(uid: &str, issuer: &str, now: i64) -> String {
    signed_token(json!({"sub": uid, "role": "authenticated", "aud": "authenticated", "iss": issuer,
                        "exp": now + 3600, "email": email_of(uid)}))
}

fn signed_token(claims: Value) -> String {
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(claims.to_string().as_bytes());
    let sig = b64(&hmac(JWT_SECRET, &format!("{head}.{body}")));
    format!("{head}.{body}.{sig}")
}

/// Runs `f` to completion on a current-thread runtime (one per test).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// `method path` with `headers` and a JSON `body` to `app` at `now`: the status and the JSON
/// answer (null when it is not JSON).
pub async fn call<T: Transport, S: Store>(
    app: &App<T, S>,
    method: Method,
    path: &str,
    headers: Headers,
    body: &serde_json::Value,
    now: i64,
) -> (u16, serde_json::Value) {
    let req = InRequest { method, path: path.into(), query: String::new(), headers, body: body.to_string().into_bytes() };
    let r = app.handle(req, Timestamp(now)).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null))
}

/// Delivers a Stripe event to `app` at `now`, signed with [`STRIPE_SECRET`]: the status and
/// the JSON answer.
pub async fn stripe<T: Transport>(app: &App<T, MemoryStore>, ev: &serde_json::Value, now: i64) -> (u16, serde_json::Value) {
    call(app, Method::Post, "/webhooks/stripe", stripe_headers(ev, now), ev, now).await
}

/// The `stripe-signature` header of `ev` sent at `now`, signed with [`STRIPE_SECRET`].
pub fn stripe_headers(ev: &Value, now: i64) -> Headers {
    let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{ev}")));
    Headers::new().with("stripe-signature", format!("t={now},v1={sig}"))
}

/// Delivers a Stripe event to `app` (on any store) at `now`, signed with
/// [`STRIPE_SECRET`], and asserts it is taken (200).
pub async fn stripe_taken<T: Transport, S: Store>(app: &App<T, S>, ev: &Value, now: i64) {
    let r = raw(app, Method::Post, "/webhooks/stripe", stripe_headers(ev, now), ev.to_string().as_bytes(), now).await;
    assert_eq!(r.status, 200, "{}", text(&r));
}

/// `method path` (its query after a `?`) with `headers` and the bytes `body` to `app` at
/// `now`: the whole response.
pub async fn raw<T: Transport, S: Store>(
    app: &App<T, S>,
    method: Method,
    path: &str,
    headers: Headers,
    body: &[u8],
    now: i64,
) -> AppResponse {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path.to_string(), String::new()),
    };
    app.handle(InRequest { method, path, query, headers, body: body.to_vec() }, Timestamp(now)).await
}

/// A response's body as text (lossy), for a failure's message.
pub fn text(r: &AppResponse) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}


// ------------------------------------------------------------------ a store that fails on demand

/// What a [`Gated`] store asks before each of its calls, by the call's name
/// (`apply_fold`, `trials`, ...): an error fails the call before anything of it is done.
pub trait CallGate {
    fn before(&self, call: &'static str) -> Result<(), StoreError>;
    /// The calls failed here that count as requests sent all the same ([`Store::requests`]).
    fn failed(&self) -> u64 {
        0
    }
}

/// The in-memory store behind `gate`, which may fail any of its calls. It reads as its
/// gate (`Deref`), so a test sets the gate's knobs on the store the app holds.
#[derive(Default)]
pub struct Gated<G> {
    pub inner: MemoryStore,
    pub gate: G,
}

impl<G> std::ops::Deref for Gated<G> {
    type Target = G;
    fn deref(&self) -> &G {
        &self.gate
    }
}

impl<G: CallGate> Store for Gated<G> {
    fn requests(&self) -> u64 {
        self.inner.requests() + self.gate.failed()
    }
    async fn active_catalog(&self, id: &str) -> Result<Option<StoredCatalog>, StoreError> {
        self.gate.before("active_catalog")?;
        self.inner.active_catalog(id).await
    }
    async fn active_catalog_version(&self, id: &str) -> Result<Option<CatalogVersion>, StoreError> {
        self.gate.before("active_catalog_version")?;
        self.inner.active_catalog_version(id).await
    }
    async fn catalog_version(&self, id: &str, version: u32) -> Result<Option<StoredCatalog>, StoreError> {
        self.gate.before("catalog_version")?;
        self.inner.catalog_version(id, version).await
    }
    async fn subject_state(&self, subject: &Subject, ledger_key: Option<&str>) -> Result<SubjectState, StoreError> {
        self.gate.before("subject_state")?;
        self.inner.subject_state(subject, ledger_key).await
    }
    async fn gate_state(
        &self,
        subject: &Subject,
        counter: Option<(&Subject, &str)>,
    ) -> Result<(SubjectState, Option<(Timestamp, u64)>), StoreError> {
        self.gate.before("gate_state")?;
        self.inner.gate_state(subject, counter).await
    }
    async fn subject_exists(&self, subject: &Subject) -> Result<bool, StoreError> {
        self.gate.before("subject_exists")?;
        self.inner.subject_exists(subject).await
    }
    async fn charge(&self, subject: &Subject, charge: &Charge, stamp: Option<&str>, period: Timestamp) -> Result<ChargeAnswer, StoreError> {
        self.gate.before("charge")?;
        self.inner.charge(subject, charge, stamp, period).await
    }
    async fn usage_by_day(&self, subject: &Subject, feature: &str, from: Timestamp, to: Timestamp) -> Result<Value, StoreError> {
        self.gate.before("usage_by_day")?;
        self.inner.usage_by_day(subject, feature, from, to).await
    }
    async fn usage_owner(&self, caller: &Subject, usage_id: &str) -> Result<Option<SettledUse>, StoreError> {
        self.gate.before("usage_owner")?;
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
        self.gate.before("settle")?;
        self.inner.settle(subject, usage_id, release, now, used).await
    }
    async fn expired_holds(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<ExpiredHold>, StoreError> {
        self.gate.before("expired_holds")?;
        self.inner.expired_holds(now, after, limit).await
    }
    async fn set_preferences(&self, subject: &Subject, choice: &OverageChoice) -> Result<i64, StoreError> {
        self.gate.before("set_preferences")?;
        Store::set_preferences(&self.inner, subject, choice).await
    }
    async fn counter(&self, subject: &Subject, limit: &str, window_start: Timestamp) -> Result<u64, StoreError> {
        self.gate.before("counter")?;
        self.inner.counter(subject, limit, window_start).await
    }
    async fn track_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Counted>, StoreError> {
        self.gate.before("track_replay")?;
        self.inner.track_replay(subject, request_id, request_hash).await
    }
    async fn track(&self, subject: &Subject, count: &Count) -> Result<Counted, StoreError> {
        self.gate.before("track")?;
        self.inner.track(subject, count).await
    }
    async fn charge_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Charged>, StoreError> {
        self.gate.before("charge_replay")?;
        self.inner.charge_replay(subject, request_id, request_hash).await
    }
    async fn fold_input(&self, refs: &BTreeSet<String>) -> Result<FoldInput, StoreError> {
        self.gate.before("fold_input")?;
        self.inner.fold_input(refs).await
    }
    async fn apply_fold(&self, fold: &FoldWrite<'_>) -> Result<FoldApplied, StoreError> {
        self.gate.before("apply_fold")?;
        self.inner.apply_fold(fold).await
    }
    async fn keep_delivery(&self, event: &Delivery, reason: &str) -> Result<bool, StoreError> {
        self.gate.before("keep_delivery")?;
        self.inner.keep_delivery(event, reason).await
    }
    async fn pending_attempt(&self, provider: &str, event_id: &str, error: &str) -> Result<(), StoreError> {
        self.gate.before("pending_attempt")?;
        self.inner.pending_attempt(provider, event_id, error).await
    }
    async fn kept_events(&self, provider: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<KeptEvent>, StoreError> {
        self.gate.before("kept_events")?;
        self.inner.kept_events(provider, after, limit).await
    }
    async fn kept_to_retry(&self, after: Option<&str>, limit: u32) -> Result<Vec<(String, KeptEvent)>, StoreError> {
        self.gate.before("kept_to_retry")?;
        self.inner.kept_to_retry(after, limit).await
    }
    async fn kept_event(&self, provider: &str, event_id: &str) -> Result<Option<KeptEvent>, StoreError> {
        self.gate.before("kept_event")?;
        self.inner.kept_event(provider, event_id).await
    }
    async fn lapsed(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<Lapsed>, StoreError> {
        self.gate.before("lapsed")?;
        self.inner.lapsed(now, after, limit).await
    }
    async fn failed_payments(&self, open: Option<bool>, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.gate.before("failed_payments")?;
        self.inner.failed_payments(open, after, limit).await
    }
    async fn failed_payments_due(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.gate.before("failed_payments_due")?;
        self.inner.failed_payments_due(from, to, after, limit).await
    }
    async fn trials(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.gate.before("trials")?;
        self.inner.trials(from, to, after, limit).await
    }
    async fn record_alerts(&self, subject: &Subject, checks: &[AlertCheck], at: Timestamp) -> Result<AlertsApplied, StoreError> {
        self.gate.before("record_alerts")?;
        self.inner.record_alerts(subject, checks, at).await
    }
    async fn open_windowed_alerts(&self, now: Timestamp, limit: u32) -> Result<Vec<(Subject, OpenAlert)>, StoreError> {
        self.gate.before("open_windowed_alerts")?;
        self.inner.open_windowed_alerts(now, limit).await
    }
    async fn outbox_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueMessage>, StoreError> {
        self.gate.before("outbox_due")?;
        self.inner.outbox_due(now, limit).await
    }
    async fn outbox_attempt(&self, message: i64, attempt: &AttemptRecord) -> Result<(), StoreError> {
        self.gate.before("outbox_attempt")?;
        self.inner.outbox_attempt(message, attempt).await
    }
    async fn create_endpoint(&self, url: &str, events: &[String]) -> Result<Value, StoreError> {
        self.gate.before("create_endpoint")?;
        self.inner.create_endpoint(url, events).await
    }
    async fn endpoints(&self) -> Result<Value, StoreError> {
        self.gate.before("endpoints")?;
        self.inner.endpoints().await
    }
    async fn set_endpoint(&self, id: &str, enabled: bool, at: Timestamp) -> Result<Option<Value>, StoreError> {
        self.gate.before("set_endpoint")?;
        self.inner.set_endpoint(id, enabled, at).await
    }
    async fn seat_held(&self, org: &str, user: &str) -> Result<bool, StoreError> {
        self.gate.before("seat_held")?;
        self.inner.seat_held(org, user).await
    }
    async fn org(&self, org: &str) -> Result<Option<OrgRead>, StoreError> {
        self.gate.before("org")?;
        self.inner.org(org).await
    }
    async fn invite(&self, token_digest: &str) -> Result<Option<(Invite, Option<OrgRead>)>, StoreError> {
        self.gate.before("invite")?;
        self.inner.invite(token_digest).await
    }
    async fn org_invite(&self, org: &str, invite: &str) -> Result<Option<Invite>, StoreError> {
        self.gate.before("org_invite")?;
        self.inner.org_invite(org, invite).await
    }
    async fn org_change(&self, change: &OrgChange) -> Result<Value, StoreError> {
        self.gate.before("org_change")?;
        self.inner.org_change(change).await
    }
    async fn user_organizations(&self, user: &str, now: Timestamp) -> Result<Vec<OrgMembership>, StoreError> {
        self.gate.before("user_organizations")?;
        self.inner.user_organizations(user, now).await
    }
    async fn account(&self, subject: &Subject, caller: &str) -> Result<Option<Account>, StoreError> {
        self.gate.before("account")?;
        self.inner.account(subject, caller).await
    }
}

/// The fields of a form-encoded provider request (Stripe's), percent-decoded, in order.
pub fn form(req: &OutRequest) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let b = s.as_bytes();
        let mut out = vec![];
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    let body = String::from_utf8(req.body.clone().unwrap_or_default()).unwrap();
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

/// The value of field `k` of a [`form`].
pub fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
}

/// What runs between a read and a write: on the store call named, once.
pub type Interleaved = (&'static str, Box<dyn FnOnce(&App<NoNetwork, Gated<Between>>)>);

/// A gate that runs another request once, as the next store call named begins: another
/// request landing between a route's read and its write.
pub struct Between {
    pub app: std::cell::RefCell<std::rc::Weak<App<NoNetwork, Gated<Between>>>>,
    pub on: std::cell::RefCell<Option<Interleaved>>,
}

impl CallGate for Between {
    fn before(&self, call: &'static str) -> Result<(), StoreError> {
        let due = matches!(&*self.on.borrow(), Some((c, _)) if *c == call);
        if due {
            let (_, f) = self.on.borrow_mut().take().expect("due");
            let app = self.app.borrow().upgrade().expect("app");
            f(&app);
        }
        Ok(())
    }
}

/// A future that must finish without waiting (the interleaved request, on the in-memory store).
pub fn now_or_never<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the interleaved request waited"),
    }
}

/// A gate that fails the next `n` store calls named `call` (`n` = u32::MAX: every one), as
/// a store that cannot be reached, with a message naming the store's insides (which no
/// answer may repeat).
#[derive(Default)]
pub struct FailNext {
    call: std::cell::RefCell<&'static str>,
    left: std::cell::Cell<u32>,
}

impl FailNext {
    pub fn fail(&self, call: &'static str, n: u32) {
        *self.call.borrow_mut() = call;
        self.left.set(n);
    }
}

impl CallGate for FailNext {
    fn before(&self, call: &'static str) -> Result<(), StoreError> {
        if *self.call.borrow() == call && self.left.get() > 0 {
            self.left.set(self.left.get() - 1);
            return Err(StoreError::Unavailable(format!("{call} failed: relation usage_records")));
        }
        Ok(())
    }
}
