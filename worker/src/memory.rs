//! A [`Store`] in memory, with the semantics of the SQL functions behind
//! [`crate::store::SupabaseStore`]: each call is atomic (it checks everything before it
//! writes anything), charges are decided by their request id and take from a lot only
//! while it holds the units, a fold's write is refused when the facts it read or the
//! charges of a lot it writes changed meanwhile, unknown users are kept waiting.
//! Native only: it lets every route and the scheduled job be tested fast, and the same
//! tests run against PostgreSQL in the end-to-end stage.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use tollgate::billing::facts::Fact;
use tollgate::billing::reducer::UsageTotals;
use tollgate::charge::Charge;
use tollgate::meter::{Count, OverageChoice};
use tollgate::orgs::{Invite, OrgMembership};
use tollgate::credits::{EntryKind, LedgerEntry, Lot};
use tollgate::time::Timestamp;

use crate::state::{GrantRow, Subject, SubjectState};
use tollgate::alerts::{AlertCheck, Level, OpenAlert};
use crate::store::{
    memberships_from_json, org_from_json, OrgChange, OrgRead,
    record_json, AlertsApplied, AttemptRecord, ChargeAnswer, DueMessage, Charged, Counted, Delivery, ExpiredHold, SettleAnswer, Settled, SettledUse, FoldApplied, FoldInput, FoldStatus, FoldWrite, KeptEvent, Lapsed, Store,
    OUTBOX_LEASE_SECONDS,
};
use crate::supabase::{PgError, StoreError};

#[derive(Clone, Debug)]
struct StoredFact {
    kind: String,
    refs: Vec<String>,
    fact: Value,
}

#[derive(Clone, Debug)]
struct StoredLot {
    id: u64,
    lot: Lot,
    /// What released holds gave back to it (`credit_lots.released`): part of the stamp.
    released: i64,
}

#[derive(Clone, Debug)]
struct Record {
    id: String,
    subject: String,
    hash: String,
    record: Value,
    /// When it was written (the decision's `now`: the store has no clock of its own here).
    at: Timestamp,
}

#[derive(Clone, Debug)]
struct Kept {
    seq: u64,
    /// When it was last tried, else kept, on the store's sequence (`last_attempt_at`).
    tried: u64,
    event_type: String,
    payload: Value,
    resolved: bool,
    attempts: u32,
    reason: String,
    waiting_for: Vec<String>,
}

