// tollgate-react as a Next.js app meets it on a bad day: refreshes answered out of order
// or after the user changed, storage holding foreign, expired, altered or unreadable
// data (or refusing to work at all), a worker that is slow, failing or not JSON, the
// polling of `refresh({ until })` outliving its page, clocks at the edge of a snapshot's
// validity, server helpers handed odd cookies and subjects, the proxy given bodies and
// paths a gate must not trip over, and a server render with no `window`.
//
// The provider is rendered with react-dom/client on the tiny DOM of harness.mjs with `act`
// (as sessions.test.mjs is); snapshots are signed there with the key of the core's test
// vector (tests/vectors/snapshot.json) and verified by the built package. Workers that must
// really be slow are HTTP servers of this process on 127.0.0.1, port 0.
//
// Run (after `npm run build` in react/, i.e. tsc to dist/):
//   cd react && node --test test/adversarial.test.mjs
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
// The DOM stand-ins, storage, React and the signed snapshots (the globals are set there, before React loads).
import {
  h, act, tollgateReact, createProxy, memory, installMemory, vector, keys, catalog, iso, signToken, snapshotFor,
  accessTokenOf, subOf, jsonResponse, realFetch, unmountAll, mount, settle, gateState, providerWith, deferred,
} from './harness.mjs';

const { Gate, useTollgate, useUsage, subjectOfToken, snapshotKey } = tollgateReact;

// Every rejection nobody handled, so a test can say there was none.
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

const reactDir = fileURLToPath(new URL('..', import.meta.url));

const cleanups = [];
afterEach(async () => {
  await unmountAll();
  while (cleanups.length) await cleanups.pop()();
  globalThis.fetch = realFetch;
  installMemory();
  memory.clear();
  unhandled.length = 0;
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const provider = providerWith({ snapshotCookie: false });
const proGate = () => h(Gate, { capability: 'use_ai' }, h('span', null, 'PAID AI TOOL'));
/** The provider's state, kept by a probe below it. */
function probe() {
  const box = { state: null };
  const Probe = () => { box.state = useTollgate(); return null; };
  return { box, Probe };
}
/** Fails with `message` when `p` takes longer than `ms` (instead of hanging the suite). */
async function within(ms, p, message) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
/** An HTTP server of this process on 127.0.0.1, port 0; closed (with its connections) after the test. */
async function worker(handler) {
  const server = createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${server.address().port}`;
}

// ================================================================== refresh races

test('refresh race: an earlier fetch failing after a later one succeeded does not mark the provider offline', async () => {
  const alice = signToken(snapshotFor('alice'));
  const first = deferred();
  let calls = 0;
  globalThis.fetch = async () => (++calls === 1 ? first.promise : jsonResponse({ token: alice }));
  const { box, Probe } = probe();
  const r = await mount(provider({ accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
  await settle();
  await act(async () => { await box.state.refresh({ reason: 'focus' }); });
  await settle();
  assert.equal(gateState(r.el, 'use_ai'), 'allowed');
  assert.equal(box.state.online, true);
  // The load's request now fails (a dropped connection): it is older than the answer in force.
  first.reject(new TypeError('fetch failed'));
  await settle();
  assert.equal(box.state.online, true, `a stale failure marked the provider offline: ${JSON.stringify(box.state.problem)}`);
  assert.equal(box.state.problem, null, `a stale failure is shown as the problem: ${box.state.problem?.message}`);
  assert.equal(gateState(r.el, 'use_ai'), 'allowed');
});

test("switching user: the previous user's late failure is not shown as the new user's problem", async () => {
  const bob = signToken(snapshotFor('bob'));
  const aliceAnswer = deferred();
  globalThis.fetch = async (_url, init) => (subOf(init) === 'alice' ? aliceAnswer.promise : jsonResponse({ token: bob }));
  const { box, Probe } = probe();
  const tree = (who) => provider({ accessToken: accessTokenOf(who) }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]);
  const r = await mount(tree('alice'));
  await settle();
  await r.render(tree('bob'));
  await settle();
  assert.equal(box.state.snapshot?.subject, 'user:bob');
  aliceAnswer.resolve(jsonResponse({ error: { message: 'JWT expired' } }, 401));
  await settle();
  assert.equal(box.state.snapshot?.subject, 'user:bob');
  assert.equal(box.state.problem, null, `bob is told alice's answer: ${box.state.problem?.message}`);
});

test('signing out while a refresh is in flight: `fetching` does not stay true', async () => {
  const alice = signToken(snapshotFor('alice'));
  const later = deferred();
  let calls = 0;
  globalThis.fetch = async () => (++calls === 1 ? jsonResponse({ token: alice }) : later.promise);
  const { box, Probe } = probe();
  const tree = (accessToken) => provider({ accessToken }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]);
  const r = await mount(tree(accessTokenOf('alice')));
  await settle();
  assert.equal(gateState(r.el, 'use_ai'), 'allowed');
  let pending;
  await act(async () => { pending = box.state.refresh({ reason: 'focus' }); });
  assert.equal(box.state.fetching, true);
  await r.render(tree(null));
  await settle();
  later.resolve(jsonResponse({ token: alice }));
  await act(async () => { await pending; });
  await settle();
  assert.equal(box.state.signedIn, false);
  assert.equal(box.state.snapshot, null, "alice's late answer was applied after she signed out");
  assert.equal(box.state.fetching, false, 'a signed-out provider says it is still fetching');
  assert.equal(memory.getItem(snapshotKey(catalog.catalog.id, 'alice')), alice, 'her own cache entry stays hers');
});

