//! The catalog: the single source of truth for products, tiers, offers,
//! capabilities, limits, credit pools, usage pricing and tools.
//!
//! People write TOML (`catalogs/*.toml`); JSON of the same shape is accepted
//! too (the wasm package takes JSON). Loading validates every cross-reference
//! and reports errors that name the field path and, for TOML, the line.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use crate::money::{Decimal, Money};

/// Where a validation error is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CatalogError {
    /// Field path, e.g. `offers[2].grants[0].tier`.
    pub path: String,
    pub message: String,
    /// 1-based line in the TOML source, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "catalog error at {} (line {}): {}", self.path, l, self.message),
            None if self.path.is_empty() => write!(f, "catalog error: {}", self.message),
            None => write!(f, "catalog error at {}: {}", self.path, self.message),
        }
    }
}
impl std::error::Error for CatalogError {}

/// Billing interval of an offer's price.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
    OneTime,
}

impl Interval {
    /// How many months one period of a recurring interval lasts (none for a one-time price).
    pub fn months(self) -> Option<u32> {
        match self {
            Interval::Month => Some(1),
            Interval::Year => Some(12),
            Interval::OneTime => None,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Integer minor units (cents, paise).
    pub amount: i64,
    /// ISO 4217, lower case (`usd`, `inr`, `cad`).
    pub currency: String,
    pub interval: Interval,
}

/// Does `gives` (an offer's (product, tier index) pairs, [`Catalog::offer_gives`]) hold every
/// product of `held` at its tier or above? False when nothing is held.
pub fn covers(gives: &[(String, usize)], held: &[(String, usize)]) -> bool {
    !held.is_empty() && held.iter().all(|(p, t)| gives.iter().any(|(q, u)| q == p && u >= t))
}

impl Price {
    pub fn money(&self) -> Money {
        Money { amount: self.amount, currency: self.currency.clone() }
    }
    /// The price per month, rounded up, used to rank offers: a yearly price
    /// counts as a twelfth, a one-time price counts whole.
    pub fn monthly_equivalent(&self) -> i64 {
        match self.interval {
            Interval::Month | Interval::OneTime => self.amount,
            Interval::Year => self.amount.saturating_add(11) / 12,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Ordered from lowest to highest.
    pub tiers: Vec<String>,
    /// A tier every subject holds without any grant (often `free`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_tier: Option<String>,
}

/// What one entry of an offer's `grants` gives.
///
/// Exactly one of `product`, `all_products` or `choose` is set:
/// - `{ product = "video", tier = "pro" }`
/// - `{ all_products = true, tier = "pro" }` (every product whose tiers include `tier`)
/// - `{ choose = 2, from = [...], tier = "pro" }` (a bundle of N products picked at checkout)
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_products: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choose: Option<u32>,
    /// Products a bundle may be chosen from (default: every product that has `tier`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    pub tier: String,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditCadence {
    /// Granted again at every paid period (subscription allowance).
    Period,
    /// Granted once per payment (token bundles, top-ups).
    Once,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditGrant {
    pub pool: String,
    pub amount: i64,
    pub per: CreditCadence,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    #[default]
    User,
    Organization,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatSpec {
    /// Seats included with one unit of the offer.
    #[serde(default = "one")]
    pub included: u32,
    /// Seat count follows the subscription quantity (`included * quantity`).
    #[serde(default = "yes")]
    pub per_quantity: bool,
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// The offer key carried in checkout metadata (`offer_key`).
    pub key: String,
    pub label: String,
    pub price: Price,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stripe_price_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub razorpay_plan_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantSpec>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trial_days: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credits: Vec<CreditGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<SeatSpec>,
    #[serde(default)]
    pub subject: SubjectKind,
    /// Hidden offers (legacy, promotions) never show as an upgrade.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// The provider that sells this offer, when not the catalog's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// What a new version of the catalog does to those who bought this offer under an older
    /// one (see [`crate::grandfather`]): `keep` (the default), `at_renewal` or `now`.
    #[serde(default, skip_serializing_if = "Migration::is_keep")]
    pub migration: Migration,
}
fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Offer {
    /// Whether its price is per unit of quantity, a seat's: its seats follow the quantity
    /// (`per_quantity`), or it is an organization's offer without a `seats` entry (one seat a
    /// unit, [`crate::seats`]).
    pub fn priced_per_seat(&self) -> bool {
        self.seats.as_ref().is_some_and(|s| s.per_quantity) || (self.subject == SubjectKind::Organization && self.seats.is_none())
    }
}

/// The terms a grant sold under an older catalog version is held under once a newer version
/// is active, as the newer version's offer says (see [`crate::grandfather`]). Prices for new
/// purchases always come from the active version; this is about capabilities and limits.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Migration {
    /// The terms it is on (those it was sold under, or those a renewal under an earlier
    /// version that migrates moved it to), until the grant ends (renewals included). The
    /// default: a new version never takes from an existing subscriber what they paid for.
    #[default]
    Keep,
    /// The terms it is on until the grant's next renewal under this version, this
    /// version's terms from then on.
    AtRenewal,
    /// The active version's terms at once.
    Now,
}

impl Migration {
    pub fn is_keep(&self) -> bool {
        *self == Migration::Keep
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Migration::Keep => "keep",
            Migration::AtRenewal => "at_renewal",
            Migration::Now => "now",
        }
    }
}

/// A boolean capability, held at some tiers of one product.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    pub id: String,
    #[serde(default)]
    pub label: String,
    pub product: String,
    /// Held at this tier and every higher one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tier: Option<String>,
    /// Held at exactly these tiers (for inverse flags such as "watermark exports").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<String>>,
    /// Held by a subject with no tier of the product at all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub without_entitlement: bool,
}

/// A limit value: a number, or explicitly unlimited. There is no "missing means unlimited".
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "number | \"unlimited\""))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitValue {
    Limited(u64),
    Unlimited,
}

/// As written: a whole number or `"unlimited"` (the derive would describe the enum's tags).
#[cfg(feature = "schema")]
impl schemars::JsonSchema for LimitValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LimitValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A whole number, or \"unlimited\" (there is no \"missing means unlimited\").",
            "anyOf": [{ "type": "integer", "minimum": 0 }, { "const": "unlimited" }]
        })
    }
}

