//! The reducer: a pure fold of a **set** of facts into a [`BillingState`].
//!
//! # Why the result cannot depend on arrival order or duplicates
//! 1. **Set semantics.** Facts are deduplicated by key ([`FactSet`]); when two
//!    facts share a key, the one with the earliest time (then event id, then
//!    content) is kept, whichever arrived first.
//! 2. **Canonical order.** The set is folded in the order of the provider's own
//!    clock: `(at, kind rank, key)` ([`super::facts::canonical_cmp`]), never
//!    in arrival order. Any permutation of the same set folds identically.
//! 3. **Attribution first.** Before folding, one pass over the whole set
//!    collects every link from provider objects to subjects (customer ->
//!    subject, subscription -> subject, checkout details such as bundle
//!    choices). A subscription event that arrives before the checkout that
//!    names its user is therefore applied as if the link had been known all
//!    along. A fact still unattributable after that pass is kept in
//!    `state.pending` (with what it waits for) and applies on the next fold
//!    that includes the missing link: nothing is dropped.
//! 4. **Monotone rules inside the fold.** A snapshot older than the newest one
//!    applied to its subscription changes nothing; once a subscription has
//!    ended (deleted, cancelled, expired) no later non-final snapshot revives
//!    it; a subscription's `paid_through` only moves forward (no update loses
//!    days); every credit change is a ledger entry with a unique key, so
//!    nothing is counted twice.
//!
//! [`Reducer`] adds incremental application: a new fact that sorts after
//! everything folded so far, changes no attribution and finds nothing pending
//! is applied as one more fold step; anything else refolds the whole set. Both
//! paths give the state [`reduce`] gives (checked by the property tests).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Months, Utc};

use super::facts::*;
use super::state::*;
use crate::catalog::{Catalog, CreditCadence, Interval, Offer};
use crate::credits::{renewal_rollover, EntryKind, Lot, LotKind, NewLot, Wallet};
use crate::decide::{self, GrantStanding};
use crate::model::{Grant, Source, Status};
use crate::seats::{subscription_seats, SeatBook};
use crate::time::Timestamp;

/// A set of facts, one per key.
#[derive(Clone, Debug, Default)]
pub struct FactSet {
    by_key: BTreeMap<String, Fact>,
}

/// What inserting a fact did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    New,
    /// Same key, and the stored fact is kept.
    Duplicate,
    /// Same key, and this fact replaces the stored one (it happened earlier).
    Replaced,
}

/// Between two facts with one key, the one to keep: earliest, then by event
/// id, then the one read under the earlier catalog version (by number: version 9 before
/// 10), then by content. Independent of which arrived first.
fn preferred(a: &Fact, b: &Fact) -> bool {
    if (a.at, &a.event, a.catalog_version) != (b.at, &b.event, b.catalog_version) {
        return (a.at, &a.event, a.catalog_version) < (b.at, &b.event, b.catalog_version);
    }
    let ja = serde_json::to_string(a).unwrap_or_default();
    let jb = serde_json::to_string(b).unwrap_or_default();
    ja < jb
}

impl FactSet {
    pub fn new() -> FactSet {
        FactSet::default()
    }
    pub fn insert(&mut self, f: Fact) -> Insert {
        match self.by_key.get(&f.key) {
            None => {
                self.by_key.insert(f.key.clone(), f);
                Insert::New
            }
            Some(old) if old == &f || !preferred(&f, old) => Insert::Duplicate,
            Some(_) => {
                self.by_key.insert(f.key.clone(), f);
                Insert::Replaced
            }
        }
    }
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&Fact> {
        self.by_key.get(key)
    }
    /// The facts in canonical order, but for a subscription's updates of one second that
    /// say which state they followed ([`SubscriptionSnapshot::follows`]): those go in the
    /// order they were made, the one another follows first ([`in_order_made`]).
    pub fn sorted(&self) -> Vec<&Fact> {
        let mut v: Vec<&Fact> = self.by_key.values().collect();
        v.sort_by(|a, b| canonical_cmp(a, b));
        let mut i = 0;
        while i < v.len() {
            let mut j = i + 1;
            if let Some(first) = update(v[i]) {
                while j < v.len() && v[j].at == v[i].at && update(v[j]).is_some_and(|s| s.id == first.id) {
                    j += 1;
                }
                in_order_made(&mut v[i..j]);
            }
            i = j;
        }
        v
    }

    /// Whether another update of `f`'s subscription is of `f`'s second (a fact of that
    /// second then sorts among them by what it follows, not only by its key).
    fn has_update_beside(&self, f: &Fact) -> bool {
        let Some(s) = update(f) else { return false };
        self.by_key.values().any(|x| x.key != f.key && x.at == f.at && update(x).is_some_and(|y| y.id == s.id))
    }
}

/// A snapshot that updates a subscription (not its creation, which comes first within its
/// second, nor its end, after which nothing applies).
fn update(f: &Fact) -> Option<&SubscriptionSnapshot> {
    match &f.body {
        FactBody::Subscription(s) if !s.created && s.status != SubStatus::Ended => Some(s),
        _ => None,
    }
}

/// One subscription's updates of one second (in key order, that is by digest): each goes
/// after the update it says it followed, when that one is among them, so the state folded
/// last is the one made last, and the digests only order updates that say nothing of their
/// order. A chain that comes back to itself (a state left and taken again within the
/// second) keeps the key order.
fn in_order_made(group: &mut [&Fact]) {
    if group.len() < 2 {
        return;
    }
    let digests: Vec<String> = group.iter().map(|f| update(f).map(SubscriptionSnapshot::digest).unwrap_or_default()).collect();
    let before = |i: usize| {
        let follows = update(group[i]).and_then(|s| s.follows.as_deref())?;
        digests.iter().position(|d| d == follows).filter(|p| *p != i)
    };
    let mut depth = Vec::with_capacity(group.len());
    for i in 0..group.len() {
        let (mut at, mut n) = (i, 0usize);
        while let Some(p) = before(at) {
            n += 1;
            if n > group.len() {
                return;
            }
            at = p;
        }
        depth.push(n);
    }
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by_key(|i| depth[*i]);
    let sorted: Vec<&Fact> = order.iter().map(|i| group[*i]).collect();
    group.copy_from_slice(&sorted);
}

impl FromIterator<Fact> for FactSet {
    fn from_iter<I: IntoIterator<Item = Fact>>(it: I) -> Self {
        let mut s = FactSet::new();
        for f in it {
            s.insert(f);
        }
        s
    }
}

/// Folds facts (any order, duplicates allowed) into the state as of `now`.
/// `now` decides how far time has run for the credit lots (period allowances
/// expire at their period end). Every fact is applied whatever its time (a
/// provider's clock may run slightly ahead of the caller's), so the state's
/// `as_of` is the later of `now` and the latest fact; to see an earlier moment,
/// fold the facts up to it.
pub fn reduce(catalog: &Catalog, facts: &[Fact], now: Timestamp) -> BillingState {
    let set: FactSet = facts.iter().cloned().collect();
    reduce_set(catalog, &set, now)
}

pub fn reduce_set(catalog: &Catalog, set: &FactSet, now: Timestamp) -> BillingState {
    Folder::run(catalog, set, &UsageTotals::default(), now).st
}

/// What recorded charges took from each lot, per subject: `subject -> lot -> units`.
/// A store that keeps these totals with its lots (each charge adds its takes in the
/// transaction that stores the charge's fact) folds the other facts with them instead of
/// reading every charge, so a fold's cost does not grow with the number of charges.
pub type UsageTotals = BTreeMap<String, BTreeMap<String, i64>>;

/// [`reduce`] of `facts` together with charges given as per-lot totals. `usage` must
/// not count a charge whose fact is also in `facts` (it would be counted twice).
pub fn reduce_with_usage(catalog: &Catalog, facts: &[Fact], usage: &UsageTotals, now: Timestamp) -> BillingState {
    reduce_sold(catalog, &BTreeMap::new(), facts, usage, now)
}

/// [`reduce_with_usage`] with the store's earlier catalog versions (`sold`, by version):
/// a purchase or invoice read under one of them credits what that version sold (a new
/// version that changes a token pack's seconds changes no earlier buyer's lot). A fact
/// read under no version credits what the catalog given as
/// [`crate::grandfather::UNVERSIONED`] sold (the one served before the store had
/// versions). A fact read under the active version, or under a version not given,
/// credits what `catalog` sells; an offer the active version dropped folds as the newest version
/// that had it sold it ([`crate::grandfather::keeping_sold`]).
pub fn reduce_sold(
    catalog: &Catalog,
    sold: &BTreeMap<u32, Catalog>,
    facts: &[Fact],
    usage: &UsageTotals,
    now: Timestamp,
) -> BillingState {
    let set: FactSet = facts.iter().cloned().collect();
    // What an older version sold and the active one dropped still folds as it was sold.
    let catalog = crate::grandfather::keeping_sold(catalog, sold);
    let mut f = Folder::new(&catalog);
    f.sold = Some(sold);
    f.fold(&set, usage, now);
    f.st
}

/// How [`Reducer::apply`] took a fact in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Already known: nothing changed.
    Duplicate,
    /// Folded as one more step.
    Appended,
    /// The whole set was folded again (the fact sorts before others, changes
    /// an attribution, or something was pending).
    Replayed,
}

/// Incremental folding that always agrees with [`reduce`] over the same facts.
pub struct Reducer<'c> {
    catalog: &'c Catalog,
    facts: FactSet,
    folder: Folder<'c>,
}

