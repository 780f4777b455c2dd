// The package's public API under Node: every export, the forms of `now`, and
// bad input, which must give a JS Error with a clear message, never a wasm trap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

import * as tollgate from 'tollgate';
import {
  Catalog,
  Engine,
  loadCatalog,
  useCatalog,
  init,
  initSync,
  isReady,
  hasAccess,
  explainAccess,
  resolveUserTier,
  canUseAI,
  canExportFullRes,
  shouldWatermarkExports,
  canUseHeavyTools,
  canUseMultiStepHeavyTools,
  explainUser,
  workflowRunAllowed,
  explainWorkflowRun,
  applyExportPolicy,
  CAPABILITIES,
} from 'tollgate';

import { catalogJson } from './catalogs.mjs';
import { NOW, row } from './support.mjs';

const PKG = new URL('../', import.meta.url);
const vcmJson = catalogJson('vcm-suite');
const vcm = loadCatalog(vcmJson);

const grant = (over = {}) => ({
  id: 'g1',
  product: 'creation',
  tier: 'pro',
  source: 'stripe',
  status: 'active',
  valid_from: '2026-02-01T00:00:00Z',
  valid_to: '2026-04-01T00:00:00Z',
  ...over,
});

/** Asserts `fn` throws a real JS Error (not a wasm trap) whose message contains every part. */
function throwsClearly(fn, ...parts) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an error containing ${parts.join(', ')}`);
  assert.ok(caught instanceof Error, `expected an Error, got ${String(caught)}`);
  assert.ok(!(caught instanceof WebAssembly.RuntimeError), `a wasm trap escaped: ${caught.message}`);
  for (const p of parts) {
    assert.ok(caught.message.includes(p), `error message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(p)}`);
  }
  return caught;
}

// ------------------------------------------------------------------ module shape

test('the package imports as ESM from Node and is ready on import', () => {
  assert.equal(isReady(), true);
  const pkgJson = JSON.parse(readFileSync(new URL('package.json', PKG), 'utf8'));
  assert.equal(pkgJson.name, 'tollgate');
  assert.equal(pkgJson.type, 'module');
  assert.match(pkgJson.version, /^\d+\.\d+\.\d+$/);
  const conditions = Object.keys(pkgJson.exports['.']);
  for (const c of ['types', 'workerd', 'node', 'browser', 'default']) assert.ok(conditions.includes(c), `exports lacks ${c}`);
  assert.equal(conditions[0], 'types', '`types` must come first');
  assert.ok(conditions.indexOf('workerd') < conditions.indexOf('node'), 'workerd before node (wrangler may set both)');
  for (const f of ['index.js', 'index.d.ts', 'node.js', 'workerd.js', 'tollgate.js', 'tollgate_bg.wasm']) {
    assert.ok(pkgJson.files.includes(f), `files lacks ${f}`);
  }
  // The package carries no catalog: an app hands it its own.
  assert.ok(!pkgJson.files.some((f) => f.includes('catalog')), 'files ships a catalog');
  assert.ok(!Object.keys(pkgJson.exports).some((k) => k.includes('catalog')), 'exports a catalog');
});

test('without useCatalog, the VCM Suite-compatible helpers say how to set one', () => {
  for (const call of [
    () => hasAccess([], 'creation', 'free', NOW),
    () => canUseAI({ subscription_tier: 'pro' }, NOW),
    () => resolveUserTier(null, NOW),
    () => new Engine(null, []),
  ]) {
    const e = throwsClearly(call, 'useCatalog(loadCatalog(');
    assert.equal(e.code, 'no_catalog');
  }
  useCatalog(vcm); // every test below runs with the VCM Suite catalog set
});

test('every export has a TypeScript declaration, and every declaration an export', () => {
  const dts = readFileSync(new URL('index.d.ts', PKG), 'utf8');
  const declared = new Set(
    [...dts.matchAll(/^export (?:declare )?(?:function|class|const|let) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]),
  );
  const exported = new Set(Object.keys(tollgate));
  assert.deepEqual([...exported].filter((n) => !declared.has(n)).sort(), [], 'exports without a declaration');
  assert.deepEqual([...declared].filter((n) => !exported.has(n)).sort(), [], 'declarations without an export');
});

test('the browser entry needs init() first, says so, and works after it', () => {
  const script = `
    import { hasAccess, init, isReady, loadCatalog, useCatalog } from './index.js';
    import { readFileSync } from 'node:fs';
    let before = '';
    try { hasAccess([], 'creation', 'free'); } catch (e) { before = e.message; }
    const ready0 = isReady();
    await init(readFileSync(new URL('./tollgate_bg.wasm', import.meta.url)));
    await init(); // a second call is a no-op
    useCatalog(loadCatalog(${JSON.stringify(vcmJson)}));
    console.log(JSON.stringify({ before, ready0, ready1: isReady(), answer: hasAccess([], 'creation', 'free', '${NOW}') }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: PKG, encoding: 'utf8' });
  const r = JSON.parse(out);
  assert.match(r.before, /await init\(\)/);
  assert.equal(r.ready0, false);
  assert.equal(r.ready1, true);
  assert.equal(r.answer, true);
});

