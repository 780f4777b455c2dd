//! Alerts: telling an app before it hurts. A catalog declares thresholds per limit and
//! credit pool (`percent_used`, `units_left`) and subscription events (`trial_ending`,
//! `payment_failed`, `grace_ending`, `grace_ended`, `subscription_canceled`); this module
//! derives, for a subject, the **checks** a store applies.
//!
//! An alert is a state per rule: open from the moment its level is crossed until it is
//! not any more (resolved). The core gives each check its rule, its episode and its
//! **level**: known (`Known`, derived here from the billing state at `now`), or a count
//! the store compares in its own transaction with a number given here, as it does with a
//! limit (`CounterAtLeast`: the window's count reaches the threshold; `BalanceBelow`: what
//! may be spent of a pool holds fewer units). The store then, under one lock per subject:
//!
//! - crossed, and no alert of the rule open: opens one (`alert.crossed`), unless this
//!   episode was opened before (a windowed limit crosses once per window and limit: an
//!   upgrade within the window that resolves it lets the new limit's threshold cross);
//! - crossed in another episode than the open one (a new window): resolves the open one;
//! - not crossed: resolves the open one (`alert.resolved`).
//!
//! So an alert fires exactly once per crossing: a replayed request, a redelivered webhook
//! or a re-fold finds the level as it was and the alert already open, and changes nothing.
//! A windowed limit's alert is resolved when its window ends ([`lapsed`], from the
//! scheduled run, or the first use of the next window).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::billing::state::BillingState;
use crate::billing::facts::SubStatus;
use crate::catalog::{Catalog, SubscriptionEvent};
use crate::time::Timestamp;

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &["alert.crossed", "alert.resolved"];

/// How the store tells whether a check's level is crossed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Level {
    /// Decided by the core.
    Known { known: bool },
    /// The subject's counter `counter` in the window starting at `window_start` holds at
    /// least `at_least`.
    CounterAtLeast { counter: String, window_start: Timestamp, at_least: u64 },
    /// What the subject may spend of `pool` (its open lots, less those of a paused
    /// subscription: [`crate::usage::balances`], the store's `credit_balances`) is fewer
    /// than `below` units, and it holds lots of `pool`.
    BalanceBelow { pool: String, below: i64 },
}

/// One rule's check for one subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCheck {
    /// `limit:<feature>:<n>%`, `limit:<feature>:<n>left`, `pool:<pool>:<n>left`,
    /// `<event>:<object>`: at most one alert of a rule is open at a time.
    pub rule: String,
    /// Which crossing: a limit's window start (each window crosses once), else empty.
    pub episode: String,
    pub level: Level,
    /// What the app is told (the delivery's `data`, with the alert's id and status added
    /// by the store).
    pub alert: Value,
}

/// The checks of a limit after a use counted in the window `[window_start, ends_at)`
/// (`ends_at` `None`: a limit without a window) with the subject's limit `limit`.
/// `feature` is the limit, `counter` what grew (the limit or its scope's counter).
pub fn limit_checks(
    catalog: &Catalog,
    feature: &str,
    counter: &str,
    window_start: Timestamp,
    ends_at: Option<Timestamp>,
    limit: u64,
) -> Vec<AlertCheck> {
    let mut out = Vec::new();
    // One crossing per window and limit (a limit changed within the window is a new
    // episode: its thresholds are other numbers).
    let episode = if ends_at.is_some() { format!("{window_start}/{limit}") } else { String::new() };
    for r in catalog.doc.alerts.iter().filter(|r| r.feature.as_deref() == Some(feature)) {
        let mut push = |name: String, at_least: u64, threshold: Value| {
            out.push(AlertCheck {
                rule: format!("limit:{counter}:{name}"),
                episode: episode.clone(),
                level: Level::CounterAtLeast { counter: counter.to_string(), window_start, at_least },
                alert: json!({"kind": "limit", "feature": feature, "counter": counter, "threshold": threshold,
                              "units": at_least, "limit": limit, "window_start": window_start, "ends_at": ends_at}),
            })
        };
        for p in &r.percent_used {
            // The share of the limit, rounded up: 80% of 3 runs is the 3rd. In u128, so a
            // limit near u64's end is not cut to a smaller share (a share is never more
            // than the limit, so it fits back).
            let units = (u128::from(limit) * u128::from(*p)).div_ceil(100);
            push(format!("{p}%"), u64::try_from(units).unwrap_or(limit).max(1), json!({"percent_used": p}));
        }
        for u in &r.units_left {
            let Ok(left @ 1..) = u64::try_from(*u) else { continue };
            // Fewer than `left` left from the count `limit - left + 1` on; a limit below the
            // threshold has fewer left from its first use, which crosses it (else a tier
            // whose whole allowance is below the threshold would never be told, even at 0).
            push(format!("{u}left"), limit.saturating_sub(left) + 1, json!({"units_left": u}));
        }
    }
    out
}

