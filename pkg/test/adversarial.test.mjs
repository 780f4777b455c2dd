// Adversarial tests of the wrapper's own logic (pkg/index.js): whatever it keeps or decides
// before asking the core (the rows cache of `hasAccess`, the Engine's kept windows and
// decisions, `now` handling), every answer must be exactly the core's answer for the same
// input at that moment. The core's answer is had through the uncached paths: `explainAccess`
// (asks the core every call), a brand-new array of the same content, or a new Engine.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Engine,
  loadCatalog,
  useCatalog,
  hasAccess,
  explainAccess,
  formatMoney,
  minorDigits,
  quote,
  verifySnapshot,
  notices,
  applyExportPolicy,
  canExportFullRes,
  shouldWatermarkExports,
} from '../node.js';
import { catalogJson } from './catalogs.mjs';
import { NOW, row, outcome, agreesWithCore } from './support.mjs';

const vcm = loadCatalog(catalogJson('vcm-suite'));
useCatalog(vcm);
const NOW_MS = Date.parse(NOW);

/** A fixed pseudo-random sequence (mulberry32 from a constant start): the same on every run. */
function prng(state) {
  let a = state >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (xs) => xs[next.int(xs.length)];
  return next;
}

const CLOUDS = ['creation', 'video', 'suite'];
const TIERS = { creation: ['free', 'basic', 'pro', 'enterprise'], video: ['free', 'basic', 'pro', 'enterprise'], suite: ['free', 'starter', 'basic', 'pro'] };
const STATUSES = ['active', 'trial', 'past_due', 'canceled'];
// Instants around which answers change (whole seconds), as the rows name them.
const INSTANTS = ['2026-02-01T00:00:00Z', '2026-02-15T12:00:00Z', '2026-03-01T00:00:00Z', '2026-03-03T00:00:00Z', '2026-03-10T00:00:00Z'];

function randomRow(r, i) {
  const cloud = r.pick(CLOUDS);
  const o = {
    id: `r${i}`,
    user_id: 'u1',
    cloud_id: cloud,
    tier: r.pick(TIERS[cloud]),
    source: r.pick(['stripe', 'promotion', 'manual_grant']),
    status: r.pick(STATUSES),
    valid_from: r() < 0.1 ? null : r.pick(INSTANTS),
  };
  if (r() < 0.6) o.valid_to = r.pick(INSTANTS);
  if (o.status === 'past_due' && r() < 0.7) o.past_due_since = r.pick(INSTANTS);
  if (r() < 0.2) o.updated_at = r.pick(INSTANTS);
  if (r() < 0.2) o.created_at = r.pick(INSTANTS);
  return o;
}

/** An instant near a boundary: at it, a millisecond either side, or a fraction of one. */
function randomNow(r) {
  const base = Date.parse(r.pick(INSTANTS)) + r.pick([0, 0, 2, 3]) * 86400000;
  const at = base + r.pick([0, -1, 1, -0.5, 0.25, -999, 999, 1000, -1000, 3600000]);
  switch (r.int(4)) {
    case 0:
      return new Date(Math.round(at));
    case 1:
      return new Date(Math.round(at / 1000) * 1000).toISOString();
    default:
      return at;
  }
}

// ---------------------------------------------------------------------------------------------
// The rows cache against in-place edits the field-by-field check does not see.

test('rows cache: a toJSON added to a cached row in place changes what the core reads', () => {
  // The core reads JSON.stringify(rows); a row given a toJSON reads as what it returns.
  const rows = [row()];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
  rows[0].toJSON = function () {
    return { ...this, tier: 'basic' };
  };
  assert.equal(explainAccess(rows, 'creation', 'pro', NOW).allowed, false, 'the core: a basic row');
  agreesWithCore(rows);
});

test('rows cache: a toJSON added to the cached array in place changes what the core reads', () => {
  const rows = [row()];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
  rows.toJSON = () => [];
  assert.equal(explainAccess(rows, 'creation', 'pro', NOW).allowed, false, 'the core: no rows');
  agreesWithCore(rows);
});

