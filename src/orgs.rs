//! Organizations run by their own members (the Org Seats app): who may invite, give or
//! take a seat, change a role or remove a member; the seat an invite reserves; accepting
//! an invite; and what an organization shows each member (plan, status, seats, grace,
//! features). Every rule is a pure decision over what the store read ([`Org`]); the
//! worker persists its effect: membership and invite rows, and seat facts
//! ([`seat_fact`]) that the billing fold folds with the subscription's quantity, in any
//! order (see [`crate::seats`] for the seat book and the order seats are lost in).
//!
//! Roles: an `owner` does everything and is the only one who changes roles; an `admin`
//! invites, gives and takes seats, revokes invites and removes members other than owners;
//! a `member` may leave. An organization always keeps one owner.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::billing::facts::{Fact, Subject};
use crate::catalog::{Catalog, LimitValue};
use crate::decide::{self, Reason};
use crate::model::{Entitlements, Grant, Status};
use crate::time::Timestamp;

pub use crate::checkout::Role;

/// How long an invite may be accepted.
pub const INVITE_DAYS: i64 = 7;
/// Longest organization name, in characters.
pub const MAX_NAME: usize = 200;
/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// A member of an organization, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub role: Role,
    /// Holds an active seat.
    #[serde(default)]
    pub seat: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<Timestamp>,
}

/// An invite to an organization. Its single-use token is never stored, only its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub role: Role,
    /// A seat is reserved for the invitee (and given when the invite is accepted).
    pub seat: bool,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// Where an invite stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteState {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl Invite {
    pub fn state(&self, now: Timestamp) -> InviteState {
        if self.accepted_at.is_some() {
            InviteState::Accepted
        } else if self.revoked_at.is_some() {
            InviteState::Revoked
        } else if now >= self.expires_at {
            InviteState::Expired
        } else {
            InviteState::Pending
        }
    }

    /// Does it hold a seat for its invitee now (pending, with a seat)?
    pub fn reserves_seat(&self, now: Timestamp) -> bool {
        self.seat && self.state(now) == InviteState::Pending
    }
}

/// An organization as the store read it for one decision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Seats paid for (the subscription's quantity times the seats per unit).
    #[serde(default)]
    pub seat_count: u32,
    #[serde(default)]
    pub members: Vec<Member>,
    /// Invites not accepted or revoked (pending or expired).
    #[serde(default)]
    pub invites: Vec<Invite>,
    /// The organization's own grants.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// An organization's seats: paid for, held, reserved by pending invites, and free to give.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seats {
    pub count: u32,
    pub used: u32,
    pub reserved: u32,
    pub available: u32,
}

impl Seats {
    pub fn new(count: u32, used: u32, reserved: u32) -> Seats {
        Seats { count, used, reserved, available: count.saturating_sub(used.saturating_add(reserved)) }
    }
}

impl Org {
    pub fn member(&self, user: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.user_id == user)
    }

    fn owners(&self) -> usize {
        self.members.iter().filter(|m| m.role == Role::Owner).count()
    }

    /// Seats at `now`: a pending invite with a seat counts as used until it is accepted,
    /// revoked or expired.
    pub fn seats(&self, now: Timestamp) -> Seats {
        let used = self.members.iter().filter(|m| m.seat).count() as u32;
        let reserved = self.invites.iter().filter(|i| i.reserves_seat(now)).count() as u32;
        Seats::new(self.seat_count, used, reserved)
    }

    /// The caller's membership, or the refusal a stranger gets (the organization is not
    /// shown to non-members at all).
    fn caller(&self, caller: &str) -> Result<&Member, OrgRefusal> {
        self.member(caller).ok_or_else(|| {
            OrgRefusal::new(RefusalCode::UnknownOrganization, format!("no organization {} you belong to", self.id))
        })
    }

    /// The caller, when an owner or an admin.
    fn manager(&self, caller: &str, what: &str) -> Result<&Member, OrgRefusal> {
        let m = self.caller(caller)?;
        if m.role == Role::Member {
            return Err(OrgRefusal::new(
                RefusalCode::NotOrgAdmin,
                format!("only an owner or an admin of the organization may {what}"),
            ));
        }
        Ok(m)
    }

    fn target(&self, user: &str) -> Result<&Member, OrgRefusal> {
        self.member(user)
            .ok_or_else(|| OrgRefusal::new(RefusalCode::NotAMember, format!("{user} is not a member of the organization")))
    }

    fn no_seat(&self, now: Timestamp) -> OrgRefusal {
        let s = self.seats(now);
        let message = if s.count == 0 {
            "the organization has no plan that provides seats: buy seats first".to_string()
        } else {
            format!(
                "all {} seat(s) are taken ({} held, {} reserved by pending invites): buy more seats or free one",
                s.count, s.used, s.reserved
            )
        };
        OrgRefusal { code: RefusalCode::NoSeat, message, seats: Some(s) }
    }
}

