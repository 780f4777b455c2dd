//! The app's outbound webhooks under attack, on the in-memory store (the Razorpay AI app's
//! catalog: 80% and 100% of `monthly_ai_credits` are two alerts): endpoint URLs that only
//! look local, userinfo, odd but valid forms; event filters; secrets answered once and
//! never shown again, not even in a store's error; signatures checked with an independent
//! implementation of the Standard Webhooks scheme (HMAC-SHA256 and base64 written here);
//! which answers are retried, which disable; a 410 and the rest of its round; messages that
//! were tried before their endpoint was disabled and are tried again once it is enabled;
//! a run on every budget; a slow store and overlapping runs; a store failing between a
//! delivery and its record; a clock that goes back.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{json, Value};

use common::{block, config, user_token, CallGate, Gated, ADMIN_SECRET, PAID};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::outbox::Delivered;
use tollgate_worker::store::{StoreError, SupabaseStore};
use tollgate_worker::supabase::SupabaseClient;

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000007a1";
const U2: &str = "00000000-0000-4000-8000-0000000007a2";
const U3: &str = "00000000-0000-4000-8000-0000000007a3";
const ISSUER: &str = "http://127.0.0.1:1/auth/v1";

// ------------------------------------------------------------------ Standard Webhooks, written here

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// HMAC (RFC 2104) over SHA-256, by its definition.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 section 4).
fn b64_encode(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, x)| n | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { ALPHABET.iter().position(|a| a == c)? as u32 };
            n |= v << (18 - 6 * i);
        }
        for i in 0..(3 - pad) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Whether `signature` (space-separated `v1,<base64>` entries) signs `id.timestamp.body`
