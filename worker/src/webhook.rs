//! `POST /webhooks/stripe` and `POST /webhooks/razorpay`, and the scheduled handler.
//!
//! 1. Verify the signature on the raw body with the core (`tollgate::verify`): 400 on
//!    any failure, with the core's error code.
//! 2. Parse with the core (`tollgate::billing`): 400 for a malformed event; an event
//!    the core ignores is acknowledged with 200.
//! 3. Load every stored fact related to the new ones (shared subjects, customers,
//!    subscriptions, payments), fold them all with the core's reducer, and write the
//!    result for each subject it touches, together with the event and its facts, in
//!    ONE store transaction (`tollgate_apply_facts`). The fold is idempotent and
//!    order-independent, so duplicates, replays and any delivery order end in the same
//!    rows. The store checks that the fold's cluster of facts (everything sharing a
//!    reference with the new facts) did not change since it was read; a concurrent apply
//!    on the same cluster makes it answer 409, and we fold again from fresh facts, a few
//!    times. Folds of unrelated clusters do not wait for each other.
//! 4. Answers: 200 `applied` / `duplicate`; 200 `kept` for an event that cannot be
//!    attributed yet (stored, and applied by the fold that brings its attribution);
//!    503/500 when the store fails, so the provider retries; nothing is half-written.

use serde_json::{json, Value};
use std::collections::BTreeSet;

use tollgate::billing::facts::Fact;
use tollgate::billing::parse::Parsed;
use tollgate::billing::effects::subject_rows;
use tollgate::billing::reducer::{reduce_with_usage, UsageTotals};
use tollgate::time::Timestamp;

use crate::app::{error, App};
use sha2::Digest;
use crate::http::{AppResponse, InRequest, Transport};
use crate::state::Subject;
use crate::supabase::StoreError;

/// Folds again after a concurrent apply before answering 503.
pub const MAX_FOLDS: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Stripe,
    Razorpay,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Razorpay => "razorpay",
        }
    }
}

/// What applying a set of facts came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written; `unknown`: users the database does not know yet (their part waits),
    /// `conflicts`: facts whose keys were stored before with other content.
    Applied { version: i64, subjects: Vec<String>, unknown: Vec<String>, conflicts: Vec<String> },
    Kept { waiting_for: Vec<String> },
    Duplicate,
}

pub async fn handle<T: Transport>(app: &App<T>, provider: Provider, req: &InRequest, now: Timestamp) -> AppResponse {
    // 1. Signature, on the raw bytes.
    match provider {
        Provider::Stripe => {
            let Some(v) = app.stripe_verifier() else {
                return error(500, "not_configured", "STRIPE_WEBHOOK_SECRETS is not set");
            };
            if let Err(e) = v.verify(&req.body, req.headers.get("stripe-signature"), now) {
                return error(400, e.code(), e.to_string());
            }
        }
        Provider::Razorpay => {
            let Some(v) = app.razorpay_verifier() else {
                return error(500, "not_configured", "RAZORPAY_WEBHOOK_SECRET is not set");
            };
            if let Err(e) = v.verify(&req.body, req.headers.get("x-razorpay-signature")) {
                return error(400, e.code(), e.to_string());
            }
        }
    }
    // 2. Parse. A correctly signed event the core cannot read is kept, never refused:
    // the provider would retry a 4xx for days and then drop a paid event.
    let raw = String::from_utf8_lossy(&req.body);
    let parsed = match parse(app, provider, &raw, req.headers.get("x-razorpay-event-id")) {
        Ok(p) => p,
        Err(reason) => return keep_unreadable(app, provider, req, &raw, &reason).await,
    };
    let info = parsed.event().clone();
    let facts = match parsed {
        Parsed::Ignored { reason, .. } => {
            return AppResponse::json(200, &json!({"status": "ignored", "event": info.id, "reason": reason}));
        }
        Parsed::Facts { facts, .. } => facts,
    };
    let payload: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let object_id = payload
        .pointer("/data/object/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let event = json!({
        "provider": provider.as_str(),
        "event_id": info.id,
        "event_type": info.event_type,
        "object_id": object_id,
        "payload": payload,
    });
    // 3. Fold and persist.
    match apply_facts(app, Some(event), facts, now).await {
        Ok(Outcome::Applied { version, subjects, .. }) => AppResponse::json(
            200,
            &json!({"status": "applied", "event": info.id, "version": version, "subjects": subjects}),
        ),
        Ok(Outcome::Kept { waiting_for }) => AppResponse::json(
            200,
            &json!({"status": "kept", "event": info.id, "waiting_for": waiting_for,
                    "message": "stored; it applies as soon as what it waits for arrives"}),
        ),
        Ok(Outcome::Duplicate) => AppResponse::json(200, &json!({"status": "duplicate", "event": info.id})),
        Err(e) => public_store_error(&e),
    }
}

