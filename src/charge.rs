//! One usage charge, decided whole: [`charge`] takes the subject's entitlements, its
//! credit lots, its overage preference, the request and `now`, and answers either a
//! [`Charge`] (every row the store writes for it, as typed values) or a [`Refusal`]
//! value. A host calls it once per attempt and persists what it returns; it composes
//! nothing itself. The lots of a paused subscription are not taken from while it is
//! ([`crate::usage::drawable`]): what they would cover is refused, `paused`
//! ([`crate::credits::DenyReason::Paused`]), never billed as overage.
//!
//! # Keys no caller can forge
//! A caller chooses its `Idempotency-Key`; the system writes ledger and fact keys. The
//! charge's request id is `<subject>:<h>`, where `h` is the first 32 hex digits of the
//! SHA-256 of the key: fixed length, no `:` in it, and nothing the caller types appears
//! in it. Its ledger entries are `usage:<request id>:<lot>` and its fact is
//! `usage:<request id>`, so no key a caller can choose equals a key of another charge,
//! of another subject, or any key the folds write (`used:`, `expire:`, `reverse:`, lot
//! keys). Whether a request was charged already is decided by its request id alone (the
//! store's usage record), never by looking for ledger keys.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::billing::facts::{Fact, Subject, UsageFact, UsageTake};
use crate::catalog::Catalog;
use crate::credits::{
    plan_charge, ChargeDenial, ChargeOutcome, ChargePlan, DenyReason, EntryKind, LedgerEntry, OveragePolicy, Pricer, Wallet,
};
use crate::model::Entitlements;
use crate::time::Timestamp;
use crate::usage::{may_draw, plan_usage, quote, Quote, UsageError, UsageRequest};

/// What the core needs to know about the subject.
#[derive(Clone, Copy, Debug)]
pub struct ChargeInput<'a> {
    /// Grants that count for the subject (its own and its seated organizations').
    pub entitlements: &'a Entitlements,
    /// The subject's credit lots (the ledger is not read).
    pub wallet: &'a Wallet,
    /// The subject's overage opt-in and cap.
    pub overage: &'a OveragePolicy,
}

/// A usage request: `seconds` of `model` at `quality`, under the caller's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest<'a> {
    pub subject: &'a Subject,
    /// The caller's `Idempotency-Key` (any printable text).
    pub idempotency_key: &'a str,
    pub model: &'a str,
    pub quality: &'a str,
    pub seconds: u64,
}

/// The usage record the store keeps, one per request id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageRecord {
    pub units: u64,
    /// The rate's model and quality (a priced charge); `None` for a charge of credits.
    pub model: Option<String>,
    pub quality: Option<String>,
    pub pool: String,
    /// The request's price at the normal rate (minor units).
    pub cost_minor: i64,
    /// What its overage costs (minor units), billed in money.
    pub overage_minor: i64,
    pub overage_units: u64,
    pub currency: String,
}

/// An accepted charge: everything the store writes for it, in one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Charge {
    /// `<subject>:<hash of the key>`: the identity of the charge (see the module docs).
    pub request_id: String,
    /// SHA-256 of the request's content: the same key with another body is refused.
    pub request_hash: String,
    /// The price of a priced charge (`None` for a charge of credits).
    pub quote: Option<Quote>,
    pub plan: ChargePlan,
    /// The lots it takes from and how much (each checked by the store to hold it).
    pub takes: Vec<UsageTake>,
    /// One ledger entry per take (`usage:<request id>:<lot>`).
    pub entries: Vec<LedgerEntry>,
    pub record: UsageRecord,
    /// The charge as a billing fact: what it took, lot by lot, and its overage.
    pub fact: Fact,
    /// For a charge with overage: the subject's cap on overage spend in its billing
    /// period, which the store checks the period's overage against, atomically, with this
    /// charge's overage added (the decision read `OveragePolicy::spent` before it).
    pub overage_limit: Option<i64>,
    /// A hold: until when it stands before it is released if not captured.
    pub hold_until: Option<Timestamp>,
}

