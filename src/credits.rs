//! Credit balances as lots and an append-only ledger.
//!
//! A subject's credits in a pool (seconds of video, AI credits, free drafts)
//! are held in **lots**: one per source (a period's allowance, the rollover
//! carried into a period, a token purchase, the free amount, a manual
//! adjustment). Every change to a lot is a [`LedgerEntry`] with a unique
//! **key** derived from its source (the event, the payment, the usage request
//! id): posting a key twice is refused, so a replay cannot double-count.
//!
//! Invariants, kept by construction and checked by the property tests:
//! - a lot's `remaining` is never negative, so no balance is ever negative;
//! - for every pool, the sum of the ledger's deltas equals the sum of the
//!   lots' `remaining`, which is the balance;
//! - each ledger key appears at most once.
//!
//! Spending order ([`Wallet::plan_debit`]): subscription allowance first (the
//! period's allowance and the rollover carried into it, the one that expires
//! first before the other), then everything else (purchased tokens, free
//! credits, adjustments) oldest first. What neither covers is overage, billed
//! in money and never taken from a balance (see [`crate::usage`]).
//!
//! Period renewal ([`capped_rollover`], [`renewal_rollover`]): with
//! `rollover = "capped"`, unused allowance carries into the next period capped
//! at one period's allowance:
//! `rollover = min(max(0, allowance + rollover - used), allowance)`.
//! With `none` or `reset` nothing carries over: the new period starts at the
//! allowance (the Razorpay AI app's refill: `min(remaining + limit, limit) = limit`).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::catalog::Rollover;
use crate::time::Timestamp;

/// The most units one credit may carry (below 2^53, so every balance reads exactly in
/// JavaScript; sums saturate rather than wrap).
pub const MAX_CREDIT: i64 = 1_000_000_000_000_000;

/// The most units an operator's credits may bring a pool's balance to: 2^53 - 1, the
/// largest whole number JavaScript reads exactly. Credits of at most [`MAX_CREDIT`] each
/// would otherwise add up past it (ten of them) and on past what the store's 64-bit
/// balance holds (about 9,200), where its sum fails rather than saturates.
pub const MAX_BALANCE: i64 = (1 << 53) - 1;

/// What a lot is, which decides when it is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotKind {
    /// A subscription period's allowance (expires at the period end).
    Allowance,
    /// Unused allowance carried into the next period (expires with it).
    Rollover,
    /// Credits bought once (token bundles, top-ups); never expire.
    Purchase,
    /// The catalog's free amount, given once per subject (the Razorpay AI app's free drafts).
    Free,
    /// A manual credit (compensation, promotion, migration).
    Adjustment,
}

impl LotKind {
    /// Allowance and rollover are spent before anything else.
    pub fn is_period(self) -> bool {
        matches!(self, LotKind::Allowance | LotKind::Rollover)
    }
}

/// Credits from one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// Unique key of the lot, e.g. `allowance:stripe:sub_1:2026-04-01T00:00:00Z:video_seconds`.
    pub key: String,
    pub pool: String,
    pub kind: LotKind,
    /// Units put in when the lot was created.
    pub granted: i64,
    /// Units left. Never negative.
    pub remaining: i64,
    pub valid_from: Timestamp,
    /// The lot expires here (period lots); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    /// The object that paid for it (`stripe:in_...`, `razorpay:pay_...`, `usage:...`).
    pub source: String,
    /// The subscription a period lot belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// Units removed by refunds and disputes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revoked: i64,
    /// Units that expired unused (period lots, at their end or at renewal).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expired: i64,
    /// Units taken by usage charges: the sum of what each charge recorded it took from
    /// this lot. Charges come first: what refunds, expiry and rollover see is what is
    /// left after them (see [`Wallet::record_usage`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub used: i64,
    /// Closed: expired or fully revoked; nothing more is taken from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    /// A period lot whose unused remainder was already carried into a later period.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_over: bool,
    /// The store's catalog version it was sold under: that of the fact that opened it
    /// (see [`crate::grandfather`]); `None` under a catalog without a version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_version: Option<u32>,
}

