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
use std::collections::{BTreeMap, BTreeSet};

use tollgate::billing::facts::Fact;
use tollgate::billing::parse::Parsed;
use tollgate::billing::reducer::reduce;
use tollgate::billing::state::BillingState;
use tollgate::time::Timestamp;

use crate::app::{error, store_error, App};
use crate::http::{AppResponse, InRequest, Transport};
use crate::state::{grant_row, wallet_diff, Subject, SubjectState};
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
    Applied { version: i64, subjects: Vec<String> },
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
    let Ok(raw) = std::str::from_utf8(&req.body) else {
        return error(400, "malformed_event", "the body is not UTF-8");
    };
    // 2. Parse.
    let parsed = match parse(app, provider, raw, req.headers.get("x-razorpay-event-id")) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let info = parsed.event().clone();
    let facts = match parsed {
        Parsed::Ignored { reason, .. } => {
            return AppResponse::json(200, &json!({"status": "ignored", "event": info.id, "reason": reason}));
        }
        Parsed::Facts { facts, .. } => facts,
    };
    let payload: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
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
        Ok(Outcome::Applied { version, subjects }) => AppResponse::json(
            200,
            &json!({"status": "applied", "event": info.id, "version": version, "subjects": subjects}),
        ),
        Ok(Outcome::Kept { waiting_for }) => AppResponse::json(
            200,
            &json!({"status": "kept", "event": info.id, "waiting_for": waiting_for,
                    "message": "stored; it applies as soon as the customer or subscription is attributed"}),
        ),
        Ok(Outcome::Duplicate) => AppResponse::json(200, &json!({"status": "duplicate", "event": info.id})),
        Err(e) => store_error(&e),
    }
}