/// Why a charge is refused: values, not errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The subject holds neither a plan nor credits in the pool; `upgrade` is the offer
    /// a refusal on the pool names ([`crate::usage::credit_offer`]).
    NotEntitled { pool: String, upgrade: Option<String> },
    /// The balance (and the overage the subject allows) does not cover it; `upgrade` as
    /// for [`Refusal::NotEntitled`].
    Short {
        #[serde(flatten)]
        denial: ChargeDenial,
        upgrade: Option<String>,
    },
}

/// What [`charge`] decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeDecision {
    Charge(Box<Charge>),
    Refuse(Refusal),
}

/// The request id of a caller's key for a subject (see the module docs).
pub fn request_id(subject: &Subject, idempotency_key: &str) -> String {
    let h = Sha256::digest(idempotency_key.as_bytes());
    format!("{subject}:{}", &hex::encode(h)[..32])
}

/// Digest of what the request asks for, to refuse a key reused for another request.
pub fn request_hash(subject: &Subject, model: &str, quality: &str, seconds: u64) -> String {
    let canonical = serde_json::json!({"subject": subject.to_string(), "model": model, "quality": quality, "seconds": seconds});
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Decides one usage charge. Malformed requests (unknown rate, out of range, no usage
/// pricing) are errors; a refusal is a value.
pub fn charge(
    catalog: &Catalog,
    input: ChargeInput<'_>,
    req: &ChargeRequest<'_>,
    now: Timestamp,
) -> Result<ChargeDecision, UsageError> {
    let q = quote(catalog, req.model, req.quality, req.seconds)?;
    if !may_draw(catalog, input.entitlements, input.wallet, &q.pool, now) {
        return Ok(not_entitled(catalog, input.entitlements, &q.pool, req.seconds, now));
    }
    let request_id = request_id(req.subject, req.idempotency_key);
    let usage_req = UsageRequest {
        request_id: request_id.clone(),
        model: req.model.to_string(),
        quality: req.quality.to_string(),
        seconds: req.seconds,
    };
    let (spendable, paused) = spendable_lots(catalog, &input, &q.pool, now);
    let policy = if paused { OveragePolicy { allowed: false, ..input.overage.clone() } } else { input.overage.clone() };
    let plan = match plan_usage(catalog, &spendable, &usage_req, &policy, now)? {
        ChargeOutcome::Charge(p) => p,
        ChargeOutcome::Deny(d) => return Ok(short(catalog, input.entitlements, paused_denial(d, paused), now)),
    };
    let meta = Meta {
        subject: req.subject,
        request_id,
        request_hash: request_hash(req.subject, req.model, req.quality, req.seconds),
        units: req.seconds,
        model: Some(req.model),
        quality: Some(req.quality),
        overage_limit: input.overage.cap(catalog.doc.usage.as_ref().map_or(0, |u| u.default_overage_limit)),
    };
    Ok(ChargeDecision::Charge(Box::new(settle(meta, Some(q), plan, now)?)))
}

/// The lots a charge of `pool` may take from (those of a paused subscription left out:
/// [`crate::usage::drawable`]), and whether a paused subscription of the subject's puts
/// credits into the pool ([`crate::usage::paused_pool`]): then what those lots do not
/// cover is refused `paused`, never billed as overage.
fn spendable_lots<'w>(catalog: &Catalog, input: &ChargeInput<'w>, pool: &str, now: Timestamp) -> (std::borrow::Cow<'w, Wallet>, bool) {
    let lots = crate::usage::drawable(input.wallet, &input.entitlements.grants, now);
    (lots, crate::usage::paused_pool(catalog, input.entitlements, pool, now))
}

/// A denial, said `paused` when a paused subscription's credits are what it lacks.
fn paused_denial(mut d: ChargeDenial, paused: bool) -> ChargeDenial {
    if paused {
        d.reason = DenyReason::Paused;
    }
    d
}

/// The refusal of a subject that holds neither a plan nor credits in `pool` (so none
/// available) to take `units`, with the offer a refusal on the pool names.
fn not_entitled(catalog: &Catalog, ents: &Entitlements, pool: &str, units: u64, now: Timestamp) -> ChargeDecision {
    ChargeDecision::Refuse(Refusal::NotEntitled {
        pool: pool.to_string(),
        upgrade: crate::usage::credit_offer(catalog, ents, pool, units, now).map(|o| o.key.clone()),
    })
}

/// The refusal of a charge the balance does not cover, with the offer a refusal on the
/// pool names (for what the balance lacks).
fn short(catalog: &Catalog, ents: &Entitlements, denial: ChargeDenial, now: Timestamp) -> ChargeDecision {
    let lacks = u64::try_from(denial.required.saturating_sub(denial.available)).unwrap_or(0);
    let upgrade = crate::usage::credit_offer(catalog, ents, &denial.pool, lacks, now).map(|o| o.key.clone());
    ChargeDecision::Refuse(Refusal::Short { denial, upgrade })
}

/// A charge of `units` credits of `pool`, under the caller's key: prepaid credits (the
/// Razorpay AI app's AI credits and free drafts), no price and no overage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitsRequest<'a> {
    pub subject: &'a Subject,
    pub idempotency_key: &'a str,
    pub pool: &'a str,
    pub units: u64,
    /// A hold: the credits are taken now and given back unless captured before the
    /// catalog's hold time ends ([`hold_until`]).
    pub hold: bool,
}

