//! `POST /v1/usage/quote` and `POST /v1/usage/consume`: server-side enforcement of
//! usage charging (the Video Studio app's video seconds).
//!
//! Body: `{"model": "pro", "quality": "hd", "seconds": 30}`. Consume also needs an
//! `Idempotency-Key` header: the same key is never charged twice, and reusing it for a
//! different request is a 409. The key becomes the charge's request id through the core
//! (`tollgate::charge::request_id`, a digest), so no key can name another charge's rows.
//!
//! The core decides the charge whole (`tollgate::charge::charge`: entitlement, price,
//! lots in spending order, overage within the user's cap, the ledger entries and the
//! usage fact with what it takes) or returns a refusal value; the worker calls it once
//! per attempt and hands its rows to the store (`tollgate_charge`), which takes each lot
//! with a `remaining >= units` check, so no balance goes negative under any concurrency,
//! and decides replays by the request id alone.
//!
//! One store call per charge: the worker keeps, per subject, the state after its last
//! charge here ([`crate::kept::UsageStates`]) and decides from it; the store checks the state's
//! `stamp` (the subject's grants, memberships, preferences and lots, all but the units
//! charges move) and, when it changed or a lot no longer holds enough, writes nothing and
//! answers with the fresh state, from which the core decides again. A refusal is never
//! answered from a kept state, nor for a request id that was charged already.
//!
//! Answers: 200 with the charge; 402 with `available` / `required` when the balance (and
//! allowed overage) does not cover it (code `paused` when a paused subscription's credits,
//! which are kept but not spent while it is, are what it lacks); 403 when the subject holds neither a plan nor
//! credits in the pool; 400 for a malformed request; 5xx when the store fails.

use serde_json::{json, Value};

use tollgate::charge::{Charge, ChargeDecision, ChargeInput, ChargeRequest, Refusal};
use tollgate::credits::{ChargeOutcome, OveragePolicy};
use tollgate::time::Timestamp;

use crate::ctx::Ctx;
use crate::respond::{error, error_json, idempotency_key, json_body, store_error};
use crate::store::{ChargeAnswer, Charged, Store};
use crate::auth::Claims;
use crate::http::{AppResponse, InRequest, Transport};
use crate::state::Subject;
use crate::supabase::{Conflict, StoreError};

/// Re-plans after a concurrent change before giving up with 409.
pub const MAX_REPLANS: usize = 8;

pub async fn handle<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    req: &InRequest,
    claims: &Claims,
    now: Timestamp,
    consume: bool,
) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let model = body.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let quality = body.get("quality").and_then(Value::as_str).unwrap_or("").to_string();
    let Some(seconds) = body.get("seconds").and_then(Value::as_u64) else {
        return error(400, "invalid_request", "`seconds` must be a positive integer");
    };
    let key = match idempotency_key(req, consume) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let subject = Subject::user(&claims.sub);
    let core_subject = subject.to_core();
    let request = ChargeRequest { subject: &core_subject, idempotency_key: key, model: &model, quality: &quality, seconds };
    let hash = tollgate::charge::request_hash(&core_subject, &model, &quality, seconds);
    let decide = |input: ChargeInput<'_>| tollgate::charge::charge(&app.catalog(), input, &request, now);
    run(app, &subject, key, &hash, consume, now, &decide).await
}

