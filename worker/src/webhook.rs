//! `POST /webhooks/stripe` and `POST /webhooks/razorpay`, and the scheduled handler.
//!
//! 1. Verify the signature on the raw body with the core (`tollgate::verify`): 400 on
//!    any failure, with the core's error code. Only a bad signature is refused.
//! 2. Parse with the core (`tollgate::billing`); an event the core ignores is
//!    acknowledged with 200, a correctly signed one it cannot read is kept (200 `kept`).
//! 3. Read what the fold needs (the facts related to the new ones, charges as per-lot
//!    totals), fold with the core, and write the core's rows for every subject, with the
//!    event and its facts, in ONE store transaction. The fold is idempotent and
//!    order-independent, so duplicates, replays and any delivery order end in the same
//!    rows. The store checks that the cluster of facts the fold read did not change (and
//!    that no charge took from a lot it writes); if either did, we fold again, a few times.
//! 4. Answers: 200 `applied` / `duplicate` (with the metadata the core set aside as
//!    `warnings`); 200 `kept` for an event that cannot be applied yet (no subject
//!    attributed, no offer of the catalog known for it, a user the database does not know
//!    yet: listed by `/v1/admin/unattributed`, applied by `/v1/admin/attribute`);
//!    503/500 with no store internals when the store fails, so the provider retries.

use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;

use tollgate::billing::facts::Fact;
use tollgate::billing::parse::Parsed;
use tollgate::billing::effects::fold_rows;
use tollgate::catalog::SubscriptionEvent;
use tollgate::time::Timestamp;

use sha2::Digest;

use crate::budget::Budget;
use crate::ctx::Ctx;
use crate::http::{AppResponse, InRequest, Transport};
use crate::respond::{error, public_store_error};
use crate::state::Subject;
use crate::store::{Delivery, FoldStatus, FoldWrite, KeptEvent, PendingNote, Store, StoreError};

/// Folds again after a concurrent apply before answering 503.
pub const MAX_FOLDS: usize = 12;

/// Who sent a webhook: the catalog's payment providers.
pub use tollgate::catalog::Provider;

/// What applying a set of facts came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written; `unknown`: users the database does not know yet (their part waits),
    /// `conflicts`: facts whose keys were stored before with other content.
    Applied { version: i64, subjects: Vec<String>, unknown: Vec<String>, conflicts: Vec<String> },
    Kept { waiting_for: Vec<String> },
    Duplicate,
}

pub async fn handle<T: Transport, S: Store>(app: &Ctx<T, S>, provider: Provider, req: &InRequest, now: Timestamp) -> AppResponse {
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
    // The catalog this event is read under, checked at once: what it sells or renews
    // records the version active when it is read (see tollgate::grandfather), so an
    // activation counts from then on. Only now that the signature holds: an unsigned sender
    // makes the store read nothing. (A store that cannot answer leaves the isolate's
    // catalog as it was; persisting the event below needs the store anyway.)
    let _ = app.refresh_catalog(now, true).await;
    // 2. Parse. A correctly signed event the core cannot read is kept, never refused:
    // the provider would retry a 4xx for days and then drop a paid event.
    let raw = String::from_utf8_lossy(&req.body);
    let parsed = match parse(app, provider, &raw, req.headers.get("x-razorpay-event-id")) {
        Ok(p) => p,
        Err(reason) => return keep_unreadable(app, provider, req, &raw, &reason).await,
    };
    let info = parsed.event().clone();
    // Metadata the core set aside (an unknown offer key, a bundle choice that does not fit):
    // said in the answer, which the provider's dashboard shows with the delivery.
    let warnings = parsed.warnings().to_vec();
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
    let event = Delivery {
        provider: provider.as_str().to_string(),
        event_id: info.id.clone(),
        event_type: info.event_type.clone(),
        object_id,
        payload,
    };
    // 3. Fold and persist. An event told before but still kept (its user was not in the
    // database then) is folded again, as the scheduled run's retry would: what it waited
    // for may be there now, and the provider's redelivery should not wait for the next run.
    let again = facts.clone();
    let mut outcome = apply_facts(app, Some(event), facts, now).await;
    if matches!(outcome, Ok(Outcome::Duplicate)) {
        outcome = match app.store.kept_event(provider.as_str(), &info.id).await {
            // Still waiting for a user the database does not know: kept as it was.
            Ok(Some(k)) if !k.resolved => match apply_facts(app, None, again, now).await {
                Ok(Outcome::Applied { unknown, .. } | Outcome::Kept { waiting_for: unknown }) if !unknown.is_empty() => {
                    Ok(Outcome::Duplicate)
                }
                o => o,
            },
            Ok(_) => Ok(Outcome::Duplicate),
            Err(e) => Err(e),
        };
    }
    match outcome {
        Ok(Outcome::Applied { version, subjects, .. }) => AppResponse::json(
            200,
            &with_warnings(json!({"status": "applied", "event": info.id, "version": version, "subjects": subjects}), warnings),
        ),
        Ok(Outcome::Kept { waiting_for }) => AppResponse::json(
            200,
            &with_warnings(
                json!({"status": "kept", "event": info.id, "waiting_for": waiting_for,
                       "message": "stored; it applies as soon as what it waits for arrives, or when an operator attributes it (/v1/admin/attribute)"}),
                warnings,
            ),
        ),
        Ok(Outcome::Duplicate) => AppResponse::json(200, &json!({"status": "duplicate", "event": info.id})),
        Err(e) => public_store_error(&e),
    }
}

