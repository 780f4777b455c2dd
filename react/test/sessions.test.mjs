// tollgate-react across users and time: signing out or in as someone else leaves the
// previous user's snapshot and usage out of every answer; an older answer never replaces
// a newer snapshot; a server fetch of something that is not the worker's answer is a
// refusal; the proxy tries again after a catalog load failed.
//
// The provider and hooks are rendered with react-dom/client (React's own client renderer,
// with its effects) on a tiny in-file DOM, with `act`; snapshots are signed here with the
// key of the core's test vector (tests/vectors/snapshot.json, RFC 8032 test 1) and
// verified by the built package, as in the browser.
//
// Run (after `npm run build` in react/, i.e. tsc to dist/):
//   cd react && node --test test/sessions.test.mjs
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, sign as edSign } from 'node:crypto';
import { fileURLToPath } from 'node:url';

// ------------------------------------------------------------------ a tiny DOM for react-dom/client
class FakeNode {
  constructor(nodeType, nodeName, doc) {
    this.nodeType = nodeType;
    this.nodeName = nodeName;
    this.ownerDocument = doc;
    this.childNodes = [];
    this.parentNode = null;
  }
  get firstChild() { return this.childNodes[0] ?? null; }
  get lastChild() { return this.childNodes.at(-1) ?? null; }
  get nextSibling() {
    if (!this.parentNode) return null;
    const c = this.parentNode.childNodes;
    return c[c.indexOf(this) + 1] ?? null;
  }
  appendChild(n) { n.parentNode?.removeChild(n); this.childNodes.push(n); n.parentNode = this; return n; }
  insertBefore(n, ref) {
    if (!ref) return this.appendChild(n);
    n.parentNode?.removeChild(n);
    this.childNodes.splice(this.childNodes.indexOf(ref), 0, n);
    n.parentNode = this;
    return n;
  }
  removeChild(n) { const i = this.childNodes.indexOf(n); if (i >= 0) this.childNodes.splice(i, 1); n.parentNode = null; return n; }
  addEventListener() {}
  removeEventListener() {}
  get textContent() {
    if (this.nodeType === 3 || this.nodeType === 8) return this.data;
    return this.childNodes.map((c) => (c.nodeType === 8 ? '' : c.textContent)).join('');
  }
  set textContent(v) {
    if (this.nodeType === 3) { this.data = String(v); return; }
    this.childNodes = [];
    if (v !== '' && v != null) this.appendChild(this.ownerDocument.createTextNode(String(v)));
  }
  get nodeValue() { return this.data ?? null; }
  set nodeValue(v) { this.data = v; }
}
class FakeElement extends FakeNode {
  constructor(tag, doc, ns) {
    super(1, tag.toUpperCase(), doc);
    this.tagName = tag.toUpperCase();
    this.localName = tag;
    this.namespaceURI = ns ?? 'http://www.w3.org/1999/xhtml';
    this.attributes = {};
    this.style = {};
  }
  setAttribute(k, v) { this.attributes[k] = String(v); }
  setAttributeNS(_ns, k, v) { this.attributes[k] = String(v); }
  getAttribute(k) { return this.attributes[k] ?? null; }
  hasAttribute(k) { return k in this.attributes; }
  removeAttribute(k) { delete this.attributes[k]; }
  removeAttributeNS(_ns, k) { delete this.attributes[k]; }
  get innerHTML() {
    return this.childNodes.map((c) => (c.nodeType === 1 ? c.outerHTML : c.nodeType === 3 ? c.data : '')).join('');
  }
  get outerHTML() {
    const a = Object.entries(this.attributes).map(([k, v]) => ` ${k}="${v}"`).join('');
    return `<${this.localName}${a}>${this.innerHTML}</${this.localName}>`;
  }
}
class FakeDocument extends FakeNode {
  constructor() {
    super(9, '#document', null);
    this.cookie = '';
    this.visibilityState = 'visible';
    this.documentElement = this.createElement('html');
    this.body = this.createElement('body');
    this.documentElement.appendChild(this.body);
    this.appendChild(this.documentElement);
  }
  get activeElement() { return this.body; }
  createElement(t) { return new FakeElement(t, this); }
  createElementNS(ns, t) { return new FakeElement(t, this, ns); }
  createTextNode(s) { const n = new FakeNode(3, '#text', this); n.data = String(s); return n; }
  createComment(s) { const n = new FakeNode(8, '#comment', this); n.data = String(s); return n; }
}
class MemoryStorage {
  #m = new Map();
  getItem(k) { return this.#m.has(k) ? this.#m.get(k) : null; }
  setItem(k, v) { this.#m.set(k, String(v)); }
  removeItem(k) { this.#m.delete(k); }
  clear() { this.#m.clear(); }
}
globalThis.document = new FakeDocument();
globalThis.window = globalThis;
globalThis.localStorage = new MemoryStorage();
globalThis.addEventListener = () => {};
globalThis.removeEventListener = () => {};
globalThis.navigator ??= { userAgent: "node" };
globalThis.HTMLElement = FakeElement;
globalThis.HTMLIFrameElement = class {};
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const { createElement: h, act } = await import('react');
const { createRoot } = await import('react-dom/client');
const tollgate = await import('tollgate');
const { Engine, loadCatalog } = tollgate;
const { TollgateProvider, Gate, useTollgate, useAccess, useUsage } = await import('../dist/index.js');
const { createProxy } = await import('../dist/proxy.js');

// ------------------------------------------------------------------ signed snapshots
const vector = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
const KID = vector.kid;
const keys = { [KID]: vector.public_key_b64url };
const secret = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(vector.secret_hex, 'hex')]),
  format: 'der',
  type: 'pkcs8',
});
const catalog = JSON.parse(readFileSync(new URL('../../target/catalogs/vcm-suite.json', import.meta.url), 'utf8'));

