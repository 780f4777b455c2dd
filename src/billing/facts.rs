//! Billing facts: what happened, in provider-neutral terms.
//!
//! Each provider event is parsed into one or more [`Fact`]s. A fact has a
//! **key** that names the change itself (not its delivery): two deliveries of
//! one event, or two events Stripe sent for one change, give the same key, and
//! a set of facts keeps one fact per key. A fact's `at` is the provider's own
//! time for the change (the event's creation time), so facts order by when
//! things happened, not by when they arrived.

use serde::{de, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::fmt;

use crate::catalog::SubjectKind;
use crate::time::Timestamp;

/// Who sent the fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Stripe,
    Razorpay,
    /// The application itself: usage, seat assignments, customer links, adjustments.
    App,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Razorpay => "razorpay",
            Provider::App => "app",
        }
    }
    /// A provider object's id as used in state keys: `stripe:sub_123`.
    pub fn object(self, id: &str) -> String {
        format!("{}:{id}", self.as_str())
    }
}

/// Who holds entitlements: a user or an organization. Written `user:<id>` or
/// `org:<id>`; a bare id reads as a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
}

impl Subject {
    pub fn user(id: impl Into<String>) -> Subject {
        Subject { kind: SubjectKind::User, id: id.into() }
    }
    pub fn org(id: impl Into<String>) -> Subject {
        Subject { kind: SubjectKind::Organization, id: id.into() }
    }
    pub fn is_org(&self) -> bool {
        self.kind == SubjectKind::Organization
    }
    /// `user:u1`, `org:o1` (also `organization:o1`), or a bare id (a user).
    pub fn parse(s: &str) -> Result<Subject, String> {
        let s = s.trim();
        let (kind, id) = if let Some(id) = s.strip_prefix("user:") {
            (SubjectKind::User, id)
        } else if let Some(id) = s.strip_prefix("org:").or_else(|| s.strip_prefix("organization:")) {
            (SubjectKind::Organization, id)
        } else {
            (SubjectKind::User, s)
        };
        if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_control()) {
            return Err(format!("`{s}` is not a subject (write user:<id> or org:<id>)"));
        }
        Ok(Subject { kind, id: id.to_string() })
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SubjectKind::User => write!(f, "user:{}", self.id),
            SubjectKind::Organization => write!(f, "org:{}", self.id),
        }
    }
}

impl std::hash::Hash for Subject {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.is_org(), &self.id).hash(h)
    }
}

impl PartialOrd for Subject {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Subject {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.is_org(), &self.id).cmp(&(other.is_org(), &other.id))
    }
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subject::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A provider-neutral subscription status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubStatus {
    /// Not paid for yet (Stripe `incomplete`, Razorpay `created` / `authenticated`): no access.
    Incomplete,
    Trialing,
    Active,
    /// A payment failed (Stripe `past_due` / `unpaid`, Razorpay `pending` / `halted`): the
    /// catalog's grace period applies.
    PastDue,
    /// Paused: no access from the pause on.
    Paused,
    /// Canceled, keeping access until the period ends (Razorpay `cancelled` / `completed`).
    /// Terminal.
    Canceled,
    /// Ended now (Stripe `customer.subscription.deleted`, `incomplete_expired`, Razorpay
    /// `expired`). Terminal.
    Ended,
}

impl SubStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, SubStatus::Canceled | SubStatus::Ended)
    }
    /// Still running: paid, trialing, past due or paused; not ended, not canceled, and not
    /// a first payment that never went through.
    pub fn is_running(self) -> bool {
        !self.is_terminal() && self != SubStatus::Incomplete
    }
}

/// One item (line) of a subscription or invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Provider price / plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The catalog offer it maps to (`None`: not sold through the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    pub quantity: u32,
}