fn with_warnings(mut v: Value, warnings: Vec<String>) -> Value {
    if !warnings.is_empty() {
        v["warnings"] = json!(warnings);
    }
    v
}

/// Keeps a correctly signed delivery the core could not read: 200 `kept`, stored with
/// the reason, listed with the kept events.
async fn keep_unreadable<T: Transport, S: Store>(
    app: &Ctx<T, S>,
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
    let event = Delivery {
        provider: provider.as_str().to_string(),
        event_id: event_id.clone(),
        event_type: payload.get("type").or_else(|| payload.get("event")).and_then(Value::as_str).unwrap_or("").to_string(),
        object_id: None,
        payload,
    };
    match app.store.keep_delivery(&event, reason).await {
        Ok(false) => AppResponse::json(200, &json!({"status": "duplicate", "event": event_id})),
        Ok(true) => AppResponse::json(
            200,
            &json!({"status": "kept", "event": event_id, "reason": reason,
                    "message": "stored unread; it is listed with the kept events for an operator"}),
        ),
        Err(e) => public_store_error(&e),
    }
}

/// The core's reading of an event, or why it cannot be read (code and message).
pub fn parse<T, S>(app: &Ctx<T, S>, provider: Provider, raw: &str, event_id: Option<&str>) -> Result<Parsed, String> {
    let r = match provider {
        Provider::Stripe => tollgate::billing::parse_stripe_event_in(&app.catalog(), raw, app.config.stripe_mode()),
        Provider::Razorpay => tollgate::billing::razorpay::parse_razorpay_event(&app.catalog(), raw, event_id),
    };
    r.map_err(|e| format!("{}: {} (at {})", e.code(), e, e.path()))
}

/// Stores `facts` (with the delivery `event`, if any) and writes the fold of every fact
/// related to them, in one transaction; folds again on a concurrent change.
///
/// The fold reads the cluster's facts other than charges, and the charges as per-lot
/// totals (`tollgate_fold_input`), so its cost does not grow with the number of
/// charges; the core projects the fold onto rows ([`subject_rows`]) and the store
/// writes them whole (`tollgate_apply_fold`).
pub async fn apply_facts<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    event: Option<Delivery>,
    facts: Vec<Fact>,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    apply_with_refs(app, event, facts, BTreeSet::new(), now).await
}

