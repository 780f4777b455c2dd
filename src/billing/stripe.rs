//! Stripe events -> facts.
//!
//! Both API shapes are read:
//! - before 2025-03-31: `subscription.current_period_start/end`, `invoice.subscription`,
//!   `invoice.charge` / `invoice.payment_intent`, line `price` / `plan`;
//! - from 2025-03-31 on: the period on each subscription item
//!   (`items.data[].current_period_start/end`), the invoice's subscription at
//!   `parent.subscription_details.subscription`, its payments at
//!   `payments.data[].payment`, and a line's price at `pricing.price_details.price`.
//!
//! Handled types: `checkout.session.completed`, `.async_payment_succeeded`,
//! `.async_payment_failed`; `customer.subscription.created`, `.updated`,
//! `.deleted`, `.paused`, `.resumed` (a subscription whose `pause_collection` is set is
//! paused, whatever its status says: Stripe's "pause payment collection" keeps it
//! `active`); `invoice.paid`, `invoice.payment_succeeded`,
//! `invoice.payment_failed`; `invoice_payment.paid` (which payment paid which
//! invoice: since 2025-03-31 a charge no longer names its invoice, so refunds and
//! disputes of subscription payments reach their invoice through it);
//! `charge.refunded`; `charge.dispute.created`, `.updated`, `.funds_withdrawn`
//! (open) and `.closed` (won or lost). Any other type parses to [`Parsed::Ignored`].

use serde_json::Value;

use super::facts::*;
use super::json::At;
use super::parse::*;
use crate::catalog::{Catalog, Offer};

const P: Provider = Provider::Stripe;

fn sref(id: &str) -> String {
    P.object(id)
}

/// Parses one Stripe event (the raw webhook body) into facts.
pub fn parse_stripe_event(catalog: &Catalog, raw: &str) -> Result<Parsed, ParseError> {
    parse_stripe_value(catalog, &parse_json(raw)?)
}

/// The two modes of a Stripe account. Each has its own keys, objects and webhook
/// endpoints: a payment made in test mode (a test card) is no payment of the live
/// account, and the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StripeMode {
    Live,
    Test,
}

impl StripeMode {
    /// The mode an API key belongs to (`sk_live_`, `rk_live_`; `sk_test_`, `rk_test_`);
    /// `None` for any other text.
    pub fn of_key(key: &str) -> Option<StripeMode> {
        let key = key.trim();
        let rest = key.strip_prefix("sk_").or_else(|| key.strip_prefix("rk_"))?;
        if rest.starts_with("live_") {
            Some(StripeMode::Live)
        } else if rest.starts_with("test_") {
            Some(StripeMode::Test)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StripeMode::Live => "live",
            StripeMode::Test => "test",
        }
    }
}

/// [`parse_stripe_event`] at an endpoint that serves one mode (`None`: either). An event
/// of the other mode (its `livemode`) changes no entitlement of this one; it is an error
/// (`wrong_mode`) rather than an ignored event, so that a host keeps it: when the mode
/// itself was set up wrong (a test key beside live webhooks), the paid events it refused
/// are still there to apply once it is mended. An event that says no mode is read as
/// before.
pub fn parse_stripe_event_in(catalog: &Catalog, raw: &str, mode: Option<StripeMode>) -> Result<Parsed, ParseError> {
    let v = parse_json(raw)?;
    if let Some(mode) = mode {
        let live = At::root(&v, "").opt_bool("livemode")?;
        let told = live.map(|l| if l { StripeMode::Live } else { StripeMode::Test });
        if let Some(told) = told.filter(|&t| t != mode) {
            return Err(ParseError::WrongMode { event: told.as_str(), endpoint: mode.as_str() });
        }
    }
    parse_stripe_value(catalog, &v)
}

