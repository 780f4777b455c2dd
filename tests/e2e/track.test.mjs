// Limits enforced on the server, under wrangler dev against PostgreSQL: `POST /v1/check`
// and `POST /v1/track` with the VCM Suite's catalog (Starter runs 3 workflows a day), the
// Razorpay AI app's and the Video Studio app's credit pools, the Org Seats app's limits.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, q, createUser, worker, admin, userToken, closeDb, id, now, postStripe, postRazorpay } from './helpers.mjs';
import { StripeSubscriber, RazorpaySubscriber, stripeOneTime, DAY } from './events.mjs';

after(closeDb);
const skip = env.catalog !== 'vcm-suite' && 'workflow runs a day are the VCM Suite catalog\'s limit';
const RUNS = { feature: 'workflow_runs_per_day' };

async function subscriber(tier) {
  const uid = await createUser();
  const r = await admin({ user_id: uid, grants: [{ product: 'suite', tier, source: 'promotion', id: id('g'),
    valid_from: new Date(Date.now() - 86_400_000).toISOString(), valid_to: new Date(Date.now() + 30 * 86_400_000).toISOString() }] });
  assert.equal(r.status, 201, r.text);
  return uid;
}

const track = (uid, key, body = RUNS) =>
  worker('POST', '/v1/track', { body, headers: { authorization: `Bearer ${userToken(uid)}`, 'idempotency-key': key } });
const check = (uid, body = RUNS) => worker('POST', '/v1/check', { body, headers: { authorization: `Bearer ${userToken(uid)}` } });

test('Starter runs 3 workflows a day; the 4th is 403 limit_reached with the cheapest upgrade', { skip }, async () => {
  const uid = await subscriber('starter');
  const before = await check(uid);
  assert.equal(before.status, 200, before.text);
  assert.deepEqual([before.json.allowed, before.json.remaining, before.json.used], [true, 2, 0]);
  for (const left of [2, 1, 0]) {
    const r = await track(uid, id('run'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.remaining, left);
  }
  const fourth = await track(uid, id('run'));
  assert.equal(fourth.status, 403, fourth.text);
  assert.equal(fourth.json.error.code, 'limit_reached');
  assert.equal(fourth.json.error.upgrade.offer, 'SUITE_BASIC_MONTHLY');
  const after = await check(uid);
  assert.deepEqual([after.json.allowed, after.json.used, after.json.reason], [false, 3, 'limit_reached']);
  const [{ used }] = await q(`select used::int from usage_counters where user_id = $1 and limit_id = 'workflow_runs_per_day'`, [uid]);
  assert.equal(used, 3);
  const [{ n }] = await q(`select count(*)::int as n from usage_records where user_id = $1 and feature = 'workflow_runs_per_day'`, [uid]);
  assert.equal(n, 3, 'one usage record per run, none for the refused one');
});

test('a run is final: a windowed limit refills by its window, not by release', { skip }, async () => {
  const uid = await subscriber('starter');
  const run = await track(uid, id('run'));
  assert.equal(run.status, 200, run.text);
  const r = await worker('POST', `/v1/usage/${run.json.usage_id}/release`, { headers: { authorization: `Bearer ${userToken(uid)}` } });
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.error.code, 'not_releasable');
  assert.equal((await check(uid)).json.used, 1);
});

test('50 concurrent runs on a fresh day admit exactly 3', { skip }, async () => {
  const uid = await subscriber('starter');
  const all = await Promise.all(Array.from({ length: 50 }, () => track(uid, id('run'))));
  const statuses = all.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 3, statuses.join(','));
  assert.equal(statuses.filter((s) => s === 403).length, 47, all.filter((r) => r.status !== 200 && r.status !== 403).map((r) => r.text).join('\n'));
  assert.ok(all.filter((r) => r.status === 403).every((r) => r.json.error.code === 'limit_reached'));
  const [{ used }] = await q(`select used::int from usage_counters where user_id = $1`, [uid]);
  assert.equal(used, 3);
});

