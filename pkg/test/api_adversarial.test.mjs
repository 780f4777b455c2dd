// Adversarial review of the package's public API as an app calls it (a Next.js server
// component or a client component): every export and Engine method given values of the
// wrong type, hostile JSON, odd times and money, and inputs of another shape. What must
// hold: a malformed input is an Error with a clear message (never a wasm trap, never an
// answer as if the input had said nothing), a denial is a value, nothing global is left
// broken after an error, and failing calls do not grow the module's memory.
// (The kept answers and caches are adversarial.test.mjs's.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as tollgate from '../node.js';
import {
  Engine,
  loadCatalog,
  useCatalog,
  hasAccess,
  explainAccess,
  resolveUserTier,
  canUseAI,
  explainUser,
  workflowRunAllowed,
  explainWorkflowRun,
  applyExportPolicy,
  quote,
  formatMoney,
  minorDigits,
  verifySnapshot,
  getOrganizationEntitlements,
  hasFeatureAccess,
  notices,
} from '../node.js';
// The generated glue hands back the instance already loaded: its memory is what is measured.
import { initSync as loadedModule } from '../tollgate.js';
import { catalogJson } from './catalogs.mjs';

const vcmText = catalogJson('vcm-suite');
const vcm = loadCatalog(vcmText);
const razorpay = loadCatalog(catalogJson('razorpay-ai'));
const orgSeats = loadCatalog(catalogJson('org-seats'));
const studio = loadCatalog(catalogJson('video-studio'));
useCatalog(vcm);