const iso = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
/** A token signed as the worker signs: base64url(payload) '.' base64url(Ed25519(payload)). */
function signToken(payload) {
  const bytes = Buffer.from(JSON.stringify(payload), 'utf8');
  return `${bytes.toString('base64url')}.${edSign(null, bytes, secret).toString('base64url')}`;
}
function snapshotFor(userId, { tier = 'pro', issuedAt = Date.now() - 1000, ttlMs = 15 * 60_000 } = {}) {
  return {
    v: 1,
    kid: KID,
    subject: `user:${userId}`,
    catalog_id: catalog.catalog.id,
    catalog_version: catalog.catalog.version,
    issued_at: iso(issuedAt),
    expires_at: iso(issuedAt + ttlMs),
    grants: tier
      ? [{ id: `stripe:sub_${userId}:suite`, product: 'suite', tier, source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', valid_to: null }]
      : [],
    balances: {},
  };
}
/** A Supabase-like access token: only its `sub` is read by the provider. */
const accessTokenOf = (userId) => `h.${Buffer.from(JSON.stringify({ sub: userId })).toString('base64url')}.s`;

const jsonResponse = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const mounted = [];
const realFetch = globalThis.fetch;
afterEach(async () => {
  // Unmounting stops the provider's timers, so the process can end after a failure.
  while (mounted.length) await act(async () => mounted.pop().unmount());
  globalThis.fetch = realFetch;
  localStorage.clear();
});

/** Renders `element` into a fresh root; returns the container and helpers. */
async function mount(element) {
  const el = document.createElement('div');
  const root = createRoot(el);
  mounted.push(root);
  await act(async () => root.render(element));
  return {
    el,
    render: (next) => act(async () => root.render(next)),
  };
}
/** Lets pending promises and effects run. */
const settle = async (rounds = 20) => {
  for (let i = 0; i < rounds; i++) await act(async () => { await new Promise((r) => setTimeout(r, 1)); });
};
const gateState = (el, id) => {
  const m = el.innerHTML.match(new RegExp(`data-gate="${id}" data-gate-state="(\\w+)"`));
  return m ? m[1] : null;
};

function provider(props, children) {
  return h(
    TollgateProvider,
    { workerUrl: 'http://worker.test', publicKeys: keys, catalog, load: async () => tollgate, refreshOnFocus: false, ...props },
    children,
  );
}
const proGate = () => h(Gate, { capability: 'use_ai' }, h('span', { id: 'paid' }, 'PAID AI TOOL'));


/** Resolves later, when the test says so. */
function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}

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
// The proxy keeps no failed catalog load: after one fails (the worker redeploying), the
// next request loads it again.
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
  await assert.rejects(gate(req()), /fetch failed/, 'the first request meets the outage');
  // The worker is back.
  let second;
  try {
    second = await gate(req());
  } catch (e) {
    assert.fail(`the next request still fails with the first load's error (catalog asked ${calls} time(s)): ${e.message}`);
  }
  assert.equal(second?.status, 307, 'the vector user (suite pro, no Writing Cloud) is sent to the upgrade page');
});