impl Lot {
    /// The lot as a store keeps it once a fold no longer gives it: a fact told late (a
    /// refund before a renewal that carried the refunded period over, an end before a
    /// payment) voided what an earlier fold wrote. Nothing is left in it and the rest counts
    /// as revoked, so granted = remaining + used + revoked + expired still holds; it is
    /// closed. What charges took from it stays taken.
    pub fn withdraw(&mut self) {
        self.revoked = (self.granted - self.used - self.expired).max(0);
        self.remaining = 0;
        self.closed = true;
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Why a ledger entry was posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Allowance,
    Rollover,
    Purchase,
    Free,
    Adjustment,
    Usage,
    Expire,
    Revoke,
}

/// One change of one lot. `delta` is positive for credits, negative for debits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Unique: the source of the change (`usage:req_1:<lot>`, `expire:<lot>`, ...).
    pub key: String,
    pub pool: String,
    pub lot: String,
    pub kind: EntryKind,
    pub delta: i64,
    pub at: Timestamp,
    /// The event, payment or request that caused it.
    pub source: String,
}

/// A subject's lots and ledger. The balance of a pool is the sum of its lots'
/// `remaining` (and equally the sum of its ledger deltas).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WalletRepr")]
pub struct Wallet {
    #[serde(default)]
    pub lots: Vec<Lot>,
    #[serde(default)]
    pub ledger: Vec<LedgerEntry>,
    /// Usage recorded against a lot beyond what the lot holds (facts are missing: a
    /// lot's credit was never stored). Never expected; reported, never taken from
    /// another lot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uncovered: BTreeMap<String, i64>,
    /// Ledger keys already posted (rebuilt from `ledger` when read back).
    #[serde(skip)]
    keys: BTreeSet<String>,
    /// Recorded usage per lot not applied yet (the lot is not credited yet, or holds
    /// less until a top-up); see [`Wallet::record_usage`].
    #[serde(skip)]
    due: BTreeMap<String, i64>,
}

/// The serialised form of a [`Wallet`]; reading it back rebuilds the key index.
#[derive(Deserialize)]
struct WalletRepr {
    #[serde(default)]
    lots: Vec<Lot>,
    #[serde(default)]
    ledger: Vec<LedgerEntry>,
    #[serde(default)]
    uncovered: BTreeMap<String, i64>,
}

impl From<WalletRepr> for Wallet {
    fn from(r: WalletRepr) -> Wallet {
        let mut w = Wallet {
            lots: r.lots,
            ledger: r.ledger,
            uncovered: r.uncovered,
            keys: BTreeSet::new(),
            due: BTreeMap::new(),
        };
        w.reindex();
        w
    }
}

/// Parameters of a new lot.
#[derive(Clone, Debug)]
pub struct NewLot<'a> {
    pub key: String,
    pub pool: &'a str,
    pub kind: LotKind,
    pub amount: i64,
    pub at: Timestamp,
    pub valid_to: Option<Timestamp>,
    pub source: &'a str,
    pub subscription: Option<&'a str>,
    /// The catalog version it is sold under (a fold fills in its fact's).
    pub catalog_version: Option<u32>,
}

/// Units to take from one lot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Take {
    pub lot: String,
    pub kind: LotKind,
    pub units: i64,
}

/// How a debit would be covered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DebitPlan {
    pub pool: String,
    pub units: i64,
    /// Units from allowance and rollover lots.
    pub from_allowance: i64,
    /// Units from purchased, free and adjustment lots.
    pub from_purchased: i64,
    /// Units no lot covers.
    pub shortfall: i64,
    pub takes: Vec<Take>,
}

impl Wallet {
    pub fn new() -> Self {
        Wallet::default()
    }

    /// Rebuilds the key index after deserialising.
    pub fn reindex(&mut self) {
        self.keys = self.ledger.iter().map(|e| e.key.clone()).collect();
    }

    pub fn has_key(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    pub fn lot(&self, key: &str) -> Option<&Lot> {
        self.lots.iter().find(|l| l.key == key)
    }

    fn lot_ix(&self, key: &str) -> Option<usize> {
        self.lots.iter().position(|l| l.key == key)
    }

    /// The balance of a pool: what its open lots hold.
    pub fn balance(&self, pool: &str) -> i64 {
        self.lots.iter().filter(|l| l.pool == pool && !l.closed).fold(0i64, |s, l| s.saturating_add(l.remaining))
    }

    /// The first pool that credits `(pool, lot key, amount)` would bring past
    /// [`MAX_BALANCE`], with the balance they would bring it to; credits of a lot the
    /// wallet holds already (a credit told again) add nothing.
    pub fn past_max_balance<'a>(&self, credits: impl IntoIterator<Item = (&'a str, &'a str, i64)>) -> Option<(&'a str, i64)> {
        let mut after: BTreeMap<&str, i64> = BTreeMap::new();
        for (pool, lot, amount) in credits {
            if self.lots.iter().any(|l| l.key == lot) {
                continue;
            }
            let total = after.entry(pool).or_insert_with(|| self.balance(pool));
            *total = total.saturating_add(amount);
            if *total > MAX_BALANCE {
                return Some((pool, *total));
            }
        }
        None
    }

