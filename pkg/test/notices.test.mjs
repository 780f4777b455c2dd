// notices() and formatMoney(): what a snapshot tells its subject, decided by the core
// (src/notices.rs) with the catalog's alert rules, and amounts written by the core's
// one money formatter. The Razorpay AI app's catalog warns at 80% and 100% of
// monthly_ai_credits, below 100 ai_credits, on a failed payment and a day before its
// grace ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { notices, formatMoney, loadCatalog } from 'tollgate';
import { catalogJson } from './catalogs.mjs';

const catalog = loadCatalog(catalogJson('razorpay-ai'));

const premium = {
  grants: [{ id: 'g', product: 'premium', tier: 'PREMIUM', source: 'razorpay', status: 'active', valid_from: '2026-12-01T00:00:00Z', valid_to: '2026-12-31T00:00:00Z', offer: 'PREMIUM_MONTHLY' }],
  balances: { ai_credits: 50 },
};
const now = '2026-12-04T00:00:00Z';

test('thresholds crossed by the snapshot numbers, under the server rule ids', () => {
  const n = notices(premium, { catalog, used: { monthly_ai_credits: 1700 }, now });
  assert.deepEqual(n.warnings.map((w) => [w.rule, w.severity, w.since]), [
    ['limit:monthly_ai_credits:80%', 'warning', null],
    ['pool:ai_credits:100left', 'warning', null],
  ]);
  assert.equal(n.warnings[0].message, 'AI credits per month: 80% of 2000 used. It resets on 2027-01-01.');
  assert.equal(n.warnings[0].until, '2027-01-01T00:00:00Z');
  assert.deepEqual(n.payments, []);
  // 80% of 2000 is the 1600th credit, as the store counts it.
  assert.equal(notices(premium, { catalog, used: { monthly_ai_credits: 1599 }, now }).warnings.filter((w) => w.kind === 'limit').length, 0);
  assert.equal(notices(premium, { catalog, used: { monthly_ai_credits: 2000 }, now }).warnings[0].rule, 'limit:monthly_ai_credits:100%');
});

test('the open alerts and payments due a snapshot carries', () => {
  const snap = {
    ...premium,
    balances: { ai_credits: 500 },
    alerts: [{ rule: 'payment_failed:0:razorpay:sub_1@1', kind: 'payment_failed', crossed_at: '2026-12-03T10:00:00Z', invoice: 'razorpay:sub_1@1', subscription: 'razorpay:sub_1' }],
    failed_payments: [{ provider: 'razorpay', invoice: 'sub_1@1', subscription: 'sub_1', amount_due: 49900, currency: 'inr', attempts: 1, first_failed_at: '2026-12-03T10:00:00Z', grace_until: '2026-12-06T10:00:00Z' }],
  };
  const n = notices(snap, { catalog, now });
  // The failed payment is told once: its payment notice, not the open alert besides.
  assert.deepEqual(n.warnings, []);
  assert.equal(n.payments.length, 1);
  assert.equal(n.payments[0].message, 'A payment of ₹499.00 failed. Access continues until 2026-12-06.');
  assert.deepEqual(n.payments[0].amount_due, { amount: 49900, currency: 'inr' });
  assert.equal(n.payments[0].amount_display, '₹499.00');
  assert.equal(n.payments[0].in_grace, true);
  // A day before the grace ends: the catalog's grace_ending, from the snapshot alone.
  const late = notices(snap, { catalog, now: '2026-12-05T11:00:00Z' });
  assert.ok(late.warnings.some((w) => w.rule === 'grace_ending:1:razorpay:sub_1@1' && /Pay ₹499\.00 by 2026-12-06/.test(w.message)));
  // After it: the payment is still due, access is not.
  assert.equal(notices(snap, { catalog, now: '2026-12-07T00:00:00Z' }).payments[0].in_grace, false);
});

test('bad input is a clear error', () => {
  assert.throws(() => notices(null, { catalog }), /expected a verified snapshot/);
  assert.throws(() => notices({ grants: 3 }, { catalog }), /invalid snapshot/);
  assert.throws(() => notices(premium, { catalog, used: { monthly_ai_credits: -1 } }), /invalid used/);
});

test('formatMoney is the core formatter', () => {
  assert.equal(formatMoney({ amount: 49900, currency: 'inr' }), '₹499.00');
  assert.equal(formatMoney({ amount: 2900, currency: 'USD' }), '$29.00');
  assert.equal(formatMoney({ amount: 1500, currency: 'jpy' }), '1500 JPY');
  assert.equal(formatMoney({ amount: 1500, currency: 'kwd' }), '1.500 KWD');
  assert.throws(() => formatMoney({ amount: 1.5, currency: 'usd' }), /whole number/);
  assert.throws(() => formatMoney({ amount: 1, currency: 'dollars' }), /ISO 4217/);
});

test('a snapshot tells nothing of its numbers after its end, and another catalog\'s is refused', () => {
  const kept = { ...premium, catalog_id: 'razorpay-ai', expires_at: '2026-12-04T01:00:00Z' };
  const rules = (n) => n.warnings.map((w) => w.rule);
  assert.ok(rules(notices(kept, { catalog, now })).includes('pool:ai_credits:100left'));
  assert.ok(!rules(notices(kept, { catalog, now: '2026-12-05T00:00:00Z' })).includes('pool:ai_credits:100left'));
  assert.throws(() => notices({ ...kept, catalog_id: 'vcm-suite' }, { catalog, now }), (e) => e.code === 'wrong_catalog');
});
