// LOCAL STAND-IN FOR RAZORPAY'S API (development and tests only; TOLLGATE_DEV_AUTH=1).
//
// The Razorpay AI app's worker is pointed here with `RAZORPAY_API_BASE` =
// `<www>/api/dev/razorpay/razorpay-ai` and a clearly fake key pair. This answers the
// requests the worker makes, as Razorpay answers them (JSON, HTTP Basic auth):
// subscriptions (create, whose `short_url` is the stand-in's page app/dev/checkout/[id];
// fetch; cancel, now or at the cycle end) and orders (a one-time top-up). Paying on the
// page sends the webhooks Razorpay sends for exactly that subscription or order, signed
// as Razorpay signs them (HMAC-SHA256 of the body with the webhook secret, hex, in
// `X-Razorpay-Signature`), to the app's worker.

import { createHmac } from 'node:crypto';

import { razorpayWebhookSecret } from '../config';
import { addInterval, catalogOf, newId, nowSecs, originOf, store, workerOf, type Answer, type App, type Delivery, type Obj } from './state';


function rzpError(status: number, description: string, field?: string): Answer {
  return {
    status,
    body: { error: { code: 'BAD_REQUEST_ERROR', description, source: 'business', step: 'payment_initiation', reason: 'input_validation_failed', metadata: {}, ...(field ? { field } : {}) } },
  };
}

/** The account's plans: the catalog's `razorpay_plan_ids`, priced from their offer. */
async function plans(app: App): Promise<Obj[]> {
  const doc = await catalogOf(app);
  const out: Obj[] = [];
  for (const o of doc.offers) {
    const ids = (o as { razorpay_plan_ids?: string[] }).razorpay_plan_ids ?? [];
    for (const id of ids) {
      out.push({
        id,
        entity: 'plan',
        interval: 1,
        period: o.price.interval === 'year' ? 'yearly' : 'monthly',
        item: { id: `item_${o.key.toLowerCase()}`, active: true, name: o.label, amount: o.price.amount, unit_amount: o.price.amount, currency: o.price.currency.toUpperCase() },
        notes: { offer_key: o.key },
        created_at: 1_700_000_000,
      });
    }
  }
  return out;
}

function notesOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) out[k] = String(x);
  return out;
}

async function createSubscription(app: App, b: Record<string, unknown>, origin: string): Promise<Answer> {
  const planId = typeof b.plan_id === 'string' ? b.plan_id : '';
  if (!planId) return rzpError(400, 'The plan id field is required.', 'plan_id');
  const plan = (await plans(app)).find((p) => p.id === planId);
  if (!plan) return rzpError(400, 'The id provided does not exist', 'plan_id');
  const total = Number(b.total_count);
  if (!Number.isInteger(total) || total < 1) return rzpError(400, 'The total count field is required.', 'total_count');
  const quantity = b.quantity === undefined ? 1 : Number(b.quantity);
  if (!Number.isInteger(quantity) || quantity < 1) return rzpError(400, 'The quantity must be at least 1.', 'quantity');
  const now = nowSecs();
  const id = newId('sub');
  const entity: Obj = {
    id,
    entity: 'subscription',
    plan_id: planId,
    customer_id: typeof b.customer_id === 'string' ? b.customer_id : null,
    status: 'created',
    current_start: null,
    current_end: null,
    ended_at: null,
    quantity,
    notes: notesOf(b.notes),
    charge_at: typeof b.start_at === 'number' ? b.start_at : now,
    start_at: typeof b.start_at === 'number' ? b.start_at : now,
    end_at: null,
    auth_attempts: 0,
    total_count: total,
    paid_count: 0,
    customer_notify: b.customer_notify === undefined ? true : Boolean(b.customer_notify),
    created_at: now,
    expire_by: typeof b.expire_by === 'number' ? b.expire_by : null,
    short_url: `${origin}/dev/checkout/${id}`,
    has_scheduled_changes: false,
    change_scheduled_at: null,
    source: 'api',
    offer_id: null,
    remaining_count: total,
  };
  store().razorpay.subscriptions.set(id, { app, entity, deliveries: [] });
  return { status: 200, body: entity };
}