test('init() and initSync() are no-ops once loaded', async () => {
  await init();
  initSync(new Uint8Array([0, 1, 2])); // ignored: already loaded
  assert.equal(hasAccess([], 'creation', 'free', NOW), true);
});

// ------------------------------------------------------------------ catalogs

test('loadCatalog takes JSON text or an object', () => {
  const a = loadCatalog(vcmJson);
  const b = loadCatalog(JSON.parse(vcmJson));
  assert.ok(a instanceof Catalog);
  assert.equal(a.id, 'vcm-suite');
  assert.equal(b.name, a.name);
  assert.equal(typeof a.version, 'string');
  assert.deepEqual(a.toJSON(), JSON.parse(vcmJson));
  assert.equal(loadCatalog(a), a, 'a Catalog passes through');
});

test('a broken catalog gives an Error with its field path', () => {
  const doc = JSON.parse(vcmJson);
  doc.offers[0].grants[0].tier = 'platinum';
  const e = throwsClearly(() => loadCatalog(doc), 'offers[0].grants[0].tier', 'platinum');
  assert.equal(e.path, 'offers[0].grants[0].tier');
  assert.equal(e.line, null);
});

test('a catalog field of the wrong type names its element', () => {
  const doc = JSON.parse(vcmJson);
  doc.offers[2].price.amount = '59.00';
  const e = throwsClearly(() => loadCatalog(doc), 'offers[2]', 'invalid type: string "59.00"');
  assert.equal(e.path, 'offers[2]');
  const noTools = JSON.parse(vcmJson);
  noTools.tools = { id: 'x' };
  assert.equal(throwsClearly(() => loadCatalog(noTools), '`tools` must be a list').path, 'tools');
  const meta = JSON.parse(vcmJson);
  delete meta.catalog.currency;
  assert.equal(throwsClearly(() => loadCatalog(meta), 'missing field `currency`').path, 'catalog');
});

test('a catalog that is not valid JSON gives an Error with its line', () => {
  const broken = vcmJson.replace('"products": [', '"products": [,');
  const e = throwsClearly(() => loadCatalog(broken), 'invalid JSON catalog');
  const want = vcmJson.slice(0, vcmJson.indexOf('"products": [')).split('\n').length;
  assert.equal(e.line, want);
  assert.match(e.message, new RegExp(`line ${want}, column \\d+`));
  assert.equal(throwsClearly(() => loadCatalog('{\n  "catalog": {\n    "id": "x",\n  }\n}'), 'line 4').line, 4);
});

test('loadCatalog rejects TOML and non-catalogs clearly', () => {
  throwsClearly(() => loadCatalog('[catalog]\nid = "x"\n'), 'JSON');
  throwsClearly(() => loadCatalog(42), 'loadCatalog expects JSON text or an object');
  throwsClearly(() => loadCatalog({ products: [] }), 'catalog');
  throwsClearly(() => new Catalog({}), 'loadCatalog');
});

test('useCatalog switches the catalog of the VCM Suite-compatible helpers', () => {
  try {
    const doc = JSON.parse(vcmJson);
    doc.capabilities.find((c) => c.id === 'use_ai').min_tier = 'starter';
    const c = useCatalog(doc);
    assert.equal(new Engine(null, []).catalog, c, 'a call without a catalog takes the one set');
    assert.equal(canUseAI({ subscription_tier: 'starter' }, NOW), true);
  } finally {
    useCatalog(vcm);
  }
  assert.equal(canUseAI({ subscription_tier: 'starter' }, NOW), false);
});

// ------------------------------------------------------------------ Engine

test('Engine answers by name with snake_case decisions', () => {
  const e = new Engine(vcm, { grants: [grant()] });
  const d = e.hasAccess('creation', 'pro', NOW);
  assert.deepEqual(Object.keys(d).sort(), ['allowed', 'grant', 'holds_until', 'reason', 'tier']);
  assert.equal(d.allowed, true);
  assert.equal(d.reason, 'active');
  assert.equal(d.holds_until, '2026-04-01T00:00:00Z');
  const no = new Engine(vcm, [grant({ tier: 'basic' })]).hasAccess('creation', 'pro', NOW);
  assert.equal(no.allowed, false);
  assert.equal(no.reason, 'tier_too_low');
  assert.equal(no.tier, 'basic');
  assert.equal(typeof no.upgrade.offer, 'string');
  assert.equal(typeof no.upgrade.price.amount, 'number');
  assert.equal(typeof no.upgrade.display, 'string');
  assert.equal(e.catalog.id, 'vcm-suite');
});

