//! Razorpay events -> facts.
//!
//! A Razorpay webhook body is `{ "entity": "event", "event": "<type>",
//! "contains": [...], "payload": { "<entity>": { "entity": {...} } },
//! "created_at": <unix seconds> }`. It carries no event id: Razorpay sends it
//! in the `x-razorpay-event-id` header, which the caller passes in; without it
//! the id is a digest of the body (so one delivery and its retries agree).
//!
//! The app creates subscriptions and orders with `notes` naming the buyer
//! (`user_id`, or `org_id` / `subject`) and, for one-time payments, the
//! `offer_key` (and `clouds` for a bundle); a subscription's offer comes from
//! its `plan_id` (the catalog's `razorpay_plan_ids`), else `notes.offer_key`.
//! Wrong notes are warnings, never a parse error: a captured payment that names
//! no offer the catalog has, or no buyer, is read and waits for an operator.
//!
//! Handled: `subscription.authenticated`, `.activated`, `.charged`, `.pending`,
//! `.halted`, `.cancelled`, `.completed`, `.updated`, `.paused`, `.resumed`
//! (snapshots; `.charged` is also a paid invoice, which refills credits),
//! `payment.captured` and `order.paid` (one-time purchases, read from the payment either
//! carries, as one fact; subscription payments are applied from `subscription.charged`), `payment.failed` of a subscription (with `.pending` and
//! `.halted`: a payment due, kept with its amount, attempts and next retry until a later
//! `.charged`), `refund.processed` (the payment's total refunded when the event carries
//! the payment, else the refund's own amount: the fold adds a payment's refunds up and
//! reads them against its amount), `payment.dispute.created`,
//! `.under_review`, `.action_required` (open: the dispute takes back what the
//! payment granted, or the disputed share of it when the dispute's `amount` is part of
//! the payment's), `.won` (as if it never happened), `.lost` and `.closed` (by the
//! dispute's `status`: `won` or `lost`, or `closed`: a fraud inquiry closed without a
//! chargeback, which takes nothing back, like a won dispute; a refund the merchant made
//! to close it arrives as its own `refund.processed`).

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::facts::*;
use super::json::At;
use super::parse::*;
use crate::catalog::{Catalog, Offer};

const P: Provider = Provider::Razorpay;

fn rref(id: &str) -> String {
    P.object(id)
}

/// Parses one Razorpay webhook body. `event_id` is the `x-razorpay-event-id`
/// header when the caller has it.
pub fn parse_razorpay_event(catalog: &Catalog, raw: &str, event_id: Option<&str>) -> Result<Parsed, ParseError> {
    let v = parse_json(raw)?;
    let id = match event_id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => body_digest(raw.as_bytes()),
    };
    parse_razorpay_value(catalog, &v, Some(&id))
}

fn body_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(&Sha256::digest(bytes)[..16]))
}