impl<'c> Reducer<'c> {
    pub fn new(catalog: &'c Catalog, now: Timestamp) -> Reducer<'c> {
        let mut folder = Folder::new(catalog);
        folder.finish(now);
        Reducer { catalog, facts: FactSet::new(), folder }
    }

    pub fn from_facts(catalog: &'c Catalog, facts: &[Fact], now: Timestamp) -> Reducer<'c> {
        let set: FactSet = facts.iter().cloned().collect();
        let folder = Folder::run(catalog, &set, &UsageTotals::default(), now);
        Reducer { catalog, facts: set, folder }
    }

    pub fn state(&self) -> &BillingState {
        &self.folder.st
    }
    pub fn into_state(self) -> BillingState {
        self.folder.st
    }
    pub fn facts(&self) -> &FactSet {
        &self.facts
    }

    fn replay(&mut self, now: Timestamp) {
        self.folder = Folder::run(self.catalog, &self.facts, &UsageTotals::default(), now);
    }

    /// Takes one fact in and brings the state to `now`.
    pub fn apply(&mut self, fact: Fact, now: Timestamp) -> Applied {
        let clock = self.folder.clock;
        match self.facts.insert(fact.clone()) {
            Insert::Duplicate => {
                if now != self.folder.st.as_of {
                    if now >= clock && self.quiet() {
                        self.folder.finish(now);
                    } else {
                        self.replay(now);
                    }
                }
                return Applied::Duplicate;
            }
            Insert::Replaced => {
                self.replay(now);
                return Applied::Replayed;
            }
            Insert::New => {}
        }
        let after_last = self.folder.last.as_ref().is_none_or(|l| canonical_cmp(&fact, l) == Ordering::Greater)
            && !self.facts.has_update_beside(&fact);
        let in_time = fact.at >= clock && now >= clock;
        let mut attr = self.folder.attr.clone();
        let links_change = attr.observe(&fact);
        if after_last && in_time && self.quiet() && !links_change {
            self.folder.step(&fact);
            self.folder.finish(now);
            Applied::Appended
        } else {
            self.replay(now);
            Applied::Replayed
        }
    }

    fn quiet(&self) -> bool {
        self.folder.st.pending.is_empty() && self.folder.deferred.is_empty()
    }
}

/// Details a checkout gives about its subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CheckoutInfo {
    offer: Option<String>,
    clouds: Vec<String>,
}

/// Links from provider objects to subjects, gathered from the whole set first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Attribution {
    customer: BTreeMap<String, Subject>,
    subscription: BTreeMap<String, Subject>,
    sub_customer: BTreeMap<String, String>,
    checkout: BTreeMap<String, CheckoutInfo>,
    /// Purchases (checkout sessions, payments) an operator attributed: object -> subject.
    payment: BTreeMap<String, Subject>,
    /// The offer an operator named for a subscription or purchase whose prices map to none.
    offers: BTreeMap<String, String>,
    /// A bundle's products an operator chose for a subscription or purchase.
    chosen: BTreeMap<String, Vec<String>>,
    /// Links an operator replaced: object -> (the user the event's own link named, of whom
    /// the store had no record, and the operator's subject). A link to that user, told
    /// before or after, gives way to the operator's.
    replaced: BTreeMap<String, (Subject, Subject)>,
    /// Dispute -> how it ended, from every closing in the set.
    disputes: BTreeMap<String, DisputeOutcome>,
    /// Invoice -> the ids of the payments that paid it (Stripe invoice payments).
    invoice_payments: BTreeMap<String, BTreeSet<String>>,
    /// Subject -> lot -> units that recorded charges took from it. Gathered before the
    /// fold so that every charge is applied ahead of the lot's refunds, expiry and
    /// rollover (see [`crate::credits::Wallet::record_usage`]).
    usage: BTreeMap<String, BTreeMap<String, i64>>,
    warnings: Vec<String>,
}

impl Attribution {
    fn link(
        map: &mut BTreeMap<String, Subject>,
        warnings: &mut Vec<String>,
        replaced: &BTreeMap<String, (Subject, Subject)>,
        k: &str,
        s: &Subject,
    ) -> bool {
        // A link an operator replaced says nothing any more (see `relink`).
        if map.contains_key(k) && replaced.get(k).is_some_and(|(gone, _)| gone == s) {
            return false;
        }
        match map.get(k) {
            None => {
                map.insert(k.to_string(), s.clone());
                true
            }
            Some(old) if old == s => false,
            Some(old) => {
                let w = format!("{k} is linked to {old} and to {s}; {old} (linked first) is used");
                if warnings.contains(&w) {
                    false
                } else {
                    warnings.push(w);
                    true
                }
            }
        }
    }

    /// An operator's link of `k` to `s` in place of the event's own link to `gone`, a user
    /// the store had no record of: it holds, whichever of the two is gathered first.
    fn relink(
        map: &mut BTreeMap<String, Subject>,
        warnings: &mut Vec<String>,
        replaced: &mut BTreeMap<String, (Subject, Subject)>,
        k: &str,
        gone: &Subject,
        s: &Subject,
    ) -> bool {
        let mut changed = false;
        if !replaced.contains_key(k) {
            replaced.insert(k.to_string(), (gone.clone(), s.clone()));
            changed = true;
        }
        match map.get(k) {
            Some(old) if old == gone => {
                map.insert(k.to_string(), s.clone());
                true
            }
            _ => Self::link(map, warnings, replaced, k, s) || changed,
        }
    }

    /// Records what a fact says about attribution; true if anything changed.
    fn observe(&mut self, f: &Fact) -> bool {
        let mut changed = false;
        match &f.body {
            FactBody::CustomerLinked(l) => {
                changed |= Self::link(&mut self.customer, &mut self.warnings, &self.replaced, &l.customer, &l.subject);
            }
            FactBody::Attributed(a) => {
                for (map, object) in [
                    (&mut self.customer, &a.customer),
                    (&mut self.subscription, &a.subscription),
                    (&mut self.payment, &a.payment),
                ] {
                    let Some(o) = object else { continue };
                    changed |= match &a.replaces {
                        Some(gone) => Self::relink(map, &mut self.warnings, &mut self.replaced, o, gone, &a.subject),
                        None => Self::link(map, &mut self.warnings, &self.replaced, o, &a.subject),
                    };
                }
                // The first operator's word on an object's offer and bundle choice holds.
                for o in a.subscription.iter().chain(a.payment.iter()) {
                    if let Some(k) = &a.offer {
                        if !self.offers.contains_key(o) {
                            self.offers.insert(o.clone(), k.clone());
                            changed = true;
                        }
                    }
                    if !a.clouds.is_empty() && !self.chosen.contains_key(o) {
                        self.chosen.insert(o.clone(), a.clouds.clone());
                        changed = true;
                    }
                }
            }
            FactBody::Purchase(p) => {
                if let Some(s) = &p.subject {
                    if let Some(c) = &p.customer {
                        changed |= Self::link(&mut self.customer, &mut self.warnings, &self.replaced, c, s);
                    }
                    if let Some(sub) = &p.subscription {
                        changed |= Self::link(&mut self.subscription, &mut self.warnings, &self.replaced, sub, s);
                    }
                }
                if let Some(sub) = &p.subscription {
                    if let Some(c) = &p.customer {
                        if !self.sub_customer.contains_key(sub) {
                            self.sub_customer.insert(sub.clone(), c.clone());
                            changed = true;
                        }
                    }
                    if !self.checkout.contains_key(sub) {
                        self.checkout
                            .insert(sub.clone(), CheckoutInfo { offer: p.offer.clone(), clouds: p.clouds.clone() });
                        changed = true;
                    }
                }
            }
            FactBody::Subscription(s) => {
                if let Some(c) = &s.customer {
                    if !self.sub_customer.contains_key(&s.id) {
                        self.sub_customer.insert(s.id.clone(), c.clone());
                        changed = true;
                    }
                }
                if let Some(subj) = &s.subject {
                    changed |= Self::link(&mut self.subscription, &mut self.warnings, &self.replaced, &s.id, subj);
                    if let Some(c) = &s.customer {
                        changed |= Self::link(&mut self.customer, &mut self.warnings, &self.replaced, c, subj);
                    }
                }
            }
            FactBody::Dispute(Reversal { id, outcome: Some(o), .. }) => match self.disputes.get(id) {
                None => {
                    self.disputes.insert(id.clone(), *o);
                    changed = true;
                }
                Some(old) if old == o => {}
                Some(_) => {
                    // Stripe closes a dispute once; should both outcomes be reported,
                    // the loss counts (whatever order they came in).
                    if *o == DisputeOutcome::Lost {
                        self.disputes.insert(id.clone(), DisputeOutcome::Lost);
                    }
                    let w = format!("dispute {id} is reported both won and lost; lost is used");
                    if !self.warnings.contains(&w) {
                        self.warnings.push(w);
                    }
                    changed = true;
                }
            },
            FactBody::Usage(UsageFact { subject, takes: Some(takes), .. }) if !takes.is_empty() => {
                let lots = self.usage.entry(subject.to_string()).or_default();
                for t in takes {
                    *lots.entry(t.lot.clone()).or_insert(0) += t.units.max(0);
                }
                changed = true;
            }
            FactBody::InvoicePayment(p) => {
                let refs = self.invoice_payments.entry(p.invoice.clone()).or_default();
                for r in &p.payment_refs {
                    changed |= refs.insert(r.clone());
                }
            }
            FactBody::InvoicePaid(InvoicePaid { subscription, customer: Some(c), .. })
            | FactBody::InvoiceFailed(InvoiceFailed { subscription, customer: Some(c), .. })
                if !self.sub_customer.contains_key(subscription) =>
            {
                self.sub_customer.insert(subscription.clone(), c.clone());
                changed = true;
            }
            _ => {}
        }
        changed
    }

    /// A dispute that ended in the merchant's favour takes nothing back, nor one closed by
    /// a refund (the refund takes back what it refunded).
    fn dispute_won(&self, dispute: &str) -> bool {
        matches!(self.disputes.get(dispute), Some(DisputeOutcome::Won | DisputeOutcome::Refunded))
    }

    /// The invoices a payment (payment intent, charge) is known to have paid.
    fn invoices_paid_by(&self, payment: &str) -> Vec<String> {
        self.invoice_payments.iter().filter(|(_, refs)| refs.contains(payment)).map(|(inv, _)| inv.clone()).collect()
    }

    /// A purchase with what an operator attributed filled in: the offer and the bundle's
    /// products when the event's own name none the catalog has, and the operator's subject
    /// in place of a user the store had no record of.
    fn completed(&self, catalog: &Catalog, p: &Purchase) -> Purchase {
        let mut p = p.clone();
        if let Some(named) = &p.subject {
            let objects = std::iter::once(&p.id).chain(p.subscription.iter()).chain(p.customer.iter());
            if let Some((_, to)) = objects.filter_map(|o| self.replaced.get(o)).find(|(gone, _)| gone == named) {
                p.subject = Some(to.clone());
            }
        }
        let objects: Vec<&String> = std::iter::once(&p.id).chain(p.subscription.iter()).collect();
        if p.offer.as_deref().and_then(|k| catalog.offer(k)).is_none() {
            if let Some(k) = objects.iter().find_map(|o| self.offers.get(*o)) {
                p.offer = Some(k.clone());
            }
        }
        if p.clouds.is_empty() {
            if let Some(c) = objects.iter().find_map(|o| self.chosen.get(*o)) {
                p.clouds = c.clone();
            }
        }
        p
    }

    /// Items with the operator's offer for the subscription in place of prices that map
    /// to no catalog offer.
    fn completed_items(&self, catalog: &Catalog, sub: &str, items: &[Item]) -> Vec<Item> {
        let Some(k) = self.offers.get(sub) else { return items.to_vec() };
        let mut out = items.to_vec();
        for it in out.iter_mut().filter(|i| i.offer.as_deref().and_then(|o| catalog.offer(o)).is_none()) {
            it.offer = Some(k.clone());
        }
        if out.is_empty() {
            out.push(Item { price: None, offer: Some(k.clone()), quantity: 1 });
        }
        out
    }

    fn subject_for_sub(&self, sub: &str, customer: Option<&str>) -> Option<Subject> {
        if let Some(s) = self.subscription.get(sub) {
            return Some(s.clone());
        }
        let c = customer.map(str::to_string).or_else(|| self.sub_customer.get(sub).cloned())?;
        self.customer.get(&c).cloned()
    }
}

fn source_of(p: Provider) -> Source {
    match p {
        Provider::Stripe => Source::Stripe,
        Provider::Razorpay => Source::Razorpay,
        Provider::App => Source::ManualGrant,
    }
}

/// `at` plus one billing interval, in calendar months (a one-time price adds nothing).
pub(crate) fn add_interval(at: Timestamp, interval: Interval) -> Option<Timestamp> {
    let months = interval.months()?;
    let d = DateTime::<Utc>::from_timestamp(at.0, 0)?;
    Some(
        d.checked_add_months(Months::new(months))
            .map(|d| Timestamp(d.timestamp()))
            .unwrap_or(at.plus_days(30 * months as i64)),
    )
}