/// [`parse_stripe_event`] for a body already parsed as JSON.
pub fn parse_stripe_value(catalog: &Catalog, v: &Value) -> Result<Parsed, ParseError> {
    if !v.is_object() {
        return Err(ParseError::WrongType { path: "(body)".into(), expected: "a JSON object".into() });
    }
    let root = At::root(v, "");
    if let Some(o) = root.opt_str("object")? {
        if o != "event" {
            return Err(ParseError::InvalidValue {
                path: "object".into(),
                message: format!("expected a Stripe event (\"event\"), got \"{o}\""),
            });
        }
    }
    let event = EventInfo {
        provider: P,
        id: root.req_str("id")?.to_string(),
        event_type: root.req_str("type")?.to_string(),
        created: root.req_time("created")?,
    };
    let data = root.req("data")?;
    let obj = data.req("object")?;
    if !obj.is_object() {
        return Err(ParseError::WrongType { path: "data.object".into(), expected: "an object".into() });
    }
    let ty = event.event_type.clone();
    let mut warnings = Vec::new();
    let w = &mut warnings;
    let facts = match ty.as_str() {
        "checkout.session.completed" => checkout(catalog, &event, &obj, None, w)?,
        "checkout.session.async_payment_succeeded" => checkout(catalog, &event, &obj, Some(PurchaseOutcome::Paid), w)?,
        "checkout.session.async_payment_failed" => checkout(catalog, &event, &obj, Some(PurchaseOutcome::Failed), w)?,
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.paused"
        | "customer.subscription.resumed" => {
            let before = data.get("previous_attributes").filter(|p| p.is_object()).map(|p| p.v);
            subscription(catalog, &event, &obj, false, before, w)?
        }
        "customer.subscription.deleted" => subscription(catalog, &event, &obj, true, None, w)?,
        "invoice.paid" | "invoice.payment_succeeded" => invoice_paid(catalog, &event, &obj, w)?,
        "invoice.payment_failed" => invoice_failed(&event, &obj)?,
        "charge.refunded" => refund(&event, &obj)?,
        "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.funds_withdrawn" => {
            dispute(&event, &obj, false)?
        }
        "charge.dispute.closed" => dispute(&event, &obj, true)?,
        "invoice_payment.paid" => invoice_payment(&event, &obj)?,
        _ => Err(format!("event type `{ty}` does not change entitlements")),
    };
    Ok(match facts {
        Ok(facts) => Parsed::Facts { event, facts: super::facts::stamped(facts, catalog.version), warnings },
        Err(reason) => Parsed::Ignored { event, reason },
    })
}

/// A parse result: facts, or a reason to ignore the event.
type Outcome = Result<Vec<Fact>, String>;

/// `object` as it was before an update, from the event's `previous_attributes` (`before`):
/// each attribute named there takes its earlier value; a nested object names only the
/// attributes of it that changed, an array is given whole, and `null` is an attribute the
/// object did not have (or had empty).
fn restore(object: &mut Value, before: &Value) {
    let (Some(o), Some(b)) = (object.as_object_mut(), before.as_object()) else { return };
    for (k, was) in b {
        match (o.get_mut(k), was) {
            (_, Value::Null) => {
                o.remove(k);
            }
            (Some(now @ Value::Object(_)), Value::Object(_)) => restore(now, was),
            _ => {
                o.insert(k.clone(), was.clone());
            }
        }
    }
}

fn fact(event: &EventInfo, key: String, body: FactBody) -> Fact {
    Fact { key, provider: P, event: event.id.clone(), at: event.created, body, catalog_version: None }
}

/// The catalog offer of a price: by its id (an offer's `stripe_price_ids`), by its
/// `lookup_key` (prices published from the catalog carry the offer key there), or by an
/// `offer_key` in the price's metadata (an unknown one is a warning).
fn offer_of_price<'c>(
    catalog: &'c Catalog,
    price: &At<'_>,
    price_id: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<&'c Offer>, ParseError> {
    if let Some(o) = catalog.offer_by_price_id(price_id) {
        return Ok(Some(o));
    }
    if price.is_object() {
        if let Some(o) = price.opt_str("lookup_key")?.and_then(|k| catalog.offer(k)) {
            return Ok(Some(o));
        }
        let k = price.meta("metadata", "offer_key")?;
        return Ok(offer_or_warn(catalog, k, price.field_path("metadata.offer_key"), warnings));
    }
    Ok(None)
}

