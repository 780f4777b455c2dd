// tollgate-react/proxy (and the server helpers that gate from the same cookie), attacked.
//
// The design: the proxy makes pages fast to refuse, the worker enforces. A request the
// proxy passes on to the page is therefore not a bug by itself; what must never happen is
// (a) a user who holds access being refused (a redirect, a thrown request = a 500 page, a
// request that never answers), or (b) anything unlocked without a valid snapshot.
// Snapshots here are signed with the key of the core's vector (tests/vectors/snapshot.json),
// as the worker signs them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createPrivateKey, generateKeyPairSync, sign as edSign } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { SNAPSHOT_COOKIE, createProxy } from '../dist/proxy.js';

const reactDir = fileURLToPath(new URL('..', import.meta.url));
const vector = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
const KID = vector.kid;
const keys = { [KID]: vector.public_key_b64url };
const NOW = Date.parse(vector.now);
const bundled = JSON.parse(readFileSync(new URL('../../target/catalogs/vcm-suite.json', import.meta.url), 'utf8'));
const catalog = { ...bundled, catalog: { ...bundled.catalog, version: vector.snapshot.catalog_version } };

const secret = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(vector.secret_hex, 'hex')]),
  format: 'der',
  type: 'pkcs8',
});
const { privateKey: strangerKey } = generateKeyPairSync('ed25519');

