//! Usage pricing (the Video Studio app): seconds x model tier x quality tier ->
//! money, and the charge plan that decides how a request is paid for.
//!
//! # Rounding rule
//! A quote is `seconds x base_price_per_second x multiplier`, computed exactly
//! (integer arithmetic on the catalog's decimal strings, never floats),
//! converted to the currency's minor units and **rounded up once, on the
//! total** ([`crate::money::ceil_minor`]). Per-second prices are never rounded
//! on their own: 30 s at 0.015 x 1.2 costs 0.54 USD exactly (54 cents), and
//! 1 s costs 0.018 USD, rounded up to 2 cents.
//!
//! Overage is priced the same way on the overage seconds alone, with the
//! catalog's `overage_multiplier` as one more factor:
//! `ceil(overage_seconds x base x multiplier x overage_multiplier)`.
//!
//! [`quote`] is the one function behind both the browser's price display and
//! the server's enforcement ([`plan_usage`] calls it), so the two cannot
//! disagree.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::catalog::{Catalog, UsagePricing, UsageRate};
use crate::credits::{plan_charge, ChargeOutcome, OveragePolicy, Pricer, Wallet};
use crate::money::{ceil_minor, Decimal, Money};
use crate::time::Timestamp;

/// A malformed usage question (not a denial: denials are values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsageError {
    /// The catalog has no `[usage]` section.
    NoUsagePricing,
    UnknownRate {
        model: String,
        quality: String,
        known: Vec<String>,
    },
    OutOfRange {
        seconds: u64,
        min: u64,
        max: u64,
    },
    Overflow,
    /// A charge of credits names a pool the catalog does not have.
    UnknownPool(String),
    /// A charge of credits of 0, or of more than one charge may take.
    BadUnits { units: u64, max: u64 },
}

codes! {
    /// The stable code of a [`UsageError`].
    pub enum UsageErrorCode {
        NoUsagePricing = "no_usage_pricing",
        UnknownRate = "unknown_rate",
        OutOfRange = "out_of_range",
        Overflow = "overflow",
        UnknownPool = "unknown_pool",
        InvalidQuantity = "invalid_quantity",
    }
}

impl UsageError {
    pub fn kind(&self) -> UsageErrorCode {
        match self {
            UsageError::NoUsagePricing => UsageErrorCode::NoUsagePricing,
            UsageError::UnknownRate { .. } => UsageErrorCode::UnknownRate,
            UsageError::OutOfRange { .. } => UsageErrorCode::OutOfRange,
            UsageError::Overflow => UsageErrorCode::Overflow,
            UsageError::UnknownPool(_) => UsageErrorCode::UnknownPool,
            UsageError::BadUnits { .. } => UsageErrorCode::InvalidQuantity,
        }
    }
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NoUsagePricing => write!(f, "the catalog has no usage pricing (no [usage] section)"),
            UsageError::UnknownRate { model, quality, known } => write!(
                f,
                "no price for model `{model}` at quality `{quality}`; priced combinations: {}",
                known.join(", ")
            ),
            UsageError::OutOfRange { seconds, min, max } => {
                write!(f, "{seconds} seconds is outside the allowed range {min}..={max}")
            }
            UsageError::Overflow => write!(f, "the amount is too large to represent"),
            UsageError::UnknownPool(p) => write!(f, "the catalog has no credit pool `{p}`"),
            UsageError::BadUnits { units, max } => write!(f, "a charge takes 1 to {max} credits, not {units}"),
        }
    }
}
impl std::error::Error for UsageError {}

/// The price of a request.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub model: String,
    pub quality: String,
    pub seconds: u64,
    pub base_price_per_second: Decimal,
    pub multiplier: Decimal,
    /// `ceil(seconds x base x multiplier)` in minor units.
    pub cost: Money,
    /// What the same seconds would cost as overage (`x overage_multiplier`).
    pub overage_cost: Money,
    pub overage_multiplier: Decimal,
    /// The credit pool the request draws on.
    pub pool: String,
}

fn pricing(catalog: &Catalog) -> Result<&UsagePricing, UsageError> {
    catalog.doc.usage.as_ref().ok_or(UsageError::NoUsagePricing)
}

fn rate<'a>(u: &'a UsagePricing, model: &str, quality: &str) -> Result<&'a UsageRate, UsageError> {
    u.rates.iter().find(|r| r.model == model && r.quality == quality).ok_or_else(|| UsageError::UnknownRate {
        model: model.into(),
        quality: quality.into(),
        known: u.rates.iter().map(|r| format!("{} x {}", r.model, r.quality)).collect(),
    })
}

