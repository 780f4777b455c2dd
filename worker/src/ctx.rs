//! The request context every route gets: configuration, the catalog, the typed store,
//! the webhook verifiers and snapshot signer, and who is calling. Handlers depend on it,
//! never on the router ([`crate::app`]).

use std::cell::RefCell;

use tollgate::catalog::Catalog;
use tollgate::snapshot::SnapshotSigner;
use tollgate::time::Timestamp;
use tollgate::verify::{RazorpayVerifier, StripeVerifier};

use crate::auth::{self, AuthError, Claims, KeySet};
use crate::config::Config;
use crate::http::{AppResponse, InRequest, Method, OutRequest, Transport};
use crate::respond::error;
use crate::store::Store;

/// How long fetched JWKS keys are trusted before they are fetched again.
pub const JWKS_TTL_SECS: i64 = 600;
/// A token naming an unknown key triggers a refetch at most this often.
pub const JWKS_MIN_REFETCH_SECS: i64 = 30;

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

pub struct Ctx<T, S> {
    pub config: Config,
    pub catalog: Catalog,
    pub store: S,
    /// Outbound HTTP other than the store's (the JWKS).
    pub transport: T,
    stripe: Option<StripeVerifier>,
    razorpay: Option<RazorpayVerifier>,
    signer: Option<SnapshotSigner>,
    jwks: RefCell<Option<(i64, KeySet)>>,
    jwks_tried_at: RefCell<Option<i64>>,
    /// Each subject's state after its last usage charge here (see [`crate::kept`]).
    pub(crate) usage_states: crate::kept::UsageStates,
    /// A request queued outbound webhooks: deliver after answering.
    pub(crate) outbox_queued: std::cell::Cell<bool>,
}

impl<T: Transport, S: Store> Ctx<T, S> {
    pub fn new(config: Config, transport: T, store: S) -> Result<Ctx<T, S>, String> {
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
        Ok(Ctx {
            config,
            catalog,
            store,
            transport,
            stripe,
            razorpay,
            signer,
            jwks: RefCell::new(None),
            jwks_tried_at: RefCell::new(None),
            outbox_queued: std::cell::Cell::new(false),
            usage_states: Default::default(),
        })
    }

    pub fn stripe_verifier(&self) -> Option<&StripeVerifier> {
        self.stripe.as_ref()
    }
    pub fn razorpay_verifier(&self) -> Option<&RazorpayVerifier> {
        self.razorpay.as_ref()
    }
    pub fn signer(&self) -> Option<&SnapshotSigner> {
        self.signer.as_ref()
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
            timeout_ms: None,
        };
        match self.transport.send(req).await {
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

}