test("a refresh for alice answered after bob signed in is never applied to bob (nor cached as bob's)", async () => {
  const alicePro = signToken(snapshotFor('alice', { tier: 'pro' }));
  const bobFree = signToken(snapshotFor('bob', { tier: null }));
  const aliceLate = deferred();
  let aliceCalls = 0;
  globalThis.fetch = async (_url, init) => {
    if (subOf(init) === 'bob') return jsonResponse({ token: bobFree });
    return ++aliceCalls === 1 ? jsonResponse({ token: alicePro }) : aliceLate.promise;
  };
  const { box, Probe } = probe();
  const tree = (who) => provider({ accessToken: accessTokenOf(who) }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]);
  const r = await mount(tree('alice'));
  await settle();
  let pending;
  await act(async () => { pending = box.state.refresh({ reason: 'checkout' }); });
  await r.render(tree('bob'));
  await settle();
  aliceLate.resolve(jsonResponse({ token: alicePro }));
  await act(async () => { await pending; });
  await settle();
  assert.equal(box.state.snapshot?.subject, 'user:bob');
  assert.notEqual(gateState(r.el, 'use_ai'), 'allowed', "bob is shown alice's plan");
  assert.equal(memory.getItem(snapshotKey(catalog.catalog.id, 'bob')), bobFree);
});

// ================================================================== refresh({ until }) polling

test('refresh({ until }) stops polling when the provider unmounts (no requests, no timers left)', async () => {
  const free = signToken(snapshotFor('alice', { tier: null }));
  let calls = 0;
  globalThis.fetch = async () => { calls += 1; return jsonResponse({ token: free }); };
  const { box, Probe } = probe();
  const r = await mount(provider({ accessToken: accessTokenOf('alice') }, h(Probe)));
  await settle();
  let done = false;
  const polling = box.state.refresh({ until: () => false, intervalMs: 20, timeoutMs: 5_000 }).then((s) => { done = true; return s; });
  await sleep(80);
  await r.unmount();
  const atUnmount = calls;
  await sleep(200);
  assert.ok(calls - atUnmount <= 1, `${calls - atUnmount} requests after the page was gone`);
  await within(500, polling, 'refresh({ until }) still polls after unmount, until its timeout');
  assert.equal(done, true);
});

