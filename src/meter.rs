//! A metered action decided whole: one capability or limit of the catalog, a quantity, the
//! subject's entitlements, what it used in the limit's window so far and `now` in; out the
//! decision with what remains and when it resets, and, for a tracked use, the count the
//! store makes atomically (a windowed counter that may not pass the limit).
//!
//! A limit's window comes from `now` in UTC: a `day` limit counts from 00:00 UTC and resets
//! at the next midnight, a `month` limit from the first of the month; a limit without a
//! period counts for ever. The limit is the value of the subject's tier at `now`; the
//! store increments the window's counter only while it stays within that value, so
//! concurrent uses admit exactly as many as the limit allows, whatever their order.
//!
//! A credit pool is checked here against the subject's lots ([`check_pool`]) or, in a host
//! that holds only a snapshot, against its balances ([`check_feature`]), both through one
//! rule ([`check_pool_holding`]); it is spent by a charge ([`crate::charge::charge_units`]).
//! Its `resets_at` is when it next refills by itself ([`pool_refill`]): the next period
//! of a subscription that grants it credits every period, never for credits given once.

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, LimitAnchor, LimitPeriod, LimitValue, Upgrade};
use crate::decide::{self, Reason};
use crate::billing::facts::Subject;
use crate::credits::Wallet;
use crate::model::Entitlements;
use crate::time::{Timestamp, DAY};

/// The most one request may use at once.
pub const MAX_QUANTITY: u64 = crate::charge::MAX_UNITS;

/// The longest scope of a limit's counter.
pub const MAX_SCOPE: usize = 100;

/// The counter a use of `limit` goes to: the limit's own, or with a scope (one course of
/// "students per course", one project) a counter of its own, `<limit>:<scope>`.
pub fn counter_id(limit: &str, scope: Option<&str>) -> Result<String, MeterError> {
    let Some(scope) = scope else { return Ok(limit.to_string()) };
    let ok = (1..=MAX_SCOPE).contains(&scope.len())
        && scope.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(MeterError::BadScope(format!(
            "a scope is 1 to {MAX_SCOPE} characters of A-Z, a-z, 0-9, `.`, `_` and `-`, not {scope:?}"
        )));
    }
    Ok(format!("{limit}:{scope}"))
}

/// The counter a use of feature `id` goes to: a limit's ([`counter_id`]), none for a
/// capability or a credit pool (a scope on those is refused).
pub fn counter_of(catalog: &Catalog, id: &str, scope: Option<&str>) -> Result<Option<String>, MeterError> {
    match feature(catalog, id)? {
        Feature::Limit(l) => counter_id(l, scope).map(Some),
        _ if scope.is_some() => Err(MeterError::BadScope(format!("`{id}` is not a limit: only a limit is counted per scope"))),
        _ => Ok(None),
    }
}

/// What a feature id names in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature<'c> {
    /// A boolean capability (checked; nothing to count).
    Capability(&'c str),
    /// A numeric limit, counted per window.
    Limit(&'c str),
    /// A credit pool (spent by a charge).
    Pool(&'c str),
}

/// A malformed metering question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeterError {
    UnknownFeature(String),
    /// A credit pool: checked by [`check_pool`], spent by a charge, not counted here.
    Pool(String),
    BadQuantity(u64),
    /// A scope that is not 1 to [`MAX_SCOPE`] of `A-Z a-z 0-9 . _ -`, or a scope on what is
    /// not a limit.
    BadScope(String),
}

codes! {
    /// The stable code of a [`MeterError`].
    pub enum MeterErrorCode {
        UnknownFeature = "unknown_feature",
        CreditPool = "credit_pool",
        InvalidQuantity = "invalid_quantity",
        InvalidScope = "invalid_scope",
    }
}

impl MeterError {
    pub fn kind(&self) -> MeterErrorCode {
        match self {
            MeterError::UnknownFeature(_) => MeterErrorCode::UnknownFeature,
            MeterError::Pool(_) => MeterErrorCode::CreditPool,
            MeterError::BadQuantity(_) => MeterErrorCode::InvalidQuantity,
            MeterError::BadScope(_) => MeterErrorCode::InvalidScope,
        }
    }
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }
}

impl std::fmt::Display for MeterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeterError::UnknownFeature(x) => {
                write!(f, "`{x}` is not a capability, a limit or a credit pool of the catalog")
            }
            MeterError::Pool(x) => write!(f, "`{x}` is a credit pool: its use is a charge of credits (check_pool, charge_units)"),
            MeterError::BadQuantity(q) => write!(f, "quantity must be a whole number from 1 to {MAX_QUANTITY}, not {q}"),
            MeterError::BadScope(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for MeterError {}

/// The feature `id` names: a capability, a limit or a credit pool of the catalog.
pub fn feature<'c>(catalog: &'c Catalog, id: &str) -> Result<Feature<'c>, MeterError> {
    if let Some(i) = catalog.capability_index(id) {
        return Ok(Feature::Capability(&catalog.doc.capabilities[i].id));
    }
    if let Some(i) = catalog.limit_index(id) {
        return Ok(Feature::Limit(&catalog.doc.limits[i].id));
    }
    if let Some(p) = catalog.pool(id) {
        return Ok(Feature::Pool(&p.id));
    }
    Err(MeterError::UnknownFeature(id.to_string()))
}

/// The span a limit counts over at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The first instant counted (the epoch for a limit without a period).
    pub start: Timestamp,
    /// When the count starts again from zero; `None`: never.
    pub resets_at: Option<Timestamp>,
}

