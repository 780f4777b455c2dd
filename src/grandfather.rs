//! Grandfathering: a subscriber keeps the terms they bought until the catalog says otherwise.
//!
//! Every grant records the store's catalog version it was sold under
//! ([`Grant::catalog_version`], from the purchase fact's [`crate::billing::Fact::catalog_version`])
//! and the version its renewals moved it to ([`Grant::renewal_version`]): the fold moves a
//! grant onto the terms of the version a renewal was read under when that version's offer
//! migrates its subscribers (`at_renewal` or `now`, [`renewal_moves`]), and a renewal under
//! a version that keeps them leaves it where it was. The terms a grant is on are those of
//! that version, else of the one it was sold under. While a newer version is active, the
//! grant's offer in that version says what happens to it ([`Migration`]):
//!
//! - `keep` (the default): the terms it is on, until the grant ends: a version that keeps
//!   never undoes what an earlier version's `at_renewal` or `now` did at a renewal;
//! - `at_renewal`: those terms until its first renewal under it, then its own;
//! - `now`: the active version's terms at once.
//!
//! A `now` version moves a grant for good only if the grant renewed while it was active: the
//! core knows which versions were active only through the facts read under them.
//!
//! A sale is made under the version its own facts were read under (its checkout, what gave
//! its first period, that period's payments), a renewal under the one its facts were: when
//! they were read under several (a retried event), the earliest, as versions are numbered
//! as they are pushed. Nothing read later counts, so a rollback (an older version active
//! again) never moves a sale made under a newer version to the older terms. A trial's
//! conversion is the first paid period of the sale made at checkout, no renewal; a change
//! of plan is a new sale of the new plan, under the version it was read under
//! ([`crate::billing::SubscriptionState::catalog_version`]).
//!
//! An offer the active version no longer has keeps its subscribers' terms. A grant without a
//! version (sold under a file or embedded catalog, or before versions existed) and every
//! grant while the catalog itself has no version are held under the catalog in hand.
//!
//! Terms are a product's capabilities and limits as that version defined them ([`Terms`]).
//! What a subject may do is decided by the ordinary decisions ([`crate::decide`],
//! [`crate::meter`]) on the active catalog with the terms of its grants put in
//! ([`apply`]): a capability is held when any grant that counts at `now` holds it under the
//! terms it is on (grants on one version's terms at their highest tier), so neither a
//! higher grant nor one on newer terms masks what another gives (a member seated in two
//! organizations keeps what the one on older terms gives); the limits (the value per tier
//! and the window) are those of the terms of the grant that decides them, the subject's
//! highest own grant. [`terms`] says how. Only ids the active version still has are taken: a capability or
//! limit the old version did not have follows the active version, and one the active
//! version dropped cannot be asked about. Prices, offers, upgrades, pools and tools always
//! come from the active version, so a new purchase always pays the active price.
//!
//! The core reads no store: a host passes the older versions its subjects' grants need
//! ([`versions_needed`]); they are immutable, so a host keeps them as long as it likes.
//! A signed snapshot carries the terms its grants are held under ([`crate::snapshot::Snapshot::terms`]),
//! so a browser that only has the active catalog decides as the server does.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{Capability, Catalog, Limit, Migration};
use crate::decide::{boundaries, counts};
use crate::model::Grant;
use crate::time::Timestamp;

/// The key under which a host gives [`crate::billing::reduce_sold`] the catalog that sold
/// what was read before the store had any version (the deployment's own file or embedded
/// catalog): a fact read under no version credits what that catalog sold, not what a
/// version pushed since sells. The store's versions start at 1.
pub const UNVERSIONED: u32 = 0;

/// Whether a renewal read under `at` (a catalog version) moves a grant of offer `offer`
/// onto that version's terms: its offer there migrates its subscribers (`at_renewal` or
/// `now`). An offer the version does not have keeps them.
pub fn renewal_moves(at: &Catalog, offer: &str) -> bool {
    at.offer(offer).is_some_and(|o| o.migration != Migration::Keep)
}