/// A subject's state after its first sight. A subject never folded (a user who paid before
/// the database knew them: the payment was kept) has what was kept for it folded first, once
/// per isolate, so the purchase shows at its first request rather than at the next scheduled
/// run. When the catalog gives every user credits and the subject holds none of them yet
/// (`Fact::joining`), the `joined` fact is folded and the state read again; otherwise `st`
/// as it is. Cheap after the first request: the free lots, once written, are in every
/// state read.
pub async fn joined<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    subject: &crate::state::Subject,
    st: crate::state::SubjectState,
    now: Timestamp,
) -> Result<crate::state::SubjectState, StoreError> {
    let st = if st.version == 0 && app.first_sight(&subject.key()) {
        let folded = match refold(app, &subject.key(), now).await {
            Ok(Outcome::Applied { subjects, .. }) if !subjects.is_empty() => app.store.subject_state(subject, Some("-")).await.map(Some),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        match folded {
            Ok(Some(read)) => read,
            Ok(None) => st,
            Err(e) => {
                // Not seen after all: the next request folds it again.
                app.forget_sight(&subject.key());
                return Err(e);
            }
        }
    } else {
        st
    };
    let Some(fact) = Fact::joining(&app.catalog(), &subject.to_core(), &st.wallet, now) else {
        return Ok(st);
    };
    apply_facts(app, None, vec![fact], now).await?;
    app.store.subject_state(subject, Some("-")).await
}

/// [`apply_facts`] for a request that applies whole or not at all (an operator's grants
/// and credits): when any of `facts` has a key stored before with other content, nothing
/// is written and the answer is `Applied` with those keys as `conflicts` and no subject.
/// The read it decides from is the fold's own, so the fold's version check covers it.
pub async fn apply_whole<T: Transport, S: Store>(app: &Ctx<T, S>, facts: Vec<Fact>, now: Timestamp) -> Result<Outcome, StoreError> {
    apply(app, None, facts, BTreeSet::new(), true, now).await
}

/// [`apply_facts`], folding also every fact related to `refs`.
pub async fn apply_with_refs<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    event: Option<Delivery>,
    facts: Vec<Fact>,
    refs: BTreeSet<String>,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    apply(app, event, facts, refs, false, now).await
}