/// The window of a limit with `period` that holds `now` (UTC).
pub fn window(period: LimitPeriod, now: Timestamp) -> Window {
    match period {
        LimitPeriod::None => Window { start: Timestamp(0), resets_at: None },
        LimitPeriod::Day => {
            let start = now.unix().div_euclid(DAY) * DAY;
            Window { start: Timestamp(start), resets_at: Some(Timestamp(start + DAY)) }
        }
        // A billing period without its subscription is the calendar month (see limit_window).
        LimitPeriod::Month | LimitPeriod::BillingPeriod => {
            let d = DateTime::<Utc>::from_timestamp(now.unix(), 0).unwrap_or_default();
            let first = |y: i32, m: u32| Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().map(|t| Timestamp(t.timestamp()));
            let (ny, nm) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
            Window { start: first(d.year(), d.month()).unwrap_or(now), resets_at: first(ny, nm) }
        }
    }
}

/// The window of limit `li` for a subject holding `ents` at `now`. Calendar windows come
/// from [`window`]. An anchored one (`anchor = "subscription"` monthly, or a
/// `billing_period`) follows the subscription that gives the subject its tier: a window
/// as long as its paid period is that period as the provider set it
/// ([`crate::Grant::period_start`] to its end), the period an overage cap counts over too
/// ([`overage_period`]); a monthly window on a yearly plan steps by a month from the
/// period's start, on its day (the month's last when shorter). After a known period (a
/// renewal retried in its grace period, or told late) the windows that follow start where
/// it ended, as the renewal's period does, so the renewal's arrival does not start an
/// empty count: they step from the period's start when the period is one plain step of
/// it, else from its end (the start fell on a day its month was too short for, as a
/// period from February 28th of a subscription billed on the 31st, or the provider
/// shortened a first period), whose day is then the billing day. With no period recorded
/// (or one not begun) windows step from the day the subscription started. Without such a
/// subscription (a default tier, a grant by hand, a one-time offer) the window is the
/// calendar month.
pub fn limit_window(catalog: &Catalog, ents: &Entitlements, li: usize, now: Timestamp) -> Window {
    let l = &catalog.doc.limits[li];
    let months = match (l.period, l.anchor) {
        (LimitPeriod::Month, LimitAnchor::Subscription) => Some(1),
        (LimitPeriod::BillingPeriod, _) => None,
        (p, _) => return window(p, now),
    };
    let g = decide::effective_for_limit(catalog, ents, catalog.limit_product(li), now).grant;
    let step = g.and_then(|g| {
        // A recurring offer only: a monthly window of it, or one period of it.
        let period = catalog.offer(g.offer.as_deref()?)?.price.interval.months()?;
        let every = months.unwrap_or(period);
        if let (true, Some(start), Some(end)) = (every == period, g.period_start, g.valid_to) {
            if start <= now && now < end {
                return Some(Window { start, resets_at: Some(end) });
            }
            if start < end && end <= now {
                let plain = plus_months(start, every) == Some(end);
                return anchored(if plain { start } else { end }, every, now);
            }
        }
        anchored(g.period_start.filter(|p| *p <= now).unwrap_or(g.valid_from), every, now)
    });
    step.unwrap_or_else(|| window(LimitPeriod::Month, now))
}

/// What a counter holds for window `w`, given its latest window as stored (`start`,
/// `used`): an older latest window is a window that has reset.
pub fn used_in(w: &Window, latest: Option<(Timestamp, u64)>) -> u64 {
    match latest {
        Some((start, used)) if start == w.start => used,
        _ => 0,
    }
}

/// The window of `every` months, counted from `anchor`, that holds `now` (each window
/// starts `k * every` months after the anchor, on the anchor's day or the month's last).
fn anchored(anchor: Timestamp, every: u32, now: Timestamp) -> Option<Window> {
    if now < anchor || every == 0 {
        return None;
    }
    let a = DateTime::<Utc>::from_timestamp(anchor.unix(), 0)?;
    let n = DateTime::<Utc>::from_timestamp(now.unix(), 0)?;
    let after = |k: u32| plus_months(anchor, k);
    let months = u32::try_from((n.year() - a.year()) * 12 + n.month() as i32 - a.month() as i32).ok()?;
    let mut k = months / every * every;
    // The month count overshoots when now's day comes before the anchor's in its month.
    while k > 0 && after(k)? > now {
        k -= every;
    }
    Some(Window { start: after(k)?, resets_at: after(k + every) })
}

/// `k` months after `t`, on its day (the month's last when shorter) at its time of day.
fn plus_months(t: Timestamp, k: u32) -> Option<Timestamp> {
    let d = DateTime::<Utc>::from_timestamp(t.unix(), 0)?;
    d.checked_add_months(Months::new(k)).map(|d| Timestamp(d.timestamp()))
}

/// A running subscription's current billing period, and since when the subject has had
/// the subscription (the store's first record of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillingPeriod {
    pub since: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The billing period an overage cap counts over at `now`: that of the subject's oldest
/// running subscription (the one had longest, so another bought later, or renewing on
/// another day, does not move the window and start an empty count): its current period
/// while that holds `now`; after it, until the renewal is told, the periods of the same
/// length that follow (a renewal starts where the period ended, so its arrival does not
/// move the window either). Without one, the UTC calendar month.
pub fn overage_period(periods: &[BillingPeriod], now: Timestamp) -> Window {
    let anchor = periods.iter().filter(|p| p.start < p.end && p.start <= now).min_by_key(|p| (p.since, p.start, p.end));
    match anchor {
        Some(p) if now < p.end => Window { start: p.start, resets_at: Some(p.end) },
        Some(p) => {
            let len = p.end.0 - p.start.0;
            let start = p.end.0 + (now.0 - p.end.0) / len * len;
            Window { start: Timestamp(start), resets_at: Some(Timestamp(start.saturating_add(len))) }
        }
        None => window(LimitPeriod::Month, now),
    }
}