const NOW = '2026-03-01T00:00:00Z';
const NOW_MS = Date.parse(NOW);
const grant = (over = {}) => ({ id: 'g', product: 'video', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', ...over });

/** Runs `fn` and asserts it throws an Error (not a trap) whose message matches `re`. */
function refuses(fn, re, what = '') {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `${what}: expected an Error, got ${caught === undefined ? 'an answer' : String(caught)}`);
  assert.ok(!(caught instanceof WebAssembly.RuntimeError), `${what}: a wasm trap escaped: ${caught.message}`);
  assert.doesNotMatch(caught.message, /unreachable|RuntimeError|panicked/, what);
  if (re) assert.match(caught.message, re, what);
  return caught;
}

/** The module is still whole: valid calls answer as before. */
function stillAnswers() {
  assert.equal(hasAccess([], 'creation', 'free', NOW), true);
  assert.equal(hasAccess([], 'creation', 'pro', NOW), false);
  assert.equal(new Engine(vcm, [grant()]).hasAccess('video', 'pro', NOW).allowed, true);
  assert.equal(formatMoney({ amount: 5900, currency: 'usd' }), '$59.00');
}

/** Values of every JavaScript type an app may hand over by mistake. */
const WRONG = {
  undefined: undefined,
  null: null,
  number: 42,
  NaN: NaN,
  Infinity: Infinity,
  '-0': -0,
  bigint: 10n,
  symbol: Symbol('x'),
  function: () => 1,
  boolean: true,
  array: [],
  object: {},
  string: 'x',
  date: new Date(NOW),
};

test('wrong types: every export and Engine method answers or throws an Error, never traps, and the module survives', () => {
  const e = new Engine(vcm, [grant({ product: 'creation' })]);
  const calls = {
    loadCatalog: (v) => loadCatalog(v),
    useCatalog: (v) => new Engine(loadCatalog(v)),
    'Engine(catalog)': (v) => new Engine(v, []),
    'Engine(entitlements)': (v) => new Engine(vcm, v),
    setEntitlements: (v) => new Engine(vcm).setEntitlements(v),
    'hasAccess(rows)': (v) => hasAccess(v, 'creation', 'pro', NOW),
    'hasAccess(cloud)': (v) => hasAccess([], v, 'pro', NOW),
    'explainAccess(tier)': (v) => explainAccess([], 'creation', v, NOW),
    resolveUserTier: (v) => resolveUserTier(v, NOW),
    'canUseAI(entitlements)': (v) => canUseAI({ subscription_tier: 'pro', entitlements: v }, NOW),
    explainUser: (v) => explainUser({}, v, NOW),
    workflowRunAllowed: (v) => workflowRunAllowed({ subscription_tier: 'pro' }, v, NOW),
    explainWorkflowRun: (v) => explainWorkflowRun(v, 1, NOW),
    applyExportPolicy: (v) => applyExportPolicy({ subscription_tier: 'pro' }, v),
    'Engine.hasAccess': (v) => e.hasAccess(v, 'pro', NOW),
    'Engine.can': (v) => e.can(v, NOW),
    'Engine.limit': (v) => e.limit(v, NOW),
    'Engine.limitInfo': (v) => e.limitInfo(v, NOW),
    'Engine.checkLimit': (v) => e.checkLimit('workflow_runs_per_day', v, NOW),
    'Engine.checkFeature(quantity)': (v) => e.checkFeature('use_ai', v, 0, NOW),
    'Engine.checkFeature(used)': (v) => e.checkFeature('workflow_runs_per_day', 1, v, NOW),
    'Engine.exportPolicy': (v) => e.exportPolicy(v),
    'Engine.pageState(usage)': (v) => e.pageState(null, v, NOW),
    'Engine.toolState(usage)': (v) => e.toolState('ai-caption-writer', v, NOW),
    'Engine.offersUnlocking': (v) => e.offersUnlocking(v, NOW),
    'Engine.productIndex': (v) => e.productIndex(v),
    'Engine.tierIndex': (v) => e.tierIndex('creation', v),
    'Engine.check(index)': (v) => e.check(v, 0, NOW_MS),
    'Engine.check(now)': (v) => e.check(0, 2, v),
    'Engine.nextChange': (v) => e.nextChange(v),
    'quote(seconds)': (v) => quote(studio, 'standard', 'standard', v),
    'quote(model)': (v) => quote(studio, v, 'standard', 10),
    formatMoney: (v) => formatMoney(v),
    'formatMoney(amount)': (v) => formatMoney({ amount: v, currency: 'usd' }),
    'formatMoney(currency)': (v) => formatMoney({ amount: 1, currency: v }),
    minorDigits: (v) => minorDigits(v),
    'verifySnapshot(token)': (v) => verifySnapshot(v, {}),
    'verifySnapshot(keys)': (v) => verifySnapshot('a.b', v),
    notices: (v) => notices(v, { catalog: razorpay }),
    'notices(used)': (v) => notices({ grants: [] }, { catalog: razorpay, used: v }),
    getOrganizationEntitlements: (v) => getOrganizationEntitlements(v, null, { catalog: orgSeats }),
    'hasFeatureAccess(feature)': (v) => hasFeatureAccess({ organizations: [] }, v, null, { catalog: orgSeats }),
  };
  for (const [name, call] of Object.entries(calls)) {
    for (const [kind, v] of Object.entries(WRONG)) {
      try {
        call(v);
      } catch (err) {
        const what = `${name}(${kind})`;
        assert.ok(err instanceof Error, `${what}: threw a non-Error ${String(err)}`);
        assert.ok(!(err instanceof WebAssembly.RuntimeError), `${what}: a wasm trap: ${err.message}`);
        assert.ok(err.message.length > 10 && !/unreachable/.test(err.message), `${what}: ${err.message}`);
      }
    }
  }
  useCatalog(vcm);
  stillAnswers();
});

test('entitlements the wrapper cannot write as JSON are refused, never read as "no entitlements"', () => {
  // A symbol, a function or a toJSON giving nothing is what JSON.stringify leaves out: the
  // engine must not be made (or set) with nothing held as if no entitlements were given.
  const held = new Engine(vcm, [grant()]);
  for (const [kind, v] of Object.entries({ symbol: Symbol('s'), function: () => [grant()], toJSON: { toJSON() {} } })) {
    refuses(() => new Engine(vcm, v), /entitlements/, `new Engine(${kind})`);
    refuses(() => held.setEntitlements(v), /entitlements/, `setEntitlements(${kind})`);
    assert.equal(held.hasAccess('video', 'pro', NOW).allowed, true, `setEntitlements(${kind}) left the grants in place`);
  }
  // NaN and Infinity would be written as null; a BigInt or a cycle names the input.
  refuses(() => new Engine(vcm, NaN), /invalid entitlements: an object or JSON text is needed, got number NaN/);
  refuses(() => new Engine(vcm, { grants: [grant({ valid_from: 1n })] }), /invalid entitlements: cannot be written as JSON/);
  const cyclic = { grants: [] };
  cyclic.self = cyclic;
  refuses(() => new Engine(vcm, cyclic), /invalid entitlements: cannot be written as JSON/);
  // The same for usage and a notice's `used`: a limit's count must not vanish.
  refuses(() => held.pageState(null, Symbol('u'), NOW), /invalid usage: an object or JSON text is needed/);
  refuses(() => held.toolState('ai-caption-writer', () => ({}), NOW), /invalid usage: an object or JSON text is needed/);
  refuses(() => notices({ grants: [] }, { catalog: razorpay, used: Symbol('u') }), /invalid used: an object or JSON text is needed/);
  refuses(() => notices({ grants: [], balances: { ai_credits: 5n } }, { catalog: razorpay }), /invalid snapshot: cannot be written as JSON/);
  stillAnswers();
});

test("a plan user's grants of another type are refused, not read as none", () => {
  const pro = { subscription_tier: 'pro' };
  assert.equal(canUseAI(pro, NOW), true);
  for (const v of [NaN, Infinity, Symbol('g'), () => [], 1, 'x']) {
    refuses(() => canUseAI({ ...pro, entitlements: v }, NOW), /entitlements|user/, `entitlements ${String(v)}`);
  }
  // An empty list is grants (none held): the documented meaning, not an error.
  assert.equal(canUseAI({ ...pro, entitlements: [] }, NOW), false);
  assert.equal(canUseAI({ ...pro, entitlements: null }, NOW), true);
});

test('Engine.check: a null nowMs is the clock, as every other `now`, not 1970', () => {
  const g = grant({ valid_from: '2026-01-01T00:00:00Z', valid_to: '9999-01-01T00:00:00Z' });
  const e = new Engine(vcm, [g]);
  const p = e.productIndex('video');
  const t = e.tierIndex('video', 'pro');
  assert.equal(e.check(p, t), true, 'omitted: now');
  assert.equal(e.check(p, t, null), true, 'null: now, as hasAccess(..., null)');
  assert.equal(e.hasAccess('video', 'pro', null).allowed, true);
  assert.equal(new Engine(vcm, [g]).check(p, t, null), true, 'null on a fresh engine (nothing kept)');
  // The other forms of `now` read as everywhere; anything else is refused, never coerced.
  assert.equal(new Engine(vcm, [g]).check(p, t, new Date(NOW)), true);
  assert.equal(new Engine(vcm, [g]).check(p, t, new Date('2025-01-01T00:00:00Z')), false);
  assert.equal(new Engine(vcm, [g]).check(p, t, NOW), true);
  for (const v of [true, [], {}, '1', 'x', 10n, Symbol('t')]) {
    refuses(() => new Engine(vcm, [g]).check(p, t, v), /now|RFC 3339/, `check(now=${String(v)})`);
  }
  // Numbers are the hot path, unchanged: NaN, Infinity and out-of-range answer false.
  for (const v of [NaN, Infinity, -Infinity, 8.64e15 + 1]) assert.equal(e.check(p, t, v), false, String(v));
  assert.equal(e.check(p, t, -0), false, '-0 is 1970, before the grant');
});

test('options given as null take the defaults; options of another type are refused', () => {
  useCatalog(orgSeats);
  try {
    const snapshot = { organizations: [] };
    assert.equal(getOrganizationEntitlements(snapshot, null, null), null);
    assert.equal(hasFeatureAccess(snapshot, 'x', null, null), false);
    useCatalog(razorpay);
    assert.deepEqual(notices({ grants: [] }, null), { warnings: [], payments: [] });
    refuses(() => notices({ grants: [] }, 5), /options must be an object/);
    refuses(() => hasFeatureAccess(snapshot, 'x', null, 'now'), /options must be an object/);
  } finally {
    useCatalog(vcm);
  }
});

test("an organization's snapshot of another shape is refused, not read as no membership or no end", () => {
  const org = {
    id: 'o1', name: 'Acme', role: 'member', seat: true, seats: { count: 2, used: 2, reserved: 0, available: 0 },
    grants: [{ id: 'x', product: 'org', tier: 'BUSINESS', source: 'stripe', status: 'active', valid_from: '2027-01-01T00:00:00Z', valid_to: '2027-02-01T00:00:00Z' }],
  };
  const opts = { catalog: orgSeats, now: '2027-01-10T00:00:00Z' };
  assert.equal(getOrganizationEntitlements({ organizations: [org] }, null, opts).tier, 'BUSINESS');
  for (const orgs of [{}, 'abc', 5, { 0: org, length: 1 }]) {
    const e = refuses(() => getOrganizationEntitlements({ organizations: orgs }, null, opts), /organizations/);
    assert.equal(e.code, 'malformed_snapshot');
  }
  for (const entry of [null, 5, 'o1', [org]]) {
    refuses(() => getOrganizationEntitlements({ organizations: [entry, org] }, 'o1', opts), /organizations\[0\]/);
    refuses(() => hasFeatureAccess({ organizations: [org, entry] }, 'x', 'o1', opts), /organizations\[1\]/);
  }
  refuses(() => getOrganizationEntitlements({ organizations: [org] }, 5, opts), /`organizationId` must be a string/);
  // Another catalog's snapshot must not pass because its catalog_id has another type.
  for (const id of [5, {}, ['org-seats'], true]) {
    const e = refuses(() => getOrganizationEntitlements({ catalog_id: id, organizations: [org] }, null, opts), /catalog_id/);
    assert.equal(e.code, 'malformed_snapshot');
    refuses(() => hasFeatureAccess({ catalog_id: id, organizations: [org] }, 'x', null, opts), /catalog_id/);
  }
  assert.equal(
    refuses(() => getOrganizationEntitlements({ catalog_id: 'other', organizations: [org] }, null, opts)).code,
    'wrong_catalog',
  );
  // Nor hold past its end because the end has another type; Unix seconds are read as the core reads them.
  for (const end of [{}, true, 1.5, [1]]) {
    refuses(() => getOrganizationEntitlements({ expires_at: end, organizations: [org] }, null, opts), /expires_at/);
  }
  const ended = Date.parse('2027-01-05T00:00:00Z') / 1000;
  const asText = getOrganizationEntitlements({ expires_at: '2027-01-05T00:00:00Z', organizations: [org] }, null, opts);
  const asSeconds = getOrganizationEntitlements({ expires_at: ended, organizations: [org] }, null, opts);
  assert.deepEqual(asSeconds, asText);
  assert.notDeepEqual(asText, getOrganizationEntitlements({ organizations: [org] }, null, opts), 'the end changes the answer');
});

test('hostile JSON: __proto__ and constructor keys pollute nothing and are refused where a catalog does not know them', () => {
  const before = Object.getOwnPropertyNames(Object.prototype).sort();
  refuses(() => loadCatalog(vcmText.replace('{', '{"__proto__":{"polluted":1},')), /unknown field `__proto__`/);
  refuses(() => loadCatalog(vcmText.replace('{', '{"constructor":{"prototype":{"polluted":1}},')), /unknown field `constructor`/);
  const doc = JSON.parse(vcmText);
  const withProto = JSON.parse(JSON.stringify(doc).replace('"catalog":{', '"catalog":{"__proto__":{"polluted":1},'));
  assert.equal(refuses(() => loadCatalog(withProto), /__proto__/).path, 'catalog');
  // Rows, users, grants, usage and keys with such keys: answers as without them, nothing polluted.
  const rows = JSON.parse('[{"__proto__":{"tier":"enterprise"},"cloud_id":"creation","tier":"basic","source":"stripe","status":"active","valid_from":"2026-01-01T00:00:00Z"}]');
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), false, 'the row is basic; an inherited tier is not its own');
  assert.equal(hasAccess(JSON.stringify(rows), 'creation', 'pro', NOW), false);
  assert.equal(explainAccess(rows, 'creation', 'pro', NOW).tier, 'basic');
  const user = JSON.parse('{"__proto__":{"subscription_tier":"pro"}}');
  assert.equal(resolveUserTier(user, NOW), 'free');
  const e = new Engine(vcm, '{"__proto__":{"grants":[]},"constructor":1,"grants":[' + JSON.stringify(grant()) + ']}');
  assert.equal(e.hasAccess('video', 'pro', NOW).allowed, true);
  // An own `__proto__` key of parsed JSON is a usage entry like any other: not a count, refused.
  refuses(() => e.pageState(null, JSON.parse('{"__proto__":{"workflow_runs_per_day":99}}'), NOW), /invalid usage/);
  const vector = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
  const keys = JSON.parse(`{"__proto__":"junk","constructor":"junk","${vector.kid}":"${vector.public_key_b64url}"}`);
  const snap = verifySnapshot(vector.token, keys, undefined, vector.now);
  assert.equal(snap.kid, vector.kid);
  for (const v of [snap, e.hasAccess('video', 'basic', NOW), explainUser(user, 'use_ai', NOW)]) {
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
  }
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
  assert.equal({}.polluted, undefined);
  assert.equal({}.tier, undefined);
  assert.equal({}.subscription_tier, undefined);
});

