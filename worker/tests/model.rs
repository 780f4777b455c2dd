//! A model-based test of the money path: random sequences of thousands of operations
//! through the worker's own routes (purchases delivered late, early, twice and
//! concurrently; admin credits; charges with random and adversarial Idempotency-Keys,
//! including keys built from every ledger and fact key the store has written; overage on
//! and off; refunds; scheduled runs), checked after every step against a plain reference
//! model of what was granted and what was taken.
//!
//! It runs on the in-memory store in every `cargo test`, and on PostgreSQL through the
//! REST gateway when `TOLLGATE_MODEL_REST_URL` and `TOLLGATE_MODEL_DB_URL` name a
//! running stack (`cargo xtask test` sets them in its end-to-end stage). Deterministic and
//! reproducible: `TOLLGATE_MODEL_START`, `TOLLGATE_MODEL_STEPS`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{json, Value};

use common::{config, hmac, user_token, NoNetwork, ADMIN_SECRET, STRIPE_SECRET};

use tollgate::credits::LotKind;
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method, Transport};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::native::ReqwestTransport;
use tollgate_worker::state::Subject;
use tollgate_worker::store::Store;

const T0: i64 = 1_800_000_000;
const BUNDLE: i64 = 1800;
/// A ledger key no entry has: the checks read lots, not the ledger.
const NO_LEDGER: &str = "-";

/// xorshift64*: a small deterministic generator (the sequence is the test's input).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How the test reaches the store's own tables (users, preferences).
trait Backend {
    fn add_user(&self, id: &str);
    fn set_overage(&self, id: &str, on: bool);
}

impl Backend for MemoryStore {
    fn add_user(&self, id: &str) {
        MemoryStore::add_user(self, id)
    }
    fn set_overage(&self, id: &str, on: bool) {
        self.set_preferences(&Subject::user(id), on, 10_000)
    }
}

struct Psql(String);
impl Psql {
    fn run(&self, sql: &str) {
        let out = Command::new("psql").args([self.0.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]).output().expect("psql");
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    }
}
impl Backend for Psql {
    fn add_user(&self, id: &str) {
        self.run(&format!("insert into auth.users (id, email, role, aud) values ('{id}', '{id}@model.test', 'authenticated', 'authenticated')"));
    }
    fn set_overage(&self, id: &str, on: bool) {
        self.run(&format!(
            "delete from usage_preferences where user_id = '{id}'; insert into usage_preferences (user_id, allow_overages, overage_limit_minor) values ('{id}', {on}, 10000)"
        ));
    }
}

/// What the model knows: lots by their source, what each took, what was refunded.
#[derive(Default)]
struct Reference {
    /// lot source (`stripe:cs_..` / admin id) -> units granted.
    granted: BTreeMap<String, i64>,
    /// lot key -> units charges took from it (from the charges' answers).
    used: BTreeMap<String, i64>,
    /// accepted charges: request id -> units.
    charges: BTreeMap<String, i64>,
    refunded: BTreeSet<String>,
}

struct Purchase {
    user: usize,
    cs: String,
    pi: String,
    at: i64,
    /// Kept by the store (its user was not known yet), not applied.
    waiting: bool,
}

/// The last user signs up only partway through: until then their purchases are kept.
const LATE: usize = 4;
/// A subscription's period in the model (an hour: many renewals in one run), and what a
/// period of VIDEO_CREATOR_MONTHLY puts into the pool.
const PERIOD: i64 = 3600;
const ALLOWANCE: i64 = 1800;

/// A user's subscription: its ids and the start of the period paid last.
#[derive(Clone)]
struct Sub {
    id: String,
    customer: String,
    start: i64,
    paid_until: i64,
    invoices: usize,
}

struct Run<'a, T, S> {
    app: &'a App<T, S>,
    backend: &'a dyn Backend,
    rng: Rng,
    now: i64,
    users: Vec<String>,
    overage: Vec<bool>,
    refs: Vec<Reference>,
    purchases: Vec<Purchase>,
    keys: Vec<Vec<String>>,
    seen_keys: Vec<String>,
    tag: String,
    issuer: String,
    /// One side of a race: balances may move under it, so only its own answers are checked.
    racing: bool,
    /// Users this step touched.
    touched: BTreeSet<usize>,
    /// The late user is known to the store.
    signed_up: bool,
    /// This run folded the late user's facts since signing up (a fork tells its parent).
    folded_late: bool,
    /// Each user's subscription, once subscribed.
    subs: Vec<Option<Sub>>,
}

