//! A subject's stored billing state, loaded in one RPC (`tollgate_subject_state`) and
//! turned into the core's types: grants, the credit wallet (lots + ledger), the
//! reducer's own state, and, for a user, the organizations it belongs to.

use serde::Deserialize;
use serde_json::{json, Value};

use tollgate::billing::facts::SubStatus;
use tollgate::catalog::Catalog;
use tollgate::credits::Wallet;
use tollgate::meter::BillingPeriod;
use tollgate::model::{Entitlements, Grant, Source, Status};
use tollgate::time::Timestamp;

use crate::supabase::StoreError;

/// Who holds entitlements, as the store keys it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    User(String),
    Org(String),
}

impl Subject {
    pub fn user(id: &str) -> Subject {
        Subject::User(id.to_string())
    }
    /// The RPC argument `{"user_id": ...}` / `{"organization_id": ...}`.
    pub fn to_json(&self) -> Value {
        match self {
            Subject::User(id) => json!({"user_id": id}),
            Subject::Org(id) => json!({"organization_id": id}),
        }
    }
    /// The subject a `{"user_id"}` / `{"organization_id"}` object names (the inverse of
    /// [`Subject::to_json`]; a row with both columns names its user).
    pub fn from_json(v: &Value) -> Option<Subject> {
        match (v["user_id"].as_str(), v["organization_id"].as_str()) {
            (Some(u), _) => Some(Subject::User(u.to_string())),
            (None, Some(o)) => Some(Subject::Org(o.to_string())),
            _ => None,
        }
    }
    /// The subject of a `user:<id>` / `org:<id>` key (the inverse of [`Subject::key`]).
    pub fn from_key(k: &str) -> Option<Subject> {
        k.strip_prefix("user:")
            .map(|u| Subject::User(u.to_string()))
            .or_else(|| k.strip_prefix("org:").map(|o| Subject::Org(o.to_string())))
    }
    /// `user:<id>` / `org:<id>`, the core's spelling.
    pub fn key(&self) -> String {
        match self {
            Subject::User(id) => format!("user:{id}"),
            Subject::Org(id) => format!("org:{id}"),
        }
    }
    pub fn from_core(s: &tollgate::billing::facts::Subject) -> Subject {
        if s.is_org() {
            Subject::Org(s.id.clone())
        } else {
            Subject::User(s.id.clone())
        }
    }
    pub fn to_core(&self) -> tollgate::billing::facts::Subject {
        match self {
            Subject::User(id) => tollgate::billing::facts::Subject::user(id.clone()),
            Subject::Org(id) => tollgate::billing::facts::Subject::org(id.clone()),
        }
    }
    /// Store ids are UUIDs (auth.users.id, organizations.id).
    pub fn is_valid(&self) -> bool {
        let id = match self {
            Subject::User(id) | Subject::Org(id) => id,
        };
        is_uuid(id)
    }
}

pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A `cloud_entitlements` row as the store returns it.
#[derive(Clone, Debug, Deserialize)]
pub struct GrantRow {
    pub grant_key: String,
    pub cloud_id: String,
    pub tier: String,
    pub source: Source,
    pub status: Status,
    pub valid_from: Option<Timestamp>,
    #[serde(default)]
    pub valid_to: Option<Timestamp>,
    #[serde(default)]
    pub past_due_since: Option<Timestamp>,
    #[serde(default)]
    pub offer_key: Option<String>,
    #[serde(default)]
    pub source_ref: Option<String>,
    /// The catalog versions it was sold under and its renewals moved it to (see
    /// `tollgate::grandfather`).
    #[serde(default)]
    pub catalog_version: Option<u32>,
    #[serde(default)]
    pub renewal_version: Option<u32>,
    /// The start of its current paid period (see `tollgate::Grant::period_start`).
    #[serde(default)]
    pub period_start: Option<Timestamp>,
    /// When its subscription was paused, while it is (see `tollgate::Grant::paused_since`).
    #[serde(default)]
    pub paused_since: Option<Timestamp>,
}

