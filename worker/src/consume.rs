//! `POST /v1/usage/quote` and `POST /v1/usage/consume`: server-side enforcement of
//! usage charging (seed 002's video seconds).
//!
//! Body: `{"model": "pro", "quality": "hd", "seconds": 30}`. Consume also needs an
//! `Idempotency-Key` header: the same key is never charged twice (the store claims it
//! with the usage record), and reusing it for a different request is a 409.
//!
//! The core prices the request and plans the charge (allowance, then purchased credits,
//! then overage within the user's cap) or returns a denial value; the store applies the
//! plan lot by lot with `remaining >= units` checks, so no balance goes negative under
//! any concurrency. A lot that moved since the plan was made sends us back to re-plan
//! from fresh balances (a few times, then 409).
//!
//! One store call per charge: the worker keeps, per subject, the state after its last
//! charge here ([`UsageStates`]) and plans from it; `tollgate_consume` checks the state's
//! `stamp` (the subject's grants, memberships, preferences and lots, all but the remaining
//! units) and, when it changed or a lot no longer holds enough, writes nothing and answers
//! with the fresh state, from which we plan again. A denial is never answered from a kept
//! state: it is checked against a fresh one first.
//!
//! Answers: 200 with the charge; 402 with `available` / `required` when the balance (and
//! allowed overage) does not cover it; 403 when the subject holds neither a plan nor
//! credits in the pool; 400 for a malformed request; 5xx when the store fails.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use tollgate::billing::facts::{Fact, UsageFact};
use tollgate::credits::{ChargeOutcome, OveragePolicy};
use tollgate::time::Timestamp;
use tollgate::usage::{plan_usage, UsageRequest};

use crate::app::{error, error_json, json_body, store_error, App};
use crate::auth::Claims;
use crate::http::{AppResponse, InRequest, Transport};
use crate::state::{Subject, SubjectState};
use crate::supabase::StoreError;

/// Re-plans after a concurrent change before giving up with 409.
pub const MAX_REPLANS: usize = 8;

/// How many subjects' states an isolate keeps; past it, all are dropped (they are only a
/// head start: a missing state costs one more store call).
pub const KEPT_STATES: usize = 1024;

/// Each subject's state after its last charge in this isolate, to plan the next charge
/// without loading it first. Concurrent charges of one subject each plan from their own
/// copy: a copy can only hold more remaining units than the store (charges only take), so
/// a plan from it either takes what a fresh plan would take or finds a lot short and is
/// planned again from the fresh state the store sends back; the last charge's copy stays.
#[derive(Default)]
pub struct UsageStates(RefCell<BTreeMap<String, SubjectState>>);

impl UsageStates {
    fn get(&self, subject: &Subject) -> Option<SubjectState> {
        self.0.borrow().get(&subject.key()).cloned()
    }

    /// Keeps `st` (without ledger entries: the next charge has its own key) when the store
    /// gave it a stamp to check plans against.
    fn keep(&self, mut st: SubjectState) {
        if st.stamp.is_none() {
            return;
        }
        st.wallet.ledger.clear();
        let mut map = self.0.borrow_mut();
        if map.len() >= KEPT_STATES {
            map.clear();
        }
        map.insert(st.subject.key(), st);
    }
}

