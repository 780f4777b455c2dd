//! What changed between two versions of a catalog (`tollgate catalog diff OLD NEW`): each
//! offer, price, product and its tiers, capability, limit (value per tier), credit pool,
//! tool, the usage pricing and the alert rules, compared by id. Pure: two catalogs in, a
//! list of changes out, in the catalog's own order (old order, then what is new).

use serde::Serialize;
use serde_json::Value;

use crate::catalog::Catalog;

/// What happened to one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One change: which section and entry, what happened, and the entry's (or the changed
/// field's) JSON before and after.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// `catalog`, `offer`, `price`, `product`, `tiers`, `capability`, `limit`, `credit_pool`,
    /// `usage`, `tool`, `alert`.
    pub section: &'static str,
    /// The entry's id (offer key, product id, `<limit>.<tier>` for one tier's value, ...).
    pub id: String,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl Change {
    /// One line for people: `offer ORG_PRO_MONTHLY: price 2500 cad/month -> 2900 cad/month`.
    pub fn describe(&self) -> String {
        let show = |v: &Option<Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "-".into(),
        };
        match self.kind {
            ChangeKind::Added => format!("{} {}: added", self.section, self.id),
            ChangeKind::Removed => format!("{} {}: removed", self.section, self.id),
            ChangeKind::Changed => {
                format!("{} {}: {} -> {}", self.section, self.id, show(&self.before), show(&self.after))
            }
        }
    }
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Compares two lists of entries by id: added, removed, and (via `changed`) what differs.
fn by_id<T>(
    out: &mut Vec<Change>,
    section: &'static str,
    old: &[T],
    new: &[T],
    id: impl Fn(&T) -> &str,
    mut changed: impl FnMut(&mut Vec<Change>, &T, &T),
) where
    T: Serialize,
{
    for o in old {
        match new.iter().find(|n| id(n) == id(o)) {
            Some(n) => changed(out, o, n),
            None => out.push(Change {
                section,
                id: id(o).to_string(),
                kind: ChangeKind::Removed,
                before: Some(json(o)),
                after: None,
            }),
        }
    }
    for n in new {
        if !old.iter().any(|o| id(o) == id(n)) {
            out.push(Change { section, id: id(n).to_string(), kind: ChangeKind::Added, before: None, after: Some(json(n)) });
        }
    }
}

/// The entry as a whole, when it differs.
fn whole<T: Serialize>(out: &mut Vec<Change>, section: &'static str, id: &str, o: &T, n: &T) {
    let (a, b) = (json(o), json(n));
    if a != b {
        out.push(Change { section, id: id.to_string(), kind: ChangeKind::Changed, before: Some(a), after: Some(b) });
    }
}

/// Every change from `old` to `new`.
pub fn diff(old: &Catalog, new: &Catalog) -> Vec<Change> {
    let (o, n) = (&old.doc, &new.doc);
    let mut out = Vec::new();
    whole(&mut out, "catalog", &n.catalog.id, &o.catalog, &n.catalog);
    by_id(&mut out, "product", &o.products, &n.products, |p| p.id.as_str(), |out, a, b| {
        if a.tiers != b.tiers {
            out.push(Change {
                section: "tiers",
                id: a.id.clone(),
                kind: ChangeKind::Changed,
                before: Some(json(&a.tiers)),
                after: Some(json(&b.tiers)),
            });
        }
        let (mut a2, mut b2) = (json(a), json(b));
        a2.as_object_mut().map(|m| m.remove("tiers"));
        b2.as_object_mut().map(|m| m.remove("tiers"));
        if a2 != b2 {
            out.push(Change { section: "product", id: a.id.clone(), kind: ChangeKind::Changed, before: Some(a2), after: Some(b2) });
        }
    });
    by_id(&mut out, "offer", &o.offers, &n.offers, |x| x.key.as_str(), |out, a, b| {
        if a.price != b.price {
            out.push(Change {
                section: "price",
                id: a.key.clone(),
                kind: ChangeKind::Changed,
                before: Some(json(&a.price)),
                after: Some(json(&b.price)),
            });
        }
        let (mut a2, mut b2) = (json(a), json(b));
        a2.as_object_mut().map(|m| m.remove("price"));
        b2.as_object_mut().map(|m| m.remove("price"));
        if a2 != b2 {
            out.push(Change { section: "offer", id: a.key.clone(), kind: ChangeKind::Changed, before: Some(a2), after: Some(b2) });
        }
    });
    by_id(&mut out, "capability", &o.capabilities, &n.capabilities, |x| x.id.as_str(), |out, a, b| {
        whole(out, "capability", &a.id, a, b)
    });
    by_id(&mut out, "limit", &o.limits, &n.limits, |x| x.id.as_str(), |out, a, b| {
        // One change per tier whose value moved, then the rest of the limit.
        let mut tiers: Vec<&String> = a.values.keys().chain(b.values.keys()).collect();
        tiers.sort();
        tiers.dedup();
        for t in tiers {
            let (x, y) = (a.values.get(t), b.values.get(t));
            if x != y {
                out.push(Change {
                    section: "limit",
                    id: format!("{}.{t}", a.id),
                    kind: match (x, y) {
                        (None, _) => ChangeKind::Added,
                        (_, None) => ChangeKind::Removed,
                        _ => ChangeKind::Changed,
                    },
                    before: x.map(json),
                    after: y.map(json),
                });
            }
        }
        let (mut a2, mut b2) = (json(a), json(b));
        a2.as_object_mut().map(|m| m.remove("values"));
        b2.as_object_mut().map(|m| m.remove("values"));
        if a2 != b2 {
            out.push(Change { section: "limit", id: a.id.clone(), kind: ChangeKind::Changed, before: Some(a2), after: Some(b2) });
        }
    });
    by_id(&mut out, "credit_pool", &o.credit_pools, &n.credit_pools, |x| x.id.as_str(), |out, a, b| {
        whole(out, "credit_pool", &a.id, a, b)
    });
    if o.usage != n.usage {
        out.push(Change {
            section: "usage",
            id: "usage".into(),
            kind: match (&o.usage, &n.usage) {
                (None, _) => ChangeKind::Added,
                (_, None) => ChangeKind::Removed,
                _ => ChangeKind::Changed,
            },
            before: o.usage.as_ref().map(json),
            after: n.usage.as_ref().map(json),
        });
    }
    by_id(&mut out, "tool", &o.tools, &n.tools, |x| x.id.as_str(), |out, a, b| whole(out, "tool", &a.id, a, b));
    let (ao, an) = (json(&o.alerts), json(&n.alerts));
    if ao != an {
        out.push(Change { section: "alert", id: "alerts".into(), kind: ChangeKind::Changed, before: Some(ao), after: Some(an) });
    }
    out
}