/// The versions whose terms `g` may be on, older than the active one: the one it was sold
/// under, and the one its renewals moved it to when that is neither (whether they did
/// depends on that version's offer, [`terms_version`]). Empty when the active version's
/// offer moves it `now`, or its renewal under the active version moved it there.
fn candidates(active: &Catalog, g: &Grant) -> Vec<u32> {
    on_terms(active, g, |_| None)
}

/// The older versions whose terms `g` is on while `active` is the active catalog, as
/// `moved(r)` says whether its renewal under version `r` moved it (`None`: not known, both
/// it and the version it was sold under may be). The one reading of [`Migration`] that
/// [`candidates`] and [`terms_version`] share.
fn on_terms(active: &Catalog, g: &Grant, moved: impl Fn(u32) -> Option<bool>) -> Vec<u32> {
    let (Some(active_version), Some(sold)) = (active.version, g.catalog_version) else { return Vec::new() };
    let offer = g.offer.as_deref().unwrap_or_default();
    if active.offer(offer).is_some_and(|o| o.migration == Migration::Now) {
        return Vec::new();
    }
    let on = match g.renewal_version {
        Some(r) if r == active_version && renewal_moves(active, offer) => Vec::new(),
        Some(r) if r != sold && r != active_version => match moved(r) {
            Some(true) => vec![r],
            Some(false) => vec![sold],
            None => vec![sold, r],
        },
        _ => vec![sold],
    };
    on.into_iter().filter(|v| *v != active_version).collect()
}

/// The older version whose terms `g` is held under while `active` is the active catalog
/// (`versions`: the older versions at hand); `None`: the active version's own terms.
///
/// `now` in the active version's offer: the active terms. Otherwise (`keep`, `at_renewal`)
/// the terms it is on: those of the version its renewals moved it to
/// ([`Grant::renewal_version`], when that version's offer migrates it, [`renewal_moves`];
/// a renewal under the active version whose offer says `at_renewal` moves it onto the
/// active terms), else those it was sold under. A renewal version that `versions` does not
/// have is taken as not having moved it. (A grant folded before renewals recorded only the
/// moves, whose renewal version is that of a renewal under a version that kept it, is
/// read right too: that version's offer says `keep`.)
pub fn terms_version(active: &Catalog, versions: &BTreeMap<u32, Catalog>, g: &Grant) -> Option<u32> {
    let offer = g.offer.as_deref().unwrap_or_default();
    on_terms(active, g, |r| Some(versions.get(&r).is_some_and(|c| renewal_moves(c, offer)))).first().copied()
}