/// The checks of a credit pool's thresholds (after a charge, or a fold that changed its lots).
pub fn pool_checks(catalog: &Catalog, pool: &str) -> Vec<AlertCheck> {
    let mut out = Vec::new();
    for r in catalog.doc.alerts.iter().filter(|r| r.feature.as_deref() == Some(pool)) {
        if catalog.pool(pool).is_none() {
            continue;
        }
        for u in &r.units_left {
            out.push(AlertCheck {
                rule: format!("pool:{pool}:{u}left"),
                episode: String::new(),
                level: Level::BalanceBelow { pool: pool.to_string(), below: *u },
                alert: json!({"kind": "pool", "feature": pool, "threshold": {"units_left": u}, "units": u}),
            });
        }
    }
    out
}

/// Every pool check of the catalog (a fold may change any pool's lots).
pub fn all_pool_checks(catalog: &Catalog) -> Vec<AlertCheck> {
    let mut pools: Vec<&str> = catalog.doc.alerts.iter().filter_map(|r| r.feature.as_deref()).collect();
    pools.sort();
    pools.dedup();
    pools.into_iter().flat_map(|p| pool_checks(catalog, p)).collect()
}

/// The subscription-event checks of subject `key` in the state at `now`: one per rule and
/// subscription (or failed payment) of the subject, crossed or not, so a fold both opens
/// and resolves them.
pub fn subscription_checks(catalog: &Catalog, st: &BillingState, key: &str, now: Timestamp) -> Vec<AlertCheck> {
    let mut out = Vec::new();
    let mine = |s: &Option<crate::billing::facts::Subject>| s.as_ref().map(|x| x.to_string()).as_deref() == Some(key);
    for r in &catalog.doc.alerts {
        let Some(event) = r.event else { continue };
        let days = i64::from(r.days.unwrap_or(0));
        let name = event.as_str();
        let mut push = |object: &str, crossed: bool, alert: Value| {
            let mut alert = alert;
            alert["kind"] = json!(name);
            out.push(AlertCheck {
                rule: event_rule(event, r.days, object),
                episode: String::new(),
                level: Level::Known { known: crossed },
                alert,
            });
        };
        match event {
            SubscriptionEvent::TrialEnding | SubscriptionEvent::SubscriptionCanceled => {
                for s in st.subscriptions.values().filter(|s| mine(&s.subject)) {
                    if event == SubscriptionEvent::TrialEnding {
                        let end = s.trial_end.filter(|_| s.status == SubStatus::Trialing);
                        push(&s.id, crossed(event, days, end, now), json!({"subscription": s.id, "trial_end": s.trial_end, "days": days}));
                    } else {
                        // A cancellation at a set time (Stripe's `cancel_at`) ends it then.
                        let ends = s.cancel_at.or(s.period_end).or(s.paid_through);
                        let canceled = s.cancel_at_period_end || s.cancel_at.is_some() || s.status == SubStatus::Canceled;
                        let crossed = canceled && ends.is_some_and(|e| now < e);
                        push(&s.id, crossed, json!({"subscription": s.id, "ends_at": ends}));
                    }
                }
            }
            SubscriptionEvent::PaymentFailed | SubscriptionEvent::GraceEnding | SubscriptionEvent::GraceEnded => {
                for f in st.failed_payments.values().filter(|f| mine(&f.subject)) {
                    let grace = f.grace_until;
                    push(
                        &f.id,
                        f.is_open() && crossed(event, days, grace, now),
                        json!({"subscription": f.subscription, "invoice": f.id, "amount_due": f.amount_due,
                               "currency": f.currency, "attempts": f.attempts, "next_retry": f.next_retry,
                               "grace_until": grace}),
                    );
                }
            }
        }
    }
    out
}

