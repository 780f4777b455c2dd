// LOCAL STAND-IN FOR STRIPE (development and tests only): Stripe's objects and the
// webhook events it sends for them, in the current API shape (period dates on the
// subscription items, the invoice's subscription under parent.subscription_details).
//
// The stand-in (lib/standin/stripe.ts) records what the worker asked Stripe for (a
// Checkout Session, an update of a subscription); the builders here turn exactly that
// record into the objects and events Stripe would send: nothing is taken from anywhere
// else. `deliver` signs an event with Stripe's own npm library exactly as Stripe signs
// deliveries and posts it to the worker's /webhooks/stripe; the worker cannot tell it
// apart from a real delivery, and nothing in the worker is special-cased for it.

import { randomBytes } from 'node:crypto';

import Stripe from 'stripe';

import { newId, type Delivery, type Obj } from './standin/state';

export const API_VERSION = '2025-09-30.clover';

/** One Stripe event around `object`. */
export function event(type: string, object: Obj, created: number, previous?: Obj): Obj {
  return {
    id: newId('evt'),
    object: 'event',
    api_version: API_VERSION,
    created,
    data: previous ? { object, previous_attributes: previous } : { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: newId('req'), idempotency_key: randomBytes(8).toString('hex') },
    type,
  };
}

/** A price of the account, or one made from a Checkout line's `price_data`. */
export function priceObject(p: {
  id: string;
  product: string;
  currency: string;
  unitAmount: number;
  interval: string | null;
  lookupKey: string | null;
  nickname: string | null;
  metadata: Record<string, string>;
  created: number;
}): Obj {
  return {
    id: p.id,
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: p.created,
    currency: p.currency,
    custom_unit_amount: null,
    livemode: false,
    lookup_key: p.lookupKey,
    metadata: p.metadata,
    nickname: p.nickname,
    product: p.product,
    recurring: p.interval ? { interval: p.interval, interval_count: 1, meter: null, trial_period_days: null, usage_type: 'licensed' } : null,
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: p.interval ? 'recurring' : 'one_time',
    unit_amount: p.unitAmount,
    unit_amount_decimal: String(p.unitAmount),
  };
}

export function customerObject(id: string, email: string | null, created: number): Obj {
  return {
    id,
    object: 'customer',
    balance: 0,
    created,
    currency: null,
    default_source: null,
    delinquent: false,
    description: null,
    email,
    invoice_prefix: id.slice(4, 12).toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: {},
    name: null,
    phone: null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  };
}

