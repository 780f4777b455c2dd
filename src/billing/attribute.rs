//! Kept events an operator attributes: what a kept event is known to be about, and
//! whether (and how) an operator's attribution applies.
//!
//! A paid event that names no buyer (no `client_reference_id`, no subject in its
//! metadata, a customer nobody linked) or whose prices map to no offer of the catalog
//! is never refused: its facts wait in the reducer's `pending` and the worker keeps the
//! delivery. [`known`] tells an operator what such an event is about; [`attribute`]
//! decides an operator's attribution: an [`Attributed`] fact to fold (the event's
//! customer, subscription and purchase belong to the subject, and, when nothing else
//! says so, they sold the offer the operator names), nothing when the event is
//! attributed to that subject already (a retry), or a refusal.
//!
//! An event linked to someone else already is theirs, unless the link names a user the
//! store has no record of (a deleted account, another environment's id: the caller asks
//! its store about the user an [`Refusal::AttributedToOther`] names and, when it has no
//! record of it, asks again saying so in [`Request::unknown`]). Such a
//! link would keep what was paid waiting for ever, so the operator's attribution replaces
//! it (the fact's `replaces`): the purchase goes to the operator's subject, once, and
//! never to that user, even should it appear later.

use serde::Serialize;

use super::facts::{Attributed, Fact, FactBody, Provider, Subject};
use super::parse::{bundle_size, check_clouds};
use super::reducer::reduce;
use crate::catalog::{Catalog, SubjectKind};
use crate::time::Timestamp;

/// What a kept event's facts say about whom and what it is for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Known {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The purchase itself (a checkout session, a payment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
    /// The provider prices (plans) it names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<String>,
    /// The catalog offer its prices or metadata name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// The buyer it names, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// What was paid, in minor units, and the currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub currency: String,
}

fn set<T: Clone>(slot: &mut Option<T>, v: Option<&T>) {
    if slot.is_none() {
        *slot = v.cloned();
    }
}

/// What the facts of one event say about whom and what it is for.
pub fn known(facts: &[Fact]) -> Known {
    let mut k = Known::default();
    let mut items = Vec::new();
    for f in facts {
        match &f.body {
            FactBody::Purchase(p) => {
                set(&mut k.payment, Some(&p.id));
                set(&mut k.customer, p.customer.as_ref());
                set(&mut k.subscription, p.subscription.as_ref());
                set(&mut k.offer, p.offer.as_ref());
                set(&mut k.subject, p.subject.as_ref());
                set(&mut k.amount, Some(&p.amount));
                if k.currency.is_empty() {
                    k.currency = p.currency.clone();
                }
            }
            FactBody::Subscription(s) => {
                set(&mut k.subscription, Some(&s.id));
                set(&mut k.customer, s.customer.as_ref());
                set(&mut k.subject, s.subject.as_ref());
                items.extend(s.items.iter().cloned());
            }
            FactBody::InvoicePaid(i) => {
                set(&mut k.subscription, Some(&i.subscription));
                set(&mut k.customer, i.customer.as_ref());
                set(&mut k.amount, Some(&i.amount));
                if k.currency.is_empty() {
                    k.currency = i.currency.clone();
                }
                items.extend(i.items.iter().cloned());
            }
            FactBody::InvoiceFailed(i) => {
                set(&mut k.subscription, Some(&i.subscription));
                set(&mut k.customer, i.customer.as_ref());
            }
            _ => {}
        }
    }
    for it in items {
        if let Some(p) = it.price.filter(|p| !k.prices.contains(p)) {
            k.prices.push(p);
        }
        set(&mut k.offer, it.offer.as_ref());
    }
    k
}

/// An operator's attribution of a kept event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The provider and event id of the kept delivery.
    pub provider: Provider,
    pub event: String,
    pub subject: Subject,
    /// The offer sold, when the event's prices name none the catalog has.
    pub offer: Option<String>,
    /// A bundle's products, when the event's own choice is missing or wrong.
    pub clouds: Vec<String>,
    /// Who attributes it.
    pub by: String,
    /// Users the store has no record of (the caller asks about the one a refusal names).
    pub unknown: Vec<Subject>,
}

/// What an attribution comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Fold this fact (with the event's facts): the event then applies to the subject.
    Attribute(Fact),
    /// The event is attributed to this subject already and waits for nothing: a retry.
    Already,
}