/// The offer sold: what the prices say, else what the object's metadata says. Metadata
/// that names another offer than the prices, or none the catalog has, is a warning.
fn price_wins<'c>(
    price_offer: Option<&'c Offer>,
    meta_key: Option<String>,
    catalog: &'c Catalog,
    path: String,
    warnings: &mut Vec<String>,
) -> Option<&'c Offer> {
    match price_offer {
        Some(o) => {
            if let Some(k) = meta_key.filter(|k| *k != o.key) {
                warnings.push(format!("field `{path}`: `{k}` is not the offer of the price paid (`{}`); the price's is used", o.key));
            }
            Some(o)
        }
        None => offer_or_warn(catalog, meta_key, path, warnings),
    }
}

fn checkout(
    catalog: &Catalog,
    event: &EventInfo,
    obj: &At<'_>,
    forced: Option<PurchaseOutcome>,
    warnings: &mut Vec<String>,
) -> Result<Outcome, ParseError> {
    let cs = obj.req_str("id")?;
    let mode = match obj.req_str("mode")? {
        "subscription" => PurchaseMode::Subscription,
        "payment" => PurchaseMode::Payment,
        "setup" => return Ok(Err("a setup-mode checkout collects a payment method and grants nothing".into())),
        m => {
            return Err(ParseError::InvalidValue {
                path: obj.field_path("mode"),
                message: format!("`{m}` is not a checkout mode (payment, subscription, setup)"),
            })
        }
    };
    let payment_status = obj.req_str("payment_status")?;
    let no_payment_required = payment_status == "no_payment_required";
    let outcome = match (forced, payment_status) {
        (Some(o), _) => o,
        (None, "paid" | "no_payment_required") => PurchaseOutcome::Paid,
        (None, "unpaid") => PurchaseOutcome::Unpaid,
        (None, s) => {
            return Err(ParseError::InvalidValue {
                path: obj.field_path("payment_status"),
                message: format!("`{s}` is not a payment status (paid, unpaid, no_payment_required)"),
            })
        }
    };

    // The offer: a line item's price (line items are in the event only when the app
    // expanded them), else metadata.offer_key.
    let mut price_offer: Option<&Offer> = None;
    let mut quantity: Option<u32> = None;
    if let Some(li) = obj.get("line_items") {
        for line in li.items("data")? {
            let price = line.get("price");
            let pid = line.opt_ref("price")?;
            if let (Some(p), Some(pid)) = (price, pid) {
                if let Some(o) = offer_of_price(catalog, &p, &pid, warnings)? {
                    price_offer = Some(o);
                    quantity = Some(count(&line, "quantity", 1)?);
                    break;
                }
            }
        }
    }
    let meta_key = obj.meta("metadata", "offer_key")?;
    let offer = price_wins(price_offer, meta_key, catalog, obj.field_path("metadata.offer_key"), warnings);
    if quantity.is_none() {
        quantity = meta_count(obj, "metadata", "quantity", warnings)?;
    }

    let paid = outcome == PurchaseOutcome::Paid;
    let clouds = split_clouds(obj.meta("metadata", "clouds")?);
    let clouds = clouds_or_warn(catalog, offer, clouds, &obj.field_path("metadata.clouds"), paid, warnings);

    // No buyer named (or a malformed one): the purchase waits for its customer's link or
    // an operator's attribution; it is never refused.
    let subject = subject_or_warn(obj, "metadata", obj.opt_str("client_reference_id")?, offer, warnings)?;
    let customer = obj.opt_ref("customer")?.map(|c| sref(&c));
    let subscription = obj.opt_ref("subscription")?.map(|s| sref(&s));
    if mode == PurchaseMode::Subscription && subscription.is_none() && paid {
        return Err(ParseError::MissingField { path: obj.field_path("subscription") });
    }
    let mut payment_refs = Vec::new();
    for k in ["payment_intent", "invoice"] {
        if let Some(r) = obj.opt_ref(k)? {
            payment_refs.push(sref(&r));
        }
    }
    let tag = match outcome {
        PurchaseOutcome::Paid => "paid",
        PurchaseOutcome::Unpaid => "unpaid",
        PurchaseOutcome::Failed => "failed",
    };
    let p = Purchase {
        id: sref(cs),
        mode,
        outcome,
        subject,
        customer,
        subscription,
        offer: offer.map(|o| o.key.clone()),
        quantity: quantity.unwrap_or(1).max(1),
        clouds,
        payment_refs,
        amount: obj.opt_i64("amount_total")?.unwrap_or(0),
        currency: obj.opt_str("currency")?.unwrap_or("").to_lowercase(),
        no_payment_required,
    };
    Ok(Ok(vec![fact(event, format!("stripe:checkout:{cs}:{tag}"), FactBody::Purchase(p))]))
}

