//! Decisions: pure functions of catalog + entitlements + now.
//!
//! A denial is a value ([`Decision`] with `allowed = false`, a [`Reason`] and,
//! where one exists, the cheapest offer that would allow it), never an error.
//! Errors ([`DecideError`]) are reserved for malformed questions: an unknown
//! product, tier, capability, limit or tool.

use serde::Serialize;
use std::fmt;

use crate::catalog::{Catalog, LimitValue};
use crate::model::{Entitlements, Grant, Status};
use crate::time::{Timestamp, DAY};

// `Reason::ALL` is in declaration order: a reason's position there is its code in the
// compact answers of the wasm bindings.
codes! {
    /// Why a decision came out the way it did.
    pub enum Reason {
        /// An active grant covers it.
        Active = "active",
        /// A trial grant covers it.
        Trial = "trial",
        /// A past-due grant inside the catalog's grace period covers it.
        GracePeriod = "grace_period",
        /// A canceled grant covers it until its period ends.
        CanceledUntilPeriodEnd = "canceled_until_period_end",
        /// The product's default tier (held without a grant) covers it.
        DefaultTier = "default_tier",
        /// Unlimited, or under the limit.
        WithinLimit = "within_limit",
        /// No grant for the product at all.
        NoEntitlement = "no_entitlement",
        /// A grant is valid but its tier is below the one required.
        TierTooLow = "tier_too_low",
        /// The tier held does not include this capability.
        NotInTier = "not_in_tier",
        /// Grants existed but have all ended.
        Expired = "expired",
        /// The only grants are past due and their grace period is over.
        GraceEnded = "grace_ended",
        /// A grant exists but starts later.
        NotYetValid = "not_yet_valid",
        /// The limit is used up.
        LimitReached = "limit_reached",
        /// The only grants are of a paused subscription (after the pause): resuming it
        /// restores them.
        Paused = "paused",
    }
}


pub use crate::catalog::Upgrade;

/// An answer with its explanation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// The effective tier of the product involved (None: no tier at all).
    pub tier: Option<String>,
    /// The grant that decided it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub grant: Option<String>,
    /// This answer holds until this instant (exclusive); `None`: until the
    /// entitlements change. A cache must re-evaluate at this time.
    pub holds_until: Option<Timestamp>,
    /// When denied: the cheapest offer in the catalog that would allow it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub upgrade: Option<Upgrade>,
}

/// A malformed question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecideError {
    UnknownProduct(String),
    UnknownTier { product: String, tier: String },
    UnknownCapability(String),
    UnknownLimit(String),
    UnknownTool(String),
    NoPlanProduct,
}

impl fmt::Display for DecideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecideError::UnknownProduct(p) => write!(f, "unknown product `{p}`"),
            DecideError::UnknownTier { product, tier } => write!(f, "`{tier}` is not a tier of product `{product}`"),
            DecideError::UnknownCapability(c) => write!(f, "unknown capability `{c}`"),
            DecideError::UnknownLimit(l) => write!(f, "unknown limit `{l}`"),
            DecideError::UnknownTool(t) => write!(f, "unknown tool `{t}`"),
            DecideError::NoPlanProduct => write!(f, "the catalog names no `plan_product` for plan-level helpers"),
        }
    }
}
impl std::error::Error for DecideError {}

/// How one grant stands at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantStanding {
    Counts(Reason),
    NotYet,
    Ended,
    GraceOver,
    /// Ended by its subscription's pause ([`Grant::paused_since`]): it gives nothing, but
    /// the subscription is still held.
    Paused,
}

/// End of the grace period of a past-due grant.
pub fn grace_end(g: &Grant, grace_days: u32) -> Timestamp {
    g.past_due_since.or(g.valid_to).unwrap_or(g.valid_from).plus_seconds(grace_days as i64 * DAY)
}

/// Does grant `g` count at `now` ([`standing`])?
pub fn counts(g: &Grant, grace_days: u32, now: Timestamp) -> bool {
    matches!(standing(g, grace_days, now), GrantStanding::Counts(_))
}

/// The access rule for one grant.
pub fn standing(g: &Grant, grace_days: u32, now: Timestamp) -> GrantStanding {
    if now < g.valid_from {
        return GrantStanding::NotYet;
    }
    let before_end = g.valid_to.is_none_or(|t| now < t);
    match g.status {
        Status::Active if before_end => GrantStanding::Counts(Reason::Active),
        Status::Trial if before_end => GrantStanding::Counts(Reason::Trial),
        Status::Canceled if g.valid_to.is_some() && before_end => GrantStanding::Counts(Reason::CanceledUntilPeriodEnd),
        Status::PastDue => {
            if now < grace_end(g, grace_days) {
                GrantStanding::Counts(Reason::GracePeriod)
            } else {
                GrantStanding::GraceOver
            }
        }
        _ if g.paused_since.is_some() => GrantStanding::Paused,
        _ => GrantStanding::Ended,
    }
}

/// The instants at which a grant's standing can change.
pub(crate) fn boundaries(g: &Grant, grace_days: u32) -> [Option<Timestamp>; 3] {
    let ge = if g.status == Status::PastDue { Some(grace_end(g, grace_days)) } else { None };
    [Some(g.valid_from), g.valid_to, ge]
}

/// The effective tier of one product: the highest tier among grants that count now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective<'a> {
    pub tier: Option<usize>,
    pub grant: Option<&'a Grant>,
    pub reason: Reason,
    /// When no grant counts but some exist: why they don't (`not_yet_valid`,
    /// `grace_ended`, `paused` or `expired`). Explains a denial better than the default
    /// tier does.
    pub lapsed: Option<Reason>,
    /// Last boundary at or before now (inclusive start of this answer's window).
    pub since: Option<Timestamp>,
    /// First boundary after now.
    pub until: Option<Timestamp>,
}

/// Evaluates the effective tier of `product` at `now`. A lower or newer grant
/// never masks a higher one: every grant is looked at, the highest wins.
pub fn effective<'a>(
    catalog: &Catalog,
    ents: &'a Entitlements,
    product: &str,
    now: Timestamp,
) -> Result<Effective<'a>, DecideError> {
    let pi = catalog.product_index(product).ok_or_else(|| DecideError::UnknownProduct(product.to_string()))?;
    Ok(effective_at(catalog, ents, pi, now))
}