test('Engine takes a bare list of grants, a JSON string, or nothing', () => {
  assert.equal(new Engine(vcmJson, [grant()]).hasAccess('creation', 'pro', NOW).allowed, true);
  assert.equal(new Engine(null, JSON.stringify({ grants: [grant()] })).hasAccess('creation', 'pro', NOW).allowed, true);
  assert.equal(new Engine().hasAccess('creation', 'pro', NOW).allowed, false);
});

test('can, limit, limitInfo, checkLimit, exportPolicy for the plan', () => {
  const e = new Engine(vcm, [grant({ product: 'suite', tier: 'starter' })]);
  assert.equal(e.can('use_ai', NOW).allowed, false);
  assert.equal(e.can('use_ai', NOW).upgrade.offer, 'SUITE_PRO_MONTHLY');
  assert.equal(e.limit('workflow_runs_per_day', NOW), 3);
  assert.deepEqual(e.limitInfo('workflow_runs_per_day', NOW), {
    limit: 3,
    tier: 'starter',
    holds_until: '2026-04-01T00:00:00Z',
  });
  assert.equal(e.checkLimit('workflow_runs_per_day', 2, NOW).allowed, true);
  const full = e.checkLimit('workflow_runs_per_day', 3, NOW);
  assert.equal(full.allowed, false);
  assert.equal(full.reason, 'limit_reached');
  assert.deepEqual(e.exportPolicy(NOW), { policy: 'watermarked' });
  e.setEntitlements([grant({ product: 'suite', tier: 'basic' })]);
  assert.equal(e.limit('workflow_runs_per_day', NOW), 'unlimited');
  assert.deepEqual(e.exportPolicy(NOW), { policy: 'full' });
  e.setEntitlements({ grants: [] });
  const refused = e.exportPolicy(NOW);
  assert.equal(refused.policy, 'refused');
  assert.equal(refused.message, 'Upgrade to export.');
  assert.equal(typeof refused.upgrade.offer, 'string');
});

test('pageState gives every tool of a page, or all 30 VCM tools at once; toolState one', () => {
  const e = new Engine(vcm, [grant()]);
  const all = e.pageState(undefined, undefined, NOW);
  assert.equal(all.length, vcm.toJSON().tools.length);
  assert.equal(all.length, 30);
  for (const t of all) {
    assert.equal(typeof t.tool, 'string');
    assert.equal(typeof t.label, 'string');
    assert.equal(t.locked, !t.decision.allowed);
  }
  const creation = e.pageState('creation', {}, NOW);
  assert.ok(creation.length > 0 && creation.length < all.length);
  const one = e.toolState(creation[0].tool, null, NOW);
  assert.deepEqual(one, creation[0]);
  assert.deepEqual(e.pageState('no-such-page', null, NOW), []);
  throwsClearly(() => e.toolState('no-such-tool', null, NOW), 'unknown tool `no-such-tool`');
});

test('offersUnlocking lists what would allow a denied question, cheapest first, the denial\'s offer first and none held', () => {
  const held = [
    grant({ id: 'b:video', product: 'video', tier: 'pro', offer: 'SUITE_PRO_TWO_CLOUDS_MONTHLY' }),
    grant({ id: 'b:writing', product: 'writing', tier: 'pro', offer: 'SUITE_PRO_TWO_CLOUDS_MONTHLY' }),
  ];
  const e = new Engine(vcm, held);
  const d = e.hasAccess('file', 'pro', NOW);
  assert.equal(d.allowed, false);
  const offers = e.offersUnlocking({ product: 'file', tier: 'pro' }, NOW);
  assert.ok(offers.length > 0);
  assert.equal(offers[0].upgrade.offer, d.upgrade.offer, 'the offer the denial names comes first');
  assert.ok(!offers.some((u) => u.upgrade.offer === 'SUITE_PRO_TWO_CLOUDS_MONTHLY'), 'not the bundle held already');
  for (const u of offers.filter((x) => x.choose > 0)) {
    assert.equal(u.clouds[0], 'file', 'a bundle preselects the product asked about');
    assert.equal(u.clouds.length, u.choose);
    assert.ok(u.clouds.every((c) => u.eligible.includes(c)));
  }
  assert.deepEqual(e.offersUnlocking({ product: 'video', tier: 'pro' }, NOW), [], 'allowed: nothing to buy');
  const tool = vcm.toJSON().tools.find((t) => t.requires.capability && t.requires.product);
  const locked = new Engine(vcm, []).toolState(tool.id, null, NOW);
  const forTool = new Engine(vcm, []).offersUnlocking({ tool: tool.id }, NOW);
  assert.equal(forTool[0].upgrade.offer, locked.decision.upgrade.offer);
  assert.ok(new Engine(vcm, []).offersUnlocking({ capability: 'use_ai' }, NOW).length > 0);
  throwsClearly(() => e.offersUnlocking({ product: 'nope', tier: 'pro' }, NOW), 'unknown product `nope`');
  throwsClearly(() => e.offersUnlocking({ limit: 'workflow_runs_per_day', used: -1 }, NOW), 'used');
  assert.throws(() => e.offersUnlocking('file', NOW), TypeError);
  assert.throws(() => e.offersUnlocking({}, NOW), TypeError);
});

