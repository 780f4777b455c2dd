//! Alerts and deliveries to the app's endpoints, on the in-memory store (the Razorpay AI
//! app's catalog: 80% and 100% of `monthly_ai_credits`, and fewer than 100 `ai_credits`
//! left): a use of a pool that leaves it under its threshold opens the alert; a use
//! refused at a limit opens the crossing its counted use could not record; an upgrade
//! within a window lets the new limit's thresholds cross; a stale check of an ended window
//! leaves the next window's alert open; each delivery is signed with the
//! time it is sent; overlapping runs send a message once, and the scheduled run what a
//! request queued while it sent; an endpoint URL has a host; a
//! 410 answer disables the endpoint; a `Retry-After` is honoured; retries count from a
//! message's first attempt. A scheduled run on Workers Free's 50 subrequests never makes
//! more, and each kind of its work gets a turn however many kept events wait.


mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::{json, Value};

use common::{block, config, user_token, ADMIN_SECRET, PAID};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;
use tollgate_worker::store::Store;

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000e1";
const ISSUER: &str = "http://127.0.0.1:1/auth/v1";

/// An app's endpoint on a virtual clock: every answer takes `delay` seconds of it (a slow
/// endpoint, or one that times out after DELIVERY_TIMEOUT_MS), and yields to whatever else
/// runs meanwhile. Records (url, webhook-id, webhook-timestamp, the clock when sent).
#[derive(Clone)]
struct Slow {
    clock: Rc<Cell<i64>>,
    delay: i64,
    sent: Rc<RefCell<Vec<(String, String, i64, i64)>>>,
}
impl Transport for Slow {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        let ts: i64 = req.headers.get("webhook-timestamp").unwrap_or("0").parse().unwrap_or(0);
        let id = req.headers.get("webhook-id").unwrap_or("").to_string();
        self.sent.borrow_mut().push((req.url.clone(), id, ts, self.clock.get()));
        self.clock.set(self.clock.get() + self.delay);
        tokio::task::yield_now().await;
        Ok(OutResponse { status: 200, headers: Headers::new(), body: b"ok".to_vec() })
    }
}

struct T {
    app: App<Slow, MemoryStore>,
    rx: Slow,
}