/// Why an organization request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// No such organization, or the caller is not a member of it.
    UnknownOrganization,
    /// Only owners and admins may do this.
    NotOrgAdmin,
    /// Only an owner may do this (change roles, remove an owner).
    OwnerOnly,
    /// The user named is not a member.
    NotAMember,
    /// No seat is free (pending invites with a seat count as taken).
    NoSeat,
    /// The change would leave the organization without an owner.
    LastOwner,
    AlreadyMember,
    AlreadyInvited,
    InvalidEmail,
    InvalidRole,
    InvalidName,
    UnknownInvite,
    InviteUsed,
    InviteRevoked,
    InviteExpired,
    /// The invite was sent to another email address than the caller's.
    WrongEmail,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::UnknownOrganization => "unknown_organization",
            RefusalCode::NotOrgAdmin => "not_org_admin",
            RefusalCode::OwnerOnly => "owner_only",
            RefusalCode::NotAMember => "not_a_member",
            RefusalCode::NoSeat => "no_seat",
            RefusalCode::LastOwner => "last_owner",
            RefusalCode::AlreadyMember => "already_member",
            RefusalCode::AlreadyInvited => "already_invited",
            RefusalCode::InvalidEmail => "invalid_email",
            RefusalCode::InvalidRole => "invalid_role",
            RefusalCode::InvalidName => "invalid_name",
            RefusalCode::UnknownInvite => "unknown_invite",
            RefusalCode::InviteUsed => "invite_used",
            RefusalCode::InviteRevoked => "invite_revoked",
            RefusalCode::InviteExpired => "invite_expired",
            RefusalCode::WrongEmail => "wrong_email",
        }
    }
}

/// A refused organization request, as a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrgRefusal {
    pub code: RefusalCode,
    pub message: String,
    /// For `no_seat`: the seats as the refusal saw them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats: Option<Seats>,
}

impl OrgRefusal {
    fn new(code: RefusalCode, message: impl Into<String>) -> OrgRefusal {
        OrgRefusal { code, message: message.into(), seats: None }
    }
}

impl fmt::Display for OrgRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for OrgRefusal {}

/// A new organization's name (trimmed), or why not: at least one visible character, no
/// control characters and no bidirectional overrides (which make a name read as another).
pub fn new_organization(name: &str) -> Result<String, OrgRefusal> {
    let n = name.trim();
    let visible = n.chars().any(|c| !c.is_whitespace() && !invisible(c));
    if !visible || n.chars().count() > MAX_NAME || n.chars().any(|c| c.is_control() || bidi_control(c)) {
        return Err(OrgRefusal::new(
            RefusalCode::InvalidName,
            format!("name must be 1 to {MAX_NAME} printable characters, at least one of them visible"),
        ));
    }
    Ok(n.to_string())
}

/// Characters that change the direction text is shown in.
fn bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Format characters that show nothing (joiners, zero-width spaces, the byte order mark,
/// tags): allowed within a name (an emoji sequence joins with U+200D), never alone.
fn invisible(c: char) -> bool {
    bidi_control(c)
        || matches!(c, '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0000}'..='\u{E007F}')
}

/// An email address as invites compare it (trimmed, lower case), or why it is not one: no
/// spaces, control or invisible characters (a zero-width space or a bidirectional override
/// makes an address in an admin's list read as another).
pub fn normalize_email(email: &str) -> Result<String, OrgRefusal> {
    let e = email.trim().to_lowercase();
    let bad = || OrgRefusal::new(RefusalCode::InvalidEmail, format!("`{}` is not an email address", shown(email.trim())));
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && e.len() <= MAX_EMAIL
        && !e.chars().any(|c| c.is_whitespace() || c.is_control() || invisible(c));
    if !ok {
        return Err(bad());
    }
    Ok(e)
}

/// A caller's text as a refusal quotes it: its first 64 characters (a 300 KB role is not
/// sent back whole).
fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Is the stored address `stored` the normalized address `email`? Compared as
/// [`normalize_email`] and accepting an invite compare (trimmed, Unicode lower case), so an
/// invite is refused to a member whose address [`accept`] would find is theirs: such an
/// invite could never be accepted, and would hold its seat until it expired.
fn same_email(stored: &str, email: &str) -> bool {
    stored.trim().to_lowercase() == email
}

fn parse_role(role: &str, allowed: &[Role]) -> Result<Role, OrgRefusal> {
    Role::parse(role).filter(|r| allowed.contains(r)).ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        OrgRefusal::new(RefusalCode::InvalidRole, format!("role `{}`: use {}", shown(role), names.join(" or ")))
    })
}

/// The form an invite's token is kept in (SHA-256, hex): the token itself is shown once,
/// to whoever sends the invite, and a stored digest gives nobody a usable token.
pub fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An invite to create: to whom, as what, with a seat or not, until when, from whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewInvite {
    pub organization_id: String,
    pub email: String,
    pub role: Role,
    pub seat: bool,
    pub expires_at: Timestamp,
    pub created_by: String,
}

/// May `caller` invite `email` as `role` (`member` or `admin`), with a seat reserved when
/// `seat`? Owners and admins invite; a seat is refused (`no_seat`) when none is free,
/// pending invites with a seat counting as taken. The invite expires after
/// [`INVITE_DAYS`].
pub fn invite(org: &Org, caller: &str, email: &str, role: &str, seat: bool, now: Timestamp) -> Result<NewInvite, OrgRefusal> {
    org.manager(caller, "invite")?;
    let role = parse_role(role, &[Role::Member, Role::Admin])?;
    let email = normalize_email(email)?;
    if org.members.iter().any(|m| m.email.as_deref().is_some_and(|e| same_email(e, &email))) {
        return Err(OrgRefusal::new(RefusalCode::AlreadyMember, format!("{email} is already a member")));
    }
    if org.invites.iter().any(|i| i.state(now) == InviteState::Pending && same_email(&i.email, &email)) {
        return Err(OrgRefusal::new(
            RefusalCode::AlreadyInvited,
            format!("{email} has a pending invite: revoke it to send another"),
        ));
    }
    if seat && org.seats(now).available == 0 {
        return Err(org.no_seat(now));
    }
    Ok(NewInvite {
        organization_id: org.id.clone(),
        email,
        role,
        seat,
        expires_at: now.plus_days(INVITE_DAYS),
        created_by: caller.to_string(),
    })
}

