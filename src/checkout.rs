//! Money in: the exact provider requests that sell an offer and manage what was sold.
//!
//! From the catalog, an offer and what the buyer already holds ([`Account`]), the core
//! builds a Stripe Checkout Session or a Razorpay subscription or order ([`checkout`]), a
//! Stripe billing portal session ([`portal`]), a cancellation at the period end or its
//! undoing ([`cancel`]), a paused subscription's resumption ([`resume`]) and a plan change
//! ([`change`]). Every refusal is a value
//! ([`Refusal`]) decided before any provider is called. A purchase always carries its
//! attribution twice: on the session or order (`client_reference_id`, `metadata` /
//! `notes`) and on what the provider creates from it (`subscription_data.metadata`,
//! `payment_intent_data.metadata`), so every webhook that follows names the offer, the
//! subject and the chosen products. Access never changes here: only the provider's
//! webhooks, folded by [`crate::billing`], change it.
//!
//! The requests are values ([`Call`]): a method, a path under the provider's API base and
//! a body, Stripe's as form fields in its bracket notation (encoded by [`Call::body`]),
//! Razorpay's as JSON. The host adds the base URL and the credentials.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::billing::facts::{SubStatus, Subject};
use crate::catalog::{covers, Catalog, Interval, Offer, Provider, SubjectKind};
use crate::time::Timestamp;

/// Billing cycles a Razorpay subscription is created for (Razorpay needs a count):
/// ten years of periods.
const RAZORPAY_YEARS: u32 = 10;
/// Razorpay's longest order receipt.
const RECEIPT_MAX: usize = 40;

/// The caller's role in an organization (`organization_members.role`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    /// Owners and admins buy and manage an organization's subscriptions.
    pub fn manages_billing(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// One subscription the subject holds, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub provider: Provider,
    pub id: String,
    pub offer: Option<String>,
    pub status: SubStatus,
    pub quantity: u32,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<Timestamp>,
    /// The (product, tier) of each grant it gives now (a bundle's chosen products among
    /// them); empty when the store has none written for it yet (then its offer's).
    pub products: Vec<(String, String)>,
}

impl Held {
    /// Still running ([`SubStatus::is_running`]).
    pub fn is_live(&self) -> bool {
        self.status.is_running()
    }

    /// Whether a plan change may move it ([`change`]): running, and with Razorpay active
    /// (Razorpay updates an active subscription only: not one whose payment is pending or
    /// halted, nor a paused one).
    pub fn changeable(&self) -> bool {
        self.is_live() && (self.provider != Provider::Razorpay || self.status == SubStatus::Active)
    }

    /// The (product, tier index) it gives now ([`Held::products`]); while the store has
    /// written none, what its offer `theirs` surely gives (its fixed grants, no bundle's choice).
    fn gives(&self, catalog: &Catalog, theirs: &Offer) -> Vec<(String, usize)> {
        if self.products.is_empty() {
            return catalog.offer_gives(theirs, &[]);
        }
        self.products.iter().filter_map(|(p, t)| Some((p.clone(), catalog.tier_index(p, t)?))).collect()
    }
}

/// What the buyer holds with the providers, read from the store before a request is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Who pays and holds what is bought: the caller, or an organization.
    pub subject: Subject,
    /// The caller's role when `subject` is an organization (`None`: not a member).
    pub role: Option<Role>,
    pub subscriptions: Vec<Held>,
    /// The subject's customers: (provider, customer id).
    pub customers: Vec<(Provider, String)>,
    /// Seats given to members now (organizations).
    pub seats_used: u32,
    /// The caller's email, for a provider's checkout form when no customer exists yet.
    pub email: Option<String>,
}

impl Account {
    fn customer(&self, provider: Provider) -> Option<&str> {
        self.customers.iter().find(|(p, _)| *p == provider).map(|(_, c)| c.as_str())
    }
    fn may_manage(&self) -> Result<(), Refusal> {
        // To one who is not a member, an organization is one that does not exist: whether
        // it does is its members' business (as the organization routes answer).
        if self.subject.is_org() && self.role.is_none() {
            return Err(Refusal::new(
                RefusalCode::UnknownOrganization,
                format!("no organization {} you belong to", self.subject.id),
            ));
        }
        if self.subject.is_org() && !self.role.is_some_and(Role::manages_billing) {
            return Err(Refusal::new(
                RefusalCode::NotOrgAdmin,
                format!("only an owner or admin of organization {} manages its billing", self.subject.id),
            ));
        }
        Ok(())
    }
}

/// A purchase as the buyer asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub offer: String,
    /// Units of the offer (seats for an organization's per-seat plan); default 1.
    pub quantity: Option<u32>,
    /// The products chosen for a bundle.
    pub clouds: Vec<String>,
    pub success_url: String,
    pub cancel_url: String,
    /// The Stripe price found for the offer by its lookup key ([`price_lookup`]).
    pub price: Option<String>,
}

/// Why a request is refused before any provider is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    UnknownOffer,
    HiddenOffer,
    /// Wrong number of products for a bundle, a product chosen twice or not on offer, or
    /// products no one purchase of it gives together.
    InvalidClouds,
    InvalidQuantity,
    /// Fewer seats than the organization has given to members.
    SeatsBelowAllocation,
    /// An organization's offer bought without naming the organization, or the reverse.
    WrongSubject,
    NotOrgAdmin,
    /// An organization the caller is not a member of (or none).
    UnknownOrganization,
    /// The subject already has a running subscription to this offer.
    AlreadySubscribed,
    /// The offer cannot be sold through its provider (no Razorpay plan for a recurring
    /// Razorpay offer, no Stripe price for a plan change).
    NotSellable,
    InvalidUrl,
    NoCustomer,
    NoSubscription,
    /// More than one running subscription: the caller must name one.
    AmbiguousSubscription,
    /// The provider cannot do this for this subscription (undo a Razorpay cancellation).
    NotSupported,
    /// A change to the offer the subscription already has.
    SameOffer,
    /// The subscription has ended or was canceled; nothing to change or resume.
    NotRunning,
    /// A resumption of a subscription that is not paused (or none of the subject's is).
    NotPaused,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::UnknownOffer => "unknown_offer",
            RefusalCode::HiddenOffer => "hidden_offer",
            RefusalCode::InvalidClouds => "invalid_clouds",
            RefusalCode::InvalidQuantity => "invalid_quantity",
            RefusalCode::SeatsBelowAllocation => "seats_below_allocation",
            RefusalCode::WrongSubject => "wrong_subject",
            RefusalCode::NotOrgAdmin => "not_org_admin",
            RefusalCode::UnknownOrganization => "unknown_organization",
            RefusalCode::AlreadySubscribed => "already_subscribed",
            RefusalCode::NotSellable => "not_sellable",
            RefusalCode::InvalidUrl => "invalid_url",
            RefusalCode::NoCustomer => "no_customer",
            RefusalCode::NoSubscription => "no_subscription",
            RefusalCode::AmbiguousSubscription => "ambiguous_subscription",
            RefusalCode::NotSupported => "not_supported",
            RefusalCode::SameOffer => "same_offer",
            RefusalCode::NotRunning => "not_running",
            RefusalCode::NotPaused => "not_paused",
        }
    }
}

/// A refused request, as a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    fn new(code: RefusalCode, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into() }
    }
}

/// HTTP method of a provider call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Method {
    Get,
    Post,
    Patch,
}

/// A provider request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Body {
    None,
    /// Stripe: form fields in bracket notation (`metadata[offer_key]`), in order.
    Form(Vec<(String, String)>),
    /// Razorpay: a JSON document.
    Json(Value),
}

/// One request to a provider's API: the host sends it to `<api base><path>` with the
/// provider's credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Call {
    pub provider: Provider,
    pub method: Method,
    /// From the API root, e.g. `/v1/checkout/sessions`.
    pub path: String,
    pub body: Body,
}

impl Call {
    fn stripe(method: Method, path: String, form: Vec<(String, String)>) -> Call {
        Call { provider: Provider::Stripe, method, path, body: if form.is_empty() { Body::None } else { Body::Form(form) } }
    }
    fn razorpay(method: Method, path: String, body: Option<Value>) -> Call {
        Call { provider: Provider::Razorpay, method, path, body: body.map_or(Body::None, Body::Json) }
    }
    /// The encoded body and its content type (`None` for a bodiless request).
    pub fn body(&self) -> Option<(&'static str, Vec<u8>)> {
        match &self.body {
            Body::None => None,
            Body::Form(f) => Some(("application/x-www-form-urlencoded", form_encode(f).into_bytes())),
            Body::Json(v) => Some(("application/json", serde_json::to_vec(v).unwrap_or_default())),
        }
    }
    /// The form field `name`, if the body is a form that has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        match &self.body {
            Body::Form(f) => f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

/// `application/x-www-form-urlencoded`, as Stripe's libraries send it: every byte but
/// `A-Z a-z 0-9 - _ . ~ [ ]` percent-escaped, spaces as `%20`.
pub fn form_encode(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape_into(&mut out, k);
        out.push('=');
        escape_into(&mut out, v);
    }
    out
}

fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'[' | b']' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// The offer's provider: the offer's own, else the catalog's.
pub fn provider_of(catalog: &Catalog, offer: &Offer) -> Provider {
    offer.provider.unwrap_or(catalog.meta().provider)
}

/// The attribution every provider object of a purchase carries.
fn attribution(offer: &Offer, subject: &Subject, clouds: &[String], quantity: u32) -> Vec<(&'static str, String)> {
    let mut m = vec![("offer_key", offer.key.clone()), ("subject", subject.to_string())];
    if !clouds.is_empty() {
        m.push(("clouds", clouds.join(",")));
    }
    if quantity > 1 {
        m.push(("quantity", quantity.to_string()));
    }
    m
}

fn url_ok(name: &str, url: &str) -> Result<(), Refusal> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or("");
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("").split(':').next().unwrap_or("");
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !host.is_empty()
        && url.len() <= 2048
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(RefusalCode::InvalidUrl, format!("`{name}` must be an absolute http(s) URL of at most 2048 characters")))
    }
}

