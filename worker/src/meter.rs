//! `POST /v1/check` and `POST /v1/track` (Bearer user token): one capability or limit of
//! the catalog, decided by the core (`tollgate::meter`) for the signed-in user.
//!
//! ```json
//! { "feature": "workflow_runs_per_day", "quantity": 1 }
//! ```
//! `check` answers the decision and changes nothing: 200 `{"allowed", "reason",
//! "remaining": n | "unlimited", "used", "limit", "resets_at", "tier", "upgrade"}`.
//! `track` (with an `Idempotency-Key`) performs the use: a limit's window counter grows by
//! the quantity in one statement that may not pass the limit, so concurrent uses admit
//! exactly what the limit allows. 200 `{"allowed": true, "usage_id", "remaining", ...}`;
//! 403 `not_entitled` or `limit_reached` with the cheapest upgrade; 409 `key_reused` when
//! the key was sent before with another body; the same key and body answer the first use
//! again (`"replayed": true`). A capability has nothing to count: `track` is its check.
//! `"organization_id"` uses an organization's plan and counts its limit for the whole
//! organization (the caller must hold a seat there: 403 `not_a_member` or `no_seat`
//! otherwise); the record names the caller as its actor. `"scope"` counts a limit per
//! thing (the students of one course): counter `<limit>:<scope>`. A use of a limit without
//! a window (courses authored) is given back by `POST /v1/usage/{id}/release` (a course
//! deleted); a windowed limit's use is final (409 `not_releasable`).
//! A credit pool's use is a charge of that many credits (the same path as
//! `/v1/usage/consume`): 200 with the usage id and what the pool holds after; 402
//! `insufficient_balance` (`paused` when what it lacks is a paused subscription's credits) with
//! what is available and required and the cheapest top-up; 403
//! `not_entitled` without a plan or credits in the pool.

use serde_json::{json, Value};

use tollgate::decide::Reason;
use tollgate::charge::{ChargeInput, UnitsRequest};
use tollgate::meter::{self, Check, Feature, MeterAnswer, MeterError, Remaining, Track, Use};
use tollgate::time::Timestamp;

use crate::auth::Claims;
use crate::ctx::Ctx;
use crate::http::{AppResponse, InRequest, Transport};
use crate::respond::{error, error_json, json_body, store_error};
use crate::state::Subject;
use crate::store::{Counted, SettleAnswer, Store};
use crate::supabase::Conflict;

/// What a check or a track asks: the feature and quantity, and optionally the
/// organization the caller acts for and the scope a limit counts per.
struct Asked {
    feature: String,
    quantity: u64,
    /// The organization's id.
    organization: Option<String>,
    scope: Option<String>,
}

fn parse(req: &InRequest) -> Result<Asked, AppResponse> {
    parse_body(&json_body(req)?)
}

fn parse_body(body: &Value) -> Result<Asked, AppResponse> {
    let Some(feature) = body.get("feature").and_then(Value::as_str).filter(|f| !f.is_empty()) else {
        return Err(error(400, "invalid_request", "`feature` must name a capability or a limit of the catalog"));
    };
    let quantity = match body.get("quantity") {
        None | Some(Value::Null) => 1,
        Some(q) => match q.as_u64() {
            Some(q) if (1..=meter::MAX_QUANTITY).contains(&q) => q,
            _ => {
                return Err(error(
                    400,
                    "invalid_quantity",
                    format!("`quantity` must be a whole number from 1 to {}", meter::MAX_QUANTITY),
                ))
            }
        },
    };
    let organization = match body.get("organization_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if crate::state::is_uuid(id) => Some(id.to_ascii_lowercase()),
        Some(_) => return Err(error(400, "invalid_request", "`organization_id` must be an organization's UUID")),
    };
    let scope = match body.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(error(400, "invalid_scope", "`scope` must be a string")),
    };
    Ok(Asked { feature: feature.to_string(), quantity, organization, scope })
}

fn meter_error(e: &MeterError) -> AppResponse {
    match e {
        MeterError::UnknownFeature(_) => error(404, e.code(), e.to_string()),
        MeterError::Pool(_) | MeterError::BadQuantity(_) | MeterError::BadScope(_) => error(400, e.code(), e.to_string()),
    }
}