async fn apply<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    event: Option<Delivery>,
    facts: Vec<Fact>,
    mut refs: BTreeSet<String>,
    whole: bool,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    for f in &facts {
        refs.extend(f.refs());
    }
    let new_keys: BTreeSet<&str> = facts.iter().map(|f| f.key.as_str()).collect();
    let mut last = None;
    for _ in 0..MAX_FOLDS {
        let input = app.store.fold_input(&refs).await?;
        let version = input.version;
        let mut all = input.facts;
        let usage = input.usage;
        // A fold of part of a cluster would write a wrong state: refuse, and let the
        // provider keep the event.
        if usize::try_from(version).unwrap_or(usize::MAX) > all.len() {
            return Err(StoreError::Decode(format!(
                "{version} stored facts are related to this event and only {} were read: the cluster is larger than a fold reads",
                all.len()
            )));
        }
        let cluster = input.refs;
        if facts.is_empty() && all.is_empty() {
            // Nothing stored and nothing new: nothing to fold or write.
            return Ok(Outcome::Duplicate);
        }
        // A fact told again (the same key and content at another time) is known already,
        // unless this telling is earlier than the stored one: the earliest telling holds (as
        // in the core's fold), so it replaces the stored one, whatever order they came in.
        let mut fresh: Vec<Fact> = Vec::new();
        let mut new = Vec::new();
        for f in &facts {
            match all.iter_mut().find(|s| s.restates(f)) {
                Some(stored) if f.at < stored.at => {
                    *stored = f.clone();
                    fresh.push(f.clone());
                }
                Some(_) => {}
                None => new.push(f.clone()),
            }
        }
        if whole {
            let conflicts: Vec<String> =
                new.iter().filter(|f| all.iter().any(|s| s.key == f.key)).map(|f| f.key.clone()).collect();
            if !conflicts.is_empty() {
                return Ok(Outcome::Applied { version, subjects: Vec::new(), unknown: Vec::new(), conflicts });
            }
        }
        all.extend(new.iter().cloned());
        fresh.extend(new);
        let state = app.fold(&all, &usage, now).await?;
        // Every subject the fold writes must have had its charges' totals read.
        let unread: Vec<String> = state.subjects.keys().filter(|k| !cluster.contains(*k)).cloned().collect();
        if !unread.is_empty() && !unread.iter().all(|k| refs.contains(k)) {
            refs.extend(unread);
            continue;
        }
        let mut rows = Vec::new();
        let mut touched = Vec::new();
        let mut skipped = Vec::new();
        for r in fold_rows(&app.catalog(), &state, &usage, now) {
            let s = Subject::from_core(&r.subject);
            if !s.is_valid() {
                skipped.push(r.key.clone());
                continue;
            }
            let mut r = r;
            if let Some(seats) = r.seats.as_mut() {
                seats.retain(|u| crate::state::is_uuid(u));
            }
            touched.push(r.key.clone());
            rows.push((s, r));
        }
        // Is any new fact still waiting for attribution?
        let waiting: Vec<&tollgate::billing::state::PendingFact> =
            state.pending.iter().filter(|p| new_keys.contains(p.key.as_str())).collect();
        let mut waiting_for: Vec<String> = waiting.iter().flat_map(|p| p.waiting_for.clone()).collect();
        waiting_for.extend(skipped.iter().map(|s| format!("{s} (not a UUID)")));
        waiting_for.sort();
        waiting_for.dedup();
        let pending = PendingNote {
            keep: !waiting.is_empty() || (!skipped.is_empty() && touched.is_empty()),
            waiting_for: waiting_for.clone(),
            reason: waiting.iter().map(|p| p.reason.clone()).collect::<Vec<_>>().join("; "),
        };
        // Kept deliveries whose facts the fold now applied: the stored facts' and this
        // delivery's own (a fact told again keeps its first telling's event, so a later
        // telling kept meanwhile is settled when it is tried again).
        let pending_keys: BTreeSet<&str> = state.pending.iter().map(|p| p.key.as_str()).collect();
        let resolved: Vec<(String, String)> = all
            .iter()
            .chain(facts.iter())
            .filter(|f| !f.event.is_empty() && !pending_keys.contains(f.key.as_str()))
            .map(|f| (f.provider.as_str().to_string(), f.event.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let write = FoldWrite {
            event: event.as_ref(),
            facts: &fresh,
            expected_version: version,
            refs: &cluster,
            subjects: rows,
            pending,
            resolved,
            now,
        };
        let alerting = write.subjects.iter().any(|(_, r)| !r.alerts.is_empty());
        match app.store.apply_fold(&write).await {
            Ok(v) => {
                if alerting {
                    app.outbox_queued.set(true);
                }
                let unknown = v.unknown;
                return Ok(match v.status {
                    FoldStatus::Duplicate => Outcome::Duplicate,
                    FoldStatus::Kept => {
                        waiting_for.extend(unknown);
                        waiting_for.sort();
                        waiting_for.dedup();
                        Outcome::Kept { waiting_for }
                    }
                    FoldStatus::Applied => Outcome::Applied {
                        version: v.version,
                        subjects: touched.into_iter().filter(|t| !unknown.contains(t)).collect(),
                        unknown,
                        conflicts: v.conflicts,
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
/// have arrived since), refolds the subjects of every open lot and hand-given grant past
/// its end, so expiry is written down (lots closed, their remainder posted as `expire:`
/// entries; grants closed), refolds the subjects whose grace or trial alert turned, gives
/// back what expired holds took, resolves the alerts of ended windows and delivers the
/// outbox.
///
/// A run makes at most `budget`'s requests (`SUBREQUESTS`, the plan's subrequest limit:
/// past it every request of the invocation fails). Its kinds of work ([`Work`]) take
/// their turns twice: first each an equal part of what is left, then those that still had
/// work share what the others left. What a run leaves stays in the store, and the next
/// run goes on with it: every scan pages by keyset and the rows it handled leave it (lots,
/// grants and holds once closed; kept events go to the back once tried), so rows that
/// cannot be handled yet never hide later ones. Of N kept events still waiting, each is
/// tried within ceil(N / T) runs, T being how many one run's part lets it try.
pub async fn scheduled<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    budget: &Budget<'_>,
    now: Timestamp,
    clock: &dyn Fn() -> Timestamp,
) -> Result<Value, StoreError> {
    let mut run = Run::default();
    let mut waiting = Work::ALL.map(|_| true);
    for _ in 0..2 {
        let mut turns = waiting.iter().filter(|w| **w).count() as u64;
        for (work, waits) in Work::ALL.into_iter().zip(waiting.iter_mut()) {
            if *waits {
                budget.phase(turns);
                turns -= 1;
                run.work(app, budget, work, now, clock).await?;
                *waits = budget.take_short();
            }
        }
    }
    let left: Vec<&str> = Work::ALL.into_iter().zip(waiting).filter(|(_, w)| *w).map(|(k, _)| k.name()).collect();
    let Run { retried, applied, folds, lapsed_rows, released, alerts_resolved, sent, .. } = run;
    Ok(json!({"pending_retried": retried, "pending_applied": applied, "lapsed": lapsed_rows,
              "expired_subjects": folds.refolded, "failed_subjects": folds.failed + run.failed, "released_holds": released,
              "alerts_resolved": alerts_resolved, "webhooks_delivered": sent.delivered, "webhooks_failed": sent.failed,
              "requests": budget.used(), "request_budget": budget.limit(), "left_for_next_run": left}))
}

/// The kinds of work of a scheduled run, in the order they take their turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// Kept events, least recently tried first.
    Kept,
    /// Open lots and hand-given grants past their end.
    Expiry,
    /// Subjects whose grace rule turned during the last day.
    Grace,
    /// Subjects whose trial rule turned during the last day.
    Trials,
    /// Holds not captured by their end.
    Holds,
    /// Open alerts whose window ended.
    Windows,
    /// Outbound webhooks due.
    Outbox,
}

impl Work {
    const ALL: [Work; 7] = [Work::Kept, Work::Expiry, Work::Grace, Work::Trials, Work::Holds, Work::Windows, Work::Outbox];

    fn name(self) -> &'static str {
        match self {
            Work::Kept => "kept_events",
            Work::Expiry => "expiry",
            Work::Grace => "grace",
            Work::Trials => "trials",
            Work::Holds => "holds",
            Work::Windows => "alert_windows",
            Work::Outbox => "outbox",
        }
    }
}

/// What one scheduled run did so far.
#[derive(Default)]
struct Run {
    retried: usize,
    applied: usize,
    /// Kept events tried in this run (each once).
    tried: BTreeSet<i64>,
    folds: Refolds,
    lapsed_rows: usize,
    released: usize,
    /// Expired holds this run settled or tried to (each once).
    holds: BTreeSet<String>,
    /// Holds and alert windows that could not be settled now.
    failed: usize,
    alerts_resolved: u32,
    sent: crate::outbox::Delivered,
}

impl Run {
    /// Does what `work` has to do, as far as the budget's share lets it.
    async fn work<T: Transport, S: Store>(
        &mut self,
        app: &Ctx<T, S>,
        budget: &Budget<'_>,
        work: Work,
        now: Timestamp,
        clock: &dyn Fn() -> Timestamp,
    ) -> Result<(), StoreError> {
        match work {
            // Page by page, least recently tried first: a try sends an event to the back,
            // so events only an operator can settle never hide the ones after them, however
            // many wait. Those this run tried come back after all the others: the run stops
            // at the first of them, so it tries each once.
            Work::Kept => {
                let tried = RefCell::new(std::mem::take(&mut self.tried));
                let (mut retried, mut applied) = (0, 0);
                let r = pages(
                    budget,
                    KEPT_PAGE,
                    async |after: Option<String>| {
                        let mut rows = app.store.kept_to_retry(after.as_deref(), KEPT_PAGE as u32).await?;
                        if let Some(i) = rows.iter().position(|(_, k)| tried.borrow().contains(&k.id)) {
                            rows.truncate(i);
                        }
                        Ok(rows)
                    },
                    |(cursor, _)| cursor.clone(),
                    async |(_, p)| {
                        let Some(r) = budget.unit(retry_kept(app, p, now)).await else { return Ok(false) };
                        tried.borrow_mut().insert(p.id);
                        retried += 1;
                        applied += usize::from(r?);
                        Ok(true)
                    },
                )
                .await;
                self.tried = tried.into_inner();
                self.retried += retried;
                self.applied += applied;
                r
            }
            Work::Expiry => {
                let (folds, mut lapsed) = (&mut self.folds, 0);
                let r = pages(
                    budget,
                    EXPIRY_PAGE,
                    async |after: Option<(Timestamp, String)>| app.store.lapsed(now, after.as_ref(), EXPIRY_PAGE as u32).await,
                    |r| (r.at, r.id.clone()),
                    async |r| {
                        let fits = folds.subject(app, budget, r.subject.key(), now).await;
                        lapsed += usize::from(fits);
                        Ok(fits)
                    },
                )
                .await;
                self.lapsed_rows += lapsed;
                r
            }
            // Grace and trial alerts turn with time, not with an event: the subject of a
            // failed payment whose grace rule turned during the last day, or of a trial whose
            // rule did (the core decides), is folded again, which opens and resolves them as
            // of now. Those rows stay in the store (a payment still due, a subscription still
            // trialing), so the store reads only those whose moment is in the range where a
            // rule can turn (`alerts::turning`), in the order of that moment; and a row whose
            // subject was folded after its rule turned (`folded_at`, by the store's clock,
            // less `CLOCKS_APART` for the two clocks) is not folded again: a run spends its
            // budget on the rows still waiting, not on the first ones of the range again.
            Work::Grace | Work::Trials => {
                const GRACE: &[SubscriptionEvent] = &[SubscriptionEvent::GraceEnding, SubscriptionEvent::GraceEnded];
                const TRIAL: &[SubscriptionEvent] = &[SubscriptionEvent::TrialEnding];
                let (events, field) = if work == Work::Grace { (GRACE, "grace_until") } else { (TRIAL, "trial_end") };
                let since = now.plus_days(-1);
                let catalog = app.catalog();
                let Some((from, to)) = tollgate::alerts::turning(&catalog, events, since, now) else { return Ok(()) };
                let turned = |r: &Value| {
                    let at = serde_json::from_value::<Timestamp>(r[field].clone()).ok();
                    let folded = serde_json::from_value::<Timestamp>(r["folded_at"].clone()).ok();
                    let since = folded.map_or(since, |f| since.max(Timestamp(f.0.saturating_sub(CLOCKS_APART))));
                    tollgate::alerts::turned(&catalog, events, at, since, now)
                };
                let store = &app.store;
                self.folds
                    .turned(app, budget, now, turned, |after| async move {
                        if work == Work::Grace {
                            store.failed_payments_due(from, to, after.as_deref(), GRACE_PAGE).await
                        } else {
                            store.trials(from, to, after.as_deref(), GRACE_PAGE).await
                        }
                    })
                    .await
            }
            // Holds not captured by their end give back what they took, page by page: one
            // that cannot be released now stays expired and held, and never hides the ones
            // after it.
            Work::Holds => {
                let (seen, mut released, mut failed) = (&mut self.holds, 0, 0);
                let r = pages(
                    budget,
                    EXPIRY_PAGE,
                    async |after: Option<(Timestamp, String)>| app.store.expired_holds(now, after.as_ref(), EXPIRY_PAGE as u32).await,
                    |h| (h.hold_until, h.usage_id.clone()),
                    async |h| {
                        if seen.contains(&h.usage_id) {
                            return Ok(true);
                        }
                        let settle = async {
                            match app.store.settle(&h.subject, &h.usage_id, true, now, None).await {
                                Ok(crate::store::SettleAnswer::Settled(s)) if !s.replayed => {
                                    released += 1;
                                    failed += usize::from(settled(app, &h.subject, &s, now).await.is_err());
                                }
                                Ok(_) => {}
                                Err(_) => failed += 1,
                            }
                        };
                        let fits = budget.unit(settle).await.is_some();
                        if fits {
                            seen.insert(h.usage_id.clone());
                        }
                        Ok(fits)
                    },
                )
                .await;
                self.released += released;
                self.failed += failed;
                r
            }
            // Alerts of windows that ended resolve (the core decides which).
            Work::Windows => {
                let Some(open) = budget.unit(app.store.open_windowed_alerts(now, 1000)).await else { return Ok(()) };
                for (subject, open) in open? {
                    let checks = tollgate::alerts::lapsed(std::slice::from_ref(&open), now);
                    if checks.is_empty() {
                        continue;
                    }
                    match budget.unit(app.store.record_alerts(&subject, &checks, now)).await {
                        None => return Ok(()),
                        Some(Ok(d)) => self.alerts_resolved += d.resolved,
                        Some(Err(_)) => self.failed += 1,
                    }
                }
                Ok(())
            }
            // Delivery reads the clock as it goes (what a request queues meanwhile goes in
            // this run).
            Work::Outbox => {
                let sent = crate::outbox::deliver(app, budget, clock).await?;
                self.sent.delivered += sent.delivered;
                self.sent.failed += sent.failed;
                Ok(())
            }
        }
    }
}

/// The subjects one scheduled run folds again: each once, however many of its rows it
/// meets; one that cannot be folded now (the store failing for it) does not stop the
/// others, and is found again on the next run.
#[derive(Default)]
struct Refolds {
    done: BTreeSet<String>,
    refolded: usize,
    failed: usize,
}

impl Refolds {
    /// Folds again the subject of every row (keyset pages from `page`, [`pages`], each row
    /// with its `subject` and `cursor`) for which `turned` holds, while the budget lets it.
    async fn turned<T: Transport, S: Store, P, F>(
        &mut self,
        app: &Ctx<T, S>,
        budget: &Budget<'_>,
        now: Timestamp,
        turned: impl Fn(&Value) -> bool,
        page: P,
    ) -> Result<(), StoreError>
    where
        P: Fn(Option<String>) -> F,
        F: std::future::Future<Output = Result<Vec<Value>, StoreError>>,
    {
        pages(
            budget,
            GRACE_PAGE as usize,
            async |cursor: Option<String>| page(cursor).await,
            |r: &Value| r["cursor"].as_str().unwrap_or_default().to_string(),
            async |r| match crate::state::Subject::from_json(&r["subject"]).filter(|_| turned(r)) {
                Some(s) => Ok(self.subject(app, budget, s.key(), now).await),
                None => Ok(true),
            },
        )
        .await
    }

    /// Folds `key` again unless this run did (or tried to) already; `false` when the
    /// budget's share has no room for it (nothing was done).
    async fn subject<T: Transport, S: Store>(&mut self, app: &Ctx<T, S>, budget: &Budget<'_>, key: String, now: Timestamp) -> bool {
        if self.done.contains(&key) {
            return true;
        }
        let Some(folded) = budget.unit(refold(app, &key, now)).await else { return false };
        match folded {
            Ok(_) => self.refolded += 1,
            Err(_) => self.failed += 1,
        }
        self.done.insert(key);
        true
    }
}

/// After a use of `subject` was settled (`s`), by the caller or by the scheduled run: its
/// kept state no longer holds what a release gave back, units given back to a lot closed
/// meanwhile are what a fold says (`Settled::refold`), and the alert checks of what it
/// gave back are applied as a charge's or a counted use's are (`meter::settled_checks`),
/// so a level no longer crossed resolves its alert. An error: that fold failed (the
/// release itself is done; the subject's next fold does it).
pub async fn settled<T: Transport, S: Store>(
    app: &Ctx<T, S>,
    subject: &crate::state::Subject,
    s: &crate::store::Settled,
    now: Timestamp,
) -> Result<(), StoreError> {
    app.usage_states.forget(subject);
    let folded = if s.refold { refold(app, &subject.key(), now).await.map(|_| ()) } else { Ok(()) };
    if let Some(used) = &s.settled {
        let checks = crate::meter::settled_checks(app, subject, used, now).await;
        crate::outbox::record(app, &used.owner, &checks, now).await;
    }
    folded
}

/// Applies kept event `p` again: whether it is applied now (else its attempt is recorded,
/// with why it still waits).
async fn retry_kept<T: Transport, S: Store>(app: &Ctx<T, S>, p: &KeptEvent, now: Timestamp) -> Result<bool, StoreError> {
    let provider = if p.provider == "razorpay" { Provider::Razorpay } else { Provider::Stripe };
    let raw = p.payload.to_string();
    let waits = match parse(app, provider, &raw, Some(&p.event_id)) {
        Err(_) => "the event cannot be read".to_string(),
        Ok(parsed) => match apply_facts(app, None, parsed.into_facts(), now).await {
            Ok(Outcome::Applied { unknown, .. }) if unknown.is_empty() => {
                // Resolved by the apply when its facts are no longer pending.
                match app.store.kept_event(&p.provider, &p.event_id).await? {
                    Some(k) if !k.resolved => "still unattributed".to_string(),
                    _ => return Ok(true),
                }
            }
            Ok(Outcome::Applied { unknown, .. }) => format!("waiting for {}", unknown.join(", ")),
            Ok(_) => "still unattributed".to_string(),
            Err(e) => e.to_string(),
        },
    };
    app.store.pending_attempt(&p.provider, &p.event_id, &waits).await?;
    Ok(false)
}

/// Kept events read per page of the scheduled run's retries (the store's most).
const KEPT_PAGE: usize = 200;

/// Keyset pages of at most `size` rows from the start (`fetch(None)`), each after the cursor
/// of the last row of the one before, until a short page or the budget's share ends: a
/// page is read only when a unit fits, and the scan ends at the first row `row` answers
/// `false` for (its unit did not fit). Each page's rows are handled before the next is
/// read, so rows that cannot be handled now never hide the ones after them within a run.
/// A store failure (of `fetch` or `row`) ends the run with it.
async fn pages<R, C>(
    budget: &Budget<'_>,
    size: usize,
    mut fetch: impl AsyncFnMut(Option<C>) -> Result<Vec<R>, StoreError>,
    cursor: impl Fn(&R) -> C,
    mut row: impl AsyncFnMut(&R) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut after = None;
    while let Some(rows) = budget.unit(fetch(after.take())).await {
        let rows = rows?;
        for r in &rows {
            if !row(r).await? {
                return Ok(());
            }
        }
        let Some(last) = rows.last() else { break };
        after = Some(cursor(last));
        if rows.len() < size {
            break;
        }
    }
    Ok(())
}

/// The expiry scan's page size.
const EXPIRY_PAGE: usize = 500;
/// How many rows one page of the grace and trial scans reads.
const GRACE_PAGE: u32 = 200;

/// How far the store's clock (a fold's `folded_at`) and the worker's may be apart, in
/// seconds: a fold recorded less than this after a rule turned is not taken as having seen
/// it, so its subject is folded once more rather than its alert missed.
const CLOCKS_APART: i64 = 300;

/// Folds every fact related to one subject again, as of `now`, and writes the result.
pub async fn refold<T: Transport, S: Store>(app: &Ctx<T, S>, subject_key: &str, now: Timestamp) -> Result<Outcome, StoreError> {
    apply_with_refs(app, None, Vec::new(), BTreeSet::from([subject_key.to_string()]), now).await
}
