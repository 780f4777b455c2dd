//! How the worker authenticates callers, attacked: Supabase access tokens verified against
//! the project's JWKS (ES256, RS256) as the app fetches and caches it over its
//! `Transport`, the JWKS endpoint failing in every way, algorithm confusion, signature
//! encodings, claims at their edges, and hostile headers.
//!
//! The app is built on the in-memory store with a transport that serves a JWKS (or fails,
//! or holds its answer back) and counts every fetch.
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::{signature::Signer, Signature, SigningKey};
use serde_json::{json, Value};
use sha2::Sha256;

use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{AppResponse, Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;

const NOW: i64 = 1_800_000_000;
const SUPABASE: &str = "http://127.0.0.1:54321";
const ISS: &str = "http://127.0.0.1:54321/auth/v1";
const JWKS_URL: &str = "http://127.0.0.1:54321/auth/v1/.well-known/jwks.json";
const SECRET: &str = "auth-adversarial-jwt-secret-with-at-least-32-characters";
const U1: &str = "00000000-0000-4000-8000-000000000001";
const U2: &str = "00000000-0000-4000-8000-000000000002";

// ------------------------------------------------------------------ a JWKS endpoint

/// What the JWKS endpoint answers: a status and body, or a transport failure.
type Answer = Result<(u16, String), TransportError>;

#[derive(Default)]
struct JwksState {
    answer: RefCell<Option<Answer>>,
    sent: RefCell<Vec<OutRequest>>,
    /// When set, an answer waits for this to be notified (a fetch in flight).
    hold: RefCell<Option<Rc<tokio::sync::Notify>>>,
}

/// A transport that serves the JWKS (whatever URL is asked, it answers `answer`) and
/// records every request.
#[derive(Clone, Default)]
struct Jwks(Rc<JwksState>);

impl Jwks {
    fn serve(&self, doc: &Value) {
        *self.0.answer.borrow_mut() = Some(Ok((200, doc.to_string())));
    }
    fn answer(&self, a: Answer) {
        *self.0.answer.borrow_mut() = Some(a);
    }
    fn fetches(&self) -> usize {
        self.0.sent.borrow().len()
    }
    fn urls(&self) -> Vec<String> {
        self.0.sent.borrow().iter().map(|r| r.url.clone()).collect()
    }
}

impl Transport for Jwks {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        self.0.sent.borrow_mut().push(req);
        let hold = self.0.hold.borrow().clone();
        if let Some(n) = hold {
            n.notified().await;
        }
        let a = self.0.answer.borrow().clone().unwrap_or_else(|| Err(TransportError("no answer set".into())));
        a.map(|(status, body)| OutResponse { status, headers: Headers::new(), body: body.into_bytes() })
    }
}

fn config(with_secret: bool) -> Config {
    let mut vars: BTreeMap<&str, String> = [
        ("SUPABASE_URL", SUPABASE.to_string()),
        ("SUPABASE_SERVICE_ROLE_KEY", "svc".to_string()),
        ("SUPABASE_JWKS_URL", JWKS_URL.to_string()),
        ("CATALOG", "video-studio".to_string()),
        ("SNAPSHOT_SIGNING_KEY", "01".repeat(32)),
    ]
    .into_iter()
    .collect();
    if with_secret {
        vars.insert("SUPABASE_JWT_SECRET", SECRET.to_string());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("config")
}

fn app_with(jwks: &Jwks, with_secret: bool) -> App<Jwks, MemoryStore> {
    let app = App::with_store(config(with_secret), jwks.clone(), MemoryStore::new()).expect("app");
    for u in [U1, U2] {
        app.ctx.store.add_user_with_email(u, &common::email_of(u));
    }
    app
}

/// The app on a JWKS only (no HS256 secret).
fn app(jwks: &Jwks) -> App<Jwks, MemoryStore> {
    app_with(jwks, false)
}

async fn get_with(app: &App<Jwks, MemoryStore>, headers: Headers, now: i64) -> AppResponse {
    let req = InRequest { method: Method::Get, path: "/v1/entitlements".into(), query: String::new(), headers, body: vec![] };
    app.handle(req, Timestamp(now)).await
}

/// `GET /v1/entitlements` with `token` at `now`.
async fn get(app: &App<Jwks, MemoryStore>, token: &str, now: i64) -> AppResponse {
    get_with(app, Headers::new().with("authorization", format!("Bearer {token}")), now).await
}

fn code(r: &AppResponse) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v["error"]["code"].as_str().unwrap_or("").to_string()
}

fn show(r: &AppResponse) -> String {
    format!("{} {}", r.status, String::from_utf8_lossy(&r.body).chars().take(400).collect::<String>())
}

// ------------------------------------------------------------------ keys and tokens

fn b64(x: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(x)
}

fn claims(uid: &str, now: i64) -> Value {
    json!({"sub": uid, "role": "authenticated", "aud": "authenticated", "iss": ISS, "exp": now + 3600})
}

fn ec(byte: u8) -> SigningKey {
    SigningKey::from_slice(&[byte; 32]).unwrap()
}

