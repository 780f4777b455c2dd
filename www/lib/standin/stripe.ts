// LOCAL STAND-IN FOR STRIPE'S API (development and tests only; TOLLGATE_DEV_AUTH=1).
//
// The app workers are pointed here with `STRIPE_API_BASE` = `<www>/api/dev/stripe/<app>`
// and a clearly fake key (`sk_test_local_stand_in`). This answers the requests the
// worker makes, as Stripe answers them: Checkout Sessions (whose `url` is the stand-in's
// page, app/dev/checkout/[id]), Billing Portal sessions (app/dev/billing/[id]),
// subscriptions (read, update: cancel at period end, resume, payment collection paused
// or not, a price change; delete),
// customers and prices. It keeps what it was asked for; paying a session on the page
// sends the events of exactly that session (completeSession), and an update of a
// subscription sends `customer.subscription.updated` at once, to the app's worker.

import { customerObject, deliver, event, invoiceObject, invoicePaymentObject, priceObject, subscriptionObject } from '../stripeEvents';
import { stripeWebhookSecret } from '../config';
import { decodeForm, list, obj, str, strings, type Params } from './form';
import {
  addInterval,
  catalogOf,
  newId,
  nowSecs,
  originOf,
  store,
  workerOf,
  type Answer,
  type App,
  type Delivery,
  type Obj,
  type StripeSession,
} from './state';


function stripeError(status: number, message: string, extra: { code?: string; param?: string; type?: string } = {}): Answer {
  return { status, body: { error: { type: extra.type ?? 'invalid_request_error', message, ...(extra.code ? { code: extra.code } : {}), ...(extra.param ? { param: extra.param } : {}) } } };
}

const missing = (what: string, id: string, param?: string) =>
  stripeError(param ? 400 : 404, `No such ${what}: '${id}'`, { code: 'resource_missing', param });

/** The account's prices: one per catalog offer (the offer's own Stripe price id when the
 * catalog names one), with `lookup_key` = the offer key, as `tollgate stripe fixtures`
 * creates them; and those made from `price_data`. */
async function accountPrices(app: App): Promise<Obj[]> {
  const doc = await catalogOf(app);
  const out: Obj[] = [];
  for (const o of doc.offers) {
    const ids = o.stripe_price_ids?.length ? o.stripe_price_ids : [`price_${app.replace(/-/g, '_')}_${o.key.toLowerCase()}`];
    for (const [i, id] of ids.entries()) {
      out.push(
        priceObject({
          id,
          product: `prod_${o.key.toLowerCase()}`,
          currency: o.price.currency,
          unitAmount: o.price.amount,
          interval: o.price.interval === 'one_time' ? null : o.price.interval,
          lookupKey: i === 0 ? o.key : null,
          nickname: o.label,
          metadata: { offer_key: o.key },
          created: 1_700_000_000,
        }),
      );
    }
  }
  for (const p of store().stripe.prices.values()) if (p.app === app) out.push(p.price);
  return out;
}

/** A price made from `price_data` (on a new product made from `product_data`, or on the
 * `product` named): the product keeps `product_data`'s name and metadata, the price none. */
function adHocPrice(app: App, d: Params, created: number): Obj {
  let product = str(d.product);
  if (!product) {
    const pd = obj(d.product_data);
    product = newId('prod');
    store().stripe.products.set(product, {
      app,
      product: { id: product, object: 'product', active: true, created, livemode: false, metadata: strings(pd.metadata), name: str(pd.name) ?? product, type: 'service' },
    });
  }
  const price = priceObject({
    id: newId('price'),
    product,
    currency: (str(d.currency) ?? '').toLowerCase(),
    unitAmount: Number(str(d.unit_amount)),
    interval: str(obj(d.recurring).interval) ?? null,
    lookupKey: null,
    nickname: null,
    metadata: {},
    created,
  });
  store().stripe.prices.set(price.id as string, { app, price });
  return price;
}

