// The shared conformance fixtures (tests/fixtures/*.json) through the
// package's public API, with the comparison rules every host keeps:
// - `expect` is partial: only the keys it names are compared, and a key the
//   result does not have fails;
// - `upgrade` compares as the offer key or null, `holds_until` and `resets_at`
//   as an RFC 3339 string or null, `limit` and `remaining` as an integer or
//   "unlimited";
// - `check` (Engine.checkFeature, the metered decision of `POST /v1/check`)
//   takes `feature`, `quantity` (default 1) and `used` (default 0);
// - `error` is a substring of the error message; a case that expects an error
//   fails if the call succeeds, and the other way round;
// - a case may override `now` and `entitlements`;
// - an op this runner does not know fails the run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

import {
  Engine,
  loadCatalog,
  useCatalog,
  hasAccess,
  explainAccess,
  resolveUserTier,
  explainUser,
  canUseAI,
  canExportFullRes,
  shouldWatermarkExports,
  canUseHeavyTools,
  canUseMultiStepHeavyTools,
  CAPABILITIES,
} from 'tollgate';
import { catalogJson } from './catalogs.mjs';

const FIXTURES = new URL('../../tests/fixtures/', import.meta.url);

function decisionView(d) {
  return {
    allowed: d.allowed,
    reason: d.reason,
    tier: d.tier ?? null,
    grant: d.grant ?? null,
    holds_until: d.holds_until ?? null,
    upgrade: d.upgrade ? d.upgrade.offer : null,
  };
}

/** The metered decision as the fixtures compare it. */
function checkView(c) {
  return {
    allowed: c.allowed,
    reason: c.reason,
    remaining: c.remaining,
    used: c.used,
    limit: c.limit,
    resets_at: c.resets_at ?? null,
    tier: c.tier ?? null,
    upgrade: c.upgrade ? c.upgrade.offer : null,
  };
}

// The VCM Suite plan's boolean helpers, by the capability they read.
const USER_HELPERS = new Map([
  [CAPABILITIES.useAI, canUseAI],
  [CAPABILITIES.exportFullRes, canExportFullRes],
  [CAPABILITIES.watermarkExports, shouldWatermarkExports],
  [CAPABILITIES.heavyTools, canUseHeavyTools],
  [CAPABILITIES.multiStepHeavyTools, canUseMultiStepHeavyTools],
]);

/** Runs one case through the public API; throws what the library throws. */
function run(engine, now, c) {
  switch (c.op) {
    case 'has_access': {
      const d = engine.hasAccess(c.product, c.tier, now);
      // The hot path must agree with the explained answer.
      const fast = engine.check(engine.productIndex(c.product), engine.tierIndex(c.product, c.tier), Date.parse(now));
      assert.equal(fast, d.allowed, `check() disagrees with hasAccess() for ${c.product}/${c.tier}`);
      return decisionView(d);
    }
    case 'can':
      return decisionView(engine.can(c.capability, now));
    case 'limit': {
      const value = engine.limit(c.limit, now);
      const info = engine.limitInfo(c.limit, now);
      assert.equal(info.limit, value);
      return { limit: value, tier: info.tier ?? null, holds_until: info.holds_until ?? null };
    }
    case 'check_limit':
      return decisionView(engine.checkLimit(c.limit, c.used, now));
    case 'check':
      return checkView(engine.checkFeature(c.feature, c.quantity ?? 1, c.used ?? 0, now));
    case 'export_policy': {
      const p = engine.exportPolicy(now);
      return { policy: p.policy, message: p.message ?? null, upgrade: p.upgrade ? p.upgrade.offer : null };
    }
    case 'page': {
      const tools = engine.pageState(c.page ?? null, c.usage ?? null, now);
      return {
        locked: tools.filter((t) => t.locked).map((t) => t.tool),
        unlocked: tools.filter((t) => !t.locked).map((t) => t.tool),
      };
    }
    case 'rows_has_access': {
      const d = explainAccess(c.rows, c.cloud, c.required, now);
      assert.equal(hasAccess(c.rows, c.cloud, c.required, now), d.allowed, 'hasAccess() disagrees with explainAccess()');
      return decisionView(d);
    }
    case 'resolve_user_tier':
      return { tier: resolveUserTier(c.user ?? null, now) };
    case 'user_can': {
      const d = explainUser(c.user ?? null, c.capability, now);
      const helper = USER_HELPERS.get(c.capability);
      if (helper) assert.equal(helper(c.user ?? null, now), d.allowed, `${helper.name}() disagrees with explainUser()`);
      return decisionView(d);
    }
    default:
      throw new Error(`unknown op \`${c.op}\`: every host must fail on an op it does not know`);
  }
}

