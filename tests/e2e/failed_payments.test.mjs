// Failed payments kept as records, through the running worker against PostgreSQL: a failed
// Stripe invoice creates the record (amount due, currency, attempts, next retry, grace end),
// a redelivery and a second attempt update it once, the paid retry resolves it; Razorpay's
// pending and halted are one payment due until the next charge. The user reads their own
// records through the REST API under RLS (and nobody else's); the operator lists them with
// GET /v1/admin/failed-payments.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, q, createUser, worker, http, userToken, postStripe, postRazorpay, now, closeDb, id } from './helpers.mjs';
import { StripeSubscriber, RazorpaySubscriber, DAY } from './events.mjs';

after(closeDb);

const T = now();
const secs = (d) => (d ? new Date(d).getTime() / 1000 : null);
const adminGet = (path) => worker('GET', path, { headers: { authorization: `Bearer ${env.adminSecret}` } });
const restAs = (uid, path) => {
  const token = userToken(uid);
  return http('GET', `${env.rest}/rest/v1/${path}`, { headers: { apikey: token, authorization: `Bearer ${token}` } });
};
async function post(e) {
  const r = await postStripe(e);
  assert.equal(r.status, 200, `${e.type}: ${r.text}`);
  return r.json;
}

/** invoice.payment_failed as Stripe sends it: the invoice, its attempt, the next retry. */
function failed(s, { invoice, at, attempt, next }) {
  const e = s.invoiceFailed({ at, attempt });
  Object.assign(e.data.object, { id: invoice, amount_remaining: 5900, amount_due: 5900, next_payment_attempt: next });
  return e;
}

test('a failed Stripe invoice is kept with what is due until the paid retry', { skip: env.catalog !== 'vcm-suite' }, async () => {
  const uid = await createUser();
  const other = await createUser();
  const start = T - 32 * DAY;
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'SUITE_PRO_MONTHLY', price: 'price_vcm_pro_monthly', start });
  for (const e of [s.checkout(), s.created({ periodEnd: T - 2 * DAY }), s.invoicePaid({ at: start + 1, periodStart: start, periodEnd: T - 2 * DAY })]) {
    await post(e);
  }
  const invoice = id('in');
  const first = failed(s, { invoice, at: T - 2 * DAY, attempt: 1, next: T + DAY });
  assert.equal((await post(first)).status, 'applied');
  let rows = await q('select * from failed_payments where user_id = $1', [uid]);
  assert.equal(rows.length, 1);
  let r = rows[0];
  assert.deepEqual([r.provider, r.invoice_id, r.subscription_id, Number(r.amount_due), r.currency, r.attempt_count],
    ['stripe', invoice, s.sub, 5900, 'usd', 1]);
  assert.equal(secs(r.next_retry_at), T + DAY);
  assert.equal(secs(r.first_failed_at), T - 2 * DAY);
  assert.equal(secs(r.grace_until), T - 2 * DAY + 3 * DAY, 'the catalog\'s three days of grace from the first failure');
  assert.equal(r.resolved_at, null);

  // The same delivery again, and the second attempt (delivered twice): one record, two attempts.
  assert.equal((await post(first)).status, 'duplicate');
  const second = failed(s, { invoice, at: T - DAY, attempt: 2, next: T + 2 * DAY });
  await post(second);
  await post({ ...second, id: id('evt') });
  rows = await q('select * from failed_payments where user_id = $1', [uid]);
  assert.equal(rows.length, 1);
  assert.deepEqual([rows[0].attempt_count, secs(rows[0].next_retry_at), secs(rows[0].first_failed_at)], [2, T + 2 * DAY, T - 2 * DAY]);

  // The user reads their own, under RLS; another user reads none of it.
  let mine = await restAs(uid, 'failed_payments?select=invoice_id,amount_due,currency,attempt_count,grace_until,resolved_at');
  assert.equal(mine.status, 200, mine.text);
  assert.deepEqual(mine.json.map((x) => [x.invoice_id, Number(x.amount_due), x.currency, x.attempt_count, x.resolved_at]),
    [[invoice, 5900, 'usd', 2, null]]);
  const theirs = await restAs(other, `failed_payments?select=*&user_id=eq.${uid}`);
  assert.deepEqual([theirs.status, theirs.json], [200, []]);

  // The operator's list of what is due.
  let listed = await adminGet('/v1/admin/failed-payments?status=open&limit=200');
  assert.equal(listed.status, 200, listed.text);
  let row = listed.json.failed_payments.find((x) => x.invoice_id === invoice);
  assert.ok(row, listed.text);
  assert.deepEqual([row.subject.user_id, row.amount_due, row.attempt_count], [uid, 5900, 2]);

  // The retry is paid: resolved, in the same transaction as the grant's recovery.
  const paid = s.invoicePaid({ at: T - 3600, periodStart: T - 2 * DAY, periodEnd: T + 28 * DAY });
  paid.data.object.id = invoice;
  assert.equal((await post(paid)).status, 'applied');
  r = (await q('select * from failed_payments where user_id = $1', [uid]))[0];
  assert.deepEqual([r.resolution, r.resolved_by, secs(r.resolved_at), r.next_retry_at, r.grace_until],
    ['paid', invoice, T - 3600, null, null]);
  const g = await q('select status, past_due_since from cloud_entitlements where user_id = $1', [uid]);
  assert.deepEqual(g.map((x) => [x.status, x.past_due_since]), [['active', null]]);
  mine = await restAs(uid, 'failed_payments?select=resolution');
  assert.deepEqual(mine.json, [{ resolution: 'paid' }]);
  listed = await adminGet('/v1/admin/failed-payments?status=open&limit=200');
  assert.ok(!listed.json.failed_payments.some((x) => x.invoice_id === invoice), 'no longer due');
  listed = await adminGet('/v1/admin/failed-payments?status=resolved&limit=200');
  assert.ok(listed.json.failed_payments.some((x) => x.invoice_id === invoice && x.resolution === 'paid'));
  // A bad listing request.
  assert.equal((await adminGet('/v1/admin/failed-payments?status=maybe')).status, 400);
});

