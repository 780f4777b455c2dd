//! The request context every route gets: configuration, the catalog, the typed store,
//! the webhook verifiers and snapshot signer, and who is calling. Handlers depend on it,
//! never on the router ([`crate::app`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use sha2::{Digest, Sha256};
use tollgate::billing::{reduce_sold, BillingState, Fact, UsageTotals};
use tollgate::catalog::Catalog;
use tollgate::grandfather::{self, Terms};
use tollgate::model::Grant;
use tollgate::snapshot::SnapshotSigner;
use tollgate::time::Timestamp;
use tollgate::verify::{RazorpayVerifier, StripeVerifier};

use crate::auth::{self, AuthError, Claims, KeySet};
use crate::config::Config;
use crate::http::{AppResponse, InRequest, Method, OutRequest, Transport};
use crate::respond::error;
use crate::store::{CatalogVersion, Store, StoreError};

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

/// The catalog a worker serves: the active version in the store, else the embedded one.
#[derive(Clone)]
pub struct Served {
    pub catalog: Rc<Catalog>,
    /// The store's version number; `None` for the embedded catalog.
    pub version: Option<i64>,
    /// sha256 (hex) of the document: the store's digest, or of the embedded JSON.
    pub digest: String,
}

impl Served {
    /// The `ETag` of `GET /v1/catalog`: changes whenever the document does.
    pub fn etag(&self) -> String {
        let id = &self.catalog.meta().id;
        match self.version {
            Some(v) => format!("\"{id}@{v}-{}\"", &self.digest[..self.digest.len().min(16)]),
            None => format!("\"{id}-embedded-{}\"", &self.digest[..self.digest.len().min(16)]),
        }
    }
}

/// The catalog cached per isolate, and when the store was last asked about it.
struct CatalogCache {
    served: Served,
    /// Unix seconds of the last answer from the store; `None`: never asked yet.
    checked_at: Option<i64>,
    /// Unix seconds of the last failed attempt: asked again after
    /// [`CATALOG_RETRY_SECS`] (or at once when forced), so a store that is down is not
    /// asked on every request.
    failed_at: Option<i64>,
}

/// How long after a failed read of the active catalog an isolate asks again (unless forced).
pub const CATALOG_RETRY_SECS: i64 = 5;

pub struct Ctx<T, S> {
    pub config: Config,
    catalog: RefCell<CatalogCache>,
    embedded: Served,
    /// Older versions of the catalog read for grants sold under them (see
    /// [`Ctx::catalog_for`]); versions are immutable, so they are kept for the isolate's life.
    versions: RefCell<BTreeMap<u32, Catalog>>,
    pub store: S,
    /// Outbound HTTP other than the store's (the JWKS).
    pub transport: T,
    stripe: Option<StripeVerifier>,
    razorpay: Option<RazorpayVerifier>,
    signer: Option<SnapshotSigner>,
    jwks: RefCell<Option<(i64, KeySet)>>,
    jwks_tried_at: RefCell<Option<i64>>,
    /// The last fetch of the JWKS has not brought a key set (it failed, or is still in
    /// flight): a kid missing from the cache is then not known to be unknown.
    jwks_unconfirmed: std::cell::Cell<bool>,
    /// Each subject's state after its last usage charge here (see [`crate::kept`]).
    pub(crate) usage_states: crate::kept::UsageStates,
    /// A request queued outbound webhooks: deliver after answering.
    pub(crate) outbox_queued: std::cell::Cell<bool>,
    /// Requests sent through `transport` so far ([`Ctx::send`]).
    sent: std::cell::Cell<u64>,
    /// Subjects never folded that this isolate has folded once on sight
    /// ([`crate::webhook::joined`]), so that their later requests do not fold again.
    sighted: RefCell<std::collections::BTreeSet<String>>,
}

impl<T, S> Ctx<T, S> {
    /// The catalog this request is served under (see [`Ctx::refresh_catalog`]).
    pub fn catalog(&self) -> Rc<Catalog> {
        self.catalog.borrow().served.catalog.clone()
    }

    /// The catalog served, with its version and digest.
    pub fn served(&self) -> Served {
        self.catalog.borrow().served.clone()
    }
}

impl<T: Transport, S: Store> Ctx<T, S> {
    /// True the first time this isolate sees `key` (at most `MAX_SIGHTED` remembered: past
    /// it the set starts again, so a subject may be seen for the first time twice).
    pub(crate) fn first_sight(&self, key: &str) -> bool {
        const MAX_SIGHTED: usize = 10_000;
        let mut seen = self.sighted.borrow_mut();
        if seen.contains(key) {
            return false;
        }
        if seen.len() >= MAX_SIGHTED {
            seen.clear();
        }
        seen.insert(key.to_string());
        true
    }

    /// Forgets that `key` was seen ([`Ctx::first_sight`]): its fold on sight failed and is
    /// due again at its next request.
    pub(crate) fn forget_sight(&self, key: &str) {
        self.sighted.borrow_mut().remove(key);
    }

