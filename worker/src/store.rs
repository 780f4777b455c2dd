//! The store, typed: every call the routes make, with its request and its answer as Rust
//! values. [`SupabaseStore`] sends them to Supabase's REST API (one SQL function each,
//! one transaction each); `crate::memory::MemoryStore` keeps them in memory with the same
//! semantics, so every route is tested natively and fast, and the end-to-end suite runs
//! the same routes against PostgreSQL.
//!
//! Conflicts are typed ([`Conflict`]): a fold that must start again, a request id reused
//! for another request, anything else; each SQL function says which with its own hint.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use tollgate::alerts::{AlertCheck, OpenAlert};
use tollgate::billing::effects::SubjectRows;
use tollgate::billing::facts::Fact;
use tollgate::billing::reducer::UsageTotals;
use tollgate::catalog::Provider;
use tollgate::charge::Charge;
use tollgate::checkout::{Account, Held, Role};
use tollgate::meter::{Count, OverageChoice};
use tollgate::orgs::{Invite, Org, OrgMembership, Seats};
use tollgate::time::Timestamp;

use crate::http::Transport;
use crate::state::{Subject, SubjectState};
pub use crate::supabase::{Conflict, StoreError};
use crate::supabase::SupabaseClient;

/// A delivery of a provider event, as stored with its facts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    pub payload: Value,
}

/// What a fold reads: the cluster of facts related to some references (charges apart)
/// and the charges as per-lot totals.
#[derive(Clone, Debug, Default)]
pub struct FoldInput {
    pub refs: BTreeSet<String>,
    /// How many facts the cluster holds (the fold's optimistic version).
    pub version: i64,
    pub facts: Vec<Fact>,
    pub usage: UsageTotals,
}

/// Whether a delivery's facts still wait for something.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PendingNote {
    pub keep: bool,
    pub waiting_for: Vec<String>,
    pub reason: String,
}

/// Everything one fold writes, in one transaction.
#[derive(Clone, Debug)]
pub struct FoldWrite<'a> {
    pub event: Option<&'a Delivery>,
    pub facts: &'a [Fact],
    pub expected_version: i64,
    pub refs: &'a BTreeSet<String>,
    pub subjects: Vec<(Subject, SubjectRows)>,
    pub pending: PendingNote,
    /// Kept deliveries (provider, event id) whose facts this fold applied.
    pub resolved: Vec<(String, String)>,
    /// The time the fold was made as of (the worker's clock). The SQL store records its own
    /// (`billing_subjects.updated_at`, the database's clock); the in-memory store, which has
    /// none, this one.
    pub now: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoldStatus {
    Applied,
    Kept,
    Duplicate,
}

/// What a fold's write came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldApplied {
    pub status: FoldStatus,
    pub version: i64,
    /// Users the database does not know yet (their rows were not written; the delivery
    /// waits for them).
    pub unknown: Vec<String>,
    /// Facts whose keys were stored before with other content (nothing replaced).
    pub conflicts: Vec<String>,
}

/// A charge's record as the store answers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Charged {
    pub usage_id: Value,
    pub record: Value,
    /// A replay's balances as stored now; for a charge made now, `Null`: the worker
    /// counts them from its state and `left`.
    pub balances: Value,
    /// What each lot the charge took from holds after its take (a charge made now).
    pub left: BTreeMap<String, i64>,
}

/// What the store did with a charge.
#[derive(Clone, Debug)]
pub enum ChargeAnswer {
    Charged(Charged),
    /// The request id was charged before: its first answer.
    Replayed(Charged),
    /// The state the charge was decided from changed: decide again from this one.
    Stale(Box<SubjectState>),
}

/// What the store did with a counted use of a limit (`tollgate_track`).
#[derive(Clone, Debug, PartialEq)]
pub enum Counted {
    /// Counted: the window's count is now `used`.
    Counted { usage_id: Value, used: u64 },
    /// The request id was counted before; the window's count now.
    Replayed { usage_id: Value, used: u64 },
    /// Counting it would pass the limit: nothing written; the window's count.
    LimitReached { used: u64 },
}

/// What the store did with a hold (`tollgate_capture`, `tollgate_release`).
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    pub usage_id: Value,
    /// `captured` or `released`.
    pub status: String,
    /// It was settled so before (a retry).
    pub replayed: bool,
    /// A release gave units back to a lot closed meanwhile: the subject is to be folded
    /// again, so the lot is what its facts say (see 20261206008000).
    pub refold: bool,
    /// What was settled (`None` for a retry): its alert checks are applied again.
    pub settled: Option<SettledUse>,
}

/// What the store answers a settling ([`Store::settle`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SettleAnswer {
    /// Settled now, or before (a retry: [`Settled::replayed`]).
    Settled(Settled),
    /// The subject has no such usage.
    NotFound,
    /// A use the caller made for an organization it no longer acts for, by the core's
    /// `seats::may_settle` on the membership and seat read in the settling's own
    /// transaction (removed, or its seat taken, since): nothing changed.
    NotActing(tollgate::seats::ActError),
}

/// A usage to settle or just settled: whose it is, and the pool it held or the limit
/// counter it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledUse {
    pub owner: Subject,
    /// A hold's credit pool.
    pub pool: Option<String>,
    /// A use of a limit: the limit and its counter (`<limit>` or `<limit>:<scope>`).
    pub limit: Option<(String, String)>,
    /// Where the use stands as read (`charged`, `held`, `captured`, `released`).
    pub status: String,
}