/// [`effective`] for the product at index `pi` (which must exist).
pub fn effective_at<'a>(catalog: &Catalog, ents: &'a Entitlements, pi: usize, now: Timestamp) -> Effective<'a> {
    effective_of(catalog, ents, pi, now, false)
}

/// [`effective_at`] for a limit of product `pi`: over the subject's own grants, leaving
/// out what a seat lends ([`Grant::lent_by_seat`]), so a member's own limits are its own
/// plan's wherever its entitlements were merged with its organizations' (a snapshot).
pub fn effective_for_limit<'a>(catalog: &Catalog, ents: &'a Entitlements, pi: usize, now: Timestamp) -> Effective<'a> {
    effective_of(catalog, ents, pi, now, true)
}

fn effective_of<'a>(catalog: &Catalog, ents: &'a Entitlements, pi: usize, now: Timestamp, own: bool) -> Effective<'a> {
    let p = &catalog.products()[pi];
    let product = p.id.as_str();
    let grace = catalog.meta().grace_period_days;
    let mut best: Option<(usize, &Grant, Reason)> = None;
    let (mut any, mut not_yet, mut grace_over, mut paused) = (false, false, false, false);
    let mut since: Option<Timestamp> = None;
    let mut until: Option<Timestamp> = None;
    for g in ents.grants.iter().filter(|g| g.product == product && !(own && g.lent_by_seat())) {
        for b in boundaries(g, grace).into_iter().flatten() {
            if b > now {
                until = Some(until.map_or(b, |u| u.min(b)));
            } else {
                since = Some(since.map_or(b, |s| s.max(b)));
            }
        }
        // A grant naming a tier the product no longer has counts as nothing.
        let Some(t) = p.tiers.iter().position(|x| *x == g.tier) else { continue };
        any = true;
        match standing(g, grace, now) {
            GrantStanding::Counts(r) => {
                let better = match best {
                    None => true,
                    // Ties go to the smaller grant id, so the order grants are
                    // listed in never changes which one explains the answer.
                    Some((bt, bg, br)) => {
                        let key = |r, g: &'a Grant| (rank(r, g), std::cmp::Reverse(g.id.as_str()));
                        t > bt || (t == bt && key(r, g) > key(br, bg))
                    }
                };
                if better {
                    best = Some((t, g, r));
                }
            }
            GrantStanding::NotYet => not_yet = true,
            GrantStanding::GraceOver => grace_over = true,
            GrantStanding::Paused => paused = true,
            GrantStanding::Ended => {}
        }
    }
    if let Some((t, g, r)) = best {
        return Effective { tier: Some(t), grant: Some(g), reason: r, lapsed: None, since, until };
    }
    let default = p.default_tier.as_ref().and_then(|d| p.tiers.iter().position(|x| x == d));
    let lapsed = if not_yet {
        Some(Reason::NotYetValid)
    } else if grace_over {
        Some(Reason::GraceEnded)
    } else if paused {
        Some(Reason::Paused)
    } else if any {
        Some(Reason::Expired)
    } else {
        None
    };
    let reason = if default.is_some() { Reason::DefaultTier } else { lapsed.unwrap_or(Reason::NoEntitlement) };
    Effective { tier: default, grant: None, reason, lapsed, since, until }
}

/// Among grants of the same tier, the one shown as "why": active beats trial
/// beats canceled-until-end beats grace, then the later end (then the smaller id).
fn rank(r: Reason, g: &Grant) -> (u8, i64) {
    let s = match r {
        Reason::Active => 4,
        Reason::Trial => 3,
        Reason::CanceledUntilPeriodEnd => 2,
        _ => 1,
    };
    (s, g.valid_to.map_or(i64::MAX, |t| t.0))
}

fn why_denied(eff: &Effective, denied_for_tier: bool) -> Reason {
    if let (None, Some(l)) = (eff.grant, eff.lapsed) {
        // Only the default tier is left: say what happened to the grants.
        l
    } else if eff.tier.is_some() {
        if denied_for_tier {
            Reason::TierTooLow
        } else {
            Reason::NotInTier
        }
    } else {
        eff.reason
    }
}

fn tier_name(catalog: &Catalog, pi: usize, t: Option<usize>) -> Option<String> {
    t.and_then(|t| catalog.products()[pi].tiers.get(t).cloned())
}

/// The upgrade shown for offer `o` (formatted once, when the catalog loaded).
fn upgrade(catalog: &Catalog, o: usize) -> Upgrade {
    catalog.upgrade_at(o).clone()
}

/// Does the subject hold at least `required_tier` of `product`?
pub fn has_access(
    catalog: &Catalog,
    ents: &Entitlements,
    product: &str,
    required_tier: &str,
    now: Timestamp,
) -> Result<Decision, DecideError> {
    let pi = catalog.product_index(product).ok_or_else(|| DecideError::UnknownProduct(product.into()))?;
    let req = catalog.products()[pi]
        .tiers
        .iter()
        .position(|t| t == required_tier)
        .ok_or_else(|| DecideError::UnknownTier { product: product.into(), tier: required_tier.into() })?;
    Ok(has_access_at(catalog, ents, pi, req, now))
}

/// [`has_access`] by product and tier index (which must exist).
fn has_access_at(catalog: &Catalog, ents: &Entitlements, pi: usize, req: usize, now: Timestamp) -> Decision {
    has_access_verdict(catalog, ents, pi, req, now).decision(catalog)
}

/// A [`Decision`] before any text is copied: indices into the catalog and the
/// entitlements. The Decision is [`Verdict::decision`]; compact answers (the wasm
/// bindings' page of tools) read the indices directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub allowed: bool,
    pub reason: Reason,
    /// The product involved, by index.
    pub product: usize,
    /// Its effective tier, by index (None: no tier at all).
    pub tier: Option<usize>,
    pub grant: Option<&'a Grant>,
    pub holds_until: Option<Timestamp>,
    /// When denied: the cheapest offer that would allow it, by index.
    pub upgrade: Option<usize>,
}

