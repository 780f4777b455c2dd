// Contract test: the exact requests the worker sends to Supabase's REST API, recorded by
// a proxy between a second `wrangler dev` instance and the gateway, and checked against
// PostgREST's documented API: paths under /rest/v1, `apikey` and `Authorization: Bearer`
// carrying the service-role key, JSON bodies with named arguments that are the
// functions' real parameter names (read from pg_proc), documented filter operators on
// real columns, documented Prefer values. So the worker works unchanged against a real
// Supabase project.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { env, q, createUser, userToken, now, id, closeDb, sleep } from './helpers.mjs';
import Stripe from 'stripe';
import { StripeSubscriber, stripeOneTime, DAY } from './events.mjs';

const repo = env.repo ?? path.resolve(import.meta.dirname, '../..');
const built = path.join(repo, 'worker/build/index.js');
const skip = (env.catalog !== 'vcm-suite' && 'runs once, in the vcm-suite pass (it starts its own worker)')
  || ((!fs.existsSync(built) || !fs.existsSync(path.join(repo, '.dev.vars'))) && 'needs worker/build and .dev.vars (cargo xtask)');

const recorded = [];
let proxy, wrangler, base, tmp;
// Asymmetric signing keys published as a JWKS, the way Supabase's signing-keys system
// publishes them at /auth/v1/.well-known/jwks.json: two ES256 keys (P-256), an RS256 key
// (RSA 2048) and an RSA key too small to accept (1024 bits).
const es = [crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }), crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })];
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const weakRsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
let jwksHits = 0;
function jwks() {
  return { keys: [
    ...es.map((k, i) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: `k${i + 1}`, alg: 'ES256', use: 'sig' })),
    { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'r1', alg: 'RS256', use: 'sig' },
    { ...weakRsa.publicKey.export({ format: 'jwk' }), kid: 'r0', alg: 'RS256', use: 'sig' },
  ] };
}
function jwt(alg, claims, kid, sign) {
  const b = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const input = `${b({ alg, typ: 'JWT', kid })}.${b(claims)}`;
  return `${input}.${sign(Buffer.from(input)).toString('base64url')}`;
}
const es256 = (claims, kid, key) => jwt('ES256', claims, kid, (m) => crypto.sign('sha256', m, { key, dsaEncoding: 'ieee-p1363' }));
// RSASSA-PKCS1-v1_5 with SHA-256 (Node's default padding for RSA keys).
const rs256 = (claims, kid, key) => jwt('RS256', claims, kid, (m) => crypto.sign('sha256', m, key));

// PostgREST's documented vocabulary.
const FILTER_OPS = new Set(['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'in', 'is', 'isdistinct',
  'fts', 'plfts', 'phfts', 'wfts', 'cs', 'cd', 'ov', 'sl', 'sr', 'nxr', 'nxl', 'adj', 'not', 'or', 'and']);
const RESERVED_PARAMS = new Set(['select', 'order', 'limit', 'offset', 'on_conflict', 'columns', 'and', 'or']);
const PREFER = [/^return=(minimal|representation|headers-only)$/, /^resolution=(merge-duplicates|ignore-duplicates)$/,
  /^count=(exact|planned|estimated)$/, /^missing=default$/, /^handling=(lenient|strict)$/, /^tx=(commit|rollback)$/,
  /^max-affected=\d+$/, /^params=single-object$/, /^timezone=.+$/];

async function startProxy() {
  const target = new URL(env.rest);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/auth/v1/.well-known/jwks.json') {
        jwksHits += 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(jwks()));
        return;
      }
      recorded.push({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url,
        headers: { ...req.headers, host: target.host } }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      up.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

before(async () => {
  if (skip) return;
  proxy = await startProxy();
  const proxyUrl = `http://127.0.0.1:${proxy.address().port}`;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-contract-'));
  // A port the system has free (a fixed one could collide with another run's worker).
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => { const p = probe.address().port; probe.close(() => resolve(p)); });
  });
  const vars = fs.readFileSync(path.join(repo, '.dev.vars'), 'utf8')
    .replace(/^SUPABASE_URL=.*$/m, `SUPABASE_URL="${proxyUrl}"`)
    .replace(/^CATALOG=.*$/m, 'CATALOG="video-studio"')
    + `SUPABASE_JWKS_URL="${proxyUrl}/auth/v1/.well-known/jwks.json"\n`
    // The project is still the stack's: its tokens carry the stack's issuer, not the proxy's.
    + `SUPABASE_JWT_ISSUER="${env.issuer}"\n`;
  fs.writeFileSync(path.join(tmp, '.dev.vars'), vars);
  fs.writeFileSync(path.join(tmp, 'wrangler.toml'),
    `name = "tollgate-contract"\nmain = ${JSON.stringify(built)}\ncompatibility_date = "2025-09-01"\n`);
  const bin = path.join(repo, 'tests/e2e/node_modules/wrangler/bin/wrangler.js');
  wrangler = spawn(process.execPath, [bin, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', '0'], {
    cwd: tmp, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' }, stdio: 'ignore', detached: true,
  });
  wrangler.unref();
  base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 240; i++) {
    try { if ((await fetch(`${base}/healthz`)).status === 200) return; } catch { /* starting */ }
    await sleep(250);
  }
  throw new Error('the contract worker did not start');
});