/// A store failure answered to a sender that is not signed in (a provider): 5xx so it
/// retries, and nothing about the store's insides (tables, constraints, values).
pub fn public_store_error(e: &StoreError) -> AppResponse {
    let status = if matches!(e, StoreError::Unavailable(_)) { 503 } else { 500 };
    error(status, "not_applied", "the event was not applied; send it again later")
        .with_header("retry-after", "5")
}

/// Keeps a correctly signed delivery the core could not read: 200 `kept`, stored with
/// the reason, listed with the kept events.
async fn keep_unreadable<T: Transport>(
    app: &App<T>,
    provider: Provider,
    req: &InRequest,
    raw: &str,
    reason: &str,
) -> AppResponse {
    let payload: Value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let event_id = match provider {
        Provider::Stripe => payload.get("id").and_then(Value::as_str).map(str::to_string),
        Provider::Razorpay => req.headers.get("x-razorpay-event-id").map(str::to_string),
    }
    .filter(|s| !s.is_empty() && s.len() <= 255)
    .unwrap_or_else(|| format!("body:{}", hex::encode(&sha2::Sha256::digest(raw.as_bytes())[..16])));
    let event = json!({
        "provider": provider.as_str(),
        "event_id": event_id,
        "event_type": payload.get("type").or_else(|| payload.get("event")).and_then(Value::as_str).unwrap_or(""),
        "payload": payload,
    });
    match app.store.rpc("tollgate_keep_delivery", &json!({"p_event": event, "p_reason": reason})).await {
        Ok(v) if v["status"] == "duplicate" => {
            AppResponse::json(200, &json!({"status": "duplicate", "event": event_id}))
        }
        Ok(_) => AppResponse::json(
            200,
            &json!({"status": "kept", "event": event_id, "reason": reason,
                    "message": "stored unread; it is listed with the kept events for an operator"}),
        ),
        Err(e) => public_store_error(&e),
    }
}

/// The core's reading of an event, or why it cannot be read (code and message).
fn parse<T>(app: &App<T>, provider: Provider, raw: &str, event_id: Option<&str>) -> Result<Parsed, String> {
    let r = match provider {
        Provider::Stripe => tollgate::billing::stripe::parse_stripe_event(&app.catalog, raw),
        Provider::Razorpay => tollgate::billing::razorpay::parse_razorpay_event(&app.catalog, raw, event_id),
    };
    r.map_err(|e| format!("{}: {} (at {})", e.code(), e, e.path()))
}

/// The stored form of a fact (`billing_facts`).
pub(crate) fn fact_row(f: &Fact) -> Value {
    json!({
        "key": f.key,
        "provider": f.provider.as_str(),
        "event": f.event,
        "type": f.body.type_name(),
        "refs": f.refs(),
        "at": f.at,
        "fact": f,
    })
}

/// Stores `facts` (with the delivery `event`, if any) and writes the fold of every fact
/// related to them, in one transaction; folds again on a concurrent change.
///
/// The fold reads the cluster's facts other than charges, and the charges as per-lot
/// totals (`tollgate_fold_input`), so its cost does not grow with the number of
/// charges; the core projects the fold onto rows ([`subject_rows`]) and the store
/// writes them whole (`tollgate_apply_fold`).
pub async fn apply_facts<T: Transport>(
    app: &App<T>,
    event: Option<Value>,
    facts: Vec<Fact>,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    apply_with_refs(app, event, facts, BTreeSet::new(), now).await
}