test("rows cache: a row's own valid_to moved to its prototype (same value read, not in its JSON)", () => {
  // An expired row (false); its own valid_to is deleted and the same value put on a prototype:
  // JSON.stringify no longer writes it, so the core sees a row without end (true).
  const rows = [row({ valid_to: '2026-02-01T00:00:00Z' })];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), false);
  delete rows[0].valid_to;
  Object.setPrototypeOf(rows[0], { valid_to: '2026-02-01T00:00:00Z' });
  assert.equal(explainAccess(rows, 'creation', 'pro', NOW).allowed, true, 'the core: no valid_to');
  agreesWithCore(rows);
});

test('rows cache: setting a prototype with a toJSON on a cached row', () => {
  class Legacy {
    toJSON() {
      return { ...this, status: 'canceled', valid_to: null };
    }
  }
  const rows = [row()];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
  Object.setPrototypeOf(rows[0], Legacy.prototype);
  agreesWithCore(rows);
});

test('hasAccess(JSON text) answers as explainAccess(JSON text): a duplicate key', () => {
  // The same JSON text to both: the core refuses a row naming `tier` twice.
  const text =
    '[{"cloud_id":"creation","tier":"basic","tier":"pro","source":"stripe","status":"active","valid_from":"2026-01-01T00:00:00Z"}]';
  agreesWithCore(text);
});

test('hasAccess(JSON text) answers as explainAccess(JSON text): well-formed texts', () => {
  const texts = [
    JSON.stringify([row()]),
    JSON.stringify([row({ tier: 'basic' })]),
    ' [ ' + JSON.stringify(row()) + ' ] ',
    '[{"cloud_id":"creation","tier":"pr\\u006f","source":"stripe","status":"active","valid_from":"2026-01-01T00:00:00Z"}]',
    '[{"cloud_id":"creation","tier":"pro","source":"stripe","status":"active","valid_from":"2026-01-01T00:00:00Z","extra":{"a":[1,2]}}]',
    '[]',
    '{}',
    'null',
    '[null]',
    '[1]',
  ];
  for (const t of texts) agreesWithCore(t, 'creation', 'pro', NOW, t);
});

// ---------------------------------------------------------------------------------------------
// Property loops: random rows, random in-place edits, random `now` near boundaries.

/** Sets a field as an own, enumerable data property (a getter replaced); a frozen row stays as it is. */
function set(x, f, v) {
  if (x === null || typeof x !== 'object' || Object.isFrozen(x)) return;
  Object.defineProperty(x, f, { value: v, writable: true, enumerable: true, configurable: true });
}

const EDITS = [
  // [name, edit(rows, r)]
  ['change a field', (rows, r) => {
    const x = rows[r.int(rows.length)];
    if (!x || typeof x !== 'object') return;
    const f = r.pick(['tier', 'status', 'valid_from', 'valid_to', 'past_due_since', 'cloud_id', 'updated_at', 'created_at']);
    set(x, f, f === 'tier' ? r.pick(TIERS[x.cloud_id] ?? TIERS.creation) : f === 'status' ? r.pick(STATUSES) : f === 'cloud_id' ? r.pick(CLOUDS) : r() < 0.2 ? null : r.pick(INSTANTS));
  }],
  ['add a row', (rows, r) => rows.push(randomRow(r, rows.length + 100))],
  ['remove a row', (rows, r) => rows.splice(r.int(rows.length + 1), 1)],
  ['a string to a Date', (rows, r) => {
    const x = rows[r.int(rows.length)];
    if (x && typeof x === 'object' && typeof x.valid_from === 'string') set(x, 'valid_from', new Date(x.valid_from));
  }],
  ['a Date back to a string', (rows) => {
    for (const x of rows) if (x && x.valid_from instanceof Date) set(x, 'valid_from', x.valid_from.toISOString());
  }],
  ['a string to a number', (rows, r) => {
    const x = rows[r.int(rows.length)];
    set(x, 'valid_to', Math.floor(Date.parse(r.pick(INSTANTS)) / 1000));
  }],
  ['a getter', (rows, r) => {
    const x = rows[r.int(rows.length)];
    if (x && typeof x === 'object' && !Object.isFrozen(x)) {
      const v = r.pick(STATUSES);
      Object.defineProperty(x, 'status', { get: () => v, enumerable: true, configurable: true });
    }
  }],
  ['freeze', (rows, r) => {
    const x = rows[r.int(rows.length)];
    if (x && typeof x === 'object') Object.freeze(x);
  }],
  ['replace a row by a copy', (rows, r) => {
    const i = r.int(rows.length);
    if (rows[i] && typeof rows[i] === 'object') rows[i] = { ...rows[i] };
  }],
  ['a bad value', (rows, r) => {
    const x = rows[r.int(rows.length)];
    set(x, r.pick(['status', 'valid_to', 'source']), r.pick(['paused', 'not a time', 7, '2026-02-30T00:00:00Z']));
  }],
  ['nothing', () => {}],
  ['repair', (rows, r) => {
    for (let i = 0; i < rows.length; i++) if (Object.isFrozen(rows[i]) || r() < 0.5) rows[i] = randomRow(r, i + 200);
  }],
];