/// What [`gate`] read and decided to decide from.
struct Gate {
    /// The subject the use is counted for: the caller, or its organization.
    owner: Subject,
    ents: tollgate::Entitlements,
    /// The window's count so far (0 but for a limit).
    used: u64,
    /// A limit's counter (`<limit>` or `<limit>:<scope>`).
    counter: Option<String>,
    /// The catalog decided on: the served one with the terms the grants were sold under.
    catalog: std::rc::Rc<tollgate::Catalog>,
    /// Set when the caller is a member of the organization without a seat: the 403 its
    /// request gets, unless it retries a use it counted before (answered as that use).
    unseated: Option<AppResponse>,
}

/// Who a decision is about, what it reads and with which entitlements: the caller, or
/// the organization it acts for (as a member holding a seat, by the core's rule), and for
/// a limit what its counter holds in the window that holds `now`.
async fn gate<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    caller: &Subject,
    asked: &Asked,
    now: Timestamp,
) -> Result<Gate, AppResponse> {
    let counter = meter::counter_of(&ctx.catalog(), &asked.feature, asked.scope.as_deref()).map_err(|e| meter_error(&e))?;
    let owner = asked.organization.clone().map_or_else(|| caller.clone(), Subject::Org);
    let (st, latest) = ctx
        .store
        .gate_state(caller, counter.as_deref().map(|c| (&owner, c)))
        .await
        .map_err(|e| store_error(&e))?;
    let (ents, unseated) = match &asked.organization {
        None => (tollgate::seats::for_own_use(st.own_entitlements(now), &st.organizations(), counter.is_some()), None),
        Some(org) => {
            let refusal = |e: tollgate::seats::ActError| error(403, e.code(), e.to_string());
            let (ents, seated) = tollgate::seats::as_member(org, &st.organizations()).map_err(refusal)?;
            (ents, (!seated).then(|| refusal(tollgate::seats::ActError::NoSeat)))
        }
    };
    let (catalog, _) = ctx.catalog_for(&ents.grants, now).await;
    let used = match catalog.limit_index(&asked.feature) {
        Some(li) => meter::used_in(&meter::limit_window(&catalog, &ents, li, now), latest),
        None => 0,
    };
    Ok(Gate { owner, ents, used, counter, catalog, unseated })
}

