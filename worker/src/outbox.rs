//! Outbound webhooks: the app's endpoints (`/v1/admin/endpoints`, admin secret) and the
//! delivery of the outbox. Every alert transition is queued in the store, in the
//! transaction that made it, once per subscribed endpoint; this module only sends: the
//! signature (Standard Webhooks) and what follows an attempt (the next retry, giving up,
//! disabling an endpoint) are the core's (`tollgate::webhooks`). Delivery runs right after
//! a request that queued something (in the runtime's `waitUntil`, so it never delays or
//! fails that request) and on every scheduled run; a subject's messages go to an endpoint
//! in order, the next waiting for the one before.
//!
//! ```json
//! POST /v1/admin/endpoints  {"url": "https://app.example/hooks/tollgate", "events": ["alert.crossed", "alert.resolved"]}
//! 201 {"id": "...", "url": "...", "events": [...], "secret": "whsec_...", "enabled": true}
//! ```
//! The secret is answered this once; listings never show it.

use serde_json::{json, Value};

use tollgate::time::Timestamp;
use tollgate::webhooks::{after_attempt, retry_after, sign, Attempt};

use crate::budget::Budget;
use crate::ctx::Ctx;
use crate::http::{AppResponse, Headers, InRequest, Method, OutRequest, Transport};
use crate::respond::{error, json_body, store_error};
use crate::state::is_uuid;
use crate::store::{AttemptRecord, Store, StoreError};

/// How long an endpoint may take to answer one delivery.
pub const DELIVERY_TIMEOUT_MS: u32 = 10_000;
/// Messages read per round, and rounds per run (a round sends the next message of each
/// endpoint and subject). A round's messages are leased to it for
/// [`crate::store::OUTBOX_LEASE_SECONDS`] and sent one after another: a page is no more
/// than the lease can cover at the longest answer each, so an overlapping run never claims
/// a message this one has still to send.
const PAGE: u32 = 5;
const ROUNDS: usize = 250;
const _: () = assert!((PAGE as i64) * (DELIVERY_TIMEOUT_MS as i64) / 1000 < crate::store::OUTBOX_LEASE_SECONDS);

/// What a delivery run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: u32,
    pub failed: u32,
}

/// Sends what is due, until nothing more is (or [`ROUNDS`] rounds, or the budget's share
/// ends: a round claims no more messages than the budget has room for, so no message is
/// claimed and then left leased for want of requests). `clock` is read at each
/// round: a message queued by a request that ended while this run was sending (its
/// subject's earlier message in flight here, so that request's own run left it) is due in
/// the next round, not at the next scheduled run.
pub async fn deliver<T: Transport, S: Store>(ctx: &Ctx<T, S>, budget: &Budget<'_>, clock: &dyn Fn() -> Timestamp) -> Result<Delivered, StoreError> {
    let mut done = Delivered::default();
    for _ in 0..ROUNDS {
        let now = clock();
        // The read, then for each message its sending and the record of its attempt: a
        // round claims no more messages than the share has room for (at least one).
        if !budget.fits(3) {
            break;
        }
        let n = u32::try_from((budget.room() - 1) / 2).unwrap_or(PAGE).min(PAGE);
        let due = ctx.store.outbox_due(now, n).await?;
        if due.is_empty() {
            break;
        }
        // Endpoints an attempt of this round disabled (a 410, three days of failures): the
        // round's other messages for them stay, unsent, until the endpoint is enabled again.
        let mut disabled: Vec<String> = Vec::new();
        let lease_end = now.unix() + crate::store::OUTBOX_LEASE_SECONDS - i64::from(DELIVERY_TIMEOUT_MS / 1000);
        for m in due {
            if disabled.contains(&m.endpoint_id) {
                continue;
            }
            // Signed with the time it is sent (a receiver checks it against its own clock).
            let now = clock();
            // A send that could outlast the round's lease is left to the run that claims the
            // message when the lease ends (a slow store can stretch a round past it).
            if now.unix() > lease_end {
                break;
            }
            let body = serde_json::to_vec(&m.payload).unwrap_or_default();
            let (status, err, later) = match sign(&m.secret, &m.msg_id, now, &body) {
                Err(e) => (None, Some(e.to_string()), None),
                Ok(signed) => {
                    let mut headers = Headers::new()
                        .with("content-type", "application/json")
                        .with("user-agent", "tollgate-webhooks");
                    for (k, v) in signed {
                        headers.set(k, v);
                    }
                    let req = OutRequest { method: Method::Post, url: m.url.clone(), headers, body: Some(body), timeout_ms: Some(DELIVERY_TIMEOUT_MS) };
                    match ctx.send(req).await {
                        Ok(r) if (200..300).contains(&r.status) => (Some(r.status), None, None),
                        Ok(r) => {
                            // A receiver busy or limiting its rate may say when to come back.
                            let later = matches!(r.status, 429 | 503)
                                .then(|| r.headers.get("retry-after").and_then(|v| retry_after(v, now)))
                                .flatten();
                            (Some(r.status), Some(format!("answered {}", r.status)), later)
                        }
                        Err(e) => (None, Some(e.to_string()), None),
                    }
                }
            };
            let outcome = match (status, &err, later) {
                (_, None, _) => Attempt::Delivered,
                (Some(410), _, _) => Attempt::Gone,
                (_, _, Some(until)) => Attempt::Deferred { until },
                _ => Attempt::Failed,
            };
            let next = after_attempt(outcome, m.attempts + 1, m.first_attempt_at.unwrap_or(now), m.failing_since, now);
            if outcome == Attempt::Delivered {
                done.delivered += 1;
            } else {
                done.failed += 1;
            }
            let rec = AttemptRecord {
                at: now,
                status,
                error: err.map(|e| e.chars().take(500).collect()),
                duration_ms: None,
                delivered: outcome == Attempt::Delivered,
                retry_at: next.retry_at,
                give_up: next.give_up,
                disable_endpoint: next.disable_endpoint,
            };
            if rec.disable_endpoint {
                disabled.push(m.endpoint_id.clone());
            }
            ctx.store.outbox_attempt(m.id, &rec).await?;
        }
    }
    Ok(done)
}

