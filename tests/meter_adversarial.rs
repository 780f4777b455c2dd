//! An adversarial look at usage limits, their windows and their alerts (`tollgate::meter`,
//! `tollgate::alerts`): window boundaries exactly at `now` (midnight, month ends, leap
//! days, the years 0000 and 9999), a past-due subscription's windows before its renewal
//! is told, counts at exactly the limit, limits of 0, unlimited and near u64's end, the
//! keys a use is recorded under, a plan change within a window, an organization's limits
//! beside a member's own, thresholds crossed exactly, once per window, and answers that do
//! not depend on the order grants or periods are listed in.

#[path = "events/support.rs"]
mod support;
mod common;

use common::shipped_src;
use proptest::prelude::*;
use support::shipped;
use tollgate::alerts::{self, AlertCheck, Level, OpenAlert};
use tollgate::billing::facts::Subject;
use tollgate::catalog::{AlertRule, LimitPeriod};
use tollgate::decide::Reason;
use tollgate::meter::{self, BillingPeriod, Remaining, Track, Use, Window};
use tollgate::{Catalog, Entitlements, Grant, Source, Status, Timestamp};

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// The Razorpay AI app with its monthly limit counted over the billing period instead.
fn billing_period_catalog() -> Catalog {
    let src = shipped_src("razorpay-ai").replace(
        "period = \"month\"\nanchor = \"subscription\"",
        "period = \"billing_period\"",
    );
    Catalog::from_toml(&src).unwrap()
}