/// The older versions `grants` may be held under (sorted, without repeats): what a host
/// loads before deciding for a subject ([`terms`] then reads which of them hold).
pub fn versions_needed(active: &Catalog, grants: &[Grant]) -> Vec<u32> {
    let mut v: Vec<u32> = grants.iter().flat_map(|g| candidates(active, g)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// One product's capabilities and limits as an older catalog version defined them: the
/// terms a grandfathered grant is held under. A product may have several (one per version
/// whose terms decide some of its capabilities or its limits, [`terms`]); each capability
/// and limit is in one of them at most.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub product: String,
    /// The store's catalog version they come from (the active one for a capability held
    /// at the subject's tier only because a lower grant holds it, see [`terms`]).
    pub version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<Limit>,
}

/// The terms `grants` are held under at `now`, to put in the active catalog ([`apply`]);
/// empty when every grant is under the active terms, which is the case for every grant of
/// a catalog without a version. Only ids the active version has (for the same product) are
/// taken; a grant held under a version `versions` does not have is held under the active
/// terms.
///
/// Per product, the grants that count at `now` are grouped by the terms they are held
/// under ([`terms_version`]), each group at its highest tier, and:
///
/// - a capability is held when any group holds it under its own terms at its tier (a lower
///   or newer grant never masks a higher one, and neither does a grant on newer terms mask
///   one on older terms that give more: a member seated in two organizations keeps what
///   the one on older terms gives). Its definition comes from the group of the product's
///   highest tier (a grandfathered one first at the same tier, then the smaller grant id),
///   unless that group does not hold it and another does: then from the highest such
///   group, widened, when it would not hold at the subject's tier (a list of exact tiers),
///   to that tier too;
/// - the limits come from the terms of the grant that decides them, the highest of the
///   subject's own grants ([`crate::decide::effective_for_limit`]: a seat's lent grants
///   never decide a limit).
///
/// Decisions made on the result read the subject's highest tier, so the terms hold for
/// the grants that count at `now` only: [`terms_until`] says until when.
pub fn terms(active: &Catalog, versions: &BTreeMap<u32, Catalog>, grants: &[Grant], now: Timestamp) -> Vec<Terms> {
    if active.version.is_none() || grants.iter().all(|g| g.catalog_version.is_none()) {
        return Vec::new();
    }
    let grace = active.meta().grace_period_days;
    // Whose terms: an older version at hand, else (`None`) the active terms.
    let held = |g: &Grant| terms_version(active, versions, g).filter(|v| versions.contains_key(v));
    // Per product: each group's highest tier, and the deciding grant of all grants and of
    // the subject's own, by (tier index, grandfathered, smaller id) as in
    // `decide::effective_at`, so the order grants are listed in never changes whose terms hold.
    type Key<'g> = (usize, bool, std::cmp::Reverse<&'g str>);
    #[derive(Default)]
    struct Product<'g> {
        groups: BTreeMap<Option<u32>, usize>,
        deciding: Option<(Key<'g>, Option<u32>)>,
        own: Option<(Key<'g>, Option<u32>)>,
    }
    fn higher<'g>(slot: &mut Option<(Key<'g>, Option<u32>)>, c: (Key<'g>, Option<u32>)) {
        if slot.as_ref().is_none_or(|s| c.0 > s.0) {
            *slot = Some(c);
        }
    }
    let mut products: BTreeMap<&str, Product> = BTreeMap::new();
    for g in grants {
        if !counts(g, grace, now) {
            continue;
        }
        let Some(t) = active.tier_index(&g.product, &g.tier) else { continue };
        let v = held(g);
        let p = products.entry(g.product.as_str()).or_default();
        let e = p.groups.entry(v).or_insert(t);
        *e = (*e).max(t);
        let candidate = ((t, v.is_some(), std::cmp::Reverse(g.id.as_str())), v);
        higher(&mut p.deciding, candidate);
        if !g.lent_by_seat() {
            higher(&mut p.own, candidate);
        }
    }
    let mut out: BTreeMap<(&str, u32), Terms> = BTreeMap::new();
    fn entry<'o, 'p>(out: &'o mut BTreeMap<(&'p str, u32), Terms>, product: &'p str, v: u32) -> &'o mut Terms {
        out.entry((product, v)).or_insert_with(|| Terms {
            product: product.to_string(),
            version: v,
            capabilities: Vec::new(),
            limits: Vec::new(),
        })
    }
    for (product, p) in &products {
        let Some(((top, _, _), deciding)) = p.deciding else { continue };
        if p.groups.keys().all(Option::is_none) {
            continue;
        }
        if let Some(v) = deciding {
            entry(&mut out, product, v);
        }
        // A capability as the terms of group `v` define it (one the old version did not
        // have follows the active version).
        let defined = |c: &Capability, v: Option<u32>| -> Capability {
            let old = v.and_then(|v| versions.get(&v)).and_then(|o| o.capability(&c.id)).filter(|o| o.product == c.product);
            old.unwrap_or(c).clone()
        };
        for c in active.doc.capabilities.iter().filter(|c| c.product == *product) {
            let holds = |v: Option<u32>, t: usize| active.capability_holds(&defined(c, v), Some(t));
            let (source, widen) = if holds(deciding, top) {
                (deciding, false)
            } else {
                // The highest group that holds it (a grandfathered one first at the same tier).
                let by = p.groups.iter().filter(|(v, t)| holds(**v, **t)).max_by_key(|(v, t)| (**t, v.is_some(), std::cmp::Reverse(**v)));
                match by {
                    Some((v, _)) => (*v, !holds(*v, top)),
                    None => (deciding, false),
                }
            };
            if source.is_none() && !widen {
                continue;
            }
            let mut def = defined(c, source);
            if widen {
                let tiers = active.product(product).map(|x| x.tiers.as_slice()).unwrap_or_default();
                let held_at: Vec<String> = tiers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i == top || active.capability_holds(&def, Some(*i)))
                    .map(|(_, x)| x.clone())
                    .collect();
                def.min_tier = None;
                def.tiers = Some(held_at);
            }
            let Some(v) = source.or(active.version) else { continue };
            entry(&mut out, product, v).capabilities.push(def);
        }
        let Some((_, Some(v))) = p.own else { continue };
        let Some(old) = versions.get(&v) else { continue };
        let limits: Vec<Limit> = old
            .doc
            .limits
            .iter()
            .filter(|l| l.product == *product && active.limit(&l.id).is_some_and(|a| a.product == *product))
            .cloned()
            .collect();
        entry(&mut out, product, v).limits = limits;
    }
    out.into_values().collect()
}