test('a retried key replays its first answer; the same key with another body is 409', { skip }, async () => {
  const uid = await subscriber('starter');
  const key = id('run');
  const [a, b] = await Promise.all([track(uid, key), track(uid, key)]);
  assert.deepEqual([a.status, b.status], [200, 200], `${a.text}\n${b.text}`);
  assert.equal(a.json.usage_id, b.json.usage_id);
  assert.deepEqual([a.json.replayed, b.json.replayed].sort(), [false, true]);
  const reused = await track(uid, key, { ...RUNS, quantity: 2 });
  assert.equal(reused.status, 409, reused.text);
  assert.equal(reused.json.error.code, 'key_reused');
  assert.equal((await check(uid)).json.used, 1);
});

test('Basic is unlimited but counted; a capability is checked; unknown features are 404', { skip }, async () => {
  const uid = await subscriber('basic');
  for (let i = 0; i < 5; i++) {
    const r = await track(uid, id('run'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.remaining, 'unlimited');
  }
  assert.equal((await check(uid)).json.used, 5);
  const ai = await track(uid, id('ai'), { feature: 'use_ai' });
  assert.equal(ai.status, 403, ai.text);
  assert.equal(ai.json.error.code, 'not_entitled');
  assert.ok(ai.json.error.upgrade?.offer, 'the cheapest plan with AI tools');
  const unknown = await check(uid, { feature: 'teleport' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'unknown_feature');
});

test('the counters are readable by their owner only (row level security)', { skip }, async () => {
  const a = await subscriber('starter');
  const b = await createUser();
  assert.equal((await track(a, id('run'))).status, 200);
  const rest = (uid) => fetch(`${env.rest}/rest/v1/usage_counters?select=*`, {
    headers: { apikey: userToken(uid), authorization: `Bearer ${userToken(uid)}` },
  }).then((r) => r.json());
  assert.equal((await rest(a)).length, 1);
  assert.deepEqual(await rest(b), []);
});

// ---- the Razorpay AI app: credit pools through the same routes
const razorpay = env.catalog !== 'razorpay-ai' && 'free drafts and AI credits are the Razorpay AI app catalog\'s pools';

test('a user who never paid spends 2 free drafts, from the first request; the third is 402', { skip: razorpay }, async () => {
  const uid = await createUser();
  const first = await check(uid, { feature: 'free_drafts' });
  assert.equal(first.status, 200, first.text);
  assert.deepEqual([first.json.allowed, first.json.remaining], [true, 1]);
  for (const left of [1, 0]) {
    const r = await track(uid, id('draft'), { feature: 'free_drafts' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.remaining, left);
  }
  const third = await track(uid, id('draft'), { feature: 'free_drafts' });
  assert.equal(third.status, 402, third.text);
  assert.equal(third.json.error.code, 'insufficient_balance');
  const [{ n }] = await q(`select count(*)::int as n from billing_facts where fact_type = 'joined' and $1 = any(refs)`, [`user:${uid}`]);
  assert.equal(n, 1, 'one joined fact gave the free drafts, once');
});

test('concurrent drafts of a new user: exactly the 2 free ones are taken', { skip: razorpay }, async () => {
  const uid = await createUser();
  const all = await Promise.all(Array.from({ length: 12 }, () => track(uid, id('draft'), { feature: 'free_drafts' })));
  const ok = all.filter((r) => r.status === 200);
  assert.equal(ok.length, 2, all.map((r) => `${r.status} ${r.text}`).join('\n'));
  assert.ok(all.every((r) => r.status === 200 || r.status === 402 || r.status === 409), all.map((r) => r.status).join(','));
  const [{ remaining, used }] = await q(`select remaining::int, used::int from credit_lots where user_id = $1 and pool = 'free_drafts'`, [uid]);
  assert.deepEqual([remaining, used], [0, 2]);
});

test('AI credits are spent to zero, then 402 with the top-up offer', { skip: razorpay }, async () => {
  const uid = await createUser();
  const none = await track(uid, id('ai'), { feature: 'ai_credits' });
  assert.equal(none.status, 403, none.text);
  assert.equal(none.json.error.upgrade.offer, 'AI_CREDITS_TOPUP_500');
  const g = await admin({ user_id: uid, credits: [{ pool: 'ai_credits', amount: 5, id: id('welcome') }] });
  assert.equal(g.status, 201, g.text);
  const a = await track(uid, id('ai'), { feature: 'ai_credits', quantity: 5 });
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.remaining, 0);
  const b = await track(uid, id('ai'), { feature: 'ai_credits' });
  assert.equal(b.status, 402, b.text);
  assert.equal(b.json.error.upgrade.offer, 'AI_CREDITS_TOPUP_500');
});

test('a retry after the limit is reached replays its use; usage by day counts each use once', { skip }, async () => {
  const uid = await subscriber('starter');
  const keys = [id('run'), id('run'), id('run')];
  for (const k of keys) assert.equal((await track(uid, k)).status, 200);
  assert.equal((await track(uid, id('run'))).status, 403);
  const retry = await track(uid, keys[0]);
  assert.equal(retry.status, 200, retry.text);
  assert.equal(retry.json.replayed, true);
  const r = await worker('GET', `/v1/usage?feature=workflow_runs_per_day`, { headers: { authorization: `Bearer ${userToken(uid)}` } });
  assert.equal(r.status, 200, r.text);
  const today = new Date().toISOString().slice(0, 10);
  assert.deepEqual(r.json.days, [{ day: today, units: 3, uses: 3 }]);
  const bad = await worker('GET', `/v1/usage?feature=use_ai`, { headers: { authorization: `Bearer ${userToken(uid)}` } });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.code, 'not_counted');
});

test('holds: taken at once, released back exactly, captured for good, and expired ones released by the scheduled run', { skip: razorpay }, async () => {
  const uid = await createUser();
  const g = await admin({ user_id: uid, credits: [{ pool: 'ai_credits', amount: 10, id: id('welcome') }] });
  assert.equal(g.status, 201, g.text);
  const auth = { authorization: `Bearer ${userToken(uid)}` };
  const hold = (n) => track(uid, id('hold'), { feature: 'ai_credits', quantity: n, hold: true });
  const settle = (usage, what) => worker('POST', `/v1/usage/${usage}/${what}`, { body: {}, headers: auth });
  const balance = async () => Number((await q(`select coalesce(sum(available), 0)::int as a from credit_balances where user_id = $1 and pool = 'ai_credits'`, [uid]))[0].a);
  const conserved = async () => {
    const bad = await q(`select key from credit_lots where user_id = $1 and granted <> remaining + used + revoked + expired`, [uid]);
    assert.deepEqual(bad, [], 'every lot: granted = remaining + used + revoked + expired');
  };

  const a = await hold(4);
  assert.equal(a.status, 200, a.text);
  assert.equal(await balance(), 6, 'held credits count against the balance at once');
  const released = await settle(a.json.usage_id, 'release');
  assert.equal(released.status, 200, released.text);
  assert.equal(await balance(), 10, 'a release gives back exactly what the hold took');
  assert.equal((await settle(a.json.usage_id, 'release')).json.replayed, true);
  assert.equal((await settle(a.json.usage_id, 'capture')).status, 409);
  const gave = await q(`select sum(delta)::int as s from credit_statement where user_id = $1 and kind = 'release'`, [uid]);
  assert.equal(gave[0].s, 4, 'the statement shows what the release gave back');
  await conserved();

  const b = await hold(3);
  assert.equal((await settle(b.json.usage_id, 'capture')).status, 200);
  const again = await settle(b.json.usage_id, 'release');
  assert.equal(again.status, 409, again.text);
  assert.equal(again.json.error.code, 'not_held');
  assert.equal(await balance(), 7);

  const c = await hold(5);
  assert.equal(await balance(), 2);
  // Its hour is over (moved back, as an hour passing would): too late to capture, before
  // and after the scheduled run alike; the run gives it back.
  await q(`update usage_records set hold_until = now() - interval '1 minute' where id = $1`, [c.json.usage_id]);
  const late = await settle(c.json.usage_id, 'capture');
  assert.deepEqual([late.status, late.json.error?.code], [409, 'hold_expired'], late.text);
  const run = await worker('GET', '/__scheduled?cron=*/15+*+*+*+*');
  assert.equal(run.status, 200, run.text);
  assert.equal(await balance(), 7, 'the expired hold gave back what it took');
  const [{ status }] = await q(`select status from usage_records where id = $1`, [c.json.usage_id]);
  assert.equal(status, 'released');
  await conserved();
  const other = await createUser();
  const theirs = await worker('POST', `/v1/usage/${b.json.usage_id}/release`, { body: {}, headers: { authorization: `Bearer ${userToken(other)}` } });
  assert.equal(theirs.status, 404, 'someone else\'s usage is not found');
});

test('the scheduled run reads expired holds in keyset pages: each page starts after the last one', { skip: razorpay }, async () => {
  const uid = await createUser();
  assert.equal((await admin({ user_id: uid, credits: [{ pool: 'ai_credits', amount: 10, id: id('welcome') }] })).status, 201);
  const holds = [];
  for (let i = 0; i < 3; i++) {
    const h = await track(uid, id('hold'), { feature: 'ai_credits', quantity: 1, hold: true });
    assert.equal(h.status, 200, h.text);
    holds.push(h.json.usage_id);
    // Ended long ago, a second apart: no other test's hold ends that early.
    await q(`update usage_records set hold_until = timestamptz '2000-01-01T00:00:00Z' + $2 * interval '1 second' where id = $1`, [h.json.usage_id, i + 1]);
  }
  const page = async (after) => {
    const [{ p }] = await q(`select public.tollgate_expired_holds(timestamptz '2000-01-01T00:00:05Z', $1, $2, 2) as p`, [after?.hold_until ?? null, after?.usage_id ?? null]);
    return p;
  };
  const first = await page(null);
  assert.deepEqual(first.map((h) => h.usage_id), holds.slice(0, 2));
  assert.deepEqual(first[0].subject, { user_id: uid });
  const second = await page(first[1]);
  assert.deepEqual(second.map((h) => h.usage_id), holds.slice(2));
  assert.deepEqual(await page(second[0]), []);
  const run = await worker('GET', '/__scheduled?cron=*/15+*+*+*+*');
  assert.equal(run.status, 200, run.text);
  const left = await q(`select count(*)::int as n from usage_records where id = any($1::uuid[]) and status = 'held'`, [holds]);
  assert.equal(left[0].n, 0, 'the run released all three');
});

test('a hold retried under its Idempotency-Key answers as the hold did: its hold_until and record', { skip: razorpay }, async () => {
  const uid = await createUser();
  const g = await admin({ user_id: uid, credits: [{ pool: 'ai_credits', amount: 10, id: id('welcome') }] });
  assert.equal(g.status, 201, g.text);
  const key = id('hold');
  const body = { feature: 'ai_credits', quantity: 4, hold: true };
  const first = await track(uid, key, body);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.replayed, false);
  assert.ok(first.json.hold_until && Date.parse(first.json.hold_until) > Date.now(), first.text);
  const again = await track(uid, key, body);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.replayed, true);
  assert.equal(again.json.usage_id, first.json.usage_id);
  assert.equal(again.json.hold_until, first.json.hold_until, 'the replay names the same hold end');
  assert.deepEqual(again.json.record, first.json.record, 'the stored record is the record the hold answered');
  assert.equal(again.json.remaining, 6, 'nothing taken twice');
  // Once captured, a retry still answers the hold's end, and the record's status as it is now.
  const auth = { authorization: `Bearer ${userToken(uid)}` };
  assert.equal((await worker('POST', `/v1/usage/${first.json.usage_id}/capture`, { body: {}, headers: auth })).status, 200);
  const later = await track(uid, key, body);
  assert.equal(later.status, 200, later.text);
  assert.deepEqual([later.json.replayed, later.json.hold_until, later.json.record.status], [true, first.json.hold_until, 'captured']);
});