test("refresh({ until }) stops polling when the user signs out: no request carries the previous user's token", async () => {
  const free = signToken(snapshotFor('alice', { tier: null }));
  const seen = [];
  globalThis.fetch = async (_url, init) => { seen.push([subOf(init), Date.now()]); return jsonResponse({ token: free }); };
  const { box, Probe } = probe();
  const tree = (accessToken) => provider({ accessToken }, h(Probe));
  const r = await mount(tree(accessTokenOf('alice')));
  await settle();
  const polling = box.state.refresh({ until: () => false, intervalMs: 20, timeoutMs: 5_000 });
  await sleep(80);
  await r.render(tree(null));
  const out = Date.now();
  await sleep(200);
  const after = seen.filter(([, at]) => at > out + 5);
  assert.equal(after.length, 0, `${after.length} requests with alice's token after she signed out`);
  await within(500, polling, 'refresh({ until }) still polls for a signed-out user');
});

test('refresh({ until }) while signed out answers at once instead of waiting out its timeout', async () => {
  let calls = 0;
  globalThis.fetch = async () => { calls += 1; return jsonResponse({}); };
  const { box, Probe } = probe();
  await mount(provider({ accessToken: null }, h(Probe)));
  await settle();
  assert.equal(box.state.status, 'ready');
  const got = await within(500, box.state.refresh({ until: () => true, timeoutMs: 5_000 }), 'a signed-out refresh polls until its timeout');
  assert.equal(got, null);
  assert.equal(calls, 0);
});

test('under React.StrictMode (effects mounted twice) the provider loads, fetches and polls as usual', async () => {
  const { StrictMode } = await import('react');
  const free = signToken(snapshotFor('alice', { tier: null }));
  const pro = signToken(snapshotFor('alice', { tier: 'pro', issuedAt: Date.now() }));
  let calls = 0;
  globalThis.fetch = async () => { calls += 1; return jsonResponse({ token: calls < 3 ? free : pro }); };
  const { box, Probe } = probe();
  const r = await mount(h(StrictMode, null, provider({ accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())])));
  await settle();
  assert.equal(box.state.snapshot?.subject, 'user:alice');
  assert.equal(box.state.fetching, false);
  let got;
  await act(async () => { got = await within(3000, box.state.refresh({ until: (s) => s.grants.length > 0, intervalMs: 20 }), 'the poll never saw the purchase'); });
  assert.equal(got?.grants[0]?.tier, 'pro');
  await settle();
  assert.equal(gateState(r.el, 'use_ai'), 'allowed');
});

test('refresh({ until, timeoutMs }) against a worker that never answers ends by its deadline, with a problem as a value', { timeout: 15_000 }, async () => {
  const alice = signToken(snapshotFor('alice', { tier: null }));
  let calls = 0;
  const url = await worker((req, res) => {
    calls += 1;
    if (calls === 1) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: alice }));
    }
    // Later requests are never answered (a stuck worker).
  });
  const { box, Probe } = probe();
  await mount(provider({ workerUrl: url, accessToken: accessTokenOf('alice') }, h(Probe)));
  await within(3000, (async () => { while (!box.state?.snapshot) await settle(1); })(), 'the first snapshot never arrived');
  const started = Date.now();
  let got;
  await act(async () => {
    got = await within(3000, box.state.refresh({ until: (s) => s.grants.length > 0, intervalMs: 20, timeoutMs: 300 }),
      'refresh({ timeoutMs: 300 }) is still waiting for a worker that never answers');
  });
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  assert.equal(got?.subject, 'user:alice', 'the snapshot in force is answered');
  await settle();
  assert.equal(box.state.fetching, false);
  assert.equal(box.state.problem?.code, 'network');
  assert.match(box.state.problem.message, /did not answer|unreachable/);
  assert.deepEqual(unhandled, []);
});

// ================================================================== the worker's failures are values