impl GrantRow {
    pub fn into_grant(self) -> Grant {
        Grant {
            id: self.grant_key,
            product: self.cloud_id,
            tier: self.tier,
            source: self.source,
            status: self.status,
            valid_from: self.valid_from.unwrap_or(Timestamp(0)),
            valid_to: self.valid_to,
            past_due_since: self.past_due_since,
            offer: self.offer_key,
            source_ref: self.source_ref,
            catalog_version: self.catalog_version,
            renewal_version: self.renewal_version,
            period_start: self.period_start,
            paused_since: self.paused_since,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Membership {
    pub organization_id: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub seat: bool,
    #[serde(default)]
    pub seat_count: i64,
    #[serde(default)]
    pub grants: Vec<GrantRow>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Preferences {
    #[serde(default)]
    pub allow_overages: bool,
    #[serde(default)]
    pub overage_limit_minor: Option<i64>,
}

/// A subscription's current period, as `billing_subscriptions` holds it.
#[derive(Clone, Debug, Default, Deserialize)]
struct SubscriptionRow {
    #[serde(default)]
    status: String,
    #[serde(default)]
    current_period_start: Option<Timestamp>,
    #[serde(default)]
    current_period_end: Option<Timestamp>,
    /// When the store first recorded it.
    #[serde(default)]
    created_at: Option<Timestamp>,
}

impl SubscriptionRow {
    /// Still in a paid period ([`SubStatus::is_running`]; the store keeps the core's names).
    fn is_running(&self) -> bool {
        serde_json::from_value::<SubStatus>(Value::String(self.status.clone())).is_ok_and(SubStatus::is_running)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Raw {
    #[serde(default)]
    version: i64,
    #[serde(default)]
    state: Value,
    #[serde(default)]
    grants: Vec<GrantRow>,
    #[serde(default)]
    wallet: Wallet,
    #[serde(default)]
    memberships: Vec<Membership>,
    #[serde(default)]
    preferences: Option<Preferences>,
    #[serde(default)]
    organization: Option<Value>,
    #[serde(default)]
    seats: Option<i64>,
    #[serde(default)]
    stamp: Option<String>,
    #[serde(default)]
    subscriptions: Vec<SubscriptionRow>,
    #[serde(default)]
    alerts: Vec<tollgate::notices::StoredAlert>,
    #[serde(default)]
    failed_payments: Vec<tollgate::notices::StoredPayment>,
}

/// Everything stored about one subject.
#[derive(Clone, Debug)]
pub struct SubjectState {
    pub subject: Subject,
    /// Optimistic-concurrency version (`billing_subjects.version`).
    pub version: i64,
    /// The reducer's own state, opaque to the worker.
    pub state: Value,
    pub grants: Vec<Grant>,
    pub wallet: Wallet,
    pub memberships: Vec<Membership>,
    pub preferences: Preferences,
    pub organization: Option<Value>,
    pub seats_used: Option<i64>,
    /// What a usage charge planned from this state is checked against
    /// (`tollgate_usage_stamp`): unchanged, the plan still holds.
    pub stamp: Option<String>,
    /// The current period of each of its subscriptions that is not ended: the billing
    /// periods an overage cap counts over (`tollgate::meter::overage_period`).
    pub periods: Vec<BillingPeriod>,
    /// The snapshot's read only (no ledger key): the open alerts and the failed payments
    /// still due, as stored (the core decides what the snapshot shows of them).
    pub alerts: Vec<tollgate::notices::StoredAlert>,
    pub failed_payments: Vec<tollgate::notices::StoredPayment>,
}

impl SubjectState {
    /// A state as the store answers it (`tollgate_subject_state`'s JSON).
    pub fn from_store(subject: &Subject, v: Value) -> Result<SubjectState, StoreError> {
        let raw: Raw = serde_json::from_value(v).map_err(|e| StoreError::Decode(format!("subject state: {e}")))?;
        Ok(SubjectState {
            subject: subject.clone(),
            version: raw.version,
            state: raw.state,
            grants: raw.grants.into_iter().map(GrantRow::into_grant).collect(),
            wallet: raw.wallet,
            memberships: raw.memberships,
            preferences: raw.preferences.unwrap_or_default(),
            organization: raw.organization,
            seats_used: raw.seats,
            stamp: raw.stamp,
            periods: raw
                .subscriptions
                .iter()
                .filter(|s| s.is_running())
                .filter_map(|s| {
                    let (start, end) = (s.current_period_start?, s.current_period_end?);
                    Some(BillingPeriod { since: s.created_at.unwrap_or(start), start, end })
                })
                .collect(),
            alerts: raw.alerts,
            failed_payments: raw.failed_payments,
        })
    }

    /// Spendable units per pool at `now` (allowance + purchased, less what a paused
    /// subscription gave), as the core counts them (`tollgate::usage::balances`).
    pub fn balances(&self, now: Timestamp) -> std::collections::BTreeMap<String, i64> {
        tollgate::usage::balances(&self.wallet, &self.grants, now)
    }

    /// The grants and balances a user's snapshot carries: its own grants, and the grants
    /// of each organization where it holds a seat (the Org Seats app: membership
    /// plus an allocated seat), with the organization's grant ids prefixed so they stay unique.
    pub fn entitlements_for_snapshot(&self, _catalog: &Catalog, now: Timestamp) -> Entitlements {
        tollgate::seats::merge_seated_grants(self.own_entitlements(now), &self.organizations())
    }

    /// The subject's own grants and balances (none lent by an organization).
    pub fn own_entitlements(&self, now: Timestamp) -> Entitlements {
        Entitlements { subject: self.subject.key(), grants: self.grants.clone(), balances: self.balances(now), until: None }
    }

    /// Each organization the user belongs to: its id, whether the user holds a seat there,
    /// and the organization's grants.
    pub fn organizations(&self) -> Vec<(String, bool, Vec<Grant>)> {
        self.memberships
            .iter()
            .map(|m| (m.organization_id.clone(), m.seat, m.grants.iter().cloned().map(|g| g.into_grant()).collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_uuids() {
        let s = Subject::user("8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e");
        assert!(s.is_valid());
        assert_eq!(s.to_json(), json!({"user_id": "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e"}));
        assert!(!Subject::user("u1").is_valid());
        assert_eq!(Subject::Org("o".into()).key(), "org:o");
    }

    #[test]
    fn only_running_subscriptions_give_billing_periods() {
        let sub = |status: &str, start: &str| json!({"status": status, "current_period_start": start, "current_period_end": "2027-02-01T00:00:00Z"});
        let v = json!({"subscriptions": [
            sub("active", "2027-01-01T00:00:00Z"), sub("ended", "2026-12-01T00:00:00Z"), sub("canceled", "2026-11-01T00:00:00Z"),
            sub("incomplete", "2026-10-01T00:00:00Z"), sub("past_due", "2026-09-01T00:00:00Z")]});
        let st = SubjectState::from_store(&Subject::user("u"), v).unwrap();
        let starts: Vec<String> = st.periods.iter().map(|p| p.start.to_string()).collect();
        assert_eq!(starts, ["2027-01-01T00:00:00Z", "2026-09-01T00:00:00Z"]);
    }
}