impl Verdict<'_> {
    pub fn decision(&self, catalog: &Catalog) -> Decision {
        Decision {
            allowed: self.allowed,
            reason: self.reason,
            tier: tier_name(catalog, self.product, self.tier),
            grant: self.grant.map(|g| g.id.clone()),
            holds_until: self.holds_until,
            upgrade: self.upgrade.map(|o| upgrade(catalog, o)),
        }
    }
}

/// [`has_access`] by product and tier index (which must exist), as a [`Verdict`].
pub fn has_access_verdict<'a>(catalog: &Catalog, ents: &'a Entitlements, pi: usize, req: usize, now: Timestamp) -> Verdict<'a> {
    has_access_beside(catalog, ents, pi, req, now, &Beside::default())
}

fn has_access_beside<'a>(catalog: &Catalog, ents: &'a Entitlements, pi: usize, req: usize, now: Timestamp, beside: &Beside) -> Verdict<'a> {
    let eff = effective_at(catalog, ents, pi, now);
    let allowed = eff.tier.is_some_and(|t| t >= req);
    Verdict {
        allowed,
        reason: if allowed { eff.reason } else { why_denied(&eff, true) },
        product: pi,
        tier: eff.tier,
        grant: eff.grant,
        holds_until: eff.until,
        upgrade: if allowed {
            None
        } else {
            unlocking(catalog, ents, now, &[(Need::Tier(pi, req), eff.tier)], catalog.upgrades_for(pi, req).first().copied(), beside)
        },
    }
}

/// One requirement of a question, for choosing the offer that meets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// At least tier `.1` of product `.0`.
    Tier(usize, usize),
    /// Capability `.0`.
    Capability(usize),
    /// Limit `.0` above `.1` used.
    Limit(usize, u64),
}

impl Need {
    fn product(self, catalog: &Catalog) -> usize {
        match self {
            Need::Tier(pi, _) => pi,
            Need::Capability(ci) => catalog.capability_product(ci),
            Need::Limit(li, _) => catalog.limit_product(li),
        }
    }

    /// The tier its product has for the subject now (for a limit, by the subject's own
    /// grants: [`effective_for_limit`]).
    fn tier_now(self, catalog: &Catalog, ents: &Entitlements, now: Timestamp) -> Option<usize> {
        match self {
            Need::Limit(..) => effective_for_limit(catalog, ents, self.product(catalog), now).tier,
            _ => effective_at(catalog, ents, self.product(catalog), now).tier,
        }
    }

    /// Its decision for the subject now.
    fn verdict<'a>(self, catalog: &Catalog, ents: &'a Entitlements, now: Timestamp, beside: &Beside) -> Verdict<'a> {
        match self {
            Need::Tier(pi, t) => has_access_beside(catalog, ents, pi, t, now, beside),
            Need::Capability(ci) => can_verdict(catalog, ents, ci, now, beside),
            Need::Limit(li, used) => check_limit_verdict(catalog, ents, li, used, now, beside),
        }
    }

    /// Is it met at tier `t` of its product (None: no tier)?
    fn met(self, catalog: &Catalog, t: Option<usize>) -> bool {
        match self {
            Need::Tier(_, req) => t.is_some_and(|t| t >= req),
            Need::Capability(ci) => catalog.capability_holds_at(ci, t),
            Need::Limit(li, used) => match catalog.limit_value_at(li, t) {
                LimitValue::Unlimited => true,
                LimitValue::Limited(n) => used < n,
            },
        }
    }
}

/// The offer a denial shows: the cheapest visible offer that meets every one of
/// `needs` (each with the tier its product has now) for a subject that does not
/// already hold it ([`held`]); a bundle's choice covers at most
/// as many products as it lets the buyer choose. `first`, the catalog's precomputed
/// cheapest offer for the first unmet need alone, is tried first: when it does, no
/// other offer is looked at (any offer meeting every need meets that one, and none
/// is cheaper).
fn unlocking(
    catalog: &Catalog,
    ents: &Entitlements,
    now: Timestamp,
    needs: &[(Need, Option<usize>)],
    first: Option<usize>,
    beside: &Beside,
) -> Option<usize> {
    // With subscriptions, an offer is named only as the dialog lists it ([`unlock_at`]):
    // one checkout sells beside them, or a change of the subscription it replaces.
    let sold = |o: usize| beside.sold(catalog, ents, now, o, needs);
    if let Some(o) = first {
        // The precomputed offer meets a question of one need by construction.
        if !held(catalog, ents, now, o) && (needs.len() == 1 || meets(catalog, o, needs).is_some()) && sold(o) {
            return Some(o);
        }
    }
    let (need, _) = needs.iter().find(|(need, t)| !need.met(catalog, *t))?;
    catalog
        .ranked_offers(need.product(catalog))
        .iter()
        .map(|x| x.0)
        .find(|&o| Some(o) != first && !held(catalog, ents, now, o) && meets(catalog, o, needs).is_some() && sold(o))
}

/// What the subject's subscriptions say of the offers a batch of questions at one `now`
/// names (a page's tools, a tool's requirements), worked out once for the batch: its
/// subscriptions as checkout reads them ([`subscriptions`]), and whether checkout sells an
/// offer with the products preselected for it, per offer and products.
#[derive(Default)]
struct Beside {
    subs: std::cell::OnceCell<Vec<crate::checkout::Held>>,
    asked: std::cell::RefCell<Vec<(usize, Vec<String>, bool)>>,
}

impl Beside {
    /// Whether the dialog lists offer `o`, which meets `needs` ([`unlock_at`]), asked once
    /// per offer and products (a plan's none; a bundle's as the question preselects them).
    fn sold(&self, catalog: &Catalog, ents: &Entitlements, now: Timestamp, o: usize, needs: &[(Need, Option<usize>)]) -> bool {
        let subs = self.subs.get_or_init(|| subscriptions(catalog, ents, now));
        if subs.is_empty() {
            return true;
        }
        let Some((chosen, n)) = meets(catalog, o, needs) else { return false };
        let clouds: Vec<String> =
            preselect(catalog, ents, now, o, needs, &chosen[..n]).map(|pi| catalog.products()[pi].id.clone()).collect();
        if let Some((_, _, known)) = self.asked.borrow().iter().find(|(b, c, _)| *b == o && *c == clouds) {
            return *known;
        }
        let sold = sold_with(catalog, ents, now, catalog.offer_at(o), &clouds, subs);
        self.asked.borrow_mut().push((o, clouds, sold));
        sold
    }
}