test('property: one array edited in place between calls answers as the core, at instants near boundaries', () => {
  const r = prng(0x70116a7e);
  for (let round = 0; round < 150; round++) {
    const rows = Array.from({ length: 1 + r.int(4) }, (_, i) => randomRow(r, i));
    const steps = [];
    for (let step = 0; step < 12; step++) {
      const [name, edit] = r.pick(EDITS);
      edit(rows, r);
      steps.push(name);
      const cloud = r.pick(CLOUDS);
      const tier = r.pick(TIERS[cloud]);
      const at = randomNow(r);
      // Asked twice: the second from the kept window, when there is one.
      agreesWithCore(rows, cloud, tier, at, `round ${round}, after ${steps.join(' > ')}, ${cloud}/${tier} at ${String(at)}:`);
      agreesWithCore(rows, cloud, tier, at, `round ${round} (again):`);
    }
  }
});

test('property: many distinct arrays (past the ring, into the WeakMap and back), each edited now and then', () => {
  const r = prng(0xa11a7);
  const arrays = Array.from({ length: 23 }, (_, k) => Array.from({ length: 1 + r.int(3) }, (_, i) => randomRow(r, i + 10 * k)));
  for (let step = 0; step < 1500; step++) {
    const rows = arrays[r() < 0.5 ? r.int(3) : r.int(arrays.length)];
    if (r() < 0.15) r.pick(EDITS)[1](rows, r);
    const cloud = r.pick(CLOUDS);
    const tier = r.pick(TIERS[cloud]);
    agreesWithCore(rows, cloud, tier, r() < 0.5 ? NOW : randomNow(r), `step ${step}:`);
  }
});

test('rows cache: one array reused with another catalog answers with that catalog', () => {
  // A catalog where creation's tiers differ, and one with a longer grace period.
  const doc = JSON.parse(catalogJson('vcm-suite'));
  const longer = loadCatalog({ ...doc, catalog: { ...doc.catalog, grace_period_days: 30 } });
  const rows = [row({ status: 'past_due', past_due_since: '2026-02-20T00:00:00Z' })];
  try {
    useCatalog(vcm);
    assert.equal(hasAccess(rows, 'creation', 'pro', NOW), false, 'grace over with 3 days');
    useCatalog(longer);
    agreesWithCore(rows);
    assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true, 'in grace with 30 days');
    useCatalog(vcm);
    agreesWithCore(rows);
    // The same catalog given again as text: a new Catalog, the same answers.
    useCatalog(catalogJson('vcm-suite'));
    agreesWithCore(rows);
  } finally {
    useCatalog(vcm);
  }
});

test('rows: boundaries of valid_from, valid_to and past_due grace, to the millisecond', () => {
  const from = Date.parse('2026-02-10T00:00:00Z');
  const to = Date.parse('2026-03-10T00:00:00Z');
  const since = Date.parse('2026-03-01T00:00:00Z');
  const graceEnd = since + 3 * 86400000;
  const cases = [
    [[row({ valid_from: '2026-02-10T00:00:00Z', valid_to: '2026-03-10T00:00:00Z' })], [from, to]],
    [[row({ status: 'past_due', past_due_since: '2026-03-01T00:00:00Z' })], [graceEnd]],
    [[row({ status: 'canceled', valid_to: '2026-03-10T00:00:00Z' })], [to]],
    [[row({ status: 'trial', valid_from: '2026-02-10T00:00:00.999Z', valid_to: '2026-03-10T00:00:00.001Z' })], [from, to]],
  ];
  for (const [rows, edges] of cases) {
    for (const edge of edges) {
      // Walk across each edge both ways with the same array (its kept window in play).
      const offsets = [-1001, -1000, -999, -1, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 999, 1000, 1001];
      for (const order of [offsets, [...offsets].reverse()]) {
        for (const d of order) {
          const at = edge + d;
          agreesWithCore(rows, 'creation', 'pro', at, `edge ${new Date(edge).toISOString()} ${d >= 0 ? '+' : ''}${d} ms:`);
          const fresh = outcome(() => hasAccess(rows.map((x) => ({ ...x })), 'creation', 'pro', at));
          assert.deepEqual(outcome(() => hasAccess(rows, 'creation', 'pro', at)), fresh, `a new array, ${d}`);
        }
      }
    }
  }
});