/// Prices `seconds` of `model` at `quality`. The one pricing function: the
/// browser's quote and the enforcement both call it.
pub fn quote(catalog: &Catalog, model: &str, quality: &str, seconds: u64) -> Result<Quote, UsageError> {
    let u = pricing(catalog)?;
    if seconds < u.min_units || seconds > u.max_units {
        return Err(UsageError::OutOfRange { seconds, min: u.min_units, max: u.max_units });
    }
    let r = rate(u, model, quality)?;
    let cost =
        ceil_minor(seconds, &[r.base_price_per_second, r.multiplier], &u.currency).map_err(|_| UsageError::Overflow)?;
    let overage = ceil_minor(seconds, &[r.base_price_per_second, r.multiplier, u.overage_multiplier], &u.currency)
        .map_err(|_| UsageError::Overflow)?;
    Ok(Quote {
        model: model.into(),
        quality: quality.into(),
        seconds,
        base_price_per_second: r.base_price_per_second,
        multiplier: r.multiplier,
        cost: Money { amount: cost, currency: u.currency.clone() },
        overage_cost: Money { amount: overage, currency: u.currency.clone() },
        overage_multiplier: u.overage_multiplier,
        pool: u.pool.clone(),
    })
}

/// The overage price of `units` seconds (0 for none), rounded up once.
pub fn overage_cost(catalog: &Catalog, model: &str, quality: &str, units: u64) -> Result<i64, UsageError> {
    if units == 0 {
        return Ok(0);
    }
    let u = pricing(catalog)?;
    let r = rate(u, model, quality)?;
    ceil_minor(units, &[r.base_price_per_second, r.multiplier, u.overage_multiplier], &u.currency)
        .map_err(|_| UsageError::Overflow)
}

/// A request to consume usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRequest {
    /// Unique id of the request: the ledger key, so a retry cannot charge twice.
    pub request_id: String,
    pub model: String,
    pub quality: String,
    pub seconds: u64,
}

struct RatePricer<'a> {
    u: &'a UsagePricing,
    r: &'a UsageRate,
}

impl Pricer for RatePricer<'_> {
    fn cost(&self, units: i64) -> i64 {
        ceil_minor(units.max(0) as u64, &[self.r.base_price_per_second, self.r.multiplier], &self.u.currency)
            .unwrap_or(i64::MAX)
    }
    fn overage_cost(&self, units: i64) -> i64 {
        ceil_minor(
            units.max(0) as u64,
            &[self.r.base_price_per_second, self.r.multiplier, self.u.overage_multiplier],
            &self.u.currency,
        )
        .unwrap_or(i64::MAX)
    }
    fn currency(&self) -> &str {
        &self.u.currency
    }
    fn default_limit(&self) -> i64 {
        self.u.default_overage_limit
    }
}