/// The subject's subscriptions as checkout reads them ([`crate::checkout::Held`]), from its
/// grants: one per subscription reference (`source_ref`) whose offer is recurring (a seat's
/// lent grants left out), its offer that of its grant with the smallest id, its provider
/// the one that sells that offer. Running while a
/// grant of it counts, is past due past its grace or is paused ([`running`]), its state
/// the most held-up one of them (paused, then past due); ending at its period's end when
/// every grant of it that counts is `canceled` and none is paused; what it gives, the
/// products and tiers of those grants.
pub(crate) fn subscriptions(catalog: &Catalog, ents: &Entitlements, now: Timestamp) -> Vec<crate::checkout::Held> {
    use crate::billing::facts::SubStatus;
    let grace = catalog.meta().grace_period_days;
    let rank = |x: SubStatus| match x {
        SubStatus::Paused => 3,
        SubStatus::PastDue => 2,
        SubStatus::Active => 1,
        _ => 0,
    };
    let mut subs: Vec<(&str, crate::checkout::Held)> = Vec::new();
    for g in &ents.grants {
        let Some(r) = g.source_ref.as_deref() else { continue };
        let Some(o) = g.offer.as_deref().and_then(|k| catalog.offer(k)) else { continue };
        if o.price.interval == crate::catalog::Interval::OneTime || g.lent_by_seat() {
            continue;
        }
        let id = r.split_once(':').map_or(r, |(_, id)| id);
        let at = subs.iter().position(|(_, s)| s.id == id).unwrap_or_else(|| {
            let provider = crate::checkout::provider_of(catalog, o);
            subs.push((
                g.id.as_str(),
                crate::checkout::Held {
                    provider,
                    id: id.to_string(),
                    offer: Some(o.key.clone()),
                    status: SubStatus::Ended,
                    quantity: 1,
                    cancel_at_period_end: true,
                    current_period_end: None,
                    products: Vec::new(),
                },
            ));
            subs.len() - 1
        });
        let (first, s) = &mut subs[at];
        if g.id.as_str() < *first {
            *first = g.id.as_str();
            s.offer = Some(o.key.clone());
        }
        let standing = standing(g, grace, now);
        let status = match standing {
            GrantStanding::Paused => SubStatus::Paused,
            GrantStanding::GraceOver => SubStatus::PastDue,
            GrantStanding::Counts(_) => SubStatus::Active,
            _ => continue,
        };
        if rank(status) > rank(s.status) {
            s.status = status;
        }
        if !(status == SubStatus::Active && g.status == Status::Canceled && g.paused_since.is_none()) {
            s.cancel_at_period_end = false;
        }
        s.products.push((g.product.clone(), g.tier.clone()));
    }
    subs.into_iter().map(|(_, s)| s).filter(|s| s.is_live()).collect()
}

/// Does the subject hold offer `o` through a grant that counts now, or through a
/// subscription still running past its grace or paused ([`running`])? Or is it another
/// plan of a product a paused subscription of the subject holds ([`paused_product`])?
/// Checkout sells none of them (already subscribed), and a paused subscription is not
/// changed either: it is resumed.
fn held(catalog: &Catalog, ents: &Entitlements, now: Timestamp, o: usize) -> bool {
    let offer = catalog.offer_at(o);
    holds_offer(catalog, ents, &offer.key, now)
        || (ents.grants.iter().any(|g| g.paused_since.is_some())
            && crate::checkout::second_plan_of(catalog, offer, |p| paused_product(catalog, ents, &p.id, now)).is_some())
}

/// Is a subscription of the subject's own (not one a seat lends) that gives `product`
/// paused at `now` ([`GrantStanding::Paused`])?
pub(crate) fn paused_product(catalog: &Catalog, ents: &Entitlements, product: &str, now: Timestamp) -> bool {
    let grace = catalog.meta().grace_period_days;
    ents.grants.iter().any(|g| g.product == product && !g.lent_by_seat() && standing(g, grace, now) == GrantStanding::Paused)
}

/// Does the subject hold offer `key` through a grant that counts now, or through a
/// subscription still running past its grace or paused? The one rule of
/// "an offer the subject holds already", which no upgrade names (a credit pool's offer
/// too, [`crate::usage::credit_offer`]).
pub fn holds_offer(catalog: &Catalog, ents: &Entitlements, key: &str, now: Timestamp) -> bool {
    ents.grants.iter().any(|g| g.offer.as_deref() == Some(key) && running(g, catalog.meta().grace_period_days, now))
}

/// Is grant `g` one of a subscription (or purchase) the subject still holds at `now`, as
/// its provider and checkout see it ([`crate::billing::facts::SubStatus::is_running`])?
/// Yes while it counts, and while it is past due with its grace over: the grant gives
/// nothing then, but the provider still retries the payment and the subscription renews
/// once its open invoice is paid (the snapshot's payments due, the billing portal), so
/// its holder is never sold its plan again (checkout: already subscribed), and an offer
/// that gives more is a change of it. And while its subscription is paused
/// ([`GrantStanding::Paused`]): the grant gives nothing from the pause on, as an ended
/// one, but the provider keeps the subscription, which is resumed, not bought again.
pub(crate) fn running(g: &Grant, grace_days: u32, now: Timestamp) -> bool {
    matches!(standing(g, grace_days, now), GrantStanding::Counts(_) | GrantStanding::GraceOver | GrantStanding::Paused)
}

/// A question's needs: at most three (a tool's tier, capability and limit).
const MAX_NEEDS: usize = 3;

/// Would offer `o` meet every one of `needs` (each with the tier its product has now)?
/// The products a bundle's buyer must choose for it (the first `.1` of `.0`: one choice
/// of the bundle gives them all, each at a tier that meets its needs, [`chosen_meets`]),
/// or None.
fn meets(catalog: &Catalog, o: usize, needs: &[(Need, Option<usize>)]) -> Option<([usize; MAX_NEEDS], usize)> {
    let mut chosen = [0; MAX_NEEDS];
    let mut n = 0;
    for &(need, current) in needs.iter().take(MAX_NEEDS) {
        let pi = need.product(catalog);
        let (fixed, choice) = catalog.offer_tiers_at(o, pi);
        let with_fixed = current.max(fixed);
        if need.met(catalog, with_fixed) {
            continue;
        }
        if !need.met(catalog, with_fixed.max(choice)) {
            return None;
        }
        if !chosen[..n].contains(&pi) {
            chosen[n] = pi;
            n += 1;
        }
    }
    // One product to choose: a choice grant that gives it a tier meeting its needs (`choice`
    // above) is the placement; two or more must fit the bundle's grants together.
    if n <= 1 {
        return Some((chosen, n));
    }
    let offer = catalog.offer_at(o);
    catalog.bundle_choice(offer, &chosen[..n], |i, t| chosen_meets(catalog, o, needs, chosen[i], t)).map(|_| (chosen, n))
}