impl Kept {
    fn row(&self, provider: &str, event_id: &str) -> KeptEvent {
        KeptEvent {
            id: self.seq as i64,
            provider: provider.to_string(),
            event_id: event_id.to_string(),
            event_type: self.event_type.clone(),
            reason: self.reason.clone(),
            waiting_for: self.waiting_for.clone(),
            received_at: Value::Null,
            attempts: self.attempts,
            resolved: self.resolved,
            payload: self.payload.clone(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Inner {
    /// subject -> the time its latest fold was written as of (`billing_subjects.updated_at`).
    folded: BTreeMap<String, Timestamp>,
    users: BTreeSet<String>,
    orgs: BTreeSet<String>,
    facts: Vec<(String, StoredFact)>,
    lots: BTreeMap<String, Vec<StoredLot>>,
    ledger: BTreeMap<String, Vec<LedgerEntry>>,
    /// subject -> grant key -> the grant's row (as `cloud_entitlements` holds it), and its id.
    grants: BTreeMap<String, BTreeMap<String, (u64, Value)>>,
    records: BTreeMap<String, Record>,
    /// (subject, limit, window start) -> used (`usage_counters`).
    counters: BTreeMap<(String, String, Timestamp), u64>,
    events: BTreeSet<(String, String)>,
    kept: BTreeMap<(String, String), Kept>,
    preferences: BTreeMap<String, Value>,
    members: BTreeMap<String, BTreeSet<String>>,
    seats: BTreeMap<String, BTreeSet<String>>,
    seat_count: BTreeMap<String, u32>,
    /// (organization, user) -> role (`organization_members.role`).
    roles: BTreeMap<(String, String), String>,
    /// subject -> subscription id -> its row (`billing_subscriptions`), and customers.
    subscriptions: BTreeMap<String, BTreeMap<String, Value>>,
    customers: BTreeMap<String, BTreeSet<(String, String)>>,
    states: BTreeMap<String, Value>,
    versions: BTreeMap<String, i64>,
    alerts: Vec<MemAlert>,
    alert_seq: i64,
    endpoints: Vec<MemEndpoint>,
    messages: Vec<MemMessage>,
    attempts: Vec<(i64, AttemptRecord)>,
    /// Failed payments by (provider, invoice id): the subject's key and the row.
    failed: BTreeMap<(String, String), (String, Value)>,
    seq: u64,
    /// organization -> name (`organizations.name`).
    org_names: BTreeMap<String, String>,
    /// user -> email (`auth.users.email`).
    emails: BTreeMap<String, String>,
    /// (organization, user) -> when it joined, as a sequence number (`created_at`).
    joined: BTreeMap<(String, String), u64>,
    /// `organization_invites`: the invite, its token's digest, and its order.
    invites: Vec<(Invite, String, u64)>,
    /// `seat_allocations.allocated_by` / `released_by` of the latest allocation.
    seat_by: BTreeMap<(String, String), (Option<String>, Option<String>)>,
    /// `organization_changes`: (organization, kind, actor, user, email).
    changes: Vec<OrgHistory>,
}

/// One row of an organization's history (`organization_changes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgHistory {
    pub org: String,
    pub kind: String,
    pub actor: Option<String>,
    pub user: Option<String>,
    pub email: Option<String>,
}

#[derive(Clone, Debug)]
struct MemAlert {
    id: i64,
    subject: String,
    rule: String,
    episode: String,
    body: Value,
    crossed_at: Timestamp,
    resolved_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
struct MemEndpoint {
    id: String,
    url: String,
    events: Vec<String>,
    secret: String,
    enabled: bool,
    failing_since: Option<Timestamp>,
    disabled_at: Option<Timestamp>,
    /// When it was last enabled again: a message's retries count from its first attempt since.
    enabled_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
struct MemMessage {
    id: i64,
    endpoint: String,
    msg_id: String,
    subject: String,
    payload: Value,
    created_at: Timestamp,
    next_attempt_at: Option<Timestamp>,
    attempts: u32,
    delivered_at: Option<Timestamp>,
    given_up_at: Option<Timestamp>,
}

impl MemMessage {
    fn open(&self) -> bool {
        self.delivered_at.is_none() && self.given_up_at.is_none()
    }
}

/// The store in memory (see the module docs).
#[derive(Default)]
pub struct MemoryStore {
    inner: RefCell<Inner>,
    /// `tollgate_catalogs`: (version, digest, document, active) per catalog id.
    catalogs: RefCell<BTreeMap<String, Vec<(i64, String, Value, bool)>>>,
    /// How many catalog reads (full, version check) were made: a warm isolate makes none.
    pub catalog_reads: std::cell::Cell<(u32, u32)>,
    /// How many older versions were read (`tollgate_catalog_version`).
    pub version_reads: std::cell::Cell<u32>,
    /// How many calls the store was asked (each one request of the REST store, a model of
    /// its subrequests: [`Store::requests`]).
    requests: std::cell::Cell<u64>,
    /// The next this many `record_alerts` fail as an unavailable store would (tests of
    /// what a failure between two writes leaves).
    pub failing_alerts: std::cell::Cell<u32>,
    /// Run once as the next [`Store::settle`] begins ([`MemoryStore::before_next_settle`]).
    before_settle: RefCell<Option<SettleHook>>,
    /// Run once as the next [`Store::org_change`] begins
    /// ([`MemoryStore::before_next_org_change`]).
    before_org_change: RefCell<Option<SettleHook>>,
}

/// What a test runs as the next settling begins (a removal landing just before it, say).
type SettleHook = Box<dyn FnOnce(&MemoryStore)>;

impl MemoryStore {
    /// `tollgate_catalog_push`: a new version of the document's catalog (the same content
    /// again answers the existing version), active at once when `activate`.
    pub fn push_catalog(&self, document: Value, activate: bool) -> i64 {
        let id = document["catalog"]["id"].as_str().unwrap_or_default().to_string();
        let digest = hex::encode(Sha256::digest(document.to_string().as_bytes()));
        let mut all = self.catalogs.borrow_mut();
        let versions = all.entry(id.clone()).or_default();
        if let Some(v) = versions.iter().find(|v| v.1 == digest) {
            return v.0;
        }
        let n = versions.len() as i64 + 1;
        versions.push((n, digest, document, false));
        drop(all);
        if activate {
            self.activate_catalog(&id, n);
        }
        n
    }

    /// `tollgate_catalog_activate`.
    pub fn activate_catalog(&self, id: &str, version: i64) -> bool {
        let mut all = self.catalogs.borrow_mut();
        let Some(versions) = all.get_mut(id) else { return false };
        if !versions.iter().any(|v| v.0 == version) {
            return false;
        }
        for v in versions.iter_mut() {
            v.3 = v.0 == version;
        }
        true
    }

    fn active(&self, id: &str) -> Option<(i64, String, Value, bool)> {
        self.catalogs.borrow().get(id).and_then(|vs| vs.iter().find(|v| v.3).cloned())
    }
}

fn rejected(message: &str) -> StoreError {
    StoreError::Rejected {
        status: 400,
        error: PgError { code: Some("22023".into()), message: Some(message.into()), ..PgError::default() },
    }
}

fn conflict(hint: &str, message: &str) -> StoreError {
    StoreError::Conflict {
        status: 409,
        error: PgError {
            code: Some("PT409".into()),
            message: Some(message.into()),
            hint: Some(hint.into()),
            ..PgError::default()
        },
    }
}

impl Inner {
    /// `tollgate_apply_alerts`: the same rules, on the same rows.
    fn apply_alerts(&mut self, key: &str, checks: &[AlertCheck], at: Timestamp) -> AlertsApplied {
        let mut done = AlertsApplied::default();
        for c in checks {
            let crossed = match &c.level {
                Level::Known { known } => *known,
                Level::CounterAtLeast { counter, window_start, at_least } => {
                    self.counters.get(&(key.to_string(), counter.clone(), *window_start)).copied().unwrap_or(0) >= *at_least
                }
                // What may be spent, as `credit_balances` says (a paused subscription's lots
                // left out), of a pool the subject holds lots in (as 20261207004000's form).
                Level::BalanceBelow { pool, below } => self.available(key).get(pool).is_some_and(|a| a < below),
            };
            let resolved: Vec<usize> = (0..self.alerts.len())
                .filter(|i| {
                    let a = &self.alerts[*i];
                    a.subject == key && a.rule == c.rule && a.resolved_at.is_none() && (!crossed || a.episode != c.episode)
                        // A limit's alert only by a check of its own window or a later one
                        // (as tollgate_apply_alerts of 20261206016000).
                        && (!a.rule.starts_with("limit:") || window_of(&a.episode) <= window_of(&c.episode))
                })
                .collect();
            for i in resolved {
                self.alerts[i].resolved_at = Some(at);
                done.resolved += 1;
                let a = self.alerts[i].clone();
                done.queued += self.queue_alert(&a, "alert.resolved", at);
            }
            let open = self.alerts.iter().any(|a| a.subject == key && a.rule == c.rule && a.resolved_at.is_none());
            let seen = !c.episode.is_empty()
                && self.alerts.iter().any(|a| a.subject == key && a.rule == c.rule && a.episode == c.episode);
            if crossed && !open && !seen {
                self.alert_seq += 1;
                let a = MemAlert {
                    id: self.alert_seq,
                    subject: key.to_string(),
                    rule: c.rule.clone(),
                    episode: c.episode.clone(),
                    body: c.alert.clone(),
                    crossed_at: at,
                    resolved_at: None,
                };
                self.alerts.push(a.clone());
                done.crossed += 1;
                done.queued += self.queue_alert(&a, "alert.crossed", at);
            }
        }
        done
    }

    /// `tollgate_queue_alert`.
    fn queue_alert(&mut self, a: &MemAlert, ty: &str, at: Timestamp) -> u32 {
        let status = if ty == "alert.resolved" { "resolved" } else { "crossed" };
        let msg_id = format!("msg_alert_{}_{status}", a.id);
        let mut data = a.body.clone();
        if !data.is_object() {
            data = json!({});
        }
        data["alert_id"] = json!(a.id);
        data["status"] = json!(status);
        data["rule"] = json!(a.rule);
        data["subject"] = Subject::from_key(&a.subject).map(|s| s.to_json()).unwrap_or(Value::Null);
        data["crossed_at"] = json!(a.crossed_at);
        data["resolved_at"] = json!(a.resolved_at);
        let payload = json!({"type": ty, "timestamp": at, "data": data});
        let targets: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| e.events.iter().any(|x| x == ty || x == "*"))
            .map(|e| e.id.clone())
            .collect();
        let mut n = 0;
        for e in targets {
            if self.messages.iter().any(|m| m.endpoint == e && m.msg_id == msg_id) {
                continue;
            }
            self.alert_seq += 1;
            let id = self.alert_seq;
            self.messages.push(MemMessage {
                id,
                endpoint: e,
                msg_id: msg_id.clone(),
                subject: a.subject.clone(),
                payload: payload.clone(),
                created_at: at,
                next_attempt_at: Some(at),
                attempts: 0,
                delivered_at: None,
                given_up_at: None,
            });
            n += 1;
        }
        n
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn known(&self, s: &Subject) -> bool {
        match s {
            Subject::User(id) => self.users.contains(id),
            Subject::Org(id) => self.orgs.contains(id),
        }
    }

    /// What `credit_balances` says for a subject: per pool it holds lots in, what its open
    /// lots hold, less the lots of a subscription one of its grants says is paused
    /// ([`Self::paused`]). A pool's low-balance alerts compare the same number.
    fn available(&self, key: &str) -> BTreeMap<String, i64> {
        let paused = self.paused(key);
        let mut out: BTreeMap<String, i64> = BTreeMap::new();
        for l in self.lots.get(key).into_iter().flatten() {
            let frozen = l.lot.subscription.as_ref().is_some_and(|s| paused.contains(s));
            *out.entry(l.lot.pool.clone()).or_insert(0) += if l.lot.closed || frozen { 0 } else { l.lot.remaining };
        }
        out
    }

    fn balances(&self, key: &str) -> Value {
        json!(self.available(key))
    }

    /// The subscriptions a grant of the subject says are paused (`tollgate::usage::paused_subscriptions`),
    /// whose lots `credit_balances` leaves out. The view judges each grant at `now()`;
    /// this store has no clock, so a grant is judged from its pause on (the latest of its
    /// `valid_from`, `valid_to` and `paused_since`), where `now()` is once the row is written.
    fn paused(&self, key: &str) -> BTreeSet<String> {
        self.grant_rows(key)
            .into_iter()
            .filter_map(|v| serde_json::from_value::<GrantRow>(v).ok())
            .map(GrantRow::into_grant)
            .filter_map(|g| {
                let at = [Some(g.valid_from), g.valid_to, g.paused_since].into_iter().flatten().max()?;
                let paused = tollgate::usage::paused_subscriptions(std::slice::from_ref(&g), at);
                paused.into_iter().next().map(str::to_string)
            })
            .collect()
    }

    fn grant_rows(&self, key: &str) -> Vec<Value> {
        self.grants.get(key).map(|m| m.values().map(|(_, v)| v.clone()).collect()).unwrap_or_default()
    }

    /// The subject's state as `tollgate_subject_state` answers it, with its stamp.
    fn state_json(&self, s: &Subject, ledger_key: Option<&str>) -> Value {
        let key = s.key();
        let lots: Vec<Value> = self
            .lots
            .get(&key)
            .into_iter()
            .flatten()
            .map(|l| {
                let mut v = serde_json::to_value(&l.lot).unwrap_or_default();
                v["released"] = json!(l.released);
                v
            })
            .collect();
        let prefix = ledger_key.map(|k| format!("{k}:"));
        let ledger: Vec<&LedgerEntry> = self
            .ledger
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|e| match (ledger_key, &prefix) {
                (Some(k), Some(p)) => e.key == k || e.key.starts_with(p.as_str()),
                _ => true,
            })
            .collect();
        let memberships: Vec<Value> = match s {
            Subject::Org(_) => vec![],
            Subject::User(u) => self
                .members
                .iter()
                .filter(|(_, m)| m.contains(u))
                .map(|(o, _)| {
                    json!({
                        "organization_id": o,
                        "role": self.roles.get(&(o.clone(), u.clone())).map_or("member", String::as_str),
                        "seat": self.seats.get(o).is_some_and(|x| x.contains(u)),
                        "seat_count": self.seat_count.get(o).copied().unwrap_or(0),
                        "grants": self.grant_rows(&format!("org:{o}")),
                    })
                })
                .collect(),
        };
        let mut v = json!({
            "subject": s.to_json(),
            "version": self.versions.get(&key).copied().unwrap_or(0),
            "state": self.states.get(&key).cloned().unwrap_or(json!({})),
            "grants": self.grant_rows(&key),
            "balances": self.balances(&key),
            "wallet": {"lots": lots, "ledger": ledger},
            "preferences": self.preferences.get(&key).cloned(),
            "seats": match s { Subject::Org(o) => json!(self.seats.get(o).map(|x| x.len()).unwrap_or(0)), _ => Value::Null },
            "memberships": memberships,
            "subscriptions": self.subscriptions.get(&key).map(|m| m.values().cloned().collect::<Vec<_>>()).unwrap_or_default(),
        });
        v["stamp"] = json!(stamp(&v));
        if ledger_key.is_none() {
            // The snapshot's read: open alerts and failed payments still due.
            let alerts: Vec<Value> = self
                .alerts
                .iter()
                .filter(|a| a.subject == key && a.resolved_at.is_none())
                .map(|a| json!({"rule": a.rule, "kind": a.body["kind"], "body": a.body, "crossed_at": a.crossed_at}))
                .collect();
            let failed: Vec<Value> = self
                .failed
                .values()
                .filter(|(k, r)| *k == key && r["resolved_at"].is_null())
                .map(|(_, r)| r.clone())
                .collect();
            v["alerts"] = json!(alerts);
            v["failed_payments"] = json!(failed);
        }
        v
    }

    fn state(&self, s: &Subject, ledger_key: Option<&str>) -> Result<SubjectState, StoreError> {
        SubjectState::from_store(s, self.state_json(s, ledger_key))
    }

    fn charged(&self, r: &Record) -> Charged {
        Charged { usage_id: json!(r.id), record: r.record.clone(), balances: self.balances(&r.subject), left: BTreeMap::new() }
    }

    fn cluster(&self, refs: &BTreeSet<String>) -> BTreeSet<String> {
        let mut refs = refs.clone();
        loop {
            let more: BTreeSet<String> = self
                .facts
                .iter()
                .filter(|(_, f)| f.kind != "usage" && f.refs.iter().any(|r| refs.contains(r)))
                .flat_map(|(_, f)| f.refs.iter().cloned())
                .filter(|r| !refs.contains(r))
                .collect();
            if more.is_empty() {
                return refs;
            }
            refs.extend(more);
        }
    }

    /// Makes `user` a member of `org` (as `role` when it was not one already).
    fn join(&mut self, org: &str, user: &str, role: &str) {
        self.members.entry(org.to_string()).or_default().insert(user.to_string());
        self.roles.entry((org.to_string(), user.to_string())).or_insert_with(|| role.to_string());
        let seq = self.next();
        self.joined.entry((org.to_string(), user.to_string())).or_insert(seq);
    }

    fn history(&mut self, org: &str, kind: &str, actor: Option<&str>, user: Option<&str>, email: Option<&str>) {
        self.changes.push(OrgHistory {
            org: org.into(),
            kind: kind.into(),
            actor: actor.map(str::to_string),
            user: user.map(str::to_string),
            email: email.map(str::to_string),
        });
    }

    /// The latest seat fact of (organization, user): its type and who made it
    /// (`tollgate_seat_fact`).
    fn seat_fact(&self, org: &str, user: &str) -> Option<(String, Option<String>)> {
        let (o, u) = (format!("org:{org}"), format!("user:{user}"));
        self.facts
            .iter()
            .filter(|(_, f)| (f.kind == "seat_assigned" || f.kind == "seat_released") && f.refs.contains(&o) && f.refs.contains(&u))
            .max_by(|(ka, a), (kb, b)| {
                let at = |f: &StoredFact| serde_json::from_value::<Timestamp>(f.fact["at"].clone()).unwrap_or(Timestamp(0));
                (at(a), ka).cmp(&(at(b), kb))
            })
            .map(|(_, f)| (f.kind.clone(), f.fact["by"].as_str().filter(|b| !b.is_empty()).map(str::to_string)))
    }

    /// A seat allocated or released by a fold, as the trigger on `seat_allocations` records it.
    fn seat_moved(&mut self, org: &str, user: &str, given: bool) {
        let fact = self.seat_fact(org, user);
        let key = (org.to_string(), user.to_string());
        match (given, fact) {
            (true, f) => {
                let by = f.filter(|(k, _)| k == "seat_assigned").and_then(|(_, by)| by);
                self.seat_by.insert(key, (by.clone(), None));
                self.history(org, "seat_given", by.as_deref(), Some(user), None);
            }
            (false, Some((k, by))) if k == "seat_released" => {
                self.seat_by.entry(key).or_default().1 = by.clone();
                self.history(org, "seat_taken", by.as_deref(), Some(user), None);
            }
            (false, _) => self.history(org, "seat_lost", None, Some(user), None),
        }
    }

    /// The organization as `tollgate_org` answers it.
    fn org_json(&self, org: &str) -> Value {
        if !self.orgs.contains(org) {
            return Value::Null;
        }
        let mut members: Vec<(u64, String)> = self
            .members
            .get(org)
            .into_iter()
            .flatten()
            .map(|u| (self.joined.get(&(org.to_string(), u.clone())).copied().unwrap_or(0), u.clone()))
            .collect();
        members.sort();
        let members: Vec<Value> = members
            .iter()
            .map(|(_, u)| {
                json!({
                    "user_id": u,
                    "role": self.roles.get(&(org.to_string(), u.clone())).map_or("member", String::as_str),
                    "email": self.emails.get(u),
                    "joined_at": null,
                    "seat": self.seats.get(org).is_some_and(|s| s.contains(u)),
                })
            })
            .collect();
        let invites: Vec<Value> = self
            .invites
            .iter()
            .filter(|(i, _, _)| i.organization_id == org && i.accepted_at.is_none() && i.revoked_at.is_none())
            .map(|(i, _, _)| serde_json::to_value(i).unwrap_or_default())
            .collect();
        let mut v = json!({
            "id": org,
            "name": self.org_names.get(org).cloned().unwrap_or_default(),
            "seat_count": self.seat_count.get(org).copied().unwrap_or(0),
            "members": members,
            "invites": invites,
        });
        v["stamp"] = json!(hex::encode(&Sha256::digest(v.to_string().as_bytes())[..16]));
        v["grants"] = json!(self.grant_rows(&format!("org:{org}")));
        v
    }

    fn version(&self, refs: &BTreeSet<String>) -> i64 {
        self.facts.iter().filter(|(_, f)| f.kind != "usage" && f.refs.iter().any(|r| refs.contains(r))).count() as i64
    }
}

/// What a charge is decided from, as one value: the state without the units charges move.
/// The window of a limit alert's episode (`<window start>/<limit>`).
fn window_of(episode: &str) -> &str {
    episode.split('/').next().unwrap_or_default()
}

fn stamp(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("balances");
        o.remove("stamp");
    }
    if let Some(lots) = v.pointer_mut("/wallet/lots").and_then(Value::as_array_mut) {
        for l in lots.iter_mut().filter_map(Value::as_object_mut) {
            l.remove("remaining");
            l.remove("used");
        }
    }
    if let Some(w) = v.get_mut("wallet").and_then(Value::as_object_mut) {
        w.remove("ledger");
    }
    hex::encode(&Sha256::digest(v.to_string().as_bytes())[..16])
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A user Supabase Auth knows.
    pub fn add_user(&self, id: &str) {
        self.inner.borrow_mut().users.insert(id.to_string());
    }

    /// Makes `user` a member of `org` with `role` (`owner`, `admin`, `member`).
    pub fn add_member(&self, org: &str, user: &str, role: &str) {
        let mut g = self.inner.borrow_mut();
        g.join(org, user, role);
        g.roles.insert((org.to_string(), user.to_string()), role.to_string());
    }

    /// Ends `user`'s membership of `org` as a removal does (`organization_members`), with
    /// no history row: a change that lands between two calls of a route (tests).
    pub fn remove_member(&self, org: &str, user: &str) {
        let mut g = self.inner.borrow_mut();
        if let Some(m) = g.members.get_mut(org) {
            m.remove(user);
        }
        g.roles.remove(&(org.to_string(), user.to_string()));
        g.joined.remove(&(org.to_string(), user.to_string()));
    }

    /// Frees `user`'s seat of `org` as a fold of its seat taken does (`seat_allocations`):
    /// a change that lands between two calls of a route (tests).
    pub fn free_seat(&self, org: &str, user: &str) {
        if let Some(s) = self.inner.borrow_mut().seats.get_mut(org) {
            s.remove(user);
        }
    }

    /// Runs `f` once, as the next [`Store::settle`] begins: another request's change
    /// landing after everything a settle route read and before its settling (tests).
    pub fn before_next_settle(&self, f: impl FnOnce(&MemoryStore) + 'static) {
        *self.before_settle.borrow_mut() = Some(Box::new(f));
    }

    /// Runs `f` once, as the next [`Store::org_change`] begins: another request's change
    /// landing after everything an organization route read and before its write (tests).
    pub fn before_next_org_change(&self, f: impl FnOnce(&MemoryStore) + 'static) {
        *self.before_org_change.borrow_mut() = Some(Box::new(f));
    }

    /// Invite `invite` accepted by `user`, as another request's acceptance writes it.
    pub fn accept_invite_now(&self, invite: &str, user: &str) {
        let mut g = self.inner.borrow_mut();
        if let Some((i, _, _)) = g.invites.iter_mut().find(|(i, _, _)| i.id == invite) {
            i.accepted_at = Some(Timestamp(0));
            i.accepted_by = Some(user.to_string());
        }
    }

    /// A user Supabase Auth knows, with its email address.
    pub fn add_user_with_email(&self, id: &str, email: &str) {
        let mut g = self.inner.borrow_mut();
        g.users.insert(id.to_string());
        g.emails.insert(id.to_string(), email.to_string());
    }

    /// The organization's history (`organization_changes`), oldest first.
    pub fn org_history(&self, org: &str) -> Vec<OrgHistory> {
        self.inner.borrow().changes.iter().filter(|c| c.org == org).cloned().collect()
    }

    /// Who gave and who took the latest seat of (organization, user)
    /// (`seat_allocations.allocated_by`, `released_by`).
    pub fn seat_by(&self, org: &str, user: &str) -> (Option<String>, Option<String>) {
        self.inner.borrow().seat_by.get(&(org.to_string(), user.to_string())).cloned().unwrap_or_default()
    }

    /// The organization's invites, every state (`organization_invites`).
    pub fn invites(&self, org: &str) -> Vec<Invite> {
        self.inner.borrow().invites.iter().filter(|(i, _, _)| i.organization_id == org).map(|(i, _, _)| i.clone()).collect()
    }

    /// Sets an invite's expiry (as time passing would, for tests).
    pub fn expire_invite(&self, id: &str, at: Timestamp) {
        if let Some((i, _, _)) = self.inner.borrow_mut().invites.iter_mut().find(|(i, _, _)| i.id == id) {
            i.expires_at = at;
        }
    }

    pub fn add_org(&self, id: &str) {
        self.inner.borrow_mut().orgs.insert(id.to_string());
    }

    /// The subject's overage opt-in and cap (`usage_preferences`).
    pub fn set_preferences(&self, subject: &Subject, allow_overages: bool, overage_limit_minor: i64) {
        self.inner.borrow_mut().preferences.insert(
            subject.key(),
            json!({"allow_overages": allow_overages, "overage_limit_minor": overage_limit_minor}),
        );
    }

    /// What `credit_balances` says for a subject's pool (a paused subscription's lots
    /// left out; [`Self::lots`] holds them all).
    pub fn balance(&self, subject: &Subject, pool: &str) -> i64 {
        self.inner.borrow().balances(&subject.key())[pool].as_i64().unwrap_or(0)
    }

    /// The subject's lots as stored.
    pub fn lots(&self, subject: &Subject) -> Vec<Lot> {
        self.inner.borrow().lots.get(&subject.key()).map(|v| v.iter().map(|l| l.lot.clone()).collect()).unwrap_or_default()
    }

    /// The subject's ledger as stored.
    pub fn ledger(&self, subject: &Subject) -> Vec<LedgerEntry> {
        self.inner.borrow().ledger.get(&subject.key()).cloned().unwrap_or_default()
    }

    /// The subject's grant rows (`cloud_entitlements`).
    pub fn grants(&self, subject: &Subject) -> Vec<Value> {
        self.inner.borrow().grant_rows(&subject.key())
    }

    /// How many charges (usage records) the subject has.
    pub fn charges(&self, subject: &Subject) -> Vec<Value> {
        let key = subject.key();
        self.inner.borrow().records.values().filter(|r| r.subject == key && r.record.get("feature").is_none()).map(|r| r.record.clone()).collect()
    }

    /// Kept deliveries not applied yet.
    pub fn kept(&self) -> Vec<(String, String, String)> {
        self.inner
            .borrow()
            .kept
            .iter()
            .filter(|(_, k)| !k.resolved)
            .map(|((p, e), k)| (p.clone(), e.clone(), k.reason.clone()))
            .collect()
    }

    /// How many times each kept delivery not applied yet was tried.
    pub fn kept_attempts(&self) -> Vec<u32> {
        self.inner.borrow().kept.values().filter(|k| !k.resolved).map(|k| k.attempts).collect()
    }

    /// A subject's alerts: (rule, episode, open).
    pub fn alerts_of(&self, subject: &Subject) -> Vec<(String, String, bool)> {
        let g = self.inner.borrow();
        g.alerts.iter().filter(|a| a.subject == subject.key()).map(|a| (a.rule.clone(), a.episode.clone(), a.resolved_at.is_none())).collect()
    }

    /// Every outbox message: (msg_id, payload, delivered, attempts).
    pub fn outbox(&self) -> Vec<(String, Value, bool, u32)> {
        let g = self.inner.borrow();
        g.messages.iter().map(|m| (m.msg_id.clone(), m.payload.clone(), m.delivered_at.is_some(), m.attempts)).collect()
    }

    /// A subject's failed payments, as its user reads them (newest first failure first).
    pub fn failed_payments_of(&self, subject: &Subject) -> Vec<Value> {
        let g = self.inner.borrow();
        let mut v: Vec<Value> = g.failed.values().filter(|(k, _)| *k == subject.key()).map(|(_, r)| r.clone()).collect();
        v.sort_by(|a, b| b["first_failed_at"].as_str().cmp(&a["first_failed_at"].as_str()));
        v
    }

    pub fn events(&self) -> usize {
        self.inner.borrow().events.len()
    }
}

impl MemoryStore {
    /// Counts one call: a request of the REST store.
    fn ask(&self) {
        self.requests.set(self.requests.get() + 1);
    }
}

impl Store for MemoryStore {
    fn requests(&self) -> u64 {
        self.requests.get()
    }

    async fn active_catalog(&self, id: &str) -> Result<Option<crate::store::StoredCatalog>, StoreError> {
        self.ask();
        let (full, checks) = self.catalog_reads.get();
        self.catalog_reads.set((full + 1, checks));
        Ok(self.active(id).map(|(version, digest, document, _)| crate::store::StoredCatalog { version, digest, document }))
    }

    async fn active_catalog_version(&self, id: &str) -> Result<Option<crate::store::CatalogVersion>, StoreError> {
        self.ask();
        let (full, checks) = self.catalog_reads.get();
        self.catalog_reads.set((full, checks + 1));
        Ok(self.active(id).map(|(version, digest, _, _)| crate::store::CatalogVersion { version, digest }))
    }

    async fn catalog_version(&self, id: &str, version: u32) -> Result<Option<crate::store::StoredCatalog>, StoreError> {
        self.ask();
        self.version_reads.set(self.version_reads.get() + 1);
        let all = self.catalogs.borrow();
        let found = all.get(id).and_then(|vs| vs.iter().find(|v| v.0 == i64::from(version)).cloned());
        Ok(found.map(|(version, digest, document, _)| crate::store::StoredCatalog { version, digest, document }))
    }

    async fn subject_state(&self, subject: &Subject, ledger_key: Option<&str>) -> Result<SubjectState, StoreError> {
        self.ask();
        self.inner.borrow().state(subject, ledger_key)
    }

    async fn gate_state(&self, subject: &Subject, counter: Option<(&Subject, &str)>) -> Result<(SubjectState, Option<(Timestamp, u64)>), StoreError> {
        self.ask();
        let st = self.subject_state(subject, Some("-")).await?;
        let latest = counter.and_then(|(owner, id)| {
            let g = self.inner.borrow();
            let key = owner.key();
            g.counters.iter().filter(|((k, c, _), _)| *k == key && c == id).map(|((_, _, start), used)| (*start, *used)).max()
        });
        Ok((st, latest))
    }

    async fn subject_exists(&self, subject: &Subject) -> Result<bool, StoreError> {
        self.ask();
        Ok(self.inner.borrow().known(subject))
    }

    async fn usage_by_day(&self, subject: &Subject, feature: &str, from: Timestamp, to: Timestamp) -> Result<Value, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut days: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in g.records.values().filter(|r| r.subject == subject.key()) {
            let of = r.record.get("feature").or_else(|| r.record.get("pool")).and_then(Value::as_str);
            let at = r.at;
            // A released hold or use gave back what it took: it is no use.
            if of != Some(feature) || at < from || at >= to || r.record["status"] == "released" {
                continue;
            }
            let day = at.to_rfc3339()[..10].to_string();
            let e = days.entry(day).or_default();
            e.0 += r.record["units"].as_u64().unwrap_or(0);
            e.1 += 1;
        }
        Ok(Value::Array(days.into_iter().map(|(day, (units, uses))| json!({"day": day, "units": units, "uses": uses})).collect()))
    }

    async fn usage_owner(&self, caller: &Subject, usage_id: &str) -> Result<Option<SettledUse>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let Some(r) = g.records.values().find(|r| r.id == usage_id) else { return Ok(None) };
        let row = match Subject::from_key(&r.subject) {
            Some(Subject::User(u)) => json!({"user_id": u, "organization_id": null, "actor_id": null}),
            Some(Subject::Org(o)) => {
                let actor = r.record["actor"].as_str().and_then(|a| a.strip_prefix("user:"));
                json!({"user_id": null, "organization_id": o, "actor_id": actor})
            }
            None => return Ok(None),
        };
        Ok(crate::store::usage_owner_of(caller, &row).and_then(|_| settled_use(r)))
    }

    async fn settle(
        &self,
        subject: &Subject,
        usage_id: &str,
        release: bool,
        now: Timestamp,
        used: Option<SettledUse>,
    ) -> Result<SettleAnswer, StoreError> {
        self.ask();
        let before = self.before_settle.borrow_mut().take();
        if let Some(f) = before {
            f(self);
        }
        let mut g = self.inner.borrow_mut();
        let key = subject.key();
        // The subject's record, or one it used for an organization (its actor), as the SQL does.
        let Some(rid) = g
            .records
            .iter()
            .find(|(_, r)| r.id == usage_id && (r.subject == key || r.record["actor"].as_str() == Some(key.as_str())))
            .map(|(k, _)| k.clone())
        else {
            return Ok(SettleAnswer::NotFound);
        };
        let status = g.records[&rid].record["status"].as_str().unwrap_or("charged").to_string();
        // Settled as asked before: a retry, answered as the first settling was.
        let done = status == if release { "released" } else { "captured" };
        // A use the caller made for an organization (its actor): settled only while the
        // core's rule allows it on the membership and seat as they are now, in this call.
        if let (Some(Subject::Org(org)), Subject::User(user)) = (Subject::from_key(&g.records[&rid].subject), subject) {
            let member = g.members.get(&org).is_some_and(|m| m.contains(user));
            let seated = g.seats.get(&org).is_some_and(|s| s.contains(user));
            if let Err(e) = tollgate::seats::may_settle(member, seated, done) {
                return Ok(SettleAnswer::NotActing(e));
            }
        }
        if done {
            return Ok(SettleAnswer::Settled(Settled { usage_id: json!(usage_id), status, replayed: true, refold: false, settled: None }));
        }
        let settled = used.or_else(|| settled_use(&g.records[&rid]));
        match (release, status.as_str()) {
            (false, "released") => return Err(conflict("released", "the hold was released: nothing to capture")),
            (false, "held") if serde_json::from_value::<Timestamp>(g.records[&rid].record["hold_until"].clone()).is_ok_and(|t| t <= now) => {
                return Err(conflict("hold_expired", "the hold has ended: what it took is given back, not captured"))
            }
            (_, "held") => {}
            (true, "charged") if g.records[&rid].record.get("counter").is_some() => {
                // A counted use: back to its counter, when the limit has no window.
                let r = g.records[&rid].record.clone();
                let start: Timestamp = serde_json::from_value(r["window_start"].clone()).unwrap_or(Timestamp(0));
                if start != Timestamp(0) {
                    return Err(conflict("not_releasable", "a use of a limit with a window is final"));
                }
                let slot = (g.records[&rid].subject.clone(), r["counter"].as_str().unwrap_or("").to_string(), start);
                let units = r["units"].as_u64().unwrap_or(0);
                if let Some(n) = g.counters.get_mut(&slot) {
                    *n = n.saturating_sub(units);
                }
                g.records.get_mut(&rid).expect("found above").record["status"] = json!("released");
                return Ok(SettleAnswer::Settled(Settled { usage_id: json!(usage_id), status: "released".into(), replayed: false, refold: false, settled }));
            }
            _ => return Err(conflict("not_held", "the usage is final, not a hold")),
        }
        let mut refold = false;
        if release {
            let takes = g.records[&rid].record["takes"].as_array().cloned().unwrap_or_default();
            for t in takes {
                let (lot, units) = (t["lot"].as_str().unwrap_or(""), t["units"].as_i64().unwrap_or(0));
                let Some(l) = g.lots.get_mut(&key).and_then(|ls| ls.iter_mut().find(|l| l.lot.key == lot)) else {
                    return Err(conflict("lot_short", "a lot no longer records the take of this hold"));
                };
                l.lot.used -= units;
                l.released += units;
                if l.lot.closed {
                    l.lot.expired += units;
                    refold = true;
                } else {
                    l.lot.remaining += units;
                }
            }
        }
        let now_status = if release { "released" } else { "captured" };
        if let Some(r) = g.records.get_mut(&rid) {
            r.record["status"] = json!(now_status);
        }
        Ok(SettleAnswer::Settled(Settled { usage_id: json!(usage_id), status: now_status.into(), replayed: false, refold, settled }))
    }

    async fn expired_holds(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<ExpiredHold>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut held: Vec<(Timestamp, String, String)> = g
            .records
            .values()
            .filter(|r| r.record["status"] == "held")
            .filter_map(|r| {
                let until: Timestamp = serde_json::from_value(r.record["hold_until"].clone()).ok()?;
                (until <= now).then(|| (until, r.id.clone(), r.subject.clone()))
            })
            .filter(|(until, id, _)| after.is_none_or(|(at, after_id)| (until, id) > (at, after_id)))
            .collect();
        held.sort();
        Ok(held
            .into_iter()
            .take(limit as usize)
            .filter_map(|(hold_until, id, s)| Some(ExpiredHold { usage_id: id, hold_until, subject: Subject::from_key(&s)? }))
            .collect())
    }

    async fn set_preferences(&self, subject: &Subject, choice: &OverageChoice) -> Result<i64, StoreError> {
        self.ask();
        let stored = self.inner.borrow().preferences.get(&subject.key()).and_then(|p| p["overage_limit_minor"].as_i64());
        let limit = match stored {
            Some(kept) if !choice.limit_named => kept,
            _ => choice.overage_limit,
        };
        MemoryStore::set_preferences(self, subject, choice.allow_overages, limit);
        Ok(limit)
    }

    async fn charge(&self, subject: &Subject, c: &Charge, stamp_in: Option<&str>, period: Timestamp) -> Result<ChargeAnswer, StoreError> {
        self.ask();
        let mut g = self.inner.borrow_mut();
        let key = subject.key();
        if let Some(r) = g.records.get(&c.request_id) {
            if r.hash != c.request_hash || r.subject != key {
                return Err(conflict("key_reused", "Idempotency-Key was already used for a different request"));
            }
            return Ok(ChargeAnswer::Replayed(g.charged(r)));
        }
        if c.takes.iter().any(|t| t.units <= 0 || t.lot.is_empty()) {
            return Err(rejected("each take needs a lot and positive units"));
        }
        let taken: i64 = c.takes.iter().map(|t| t.units).sum();
        if c.record.units == 0 || taken + c.record.overage_units as i64 != c.record.units as i64 {
            return Err(rejected("a charge must account for its units: takes plus overage units equal units"));
        }
        let ledger_key = format!("usage:{}", c.request_id);
        if let Some(st) = stamp_in {
            let now = g.state_json(subject, Some(&ledger_key));
            if now["stamp"].as_str() != Some(st) {
                return Ok(ChargeAnswer::Stale(Box::new(g.state(subject, Some(&ledger_key))?)));
            }
        }
        for t in &c.takes {
            let ok = g
                .lots
                .get(&key)
                .and_then(|ls| ls.iter().find(|l| l.lot.key == t.lot))
                .is_some_and(|l| !l.lot.closed && l.lot.remaining >= t.units);
            if !ok {
                return Err(conflict("lot_short", "a lot no longer holds what the charge takes"));
            }
        }
        // The overage counts against the period's cap (the counter tollgate_charge keeps).
        if let (Some(limit), true) = (c.overage_limit, c.record.overage_minor > 0) {
            let slot = (key.clone(), tollgate::meter::overage_counter(&c.record.currency), period);
            let spent = g.counters.get(&slot).copied().unwrap_or(0) + c.record.overage_minor as u64;
            if spent > limit as u64 {
                return Err(conflict("overage_cap", "the overage would pass the cap of the billing period"));
            }
            g.counters.insert(slot, spent);
        }
        // Everything checked: write the record and the takes (the statement shows the
        // takes as ledger entries; no billing fact: the record is the charge's fact).
        let mut left = BTreeMap::new();
        for t in &c.takes {
            let l = g.lots.get_mut(&key).and_then(|ls| ls.iter_mut().find(|l| l.lot.key == t.lot)).expect("checked");
            l.lot.remaining -= t.units;
            l.lot.used += t.units;
            left.insert(t.lot.clone(), l.lot.remaining);
        }
        g.ledger.entry(key.clone()).or_default().extend(c.entries.iter().cloned());
        let id = format!("00000000-0000-4000-9000-{:012x}", g.next());
        let record = record_json(c, Value::Null);
        let answer = Charged { usage_id: json!(id), record: record.clone(), balances: Value::Null, left };
        g.records.insert(c.request_id.clone(), Record { id, subject: key, hash: c.request_hash.clone(), record, at: c.fact.at });
        Ok(ChargeAnswer::Charged(answer))
    }

    async fn counter(&self, subject: &Subject, limit: &str, window_start: Timestamp) -> Result<u64, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        Ok(g.counters.get(&(subject.key(), limit.to_string(), window_start)).copied().unwrap_or(0))
    }

