//! What a person is told: the open alerts and the payments due that a signed snapshot
//! carries, and the warnings a host holding only that snapshot shows from them.
//!
//! The store keeps alerts (see [`crate::alerts`]) and failed payments as rows; the worker
//! hands them here for the snapshot ([`shown_alerts`], [`due_payments`]), which keeps the
//! ones still in force. [`notices`] then gives the browser the same warnings the server
//! sends: the snapshot's open alerts, and the thresholds the snapshot's numbers cross now
//! by the catalog's rules (a limit given the window's use, a pool from the balances, a
//! payment's grace from `now`), each under the rule id the server's alert has, so one
//! crossing is one warning whichever side saw it first. Amounts are written by
//! [`Money::display`], the one money formatter.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerts::{self, Level};
use crate::catalog::{Catalog, SubscriptionEvent};
use crate::meter::{self, Remaining};
use crate::model::Entitlements;
use crate::money::Money;
use crate::time::Timestamp;

/// An open alert as a snapshot carries it: what the app was told, for a person to see.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownAlert {
    /// The rule's id (`limit:<feature>:80%`, `pool:<pool>:100left`, `payment_failed:0:<invoice>`).
    pub rule: String,
    /// `limit`, `pool`, or the subscription event (`payment_failed`, `grace_ending`, ...).
    pub kind: String,
    pub crossed_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_used: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units_left: Option<i64>,
    /// The limit when it was crossed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// When the alert stops applying: a windowed limit's with its window, a subscription
    /// event's at the moment it warns of (the grace's or the trial's end, the
    /// subscription's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
}

/// An alert row as the store reads it (`alerts`: rule, kind, body, crossed_at).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct StoredAlert {
    pub rule: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub body: Value,
    pub crossed_at: Timestamp,
    #[serde(default)]
    pub resolved_at: Option<Timestamp>,
}

/// The open alerts of `rows` still in force at `now` (a windowed limit's alert whose
/// window ended is over, even before the scheduled run resolves it), oldest first.
pub fn shown_alerts(rows: &[StoredAlert], now: Timestamp) -> Vec<ShownAlert> {
    let ts = |v: &Value| serde_json::from_value::<Timestamp>(v.clone()).ok();
    let mut out: Vec<ShownAlert> = rows
        .iter()
        .filter(|r| r.resolved_at.is_none())
        .map(|r| {
            let b = &r.body;
            let threshold = &b["threshold"];
            let kind = if r.kind.is_empty() { b["kind"].as_str().unwrap_or_default().to_string() } else { r.kind.clone() };
            // A warning of a moment is over once the moment is (an alert the store left open
            // because no fold came since is not shown after it).
            let moment = match kind.as_str() {
                "grace_ending" => ts(&b["grace_until"]),
                "trial_ending" => ts(&b["trial_end"]),
                _ => None,
            };
            ShownAlert {
                rule: r.rule.clone(),
                kind,
                crossed_at: r.crossed_at,
                feature: b["feature"].as_str().map(str::to_string),
                percent_used: threshold["percent_used"].as_u64().and_then(|p| u32::try_from(p).ok()),
                units_left: threshold["units_left"].as_i64(),
                limit: b["limit"].as_u64(),
                ends_at: ts(&b["ends_at"]).or(moment),
                subscription: b["subscription"].as_str().map(str::to_string),
                invoice: b["invoice"].as_str().map(str::to_string),
            }
        })
        .filter(|a| a.ends_at.is_none_or(|e| now < e))
        .collect();
    out.sort_by(|a, b| (a.crossed_at, &a.rule).cmp(&(b.crossed_at, &b.rule)));
    out
}

/// A failed payment still due, as a snapshot carries it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuePayment {
    /// `stripe` or `razorpay`.
    pub provider: String,
    /// The invoice (or Razorpay cycle) without its provider.
    pub invoice: String,
    pub subscription: String,
    /// Minor units of `currency` (lower case).
    pub amount_due: i64,
    pub currency: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<Timestamp>,
    pub first_failed_at: Timestamp,
    /// Access lasts until here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<Timestamp>,
}

/// A `failed_payments` row as the store reads it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct StoredPayment {
    pub provider: String,
    pub invoice_id: String,
    pub subscription_id: String,
    #[serde(default)]
    pub amount_due: i64,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub attempt_count: u32,
    #[serde(default)]
    pub next_retry_at: Option<Timestamp>,
    pub first_failed_at: Timestamp,
    #[serde(default)]
    pub grace_until: Option<Timestamp>,
    #[serde(default)]
    pub resolved_at: Option<Timestamp>,
}