impl Serialize for LimitValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LimitValue::Limited(n) => s.serialize_u64(*n),
            LimitValue::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for LimitValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LimitValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or the string \"unlimited\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LimitValue, E> {
                Ok(LimitValue::Limited(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LimitValue, E> {
                u64::try_from(v)
                    .map(LimitValue::Limited)
                    .map_err(|_| E::custom("a limit cannot be negative; write \"unlimited\" for no limit"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LimitValue, E> {
                if v == "unlimited" {
                    Ok(LimitValue::Unlimited)
                } else {
                    Err(E::custom(format!("`{v}` is not a limit; use an integer or \"unlimited\"")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LimitPeriod {
    #[default]
    None,
    Day,
    Month,
    /// The subscription's billing period (a month on a monthly plan, a year on a yearly one).
    BillingPeriod,
}

/// Where a limit's windows start: on the UTC calendar (midnight, the first of the month),
/// or on the subscription that gives the tier (a monthly allowance on a yearly plan renews
/// on the day the subscription started).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LimitAnchor {
    #[default]
    Calendar,
    Subscription,
}

impl LimitAnchor {
    pub fn is_calendar(&self) -> bool {
        *self == LimitAnchor::Calendar
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The limit's name: no `:` (it separates a limit from its scope in a counter's name),
    /// and not `overage` (the overage cap's counter is `overage:<currency>`).
    pub id: String,
    #[serde(default)]
    pub label: String,
    pub product: String,
    #[serde(default)]
    pub period: LimitPeriod,
    /// `subscription`: monthly windows from the day the subscription started (with
    /// `period = "month"`); `billing_period` is always anchored so.
    #[serde(default, skip_serializing_if = "LimitAnchor::is_calendar")]
    pub anchor: LimitAnchor,
    /// One value per tier of the product: every tier must be listed, once.
    #[serde(deserialize_with = "tier_values")]
    pub values: BTreeMap<String, LimitValue>,
    /// Value for a subject with no tier of the product (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_entitlement: Option<LimitValue>,
}

/// A limit's values by tier, a tier named twice refused (JSON keeps the last of a repeated
/// key; TOML refuses one itself).
fn tier_values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, LimitValue>, D::Error> {
    unique_keys(d)
}

/// A map whose every key is written once: a key written twice is refused (JSON readers
/// disagree on which of the two counts).
pub(crate) fn unique_keys<'de, D: serde::Deserializer<'de>, V: Deserialize<'de>>(d: D) -> Result<BTreeMap<String, V>, D::Error> {
    struct Unique<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map whose keys are each written once")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = m.next_entry::<String, V>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!("`{k}` is given twice")));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Unique(std::marker::PhantomData))
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rollover {
    /// Unused allowance is lost at renewal.
    #[default]
    None,
    /// Unused allowance carries over, capped at one period's allowance:
    /// `rollover = min(max(0, allowance + rollover - used), allowance)`.
    Capped,
    /// The balance is set back to the allowance on renewal (the Razorpay AI app's AI credits).
    Reset,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditPool {
    pub id: String,
    #[serde(default)]
    pub label: String,
    /// What one credit is (`second`, `credit`, `draft`).
    pub unit: String,
    #[serde(default)]
    pub rollover: Rollover,
    /// Credits a subject without any grant starts with, once (the Razorpay AI app's free drafts).
    #[serde(default)]
    pub free_amount: i64,
}

/// One row of the usage price table: model tier x quality tier.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRate {
    pub model: String,
    pub quality: String,
    /// Major currency units per second as an exact decimal string, e.g. `"0.015"`.
    pub base_price_per_second: Decimal,
    /// Exact decimal string, e.g. `"1.2"`.
    pub multiplier: Decimal,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePricing {
    /// The credit pool that usage draws its allowance from.
    pub pool: String,
    pub currency: String,
    /// Overage price = rate x multiplier x this (e.g. `"1.5"`).
    pub overage_multiplier: Decimal,
    /// Default cap on overage spend per request, in minor units (the Video Studio app: 100 USD).
    #[serde(default)]
    pub default_overage_limit: i64,
    /// Minimum and maximum seconds per request.
    #[serde(default = "one_u64")]
    pub min_units: u64,
    #[serde(default = "max_units")]
    pub max_units: u64,
    pub rates: Vec<UsageRate>,
}
fn one_u64() -> u64 {
    1
}
fn max_units() -> u64 {
    86_400
}

/// What a tool needs to be unlocked.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// A limit that must be above the tool's current usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub page: String,
    #[serde(default)]
    pub description: String,
    pub requires: Requirement,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogMeta {
    pub id: String,
    pub name: String,
    pub version: String,
    /// Default currency (ISO 4217, lower case).
    pub currency: String,
    /// Days a `past_due` grant keeps access after payment first failed.
    #[serde(default)]
    pub grace_period_days: u32,
    /// The product the VCM Suite app's plan-level helpers resolve (e.g. `suite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_product: Option<String>,
    /// Minutes a hold on credits lasts before the scheduled run releases it (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_minutes: Option<u32>,
    /// Who takes the money for the offers (an offer may name another): `stripe` (default)
    /// or `razorpay`.
    #[serde(default, skip_serializing_if = "Provider::is_stripe")]
    pub provider: Provider,
    /// Offers without `stripe_price_ids` are sold at the Stripe price whose `lookup_key` is
    /// the offer key (`tollgate stripe fixtures` publishes them so), found at checkout;
    /// without one, from the catalog's amount (`price_data`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stripe_lookup_keys: bool,
    /// Checkout accepts the provider's promotion codes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_promotion_codes: bool,
    /// How an upgrade is charged for the rest of the paid period (Stripe's
    /// `proration_behavior`): `always_invoice` (default: the difference is paid now),
    /// `create_prorations` (on the next invoice) or `none`.
    #[serde(default, skip_serializing_if = "Proration::is_default")]
    pub proration: Proration,
}

/// A payment provider.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    #[default]
    Stripe,
    Razorpay,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Razorpay => "razorpay",
        }
    }
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "stripe" => Some(Provider::Stripe),
            "razorpay" => Some(Provider::Razorpay),
            _ => None,
        }
    }
    fn is_stripe(&self) -> bool {
        *self == Provider::Stripe
    }
}

/// How a plan upgrade is charged for the rest of the paid period.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Proration {
    #[default]
    AlwaysInvoice,
    CreateProrations,
    None,
}

impl Proration {
    pub fn as_str(self) -> &'static str {
        match self {
            Proration::AlwaysInvoice => "always_invoice",
            Proration::CreateProrations => "create_prorations",
            Proration::None => "none",
        }
    }
    fn is_default(&self) -> bool {
        *self == Proration::AlwaysInvoice
    }
}

/// The catalog as written in a file.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDoc {
    pub catalog: CatalogMeta,
    pub products: Vec<Product>,
    #[serde(default)]
    pub offers: Vec<Offer>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub limits: Vec<Limit>,
    #[serde(default)]
    pub credit_pools: Vec<CreditPool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsagePricing>,
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// When to tell the app (see [`crate::alerts`]): thresholds of limits and credit pools,
    /// and subscription events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRule>,
}

/// One alert rule of a catalog: a limit's or credit pool's thresholds (`feature` with
/// `percent_used` and / or `units_left`), or a subscription event (`event`, with `days`
/// before it for `trial_ending` and `grace_ending`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Crossed when the window's use reaches this share of the limit (1 to 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percent_used: Vec<u32>,
    /// Crossed when fewer than this many units are left (a pool's balance, a limit's rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units_left: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<SubscriptionEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

/// The subscription events an app may be told about.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionEvent {
    /// A trial ends within `days`.
    TrialEnding,
    /// A payment failed and is still due.
    PaymentFailed,
    /// The grace of a failed payment ends within `days`.
    GraceEnding,
    /// The grace of a failed payment is over, still unpaid.
    GraceEnded,
    /// The subscription is canceled and ends at its period end.
    SubscriptionCanceled,
}