/// A purchase completed (or failed) at checkout: a Stripe Checkout session or
/// a Razorpay captured payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// The provider object (`stripe:cs_...`, `razorpay:pay_...`).
    pub id: String,
    /// `subscription` or `payment` (one-time).
    pub mode: PurchaseMode,
    pub outcome: PurchaseOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    pub quantity: u32,
    /// Products chosen for a bundle offer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clouds: Vec<String>,
    /// Other ids of the payment (payment intent, invoice, order), to match refunds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_refs: Vec<String>,
    /// Amount paid in minor units, and the currency (lower case).
    #[serde(default)]
    pub amount: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    /// Nothing was charged (`no_payment_required`: a free trial or a 100% coupon).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_payment_required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseMode {
    Subscription,
    Payment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseOutcome {
    /// Paid (or nothing to pay): grant.
    Paid,
    /// Completed but the payment is still processing (async methods): grant nothing yet.
    Unpaid,
    /// The async payment failed: grant nothing.
    Failed,
}

/// A snapshot of a subscription object at `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSnapshot {
    /// `stripe:sub_...`, `razorpay:sub_...`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    pub status: SubStatus,
    /// Every item, with its quantity (seats).
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_at_period_end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Subject named on the subscription itself (metadata / notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clouds: Vec<String>,
    /// Told by the provider's creation of the subscription (Stripe's
    /// `customer.subscription.created`): of its snapshots of one second, it is the first, as
    /// nothing updates a subscription before it exists. A change made within the second of a
    /// checkout (a plan switched at once) is then the state that holds, not whichever of the
    /// two sorts last by its digest. Left out of the key's digest, so a snapshot's key is what
    /// it was before this was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// The subscription as it was before this update ([`SubscriptionSnapshot::digest`] of
    /// it), when the event tells it (Stripe's `previous_attributes`). Of a subscription's
    /// snapshots of one second, one that another follows is folded before it, whatever
    /// their digests' order ([`FactSet::sorted`](super::FactSet::sorted)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
}

/// Whether two bodies say the same, how a snapshot was told left aside: a subscription's
/// creation and an update of the same second that read the same are one fact (one key), the
/// second telling known already, not a conflict.
fn told_alike(a: &FactBody, b: &FactBody) -> bool {
    match (a, b) {
        (FactBody::Subscription(x), FactBody::Subscription(y)) => x.said() == y.said(),
        _ => a == b,
    }
}

impl SubscriptionSnapshot {
    /// A short digest of what the snapshot says of the subscription (not of how it was
    /// told: `created` and `follows` are left out), as its fact's key carries it.
    pub fn digest(&self) -> String {
        digest(&self.said())
    }

    /// What the snapshot says of the subscription, how it was told (`created`, `follows`)
    /// left aside.
    fn said(&self) -> SubscriptionSnapshot {
        SubscriptionSnapshot { created: false, follows: None, ..self.clone() }
    }
}

/// A paid subscription invoice (Stripe `invoice.paid`, Razorpay `subscription.charged`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePaid {
    /// `stripe:in_...`, `razorpay:inv_...` (or the payment id when there is no invoice).
    pub id: String,
    pub subscription: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The subscription lines it paid for.
    #[serde(default)]
    pub items: Vec<Item>,
    /// The service period it paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<Timestamp>,
    #[serde(default)]
    pub amount: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    /// Charge, payment intent, payment ids, to match refunds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_refs: Vec<String>,
}

/// A failed subscription payment (Stripe `invoice.payment_failed`, Razorpay
/// `subscription.pending` / `.halted` and a `payment.failed` that names its subscription).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceFailed {
    /// What is due: the invoice (`stripe:in_...`), or a Razorpay subscription's cycle
    /// (`razorpay:sub_...@<start>`: `payment.failed` and `subscription.pending` tell
    /// the same failed charge, the one naming its invoice, the other not).
    pub id: String,
    pub subscription: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The provider's count of attempts so far (0 when it does not say).
    #[serde(default)]
    pub attempt: u32,
    /// What is due, in minor units, and its currency (lower case); 0 and empty when the
    /// event does not say.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub amount_due: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    /// When the provider tries again (`None`: it does not say, or it stopped trying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<Timestamp>,
    /// The failed payment, when the event is one payment's failure (Razorpay's
    /// `payment.failed`): each is one attempt, whatever else tells of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
}