test('duplicate keys: a field or a map key written twice in JSON text is refused, never one of the two picked', () => {
  const g = JSON.stringify(grant());
  refuses(() => new Engine(vcm, `{"grants":[],"grants":[${g}]}`), /duplicate field `grants`/);
  refuses(() => new Engine(vcm, `[${g.replace('"tier":"pro"', '"tier":"free","tier":"pro"')}]`), /grants\[0\]: duplicate field `tier`/);
  // A pool's balance named twice: which one stands is not for the reader to guess.
  refuses(() => new Engine(razorpay, '{"grants":[],"balances":{"ai_credits":0,"ai_credits":1000}}'), /`ai_credits` is given twice/);
  const e = new Engine(razorpay, '{"grants":[],"balances":{"ai_credits":0}}');
  refuses(() => e.setEntitlements('{"balances":{"ai_credits":1000,"ai_credits":0}}'), /`ai_credits` is given twice/);
  assert.equal(e.checkFeature('ai_credits', 1, 0, NOW).allowed, false, 'the engine kept its entitlements');
  // A limit's usage named twice.
  const v = new Engine(vcm, [grant({ product: 'suite', tier: 'starter' })]);
  refuses(() => v.pageState('growth', '{"workflow_runs_per_day":0,"workflow_runs_per_day":3}', NOW), /`workflow_runs_per_day` is given twice/);
  refuses(() => v.toolState('workflow-runner', '{"workflow_runs_per_day":3,"workflow_runs_per_day":0}', NOW), /given twice/);
  refuses(
    () => v.offersUnlocking({ tool: 'workflow-runner', usage: '{"workflow_runs_per_day":3,"workflow_runs_per_day":0}' }, NOW),
    /given twice/,
  );
  // A notice's `used` and a snapshot's balances named twice.
  const premium = { grants: [{ id: 'g', product: 'premium', tier: 'PREMIUM', source: 'razorpay', status: 'active', valid_from: '2026-12-01T00:00:00Z', valid_to: '2026-12-31T00:00:00Z', offer: 'PREMIUM_MONTHLY' }] };
  const opts = { catalog: razorpay, now: '2026-12-04T00:00:00Z' };
  refuses(() => notices(premium, { ...opts, used: '{"monthly_ai_credits":1700,"monthly_ai_credits":0}' }), /given twice/);
  // Without the duplicate, the same texts answer.
  assert.equal(notices(premium, { ...opts, used: '{"monthly_ai_credits":1700}' }).warnings[0].rule, 'limit:monthly_ai_credits:80%');
  assert.equal(v.pageState('growth', '{"workflow_runs_per_day":3}', NOW).length > 0, true);
});

