//! `POST /v1/admin/grants` (admin secret): manual_grant and promotion grants, with an
//! expiry, and optional credits.
//!
//! ```json
//! { "user_id": "<uuid>"            (or "organization_id"),
//!   "grants": [ { "product": "video", "tier": "pro", "source": "promotion",
//!                 "valid_from": "2026-03-01T00:00:00Z", "valid_to": "2026-04-01T00:00:00Z",
//!                 "id": "spring-2026" } ],
//!   "credits": [ { "pool": "video_seconds", "amount": 600, "id": "compensation-42",
//!                  "valid_to": null } ] }
//! ```
//! Products, tiers and pools are checked against the catalog. Each grant and credit is a
//! fact (`GrantGiven`, `CreditAdjustment`) folded with the subject's other facts, so a
//! later fold keeps them and never charges anything twice. A grant is identified by its
//! source and id: sending it again with other values updates it; a grant whose window
//! has ended is closed by the fold. A credit id gives its credit once: the same credit
//! again changes nothing, the same id with other values is a 409. 201 on success; 404
//! for a subject the database does not know.

use serde_json::{json, Value};

use tollgate::billing::facts::{CreditAdjustment, Fact, GrantGiven};
use tollgate::model::Source;
use tollgate::time::Timestamp;

use crate::ctx::Ctx;
use crate::respond::{error, error_json, json_body, store_error};
use crate::store::Store;
use crate::http::{AppResponse, InRequest, Transport};
use crate::state::{is_uuid, Subject};
use crate::webhook::Outcome;

fn time_field(v: &Value, k: &str) -> Result<Option<Timestamp>, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Timestamp::parse(s).map(Some).map_err(|e| format!("{k}: {e}")),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(s) => Timestamp::checked(s).map(Some).map_err(|e| format!("{k}: {e}")),
            None => Err(format!("{k}: not an integer")),
        },
        Some(_) => Err(format!("{k}: expected an RFC 3339 string or unix seconds")),
    }
}

