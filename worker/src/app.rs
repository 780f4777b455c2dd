//! The router: the worker's routes over plain [`InRequest`] / [`AppResponse`] values, so
//! the same code runs under workerd (see `entry`) and natively in tests.
//!
//! The app holds no business rule: it finds the route ([`crate::routes`]), hands the
//! request and its context ([`Ctx`]) to the route's handler, and adds CORS headers. The
//! handlers parse HTTP, ask the core (`tollgate`) what a request or an event means, and
//! persist the answer through the typed [`Store`]. Errors are JSON `{"error": {"code",
//! "message"}}` with the right status: 4xx for bad input, 5xx when the store fails (so the
//! sender retries).

use serde_json::{json, Value};

use tollgate::time::Timestamp;

use crate::auth;
use crate::config::Config;
use crate::ctx::Ctx;
use crate::http::{AppResponse, InRequest, Method, Transport};
use crate::respond::{error, store_error};
use crate::state;
use crate::store::{Store, StoreError, SupabaseStore};
use crate::supabase::SupabaseClient;

pub struct App<T, S = SupabaseStore<T>> {
    pub ctx: Ctx<T, S>,
}

impl<T: Transport + Clone> App<T, SupabaseStore<T>> {
    /// The app on Supabase's REST API (`SUPABASE_URL`, the service-role key).
    pub fn new(config: Config, transport: T) -> Result<App<T, SupabaseStore<T>>, String> {
        let client = SupabaseClient::new(&config.supabase_url, &config.service_role_key, transport.clone());
        App::with_store(config, transport, SupabaseStore::new(client))
    }
}

impl<T: Transport, S: Store> App<T, S> {
    /// The app on any store (an in-memory one in tests).
    pub fn with_store(config: Config, transport: T, store: S) -> Result<App<T, S>, String> {
        Ok(App { ctx: Ctx::new(config, transport, store)? })
    }

