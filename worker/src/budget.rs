//! How many outbound requests one invocation may still make.
//!
//! The Workers runtime ends every `fetch` past a plan's subrequest limit (50 an invocation
//! on Workers Free, 10,000 by default on Workers Paid), and the store is reached through
//! `fetch`, so a scheduled run that meets a large backlog must stop asking before that
//! limit, not at it: past it every request fails, and the work after it (expiry, held
//! uses, the outbox) would never get its turn. A [`Budget`] counts the requests actually
//! made (the store's and the app's own, [`crate::ctx::Ctx::requests`]) from its start
//! against `SUBREQUESTS`, and hands the work out in units: a unit starts only while what
//! is left of its share covers the most any unit has taken so far in this invocation.
//!
//! A run's phases share what is left in turn (`phase(n)`: an equal part of it between
//! the `n` phases still to come), so a phase with nothing to do leaves its part to the
//! ones after it, and no phase, however much waits in it, takes the others' turn. What a
//! phase leaves undone stays in the store and the next run goes on with it.

use std::cell::Cell;

/// What one invocation may still ask of the network.
pub struct Budget<'a> {
    limit: u64,
    made: &'a dyn Fn() -> u64,
    start: u64,
    /// Where the current phase's share ends, in requests from `start`.
    share_end: Cell<u64>,
    /// The most one unit has taken so far (at least one request).
    unit: Cell<u64>,
    /// Whether some unit was not started for want of requests.
    short: Cell<bool>,
}

impl<'a> Budget<'a> {
    /// A budget of `limit` requests from now, counting with `made` (the requests made so
    /// far, by any measure that only grows). Until a phase is named, all of it is one share.
    pub fn new(limit: u64, made: &'a dyn Fn() -> u64) -> Budget<'a> {
        Budget { limit, made, start: made(), share_end: Cell::new(limit), unit: Cell::new(1), short: Cell::new(false) }
    }

    /// The requests made since the start.
    pub fn used(&self) -> u64 {
        (self.made)().saturating_sub(self.start)
    }

    /// The budget's size.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Starts a phase that shares what is left equally with the `phases - 1` after it.
    pub fn phase(&self, phases: u64) {
        let used = self.used();
        let left = self.limit.saturating_sub(used);
        self.share_end.set(used + left / phases.max(1));
    }

    /// Whether `units` more units fit in the current share (each counted as the most one
    /// has taken so far); when they do not, the budget remembers that work was left.
    pub fn affords(&self, units: u64) -> bool {
        self.fits(units * self.unit.get())
    }

    /// Whether `requests` more requests fit in the current share, counted as they are (for
    /// work whose requests are known beforehand); when they do not, the budget remembers
    /// that work was left.
    pub fn fits(&self, requests: u64) -> bool {
        let fits = self.used() + requests <= self.share_end.get();
        if !fits {
            self.short.set(true);
        }
        fits
    }

    /// How many requests are left in the current share.
    pub fn room(&self) -> u64 {
        self.share_end.get().saturating_sub(self.used())
    }

    /// Runs one unit of work if it fits ([`Budget::affords`]), and learns what it took;
    /// `None` when it does not fit (nothing was done).
    pub async fn unit<R>(&self, work: impl std::future::Future<Output = R>) -> Option<R> {
        if !self.affords(1) {
            return None;
        }
        let before = self.used();
        let r = work.await;
        self.unit.set(self.unit.get().max(self.used() - before));
        Some(r)
    }

    /// Whether some work was left for want of requests since the last call.
    pub fn take_short(&self) -> bool {
        self.short.replace(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn phases_share_what_is_left_and_units_learn_their_cost() {
        let made = Cell::new(100u64);
        let count = || made.get();
        let b = Budget::new(20, &count);
        // Units of three requests each, until one does not fit: how many ran.
        let units = async || {
            let mut done = 0;
            while b.unit(async { made.set(made.get() + 3) }).await.is_some() {
                done += 1;
            }
            done
        };
        b.phase(2);
        // The share of ten fits three such units (1 + 3 + 3 + 3).
        assert_eq!((units().await, b.used()), (3, 9));
        assert!(b.take_short() && !b.take_short());
        // The last phase takes all that is left: 11 requests, three units of three.
        b.phase(1);
        assert_eq!((units().await, b.used()), (3, 18));
        assert!(b.used() <= b.limit());
    }

    #[test]
    fn a_phase_with_nothing_to_do_leaves_its_share_to_the_next() {
        let made = Cell::new(0u64);
        let count = || made.get();
        let b = Budget::new(30, &count);
        b.phase(3);
        made.set(1); // one read, nothing found
        b.phase(2);
        assert!(b.affords(14) && !b.affords(15));
        assert_eq!(b.room(), 14);
    }
}
