//! The scheduled run and the alert outbox under adversity, on the in-memory store (the
//! Razorpay AI app's catalog): a store failing on any one call of a run loses nothing and
//! does nothing twice, and later runs finish what it left; more lapsed rows than a page,
//! rows lapsing exactly at the run's time and one subject with thousands of lapsed lots;
//! endpoints answering 500, timing out or unreachable, retried with growing gaps and never
//! sent again once delivered; an alert crossed by the run and told in the same run, before
//! its resolution; two runs overlapping; a run that never asks past its subrequests, on
//! every size of budget, and still gets everything done; a run whose clock is behind the
//! last one's; many trials whose rule turns at once on Workers Free (ignored: it needs a
//! store change).

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde_json::{json, Value};

use common::{hmac, CallGate, Gated, JWT_SECRET, STRIPE_SECRET, ADMIN_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{Headers, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::{Store, StoreError};

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const ISSUER: &str = "http://127.0.0.1:1/auth/v1";

fn uid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", 0xab_0000 + i)
}

// ------------------------------------------------------------------ a store failing on its Nth call

/// The in-memory store, except that the call numbered `fail_at` (counting every call from
/// the first) fails as an unreachable database does, before anything of it is done. A
/// failed call is still a request sent ([`Store::requests`] counts it).
type Chaos = Gated<FailAt>;

#[derive(Default)]
struct FailAt {
    calls: Cell<u64>,
    fail_at: Cell<Option<u64>>,
    failed: Cell<u64>,
    /// The names of the calls failed, in order.
    failures: RefCell<Vec<&'static str>>,
}

impl FailAt {
    /// Fails the `n`th call from now (1: the next one).
    fn fail_in(&self, n: u64) {
        self.fail_at.set(Some(self.calls.get() + n));
    }
}

impl CallGate for FailAt {
    fn before(&self, what: &'static str) -> Result<(), StoreError> {
        self.calls.set(self.calls.get() + 1);
        if self.fail_at.get() == Some(self.calls.get()) {
            self.failed.set(self.failed.get() + 1);
            self.failures.borrow_mut().push(what);
            return Err(StoreError::Unavailable("503 the database is unreachable".into()));
        }
        Ok(())
    }
    fn failed(&self) -> u64 {
        self.failed.get()
    }
}

// ------------------------------------------------------------------ the app's endpoints

/// How an endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Status(u16),
    /// No answer within the delivery timeout.
    Timeout,
    /// No connection at all.
    Unreachable,
}

/// The app's endpoints on a virtual clock: each send takes `delay` seconds of it and yields
/// to whatever else runs meanwhile. Records (url, webhook-id, answer, clock when sent).
/// With `ticking`, a send waits for the clock to pass its `delay` (something else moves it,
/// [`tick`]), so sends of two runs at once take their time side by side, as two isolates'
/// do; else each send moves the clock itself.
#[derive(Clone)]
struct Rx {
    clock: Rc<Cell<i64>>,
    delay: i64,
    ticking: bool,
    answer: Rc<Cell<Answer>>,
    sent: Rc<RefCell<Vec<Sent>>>,
}

/// One send: (url, webhook-id, the answer, the clock when sent).
type Sent = (String, String, Answer, i64);

impl Rx {
    fn new(delay: i64) -> Rx {
        Rx { clock: Rc::new(Cell::new(NOW)), delay, ticking: false, answer: Rc::new(Cell::new(Answer::Status(200))), sent: Rc::default() }
    }
    /// (url, webhook-id) of every 2xx answer.
    fn delivered(&self) -> Vec<(String, String)> {
        self.sent
            .borrow()
            .iter()
            .filter(|s| matches!(s.2, Answer::Status(200..=299)))
            .map(|s| (s.0.clone(), s.1.clone()))
            .collect()
    }
}

impl Transport for Rx {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        let id = req.headers.get("webhook-id").unwrap_or("").to_string();
        let answer = self.answer.get();
        self.sent.borrow_mut().push((req.url.clone(), id, answer, self.clock.get()));
        if self.ticking {
            let until = self.clock.get() + self.delay;
            while self.clock.get() < until {
                tokio::task::yield_now().await;
            }
        } else {
            self.clock.set(self.clock.get() + self.delay);
            if self.delay > 0 {
                tokio::task::yield_now().await;
            }
        }
        match answer {
            Answer::Status(status) => Ok(OutResponse { status, headers: Headers::new(), body: Vec::new() }),
            Answer::Timeout => Err(TransportError("the endpoint did not answer within 10000 ms".into())),
            Answer::Unreachable => Err(TransportError("connection refused".into())),
        }
    }
}

// ------------------------------------------------------------------ the harness

fn config(subrequests: u64) -> Config {
    config_of(subrequests, "razorpay-ai")
}