// ---- The Video Studio app: when a credit pool refills
const studio = env.catalog !== 'video-studio' && 'video seconds by plan and by bundle are the Video Studio catalog\'s pool';

test('a monthly limit anchored to the subscription turns on its billing day: after a trial, from the first charge', { skip: razorpay }, async () => {
  const uid = await createUser();
  const T = now();
  // Subscribed a week before its first charge (a trial); charged 10 days ago, on a day
  // every month has, so the next billing day is the same day next month.
  let charged = T - 10 * DAY;
  while (new Date(charged * 1000).getUTCDate() > 28) charged -= DAY;
  const c = new Date(charged * 1000);
  const next = Date.UTC(c.getUTCFullYear(), c.getUTCMonth() + 1, c.getUTCDate(), c.getUTCHours(), c.getUTCMinutes(), c.getUTCSeconds()) / 1000;
  const r = new RazorpaySubscriber({ userId: uid, plan: 'plan_premium_monthly', start: charged - 7 * DAY });
  const res = await postRazorpay(r.event('subscription.charged', { at: charged + 1, status: 'active', currentStart: charged, currentEnd: next, payment: r.payment({ at: charged + 1 }) }));
  assert.equal(res.status, 200, res.text);
  const [row] = await q('select valid_from, period_start from cloud_entitlements where user_id = $1', [uid]);
  assert.deepEqual([row.valid_from.getTime() / 1000, row.period_start.getTime() / 1000], [charged - 7 * DAY, charged]);
  const answer = await check(uid, { feature: 'monthly_ai_credits' });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(Date.parse(answer.json.resets_at) / 1000, next, 'the window ends with the paid period, not a month after the trial began');
  const used = await track(uid, id('k'), { feature: 'monthly_ai_credits', quantity: 5 });
  assert.equal(used.status, 200, used.text);
  const [counter] = await q('select window_start from usage_counters where user_id = $1 and limit_id = $2', [uid, 'monthly_ai_credits']);
  assert.equal(counter.window_start.getTime() / 1000, charged, 'counted from the billing day');
});