/// Checks a bundle's chosen products against the offer: exactly as many as it sells,
/// each once, each on offer, and all of them one choice of it ([`Catalog::bundle_choice`]:
/// each of its grants gives its own products).
fn check_clouds(catalog: &Catalog, offer: &Offer, clouds: &[String]) -> Result<(), Refusal> {
    crate::billing::parse::check_clouds(catalog, offer, clouds, "clouds")
        .map_err(|e| Refusal::new(RefusalCode::InvalidClouds, e.to_string()))?;
    if crate::billing::parse::bundle_size(offer) == 0 && !clouds.is_empty() {
        return Err(Refusal::new(
            RefusalCode::InvalidClouds,
            format!("offer `{}` is not a bundle: it takes no `clouds`", offer.key),
        ));
    }
    let products: Vec<usize> = clouds.iter().filter_map(|c| catalog.product_index(c)).collect();
    if catalog.bundle_choice(offer, &products, |_, _| true).is_none() {
        let grants: Vec<String> = offer
            .grants
            .iter()
            .filter_map(|g| Some(format!("{} of {}", g.choose?, if g.from.is_empty() { format!("any with `{}`", g.tier) } else { g.from.join(", ") })))
            .collect();
        return Err(Refusal::new(
            RefusalCode::InvalidClouds,
            format!("no purchase of offer `{}` gives {} together: it gives {}", offer.key, clouds.join(", "), grants.join(", and ")),
        ));
    }
    Ok(())
}

/// Seats a quantity of the offer gives (0 for an offer without seats).
pub fn seats_for(offer: &Offer, quantity: u32) -> u32 {
    match &offer.seats {
        Some(s) if s.per_quantity => s.included.saturating_mul(quantity),
        Some(s) => s.included,
        None if offer.subject == SubjectKind::Organization => quantity,
        None => 0,
    }
}

/// The offer a purchase or change names, refused when unknown or hidden.
fn sellable<'c>(catalog: &'c Catalog, key: &str) -> Result<&'c Offer, Refusal> {
    let offer = catalog
        .offer(key)
        .ok_or_else(|| Refusal::new(RefusalCode::UnknownOffer, format!("no offer `{key}` in catalog `{}`", catalog.meta().id)))?;
    if offer.hidden {
        return Err(Refusal::new(RefusalCode::HiddenOffer, format!("offer `{key}` is not sold any more")));
    }
    Ok(offer)
}

/// The first product a recurring plan `offer` gives that a running subscription of the
/// subject gives already (`subscribed`): buying it would bill both while only the higher
/// tier counts, so checkout sells it only as a change of that subscription (already
/// subscribed). None for a one-time offer, a bundle (its products are chosen at checkout)
/// and a plan of other products. The one rule of "a second plan of a product", for
/// checkout and for the offers a refusal names ([`crate::usage::credit_offer`]).
pub fn second_plan_of<'c>(
    catalog: &'c Catalog,
    offer: &Offer,
    subscribed: impl Fn(&crate::catalog::Product) -> bool,
) -> Option<&'c crate::catalog::Product> {
    if offer.price.interval == Interval::OneTime || crate::billing::parse::bundle_size(offer) != 0 {
        return None;
    }
    catalog.products().iter().find(|p| catalog.offer_tier_for(offer, &p.id).is_some() && subscribed(p))
}

/// A running subscription that buying `offer` (with `clouds`, a bundle's chosen products)
/// beside it would bill twice ([`bills_twice`]).
#[derive(Clone, Copy, Debug)]
pub enum Twice<'a> {
    /// A subscription to the offer itself (change or resume it instead).
    Same(&'a Held),
    /// A subscription giving a product the plan gives: a second plan of that product.
    Plan(&'a Held, &'a crate::catalog::Product),
    /// A subscription the bundle gives wholly, or one that gives all the bundle does.
    Bundle(&'a Held),
}

/// The one rule of "already subscribed": the running subscription among `subs` that
/// buying recurring `offer` (with `clouds`) beside it would bill twice, or None. Checkout
/// refuses such a purchase (the subscription moves with a change instead), and no offer a
/// denial names is one unless it names it as that change ([`crate::decide::offers_unlocking`]).
pub fn bills_twice<'a>(catalog: &'a Catalog, offer: &Offer, clouds: &[String], subs: &'a [Held]) -> Option<Twice<'a>> {
    if offer.price.interval == Interval::OneTime {
        return None;
    }
    if let Some(s) = subs.iter().find(|s| s.is_live() && s.offer.as_deref() == Some(offer.key.as_str())) {
        return Some(Twice::Same(s));
    }
    let running = || subs.iter().filter(|s| s.is_live() && !s.cancel_at_period_end);
    // A second plan of a product already subscribed would bill both, and only the higher
    // tier counts: a plan the subscription can move to is a change of it. (A bundle,
    // whose products are chosen at checkout, is bought here, and so is a plan beside a
    // subscription that ends at its period's end.)
    if crate::billing::parse::bundle_size(offer) == 0 {
        return running().find_map(|s| {
            let theirs = catalog.offer(s.offer.as_deref()?)?;
            if theirs.price.interval == Interval::OneTime {
                return None;
            }
            // What the subscription gives now (a bundle: the products chosen for it), else
            // all its offer may give.
            let held = |p: &crate::catalog::Product| {
                if s.products.is_empty() {
                    catalog.offer_tier_for(theirs, &p.id).is_some()
                } else {
                    s.products.iter().any(|(x, _)| *x == p.id)
                }
            };
            second_plan_of(catalog, offer, held).map(|p| Twice::Plan(s, p))
        });
    }
    // A bundle beside a running subscription when one gives all the other does (at its
    // tier or above): the bundle adds nothing, or the subscription is wholly inside it and
    // both are billed for it. That subscription moves to the bundle with a change instead.
    let buying = catalog.offer_gives(offer, clouds);
    running()
        .find(|s| {
            let Some(theirs) = s.offer.as_deref().and_then(|k| catalog.offer(k)) else { return false };
            if theirs.price.interval == Interval::OneTime {
                return false;
            }
            let held = s.gives(catalog, theirs);
            covers(&buying, &held) || covers(&held, &buying)
        })
        .map(Twice::Bundle)
}

/// The request that sells `purchase` to `account.subject`: a Stripe Checkout Session, a
/// Razorpay subscription (recurring offers) or a Razorpay order (one-time offers).
pub fn checkout(catalog: &Catalog, purchase: &Purchase, account: &Account, now: Timestamp) -> Result<Call, Refusal> {
    let offer = sellable(catalog, &purchase.offer)?;
    match (offer.subject, account.subject.is_org()) {
        (SubjectKind::Organization, false) => {
            return Err(Refusal::new(
                RefusalCode::WrongSubject,
                format!("offer `{}` is sold to organizations: name the `organization_id` that buys it", offer.key),
            ))
        }
        (SubjectKind::User, true) => {
            return Err(Refusal::new(
                RefusalCode::WrongSubject,
                format!("offer `{}` is sold to users, not to an organization", offer.key),
            ))
        }
        _ => {}
    }
    account.may_manage()?;
    url_ok("success_url", &purchase.success_url)?;
    url_ok("cancel_url", &purchase.cancel_url)?;
    check_clouds(catalog, offer, &purchase.clouds)?;
    let quantity = purchase.quantity.unwrap_or(1);
    let per_seat = offer.priced_per_seat();
    if quantity == 0 || quantity > 10_000 || (quantity > 1 && !per_seat && offer.price.interval != Interval::OneTime) {
        return Err(Refusal::new(
            RefusalCode::InvalidQuantity,
            if per_seat || offer.price.interval == Interval::OneTime {
                "`quantity` must be from 1 to 10000".to_string()
            } else {
                format!("offer `{}` is sold one at a time", offer.key)
            },
        ));
    }
    let seats = seats_for(offer, quantity);
    if offer.seats.is_some() && seats < account.seats_used {
        return Err(Refusal::new(
            RefusalCode::SeatsBelowAllocation,
            format!(
                "{seats} seat(s) is fewer than the {} the organization has given: take seats back first, or buy more",
                account.seats_used
            ),
        ));
    }
    match bills_twice(catalog, offer, &purchase.clouds, &account.subscriptions) {
        None => {}
        Some(Twice::Same(_)) => {
            return Err(Refusal::new(
                RefusalCode::AlreadySubscribed,
                format!("{} already has a running subscription to `{}`: change or resume it instead", account.subject, offer.key),
            ));
        }
        Some(Twice::Plan(s, p)) => {
            return Err(Refusal::new(
                RefusalCode::AlreadySubscribed,
                format!(
                    "{} already has a running subscription ({}, `{}`) to `{}`: move it to `{}` with POST /v1/subscriptions/change instead",
                    account.subject,
                    s.id,
                    s.offer.as_deref().unwrap_or_default(),
                    p.id,
                    offer.key
                ),
            ));
        }
        Some(Twice::Bundle(s)) => {
            return Err(Refusal::new(
                RefusalCode::AlreadySubscribed,
                format!(
                    "{} already has a running subscription ({}, `{}`) that `{}` would bill twice: move it to `{}` with POST /v1/subscriptions/change (naming its `clouds`) instead",
                    account.subject,
                    s.id,
                    s.offer.as_deref().unwrap_or_default(),
                    offer.key,
                    offer.key
                ),
            ));
        }
    }
    let meta = attribution(offer, &account.subject, &purchase.clouds, quantity);
    match provider_of(catalog, offer) {
        Provider::Stripe => Ok(stripe_session(catalog, offer, purchase, account, quantity, &meta)),
        Provider::Razorpay => razorpay_purchase(offer, quantity, &meta, now),
    }
}

/// A product both offers give a tier of.
fn shared_product<'c>(catalog: &'c Catalog, a: &Offer, b: &Offer) -> Option<&'c crate::catalog::Product> {
    catalog.products().iter().find(|p| catalog.offer_tier_for(a, &p.id).is_some() && catalog.offer_tier_for(b, &p.id).is_some())
}