/// under `secret` (`whsec_` + the key in base64), as the specification says.
fn verifies(secret: &str, id: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(key) = secret.strip_prefix("whsec_").and_then(b64_decode) else { return false };
    let mut msg = format!("{id}.{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    let want = b64_encode(&hmac_sha256(&key, &msg));
    signature.split(' ').any(|s| s.strip_prefix("v1,") == Some(want.as_str()))
}

// ------------------------------------------------------------------ the app's endpoints

/// One request an endpoint got.
#[derive(Clone, Debug)]
struct Sent {
    url: String,
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
    /// The clock when it was sent.
    at: i64,
}

impl Sent {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn user(&self) -> String {
        self.json()["data"]["subject"]["user_id"].as_str().unwrap_or("").to_string()
    }
}

type Answer = Rc<dyn Fn(&Sent) -> Result<OutResponse, TransportError>>;

fn status(s: u16) -> Answer {
    Rc::new(move |_| Ok(OutResponse { status: s, headers: Headers::new(), body: Vec::new() }))
}

/// Endpoints on a virtual clock: each send takes `delay` seconds of it (and yields to what
/// else runs), answered by `answer`.
#[derive(Clone)]
struct Rx {
    clock: Rc<Cell<i64>>,
    delay: Rc<Cell<i64>>,
    answer: Rc<RefCell<Answer>>,
    sent: Rc<RefCell<Vec<Sent>>>,
}

impl Transport for Rx {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        let h = |k: &str| req.headers.get(k).unwrap_or("").to_string();
        let s = Sent {
            url: req.url.clone(),
            id: h("webhook-id"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
            content_type: h("content-type"),
            body: req.body.clone().unwrap_or_default(),
            at: self.clock.get(),
        };
        self.sent.borrow_mut().push(s.clone());
        let delay = self.delay.get();
        if delay > 0 {
            self.clock.set(self.clock.get() + delay);
            tokio::task::yield_now().await;
        }
        let answer = self.answer.borrow().clone();
        answer(&s)
    }
}

/// What the store does before each call: a call may take seconds of the clock, and the
/// calls named in `fail_next` fail once each, as an unreachable database does.
#[derive(Default)]
struct Gate {
    clock: Rc<Cell<i64>>,
    /// Seconds each `outbox_attempt` takes.
    slow_attempt: Cell<i64>,
    fail_next: RefCell<Vec<&'static str>>,
    failed: Cell<u64>,
}

impl CallGate for Gate {
    fn before(&self, call: &'static str) -> Result<(), StoreError> {
        if call == "outbox_attempt" {
            self.clock.set(self.clock.get() + self.slow_attempt.get());
        }
        let mut f = self.fail_next.borrow_mut();
        if let Some(i) = f.iter().position(|c| *c == call) {
            f.remove(i);
            self.failed.set(self.failed.get() + 1);
            return Err(StoreError::Unavailable("503 the database is unreachable".into()));
        }
        Ok(())
    }
    fn failed(&self) -> u64 {
        self.failed.get()
    }
}

struct H {
    app: App<Rx, Gated<Gate>>,
    rx: Rx,
}

impl H {
    fn new() -> H {
        let clock = Rc::new(Cell::new(NOW));
        let rx = Rx { clock: clock.clone(), delay: Rc::default(), answer: Rc::new(RefCell::new(status(200))), sent: Rc::default() };
        let store = Gated { inner: MemoryStore::new(), gate: Gate { clock, ..Gate::default() } };
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), rx.clone(), store).expect("app");
        for u in [U1, U2, U3] {
            app.ctx.store.inner.add_user(u);
        }
        H { app, rx }
    }
    fn mem(&self) -> &MemoryStore {
        &self.app.ctx.store.inner
    }
    fn gate(&self) -> &Gate {
        &self.app.ctx.store.gate
    }
    fn answer(&self, a: Answer) {
        *self.rx.answer.borrow_mut() = a;
    }
    async fn admin(&self, method: Method, path: &str, body: Value, now: i64) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        common::call(&self.app, method, path, h, &body, now).await
    }
    /// A new endpoint: (id, secret).
    async fn endpoint(&self, url: &str, events: Value) -> (String, String) {
        let mut body = json!({"url": url});
        if !events.is_null() {
            body["events"] = events;
        }
        let (s, v) = self.admin(Method::Post, "/v1/admin/endpoints", body, NOW).await;
        assert_eq!(s, 201, "{url}: {v}");
        (v["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
    }
    async fn premium(&self, uid: &str) {
        let (s, v) = self
            .admin(Method::Post, "/v1/admin/grants", json!({"user_id": uid, "grants": [{"product": "premium", "tier": "PREMIUM",
                "source": "promotion", "id": "p", "valid_from": Timestamp(NOW - 40 * DAY), "valid_to": Timestamp(NOW + 90 * DAY)}]}), NOW)
            .await;
        assert_eq!(s, 201, "{v}");
    }
    async fn track(&self, uid: &str, key: &str, quantity: u64, now: i64) {
        let h = Headers::new()
            .with("authorization", format!("Bearer {}", user_token(uid, ISSUER, now)))
            .with("idempotency-key", key);
        let (s, v) = common::call(&self.app, Method::Post, "/v1/track", h, &json!({"feature": "monthly_ai_credits", "quantity": quantity}), now).await;
        assert_eq!(s, 200, "{v}");
    }
    /// A delivery run with the clock at `at` (moving as sends take time), on Workers Paid.
    async fn deliver(&self, at: i64) -> Result<Delivered, StoreError> {
        self.rx.clock.set(at);
        self.app.take_outbox_work();
        let c = self.rx.clock.clone();
        self.app.deliver_within(&move || Timestamp(c.get()), PAID).await
    }
    async fn list(&self) -> Vec<Value> {
        let (s, v) = self.admin(Method::Get, "/v1/admin/endpoints", Value::Null, NOW).await;
        assert_eq!(s, 200, "{v}");
        v["endpoints"].as_array().cloned().unwrap_or_default()
    }
    fn sent(&self) -> Vec<Sent> {
        self.rx.sent.borrow().clone()
    }
    /// How often each (url, webhook-id) was sent.
    fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for s in self.sent() {
            *m.entry((s.url, s.id)).or_insert(0) += 1;
        }
        m
    }
}

// ------------------------------------------------------------------ signatures and secrets