test('deep nesting and huge strings: Errors, no stack overflow in WebAssembly, and the module survives', () => {
  const deep = (n) => '['.repeat(n) + ']'.repeat(n);
  refuses(() => loadCatalog(`{"catalog":${deep(100000)}}`), /catalog/);
  refuses(() => new Engine(vcm, deep(100000)), /invalid entitlements/);
  refuses(() => new Engine(vcm, `{"grants":[${'{"a":'.repeat(20000)}1${'}'.repeat(20000)}]}`), /invalid entitlements/);
  refuses(() => hasAccess(`[${'{"a":'.repeat(20000)}1${'}'.repeat(20000)}]`, 'creation', 'pro', NOW), /rows/);
  refuses(() => explainAccess(deep(50000), 'creation', 'pro', NOW), /rows/);
  refuses(() => new Engine(vcm).pageState(null, `{"a":${deep(50000)}}`, NOW), /usage/);
  const huge = 'x'.repeat(8_000_000);
  refuses(() => hasAccess([], huge, 'pro', NOW), /unknown product/);
  refuses(() => new Engine(vcm).can(huge, NOW), /unknown capability/);
  refuses(() => verifySnapshot(huge, {}), /longer than/);
  refuses(() => formatMoney({ amount: 1, currency: huge }), /three-letter/);
  assert.equal(hasAccess([{ cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: NOW, source_ref: huge }], 'creation', 'pro', NOW), true);
  stillAnswers();
});