pub async fn check<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims, now: Timestamp) -> AppResponse {
    let asked = match parse(req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let catalog = ctx.catalog();
    let pool = match meter::feature(&catalog, &asked.feature) {
        Ok(Feature::Pool(p)) => Some(p),
        Ok(_) => None,
        Err(e) => return meter_error(&e),
    };
    if pool.is_some() && asked.organization.is_some() {
        return error(400, "invalid_request", "`organization_id` applies to capabilities and limits: credits are the caller's");
    }
    let subject = Subject::user(&claims.sub);
    let decided = match pool {
        // Credits: the caller's lots with what it has joined since, on the served catalog
        // (a pool's terms are never grandfathered; no counter, no older versions to load).
        Some(pool) => {
            let st = match ctx.store.gate_state(&subject, None).await {
                Ok((st, _)) => st,
                Err(e) => return store_error(&e),
            };
            let st = match crate::webhook::joined(ctx, &subject, st, now).await {
                Ok(s) => s,
                Err(e) => return store_error(&e),
            };
            let ents = st.entitlements_for_snapshot(&catalog, now);
            meter::check_pool(&catalog, &ents, &st.wallet, pool, asked.quantity, now)
        }
        None => match gate(ctx, &subject, &asked, now).await {
            Ok(Gate { unseated: Some(refusal), .. }) | Err(refusal) => return refusal,
            Ok(Gate { ents, used, catalog: decided_on, .. }) => {
                meter::check(&decided_on, &ents, &asked.feature, asked.quantity, used, now)
            }
        },
    };
    match decided {
        Ok(c) => AppResponse::json(200, &serde_json::to_value(MeterAnswer::checked(c)).unwrap_or(Value::Null)),
        Err(e) => meter_error(&e),
    }
}

pub async fn track<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims, now: Timestamp) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let asked = match parse_body(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (feature, quantity) = (asked.feature.as_str(), asked.quantity);
    let hold = match body.get("hold") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return error(400, "invalid_request", "`hold` must be true or false"),
    };
    let key = match crate::respond::idempotency_key(req, true) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let caller = Subject::user(&claims.sub);
    match meter::feature(&ctx.catalog(), feature) {
        Ok(Feature::Pool(_)) if asked.organization.is_some() || asked.scope.is_some() => {
            return error(400, "invalid_request", "a credit pool is spent by the caller: no `organization_id` or `scope`")
        }
        Ok(Feature::Pool(pool)) => return spend(ctx, &caller, key, pool, quantity, hold, now).await,
        Ok(_) if hold => {
            return error(400, "hold_not_supported", format!("`{feature}` is not a credit pool: only credits are held"))
        }
        Ok(_) => {}
        Err(e) => return meter_error(&e),
    }
    let Gate { owner: subject, ents, used: mut last, counter, catalog: decided_on, unseated } = match gate(ctx, &caller, &asked, now).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let core_subject = subject.to_core();
    let core_caller = caller.to_core();
    let actor = asked.organization.is_some().then_some(&core_caller);
    // The store's count decides: a refusal from it is decided again with its count, and a
    // concurrent use under the same key (its record written first) is answered as a replay.
    let used = Use { subject: &core_subject, idempotency_key: key, feature, quantity, scope: asked.scope.as_deref(), actor };
    if let Some(refusal) = unseated {
        // A member without a seat acts for nobody; a use it counted while it held one is
        // still answered (a retry whose first answer was lost).
        let decided = meter::track(&decided_on, &ents, &used, last, now);
        let (Some(counter), Ok(Track::Allow(c, _) | Track::Refuse(c))) = (counter.as_deref(), decided) else { return refusal };
        return match replayed(ctx, &subject, &used, counter, c, quantity).await {
            Ok(Some(r)) | Err(r) => r,
            Ok(None) => refusal,
        };
    }
    for _ in 0..3 {
        let decided = meter::track(&decided_on, &ents, &used, last, now);
        let (check, count) = match decided {
            Ok(Track::Allow(c, count)) => (c, count),
            // A retry of a use counted before is answered as that use, also once the
            // limit is reached (a capability counts nothing: nothing to replay).
            Ok(Track::Refuse(c)) if counter.is_some() => {
                let counter = counter.as_deref().unwrap_or_default();
                return match replayed(ctx, &subject, &used, counter, c.clone(), quantity).await {
                    Ok(Some(r)) | Err(r) => r,
                    Ok(None) => {
                        let checks = meter::refused_checks(&decided_on, &ents, &c, counter, now);
                        crate::outbox::record(ctx, &subject, &checks, now).await;
                        refused(&c)
                    }
                };
            }
            Ok(Track::Refuse(c)) => return refused(&c),
            Err(e) => return meter_error(&e),
        };
        let Some(count) = count else {
            return AppResponse::json(200, &answer(&check, None, false));
        };
        match ctx.store.track(&subject, &count).await {
            Ok(Counted::Counted { usage_id, used }) => {
                // The limit's thresholds, compared by the store with the window's count.
                if let Some(max) = count.max {
                    let checks = tollgate::alerts::limit_checks(&decided_on, &count.feature, &count.counter, count.window_start, check.resets_at, max);
                    crate::outbox::record(ctx, &subject, &checks, now).await;
                }
                return AppResponse::json(200, &answer(&after(check, count.quantity, used), Some(usage_id), false))
            }
            Ok(Counted::Replayed { usage_id, used }) => {
                return AppResponse::json(200, &answer(&after(check, count.quantity, used), Some(usage_id), true))
            }
            Ok(Counted::LimitReached { used }) => last = used,
            Err(e) if e.conflict() == Some(Conflict::KeyReused) => {
                return error(409, "key_reused", "this Idempotency-Key was used for a different request")
            }
            Err(e) if e.conflict() == Some(Conflict::Other) => {} // the same key, concurrently: replayed next
            Err(e) => return store_error(&e),
        }
    }
    error(409, "concurrent_change", "the count kept changing; retry with the same Idempotency-Key")
}

/// A use of a credit pool: a charge of `units` credits, through the charge loop every
/// charge takes, answered in the shape of a track.
async fn spend<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    subject: &Subject,
    key: &str,
    pool: &str,
    units: u64,
    hold: bool,
    now: Timestamp,
) -> AppResponse {
    let core = subject.to_core();
    let req = UnitsRequest { subject: &core, idempotency_key: key, pool, units, hold };
    let hash = tollgate::charge::units_request_hash(&core, pool, units, hold);
    let decide = |input: ChargeInput<'_>| tollgate::charge::charge_units(&ctx.catalog(), input, &req, now);
    let mut r = crate::consume::run(ctx, subject, key, &hash, true, now, &decide).await;
    let Ok(mut v) = serde_json::from_slice::<Value>(&r.body) else { return r };
    if r.status == 200 {
        v["allowed"] = json!(true);
        v["feature"] = json!(pool);
        v["remaining"] = v["balances"][pool].clone();
        if let Some(until) = v["record"].get("hold_until").cloned() {
            v["hold_until"] = until;
        }
    } else if r.status == 402 || r.status == 403 {
        // The offer the core named for the refusal, as a track's refusal shows an upgrade.
        let offer = v["error"]["upgrade"].as_str().and_then(|k| ctx.catalog().offer(k).map(tollgate::catalog::Upgrade::from_offer));
        v["error"]["upgrade"] = serde_json::to_value(offer).unwrap_or(Value::Null);
    }
    r.body = serde_json::to_vec(&v).unwrap_or_default();
    r
}

