// Alerts as signed outbound webhooks, through the running worker against PostgreSQL (the
// Razorpay AI app's catalog: 80% and 100% of `monthly_ai_credits`). A receiver here plays
// the app's endpoint and verifies every delivery with the `standardwebhooks` package (an
// implementation of the Standard Webhooks specification independent of the worker's
// signer). Crossing 80% then 100% of the limit delivers exactly two alerts; a replayed use,
// a redelivered webhook and a re-fold deliver none; a new window resolves both; an endpoint
// down for a while receives every alert once it is back, in order per subject, every
// attempt recorded. A pool's `units_left` alert compares what may be spent: a pause that
// leaves none of the month's `ai_credits` spendable opens it, the resumption resolves it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { env, q, createUser, worker, userToken, postRazorpay, now, closeDb, id, sleep } from './helpers.mjs';
import { RazorpaySubscriber, DAY } from './events.mjs';

const skip = env.catalog !== 'razorpay-ai' && 'the Razorpay AI app declares the alerts';
const admin = (method, path, body) => worker(method, path, { body, headers: { authorization: `Bearer ${env.adminSecret}` } });

/** An app's endpoint: verifies each delivery with standardwebhooks, answers 204 (or 503 while down). */
function receiver() {
  const r = { got: [], refused: 0, down: false, bad: [], secret: null };
  r.server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (r.down) { r.refused++; res.writeHead(503).end('down'); return; }
      try {
        const payload = new Webhook(r.secret).verify(body, req.headers);
        r.got.push({ id: req.headers['webhook-id'], payload });
        res.writeHead(204).end();
      } catch (e) {
        r.bad.push(String(e));
        res.writeHead(400).end('bad signature');
      }
    });
  });
  return r;
}
const listen = (r) => new Promise((ok) => r.server.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${r.server.address().port}/hooks`)));

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
const mine = (r, uid) => r.got.filter((g) => g.payload.data.subject.user_id === uid);
const runScheduled = async () => assert.equal((await worker('GET', '/__scheduled?cron=*/15+*+*+*+*')).status, 200);

let A, B;
before(async () => {
  if (skip) return;
  A = receiver();
  B = receiver();
  for (const [r, events] of [[A, ['alert.crossed', 'alert.resolved']], [B, ['*']]]) {
    const url = await listen(r);
    const res = await admin('POST', '/v1/admin/endpoints', { url, events });
    assert.equal(res.status, 201, res.text);
    assert.match(res.json.secret, /^whsec_/);
    r.secret = res.json.secret;
    r.id = res.json.id;
  }
  const listed = await admin('GET', '/v1/admin/endpoints');
  assert.equal(listed.status, 200);
  assert.ok(!listed.text.includes('whsec_'), 'the secret is answered once, never listed');
});
after(async () => {
  // The endpoints go with the receivers: later tests' alerts are not sent to closed ports.
  for (const r of [A, B]) if (r?.id) await admin('POST', `/v1/admin/endpoints/${r.id}/disable`, {});
  for (const r of [A, B]) if (r) r.server.close();
  await closeDb();
});

/** A Premium subscriber (2000 AI credits a month), from the Razorpay webhooks. */
async function subscriber() {
  const uid = await createUser();
  const T = now();
  const r = new RazorpaySubscriber({ userId: uid, plan: 'plan_premium_monthly', start: T - DAY });
  const charged = r.event('subscription.charged', { at: T - DAY + 1, status: 'active', currentStart: T - DAY, currentEnd: T + 29 * DAY, payment: r.payment({ at: T - DAY + 1 }) });
  const eventId = id('evt');
  assert.equal((await postRazorpay(charged, { eventId })).status, 200);
  return { uid, charged, eventId };
}
const track = (uid, key, quantity) => worker('POST', '/v1/track', {
  body: { feature: 'monthly_ai_credits', quantity },
  headers: { authorization: `Bearer ${userToken(uid)}`, 'idempotency-key': key },
});

test('80% then 100% of a limit: two alerts; a replay, a redelivery and a re-fold none; a new window resolves them', { skip }, async () => {
  const { uid, charged, eventId } = await subscriber();
  assert.equal((await track(uid, 'a', 1000)).status, 200);
  assert.equal((await track(uid, 'b', 600)).status, 200);
  await until('the 80% alert', () => mine(A, uid).length === 1);
  assert.equal((await track(uid, 'c', 400)).status, 200);
  await until('the 100% alert', () => mine(A, uid).length === 2);
  // Replayed use, redelivered webhook (same id, and the same change under a new id), re-fold.
  const replay = await track(uid, 'c', 400);
  assert.deepEqual([replay.status, replay.json.replayed], [200, true]);
  assert.equal((await postRazorpay(charged, { eventId })).json.status, 'duplicate');
  assert.equal((await postRazorpay(charged, { eventId: id('evt') })).status, 200);
  assert.equal((await admin('POST', '/v1/admin/grants', { user_id: uid, credits: [{ pool: 'ai_credits', amount: 5, id: id('c') }] })).status, 201);
  await sleep(1500);
  const got = mine(A, uid);
  assert.deepEqual(got.map((g) => [g.payload.type, g.payload.data.rule, g.payload.data.units]), [
    ['alert.crossed', 'limit:monthly_ai_credits:80%', 1600],
    ['alert.crossed', 'limit:monthly_ai_credits:100%', 2000],
  ]);
  assert.equal(new Set(got.map((g) => g.id)).size, 2);
  assert.deepEqual(A.bad, [], 'every delivery verified');
  const rows = await q('select rule, resolved_at from alerts where user_id = $1 order by id', [uid]);
  assert.equal(rows.length, 2);
  // The window ends (moved into the past here, as the clock would): the scheduled run resolves both, once.
  await q(`update alerts set body = jsonb_set(body, '{ends_at}', to_jsonb(to_char((now() - interval '1 minute') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
           where user_id = $1`, [uid]);
  await runScheduled();
  await until('two resolved alerts', () => mine(A, uid).length === 4);
  await runScheduled();
  await sleep(500);
  const resolved = mine(A, uid).slice(2);
  assert.equal(mine(A, uid).length, 4);
  assert.deepEqual(resolved.map((g) => [g.payload.type, g.payload.data.status]).sort(), [['alert.resolved', 'resolved'], ['alert.resolved', 'resolved']]);
  assert.ok((await q('select resolved_at from alerts where user_id = $1', [uid])).every((r) => r.resolved_at));
  // The user reads their own alerts under RLS.
  const token = userToken(uid);
  const rls = await fetch(`${env.rest}/rest/v1/alerts?select=rule,resolved_at`, { headers: { apikey: token, authorization: `Bearer ${token}` } });
  assert.equal((await rls.json()).length, 2);
});

test('an endpoint that answers with a redirect has not taken the message: the redirect is not followed', { skip }, async () => {
  const target = receiver();
  const moved = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(307, { location: `http://127.0.0.1:${target.server.address().port}/hooks` }).end());
  });
  await listen(target);
  await new Promise((ok) => moved.listen(0, '127.0.0.1', ok));
  const ep = await admin('POST', '/v1/admin/endpoints', { url: `http://127.0.0.1:${moved.address().port}/old`, events: ['alert.crossed'] });
  assert.equal(ep.status, 201, ep.text);
  target.secret = ep.json.secret;
  try {
    const { uid } = await subscriber();
    assert.equal((await track(uid, id('use'), 1600)).status, 200);
    const attempts = await until('an attempt on the moved endpoint', async () => {
      const rows = await q(`select a.status from outbox_attempts a join outbox_messages m on m.id = a.message_id
                             where m.endpoint_id = $1 and m.subject = $2`, [ep.json.id, uid]);
      return rows.length ? rows : null;
    });
    assert.equal(attempts[0].status, 307);
    const [m] = await q(`select delivered_at from outbox_messages where endpoint_id = $1 and subject = $2`, [ep.json.id, uid]);
    assert.equal(m.delivered_at, null, 'not delivered');
    assert.equal(target.got.length + target.bad.length, 0, 'the signed body went nowhere else');
  } finally {
    await admin('POST', `/v1/admin/endpoints/${ep.json.id}/disable`, {});
    moved.close();
    target.server.close();
  }
});