test('401, 500 (HTML), a 200 that is not JSON and a 200 without a token: a problem with a clear message, no unhandled rejection', async () => {
  const answers = [
    [() => jsonResponse({ error: { code: 'unauthorized', message: 'JWT expired' } }, 401), 'unauthorized', /HTTP 401: JWT expired/],
    [() => new Response('<html>Bad gateway</html>', { status: 502 }), 'http', /HTTP 502/],
    [() => new Response('<!doctype html><title>Sign in</title>', { status: 200, headers: { 'content-type': 'text/html' } }), 'bad_response', /JSON/],
    [() => jsonResponse({ snapshot: 'x' }), 'bad_response', /token/],
    [() => jsonResponse(null), 'bad_response', /token/],
  ];
  for (const [answer, code, message] of answers) {
    globalThis.fetch = async () => answer();
    const { box, Probe } = probe();
    const r = await mount(provider({ accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
    await settle();
    assert.equal(box.state.status, 'ready');
    assert.equal(box.state.problem?.code, code, `${code}: ${JSON.stringify(box.state.problem)}`);
    assert.match(box.state.problem.message, message);
    assert.equal(box.state.fetching, false);
    assert.equal(gateState(r.el, 'use_ai'), 'denied');
    await r.unmount();
  }
  assert.deepEqual(unhandled, []);
});

// ================================================================== what storage holds

test('storage holding another catalog\'s, another user\'s, an altered, an expired or an unreadable snapshot: none opens a gate', async () => {
  const key = snapshotKey(catalog.catalog.id, 'alice');
  const good = snapshotFor('alice');
  const altered = (() => {
    const [p, s] = signToken(good).split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url'));
    payload.grants[0].tier = 'enterprise';
    return `${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
  })();
  const cases = [
    ['another catalog', signToken(snapshotFor('alice', { catalogId: 'video-studio' })), 'catalog_mismatch', false],
    ['another user', signToken(snapshotFor('mallory')), 'wrong_subject', false],
    ['altered', altered, 'bad_signature', false],
    ['expired', signToken(snapshotFor('alice', { issuedAt: Date.now() - 60 * 60_000, ttlMs: 15 * 60_000 })), 'expired', true],
    ['garbage', '\u0000{not a token}', 'malformed_snapshot', false],
    ['huge', 'a'.repeat(200_000) + '.b', 'malformed_snapshot', false],
  ];
  for (const [name, token, code, kept] of cases) {
    memory.setItem(key, token);
    // Offline: only the cache could open the gate.
    globalThis.fetch = async () => { throw new TypeError('fetch failed'); };
    const { box, Probe } = probe();
    const r = await mount(provider({ accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
    await settle();
    assert.equal(box.state.status, 'ready', name);
    assert.equal(box.state.snapshot, null, `${name}: the cached snapshot is in force`);
    assert.notEqual(gateState(r.el, 'use_ai'), 'allowed', name);
    assert.equal(box.state.problem?.code, code, `${name}: ${JSON.stringify(box.state.problem)}`);
    assert.equal(memory.getItem(key) !== null, kept, `${name}: kept in storage`);
    await r.unmount();
    memory.clear();
  }
  assert.deepEqual(unhandled, []);
});

test('storage that throws on every call, or cannot even be reached, does not break the provider', async () => {
  const alice = signToken(snapshotFor('alice'));
  globalThis.fetch = async () => jsonResponse({ token: alice });
  const throwing = {
    getItem() { throw new Error('SecurityError: storage is disabled'); },
    setItem() { throw new DOMException('quota', 'QuotaExceededError'); },
    removeItem() { throw new Error('SecurityError'); },
  };
  for (const [name, install] of [
    ['throwing methods', () => Object.defineProperty(globalThis, 'localStorage', { value: throwing, configurable: true, writable: true })],
    ['a throwing getter', () => Object.defineProperty(globalThis, 'localStorage', { get() { throw new Error('SecurityError: access denied'); }, configurable: true })],
  ]) {
    install();
    const { box, Probe } = probe();
    const r = await mount(provider({ accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
    await settle();
    assert.equal(box.state.status, 'ready', name);
    assert.equal(gateState(r.el, 'use_ai'), 'allowed', name);
    await r.unmount();
  }
  assert.deepEqual(unhandled, []);
});

test('a cached catalog that is not JSON, with the worker down: an error state, not a provider stuck loading', async () => {
  memory.setItem('tollgate.v1:catalog:last', '{"catalog": trunc');
  globalThis.fetch = async () => { throw new TypeError('fetch failed'); };
  const { box, Probe } = probe();
  const r = await mount(provider({ catalog: null, accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
  await settle();
  assert.deepEqual(unhandled.map(String), [], 'the load threw where nobody catches it');
  assert.equal(box.state.status, 'error', `status ${box.state.status}`);
  assert.match(box.state.fatal, /catalog/);
  assert.equal(gateState(r.el, 'use_ai'), 'error');
});

// ================================================================== clock edges

test('a snapshot expiring exactly now is refused; one that expires while shown locks its gates and is renewed', async () => {
  const expiresAt = Math.ceil(Date.now() / 1000) * 1000 + 60_000;
  const token = signToken(snapshotFor('alice', { issuedAt: expiresAt - 10 * 60_000, ttlMs: 10 * 60_000 }));
  // Exactly at expires_at, from the cache and from the network alike.
  memory.setItem(snapshotKey(catalog.catalog.id, 'alice'), token);
  globalThis.fetch = async () => jsonResponse({ token });
  {
    const { box, Probe } = probe();
    const r = await mount(provider({ accessToken: accessTokenOf('alice'), now: () => expiresAt }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
    await settle();
    assert.equal(box.state.snapshot, null);
    assert.equal(box.state.problem?.code, 'expired');
    assert.notEqual(gateState(r.el, 'use_ai'), 'allowed');
    await r.unmount();
  }
  // 80 ms before expires_at, on a clock that moves.
  const start = Date.now();
  let calls = 0;
  globalThis.fetch = async () => { calls += 1; return jsonResponse({ token }); };
  const { box, Probe } = probe();
  const r = await mount(provider({ accessToken: accessTokenOf('alice'), now: () => expiresAt - 80 + (Date.now() - start) }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
  await settle(5);
  assert.equal(gateState(r.el, 'use_ai'), 'allowed', 'valid for a few more ms');
  await act(async () => { await sleep(250); });
  await settle();
  assert.equal(box.state.snapshot, null, 'still in force after expires_at');
  assert.equal(box.state.problem?.code, 'expired');
  assert.notEqual(gateState(r.el, 'use_ai'), 'allowed');
  const after = calls;
  assert.ok(after >= 2, 'a fresh one was asked for');
  await act(async () => { await sleep(200); });
  assert.ok(calls - after <= 1, `${calls - after} more requests: the expiry timer loops`);
});

test('grants whose boundaries are all in the past do not make the provider refresh in a loop', async () => {
  const t = Date.now();
  const grants = [
    { id: 'g:ended', product: 'suite', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2025-01-01T00:00:00Z', valid_to: iso(t - 86_400_000) },
    { id: 'g:due', product: 'creation', tier: 'pro', source: 'stripe', status: 'past_due', past_due_since: '2025-06-01T00:00:00Z', valid_from: '2025-01-01T00:00:00Z', valid_to: '2025-07-01T00:00:00Z' },
  ];
  const token = signToken(snapshotFor('alice', { grants }));
  let calls = 0;
  globalThis.fetch = async () => { calls += 1; return jsonResponse({ token }); };
  const { box, Probe } = probe();
  const r = await mount(provider({ accessToken: accessTokenOf('alice') }, [h(Probe, { key: 'p' }), h('div', { key: 'g' }, proGate())]));
  await settle();
  assert.equal(box.state.snapshot?.subject, 'user:alice');
  assert.equal(gateState(r.el, 'use_ai'), 'denied');
  await act(async () => { await sleep(300); });
  assert.ok(calls <= 2, `${calls} requests in 300 ms`);
});

// ================================================================== the access token's subject

test('subjectOfToken reads a non-ASCII `sub` as the text it is (UTF-8), and odd tokens as null', () => {
  const tok = (claims) => `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;
  assert.equal(subjectOfToken(tok({ sub: 'jöhn-ß-用户' })), 'jöhn-ß-用户');
  assert.equal(subjectOfToken(tok({ sub: 'c0ffee-42' })), 'c0ffee-42');
  for (const odd of [null, '', 'abc', 'a.%%%.c', 'a..c', tok({ sub: 42 }), tok(['sub'])]) {
    assert.equal(subjectOfToken(odd), null, JSON.stringify(odd));
  }
});

// ================================================================== SSR

test('server render: the provider and gates render with no window, document or storage', async () => {
  const index = new URL('../dist/index.js', import.meta.url).href;
  const script = `
    if (typeof window !== 'undefined' || typeof document !== 'undefined' || typeof localStorage !== 'undefined') throw new Error('not a server');
    const { createElement: h } = await import('react');
    const { renderToString } = await import('react-dom/server');
    const tg = await import(${JSON.stringify(index)});
    const initial = { allowed: true, reason: 'active', tier: 'pro', holds_until: null };
    const html = renderToString(h(tg.TollgateProvider, {
      workerUrl: 'http://worker.test', accessToken: 'h.' + Buffer.from(JSON.stringify({ sub: 'alice' })).toString('base64url') + '.s',
      publicKeys: 'k:${vector.public_key_b64url}', initialToken: 'x.y',
    }, h(tg.Gate, { capability: 'use_ai' }, 'PAID'), h(tg.Gate, { capability: 'use_ai', initial }, 'FIRST PAINT')));
    console.log(JSON.stringify(html));`;
  const out = await run(['--input-type=module', '-e', script]);
  assert.equal(out.code, 0, out.stderr);
  const html = JSON.parse(out.stdout.trim().split('\n').at(-1));
  assert.match(html, /data-gate-state="pending"/);
  assert.doesNotMatch(html, /PAID/);
  assert.match(html, /FIRST PAINT/);
});

/** Runs Node with `args` in react/, without blocking this process (its servers must answer). */
function run(args, env = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: reactDir, encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr });
    });
  });
}
/** Runs `body` in a Node process that imported tollgate-react/server as `m`; its last line of output, parsed. */
async function onServer(body, env = {}) {
  const entry = new URL('../dist/server.js', import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(entry)});\n${body}`;
  const out = await run(['--conditions=react-server', '--input-type=module', '-e', script], env);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout.trim().split('\n').at(-1));
}

// ================================================================== server.ts

test('server: a worker that sends headers and then stalls the body is cut off at timeoutMs, for every helper', { timeout: 30_000 }, async () => {
  const url = await worker((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"to'); // and nothing more
  });
  const out = await onServer(`
    const opts = { workerUrl: process.env.URL, accessToken: 'x', timeoutMs: 200 };
    const cut = (p) => Promise.race([p.then((v) => ({ v }), (e) => ({ threw: String(e) })), new Promise((r) => setTimeout(() => r({ hung: true }), 3000))]);
    const t0 = Date.now();
    const answers = {
      fetchSnapshot: await cut(m.fetchSnapshot({ ...opts, publicKeys: ${JSON.stringify(keys)}, subject: 'alice' })),
      check: await cut(m.check('use_ai', opts)),
      track: await cut(m.track('use_ai', opts)),
      exportPolicy: await cut(m.exportPolicy(opts)),
    };
    for (const a of Object.values(answers)) if (a.v?.response) a.v.response = a.v.response.status;
    console.log(JSON.stringify({ answers, ms: Date.now() - t0 }));
    process.exit(0);`, { URL: url });
  for (const [name, a] of Object.entries(out.answers)) {
    assert.equal(a.hung, undefined, `${name} is still waiting for the body after its 200 ms timeout`);
    assert.equal(a.threw, undefined, `${name} threw: ${a.threw}`);
    assert.equal(a.v.ok, false, name);
  }
  assert.equal(out.answers.check.v.response, 503);
  assert.match(out.answers.check.v.message, /unreachable|did not answer/);
});

test('server: snapshotFromCookie and renderSnapshot never accept a snapshot for a missing or empty subject', async () => {
  const out = await onServer(`
    const base = { cookie: ${JSON.stringify(vector.token)}, publicKeys: ${JSON.stringify(keys)}, now: Date.parse(${JSON.stringify(vector.now)}) };
    globalThis.fetch = async () => new Response('{}', { status: 503 });
    const r = {};
    for (const [name, subject] of [['empty', ''], ['undefined', undefined], ['null', null]]) {
      r[name] = await m.snapshotFromCookie({ ...base, subject });
      r['render ' + name] = await m.renderSnapshot({ ...base, workerUrl: 'http://worker.test', accessToken: 'x', subject });
    }
    r.right = await m.snapshotFromCookie({ ...base, subject: ${JSON.stringify(vector.snapshot.subject)} });
    console.log(JSON.stringify(r));`);
  assert.equal(out.right.ok, true, 'the vector user is accepted');
  for (const name of ['empty', 'undefined', 'null', 'render empty', 'render undefined', 'render null']) {
    assert.equal(out[name].ok, false, `${name}: the cookie's snapshot of ${out[name].snapshot?.subject} was accepted for no signed-in user`);
  }
});