/// Whether a rule of `event` crosses at `now` for the moment it warns of, `at` (a failed
/// payment's grace end, a trial's end): `grace_ending` and `trial_ending` from `days`
/// (whole days) before it until it, `grace_ended` from it on, `payment_failed` always. The
/// store's checks ([`subscription_checks`]) and the browser's warnings ([`crate::notices`])
/// both ask here.
pub fn crossed(event: SubscriptionEvent, days: i64, at: Option<Timestamp>, now: Timestamp) -> bool {
    match event {
        SubscriptionEvent::PaymentFailed => true,
        SubscriptionEvent::GraceEnding | SubscriptionEvent::TrialEnding => {
            at.is_some_and(|g| g.plus_days(-days) <= now && now < g)
        }
        SubscriptionEvent::GraceEnded => at.is_some_and(|g| g <= now),
        SubscriptionEvent::SubscriptionCanceled => false,
    }
}

/// Whether a rule of `catalog` for one of `events` ([`crossed`]) says otherwise at `now`
/// than at `since` for the moment `at`. No event brings those moments (a grace's end, a
/// trial's), so the scheduled run folds such a payment's or trial's subject again (looking
/// back one day), which applies [`subscription_checks`] as of then.
pub fn turned(catalog: &Catalog, events: &[SubscriptionEvent], at: Option<Timestamp>, since: Timestamp, now: Timestamp) -> bool {
    catalog.doc.alerts.iter().any(|r| {
        r.event.is_some_and(|e| {
            let days = i64::from(r.days.unwrap_or(0));
            events.contains(&e) && crossed(e, days, at, since) != crossed(e, days, at, now)
        })
    })
}

/// The moments `at` for which [`turned`] can hold between `since` and `now`, as
/// `(from, to)`: `from < at <= to`. A rule of `days` turns only when one of its moment's
/// boundaries (`at - days` for `grace_ending` and `trial_ending`, `at` itself) falls in
/// `(since, now]`, so `at` falls in `(since, now + the largest days]`; `None` when the
/// catalog has no rule of `events`, so nothing turns. The scheduled run reads only the
/// payments and trials whose moment falls in it, however many others there are.
pub fn turning(catalog: &Catalog, events: &[SubscriptionEvent], since: Timestamp, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    catalog
        .doc
        .alerts
        .iter()
        .filter(|r| r.event.is_some_and(|e| events.contains(&e)))
        .map(|r| i64::from(r.days.unwrap_or(0)))
        .max()
        .map(|days| (since, now.plus_days(days.max(0))))
}

/// The rule id of a subscription event's check on `object` (a subscription, or a failed
/// payment's invoice): one alert of it is open at a time.
pub fn event_rule(event: SubscriptionEvent, days: Option<u32>, object: &str) -> String {
    format!("{}:{}:{object}", event.as_str(), days.unwrap_or(0))
}

/// An open alert as the store lists it for the scheduled run.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct OpenAlert {
    pub rule: String,
    pub episode: String,
    pub alert: Value,
}