/// [`parse_razorpay_event`] for a body already parsed as JSON. Without an
/// event id, the id is a digest of the value's compact JSON form.
pub fn parse_razorpay_value(catalog: &Catalog, v: &Value, event_id: Option<&str>) -> Result<Parsed, ParseError> {
    if !v.is_object() {
        return Err(ParseError::WrongType { path: "(body)".into(), expected: "a JSON object".into() });
    }
    let root = At::root(v, "");
    let entity = root.req_str("entity")?;
    if entity != "event" {
        return Err(ParseError::InvalidValue {
            path: "entity".into(),
            message: format!("expected a Razorpay webhook event (\"event\"), got \"{entity}\""),
        });
    }
    let id = match event_id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => body_digest(&serde_json::to_vec(v).unwrap_or_default()),
    };
    let event = EventInfo {
        provider: P,
        id,
        event_type: root.req_str("event")?.to_string(),
        created: root.req_time("created_at")?,
    };
    let payload = root.req("payload")?;
    let ty = event.event_type.clone();
    let mut warnings = Vec::new();
    let w = &mut warnings;
    let out = match ty.as_str() {
        "subscription.authenticated"
        | "subscription.activated"
        | "subscription.charged"
        | "subscription.pending"
        | "subscription.halted"
        | "subscription.cancelled"
        | "subscription.completed"
        | "subscription.updated"
        | "subscription.paused"
        | "subscription.resumed" => subscription(catalog, &event, &payload, ty == "subscription.charged", w)?,
        "payment.captured" => payment_captured(catalog, &event, &payload, w)?,
        "order.paid" => order_paid(catalog, &event, &payload, w)?,
        "payment.failed" => payment_failed(catalog, &event, &payload, w)?,
        "refund.processed" => refund(&event, &payload)?,
        "payment.dispute.created" | "payment.dispute.under_review" | "payment.dispute.action_required" => {
            dispute(&event, &payload, None)?
        }
        "payment.dispute.won" => dispute(&event, &payload, Some(DisputeOutcome::Won))?,
        "payment.dispute.lost" => dispute(&event, &payload, Some(DisputeOutcome::Lost))?,
        "payment.dispute.closed" => dispute_closed(&event, &payload)?,
        _ => Err(format!("event type `{ty}` does not change entitlements")),
    };
    Ok(match out {
        Ok(facts) => Parsed::Facts { event, facts: super::facts::stamped(facts, catalog.version), warnings },
        Err(reason) => Parsed::Ignored { event, reason },
    })
}

type Outcome = Result<Vec<Fact>, String>;

fn fact(event: &EventInfo, key: String, body: FactBody) -> Fact {
    Fact { key, provider: P, event: event.id.clone(), at: event.created, body, catalog_version: None }
}

fn status_of(s: &str, path: String) -> Result<SubStatus, ParseError> {
    Ok(match s {
        "created" | "authenticated" => SubStatus::Incomplete,
        "active" => SubStatus::Active,
        "pending" | "halted" => SubStatus::PastDue,
        "cancelled" | "completed" => SubStatus::Canceled,
        "expired" => SubStatus::Ended,
        "paused" => SubStatus::Paused,
        other => {
            return Err(ParseError::InvalidValue {
                path,
                message: format!(
                    "`{other}` is not a subscription status (created, authenticated, active, pending, halted, cancelled, completed, expired, paused)"
                ),
            })
        }
    })
}

/// The offer `notes.offer_key` names; an unknown one is a warning.
fn notes_offer<'c>(catalog: &'c Catalog, e: &At<'_>, warnings: &mut Vec<String>) -> Result<Option<&'c Offer>, ParseError> {
    Ok(offer_or_warn(catalog, e.meta("notes", "offer_key")?, e.field_path("notes.offer_key"), warnings))
}