impl SubscriptionEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionEvent::TrialEnding => "trial_ending",
            SubscriptionEvent::PaymentFailed => "payment_failed",
            SubscriptionEvent::GraceEnding => "grace_ending",
            SubscriptionEvent::GraceEnded => "grace_ended",
            SubscriptionEvent::SubscriptionCanceled => "subscription_canceled",
        }
    }
}

/// Names sorted with their positions, looked up by binary search: smaller in
/// the wasm than a map (no tree code), as fast for catalogs of this size.
type NameIndex = Vec<(String, usize)>;

fn name_index(names: Vec<&String>) -> NameIndex {
    let mut ix: NameIndex = names.into_iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
    sort_small(&mut ix, |a, b| a.0 < b.0);
    ix
}

/// A stable insertion sort for the short lists a catalog has (tens of
/// entries): a fraction of the library sorts' size in the wasm.
fn sort_small<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn find(ix: &NameIndex, name: &str) -> Option<usize> {
    ix.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|k| ix[k].1)
}

/// A tool's requirements as indices, resolved when the catalog loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolRequirement {
    /// Product index and the tier index required of it.
    pub tier: Option<(usize, usize)>,
    pub capability: Option<usize>,
    pub limit: Option<usize>,
}

/// A validated catalog with lookup indices. Cheap to query, immutable.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub doc: CatalogDoc,
    /// The store's version number of this document (`tollgate catalog push`), when it came
    /// from the store; `None` for a file or an embedded catalog. Not part of the document:
    /// the parsers stamp it on the facts they make, so a grant records the version it was
    /// sold under (see [`crate::grandfather`]).
    pub version: Option<u32>,
    product_ix: NameIndex,
    capability_ix: NameIndex,
    limit_ix: NameIndex,
    offer_ix: NameIndex,
    pool_ix: NameIndex,
    tool_ix: NameIndex,
    price_ix: NameIndex,
    /// For each product and tier index: the offers that give at least that tier, cheapest first.
    upgrade_ix: Vec<Vec<Vec<usize>>>,
    /// For each capability and current tier of its product (slot 0: no tier,
    /// slot `t + 1`: tier `t`): the cheapest visible offer that gives a higher
    /// tier at which the capability holds.
    capability_upgrade_ix: Vec<Vec<Option<usize>>>,
    /// For each limit and current tier (slots as above): the visible offers that
    /// give a higher tier, cheapest first, each with the limit's value at the tier
    /// it gives, keeping only those whose value is above every cheaper one's: the
    /// first whose value is above the usage is the cheapest that allows it.
    limit_upgrade_ix: Vec<Vec<Vec<(usize, LimitValue)>>>,
    /// For each product: the visible offers that give it a tier, with that tier,
    /// cheapest first (the ranking the three indices above are cut from).
    ranked_ix: Vec<Vec<(usize, usize)>>,
    /// Per offer and product: [`Catalog::offer_tiers_on`], and per offer how many
    /// products a bundle's buyer chooses.
    offer_tiers_ix: Vec<Vec<(Option<usize>, Option<usize>)>>,
    offer_choices_ix: Vec<u32>,
    /// Per offer: the upgrade a denial shows, formatted once.
    offer_upgrades: Vec<Upgrade>,
    /// The product index of each capability, and of each limit.
    capability_product_ix: Vec<usize>,
    limit_product_ix: Vec<usize>,
    /// Per capability and tier of its product (slot 0: no tier, slot `t + 1`: tier `t`):
    /// [`Catalog::capability_holds`]; per limit, the same slots: [`Catalog::limit_value`].
    capability_holds_ix: Vec<Vec<bool>>,
    limit_value_ix: Vec<Vec<LimitValue>>,
    /// Per tool: its requirements as indices.
    tool_requirements: Vec<ToolRequirement>,
}

impl Catalog {
    /// Parses JSON and validates.
    pub fn from_json(src: &str) -> Result<Catalog, CatalogError> {
        // A byte order mark, as some editors save UTF-8, is no part of the document.
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        let doc: CatalogDoc = serde_json::from_str(src).map_err(|e| CatalogError {
            // A type error (a float for an amount, a misspelt field) names its field, as
            // TOML's do; a syntax error has none. (serde_json tells a value that is not text
            // where a name is expected, `"interval": 12`, as a syntax error: the text is
            // well-formed JSON then, and the error is the field's.)
            path: if e.is_data() || (e.is_syntax() && serde_json::from_str::<serde::de::IgnoredAny>(src).is_ok()) {
                // A missing field is told at its object's end: the object is the place.
                json_path_at(src, e.line(), e.column(), e.to_string().starts_with("missing field"))
            } else {
                String::new()
            },
            message: format!("invalid JSON catalog: {e}"),
            line: Some(e.line()),
        })?;
        Catalog::from_doc(doc)
    }