/// [`apply_facts`], folding also every fact related to `refs`.
pub async fn apply_with_refs<T: Transport>(
    app: &App<T>,
    event: Option<Value>,
    facts: Vec<Fact>,
    mut refs: BTreeSet<String>,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    for f in &facts {
        refs.extend(f.refs());
    }
    let new_keys: BTreeSet<&str> = facts.iter().map(|f| f.key.as_str()).collect();
    let mut last = None;
    for _ in 0..MAX_FOLDS {
        let input = app.store.rpc("tollgate_fold_input", &json!({"p_refs": refs.iter().collect::<Vec<_>>()})).await?;
        let version = input.get("version").and_then(Value::as_i64).unwrap_or(0);
        let mut all: Vec<Fact> = serde_json::from_value(input.get("facts").cloned().unwrap_or(json!([])))
            .map_err(|e| StoreError::Decode(format!("stored facts: {e}")))?;
        let usage: UsageTotals = serde_json::from_value(input.get("usage").cloned().unwrap_or(json!({})))
            .map_err(|e| StoreError::Decode(format!("usage totals: {e}")))?;
        // A fold of part of a cluster would write a wrong state: refuse, and let the
        // provider keep the event.
        if usize::try_from(version).unwrap_or(usize::MAX) > all.len() {
            return Err(StoreError::Decode(format!(
                "{version} stored facts are related to this event and only {} were read: the cluster is larger than a fold reads",
                all.len()
            )));
        }
        let cluster: BTreeSet<String> = serde_json::from_value(input.get("refs").cloned().unwrap_or(json!([])))
            .map_err(|e| StoreError::Decode(format!("cluster refs: {e}")))?;
        all.extend(facts.iter().cloned());
        let state = reduce_with_usage(&app.catalog, &all, &usage, now);
        // Every subject the fold writes must have had its charges' totals read.
        let unread: Vec<String> = state.subjects.keys().filter(|k| !cluster.contains(*k)).cloned().collect();
        if !unread.is_empty() && !unread.iter().all(|k| refs.contains(k)) {
            refs.extend(unread);
            continue;
        }
        let mut rows = Vec::new();
        let mut touched = Vec::new();
        let mut skipped = Vec::new();
        for r in subject_rows(&state, &usage) {
            let s = Subject::from_core(&r.subject);
            if !s.is_valid() {
                skipped.push(r.key.clone());
                continue;
            }
            let mut v = serde_json::to_value(&r).map_err(|e| StoreError::Decode(e.to_string()))?;
            v["subject"] = s.to_json();
            if let Some(seats) = v.get_mut("seats").and_then(Value::as_array_mut) {
                seats.retain(|u| u.as_str().is_some_and(crate::state::is_uuid));
            }
            touched.push(r.key.clone());
            rows.push(v);
        }
        // Is any new fact still waiting for attribution?
        let waiting: Vec<&tollgate::billing::state::PendingFact> =
            state.pending.iter().filter(|p| new_keys.contains(p.key.as_str())).collect();
        let mut waiting_for: Vec<String> = waiting.iter().flat_map(|p| p.waiting_for.clone()).collect();
        waiting_for.extend(skipped.iter().map(|s| format!("{s} (not a UUID)")));
        waiting_for.sort();
        waiting_for.dedup();
        let pending = json!({
            "keep": !waiting.is_empty() || (!skipped.is_empty() && touched.is_empty()),
            "waiting_for": waiting_for,
            "reason": waiting.iter().map(|p| p.reason.clone()).collect::<Vec<_>>().join("; "),
        });
        // Kept deliveries whose facts the fold now applied.
        let pending_keys: BTreeSet<&str> = state.pending.iter().map(|p| p.key.as_str()).collect();
        let resolved: Vec<Value> = all
            .iter()
            .filter(|f| !f.event.is_empty() && !pending_keys.contains(f.key.as_str()))
            .map(|f| (f.provider.as_str().to_string(), f.event.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(p, e)| json!({"provider": p, "event_id": e}))
            .collect();
        let args = json!({
            "p_event": event,
            "p_facts": facts.iter().map(fact_row).collect::<Vec<_>>(),
            "p_expected_version": version,
            "p_refs": cluster,
            "p_subjects": rows,
            "p_pending": pending,
            "p_resolved": resolved,
        });
        match app.store.rpc("tollgate_apply_fold", &args).await {
            Ok(v) => {
                let list = |k: &str| -> Vec<String> {
                    v.get(k)
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                        .unwrap_or_default()
                };
                let unknown = list("unknown");
                return Ok(match v.get("status").and_then(Value::as_str) {
                    Some("duplicate") => Outcome::Duplicate,
                    Some("kept") => {
                        waiting_for.extend(unknown);
                        waiting_for.sort();
                        waiting_for.dedup();
                        Outcome::Kept { waiting_for }
                    }
                    _ => Outcome::Applied {
                        version: v.get("version").and_then(Value::as_i64).unwrap_or(0),
                        subjects: touched.into_iter().filter(|t| !unknown.contains(t)).collect(),
                        unknown,
                        conflicts: list("conflicts"),
                    },
                });
            }
            Err(e) if e.is_version_conflict() => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(format!(
        "the billing state kept changing while applying ({})",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// The scheduled handler: re-applies kept events (their attribution, or their user, may
/// have arrived since), and refolds the subjects of every open lot and hand-given grant
/// past its end, so expiry is written down (lots closed, their remainder posted as
/// `expire:` entries; grants closed). The fold closes what it refolds, so these rows
/// leave the scan; it pages through all of them (keyset pages), so rows that cannot be
/// folded yet never hide later ones.
pub async fn scheduled<T: Transport>(app: &App<T>, now: Timestamp) -> Result<Value, StoreError> {
    let pending = app.store.rpc("tollgate_pending_events", &json!({"p_limit": 100})).await?;
    let mut retried = 0;
    let mut applied = 0;
    for p in pending.as_array().cloned().unwrap_or_default() {
        let provider = match p.get("provider").and_then(Value::as_str) {
            Some("razorpay") => Provider::Razorpay,
            _ => Provider::Stripe,
        };
        let event_id = p.get("event_id").and_then(Value::as_str).unwrap_or("").to_string();
        let raw = p.get("payload").map(|v| v.to_string()).unwrap_or_default();
        retried += 1;
        let attempt = |e: String| {
            json!({"p_provider": provider.as_str(), "p_event_id": event_id, "p_error": e})
        };
        let facts = match parse(app, provider, &raw, Some(&event_id)) {
            Ok(parsed) => parsed.into_facts(),
            Err(_) => {
                app.store.rpc("tollgate_pending_attempt", &attempt("the event cannot be read".into())).await?;
                continue;
            }
        };
        match apply_facts(app, None, facts, now).await {
            Ok(Outcome::Applied { unknown, .. }) if unknown.is_empty() => {
                // Resolved by the apply when its facts are no longer pending.
                let still: Value = app
                    .store
                    .rpc("tollgate_pending_events", &json!({"p_provider": provider.as_str(), "p_limit": 1000}))
                    .await?;
                if !still.as_array().is_some_and(|a| a.iter().any(|x| x["event_id"] == event_id.as_str())) {
                    applied += 1;
                } else {
                    app.store.rpc("tollgate_pending_attempt", &attempt("still unattributed".into())).await?;
                }
            }
            Ok(Outcome::Applied { unknown, .. }) => {
                let e = format!("waiting for {}", unknown.join(", "));
                app.store.rpc("tollgate_pending_attempt", &attempt(e)).await?;
            }
            Ok(_) => {
                app.store.rpc("tollgate_pending_attempt", &attempt("still unattributed".into())).await?;
            }
            Err(e) => {
                app.store.rpc("tollgate_pending_attempt", &attempt(e.to_string())).await?;
            }
        }
    }
    // Expiry: every open lot and hand-given grant past its end, page by page.
    let mut after_at = Value::Null;
    let mut after_id = String::new();
    let mut refolded = 0;
    let mut lapsed_rows = 0;
    let mut failed = 0;
    let mut done: BTreeSet<String> = BTreeSet::new();
    for _ in 0..EXPIRY_PAGES {
        let page = app
            .store
            .rpc(
                "tollgate_lapsed",
                &json!({"p_now": now, "p_after_at": after_at, "p_after_id": after_id, "p_limit": EXPIRY_PAGE}),
            )
            .await?;
        let rows = page.as_array().cloned().unwrap_or_default();
        for g in &rows {
            let key = match (g.get("user_id").and_then(Value::as_str), g.get("organization_id").and_then(Value::as_str)) {
                (Some(u), _) => format!("user:{u}"),
                (None, Some(o)) => format!("org:{o}"),
                _ => continue,
            };
            // One subject that cannot be folded now (the store failing for it) does not
            // stop the others; it is found again on the next run.
            if done.insert(key.clone()) {
                match refold(app, &key, now).await {
                    Ok(_) => refolded += 1,
                    Err(_) => failed += 1,
                }
            }
        }
        lapsed_rows += rows.len();
        let Some(last) = rows.last() else { break };
        after_at = last.get("at").cloned().unwrap_or(Value::Null);
        after_id = last.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        if rows.len() < EXPIRY_PAGE {
            break;
        }
    }
    Ok(json!({"pending_retried": retried, "pending_applied": applied, "lapsed": lapsed_rows,
              "expired_subjects": refolded, "failed_subjects": failed}))
}

/// The expiry scan's page size, and how many pages one run reads.
const EXPIRY_PAGE: usize = 500;
const EXPIRY_PAGES: usize = 20;

/// Folds every fact related to one subject again, as of `now`, and writes the result.
pub async fn refold<T: Transport>(app: &App<T>, subject_key: &str, now: Timestamp) -> Result<Outcome, StoreError> {
    apply_with_refs(app, None, Vec::new(), BTreeSet::from([subject_key.to_string()]), now).await
}