/// Minutes a hold lasts when the catalog does not say.
pub const DEFAULT_HOLD_MINUTES: u32 = 60;

/// When a hold taken at `now` is released if not captured.
pub fn hold_until(catalog: &Catalog, now: Timestamp) -> Timestamp {
    now.plus_seconds(i64::from(catalog.doc.catalog.hold_minutes.unwrap_or(DEFAULT_HOLD_MINUTES)) * 60)
}

/// The most credits one charge of [`charge_units`] may take.
pub const MAX_UNITS: u64 = 1_000_000_000;

/// Decides one charge of credits: the pool's lots in spending order, or a refusal (no plan
/// nor credits in the pool, or short: what is available and required; either with the
/// offer a refusal on the pool names). An unknown pool or a quantity out of range is an error.
pub fn charge_units(
    catalog: &Catalog,
    input: ChargeInput<'_>,
    req: &UnitsRequest<'_>,
    now: Timestamp,
) -> Result<ChargeDecision, UsageError> {
    let pool = catalog.pool(req.pool).ok_or_else(|| UsageError::UnknownPool(req.pool.to_string()))?;
    if req.units == 0 || req.units > MAX_UNITS {
        return Err(UsageError::BadUnits { units: req.units, max: MAX_UNITS });
    }
    if !may_draw(catalog, input.entitlements, input.wallet, &pool.id, now) {
        return Ok(not_entitled(catalog, input.entitlements, &pool.id, req.units, now));
    }
    let units = i64::try_from(req.units).map_err(|_| UsageError::Overflow)?;
    let prepaid = Prepaid { currency: catalog.doc.catalog.currency.clone() };
    let never = OveragePolicy { allowed: false, limit: Some(0), spent: 0 };
    let (spendable, paused) = spendable_lots(catalog, &input, &pool.id, now);
    let plan = match plan_charge(&spendable, &pool.id, units, now, &prepaid, &never) {
        ChargeOutcome::Charge(p) => p,
        ChargeOutcome::Deny(d) => return Ok(short(catalog, input.entitlements, paused_denial(d, paused), now)),
    };
    let meta = Meta {
        subject: req.subject,
        request_id: request_id(req.subject, req.idempotency_key),
        request_hash: units_request_hash(req.subject, &pool.id, req.units, req.hold),
        units: req.units,
        model: None,
        quality: None,
        overage_limit: 0,
    };
    let mut c = settle(meta, None, plan, now)?;
    c.hold_until = req.hold.then(|| hold_until(catalog, now));
    Ok(ChargeDecision::Charge(Box::new(c)))
}