/** A product of the account: one per catalog offer (`prod_<offer key>`), and those made from `product_data`. */
async function findProduct(app: App, id: string): Promise<Obj | undefined> {
  const own = store().stripe.products.get(id);
  if (own && own.app === app) return own.product;
  const doc = await catalogOf(app);
  const o = doc.offers.find((x) => `prod_${x.key.toLowerCase()}` === id);
  return o ? { id, object: 'product', active: true, created: 1_700_000_000, livemode: false, metadata: { offer_key: o.key, catalog: app }, name: o.label, type: 'service' } : undefined;
}

async function findPrice(app: App, id: string): Promise<Obj | undefined> {
  return (await accountPrices(app)).find((p) => p.id === id);
}

/** Customers belong to the account, not to an app: the apps share one database, so a
 * worker may name the customer another app's checkout created. */
function customerOf(id: string): Obj | undefined {
  return store().stripe.customers.get(id)?.customer;
}

/** `POST /v1/checkout/sessions`. */
async function createSession(app: App, p: Params, origin: string): Promise<Answer> {
  const mode = str(p.mode);
  if (!mode) return stripeError(400, 'Missing required param: mode.', { code: 'parameter_missing', param: 'mode' });
  if (mode !== 'payment' && mode !== 'subscription') {
    return stripeError(400, `Invalid mode: must be one of payment, setup or subscription (the stand-in does not do \`${mode}\`).`, { param: 'mode' });
  }
  const items = list(p.line_items);
  if (items.length === 0) return stripeError(400, 'Missing required param: line_items.', { code: 'parameter_missing', param: 'line_items' });
  const created = nowSecs();
  const lines: StripeSession['lines'] = [];
  for (const [i, raw] of items.entries()) {
    const item = obj(raw);
    const quantity = Number(str(item.quantity) ?? '1');
    if (!Number.isInteger(quantity) || quantity < 1) return stripeError(400, 'Invalid integer: quantity must be at least 1.', { param: `line_items[${i}][quantity]` });
    let price: Obj | undefined;
    const pid = str(item.price);
    if (pid) {
      price = await findPrice(app, pid);
      if (!price) return missing('price', pid, `line_items[${i}][price]`);
    } else if (item.price_data) {
      const d = obj(item.price_data);
      const amount = Number(str(d.unit_amount));
      const currency = str(d.currency);
      if (!currency) return stripeError(400, 'Missing required param: line_items[0][price_data][currency].', { code: 'parameter_missing', param: `line_items[${i}][price_data][currency]` });
      if (!Number.isInteger(amount) || amount < 0) return stripeError(400, 'Invalid integer: unit_amount.', { param: `line_items[${i}][price_data][unit_amount]` });
      price = adHocPrice(app, d, created);
    } else {
      return stripeError(400, `You must specify either \`price\` or \`price_data\` in line_items[${i}].`, { param: `line_items[${i}]` });
    }
    const recurring = price.recurring !== null;
    if (mode === 'subscription' && !recurring) {
      return stripeError(400, 'You must provide at least one recurring price in `subscription` mode when using prices.', { param: `line_items[${i}]` });
    }
    if (mode === 'payment' && recurring) {
      return stripeError(400, 'You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.', { param: `line_items[${i}]` });
    }
    lines.push({ price, quantity });
  }
  const customer = str(p.customer) ?? null;
  if (customer && !customerOf(customer)) return missing('customer', customer, 'customer');
  const sd = obj(p.subscription_data);
  const trialRaw = str(sd.trial_period_days);
  const trial = trialRaw === undefined ? null : Number(trialRaw);
  if (trial !== null && (!Number.isInteger(trial) || trial < 1 || trial > 730)) {
    return stripeError(400, 'subscription_data[trial_period_days] must be a whole number of days from 1 to 730.', { param: 'subscription_data[trial_period_days]' });
  }
  if (mode === 'payment' && p.subscription_data) {
    return stripeError(400, 'You can not pass `subscription_data` in `payment` mode.', { param: 'subscription_data' });
  }
  if (mode === 'subscription' && p.payment_intent_data) {
    return stripeError(400, 'You can not pass `payment_intent_data` in `subscription` mode.', { param: 'payment_intent_data' });
  }
  const amount = lines.reduce((s, l) => s + (l.price.unit_amount as number) * l.quantity, 0);
  const id = newId('cs_test', 40);
  const session: Obj = {
    id,
    object: 'checkout.session',
    after_expiration: null,
    allow_promotion_codes: str(p.allow_promotion_codes) === 'true' ? true : null,
    amount_subtotal: trial ? 0 : amount,
    amount_total: trial ? 0 : amount,
    automatic_tax: { enabled: false, liability: null, status: null },
    billing_address_collection: null,
    cancel_url: str(p.cancel_url) ?? null,
    client_reference_id: str(p.client_reference_id) ?? null,
    client_secret: null,
    consent: null,
    created,
    currency: (lines[0].price.currency as string) ?? null,
    custom_fields: [],
    customer,
    customer_creation: customer ? null : mode === 'subscription' || str(p.customer_creation) === 'always' ? 'always' : 'if_required',
    customer_details: null,
    customer_email: str(p.customer_email) ?? null,
    expires_at: created + 24 * 3600,
    invoice: null,
    livemode: false,
    locale: null,
    metadata: strings(p.metadata),
    mode,
    payment_intent: null,
    payment_link: null,
    payment_method_types: ['card'],
    payment_status: 'unpaid',
    status: 'open',
    subscription: null,
    success_url: str(p.success_url) ?? null,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted',
    url: `${origin}/dev/checkout/${id}`,
  };
  store().stripe.sessions.set(id, {
    app,
    session,
    lines,
    subscriptionData: { metadata: strings(sd.metadata), trial_period_days: trial },
    paymentIntentData: { metadata: strings(obj(p.payment_intent_data).metadata) },
    deliveries: [],
  });
  return { status: 200, body: session };
}