    async fn track_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Counted>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let key = subject.key();
        let Some(r) = g.records.get(request_id) else { return Ok(None) };
        if r.hash != request_hash || r.subject != key {
            return Err(conflict("key_reused", "Idempotency-Key was already used for a different request"));
        }
        let start: Timestamp =
            serde_json::from_value(r.record["window_start"].clone()).map_err(|e| StoreError::Decode(e.to_string()))?;
        let counter = r.record.get("counter").or_else(|| r.record.get("feature")).and_then(Value::as_str).unwrap_or("").to_string();
        let used = g.counters.get(&(key, counter, start)).copied().unwrap_or(0);
        Ok(Some(Counted::Replayed { usage_id: json!(r.id), used }))
    }

    async fn track(&self, subject: &Subject, c: &Count) -> Result<Counted, StoreError> {
        self.ask();
        if let Some(replayed) = self.track_replay(subject, &c.request_id, &c.request_hash).await? {
            return Ok(replayed);
        }
        let mut g = self.inner.borrow_mut();
        let key = subject.key();
        if c.quantity == 0 {
            return Err(rejected("a count needs a positive quantity and a limit of 0 or more"));
        }
        let slot = (key.clone(), c.counter.clone(), c.window_start);
        let used = g.counters.get(&slot).copied().unwrap_or(0) + c.quantity;
        if c.max.is_some_and(|m| used > m) {
            return Ok(Counted::LimitReached { used: used - c.quantity });
        }
        g.counters.insert(slot, used);
        let id = format!("00000000-0000-4000-9000-{:012x}", g.next());
        let record = json!({"request_id": c.request_id, "units": c.quantity, "feature": c.feature, "counter": c.counter,
                            "window_start": c.window_start, "actor": c.actor});
        g.records.insert(c.request_id.clone(), Record { id: id.clone(), subject: key, hash: c.request_hash.clone(), record, at: c.at });
        Ok(Counted::Counted { usage_id: json!(id), used })
    }

    async fn charge_replay(&self, subject: &Subject, request_id: &str, request_hash: &str) -> Result<Option<Charged>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        match g.records.get(request_id) {
            None => Ok(None),
            Some(r) if r.hash != request_hash || r.subject != subject.key() => {
                Err(conflict("key_reused", "Idempotency-Key was already used for a different request"))
            }
            Some(r) => Ok(Some(g.charged(r))),
        }
    }

    async fn fold_input(&self, refs: &BTreeSet<String>) -> Result<FoldInput, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let cluster = g.cluster(refs);
        let facts = g
            .facts
            .iter()
            .filter(|(_, f)| f.kind != "usage" && f.refs.iter().any(|r| cluster.contains(r)))
            .map(|(_, f)| serde_json::from_value::<Fact>(f.fact.clone()).map_err(|e| StoreError::Decode(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut usage = UsageTotals::new();
        for r in &cluster {
            for l in g.lots.get(r).into_iter().flatten().filter(|l| l.lot.used > 0) {
                usage.entry(r.clone()).or_default().insert(l.lot.key.clone(), l.lot.used);
            }
        }
        Ok(FoldInput { version: g.version(&cluster), refs: cluster, facts, usage })
    }

    async fn apply_fold(&self, fold: &FoldWrite<'_>) -> Result<FoldApplied, StoreError> {
        self.ask();
        let mut g = self.inner.borrow_mut();
        if let Some(e) = fold.event {
            if g.events.contains(&(e.provider.clone(), e.event_id.clone())) {
                return Ok(FoldApplied { status: FoldStatus::Duplicate, version: 0, unknown: vec![], conflicts: vec![] });
            }
        }
        // Checks first: nothing is written unless all pass.
        if g.version(fold.refs) != fold.expected_version {
            return Err(conflict("fold_stale", "billing state changed concurrently"));
        }
        for f in fold.facts {
            let v = serde_json::to_value(f).map_err(|e| StoreError::Decode(e.to_string()))?;
            if let Some((_, old)) = g.facts.iter().find(|(k, _)| k == &f.key) {
                if old.fact != v && !old.refs.iter().any(|r| fold.refs.contains(r)) {
                    return Err(conflict("fact_conflict", "a fact with this key was stored before for others"));
                }
            }
        }
        for (s, rows) in &fold.subjects {
            for l in &rows.lots {
                let stored = g.lots.get(&s.key()).and_then(|ls| ls.iter().find(|x| x.lot.key == l.lot.key));
                if stored.is_some_and(|x| x.lot.used != l.used_read) {
                    return Err(conflict("fold_stale", "a charge took from a lot the fold writes"));
                }
            }
        }
        if let Some(e) = fold.event {
            g.events.insert((e.provider.clone(), e.event_id.clone()));
        }
        let mut conflicts = Vec::new();
        for f in fold.facts {
            let v = serde_json::to_value(f).map_err(|e| StoreError::Decode(e.to_string()))?;
            match g.facts.iter_mut().find(|(k, _)| k == &f.key) {
                Some((_, old)) => {
                    // An earlier telling of the stored fact replaces it (tollgate_apply_fold).
                    let told: Option<Fact> = serde_json::from_value(old.fact.clone()).ok();
                    if told.is_some_and(|t| t.restates(f) && f.at < t.at) {
                        old.fact = v;
                    } else if old.fact != v {
                        conflicts.push(f.key.clone());
                    }
                }
                None => {
                    let kind = f.body.type_name().to_string();
                    g.facts.push((f.key.clone(), StoredFact { kind, refs: f.refs(), fact: v }));
                }
            }
        }
        let mut unknown = Vec::new();
        for (s, rows) in &fold.subjects {
            if let Subject::User(id) = s {
                if !g.users.contains(id) {
                    unknown.push(s.key());
                    continue;
                }
            }
            if let Subject::Org(id) = s {
                g.orgs.insert(id.clone());
            }
            let key = s.key();
            *g.versions.entry(key.clone()).or_insert(0) += 1;
            g.folded.insert(key.clone(), fold.now);
            g.states.insert(key.clone(), rows.state.clone());
            for gr in &rows.grants {
                let v = serde_json::to_value(gr).map_err(|e| StoreError::Decode(e.to_string()))?;
                let id = g.grants.get(&key).and_then(|m| m.get(&gr.grant_key)).map(|(id, _)| *id);
                let id = match id {
                    Some(id) => id,
                    None => g.next(),
                };
                g.grants.entry(key.clone()).or_default().insert(gr.grant_key.clone(), (id, v));
            }
            // Written whole: a lot the fold no longer gives is withdrawn (`Lot::withdraw`).
            if let Some(stored) = g.lots.get_mut(&key) {
                for x in stored.iter_mut().filter(|x| !x.lot.closed && !rows.lots.iter().any(|l| l.lot.key == x.lot.key)) {
                    x.lot.withdraw();
                }
            }
            for l in &rows.lots {
                let existing = g.lots.get(&key).and_then(|ls| ls.iter().position(|x| x.lot.key == l.lot.key));
                let mut lot = l.lot.clone();
                lot.used = l.used_read;
                match existing {
                    Some(i) => g.lots.get_mut(&key).expect("found")[i].lot = lot,
                    None => {
                        let id = g.next();
                        g.lots.entry(key.clone()).or_default().push(StoredLot { id, lot, released: 0 });
                    }
                }
            }
            for sub in &rows.subscriptions {
                let mut v = serde_json::to_value(sub).map_err(|e| StoreError::Decode(e.to_string()))?;
                // When it was first recorded, kept across rewrites (the table's `created_at`;
                // this store has no clock: the start of the first period it was told with).
                let subs = g.subscriptions.entry(key.clone()).or_default();
                v["created_at"] = subs.get(&sub.subscription_id).map_or(json!(sub.current_period_start), |old| old["created_at"].clone());
                subs.insert(sub.subscription_id.clone(), v);
            }
            for c in &rows.customers {
                g.customers.entry(key.clone()).or_default().insert((c.provider.clone(), c.customer_id.clone()));
            }
            if !rows.alerts.is_empty() {
                let at = rows.alerts_at.unwrap_or(Timestamp(0));
                g.apply_alerts(&key, &rows.alerts, at);
            }
            for r in &rows.failed_payments {
                let v = serde_json::to_value(r).map_err(|e| StoreError::Decode(e.to_string()))?;
                g.failed.insert((r.provider.clone(), r.invoice_id.clone()), (key.clone(), v));
            }
            let ledger = g.ledger.entry(key.clone()).or_default();
            ledger.retain(|e| e.kind == EntryKind::Usage);
            ledger.extend(rows.ledger.iter().filter(|e| e.kind != EntryKind::Usage).cloned());
            if let (Subject::Org(o), Some(holders)) = (s, &rows.seats) {
                let known: BTreeSet<String> = holders.iter().filter(|u| g.users.contains(*u)).cloned().collect();
                unknown.extend(holders.iter().filter(|u| !g.users.contains(*u)).map(|u| format!("user:{u}")));
                let before = g.seats.get(o).cloned().unwrap_or_default();
                for u in known.difference(&before) {
                    g.seat_moved(o, u, true);
                }
                for u in before.difference(&known) {
                    g.seat_moved(o, u, false);
                }
                g.seats.insert(o.clone(), known);
                if let Some(n) = rows.seat_count {
                    g.seat_count.insert(o.clone(), n);
                }
            }
        }
        let mut status = FoldStatus::Applied;
        if let Some(e) = fold.event {
            if fold.pending.keep || !unknown.is_empty() {
                let seq = g.next();
                let reason = if unknown.is_empty() { fold.pending.reason.clone() } else { "the user is not in the database yet".into() };
                let mut waiting_for = fold.pending.waiting_for.clone();
                waiting_for.extend(unknown.iter().cloned());
                g.kept.entry((e.provider.clone(), e.event_id.clone())).or_insert(Kept {
                    seq,
                    tried: seq,
                    event_type: e.event_type.clone(),
                    payload: e.payload.clone(),
                    resolved: false,
                    attempts: 0,
                    reason,
                    waiting_for,
                });
                status = FoldStatus::Kept;
            }
        }
        if unknown.is_empty() {
            for (p, e) in &fold.resolved {
                if let Some(k) = g.kept.get_mut(&(p.clone(), e.clone())) {
                    k.resolved = true;
                }
            }
        }
        let version = g.version(fold.refs);
        Ok(FoldApplied { status, version, unknown, conflicts })
    }

    async fn keep_delivery(&self, event: &Delivery, reason: &str) -> Result<bool, StoreError> {
        self.ask();
        let mut g = self.inner.borrow_mut();
        if g.events.contains(&(event.provider.clone(), event.event_id.clone())) {
            return Ok(false);
        }
        let seq = g.next();
        let k = g.kept.entry((event.provider.clone(), event.event_id.clone())).or_insert(Kept {
            seq,
            tried: seq,
            event_type: event.event_type.clone(),
            payload: Value::Null,
            resolved: false,
            attempts: 0,
            reason: String::new(),
            waiting_for: Vec::new(),
        });
        k.payload = event.payload.clone();
        k.reason = reason.to_string();
        Ok(true)
    }

    async fn pending_attempt(&self, provider: &str, event_id: &str, error: &str) -> Result<(), StoreError> {
        self.ask();
        let mut g = self.inner.borrow_mut();
        let tried = g.next();
        if let Some(k) = g.kept.get_mut(&(provider.to_string(), event_id.to_string())) {
            k.attempts += 1;
            k.tried = tried;
            k.reason = error.to_string();
        }
        Ok(())
    }

    async fn kept_events(&self, provider: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<KeptEvent>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut v: Vec<KeptEvent> = g
            .kept
            .iter()
            .filter(|((p, _), k)| !k.resolved && provider.is_none_or(|x| x == p))
            .map(|((p, e), k)| k.row(p, e))
            .filter(|k| after.is_none_or(|a| k.id > a))
            .collect();
        v.sort_by_key(|k| k.id);
        v.truncate(limit.clamp(1, 200) as usize);
        Ok(v)
    }

    async fn kept_to_retry(&self, after: Option<&str>, limit: u32) -> Result<Vec<(String, KeptEvent)>, StoreError> {
        self.ask();
        let after = after.and_then(|a| {
            let (tried, seq) = a.split_once('|')?;
            Some((tried.parse::<u64>().ok()?, seq.parse::<u64>().ok()?))
        });
        let g = self.inner.borrow();
        let mut open: Vec<(&(String, String), &Kept)> =
            g.kept.iter().filter(|(_, k)| !k.resolved && after.is_none_or(|a| (k.tried, k.seq) > a)).collect();
        open.sort_by_key(|(_, k)| (k.tried, k.seq));
        Ok(open
            .into_iter()
            .take(limit.clamp(1, 200) as usize)
            .map(|((p, e), k)| (format!("{}|{}", k.tried, k.seq), k.row(p, e)))
            .collect())
    }

    async fn record_alerts(&self, subject: &Subject, checks: &[AlertCheck], at: Timestamp) -> Result<AlertsApplied, StoreError> {
        self.ask();
        if self.failing_alerts.get() > 0 {
            self.failing_alerts.set(self.failing_alerts.get() - 1);
            return Err(StoreError::Unavailable("the store is failing (failing_alerts)".into()));
        }
        let mut g = self.inner.borrow_mut();
        if checks.is_empty() || !g.known(subject) {
            return Ok(AlertsApplied::default());
        }
        Ok(g.apply_alerts(&subject.key(), checks, at))
    }

    async fn open_windowed_alerts(&self, now: Timestamp, limit: u32) -> Result<Vec<(Subject, OpenAlert)>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut v: Vec<(String, i64, Subject, OpenAlert)> = g
            .alerts
            .iter()
            .filter(|a| a.resolved_at.is_none())
            .filter_map(|a| {
                let ends = a.body.get("ends_at").and_then(Value::as_str)?.to_string();
                (ends.as_str() <= now.to_string().as_str()).then_some(())?;
                let s = Subject::from_key(&a.subject)?;
                Some((ends, a.id, s, OpenAlert { rule: a.rule.clone(), episode: a.episode.clone(), alert: a.body.clone() }))
            })
            .collect();
        v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(v.into_iter().take(limit.clamp(1, 1000) as usize).map(|(_, _, s, a)| (s, a)).collect())
    }

    async fn outbox_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueMessage>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut out = Vec::new();
        for m in &g.messages {
            let Some(e) = g.endpoints.iter().find(|e| e.id == m.endpoint && e.enabled) else { continue };
            if m.next_attempt_at.is_none_or(|t| t > now) {
                continue;
            }
            if g.messages.iter().any(|o| o.endpoint == m.endpoint && o.subject == m.subject && o.id < m.id && o.open()) {
                continue;
            }
            out.push(DueMessage {
                id: m.id,
                msg_id: m.msg_id.clone(),
                endpoint_id: e.id.clone(),
                url: e.url.clone(),
                secret: e.secret.clone(),
                payload: m.payload.clone(),
                created_at: m.created_at,
                attempts: m.attempts,
                failing_since: e.failing_since,
                first_attempt_at: g
                    .attempts
                    .iter()
                    .filter(|(id, a)| *id == m.id && e.enabled_at.is_none_or(|t| a.at >= t))
                    .map(|(_, a)| a.at)
                    .min(),
            });
        }
        out.sort_by_key(|m| m.id);
        out.truncate(limit.clamp(1, 500) as usize);
        drop(g);
        // Leased to this caller for a minute (as tollgate_outbox_due of 20261205004100):
        // an overlapping delivery run does not send them too.
        let mut g = self.inner.borrow_mut();
        for m in g.messages.iter_mut().filter(|m| out.iter().any(|o| o.id == m.id)) {
            m.next_attempt_at = Some(Timestamp(now.0 + OUTBOX_LEASE_SECONDS));
        }
        Ok(out)
    }

    async fn outbox_attempt(&self, message: i64, a: &AttemptRecord) -> Result<(), StoreError> {
        self.ask();
        let mut g = self.inner.borrow_mut();
        let Some(i) = g.messages.iter().position(|m| m.id == message && m.open()) else { return Ok(()) };
        g.attempts.push((message, a.clone()));
        let m = &mut g.messages[i];
        m.attempts += 1;
        if a.delivered {
            m.delivered_at = Some(a.at);
            m.next_attempt_at = None;
        } else {
            m.next_attempt_at = a.retry_at;
            if a.give_up {
                m.given_up_at = Some(a.at);
            }
        }
        let endpoint = m.endpoint.clone();
        if let Some(e) = g.endpoints.iter_mut().find(|e| e.id == endpoint) {
            e.failing_since = if a.delivered { None } else { e.failing_since.or(Some(a.at)) };
            if a.disable_endpoint {
                e.enabled = false;
                e.disabled_at = Some(a.at);
            }
        }
        Ok(())
    }

    async fn create_endpoint(&self, url: &str, events: &[String]) -> Result<Value, StoreError> {
        self.ask();
        let mut g = self.inner.borrow_mut();
        let n = g.next();
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let secret = tollgate::webhooks::secret_from_bytes(&Sha256::digest(format!("memory endpoint {n}").as_bytes()));
        g.endpoints.push(MemEndpoint {
            id: id.clone(),
            url: url.to_string(),
            events: events.to_vec(),
            secret: secret.clone(),
            enabled: true,
            failing_since: None,
            disabled_at: None,
            enabled_at: None,
        });
        Ok(json!({"id": id, "url": url, "events": events, "secret": secret, "enabled": true, "created_at": Value::Null}))
    }

    async fn endpoints(&self) -> Result<Value, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        Ok(Value::Array(
            g.endpoints
                .iter()
                .map(|e| {
                    let pending = g.messages.iter().filter(|m| m.endpoint == e.id && m.open()).count();
                    let given_up = g.messages.iter().filter(|m| m.endpoint == e.id && m.given_up_at.is_some()).count();
                    json!({"id": e.id, "url": e.url, "events": e.events, "enabled": e.enabled,
                           "failing_since": e.failing_since, "disabled_at": e.disabled_at, "created_at": Value::Null,
                           "pending": pending, "given_up": given_up})
                })
                .collect(),
        ))
    }

    async fn set_endpoint(&self, id: &str, enabled: bool, at: Timestamp) -> Result<Option<Value>, StoreError> {
        self.ask();
        let mut g = self.inner.borrow_mut();
        let Some(e) = g.endpoints.iter_mut().find(|e| e.id == id) else { return Ok(None) };
        // Enabling an enabled endpoint changes nothing (its messages in flight stay leased).
        let again = enabled && !e.enabled;
        e.enabled = enabled;
        if again {
            e.disabled_at = None;
            e.failing_since = None;
            e.enabled_at = Some(at);
        } else if !enabled {
            e.disabled_at = e.disabled_at.or(Some(at));
        }
        let v = json!({"id": e.id, "url": e.url, "events": e.events, "enabled": e.enabled,
                       "failing_since": e.failing_since, "disabled_at": e.disabled_at});
        if again {
            for m in g.messages.iter_mut().filter(|m| m.endpoint == id && m.open()) {
                m.next_attempt_at = Some(at);
            }
        }
        Ok(Some(v))
    }

    async fn failed_payments(&self, open: Option<bool>, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut rows: Vec<(String, Value)> = g
            .failed
            .iter()
            .filter(|(_, (_, v))| open.is_none_or(|o| v["resolved_at"].is_null() == o))
            .map(|((p, i), (key, v))| {
                let mut r = v.clone();
                let cursor = format!("{}|{p}:{i}", v["first_failed_at"].as_str().unwrap_or(""));
                r["cursor"] = json!(cursor);
                r["subject"] = Subject::from_key(key).map(|s| s.to_json()).unwrap_or(Value::Null);
                (cursor, r)
            })
            .filter(|(c, _)| after.is_none_or(|a| c.as_str() > a))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows.into_iter().take(limit.clamp(1, 200) as usize).map(|(_, r)| r).collect())
    }

    async fn failed_payments_due(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let rows = g.failed.iter().filter(|(_, (_, v))| v["resolved_at"].is_null()).filter_map(|((p, i), (key, v))| {
            let mut r = v.clone();
            r["subject"] = Subject::from_key(key).map(|s| s.to_json()).unwrap_or(Value::Null);
            r["folded_at"] = json!(g.folded.get(key));
            Some((moment(&v["grace_until"])?, format!("{p}:{i}"), r))
        });
        Ok(by_moment(rows, from, to, after, limit))
    }

    async fn trials(&self, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Result<Vec<Value>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let rows = g
            .subscriptions
            .iter()
            .flat_map(|(key, subs)| subs.values().map(move |v| (key, v)))
            .filter(|(_, v)| v["status"] == "trialing")
            .filter_map(|(key, v)| {
                let id = format!("{}:{}", v["provider"].as_str().unwrap_or(""), v["subscription_id"].as_str().unwrap_or(""));
                let subject = Subject::from_key(key).map(|s| s.to_json()).unwrap_or(Value::Null);
                Some((moment(&v["trial_end"])?, id, json!({"subject": subject, "trial_end": v["trial_end"], "folded_at": g.folded.get(key)})))
            });
        Ok(by_moment(rows, from, to, after, limit))
    }

    async fn kept_event(&self, provider: &str, event_id: &str) -> Result<Option<KeptEvent>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        Ok(g.kept.get(&(provider.to_string(), event_id.to_string())).map(|k| k.row(provider, event_id)))
    }

    async fn lapsed(&self, now: Timestamp, after: Option<&(Timestamp, String)>, limit: u32) -> Result<Vec<Lapsed>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut rows: Vec<Lapsed> = Vec::new();
        for (k, ls) in &g.lots {
            for l in ls.iter().filter(|l| !l.lot.closed && l.lot.valid_to.is_some_and(|t| t <= now)) {
                if let (Some(s), Some(at)) = (Subject::from_key(k), l.lot.valid_to) {
                    rows.push(Lapsed { at, id: format!("lot:{:020}", l.id), subject: s });
                }
            }
        }
        for (k, m) in &g.grants {
            for (id, v) in m.values() {
                let hand = matches!(v["source"].as_str(), Some("manual_grant" | "promotion"));
                let live = matches!(v["status"].as_str(), Some("active" | "trial" | "past_due"));
                let to: Option<Timestamp> = serde_json::from_value(v["valid_to"].clone()).ok();
                if let (true, true, Some(at), Some(s)) = (hand, live, to.filter(|t| *t <= now), Subject::from_key(k)) {
                    rows.push(Lapsed { at, id: format!("grant:{id:020}"), subject: s });
                }
            }
        }
        rows.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(rows
            .into_iter()
            .filter(|r| after.is_none_or(|(at, id)| (r.at, &r.id) > (*at, id)))
            .take(limit as usize)
            .collect())
    }

    async fn account(&self, subject: &Subject, caller: &str) -> Result<Option<tollgate::checkout::Account>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let key = subject.key();
        let org = match subject {
            Subject::Org(o) => Some(o.clone()),
            Subject::User(_) => None,
        };
        let v = json!({
            "exists": g.known(subject),
            "role": org.as_ref().and_then(|o| g.roles.get(&(o.clone(), caller.to_string()))),
            "seats_used": org.as_ref().and_then(|o| g.seats.get(o)).map_or(0, |s| s.len()),
            "subscriptions": g.subscriptions.get(&key).into_iter().flat_map(|m| m.values()).map(|s| {
                // What it gives now: its grants that are active, on trial or past due.
                let grants: Vec<Value> = g.grant_rows(&key).into_iter()
                    .filter(|r| r["source_ref"].as_str() == Some(&format!("{}:{}", s["provider"].as_str().unwrap_or(""), s["subscription_id"].as_str().unwrap_or(""))) && matches!(r["status"].as_str(), Some("active" | "trial" | "past_due")))
                    .map(|r| json!({"product": r["cloud_id"], "tier": r["tier"]}))
                    .collect();
                let mut s = s.clone();
                s["grants"] = json!(grants);
                s
            }).collect::<Vec<_>>(),
            "customers": g.customers.get(&key).into_iter().flatten()
                .map(|(p, c)| json!({"provider": p, "customer_id": c})).collect::<Vec<_>>(),
        });
        crate::store::account_from_json(subject, &v)
    }

    async fn seat_held(&self, org: &str, user: &str) -> Result<bool, StoreError> {
        self.ask();
        Ok(self.inner.borrow().seats.get(org).is_some_and(|s| s.contains(user)))
    }

    async fn org(&self, org: &str) -> Result<Option<OrgRead>, StoreError> {
        self.ask();
        org_from_json(&self.inner.borrow().org_json(org))
    }

    async fn invite(&self, token_digest: &str) -> Result<Option<(Invite, Option<OrgRead>)>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let Some((i, _, _)) = g.invites.iter().find(|(_, d, _)| d == token_digest) else { return Ok(None) };
        Ok(Some((i.clone(), org_from_json(&g.org_json(&i.organization_id))?)))
    }

    async fn org_invite(&self, org: &str, invite: &str) -> Result<Option<Invite>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        Ok(g.invites.iter().find(|(i, _, _)| i.id == invite && i.organization_id == org).map(|(i, _, _)| i.clone()))
    }

    async fn org_change(&self, change: &OrgChange) -> Result<Value, StoreError> {
        self.ask();
        let hook = self.before_org_change.borrow_mut().take();
        if let Some(f) = hook {
            f(self);
        }
        let mut g = self.inner.borrow_mut();
        let (org, stamp) = match change {
            OrgChange::Create { id, name, by } => {
                // `organizations`' primary key: an id made before is refused (a retried create).
                if g.orgs.contains(id) {
                    return Err(conflict("", "duplicate key value violates unique constraint organizations_pkey"));
                }
                g.orgs.insert(id.clone());
                g.org_names.insert(id.clone(), name.clone());
                g.join(id, by, "owner");
                g.roles.insert((id.clone(), by.clone()), "owner".into());
                g.history(id, "created", Some(by), Some(by), None);
                return Ok(json!({"id": id}));
            }
            OrgChange::Invite { org, stamp, .. } | OrgChange::Role { org, stamp, .. } | OrgChange::Remove { org, stamp, .. } => {
                (org, Some(stamp))
            }
            OrgChange::Revoke { org, .. } | OrgChange::Accept { org, .. } => (org, None),
        };
        if !g.orgs.contains(org) {
            return Err(StoreError::Rejected {
                status: 404,
                error: PgError { code: Some("PT404".into()), message: Some("no such organization".into()), hint: Some("unknown_organization".into()), ..PgError::default() },
            });
        }
        if stamp.is_some_and(|s| g.org_json(org)["stamp"].as_str() != Some(s.as_str())) {
            return Err(conflict("org_stale", "the organization changed meanwhile"));
        }
        match change {
            OrgChange::Create { .. } => unreachable!("answered above"),
            OrgChange::Invite { org, email, role, seat, token_digest, expires_at, by, .. } => {
                if g.invites.iter().any(|(_, d, _)| d == token_digest) {
                    return Err(conflict("", "duplicate key value violates unique constraint organization_invites_token_key"));
                }
                let seq = g.next();
                let id = format!("00000000-0000-4000-8000-{seq:012x}");
                let invite = Invite {
                    id: id.clone(),
                    organization_id: org.clone(),
                    email: email.clone(),
                    role: *role,
                    seat: *seat,
                    expires_at: *expires_at,
                    created_by: Some(by.clone()),
                    created_at: None,
                    accepted_at: None,
                    accepted_by: None,
                    revoked_at: None,
                };
                g.invites.push((invite, token_digest.clone(), seq));
                g.history(org, "invited", Some(by), None, Some(email));
                Ok(json!({"id": id}))
            }
            OrgChange::Revoke { org, invite, by } => {
                let Some((i, _, _)) = g.invites.iter_mut().find(|(i, _, _)| &i.id == invite && &i.organization_id == org) else {
                    return Ok(json!({"revoked": false}));
                };
                if i.accepted_at.is_some() || i.revoked_at.is_some() {
                    return Ok(json!({"revoked": false}));
                }
                i.revoked_at = Some(Timestamp(0));
                let email = i.email.clone();
                g.history(org, "invite_revoked", Some(by), None, Some(&email));
                Ok(json!({"revoked": true}))
            }
            OrgChange::Accept { org, invite, user, role, now } => {
                let Some((i, _, _)) = g.invites.iter_mut().find(|(i, _, _)| {
                    &i.id == invite && &i.organization_id == org && i.accepted_at.is_none() && i.revoked_at.is_none() && *now < i.expires_at
                }) else {
                    return Err(conflict("invite_closed", "the invite was accepted, revoked or expired meanwhile"));
                };
                i.accepted_at = Some(*now);
                i.accepted_by = Some(user.clone());
                let email = i.email.clone();
                // A member already (made so after the route read) keeps the role it holds.
                g.join(org, user, role.as_str());
                g.history(org, "invite_accepted", Some(user), Some(user), Some(&email));
                Ok(json!({"accepted": invite}))
            }
            OrgChange::Role { org, user, role, by, .. } => {
                let key = (org.clone(), user.clone());
                let old = g.roles.get(&key).cloned();
                if g.members.get(org).is_some_and(|m| m.contains(user)) {
                    g.roles.insert(key, role.as_str().into());
                    if old.as_deref() != Some(role.as_str()) {
                        g.history(org, "role_changed", Some(by), Some(user), None);
                    }
                }
                Ok(json!({"role": role}))
            }
            OrgChange::Remove { org, user, by, left, .. } => {
                if let Some(m) = g.members.get_mut(org) {
                    m.remove(user);
                }
                g.roles.remove(&(org.clone(), user.clone()));
                g.joined.remove(&(org.clone(), user.clone()));
                g.history(org, if *left { "member_left" } else { "member_removed" }, Some(by), Some(user), None);
                Ok(json!({"removed": user}))
            }
        }
    }

    async fn user_organizations(&self, user: &str, now: Timestamp) -> Result<Vec<OrgMembership>, StoreError> {
        self.ask();
        let g = self.inner.borrow();
        let mut orgs: Vec<(u64, String)> = g
            .members
            .iter()
            .filter(|(_, m)| m.contains(user))
            .map(|(o, _)| (g.joined.get(&(o.clone(), user.to_string())).copied().unwrap_or(0), o.clone()))
            .collect();
        orgs.sort();
        let rows: Vec<Value> = orgs
            .iter()
            .map(|(_, o)| {
                json!({
                    "id": o,
                    "name": g.org_names.get(o).cloned().unwrap_or_default(),
                    "role": g.roles.get(&(o.clone(), user.to_string())).map_or("member", String::as_str),
                    "seat_count": g.seat_count.get(o).copied().unwrap_or(0),
                    "seat": g.seats.get(o).is_some_and(|s| s.contains(user)),
                    "used": g.seats.get(o).map_or(0, |s| s.len()),
                    "reserved": g.invites.iter().filter(|(i, _, _)| &i.organization_id == o && i.seat
                        && i.accepted_at.is_none() && i.revoked_at.is_none() && now < i.expires_at).count(),
                    "grants": g.grant_rows(&format!("org:{o}")),
                })
            })
            .collect();
        memberships_from_json(&Value::Array(rows))
    }
}

