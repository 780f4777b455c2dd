// Answers cross from the core as JSON text written by the boundary's own
// writer (src/wasm.rs): every string must come back exactly as the catalog
// or the grants had it (quotes, backslashes, control characters, non-ASCII),
// every number exactly, and every answer with the keys, in the order, the
// core's types declare.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Engine, loadCatalog, quote } from 'tollgate';

const NOW = '2026-03-01T00:00:00Z';
const TRICKY = 'A "quoted" \\back\\slash\\ / slash\nnew line\r\ttab \u0001\u0008\u000c\u001f end ünïcödé ₹ 🎬 \u007f';
const BIG = 9007199254740991; // the largest integer JavaScript holds exactly

const doc = {
  catalog: { id: 'tricky', name: TRICKY, version: '1', currency: 'eur', grace_period_days: 2 },
  products: [{ id: 'p', name: TRICKY, tiers: ['free', 'top'], default_tier: 'free' }],
  offers: [
    {
      key: 'TOP',
      label: TRICKY,
      price: { amount: 123456789, currency: 'eur', interval: 'year' },
      grants: [{ product: 'p', tier: 'top' }],
    },
  ],
  capabilities: [{ id: 'cap', label: TRICKY, product: 'p', min_tier: 'top' }],
  limits: [{ id: 'big', label: TRICKY, product: 'p', period: 'day', values: { free: 0, top: BIG } }],
  credit_pools: [{ id: 'sec', unit: 'second' }],
  usage: {
    pool: 'sec',
    currency: 'jpy',
    overage_multiplier: '1.5',
    rates: [{ model: TRICKY, quality: 'q', base_price_per_second: '0.5', multiplier: '3' }],
  },
  tools: [
    { id: 'tool', label: TRICKY, page: 'pg', requires: { capability: 'cap' } },
    { id: 'metered', label: 'Metered', page: 'pg', requires: { limit: 'big' } },
  ],
};

test('strings come back exactly, escapes and all', () => {
  const catalog = loadCatalog(doc);
  assert.equal(catalog.name, TRICKY);
  const e = new Engine(catalog, [
    { id: TRICKY, product: 'p', tier: 'top', source: 'promotion', status: 'active', valid_from: NOW, valid_to: null },
  ]);
  const d = e.can('cap', NOW);
  assert.equal(d.grant, TRICKY);
  const [t] = e.pageState('pg', null, NOW);
  assert.equal(t.label, TRICKY);
  assert.equal(t.decision.grant, TRICKY);

  const none = new Engine(catalog);
  const denied = none.toolState('tool', null, NOW);
  assert.equal(denied.label, TRICKY);
  assert.equal(denied.decision.upgrade.label, TRICKY);
  assert.equal(denied.decision.upgrade.display, `${TRICKY} — €1234567.89/year`);
  assert.equal(quote(catalog, TRICKY, 'q', 3).model, TRICKY);
});

test('numbers come back exactly', () => {
  const catalog = loadCatalog(doc);
  const e = new Engine(catalog, [{ id: 'g', product: 'p', tier: 'top', source: 'stripe', status: 'active', valid_from: 0 }]);
  assert.equal(e.limit('big', NOW), BIG);
  assert.equal(e.checkLimit('big', BIG - 1, NOW).allowed, true);
  const over = new Engine(catalog).checkLimit('big', 0, NOW);
  assert.equal(over.upgrade.price.amount, 123456789);
  // 0.5 x 3 x 7 = 10.5 yen, rounded up to 11 (no minor unit); overage x 1.5 = 15.75 -> 16.
  const q = quote(catalog, TRICKY, 'q', 7);
  assert.deepEqual([q.cost, q.overage_cost], [{ amount: 11, currency: 'jpy' }, { amount: 16, currency: 'jpy' }]);
});

test('answers have the keys, in the order, of the core types', () => {
  const catalog = loadCatalog(doc);
  const none = new Engine(catalog);
  const denied = none.can('cap', NOW);
  assert.deepEqual(Object.keys(denied), ['allowed', 'reason', 'tier', 'holds_until', 'upgrade']);
  assert.deepEqual(Object.keys(denied.upgrade), ['offer', 'label', 'price', 'interval', 'display']);
  assert.deepEqual(Object.keys(denied.upgrade.price), ['amount', 'currency']);
  assert.equal(denied.tier, 'free');
  assert.equal(denied.holds_until, null);
  const held = new Engine(catalog, [
    { id: 'g', product: 'p', tier: 'top', source: 'stripe', status: 'past_due', valid_from: 0, valid_to: '2026-02-28T00:00:00Z', past_due_since: '2026-02-28T00:00:00Z' },
  ]).can('cap', NOW);
  assert.deepEqual(Object.keys(held), ['allowed', 'reason', 'tier', 'grant', 'holds_until']);
  assert.deepEqual(held, { allowed: true, reason: 'grace_period', tier: 'top', grant: 'g', holds_until: '2026-03-02T00:00:00Z' });
  const [tool] = none.pageState('pg', null, NOW);
  assert.deepEqual(Object.keys(tool), ['tool', 'label', 'locked', 'decision']);
  assert.deepEqual(none.limitInfo('big', NOW), { limit: 0, tier: 'free', holds_until: null });
  assert.deepEqual(Object.keys(quote(catalog, TRICKY, 'q', 1)), [
    'model',
    'quality',
    'seconds',
    'base_price_per_second',
    'multiplier',
    'cost',
    'overage_cost',
    'overage_multiplier',
    'pool',
  ]);
});