test('pageState reads usage for limit-gated tools', () => {
  const doc = JSON.parse(vcmJson);
  const gated = doc.tools.find((t) => t.requires.limit);
  assert.ok(gated, 'the VCM catalog has a tool gated by a limit');
  const e = new Engine(doc, [grant({ product: 'suite', tier: 'starter' })]);
  const under = e.toolState(gated.id, { [gated.requires.limit]: 0 }, NOW);
  const over = e.toolState(gated.id, { [gated.requires.limit]: 1000 }, NOW);
  assert.ok(under.locked === false || under.decision.reason !== 'limit_reached');
  assert.equal(over.locked, true);
  throwsClearly(() => e.pageState(null, { [gated.requires.limit]: -1 }, NOW), 'usage');
  throwsClearly(() => e.pageState(null, { [gated.requires.limit]: 'many' }, NOW), 'usage');
});

test('the hot path: indices, check(), and the cache across boundaries', () => {
  const e = new Engine(vcm, [grant()]);
  const p = e.productIndex('creation');
  const pro = e.tierIndex('creation', 'pro');
  const ent = e.tierIndex('creation', 'enterprise');
  assert.equal(typeof p, 'number');
  const at = (iso) => Date.parse(iso);
  assert.equal(e.check(p, pro, at('2026-01-31T23:59:59Z')), false, 'before valid_from');
  assert.equal(e.check(p, pro, at('2026-02-01T00:00:00Z')), true);
  assert.equal(e.check(p, pro, at('2026-03-31T23:59:59Z')), true);
  assert.equal(e.check(p, pro, at('2026-04-01T00:00:00Z')), false, 'valid_to is exclusive');
  assert.equal(e.check(p, pro, at('2026-03-15T00:00:00Z')), true, 'going back in time re-evaluates');
  assert.equal(e.check(p, ent, at(NOW)), false);
  assert.equal(e.check(p, 99, at(NOW)), false, 'an unknown tier index answers false');
  assert.equal(e.check(999, 0, at(NOW)), false, 'an unknown product index answers false');
  assert.equal(e.check(p, pro, NaN), false, 'a non-finite now answers false');
  assert.throws(() => e.check(-1, 0, at(NOW)), TypeError);
  assert.throws(() => e.check('creation', 0, at(NOW)), TypeError);
  assert.throws(() => e.check(p, 1.5, at(NOW)), TypeError);
  e.setEntitlements([]);
  assert.equal(e.check(p, pro, at(NOW)), false, 'new entitlements drop the cache');
  assert.equal(typeof e.check(p, 0), 'boolean', 'now defaults to Date.now()');
});

test('check() agrees with hasAccess() at every instant, in any order of calls', () => {
  // Grants with many boundaries: trial, past due with grace, canceled, future, expired.
  const grants = [
    grant({ id: 'a', tier: 'basic', valid_from: '2026-01-01T00:00:00Z', valid_to: '2026-02-01T00:00:00Z' }),
    grant({ id: 'b', tier: 'pro', status: 'trial', valid_from: '2026-01-10T00:00:00Z', valid_to: '2026-01-24T00:00:00Z' }),
    grant({ id: 'c', tier: 'pro', status: 'past_due', valid_from: '2026-02-01T00:00:00Z', valid_to: '2026-03-01T00:00:00Z', past_due_since: '2026-03-01T00:00:00Z' }),
    grant({ id: 'd', tier: 'enterprise', status: 'canceled', valid_from: '2026-03-10T00:00:00Z', valid_to: '2026-03-20T12:00:00Z' }),
    grant({ id: 'e', product: 'video', tier: 'pro', valid_from: '2026-01-05T00:00:00Z', valid_to: null }),
  ];
  const e = new Engine(vcm, grants);
  const products = ['creation', 'video', 'music'];
  const tiers = ['free', 'basic', 'pro', 'enterprise'];
  const start = Date.parse('2025-12-25T00:00:00Z');
  const span = Date.parse('2026-04-05T00:00:00Z') - start;
  let state = 12345;
  const rand = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
  const boundaries = grants.flatMap((g) => [g.valid_from, g.valid_to, g.past_due_since]).filter(Boolean).map(Date.parse);
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    // Half the instants land on or next to a boundary, where a stale cache would show.
    const b = boundaries[Math.floor(rand() * boundaries.length)];
    const now = rand() < 0.5 ? b + [-1000, -1, 0, 1, 999, 1000][Math.floor(rand() * 6)] : start + Math.floor(rand() * span);
    const product = products[Math.floor(rand() * products.length)];
    const tier = tiers[Math.floor(rand() * tiers.length)];
    const fast = e.check(e.productIndex(product), e.tierIndex(product, tier), now);
    assert.equal(fast, e.hasAccess(product, tier, now).allowed, `${product}/${tier} at ${new Date(now).toISOString()}`);
    checked++;
  }
  assert.equal(checked, 3000);
});