/// Does tier `t` of product `pi`, chosen in bundle `o`, leave every one of `needs` on that
/// product met (with the offer's fixed grants and the tier held now)?
fn chosen_meets(catalog: &Catalog, o: usize, needs: &[(Need, Option<usize>)], pi: usize, t: usize) -> bool {
    let fixed = catalog.offer_tiers_at(o, pi).0;
    needs.iter().filter(|(need, _)| need.product(catalog) == pi).all(|&(need, current)| need.met(catalog, current.max(fixed).max(Some(t))))
}

/// A question a denial answers with offers: access to a product's tier, a capability,
/// a limit after `used`, or a tool (with the usage of its limit).
#[derive(Clone, Copy, Debug)]
pub enum Ask<'a> {
    Access { product: &'a str, tier: &'a str },
    Capability(&'a str),
    Limit { limit: &'a str, used: u64 },
    Tool { tool: &'a str, usage: &'a Usage },
}

/// An offer that would allow a denied question, as an upgrade dialog lists it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unlock {
    pub upgrade: Upgrade,
    /// How many products a bundle's buyer chooses (0: not a bundle).
    pub choose: u32,
    /// The products preselected for a bundle: the ones the question needs, then those the
    /// subject holds now (or through a subscription past due past its grace), then the
    /// next eligible ones.
    pub clouds: Vec<String>,
    /// The products a bundle's buyer may choose from.
    pub eligible: Vec<String>,
    /// A running subscription of the subject whose every grant this offer (with `clouds`)
    /// gives at that tier or above: bought beside it, both would be billed, so it is a change
    /// of that subscription (`POST /v1/subscriptions/change`), not a purchase. Never one
    /// that ends at its period's end (bought beside it, nothing is billed twice), nor one
    /// in another currency (an offer checkout would refuse beside it is not listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub replaces: Option<Replaced>,
}

/// The subscription an [`Unlock`] replaces, and what the change adds to its monthly price.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Replaced {
    /// The provider's id of the subscription (`sub_...`).
    pub subscription: String,
    /// Its offer.
    pub offer: String,
    /// The offer's monthly price less the subscription's (same currency, and both priced
    /// the same way, per seat or whole; none otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub difference: Option<crate::money::Money>,
    /// Both prices are a seat's ([`crate::catalog::Offer::priced_per_seat`]): `difference`
    /// is a seat's too, and the subscription pays it once for each seat it has.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_seat: bool,
}

/// The running subscription the offer (with `clouds`) would bill twice: every grant of it
/// that counts now, or is past due past its grace ([`running`]: checkout sells nothing
/// beside it either), is given by the offer at its tier or above. A subscription that ends
/// at its period's end (its grants `canceled`: canceled at the period end, paused or
/// ended) bills nothing more: the offer is bought beside it, as checkout sells it, and
/// replaces nothing. Only a subscription in the offer's currency is replaced (a change
/// keeps a subscription's currency; beside one in another currency the offer is not sold
/// at all). When the offer would bill several twice, the one named does not depend on the
/// order of the grants: the highest monthly price first (the change adds least), then the
/// smallest subscription reference. A subscription's offer is that of its
/// grant with the smallest id (its current plan: a past-due subscription's grants of
/// the plan its period's first payment paid for end in `:paid`).
fn replaced(catalog: &Catalog, ents: &Entitlements, now: Timestamp, offer: &crate::catalog::Offer, clouds: &[String]) -> Option<Replaced> {
    if offer.price.interval == crate::catalog::Interval::OneTime {
        return None;
    }
    let gives = catalog.offer_gives(offer, clouds);
    let mut subs: std::collections::BTreeMap<&str, (&str, &crate::catalog::Offer)> = std::collections::BTreeMap::new();
    for g in &ents.grants {
        let (Some(r), Some(o)) = (g.source_ref.as_deref(), g.offer.as_deref().and_then(|k| catalog.offer(k))) else { continue };
        if o.price.interval != crate::catalog::Interval::OneTime && subs.get(r).is_none_or(|(id, _)| g.id.as_str() < *id) {
            subs.insert(r, (g.id.as_str(), o));
        }
    }
    let (r, held) = subs
        .into_iter()
        .filter(|(r, _)| {
            let holds: Option<Vec<(String, usize)>> = ents
                .grants
                .iter()
                .filter(|g| g.source_ref.as_deref() == Some(*r) && g.status != Status::Canceled)
                .filter(|g| running(g, catalog.meta().grace_period_days, now))
                .map(|g| Some((g.product.clone(), catalog.tier_index(&g.product, &g.tier)?)))
                .collect();
            holds.is_some_and(|h| crate::catalog::covers(&gives, &h))
        })
        // A change keeps the subscription's currency (neither provider changes it).
        .filter(|(_, (_, held))| held.price.currency == offer.price.currency)
        .map(|(r, (_, held))| (r, held))
        .min_by_key(|(r, held)| (std::cmp::Reverse(held.price.monthly_equivalent()), *r))?;
    let per_seat = offer.priced_per_seat();
    let difference = (held.priced_per_seat() == per_seat).then(|| crate::money::Money {
        amount: offer.price.monthly_equivalent() - held.price.monthly_equivalent(),
        currency: offer.price.currency.clone(),
    });
    let per_seat = per_seat && difference.is_some();
    Some(Replaced { subscription: r.split_once(':').map_or(r, |(_, id)| id).to_string(), offer: held.key.clone(), difference, per_seat })
}