/// Money returned: a refund or a dispute, of the whole payment or of part of it. A
/// payment's refunds and disputes add up; each takes back its share of what the payment
/// granted (the reversed amount over the payment's), all of it once the whole payment is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    /// The refunded charge / payment (`stripe:ch_...`, `razorpay:pay_...`), or the dispute.
    pub id: String,
    /// Every id the original payment may be known by (charge, payment intent, invoice).
    pub payment_refs: Vec<String>,
    /// Amount of the original payment, when the event tells it (0: it does not, as a
    /// Stripe dispute or a Razorpay refund without its payment; the fold then reads it from
    /// the payment's own fact).
    pub amount: i64,
    /// A refund: how much of the payment is refunded so far, when the event tells it (0:
    /// it does not, see `own_amount`). A dispute: the disputed
    /// amount, which may be part of the payment's (0: not said, the whole payment). The
    /// fold reads a dispute's share against the payment's amount from the payment's own
    /// fact, never against this fact's `amount` (in disputes read before, the disputed one).
    pub reversed: i64,
    /// A refund's own amount, when the event tells each refund apart (Razorpay: one event
    /// per refund, `id` the refund); 0 when it tells only the total so far (Stripe's
    /// `amount_refunded`). A payment's refunds told one by one add up in the fold, so a
    /// refund whose event names neither the payment's amount nor the total (a Razorpay
    /// refund without its payment) takes back its own share, not the whole payment.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub own_amount: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    /// A dispute's final outcome, when the event reports the dispute closed
    /// (`None`: a refund, or a dispute still open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<DisputeOutcome>,
}

/// How a dispute ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    /// Decided for the merchant, or an inquiry that closed without a chargeback
    /// (Stripe `won`, `warning_closed`, `prevented`; Razorpay `won`, `closed`): the payment
    /// stands, so the dispute takes nothing back.
    Won,
    /// Decided for the customer (Stripe `lost`; Razorpay `lost`): the dispute takes back
    /// what the payment granted.
    Lost,
    /// Closed because the merchant refunded the disputed charge (Stripe's retired
    /// `charge_refunded`): the refund, told by its own event, takes back what it refunded;
    /// the dispute takes nothing more, as a won one (else the same money would be taken
    /// back twice).
    Refunded,
}

/// A payment applied to an invoice (Stripe's `invoice_payment`, API 2025-03-31 on):
/// the link from a payment intent or charge to the invoice it paid. Since that
/// version charges and payment intents no longer name their invoice, so a refund
/// or dispute reaches a subscription invoice only through this link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePayment {
    /// `stripe:inpay_...`
    pub id: String,
    /// The invoice it paid (`stripe:in_...`).
    pub invoice: String,
    /// The payment's ids (payment intent, charge).
    pub payment_refs: Vec<String>,
    #[serde(default)]
    pub amount: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
}

impl Reversal {
    /// Whether this event alone says the whole payment is reversed: it names the payment's
    /// amount and reverses all of it. Whether a reversal that names no payment's amount (a
    /// dispute) is whole is for the fold to say, from the payment's own fact.
    pub fn is_full(&self) -> bool {
        self.amount > 0 && self.reversed >= self.amount
    }
}

/// Usage consumed by a request (recorded by the application once it is done).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageFact {
    pub request_id: String,
    pub subject: Subject,
    pub pool: String,
    pub units: u64,
    /// The usage price's model and quality (usage-priced pools), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// What the charge actually took, lot by lot, when it was made. A fold applies
    /// exactly these takes and never plans the usage again. `None`: a record from before
    /// charges kept their takes (folded by planning it, as it was then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takes: Option<Vec<UsageTake>>,
    /// Units no lot covered, billed as overage, and what they cost (minor units).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub overage_units: u64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub overage_cost: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
}

/// Units a charge took from one credit lot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTake {
    pub lot: String,
    pub units: i64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

impl UsageFact {
    /// The units the record accounts for: taken from lots plus overage. A recorded
    /// charge always accounts for exactly its `units`.
    pub fn accounted(&self) -> Option<u64> {
        let taken = self.takes.as_ref()?.iter().try_fold(0u64, |a, t| a.checked_add(u64::try_from(t.units).ok()?))?;
        taken.checked_add(self.overage_units)
    }
}

