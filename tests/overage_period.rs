//! The billing period an overage cap counts over (`meter::overage_period`): the counter
//! is kept per window start, so a window that moves inside one billing period starts an
//! empty count and gives the whole cap again. It holds still when another subscription is
//! bought mid-period, when two subscriptions renew on different days, and when a renewal
//! is told after its boundary.

use tollgate::meter::{overage_period, BillingPeriod};
use tollgate::Timestamp;

const DAY: i64 = 86_400;
/// 2027-01-01T00:00:00Z.
const D0: i64 = 1_798_761_600;

fn t(days: i64) -> Timestamp {
    Timestamp(D0 + days * DAY)
}

/// The current period at `now` of a 30-day subscription had since day `from`, as the store
/// answers it once its renewals are told.
fn current(from: i64, now: Timestamp) -> BillingPeriod {
    let k = (now.0 - t(from).0).div_euclid(30 * DAY);
    BillingPeriod { since: t(from), start: Timestamp(t(from).0 + k * 30 * DAY), end: Timestamp(t(from).0 + (k + 1) * 30 * DAY) }
}

fn period(since: i64, start: i64, end: i64) -> BillingPeriod {
    BillingPeriod { since: t(since), start: t(start), end: t(end) }
}

/// Plan A from day 0; on day 10 the subject also subscribes to B (another product).
#[test]
fn a_second_subscription_does_not_start_a_new_window_mid_period() {
    let before = overage_period(&[period(0, 0, 30)], t(9));
    assert_eq!((before.start, before.resets_at), (t(0), Some(t(30))));
    let after = overage_period(&[period(0, 0, 30), period(10, 10, 40)], t(11));
    assert_eq!((after.start, after.resets_at), (t(0), Some(t(30))), "buying B moved the window");
    // The order the store lists them in does not matter.
    assert_eq!(overage_period(&[period(10, 10, 40), period(0, 0, 30)], t(11)), after);
}

/// Two staggered monthly subscriptions: the window turns once a period, with the oldest.
#[test]
fn staggered_subscriptions_turn_the_window_once_a_period() {
    let mut turns: Vec<i64> = Vec::new();
    let mut key = None;
    for h in (0..90 * 24).step_by(6) {
        let now = Timestamp(D0 + h * 3600);
        let mut periods = vec![current(0, now)];
        if now >= t(10) {
            periods.push(current(10, now));
        }
        let start = overage_period(&periods, now).start;
        if key.is_some_and(|k| k != start) {
            turns.push((now.0 - D0) / DAY);
        }
        key = Some(start);
    }
    assert_eq!(turns, [30, 60], "the window turned on days {turns:?}");
}

/// A renewal told hours after the boundary: before it arrives the window is the period
/// that follows the one on file, the same the renewal then tells.
#[test]
fn a_renewal_told_after_the_boundary_does_not_move_the_window() {
    let untold = overage_period(&[period(5, 5, 35)], Timestamp(t(35).0 + 1800));
    let told = overage_period(&[period(5, 35, 65)], Timestamp(t(35).0 + 7200));
    assert_eq!((untold.start, untold.resets_at), (t(35), Some(t(65))));
    assert_eq!(untold, told);
    // Long untold (the provider's events lost for two periods): still periods of its length.
    assert_eq!(overage_period(&[period(5, 5, 35)], t(70)).start, t(65));
}

/// Without a running subscription (or only one whose period has not begun), the calendar month.
#[test]
fn without_a_period_the_calendar_month() {
    let w = overage_period(&[], t(40));
    assert_eq!((w.start, w.resets_at), (t(31), Some(t(59))));
    assert_eq!(overage_period(&[period(0, 50, 80)], t(40)), w);
}