after(async () => {
  // wrangler stops (with its workerd) on SIGINT, as on Ctrl-C; SIGTERM it ignores.
  if (wrangler) { try { process.kill(-wrangler.pid, 'SIGINT'); } catch { /* gone */ } }
  if (proxy) proxy.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await closeDb();
});

test('every request the worker sends to Supabase follows PostgREST\'s documented API', { skip }, async () => {
  const stripe = new Stripe('sk_test_unused');
  const secret = env.stripeSecrets[0];
  const send = async (event) => {
    const payload = JSON.stringify(event);
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: now() });
    const r = await fetch(`${base}/webhooks/stripe`, { method: 'POST', body: payload, headers: { 'stripe-signature': header } });
    assert.equal(r.status, 200, await r.text());
  };
  // Drive every route that talks to Supabase.
  const uid = await createUser();
  const t0 = now() - 2 * DAY;
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'VIDEO_PRO_MONTHLY', start: t0 });
  for (const e of [s.checkout(), s.created(), s.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: t0 + 30 * DAY })]) await send(e);
  await send(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 10 }));
  const auth = { authorization: `Bearer ${userToken(uid)}` };
  assert.equal((await fetch(`${base}/v1/entitlements`, { headers: auth })).status, 200);
  const c = await fetch(`${base}/v1/usage/consume`, { method: 'POST', headers: { ...auth, 'idempotency-key': id('k'), 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'standard', quality: 'standard', seconds: 30 }) });
  assert.equal(c.status, 200, await c.text());
  const adminHeaders = { authorization: `Bearer ${env.adminSecret}`, 'content-type': 'application/json' };
  const g = await fetch(`${base}/v1/admin/grants`, { method: 'POST', headers: adminHeaders,
    body: JSON.stringify({ user_id: uid, grants: [{ product: 'video', tier: 'studio', source: 'promotion', valid_to: '2030-01-01T00:00:00Z' }] }) });
  assert.equal(g.status, 201, await g.text());
  const org = crypto.randomUUID();
  await q('insert into organizations (id) values ($1)', [org]);
  await q('insert into organization_members (organization_id, user_id) values ($1, $2)', [org, uid]);
  const seat = await fetch(`${base}/v1/admin/seats`, { method: 'POST', headers: adminHeaders,
    body: JSON.stringify({ organization_id: org, user_id: uid }) });
  assert.equal(seat.status, 409, 'no seats without a subscription');

  assert.ok(recorded.length >= 10, `recorded ${recorded.length} requests`);
  const key = (await fs.promises.readFile(path.join(repo, '.dev.vars'), 'utf8')).match(/^SUPABASE_SERVICE_ROLE_KEY="(.*)"$/m)[1];
  const fnArgs = new Map((await q(`select proname, proargnames, pronargs, pronargdefaults from pg_proc
                                   where pronamespace = 'public'::regnamespace and proname like 'tollgate_%'`))
    .map((r) => [r.proname, r]));
  const columns = async (t) => new Set((await q(`select column_name from information_schema.columns
                                                 where table_schema = 'public' and table_name = $1`, [t])).map((r) => r.column_name));
  const seen = new Set();
  for (const r of recorded.filter((x) => !x.url.startsWith('/auth/v1/'))) {
    const u = new URL(r.url, 'http://x');
    assert.match(u.pathname, /^\/rest\/v1\//, r.url);
    assert.equal(r.headers.apikey, key, 'apikey is the service-role key');
    assert.equal(r.headers.authorization, `Bearer ${key}`, 'Authorization: Bearer <service-role key>');
    assert.ok(!('accept' in r.headers) || /application\/json|\*\/\*/.test(r.headers.accept), r.headers.accept);
    for (const p of (r.headers.prefer ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
      assert.ok(PREFER.some((re) => re.test(p)), `documented Prefer value: ${p}`);
    }
    const rpc = u.pathname.match(/^\/rest\/v1\/rpc\/([a-z_][a-z0-9_]*)$/);
    if (rpc) {
      assert.equal(r.method, 'POST', 'RPC with named arguments is a POST');
      assert.match(r.headers['content-type'], /^application\/json/);
      const fn = fnArgs.get(rpc[1]);
      assert.ok(fn, `function ${rpc[1]} exists`);
      const args = JSON.parse(r.body);
      assert.equal(typeof args, 'object');
      assert.ok(!Array.isArray(args), 'named arguments are a JSON object');
      const names = fn.proargnames;
      for (const k of Object.keys(args)) assert.ok(names.includes(k), `${rpc[1]}: ${k} is a parameter`);
      const required = names.slice(0, fn.pronargs - fn.pronargdefaults);
      for (const k of required) assert.ok(k in args, `${rpc[1]}: required ${k} given`);
      seen.add(`rpc:${rpc[1]}`);
      continue;
    }
    const table = u.pathname.slice('/rest/v1/'.length);
    assert.equal(r.method, 'GET', `only reads go to tables (${r.url})`);
    const cols = await columns(table);
    assert.ok(cols.size > 0, `table ${table} exists`);
    for (const [k, v] of u.searchParams) {
      if (k === 'select') {
        for (const c2 of v.split(',')) assert.ok(c2 === '*' || cols.has(c2), `${table}.${c2}`);
        continue;
      }
      assert.ok(!RESERVED_PARAMS.has(k) || k === 'order' || k === 'limit', k);
      assert.ok(cols.has(k), `${table}.${k} is a column`);
      const op = v.split('.')[0];
      assert.ok(FILTER_OPS.has(op), `documented operator ${op}`);
    }
    seen.add(`table:${table}`);
  }
  for (const must of ['rpc:tollgate_fold_input', 'rpc:tollgate_apply_fold', 'rpc:tollgate_subject_state',
    'rpc:tollgate_charge', 'rpc:tollgate_subject_exists', 'table:seat_allocations']) {
    assert.ok(seen.has(must), `the run exercised ${must}: ${[...seen]}`);
  }
});