/// The counter an overage cap is kept in (`usage_counters`, per billing period): a name
/// no catalog limit can have (limit ids have no `:`).
pub fn overage_counter(currency: &str) -> String {
    format!("overage:{}", currency.to_ascii_lowercase())
}

/// The most a user may set as an overage cap: 10,000,000 in major units.
pub const MAX_OVERAGE_LIMIT: i64 = 1_000_000_000;

/// A user's overage choice, checked against the catalog before it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OverageChoice {
    pub allow_overages: bool,
    /// Minor units of the catalog's usage currency.
    pub overage_limit: i64,
    pub currency: String,
    /// The caller named the limit. When it did not, the limit stored is kept as it is at
    /// the write (a change made meanwhile by another request included), and
    /// `overage_limit` is written only where none is stored yet.
    pub limit_named: bool,
}

/// Why an overage choice is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChoiceError {
    /// The catalog prices no usage, so there is no overage to allow.
    NoUsagePricing,
    BadLimit(i64),
    WrongCurrency { given: String, expected: String },
}

impl ChoiceError {
    pub fn code(&self) -> &'static str {
        match self {
            ChoiceError::NoUsagePricing => "no_usage_pricing",
            ChoiceError::BadLimit(_) => "invalid_overage_limit",
            ChoiceError::WrongCurrency { .. } => "wrong_currency",
        }
    }
}

impl std::fmt::Display for ChoiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChoiceError::NoUsagePricing => f.write_str("the catalog prices no usage: there is no overage to allow"),
            ChoiceError::BadLimit(n) => write!(
                f,
                "overage_limit is in minor units, from 0 to {MAX_OVERAGE_LIMIT}, not {n}"
            ),
            ChoiceError::WrongCurrency { given, expected } => {
                write!(f, "overage_limit is in {expected}, the catalog's usage currency, not {given}")
            }
        }
    }
}

/// Checks a user's overage choice: a cap in minor units of the catalog's usage currency
/// (`currency`, when given, must be that one), 0 or more; `overage_limit` absent keeps
/// `current` (or the catalog's default).
pub fn overage_choice(
    catalog: &Catalog,
    allow_overages: bool,
    overage_limit: Option<i64>,
    currency: Option<&str>,
    current: Option<i64>,
) -> Result<OverageChoice, ChoiceError> {
    let u = catalog.doc.usage.as_ref().ok_or(ChoiceError::NoUsagePricing)?;
    if let Some(c) = currency.filter(|c| !c.eq_ignore_ascii_case(&u.currency)) {
        return Err(ChoiceError::WrongCurrency { given: c.to_string(), expected: u.currency.clone() });
    }
    let limit = overage_limit.or(current).unwrap_or(u.default_overage_limit);
    if !(0..=MAX_OVERAGE_LIMIT).contains(&limit) {
        return Err(ChoiceError::BadLimit(limit));
    }
    Ok(OverageChoice { allow_overages, overage_limit: limit, currency: u.currency.clone(), limit_named: overage_limit.is_some() })
}

/// What remains of a feature after a decision.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "number | \"unlimited\""))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remaining {
    Count(u64),
    Unlimited,
}

impl Serialize for Remaining {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Remaining::Count(n) => s.serialize_u64(*n),
            Remaining::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

/// The decision on a metered action: `POST /v1/check` answers it as it is.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub feature: String,
    pub allowed: bool,
    pub reason: Reason,
    /// What is left after this use when allowed, else what is left now.
    pub remaining: Remaining,
    /// Used so far in the window (limits; 0 for a capability).
    pub used: u64,
    pub limit: Remaining,
    pub resets_at: Option<Timestamp>,
    /// The effective tier of the feature's product.
    pub tier: Option<String>,
    /// When denied: the cheapest offer that allows it, given what the subject holds.
    pub upgrade: Option<Upgrade>,
}

impl Check {
    /// When denied: the refusal's code (`limit_reached`, or `not_entitled` for anything
    /// else) and a person's sentence, naming the cheapest unlock when there is one.
    /// `None` when allowed.
    pub fn refusal(&self) -> Option<(&'static str, String)> {
        if self.allowed {
            return None;
        }
        let unlock = match &self.upgrade {
            Some(u) => format!(" Upgrade to {} to continue.", u.label),
            None => String::new(),
        };
        Some(match self.reason {
            Reason::LimitReached => ("limit_reached", format!("The limit of {} is reached.{unlock}", self.feature)),
            Reason::Paused => ("not_entitled", format!("Your subscription is paused: resume it to use {}.{unlock}", self.feature)),
            _ => ("not_entitled", format!("Your plan does not include {}.{unlock}", self.feature)),
        })
    }
}

/// What `POST /v1/check` and `POST /v1/track` answer: the decision, the refusal's sentence
/// when it says no, and for a track the use it recorded.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeterAnswer {
    #[serde(flatten)]
    pub check: Check,
    /// When denied: why, in a sentence ([`Check::refusal`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub message: Option<String>,
    /// A track's recorded use (`null` for a capability, which counts nothing); absent
    /// from a check.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub usage_id: Option<Option<String>>,
    /// A track's: whether it answers a use recorded before under the same key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub replayed: Option<bool>,
}