/** `POST /v1/billing_portal/sessions`. */
function createPortal(app: App, p: Params, origin: string): Answer {
  const customer = str(p.customer);
  if (!customer) return stripeError(400, 'Missing required param: customer.', { code: 'parameter_missing', param: 'customer' });
  if (!customerOf(customer)) return missing('customer', customer, 'customer');
  const id = newId('bps');
  const session: Obj = {
    id,
    object: 'billing_portal.session',
    configuration: 'bpc_local_stand_in',
    created: nowSecs(),
    customer,
    flow: null,
    livemode: false,
    locale: null,
    on_behalf_of: null,
    return_url: str(p.return_url) ?? null,
    url: `${origin}/dev/billing/${id}`,
  };
  store().stripe.portal.set(id, { app, session });
  return { status: 200, body: session };
}

function subscriptionOf(app: App, id: string) {
  const s = store().stripe.subscriptions.get(id);
  return s && s.app === app ? s : undefined;
}

async function send(app: App, evs: Obj[]): Promise<Delivery[]> {
  const secret = stripeWebhookSecret();
  const out: Delivery[] = [];
  for (const ev of evs) {
    if (!secret) {
      out.push({ type: ev.type as string, event: ev.id as string, status: 0, body: 'STRIPE_WEBHOOK_SECRET (the workers\' endpoint secret) is not set in www', at: nowSecs() });
      break;
    }
    const d = await deliver(workerOf(app), secret, ev);
    out.push(d);
    if (d.status < 200 || d.status >= 300) {
      console.error(`stripe stand-in: the ${app} worker answered ${d.status} to ${d.type}: ${d.body}`);
      break;
    }
  }
  return out;
}

/** Sends events after the answer has gone out, as Stripe does (the worker is waiting for
 * our answer while we would be waiting for its). */
