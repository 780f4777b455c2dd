// Usage a person can see: the account page shows, for the Razorpay AI app, a meter per
// limit and credit pool with its reset (a limit) or refill (a pool a plan refills) time,
// 30 days of use by day, and the banner with the warnings and the failed payment, told
// once (its amount written by the core, its grace end).
// The state is made through the real paths first: Premium bought on the providers'
// local stand-in (its webhooks to the worker), uses counted by the worker's `track`, and
// the next charge failing as Razorpay reports it (a signed `subscription.pending`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';

import { WWW, browserWithWorker, checkout, shot, signIn, uniqueEmail } from './lib.mjs';

const browser = browserWithWorker();
const RAZORPAY = (process.env.TOLLGATE_RAZORPAY_WORKER_URL ?? '').replace(/\/+$/, '');
const SECRET = process.env.RAZORPAY_WEBHOOK_SECRET ?? '';

async function call(token, method, path, body, headers = {}) {
  const r = await fetch(`${RAZORPAY}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}

async function snapshotUntil(token, pred, ms = 10_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await call(token, 'GET', '/v1/entitlements');
    if (last.status === 200 && pred(last.json.snapshot)) return last.json.snapshot;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the snapshot never got there: ${JSON.stringify(last).slice(0, 600)}`);
}