fn ec_jwk(sk: &SigningKey, kid: &str) -> Value {
    let p = sk.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
           "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())})
}

/// `header.payload` and its ES256 signature.
fn es256_parts(sk: &SigningKey, header: &Value, claims: &Value) -> (String, Signature) {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig: Signature = sk.sign(input.as_bytes());
    (input, sig)
}

fn es256_with(sk: &SigningKey, header: &Value, claims: &Value) -> String {
    let (input, sig) = es256_parts(sk, header, claims);
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn es256(sk: &SigningKey, kid: &str, claims: &Value) -> String {
    es256_with(sk, &json!({"alg": "ES256", "typ": "JWT", "kid": kid}), claims)
}

/// A deterministic byte stream (SHA-256 of a start value and a counter): the same RSA
/// keys on every run.
struct Stream {
    start: u64,
    n: u64,
}

impl rand_chacha::rand_core::RngCore for Stream {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        use sha2::Digest;
        for chunk in dest.chunks_mut(32) {
            self.n += 1;
            let d = Sha256::new().chain_update(self.start.to_le_bytes()).chain_update(self.n.to_le_bytes()).finalize();
            chunk.copy_from_slice(&d[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_chacha::rand_core::CryptoRng for Stream {}

fn rsa_pair(bits: usize, start: u64) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut Stream { start, n: 0 }, bits).unwrap()
}

/// One 2048-bit RSA key for every test (prime search is slow).
fn rsa2048() -> &'static rsa::RsaPrivateKey {
    static K: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| rsa_pair(2048, 11))
}

fn rsa_jwk(key: &rsa::RsaPrivateKey, kid: &str) -> Value {
    use rsa::traits::PublicKeyParts;
    json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
           "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())})
}

fn rs256(key: &rsa::RsaPrivateKey, kid: &str, claims: &Value) -> String {
    use rsa::signature::{SignatureEncoding, Signer};
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn hs256_with_key(key: &[u8], header: &Value, claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(input.as_bytes());
    format!("{input}.{}", b64(&m.finalize().into_bytes()))
}

fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

// ------------------------------------------------------------------ caching and rotation

/// ES256 and RS256 tokens of the published keys are accepted; the JWKS is fetched once
/// (from `SUPABASE_JWKS_URL`) and served from the cache until its TTL, then fetched again.
#[test]
fn published_keys_verify_and_the_jwks_is_fetched_once_per_ttl() {
    common::block(async {
        let t = Jwks::default();
        let k1 = ec(1);
        t.serve(&jwks(&[ec_jwk(&k1, "k1"), rsa_jwk(rsa2048(), "r1")]));
        let app = app(&t);
        for i in 0..10 {
            let r = get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW + i).await;
            assert_eq!(r.status, 200, "{}", show(&r));
            let r = get(&app, &rs256(rsa2048(), "r1", &claims(U2, NOW)), NOW + i).await;
            assert_eq!(r.status, 200, "{}", show(&r));
        }
        assert_eq!(t.fetches(), 1, "one fetch for twenty requests");
        assert_eq!(t.urls(), vec![JWKS_URL.to_string()]);
        let r = get(&app, &es256(&k1, "k1", &claims(U1, NOW + 700)), NOW + 700).await;
        assert_eq!(r.status, 200, "{}", show(&r));
        assert_eq!(t.fetches(), 2, "fetched again after the TTL");
    });
}

/// A key rotated in after the cache was filled: a token naming it makes the app fetch the
/// JWKS once more, and the new key is then served from the cache.
#[test]
fn a_rotated_in_key_is_fetched_once_and_then_cached() {
    common::block(async {
        let t = Jwks::default();
        let (k1, k2) = (ec(1), ec(2));
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        let r = get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW).await;
        assert_eq!(r.status, 200, "{}", show(&r));
        t.serve(&jwks(&[ec_jwk(&k1, "k1"), ec_jwk(&k2, "k2")]));
        let at = NOW + 60;
        for i in 0..5 {
            let r = get(&app, &es256(&k2, "k2", &claims(U2, at)), at + i).await;
            assert_eq!(r.status, 200, "{}", show(&r));
            let r = get(&app, &es256(&k1, "k1", &claims(U1, at)), at + i).await;
            assert_eq!(r.status, 200, "{}", show(&r));
        }
        assert_eq!(t.fetches(), 2);
    });
}

/// A kid the JWKS never publishes (an attacker's) is refused, and does not make every
/// request fetch the JWKS: at most one fetch per JWKS_MIN_REFETCH_SECS, while users of
/// the published key go on unaffected.
#[test]
fn a_kid_that_never_appears_does_not_fetch_on_every_request() {
    common::block(async {
        let t = Jwks::default();
        let (k1, evil) = (ec(1), ec(66));
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        assert_eq!(get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW).await.status, 200);
        // 600 seconds of an attacker's token every second, each with a fresh kid.
        for s in 0..600 {
            let at = NOW + s;
            for j in 0..3 {
                let r = get(&app, &es256(&evil, &format!("evil-{s}-{j}"), &claims(U1, at)), at).await;
                assert_eq!((r.status, code(&r)), (401, "unknown_key".to_string()), "{}", show(&r));
            }
            if s % 50 == 0 {
                let r = get(&app, &es256(&k1, "k1", &claims(U1, at)), at).await;
                assert_eq!(r.status, 200, "{}", show(&r));
            }
        }
        // 1 at the start, then at most one per 30 s (and one for the TTL).
        assert!(t.fetches() <= 1 + 600 / 30 + 1, "{} fetches for 1,800 unknown-kid requests", t.fetches());
    });
}