/// An accepted invite: the membership to create, and whether its seat is given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub invite_id: String,
    pub organization_id: String,
    pub user_id: String,
    pub role: Role,
    pub seat: bool,
    /// Who sent the invite (who gives the reserved seat).
    pub invited_by: Option<String>,
    /// The invitee accepted it before (a retry after a failure that left the membership
    /// written): nothing more to write but the seat it reserved, given once.
    pub again: bool,
}

/// May `user`, signed in with `email`, accept `invite` (read by its token) now? Once
/// only, before it expires, by the address it was sent to, by someone not a member yet,
/// into the organization that sent it (read with another, it is no invite of that one, as
/// [`revoke`] says: it gives no membership nor seat there); the same invitee accepting
/// again (a retry) is answered as the acceptance it was.
pub fn accept(org: &Org, invite: &Invite, user: &str, email: Option<&str>, now: Timestamp) -> Result<Accepted, OrgRefusal> {
    if invite.organization_id != org.id {
        return Err(OrgRefusal::new(RefusalCode::UnknownInvite, "the organization has no such invite"));
    }
    let accepted = |again: bool| Accepted {
        invite_id: invite.id.clone(),
        organization_id: org.id.clone(),
        user_id: user.to_string(),
        role: invite.role,
        seat: invite.seat,
        invited_by: invite.created_by.clone(),
        again,
    };
    match invite.state(now) {
        InviteState::Accepted if invite.accepted_by.as_deref() == Some(user) && org.member(user).is_some() => {
            return Ok(accepted(true))
        }
        InviteState::Accepted => {
            return Err(OrgRefusal::new(RefusalCode::InviteUsed, "this invite was accepted already: it is single-use"))
        }
        InviteState::Revoked => return Err(OrgRefusal::new(RefusalCode::InviteRevoked, "this invite was revoked")),
        InviteState::Expired => {
            return Err(OrgRefusal::new(
                RefusalCode::InviteExpired,
                format!("this invite expired at {}: ask for a new one", invite.expires_at.to_rfc3339()),
            ))
        }
        InviteState::Pending => {}
    }
    let signed_in_as = email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
    if signed_in_as.as_deref() != Some(invite.email.to_lowercase().as_str()) {
        return Err(OrgRefusal::new(
            RefusalCode::WrongEmail,
            "this invite was sent to another email address: sign in with the address it was sent to",
        ));
    }
    if org.member(user).is_some() {
        return Err(OrgRefusal::new(RefusalCode::AlreadyMember, "you are a member of this organization already"));
    }
    Ok(accepted(false))
}

/// May `caller` revoke `invite`? Owners and admins revoke pending or expired invites;
/// revoking twice is fine; an accepted invite is no longer an invite.
pub fn revoke(org: &Org, caller: &str, invite: Option<&Invite>, now: Timestamp) -> Result<(), OrgRefusal> {
    org.manager(caller, "revoke an invite")?;
    let Some(i) = invite.filter(|i| i.organization_id == org.id) else {
        return Err(OrgRefusal::new(RefusalCode::UnknownInvite, "the organization has no such invite"));
    };
    if i.state(now) == InviteState::Accepted {
        return Err(OrgRefusal::new(RefusalCode::InviteUsed, "this invite was accepted already"));
    }
    Ok(())
}

/// What giving or taking a seat comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatMove {
    Give,
    Take,
    /// Holds one already.
    Unchanged,
}

/// May `caller` give (`give`) or take a seat of `target`? Owners and admins do. A seat
/// is given only to a member and only when one is free (pending invites with a seat count
/// as taken). Taking releases the user's place in the seat book, also a place the seat
/// count dropped below (so it is not given back when seats are bought again), and asks
/// no membership: a seat given as its holder was removed is freed the same way.
pub fn seat(org: &Org, caller: &str, target: &str, give: bool, now: Timestamp) -> Result<SeatMove, OrgRefusal> {
    org.manager(caller, if give { "give a seat" } else { "take a seat" })?;
    if !give {
        return Ok(SeatMove::Take);
    }
    let t = org.target(target)?;
    if t.seat {
        return Ok(SeatMove::Unchanged);
    }
    if org.seats(now).available == 0 {
        return Err(org.no_seat(now));
    }
    Ok(SeatMove::Give)
}

/// May an operator (the admin secret: no member's role is asked) give (`give`) or take a
/// seat of `target`? A seat goes only to a member, as from the organization's owners and
/// admins ([`seat`]): it is what a member is given, never what makes one
/// (`not_a_member`). Whether one is left, the fold decides. Taking asks nothing: an
/// operator frees any seat the book holds.
pub fn operator_seat(org: &Org, target: &str, give: bool) -> Result<(), OrgRefusal> {
    if give {
        org.target(target)?;
    }
    Ok(())
}