test('now: every form (Date, number, string, nothing) and bad ones answer as the core', () => {
  const rows = [row({ valid_to: '2026-03-10T00:00:00Z' })];
  const forms = [
    new Date(NOW),
    NOW_MS,
    NOW,
    '2026-03-01T00:00:00.000+00:00',
    '2026-03-09T23:59:59.999Z',
    '2026-03-10T00:00:00Z',
    Date.parse('2026-03-10T00:00:00Z') - 1,
    undefined,
    null,
    8.64e15,
    -8.64e15,
    8.64e15 + 1,
    -8.64e15 - 1,
    0,
    -0,
  ];
  for (const at of forms) {
    agreesWithCore(rows, 'creation', 'pro', at, `now ${String(at)}:`);
    agreesWithCore(rows, 'creation', 'pro', at, `now ${String(at)} (again):`);
  }
  const bad = [NaN, Infinity, -Infinity, new Date(NaN), '1772323200000', ' 12 ', 'yesterday', '', {}, [], true, 10n, Symbol('now')];
  for (const at of bad) {
    // Also after a kept window exists for this array.
    hasAccess(rows, 'creation', 'pro', NOW);
    const got = outcome(() => hasAccess(rows, 'creation', 'pro', at));
    assert.ok('error' in got, `now ${typeof at === 'symbol' ? 'a symbol' : String(at)}: an Error, got ${JSON.stringify(got)}`);
    agreesWithCore(rows, 'creation', 'pro', at, `bad now:`);
  }
  // The wasm instance still answers.
  assert.equal(hasAccess([row()], 'creation', 'pro', NOW), true);
});

test('rows: lone surrogates and very long strings are read as the core reads them; the instance survives', () => {
  const long = 'x'.repeat(300000);
  const cases = [
    [row({ id: long })],
    [row({ source_ref: long + '\u{1F3AC}' })],
    [row({ offer_key: '\uD83C' })],
    [row({ id: 'ok' }), row({ id: '\uDFFF', cloud_id: 'video' })],
    [row({ tier: 'pro\uD800' })],
    [row({ cloud_id: 'creation\u001f=video' })],
    [row({ id: 'a\u001f', source_ref: '\u001f=' })],
    [row({ valid_from: '2026-01-01T00:00:00Z\u001f' })],
    [row({ valid_to: long })],
  ];
  for (const rows of cases) {
    agreesWithCore(rows);
    agreesWithCore(rows, 'creation', 'pro', NOW, '(again)');
  }
  // Names that are not the catalog's, or not strings.
  for (const [cloud, tier] of [['creation\uD800', 'pro'], ['creation', 'pro\uD800'], [long, 'pro'], ['creation', long], ['__proto__', 'pro'], ['creation', 'toString']]) {
    agreesWithCore([row()], cloud, tier, NOW, `${cloud.slice(0, 10)}/${tier.slice(0, 10)}:`);
  }
  for (const [cloud, tier] of [[undefined, undefined], [null, 'pro'], ['creation', 3], [new String('creation'), 'pro']]) {
    const got = outcome(() => hasAccess([row()], cloud, tier, NOW));
    assert.ok('error' in got, `${String(cloud)}/${String(tier)}: an Error, got ${JSON.stringify(got)}`);
  }
  assert.equal(hasAccess([row()], 'creation', 'pro', NOW), true, 'later calls still answer');
});

