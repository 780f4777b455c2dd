//! The worker's route table and the request body limit, read by [`crate::App::handle`].
//!
//! One table ([`ROUTES`]) names every path with the methods it answers: the app dispatches
//! from it, a known path asked with another method answers 405 with an `allow` header
//! derived from it, and any other path 404. `OPTIONS` (CORS preflight) is answered on
//! every path.

use crate::http::{Headers, Method};

/// The largest request body any route accepts: 1 MiB. Stripe's and Razorpay's events are
/// at most a few hundred KB and every other route takes a small JSON document, so nothing
/// legitimate comes near it. A larger body (by its `content-length`, or by its actual
/// length) is refused with 413 `body_too_large` before anything verifies or parses it;
/// under workerd a body whose `content-length` is over the limit is not even read
/// (`entry.rs`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Catalog,
    Entitlements,
    UsageQuote,
    UsageConsume,
    Check,
    Track,
    Preferences,
    Usage,
    UsageCapture,
    UsageRelease,
    Export,
    Checkout,
    Portal,
    SubscriptionCancel,
    SubscriptionResume,
    SubscriptionChange,
    SubscriptionUnpause,
    OrgCreate,
    Org,
    OrgInvites,
    OrgInvite,
    OrgSeats,
    OrgMember,
    InviteAccept,
    AdminGrants,
    AdminSeats,
    AdminUnattributed,
    AdminAttribute,
    AdminFailedPayments,
    AdminEndpoints,
    AdminEndpointEnable,
    AdminEndpointDisable,
    StripeWebhook,
    RazorpayWebhook,
}

const GET: &[Method] = &[Method::Get, Method::Head];
const POST: &[Method] = &[Method::Post];

/// Every route: its path, the methods it answers (HEAD with GET where GET is cheap and
/// public) and what answers them.
pub const ROUTES: &[(&str, &[Method], Route)] = &[
    ("/healthz", GET, Route::Healthz),
    ("/v1/catalog", GET, Route::Catalog),
    ("/v1/entitlements", &[Method::Get], Route::Entitlements),
    ("/v1/usage/quote", POST, Route::UsageQuote),
    ("/v1/usage/consume", POST, Route::UsageConsume),
    ("/v1/check", POST, Route::Check),
    ("/v1/track", POST, Route::Track),
    ("/v1/preferences", &[Method::Get, Method::Put], Route::Preferences),
    ("/v1/usage", &[Method::Get], Route::Usage),
    ("/v1/usage/{id}/capture", POST, Route::UsageCapture),
    ("/v1/usage/{id}/release", POST, Route::UsageRelease),
    ("/v1/export", POST, Route::Export),
    ("/v1/checkout", POST, Route::Checkout),
    ("/v1/portal", POST, Route::Portal),
    ("/v1/subscriptions/cancel", POST, Route::SubscriptionCancel),
    ("/v1/subscriptions/resume", POST, Route::SubscriptionResume),
    ("/v1/subscriptions/change", POST, Route::SubscriptionChange),
    ("/v1/subscriptions/unpause", POST, Route::SubscriptionUnpause),
    ("/v1/orgs", POST, Route::OrgCreate),
    ("/v1/orgs/{id}", &[Method::Get], Route::Org),
    ("/v1/orgs/{id}/invites", &[Method::Get, Method::Post], Route::OrgInvites),
    ("/v1/orgs/{id}/invites/{id}", &[Method::Delete], Route::OrgInvite),
    ("/v1/orgs/{id}/seats", POST, Route::OrgSeats),
    ("/v1/orgs/{id}/members/{id}", &[Method::Patch, Method::Delete], Route::OrgMember),
    ("/v1/invites/{id}/accept", POST, Route::InviteAccept),
    ("/v1/admin/grants", POST, Route::AdminGrants),
    ("/v1/admin/seats", POST, Route::AdminSeats),
    ("/v1/admin/unattributed", &[Method::Get], Route::AdminUnattributed),
    ("/v1/admin/attribute", POST, Route::AdminAttribute),
    ("/v1/admin/failed-payments", &[Method::Get], Route::AdminFailedPayments),
    ("/v1/admin/endpoints", &[Method::Get, Method::Post], Route::AdminEndpoints),
    ("/v1/admin/endpoints/{id}/enable", POST, Route::AdminEndpointEnable),
    ("/v1/admin/endpoints/{id}/disable", POST, Route::AdminEndpointDisable),
    ("/webhooks/stripe", POST, Route::StripeWebhook),
    ("/webhooks/razorpay", POST, Route::RazorpayWebhook),
];

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    Found(Route),
    /// A known path, asked with a method it does not answer: these are the ones it does.
    MethodNotAllowed(&'static [Method]),
    NotFound,
}