/// The fact of a seat given or taken: who, when, by whom. `request_id` makes it one
/// change (the same id again is the same fact).
pub fn seat_fact(org_id: &str, user_id: &str, give: bool, by: &str, request_id: &str, now: Timestamp) -> Fact {
    let (o, u) = (Subject::org(org_id), Subject::user(user_id));
    let f = if give { Fact::seat_assigned(o, u, request_id, now) } else { Fact::seat_released(o, u, request_id, now) };
    f.by(by)
}

/// A role change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RoleChange {
    pub from: Role,
    pub to: Role,
}

/// May `caller` make `target` a `role`? Only owners change roles (an admin can neither
/// promote nor demote anyone, the owner least of all), and never the last owner away.
pub fn set_role(org: &Org, caller: &str, target: &str, role: &str) -> Result<RoleChange, OrgRefusal> {
    let c = org.caller(caller)?;
    let to = parse_role(role, &[Role::Owner, Role::Admin, Role::Member])?;
    if c.role != Role::Owner {
        return Err(OrgRefusal::new(RefusalCode::OwnerOnly, "only an owner of the organization changes roles"));
    }
    let t = org.target(target)?;
    if t.role == Role::Owner && to != Role::Owner && org.owners() == 1 {
        return Err(OrgRefusal::new(
            RefusalCode::LastOwner,
            "the organization must keep an owner: make someone else owner first",
        ));
    }
    Ok(RoleChange { from: t.role, to })
}

/// A member removed (or leaving).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub user_id: String,
    /// The member left on their own.
    pub left: bool,
}

/// May `caller` remove `target`? A member may leave; owners and admins remove members
/// and admins, only owners remove owners, and the last owner stays.
pub fn remove(org: &Org, caller: &str, target: &str) -> Result<Removal, OrgRefusal> {
    let c = org.caller(caller)?;
    let t = org.target(target)?;
    let leaving = caller == target;
    if !leaving {
        org.manager(caller, "remove a member")?;
        if t.role == Role::Owner && c.role != Role::Owner {
            return Err(OrgRefusal::new(RefusalCode::OwnerOnly, "only an owner removes an owner"));
        }
    }
    if t.role == Role::Owner && org.owners() == 1 {
        return Err(OrgRefusal::new(
            RefusalCode::LastOwner,
            "the organization must keep an owner: make someone else owner first",
        ));
    }
    Ok(Removal { user_id: target.to_string(), left: leaving })
}

// ------------------------------------------------------------------ what members see

/// The organization's plan at an instant: its tier, and its billing status as the Org
/// Seats app names it (`active`, `trialing`, `past_due` in grace, `canceled` (until the
/// period ends, or ended), `unpaid` (grace over), `none`). The status is the standing of
/// the subscription the tier comes from: a past-due subscription is `past_due`, then
/// `unpaid`, also while the tier comes from what its period's first payment paid for (a
/// failed change's grant of its own, active to the period's end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub product: Option<String>,
    pub tier: Option<String>,
    pub status: &'static str,
    /// The offer that gave the tier.
    pub offer: Option<String>,
    /// Paid through (or access ends at).
    pub valid_to: Option<Timestamp>,
    pub in_grace: bool,
    /// When a past-due plan stops giving access.
    pub grace_ends_at: Option<Timestamp>,
}

/// The plan the organization's `grants` give at `now`, on the first product of the
/// catalog that they name (the catalog's first product without any).
pub fn plan(catalog: &Catalog, grants: &[Grant], now: Timestamp) -> Plan {
    let products = catalog.products();
    let pi = products.iter().position(|p| grants.iter().any(|g| g.product == p.id)).unwrap_or(0);
    let Some(product) = products.get(pi) else {
        return Plan { product: None, tier: None, status: "none", offer: None, valid_to: None, in_grace: false, grace_ends_at: None };
    };
    let ents = Entitlements::new(grants.to_vec());
    let eff = decide::effective_at(catalog, &ents, pi, now);
    let grace_days = catalog.meta().grace_period_days;
    // The grace of the subscription the tier comes from, when it is past due: the grant
    // that gives the tier, or another grant of that subscription. A past-due subscription
    // whose change failed (more seats, a higher tier) also gives what the period's first
    // payment paid for, as an active grant of its own to the period's end; the
    // organization is past due all the same, and once the grace is over unpaid, while
    // that grant still gives the tier it paid for.
    let grace = eff.grant.and_then(|g| {
        let of_its_subscription = |x: &&Grant| g.source_ref.is_some() && x.source_ref == g.source_ref && x.product == g.product;
        std::iter::once(g)
            .chain(grants.iter().filter(of_its_subscription))
            .filter(|x| x.status == Status::PastDue)
            .map(|x| decide::grace_end(x, grace_days))
            .max()
    });
    let status = match (eff.grant, eff.reason, eff.lapsed) {
        (Some(_), _, _) if grace.is_some_and(|end| now < end) => "past_due",
        (Some(_), _, _) if grace.is_some() => "unpaid",
        (Some(_), Reason::Trial, _) => "trialing",
        (Some(_), Reason::CanceledUntilPeriodEnd, _) => "canceled",
        (Some(_), _, _) => "active",
        (None, _, Some(Reason::GraceEnded)) => "unpaid",
        // The app names no paused status: a paused plan gives nothing, as a canceled one.
        (None, _, Some(Reason::Expired | Reason::Paused)) => "canceled",
        (None, _, _) => "none",
    };
    let past_due = grants
        .iter()
        .filter(|g| g.product == product.id && g.status == Status::PastDue)
        .map(|g| decide::grace_end(g, grace_days))
        .max();
    let grace_ends_at = match eff.grant {
        Some(_) => grace,
        None => past_due,
    };
    Plan {
        product: Some(product.id.clone()),
        tier: eff.tier.and_then(|t| product.tiers.get(t).cloned()),
        status,
        offer: eff.grant.and_then(|g| g.offer.clone()),
        valid_to: eff.grant.and_then(|g| g.valid_to),
        in_grace: status == "past_due",
        grace_ends_at,
    }
}