test('server: odd cookies (quoted, spaced, garbage, huge, not a string) are refusals, never throws', async () => {
  const out = await onServer(`
    const base = { publicKeys: ${JSON.stringify(keys)}, subject: ${JSON.stringify(vector.snapshot.subject)}, now: Date.parse(${JSON.stringify(vector.now)}) };
    const t = ${JSON.stringify(vector.token)};
    const r = [];
    for (const cookie of ['"' + t + '"', ' ' + t + ' ', 'garbage', '..', 'a'.repeat(300000) + '.b', encodeURIComponent(t + '=='), 42, {}, '']) {
      try { const a = await m.snapshotFromCookie({ ...base, cookie }); r.push({ ok: a.ok, code: a.code }); }
      catch (e) { r.push({ threw: String(e) }); }
    }
    console.log(JSON.stringify(r));`);
  for (const a of out) {
    assert.equal(a.threw, undefined, `threw: ${a.threw}`);
    assert.equal(a.ok, false);
  }
});

test('server: a 401, a 500 page and an unreachable worker are refusals with their status and a ready response', async () => {
  let calls = 0;
  const url = await worker((req, res) => {
    calls += 1;
    if (req.url.startsWith('/v1/check')) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unauthorized', message: 'JWT expired' } }));
    } else {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<h1>Internal error</h1>');
    }
  });
  const out = await onServer(`
    const opts = { workerUrl: process.env.URL, accessToken: 'x' };
    const strip = async (a) => ({ ...a, response: a.response ? { status: a.response.status, body: await a.response.json() } : undefined });
    const r = {
      check: await strip(await m.check('use_ai', opts)),
      track: await strip(await m.track('use_ai', opts)),
      fetchSnapshot: await m.fetchSnapshot({ ...opts, publicKeys: ${JSON.stringify(keys)}, subject: 'alice' }),
      down: await strip(await m.check('use_ai', { workerUrl: 'http://127.0.0.1:1', accessToken: 'x' })),
    };
    console.log(JSON.stringify(r));`, { URL: url });
  assert.deepEqual([out.check.status, out.check.code, out.check.message, out.check.response.status], [401, 'unauthorized', 'JWT expired', 401]);
  assert.deepEqual([out.track.status, out.track.code, out.track.response.status], [500, 'http', 500]);
  assert.deepEqual([out.fetchSnapshot.ok, out.fetchSnapshot.status, out.fetchSnapshot.code], [false, 500, 'http']);
  assert.deepEqual([out.down.status, out.down.code, out.down.response.status], [null, 'unavailable', 503]);
  assert.equal(calls, 3);
});

