//! What the worker's native tests share: a configuration, signed user tokens, and a
//! transport that refuses every outgoing request (the in-memory store needs none).
#![allow(dead_code)]

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::config::Config;
use tollgate_worker::http::{Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};
use tollgate_worker::memory::MemoryStore;

pub const JWT_SECRET: &str = "model-test-jwt-secret-with-at-least-32-characters";
pub const STRIPE_SECRET: &str = "whsec_model_test_0123456789abcdef";
pub const ADMIN_SECRET: &str = "model-admin-secret";

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
pub async fn call<T: Transport>(
    app: &App<T, MemoryStore>,
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
    let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{ev}")));
    let headers = Headers::new().with("stripe-signature", format!("t={now},v1={sig}"));
    call(app, Method::Post, "/webhooks/stripe", headers, ev, now).await
}