/// Counts `units` a reversal took from `lot` (see [`PaymentRecord::taken`]).
fn add_taken(taken: &mut BTreeMap<String, i64>, lot: &str, units: i64) {
    if units > 0 {
        *taken.entry(lot.to_string()).or_insert(0) += units;
    }
}

fn max_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The products (and tier index, per product the highest) an offer gives,
/// choosing a bundle's products from `clouds`.
fn offer_products(
    catalog: &Catalog,
    offer: &Offer,
    clouds: &[String],
    ctx: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    // Which `choose` grant gives each chosen product: the catalog's one rule of a bundle's
    // choice (what checkout sells), each product in the order chosen at the highest tier the
    // bundle can give it beside the ones before (a suggestion lists the products it needs
    // first); a choice it cannot place whole (unknown products, more than the bundle lets
    // choose) is read grant by grant, each taking its first eligible.
    let placed: Option<Vec<usize>> =
        clouds.iter().map(|c| catalog.product_index(c)).collect::<Option<Vec<usize>>>().and_then(|ps| best_choice(catalog, offer, &ps));
    for (gi, g) in offer.grants.iter().enumerate() {
        let targets: Vec<String> = if let Some(p) = &g.product {
            vec![p.clone()]
        } else if g.all_products {
            catalog.products().iter().filter(|p| p.tiers.contains(&g.tier)).map(|p| p.id.clone()).collect()
        } else if let Some(n) = g.choose {
            let eligible: Vec<String> = match &placed {
                Some(by) => clouds.iter().zip(by).filter(|(_, &at)| at == gi).map(|(c, _)| c.clone()).collect(),
                None => clouds
                    .iter()
                    .filter(
                        |c| if g.from.is_empty() { catalog.tier_index(c, &g.tier).is_some() } else { g.from.contains(c) },
                    )
                    .take(n as usize)
                    .cloned()
                    .collect(),
            };
            if eligible.is_empty() {
                let w =
                    format!("{ctx}: offer `{}` is a bundle and no products were chosen (metadata.clouds)", offer.key);
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            eligible
        } else {
            Vec::new()
        };
        for p in targets {
            if let Some(t) = catalog.tier_index(&p, &g.tier) {
                let e = out.entry(p).or_insert(t);
                *e = (*e).max(t);
            }
        }
    }
    out
}

/// A bundle's choice of `products` placed on its `choose` grants ([`Catalog::bundle_choice`]),
/// each product in turn at the highest tier some placement of all of them can give it with
/// the products before it kept at theirs. None when no placement gives them all.
fn best_choice(catalog: &Catalog, offer: &Offer, products: &[usize]) -> Option<Vec<usize>> {
    catalog.bundle_choice(offer, products, |_, _| true)?;
    let mut least = vec![0; products.len()];
    for (i, &pi) in products.iter().enumerate() {
        let tiers = &catalog.products()[pi].tiers;
        let mut offered: Vec<usize> = offer
            .grants
            .iter()
            .filter(|g| g.choose.is_some() && g.product.is_none() && !g.all_products)
            .filter_map(|g| tiers.iter().position(|t| *t == g.tier))
            .collect();
        offered.sort_unstable_by(|a, b| b.cmp(a));
        for t in offered {
            least[i] = t;
            if catalog.bundle_choice(offer, products, |j, tj| tj >= least[j]).is_some() {
                break;
            }
            least[i] = 0;
        }
    }
    catalog.bundle_choice(offer, products, |j, tj| tj >= least[j])
}

/// The grants a subscription gives its subject, from its current items.
/// The end of the ids of a past-due subscription's grants of what the period's first
/// payment paid for (see [`subscription_grants`]).
const PAID_SUFFIX: &str = ":paid";

pub(crate) fn subscription_grants(catalog: &Catalog, s: &SubscriptionState, warnings: &mut Vec<String>) -> Vec<Grant> {
    let Some(_) = &s.subject else { return Vec::new() };
    let base = max_opt(s.paid_through, s.estimated_until);
    let (mut status, mut valid_to) = match s.status {
        SubStatus::Incomplete => return Vec::new(),
        SubStatus::Trialing => (Status::Trial, max_opt(base, s.trial_end)),
        SubStatus::Active if s.cancel_at_period_end || s.cancel_at.is_some() => {
            (Status::Canceled, min_opt(base, s.cancel_at))
        }
        SubStatus::Active => (Status::Active, base),
        SubStatus::PastDue => (Status::PastDue, base),
        SubStatus::Paused => (Status::Canceled, min_opt(base, s.paused_at)),
        SubStatus::Canceled => (Status::Canceled, base),
        SubStatus::Ended => (Status::Canceled, min_opt(base, s.ended_at)),
    };
    if valid_to.is_none() && status != Status::PastDue {
        let w = format!("{}: no paid period is known, so it grants nothing", s.id);
        if !warnings.contains(&w) {
            warnings.push(w);
        }
        return Vec::new();
    }
    let mut items = &s.items;
    if let Some(r) = &s.revoked {
        if valid_to.is_none_or(|v| r.through >= v) {
            if r.keep.is_empty() {
                status = Status::Canceled;
                valid_to = min_opt(valid_to, Some(r.at));
            } else {
                items = &r.keep;
            }
        }
    }
    let valid_from = s.started_at.or(s.period_start).unwrap_or(s.first_seen);
    let mut out = item_grants(catalog, s, items, (status, valid_from, valid_to), "", warnings);
    // Past due: what the period's first payment paid for still lasts to the period's end
    // (after a failed upgrade's grace, the plan paid for).
    if status == Status::PastDue {
        if let Some(p) = s.period_paid.as_ref().filter(|p| p.items != *items) {
            out.extend(item_grants(catalog, s, &p.items, (Status::Active, valid_from, Some(p.until)), PAID_SUFFIX, warnings));
        }
    }
    out
}

/// The grants of a subscription's `items` (the highest tier per product), with the given
/// status and validity; `suffix` tells them apart from the subscription's other grants.
fn item_grants(
    catalog: &Catalog,
    s: &SubscriptionState,
    items: &[Item],
    (status, valid_from, valid_to): (Status, Timestamp, Option<Timestamp>),
    suffix: &str,
    warnings: &mut Vec<String>,
) -> Vec<Grant> {
    let mut best: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for it in items {
        let Some(key) = &it.offer else { continue };
        let Some(offer) = catalog.offer(key) else {
            let w = format!("{}: offer `{key}` is not in the catalog", s.id);
            if !warnings.contains(&w) {
                warnings.push(w);
            }
            continue;
        };
        for (p, t) in offer_products(catalog, offer, &s.clouds, &s.id, warnings) {
            let e = best.entry(p).or_insert((t, key.clone()));
            if t > e.0 {
                *e = (t, key.clone());
            }
        }
    }
    best.into_iter()
        .map(|(product, (t, offer))| Grant {
            id: format!("{}:{product}{suffix}", s.id),
            tier: catalog.product(&product).map(|p| p.tiers[t].clone()).unwrap_or_default(),
            product,
            source: source_of(s.provider),
            status,
            valid_from,
            valid_to,
            past_due_since: if status == Status::PastDue { s.past_due_since } else { None },
            offer: Some(offer),
            source_ref: Some(s.id.clone()),
            catalog_version: s.catalog_version,
            renewal_version: s.renewal_version.or(s.catalog_version),
            period_start: s.period_start,
            paused_since: if s.status == SubStatus::Paused { s.paused_at } else { None },
        })
        .collect()
}

/// The items whose plan a subscription gives now: its own, or what a reversed payment
/// of the current period left (see [`Revocation::keep`]).
pub(crate) fn paid_items(s: &SubscriptionState) -> &[Item] {
    match &s.revoked {
        Some(r) if !r.keep.is_empty() => &r.keep,
        _ => &s.items,
    }
}

/// A fact that tells the sale of a subscription (its checkout, a fact folded before any gave
/// it a period, the one that gives its first period, trial or paid, and a payment of that
/// period: [`Folder::sales`]) puts the sale under the catalog version it was read under, the
/// earliest such telling deciding. Versions are numbered as they are pushed, so the
/// smallest is the version of the sale's first reading, whatever order the provider created
/// or delivered its events in: an event created a second before the checkout but retried
/// after a new version was pushed does not move the sale to the new version. Other facts
/// never take part (its renewals, a trial's conversion, a snapshot saying it cancels): after
/// a rollback they are read under an older version than the sale's, and would move a sale
/// made under the newer version to the older terms.
fn sold_under(s: &mut SubscriptionState, f: &Fact) {
    if let Some(v) = f.catalog_version {
        s.catalog_version = Some(s.catalog_version.map_or(v, |c| c.min(v)));
    }
}

/// A fact that moved a subscription's paid period forward past one already paid (a renewal:
/// the first period is the sale's, [`sold_under`], however late it is read) moves it onto
/// the terms of the catalog version it was read under (`at`, that version's
/// catalog) when that version's offer of its plan migrates its subscribers (`at_renewal`,
/// `now`: [`crate::grandfather::renewal_moves`]); under a version that keeps them it stays
/// on the terms it is on, so a later version that keeps never undoes an earlier move. A
/// fact read under no version, or under one the fold was not given, changes nothing.
fn renewed_under(s: &mut SubscriptionState, f: &Fact, at: Option<&Catalog>) {
    let Some(v) = f.catalog_version else { return };
    let mut offers = paid_items(s).iter().filter_map(|i| i.offer.as_deref());
    if at.is_some_and(|c| offers.any(|k| crate::grandfather::renewal_moves(c, k))) {
        s.renewal_version = Some(v);
    }
}

/// The latest renewal of a subscription as its tellings folded so far give it: the paid
/// period's end it moved to, the earliest version a fact telling it was read under (`None`,
/// read under no version, is the earliest: the store had none yet), and the version the
/// subscription's renewals had moved it to before it.
#[derive(Clone, Debug)]
struct Renewal {
    until: Timestamp,
    read: Option<u32>,
    from: Option<u32>,
}

/// A fact that tells subscription `s`'s paid period (`tells`: the end it says is paid), folded
/// after it moved `s`'s paid period from `paid_before` (the end known before the fact, `None`
/// for the sale's first period) to `s.paid_through`, with `trial` the trial's end known
/// before the fact; `at` is the catalog of the version it was read under.
///
/// A move past an end already paid is a renewal ([`renewed_under`]), unless the end moved
/// past is the trial's: a trial's conversion is no renewal, but the first paid period of the
/// sale made at checkout. The buyer signed up for the plan with its trial under the terms of
/// the version they bought under, and `at_renewal` moves a subscriber at its next renewal
/// under the new version ([`crate::catalog::Migration::AtRenewal`]); a conversion read under
/// a newer version is the first charge of that sale, so the terms stay the sale's until the
/// first renewal, as they do for a subscription without a trial.
///
/// The fold goes by the provider's clock, so the fact that moves the period first is not
/// always the one read first: a renewal's snapshot created a minute before its payment,
/// but retried, can be read under a newer version than the payment was. A renewal is the
/// one its earliest telling (by version, as for the sale) says: a later fact telling the
/// same period read under an earlier version decides it again from where the renewal found it.
fn period_told(
    s: &mut SubscriptionState,
    renewals: &mut BTreeMap<String, Renewal>,
    f: &Fact,
    (paid_before, trial, tells): (Option<Timestamp>, Option<Timestamp>, Option<Timestamp>),
    at: Option<&Catalog>,
) {
    let (Some(before), Some(until)) = (paid_before, s.paid_through) else { return };
    if until > before {
        if trial.is_some_and(|t| before <= t) {
            renewals.remove(&s.id);
            return;
        }
        renewals.insert(s.id.clone(), Renewal { until, read: f.catalog_version, from: s.renewal_version });
        renewed_under(s, f, at);
    } else if let Some(r) = renewals.get_mut(&s.id).filter(|r| tells == Some(r.until) && f.catalog_version < r.read) {
        r.read = f.catalog_version;
        s.renewal_version = r.from;
        renewed_under(s, f, at);
    }
}

/// Whether a subscription's items `now` name another plan than `before` did: other offers,
/// unless both name the same provider prices (an offer renamed keeping its price is the
/// same plan). Neither a change of quantity nor a first naming of its plan is one.
fn plan_changed(before: &[Item], now: &[Item]) -> bool {
    fn offers(items: &[Item]) -> BTreeSet<&str> {
        items.iter().filter_map(|i| i.offer.as_deref()).collect()
    }
    fn prices(items: &[Item]) -> Option<BTreeSet<&str>> {
        items.iter().map(|i| i.price.as_deref()).collect()
    }
    let (a, b) = (offers(before), offers(now));
    if a.is_empty() || b.is_empty() || a == b {
        return false;
    }
    !matches!((prices(before), prices(now)), (Some(p), Some(q)) if !p.is_empty() && p == q)
}

/// Whether a paid invoice `i` of subscription `s` (as folded so far) gives the period it
/// pays for: access until the period's end and the period's allowance.
///
/// A running subscription's payment does, and a late payment never brings an ended one
/// back: an `Ended` subscription (access ended at once) takes no period from it. A
/// `Canceled` one (Razorpay `cancelled` / `completed`: access until the period's end) takes
/// the period of a payment only when that period began before the subscription ended (the
/// earlier of the provider's `ended_at` and the snapshot that ended it; a period beginning
/// exactly then is after it): such a payment paid for days the subscription ran, so it
/// gives them and their credits, as it would have a second earlier.
///
/// Why a rule on the paid period rather than on the order of one second: Razorpay charges
/// a subscription's last cycle and completes it with the same `created_at`; facts of one
/// second fold snapshots before payments ([`FactBody`]'s rank, by kind then digest), and the
/// `subscription.charged` snapshot may itself say `completed`. Folding the payment first
/// would mend only the same second, and would change every provider's ends (Stripe's
/// deletion, which ends access at once, among them); this rule holds whichever second the
/// end is told in and leaves `Ended` as it was.
fn gives_its_period(s: &SubscriptionState, i: &InvoicePaid) -> bool {
    match s.status {
        SubStatus::Canceled => {
            let end = min_opt(s.ended_at, s.version);
            i.period_start.zip(end).is_some_and(|(start, end)| start < end)
        }
        status => !status.is_terminal(),
    }
}

/// Does any item map to an offer of the catalog?
fn has_offer(catalog: &Catalog, items: &[Item]) -> bool {
    items.iter().any(|i| i.offer.as_deref().and_then(|k| catalog.offer(k)).is_some())
}

fn new_subscription(id: &str, provider: Provider, at: Timestamp) -> SubscriptionState {
    SubscriptionState {
        id: id.to_string(),
        provider,
        subject: None,
        customer: None,
        status: SubStatus::Incomplete,
        items: Vec::new(),
        clouds: Vec::new(),
        started_at: None,
        period_start: None,
        period_end: None,
        paid_through: None,
        estimated_until: None,
        trial_end: None,
        cancel_at_period_end: false,
        cancel_at: None,
        ended_at: None,
        paused_at: None,
        past_due_since: None,
        revoked: None,
        period_paid: None,
        seats: 0,
        version: None,
        catalog_version: None,
        renewal_version: None,
        first_seen: at,
    }
}

/// What the refunds and disputes of one payment said so far, gathered in fold order, each
/// told once however often it is told: a payment's refunds and disputes add up, so a
/// reversal takes back its share of what the payment granted, and a later one of the same
/// payment only what the earlier ones did not.
#[derive(Clone, Debug, Default)]
struct Said {
    /// The payment's amount, as refund events told it.
    amount: i64,
    /// The total refunded so far, as refund events told it (the largest: it only grows).
    refunded: i64,
    /// Refund -> its own amount, for refunds told one by one (Razorpay): they add up, and
    /// the payment is as refunded as the larger of their sum and the total told.
    refunds: BTreeMap<String, i64>,
    /// Dispute -> the disputed amount (0: the whole payment). A won dispute is not folded
    /// at all.
    disputes: BTreeMap<String, i64>,
    /// A reversal said it is the whole payment (a refund naming no payment's amount, a
    /// dispute naming no disputed amount).
    whole: bool,
}

/// How far a payment is reversed: `reversed` of its amount `of`; `full`: all of it.
#[derive(Clone, Copy, Debug)]
struct Part {
    reversed: i64,
    of: i64,
    full: bool,
}

impl Said {
    fn add(&mut self, r: &Reversal, dispute: bool) {
        if dispute {
            // A dispute's amount is the disputed part of the payment; none: all of it.
            let disputed = r.reversed.max(0);
            let e = self.disputes.entry(r.id.clone()).or_insert(disputed);
            *e = (*e).max(disputed);
            self.whole |= disputed == 0;
        } else {
            self.refunded = self.refunded.max(r.reversed.max(0));
            if r.own_amount > 0 {
                let e = self.refunds.entry(r.id.clone()).or_insert(0);
                *e = (*e).max(r.own_amount);
            }
            if r.amount > 0 {
                self.amount = self.amount.max(r.amount);
            } else if r.own_amount <= 0 {
                // A refund that names no amount at all is read as the whole payment.
                self.whole = true;
            }
        }
    }

    /// The part reversed: what was refunded and disputed, of the payment's amount as a
    /// refund told it, else as the fold knows it from the payment's own facts (`known`),
    /// else as this event says (`told`). A dispute tells no payment's amount (its
    /// `amount`, in facts read before it carried the payment's, was the disputed one).
    fn part(&self, known: i64, told: i64) -> Part {
        let of = if self.amount > 0 {
            self.amount
        } else if known > 0 {
            known
        } else {
            told
        };
        let refunded = self.refunds.values().fold(0i64, |a, r| a.saturating_add(*r)).max(self.refunded);
        let reversed = self.disputes.values().fold(refunded, |a, d| a.saturating_add(*d));
        Part { reversed, of, full: self.whole || of <= 0 || reversed >= of }
    }
}

/// A reversal as its event told it. A Razorpay refund read before refunds carried their own
/// amount put it, when its event did not carry the payment, in both `amount` and
/// `reversed`: a refund naming the payment's amount and all of it refunded looks the same,
/// and is the same once read as a refund of its own amount (all of the payment's, which
/// the fold knows), so either is read as its own amount.
fn as_told(provider: Provider, r: &Reversal, dispute: bool) -> Reversal {
    let mut r = r.clone();
    if provider == Provider::Razorpay && !dispute && r.own_amount == 0 && r.amount > 0 && r.amount == r.reversed {
        r.own_amount = r.reversed;
        r.amount = 0;
        r.reversed = 0;
    }
    r
}

/// The fold's working state.
#[derive(Clone)]
struct Folder<'c> {
    catalog: &'c Catalog,
    /// Earlier catalog versions, whose offers say what a fact read under them credits.
    sold: Option<&'c BTreeMap<u32, Catalog>>,
    /// Lot -> the rollover lot a new period carried its unused units into (a renewal of
    /// its subscription, or another subscription it was handed to as it ended).
    carried: BTreeMap<String, String>,
    st: BillingState,
    attr: Attribution,
    /// Payment ref -> the payment records it belongs to, in the order they were
    /// recorded (one payment intent can pay several invoices).
    pay_index: BTreeMap<String, Vec<String>>,
    /// Earliest failed payment of a subscription not seen yet.
    failures: BTreeMap<String, Timestamp>,
    /// Lot expiry times -> subjects with a lot ending then.
    expiries: BTreeMap<Timestamp, BTreeSet<String>>,
    /// Refunds and disputes whose payment was not known when they came up.
    deferred: Vec<Fact>,
    /// Payment record -> what its refunds and disputes said so far.
    reversals: BTreeMap<String, Said>,
    /// Grants given by hand: (subject, source, id) -> the latest one in fold order.
    manual: BTreeMap<(String, Source, String), GrantGiven>,
    /// Warnings raised by fold steps.
    step_warnings: Vec<String>,
    /// Paid facts of a subscription that named no catalog offer, with the subscription:
    /// they wait (in `pending`) unless the subscription knows its offer by the fold's end.
    unmapped: Vec<(Fact, String)>,
    /// Subscription -> the end of its first period (trial or paid), whose payments tell its
    /// sale ([`sold_under`]); none after a change of plan, a new sale told by one fact.
    sales: BTreeMap<String, Timestamp>,
    /// Subscription -> its latest renewal as told so far ([`period_told`]).
    renewals: BTreeMap<String, Renewal>,
    clock: Timestamp,
    last: Option<Fact>,
}