test('frozen objects, Proxies and throwing getters: read as plain values, or the getter\'s own Error', () => {
  const frozen = Object.freeze([Object.freeze({ cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z' })]);
  assert.equal(hasAccess(frozen, 'creation', 'pro', NOW), true);
  assert.equal(new Engine(vcm, Object.freeze({ grants: Object.freeze([Object.freeze(grant())]) })).hasAccess('video', 'pro', NOW).allowed, true);
  assert.equal(loadCatalog(Object.freeze(JSON.parse(vcmText))).id, 'vcm-suite');
  assert.equal(hasAccess(new Proxy([...frozen], {}), 'creation', 'pro', NOW), true);
  assert.equal(new Engine(vcm, new Proxy({ grants: [grant()] }, {})).hasAccess('video', 'pro', NOW).allowed, true);
  const boom = new Error('boom from the app');
  const throwing = { get grants() { throw boom; } };
  // Written as JSON by the wrapper: its Error names the input, the app's own is its cause.
  const wrapped = refuses(() => new Engine(vcm, throwing), /invalid entitlements: cannot be written as JSON: boom from the app/);
  assert.equal(wrapped.cause, boom);
  const row = { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', get valid_from() { throw boom; } };
  assert.equal(refuses(() => hasAccess([row], 'creation', 'pro', NOW)), boom);
  assert.equal(refuses(() => formatMoney({ currency: 'usd', get amount() { throw boom; } })), boom);
  const trap = new Proxy({}, { ownKeys() { throw boom; }, get() { throw boom; } });
  assert.equal(refuses(() => loadCatalog(trap), /invalid catalog: cannot be written as JSON/).cause, boom);
  assert.equal(refuses(() => canUseAI(trap, NOW)), boom, 'the user is read field by field');
  stillAnswers();
});

test('times: offsets, leap seconds, the edges of the years read, Date vs string vs number', () => {
  const e = (g) => new Engine(vcm, [grant(g)]);
  // One instant written with another offset is the same instant.
  const start = { valid_from: '2026-03-01T05:30:00+05:30' };
  assert.equal(e(start).hasAccess('video', 'pro', '2026-02-28T23:59:59Z').allowed, false);
  assert.equal(e(start).hasAccess('video', 'pro', '2026-03-01T00:00:00Z').allowed, true);
  assert.equal(e(start).hasAccess('video', 'pro', '2026-02-28T19:00:00-05:00').allowed, true);
  assert.deepEqual(e({ valid_from: 1767225600 }).hasAccess('video', 'pro', NOW), e({ valid_from: '2026-01-01T00:00:00Z' }).hasAccess('video', 'pro', NOW));
  // `now` as a Date, RFC 3339 text (any offset) or epoch ms: one answer.
  const g = e({ valid_to: '2026-03-01T00:00:01Z' });
  for (const now of [new Date(NOW_MS), NOW, '2026-03-01T01:00:00+01:00', NOW_MS, NOW_MS + 999]) {
    assert.equal(g.hasAccess('video', 'pro', now).allowed, true, String(now));
  }
  for (const now of [new Date(NOW_MS + 1000), '2026-03-01T00:00:01Z', NOW_MS + 1000]) {
    assert.equal(g.hasAccess('video', 'pro', now).allowed, false, String(now));
  }
  // A leap second (23:59:60) is inside the second it follows, in a grant and in `now` alike.
  const leap = e({ valid_to: '2016-12-31T23:59:60Z', valid_from: '2016-01-01T00:00:00Z' });
  assert.equal(leap.hasAccess('video', 'pro', '2016-12-31T23:59:58Z').allowed, true);
  assert.equal(leap.hasAccess('video', 'pro', '2017-01-01T00:00:00Z').allowed, false);
  assert.equal(hasAccess([], 'creation', 'free', '2016-12-31T23:59:60Z'), true);
  // The years 0000 to 9999 are read; beyond, a clear Error (never a wrong instant).
  assert.equal(e({ valid_from: '0000-01-01T00:00:00Z', valid_to: '9999-12-31T23:59:59Z' }).hasAccess('video', 'pro', NOW).allowed, true);
  for (const t of ['10000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '-000001-01-01T00:00:00Z', '2026-03-01T00:00:00', '2026-02-30T00:00:00Z', 'yesterday']) {
    refuses(() => e({ valid_from: t }), /RFC 3339|outside the years/, `valid_from ${t}`);
    refuses(() => hasAccess([], 'creation', 'free', t), /RFC 3339|outside the years|ambiguous/, `now ${t}`);
  }
  for (const secs of [1e15, 9223372036854775807, -9223372036854775808, 1.5, 1e20]) {
    refuses(() => e({ valid_to: secs }), /grants\[0\]: .*(outside the years|whole Unix seconds|out of range)/, `valid_to ${secs}`);
  }
  // Epoch milliseconds in a grant (seconds expected) are a clear Error, not a date 50000 years on.
  refuses(() => e({ valid_from: NOW_MS }), /outside the years 0000 to 9999/);
  // The far edges of `now`: JS Date's own range answers, past it is an Error.
  assert.equal(hasAccess([], 'creation', 'free', 8.64e15), true);
  assert.equal(hasAccess([], 'creation', 'free', new Date(-8.64e15)), true);
  refuses(() => hasAccess([], 'creation', 'free', 8.64e15 + 1), /now/);
  refuses(() => hasAccess([], 'creation', 'free', new Date(NaN)), /invalid Date/);
  refuses(() => hasAccess([], 'creation', 'free', '1767225600'), /ambiguous/);
  stillAnswers();
});

test('money: amounts that are not whole minor units, and every kind of currency', () => {
  for (const amount of [1.5, 0.1 + 0.2, NaN, Infinity, 2 ** 53, -(2 ** 53)]) {
    refuses(() => formatMoney({ amount, currency: 'usd' }), /whole number of minor units/, String(amount));
  }
  for (const amount of ['100', 100n, null, undefined, [100]]) {
    refuses(() => formatMoney({ amount, currency: 'usd' }), /`amount` must be a number/, String(amount));
  }
  assert.equal(formatMoney({ amount: 2 ** 53 - 1, currency: 'usd' }).replace(/[^0-9]/g, ''), String(2 ** 53 - 1));
  assert.equal(formatMoney({ amount: -0, currency: 'usd' }), formatMoney({ amount: 0, currency: 'usd' }));
  // Zero-decimal, three-decimal and unknown (two by default) currencies, in any case.
  assert.equal(formatMoney({ amount: 500, currency: 'JPY' }), formatMoney({ amount: 500, currency: 'jpy' }));
  assert.equal(minorDigits('JPY'), 0);
  assert.equal(minorDigits('kwd'), 3);
  assert.equal(formatMoney({ amount: 1500, currency: 'KWD' }), '1.500 KWD');
  assert.equal(minorDigits('xyz'), 2);
  assert.match(formatMoney({ amount: 12345, currency: 'xyz' }), /123\.45/);
  for (const currency of ['us', 'usdd', 'u$d', '123', '', ' usd', 'ÜSD', 'us\u0000']) {
    refuses(() => formatMoney({ amount: 1, currency }), /three-letter ISO 4217/, JSON.stringify(currency));
    refuses(() => minorDigits(currency), /three-letter ISO 4217/, JSON.stringify(currency));
  }
  // A quote's seconds are whole: a float, a string or a BigInt is refused with a clear Error.
  for (const seconds of [1.5, '10', 10n, NaN, -1]) {
    refuses(() => quote(studio, 'standard', 'standard', seconds), /seconds/, String(seconds));
  }
  assert.equal(quote(studio, 'standard', 'standard', 10).cost.currency.length, 3);
});

test('catalogs and snapshots of another shape: clear Errors naming what is wrong, the current catalog kept', () => {
  const shapes = [
    [[], /catalog error/],
    [{}, /missing field `catalog`/],
    [{ products: 'x' }, /products/],
    [{ catalog: { id: 1 } }, /catalog/],
    [new Map(), /missing field `catalog`/],
    [new Date(NOW), /catalog error/],
    ['null', /catalog error/],
    ['\uFEFF' + vcmText, /invalid JSON catalog/],
    ['[catalog]\nid = "x"', /JSON catalogs/],
  ];
  for (const [src, re] of shapes) {
    refuses(() => useCatalog(src), re, String(src).slice(0, 20));
    refuses(() => new Engine(src, []), re);
  }
  // A verified snapshot's document is not a catalog, and a catalog is not entitlements.
  refuses(() => loadCatalog({ v: 1, kid: 'k', grants: [] }), /unknown field `v`/);
  refuses(() => new tollgate.Catalog(), /loadCatalog/);
  // A failed useCatalog leaves the catalog set before it in place.
  assert.equal(hasAccess([], 'creation', 'free', NOW), true);
  assert.equal(new Engine(null, []).catalog, vcm);
});

test('a denial is a value, a malformed question an Error: the same call shape for both', () => {
  const e = new Engine(vcm, []);
  const d = e.hasAccess('video', 'pro', NOW);
  assert.equal(d.allowed, false);
  assert.equal(typeof d.reason, 'string');
  assert.ok(d.upgrade && typeof d.upgrade.display === 'string');
  refuses(() => e.hasAccess('video', 'platinum', NOW), /not a tier of product `video`/);
  refuses(() => e.hasAccess('vidoe', 'pro', NOW), /unknown product `vidoe`/);
  assert.equal(e.checkLimit('workflow_runs_per_day', 0, NOW).allowed, false);
  refuses(() => e.checkLimit('workflow_runs_per_days', 0, NOW), /unknown limit/);
  const c = refuses(() => e.checkFeature('nope', 1, 0, NOW), /nope/);
  assert.equal(c.code, 'unknown_feature');
  assert.equal(refuses(() => e.checkFeature('use_ai', 0, 0, NOW)).code, 'invalid_quantity');
  assert.equal(refuses(() => e.checkFeature('use_ai', 1.5, 0, NOW)).code, 'invalid_quantity');
});

test('no global state is corrupted by errors: each failing call is followed by a right answer', () => {
  const ok = new Engine(vcm, [grant()]);
  const failing = [
    () => loadCatalog('{'),
    () => useCatalog({}),
    () => new Engine(vcm, '[{"product":"video"}]'),
    () => ok.setEntitlements('{"grants":7}'),
    () => ok.hasAccess('video', 'nope', NOW),
    () => hasAccess([{ cloud_id: 'creation', status: 'paused' }], 'creation', 'pro', NOW),
    () => hasAccess('[{', 'creation', 'pro', NOW),
    () => verifySnapshot('x.y', { k: 'zz' }),
    () => notices({ grants: 5 }, { catalog: razorpay }),
    () => quote(studio, 'nope', 'standard', 10),
    () => formatMoney({ amount: 0.5, currency: 'usd' }),
    () => ok.check(0, 0, Symbol('x')),
  ];
  for (const [i, fail] of failing.entries()) {
    refuses(fail, undefined, `failing call ${i}`);
    assert.equal(ok.hasAccess('video', 'pro', NOW).allowed, true, `after failing call ${i}`);
    assert.equal(ok.check(ok.productIndex('video'), ok.tierIndex('video', 'pro'), NOW_MS), true);
    stillAnswers();
  }
});

test('memory: 10,000 failing calls do not grow the WebAssembly memory past a bound', () => {
  const memory = loadedModule().memory;
  assert.ok(memory instanceof WebAssembly.Memory, 'the loaded instance exposes its memory');
  const e = new Engine(vcm, [grant()]);
  const failing = [
    () => new Engine(vcm, '[{"product":"video","tier":"pro","source":"stripe","status":"paused","valid_from":0}]'),
    () => e.hasAccess('video', 'nope', NOW),
    () => e.checkFeature('nope', 1, 0, NOW),
    () => e.pageState(null, '{"a":-1}', NOW),
    () => explainAccess('[{"cloud_id":"creation"}]', 'creation', 'pro', NOW),
    () => loadCatalog('{"catalog":{"id":"x"}}'),
    () => verifySnapshot('a'.repeat(2000) + '.' + 'b'.repeat(2000), { k: '00'.repeat(32) }),
    () => notices({ grants: [{ product: 1 }] }, { catalog: razorpay }),
    () => quote(studio, 'standard', 'standard', 1e9),
    () => new Engine(razorpay, '{"balances":{"a":1,"a":2}}'),
  ];
  const round = (n) => {
    for (let i = 0; i < n; i++) {
      try {
        failing[i % failing.length]();
      } catch {
        // expected: every call fails
      }
    }
  };
  round(2_000); // warm up: the allocator's pools settle
  const before = memory.buffer.byteLength;
  round(10_000);
  const after = memory.buffer.byteLength;
  assert.ok(after - before <= 1 << 20, `memory grew ${after - before} bytes over 10,000 failing calls (${before} -> ${after})`);
  stillAnswers();
});
