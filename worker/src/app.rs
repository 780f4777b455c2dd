//! The worker's routes over plain [`InRequest`] / [`AppResponse`] values, so the same
//! code runs under workerd (see `entry`) and natively in tests.
//!
//! The app holds no business rule: it parses HTTP, asks the core (`tollgate`) what a
//! request or an event means, and persists the answer through [`SupabaseClient`].
//! Errors are JSON `{"error": {"code", "message"}}` with the right status: 4xx for bad
//! input (never retried by providers), 5xx when the store fails (so they retry).

use serde_json::{json, Value};
use std::cell::RefCell;

use tollgate::catalog::Catalog;
use tollgate::snapshot::SnapshotSigner;
use tollgate::time::Timestamp;
use tollgate::verify::{RazorpayVerifier, StripeVerifier};

use crate::auth::{self, AuthError, Claims, KeySet};
use crate::config::Config;
use crate::http::{AppResponse, InRequest, Method, OutRequest, Transport};
use crate::state::{self, SubjectState};
use crate::supabase::{StoreError, SupabaseClient};

/// How long fetched JWKS keys are trusted before they are fetched again.
pub const JWKS_TTL_SECS: i64 = 600;
/// A token naming an unknown key triggers a refetch at most this often.
pub const JWKS_MIN_REFETCH_SECS: i64 = 30;

/// Builds a JSON error response.
pub fn error(status: u16, code: &str, message: impl Into<String>) -> AppResponse {
    AppResponse::json(status, &json!({"error": {"code": code, "message": message.into()}}))
}

pub fn error_json(status: u16, code: &str, message: impl Into<String>, extra: Value) -> AppResponse {
    let mut body = json!({"error": {"code": code, "message": message.into()}});
    if let (Some(obj), Value::Object(more)) = (body["error"].as_object_mut(), extra) {
        obj.extend(more);
    }
    AppResponse::json(status, &body)
}

/// A failing store is the sender's cue to retry: 503 (unavailable) or 500.
pub fn store_error(e: &StoreError) -> AppResponse {
    match e {
        StoreError::Unavailable(_) => error(503, "store_unavailable", e.to_string()).with_header("retry-after", "5"),
        _ => error(500, "store_error", e.to_string()),
    }
}

pub struct App<T> {
    pub config: Config,
    pub catalog: Catalog,
    pub store: SupabaseClient<T>,
    stripe: Option<StripeVerifier>,
    razorpay: Option<RazorpayVerifier>,
    signer: Option<SnapshotSigner>,
    jwks: RefCell<Option<(i64, KeySet)>>,
    jwks_tried_at: RefCell<Option<i64>>,
    /// Each subject's state after its last usage charge here (see [`crate::consume`]).
    pub(crate) usage_states: crate::consume::UsageStates,
}

/// The embedded catalog named `name` (see build.rs).
pub fn embedded_catalog(name: &str) -> Result<Catalog, String> {
    let (_, json) = crate::CATALOGS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        format!(
            "CATALOG `{name}` is not embedded; known: {}",
            crate::CATALOGS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )
    })?;
    Catalog::from_json(json).map_err(|e| e.to_string())
}

impl<T: Transport> App<T> {
    pub fn new(config: Config, transport: T) -> Result<App<T>, String> {
        let catalog = embedded_catalog(&config.catalog)?;
        let stripe = if config.stripe_secrets.is_empty() {
            None
        } else {
            Some(
                StripeVerifier::new(config.stripe_secrets.iter())
                    .map_err(|e| format!("STRIPE_WEBHOOK_SECRETS: {e}"))?
                    .with_tolerance(config.stripe_tolerance_secs),
            )
        };
        let razorpay = if config.razorpay_secrets.is_empty() {
            None
        } else {
            Some(
                RazorpayVerifier::new(config.razorpay_secrets.iter())
                    .map_err(|e| format!("RAZORPAY_WEBHOOK_SECRET: {e}"))?,
            )
        };
        let signer = match &config.snapshot_seed {
            Some(seed) => Some(
                SnapshotSigner::from_seed(&config.snapshot_key_id, seed)
                    .map_err(|e| format!("SNAPSHOT_SIGNING_KEY: {e}"))?,
            ),
            None => None,
        };
        let store = SupabaseClient::new(&config.supabase_url, &config.service_role_key, transport);
        Ok(App {
            config,
            catalog,
            store,
            stripe,
            razorpay,
            signer,
            jwks: RefCell::new(None),
            jwks_tried_at: RefCell::new(None),
            usage_states: Default::default(),
        })
    }