/// Does `path` match the route path `pattern`, where a `{id}` segment matches any one
/// non-empty segment?
fn matches(pattern: &str, path: &str) -> bool {
    let (mut a, mut b) = (pattern.split('/'), path.split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some("{id}"), Some(s)) if !s.is_empty() => {}
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

/// The `{id}` segment of `path` under `pattern` (e.g. the usage id of
/// `/v1/usage/{id}/release`).
pub fn path_id<'p>(pattern: &str, path: &'p str) -> Option<&'p str> {
    pattern.split('/').zip(path.split('/')).find(|(a, _)| *a == "{id}").map(|(_, b)| b)
}

/// Every `{id}` segment of `path` under `pattern`, in order (an organization's id, then
/// a member's or an invite's).
pub fn path_ids<'p>(pattern: &str, path: &'p str) -> Vec<&'p str> {
    pattern.split('/').zip(path.split('/')).filter(|(a, _)| *a == "{id}").map(|(_, b)| b).collect()
}

/// The route path (with `{id}` segments) that answers `route`.
pub fn pattern(route: Route) -> &'static str {
    ROUTES.iter().find(|(_, _, r)| *r == route).map_or("", |(p, _, _)| *p)
}

/// Looks a request up in [`ROUTES`] (`path` without trailing slashes, `/` for the root).
pub fn resolve(method: Method, path: &str) -> Resolved {
    match ROUTES.iter().find(|(p, _, _)| matches(p, path)) {
        Some((_, methods, route)) if methods.contains(&method) => Resolved::Found(*route),
        Some((_, methods, _)) => Resolved::MethodNotAllowed(methods),
        None => Resolved::NotFound,
    }
}