test('nextChange is the next boundary, or null', () => {
  const e = new Engine(vcm, [grant()]);
  assert.equal(e.nextChange('2026-01-15T00:00:00Z'), '2026-02-01T00:00:00Z');
  assert.equal(e.nextChange(NOW), '2026-04-01T00:00:00Z');
  assert.equal(e.nextChange('2026-05-01T00:00:00Z'), null);
});

test("checkFeature answers the worker's Check, with defaults and coded errors", () => {
  const e = new Engine(vcm, [grant({ product: 'suite', tier: 'starter' })]);
  assert.deepEqual(e.checkFeature('workflow_runs_per_day', 1, 2, NOW), {
    feature: 'workflow_runs_per_day',
    allowed: true,
    reason: 'within_limit',
    remaining: 0,
    used: 2,
    limit: 3,
    resets_at: '2026-03-02T00:00:00Z',
    tier: 'starter',
    upgrade: null,
  });
  // quantity 1 and used 0 when omitted or null.
  assert.deepEqual(e.checkFeature('workflow_runs_per_day', null, undefined, NOW), e.checkFeature('workflow_runs_per_day', 1, 0, NOW));
  assert.equal(e.checkFeature('use_ai').feature, 'use_ai', 'now defaults to the clock');
  const coded = (f, code, message) => assert.throws(f, (err) => err instanceof Error && err.code === code && err.message.includes(message));
  coded(() => e.checkFeature('teleport', 1, 0, NOW), 'unknown_feature', '`teleport` is not a capability, a limit or a credit pool');
  coded(() => e.checkFeature('use_ai', 0, 0, NOW), 'invalid_quantity', 'quantity must be a whole number from 1');
  coded(() => e.checkFeature('use_ai', 1.5, 0, NOW), 'invalid_quantity', 'quantity must be a whole number from 1');
  coded(() => e.checkFeature('use_ai', 1e9 + 1, 0, NOW), 'invalid_quantity', 'quantity must be a whole number from 1');
  throwsClearly(() => e.checkFeature('use_ai', '1', 0, NOW), '`quantity` must be a number');
  throwsClearly(() => e.checkFeature('workflow_runs_per_day', 1, -1, NOW), '`used` must be a whole number');
  throwsClearly(() => e.checkFeature(undefined, 1, 0, NOW), '`feature` must be a string');
});

test('unknown products, tiers, capabilities and limits are Errors with the core message', () => {
  const e = new Engine(vcm);
  throwsClearly(() => e.hasAccess('nope', 'pro', NOW), 'unknown product `nope`');
  throwsClearly(() => e.hasAccess('creation', 'gold', NOW), '`gold` is not a tier of product `creation`');
  throwsClearly(() => e.productIndex('nope'), 'unknown product `nope`');
  throwsClearly(() => e.tierIndex('nope', 'pro'), 'unknown product `nope`');
  throwsClearly(() => e.tierIndex('creation', 'gold'), '`gold` is not a tier of product `creation`');
  throwsClearly(() => e.can('fly', NOW), 'unknown capability `fly`');
  throwsClearly(() => e.limit('storage_gb', NOW), 'unknown limit `storage_gb`');
  throwsClearly(() => e.checkLimit('workflow_runs_per_day', -1, NOW), '`used` must be a whole number');
  throwsClearly(() => e.checkLimit('workflow_runs_per_day', 1.5, NOW), '`used` must be a whole number');
  throwsClearly(() => e.checkLimit('workflow_runs_per_day', '3', NOW), '`used` must be a number');
  throwsClearly(() => e.hasAccess(undefined, 'pro', NOW), '`product` must be a string');
  // The engine is unharmed by all of that.
  assert.equal(e.hasAccess('creation', 'free', NOW).allowed, true);
});