function createOrder(app: App, b: Record<string, unknown>): Answer {
  const amount = Number(b.amount);
  if (!Number.isInteger(amount) || amount < 100) return rzpError(400, 'The amount must be atleast INR 1.00', 'amount');
  if (typeof b.currency !== 'string' || !b.currency) return rzpError(400, 'The currency field is required.', 'currency');
  const id = newId('order');
  const entity: Obj = {
    id,
    entity: 'order',
    amount,
    amount_paid: 0,
    amount_due: amount,
    currency: b.currency.toUpperCase(),
    receipt: typeof b.receipt === 'string' ? b.receipt : null,
    offer_id: null,
    status: 'created',
    attempts: 0,
    notes: notesOf(b.notes),
    created_at: nowSecs(),
  };
  store().razorpay.orders.set(id, { app, entity, deliveries: [] });
  return { status: 200, body: entity };
}

function event(type: string, payload: Record<string, Obj>, at: number): Obj {
  const wrapped: Record<string, { entity: Obj }> = {};
  for (const [k, v] of Object.entries(payload)) wrapped[k] = { entity: structuredClone(v) };
  return { entity: 'event', account_id: 'acc_local_stand_in', event: type, contains: Object.keys(payload), payload: wrapped, created_at: at };
}

/** Signs and posts one event to the worker's /webhooks/razorpay, as Razorpay delivers it. */
async function deliver(app: App, ev: Obj): Promise<Delivery> {
  const secret = razorpayWebhookSecret();
  const at = nowSecs();
  const id = newId('evt');
  if (!secret) return { type: ev.event as string, event: id, status: 0, body: 'RAZORPAY_WEBHOOK_SECRET (the worker\'s webhook secret) is not set in www', at };
  const body = JSON.stringify(ev);
  const signature = createHmac('sha256', secret).update(body).digest('hex');
  try {
    const r = await fetch(`${workerOf(app)}/webhooks/razorpay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-razorpay-signature': signature, 'x-razorpay-event-id': id, 'user-agent': 'Razorpay-Webhook/v1' },
      body,
      signal: AbortSignal.timeout(20_000),
    });
    return { type: ev.event as string, event: id, status: r.status, body: (await r.text()).slice(0, 2000), at };
  } catch (e) {
    return { type: ev.event as string, event: id, status: 0, body: `the worker did not answer: ${(e as Error).message}`, at };
  }
}

async function send(app: App, evs: Obj[]): Promise<Delivery[]> {
  const out: Delivery[] = [];
  for (const ev of evs) {
    const d = await deliver(app, ev);
    out.push(d);
    if (d.status < 200 || d.status >= 300) {
      console.error(`razorpay stand-in: the ${app} worker answered ${d.status} to ${d.type}: ${d.body}`);
      break;
    }
  }
  return out;
}

function cancel(app: App, id: string, b: Record<string, unknown>): Answer {
  const rec = store().razorpay.subscriptions.get(id);
  if (!rec || rec.app !== app) return rzpError(400, 'The id provided does not exist', 'id');
  const sub = rec.entity;
  if (sub.status === 'cancelled' || sub.status === 'completed' || sub.status === 'expired') {
    return rzpError(400, 'Subscription is not cancellable in cancelled status.');
  }
  const atCycleEnd = b.cancel_at_cycle_end === 1 || b.cancel_at_cycle_end === true || b.cancel_at_cycle_end === '1';
  if (atCycleEnd) {
    // Razorpay keeps the subscription active and cancels it when the cycle ends
    // (`subscription.cancelled` then); until then nothing is sent.
    sub.has_scheduled_changes = true;
    sub.change_scheduled_at = sub.current_end;
    sub.end_at = sub.current_end;
    return { status: 200, body: sub };
  }
  const now = nowSecs();
  sub.status = 'cancelled';
  sub.ended_at = now;
  setTimeout(() => void send(app, [event('subscription.cancelled', { subscription: sub }, now)]).then((d) => rec.deliveries.push(...d)), 0);
  return { status: 200, body: sub };
}

/** `PATCH /v1/subscriptions/:id`: another plan (or quantity) now, or at the cycle end. */
async function update(app: App, id: string, b: Record<string, unknown>): Promise<Answer> {
  const rec = store().razorpay.subscriptions.get(id);
  if (!rec || rec.app !== app) return rzpError(400, 'The id provided does not exist', 'id');
  const sub = rec.entity;
  if (sub.status !== 'active' && sub.status !== 'authenticated') return rzpError(400, `Subscription cannot be updated in ${sub.status} status.`);
  const planId = typeof b.plan_id === 'string' ? b.plan_id : (sub.plan_id as string);
  if (!(await plans(app)).some((p) => p.id === planId)) return rzpError(400, 'The id provided does not exist', 'plan_id');
  const quantity = b.quantity === undefined ? (sub.quantity as number) : Number(b.quantity);
  if (b.schedule_change_at === 'cycle_end') {
    // Applied by Razorpay when the cycle ends (`subscription.updated` then); recorded here.
    Object.assign(sub, { has_scheduled_changes: true, change_scheduled_at: sub.current_end });
    rec.scheduled = { plan_id: planId, quantity };
    return { status: 200, body: sub };
  }
  Object.assign(sub, { plan_id: planId, quantity });
  const now = nowSecs();
  setTimeout(() => void send(app, [event('subscription.updated', { subscription: sub }, now)]).then((d) => rec.deliveries.push(...d)), 0);
  return { status: 200, body: sub };
}

/** `POST /v1/subscriptions/:id/cancel_scheduled_changes`: the change waiting for the cycle's
 * end is dropped; the subscription stays as it is. */
function cancelScheduled(app: App, id: string): Answer {
  const rec = store().razorpay.subscriptions.get(id);
  if (!rec || rec.app !== app) return rzpError(400, 'The id provided does not exist', 'id');
  const sub = rec.entity;
  if (!sub.has_scheduled_changes) return rzpError(400, 'Subscription does not have any scheduled changes');
  rec.scheduled = undefined;
  Object.assign(sub, { has_scheduled_changes: false, change_scheduled_at: null });
  return { status: 200, body: sub };
}

/** Answers one request of the worker: the path after `/v1/`. */
export async function razorpayApi(app: App, req: Request, path: string[]): Promise<Answer> {
  const auth = req.headers.get('authorization') ?? '';
  const basic = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : '';
  const [keyId, keySecret] = basic.split(':');
  if (!keyId || !keySecret) return rzpError(401, 'Authentication failed');
  if (!keyId.startsWith('rzp_test_')) return rzpError(401, 'Authentication failed: this local stand-in takes test-mode keys only (rzp_test_...)');
  const method = req.method.toUpperCase();
  let body: Record<string, unknown> = {};
  if (method === 'POST' || method === 'PATCH') {
    const text = await req.text();
    if (text) {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return rzpError(400, 'The request body is not valid JSON');
      }
    }
  }
  const [a, b, c] = path;
  if (a === 'subscriptions' && !b && method === 'POST') return createSubscription(app, body, originOf(req));
  if (a === 'subscriptions' && b && !c && method === 'GET') {
    const rec = store().razorpay.subscriptions.get(b);
    return rec && rec.app === app ? { status: 200, body: rec.entity } : rzpError(400, 'The id provided does not exist', 'id');
  }
  if (a === 'subscriptions' && b && c === 'cancel' && method === 'POST') return cancel(app, b, body);
  if (a === 'subscriptions' && b && c === 'cancel_scheduled_changes' && method === 'POST') return cancelScheduled(app, b);
  if (a === 'subscriptions' && b && !c && method === 'PATCH') return update(app, b, body);
  if (a === 'orders' && !b && method === 'POST') return createOrder(app, body);
  if (a === 'orders' && b && method === 'GET') {
    const rec = store().razorpay.orders.get(b);
    return rec && rec.app === app ? { status: 200, body: rec.entity } : rzpError(400, 'The id provided does not exist', 'id');
  }
  if (a === 'plans' && method === 'GET') {
    const all = await plans(app);
    if (!b) return { status: 200, body: { entity: 'collection', count: all.length, items: all } };
    const plan = all.find((p) => p.id === b);
    return plan ? { status: 200, body: plan } : rzpError(400, 'The id provided does not exist', 'id');
  }
  return rzpError(404, `The requested URL was not found on the server (${method} /v1/${path.join('/')}). The local Razorpay stand-in serves subscriptions, orders and plans.`);
}

export function razorpayRecord(id: string) {
  return store().razorpay.subscriptions.get(id) ?? store().razorpay.orders.get(id);
}

/** Pays a created subscription (its first charge) or order, as Razorpay Checkout would. */
export async function completeRazorpay(id: string, opts: { email: string | null; periodEnd?: number }): Promise<
  { ok: true; subscription: string | null; deliveries: Delivery[] } | { ok: false; status: number; message: string; deliveries: Delivery[] }
> {
  const st = store().razorpay;
  const now = nowSecs();
  const email = opts.email ?? 'buyer@example.com';
  const sub = st.subscriptions.get(id);
  const order = st.orders.get(id);
  const rec = sub ?? order;
  if (!rec) return { ok: false, status: 404, message: `The id provided does not exist: ${id}`, deliveries: [] };
  const e = rec.entity;
  if ((sub && e.status !== 'created') || (order && e.status !== 'created')) {
    return { ok: false, status: 409, message: `This ${sub ? 'subscription' : 'order'} is ${e.status}: it can be paid once.`, deliveries: rec.deliveries };
  }
  const evs: Obj[] = [];
  if (sub) {
    const plan = (await plans(rec.app)).find((p) => p.id === e.plan_id)!;
    const item = plan.item as { amount: number; currency: string };
    const customer = (e.customer_id as string | null) ?? newId('cust');
    const end = opts.periodEnd && opts.periodEnd > now ? opts.periodEnd : addInterval(now, plan.period === 'yearly' ? 'year' : 'month');
    Object.assign(e, { customer_id: customer, status: 'authenticated', auth_attempts: 0 });
    evs.push(event('subscription.authenticated', { subscription: e }, now));
    Object.assign(e, { status: 'active', current_start: now, current_end: end, charge_at: end, start_at: now, paid_count: 1, remaining_count: (e.total_count as number) - 1 });
    evs.push(event('subscription.activated', { subscription: e }, now));
    const payment: Obj = {
      id: newId('pay'),
      entity: 'payment',
      amount: item.amount * (e.quantity as number),
      currency: item.currency,
      status: 'captured',
      order_id: newId('order'),
      invoice_id: newId('inv'),
      international: false,
      method: 'card',
      amount_refunded: 0,
      refund_status: null,
      captured: true,
      description: null,
      email,
      contact: '+910000000000',
      customer_id: customer,
      notes: {},
      fee: 0,
      tax: 0,
      error_code: null,
      created_at: now,
    };
    evs.push(event('subscription.charged', { subscription: e, payment }, now));
  } else {
    const payment: Obj = {
      id: newId('pay'),
      entity: 'payment',
      amount: e.amount,
      currency: e.currency,
      status: 'captured',
      order_id: e.id,
      invoice_id: null,
      international: false,
      method: 'card',
      amount_refunded: 0,
      refund_status: null,
      captured: true,
      description: null,
      email,
      contact: '+910000000000',
      customer_id: null,
      notes: e.notes,
      fee: 0,
      tax: 0,
      error_code: null,
      created_at: now,
    };
    Object.assign(e, { status: 'paid', amount_paid: e.amount, amount_due: 0, attempts: 1 });
    evs.push(event('payment.captured', { payment }, now));
    evs.push(event('order.paid', { payment, order: e }, now));
  }
  const deliveries = await send(rec.app, evs);
  rec.deliveries.push(...deliveries);
  const failed = deliveries.find((d) => d.status < 200 || d.status >= 300);
  if (failed) return { ok: false, status: 502, message: `the worker answered ${failed.status} to ${failed.type}: ${failed.body}`, deliveries };
  return { ok: true, subscription: sub ? id : null, deliveries };
}