/** The mismatches between a result (or an error) and a partial expectation. */
export function compare(expect, got, error) {
  const out = [];
  if ('error' in expect) {
    if (error === undefined) out.push(`expected an error containing ${JSON.stringify(expect.error)}, got ${JSON.stringify(got)}`);
    else if (!String(error.message).includes(expect.error))
      out.push(`error ${JSON.stringify(error.message)} does not contain ${JSON.stringify(expect.error)}`);
    return out;
  }
  if (error !== undefined) return [`unexpected error: ${error.message}`];
  for (const [key, want] of Object.entries(expect)) {
    if (!(key in got)) out.push(`result has no \`${key}\` (result: ${JSON.stringify(got)})`);
    else if (!isDeepStrictEqual(got[key], want)) out.push(`\`${key}\`: got ${JSON.stringify(got[key])}, want ${JSON.stringify(want)}`);
  }
  return out;
}

const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();

test('the fixtures are there', () => {
  assert.ok(files.length > 0, 'no fixtures in tests/fixtures');
});

const catalogs = new Map();
function catalogNamed(name) {
  if (!catalogs.has(name)) {
    catalogs.set(name, loadCatalog(catalogJson(name)));
  }
  return catalogs.get(name);
}

for (const file of files) {
  const fx = JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8'));
  test(`fixture ${file}: ${fx.name}`, () => {
    assert.ok(Array.isArray(fx.cases) && fx.cases.length > 0, 'a fixture needs cases');
    const catalog = catalogNamed(fx.catalog);
    useCatalog(catalog); // the VCM Suite-compatible helpers read the catalog set here
    const base = new Engine(catalog, fx.entitlements ?? null);
    const failures = [];
    fx.cases.forEach((c, i) => {
      assert.ok(c.expect && typeof c.expect === 'object' && Object.keys(c.expect).length > 0, `case ${i}: an empty \`expect\` asserts nothing`);
      const now = c.now ?? fx.now;
      const engine = c.entitlements === undefined ? base : new Engine(catalog, c.entitlements);
      let got;
      let error;
      try {
        got = run(engine, now, c);
      } catch (e) {
        if (e instanceof assert.AssertionError || /^unknown op/.test(e.message)) throw e;
        if (!(e instanceof Error)) throw new Error(`case ${i}: the library threw a non-Error: ${String(e)}`);
        error = e;
      }
      for (const problem of compare(c.expect, got, error)) {
        failures.push(`case ${i} (${c.op}${c.note ? ' ' + c.note : ''}): ${problem}`);
      }
    });
    assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
  });
}

test('an unknown op fails the run', () => {
  const engine = new Engine(catalogNamed('vcm-suite'));
  assert.throws(() => run(engine, '2026-03-01T00:00:00Z', { op: 'quote', expect: { allowed: true } }), /unknown op `quote`/);
});

test('the comparison is partial and strict about errors', () => {
  const ok = { allowed: true, upgrade: null, holds_until: null };
  assert.deepEqual(compare({ allowed: true }, ok), []);
  assert.equal(compare({ allowed: false }, ok).length, 1);
  assert.equal(compare({ alowed: true }, ok).length, 1, 'a misspelt key must fail');
  assert.equal(compare({ error: 'unknown' }, ok).length, 1);
  const err = new Error('unknown product `nope`');
  assert.deepEqual(compare({ error: 'unknown product' }, undefined, err), []);
  assert.equal(compare({ allowed: false }, undefined, err).length, 1);
});