/// Every visible offer that would allow `ask` for this subject, cheapest first (monthly
/// equivalent, then offer key): each meets every requirement of the question with what
/// the subject holds, and none is an offer it holds already (checkout would refuse it),
/// a past-due subscription's past its grace included ([`holds_offer`]: paying its open
/// invoice restores that plan; an offer that gives more is a change of it, `replaces`).
/// The first is the offer the denial names. Empty when the question is allowed.
pub fn offers_unlocking(catalog: &Catalog, ents: &Entitlements, ask: Ask<'_>, now: Timestamp) -> Result<Vec<Unlock>, DecideError> {
    let mut needs: Vec<Need> = Vec::new();
    match ask {
        Ask::Access { product, tier } => {
            let pi = catalog.product_index(product).ok_or_else(|| DecideError::UnknownProduct(product.into()))?;
            let t = catalog
                .tier_index(product, tier)
                .ok_or_else(|| DecideError::UnknownTier { product: product.into(), tier: tier.into() })?;
            needs.push(Need::Tier(pi, t));
        }
        Ask::Capability(c) => {
            needs.push(Need::Capability(catalog.capability_index(c).ok_or_else(|| DecideError::UnknownCapability(c.into()))?))
        }
        Ask::Limit { limit, used } => {
            needs.push(Need::Limit(catalog.limit_index(limit).ok_or_else(|| DecideError::UnknownLimit(limit.into()))?, used))
        }
        Ask::Tool { tool, usage } => {
            let ti = catalog.tool_index(tool).ok_or_else(|| DecideError::UnknownTool(tool.into()))?;
            needs.extend(tool_needs(catalog, ti, usage));
        }
    }
    let needs: Vec<(Need, Option<usize>)> = needs.into_iter().map(|n| (n, n.tier_now(catalog, ents, now))).collect();
    let Some((first, _)) = needs.iter().find(|(need, t)| !need.met(catalog, *t)) else { return Ok(Vec::new()) };
    let subs = subscriptions(catalog, ents, now);
    Ok(catalog
        .ranked_offers(first.product(catalog))
        .iter()
        .filter(|&&(o, _)| !held(catalog, ents, now, o))
        .filter_map(|&(o, _)| unlock_at(catalog, ents, now, o, &needs, &subs))
        .collect())
}

/// `replaces`, when a change may move that subscription ([`crate::checkout::Held::changeable`]:
/// a Razorpay subscription past due or paused is not changed).
fn changeable(replaces: Option<Replaced>, subs: &[crate::checkout::Held]) -> Option<Replaced> {
    replaces.filter(|r| subs.iter().find(|s| s.id == r.subscription).is_none_or(crate::checkout::Held::changeable))
}

/// Offer `o` as the upgrade dialog lists it for `needs`, or None when it does not meet
/// them, or when checkout would refuse it beside the subject's subscriptions `subs`
/// ([`crate::checkout::bills_twice`]) and it is no change of one of them ([`replaced`]).
fn unlock_at(
    catalog: &Catalog,
    ents: &Entitlements,
    now: Timestamp,
    o: usize,
    needs: &[(Need, Option<usize>)],
    subs: &[crate::checkout::Held],
) -> Option<Unlock> {
    let (chosen, n) = meets(catalog, o, needs)?;
    let products = catalog.products();
    let offer = catalog.offer_at(o);
    let clouds: Vec<String> = preselect(catalog, ents, now, o, needs, &chosen[..n]).map(|pi| products[pi].id.clone()).collect();
    let replaces = if subs.is_empty() { None } else { changeable(replaced(catalog, ents, now, offer, &clouds), subs) };
    if replaces.is_none() && crate::checkout::bills_twice(catalog, offer, &clouds, subs).is_some() {
        return None;
    }
    let choose = catalog.offer_choices_at(o);
    let eligible = if choose == 0 { Vec::new() } else { eligible(catalog, o).map(|pi| products[pi].id.clone()).collect() };
    Some(Unlock { upgrade: upgrade(catalog, o), choose, clouds, eligible, replaces })
}

/// Whether checkout sells `offer` with `clouds` beside `subs`, or it is a change of one.
fn sold_with(catalog: &Catalog, ents: &Entitlements, now: Timestamp, offer: &crate::catalog::Offer, clouds: &[String], subs: &[crate::checkout::Held]) -> bool {
    crate::checkout::bills_twice(catalog, offer, clouds, subs).is_none() || changeable(replaced(catalog, ents, now, offer, clouds), subs).is_some()
}

/// The products a bundle's buyer may choose for offer `o`, by index.
fn eligible(catalog: &Catalog, o: usize) -> impl Iterator<Item = usize> + '_ {
    (0..catalog.products().len()).filter(move |&pi| catalog.offer_tiers_at(o, pi).1.is_some())
}

/// The products preselected for offer `o` (none for an offer that is no bundle): the
/// `chosen` ones the question needs, then the ones the subject holds now, or holds through
/// a subscription past due past its grace (a bigger bundle keeps what the smaller one gave,
/// and replaces it), then the others: each while one choice of the bundle still gives them
/// all, the needed ones at tiers that meet the question. (Not a paused subscription's: it
/// is resumed, never changed.)
fn preselect(
    catalog: &Catalog,
    ents: &Entitlements,
    now: Timestamp,
    o: usize,
    needs: &[(Need, Option<usize>)],
    chosen: &[usize],
) -> impl Iterator<Item = usize> {
    let choose = catalog.offer_choices_at(o);
    let mut picked: Vec<usize> = chosen.to_vec();
    if choose > 0 {
        let grace = catalog.meta().grace_period_days;
        let products = catalog.products();
        let holds = |pi: &usize| {
            ents.grants.iter().any(|g| {
                g.product == products[*pi].id
                    && matches!(standing(g, grace, now), GrantStanding::Counts(_) | GrantStanding::GraceOver)
            })
        };
        let (mine, others): (Vec<usize>, Vec<usize>) = eligible(catalog, o).partition(holds);
        let offer = catalog.offer_at(o);
        let n = chosen.len();
        for pi in mine.into_iter().chain(others) {
            if picked.len() as u32 >= choose {
                break;
            }
            if picked.contains(&pi) {
                continue;
            }
            picked.push(pi);
            let fits = |i: usize, t: usize| i >= n || chosen_meets(catalog, o, needs, picked[i], t);
            if catalog.bundle_choice(offer, &picked, fits).is_none() {
                picked.pop();
            }
        }
    }
    picked.into_iter()
}

