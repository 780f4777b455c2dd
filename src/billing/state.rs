//! The billing state: what a fold of facts produces. Serialisable (the CLI
//! prints it, the worker persists it); see the module docs of
//! [`crate::billing`] for the JSON shape.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::facts::{Item, Provider, SubStatus, Subject};
use crate::credits::Wallet;
use crate::model::{Entitlements, Grant};
use crate::seats::SeatBook;
use crate::time::Timestamp;

/// Everything the facts say, per subject and per provider object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingState {
    /// The time the state describes: the `now` it was computed for, or the
    /// latest fact if that is later. Credit lots have expired up to here.
    pub as_of: Timestamp,
    /// Per subject (`user:<id>`, `org:<id>`): grants, balances, lots, ledger.
    pub subjects: BTreeMap<String, SubjectState>,
    /// Per subscription (`stripe:sub_...`, `razorpay:sub_...`).
    pub subscriptions: BTreeMap<String, SubscriptionState>,
    /// Provider customer (`stripe:cus_...`) -> subject.
    pub customers: BTreeMap<String, Subject>,
    /// Per payment (`stripe:cs_...`, `stripe:in_...`, `razorpay:pay_...`): what it granted.
    pub payments: BTreeMap<String, PaymentRecord>,
    /// Per organization (`org:<id>`): its seats and who holds them.
    pub seats: BTreeMap<String, SeatBook>,
    /// Per invoice (or Razorpay subscription cycle) whose payment failed: what is due and
    /// whether a later payment settled it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_payments: BTreeMap<String, FailedPayment>,
    /// Facts that could not be applied yet (no subject known, payment unknown), kept
    /// so they apply as soon as the fact that attributes them arrives.
    pub pending: Vec<PendingFact>,
    /// Things worth a look that did not stop the fold (conflicting links, prices
    /// not in the catalog, bundles without chosen products).
    pub warnings: Vec<String>,
    /// Balances of a subject no fact mentions yet (the catalog's free amounts).
    pub defaults: BTreeMap<String, i64>,
    pub facts: FactCounts,
}

/// How many facts went in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactCounts {
    /// Distinct facts (after removing duplicates).
    pub unique: usize,
    /// Facts that changed nothing because a newer state was already known
    /// (an older snapshot, a snapshot after the end).
    pub stale: usize,
    pub pending: usize,
}

/// One subject's entitlements and credits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectState {
    pub subject: Subject,
    /// Grants from its subscriptions and one-time purchases (own grants only;
    /// see [`crate::billing::members::effective_entitlements`] for a member's organization grants).
    pub grants: Vec<Grant>,
    /// Pool -> units its open lots hold at `as_of`, a paused subscription's included
    /// (what may be spent: [`BillingState::entitlements_for`]).
    pub balances: BTreeMap<String, i64>,
    /// Lots and the ledger behind the balances.
    pub wallet: Wallet,
    /// Usage not covered by any balance, billed as overage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overage: Vec<OverageEntry>,
    /// Provider customers linked to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customers: Vec<String>,
    /// When it first appeared in the facts.
    pub since: Timestamp,
}

/// Usage past the balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverageEntry {
    pub request_id: String,
    pub pool: String,
    pub units: i64,
    /// Price at the catalog's overage rate (minor units), when the pool is usage-priced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    pub at: Timestamp,
}

/// A subscription as the newest facts describe it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    pub id: String,
    pub provider: Provider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    pub status: SubStatus,
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clouds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<Timestamp>,
    /// The latest period end known to be paid (or trialed): never moves back,
    /// so no update loses days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_through: Option<Timestamp>,
    /// A period end guessed from a checkout before any snapshot arrived (offer
    /// interval from the checkout time); replaced by the first snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_at_period_end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Timestamp>,
    /// When the current run of failed payments began (grace runs from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_due_since: Option<Timestamp>,
    /// A refund or dispute took back the period paid through `through`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    /// What the first payment of the latest period paid for: a past-due subscription
    /// still gives it until that period's end (a failed upgrade falls back to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_paid: Option<PeriodPaid>,
    /// Seats it provides (quantity x the offer's seats per unit).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub seats: u32,
    /// Time of the newest snapshot applied (older snapshots are ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Timestamp>,
    /// The store's catalog version it was sold under: the earliest its sale's facts were read
    /// under (its checkout, what gave its first period and that period's payments), or, after
    /// a change of plan, the one the change was read under (a new sale of the new plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_version: Option<u32>,
    /// The catalog version its renewals moved it to: that of its latest renewal (a move of
    /// its paid period past one already paid, a trial's conversion not being one; told by
    /// several facts, the one read under the earliest version) read under a version whose
    /// offer of its plan migrates its subscribers (`at_renewal`, `now`); a renewal under a
    /// version that keeps them leaves it as it was. A change of plan clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_version: Option<u32>,
    /// First time any fact mentioned it.
    pub first_seen: Timestamp,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: Timestamp,
    /// The paid-through date the reversed payment had bought.
    pub through: Timestamp,
    /// The refund or dispute.
    pub by: String,
    /// What the period's first payment paid for, which the reversal of a later one leaves
    /// (a refunded upgrade falls back to the plan the period's first invoice paid for);
    /// empty: nothing of the period stays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<Item>,
}

