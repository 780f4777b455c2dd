//! Billing: provider webhooks -> facts -> entitlement state.
//!
//! ```text
//!  raw Stripe / Razorpay body ──parse──▶ Parsed::Facts(Vec<Fact>) ──store──▶ fact set
//!                                        Parsed::Ignored (acknowledge)          │
//!                                                                               ▼
//!                                          BillingState ◀──reduce(catalog, facts, now)
//! ```
//!
//! - [`parse_stripe_event`] / [`parse_razorpay_event`] turn one raw webhook body
//!   into provider-neutral [`Fact`]s (or an `Ignored` outcome for event types
//!   that do not change entitlements). A malformed body is a [`ParseError`]
//!   naming the field. Signatures are checked before this, by [`crate::verify`].
//! - [`reduce`] folds a set of facts into a [`BillingState`]: idempotent
//!   (duplicates change nothing), order-independent (facts fold in the
//!   provider's time order, not arrival order) and lossless (facts that
//!   cannot be attributed yet wait in `pending`). See [`reducer`] for how.
//! - [`Reducer`] applies facts one at a time and always agrees with [`reduce`].
//! - [`attribute::attribute`] decides an operator's attribution of a kept event (one
//!   that named no buyer, or whose prices map to no offer, or is linked to a user the
//!   store has no record of, [`attribute::Request::unknown`]): an [`Attributed`] fact the fold
//!   gathers with the other links; [`attribute::known`] says what such an event is about.
//! - [`BillingState::entitlements_for`] gives a subject's grants and balances
//!   in the shape [`crate::decide`] reads; [`crate::billing::members::effective_entitlements`]
//!   adds the grants of organizations where a user holds a seat.
//!
//! A worker stores each fact under its `key` (insert-or-ignore), and to update
//! a subject loads the facts reachable from it through [`Fact::refs`]
//! (subject, its customers, subscriptions and payments) and reduces them.
//!
//! # Lifecycle rules
//! - Each subscription item's offer grants its products (a bundle's chosen
//!   products come from `metadata.clouds` on the checkout or subscription);
//!   an item's offer comes from its price (id, `lookup_key`, the price's
//!   metadata) before the app's `metadata.offer_key`, whose mistakes are
//!   warnings. A paid purchase that names no buyer, and a paid subscription or
//!   payment that names no offer of the catalog, wait in `pending` until a link
//!   or an operator's `attributed` fact says whose and what they are;
//!   grant ids are stable: `stripe:sub_123:video`, `razorpay:pay_9:premium`.
//! - Active: access until the paid-through date, which only moves forward
//!   (no update loses days). A renewal under a new subscription adds a grant
//!   of its own, so access lasts until the later of the two ends.
//! - Trialing (Stripe `trialing`, or a checkout of an offer with `trial_days`
//!   that charged nothing): `trial` grants until the trial end.
//! - Cancellation (`cancel_at_period_end`, Razorpay `cancelled` / `completed`):
//!   `canceled` grants that keep access until the period ends. A payment for a
//!   period that began before such a subscription ended gives that period, its
//!   access and its allowance (Razorpay charges the last cycle and completes the
//!   subscription in the same second); one for a later period gives nothing.
//! - Failed payment (`past_due`, `unpaid`, `invoice.payment_failed`, Razorpay
//!   `pending` / `halted`): `past_due` grants with `past_due_since` set to the
//!   first failure; access lasts for the catalog's `grace_period_days`. A paid
//!   invoice clears it.
//! - Deletion (Stripe `customer.subscription.deleted`), expiry, pause: access
//!   ends then. A late update never brings an ended subscription back. A pause is
//!   Stripe's or Razorpay's status `paused`, or a running Stripe subscription whose
//!   `pause_collection` is set (Stripe's "pause payment collection", which keeps the
//!   status `active`) until an update clears it. A paused
//!   subscription's grants carry `paused_since` while it is paused: it still runs
//!   with its provider and is resumed, never bought again, so no other plan of its
//!   products is offered beside it (`decide::running`).
//! - Refunds and disputes take back what the payment granted: its credit lots
//!   (in proportion for a partial refund, never below zero) and, for a full
//!   refund or an open or lost dispute, its access (from the reversal on; a
//!   later paid period restores a subscription).
//! - A dispute follows its final state. Open (created, updated, funds
//!   withdrawn) or lost: as above. Won (Stripe `won`, an inquiry's
//!   `warning_closed`, `prevented`; Razorpay `won`): it takes nothing back,
//!   ever. The fold skips every fact of a dispute the set knows was won, so the
//!   state is exactly the state without that dispute: the same grant window,
//!   the same lots, usage drawn as it would have been, and later facts
//!   (cancellation, deletion, expiry) in force. The outcome is gathered with
//!   the attribution, so the closing may arrive before the opening. Should a
//!   dispute be reported both won and lost, the loss counts (with a warning). A
//!   dispute Stripe closes `charge_refunded` (the merchant refunded the charge
//!   meanwhile) is skipped the same way: the refund's own event takes back what
//!   it refunded, so the same money is never taken back twice.
//! - Refunds and disputes find their payment by any of its ids. From Stripe's
//!   API 2025-03-31 on a charge or payment intent no longer names its invoice
//!   and the invoice lists its payments only when expanded, so the link comes
//!   from `invoice_payment.paid` (an [`InvoicePayment`] fact: payment intent or
//!   charge -> invoice), gathered with the attribution: a refund of that payment
//!   intent reverses the invoice whatever the arrival order, and waits in
//!   `pending` (naming the invoice) until the invoice itself is known.
//! - Credits: a paid invoice opens the period's allowance (the Razorpay AI app:
//!   refills on paid/charged only, not on activation), carrying over unused
//!   units by the pool's rollover rule (never a trial's allowance, opened by a
//!   $0 invoice before the trial's end: nobody paid for it, so it ends with the
//!   trial); one-time purchases add a lot per payment; a user's first fact
//!   brings the catalog's free amounts; usage is a fact keyed by its request id
//!   (see [`crate::credits`]).
//!
//! # The state as JSON
//! `BillingState` serialises as (timestamps are RFC 3339 UTC strings; money is
//! integer minor units; optional fields are omitted when empty):
//! ```json
//! {
//!   "as_of": "2026-03-01T00:00:00Z",
//!   "subjects": {
//!     "user:u1": {
//!       "subject": "user:u1",
//!       "grants": [ { "id": "stripe:sub_1:video", "product": "video", "tier": "pro",
//!                     "source": "stripe", "status": "active",
//!                     "valid_from": "...", "valid_to": "...", "past_due_since": "...",
//!                     "offer": "VIDEO_PRO_MONTHLY", "source_ref": "stripe:sub_1",
//!                     "catalog_version": 1, "renewal_version": 2,
//!                     "period_start": "...", "paused_since": "..." } ],
//!       "balances": { "video_seconds": 5400 },
//!       "wallet": {
//!         "lots": [ { "key": "allowance:stripe:sub_1:1775001600:video_seconds",
//!                     "pool": "video_seconds", "kind": "allowance|rollover|purchase|free|adjustment",
//!                     "granted": 7200, "remaining": 5400, "valid_from": "...", "valid_to": "...",
//!                     "source": "stripe:in_1", "subscription": "stripe:sub_1",
//!                     "revoked": 0, "expired": 0, "closed": false, "rolled_over": false } ],
//!         "ledger": [ { "key": "usage:req_1:allowance:...", "pool": "video_seconds",
//!                       "lot": "allowance:...", "kind": "allowance|rollover|purchase|free|adjustment|usage|expire|revoke",
//!                       "delta": -1800, "at": "...", "source": "usage:req_1" } ]
//!       },
//!       "overage": [ { "request_id": "req_9", "pool": "video_seconds", "units": 30,
//!                      "cost": 81, "currency": "usd", "at": "..." } ],
//!       "customers": [ "stripe:cus_1" ],
//!       "since": "..."
//!     }
//!   },
//!   "subscriptions": {
//!     "stripe:sub_1": { "id": "stripe:sub_1", "provider": "stripe", "subject": "user:u1",
//!       "customer": "stripe:cus_1",
//!       "status": "incomplete|trialing|active|past_due|paused|canceled|ended",
//!       "items": [ { "price": "price_1", "offer": "VIDEO_PRO_MONTHLY", "quantity": 1 } ],
//!       "clouds": [], "started_at": "...", "period_start": "...", "period_end": "...",
//!       "paid_through": "...", "estimated_until": "...", "trial_end": "...",
//!       "cancel_at_period_end": true, "cancel_at": "...", "ended_at": "...", "paused_at": "...",
//!       "past_due_since": "...", "revoked": { "at": "...", "through": "...", "by": "stripe:ch_1" },
//!       "seats": 5, "version": "...", "catalog_version": 1, "renewal_version": 2, "first_seen": "..." }
//!   },
//!   "customers": { "stripe:cus_1": "user:u1" },
//!   "payments": {
//!     "stripe:in_1": { "id": "stripe:in_1", "refs": ["stripe:in_1", "stripe:pi_1"],
//!       "subject": "user:u1", "subscription": "stripe:sub_1", "period_end": "...",
//!       "offer": "VIDEO_PRO_MONTHLY", "amount": 7900, "currency": "usd", "at": "...",
//!       "lots": ["allowance:..."], "grants": [], "reversed": 0,
//!       "revoked_units": {}, "taken": {}, "revoked_at": "..." }
//!   },
//!   "seats": {
//!     "org:o1": { "org": "org:o1", "seats": 5,
//!       "holders": [ { "user": "user:u1", "since": "...", "request_id": "r1", "over_capacity": false } ],
//!       "refused": [ { "reason": "no_seats_left", "org": "org:o1", "user": "user:u9",
//!                      "seats": 5, "used": 5, "at": "...", "request_id": "r9" } ] }
//!   },
//!   "pending": [ { "key": "stripe:subscription:sub_2:...", "type": "subscription",
//!                  "event": "evt_...", "at": "...", "reason": "no user or organization is known for stripe:sub_2 yet",
//!                  "waiting_for": ["stripe:sub_2", "stripe:cus_2"] } ],
//!   "warnings": [ "..." ],
//!   "defaults": { "free_drafts": 2 },
//!   "facts": { "unique": 42, "stale": 1, "pending": 1 }
//! }
//! ```
//! Subject keys are `user:<id>` or `org:<id>`; provider object keys are
//! `<provider>:<id>`.

