// tollgate-react/proxy against real signed snapshots: the committed vector
// tests/vectors/snapshot.json (signed by the core's signer, with its invalid variants),
// verified by the package's own verifier and decided by its Engine. The vector's user
// holds the suite at pro and no Writing Cloud; its clock is the vector's `now`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { Engine, loadCatalog } from 'tollgate';

import { SNAPSHOT_COOKIE, createProxy, readCookie } from '../dist/proxy.js';
import { MAX_COOKIE_BYTES, clearSnapshotCookie, writeSnapshotCookie } from '../dist/storage.js';

const vector = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
const keys = { [vector.kid]: vector.public_key_b64url };
const now = Date.parse(vector.now);
const bundled = JSON.parse(readFileSync(new URL('../../target/catalogs/vcm-suite.json', import.meta.url), 'utf8'));
// The catalog at the version the vector's snapshot was issued under.
const catalog = { ...bundled, catalog: { ...bundled.catalog, version: vector.snapshot.catalog_version } };

const rules = {
  '/tools/batch': { capability: 'heavy_tools' },
  '/writing': { product: 'writing', tier: 'pro' },
  '/creation/enterprise': { product: 'creation', tier: 'enterprise' },
};

function gateWith(extra = {}) {
  const outcomes = [];
  const gate = createProxy({
    catalog,
    publicKeys: keys,
    rules,
    upgradePath: '/tools',
    now: () => now,
    onOutcome: (o) => outcomes.push(o),
    ...extra,
  });
  return { gate, outcomes };
}

function request(path, token, init = {}) {
  const headers = new Headers(init.headers);
  if (token !== undefined) headers.set('cookie', `theme=dark; ${SNAPSHOT_COOKIE}=${token}; other=1`);
  return new Request(`http://app.test${path}`, { ...init, headers });
}

/** Runs one request; returns the response and the outcome the proxy reported. */
async function run(path, token, extra = {}, init = {}) {
  const { gate, outcomes } = gateWith(extra);
  const response = await gate(request(path, token, init));
  assert.equal(outcomes.length, 1);
  return { response, outcome: outcomes[0] };
}

test('an allowed page goes through: the suite at pro holds heavy_tools', async () => {
  const { response, outcome } = await run('/tools/batch', vector.token);
  assert.equal(response, undefined);
  assert.equal(outcome.action, 'allow');
  assert.equal(outcome.decision.allowed, true);
  assert.equal(outcome.decision.grant, 'stripe:sub_1:suite');
  // Paths below the prefix are gated the same way.
  assert.equal((await run('/tools/batch/compress', vector.token)).outcome.action, 'allow');
});

test('a denied page redirects to the upgrade path with the cheapest offer of the decision', async () => {
  const { response, outcome } = await run('/writing/editor?draft=7', vector.token);
  assert.equal(response.status, 307);
  const to = new URL(response.headers.get('location'));
  assert.equal(to.origin, 'http://app.test');
  assert.equal(to.pathname, '/tools');
  assert.equal(to.searchParams.get('offer'), 'CLOUD_WRITING_PRO_MONTHLY');
  assert.equal(to.searchParams.get('from'), '/writing/editor?draft=7');
  assert.equal(response.headers.get('cache-control'), 'private, no-store');
  assert.equal(outcome.action, 'redirect');
  assert.equal(outcome.decision.reason, 'tier_too_low');
  // The same decision the Engine makes anywhere else.
  const direct = new Engine(loadCatalog(catalog), vector.snapshot).hasAccess('writing', 'pro', now);
  assert.deepEqual(outcome.decision, direct);
  assert.equal(to.searchParams.get('offer'), direct.upgrade.offer);
});

test('no network call: the cookie, the keys and the catalog decide', async (t) => {
  const fetch = globalThis.fetch;
  globalThis.fetch = () => {
    throw new Error('the proxy called fetch');
  };
  t.after(() => {
    globalThis.fetch = fetch;
  });
  assert.equal((await run('/tools/batch', vector.token)).outcome.action, 'allow');
  assert.equal((await run('/writing', vector.token)).response.status, 307);
});

