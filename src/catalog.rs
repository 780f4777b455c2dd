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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
    OneTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Integer minor units (cents, paise).
    pub amount: i64,
    /// ISO 4217, lower case (`usd`, `inr`, `cad`).
    pub currency: String,
    pub interval: Interval,
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
            Interval::Year => (self.amount + 11) / 12,
        }
    }
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditCadence {
    /// Granted again at every paid period (subscription allowance).
    Period,
    /// Granted once per payment (token bundles, top-ups).
    Once,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditGrant {
    pub pool: String,
    pub amount: i64,
    pub per: CreditCadence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    #[default]
    User,
    Organization,
}

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
}
fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// A boolean capability, held at some tiers of one product.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitValue {
    Limited(u64),
    Unlimited,
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
                u64::try_from(v).map(LimitValue::Limited).map_err(|_| {
                    E::custom("a limit cannot be negative; write \"unlimited\" for no limit")
                })
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LimitPeriod {
    #[default]
    None,
    Day,
    Month,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub id: String,
    #[serde(default)]
    pub label: String,
    pub product: String,
    #[serde(default)]
    pub period: LimitPeriod,
    /// One value per tier of the product: every tier must be listed.
    pub values: BTreeMap<String, LimitValue>,
    /// Value for a subject with no tier of the product (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_entitlement: Option<LimitValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rollover {
    /// Unused allowance is lost at renewal.
    #[default]
    None,
    /// Unused allowance carries over, capped at one period's allowance:
    /// `rollover = min(max(0, allowance + rollover - used), allowance)`.
    Capped,
    /// The balance is set back to the allowance on renewal (seed 003's AI credits).
    Reset,
}

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
    /// Credits a subject without any grant starts with, once (seed 003's free drafts).
    #[serde(default)]
    pub free_amount: i64,
}

/// One row of the usage price table: model tier x quality tier.
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePricing {
    /// The credit pool that usage draws its allowance from.
    pub pool: String,
    pub currency: String,
    /// Overage price = rate x multiplier x this (e.g. `"1.5"`).
    pub overage_multiplier: Decimal,
    /// Default cap on overage spend per request, in minor units (seed 002: 100 USD).
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
    /// The product seed 001's plan-level helpers resolve (e.g. `suite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_product: Option<String>,
}

/// The catalog as written in a file.
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
}

/// A validated catalog with lookup indices. Cheap to query, immutable.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub doc: CatalogDoc,
    product_ix: BTreeMap<String, usize>,
    capability_ix: BTreeMap<String, usize>,
    limit_ix: BTreeMap<String, usize>,
    offer_ix: BTreeMap<String, usize>,
    pool_ix: BTreeMap<String, usize>,
    tool_ix: BTreeMap<String, usize>,
    price_ix: BTreeMap<String, usize>,
    /// For each product and tier index: the offers that give at least that tier, cheapest first.
    upgrade_ix: Vec<Vec<Vec<usize>>>,
}