// ---------------------------------------------------------------------------------------------
// Engine: kept decisions and windows against a fresh Engine.

const BUNDLE_DOC = {
  catalog: { id: 'bundle', name: 'Bundle', version: '1', currency: 'usd', grace_period_days: 2 },
  products: [
    { id: 'p', name: 'P', tiers: ['free', 'top'], default_tier: 'free' },
    { id: 'q', name: 'Q', tiers: ['free', 'top'], default_tier: 'free' },
  ],
  offers: [
    {
      key: 'BUNDLE',
      label: 'Bundle',
      price: { amount: 1000, currency: 'usd', interval: 'month' },
      grants: [{ product: 'p', tier: 'top' }, { product: 'q', tier: 'top' }],
    },
  ],
  capabilities: [],
  limits: [],
  credit_pools: [],
  tools: [],
};

test("Engine.hasAccess: a kept denial without an upgrade follows another product's grant ending", () => {
  // The only offer for p/top is a bundle the subject holds through its q grant until T: no
  // upgrade is named while it is held. After T the fresh answer names the bundle; p has no
  // grants, so p's own window never ends: the kept Decision must not outlive the q grant.
  const c = loadCatalog(BUNDLE_DOC);
  const T = '2026-03-15T00:00:00Z';
  const ents = [{ id: 'g', product: 'q', tier: 'top', source: 'stripe', status: 'active', valid_from: '2026-02-01T00:00:00Z', valid_to: T, offer: 'BUNDLE' }];
  const e = new Engine(c, ents);
  assert.equal(e.hasAccess('p', 'top', NOW).upgrade, undefined, 'held: no upgrade now');
  const later = '2026-03-20T00:00:00Z';
  const fresh = new Engine(c, ents).hasAccess('p', 'top', later);
  assert.equal(fresh.upgrade?.offer, 'BUNDLE', 'the core names the bundle after T');
  assert.deepEqual(e.hasAccess('p', 'top', later), fresh);
});

