//! Shapes and helpers with the VCM Suite app's own signatures, so an app can
//! switch without rewriting call sites.
//!
//! - Its cloud entitlements: `hasAccess(entitlements, cloud, requiredTier)` over
//!   `cloud_entitlements` rows. Differences, on purpose: the app's own version
//!   looked only at the first `active` row for a cloud and ignored `trial`,
//!   expiry and `valid_from`; tollgate applies the full access rules (trial
//!   counts, past_due counts during the grace period, canceled counts until
//!   `valid_to`, nothing counts outside its window) and takes the highest valid
//!   row, so a lower or newer row never masks a higher one.
//! - Its pricing tiers: `resolveUserTier(user)` and the permission helpers over
//!   a user `{ subscription_tier }`; tollgate also accepts the user's grants, in
//!   which case the tier comes from them (and expiry applies).

use serde::Deserialize;

use crate::catalog::{Catalog, LimitValue};
use crate::decide::{self, DecideError, Decision, ExportPolicy};
use crate::model::{Entitlements, Grant, Source, Status};
use crate::time::Timestamp;

/// A row of the VCM Suite app's `cloud_entitlements` table (snake_case, ISO timestamps).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
#[derive(Clone, Debug, Deserialize)]
pub struct CloudEntitlementRow {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    pub cloud_id: String,
    pub tier: String,
    pub source: Source,
    pub status: Status,
    pub valid_from: Option<Timestamp>,
    #[serde(default)]
    pub valid_to: Option<Timestamp>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub past_due_since: Option<Timestamp>,
    #[serde(default)]
    pub offer_key: Option<String>,
    #[serde(default)]
    pub source_ref: Option<String>,
}

impl CloudEntitlementRow {
    pub fn into_grant(self) -> Grant {
        let valid_from = self.valid_from.or(self.created_at).unwrap_or(Timestamp(i64::MIN / 2));
        Grant {
            id: self.id.unwrap_or_default(),
            product: self.cloud_id,
            tier: self.tier,
            source: self.source,
            status: self.status,
            valid_from,
            valid_to: self.valid_to,
            past_due_since: self
                .past_due_since
                .or(if self.status == Status::PastDue { self.updated_at } else { None }),
            offer: self.offer_key,
            source_ref: self.source_ref,
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        }
    }
}

/// The VCM Suite app's `hasAccess`, with tollgate's access rules.
pub fn has_access_rows(
    catalog: &Catalog,
    rows: Vec<CloudEntitlementRow>,
    cloud: &str,
    required: &str,
    now: Timestamp,
) -> Result<Decision, DecideError> {
    let ents = Entitlements::new(rows.into_iter().map(CloudEntitlementRow::into_grant).collect());
    decide::has_access(catalog, &ents, cloud, required, now)
}

/// The VCM Suite app's user shape: `{ subscription_tier }`, optionally with grants.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PlanUser {
    #[serde(default)]
    pub subscription_tier: Option<String>,
    #[serde(default)]
    pub entitlements: Option<Vec<Grant>>,
}

/// The entitlements a VCM Suite app user stands for.
pub fn user_entitlements(catalog: &Catalog, user: Option<&PlanUser>) -> Result<Entitlements, DecideError> {
    let plan = catalog.meta().plan_product.clone().ok_or(DecideError::NoPlanProduct)?;
    let Some(u) = user else { return Ok(Entitlements::default()) };
    if let Some(grants) = &u.entitlements {
        return Ok(Entitlements::new(grants.clone()));
    }
    let p = catalog.product(&plan).ok_or_else(|| DecideError::UnknownProduct(plan.clone()))?;
    let tier = u.subscription_tier.as_deref().filter(|t| p.tiers.iter().any(|x| x == t));
    Ok(match tier {
        Some(t) => Entitlements::new(vec![Grant {
            id: "subscription_tier".into(),
            product: plan,
            tier: t.into(),
            source: Source::ManualGrant,
            status: Status::Active,
            valid_from: Timestamp(i64::MIN / 2),
            valid_to: None,
            past_due_since: None,
            offer: None,
            source_ref: None,
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        }]),
        None => Entitlements::default(),
    })
}

/// `resolveUserTier`: the plan product's effective tier; unknown or missing
/// tiers resolve to the product's default tier (as the VCM Suite app did with 'free').
pub fn resolve_user_tier(catalog: &Catalog, user: Option<&PlanUser>, now: Timestamp) -> Result<String, DecideError> {
    let plan = catalog.meta().plan_product.clone().ok_or(DecideError::NoPlanProduct)?;
    let ents = user_entitlements(catalog, user)?;
    let eff = decide::effective(catalog, &ents, &plan, now)?;
    let p = catalog.product(&plan).expect("validated");
    Ok(eff
        .tier
        .map(|t| p.tiers[t].clone())
        .unwrap_or_else(|| p.default_tier.clone().unwrap_or_else(|| p.tiers[0].clone())))
}

pub fn user_can(catalog: &Catalog, user: Option<&PlanUser>, capability: &str, now: Timestamp) -> Result<Decision, DecideError> {
    let ents = user_entitlements(catalog, user)?;
    decide::can(catalog, &ents, capability, now)
}

pub fn user_export_policy(catalog: &Catalog, user: Option<&PlanUser>, now: Timestamp) -> Result<ExportPolicy, DecideError> {
    let ents = user_entitlements(catalog, user)?;
    decide::export_policy(catalog, &ents, now)
}

pub const LIMIT_WORKFLOW_RUNS: &str = "workflow_runs_per_day";

/// The VCM Suite app's workflow rule: may another run start, given the runs today?
pub fn workflow_run_allowed(
    catalog: &Catalog,
    user: Option<&PlanUser>,
    runs_today: u64,
    now: Timestamp,
) -> Result<Decision, DecideError> {
    let ents = user_entitlements(catalog, user)?;
    decide::check_limit(catalog, &ents, LIMIT_WORKFLOW_RUNS, runs_today, now)
}

pub fn user_limit(catalog: &Catalog, user: Option<&PlanUser>, name: &str, now: Timestamp) -> Result<LimitValue, DecideError> {
    let ents = user_entitlements(catalog, user)?;
    Ok(decide::limit(catalog, &ents, name, now)?.limit)
}