impl T {
    fn new(delay: i64) -> T {
        let rx = Slow { clock: Rc::new(Cell::new(NOW)), delay, sent: Rc::default() };
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), rx.clone(), MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        T { app, rx }
    }
    async fn call(&self, method: Method, path: &str, headers: Headers, body: Value, now: i64) -> (u16, Value) {
        common::call(&self.app, method, path, headers, &body, now).await
    }
    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        self.call(Method::Post, path, h, body, NOW).await
    }
    async fn grant(&self, tier: &str, id: &str, credits: Value) {
        let (s, v) = self
            .admin("/v1/admin/grants", json!({"user_id": U1, "grants": [{"product": "premium", "tier": tier, "source": "promotion",
                "id": id, "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}], "credits": credits}))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    async fn endpoint(&self, url: &str) -> Value {
        let (s, v) = self.admin("/v1/admin/endpoints", json!({"url": url})).await;
        assert_eq!(s, 201, "{v}");
        v
    }
    async fn track(&self, feature: &str, key: &str, quantity: u64, now: i64) -> (u16, Value) {
        let h = Headers::new()
            .with("authorization", format!("Bearer {}", user_token(U1, ISSUER, now)))
            .with("idempotency-key", key);
        self.call(Method::Post, "/v1/track", h, json!({"feature": feature, "quantity": quantity}), now).await
    }
    fn open(&self) -> Vec<(String, String)> {
        self.app.ctx.store.alerts_of(&Subject::user(U1)).into_iter().filter(|a| a.2).map(|a| (a.0, a.1)).collect()
    }
}

/// A use of a pool that leaves it under its `units_left` threshold opens the alert then,
/// as a use that crosses a limit's threshold does (not only at the subject's next fold).
#[test]
fn spending_a_pool_below_its_units_left_threshold_opens_the_alert() {
    block(async {
        let t = T::new(0);
        t.grant("PREMIUM", "p", json!([{"pool": "ai_credits", "amount": 500, "id": "c1"}])).await;
        assert!(t.open().is_empty(), "500 left: nothing open");
        let (s, v) = t.track("ai_credits", "spend-1", 450, NOW).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "ai_credits"), 50);
        let open = t.open();
        assert!(open.iter().any(|(r, _)| r == "pool:ai_credits:100left"), "50 credits left, under 100: open alerts {open:?}");
    })
}

/// `webhook-timestamp` is when the message is sent: behind slow endpoints, the later
/// messages of a round are not signed with the round's start (minutes old, which receivers
/// refuse).
#[test]
fn each_delivery_is_signed_with_the_time_it_is_sent() {
    block(async {
        let t = T::new(10);
        t.grant("PREMIUM", "p", json!([])).await;
        for i in 0..40 {
            t.endpoint(&format!("https://app.example/hooks/{i}")).await;
        }
        assert_eq!(t.track("monthly_ai_credits", "a", 1600, NOW).await.0, 200);
        let clock = t.rx.clock.clone();
        // Forty messages are more than Workers Free's subrequests: on Workers Paid's.
        t.app.deliver_within(&move || Timestamp(clock.get()), PAID).await.unwrap();
        let sent = t.rx.sent.borrow();
        assert_eq!(sent.len(), 40);
        let stale: Vec<i64> = sent.iter().map(|s| s.3 - s.2).filter(|d| *d > 300).collect();
        assert!(stale.is_empty(), "{} deliveries signed more than 5 minutes before they were sent (by {stale:?} s)", stale.len());
    })
}

/// An endpoint URL without a host is refused by the admin API (stored, it would fail every
/// delivery for three days until the endpoint is disabled).
#[test]
fn an_endpoint_url_without_a_host_is_refused() {
    block(async {
        let t = T::new(0);
        for url in ["https://?x", "https://#x", "https://:443/hooks", "https://@/hooks"] {
            let (s, v) = t.admin("/v1/admin/endpoints", json!({"url": url})).await;
            assert_eq!(s, 400, "{url}: {v}");
        }
    })
}

/// An endpoint that answers with a fixed status, no delay.
#[derive(Clone)]
struct Fixed {
    status: u16,
    sent: Rc<Cell<u32>>,
}
impl Transport for Fixed {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        self.sent.set(self.sent.get() + 1);
        Ok(OutResponse { status: self.status, headers: Headers::new(), body: Vec::new() })
    }
}

/// A 410 answer is the receiver asking to hear no more: the endpoint is disabled at once,
/// not retried for three days; its messages wait for it to be enabled again.
#[test]
fn a_410_gone_answer_disables_the_endpoint() {
    block(async {
        let rx = Fixed { status: 410, sent: Rc::default() };
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), rx.clone(), MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        let admin = |path: &str, body: Value| {
            let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
            InRequest { method: Method::Post, path: path.into(), query: String::new(), headers: h, body: body.to_string().into_bytes() }
        };
        let r = app.handle(admin("/v1/admin/grants", json!({"user_id": U1, "grants": [{"product": "premium", "tier": "PREMIUM", "source": "promotion",
                "id": "p", "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]})), Timestamp(NOW)).await;
        assert_eq!(r.status, 201);
        let r = app.handle(admin("/v1/admin/endpoints", json!({"url": "https://app.example/gone"})), Timestamp(NOW)).await;
        assert_eq!(r.status, 201);
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, NOW))).with("idempotency-key", "a");
        let req = InRequest { method: Method::Post, path: "/v1/track".into(), query: String::new(), headers: h,
                              body: json!({"feature": "monthly_ai_credits", "quantity": 1600}).to_string().into_bytes() };
        assert_eq!(app.handle(req, Timestamp(NOW)).await.status, 200);
        for k in 0..6 {
            app.deliver(&|| Timestamp(NOW + k * 3600)).await.unwrap();
        }
        let eps = app.ctx.store.endpoints().await.unwrap();
        assert_eq!(rx.sent.get(), 1, "nothing more sent after 410: {eps}");
        assert_eq!(eps[0]["enabled"], false, "{eps}");
    })
}

/// An upgrade within the window (PREMIUM 2000 -> ENTERPRISE 5000) makes 1600 used no longer
/// 80%: the 80% alert resolves. Reaching 80% of the new limit (4000) in the same window
/// alerts again: a window crosses once per limit.
#[test]
fn after_an_upgrade_resolves_a_limit_alert_crossing_the_new_limit_in_the_same_window_alerts_again() {
    block(async {
        let t = T::new(0);
        t.grant("PREMIUM", "p", json!([])).await;
        assert_eq!(t.track("monthly_ai_credits", "a", 1600, NOW).await.0, 200);
        let open = t.open();
        assert_eq!(open.len(), 1, "80% of 2000: {open:?}");
        t.grant("ENTERPRISE", "e", json!([])).await;
        assert_eq!(t.track("monthly_ai_credits", "b", 1, NOW + 60).await.0, 200);
        assert!(t.open().is_empty(), "1601 of 5000 is 32%: resolved");
        let (s, v) = t.track("monthly_ai_credits", "c", 2399, NOW + 120).await;
        assert_eq!(s, 200, "{v}");
        let open = t.open();
        assert!(open.iter().any(|(r, _)| r == "limit:monthly_ai_credits:80%"), "4000 of 5000 is 80% again: open {open:?}");
    })
}

/// The scheduled run lists the open alerts of ended windows, then resolves each with
/// `lapsed`. A use in the next window that opened the rule's alert in between (another
/// isolate) keeps it open: a check resolves a limit's alert of its own window or an
/// earlier one, never a later one.
#[test]
fn a_stale_lapsed_check_does_not_resolve_the_next_windows_alert() {
    block(async {
        let t = T::new(0);
        t.grant("PREMIUM", "p", json!([])).await;
        assert_eq!(t.track("monthly_ai_credits", "a", 1600, NOW).await.0, 200);
        let s = Subject::user(U1);
        let far = Timestamp(NOW + 40 * DAY);
        let listed = t.app.ctx.store.open_windowed_alerts(far, 1000).await.unwrap();
        assert_eq!(listed.len(), 1);
        let ends: Timestamp = serde_json::from_value(listed[0].1.alert["ends_at"].clone()).unwrap();
        // The scheduled run (at `ends`) has listed it; meanwhile a use in the next window
        // crosses 80% there: the old window's alert resolves, the new one opens.
        let listed = t.app.ctx.store.open_windowed_alerts(ends, 1000).await.unwrap();
        assert_eq!(t.track("monthly_ai_credits", "b", 1600, ends.unix() + 5).await.0, 200);
        let open = t.open();
        assert_eq!(open.len(), 1, "{open:?}");
        assert_ne!(open[0].1, listed[0].1.episode, "the next window's alert");
        // The run now applies what it listed.
        for (subject, a) in &listed {
            let checks = tollgate::alerts::lapsed(std::slice::from_ref(a), ends);
            t.app.ctx.store.record_alerts(subject, &checks, Timestamp(ends.unix() + 6)).await.unwrap();
        }
        assert_eq!(t.open(), open, "the next window's 80% alert is still open for {s:?}");
    })
}

/// Overlapping delivery runs (the scheduled one, another request's waitUntil) behind slow
/// endpoints: a run's page is never longer than its lease covers, so the second run never
/// claims a message the first has still to send; each message reaches each endpoint once.
#[test]
fn overlapping_delivery_runs_never_send_a_message_twice() {
    block(async {
        let t = T::new(10);
        t.grant("PREMIUM", "p", json!([])).await;
        for i in 0..8 {
            t.endpoint(&format!("https://app.example/hooks/{i}")).await;
        }
        assert_eq!(t.track("monthly_ai_credits", "a", 1600, NOW).await.0, 200);
        assert_eq!(t.app.ctx.store.outbox().len(), 8, "one message per endpoint");
        let clock = t.rx.clock.clone();
        let now = move || Timestamp(clock.get());
        let first = t.app.deliver(&now);
        let clock2 = t.rx.clock.clone();
        let second = async {
            while clock2.get() < NOW + 61 {
                tokio::task::yield_now().await;
            }
            t.app.deliver(&now).await
        };
        let (a, b) = tokio::join!(first, second);
        a.unwrap();
        b.unwrap();
        let sent = t.rx.sent.borrow();
        let mut pairs: Vec<(String, String)> = sent.iter().map(|s| (s.0.clone(), s.1.clone())).collect();
        pairs.sort();
        let n = pairs.len();
        pairs.dedup();
        assert_eq!(n, pairs.len(), "a message sent twice to one endpoint: {sent:?}");
    })
}

/// The scheduled run is sending U1's 80% crossing when a use crosses 100%; that request's
/// own delivery finds the 80% in flight and leaves the 100%: the scheduled run, reading the
/// clock as it goes, sends it too (not the next run, 15 minutes later).
#[test]
fn the_scheduled_run_sends_what_a_request_queued_while_it_was_sending() {
    block(async {
        let t = T::new(10);
        t.grant("PREMIUM", "p", json!([])).await;
        t.endpoint("https://app.example/hooks").await;
        assert_eq!(t.track("monthly_ai_credits", "a", 1600, NOW).await.0, 200);
        t.app.take_outbox_work();
        let clock = t.rx.clock.clone();
        let sent = t.rx.sent.clone();
        let meanwhile = async {
            while sent.borrow().is_empty() {
                tokio::task::yield_now().await;
            }
            let at = clock.get();
            assert_eq!(t.track("monthly_ai_credits", "b", 400, at).await.0, 200);
            assert!(t.app.take_outbox_work());
            let c = clock.clone();
            t.app.deliver(&move || Timestamp(c.get())).await.unwrap();
        };
        let run_clock = t.rx.clock.clone();
        let run_now = move || Timestamp(run_clock.get());
        let (report, ()) = tokio::join!(t.app.scheduled_with_clock(Timestamp(NOW + 1), &run_now), meanwhile);
        let report = report.unwrap();
        let got: Vec<String> = t.rx.sent.borrow().iter().map(|s| s.1.clone()).collect();
        assert_eq!(got.len(), 2, "80% and then 100% delivered by the end of the run: {got:?} {report}");
    })
}

/// An endpoint answering `fail_first` failures with 503, then 200.
#[derive(Clone)]
struct Flaky {
    fail_first: Rc<Cell<u32>>,
    sent: Rc<Cell<u32>>,
}
impl Transport for Flaky {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        self.sent.set(self.sent.get() + 1);
        let status = if self.fail_first.get() > 0 {
            self.fail_first.set(self.fail_first.get() - 1);
            503
        } else {
            200
        };
        Ok(OutResponse { status, headers: Headers::new(), body: Vec::new() })
    }
}

/// A message that waited four days for its disabled endpoint gets its three days of
/// retries from its first attempt: a 503 when the endpoint is enabled again is retried.
#[test]
fn a_message_that_waited_for_a_disabled_endpoint_is_retried_after_one_failure() {
    block(async {
        let rx = Flaky { fail_first: Rc::new(Cell::new(1)), sent: Rc::default() };
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), rx.clone(), MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        let post = |path: String, body: Value, now: i64| {
            let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
            (InRequest { method: Method::Post, path, query: String::new(), headers: h, body: body.to_string().into_bytes() }, Timestamp(now))
        };
        let (r, n) = post("/v1/admin/grants".into(), json!({"user_id": U1, "grants": [{"product": "premium", "tier": "PREMIUM", "source": "promotion",
                "id": "p", "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]}), NOW);
        assert_eq!(app.handle(r, n).await.status, 201);
        let (r, n) = post("/v1/admin/endpoints".into(), json!({"url": "https://app.example/hooks"}), NOW);
        let ep: Value = serde_json::from_slice(&app.handle(r, n).await.body).unwrap();
        let id = ep["id"].as_str().unwrap().to_string();
        let (r, n) = post(format!("/v1/admin/endpoints/{id}/disable"), json!({}), NOW);
        assert_eq!(app.handle(r, n).await.status, 200);
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, NOW))).with("idempotency-key", "a");
        let req = InRequest { method: Method::Post, path: "/v1/track".into(), query: String::new(), headers: h,
                              body: json!({"feature": "monthly_ai_credits", "quantity": 1600}).to_string().into_bytes() };
        assert_eq!(app.handle(req, Timestamp(NOW)).await.status, 200);
        let back = NOW + 4 * DAY;
        let (r, n) = post(format!("/v1/admin/endpoints/{id}/enable"), json!({}), back);
        assert_eq!(app.handle(r, n).await.status, 200);
        app.deliver(&|| Timestamp(back)).await.unwrap(); // 503
        app.deliver(&|| Timestamp(back + 3600)).await.unwrap(); // due again by now: 200
        let out = app.ctx.store.outbox();
        assert_eq!(rx.sent.get(), 2, "retried after one 503: {out:?}");
        assert!(out[0].2, "delivered on the retry: {out:?}");
    })
}

/// An endpoint that answers its first delivery 429 with `Retry-After: 7200`, then 200.
#[derive(Clone)]
struct Limited {
    sent: Rc<Cell<u32>>,
}
impl Transport for Limited {
    async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
        self.sent.set(self.sent.get() + 1);
        if self.sent.get() == 1 {
            return Ok(OutResponse { status: 429, headers: Headers::new().with("Retry-After", "7200"), body: Vec::new() });
        }
        Ok(OutResponse { status: 200, headers: Headers::new(), body: b"ok".to_vec() })
    }
}

/// A receiver limiting its rate says when to come back (429 with `Retry-After`): the
/// message is not tried again before then (the backoff alone would try after 30 s).
#[test]
fn a_retry_after_answer_is_honoured() {
    block(async {
        let rx = Limited { sent: Rc::default() };
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), rx.clone(), MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        let admin = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        let (s, v) = common::call(&app, Method::Post, "/v1/admin/grants", admin.clone(), &json!({"user_id": U1, "grants": [{"product": "premium",
            "tier": "PREMIUM", "source": "promotion", "id": "p", "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]}), NOW).await;
        assert_eq!(s, 201, "{v}");
        let (s, v) = common::call(&app, Method::Post, "/v1/admin/endpoints", admin, &json!({"url": "https://app.example/hooks"}), NOW).await;
        assert_eq!(s, 201, "{v}");
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, ISSUER, NOW))).with("idempotency-key", "a");
        let (s, v) = common::call(&app, Method::Post, "/v1/track", h, &json!({"feature": "monthly_ai_credits", "quantity": 1600}), NOW).await;
        assert_eq!(s, 200, "{v}");
        app.deliver(&|| Timestamp(NOW)).await.unwrap(); // 429, come back in two hours
        for later in [60, 600, 7199] {
            app.deliver(&|| Timestamp(NOW + later)).await.unwrap();
        }
        assert_eq!(rx.sent.get(), 1, "not tried before the time it asked for");
        app.deliver(&|| Timestamp(NOW + 7200)).await.unwrap();
        assert_eq!(rx.sent.get(), 2);
        assert!(app.ctx.store.outbox()[0].2, "delivered when it asked: {:?}", app.ctx.store.outbox());
    })
}

/// The use that reaches a limit is counted but its alert cannot be recorded (the store
/// fails between the two): the next use, refused at the limit, opens the 100% alert (the
/// only request still coming once the limit is reached).
#[test]
fn a_crossing_whose_alert_was_not_recorded_opens_at_the_next_refused_use() {
    block(async {
        let t = T::new(0);
        t.grant("PREMIUM", "p", json!([])).await;
        t.app.ctx.store.failing_alerts.set(1);
        let (s, v) = t.track("monthly_ai_credits", "a", 2000, NOW).await;
        assert_eq!(s, 200, "counted although its alerts failed: {v}");
        assert!(t.open().is_empty(), "nothing recorded");
        let (s, v) = t.track("monthly_ai_credits", "b", 1, NOW + 60).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("limit_reached")), "{v}");
        let open: Vec<String> = t.open().into_iter().map(|a| a.0).collect();
        assert!(open.contains(&"limit:monthly_ai_credits:100%".to_string()), "open: {open:?}");
        // Refused again: still one alert per threshold.
        t.track("monthly_ai_credits", "c", 1, NOW + 120).await;
        assert_eq!(t.app.ctx.store.alerts_of(&Subject::user(U1)).len(), open.len());
    })
}

/// On Workers Free (50 subrequests an invocation, the default `SUBREQUESTS`) a scheduled run
/// meets 300 kept events the core cannot read (they wait for an operator, and each try is a
/// request), more expired holds than it can release, an admin grant past its end and alert messages due: no run
/// makes more requests than its budget (the store's count, and the run's own report), the
/// first run gives every kind of work a turn, and later runs finish what it left, trying
/// the kept events in turn (after each run, no kept event was tried twice more than another).
#[test]
fn a_run_on_workers_free_keeps_to_its_subrequests_and_gives_every_kind_of_work_a_turn() {
    /// More holds than one run can release.
    const HOLDS: u64 = 60;
    block(async {
        let t = T::new(0);
        assert_eq!(t.app.ctx.config.subrequests, 50);
        t.grant("PREMIUM", "p", json!([{"pool": "ai_credits", "amount": 1000, "id": "c1"}])).await;
        let (s, v) = t
            .admin("/v1/admin/grants", json!({"user_id": U1, "grants": [{"product": "premium", "tier": "PREMIUM", "source": "promotion",
                "id": "short", "valid_from": Timestamp(NOW - DAY), "valid_to": Timestamp(NOW + DAY)}]}))
            .await;
        assert_eq!(s, 201, "{v}");
        for i in 0..3 {
            t.endpoint(&format!("https://app.example/hooks/{i}")).await;
        }
        assert_eq!(t.track("monthly_ai_credits", "a", 1600, NOW).await.0, 200);
        for i in 0..HOLDS {
            let h = Headers::new()
                .with("authorization", format!("Bearer {}", user_token(U1, ISSUER, NOW)))
                .with("idempotency-key", format!("hold-{i}"));
            let (s, v) = t.call(Method::Post, "/v1/track", h, json!({"feature": "ai_credits", "quantity": 1, "hold": true}), NOW).await;
            assert_eq!(s, 200, "{v}");
        }
        for i in 0..300 {
            let ev = json!({"id": format!("evt_broken{i:03}"), "object": "event", "type": "checkout.session.completed",
                            "created": NOW, "data": {}});
            assert_eq!(common::stripe(&t.app, &ev, NOW).await.1["status"], "kept");
        }
        let queued = t.app.ctx.store.outbox().len();
        assert!(queued >= 3, "the crossing queued a message per endpoint: {queued}");
        let at = NOW + 2 * DAY;
        let mut totals = [0u64; 4];
        for run in 1..=40 {
            let before = t.app.requests();
            let r = t.app.scheduled(Timestamp(at + run * 900)).await.expect("scheduled run");
            let made = t.app.requests() - before;
            assert!(made <= 50 && r["requests"].as_u64() == Some(made), "run {run} made {made} requests: {r}");
            let counts = ["pending_retried", "released_holds", "expired_subjects", "webhooks_delivered"].map(|k| r[k].as_u64().unwrap_or(0));
            if run == 1 {
                assert!(counts.iter().all(|n| *n > 0), "the first run gave every kind of work a turn: {r}");
            }
            for (sum, n) in totals.iter_mut().zip(counts) {
                *sum += n;
            }
            let tries = t.app.ctx.store.kept_attempts();
            let (lo, hi) = (tries.iter().min().copied().unwrap_or(0), tries.iter().max().copied().unwrap_or(0));
            assert_eq!(tries.len(), 300);
            assert!(hi - lo <= 1, "after run {run} kept events were tried from {lo} to {hi} times");
            if r["left_for_next_run"] == json!(["kept_events"]) && lo > 0 {
                break;
            }
        }
        assert_eq!(&totals[1..], &[HOLDS, 1, queued as u64], "every hold released, the grant's subject folded, every message sent");
        assert!(t.app.ctx.store.kept_attempts().iter().all(|n| *n > 0), "every kept event was tried");
    })
}