function sendSoon(app: App, record: { deliveries: Delivery[] }, evs: Obj[]) {
  setTimeout(() => {
    void send(app, evs).then((d) => record.deliveries.push(...d));
  }, 0);
}

function item0(sub: Obj): Obj {
  return (sub.items as { data: Obj[] }).data[0];
}

/** `POST /v1/subscriptions/:id`: cancel at period end, resume, payment collection paused
 * or collecting again (`pause_collection`), a price or quantity change. */
async function updateSubscription(app: App, id: string, p: Params): Promise<Answer> {
  const rec = subscriptionOf(app, id);
  if (!rec) return missing('subscription', id);
  const sub = rec.subscription;
  if (sub.status === 'canceled') return stripeError(400, 'A canceled subscription can only update its cancellation_details and metadata.');
  const previous: Obj = {};
  const now = nowSecs();
  const cape = str(p.cancel_at_period_end);
  if (cape !== undefined) {
    if (cape !== 'true' && cape !== 'false') return stripeError(400, 'Invalid boolean: cancel_at_period_end.', { param: 'cancel_at_period_end' });
    const on = cape === 'true';
    if (on !== sub.cancel_at_period_end) {
      previous.cancel_at_period_end = sub.cancel_at_period_end;
      previous.cancel_at = sub.cancel_at;
      previous.canceled_at = sub.canceled_at;
      previous.cancellation_details = sub.cancellation_details;
      sub.cancel_at_period_end = on;
      sub.cancel_at = on ? item0(sub).current_period_end : null;
      sub.canceled_at = on ? now : null;
      sub.cancellation_details = { comment: null, feedback: null, reason: on ? 'cancellation_requested' : null };
    }
  }
  if (p.pause_collection !== undefined) {
    // An empty value clears it (collecting again); `behavior` pauses collection, the
    // status staying what it is.
    const want = str(p.pause_collection) === '' ? null : obj(p.pause_collection);
    const behavior = want && str(want.behavior);
    if (want && !['keep_as_draft', 'mark_uncollectible', 'void'].includes(behavior ?? '')) {
      return stripeError(400, 'Invalid pause_collection[behavior]: must be one of keep_as_draft, mark_uncollectible, or void', { param: 'pause_collection[behavior]' });
    }
    const next = want && { behavior, resumes_at: str(want.resumes_at) ? Number(str(want.resumes_at)) : null };
    if (JSON.stringify(next) !== JSON.stringify(sub.pause_collection ?? null)) {
      previous.pause_collection = sub.pause_collection ?? null;
      sub.pause_collection = next;
    }
  }
  const evs: Obj[] = [];
  const items = list(p.items);
  if (items.length) {
    const want = obj(items[0]);
    const item = item0(sub);
    if (str(want.id) && str(want.id) !== item.id) return missing('subscription item', str(want.id)!, 'items[0][id]');
    const before = { price: item.price, quantity: item.quantity };
    const pid = str(want.price);
    if (pid) {
      const price = await findPrice(app, pid);
      if (!price) return missing('price', pid, 'items[0][price]');
      if (!price.recurring) return stripeError(400, 'The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.', { param: 'items[0][price]' });
      item.price = price;
    } else if (want.price_data) {
      const d = obj(want.price_data);
      if (!str(d.product) || !(await findProduct(app, str(d.product)!))) return missing('product', str(d.product) ?? '', 'items[0][price_data][product]');
      if (!str(obj(d.recurring).interval)) return stripeError(400, 'Missing required param: items[0][price_data][recurring].', { code: 'parameter_missing', param: 'items[0][price_data][recurring]' });
      item.price = adHocPrice(app, d, now);
    }
    const q = str(want.quantity);
    if (q !== undefined) item.quantity = Number(q);
    previous.items = { ...(sub.items as Obj), data: [{ ...item, ...before }] };
    const proration = str(p.proration_behavior) ?? 'create_prorations';
    // `always_invoice` bills the difference for the rest of the period now.
    if (proration === 'always_invoice') {
      const start = item.current_period_start as number;
      const end = item.current_period_end as number;
      const left = Math.max(0, end - now) / Math.max(1, end - start);
      const diff = (item.price as Obj).unit_amount as number * (item.quantity as number) - ((before.price as Obj).unit_amount as number) * (before.quantity as number);
      const amount = Math.max(0, Math.ceil(diff * left));
      const invoice = invoiceObject({ id: newId('in'), subscription: sub, reason: 'subscription_update', amount, periodStart: now, periodEnd: end, paymentIntent: amount > 0 ? newId('pi') : null, at: now });
      sub.latest_invoice = invoice.id;
      evs.push(event('invoice.paid', invoice, now));
    }
  }
  const meta = p.metadata ? strings(p.metadata) : null;
  if (meta) {
    previous.metadata = sub.metadata;
    sub.metadata = { ...(sub.metadata as Record<string, string>), ...meta };
  }
  if (Object.keys(previous).length) {
    evs.unshift(event('customer.subscription.updated', structuredClone(sub), now, previous));
    sendSoon(app, rec, evs);
  }
  return { status: 200, body: sub };
}