/// How one subject's access, limits or balances differ between two catalogs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubjectImpact {
    /// `user:<id>` or `org:<id>`.
    pub subject: String,
    /// Sections `access` (a capability: allowed before, after), `limit` (its value) and
    /// `balance` (a credit pool's balance): what changes as soon as the new catalog is active.
    pub changes: Vec<Change>,
    /// What changes later, at the subject's next renewal (grants whose offer migrates
    /// `at_renewal`), compared with what it holds under the old catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_renewal: Vec<Change>,
}

/// Replays the same facts under both catalogs and answers every subject whose access,
/// limits or balances change, and how (subjects in order, then capabilities, limits and
/// pools in the new catalog's order, then what only the old one had). A subject's own
/// grants only: access through an organization's seat shows on the organization.
///
/// The new catalog's migration policies count ([`crate::grandfather`]): every grant the
/// facts give is taken as sold under the old catalog, so a grant whose offer keeps its
/// terms (`keep`, the default) changes nothing, one that moves `now` changes at once, and
/// one that moves `at_renewal` is listed under `at_renewal`.
pub fn impact(old: &Catalog, new: &Catalog, facts: &[crate::billing::Fact], now: crate::Timestamp) -> Vec<SubjectImpact> {
    // The old catalog as version 1 and the new one as version 2, active.
    const OLD: u32 = 1;
    const NEW: u32 = 2;
    let versions: std::collections::BTreeMap<u32, Catalog> = [(OLD, old.clone().with_version(OLD))].into();
    let active = new.clone().with_version(NEW);
    let sold_before = |mut e: crate::model::Entitlements, renewed: u32| {
        for g in &mut e.grants {
            g.catalog_version = Some(OLD);
            g.renewal_version = Some(renewed);
        }
        e
    };
    // The facts as a host folds them once the new version is active: all read under the
    // old one (its credits, and its offers the new one dropped kept hidden).
    let read_before: Vec<crate::billing::Fact> =
        facts.iter().map(|f| crate::billing::Fact { catalog_version: Some(OLD), ..f.clone() }).collect();
    let (a, b) = (
        crate::billing::reduce(old, facts, now),
        crate::billing::reduce_sold(&active, &versions, &read_before, &Default::default(), now),
    );
    let mut subjects: Vec<&String> = a.subjects.keys().chain(b.subjects.keys()).collect();
    subjects.sort();
    subjects.dedup();
    let union = |x: Vec<&str>, y: Vec<&str>| {
        let mut ids: Vec<String> = y.iter().map(|s| s.to_string()).collect();
        for i in x {
            if !ids.iter().any(|j| j == i) {
                ids.push(i.to_string());
            }
        }
        ids
    };
    let caps = union(
        old.doc.capabilities.iter().map(|c| c.id.as_str()).collect(),
        new.doc.capabilities.iter().map(|c| c.id.as_str()).collect(),
    );
    let limits = union(
        old.doc.limits.iter().map(|c| c.id.as_str()).collect(),
        new.doc.limits.iter().map(|c| c.id.as_str()).collect(),
    );
    let pools = union(
        old.doc.credit_pools.iter().map(|c| c.id.as_str()).collect(),
        new.doc.credit_pools.iter().map(|c| c.id.as_str()).collect(),
    );
    let mut out = Vec::new();
    for s in subjects {
        let ea = a.entitlements_for(s);
        let held = b.entitlements_for(s);
        let eb = sold_before(held.clone(), OLD);
        let (now_on, _) = crate::grandfather::catalog_for(&active, &versions, &eb.grants, now);
        let changes = compare(old, &now_on, &ea, &eb, &caps, &limits, &pools, &a, &b, s, now);
        let renewed = sold_before(held, NEW);
        let (after, _) = crate::grandfather::catalog_for(&active, &versions, &renewed.grants, now);
        let later = compare(old, &after, &ea, &renewed, &caps, &limits, &pools, &a, &b, s, now);
        let at_renewal: Vec<Change> = later.into_iter().filter(|c| !changes.contains(c)).collect();
        if !changes.is_empty() || !at_renewal.is_empty() {
            out.push(SubjectImpact { subject: s.clone(), changes, at_renewal });
        }
    }
    out
}