/// The payments of `rows` still due (not paid, not ended), oldest failure first.
pub fn due_payments(rows: &[StoredPayment]) -> Vec<DuePayment> {
    let mut out: Vec<DuePayment> = rows
        .iter()
        .filter(|r| r.resolved_at.is_none())
        .map(|r| DuePayment {
            provider: r.provider.clone(),
            invoice: r.invoice_id.clone(),
            subscription: r.subscription_id.clone(),
            amount_due: r.amount_due,
            currency: r.currency.clone(),
            attempts: r.attempt_count,
            next_retry: r.next_retry_at,
            first_failed_at: r.first_failed_at,
            grace_until: r.grace_until,
        })
        .collect();
    out.sort_by(|a, b| (a.first_failed_at, &a.invoice).cmp(&(b.first_failed_at, &b.invoice)));
    out
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something is stopped or lost (a limit used up, the grace over).
    Critical,
    /// Before it hurts.
    Warning,
}

/// One warning to show.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The server's rule id: the same crossing is the same warning.
    pub rule: String,
    pub kind: String,
    pub severity: Severity,
    /// The core's words for it.
    pub message: String,
    pub feature: Option<String>,
    /// When the server opened it (`None`: derived from the snapshot's numbers now).
    pub since: Option<Timestamp>,
    /// When it stops by itself (a limit's window), if known.
    pub until: Option<Timestamp>,
}

/// A payment due, ready to show.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentNotice {
    pub invoice: String,
    pub subscription: String,
    pub amount_due: Money,
    /// `amount_due` written by [`Money::display`] (`"₹499.00"`).
    pub amount_display: String,
    pub attempts: u32,
    pub next_retry: Option<Timestamp>,
    pub grace_until: Option<Timestamp>,
    /// `now` is before `grace_until`: access lasts.
    pub in_grace: bool,
    pub message: String,
}

/// What to show a person.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notices {
    /// Critical first, then by rule.
    pub warnings: Vec<Warning>,
    pub payments: Vec<PaymentNotice>,
}