test('malformed entitlements name the grant and the field', () => {
  throwsClearly(() => new Engine(null, { grants: [grant(), grant({ valid_from: 'tomorrow' })] }), 'grants[1]', 'RFC 3339');
  throwsClearly(() => new Engine(null, [grant({ status: 'paused' })]), 'grants[0]', 'unknown variant `paused`');
  const noTier = grant();
  delete noTier.tier;
  throwsClearly(() => new Engine(null, [noTier]), 'grants[0]', 'missing field `tier`');
  throwsClearly(() => new Engine(null, { grants: 'all' }), 'invalid entitlements');
  throwsClearly(() => new Engine(null, '{"grants": ['), 'invalid entitlements');
  // Entitlements cross as JSON: a Date reads as the instant JSON.stringify writes for it.
  assert.deepEqual(
    new Engine(null, [grant({ valid_to: new Date('2026-03-15T00:00:00Z') })]).hasAccess('creation', 'pro', NOW),
    new Engine(null, [grant({ valid_to: '2026-03-15T00:00:00Z' })]).hasAccess('creation', 'pro', NOW),
  );
  throwsClearly(() => new Engine(null, [grant({ valid_from: {} })]), 'grants[0]', 'RFC 3339 timestamp string or integer Unix seconds');
  throwsClearly(() => new Engine(null, [grant({ valid_to: 1.5 })]), 'grants[0]', 'whole Unix seconds');
  throwsClearly(() => new Engine(null, 7), 'invalid entitlements');
});

// ------------------------------------------------------------------ now

test('now: a Date, an RFC 3339 string, epoch ms, or omitted (Date.now())', () => {
  const e = new Engine(vcm, [grant()]);
  const inside = '2026-03-31T23:59:59Z';
  const end = '2026-04-01T00:00:00Z';
  for (const now of [inside, new Date(inside), Date.parse(inside), '2026-04-01T05:29:59+05:30']) {
    assert.equal(e.hasAccess('creation', 'pro', now).allowed, true, `now = ${String(now)}`);
  }
  for (const now of [end, new Date(end), Date.parse(end), Date.parse(end) + 0.5]) {
    assert.equal(e.hasAccess('creation', 'pro', now).allowed, false, `now = ${String(now)}`);
  }
  // Omitted: the wrapper reads Date.now() (the core never reads a clock).
  const open = new Engine(vcm, [grant({ valid_from: '2000-01-01T00:00:00Z', valid_to: null })]);
  const future = new Engine(vcm, [grant({ valid_from: '2999-01-01T00:00:00Z', valid_to: null })]);
  assert.equal(open.hasAccess('creation', 'pro').allowed, true);
  assert.equal(future.hasAccess('creation', 'pro').allowed, false);
  assert.equal(hasAccess([row({ valid_from: '2999-01-01T00:00:00Z' })], 'creation', 'pro'), false);
});

test('a bad now is an Error, never a trap', () => {
  const e = new Engine(vcm);
  throwsClearly(() => e.hasAccess('creation', 'pro', 'yesterday'), 'RFC 3339');
  throwsClearly(() => e.hasAccess('creation', 'pro', '1700000000'), 'ambiguous');
  throwsClearly(() => e.hasAccess('creation', 'pro', NaN), 'finite');
  throwsClearly(() => e.hasAccess('creation', 'pro', Infinity), 'finite');
  throwsClearly(() => e.hasAccess('creation', 'pro', new Date('nope')), 'invalid Date');
  throwsClearly(() => e.hasAccess('creation', 'pro', {}), '`now` must be');
  throwsClearly(() => e.hasAccess('creation', 'pro', 1e300), '`now` must be');
});

// ------------------------------------------------------------------ VCM Suite-compatible helpers

test("the VCM Suite's hasAccess over cloud_entitlements rows", () => {
  assert.equal(hasAccess([row()], 'creation', 'pro', NOW), true);
  assert.equal(hasAccess([row({ tier: 'basic' })], 'creation', 'pro', NOW), false);
  assert.equal(hasAccess([row({ status: 'trial', valid_to: '2026-03-15T00:00:00Z' })], 'creation', 'pro', NOW), true);
  assert.equal(hasAccess(undefined, 'creation', 'pro', NOW), false);
  assert.equal(hasAccess([], 'creation', 'pro', NOW), false);
  const d = explainAccess([row({ tier: 'basic' })], 'creation', 'pro', NOW);
  assert.equal(d.reason, 'tier_too_low');
  assert.equal(d.tier, 'basic');
  assert.equal(typeof d.upgrade.offer, 'string');
});