/// The specification's own example checks the implementation written here, which then
/// checks every delivery: the exact bytes sent are signed with the time sent, under the
/// endpoint's own secret (never another endpoint's), as JSON with the spec's envelope.
#[test]
fn deliveries_verify_with_an_independent_standard_webhooks_implementation() {
    assert!(verifies(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
    block(async {
        let h = H::new();
        h.premium(U1).await;
        let (_, s1) = h.endpoint("https://one.example/hooks", Value::Null).await;
        let (_, s2) = h.endpoint("https://two.example/hooks", Value::Null).await;
        assert_ne!(s1, s2, "each endpoint its own secret");
        for s in [&s1, &s2] {
            let key = s.strip_prefix("whsec_").and_then(b64_decode).expect("whsec_ + base64");
            assert!(key.len() >= 24, "{} key bytes", key.len());
        }
        h.track(U1, "a", 1600, NOW).await;
        h.deliver(NOW + 7).await.unwrap();
        let sent = h.sent();
        assert_eq!(sent.len(), 2);
        for s in &sent {
            let (mine, other) = if s.url.contains("one.") { (&s1, &s2) } else { (&s2, &s1) };
            assert!(verifies(mine, &s.id, &s.timestamp, &s.body, &s.signature), "{s:?}");
            assert!(!verifies(other, &s.id, &s.timestamp, &s.body, &s.signature), "another endpoint's secret must not verify");
            assert_eq!(s.timestamp, (NOW + 7).to_string(), "signed with the time it is sent");
            assert!(s.content_type.starts_with("application/json"), "{s:?}");
            assert!(!s.id.is_empty() && s.id.len() <= 255, "{s:?}");
            let v = s.json();
            assert_eq!(v["type"], "alert.crossed", "{v}");
            assert!(!v["timestamp"].is_null() && v["data"].is_object(), "{v}");
            assert_eq!(s.user(), U1);
            // The body sent is the body signed: any change of a byte fails.
            let mut tampered = s.body.clone();
            tampered.push(b' ');
            assert!(!verifies(mine, &s.id, &s.timestamp, &tampered, &s.signature));
        }
        assert_eq!(sent[0].id, sent[1].id, "one message, one id to every endpoint");
    })
}

/// The secret is in the creation's answer alone: not in the listing, not in enable or
/// disable answers, nor in a refused creation's error.
#[test]
fn a_secret_is_answered_once_and_never_shown_again() {
    block(async {
        let h = H::new();
        let (id, secret) = h.endpoint("https://app.example/hooks", json!(["alert.crossed"])).await;
        let key = secret.strip_prefix("whsec_").unwrap().to_string();
        let mut answers = vec![serde_json::to_string(&h.list().await).unwrap()];
        for path in [format!("/v1/admin/endpoints/{id}/disable"), format!("/v1/admin/endpoints/{id}/enable")] {
            let (s, v) = h.admin(Method::Post, &path, json!({}), NOW).await;
            assert_eq!(s, 200, "{v}");
            answers.push(v.to_string());
        }
        let (s, v) = h.admin(Method::Post, "/v1/admin/endpoints", json!({"url": format!("https://app.example/{secret}"), "events": ["x"]}), NOW).await;
        assert_eq!(s, 400);
        answers.push(v.to_string());
        h.gate().fail_next.borrow_mut().push("endpoints");
        let (s, v) = h.admin(Method::Get, "/v1/admin/endpoints", Value::Null, NOW).await;
        assert!(s >= 500, "{v}");
        answers.push(v.to_string());
        for a in &answers {
            assert!(!a.contains("whsec_") && !a.contains(&key), "a secret shown again: {a}");
        }
    })
}

/// A store whose answer to `tollgate_outbox_due` cannot be read: the delivery run's error
/// (which the worker writes to its log, `outbox: {e}`) must not carry the endpoints'
/// signing secrets that were in that answer.
#[test]
fn a_store_answer_that_cannot_be_read_does_not_put_secrets_in_the_error() {
    const SECRET: &str = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LW9mLXRoZS1lbmRwb2ludA==";
    #[derive(Clone)]
    struct StoreRx(Rc<RefCell<Vec<u8>>>);
    impl Transport for StoreRx {
        async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
            Ok(OutResponse { status: 200, headers: Headers::new(), body: self.0.borrow().clone() })
        }
    }
    let row = json!({"id": "12", "msg_id": "msg_alert_1_crossed", "url": "https://app.example/hooks", "secret": SECRET,
                     "payload": {"type": "alert.crossed"}, "attempts": 0});
    let full = json!([row]).to_string();
    let answers = [
        // An id the worker does not read (a text id, say).
        full.clone(),
        // An answer cut short.
        full[..full.len() - 10].to_string(),
    ];
    block(async {
        for body in answers {
            let t = StoreRx(Rc::new(RefCell::new(body.clone().into_bytes())));
            let store = SupabaseStore::new(SupabaseClient::new("http://127.0.0.1:1", "svc", t.clone()));
            let app = App::with_store(config("http://127.0.0.1:1", "svc", "razorpay-ai"), t, store).expect("app");
            let e = app.deliver(&|| Timestamp(NOW)).await.expect_err("an answer that cannot be read");
            let logged = format!("outbox: {e}");
            assert!(!logged.contains("whsec_"), "the signing secret is in the error the worker logs: {logged}");
        }
    })
}

// ------------------------------------------------------------------ endpoint URLs

/// Plain http only to this machine: hosts that only look local, userinfo that puts
/// "localhost" before the real host, and every malformed form are refused.
#[test]
fn urls_that_only_look_local_or_are_malformed_are_refused() {
    block(async {
        let h = H::new();
        let long = format!("https://app.example/{}", "a".repeat(2030));
        let refused: Vec<Value> = vec![
            json!("http://localhost.evil.com/hooks"),
            json!("http://127.0.0.1.nip.io/hooks"),
            json!("http://localhost@evil.com/hooks"),
            json!("http://127.0.0.1:80@evil.com/hooks"),
            json!("http://evil.com#@localhost/hooks"),
            json!("http://evil.com?@127.0.0.1/hooks"),
            json!("http://0.0.0.0/hooks"),
            json!("http://169.254.169.254/latest"),
            json!("http://10.0.0.1/hooks"),
            json!("http://localhost。evil.com/hooks"),
            json!("ws://localhost/hooks"),
            json!("wss://app.example/hooks"),
            json!("javascript:alert(1)"),
            json!("//app.example/hooks"),
            json!("app.example/hooks"),
            json!("https://"),
            json!("http://localhost:99999/hooks"),
            json!(" https://app.example/hooks"),
            json!("https://app.example/hooks "),
            json!("https://app.exa\tmple/hooks"),
            json!("https://app.example/ho\noks"),
            json!("https://app.example/hooks\u{0}"),
            json!("https://app.example/\u{a0}hooks"),
            json!(long),
            json!(5),
            json!(["https://app.example/hooks"]),
            Value::Null,
        ];
        for url in refused {
            let (s, v) = h.admin(Method::Post, "/v1/admin/endpoints", json!({"url": url}), NOW).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_url")), "{url}: {v}");
        }
        assert!(h.list().await.is_empty());
    })
}

/// Valid forms a receiver may well use are taken: an uppercase scheme and host, an IDN
/// and its punycode, a port, a query, IPv6 loopback over http, exactly 2048 characters.
#[test]
fn unusual_but_valid_urls_are_accepted() {
    block(async {
        let h = H::new();
        let base = "https://app.example/";
        let exact = format!("{base}{}", "a".repeat(2048 - base.len()));
        for url in [
            "HTTPS://APP.EXAMPLE/Hooks",
            "https://bücher.example/hooks",
            "https://xn--bcher-kva.example/hooks",
            "https://app.example:8443/hooks",
            "https://app.example/hooks?tenant=7&x=%20",
            "https://192.0.2.10/hooks",
            "https://[2001:db8::1]/hooks",
            "http://[::1]:8080/hooks",
            "http://LOCALHOST:3000/hooks",
            "http://127.0.0.1/hooks",
            exact.as_str(),
        ] {
            let (s, v) = h.admin(Method::Post, "/v1/admin/endpoints", json!({"url": url}), NOW).await;
            assert_eq!(s, 201, "{url}: {v}");
        }
        let (s, v) = h.admin(Method::Post, "/v1/admin/endpoints", json!({"url": format!("{exact}a")}), NOW).await;
        assert_eq!(s, 400, "2049 characters: {v}");
    })
}

/// Credentials in an endpoint URL (`https://user:pass@host`) are refused: they would be
/// shown in clear by every listing (the secret is hidden, the password not), stored in
/// every attempt's row, and the runtime's `fetch` does not send them as HTTP basic auth
/// (workerd drops a URL's userinfo, cloudflare/workerd#194; the Fetch standard's Request
/// refuses it), so such an endpoint fails every delivery until it is disabled.
#[test]
fn credentials_in_an_endpoint_url_are_refused() {
    block(async {
        let h = H::new();
        for url in ["https://hook:s3cr3t-pass@app.example/hooks", "https://a@b.example/hooks", "http://user:pw@localhost:3000/hooks"] {
            let (s, v) = h.admin(Method::Post, "/v1/admin/endpoints", json!({"url": url}), NOW).await;
            assert_eq!(s, 400, "{url}: userinfo accepted: {v}");
        }
        let listed = serde_json::to_string(&h.list().await).unwrap();
        assert!(!listed.contains("s3cr3t-pass"), "a password listed in clear: {listed}");
    })
}

// ------------------------------------------------------------------ event filters

/// Unknown, miscased, padded, wildcard-like, non-string and nested event names are refused;
/// a duplicate is kept once; no `events` is every event.
#[test]
fn event_filters_are_exact_names_without_duplicates() {
    block(async {
        let h = H::new();
        for events in [
            json!(["ALERT.CROSSED"]),
            json!(["alert.crossed "]),
            json!(["alert.*"]),
            json!(["alert"]),
            json!([""]),
            json!(["alert.crossed", 1]),
            json!([null]),
            json!([["alert.crossed"]]),
            json!("alert.crossed"),
            json!({"alert.crossed": true}),
            json!([]),
            json!(true),
        ] {
            let (s, v) = h.admin(Method::Post, "/v1/admin/endpoints", json!({"url": "https://app.example/hooks", "events": events}), NOW).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_events")), "{events}: {v}");
        }
        let (s, v) = h
            .admin(Method::Post, "/v1/admin/endpoints", json!({"url": "https://app.example/hooks", "events": ["alert.crossed", "alert.crossed"]}), NOW)
            .await;
        assert_eq!((s, &v["events"]), (201, &json!(["alert.crossed"])), "{v}");
        let (s, v) = h.admin(Method::Post, "/v1/admin/endpoints", json!({"url": "https://app.example/all"}), NOW).await;
        assert_eq!((s, &v["events"]), (201, &json!(["*"])), "{v}");
    })
}

/// An endpoint gets the types it subscribed to, each message once (a type named twice or
/// beside `*` is still one message), crossings before their resolutions; one subscribed
/// to resolutions alone is not held back by the crossings it never gets.
#[test]
fn each_endpoint_gets_exactly_the_types_it_subscribed_to_once_each() {
    block(async {
        let h = H::new();
        h.premium(U1).await;
        h.endpoint("https://crossed.example/h", json!(["alert.crossed"])).await;
        h.endpoint("https://resolved.example/h", json!(["alert.resolved"])).await;
        h.endpoint("https://both.example/h", json!(["alert.resolved", "*", "alert.crossed", "alert.resolved"])).await;
        h.track(U1, "a", 1600, NOW).await;
        h.track(U1, "b", 400, NOW + 60).await;
        h.deliver(NOW + 120).await.unwrap();
        let report = h.app.scheduled(Timestamp(NOW + 40 * DAY)).await.unwrap();
        h.deliver(NOW + 40 * DAY + 60).await.unwrap();
        let types = |host: &str| -> Vec<(String, String)> {
            h.sent()
                .iter()
                .filter(|s| s.url.contains(host))
                .map(|s| {
                    let v = s.json();
                    (v["type"].as_str().unwrap_or("").to_string(), v["data"]["rule"].as_str().unwrap_or("").to_string())
                })
                .collect()
        };
        let c = |t: &str, r: &str| (t.to_string(), format!("limit:monthly_ai_credits:{r}"));
        assert_eq!(types("crossed."), vec![c("alert.crossed", "80%"), c("alert.crossed", "100%")], "{report}");
        let resolved = types("resolved.");
        assert_eq!(resolved.len(), 2, "{resolved:?} {report}");
        assert!(resolved.iter().all(|r| r.0 == "alert.resolved"), "{resolved:?}");
        let both = types("both.");
        assert_eq!(both.len(), 4, "each message once: {both:?}");
        for r in ["80%", "100%"] {
            let at = |t: &str| both.iter().position(|b| b == &c(t, r)).unwrap_or_else(|| panic!("{t} {r} missing: {both:?}"));
            assert!(at("alert.crossed") < at("alert.resolved"), "{r}: crossing before its resolution: {both:?}");
        }
        assert!(h.counts().values().all(|n| *n == 1), "{:?}", h.counts());
    })
}

// ------------------------------------------------------------------ answers, retries, disabling

/// 2xx is delivered at once and never sent again; a redirect (not followed), any 4xx but
/// 410, any 5xx, a timeout or no connection is retried after the backoff with the same
/// webhook-id, the endpoint still enabled and the message not given up; 410 disables the
/// endpoint and keeps the message waiting.
#[test]
fn which_answers_are_delivered_retried_or_disable() {
    block(async {
        let timeout: Answer = Rc::new(|_| Err(TransportError::timed_out("10000 ms")));
        let refused: Answer = Rc::new(|_| Err(TransportError("connection refused".into())));
        let redirect = |code: u16| -> Answer {
            Rc::new(move |_| Ok(OutResponse { status: code, headers: Headers::new().with("location", "http://evil.example/"), body: Vec::new() }))
        };
        let mut cases: Vec<(String, Answer, &str)> = vec![];
        for code in [200u16, 201, 202, 204, 299] {
            cases.push((code.to_string(), status(code), "delivered"));
        }
        for code in [300u16, 301, 302, 303, 307, 308] {
            cases.push((code.to_string(), redirect(code), "retried"));
        }
        for code in [400u16, 401, 403, 404, 405, 408, 409, 413, 422, 429, 500, 501, 502, 503, 504, 599] {
            cases.push((code.to_string(), status(code), "retried"));
        }
        cases.push(("timeout".into(), timeout, "retried"));
        cases.push(("refused".into(), refused, "retried"));
        cases.push(("410".into(), status(410), "gone"));
        for (name, answer, want) in cases {
            let h = H::new();
            h.premium(U1).await;
            h.endpoint("https://app.example/hooks", Value::Null).await;
            h.track(U1, "a", 1600, NOW).await;
            h.answer(answer);
            h.deliver(NOW).await.unwrap();
            let listed = h.list().await;
            let e = &listed[0];
            let out = h.mem().outbox();
            match want {
                "delivered" => {
                    assert!(out[0].2, "{name}: delivered");
                    h.deliver(NOW + DAY).await.unwrap();
                    assert_eq!(h.sent().len(), 1, "{name}: never sent again");
                }
                "retried" => {
                    assert!(!out[0].2, "{name}: not delivered");
                    assert_eq!((e["enabled"].as_bool(), e["pending"].as_u64(), e["given_up"].as_u64()), (Some(true), Some(1), Some(0)), "{name}: {e}");
                    h.deliver(NOW + 10).await.unwrap();
                    assert_eq!(h.sent().len(), 1, "{name}: not again before the backoff");
                    h.answer(status(200));
                    h.deliver(NOW + 30).await.unwrap();
                    let sent = h.sent();
                    assert_eq!(sent.len(), 2, "{name}: retried after 30 s");
                    assert_eq!(sent[0].id, sent[1].id, "{name}: the same webhook-id");
                    assert!(h.mem().outbox()[0].2, "{name}: delivered on the retry");
                }
                _ => {
                    assert_eq!((e["enabled"].as_bool(), e["pending"].as_u64(), e["given_up"].as_u64()), (Some(false), Some(1), Some(0)), "{name}: {e}");
                    h.deliver(NOW + DAY).await.unwrap();
                    assert_eq!(h.sent().len(), 1, "{name}: nothing more");
                }
            }
        }
    })
}

/// A 410 is the receiver asking to hear nothing more from this endpoint: the endpoint is
/// disabled at once, and the other messages its round had already read for it (other
/// subjects' alerts) are not sent after that answer.
#[test]
fn after_a_410_the_round_sends_nothing_more_to_that_endpoint() {
    block(async {
        let h = H::new();
        for u in [U1, U2, U3] {
            h.premium(u).await;
        }
        h.endpoint("https://gone.example/hooks", Value::Null).await;
        for u in [U1, U2, U3] {
            h.track(u, "a", 1600, NOW).await;
        }
        assert_eq!(h.mem().outbox().len(), 3);
        h.answer(status(410));
        h.deliver(NOW).await.unwrap();
        let sent = h.sent();
        assert_eq!(sent.len(), 1, "sent on after the endpoint answered 410: {:?}", sent.iter().map(|s| s.user()).collect::<Vec<_>>());
        let listed = h.list().await;
        assert_eq!((listed[0]["enabled"].as_bool(), listed[0]["pending"].as_u64()), (Some(false), Some(3)), "{listed:?}");
    })
}

/// A message tried once (410) waits while its endpoint is disabled; enabled four days later,
/// it gets retries again: one failure then is not the end of it (the store's first attempt
/// counts the attempts before the endpoint was disabled, so its three days are long gone).
#[test]
fn a_message_that_got_a_410_is_retried_after_its_endpoint_is_enabled_again() {
    block(async {
        let h = H::new();
        h.premium(U1).await;
        let (id, _) = h.endpoint("https://app.example/hooks", Value::Null).await;
        h.track(U1, "a", 1600, NOW).await;
        h.answer(status(410));
        h.deliver(NOW).await.unwrap();
        assert_eq!(h.list().await[0]["enabled"], false);
        let back = NOW + 4 * DAY;
        let (s, v) = h.admin(Method::Post, &format!("/v1/admin/endpoints/{id}/enable"), json!({}), back).await;
        assert_eq!(s, 200, "{v}");
        h.answer(status(503));
        h.deliver(back).await.unwrap();
        let listed = h.list().await;
        assert_eq!((listed[0]["pending"].as_u64(), listed[0]["given_up"].as_u64()), (Some(1), Some(0)), "given up after one 503 once enabled again: {listed:?}");
        h.answer(status(200));
        h.deliver(back + 3600).await.unwrap();
        assert!(h.mem().outbox()[0].2, "delivered on a retry: {:?}", h.mem().outbox());
        assert_eq!(h.sent().len(), 3);
    })
}

/// An endpoint down for three days is disabled. U2's message, first tried a day before
/// that, waits for it; the operator enables the endpoint two days later and its first
/// answer is one more 503: U2's message is retried (what waited for the endpoint is
/// delivered once it is back), not given up at that one failure.
#[test]
fn a_message_in_retry_when_its_endpoint_was_disabled_gets_retries_once_enabled_again() {
    block(async {
        let h = H::new();
        h.premium(U1).await;
        h.premium(U2).await;
        let (id, _) = h.endpoint("https://app.example/hooks", Value::Null).await;
        h.answer(status(500));
        h.track(U1, "a", 1600, NOW).await;
        let mut t = NOW;
        while t < NOW + 4 * DAY {
            if t == NOW + 2 * DAY {
                h.track(U2, "a", 1600, t).await;
            }
            h.deliver(t).await.unwrap();
            t += 3600;
        }
        assert_eq!(h.list().await[0]["enabled"], false, "disabled after three days of failures");
        let u2_tried = h.sent().iter().filter(|s| s.user() == U2).count();
        assert!(u2_tried >= 1, "U2's message was tried before the endpoint was disabled");
        let back = NOW + 6 * DAY;
        let (s, v) = h.admin(Method::Post, &format!("/v1/admin/endpoints/{id}/enable"), json!({}), back).await;
        assert_eq!(s, 200, "{v}");
        // Still down at the first try, up an hour later.
        h.answer(Rc::new(move |s: &Sent| Ok(OutResponse { status: if s.at < back + 600 { 503 } else { 200 }, headers: Headers::new(), body: Vec::new() })));
        for later in [0, 3600, 13 * 3600, 26 * 3600] {
            h.deliver(back + later).await.unwrap();
        }
        let u2: Vec<(Value, bool)> = h.mem().outbox().into_iter().filter(|m| m.1["data"]["subject"]["user_id"] == U2).map(|m| (m.1["type"].clone(), m.2)).collect();
        assert_eq!(u2, vec![(json!("alert.crossed"), true)], "U2's crossing, which waited for the endpoint, is delivered: {:?}", h.list().await);
    })
}

// ------------------------------------------------------------------ budgets, leases, failures

/// Six endpoints, three subjects crossing 80% and then 100%: a delivery run on any budget
/// from nothing to 40 requests makes no more requests than it may, and claims nothing it
/// does not send (a run right after it, at the same moment, sends everything left); each
/// message reaches each endpoint once, each subject's in order.
#[test]
fn a_delivery_run_on_any_budget_keeps_to_it_and_leaves_nothing_claimed() {
    block(async {
        for budget in 0..=40u64 {
            let h = H::new();
            for u in [U1, U2, U3] {
                h.premium(u).await;
            }
            for i in 0..6 {
                h.endpoint(&format!("https://app.example/hooks/{i}"), Value::Null).await;
            }
            for u in [U1, U2, U3] {
                h.track(u, "a", 1600, NOW).await;
                h.track(u, "b", 400, NOW).await;
            }
            assert_eq!(h.mem().outbox().len(), 36);
            h.app.take_outbox_work();
            let before = h.app.requests();
            let c = h.rx.clock.clone();
            h.app.deliver_within(&move || Timestamp(c.get()), budget).await.unwrap();
            let used = h.app.requests() - before;
            assert!(used <= budget, "budget {budget}: {used} requests");
            let first = h.sent().len();
            h.deliver(NOW).await.unwrap();
            let counts = h.counts();
            assert_eq!(counts.len(), 36, "budget {budget}: {first} sent by the first run, then {} at the same moment", h.sent().len() - first);
            assert!(counts.values().all(|n| *n == 1), "budget {budget}: {counts:?}");
            for i in 0..6 {
                for u in [U1, U2, U3] {
                    let rules: Vec<String> = h
                        .sent()
                        .iter()
                        .filter(|s| s.url.ends_with(&format!("/{i}")) && s.user() == u)
                        .map(|s| s.json()["data"]["rule"].as_str().unwrap_or("").to_string())
                        .collect();
                    assert_eq!(rules, ["limit:monthly_ai_credits:80%", "limit:monthly_ai_credits:100%"], "budget {budget}");
                }
            }
        }
    })
}

/// Endpoints that take their whole 10 s, a store that takes 3 s to record each attempt:
/// a run's page of five outlasts its one-minute lease, and a second run (another request's
/// waitUntil) starting then claims the message the first is still sending. Each message
/// must reach each endpoint once.
#[test]
fn a_slow_store_does_not_let_an_overlapping_run_send_a_message_again() {
    block(async {
        let h = H::new();
        h.premium(U1).await;
        for i in 0..5 {
            h.endpoint(&format!("https://app.example/hooks/{i}"), Value::Null).await;
        }
        h.track(U1, "a", 1600, NOW).await;
        h.rx.delay.set(10);
        h.gate().slow_attempt.set(3);
        h.rx.clock.set(NOW);
        let c1 = h.rx.clock.clone();
        let c2 = h.rx.clock.clone();
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let first = async {
            let r = h.app.deliver_within(&move || Timestamp(c1.get()), PAID).await;
            d.set(true);
            r
        };
        let clock = h.rx.clock.clone();
        let second = async {
            while clock.get() < NOW + 61 {
                if done.get() {
                    // The first run ended early: the second comes a minute after it began.
                    clock.set(NOW + 61);
                    break;
                }
                tokio::task::yield_now().await;
            }
            h.app.deliver_within(&move || Timestamp(c2.get()), PAID).await
        };
        let (a, b) = tokio::join!(first, second);
        a.unwrap();
        b.unwrap();
        let twice: Vec<_> = h.counts().into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(twice.is_empty(), "sent twice to one endpoint: {twice:?}");
        assert!(h.mem().outbox().iter().all(|m| m.2));
    })
}

/// Enabling an endpoint that is enabled changes nothing: it does not make a message that a
/// run is sending right now due again, so a second run does not send it too.
#[test]
fn enabling_an_enabled_endpoint_does_not_resend_a_message_in_flight() {
    block(async {
        let h = H::new();
        h.premium(U1).await;
        let (id, _) = h.endpoint("https://app.example/hooks", Value::Null).await;
        h.track(U1, "a", 1600, NOW).await;
        h.rx.delay.set(10);
        h.rx.clock.set(NOW);
        let c1 = h.rx.clock.clone();
        let c2 = h.rx.clock.clone();
        let now1 = move || Timestamp(c1.get());
        let first = h.app.deliver_within(&now1, PAID);
        let sent = h.rx.sent.clone();
        let meanwhile = async {
            while sent.borrow().is_empty() {
                tokio::task::yield_now().await;
            }
            let at = c2.get();
            let (s, v) = h.admin(Method::Post, &format!("/v1/admin/endpoints/{id}/enable"), json!({}), at).await;
            assert_eq!(s, 200, "{v}");
            let c = c2.clone();
            h.app.deliver_within(&move || Timestamp(c.get()), PAID).await
        };
        let (a, b) = tokio::join!(first, meanwhile);
        a.unwrap();
        b.unwrap();
        assert_eq!(h.sent().len(), 1, "the message in flight was sent again: {:?}", h.counts());
    })
}

/// The store fails as the run reads the due messages (nothing sent), then as it records a
/// delivery the endpoint took: the message may go once more (at least once, with the same
/// webhook-id and a valid signature of its own time), the round's other message goes after
/// the lease, and once recorded nothing goes again.
#[test]
fn a_store_failing_around_a_delivery_loses_nothing_and_repeats_at_most_the_unrecorded_one() {
    block(async {
        let h = H::new();
        h.premium(U1).await;
        let (_, s1) = h.endpoint("https://one.example/hooks", Value::Null).await;
        let (_, s2) = h.endpoint("https://two.example/hooks", Value::Null).await;
        h.track(U1, "a", 1600, NOW).await;
        h.gate().fail_next.borrow_mut().push("outbox_due");
        assert!(h.deliver(NOW).await.is_err());
        assert!(h.sent().is_empty());
        h.gate().fail_next.borrow_mut().push("outbox_attempt");
        assert!(h.deliver(NOW + 1).await.is_err(), "the record failed");
        assert_eq!(h.sent().len(), 1);
        for t in [NOW + 62, NOW + 120, NOW + DAY] {
            h.deliver(t).await.unwrap();
        }
        let sent = h.sent();
        assert!(h.mem().outbox().iter().all(|m| m.2), "all delivered: {:?}", h.mem().outbox());
        let counts = h.counts();
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[&(sent[0].url.clone(), sent[0].id.clone())], 2, "the unrecorded delivery once more: {counts:?}");
        assert_eq!(counts.values().sum::<usize>(), 3, "{counts:?}");
        for s in &sent {
            let secret = if s.url.contains("one.") { &s1 } else { &s2 };
            assert!(verifies(secret, &s.id, &s.timestamp, &s.body, &s.signature));
            assert_eq!(s.timestamp, s.at.to_string());
        }
    })
}