fn subscription(
    catalog: &Catalog,
    event: &EventInfo,
    payload: &At<'_>,
    charged: bool,
    warnings: &mut Vec<String>,
) -> Result<Outcome, ParseError> {
    let wrap = payload.req("subscription")?;
    let e = wrap.req("entity")?;
    let id = e.req_str("id")?;
    let status = status_of(e.req_str("status")?, e.field_path("status"))?;
    let plan = e.req_str("plan_id")?;
    // The plan wins over the notes the app wrote.
    let offer = match catalog.offer_by_price_id(plan) {
        Some(o) => {
            if let Some(k) = e.meta("notes", "offer_key")?.filter(|k| *k != o.key) {
                warnings.push(format!(
                    "field `{}`: `{k}` is not the offer of plan {plan} (`{}`); the plan's is used",
                    e.field_path("notes.offer_key"),
                    o.key
                ));
            }
            Some(o)
        }
        None => notes_offer(catalog, &e, warnings)?,
    };
    let quantity = count(&e, "quantity", 1)?;
    let clouds = split_clouds(e.meta("notes", "clouds")?);
    let clouds = clouds_or_warn(catalog, offer, clouds, &e.field_path("notes.clouds"), false, warnings);
    let (period_start, period_end) = (e.opt_time("current_start")?, e.opt_time("current_end")?);
    if let (Some(s), Some(x)) = (period_start, period_end) {
        if x < s {
            return Err(ParseError::InvalidValue {
                path: e.field_path("current_end"),
                message: format!("the period ends ({x}) before it starts ({s})"),
            });
        }
    }
    if period_end.is_none() && matches!(status, SubStatus::Active | SubStatus::PastDue) {
        return Err(ParseError::MissingField { path: e.field_path("current_end") });
    }
    let customer = e.opt_str("customer_id")?.map(rref);
    let items = vec![Item { price: Some(plan.to_string()), offer: offer.map(|o| o.key.clone()), quantity }];
    let snap = SubscriptionSnapshot {
        id: rref(id),
        customer: customer.clone(),
        status,
        items: items.clone(),
        period_start,
        period_end,
        started_at: e.opt_time("start_at")?,
        trial_end: None,
        cancel_at_period_end: false,
        cancel_at: None,
        ended_at: e.opt_time("ended_at")?,
        subject: subject_or_warn(&e, "notes", None, offer, warnings)?,
        clouds,
        created: false,
        follows: None,
    };
    let mut facts = vec![fact(
        event,
        format!("razorpay:subscription:{id}:{}:{}", event.created.0, snap.digest()),
        FactBody::Subscription(snap),
    )];
    // A failed charge (pending: Razorpay tries again at `charge_at`; halted: it stopped
    // trying) is a payment due: kept with what is owed until a later payment.
    if matches!(e.req_str("status")?, "pending" | "halted") {
        facts.push(failure(catalog, event, &e, payload.get("payment").map(|p| p.req("entity")).transpose()?.as_ref())?);
    }
    if charged {
        let pw = payload.req("payment")?;
        let p = pw.req("entity")?;
        let pay = p.req_str("id")?;
        let invoice = p.opt_str("invoice_id")?;
        let mut payment_refs = vec![rref(pay)];
        if let Some(i) = invoice {
            payment_refs.push(rref(i));
        }
        if let Some(o) = p.opt_str("order_id")? {
            payment_refs.push(rref(o));
        }
        let inv = invoice.unwrap_or(pay);
        let paid = InvoicePaid {
            id: rref(inv),
            subscription: rref(id),
            customer,
            items,
            period_start,
            period_end,
            amount: p.opt_i64("amount")?.unwrap_or(0),
            currency: p.opt_str("currency")?.unwrap_or("").to_lowercase(),
            payment_refs,
        };
        facts.push(fact(event, format!("razorpay:invoice:{inv}:paid"), FactBody::InvoicePaid(paid)));
    }
    Ok(Ok(facts))
}

/// The failed payment of a subscription in `pending` or `halted` (`e`, its entity), with
/// the failed payment's entity when the event carries one. Keyed by the subscription's
/// cycle, which every event of the failure names (a `subscription.pending` names no
/// invoice); the attempt is Razorpay's `auth_attempts`.
fn failure(catalog: &Catalog, event: &EventInfo, e: &At<'_>, payment: Option<&At<'_>>) -> Result<Fact, ParseError> {
    let sub = e.req_str("id")?;
    let id = format!("{}@{}", rref(sub), e.opt_i64("current_start")?.unwrap_or(0));
    // What is due: the failed payment's amount, else the plan's price in the catalog.
    let quantity = i64::from(count(e, "quantity", 1)?.max(1));
    let plan = e.opt_str("plan_id")?.and_then(|p| catalog.offer_by_price_id(p));
    let (amount_due, currency) = match payment.map(|p| (p.opt_i64("amount"), p.opt_str("currency"))) {
        Some((Ok(Some(a)), Ok(Some(c)))) => (a, c.to_lowercase()),
        _ => match plan {
            Some(o) => (o.price.amount.saturating_mul(quantity), o.price.currency.clone()),
            None => (0, String::new()),
        },
    };
    let halted = e.req_str("status")? == "halted";
    let f = InvoiceFailed {
        id,
        subscription: rref(sub),
        customer: e.opt_str("customer_id")?.map(rref),
        attempt: count(e, "auth_attempts", 0)?,
        amount_due,
        currency,
        next_retry: if halted { None } else { e.opt_time("charge_at")? },
        payment: match payment {
            Some(p) => Some(rref(p.req_str("id")?)),
            None => None,
        },
    };
    Ok(fact(event, format!("razorpay:subscription:{sub}:failed:{}", event.created.0), FactBody::InvoiceFailed(f)))
}