fn grant(id: &str, product: &str, tier: &str, offer: Option<&str>, from: &str) -> Grant {
    Grant {
        id: id.into(),
        product: product.into(),
        tier: tier.into(),
        source: Source::Razorpay,
        status: Status::Active,
        valid_from: ts(from),
        valid_to: None,
        past_due_since: None,
        offer: offer.map(str::to_string),
        source_ref: offer.map(|_| format!("razorpay:{id}")),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

/// A Razorpay AI app subscriber of `offer`, in its paid period `[start, end)`.
fn subscriber(offer: &str, since: &str, start: &str, end: &str) -> Grant {
    let tier = if offer.starts_with("ENTERPRISE") {
        "ENTERPRISE"
    } else {
        "PREMIUM"
    };
    Grant {
        period_start: Some(ts(start)),
        valid_to: Some(ts(end)),
        ..grant("sub_1", "premium", tier, Some(offer), since)
    }
}

/// The VCM Suite's subject holding `tier` since 2026-01-01.
fn vcm_holding(tier: &str) -> Entitlements {
    Entitlements::new(vec![grant(
        "g1",
        "suite",
        tier,
        None,
        "2026-01-01T00:00:00Z",
    )])
}

const RUNS: &str = "workflow_runs_per_day";
const CREDITS: &str = "monthly_ai_credits";

fn span(w: &Window) -> (Timestamp, Option<Timestamp>) {
    (w.start, w.resets_at)
}

/// The `period` window at `now` starts at `start` and resets at `resets`.
fn assert_window(period: LimitPeriod, now: &str, start: &str, resets: &str) {
    let got = span(&meter::window(period, ts(now)));
    assert_eq!(got, (ts(start), Some(ts(resets))), "{period:?} at {now}");
}

// ------------------------------------------------------------------------------------------
// Calendar windows
// ------------------------------------------------------------------------------------------

#[test]
fn calendar_windows_turn_exactly_at_midnight_and_the_first_of_the_month() {
    let day = |now, start, resets| assert_window(LimitPeriod::Day, now, start, resets);
    let month = |now, start, resets| assert_window(LimitPeriod::Month, now, start, resets);
    // A boundary exactly at `now` belongs to the window it starts.
    day("2026-03-06T00:00:00Z", "2026-03-06T00:00:00Z", "2026-03-07T00:00:00Z");
    day("2026-03-05T23:59:59Z", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z");
    // January's last second, then February: of a leap year and of a common one.
    month("2028-01-31T23:59:59Z", "2028-01-01T00:00:00Z", "2028-02-01T00:00:00Z");
    month("2028-02-01T00:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z");
    month("2028-02-29T23:59:59Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z");
    month("2100-02-28T12:00:00Z", "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z");
    month("2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z");
    // An offset is read as the UTC instant it names: 00:30 in India is the 31st in UTC.
    month("2027-01-01T00:30:00+05:30", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z");
    // Before the epoch, a day still starts at midnight (not rounded towards 1970).
    day("1969-12-31T12:00:00Z", "1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z");
    // The ends of the readable range: the window holds `now` and resets after it.
    let last = span(&meter::window(LimitPeriod::Month, Timestamp::MAX));
    assert_eq!(last.0, ts("9999-12-01T00:00:00Z"));
    assert_eq!(last.1, Some(Timestamp(Timestamp::MAX.0 + 1)));
    assert_eq!(
        span(&meter::window(LimitPeriod::Day, Timestamp::MAX)).1,
        Some(Timestamp(Timestamp::MAX.0 + 1))
    );
    assert_eq!(
        span(&meter::window(LimitPeriod::Month, Timestamp::MIN)),
        (Timestamp::MIN, Some(ts("0000-02-01T00:00:00Z")))
    );
    // A limit without a period counts for ever.
    assert_eq!(
        span(&meter::window(LimitPeriod::None, Timestamp::MAX)),
        (Timestamp(0), None)
    );
}

proptest! {
    /// Any instant of the years 0000 to 9999: the day's and the month's window hold it,
    /// start on a midnight (the month's on its first), and the next window starts exactly
    /// where this one resets (no instant is in two windows or in none).
    #[test]
    fn calendar_windows_hold_now_and_tile_time(secs in Timestamp::MIN.0..=Timestamp::MAX.0) {
        let now = Timestamp(secs);
        for period in [LimitPeriod::Day, LimitPeriod::Month] {
            let w = meter::window(period, now);
            let end = w.resets_at.expect("a calendar window resets");
            prop_assert!(w.start <= now && now < end, "{period:?} {w:?} at {now}");
            prop_assert_eq!(w.start.0.rem_euclid(86_400), 0);
            prop_assert_eq!(meter::window(period, end).start, end);
            prop_assert_eq!(meter::window(period, Timestamp(end.0 - 1)), w);
            if period == LimitPeriod::Month {
                prop_assert!(w.start.to_rfc3339().contains("-01T00:00:00"), "{}", w.start);
                prop_assert!((28 * 86_400..=31 * 86_400).contains(&(end.0 - w.start.0)));
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Windows anchored to a subscription
// ------------------------------------------------------------------------------------------

proptest! {
    /// A monthly window anchored to a yearly subscription started at any second from the
    /// year 1 to the year 9998, at any later instant: the window holds `now`, the next one
    /// starts where it resets, and each starts on the subscription's day (the month's last
    /// when shorter) at its time of day.
    #[test]
    fn anchored_windows_hold_now_and_tile_time(
        from in ts("0001-01-01T00:00:00Z").0..ts("9998-01-01T00:00:00Z").0,
        after in 0i64..(40 * 366 * 86_400),
    ) {
        let cat = shipped("razorpay-ai");
        let li = cat.limit_index(CREDITS).unwrap();
        let mut g = grant("sub_y", "premium", "PREMIUM", Some("PREMIUM_YEARLY"), "2026-01-01T00:00:00Z");
        g.valid_from = Timestamp(from);
        let ents = Entitlements::new(vec![g]);
        let now = Timestamp(from + after);
        let w = meter::limit_window(&cat, &ents, li, now);
        let end = w.resets_at.expect("resets");
        prop_assert!(w.start <= now && now < end, "{w:?} at {now}");
        prop_assert_eq!(meter::limit_window(&cat, &ents, li, end).start, end);
        prop_assert_eq!(meter::limit_window(&cat, &ents, li, Timestamp(end.0 - 1)), w);
        prop_assert_eq!(w.start.0.rem_euclid(86_400), from.rem_euclid(86_400), "the subscription's time of day");
        prop_assert!((28 * 86_400..=31 * 86_400).contains(&(end.0 - w.start.0)));
    }
}

/// A monthly Razorpay subscription billed on the 31st: its provider's periods run Jan 31 to
/// Feb 28, then Feb 28 to Mar 31, then Mar 31 to Apr 30. Its renewal fails and is retried
/// in the grace period: until the renewal is told, the window is the one the renewal's
/// period then opens (it starts where the known period ended), so its arrival does not
/// start an empty count, and no window after a known period starts inside it.
#[test]
fn a_past_due_subscription_counts_on_in_the_window_its_renewal_opens() {
    for cat in [shipped("razorpay-ai"), billing_period_catalog()] {
        let li = cat.limit_index(CREDITS).unwrap();
        // (known period, an instant in the grace after it, the renewal's period)
        let cases = [
            // The known period started on a day February cut short.
            (
                ("2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"),
                "2026-04-02T00:00:00Z",
                "2026-04-30T00:00:00Z",
            ),
            // The known period ended on such a day.
            (
                ("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
                "2026-03-02T00:00:00Z",
                "2026-03-31T00:00:00Z",
            ),
            // A plain month.
            (
                ("2026-03-15T09:30:00Z", "2026-04-15T09:30:00Z"),
                "2026-04-15T09:30:00Z",
                "2026-05-15T09:30:00Z",
            ),
            // A first period shorter than a month (aligned to the 1st by the provider).
            (
                ("2026-03-10T00:00:00Z", "2026-04-01T00:00:00Z"),
                "2026-04-03T00:00:00Z",
                "2026-05-01T00:00:00Z",
            ),
        ];
        for ((start, end), now, next_end) in cases {
            let mut g = subscriber("PREMIUM_MONTHLY", "2026-01-31T00:00:00Z", start, end);
            g.status = Status::PastDue;
            g.past_due_since = Some(ts(end));
            let past_due = Entitlements::new(vec![g.clone()]);
            let w = meter::limit_window(&cat, &past_due, li, ts(now));
            let renewed = Entitlements::new(vec![subscriber(
                "PREMIUM_MONTHLY",
                "2026-01-31T00:00:00Z",
                end,
                next_end,
            )]);
            let told = meter::limit_window(&cat, &renewed, li, ts(now));
            assert_eq!(
                told,
                Window {
                    start: ts(end),
                    resets_at: Some(ts(next_end))
                },
                "setup: the renewal's period"
            );
            assert!(
                w.start >= ts(end),
                "period {start}..{end}: the window at {now} starts inside it: {w:?}"
            );
            assert_eq!(
                w.start, told.start,
                "period {start}..{end}: the renewal's arrival moves the window"
            );
            assert!(
                w.start <= ts(now) && w.resets_at.is_some_and(|r| ts(now) < r),
                "{w:?} holds {now}"
            );
            // The count kept before the renewal is the one read after it.
            assert_eq!(meter::used_in(&told, Some((w.start, 1200))), 1200);
            // It resets when the renewal's period ends, on the billing day.
            assert_eq!(w.resets_at, Some(ts(next_end)), "period {start}..{end}");
        }
    }
}

/// A window boundary exactly at `now`: the paid period's first instant starts its window,
/// and at the period's end an active grant no longer counts (the renewal not told): the
/// subject is on its default tier, counted in the calendar month.
#[test]
fn a_paid_periods_ends_are_window_boundaries_at_now() {
    let cat = shipped("razorpay-ai");
    let li = cat.limit_index(CREDITS).unwrap();
    let ents = Entitlements::new(vec![subscriber(
        "PREMIUM_MONTHLY",
        "2026-01-15T00:00:00Z",
        "2026-03-15T00:00:00Z",
        "2026-04-15T00:00:00Z",
    )]);
    let at_start = meter::limit_window(&cat, &ents, li, ts("2026-03-15T00:00:00Z"));
    assert_eq!(
        span(&at_start),
        (ts("2026-03-15T00:00:00Z"), Some(ts("2026-04-15T00:00:00Z")))
    );
    let last = meter::check(&cat, &ents, CREDITS, 1, 1999, ts("2026-04-14T23:59:59Z")).unwrap();
    assert_eq!(
        (last.allowed, last.limit, last.resets_at),
        (
            true,
            Remaining::Count(2000),
            Some(ts("2026-04-15T00:00:00Z"))
        )
    );
    let at_end = meter::check(&cat, &ents, CREDITS, 1, 0, ts("2026-04-15T00:00:00Z")).unwrap();
    assert_eq!(
        (at_end.allowed, at_end.limit, at_end.tier.as_deref()),
        (false, Remaining::Count(0), Some("FREE"))
    );
    assert_eq!(at_end.resets_at, Some(ts("2026-05-01T00:00:00Z")));
}

/// A subscription started in the year 1 and asked about in the year 9999: the windows are
/// found without walking the months in between, and hold `now`.
#[test]
fn windows_far_from_their_anchor_answer() {
    let cat = shipped("razorpay-ai");
    let li = cat.limit_index(CREDITS).unwrap();
    let ents = Entitlements::new(vec![grant(
        "sub_y",
        "premium",
        "PREMIUM",
        Some("PREMIUM_YEARLY"),
        "0001-01-31T06:00:00Z",
    )]);
    let w = meter::limit_window(&cat, &ents, li, Timestamp::MAX);
    assert_eq!(
        span(&w),
        (
            ts("9999-12-31T06:00:00Z"),
            Some(Timestamp(ts("9999-12-31T06:00:00Z").0 + 31 * 86_400))
        )
    );
    let w = meter::limit_window(&cat, &ents, li, ts("9999-02-28T12:00:00Z"));
    assert_eq!(
        span(&w),
        (ts("9999-02-28T06:00:00Z"), Some(ts("9999-03-31T06:00:00Z")))
    );
    // An overage period had since the year 0 and long untold still steps in its length.
    let p = BillingPeriod {
        since: Timestamp::MIN,
        start: Timestamp::MIN,
        end: Timestamp(Timestamp::MIN.0 + 30 * 86_400),
    };
    let w = meter::overage_period(&[p], Timestamp::MAX);
    assert!(
        w.start <= Timestamp::MAX && w.resets_at.is_some_and(|r| Timestamp::MAX < r),
        "{w:?}"
    );
    assert_eq!((w.start.0 - p.start.0) % (30 * 86_400), 0);
}

// ------------------------------------------------------------------------------------------
// Counts at the limit
// ------------------------------------------------------------------------------------------

#[test]
fn a_count_at_exactly_the_limit_is_refused_and_one_below_takes_the_last_unit() {
    let cat = shipped("vcm-suite");
    let now = ts("2026-03-05T12:00:00Z");
    let starter = vcm_holding("starter");
    let last = meter::check(&cat, &starter, RUNS, 1, 2, now).unwrap();
    assert_eq!(
        (last.allowed, last.remaining, last.used),
        (true, Remaining::Count(0), 2)
    );
    let at = meter::check(&cat, &starter, RUNS, 1, 3, now).unwrap();
    assert_eq!(
        (at.allowed, at.reason, at.remaining),
        (false, Reason::LimitReached, Remaining::Count(0))
    );
    // All three at once from nothing: exactly the limit.
    let whole = meter::check(&cat, &starter, RUNS, 3, 0, now).unwrap();
    assert_eq!(
        (whole.allowed, whole.remaining),
        (true, Remaining::Count(0))
    );
    assert!(
        !meter::check(&cat, &starter, RUNS, 4, 0, now)
            .unwrap()
            .allowed
    );
    // Over the limit already (counted under a higher limit, then downgraded): refused,
    // nothing remains, and the count is told as it is.
    let over = meter::check(&cat, &starter, RUNS, 1, 7, now).unwrap();
    assert_eq!(
        (over.allowed, over.remaining, over.used),
        (false, Remaining::Count(0), 7)
    );
}

#[test]
fn a_limit_of_zero_refuses_every_use_and_names_an_upgrade() {
    let cat = shipped("vcm-suite");
    let now = ts("2026-03-05T12:00:00Z");
    let free = vcm_holding("free");
    let c = meter::check(&cat, &free, RUNS, 1, 0, now).unwrap();
    assert_eq!(
        (c.allowed, c.reason, c.limit, c.remaining),
        (
            false,
            Reason::LimitReached,
            Remaining::Count(0),
            Remaining::Count(0)
        )
    );
    assert!(c.upgrade.is_some(), "a plan with runs is named");
    let s = Subject::user("u1");
    let u = Use {
        subject: &s,
        idempotency_key: "k",
        feature: RUNS,
        quantity: 1,
        scope: None,
        actor: None,
    };
    assert!(
        matches!(
            meter::track(&cat, &free, &u, 0, now).unwrap(),
            Track::Refuse(_)
        ),
        "nothing is counted"
    );
}

#[test]
fn counts_near_u64s_end_never_overflow() {
    let cat = shipped("vcm-suite");
    let now = ts("2026-03-05T12:00:00Z");
    let q = meter::MAX_QUANTITY;
    for used in [u64::MAX, u64::MAX - 1, u64::MAX - q, 1 << 63] {
        let starter = meter::check(&cat, &vcm_holding("starter"), RUNS, q, used, now).unwrap();
        assert_eq!(
            (starter.allowed, starter.remaining),
            (false, Remaining::Count(0))
        );
        // Unlimited stays unlimited however much was counted.
        let basic = meter::check(&cat, &vcm_holding("basic"), RUNS, q, used, now).unwrap();
        assert_eq!(
            (basic.allowed, basic.remaining, basic.limit),
            (true, Remaining::Unlimited, Remaining::Unlimited)
        );
    }
    // The largest limit a catalog may name (what the store counts, i64's end): the last
    // unit is taken, then nothing is left; a count past it (a store's, never the core's)
    // is refused, not wrapped.
    let top = i64::MAX as u64;
    let huge = with_enterprise_limit(top);
    let ents = Entitlements::new(vec![grant(
        "g",
        "premium",
        "ENTERPRISE",
        None,
        "2026-01-01T00:00:00Z",
    )]);
    let c = meter::check(&huge, &ents, CREDITS, 1, top - 1, now).unwrap();
    assert_eq!((c.allowed, c.remaining), (true, Remaining::Count(0)));
    let c = meter::check(&huge, &ents, CREDITS, q, top - q, now).unwrap();
    assert_eq!((c.allowed, c.remaining), (true, Remaining::Count(0)));
    for used in [top, u64::MAX] {
        assert!(!meter::check(&huge, &ents, CREDITS, 1, used, now).unwrap().allowed);
    }
}

/// The Razorpay AI app with Enterprise's monthly limit set to `n`.
fn with_enterprise_limit(n: u64) -> Catalog {
    let mut c = shipped("razorpay-ai");
    let li = c.limit_index(CREDITS).unwrap();
    c.doc.limits[li].values.insert(
        "ENTERPRISE".into(),
        tollgate::catalog::LimitValue::Limited(n),
    );
    Catalog::from_doc(c.doc).unwrap()
}

// ------------------------------------------------------------------------------------------
// The keys a use is recorded under
// ------------------------------------------------------------------------------------------

/// A retry of one use (the same key and body) is the same request whatever the count or
/// the time it is decided at, also across a window boundary, so the store records it once;
/// the same key for another body is told apart (refused as a key reused), and two
/// subjects', or two members', uses under one key are two uses.
#[test]
fn one_key_names_one_use_whenever_it_is_retried() {
    let cat = shipped("vcm-suite");
    let ents = vcm_holding("starter");
    let s = Subject::user("u1");
    let asked = Use {
        subject: &s,
        idempotency_key: "k-1",
        feature: RUNS,
        quantity: 1,
        scope: None,
        actor: None,
    };
    let count = |u: &Use, used: u64, now: &str| match meter::track(&cat, &ents, u, used, ts(now))
        .unwrap()
    {
        Track::Allow(_, Some(c)) => c,
        other => panic!("counted: {other:?}"),
    };
    let first = count(&asked, 0, "2026-03-05T23:59:59Z");
    let retry = count(&asked, 2, "2026-03-06T00:00:00Z");
    assert_eq!(
        (&first.request_id, &first.request_hash),
        (&retry.request_id, &retry.request_hash)
    );
    assert_ne!(
        first.window_start, retry.window_start,
        "setup: the retry is decided in the next window"
    );
    let two = count(
        &Use {
            quantity: 2,
            ..asked
        },
        0,
        "2026-03-05T12:00:00Z",
    );
    assert_eq!(two.request_id, first.request_id);
    assert_ne!(
        two.request_hash, first.request_hash,
        "another body under the same key"
    );
    let scoped = count(
        &Use {
            scope: Some("p1"),
            ..asked
        },
        0,
        "2026-03-05T12:00:00Z",
    );
    assert_ne!(
        scoped.request_hash, first.request_hash,
        "another counter under the same key"
    );
    let other = Subject::user("u2");
    let theirs = count(
        &Use {
            subject: &other,
            ..asked
        },
        0,
        "2026-03-05T12:00:00Z",
    );
    assert_ne!(theirs.request_id, first.request_id);
    let org = Subject::org("o1");
    let (a, b) = (Subject::user("u1"), Subject::user("u2"));
    let by_a = meter::use_keys(
        &Use {
            subject: &org,
            actor: Some(&a),
            ..asked
        },
        RUNS,
    );
    let by_b = meter::use_keys(
        &Use {
            subject: &org,
            actor: Some(&b),
            ..asked
        },
        RUNS,
    );
    let by_org = meter::use_keys(
        &Use {
            subject: &org,
            actor: None,
            ..asked
        },
        RUNS,
    );
    assert_ne!(
        by_a.0, by_b.0,
        "two members' uses under one key are two uses"
    );
    assert_ne!(by_a.0, by_org.0);
    assert_eq!(by_a.1, by_b.1, "the same body");
}

// ------------------------------------------------------------------------------------------
// Plan changes, organizations
// ------------------------------------------------------------------------------------------

/// A plan changed within a day's window: the count stays (the window is the same), and the
/// limit is the new tier's, in both directions.
#[test]
fn a_plan_change_within_a_window_applies_the_new_limit_to_the_same_count() {
    let cat = shipped("vcm-suite");
    let change = ts("2026-03-05T12:00:00Z");
    let mut starter = grant(
        "g_starter",
        "suite",
        "starter",
        None,
        "2026-01-01T00:00:00Z",
    );
    starter.valid_to = Some(change);
    let basic = grant("g_basic", "suite", "basic", None, "2026-03-05T12:00:00Z");
    let ents = Entitlements::new(vec![starter, basic]);
    let li = cat.limit_index(RUNS).unwrap();
    let before = ts("2026-03-05T11:59:59Z");
    assert_eq!(
        meter::limit_window(&cat, &ents, li, before),
        meter::limit_window(&cat, &ents, li, change)
    );
    assert!(
        !meter::check(&cat, &ents, RUNS, 1, 3, before)
            .unwrap()
            .allowed
    );
    let up = meter::check(&cat, &ents, RUNS, 1, 3, change).unwrap();
    assert_eq!(
        (up.allowed, up.limit, up.tier.as_deref()),
        (true, Remaining::Unlimited, Some("basic"))
    );
    // Back down the next hour, with 5 counted: refused, nothing left.
    let mut down = ents.clone();
    down.grants[1].valid_to = Some(ts("2026-03-05T13:00:00Z"));
    down.grants.push(grant(
        "g_starter2",
        "suite",
        "starter",
        None,
        "2026-03-05T13:00:00Z",
    ));
    let c = meter::check(&cat, &down, RUNS, 1, 5, ts("2026-03-05T13:00:00Z")).unwrap();
    assert_eq!(
        (c.allowed, c.remaining, c.limit),
        (false, Remaining::Count(0), Remaining::Count(3))
    );
}

/// A member seated in an organization on Professional: the organization's limits count for
/// the organization (acting for it), never as the member's own, which are its own plan's
/// (the default tier here), from its own entitlements or from a snapshot merged with the
/// organization's grants alike.
#[test]
fn an_organizations_limits_are_not_a_members_own() {
    let cat = shipped("org-seats");
    let now = ts("2026-03-10T00:00:00Z");
    let mut pro = grant(
        "stripe:sub_org:org",
        "org",
        "PROFESSIONAL",
        Some("ORG_PROFESSIONAL_MONTHLY"),
        "2026-03-01T00:00:00Z",
    );
    pro.valid_to = Some(ts("2026-04-01T00:00:00Z"));
    let orgs = vec![("o1".to_string(), true, vec![pro])];
    let own = tollgate::seats::for_own_use(Entitlements::default(), &orgs, true);
    let merged = tollgate::seats::merge_seated_grants(Entitlements::default(), &orgs);
    let org = tollgate::seats::acting_for("o1", &orgs).unwrap();
    let limit = |e: &Entitlements| {
        meter::check(&cat, e, "max_courses_authored", 1, 0, now)
            .unwrap()
            .limit
    };
    assert_eq!(limit(&own), Remaining::Count(1));
    assert_eq!(
        limit(&merged),
        Remaining::Count(1),
        "a lent grant gives no limit"
    );
    assert_eq!(limit(&org), Remaining::Count(10));
    // A member's own count at its own limit is refused; acting for the organization it is not.
    assert!(
        !meter::check(&cat, &merged, "max_courses_authored", 1, 1, now)
            .unwrap()
            .allowed
    );
    assert!(
        meter::check(&cat, &org, "max_courses_authored", 1, 1, now)
            .unwrap()
            .allowed
    );
    // And its alerts are the organization's limit's.
    let mut c = cat.clone();
    c.doc.alerts = vec![rule("max_courses_authored", vec![100], vec![])];
    let at = |e: &Entitlements| {
        levels(&meter::limit_alert_checks(
            &c,
            e,
            "max_courses_authored",
            "max_courses_authored",
            now,
        ))
    };
    assert_eq!(
        at(&org),
        vec![("limit:max_courses_authored:100%".into(), 10)]
    );
    assert_eq!(
        at(&merged),
        vec![("limit:max_courses_authored:100%".into(), 1)]
    );
}

// ------------------------------------------------------------------------------------------
// Alerts
// ------------------------------------------------------------------------------------------

fn rule(feature: &str, percent_used: Vec<u32>, units_left: Vec<i64>) -> AlertRule {
    AlertRule {
        feature: Some(feature.into()),
        percent_used,
        units_left,
        event: None,
        days: None,
    }
}

fn levels(checks: &[AlertCheck]) -> Vec<(String, u64)> {
    checks
        .iter()
        .map(|k| match &k.level {
            Level::CounterAtLeast { at_least, .. } => (k.rule.clone(), *at_least),
            l => panic!("a limit's level is a count: {l:?}"),
        })
        .collect()
}

proptest! {
    /// A share of a limit crosses at the first count that reaches it (`count / limit >=
    /// p%`), never before; a number of units left crosses at the first count that leaves
    /// fewer (at the first use at the latest); every threshold is reached by the limit
    /// itself, so a window used to its end crosses them all.
    #[test]
    fn thresholds_cross_at_exactly_the_count_that_reaches_them(
        limit in prop_oneof![1u64..5_000, Just(u64::MAX), (1u64 << 60)..u64::MAX],
        percent in 1u32..=100,
        left in 1i64..6_000,
    ) {
        let mut cat = shipped("razorpay-ai");
        cat.doc.alerts = vec![rule(CREDITS, vec![percent], vec![left])];
        let w = ts("2026-03-01T00:00:00Z");
        let checks = alerts::limit_checks(&cat, CREDITS, CREDITS, w, Some(ts("2026-04-01T00:00:00Z")), limit);
        let got = levels(&checks);
        prop_assert_eq!(got.len(), 2, "{:?}", got);
        let reaches = |count: u64| u128::from(count) * 100 >= u128::from(limit) * u128::from(percent);
        let at = got[0].1;
        prop_assert!(reaches(at), "{percent}% of {limit} crosses at {at}, which does not reach it");
        prop_assert!(at == 1 || !reaches(at - 1), "{percent}% of {limit} is reached at {} already", at - 1);
        prop_assert!(at <= limit);
        let fewer = |count: u64| u128::from(limit) - u128::from(count) < left as u128;
        let at = got[1].1;
        prop_assert!(at >= 1 && at <= limit && fewer(at), "{left} left of {limit} crosses at {at}");
        prop_assert!(at == 1 || !fewer(at - 1));
    }
}

/// A limit smaller than a units-left threshold has fewer units left than it from the first
/// use: a tier whose whole allowance is below the threshold is told at its first use, not
/// never (the Org Seats' free tier authors one course; "fewer than 2 left" holds at once).
#[test]
fn a_units_left_threshold_above_the_limit_crosses_at_the_first_use() {
    let mut cat = shipped("org-seats");
    cat.doc.alerts = vec![rule("max_courses_authored", vec![], vec![2])];
    let now = ts("2026-03-10T00:00:00Z");
    let free = Entitlements::default();
    let checks = meter::limit_alert_checks(
        &cat,
        &free,
        "max_courses_authored",
        "max_courses_authored",
        now,
    );
    assert_eq!(
        levels(&checks),
        vec![("limit:max_courses_authored:2left".into(), 1)]
    );
    // The refusal at the limit applies the same check, so a crossing missed is opened then.
    let refused = meter::check(&cat, &free, "max_courses_authored", 1, 1, now).unwrap();
    assert_eq!(
        meter::refused_checks(&cat, &free, &refused, "max_courses_authored", now),
        checks
    );
}

/// The checks a counted use applies, those a release applies and those a refusal at the
/// limit applies are the same rules, episodes and levels, so the store opens, keeps and
/// resolves one alert per rule between them; any other refusal applies none.
#[test]
fn a_use_a_release_and_a_refusal_apply_the_same_checks() {
    let cat = shipped("razorpay-ai");
    let s = Subject::user("u1");
    let asked = Use {
        subject: &s,
        idempotency_key: "k",
        feature: CREDITS,
        quantity: 1,
        scope: None,
        actor: None,
    };
    let ents = Entitlements::new(vec![subscriber(
        "PREMIUM_MONTHLY",
        "2026-01-31T00:00:00Z",
        "2026-02-28T00:00:00Z",
        "2026-03-31T00:00:00Z",
    )]);
    for now in [
        "2026-03-01T00:00:00Z",
        "2026-02-28T00:00:00Z",
        "2026-03-30T23:59:59Z",
    ] {
        let now = ts(now);
        let Track::Allow(c, Some(count)) = meter::track(&cat, &ents, &asked, 0, now).unwrap()
        else {
            panic!("counted")
        };
        let on_use = alerts::limit_checks(
            &cat,
            &count.feature,
            &count.counter,
            count.window_start,
            c.resets_at,
            count.max.unwrap(),
        );
        assert_eq!(
            levels(&on_use),
            vec![
                (format!("limit:{CREDITS}:80%"), 1600),
                (format!("limit:{CREDITS}:100%"), 2000)
            ]
        );
        assert_eq!(
            meter::limit_alert_checks(&cat, &ents, CREDITS, CREDITS, now),
            on_use
        );
        let refused = meter::check(&cat, &ents, CREDITS, 1, 2000, now).unwrap();
        assert_eq!(
            meter::refused_checks(&cat, &ents, &refused, CREDITS, now),
            on_use
        );
        assert!(
            on_use
                .iter()
                .all(|k| k.episode == format!("{}/2000", ts("2026-02-28T00:00:00Z"))),
            "{on_use:?}"
        );
    }
    // Refused for want of a plan (a free subject on a limit of 0 is refused at its limit).
    let none = meter::check(
        &cat,
        &Entitlements::default(),
        CREDITS,
        1,
        0,
        ts("2026-03-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(none.reason, Reason::LimitReached);
    let cap = meter::check(
        &cat,
        &Entitlements::default(),
        "ai_generation",
        1,
        0,
        ts("2026-03-01T00:00:00Z"),
    )
    .unwrap();
    assert!(meter::refused_checks(
        &cat,
        &Entitlements::default(),
        &cap,
        "ai_generation",
        ts("2026-03-01T00:00:00Z")
    )
    .is_empty());
}

/// A windowed limit crosses once per window and limit: two instants of one window give one
/// episode (a second crossing there is not told again), the next window another (told
/// again), a changed limit within the window another; a limit without a window has one
/// episode for ever, so the store resolves it when a release goes below and opens it again
/// when a use crosses again.
#[test]
fn a_threshold_is_told_once_per_window_and_limit() {
    let cat = shipped("razorpay-ai");
    let episodes = |ents: &Entitlements, now: &str| -> Vec<String> {
        meter::limit_alert_checks(&cat, ents, CREDITS, CREDITS, ts(now))
            .into_iter()
            .map(|k| k.episode)
            .collect()
    };
    let premium = Entitlements::new(vec![grant(
        "sub_y",
        "premium",
        "PREMIUM",
        Some("PREMIUM_YEARLY"),
        "2026-01-15T00:00:00Z",
    )]);
    let a = episodes(&premium, "2026-03-15T00:00:00Z");
    assert_eq!(a, episodes(&premium, "2026-04-14T23:59:59Z"));
    assert_ne!(a, episodes(&premium, "2026-04-15T00:00:00Z"));
    let mut enterprise = premium.clone();
    enterprise.grants[0].tier = "ENTERPRISE".into();
    assert_ne!(
        a,
        episodes(&enterprise, "2026-03-20T00:00:00Z"),
        "another limit, another episode"
    );
    // Without a window: one episode, and the checks are the same whenever applied.
    let org = shipped("org-seats");
    let mut org = org.clone();
    org.doc.alerts = vec![rule("max_courses_authored", vec![50, 100], vec![1])];
    let e = Entitlements::default();
    let x = meter::limit_alert_checks(
        &org,
        &e,
        "max_courses_authored",
        "max_courses_authored",
        ts("2026-01-01T00:00:00Z"),
    );
    let y = meter::limit_alert_checks(
        &org,
        &e,
        "max_courses_authored",
        "max_courses_authored",
        ts("2031-07-09T00:00:00Z"),
    );
    assert_eq!(x, y);
    assert!(x
        .iter()
        .all(|k| k.episode.is_empty() && k.alert["ends_at"].is_null()));
    // No window, nothing lapses.
    let open: Vec<OpenAlert> = x
        .into_iter()
        .map(|k| OpenAlert {
            rule: k.rule,
            episode: k.episode,
            alert: k.alert,
        })
        .collect();
    assert!(alerts::lapsed(&open, Timestamp::MAX).is_empty());
}

/// A windowed alert lapses exactly at its window's reset, not a second before.
#[test]
fn an_alert_lapses_exactly_when_its_window_resets() {
    let cat = shipped("vcm-suite");
    let mut c = cat.clone();
    c.doc.alerts = vec![rule(RUNS, vec![100], vec![])];
    let now = ts("2026-03-05T12:00:00Z");
    let checks = meter::limit_alert_checks(&c, &vcm_holding("starter"), RUNS, RUNS, now);
    assert_eq!(levels(&checks), vec![(format!("limit:{RUNS}:100%"), 3)]);
    let open: Vec<OpenAlert> = checks
        .into_iter()
        .map(|k| OpenAlert {
            rule: k.rule,
            episode: k.episode,
            alert: k.alert,
        })
        .collect();
    assert!(alerts::lapsed(&open, ts("2026-03-05T23:59:59Z")).is_empty());
    let done = alerts::lapsed(&open, ts("2026-03-06T00:00:00Z"));
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].rule.as_str(), &done[0].level),
        (open[0].rule.as_str(), &Level::Known { known: false })
    );
}

/// The checks come in the catalog's order of rules and thresholds, the same on every call.
#[test]
fn alert_checks_come_in_one_order() {
    let mut cat = shipped("razorpay-ai");
    cat.doc.alerts = vec![
        rule(CREDITS, vec![100, 50, 80], vec![10]),
        rule("ai_credits", vec![], vec![300, 100]),
    ];
    let w = ts("2026-03-01T00:00:00Z");
    let a = alerts::limit_checks(
        &cat,
        CREDITS,
        CREDITS,
        w,
        Some(ts("2026-04-01T00:00:00Z")),
        2000,
    );
    let b = alerts::limit_checks(
        &cat,
        CREDITS,
        CREDITS,
        w,
        Some(ts("2026-04-01T00:00:00Z")),
        2000,
    );
    assert_eq!(a, b);
    let rules: Vec<&str> = a.iter().map(|k| k.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            format!("limit:{CREDITS}:100%"),
            format!("limit:{CREDITS}:50%"),
            format!("limit:{CREDITS}:80%"),
            format!("limit:{CREDITS}:10left")
        ]
    );
    let pools: Vec<String> = alerts::all_pool_checks(&cat)
        .into_iter()
        .map(|k| k.rule)
        .collect();
    assert_eq!(
        pools,
        ["pool:ai_credits:300left", "pool:ai_credits:100left"]
    );
}

// ------------------------------------------------------------------------------------------
// Order independence
// ------------------------------------------------------------------------------------------

fn razorpay_grants() -> Vec<Grant> {
    let mut past_due = subscriber(
        "PREMIUM_MONTHLY",
        "2026-01-31T00:00:00Z",
        "2026-02-28T00:00:00Z",
        "2026-03-31T00:00:00Z",
    );
    past_due.id = "sub_pd".into();
    past_due.status = Status::PastDue;
    past_due.past_due_since = Some(ts("2026-03-31T00:00:00Z"));
    let mut yearly = grant(
        "sub_y",
        "premium",
        "PREMIUM",
        Some("PREMIUM_YEARLY"),
        "2026-02-10T08:00:00Z",
    );
    yearly.valid_to = Some(ts("2027-02-10T08:00:00Z"));
    let mut canceled = subscriber(
        "ENTERPRISE_MONTHLY",
        "2026-03-20T00:00:00Z",
        "2026-03-20T00:00:00Z",
        "2026-04-20T00:00:00Z",
    );
    canceled.id = "sub_e".into();
    canceled.status = Status::Canceled;
    let mut by_hand = grant(
        "admin_1",
        "premium",
        "PREMIUM",
        None,
        "2026-03-25T00:00:00Z",
    );
    by_hand.valid_to = Some(ts("2026-04-05T00:00:00Z"));
    vec![past_due, yearly, canceled, by_hand]
}

proptest! {
    /// The same grants listed in any order give the same check, window and alert checks.
    #[test]
    fn grants_in_any_order_give_the_same_answer(
        order in Just((0..4usize).collect::<Vec<_>>()).prop_shuffle(),
        keep in prop::collection::vec(any::<bool>(), 4),
        hours in 0i64..(24 * 120),
        used in prop_oneof![0u64..10, 1990u64..2010, 4990u64..5010],
    ) {
        let cat = shipped("razorpay-ai");
        let li = cat.limit_index(CREDITS).unwrap();
        let all = razorpay_grants();
        let sorted: Vec<Grant> = all.iter().zip(&keep).filter(|(_, k)| **k).map(|(g, _)| g.clone()).collect();
        let shuffled: Vec<Grant> = order.iter().filter(|i| keep[**i]).map(|i| all[*i].clone()).collect();
        let (a, b) = (Entitlements::new(sorted), Entitlements::new(shuffled));
        let now = Timestamp(ts("2026-02-01T00:00:00Z").0 + hours * 3600);
        prop_assert_eq!(meter::check(&cat, &a, CREDITS, 1, used, now), meter::check(&cat, &b, CREDITS, 1, used, now));
        prop_assert_eq!(meter::limit_window(&cat, &a, li, now), meter::limit_window(&cat, &b, li, now));
        prop_assert_eq!(
            meter::limit_alert_checks(&cat, &a, CREDITS, CREDITS, now),
            meter::limit_alert_checks(&cat, &b, CREDITS, CREDITS, now)
        );
        let w = meter::limit_window(&cat, &a, li, now);
        prop_assert!(w.start <= now && w.resets_at.is_none_or(|r| now < r), "{:?} at {}", w, now);
    }

    /// The periods the store lists, in any order: one overage window, holding `now`.
    #[test]
    fn overage_periods_in_any_order_give_one_window(
        periods in prop::collection::vec((0i64..5, 0i64..90, 1i64..60), 0..5),
        order_key in prop::collection::vec(any::<u32>(), 5),
        day in 0i64..200,
    ) {
        let d0 = ts("2027-01-01T00:00:00Z").0;
        let at = |d: i64| Timestamp(d0 + d * 86_400);
        let ps: Vec<BillingPeriod> = periods.iter().map(|&(since, start, len)| BillingPeriod { since: at(since), start: at(start), end: at(start + len) }).collect();
        let mut shuffled: Vec<(u32, BillingPeriod)> = ps.iter().enumerate().map(|(i, p)| (order_key[i], *p)).collect();
        shuffled.sort_by_key(|(k, _)| *k);
        let shuffled: Vec<BillingPeriod> = shuffled.into_iter().map(|(_, p)| p).collect();
        let now = at(day);
        let w = meter::overage_period(&ps, now);
        prop_assert_eq!(w, meter::overage_period(&shuffled, now));
        prop_assert!(w.start <= now && w.resets_at.is_some_and(|r| now < r), "{:?} at {}", w, now);
    }
}

/// A share of a limit near u64's end is that share, not one cut short by an overflow:
/// 80% of 10^18 is 8 x 10^17.
#[test]
fn a_share_of_a_limit_near_u64s_end_is_not_cut_short() {
    let huge = with_enterprise_limit(1_000_000_000_000_000_000);
    let ents = Entitlements::new(vec![grant(
        "g",
        "premium",
        "ENTERPRISE",
        None,
        "2026-01-01T00:00:00Z",
    )]);
    let checks =
        meter::limit_alert_checks(&huge, &ents, CREDITS, CREDITS, ts("2026-03-05T12:00:00Z"));
    assert_eq!(
        levels(&checks),
        vec![
            (format!("limit:{CREDITS}:80%"), 800_000_000_000_000_000),
            (format!("limit:{CREDITS}:100%"), 1_000_000_000_000_000_000)
        ]
    );
    let max = alerts::limit_checks(&huge, CREDITS, CREDITS, Timestamp(0), None, u64::MAX);
    assert_eq!(
        levels(&max),
        vec![
            (format!("limit:{CREDITS}:80%"), 14_757_395_258_967_641_292),
            (format!("limit:{CREDITS}:100%"), u64::MAX)
        ]
    );
}

proptest! {
    /// A monthly subscriber's known paid period `[start, end)` of any length, past due
    /// after it: in the period the window is the period; in the grace after it the window
    /// starts exactly at its end (where the renewal's period starts) and holds `now`.
    #[test]
    fn the_window_after_a_known_period_starts_at_its_end(
        start in ts("2000-01-01T00:00:00Z").0..ts("2090-01-01T00:00:00Z").0,
        days in 1i64..62,
        into in 0i64..(65 * 86_400),
        billing in any::<bool>(),
    ) {
        let cat = if billing { billing_period_catalog() } else { shipped("razorpay-ai") };
        let li = cat.limit_index(CREDITS).unwrap();
        let end = Timestamp(start + days * 86_400);
        let mut g = grant("sub_1", "premium", "PREMIUM", Some("PREMIUM_MONTHLY"), "1999-12-31T00:00:00Z");
        g.period_start = Some(Timestamp(start));
        g.valid_to = Some(end);
        g.status = Status::PastDue;
        g.past_due_since = Some(end);
        let ents = Entitlements::new(vec![g]);
        let now = Timestamp(start + into);
        let grace_end = end.plus_days(3);
        prop_assume!(now < grace_end);
        let w = meter::limit_window(&cat, &ents, li, now);
        if now < end {
            prop_assert_eq!(w, Window { start: Timestamp(start), resets_at: Some(end) });
        } else {
            prop_assert_eq!(w.start, end, "{:?} at {}", w, now);
            prop_assert!(w.resets_at.is_some_and(|r| now < r && r.0 - end.0 >= 28 * 86_400), "{:?}", w);
        }
    }
}