test('asymmetric access tokens: ES256 verified with keys fetched from the JWKS and cached', { skip }, async () => {
  const uid = await createUser();
  const claims = { sub: uid, role: 'authenticated', aud: 'authenticated', iss: env.issuer, exp: now() + 600 };
  const get = (token) => fetch(`${base}/v1/entitlements`, { headers: { authorization: `Bearer ${token}` } });
  for (const [i, kid] of [[0, 'k1'], [1, 'k2']]) {
    const r = await get(es256(claims, kid, es[i].privateKey));
    const text = await r.text();
    assert.equal(r.status, 200, text);
    assert.equal(JSON.parse(text).snapshot.subject, `user:${uid}`);
  }
  assert.equal(jwksHits, 1, 'the key set is fetched once and cached');
  // Signed by a key that is not published, or with a published kid but the wrong key.
  const stranger = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const wrongKey = await get(es256(claims, 'k1', stranger.privateKey));
  assert.equal(wrongKey.status, 401);
  assert.equal((await wrongKey.json()).error.code, 'bad_signature');
  const unknown = await get(es256(claims, 'k9', stranger.privateKey));
  assert.equal(unknown.status, 401);
  assert.equal((await unknown.json()).error.code, 'unknown_key');
  const expired = await get(es256({ ...claims, exp: now() - 3600 }, 'k1', es[0].privateKey));
  assert.equal(expired.status, 401);
  // The legacy HS256 secret keeps working next to the signing keys.
  assert.equal((await get(userToken(uid))).status, 200);
});

test('asymmetric access tokens: RS256 verified with the RSA key of a JWKS that also has EC keys', { skip }, async () => {
  const uid = await createUser();
  const claims = { sub: uid, role: 'authenticated', aud: 'authenticated', iss: env.issuer, exp: now() + 600 };
  const get = (token) => fetch(`${base}/v1/entitlements`, { headers: { authorization: `Bearer ${token}` } });
  const ok = await get(rs256(claims, 'r1', rsa.privateKey));
  const text = await ok.text();
  assert.equal(ok.status, 200, text);
  assert.equal(JSON.parse(text).snapshot.subject, `user:${uid}`);
  // Signed by another RSA key under the published kid.
  const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const wrongKey = await get(rs256(claims, 'r1', stranger.privateKey));
  assert.equal(wrongKey.status, 401);
  assert.equal((await wrongKey.json()).error.code, 'bad_signature');
  // Tampered claims under the right key's signature.
  const good = rs256(claims, 'r1', rsa.privateKey).split('.');
  good[1] = Buffer.from(JSON.stringify({ ...claims, sub: crypto.randomUUID() })).toString('base64url');
  const tampered = await get(good.join('.'));
  assert.equal(tampered.status, 401);
  assert.equal((await tampered.json()).error.code, 'bad_signature');
  // An RSA signature is never checked against an EC key, nor the other way round.
  const crossed = await get(rs256(claims, 'k1', rsa.privateKey));
  assert.equal(crossed.status, 401);
  assert.equal((await crossed.json()).error.code, 'unknown_key');
  const crossedEc = await get(es256(claims, 'r1', es[0].privateKey));
  assert.equal(crossedEc.status, 401);
  // A published RSA key under 2048 bits is refused, and the answer says why.
  const weak = await get(rs256(claims, 'r0', weakRsa.privateKey));
  assert.equal(weak.status, 401);
  const body = await weak.json();
  assert.equal(body.error.code, 'unusable_key');
  assert.match(body.error.message, /1024 bits is too small/);
  const expired = await get(rs256({ ...claims, exp: now() - 3600 }, 'r1', rsa.privateKey));
  assert.equal(expired.status, 401);
  assert.equal((await expired.json()).error.code, 'token_expired');
});