function signWith(key, payload) {
  const bytes = Buffer.from(JSON.stringify(payload), 'utf8');
  return `${bytes.toString('base64url')}.${edSign(null, bytes, key).toString('base64url')}`;
}
const sign = (payload) => signWith(secret, payload);
const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** A snapshot of `user` (bare id; the worker writes `user:<id>`) holding the suite at `tier` (none for null). */
function snapshotOf(user, { tier = 'pro', issuedAt = NOW - 60_000, ttlMs = 15 * 60_000, version = catalog.catalog.version, catalogId = catalog.catalog.id } = {}) {
  return {
    v: 1,
    kid: KID,
    subject: `user:${user}`,
    catalog_id: catalogId,
    catalog_version: version,
    issued_at: iso(issuedAt),
    expires_at: iso(issuedAt + ttlMs),
    grants: tier
      ? [{ id: `stripe:sub_${user}:suite`, product: 'suite', tier, source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', valid_to: null }]
      : [],
    balances: {},
  };
}
const PAYER = sign(snapshotOf('payer')); // suite pro: holds heavy_tools
const FREE = sign(snapshotOf('freeloader', { tier: null })); // nothing

const rules = { '/tools/batch': { capability: 'heavy_tools' } };

function gateWith(extra = {}) {
  const outcomes = [];
  const gate = createProxy({ catalog, publicKeys: keys, rules, upgradePath: '/tools', now: () => NOW, onOutcome: (o) => outcomes.push(o), ...extra });
  return { gate, outcomes };
}
const req = (url, cookie, init = {}) =>
  new Request(url.startsWith('http') ? url : `http://app.test${url}`, { ...init, headers: { ...(cookie === undefined ? {} : { cookie }), ...init.headers } });
const snap = (token) => `theme=dark; ${SNAPSHOT_COOKIE}=${token}; other=1`;

/** `p` settled within `ms`: { value } / { error } / { hung: true }. */
async function within(p, ms) {
  let timer;
  const r = await Promise.race([
    p.then((value) => ({ value }), (error) => ({ error })),
    new Promise((res) => { timer = setTimeout(() => res({ hung: true }), ms); }),
  ]);
  clearTimeout(timer);
  return r;
}

// ================================================================== path matching

test('path variants: a paying user is never redirected, whatever the spelling of the path', async () => {
  const { gate, outcomes } = gateWith();
  const paths = [
    '/tools/batch', '/tools/batch/', '/tools/batch/x', '/tools/batch?x=1', '/tools/batchX', '/tools/Batch', '/tools/%62atch',
    '//tools/batch', '/tools//batch', '/tools/batch.', '/tools/batch/..', '/tools/batch/%2e%2e/batch', '/tools/batch;x', '/tools/batch%2Fx',
    '/tools/./batch', '/TOOLS/BATCH/',
  ];
  for (const p of paths) {
    const res = await gate(req(p, snap(PAYER)));
    assert.equal(res, undefined, `${p}: the payer was sent to ${res?.headers.get('location')}`);
  }
  assert.ok(outcomes.some((o) => o.action === 'allow'), 'some spelling was decided (and allowed), not only passed');
});

test('path variants: the gated page and the pages below it redirect a free user; look-alike pages do not', async () => {
  const { gate } = gateWith();
  for (const p of ['/tools/batch', '/tools/batch/', '/tools/batch/x', '/tools/batch?x=1', '/tools/./batch', '/tools/x/../batch']) {
    const res = await gate(req(p, snap(FREE)));
    assert.equal(res?.status, 307, `${p} is the gated page`);
  }
  for (const p of ['/tools/batchX', '/tools/batch-x', '/tools/batc', '/tools', '/tools/', '/tool/batch']) {
    const res = await gate(req(p, snap(FREE)));
    assert.equal(res, undefined, `${p} is not the gated page, yet was redirected`);
  }
});

test('rules given twice (`/x` and `/x/`), and nested rules: the longest prefix decides, never a shorter one', async () => {
  const { gate } = gateWith({
    rules: {
      '/tools': { product: 'writing', tier: 'pro' }, // the payer (suite pro) has no Writing Cloud
      '/tools/batch/': { capability: 'heavy_tools' },
    },
    upgradePath: '/upgrade',
  });
  assert.equal(await gate(req('/tools/batch', snap(PAYER))), undefined, 'the nested rule (heavy_tools) decides /tools/batch');
  assert.equal(await gate(req('/tools/batch/x', snap(PAYER))), undefined);
  assert.equal((await gate(req('/tools/other', snap(PAYER))))?.status, 307, 'the broad rule still decides its other pages');
});

// ================================================================== cookies

test('cookies that must not unlock nor deny: tampered, foreign key under a trusted kid, expired, future, another version or catalog', async () => {
  const { gate, outcomes } = gateWith();
  const [body, sig] = PAYER.split('.');
  const payload = JSON.parse(Buffer.from(body, 'base64url'));
  const freeAsPro = { ...JSON.parse(Buffer.from(FREE.split('.')[0], 'base64url')), grants: snapshotOf('freeloader').grants };
  const cases = [
    ['a free snapshot with grants pasted in, old signature', `${Buffer.from(JSON.stringify(freeAsPro)).toString('base64url')}.${FREE.split('.')[1]}`, 'bad_signature'],
    ['the payer snapshot re-encoded with whitespace', `${Buffer.from(JSON.stringify(payload, null, 1)).toString('base64url')}.${sig}`, 'bad_signature'],
    ['signed by an unknown key under the trusted kid', signWith(strangerKey, snapshotOf('mallory')), 'bad_signature'],
    ['signed by an unknown key and kid', signWith(strangerKey, { ...snapshotOf('mallory'), kid: 'mallory-1' }), 'unknown_key'],
    ['expired', sign(snapshotOf('payer', { issuedAt: NOW - 3_600_000, ttlMs: 60_000 })), 'expired'],
    ['issued in the future', sign(snapshotOf('payer', { issuedAt: NOW + 3_600_000 })), 'not_yet_valid'],
    ['another catalog version', sign(snapshotOf('payer', { version: '1999.01.0' })), 'catalog_mismatch'],
    ['another catalog', sign(snapshotOf('payer', { catalogId: 'video-studio' })), 'catalog_mismatch'],
  ];
  for (const [name, token, why] of cases) {
    // The free user's page: a refused snapshot neither redirects nor (obviously) allows.
    const res = await gate(req('/tools/batch', snap(token)));
    assert.equal(res, undefined, name);
    assert.deepEqual([outcomes.at(-1).action, outcomes.at(-1).why], ['pass', why], `${name}: ${outcomes.at(-1).message}`);
  }
});

test('a huge cookie header (hundreds of KB, many cookies) goes through quickly, without a throw', async () => {
  const { gate, outcomes } = gateWith();
  const many = Array.from({ length: 2000 }, (_, i) => `c${i}=${'v'.repeat(100)}`).join('; ');
  const t0 = Date.now();
  for (const cookie of [
    `${many}; ${SNAPSHOT_COOKIE}=${'A'.repeat(500_000)}.${'B'.repeat(86)}`,
    `${SNAPSHOT_COOKIE}=${Buffer.from('{"v":1,"grants":[' + '{},'.repeat(100_000) + '{}]}').toString('base64url')}.${'A'.repeat(86)}`,
  ]) {
    const r = await within(gate(req('/tools/batch', cookie)), 5000);
    assert.equal(r.hung, undefined, 'the proxy is still busy');
    assert.equal(r.error, undefined, `threw: ${r.error}`);
    assert.equal(r.value, undefined);
    assert.equal(outcomes.at(-1).action, 'pass');
  }
  assert.ok(Date.now() - t0 < 5000);
});

test('duplicated snapshot cookies (a sibling subdomain tossing its own): the paying user is not redirected', async () => {
  // Judgement call. A cookie set with Domain=.app.test or a longer Path by another site on
  // the same registrable domain comes first in the Cookie header. It is a valid, signed
  // snapshot (of the attacker's own free account); the proxy reads only the first value,
  // and without a `subject` function decides the payer's request by the attacker's
  // snapshot. With several values it cannot know which is this browser's own.
  const { gate, outcomes } = gateWith();
  const res = await gate(req('/tools/batch', `${SNAPSHOT_COOKIE}=${FREE}; ${SNAPSHOT_COOKIE}=${PAYER}`));
  assert.equal(res, undefined, `the payer (second cookie) was sent to ${res?.headers.get('location')} by the first cookie; outcome ${JSON.stringify(outcomes.at(-1)?.decision)}`);
});

test('duplicated snapshot cookies with a session subject: another user\'s first cookie does not decide for the payer', async () => {
  const { gate, outcomes } = gateWith({ subject: () => 'payer' });
  const res = await gate(req('/tools/batch', `${SNAPSHOT_COOKIE}=${FREE}; ${SNAPSHOT_COOKIE}=${PAYER}`));
  assert.equal(res, undefined);
  assert.notEqual(outcomes.at(-1).action, 'redirect');
});

test('another user\'s snapshot with a session subject: ignored in either form of the id; a signed-out session passes', async () => {
  for (const [subject, why] of [
    [() => 'payer', 'wrong_subject'],
    [() => 'user:payer', 'wrong_subject'],
    [async () => 'PAYER', 'wrong_subject'],
    [() => 'freeloader ', 'wrong_subject'],
    [() => '', 'signed_out'],
    [() => undefined, 'signed_out'],
  ]) {
    const { gate, outcomes } = gateWith({ subject });
    // The payer's browser holds the free user's cookie (copied, or left by the previous user).
    const res = await gate(req('/tools/batch', snap(FREE)));
    assert.equal(res, undefined, `${subject}: the free user's snapshot decided for another session`);
    assert.equal(outcomes.at(-1).why, why);
  }
  // Both spellings of the right user do decide.
  for (const subject of [() => 'freeloader', () => 'user:freeloader']) {
    const { gate } = gateWith({ subject });
    assert.equal((await gate(req('/tools/batch', snap(FREE))))?.status, 307);
  }
});

// ================================================================== when the proxy cannot decide

test('a subject function that throws: the request goes on to the page (no 500 for a paying user)', async () => {
  const { gate, outcomes } = gateWith({
    subject: () => {
      throw new Error('session cookie: invalid JWT');
    },
  });
  const r = await within(gate(req('/tools/batch', snap(PAYER))), 2000);
  assert.equal(r.error, undefined, `the gate threw (Next.js answers 500): ${r.error}`);
  assert.equal(r.value, undefined);
  assert.equal(outcomes.at(-1)?.action, 'pass');
  // An async one that rejects, the same.
  const later = gateWith({ subject: async () => Promise.reject(new Error('jwks')) });
  const r2 = await within(later.gate(req('/tools/batch', snap(PAYER))), 2000);
  assert.equal(r2.error, undefined, `the gate threw: ${r2.error}`);
});

test('a subject function that never answers: the proxy does not hold the page forever', async () => {
  // Judgement call: there is no timeout option, so a session lookup that hangs (a stuck
  // JWKS fetch inside it) hangs every gated page for users who hold a cookie.
  const { gate } = gateWith({ subject: () => new Promise(() => {}) });
  const r = await within(gate(req('/tools/batch', snap(PAYER))), 5000);
  assert.equal(r.hung, undefined, 'the gate is still waiting for the subject after 5 s');
  assert.equal(r.value, undefined);
});

test('a catalog loader that fails: the request goes on to the page, and the next one decides', async () => {
  // The README's own example loads the catalog with fetch(); while the worker is down
  // every gated page of every user holding a cookie is a 500 (sessions.test.mjs expects
  // the first request to reject: this test says it should pass instead).
  let calls = 0;
  const { gate, outcomes } = gateWith({
    catalog: async () => {
      calls += 1;
      if (calls === 1) throw new TypeError('fetch failed');
      if (calls === 2) return '<html>502 Bad Gateway</html>';
      return JSON.stringify(catalog);
    },
  });
  for (const n of [1, 2]) {
    const r = await within(gate(req('/tools/batch', snap(PAYER))), 2000);
    assert.equal(r.error, undefined, `request ${n}: the gate threw (a 500 page for a paying user): ${r.error}`);
    assert.equal(r.value, undefined);
    assert.equal(outcomes.at(-1)?.action, 'pass');
  }
  assert.equal((await gate(req('/tools/batch', snap(FREE))))?.status, 307, 'once the catalog loads the proxy decides again');
});

test('a catalog loader that hangs once does not hang every later request', async () => {
  // `ready` keeps the first, pending load: a fetch that never answers (no timeout in the
  // README's example) blocks every later gated request, forever, even once the worker is back.
  let calls = 0;
  const { gate } = gateWith({
    catalog: () => {
      calls += 1;
      return calls === 1 ? new Promise(() => {}) : JSON.stringify(catalog);
    },
  });
  const first = within(gate(req('/tools/batch', snap(PAYER))), 5000);
  const second = await within(gate(req('/tools/batch', snap(FREE))), 5000);
  assert.equal(second.hung, undefined, `the second request still waits on the first load (catalog asked ${calls} time(s))`);
  assert.equal((await first).hung, undefined, 'the first request never answered');
});

test('a throwing onOutcome logger: still a pass for a paying user, not a 500', async () => {
  // Judgement call: a logging hook that throws (a full log buffer) turns every gated page into an error.
  const { gate } = gateWith({
    onOutcome: () => {
      throw new Error('log sink down');
    },
  });
  const r = await within(gate(req('/tools/batch', snap(PAYER))), 2000);
  assert.equal(r.error, undefined, `the gate threw: ${r.error}`);
});

// ================================================================== redirects

test('the redirect stays on the request origin and its own parameters cannot be injected through the query', async () => {
  const { gate } = gateWith();
  const hostile = '/tools/batch/run?offer=EVIL&from=https://evil.example/&x=%26from%3D%2F%2Fevil&y=a#frag';
  const res = await gate(req(`https://app.test:8443${hostile}`, snap(FREE)));
  assert.equal(res.status, 307);
  assert.equal(res.headers.get('cache-control'), 'private, no-store');
  const to = new URL(res.headers.get('location'));
  assert.equal(to.origin, 'https://app.test:8443');
  assert.equal(to.pathname, '/tools');
  assert.deepEqual(to.searchParams.getAll('from'), ['/tools/batch/run?offer=EVIL&from=https://evil.example/&x=%26from%3D%2F%2Fevil&y=a']);
  assert.equal(to.searchParams.getAll('offer').length, 1);
  assert.notEqual(to.searchParams.get('offer'), 'EVIL');
});

test('`from` is always a path of this site, never a protocol-relative URL another site can use', async () => {
  // Judgement call: with a rule over `/` (a paid-only app) and a host that does not
  // collapse `//` or `\` (any `Request`, which the proxy accepts), `from` becomes
  // `//evil.example/x`; an upgrade page that sends the buyer back to `from` sends them
  // to evil.example.
  const { gate } = gateWith({ rules: { '/': { capability: 'heavy_tools' } } });
  for (const url of ['http://app.test//evil.example/x', 'http://app.test/\\evil.example/x', 'http://app.test/%5Cevil.example']) {
    const res = await gate(req(url, snap(FREE)));
    assert.equal(res?.status, 307, url);
    const to = new URL(res.headers.get('location'));
    assert.equal(to.origin, 'http://app.test');
    const from = to.searchParams.get('from');
    assert.ok(from.startsWith('/') && !/^[/\\]{2}|^\/\\/.test(from), `${url}: from=${from}`);
    assert.equal(new URL(from, 'http://app.test').origin, 'http://app.test', `${url}: from=${from} leaves the site`);
  }
});

test('Next.js basePath and locale: the redirect goes to the upgrade page of this app, not outside it', async () => {
  // NextRequest.nextUrl.pathname has the basePath (and the locale) taken off; the rules
  // and upgradePath are written without them, but the redirect is built from the raw
  // `request.url`, so it leaves the basePath: `/app/tools/batch` is sent to `/tools`, a
  // 404 (or another app) on this origin.
  const { gate } = gateWith();
  const nextLike = (url, nextUrl) => ({ url, method: 'GET', headers: new Headers({ cookie: snap(FREE) }), nextUrl });
  const withBase = await gate(nextLike('http://app.test/app/tools/batch?x=1', { pathname: '/tools/batch', search: '?x=1', basePath: '/app', locale: '', defaultLocale: '' }));
  assert.equal(withBase?.status, 307);
  assert.equal(new URL(withBase.headers.get('location')).pathname, '/app/tools', 'the upgrade page under the basePath');
  const withLocale = await gate(nextLike('http://app.test/fr/tools/batch', { pathname: '/tools/batch', search: '', basePath: '', locale: 'fr', defaultLocale: 'en' }));
  assert.equal(withLocale?.status, 307);
  assert.equal(new URL(withLocale.headers.get('location')).pathname, '/fr/tools', 'the upgrade page in the request\'s locale');
});

test('the upgrade page is never redirected, in any spelling a host serves it, even under a rule over everything', async () => {
  const { gate } = gateWith({ rules: { '/': { capability: 'heavy_tools' } }, upgradePath: '/tools/?offer=x#y' });
  for (const p of ['/tools', '/tools/', '/tools//', '/tools?offer=A&from=%2Ftools', '/tools/?x']) {
    const res = await gate(req(p, snap(FREE)));
    assert.equal(res, undefined, `${p} -> ${res?.headers.get('location')}`);
  }
  // HEAD is a GET without a body: denied the same way; OPTIONS passes.
  assert.equal((await gate(req('/a', snap(FREE), { method: 'HEAD' })))?.status, 307);
  assert.equal(await gate(req('/a', snap(FREE), { method: 'OPTIONS' })), undefined);
});

// ================================================================== server helpers

function onServer(body) {
  const entry = new URL('../dist/server.js', import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(entry)});\n${body}`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--conditions=react-server', '--input-type=module', '-e', script], { cwd: reactDir, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)));
    });
  });
}

test('server: the cookie never unlocks for another user, a forged or expired snapshot, or another catalog', async () => {
  const tokens = {
    mine: PAYER,
    other: FREE,
    forged: signWith(strangerKey, snapshotOf('payer')),
    expired: sign(snapshotOf('payer', { issuedAt: NOW - 3_600_000, ttlMs: 60_000 })),
    otherCatalog: sign(snapshotOf('payer', { catalogId: 'video-studio' })),
  };
  const out = await onServer(`
    const tokens = ${JSON.stringify(tokens)};
    const base = { publicKeys: ${JSON.stringify(keys)}, catalogId: 'vcm-suite', now: ${NOW} };
    const r = {};
    for (const [name, cookie] of Object.entries(tokens)) {
      for (const subject of ['payer', 'user:payer']) {
        const a = await m.snapshotFromCookie({ ...base, cookie, subject });
        r[name + ' ' + subject] = { ok: a.ok, code: a.code ?? null };
      }
    }
    console.log(JSON.stringify(r));`);
  assert.deepEqual(out['mine payer'], { ok: true, code: null });
  assert.deepEqual(out['mine user:payer'], { ok: true, code: null });
  for (const [k, v] of Object.entries(out)) {
    if (k.startsWith('mine')) continue;
    assert.equal(v.ok, false, `${k} unlocked`);
  }
});

test('server: renderSnapshot never keeps a cookie of another user, and refuses a worker answer for another user', async () => {
  const out = await onServer(`
    const base = { publicKeys: ${JSON.stringify(keys)}, catalogId: 'vcm-suite', now: ${NOW}, workerUrl: 'http://worker.test', accessToken: 'x', subject: 'payer' };
    let answer = ${JSON.stringify(PAYER)};
    globalThis.fetch = async () => new Response(JSON.stringify({ token: answer }), { status: 200, headers: { 'content-type': 'application/json' } });
    const a = await m.renderSnapshot({ ...base, cookie: ${JSON.stringify(FREE)} });
    answer = ${JSON.stringify(FREE)};
    const b = await m.renderSnapshot({ ...base, cookie: ${JSON.stringify(FREE)} });
    const c = await m.renderSnapshot({ ...base, cookie: ${JSON.stringify(PAYER)}, fresh: true });
    console.log(JSON.stringify([a, b, c].map((x) => ({ ok: x.ok, from: x.from ?? null, subject: x.snapshot?.subject ?? null, code: x.code ?? null }))));`);
  assert.deepEqual(out[0], { ok: true, from: 'worker', subject: 'user:payer', code: null });
  assert.equal(out[1].ok, false, 'the worker\'s answer of another user was accepted');
  assert.equal(out[1].code, 'wrong_subject');
  assert.equal(out[2].ok, false, 'fresh: the cookie is not used when the worker refuses');
});
