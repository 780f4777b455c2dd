//! Money in: `POST /v1/checkout`, `/v1/portal`, `/v1/subscriptions/{cancel,resume,change}`
//! (`resume` undoes a cancellation) and `/v1/subscriptions/unpause` (a paused subscription
//! resumed at its provider).
//!
//! Each parses its body, reads the buyer's account in one store call
//! ([`Store::account`]), asks the core for the provider request
//! ([`tollgate::checkout`]), sends it with the provider's credentials and answers with
//! what the provider returned. Nothing is written: access changes only when the
//! provider's webhook arrives. A refusal is the core's (4xx, before any call); a provider
//! that answers with an error is 502 with its message, one that does not answer in
//! `PROVIDER_TIMEOUT_SECONDS` is 504.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest;

use tollgate::catalog::Provider;
use tollgate::checkout::{self, Account, Call, Purchase, Refusal, RefusalCode};
use tollgate::time::Timestamp;

use crate::auth::Claims;
use crate::ctx::Ctx;
use crate::http::{AppResponse, Headers, InRequest, Method, OutRequest, Transport};
use crate::respond::{error, error_json, idempotency_key, json_body, store_error};
use crate::state::{is_uuid, Subject};
use crate::store::Store;

/// The HTTP status of a refusal.
fn refused(r: Refusal) -> AppResponse {
    let status = match r.code {
        RefusalCode::UnknownOffer | RefusalCode::UnknownOrganization | RefusalCode::NoCustomer | RefusalCode::NoSubscription => 404,
        RefusalCode::HiddenOffer | RefusalCode::NotOrgAdmin => 403,
        RefusalCode::InvalidClouds | RefusalCode::InvalidQuantity | RefusalCode::InvalidUrl | RefusalCode::WrongSubject => 400,
        RefusalCode::SeatsBelowAllocation
        | RefusalCode::AlreadySubscribed
        | RefusalCode::NotSellable
        | RefusalCode::AmbiguousSubscription
        | RefusalCode::NotSupported
        | RefusalCode::SameOffer
        | RefusalCode::NotRunning
        | RefusalCode::NotPaused => 409,
    };
    error(status, r.code.as_str(), r.message)
}

/// A provider call that did not succeed, as the route answers it.
fn provider_failed(provider: Provider, status: u16, body: &[u8]) -> AppResponse {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // Stripe: {"error": {"message", "code", "type"}}; Razorpay: {"error": {"description", "code"}}.
    let message = v["error"]["message"]
        .as_str()
        .or_else(|| v["error"]["description"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let code = v["error"]["code"].as_str().or_else(|| v["error"]["type"].as_str());
    if provider == Provider::Stripe && v["error"]["type"].as_str() == Some("idempotency_error") {
        return error(409, "idempotency_key_reused", "this Idempotency-Key was used for another request: send a new key for a new purchase");
    }
    error_json(
        502,
        "provider_error",
        format!("{} refused the request: {message}", name(provider)),
        json!({"provider": provider.as_str(), "provider_status": status, "provider_code": code}),
    )
}

fn name(p: Provider) -> &'static str {
    match p {
        Provider::Stripe => "Stripe",
        Provider::Razorpay => "Razorpay",
    }
}

/// Sends `first`, then each call `next` decides from the answers so far, until it decides
/// none: every answer, in order, or the route's failure answer.
async fn converse<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    first: &Call,
    mut next: impl FnMut(&[Value]) -> Result<Option<Call>, AppResponse>,
) -> Result<Vec<Value>, AppResponse> {
    let mut answers = vec![];
    let mut call = first.clone();
    loop {
        answers.push(send(ctx, &call, None).await?);
        match next(&answers)? {
            Some(c) => call = c,
            None => return Ok(answers),
        }
    }
}

