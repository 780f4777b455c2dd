//! Organizations and seats (the Org Seats app).
//!
//! A subject is a user or an organization. An organization's subscriptions
//! give it grants and a number of seats: for each item, the subscription
//! quantity times the offer's `seats.included` (or `included` once when
//! `per_quantity = false`; an organization offer without a `seats` entry gives
//! one seat per unit of quantity). A user gets the organization's grants only
//! through **membership and an allocated seat**.
//!
//! Seats are given in order of assignment; an assignment beyond the seat count
//! is refused with a [`SeatRefusal`] value that says why. If the seat count
//! later drops (a smaller quantity, a subscription that ended), the most
//! recently seated users beyond the count lose their seat (`over_capacity`)
//! until seats free up or the count grows again; nobody is silently dropped
//! from the book.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::billing::facts::{Item, Subject};
use crate::catalog::{Catalog, SubjectKind};
use crate::model::Entitlements;
use crate::time::Timestamp;

/// Why a seat is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatReason {
    /// Every seat is taken.
    NoSeatsLeft,
    /// The organization has no subscription that provides seats.
    NoSeats,
    /// The user is not a member of the organization.
    NotAMember,
    /// Seats belong to organizations, and are given to users.
    NotAnOrganization,
    NotAUser,
}

impl SeatReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatReason::NoSeatsLeft => "no_seats_left",
            SeatReason::NoSeats => "no_seats",
            SeatReason::NotAMember => "not_a_member",
            SeatReason::NotAnOrganization => "not_an_organization",
            SeatReason::NotAUser => "not_a_user",
        }
    }
}

/// A refused seat assignment, as a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRefusal {
    pub reason: SeatReason,
    pub org: String,
    pub user: String,
    /// Seats the organization has, and how many are held.
    pub seats: u32,
    pub used: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
}

impl fmt::Display for SeatRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            SeatReason::NoSeatsLeft => write!(
                f,
                "{} has {} seat(s) and all {} are taken: no seat for {}",
                self.org, self.seats, self.used, self.user
            ),
            SeatReason::NoSeats => write!(f, "{} has no subscription that provides seats", self.org),
            SeatReason::NotAMember => write!(f, "{} is not a member of {}", self.user, self.org),
            SeatReason::NotAnOrganization => write!(f, "{} is not an organization", self.org),
            SeatReason::NotAUser => write!(f, "{} is not a user", self.user),
        }
    }
}

/// A user holding (or waiting on) a seat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatHolder {
    pub user: Subject,
    pub since: Timestamp,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// Assigned, but the seat count has since dropped below this holder's place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub over_capacity: bool,
}

/// An organization's seats and who holds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatBook {
    pub org: Subject,
    /// Seats the organization has (as of the state's `as_of`).
    pub seats: u32,
    /// In order of assignment.
    pub holders: Vec<SeatHolder>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<SeatRefusal>,
}

impl SeatBook {
    pub fn new(org: Subject) -> SeatBook {
        SeatBook { org, seats: 0, holders: Vec::new(), refused: Vec::new() }
    }

    pub fn used(&self) -> u32 {
        self.holders.len() as u32
    }

    /// Does `user` hold a seat within the seat count?
    pub fn holds_seat(&self, user: &Subject) -> bool {
        self.holders.iter().position(|h| &h.user == user).is_some_and(|i| (i as u32) < self.seats)
    }

    /// Would assigning a seat to `user` succeed with `capacity` seats?
    pub fn check(&self, user: &Subject, capacity: u32) -> Result<(), SeatRefusal> {
        let refuse = |reason| SeatRefusal {
            reason,
            org: self.org.to_string(),
            user: user.to_string(),
            seats: capacity,
            used: self.used(),
            at: None,
            request_id: String::new(),
        };
        if !self.org.is_org() {
            return Err(refuse(SeatReason::NotAnOrganization));
        }
        if user.is_org() {
            return Err(refuse(SeatReason::NotAUser));
        }
        // No seats at all is said as such, to a holder too (its subscription ended or is
        // paused): "every seat is taken" would send it to free one that does not exist.
        if capacity == 0 {
            return Err(refuse(SeatReason::NoSeats));
        }
        // A holder the seat count dropped below keeps its place in line, not a seat.
        if let Some(i) = self.holders.iter().position(|h| &h.user == user) {
            return if (i as u32) < capacity { Ok(()) } else { Err(refuse(SeatReason::NoSeatsLeft)) };
        }
        if self.used() >= capacity {
            return Err(refuse(SeatReason::NoSeatsLeft));
        }
        Ok(())
    }