impl<'c> Folder<'c> {
    fn new(catalog: &'c Catalog) -> Folder<'c> {
        let mut st = BillingState::empty(Timestamp(i64::MIN));
        for p in &catalog.doc.credit_pools {
            if p.free_amount > 0 {
                st.defaults.insert(p.id.clone(), p.free_amount);
            }
        }
        Folder {
            catalog,
            sold: None,
            carried: BTreeMap::new(),
            st,
            attr: Attribution::default(),
            pay_index: BTreeMap::new(),
            failures: BTreeMap::new(),
            expiries: BTreeMap::new(),
            deferred: Vec::new(),
            reversals: BTreeMap::new(),
            manual: BTreeMap::new(),
            step_warnings: Vec::new(),
            unmapped: Vec::new(),
            sales: BTreeMap::new(),
            renewals: BTreeMap::new(),
            clock: Timestamp(i64::MIN),
            last: None,
        }
    }

    fn run(catalog: &'c Catalog, set: &FactSet, usage: &UsageTotals, now: Timestamp) -> Folder<'c> {
        let mut f = Folder::new(catalog);
        f.fold(set, usage, now);
        f
    }

    fn fold(&mut self, set: &FactSet, usage: &UsageTotals, now: Timestamp) {
        let facts = set.sorted();
        self.attr.usage = usage.clone();
        for x in &facts {
            self.attr.observe(x);
        }
        for x in &facts {
            self.step(x);
        }
        self.finish(now);
    }

    /// The credits offer `key` gives, as the catalog version `f` was read under sold it
    /// (when that version is given and has the offer; read under none: the catalog given as
    /// [`crate::grandfather::UNVERSIONED`]), else as the active catalog does.
    fn credits_sold(&self, f: &Fact, key: &str) -> &'c [crate::catalog::CreditGrant] {
        let version = f.catalog_version.unwrap_or(crate::grandfather::UNVERSIONED);
        let sold = self.sold.and_then(|s| s.get(&version)).and_then(|c| c.offer(key));
        sold.or_else(|| self.catalog.offer(key)).map(|o| o.credits.as_slice()).unwrap_or(&[])
    }

    /// The catalog of the version `f` was read under, when the fold has it: the active one,
    /// or an earlier one given with `sold`.
    fn read_under(&self, f: &Fact) -> Option<&'c Catalog> {
        let v = f.catalog_version?;
        if self.catalog.version == Some(v) {
            return Some(self.catalog);
        }
        self.sold.and_then(|s| s.get(&v))
    }