/// Sends one call to its provider; its JSON answer, or the route's failure answer.
async fn send<T: Transport, S: Store>(ctx: &Ctx<T, S>, call: &Call, idempotency: Option<&str>) -> Result<Value, AppResponse> {
    let cfg = &ctx.config;
    let (base, auth) = match call.provider {
        Provider::Stripe => match &cfg.stripe_secret_key {
            Some(k) => (&cfg.stripe_api_base, format!("Bearer {k}")),
            None => return Err(error(500, "not_configured", "STRIPE_SECRET_KEY is not set: Stripe offers cannot be sold")),
        },
        Provider::Razorpay => match &cfg.razorpay_key {
            Some((id, secret)) => (&cfg.razorpay_api_base, format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))),
            None => {
                return Err(error(500, "not_configured", "RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET are not set: Razorpay offers cannot be sold"))
            }
        },
    };
    let mut headers = Headers::new().with("authorization", auth).with("accept", "application/json");
    let body = call.body().map(|(content_type, bytes)| {
        headers.set("content-type", content_type);
        bytes
    });
    if let Some(k) = idempotency {
        headers.set("idempotency-key", k);
    }
    let req = OutRequest {
        method: match call.method {
            checkout::Method::Get => Method::Get,
            checkout::Method::Post => Method::Post,
            checkout::Method::Patch => Method::Patch,
        },
        url: format!("{base}{}", call.path),
        headers,
        body,
        timeout_ms: Some(cfg.provider_timeout_secs.saturating_mul(1000)),
    };
    match ctx.send(req).await {
        Err(e) if e.is_timeout() => Err(error(
            504,
            "provider_timeout",
            format!("{} did not answer within {} s; nothing was changed here, retry", name(call.provider), cfg.provider_timeout_secs),
        )),
        Err(e) => Err(error(502, "provider_unreachable", format!("{} could not be reached: {e}", name(call.provider)))),
        Ok(r) if (200..300).contains(&r.status) => serde_json::from_slice(&r.body)
            .map_err(|_| error(502, "provider_error", format!("{} answered {} with a body that is not JSON", name(call.provider), r.status))),
        Ok(r) => Err(provider_failed(call.provider, r.status, &r.body)),
    }
}

/// The buyer: the caller, or the organization it names; read from the store with the
/// caller's email from the token.
async fn account<T: Transport, S: Store>(ctx: &Ctx<T, S>, claims: &Claims, org: Option<&str>) -> Result<Account, AppResponse> {
    let subject = match org {
        Some(o) => Subject::Org(o.to_string()),
        None => Subject::user(&claims.sub),
    };
    match ctx.store.account(&subject, &claims.sub).await {
        Ok(Some(mut a)) => {
            a.email = claims.email.clone().filter(|e| !e.is_empty());
            Ok(a)
        }
        Ok(None) if org.is_some() => Err(error(404, "unknown_organization", format!("no organization {} you belong to", org.unwrap_or_default()))),
        Ok(None) => Err(error(
            401,
            "unknown_user",
            "the signed-in user is not in the database (auth.users); sign in again",
        )),
        Err(e) => Err(store_error(&e)),
    }
}

fn opt_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, AppResponse> {
    crate::respond::opt_str(body, field, "invalid_body")
}

fn req_str<'a>(body: &'a Value, field: &str, what: &str) -> Result<&'a str, AppResponse> {
    opt_str(body, field)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| error(400, "invalid_body", format!("`{field}` ({what}) is required")))
}

fn organization(body: &Value) -> Result<Option<String>, AppResponse> {
    match opt_str(body, "organization_id")? {
        Some(o) if !is_uuid(o) => Err(error(400, "invalid_body", "`organization_id` must be an organization's id (a UUID)")),
        // The one spelling the store writes, as every other route reads it.
        o => Ok(o.map(str::to_ascii_lowercase)),
    }
}