/// The answer of the use counted before under this request's key (a retry), if one was:
/// `c`, the check decided now, as it stood once that use was counted.
async fn replayed<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    subject: &Subject,
    used: &Use<'_>,
    counter: &str,
    c: Check,
    quantity: u64,
) -> Result<Option<AppResponse>, AppResponse> {
    let (id, hash) = meter::use_keys(used, counter);
    match ctx.store.track_replay(subject, &id, &hash).await {
        Ok(Some(Counted::Replayed { usage_id, used })) => {
            Ok(Some(AppResponse::json(200, &answer(&after(allowed(c), quantity, used), Some(usage_id), true))))
        }
        Ok(_) => Ok(None),
        Err(e) if e.conflict() == Some(Conflict::KeyReused) => {
            Err(error(409, "key_reused", "this Idempotency-Key was used for a different request"))
        }
        Err(e) => Err(store_error(&e)),
    }
}

/// A refused check as the answer of the use it replays (which was allowed).
fn allowed(mut c: Check) -> Check {
    c.allowed = true;
    c.reason = Reason::WithinLimit;
    c.upgrade = None;
    c
}

/// The check as it stands after the store counted `used` in the window.
fn after(mut c: Check, quantity: u64, used: u64) -> Check {
    c.used = used.saturating_sub(quantity);
    if let Remaining::Count(n) = c.limit {
        c.remaining = Remaining::Count(n.saturating_sub(used));
    }
    c
}

fn answer(c: &Check, usage_id: Option<Value>, replayed: bool) -> Value {
    let usage_id = usage_id.and_then(|v| v.as_str().map(str::to_string));
    serde_json::to_value(MeterAnswer::tracked(c.clone(), usage_id, replayed)).unwrap_or(Value::Null)
}

/// 403: not entitled at all, or the limit is reached; with the cheapest upgrade.
fn refused(c: &Check) -> AppResponse {
    let (code, message) = c.refusal().unwrap_or(("not_entitled", String::new()));
    error_json(403, code, message, serde_json::to_value(c).unwrap_or(Value::Null))
}

/// `GET /v1/preferences`: the caller's overage choice, its billing period and what its
/// overage spent in it. `PUT /v1/preferences` `{"allow_overages": bool, "overage_limit":
/// minor units, "currency"?}` sets it (checked by the core: a cap of 0 or more, in the
/// catalog's usage currency); answers as GET.
pub async fn preferences<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    req: &InRequest,
    claims: &Claims,
    now: Timestamp,
) -> AppResponse {
    let subject = Subject::user(&claims.sub);
    let st = match ctx.store.subject_state(&subject, Some("-")).await {
        Ok(s) => s,
        Err(e) => return store_error(&e),
    };
    let mut current = (st.preferences.allow_overages, st.preferences.overage_limit_minor);
    if req.method == crate::http::Method::Put {
        let body = match json_body(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(allow) = body.get("allow_overages").and_then(Value::as_bool) else {
            return error(400, "invalid_request", "`allow_overages` must be true or false");
        };
        let limit = match body.get("overage_limit") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) => Some(n),
                None => return error(400, "invalid_overage_limit", "`overage_limit` must be a whole number of minor units"),
            },
        };
        let currency = match body.get("currency") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c.as_str()),
            Some(_) => return error(400, "wrong_currency", "`currency` must be a currency code"),
        };
        let choice = match meter::overage_choice(&ctx.catalog(), allow, limit, currency, current.1) {
            Ok(c) => c,
            Err(e @ meter::ChoiceError::NoUsagePricing) => return error(404, e.code(), e.to_string()),
            Err(e) => return error(400, e.code(), e.to_string()),
        };
        let stored = match ctx.store.set_preferences(&subject, &choice).await {
            Ok(limit) => limit,
            Err(e) => return store_error(&e),
        };
        current = (choice.allow_overages, Some(stored));
    }
    let catalog = ctx.catalog();
    let Some(usage) = catalog.doc.usage.as_ref() else {
        return error(404, "no_usage_pricing", "the catalog prices no usage: there are no overage preferences");
    };
    let period = meter::overage_period(&st.periods, now);
    let spent = match ctx.store.counter(&subject, &meter::overage_counter(&usage.currency), period.start).await {
        Ok(n) => n,
        Err(e) => return store_error(&e),
    };
    AppResponse::json(
        200,
        &json!({
            "allow_overages": current.0,
            "overage_limit": current.1.unwrap_or(usage.default_overage_limit),
            "currency": usage.currency,
            "period": {"start": period.start, "ends_at": period.resets_at},
            "spent": spent,
        }),
    )
}