test('Engine.check: a kept window does not turn a BigInt nowMs into a boolean the core would refuse', () => {
  // The core cannot take a BigInt as nowMs (a TypeError); from a kept window, the wrapper must
  // not answer true or false for it either.
  const g = { id: 'g', product: 'video', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-02-01T00:00:00Z', valid_to: '2026-04-01T00:00:00Z' };
  const fresh = new Engine(vcm, [g]);
  const p = fresh.productIndex('video');
  const t = fresh.tierIndex('video', 'pro');
  const core = outcome(() => fresh.check(p, t, BigInt(NOW_MS)));
  const kept = new Engine(vcm, [g]);
  assert.equal(kept.check(p, t, NOW_MS), true);
  const got = outcome(() => kept.check(p, t, BigInt(NOW_MS)));
  assert.ok('error' in core, `the core refuses a BigInt: ${JSON.stringify(core)}`);
  assert.ok('error' in got, `from the kept window: ${JSON.stringify(got)}, the core: ${JSON.stringify(core)}`);
});

function randomGrant(r, i) {
  const product = r.pick(CLOUDS);
  const g = {
    id: `g${r.int(4)}${i}`,
    product,
    tier: r.pick(TIERS[product]),
    source: r.pick(['stripe', 'promotion', 'manual_grant']),
    status: r.pick(STATUSES),
    valid_from: r.pick(INSTANTS),
  };
  if (r() < 0.6) g.valid_to = r.pick(INSTANTS);
  if (g.status === 'past_due' && r() < 0.7) g.past_due_since = r.pick(INSTANTS);
  if (r() < 0.4) g.offer = r.pick(['SUITE_PRO_MONTHLY', 'CLOUD_CREATION_PRO_MONTHLY', 'CLOUD_VIDEO_PRO_MONTHLY', 'SUITE_PRO_TWO_CLOUDS_MONTHLY', 'CLOUD_ALL_PRO_MONTHLY']);
  if (g.offer && r() < 0.7) g.source_ref = `sub_${r.int(3)}`;
  return g;
}

function randomMs(r) {
  return Date.parse(r.pick(INSTANTS)) + r.pick([0, 0, 2, 3]) * 86400000 + r.pick([0, -1, 1, -0.5, 0.5, -1000, 1000, 7200000, -7200000]);
}

test('property: Engine.check and Engine.hasAccess over many instants answer as a fresh Engine', () => {
  const r = prng(0xe6e6e);
  for (let round = 0; round < 60; round++) {
    const ents = Array.from({ length: r.int(5) }, (_, i) => randomGrant(r, i));
    const e = new Engine(vcm, ents);
    for (let step = 0; step < 25; step++) {
      const at = randomMs(r);
      const product = r.pick(CLOUDS);
      const tier = r.pick(TIERS[product]);
      const p = e.productIndex(product);
      const t = e.tierIndex(product, tier);
      const fresh = new Engine(vcm, ents);
      const where = `round ${round} step ${step} ${product}/${tier} at ${at} with ${JSON.stringify(ents)}`;
      assert.equal(e.check(p, t, at), fresh.check(p, t, at), `check: ${where}`);
      assert.deepEqual(e.hasAccess(product, tier, at), fresh.hasAccess(product, tier, at), `hasAccess: ${where}`);
      // The same question through the other door of the same fresh Engine.
      assert.equal(fresh.check(p, t, at), fresh.hasAccess(product, tier, at).allowed, `check vs hasAccess: ${where}`);
    }
  }
});

test('property: Engine.pageState answers tool by tool as toolState (the core\'s Decision)', () => {
  const r = prng(0x9a6e);
  const pages = [undefined, 'creation', 'video', 'music'];
  for (let round = 0; round < 40; round++) {
    const ents = Array.from({ length: r.int(5) }, (_, i) => randomGrant(r, i));
    const e = new Engine(vcm, ents);
    for (let step = 0; step < 4; step++) {
      const at = randomMs(r);
      const page = r.pick(pages);
      const usage = r() < 0.5 ? null : { workflow_runs_per_day: r.int(5) };
      const state = e.pageState(page, usage, at);
      for (const s of state) {
        const one = e.toolState(s.tool, usage, at);
        assert.deepEqual(
          { tool: s.tool, label: s.label, locked: s.locked, decision: s.decision },
          { tool: one.tool ?? s.tool, label: one.label, locked: one.locked, decision: one.decision },
          `round ${round} ${s.tool} at ${at} with ${JSON.stringify(ents)}`,
        );
      }
    }
  }
});

test('Engine: setEntitlements drops kept answers; free() then every call errs', () => {
  const g = { id: 'g', product: 'video', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-02-01T00:00:00Z' };
  const e = new Engine(vcm, [g]);
  const p = e.productIndex('video');
  const t = e.tierIndex('video', 'pro');
  assert.equal(e.check(p, t, NOW_MS), true);
  assert.equal(e.hasAccess('video', 'pro', NOW).allowed, true);
  e.setEntitlements([{ ...g, tier: 'basic' }]);
  assert.equal(e.check(p, t, NOW_MS), false);
  assert.equal(e.hasAccess('video', 'pro', NOW).allowed, false);
  e.setEntitlements({ grants: [g] });
  assert.equal(e.check(p, t, NOW_MS), true);
  // Indices the catalog does not have, and bad indices.
  assert.equal(e.check(999, t, NOW_MS), false);
  assert.equal(e.check(p, 999, NOW_MS), false);
  assert.throws(() => e.check(-1, t, NOW_MS), TypeError);
  assert.throws(() => e.check(p, 1.5, NOW_MS), TypeError);
  e.free();
  assert.throws(() => e.check(p, t, NOW_MS), /free/);
  assert.throws(() => e.pageState(), /free/);
});

// ---------------------------------------------------------------------------------------------
// The other helpers: bad input is a clear Error and leaves the instance working.

test('formatMoney and minorDigits: bad amounts and currencies are Errors; the instance survives', () => {
  for (const amount of [NaN, Infinity, 1.5, 1e300, 2 ** 53, -(2 ** 53)]) {
    assert.throws(() => formatMoney({ amount, currency: 'usd' }), Error, `amount ${amount}`);
  }
  for (const money of [null, undefined, 5, 'usd 5', { amount: '5', currency: 'usd' }, { amount: 5 }, { amount: 5, currency: '\uD800' }, { amount: 5, currency: 'x'.repeat(100000) }]) {
    assert.throws(() => formatMoney(money), Error);
  }
  assert.equal(formatMoney({ amount: 5900, currency: 'usd' }), '$59.00');
  assert.equal(formatMoney({ amount: 1500, currency: 'kwd' }), '1.500 KWD');
  assert.equal(formatMoney({ amount: 2 ** 53 - 1, currency: 'jpy' }), `${2 ** 53 - 1} JPY`);
  assert.equal(minorDigits('jpy'), 0);
  assert.throws(() => minorDigits(5), TypeError);
  assert.equal(formatMoney({ amount: -5, currency: 'usd' }), '-$0.05');
});

test('quote: bad input is an Error with a code or a TypeError; the catalog argument is honored', () => {
  const studio = loadCatalog(catalogJson('video-studio'));
  const doc = JSON.parse(catalogJson('video-studio'));
  const rate = doc.usage.rates[0];
  const q = quote(studio, rate.model, rate.quality, 10);
  assert.deepEqual(quote(catalogJson('video-studio'), rate.model, rate.quality, 10), q, 'the catalog as text');
  assert.deepEqual(quote(doc, rate.model, rate.quality, 10), q, 'the catalog as an object');
  for (const s of [NaN, -1, 1.5, Infinity, 1e300]) {
    assert.throws(() => quote(studio, rate.model, rate.quality, s), Error, `seconds ${s}`);
  }
  assert.throws(() => quote(studio, rate.model, rate.quality, '10'), TypeError);
  assert.throws(() => quote(vcm, rate.model, rate.quality, 10), (e) => e.code === 'no_usage_pricing');
  assert.throws(() => quote(studio, 'no-such-model\uD800', rate.quality, 10), Error);
  assert.deepEqual(quote(studio, rate.model, rate.quality, 10), q, 'still answers');
});

test('verifySnapshot and notices: garbage is a clear Error with a code; the instance survives', () => {
  const key = 'ab'.repeat(32);
  const junk = ['', '.', 'a.b', '\uD800.\uD800', 'x'.repeat(200000) + '.y', `${Buffer.from('{}').toString('base64url')}.AAAA`];
  for (const token of junk) {
    const got = outcome(() => verifySnapshot(token, { k: key }, null, NOW));
    assert.ok('error' in got, `token ${token.slice(0, 20)}: ${JSON.stringify(got).slice(0, 200)}`);
  }
  for (const t of [null, 5, {}]) {
    assert.throws(() => verifySnapshot(t, { k: key }), (e) => e.code === 'malformed_snapshot');
  }
  for (const keys of [null, [], 'k']) assert.throws(() => verifySnapshot('a.b', keys), TypeError);
  for (const now of [NaN, 'soon', Infinity]) assert.throws(() => verifySnapshot('a.b', { k: key }, null, now), Error);
  for (const s of [null, 5, 'x']) assert.throws(() => notices(s, { catalog: vcm, now: NOW }), TypeError);
  const n = notices({ subject: 'u', grants: [], balances: {} }, { catalog: vcm, now: NOW });
  assert.deepEqual(n.warnings, []);
  assert.deepEqual(n.payments, []);
  assert.equal(hasAccess([row()], 'creation', 'pro', NOW), true, 'later calls still answer');
});

test('applyExportPolicy: every form of `now`, and a payload, give the policy the core decides', () => {
  const users = [null, { subscription_tier: 'free' }, { subscription_tier: 'starter' }, { subscription_tier: 'pro' }, { subscription_tier: 'nope' }];
  for (const user of users) {
    const policy = applyExportPolicy(user, NOW);
    for (const at of [new Date(NOW), NOW_MS, NOW]) assert.deepEqual(applyExportPolicy(user, at), policy, `${JSON.stringify(user)} at ${String(at)}`);
    const payload = { file: 'a.png' };
    assert.equal(applyExportPolicy(user, payload, NOW), policy.policy === 'refused' ? null : payload);
    if (policy.policy === 'full') assert.equal(canExportFullRes(user, NOW), true);
    if (policy.policy === 'watermarked') assert.equal(shouldWatermarkExports(user, NOW), true);
  }
  assert.throws(() => applyExportPolicy({ subscription_tier: 'pro' }, NaN), TypeError);
  assert.throws(() => applyExportPolicy({ subscription_tier: 'pro' }, '1772323200000'), TypeError);
});