/** `DELETE /v1/subscriptions/:id`: canceled now. */
function deleteSubscription(app: App, id: string): Answer {
  const rec = subscriptionOf(app, id);
  if (!rec) return missing('subscription', id);
  const sub = rec.subscription;
  const now = nowSecs();
  sub.status = 'canceled';
  sub.canceled_at = now;
  sub.ended_at = now;
  sendSoon(app, rec, [event('customer.subscription.deleted', structuredClone(sub), now)]);
  return { status: 200, body: sub };
}

/** `POST /v1/subscription_schedules` (`from_subscription`: its current phase), `POST
 * /v1/subscription_schedules/:id` (its phases replaced), `POST
 * /v1/subscription_schedules/:id/release` (the subscription left as it is, no longer
 * attached), `GET` one. The stand-in has no clock: a later phase is recorded, and starts
 * only on a real Stripe account. */
async function schedules(app: App, method: string, id: string | undefined, p: Params, action?: string): Promise<Answer> {
  const st = store().stripe;
  if (method === 'POST' && !id) {
    const from = str(p.from_subscription);
    if (!from) return stripeError(400, 'The stand-in creates schedules from a subscription only: pass `from_subscription`.', { param: 'from_subscription' });
    const rec = subscriptionOf(app, from);
    if (!rec) return missing('subscription', from, 'from_subscription');
    if (rec.subscription.schedule) return stripeError(400, `You cannot migrate a subscription that is already attached to a schedule: \`${rec.subscription.schedule}\`.`);
    const item = item0(rec.subscription);
    const schedule: Obj = {
      id: newId('sub_sched'),
      object: 'subscription_schedule',
      created: nowSecs(),
      customer: rec.subscription.customer,
      end_behavior: 'release',
      livemode: false,
      metadata: {},
      phases: [
        {
          start_date: item.current_period_start,
          end_date: item.current_period_end,
          items: [{ price: (item.price as Obj).id, quantity: item.quantity, metadata: {} }],
          metadata: {},
          proration_behavior: 'create_prorations',
        },
      ],
      status: 'active',
      subscription: from,
    };
    rec.subscription.schedule = schedule.id;
    st.schedules.set(schedule.id as string, { app, schedule });
    return { status: 200, body: schedule };
  }
  const rec = id ? st.schedules.get(id) : undefined;
  if (!id || !rec || rec.app !== app) return missing('subscription_schedule', id ?? '');
  if (method === 'GET' && !action) return { status: 200, body: rec.schedule };
  if (method === 'POST' && action === 'release') {
    if (!['not_started', 'active'].includes(rec.schedule.status as string)) {
      return stripeError(400, `You cannot release a subscription schedule that is currently in the \`${rec.schedule.status}\` status. It must be in one of the following statuses: not_started, active.`);
    }
    const sub = rec.schedule.subscription as string | null;
    const held = sub ? subscriptionOf(app, sub) : undefined;
    if (held && held.subscription.schedule === id) held.subscription.schedule = null;
    rec.schedule.status = 'released';
    rec.schedule.released_at = nowSecs();
    rec.schedule.released_subscription = sub;
    rec.schedule.subscription = null;
    return { status: 200, body: rec.schedule };
  }
  if (method === 'POST' && !action) {
    const phases = list(p.phases).map((ph) => {
      const x = obj(ph);
      const items = list(x.items).map((it) => {
        const i = obj(it);
        const price = str(i.price) ?? (i.price_data ? (adHocPrice(app, obj(i.price_data), nowSecs()).id as string) : null);
        return { price, quantity: Number(str(i.quantity) ?? '1'), metadata: strings(i.metadata) };
      });
      return {
        start_date: str(x.start_date) ? Number(str(x.start_date)) : null,
        end_date: str(x.end_date) ? Number(str(x.end_date)) : null,
        items,
        metadata: strings(x.metadata),
        proration_behavior: str(x.proration_behavior) ?? 'create_prorations',
      };
    });
    if (phases.length) rec.schedule.phases = phases;
    if (str(p.end_behavior)) rec.schedule.end_behavior = str(p.end_behavior);
    return { status: 200, body: rec.schedule };
  }
  return stripeError(404, `Unrecognized request URL (${method}: /v1/subscription_schedules/${id}).`);
}