fn stripe_session(
    catalog: &Catalog,
    offer: &Offer,
    purchase: &Purchase,
    account: &Account,
    quantity: u32,
    meta: &[(&'static str, String)],
) -> Call {
    let recurring = offer.price.interval != Interval::OneTime;
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| f.push((k.to_string(), v));
    put("mode", if recurring { "subscription" } else { "payment" }.into());
    match offer.stripe_price_ids.first().or(purchase.price.as_ref()) {
        Some(price) => put("line_items[0][price]", price.clone()),
        None => {
            put("line_items[0][price_data][currency]", offer.price.currency.clone());
            put("line_items[0][price_data][unit_amount]", offer.price.amount.to_string());
            put("line_items[0][price_data][product_data][name]", offer.label.clone());
            put("line_items[0][price_data][product_data][metadata][offer_key]", offer.key.clone());
            if let Some(interval) = stripe_interval(offer.price.interval) {
                put("line_items[0][price_data][recurring][interval]", interval.into());
            }
        }
    }
    put("line_items[0][quantity]", quantity.to_string());
    put(
        "client_reference_id",
        if account.subject.is_org() { account.subject.to_string() } else { account.subject.id.clone() },
    );
    for (k, v) in meta {
        put(&format!("metadata[{k}]"), v.clone());
    }
    let on = if recurring { "subscription_data" } else { "payment_intent_data" };
    for (k, v) in meta {
        put(&format!("{on}[metadata][{k}]"), v.clone());
    }
    // A trial once per subject and product: none after any subscription (running or
    // ended) to this offer or another plan of one of its products.
    let had = account.subscriptions.iter().any(|s| {
        s.offer.as_deref() == Some(offer.key.as_str())
            || s.offer.as_deref().and_then(|k| catalog.offer(k)).is_some_and(|o| shared_product(catalog, offer, o).is_some())
    });
    if recurring && offer.trial_days > 0 && !had {
        put("subscription_data[trial_period_days]", offer.trial_days.to_string());
    }
    match account.customer(Provider::Stripe) {
        Some(c) => put("customer", c.to_string()),
        None => {
            if let Some(e) = &account.email {
                put("customer_email", e.clone());
            }
            if !recurring {
                // So that a one-time buyer has a customer for the billing portal later.
                put("customer_creation", "always".into());
            }
        }
    }
    put("success_url", purchase.success_url.clone());
    put("cancel_url", purchase.cancel_url.clone());
    if catalog.meta().allow_promotion_codes {
        put("allow_promotion_codes", "true".into());
    }
    Call::stripe(Method::Post, "/v1/checkout/sessions".into(), f)
}

fn stripe_interval(i: Interval) -> Option<&'static str> {
    match i {
        Interval::Month => Some("month"),
        Interval::Year => Some("year"),
        Interval::OneTime => None,
    }
}

fn notes(meta: &[(&'static str, String)]) -> Value {
    Value::Object(meta.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect::<Map<_, _>>())
}

fn razorpay_purchase(
    offer: &Offer,
    quantity: u32,
    meta: &[(&'static str, String)],
    now: Timestamp,
) -> Result<Call, Refusal> {
    match offer.price.interval.months() {
        Some(months) => {
            let Some(plan) = offer.razorpay_plan_ids.first() else {
                return Err(Refusal::new(
                    RefusalCode::NotSellable,
                    format!("offer `{}` is recurring but names no Razorpay plan (`razorpay_plan_ids`)", offer.key),
                ));
            };
            let mut body = json!({
                "plan_id": plan,
                "total_count": RAZORPAY_YEARS * 12 / months,
                "customer_notify": 1,
                "notes": notes(meta),
            });
            if quantity > 1 {
                body["quantity"] = json!(quantity);
            }
            Ok(Call::razorpay(Method::Post, "/v1/subscriptions".into(), Some(body)))
        }
        None => {
            let mut receipt = format!("{}:{}", offer.key, now.0);
            receipt.truncate(RECEIPT_MAX);
            Ok(Call::razorpay(
                Method::Post,
                "/v1/orders".into(),
                Some(json!({
                    "amount": offer.price.amount.saturating_mul(i64::from(quantity)),
                    "currency": offer.price.currency.to_ascii_uppercase(),
                    "receipt": receipt,
                    "notes": notes(meta),
                })),
            ))
        }
    }
}

/// The request that finds an offer's Stripe price by its lookup key (the offer key), when
/// the catalog sells by lookup key and the offer names no price: made after [`checkout`]
/// accepted the purchase, its answer read by [`found_price`] into [`Purchase::price`].
pub fn price_lookup(catalog: &Catalog, offer: &str) -> Option<Call> {
    let o = catalog.offer(offer)?;
    let wanted = catalog.meta().stripe_lookup_keys && o.stripe_price_ids.is_empty() && provider_of(catalog, o) == Provider::Stripe;
    wanted.then(|| {
        let mut query = String::new();
        escape_into(&mut query, &o.key);
        Call::stripe(Method::Get, format!("/v1/prices?lookup_keys[0]={query}&active=true&limit=1"), vec![])
    })
}

/// The price id in the answer to [`price_lookup`] (none published: `None`, and the offer is
/// sold from the catalog's amount).
pub fn found_price(answer: &Value) -> Option<String> {
    answer.pointer("/data/0/id").and_then(Value::as_str).map(str::to_string)
}

/// A Stripe billing portal session for the subject's customer.
pub fn portal(account: &Account, return_url: &str) -> Result<Call, Refusal> {
    account.may_manage()?;
    url_ok("return_url", return_url)?;
    let Some(customer) = account.customer(Provider::Stripe) else {
        return Err(Refusal::new(RefusalCode::NoCustomer, format!("{} has no Stripe customer yet: buy something first", account.subject)));
    };
    Ok(Call::stripe(
        Method::Post,
        "/v1/billing_portal/sessions".into(),
        vec![("customer".into(), customer.to_string()), ("return_url".into(), return_url.to_string())],
    ))
}

/// The subscription a request names (it must be the subject's own), or the subject's
/// only running one.
pub fn pick<'a>(account: &'a Account, id: Option<&str>) -> Result<&'a Held, Refusal> {
    match id {
        Some(id) => account.subscriptions.iter().find(|s| s.id == id).ok_or_else(|| {
            Refusal::new(RefusalCode::NoSubscription, format!("{} has no subscription `{id}`", account.subject))
        }),
        None => {
            let live: Vec<&Held> = account.subscriptions.iter().filter(|s| s.is_live()).collect();
            match live.as_slice() {
                [one] => Ok(one),
                [] => Err(Refusal::new(RefusalCode::NoSubscription, format!("{} has no running subscription", account.subject))),
                many => Err(Refusal::new(
                    RefusalCode::AmbiguousSubscription,
                    format!(
                        "{} has {} running subscriptions ({}): name one as `subscription`",
                        account.subject,
                        many.len(),
                        many.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
    }
}

/// Cancels the subscription at the end of its paid period (`resume = false`), or undoes
/// that (`resume = true`). Access is kept to the period end either way.
pub fn cancel(account: &Account, id: Option<&str>, resume: bool) -> Result<Call, Refusal> {
    account.may_manage()?;
    let held = pick(account, id)?;
    if !held.is_live() {
        return Err(Refusal::new(RefusalCode::NotRunning, format!("subscription {} is {}", held.id, status_str(held.status))));
    }
    match (held.provider, resume) {
        (Provider::Stripe, _) => Ok(Call::stripe(
            Method::Post,
            format!("/v1/subscriptions/{}", held.id),
            vec![("cancel_at_period_end".into(), resume.then_some("false").unwrap_or("true").into())],
        )),
        (Provider::Razorpay, false) => Ok(Call::razorpay(
            Method::Post,
            format!("/v1/subscriptions/{}/cancel", held.id),
            Some(json!({"cancel_at_cycle_end": 1})),
        )),
        (Provider::Razorpay, true) => Err(Refusal::new(
            RefusalCode::NotSupported,
            "Razorpay cannot undo a cancellation at the cycle end: subscribe again once it ends",
        )),
    }
}

/// How a Stripe subscription is paused, read from the subscription object Stripe answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StripePause {
    /// Status `paused` (a trial that ended without a payment method): resumed by
    /// `POST /v1/subscriptions/{id}/resume`.
    Status,
    /// `pause_collection` set ("pause payment collection", status unchanged): resumed by
    /// unsetting it.
    Collection,
}

impl StripePause {
    /// How `subscription` (a Stripe subscription object) is paused, if it is. Stripe never
    /// has both: a subscription whose collection is paused cannot move into `paused`.
    pub fn of(subscription: &Value) -> Option<StripePause> {
        if subscription["status"].as_str() == Some("paused") {
            Some(StripePause::Status)
        } else if !subscription["pause_collection"].is_null() {
            Some(StripePause::Collection)
        } else {
            None
        }
    }
}

/// A paused subscription's resumption, decided: which subscription, and the first request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resume {
    pub subscription: String,
    pub provider: Provider,
    /// Razorpay: the resumption itself. Stripe: a read of the subscription, whose answer
    /// says which of its two pauses it is ([`Resume::next`]); the store knows only that it
    /// is paused.
    pub first: Call,
}

/// Resumes the subject's paused subscription at its provider, now: the one named (it must
/// be the subject's own), or the subject's only paused one. Who may ask is who may cancel
/// ([`cancel`]): the subject itself, or an organization's owner or admin. Access comes
/// back with the provider's webhook, as after any other change.
pub fn resume(account: &Account, id: Option<&str>) -> Result<Resume, Refusal> {
    account.may_manage()?;
    let held = match id {
        Some(_) => pick(account, id)?,
        None => {
            let paused: Vec<&Held> = account.subscriptions.iter().filter(|s| s.status == SubStatus::Paused).collect();
            match paused.as_slice() {
                [one] => *one,
                [] if account.subscriptions.iter().any(Held::is_live) => {
                    return Err(Refusal::new(RefusalCode::NotPaused, format!("no subscription of {} is paused", account.subject)))
                }
                [] => return Err(Refusal::new(RefusalCode::NoSubscription, format!("{} has no running subscription", account.subject))),
                many => {
                    return Err(Refusal::new(
                        RefusalCode::AmbiguousSubscription,
                        format!(
                            "{} has {} paused subscriptions ({}): name one as `subscription`",
                            account.subject,
                            many.len(),
                            many.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            }
        }
    };
    if !held.is_live() {
        return Err(Refusal::new(RefusalCode::NotRunning, format!("subscription {} is {}", held.id, status_str(held.status))));
    }
    if held.status != SubStatus::Paused {
        return Err(Refusal::new(
            RefusalCode::NotPaused,
            format!("subscription {} is {}, not paused: there is nothing to resume", held.id, status_str(held.status)),
        ));
    }
    let first = match held.provider {
        Provider::Stripe => Call::stripe(Method::Get, format!("/v1/subscriptions/{}", held.id), vec![]),
        Provider::Razorpay => razorpay_resume(&held.id),
    };
    Ok(Resume { subscription: held.id.clone(), provider: held.provider, first })
}

fn razorpay_resume(id: &str) -> Call {
    Call::razorpay(Method::Post, format!("/v1/subscriptions/{id}/resume"), Some(json!({"resume_at": "now"})))
}

impl Resume {
    /// The request after `answers` (the providers' answers to the requests so far, in
    /// order), or `None` when it is done. Stripe's first answer is the subscription: status
    /// `paused` is resumed now with a new billing period from today (`billing_cycle_anchor`
    /// `now`, Stripe's default, which invoices the period at once and prorates nothing);
    /// `pause_collection` set is unset (an empty value: Stripe's way of clearing a hash),
    /// which collects again from the next invoice on. A subscription Stripe does not have
    /// paused (its resumption already under way) is refused.
    pub fn next(&self, answers: &[Value]) -> Result<Option<Call>, Refusal> {
        if self.provider != Provider::Stripe || answers.len() != 1 {
            return Ok(None);
        }
        let path = format!("/v1/subscriptions/{}", self.subscription);
        match StripePause::of(&answers[0]) {
            Some(StripePause::Status) => {
                Ok(Some(Call::stripe(Method::Post, format!("{path}/resume"), vec![("billing_cycle_anchor".into(), "now".into())])))
            }
            Some(StripePause::Collection) => Ok(Some(Call::stripe(Method::Post, path, vec![("pause_collection".into(), String::new())]))),
            None => Err(Refusal::new(
                RefusalCode::NotPaused,
                format!(
                    "Stripe has subscription {} {} and collecting payments, not paused: its resumption arrives with Stripe's webhook",
                    self.subscription,
                    answers[0]["status"].as_str().unwrap_or("without a status")
                ),
            )),
        }
    }
}

fn status_str(s: SubStatus) -> &'static str {
    match s {
        SubStatus::Incomplete => "incomplete",
        SubStatus::Trialing => "trialing",
        SubStatus::Active => "active",
        SubStatus::PastDue => "past_due",
        SubStatus::Paused => "paused",
        SubStatus::Canceled => "canceled",
        SubStatus::Ended => "ended",
    }
}

/// A plan change, decided: which subscription, to which offer, now or at the period end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub subscription: String,
    pub from: Option<String>,
    pub to: String,
    /// The products chosen for a bundle (empty for any other offer).
    pub clouds: Vec<String>,
    /// An upgrade (a higher monthly price) takes effect now, prorated; anything else at
    /// the end of the paid period.
    pub upgrade: bool,
    /// The offer (and products) the subscription holds now: the request withdraws a change
    /// waiting for the period's end, and what follows the first request is
    /// [`Change::withdraw_next`]'s, not [`Change::next`]'s.
    pub withdraws: bool,
    /// The first request; what follows depends on the answers ([`Change::next`]).
    pub first: Call,
}

/// Moves a subscription to another offer of the same provider: a plan to another plan, a
/// plan or bundle to a bundle (with the products chosen for it, `clouds`), or a bundle to
/// other chosen products. Upgrades (a higher monthly price) now with the catalog's
/// proration; downgrades, and other products at the same price, at the period end.
pub fn change(catalog: &Catalog, account: &Account, id: Option<&str>, to: &str, clouds: &[String]) -> Result<Change, Refusal> {
    account.may_manage()?;
    let held = pick(account, id)?;
    if !held.is_live() {
        return Err(Refusal::new(RefusalCode::NotRunning, format!("subscription {} is {}", held.id, status_str(held.status))));
    }
    // The offer it holds, with the products it holds (a bundle's chosen ones): no change of
    // its own, but the withdrawal of one waiting for the period's end, if one waits (read
    // from the provider: `Change::withdraw_next`). Asked also of an offer no longer sold.
    if held.offer.as_deref() == Some(to) {
        let same = match catalog.offer(to) {
            Some(o) if crate::billing::parse::bundle_size(o) > 0 => {
                let chosen: BTreeSet<&str> =
                    held.products.iter().map(|(p, _)| p.as_str()).filter(|p| catalog.offer_tiers_on(o, p).1.is_some()).collect();
                chosen == clouds.iter().map(String::as_str).collect()
            }
            _ => clouds.is_empty(),
        };
        // A cancellation at the period's end is undone by `resume`, not by a change: Razorpay
        // counts it among the scheduled changes its withdrawal would cancel.
        if same && held.cancel_at_period_end {
            return Err(Refusal::new(
                RefusalCode::SameOffer,
                format!("subscription {} is already on `{to}` and ends at its period's end: resume it to keep it", held.id),
            ));
        }
        if same {
            let path = format!("/v1/subscriptions/{}", held.id);
            return Ok(Change {
                subscription: held.id.clone(),
                from: held.offer.clone(),
                to: to.to_string(),
                clouds: clouds.to_vec(),
                upgrade: false,
                withdraws: true,
                first: match held.provider {
                    Provider::Stripe => Call::stripe(Method::Get, path, vec![]),
                    Provider::Razorpay => Call::razorpay(Method::Get, path, None),
                },
            });
        }
    }
    let target = sellable(catalog, to)?;
    let bundle = crate::billing::parse::bundle_size(target) > 0;
    check_clouds(catalog, target, clouds)?;
    if target.price.interval == Interval::OneTime || provider_of(catalog, target) != held.provider || target.subject != subject_kind(account) {
        return Err(Refusal::new(
            RefusalCode::NotSellable,
            format!("a {} subscription of {} cannot move to `{to}`", held.provider.as_str(), account.subject),
        ));
    }
    if !held.changeable() {
        return Err(Refusal::new(
            RefusalCode::NotRunning,
            format!(
                "subscription {} is {}: Razorpay changes only an active subscription (pay what is due, or resume it, first)",
                held.id,
                status_str(held.status)
            ),
        ));
    }
    // The chosen products travel in the subscription's metadata, which Razorpay does not
    // let a change set.
    if bundle && held.provider == Provider::Razorpay {
        return Err(Refusal::new(
            RefusalCode::NotSellable,
            format!("`{to}` is a bundle: a Razorpay subscription cannot move to chosen products; buy it at checkout"),
        ));
    }
    if seats_for(target, held.quantity) < account.seats_used && target.seats.is_some() {
        return Err(Refusal::new(
            RefusalCode::SeatsBelowAllocation,
            format!("`{to}` gives fewer seats than the {} the organization has given", account.seats_used),
        ));
    }
    let from = held.offer.as_deref().and_then(|k| catalog.offer(k));
    // A subscription bills in one currency (neither provider changes it), and amounts in
    // two currencies are not compared.
    if let Some(f) = from.filter(|f| f.price.currency != target.price.currency) {
        return Err(Refusal::new(
            RefusalCode::NotSellable,
            format!(
                "subscription {} bills in {}, `{to}` in {}: a subscription's currency does not change; end it at its period's end, then buy `{to}`",
                held.id,
                f.price.currency.to_ascii_uppercase(),
                target.price.currency.to_ascii_uppercase()
            ),
        ));
    }
    let upgrade = from.is_none_or(|f| target.price.monthly_equivalent() > f.price.monthly_equivalent());
    let first = match held.provider {
        // Both Stripe changes start from the subscription: its item, quantity and product.
        Provider::Stripe => Call::stripe(Method::Get, format!("/v1/subscriptions/{}", held.id), vec![]),
        Provider::Razorpay => {
            let Some(plan) = target.razorpay_plan_ids.first() else {
                return Err(Refusal::new(RefusalCode::NotSellable, format!("`{to}` names no Razorpay plan")));
            };
            let mut body = json!({
                "plan_id": plan,
                "quantity": held.quantity.max(1),
                "schedule_change_at": if upgrade { "now" } else { "cycle_end" },
                "customer_notify": 1,
            });
            // Razorpay keeps the cycles left, counted in the old plan's periods: a plan of
            // another period is counted again, as checkout sells it (ten years of its periods).
            if let (Some(months), Some(f)) = (target.price.interval.months(), from) {
                if f.price.interval != target.price.interval {
                    body["remaining_count"] = json!(RAZORPAY_YEARS * 12 / months);
                }
            }
            Call::razorpay(Method::Patch, format!("/v1/subscriptions/{}", held.id), Some(body))
        }
    };
    Ok(Change {
        subscription: held.id.clone(),
        from: held.offer.clone(),
        to: to.to_string(),
        clouds: clouds.to_vec(),
        upgrade,
        withdraws: false,
        first,
    })
}

fn subject_kind(a: &Account) -> SubjectKind {
    if a.subject.is_org() {
        SubjectKind::Organization
    } else {
        SubjectKind::User
    }
}

impl Change {
    /// A withdrawal's request after the provider's answers so far ([`Change::withdraws`]):
    /// the subscription read, the change waiting for its period's end is withdrawn (Stripe:
    /// its schedule released, which keeps the subscription as it is now; Razorpay: its
    /// scheduled changes cancelled); `None` once done. With none waiting, the request asks
    /// for the offer it already has: refused `same_offer`.
    pub fn withdraw_next(&self, answers: &[Value]) -> Result<Option<Call>, Refusal> {
        let [sub] = answers else { return Ok(None) };
        let provider = self.first.provider;
        let waiting = match provider {
            Provider::Stripe => sub
                .get("schedule")
                .and_then(|s| s.as_str().or_else(|| s.get("id").and_then(Value::as_str)))
                .filter(|s| !s.is_empty())
                .map(|id| Call::stripe(Method::Post, format!("/v1/subscription_schedules/{id}/release"), vec![])),
            Provider::Razorpay => (sub.get("has_scheduled_changes").and_then(Value::as_bool) == Some(true)).then(|| {
                Call::razorpay(Method::Post, format!("/v1/subscriptions/{}/cancel_scheduled_changes", self.subscription), None)
            }),
        };
        waiting.map(Some).ok_or_else(|| {
            let what = if self.clouds.is_empty() { format!("`{}`", self.to) } else { format!("`{}` with {}", self.to, self.clouds.join(", ")) };
            Refusal::new(
                RefusalCode::SameOffer,
                format!("subscription {} is already on {what}, and no change of it waits for the period's end", self.subscription),
            )
        })
    }

    /// The request that follows the provider's answers to the requests so far, or `None`
    /// when the change is complete. Razorpay's change is its first request. Stripe's
    /// starts by reading the subscription; an upgrade then replaces the item's price (and
    /// the subscription's `offer_key`) now; a downgrade creates a schedule from the
    /// subscription, then makes it end the current phase at the period end and start the
    /// new price (and `offer_key`) there. An offer without a Stripe price is sold with
    /// `price_data` on the subscription's own product.
    pub fn next(&self, catalog: &Catalog, answers: &[Value]) -> Result<Option<Call>, String> {
        if self.first.provider != Provider::Stripe {
            return Ok(None);
        }
        let target = catalog.offer(&self.to).ok_or_else(|| format!("no offer `{}`", self.to))?;
        // The chosen products go with a change to or from a bundle (none: the key is unset).
        let is_bundle = |o: &Offer| crate::billing::parse::bundle_size(o) > 0;
        let bundles = is_bundle(target) || self.from.as_deref().and_then(|k| catalog.offer(k)).is_some_and(is_bundle);
        let sub = answers.first().ok_or("no answer to read the subscription from")?;
        let item = sub.pointer("/items/data/0").ok_or("the subscription Stripe returned has no item")?;
        let quantity = item.get("quantity").and_then(Value::as_u64).unwrap_or(1);
        let product = item
            .pointer("/price/product")
            .and_then(|p| p.as_str().or_else(|| p.get("id").and_then(Value::as_str)));
        let price_fields = |prefix: &str| -> Result<Vec<(String, String)>, String> {
            if let Some(price) = target.stripe_price_ids.first() {
                return Ok(vec![(format!("{prefix}[price]"), price.clone())]);
            }
            let product = product.ok_or("the subscription's price names no product")?;
            let mut f = vec![
                (format!("{prefix}[price_data][currency]"), target.price.currency.clone()),
                (format!("{prefix}[price_data][product]"), product.to_string()),
                (format!("{prefix}[price_data][unit_amount]"), target.price.amount.to_string()),
            ];
            if let Some(i) = stripe_interval(target.price.interval) {
                f.push((format!("{prefix}[price_data][recurring][interval]"), i.to_string()));
            }
            Ok(f)
        };
        // A schedule already attached (a change made before, still waiting for its period's
        // end) is released first: Stripe makes no second schedule from a subscription that
        // has one, and an upgrade under it would be undone by its next phase. Releasing keeps
        // the subscription as it is now.
        let attached = sub
            .get("schedule")
            .and_then(|s| s.as_str().or_else(|| s.get("id").and_then(Value::as_str)))
            .filter(|s| !s.is_empty());
        if let (Some(id), 1) = (attached, answers.len()) {
            return Ok(Some(Call::stripe(Method::Post, format!("/v1/subscription_schedules/{id}/release"), vec![])));
        }
        let answers = &answers[usize::from(attached.is_some())..];
        match (self.upgrade, answers.len()) {
            (true, 1) => {
                let item_id = item.get("id").and_then(Value::as_str).ok_or("the subscription's item has no id")?;
                let mut f = vec![("items[0][id]".to_string(), item_id.to_string())];
                f.extend(price_fields("items[0]")?);
                f.push(("items[0][quantity]".into(), quantity.to_string()));
                f.push(("proration_behavior".into(), catalog.meta().proration.as_str().into()));
                f.push(("metadata[offer_key]".into(), target.key.clone()));
                if bundles {
                    f.push(("metadata[clouds]".into(), self.clouds.join(",")));
                }
                Ok(Some(Call::stripe(Method::Post, format!("/v1/subscriptions/{}", self.subscription), f)))
            }
            (false, 1) => Ok(Some(Call::stripe(
                Method::Post,
                "/v1/subscription_schedules".into(),
                vec![("from_subscription".into(), self.subscription.clone())],
            ))),
            (false, 2) => {
                let schedule = &answers[1];
                let id = schedule.get("id").and_then(Value::as_str).ok_or("the schedule Stripe returned has no id")?;
                let phase = schedule.pointer("/phases/0").ok_or("the schedule Stripe returned has no phase")?;
                let start = phase.get("start_date").and_then(Value::as_i64).ok_or("the schedule's phase has no start_date")?;
                let end = phase.get("end_date").and_then(Value::as_i64).ok_or("the schedule's phase has no end_date")?;
                let items = phase.get("items").and_then(Value::as_array).ok_or("the schedule's phase has no items")?;
                let mut f: Vec<(String, String)> = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let p = it
                        .get("price")
                        .and_then(|p| p.as_str().or_else(|| p.get("id").and_then(Value::as_str)))
                        .ok_or("a phase item has no price")?;
                    f.push((format!("phases[0][items][{i}][price]"), p.to_string()));
                    let q = it.get("quantity").and_then(Value::as_u64).unwrap_or(quantity);
                    f.push((format!("phases[0][items][{i}][quantity]"), q.to_string()));
                }
                f.push(("phases[0][start_date]".into(), start.to_string()));
                f.push(("phases[0][end_date]".into(), end.to_string()));
                // A trial the current phase has stays (without it the phase would end it).
                if let Some(t) = phase.get("trial_end").and_then(Value::as_i64) {
                    f.push(("phases[0][trial_end]".into(), t.to_string()));
                }
                f.extend(price_fields("phases[1][items][0]")?);
                f.push(("phases[1][items][0][quantity]".into(), quantity.to_string()));
                f.push(("phases[1][metadata][offer_key]".into(), target.key.clone()));
                if bundles {
                    f.push(("phases[1][metadata][clouds]".into(), self.clouds.join(",")));
                }
                f.push(("end_behavior".into(), "release".into()));
                Ok(Some(Call::stripe(Method::Post, format!("/v1/subscription_schedules/{id}"), f)))
            }
            _ => Ok(None),
        }
    }
}

/// A Stripe CLI fixtures file (`stripe fixtures FILE`) that creates one product and one
/// price per offer sold through Stripe, the price's `lookup_key` being the offer key, so
/// that a webhook's price names its offer even without metadata.
pub fn stripe_fixtures(catalog: &Catalog) -> Value {
    let mut fixtures = Vec::new();
    for o in catalog.offers().iter().filter(|o| provider_of(catalog, o) == Provider::Stripe) {
        let name = fixture_name(&o.key);
        fixtures.push(json!({
            "name": format!("product_{name}"),
            "path": "/v1/products",
            "method": "post",
            "params": {
                "name": o.label,
                "metadata": {"offer_key": o.key, "catalog": catalog.meta().id},
            },
        }));
        let mut params = json!({
            "product": format!("${{product_{name}:id}}"),
            "currency": o.price.currency,
            "unit_amount": o.price.amount,
            "lookup_key": o.key,
            "transfer_lookup_key": true,
            "nickname": o.label,
            "metadata": {"offer_key": o.key},
        });
        if let Some(i) = stripe_interval(o.price.interval) {
            params["recurring"] = json!({"interval": i});
        }
        fixtures.push(json!({"name": format!("price_{name}"), "path": "/v1/prices", "method": "post", "params": params}));
    }
    json!({"_meta": {"template_version": 0}, "fixtures": fixtures})
}

fn fixture_name(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(name: &str) -> Catalog {
        let src = match name {
            "vcm" => include_str!("../catalogs/vcm-suite.toml"),
            "org" => include_str!("../catalogs/org-seats.toml"),
            "rzp" => include_str!("../catalogs/razorpay-ai.toml"),
            _ => include_str!("../catalogs/video-studio.toml"),
        };
        Catalog::from_toml(src).unwrap()
    }
    const NOW: Timestamp = Timestamp(1_800_000_000);
    const U: &str = "6f1c1c3e-0000-4000-8000-000000000001";
    const O: &str = "6f1c1c3e-0000-4000-8000-0000000000aa";

    fn user() -> Account {
        Account {
            subject: Subject::user(U),
            role: None,
            subscriptions: vec![],
            customers: vec![],
            seats_used: 0,
            email: Some("ada@example.com".into()),
        }
    }
    fn org(role: Role, seats_used: u32) -> Account {
        Account { subject: Subject::org(O), role: Some(role), seats_used, email: None, ..user() }
    }
    fn buy(offer: &str) -> Purchase {
        Purchase {
            offer: offer.into(),
            quantity: None,
            clouds: vec![],
            success_url: "https://app.example.com/ok".into(),
            cancel_url: "https://app.example.com/pricing".into(),
            price: None,
        }
    }
    fn held(provider: Provider, id: &str, offer: &str, status: SubStatus) -> Held {
        Held {
            provider,
            id: id.into(),
            offer: Some(offer.into()),
            status,
            quantity: 1,
            cancel_at_period_end: false,
            current_period_end: Some(Timestamp(NOW.0 + 86_400)),
            products: vec![],
        }
    }
    fn refused(r: Result<Call, Refusal>) -> RefusalCode {
        r.expect_err("refused").code
    }

    #[test]
    fn a_plan_is_a_subscription_session_that_names_its_offer_and_buyer_twice() {
        let c = checkout(&catalog("vcm"), &buy("SUITE_PRO_MONTHLY"), &user(), NOW).unwrap();
        assert_eq!((c.provider, c.method, c.path.as_str()), (Provider::Stripe, Method::Post, "/v1/checkout/sessions"));
        assert_eq!(c.field("mode"), Some("subscription"));
        assert_eq!(c.field("line_items[0][price]"), Some("price_vcm_pro_monthly"));
        assert_eq!(c.field("line_items[0][quantity]"), Some("1"));
        assert_eq!(c.field("client_reference_id"), Some(U));
        for on in ["metadata", "subscription_data[metadata]"] {
            assert_eq!(c.field(&format!("{on}[offer_key]")), Some("SUITE_PRO_MONTHLY"));
            assert_eq!(c.field(&format!("{on}[subject]")), Some(format!("user:{U}").as_str()));
        }
        assert_eq!(c.field("payment_intent_data[metadata][offer_key]"), None);
        assert_eq!(c.field("customer_email"), Some("ada@example.com"));
        assert_eq!(c.field("success_url"), Some("https://app.example.com/ok"));
        assert_eq!(c.field("allow_promotion_codes"), None);
        // An existing customer is reused, never a second one made.
        let mut a = user();
        a.customers.push((Provider::Stripe, "cus_1".into()));
        let c = checkout(&catalog("vcm"), &buy("SUITE_PRO_MONTHLY"), &a, NOW).unwrap();
        assert_eq!((c.field("customer"), c.field("customer_email")), (Some("cus_1"), None));
    }

    #[test]
    fn an_offer_without_a_stripe_price_is_sold_from_the_catalogs_amount() {
        let c = checkout(&catalog("studio"), &buy("VIDEO_TOKENS_30_MIN"), &user(), NOW).unwrap();
        assert_eq!(c.field("mode"), Some("payment"));
        assert_eq!(c.field("line_items[0][price_data][unit_amount]"), Some("1900"));
        assert_eq!(c.field("line_items[0][price_data][currency]"), Some("usd"));
        assert_eq!(c.field("line_items[0][price_data][recurring][interval]"), None);
        assert_eq!(c.field("payment_intent_data[metadata][offer_key]"), Some("VIDEO_TOKENS_30_MIN"));
        assert_eq!(c.field("subscription_data[metadata][offer_key]"), None);
        assert_eq!(c.field("customer_creation"), Some("always"));
        let c = checkout(&catalog("studio"), &buy("VIDEO_PRO_MONTHLY"), &user(), NOW).unwrap();
        assert_eq!(c.field("line_items[0][price_data][recurring][interval]"), Some("month"));
    }

    #[test]
    fn a_catalog_that_sells_by_lookup_key_finds_the_price_first_and_falls_back_to_its_amount() {
        let mut doc = catalog("studio").doc.clone();
        assert_eq!(price_lookup(&Catalog::from_doc(doc.clone()).unwrap(), "VIDEO_PRO_MONTHLY"), None);
        doc.catalog.stripe_lookup_keys = true;
        let cat = Catalog::from_doc(doc).unwrap();
        let l = price_lookup(&cat, "VIDEO_PRO_MONTHLY").unwrap();
        assert_eq!((l.method, l.path.as_str()), (Method::Get, "/v1/prices?lookup_keys[0]=VIDEO_PRO_MONTHLY&active=true&limit=1"));
        assert_eq!(found_price(&json!({"object": "list", "data": []})), None);
        let mut p = buy("VIDEO_PRO_MONTHLY");
        p.price = found_price(&json!({"data": [{"id": "price_123"}]}));
        let c = checkout(&cat, &p, &user(), NOW).unwrap();
        assert_eq!((c.field("line_items[0][price]"), c.field("line_items[0][price_data][unit_amount]")), (Some("price_123"), None));
        assert_eq!(price_lookup(&catalog("vcm"), "SUITE_PRO_MONTHLY"), None, "an offer naming its price needs no lookup");
    }

    #[test]
    fn a_bundle_takes_exactly_its_number_of_products_from_those_on_offer() {
        let cat = catalog("vcm");
        let mut p = buy("SUITE_PRO_TWO_CLOUDS_MONTHLY");
        assert_eq!(refused(checkout(&cat, &p, &user(), NOW)), RefusalCode::InvalidClouds);
        p.clouds = vec!["video".into(), "video".into()];
        assert_eq!(refused(checkout(&cat, &p, &user(), NOW)), RefusalCode::InvalidClouds);
        p.clouds = vec!["video".into(), "suite".into()];
        assert_eq!(refused(checkout(&cat, &p, &user(), NOW)), RefusalCode::InvalidClouds);
        p.clouds = vec!["video".into(), "writing".into(), "file".into()];
        assert_eq!(refused(checkout(&cat, &p, &user(), NOW)), RefusalCode::InvalidClouds);
        p.clouds = vec!["video".into(), "writing".into()];
        let c = checkout(&cat, &p, &user(), NOW).unwrap();
        assert_eq!(c.field("metadata[clouds]"), Some("video,writing"));
        assert_eq!(c.field("subscription_data[metadata][clouds]"), Some("video,writing"));
        let mut plan = buy("SUITE_PRO_MONTHLY");
        plan.clouds = vec!["video".into()];
        assert_eq!(refused(checkout(&cat, &plan, &user(), NOW)), RefusalCode::InvalidClouds);
    }

    #[test]
    fn organizations_buy_seats_through_an_owner_or_admin_and_never_below_what_they_gave() {
        let cat = catalog("org");
        let mut p = buy("ORG_PROFESSIONAL_MONTHLY");
        assert_eq!(refused(checkout(&cat, &p, &user(), NOW)), RefusalCode::WrongSubject);
        assert_eq!(refused(checkout(&cat, &p, &org(Role::Member, 0), NOW)), RefusalCode::NotOrgAdmin);
        // Not a member: to them the organization is none.
        assert_eq!(refused(checkout(&cat, &p, &Account { role: None, ..org(Role::Owner, 0) }, NOW)), RefusalCode::UnknownOrganization);
        p.quantity = Some(3);
        assert_eq!(refused(checkout(&cat, &p, &org(Role::Admin, 5), NOW)), RefusalCode::SeatsBelowAllocation);
        p.quantity = Some(0);
        assert_eq!(refused(checkout(&cat, &p, &org(Role::Admin, 0), NOW)), RefusalCode::InvalidQuantity);
        p.quantity = Some(5);
        let c = checkout(&cat, &p, &org(Role::Admin, 5), NOW).unwrap();
        assert_eq!(c.field("line_items[0][quantity]"), Some("5"));
        assert_eq!(c.field("client_reference_id"), Some(format!("org:{O}").as_str()));
        assert_eq!(c.field("metadata[subject]"), Some(format!("org:{O}").as_str()));
        assert_eq!(c.field("subscription_data[metadata][quantity]"), Some("5"));
        assert_eq!(c.field("subscription_data[trial_period_days]"), Some("14"));
        assert_eq!(c.field("line_items[0][price_data][currency]"), Some("cad"));
        // A user's offer is not bought by an organization, nor several of a user's plan.
        assert_eq!(refused(checkout(&catalog("vcm"), &buy("SUITE_PRO_MONTHLY"), &org(Role::Owner, 0), NOW)), RefusalCode::WrongSubject);
        let mut two = buy("SUITE_PRO_MONTHLY");
        two.quantity = Some(2);
        assert_eq!(refused(checkout(&catalog("vcm"), &two, &user(), NOW)), RefusalCode::InvalidQuantity);
    }

    #[test]
    fn a_trial_once_per_product_whichever_plan_had_it() {
        let cat = catalog("org");
        let p = buy("ORG_PROFESSIONAL_MONTHLY");
        let fresh = checkout(&cat, &p, &org(Role::Owner, 0), NOW).unwrap();
        assert_eq!(fresh.field("subscription_data[trial_period_days]"), Some("14"));
        let mut a = org(Role::Owner, 0);
        a.subscriptions.push(held(Provider::Stripe, "sub_old", "ORG_BUSINESS_MONTHLY", SubStatus::Ended));
        let c = checkout(&cat, &p, &a, NOW).unwrap();
        assert_eq!(c.field("subscription_data[trial_period_days]"), None, "the organization plan was had on Business");
    }

    #[test]
    fn one_running_subscription_per_offer_and_one_trial_per_subject() {
        let cat = catalog("org");
        let p = buy("ORG_PROFESSIONAL_MONTHLY");
        for (status, ok) in [
            (SubStatus::Active, false),
            (SubStatus::Trialing, false),
            (SubStatus::PastDue, false),
            (SubStatus::Paused, false),
            (SubStatus::Incomplete, true),
            (SubStatus::Canceled, true),
            (SubStatus::Ended, true),
        ] {
            let mut a = org(Role::Owner, 0);
            a.subscriptions.push(held(Provider::Stripe, "sub_1", "ORG_PROFESSIONAL_MONTHLY", status));
            match checkout(&cat, &p, &a, NOW) {
                Ok(c) => {
                    assert!(ok, "{status:?}");
                    assert_eq!(c.field("subscription_data[trial_period_days]"), None, "a second trial after {status:?}");
                }
                Err(r) => {
                    assert!(!ok, "{status:?}");
                    assert_eq!(r.code, RefusalCode::AlreadySubscribed);
                }
            }
        }
    }

    #[test]
    fn unknown_hidden_and_badly_addressed_purchases_are_refused() {
        let cat = catalog("vcm");
        assert_eq!(refused(checkout(&cat, &buy("NOPE"), &user(), NOW)), RefusalCode::UnknownOffer);
        if let Some(h) = cat.offers().iter().find(|o| o.hidden) {
            assert_eq!(refused(checkout(&cat, &buy(&h.key), &user(), NOW)), RefusalCode::HiddenOffer);
        }
        for bad in ["", "/ok", "javascript:alert(1)", "https://a.example/ b"] {
            let mut p = buy("SUITE_PRO_MONTHLY");
            p.success_url = bad.into();
            assert_eq!(refused(checkout(&cat, &p, &user(), NOW)), RefusalCode::InvalidUrl, "{bad}");
        }
    }

    #[test]
    fn razorpay_sells_plans_as_subscriptions_and_top_ups_as_orders() {
        let cat = catalog("rzp");
        let c = checkout(&cat, &buy("PREMIUM_MONTHLY"), &user(), NOW).unwrap();
        assert_eq!((c.provider, c.path.as_str()), (Provider::Razorpay, "/v1/subscriptions"));
        let Body::Json(b) = &c.body else { panic!() };
        assert_eq!(b["plan_id"], "plan_premium_monthly");
        assert_eq!(b["total_count"], 120);
        assert_eq!(b["notes"]["offer_key"], "PREMIUM_MONTHLY");
        assert_eq!(b["notes"]["subject"], format!("user:{U}"));
        let Body::Json(y) = checkout(&cat, &buy("PREMIUM_YEARLY"), &user(), NOW).unwrap().body else { panic!() };
        assert_eq!(y["total_count"], 10);
        let o = checkout(&cat, &buy("AI_CREDITS_TOPUP_500"), &user(), NOW).unwrap();
        assert_eq!(o.path, "/v1/orders");
        let Body::Json(b) = &o.body else { panic!() };
        assert_eq!((b["amount"].as_i64(), b["currency"].as_str()), (Some(9900), Some("INR")));
        assert!(b["receipt"].as_str().unwrap().len() <= 40);
        assert_eq!(o.body().unwrap().0, "application/json");
    }

    #[test]
    fn cancel_and_resume_act_on_the_callers_own_running_subscription() {
        let mut a = user();
        assert_eq!(cancel(&a, None, false).unwrap_err().code, RefusalCode::NoSubscription);
        a.subscriptions.push(held(Provider::Stripe, "sub_old", "SUITE_BASIC_MONTHLY", SubStatus::Ended));
        a.subscriptions.push(held(Provider::Stripe, "sub_1", "SUITE_PRO_MONTHLY", SubStatus::Active));
        let c = cancel(&a, None, false).unwrap();
        assert_eq!((c.method, c.path.as_str(), c.field("cancel_at_period_end")), (Method::Post, "/v1/subscriptions/sub_1", Some("true")));
        assert_eq!(cancel(&a, Some("sub_1"), true).unwrap().field("cancel_at_period_end"), Some("false"));
        assert_eq!(cancel(&a, Some("sub_someone_elses"), false).unwrap_err().code, RefusalCode::NoSubscription);
        assert_eq!(cancel(&a, Some("sub_old"), true).unwrap_err().code, RefusalCode::NotRunning);
        a.subscriptions.push(held(Provider::Stripe, "sub_2", "CLOUD_VIDEO_PRO_MONTHLY", SubStatus::Trialing));
        assert_eq!(cancel(&a, None, false).unwrap_err().code, RefusalCode::AmbiguousSubscription);
        let mut r = user();
        r.subscriptions.push(held(Provider::Razorpay, "sub_R", "PREMIUM_MONTHLY", SubStatus::Active));
        let c = cancel(&r, None, false).unwrap();
        assert_eq!(c.path, "/v1/subscriptions/sub_R/cancel");
        assert_eq!(c.body, Body::Json(json!({"cancel_at_cycle_end": 1})));
        assert_eq!(cancel(&r, None, true).unwrap_err().code, RefusalCode::NotSupported);
        let mut o = org(Role::Member, 0);
        o.subscriptions.push(held(Provider::Stripe, "sub_o", "ORG_PROFESSIONAL_MONTHLY", SubStatus::Active));
        assert_eq!(cancel(&o, None, false).unwrap_err().code, RefusalCode::NotOrgAdmin);
    }

    #[test]
    fn resume_acts_on_the_callers_own_paused_subscription() {
        let mut a = user();
        assert_eq!(resume(&a, None).unwrap_err().code, RefusalCode::NoSubscription);
        a.subscriptions.push(held(Provider::Stripe, "sub_old", "SUITE_BASIC_MONTHLY", SubStatus::Ended));
        a.subscriptions.push(held(Provider::Stripe, "sub_1", "SUITE_PRO_MONTHLY", SubStatus::Active));
        // Nothing paused: refused before any call, named or not.
        assert_eq!(resume(&a, None).unwrap_err().code, RefusalCode::NotPaused);
        assert_eq!(resume(&a, Some("sub_1")).unwrap_err().code, RefusalCode::NotPaused);
        assert_eq!(resume(&a, Some("sub_old")).unwrap_err().code, RefusalCode::NotRunning);
        assert_eq!(resume(&a, Some("sub_someone_elses")).unwrap_err().code, RefusalCode::NoSubscription);
        // Paused beside an active one: unnamed, the paused one.
        a.subscriptions.push(held(Provider::Stripe, "sub_2", "CLOUD_VIDEO_PRO_MONTHLY", SubStatus::Paused));
        let r = resume(&a, None).unwrap();
        assert_eq!(r.subscription, "sub_2");
        assert_eq!((r.first.method, r.first.path.as_str(), &r.first.body), (Method::Get, "/v1/subscriptions/sub_2", &Body::None));
        assert_eq!(resume(&a, Some("sub_2")).unwrap(), r);
        a.subscriptions.push(held(Provider::Stripe, "sub_3", "CLOUD_WRITING_PRO_MONTHLY", SubStatus::Paused));
        assert_eq!(resume(&a, None).unwrap_err().code, RefusalCode::AmbiguousSubscription);
        assert_eq!(resume(&a, Some("sub_3")).unwrap().subscription, "sub_3");
        // An organization's: its owners' and admins'.
        let mut o = org(Role::Member, 0);
        o.subscriptions.push(held(Provider::Stripe, "sub_o", "ORG_PROFESSIONAL_MONTHLY", SubStatus::Paused));
        assert_eq!(resume(&o, None).unwrap_err().code, RefusalCode::NotOrgAdmin);
        o.role = Some(Role::Admin);
        assert_eq!(resume(&o, None).unwrap().subscription, "sub_o");
    }

    #[test]
    fn stripe_resumes_a_paused_status_and_unsets_a_paused_collection() {
        let mut a = user();
        a.subscriptions.push(held(Provider::Stripe, "sub_1", "SUITE_PRO_MONTHLY", SubStatus::Paused));
        let r = resume(&a, None).unwrap();
        let sub = |status: &str, pause: Value| json!({"id": "sub_1", "object": "subscription", "status": status, "pause_collection": pause});
        // Status `paused` (a trial ended without a payment method): its resume endpoint.
        let c = r.next(&[sub("paused", Value::Null)]).unwrap().unwrap();
        assert_eq!((c.method, c.path.as_str()), (Method::Post, "/v1/subscriptions/sub_1/resume"));
        assert_eq!(c.body().unwrap(), ("application/x-www-form-urlencoded", b"billing_cycle_anchor=now".to_vec()));
        assert_eq!(StripePause::of(&sub("paused", Value::Null)), Some(StripePause::Status));
        // Payment collection paused (status still active, or trialing, or past due): unset.
        for status in ["active", "trialing", "past_due"] {
            let c = r.next(&[sub(status, json!({"behavior": "void", "resumes_at": null}))]).unwrap().unwrap();
            assert_eq!((c.method, c.path.as_str()), (Method::Post, "/v1/subscriptions/sub_1"));
            assert_eq!(c.body().unwrap().1, b"pause_collection=".to_vec(), "the hash unset with an empty value");
        }
        // Stripe no longer has it paused: refused, nothing sent.
        assert_eq!(r.next(&[sub("active", Value::Null)]).unwrap_err().code, RefusalCode::NotPaused);
        assert_eq!(r.next(&[json!({"id": "sub_1", "status": "active"})]).unwrap_err().code, RefusalCode::NotPaused);
        // One request after the read, then done.
        assert_eq!(r.next(&[sub("paused", Value::Null), sub("active", Value::Null)]).unwrap(), None);
    }

    #[test]
    fn razorpay_resumes_a_paused_subscription_now_in_one_request() {
        let mut a = user();
        a.subscriptions.push(held(Provider::Razorpay, "sub_R", "PREMIUM_MONTHLY", SubStatus::Paused));
        let r = resume(&a, None).unwrap();
        assert_eq!((r.provider, r.first.method, r.first.path.as_str()), (Provider::Razorpay, Method::Post, "/v1/subscriptions/sub_R/resume"));
        assert_eq!(r.first.body, Body::Json(json!({"resume_at": "now"})));
        assert_eq!(r.next(&[json!({"id": "sub_R", "status": "active"})]).unwrap(), None);
        a.subscriptions[0].status = SubStatus::PastDue;
        assert_eq!(resume(&a, None).unwrap_err().code, RefusalCode::NotPaused);
    }

    #[test]
    fn the_portal_needs_a_stripe_customer() {
        assert_eq!(portal(&user(), "https://app.example.com/account").unwrap_err().code, RefusalCode::NoCustomer);
        let mut a = user();
        a.customers.push((Provider::Razorpay, "cust_R".into()));
        assert_eq!(portal(&a, "https://app.example.com/account").unwrap_err().code, RefusalCode::NoCustomer);
        a.customers.push((Provider::Stripe, "cus_1".into()));
        let c = portal(&a, "https://app.example.com/account").unwrap();
        assert_eq!((c.path.as_str(), c.field("customer")), ("/v1/billing_portal/sessions", Some("cus_1")));
    }

    fn subscription(price: Value) -> Value {
        json!({"id": "sub_1", "items": {"data": [{"id": "si_1", "quantity": 1, "price": price}]}})
    }

    #[test]
    fn an_upgrade_changes_the_price_now_and_the_offer_key_with_it() {
        let cat = catalog("vcm");
        let mut a = user();
        a.subscriptions.push(held(Provider::Stripe, "sub_1", "SUITE_BASIC_MONTHLY", SubStatus::Active));
        let ch = change(&cat, &a, None, "SUITE_PRO_MONTHLY", &[]).unwrap();
        assert!(ch.upgrade);
        assert_eq!((ch.first.method, ch.first.path.as_str()), (Method::Get, "/v1/subscriptions/sub_1"));
        let sub = subscription(json!({"id": "price_vcm_basic_monthly", "product": "prod_suite"}));
        let next = ch.next(&cat, std::slice::from_ref(&sub)).unwrap().unwrap();
        assert_eq!(next.path, "/v1/subscriptions/sub_1");
        assert_eq!(next.field("items[0][id]"), Some("si_1"));
        assert_eq!(next.field("items[0][price]"), Some("price_vcm_pro_monthly"));
        assert_eq!(next.field("proration_behavior"), Some("always_invoice"));
        assert_eq!(next.field("metadata[offer_key]"), Some("SUITE_PRO_MONTHLY"));
        assert_eq!(next.field("metadata[clouds]"), None, "no bundle on either side");
        assert_eq!(ch.next(&cat, &[sub.clone(), json!({})]).unwrap(), None);
        // The offer it holds: the change waiting for the period's end is withdrawn, if one waits.
        let back = change(&cat, &a, None, "SUITE_BASIC_MONTHLY", &[]).unwrap();
        assert!(back.withdraws && !back.upgrade);
        assert_eq!((back.first.method, back.first.path.as_str()), (Method::Get, "/v1/subscriptions/sub_1"));
        assert_eq!(back.withdraw_next(std::slice::from_ref(&sub)).unwrap_err().code, RefusalCode::SameOffer);
        let mut scheduled = sub.clone();
        scheduled["schedule"] = json!("sub_sched_9");
        let release = back.withdraw_next(std::slice::from_ref(&scheduled)).unwrap().unwrap();
        assert_eq!((release.method, release.path.as_str()), (Method::Post, "/v1/subscription_schedules/sub_sched_9/release"));
        assert_eq!(back.withdraw_next(&[scheduled, json!({})]).unwrap(), None);
        assert_eq!(change(&cat, &a, None, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &[]).unwrap_err().code, RefusalCode::InvalidClouds);
        assert_eq!(change(&cat, &a, None, "NOPE", &[]).unwrap_err().code, RefusalCode::UnknownOffer);
    }

    #[test]
    fn a_bundle_moves_to_a_bigger_bundle_now_and_to_other_chosen_clouds_at_the_period_end() {
        let cat = catalog("vcm");
        let mut a = user();
        let mut h = held(Provider::Stripe, "sub_1", "SUITE_PRO_TWO_CLOUDS_MONTHLY", SubStatus::Active);
        h.products = [("suite", "pro"), ("video", "pro"), ("writing", "pro")].map(|(p, t)| (p.into(), t.into())).to_vec();
        a.subscriptions.push(h);
        let three: Vec<String> = ["file", "video", "writing"].map(String::from).to_vec();
        let ch = change(&cat, &a, None, "SUITE_PRO_THREE_CLOUDS_MONTHLY", &three).unwrap();
        assert!(ch.upgrade);
        let sub = subscription(json!({"id": "price_vcm_pro_two_clouds", "product": "prod_suite"}));
        let next = ch.next(&cat, std::slice::from_ref(&sub)).unwrap().unwrap();
        assert_eq!(next.field("items[0][price]"), Some("price_vcm_pro_three_clouds"));
        assert_eq!(next.field("metadata[offer_key]"), Some("SUITE_PRO_THREE_CLOUDS_MONTHLY"));
        assert_eq!(next.field("metadata[clouds]"), Some("file,video,writing"));
        // A bundle names its clouds, as at checkout.
        assert_eq!(change(&cat, &a, None, "SUITE_PRO_THREE_CLOUDS_MONTHLY", &[]).unwrap_err().code, RefusalCode::InvalidClouds);
        // The same bundle: the same clouds are no change; others are, at the period end.
        let same: Vec<String> = ["writing", "video"].map(String::from).to_vec();
        let back = change(&cat, &a, None, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &same).unwrap();
        assert!(back.withdraws);
        assert_eq!(back.withdraw_next(std::slice::from_ref(&sub)).unwrap_err().code, RefusalCode::SameOffer);
        let other: Vec<String> = ["file", "video"].map(String::from).to_vec();
        let swap = change(&cat, &a, None, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &other).unwrap();
        assert!(!swap.upgrade, "other clouds at the same price wait for the period end");
        let schedule = json!({"id": "sub_sched_1", "phases": [{"start_date": 100, "end_date": 200,
                              "items": [{"price": "price_vcm_pro_two_clouds", "quantity": 1}]}]});
        let update = swap.next(&cat, &[sub.clone(), schedule]).unwrap().unwrap();
        assert_eq!(update.field("phases[1][items][0][price]"), Some("price_vcm_pro_two_clouds"));
        assert_eq!(update.field("phases[1][metadata][clouds]"), Some("file,video"));
        // A plan moves into a bundle the same way; a bundle back to a plan drops its clouds.
        let mut p = user();
        p.subscriptions.push(held(Provider::Stripe, "sub_2", "SUITE_PRO_MONTHLY", SubStatus::Active));
        assert!(change(&cat, &p, None, "SUITE_PRO_TWO_CLOUDS_MONTHLY", &other).unwrap().upgrade);
        let down = change(&cat, &a, None, "SUITE_PRO_MONTHLY", &[]).unwrap();
        assert!(!down.upgrade);
        let sched = json!({"id": "s", "phases": [{"start_date": 1, "end_date": 2, "items": [{"price": "p", "quantity": 1}]}]});
        let update = down.next(&cat, &[sub, sched]).unwrap().unwrap();
        assert_eq!(update.field("phases[1][metadata][clouds]"), Some(""), "the clouds key unset");
    }

    #[test]
    fn a_downgrade_waits_for_the_period_end_through_a_schedule() {
        let cat = catalog("org");
        let mut a = org(Role::Owner, 2);
        let mut h = held(Provider::Stripe, "sub_1", "ORG_BUSINESS_MONTHLY", SubStatus::Active);
        h.quantity = 3;
        a.subscriptions.push(h);
        let ch = change(&cat, &a, None, "ORG_PROFESSIONAL_MONTHLY", &[]).unwrap();
        assert!(!ch.upgrade);
        let sub = json!({"items": {"data": [{"id": "si_1", "quantity": 3, "price": {"id": "price_x", "product": "prod_org"}}]}});
        let create = ch.next(&cat, std::slice::from_ref(&sub)).unwrap().unwrap();
        assert_eq!((create.path.as_str(), create.field("from_subscription")), ("/v1/subscription_schedules", Some("sub_1")));
        let schedule = json!({"id": "sub_sched_1", "phases": [{"start_date": 100, "end_date": 200,
                              "items": [{"price": "price_x", "quantity": 3}]}]});
        let update = ch.next(&cat, &[sub.clone(), schedule.clone()]).unwrap().unwrap();
        assert_eq!(update.path, "/v1/subscription_schedules/sub_sched_1");
        assert_eq!(update.field("phases[0][items][0][price]"), Some("price_x"));
        assert_eq!(update.field("phases[0][end_date]"), Some("200"));
        assert_eq!(update.field("phases[1][items][0][price_data][product]"), Some("prod_org"));
        assert_eq!(update.field("phases[1][items][0][price_data][unit_amount]"), Some("2500"));
        assert_eq!(update.field("phases[1][items][0][quantity]"), Some("3"));
        assert_eq!(update.field("phases[1][metadata][offer_key]"), Some("ORG_PROFESSIONAL_MONTHLY"));
        assert_eq!(update.field("end_behavior"), Some("release"));
        assert_eq!(ch.next(&cat, &[sub, schedule, json!({})]).unwrap(), None);
        // Fewer seats than given is refused before any call.
        let mut few = org(Role::Owner, 4);
        few.subscriptions = a.subscriptions.clone();
        few.subscriptions[0].quantity = 2;
        assert_eq!(change(&cat, &few, None, "ORG_PROFESSIONAL_MONTHLY", &[]).unwrap_err().code, RefusalCode::SeatsBelowAllocation);
    }

    #[test]
    fn razorpay_changes_plans_in_one_request() {
        let cat = catalog("rzp");
        let mut a = user();
        a.subscriptions.push(held(Provider::Razorpay, "sub_R", "PREMIUM_MONTHLY", SubStatus::Active));
        let up = change(&cat, &a, None, "ENTERPRISE_MONTHLY", &[]).unwrap();
        assert_eq!((up.first.method, up.first.path.as_str()), (Method::Patch, "/v1/subscriptions/sub_R"));
        let Body::Json(b) = &up.first.body else { panic!() };
        assert_eq!((b["plan_id"].as_str(), b["schedule_change_at"].as_str()), (Some("plan_enterprise_monthly"), Some("now")));
        assert_eq!(up.next(&cat, &[json!({})]).unwrap(), None);
        a.subscriptions[0].offer = Some("ENTERPRISE_MONTHLY".into());
        let down = change(&cat, &a, None, "PREMIUM_MONTHLY", &[]).unwrap();
        let Body::Json(b) = &down.first.body else { panic!() };
        assert_eq!(b["schedule_change_at"], "cycle_end");
        assert_eq!(change(&cat, &a, None, "AI_CREDITS_TOPUP_500", &[]).unwrap_err().code, RefusalCode::NotSellable);
        // Back to the plan held: the downgrade waiting for the cycle's end is cancelled, if
        // Razorpay says one waits.
        let back = change(&cat, &a, None, "ENTERPRISE_MONTHLY", &[]).unwrap();
        assert!(back.withdraws);
        assert_eq!((back.first.method, back.first.path.as_str()), (Method::Get, "/v1/subscriptions/sub_R"));
        let cancel = back.withdraw_next(&[json!({"id": "sub_R", "has_scheduled_changes": true})]).unwrap().unwrap();
        assert_eq!((cancel.method, cancel.path.as_str()), (Method::Post, "/v1/subscriptions/sub_R/cancel_scheduled_changes"));
        assert_eq!(back.withdraw_next(&[json!({}), json!({})]).unwrap(), None);
        for none in [json!({"id": "sub_R", "has_scheduled_changes": false}), json!({"id": "sub_R"})] {
            assert_eq!(back.withdraw_next(&[none]).unwrap_err().code, RefusalCode::SameOffer);
        }
        // Ending at the cycle's end: `resume` keeps it, a change asks nothing of Razorpay.
        a.subscriptions[0].cancel_at_period_end = true;
        assert_eq!(change(&cat, &a, None, "ENTERPRISE_MONTHLY", &[]).unwrap_err().code, RefusalCode::SameOffer);
    }

    #[test]
    fn forms_are_encoded_as_stripes_libraries_encode_them() {
        let f = vec![("metadata[clouds]".to_string(), "video,writing".to_string()), ("x".into(), "a b&c=é~".into())];
        assert_eq!(form_encode(&f), "metadata[clouds]=video%2Cwriting&x=a%20b%26c%3D%C3%A9~");
    }

    #[test]
    fn stripe_fixtures_create_one_product_and_price_per_stripe_offer() {
        let cat = catalog("vcm");
        let f = stripe_fixtures(&cat);
        let all = f["fixtures"].as_array().unwrap();
        assert_eq!(all.len(), 2 * cat.offers().len());
        let price = all.iter().find(|x| x["params"]["lookup_key"] == "SUITE_PRO_MONTHLY").unwrap();
        assert_eq!(price["params"]["product"], "${product_suite_pro_monthly:id}");
        assert_eq!(price["params"]["unit_amount"], 5900);
        assert_eq!(price["params"]["recurring"]["interval"], "month");
        assert_eq!(stripe_fixtures(&catalog("rzp"))["fixtures"].as_array().unwrap().len(), 0);
    }
}
