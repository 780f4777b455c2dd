//! Semantic validation of a catalog document: every name it refers to exists,
//! nothing is defined twice, every limit is explicit for every tier.

use crate::catalog::{CatalogDoc, CatalogError};

fn err(path: impl Into<String>, message: impl Into<String>) -> CatalogError {
    CatalogError { path: path.into(), message: message.into(), line: None }
}

fn check_id(path: &str, id: &str) -> Result<(), CatalogError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(err(path, format!("`{id}` is not a valid name (letters, digits, _ - . : only, 1 to 128 characters)")))
    }
}

fn check_currency(path: &str, c: &str) -> Result<(), CatalogError> {
    if crate::money::is_currency(c) {
        Ok(())
    } else {
        Err(err(path, format!("`{c}` is not a lower-case ISO 4217 currency code such as \"usd\"")))
    }
}

/// The largest amount a catalog may name, in minor units (a price, credits, a free
/// amount): far above what any provider charges or any pack holds, and far enough from
/// `i64::MAX` that sums and products of a few of them cannot overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

fn check_amount(path: String, amount: i64) -> Result<(), CatalogError> {
    if amount > MAX_AMOUNT {
        return Err(err(path, format!("{amount} is more than the largest amount a catalog may name ({MAX_AMOUNT})")));
    }
    Ok(())
}

/// No name twice. `field` is the key that holds the name in each entry (`id`,
/// `key`), so the error points at the duplicate itself; empty for a plain list.
/// (A list scan rather than a set: catalogs are small, and the wasm stays smaller.)
fn unique<'a>(path: &str, field: &str, what: &str, ids: impl Iterator<Item = &'a String>) -> Result<(), CatalogError> {
    let ids: Vec<&String> = ids.collect();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            let at = if field.is_empty() { format!("{path}[{i}]") } else { format!("{path}[{i}].{field}") };
            return Err(err(at, format!("{what} `{id}` is defined twice")));
        }
    }
    Ok(())
}