/// What usage record `r` settles, as the SQL store's row says it (`SettledUse::from_row`).
fn settled_use(r: &Record) -> Option<SettledUse> {
    let owner = Subject::from_key(&r.subject)?;
    let text = |k: &str| r.record[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let limit = match (text("feature"), text("counter")) {
        (Some(f), Some(c)) => Some((f, c)),
        _ => None,
    };
    let pool = if limit.is_some() { None } else { text("pool") };
    let status = text("status").unwrap_or_else(|| "charged".into());
    Some(SettledUse { owner, pool, limit, status })
}

/// A row's moment (a grace end, a trial end), if it has one.
fn moment(v: &Value) -> Option<Timestamp> {
    serde_json::from_value(v.clone()).ok()
}

/// The rows whose moment is in `(from, to]`, by moment then id, after the cursor `after`
/// (`<moment>|<id>`, each row's `cursor`), at most `limit` (1 to 1000), as the store's
/// time-ordered scans give them.
fn by_moment(rows: impl Iterator<Item = (Timestamp, String, Value)>, from: Timestamp, to: Timestamp, after: Option<&str>, limit: u32) -> Vec<Value> {
    let after = after.and_then(|a| {
        let (at, id) = a.split_once('|')?;
        Some((Timestamp::parse(at).ok()?, id.to_string()))
    });
    let mut rows: Vec<(Timestamp, String, Value)> = rows
        .filter(|(at, _, _)| from < *at && *at <= to)
        .filter(|(at, id, _)| after.as_ref().is_none_or(|a| (*at, id) > (a.0, &a.1)))
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    rows.into_iter()
        .take(limit.clamp(1, 1000) as usize)
        .map(|(at, id, mut r)| {
            r["cursor"] = json!(format!("{at}|{id}"));
            r
        })
        .collect()
}
