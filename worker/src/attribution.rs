//! The operator's side of kept events (admin secret): `GET /v1/admin/unattributed` lists
//! the correctly signed deliveries that were kept instead of applied, and
//! `POST /v1/admin/attribute` applies one to a user or organization.
//!
//! A paid event is never refused (a provider retries any non-2xx, Stripe for up to three
//! days, and then drops the event): one that names no buyer, whose prices map to no offer
//! of the catalog, or whose body the core cannot read is kept (200 `kept`). The listing
//! shows each with why it waits and what the core reads in it (customer, subscription,
//! purchase, prices, offer, amount). The attribution is a fact (`attributed`: the
//! event's customer, subscription and purchase belong to the subject, and sold the offer
//! the operator names when nothing else says which), decided by the core
//! (`tollgate::billing::attribute`) and folded with the event's own facts through the same
//! path as every webhook and the scheduled run, so the grant appears and the kept
//! delivery is resolved in one transaction.
//!
//! ```json
//! POST /v1/admin/attribute
//! { "event": "evt_...", "provider": "stripe",        (default stripe; or "razorpay")
//!   "user_id": "<uuid>",                              (or "organization_id")
//!   "offer": "VIDEO_PRO_MONTHLY",                     (when the event's prices name none)
//!   "clouds": ["video", "writing"],                   (a bundle's products, when its choice is wrong)
//!   "by": "ops@example.com" }                         (who attributes it; default "admin")
//! ```
//! 200 `attributed` (or `already_attributed` on a retry), 404 for an event that was never
//! kept or a subject the database does not know, 409 when the event is attributed to
//! someone else the database knows, cannot be read, names nothing to attribute or would
//! still wait, 400 for a bad body. An event linked to a user the database has no record
//! of (a deleted account, another environment's id) is attributed in that user's place.

use serde_json::{json, Value};

use tollgate::billing::attribute::{attribute, known, Decision, Refusal, Request};
use tollgate::billing::facts::Provider as CoreProvider;
use tollgate::billing::parse::Parsed;
use tollgate::time::Timestamp;

use crate::ctx::Ctx;
use crate::http::{AppResponse, InRequest, Transport};
use crate::respond::{error, error_json, json_body, store_error};
use crate::state::Subject;
use crate::store::{KeptEvent, Store};
use crate::webhook::{apply_facts, parse, Outcome, Provider};

/// The listing's page size, by default and at most.
const PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

fn provider_of(s: &str) -> Option<Provider> {
    match s {
        "stripe" => Some(Provider::Stripe),
        "razorpay" => Some(Provider::Razorpay),
        _ => None,
    }
}

/// The core's reading of a kept delivery's body (as it reads it now).
fn read<T, S>(app: &Ctx<T, S>, k: &KeptEvent) -> Result<Parsed, String> {
    let provider = provider_of(&k.provider).unwrap_or(Provider::Stripe);
    let raw = match &k.payload {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    parse(app, provider, &raw, Some(&k.event_id))
}

/// `GET /v1/admin/unattributed?provider=&after=&limit=`: open kept deliveries, oldest
/// first, a page at a time (`next` is the `after` of the next page, `null` at the end).
pub async fn unattributed<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest) -> AppResponse {
    let provider = match req.query_param("provider").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) if provider_of(&p).is_some() => Some(p),
        Some(p) => return error(400, "invalid_provider", format!("provider `{p}`: use stripe or razorpay")),
    };
    let after = match req.query_param("after").filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match a.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return error(400, "invalid_cursor", "after: the `next` of the previous page (a whole number)"),
        },
    };
    let limit = match req.query_param("limit").filter(|l| !l.is_empty()) {
        None => PAGE,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return error(400, "invalid_limit", format!("limit: 1 to {MAX_PAGE}")),
        },
    };
    let rows = match app.store.kept_events(provider.as_deref(), after, limit).await {
        Ok(r) => r,
        Err(e) => return store_error(&e),
    };
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    let events: Vec<Value> = rows
        .iter()
        .map(|k| {
            let (readable, known, warnings) = match read(app, k) {
                Ok(p) => (true, serde_json::to_value(known(p.facts())).unwrap_or(Value::Null), p.warnings().to_vec()),
                Err(_) => (false, Value::Null, Vec::new()),
            };
            json!({
                "provider": k.provider, "event": k.event_id, "type": k.event_type, "reason": k.reason,
                "waiting_for": k.waiting_for, "received_at": k.received_at, "attempts": k.attempts,
                "readable": readable, "known": known, "warnings": warnings,
            })
        })
        .collect();
    AppResponse::json(200, &json!({"events": events, "next": next}))
}