impl SettledUse {
    /// From a `usage_records` row (`user_id`, `organization_id`, `pool`, `feature`, `counter`, `status`).
    pub fn from_row(row: &Value) -> Option<SettledUse> {
        let owner = match (row["organization_id"].as_str(), row["user_id"].as_str()) {
            (Some(o), _) => Subject::Org(o.to_string()),
            (None, Some(u)) => Subject::user(u),
            (None, None) => return None,
        };
        let text = |k: &str| row[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let limit = match (text("feature"), text("counter")) {
            (Some(f), Some(c)) => Some((f, c)),
            _ => None,
        };
        Some(SettledUse { owner, pool: text("pool"), limit, status: text("status").unwrap_or_else(|| "charged".into()) })
    }
}

/// A hold past its end, for the scheduled run.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpiredHold {
    pub usage_id: String,
    /// When the hold ended (with `usage_id`, the cursor of the next page).
    pub hold_until: Timestamp,
    pub subject: Subject,
}

/// A kept delivery as an operator sees it (`pending_webhook_events`): why it waits, and
/// its body, which the core reads again.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptEvent {
    /// The keyset cursor of the listing (the order deliveries were kept in).
    pub id: i64,
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    pub reason: String,
    pub waiting_for: Vec<String>,
    /// When it was kept, as the store wrote it (`null` in memory: that store has no clock).
    pub received_at: Value,
    pub attempts: u32,
    /// It was applied since (by a later event, the scheduled run, an attribution).
    pub resolved: bool,
    pub payload: Value,
}

impl KeptEvent {
    fn from_store(v: &Value) -> KeptEvent {
        KeptEvent {
            id: v["id"].as_i64().unwrap_or(0),
            provider: v["provider"].as_str().unwrap_or("").to_string(),
            event_id: v["event_id"].as_str().unwrap_or("").to_string(),
            event_type: v["event_type"].as_str().unwrap_or("").to_string(),
            reason: v["reason"].as_str().unwrap_or("").to_string(),
            waiting_for: strings(v, "waiting_for"),
            received_at: v["received_at"].clone(),
            attempts: v["attempts"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            resolved: !v["resolved_at"].is_null(),
            payload: v["payload"].clone(),
        }
    }
}

/// A lot or hand-given grant past its end.
#[derive(Clone, Debug, PartialEq)]
pub struct Lapsed {
    pub at: Timestamp,
    pub id: String,
    pub subject: Subject,
}

/// One change of an organization the core decided, as `tollgate_org_change` writes it
/// (with its history row). `stamp` is the organization's as the decision read it: the
/// store refuses the change (`Conflict::OrgStale`) when it changed meanwhile.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrgChange {
    Create { id: String, name: String, by: String },
    Invite {
        org: String,
        email: String,
        role: Role,
        seat: bool,
        token_digest: String,
        expires_at: Timestamp,
        by: String,
        stamp: String,
    },
    Revoke { org: String, invite: String, by: String },
    /// Refused (`Conflict::InviteClosed`) unless the invite is still open at `now`.
    Accept { org: String, invite: String, user: String, role: Role, now: Timestamp },
    Role { org: String, user: String, role: Role, by: String, stamp: String },
    Remove { org: String, user: String, by: String, left: bool, stamp: String },
}

/// An organization as the store reads it for a decision, and the stamp of that read.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgRead {
    pub org: Org,
    pub stamp: String,
}

/// `tollgate_org`'s answer (its grants are `cloud_entitlements` rows).
pub fn org_from_json(v: &Value) -> Result<Option<OrgRead>, StoreError> {
    if v.is_null() {
        return Ok(None);
    }
    let mut raw = v.clone();
    let grants: Vec<crate::state::GrantRow> = decode(raw["grants"].take(), "an organization's grants")?;
    if let Some(o) = raw.as_object_mut() {
        o.remove("grants");
    }
    let mut org: Org = decode(raw, "an organization")?;
    org.grants = grants.into_iter().map(crate::state::GrantRow::into_grant).collect();
    Ok(Some(OrgRead { org, stamp: v["stamp"].as_str().unwrap_or("").to_string() }))
}

/// `tollgate_user_organizations`' answer as the snapshot's memberships: the seat counts
/// are the core's (`Seats::new`) from what the store counted.
pub fn memberships_from_json(v: &Value) -> Result<Vec<OrgMembership>, StoreError> {
    let n = |x: &Value| x.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    let mut out = Vec::new();
    for m in v.as_array().cloned().unwrap_or_default() {
        let grants: Vec<crate::state::GrantRow> = decode(m["grants"].clone(), "an organization's grants")?;
        out.push(OrgMembership {
            id: m["id"].as_str().unwrap_or("").to_string(),
            name: m["name"].as_str().unwrap_or("").to_string(),
            role: m["role"].as_str().and_then(Role::parse),
            seat: m["seat"] == Value::Bool(true),
            seats: Seats::new(n(&m["seat_count"]), n(&m["used"]), n(&m["reserved"])),
            grants: grants.into_iter().map(crate::state::GrantRow::into_grant).collect(),
            terms: Vec::new(),
            ends_at: None,
        });
    }
    Ok(out)
}

/// How long `outbox_due` leases a message to the run that read it.
pub const OUTBOX_LEASE_SECONDS: i64 = 60;

/// What applying alert checks did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertsApplied {
    pub crossed: u32,
    pub resolved: u32,
    /// Outbox messages queued (one per transition and subscribed endpoint).
    pub queued: u32,
}

impl AlertsApplied {
    fn from_store(v: &Value) -> AlertsApplied {
        let n = |k: &str| v[k].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
        AlertsApplied { crossed: n("crossed"), resolved: n("resolved"), queued: n("queued") }
    }
}

/// An outbox message due for delivery, with its endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct DueMessage {
    pub id: i64,
    pub msg_id: String,
    /// The endpoint's id (a round sends nothing more to one its attempt disabled).
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub payload: Value,
    pub created_at: Timestamp,
    pub attempts: u32,
    pub failing_since: Option<Timestamp>,
    /// When it was first attempted (`None`: never): its three days of retries count from it.
    pub first_attempt_at: Option<Timestamp>,
}