fn day(t: Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

fn limit_label(catalog: &Catalog, id: &str) -> String {
    catalog.doc.limits.iter().find(|l| l.id == id).map(|l| if l.label.is_empty() { l.id.clone() } else { l.label.clone() }).unwrap_or_else(|| id.to_string())
}

fn pool_label(catalog: &Catalog, id: &str) -> (String, String) {
    match catalog.pool(id) {
        Some(p) => (if p.label.is_empty() { p.id.clone() } else { p.label.clone() }, p.unit.clone()),
        None => (id.to_string(), String::new()),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if unit.is_empty() {
        n.to_string()
    } else if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The words of a limit's or pool's threshold.
fn threshold_warning(catalog: &Catalog, a: &ShownAlert) -> Warning {
    let feature = a.feature.clone().unwrap_or_default();
    let (message, critical) = if a.kind == "pool" {
        let (label, unit) = pool_label(catalog, &feature);
        (format!("{label}: fewer than {} left.", plural(a.units_left.unwrap_or(0), &unit)), a.units_left.unwrap_or(0) <= 1)
    } else {
        let label = limit_label(catalog, &feature);
        let of = a.limit.map(|l| format!(" of {l}")).unwrap_or_default();
        let resets = a.ends_at.map(|e| format!(" It resets on {}.", day(e))).unwrap_or_default();
        match (a.percent_used, a.units_left) {
            (Some(p), _) if p >= 100 => (format!("{label}: all{of} used.{resets}"), true),
            (Some(p), _) => (format!("{label}: {p}%{of} used.{resets}"), false),
            (None, u) => (format!("{label}: fewer than {} left.{resets}", u.unwrap_or(0)), u.unwrap_or(0) <= 1),
        }
    };
    Warning {
        rule: a.rule.clone(),
        kind: a.kind.clone(),
        severity: if critical { Severity::Critical } else { Severity::Warning },
        message,
        feature: a.feature.clone(),
        since: None,
        until: a.ends_at,
    }
}

fn money(p: &DuePayment) -> Money {
    Money { amount: p.amount_due, currency: p.currency.clone() }
}

/// The words of a subscription event's alert, given the payment it names when known.
fn event_warning(a: &ShownAlert, payment: Option<&DuePayment>) -> Warning {
    let amount = payment.map(|p| money(p).display()).unwrap_or_else(|| "the amount due".into());
    let grace = payment.and_then(|p| p.grace_until).map(day);
    let (message, critical) = match a.kind.as_str() {
        "payment_failed" => match &grace {
            Some(g) => (format!("A payment of {amount} failed. Access continues until {g}."), false),
            None => (format!("A payment of {amount} failed."), false),
        },
        "grace_ending" => (format!("Pay {amount} by {}: the grace period ends then.", grace.unwrap_or_default()), false),
        "grace_ended" => (format!("The grace period is over: {amount} is still due."), true),
        "trial_ending" => ("Your trial ends soon.".to_string(), false),
        "subscription_canceled" => ("Your subscription is canceled and ends at the end of its period.".to_string(), false),
        other => (other.replace('_', " "), false),
    };
    Warning {
        rule: a.rule.clone(),
        kind: a.kind.clone(),
        severity: if critical { Severity::Critical } else { Severity::Warning },
        message,
        feature: None,
        since: None,
        until: payment.and_then(|p| p.grace_until),
    }
}

/// The warnings and payment notices of a snapshot at `now`.
///
/// - `alerts`, `payments`: what the snapshot carries ([`shown_alerts`], [`due_payments`]);
/// - `ents`: its grants and balances;
/// - `used`: what each limit's current window used so far, where the host knows it
///   (`GET /v1/usage`, a counter it keeps); a limit left out is judged by the server's
///   alerts alone.
///
/// A failed payment still due is one [`PaymentNotice`] (amount, attempts, grace end) and
/// no `payment_failed` warning besides, so a banner that shows both lists tells it once.
/// Any other warning is shown when the server opened it and it is still in force, or when the
/// snapshot's numbers cross the catalog's rule now: a limit's `percent_used` and
/// `units_left` exactly as the store counts them ([`alerts::limit_checks`]), a pool's
/// `units_left` from its balance ([`alerts::pool_checks`]), a payment's events from its
/// grace ([`alerts::crossed`]).
pub fn notices(
    catalog: &Catalog,
    ents: &Entitlements,
    alerts_in: &[ShownAlert],
    payments: &[DuePayment],
    used: &BTreeMap<String, u64>,
    now: Timestamp,
) -> Notices {
    let mut out: Vec<Warning> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // The payments due once each, in the order `due_payments` gives (oldest failure, then
    // invoice), whatever order the snapshot lists them in; an amount due that is not
    // positive is no payment due.
    let mut due: Vec<&DuePayment> = payments.iter().filter(|p| p.amount_due > 0).collect();
    let order = |p: &DuePayment| {
        (p.first_failed_at, p.provider.clone(), p.invoice.clone(), p.subscription.clone(), p.amount_due, p.currency.clone(), p.attempts, p.next_retry, p.grace_until)
    };
    due.sort_by_key(|p| order(p));
    due.dedup_by(|a, b| (&a.provider, &a.invoice) == (&b.provider, &b.invoice));
    let payments = due;
    // An alert listed twice is shown as it first crossed, whatever the order.
    let mut alerts_in: Vec<&ShownAlert> = alerts_in.iter().collect();
    alerts_in.sort_by(|a, b| (&a.rule, a.crossed_at).cmp(&(&b.rule, b.crossed_at)));
    let find_payment = |a: &ShownAlert| {
        payments.iter().copied().find(|p| a.invoice.as_deref().is_some_and(|i| i == format!("{}:{}", p.provider, p.invoice) || i == p.invoice))
    };
    for &a in alerts_in.iter().filter(|a| a.ends_at.is_none_or(|e| now < e)) {
        // A failed payment still due is told once: by its payment notice, which has the
        // amount and the grace end (the alert says the same, with less).
        if a.kind == SubscriptionEvent::PaymentFailed.as_str() && find_payment(a).is_some() {
            continue;
        }
        let mut w = if a.kind == "limit" || a.kind == "pool" { threshold_warning(catalog, a) } else { event_warning(a, find_payment(a)) };
        w.since = Some(a.crossed_at);
        if seen.insert(w.rule.clone()) {
            out.push(w);
        }
    }
    // Limits the host counted, by the store's own checks.
    for (feature, &n) in used {
        let Some(li) = catalog.doc.limits.iter().position(|l| &l.id == feature) else { continue };
        let Ok(c) = meter::check(catalog, ents, feature, 1, n, now) else { continue };
        let Remaining::Count(limit) = c.limit else { continue };
        let w = meter::limit_window(catalog, ents, li, now);
        for k in alerts::limit_checks(catalog, feature, feature, w.start, w.resets_at, limit) {
            let Level::CounterAtLeast { at_least, .. } = k.level else { continue };
            if n < at_least || seen.contains(&k.rule) {
                continue;
            }
            let t = &k.alert["threshold"];
            let a = ShownAlert {
                rule: k.rule.clone(),
                kind: "limit".into(),
                crossed_at: now,
                feature: Some(feature.clone()),
                percent_used: t["percent_used"].as_u64().and_then(|p| u32::try_from(p).ok()),
                units_left: t["units_left"].as_i64(),
                limit: Some(limit),
                ends_at: w.resets_at,
                subscription: None,
                invoice: None,
            };
            seen.insert(k.rule.clone());
            out.push(threshold_warning(catalog, &a));
        }
    }
    // Pools the subject holds, from the balances.
    for k in alerts::all_pool_checks(catalog) {
        let Level::BalanceBelow { pool, below } = &k.level else { continue };
        let Some(&balance) = ents.balance_at(pool, now) else { continue };
        if balance >= *below || seen.contains(&k.rule) {
            continue;
        }
        let a = ShownAlert {
            rule: k.rule.clone(),
            kind: "pool".into(),
            crossed_at: now,
            feature: Some(pool.clone()),
            percent_used: None,
            units_left: Some(*below),
            limit: None,
            ends_at: None,
            subscription: None,
            invoice: None,
        };
        seen.insert(k.rule.clone());
        out.push(threshold_warning(catalog, &a));
    }
    // Payments due, by the catalog's payment events.
    for r in &catalog.doc.alerts {
        let Some(event) = r.event else { continue };
        // `payment_failed` is every payment's notice already (see above).
        if !matches!(event, SubscriptionEvent::GraceEnding | SubscriptionEvent::GraceEnded) {
            continue;
        }
        for &p in &payments {
            let object = format!("{}:{}", p.provider, p.invoice);
            let rule = alerts::event_rule(event, r.days, &object);
            if seen.contains(&rule) || !alerts::crossed(event, i64::from(r.days.unwrap_or(0)), p.grace_until, now) {
                continue;
            }
            let a = ShownAlert {
                rule: rule.clone(),
                kind: event.as_str().into(),
                crossed_at: now,
                feature: None,
                percent_used: None,
                units_left: None,
                limit: None,
                ends_at: None,
                subscription: Some(p.subscription.clone()),
                invoice: Some(object),
            };
            seen.insert(rule);
            out.push(event_warning(&a, Some(p)));
        }
    }
    out.sort_by(|a, b| (a.severity, &a.rule).cmp(&(b.severity, &b.rule)));
    let payments = payments
        .iter()
        .map(|&p| {
            let m = money(p);
            let amount = m.display();
            let in_grace = p.grace_until.is_some_and(|g| now < g);
            let message = match p.grace_until {
                Some(g) if in_grace => format!("A payment of {amount} failed. Access continues until {}.", day(g)),
                Some(g) => format!("A payment of {amount} failed and the grace period ended on {}.", day(g)),
                None => format!("A payment of {amount} failed."),
            };
            PaymentNotice {
                invoice: p.invoice.clone(),
                subscription: p.subscription.clone(),
                amount_display: amount,
                amount_due: m,
                attempts: p.attempts,
                next_retry: p.next_retry,
                grace_until: p.grace_until,
                in_grace,
                message,
            }
        })
        .collect();
    Notices { warnings: out, payments }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Grant, Source, Status};
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).expect("catalog")
    }

    fn premium(from: Timestamp) -> Entitlements {
        let g = Grant {
            id: "g".into(),
            product: "premium".into(),
            tier: "PREMIUM".into(),
            source: Source::Razorpay,
            status: Status::Active,
            valid_from: from,
            valid_to: Some(from.plus_days(30)),
            past_due_since: None,
            offer: Some("PREMIUM_MONTHLY".into()),
            source_ref: None,
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        };
        let mut e = Entitlements::new(vec![g]);
        e.balances.insert("ai_credits".into(), 50);
        e
    }

    #[test]
    fn the_snapshot_crosses_the_same_rules_as_the_store() {
        let c = catalog();
        let start = Timestamp::parse("2026-12-01T00:00:00Z").unwrap();
        let now = start.plus_days(3);
        let ents = premium(start);
        let used = BTreeMap::from([("monthly_ai_credits".to_string(), 1700u64)]);
        let n = notices(&c, &ents, &[], &[], &used, now);
        let rules: Vec<&str> = n.warnings.iter().map(|w| w.rule.as_str()).collect();
        assert_eq!(rules, ["limit:monthly_ai_credits:80%", "pool:ai_credits:100left"]);
        assert_eq!(n.warnings[0].message, "AI credits per month: 80% of 2000 used. It resets on 2027-01-01.");
        assert_eq!(n.warnings[1].message, "AI credits: fewer than 100 credits left.");
        // The store's threshold: 80% of 2000 is the 1600th.
        let below = BTreeMap::from([("monthly_ai_credits".to_string(), 1599u64)]);
        assert!(notices(&c, &ents, &[], &[], &below, now).warnings.iter().all(|w| w.kind != "limit"));
        let all = BTreeMap::from([("monthly_ai_credits".to_string(), 2000u64)]);
        let n = notices(&c, &ents, &[], &[], &all, now);
        assert_eq!(n.warnings[0].severity, Severity::Critical, "all used comes first");
        assert_eq!(n.warnings[0].rule, "limit:monthly_ai_credits:100%");
    }

    #[test]
    fn open_alerts_and_payments_due_from_the_store() {
        let c = catalog();
        let t = Timestamp::parse("2026-12-05T10:00:00Z").unwrap();
        let rows = vec![
            StoredAlert {
                rule: "limit:monthly_ai_credits:80%".into(),
                kind: "limit".into(),
                body: json!({"kind": "limit", "feature": "monthly_ai_credits", "threshold": {"percent_used": 80}, "limit": 2000, "ends_at": "2026-12-31T00:00:00Z"}),
                crossed_at: t,
                resolved_at: None,
            },
            StoredAlert {
                rule: "limit:monthly_ai_credits:100%".into(),
                kind: "limit".into(),
                body: json!({"kind": "limit", "feature": "monthly_ai_credits", "ends_at": "2026-11-30T00:00:00Z"}),
                crossed_at: t.plus_days(-10),
                resolved_at: None,
            },
            StoredAlert {
                rule: "payment_failed:0:razorpay:sub_1@1".into(),
                kind: "payment_failed".into(),
                body: json!({"invoice": "razorpay:sub_1@1", "subscription": "razorpay:sub_1"}),
                crossed_at: t,
                resolved_at: None,
            },
            StoredAlert { rule: "old".into(), kind: "pool".into(), body: json!({}), crossed_at: t, resolved_at: Some(t) },
        ];
        let shown = shown_alerts(&rows, t);
        let rules: Vec<&str> = shown.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(rules, ["limit:monthly_ai_credits:80%", "payment_failed:0:razorpay:sub_1@1"], "an ended window and a resolved alert are over");
        let due = due_payments(&[
            StoredPayment {
                provider: "razorpay".into(),
                invoice_id: "sub_1@1".into(),
                subscription_id: "sub_1".into(),
                amount_due: 49900,
                currency: "inr".into(),
                attempt_count: 1,
                next_retry_at: None,
                first_failed_at: t,
                grace_until: Some(t.plus_days(3)),
                resolved_at: None,
            },
            StoredPayment {
                provider: "razorpay".into(),
                invoice_id: "paid".into(),
                subscription_id: "sub_1".into(),
                amount_due: 1,
                currency: "inr".into(),
                attempt_count: 1,
                next_retry_at: None,
                first_failed_at: t,
                grace_until: None,
                resolved_at: Some(t),
            },
        ]);
        assert_eq!(due.len(), 1);
        let n = notices(&c, &Entitlements::default(), &shown, &due, &BTreeMap::new(), t);
        let pay = &n.payments[0];
        assert_eq!((pay.amount_display.as_str(), pay.in_grace), ("₹499.00", true));
        assert_eq!(pay.message, "A payment of ₹499.00 failed. Access continues until 2026-12-08.");
        // The payment is told once: its notice, not the `payment_failed` alert besides
        // (neither the server's nor one derived from the catalog's rule).
        assert_eq!(n.warnings.iter().filter(|w| w.kind == "payment_failed").count(), 0, "{:?}", n.warnings);
        let told: Vec<&str> = n.warnings.iter().map(|w| w.message.as_str()).chain(n.payments.iter().map(|p| p.message.as_str())).collect();
        assert_eq!(told.iter().filter(|m| m.contains("₹499.00 failed")).count(), 1, "{told:?}");
        // An open `payment_failed` alert whose payment is no longer due is still shown.
        let settled = notices(&c, &Entitlements::default(), &shown, &[], &BTreeMap::new(), t);
        assert_eq!(settled.warnings.iter().filter(|w| w.kind == "payment_failed").count(), 1);
        // A day before the grace ends the catalog's grace_ending (1 day) crosses from the snapshot.
        let late = notices(&c, &Entitlements::default(), &shown, &due, &BTreeMap::new(), t.plus_days(2).plus_seconds(60));
        let ending = late.warnings.iter().find(|w| w.kind == "grace_ending").expect("grace ending");
        assert_eq!(ending.rule, "grace_ending:1:razorpay:sub_1@1");
        assert_eq!(ending.message, "Pay ₹499.00 by 2026-12-08: the grace period ends then.");
    }
}