    fn warn(&mut self, w: String) {
        if !self.step_warnings.contains(&w) {
            self.step_warnings.push(w);
        }
    }

    fn pend(&mut self, f: &Fact, reason: String, waiting_for: Vec<String>) {
        self.st.pending.push(PendingFact {
            key: f.key.clone(),
            fact_type: f.body.type_name().to_string(),
            event: f.event.clone(),
            at: f.at,
            reason,
            waiting_for,
        });
    }

    /// Lets time run to `t`: period lots that ended by then expire.
    fn advance(&mut self, t: Timestamp) {
        if t > self.clock {
            self.clock = t;
        }
        let due: Vec<Timestamp> = self.expiries.range(..=self.clock).map(|(k, _)| *k).collect();
        for k in due {
            for s in self.expiries.remove(&k).unwrap_or_default() {
                if let Some(ss) = self.st.subjects.get_mut(&s) {
                    ss.wallet.expire_through(self.clock);
                }
            }
        }
    }

    /// The subject's state, created on first mention (with the catalog's free
    /// amounts for a user).
    fn touch(&mut self, subject: &Subject, at: Timestamp) {
        let key = subject.to_string();
        if self.st.subjects.contains_key(&key) {
            return;
        }
        let mut wallet = Wallet::new();
        for (lot, units) in self.attr.usage.get(&key).into_iter().flatten() {
            wallet.record_usage(lot, *units);
        }
        if !subject.is_org() {
            for p in &self.catalog.doc.credit_pools {
                if p.free_amount > 0 {
                    wallet.credit(NewLot {
                        key: format!("free:{key}:{}", p.id),
                        pool: &p.id,
                        kind: LotKind::Free,
                        amount: p.free_amount,
                        at,
                        valid_to: None,
                        source: "catalog",
                        subscription: None,
                        catalog_version: None,
                    });
                }
            }
        }
        self.st.subjects.insert(
            key,
            SubjectState {
                subject: subject.clone(),
                grants: Vec::new(),
                balances: BTreeMap::new(),
                wallet,
                overage: Vec::new(),
                customers: Vec::new(),
                since: at,
            },
        );
    }

    /// Opens a lot, sold under the catalog version of the fact being folded.
    fn credit(&mut self, subject: &Subject, mut lot: NewLot<'_>) -> bool {
        lot.catalog_version = lot.catalog_version.or(self.last.as_ref().and_then(|f| f.catalog_version));
        let key = subject.to_string();
        let end = lot.valid_to;
        let ok = self.st.subjects.get_mut(&key).is_some_and(|s| s.wallet.credit(lot));
        if ok {
            if let Some(e) = end {
                self.expiries.entry(e).or_default().insert(key);
            }
        }
        ok
    }

    fn wallet(&mut self, subject: &Subject) -> &mut Wallet {
        &mut self.st.subjects.get_mut(&subject.to_string()).expect("touched before use").wallet
    }

    fn step(&mut self, f: &Fact) {
        self.advance(f.at);
        self.st.facts.unique += 1;
        self.last = Some(f.clone());
        match &f.body {
            FactBody::CustomerLinked(l) => self.touch(&l.subject, f.at),
            // Gathered with the attribution; the subject exists from then on.
            FactBody::Attributed(a) => self.touch(&a.subject, f.at),
            FactBody::Joined(j) => self.touch(&j.subject, f.at),
            FactBody::Purchase(p) => self.on_purchase(f, p),
            FactBody::Subscription(s) => self.on_snapshot(f, s),
            FactBody::InvoicePaid(i) => self.on_invoice_paid(f, i),
            FactBody::InvoiceFailed(i) => self.on_invoice_failed(f, i),
            // A won dispute takes nothing back: the state is as if it never happened.
            FactBody::Dispute(r) if self.attr.dispute_won(&r.id) => {}
            FactBody::Refund(_) | FactBody::Dispute(_) => {
                if !self.on_reversal(f) {
                    self.deferred.push(f.clone());
                }
            }
            // A link from a payment to its invoice, gathered with the attribution.
            FactBody::InvoicePayment(_) => {}
            FactBody::Usage(u) => self.on_usage(f, u),
            FactBody::SeatAssigned(s) => self.on_seat(f, s, true),
            FactBody::SeatReleased(s) => self.on_seat(f, s, false),
            FactBody::CreditAdjustment(a) => self.on_adjustment(f, a),
            FactBody::GrantGiven(g) => {
                if self.catalog.tier_index(&g.product, &g.tier).is_none() {
                    return self.pend(f, format!("product `{}` has no tier `{}` in the catalog", g.product, g.tier), vec![]);
                }
                self.touch(&g.subject, f.at);
                self.manual.insert((g.subject.to_string(), g.source, g.id.clone()), g.clone());
            }
        }
    }

    fn on_purchase(&mut self, f: &Fact, p: &Purchase) {
        let p = &self.attr.completed(self.catalog, p);
        let subject = p
            .subject
            .clone()
            .or_else(|| self.attr.payment.get(&p.id).cloned())
            .or_else(|| p.customer.as_ref().and_then(|c| self.attr.customer.get(c).cloned()))
            .or_else(|| p.subscription.as_ref().and_then(|s| self.attr.subscription.get(s).cloned()));
        let Some(subject) = subject else {
            let mut waiting: Vec<String> = p.customer.iter().cloned().collect();
            waiting.push(p.id.clone());
            waiting.extend(p.subscription.iter().cloned());
            let reason = match &p.customer {
                Some(c) => format!("customer {c} is not linked to a user or organization yet"),
                None => format!("{} names no user or organization (client_reference_id or metadata) and no customer", p.id),
            };
            return self.pend(f, reason, waiting);
        };
        self.touch(&subject, f.at);
        if p.outcome != PurchaseOutcome::Paid {
            return; // attribution only (already gathered)
        }
        match p.mode {
            PurchaseMode::Subscription => {
                let Some(sid) = &p.subscription else { return };
                let offer = p.offer.as_deref().and_then(|k| self.catalog.offer(k));
                if offer.is_none() {
                    self.unmapped.push((f.clone(), sid.clone()));
                }
                match self.st.subscriptions.get_mut(sid) {
                    Some(s) => {
                        if s.subject.is_none() {
                            s.subject = Some(subject.clone());
                        }
                        sold_under(s, f);
                        if s.clouds.is_empty() {
                            s.clouds = p.clouds.clone();
                        }
                    }
                    None => {
                        // The checkout came before any snapshot: grant from it, with
                        // a period estimated from the offer, until a snapshot says more.
                        let mut s = new_subscription(sid, f.provider, f.at);
                        s.subject = Some(subject.clone());
                        s.customer = p.customer.clone();
                        s.items = vec![Item { price: None, offer: p.offer.clone(), quantity: p.quantity }];
                        s.clouds = p.clouds.clone();
                        s.started_at = Some(f.at);
                        let trial = offer.map(|o| o.trial_days).unwrap_or(0);
                        if trial > 0 && (p.no_payment_required || p.amount == 0) {
                            s.status = SubStatus::Trialing;
                            s.trial_end = Some(f.at.plus_days(trial as i64));
                            s.estimated_until = s.trial_end;
                        } else {
                            s.status = SubStatus::Active;
                            s.estimated_until = offer.and_then(|o| add_interval(f.at, o.price.interval));
                        }
                        s.seats = subscription_seats(self.catalog, &s.items);
                        sold_under(&mut s, f);
                        self.st.subscriptions.insert(sid.clone(), s);
                    }
                }
            }
            PurchaseMode::Payment => self.one_time(f, p, &subject),
        }
    }

    fn record_payment(&mut self, rec: PaymentRecord) {
        for r in rec.refs.iter().chain(std::iter::once(&rec.id)) {
            let ids = self.pay_index.entry(r.clone()).or_default();
            if !ids.contains(&rec.id) {
                ids.push(rec.id.clone());
            }
        }
        self.st.payments.insert(rec.id.clone(), rec);
    }

    fn one_time(&mut self, f: &Fact, p: &Purchase, subject: &Subject) {
        if self.st.payments.contains_key(&p.id) {
            return;
        }
        let Some(offer) = p.offer.as_deref().and_then(|k| self.catalog.offer(k)) else {
            // Paid, and nothing says what for: it waits for an operator to name the offer.
            let reason = match &p.offer {
                Some(o) => format!("{}: offer `{o}` is not in the catalog", p.id),
                None => format!("{}: no price or metadata of it names an offer of the catalog", p.id),
            };
            return self.pend(f, reason, vec![p.id.clone()]);
        };
        let valid_to = add_interval(f.at, offer.price.interval);
        let mut w = Vec::new();
        let grants: Vec<Grant> = offer_products(self.catalog, offer, &p.clouds, &p.id, &mut w)
            .into_iter()
            .map(|(product, t)| Grant {
                id: format!("{}:{product}", p.id),
                tier: self.catalog.product(&product).map(|x| x.tiers[t].clone()).unwrap_or_default(),
                product,
                source: source_of(f.provider),
                status: Status::Active,
                valid_from: f.at,
                valid_to,
                past_due_since: None,
                offer: Some(offer.key.clone()),
                source_ref: Some(p.id.clone()),
                catalog_version: f.catalog_version,
                renewal_version: f.catalog_version,
                period_start: None,
                paused_since: None,
            })
            .collect();
        for x in w {
            self.warn(x);
        }
        let mut lots = Vec::new();
        for c in self.credits_sold(f, &offer.key) {
            let key = format!("purchase:{}:{}", p.id, c.pool);
            let ok = self.credit(
                subject,
                NewLot {
                    key: key.clone(),
                    pool: &c.pool,
                    kind: LotKind::Purchase,
                    amount: c.amount.saturating_mul(p.quantity as i64),
                    at: f.at,
                    valid_to: None,
                    source: &p.id,
                    subscription: None,
                    catalog_version: None,
                },
            );
            if ok {
                lots.push(key);
            }
        }
        let mut refs = vec![p.id.clone()];
        refs.extend(p.payment_refs.iter().cloned());
        self.record_payment(PaymentRecord {
            id: p.id.clone(),
            refs,
            subject: subject.clone(),
            subscription: None,
            period_end: None,
            offer: Some(offer.key.clone()),
            amount: p.amount,
            currency: p.currency.clone(),
            at: f.at,
            lots,
            grants,
            reversed: 0,
            revoked_units: BTreeMap::new(),
            taken: BTreeMap::new(),
            revoked_at: None,
        });
    }