/** Answers one request of the worker: `method`, the path after `/v1/`, the raw body. */
export async function stripeApi(app: App, req: Request, path: string[]): Promise<Answer> {
  const auth = req.headers.get('authorization') ?? '';
  const key = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  if (!key) return stripeError(401, 'You did not provide an API key. Provide your API key in the Authorization header, using Bearer auth.', { type: 'invalid_request_error' });
  if (!/^(sk|rk)_test_/.test(key)) {
    return stripeError(401, `Invalid API Key provided: this local stand-in takes test-mode keys only (sk_test_...), never a live one.`);
  }
  const method = req.method.toUpperCase();
  const url = new URL(req.url);
  const body = method === 'GET' || method === 'DELETE' ? url.search.slice(1) : await req.text();
  const p = decodeForm(body);
  const origin = originOf(req);
  const st = store().stripe;

  const idem = method === 'POST' ? req.headers.get('idempotency-key') : null;
  const idemKey = idem ? `${app}:${key}:${idem}` : null;
  if (idemKey && st.idempotent.has(idemKey)) return st.idempotent.get(idemKey)!;
  const answer = await route(app, method, path, p, origin);
  if (idemKey && answer.status < 500) st.idempotent.set(idemKey, answer);
  return answer;
}

async function route(app: App, method: string, path: string[], p: Params, origin: string): Promise<Answer> {
  const st = store().stripe;
  const [a, b, c] = path;
  if (a === 'checkout' && b === 'sessions') {
    if (method === 'POST' && path.length === 2) return createSession(app, p, origin);
    const rec = c ? st.sessions.get(c) : undefined;
    if (c && (!rec || rec.app !== app)) return missing('checkout.session', c);
    if (rec && method === 'GET' && path.length === 3) return { status: 200, body: rec.session };
    if (rec && method === 'GET' && path[3] === 'line_items') {
      return { status: 200, body: { object: 'list', data: rec.lines.map((l) => ({ id: newId('li'), object: 'item', price: l.price, quantity: l.quantity, amount_total: (l.price.unit_amount as number) * l.quantity, currency: l.price.currency })), has_more: false, url: `/v1/checkout/sessions/${c}/line_items` } };
    }
    if (rec && method === 'POST' && path[3] === 'expire') {
      if (rec.session.status !== 'open') return stripeError(400, `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${rec.session.status}".`);
      rec.session.status = 'expired';
      return { status: 200, body: rec.session };
    }
  }
  if (a === 'billing_portal' && b === 'sessions' && method === 'POST' && path.length === 2) return createPortal(app, p, origin);
  if (a === 'subscription_schedules' && path.length <= 3) return schedules(app, method, b, p, c);
  if (a === 'products' && b && method === 'GET') {
    const product = await findProduct(app, b);
    return product ? { status: 200, body: product } : missing('product', b);
  }
  if (a === 'subscriptions' && b) {
    if (method === 'GET' && path.length === 2) {
      const rec = subscriptionOf(app, b);
      return rec ? { status: 200, body: rec.subscription } : missing('subscription', b);
    }
    if (method === 'POST' && path.length === 2) return updateSubscription(app, b, p);
    if (method === 'DELETE' && path.length === 2) return deleteSubscription(app, b);
  }
  if (a === 'subscriptions' && !b && method === 'GET') {
    const customer = str(p.customer);
    const data = [...st.subscriptions.values()].filter((s) => s.app === app && (!customer || s.subscription.customer === customer)).map((s) => s.subscription);
    return { status: 200, body: { object: 'list', data, has_more: false, url: '/v1/subscriptions' } };
  }
  if (a === 'customers') {
    if (method === 'POST' && !b) {
      const c = customerObject(newId('cus'), str(p.email) ?? null, nowSecs());
      c.metadata = strings(p.metadata);
      st.customers.set(c.id as string, { app, customer: c });
      return { status: 200, body: c };
    }
    if (method === 'GET' && b) {
      const c = customerOf(b);
      return c ? { status: 200, body: c } : missing('customer', b);
    }
  }
  if (a === 'prices') {
    const all = await accountPrices(app);
    if (method === 'GET' && !b) {
      const keys = list(p.lookup_keys).map(String);
      const data = keys.length ? all.filter((x) => keys.includes(x.lookup_key as string)) : all;
      return { status: 200, body: { object: 'list', data, has_more: false, url: '/v1/prices' } };
    }
    if (method === 'GET' && b) {
      const price = all.find((x) => x.id === b);
      return price ? { status: 200, body: price } : missing('price', b);
    }
  }
  return stripeError(404, `Unrecognized request URL (${method}: /v1/${path.join('/')}). The local Stripe stand-in serves checkout sessions, billing portal sessions, subscriptions, customers and prices.`);
}