    /// Parses TOML and validates; errors carry the TOML line.
    #[cfg(feature = "toml")]
    pub fn from_toml(src: &str) -> Result<Catalog, CatalogError> {
        let doc: CatalogDoc = toml::from_str(src).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(src, s.start));
            // A type error (a float for a decimal, a misspelt field) names its field;
            // a syntax error has no field.
            let path = e.span().and_then(|s| toml_path_at(src, s.start)).unwrap_or_default();
            CatalogError { path, message: e.message().to_string(), line }
        })?;
        Catalog::from_doc(doc).map_err(|mut e| {
            e.line = locate_toml_path(src, &e.path);
            e
        })
    }

    /// Picks TOML or JSON by the first non-blank character.
    pub fn parse(src: &str) -> Result<Catalog, CatalogError> {
        if src.strip_prefix('\u{feff}').unwrap_or(src).trim_start().starts_with('{') {
            return Catalog::from_json(src);
        }
        #[cfg(feature = "toml")]
        {
            Catalog::from_toml(src)
        }
        #[cfg(not(feature = "toml"))]
        {
            Err(CatalogError { path: String::new(), message: "this build reads JSON catalogs only".into(), line: None })
        }
    }

    /// The same catalog as the store's version `version`.
    pub fn with_version(mut self, version: u32) -> Catalog {
        self.version = Some(version);
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.doc).expect("a catalog always serialises")
    }

    pub fn from_doc(doc: CatalogDoc) -> Result<Catalog, CatalogError> {
        crate::validate::validate(&doc)?;
        let product_ix = name_index(doc.products.iter().map(|p| &p.id).collect());
        let capability_ix = name_index(doc.capabilities.iter().map(|c| &c.id).collect());
        let limit_ix = name_index(doc.limits.iter().map(|l| &l.id).collect());
        let offer_ix = name_index(doc.offers.iter().map(|o| &o.key).collect());
        let pool_ix = name_index(doc.credit_pools.iter().map(|p| &p.id).collect());
        let tool_ix = name_index(doc.tools.iter().map(|t| &t.id).collect());
        // Validation makes price ids unique across offers, so each names one offer.
        let mut price_ix: NameIndex = Vec::new();
        for (i, o) in doc.offers.iter().enumerate() {
            for p in o.stripe_price_ids.iter().chain(&o.razorpay_plan_ids) {
                price_ix.push((p.clone(), i));
            }
        }
        sort_small(&mut price_ix, |a, b| a.0 < b.0);
        let mut cat = Catalog {
            doc,
            version: None,
            product_ix,
            capability_ix,
            limit_ix,
            offer_ix,
            pool_ix,
            tool_ix,
            price_ix,
            upgrade_ix: Vec::new(),
            capability_upgrade_ix: Vec::new(),
            limit_upgrade_ix: Vec::new(),
            ranked_ix: Vec::new(),
            offer_tiers_ix: Vec::new(),
            offer_choices_ix: Vec::new(),
            offer_upgrades: Vec::new(),
            capability_product_ix: Vec::new(),
            limit_product_ix: Vec::new(),
            capability_holds_ix: Vec::new(),
            limit_value_ix: Vec::new(),
            tool_requirements: Vec::new(),
        };
        // Every name below was checked by `validate`.
        let product_of = |id: &str| cat.product_index(id).expect("validated");
        let capability_product_ix = cat.doc.capabilities.iter().map(|c| product_of(&c.product)).collect();
        let limit_product_ix = cat.doc.limits.iter().map(|l| product_of(&l.product)).collect();
        let tool_requirements = cat
            .doc
            .tools
            .iter()
            .map(|t| {
                let r = &t.requires;
                ToolRequirement {
                    tier: r
                        .product
                        .as_deref()
                        .zip(r.tier.as_deref())
                        .map(|(p, tier)| (product_of(p), cat.tier_index(p, tier).expect("validated"))),
                    capability: r.capability.as_deref().map(|c| cat.capability_index(c).expect("validated")),
                    limit: r.limit.as_deref().map(|l| cat.limit_index(l).expect("validated")),
                }
            })
            .collect();
        cat.capability_product_ix = capability_product_ix;
        cat.limit_product_ix = limit_product_ix;
        cat.tool_requirements = tool_requirements;
        // Every tier slot of the product (slot 0: none), as the questions below ask it.
        let slots = |pi: usize| std::iter::once(None).chain((0..cat.doc.products[pi].tiers.len()).map(Some));
        let capability_holds_ix = (cat.doc.capabilities.iter().zip(&cat.capability_product_ix))
            .map(|(c, &pi)| slots(pi).map(|t| cat.capability_holds(c, t)).collect())
            .collect();
        let limit_value_ix =
            (cat.doc.limits.iter().zip(&cat.limit_product_ix)).map(|(l, &pi)| slots(pi).map(|t| cat.limit_value(l, t)).collect()).collect();
        cat.capability_holds_ix = capability_holds_ix;
        cat.limit_value_ix = limit_value_ix;
        cat.offer_upgrades = cat.doc.offers.iter().map(Upgrade::from_offer).collect();
        cat.build_upgrade_indices();
        Ok(cat)
    }

    /// Fills the three upgrade indices from one ranking per product of the
    /// visible offers with the tier each gives (cheapest first: [`Catalog::cheaper`]).
    fn build_upgrade_indices(&mut self) {
        let offers = &self.doc.offers;
        let cheaper = |a: usize, b: usize| self.cheaper(&offers[a], &offers[b]);
        let ranked: Vec<Vec<(usize, usize)>> = self
            .doc
            .products
            .iter()
            .map(|p| {
                let mut r: Vec<(usize, usize)> = offers
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| !o.hidden)
                    .filter_map(|(oi, o)| self.offer_tier_for(o, &p.id).map(|t| (oi, t)))
                    .collect();
                sort_small(&mut r, |a, b| cheaper(a.0, b.0).is_lt());
                r
            })
            .collect();
        // Slot 0: no current tier; slot c: current tier c - 1. Offers above it.
        let above = |c: usize, t: usize| c == 0 || t + 1 > c;
        let tiers_of = |product: &str| {
            let pi = self.product_index(product).expect("validated");
            (pi, self.doc.products[pi].tiers.len())
        };

        let upgrade_ix = ranked
            .iter()
            .zip(&self.doc.products)
            .map(|(r, p)| (0..p.tiers.len()).map(|t| r.iter().filter(|x| x.1 >= t).map(|x| x.0).collect()).collect())
            .collect();
        let capability_upgrade_ix = self
            .doc
            .capabilities
            .iter()
            .map(|cap| {
                let (pi, n) = tiers_of(&cap.product);
                (0..=n)
                    .map(|c| {
                        ranked[pi]
                            .iter()
                            .find(|&&(_, t)| above(c, t) && self.capability_holds(cap, Some(t)))
                            .map(|x| x.0)
                    })
                    .collect()
            })
            .collect();
        let limit_upgrade_ix = self
            .doc
            .limits
            .iter()
            .map(|lim| {
                let (pi, n) = tiers_of(&lim.product);
                (0..=n)
                    .map(|c| {
                        let mut front: Vec<(usize, LimitValue)> = Vec::new();
                        for &(o, t) in ranked[pi].iter().filter(|&&(_, t)| above(c, t)) {
                            let v = self.limit_value(lim, Some(t));
                            let beats = match (front.last().map(|x| x.1), v) {
                                (None, _) => true,
                                (Some(LimitValue::Limited(best)), LimitValue::Limited(n)) => n > best,
                                (Some(LimitValue::Limited(_)), LimitValue::Unlimited) => true,
                                (Some(LimitValue::Unlimited), _) => false,
                            };
                            if beats {
                                front.push((o, v));
                            }
                        }
                        front
                    })
                    .collect()
            })
            .collect();
        self.upgrade_ix = upgrade_ix;
        self.capability_upgrade_ix = capability_upgrade_ix;
        self.limit_upgrade_ix = limit_upgrade_ix;
        self.ranked_ix = ranked;
        self.offer_tiers_ix =
            offers.iter().map(|o| self.doc.products.iter().map(|p| self.offer_tiers_scan(o, &p.id)).collect()).collect();
        self.offer_choices_ix = offers.iter().map(|o| self.offer_choices(o)).collect();
    }

    /// [`Catalog::offer_tiers_on`] by offer and product index (precomputed).
    pub fn offer_tiers_at(&self, offer_ix: usize, product_ix: usize) -> (Option<usize>, Option<usize>) {
        self.offer_tiers_ix.get(offer_ix).and_then(|p| p.get(product_ix)).copied().unwrap_or((None, None))
    }

    /// [`Catalog::offer_choices`] by offer index (precomputed).
    pub fn offer_choices_at(&self, offer_ix: usize) -> u32 {
        self.offer_choices_ix.get(offer_ix).copied().unwrap_or(0)
    }

    /// The visible offers that give product `product_ix` a tier, with that tier,
    /// cheapest first (monthly equivalent, then offer key).
    pub fn ranked_offers(&self, product_ix: usize) -> &[(usize, usize)] {
        self.ranked_ix.get(product_ix).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The highest tier index an offer can give on a product (bundles count:
    /// the buyer may choose this product).
    pub fn offer_tier_for(&self, offer: &Offer, product: &str) -> Option<usize> {
        let (fixed, chosen) = self.offer_tiers_on(offer, product);
        fixed.max(chosen)
    }

    /// The (product, tier index) an offer gives: its fixed grants, and a bundle's choice on
    /// the products in `clouds`.
    pub fn offer_gives(&self, offer: &Offer, clouds: &[String]) -> Vec<(String, usize)> {
        let own = self.own_offer(offer);
        self.products()
            .iter()
            .enumerate()
            .filter_map(|(pi, p)| {
                let (fixed, chosen) = match own {
                    Some(o) => self.offer_tiers_at(o, pi),
                    None => self.offer_tiers_on(offer, &p.id),
                };
                let t = fixed.max(chosen.filter(|_| clouds.contains(&p.id)))?;
                Some((p.id.clone(), t))
            })
            .collect()
    }

    /// The highest tier index an offer gives on a product by its fixed grants (a
    /// product, or all products), and by a bundle's choice (the buyer may choose
    /// this product).
    pub fn offer_tiers_on(&self, offer: &Offer, product: &str) -> (Option<usize>, Option<usize>) {
        if let (Some(o), Some(pi)) = (self.own_offer(offer), self.product_index(product)) {
            return self.offer_tiers_at(o, pi);
        }
        self.offer_tiers_scan(offer, product)
    }

    /// [`Catalog::offer_tiers_on`] read from the offer's grants.
    fn offer_tiers_scan(&self, offer: &Offer, product: &str) -> (Option<usize>, Option<usize>) {
        let Some(p) = self.product(product) else { return (None, None) };
        let (mut fixed, mut chosen): (Option<usize>, Option<usize>) = (None, None);
        for g in &offer.grants {
            let slot = match (&g.product, g.all_products, g.choose) {
                (Some(gp), _, _) if gp == product => &mut fixed,
                (None, true, _) => &mut fixed,
                (None, false, Some(_)) if g.from.is_empty() || g.from.iter().any(|f| f == product) => &mut chosen,
                _ => continue,
            };
            if let Some(t) = p.tiers.iter().position(|t| *t == g.tier) {
                *slot = Some(slot.map_or(t, |b: usize| b.max(t)));
            }
        }
        (fixed, chosen)
    }

    /// A bundle's choice made whole: which of the offer's `choose` grants gives each of
    /// `products` (product indices), each grant at most its `choose` of them, each from its
    /// `from` (without one: any product with its tier), at a tier `fits` accepts
    /// (`fits(i, t)`: the `i`-th of `products` at tier index `t`). The grant indices (into
    /// `offer.grants`), in the order of `products`; None when no choice of the offer gives
    /// them all (one grant cannot give two products, nor a grant a product outside its
    /// `from`). The one rule of what a bundle's buyer may choose together.
    pub fn bundle_choice(&self, offer: &Offer, products: &[usize], fits: impl Fn(usize, usize) -> bool) -> Option<Vec<usize>> {
        // One slot per product a grant gives; products are matched to slots, moving a
        // product already placed to another slot when that frees one (augmenting paths).
        let slots: Vec<usize> = offer
            .grants
            .iter()
            .enumerate()
            .filter(|(_, g)| g.product.is_none() && !g.all_products)
            .flat_map(|(gi, g)| std::iter::repeat_n(gi, g.choose.unwrap_or(0) as usize))
            .collect();
        let tier = |i: usize, gi: usize| -> Option<usize> {
            let (g, p) = (&offer.grants[gi], self.doc.products.get(products[i])?);
            let t = p.tiers.iter().position(|t| *t == g.tier)?;
            (g.from.is_empty() || g.from.contains(&p.id)).then_some(t).filter(|&t| fits(i, t))
        };
        fn place(i: usize, slots: &[usize], owner: &mut [Option<usize>], seen: &mut [bool], tier: &dyn Fn(usize, usize) -> Option<usize>) -> bool {
            for s in 0..slots.len() {
                if seen[s] || tier(i, slots[s]).is_none() {
                    continue;
                }
                seen[s] = true;
                if owner[s].is_none_or(|j| place(j, slots, owner, seen, tier)) {
                    owner[s] = Some(i);
                    return true;
                }
            }
            false
        }
        let mut owner: Vec<Option<usize>> = vec![None; slots.len()];
        for i in 0..products.len() {
            if !place(i, &slots, &mut owner, &mut vec![false; slots.len()], &tier) {
                return None;
            }
        }
        let mut out = vec![0; products.len()];
        for (s, o) in owner.iter().enumerate() {
            if let Some(i) = o {
                out[*i] = slots[s];
            }
        }
        Some(out)
    }

    /// How many products a bundle's buyer chooses (0: not a bundle).
    pub fn offer_choices(&self, offer: &Offer) -> u32 {
        offer.grants.iter().filter(|g| g.product.is_none() && !g.all_products).filter_map(|g| g.choose).sum()
    }

    pub fn meta(&self) -> &CatalogMeta {
        &self.doc.catalog
    }

    /// The order offers are ranked in, cheapest first: offers priced in the catalog's
    /// currency before the others, amounts (monthly equivalents in minor units) compared
    /// only within one currency, then by key. 1,900 US cents are not cheaper than 49,900
    /// paise: in a rupee catalog the rupee offers come first.
    pub fn cheaper(&self, a: &Offer, b: &Offer) -> std::cmp::Ordering {
        let home = &self.doc.catalog.currency;
        let (pa, pb) = (&a.price, &b.price);
        (pa.currency != *home, &pa.currency, pa.monthly_equivalent(), &a.key).cmp(&(pb.currency != *home, &pb.currency, pb.monthly_equivalent(), &b.key))
    }
    pub fn product(&self, id: &str) -> Option<&Product> {
        find(&self.product_ix, id).map(|i| &self.doc.products[i])
    }
    pub fn product_index(&self, id: &str) -> Option<usize> {
        find(&self.product_ix, id)
    }
    pub fn tier_index(&self, product: &str, tier: &str) -> Option<usize> {
        self.product(product)?.tiers.iter().position(|t| t == tier)
    }
    pub fn capability(&self, id: &str) -> Option<&Capability> {
        find(&self.capability_ix, id).map(|i| &self.doc.capabilities[i])
    }
    pub fn capability_index(&self, id: &str) -> Option<usize> {
        find(&self.capability_ix, id)
    }
    pub fn limit(&self, id: &str) -> Option<&Limit> {
        find(&self.limit_ix, id).map(|i| &self.doc.limits[i])
    }
    pub fn limit_index(&self, id: &str) -> Option<usize> {
        find(&self.limit_ix, id)
    }
    /// The index of `offer` when it is this catalog's own (not an equal one from elsewhere):
    /// its answers are then in the tables computed when the catalog loaded.
    fn own_offer(&self, offer: &Offer) -> Option<usize> {
        if self.offer_tiers_ix.len() != self.doc.offers.len() {
            return None; // the tables are being computed
        }
        find(&self.offer_ix, &offer.key).filter(|&i| std::ptr::eq(&self.doc.offers[i], offer))
    }

    pub fn offer(&self, key: &str) -> Option<&Offer> {
        find(&self.offer_ix, key).map(|i| &self.doc.offers[i])
    }
    pub fn offer_by_price_id(&self, price_id: &str) -> Option<&Offer> {
        find(&self.price_ix, price_id).map(|i| &self.doc.offers[i])
    }
    pub fn pool(&self, id: &str) -> Option<&CreditPool> {
        find(&self.pool_ix, id).map(|i| &self.doc.credit_pools[i])
    }
    pub fn tool(&self, id: &str) -> Option<&Tool> {
        find(&self.tool_ix, id).map(|i| &self.doc.tools[i])
    }
    pub fn tool_index(&self, id: &str) -> Option<usize> {
        find(&self.tool_ix, id)
    }
    /// The requirements of the tool at index `i`, as indices.
    pub fn tool_requirement(&self, i: usize) -> ToolRequirement {
        self.tool_requirements[i]
    }
    /// The product index of the capability at index `i`.
    pub fn capability_product(&self, i: usize) -> usize {
        self.capability_product_ix[i]
    }
    /// The product index of the limit at index `i`.
    pub fn limit_product(&self, i: usize) -> usize {
        self.limit_product_ix[i]
    }
    /// The upgrade a denial shows for the offer at index `i`.
    pub fn upgrade_at(&self, i: usize) -> &Upgrade {
        &self.offer_upgrades[i]
    }
    pub fn tools(&self) -> &[Tool] {
        &self.doc.tools
    }
    pub fn offers(&self) -> &[Offer] {
        &self.doc.offers
    }
    pub fn products(&self) -> &[Product] {
        &self.doc.products
    }

    /// Offers that give at least `tier_ix` on product `product_ix`, cheapest first.
    pub fn upgrades_for(&self, product_ix: usize, tier_ix: usize) -> &[usize] {
        self.upgrade_ix.get(product_ix).and_then(|p| p.get(tier_ix)).map(|v| v.as_slice()).unwrap_or(&[])
    }
    pub fn offer_at(&self, i: usize) -> &Offer {
        &self.doc.offers[i]
    }

    /// The cheapest visible offer that gives a tier above `current` (the tier
    /// held now, None: none) on the product of capability `cap_ix`, at which the
    /// capability holds. An upgrade never suggests the same or a lower tier,
    /// which matters for inverse flags such as "watermark exports" that only a
    /// lower tier has. Precomputed when the catalog loads.
    pub fn capability_upgrade(&self, cap_ix: usize, current: Option<usize>) -> Option<usize> {
        *self.capability_upgrade_ix.get(cap_ix)?.get(current.map_or(0, |c| c + 1))?
    }

    /// The cheapest visible offer that gives a tier above `current` on the
    /// product of limit `limit_ix` whose value for the limit is above `used`
    /// (unlimited, or more than `used`). Precomputed when the catalog loads.
    pub fn limit_upgrade(&self, limit_ix: usize, current: Option<usize>, used: u64) -> Option<usize> {
        let front = self.limit_upgrade_ix.get(limit_ix)?.get(current.map_or(0, |c| c + 1))?;
        front
            .iter()
            .find(|(_, v)| match *v {
                LimitValue::Unlimited => true,
                LimitValue::Limited(n) => used < n,
            })
            .map(|x| x.0)
    }

    /// Does a capability hold at this tier index (None = no tier at all)?
    pub fn capability_holds(&self, cap: &Capability, tier_ix: Option<usize>) -> bool {
        let Some(t) = tier_ix else { return cap.without_entitlement };
        let p = match self.product(&cap.product) {
            Some(p) => p,
            None => return false,
        };
        if let Some(min) = &cap.min_tier {
            if let Some(m) = p.tiers.iter().position(|x| x == min) {
                return t >= m;
            }
        }
        if let Some(ts) = &cap.tiers {
            return ts.iter().any(|x| p.tiers.get(t) == Some(x));
        }
        false
    }

    /// [`Catalog::capability_holds`] for the capability at index `ci` (precomputed).
    pub fn capability_holds_at(&self, ci: usize, tier_ix: Option<usize>) -> bool {
        self.capability_holds_ix[ci].get(tier_ix.map_or(0, |t| t + 1)).copied().unwrap_or(false)
    }

    /// [`Catalog::limit_value`] for the limit at index `li` (precomputed).
    pub fn limit_value_at(&self, li: usize, tier_ix: Option<usize>) -> LimitValue {
        self.limit_value_ix[li].get(tier_ix.map_or(0, |t| t + 1)).copied().unwrap_or(LimitValue::Limited(0))
    }

    /// The value of a limit at a tier index (None = no tier at all).
    pub fn limit_value(&self, lim: &Limit, tier_ix: Option<usize>) -> LimitValue {
        match tier_ix.and_then(|t| self.product(&lim.product).and_then(|p| p.tiers.get(t))) {
            Some(tier) => lim.values.get(tier).copied().unwrap_or(LimitValue::Limited(0)),
            None => lim.without_entitlement.unwrap_or(LimitValue::Limited(0)),
        }
    }
}

#[cfg(feature = "toml")]
fn line_of_offset(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Finds the TOML line of a validation path such as `offers[2].grants[1].tier`
/// by walking the parsed document with its source spans: the line of the last
/// key or array element on the path that exists in the source (so a missing
/// key points at its table, a bad element at that element's own line).
#[cfg(feature = "toml")]
pub(crate) fn locate_toml_path(src: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(src).ok()?;
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut value: Option<&DeValue> = None;
    let mut at: Option<usize> = None;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, indices) = split_indices(seg);
        let Some(t) = table.or(match value {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        }) else {
            break;
        };
        let Some((k, v)) = t.get_key_value(key) else { break };
        at = Some(k.span().start);
        let mut cur = v;
        let mut complete = true;
        for i in indices {
            match cur.get_ref() {
                DeValue::Array(a) if i < a.len() => {
                    cur = &a[i];
                    at = Some(cur.span().start);
                }
                _ => {
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            break;
        }
        table = None;
        value = Some(cur.get_ref());
    }
    at.map(|o| line_of_offset(src, o))
}


/// The field of a JSON document at `line` and `column` (1-based, as serde_json counts: the
/// byte where reading stopped): `offers[0].price.amount`; with `object_end` (the error is
/// about the object read up to there, such as a field missing from it) the object's:
/// `catalog`. Empty outside every object. Read without recursion, so no nesting depth
/// makes it fail.
fn json_path_at(src: &str, line: usize, column: usize, object_end: bool) -> String {
    enum Frame {
        Object { key: Option<String>, expect_key: bool },
        Array(usize),
    }
    let b = src.as_bytes();
    let line_start = if line <= 1 {
        0
    } else {
        b.iter().enumerate().filter(|(_, c)| **c == b'\n').nth(line - 2).map_or(b.len(), |(i, _)| i + 1)
    };
    let stop = (line_start + column.saturating_sub(1)).min(b.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < stop {
        match b[i] {
            b'{' => stack.push(Frame::Object { key: None, expect_key: true }),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut() {
                    if *expect_key {
                        *key = Some(String::from_utf8_lossy(&b[start..i.min(b.len())]).into_owned());
                        *expect_key = false;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    if object_end {
        if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
            *expect_key = true;
        }
    }
    let mut path = String::new();
    for f in &stack {
        match f {
            Frame::Object { key: Some(k), expect_key: false } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { .. } => {}
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
    }
    path
}
/// The field path (`usage.rates[1].multiplier`) of the innermost key or value
/// whose source span holds `offset`: names the field of a TOML type error.
#[cfg(feature = "toml")]
pub(crate) fn toml_path_at(src: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    type Best = Option<(usize, String)>;
    fn consider(span: std::ops::Range<usize>, offset: usize, p: &str, best: &mut Best) {
        if span.start <= offset && offset < span.end.max(span.start + 1) {
            let width = span.end - span.start;
            if best.as_ref().is_none_or(|(w, bp)| width < *w || (width == *w && p.len() > bp.len())) {
                *best = Some((width, p.to_string()));
            }
        }
    }
    fn walk(v: &DeValue, offset: usize, path: &str, best: &mut Best) {
        match v {
            DeValue::Table(t) => {
                for (k, child) in t.iter() {
                    let p = if path.is_empty() { k.get_ref().to_string() } else { format!("{path}.{}", k.get_ref()) };
                    consider(k.span(), offset, &p, best);
                    consider(child.span(), offset, &p, best);
                    walk(child.get_ref(), offset, &p, best);
                }
            }
            DeValue::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    consider(child.span(), offset, &p, best);
                    walk(child.get_ref(), offset, &p, best);
                }
            }
            _ => {}
        }
    }
    let root = DeTable::parse(src).ok()?;
    let mut best = None;
    walk(&DeValue::Table(root.into_inner()), offset, "", &mut best);
    best.map(|(_, p)| p)
}

/// `grants[0]` -> (`grants`, [0]); `values` -> (`values`, []).
#[cfg(feature = "toml")]
fn split_indices(seg: &str) -> (&str, Vec<usize>) {
    match seg.find('[') {
        Some(b) => (&seg[..b], seg[b..].split('[').filter_map(|x| x.trim_end_matches(']').parse().ok()).collect()),
        None => (seg, Vec::new()),
    }
}

#[cfg(all(test, feature = "toml"))]
mod tests {
    use super::*;

    /// The question the precomputed upgrade indices answer, asked the slow way:
    /// every visible offer whose tier on `product` is above `current` and
    /// satisfies `pred`, cheapest ([`Catalog::cheaper`]) first.
    fn scan(c: &Catalog, product: &str, current: Option<usize>, pred: impl Fn(usize) -> bool) -> Option<usize> {
        c.offers()
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.hidden)
            .filter(|(_, o)| c.offer_tier_for(o, product).is_some_and(|t| current.is_none_or(|x| t > x) && pred(t)))
            .min_by(|(_, a), (_, b)| c.cheaper(a, b))
            .map(|(i, _)| i)
    }

    /// Every capability and limit, from every current tier (and none), for every
    /// usage around each value a limit takes: the index answers as the scan does.
    fn agrees_with_scan(c: &Catalog) -> usize {
        let mut checked = 0;
        for (ci, cap) in c.doc.capabilities.iter().enumerate() {
            let n = c.product(&cap.product).unwrap().tiers.len();
            for current in std::iter::once(None).chain((0..n).map(Some)) {
                let want = scan(c, &cap.product, current, |t| c.capability_holds(cap, Some(t)));
                assert_eq!(c.capability_upgrade(ci, current), want, "{} from {current:?}", cap.id);
                checked += 1;
            }
        }
        for (li, lim) in c.doc.limits.iter().enumerate() {
            let n = c.product(&lim.product).unwrap().tiers.len();
            let mut used: Vec<u64> = vec![0, 1, u64::MAX];
            for v in lim.values.values().chain(&lim.without_entitlement) {
                if let LimitValue::Limited(x) = *v {
                    used.extend([x.saturating_sub(1), x, x.saturating_add(1)]);
                }
            }
            for current in std::iter::once(None).chain((0..n).map(Some)) {
                for &u in &used {
                    let under = |t| match c.limit_value(lim, Some(t)) {
                        LimitValue::Unlimited => true,
                        LimitValue::Limited(x) => u < x,
                    };
                    let want = scan(c, &lim.product, current, under);
                    assert_eq!(c.limit_upgrade(li, current, u), want, "{} from {current:?} with {u} used", lim.id);
                    checked += 1;
                }
            }
        }
        checked
    }

    #[test]
    fn precomputed_upgrades_match_a_scan_of_every_offer_in_the_shipped_catalogs() {
        for src in [
            include_str!("../catalogs/vcm-suite.toml"),
            include_str!("../catalogs/video-studio.toml"),
            include_str!("../catalogs/razorpay-ai.toml"),
            include_str!("../catalogs/org-seats.toml"),
        ] {
            let c = Catalog::parse(src).unwrap();
            agrees_with_scan(&c);
        }
    }

    /// A catalog built to stress the indices: an inverse flag held only low, a
    /// limit whose values fall as well as rise with the tier, hidden offers,
    /// bundles, yearly prices, equal prices decided by the key, a limit on a
    /// product no offer sells.
    #[test]
    fn precomputed_upgrades_match_a_scan_on_awkward_catalogs() {
        let src = r#"
[catalog]
id = "awkward"
name = "Awkward"
version = "1"
currency = "usd"
[[products]]
id = "a"
tiers = ["t0", "t1", "t2", "t3", "t4"]
default_tier = "t0"
[[products]]
id = "b"
tiers = ["low", "high"]
[[products]]
id = "unsold"
tiers = ["only"]
[[offers]]
key = "A_T3_YEARLY"
label = "A t3 yearly"
price = { amount = 11988, currency = "usd", interval = "year" }
grants = [{ product = "a", tier = "t3" }]
[[offers]]
key = "A_T3_MONTHLY"
label = "A t3 monthly"
price = { amount = 999, currency = "usd", interval = "month" }
grants = [{ product = "a", tier = "t3" }]
[[offers]]
key = "A_T1"
label = "A t1"
price = { amount = 500, currency = "usd", interval = "month" }
grants = [{ product = "a", tier = "t1" }]
[[offers]]
key = "A_T2_SAME_PRICE"
label = "A t2"
price = { amount = 500, currency = "usd", interval = "month" }
grants = [{ product = "a", tier = "t2" }]
[[offers]]
key = "A_T4_HIDDEN"
label = "A t4 legacy"
price = { amount = 1, currency = "usd", interval = "month" }
grants = [{ product = "a", tier = "t4" }]
hidden = true
[[offers]]
key = "A_T4"
label = "A t4"
price = { amount = 5000, currency = "usd", interval = "one_time" }
grants = [{ product = "a", tier = "t4" }]
[[offers]]
key = "BUNDLE_HIGH"
label = "Bundle"
price = { amount = 700, currency = "usd", interval = "month" }
grants = [{ choose = 1, from = ["a"], tier = "t2" }, { all_products = true, tier = "high" }]
[[capabilities]]
id = "low_only"
product = "a"
tiers = ["t0", "t1"]
[[capabilities]]
id = "mid_up"
product = "a"
min_tier = "t2"
[[capabilities]]
id = "b_high"
product = "b"
min_tier = "high"
without_entitlement = true
[[limits]]
id = "zigzag"
product = "a"
values = { t0 = 0, t1 = 10, t2 = 5, t3 = "unlimited", t4 = 20 }
without_entitlement = 1
[[limits]]
id = "b_runs"
product = "b"
values = { low = 3, high = 3 }
[[limits]]
id = "unsold_runs"
product = "unsold"
values = { only = 7 }
"#;
        let c = Catalog::parse(src).unwrap();
        assert!(agrees_with_scan(&c) > 100);
        // Spot checks, worked out by hand.
        let zig = c.limit_index("zigzag").unwrap();
        let key = |o: Option<usize>| o.map(|i| c.offer_at(i).key.as_str());
        // From t1 (10 a day) with 10 used: t2 gives 5 (no), t3 is unlimited: the cheaper t3 is the monthly one.
        assert_eq!(key(c.limit_upgrade(zig, Some(1), 10)), Some("A_T3_MONTHLY"));
        // From t1 with 4 used: A_T2_SAME_PRICE (500) ties A_T1 on price but A_T1 is not above t1.
        assert_eq!(key(c.limit_upgrade(zig, Some(1), 4)), Some("A_T2_SAME_PRICE"));
        // With nothing held: A_T1 and A_T2_SAME_PRICE cost the same; the key decides.
        assert_eq!(key(c.limit_upgrade(zig, None, 4)), Some("A_T1"));
        // Only a lower tier holds the inverse flag: from t1 nothing is an upgrade.
        assert_eq!(c.capability_upgrade(c.capability_index("low_only").unwrap(), Some(1)), None);
        assert_eq!(key(c.capability_upgrade(c.capability_index("b_high").unwrap(), Some(0))), Some("BUNDLE_HIGH"));
        assert_eq!(c.limit_upgrade(c.limit_index("unsold_runs").unwrap(), None, 100), None);
        // Out-of-range indices answer None rather than panic.
        assert_eq!(c.capability_upgrade(99, None), None);
        assert_eq!(c.limit_upgrade(zig, Some(99), 0), None);
    }
}

/// The cheapest offer that would turn a denial into an allow.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Upgrade {
    pub offer: String,
    pub label: String,
    pub price: Money,
    pub interval: Interval,
    /// Human text, e.g. "Creation Cloud Pro — $59.00/month".
    pub display: String,
}

impl Upgrade {
    pub fn from_offer(o: &Offer) -> Upgrade {
        let price = o.price.money();
        let per = match o.price.interval {
            Interval::Month => "/month",
            Interval::Year => "/year",
            Interval::OneTime => " once",
        };
        Upgrade {
            offer: o.key.clone(),
            label: o.label.clone(),
            display: format!("{} — {}{}", o.label, price.display(), per),
            price,
            interval: o.price.interval,
        }
    }
}