    /// Every request this isolate has sent so far, the store's and its own: what the
    /// runtime counts against an invocation's subrequest limit ([`crate::budget`]).
    pub fn requests(&self) -> u64 {
        self.store.requests() + self.sent.get()
    }

    /// Sends one request other than the store's (the JWKS, a provider's API, an outbound
    /// webhook), counted in [`Ctx::requests`].
    pub(crate) async fn send(&self, req: OutRequest) -> Result<crate::http::OutResponse, crate::http::TransportError> {
        self.sent.set(self.sent.get() + 1);
        self.transport.send(req).await
    }

    pub fn new(config: Config, transport: T, store: S) -> Result<Ctx<T, S>, String> {
        let catalog = embedded_catalog(&config.catalog)?;
        let json = crate::CATALOGS.iter().find(|(n, _)| *n == config.catalog).map(|(_, j)| *j).unwrap_or("");
        let embedded = Served {
            catalog: Rc::new(catalog),
            version: None,
            digest: hex::encode(Sha256::digest(json.as_bytes())),
        };
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
        let signer = match &config.snapshot_secret {
            Some(secret) => Some(
                SnapshotSigner::from_secret(&config.snapshot_key_id, secret)
                    .map_err(|e| format!("SNAPSHOT_SIGNING_KEY: {e}"))?,
            ),
            None => None,
        };
        Ok(Ctx {
            config,
            catalog: RefCell::new(CatalogCache { served: embedded.clone(), checked_at: None, failed_at: None }),
            embedded,
            versions: RefCell::new(BTreeMap::new()),
            store,
            transport,
            stripe,
            razorpay,
            signer,
            jwks: RefCell::new(None),
            jwks_tried_at: RefCell::new(None),
            jwks_unconfirmed: std::cell::Cell::new(false),
            outbox_queued: std::cell::Cell::new(false),
            sighted: RefCell::new(std::collections::BTreeSet::new()),
            usage_states: Default::default(),
            sent: Default::default(),
        })
    }

    /// Brings the cached catalog up to the store's active version. A cold isolate reads
    /// the active version whole (one call); a warm one asks nothing until
    /// `CATALOG_REFRESH_SECONDS` (60) have passed since the store last answered, then
    /// checks the version alone (one small call) and reads the document only when it
    /// changed. `force` checks at once (checkouts and `GET /v1/catalog`, so an
    /// activation prices new purchases at once). With no version in the store the
    /// embedded catalog is served (the local stack's default). When the store cannot
    /// answer (or its version does not load), the isolate keeps serving what it has (a
    /// cold one: the embedded catalog) and asks again at the next request; the error says
    /// why, for the routes that must not answer without the store's word.
    pub async fn refresh_catalog(&self, now: Timestamp, force: bool) -> Result<(), String> {
        let now = now.unix();
        let (checked_at, current) = {
            let c = self.catalog.borrow();
            (c.checked_at, c.served.clone())
        };
        let fresh = checked_at.is_some_and(|t| now.saturating_sub(t) < self.config.catalog_refresh_secs);
        let failed_at = self.catalog.borrow().failed_at;
        let backing_off = failed_at.is_some_and(|t| now.saturating_sub(t) < CATALOG_RETRY_SECS);
        if (fresh || backing_off) && !force {
            return Ok(());
        }
        let r = self.read_catalog(now, checked_at, &current).await;
        self.catalog.borrow_mut().failed_at = if r.is_err() { Some(now) } else { None };
        r
    }