impl DueMessage {
    fn from_store(v: &Value) -> Result<DueMessage, StoreError> {
        let t = |k: &str| -> Result<Option<Timestamp>, StoreError> {
            match &v[k] {
                Value::Null => Ok(None),
                x => serde_json::from_value(x.clone()).map(Some).map_err(|e| StoreError::Decode(format!("outbox {k}: {e}"))),
            }
        };
        Ok(DueMessage {
            // Never the row itself in the error: it carries the endpoint's signing secret.
            id: v["id"].as_i64().ok_or_else(|| StoreError::Decode("an outbox message without a numeric id".into()))?,
            msg_id: v["msg_id"].as_str().unwrap_or("").to_string(),
            endpoint_id: v["endpoint_id"].as_str().unwrap_or("").to_string(),
            url: v["url"].as_str().unwrap_or("").to_string(),
            secret: v["secret"].as_str().unwrap_or("").to_string(),
            payload: v["payload"].clone(),
            created_at: t("created_at")?.unwrap_or(Timestamp(0)),
            attempts: v["attempts"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            failing_since: t("failing_since")?,
            first_attempt_at: t("first_attempt_at")?,
        })
    }
}

/// One delivery attempt and what follows it (the core's [`tollgate::webhooks::Next`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub at: Timestamp,
    /// The HTTP status answered (`None`: no answer).
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: Option<u32>,
    pub delivered: bool,
    pub retry_at: Option<Timestamp>,
    pub give_up: bool,
    pub disable_endpoint: bool,
}

/// A catalog version as the store names it (`tollgate_catalog_active_version`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct CatalogVersion {
    pub version: i64,
    pub digest: String,
}

/// The active version of a catalog with its document (`tollgate_catalog_active`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct StoredCatalog {
    pub version: i64,
    pub digest: String,
    pub document: Value,
}