test('a pool check answers when the plan refills it: its next period; bought seconds and a plan canceled at its period end refill nothing', { skip: studio }, async () => {
  const iso = (t) => new Date(t * 1000).toISOString().replace('.000Z', 'Z');
  const send = async (e) => {
    const r = await postStripe(e);
    assert.equal(r.status, 200, `${e.type}: ${r.text}`);
  };
  const seconds = { feature: 'video_seconds', quantity: 1 };
  const snapshot = async (uid) => {
    const r = await worker('GET', '/v1/entitlements', { headers: { authorization: `Bearer ${userToken(uid)}` } });
    assert.equal(r.status, 200, r.text);
    return r.json.snapshot;
  };

  // Seconds bought once: nothing refills them.
  const buyer = await createUser();
  await send(stripeOneTime({ subject: { user_id: buyer }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 10 }));
  const bought = await check(buyer, seconds);
  assert.equal(bought.status, 200, bought.text);
  assert.deepEqual([bought.json.allowed, bought.json.limit, bought.json.resets_at], [true, 1800, null]);
  assert.equal((await snapshot(buyer)).refills, undefined, 'a snapshot without refills leaves the field out');

  // The Pro Plan (7200 seconds a period) and a bundle beside it: refilled at the period's end.
  const uid = await createUser();
  const t0 = now() - 2 * DAY;
  const end = t0 + 30 * DAY;
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'VIDEO_PRO_MONTHLY', start: t0 });
  for (const e of [s.checkout(), s.created(), s.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: end })]) await send(e);
  await send(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 10 }));
  const planned = await check(uid, seconds);
  assert.equal(planned.status, 200, planned.text);
  assert.deepEqual([planned.json.allowed, planned.json.limit, planned.json.resets_at], [true, 9000, iso(end)]);
  assert.deepEqual((await snapshot(uid)).refills, { video_seconds: iso(end) });

  // Canceled at the period end: the seconds last until then, and nothing refills them.
  await send(s.updated({ at: now() - 5, periodStart: t0, periodEnd: end, cancelAtPeriodEnd: true }));
  const canceled = await check(uid, seconds);
  assert.equal(canceled.status, 200, canceled.text);
  assert.deepEqual([canceled.json.allowed, canceled.json.limit, canceled.json.resets_at], [true, 9000, null]);
  assert.equal((await snapshot(uid)).refills, undefined);
});