/// The most days one `GET /v1/usage` covers.
pub const MAX_USAGE_DAYS: i64 = 366;

/// `GET /v1/usage?feature=<limit or pool>&from=&to=`: the caller's own use of a feature by
/// UTC day, for meters and charts. `from` and `to` are dates (`2027-01-31`, whole UTC
/// days) or RFC 3339 instants; by default the 30 days up to the end of today. Answers
/// `{"feature", "from", "to", "days": [{"day", "units", "uses"}]}` (days without use are
/// left out).
pub async fn usage<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims, now: Timestamp) -> AppResponse {
    if let Some(name) = req.repeated_query_param() {
        return error(400, "repeated_parameter", format!("`{name}` is given twice; give it once"));
    }
    let Some(feature) = req.query_param("feature").filter(|f| !f.is_empty()) else {
        return error(400, "invalid_request", "name the feature: ?feature=<a limit or a credit pool of the catalog>");
    };
    match meter::feature(&ctx.catalog(), &feature) {
        Ok(Feature::Limit(_) | Feature::Pool(_)) => {}
        Ok(Feature::Capability(_)) => {
            return error(400, "not_counted", format!("`{feature}` is a capability: it is checked, not counted"))
        }
        Err(e) => return meter_error(&e),
    }
    let end_of_today = meter::window(tollgate::catalog::LimitPeriod::Day, now).resets_at.unwrap_or(now);
    let parse = |name: &str, default: Timestamp| -> Result<Timestamp, AppResponse> {
        let bad = || error(400, "invalid_date", format!("`{name}` must be a date (2027-01-31) or an RFC 3339 instant"));
        let given = req.query.split('&').any(|p| p.split_once('=').map_or(p, |(k, _)| k) == name);
        let Some(v) = req.query_param(name) else { return if given { Err(bad()) } else { Ok(default) } };
        // A bare number is neither a date nor an RFC 3339 instant.
        if v.bytes().all(|b| b.is_ascii_digit() || b == b'-') && v.len() != 10 {
            return Err(bad());
        }
        // A date alone is its whole UTC day: `from` its first instant, `to` the next day's.
        let (v, whole_day) = if v.len() == 10 { (format!("{v}T00:00:00Z"), true) } else { (v, false) };
        let t = Timestamp::parse(&v).map_err(|_| bad())?;
        Ok(if whole_day && name == "to" { t.plus_days(1) } else { t })
    };
    let to = match parse("to", end_of_today) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let from = match parse("from", to.plus_days(-30)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if from >= to || to.unix() - from.unix() > MAX_USAGE_DAYS * tollgate::time::DAY {
        return error(400, "invalid_range", format!("`from` must be before `to`, at most {MAX_USAGE_DAYS} days apart"));
    }
    let subject = Subject::user(&claims.sub);
    match ctx.store.usage_by_day(&subject, &feature, from, to).await {
        Ok(days) => AppResponse::json(200, &json!({"feature": feature, "from": from, "to": to, "days": days})),
        Err(e) => store_error(&e),
    }
}

/// `POST /v1/usage/{id}/capture` and `POST /v1/usage/{id}/release` (Bearer): settle one of
/// the caller's holds. Capture makes it final; release gives back exactly what it took.
/// 200 `{"status": "captured" | "released", "usage_id", "replayed"}` (a retry answers the
/// same); 404 for a usage the caller does not have; 409 `not_held` for a charge that is
/// not a hold (or a captured hold asked to release), `released` to capture a released one,
/// `hold_expired` to capture one at or after its `hold_until` (the scheduled run gives it
/// back; a capture is in time or not at all).
/// A use made for an organization (`"organization_id"`) is its maker's to settle only while
/// it acts for the organization, as a new use asks (the core's `seats::may_settle`: a
/// member holding a seat): a member removed since, or whose seat was taken, gets 404 as for
/// any usage it does not have, and the organization's count is unchanged. A retry of a
/// settling already done is answered as it was to a member whose seat was taken since.
/// The store decides it in the settling's own transaction (`SettleAnswer::NotActing`), so a
/// removal or a seat taken after the usage was read is never passed.
pub async fn settle<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    req: &InRequest,
    claims: &Claims,
    release: bool,
    now: Timestamp,
) -> AppResponse {
    let pattern = if release { "/v1/usage/{id}/release" } else { "/v1/usage/{id}/capture" };
    let path = req.path.trim_end_matches('/');
    let Some(id) = crate::routes::path_id(pattern, path).filter(|id| crate::state::is_uuid(id)) else {
        return error(404, "not_found", "no such usage");
    };
    let subject = Subject::user(&claims.sub);
    let not_found = || error(404, "not_found", "no such usage");
    let used = match ctx.store.usage_owner(&subject, id).await {
        Ok(Some(used)) => used,
        Ok(None) => return not_found(),
        Err(e) => return store_error(&e),
    };
    match ctx.store.settle(&subject, id, release, now, Some(used)).await {
        Ok(SettleAnswer::Settled(s)) => {
            // A fold that fails now is done by the subject's next one: the settling stands.
            let _ = crate::webhook::settled(ctx, &subject, &s, now).await;
            AppResponse::json(200, &json!({"status": s.status, "usage_id": s.usage_id, "replayed": s.replayed}))
        }
        Ok(SettleAnswer::NotFound | SettleAnswer::NotActing(_)) => not_found(),
        // The store's refusal names itself by hint (not_held, released, hold_expired, lot_short).
        Err(crate::supabase::StoreError::Conflict { error: pg, .. }) => {
            error(409, pg.hint.as_deref().unwrap_or("conflict"), pg.message.unwrap_or_default())
        }
        Err(e) => store_error(&e),
    }
}