impl<T: Transport, S: Store> Run<'_, T, S> {
    async fn call(&self, method: Method, path: &str, headers: Headers, body: Vec<u8>) -> (u16, Value) {
        let req = InRequest { method, path: path.to_string(), query: String::new(), headers, body };
        let r = self.app.handle(req, Timestamp(self.now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn stripe(&self, event: &Value) -> (u16, Value) {
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{}.{payload}", self.now)));
        let headers = Headers::new().with("stripe-signature", format!("t={},v1={sig}", self.now));
        self.call(Method::Post, "/webhooks/stripe", headers, payload.into_bytes()).await
    }

    fn checkout(&self, p: &Purchase, event_id: &str) -> Value {
        json!({
            "id": event_id, "object": "event", "api_version": "2025-03-31.basil", "created": p.at, "type": "checkout.session.completed",
            "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
            "data": {"object": {
                "id": p.cs, "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
                "customer": format!("cus_{}", self.users[p.user].replace('-', "")), "subscription": null, "payment_intent": p.pi,
                "client_reference_id": self.users[p.user], "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN"},
                "amount_total": 1900, "currency": "usd", "created": p.at,
            }},
        })
    }

    fn refund_event(&self, p: &Purchase, at: i64) -> Value {
        json!({
            "id": format!("evt_re_{}", p.cs), "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": "charge.refunded",
            "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
            "data": {"object": {
                "id": format!("ch_{}", p.cs), "object": "charge", "amount": 1900, "amount_refunded": 1900, "refunded": true,
                "payment_intent": p.pi, "currency": "usd", "created": at,
            }},
        })
    }

    async fn buy(&mut self) {
        let user = self.rng.below(self.users.len() as u64) as usize;
        let n = self.purchases.len();
        let back = self.rng.below(4) as i64 * 60;
        self.touched.insert(user);
        let mut p = Purchase {
            user,
            cs: format!("cs_{}_{n}", self.tag),
            pi: format!("pi_{}_{n}", self.tag),
            at: self.now - back,
            waiting: false,
        };
        let (status, v) = self.stripe(&self.checkout(&p, &format!("evt_{}_{n}", self.tag))).await;
        assert_eq!(status, 200, "purchase: {v}");
        if user == LATE && !self.signed_up {
            // Paid by a user the database does not know yet: kept, never refused.
            assert_eq!(v["status"], "kept", "purchase of an unknown user: {v}");
            assert!(v["waiting_for"].to_string().contains(&self.users[user]), "{v}");
            p.waiting = true;
        } else {
            assert_eq!(v["status"], "applied", "purchase: {v}");
            self.refs[user].granted.insert(format!("stripe:{}", p.cs), BUNDLE);
        }
        self.purchases.push(p);
        self.late_folded(user);
    }

    /// The same checkout again: the same event (duplicate) or another event id for it.
    async fn redeliver(&mut self) {
        if self.purchases.is_empty() {
            return;
        }
        let i = self.rng.below(self.purchases.len() as u64) as usize;
        let same = self.rng.chance(50);
        let p = &self.purchases[i];
        self.touched.insert(p.user);
        let id = if same { format!("evt_{}_{i}", self.tag) } else { format!("evt_{}_{i}_again{}", self.tag, self.rng.next()) };
        let (status, v) = self.stripe(&self.checkout(p, &id)).await;
        assert_eq!(status, 200, "redelivery: {v}");
        assert!(matches!(v["status"].as_str(), Some("duplicate" | "applied" | "kept")), "{v}");
        if v["status"] == "applied" {
            let user = p.user;
            self.late_folded(user);
        }
    }

    fn envelope(&self, id: String, ty: &str, at: i64, object: Value) -> Value {
        json!({
            "id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
            "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
            "data": {"object": object},
        })
    }

    fn sub_object(&self, user: usize, sub: &Sub, period_end: i64) -> Value {
        json!({
            "id": sub.id, "object": "subscription", "customer": sub.customer, "status": "active",
            "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
            "start_date": sub.start, "created": sub.start, "trial_end": null,
            "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": self.users[user]},
            "items": {"object": "list", "data": [{
                "id": format!("si_{}", sub.id), "object": "subscription_item", "quantity": 1,
                "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
                "current_period_start": period_end - PERIOD, "current_period_end": period_end,
            }]},
        })
    }

    fn invoice(&self, sub: &Sub, start: i64, at: i64) -> Value {
        let n = sub.invoices;
        let inv = json!({
            "id": format!("in_{}_{n}", sub.id), "object": "invoice", "customer": sub.customer, "status": "paid", "paid": true,
            "amount_paid": 900, "amount_due": 900, "currency": "usd", "created": at,
            "billing_reason": if n == 0 { "subscription_create" } else { "subscription_cycle" },
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub.id, "metadata": {}}},
            "period_start": start, "period_end": start + PERIOD,
            "lines": {"object": "list", "data": [{
                "id": format!("il_{}_{n}", sub.id), "object": "line_item", "amount": 900, "currency": "usd", "quantity": 1,
                "period": {"start": start, "end": start + PERIOD},
                "pricing": {"type": "price_details", "price_details": {"price": "price_video_creator_monthly", "product": "prod_x"}},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {"subscription": sub.id}},
            }]},
            "payments": {"object": "list", "data": [{"payment": {"type": "payment_intent", "payment_intent": format!("pi_in_{}_{n}", sub.id)}}]},
        });
        self.envelope(format!("evt_in_{}_{n}", sub.id), "invoice.paid", at, inv)
    }

    /// A subscription to VIDEO_CREATOR_MONTHLY: checkout, created and the first invoice,
    /// in a random order (a provider delivers them in any order).
    async fn subscribe(&mut self) {
        let user = self.rng.below(LATE as u64) as usize;
        if self.subs[user].is_some() {
            return self.renew(user).await;
        }
        self.touched.insert(user);
        let start = self.now - self.rng.below(120) as i64;
        let sub = Sub { id: format!("sub_{}_{user}", self.tag), customer: format!("cus_s_{}_{user}", self.tag), start, paid_until: start + PERIOD, invoices: 0 };
        let cs = json!({
            "id": format!("cs_s_{}_{user}", self.tag), "object": "checkout.session", "mode": "subscription", "status": "complete",
            "payment_status": "paid", "customer": sub.customer, "subscription": sub.id, "client_reference_id": self.users[user],
            "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": self.users[user]},
            "amount_total": 900, "currency": "usd", "created": start,
        });
        let mut events = vec![
            self.envelope(format!("evt_cs_{}", sub.id), "checkout.session.completed", start, cs),
            self.envelope(format!("evt_cr_{}", sub.id), "customer.subscription.created", start, self.sub_object(user, &sub, start + PERIOD)),
            self.invoice(&sub, start, start + 1),
        ];
        if self.rng.chance(50) {
            events.reverse();
        }
        for e in &events {
            let (status, v) = self.stripe(e).await;
            assert_eq!(status, 200, "subscription: {v}");
        }
        self.subs[user] = Some(Sub { invoices: 1, ..sub });
    }

    /// The next period's invoice, delivered when its period has begun (sometimes late).
    async fn renew(&mut self, user: usize) {
        let Some(sub) = self.subs[user].clone() else { return };
        if self.now < sub.paid_until {
            return;
        }
        self.touched.insert(user);
        let start = sub.paid_until;
        let ev = self.invoice(&sub, start, start + 1);
        let (status, v) = self.stripe(&ev).await;
        assert_eq!(status, 200, "renewal: {v}");
        if self.rng.chance(30) {
            let up = self.envelope(
                format!("evt_up_{}_{}", sub.id, sub.invoices),
                "customer.subscription.updated",
                start + 2,
                self.sub_object(user, &sub, start + PERIOD),
            );
            let (status, v) = self.stripe(&up).await;
            assert_eq!(status, 200, "subscription update: {v}");
        }
        self.subs[user] = Some(Sub { paid_until: start + PERIOD, invoices: sub.invoices + 1, ..sub });
    }

    async fn refund(&mut self) {
        if self.purchases.is_empty() {
            return;
        }
        let i = self.rng.below(self.purchases.len() as u64) as usize;
        if self.purchases[i].waiting {
            return;
        }
        let back = self.rng.below(3) as i64 * 60;
        let at = (self.now - back).max(self.purchases[i].at);
        let ev = self.refund_event(&self.purchases[i], at);
        let (status, v) = self.stripe(&ev).await;
        assert_eq!(status, 200, "refund: {v}");
        let p = &self.purchases[i];
        self.touched.insert(p.user);
        let user = p.user;
        self.refs[user].refunded.insert(format!("stripe:{}", p.cs));
        self.late_folded(user);
    }

    async fn admin_credit(&mut self) {
        let user = self.rng.below(self.users.len() as u64) as usize;
        self.touched.insert(user);
        let amount = 1 + self.rng.below(400) as i64;
        let id = format!("a:{}:{}", self.tag, self.rng.below(1_000_000));
        let body = json!({"user_id": self.users[user], "credits": [{"pool": "video_seconds", "amount": amount, "id": id}]});
        let headers = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        let (status, v) = self.call(Method::Post, "/v1/admin/grants", headers, body.to_string().into_bytes()).await;
        match status {
            201 => {
                let lot = v["credits"][0]["lot"].as_str().expect("the credit's lot").to_string();
                self.refs[user].granted.entry(lot).or_insert(amount);
                self.late_folded(user);
            }
            409 => {} // the same id drawn again with another amount
            404 if user == LATE && !self.signed_up => {}
            _ => panic!("admin credit: {status} {v}"),
        }
    }

    fn key(&mut self, user: usize) -> String {
        match self.rng.below(10) {
            // A key the store wrote (a ledger key, a lot key, a fact key) or one built from one.
            0..=2 if !self.seen_keys.is_empty() => {
                let k = &self.seen_keys[self.rng.below(self.seen_keys.len() as u64) as usize];
                match self.rng.below(3) {
                    0 => k.clone(),
                    1 => format!("{k}:{}", self.rng.below(3)),
                    _ => k.trim_start_matches("usage:").to_string(),
                }
            }
            // An earlier key of this user (a retry) or of another.
            3..=5 if !self.keys[user].is_empty() => {
                self.keys[user][self.rng.below(self.keys[user].len() as u64) as usize].clone()
            }
            _ => format!("k{}", self.rng.below(100_000)),
        }
    }

    async fn charge(&mut self) {
        let user = self.rng.below(self.users.len() as u64) as usize;
        self.touched.insert(user);
        let key = self.key(user);
        // Mostly the same body per key; sometimes another (a reused key).
        let seconds = if self.rng.chance(85) { 1 + (key.len() as u64 * 37 % 300) } else { 1 + self.rng.below(2000) };
        let body = json!({"model": "standard", "quality": "watermark", "seconds": seconds});
        let token = user_token(&self.users[user], &self.issuer, self.now);
        let headers = Headers::new().with("authorization", format!("Bearer {token}")).with("idempotency-key", key.clone());
        let before = self.balance(user).await;
        let (status, v) = self.call(Method::Post, "/v1/usage/consume", headers, body.to_string().into_bytes()).await;
        self.keys[user].push(key.clone());
        match status {
            200 => {
                let rec = &v["record"];
                let rid = rec["request_id"].as_str().expect("request id").to_string();
                let units = rec["units"].as_i64().expect("units");
                let over = rec["overage_units"].as_i64().unwrap_or(0);
                let takes = rec["takes"].as_array().cloned().unwrap_or_default();
                let taken: i64 = takes.iter().map(|t| t["units"].as_i64().unwrap_or(0)).sum();
                assert_eq!(taken + over, units, "a charge covers its units: {v}");
                let r = &mut self.refs[user];
                if v["status"] == "charged" {
                    assert!(!r.charges.contains_key(&rid), "charged twice: {rid}");
                    r.charges.insert(rid.clone(), units);
                    for t in &takes {
                        let lot = t["lot"].as_str().unwrap_or("");
                        *r.used.entry(lot.to_string()).or_insert(0) += t["units"].as_i64().unwrap_or(0);
                        self.seen_keys.push(format!("usage:{rid}:{lot}"));
                        self.seen_keys.push(lot.to_string());
                        // The key of this charge followed by a lot it took from: what a
                        // request id made by joining the key and the lot would collide with.
                        self.seen_keys.push(format!("{key}:{lot}"));
                    }
                    self.seen_keys.push(format!("usage:{rid}"));
                    if !self.racing {
                        assert_eq!(self.balance(user).await, before - taken, "a charge takes what it says");
                    }
                } else {
                    assert_eq!(v["status"], "replayed", "{v}");
                    if !self.racing {
                        assert!(r.charges.contains_key(&rid), "a replay of a charge never made: {v}");
                        assert_eq!(self.balance(user).await, before, "a replay takes nothing");
                    }
                }
            }
            402 | 403 if !self.racing => assert_eq!(self.balance(user).await, before, "a refusal takes nothing"),
            402 | 403 => {}
            409 => assert!(matches!(v["error"]["code"].as_str(), Some("idempotency_key_reused" | "concurrent_change")), "{v}"),
            400 => {
                assert_eq!(v["error"]["code"], "invalid_idempotency_key", "{v}");
                self.keys[user].pop();
            }
            _ => panic!("consume: {status} {v}"),
        }
    }

    /// A fold of the late user's facts after they signed up applies everything kept for them.
    fn late_folded(&mut self, user: usize) {
        if user != LATE || !self.signed_up {
            return;
        }
        self.folded_late = true;
        for p in self.purchases.iter_mut().filter(|p| p.waiting) {
            self.refs[p.user].granted.insert(format!("stripe:{}", p.cs), BUNDLE);
            p.waiting = false;
        }
    }

    async fn tick(&mut self) {
        self.touched.extend(0..self.users.len());
        let r = self.app.scheduled(Timestamp(self.now)).await.expect("scheduled run");
        // Within the invocation's subrequests (Workers Free's 50 here), counted where they leave.
        assert!(r["requests"].as_u64().is_some_and(|n| Some(n) <= r["request_budget"].as_u64()), "{r}");
        // Once the user is known, the scheduled run applies what was kept for them.
        self.late_folded(LATE);
    }

    async fn balance(&self, user: usize) -> i64 {
        let st = self.app.ctx.store.subject_state(&Subject::user(&self.users[user]), Some(NO_LEDGER)).await.expect("state");
        st.wallet.lots.iter().filter(|l| l.pool == "video_seconds" && !l.closed).map(|l| l.remaining).sum()
    }

    /// The store against the reference, for every user (or those given).
    async fn check(&self, step: usize, only: Option<BTreeSet<usize>>) {
        for (u, id) in self.users.iter().enumerate() {
            if only.as_ref().is_some_and(|o| !o.contains(&u)) {
                continue;
            }
            let st = self.app.ctx.store.subject_state(&Subject::user(id), Some(NO_LEDGER)).await.expect("state");
            let r = &self.refs[u];
            let mut expected = 0;
            let mut used_total = 0;
            let (mut rolled_in, mut lapsed) = (0, 0);
            for l in st.wallet.lots.iter().filter(|l| l.pool == "video_seconds") {
                assert!(l.remaining >= 0, "step {step}: lot {} negative", l.key);
                assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "step {step}: lot {} not conserved", l.key);
                if l.kind.is_period() {
                    // A period's allowance, or what carried over from earlier periods: the
                    // charges it recorded are the ones answered, and a carry-over never
                    // exceeds one allowance nor what earlier periods left unused.
                    let used = r.used.get(&l.key).copied().unwrap_or(0);
                    assert_eq!(l.used, used, "step {step}: period lot {} records every charge once", l.key);
                    if l.kind == LotKind::Allowance {
                        assert_eq!(l.granted, ALLOWANCE, "step {step}: lot {}", l.key);
                    } else {
                        assert!(l.granted <= ALLOWANCE, "step {step}: rollover {} over one allowance", l.key);
                        rolled_in += l.granted;
                    }
                    lapsed += l.expired;
                    used_total += used;
                    expected += l.remaining;
                    continue;
                }
                let src = if l.key.starts_with("adjustment:") { l.key.clone() } else { l.source.clone() };
                let granted = *r.granted.get(&src).unwrap_or_else(|| panic!("step {step}: lot {} ({src}) granted by nothing", l.key));
                assert_eq!(l.granted, granted, "step {step}: lot {} granted once", l.key);
                let used = r.used.get(&l.key).copied().unwrap_or(0);
                assert_eq!(l.used, used, "step {step}: lot {} records every charge once, none handed back", l.key);
                used_total += used;
                if !r.refunded.contains(&src) {
                    expected += granted - used;
                }
            }
            assert!(rolled_in <= lapsed, "step {step}: rollover {rolled_in} is more than the periods left unused ({lapsed})");
            assert_eq!(used_total, r.used.values().sum::<i64>(), "step {step}: every take is in a lot");
            let lots: BTreeSet<String> = st
                .wallet
                .lots
                .iter()
                .filter(|l| !l.kind.is_period())
                .map(|l| if l.key.starts_with("adjustment:") { l.key.clone() } else { l.source.clone() })
                .collect();
            assert_eq!(lots.len(), r.granted.len(), "step {step}: every paid event applied exactly once");
            let balance: i64 = st.wallet.lots.iter().filter(|l| l.pool == "video_seconds" && !l.closed).map(|l| l.remaining).sum();
            assert_eq!(balance, expected, "step {step}: user {u} holds what was granted less what was taken and refunded");
        }
    }
}