pub fn validate(doc: &CatalogDoc) -> Result<(), CatalogError> {
    let m = &doc.catalog;
    check_id("catalog.id", &m.id)?;
    if m.version.trim().is_empty() {
        return Err(err("catalog.version", "must not be empty"));
    }
    check_currency("catalog.currency", &m.currency)?;

    if doc.products.is_empty() {
        return Err(err("products", "a catalog needs at least one product"));
    }
    unique("products", "id", "product", doc.products.iter().map(|p| &p.id))?;
    for (i, p) in doc.products.iter().enumerate() {
        let path = format!("products[{i}]");
        check_id(&format!("{path}.id"), &p.id)?;
        if p.tiers.is_empty() {
            return Err(err(format!("{path}.tiers"), format!("product `{}` needs at least one tier", p.id)));
        }
        unique(&format!("{path}.tiers"), "", "tier", p.tiers.iter())?;
        for (j, t) in p.tiers.iter().enumerate() {
            check_id(&format!("{path}.tiers[{j}]"), t)?;
        }
        if let Some(d) = &p.default_tier {
            if !p.tiers.contains(d) {
                return Err(err(format!("{path}.default_tier"), format!("`{d}` is not a tier of product `{}`", p.id)));
            }
        }
    }
    let product = |id: &str| doc.products.iter().find(|p| p.id == id);
    let tier_of = |path: String, prod: &str, tier: &str| -> Result<(), CatalogError> {
        let p = product(prod).ok_or_else(|| err(path.clone(), format!("unknown product `{prod}`")))?;
        if p.tiers.iter().any(|t| t == tier) {
            Ok(())
        } else {
            Err(err(path, format!("`{tier}` is not a tier of product `{prod}` (tiers: {})", p.tiers.join(", "))))
        }
    };
    if let Some(pp) = &m.plan_product {
        if product(pp).is_none() {
            return Err(err("catalog.plan_product", format!("unknown product `{pp}`")));
        }
    }

    unique("credit_pools", "id", "credit pool", doc.credit_pools.iter().map(|p| &p.id))?;
    for (i, p) in doc.credit_pools.iter().enumerate() {
        check_id(&format!("credit_pools[{i}].id"), &p.id)?;
        if p.free_amount < 0 {
            return Err(err(format!("credit_pools[{i}].free_amount"), "must not be negative"));
        }
        check_amount(format!("credit_pools[{i}].free_amount"), p.free_amount)?;
    }
    let pool_exists = |id: &str| doc.credit_pools.iter().any(|p| p.id == id);

    unique("offers", "key", "offer key", doc.offers.iter().map(|o| &o.key))?;
    let mut price_ids: Vec<&String> = Vec::new();
    for (i, o) in doc.offers.iter().enumerate() {
        let path = format!("offers[{i}]");
        check_id(&format!("{path}.key"), &o.key)?;
        if o.price.amount < 0 {
            return Err(err(format!("{path}.price.amount"), "a price cannot be negative"));
        }
        check_amount(format!("{path}.price.amount"), o.price.amount)?;
        check_currency(&format!("{path}.price.currency"), &o.price.currency)?;
        for (j, pid) in o.stripe_price_ids.iter().enumerate() {
            if pid.trim().is_empty() {
                return Err(err(format!("{path}.stripe_price_ids[{j}]"), "an empty price id names no price"));
            }
            if price_ids.contains(&pid) {
                return Err(err(format!("{path}.stripe_price_ids[{j}]"), format!("price id `{pid}` belongs to two offers")));
            }
            price_ids.push(pid);
        }
        for (j, pid) in o.razorpay_plan_ids.iter().enumerate() {
            if pid.trim().is_empty() {
                return Err(err(format!("{path}.razorpay_plan_ids[{j}]"), "an empty plan id names no plan"));
            }
            if price_ids.contains(&pid) {
                return Err(err(format!("{path}.razorpay_plan_ids[{j}]"), format!("plan id `{pid}` belongs to two offers")));
            }
            price_ids.push(pid);
        }
        // What a bundle's choices may be: `check_clouds` wants as many distinct products,
        // each eligible for one of the offer's `choose` grants, as they choose together.
        let (mut chosen, mut choosable): (u64, Vec<&str>) = (0, Vec::new());
        for (j, g) in o.grants.iter().enumerate() {
            let gp = format!("{path}.grants[{j}]");
            let kinds = g.product.is_some() as u8 + g.all_products as u8 + g.choose.is_some() as u8;
            if kinds != 1 {
                return Err(err(gp, "set exactly one of `product`, `all_products = true` or `choose = N`"));
            }
            if g.all_products && !g.from.is_empty() {
                return Err(err(
                    format!("{gp}.from"),
                    "`from` lists a bundle's choices (`choose = N`); `all_products = true` gives every product with the tier",
                ));
            }
            if g.product.is_some() && !g.from.is_empty() {
                return Err(err(format!("{gp}.from"), "`from` lists a bundle's choices (`choose = N`); `product` gives that one product"));
            }
            for (k, f) in g.from.iter().enumerate() {
                if g.from[..k].contains(f) {
                    return Err(err(format!("{gp}.from[{k}]"), format!("`{f}` is listed twice")));
                }
            }
            if let Some(p) = &g.product {
                tier_of(format!("{gp}.tier"), p, &g.tier).map_err(|e| {
                    if product(p).is_none() { err(format!("{gp}.product"), e.message) } else { e }
                })?;
            } else {
                let eligible: Vec<&str> = if g.from.is_empty() {
                    doc.products.iter().filter(|p| p.tiers.contains(&g.tier)).map(|p| p.id.as_str()).collect()
                } else {
                    for (k, f) in g.from.iter().enumerate() {
                        tier_of(format!("{gp}.from[{k}]"), f, &g.tier)?;
                    }
                    g.from.iter().map(|s| s.as_str()).collect()
                };
                if eligible.is_empty() {
                    return Err(err(format!("{gp}.tier"), format!("no product has a tier `{}`", g.tier)));
                }
                if let Some(n) = g.choose {
                    if n == 0 || n as usize > eligible.len() {
                        return Err(err(
                            format!("{gp}.choose"),
                            format!("a bundle must choose between 1 and {} products", eligible.len()),
                        ));
                    }
                    chosen += u64::from(n);
                    for e in eligible {
                        if !choosable.contains(&e) {
                            choosable.push(e);
                        }
                    }
                }
            }
        }
        if chosen > choosable.len() as u64 {
            return Err(err(
                format!("{path}.grants"),
                format!(
                    "the bundle chooses {chosen} different products but only {} can be chosen ({})",
                    choosable.len(),
                    choosable.join(", ")
                ),
            ));
        }
        for (j, c) in o.credits.iter().enumerate() {
            if !pool_exists(&c.pool) {
                return Err(err(format!("{path}.credits[{j}].pool"), format!("unknown credit pool `{}`", c.pool)));
            }
            if c.amount <= 0 {
                return Err(err(format!("{path}.credits[{j}].amount"), "must be positive"));
            }
            check_amount(format!("{path}.credits[{j}].amount"), c.amount)?;
            // One lot per pool and cadence: a second entry would be a second lot under the
            // same key (one pool's credits are one entry, their sum).
            if o.credits[..j].iter().any(|x| x.pool == c.pool && x.per == c.per) {
                return Err(err(
                    format!("{path}.credits[{j}].pool"),
                    format!("`{}` is credited twice at the same cadence: give one entry with the sum", c.pool),
                ));
            }
        }
        // Stripe gives a trial of at most two years (and Razorpay none longer).
        if o.trial_days > 730 {
            return Err(err(format!("{path}.trial_days"), format!("{} days: a trial is at most 730 days (two years)", o.trial_days)));
        }
        if let Some(s) = &o.seats {
            if s.included == 0 {
                return Err(err(format!("{path}.seats.included"), "must be at least 1"));
            }
        }
        if o.grants.is_empty() && o.credits.is_empty() {
            return Err(err(format!("{path}.grants"), format!("offer `{}` grants nothing (no grants, no credits)", o.key)));
        }
    }

    unique("capabilities", "id", "capability", doc.capabilities.iter().map(|c| &c.id))?;
    for (i, c) in doc.capabilities.iter().enumerate() {
        let path = format!("capabilities[{i}]");
        check_id(&format!("{path}.id"), &c.id)?;
        if product(&c.product).is_none() {
            return Err(err(format!("{path}.product"), format!("unknown product `{}`", c.product)));
        }
        match (&c.min_tier, &c.tiers) {
            (Some(t), None) => tier_of(format!("{path}.min_tier"), &c.product, t)?,
            (None, Some(ts)) => {
                for (j, t) in ts.iter().enumerate() {
                    tier_of(format!("{path}.tiers[{j}]"), &c.product, t)?;
                }
                if ts.is_empty() && !c.without_entitlement {
                    return Err(err(
                        format!("{path}.tiers"),
                        format!("no tier holds `{}` and it is not held without a tier: no subject could ever hold it (with no tier listed, set `without_entitlement = true`)", c.id),
                    ));
                }
            }
            _ => return Err(err(path, "set exactly one of `min_tier` or `tiers`")),
        }
    }

    unique("limits", "id", "limit", doc.limits.iter().map(|l| &l.id))?;
    // A feature id (`/v1/check`, `track`, `checkFeature`) names one capability, limit or
    // credit pool: the same id in two sections would answer for one and hide the other.
    for (i, l) in doc.limits.iter().enumerate() {
        if doc.capabilities.iter().any(|c| c.id == l.id) {
            return Err(err(format!("limits[{i}].id"), format!("`{}` is also a capability: a feature id names one capability, limit or credit pool", l.id)));
        }
    }
    for (i, p) in doc.credit_pools.iter().enumerate() {
        if doc.capabilities.iter().any(|c| c.id == p.id) || doc.limits.iter().any(|l| l.id == p.id) {
            return Err(err(format!("credit_pools[{i}].id"), format!("`{}` is also a capability or a limit: a feature id names one capability, limit or credit pool", p.id)));
        }
    }
    for (i, l) in doc.limits.iter().enumerate() {
        let path = format!("limits[{i}]");
        check_id(&format!("{path}.id"), &l.id)?;
        if l.id.contains(':') {
            // `<limit>:<scope>` names a scope's counter (`meter::counter_id`).
            return Err(err(format!("{path}.id"), format!("`{}`: a limit id has no `:` (it separates a limit from its scope)", l.id)));
        }
        if l.id == "overage" {
            // `overage:<currency>` is the overage cap's counter (`meter::overage_counter`):
            // this limit's counter with scope `<currency>` would be the same row.
            return Err(err(format!("{path}.id"), "`overage` names the overage cap's counter: choose another limit id".to_string()));
        }
        let p = product(&l.product).ok_or_else(|| err(format!("{path}.product"), format!("unknown product `{}`", l.product)))?;
        for k in l.values.keys() {
            if !p.tiers.contains(k) {
                return Err(err(format!("{path}.values.{k}"), format!("`{k}` is not a tier of product `{}`", p.id)));
            }
        }
        // The store counts in PostgreSQL's bigint: a limit past it could never be read there.
        let values = l.values.iter().map(|(k, v)| (format!("{path}.values.{k}"), v));
        for (at, v) in values.chain(l.without_entitlement.iter().map(|v| (format!("{path}.without_entitlement"), v))) {
            if let crate::catalog::LimitValue::Limited(n) = v {
                if *n > i64::MAX as u64 {
                    return Err(err(at, format!("{n} is more than a limit may count ({}): use \"unlimited\"", i64::MAX)));
                }
            }
        }
        for t in &p.tiers {
            if !l.values.contains_key(t) {
                return Err(err(
                    format!("{path}.values"),
                    format!("no value for tier `{t}`: every tier needs a number or \"unlimited\""),
                ));
            }
        }
        if l.anchor == crate::catalog::LimitAnchor::Subscription && l.period != crate::catalog::LimitPeriod::Month {
            return Err(err(
                format!("{path}.anchor"),
                "`subscription` anchors monthly windows: use it with period = \"month\" (a billing_period is anchored already)",
            ));
        }
    }

    if let Some(u) = &doc.usage {
        if !pool_exists(&u.pool) {
            return Err(err("usage.pool", format!("unknown credit pool `{}`", u.pool)));
        }
        check_currency("usage.currency", &u.currency)?;
        if u.overage_multiplier.is_zero() {
            return Err(err("usage.overage_multiplier", "must be above zero"));
        }
        if u.min_units == 0 || u.min_units > u.max_units {
            return Err(err("usage.min_units", "need 1 <= min_units <= max_units"));
        }
        if u.default_overage_limit < 0 {
            return Err(err("usage.default_overage_limit", "must not be negative"));
        }
        check_amount("usage.default_overage_limit".into(), u.default_overage_limit)?;
        for (i, r) in u.rates.iter().enumerate() {
            if u.rates[..i].iter().any(|x| x.model == r.model && x.quality == r.quality) {
                return Err(err(format!("usage.rates[{i}]"), format!("rate {} x {} is defined twice", r.model, r.quality)));
            }
            if r.multiplier.is_zero() {
                return Err(err(format!("usage.rates[{i}].multiplier"), "must be above zero"));
            }
        }
        if u.rates.is_empty() {
            return Err(err("usage.rates", "usage pricing needs at least one rate"));
        }
        if u.max_units > MAX_AMOUNT as u64 {
            return Err(err("usage.max_units", format!("{} is more than the most units a request may name ({MAX_AMOUNT})", u.max_units)));
        }
        // Every request from min_units to max_units must have a price: the dearest, at
        // max_units (prices only grow with units), within the largest amount.
        for (i, r) in u.rates.iter().enumerate() {
            let dearest = [vec![r.base_price_per_second, r.multiplier], vec![r.base_price_per_second, r.multiplier, u.overage_multiplier]]
                .iter()
                .map(|f| crate::money::ceil_minor(u.max_units, f, &u.currency).ok().filter(|a| *a <= MAX_AMOUNT))
                .collect::<Option<Vec<i64>>>();
            if dearest.is_none() {
                return Err(err(
                    format!("usage.rates[{i}]"),
                    format!("{} x {} at max_units ({}) prices more than the largest amount a catalog may name ({MAX_AMOUNT})", r.model, r.quality, u.max_units),
                ));
            }
        }
    }

    unique("tools", "id", "tool", doc.tools.iter().map(|t| &t.id))?;
    for (i, t) in doc.tools.iter().enumerate() {
        let path = format!("tools[{i}].requires");
        check_id(&format!("tools[{i}].id"), &t.id)?;
        let r = &t.requires;
        if r.product.is_none() && r.capability.is_none() && r.limit.is_none() {
            return Err(err(path, "a tool must require a product tier, a capability or a limit"));
        }
        match (&r.product, &r.tier) {
            (Some(p), Some(tier)) => tier_of(format!("{path}.tier"), p, tier)?,
            (Some(_), None) => return Err(err(format!("{path}.tier"), "a product requirement needs a tier")),
            (None, Some(_)) => return Err(err(format!("{path}.product"), "a tier requirement needs a product")),
            (None, None) => {}
        }
        if let Some(c) = &r.capability {
            if !doc.capabilities.iter().any(|x| &x.id == c) {
                return Err(err(format!("{path}.capability"), format!("unknown capability `{c}`")));
            }
        }
        if let Some(l) = &r.limit {
            if !doc.limits.iter().any(|x| &x.id == l) {
                return Err(err(format!("{path}.limit"), format!("unknown limit `{l}`")));
            }
        }
    }
    for (i, a) in doc.alerts.iter().enumerate() {
        let path = format!("alerts[{i}]");
        match (&a.feature, a.event) {
            (Some(f), None) => {
                let limit = doc.limits.iter().any(|x| &x.id == f);
                let pool = doc.credit_pools.iter().any(|x| &x.id == f);
                if !limit && !pool {
                    return Err(err(format!("{path}.feature"), format!("`{f}` is neither a limit nor a credit pool")));
                }
                if a.percent_used.is_empty() && a.units_left.is_empty() {
                    return Err(err(path, "give `percent_used` or `units_left` (or both)"));
                }
                if pool && !a.percent_used.is_empty() {
                    return Err(err(format!("{path}.percent_used"), format!("`{f}` is a credit pool: it has no limit to take a share of; use `units_left`")));
                }
                if let Some(p) = a.percent_used.iter().find(|p| **p == 0 || **p > 100) {
                    return Err(err(format!("{path}.percent_used"), format!("{p} is not a share from 1 to 100")));
                }
                if let Some(u) = a.units_left.iter().find(|u| **u <= 0) {
                    return Err(err(format!("{path}.units_left"), format!("{u}: a threshold is at least 1 unit")));
                }
                if a.days.is_some() {
                    return Err(err(format!("{path}.days"), "`days` belongs to a subscription event"));
                }
            }
            (None, Some(e)) => {
                use crate::catalog::SubscriptionEvent as E;
                let needs_days = matches!(e, E::TrialEnding | E::GraceEnding);
                if needs_days && a.days.is_none_or(|d| d == 0 || d > 366) {
                    return Err(err(format!("{path}.days"), format!("`{}` needs `days` (1 to 366) before it", e.as_str())));
                }
                if !needs_days && a.days.is_some() {
                    return Err(err(format!("{path}.days"), format!("`{}` takes no `days`", e.as_str())));
                }
                if !a.percent_used.is_empty() || !a.units_left.is_empty() {
                    return Err(err(path, "a subscription event has no thresholds"));
                }
            }
            _ => return Err(err(path, "give exactly one of `feature` (a limit or credit pool) and `event`")),
        }
    }
    Ok(())
}