test('hasAccess over the same rows array: answers kept only while every field the core read is unchanged', () => {
  const rows = [row({ valid_to: '2026-03-15T00:00:00Z' }), row({ id: 'row-2', cloud_id: 'video', tier: 'basic' })];
  const agree = (at) => {
    for (const [cloud, tier] of [['creation', 'pro'], ['creation', 'enterprise'], ['video', 'basic'], ['video', 'pro']]) {
      const want = explainAccess(JSON.stringify(rows), cloud, tier, at).allowed; // JSON text: converted afresh
      assert.equal(hasAccess(rows, cloud, tier, at), want, `${cloud}/${tier} at ${at}`);
    }
  };
  for (const at of [NOW, '2026-03-14T23:59:59Z', '2026-03-15T00:00:00Z', '2025-12-31T23:59:59Z', NOW]) agree(at);
  rows[0].tier = 'enterprise';
  agree(NOW);
  rows[0].valid_to = '2026-03-01T00:00:00Z';
  agree(NOW);
  rows.push(row({ id: 'row-3', tier: 'pro', status: 'trial' }));
  agree(NOW);
  rows[2].status = 'paused';
  throwsClearly(() => hasAccess(rows, 'creation', 'pro', NOW), 'rows[2]', 'unknown variant `paused`');
  rows[2].status = 'canceled';
  rows[1].user_id = 7;
  throwsClearly(() => hasAccess(rows, 'creation', 'pro', NOW), 'rows[1]', 'expected a string');
  delete rows[1].user_id;
  // A value that holds the packing's separator goes to the core as objects, with the same answer.
  rows[1].id = 'a\u001fb';
  agree(NOW);
  // Other catalogs keep their own answers for the same array.
  const doc = vcm.toJSON();
  doc.products.find((p) => p.id === 'creation').tiers.push('ultimate');
  try {
    useCatalog(doc);
    rows[0].tier = 'ultimate';
    agree(NOW);
  } finally {
    useCatalog(vcm);
  }
  agree(NOW); // a tier this catalog lacks counts as nothing
});

test('hasAccess over rows holding Date objects: an in-place change of a Date is seen', () => {
  const rows = [row({ valid_to: new Date('2026-12-01T00:00:00Z') })];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
  rows[0].valid_to.setTime(Date.parse('2026-01-01T00:00:00Z')); // the same Date, now in the past
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), explainAccess(JSON.stringify(rows), 'creation', 'pro', NOW).allowed);
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), false);
});

test('hasAccess keeps answering the latest state of an array edited in place', () => {
  const rows = [row({ valid_to: '2026-12-01T00:00:00Z' })];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
  rows[0].valid_to = '2026-01-01T00:00:00Z';
  for (let i = 0; i < 3; i++) assert.equal(hasAccess(rows, 'creation', 'pro', NOW), false);
  rows[0].valid_to = null;
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
});

test('Engine.hasAccess hands the same frozen Decision back while the core says it holds', () => {
  const e = new Engine(vcm, [grant({ valid_to: '2026-03-15T00:00:00Z' })]);
  const a = e.hasAccess('creation', 'pro', NOW);
  assert.equal(e.hasAccess('creation', 'pro', '2026-03-14T23:59:59Z'), a);
  assert.ok(Object.isFrozen(a));
  const after = e.hasAccess('creation', 'pro', '2026-03-15T00:00:00Z');
  assert.notEqual(after, a);
  assert.equal(after.allowed, false);
  assert.deepEqual(e.hasAccess('creation', 'pro', NOW), a);
  e.setEntitlements([]);
  assert.equal(e.hasAccess('creation', 'pro', NOW).allowed, false);
});

test('pageState (numbers from the core, names from its tables) is toolState for every tool', () => {
  const ents = [grant(), grant({ id: 'g2', product: 'suite', tier: 'starter', status: 'past_due', valid_to: '2026-02-20T00:00:00Z' })];
  const e = new Engine(vcm, ents);
  for (const at of [NOW, '2026-01-01T00:00:00Z', '2026-05-01T00:00:00Z']) {
    for (const usage of [null, { workflow_runs_per_day: 1000 }]) {
      const page = e.pageState(null, usage, at);
      assert.equal(page.length, vcm.toJSON().tools.length);
      for (const t of page) assert.deepEqual(t, e.toolState(t.tool, usage, at), `${t.tool} at ${at}`);
    }
  }
});