// ================================================================== proxy.ts

const vectorCatalog = { ...catalog, catalog: { ...catalog.catalog, version: vector.snapshot.catalog_version } };
function vectorGate(extra = {}) {
  const outcomes = [];
  const gate = createProxy({
    catalog: vectorCatalog,
    publicKeys: keys,
    rules: { '/writing': { product: 'writing', tier: 'pro' } },
    upgradePath: '/tools',
    now: () => Date.parse(vector.now),
    onOutcome: (o) => outcomes.push(o),
    ...extra,
  });
  return { gate, outcomes };
}

test('proxy: a request with a body passes untouched (body unread); a redirect carries no cookie, authorization or request header', async () => {
  const { gate, outcomes } = vectorGate();
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const req = new Request('http://app.test/writing/save', {
      method,
      body: JSON.stringify({ draft: 1 }),
      headers: { cookie: `tollgate-snapshot=${vector.token}`, authorization: 'Bearer secret', 'content-type': 'application/json' },
    });
    assert.equal(await gate(req), undefined, method);
    assert.equal(req.bodyUsed, false, `${method}: the proxy read the body`);
    assert.deepEqual(await req.json(), { draft: 1 });
  }
  assert.ok(outcomes.every((o) => o.why === 'method'));
  const res = await gate(new Request('http://app.test/writing?x=1', {
    headers: { cookie: `session=abc; tollgate-snapshot=${vector.token}`, authorization: 'Bearer secret', 'x-forwarded-host': 'evil.example' },
  }));
  assert.equal(res.status, 307);
  assert.deepEqual([...res.headers.keys()].sort(), ['cache-control', 'location', 'x-tollgate-proxy']);
  const to = new URL(res.headers.get('location'));
  assert.equal(to.origin, 'http://app.test', 'the redirect stays on the request\'s origin');
  assert.equal(to.searchParams.get('from'), '/writing?x=1');
  assert.equal(await res.text(), '');
});