fn config_of(subrequests: u64, catalog: &str) -> Config {
    let vars: BTreeMap<&str, String> = [
        ("SUPABASE_URL", "http://127.0.0.1:1".to_string()),
        ("SUPABASE_SERVICE_ROLE_KEY", "svc".to_string()),
        ("SUPABASE_JWT_SECRET", JWT_SECRET.to_string()),
        ("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET.to_string()),
        ("ADMIN_SECRET", ADMIN_SECRET.to_string()),
        ("CATALOG", catalog.to_string()),
        ("SUBREQUESTS", subrequests.to_string()),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(|k| vars.get(k).cloned()).expect("config")
}

struct W {
    app: App<Rx, Chaos>,
    rx: Rx,
}

impl W {
    fn new(subrequests: u64, delay: i64) -> W {
        let rx = Rx::new(delay);
        let app = App::with_store(config(subrequests), rx.clone(), Chaos::default()).expect("app");
        W { app, rx }
    }
    fn mem(&self) -> &MemoryStore {
        &self.app.ctx.store.inner
    }
    fn store(&self) -> &Chaos {
        &self.app.ctx.store
    }
    async fn call(&self, method: Method, path: &str, headers: Headers, body: &Value, now: i64) -> (u16, Value) {
        common::call(&self.app, method, path, headers, body, now).await
    }
    async fn admin(&self, path: &str, body: Value, now: i64) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        self.call(Method::Post, path, h, &body, now).await
    }
    /// Gives `user` (known to the store from now on) `grants` and `credits` at `now`.
    async fn give(&self, user: &str, grants: Value, credits: Value, now: i64) {
        self.mem().add_user(user);
        let (s, v) = self.admin("/v1/admin/grants", json!({"user_id": user, "grants": grants, "credits": credits}), now).await;
        assert_eq!(s, 201, "{v}");
    }
    async fn endpoint(&self, url: &str) {
        let (s, v) = self.admin("/v1/admin/endpoints", json!({"url": url}), NOW).await;
        assert_eq!(s, 201, "{v}");
    }
    async fn track(&self, user: &str, feature: &str, key: &str, quantity: u64, hold: bool, now: i64) -> (u16, Value) {
        let h = Headers::new()
            .with("authorization", format!("Bearer {}", common::user_token(user, ISSUER, now)))
            .with("idempotency-key", key);
        let body = if hold { json!({"feature": feature, "quantity": quantity, "hold": true}) } else { json!({"feature": feature, "quantity": quantity}) };
        self.call(Method::Post, "/v1/track", h, &body, now).await
    }
    async fn stripe(&self, ev: &Value, now: i64) -> (u16, Value) {
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{ev}")));
        let h = Headers::new().with("stripe-signature", format!("t={now},v1={sig}"));
        self.call(Method::Post, "/webhooks/stripe", h, ev, now).await
    }
    /// One scheduled run at `now`: its report, and checks that it asked no more than its
    /// budget (the store's count and the app's own sends) and reported what it asked.
    async fn run(&self, now: i64) -> Result<Value, StoreError> {
        let before = self.app.requests();
        let clock = self.rx.clock.clone();
        clock.set(clock.get().max(now));
        let c = clock.clone();
        let r = self.app.scheduled_with_clock(Timestamp(now), &move || Timestamp(c.get().max(now))).await;
        let made = self.app.requests() - before;
        let limit = self.app.ctx.config.subrequests;
        assert!(made <= limit, "a run at {now} made {made} requests, over its {limit}: {r:?}");
        if let Ok(r) = &r {
            assert_eq!(r["requests"].as_u64(), Some(made), "the run reports what it asked: {r}");
        }
        r
    }
}

/// Moves `clock` one second at a time, yielding between seconds, until `done` holds.
async fn tick(clock: &Cell<i64>, done: &dyn Fn() -> bool) {
    while !done() {
        clock.set(clock.get() + 1);
        tokio::task::yield_now().await;
    }
}

/// What the store holds that a run may change, for comparing two histories.
#[derive(Debug, PartialEq)]
struct Picture {
    lots: Vec<(String, String, i64, i64, i64, bool)>,
    grants: Vec<(String, String, String)>,
    ledger: Vec<(String, String, i64)>,
    balances: Vec<(String, i64)>,
    alerts: Vec<(String, String, String, bool)>,
    outbox: Vec<(String, bool)>,
    holds: Vec<(String, String)>,
}

fn picture(w: &W, users: &[String]) -> Picture {
    let m = w.mem();
    let mut p = Picture { lots: vec![], grants: vec![], ledger: vec![], balances: vec![], alerts: vec![], outbox: vec![], holds: vec![] };
    for u in users {
        let s = Subject::user(u);
        for l in m.lots(&s) {
            assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "granted = remaining + used + revoked + expired: {l:?}");
            p.lots.push((u.clone(), l.key.clone(), l.remaining, l.used, l.expired, l.closed));
        }
        for g in m.grants(&s) {
            p.grants.push((u.clone(), g["grant_key"].as_str().unwrap_or("").into(), g["status"].as_str().unwrap_or("").into()));
        }
        let mut keys = BTreeSet::new();
        for e in m.ledger(&s) {
            assert!(keys.insert(e.key.clone()), "a ledger entry written twice: {}", e.key);
            p.ledger.push((u.clone(), e.key.clone(), e.delta));
        }
        p.balances.push((u.clone(), m.balance(&s, "ai_credits")));
        for a in m.alerts_of(&s) {
            p.alerts.push((u.clone(), a.0, a.1, a.2));
        }
        for c in m.charges(&s) {
            p.holds.push((c["id"].as_str().or(c["usage_id"].as_str()).unwrap_or("").to_string(), c["status"].as_str().unwrap_or("").to_string()));
        }
    }
    p.outbox = m.outbox().into_iter().map(|m| (m.0, m.2)).collect();
    p.lots.sort();
    p.grants.sort();
    p.ledger.sort();
    p.holds.sort();
    p
}

