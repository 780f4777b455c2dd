//! What a fold writes: the [`BillingState`] projected onto a store's rows, per subject,
//! as typed values. A host persists [`SubjectRows`] as they are (one transaction for
//! all of them); it decides nothing about what they contain.
//!
//! Every subject's rows are written **whole**: its grants, its credit lots (each with
//! the usage total the fold read for it, which the store checks is still current; a lot
//! the store holds that the rows do not name is withdrawn, [`crate::credits::Lot::withdraw`]), the
//! ledger entries the fold made (credits, refunds, expiries; a charge's own entries are
//! written by the charge and never by a fold), its subscriptions and customers, and for
//! an organization its seats.

use serde::Serialize;

use super::reducer::UsageTotals;
use super::state::{BillingState, FailedPayment};
use crate::credits::{EntryKind, LedgerEntry, Lot};
use crate::model::Grant;
use crate::time::Timestamp;

/// A grant as the `cloud_entitlements` table holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantRow {
    pub grant_key: String,
    pub cloud_id: String,
    pub tier: String,
    pub source: &'static str,
    pub status: &'static str,
    pub valid_from: Timestamp,
    pub valid_to: Option<Timestamp>,
    pub past_due_since: Option<Timestamp>,
    pub offer_key: Option<String>,
    pub source_ref: Option<String>,
    /// The catalog versions it was sold under and its renewals moved it to (see
    /// [`crate::grandfather`]).
    pub catalog_version: Option<u32>,
    pub renewal_version: Option<u32>,
    /// The start of its current paid period (see [`Grant::period_start`]).
    pub period_start: Option<Timestamp>,
    /// When its subscription was paused, while it is (see [`Grant::paused_since`]).
    pub paused_since: Option<Timestamp>,
}

impl From<&Grant> for GrantRow {
    fn from(g: &Grant) -> GrantRow {
        GrantRow {
            grant_key: g.id.clone(),
            cloud_id: g.product.clone(),
            tier: g.tier.clone(),
            source: g.source.as_str(),
            status: g.status.as_str(),
            valid_from: g.valid_from,
            valid_to: g.valid_to,
            past_due_since: g.past_due_since,
            offer_key: g.offer.clone(),
            source_ref: g.source_ref.clone(),
            catalog_version: g.catalog_version,
            renewal_version: g.renewal_version,
            period_start: g.period_start,
            paused_since: g.paused_since,
        }
    }
}

/// A credit lot as the fold leaves it, with the usage total it was folded with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LotRow {
    #[serde(flatten)]
    pub lot: Lot,
    /// The charges' total for this lot that the fold read: the store writes the lot
    /// only while its own total is still this.
    pub used_read: i64,
}

/// A provider subscription as the `billing_subscriptions` table holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubscriptionRow {
    pub provider: String,
    pub subscription_id: String,
    pub customer_id: Option<String>,
    pub offer_key: Option<String>,
    pub status: super::facts::SubStatus,
    pub quantity: u32,
    pub current_period_start: Option<Timestamp>,
    pub current_period_end: Option<Timestamp>,
    /// When a trialing subscription's trial ends (the scheduled run's `trial_ending` scan).
    pub trial_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub object_version: i64,
}

/// A provider customer of the subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CustomerRow {
    pub provider: String,
    pub customer_id: String,
}

/// A failed payment as the `failed_payments` table holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedPaymentRow {
    pub provider: String,
    /// The invoice (or Razorpay cycle) id without its provider.
    pub invoice_id: String,
    pub subscription_id: String,
    pub amount_due: i64,
    pub currency: String,
    pub attempt_count: u32,
    pub next_retry_at: Option<Timestamp>,
    pub first_failed_at: Timestamp,
    pub last_failed_at: Timestamp,
    pub grace_until: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub resolution: Option<&'static str>,
    pub resolved_by: Option<String>,
}

impl From<&FailedPayment> for FailedPaymentRow {
    fn from(r: &FailedPayment) -> FailedPaymentRow {
        FailedPaymentRow {
            provider: r.provider.as_str().to_string(),
            invoice_id: split_provider(&r.id).1.to_string(),
            subscription_id: split_provider(&r.subscription).1.to_string(),
            amount_due: r.amount_due,
            currency: r.currency.clone(),
            attempt_count: r.attempts,
            next_retry_at: r.next_retry,
            first_failed_at: r.first_failed_at,
            last_failed_at: r.last_failed_at,
            grace_until: r.grace_until,
            resolved_at: r.resolved_at,
            resolution: r.resolution.map(|x| x.as_str()),
            resolved_by: r.resolved_by.as_deref().map(|p| split_provider(p).1.to_string()),
        }
    }
}

/// Everything a fold writes for one subject.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubjectRows {
    /// `user:<id>` / `org:<id>`.
    pub key: String,
    pub subject: super::facts::Subject,
    /// The fold's own view of the subject (without its wallet), kept for support.
    pub state: serde_json::Value,
    pub grants: Vec<GrantRow>,
    pub lots: Vec<LotRow>,
    /// The fold's ledger entries other than usage.
    pub ledger: Vec<LedgerEntry>,
    pub subscriptions: Vec<SubscriptionRow>,
    pub customers: Vec<CustomerRow>,
    /// Its subscriptions' failed payments, open and settled.
    pub failed_payments: Vec<FailedPaymentRow>,
    /// The alert checks of the fold (subscription events, pools), applied as of `alerts_at`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<crate::alerts::AlertCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts_at: Option<Timestamp>,
    /// Organizations: the seat count and the users holding a seat within it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats: Option<Vec<String>>,
}