impl Catalog {
    /// Parses JSON and validates.
    pub fn from_json(src: &str) -> Result<Catalog, CatalogError> {
        let doc: CatalogDoc = serde_json::from_str(src).map_err(|e| CatalogError {
            path: String::new(),
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
        if src.trim_start().starts_with('{') {
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

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.doc).expect("a catalog always serialises")
    }

    pub fn from_doc(doc: CatalogDoc) -> Result<Catalog, CatalogError> {
        crate::validate::validate(&doc)?;
        let ix = |names: Vec<&String>| -> BTreeMap<String, usize> {
            names.into_iter().enumerate().map(|(i, n)| (n.clone(), i)).collect()
        };
        let product_ix = ix(doc.products.iter().map(|p| &p.id).collect());
        let capability_ix = ix(doc.capabilities.iter().map(|c| &c.id).collect());
        let limit_ix = ix(doc.limits.iter().map(|l| &l.id).collect());
        let offer_ix = ix(doc.offers.iter().map(|o| &o.key).collect());
        let pool_ix = ix(doc.credit_pools.iter().map(|p| &p.id).collect());
        let tool_ix = ix(doc.tools.iter().map(|t| &t.id).collect());
        let mut price_ix = BTreeMap::new();
        for (i, o) in doc.offers.iter().enumerate() {
            for p in o.stripe_price_ids.iter().chain(&o.razorpay_plan_ids) {
                price_ix.insert(p.clone(), i);
            }
        }
        let mut cat = Catalog {
            doc,
            product_ix,
            capability_ix,
            limit_ix,
            offer_ix,
            pool_ix,
            tool_ix,
            price_ix,
            upgrade_ix: Vec::new(),
        };
        cat.upgrade_ix = cat.build_upgrade_index();
        Ok(cat)
    }

    fn build_upgrade_index(&self) -> Vec<Vec<Vec<usize>>> {
        let mut out: Vec<Vec<Vec<usize>>> =
            self.doc.products.iter().map(|p| vec![Vec::new(); p.tiers.len()]).collect();
        for (oi, offer) in self.doc.offers.iter().enumerate() {
            if offer.hidden {
                continue;
            }
            for (pi, p) in self.doc.products.iter().enumerate() {
                if let Some(t) = self.offer_tier_for(offer, &p.id) {
                    for slot in out[pi].iter_mut().take(t + 1) {
                        slot.push(oi);
                    }
                }
            }
        }
        for per_product in &mut out {
            for list in per_product.iter_mut() {
                list.sort_by(|&a, &b| {
                    let (oa, ob) = (&self.doc.offers[a], &self.doc.offers[b]);
                    oa.price
                        .monthly_equivalent()
                        .cmp(&ob.price.monthly_equivalent())
                        .then(oa.key.cmp(&ob.key))
                });
                list.dedup();
            }
        }
        out
    }

    /// The highest tier index an offer can give on a product (bundles count:
    /// the buyer may choose this product).
    pub fn offer_tier_for(&self, offer: &Offer, product: &str) -> Option<usize> {
        let p = self.product(product)?;
        let mut best: Option<usize> = None;
        for g in &offer.grants {
            let applies = match (&g.product, g.all_products, g.choose) {
                (Some(gp), _, _) => gp == product,
                (None, true, _) => true,
                (None, false, Some(_)) => g.from.is_empty() || g.from.iter().any(|f| f == product),
                _ => false,
            };
            if applies {
                if let Some(t) = p.tiers.iter().position(|t| *t == g.tier) {
                    best = Some(best.map_or(t, |b: usize| b.max(t)));
                }
            }
        }
        best
    }

    pub fn meta(&self) -> &CatalogMeta {
        &self.doc.catalog
    }
    pub fn product(&self, id: &str) -> Option<&Product> {
        self.product_ix.get(id).map(|&i| &self.doc.products[i])
    }
    pub fn product_index(&self, id: &str) -> Option<usize> {
        self.product_ix.get(id).copied()
    }
    pub fn tier_index(&self, product: &str, tier: &str) -> Option<usize> {
        self.product(product)?.tiers.iter().position(|t| t == tier)
    }
    pub fn capability(&self, id: &str) -> Option<&Capability> {
        self.capability_ix.get(id).map(|&i| &self.doc.capabilities[i])
    }
    pub fn limit(&self, id: &str) -> Option<&Limit> {
        self.limit_ix.get(id).map(|&i| &self.doc.limits[i])
    }
    pub fn offer(&self, key: &str) -> Option<&Offer> {
        self.offer_ix.get(key).map(|&i| &self.doc.offers[i])
    }
    pub fn offer_by_price_id(&self, price_id: &str) -> Option<&Offer> {
        self.price_ix.get(price_id).map(|&i| &self.doc.offers[i])
    }
    pub fn pool(&self, id: &str) -> Option<&CreditPool> {
        self.pool_ix.get(id).map(|&i| &self.doc.credit_pools[i])
    }
    pub fn tool(&self, id: &str) -> Option<&Tool> {
        self.tool_ix.get(id).map(|&i| &self.doc.tools[i])
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
        self.upgrade_ix
            .get(product_ix)
            .and_then(|p| p.get(tier_ix))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
    pub fn offer_at(&self, i: usize) -> &Offer {
        &self.doc.offers[i]
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
        Some(b) => (
            &seg[..b],
            seg[b..].split('[').filter_map(|x| x.trim_end_matches(']').parse().ok()).collect(),
        ),
        None => (seg, Vec::new()),
    }
}