    /// Every pool's balance (pools with lots only).
    pub fn balances(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for l in &self.lots {
            let b = out.entry(l.pool.clone()).or_insert(0i64);
            *b = b.saturating_add(if l.closed { 0 } else { l.remaining });
        }
        out
    }

    /// Sum of the ledger's deltas for a pool (equals [`Wallet::balance`]).
    pub fn ledger_sum(&self, pool: &str) -> i64 {
        self.ledger.iter().filter(|e| e.pool == pool).fold(0i64, |s, e| s.saturating_add(e.delta))
    }

    fn post(&mut self, e: LedgerEntry) -> bool {
        if self.has_key(&e.key) {
            return false;
        }
        self.keys.insert(e.key.clone());
        self.ledger.push(e);
        true
    }

    /// Opens a lot and posts its credit. Returns false (and changes nothing)
    /// when a lot with this key exists already or the amount is not positive.
    pub fn credit(&mut self, n: NewLot<'_>) -> bool {
        if n.amount <= 0 || self.lot_ix(&n.key).is_some() || self.has_key(&n.key) {
            return false;
        }
        let kind = match n.kind {
            LotKind::Allowance => EntryKind::Allowance,
            LotKind::Rollover => EntryKind::Rollover,
            LotKind::Purchase => EntryKind::Purchase,
            LotKind::Free => EntryKind::Free,
            LotKind::Adjustment => EntryKind::Adjustment,
        };
        self.post(LedgerEntry {
            key: n.key.clone(),
            pool: n.pool.to_string(),
            lot: n.key.clone(),
            kind,
            delta: n.amount,
            at: n.at,
            source: n.source.to_string(),
        });
        self.lots.push(Lot {
            key: n.key,
            pool: n.pool.to_string(),
            kind: n.kind,
            granted: n.amount,
            remaining: n.amount,
            valid_from: n.at,
            valid_to: n.valid_to,
            source: n.source.to_string(),
            subscription: n.subscription.map(str::to_string),
            revoked: 0,
            expired: 0,
            used: 0,
            closed: false,
            rolled_over: false,
            catalog_version: n.catalog_version,
        });
        let i = self.lots.len() - 1;
        self.settle(i);
        true
    }

    /// Adds units to an existing open lot (an upgrade's top-up within a period).
    pub fn top_up(&mut self, lot: &str, key: String, amount: i64, at: Timestamp, source: &str) -> bool {
        let Some(i) = self.lot_ix(lot) else { return false };
        // A lot closed by its end takes nothing more; one closed because a refund left it
        // empty opens again with what a later payment of its period adds.
        let ended = self.lots[i].valid_to.is_some_and(|v| v <= at);
        if amount <= 0 || ended || self.has_key(&key) {
            return false;
        }
        self.lots[i].closed = false;
        let (pool, kind) = (self.lots[i].pool.clone(), self.lots[i].kind);
        let kind = if kind == LotKind::Allowance { EntryKind::Allowance } else { EntryKind::Adjustment };
        self.post(LedgerEntry { key, pool, lot: lot.to_string(), kind, delta: amount, at, source: source.into() });
        self.lots[i].granted += amount;
        self.lots[i].remaining += amount;
        self.settle(i);
        true
    }

    /// Records `units` that usage charges took from `lot` (the charges' own record of
    /// what they took, never a new plan). Charges come first: they were taken from the
    /// lot as it stood when they were made, before any later refund, expiry or rollover
    /// of it was known, so those see what is left after every recorded charge. The units
    /// are applied as soon as the lot holds them: now, or when the lot is credited (a
    /// fold meets the lot's credit after the charge) or topped up. What a lot cannot
    /// hold stays due, and [`Wallet::settle_all`] reports it as uncovered.
    /// The lot's usage is one ledger entry, `used:<lot>`, kept equal to `-used`.
    pub fn record_usage(&mut self, lot: &str, units: i64) {
        if units <= 0 {
            return;
        }
        *self.due.entry(lot.to_string()).or_insert(0) += units;
        if let Some(i) = self.lot_ix(lot) {
            self.settle(i);
        }
    }