fn parse<T>(app: &App<T>, provider: Provider, raw: &str, event_id: Option<&str>) -> Result<Parsed, AppResponse> {
    let r = match provider {
        Provider::Stripe => tollgate::billing::stripe::parse_stripe_event(&app.catalog, raw),
        Provider::Razorpay => tollgate::billing::razorpay::parse_razorpay_event(&app.catalog, raw, event_id),
    };
    r.map_err(|e| crate::app::error_json(400, e.code(), e.to_string(), json!({"path": e.path()})))
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
pub async fn apply_facts<T: Transport>(
    app: &App<T>,
    event: Option<Value>,
    facts: Vec<Fact>,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let mut refs: BTreeSet<String> = BTreeSet::new();
    for f in &facts {
        refs.extend(f.refs());
    }
    let new_keys: BTreeSet<&str> = facts.iter().map(|f| f.key.as_str()).collect();
    let mut last = None;
    for _ in 0..MAX_FOLDS {
        let related = app
            .store
            .rpc(
                "tollgate_related_facts",
                &json!({"p_refs": refs.iter().collect::<Vec<_>>()}),
            )
            .await?;
        let version = related.get("version").and_then(Value::as_i64).unwrap_or(0);
        let mut all: Vec<Fact> = serde_json::from_value(related.get("facts").cloned().unwrap_or(json!([])))
            .map_err(|e| StoreError::Decode(format!("stored facts: {e}")))?;
        // A fold of part of a cluster would write a wrong state (usage it did not see would
        // be handed back): refuse, and let the provider keep the event.
        if usize::try_from(version).unwrap_or(usize::MAX) > all.len() {
            return Err(StoreError::Decode(format!(
                "{version} stored facts are related to this event and only {} were read: the cluster is larger than a fold reads",
                all.len()
            )));
        }
        all.extend(facts.iter().cloned());
        let state = reduce(&app.catalog, &all, now);

        let mut subjects = Vec::new();
        let mut touched = Vec::new();
        let mut skipped = Vec::new();
        for key in state.subjects.keys() {
            let Some(subject) = store_subject(&state, key) else {
                skipped.push(key.clone());
                continue;
            };
            let stored = SubjectState::load(&app.store, &subject).await?;
            subjects.push(subject_effects(&state, key, &subject, &stored));
            touched.push(key.clone());
        }
        for org in state.seats.keys() {
            if !state.subjects.contains_key(org) {
                if let Some(subject) = store_subject(&state, org) {
                    let stored = SubjectState::load(&app.store, &subject).await?;
                    subjects.push(subject_effects(&state, org, &subject, &stored));
                    touched.push(org.clone());
                }
            }
        }
        // Is any new fact still waiting for attribution?
        let waiting: Vec<&tollgate::billing::state::PendingFact> = state
            .pending
            .iter()
            .filter(|p| new_keys.contains(p.key.as_str()))
            .collect();
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
            "p_refs": related.get("refs").cloned().unwrap_or_else(|| json!([])),
            "p_subjects": subjects,
            "p_pending": pending,
            "p_resolved": resolved,
        });
        match app.store.rpc("tollgate_apply_facts", &args).await {
            Ok(v) => {
                return Ok(match v.get("status").and_then(Value::as_str) {
                    Some("duplicate") => Outcome::Duplicate,
                    Some("kept") => Outcome::Kept { waiting_for },
                    _ => Outcome::Applied {
                        version: v.get("version").and_then(Value::as_i64).unwrap_or(0),
                        subjects: touched,
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

/// The store subject of a fold subject key (`user:<uuid>` / `org:<uuid>`); None when
/// the id cannot be a store id.
fn store_subject(state: &BillingState, key: &str) -> Option<Subject> {
    let core = state
        .subjects
        .get(key)
        .map(|s| s.subject.clone())
        .or_else(|| tollgate::billing::facts::Subject::parse(key).ok())?;
    let s = Subject::from_core(&core);
    s.is_valid().then_some(s)
}

/// What to write for one subject: its grants, the change of its credit lots, its
/// subscriptions and customers, its seats (organizations), and the fold's own view.
fn subject_effects(state: &BillingState, key: &str, subject: &Subject, stored: &SubjectState) -> Value {
    let core = state.subjects.get(key);
    let grants: Vec<Value> = core
        .map(|s| s.grants.iter().map(grant_row).collect())
        .unwrap_or_default();
    let wallet = match core {
        Some(s) => wallet_diff(&stored.wallet, &s.wallet),
        None => json!({}),
    };
    let subscriptions: Vec<Value> = state
        .subscriptions
        .values()
        .filter(|s| s.subject.as_ref().map(|x| x.to_string()).as_deref() == Some(key))
        .map(|s| {
            let (provider, id) = split_provider(&s.id);
            json!({
                "provider": provider,
                "subscription_id": id,
                "customer_id": s.customer.as_deref().map(|c| split_provider(c).1),
                "offer_key": s.items.iter().find_map(|i| i.offer.clone()),
                "status": s.status,
                "quantity": s.items.iter().map(|i| i.quantity).sum::<u32>().max(if s.items.is_empty() { 0 } else { 1 }),
                "current_period_start": s.period_start,
                "current_period_end": s.period_end,
                "cancel_at_period_end": s.cancel_at_period_end,
                "canceled_at": s.cancel_at,
                "ended_at": s.ended_at,
                "object_version": s.version.map(|t| t.unix()).unwrap_or(0),
            })
        })
        .collect();
    let customers: Vec<Value> = state
        .customers
        .iter()
        .filter(|(_, s)| s.to_string() == key)
        .map(|(c, _)| {
            let (provider, id) = split_provider(c);
            json!({"provider": provider, "customer_id": id})
        })
        .collect();
    let mut fold_view = core
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if let Some(o) = fold_view.as_object_mut() {
        o.remove("wallet");
    }
    let mut out = json!({
        "subject": subject.to_json(),
        "state": fold_view,
        "grants": grants,
        "wallet": wallet,
        "subscriptions": subscriptions,
        "customers": customers,
    });
    if let (Subject::Org(_), Some(book)) = (subject, state.seats.get(key)) {
        out["seat_count"] = json!(book.seats);
        let holders: Vec<String> = book
            .holders
            .iter()
            .filter(|h| !h.over_capacity)
            .filter_map(|h| Some(Subject::from_core(&h.user)).filter(Subject::is_valid))
            .filter_map(|s| match s {
                Subject::User(id) => Some(id),
                Subject::Org(_) => None,
            })
            .collect();
        out["seats"] = json!(holders);
    }
    out
}

fn split_provider(s: &str) -> (&str, &str) {
    match s.split_once(':') {
        Some((p, id)) if p == "stripe" || p == "razorpay" => (p, id),
        _ => ("stripe", s),
    }
}

/// The scheduled handler: re-applies kept events (their attribution may have arrived
/// by a path the delivery did not see), and refolds subjects whose grants or credit
/// lots have passed their end, so expiry is written down (lots closed, their remainder
/// posted as `expire:` entries).
pub async fn scheduled<T: Transport>(app: &App<T>, now: Timestamp) -> Result<Value, StoreError> {
    let pending = app
        .store
        .rpc("tollgate_pending_events", &json!({"p_limit": 100}))
        .await?;
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
        let facts = match parse(app, provider, &raw, Some(&event_id)) {
            Ok(parsed) => parsed.into_facts(),
            Err(_) => continue,
        };
        match apply_facts(app, None, facts, now).await {
            Ok(_) => {
                // Resolved by the apply when its facts are no longer pending.
                let still: Value = app
                    .store
                    .rpc(
                        "tollgate_pending_events",
                        &json!({"p_provider": provider.as_str(), "p_limit": 1000}),
                    )
                    .await?;
                if !still
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["event_id"] == event_id.as_str()))
                {
                    applied += 1;
                } else {
                    app.store
                        .rpc(
                            "tollgate_pending_attempt",
                            &json!({"p_provider": provider.as_str(), "p_event_id": event_id, "p_error": "still unattributed"}),
                        )
                        .await?;
                }
            }
            Err(e) => {
                app.store
                    .rpc(
                        "tollgate_pending_attempt",
                        &json!({"p_provider": provider.as_str(), "p_event_id": event_id, "p_error": e.to_string()}),
                    )
                    .await?;
            }
        }
    }
    // Expiry: refold every subject with a grant past its end that still reads as live.
    let expired = app.store.rpc("tollgate_expired_grants", &json!({"p_now": now})).await?;
    let mut subjects: BTreeMap<String, ()> = BTreeMap::new();
    for g in expired.as_array().cloned().unwrap_or_default() {
        if let Some(u) = g.get("user_id").and_then(Value::as_str) {
            subjects.insert(format!("user:{u}"), ());
        } else if let Some(o) = g.get("organization_id").and_then(Value::as_str) {
            subjects.insert(format!("org:{o}"), ());
        }
    }
    let mut refolded = 0;
    for key in subjects.keys() {
        let related = app
            .store
            .rpc("tollgate_related_facts", &json!({"p_refs": [key]}))
            .await?;
        if related["facts"].as_array().is_some_and(|a| !a.is_empty()) {
            let facts: Vec<Fact> = serde_json::from_value(related["facts"].clone()).unwrap_or_default();
            apply_facts(app, None, facts, now).await?;
            refolded += 1;
        }
    }
    Ok(json!({"pending_retried": retried, "pending_applied": applied, "expired_subjects": refolded}))
}