/// The alert checks a settled use applies (its release gave units back): a hold's pool's,
/// as a charge applies them, and a limit's, as a counted use does, decided on what
/// `caller` acts with for the use's owner now. Empty when the state cannot be read (the
/// next use or fold applies them again).
pub async fn settled_checks<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    caller: &Subject,
    used: &crate::store::SettledUse,
    now: Timestamp,
) -> Vec<tollgate::alerts::AlertCheck> {
    if let Some(pool) = &used.pool {
        return tollgate::alerts::pool_checks(&ctx.catalog(), pool);
    }
    let Some((feature, counter)) = &used.limit else { return Vec::new() };
    let organization = match &used.owner {
        Subject::Org(o) => Some(o.clone()),
        Subject::User(_) => None,
    };
    let scope = counter.strip_prefix(feature.as_str()).and_then(|s| s.strip_prefix(':')).map(str::to_string);
    let asked = Asked { feature: feature.clone(), quantity: 1, organization, scope };
    match gate(ctx, caller, &asked, now).await {
        Ok(g) => meter::limit_alert_checks(&g.catalog, &g.ents, feature, counter, now),
        Err(_) => Vec::new(),
    }
}

/// `POST /v1/export` (Bearer): how the caller may export now, by the core's export policy
/// (a catalog with the `export_full_res` and `watermark_exports` capabilities, as the VCM
/// Suite's): 200 `{"policy": "full"}` or `{"policy": "watermarked"}` (the caller must
/// watermark), or 403 `upgrade_required` "Upgrade to export." with the cheapest plan that
/// exports. 404 `no_export_policy` for a catalog without those capabilities.
pub async fn export<T: Transport, S: Store>(ctx: &Ctx<T, S>, claims: &Claims, now: Timestamp) -> AppResponse {
    let subject = Subject::user(&claims.sub);
    let st = match ctx.store.gate_state(&subject, None).await {
        Ok((s, _)) => s,
        Err(e) => return store_error(&e),
    };
    let ents = st.entitlements_for_snapshot(&ctx.catalog(), now);
    let (catalog, _) = ctx.catalog_for(&ents.grants, now).await;
    match tollgate::decide::export_policy(&catalog, &ents, now) {
        Ok(tollgate::decide::ExportPolicy::Refused { message, upgrade }) => {
            error_json(403, "upgrade_required", message, json!({"upgrade": upgrade}))
        }
        Ok(p) => AppResponse::json(200, &serde_json::to_value(&p).unwrap_or(Value::Null)),
        Err(_) => error(404, "no_export_policy", "the catalog has no export capabilities (export_full_res, watermark_exports)"),
    }
}