test('malformed rows name the row and the field', () => {
  throwsClearly(() => hasAccess([row(), row({ status: 'paused' })], 'creation', 'pro', NOW), 'rows[1]', 'unknown variant `paused`');
  const noCloud = row();
  delete noCloud.cloud_id;
  throwsClearly(() => hasAccess([noCloud], 'creation', 'pro', NOW), 'rows[0]', 'missing field `cloud_id`');
  throwsClearly(() => hasAccess([row({ valid_to: 'soon' })], 'creation', 'pro', NOW), 'rows[0]', 'RFC 3339');
  throwsClearly(() => hasAccess({ cloud_id: 'creation' }, 'creation', 'pro', NOW), 'array of cloud_entitlements rows');
  throwsClearly(() => hasAccess([row()], 'podcast', 'pro', NOW), 'unknown product `podcast`');
  throwsClearly(() => hasAccess([row()], 'creation', 'gold', NOW), '`gold` is not a tier of product `creation`');
  throwsClearly(() => explainAccess([row()], 'creation', 7, NOW), '`requiredTier` must be a string');
});

test("the VCM Suite's user helpers", () => {
  assert.equal(resolveUserTier(null), 'free');
  assert.equal(resolveUserTier(undefined), 'free');
  assert.equal(resolveUserTier({}), 'free');
  assert.equal(resolveUserTier({ subscription_tier: 'starter' }), 'starter');
  assert.equal(resolveUserTier({ subscription_tier: 'gold' }), 'free');
  assert.equal(resolveUserTier({ subscription_tier: 7 }), 'free', 'like the original: anything else is free');
  assert.equal(resolveUserTier({ id: 'u1', email: 'a@b.c', subscription_tier: 'pro', created: new Date() }), 'pro');

  const free = null;
  const starter = { subscription_tier: 'starter' };
  const basic = { subscription_tier: 'basic' };
  const pro = { subscription_tier: 'pro' };
  assert.deepEqual([free, starter, basic, pro].map((u) => canUseAI(u, NOW)), [false, false, false, true]);
  assert.deepEqual([free, starter, basic, pro].map((u) => canExportFullRes(u, NOW)), [false, false, true, true]);
  assert.deepEqual([free, starter, basic, pro].map((u) => shouldWatermarkExports(u, NOW)), [false, true, false, false]);
  assert.deepEqual([free, starter, basic, pro].map((u) => canUseHeavyTools(u, NOW)), [false, false, true, true]);
  assert.deepEqual([free, starter, basic, pro].map((u) => canUseMultiStepHeavyTools(u, NOW)), [false, false, false, true]);
  assert.equal(CAPABILITIES.useAI, 'use_ai');
  assert.equal(explainUser(starter, 'use_ai', NOW).upgrade.offer, 'SUITE_PRO_MONTHLY');
  throwsClearly(() => explainUser(pro, 'fly', NOW), 'unknown capability `fly`');
  throwsClearly(() => canUseAI('pro', NOW), '`user` must be an object');
});

test('a user with grants: the tier comes from them, and expires', () => {
  const u = { subscription_tier: 'basic', entitlements: [grant({ product: 'suite', tier: 'pro' })] };
  assert.equal(resolveUserTier(u, NOW), 'pro');
  assert.equal(resolveUserTier(u, '2026-04-01T00:00:00Z'), 'free');
  throwsClearly(() => resolveUserTier({ entitlements: [grant({ status: 'paused' })] }, NOW), 'grants[0]', 'paused');
});

test("the VCM Suite's workflow rule", () => {
  const starter = { subscription_tier: 'starter' };
  assert.equal(workflowRunAllowed(starter, 2, NOW), true);
  assert.equal(workflowRunAllowed(starter, 3, NOW), false);
  assert.equal(workflowRunAllowed({ subscription_tier: 'basic' }, 1e6, NOW), true);
  assert.equal(workflowRunAllowed(null, 0, NOW), false);
  const d = explainWorkflowRun(starter, 3, NOW);
  assert.equal(d.reason, 'limit_reached');
  assert.equal(typeof d.upgrade.offer, 'string');
  throwsClearly(() => workflowRunAllowed(starter, -1, NOW), '`runsToday` must be a whole number');
  throwsClearly(() => workflowRunAllowed(starter, undefined, NOW), '`runsToday` must be a number');
});

test("the VCM Suite's applyExportPolicy: the policy, or the original payload-or-null", () => {
  assert.deepEqual(applyExportPolicy({ subscription_tier: 'starter' }, NOW), { policy: 'watermarked' });
  assert.deepEqual(applyExportPolicy({ subscription_tier: 'pro' }), { policy: 'full' });
  const refused = applyExportPolicy(null, new Date(NOW));
  assert.equal(refused.policy, 'refused');
  assert.equal(refused.message, 'Upgrade to export.');
  const payload = { buffer: new Uint8Array(4), mimeType: 'image/png', filename: 'a.png' };
  assert.equal(applyExportPolicy({ subscription_tier: 'basic' }, payload), payload);
  assert.equal(applyExportPolicy({ subscription_tier: 'starter' }, payload, NOW), payload);
  assert.equal(applyExportPolicy(null, payload, NOW), null);
});
