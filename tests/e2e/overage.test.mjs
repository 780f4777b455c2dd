// Users set their own overage choice (`GET/PUT /v1/preferences`), and the cap holds for
// the billing period across requests, also when they race (the Video Studio catalog).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, q, createUser, worker, admin, userToken, closeDb, id } from './helpers.mjs';

after(closeDb);
const skip = env.catalog !== 'video-studio' && 'overage is priced in the video-studio catalog';

const prefs = (uid, body) => worker(body ? 'PUT' : 'GET', '/v1/preferences', {
  body, headers: { authorization: `Bearer ${userToken(uid)}` },
});
const consume = (uid, seconds = 10) => worker('POST', '/v1/usage/consume', {
  body: { model: 'standard', quality: 'watermark', seconds },
  headers: { authorization: `Bearer ${userToken(uid)}`, 'idempotency-key': id('k') },
});

/** A user with 1 second of credit (so usage is allowed; the rest is overage). */
async function user() {
  const uid = await createUser();
  const r = await admin({ user_id: uid, credits: [{ pool: 'video_seconds', amount: 1, id: id('one') }] });
  assert.equal(r.status, 201, r.text);
  return uid;
}

test('a user reads and sets the overage choice; bad choices are 400 and change nothing', { skip }, async () => {
  const uid = await user();
  const first = await prefs(uid);
  assert.equal(first.status, 200, first.text);
  assert.deepEqual([first.json.allow_overages, first.json.overage_limit, first.json.currency, first.json.spent], [false, 10000, 'usd', 0]);
  const set = await prefs(uid, { allow_overages: true, overage_limit: 2500 });
  assert.equal(set.status, 200, set.text);
  assert.deepEqual([set.json.allow_overages, set.json.overage_limit], [true, 2500]);
  for (const body of [{ allow_overages: true, overage_limit: -5 }, { allow_overages: true, overage_limit: 10, currency: 'eur' }, { overage_limit: 1 }]) {
    const r = await prefs(uid, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
  }
  const [row] = await q('select allow_overages, overage_limit_minor::int as l from usage_preferences where user_id = $1', [uid]);
  assert.deepEqual([row.allow_overages, row.l], [true, 2500]);
});

test('the cap holds across requests in the period: 14 + 15 cents under a 29-cent cap, then 402', { skip }, async () => {
  const uid = await user();
  assert.equal((await prefs(uid, { allow_overages: true, overage_limit: 29 })).status, 200);
  const a = await consume(uid);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.record.overage_minor, 14);
  const b = await consume(uid);
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.record.overage_minor, 15);
  const c = await consume(uid);
  assert.equal(c.status, 402, c.text);
  assert.equal(c.json.error.code, 'overage_limit_exceeded');
  assert.equal((await prefs(uid)).json.spent, 29);
});

test('racing overage requests never pass the cap together', { skip }, async () => {
  const uid = await user();
  // A cap of 45 cents: three requests of 10 s (15 cents each) at most, whatever the order.
  assert.equal((await prefs(uid, { allow_overages: true, overage_limit: 45 })).status, 200);
  const all = await Promise.all(Array.from({ length: 12 }, () => consume(uid)));
  const ok = all.filter((r) => r.status === 200);
  assert.ok(all.every((r) => r.status === 200 || r.status === 402 || r.status === 409), all.map((r) => `${r.status} ${r.text}`).join('\n'));
  const [{ spent }] = await q(`select coalesce(sum(overage_minor), 0)::int as spent from usage_records where user_id = $1`, [uid]);
  assert.ok(spent <= 45, `overage spent ${spent} > cap 45`);
  assert.equal(spent, (await prefs(uid)).json.spent, 'the period counter is the records\' overage');
  assert.ok(ok.length >= 3, `${ok.length} admitted`); // the first takes the 1 s credit: 14 + 15 + 15 = 44
});

test('a change of overage preferences that names no limit keeps the limit stored at the write', { skip }, async () => {
  const uid = await createUser();
  const set = (allow, limit, keep) =>
    q(`select public.tollgate_set_preferences($1::jsonb, $2, $3, $4) as r`, [JSON.stringify({ user_id: uid }), allow, limit, keep]);
  // The first write stores the limit it is given, kept or not (nothing to keep yet).
  let [{ r }] = await set(true, 300, true);
  assert.equal(r.overage_limit_minor, 300);
  // Another device lowers the cap; a change of allow_overages read before it keeps it.
  [{ r }] = await set(true, 100, false);
  assert.equal(r.overage_limit_minor, 100);
  [{ r }] = await set(false, 300, true);
  assert.deepEqual([r.allow_overages, r.overage_limit_minor], [false, 100]);
  // Through the worker: allow_overages alone answers the cap as stored.
  const headers = { authorization: `Bearer ${userToken(uid)}` };
  const put = await worker('PUT', '/v1/preferences', { body: { allow_overages: true }, headers });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.overage_limit, 100);
  const [row] = await q(`select allow_overages, overage_limit_minor from usage_preferences where user_id = $1`, [uid]);
  assert.deepEqual([row.allow_overages, Number(row.overage_limit_minor)], [true, 100]);
});