/// A subject seen by the app for the first time (its first request): from then on it holds
/// what the catalog gives every subject (the free amounts of its credit pools), whether or
/// not it ever pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub subject: Subject,
}

/// A seat of an organization given to (or taken from) a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    pub org: Subject,
    pub user: Subject,
    /// Unique id of the request (idempotency).
    pub request_id: String,
    /// Who gave or took it (a user id; empty: an operator or a fact from before it was
    /// recorded). Not part of the fact's key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
}

/// A provider customer known to belong to a subject (the app's own record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerLink {
    /// `stripe:cus_...`, `razorpay:cust_...`.
    pub customer: String,
    pub subject: Subject,
}

/// An operator's attribution of a kept provider event: the provider objects it names
/// (its customer, subscription, checkout session or payment) belong to `subject`, and,
/// when the event's prices map to no catalog offer, they sold `offer`. Gathered with the
/// other links before a fold, so every fact of those objects, earlier or later, is folded
/// as if the event had named the subject itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributed {
    /// The kept delivery it settles (`stripe:evt_...`, `razorpay:<event id>`). Not named
    /// `event`: a fact's own `event` (the delivery it was read from) shares its object.
    pub delivery: String,
    pub subject: Subject,
    /// `stripe:cus_...`, `razorpay:cust_...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// `stripe:sub_...`, `razorpay:sub_...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The purchase itself (`stripe:cs_...`, `razorpay:pay_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
    /// The offer sold, when the event's own prices and metadata name none the catalog has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// A bundle's chosen products, when the event's own choice is missing or wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clouds: Vec<String>,
    /// The user the event's own link named, of whom the store had no record when the
    /// operator attributed it (a deleted account, another environment's id): that link
    /// gives way to this one, for these objects, whatever that user does later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Subject>,
    /// Who attributed it (the operator's name, as the operator gave it).
    pub by: String,
}

impl Attributed {
    /// The provider objects it attributes.
    pub fn objects(&self) -> impl Iterator<Item = &String> {
        self.customer.iter().chain(self.subscription.iter()).chain(self.payment.iter())
    }
}

/// Credits given by hand (compensation, promotion, migration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAdjustment {
    pub id: String,
    pub subject: Subject,
    pub pool: String,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Credits given until then (a promotion); `None`: they never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
}

impl CreditAdjustment {
    /// An operator's credit: its id is `admin:<subject>:<operator's id, escaped>:<pool>`,
    /// so no id an operator types can name another key, and one id given to two subjects
    /// is two credits.
    pub fn by_operator(subject: Subject, id: &str, pool: &str, amount: i64, reason: &str, valid_to: Option<Timestamp>) -> Self {
        CreditAdjustment {
            id: format!("admin:{subject}:{}:{pool}", key_part(id)),
            subject,
            pool: pool.to_string(),
            amount,
            reason: reason.to_string(),
            valid_to,
        }
    }

    /// The key of the lot a positive adjustment opens.
    pub fn lot_key(&self) -> String {
        format!("adjustment:{}", self.id)
    }
}

/// A tier of a product given by hand (an operator's grant or a promotion), for a
/// window. The latest fact for one (subject, source, id) holds; once its window has
/// ended the grant is closed (`canceled`, access to `valid_to`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantGiven {
    /// The grant's id, unique per subject and source.
    pub id: String,
    pub subject: Subject,
    pub product: String,
    pub tier: String,
    /// `manual_grant` or `promotion`.
    pub source: crate::model::Source,
    pub valid_from: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
}

/// What a fact says. Stored inside the fact's own JSON object: `type` names the
/// kind (snake case) and the body's fields follow (see [`Fact`]'s `Deserialize`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FactBody {
    CustomerLinked(CustomerLink),
    Purchase(Purchase),
    Subscription(SubscriptionSnapshot),
    InvoicePaid(InvoicePaid),
    InvoiceFailed(InvoiceFailed),
    InvoicePayment(InvoicePayment),
    Refund(Reversal),
    Dispute(Reversal),
    Usage(UsageFact),
    SeatAssigned(SeatChange),
    SeatReleased(SeatChange),
    CreditAdjustment(CreditAdjustment),
    GrantGiven(GrantGiven),
    Joined(Joined),
    Attributed(Attributed),
}