/// The cheapest visible offer whose tier on `product` satisfies `pred` and is
/// above `current` (the tier held now), and that the subject does not hold already
/// (as [`unlocking`] leaves out: checkout would refuse it): an upgrade never suggests
/// the same or a lower tier, which matters for inverse flags such as "watermark
/// exports" that only a lower tier has. A scan of every offer: `can` and
/// `check_limit` use the catalog's precomputed answers to the same question instead
/// ([`Catalog::capability_upgrade`], [`Catalog::limit_upgrade`]).
fn cheapest_where(
    catalog: &Catalog,
    ents: &Entitlements,
    now: Timestamp,
    product: &str,
    current: Option<usize>,
    pred: impl Fn(usize) -> bool,
) -> Option<Upgrade> {
    let subs = subscriptions(catalog, ents, now);
    // Beside subscriptions, one checkout sells or a change of one (a bundle with `product`
    // among its chosen products), as the dialog's offers ([`unlock_at`]).
    let sold = |offer: &crate::catalog::Offer| {
        subs.is_empty() || {
            let clouds = if crate::billing::parse::bundle_size(offer) > 0 { vec![product.to_string()] } else { Vec::new() };
            sold_with(catalog, ents, now, offer, &clouds, &subs)
        }
    };
    catalog
        .offers()
        .iter()
        .enumerate()
        .filter(|&(o, offer)| !offer.hidden && !held(catalog, ents, now, o))
        .filter(|(_, o)| catalog.offer_tier_for(o, product).is_some_and(|t| current.is_none_or(|c| t > c) && pred(t)))
        .filter(|(_, o)| sold(o))
        .min_by(|(_, a), (_, b)| catalog.cheaper(a, b))
        .map(|(o, _)| upgrade(catalog, o))
}

/// Does the subject hold a boolean capability?
pub fn can(catalog: &Catalog, ents: &Entitlements, capability: &str, now: Timestamp) -> Result<Decision, DecideError> {
    let ci = catalog.capability_index(capability).ok_or_else(|| DecideError::UnknownCapability(capability.into()))?;
    Ok(can_at(catalog, ents, ci, now))
}

/// [`can`] by capability index (which must exist).
fn can_at(catalog: &Catalog, ents: &Entitlements, ci: usize, now: Timestamp) -> Decision {
    can_verdict(catalog, ents, ci, now, &Beside::default()).decision(catalog)
}

fn can_verdict<'a>(catalog: &Catalog, ents: &'a Entitlements, ci: usize, now: Timestamp, beside: &Beside) -> Verdict<'a> {
    let pi = catalog.capability_product(ci);
    let eff = effective_at(catalog, ents, pi, now);
    let allowed = catalog.capability_holds_at(ci, eff.tier);
    Verdict {
        allowed,
        reason: if allowed { eff.reason } else { why_denied(&eff, false) },
        product: pi,
        tier: eff.tier,
        grant: eff.grant,
        holds_until: eff.until,
        upgrade: if allowed {
            None
        } else {
            unlocking(catalog, ents, now, &[(Need::Capability(ci), eff.tier)], catalog.capability_upgrade(ci, eff.tier), beside)
        },
    }
}

/// The value of a numeric limit, with its explanation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitAnswer {
    pub limit: LimitValue,
    pub tier: Option<String>,
    pub holds_until: Option<Timestamp>,
}

pub fn limit(catalog: &Catalog, ents: &Entitlements, name: &str, now: Timestamp) -> Result<LimitAnswer, DecideError> {
    let li = catalog.limit_index(name).ok_or_else(|| DecideError::UnknownLimit(name.into()))?;
    let pi = catalog.limit_product(li);
    let eff = effective_for_limit(catalog, ents, pi, now);
    Ok(LimitAnswer {
        limit: catalog.limit_value_at(li, eff.tier),
        tier: tier_name(catalog, pi, eff.tier),
        holds_until: eff.until,
    })
}

/// May one more unit be used, given `used` so far in the limit's period?
pub fn check_limit(
    catalog: &Catalog,
    ents: &Entitlements,
    name: &str,
    used: u64,
    now: Timestamp,
) -> Result<Decision, DecideError> {
    let li = catalog.limit_index(name).ok_or_else(|| DecideError::UnknownLimit(name.into()))?;
    Ok(check_limit_at(catalog, ents, li, used, now))
}

/// [`check_limit`] by limit index (which must exist).
fn check_limit_at(catalog: &Catalog, ents: &Entitlements, li: usize, used: u64, now: Timestamp) -> Decision {
    check_limit_verdict(catalog, ents, li, used, now, &Beside::default()).decision(catalog)
}

fn check_limit_verdict<'a>(catalog: &Catalog, ents: &'a Entitlements, li: usize, used: u64, now: Timestamp, beside: &Beside) -> Verdict<'a> {
    let pi = catalog.limit_product(li);
    let eff = effective_for_limit(catalog, ents, pi, now);
    let allowed = match catalog.limit_value_at(li, eff.tier) {
        LimitValue::Unlimited => true,
        LimitValue::Limited(n) => used < n,
    };
    Verdict {
        allowed,
        reason: if allowed {
            Reason::WithinLimit
        } else if eff.tier.is_none() && eff.reason != Reason::DefaultTier {
            eff.reason
        } else {
            Reason::LimitReached
        },
        product: pi,
        tier: eff.tier,
        grant: eff.grant,
        holds_until: eff.until,
        upgrade: if allowed {
            None
        } else {
            unlocking(catalog, ents, now, &[(Need::Limit(li, used), eff.tier)], catalog.limit_upgrade(li, eff.tier, used), beside)
        },
    }
}

/// What an export gets.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum ExportPolicy {
    Full,
    Watermarked,
    Refused { message: String, upgrade: Option<Upgrade> },
}

pub const CAP_EXPORT_FULL_RES: &str = "export_full_res";
pub const CAP_WATERMARK_EXPORTS: &str = "watermark_exports";
pub const REFUSED_EXPORT_MESSAGE: &str = "Upgrade to export.";