// ------------------------------------------------------------------ a failing key source

/// A JWKS endpoint that fails on a cold isolate (5xx, 404, no answer, a timeout, garbage,
/// JSON without a key list) is 503 `jwks_unavailable` with `Retry-After`: never a 401
/// that signs the user out, never a token let through (a forged one neither).
#[test]
fn a_failing_jwks_on_a_cold_isolate_is_503_and_lets_nothing_through() {
    common::block(async {
        let k1 = ec(1);
        let good = es256(&k1, "k1", &claims(U1, NOW));
        let forged = es256(&ec(66), "k1", &claims(U1, NOW));
        let rs = rs256(rsa2048(), "r1", &claims(U1, NOW));
        let failures: Vec<(&str, Answer)> = vec![
            ("500", Ok((500, "oops".into()))),
            ("502", Ok((502, "".into()))),
            ("503 with a JWKS body", Ok((503, jwks(&[ec_jwk(&k1, "k1")]).to_string()))),
            ("404", Ok((404, "not found".into()))),
            ("301", Ok((301, "".into()))),
            ("connection refused", Err(TransportError("connection refused".into()))),
            ("timeout", Err(TransportError::timed_out("no answer in 10000 ms"))),
            ("HTML", Ok((200, "<html>maintenance</html>".into()))),
            ("empty body", Ok((200, "".into()))),
            ("keys not a list", Ok((200, r#"{"keys":{"k1":1}}"#.into()))),
            ("no keys member", Ok((200, "{}".into()))),
            ("JSON array", Ok((200, "[]".into()))),
        ];
        for (what, answer) in failures {
            for (name, token) in [("good", &good), ("forged", &forged), ("rs256", &rs)] {
                let t = Jwks::default();
                t.answer(answer.clone());
                let app = app(&t);
                let r = get(&app, token, NOW).await;
                assert_eq!(r.status, 503, "{what}, {name} token: {}", show(&r));
                assert_eq!(code(&r), "jwks_unavailable", "{what}, {name}");
                assert!(r.headers.get("retry-after").is_some(), "{what}, {name}: no retry-after");
            }
        }
    });
}

/// The JWKS is down when a user arrives with a token of a key rotated in since the cache
/// was filled. The app cannot know whether that key is genuine: it must answer 503 (retry)
/// as it does on a cold isolate, not 401 `unknown_key`, which tells the client the
/// session is invalid and signs the user out. (Tokens of cached keys keep working.)
#[test]
fn a_jwks_that_fails_when_a_rotated_key_is_needed_is_503_not_401() {
    common::block(async {
        let t = Jwks::default();
        let (k1, k2) = (ec(1), ec(2));
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        assert_eq!(get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW).await.status, 200);
        // Supabase rotates to k2; the JWKS endpoint then fails for a while.
        for (what, answer) in [
            ("500", Ok((500, "oops".to_string()))),
            ("timeout", Err(TransportError::timed_out("no answer"))),
            ("garbage", Ok((200, "<html>".to_string()))),
        ] {
            t.answer(answer);
            let at = NOW + 100 + 40 * t.fetches() as i64;
            let r = get(&app, &es256(&k1, "k1", &claims(U1, at)), at).await;
            assert_eq!(r.status, 200, "{what}: a cached key keeps working: {}", show(&r));
            let r = get(&app, &es256(&k2, "k2", &claims(U2, at)), at).await;
            assert_eq!(r.status, 503, "{what}: the key source failed, the token may be genuine: {}", show(&r));
            assert_eq!(code(&r), "jwks_unavailable", "{what}");
        }
        // Past the cache's TTL, with the endpoint still down, the cached key still works.
        t.answer(Ok((500, "oops".into())));
        let at = NOW + 2000;
        let r = get(&app, &es256(&k1, "k1", &claims(U1, at)), at).await;
        assert_eq!(r.status, 200, "stale keys while the endpoint is down: {}", show(&r));
    });
}

/// While the isolate is fetching the JWKS for a new kid, a second request with a token
/// of that kid arrives (Workers serve concurrent requests in one isolate). The fetch will
/// bring the key; the second request must not be told its session is invalid (401
/// `unknown_key`): it should wait for the fetch, or at worst be 503 (retry).
#[test]
fn a_request_during_the_fetch_for_its_key_is_not_401() {
    common::block(async {
        let t = Jwks::default();
        let (k1, k2) = (ec(1), ec(2));
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        assert_eq!(get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW).await.status, 200);
        t.serve(&jwks(&[ec_jwk(&k1, "k1"), ec_jwk(&k2, "k2")]));
        let notify = Rc::new(tokio::sync::Notify::new());
        *t.0.hold.borrow_mut() = Some(notify.clone());
        let at = NOW + 60;
        let first_token = es256(&k2, "k2", &claims(U1, at));
        let first = get(&app, &first_token, at);
        let second = async {
            let r = get(&app, &es256(&k2, "k2", &claims(U2, at)), at).await;
            notify.notify_one();
            r
        };
        let (a, b) = tokio::join!(first, second);
        assert_eq!(a.status, 200, "{}", show(&a));
        assert_ne!(b.status, 401, "the key is being fetched: {}", show(&b));
    });
}

/// RFC 7517 §5: keys of a JWK Set that are missing required members or out of the
/// supported range SHOULD be ignored. One broken key (a coordinate of the wrong length, a
/// point off the curve, an RSA modulus that is not base64url, a padded coordinate) must
/// not make the whole set unusable: every user of the valid key would get 503 for as long
/// as the endpoint publishes it.
#[test]
fn one_malformed_key_does_not_take_the_whole_key_set_down() {
    common::block(async {
        let k1 = ec(1);
        let good = ec_jwk(&k1, "k1");
        let other = ec_jwk(&ec(2), "other");
        let mut short_x = other.clone();
        short_x["x"] = json!(b64(&[7u8; 31]));
        let mut off_curve = other.clone();
        off_curve["y"] = json!(b64(&[1u8; 32]));
        let mut padded = other.clone();
        padded["x"] = json!(format!("{}=", other["x"].as_str().unwrap()));
        let mut no_x = other.clone();
        no_x.as_object_mut().unwrap().remove("x");
        let bad_rsa = json!({"kty": "RSA", "kid": "r-bad", "n": "*not base64*", "e": "AQAB"});
        let mut down = vec![];
        for (what, broken) in [
            ("31-byte x", short_x),
            ("point off the curve", off_curve),
            ("padded x", padded),
            ("no x", no_x),
            ("RSA n not base64url", bad_rsa),
        ] {
            let t = Jwks::default();
            t.serve(&jwks(&[broken, good.clone()]));
            let app = app(&t);
            let r = get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW).await;
            if r.status != 200 {
                down.push(format!("{what} beside a valid key: {}", show(&r)));
            }
        }
        assert!(down.is_empty(), "{down:#?}");
    });
}