test('a stale check of an ended window resolves that window\'s alert, never the next window\'s', { skip }, async () => {
  const uid = await createUser();
  const [w1, w2] = ['2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z'];
  const check = (episode, known) => ({ rule: 'limit:monthly_ai_credits:80%', episode, level: { known }, alert: { kind: 'limit' } });
  const apply = (checks) => q('select public.tollgate_apply_alerts($1, null, $2, now()) as r', [uid, JSON.stringify(checks)]);
  await apply([check(`${w1}/2000`, true)]);
  // The next window crosses (the old window's alert resolves), then the scheduled run's
  // stale check of the old window arrives.
  await apply([check(`${w2}/2000`, true)]);
  await apply([check(`${w1}/2000`, false)]);
  const open = await q('select episode from alerts where user_id = $1 and resolved_at is null', [uid]);
  assert.deepEqual(open.map((a) => a.episode), [`${w2}/2000`]);
  // A check of the window itself (or a later one) resolves it.
  await apply([check(`${w2}/5000`, false)]);
  assert.deepEqual(await q('select episode from alerts where user_id = $1 and resolved_at is null', [uid]), []);
});

test('an endpoint down for a while gets every alert once back, in order per subject', { skip }, async () => {
  B.down = true;
  const v = await subscriber();
  const w = await subscriber();
  await track(v.uid, 'a', 1600);
  await track(w.uid, 'a', 1600);
  await track(v.uid, 'b', 400);
  await track(w.uid, 'b', 400);
  await until('deliveries to the other endpoint', () => mine(A, v.uid).length === 2 && mine(A, w.uid).length === 2);
  await until('attempts on the endpoint that is down', () => B.refused >= 2);
  const failed = await q(`select count(*)::int as n from outbox_attempts a join outbox_messages m on m.id = a.message_id
                          where m.endpoint_id = $1 and a.status = 503`, [B.id]);
  assert.ok(failed[0].n >= 2, 'each attempt recorded with its answer');
  // Disabled and enabled again by the operator; back up; the backoff runs out (moved here).
  assert.equal((await admin('POST', `/v1/admin/endpoints/${B.id}/disable`, {})).status, 200);
  B.down = false;
  assert.equal((await admin('POST', `/v1/admin/endpoints/${B.id}/enable`, {})).status, 200);
  await runScheduled();
  await until('everything on the endpoint once back', () => mine(B, v.uid).length >= 2 && mine(B, w.uid).length >= 2);
  await runScheduled();
  await sleep(500);
  for (const u of [v.uid, w.uid]) {
    const got = mine(B, u);
    assert.deepEqual(got.map((g) => g.payload.data.rule), ['limit:monthly_ai_credits:80%', 'limit:monthly_ai_credits:100%'], 'in order, once');
  }
  assert.deepEqual(B.bad, []);
  const pending = await q(`select count(*)::int as n from outbox_messages where endpoint_id = $1 and delivered_at is null`, [B.id]);
  assert.equal(pending[0].n, 0);
});