/// Every capability of the catalog, held or not, with `ents` at `now`.
pub fn features(catalog: &Catalog, ents: &Entitlements, now: Timestamp) -> BTreeMap<String, bool> {
    catalog
        .doc
        .capabilities
        .iter()
        .filter_map(|c| decide::can(catalog, ents, &c.id, now).ok().map(|d| (c.id.clone(), d.allowed)))
        .collect()
}

/// Every limit of the catalog, with `ents` at `now`.
pub fn limits(catalog: &Catalog, ents: &Entitlements, now: Timestamp) -> BTreeMap<String, LimitValue> {
    catalog
        .doc
        .limits
        .iter()
        .filter_map(|l| decide::limit(catalog, ents, &l.id, now).ok().map(|a| (l.id.clone(), a.limit)))
        .collect()
}

/// An invite as owners and admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InviteView {
    #[serde(flatten)]
    pub invite: Invite,
    pub state: InviteState,
}

/// The organization as `GET /v1/orgs/{id}` shows it to one member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    /// The caller's role and seat.
    pub role: Role,
    pub seat: bool,
    pub plan: Plan,
    pub seats: Seats,
    /// `in_grace`, `grace_ends_at`: the plan's.
    pub grace: Grace,
    /// The features and limits of the organization's tier (a member uses them only
    /// while holding a seat: `seat`).
    pub features: BTreeMap<String, bool>,
    pub limits: BTreeMap<String, LimitValue>,
    /// Owners and admins: every member with role and seat, and the open invites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invites: Option<Vec<InviteView>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Grace {
    pub in_grace: bool,
    pub grace_ends_at: Option<Timestamp>,
}

/// What `caller` sees of `org` at `now`: every member sees the plan, status, seats, grace,
/// features and limits, and their own role and seat; owners and admins also the members
/// and the open invites. Non-members see nothing (`unknown_organization`).
pub fn view(catalog: &Catalog, org: &Org, caller: &str, now: Timestamp) -> Result<OrgView, OrgRefusal> {
    let me = org.caller(caller)?;
    let plan = plan(catalog, &org.grants, now);
    let ents = Entitlements::new(org.grants.clone());
    let manages = me.role != Role::Member;
    let mut members = org.members.clone();
    members.sort_by(|a, b| (a.role, a.joined_at, &a.user_id).cmp(&(b.role, b.joined_at, &b.user_id)));
    Ok(OrgView {
        id: org.id.clone(),
        name: org.name.clone(),
        role: me.role,
        seat: me.seat,
        grace: Grace { in_grace: plan.in_grace, grace_ends_at: plan.grace_ends_at },
        plan,
        seats: org.seats(now),
        features: features(catalog, &ents, now),
        limits: limits(catalog, &ents, now),
        members: manages.then_some(members),
        invites: manages.then(|| {
            org.invites
                .iter()
                .filter(|i| matches!(i.state(now), InviteState::Pending | InviteState::Expired))
                .map(|i| InviteView { invite: i.clone(), state: i.state(now) })
                .collect()
        }),
    })
}

/// One organization a user belongs to, as its signed snapshot carries it: the caller's
/// role and seat, the seat counts, and the organization's grants (from which its tier,
/// status and grace are decided at any instant, offline too).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMembership {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub role: Option<Role>,
    #[serde(default)]
    pub seat: bool,
    #[serde(default)]
    pub seats: Seats,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The terms the organization's grants are held under ([`crate::grandfather::terms`]),
    /// so a member decides what the organization gives as the worker does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<crate::grandfather::Terms>,
    /// From then on the entry gives nothing (the end of the snapshot it was read from:
    /// [`crate::snapshot::membership_under`]); not part of a signed snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
}

impl OrgMembership {
    /// The organization's grants as they give at `now`: none from [`Self::ends_at`] on.
    fn grants_at(&self, now: Timestamp) -> &[Grant] {
        if self.ends_at.is_some_and(|e| now >= e) {
            &[]
        } else {
            &self.grants
        }
    }

    /// `user`'s membership of `org`, if it is a member.
    pub fn of(org: &Org, user: &str, now: Timestamp) -> Option<OrgMembership> {
        let m = org.member(user)?;
        Some(OrgMembership {
            id: org.id.clone(),
            name: org.name.clone(),
            role: Some(m.role),
            seat: m.seat,
            seats: org.seats(now),
            grants: org.grants.clone(),
            terms: Vec::new(),
            ends_at: None,
        })
    }
}