    /// Applies what is due on lot `i`, as far as it holds.
    fn settle(&mut self, i: usize) {
        let key = self.lots[i].key.clone();
        let Some(due) = self.due.get(&key).copied() else { return };
        let take = due.min(self.lots[i].remaining).max(0);
        if take == 0 {
            return;
        }
        if due == take {
            self.due.remove(&key);
        } else {
            self.due.insert(key.clone(), due - take);
        }
        let l = &mut self.lots[i];
        l.remaining -= take;
        l.used += take;
        let (pool, used, at, source) = (l.pool.clone(), l.used, l.valid_from, l.source.clone());
        let entry = format!("used:{key}");
        match self.ledger.iter_mut().find(|e| e.key == entry) {
            Some(e) => e.delta = -used,
            None => {
                self.post(LedgerEntry { key: entry, pool, lot: key, kind: EntryKind::Usage, delta: -used, at, source });
            }
        }
    }

    /// Applies what the lots can hold of the usage due; what stays due (its lot never
    /// held it) is reported as `uncovered`. Changes nothing a later credit could still
    /// settle: calling it again after more fold steps gives what one longer fold gives.
    pub fn settle_all(&mut self) {
        for i in 0..self.lots.len() {
            self.settle(i);
        }
        self.uncovered = self.due.clone();
    }

    /// Open lots of a pool usable at `at`, in spending order.
    fn spend_order(&self, pool: &str, at: Timestamp) -> Vec<usize> {
        let mut ix: Vec<usize> = (0..self.lots.len())
            .filter(|&i| {
                let l = &self.lots[i];
                l.pool == pool && !l.closed && l.remaining > 0 && l.valid_to.is_none_or(|t| at < t)
            })
            .collect();
        ix.sort_by(|&a, &b| {
            let (la, lb) = (&self.lots[a], &self.lots[b]);
            (!la.kind.is_period())
                .cmp(&!lb.kind.is_period())
                .then(la.valid_to.unwrap_or(Timestamp(i64::MAX)).cmp(&lb.valid_to.unwrap_or(Timestamp(i64::MAX))))
                .then(la.valid_from.cmp(&lb.valid_from))
                .then(la.key.cmp(&lb.key))
        });
        ix
    }

    /// Units of a pool usable at `at`, split into (allowance, purchased).
    pub fn available(&self, pool: &str, at: Timestamp) -> (i64, i64) {
        let mut out: (i64, i64) = (0, 0);
        for i in self.spend_order(pool, at) {
            let l = &self.lots[i];
            if l.kind.is_period() {
                out.0 = out.0.saturating_add(l.remaining);
            } else {
                out.1 = out.1.saturating_add(l.remaining);
            }
        }
        out
    }

    /// The first instant after `now` at which a lot holding units ends: what a balance
    /// told at `now` holds until.
    pub fn next_end(&self, now: Timestamp) -> Option<Timestamp> {
        self.lots.iter().filter(|l| !l.closed && l.remaining > 0).filter_map(|l| l.valid_to).filter(|t| *t > now).min()
    }

    /// How `units` of a pool would be covered at `at`, without changing anything.
    pub fn plan_debit(&self, pool: &str, units: i64, at: Timestamp) -> DebitPlan {
        let mut left = units.max(0);
        let mut plan = DebitPlan {
            pool: pool.to_string(),
            units: units.max(0),
            from_allowance: 0,
            from_purchased: 0,
            shortfall: 0,
            takes: Vec::new(),
        };
        for i in self.spend_order(pool, at) {
            if left == 0 {
                break;
            }
            let l = &self.lots[i];
            let t = l.remaining.min(left);
            left -= t;
            if l.kind.is_period() {
                plan.from_allowance += t;
            } else {
                plan.from_purchased += t;
            }
            plan.takes.push(Take { lot: l.key.clone(), kind: l.kind, units: t });
        }
        plan.shortfall = left;
        plan
    }