/// `POST /v1/admin/attribute`: see the module docs.
pub async fn attribute_event<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest, now: Timestamp) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let bad = |code: &str, m: &str| error(400, code, m.to_string());
    let Some(event_id) = body.get("event").and_then(Value::as_str).filter(|e| !e.is_empty() && e.len() <= 255) else {
        return bad("invalid_event", "event: the provider's event id, as /v1/admin/unattributed lists it");
    };
    let provider_name = match body.get("provider") {
        None | Some(Value::Null) => "stripe",
        Some(Value::String(p)) if provider_of(p).is_some() => p.as_str(),
        Some(_) => return bad("invalid_provider", "provider: stripe or razorpay"),
    };
    let subject = match crate::admin::subject_of(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let offer = match body.get("offer") {
        None | Some(Value::Null) => None,
        Some(Value::String(o)) if !o.is_empty() => Some(o.clone()),
        Some(_) => return bad("invalid_offer", "offer: an offer key of the catalog"),
    };
    let clouds = match body.get("clouds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(|c| c.as_str().is_some_and(|c| !c.is_empty())) => {
            a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect()
        }
        Some(_) => return bad("invalid_clouds", "clouds: the bundle's products, as an array of product ids"),
    };
    let by = match body.get("by") {
        None | Some(Value::Null) => "admin".to_string(),
        Some(Value::String(b)) if !b.is_empty() && b.len() <= 200 && !b.chars().any(char::is_control) => b.clone(),
        Some(_) => return bad("invalid_by", "by: who attributes it, 1 to 200 printable characters"),
    };

    let kept = match app.store.kept_event(provider_name, event_id).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return error(404, "unknown_event", format!("no kept {provider_name} event `{event_id}` (see /v1/admin/unattributed)"))
        }
        Err(e) => return store_error(&e),
    };
    let facts = match read(app, &kept) {
        Ok(Parsed::Facts { facts, .. }) => facts,
        Ok(Parsed::Ignored { reason, .. }) => return error(409, "nothing_to_attribute", reason),
        Err(reason) => {
            return error_json(409, "unreadable", "the event's body cannot be read, so it cannot be applied", json!({"reason": reason}))
        }
    };
    match app.store.subject_exists(&subject).await {
        Ok(true) => {}
        Ok(false) => return error(404, "unknown_subject", format!("no such user or organization: {}", subject.key())),
        Err(e) => return store_error(&e),
    }
    let refs: std::collections::BTreeSet<String> = facts.iter().flat_map(|f| f.refs()).collect();
    let cluster = match app.store.fold_input(&refs).await {
        Ok(i) => i.facts,
        Err(e) => return store_error(&e),
    };
    let catalog = app.catalog();
    let provider = if provider_name == "razorpay" { CoreProvider::Razorpay } else { CoreProvider::Stripe };
    let mut request = Request { provider, event: event_id.to_string(), subject: subject.to_core(), offer, clouds, by, unknown: vec![] };
    let mut decided = attribute(&catalog, &request, &facts, &cluster, now);
    // Linked to another user: whether the store knows it (the core decides whether the link
    // may be replaced). Ids are UUIDs, so another id has no record.
    if let Err(Refusal::AttributedToOther { subject: other }) = &decided {
        let s = Subject::from_core(other);
        let exists = if s.is_valid() { app.store.subject_exists(&s).await } else { Ok(false) };
        match exists {
            Ok(true) => {}
            Ok(false) => {
                request.unknown.push(other.clone());
                decided = attribute(&catalog, &request, &facts, &cluster, now);
            }
            Err(e) => return store_error(&e),
        }
    }
    let (status, mut apply) = match decided {
        Ok(Decision::Attribute(fact)) => ("attributed", vec![fact]),
        Ok(Decision::Already) if kept.resolved => {
            return AppResponse::json(200, &answer("already_attributed", &kept, &subject, None));
        }
        // Attributed so already, and still kept (a user who signed up since): apply it.
        Ok(Decision::Already) => ("already_attributed", vec![]),
        Err(r) => return error_json(409, r.code(), r.message(), json!({"event": event_id})),
    };
    let key = apply.first().map(|f| f.key.clone());
    // The event's facts with the attribution, through the fold every webhook and the
    // scheduled run use: the kept delivery is resolved when none of its facts waits.
    apply.extend(facts);
    match apply_facts(app, None, apply, now).await {
        Ok(Outcome::Applied { unknown, .. }) if !unknown.is_empty() => error_json(
            409,
            "still_waiting",
            "applied, except for users the database does not know yet",
            json!({"waiting_for": unknown}),
        ),
        Ok(_) => match app.store.kept_event(provider_name, event_id).await {
            Ok(Some(k)) if k.resolved => AppResponse::json(200, &answer(status, &k, &subject, key)),
            Ok(_) => error(409, "still_waiting", "the attribution was recorded and the event still waits; see /v1/admin/unattributed"),
            Err(e) => store_error(&e),
        },
        Err(e) => store_error(&e),
    }
}

fn answer(status: &str, k: &KeptEvent, subject: &Subject, fact: Option<String>) -> Value {
    json!({"status": status, "provider": k.provider, "event": k.event_id, "subject": subject.key(), "fact": fact})
}