// ------------------------------------------------------------------ which keys verify

/// A key the JWKS publishes for encryption or key agreement (`use: "enc"`, `alg:
/// "ECDH-ES"` or `"RSA-OAEP"`, `key_ops` without `verify`), or for another signature
/// algorithm (`alg: "ES384"`), is not a token-signing key and must not verify access
/// tokens. (The RSA parser already refuses a key whose `alg` is not RS256; an EC key's
/// `alg`, and every key's `use` and `key_ops`, are ignored.)
#[test]
fn keys_published_for_another_purpose_do_not_verify_tokens() {
    common::block(async {
        let ok = ec(1);
        let sig_only = ec(2);
        let verify_ops = ec(3);
        let enc = ec(10);
        let ecdh = ec(11);
        let es384 = ec(12);
        let derive = ec(13);
        let k = |sk: &SigningKey, kid: &str, set: &[(&str, Value)], drop: &[&str]| {
            let mut j = ec_jwk(sk, kid);
            for (n, v) in set {
                j[*n] = v.clone();
            }
            for n in drop {
                j.as_object_mut().unwrap().remove(*n);
            }
            j
        };
        let rsa = rsa2048();
        let mut rsa_enc = rsa_jwk(rsa, "r-enc");
        rsa_enc["use"] = json!("enc");
        rsa_enc.as_object_mut().unwrap().remove("alg");
        let keys = vec![
            k(&ok, "ok", &[], &[]),
            k(&sig_only, "sig-no-alg", &[], &["alg"]),
            k(&verify_ops, "verify-ops", &[("key_ops", json!(["verify"]))], &["use"]),
            k(&enc, "enc", &[("use", json!("enc"))], &["alg"]),
            k(&ecdh, "ecdh", &[("alg", json!("ECDH-ES"))], &["use"]),
            k(&es384, "es384", &[("alg", json!("ES384"))], &[]),
            k(&derive, "derive", &[("key_ops", json!(["deriveBits"]))], &["use", "alg"]),
            rsa_enc,
        ];
        let t = Jwks::default();
        t.serve(&jwks(&keys));
        let app = app(&t);
        for (sk, kid) in [(&ok, "ok"), (&sig_only, "sig-no-alg"), (&verify_ops, "verify-ops")] {
            let r = get(&app, &es256(sk, kid, &claims(U1, NOW)), NOW).await;
            assert_eq!(r.status, 200, "signing key {kid}: {}", show(&r));
        }
        let mut let_through = vec![];
        for (sk, kid) in [(&enc, "enc"), (&ecdh, "ecdh"), (&es384, "es384"), (&derive, "derive")] {
            let r = get(&app, &es256(sk, kid, &claims(U1, NOW)), NOW).await;
            if r.status != 401 {
                let_through.push(format!("{kid}: {}", show(&r)));
            }
        }
        let r = get(&app, &rs256(rsa, "r-enc", &claims(U1, NOW)), NOW).await;
        if r.status != 401 {
            let_through.push(format!("r-enc: {}", show(&r)));
        }
        assert!(let_through.is_empty(), "tokens verified by non-signing keys: {let_through:#?}");
    });
}