/// Plans a usage request against a subject's wallet at `now`: allowance first,
/// then purchased seconds, then overage if the policy allows it and it stays
/// under the cap; otherwise a [`crate::credits::ChargeDenial`] value.
/// Changes nothing: the caller records the usage as a fact once it is done.
pub fn plan_usage(
    catalog: &Catalog,
    wallet: &Wallet,
    req: &UsageRequest,
    policy: &OveragePolicy,
    now: Timestamp,
) -> Result<ChargeOutcome, UsageError> {
    // The same pricing function as the browser's quote; validates the request.
    quote(catalog, &req.model, &req.quality, req.seconds)?;
    let u = pricing(catalog)?;
    let r = rate(u, &req.model, &req.quality)?;
    let units = i64::try_from(req.seconds).map_err(|_| UsageError::Overflow)?;
    Ok(plan_charge(wallet, &u.pool, units, now, &RatePricer { u, r }, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAT: &str = r#"
[catalog]
id = "t"
name = "t"
version = "1"
currency = "usd"
[[products]]
id = "video"
tiers = ["pro"]
[[credit_pools]]
id = "video_seconds"
unit = "second"
rollover = "capped"
[[offers]]
key = "TOKENS"
label = "Tokens"
price = { amount = 1900, currency = "usd", interval = "one_time" }
credits = [{ pool = "video_seconds", amount = 1800, per = "once" }]
[usage]
pool = "video_seconds"
currency = "usd"
overage_multiplier = "1.5"
default_overage_limit = 10000
rates = [
  { model = "standard", quality = "standard", base_price_per_second = "0.015", multiplier = "1.2" },
  { model = "ultra", quality = "studio", base_price_per_second = "0.15", multiplier = "2.5" },
]
"#;

    #[test]
    fn quote_rounds_up_once_on_the_total() {
        let c = Catalog::parse(CAT).unwrap();
        let q = quote(&c, "standard", "standard", 30).unwrap();
        assert_eq!(q.cost.amount, 54); // 0.54 exactly
        assert_eq!(q.overage_cost.amount, 81); // 0.81 exactly
        assert_eq!(quote(&c, "standard", "standard", 1).unwrap().cost.amount, 2); // 0.018 -> 2 cents
                                                                                  // Not per second: 7 s = 0.126 -> 13 cents, where rounding each second would give 14.
        assert_eq!(quote(&c, "standard", "standard", 7).unwrap().cost.amount, 13);
        assert_eq!(quote(&c, "ultra", "studio", 60).unwrap().cost.amount, 2250);
    }

    #[test]
    fn malformed_questions_are_errors() {
        let c = Catalog::parse(CAT).unwrap();
        let e = quote(&c, "ultra", "watermark", 10).unwrap_err();
        assert!(e.to_string().contains("ultra x studio"), "{e}");
        assert_eq!(quote(&c, "standard", "standard", 0).unwrap_err().code(), "out_of_range");
    }
}

/// The subscriptions paused at `now` among `grants`' ([`crate::decide::GrantStanding::Paused`]),
/// by the id their grants name as `source_ref`, which is the one a lot of theirs names as
/// [`crate::credits::Lot::subscription`]. (A grace period never decides a pause: a
/// past-due grant is never paused, so the standing is read with none.)
pub fn paused_subscriptions(grants: &[crate::model::Grant], now: Timestamp) -> std::collections::BTreeSet<&str> {
    grants
        .iter()
        .filter(|g| crate::decide::standing(g, 0, now) == crate::decide::GrantStanding::Paused)
        .filter_map(|g| g.source_ref.as_deref())
        .collect()
}

/// The lots of `wallet` the subject may spend at `now`: all but those a subscription gave
/// that is paused at `now` ([`paused_subscriptions`]: its period's allowance, the rollover
/// carried into it, the credits it gave once). A paused subscription gives nothing from the
/// pause on, its credits included; they are not taken away (the lots stay as they are, and
/// count again once it resumes), only not spent meanwhile. What the subject bought apart
/// from it (top-ups, token packs), free and admin credits stay spendable. Borrowed as it
/// is when nothing is paused.
pub fn drawable<'w>(wallet: &'w Wallet, grants: &[crate::model::Grant], now: Timestamp) -> std::borrow::Cow<'w, Wallet> {
    let paused = paused_subscriptions(grants, now);
    let frozen = |l: &crate::credits::Lot| l.subscription.as_deref().is_some_and(|s| paused.contains(s));
    if !wallet.lots.iter().any(frozen) {
        return std::borrow::Cow::Borrowed(wallet);
    }
    let mut spendable = Wallet::new();
    spendable.lots = wallet.lots.iter().filter(|l| !frozen(l)).cloned().collect();
    std::borrow::Cow::Owned(spendable)
}

/// What the subject may spend at `now` ([`drawable`]) of every pool it holds lots in:
/// the balances a snapshot carries, from which [`crate::meter::check_feature`] decides
/// as [`crate::meter::check_pool`] does from the lots.
pub fn balances(wallet: &Wallet, grants: &[crate::model::Grant], now: Timestamp) -> std::collections::BTreeMap<String, i64> {
    let spendable = drawable(wallet, grants, now);
    let pools: std::collections::BTreeSet<&str> = wallet.lots.iter().map(|l| l.pool.as_str()).collect();
    pools
        .into_iter()
        .map(|p| {
            let (a, b) = spendable.available(p, now);
            (p.to_string(), a.saturating_add(b))
        })
        .collect()
}

/// Is a subscription of the subject's own (not one a seat lends) paused at `now` whose
/// offer puts credits into `pool`? Then a use the spendable credits do not cover is
/// refused `paused` (resumed, the subscription's credits would be spendable again), and
/// never billed as overage meanwhile: overage is what a plan's credits do not cover, and
/// the plan's are only set aside.
pub fn paused_pool(catalog: &Catalog, ents: &crate::model::Entitlements, pool: &str, now: Timestamp) -> bool {
    ents.grants.iter().any(|g| {
        !g.lent_by_seat()
            && crate::decide::standing(g, 0, now) == crate::decide::GrantStanding::Paused
            && g.offer.as_deref().and_then(|k| catalog.offer(k)).is_some_and(|o| o.credits.iter().any(|c| c.pool == pool))
    })
}

/// May a subject draw on a credit pool at all? Yes with any currently valid
/// grant of any product of its own (a plan; not one a seat lends, which gives access
/// and capabilities only: a member's pool is its own), or when credits were ever put
/// into the pool (the Video Studio app: token purchases need no plan). A `false` is
/// the 403 "not entitled" of usage enforcement; being short on credits is a charge
/// denial.
pub fn may_draw(catalog: &Catalog, ents: &crate::model::Entitlements, wallet: &Wallet, pool: &str, now: Timestamp) -> bool {
    may_draw_holding(catalog, ents, wallet.lots.iter().any(|l| l.pool == pool), now)
}