/// `payment.failed`: a failed charge of a subscription is recorded as due when the event
/// names the subscription (its entity in the payload); a failed one-time payment leaves
/// nothing owed (the buyer did not complete the purchase) and is ignored.
fn payment_failed(catalog: &Catalog, event: &EventInfo, payload: &At<'_>, _w: &mut Vec<String>) -> Result<Outcome, ParseError> {
    let p = payload.req("payment")?.req("entity")?;
    let id = p.req_str("id")?;
    let Some(sw) = payload.get("subscription") else {
        return Ok(Err(format!(
            "payment {id} failed outside a subscription: nothing is owed (a subscription's failure is recorded from subscription.pending and .halted)"
        )));
    };
    let e = sw.req("entity")?;
    let mut f = failure(catalog, event, &e, Some(&p))?;
    f.key = format!("razorpay:payment:{id}:failed");
    if let FactBody::InvoiceFailed(i) = &mut f.body {
        // The payment failed; whether Razorpay tries again is the subscription's status.
        if e.req_str("status")? != "pending" {
            i.next_retry = None;
        }
    }
    Ok(Ok(vec![f]))
}

fn payment_captured(
    catalog: &Catalog,
    event: &EventInfo,
    payload: &At<'_>,
    warnings: &mut Vec<String>,
) -> Result<Outcome, ParseError> {
    let pw = payload.req("payment")?;
    let p = pw.req("entity")?;
    let id = p.req_str("id")?;
    if p.opt_str("invoice_id")?.is_some() {
        return Ok(Err(format!("payment {id} pays a subscription invoice: applied from subscription.charged")));
    }
    // A captured payment is money in: without an offer the catalog has (a one-time order
    // carries no plan, only the notes the app wrote) or a buyer, it waits for an operator.
    let mut offer = notes_offer(catalog, &p, warnings)?;
    if offer.is_none() && p.meta("notes", "offer_key")?.is_none() {
        warnings.push(format!("payment {id} names no offer (notes.offer_key)"));
    }
    let clouds = split_clouds(p.meta("notes", "clouds")?);
    let clouds = clouds_or_warn(catalog, offer, clouds, &p.field_path("notes.clouds"), true, warnings);
    let subject = subject_or_warn(&p, "notes", None, offer, warnings)?;
    let customer = p.opt_str("customer_id")?.map(rref);
    let mut quantity = meta_count(&p, "notes", "quantity", warnings)?.unwrap_or(1).max(1);
    let amount = p.opt_i64("amount")?.unwrap_or(0);
    let currency = p.opt_str("currency")?.unwrap_or("").to_lowercase();
    // A payment's notes come from the buyer's browser (Checkout's options), so they are
    // not taken at their word: the payment gives no more of the offer than its amount
    // pays for at the offer's price, in the offer's currency. One that pays for none
    // waits for an operator, as a payment naming no offer does.
    if let Some(o) = offer.filter(|o| o.price.amount > 0) {
        let paid_for = if currency == o.price.currency { amount.max(0) / o.price.amount } else { 0 };
        if paid_for < i64::from(quantity) {
            warnings.push(format!(
                "payment {id} of {amount} {currency} pays for {paid_for} of the {quantity} `{}` its notes name",
                o.key
            ));
            match u32::try_from(paid_for) {
                Ok(n) if n > 0 => quantity = n,
                _ => offer = None,
            }
        }
    }
    let mut payment_refs = Vec::new();
    if let Some(o) = p.opt_str("order_id")? {
        payment_refs.push(rref(o));
    }
    let purchase = Purchase {
        id: rref(id),
        mode: PurchaseMode::Payment,
        outcome: PurchaseOutcome::Paid,
        subject,
        customer,
        subscription: None,
        offer: offer.map(|o| o.key.clone()),
        quantity,
        clouds,
        payment_refs,
        amount,
        currency,
        no_payment_required: false,
    };
    Ok(Ok(vec![fact(event, format!("razorpay:payment:{id}:paid"), FactBody::Purchase(purchase))]))
}

