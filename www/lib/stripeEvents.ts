// CHECKOUT STAND-IN (local development and tests only).
//
// Stripe Checkout's hosted page cannot run here, so this builds the webhook events a
// completed Checkout sends — in the current API shape (period dates on the
// subscription items, the invoice's subscription under parent.subscription_details) —
// signs them with Stripe's own npm library exactly as Stripe signs deliveries, and
// posts them to the worker's /webhooks/stripe. The worker cannot tell them apart from
// real deliveries; nothing in the worker is special-cased for them.

import { createHash, randomBytes } from 'node:crypto';

import Stripe from 'stripe';
import type { CatalogDoc, CatalogOffer } from 'tollgate-react/server';

export const API_VERSION = '2025-09-30.clover';

const id = (prefix: string) => `${prefix}_tgl${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`;

export function customerIdFor(userId: string): string {
  return `cus_tgl${createHash('sha256').update(userId).digest('hex').slice(0, 14)}`;
}

function event(type: string, object: object, created: number) {
  return {
    id: id('evt'),
    object: 'event',
    api_version: API_VERSION,
    created,
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: id('req'), idempotency_key: randomBytes(8).toString('hex') },
    type,
  };
}

function priceOf(offer: CatalogOffer) {
  const recurring = offer.price.interval === 'one_time' ? null : { interval: offer.price.interval, interval_count: 1, usage_type: 'licensed' };
  return {
    id: offer.stripe_price_ids?.[0] ?? `price_tgl_${offer.key.toLowerCase()}`,
    object: 'price',
    active: true,
    currency: offer.price.currency,
    unit_amount: offer.price.amount,
    type: recurring ? 'recurring' : 'one_time',
    recurring,
    product: `prod_tgl_${offer.key.toLowerCase()}`,
    metadata: { offer_key: offer.key },
  };
}

export interface Purchase {
  userId: string;
  email: string | null;
  offer: CatalogOffer;
  clouds: string[];
  now: number;
  /** Period end (unix seconds) for a subscription; default one interval from now. */
  periodEnd?: number;
}

function metadata(p: { userId: string; offer: CatalogOffer; clouds: string[] }) {
  const m: Record<string, string> = { offer_key: p.offer.key, user_id: p.userId };
  if (p.clouds.length) m.clouds = p.clouds.join(',');
  return m;
}

export function subscriptionObject(p: Purchase & { subscription: string; periodStart: number; periodEnd: number; cancelAtPeriodEnd?: boolean; status?: string }) {
  return {
    id: p.subscription,
    object: 'subscription',
    status: p.status ?? 'active',
    customer: customerIdFor(p.userId),
    currency: p.offer.price.currency,
    created: p.periodStart,
    start_date: p.periodStart,
    billing_cycle_anchor: p.periodStart,
    cancel_at_period_end: Boolean(p.cancelAtPeriodEnd),
    cancel_at: p.cancelAtPeriodEnd ? p.periodEnd : null,
    canceled_at: p.cancelAtPeriodEnd ? p.now : null,
    ended_at: null,
    collection_method: 'charge_automatically',
    latest_invoice: null,
    livemode: false,
    metadata: metadata(p),
    items: {
      object: 'list',
      has_more: false,
      url: `/v1/subscription_items?subscription=${p.subscription}`,
      data: [
        {
          id: id('si'),
          object: 'subscription_item',
          created: p.periodStart,
          current_period_start: p.periodStart,
          current_period_end: p.periodEnd,
          metadata: {},
          price: priceOf(p.offer),
          quantity: 1,
          subscription: p.subscription,
        },
      ],
    },
  };
}

function periodEndOf(p: Purchase): number {
  if (p.periodEnd) return p.periodEnd;
  const d = new Date(p.now * 1000);
  if (p.offer.price.interval === 'year') d.setUTCFullYear(d.getUTCFullYear() + 1);
  else d.setUTCMonth(d.getUTCMonth() + 1);
  return Math.floor(d.getTime() / 1000);
}

/** The events of one completed Checkout, in the order Stripe usually sends them. */
export function checkoutEvents(p: Purchase): { events: object[]; subscription: string | null } {
  const amount = p.offer.price.amount;
  const cs = id('cs_test');
  const base = {
    id: cs,
    object: 'checkout.session',
    amount_subtotal: amount,
    amount_total: amount,
    client_reference_id: p.userId,
    created: p.now,
    currency: p.offer.price.currency,
    customer: customerIdFor(p.userId),
    customer_details: { email: p.email },
    customer_email: p.email,
    livemode: false,
    metadata: metadata(p),
    payment_status: 'paid',
    status: 'complete',
    success_url: 'http://127.0.0.1/tools?checkout=success',
    cancel_url: 'http://127.0.0.1/tools?checkout=cancel',
    url: null,
  };
  if (p.offer.price.interval === 'one_time') {
    const pi = id('pi');
    return {
      subscription: null,
      events: [event('checkout.session.completed', { ...base, mode: 'payment', payment_intent: pi, subscription: null, invoice: null }, p.now)],
    };
  }
  const subscription = id('sub');
  const periodStart = p.now;
  const periodEnd = periodEndOf(p);
  const sub = subscriptionObject({ ...p, subscription, periodStart, periodEnd });
  const invoice = {
    id: id('in'),
    object: 'invoice',
    status: 'paid',
    paid: true,
    amount_due: amount,
    amount_paid: amount,
    amount_remaining: 0,
    attempt_count: 1,
    billing_reason: 'subscription_create',
    currency: p.offer.price.currency,
    customer: customerIdFor(p.userId),
    created: p.now,
    period_start: periodStart,
    period_end: periodStart,
    livemode: false,
    metadata: {},
    parent: {
      type: 'subscription_details',
      quote_details: null,
      subscription_details: { metadata: metadata(p), subscription },
    },
    lines: {
      object: 'list',
      has_more: false,
      data: [
        {
          id: id('il'),
          object: 'line_item',
          amount,
          currency: p.offer.price.currency,
          period: { start: periodStart, end: periodEnd },
          pricing: { price_details: { price: priceOf(p.offer).id, product: priceOf(p.offer).product }, type: 'price_details' },
          quantity: 1,
        },
      ],
    },
  };
  return {
    subscription,
    events: [
      event('customer.subscription.created', sub, p.now),
      event('invoice.paid', invoice, p.now),
      event('checkout.session.completed', { ...base, mode: 'subscription', payment_intent: null, subscription, invoice: invoice.id }, p.now),
    ],
  };
}

/** customer.subscription.updated for "cancel at period end" (access stays until then). */
export function cancelAtPeriodEndEvent(p: Purchase & { subscription: string; periodStart: number; periodEnd: number }) {
  return event('customer.subscription.updated', subscriptionObject({ ...p, cancelAtPeriodEnd: true }), p.now);
}

let signer: Stripe | null = null;

/** Signs and posts one event to the worker, as Stripe delivers it. */
export async function deliver(workerUrl: string, secret: string, ev: object): Promise<{ status: number; body: string }> {
  signer ??= new Stripe('sk_test_local_stand_in_never_used');
  const payload = JSON.stringify(ev);
  const header = signer.webhooks.generateTestHeaderString({ payload, secret });
  const r = await fetch(`${workerUrl.replace(/\/+$/, '')}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header, 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
    body: payload,
  });
  return { status: r.status, body: (await r.text()).slice(0, 2000) };
}

export function offerByKey(catalog: CatalogDoc, key: string): CatalogOffer | undefined {
  return catalog.offers.find((o) => o.key === key);
}
