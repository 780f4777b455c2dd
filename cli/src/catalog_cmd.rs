//! `tollgate catalog check FILE`: validate and summarise a catalog.

use std::fmt::Write as _;
use std::path::Path;

use tollgate::catalog::{CreditCadence, GrantSpec, Interval, LimitAnchor, LimitPeriod, Offer, Rollover, SubjectKind};
use tollgate::{Catalog, LimitValue, Money};

use crate::util::{display_path, load_catalog, to_json, write_stdout, Failure};

pub fn check(path: &Path, json: bool) -> Result<(), Failure> {
    let catalog = load_catalog(path)?;
    if json {
        write_stdout(&to_json(&catalog.doc, false))
    } else {
        write_stdout(summary(&catalog, &display_path(path)).trim_end())
    }
}

fn money(amount: i64, currency: &str) -> String {
    Money { amount, currency: currency.to_string() }.display()
}

fn limit_value(v: LimitValue) -> String {
    match v {
        LimitValue::Limited(n) => n.to_string(),
        LimitValue::Unlimited => "unlimited".to_string(),
    }
}

fn price(o: &Offer) -> String {
    let m = money(o.price.amount, &o.price.currency);
    match o.price.interval {
        Interval::Month => format!("{m} / month"),
        Interval::Year => format!("{m} / year"),
        Interval::OneTime => format!("{m} once"),
    }
}

fn grant(g: &GrantSpec) -> String {
    match (&g.product, g.all_products, g.choose) {
        (Some(p), _, _) => format!("{p}:{}", g.tier),
        (None, true, _) => format!("every product:{}", g.tier),
        (None, false, Some(n)) if g.from.is_empty() => format!("{n} chosen products:{}", g.tier),
        (None, false, Some(n)) => format!("{n} chosen of [{}]:{}", g.from.join(", "), g.tier),
        _ => format!("?:{}", g.tier),
    }
}

/// A section heading and its rows, the first column padded to one width.
fn section(out: &mut String, title: &str, rows: &[(String, String)]) {
    if rows.is_empty() {
        let _ = writeln!(out, "\n{title}: none");
        return;
    }
    let _ = writeln!(out, "\n{title} ({}):", rows.len());
    table(out, rows);
}