    /// Takes `units` at `at` (allowance first, then purchased), keyed by `key`
    /// (one ledger entry per lot touched: `{key}:{lot}`). Never takes more than a
    /// lot holds; what is not covered is returned as the plan's `shortfall`.
    /// A key already posted changes nothing and returns `None`.
    pub fn debit(&mut self, key: &str, pool: &str, units: i64, at: Timestamp, source: &str) -> Option<DebitPlan> {
        self.debit_as(EntryKind::Usage, key, pool, units, at, source)
    }

    /// [`Wallet::debit`] with its entries posted as `kind` (a negative adjustment).
    pub fn debit_as(
        &mut self,
        kind: EntryKind,
        key: &str,
        pool: &str,
        units: i64,
        at: Timestamp,
        source: &str,
    ) -> Option<DebitPlan> {
        if self.has_key(key) {
            return None;
        }
        let plan = self.plan_debit(pool, units, at);
        // A marker entry of delta 0 reserves the key even when nothing is taken.
        self.post(LedgerEntry {
            key: key.to_string(),
            pool: pool.to_string(),
            lot: String::new(),
            kind,
            delta: 0,
            at,
            source: source.to_string(),
        });
        for t in &plan.takes {
            let i = self.lot_ix(&t.lot).expect("planned from existing lots");
            self.lots[i].remaining -= t.units;
            // Usage is counted as used; an operator's debit takes units back, counted as
            // revoked: so every lot still adds up (granted = remaining + used + revoked +
            // expired).
            if kind == EntryKind::Usage {
                self.lots[i].used += t.units;
            } else {
                self.lots[i].revoked += t.units;
            }
            self.post(LedgerEntry {
                key: format!("{key}:{}", t.lot),
                pool: pool.to_string(),
                lot: t.lot.clone(),
                kind,
                delta: -t.units,
                at,
                source: source.to_string(),
            });
        }
        Some(plan)
    }

    /// Closes every open lot whose `valid_to` is at or before `t`, posting the
    /// unused remainder as an `expire:{lot}` entry dated at the lot's end.
    pub fn expire_through(&mut self, t: Timestamp) {
        let due: Vec<usize> = (0..self.lots.len())
            .filter(|&i| !self.lots[i].closed && self.lots[i].valid_to.is_some_and(|v| v <= t))
            .collect();
        for i in due {
            let at = self.lots[i].valid_to.expect("filtered");
            self.close(i, at);
        }
    }

    /// Closes one lot now (renewal before its end), posting what is left.
    pub fn expire_lot(&mut self, lot: &str, at: Timestamp) {
        if let Some(i) = self.lot_ix(lot) {
            if !self.lots[i].closed {
                self.close(i, at);
            }
        }
    }

    fn close(&mut self, i: usize, at: Timestamp) {
        let rem = self.lots[i].remaining;
        // One entry each time the lot closes: a lot topped up after an expiry (an upgrade's
        // rest of a period already renewed early) closes again, and that expiry is told too.
        let mut key = format!("expire:{}", self.lots[i].key);
        let mut n = 1;
        while self.has_key(&key) {
            n += 1;
            key = format!("expire#{n}:{}", self.lots[i].key);
        }
        if rem > 0 {
            let (pool, lot, source) =
                (self.lots[i].pool.clone(), self.lots[i].key.clone(), self.lots[i].source.clone());
            self.post(LedgerEntry { key, pool, lot, kind: EntryKind::Expire, delta: -rem, at, source });
        }
        let l = &mut self.lots[i];
        l.expired += rem;
        l.remaining = 0;
        l.closed = true;
    }

    /// Revokes up to `units` from a lot (refund, dispute). Takes at most what is
    /// left, so the balance never goes negative; returns the units taken.
    pub fn revoke(&mut self, lot: &str, key: String, units: i64, at: Timestamp, source: &str) -> i64 {
        let Some(i) = self.lot_ix(lot) else { return 0 };
        if units <= 0 || self.has_key(&key) {
            return 0;
        }
        let take = units.min(self.lots[i].remaining);
        let pool = self.lots[i].pool.clone();
        self.post(LedgerEntry {
            key,
            pool,
            lot: lot.to_string(),
            kind: EntryKind::Revoke,
            delta: -take,
            at,
            source: source.into(),
        });
        let l = &mut self.lots[i];
        l.remaining -= take;
        l.revoked += take;
        if l.remaining == 0 {
            l.closed = true;
        }
        take
    }