/// Applies the core's alert checks for `subject` (after a counted use, a charge, the
/// scheduled run). Never fails the request that caused them: a store failure here leaves
/// the level as it is, and the next use or fold applies the same checks again.
pub async fn record<T: Transport, S: Store>(ctx: &Ctx<T, S>, subject: &crate::state::Subject, checks: &[tollgate::alerts::AlertCheck], now: Timestamp) {
    if checks.is_empty() {
        return;
    }
    if let Ok(done) = ctx.store.record_alerts(subject, checks, now).await {
        if done.queued > 0 {
            ctx.outbox_queued.set(true);
        }
    }
}

/// `GET /v1/admin/endpoints` (without secrets) and `POST /v1/admin/endpoints`.
pub async fn endpoints<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest) -> AppResponse {
    if req.method != Method::Post {
        return match ctx.store.endpoints().await {
            Ok(v) => AppResponse::json(200, &json!({"endpoints": v})),
            Err(e) => store_error(&e),
        };
    }
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let url = match body.get("url").and_then(Value::as_str) {
        Some(u) if valid_url(u) => u.to_string(),
        _ => return error(400, "invalid_url", "url: an https:// URL of at most 2048 characters (http:// only to localhost)"),
    };
    let events: Vec<String> = match body.get("events") {
        None | Some(Value::Null) => vec!["*".to_string()],
        Some(Value::Array(a)) if !a.is_empty() => {
            let mut out = Vec::new();
            for e in a {
                match e.as_str() {
                    Some(e) if e == "*" || tollgate::alerts::EVENT_TYPES.contains(&e) => {
                        if !out.iter().any(|x: &String| x == e) {
                            out.push(e.to_string())
                        }
                    }
                    _ => {
                        return error(
                            400,
                            "invalid_events",
                            format!("events: some of {} (or \"*\" for all)", tollgate::alerts::EVENT_TYPES.join(", ")),
                        )
                    }
                }
            }
            out
        }
        Some(_) => return error(400, "invalid_events", "events: a non-empty array of event types"),
    };
    match ctx.store.create_endpoint(&url, &events).await {
        Ok(v) => AppResponse::json(201, &v),
        Err(e) => store_error(&e),
    }
}

/// `POST /v1/admin/endpoints/{id}/enable` and `/disable`.
pub async fn set_enabled<T: Transport, S: Store>(ctx: &Ctx<T, S>, id: &str, enabled: bool, now: Timestamp) -> AppResponse {
    if !is_uuid(id) {
        return error(400, "invalid_endpoint", "the endpoint id is a UUID, as POST /v1/admin/endpoints answered it");
    }
    match ctx.store.set_endpoint(id, enabled, now).await {
        Ok(Some(v)) => AppResponse::json(200, &json!({"endpoint": v})),
        Ok(None) => error(404, "unknown_endpoint", format!("no endpoint {id}")),
        Err(e) => store_error(&e),
    }
}

/// An https URL with a host, or plain http to this machine (a receiver in development):
/// anywhere else plain http would carry the messages and their signatures in the clear.
fn valid_url(u: &str) -> bool {
    let parsed = url::Url::parse(u);
    u.len() <= 2048
        // No userinfo: it would be listed in clear, and the runtime's fetch drops it.
        && parsed.is_ok_and(|p| p.username().is_empty() && p.password().is_none() && match (p.scheme(), p.host()) {
            ("https", Some(url::Host::Domain(d))) => !d.is_empty(),
            ("https", Some(_)) => true,
            ("http", Some(url::Host::Domain(d))) => d.eq_ignore_ascii_case("localhost"),
            ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
            ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
            _ => false,
        })
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}