// ---- The Org Seats app: an organization's limits, counted for the organization and used by
// its seated members; students counted per course (a scope); a deleted course gives its
// slot back.
const orgs = env.catalog !== 'org-seats' && 'courses and students are the Org Seats catalog\'s limits';

async function organization(tier) {
  const org = crypto.randomUUID();
  await q('insert into organizations (id, name, seat_count) values ($1, $2, 2)', [org, 'Course Co']);
  const r = await admin({ organization_id: org, grants: [{ product: 'org', tier, source: 'promotion', id: id('g'),
    valid_from: new Date(Date.now() - 86_400_000).toISOString(), valid_to: new Date(Date.now() + 30 * 86_400_000).toISOString() }] });
  assert.equal(r.status, 201, r.text);
  const [seated, unseated, outsider] = [await createUser(), await createUser(), await createUser()];
  for (const u of [seated, unseated]) await q('insert into organization_members (organization_id, user_id) values ($1, $2)', [org, u]);
  await q(`insert into seat_allocations (organization_id, user_id, status) values ($1, $2, 'active')`, [org, seated]);
  return { org, seated, unseated, outsider };
}

test('an organization\'s limit counts for the organization, used by seated members only', { skip: orgs }, async () => {
  const { org, seated, unseated, outsider } = await organization('PROFESSIONAL');
  const courses = { feature: 'max_courses_authored', organization_id: org };
  const first = await track(seated, id('course'), courses);
  assert.equal(first.status, 200, first.text);
  assert.deepEqual([first.json.allowed, first.json.used, first.json.remaining, first.json.limit], [true, 0, 9, 10]);
  const seen = await check(seated, courses);
  assert.deepEqual([seen.json.used, seen.json.remaining], [1, 8], seen.text);
  const noSeat = await track(unseated, id('course'), courses);
  assert.equal(noSeat.status, 403, noSeat.text);
  assert.equal(noSeat.json.error.code, 'no_seat');
  const stranger = await check(outsider, courses);
  assert.equal(stranger.status, 403, stranger.text);
  assert.equal(stranger.json.error.code, 'not_a_member');
  // The count is the organization's, and the record names the member who used it.
  const [{ used }] = await q(`select used::int from usage_counters where organization_id = $1 and limit_id = 'max_courses_authored'`, [org]);
  assert.equal(used, 1);
  const [rec] = await q(`select user_id, organization_id, actor_id from usage_records where id = $1`, [first.json.usage_id]);
  assert.deepEqual([rec.user_id, rec.organization_id, rec.actor_id], [null, org, seated]);
  // Without organization_id the member's own (free) entitlements decide, on its own counter.
  const own = await check(seated, { feature: 'max_courses_authored' });
  assert.equal(own.status, 200, own.text);
  assert.equal(own.json.used, 0);
});