/// Pads the first column of rows to one width.
fn table(out: &mut String, rows: &[(String, String)]) {
    let w = rows.iter().map(|(a, _)| a.chars().count()).max().unwrap_or(0);
    for (a, b) in rows {
        let pad = w - a.chars().count();
        let _ = writeln!(out, "  {a}{}  {b}", " ".repeat(pad));
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The human summary printed by `catalog check`.
pub fn summary(c: &Catalog, file: &str) -> String {
    let d = &c.doc;
    let m = &d.catalog;
    let mut out = String::new();
    let _ = writeln!(out, "{file}: catalog `{}` ({}), version {}", m.id, m.name, m.version);
    let mut facts = vec![
        format!("currency {}", m.currency),
        format!("grace period {}", count(m.grace_period_days as usize, "day", "days")),
    ];
    if let Some(p) = &m.plan_product {
        facts.push(format!("plan product {p}"));
    }
    let _ = writeln!(out, "  {}", facts.join(", "));

    let rows: Vec<(String, String)> = d
        .products
        .iter()
        .map(|p| {
            let mut s = format!("tiers {}", p.tiers.join(" < "));
            if let Some(t) = &p.default_tier {
                let _ = write!(s, "; default {t}");
            }
            if !p.name.is_empty() {
                s = format!("{}: {s}", p.name);
            }
            (p.id.clone(), s)
        })
        .collect();
    section(&mut out, "products", &rows);

    let rows: Vec<(String, String)> = d
        .offers
        .iter()
        .map(|o| {
            let mut parts = vec![format!("{} ({})", price(o), o.label)];
            if !o.grants.is_empty() {
                parts.push(format!("grants {}", o.grants.iter().map(grant).collect::<Vec<_>>().join(", ")));
            }
            for cg in &o.credits {
                let per = match cg.per {
                    CreditCadence::Period => "per period",
                    CreditCadence::Once => "once",
                };
                let unit = c.pool(&cg.pool).map(|p| p.unit.as_str()).unwrap_or("unit");
                let unit = if cg.amount == 1 { unit.to_string() } else { format!("{unit}s") };
                parts.push(format!("{} {unit} of {} {per}", cg.amount, cg.pool));
            }
            if o.trial_days > 0 {
                parts.push(format!("{}-day trial", o.trial_days));
            }
            if let Some(s) = &o.seats {
                parts.push(format!(
                    "{} {}",
                    count(s.included as usize, "seat", "seats"),
                    if s.per_quantity { "per unit" } else { "in all" }
                ));
            }
            if o.subject == SubjectKind::Organization {
                parts.push("for organizations".into());
            }
            let ids = o.stripe_price_ids.len() + o.razorpay_plan_ids.len();
            if ids > 0 {
                let mut all = o.stripe_price_ids.clone();
                all.extend(o.razorpay_plan_ids.iter().cloned());
                parts.push(format!("ids {}", all.join(", ")));
            }
            if o.hidden {
                parts.push("hidden".into());
            }
            (o.key.clone(), parts.join("; "))
        })
        .collect();
    section(&mut out, "offers", &rows);

    let rows: Vec<(String, String)> = d
        .capabilities
        .iter()
        .map(|cap| {
            let mut s = match (&cap.min_tier, &cap.tiers) {
                (Some(t), _) => format!("{} >= {t}", cap.product),
                (None, Some(ts)) => format!("{} at {}", cap.product, ts.join(", ")),
                (None, None) => format!("{} (no tier)", cap.product),
            };
            if cap.without_entitlement {
                s.push_str(", and without any tier");
            }
            if !cap.label.is_empty() {
                let _ = write!(s, "  ({})", cap.label);
            }
            (cap.id.clone(), s)
        })
        .collect();
    section(&mut out, "capabilities", &rows);

    let rows: Vec<(String, String)> = d
        .limits
        .iter()
        .map(|l| {
            let tiers = c.product(&l.product).map(|p| p.tiers.clone()).unwrap_or_default();
            let mut vals: Vec<String> =
                tiers.iter().filter_map(|t| l.values.get(t).map(|v| format!("{t} {}", limit_value(*v)))).collect();
            if let Some(v) = l.without_entitlement {
                vals.push(format!("no tier {}", limit_value(v)));
            }
            let period = match l.period {
                LimitPeriod::None => "",
                LimitPeriod::Day => " per day",
                LimitPeriod::Month if l.anchor == LimitAnchor::Subscription => " per month of the subscription",
                LimitPeriod::Month => " per month",
                LimitPeriod::BillingPeriod => " per billing period",
            };
            (l.id.clone(), format!("{}{period}: {}", l.product, vals.join(", ")))
        })
        .collect();
    section(&mut out, "limits", &rows);

    let rows: Vec<(String, String)> = d
        .credit_pools
        .iter()
        .map(|p| {
            let rollover = match p.rollover {
                Rollover::None => "no rollover",
                Rollover::Capped => "rollover capped at one period",
                Rollover::Reset => "reset each period",
            };
            let mut s = format!("unit {}, {rollover}", p.unit);
            if p.free_amount > 0 {
                let _ = write!(s, ", {} free", p.free_amount);
            }
            if !p.label.is_empty() {
                let _ = write!(s, "  ({})", p.label);
            }
            (p.id.clone(), s)
        })
        .collect();
    section(&mut out, "credit pools", &rows);

    match &d.usage {
        None => {
            let _ = writeln!(out, "\nusage pricing: none");
        }
        Some(u) => {
            let _ = writeln!(
                out,
                "\nusage pricing ({}): pool {}, {}..={} seconds per request, overage x{}, default overage limit {}",
                count(u.rates.len(), "rate", "rates"),
                u.pool,
                u.min_units,
                u.max_units,
                u.overage_multiplier,
                money(u.default_overage_limit, &u.currency)
            );
            let rows: Vec<(String, String)> = u
                .rates
                .iter()
                .map(|r| {
                    (
                        format!("{} x {}", r.model, r.quality),
                        format!("{} {} per second x {}", r.base_price_per_second, u.currency, r.multiplier),
                    )
                })
                .collect();
            table(&mut out, &rows);
        }
    }

    let mut pages: Vec<(String, usize)> = Vec::new();
    for t in &d.tools {
        let page = if t.page.is_empty() { "(no page)" } else { t.page.as_str() };
        match pages.iter_mut().find(|(p, _)| p == page) {
            Some((_, n)) => *n += 1,
            None => pages.push((page.to_string(), 1)),
        }
    }
    let by_page: Vec<String> = pages.iter().map(|(p, n)| format!("{p} {n}")).collect();
    if by_page.is_empty() {
        let _ = writeln!(out, "\ntools: 0");
    } else {
        let _ = writeln!(out, "\ntools: {} (by page: {})", d.tools.len(), by_page.join(", "));
    }
    let _ = writeln!(out, "\nok");
    out
}