    /// Units `source` (a payment) put in `lot`: its credit and top-ups.
    pub fn credited_by(&self, lot: &str, source: &str) -> i64 {
        self.ledger
            .iter()
            .filter(|e| e.lot == lot && e.source == source && e.delta > 0)
            .filter(|e| !matches!(e.kind, EntryKind::Usage | EntryKind::Expire | EntryKind::Revoke))
            .map(|e| e.delta)
            .sum()
    }

    pub fn mark_rolled_over(&mut self, lot: &str) {
        if let Some(i) = self.lot_ix(lot) {
            self.lots[i].rolled_over = true;
        }
    }

    /// Checks the invariants; returns a description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for e in &self.ledger {
            if !seen.insert(&e.key) {
                return Err(format!("ledger key `{}` posted twice", e.key));
            }
        }
        for l in &self.lots {
            if l.remaining < 0 {
                return Err(format!("lot `{}` is negative ({})", l.key, l.remaining));
            }
            if l.closed && l.remaining != 0 {
                return Err(format!("closed lot `{}` still holds {}", l.key, l.remaining));
            }
            let sum: i64 = self.ledger.iter().filter(|e| e.lot == l.key).map(|e| e.delta).sum();
            if sum != l.remaining {
                return Err(format!("lot `{}`: ledger says {sum}, lot holds {}", l.key, l.remaining));
            }
        }
        let pools: BTreeSet<&String> =
            self.lots.iter().map(|l| &l.pool).chain(self.ledger.iter().map(|e| &e.pool)).collect();
        for p in pools {
            let (b, s) = (self.balance(p), self.ledger_sum(p));
            if b < 0 {
                return Err(format!("pool `{p}` balance is negative ({b})"));
            }
            if b != s {
                return Err(format!("pool `{p}`: balance {b} but ledger sums to {s}"));
            }
        }
        Ok(())
    }
}

/// The Video Studio app's rollover rule, literally: unused allowance (and earlier rollover)
/// carries over, capped at one period's allowance.
/// `rollover = min(max(0, allowance + rollover - used), allowance)`.
pub fn capped_rollover(allowance: i64, rollover: i64, used: i64) -> i64 {
    (allowance + rollover - used).max(0).min(allowance.max(0))
}

/// What carries into a new period whose allowance is `allowance`, given the
/// units of the previous period (allowance + rollover) left unused at its end.
/// `unused = allowance + rollover - used` of the previous period, so for
/// `capped` this is exactly [`capped_rollover`] (capped at the new allowance).
pub fn renewal_rollover(rule: Rollover, allowance: i64, unused_prev: i64) -> i64 {
    match rule {
        Rollover::Capped => unused_prev.max(0).min(allowance.max(0)),
        Rollover::None | Rollover::Reset => 0,
    }
}

/// Who may go past their balance, and how far (money, minor units).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OveragePolicy {
    /// The user allows overages (the Video Studio app's `user_preferences.allow_overages`).
    #[serde(default)]
    pub allowed: bool,
    /// Cap on overage spend in minor units (the Video Studio app's `overage_limit_usd`);
    /// `None`: the catalog's `usage.default_overage_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Overage already billed against this cap (0: the cap is per request, as in the
    /// Video Studio app).
    #[serde(default)]
    pub spent: i64,
}

impl OveragePolicy {
    /// The cap in force: the subject's own, else `default` (the catalog's).
    pub fn cap(&self, default: i64) -> i64 {
        self.limit.unwrap_or(default)
    }
}

/// Why a charge is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The balance does not cover it and the user does not allow overages.
    InsufficientBalance,
    /// Overages are allowed but this one would pass the user's cap.
    OverageLimitExceeded,
    /// What may be spent does not cover it without the credits of a paused subscription
    /// of the subject's (see [`crate::usage::drawable`]): resumed, it could be.
    Paused,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::InsufficientBalance => "insufficient_balance",
            DenyReason::OverageLimitExceeded => "overage_limit_exceeded",
            DenyReason::Paused => "paused",
        }
    }
}