impl MeterAnswer {
    /// A check's answer.
    pub fn checked(check: Check) -> MeterAnswer {
        MeterAnswer { message: check.refusal().map(|r| r.1), check, usage_id: None, replayed: None }
    }

    /// A track's answer, with the use it recorded (or replayed).
    pub fn tracked(check: Check, usage_id: Option<String>, replayed: bool) -> MeterAnswer {
        MeterAnswer { usage_id: Some(usage_id), replayed: Some(replayed), ..MeterAnswer::checked(check) }
    }
}

/// A use to count: the store adds `quantity` to the window's counter only while the total
/// stays within `max`, and records the use under `request_id` once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    pub request_id: String,
    pub request_hash: String,
    pub feature: String,
    /// The counter that grows: the limit's own, or its scope's ([`counter_id`]).
    pub counter: String,
    /// Who used it when the subject is an organization: the member's subject key.
    pub actor: Option<String>,
    pub quantity: u64,
    pub window_start: Timestamp,
    /// `None`: unlimited (counted all the same, for the subject's usage).
    pub max: Option<u64>,
    /// When the use was decided.
    pub at: Timestamp,
}

/// May the subject take `quantity` credits of `pool` now? Reads what the pool's usable
/// lots hold (those of a paused subscription left out: [`crate::usage::drawable`]) and whether the subject may draw on it at all ([`crate::usage::may_draw`])
/// from its wallet, then decides with [`check_pool_holding`].
pub fn check_pool(
    catalog: &Catalog,
    ents: &Entitlements,
    wallet: &Wallet,
    pool: &str,
    quantity: u64,
    now: Timestamp,
) -> Result<Check, MeterError> {
    let id = pool_of(catalog, pool, quantity)?;
    let (a, b) = crate::usage::drawable(wallet, &ents.grants, now).available(id, now);
    let available = u64::try_from(a.saturating_add(b)).unwrap_or(0);
    let may_draw = crate::usage::may_draw(catalog, ents, wallet, id, now);
    check_pool_holding(catalog, ents, id, quantity, available, may_draw, now)
}

/// When credits next flow into `pool` by themselves: the end of the current paid period
/// of a subscription whose offer grants the pool credits every period (`per = "period"`),
/// the earliest such end after `now` when several feed it; `None` when nothing refills it.
///
/// The grants say it: a subscription's grant names its offer and lasts to the end of the
/// period paid for, which is when the next period's allowance comes (at the end of a
/// trial, the first paid period's). A grant that counts at `now` and is `active`,
/// `trial` or `past_due` (a failed renewal retried: its paid period may not have ended)
/// renews; a `canceled` one (canceled at the period end, paused, ended) ends without a
/// refill. One-off purchases, admin credits and the catalog's free amount are given once
/// and never refill, and neither does a grant without a recurring offer. Nor does a grant
/// a seat lends ([`crate::Grant::lent_by_seat`]): its allowance goes to the organization's
/// lots, never to the member's.
pub fn pool_refill(catalog: &Catalog, ents: &Entitlements, pool: &str, now: Timestamp) -> Option<Timestamp> {
    use crate::catalog::CreditCadence;
    use crate::model::Status;
    let grace = catalog.meta().grace_period_days;
    ents.grants
        .iter()
        .filter(|g| !g.lent_by_seat())
        .filter(|g| matches!(g.status, Status::Active | Status::Trial | Status::PastDue))
        .filter(|g| decide::counts(g, grace, now))
        .filter(|g| {
            g.offer.as_deref().and_then(|k| catalog.offer(k)).is_some_and(|o| {
                o.price.interval.months().is_some() && o.credits.iter().any(|c| c.pool == pool && c.per == CreditCadence::Period)
            })
        })
        .filter_map(|g| g.valid_to.filter(|end| *end > now))
        .min()
}

/// [`pool_refill`] for every credit pool of the catalog that refills (what a snapshot
/// carries as `refills`).
pub fn pool_refills(catalog: &Catalog, ents: &Entitlements, now: Timestamp) -> std::collections::BTreeMap<String, Timestamp> {
    catalog
        .doc
        .credit_pools
        .iter()
        .filter_map(|p| Some((p.id.clone(), pool_refill(catalog, ents, &p.id, now)?)))
        .collect()
}

/// The pool rule, shared by the worker (through [`check_pool`]) and the browser
/// (through [`check_feature`]): allowed while `available` covers `quantity`
/// (`remaining`: what is left after; `limit`: what is there now); refused when the
/// subject may not draw on the pool (`no_entitlement`; `paused` when a subscription of
/// its own is paused, which resumed would let it draw) or when it holds less
/// (`limit_reached`; `paused` when a paused subscription of its own puts credits into the
/// pool, which are not spendable while it is: [`crate::usage::drawable`], left out of
/// `available` by the caller), with the offer a refusal on the pool names
/// ([`crate::usage::credit_offer`]: one the subject can buy that puts in what `available`
/// lacks of `quantity`). `resets_at`: when the pool refills by itself ([`pool_refill`]), if it does.
pub fn check_pool_holding(
    catalog: &Catalog,
    ents: &Entitlements,
    pool: &str,
    quantity: u64,
    available: u64,
    may_draw: bool,
    now: Timestamp,
) -> Result<Check, MeterError> {
    let id = pool_of(catalog, pool, quantity)?;
    let resets_at = pool_refill(catalog, ents, id, now);
    let allowed = may_draw && quantity <= available;
    Ok(Check {
        feature: id.to_string(),
        allowed,
        reason: if allowed {
            Reason::WithinLimit
        } else if crate::usage::paused_pool(catalog, ents, id, now)
            || (!may_draw && catalog.products().iter().any(|p| decide::paused_product(catalog, ents, &p.id, now)))
        {
            Reason::Paused
        } else if may_draw {
            Reason::LimitReached
        } else {
            Reason::NoEntitlement
        },
        remaining: Remaining::Count(if allowed { available - quantity } else { available }),
        used: 0,
        limit: Remaining::Count(available),
        resets_at,
        tier: None,
        upgrade: if allowed {
            None
        } else {
            crate::usage::credit_offer(catalog, ents, id, quantity.saturating_sub(available), now).map(Upgrade::from_offer)
        },
    })
}