impl FactBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            FactBody::CustomerLinked(_) => "customer_linked",
            FactBody::Attributed(_) => "attributed",
            FactBody::Purchase(_) => "purchase",
            FactBody::Subscription(_) => "subscription",
            FactBody::InvoicePaid(_) => "invoice_paid",
            FactBody::InvoiceFailed(_) => "invoice_failed",
            FactBody::InvoicePayment(_) => "invoice_payment",
            FactBody::Refund(_) => "refund",
            FactBody::Dispute(_) => "dispute",
            FactBody::Usage(_) => "usage",
            FactBody::SeatAssigned(_) => "seat_assigned",
            FactBody::SeatReleased(_) => "seat_released",
            FactBody::CreditAdjustment(_) => "credit_adjustment",
            FactBody::GrantGiven(_) => "grant_given",
            FactBody::Joined(_) => "joined",
        }
    }

    /// Tie-break between facts of the same second: attribution first, then
    /// snapshots (a subscription's creation before its updates), then payments, usage, and
    /// reversals last. Seats are freed before they are given: a seat taken from one member
    /// and given to another within one second is held (one member assigned and released
    /// within one second stays seated; the release, answered `still_seated`, is told again a
    /// second later).
    fn rank(&self) -> u8 {
        match self {
            FactBody::CustomerLinked(_)
            | FactBody::Attributed(_)
            | FactBody::InvoicePayment(_)
            | FactBody::Joined(_) => 0,
            FactBody::Purchase(p) if p.outcome == PurchaseOutcome::Unpaid => 1,
            FactBody::Subscription(s) if s.created => 2,
            FactBody::Subscription(_) => 3,
            FactBody::Purchase(p) if p.outcome == PurchaseOutcome::Paid => 4,
            FactBody::InvoiceFailed(_) => 5,
            FactBody::InvoicePaid(_) => 6,
            FactBody::CreditAdjustment(_) | FactBody::GrantGiven(_) => 7,
            FactBody::SeatReleased(_) => 8,
            FactBody::SeatAssigned(_) => 9,
            FactBody::Usage(_) => 10,
            FactBody::Refund(_) => 11,
            FactBody::Dispute(_) => 12,
            FactBody::Purchase(_) => 13,
        }
    }
}

/// One billing fact. Stored as one JSON object: `key`, `provider`, `event` (when
/// not empty), `at`, then the body's `type` and fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact {
    /// Identity of the change: facts with equal keys are one fact.
    pub key: String,
    pub provider: Provider,
    /// The provider event (delivery) it was read from, for tracing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    /// When it happened, by the provider's clock.
    pub at: Timestamp,
    #[serde(flatten)]
    pub body: FactBody,
    /// The store's catalog version active when the fact was read from its event (see
    /// [`crate::catalog::Catalog::version`]): what a purchase or renewal was sold under.
    /// Left out when the catalog had none, so facts without it are what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_version: Option<u32>,
}

/// The kinds of body, by their `type` tag. Read as a variant identifier, like the
/// tag of an internally tagged enum: unknown names list the known ones.
#[derive(Clone, Copy, Deserialize)]
#[serde(variant_identifier, rename_all = "snake_case")]
enum BodyKind {
    CustomerLinked,
    Purchase,
    Subscription,
    InvoicePaid,
    InvoiceFailed,
    InvoicePayment,
    Refund,
    Dispute,
    Usage,
    SeatAssigned,
    SeatReleased,
    CreditAdjustment,
    GrantGiven,
    Joined,
    Attributed,
}