/// Two keys under one kid are both tried; a key is used only for its own algorithm (an
/// ES256 token relabelled RS256 under a kid both an EC and an RSA key carry is refused,
/// and the other way round); a key nobody published under that kid verifies nothing.
#[test]
fn duplicate_kids_and_relabelled_algorithms() {
    common::block(async {
        let (a, b) = (ec(1), ec(2));
        let rsa = rsa2048();
        let t = Jwks::default();
        t.serve(&jwks(&[ec_jwk(&a, "dup"), ec_jwk(&b, "dup"), rsa_jwk(rsa, "dup")]));
        let app = app(&t);
        for (i, sk) in [&a, &b].into_iter().enumerate() {
            let r = get(&app, &es256(sk, "dup", &claims(U1, NOW)), NOW + i as i64).await;
            assert_eq!(r.status, 200, "{}", show(&r));
        }
        let r = get(&app, &rs256(rsa, "dup", &claims(U1, NOW)), NOW).await;
        assert_eq!(r.status, 200, "{}", show(&r));
        let r = get(&app, &es256(&ec(66), "dup", &claims(U1, NOW)), NOW).await;
        assert_eq!((r.status, code(&r)), (401, "bad_signature".into()), "{}", show(&r));
        // Relabel: the same signature under the other algorithm.
        let relabel = |token: &str, alg: &str| {
            let mut p = token.split('.');
            let (_, body, sig) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            format!("{}.{body}.{sig}", b64(json!({"alg": alg, "kid": "dup"}).to_string().as_bytes()))
        };
        let es_as_rs = relabel(&es256(&a, "dup", &claims(U1, NOW)), "RS256");
        let rs_as_es = relabel(&rs256(rsa, "dup", &claims(U1, NOW)), "ES256");
        for (what, tok) in [("ES256 as RS256", es_as_rs), ("RS256 as ES256", rs_as_es)] {
            let r = get(&app, &tok, NOW).await;
            assert_eq!(r.status, 401, "{what}: {}", show(&r));
        }
        assert_eq!(t.fetches(), 1);
    });
}

/// Algorithm confusion: HS256 tokens whose HMAC key is public material (the JWKS document,
/// an EC point's bytes, an RSA modulus, the `oct` key a careless JWKS publishes) are
/// refused, with a JWKS only and with the legacy secret configured too.
#[test]
fn hs256_tokens_keyed_with_public_material_are_refused() {
    common::block(async {
        use rsa::traits::PublicKeyParts;
        let k1 = ec(1);
        let oct = b"published-symmetric-key-material";
        let doc = jwks(&[
            ec_jwk(&k1, "k1"),
            rsa_jwk(rsa2048(), "r1"),
            json!({"kty": "oct", "kid": "oct1", "alg": "HS256", "k": b64(oct)}),
        ]);
        let point = k1.verifying_key().to_encoded_point(false);
        let jwk_text = ec_jwk(&k1, "k1").to_string();
        let x = ec_jwk(&k1, "k1")["x"].as_str().unwrap().to_string();
        let materials: Vec<(&str, Vec<u8>)> = vec![
            ("the JWKS document", doc.to_string().into_bytes()),
            ("the EC JWK", jwk_text.into_bytes()),
            ("the SEC1 point", point.as_bytes().to_vec()),
            ("x as text", x.into_bytes()),
            ("the RSA modulus", rsa2048().n().to_bytes_be()),
            ("the oct key", oct.to_vec()),
            ("empty", vec![]),
        ];
        for with_secret in [false, true] {
            let t = Jwks::default();
            t.serve(&doc);
            let app = app_with(&t, with_secret);
            assert_eq!(get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW).await.status, 200);
            for (what, key) in &materials {
                for kid in [Some("k1"), Some("r1"), Some("oct1"), None] {
                    let mut h = json!({"alg": "HS256", "typ": "JWT"});
                    if let Some(k) = kid {
                        h["kid"] = json!(k);
                    }
                    let r = get(&app, &hs256_with_key(key, &h, &claims(U1, NOW)), NOW).await;
                    assert_eq!(r.status, 401, "secret configured: {with_secret}; HS256 keyed with {what}, kid {kid:?}: {}", show(&r));
                }
            }
            // The legacy secret still works when configured.
            let r = get(&app, &hs256_with_key(SECRET.as_bytes(), &json!({"alg": "HS256"}), &claims(U1, NOW)), NOW).await;
            assert_eq!(r.status, if with_secret { 200 } else { 401 }, "{}", show(&r));
        }
    });
}