pub async fn grants<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest, now: Timestamp) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let subject = match (
        body.get("user_id").and_then(Value::as_str),
        body.get("organization_id").and_then(Value::as_str),
    ) {
        // Ids as the store writes them (lower case): an upper-case one is the same subject.
        (Some(u), None) if is_uuid(u) => Subject::User(u.to_ascii_lowercase()),
        (None, Some(o)) if is_uuid(o) => Subject::Org(o.to_ascii_lowercase()),
        _ => {
            return error(
                400,
                "invalid_subject",
                "give exactly one of user_id and organization_id, as a UUID",
            )
        }
    };
    let core_subject = subject.to_core();
    let mut facts = Vec::new();
    let mut given = Vec::new();
    for (i, g) in body
        .get("grants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let bad = |m: String| error(400, "invalid_grant", format!("grants[{i}]: {m}"));
        let product = g.get("product").and_then(Value::as_str).unwrap_or("");
        let tier = g.get("tier").and_then(Value::as_str).unwrap_or("");
        if app.catalog().product(product).is_none() {
            return bad(format!(
                "unknown product `{product}` in catalog `{}`",
                app.catalog().meta().id
            ));
        }
        if app.catalog().tier_index(product, tier).is_none() {
            return bad(format!("product `{product}` has no tier `{tier}`"));
        }
        let source = match crate::respond::opt_str(g, "source", "invalid_grant").map(|s| s.unwrap_or("manual_grant")) {
            Ok(s) => s,
            Err(_) => return bad("`source` must be a string".into()),
        };
        let source = match source {
            "manual_grant" => Source::ManualGrant,
            "promotion" => Source::Promotion,
            other => return bad(format!("source `{other}`: admin grants are manual_grant or promotion")),
        };
        let valid_from = match time_field(g, "valid_from") {
            Ok(t) => t.unwrap_or(now),
            Err(m) => return bad(m),
        };
        let valid_to = match time_field(g, "valid_to") {
            Ok(t) => t,
            Err(m) => return bad(m),
        };
        if valid_to.is_some_and(|t| t <= valid_from) {
            return bad("valid_to must be after valid_from".into());
        }
        let id = g.get("id").and_then(Value::as_str).unwrap_or(product);
        if id.is_empty() || id.len() > 200 {
            return bad("id must be 1 to 200 characters".into());
        }
        let grant = GrantGiven {
            id: id.to_string(),
            subject: core_subject.clone(),
            product: product.to_string(),
            tier: tier.to_string(),
            source,
            valid_from,
            valid_to,
        };
        given.push(json!({"id": format!("{}:{id}", source.as_str()), "product": product, "tier": tier,
                          "source": source.as_str(), "valid_from": valid_from, "valid_to": valid_to}));
        facts.push(Fact::grant_given(grant, now));
    }
    let mut credits = Vec::new();
    for (i, c) in body
        .get("credits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let bad = |m: String| error(400, "invalid_credit", format!("credits[{i}]: {m}"));
        let pool = c.get("pool").and_then(Value::as_str).unwrap_or("");
        if app.catalog().pool(pool).is_none() {
            return bad(format!("unknown credit pool `{pool}`"));
        }
        let max = tollgate::credits::MAX_CREDIT;
        let Some(amount) = c.get("amount").and_then(Value::as_i64).filter(|a| *a > 0 && *a <= max) else {
            return bad(format!("amount must be a whole number from 1 to {max}"));
        };
        let Some(id) = c.get("id").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 200) else {
            return bad("id is required, 1 to 200 characters (it makes the credit idempotent)".into());
        };
        let valid_to = match time_field(c, "valid_to") {
            Ok(t) => t,
            Err(m) => return bad(m),
        };
        if valid_to.is_some_and(|t| t <= now) {
            return bad("valid_to must be in the future".into());
        }
        let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
        let adjustment = CreditAdjustment::by_operator(core_subject.clone(), id, pool, amount, reason, valid_to);
        credits.push(json!({"id": id, "pool": pool, "amount": amount, "valid_to": valid_to,
                            "lot": adjustment.lot_key()}));
        facts.push(Fact::credit_adjustment(adjustment, now));
    }
    if facts.is_empty() {
        return error(400, "nothing_to_grant", "give at least one of `grants` and `credits`");
    }
    match app.store.subject_exists(&subject).await {
        Ok(true) => {}
        Ok(false) => return error(404, "unknown_subject", format!("no such user or organization: {}", subject.key())),
        Err(e) => return store_error(&e),
    }
    match crate::webhook::apply_facts(app, None, facts, now).await {
        Ok(Outcome::Applied { conflicts, .. }) if !conflicts.is_empty() => error_json(
            409,
            "already_granted",
            "a credit with this id was given before with other values; use a new id",
            json!({"facts": conflicts}),
        ),
        Ok(_) => AppResponse::json(
            201,
            &json!({"status": "granted", "subject": subject.key(), "grants": given, "credits": credits}),
        ),
        Err(e) if e.conflict() == Some(crate::store::Conflict::FactConflict) => error(
            409,
            "already_granted",
            "a credit or grant with this id was given before with other values; use a new id",
        ),
        Err(e) => store_error(&e),
    }
}

