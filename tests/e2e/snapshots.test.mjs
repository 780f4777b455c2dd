// Signed entitlement snapshots (GET /v1/entitlements), access tokens, the catalog route
// and the admin routes. Snapshots are verified here with Node's own Ed25519 (not the
// worker's code): the documented format is `base64url(payload) "." base64url(signature)`,
// the signature over the exact payload bytes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { env, q, createUser, worker, userToken, anonToken, signJwt, postStripe, now, closeDb, uuid, id } from './helpers.mjs';

after(closeDb);

const CAT = {
  'vcm-suite': { product: 'video', tier: 'pro', pool: null },
  'video-studio': { product: 'video', tier: 'agency', pool: 'video_seconds' },
  'org-seats': { product: 'org', tier: 'BUSINESS', pool: null },
  'razorpay-ai': { product: 'premium', tier: 'PREMIUM', pool: 'ai_credits' },
}[env.catalog];

function publicKeyOf(hexSecret) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(hexSecret, 'hex')]);
  return crypto.createPublicKey(crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
}

function verifySnapshot(token, key) {
  const [p, s] = token.split('.');
  const payload = Buffer.from(p, 'base64url');
  const ok = crypto.verify(null, payload, key, Buffer.from(s, 'base64url'));
  return { ok, snapshot: ok ? JSON.parse(payload.toString('utf8')) : null };
}

const admin = (path, body, secret = env.adminSecret) =>
  worker('POST', path, { body, headers: { authorization: `Bearer ${secret}` } });

test('GET /healthz and GET /v1/catalog', async () => {
  const h = await worker('GET', '/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  assert.equal(h.json.catalog.id, env.catalog);
  const c = await worker('GET', '/v1/catalog');
  assert.equal(c.status, 200);
  assert.equal(c.json.catalog.id, env.catalog);
  assert.ok(c.json.offers.length > 0 && c.json.products.length > 0);
  assert.ok(c.json.offers.every((o) => Number.isInteger(o.price.amount)), 'prices in integer minor units');
  const nope = await worker('GET', '/v1/nothing-here');
  assert.equal(nope.status, 404);
  assert.equal(nope.json.error.code, 'not_found');
  const wrongVerb = await worker('DELETE', '/v1/catalog');
  assert.equal(wrongVerb.status, 405);
  assert.equal(wrongVerb.headers.get('allow'), 'GET, HEAD, OPTIONS');
  // Every route answers another method with 405, the admin routes too.
  for (const path of ['/v1/admin/grants', '/v1/admin/seats', '/webhooks/stripe', '/v1/usage/consume']) {
    const r = await worker('GET', path);
    assert.equal(r.status, 405, `${path}: ${r.text}`);
    assert.equal(r.json.error.code, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'POST, OPTIONS');
  }
});

test('request bodies over 1 MiB are refused with 413 before anything verifies them', async () => {
  // A correctly signed 2 MB Stripe event: refused, not verified nor applied.
  const event = { id: id('evt'), object: 'event', type: 'checkout.session.completed', created: now(),
    data: { object: { id: id('cs'), object: 'checkout.session' } }, padding: 'x'.repeat(2 * 1024 * 1024) };
  const r = await postStripe(JSON.stringify(event));
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error.code, 'body_too_large');
  const quote = await worker('POST', '/v1/usage/quote', { raw: ' '.repeat(1024 * 1024 + 1) });
  assert.equal(quote.status, 413, quote.text);
  assert.equal(quote.json.error.code, 'body_too_large');
});

test('missing, expired, wrongly signed and non-user access tokens are 401', async () => {
  const uid = await createUser();
  const cases = [
    [undefined, 'missing_token'],
    ['Basic abc', 'malformed_token'],
    [`Bearer ${userToken(uid, { exp: now() - 3600 })}`, 'token_expired'],
    [`Bearer ${userToken(uid, { secret: 'another-secret-another-secret-another-secret' })}`, 'bad_signature'],
    [`Bearer ${userToken(uid, { iss: 'https://another-project.supabase.co/auth/v1' })}`, 'bad_issuer'],
    [`Bearer ${userToken(uid, { iss: null })}`, 'bad_issuer'],
    [`Bearer ${anonToken()}`, 'not_a_user_token'],
    [`Bearer ${signJwt({ role: 'service_role', exp: now() + 60 })}`, 'not_a_user_token'],
    ['Bearer not.a.jwt', 'malformed_token'],
  ];
  for (const path of ['/v1/entitlements']) {
    for (const [auth, code] of cases) {
      const r = await worker('GET', path, { headers: auth ? { authorization: auth } : {} });
      assert.equal(r.status, 401, `${auth}: ${r.text}`);
      assert.equal(r.json.error.code, code, `${auth}`);
    }
  }
  for (const path of ['/v1/usage/quote', '/v1/usage/consume']) {
    const r = await worker('POST', path, { body: { model: 'standard', quality: 'standard', seconds: 10 } });
    assert.equal(r.status, 401, r.text);
  }
});