/// A refusal, as a value: how much is available, how much is required, what it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChargeDenial {
    pub reason: DenyReason,
    pub pool: String,
    /// Units the balance covers (allowance + purchased).
    pub available: i64,
    /// Units the request needs.
    pub required: i64,
    /// The request's price at the normal rate (minor units).
    pub cost: i64,
    /// Units past the balance, and what they would cost at the overage rate.
    pub overage_units: i64,
    pub overage_cost: i64,
    /// The cap that applied (minor units), and what was already spent against it.
    pub overage_limit: i64,
    pub overage_spent: i64,
    pub currency: String,
}

impl fmt::Display for ChargeDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            DenyReason::InsufficientBalance => write!(
                f,
                "insufficient balance: {} available, {} required (overages are not allowed)",
                self.available, self.required
            ),
            DenyReason::OverageLimitExceeded => write!(
                f,
                "overage of {} units would cost {} minor units, over the limit of {} ({} already spent)",
                self.overage_units, self.overage_cost, self.overage_limit, self.overage_spent
            ),
            DenyReason::Paused => write!(
                f,
                "your subscription is paused: {} available without its credits, {} required; resume it to use them",
                self.available, self.required
            ),
        }
    }
}

/// An accepted charge: what comes from where, and what overage is billed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChargePlan {
    pub pool: String,
    pub units: i64,
    pub from_allowance: i64,
    pub from_purchased: i64,
    pub overage_units: i64,
    /// Money billed for the overage units (minor units); 0 when none.
    pub overage_cost: i64,
    /// The request's price at the normal rate (minor units), for display.
    pub cost: i64,
    pub currency: String,
    pub takes: Vec<Take>,
}

/// Result of planning a charge: a plan or a denial, both values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeOutcome {
    Charge(ChargePlan),
    Deny(ChargeDenial),
}

impl ChargeOutcome {
    pub fn is_allowed(&self) -> bool {
        matches!(self, ChargeOutcome::Charge(_))
    }
}

/// Prices a charge for [`plan_charge`]: the normal cost of the whole request
/// and the overage cost of a number of units (both minor units).
pub trait Pricer {
    fn cost(&self, units: i64) -> i64;
    fn overage_cost(&self, units: i64) -> i64;
    fn currency(&self) -> &str;
    fn default_limit(&self) -> i64;
}