/// `order.paid`: the order's payment was captured. Its payload carries the payment entity
/// (and the order's), so it is read as that payment, exactly as `payment.captured` reads it:
/// the same fact, under the same key (`razorpay:payment:<id>:paid`), so an account
/// subscribed to either event, or both, counts the purchase once.
fn order_paid(catalog: &Catalog, event: &EventInfo, payload: &At<'_>, warnings: &mut Vec<String>) -> Result<Outcome, ParseError> {
    payment_captured(catalog, event, payload, warnings)
}

fn refund(event: &EventInfo, payload: &At<'_>) -> Result<Outcome, ParseError> {
    let rw = payload.req("refund")?;
    let r = rw.req("entity")?;
    let rid = r.req_str("id")?;
    let pay = r.req_str("payment_id")?;
    let refund_amount = r.req_i64("amount")?;
    // The payment entity, when included, gives the payment's amount and the total
    // refunded so far. Without it, the refund's own amount is all the event tells: the
    // fold reads it against the payment's amount from the payment's own fact (a refund
    // told before its payment waits for it), adding up the payment's refunds.
    let (amount, reversed) = match payload.get("payment") {
        Some(pw) => {
            let p = pw.req("entity")?;
            let amount = p.req_i64("amount")?;
            (amount, p.opt_i64("amount_refunded")?.unwrap_or(refund_amount))
        }
        None => (0, 0),
    };
    let rev = Reversal {
        id: rref(rid),
        payment_refs: vec![rref(pay)],
        amount,
        reversed,
        own_amount: refund_amount,
        currency: r.opt_str("currency")?.unwrap_or("").to_lowercase(),
        outcome: None,
    };
    Ok(Ok(vec![fact(event, format!("razorpay:refund:{rid}:processed"), FactBody::Refund(rev))]))
}

fn dispute(event: &EventInfo, payload: &At<'_>, outcome: Option<DisputeOutcome>) -> Result<Outcome, ParseError> {
    let dw = payload.req("dispute")?;
    let d = dw.req("entity")?;
    let id = d.req_str("id")?;
    let pay = d.req_str("payment_id")?;
    // The disputed amount, which may be part of the payment's: the dispute takes that
    // share back. The payment's amount is the payment entity's, when the event carries
    // the disputed payment (else the fold knows it from the payment's own fact).
    let disputed = d.opt_i64("amount")?.unwrap_or(0);
    let amount = match payload.get("payment").map(|w| w.req("entity")).transpose()? {
        Some(p) if p.opt_str("id")? == Some(pay) => p.opt_i64("amount")?.unwrap_or(0),
        _ => 0,
    };
    let rev = Reversal {
        id: rref(id),
        payment_refs: vec![rref(pay)],
        amount,
        reversed: disputed,
        own_amount: 0,
        currency: d.opt_str("currency")?.unwrap_or("").to_lowercase(),
        outcome,
    };
    let state = match outcome {
        None => "created",
        Some(DisputeOutcome::Won) => "closed:won",
        Some(DisputeOutcome::Lost) => "closed:lost",
        Some(DisputeOutcome::Refunded) => "closed:refunded",
    };
    Ok(Ok(vec![fact(event, format!("razorpay:dispute:{id}:{state}"), FactBody::Dispute(rev))]))
}

/// `payment.dispute.closed`: the outcome is the dispute's `status`. Razorpay's `closed`
/// ends a fraud inquiry without a chargeback (the merchant gave the transaction's details,
/// or refunded, which comes as a refund of its own): the dispute takes nothing back.
fn dispute_closed(event: &EventInfo, payload: &At<'_>) -> Result<Outcome, ParseError> {
    let d = payload.req("dispute")?.req("entity")?;
    match d.req_str("status")? {
        "won" | "closed" => dispute(event, payload, Some(DisputeOutcome::Won)),
        "lost" => dispute(event, payload, Some(DisputeOutcome::Lost)),
        s => Ok(Err(format!("dispute {} reported closed with status `{s}`; it stays open", d.req_str("id")?))),
    }
}