test('the account page shows the meters, 30 days of use and the banner of a failed payment', async () => {
  assert.ok(RAZORPAY && SECRET, 'TOLLGATE_RAZORPAY_WORKER_URL and RAZORPAY_WEBHOOK_SECRET are set by cargo xtask test');
  const context = await browser().newContext();
  const user = await signIn(context, uniqueEmail('usage'));
  const token = user.access_token;

  // Premium (2000 AI credits a month), bought on the stand-in.
  const bought = await checkout(context, { offer: 'PREMIUM_MONTHLY', worker: RAZORPAY });
  const sub = bought.session.id;
  const snap = await snapshotUntil(token, (s) => s.grants.some((g) => g.tier === 'PREMIUM'));
  const grant = snap.grants.find((g) => g.tier === 'PREMIUM');

  // 1700 of the month's 2000 counted (85%: past the catalog's 80%), and 1950 credits spent
  // (50 left: below its 100).
  const used = await call(token, 'POST', '/v1/track', { feature: 'monthly_ai_credits', quantity: 1700 }, { 'idempotency-key': `usage-${randomBytes(4).toString('hex')}` });
  assert.equal(used.status, 200, JSON.stringify(used.json));
  const spent = await call(token, 'POST', '/v1/track', { feature: 'ai_credits', quantity: 1950 }, { 'idempotency-key': `spend-${randomBytes(4).toString('hex')}` });
  assert.equal(spent.status, 200, JSON.stringify(spent.json));

  // The charge fails: Razorpay retries tomorrow, the subscription is pending. (A payment
  // settles the failures up to its own second: this one comes after the first charge's.)
  const start = Math.floor(Date.parse(grant.valid_from) / 1000);
  while (Math.floor(Date.now() / 1000) <= start + 1) await new Promise((r) => setTimeout(r, 200));
  const at = Math.floor(Date.now() / 1000);
  const end = grant.valid_to ? Math.floor(Date.parse(grant.valid_to) / 1000) : start + 30 * 86_400;
  const entity = {
    id: sub, entity: 'subscription', plan_id: 'plan_premium_monthly', status: 'pending', current_start: start, current_end: end,
    ended_at: null, quantity: 1, notes: { user_id: user.user_id }, charge_at: at + 86_400, start_at: start, end_at: null,
    auth_attempts: 1, total_count: 12, paid_count: 1, created_at: start,
  };
  const event = JSON.stringify({ entity: 'event', account_id: 'acc_test', event: 'subscription.pending', contains: ['subscription'], payload: { subscription: { entity } }, created_at: at });
  const hook = await fetch(`${RAZORPAY}/webhooks/razorpay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-razorpay-signature': createHmac('sha256', SECRET).update(event).digest('hex'), 'x-razorpay-event-id': `evt_${randomBytes(6).toString('hex')}` },
    body: event,
  });
  const answer = await hook.text();
  assert.equal(hook.status, 200, answer);
  assert.equal(JSON.parse(answer).status, 'applied', answer);

  // The signed snapshot carries the open alerts and the payment due.
  const s = await snapshotUntil(token, (x) => (x.failed_payments ?? []).length === 1 && (x.alerts ?? []).some((a) => a.kind === 'payment_failed'));
  const due = s.failed_payments[0];
  assert.deepEqual([due.provider, due.subscription, due.amount_due, due.currency], ['razorpay', sub, 49900, 'inr']);
  assert.ok(due.grace_until, 'a grace end');
  assert.ok(s.alerts.some((a) => a.rule === 'limit:monthly_ai_credits:80%'), JSON.stringify(s.alerts));
  const check = (await call(token, 'POST', '/v1/check', { feature: 'monthly_ai_credits', quantity: 1 })).json;
  // The AI credits refill when the plan's paid period ends (a failed renewal is retried
  // within it): the worker's check and the snapshot say when.
  const credits = (await call(token, 'POST', '/v1/check', { feature: 'ai_credits', quantity: 1 })).json;
  const premium = s.grants.find((g) => g.tier === 'PREMIUM');
  assert.ok(premium.valid_to && Date.parse(premium.valid_to) > Date.now(), JSON.stringify(premium));
  assert.equal(credits.resets_at, premium.valid_to, JSON.stringify(credits));
  assert.deepEqual(s.refills, { ai_credits: premium.valid_to });

  const page = await context.newPage();
  await page.goto(`${WWW}/account`);
  await page.waitForSelector('[data-testid="account-usage"] [data-testid="usage-state"][data-status="ready"]', { timeout: 20_000 });

  // A meter per limit and pool, with the worker's numbers and reset time.
  const meter = page.locator('[data-testid="usage-meter"][data-feature="monthly_ai_credits"]');
  await meter.waitFor();
  assert.equal(await meter.getAttribute('data-used'), String(check.used));
  assert.equal(await meter.getAttribute('data-limit'), '2000');
  assert.equal(await meter.getAttribute('data-resets-at'), check.resets_at);
  assert.match(await meter.locator('[data-testid="usage-meter-text"]').innerText(), new RegExp(`${check.used} of 2000 used · resets ${check.resets_at.slice(0, 10)}`));
  const pool = page.locator('[data-testid="usage-meter"][data-feature="ai_credits"]');
  assert.equal(await pool.getAttribute('data-resets-at'), credits.resets_at);
  assert.match(await pool.locator('[data-testid="usage-meter-text"]').innerText(), new RegExp(`50 credits left · refills ${credits.resets_at.slice(0, 10)}`));
  // The free drafts are given once: no refill.
  const drafts = page.locator('[data-testid="usage-meter"][data-feature="free_drafts"]');
  assert.equal(await drafts.count(), 1);
  assert.equal(await drafts.getAttribute('data-resets-at'), null);
  assert.equal(await drafts.locator('[data-testid="usage-meter-resets"]').count(), 0);

  // 30 days by day: today's bar holds what was used.
  const chart = page.locator('[data-testid="usage-feature"][data-feature="monthly_ai_credits"] [data-testid="usage-chart"]');
  assert.equal(await chart.getAttribute('data-days'), '30');
  assert.equal(await chart.getAttribute('data-total'), '1700');
  const today = new Date().toISOString().slice(0, 10);
  assert.equal(await chart.locator(`rect[data-day="${today}"]`).getAttribute('data-units'), '1700');
  assert.equal(await chart.locator('rect[data-day]').count(), 30);
  assert.equal(await page.locator('[data-testid="usage-feature"][data-feature="ai_credits"] [data-testid="usage-chart"]').getAttribute('data-total'), '1950');

  // The banner: the failed payment with its amount (the core's formatter) and grace end,
  // the server's alerts and the pool's threshold the snapshot crosses.
  const banner = page.locator('[data-testid="account-usage"] [data-testid="alert-banner"]');
  const notice = banner.locator('[data-testid="payment-notice"]');
  assert.equal(await notice.getAttribute('data-amount'), '49900');
  assert.equal(await notice.getAttribute('data-grace-until'), due.grace_until);
  assert.equal(await notice.innerText(), `A payment of ₹499.00 failed. Access continues until ${due.grace_until.slice(0, 10)}.`);
  assert.match(await banner.locator('[data-rule="limit:monthly_ai_credits:80%"]').innerText(), /AI credits per month: 80% of 2000 used/);
  assert.equal(await banner.locator('[data-rule="limit:monthly_ai_credits:80%"]').getAttribute('data-from'), 'server');
  assert.match(await banner.locator('[data-rule="pool:ai_credits:100left"]').innerText(), /fewer than 100 credits left/);
  // The failed payment is told once: by its notice, not again as the `payment_failed` alert.
  assert.equal(await banner.locator('[data-testid="payment-notice"]').count(), 1);
  assert.equal(await banner.locator('[data-kind="payment_failed"]').count(), 0);
  assert.equal((await banner.innerText()).split('₹499.00 failed').length - 1, 1, await banner.innerText());
  await shot(page, 'account-usage');
  await context.close();
});