/** Pays an open session as Checkout's page would: the customer (the one the session
 * names, or a new one with `email`), then for a subscription its first invoice, and the
 * events Stripe sends for it, delivered to the app's worker in Stripe's order.
 * `periodEnd`: the test clock of the stand-in, ending the first period at this instant
 * instead of one interval after the payment (tests watch a period end within minutes). */
export async function completeSession(id: string, opts: { email: string | null; periodEnd?: number }): Promise<
  { ok: true; session: Obj; subscription: string | null; deliveries: Delivery[] } | { ok: false; status: number; message: string; deliveries: Delivery[] }
> {
  const st = store().stripe;
  const rec = st.sessions.get(id);
  if (!rec) return { ok: false, status: 404, message: `No such checkout.session: '${id}'`, deliveries: [] };
  if (rec.session.status !== 'open') return { ok: false, status: 409, message: `This Checkout Session is ${rec.session.status}: it can be paid once.`, deliveries: rec.deliveries };
  const now = nowSecs();
  const s = rec.session;
  const evs: Obj[] = [];
  let customer = s.customer as string | null;
  const email = (customerOf(customer ?? '')?.email as string | undefined) ?? opts.email ?? (s.customer_email as string | null);
  if (!customer && s.customer_creation === 'always') {
    const c = customerObject(newId('cus'), email ?? null, now);
    st.customers.set(c.id as string, { app: rec.app, customer: c });
    customer = c.id as string;
    evs.push(event('customer.created', c, now));
  }
  s.customer = customer;
  s.customer_details = { address: null, email, name: null, phone: null, tax_exempt: 'none', tax_ids: [] };
  s.status = 'complete';
  let subscription: string | null = null;
  if (s.mode === 'subscription') {
    const line = rec.lines[0];
    const trial = rec.subscriptionData.trial_period_days;
    const trialEnd = trial ? now + trial * 86_400 : null;
    const interval = (line.price.recurring as { interval: string }).interval;
    const periodEnd = opts.periodEnd && opts.periodEnd > now ? opts.periodEnd : trialEnd ?? addInterval(now, interval);
    subscription = newId('sub');
    const invoiceId = newId('in');
    const sub = subscriptionObject({ id: subscription, customer: customer!, line, metadata: rec.subscriptionData.metadata, start: now, periodEnd, trialEnd: trialEnd && opts.periodEnd ? periodEnd : trialEnd, invoice: invoiceId });
    const amount = trialEnd ? 0 : (line.price.unit_amount as number) * line.quantity;
    const pi = amount > 0 ? newId('pi') : null;
    const invoice = invoiceObject({ id: invoiceId, subscription: sub, reason: 'subscription_create', amount, periodStart: now, periodEnd, paymentIntent: pi, at: now });
    st.subscriptions.set(subscription, { app: rec.app, subscription: sub, deliveries: [] });
    s.subscription = subscription;
    s.invoice = invoiceId;
    s.payment_status = amount > 0 ? 'paid' : 'no_payment_required';
    evs.push(event('customer.subscription.created', structuredClone(sub), now));
    evs.push(event('invoice.paid', invoice, now));
    if (pi) evs.push(event('invoice_payment.paid', invoicePaymentObject(invoice, pi, now), now));
  } else {
    s.payment_intent = newId('pi');
    s.payment_status = 'paid';
  }
  evs.push(event('checkout.session.completed', structuredClone(s), now));
  const deliveries = await send(rec.app, evs);
  rec.deliveries.push(...deliveries);
  const failed = deliveries.find((d) => d.status < 200 || d.status >= 300);
  if (failed || deliveries.length < evs.length) {
    const d = failed ?? deliveries[deliveries.length - 1];
    return { ok: false, status: 502, message: `the worker answered ${d?.status ?? 'nothing'} to ${d?.type ?? 'the first event'}: ${d?.body ?? ''}`, deliveries };
  }
  return { ok: true, session: s, subscription, deliveries };
}