/// Every call the worker makes to its store.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// How many requests this store has sent so far (only ever grows): what a scheduled
    /// run's [`crate::budget::Budget`] counts against the runtime's subrequest limit.
    fn requests(&self) -> u64;
    /// The active version of the catalog `id` with its document; `None` when none was
    /// pushed (the worker then serves the catalog it embeds).
    async fn active_catalog(&self, id: &str) -> Result<Option<StoredCatalog>, StoreError>;
    /// The active version of the catalog `id` without its document: the cheap check of a
    /// cached copy.
    async fn active_catalog_version(&self, id: &str) -> Result<Option<CatalogVersion>, StoreError>;
    /// Version `version` of the catalog `id` with its document, active or not
    /// (`tollgate_catalog_version`): what a grant sold under it is decided with.
    async fn catalog_version(&self, id: &str, version: u32) -> Result<Option<StoredCatalog>, StoreError>;
    /// Everything stored about a subject; with `ledger_key`, of its ledger only that
    /// request's entries.
    async fn subject_state(&self, subject: &Subject, ledger_key: Option<&str>) -> Result<SubjectState, StoreError>;
    /// What a gate decision reads, in one round trip: the grants, the seated
    /// organizations' grants and the lots (the rest of the state left empty), and with
    /// `counter` (whose, which) that counter's latest window (its start, its count).
    async fn gate_state(&self, subject: &Subject, counter: Option<(&Subject, &str)>) -> Result<(SubjectState, Option<(Timestamp, u64)>), StoreError>;
    async fn subject_exists(&self, subject: &Subject) -> Result<bool, StoreError>;
    /// Records a charge decided by the core, once per request id; its overage (if any)
    /// counts against its cap in the billing period that starts at `period`.
    async fn charge(&self, subject: &Subject, charge: &Charge, stamp: Option<&str>, period: Timestamp)
        -> Result<ChargeAnswer, StoreError>;
    /// The subject's usage of `feature` (a limit or a pool) by UTC day in `[from, to)`:
    /// `[{"day", "units", "uses"}]`.
    async fn usage_by_day(&self, subject: &Subject, feature: &str, from: Timestamp, to: Timestamp) -> Result<Value, StoreError>;
    /// Usage `usage_id` (whose it is, its pool or limit counter), when `caller` (a user) may
    /// ask to settle it: `caller`'s own, or the organization's it was used for by `caller`
    /// (its actor); `None`: neither (no such usage, or another's). One read of its row:
    /// [`Store::settle`] is handed what it read.
    async fn usage_owner(&self, caller: &Subject, usage_id: &str) -> Result<Option<SettledUse>, StoreError>;
    /// Captures (`release` false) or releases the subject's hold `usage_id` at `now`
    /// ([`SettleAnswer::NotFound`]: the subject has no such usage). A capture at or after
    /// the hold's end is refused (`hold_expired`). A use a user made for an organization
    /// (its actor) is settled only if the core's `seats::may_settle` allows it on the
    /// user's membership and seat as the store reads them in the settling's own
    /// transaction, under lock ([`SettleAnswer::NotActing`] when not): what a caller read
    /// before never decides it. `used`: what [`Store::usage_owner`] read of it, if it was
    /// asked (else the store reads what it settled itself, for [`Settled::settled`]).
    async fn settle(
        &self,
        subject: &Subject,
        usage_id: &str,
        release: bool,
        now: Timestamp,
        used: Option<SettledUse>,
    ) -> Result<SettleAnswer, StoreError>;
    /// Holds past their end at `now`, oldest first, after the cursor `after` (the last
    /// hold of the previous page: its `hold_until` and `usage_id`).
    async fn expired_holds(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<ExpiredHold>, StoreError>;
    /// Sets the subject's overage choice (`usage_preferences`).
    /// Writes an overage choice (`tollgate_set_preferences`); the limit stored after it
    /// (a choice that names none keeps the one stored).
    async fn set_preferences(&self, subject: &Subject, choice: &OverageChoice) -> Result<i64, StoreError>;
    /// How much of `limit` the subject used in the window that starts at `window_start`.
    async fn counter(&self, subject: &Subject, limit: &str, window_start: Timestamp) -> Result<u64, StoreError>;
    /// The answer of a use counted before under `request_id`, if it was (a retry's answer,
    /// also once the limit is reached).
    async fn track_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Counted>, StoreError>;
    /// Counts one use of a limit decided by the core, once per request id.
    async fn track(&self, subject: &Subject, count: &Count) -> Result<Counted, StoreError>;
    /// The first answer of a request id already charged, if it was.
    async fn charge_replay(
        &self,
        subject: &Subject,
        request_id: &str,
        request_hash: &str,
    ) -> Result<Option<Charged>, StoreError>;
    async fn fold_input(&self, refs: &BTreeSet<String>) -> Result<FoldInput, StoreError>;
    async fn apply_fold(&self, fold: &FoldWrite<'_>) -> Result<FoldApplied, StoreError>;
    /// Keeps a correctly signed delivery the core could not read. `Ok(false)`: it was
    /// received before.
    async fn keep_delivery(&self, event: &Delivery, reason: &str) -> Result<bool, StoreError>;
    async fn pending_attempt(&self, provider: &str, event_id: &str, error: &str) -> Result<(), StoreError>;
    /// Open kept deliveries in the order they were kept, after the cursor `after`.
    async fn kept_events(&self, provider: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<KeptEvent>, StoreError>;
    /// Open kept deliveries least recently tried first (one never tried, by when it was
    /// kept), each with its cursor, after the cursor `after`: a try ([`Store::pending_attempt`])
    /// sends a delivery to the back, so the scheduled run's retries reach every one.
    async fn kept_to_retry(&self, after: Option<&str>, limit: u32) -> Result<Vec<(String, KeptEvent)>, StoreError>;
    /// One kept delivery, open or resolved; `None`: the event was never kept.
    async fn kept_event(&self, provider: &str, event_id: &str) -> Result<Option<KeptEvent>, StoreError>;
    /// Lapsed rows up to `now`, after `after` in (at, id) order.
    async fn lapsed(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<Lapsed>, StoreError>;
    /// Failed payments for the operator (`tollgate_failed_payments`): `open` true only
    /// those still due, false only settled ones, `None` all; oldest first failure first,
    /// after the cursor `after` (a row's `cursor`).
    async fn failed_payments(&self, open: Option<bool>, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError>;
    /// Failed payments still due whose grace ends in `(from, to]`
    /// (`tollgate_failed_payments_due`), rows as [`Store::failed_payments`] gives them, by
    /// grace end then id, after the cursor `after` (a row's `cursor`).
    async fn failed_payments_due(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError>;
    /// Trialing subscriptions whose trial ends in `(from, to]` (`tollgate_trials_ending`):
    /// `{"cursor", "subject", "trial_end"}` by trial end then id, after the cursor `after`
    /// (a row's `cursor`).
    async fn trials(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError>;
    /// Applies the core's alert checks for `subject` at `at` (`tollgate_record_alerts`).
    async fn record_alerts(&self, subject: &Subject, checks: &[AlertCheck], at: Timestamp) -> Result<AlertsApplied, StoreError>;
    /// Open alerts of windowed rules whose window ended by `now` (the core decides again).
    async fn open_windowed_alerts(&self, now: Timestamp, limit: u32) -> Result<Vec<(Subject, OpenAlert)>, StoreError>;
    /// Outbox messages due at `now`: one per endpoint and subject, in order.
    /// The messages due at `now`, each leased to the caller for [`OUTBOX_LEASE_SECONDS`]
    /// (an overlapping delivery run does not answer them) until its attempt is recorded.
    async fn outbox_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueMessage>, StoreError>;
    async fn outbox_attempt(&self, message: i64, attempt: &AttemptRecord) -> Result<(), StoreError>;
    /// A new endpoint, with its signing secret (answered this once).
    async fn create_endpoint(&self, url: &str, events: &[String]) -> Result<Value, StoreError>;
    async fn endpoints(&self) -> Result<Value, StoreError>;
    /// Enables (its waiting messages due at `at`) or disables an endpoint; `None`: unknown.
    async fn set_endpoint(&self, id: &str, enabled: bool, at: Timestamp) -> Result<Option<Value>, StoreError>;
    /// Does `user` hold an active seat of `org`?
    async fn seat_held(&self, org: &str, user: &str) -> Result<bool, StoreError>;
    /// An organization as a decision reads it (`tollgate_org`); `None`: no such organization.
    async fn org(&self, org: &str) -> Result<Option<OrgRead>, StoreError>;
    /// An invite by its token's digest, and its organization (`tollgate_invite`).
    async fn invite(&self, token_digest: &str) -> Result<Option<(Invite, Option<OrgRead>)>, StoreError>;
    /// One invite of organization `org` by its id, in any state (`tollgate_org_invite`).
    async fn org_invite(&self, org: &str, invite: &str) -> Result<Option<Invite>, StoreError>;
    /// Writes one organization change with its history row (`tollgate_org_change`).
    async fn org_change(&self, change: &OrgChange) -> Result<Value, StoreError>;
    /// The organizations `user` belongs to, for its snapshot (`tollgate_user_organizations`).
    async fn user_organizations(&self, user: &str, now: Timestamp) -> Result<Vec<OrgMembership>, StoreError>;
    /// What the money-in routes read about a buyer (`tollgate_account`): its
    /// subscriptions and customers, and for an organization `caller`'s role in it and the
    /// seats it has given. `None`: no such user or organization.
    async fn account(&self, subject: &Subject, caller: &str) -> Result<Option<Account>, StoreError>;
}

/// Whose a `usage_records` row (`user_id`, `organization_id`, `actor_id`) is when `caller`
/// may settle it: `caller`'s own, or the organization's `caller` was its actor for; `None`:
/// neither ([`Store::usage_owner`]).
pub fn usage_owner_of(caller: &Subject, row: &Value) -> Option<Subject> {
    let Subject::User(me) = caller else { return None };
    let is_me = |k: &str| row[k].as_str().is_some_and(|u| u.eq_ignore_ascii_case(me));
    match row["organization_id"].as_str() {
        _ if is_me("user_id") => Some(caller.clone()),
        Some(org) if is_me("actor_id") => Some(Subject::Org(org.to_string())),
        _ => None,
    }
}

/// A `tollgate_account` answer as the core's [`Account`] (no email: the token has it).
pub fn account_from_json(subject: &Subject, v: &Value) -> Result<Option<Account>, StoreError> {
    let bad = |what: &str| StoreError::Decode(format!("tollgate_account: {what} in {v}"));
    if v["exists"] != Value::Bool(true) {
        return Ok(None);
    }
    let provider = |p: &Value| p.as_str().and_then(Provider::parse).ok_or_else(|| bad("a provider"));
    let mut subscriptions = Vec::new();
    for s in v["subscriptions"].as_array().ok_or_else(|| bad("no subscriptions"))? {
        subscriptions.push(Held {
            provider: provider(&s["provider"])?,
            id: s["subscription_id"].as_str().ok_or_else(|| bad("a subscription id"))?.to_string(),
            offer: s["offer_key"].as_str().map(str::to_string),
            status: serde_json::from_value(s["status"].clone()).map_err(|_| bad("a status"))?,
            quantity: s["quantity"].as_u64().and_then(|q| u32::try_from(q).ok()).unwrap_or(1),
            cancel_at_period_end: s["cancel_at_period_end"].as_bool().unwrap_or(false),
            current_period_end: match &s["current_period_end"] {
                Value::Null => None,
                t => Some(serde_json::from_value(t.clone()).map_err(|_| bad("a period end"))?),
            },
            products: s["grants"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| Some((g["product"].as_str()?.to_string(), g["tier"].as_str()?.to_string())))
                .collect(),
        });
    }
    let mut customers = Vec::new();
    for c in v["customers"].as_array().ok_or_else(|| bad("no customers"))? {
        customers.push((provider(&c["provider"])?, c["customer_id"].as_str().ok_or_else(|| bad("a customer id"))?.to_string()));
    }
    Ok(Some(Account {
        subject: subject.to_core(),
        role: v["role"].as_str().and_then(Role::parse),
        subscriptions,
        customers,
        seats_used: v["seats_used"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        email: None,
    }))
}

/// The store behind Supabase's REST API: PostgreSQL functions through PostgREST.
pub struct SupabaseStore<T> {
    pub client: SupabaseClient<T>,
}

impl<T: Transport> SupabaseStore<T> {
    pub fn new(client: SupabaseClient<T>) -> Self {
        SupabaseStore { client }
    }
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn decode<D: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<D, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Decode(format!("{what}: {e}")))
}

/// A charge's record as stored (`usage_records`, as `tollgate_charge_answer` shows it):
/// what the core decided, its request id, its takes, and when it was written.
pub fn record_json(c: &Charge, created_at: Value) -> Value {
    let mut record = serde_json::to_value(&c.record).unwrap_or_default();
    record["request_id"] = json!(c.request_id);
    record["takes"] = serde_json::to_value(&c.takes).unwrap_or_default();
    record["created_at"] = created_at;
    record["status"] = json!(if c.hold_until.is_some() { "held" } else { "charged" });
    if let Some(until) = c.hold_until {
        record["hold_until"] = json!(until);
    }
    record
}

/// The cap a charge's overage counts against (`null` without overage): the period's
/// counter, the cap and the period's start.
pub fn overage_cap(c: &Charge, period: Timestamp) -> Value {
    match c.overage_limit {
        Some(limit) if c.record.overage_minor > 0 => {
            json!({"counter": tollgate::meter::overage_counter(&c.record.currency), "limit": limit, "since": period})
        }
        _ => Value::Null,
    }
}

/// What each lot holds after a charge (the answer's `lots`).
fn lots_left(v: &Value) -> BTreeMap<String, i64> {
    v.get("lots")
        .and_then(Value::as_object)
        .map(|o| o.iter().filter_map(|(k, n)| n.as_i64().map(|n| (k.clone(), n))).collect())
        .unwrap_or_default()
}

fn charged(v: &Value) -> Charged {
    Charged { usage_id: v["usage_id"].clone(), record: v["record"].clone(), balances: v["balances"].clone(), left: lots_left(v) }
}

/// The stored form of a fact (`billing_facts`).
pub fn fact_row(f: &Fact) -> Value {
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

/// A fold's subject rows as `tollgate_apply_fold` takes them.
pub fn subject_row(subject: &Subject, rows: &SubjectRows) -> Result<Value, StoreError> {
    let mut v = serde_json::to_value(rows).map_err(|e| StoreError::Decode(e.to_string()))?;
    v["subject"] = subject.to_json();
    Ok(v)
}

impl<T: Transport> Store for SupabaseStore<T> {
    fn requests(&self) -> u64 {
        self.client.requests()
    }

    async fn active_catalog(&self, id: &str) -> Result<Option<StoredCatalog>, StoreError> {
        let v = self.client.rpc("tollgate_catalog_active", &json!({"p_catalog": id})).await?;
        if v.is_null() {
            return Ok(None);
        }
        decode(v, "the active catalog").map(Some)
    }

    async fn active_catalog_version(&self, id: &str) -> Result<Option<CatalogVersion>, StoreError> {
        let v = self.client.rpc("tollgate_catalog_active_version", &json!({"p_catalog": id})).await?;
        if v.is_null() {
            return Ok(None);
        }
        decode(v, "the active catalog version").map(Some)
    }

    async fn catalog_version(&self, id: &str, version: u32) -> Result<Option<StoredCatalog>, StoreError> {
        let v = self.client.rpc("tollgate_catalog_version", &json!({"p_catalog": id, "p_version": version})).await?;
        if v.is_null() {
            return Ok(None);
        }
        decode(v, "a catalog version").map(Some)
    }

    async fn subject_state(&self, subject: &Subject, ledger_key: Option<&str>) -> Result<SubjectState, StoreError> {
        let args = match ledger_key {
            Some(k) => json!({"p_subject": subject.to_json(), "p_ledger_key": k}),
            None => json!({"p_subject": subject.to_json()}),
        };
        let v = self.client.rpc("tollgate_subject_state", &args).await?;
        SubjectState::from_store(subject, v)
    }

    async fn gate_state(&self, subject: &Subject, counter: Option<(&Subject, &str)>) -> Result<(SubjectState, Option<(Timestamp, u64)>), StoreError> {
        let args = match counter {
            Some((owner, id)) => json!({"p_subject": subject.to_json(), "p_limit": id, "p_count_for": owner.to_json()}),
            None => json!({"p_subject": subject.to_json()}),
        };
        let mut v = self.client.rpc("tollgate_gate_state", &args).await?;
        let latest = match v.as_object_mut().and_then(|o| o.remove("counter")) {
            None | Some(Value::Null) => None,
            Some(c) => {
                let start: Timestamp = serde_json::from_value(c["window_start"].clone())
                    .map_err(|e| StoreError::Decode(format!("a counter's window: {e}")))?;
                let used = c["used"].as_u64().ok_or_else(|| StoreError::Decode(format!("a counter: {c}")))?;
                Some((start, used))
            }
        };
        Ok((SubjectState::from_store(subject, v)?, latest))
    }

    async fn subject_exists(&self, subject: &Subject) -> Result<bool, StoreError> {
        let v = self.client.rpc("tollgate_subject_exists", &json!({"p_subject": subject.to_json()})).await?;
        Ok(v == Value::Bool(true))
    }

    async fn charge(&self, subject: &Subject, c: &Charge, stamp: Option<&str>, period: Timestamp) -> Result<ChargeAnswer, StoreError> {
        let args = json!({
            "p_subject": subject.to_json(),
            "p_charge": {
                "request_id": c.request_id,
                "request_hash": c.request_hash,
                "takes": c.takes,
                "record": c.record,
                "overage_cap": overage_cap(c, period),
                "hold_until": c.hold_until,
            },
            "p_stamp": stamp,
        });
        let v = self.client.rpc("tollgate_charge", &args).await?;
        let state = || SubjectState::from_store(subject, v.get("state").cloned().unwrap_or(Value::Null)).map(Box::new);
        match v.get("status").and_then(Value::as_str) {
            Some("charged") => {
                Ok(ChargeAnswer::Charged(Charged { record: record_json(c, v["created_at"].clone()), ..charged(&v) }))
            }
            Some("replayed") => Ok(ChargeAnswer::Replayed(charged(&v))),
            Some("stale") => Ok(ChargeAnswer::Stale(state()?)),
            _ => Err(StoreError::Decode("an unexpected answer to a charge".into())),
        }
    }

    async fn usage_by_day(&self, subject: &Subject, feature: &str, from: Timestamp, to: Timestamp) -> Result<Value, StoreError> {
        let args = json!({"p_subject": subject.to_json(), "p_feature": feature, "p_from": from, "p_to": to});
        self.client.rpc("tollgate_usage_by_day", &args).await
    }

    async fn usage_owner(&self, caller: &Subject, usage_id: &str) -> Result<Option<SettledUse>, StoreError> {
        use crate::supabase::Filter;
        let v = self
            .client
            .select("usage_records", "user_id,organization_id,actor_id,pool,feature,counter,status", &[("id", Filter::Eq(usage_id.into()))])
            .await?;
        let Some(row) = v.as_array().and_then(|rows| rows.first()) else { return Ok(None) };
        Ok(usage_owner_of(caller, row).and_then(|_| SettledUse::from_row(row)))
    }

    async fn settle(
        &self,
        subject: &Subject,
        usage_id: &str,
        release: bool,
        now: Timestamp,
        used: Option<SettledUse>,
    ) -> Result<SettleAnswer, StoreError> {
        let v = if release {
            self.client.rpc("tollgate_release", &json!({"p_subject": subject.to_json(), "p_usage_id": usage_id})).await?
        } else {
            let args = json!({"p_subject": subject.to_json(), "p_usage_id": usage_id, "p_now": now});
            self.client.rpc("tollgate_capture", &args).await?
        };
        if v.is_null() {
            return Ok(SettleAnswer::NotFound);
        }
        // A use made for an organization its caller no longer acts for (20261207003000).
        if v["status"] == "refused" {
            use tollgate::seats::ActError;
            return Ok(SettleAnswer::NotActing(if v["reason"] == "no_seat" { ActError::NoSeat } else { ActError::NotMember }));
        }
        let replayed = v["replayed"] == true;
        let settled = if replayed {
            None
        } else if used.is_some() {
            used
        } else {
            use crate::supabase::Filter;
            let row = self
                .client
                .select("usage_records", "user_id,organization_id,pool,feature,counter", &[("id", Filter::Eq(usage_id.into()))])
                .await?;
            row.as_array().and_then(|rows| rows.first()).and_then(SettledUse::from_row)
        };
        Ok(SettleAnswer::Settled(Settled {
            usage_id: v["usage_id"].clone(),
            status: v["status"].as_str().unwrap_or("").to_string(),
            replayed,
            refold: v["refold"] == true,
            settled,
        }))
    }

    async fn expired_holds(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<ExpiredHold>, StoreError> {
        let args = json!({
            "p_now": now,
            "p_after_at": after.map(|a| a.0),
            "p_after_id": after.map(|a| a.1.clone()),
            "p_limit": limit,
        });
        let v = self.client.rpc("tollgate_expired_holds", &args).await?;
        let mut out = Vec::new();
        for h in v.as_array().cloned().unwrap_or_default() {
            let Some(subject) = Subject::from_json(&h["subject"]) else { continue };
            let hold_until: Timestamp = decode(h["hold_until"].clone(), "expired hold's end")?;
            out.push(ExpiredHold { usage_id: h["usage_id"].as_str().unwrap_or("").to_string(), hold_until, subject });
        }
        Ok(out)
    }

    async fn set_preferences(&self, subject: &Subject, choice: &OverageChoice) -> Result<i64, StoreError> {
        let args = json!({"p_subject": subject.to_json(), "p_allow_overages": choice.allow_overages,
                          "p_overage_limit": choice.overage_limit, "p_keep_limit": !choice.limit_named});
        let v = self.client.rpc("tollgate_set_preferences", &args).await?;
        v["overage_limit_minor"].as_i64().ok_or_else(|| StoreError::Decode("tollgate_set_preferences: no overage_limit_minor".into()))
    }

    async fn counter(&self, subject: &Subject, limit: &str, window_start: Timestamp) -> Result<u64, StoreError> {
        let args = json!({"p_subject": subject.to_json(), "p_limit": limit, "p_window_start": window_start});
        let v = self.client.rpc("tollgate_counter", &args).await?;
        v.as_u64().ok_or_else(|| StoreError::Decode(format!("a counter: {v}")))
    }

    async fn track_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Counted>, StoreError> {
        let args = json!({"p_subject": subject.to_json(), "p_request_id": request_id, "p_request_hash": request_hash});
        let v = self.client.rpc("tollgate_track_replay", &args).await?;
        Ok((!v.is_null()).then(|| Counted::Replayed {
            usage_id: v["usage_id"].clone(),
            used: v.get("used").and_then(Value::as_u64).unwrap_or(0),
        }))
    }

    async fn track(&self, subject: &Subject, count: &Count) -> Result<Counted, StoreError> {
        let args = json!({"p_subject": subject.to_json(), "p_count": count});
        let v = self.client.rpc("tollgate_track", &args).await?;
        let used = v.get("used").and_then(Value::as_u64).unwrap_or(0);
        match v.get("status").and_then(Value::as_str) {
            Some("counted") => Ok(Counted::Counted { usage_id: v["usage_id"].clone(), used }),
            Some("replayed") => Ok(Counted::Replayed { usage_id: v["usage_id"].clone(), used }),
            Some("limit_reached") => Ok(Counted::LimitReached { used }),
            _ => Err(StoreError::Decode("an unexpected answer to a count".into())),
        }
    }

    async fn charge_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Charged>, StoreError> {
        let args = json!({"p_subject": subject.to_json(), "p_request_id": request_id, "p_request_hash": request_hash});
        let v = self.client.rpc("tollgate_charge_replay", &args).await?;
        Ok((!v.is_null()).then(|| charged(&v)))
    }

    async fn fold_input(&self, refs: &BTreeSet<String>) -> Result<FoldInput, StoreError> {
        let v = self.client.rpc("tollgate_fold_input", &json!({"p_refs": refs})).await?;
        Ok(FoldInput {
            refs: decode(v.get("refs").cloned().unwrap_or(json!([])), "cluster refs")?,
            version: v.get("version").and_then(Value::as_i64).unwrap_or(0),
            facts: decode(v.get("facts").cloned().unwrap_or(json!([])), "stored facts")?,
            usage: decode(v.get("usage").cloned().unwrap_or(json!({})), "usage totals")?,
        })
    }

    async fn apply_fold(&self, fold: &FoldWrite<'_>) -> Result<FoldApplied, StoreError> {
        let subjects = fold.subjects.iter().map(|(s, r)| subject_row(s, r)).collect::<Result<Vec<_>, _>>()?;
        let args = json!({
            "p_event": fold.event,
            "p_facts": fold.facts.iter().map(fact_row).collect::<Vec<_>>(),
            "p_expected_version": fold.expected_version,
            "p_refs": fold.refs,
            "p_subjects": subjects,
            "p_pending": fold.pending,
            "p_resolved": fold.resolved.iter().map(|(p, e)| json!({"provider": p, "event_id": e})).collect::<Vec<_>>(),
        });
        let v = self.client.rpc("tollgate_apply_fold", &args).await?;
        Ok(FoldApplied {
            status: match v.get("status").and_then(Value::as_str) {
                Some("duplicate") => FoldStatus::Duplicate,
                Some("kept") => FoldStatus::Kept,
                _ => FoldStatus::Applied,
            },
            version: v.get("version").and_then(Value::as_i64).unwrap_or(0),
            unknown: strings(&v, "unknown"),
            conflicts: strings(&v, "conflicts"),
        })
    }

    async fn keep_delivery(&self, event: &Delivery, reason: &str) -> Result<bool, StoreError> {
        let v = self.client.rpc("tollgate_keep_delivery", &json!({"p_event": event, "p_reason": reason})).await?;
        Ok(v["status"] != "duplicate")
    }

    async fn pending_attempt(&self, provider: &str, event_id: &str, error: &str) -> Result<(), StoreError> {
        let args = json!({"p_provider": provider, "p_event_id": event_id, "p_error": error});
        self.client.rpc("tollgate_pending_attempt", &args).await.map(|_| ())
    }

    async fn kept_events(&self, provider: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<KeptEvent>, StoreError> {
        let args = json!({"p_provider": provider, "p_after": after, "p_limit": limit});
        let v = self.client.rpc("tollgate_kept_events", &args).await?;
        Ok(v.as_array().map(|a| a.iter().map(KeptEvent::from_store).collect()).unwrap_or_default())
    }

    async fn kept_to_retry(&self, after: Option<&str>, limit: u32) -> Result<Vec<(String, KeptEvent)>, StoreError> {
        let v = self.client.rpc("tollgate_kept_to_retry", &json!({"p_after": after, "p_limit": limit})).await?;
        let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(rows.iter().map(|r| (r["cursor"].as_str().unwrap_or_default().to_string(), KeptEvent::from_store(r))).collect())
    }

    async fn kept_event(&self, provider: &str, event_id: &str) -> Result<Option<KeptEvent>, StoreError> {
        let v = self.client.rpc("tollgate_kept_event", &json!({"p_provider": provider, "p_event_id": event_id})).await?;
        Ok((!v.is_null()).then(|| KeptEvent::from_store(&v)))
    }

    async fn lapsed(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<Lapsed>, StoreError> {
        let args = json!({
            "p_now": now,
            "p_after_at": after.map(|a| a.0),
            "p_after_id": after.map(|a| a.1.clone()).unwrap_or_default(),
            "p_limit": limit,
        });
        let v = self.client.rpc("tollgate_lapsed", &args).await?;
        let mut out = Vec::new();
        for r in v.as_array().cloned().unwrap_or_default() {
            let Some(subject) = Subject::from_json(&r) else { continue };
            let at: Timestamp = decode(r["at"].clone(), "lapsed at")?;
            out.push(Lapsed { at, id: r["id"].as_str().unwrap_or("").to_string(), subject });
        }
        Ok(out)
    }

    async fn failed_payments(&self, open: Option<bool>, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        let args = json!({"p_open": open, "p_after": after, "p_limit": limit});
        let v = self.client.rpc("tollgate_failed_payments", &args).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    async fn failed_payments_due(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        let args = json!({"p_from": from, "p_to": to, "p_after": after, "p_limit": limit});
        let v = self.client.rpc("tollgate_failed_payments_due", &args).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    async fn trials(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        let args = json!({"p_from": from, "p_to": to, "p_after": after, "p_limit": limit});
        let v = self.client.rpc("tollgate_trials_ending", &args).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    async fn record_alerts(&self, subject: &Subject, checks: &[AlertCheck], at: Timestamp) -> Result<AlertsApplied, StoreError> {
        if checks.is_empty() {
            return Ok(AlertsApplied::default());
        }
        let args = json!({"p_subject": subject.to_json(), "p_checks": checks, "p_at": at});
        Ok(AlertsApplied::from_store(&self.client.rpc("tollgate_record_alerts", &args).await?))
    }

    async fn open_windowed_alerts(&self, now: Timestamp, limit: u32) -> Result<Vec<(Subject, OpenAlert)>, StoreError> {
        let v = self.client.rpc("tollgate_open_windowed_alerts", &json!({"p_now": now, "p_limit": limit})).await?;
        let mut out = Vec::new();
        for a in v.as_array().cloned().unwrap_or_default() {
            let Some(s) = Subject::from_json(&a["subject"]) else { continue };
            out.push((s, decode(a, "an open alert")?));
        }
        Ok(out)
    }

    async fn outbox_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueMessage>, StoreError> {
        // An answer that cannot be read is not quoted in the error: it carries secrets.
        let v = self.client.rpc("tollgate_outbox_due", &json!({"p_now": now, "p_limit": limit})).await.map_err(|e| match e {
            StoreError::Decode(_) => StoreError::Decode("tollgate_outbox_due: an answer that is not JSON".into()),
            e => e,
        })?;
        v.as_array().map(|a| a.iter().map(DueMessage::from_store).collect()).unwrap_or(Ok(Vec::new()))
    }

    async fn outbox_attempt(&self, message: i64, attempt: &AttemptRecord) -> Result<(), StoreError> {
        self.client.rpc("tollgate_outbox_attempt", &json!({"p_message": message, "p_attempt": attempt})).await.map(|_| ())
    }

    async fn create_endpoint(&self, url: &str, events: &[String]) -> Result<Value, StoreError> {
        self.client.rpc("tollgate_create_endpoint", &json!({"p_url": url, "p_events": events})).await
    }

    async fn endpoints(&self) -> Result<Value, StoreError> {
        self.client.rpc("tollgate_endpoints", &json!({})).await
    }

    async fn set_endpoint(&self, id: &str, enabled: bool, at: Timestamp) -> Result<Option<Value>, StoreError> {
        let v = self.client.rpc("tollgate_set_endpoint", &json!({"p_id": id, "p_enabled": enabled, "p_at": at})).await?;
        Ok((!v.is_null()).then_some(v))
    }

    async fn account(&self, subject: &Subject, caller: &str) -> Result<Option<Account>, StoreError> {
        let v = self.client.rpc("tollgate_account", &json!({"p_subject": subject.to_json(), "p_caller": caller})).await?;
        account_from_json(subject, &v)
    }

    async fn org(&self, org: &str) -> Result<Option<OrgRead>, StoreError> {
        org_from_json(&self.client.rpc("tollgate_org", &json!({"p_org": org})).await?)
    }

    async fn invite(&self, token_digest: &str) -> Result<Option<(Invite, Option<OrgRead>)>, StoreError> {
        let v = self.client.rpc("tollgate_invite", &json!({"p_token_digest": token_digest})).await?;
        if v.is_null() {
            return Ok(None);
        }
        Ok(Some((decode(v["invite"].clone(), "an invite")?, org_from_json(&v["org"])?)))
    }

    async fn org_invite(&self, org: &str, invite: &str) -> Result<Option<Invite>, StoreError> {
        let v = self.client.rpc("tollgate_org_invite", &json!({"p_org": org, "p_invite": invite})).await?;
        if v.is_null() {
            return Ok(None);
        }
        Ok(Some(decode(v, "an invite")?))
    }

    async fn org_change(&self, change: &OrgChange) -> Result<Value, StoreError> {
        self.client.rpc("tollgate_org_change", &json!({"p_change": change})).await
    }

    async fn user_organizations(&self, user: &str, now: Timestamp) -> Result<Vec<OrgMembership>, StoreError> {
        let v = self.client.rpc("tollgate_user_organizations", &json!({"p_user": user, "p_now": now})).await?;
        memberships_from_json(&v)
    }

    async fn seat_held(&self, org: &str, user: &str) -> Result<bool, StoreError> {
        use crate::supabase::Filter;
        let v = self
            .client
            .select(
                "seat_allocations",
                "organization_id,user_id,status,allocated_at",
                &[
                    ("organization_id", Filter::Eq(org.into())),
                    ("user_id", Filter::Eq(user.into())),
                    ("status", Filter::Eq("active".into())),
                ],
            )
            .await?;
        Ok(v.as_array().is_some_and(|a| !a.is_empty()))
    }
}