    async fn read_catalog(&self, now: i64, checked_at: Option<i64>, current: &Served) -> Result<(), String> {
        if checked_at.is_some() {
            let same = |v: &CatalogVersion| current.version == Some(v.version) && current.digest == v.digest;
            match self.store.active_catalog_version(&self.config.catalog).await.map_err(|e| e.to_string())? {
                Some(v) if same(&v) => {
                    self.catalog.borrow_mut().checked_at = Some(now);
                    return Ok(());
                }
                None => {
                    let mut c = self.catalog.borrow_mut();
                    c.served = self.embedded.clone();
                    c.checked_at = Some(now);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        let served = match self.store.active_catalog(&self.config.catalog).await.map_err(|e| e.to_string())? {
            None => self.embedded.clone(),
            Some(stored) => {
                let c = Catalog::from_json(&stored.document.to_string())
                    .map_err(|e| format!("the active catalog (version {}) does not load: {e}", stored.version))?;
                let c = match u32::try_from(stored.version) {
                    Ok(v) => c.with_version(v),
                    Err(_) => c,
                };
                Served { catalog: Rc::new(c), version: Some(stored.version), digest: stored.digest }
            }
        };
        let mut c = self.catalog.borrow_mut();
        c.served = served;
        c.checked_at = Some(now);
        Ok(())
    }

    /// The catalog a subject's decisions are made on at `now`, and the terms it carries:
    /// the served catalog with the terms its grants were sold under, where the active
    /// version's offers keep them ([`tollgate::grandfather`]). A subject whose grants are all
    /// under the active terms costs nothing (no copy, no call); an older version is read
    /// from the store once per isolate. A version the store cannot give is left out (its
    /// grants are decided under the active terms) and asked for again at the next request.
    pub async fn catalog_for(&self, grants: &[Grant], now: Timestamp) -> (Rc<Catalog>, Vec<Terms>) {
        let (active, terms) = self.terms_with_active(grants, now).await;
        let catalog = match grandfather::apply(&active, &terms) {
            Cow::Borrowed(_) => active.clone(),
            Cow::Owned(c) => Rc::new(c),
        };
        (catalog, terms)
    }

    /// The terms of older catalog versions `grants` are held under, for what is signed and
    /// cached for a whole TTL (the snapshot): a version the store cannot give now is an
    /// error, never terms left out.
    pub async fn terms_for_snapshot(&self, grants: &[Grant], now: Timestamp) -> Result<Vec<Terms>, StoreError> {
        let (_, terms, read) = self.terms_read(grants, now).await;
        read.map(|()| terms)
    }

    async fn terms_with_active(&self, grants: &[Grant], now: Timestamp) -> (Rc<Catalog>, Vec<Terms>) {
        // A version that cannot be read now leaves its grants under the active terms.
        let (active, terms, _) = self.terms_read(grants, now).await;
        (active, terms)
    }

    /// The active catalog and the terms `grants` are held under, from the versions at hand
    /// once those they need are read; with whether that read failed.
    async fn terms_read(&self, grants: &[Grant], now: Timestamp) -> (Rc<Catalog>, Vec<Terms>, Result<(), StoreError>) {
        let active = self.catalog();
        let needed = grandfather::versions_needed(&active, grants);
        if needed.is_empty() {
            return (active, Vec::new(), Ok(()));
        }
        let read = self.load_versions(needed).await;
        let terms = grandfather::terms(&active, &self.versions.borrow(), grants, now);
        (active, terms, read)
    }

    /// Reads the store's catalog versions `needed` not read yet (once per isolate); one the
    /// store does not have is left out, a store that fails is an error.
    async fn load_versions(&self, needed: impl IntoIterator<Item = u32>) -> Result<(), StoreError> {
        for v in needed {
            if self.versions.borrow().contains_key(&v) {
                continue;
            }
            if let Some(stored) = self.store.catalog_version(&self.config.catalog, v).await? {
                if let Ok(c) = Catalog::from_json(&stored.document.to_string()) {
                    self.versions.borrow_mut().insert(v, c.with_version(v));
                }
            }
        }
        Ok(())
    }

    /// Folds `facts` (charges as per-lot totals) under the active catalog, each purchase and
    /// invoice crediting what the catalog version it was read under sold, and one read
    /// before the store had versions what the embedded catalog sold (`billing::reduce_sold`).
    pub async fn fold(&self, facts: &[Fact], usage: &UsageTotals, now: Timestamp) -> Result<BillingState, StoreError> {
        let active = self.catalog();
        let sold: BTreeSet<u32> =
            facts.iter().filter_map(|f| f.catalog_version).filter(|v| Some(*v) != active.version).collect();
        self.load_versions(sold).await?;
        // What was read before the store had a version was sold by the embedded catalog.
        if active.version.is_some() && facts.iter().any(|f| f.catalog_version.is_none()) {
            let embedded = &self.embedded.catalog;
            self.versions.borrow_mut().entry(grandfather::UNVERSIONED).or_insert_with(|| (**embedded).clone());
        }
        Ok(reduce_sold(&active, &self.versions.borrow(), facts, usage, now))
    }

    /// Whether the served catalog is the store's word (it answered at least once).
    pub fn catalog_checked(&self) -> bool {
        self.catalog.borrow().checked_at.is_some()
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
        // What is cached, when the JWKS cannot be asked now: a set holding the token's key
        // (stale keys keep working while the endpoint is down). A set without it only
        // when the last fetch brought that set: otherwise whether the key exists is not
        // known, and `None` answers 503 (retry), not a 401 that signs the user out.
        let cached = |confirmed: bool| -> Option<KeySet> {
            let c = self.jwks.borrow();
            let set = c.as_ref().map(|(_, s)| s.clone())?;
            (confirmed || set.has_kid(kid)).then_some(set)
        };
        if self
            .jwks_tried_at
            .borrow()
            .is_some_and(|t| now.saturating_sub(t) < JWKS_MIN_REFETCH_SECS)
        {
            return Ok(cached(!self.jwks_unconfirmed.get()));
        }
        *self.jwks_tried_at.borrow_mut() = Some(now);
        self.jwks_unconfirmed.set(true);
        let req = OutRequest {
            method: Method::Get,
            url,
            headers: Default::default(),
            body: None,
            timeout_ms: Some(self.config.provider_timeout_secs.saturating_mul(1000)),
        };
        match self.send(req).await {
            Ok(r) if r.status == 200 => match KeySet::parse(&String::from_utf8_lossy(&r.body)) {
                Ok(set) => {
                    *self.jwks.borrow_mut() = Some((now, set.clone()));
                    self.jwks_unconfirmed.set(false);
                    Ok(Some(set))
                }
                Err(_) => Ok(cached(false)),
            },
            _ => Ok(cached(false)),
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