/// Digest of a charge of credits, to refuse a key reused for another request.
pub fn units_request_hash(subject: &Subject, pool: &str, units: u64, hold: bool) -> String {
    let canonical = serde_json::json!({"subject": subject.to_string(), "pool": pool, "units": units, "hold": hold});
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Credits paid in advance: taking them costs nothing more.
struct Prepaid {
    currency: String,
}

impl Pricer for Prepaid {
    fn cost(&self, _units: i64) -> i64 {
        0
    }
    fn overage_cost(&self, _units: i64) -> i64 {
        0
    }
    fn currency(&self) -> &str {
        &self.currency
    }
    fn default_limit(&self) -> i64 {
        0
    }
}

/// What identifies a charge and what it asked for.
struct Meta<'a> {
    subject: &'a Subject,
    request_id: String,
    request_hash: String,
    units: u64,
    model: Option<&'a str>,
    quality: Option<&'a str>,
    /// The overage cap that applied (minor units).
    overage_limit: i64,
}

/// The rows of a planned charge: its takes, ledger entries, fact and record.
fn settle(m: Meta<'_>, quote: Option<Quote>, plan: ChargePlan, now: Timestamp) -> Result<Charge, UsageError> {
    let request_id = m.request_id;
    let takes: Vec<UsageTake> = plan.takes.iter().map(|t| UsageTake { lot: t.lot.clone(), units: t.units }).collect();
    let source = format!("usage:{request_id}");
    let entries = takes
        .iter()
        .map(|t| LedgerEntry {
            key: format!("{source}:{}", t.lot),
            pool: plan.pool.clone(),
            lot: t.lot.clone(),
            kind: EntryKind::Usage,
            delta: -t.units,
            at: now,
            source: source.clone(),
        })
        .collect();
    let overage_units = u64::try_from(plan.overage_units).map_err(|_| UsageError::Overflow)?;
    let fact = Fact::usage(
        UsageFact {
            request_id: request_id.clone(),
            subject: m.subject.clone(),
            pool: plan.pool.clone(),
            units: m.units,
            model: m.model.map(str::to_string),
            quality: m.quality.map(str::to_string),
            takes: Some(takes.clone()),
            overage_units,
            overage_cost: plan.overage_cost,
            currency: plan.currency.clone(),
        },
        now,
    );
    let record = UsageRecord {
        units: m.units,
        model: m.model.map(str::to_string),
        quality: m.quality.map(str::to_string),
        pool: plan.pool.clone(),
        cost_minor: plan.cost,
        overage_minor: plan.overage_cost,
        overage_units,
        currency: plan.currency.clone(),
    };
    let overage_limit = (plan.overage_cost > 0).then_some(m.overage_limit);
    Ok(Charge {
        request_hash: m.request_hash,
        request_id,
        quote,
        plan,
        takes,
        entries,
        record,
        fact,
        overage_limit,
        hold_until: None,
    })
}

impl Charge {
    /// The subject's lots after this charge (for a host that plans the next charge
    /// from them).
    pub fn apply_to(&self, wallet: &mut Wallet) {
        for t in &self.takes {
            wallet.record_usage(&t.lot, t.units);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_fixed_length_and_never_contain_the_key() {
        let s = Subject::user("u1");
        let a = request_id(&s, "k1");
        let b = request_id(&s, &format!("k1:{}", "purchase:x"));
        assert_ne!(a, b);
        assert!(a.starts_with("user:u1:") && a.len() == "user:u1:".len() + 32, "{a}");
        assert!(!b.contains("purchase"), "{b}");
        assert_ne!(request_id(&Subject::user("u2"), "k1"), a, "keys are per subject");
    }
}