/// Until when the terms `grants` are held under at `now` ([`terms`]) stay the same: the
/// first instant after `now` at which a grant of a product that has a grant that may be
/// held under older terms ([`versions_needed`]) starts, ends or leaves its grace period
/// (which grants count, and so their tiers and whose terms hold, can change then).
/// `None`: no grant may be held under older terms, so the active terms hold throughout. A snapshot carrying terms expires then, so
/// a browser never decides with terms the worker no longer applies.
pub fn terms_until(active: &Catalog, grants: &[Grant], now: Timestamp) -> Option<Timestamp> {
    let grace = active.meta().grace_period_days;
    let held: Vec<&str> = grants.iter().filter(|g| !candidates(active, g).is_empty()).map(|g| g.product.as_str()).collect();
    grants
        .iter()
        .filter(|g| held.contains(&g.product.as_str()))
        .flat_map(|g| boundaries(g, grace))
        .flatten()
        .filter(|b| *b > now)
        .min()
}

/// The active catalog with `terms` put in: each listed capability held at the tiers its
/// terms name, each listed limit at the values and in the window (period, anchor) its
/// terms give (tiers the old version did not have keep the active values). Everything else is the active catalog's. Without
/// terms, the active catalog itself (nothing is copied); should the terms not fit the
/// active version (a tier they name is gone), the active catalog too.
pub fn apply<'a>(active: &'a Catalog, terms: &[Terms]) -> Cow<'a, Catalog> {
    if terms.is_empty() {
        return Cow::Borrowed(active);
    }
    let mut doc = active.doc.clone();
    for t in terms {
        // The tiers the active version still has (a tier an old version named and this one
        // retired holds nothing any more; the rest of the terms still apply).
        let tiers: Vec<String> = doc.products.iter().find(|p| p.id == t.product).map(|p| p.tiers.clone()).unwrap_or_default();
        for c in doc.capabilities.iter_mut().filter(|c| c.product == t.product) {
            if let Some(old) = t.capabilities.iter().find(|o| o.id == c.id) {
                let kept: Option<Vec<String>> = old.tiers.as_ref().map(|ts| ts.iter().filter(|x| tiers.contains(x)).cloned().collect());
                let fits = old.min_tier.as_ref().is_none_or(|m| tiers.contains(m))
                    && kept.as_ref().is_none_or(|k| !k.is_empty() || old.without_entitlement);
                if fits {
                    c.min_tier = old.min_tier.clone();
                    c.tiers = kept;
                }
            }
        }
        for l in doc.limits.iter_mut().filter(|l| l.product == t.product) {
            if let Some(old) = t.limits.iter().find(|o| o.id == l.id) {
                // Its window too: 10 a day bought stays 10 a day, not 10 a month.
                l.period = old.period;
                l.anchor = old.anchor;
                for (tier, v) in &old.values {
                    if let Some(slot) = l.values.get_mut(tier) {
                        *slot = *v;
                    }
                }
            }
        }
    }
    match Catalog::from_doc(doc) {
        Ok(mut c) => {
            c.version = active.version;
            Cow::Owned(c)
        }
        Err(_) => Cow::Borrowed(active),
    }
}

