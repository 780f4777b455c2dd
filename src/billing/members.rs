//! A member's view of an organization's billing state: whether a seat may be given,
//! and a user's effective entitlements through membership and seat. Here rather than in
//! [`crate::seats`] so that seats (books, capacity) never depend on the billing state.

use super::facts::Subject;
use super::state::BillingState;
use crate::model::Entitlements;
use crate::seats::{org_subject, user_subject, Membership, SeatBook, SeatReason, SeatRefusal};

/// Would a seat of `org` be given to `user` now? The refusal says why not. Asked over a
/// whole billing state (the lifecycle story of `cargo xtask`); the worker, which reads an
/// organization rather than its billing state, asks the same of membership through
/// [`crate::orgs::seat`] (its owners and admins) and [`crate::orgs::operator_seat`] (an
/// operator) before it records a seat, and its fold decides whether one is left.
pub fn check_allocation(
    state: &BillingState,
    org: &str,
    user: &str,
    memberships: &[Membership],
) -> Result<(), SeatRefusal> {
    let (o, u) = (org_subject(org), user_subject(user));
    let book = state.seats.get(&o.to_string()).cloned().unwrap_or_else(|| SeatBook::new(o.clone()));
    let member = memberships.iter().any(|m| org_subject(&m.org) == o && user_subject(&m.user) == u);
    if !member && o.is_org() && !u.is_org() {
        return Err(SeatRefusal {
            reason: SeatReason::NotAMember,
            org: o.to_string(),
            user: u.to_string(),
            seats: book.seats,
            used: book.used(),
            at: None,
            request_id: String::new(),
        });
    }
    book.check(&u, book.seats)
}

/// A user's effective entitlements: their own grants and balances, plus the
/// grants of every organization they are a member of **and** hold a seat in.
/// Organization balances are not shared with members.
pub fn effective_entitlements(state: &BillingState, user: &str, memberships: &[Membership]) -> Entitlements {
    let u = user_subject(user);
    let mut ents = state.entitlements_for(&u.to_string());
    let mut orgs: Vec<Subject> =
        memberships.iter().filter(|m| user_subject(&m.user) == u).map(|m| org_subject(&m.org)).collect();
    orgs.sort();
    orgs.dedup();
    for o in orgs {
        let seated = state.seats.get(&o.to_string()).is_some_and(|b| b.holds_seat(&u));
        if !seated {
            continue;
        }
        if let Some(s) = state.subjects.get(&o.to_string()) {
            for g in &s.grants {
                if !ents.grants.iter().any(|x| x.id == g.id) {
                    ents.grants.push(g.clone());
                }
            }
        }
    }
    ents
}