    fn on_snapshot(&mut self, f: &Fact, s: &SubscriptionSnapshot) {
        // The first link of a subscription to a subject holds (the attribution pass keeps
        // it and warns about any other): a later snapshot naming someone else never moves
        // the subscription, so no grant is left behind that later events do not update.
        let subject = self.attr.subject_for_sub(&s.id, s.customer.as_deref()).or_else(|| s.subject.clone());
        let failure = self.failures.remove(&s.id);
        let checkout_clouds = self
            .attr
            .checkout
            .get(&s.id)
            .map(|c| c.clouds.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| self.attr.chosen.get(&s.id).cloned())
            .unwrap_or_default();
        let catalog = self.catalog;
        let read_under = self.read_under(f);
        let items = self.attr.completed_items(catalog, &s.id, &s.items);
        let e = self.st.subscriptions.entry(s.id.clone()).or_insert_with(|| new_subscription(&s.id, f.provider, f.at));
        // Monotone: nothing after the end, nothing older than what is known.
        if e.version.is_some() && e.status.is_terminal() || e.version.is_some_and(|v| f.at < v) {
            self.st.facts.stale += 1;
            return;
        }
        e.version = Some(f.at);
        e.status = s.status;
        let changed = plan_changed(&e.items, &items);
        e.items = items;
        if s.customer.is_some() {
            e.customer = s.customer.clone();
        }
        if !s.clouds.is_empty() {
            e.clouds = s.clouds.clone();
        } else if e.clouds.is_empty() {
            e.clouds = checkout_clouds;
        }
        e.period_start = s.period_start.or(e.period_start);
        e.period_end = s.period_end.or(e.period_end);
        e.started_at = min_opt(e.started_at, s.started_at);
        let trial = e.trial_end;
        e.trial_end = s.trial_end;
        e.cancel_at_period_end = s.cancel_at_period_end;
        e.cancel_at = s.cancel_at;
        e.estimated_until = None;
        if s.status == SubStatus::Ended {
            e.ended_at = Some(s.ended_at.unwrap_or(f.at));
        } else {
            e.ended_at = s.ended_at;
        }
        e.paused_at = if s.status == SubStatus::Paused { e.paused_at.or(Some(f.at)) } else { None };
        let paid_before = e.paid_through;
        if paid_before.is_none() {
            sold_under(e, f);
        }
        let tells = match s.status {
            SubStatus::Active | SubStatus::Trialing => {
                e.paid_through = max_opt(e.paid_through, s.period_end);
                s.period_end
            }
            SubStatus::Canceled if e.paid_through.is_none() => {
                e.paid_through = s.period_end;
                None
            }
            _ => None,
        };
        if let (None, Some(end)) = (paid_before, e.paid_through) {
            self.sales.insert(e.id.clone(), end);
        }
        period_told(e, &mut self.renewals, f, (paid_before, trial, tells), read_under);
        // A change of plan is a new sale of the new plan, made under the version it was read
        // under: the old plan's sale and where its renewals moved it say nothing of the new one.
        if changed {
            e.catalog_version = f.catalog_version;
            e.renewal_version = None;
            self.sales.remove(&e.id);
            self.renewals.remove(&e.id);
        }
        match s.status {
            SubStatus::PastDue => {
                let since = min_opt(min_opt(e.past_due_since, failure), Some(f.at));
                e.past_due_since = since;
            }
            SubStatus::Active | SubStatus::Trialing => e.past_due_since = None,
            _ => {}
        }
        if e.subject.is_none() {
            e.subject = subject.clone();
        }
        e.seats = subscription_seats(catalog, paid_items(e));
        let live = matches!(s.status, SubStatus::Active | SubStatus::Trialing | SubStatus::PastDue);
        if live && e.subject.is_some() && !has_offer(catalog, &e.items) {
            self.unmapped.push((f.clone(), s.id.clone()));
        }
        match e.subject.clone() {
            Some(subj) => self.touch(&subj, f.at),
            None => {
                let mut waiting = vec![s.id.clone()];
                waiting.extend(s.customer.iter().cloned());
                self.pend(f, format!("no user or organization is known for {} yet", s.id), waiting);
            }
        }
    }

    fn on_invoice_paid(&mut self, f: &Fact, i: &InvoicePaid) {
        self.settle_failures(f, i);
        let attributed = self.attr.subject_for_sub(&i.subscription, i.customer.as_deref());
        let catalog = self.catalog;
        let read_under = self.read_under(f);
        let inv_items = self.attr.completed_items(catalog, &i.subscription, &i.items);
        let e = self.st.subscriptions.entry(i.subscription.clone()).or_insert_with(|| {
            let mut s = new_subscription(&i.subscription, f.provider, f.at);
            s.status = SubStatus::Active;
            s.customer = i.customer.clone();
            s.items = inv_items.clone();
            s
        });
        let first_offer =
            inv_items.iter().chain(e.items.iter()).find_map(|x| x.offer.as_deref()).and_then(|k| catalog.offer(k));
        let period_end =
            i.period_end.or(e.period_end).or_else(|| first_offer.and_then(|o| add_interval(f.at, o.price.interval)));
        let gives = gives_its_period(e, i);
        if gives {
            if matches!(e.status, SubStatus::PastDue | SubStatus::Incomplete) {
                e.status = SubStatus::Active;
            }
            e.past_due_since = None;
            if e.items.is_empty() {
                e.items = inv_items.clone();
            }
            // An invoice of a period ending after the one known (a renewal told by its
            // payment before its snapshot) starts the current period; one of an earlier
            // period never moves it back, nor does a plan change's invoice for the rest of
            // the current period (its lines start at the change), and either fills it only
            // when nothing else told it.
            let latest = i.period_end.is_some_and(|end| e.period_end.is_none_or(|known| end > known));
            e.period_start = if latest { max_opt(e.period_start, i.period_start) } else { e.period_start.or(i.period_start) };
            e.period_end = max_opt(e.period_end, period_end);
            let paid_before = e.paid_through;
            if paid_before.is_none() || period_end.is_some_and(|end| self.sales.get(&e.id) == Some(&end)) {
                sold_under(e, f);
            }
            if let Some(end) = period_end.filter(|end| e.period_paid.as_ref().is_none_or(|p| *end > p.until)) {
                let paying = if inv_items.iter().any(|x| x.offer.is_some()) { &inv_items } else { &e.items };
                e.period_paid = Some(PeriodPaid { until: end, items: paying.clone(), by: i.id.clone() });
            }
            e.paid_through = max_opt(e.paid_through, period_end);
            if let (None, Some(end)) = (paid_before, e.paid_through) {
                self.sales.insert(e.id.clone(), end);
            }
            let trial = e.trial_end;
            period_told(e, &mut self.renewals, f, (paid_before, trial, period_end), read_under);
            if e.revoked.as_ref().is_some_and(|r| period_end.is_some_and(|p| p > r.through)) {
                e.revoked = None;
            }
            e.seats = subscription_seats(catalog, paid_items(e));
        }
        if e.subject.is_none() {
            e.subject = attributed;
        }
        let Some(subject) = e.subject.clone() else {
            let mut waiting = vec![i.subscription.clone()];
            waiting.extend(i.customer.iter().cloned());
            return self.pend(f, format!("no user or organization is known for {} yet", i.subscription), waiting);
        };
        let items = if inv_items.iter().any(|x| x.offer.is_some()) { inv_items.clone() } else { e.items.clone() };
        if gives && !has_offer(catalog, &items) && !has_offer(catalog, &e.items) {
            self.unmapped.push((f.clone(), i.subscription.clone()));
        }
        // An invoice that gives no period (paid for one after the subscription ended) is
        // kept (a refund may name it) but opens no new period of credits.
        let ended = !gives;
        self.touch(&subject, f.at);
        if self.st.payments.contains_key(&i.id) {
            return;
        }
        // Credits: per-period allowances and once-per-subscription credits.
        let mut allowance: BTreeMap<String, i64> = BTreeMap::new();
        let mut once: BTreeMap<String, i64> = BTreeMap::new();
        let mut offer_key = None;
        for it in &items {
            let Some(o) = it.offer.as_deref().and_then(|k| catalog.offer(k)) else { continue };
            offer_key.get_or_insert_with(|| o.key.clone());
            for c in self.credits_sold(f, &o.key) {
                let m = match c.per {
                    CreditCadence::Period => &mut allowance,
                    CreditCadence::Once => &mut once,
                };
                *m.entry(c.pool.clone()).or_insert(0) += c.amount.saturating_mul(it.quantity.max(1) as i64);
            }
        }
        let mut lots = Vec::new();
        for (pool, amount) in once {
            let key = format!("once:{}:{pool}", i.subscription);
            let ok = self.credit(
                &subject,
                NewLot {
                    key: key.clone(),
                    pool: &pool,
                    kind: LotKind::Purchase,
                    amount,
                    at: f.at,
                    valid_to: None,
                    source: &i.id,
                    subscription: Some(&i.subscription),
                    catalog_version: None,
                },
            );
            if ok {
                lots.push(key);
            }
        }
        if let (Some(end), false) = (period_end, ended) {
            for (pool, amount) in allowance {
                lots.extend(self.allowance(&subject, &i.subscription, &pool, amount, end, &i.id, f.at));
            }
        }
        let mut refs = i.payment_refs.clone();
        if !refs.contains(&i.id) {
            refs.insert(0, i.id.clone());
        }
        // Payments the set links to this invoice (API 2025-03-31 on, a charge no
        // longer names its invoice): a refund of one of them reverses this invoice.
        for r in self.attr.invoice_payments.get(&i.id).into_iter().flatten() {
            if !refs.contains(r) {
                refs.push(r.clone());
            }
        }
        self.record_payment(PaymentRecord {
            id: i.id.clone(),
            refs,
            subject,
            subscription: Some(i.subscription.clone()),
            period_end,
            offer: offer_key,
            amount: i.amount,
            currency: i.currency.clone(),
            at: f.at,
            lots,
            grants: Vec::new(),
            reversed: 0,
            revoked_units: BTreeMap::new(),
            taken: BTreeMap::new(),
            revoked_at: None,
        });
    }

