// <UsageMeter>, <UsageChart>, <AlertBanner> and useAlerts rendered with React's own
// server renderer; the warnings and amounts come from the built package (the core's
// `notices` and money formatter), never from this layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { createElement as h } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import * as tollgate from 'tollgate';

import { AlertBanner, UsageChart, UsageMeter, fillDays, useAlerts, useUsage } from '../dist/usage.js';

const razorpay = JSON.parse(readFileSync(new URL('../../target/catalogs/razorpay-ai.json', import.meta.url), 'utf8'));

const limitCheck = {
  feature: 'monthly_ai_credits', allowed: true, reason: 'within_limit', remaining: 299, used: 1700, limit: 2000,
  resets_at: '2027-01-01T00:00:00Z', tier: 'PREMIUM', upgrade: null,
};
const poolCheck = { feature: 'ai_credits', allowed: true, reason: 'within_limit', remaining: 49, used: 0, limit: 50, resets_at: null, tier: null, upgrade: null };

test('a limit meter: used of the limit, the reset day, the alert marks', () => {
  const html = renderToStaticMarkup(h(UsageMeter, { label: 'AI credits per month', kind: 'limit', check: limitCheck, marks: [80, 100] }));
  assert.match(html, /data-testid="usage-meter"/);
  assert.match(html, /data-used="1700"/);
  assert.match(html, /data-limit="2000"/);
  assert.match(html, /data-level="high"/, 'past the 80% mark');
  assert.match(html, /role="meter"[^>]*aria-valuemax="2000"[^>]*aria-valuenow="1700"/);
  assert.match(html, /1700 of 2000 used/);
  assert.match(html, /resets 2027-01-01/);
  assert.equal((html.match(/<line /g) ?? []).length, 2, 'one mark per threshold');
  const full = renderToStaticMarkup(h(UsageMeter, { label: 'x', kind: 'limit', check: { ...limitCheck, used: 2000 } }));
  assert.match(full, /data-level="full"/);
});

test('a pool meter: what it holds', () => {
  const html = renderToStaticMarkup(h(UsageMeter, { label: 'AI credits', kind: 'pool', check: poolCheck, unit: 'credit' }));
  assert.match(html, /data-kind="pool"/);
  assert.match(html, /50 credits left/);
  assert.doesNotMatch(html, /resets|refills/, 'a pool bought once does not refill');
  // A pool a subscription refills every period: when it next does.
  const refilled = renderToStaticMarkup(h(UsageMeter, { label: 'AI credits', kind: 'pool', check: { ...poolCheck, resets_at: '2026-12-31T00:00:00Z' }, unit: 'credit' }));
  assert.match(refilled, /data-resets-at="2026-12-31T00:00:00Z"/);
  assert.match(refilled, /50 credits left<span data-testid="usage-meter-resets"> · refills 2026-12-31<\/span>/);
});

test('the chart: one bar per day, days without use at 0', () => {
  const now = Date.parse('2026-12-05T12:00:00Z');
  const days = fillDays([{ day: '2026-12-05', units: 30, uses: 2 }, { day: '2026-12-01', units: 10, uses: 1 }, { day: '2026-10-01', units: 99, uses: 1 }], 30, now);
  assert.equal(days.length, 30);
  assert.equal(days[0].day, '2026-11-06');
  assert.deepEqual(days.at(-1), { day: '2026-12-05', units: 30, uses: 2 });
  assert.equal(days.filter((d) => d.units > 0).length, 2, 'a day outside the range is left out');
  const html = renderToStaticMarkup(h(UsageChart, { label: 'AI credits by day', days }));
  assert.equal((html.match(/<rect /g) ?? []).length, 30);
  assert.match(html, /data-total="40"/);
  assert.match(html, /<title>2026-12-05: 30<\/title>/);
  assert.match(html, /40 in the last 30 days/);
});

const snapshot = {
  subject: 'user:u',
  grants: [{ id: 'g', product: 'premium', tier: 'PREMIUM', source: 'razorpay', status: 'active', valid_from: '2026-12-01T00:00:00Z', valid_to: '2026-12-31T00:00:00Z', offer: 'PREMIUM_MONTHLY' }],
  balances: { ai_credits: 50 },
  alerts: [{ rule: 'payment_failed:0:razorpay:sub_1@1', kind: 'payment_failed', crossed_at: '2026-12-03T10:00:00Z', invoice: 'razorpay:sub_1@1', subscription: 'razorpay:sub_1' }],
  failed_payments: [{ provider: 'razorpay', invoice: 'sub_1@1', subscription: 'sub_1', amount_due: 49900, currency: 'inr', attempts: 1, first_failed_at: '2026-12-03T10:00:00Z', grace_until: '2026-12-06T10:00:00Z' }],
};

function Banner(props) {
  const a = useAlerts(props);
  return h('div', { 'data-status': a.status }, h(AlertBanner, { warnings: a.warnings, payments: a.payments }));
}

test('useAlerts + <AlertBanner>: the core decides the warnings and writes the amount', () => {
  const html = renderToStaticMarkup(
    h(Banner, { tollgate, snapshot, catalog: razorpay, used: { monthly_ai_credits: 1700 }, now: Date.parse('2026-12-04T00:00:00Z') }),
  );
  assert.match(html, /data-status="ready"/);
  assert.match(html, /data-testid="alert-banner"/);
  assert.match(html, /data-testid="payment-notice"[^>]*data-amount="49900"[^>]*data-currency="inr"[^>]*data-grace-until="2026-12-06T10:00:00Z"/);
  assert.match(html, /A payment of ₹499.00 failed. Access continues until 2026-12-06./);
  for (const rule of ['limit:monthly_ai_credits:80%', 'pool:ai_credits:100left']) {
    assert.ok(html.includes(`data-rule="${rule}"`), `${rule} in ${html}`);
  }
  // The failed payment is told once, by its notice: no `payment_failed` alert besides.
  assert.ok(!html.includes('data-kind="payment_failed"'), html);
  assert.equal(html.split('₹499.00 failed').length - 1, 1, html);
  assert.match(html, /data-rule="limit:monthly_ai_credits:80%"[^>]*data-from="snapshot"/);
});

test('no snapshot, no package: pending and nothing shown; no warnings: no banner', () => {
  assert.match(renderToStaticMarkup(h(Banner, {})), /^<div data-status="pending"><\/div>$/);
  assert.equal(renderToStaticMarkup(h(AlertBanner, { warnings: [], payments: [] })), '');
});

test('useUsage is pending until its fetches answer (no fetch on the server)', () => {
  function U() {
    const u = useUsage('monthly_ai_credits', { workerUrl: 'http://127.0.0.1:1', accessToken: 't' });
    return h('p', null, `${u.status}:${u.days.length}:${u.check === null}`);
  }
  assert.equal(renderToStaticMarkup(h(U)), '<p>pending:0:true</p>');
});