/// The catalog's id of `pool`, once `quantity` is known to be one a request may ask for.
fn pool_of<'c>(catalog: &'c Catalog, pool: &str, quantity: u64) -> Result<&'c str, MeterError> {
    valid_quantity(quantity)?;
    catalog.pool(pool).map(|p| p.id.as_str()).ok_or_else(|| MeterError::UnknownFeature(pool.into()))
}

fn valid_quantity(quantity: u64) -> Result<(), MeterError> {
    if quantity == 0 || quantity > MAX_QUANTITY {
        return Err(MeterError::BadQuantity(quantity));
    }
    Ok(())
}

/// Any feature decided from the entitlements alone, as a host holding only a signed
/// snapshot can: a capability or a limit as [`check`] decides it (`used`: what the
/// limit's window used so far; ignored otherwise), a credit pool from `ents.balances`.
/// A pool named in `balances` is one the subject holds lots in (the snapshot lists
/// exactly those), and its balance is what is available; a pool not named there holds
/// nothing, and only a plan lets the subject draw on it. For the same subject the
/// answer is the worker's `POST /v1/check` as long as the snapshot is current.
pub fn check_feature(
    catalog: &Catalog,
    ents: &Entitlements,
    feature_id: &str,
    quantity: u64,
    used: u64,
    now: Timestamp,
) -> Result<Check, MeterError> {
    valid_quantity(quantity)?;
    match feature(catalog, feature_id)? {
        Feature::Pool(pool) => {
            let held = ents.balance_at(pool, now);
            let available = held.map_or(0, |&n| u64::try_from(n).unwrap_or(0));
            let may_draw = crate::usage::may_draw_holding(catalog, ents, held.is_some(), now);
            check_pool_holding(catalog, ents, pool, quantity, available, may_draw, now)
        }
        Feature::Capability(_) | Feature::Limit(_) => check(catalog, ents, feature_id, quantity, used, now),
    }
}

/// What [`track`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Track {
    /// Allowed; a limit's use is to be counted (`None` for a capability: nothing to count).
    Allow(Check, Option<Count>),
    Refuse(Check),
}

/// May the subject use `quantity` of `feature` now, having used `used` in the window?
/// No side effects.
pub fn check(
    catalog: &Catalog,
    ents: &Entitlements,
    feature_id: &str,
    quantity: u64,
    used: u64,
    now: Timestamp,
) -> Result<Check, MeterError> {
    valid_quantity(quantity)?;
    match feature(catalog, feature_id)? {
        Feature::Capability(id) => {
            let d = decide::can(catalog, ents, id, now).map_err(|_| MeterError::UnknownFeature(id.into()))?;
            Ok(Check {
                feature: id.to_string(),
                allowed: d.allowed,
                reason: d.reason,
                remaining: Remaining::Unlimited,
                used: 0,
                limit: Remaining::Unlimited,
                resets_at: d.holds_until,
                tier: d.tier,
                upgrade: d.upgrade,
            })
        }
        Feature::Limit(id) => {
            let li = catalog.limit_index(id).ok_or_else(|| MeterError::UnknownFeature(id.into()))?;
            let w = limit_window(catalog, ents, li, now);
            let value = decide::limit(catalog, ents, id, now).map_err(|_| MeterError::UnknownFeature(id.into()))?;
            // The last unit this use would take decides it: `used + quantity - 1` used before it.
            let d = decide::check_limit(catalog, ents, id, used.saturating_add(quantity - 1), now)
                .map_err(|_| MeterError::UnknownFeature(id.into()))?;
            let (limit, remaining) = match value.limit {
                LimitValue::Unlimited => (Remaining::Unlimited, Remaining::Unlimited),
                LimitValue::Limited(n) => {
                    let after = if d.allowed { used + quantity } else { used };
                    (Remaining::Count(n), Remaining::Count(n.saturating_sub(after)))
                }
            };
            Ok(Check {
                feature: id.to_string(),
                allowed: d.allowed,
                reason: d.reason,
                remaining,
                used,
                limit,
                resets_at: w.resets_at,
                tier: d.tier,
                upgrade: d.upgrade,
            })
        }
        Feature::Pool(p) => Err(MeterError::Pool(p.to_string())),
    }
}

/// A use asked for: `quantity` of `feature` by `subject`, under the caller's key.
#[derive(Clone, Copy, Debug)]
pub struct Use<'a> {
    pub subject: &'a Subject,
    pub idempotency_key: &'a str,
    pub feature: &'a str,
    pub quantity: u64,
    /// A limit counted per scope (see [`counter_id`]).
    pub scope: Option<&'a str>,
    /// The member acting for an organization `subject`.
    pub actor: Option<&'a Subject>,
}

