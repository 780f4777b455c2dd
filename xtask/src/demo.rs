//! `cargo xtask demo`: every shipped catalog, evaluated by the core for a few
//! example users, as tables of which tools are locked, why, and the cheapest
//! upgrade for each lock.

use std::path::Path;

use tollgate::catalog::{Catalog, Offer, Requirement};
use tollgate::decide::{self, ToolState, Usage};
use tollgate::model::{Entitlements, Grant, Source, Status};
use tollgate::time::{Timestamp, DAY};

use crate::package::catalogs;
use crate::util::{step, Result};

/// The instant every table is computed at (fixed, so the output is reproducible).
const NOW: &str = "2026-03-01T00:00:00Z";
/// Used so far in each limit's period, for tools gated by a limit.
const USED: u64 = 3;

struct User {
    name: String,
    ents: Entitlements,
}

/// The grants an offer gives, with bundles ("choose N") taking the first N products they may choose from.
fn grants_of(cat: &Catalog, offer: &Offer, status: Status, from: Timestamp, to: Timestamp) -> Vec<Grant> {
    let mut out: Vec<Grant> = Vec::new();
    for g in &offer.grants {
        let products: Vec<&str> = match (&g.product, g.all_products, g.choose) {
            (Some(p), _, _) => vec![p.as_str()],
            (None, true, _) => cat.products().iter().map(|p| p.id.as_str()).collect(),
            (None, false, Some(n)) => {
                let pool: Vec<&str> = if g.from.is_empty() {
                    cat.products().iter().map(|p| p.id.as_str()).collect()
                } else {
                    g.from.iter().map(String::as_str).collect()
                };
                pool.into_iter().filter(|p| cat.tier_index(p, &g.tier).is_some()).take(n as usize).collect()
            }
            _ => Vec::new(),
        };
        for p in products.into_iter().filter(|p| cat.tier_index(p, &g.tier).is_some()) {
            out.push(Grant {
                id: format!("demo:{}:{p}", offer.key),
                product: p.to_string(),
                tier: g.tier.clone(),
                source: Source::Stripe,
                status,
                valid_from: from,
                valid_to: Some(to),
                past_due_since: (status == Status::PastDue).then_some(to),
                offer: Some(offer.key.clone()),
                source_ref: None,
                catalog_version: None,
                renewal_version: None,
                period_start: None,
                paused_since: None,
            });
        }
    }
    out
}

fn describe_grants(ents: &Entitlements) -> String {
    if ents.grants.is_empty() {
        return "no grants".into();
    }
    let mut parts: Vec<String> = ents.grants.iter().map(|g| format!("{} {}", g.product, g.tier)).collect();
    parts.dedup();
    let status = ents.grants[0].status.as_str();
    format!("{} ({status})", parts.join(", "))
}

/// A few users that show the catalog's range: nobody, its entry offer, a bundle
/// (or its most expensive offer), and a subscriber whose card failed.
fn example_users(cat: &Catalog, now: Timestamp) -> Vec<User> {
    let visible: Vec<&Offer> = cat.offers().iter().filter(|o| !o.hidden && !o.grants.is_empty()).collect();
    let mut users = vec![User { name: "visitor, no subscription".into(), ents: Entitlements::default() }];
    let (start, end) = (now.plus_days(-10), now.plus_days(20));
    if let Some(first) = visible.first() {
        users.push(User {
            name: format!("{} subscriber", first.label),
            ents: Entitlements::new(grants_of(cat, first, Status::Active, start, end)),
        });
    }
    let top = visible
        .iter()
        .find(|o| o.grants.iter().any(|g| g.choose.is_some()))
        .or_else(|| visible.iter().max_by_key(|o| o.price.monthly_equivalent()));
    if let Some(top) = top.filter(|t| Some(t.key.as_str()) != visible.first().map(|f| f.key.as_str())) {
        users.push(User {
            name: format!("{} subscriber", top.label),
            ents: Entitlements::new(grants_of(cat, top, Status::Active, start, end)),
        });
    }
    if let Some(last) = visible.last() {
        let days = 10;
        users.push(User {
            name: format!("{} subscriber, card failed {days} days ago", last.label),
            ents: Entitlements::new(grants_of(
                cat,
                last,
                Status::PastDue,
                now.plus_days(-days - 30),
                now.plus_seconds(-days * DAY),
            )),
        });
    }
    users
}

fn needs(r: &Requirement) -> String {
    let mut parts = Vec::new();
    if let (Some(p), Some(t)) = (&r.product, &r.tier) {
        parts.push(format!("{p} ≥ {t}"));
    }
    if let Some(c) = &r.capability {
        parts.push(c.clone());
    }
    if let Some(l) = &r.limit {
        parts.push(format!("{l} > {USED} used"));
    }
    parts.join(" + ")
}

fn why(t: &ToolState) -> String {
    let d = &t.decision;
    match &d.tier {
        Some(tier) => format!("{} (holds {tier})", d.reason.as_str()),
        None => d.reason.as_str().to_string(),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn table(rows: &[[String; 5]]) {
    let mut w = [0usize; 5];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::from("    ");
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i < 4 {
                line.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            }
        }
        println!("{}", line.trim_end());
    }
}

pub fn run(root: &Path) -> Result<()> {
    let now = Timestamp::parse(NOW)?;
    step("reading catalogs/*.toml with the core");
    for (name, cat) in catalogs(root)? {
        let usage: Usage = cat.doc.limits.iter().map(|l| (l.id.clone(), USED)).collect();
        println!();
        println!(
            "{} (catalogs/{name}.toml): {} products, {} offers, {} tools, at {NOW}",
            cat.meta().name,
            cat.products().len(),
            cat.offers().len(),
            cat.tools().len()
        );
        for user in example_users(&cat, now) {
            let tools = decide::page_state(&cat, &user.ents, None, &usage, now).map_err(|e| format!("{name}: {e}"))?;
            let locked = tools.iter().filter(|t| t.locked).count();
            println!();
            println!(
                "  {}: {} · {locked} of {} tools locked",
                user.name,
                describe_grants(&user.ents),
                tools.len()
            );
            let mut rows = vec![[
                "TOOL".to_string(),
                "NEEDS".to_string(),
                "STATE".to_string(),
                "WHY".to_string(),
                "CHEAPEST UPGRADE".to_string(),
            ]];
            for t in &tools {
                let req = cat.tool(&t.tool).map(|x| needs(&x.requires)).unwrap_or_default();
                let upgrade = match (&t.decision.upgrade, t.locked) {
                    (Some(u), true) => u.display.clone(),
                    (None, true) => "none in the catalog".into(),
                    (_, false) => String::new(),
                };
                rows.push([
                    cut(&t.label, 28),
                    cut(&req, 40),
                    if t.locked { "locked".into() } else { "open".into() },
                    why(t),
                    upgrade,
                ]);
            }
            table(&rows);
        }
    }
    println!();
    Ok(())
}