/// `POST /v1/admin/seats` (admin secret): gives a member of an organization a seat, or
/// takes it back. `{"organization_id", "user_id", "action": "assign" | "release",
/// "request_id"?}`. Only a member is given a seat (the core's `orgs::operator_seat`, read
/// from the organization as it stands): 404 `not_a_member` for anyone else, 404
/// `unknown_organization` for no organization; taking one back asks nothing. The seat is
/// a fact like any other: the core's fold decides whether the organization has a seat
/// left (its seat count follows the subscription quantity), and the answer says what it
/// decided: 200 with the seat, or 409 with the refusal.
pub async fn seats<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest, now: Timestamp) -> AppResponse {
    use tollgate::billing::facts::{Fact, Subject as CoreSubject};
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let org = body.get("organization_id").and_then(Value::as_str).unwrap_or("");
    let user = body.get("user_id").and_then(Value::as_str).unwrap_or("");
    if !is_uuid(org) || !is_uuid(user) {
        return error(400, "invalid_subject", "organization_id and user_id must be UUIDs");
    }
    let (org, user) = (org.to_ascii_lowercase(), user.to_ascii_lowercase());
    let (org, user) = (org.as_str(), user.as_str());
    let action = match crate::respond::opt_str(&body, "action", "invalid_action").map(|a| a.unwrap_or("assign")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    // The operator's own id goes in its own space (`admin:` and the id escaped), so it can
    // never be a key the system writes: an invite's seat (`invite:<id>`), a member's move
    // (`<user>:<nonce>`) or an unnamed operator request (`<action>:<time>`).
    let request_id = body
        .get("request_id")
        .and_then(Value::as_str)
        .map(|id| format!("admin:{}", tollgate::billing::facts::key_part(id)))
        .unwrap_or_else(|| format!("{action}:{}", now.unix()));
    let (o, u) = (CoreSubject::org(org), CoreSubject::user(user));
    if action == "assign" {
        let read = match app.store.org(org).await {
            Ok(Some(r)) => r,
            Ok(None) => return error(404, "unknown_organization", format!("no organization {org}")),
            Err(e) => return store_error(&e),
        };
        if let Err(r) = tollgate::orgs::operator_seat(&read.org, user, true) {
            return crate::orgs::refused(r);
        }
    }
    let fact = match action {
        "assign" => Fact::seat_assigned(o, u, &request_id, now),
        "release" => Fact::seat_released(o, u, &request_id, now),
        other => {
            return error(
                400,
                "invalid_action",
                format!("action `{other}`: use assign or release"),
            )
        }
    };
    if let Err(e) = crate::webhook::apply_facts(app, None, vec![fact], now).await {
        return store_error(&e);
    }
    let held = match app.store.seat_held(org, user).await {
        Ok(h) => h,
        Err(e) => return store_error(&e),
    };
    match (action, held) {
        ("assign", true) | ("release", false) => AppResponse::json(
            200,
            &json!({"status": if held { "seated" } else { "released" }, "organization_id": org, "user_id": user}),
        ),
        ("assign", false) => error(
            409,
            "no_seat",
            "the organization has no seat left for this user (see its seat count)",
        ),
        _ => error(409, "still_seated", "the seat could not be released"),
    }
}

/// `GET /v1/admin/failed-payments?status=open|resolved|all&after=&limit=`: the failed
/// subscription payments (what is due, attempts, next retry, grace end; settled ones with
/// when and how), oldest first failure first, `limit` (1 to 200, default 50) at a time;
/// `next` is the `after` of the next page (`null` at the end).
pub async fn failed_payments<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest) -> AppResponse {
    let open = match req.query_param("status").as_deref() {
        None | Some("") | Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some("all") => None,
        Some(s) => return error(400, "invalid_status", format!("status `{s}`: use open, resolved or all")),
    };
    let limit = match req.query_param("limit").filter(|l| !l.is_empty()) {
        None => 50,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => return error(400, "invalid_limit", "limit: 1 to 200"),
        },
    };
    let after = req.query_param("after").filter(|a| !a.is_empty());
    if after.as_deref().is_some_and(|a| a.len() > 300 || !a.contains('|')) {
        return error(400, "invalid_cursor", "after: the `next` of the previous page");
    }
    match app.store.failed_payments(open, after.as_deref(), limit).await {
        Ok(rows) => {
            let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r["cursor"].clone())).flatten();
            AppResponse::json(200, &json!({"failed_payments": rows, "next": next}))
        }
        Err(e) => store_error(&e),
    }
}