/// The VCM Suite app's export policy: full resolution without watermark, watermarked,
/// or refused with "Upgrade to export." when neither capability is held.
pub fn export_policy(catalog: &Catalog, ents: &Entitlements, now: Timestamp) -> Result<ExportPolicy, DecideError> {
    let full = can(catalog, ents, CAP_EXPORT_FULL_RES, now)?;
    let wm = can(catalog, ents, CAP_WATERMARK_EXPORTS, now)?;
    Ok(if wm.allowed {
        ExportPolicy::Watermarked
    } else if full.allowed {
        ExportPolicy::Full
    } else {
        let cap = catalog.capability(CAP_WATERMARK_EXPORTS).expect("checked above");
        let full_cap = catalog.capability(CAP_EXPORT_FULL_RES).expect("checked above");
        let current = effective(catalog, ents, &full_cap.product, now)?.tier;
        let upgrade = cheapest_where(catalog, ents, now, &full_cap.product, current, |t| {
            catalog.capability_holds(full_cap, Some(t)) || catalog.capability_holds(cap, Some(t))
        });
        ExportPolicy::Refused { message: REFUSED_EXPORT_MESSAGE.into(), upgrade }
    })
}

/// The state of one tool on a page.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolState {
    pub tool: String,
    pub label: String,
    pub locked: bool,
    pub decision: Decision,
}

/// Usage so far for limit-gated tools (limit id -> used in the current period).
pub type Usage = std::collections::BTreeMap<String, u64>;

/// Decides one tool: all of its requirements must hold; the first failing one explains.
pub fn tool_state(
    catalog: &Catalog,
    ents: &Entitlements,
    tool_id: &str,
    usage: &Usage,
    now: Timestamp,
) -> Result<ToolState, DecideError> {
    let ti = catalog.tool_index(tool_id).ok_or_else(|| DecideError::UnknownTool(tool_id.into()))?;
    Ok(tool_state_at(catalog, ents, ti, usage, now, &Beside::default()))
}

/// [`tool_state`] by tool index (which must exist).
fn tool_state_at(catalog: &Catalog, ents: &Entitlements, ti: usize, usage: &Usage, now: Timestamp, beside: &Beside) -> ToolState {
    let tool = &catalog.tools()[ti];
    let v = tool_verdict_beside(catalog, ents, ti, usage, now, beside);
    ToolState { tool: tool.id.clone(), label: tool.label.clone(), locked: !v.allowed, decision: v.decision(catalog) }
}

/// One tool's [`Verdict`] (the tool is locked when it is not allowed): the
/// requirements come as indices resolved when the catalog loaded; all must hold,
/// the first failing one explains, and the answer holds until the earliest of theirs.
pub fn tool_verdict<'a>(catalog: &Catalog, ents: &'a Entitlements, ti: usize, usage: &Usage, now: Timestamp) -> Verdict<'a> {
    tool_verdict_beside(catalog, ents, ti, usage, now, &Beside::default())
}

fn tool_verdict_beside<'a>(catalog: &Catalog, ents: &'a Entitlements, ti: usize, usage: &Usage, now: Timestamp, beside: &Beside) -> Verdict<'a> {
    let mut needs = [(Need::Capability(0), None); MAX_NEEDS];
    let mut verdicts: [Option<Verdict<'a>>; MAX_NEEDS] = [None; MAX_NEEDS];
    let mut n = 0;
    for need in tool_needs(catalog, ti, usage) {
        let v = need.verdict(catalog, ents, now, beside);
        (needs[n], verdicts[n]) = ((need, v.tier), Some(v));
        n += 1;
    }
    let all = verdicts[..n].iter().flatten();
    let holds_until = all.clone().filter_map(|v| v.holds_until).min();
    let mut v = match all.clone().find(|v| !v.allowed) {
        Some(v) => *v,
        None => *all.last().expect("validated: a tool has a requirement"),
    };
    v.holds_until = holds_until;
    if !v.allowed && n > 1 {
        // The offer shown must unlock the tool: meet every requirement, not only
        // the first unmet one.
        v.upgrade = unlocking(catalog, ents, now, &needs[..n], v.upgrade, beside);
    }
    v
}

/// A tool's requirements, in order (tier, capability, limit with its usage so far).
fn tool_needs(catalog: &Catalog, ti: usize, usage: &Usage) -> impl Iterator<Item = Need> {
    let req = catalog.tool_requirement(ti);
    let used = |li: usize| usage.get(&catalog.doc.limits[li].id).copied().unwrap_or(0);
    let limit = req.limit.map(|li| Need::Limit(li, used(li)));
    req.tier.map(|(pi, t)| Need::Tier(pi, t)).into_iter().chain(req.capability.map(Need::Capability)).chain(limit)
}

/// The batch call: every tool of a page (or every tool when `page` is None) at once.
pub fn page_state(
    catalog: &Catalog,
    ents: &Entitlements,
    page: Option<&str>,
    usage: &Usage,
    now: Timestamp,
) -> Result<Vec<ToolState>, DecideError> {
    let beside = Beside::default();
    Ok(catalog
        .tools()
        .iter()
        .enumerate()
        .filter(|(_, t)| page.is_none_or(|p| t.page == p))
        .map(|(ti, _)| tool_state_at(catalog, ents, ti, usage, now, &beside))
        .collect())
}

/// [`page_state`] as verdicts, by tool index: what the wasm bindings hand to
/// JavaScript as numbers, the names looked up there in tables the catalog gave once.
pub fn page_verdicts<'a>(
    catalog: &Catalog,
    ents: &'a Entitlements,
    page: Option<&str>,
    usage: &Usage,
    now: Timestamp,
) -> Vec<(usize, Verdict<'a>)> {
    let beside = Beside::default();
    catalog
        .tools()
        .iter()
        .enumerate()
        .filter(|(_, t)| page.is_none_or(|p| t.page == p))
        .map(|(ti, _)| (ti, tool_verdict_beside(catalog, ents, ti, usage, now, &beside)))
        .collect()
}

/// The instant the whole entitlement picture can next change (min over every grant's boundaries).
pub fn next_change(catalog: &Catalog, ents: &Entitlements, now: Timestamp) -> Option<Timestamp> {
    let grace = catalog.meta().grace_period_days;
    ents.grants.iter().flat_map(|g| boundaries(g, grace)).flatten().filter(|&b| b > now).min()
}