/// Headers that name the key to check with (`jwk`, `jku`, `x5u`, `x5c`) are ignored: an
/// attacker's key embedded or linked in the token verifies nothing, and the worker never
/// fetches an attacker's URL. Variants of `none` and of ES256's spelling are refused.
#[test]
fn keys_named_by_the_token_itself_are_never_used() {
    common::block(async {
        let k1 = ec(1);
        let evil = ec(66);
        let t = Jwks::default();
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        let evil_jwk = ec_jwk(&evil, "k1");
        let c = claims(U1, NOW);
        let headers = [
            json!({"alg": "ES256", "kid": "k1", "jwk": evil_jwk}),
            json!({"alg": "ES256", "jwk": evil_jwk}),
            json!({"alg": "ES256", "kid": "evil", "jku": "https://evil.example/jwks.json"}),
            json!({"alg": "ES256", "jku": "https://evil.example/jwks.json"}),
            json!({"alg": "ES256", "kid": "k1", "x5u": "https://evil.example/cert.pem"}),
            json!({"alg": "ES256", "kid": "k1", "x5c": ["MIIB"]}),
            json!({"alg": "ES256", "kid": "k1", "crit": ["jwk"], "jwk": evil_jwk}),
        ];
        for (i, h) in headers.iter().enumerate() {
            let r = get(&app, &es256_with(&evil, h, &c), NOW + i as i64).await;
            assert_eq!(r.status, 401, "{h}: {}", show(&r));
        }
        for alg in ["none", "NONE", "nOnE", "es256", "ES256 ", " ES256", "ES256\u{0}", "ES512", "PS256", "EdDSA", ""] {
            let h = json!({"alg": alg, "kid": "k1"});
            let (input, sig) = es256_parts(&k1, &h, &c);
            for s in [b64(&sig.to_bytes()), String::new(), "AA".into()] {
                let r = get(&app, &format!("{input}.{s}"), NOW).await;
                assert_eq!(r.status, 401, "alg {alg:?}, signature {s:?}: {}", show(&r));
            }
        }
        assert!(
            t.urls().iter().all(|u| u == JWKS_URL),
            "only the configured JWKS is fetched: {:?}",
            t.urls()
        );
    });
}

/// ES256 signatures are the raw 64 bytes r||s (RFC 7518 §3.4): DER, a byte short or
/// long, zeros, r or s zero, r and s swapped, a flipped bit are all refused.
#[test]
fn es256_signatures_other_than_raw_r_and_s_are_refused() {
    common::block(async {
        let k1 = ec(1);
        let t = Jwks::default();
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        let (input, sig) = es256_parts(&k1, &json!({"alg": "ES256", "kid": "k1"}), &claims(U1, NOW));
        let raw = sig.to_bytes().to_vec();
        let r = get(&app, &format!("{input}.{}", b64(&raw)), NOW).await;
        assert_eq!(r.status, 200, "{}", show(&r));
        let mut swapped = raw[32..].to_vec();
        swapped.extend_from_slice(&raw[..32]);
        let mut flipped = raw.clone();
        flipped[40] ^= 1;
        let mut r0 = raw.clone();
        r0[..32].fill(0);
        let mut s0 = raw.clone();
        s0[32..].fill(0);
        let mut long = raw.clone();
        long.push(0);
        let mut lead = vec![0u8];
        lead.extend_from_slice(&raw);
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("DER", sig.to_der().as_bytes().to_vec()),
            ("63 bytes", raw[..63].to_vec()),
            ("65 bytes (trailing zero)", long),
            ("65 bytes (leading zero)", lead),
            ("zeros", vec![0u8; 64]),
            ("r zero", r0),
            ("s zero", s0),
            ("r and s swapped", swapped),
            ("a bit flipped", flipped),
            ("128 bytes", [raw.clone(), raw.clone()].concat()),
        ];
        for (what, s) in bad {
            let r = get(&app, &format!("{input}.{}", b64(&s)), NOW).await;
            assert_eq!(r.status, 401, "{what}: {}", show(&r));
        }
        // Standard base64 (padding, + and /) is not base64url.
        let std = base64::engine::general_purpose::STANDARD.encode(&raw);
        let r = get(&app, &format!("{input}.{std}"), NOW).await;
        assert!(std.contains(['+', '/', '=']) || r.status == 200, "no character to test with");
        if std.contains(['+', '/', '=']) {
            assert_eq!(r.status, 401, "standard base64 signature: {}", show(&r));
        }
    });
}