    /// Grants a period's allowance; on renewal, carries over what the rule
    /// allows from the previous period's lots (never a trial's allowance, see
    /// [`Folder::trial_allowance`]). Returns the lots the payment put credits
    /// in (the allowance: a rollover lot holds what earlier payments paid for).
    #[allow(clippy::too_many_arguments)]
    fn allowance(
        &mut self,
        subject: &Subject,
        sub: &str,
        pool: &str,
        amount: i64,
        period_end: Timestamp,
        source: &str,
        at: Timestamp,
    ) -> Vec<String> {
        let key = format!("allowance:{sub}:{}:{pool}", period_end.0);
        let rule = self.catalog.pool(pool).map(|p| p.rollover).unwrap_or_default();
        // Lots of other subscriptions that ended hand their remainder over too (the Video
        // Studio app moves the rollover to the new plan on an upgrade). One that only will
        // end (at its period's end, or at `cancel_at`) still runs: its lots hold what was
        // paid for until they end.
        let ending: BTreeSet<String> = self
            .st
            .subscriptions
            .values()
            .filter(|s| s.id != sub && s.status.is_terminal())
            .map(|s| s.id.clone())
            .collect();
        let trials: BTreeSet<String> = self
            .st
            .subjects
            .get(&subject.to_string())
            .map(|s| s.wallet.lots.iter().filter(|l| self.trial_allowance(l)).map(|l| l.key.clone()).collect())
            .unwrap_or_default();
        let w = self.wallet(subject);
        if let Some(l) = w.lot(&key) {
            // The same period paid again (an upgrade's proration): top up to the larger allowance.
            let granted = l.granted;
            if amount > granted && w.top_up(&key, format!("{key}:topup:{source}"), amount - granted, at, source)
            {
                return vec![key];
            }
            return Vec::new();
        }
        let candidates: Vec<(String, Timestamp, bool)> = w
            .lots
            .iter()
            .filter(|l| l.pool == pool && l.kind.is_period() && !l.rolled_over && !trials.contains(&l.key))
            .filter_map(|l| {
                let end = l.valid_to?;
                let same = l.subscription.as_deref() == Some(sub) && end < period_end;
                let handed = l.subscription.as_ref().is_some_and(|s| ending.contains(s)) && !l.closed;
                (same || handed).then(|| (l.key.clone(), end, same))
            })
            .collect();
        let latest = candidates.iter().filter(|c| c.2).map(|c| c.1).max();
        let mut unused = 0;
        let mut carried = Vec::new();
        for (k, end, same) in &candidates {
            let carry = !same || Some(*end) == latest;
            if carry {
                w.expire_lot(k, (*end).min(at));
                unused += w.lot(k).map(|l| l.expired).unwrap_or(0);
                carried.push(k.clone());
            }
            w.mark_rolled_over(k);
        }
        let rollover = renewal_rollover(rule, amount, unused);
        let mut out = Vec::new();
        if rollover > 0 {
            let rk = format!("rollover:{sub}:{}:{pool}", period_end.0);
            for k in carried {
                self.carried.insert(k, rk.clone());
            }
            // Not among the lots this payment put credits in: what it carries was paid by
            // the payments of the lots it came from, whose reversals reach it (`carried`).
            self.credit(
                subject,
                NewLot {
                    key: rk,
                    pool,
                    kind: LotKind::Rollover,
                    amount: rollover,
                    at,
                    valid_to: Some(period_end),
                    source,
                    subscription: Some(sub),
                    catalog_version: None,
                },
            );
        }
        let ok = self.credit(
            subject,
            NewLot {
                key: key.clone(),
                pool,
                kind: LotKind::Allowance,
                amount,
                at,
                valid_to: Some(period_end),
                source,
                subscription: Some(sub),
                catalog_version: None,
            },
        );
        if ok {
            out.push(key);
        }
        out
    }

    /// Whether `lot` is a trial period's allowance: opened by an invoice that paid nothing
    /// (Stripe's $0 `subscription_create` invoice) before its subscription's trial ended.
    /// Nobody paid for its units, so they never roll over, into the subscription's next
    /// period or into another subscription's it would be handed to: the lot ends when its
    /// period ends, and a payment buys one period's allowance, not also a trial's remainder.
    fn trial_allowance(&self, lot: &Lot) -> bool {
        let unpaid = self.st.payments.get(&lot.source).filter(|p| p.amount == 0);
        let trial_end = lot.subscription.as_ref().and_then(|s| self.st.subscriptions.get(s)).and_then(|s| s.trial_end);
        lot.kind == LotKind::Allowance && unpaid.zip(trial_end).is_some_and(|(p, end)| p.at < end)
    }

    /// Records what a failed payment leaves due (see [`FailedPayment`]): the first failure
    /// opens the record, a later one updates the amount, the next retry and the attempts;
    /// a failure after the record was settled opens it again.
    fn record_failure(&mut self, f: &Fact, i: &InvoiceFailed) {
        let r = self.st.failed_payments.entry(i.id.clone()).or_insert_with(|| FailedPayment {
            id: i.id.clone(),
            provider: f.provider,
            subscription: i.subscription.clone(),
            subject: None,
            amount_due: 0,
            currency: String::new(),
            attempts: 0,
            next_retry: None,
            first_failed_at: f.at,
            last_failed_at: f.at,
            grace_until: None,
            resolved_at: None,
            resolution: None,
            resolved_by: None,
            failures: Vec::new(),
            payments: Vec::new(),
        });
        if r.failures.contains(&f.key) {
            return;
        }
        if r.resolved_at.is_some_and(|t| t <= f.at) {
            r.resolved_at = None;
            r.resolution = None;
            r.resolved_by = None;
            r.first_failed_at = f.at;
        }
        r.failures.push(f.key.clone());
        if let Some(p) = i.payment.as_ref().filter(|p| !r.payments.contains(p)) {
            r.payments.push(p.clone());
        }
        let told = if r.payments.is_empty() { r.failures.len() } else { r.payments.len() };
        r.attempts = r.attempts.max(i.attempt).max(u32::try_from(told).unwrap_or(u32::MAX));
        // Facts fold in time order: the latest failure says what is due now.
        if f.at >= r.last_failed_at || r.failures.len() == 1 {
            r.last_failed_at = f.at;
            r.next_retry = i.next_retry;
            if i.amount_due > 0 || !i.currency.is_empty() {
                r.amount_due = i.amount_due;
                r.currency = i.currency.clone();
            }
        }
    }

    /// A payment of a subscription settles every failure of it up to then.
    fn settle_failures(&mut self, f: &Fact, i: &InvoicePaid) {
        for r in self.st.failed_payments.values_mut() {
            if r.is_open() && (r.id == i.id || r.subscription == i.subscription) && r.first_failed_at <= f.at {
                r.resolved_at = Some(f.at);
                r.resolution = Some(Resolution::Paid);
                r.resolved_by = Some(i.id.clone());
                r.next_retry = None;
            }
        }
    }

    fn on_invoice_failed(&mut self, f: &Fact, i: &InvoiceFailed) {
        // A retry of an invoice that first failed before the subscription's latest period
        // was paid (an earlier period's, still owed) leaves the subscription as it is
        // while that paid period runs: it is due again, and ends nothing that was paid for.
        let first = self.st.failed_payments.get(&i.id).map(|r| r.first_failed_at);
        self.record_failure(f, i);
        let payments = &self.st.payments;
        match self.st.subscriptions.get_mut(&i.subscription) {
            Some(s)
                if s.period_paid
                    .as_ref()
                    .filter(|p| p.until > f.at && p.by != i.id)
                    .and_then(|p| payments.get(&p.by))
                    .is_some_and(|paid| first.is_some_and(|t| paid.at > t)) => {}
            Some(s) if !s.status.is_terminal() => {
                if matches!(s.status, SubStatus::Active | SubStatus::Trialing) {
                    s.status = SubStatus::PastDue;
                }
                if s.status == SubStatus::PastDue {
                    s.past_due_since = min_opt(s.past_due_since, Some(f.at));
                }
            }
            Some(_) => {}
            None => {
                let e = self.failures.entry(i.subscription.clone()).or_insert(f.at);
                *e = (*e).min(f.at);
            }
        }
    }

    /// Applies a refund or dispute to every payment record of its payment (a payment
    /// intent that paid several invoices reverses each of them, in proportion); false
    /// when its payment is not known (yet).
    fn on_reversal(&mut self, f: &Fact) -> bool {
        let (r, dispute) = match &f.body {
            FactBody::Refund(r) => (r, false),
            FactBody::Dispute(r) => (r, true),
            _ => return true,
        };
        let mut pids: Vec<String> = Vec::new();
        for x in r.payment_refs.iter().chain(std::iter::once(&r.id)) {
            for id in self.pay_index.get(x).into_iter().flatten() {
                if !pids.contains(id) && self.st.payments.contains_key(id) {
                    pids.push(id.clone());
                }
            }
        }
        if pids.is_empty() {
            return false;
        }
        let shared = pids.len() > 1;
        // The payment's amount as the fold knows it from its own facts (all the records it
        // paid): what a dispute, which does not tell it, is a share of.
        let known = pids.iter().filter_map(|p| self.st.payments.get(p)).fold(0i64, |a, p| a.saturating_add(p.amount.max(0)));
        let r = &as_told(f.provider, r, dispute);
        for pid in pids {
            let said = self.reversals.entry(pid.clone()).or_default();
            said.add(r, dispute);
            let part = said.part(known, r.amount);
            self.reverse_payment(f, r, part, shared, pid);
        }
        true
    }

    /// Takes back (all or the reversed share of) what one payment record granted, the
    /// payment reversed as far as `part` says (all its reversals so far).
    /// `shared`: the reversed payment paid several records, so each gets its share of
    /// the reversed amount (`reversed` x record amount / payment amount).
    fn reverse_payment(&mut self, f: &Fact, r: &Reversal, part: Part, shared: bool, pid: String) {
        let Some(mut rec) = self.st.payments.get(&pid).cloned() else { return };
        let Part { reversed, of, full } = part;
        let share = if shared && of > 0 {
            ((reversed.max(0) as i128 * rec.amount.max(0) as i128) / of as i128).min(rec.amount as i128) as i64
        } else {
            reversed
        };
        rec.reversed = rec.reversed.max(if full { if shared { rec.amount } else { rec.amount.max(reversed) } } else { share });
        let subject = rec.subject.clone();
        for lot in rec.lots.clone() {
            // What this payment put in the lot: an upgrade's proration tops up the
            // period's allowance lot that the period's first invoice opened.
            let granted = self.st.subjects.get(&subject.to_string()).map_or(0, |s| s.wallet.credited_by(&lot, &pid));
            if granted <= 0 {
                continue;
            }
            let target = if full {
                granted
            } else {
                ((granted as i128 * reversed.max(0) as i128) / of.max(1) as i128).min(granted as i128) as i64
            };
            let done = rec.revoked_units.get(&lot).copied().unwrap_or(0);
            if target > done {
                let carried = &self.carried;
                let Some(s) = self.st.subjects.get_mut(&subject.to_string()) else { continue };
                let w = &mut s.wallet;
                let took = w.revoke(&lot, format!("reverse:{pid}:{lot}:{target}"), target - done, f.at, &r.id);
                add_taken(&mut rec.taken, &lot, took);
                // What the lot no longer holds because a new period carried it over (its
                // renewal, or another subscription it was handed to) is taken from the
                // rollover lot it went to, and what that lot carried on from the one after,
                // renewal after renewal: at each, what of this payment's units is still
                // there. Into the first went what expired from this lot; into each next, what
                // of those the one before neither gave back nor held any more (at most what
                // expired from it). Less, at each, what an earlier reversal of this payment
                // took from it already: refunded in two steps, it takes no more back than
                // refunded at once.
                let mut short = target - done - took;
                let mut from = lot.clone();
                let mut went = w.lot(&lot).map_or(0, |l| l.expired);
                // Each lot is carried once, into a lot opened then: the chain ends.
                for _ in 0..carried.len() {
                    let Some(next) = carried.get(&from).filter(|_| short > 0 && went > 0) else { break };
                    let before = rec.taken.get(next).copied().unwrap_or(0);
                    let there = (went - before).max(0);
                    let took =
                        w.revoke(next, format!("reverse:{pid}:{lot}:{target}:{next}"), short.min(there), f.at, &r.id);
                    add_taken(&mut rec.taken, next, took);
                    short -= took;
                    went = (there - took).min(w.lot(next).map_or(0, |l| l.expired));
                    from = next.clone();
                }
                rec.revoked_units.insert(lot.clone(), target);
            }
        }
        if full {
            rec.revoked_at = min_opt(rec.revoked_at, Some(f.at));
            for g in &mut rec.grants {
                g.status = Status::Canceled;
                g.valid_to = min_opt(g.valid_to, Some(f.at));
            }
            if let Some(sid) = &rec.subscription {
                // The period's first payment, when this one came after it (an upgrade's)
                // and it is not taken back, keeps what it paid for.
                let payments = &self.st.payments;
                let keep: Vec<Item> = self
                    .st
                    .subscriptions
                    .get(sid)
                    .and_then(|s| s.period_paid.as_ref())
                    .filter(|p| rec.period_end == Some(p.until) && p.by != pid)
                    .filter(|p| payments.get(&p.by).is_some_and(|first| first.revoked_at.is_none()))
                    .map(|p| p.items.clone())
                    .unwrap_or_default();
                if let Some(s) = self.st.subscriptions.get_mut(sid) {
                    let through = rec.period_end.or(s.paid_through).unwrap_or(f.at);
                    // A later reversal of the same period ends what an earlier one kept.
                    let kept = |x: &Revocation| x.through == through && !x.keep.is_empty();
                    if s.revoked.as_ref().is_none_or(|x| x.through < through || kept(x)) {
                        s.revoked = Some(Revocation { at: f.at, through, by: r.id.clone(), keep });
                        s.seats = subscription_seats(self.catalog, paid_items(s));
                    }
                }
            }
        }
        self.st.payments.insert(pid, rec);
    }