/// A backlog of every kind the run has: 12 kept events the core cannot read; U0 with
/// PREMIUM, 1000 credits, three endpoints, an 80% crossing queued and eight holds of one
/// credit that end an hour later; U1..U4 each with a promotion grant and 300 credits that
/// lapse after a day, and 50 that do not (their expiry leaves 50: the pool's alert crosses
/// in the run that expires them).
async fn backlog(w: &W, users: &[String]) {
    for i in 0..3 {
        w.endpoint(&format!("https://app.example/hooks/{i}")).await;
    }
    w.give(&users[0], json!([{"product": "premium", "tier": "PREMIUM", "source": "promotion", "id": "p",
        "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]),
        json!([{"pool": "ai_credits", "amount": 1000, "id": "c1"}]), NOW).await;
    assert_eq!(w.track(&users[0], "monthly_ai_credits", "m", 1600, false, NOW).await.0, 200);
    for i in 0..8 {
        let (s, v) = w.track(&users[0], "ai_credits", &format!("hold-{i}"), 1, true, NOW).await;
        assert_eq!(s, 200, "{v}");
    }
    for u in &users[1..] {
        w.give(u, json!([{"product": "premium", "tier": "PREMIUM", "source": "promotion", "id": "short",
            "valid_from": Timestamp(NOW - DAY), "valid_to": Timestamp(NOW + DAY)}]),
            json!([{"pool": "ai_credits", "amount": 300, "id": "soon", "valid_to": Timestamp(NOW + DAY)},
                   {"pool": "ai_credits", "amount": 50, "id": "kept"}]), NOW).await;
    }
    for i in 0..12 {
        let ev = json!({"id": format!("evt_unread{i:02}"), "object": "event", "type": "checkout.session.completed",
                        "created": NOW, "data": {}});
        assert_eq!(w.stripe(&ev, NOW).await.1["status"], "kept");
    }
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(uid).collect()
}

/// Runs every 15 minutes from two days on, `runs` of them (a failing one is just a failed
/// run); then the store's picture.
async fn settle_down(w: &W, users: &[String], first: i64, runs: i64) -> Picture {
    for k in 0..runs {
        let _ = w.run(NOW + 2 * DAY + (first + k) * 900).await;
    }
    picture(w, users)
}

/// What a history that nothing disturbed comes to, on `subrequests`.
fn reference(subrequests: u64) -> (Picture, Vec<(String, String)>) {
    common::block(async {
        let w = W::new(subrequests, 0);
        let us = users(5);
        backlog(&w, &us).await;
        let p = settle_down(&w, &us, 0, 16).await;
        let mut got = w.rx.delivered();
        got.sort();
        (p, got)
    })
}

/// Everything the backlog asks for is done by the runs: no lot past its end open, no grant
/// past its end active, every hold released once, every message delivered, each once.
fn assert_all_done(p: &Picture, delivered: &[(String, String)], what: &str) {
    assert!(p.lots.iter().filter(|l| l.1.contains("soon")).all(|l| l.5 && l.4 == 300), "{what}: lapsed lots closed, 300 expired each: {:?}", p.lots);
    assert!(p.grants.iter().filter(|g| g.1.contains("short")).all(|g| g.2 != "active"), "{what}: lapsed grants closed: {:?}", p.grants);
    assert!(p.holds.iter().all(|h| h.1 != "held"), "{what}: every hold released: {:?}", p.holds);
    assert!(p.outbox.iter().all(|m| m.1), "{what}: every message delivered: {:?}", p.outbox);
    let mut unique = delivered.to_vec();
    unique.dedup();
    assert_eq!(unique.len(), delivered.len(), "{what}: a message delivered twice to one endpoint: {delivered:?}");
    assert_eq!(delivered.len(), p.outbox.len(), "{what}: each message delivered once");
}

// ------------------------------------------------------------------ the tests

/// The backlog, undisturbed, on Workers Free and on Workers Paid: every run keeps to its
/// budget and everything gets done: 4 lapsed subjects, 8 holds (U0 back at 1000 - 0 = its
/// 1000, less nothing), the crossings of U1..U4 (their 300 expired, 50 left) told in the
/// runs that made them.
#[test]
fn an_undisturbed_backlog_is_all_done_within_the_budget() {
    for budget in [50, common::PAID] {
        let (p, delivered) = reference(budget);
        assert_all_done(&p, &delivered, &format!("budget {budget}"));
        let b: BTreeMap<String, i64> = p.balances.iter().cloned().collect();
        assert_eq!(b[&uid(0)], 1000, "the holds gave back what they took: {b:?}");
        for i in 1..5 {
            assert_eq!(b[&uid(i)], 50, "{b:?}");
            assert!(p.alerts.iter().any(|a| a.0 == uid(i) && a.1 == "pool:ai_credits:100left" && a.3), "{:?}", p.alerts);
        }
        assert!(p.outbox.len() >= 3 + 4 * 3, "U0's 80% and U1..U4's pool alerts, to three endpoints: {:?}", p.outbox);
        assert_eq!(p.holds.iter().filter(|h| h.1 == "released").count(), 8, "{:?}", p.holds);
    }
}

/// A store failing on any one call of the first run (each call in turn, on Workers Free):
/// the run may stop there, but the runs after it finish everything, and the store ends as
/// in the history without the failure: no hold released twice, no lot expired twice, no
/// message lost. The only message sent twice is the one whose delivery was made and whose
/// record failed (its receiver tells it by its webhook-id).
#[test]
fn a_store_failing_on_any_call_of_a_run_loses_nothing_and_does_nothing_twice() {
    let (want, want_sent) = reference(50);
    let calls = common::block(async {
        let w = W::new(50, 0);
        let us = users(5);
        backlog(&w, &us).await;
        let before = w.store().calls.get();
        let _ = w.run(NOW + 2 * DAY).await;
        w.store().calls.get() - before
    });
    assert!(calls > 20, "{calls}");
    for n in 1..=calls {
        common::block(async {
            let w = W::new(50, 0);
            let us = users(5);
            backlog(&w, &us).await;
            w.store().fail_in(n);
            let first = w.run(NOW + 2 * DAY).await;
            let failed = w.store().failures.borrow().clone();
            assert_eq!(failed.len(), 1, "call {n} failed");
            let p = settle_down(&w, &us, 1, 15).await;
            let what = format!("call {n} ({}) failed: {first:?}", failed[0]);
            let mut sent = w.rx.delivered();
            sent.sort();
            if failed[0] == "outbox_attempt" {
                // Sent, then its record failed: sent again after its lease, same id.
                let mut once = sent.clone();
                once.dedup();
                assert!(sent.len() <= once.len() + 1, "{what}: {sent:?}");
                sent = once;
            }
            assert_all_done(&p, &sent, &what);
            assert_eq!(p.balances, want.balances, "{what}");
            assert_eq!(p.lots, want.lots, "{what}");
            assert_eq!(p.ledger, want.ledger, "{what}");
            assert_eq!(p.grants, want.grants, "{what}");
            assert_eq!(p.holds, want.holds, "{what}");
            assert_eq!(sent, want_sent, "{what}");
            let mut a = p.alerts.clone();
            let mut b = want.alerts.clone();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{what}");
            assert!(w.mem().kept_attempts().iter().all(|n| *n > 0), "{what}: every kept event tried");
        });
    }
}

/// On every budget a deployment may name near Workers Free's, each run keeps to it (the
/// harness checks every run) and the runs get everything done.
#[test]
fn every_budget_is_kept_to_and_the_backlog_still_gets_done() {
    for budget in 20..=64 {
        common::block(async {
            let w = W::new(budget, 0);
            let us = users(5);
            backlog(&w, &us).await;
            let mut k = 0;
            loop {
                let r = w.run(NOW + 2 * DAY + k * 900).await.expect("run");
                k += 1;
                let left = r["left_for_next_run"].as_array().cloned().unwrap_or_default();
                if left.iter().all(|l| l == "kept_events") && k > 1 && r["webhooks_delivered"] == 0 && r["lapsed"] == 0 {
                    break;
                }
                assert!(k < 60, "budget {budget}: not done after {k} runs: {r}");
            }
            let p = picture(&w, &us);
            let mut sent = w.rx.delivered();
            sent.sort();
            assert_all_done(&p, &sent, &format!("budget {budget}"));
        });
    }
}

/// 600 lapsed lots (more than the 500 rows of a page) of 30 subjects, and their grants:
/// one run on Workers Paid closes them all, folding each subject once, and the next finds
/// nothing; on Workers Free the runs close them all within their budgets, page after page.
#[test]
fn more_lapsed_rows_than_a_page_all_close_each_subject_folded_once() {
    for budget in [common::PAID, 50].into_iter().chain(20..50) {
        common::block(async {
            let w = W::new(budget, 0);
            let us = users(30);
            for u in &us {
                let credits: Vec<Value> = (0..20)
                    .map(|j| json!({"pool": "ai_credits", "amount": 10 + j, "id": format!("l{j:02}"), "valid_to": Timestamp(NOW + 3600 + j * 60)}))
                    .collect();
                w.give(u, json!([{"product": "premium", "tier": "PREMIUM", "source": "manual_grant", "id": "g",
                    "valid_from": Timestamp(NOW - DAY), "valid_to": Timestamp(NOW + 3600)}]), json!(credits), NOW).await;
            }
            let mut total = (0, 0);
            for k in 0..40 {
                let r = w.run(NOW + DAY + k * 900).await.expect("run");
                total.0 += r["expired_subjects"].as_u64().unwrap();
                total.1 += r["lapsed"].as_u64().unwrap();
                if budget == common::PAID {
                    let want = if k == 0 { 30 } else { 0 };
                    assert_eq!(r["expired_subjects"], want, "run {k}: {r}");
                }
                if r["left_for_next_run"].as_array().is_some_and(|a| a.is_empty()) && r["lapsed"] == 0 {
                    break;
                }
            }
            assert_eq!(total.0, 30, "budget {budget}: each subject folded once");
            let p = picture(&w, &us);
            let lapsing: Vec<_> = p.lots.iter().filter(|l| !l.1.starts_with("free:")).collect();
            assert_eq!(lapsing.len(), 600, "and each its free lot");
            assert!(lapsing.iter().all(|l| l.5 && l.2 == 0), "budget {budget}: every lot closed");
            assert!(p.grants.iter().all(|g| g.2 == "canceled"), "budget {budget}: {:?}", &p.grants[..3]);
            let expired = p.ledger.iter().filter(|e| e.1.starts_with("expire:")).count();
            assert_eq!(expired, 600, "one expiry entry per lot");
        });
    }
}

/// A lot and a hand-given grant ending at exactly the run's time end in that run (a run a
/// second before leaves them), and a hold ending then is given back in it.
#[test]
fn rows_lapsing_exactly_at_the_runs_time_end_in_that_run() {
    common::block(async {
        let w = W::new(50, 0);
        let u = uid(1);
        let end = NOW + 7200;
        w.give(&u, json!([{"product": "premium", "tier": "PREMIUM", "source": "promotion", "id": "g",
            "valid_from": Timestamp(NOW - DAY), "valid_to": Timestamp(end)}]),
            json!([{"pool": "ai_credits", "amount": 400, "id": "l", "valid_to": Timestamp(end)},
                   {"pool": "ai_credits", "amount": 400, "id": "forever"}]), NOW).await;
        let (s, v) = w.track(&u, "ai_credits", "h", 5, true, NOW).await;
        assert_eq!(s, 200, "{v}");
        let hold_end: Timestamp = serde_json::from_value(v["hold_until"].clone()).expect("hold_until");
        let r = w.run(hold_end.unix() - 1).await.unwrap();
        assert_eq!(r["released_holds"], 0, "{r}");
        let r = w.run(hold_end.unix()).await.unwrap();
        assert_eq!(r["released_holds"], 1, "the hold ends at its hold_until: {r}");
        let r = w.run(end - 1).await.unwrap();
        assert_eq!((r["lapsed"].as_u64(), r["expired_subjects"].as_u64()), (Some(0), Some(0)), "{r}");
        let s = Subject::user(&u);
        assert!(w.mem().lots(&s).iter().all(|l| !l.closed));
        let r = w.run(end).await.unwrap();
        assert_eq!(r["expired_subjects"], 1, "{r}");
        let lots = w.mem().lots(&s);
        let l = lots.iter().find(|l| l.key.contains(":l")).expect("the lot");
        assert!(l.closed && l.expired == 400, "{l:?}");
        assert_eq!(w.mem().balance(&s, "ai_credits"), 400);
        let g = w.mem().grants(&s);
        assert_eq!(g[0]["status"], "canceled", "{g:?}");
        let r = w.run(end + 1).await.unwrap();
        assert_eq!((r["lapsed"].as_u64(), r["expired_subjects"].as_u64()), (Some(0), Some(0)), "nothing left: {r}");
    })
}

/// One subject with 2000 lots lapsed: a run on Workers Free reads the first page, folds the
/// subject once (closing all of them) and keeps to its 50 requests; the next finds nothing.
#[test]
fn a_subject_with_thousands_of_lapsed_lots_is_folded_once_within_the_budget() {
    common::block(async {
        let w = W::new(50, 0);
        let u = uid(7);
        for batch in 0..4 {
            let credits: Vec<Value> = (0..500)
                .map(|j| {
                    let n = batch * 500 + j;
                    json!({"pool": "ai_credits", "amount": 1, "id": format!("l{n:04}"), "valid_to": Timestamp(NOW + 60 + n)})
                })
                .collect();
            w.give(&u, json!([]), json!(credits), NOW).await;
        }
        let r = w.run(NOW + DAY).await.unwrap();
        assert_eq!(r["expired_subjects"], 1, "{r}");
        let s = Subject::user(&u);
        let lots: Vec<_> = w.mem().lots(&s).into_iter().filter(|l| l.key.contains(":l")).collect();
        assert_eq!(lots.len(), 2000, "and the catalog's free lot");
        assert!(lots.iter().all(|l| l.closed && l.expired == 1), "every lot closed");
        let r = w.run(NOW + DAY + 900).await.unwrap();
        assert_eq!((r["lapsed"].as_u64(), r["expired_subjects"].as_u64()), (Some(0), Some(0)), "{r}");
    })
}

/// An endpoint answering 500, then timing out, then unreachable: the message is tried
/// again and again with growing gaps (never sooner than 30 s after a failure), never given
/// up within its three days, delivered with the same webhook-id once the endpoint is back,
/// and never sent again after that.
#[test]
fn a_failing_endpoint_is_retried_with_backoff_and_never_sent_again_once_delivered() {
    common::block(async {
        let w = W::new(50, 0);
        let u = uid(2);
        w.endpoint("https://app.example/hooks").await;
        w.give(&u, json!([{"product": "premium", "tier": "PREMIUM", "source": "promotion", "id": "p",
            "valid_from": Timestamp(NOW - DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]), json!([]), NOW).await;
        assert_eq!(w.track(&u, "monthly_ai_credits", "a", 1600, false, NOW).await.0, 200);
        assert_eq!(w.mem().outbox().len(), 1);
        let plan = [(Answer::Status(500), 0), (Answer::Timeout, 4 * 3600), (Answer::Unreachable, 12 * 3600)];
        let mut t = NOW;
        for (answer, until) in plan {
            w.rx.answer.set(answer);
            while t < NOW + 6 * 3600 + until {
                w.run(t).await.unwrap();
                t += 60;
            }
        }
        let sent = w.rx.sent.borrow().clone();
        assert!(sent.len() >= 8, "tried again and again: {}", sent.len());
        let times: Vec<i64> = sent.iter().map(|s| s.3).collect();
        let gaps: Vec<i64> = times.windows(2).map(|p| p[1] - p[0]).collect();
        assert!(gaps.iter().all(|g| *g >= 30), "never sooner than 30 s: {gaps:?}");
        assert!(gaps.windows(2).all(|g| g[1] + 60 >= g[0]), "the gaps grow (to the minute the runs come): {gaps:?}");
        assert!(sent.iter().all(|s| s.1 == sent[0].1), "one webhook-id throughout");
        let out = w.mem().outbox();
        assert!(!out[0].2, "not delivered");
        let eps = w.mem().endpoints().await.unwrap();
        assert_eq!(eps[0]["given_up"], 0, "not given up within three days: {eps}");
        // Back: delivered at the next due attempt, then never again.
        w.rx.answer.set(Answer::Status(204));
        let n = sent.len();
        while t < NOW + 2 * DAY {
            w.run(t).await.unwrap();
            t += 900;
        }
        let sent = w.rx.sent.borrow().clone();
        assert_eq!(sent.len(), n + 1, "delivered once, never sent again: {:?}", &sent[n..]);
        assert!(w.mem().outbox()[0].2);
    })
}

/// A run that expires U1's lot crosses its pool's alert (50 left, under 100) and tells it
/// in its own outbox turn; the same run gives back U0's expired hold, which resolves U0's
/// pool alert opened by the hold: U0's crossing (queued while the endpoint failed) and its
/// resolution are told in that run, crossing first, each once; later runs send nothing.
#[test]
fn alerts_crossed_and_resolved_within_one_run_are_told_in_order_once() {
    common::block(async {
        let w = W::new(common::PAID, 0);
        let (u0, u1) = (uid(0), uid(1));
        w.endpoint("https://app.example/hooks").await;
        w.give(&u0, json!([{"product": "premium", "tier": "PREMIUM", "source": "promotion", "id": "p",
            "valid_from": Timestamp(NOW - DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]),
            json!([{"pool": "ai_credits", "amount": 150, "id": "c"}]), NOW).await;
        w.give(&u1, json!([]), json!([{"pool": "ai_credits", "amount": 300, "id": "soon", "valid_to": Timestamp(NOW + 3600)},
                                      {"pool": "ai_credits", "amount": 50, "id": "kept"}]), NOW).await;
        w.rx.answer.set(Answer::Status(503));
        let (s, v) = w.track(&u0, "ai_credits", "h", 100, true, NOW).await;
        assert_eq!(s, 200, "{v}");
        let open = w.mem().alerts_of(&Subject::user(&u0));
        assert!(open.iter().any(|a| a.0 == "pool:ai_credits:100left" && a.2), "50 left under the hold: {open:?}");
        w.app.deliver(&|| Timestamp(NOW)).await.unwrap();
        assert_eq!(w.rx.sent.borrow().len(), 1, "the crossing tried once, failed");
        w.rx.answer.set(Answer::Status(200));
        let r = w.run(NOW + 2 * 3600).await.unwrap();
        assert_eq!((r["released_holds"].as_u64(), r["expired_subjects"].as_u64()), (Some(1), Some(1)), "{r}");
        let told: Vec<(String, String, String)> = w
            .mem()
            .outbox()
            .iter()
            .map(|m| (m.1["data"]["subject"]["user_id"].as_str().unwrap_or("").to_string(), m.1["data"]["rule"].as_str().unwrap_or("").to_string(), m.1["type"].as_str().unwrap_or("").to_string()))
            .collect();
        let delivered = w.rx.delivered();
        assert_eq!(delivered.len(), 3, "U0's crossing and resolution, U1's crossing: {told:?} {r}");
        let ids: Vec<&str> = delivered.iter().map(|d| d.1.as_str()).collect();
        let ids_of = |user: &str| -> Vec<String> {
            let out = w.mem().outbox();
            ids.iter().filter_map(|id| out.iter().find(|m| m.0 == *id && m.1["data"]["subject"]["user_id"] == user).map(|m| m.1["type"].as_str().unwrap_or("").to_string())).collect()
        };
        assert_eq!(ids_of(&u0), vec!["alert.crossed", "alert.resolved"], "crossing first: {told:?}");
        assert_eq!(ids_of(&u1), vec!["alert.crossed"], "{told:?}");
        assert!(w.mem().outbox().iter().all(|m| m.2));
        for k in 1..4 {
            let r = w.run(NOW + 2 * 3600 + k * 900).await.unwrap();
            assert_eq!(r["webhooks_delivered"], 0, "{r}");
        }
        assert_eq!(w.rx.delivered().len(), 3);
    })
}

/// Two scheduled runs overlapping (the second starts while the first waits on slow
/// endpoints): each hold is given back once, each lot expired once, each message reaches
/// each endpoint once, and the store ends as after one run and its successors.
#[test]
fn overlapping_runs_do_nothing_twice() {
    let (want, want_sent) = reference(common::PAID);
    common::block(async {
        let mut w = W::new(common::PAID, 10);
        w.rx.ticking = true;
        w.app = App::with_store(config(common::PAID), w.rx.clone(), Chaos::default()).expect("app");
        let us = users(5);
        backlog(&w, &us).await;
        let at = NOW + 2 * DAY;
        w.rx.clock.set(at);
        let c1 = w.rx.clock.clone();
        let c2 = w.rx.clock.clone();
        let clock1 = move || Timestamp(c1.get());
        let first = w.app.scheduled_with_clock(Timestamp(at), &clock1);
        let second = async {
            while w.rx.sent.borrow().is_empty() {
                tokio::task::yield_now().await;
            }
            let start = c2.get();
            let c = c2.clone();
            w.app.scheduled_with_clock(Timestamp(start), &move || Timestamp(c.get())).await
        };
        let finished = Cell::new(0);
        let first = async {
            let r = first.await;
            finished.set(finished.get() + 1);
            r
        };
        let second = async {
            let r = second.await;
            finished.set(finished.get() + 1);
            r
        };
        let both = || finished.get() == 2;
        let (a, b, ()) = tokio::join!(first, second, tick(&w.rx.clock, &both));
        let (a, b) = (a.unwrap(), b.unwrap());
        let released = a["released_holds"].as_u64().unwrap() + b["released_holds"].as_u64().unwrap();
        assert_eq!(released, 8, "each hold released by one of them: {a} {b}");
        assert!(b["webhooks_delivered"].as_u64() > Some(0), "the second run sent while the first did: {a} {b}");
        let mut sent = w.rx.delivered();
        sent.sort();
        let mut once = sent.clone();
        once.dedup();
        assert_eq!(sent, once, "a message sent twice to one endpoint");
        let p = settle_down(&w, &us, 200, 4).await;
        let mut sent = w.rx.delivered();
        sent.sort();
        assert_all_done(&p, &sent, "overlapping runs");
        assert_eq!(p.balances, want.balances);
        assert_eq!(p.lots, want.lots);
        assert_eq!(p.ledger, want.ledger);
        assert_eq!(sent, want_sent);
    })
}

/// A run whose clock is behind the last run's (another colo, a clock corrected backwards):
/// it finds nothing the last one did still to do, sends nothing again, reopens no alert and
/// no lot; the next run on time goes on as before.
#[test]
fn a_run_with_a_clock_behind_the_last_one_redoes_nothing() {
    common::block(async {
        let w = W::new(50, 0);
        let us = users(5);
        backlog(&w, &us).await;
        let at = NOW + 2 * DAY;
        let mut k = 0;
        loop {
            let r = w.run(at + k * 900).await.unwrap();
            k += 1;
            if r["left_for_next_run"].as_array().is_some_and(|a| a.iter().all(|l| l == "kept_events")) && r["webhooks_delivered"] == 0 && k > 1 {
                break;
            }
            assert!(k < 30);
        }
        let before = picture(&w, &us);
        let sent = w.rx.sent.borrow().len();
        for back in [60, 3600, DAY + 60, 2 * DAY] {
            let r = w.run(at + k * 900 - back).await.unwrap();
            for n in ["lapsed", "expired_subjects", "released_holds", "alerts_resolved", "webhooks_delivered", "webhooks_failed"] {
                assert_eq!(r[n], 0, "{back} s behind: {n} in {r}");
            }
        }
        assert_eq!(w.rx.sent.borrow().len(), sent, "nothing sent again");
        assert_eq!(picture(&w, &us), before, "nothing changed");
        let r = w.run(at + (k + 1) * 900).await.unwrap();
        assert_eq!(r["webhooks_delivered"], 0, "{r}");
        assert_eq!(picture(&w, &us), before);
    })
}

/// `customer.subscription.created` of a Video Studio Creator subscription (`sub_<n>`) of
/// user `user`, trialing from `t0` to `end`.
fn trial_created(n: usize, user: &str, t0: i64, end: i64) -> Value {
    json!({
        "id": format!("evt_trial_{n}"), "object": "event", "api_version": "2025-03-31.basil", "created": t0,
        "type": "customer.subscription.created", "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("sub_{n}"), "object": "subscription", "customer": format!("cus_{n}"), "status": "trialing",
            "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
            "start_date": t0, "created": t0, "trial_start": t0, "trial_end": end,
            "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY", "user_id": user},
            "items": {"object": "list", "data": [{
                "id": format!("si_{n}"), "object": "subscription_item", "quantity": 1,
                "price": {"id": "price_video_creator_monthly", "object": "price", "metadata": {"offer_key": "VIDEO_CREATOR_MONTHLY"}},
                "current_period_start": t0, "current_period_end": end,
            }]},
        }},
    })
}

/// Forty trials that end in the same minute (a promotion's sign-ups), on Workers Free with
/// a `trial_ending` rule three days before the end, and a run every 15 minutes: every one
/// of them is warned about, within the day its rule turned (the rows a run folded stay in
/// the store, so a run must not spend its budget folding them again while others wait).
///
/// Each run reads the scan from the start of its range; it used to fold again the subjects
/// an earlier run folded (on 50 requests the same 21 every run, the other 19 never). A
/// row whose subject was folded after its rule turned (the store's `folded_at`) is passed.
#[test]
fn many_trials_turning_at_once_are_each_warned_about_on_workers_free() {
    common::block(async {
        let rx = Rx::new(0);
        let app = App::with_store(config_of(50, "video-studio"), rx.clone(), Chaos::default()).expect("app");
        let w = W { app, rx };
        let mut doc: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        doc["alerts"] = json!([{"event": "trial_ending", "days": 3}]);
        w.mem().push_catalog(doc, true);
        let end = NOW + 14 * DAY;
        let us = users(40);
        for (n, u) in us.iter().enumerate() {
            w.mem().add_user(u);
            let (s, v) = w.stripe(&trial_created(n, u, NOW, end + (n as i64 % 4) * 10), NOW).await;
            assert_eq!(s, 200, "{v}");
        }
        let warned = |w: &W| us.iter().filter(|u| w.mem().alerts_of(&Subject::user(u)).iter().any(|a| a.0.starts_with("trial_ending"))).count();
        assert_eq!(warned(&w), 0);
        let mut t = end - 3 * DAY + 60;
        while t < end - 2 * DAY {
            w.run(t).await.expect("run");
            t += 900;
        }
        assert_eq!(warned(&w), 40, "every trial warned about within the day its rule turned");
    })
}