test('proxy: the upgrade page with a trailing slash (trailingSlash: true) is not redirected to itself', async () => {
  const { gate, outcomes } = vectorGate({ rules: { '/writing': { product: 'writing', tier: 'pro' } }, upgradePath: '/writing/upgrade' });
  for (const path of ['/writing/upgrade', '/writing/upgrade/']) {
    const res = await gate(new Request(`http://app.test${path}?offer=X`, { headers: { cookie: `tollgate-snapshot=${vector.token}` } }));
    assert.equal(res, undefined, `${path} redirects to ${res?.headers.get('location')}: a loop`);
    assert.equal(outcomes.at(-1).why, 'upgrade_path');
  }
  // Below the upgrade page is another page: gated.
  const below = await gate(new Request('http://app.test/writing/upgrade/other', { headers: { cookie: `tollgate-snapshot=${vector.token}` } }));
  assert.equal(below?.status, 307);
});

test('proxy: odd cookies (garbage, quoted, twice, empty name) go through as refusals, never a thrown request', async () => {
  const { gate, outcomes } = vectorGate();
  for (const cookie of [
    'tollgate-snapshot=%%%',
    `tollgate-snapshot="${vector.token}"`,
    `tollgate-snapshot=garbage; tollgate-snapshot=${vector.token}`,
    '=; ;;tollgate-snapshot',
    `tollgate-snapshot=${'a'.repeat(100_000)}.b`,
  ]) {
    const res = await gate(new Request('http://app.test/writing', { headers: { cookie } }));
    assert.equal(res, undefined, cookie.slice(0, 40));
    assert.equal(outcomes.at(-1).action, 'pass');
  }
});

// useUsage against a worker that never answers: an error by the deadline, not `pending`
// for good; and the requests of a token left behind are ended, not left hanging.
test('useUsage: a worker that never answers is an error by timeoutMs, and leaving ends its requests', async () => {
  const signals = [];
  const never = (url, init) => {
    signals.push(init.signal);
    return new Promise((_, reject) => init.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
  };
  let u;
  const Probe = ({ accessToken, timeoutMs }) => { u = useUsage('monthly_ai_credits', { workerUrl: 'http://worker.test', accessToken, fetch: never, timeoutMs }); return null; };
  const r = await mount(h(Probe, { accessToken: accessTokenOf('alice'), timeoutMs: 50 }));
  await within(2000, (async () => { while (u.status === 'pending') await settle(2); })(), 'still pending past its deadline');
  assert.equal(u.status, 'error');
  assert.match(u.error, /did not answer within 50 ms/);
  await r.render(h(Probe, { accessToken: accessTokenOf('bob'), timeoutMs: 60_000 }));
  await settle();
  const bobs = signals.slice(-2);
  assert.equal(u.status, 'pending');
  await r.unmount();
  assert.ok(bobs.every((s) => s?.aborted), 'the requests of an unmounted meter are ended');
});