/** The subscription a paid subscription-mode session creates. */
export function subscriptionObject(s: {
  id: string;
  customer: string;
  line: { price: Obj; quantity: number };
  metadata: Record<string, string>;
  start: number;
  periodEnd: number;
  trialEnd: number | null;
  invoice: string;
}): Obj {
  return {
    id: s.id,
    object: 'subscription',
    application: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: s.trialEnd ?? s.start,
    billing_mode: { type: 'flexible' },
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created: s.start,
    currency: s.line.price.currency,
    customer: s.customer,
    days_until_due: null,
    default_payment_method: null,
    description: null,
    discounts: [],
    ended_at: null,
    items: {
      object: 'list',
      data: [
        {
          id: newId('si'),
          object: 'subscription_item',
          created: s.start,
          current_period_start: s.start,
          current_period_end: s.periodEnd,
          discounts: [],
          metadata: {},
          price: s.line.price,
          quantity: s.line.quantity,
          subscription: s.id,
          tax_rates: [],
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/subscription_items?subscription=${s.id}`,
    },
    latest_invoice: s.invoice,
    livemode: false,
    metadata: s.metadata,
    pause_collection: null,
    pending_update: null,
    schedule: null,
    start_date: s.start,
    status: s.trialEnd ? 'trialing' : 'active',
    test_clock: null,
    trial_end: s.trialEnd,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
    trial_start: s.trialEnd ? s.start : null,
  };
}

/** The subscription's first (or a later) invoice, paid. */
export function invoiceObject(i: {
  id: string;
  subscription: Obj;
  reason: 'subscription_create' | 'subscription_update' | 'subscription_cycle';
  amount: number;
  periodStart: number;
  periodEnd: number;
  paymentIntent: string | null;
  at: number;
}): Obj {
  const item = (i.subscription.items as { data: Obj[] }).data[0];
  const price = item.price as Obj;
  return {
    id: i.id,
    object: 'invoice',
    account_country: 'US',
    amount_due: i.amount,
    amount_overpaid: 0,
    amount_paid: i.amount,
    amount_remaining: 0,
    attempt_count: i.amount > 0 ? 1 : 0,
    attempted: i.amount > 0,
    auto_advance: false,
    billing_reason: i.reason,
    collection_method: 'charge_automatically',
    created: i.at,
    currency: price.currency,
    customer: i.subscription.customer,
    livemode: false,
    metadata: {},
    number: `${(i.subscription.customer as string).slice(4, 12).toUpperCase()}-0001`,
    parent: {
      quote_details: null,
      subscription_details: { metadata: i.subscription.metadata, subscription: i.subscription.id },
      type: 'subscription_details',
    },
    period_end: i.periodStart,
    period_start: i.periodStart,
    status: 'paid',
    status_transitions: { finalized_at: i.at, marked_uncollectible_at: null, paid_at: i.at, voided_at: null },
    subtotal: i.amount,
    total: i.amount,
    lines: {
      object: 'list',
      data: [
        {
          id: newId('il'),
          object: 'line_item',
          amount: i.amount,
          currency: price.currency,
          description: `${item.quantity} × ${(price.nickname as string | null) ?? price.product}`,
          invoice: i.id,
          livemode: false,
          metadata: {},
          parent: {
            subscription_item_details: { proration: i.reason === 'subscription_update', subscription: i.subscription.id, subscription_item: item.id },
            type: 'subscription_item_details',
          },
          period: { start: i.periodStart, end: i.periodEnd },
          pricing: { price_details: { price: price.id, product: price.product }, type: 'price_details', unit_amount_decimal: price.unit_amount_decimal },
          quantity: item.quantity,
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/invoices/${i.id}/lines`,
    },
  };
}

/** `invoice_payment.paid`'s object: which payment intent paid the invoice. */
export function invoicePaymentObject(invoice: Obj, paymentIntent: string, at: number): Obj {
  return {
    id: newId('inpay'),
    object: 'invoice_payment',
    amount_paid: invoice.amount_paid,
    amount_requested: invoice.amount_due,
    created: at,
    currency: invoice.currency,
    invoice: invoice.id,
    is_default: true,
    livemode: false,
    payment: { type: 'payment_intent', payment_intent: paymentIntent },
    status: 'paid',
    status_transitions: { canceled_at: null, paid_at: at },
  };
}

let signer: Stripe | null = null;

/** Signs and posts one event to the worker, as Stripe delivers it. */
export async function deliver(workerUrl: string, secret: string, ev: Obj): Promise<Delivery> {
  signer ??= new Stripe('sk_test_local_stand_in_never_used');
  const payload = JSON.stringify(ev);
  const header = signer.webhooks.generateTestHeaderString({ payload, secret });
  const at = Math.floor(Date.now() / 1000);
  try {
    const r = await fetch(`${workerUrl.replace(/\/+$/, '')}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header, 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
      body: payload,
      signal: AbortSignal.timeout(20_000),
    });
    return { type: ev.type as string, event: ev.id as string, status: r.status, body: (await r.text()).slice(0, 2000), at };
  } catch (e) {
    return { type: ev.type as string, event: ev.id as string, status: 0, body: `the worker at ${workerUrl} did not answer: ${(e as Error).message}`, at };
  }
}