impl BodyKind {
    /// The body of this kind from the fact's remaining fields. Reading every body
    /// from one JSON object, rather than through serde's buffered, generic path for
    /// `flatten` with an internal tag, links one reader per body, shared by every
    /// input format (the worker's wasm: 845.6 -> 804.4 KB). The object itself is the
    /// deserializer (not a `Value` holding it), so no reader of a body's array form
    /// is linked either.
    fn read(self, v: serde_json::Map<String, serde_json::Value>) -> Result<FactBody, serde_json::Error> {
        Ok(match self {
            BodyKind::CustomerLinked => FactBody::CustomerLinked(Deserialize::deserialize(v)?),
            BodyKind::Attributed => FactBody::Attributed(Deserialize::deserialize(v)?),
            BodyKind::Purchase => FactBody::Purchase(Deserialize::deserialize(v)?),
            BodyKind::Subscription => FactBody::Subscription(Deserialize::deserialize(v)?),
            BodyKind::InvoicePaid => FactBody::InvoicePaid(Deserialize::deserialize(v)?),
            BodyKind::InvoiceFailed => FactBody::InvoiceFailed(Deserialize::deserialize(v)?),
            BodyKind::InvoicePayment => FactBody::InvoicePayment(Deserialize::deserialize(v)?),
            BodyKind::Refund => FactBody::Refund(Deserialize::deserialize(v)?),
            BodyKind::Dispute => FactBody::Dispute(Deserialize::deserialize(v)?),
            BodyKind::Usage => FactBody::Usage(Deserialize::deserialize(v)?),
            BodyKind::SeatAssigned => FactBody::SeatAssigned(Deserialize::deserialize(v)?),
            BodyKind::SeatReleased => FactBody::SeatReleased(Deserialize::deserialize(v)?),
            BodyKind::CreditAdjustment => FactBody::CreditAdjustment(Deserialize::deserialize(v)?),
            BodyKind::GrantGiven => FactBody::GrantGiven(Deserialize::deserialize(v)?),
            BodyKind::Joined => FactBody::Joined(Deserialize::deserialize(v)?),
        })
    }
}

/// Reads the object once: the common fields and the `type` tag by name, every
/// other field into a JSON object that the tagged body is then read from. Key
/// order does not matter (jsonb reorders keys); unknown fields are ignored;
/// missing, duplicate and malformed fields are errors naming the field.
impl<'de> Deserialize<'de> for Fact {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Fact;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a billing fact (a JSON object)")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Fact, A::Error> {
                fn once<T, E: de::Error>(slot: &mut Option<T>, v: T, name: &'static str) -> Result<(), E> {
                    match slot.replace(v) {
                        Some(_) => Err(E::duplicate_field(name)),
                        None => Ok(()),
                    }
                }
                let (mut key, mut provider, mut event, mut at, mut kind) = (None, None, None, None, None);
                let mut catalog_version = None;
                let mut rest = serde_json::Map::new();
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "key" => once(&mut key, map.next_value::<String>()?, "key")?,
                        "provider" => once(&mut provider, map.next_value::<Provider>()?, "provider")?,
                        "event" => once(&mut event, map.next_value::<String>()?, "event")?,
                        "at" => once(&mut at, map.next_value::<Timestamp>()?, "at")?,
                        "type" => once(&mut kind, map.next_value::<BodyKind>()?, "type")?,
                        "catalog_version" => once(&mut catalog_version, map.next_value::<Option<u32>>()?, "catalog_version")?,
                        _ => {
                            let v = map.next_value::<serde_json::Value>()?;
                            if rest.contains_key(&k) {
                                return Err(de::Error::custom(format_args!("duplicate field `{k}`")));
                            }
                            rest.insert(k, v);
                        }
                    }
                }
                let key = key.ok_or_else(|| de::Error::missing_field("key"))?;
                let provider = provider.ok_or_else(|| de::Error::missing_field("provider"))?;
                let at = at.ok_or_else(|| de::Error::missing_field("at"))?;
                let kind: BodyKind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
                let body = kind.read(rest).map_err(de::Error::custom)?;
                Ok(Fact { key, provider, event: event.unwrap_or_default(), at, body, catalog_version: catalog_version.flatten() })
            }
        }
        d.deserialize_map(V)
    }
}