/// What differs for subject `s` between `ea` under `old` and `eb` under `new`.
#[allow(clippy::too_many_arguments)]
fn compare(
    old: &Catalog,
    new: &Catalog,
    ea: &crate::model::Entitlements,
    eb: &crate::model::Entitlements,
    caps: &[String],
    limits: &[String],
    pools: &[String],
    a: &crate::billing::BillingState,
    b: &crate::billing::BillingState,
    s: &str,
    now: crate::Timestamp,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut push = |section: &'static str, id: &str, x: Option<Value>, y: Option<Value>| {
        if x != y {
            let kind = match (&x, &y) {
                (None, _) => ChangeKind::Added,
                (_, None) => ChangeKind::Removed,
                _ => ChangeKind::Changed,
            };
            changes.push(Change { section, id: id.to_string(), kind, before: x, after: y });
        }
    };
    for c in caps {
        // A capability a catalog does not have is one nobody holds under it.
        let x = crate::decide::can(old, ea, c, now).is_ok_and(|d| d.allowed);
        let y = crate::decide::can(new, eb, c, now).is_ok_and(|d| d.allowed);
        push("access", c, Some(Value::Bool(x)), Some(Value::Bool(y)));
    }
    for l in limits {
        // A limit is its value and its window (10 a day is not 10 a month): the window is
        // shown beside the value when it changes.
        let held = |c: &Catalog, e: &crate::model::Entitlements| {
            let d = crate::decide::limit(c, e, l, now).ok()?;
            let w = c.doc.limits.iter().find(|x| &x.id == l)?;
            Some((d.limit, w.period, w.anchor))
        };
        let (x, y) = (held(old, ea), held(new, eb));
        let windowed = |h: Option<(crate::catalog::LimitValue, crate::catalog::LimitPeriod, crate::catalog::LimitAnchor)>| {
            h.map(|(v, period, anchor)| serde_json::json!({"limit": json(&v), "period": json(&period), "anchor": json(&anchor)}))
        };
        match (x, y) {
            (Some(a), Some(b)) if (a.1, a.2) != (b.1, b.2) => push("limit", l, windowed(x), windowed(y)),
            _ => push("limit", l, x.map(|h| json(&h.0)), y.map(|h| json(&h.0))),
        }
    }
    for p in pools {
        let x = old.pool(p).map(|_| Value::from(a.balance(s, p)));
        let y = new.pool(p).map(|_| Value::from(b.balance(s, p)));
        push("balance", p, x, y);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[catalog]
id = "t"
name = "T"
version = "1"
currency = "usd"

[[products]]
id = "app"
tiers = ["free", "pro", "enterprise"]

[[offers]]
key = "PRO"
label = "Pro"
price = { amount = 1000, currency = "usd", interval = "month" }
grants = [{ product = "app", tier = "pro" }]

[[capabilities]]
id = "export"
product = "app"
min_tier = "pro"

[[limits]]
id = "runs"
product = "app"
period = "day"
values = { free = 1, pro = 10, enterprise = "unlimited" }
"#;

    fn load(s: &str) -> Catalog {
        Catalog::from_toml(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_each_change_by_section_and_id() {
        let old = load(BASE);
        assert!(diff(&old, &old).is_empty());
        let new = load(
            &BASE
                .replace("amount = 1000", "amount = 1200")
                .replace("min_tier = \"pro\"", "min_tier = \"enterprise\"")
                .replace("pro = 10", "pro = 20"),
        );
        let d = diff(&old, &new);
        let lines: Vec<String> = d.iter().map(Change::describe).collect();
        assert_eq!(d.iter().map(|c| (c.section, c.id.as_str())).collect::<Vec<_>>(), vec![
            ("price", "PRO"),
            ("capability", "export"),
            ("limit", "runs.pro"),
        ], "{lines:#?}");
        assert_eq!(lines[2], "limit runs.pro: 10 -> 20");
        let more = load(&format!("{BASE}\n[[capabilities]]\nid = \"share\"\nproduct = \"app\"\nmin_tier = \"free\"\n"));
        let d = diff(&old, &more);
        assert_eq!((d[0].section, d[0].id.as_str(), d[0].kind), ("capability", "share", ChangeKind::Added));
        let d = diff(&more, &old);
        assert_eq!((d[0].section, d[0].kind), ("capability", ChangeKind::Removed));
    }
}