test('a signed snapshot of the caller: grants and balances, verifiable with the public key alone', { skip: !CAT }, async () => {
  const uid = await createUser();
  const other = await createUser();
  const until = new Date((now() + 30 * 86400) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const g = await admin('/v1/admin/grants', {
    user_id: uid,
    grants: [{ product: CAT.product, tier: CAT.tier, source: 'promotion', valid_to: until, id: 'launch-week' }],
    credits: CAT.pool ? [{ pool: CAT.pool, amount: 300, id: id('comp') }] : [],
  });
  assert.equal(g.status, 201, g.text);
  await admin('/v1/admin/grants', { user_id: other, grants: [{ product: CAT.product, tier: CAT.tier, source: 'manual_grant' }] });

  const r = await worker('GET', '/v1/entitlements', { headers: { authorization: `Bearer ${userToken(uid)}` } });
  assert.equal(r.status, 200, r.text);
  const key = publicKeyOf(env.snapshotSecret);
  const { ok, snapshot } = verifySnapshot(r.json.token, key);
  assert.ok(ok, 'the signature verifies with the configured key');
  assert.equal(snapshot.v, 1);
  assert.equal(snapshot.kid, env.snapshotKid);
  assert.equal(snapshot.subject, `user:${uid}`);
  assert.equal(snapshot.catalog_id, env.catalog);
  const ttl = (Date.parse(snapshot.expires_at) - Date.parse(snapshot.issued_at)) / 1000;
  assert.equal(ttl, 3600);
  assert.equal(snapshot.grants.length, 1, 'only the caller\'s grants');
  assert.equal(snapshot.grants[0].product, CAT.product);
  assert.equal(snapshot.grants[0].source, 'promotion');
  assert.equal(snapshot.grants[0].valid_to, until);
  if (CAT.pool) assert.equal(snapshot.balances[CAT.pool], 300);
  // The response's public key is the configured one.
  const jwk = key.export({ format: 'jwk' });
  assert.equal(r.json.public_key, jwk.x);

  // Tampering: a higher tier, a longer validity, someone else's subject.
  const [p, s] = r.json.token.split('.');
  const payload = Buffer.from(p, 'base64url').toString('utf8');
  for (const forged of [
    payload.replace(`"valid_to":"${until}"`, '"valid_to":"2099-01-01T00:00:00Z"'),
    payload.replace(`user:${uid}`, `user:${other}`),
    payload.replace(`"catalog_id":"${env.catalog}"`, '"catalog_id":"another"'),
  ]) {
    assert.notEqual(forged, payload);
    const t = `${Buffer.from(forged).toString('base64url')}.${s}`;
    assert.equal(verifySnapshot(t, key).ok, false, 'a tampered snapshot fails verification');
  }
  // A different key does not verify it either.
  const { publicKey } = crypto.generateKeyPairSync('ed25519');
  assert.equal(verifySnapshot(r.json.token, publicKey).ok, false);
});

test('admin grants: secret required, catalog-checked, idempotent, credits once (as facts)', { skip: !CAT }, async () => {
  const uid = await createUser();
  const body = { user_id: uid, grants: [{ product: CAT.product, tier: CAT.tier, source: 'manual_grant', id: 'support-1' }] };
  assert.equal((await worker('POST', '/v1/admin/grants', { body })).status, 401);
  assert.equal((await admin('/v1/admin/grants', body, 'wrong-secret')).status, 401);
  assert.equal((await admin('/v1/admin/grants', body)).status, 201);
  assert.equal((await admin('/v1/admin/grants', body)).status, 201, 'sending it again updates the same row');
  const rows = await q('select source, tier, status, valid_to from cloud_entitlements where user_id = $1', [uid]);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].source, 'manual_grant');
  const bad = await admin('/v1/admin/grants', { user_id: uid, grants: [{ product: 'nope', tier: 'pro' }] });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /unknown product/);
  const badSource = await admin('/v1/admin/grants', { user_id: uid, grants: [{ product: CAT.product, tier: CAT.tier, source: 'stripe' }] });
  assert.equal(badSource.status, 400);
  const backwards = await admin('/v1/admin/grants', {
    user_id: uid, grants: [{ product: CAT.product, tier: CAT.tier, valid_from: '2026-02-01T00:00:00Z', valid_to: '2026-01-01T00:00:00Z' }],
  });
  assert.equal(backwards.status, 400);
  const nobody = await admin('/v1/admin/grants', { user_id: uuid(), grants: [{ product: CAT.product, tier: CAT.tier }] });
  assert.equal(nobody.status, 404, nobody.text);
  if (CAT.pool) {
    const credit = { user_id: uid, credits: [{ pool: CAT.pool, amount: 120, id: 'comp-7' }] };
    assert.equal((await admin('/v1/admin/grants', credit)).status, 201);
    const again = await admin('/v1/admin/grants', credit);
    assert.equal(again.status, 201, `the same credit again changes nothing: ${again.text}`);
    const changed = await admin('/v1/admin/grants', { user_id: uid, credits: [{ pool: CAT.pool, amount: 999, id: 'comp-7' }] });
    assert.equal(changed.status, 409, changed.text);
    assert.equal(changed.json.error.code, 'already_granted');
    const lots = await q('select remaining from credit_lots where user_id = $1 and kind = $2', [uid, 'adjustment']);
    assert.deepEqual(lots.map((l) => Number(l.remaining)), [120], 'one credit of 120, given once');
    const ledger = await q(`select delta from credit_ledger where user_id = $1 and kind = 'adjustment'`, [uid]);
    assert.deepEqual(ledger.map((l) => Number(l.delta)), [120]);
  }
});