    /// Assigns a seat if one is free (already holding one is fine); a refusal is
    /// recorded in the book and returned.
    pub fn assign(
        &mut self,
        user: &Subject,
        capacity: u32,
        at: Timestamp,
        request_id: &str,
    ) -> Result<(), SeatRefusal> {
        match self.check(user, capacity) {
            Ok(()) => {
                if !self.holders.iter().any(|h| &h.user == user) {
                    self.holders.push(SeatHolder {
                        user: user.clone(),
                        since: at,
                        request_id: request_id.to_string(),
                        over_capacity: false,
                    });
                }
                Ok(())
            }
            Err(mut r) => {
                r.at = Some(at);
                r.request_id = request_id.to_string();
                self.refused.push(r.clone());
                Err(r)
            }
        }
    }

    /// Frees a user's seat; returns whether it held one.
    pub fn release(&mut self, user: &Subject) -> bool {
        let before = self.holders.len();
        self.holders.retain(|h| &h.user != user);
        before != self.holders.len()
    }

    /// Sets the seat count, marking holders beyond it as over capacity.
    pub fn set_capacity(&mut self, seats: u32) {
        self.seats = seats;
        for (i, h) in self.holders.iter_mut().enumerate() {
            h.over_capacity = i as u32 >= seats;
        }
    }
}

/// Seats a subscription's items provide: per item, `included x quantity`
/// (`per_quantity`) or `included`. An organization offer without a `seats`
/// entry gives one seat per unit; a user offer without one gives none.
pub fn subscription_seats(catalog: &Catalog, items: &[Item]) -> u32 {
    let mut n: u32 = 0;
    for it in items {
        let Some(o) = it.offer.as_deref().and_then(|k| catalog.offer(k)) else { continue };
        let s = match &o.seats {
            Some(s) => {
                if s.per_quantity {
                    s.included.saturating_mul(it.quantity)
                } else {
                    s.included
                }
            }
            None if o.subject == SubjectKind::Organization => it.quantity,
            None => 0,
        };
        n = n.saturating_add(s);
    }
    n
}

/// A user's membership of an organization (the app's own record, the Org Seats
/// app's `organization_members`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// `org:<id>` or a bare organization id.
    pub org: String,
    /// `user:<id>` or a bare user id.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// An organization named by `s`: `org:<id>` or a bare id. An explicit `user:<id>` stays a
/// user (and is refused as no organization), read as [`Subject::parse`] reads it, spaces
/// around it included.
pub(crate) fn org_subject(s: &str) -> Subject {
    match Subject::parse(s) {
        Ok(x) if x.is_org() => x,
        Ok(x) if !s.trim_start().starts_with("user:") => Subject::org(x.id),
        Ok(x) => x,
        Err(_) => Subject::org(s),
    }
}

pub(crate) fn user_subject(s: &str) -> Subject {
    Subject::parse(s).unwrap_or_else(|_| Subject::user(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_beyond_the_count_is_refused_with_a_reason() {
        let mut b = SeatBook::new(Subject::org("o1"));
        let (a, c) = (Subject::user("a"), Subject::user("c"));
        assert!(b.assign(&a, 1, Timestamp(1), "r1").is_ok());
        assert!(b.assign(&a, 1, Timestamp(2), "r1b").is_ok(), "holding one already is fine");
        let r = b.assign(&c, 1, Timestamp(3), "r2").unwrap_err();
        assert_eq!(r.reason, SeatReason::NoSeatsLeft);
        assert_eq!((r.seats, r.used), (1, 1));
        assert!(r.to_string().contains("all 1 are taken"), "{r}");
        assert_eq!(b.refused.len(), 1);
        assert_eq!(SeatBook::new(Subject::org("o2")).check(&a, 0).unwrap_err().reason, SeatReason::NoSeats);
        b.set_capacity(1);
        assert!(b.holds_seat(&a));
        b.set_capacity(0);
        assert!(!b.holds_seat(&a));
        assert!(b.holders[0].over_capacity);
    }
}

/// The entitlements a user's own use of a feature (not one made for an organization) is
/// decided with: for a capability, its own grants with what its seats lend it
/// ([`merge_seated_grants`]); for a limit (`counted`), its own grants alone. An
/// organization's limits count for the whole organization ([`acting_for`]), never once
/// more on each member's own counter. (Decisions of a limit over merged entitlements, a
/// member's snapshot among them, leave lent grants out by the same rule:
/// [`crate::model::Grant::lent_by_seat`]; here they are left out before, so the catalog
/// versions a limit is read under are the member's own too.)
pub fn for_own_use(own: Entitlements, orgs: &[(String, bool, Vec<crate::model::Grant>)], counted: bool) -> Entitlements {
    if counted {
        own
    } else {
        merge_seated_grants(own, orgs)
    }
}

/// A user's entitlements from its own grants plus the grants of each
/// organization where it holds a seat (membership alone gives nothing). The
/// organization's grant ids are prefixed `org:<id>:` ([`crate::model::LENT_PREFIX`]) so
/// they stay unique and are known as lent: they give access and capabilities, and no
/// limit ([`crate::model::Grant::lent_by_seat`]).
/// `orgs` lists, per organization the user belongs to, whether the user holds
/// a seat and the organization's grants.
pub fn merge_seated_grants(
    mut own: Entitlements,
    orgs: &[(String, bool, Vec<crate::model::Grant>)],
) -> Entitlements {
    for (org_id, seated, grants) in orgs {
        if !*seated {
            continue;
        }
        for g in grants {
            let mut g = g.clone();
            g.id = format!("{}{org_id}:{}", crate::model::LENT_PREFIX, g.id);
            own.grants.push(g);
        }
    }
    own
}

/// Why a user may not use an organization's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActError {
    /// Not a member of the organization.
    NotMember,
    /// A member without a seat: membership alone gives nothing.
    NoSeat,
}

impl ActError {
    pub fn code(&self) -> &'static str {
        match self {
            ActError::NotMember => "not_a_member",
            ActError::NoSeat => "no_seat",
        }
    }
}