/// RSA keys under 2048 bits stay out of the key set: a token naming one is 401
/// `unusable_key`, whose signature is never checked, and repeated such tokens do not make
/// every request fetch the JWKS again.
#[test]
fn weak_rsa_keys_are_refused_without_refetching_on_every_request() {
    common::block(async {
        let weak = rsa_pair(1024, 5);
        let t = Jwks::default();
        t.serve(&jwks(&[rsa_jwk(&weak, "weak"), rsa_jwk(rsa2048(), "r1")]));
        let app = app(&t);
        for i in 0..40 {
            let at = NOW + i;
            let r = get(&app, &rs256(&weak, "weak", &claims(U1, at)), at).await;
            assert_eq!((r.status, code(&r)), (401, "unusable_key".into()), "{}", show(&r));
            let r = get(&app, &rs256(rsa2048(), "r1", &claims(U1, at)), at).await;
            assert_eq!(r.status, 200, "{}", show(&r));
        }
        assert!(t.fetches() <= 2, "{} fetches for 80 requests over 40 s", t.fetches());
    });
}

/// exp and nbf at their edges on the ES256 path (30 s of leeway, inclusive), far-future
/// dates, out-of-range numbers; iat is not a reason to refuse.
#[test]
fn dates_at_their_edges_on_the_jwks_path() {
    common::block(async {
        let k1 = ec(1);
        let t = Jwks::default();
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(U1, NOW);
            f(&mut c);
            es256(&k1, "k1", &c)
        };
        let cases: Vec<(&str, String, u16)> = vec![
            ("exp now - 30", with(&|c| c["exp"] = json!(NOW - 30)), 200),
            ("exp now - 31", with(&|c| c["exp"] = json!(NOW - 31)), 401),
            ("exp now - 30.5", with(&|c| c["exp"] = json!(NOW as f64 - 30.5)), 401),
            ("nbf now + 30", with(&|c| c["nbf"] = json!(NOW + 30)), 200),
            ("nbf now + 31", with(&|c| c["nbf"] = json!(NOW + 31)), 401),
            ("exp i64::MAX", with(&|c| c["exp"] = json!(i64::MAX)), 200),
            ("exp u64::MAX", with(&|c| c["exp"] = json!(u64::MAX)), 200),
            ("exp 1e300", with(&|c| c["exp"] = json!(1e300)), 200),
            ("exp i64::MIN", with(&|c| c["exp"] = json!(i64::MIN)), 401),
            ("exp null", with(&|c| c["exp"] = Value::Null), 401),
            ("exp true", with(&|c| c["exp"] = json!(true)), 401),
            ("nbf i64::MAX", with(&|c| c["nbf"] = json!(i64::MAX)), 401),
            ("nbf null", with(&|c| c["nbf"] = Value::Null), 401),
            ("iat in the future", with(&|c| c["iat"] = json!(NOW + 86_400)), 200),
        ];
        for (what, tok, status) in cases {
            let r = get(&app, &tok, NOW).await;
            assert_eq!(r.status, status, "{what}: {}", show(&r));
        }
        // A number JSON cannot hold as f64 (1e400) in the signed payload is malformed.
        let body = format!(
            r#"{{"sub":"{U1}","role":"authenticated","aud":"authenticated","iss":"{ISS}","exp":1e400}}"#
        );
        let input = format!("{}.{}", b64(br#"{"alg":"ES256","kid":"k1"}"#), b64(body.as_bytes()));
        let sig: Signature = k1.sign(input.as_bytes());
        let r = get(&app, &format!("{input}.{}", b64(&sig.to_bytes())), NOW).await;
        assert_eq!(r.status, 401, "exp 1e400: {}", show(&r));
    });
}

/// `aud` as a string or a list (ours among others is fine), never a near miss; `iss`
/// only exactly; `role` only `authenticated` (a service_role token naming another user's
/// id does not act for them); `sub` only a UUID. On the JWKS path.
#[test]
fn audience_issuer_role_and_subject_forms_on_the_jwks_path() {
    common::block(async {
        let k1 = ec(1);
        let t = Jwks::default();
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(U1, NOW);
            f(&mut c);
            es256(&k1, "k1", &c)
        };
        let cases: Vec<(&str, String, u16)> = vec![
            ("aud list with ours", with(&|c| c["aud"] = json!(["other", "authenticated"])), 200),
            ("aud list of ours", with(&|c| c["aud"] = json!(["authenticated"])), 200),
            ("aud capitalised", with(&|c| c["aud"] = json!("Authenticated")), 401),
            ("aud with a space", with(&|c| c["aud"] = json!("authenticated ")), 401),
            ("aud nested list", with(&|c| c["aud"] = json!([["authenticated"]])), 401),
            ("aud empty list", with(&|c| c["aud"] = json!([])), 401),
            ("aud object", with(&|c| c["aud"] = json!({"authenticated": true})), 401),
            ("iss upper-case host", with(&|c| c["iss"] = json!("HTTP://127.0.0.1:54321/AUTH/V1")), 401),
            ("iss with a query", with(&|c| c["iss"] = json!(format!("{ISS}?x=1"))), 401),
            ("iss with a space", with(&|c| c["iss"] = json!(format!(" {ISS}"))), 401),
            ("iss the project root", with(&|c| c["iss"] = json!(SUPABASE)), 401),
            ("role service_role, another's sub", with(&|c| {
                c["role"] = json!("service_role");
                c["sub"] = json!(U2);
            }), 401),
            ("role Authenticated", with(&|c| c["role"] = json!("Authenticated")), 401),
            ("role list", with(&|c| c["role"] = json!(["authenticated"])), 401),
            ("role supabase_admin", with(&|c| c["role"] = json!("supabase_admin")), 401),
            ("sub braces", with(&|c| c["sub"] = json!(format!("{{{U1}}}"))), 401),
            ("sub without dashes", with(&|c| c["sub"] = json!(U1.replace('-', ""))), 401),
            ("sub with a NUL", with(&|c| c["sub"] = json!(format!("{U1}\u{0}"))), 401),
            ("sub a path", with(&|c| c["sub"] = json!(format!("../{U1}"))), 401),
        ];
        for (what, tok, status) in cases {
            let r = get(&app, &tok, NOW).await;
            assert_eq!(r.status, status, "{what}: {}", show(&r));
        }
    });
}

