// Builders of provider events in the shapes the providers send (Stripe's API version
// 2025-03-31 "basil" by default, the older "acacia" shape on request; Razorpay's
// webhook payloads). Ids are fresh per call; times are unix seconds.
import { id, stripeEvent } from './helpers.mjs';

export const DAY = 86400;

/** One customer's subscription to one offer, and the events it goes through. */
export class StripeSubscriber {
  constructor({ subject, offer, price = `price_${offer.toLowerCase()}`, quantity = 1, clouds, start, days = 30 }) {
    this.subject = subject; // { user_id } or { organization_id }
    this.offer = offer;
    this.price = price;
    this.quantity = quantity;
    this.clouds = clouds;
    this.customer = id('cus');
    this.sub = id('sub');
    this.start = start;
    this.days = days;
    this.attributed = false;
  }

  /** Checkout metadata names the subject; the subscription's own metadata only when
   * `attributed` (Stripe copies it from subscription_data.metadata when the app sets it). */
  meta({ subject = true } = {}) {
    const m = { offer_key: this.offer };
    if (!subject) return m;
    if (this.subject.user_id) m.user_id = this.subject.user_id;
    if (this.subject.organization_id) m.organization_id = this.subject.organization_id;
    if (this.clouds) m.clouds = this.clouds.join(',');
    return m;
  }

  checkout({ at = this.start, paymentStatus = 'paid' } = {}) {
    const cs = {
      id: id('cs'), object: 'checkout.session', mode: 'subscription', status: 'complete',
      payment_status: paymentStatus, customer: this.customer, subscription: this.sub,
      client_reference_id: this.subject.user_id ?? null, metadata: this.meta(),
      amount_total: 2900, currency: 'usd', created: at,
    };
    return stripeEvent('checkout.session.completed', cs, { created: at });
  }

  subscription(type, { at, status = 'active', periodStart, periodEnd, cancelAtPeriodEnd = false, endedAt = null, quantity = this.quantity }) {
    const obj = {
      id: this.sub, object: 'subscription', customer: this.customer, status,
      cancel_at_period_end: cancelAtPeriodEnd, cancel_at: cancelAtPeriodEnd ? periodEnd : null,
      canceled_at: cancelAtPeriodEnd || endedAt ? at : null, ended_at: endedAt, start_date: this.start,
      created: this.start, metadata: this.meta({ subject: this.attributed }), trial_end: null,
      items: {
        object: 'list',
        data: [{
          id: `si_${this.sub.slice(4)}`, object: 'subscription_item', quantity,
          price: { id: this.price, object: 'price', metadata: { offer_key: this.offer } },
          current_period_start: periodStart, current_period_end: periodEnd,
        }],
      },
    };
    return stripeEvent(type, obj, { created: at });
  }

  created({ at = this.start, periodEnd = this.start + this.days * DAY } = {}) {
    return this.subscription('customer.subscription.created', { at, periodStart: this.start, periodEnd });
  }

  updated(opts) {
    return this.subscription('customer.subscription.updated', opts);
  }

  deleted({ at, periodStart, periodEnd }) {
    return this.subscription('customer.subscription.deleted', { at, status: 'canceled', periodStart, periodEnd, endedAt: at });
  }

  invoicePaid({ at, periodStart, periodEnd, amount = 2900, quantity = this.quantity }) {
    const inv = {
      id: id('in'), object: 'invoice', customer: this.customer, status: 'paid', paid: true,
      amount_paid: amount, amount_due: amount, currency: 'usd', created: at,
      billing_reason: periodStart === this.start ? 'subscription_create' : 'subscription_cycle',
      parent: { type: 'subscription_details', subscription_details: { subscription: this.sub, metadata: {} } },
      period_start: periodStart, period_end: periodEnd,
      lines: {
        object: 'list',
        data: [{
          id: id('il'), object: 'line_item', amount, currency: 'usd', quantity,
          period: { start: periodStart, end: periodEnd },
          pricing: { type: 'price_details', price_details: { price: this.price, product: 'prod_x' } },
          parent: { type: 'subscription_item_details', subscription_item_details: { subscription: this.sub } },
        }],
      },
      payments: { object: 'list', data: [{ payment: { type: 'payment_intent', payment_intent: id('pi') } }] },
    };
    return stripeEvent('invoice.paid', inv, { created: at });
  }

  invoiceFailed({ at, attempt = 1 }) {
    const inv = {
      id: id('in'), object: 'invoice', customer: this.customer, status: 'open', paid: false,
      attempt_count: attempt, amount_due: 2900, currency: 'usd', created: at,
      parent: { type: 'subscription_details', subscription_details: { subscription: this.sub, metadata: {} } },
      lines: { object: 'list', data: [] },
    };
    return stripeEvent('invoice.payment_failed', inv, { created: at });
  }
}

/** A one-time purchase (token bundle) through Stripe Checkout. */
export function stripeOneTime({ subject, offer, at, amount = 1900 }) {
  const cs = {
    id: id('cs'), object: 'checkout.session', mode: 'payment', status: 'complete', payment_status: 'paid',
    customer: id('cus'), subscription: null, payment_intent: id('pi'),
    client_reference_id: subject.user_id ?? null,
    metadata: { offer_key: offer, ...(subject.organization_id ? { organization_id: subject.organization_id } : {}) },
    amount_total: amount, currency: 'usd', created: at,
  };
  return stripeEvent('checkout.session.completed', cs, { created: at });
}

/** Razorpay webhook payloads for one subscription (the Razorpay AI app). */
export class RazorpaySubscriber {
  constructor({ userId, plan, start, days = 30 }) {
    this.userId = userId;
    this.plan = plan;
    this.sub = id('sub');
    this.customer = id('cust');
    this.start = start;
    this.days = days;
  }
  entity({ status, currentStart, currentEnd, at }) {
    return {
      id: this.sub, entity: 'subscription', plan_id: this.plan, customer_id: this.customer, status,
      current_start: currentStart, current_end: currentEnd, ended_at: status === 'completed' || status === 'cancelled' ? at : null,
      quantity: 1, notes: { user_id: this.userId }, charge_at: currentEnd, start_at: this.start,
      end_at: null, auth_attempts: 0, total_count: 12, paid_count: 1, created_at: this.start,
    };
  }
  event(type, { at, status, currentStart, currentEnd, payment }) {
    const payload = { subscription: { entity: this.entity({ status, currentStart, currentEnd, at }) } };
    if (payment) payload.payment = { entity: payment };
    return {
      entity: 'event', account_id: 'acc_test', event: type, contains: Object.keys(payload),
      payload, created_at: at,
    };
  }
  payment({ at, amount = 49900 }) {
    return {
      id: id('pay'), entity: 'payment', amount, currency: 'INR', status: 'captured', order_id: id('order'),
      invoice_id: id('inv'), method: 'card', captured: true, customer_id: this.customer, created_at: at,
      notes: { user_id: this.userId },
    };
  }
}