async fn run<T: Transport, S: Store>(app: &App<T, S>, backend: &dyn Backend, start: u64, steps: usize, issuer: &str) {
    let tag = format!("{start:x}{}", std::process::id());
    let users: Vec<String> = (0..5).map(|i| format!("{:08x}-0000-4000-8000-{:012x}", start as u32, (start >> 16) + i)).collect();
    for u in users.iter().take(LATE) {
        backend.add_user(u);
    }
    let mut r = Run {
        app,
        backend,
        rng: Rng(start | 1),
        now: T0,
        overage: vec![false; users.len()],
        refs: users.iter().map(|_| Reference::default()).collect(),
        keys: users.iter().map(|_| Vec::new()).collect(),
        users,
        purchases: Vec::new(),
        seen_keys: Vec::new(),
        tag,
        issuer: issuer.to_string(),
        racing: false,
        touched: BTreeSet::new(),
        signed_up: false,
        folded_late: false,
        subs: vec![None; 5],
    };
    let trace = std::env::var("TOLLGATE_MODEL_TRACE").is_ok();
    for step in 0..steps {
        r.now += 1 + r.rng.below(90) as i64;
        let op = r.rng.below(100);
        if trace {
            eprintln!("step {step}: op {op}");
        }
        match op {
            0..=14 => r.buy().await,
            15..=19 => r.redeliver().await,
            20..=26 => r.admin_credit().await,
            27..=29 => r.refund().await,
            30..=31 => r.tick().await,
            42..=45 => r.subscribe().await,
            32 if !r.signed_up => {
                r.backend.add_user(&r.users[LATE]);
                r.signed_up = true;
            }
            32..=33 => {
                let u = r.rng.below(if r.signed_up { r.users.len() } else { LATE } as u64) as usize;
                r.overage[u] = !r.overage[u];
                r.touched.insert(u);
                r.backend.set_overage(&r.users[u], r.overage[u]);
            }
            // Two at once: a charge racing a purchase or another charge.
            34..=41 => {
                let mut a = Run { rng: Rng(r.rng.next() | 1), ..r.fork() };
                let mut b = Run { rng: Rng(r.rng.next() | 1), ..r.fork() };
                let buy_first = a.rng.chance(50);
                if buy_first {
                    futures_join(a.buy(), b.charge()).await;
                } else {
                    futures_join(a.charge(), b.charge()).await;
                }
                let base = r.seen_keys.len();
                r.absorb(a, base);
                r.absorb(b, base);
            }
            _ => r.charge().await,
        }
        // Every user every 25 steps and at the end; the users of this step always.
        if step % 25 == 24 || step + 1 == steps {
            r.check(step, None).await;
        } else {
            let touched = std::mem::take(&mut r.touched);
            r.check(step, Some(touched)).await;
        }
    }
    // The run went where it should: renewals with carry-over, and charges taken from
    // period allowances as well as from purchases.
    if steps >= 1000 {
        let (mut allowances, mut rollovers, mut charged_periods) = (0, 0, 0);
        for id in &r.users {
            let st = r.app.ctx.store.subject_state(&Subject::user(id), Some(NO_LEDGER)).await.expect("state");
            allowances += st.wallet.lots.iter().filter(|l| l.kind == LotKind::Allowance).count();
            rollovers += st.wallet.lots.iter().filter(|l| l.kind == LotKind::Rollover).count();
            charged_periods += st.wallet.lots.iter().filter(|l| l.kind.is_period() && l.used > 0).count();
        }
        assert!(allowances >= 4 && rollovers >= 1 && charged_periods >= 2, "coverage: {allowances} allowances, {rollovers} rollovers, {charged_periods} period lots charged");
    }
}