/// `stripe:sub_1` -> (`stripe`, `sub_1`); ids without a provider are Stripe's.
pub fn split_provider(s: &str) -> (&str, &str) {
    match s.split_once(':') {
        Some((p, id)) if p == "stripe" || p == "razorpay" => (p, id),
        _ => ("stripe", s),
    }
}

/// The rows of every subject of the state (and every organization with seats), in key
/// order. `usage` is what the fold was given as per-lot totals.
pub fn subject_rows(state: &BillingState, usage: &UsageTotals) -> Vec<SubjectRows> {
    let mut keys: Vec<&String> = state.subjects.keys().collect();
    keys.extend(state.seats.keys().filter(|k| !state.subjects.contains_key(*k)));
    keys.sort();
    keys.dedup();
    keys.into_iter().filter_map(|k| rows_of(state, k, usage)).collect()
}

/// [`subject_rows`] with each subject's alert checks as of `now`: its subscription events
/// and the thresholds of the pools it holds (see [`crate::alerts`]).
pub fn fold_rows(catalog: &crate::catalog::Catalog, state: &BillingState, usage: &UsageTotals, now: Timestamp) -> Vec<SubjectRows> {
    let mut rows = subject_rows(state, usage);
    if catalog.doc.alerts.is_empty() {
        return rows;
    }
    for r in &mut rows {
        let mut checks = crate::alerts::subscription_checks(catalog, state, &r.key, now);
        let held: Vec<&str> = r.lots.iter().map(|l| l.lot.pool.as_str()).collect();
        checks.extend(crate::alerts::all_pool_checks(catalog).into_iter().filter(|c| {
            matches!(&c.level, crate::alerts::Level::BalanceBelow { pool, .. } if held.contains(&pool.as_str()))
        }));
        if !checks.is_empty() {
            r.alerts = checks;
            r.alerts_at = Some(now);
        }
    }
    rows
}

fn rows_of(state: &BillingState, key: &str, usage: &UsageTotals) -> Option<SubjectRows> {
    let core = state.subjects.get(key);
    let subject = core
        .map(|s| s.subject.clone())
        .or_else(|| state.seats.get(key).map(|b| b.org.clone()))
        .or_else(|| super::facts::Subject::parse(key).ok())?;
    let read = usage.get(key);
    let lots = core
        .map(|s| {
            s.wallet
                .lots
                .iter()
                .map(|l| LotRow {
                    lot: l.clone(),
                    used_read: read.and_then(|m| m.get(&l.key)).copied().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let ledger = core
        .map(|s| s.wallet.ledger.iter().filter(|e| e.kind != EntryKind::Usage).cloned().collect())
        .unwrap_or_default();
    let subscriptions = state
        .subscriptions
        .values()
        .filter(|s| s.subject.as_ref().map(|x| x.to_string()).as_deref() == Some(key))
        .map(|s| {
            let (provider, id) = split_provider(&s.id);
            SubscriptionRow {
                provider: provider.to_string(),
                subscription_id: id.to_string(),
                customer_id: s.customer.as_deref().map(|c| split_provider(c).1.to_string()),
                offer_key: s.items.iter().find_map(|i| i.offer.clone()),
                status: s.status,
                quantity: s.items.iter().map(|i| i.quantity).sum::<u32>().max(u32::from(!s.items.is_empty())),
                current_period_start: s.period_start,
                current_period_end: s.period_end,
                trial_end: s.trial_end,
                cancel_at_period_end: s.cancel_at_period_end,
                canceled_at: s.cancel_at,
                ended_at: s.ended_at,
                object_version: s.version.map(|t| t.unix()).unwrap_or(0),
            }
        })
        .collect();
    let customers = state
        .customers
        .iter()
        .filter(|(_, s)| s.to_string() == key)
        .map(|(c, _)| {
            let (provider, id) = split_provider(c);
            CustomerRow { provider: provider.to_string(), customer_id: id.to_string() }
        })
        .collect();
    let failed_payments = state
        .failed_payments
        .values()
        .filter(|r| r.subject.as_ref().map(|x| x.to_string()).as_deref() == Some(key))
        .map(FailedPaymentRow::from)
        .collect();
    let mut view = core.map(|s| serde_json::to_value(s).unwrap_or_default()).unwrap_or_default();
    if let Some(o) = view.as_object_mut() {
        o.remove("wallet");
    }
    let (seat_count, seats) = match state.seats.get(key).filter(|_| subject.is_org()) {
        Some(book) => (
            Some(book.seats),
            Some(book.holders.iter().filter(|h| !h.over_capacity && !h.user.is_org()).map(|h| h.user.id.clone()).collect()),
        ),
        None => (None, None),
    };
    Some(SubjectRows {
        key: key.to_string(),
        subject,
        state: view,
        grants: core.map(|s| s.grants.iter().map(GrantRow::from).collect()).unwrap_or_default(),
        lots,
        ledger,
        subscriptions,
        customers,
        failed_payments,
        alerts: Vec::new(),
        alerts_at: None,
        seat_count,
        seats,
    })
}