/// A use: the decision, and for an allowed limit the count the store makes. `used` is the
/// window's count as last read; the store's count is what holds (a refusal from the store
/// is decided again with its count).
pub fn track(catalog: &Catalog, ents: &Entitlements, u: &Use, used: u64, now: Timestamp) -> Result<Track, MeterError> {
    let quantity = u.quantity;
    let counter = counter_of(catalog, u.feature, u.scope)?;
    let c = check(catalog, ents, u.feature, quantity, used, now)?;
    if !c.allowed {
        return Ok(Track::Refuse(c));
    }
    let (Some(counter), Some(li)) = (counter, catalog.limit_index(&c.feature)) else {
        return Ok(Track::Allow(c, None));
    };
    let (request_id, request_hash) = use_keys(u, &counter);
    let count = Count {
        request_id,
        request_hash,
        feature: c.feature.clone(),
        counter,
        actor: u.actor.map(|a| a.to_string()),
        quantity,
        window_start: limit_window(catalog, ents, li, now).start,
        max: match c.limit {
            Remaining::Count(n) => Some(n),
            Remaining::Unlimited => None,
        },
        at: now,
    };
    Ok(Track::Allow(c, Some(count)))
}

/// The alert checks of the limit a use was refused by, once it is reached: the store
/// compares them with the window's count, so a crossing whose alert was not recorded when
/// the use that crossed it was counted (the store failed then) opens at the next refused
/// use, the only request still coming once the limit is reached. Empty for any other
/// refusal.
pub fn refused_checks(catalog: &Catalog, ents: &Entitlements, c: &Check, counter: &str, now: Timestamp) -> Vec<crate::alerts::AlertCheck> {
    if c.reason != Reason::LimitReached {
        return Vec::new();
    }
    checks_of(catalog, ents, c, counter, now)
}

/// The alert checks of limit `feature` on `counter` for `ents` at `now`, as a counted use
/// applies them (its window and the subject's limit): after a use of a limit without a
/// window was released, the store compares them with the count it went back to, so an
/// alert whose level is no longer reached resolves. Empty for a capability, a pool or an
/// unlimited limit.
pub fn limit_alert_checks(catalog: &Catalog, ents: &Entitlements, feature: &str, counter: &str, now: Timestamp) -> Vec<crate::alerts::AlertCheck> {
    match check(catalog, ents, feature, 1, 0, now) {
        Ok(c) => checks_of(catalog, ents, &c, counter, now),
        Err(_) => Vec::new(),
    }
}

/// [`crate::alerts::limit_checks`] of the limit `c` decided on, in its window.
fn checks_of(catalog: &Catalog, ents: &Entitlements, c: &Check, counter: &str, now: Timestamp) -> Vec<crate::alerts::AlertCheck> {
    let (Remaining::Count(max), Some(li)) = (c.limit, catalog.limit_index(&c.feature)) else {
        return Vec::new();
    };
    let w = limit_window(catalog, ents, li, now);
    crate::alerts::limit_checks(catalog, &c.feature, counter, w.start, c.resets_at, max)
}

/// The request id and content digest a use is recorded under, on `counter`: what the
/// store counts it by, and what a retry of it is found by. An organization's use is
/// keyed by its member too: two members' uses under the same key are two uses, and
/// neither is answered as the other's. (A key is printable text, so the NUL-separated
/// form never equals one sent alone.)
pub fn use_keys(u: &Use, counter: &str) -> (String, String) {
    let id = match u.actor {
        Some(actor) => crate::charge::request_id(u.subject, &format!("\u{0}{actor}\u{0}{}", u.idempotency_key)),
        None => crate::charge::request_id(u.subject, u.idempotency_key),
    };
    (id, request_hash(u.subject, counter, u.quantity))
}