test('a pause that leaves nothing spendable opens the pool\'s low-balance alert; the resumption resolves it', { skip }, async () => {
  const uid = await createUser();
  const T = now();
  const [start, end] = [T - DAY, T + 29 * DAY];
  const r = new RazorpaySubscriber({ userId: uid, plan: 'plan_premium_monthly', start });
  const charged = r.event('subscription.charged', { at: start + 1, status: 'active', currentStart: start, currentEnd: end, payment: r.payment({ at: start + 1 }) });
  assert.equal((await postRazorpay(charged, { eventId: id('evt') })).status, 200);
  const rule = 'pool:ai_credits:100left';
  const alerts = () => q('select resolved_at from alerts where user_id = $1 and rule = $2 order by id', [uid, rule]);
  const available = async () => Number((await q(
    `select coalesce(sum(available), 0)::int as a from credit_balances where user_id = $1 and pool = 'ai_credits'`, [uid]))[0].a);
  assert.equal(await available(), 2000);
  assert.deepEqual(await alerts(), [], '2000 credits: not low');

  // Paused: the month's 2000 credits are kept, none spendable; the pause's fold opens the alert.
  let d = await postRazorpay(r.event('subscription.paused', { at: T - 60, status: 'paused', currentStart: start, currentEnd: end }), { eventId: id('evt') });
  assert.equal(d.json?.status, 'applied', d.text);
  assert.equal(await available(), 0, 'nothing spendable while paused');
  const held = await q(`select coalesce(sum(remaining) filter (where not closed), 0)::int as h from credit_lots where user_id = $1 and pool = 'ai_credits'`, [uid]);
  assert.equal(held[0].h, 2000, 'and nothing taken away');
  let rows = await alerts();
  assert.equal(rows.length, 1, 'the pool\'s alert opened');
  assert.equal(rows[0].resolved_at, null);

  // Resumed: spendable again; the resumption's fold resolves it.
  d = await postRazorpay(r.event('subscription.resumed', { at: T - 30, status: 'active', currentStart: start, currentEnd: end }), { eventId: id('evt') });
  assert.equal(d.json?.status, 'applied', d.text);
  assert.equal(await available(), 2000);
  rows = await alerts();
  assert.equal(rows.length, 1);
  assert.notEqual(rows[0].resolved_at, null, 'resolved once the credits are spendable again');
  await until('the crossing and the resolution delivered', () => mine(A, uid).filter((g) => g.payload.data.rule === rule).length === 2);
  assert.deepEqual(mine(A, uid).filter((g) => g.payload.data.rule === rule).map((g) => g.payload.type), ['alert.crossed', 'alert.resolved']);
});