/// The runtime joins repeated `Authorization` headers with ", ": two users' tokens
/// in one header are refused, whichever comes first, as are other schemes and odd spacing.
#[test]
fn joined_or_odd_authorization_headers_are_refused() {
    common::block(async {
        let k1 = ec(1);
        let t = Jwks::default();
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        let a = es256(&k1, "k1", &claims(U1, NOW));
        let b = es256(&k1, "k1", &claims(U2, NOW));
        let values = [
            format!("Bearer {a}, Bearer {b}"),
            format!("Bearer {a},Bearer {b}"),
            format!("Bearer {a}, {b}"),
            format!("Bearer {a} {b}"),
            format!("Bearer {a},"),
            format!("Basic {a}"),
            format!("Bearer\t{a}"),
            format!("Token {a}"),
            format!("Bearer Bearer {a}"),
        ];
        for v in &values {
            let r = get_with(&app, Headers::new().with("authorization", v.clone()), NOW).await;
            assert_eq!(r.status, 401, "{v:.60}: {}", show(&r));
            assert!(r.headers.get("www-authenticate").is_some(), "401 without www-authenticate");
        }
    });
}

/// Tokens nested deeper than any parser's recursion (in the header, read before the
/// signature; and in a signed payload) are refused without a crash or a JWKS fetch for
/// the unsigned part, and a very long token with an unknown kid costs one fetch at most.
/// What a 401 says about a token's own fields (its `alg`, `kid`, `role`, `sub`) is bounded,
/// as `iss` is (200 characters): an error answer never echoes back a megabyte.
#[test]
fn deep_and_long_tokens_are_refused_cheaply_and_not_echoed_whole() {
    common::block(async {
        let k1 = ec(1);
        let t = Jwks::default();
        t.serve(&jwks(&[ec_jwk(&k1, "k1")]));
        let app = app(&t);
        assert_eq!(get(&app, &es256(&k1, "k1", &claims(U1, NOW)), NOW).await.status, 200);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        // Header nested deep.
        let head = format!(r#"{{"alg":"ES256","kid":"k1","x":{deep}}}"#);
        let tok = format!("{}.{}.{}", b64(head.as_bytes()), b64(claims(U1, NOW).to_string().as_bytes()), b64(&[0; 64]));
        let r = get(&app, &tok, NOW).await;
        assert_eq!(r.status, 401, "{}", show(&r));
        // Payload nested deep, validly signed.
        let body = format!(
            r#"{{"sub":"{U1}","role":"authenticated","aud":"authenticated","iss":"{ISS}","exp":{},"x":{deep}}}"#,
            NOW + 3600
        );
        let input = format!("{}.{}", b64(br#"{"alg":"ES256","kid":"k1"}"#), b64(body.as_bytes()));
        let sig: Signature = k1.sign(input.as_bytes());
        let r = get(&app, &format!("{input}.{}", b64(&sig.to_bytes())), NOW).await;
        assert_eq!(r.status, 401, "{}", show(&r));
        assert_eq!(t.fetches(), 1);
        // Long fields, each echoed in a 401.
        // 60,000 characters: within what the platform lets through in one header.
        let long = "k".repeat(60_000);
        let long_kid = es256(&ec(66), &long, &claims(U1, NOW));
        let long_alg = format!("{}.{}.{}", b64(json!({"alg": long}).to_string().as_bytes()), b64(b"{}"), b64(b"x"));
        let long_role = es256(&k1, "k1", &{
            let mut c = claims(U1, NOW);
            c["role"] = json!(long);
            c
        });
        let long_sub = es256(&k1, "k1", &{
            let mut c = claims(U1, NOW);
            c["sub"] = json!(long);
            c
        });
        let mut too_big = vec![];
        for (what, tok) in [("kid", long_kid), ("alg", long_alg), ("role", long_role), ("sub", long_sub)] {
            let r = get(&app, &tok, NOW + 40).await;
            assert_eq!(r.status, 401, "long {what}: {}", show(&r));
            if r.body.len() > 4096 {
                too_big.push(format!("long {what}: a {}-byte 401", r.body.len()));
            }
        }
        assert!(t.fetches() <= 2, "{} fetches", t.fetches());
        assert!(too_big.is_empty(), "{too_big:?}");
    });
}