/// A clock behind a message's creation sends nothing and loses nothing; after a failure,
/// a clock that went back does not retry sooner than the backoff says; each send is
/// signed with the clock it was sent at.
#[test]
fn a_clock_that_goes_back_neither_loses_nor_hurries_a_message() {
    block(async {
        let h = H::new();
        h.premium(U1).await;
        let (_, secret) = h.endpoint("https://app.example/hooks", Value::Null).await;
        h.track(U1, "a", 1600, NOW).await;
        h.deliver(NOW - 3600).await.unwrap();
        assert!(h.sent().is_empty(), "not due before it was made");
        h.answer(status(500));
        h.deliver(NOW).await.unwrap();
        assert_eq!(h.sent().len(), 1);
        for t in [NOW - 600, NOW - 1, NOW + 5, NOW + 29] {
            h.deliver(t).await.unwrap();
        }
        assert_eq!(h.sent().len(), 1, "not retried before its backoff, whatever the clock did meanwhile");
        h.answer(status(200));
        h.deliver(NOW + 30).await.unwrap();
        h.deliver(NOW - DAY).await.unwrap();
        h.deliver(NOW + DAY).await.unwrap();
        let sent = h.sent();
        assert_eq!(sent.len(), 2);
        assert!(h.mem().outbox()[0].2);
        assert_eq!(sent[1].timestamp, (NOW + 30).to_string());
        assert!(verifies(&secret, &sent[1].id, &sent[1].timestamp, &sent[1].body, &sent[1].signature));
        let listed = h.list().await;
        assert_eq!((listed[0]["enabled"].as_bool(), listed[0]["failing_since"].clone()), (Some(true), Value::Null), "{listed:?}");
    })
}