/// [`may_draw`] for a caller that knows only whether the subject holds any lot in the
/// pool (`holds_lots`), such as the browser reading a snapshot's `balances`, which name
/// exactly the pools the subject holds lots in.
pub fn may_draw_holding(catalog: &Catalog, ents: &crate::model::Entitlements, holds_lots: bool, now: Timestamp) -> bool {
    holds_lots || has_plan(catalog, ents, now)
}

/// Does any grant of the subject's own, of any product, count at `now`? A default tier
/// is not a plan: it is held without paying; nor is a grant a seat lends
/// ([`crate::Grant::lent_by_seat`], left out as for limits:
/// [`crate::decide::effective_for_limit`]).
fn has_plan(catalog: &Catalog, ents: &crate::model::Entitlements, now: Timestamp) -> bool {
    (0..catalog.products().len()).any(|pi| crate::decide::effective_for_limit(catalog, ents, pi, now).grant.is_some())
}

/// The offer a refusal to draw on `pool` names (a charge's refusal, a pool check's
/// `upgrade`): the cheapest visible offer that puts at least `short` credits into the pool
/// (the units asked for beyond what is available: bought, the same request is allowed)
/// and that the subject can buy. When no single offer puts that many in, the one that puts
/// the most (the cheapest of those): it leaves the least to find. A subscription the
/// subject holds already ([`crate::decide::holds_offer`]: a plan whose allowance it used
/// up, or one it paused) is not one, nor another plan of a product it subscribes to, a
/// paused subscription included ([`crate::checkout::second_plan_of`]): checkout refuses
/// both (already subscribed). A one-time offer is, held or
/// not: each purchase puts its credits in again. A subscription counts with the credits
/// of one period, what its first payment puts in.
pub fn credit_offer<'c>(
    catalog: &'c Catalog,
    ents: &crate::model::Entitlements,
    pool: &str,
    short: u64,
    now: Timestamp,
) -> Option<&'c crate::catalog::Offer> {
    let gives = |o: &crate::catalog::Offer| -> u64 {
        o.credits.iter().filter(|c| c.pool == pool).map(|c| u64::try_from(c.amount).unwrap_or(0)).fold(0, u64::saturating_add)
    };
    let grace = catalog.meta().grace_period_days;
    // A product a subscription of the subject's own (not one a seat lends) may still run
    // for, as checkout sees it: one that counts (a canceled one until its access ends: a
    // grant does not tell a cancellation at the period's end, which checkout sells beside,
    // from one on a date, which it does not, so both are left out and the refusal names a
    // top-up), is past due or is paused (its grants end at the pause, but the subscription
    // is resumed, never bought again: `crate::decide::running`).
    let subscribed = |p: &crate::catalog::Product| {
        ents.grants.iter().any(|g| {
            g.product == p.id
                && !g.lent_by_seat()
                && crate::decide::running(g, grace, now)
                && g.offer.as_deref().and_then(|k| catalog.offer(k)).is_some_and(|o| o.price.interval != crate::catalog::Interval::OneTime)
        })
    };
    let buyable = catalog
        .offers()
        .iter()
        .filter(|o| !o.hidden && o.credits.iter().any(|c| c.pool == pool))
        .filter(|o| o.price.interval == crate::catalog::Interval::OneTime || !crate::decide::holds_offer(catalog, ents, &o.key, now))
        .filter(|o| crate::checkout::second_plan_of(catalog, o, subscribed).is_none());
    buyable
        .clone()
        .filter(|o| gives(o) >= short)
        .min_by(|a, b| catalog.cheaper(a, b))
        .or_else(|| buyable.max_by(|a, b| gives(a).cmp(&gives(b)).then_with(|| catalog.cheaper(b, a))))
}

#[cfg(test)]
mod entitlement_tests {
    use super::*;

    fn studio() -> Catalog {
        Catalog::parse(include_str!("../catalogs/video-studio.toml")).expect("catalog")
    }

    #[test]
    fn no_plan_and_no_credits_may_not_draw_and_the_cheapest_credit_offer_is_named() {
        let c = studio();
        let ents = crate::model::Entitlements::default();
        assert!(!may_draw(&c, &ents, &Wallet::default(), "video_seconds", Timestamp(0)));
        // The cheapest offer that puts seconds into the pool: the 30-minute bundle at $19.
        assert_eq!(credit_offer(&c, &ents, "video_seconds", 30, Timestamp(0)).map(|o| o.price.amount), Some(1900));
    }
}