/// The checks that resolve open alerts whose window ended by `now` (a windowed limit's
/// alerts end with their window).
pub fn lapsed(open: &[OpenAlert], now: Timestamp) -> Vec<AlertCheck> {
    open.iter()
        .filter(|a| {
            a.alert.get("ends_at").and_then(|e| serde_json::from_value::<Timestamp>(e.clone()).ok()).is_some_and(|e| e <= now)
        })
        .map(|a| AlertCheck {
            rule: a.rule.clone(),
            episode: a.episode.clone(),
            level: Level::Known { known: false },
            alert: a.alert.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).expect("catalog");
        c.doc.alerts = vec![crate::catalog::AlertRule {
            feature: Some("monthly_ai_credits".into()),
            percent_used: vec![80, 100],
            units_left: vec![],
            event: None,
            days: None,
        }];
        c
    }

    #[test]
    fn a_subscription_rule_turns_only_for_moments_in_its_range() {
        let mut c = catalog();
        let rule = |event, days| crate::catalog::AlertRule {
            feature: None,
            percent_used: vec![],
            units_left: vec![],
            event: Some(event),
            days,
        };
        let grace = [SubscriptionEvent::GraceEnding, SubscriptionEvent::GraceEnded];
        let now = Timestamp(1_800_000_000);
        let since = now.plus_days(-1);
        assert_eq!(turning(&c, &grace, since, now), None, "no rule of these events: nothing turns");
        c.doc.alerts = vec![rule(SubscriptionEvent::GraceEnding, Some(3)), rule(SubscriptionEvent::GraceEnded, None),
                            rule(SubscriptionEvent::TrialEnding, Some(7))];
        let (from, to) = turning(&c, &grace, since, now).unwrap();
        assert_eq!((from, to), (since, now.plus_days(3)));
        // Every moment for which a rule turns is in the range, and its ends are reached.
        let mut at = now.plus_days(-3);
        let mut hits = Vec::new();
        while at <= now.plus_days(10) {
            if turned(&c, &grace, Some(at), since, now) {
                assert!(from < at && at <= to, "{at} turned outside ({from}, {to}]");
                hits.push(at);
            }
            at = at.plus_seconds(900);
        }
        assert_eq!(hits.last(), Some(&to), "grace_ending opens for a grace ending 3 days from now");
        assert!(hits.first().is_some_and(|h| h.plus_seconds(-900) <= from), "grace_ended opens for one that ended in the last day");
        assert_eq!(turning(&c, &[SubscriptionEvent::TrialEnding], since, now), Some((since, now.plus_days(7))));
    }

    #[test]
    fn a_limit_gives_one_check_per_threshold_in_units_rounded_up() {
        let c = catalog();
        let w = Timestamp(1_800_000_000);
        let checks = limit_checks(&c, "monthly_ai_credits", "monthly_ai_credits", w, Some(w.plus_days(30)), 2000);
        let units: Vec<(String, u64)> = checks
            .iter()
            .map(|k| match &k.level {
                Level::CounterAtLeast { at_least, .. } => (k.rule.clone(), *at_least),
                l => panic!("{l:?}"),
            })
            .collect();
        assert_eq!(units, vec![("limit:monthly_ai_credits:80%".into(), 1600), ("limit:monthly_ai_credits:100%".into(), 2000)]);
        assert!(checks.iter().all(|k| k.episode == format!("{w}/2000")), "each window crosses once per limit");
        let three = limit_checks(&c, "monthly_ai_credits", "x", w, None, 3);
        assert!(matches!(three[0].level, Level::CounterAtLeast { at_least: 3, .. }), "80% of 3 is the 3rd");
        assert_eq!(three[0].episode, "", "no window: a release may resolve it and a new use cross again");
        assert!(limit_checks(&c, "other", "other", w, None, 3).is_empty());
    }

    #[test]
    fn a_window_that_ended_resolves_its_alerts_and_only_those() {
        let c = catalog();
        let w = Timestamp(1_800_000_000);
        let open: Vec<OpenAlert> = limit_checks(&c, "monthly_ai_credits", "monthly_ai_credits", w, Some(w.plus_days(30)), 2000)
            .into_iter()
            .map(|k| OpenAlert { rule: k.rule, episode: k.episode, alert: k.alert })
            .collect();
        assert!(lapsed(&open, w.plus_days(29)).is_empty());
        let done = lapsed(&open, w.plus_days(30));
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|k| k.level == Level::Known { known: false }));
    }

    #[test]
    fn levels_serialise_as_the_store_reads_them() {
        let l = Level::CounterAtLeast { counter: "c".into(), window_start: Timestamp(0), at_least: 3 };
        assert_eq!(serde_json::to_value(&l).unwrap(), json!({"counter": "c", "window_start": "1970-01-01T00:00:00Z", "at_least": 3}));
        assert_eq!(serde_json::to_value(Level::Known { known: true }).unwrap(), json!({"known": true}));
        assert_eq!(serde_json::to_value(Level::BalanceBelow { pool: "p".into(), below: 300 }).unwrap(), json!({"pool": "p", "below": 300}));
    }
}