/// A member's entitlements through one organization, in the shape apps already use
/// (the Org Seats app's `getUserEntitlements`): the organization's tier and status, its
/// seats, whether the member holds one, its grace, and the features the member may use:
/// the tier's while holding a seat, and without a seat only what a subject with no plan
/// has.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgEntitlements {
    pub organization_id: String,
    pub name: String,
    pub role: Option<Role>,
    pub tier: Option<String>,
    /// `active`, `trialing`, `past_due`, `canceled`, `unpaid` or `none` (see [`plan`]).
    #[cfg_attr(feature = "ts", ts(type = r#""active" | "trialing" | "past_due" | "canceled" | "unpaid" | "none""#))]
    pub status: &'static str,
    pub seat_count: u32,
    pub seats_used: u32,
    pub seats_available: u32,
    pub has_seat: bool,
    pub in_grace_period: bool,
    pub grace_period_ends_at: Option<Timestamp>,
    pub features: BTreeMap<String, bool>,
    pub limits: BTreeMap<String, LimitValue>,
}

pub fn org_entitlements(catalog: &Catalog, m: &OrgMembership, now: Timestamp) -> OrgEntitlements {
    let held = crate::grandfather::apply(catalog, &m.terms);
    let catalog = held.as_ref();
    let grants = m.grants_at(now);
    let plan = plan(catalog, grants, now);
    let ents = if m.seat { Entitlements::new(grants.to_vec()) } else { Entitlements::default() };
    OrgEntitlements {
        organization_id: m.id.clone(),
        name: m.name.clone(),
        role: m.role,
        tier: plan.tier,
        status: plan.status,
        seat_count: m.seats.count,
        seats_used: m.seats.used,
        seats_available: m.seats.available,
        has_seat: m.seat,
        in_grace_period: plan.in_grace,
        grace_period_ends_at: plan.grace_ends_at,
        features: features(catalog, &ents, now),
        limits: limits(catalog, &ents, now),
    }
}