test('a denial no offer unlocks redirects without an offer', async () => {
  const { response, outcome } = await run('/creation/enterprise', vector.token);
  assert.equal(response.status, 307);
  const to = new URL(response.headers.get('location'));
  assert.equal(to.searchParams.has('offer'), false);
  assert.equal(to.searchParams.get('from'), '/creation/enterprise');
  assert.equal(outcome.decision.upgrade, undefined);
});

test('no cookie, or an empty one: the request goes through', async () => {
  for (const token of [undefined, '']) {
    const { response, outcome } = await run('/writing', token);
    assert.equal(response, undefined);
    assert.deepEqual([outcome.action, outcome.why], ['pass', 'no_cookie']);
  }
});

test('garbled, altered, expired, not yet valid and foreign-key cookies go through', async () => {
  const cases = [
    ['garbled', 'not-a-snapshot', now, 'malformed_snapshot'],
    ['truncated', vector.token.slice(0, 200), now, 'malformed_snapshot'],
    ...vector.invalid.map((c) => [c.name, c.token, Date.parse(c.now), c.error]),
    ['the valid one at expires_at', vector.token, Date.parse(vector.snapshot.expires_at), 'expired'],
  ];
  const seen = new Set();
  for (const [name, token, at, code] of cases) {
    const { response, outcome } = await run('/writing', token, { now: () => at });
    assert.equal(response, undefined, name);
    assert.deepEqual([outcome.action, outcome.why], ['pass', code], `${name}: ${outcome.message}`);
    seen.add(code);
  }
  for (const code of ['malformed_snapshot', 'bad_signature', 'unknown_key', 'expired', 'not_yet_valid']) {
    assert.ok(seen.has(code), `a case refused as ${code}`);
  }
  // Trusted keys that do not include the signer's.
  const foreign = await run('/writing', vector.token, { publicKeys: { 'other-2026': vector.public_key_b64url } });
  assert.deepEqual([foreign.response, foreign.outcome.why], [undefined, 'unknown_key']);
});

test('a path without a rule, the upgrade page and non-GET requests go through', async () => {
  for (const path of ['/', '/tools', '/tools/batchy', '/writingx', '/account']) {
    const { response, outcome } = await run(path, vector.token);
    assert.equal(response, undefined, path);
    assert.equal(outcome.why, 'no_rule', path);
  }
  // A rule over the upgrade page itself never redirects there (no loop).
  const loop = await run('/tools', vector.token, { rules: { '/tools': { product: 'writing', tier: 'pro' } } });
  assert.deepEqual([loop.response, loop.outcome.why], [undefined, 'upgrade_path']);
  const post = await run('/writing', vector.token, {}, { method: 'POST', body: '{}' });
  assert.deepEqual([post.response, post.outcome.why], [undefined, 'method']);
  const head = await run('/writing', vector.token, {}, { method: 'HEAD' });
  assert.equal(head.response.status, 307);
});

test('with a session subject: only a snapshot of that user gates', async () => {
  const user = vector.snapshot.subject;
  const mine = await run('/writing', vector.token, { subject: () => user });
  assert.equal(mine.response.status, 307);
  const later = await run('/writing', vector.token, { subject: async () => user });
  assert.equal(later.outcome.action, 'redirect', 'an async subject works too');
  const other = await run('/writing', vector.token, { subject: () => 'someone-else' });
  assert.deepEqual([other.response, other.outcome.why], [undefined, 'wrong_subject']);
  const out = await run('/writing', vector.token, { subject: () => null });
  assert.deepEqual([out.response, out.outcome.why], [undefined, 'signed_out']);
});