impl<'a, T: Transport, S: Store> Run<'a, T, S> {
    /// A copy of the run's knowledge for one side of a race (absorbed back after).
    fn fork(&self) -> Run<'a, T, S> {
        Run {
            app: self.app,
            backend: self.backend,
            rng: Rng(1),
            now: self.now,
            users: self.users.clone(),
            overage: self.overage.clone(),
            refs: self.refs.iter().map(|_| Reference::default()).collect(),
            purchases: Vec::new(),
            keys: self.keys.clone(),
            seen_keys: self.seen_keys.clone(),
            tag: format!("{}f{}", self.tag, self.purchases.len() * 1000 + self.seen_keys.len()),
            issuer: self.issuer.clone(),
            racing: true,
            touched: BTreeSet::new(),
            signed_up: self.signed_up,
            folded_late: false,
            subs: vec![None; self.users.len()],
        }
    }

    /// Takes back what one side of a race learnt (its keys past `base`, the ones it had
    /// when it was forked).
    fn absorb(&mut self, o: Run<'a, T, S>, base: usize) {
        for (u, r) in o.refs.into_iter().enumerate() {
            let me = &mut self.refs[u];
            me.granted.extend(r.granted);
            for (k, v) in r.used {
                *me.used.entry(k).or_insert(0) += v;
            }
            for (k, v) in r.charges {
                assert!(me.charges.insert(k.clone(), v).is_none(), "charged twice: {k}");
            }
            me.refunded.extend(r.refunded);
        }
        self.touched.extend(o.touched);
        if o.folded_late {
            self.late_folded(LATE);
        }
        self.purchases.extend(o.purchases);
        for (u, ks) in o.keys.into_iter().enumerate() {
            for k in ks {
                if !self.keys[u].contains(&k) {
                    self.keys[u].push(k);
                }
            }
        }
        self.seen_keys.extend(o.seen_keys.into_iter().skip(base));
    }
}