impl std::fmt::Display for ActError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActError::NotMember => "the caller is not a member of this organization",
            ActError::NoSeat => "the caller holds no seat in this organization",
        })
    }
}

impl std::error::Error for ActError {}

/// The entitlements a user uses when acting for organization `org_id` (an organization's
/// limit counted for the whole organization): the organization's own grants, given only
/// to a member holding a seat, as [`merge_seated_grants`] lends them. `orgs` as there.
/// The same rule says who may give back (release) a use it made for the organization,
/// which changes its count as much as a use does: a member removed since, or whose seat
/// was taken, no longer may.
pub fn acting_for(org_id: &str, orgs: &[(String, bool, Vec<crate::model::Grant>)]) -> Result<Entitlements, ActError> {
    match as_member(org_id, orgs)? {
        (ents, true) => Ok(ents),
        (_, false) => Err(ActError::NoSeat),
    }
}

/// May a user settle (release or capture) a use it made for an organization? Only while it
/// acts for it ([`acting_for`]: a `member` holding a seat, `seated`), as a new use asks. A
/// retry of a settling already done (`done`) changes nothing and is answered as it was to a
/// member without a seat, as a retried use is; a member removed since gets neither.
///
/// The store applies this rule in the settling's own transaction, to the membership and the
/// seat it reads there under lock (the in-memory store calls it; `tollgate_release` and
/// `tollgate_capture` say it in SQL), never to what was read before: a removal or a seat
/// taken between a read and the settling is not passed.
pub fn may_settle(member: bool, seated: bool, done: bool) -> Result<(), ActError> {
    match (member, seated || done) {
        (false, _) => Err(ActError::NotMember),
        (true, false) => Err(ActError::NoSeat),
        (true, true) => Ok(()),
    }
}

/// The organization's entitlements as one of its members sees them, and whether that member
/// holds a seat. Only a seated member acts for the organization (`acting_for`); a member
/// without one is still answered what it did while it held one (a retried use).
pub fn as_member(org_id: &str, orgs: &[(String, bool, Vec<crate::model::Grant>)]) -> Result<(Entitlements, bool), ActError> {
    let (_, seated, grants) = orgs.iter().find(|(id, _, _)| id == org_id).ok_or(ActError::NotMember)?;
    Ok((Entitlements { subject: Subject::org(org_id).to_string(), grants: grants.clone(), balances: Default::default(), until: None }, *seated))
}

#[cfg(test)]
mod merge_tests {
    use super::*;
    use crate::model::{Grant, Source, Status};

    fn grant(id: &str, tier: &str) -> Grant {
        Grant {
            id: id.into(),
            product: "org".into(),
            tier: tier.into(),
            source: Source::Stripe,
            status: Status::Active,
            valid_from: Timestamp(0),
            valid_to: None,
            past_due_since: None,
            offer: None,
            source_ref: None,
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        }
    }

    #[test]
    fn only_seated_organizations_lend_their_grants() {
        let own = Entitlements::new(vec![grant("mine", "FREE")]);
        let orgs = vec![
            ("o1".to_string(), true, vec![grant("stripe:sub_1:org", "BUSINESS")]),
            ("o2".to_string(), false, vec![grant("stripe:sub_2:org", "ENTERPRISE")]),
        ];
        let merged = merge_seated_grants(own, &orgs);
        let ids: Vec<&str> = merged.grants.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["mine", "org:o1:stripe:sub_1:org"]);
    }

    #[test]
    fn a_use_for_an_organization_is_settled_by_a_seated_member_and_retried_by_any_member() {
        assert_eq!(may_settle(true, true, false), Ok(()));
        assert_eq!(may_settle(true, false, false), Err(ActError::NoSeat));
        assert_eq!(may_settle(true, false, true), Ok(()), "a retry of a settling done, seat taken since");
        assert_eq!(may_settle(false, false, true), Err(ActError::NotMember), "removed since: not even a retry");
        assert_eq!(may_settle(false, true, false), Err(ActError::NotMember), "a seat without membership gives nothing");
    }
}