    /// Routes one request: a body over [`crate::routes::MAX_BODY_BYTES`] is refused first,
    /// then the path and method are looked up in [`crate::routes::ROUTES`].
    pub async fn handle(&self, req: InRequest, now: Timestamp) -> AppResponse {
        use crate::routes::{self, Resolved, Route};
        let path = req.path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let too_large = routes::body_too_large(&req.headers, req.body.len());
        let resolved = routes::resolve(req.method, path);
        // The catalog this request is decided under: the store's active version, checked
        // at once for what prices a purchase or publishes the catalog, else within
        // CATALOG_REFRESH_SECONDS (see Ctx::refresh_catalog).
        // A store that cannot answer leaves the isolate's catalog as it was: every route
        // that persists anything needs the store anyway, and `GET /v1/catalog` answers
        // 503 rather than publish a catalog the store has not confirmed.
        // A webhook reads it too, once its signature holds (webhook::handle): an unsigned
        // sender makes the store read nothing.
        let webhook = matches!(resolved, Resolved::Found(Route::StripeWebhook | Route::RazorpayWebhook));
        if let (None, Resolved::Found(route), false) = (too_large, &resolved, webhook) {
            let force = matches!(route, Route::Catalog | Route::Checkout | Route::SubscriptionChange);
            if let Err(e) = self.ctx.refresh_catalog(now, force).await {
                if *route == Route::Catalog && !self.ctx.catalog_checked() {
                    // The reason goes to the worker's log, not to this route's callers (anyone).
                    #[cfg(target_arch = "wasm32")]
                    worker::console_error!("catalog: {e}");
                    #[cfg(not(target_arch = "wasm32"))]
                    let _ = e;
                    let r = error(503, "catalog_unavailable", "the active catalog could not be read; try again in a few seconds")
                        .with_header("retry-after", "5");
                    return with_cors(r, req.method);
                }
                // A purchase prices from the active version: one the store could not
                // confirm just now is not sold (retry in a few seconds).
                if matches!(route, Route::Checkout | Route::SubscriptionChange) {
                    let r = error(503, "catalog_unavailable", "the active catalog could not be read; try again in a few seconds")
                        .with_header("retry-after", "5");
                    return with_cors(r, req.method);
                }
            }
        }
        let resp = match (too_large, resolved) {
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
                Route::Catalog => self.catalog_route(&req),
                Route::Entitlements
                | Route::UsageQuote
                | Route::UsageConsume
                | Route::Check
                | Route::Track
                | Route::Preferences
                | Route::Usage
                | Route::Export
                | Route::UsageCapture
                | Route::UsageRelease
                | Route::Checkout
                | Route::Portal
                | Route::SubscriptionCancel
                | Route::SubscriptionResume
                | Route::SubscriptionChange
                | Route::SubscriptionUnpause
                | Route::OrgCreate
                | Route::Org
                | Route::OrgInvites
                | Route::OrgInvite
                | Route::OrgSeats
                | Route::OrgMember
                | Route::InviteAccept => self.signed_in(route, &req, now).await,
                Route::AdminGrants
                | Route::AdminSeats
                | Route::AdminUnattributed
                | Route::AdminAttribute
                | Route::AdminFailedPayments
                | Route::AdminEndpoints
                | Route::AdminEndpointEnable
                | Route::AdminEndpointDisable => {
                    self.admin(route, &req, now).await
                }
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
        with_cors(resp, req.method)
    }

    fn healthz(&self) -> AppResponse {
        let served = self.ctx.served();
        let m = served.catalog.meta();
        AppResponse::json(
            200,
            &json!({
                "status": "ok",
                "catalog": {"id": m.id, "version": m.version, "store_version": served.version, "digest": served.digest},
                "webhooks": {"stripe": self.ctx.stripe_verifier().is_some(), "razorpay": self.ctx.razorpay_verifier().is_some()},
                "snapshots": self.ctx.signer().map(|s| json!({"kid": s.kid(), "public_key": s.public_key_b64url()})),
            }),
        )
    }

    /// `GET /v1/catalog`: the catalog served (the store's active version, or the embedded
    /// one), with an `ETag` that changes with its content; `If-None-Match` naming it is 304.
    fn catalog_route(&self, req: &InRequest) -> AppResponse {
        let served = self.ctx.served();
        let etag = served.etag();
        let version = served.version.map(|v| v.to_string()).unwrap_or_else(|| "embedded".into());
        let matches = req
            .headers
            .get("if-none-match")
            .is_some_and(|h| h.trim() == "*" || h.split(',').any(|t| t.trim().trim_start_matches("W/") == etag));
        let resp = if matches {
            AppResponse { status: 304, headers: Default::default(), body: vec![] }
        } else {
            AppResponse { status: 200, headers: Default::default(), body: served.catalog.to_json().into_bytes() }
                .with_header("content-type", "application/json; charset=utf-8")
        };
        resp.with_header("cache-control", "public, max-age=60, must-revalidate")
            .with_header("etag", etag)
            .with_header("tollgate-catalog-version", version)
    }

    /// The routes of a signed-in user: the caller's token is verified once, here, and the
    /// route's handler answers for its `sub`.
    async fn signed_in(&self, route: crate::routes::Route, req: &InRequest, now: Timestamp) -> AppResponse {
        use crate::routes::Route;
        let claims = match self.ctx.user(req, now).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        match route {
            Route::Entitlements => self.entitlements(&claims, now).await,
            Route::UsageQuote => crate::consume::handle(&self.ctx, req, &claims, now, false).await,
            Route::UsageConsume => crate::consume::handle(&self.ctx, req, &claims, now, true).await,
            Route::Check => crate::meter::check(&self.ctx, req, &claims, now).await,
            Route::Track => crate::meter::track(&self.ctx, req, &claims, now).await,
            Route::Preferences => crate::meter::preferences(&self.ctx, req, &claims, now).await,
            Route::Usage => crate::meter::usage(&self.ctx, req, &claims, now).await,
            Route::Export => crate::meter::export(&self.ctx, &claims, now).await,
            Route::UsageCapture | Route::UsageRelease => {
                crate::meter::settle(&self.ctx, req, &claims, route == Route::UsageRelease, now).await
            }
            Route::Checkout => crate::pay::checkout(&self.ctx, req, &claims, now).await,
            Route::Portal => crate::pay::portal(&self.ctx, req, &claims).await,
            Route::SubscriptionCancel | Route::SubscriptionResume => {
                crate::pay::cancel(&self.ctx, req, &claims, route == Route::SubscriptionResume).await
            }
            Route::SubscriptionChange => crate::pay::change(&self.ctx, req, &claims).await,
            Route::SubscriptionUnpause => crate::pay::unpause(&self.ctx, req, &claims).await,
            Route::OrgCreate => crate::orgs::create(&self.ctx, req, &claims).await,
            Route::Org
            | Route::OrgInvites
            | Route::OrgInvite
            | Route::OrgSeats
            | Route::OrgMember
            | Route::InviteAccept => {
                let path = req.path.trim_end_matches('/');
                let ids = crate::routes::path_ids(crate::routes::pattern(route), path);
                let (id, second) = (ids.first().copied().unwrap_or(""), ids.get(1).copied().unwrap_or(""));
                // Organization, member and invite ids are UUIDs, which the SQL store reads in
                // either case: the handlers get the one spelling the store writes (lower
                // case), so a seat fact never names another subject than the organization
                // and member the decision read. An invite's token is no UUID: taken as sent.
                let (id, second) = if route == Route::InviteAccept {
                    (id.to_string(), second.to_string())
                } else {
                    (id.to_ascii_lowercase(), second.to_ascii_lowercase())
                };
                let (id, second) = (id.as_str(), second.as_str());
                match route {
                    Route::Org => crate::orgs::get(&self.ctx, id, &claims, now).await,
                    Route::OrgInvites => crate::orgs::invites(&self.ctx, req, id, &claims, now).await,
                    Route::OrgInvite => crate::orgs::revoke(&self.ctx, id, second, &claims, now).await,
                    Route::OrgSeats => crate::orgs::seats(&self.ctx, req, id, &claims, now).await,
                    Route::OrgMember => crate::orgs::member(&self.ctx, req, id, second, &claims, now).await,
                    _ => crate::orgs::accept(&self.ctx, id, &claims, now).await,
                }
            }
            _ => error(404, "not_found", "no such route"),
        }
    }

    // ------------------------------------------------------------------ entitlements

    async fn entitlements(&self, claims: &auth::Claims, now: Timestamp) -> AppResponse {
        let Some(signer) = self.ctx.signer() else {
            return error(503, "snapshots_not_configured", "SNAPSHOT_SIGNING_KEY is not set");
        };
        let subject = state::Subject::user(&claims.sub);
        // The user's state and their organizations do not depend on each other: both are
        // read at once.
        let (st, orgs) = futures_util::future::join(
            self.ctx.store.subject_state(&subject, None),
            self.ctx.store.user_organizations(&claims.sub, now),
        )
        .await;
        let (st, mut orgs) = match (st, orgs) {
            (Ok(s), Ok(o)) => (s, o),
            (Err(e), _) | (_, Err(e)) => return store_error(&e),
        };
        // The catalog's free credits are the user's from its first request.
        let st = match crate::webhook::joined(&self.ctx, &subject, st, now).await {
            Ok(s) => s,
            Err(e) => return store_error(&e),
        };
        let ents = st.entitlements_for_snapshot(&self.ctx.catalog(), now);
        for m in &mut orgs {
            m.terms = match self.ctx.terms_for_snapshot(&m.grants, now).await {
                Ok(t) => t,
                Err(e) => return store_error(&e),
            };
        }
        let ttl = u32::try_from(self.ctx.config.snapshot_ttl_secs).unwrap_or(u32::MAX);
        // What the person is told: the alerts still open, the payments still due and when
        // the credit pools refill; and the terms its grants are held under, so the browser
        // decides as this worker does.
        let terms = match self.ctx.terms_for_snapshot(&ents.grants, now).await {
            Ok(t) => t,
            Err(e) => return store_error(&e),
        };
        let account = tollgate::snapshot::Account {
            alerts: tollgate::notices::shown_alerts(&st.alerts, now),
            failed_payments: tollgate::notices::due_payments(&st.failed_payments),
            refills: tollgate::meter::pool_refills(&self.ctx.catalog(), &ents, now),
            terms,
            terms_until: std::iter::once(&ents.grants)
                .chain(orgs.iter().map(|m| &m.grants))
                .filter_map(|g| tollgate::grandfather::terms_until(&self.ctx.catalog(), g, now))
                .min(),
            balances_until: st.wallet.next_end(now),
        };
        match signer.issue_with_account(&ents, orgs, account, self.ctx.catalog().meta(), now, ttl) {
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

    // ------------------------------------------------------------------ admin

    async fn admin(&self, route: crate::routes::Route, req: &InRequest, now: Timestamp) -> AppResponse {
        use crate::routes::Route;
        let Some(secret) = &self.ctx.config.admin_secret else {
            return error(404, "not_found", "admin routes are disabled (no ADMIN_SECRET)");
        };
        if secret.chars().count() < crate::config::MIN_ADMIN_SECRET {
            return error(
                500,
                "not_configured",
                format!(
                    "ADMIN_SECRET is too short to guard the admin routes (at least {} characters; `openssl rand -hex 32` makes one): they stay closed until it is replaced",
                    crate::config::MIN_ADMIN_SECRET
                ),
            );
        }
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
        if let Some(r) = crate::admin::repeated_field(req) {
            return r;
        }
        match route {
            Route::AdminSeats => crate::admin::seats(&self.ctx, req, now).await,
            Route::AdminUnattributed => crate::attribution::unattributed(&self.ctx, req).await,
            Route::AdminAttribute => crate::attribution::attribute_event(&self.ctx, req, now).await,
            Route::AdminFailedPayments => crate::admin::failed_payments(&self.ctx, req).await,
            Route::AdminEndpoints => crate::outbox::endpoints(&self.ctx, req).await,
            Route::AdminEndpointEnable | Route::AdminEndpointDisable => {
                let pattern = if route == Route::AdminEndpointEnable {
                    "/v1/admin/endpoints/{id}/enable"
                } else {
                    "/v1/admin/endpoints/{id}/disable"
                };
                let id = crate::routes::path_id(pattern, req.path.trim_end_matches('/')).unwrap_or("");
                crate::outbox::set_enabled(&self.ctx, id, route == Route::AdminEndpointEnable, now).await
            }
            _ => crate::admin::grants(&self.ctx, req, now).await,
        }
    }

    // ------------------------------------------------------------------ webhooks

    async fn webhook(&self, provider: crate::webhook::Provider, req: &InRequest, now: Timestamp) -> AppResponse {
        crate::webhook::handle(&self.ctx, provider, req, now).await
    }

    /// The scheduled handler: retries kept events, expires what lapsed, resolves the
    /// alerts of ended windows and delivers the outbox.
    pub async fn scheduled(&self, now: Timestamp) -> Result<Value, StoreError> {
        self.scheduled_with_clock(now, &move || now).await
    }

    /// [`App::scheduled`] started at `now`, its deliveries reading `clock` as they go.
    pub async fn scheduled_with_clock(&self, now: Timestamp, clock: &dyn Fn() -> Timestamp) -> Result<Value, StoreError> {
        // Folds decide under the active catalog, as requests do (a cold isolate reads it
        // first); a store that cannot answer fails the run below anyway.
        let made = || self.ctx.requests();
        let budget = crate::budget::Budget::new(self.ctx.config.subrequests, &made);
        let _ = self.ctx.refresh_catalog(now, false).await;
        crate::webhook::scheduled(&self.ctx, &budget, now, clock).await
    }

    /// Every request this isolate has sent so far, the store's and its own (see
    /// [`crate::budget`]).
    pub fn requests(&self) -> u64 {
        self.ctx.requests()
    }

    /// Whether a request queued outbound webhooks since the last call (then deliver them
    /// after answering: [`App::deliver`]).
    pub fn take_outbox_work(&self) -> bool {
        self.ctx.outbox_queued.replace(false)
    }

    /// Sends the outbox messages due, reading `clock` at each round (see [`crate::outbox`]),
    /// with at most the invocation's `SUBREQUESTS` requests.
    pub async fn deliver(&self, clock: &dyn Fn() -> Timestamp) -> Result<crate::outbox::Delivered, StoreError> {
        self.deliver_within(clock, self.ctx.config.subrequests).await
    }

    /// [`App::deliver`] with at most `requests` requests (what the invocation has left).
    pub async fn deliver_within(&self, clock: &dyn Fn() -> Timestamp, requests: u64) -> Result<crate::outbox::Delivered, StoreError> {
        let made = || self.ctx.requests();
        crate::outbox::deliver(&self.ctx, &crate::budget::Budget::new(requests, &made), clock).await
    }
}

/// CORS headers on every answer, and no body for HEAD.
fn with_cors(mut resp: AppResponse, method: Method) -> AppResponse {
    for (k, v) in cors_headers().iter() {
        if resp.headers.get(k).is_none() {
            resp.headers.set(k, v);
        }
    }
    if method == Method::Head {
        resp.body.clear();
    }
    resp
}

fn cors_headers() -> crate::http::Headers {
    crate::http::Headers::new()
        .with("access-control-allow-origin", "*")
        .with("access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
        .with(
            "access-control-allow-headers",
            "authorization, content-type, idempotency-key, if-none-match",
        )
        .with("access-control-expose-headers", "etag, tollgate-catalog-version")
        .with("access-control-max-age", "86400")
}

#[cfg(test)]
mod tests {
    use crate::ctx::embedded_catalog;

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