test('students per course: one counter per course; the 101st student is refused with the upgrade', { skip: orgs }, async () => {
  const { org, seated } = await organization('PROFESSIONAL');
  const students = (scope, quantity = 1) => ({ feature: 'max_students_per_course', organization_id: org, scope, quantity });
  const full = await track(seated, id('enrol'), students('course-1', 100));
  assert.equal(full.status, 200, full.text);
  assert.equal(full.json.remaining, 0);
  const over = await track(seated, id('enrol'), students('course-1'));
  assert.equal(over.status, 403, over.text);
  assert.equal(over.json.error.code, 'limit_reached');
  assert.equal(over.json.error.upgrade.offer, 'ORG_BUSINESS_YEARLY', 'the cheapest way to Business: CA$450 a year is less a month than CA$45 a month');
  const other = await track(seated, id('enrol'), students('course-2'));
  assert.equal(other.status, 200, other.text);
  assert.deepEqual([other.json.used, other.json.remaining], [0, 99]);
  const rows = await q(`select limit_id, used::int from usage_counters where organization_id = $1 order by limit_id`, [org]);
  assert.deepEqual(rows.map((r) => [r.limit_id, r.used]), [['max_students_per_course:course-1', 100], ['max_students_per_course:course-2', 1]]);
  for (const [body, code] of [[students('has space'), 'invalid_scope'], [students('x'.repeat(101)), 'invalid_scope'],
    [{ feature: 'ai_assistant_access', scope: 'a' }, 'invalid_scope'], [{ feature: 'max_courses_authored', organization_id: 'acme' }, 'invalid_request']]) {
    const r = await check(seated, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error.code, code, r.text);
  }
});

test('a deleted course gives its slot back, once; only who used it may', { skip: orgs }, async () => {
  const { org, seated, outsider } = await organization('PROFESSIONAL');
  const courses = { feature: 'max_courses_authored', organization_id: org };
  const made = await track(seated, id('course'), courses);
  assert.equal(made.status, 200, made.text);
  const release = (uid) => worker('POST', `/v1/usage/${made.json.usage_id}/release`, { headers: { authorization: `Bearer ${userToken(uid)}` } });
  assert.equal((await release(outsider)).status, 404);
  const r = await release(seated);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.status, r.json.replayed], ['released', false]);
  assert.equal((await release(seated)).json.replayed, true);
  const after = await check(seated, courses);
  assert.equal(after.json.used, 0, after.text);
});