/// The items a period's first payment paid for, and the period's end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodPaid {
    pub until: Timestamp,
    pub items: Vec<Item>,
    /// The payment (its invoice).
    pub by: String,
}

/// A payment and what it granted, so a refund or dispute can take it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub id: String,
    /// Every id it is known by (charge, payment intent, invoice, order).
    pub refs: Vec<String>,
    pub subject: Subject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// End of the period a subscription payment paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    pub at: Timestamp,
    /// Credit lots it opened or topped up (a reversal takes back what it put in them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots: Vec<String>,
    /// Grants of a one-time purchase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    /// Amount reversed so far: its refunds and its disputes not won (a dispute of no stated
    /// amount, all of it).
    #[serde(default)]
    pub reversed: i64,
    /// Per lot it put credits in: how many of those units its reversals have reached so
    /// far (taken back, wherever they were, or found spent). A later reversal of the same
    /// payment reaches only the units past these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revoked_units: BTreeMap<String, i64>,
    /// Units its reversals took from each lot: its own, and the rollover lots its units
    /// were carried into. A later reversal takes from a rollover lot only what of this
    /// payment's units is still there (what was carried in, less what it took already).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub taken: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A subscription payment that failed: what is owed, how often the provider tried, when
/// it tries next, and until when access lasts; open until a later payment of the
/// subscription (`paid`) or its end (`ended`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPayment {
    /// The invoice (`stripe:in_...`, `razorpay:inv_...`) or Razorpay cycle (`razorpay:sub_...@<start>`).
    pub id: String,
    pub provider: Provider,
    pub subscription: String,
    /// Whose (the subscription's subject; `None` until it is attributed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// Minor units, from the latest failure that said; currency lower case.
    pub amount_due: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    /// Attempts so far: the provider's count, and never fewer than the failures reported.
    pub attempts: u32,
    /// The provider's next attempt, from the latest failure (`None`: no further attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<Timestamp>,
    pub first_failed_at: Timestamp,
    pub last_failed_at: Timestamp,
    /// Access lasts until here (the first failure of the run + the catalog's grace days)
    /// while it is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// `paid` (a later payment of the subscription) or `ended` (the subscription ended
    /// unpaid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The payment that settled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Failure facts seen (their keys), so a redelivery never counts as an attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Failed payments reported: once any is, these are the attempts (the subscription's
    /// change of state that tells of the same failure is not another attempt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Paid,
    Ended,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Paid => "paid",
            Resolution::Ended => "ended",
        }
    }
}

impl FailedPayment {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// A fact waiting for what would let it apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFact {
    pub key: String,
    #[serde(rename = "type")]
    pub fact_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    pub at: Timestamp,
    pub reason: String,
    /// The ids whose attribution would let it apply.
    pub waiting_for: Vec<String>,
}

impl BillingState {
    pub fn empty(as_of: Timestamp) -> BillingState {
        BillingState {
            as_of,
            subjects: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            customers: BTreeMap::new(),
            payments: BTreeMap::new(),
            seats: BTreeMap::new(),
            failed_payments: BTreeMap::new(),
            pending: Vec::new(),
            warnings: Vec::new(),
            defaults: BTreeMap::new(),
            facts: FactCounts::default(),
        }
    }

    /// A subject's own grants and balances, shaped for [`crate::decide`]. A
    /// subject no fact mentions gets no grants and the catalog's free amounts.
    /// `subject` is `user:<id>`, `org:<id>` or a bare user id. The balances are what may
    /// be spent at `as_of` ([`crate::usage::balances`], as a snapshot carries them): a
    /// subscription paused then gives none of its lots (they are kept, and
    /// [`SubjectState::balances`] and [`BillingState::balance`] still count them), while
    /// top-ups, free and admin credits stay.
    pub fn entitlements_for(&self, subject: &str) -> Entitlements {
        let key = Subject::parse(subject).map(|s| s.to_string()).unwrap_or_else(|_| subject.to_string());
        match self.subjects.get(&key) {
            Some(s) => {
                let balances = crate::usage::balances(&s.wallet, &s.grants, self.as_of);
                Entitlements { subject: key, grants: s.grants.clone(), balances, until: None }
            }
            None => Entitlements { subject: key, grants: Vec::new(), balances: self.defaults.clone(), until: None },
        }
    }

    pub fn subject(&self, subject: &str) -> Option<&SubjectState> {
        let key = Subject::parse(subject).map(|s| s.to_string()).unwrap_or_else(|_| subject.to_string());
        self.subjects.get(&key)
    }

    /// A pool's balance for a subject (the free amount for an unknown subject): what its
    /// open lots hold, a paused subscription's included; what may be spent is in
    /// [`BillingState::entitlements_for`].
    pub fn balance(&self, subject: &str, pool: &str) -> i64 {
        match self.subject(subject) {
            Some(s) => s.balances.get(pool).copied().unwrap_or(0),
            None => self.defaults.get(pool).copied().unwrap_or(0),
        }
    }

    /// Checks every wallet's credit invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (k, s) in &self.subjects {
            s.wallet.check_invariants().map_err(|e| format!("{k}: {e}"))?;
            for (pool, b) in &s.balances {
                if *b != s.wallet.balance(pool) {
                    return Err(format!("{k}: balance of `{pool}` is {b}, its lots hold {}", s.wallet.balance(pool)));
                }
            }
        }
        Ok(())
    }
}