/// Decides a charge with `decide` (the core, once per attempt) from the subject's state
/// and, when `consume`, persists it: the loop every charge of credits goes through
/// (`/v1/usage/consume`, and `/v1/track` on a credit pool). `hash` is the request's digest
/// (a retry under the same key with another body is a 409).
pub async fn run<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    subject: &Subject,
    key: &str,
    hash: &str,
    consume: bool,
    now: Timestamp,
    // One copy of this loop for every kind of charge (a closure's own type would make one
    // per caller in the worker's code).
    decide: &dyn Fn(ChargeInput<'_>) -> Result<ChargeDecision, tollgate::usage::UsageError>,
) -> AppResponse {
    let request_id = tollgate::charge::request_id(&subject.to_core(), key);
    let ledger_key = format!("usage:{request_id}");

    // The state to decide from: the one kept from this subject's last charge (consume
    // only), else a fresh load. `fresh`: read from the store for this request.
    // A fresh state holds the catalog's free credits from the subject's first request.
    let load = async || {
        let st = app.store.subject_state(subject, Some(&ledger_key)).await.map_err(|e| store_error(&e))?;
        crate::webhook::joined(app, subject, st, now).await.map_err(|e| store_error(&e))
    };
    let kept = if consume { app.usage_states.get(subject) } else { None };
    let (mut st, mut fresh) = match kept {
        Some(st) => (st, false),
        None => match load().await {
            Ok(s) => (s, true),
            Err(r) => return r,
        },
    };
    // What the subject's overage already spent in its billing period (read once, and
    // again when a concurrent charge spent it first).
    let counter = app.catalog().doc.usage.as_ref().map(|u| tollgate::meter::overage_counter(&u.currency));
    let mut spent: Option<(Timestamp, i64)> = None;
    for _ in 0..MAX_REPLANS {
        let ents = st.entitlements_for_snapshot(&app.catalog(), now);
        let period = tollgate::meter::overage_period(&st.periods, now).start;
        let spent_now = match (&counter, st.preferences.allow_overages, spent) {
            (_, false, _) | (None, _, _) => 0,
            (_, true, Some((p, n))) if p == period => n,
            (Some(c), true, _) => match app.store.counter(subject, c, period).await {
                Ok(n) => {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    spent = Some((period, n));
                    n
                }
                Err(e) => return store_error(&e),
            },
        };
        let policy = OveragePolicy {
            allowed: st.preferences.allow_overages,
            limit: st.preferences.overage_limit_minor,
            spent: spent_now,
        };
        let input = ChargeInput { entitlements: &ents, wallet: &st.wallet, overage: &policy };
        let decision = match decide(input) {
            Ok(d) => d,
            // A request the catalog no longer takes (a rate dropped, the seconds narrowed)
            // that was charged before is answered as that charge: a retry is never refused.
            Err(e) => {
                if let Some(answer) = replay(app, subject, &request_id, hash, consume).await {
                    return answer;
                }
                return error(400, e.code(), e.to_string());
            }
        };
        let charge = match decision {
            // A refusal is never answered from a kept state, nor for a request that was
            // charged already (a retry after the balance is spent).
            ChargeDecision::Refuse(_) if !fresh => {
                match load().await {
                    Ok(s) => (st, fresh) = (s, true),
                    Err(r) => return r,
                }
                continue;
            }
            ChargeDecision::Refuse(refusal) => {
                if let Some(answer) = replay(app, subject, &request_id, hash, consume).await {
                    return answer;
                }
                let answer = refusal_answer(&refusal);
                app.usage_states.keep(st);
                return answer;
            }
            ChargeDecision::Charge(c) => c,
        };
        if !consume {
            return AppResponse::json(
                200,
                &json!({"quote": charge.quote, "charge": ChargeOutcome::Charge(charge.plan.clone())}),
            );
        }
        match app.store.charge(subject, &charge, st.stamp.as_deref(), period).await {
            Ok(ChargeAnswer::Charged(c)) => {
                // The state less this charge, with what the lots it took from hold now.
                charge.apply_to(&mut st.wallet);
                for l in st.wallet.lots.iter_mut() {
                    if let Some(&left) = c.left.get(&l.key) {
                        l.remaining = left;
                    }
                }
                let balances = json!(st.balances(now));
                app.usage_states.keep(st);
                // The pool's `units_left` thresholds, compared by the store with its balance now.
                let checks = tollgate::alerts::pool_checks(&app.catalog(), &charge.record.pool);
                crate::outbox::record(app, subject, &checks, now).await;
                return charged_answer("charged", &Charged { balances, ..c }, Some(&charge));
            }
            Ok(ChargeAnswer::Replayed(c)) => {
                app.usage_states.keep(st);
                return charged_answer("replayed", &c, None);
            }
            // The state changed, or a lot moved, since the decision: decide again from the
            // fresh state the store sent back.
            Ok(ChargeAnswer::Stale(fresh_state)) => {
                (st, fresh) = (*fresh_state, true);
            }
            // A concurrent charge spent the period's overage first: nothing was written;
            // decide again with what is spent now.
            Err(e) if e.conflict() == Some(Conflict::OverageCap) => spent = None,
            // A concurrent charge emptied a lot after this one checked it: nothing was
            // written; decide again from fresh lots.
            Err(e) if e.conflict() == Some(Conflict::LotShort) => match load().await {
                Ok(s) => (st, fresh) = (s, true),
                Err(r) => return r,
            },
            Err(e) => return charge_store_error(&e),
        }
    }
    error(
        409,
        "concurrent_change",
        "balances kept changing while charging; retry with the same Idempotency-Key",
    )
}

/// The answer to a request charged before under `request_id` (a retry), when there is one
/// (only a consume charges), or the store's failure; `None`: nothing was charged.
async fn replay<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    subject: &Subject,
    request_id: &str,
    hash: &str,
    consume: bool,
) -> Option<AppResponse> {
    if !consume {
        return None;
    }
    match app.store.charge_replay(subject, request_id, hash).await {
        Ok(None) => None,
        Ok(Some(c)) => Some(charged_answer("replayed", &c, None)),
        Err(e) => Some(charge_store_error(&e)),
    }
}

/// 200 for a charge made now (`charge`: what the core decided) or earlier (a replay).
fn charged_answer(status: &str, v: &Charged, charge: Option<&Charge>) -> AppResponse {
    AppResponse::json(
        200,
        &json!({
            "status": status,
            "replayed": status == "replayed",
            "usage_id": v.usage_id,
            "charge": charge.map(|c| serde_json::to_value(ChargeOutcome::Charge(c.plan.clone())).unwrap_or(Value::Null)),
            "record": v.record,
            "balances": v.balances,
        }),
    )
}

/// 403 not entitled, or 402 short (with what is available and required), each with the
/// offer the core names for the refusal (`upgrade`, an offer key).
fn refusal_answer(r: &Refusal) -> AppResponse {
    match r {
        Refusal::NotEntitled { pool, upgrade } => error_json(
            403,
            "not_entitled",
            "no plan or credits for usage: buy a plan or a token bundle",
            json!({"pool": pool, "upgrade": upgrade}),
        ),
        Refusal::Short { denial: d, upgrade } => error_json(
            402,
            d.reason.as_str(),
            d.to_string(),
            json!({"available": d.available, "required": d.required, "pool": d.pool,
                   "cost": d.cost, "overage_units": d.overage_units, "overage_cost": d.overage_cost,
                   "overage_limit": d.overage_limit, "currency": d.currency, "upgrade": upgrade}),
        ),
    }
}

/// A store error of a charge: a reused key is the caller's 409; anything else is 5xx.
fn charge_store_error(e: &StoreError) -> AppResponse {
    match e.conflict() {
        Some(Conflict::KeyReused) => {
            error(409, "idempotency_key_reused", "this Idempotency-Key was already used for a different request")
        }
        _ => store_error(e),
    }
}