/// The `allow` header of a path that answers `methods` (and `OPTIONS`, as every path does).
pub fn allow_header(methods: &[Method]) -> String {
    methods
        .iter()
        .chain([Method::Options].iter())
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The size of a request body that is over [`MAX_BODY_BYTES`], by its declared
/// `content-length` or by its actual length, whichever is larger; `None` when it fits.
pub fn body_too_large(headers: &Headers, body_len: usize) -> Option<u64> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let size = declared.max(body_len as u64);
    (size > MAX_BODY_BYTES as u64).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::http::{AppResponse, InRequest, OutRequest, OutResponse, Transport, TransportError};
    use crate::App;
    use serde_json::{json, Value};
    use std::cell::Cell;
    use tollgate::time::Timestamp;

    const NOW: i64 = 1_800_000_000;
    const JWT_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
    const STRIPE_SECRET: &str = "whsec_routes_test_0123456789abcdef";

    /// A store that is never reached: every call is counted and fails (clones share the count).
    #[derive(Clone, Default)]
    struct Unreachable {
        calls: std::rc::Rc<Cell<usize>>,
    }
    impl Transport for Unreachable {
        async fn send(&self, _req: OutRequest) -> Result<OutResponse, TransportError> {
            self.calls.set(self.calls.get() + 1);
            Err(TransportError("no store in this test".into()))
        }
    }

    fn app(extra: &[(&str, &str)]) -> App<Unreachable> {
        let mut vars = vec![
            ("SUPABASE_URL", "http://127.0.0.1:54321/"),
            ("SUPABASE_SERVICE_ROLE_KEY", "svc"),
            ("SUPABASE_JWT_SECRET", JWT_SECRET),
            ("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET),
            ("RAZORPAY_WEBHOOK_SECRET", "rzp_routes_test"),
            ("ADMIN_SECRET", "admin-routes-test"),
        ];
        vars.extend_from_slice(extra);
        let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        App::new(config, Unreachable::default()).unwrap()
    }

    fn call(app: &App<Unreachable>, method: Method, path: &str, headers: Headers, body: Vec<u8>) -> AppResponse {
        let req = InRequest {
            method,
            path: path.into(),
            query: String::new(),
            headers,
            body,
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(app.handle(req, Timestamp(NOW)))
    }

    fn code(r: &AppResponse) -> String {
        r.body_json()["error"]["code"].as_str().unwrap_or("").to_string()
    }

    const ALL: [Method; 7] =
        [Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete, Method::Other];

    #[test]
    fn the_table_has_one_entry_per_path_and_route() {
        for (i, (p, methods, r)) in ROUTES.iter().enumerate() {
            assert!(p.starts_with('/') && !p.ends_with('/'), "{p}");
            assert!(!methods.is_empty() && !methods.contains(&Method::Options), "{p}");
            for (q, _, s) in &ROUTES[i + 1..] {
                assert!(p != q && r != s, "{p} and {q}");
            }
        }
        assert_eq!(resolve(Method::Post, "/v1/admin/seats"), Resolved::Found(Route::AdminSeats));
        assert_eq!(resolve(Method::Get, "/v1/admin/seats"), Resolved::MethodNotAllowed(POST));
        assert_eq!(resolve(Method::Get, "/v1/nothing"), Resolved::NotFound);
        assert_eq!(allow_header(GET), "GET, HEAD, OPTIONS");
        assert_eq!(allow_header(POST), "POST, OPTIONS");
    }

    #[test]
    fn every_known_path_answers_405_with_allow_for_other_methods() {
        let app = app(&[]);
        for (path, methods, _) in ROUTES {
            for m in ALL.into_iter().filter(|m| !methods.contains(m)) {
                let r = call(&app, m, path, Headers::new(), vec![]);
                assert_eq!(r.status, 405, "{} {path}: {}", m.as_str(), String::from_utf8_lossy(&r.body));
                assert_eq!(r.headers.get("allow"), Some(allow_header(methods).as_str()), "{path}");
                if m != Method::Head {
                    assert_eq!(code(&r), "method_not_allowed", "{path}");
                }
                // A trailing slash is the same path.
                assert_eq!(call(&app, m, &format!("{path}/"), Headers::new(), vec![]).status, 405);
            }
            // OPTIONS (CORS preflight) is answered everywhere.
            assert_eq!(call(&app, Method::Options, path, Headers::new(), vec![]).status, 204);
        }
        let r = call(&app, Method::Get, "/v1/admin/seats", Headers::new(), vec![]);
        assert_eq!((r.status, r.headers.get("allow")), (405, Some("POST, OPTIONS")));
        assert_eq!(r.headers.get("access-control-allow-origin"), Some("*"));
        let r = call(&app, Method::Get, "/v1/nothing-here", Headers::new(), vec![]);
        assert_eq!((r.status, code(&r).as_str()), (404, "not_found"));
        assert_eq!(r.headers.get("allow"), None);
        assert_eq!(app.ctx.store.client.transport().calls.get(), 0, "routing alone never reaches the store");
        // A route asks for the active catalog (here the store is unreachable: the embedded one serves).
        assert_eq!(call(&app, Method::Get, "/healthz", Headers::new(), vec![]).status, 200);
        assert_eq!(app.ctx.store.client.transport().calls.get(), 1, "one read of the active catalog");
    }

    #[test]
    fn bodies_over_one_mib_are_refused_with_413_before_anything_reads_them() {
        let app = app(&[]);
        // A 5 MB Stripe event, correctly signed: refused before the signature is checked.
        let mut event = json!({"id": "evt_big", "object": "event", "type": "checkout.session.completed",
                               "created": NOW, "data": {"object": {"id": "cs_big", "object": "checkout.session"}}});
        event["padding"] = Value::String("x".repeat(5 * 1024 * 1024));
        let body = serde_json::to_vec(&event).unwrap();
        let sig = tollgate::verify::sign_stripe(&body, STRIPE_SECRET, Timestamp(NOW));
        let headers = Headers::new().with("stripe-signature", sig).with("content-type", "application/json");
        let r = call(&app, Method::Post, "/webhooks/stripe", headers.clone(), body.clone());
        assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(code(&r), "body_too_large");
        let message = r.body_json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(&MAX_BODY_BYTES.to_string()), "{message}");
        assert_eq!(r.headers.get("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(r.headers.get("access-control-allow-origin"), Some("*"));
        // Declared too large, body not read (as entry.rs does under workerd): refused too.
        let declared = headers.clone().with("content-length", (5 * 1024 * 1024).to_string());
        assert_eq!(call(&app, Method::Post, "/webhooks/stripe", declared, vec![]).status, 413);
        // Every route, also unknown paths and methods: the limit comes first.
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        for (path, methods, _) in ROUTES {
            let r = call(&app, methods[0], path, Headers::new(), big.clone());
            assert_eq!((r.status, code(&r).as_str()), (413, "body_too_large"), "{path}");
        }
        assert_eq!(call(&app, Method::Post, "/v1/nothing", Headers::new(), big.clone()).status, 413);
        // A small declared length does not hide a large body, and a large declared length
        // is refused whatever arrived.
        let lying = Headers::new().with("content-length", "10");
        assert_eq!(call(&app, Method::Post, "/v1/usage/quote", lying, big).status, 413);
        let huge = Headers::new().with("content-length", "18446744073709551615");
        assert_eq!(call(&app, Method::Post, "/v1/usage/quote", huge, vec![]).status, 413);
        assert_eq!(app.ctx.store.client.transport().calls.get(), 0, "a refused body never reaches the store");
        // Exactly the limit is accepted (here: refused later for its signature).
        let limit = vec![b' '; MAX_BODY_BYTES];
        let at_limit = Headers::new().with("content-length", MAX_BODY_BYTES.to_string());
        assert_ne!(call(&app, Method::Post, "/webhooks/stripe", at_limit, limit).status, 413);
        assert_eq!(body_too_large(&Headers::new().with("content-length", "nope"), 3), None);
    }

    #[test]
    fn the_catalog_is_not_published_before_the_store_confirmed_it() {
        let app = app(&[]);
        let r = call(&app, Method::Get, "/v1/catalog", Headers::new(), vec![]);
        assert_eq!((r.status, code(&r).as_str()), (503, "catalog_unavailable"));
        assert_eq!(r.headers.get("retry-after"), Some("5"));
        // Forced: asked again at once.
        assert_eq!(call(&app, Method::Get, "/v1/catalog", Headers::new(), vec![]).status, 503);
        assert_eq!(app.ctx.store.client.transport().calls.get(), 2);
    }

    #[test]
    fn access_tokens_must_carry_the_configured_issuer() {
        let claims = |iss: Option<&str>| {
            let mut c = json!({"sub": "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e", "role": "authenticated",
                               "aud": "authenticated", "exp": NOW + 600});
            if let Some(iss) = iss {
                c["iss"] = json!(iss);
            }
            c
        };
        let get = |app: &App<Unreachable>, iss: Option<&str>| {
            let token = crate::auth::sign_hs256(&claims(iss), JWT_SECRET);
            let headers = Headers::new().with("authorization", format!("Bearer {token}"));
            call(app, Method::Get, "/v1/entitlements", headers, vec![])
        };
        // Default: <SUPABASE_URL without trailing slash>/auth/v1.
        let app = app(&[]);
        for iss in [None, Some("https://attacker.example/auth/v1"), Some("supabase-demo")] {
            let r = get(&app, iss);
            assert_eq!((r.status, code(&r).as_str()), (401, "bad_issuer"), "{iss:?}");
            assert!(r.body_json()["error"]["message"].as_str().unwrap().contains("http://127.0.0.1:54321/auth/v1"));
            assert_eq!(r.headers.get("www-authenticate"), Some("Bearer"));
        }
        // The right issuer gets past authentication (to the store, unreachable here). The
        // wrong ones reached nothing but the one read of the public active catalog (the store
        // being down, the isolate asks again only after CATALOG_RETRY_SECS).
        assert_eq!(app.ctx.store.client.transport().calls.get(), 1);
        let r = get(&app, Some("http://127.0.0.1:54321/auth/v1"));
        assert_ne!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
        // SUPABASE_JWT_ISSUER overrides the default.
        let app = self::app(&[("SUPABASE_JWT_ISSUER", "https://auth.example.com/auth/v1")]);
        assert_eq!(get(&app, Some("http://127.0.0.1:54321/auth/v1")).status, 401);
        assert_ne!(get(&app, Some("https://auth.example.com/auth/v1")).status, 401);
    }
}