    /// Routes one request: a body over [`crate::routes::MAX_BODY_BYTES`] is refused first,
    /// then the path and method are looked up in [`crate::routes::ROUTES`].
    pub async fn handle(&self, req: InRequest, now: Timestamp) -> AppResponse {
        use crate::routes::{self, Resolved, Route};
        let path = req.path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let too_large = routes::body_too_large(&req.headers, req.body.len());
        let resp = match (too_large, routes::resolve(req.method, path)) {
            (Some(size), _) => error(
                413,
                "body_too_large",
                format!(
                    "the request body ({size} bytes) is larger than {} bytes (1 MiB), the most any route accepts",
                    routes::MAX_BODY_BYTES
                ),
            ),
            (None, Resolved::Found(route)) => match route {
                Route::Healthz => self.healthz(),
                Route::Catalog => self.catalog_route(),
                Route::Entitlements => self.entitlements(&req, now).await,
                Route::UsageQuote => self.usage(&req, now, false).await,
                Route::UsageConsume => self.usage(&req, now, true).await,
                Route::AdminGrants => self.admin(&req, now, false).await,
                Route::AdminSeats => self.admin(&req, now, true).await,
                Route::StripeWebhook => self.webhook(crate::webhook::Provider::Stripe, &req, now).await,
                Route::RazorpayWebhook => self.webhook(crate::webhook::Provider::Razorpay, &req, now).await,
            },
            _ if req.method == Method::Options => AppResponse {
                status: 204,
                headers: cors_headers(),
                body: vec![],
            },
            (None, Resolved::MethodNotAllowed(allowed)) => error(
                405,
                "method_not_allowed",
                format!("{} is not allowed on {path}", req.method.as_str()),
            )
            .with_header("allow", routes::allow_header(allowed)),
            (None, Resolved::NotFound) => error(404, "not_found", format!("no route for {path}")),
        };
        let mut resp = resp;
        for (k, v) in cors_headers().iter() {
            if resp.headers.get(k).is_none() {
                resp.headers.set(k, v);
            }
        }
        if req.method == Method::Head {
            resp.body.clear();
        }
        resp
    }

    fn healthz(&self) -> AppResponse {
        let m = self.catalog.meta();
        AppResponse::json(
            200,
            &json!({
                "status": "ok",
                "catalog": {"id": m.id, "version": m.version},
                "webhooks": {"stripe": self.stripe.is_some(), "razorpay": self.razorpay.is_some()},
                "snapshots": self.signer.as_ref().map(|s| json!({"kid": s.kid(), "public_key": s.public_key_b64url()})),
            }),
        )
    }

    fn catalog_route(&self) -> AppResponse {
        let m = self.catalog.meta();
        let doc: Value = serde_json::from_str(&self.catalog.to_json()).unwrap_or(Value::Null);
        AppResponse::json(200, &doc)
            .with_header("cache-control", "public, max-age=300")
            .with_header("etag", format!("\"{}-{}\"", m.id, m.version))
    }

    // ------------------------------------------------------------------ auth

    async fn keys(&self, kid: Option<&str>, now: i64) -> Result<Option<KeySet>, AuthError> {
        let Some(url) = self.config.jwks_url.clone() else {
            return Ok(None);
        };
        let fresh = {
            let cached = self.jwks.borrow();
            match &*cached {
                Some((at, set)) if now.saturating_sub(*at) < JWKS_TTL_SECS && set.has_kid(kid) => Some(set.clone()),
                _ => None,
            }
        };
        if fresh.is_some() {
            return Ok(fresh);
        }
        if self
            .jwks_tried_at
            .borrow()
            .is_some_and(|t| now.saturating_sub(t) < JWKS_MIN_REFETCH_SECS)
        {
            return Ok(self.jwks.borrow().as_ref().map(|(_, s)| s.clone()));
        }
        *self.jwks_tried_at.borrow_mut() = Some(now);
        let req = OutRequest {
            method: Method::Get,
            url,
            headers: Default::default(),
            body: None,
        };
        match self.store.transport().send(req).await {
            Ok(r) if r.status == 200 => match KeySet::parse(&String::from_utf8_lossy(&r.body)) {
                Ok(set) => {
                    *self.jwks.borrow_mut() = Some((now, set.clone()));
                    Ok(Some(set))
                }
                Err(_) => Ok(self.jwks.borrow().as_ref().map(|(_, s)| s.clone())),
            },
            // Keep using what was fetched before; a token for an unknown key fails below.
            _ => Ok(self.jwks.borrow().as_ref().map(|(_, s)| s.clone())),
        }
    }