fn request_hash(subject: &Subject, model: &str, quality: &str, seconds: u64) -> String {
    let canonical = json!({"subject": subject.key(), "model": model, "quality": quality, "seconds": seconds});
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

pub async fn handle<T: Transport>(
    app: &App<T>,
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
    let key = req.headers.get("idempotency-key").map(str::trim).unwrap_or("");
    if consume && key.is_empty() {
        return error(
            400,
            "missing_idempotency_key",
            "send an Idempotency-Key header (one per request, reused on retry)",
        );
    }
    if key.len() > 200 || key.chars().any(|c| c.is_control()) {
        return error(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be at most 200 printable characters",
        );
    }
    let subject = Subject::user(&claims.sub);
    let request_id = if key.is_empty() {
        "quote".to_string()
    } else {
        format!("{}:{key}", subject.key())
    };
    let usage_req = UsageRequest {
        request_id: request_id.clone(),
        model: model.clone(),
        quality: quality.clone(),
        seconds,
    };
    let quote = match tollgate::usage::quote(&app.catalog, &model, &quality, seconds) {
        Ok(q) => q,
        Err(e) => return error(400, e.code(), e.to_string()),
    };
    let hash = request_hash(&subject, &model, &quality, seconds);
    let ledger_key = format!("usage:{request_id}");

    // The state to plan from: the one kept from this subject's last charge (consume only),
    // else a fresh load. `fresh`: read from the store for this request.
    let kept = if consume { app.usage_states.get(&subject) } else { None };
    let (mut st, mut fresh) = match kept {
        Some(st) => (st, false),
        None => match SubjectState::load_for_usage(&app.store, &subject, &ledger_key).await {
            Ok(s) => (s, true),
            Err(e) => return store_error(&e),
        },
    };
    for _ in 0..MAX_REPLANS {
        let replay = consume && st.wallet.has_key(&ledger_key);
        // None: the subject may not draw on the pool at all (the rule is the core's).
        let outcome = if replay || entitled(app, &st, &quote.pool, now) {
            let policy = OveragePolicy {
                allowed: st.preferences.allow_overages,
                limit: st.preferences.overage_limit_minor,
                spent: 0,
            };
            match plan_usage(&app.catalog, &st.wallet, &usage_req, &policy, now) {
                Ok(o) => Some(o),
                Err(e) => return error(400, e.code(), e.to_string()),
            }
        } else {
            None
        };
        // A denial is never answered from a kept state: it is checked against a fresh one.
        if !fresh && !replay && !matches!(outcome, Some(ChargeOutcome::Charge(_))) {
            match SubjectState::load_for_usage(&app.store, &subject, &ledger_key).await {
                Ok(s) => (st, fresh) = (s, true),
                Err(e) => return store_error(&e),
            }
            continue;
        }
        let Some(outcome) = outcome else {
            app.usage_states.keep(st);
            return error_json(
                403,
                "not_entitled",
                "no plan or credits for usage: buy a plan or a token bundle",
                json!({"upgrade": cheapest_usage_offer(app, &quote.pool)}),
            );
        };
        let plan = match (&outcome, replay) {
            (ChargeOutcome::Charge(p), _) => Some(p.clone()),
            (ChargeOutcome::Deny(d), false) => {
                let answer = error_json(
                    402,
                    d.reason.as_str(),
                    d.to_string(),
                    json!({"available": d.available, "required": d.required, "pool": d.pool,
                           "cost": d.cost, "overage_units": d.overage_units, "overage_cost": d.overage_cost,
                           "overage_limit": d.overage_limit, "currency": d.currency}),
                );
                app.usage_states.keep(st);
                return answer;
            }
            (ChargeOutcome::Deny(_), true) => None,
        };
        if !consume {
            return AppResponse::json(200, &json!({"quote": quote, "charge": outcome}));
        }
        // The entries the core posts for this debit, and the lots it takes from.
        let mut after = st.wallet.clone();
        let (takes, entries) = match &plan {
            Some(p) => {
                let _ = after.debit(
                    &ledger_key,
                    &p.pool,
                    p.from_allowance + p.from_purchased,
                    now,
                    &ledger_key,
                );
                let diff = crate::state::wallet_diff(&st.wallet, &after);
                let takes: Vec<Value> = p
                    .takes
                    .iter()
                    .map(|t| json!({"lot": t.lot, "units": t.units}))
                    .collect();
                (takes, diff["entries"].clone())
            }
            None => (vec![], json!([])),
        };
        let args = json!({
            "p_request_id": request_id,
            "p_request_hash": hash,
            "p_subject": subject.to_json(),
            "p_takes": takes,
            "p_entries": entries,
            "p_usage": {
                "units": seconds, "model": model, "quality": quality, "pool": quote.pool,
                "cost_minor": plan.as_ref().map(|p| p.cost).unwrap_or(quote.cost.amount),
                "overage_minor": plan.as_ref().map(|p| p.overage_cost).unwrap_or(0),
                "currency": quote.cost.currency,
            },
            "p_stamp": st.stamp,
            // The usage as a billing fact, stored with the charge: every later fold of this
            // subject's facts (a purchase, a renewal, a refund) replays it, so a webhook
            // never hands consumed credits back.
            "p_fact": plan.as_ref().map(|p| crate::webhook::fact_row(&Fact::usage(
                UsageFact {
                    request_id: request_id.clone(),
                    subject: subject.to_core(),
                    pool: p.pool.clone(),
                    units: seconds,
                    model: Some(model.clone()),
                    quality: Some(quality.clone()),
                },
                now,
            ))),
        });
        match app.store.rpc("tollgate_consume", &args).await {
            Ok(v) => match v.get("status").and_then(Value::as_str) {
                Some("charged") | Some("replayed") => {
                    let replayed = v["status"] == "replayed";
                    if !replayed {
                        st.wallet = after;
                    }
                    app.usage_states.keep(st);
                    return AppResponse::json(
                        200,
                        &json!({
                            "status": v["status"],
                            "replayed": replayed,
                            "usage_id": v["usage_id"],
                            "charge": if replayed { Value::Null } else { serde_json::to_value(&plan).unwrap_or(Value::Null) },
                            "balances": v["balances"],
                        }),
                    );
                }
                // The state changed, or a lot moved, since the plan: re-plan from the fresh
                // state the store sent back.
                Some("stale") | Some("insufficient") => {
                    match SubjectState::from_store(&subject, v.get("state").cloned().unwrap_or(Value::Null)) {
                        Ok(s) => (st, fresh) = (s, true),
                        Err(e) => return store_error(&e),
                    }
                }
                _ => {
                    return error(
                        500,
                        "store_error",
                        format!("unexpected answer from tollgate_consume: {v}"),
                    )
                }
            },
            Err(StoreError::Conflict { error: e, .. }) if e.code.as_deref() == Some("PT409") => {
                return error(409, "idempotency_key_reused", e.message.unwrap_or_default());
            }
            Err(e) => return store_error(&e),
        }
    }
    error(
        409,
        "concurrent_change",
        "balances kept changing while charging; retry with the same Idempotency-Key",
    )
}

/// May this subject draw on the pool at all (the rule is the core's).
fn entitled<T>(app: &App<T>, st: &SubjectState, pool: &str, now: Timestamp) -> bool {
    let ents = st.entitlements_for_snapshot(&app.catalog, now);
    tollgate::usage::may_draw(&app.catalog, &ents, &st.wallet, pool, now)
}

/// The cheapest visible offer that puts credits into the pool (the core's choice).
fn cheapest_usage_offer<T>(app: &App<T>, pool: &str) -> Option<String> {
    tollgate::usage::cheapest_credit_offer(&app.catalog, pool).map(|o| o.key.clone())
}