/// Does a member have `feature` (a capability) through organization `m` at `now`? Only
/// while holding a seat, and only what the organization's tier gives; an unknown
/// feature is an error.
pub fn has_feature_access(catalog: &Catalog, m: &OrgMembership, feature: &str, now: Timestamp) -> Result<bool, decide::DecideError> {
    let ents = if m.seat { Entitlements::new(m.grants_at(now).to_vec()) } else { Entitlements::default() };
    Ok(decide::can(&crate::grandfather::apply(catalog, &m.terms), &ents, feature, now)?.allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    fn catalog() -> Catalog {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs/org-seats.toml")).unwrap();
        Catalog::from_toml(&text).unwrap()
    }

    fn member(id: &str, role: Role, seat: bool) -> Member {
        Member { user_id: id.into(), role, seat, email: Some(format!("{id}@example.com")), joined_at: None }
    }

    fn grant(status: Status, past_due_since: Option<Timestamp>) -> Grant {
        Grant {
            id: "stripe:sub_1:org".into(),
            product: "org".into(),
            tier: "BUSINESS".into(),
            source: Source::Stripe,
            status,
            valid_from: Timestamp(NOW.0 - 86_400),
            valid_to: Some(Timestamp(NOW.0 + 20 * 86_400)),
            past_due_since,
            offer: Some("ORG_BUSINESS_MONTHLY".into()),
            source_ref: None,
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        }
    }

    /// An owner, an admin and a member on a 2-seat plan; nobody seated.
    fn org() -> Org {
        Org {
            id: "o1".into(),
            name: "Acme".into(),
            seat_count: 2,
            members: vec![member("own", Role::Owner, false), member("adm", Role::Admin, false), member("mem", Role::Member, false)],
            invites: vec![],
            grants: vec![grant(Status::Active, None)],
        }
    }

    fn pending(id: &str, email: &str, seat: bool) -> Invite {
        Invite {
            id: id.into(),
            organization_id: "o1".into(),
            email: email.into(),
            role: Role::Member,
            seat,
            expires_at: NOW.plus_days(INVITE_DAYS),
            created_by: Some("own".into()),
            created_at: Some(NOW),
            accepted_at: None,
            accepted_by: None,
            revoked_at: None,
        }
    }

    fn code<T: fmt::Debug>(r: Result<T, OrgRefusal>) -> RefusalCode {
        r.unwrap_err().code
    }

    #[test]
    fn owners_and_admins_invite_and_a_pending_seat_counts_as_taken() {
        let mut o = org();
        let a = invite(&o, "own", " Ann@Example.com ", "member", true, NOW).unwrap();
        assert_eq!((a.email.as_str(), a.role, a.seat, a.expires_at), ("ann@example.com", Role::Member, true, NOW.plus_days(7)));
        o.invites.push(pending("i1", "ann@example.com", true));
        assert!(invite(&o, "adm", "bob@example.com", "admin", true, NOW).is_ok());
        o.invites.push(pending("i2", "bob@example.com", true));
        assert_eq!(o.seats(NOW), Seats { count: 2, used: 0, reserved: 2, available: 0 });
        // The third with a seat is refused; without one it is fine.
        let r = invite(&o, "own", "cat@example.com", "member", true, NOW).unwrap_err();
        assert_eq!(r.code, RefusalCode::NoSeat);
        assert_eq!(r.seats, Some(Seats { count: 2, used: 0, reserved: 2, available: 0 }));
        assert!(r.message.contains("2 reserved"), "{r}");
        assert!(invite(&o, "own", "cat@example.com", "member", false, NOW).is_ok());
        // An expired or revoked invite reserves nothing.
        assert_eq!(o.seats(NOW.plus_days(8)).available, 2);
        o.invites[0].revoked_at = Some(NOW);
        assert!(invite(&o, "own", "cat@example.com", "member", true, NOW).is_ok());
        // Members cannot invite; strangers do not see the organization.
        assert_eq!(code(invite(&o, "mem", "x@example.com", "member", false, NOW)), RefusalCode::NotOrgAdmin);
        assert_eq!(code(invite(&o, "nobody", "x@example.com", "member", false, NOW)), RefusalCode::UnknownOrganization);
        // Bad input, members and pending invitees.
        assert_eq!(code(invite(&o, "own", "x@example.com", "owner", false, NOW)), RefusalCode::InvalidRole);
        for bad in ["", "no-at", "a@b", "a@.com", "a b@c.com", "@c.com"] {
            assert_eq!(code(invite(&o, "own", bad, "member", false, NOW)), RefusalCode::InvalidEmail, "{bad}");
        }
        assert_eq!(code(invite(&o, "own", "MEM@example.com", "member", false, NOW)), RefusalCode::AlreadyMember);
        assert_eq!(code(invite(&o, "own", "bob@example.com", "member", false, NOW)), RefusalCode::AlreadyInvited);
        // No plan, no seats.
        let none = Org { seat_count: 0, ..org() };
        let r = invite(&none, "own", "x@example.com", "member", true, NOW).unwrap_err();
        assert!(r.message.contains("no plan"), "{r}");
    }

    #[test]
    fn an_invite_is_accepted_once_before_it_expires_by_its_own_address() {
        let o = org();
        let i = pending("i1", "ann@example.com", true);
        let a = accept(&o, &i, "ann", Some("ANN@example.com"), NOW).unwrap();
        assert_eq!((a.role, a.seat, a.invited_by.as_deref()), (Role::Member, true, Some("own")));
        assert_eq!(code(accept(&o, &i, "ann", Some("eve@example.com"), NOW)), RefusalCode::WrongEmail);
        assert_eq!(code(accept(&o, &i, "ann", None, NOW)), RefusalCode::WrongEmail);
        assert_eq!(code(accept(&o, &i, "ann", Some("ann@example.com"), i.expires_at)), RefusalCode::InviteExpired);
        let used = Invite { accepted_at: Some(NOW), accepted_by: Some("ann".into()), ..i.clone() };
        assert_eq!(code(accept(&o, &used, "ann", Some("ann@example.com"), NOW)), RefusalCode::InviteUsed);
        let revoked = Invite { revoked_at: Some(NOW), ..i.clone() };
        assert_eq!(code(accept(&o, &revoked, "ann", Some("ann@example.com"), NOW)), RefusalCode::InviteRevoked);
        let to_member = pending("i2", "mem@example.com", false);
        assert_eq!(code(accept(&o, &to_member, "mem", Some("mem@example.com"), NOW)), RefusalCode::AlreadyMember);
        // Revoking: owners and admins, twice is fine, an accepted one is no longer open.
        assert!(revoke(&o, "adm", Some(&i), NOW).is_ok());
        assert!(revoke(&o, "adm", Some(&revoked), NOW).is_ok());
        assert_eq!(code(revoke(&o, "mem", Some(&i), NOW)), RefusalCode::NotOrgAdmin);
        assert_eq!(code(revoke(&o, "own", Some(&used), NOW)), RefusalCode::InviteUsed);
        assert_eq!(code(revoke(&o, "own", None, NOW)), RefusalCode::UnknownInvite);
        let elsewhere = Invite { organization_id: "o2".into(), ..i };
        assert_eq!(code(revoke(&o, "own", Some(&elsewhere), NOW)), RefusalCode::UnknownInvite);
    }

    #[test]
    fn seats_are_given_by_owners_and_admins_while_one_is_free() {
        let mut o = org();
        assert_eq!(seat(&o, "own", "mem", true, NOW), Ok(SeatMove::Give));
        assert_eq!(seat(&o, "adm", "own", true, NOW), Ok(SeatMove::Give));
        assert_eq!(code(seat(&o, "mem", "mem", true, NOW)), RefusalCode::NotOrgAdmin);
        assert_eq!(code(seat(&o, "mem", "adm", false, NOW)), RefusalCode::NotOrgAdmin);
        assert_eq!(code(seat(&o, "own", "stranger", true, NOW)), RefusalCode::NotAMember);
        o.members[2].seat = true;
        assert_eq!(seat(&o, "own", "mem", true, NOW), Ok(SeatMove::Unchanged));
        o.invites.push(pending("i1", "ann@example.com", true));
        assert_eq!(code(seat(&o, "own", "adm", true, NOW)), RefusalCode::NoSeat);
        // Taking always releases (also a place the seat count dropped below).
        assert_eq!(seat(&o, "own", "mem", false, NOW), Ok(SeatMove::Take));
        assert_eq!(seat(&o, "own", "adm", false, NOW), Ok(SeatMove::Take));
        // An operator asks no role, but seats only members.
        assert_eq!(operator_seat(&o, "mem", true), Ok(()));
        assert_eq!(code(operator_seat(&o, "stranger", true)), RefusalCode::NotAMember);
        assert_eq!(operator_seat(&o, "stranger", false), Ok(()), "any seat the book holds is freed");
        let f = seat_fact("o1", "mem", true, "own", "r1", NOW);
        match &f.body {
            crate::billing::facts::FactBody::SeatAssigned(s) => assert_eq!((s.by.as_str(), s.request_id.as_str()), ("own", "r1")),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.key, "seat:org:o1:user:mem:assign:r1", "who gave it is not part of the key");
    }

    #[test]
    fn only_owners_change_roles_and_an_organization_keeps_an_owner() {
        let o = org();
        assert_eq!(set_role(&o, "own", "mem", "admin"), Ok(RoleChange { from: Role::Member, to: Role::Admin }));
        assert_eq!(code(set_role(&o, "adm", "own", "member")), RefusalCode::OwnerOnly, "an admin cannot demote the owner");
        assert_eq!(code(set_role(&o, "adm", "mem", "admin")), RefusalCode::OwnerOnly);
        assert_eq!(code(set_role(&o, "own", "own", "admin")), RefusalCode::LastOwner);
        assert_eq!(code(set_role(&o, "own", "mem", "boss")), RefusalCode::InvalidRole);
        assert_eq!(code(set_role(&o, "own", "ghost", "admin")), RefusalCode::NotAMember);
        let mut two = org();
        two.members[1].role = Role::Owner;
        assert!(set_role(&two, "own", "own", "member").is_ok(), "with another owner, an owner may step down");
    }

    #[test]
    fn members_leave_admins_remove_and_owners_stay() {
        let o = org();
        assert_eq!(remove(&o, "mem", "mem"), Ok(Removal { user_id: "mem".into(), left: true }));
        assert_eq!(remove(&o, "adm", "mem"), Ok(Removal { user_id: "mem".into(), left: false }));
        assert_eq!(code(remove(&o, "mem", "adm")), RefusalCode::NotOrgAdmin);
        assert_eq!(code(remove(&o, "adm", "own")), RefusalCode::OwnerOnly);
        assert_eq!(code(remove(&o, "own", "own")), RefusalCode::LastOwner);
        assert_eq!(code(remove(&o, "own", "ghost")), RefusalCode::NotAMember);
        assert_eq!(code(remove(&o, "ghost", "mem")), RefusalCode::UnknownOrganization);
    }

    #[test]
    fn every_member_sees_plan_seats_and_grace_and_managers_see_the_members() {
        let cat = catalog();
        let mut o = org();
        o.members[2].seat = true;
        o.invites.push(pending("i1", "ann@example.com", true));
        let v = view(&cat, &o, "mem", NOW).unwrap();
        assert_eq!((v.plan.tier.as_deref(), v.plan.status, v.role, v.seat), (Some("BUSINESS"), "active", Role::Member, true));
        assert_eq!(v.seats, Seats { count: 2, used: 1, reserved: 1, available: 0 });
        assert_eq!((v.members.is_none(), v.invites.is_none()), (true, true), "a member sees only their own seat");
        assert_eq!(v.features["sso_enabled"], true);
        let v = view(&cat, &o, "adm", NOW).unwrap();
        assert_eq!(v.members.as_ref().unwrap().iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(), ["own", "adm", "mem"]);
        assert_eq!(v.invites.as_ref().unwrap()[0].state, InviteState::Pending);
        assert_eq!(code(view(&cat, &o, "nobody", NOW)), RefusalCode::UnknownOrganization);
        // Past due: in grace for the catalog's 7 days from the failure, then unpaid.
        o.grants = vec![grant(Status::PastDue, Some(NOW))];
        let v = view(&cat, &o, "mem", NOW).unwrap();
        assert_eq!((v.plan.status, v.grace.in_grace, v.grace.grace_ends_at), ("past_due", true, Some(NOW.plus_days(7))));
        let v = view(&cat, &o, "mem", NOW.plus_days(7)).unwrap();
        assert_eq!((v.plan.status, v.grace.in_grace, v.plan.tier.as_deref()), ("unpaid", false, Some("FREE")));
        // No plan at all: the default tier.
        o.grants.clear();
        let v = view(&cat, &o, "own", NOW).unwrap();
        assert_eq!((v.plan.status, v.plan.tier.as_deref(), v.features["ai_coach_access"]), ("none", Some("FREE"), false));
    }

    #[test]
    fn a_member_uses_the_organizations_features_only_with_a_seat() {
        let cat = catalog();
        let o = org();
        let mut m = OrgMembership::of(&o, "mem", NOW).unwrap();
        let e = org_entitlements(&cat, &m, NOW);
        assert_eq!((e.tier.as_deref(), e.status, e.has_seat, e.seat_count, e.seats_available), (Some("BUSINESS"), "active", false, 2, 2));
        assert!(e.features.values().all(|held| !held), "an unseated member's features are locked: {:?}", e.features);
        assert!(!has_feature_access(&cat, &m, "custom_branding", NOW).unwrap());
        m.seat = true;
        let e = org_entitlements(&cat, &m, NOW);
        assert!(e.features["custom_branding"] && e.features["ai_assistant_access"]);
        assert!(has_feature_access(&cat, &m, "custom_branding", NOW).unwrap());
        assert!(has_feature_access(&cat, &m, "nope", NOW).is_err());
        let json = serde_json::to_value(&e).unwrap();
        for k in ["tier", "status", "seatCount", "seatsUsed", "seatsAvailable", "hasSeat", "inGracePeriod", "gracePeriodEndsAt", "features"] {
            assert!(json.get(k).is_some(), "{k} in {json}");
        }
        assert!(OrgMembership::of(&o, "stranger", NOW).is_none());
    }
}