    /// The signed-in user of a request, or a 401 response.
    pub async fn user(&self, req: &InRequest, now: Timestamp) -> Result<Claims, AppResponse> {
        let unauthorized = |e: AuthError| error(401, e.code(), e.to_string()).with_header("www-authenticate", "Bearer");
        let token = auth::bearer(req.headers.get("authorization")).map_err(unauthorized)?;
        if self.config.jwt_secret.is_none() && self.config.jwks_url.is_none() {
            return Err(error(500, "auth_not_configured", AuthError::NotConfigured.to_string()));
        }
        let (alg, kid) = auth::token_alg_kid(token).map_err(unauthorized)?;
        let keys = if alg == "HS256" {
            None
        } else {
            self.keys(kid.as_deref(), now.unix()).await.map_err(unauthorized)?
        };
        if matches!(alg.as_str(), "ES256" | "RS256") && self.config.jwks_url.is_some() && keys.is_none() {
            return Err(error(
                503,
                "jwks_unavailable",
                "the signing keys (SUPABASE_JWKS_URL) could not be fetched; retry",
            )
            .with_header("retry-after", "5"));
        }
        let claims = auth::verify_access_token(
            token,
            self.config.jwt_secret.as_deref(),
            keys.as_ref(),
            self.config.jwt_audience.as_deref(),
            Some(self.config.jwt_issuer.as_str()),
            now.unix(),
        )
        .await
        .map_err(unauthorized)?;
        // Supabase user ids are UUIDs (auth.users.id).
        if !crate::state::is_uuid(&claims.sub) {
            return Err(unauthorized(AuthError::NotAUser(format!(
                "sub `{}` is not a user id",
                claims.sub
            ))));
        }
        Ok(claims)
    }

    // ------------------------------------------------------------------ entitlements

    async fn entitlements(&self, req: &InRequest, now: Timestamp) -> AppResponse {
        let claims = match self.user(req, now).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        let Some(signer) = &self.signer else {
            return error(503, "snapshots_not_configured", "SNAPSHOT_SIGNING_KEY is not set");
        };
        let subject = state::Subject::user(&claims.sub);
        let st = match SubjectState::load(&self.store, &subject).await {
            Ok(s) => s,
            Err(e) => return store_error(&e),
        };
        let ents = st.entitlements_for_snapshot(&self.catalog, now);
        let ttl = u32::try_from(self.config.snapshot_ttl_secs).unwrap_or(u32::MAX);
        match signer.issue(&ents, self.catalog.meta(), now, ttl) {
            Ok(signed) => AppResponse::json(
                200,
                &json!({
                    "token": signed.token,
                    "snapshot": signed.snapshot,
                    "kid": signer.kid(),
                    "public_key": signer.public_key_b64url(),
                }),
            ),
            Err(e) => error(500, "snapshot_error", e.to_string()),
        }
    }

    // ------------------------------------------------------------------ usage

    async fn usage(&self, req: &InRequest, now: Timestamp, consume: bool) -> AppResponse {
        let claims = match self.user(req, now).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        crate::consume::handle(self, req, &claims, now, consume).await
    }

    // ------------------------------------------------------------------ admin

    async fn admin(&self, req: &InRequest, now: Timestamp, seats: bool) -> AppResponse {
        let Some(secret) = &self.config.admin_secret else {
            return error(404, "not_found", "admin routes are disabled (no ADMIN_SECRET)");
        };
        let presented = req
            .headers
            .get("x-admin-secret")
            .or_else(|| auth::bearer(req.headers.get("authorization")).ok());
        if !auth::admin_secret_matches(presented, secret) {
            return error(
                401,
                "bad_admin_secret",
                "send the admin secret as `Authorization: Bearer <ADMIN_SECRET>`",
            )
            .with_header("www-authenticate", "Bearer");
        }
        if seats {
            crate::admin::seats(self, req, now).await
        } else {
            crate::admin::grants(self, req, now).await
        }
    }

    // ------------------------------------------------------------------ webhooks

    async fn webhook(&self, provider: crate::webhook::Provider, req: &InRequest, now: Timestamp) -> AppResponse {
        crate::webhook::handle(self, provider, req, now).await
    }

    pub fn stripe_verifier(&self) -> Option<&StripeVerifier> {
        self.stripe.as_ref()
    }
    pub fn razorpay_verifier(&self) -> Option<&RazorpayVerifier> {
        self.razorpay.as_ref()
    }

    /// The scheduled handler: retries kept events and reports expired grants.
    pub async fn scheduled(&self, now: Timestamp) -> Result<Value, StoreError> {
        crate::webhook::scheduled(self, now).await
    }
}

fn cors_headers() -> crate::http::Headers {
    crate::http::Headers::new()
        .with("access-control-allow-origin", "*")
        .with("access-control-allow-methods", "GET, POST, OPTIONS")
        .with(
            "access-control-allow-headers",
            "authorization, content-type, idempotency-key",
        )
        .with("access-control-max-age", "86400")
}

/// Reads a JSON request body, or a 400 response.
pub fn json_body(req: &InRequest) -> Result<Value, AppResponse> {
    if req.body.is_empty() {
        return Err(error(400, "empty_body", "a JSON body is required"));
    }
    serde_json::from_slice(&req.body).map_err(|e| error(400, "malformed_json", format!("the body is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_catalog_is_embedded_and_valid() {
        assert!(crate::CATALOGS.len() >= 4, "catalogs/*.toml are embedded");
        for (name, _) in crate::CATALOGS {
            let c = embedded_catalog(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&c.meta().id, name, "file name and catalog id agree");
        }
        assert!(embedded_catalog("nope").unwrap_err().contains("vcm-suite"));
    }
}
