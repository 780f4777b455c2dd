// Server-side usage charging (POST /v1/usage/quote and /v1/usage/consume) with the
// Video Studio app's video seconds: 402 when short (with available / required), 403
// without a plan or credits, the same Idempotency-Key never charged twice, and 50
// concurrent consumes against one balance: never negative, the sum exact.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, q, createUser, worker, userToken, postStripe, now, closeDb, id, sleep } from './helpers.mjs';
import { stripeOneTime } from './events.mjs';

after(closeDb);
const skip = env.catalog !== 'video-studio' && 'usage pricing lives in the video-studio catalog';

const consume = (uid, body, key = id('idem')) =>
  worker('POST', '/v1/usage/consume', {
    body, headers: { authorization: `Bearer ${userToken(uid)}`, ...(key ? { 'idempotency-key': key } : {}) },
  });
const balance = async (uid) =>
  Number((await q(`select coalesce(sum(available), 0) as a from credit_balances where user_id = $1 and pool = 'video_seconds'`, [uid]))[0].a);

async function buyTokens(uid, offer = 'VIDEO_TOKENS_30_MIN') {
  const r = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer, at: now() - 30 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'applied');
}

test('quote prices a request with the catalog rates (integer cents, rounded up once)', { skip }, async () => {
  const uid = await createUser();
  await buyTokens(uid);
  const r = await worker('POST', '/v1/usage/quote', {
    body: { model: 'standard', quality: 'standard', seconds: 30 }, headers: { authorization: `Bearer ${userToken(uid)}` },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.quote.cost.amount, 54); // 30 x 0.015 x 1.2 = 0.54
  assert.equal(r.json.charge.outcome, 'charge');
  assert.equal(await balance(uid), 1800, 'a quote charges nothing');
  const bad = await worker('POST', '/v1/usage/quote', {
    body: { model: 'ultra', quality: 'watermark', seconds: 30 }, headers: { authorization: `Bearer ${userToken(uid)}` },
  });
  assert.equal(bad.status, 400);
});

test('consume: charged once per Idempotency-Key; 409 when the key is reused for another request', { skip }, async () => {
  const uid = await createUser();
  await buyTokens(uid);
  const key = id('idem');
  const body = { model: 'pro', quality: 'hd', seconds: 60 };
  const first = await consume(uid, body, key);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.status, 'charged');
  assert.equal(first.json.balances.video_seconds, 1740);
  const again = await consume(uid, body, key);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.status, 'replayed');
  assert.equal(again.json.usage_id, first.json.usage_id);
  assert.equal(await balance(uid), 1740);
  const reused = await consume(uid, { ...body, seconds: 61 }, key);
  assert.equal(reused.status, 409, reused.text);
  const noKey = await consume(uid, body, null);
  assert.equal(noKey.status, 400);
  assert.equal(noKey.json.error.code, 'missing_idempotency_key');
  const usage = await q('select units, cost_minor from usage_records where user_id = $1', [uid]);
  assert.deepEqual(usage.map((u) => [Number(u.units), Number(u.cost_minor)]), [[60, 360]]); // 60 x 0.04 x 1.5 = 3.60
  const ledger = await q(`select sum(delta)::int as s from credit_statement where user_id = $1`, [uid]);
  assert.equal(ledger[0].s, 1740, 'ledger sum equals the balance');
});

test('402 with available and required when short; 403 without a plan or credits', { skip }, async () => {
  const uid = await createUser();
  await buyTokens(uid);
  const short = await consume(uid, { model: 'standard', quality: 'standard', seconds: 5000 });
  assert.equal(short.status, 402, short.text);
  assert.equal(short.json.error.code, 'insufficient_balance');
  assert.equal(short.json.error.available, 1800);
  assert.equal(short.json.error.required, 5000);
  assert.equal(await balance(uid), 1800, 'a denial charges nothing');
  const nobody = await createUser();
  const r = await consume(nobody, { model: 'standard', quality: 'standard', seconds: 10 });
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.error.code, 'not_entitled');
  assert.equal(typeof r.json.error.upgrade, 'string');
});