test('a snapshot of another catalog version goes through: the server decides', async () => {
  // The example catalog as built today is at another version than the vector's snapshot
  // (given as JSON text, and as a function that fetches it).
  assert.notEqual(bundled.catalog.version, vector.snapshot.catalog_version);
  const { response, outcome } = await run('/writing', vector.token, { catalog: JSON.stringify(bundled) });
  assert.deepEqual([response, outcome.why], [undefined, 'catalog_mismatch']);
  const fetched = await run('/writing', vector.token, { catalog: async () => JSON.stringify(bundled) });
  assert.equal(fetched.outcome.why, 'catalog_mismatch');
  const same = await run('/writing', vector.token, { catalog: () => catalog });
  assert.notEqual(same.outcome.why, 'catalog_mismatch');
  assert.deepEqual([response, outcome.why], [undefined, 'catalog_mismatch']);
  const other = await run('/writing', vector.token, { catalog: { ...catalog, catalog: { ...catalog.catalog, id: 'video-studio' } } });
  assert.equal(other.outcome.why, 'catalog_mismatch');
});

test('a rule the catalog cannot answer fails loudly, naming the rule', async () => {
  const { gate } = gateWith({ rules: { '/x': { capability: 'teleport' } } });
  await assert.rejects(gate(request('/x', vector.token)), /rule for `\/x` \(capability `teleport`\)/);
  assert.throws(() => createProxy({ catalog, publicKeys: keys, rules: { 'tools': { capability: 'heavy_tools' } }, upgradePath: '/tools' }), /starting with one `\/`/);
});

test('readCookie finds one cookie among several', () => {
  assert.equal(readCookie('a=1; tollgate-snapshot=x.y; b=2', 'tollgate-snapshot'), 'x.y');
  assert.equal(readCookie('xtollgate-snapshot=1', 'tollgate-snapshot'), null);
  assert.equal(readCookie(null, 'tollgate-snapshot'), null);
});

// ------------------------------------------------------------------ the provider's cookie writer

function withDocument(protocol, fn) {
  const written = [];
  let jar = '';
  globalThis.document = {
    get cookie() {
      return jar;
    },
    set cookie(v) {
      written.push(v);
      const [pair] = v.split(';');
      jar = /Max-Age=0/.test(v) ? '' : pair;
    },
  };
  globalThis.location = { protocol };
  try {
    fn(written);
  } finally {
    delete globalThis.document;
    delete globalThis.location;
  }
}

test('the snapshot cookie: attributes, remaining validity, Secure on https', () => {
  withDocument('http:', (written) => {
    assert.equal(writeSnapshotCookie(SNAPSHOT_COOKIE, vector.token, 899.6), true);
    assert.equal(written.at(-1), `${SNAPSHOT_COOKIE}=${vector.token}; Path=/; Max-Age=899; SameSite=Lax`);
    clearSnapshotCookie(SNAPSHOT_COOKIE);
    assert.equal(written.at(-1), `${SNAPSHOT_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`);
  });
  withDocument('https:', (written) => {
    writeSnapshotCookie(SNAPSHOT_COOKIE, vector.token, 60);
    assert.match(written.at(-1), /; SameSite=Lax; Secure$/);
  });
});

test('a snapshot too large for a cookie, or already over, is not written and the old cookie goes', () => {
  withDocument('http:', (written) => {
    writeSnapshotCookie(SNAPSHOT_COOKIE, vector.token, 60);
    const large = 'a'.repeat(MAX_COOKIE_BYTES) + '.b';
    assert.equal(writeSnapshotCookie(SNAPSHOT_COOKIE, large, 60), false);
    assert.equal(written.at(-1), `${SNAPSHOT_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`);
    writeSnapshotCookie(SNAPSHOT_COOKIE, vector.token, 60);
    assert.equal(writeSnapshotCookie(SNAPSHOT_COOKIE, vector.token, 0.5), false);
    assert.match(written.at(-1), /Max-Age=0/);
    assert.ok(written.every((c) => c.length < 4096));
  });
});