/// Polls two futures on this thread until both are done.
async fn futures_join<A: std::future::Future<Output = ()>, B: std::future::Future<Output = ()>>(a: A, b: B) {
    tokio::join!(a, b);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn start() -> u64 {
    std::env::var("TOLLGATE_MODEL_START").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7011_6A7E)
}

fn steps(default: usize) -> usize {
    std::env::var("TOLLGATE_MODEL_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[test]
fn money_is_conserved_in_memory() {
    for s in 0..1u64 {
        let store = MemoryStore::new();
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, store).expect("app");
        let issuer = "http://127.0.0.1:1/auth/v1";
        runtime().block_on(run(&app, &app.ctx.store, start().wrapping_add(s), steps(2000), issuer));
    }
}

#[test]
fn money_is_conserved_on_postgresql() {
    let (Ok(rest), Ok(db), Ok(key)) = (
        std::env::var("TOLLGATE_MODEL_REST_URL"),
        std::env::var("TOLLGATE_MODEL_DB_URL"),
        std::env::var("TOLLGATE_MODEL_SERVICE_ROLE_KEY"),
    ) else {
        eprintln!("skipped: TOLLGATE_MODEL_REST_URL, TOLLGATE_MODEL_DB_URL and TOLLGATE_MODEL_SERVICE_ROLE_KEY name no stack");
        return;
    };
    let app = App::new(config(&rest, &key, "video-studio"), ReqwestTransport::new()).expect("app");
    let issuer = format!("{}/auth/v1", rest.trim_end_matches('/'));
    let backend = Psql(db);
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime(), run(&app, &backend, start() ^ std::process::id() as u64, steps(1500), &issuer));
}