pub mod attribute;
pub mod effects;
pub mod facts;
mod json;
pub mod members;
pub mod parse;
pub mod razorpay;
pub mod reducer;
pub mod state;
pub mod stripe;

pub use facts::{
    canonical_cmp, Attributed, CreditAdjustment, CustomerLink, DisputeOutcome, Fact, FactBody, InvoiceFailed, InvoicePaid,
    InvoicePayment, Item, Provider, Purchase, PurchaseMode, PurchaseOutcome, Reversal, SeatChange, SubStatus, Subject,
    SubscriptionSnapshot, UsageFact, UsageTake, GrantGiven,
};
pub use parse::{EventInfo, ParseError, Parsed};
pub use razorpay::{parse_razorpay_event, parse_razorpay_value};
pub use reducer::{reduce, reduce_set, reduce_sold, reduce_with_usage, Applied, FactSet, Insert, Reducer, UsageTotals};
pub use state::{
    BillingState, FactCounts, FailedPayment, OverageEntry, PaymentRecord, PendingFact, Resolution, Revocation, SubjectState, SubscriptionState,
};
pub use stripe::{parse_stripe_event, parse_stripe_event_in, parse_stripe_value, StripeMode};

use crate::catalog::Catalog;

/// Parses a body from either provider (`provider` is `stripe` or `razorpay`).
pub fn parse_event(
    catalog: &Catalog,
    provider: Provider,
    raw: &str,
    event_id: Option<&str>,
) -> Result<Parsed, ParseError> {
    match provider {
        Provider::Stripe => parse_stripe_event(catalog, raw),
        Provider::Razorpay => parse_razorpay_event(catalog, raw, event_id),
        Provider::App => {
            let f: Fact = serde_json::from_str(raw).map_err(|e| ParseError::InvalidJson { message: e.to_string() })?;
            Ok(Parsed::Facts {
                event: EventInfo {
                    provider: Provider::App,
                    id: f.key.clone(),
                    event_type: f.body.type_name().into(),
                    created: f.at,
                },
                facts: vec![f],
                warnings: Vec::new(),
            })
        }
    }
}

/// Tells a provider's event body apart by its shape: Stripe events have
/// `"object": "event"`, Razorpay's `"entity": "event"`; a stored fact has a
/// `key` and a `type`.
pub fn detect_provider(raw: &str) -> Option<Provider> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    if v.get("object").and_then(|x| x.as_str()) == Some("event") {
        Some(Provider::Stripe)
    } else if v.get("entity").and_then(|x| x.as_str()) == Some("event") {
        Some(Provider::Razorpay)
    } else if v.get("key").is_some() && v.get("type").is_some() {
        Some(Provider::App)
    } else {
        None
    }
}