/// Why an attribution is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// The event names no customer, subscription or purchase (a refund, a dispute: they
    /// follow the payment they reverse).
    NothingToAttribute,
    /// Its facts belong to another subject already (one the store knows).
    AttributedToOther { subject: Subject },
    /// The offer is not in the catalog, or is sold to the other kind of subject.
    InvalidOffer { message: String },
    /// The bundle's products do not fit the offer.
    InvalidClouds { message: String },
    /// Attributed so, the event would still wait (for the reasons given): say more (the
    /// offer, the bundle's products).
    StillWaiting { reasons: Vec<String> },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NothingToAttribute => "nothing_to_attribute",
            Refusal::AttributedToOther { .. } => "attributed_to_other",
            Refusal::InvalidOffer { .. } => "invalid_offer",
            Refusal::InvalidClouds { .. } => "invalid_clouds",
            Refusal::StillWaiting { .. } => "still_waiting",
        }
    }
    pub fn message(&self) -> String {
        match self {
            Refusal::NothingToAttribute => {
                "the event names no customer, subscription or purchase to attribute (it follows the payment it is about)".into()
            }
            Refusal::AttributedToOther { subject } => format!("the event is attributed to {subject} already"),
            Refusal::InvalidOffer { message } | Refusal::InvalidClouds { message } => message.clone(),
            Refusal::StillWaiting { reasons } => format!(
                "attributed so, the event would still wait: {}; name the offer (and a bundle's products)",
                reasons.join("; ")
            ),
        }
    }
}

/// Who the facts of `keys` are folded for in `state`, if anyone.
fn holder(st: &super::state::BillingState, k: &Known) -> Option<Subject> {
    k.payment
        .as_ref()
        .and_then(|p| st.payments.get(p).map(|r| r.subject.clone()))
        .or_else(|| k.subscription.as_ref().and_then(|s| st.subscriptions.get(s).and_then(|s| s.subject.clone())))
        .or_else(|| k.customer.as_ref().and_then(|c| st.customers.get(c).cloned()))
}

/// Decides an operator's attribution of a kept event. `event_facts` are the event's facts
/// (as the core reads its body now); `cluster` every stored fact related to them (the
/// event's own facts may be among them). Pure: the caller folds the fact it gets back,
/// with the event's facts, through its usual fold.
pub fn attribute(
    catalog: &Catalog,
    req: &Request,
    event_facts: &[Fact],
    cluster: &[Fact],
    now: Timestamp,
) -> Result<Decision, Refusal> {
    let k = known(event_facts);
    if k.customer.is_none() && k.subscription.is_none() && k.payment.is_none() {
        return Err(Refusal::NothingToAttribute);
    }
    if let Some(key) = req.offer.as_deref().filter(|k| catalog.offer(k).is_none()) {
        return Err(Refusal::InvalidOffer { message: format!("offer `{key}` is not in the catalog") });
    }
    // The offer named, else the event's own: sold to the kind of subject it goes to (an
    // organization's plan is never a user's grant, nor the other way round).
    let sold = req.offer.as_deref().or(k.offer.as_deref()).and_then(|key| catalog.offer(key).map(|o| (key, o)));
    if let Some((key, o)) = sold {
        let kind = if req.subject.is_org() { SubjectKind::Organization } else { SubjectKind::User };
        if o.subject != kind {
            return Err(Refusal::InvalidOffer {
                message: format!("offer `{key}` is sold to {}", if o.subject == SubjectKind::Organization { "organizations" } else { "users" }),
            });
        }
    }
    if !req.clouds.is_empty() {
        let offer = req.offer.as_deref().or(k.offer.as_deref()).and_then(|o| catalog.offer(o));
        match offer {
            Some(o) if bundle_size(o) > 0 => check_clouds(catalog, o, &req.clouds, "clouds")
                .map_err(|e| Refusal::InvalidClouds { message: e.to_string() })?,
            _ => return Err(Refusal::InvalidClouds { message: "clouds are chosen for a bundle offer only".into() }),
        }
    }
    let mut all: Vec<Fact> = cluster.to_vec();
    all.extend(event_facts.iter().filter(|f| !cluster.iter().any(|c| c.key == f.key)).cloned());
    let keys: Vec<&str> = event_facts.iter().map(|f| f.key.as_str()).collect();
    let before = reduce(catalog, &all, now);
    let waiting = before.pending.iter().any(|p| keys.contains(&p.key.as_str()));
    let replaces = match holder(&before, &k) {
        Some(s) if s == req.subject => {
            if !waiting {
                return Ok(Decision::Already);
            }
            None
        }
        // A user the store has no record of would hold the payment for ever: the
        // operator's word replaces the link. A subject the store knows keeps its purchase.
        Some(s) if !s.is_org() && req.unknown.contains(&s) => Some(s),
        Some(s) => return Err(Refusal::AttributedToOther { subject: s }),
        None => None,
    };
    let fact = Fact::attributed(
        Attributed {
            delivery: req.provider.object(&req.event),
            subject: req.subject.clone(),
            customer: k.customer.clone(),
            subscription: k.subscription.clone(),
            payment: k.payment.clone(),
            offer: req.offer.clone(),
            clouds: req.clouds.clone(),
            replaces,
            by: req.by.clone(),
        },
        now,
    );
    all.push(fact.clone());
    let after = reduce(catalog, &all, now);
    let reasons: Vec<String> =
        after.pending.iter().filter(|p| keys.contains(&p.key.as_str())).map(|p| p.reason.clone()).collect();
    if !reasons.is_empty() {
        return Err(Refusal::StillWaiting { reasons });
    }
    Ok(Decision::Attribute(fact))
}
