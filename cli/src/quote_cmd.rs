//! `tollgate quote`: the core's usage quote, the same function the browser
//! and the enforcement call.

use serde_json::json;
use tollgate::money::minor_digits;
use tollgate::usage;

use crate::util::{load_catalog, outln, to_json, Failure};
use crate::QuoteArgs;

/// The rounding rule, in words (the core's `usage` module documents it).
pub fn rounding_rule(currency: &str) -> String {
    format!(
        "seconds x base_price_per_second x multiplier, computed exactly (no floating point), in minor units of {} \
         (1/{} of the major unit), rounded up once on the total; overage multiplies by overage_multiplier before \
         that one rounding",
        currency,
        10u64.pow(minor_digits(currency))
    )
}

pub fn quote(a: &QuoteArgs) -> Result<(), Failure> {
    let catalog = load_catalog(&a.catalog)?;
    let q = usage::quote(&catalog, &a.model, &a.quality, a.seconds)
        .map_err(|e| Failure::new(format!("cannot quote: {e} ({})", e.code())))?;
    let currency = q.cost.currency.clone();
    if a.json {
        let out = json!({
            "model": q.model,
            "quality": q.quality,
            "seconds": q.seconds,
            "currency": currency,
            "base_price_per_second": q.base_price_per_second,
            "multiplier": q.multiplier,
            "cost": q.cost.amount,
            "cost_display": q.cost.display(),
            "overage_multiplier": q.overage_multiplier,
            "overage_cost": q.overage_cost.amount,
            "overage_cost_display": q.overage_cost.display(),
            "pool": q.pool,
            "rounding": rounding_rule(&currency),
        });
        outln!("{}", to_json(&out, false))?;
        return Ok(());
    }
    outln!("{} seconds of model `{}` at quality `{}`", q.seconds, q.model, q.quality)?;
    outln!("  rate:     {} {} per second x multiplier {}", q.base_price_per_second, currency, q.multiplier)?;
    outln!("  cost:     {} ({} minor units)", q.cost.display(), q.cost.amount)?;
    outln!(
        "  overage:  {} ({} minor units, x{} when past the balance)",
        q.overage_cost.display(),
        q.overage_cost.amount,
        q.overage_multiplier
    )?;
    outln!("  pool:     {}", q.pool)?;
    outln!("  rounding: {}", rounding_rule(&currency))?;
    Ok(())
}