/// One part of a key built from text a caller chose (an admin's credit id, a request
/// id): `%` and `:` are percent-escaped, so the part can never reach across the `:`
/// separators of the key it is put in, and two different texts never give one key.
pub fn key_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c if c.is_control() => out.push_str(&format!("%{:02X}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out
}

/// The facts of one event read under the store's catalog version `version` (see
/// [`Fact::catalog_version`]).
pub(crate) fn stamped(mut facts: Vec<Fact>, version: Option<u32>) -> Vec<Fact> {
    for f in &mut facts {
        f.catalog_version = version;
    }
    facts
}

/// Canonical order: by time, then kind, then key. Total on a set (keys are unique).
pub fn canonical_cmp(a: &Fact, b: &Fact) -> Ordering {
    a.at.cmp(&b.at).then(a.body.rank().cmp(&b.body.rank())).then(a.key.cmp(&b.key))
}

/// A short digest of a value's JSON form, to tell snapshots of one object apart.
pub(crate) fn digest<T: Serialize>(v: &T) -> String {
    let bytes = serde_json::to_vec(v).expect("facts serialise");
    let h = Sha256::digest(&bytes);
    hex::encode(&h[..8])
}

impl Fact {
    /// The app's first sight of a subject: one per subject, keyed by it.
    pub fn joined(subject: Subject, at: Timestamp) -> Fact {
        Fact {
            catalog_version: None,
            key: format!("joined:{subject}"),
            provider: Provider::App,
            event: String::new(),
            at,
            body: FactBody::Joined(Joined { subject }),
        }
    }

    /// The fact a subject needs before its first use when the catalog gives every user
    /// credits (free amounts) and its lots hold none of them yet: a user who never paid
    /// holds them from the first request.
    pub fn joining(catalog: &crate::catalog::Catalog, subject: &Subject, wallet: &crate::credits::Wallet, at: Timestamp) -> Option<Fact> {
        let gives = !subject.is_org() && catalog.doc.credit_pools.iter().any(|p| p.free_amount > 0);
        let holds = wallet.lots.iter().any(|l| l.kind == crate::credits::LotKind::Free);
        (gives && !holds).then(|| Fact::joined(subject.clone(), at))
    }

    /// Whether `other` tells this same fact again: the same key and content, told at
    /// another time (an operator's credit sent twice, a second apart). Such a fact is
    /// known already: it is neither written again nor a conflict.
    pub fn restates(&self, other: &Fact) -> bool {
        self.key == other.key && self.provider == other.provider && told_alike(&self.body, &other.body)
    }

    /// A usage fact, keyed by its request id.
    pub fn usage(u: UsageFact, at: Timestamp) -> Fact {
        Fact {
            catalog_version: None,
            key: format!("usage:{}", u.request_id),
            provider: Provider::App,
            event: String::new(),
            at,
            body: FactBody::Usage(u),
        }
    }
    /// The app's own record that a provider customer belongs to a subject.
    pub fn customer_link(provider: Provider, customer_id: &str, subject: Subject, at: Timestamp) -> Fact {
        let customer = provider.object(customer_id);
        Fact {
            catalog_version: None,
            key: format!("link:{customer}:{subject}"),
            provider: Provider::App,
            event: String::new(),
            at,
            body: FactBody::CustomerLinked(CustomerLink { customer, subject }),
        }
    }
    /// An operator's attribution of a kept event. Keyed by the event and what it says (not
    /// by who said it or when), so a retry of the same attribution is the same fact.
    pub fn attributed(a: Attributed, at: Timestamp) -> Fact {
        let said = Attributed { by: String::new(), ..a.clone() };
        let key = format!("attributed:{}:{}:{}", key_part(&a.delivery), a.subject, digest(&said));
        Fact { key, provider: Provider::App, event: String::new(), at, body: FactBody::Attributed(a), catalog_version: None }
    }
    pub fn seat_assigned(org: Subject, user: Subject, request_id: &str, at: Timestamp) -> Fact {
        Fact {
            catalog_version: None,
            key: format!("seat:{org}:{user}:assign:{request_id}"),
            provider: Provider::App,
            event: String::new(),
            at,
            body: FactBody::SeatAssigned(SeatChange { org, user, request_id: request_id.into(), by: String::new() }),
        }
    }
    pub fn seat_released(org: Subject, user: Subject, request_id: &str, at: Timestamp) -> Fact {
        Fact {
            catalog_version: None,
            key: format!("seat:{org}:{user}:release:{request_id}"),
            provider: Provider::App,
            event: String::new(),
            at,
            body: FactBody::SeatReleased(SeatChange { org, user, request_id: request_id.into(), by: String::new() }),
        }
    }
    /// The same seat fact, saying who gave or took it.
    pub fn by(mut self, who: &str) -> Fact {
        if let FactBody::SeatAssigned(s) | FactBody::SeatReleased(s) = &mut self.body {
            s.by = who.to_string();
        }
        self
    }
    pub fn credit_adjustment(a: CreditAdjustment, at: Timestamp) -> Fact {
        Fact {
            catalog_version: None,
            key: format!("adjustment:{}", a.id),
            provider: Provider::App,
            event: String::new(),
            at,
            body: FactBody::CreditAdjustment(a),
        }
    }

    /// A grant given by hand. Keyed by its subject, source, id and content: sending the
    /// same grant again is the same fact; a changed one is a new fact, and the latest
    /// holds.
    pub fn grant_given(g: GrantGiven, at: Timestamp) -> Fact {
        let key = format!("grant:{}:{}:{}:{}", g.subject, g.source.as_str(), key_part(&g.id), digest(&g));
        Fact { key, provider: Provider::App, event: String::new(), at, body: FactBody::GrantGiven(g), catalog_version: None }
    }

    /// The ids this fact touches (subjects, customers, subscriptions, payments),
    /// for a store that loads every fact related to a subject. A subject's state
    /// needs the facts reachable from it through these references.
    pub fn refs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |s: String| {
            if !out.contains(&s) {
                out.push(s)
            }
        };
        match &self.body {
            FactBody::CustomerLinked(l) => {
                push(l.customer.clone());
                push(l.subject.to_string());
            }
            FactBody::Attributed(a) => {
                a.objects().for_each(|o| push(o.clone()));
                push(a.subject.to_string());
                a.replaces.iter().for_each(|s| push(s.to_string()));
            }
            FactBody::Purchase(p) => {
                push(p.id.clone());
                p.subject.iter().for_each(|s| push(s.to_string()));
                p.customer.iter().for_each(|c| push(c.clone()));
                p.subscription.iter().for_each(|c| push(c.clone()));
                p.payment_refs.iter().for_each(|c| push(c.clone()));
            }
            FactBody::Subscription(s) => {
                push(s.id.clone());
                s.customer.iter().for_each(|c| push(c.clone()));
                s.subject.iter().for_each(|c| push(c.to_string()));
            }
            FactBody::InvoicePaid(i) => {
                push(i.id.clone());
                push(i.subscription.clone());
                i.customer.iter().for_each(|c| push(c.clone()));
                i.payment_refs.iter().for_each(|c| push(c.clone()));
            }
            FactBody::InvoiceFailed(i) => {
                push(i.id.clone());
                push(i.subscription.clone());
                i.customer.iter().for_each(|c| push(c.clone()));
            }
            FactBody::InvoicePayment(p) => {
                push(p.id.clone());
                push(p.invoice.clone());
                p.payment_refs.iter().for_each(|c| push(c.clone()));
            }
            FactBody::Refund(r) | FactBody::Dispute(r) => {
                push(r.id.clone());
                r.payment_refs.iter().for_each(|c| push(c.clone()));
            }
            FactBody::Usage(u) => push(u.subject.to_string()),
            FactBody::SeatAssigned(s) | FactBody::SeatReleased(s) => {
                push(s.org.to_string());
                push(s.user.to_string());
            }
            FactBody::CreditAdjustment(a) => push(a.subject.to_string()),
            FactBody::GrantGiven(g) => push(g.subject.to_string()),
            FactBody::Joined(j) => push(j.subject.to_string()),
        }
        out
    }
}