test('Razorpay: pending then halted is one payment due, settled by the next charge', { skip: env.catalog !== 'razorpay-ai' }, async () => {
  const uid = await createUser();
  const start = T - 32 * DAY;
  const p1 = T - 2 * DAY;
  const r = new RazorpaySubscriber({ userId: uid, plan: 'plan_premium_monthly', start });
  const send = async (type, opts) => {
    const res = await postRazorpay(r.event(type, opts));
    assert.equal(res.status, 200, `${type}: ${res.text}`);
    return res.json;
  };
  await send('subscription.activated', { at: start, status: 'active', currentStart: start, currentEnd: p1 });
  await send('subscription.charged', { at: start + 1, status: 'active', currentStart: start, currentEnd: p1, payment: r.payment({ at: start + 1 }) });
  await send('subscription.pending', { at: p1 + 60, status: 'pending', currentStart: p1, currentEnd: p1 + 30 * DAY });
  await send('subscription.halted', { at: p1 + DAY, status: 'halted', currentStart: p1, currentEnd: p1 + 30 * DAY });
  let rows = await q('select * from failed_payments where user_id = $1', [uid]);
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.deepEqual([rows[0].provider, rows[0].subscription_id, Number(rows[0].amount_due), rows[0].currency, rows[0].attempt_count],
    ['razorpay', r.sub, 49900, 'inr', 2], 'the plan\'s price, two failures');
  assert.equal(rows[0].next_retry_at, null, 'halted: Razorpay stopped trying');
  assert.equal(rows[0].resolved_at, null);
  await send('subscription.charged', { at: T - 60, status: 'active', currentStart: p1, currentEnd: p1 + 30 * DAY, payment: r.payment({ at: T - 60 }) });
  rows = await q('select * from failed_payments where user_id = $1', [uid]);
  assert.deepEqual([rows[0].resolution, secs(rows[0].resolved_at)], ['paid', T - 60]);
});