test('an endpoint enabled again gives its messages their retries again; enabling an enabled one changes nothing', { skip }, async () => {
  // On the SQL functions themselves (the outbox's store calls), with a message that was
  // tried five days ago, before its endpoint was disabled.
  const [e] = await q(`insert into webhook_endpoints (url, events, secret, enabled, failing_since, disabled_at)
                       values ('https://hooks.example/x', '{*}', 'whsec_AAAA', false, now() - interval '6 days', now() - interval '2 days')
                       returning id`);
  const [m] = await q(`insert into outbox_messages (endpoint_id, msg_id, event_type, subject, payload, created_at, next_attempt_at, attempts)
                       values ($1, $2, 'alert.crossed', 'user:x', '{}', now() - interval '6 days', now() - interval '5 days', 3)
                       returning id`, [e.id, id('msg')]);
  await q(`insert into outbox_attempts (message_id, attempted_at, status) values ($1, now() - interval '5 days', 503)`, [m.id]);
  const at = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
  const [{ r }] = await q(`select public.tollgate_set_endpoint($1, true, $2) as r`, [e.id, at]);
  assert.equal(r.enabled, true);
  assert.equal(r.failing_since, null);
  const [row] = await q(`select enabled_at from webhook_endpoints where id = $1`, [e.id]);
  assert.equal(row.enabled_at.toISOString(), at);
  const [{ due }] = await q(`select public.tollgate_outbox_due($1::timestamptz + interval '1 second', 500) as due`, [at]);
  const mine = due.find((d) => d.id === Number(m.id));
  assert.ok(mine, 'due once enabled again');
  assert.equal(mine.first_attempt_at, null, 'the attempt before the endpoint was disabled does not count');
  // Enabled again while enabled: the message its lease holds stays leased, and the time its
  // failures began stays.
  await q(`update webhook_endpoints set failing_since = $2 where id = $1`, [e.id, at]);
  const [{ next_attempt_at: leased }] = await q(`select next_attempt_at from outbox_messages where id = $1`, [m.id]);
  const [{ r: again }] = await q(`select public.tollgate_set_endpoint($1, true, $2::timestamptz + interval '5 seconds') as r`, [e.id, at]);
  assert.equal(Date.parse(again.failing_since), Date.parse(at));
  const [{ next_attempt_at: still }] = await q(`select next_attempt_at from outbox_messages where id = $1`, [m.id]);
  assert.equal(still.toISOString(), leased.toISOString());
  await q(`delete from webhook_endpoints where id = $1`, [e.id]);
});