fn status_of(s: &str, path: String) -> Result<SubStatus, ParseError> {
    Ok(match s {
        "incomplete" => SubStatus::Incomplete,
        "incomplete_expired" | "canceled" => SubStatus::Ended,
        "trialing" => SubStatus::Trialing,
        "active" => SubStatus::Active,
        "past_due" | "unpaid" => SubStatus::PastDue,
        "paused" => SubStatus::Paused,
        other => {
            return Err(ParseError::InvalidValue {
                path,
                message: format!(
                    "`{other}` is not a subscription status (incomplete, incomplete_expired, trialing, active, past_due, unpaid, canceled, paused)"
                ),
            })
        }
    })
}

fn subscription(
    catalog: &Catalog,
    event: &EventInfo,
    obj: &At<'_>,
    deleted: bool,
    before: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<Outcome, ParseError> {
    let id = obj.req_str("id")?;
    let customer = obj.req_ref("customer")?;
    let status = if deleted { SubStatus::Ended } else { status_of(obj.req_str("status")?, obj.field_path("status"))? };
    // Stripe's "pause payment collection" keeps the status (`active`, `trialing`,
    // `past_due`) and sets `pause_collection` (`behavior`: `keep_as_draft`,
    // `mark_uncollectible`, `void`; `resumes_at`, when it resumes by itself): the customer
    // paused the subscription all the same. Any non-null value is a pause, whatever its
    // behavior says (one Stripe adds later too); Stripe clears it, with an update, when
    // collection resumes. An ended or incomplete subscription stays what it is.
    let status = match status {
        SubStatus::Active | SubStatus::Trialing | SubStatus::PastDue if obj.get("pause_collection").is_some() => {
            SubStatus::Paused
        }
        s => s,
    };
    let items_list = obj.req("items")?;
    let lines = items_list.items("data")?;
    let single = lines.len() == 1;
    let meta_key = obj.meta("metadata", "offer_key")?;
    let meta_path = obj.field_path("metadata.offer_key");
    let mut meta_used = false;
    let mut items = Vec::new();
    let (mut item_start, mut item_end): (Option<crate::time::Timestamp>, Option<crate::time::Timestamp>) = (None, None);
    for it in &lines {
        let (price_at, price_id) = match (it.get("price"), it.opt_ref("price")?) {
            (Some(p), Some(id)) => (Some(p), Some(id)),
            _ => match it.get("plan") {
                Some(p) => {
                    let id = p.opt_str("id")?.map(str::to_string);
                    (Some(p), id)
                }
                None => (None, None),
            },
        };
        let price_offer = match (&price_at, &price_id) {
            (Some(p), Some(pid)) => offer_of_price(catalog, p, pid, warnings)?,
            _ => None,
        };
        // The subscription's metadata speaks for a lone item only.
        let offer = if single {
            meta_used = true;
            price_wins(price_offer, meta_key.clone(), catalog, meta_path.clone(), warnings)
        } else {
            price_offer
        };
        items.push(Item { price: price_id, offer: offer.map(|o| o.key.clone()), quantity: count(it, "quantity", 1)? });
        if let (Some(s), Some(e)) = (it.opt_time("current_period_start")?, it.opt_time("current_period_end")?) {
            item_start = Some(item_start.map_or(s, |x| x.min(s)));
            item_end = Some(item_end.map_or(e, |x| x.max(e)));
        }
    }
    // Period: on the subscription before API version 2025-03-31, on its items since.
    let (period_start, period_end) = match (obj.opt_time("current_period_start")?, obj.opt_time("current_period_end")?)
    {
        (Some(s), Some(e)) => (Some(s), Some(e)),
        _ => (item_start, item_end),
    };
    if period_end.is_none() && !matches!(status, SubStatus::Incomplete | SubStatus::Ended) {
        return Err(ParseError::MissingField {
            path: format!(
                "{} (or, since API version 2025-03-31, {}.data[].current_period_end)",
                obj.field_path("current_period_end"),
                obj.field_path("items")
            ),
        });
    }
    if let (Some(s), Some(e)) = (period_start, period_end) {
        if e < s {
            return Err(ParseError::InvalidValue {
                path: obj.field_path("current_period_end"),
                message: format!("the period ends ({e}) before it starts ({s})"),
            });
        }
    }
    if !meta_used {
        if let Some(k) = meta_key.filter(|k| catalog.offer(k).is_none()) {
            warnings.push(ParseError::UnknownOffer { path: meta_path, offer: k }.to_string());
        }
    }
    let bundle = items.iter().filter_map(|i| i.offer.as_deref()).filter_map(|k| catalog.offer(k)).find(|o| bundle_size(o) > 0);
    let clouds = split_clouds(obj.meta("metadata", "clouds")?);
    // A subscription's metadata may leave the choice to its checkout: only a wrong choice warns.
    let clouds = clouds_or_warn(catalog, bundle, clouds, &obj.field_path("metadata.clouds"), false, warnings);
    let offer_for_subject = items.iter().filter_map(|i| i.offer.as_deref()).find_map(|k| catalog.offer(k));
    let snap = SubscriptionSnapshot {
        id: sref(id),
        customer: Some(sref(&customer)),
        status,
        items,
        period_start,
        period_end,
        started_at: obj.opt_time("start_date")?,
        trial_end: obj.opt_time("trial_end")?,
        cancel_at_period_end: obj.opt_bool("cancel_at_period_end")?.unwrap_or(false),
        cancel_at: obj.opt_time("cancel_at")?,
        ended_at: obj.opt_time("ended_at")?,
        subject: subject_or_warn(obj, "metadata", None, offer_for_subject, warnings)?,
        clouds,
        created: false,
        follows: None,
    };
    let key = if deleted {
        format!("stripe:subscription:{id}:deleted")
    } else {
        format!("stripe:subscription:{id}:{}:{}", event.created.0, snap.digest())
    };
    let follows = before.and_then(|b| {
        let mut was = obj.v.clone();
        restore(&mut was, b);
        match subscription(catalog, event, &At::root(&was, "data.previous_attributes"), false, None, &mut Vec::new()) {
            Ok(Ok(facts)) => facts.into_iter().find_map(|f| match f.body {
                FactBody::Subscription(s) => Some(s.digest()),
                _ => None,
            }),
            _ => None,
        }
    });
    let snap = SubscriptionSnapshot { created: event.event_type == "customer.subscription.created", follows, ..snap };
    Ok(Ok(vec![fact(event, key, FactBody::Subscription(snap))]))
}

/// The subscription an invoice belongs to, in either API shape.
fn invoice_subscription(obj: &At<'_>) -> Result<Option<String>, ParseError> {
    if let Some(s) = obj.opt_ref("subscription")? {
        return Ok(Some(s));
    }
    if let Some(parent) = obj.get("parent") {
        if let Some(sd) = parent.get("subscription_details") {
            if let Some(s) = sd.opt_ref("subscription")? {
                return Ok(Some(s));
            }
        }
    }
    if let Some(lines) = obj.get("lines") {
        for l in lines.items("data")? {
            if let Some(s) = l.opt_ref("subscription")? {
                return Ok(Some(s));
            }
            if let Some(p) = l.get("parent") {
                if let Some(d) = p.get("subscription_item_details") {
                    if let Some(s) = d.opt_ref("subscription")? {
                        return Ok(Some(s));
                    }
                }
            }
        }
    }
    Ok(None)
}

fn line_price(line: &At<'_>) -> Result<Option<(Value, String)>, ParseError> {
    if let (Some(p), Some(id)) = (line.get("price"), line.opt_ref("price")?) {
        return Ok(Some((p.v.clone(), id)));
    }
    if let Some(p) = line.get("plan") {
        if let Some(id) = p.opt_str("id")? {
            return Ok(Some((p.v.clone(), id.to_string())));
        }
    }
    if let Some(pr) = line.get("pricing") {
        if let Some(d) = pr.get("price_details") {
            if let (Some(p), Some(id)) = (d.get("price"), d.opt_ref("price")?) {
                return Ok(Some((p.v.clone(), id)));
            }
        }
    }
    Ok(None)
}

fn invoice_paid(
    catalog: &Catalog,
    event: &EventInfo,
    obj: &At<'_>,
    warnings: &mut Vec<String>,
) -> Result<Outcome, ParseError> {
    let id = obj.req_str("id")?;
    let Some(sub) = invoice_subscription(obj)? else {
        return Ok(Err(format!("invoice {id} is not for a subscription")));
    };
    // The invoice's lines with a price: (item, the line's period end, its amount).
    let mut lines_read = Vec::new();
    let mut period: Option<(crate::time::Timestamp, crate::time::Timestamp)> = None;
    if let Some(lines) = obj.get("lines") {
        for l in lines.items("data")? {
            let Some((pv, pid)) = line_price(&l)? else { continue };
            let pat = At::root(&pv, "");
            let offer = offer_of_price(catalog, &pat, &pid, warnings)?;
            let quantity = count(&l, "quantity", 1)?;
            let mut end = None;
            if let Some(p) = l.get("period") {
                let (s, e) = (p.req_time("start")?, p.req_time("end")?);
                if period.is_none_or(|(_, pe)| e > pe) {
                    period = Some((s, e));
                }
                end = Some(e);
            }
            let item = Item { price: Some(pid), offer: offer.map(|o| o.key.clone()), quantity };
            lines_read.push((item, end, l.opt_i64("amount")?));
        }
    }
    // What the invoice pays for: its lines for the period it pays (the latest), less the
    // credit lines of a plan change (a negative amount: unused time on the old price or
    // quantity). A proration line of an earlier period (`create_prorations` puts them on
    // the next renewal's invoice) paid for that period, not this one.
    let paid_until = period.map(|(_, e)| e);
    let items: Vec<Item> = lines_read
        .into_iter()
        .filter(|(_, end, amount)| amount.is_none_or(|a| a >= 0) && (end.is_none() || *end == paid_until))
        .map(|(item, _, _)| item)
        .collect();
    let mut payment_refs = vec![sref(id)];
    for k in ["charge", "payment_intent"] {
        if let Some(r) = obj.opt_ref(k)? {
            payment_refs.push(sref(&r));
        }
    }
    if let Some(pay) = obj.get("payments") {
        for p in pay.items("data")? {
            for r in invoice_payment_refs(&p)? {
                if !payment_refs.contains(&r) {
                    payment_refs.push(r);
                }
            }
        }
    }
    payment_refs.dedup();
    let f = InvoicePaid {
        id: sref(id),
        subscription: sref(&sub),
        customer: obj.opt_ref("customer")?.map(|c| sref(&c)),
        items,
        period_start: period.map(|p| p.0),
        period_end: period.map(|p| p.1),
        amount: obj.opt_i64("amount_paid")?.unwrap_or(0),
        currency: obj.opt_str("currency")?.unwrap_or("").to_lowercase(),
        payment_refs,
    };
    Ok(Ok(vec![fact(event, format!("stripe:invoice:{id}:paid"), FactBody::InvoicePaid(f))]))
}

fn invoice_failed(event: &EventInfo, obj: &At<'_>) -> Result<Outcome, ParseError> {
    let id = obj.req_str("id")?;
    let Some(sub) = invoice_subscription(obj)? else {
        return Ok(Err(format!("invoice {id} is not for a subscription")));
    };
    let attempt = count(obj, "attempt_count", 0)?;
    // What is still owed (a partly paid invoice owes its remainder).
    let amount_due = match obj.opt_i64("amount_remaining")? {
        Some(r) => r,
        None => obj.opt_i64("amount_due")?.unwrap_or(0),
    };
    let f = InvoiceFailed {
        id: sref(id),
        subscription: sref(&sub),
        customer: obj.opt_ref("customer")?.map(|c| sref(&c)),
        attempt,
        amount_due,
        currency: obj.opt_str("currency")?.unwrap_or("").to_lowercase(),
        // Stripe's next automatic attempt; null when it will not try again.
        next_retry: obj.opt_time("next_payment_attempt")?,
        payment: None,
    };
    Ok(Ok(vec![fact(event, format!("stripe:invoice:{id}:failed:{attempt}"), FactBody::InvoiceFailed(f))]))
}

fn refund(event: &EventInfo, obj: &At<'_>) -> Result<Outcome, ParseError> {
    let id = obj.req_str("id")?;
    let amount = obj.req_i64("amount")?;
    let refunded = obj.req_i64("amount_refunded")?;
    if refunded <= 0 {
        return Ok(Err(format!("charge {id} has nothing refunded")));
    }
    let mut payment_refs = vec![sref(id)];
    for k in ["payment_intent", "invoice"] {
        if let Some(r) = obj.opt_ref(k)? {
            payment_refs.push(sref(&r));
        }
    }
    let r = Reversal {
        id: sref(id),
        payment_refs,
        amount,
        reversed: refunded,
        own_amount: 0,
        currency: obj.opt_str("currency")?.unwrap_or("").to_lowercase(),
        outcome: None,
    };
    Ok(Ok(vec![fact(event, format!("stripe:charge:{id}:refunded:{refunded}"), FactBody::Refund(r))]))
}

/// A dispute's state: `None` while it is open, else how it ended. Stripe's statuses:
/// inquiries (`warning_needs_response`, `warning_under_review`, `warning_closed`),
/// chargebacks (`needs_response`, `under_review`, `won`, `lost`), `prevented`, and the
/// retired `charge_refunded`.
fn dispute_state(status: &str, path: String) -> Result<Option<DisputeOutcome>, ParseError> {
    Ok(match status {
        "warning_needs_response" | "warning_under_review" | "needs_response" | "under_review" => None,
        "won" | "warning_closed" | "prevented" => Some(DisputeOutcome::Won),
        "lost" => Some(DisputeOutcome::Lost),
        "charge_refunded" => Some(DisputeOutcome::Refunded),
        other => {
            return Err(ParseError::InvalidValue {
                path,
                message: format!(
                    "`{other}` is not a dispute status (warning_needs_response, warning_under_review, warning_closed, needs_response, under_review, won, lost, prevented, charge_refunded)"
                ),
            })
        }
    })
}

/// `charge.dispute.created`, `.updated`, `.funds_withdrawn` and `.closed`: the dispute
/// is open (it takes back what the payment granted, or the disputed share of it) or closed with an outcome (won:
/// as if it never happened; lost: it stays taken back). One fact per state: every
/// event of an open dispute says the same (key `:created`), every event of a closed
/// one too (`:closed:won`, `:closed:lost`).
fn dispute(event: &EventInfo, obj: &At<'_>, closed: bool) -> Result<Outcome, ParseError> {
    let id = obj.req_str("id")?;
    let charge = obj.req_ref("charge")?;
    let outcome = match obj.opt_str("status")? {
        Some(s) => dispute_state(s, obj.field_path("status"))?,
        None if closed => return Err(ParseError::MissingField { path: obj.field_path("status") }),
        None => None,
    };
    if closed && outcome.is_none() {
        return Err(ParseError::InvalidValue {
            path: obj.field_path("status"),
            message: "a closed dispute is won, lost, warning_closed, prevented or charge_refunded".into(),
        });
    }
    let mut payment_refs = vec![sref(&charge)];
    if let Some(pi) = obj.opt_ref("payment_intent")? {
        payment_refs.push(sref(&pi));
    }
    // The disputed amount, which may be less than the charge's (part of an order disputed):
    // the dispute takes that share back. The charge's amount is not in the dispute; the
    // fold knows it from the payment's own fact.
    let disputed = obj.opt_i64("amount")?.unwrap_or(0);
    let r = Reversal {
        id: sref(id),
        payment_refs,
        amount: 0,
        reversed: disputed,
        own_amount: 0,
        currency: obj.opt_str("currency")?.unwrap_or("").to_lowercase(),
        outcome,
    };
    let state = match outcome {
        None => "created",
        Some(DisputeOutcome::Won) => "closed:won",
        Some(DisputeOutcome::Lost) => "closed:lost",
        Some(DisputeOutcome::Refunded) => "closed:refunded",
    };
    Ok(Ok(vec![fact(event, format!("stripe:dispute:{id}:{state}"), FactBody::Dispute(r))]))
}

/// The payment of an invoice payment (or of an entry of `invoice.payments`): the
/// payment intent or charge, at `payment.*` (API 2025-03-31) or at the top level.
fn invoice_payment_refs(p: &At<'_>) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    let nested = p.get("payment");
    for at in nested.iter().chain(std::iter::once(p)) {
        for k in ["payment_intent", "charge"] {
            if let Some(r) = at.opt_ref(k)? {
                let r = sref(&r);
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    Ok(out)
}

/// `invoice_payment.paid`: which payment paid which invoice.
fn invoice_payment(event: &EventInfo, obj: &At<'_>) -> Result<Outcome, ParseError> {
    let id = obj.req_str("id")?;
    if let Some(o) = obj.opt_str("object")? {
        if o != "invoice_payment" {
            return Err(ParseError::InvalidValue {
                path: obj.field_path("object"),
                message: format!("expected an invoice payment (\"invoice_payment\"), got \"{o}\""),
            });
        }
    }
    let invoice = obj.req_ref("invoice")?;
    if let Some(s) = obj.opt_str("status")? {
        if s != "paid" {
            return Ok(Err(format!("invoice payment {id} is `{s}`, not paid")));
        }
    }
    let payment_refs = invoice_payment_refs(obj)?;
    if payment_refs.is_empty() {
        return Ok(Err(format!("invoice payment {id} names no payment intent or charge (paid out of band)")));
    }
    let p = InvoicePayment {
        id: sref(id),
        invoice: sref(&invoice),
        payment_refs,
        amount: obj.opt_i64("amount_paid")?.unwrap_or(0),
        currency: obj.opt_str("currency")?.unwrap_or("").to_lowercase(),
    };
    Ok(Ok(vec![fact(event, format!("stripe:invoice_payment:{id}:paid"), FactBody::InvoicePayment(p))]))
}