/// The charge plan: allowance first, then purchased credits, then overage
/// (only if the policy allows overages and the overage cost, added to what was
/// already spent, stays within the cap); otherwise a denial value.
pub fn plan_charge(
    wallet: &Wallet,
    pool: &str,
    units: i64,
    at: Timestamp,
    pricer: &dyn Pricer,
    policy: &OveragePolicy,
) -> ChargeOutcome {
    let d = wallet.plan_debit(pool, units, at);
    let cost = pricer.cost(units);
    let limit = policy.cap(pricer.default_limit());
    let available = d.from_allowance + d.from_purchased;
    let overage_cost = if d.shortfall > 0 { pricer.overage_cost(d.shortfall) } else { 0 };
    let deny = |reason| {
        ChargeOutcome::Deny(ChargeDenial {
            reason,
            pool: pool.to_string(),
            available,
            required: units,
            cost,
            overage_units: d.shortfall,
            overage_cost,
            overage_limit: limit,
            overage_spent: policy.spent,
            currency: pricer.currency().to_string(),
        })
    };
    if d.shortfall > 0 {
        if !policy.allowed {
            return deny(DenyReason::InsufficientBalance);
        }
        if policy.spent.checked_add(overage_cost).is_none_or(|total| total > limit) {
            return deny(DenyReason::OverageLimitExceeded);
        }
    }
    ChargeOutcome::Charge(ChargePlan {
        pool: pool.to_string(),
        units,
        from_allowance: d.from_allowance,
        from_purchased: d.from_purchased,
        overage_units: d.shortfall,
        overage_cost,
        cost,
        currency: pricer.currency().to_string(),
        takes: d.takes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp(s)
    }

    fn lot(w: &mut Wallet, key: &str, kind: LotKind, amount: i64, at: i64, to: Option<i64>) -> bool {
        w.credit(NewLot {
            key: key.into(),
            pool: "sec",
            kind,
            amount,
            at: t(at),
            valid_to: to.map(t),
            source: "src",
            subscription: None,
            catalog_version: None,
        })
    }

    #[test]
    fn rollover_formula_matches_the_video_studio_rule() {
        assert_eq!(capped_rollover(1800, 0, 600), 1200);
        assert_eq!(capped_rollover(1800, 1800, 0), 1800); // capped at one allowance
        assert_eq!(capped_rollover(1800, 500, 2500), 0); // never negative
        for (a, r, u) in [(1800, 0, 600), (1800, 1800, 0), (1800, 500, 2500), (100, 50, 20)] {
            assert_eq!(renewal_rollover(Rollover::Capped, a, a + r - u), capped_rollover(a, r, u));
        }
        assert_eq!(renewal_rollover(Rollover::Reset, 2000, 700), 0);
        assert_eq!(renewal_rollover(Rollover::None, 2000, 700), 0);
    }

    #[test]
    fn allowance_is_spent_before_purchases_and_keys_are_unique() {
        let mut w = Wallet::new();
        assert!(lot(&mut w, "tokens", LotKind::Purchase, 100, 0, None));
        assert!(lot(&mut w, "allow", LotKind::Allowance, 50, 10, Some(1000)));
        assert!(!lot(&mut w, "allow", LotKind::Allowance, 50, 10, Some(1000)), "same key twice");
        let p = w.debit("usage:r1", "sec", 70, t(20), "usage:r1").unwrap();
        assert_eq!((p.from_allowance, p.from_purchased, p.shortfall), (50, 20, 0));
        assert!(w.debit("usage:r1", "sec", 70, t(20), "usage:r1").is_none(), "replayed request");
        assert_eq!(w.balance("sec"), 80);
        let p = w.debit("usage:r2", "sec", 500, t(30), "usage:r2").unwrap();
        assert_eq!((p.from_purchased, p.shortfall), (80, 420));
        assert_eq!(w.balance("sec"), 0);
        w.check_invariants().unwrap();
    }

    #[test]
    fn expiry_and_revocation_never_go_negative() {
        let mut w = Wallet::new();
        lot(&mut w, "allow", LotKind::Allowance, 50, 0, Some(100));
        lot(&mut w, "tokens", LotKind::Purchase, 30, 0, None);
        w.debit("u1", "sec", 20, t(5), "u1");
        w.expire_through(t(100));
        assert_eq!(w.lot("allow").unwrap().expired, 30);
        assert_eq!(w.balance("sec"), 30);
        w.debit("u2", "sec", 25, t(150), "u2");
        assert_eq!(w.revoke("tokens", "refund:x".into(), 30, t(200), "ch"), 5, "only what is left");
        assert_eq!(w.balance("sec"), 0);
        w.check_invariants().unwrap();
    }

    struct Flat;
    impl Pricer for Flat {
        fn cost(&self, u: i64) -> i64 {
            u * 2
        }
        fn overage_cost(&self, u: i64) -> i64 {
            u * 3
        }
        fn currency(&self) -> &str {
            "usd"
        }
        fn default_limit(&self) -> i64 {
            100
        }
    }

    #[test]
    fn charge_plan_and_denials_are_values() {
        let mut w = Wallet::new();
        lot(&mut w, "tokens", LotKind::Purchase, 10, 0, None);
        let no = OveragePolicy::default();
        match plan_charge(&w, "sec", 30, t(1), &Flat, &no) {
            ChargeOutcome::Deny(d) => {
                assert_eq!(d.reason, DenyReason::InsufficientBalance);
                assert_eq!((d.available, d.required, d.cost), (10, 30, 60));
            }
            other => panic!("{other:?}"),
        }
        let yes = OveragePolicy { allowed: true, limit: None, spent: 0 };
        match plan_charge(&w, "sec", 30, t(1), &Flat, &yes) {
            ChargeOutcome::Charge(p) => assert_eq!((p.from_purchased, p.overage_units, p.overage_cost), (10, 20, 60)),
            other => panic!("{other:?}"),
        }
        let capped = OveragePolicy { allowed: true, limit: Some(59), spent: 0 };
        match plan_charge(&w, "sec", 30, t(1), &Flat, &capped) {
            ChargeOutcome::Deny(d) => {
                assert_eq!((d.reason, d.overage_cost, d.overage_limit), (DenyReason::OverageLimitExceeded, 60, 59))
            }
            other => panic!("{other:?}"),
        }
        let spent = OveragePolicy { allowed: true, limit: Some(100), spent: 41 };
        assert!(!plan_charge(&w, "sec", 30, t(1), &Flat, &spent).is_allowed());
    }
}