/// The digest of a tracked use's content (the counter names the limit and its scope): the
/// same key with another body is refused.
pub fn request_hash(subject: &Subject, counter: &str, quantity: u64) -> String {
    let body = format!("track\n{subject}\n{counter}\n{quantity}");
    hex::encode(&Sha256::digest(body.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn windows_are_utc_days_and_months() {
        let w = window(LimitPeriod::Day, ts("2026-03-05T23:59:59Z"));
        assert_eq!((w.start, w.resets_at), (ts("2026-03-05T00:00:00Z"), Some(ts("2026-03-06T00:00:00Z"))));
        let w = window(LimitPeriod::Day, ts("2026-03-06T00:00:00Z"));
        assert_eq!(w.start, ts("2026-03-06T00:00:00Z"));
        let w = window(LimitPeriod::Month, ts("2026-12-31T12:00:00+05:30"));
        assert_eq!((w.start, w.resets_at), (ts("2026-12-01T00:00:00Z"), Some(ts("2027-01-01T00:00:00Z"))));
        let w = window(LimitPeriod::Month, ts("2028-02-29T00:00:00Z"));
        assert_eq!((w.start, w.resets_at), (ts("2028-02-01T00:00:00Z"), Some(ts("2028-03-01T00:00:00Z"))));
        assert_eq!(window(LimitPeriod::None, ts("2026-03-05T10:00:00Z")), Window { start: Timestamp(0), resets_at: None });
    }

    fn razorpay() -> Catalog {
        Catalog::parse(include_str!("../catalogs/razorpay-ai.toml")).expect("catalog")
    }

    fn premium(valid_to: &str) -> Entitlements {
        let g = crate::model::Grant {
            id: "razorpay:sub_1:premium".into(),
            product: "premium".into(),
            tier: "PREMIUM".into(),
            source: crate::model::Source::Razorpay,
            status: crate::model::Status::Active,
            valid_from: ts("2026-03-01T00:00:00Z"),
            valid_to: Some(ts(valid_to)),
            past_due_since: None,
            offer: None,
            source_ref: None,
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        };
        Entitlements::new(vec![g])
    }

    fn lot(w: &mut Wallet, key: &str, pool: &str, kind: crate::credits::LotKind, amount: i64, valid_to: Option<&str>) {
        w.credit(crate::credits::NewLot {
            key: key.into(),
            pool,
            kind,
            amount,
            at: ts("2026-03-01T00:00:00Z"),
            valid_to: valid_to.map(ts),
            source: "test",
            subscription: None,
            catalog_version: None,
        });
    }

    /// The balances a snapshot carries for `wallet`: every pool it holds a lot in, with
    /// what is usable at `now`.
    fn balances(wallet: &Wallet, now: Timestamp) -> std::collections::BTreeMap<String, i64> {
        wallet
            .lots
            .iter()
            .map(|l| {
                let (a, b) = wallet.available(&l.pool, now);
                (l.pool.clone(), a + b)
            })
            .collect()
    }

    #[test]
    fn a_pool_decided_from_a_snapshot_is_the_pool_decided_from_the_wallet() {
        use crate::credits::LotKind;
        let c = razorpay();
        let now = ts("2026-03-10T12:00:00Z");
        let mut wallets = vec![Wallet::new()];
        let mut w = Wallet::new();
        lot(&mut w, "free", "free_drafts", LotKind::Free, 2, None);
        wallets.push(w.clone());
        lot(&mut w, "topup", "ai_credits", LotKind::Purchase, 500, None);
        wallets.push(w);
        // A period lot that has run out still says the subject held credits in the pool.
        let mut w = Wallet::new();
        lot(&mut w, "old", "ai_credits", LotKind::Allowance, 2000, Some("2026-03-05T00:00:00Z"));
        wallets.push(w);
        let subjects = [Entitlements::default(), premium("2026-04-01T00:00:00Z"), premium("2026-03-02T00:00:00Z")];
        for wallet in &wallets {
            for base in &subjects {
                let ents = Entitlements { balances: balances(wallet, now), ..base.clone() };
                for pool in ["free_drafts", "ai_credits"] {
                    for quantity in [1, 2, 3, 500, 501] {
                        let from_wallet = check_pool(&c, base, wallet, pool, quantity, now).unwrap();
                        let from_snapshot = check_feature(&c, &ents, pool, quantity, 7, now).unwrap();
                        assert_eq!(from_snapshot, from_wallet, "{pool} x {quantity}, lots {:?}", wallet.lots);
                    }
                }
            }
        }
    }

    #[test]
    fn a_snapshot_pool_needs_lots_or_a_plan() {
        let c = razorpay();
        let now = ts("2026-03-10T12:00:00Z");
        let mut ents = Entitlements::default();
        ents.balances.insert("free_drafts".into(), 2);
        let two = check_feature(&c, &ents, "free_drafts", 2, 0, now).unwrap();
        assert_eq!((two.allowed, two.remaining, two.limit), (true, Remaining::Count(0), Remaining::Count(2)));
        let three = check_feature(&c, &ents, "free_drafts", 3, 0, now).unwrap();
        assert_eq!((three.allowed, three.reason, three.remaining), (false, Reason::LimitReached, Remaining::Count(2)));
        assert_eq!(three.upgrade, None, "no offer sells drafts");
        let credits = check_feature(&c, &ents, "ai_credits", 1, 0, now).unwrap();
        assert_eq!((credits.allowed, credits.reason), (false, Reason::NoEntitlement));
        assert_eq!(credits.upgrade.map(|u| u.offer).as_deref(), Some("AI_CREDITS_TOPUP_500"));
        // A plan may draw on a pool it holds nothing in yet: short, not unentitled.
        let planned = check_feature(&c, &premium("2026-04-01T00:00:00Z"), "ai_credits", 1, 0, now).unwrap();
        assert_eq!((planned.allowed, planned.reason, planned.limit), (false, Reason::LimitReached, Remaining::Count(0)));
        // A negative balance (never written by the store) counts as nothing available.
        ents.balances.insert("ai_credits".into(), -5);
        let negative = check_feature(&c, &ents, "ai_credits", 1, 0, now).unwrap();
        assert_eq!((negative.reason, negative.limit), (Reason::LimitReached, Remaining::Count(0)));
    }

    #[test]
    fn capabilities_and_limits_from_a_snapshot_are_the_metered_check() {
        let c = razorpay();
        let now = ts("2026-03-10T12:00:00Z");
        for ents in [Entitlements::default(), premium("2026-04-01T00:00:00Z")] {
            for (feature, used) in [("ai_generation", 0), ("monthly_ai_credits", 0), ("monthly_ai_credits", 1999), ("monthly_ai_credits", 2000)] {
                assert_eq!(check_feature(&c, &ents, feature, 1, used, now), check(&c, &ents, feature, 1, used, now));
            }
        }
        let limit = check_feature(&c, &premium("2026-04-01T00:00:00Z"), "monthly_ai_credits", 1, 1999, now).unwrap();
        assert_eq!((limit.remaining, limit.resets_at), (Remaining::Count(0), Some(ts("2026-04-01T00:00:00Z"))));
    }

    #[test]
    fn a_malformed_question_is_an_error_whatever_the_feature() {
        let c = razorpay();
        let (ents, now) = (Entitlements::default(), ts("2026-03-10T12:00:00Z"));
        for feature in ["ai_generation", "monthly_ai_credits", "free_drafts", "teleport"] {
            assert_eq!(check_feature(&c, &ents, feature, 0, 0, now), Err(MeterError::BadQuantity(0)));
            assert_eq!(check_feature(&c, &ents, feature, MAX_QUANTITY + 1, 0, now), Err(MeterError::BadQuantity(MAX_QUANTITY + 1)));
        }
        let unknown = check_feature(&c, &ents, "teleport", 1, 0, now).unwrap_err();
        assert_eq!(unknown, MeterError::UnknownFeature("teleport".into()));
        assert_eq!(unknown.to_string(), "`teleport` is not a capability, a limit or a credit pool of the catalog");
        assert_eq!(check_pool_holding(&c, &ents, "ai_generation", 1, 10, true, now), Err(MeterError::UnknownFeature("ai_generation".into())));
    }

    /// A grant of the Razorpay AI app's `offer` (`PREMIUM_MONTHLY` grants 2000 AI credits
    /// every period) from March 1st to `valid_to`.
    fn sub(id: &str, offer: &str, status: crate::model::Status, valid_to: &str) -> crate::model::Grant {
        crate::model::Grant {
            id: format!("razorpay:{id}:premium"),
            offer: Some(offer.into()),
            status,
            source_ref: Some(id.into()),
            ..premium(valid_to).grants.remove(0)
        }
    }

    #[test]
    fn a_pool_refills_at_the_end_of_the_paid_period_of_a_subscription_that_feeds_it() {
        use crate::model::Status;
        let c = razorpay();
        let now = ts("2026-03-10T12:00:00Z");
        let end = ts("2026-04-01T00:00:00Z");
        let refill = |grants: Vec<crate::model::Grant>, at: Timestamp| pool_refill(&c, &Entitlements::new(grants), "ai_credits", at);
        // A subscription whose offer grants credits every period: its next period.
        let monthly = sub("sub_1", "PREMIUM_MONTHLY", Status::Active, "2026-04-01T00:00:00Z");
        assert_eq!(refill(vec![monthly.clone()], now), Some(end));
        // ... also on trial (the first paid period's allowance) and in a failed renewal's
        // paid period; a past-due subscription whose period has ended has no known refill.
        assert_eq!(refill(vec![sub("sub_1", "PREMIUM_MONTHLY", Status::Trial, "2026-04-01T00:00:00Z")], now), Some(end));
        assert_eq!(refill(vec![sub("sub_1", "PREMIUM_MONTHLY", Status::PastDue, "2026-04-01T00:00:00Z")], now), Some(end));
        assert_eq!(refill(vec![sub("sub_1", "PREMIUM_MONTHLY", Status::PastDue, "2026-03-09T00:00:00Z")], now), None);
        // Credits bought once, given by an operator or for free: no grant feeds the pool.
        let mut once = Entitlements::default();
        once.balances.insert("ai_credits".into(), 500);
        assert_eq!(pool_refill(&c, &once, "ai_credits", now), None);
        // A one-time offer, a grant by hand (no offer), a pool the offer does not feed.
        assert_eq!(refill(vec![sub("pay_1", "AI_CREDITS_TOPUP_500", Status::Active, "2026-04-01T00:00:00Z")], now), None);
        assert_eq!(refill(premium("2026-04-01T00:00:00Z").grants, now), None);
        assert_eq!(pool_refill(&c, &Entitlements::new(vec![monthly.clone()]), "free_drafts", now), None);
        // Mixed: a top-up beside the plan refills with the plan; two plans, the earlier.
        let mut mixed = Entitlements::new(vec![monthly.clone()]);
        mixed.balances.insert("ai_credits".into(), 2500);
        assert_eq!(pool_refill(&c, &mixed, "ai_credits", now), Some(end));
        let yearly = sub("sub_2", "PREMIUM_YEARLY", Status::Active, "2027-03-01T00:00:00Z");
        assert_eq!(refill(vec![yearly.clone(), monthly.clone()], now), Some(end));
        assert_eq!(refill(vec![yearly.clone()], now), Some(ts("2027-03-01T00:00:00Z")));
        // Canceled at the period end: credits last to the end, and nothing comes after it.
        let canceled = sub("sub_1", "PREMIUM_MONTHLY", Status::Canceled, "2026-04-01T00:00:00Z");
        assert_eq!(refill(vec![canceled.clone()], now), None);
        assert_eq!(refill(vec![canceled.clone(), yearly], now), Some(ts("2027-03-01T00:00:00Z")));
        // At and after the period's end the grant no longer counts: no refill is known.
        assert_eq!(refill(vec![monthly.clone()], end), None);
        // The snapshot's map: only the pools that refill.
        let all = pool_refills(&c, &Entitlements::new(vec![monthly.clone()]), now);
        assert_eq!(all.into_iter().collect::<Vec<_>>(), vec![("ai_credits".to_string(), end)]);
        assert!(pool_refills(&c, &Entitlements::new(vec![canceled]), now).is_empty());
        // The worker's check and the snapshot's answer it as `resets_at`.
        let mut w = Wallet::new();
        lot(&mut w, "topup", "ai_credits", crate::credits::LotKind::Purchase, 500, None);
        let ents = Entitlements { balances: balances(&w, now), ..Entitlements::new(vec![monthly]) };
        let from_wallet = check_pool(&c, &ents, &w, "ai_credits", 1, now).unwrap();
        assert_eq!(from_wallet.resets_at, Some(end));
        assert_eq!(check_feature(&c, &ents, "ai_credits", 1, 0, now).unwrap(), from_wallet);
        assert_eq!(check_feature(&c, &once, "ai_credits", 1, 0, now).unwrap().resets_at, None);
    }

    #[test]
    fn remaining_reads_as_a_number_or_unlimited() {
        assert_eq!(serde_json::to_string(&Remaining::Count(2)).unwrap(), "2");
        assert_eq!(serde_json::to_string(&Remaining::Unlimited).unwrap(), "\"unlimited\"");
    }
}