/// The active catalog with each offer an older version in `sold` had and the active one no
/// longer has put back, hidden (never sold, shown or ranked), so that what was bought under
/// it folds as it was sold: its subscription, grants and credits (the newest version that
/// had a key gives its definition). The products and credit pools such an offer names come
/// back with it when the active version dropped them too. Without any (the usual case),
/// the active catalog itself (nothing is copied).
///
/// Each offer comes back on its own: one that cannot (a tier it names is gone from a
/// product the active version still has) is left out, and every other still comes back,
/// so a retired tier never keeps another dropped offer's buyers from what they paid for.
/// (All are tried at once first; only when that does not validate is each tried in turn,
/// newest version first, kept when the catalog with it validates.)
pub fn keeping_sold<'a>(active: &'a Catalog, sold: &BTreeMap<u32, Catalog>) -> Cow<'a, Catalog> {
    let mut dropped: Vec<(&Catalog, &crate::catalog::Offer)> = Vec::new();
    for old in sold.values().rev() {
        for o in old.offers() {
            if active.offer(&o.key).is_none() && !dropped.iter().any(|(_, x)| x.key == o.key) {
                dropped.push((old, o));
            }
        }
    }
    if dropped.is_empty() {
        return Cow::Borrowed(active);
    }
    let built = |doc: crate::catalog::CatalogDoc| {
        Catalog::from_doc(doc).ok().map(|mut c| {
            c.version = active.version;
            c
        })
    };
    let mut all = active.doc.clone();
    for (old, o) in &dropped {
        put_back(&mut all, old, o);
    }
    if let Some(c) = built(all) {
        return Cow::Owned(c);
    }
    let mut kept: Option<Catalog> = None;
    for (old, o) in &dropped {
        let mut doc = kept.as_ref().map_or_else(|| active.doc.clone(), |c| c.doc.clone());
        put_back(&mut doc, old, o);
        if let Some(c) = built(doc) {
            kept = Some(c);
        }
    }
    kept.map_or(Cow::Borrowed(active), Cow::Owned)
}

/// Offer `o` of version `old` put back into `doc`, hidden, with the products and credit
/// pools it names that `doc` does not have.
fn put_back(doc: &mut crate::catalog::CatalogDoc, old: &Catalog, o: &crate::catalog::Offer) {
    let named = o.grants.iter().flat_map(|g| g.product.iter().chain(g.from.iter()));
    for p in named {
        if !doc.products.iter().any(|x| &x.id == p) {
            doc.products.extend(old.product(p).cloned());
        }
    }
    for c in &o.credits {
        if !doc.credit_pools.iter().any(|x| x.id == c.pool) {
            doc.credit_pools.extend(old.pool(&c.pool).cloned());
        }
    }
    // Its price ids only where no offer of the active version sells at them now (an offer
    // renamed keeps its price): events at that price are the active offer's.
    let taken = |id: &String| doc.offers.iter().any(|x| x.stripe_price_ids.contains(id) || x.razorpay_plan_ids.contains(id));
    let mut back = crate::catalog::Offer { hidden: true, ..o.clone() };
    back.stripe_price_ids.retain(|id| !taken(id));
    back.razorpay_plan_ids.retain(|id| !taken(id));
    doc.offers.push(back);
}

/// [`terms`] and [`apply`] in one: the catalog a subject's decisions are made on at `now`,
/// with the terms it carries (for a snapshot).
pub fn catalog_for<'a>(
    active: &'a Catalog,
    versions: &BTreeMap<u32, Catalog>,
    grants: &[Grant],
    now: Timestamp,
) -> (Cow<'a, Catalog>, Vec<Terms>) {
    let t = terms(active, versions, grants, now);
    (apply(active, &t), t)
}
