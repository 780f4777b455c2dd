// tollgate-react across users and time: signing out or in as someone else leaves the
// previous user's snapshot and usage out of every answer; an older answer never replaces
// a newer snapshot; a server fetch of something that is not the worker's answer is a
// refusal; the proxy tries again after a catalog load failed.
//
// The provider and hooks are rendered with react-dom/client (React's own client renderer,
// with its effects) on the tiny DOM of harness.mjs, with `act`; snapshots are signed there
// with the key of the core's test vector (tests/vectors/snapshot.json, RFC 8032 test 1) and
// verified by the built package, as in the browser.
//
// Run (after `npm run build` in react/, i.e. tsc to dist/):
//   cd react && node --test test/sessions.test.mjs
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
// The DOM stand-ins, storage, React and the signed snapshots (the globals are set there, before React loads).
import {
  h, act, tollgateReact, createProxy, vector, keys, catalog, signToken, snapshotFor, accessTokenOf, jsonResponse,
  realFetch, unmountAll, mount, settle, gateState, providerWith, deferred,
} from './harness.mjs';

const { Gate, useTollgate, useUsage } = tollgateReact;

afterEach(async () => {
  await unmountAll();
  globalThis.fetch = realFetch;
  localStorage.clear();
});

const provider = providerWith();
const proGate = () => h(Gate, { capability: 'use_ai' }, h('span', { id: 'paid' }, 'PAID AI TOOL'));

// ------------------------------------------------------------------ 1. sign-out keeps the last user's plan
//
// Signed out (`accessToken` null): no snapshot is in force and the paid gate locks at once.
test('signing out (accessToken -> null) drops the previous user\'s snapshot: paid gates lock', async () => {
  const alice = signToken(snapshotFor('alice', { tier: 'pro' }));
  globalThis.fetch = async () => jsonResponse({ token: alice });
  let state;
  const Probe = () => { state = useTollgate(); return null; };
  const tree = (accessToken) => provider({ accessToken }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]);
  const r = await mount(tree(accessTokenOf('alice')));
  await settle();
  assert.equal(gateState(r.el, 'use_ai'), 'allowed', 'alice on pro is allowed use_ai');
  // Sign out.
  await r.render(tree(null));
  await settle();
  assert.equal(state.signedIn, false);
  assert.equal(state.snapshot?.subject ?? null, null, `signed out, yet the snapshot of ${state.snapshot?.subject} is still in force`);
  assert.notEqual(gateState(r.el, 'use_ai'), 'allowed', 'a signed-out visitor is shown alice\'s paid content');
  assert.doesNotMatch(r.el.innerHTML, /PAID AI TOOL/);
});

// ------------------------------------------------------------------ 2. another user sees the last user's plan
//
// Another user signed in: the previous user's snapshot opens nothing for them, while
// their own fetch is in flight or failing.
test('switching user: the previous user\'s snapshot does not open gates for the next one', async () => {
  const alice = signToken(snapshotFor('alice', { tier: 'pro' }));
  const bobAnswer = deferred();
  globalThis.fetch = async (_url, init) => {
    const sub = JSON.parse(Buffer.from(init.headers.authorization.split('.')[1], 'base64url')).sub;
    return sub === 'alice' ? jsonResponse({ token: alice }) : bobAnswer.promise;
  };
  let state;
  const Probe = () => { state = useTollgate(); return null; };
  const tree = (accessToken) => provider({ accessToken }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]);
  const r = await mount(tree(accessTokenOf('alice')));
  await settle();
  assert.equal(gateState(r.el, 'use_ai'), 'allowed');
  // Bob signs in; his snapshot is still being fetched (then the worker fails).
  await r.render(tree(accessTokenOf('bob')));
  await settle();
  assert.equal(state.subject, 'bob');
  const shown = () => `subject ${state.subject}, snapshot of ${state.snapshot?.subject}, gate ${gateState(r.el, 'use_ai')}`;
  assert.notEqual(gateState(r.el, 'use_ai'), 'allowed', `bob is shown alice's pro content: ${shown()}`);
  bobAnswer.resolve(jsonResponse({ error: { message: 'upstream down' } }, 503));
  await settle();
  assert.notEqual(state.snapshot?.subject, 'user:alice', `after bob's fetch failed: ${shown()}`);
  assert.notEqual(gateState(r.el, 'use_ai'), 'allowed', `after bob's fetch failed: ${shown()}`);
});

