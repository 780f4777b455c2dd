//! Entitlement state: the grants a subject holds, and its credit balances.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::time::Timestamp;

/// Where a grant came from.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Stripe,
    Razorpay,
    ManualGrant,
    Bundle,
    Promotion,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stripe => "stripe",
            Source::Razorpay => "razorpay",
            Source::ManualGrant => "manual_grant",
            Source::Bundle => "bundle",
            Source::Promotion => "promotion",
        }
    }
}

/// The billing status of a grant.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Trial,
    PastDue,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Trial => "trial",
            Status::PastDue => "past_due",
            Status::Canceled => "canceled",
        }
    }
}

/// One grant of a tier of a product to a subject, for a time window.
///
/// Access rules (see [`crate::decide`]):
/// - `active` and `trial` count inside `[valid_from, valid_to)` (`valid_to = None`: open-ended);
/// - `past_due` counts from `valid_from` until the grace period (the catalog's
///   `grace_period_days`) has run from `past_due_since` (or, when that is unknown,
///   from `valid_to`, else from `valid_from`);
/// - `canceled` keeps access until `valid_to`, and none if `valid_to` is not set;
/// - nothing counts before `valid_from`;
/// - a grant of a paused subscription (`paused_since`) gives nothing from `valid_to` on,
///   like an ended one, but its subscription is still held: it is resumed, not bought
///   again.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Stable unique key (one per subject, product and origin), e.g. `stripe:sub_123:video`.
    #[serde(default)]
    pub id: String,
    pub product: String,
    pub tier: String,
    pub source: Source,
    pub status: Status,
    pub valid_from: Timestamp,
    #[serde(default)]
    pub valid_to: Option<Timestamp>,
    /// When payment first failed; the grace period runs from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_due_since: Option<Timestamp>,
    /// The catalog offer that granted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// The provider object it came from (`sub_...`, `cs_...`, `pay_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
    /// The store's catalog version it was sold under (the version active when its first
    /// purchase fact was read); `None` when that catalog had no version (a file, an
    /// embedded catalog, a grant from before versions): the active terms apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_version: Option<u32>,
    /// The catalog version its renewals moved it to: that of its latest renewal (a
    /// subscription's paid period) read under a version whose offer migrates its
    /// subscribers (`at_renewal`, `now`); a renewal under a version that keeps them (the
    /// default) leaves it as it was. At first, its purchase's. The terms it is on are this
    /// version's when that version's offer migrates it, else those it was sold under
    /// ([`crate::grandfather::terms_version`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_version: Option<u32>,
    /// The start of its current paid period, as the provider set it (a subscription's
    /// `current_period_start`): where billing-period windows are counted from, so they
    /// turn with the subscription's invoices (after a trial, from the trial's end).
    /// Absent for grants that are not a subscription's: counted from `valid_from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Timestamp>,
    /// When its subscription was paused (Stripe or Razorpay status `paused`, or a Stripe
    /// subscription whose `pause_collection` is set), while it is:
    /// the grant ends at the pause (`valid_to`), but the subscription still runs with its
    /// provider and is resumed, never bought again. So no offer of another plan of its
    /// product is named beside it (checkout refuses one: already subscribed), and a denial
    /// it leaves says `paused` ([`crate::decide::Reason::Paused`]). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<Timestamp>,
}

/// The id prefix of a grant an organization lends a member through a seat
/// (`org:<organization id>:<the organization's grant id>`, see
/// [`crate::seats::merge_seated_grants`]). No grant of a subject's own starts with it: own
/// grant ids begin with a provider object's id (`sub_`, `cs_`, `pay_`...) or a source
/// (`manual_grant:`, `promotion:`).
pub const LENT_PREFIX: &str = "org:";

impl Grant {
    /// Lent by an organization through a seat: it gives the member the organization's
    /// access and capabilities, never its limits (an organization's limits are counted for
    /// the whole organization, not once more on each member's own counter).
    pub fn lent_by_seat(&self) -> bool {
        self.id.starts_with(LENT_PREFIX)
    }
}

/// What a subject holds: grants and credit balances (pool -> available units).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlements {
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub balances: BTreeMap<String, i64>,
    /// From then on its balances give nothing (a snapshot's end: its grants end by then too,
    /// [`crate::snapshot::entitlements_under`]); `None` for a subject's own state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<crate::time::Timestamp>,
}

impl Entitlements {
    pub fn new(grants: Vec<Grant>) -> Self {
        Entitlements { subject: String::new(), grants, balances: BTreeMap::new(), until: None }
    }

    /// The units `pool` holds at `now` (none from [`Self::until`] on).
    pub fn balance_at(&self, pool: &str, now: crate::time::Timestamp) -> Option<&i64> {
        self.balances.get(pool).filter(|_| self.until.is_none_or(|u| now < u))
    }
}