    fn on_usage(&mut self, f: &Fact, u: &UsageFact) {
        if self.catalog.pool(&u.pool).is_none() {
            return self.pend(f, format!("credit pool `{}` is not in the catalog", u.pool), vec![]);
        }
        self.touch(&u.subject, f.at);
        let usage = self.catalog.doc.usage.as_ref().filter(|x| x.pool == u.pool);
        let currency = if u.currency.is_empty() {
            usage.map(|x| x.currency.clone()).unwrap_or_default()
        } else {
            u.currency.clone()
        };
        // A recorded charge: its takes were applied with the attribution (charges come
        // first on every lot); only its overage is noted here.
        let (overage_units, cost) = if u.takes.is_some() {
            (i64::try_from(u.overage_units).unwrap_or(i64::MAX), Some(u.overage_cost))
        } else {
            // A record from before charges kept their takes: planned once, here.
            let units = i64::try_from(u.units).unwrap_or(i64::MAX);
            let plan = self.wallet(&u.subject).plan_debit(&u.pool, units, f.at);
            for t in &plan.takes {
                self.wallet(&u.subject).record_usage(&t.lot, t.units);
            }
            let cost = match (usage, &u.model, &u.quality) {
                (Some(_), Some(m), Some(q)) if plan.shortfall > 0 => {
                    crate::usage::overage_cost(self.catalog, m, q, plan.shortfall as u64).ok()
                }
                _ => None,
            };
            (plan.shortfall, cost)
        };
        if overage_units > 0 {
            if let Some(s) = self.st.subjects.get_mut(&u.subject.to_string()) {
                s.overage.push(OverageEntry {
                    request_id: u.request_id.clone(),
                    pool: u.pool.clone(),
                    units: overage_units,
                    cost,
                    currency,
                    at: f.at,
                });
            }
        }
    }

    /// The seats subscription `s` gives at `t`: its own while its grants count (a failed
    /// payment's grace included), then, while only what the period's first payment paid
    /// for counts (past due after the grace), the seats that payment paid for; none once
    /// nothing counts.
    fn seats_at(&self, s: &SubscriptionState, t: Timestamp) -> u32 {
        let grace = self.catalog.meta().grace_period_days;
        let mut w = Vec::new();
        let grants = subscription_grants(self.catalog, s, &mut w);
        let counts = |g: &Grant| matches!(decide::standing(g, grace, t), GrantStanding::Counts(_));
        if grants.iter().any(|g| counts(g) && !g.id.ends_with(PAID_SUFFIX)) {
            s.seats
        } else if grants.iter().any(counts) {
            s.period_paid.as_ref().map_or(0, |p| subscription_seats(self.catalog, &p.items))
        } else {
            0
        }
    }

    /// Seats an organization has at `t`: from its subscriptions that give access then.
    fn capacity_at(&self, org: &Subject, t: Timestamp) -> u32 {
        self.st
            .subscriptions
            .values()
            .filter(|s| s.subject.as_ref() == Some(org) && s.seats > 0)
            .map(|s| self.seats_at(s, t))
            .fold(0u32, |a, b| a.saturating_add(b))
    }

    fn on_seat(&mut self, f: &Fact, s: &SeatChange, assign: bool) {
        self.touch(&s.org, f.at);
        self.touch(&s.user, f.at);
        let cap = self.capacity_at(&s.org, f.at);
        let book = self.st.seats.entry(s.org.to_string()).or_insert_with(|| SeatBook::new(s.org.clone()));
        if assign {
            let _ = book.assign(&s.user, cap, f.at, &s.request_id);
        } else {
            book.release(&s.user);
        }
    }

    fn on_adjustment(&mut self, f: &Fact, a: &CreditAdjustment) {
        if self.catalog.pool(&a.pool).is_none() {
            return self.pend(f, format!("credit pool `{}` is not in the catalog", a.pool), vec![]);
        }
        self.touch(&a.subject, f.at);
        let key = a.lot_key();
        // A credit whose validity ended before it was given gives nothing.
        if a.amount > 0 && a.valid_to.is_none_or(|t| t > f.at) {
            self.credit(
                &a.subject,
                NewLot {
                    key,
                    pool: &a.pool,
                    kind: LotKind::Adjustment,
                    amount: a.amount,
                    at: f.at,
                    valid_to: a.valid_to,
                    source: &f.key,
                    subscription: None,
                    catalog_version: None,
                },
            );
        } else if a.amount < 0 {
            self.wallet(&a.subject).debit_as(EntryKind::Adjustment, &key, &a.pool, -a.amount, f.at, &f.key);
        }
    }

    /// Ends the fold at `now`: late reversals, expiry, and the derived views
    /// (grants, balances, seats). Calling it again with a later `now` after
    /// more steps gives what one longer fold gives.
    fn finish(&mut self, now: Timestamp) {
        for f in std::mem::take(&mut self.deferred) {
            if !self.on_reversal(&f) {
                let mut refs = match &f.body {
                    FactBody::Refund(r) | FactBody::Dispute(r) => r.payment_refs.clone(),
                    _ => Vec::new(),
                };
                for inv in refs.iter().flat_map(|r| self.attr.invoices_paid_by(r)).collect::<Vec<_>>() {
                    if !refs.contains(&inv) {
                        refs.push(inv);
                    }
                }
                self.pend(&f, "the payment it reverses is not known yet".into(), refs);
            }
        }
        // Paid for a subscription none of whose prices (nor any operator) names an offer of
        // the catalog: it grants nothing, so it waits for an operator to name the offer.
        for (f, sub) in std::mem::take(&mut self.unmapped) {
            let Some(s) = self.st.subscriptions.get(&sub) else { continue };
            if has_offer(self.catalog, &s.items) {
                continue;
            }
            let prices: Vec<&str> = s.items.iter().filter_map(|i| i.price.as_deref()).collect();
            let reason = if prices.is_empty() {
                format!("no offer of the catalog is known for {sub}")
            } else {
                format!("no price of {sub} maps to an offer of the catalog ({})", prices.join(", "))
            };
            if !self.st.pending.iter().any(|p| p.key == f.key) {
                self.pend(&f, reason, vec![sub.clone()]);
            }
        }
        self.advance(now);
        self.st.as_of = self.clock;
        let mut warnings = self.attr.warnings.clone();
        for w in &self.step_warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        // Grants.
        let mut grants: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
        for s in self.st.subscriptions.values() {
            if let Some(subj) = &s.subject {
                let g = subscription_grants(self.catalog, s, &mut warnings);
                grants.entry(subj.to_string()).or_default().extend(g);
            }
        }
        for p in self.st.payments.values() {
            grants.entry(p.subject.to_string()).or_default().extend(p.grants.iter().cloned());
        }
        // Grants given by hand; one whose window has ended is closed.
        for ((subject, source, id), g) in &self.manual {
            let ended = g.valid_to.is_some_and(|t| t <= self.clock);
            grants.entry(subject.clone()).or_default().push(Grant {
                id: format!("{}:{id}", source.as_str()),
                product: g.product.clone(),
                tier: g.tier.clone(),
                source: *source,
                status: if ended { Status::Canceled } else { Status::Active },
                valid_from: g.valid_from,
                valid_to: g.valid_to,
                past_due_since: None,
                offer: None,
                source_ref: Some(format!("admin:{id}")),
                catalog_version: None,
                renewal_version: None,
                period_start: None,
                paused_since: None,
            });
        }
        self.st.customers = self.attr.customer.clone();
        for (k, s) in self.st.subjects.iter_mut() {
            s.wallet.settle_all();
            for (lot, units) in &s.wallet.uncovered {
                let w = format!("{k}: charges recorded {units} units from lot `{lot}` that it never held");
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            let mut g = grants.remove(k).unwrap_or_default();
            g.sort_by(|a, b| a.id.cmp(&b.id));
            s.grants = g;
            s.balances = s.wallet.balances();
            s.customers =
                self.st.customers.iter().filter(|(_, v)| &v.to_string() == k).map(|(c, _)| c.clone()).collect();
        }
        // Seats, as of now: of every organization with a subscription, also one whose
        // quantity went down to zero (its seat count is then 0, not the last one written),
        // so which books there are depends on the facts alone, never on when a fold of
        // part of them was finished.
        let orgs: BTreeSet<Subject> = self
            .st
            .subscriptions
            .values()
            .filter_map(|s| s.subject.clone())
            .filter(|s| s.is_org())
            .chain(self.st.seats.values().map(|b| b.org.clone()))
            .collect();
        let caps: Vec<(Subject, u32)> =
            orgs.into_iter().map(|o| (o.clone(), self.capacity_at(&o, self.clock))).collect();
        for (o, cap) in caps {
            self.st.seats.entry(o.to_string()).or_insert_with(|| SeatBook::new(o.clone())).set_capacity(cap);
        }
        self.failed_payments_as_of();
        self.st.warnings = warnings;
        self.st.facts.pending = self.st.pending.len();
    }

    /// Whose each failed payment is, until when its grace lasts, and which ended unpaid
    /// with their subscription. Derived from the rest of the state, so folding again
    /// changes nothing.
    fn failed_payments_as_of(&mut self) {
        let grace = i64::from(self.catalog.meta().grace_period_days);
        for r in self.st.failed_payments.values_mut() {
            let sub = self.st.subscriptions.get(&r.subscription);
            r.subject = sub.and_then(|s| s.subject.clone()).or_else(|| self.attr.subject_for_sub(&r.subscription, None));
            if r.is_open() {
                if let Some(s) = sub.filter(|s| s.status.is_terminal()) {
                    r.resolved_at = Some(s.ended_at.or(s.version).unwrap_or(r.last_failed_at).max(r.first_failed_at));
                    r.resolution = Some(Resolution::Ended);
                    r.next_retry = None;
                }
            }
            r.grace_until = r.is_open().then(|| {
                let since = sub.and_then(|s| s.past_due_since).map_or(r.first_failed_at, |p| p.min(r.first_failed_at));
                since.plus_days(grace)
            });
        }
    }
}