// ------------------------------------------------------------------ 3. an older fetch overwrites a newer snapshot
//
// A slow answer to an earlier fetch, arriving after a later one was installed (a refresh
// after a checkout), never replaces the newer snapshot.
test('refresh race: an older response arriving last does not replace a newer snapshot', async () => {
  const t0 = Date.now();
  const before = signToken(snapshotFor('alice', { tier: null, issuedAt: t0 - 60_000 })); // before checkout: free
  const after = signToken(snapshotFor('alice', { tier: 'pro', issuedAt: t0 - 1_000 })); // after checkout: pro
  const slowBody = deferred();
  let calls = 0;
  globalThis.fetch = async () => {
    calls += 1;
    if (calls === 1) {
      // Headers at once, the body later (a slow connection, a large snapshot).
      return { ok: true, status: 200, json: () => slowBody.promise };
    }
    return jsonResponse({ token: after });
  };
  let state;
  const Probe = () => { state = useTollgate(); return null; };
  const r = await mount(provider({ accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
  await settle();
  assert.equal(calls, 1, 'the load refresh is in flight');
  // The checkout page's refresh({ until }) sees the purchase.
  let got;
  await act(async () => { got = await state.refresh({ until: (s) => s.grants.some((g) => g.tier === 'pro'), timeoutMs: 2000 }); });
  assert.equal(got?.grants[0]?.tier, 'pro');
  await settle();
  assert.equal(gateState(r.el, 'use_ai'), 'allowed', 'the purchase shows');
  // Now the first (older) response's body arrives.
  slowBody.resolve({ token: before });
  await settle();
  assert.equal(state.snapshot?.issued_at, snapshotFor('alice', { issuedAt: t0 - 1_000 }).issued_at,
    `the snapshot issued at ${state.snapshot?.issued_at} (before the purchase) replaced the newer one`);
  assert.equal(gateState(r.el, 'use_ai'), 'allowed', 'the purchased tool locks again');
});

// ------------------------------------------------------------------ 4. useUsage shows the previous user's usage
//
// useUsage after the access token changes: the previous user's numbers are gone (pending,
// then the new user's, or an error without the old `check`).
test("useUsage: a new access token does not keep showing the previous user's usage", async () => {
  const aliceCheck = { feature: 'monthly_ai_credits', allowed: true, reason: 'within_limit', remaining: 299, used: 1700, limit: 2000, resets_at: '2027-01-01T00:00:00Z', tier: 'PREMIUM', upgrade: null };
  const bobAnswer = deferred();
  const fetchFor = async (url, init) => {
    const sub = JSON.parse(Buffer.from(init.headers.authorization.split('.')[1], 'base64url')).sub;
    if (sub === 'bob') return bobAnswer.promise;
    return url.includes('/v1/check') ? jsonResponse(aliceCheck) : jsonResponse({ days: [{ day: new Date().toISOString().slice(0, 10), units: 7, uses: 1 }] });
  };
  let u;
  const Probe = ({ accessToken }) => { u = useUsage('monthly_ai_credits', { workerUrl: 'http://worker.test', accessToken, fetch: fetchFor }); return null; };
  const r = await mount(h(Probe, { accessToken: accessTokenOf('alice') }));
  await settle();
  assert.equal(u.status, 'ready');
  assert.equal(u.check.used, 1700, "alice's usage");
  await r.render(h(Probe, { accessToken: accessTokenOf('bob') }));
  await settle();
  assert.notEqual(u.check?.used, 1700, `bob's page shows alice's usage as ${u.status}: ${u.check?.used} of ${u.check?.limit}`);
  bobAnswer.resolve(jsonResponse({ error: { message: 'upstream down' } }, 503));
  await settle();
  assert.equal(u.status, 'error');
  assert.equal(u.check, null, "bob's failed load still carries alice's check, which the README's snippet draws");
});

// ------------------------------------------------------------------ 5. fetchSnapshot throws on a non-JSON answer
//
// fetchSnapshot answers a 200 that is not JSON (a proxy's HTML page, a wrong workerUrl) as
// a refusal, as every other failure: the page renders the free tiers, not a 500.
test('server fetchSnapshot/renderSnapshot answer a non-JSON 200 as a refusal, not a throw', () => {
  const entry = new URL('../dist/server.js', import.meta.url).href;
  const script = `
    const m = await import(${JSON.stringify(entry)});
    globalThis.fetch = async () => new Response('<!doctype html><title>Sign in</title>', { status: 200, headers: { 'content-type': 'text/html' } });
    const out = {};
    for (const [name, call] of [
      ['fetchSnapshot', () => m.fetchSnapshot({ workerUrl: 'http://worker.test', accessToken: 'x', publicKeys: ${JSON.stringify(keys)}, subject: 'alice' })],
      ['renderSnapshot', () => m.renderSnapshot({ workerUrl: 'http://worker.test', accessToken: 'x', publicKeys: ${JSON.stringify(keys)}, subject: 'alice', cookie: null })],
    ]) {
      try { out[name] = { answer: await call() }; } catch (e) { out[name] = { threw: e.constructor.name + ': ' + e.message }; }
    }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--conditions=react-server', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
  for (const name of ['fetchSnapshot', 'renderSnapshot']) {
    assert.equal(out[name].threw, undefined, `${name} threw: ${out[name].threw}`);
    assert.equal(out[name].answer.ok, false);
    assert.equal(out[name].answer.status, 200);
  }
});

// ------------------------------------------------------------------ 6. the proxy remembers a failed catalog load forever
//
// The proxy keeps no failed catalog load: the request that meets the failure (the worker
// redeploying) goes on to the page, whose server-side check decides, and the next request
// loads the catalog again.
test('proxy: a transient catalog load failure does not fail every later request', async () => {
  const catalogAtVector = { ...catalog, catalog: { ...catalog.catalog, version: vector.snapshot.catalog_version } };
  let calls = 0;
  const gate = createProxy({
    catalog: async () => {
      calls += 1;
      if (calls === 1) throw new TypeError('fetch failed');
      return JSON.stringify(catalogAtVector);
    },
    publicKeys: keys,
    rules: { '/writing': { product: 'writing', tier: 'pro' } },
    upgradePath: '/tools',
    now: () => Date.parse(vector.now),
  });
  const req = () => new Request('http://app.test/writing', { headers: { cookie: `tollgate-snapshot=${vector.token}` } });
  const outcomes = [];
  const passing = createProxy({
    catalog: async () => {
      throw new TypeError('fetch failed');
    },
    publicKeys: keys,
    rules: { '/writing': { product: 'writing', tier: 'pro' } },
    upgradePath: '/tools',
    now: () => Date.parse(vector.now),
    onOutcome: (o) => outcomes.push(o),
  });
  assert.equal(await passing(req()), undefined, 'a request that meets the outage goes on to the page');
  assert.equal(outcomes[0]?.why, 'catalog_unavailable');
  assert.match(outcomes[0]?.message ?? '', /fetch failed/);
  assert.equal(await gate(req()), undefined, 'the first request meets the outage and goes on');
  // The worker is back.
  let second;
  try {
    second = await gate(req());
  } catch (e) {
    assert.fail(`the next request still fails with the first load's error (catalog asked ${calls} time(s)): ${e.message}`);
  }
  assert.equal(second?.status, 307, 'the vector user (suite pro, no Writing Cloud) is sent to the upgrade page');
});