/** For the stand-in's pages. */
export function sessionRecord(id: string) {
  return store().stripe.sessions.get(id);
}

export function portalRecord(id: string) {
  return store().stripe.portal.get(id);
}

/** Every subscription of the customer, whichever app sold it. */
export function subscriptionsOfCustomer(customer: string) {
  return [...store().stripe.subscriptions.values()].filter((s) => s.subscription.customer === customer);
}

/** The portal page's own changes, made through the API as Stripe's portal and Dashboard
 * make them: cancel at period end or not, payment collection paused (`void`) or collecting
 * again. The event goes to the worker of the app that sold the subscription. */
export async function portalUpdate(subscription: string, change: { cancelAtPeriodEnd: boolean } | { pause: boolean }): Promise<Answer> {
  const rec = store().stripe.subscriptions.get(subscription);
  if (!rec) return missing('subscription', subscription);
  const p: Params = 'pause' in change
    ? { pause_collection: change.pause ? { behavior: 'void' } : '' }
    : { cancel_at_period_end: String(change.cancelAtPeriodEnd) };
  return updateSubscription(rec.app, subscription, p);
}

/** What a price sells, for the stand-in's pages: its nickname, else its product's name. */
export function priceName(price: Obj): string {
  const own = store().stripe.products.get(price.product as string);
  return (price.nickname as string | null) ?? (own?.product.name as string | undefined) ?? (price.product as string);
}