/// `POST /v1/checkout` `{"offer", "success_url", "cancel_url", "quantity"?, "clouds"?,
/// "organization_id"?}` → `{"provider", "id", "url", "offer"}` (a Razorpay order also
/// carries `order`: what Razorpay Checkout opens with).
pub async fn checkout<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims, now: Timestamp) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut purchase = match purchase(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let key = match idempotency_key(req, false) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let org = match organization(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let account = match account(ctx, claims, org.as_deref()).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut call = match checkout::checkout(&ctx.catalog(), &purchase, &account, now) {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    // An accepted purchase of an offer sold by lookup key: its price first.
    if let Some(lookup) = checkout::price_lookup(&ctx.catalog(), &purchase.offer) {
        match send(ctx, &lookup, None).await {
            Ok(v) => purchase.price = checkout::found_price(&v),
            Err(r) => return r,
        }
        call = match checkout::checkout(&ctx.catalog(), &purchase, &account, now) {
            Ok(c) => c,
            Err(r) => return refused(r),
        };
    }
    // A retried request (same Idempotency-Key) gets the same session, never a second one;
    // the key is scoped to the buyer, so no caller can reuse another's.
    let scoped = (!key.is_empty()).then(|| {
        let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
        format!("tollgate-checkout:{}:{}", account.subject, &digest[..32])
    });
    let answer = match send(ctx, &call, scoped.as_deref()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(id) = answer["id"].as_str() else {
        return error(502, "provider_error", format!("{} answered without the id of what it created", name(call.provider)));
    };
    let mut out = json!({"provider": call.provider.as_str(), "id": id, "offer": purchase.offer,
                         "subject": account.subject.to_string()});
    if call.path == "/v1/orders" {
        out["url"] = Value::Null;
        out["order"] = json!({
            "id": id,
            "amount": answer["amount"],
            "currency": answer["currency"],
            "key_id": ctx.config.razorpay_key.as_ref().map(|(k, _)| k.clone()),
        });
    } else {
        let Some(url) = answer["url"].as_str().or_else(|| answer["short_url"].as_str()).filter(|u| !u.is_empty()) else {
            return error(502, "provider_error", format!("{} answered without the URL to send the buyer to", name(call.provider)));
        };
        out["url"] = json!(url);
    }
    AppResponse::json(200, &out)
}

fn purchase(body: &Value) -> Result<Purchase, AppResponse> {
    let offer = req_str(body, "offer", "an offer key of the catalog")?;
    let success_url = req_str(body, "success_url", "where the provider sends the buyer after paying")?;
    let cancel_url = req_str(body, "cancel_url", "where the provider sends a buyer who turns back")?;
    let quantity = match &body["quantity"] {
        Value::Null => None,
        q => Some(
            q.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| error(400, "invalid_body", "`quantity` must be a positive integer"))?,
        ),
    };
    let clouds = clouds(body)?;
    Ok(Purchase {
        offer: offer.to_string(),
        quantity,
        clouds,
        success_url: success_url.to_string(),
        cancel_url: cancel_url.to_string(),
        price: None,
    })
}

/// A bundle's chosen products (`clouds`: product ids; none when absent).
fn clouds(body: &Value) -> Result<Vec<String>, AppResponse> {
    match &body["clouds"] {
        Value::Null => Ok(vec![]),
        Value::Array(a) => a
            .iter()
            .map(|c| c.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| error(400, "invalid_body", "`clouds` must be an array of product ids")),
        _ => Err(error(400, "invalid_body", "`clouds` must be an array of product ids")),
    }
}

/// `POST /v1/portal` `{"return_url", "organization_id"?}` → `{"url"}`.
pub async fn portal<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (return_url, org) = match (req_str(&body, "return_url", "where the portal's back link goes"), organization(&body)) {
        (Ok(u), Ok(o)) => (u, o),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let account = match account(ctx, claims, org.as_deref()).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let call = match checkout::portal(&account, return_url) {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    match send(ctx, &call, None).await {
        Ok(v) => match v["url"].as_str().filter(|u| !u.is_empty()) {
            Some(url) => AppResponse::json(200, &json!({"url": url})),
            None => error(502, "provider_error", "Stripe answered without the portal's URL"),
        },
        Err(r) => r,
    }
}

/// The body of a request on one subscription, `{"subscription"?, "organization_id"?}` (or
/// none), and the account it acts on: the subscription named, if one is.
async fn subscription_account<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    req: &InRequest,
    claims: &Claims,
) -> Result<(checkout::Account, Option<String>), AppResponse> {
    let body = if req.body.is_empty() { json!({}) } else { json_body(req)? };
    // Read as `{}` an array or a scalar would lose the caller's choice and move another
    // subscription.
    if !body.is_object() {
        return Err(error(400, "invalid_body", "the body must be a JSON object: {\"subscription\"?, \"organization_id\"?}, or none"));
    }
    let (sub, org) = match (opt_str(&body, "subscription"), organization(&body)) {
        (Ok(s), Ok(o)) => (s.map(str::to_string), o),
        (Err(r), _) | (_, Err(r)) => return Err(r),
    };
    Ok((account(ctx, claims, org.as_deref()).await?, sub))
}

/// `POST /v1/subscriptions/cancel` and `/resume` `{"subscription"?, "organization_id"?}`.
pub async fn cancel<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims, resume: bool) -> AppResponse {
    let (account, sub) = match subscription_account(ctx, req, claims).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let sub = sub.as_deref();
    let call = match checkout::cancel(&account, sub, resume) {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    let held = checkout::pick(&account, sub).map(|h| h.id.clone()).unwrap_or_default();
    match send(ctx, &call, None).await {
        Ok(v) => AppResponse::json(
            200,
            &json!({
                "subscription": held,
                "provider": call.provider.as_str(),
                "cancel_at_period_end": !resume,
                "provider_status": v["status"],
                "applied": "when the provider's webhook arrives",
            }),
        ),
        Err(r) => r,
    }
}

/// `POST /v1/subscriptions/unpause` `{"subscription"?, "organization_id"?}`: the caller's (or, as
/// owner or admin, its organization's) paused subscription resumed at its provider, by the
/// requests the core decides ([`checkout::resume`]); access follows the webhook.
pub async fn unpause<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims) -> AppResponse {
    let (account, sub) = match subscription_account(ctx, req, claims).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let sub = sub.as_deref();
    let plan = match checkout::resume(&account, sub) {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    let answers = match converse(ctx, &plan.first, |answers| plan.next(answers).map_err(refused)).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    AppResponse::json(
        200,
        &json!({
            "subscription": plan.subscription,
            "provider": plan.provider.as_str(),
            "provider_status": answers.last().map_or(Value::Null, |v| v["status"].clone()),
            "applied": "when the provider's webhook arrives",
        }),
    )
}

/// `POST /v1/subscriptions/change` `{"offer", "clouds"?, "subscription"?, "organization_id"?}`.
pub async fn change<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (offer, sub, org) = match (req_str(&body, "offer", "the offer to move to"), opt_str(&body, "subscription"), organization(&body)) {
        (Ok(o), Ok(s), Ok(g)) => (o, s, g),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let clouds = match clouds(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let account = match account(ctx, claims, org.as_deref()).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let plan = match checkout::change(&ctx.catalog(), &account, sub, offer, &clouds) {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    let provider = name(plan.first.provider);
    let done = if plan.withdraws {
        // Back to what it holds: the change waiting for the period's end is withdrawn.
        converse(ctx, &plan.first, |answers| plan.withdraw_next(answers).map_err(refused)).await
    } else {
        let next = |answers: &[Value]| {
            plan.next(&ctx.catalog(), answers)
                .map_err(|m| error(502, "provider_error", format!("{provider} answered something unexpected: {m}")))
        };
        converse(ctx, &plan.first, next).await
    };
    if let Err(r) = done {
        return r;
    }
    let mut out = json!({
        "subscription": plan.subscription,
        "provider": plan.first.provider.as_str(),
        "from": plan.from,
        "to": plan.to,
        "clouds": plan.clouds,
        "effective": if plan.upgrade || plan.withdraws { "now" } else { "period_end" },
        "applied": "when the provider's webhook arrives",
    });
    if plan.withdraws {
        out["withdrawn"] = json!(true);
    }
    AppResponse::json(200, &out)
}