test('a charge planned from the state kept after the last one sees every change in the store at once', { skip }, async () => {
  // The worker plans a charge from the subject's state after its previous charge (one
  // store call); the store checks that state's stamp and sends the fresh state back when
  // anything but the remaining units changed. Here: overages allowed, then turned off.
  const uid = await createUser();
  await buyTokens(uid);
  await q('insert into usage_preferences (user_id, allow_overages, overage_limit_minor) values ($1, true, 10000)', [uid]);
  const first = await consume(uid, { model: 'standard', quality: 'watermark', seconds: 1790 });
  assert.equal(first.status, 200, first.text);
  assert.equal(await balance(uid), 10);
  const over = await consume(uid, { model: 'standard', quality: 'watermark', seconds: 20 });
  assert.equal(over.status, 200, over.text);
  assert.equal(over.json.charge.overage_units, 10, 'overages allowed: 10 s from credits, 10 s as overage');
  await q('update usage_preferences set allow_overages = false, updated_at = now() where user_id = $1', [uid]);
  const refused = await consume(uid, { model: 'standard', quality: 'watermark', seconds: 20 });
  assert.equal(refused.status, 402, refused.text);
  assert.equal(refused.json.error.available, 0);
});

test('a purchase after charges leaves them charged: the fold of the subject\'s facts replays the usage', { skip }, async () => {
  const uid = await createUser();
  await buyTokens(uid);
  for (const seconds of [600, 300]) {
    const r = await consume(uid, { model: 'standard', quality: 'watermark', seconds });
    assert.equal(r.status, 200, r.text);
  }
  assert.equal(await balance(uid), 900);
  const records = await q(`select count(*)::int as n, count(*) filter (where jsonb_array_length(charges) > 0)::int as taken
                             from usage_records where user_id = $1`, [uid]);
  assert.deepEqual(records[0], { n: 2, taken: 2 }, 'each charge is one usage record holding what it took');
  const facts = await q(`select count(*)::int as n from billing_facts where fact_type = 'usage' and $1 = any(refs)`, [`user:${uid}`]);
  assert.equal(facts[0].n, 0, 'a charge writes no second copy of itself as a billing fact');
  // A second bundle, bought after the charges (its webhook folds all of the subject's facts).
  await sleep(1100);
  const r = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() }));
  assert.equal(r.json?.status, 'applied', r.text);
  assert.equal(await balance(uid), 2700, 'the first bundle keeps its 900 s charged');
  const next = await consume(uid, { model: 'standard', quality: 'watermark', seconds: 20 });
  assert.equal(next.status, 200, next.text);
  assert.equal(await balance(uid), 2680);
});

test('50 concurrent consumes against one balance: never negative, the sum exact', { skip }, async () => {
  const uid = await createUser();
  await buyTokens(uid); // 1800 s
  const body = { model: 'standard', quality: 'watermark', seconds: 50 };
  const results = await Promise.all(Array.from({ length: 50 }, () => consume(uid, body)));
  const ok = results.filter((r) => r.status === 200);
  const denied = results.filter((r) => r.status === 402);
  const other = results.filter((r) => r.status !== 200 && r.status !== 402);
  assert.deepEqual(other.map((r) => `${r.status} ${r.text}`), []);
  assert.equal(ok.length, 36, '36 x 50 s = 1800 s'); // exactly what the balance holds
  assert.equal(denied.length, 14);
  assert.equal(await balance(uid), 0);
  const lots = await q('select remaining from credit_lots where user_id = $1', [uid]);
  assert.ok(lots.every((l) => Number(l.remaining) >= 0));
  const used = await q(`select coalesce(sum(units), 0)::int as u, count(*)::int as n from usage_records where user_id = $1`, [uid]);
  assert.deepEqual(used[0], { u: 1800, n: 36 });
  const ledger = await q(`select sum(delta)::int as s from credit_statement where user_id = $1`, [uid]);
  assert.equal(ledger[0].s, 0, 'ledger sum equals the balance');
});
