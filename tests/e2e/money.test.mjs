// Money is conserved by construction, end to end: each way credits used to be created or
// destroyed at a seam between the worker and the store, tried against the running stack
// (wrangler dev, the REST gateway, PostgreSQL) as an attacker or a flaky network would.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, q, createUser, worker, admin, userToken, postStripe, now, closeDb, id, uuid, stripeEvent } from './helpers.mjs';
import { StripeSubscriber, stripeOneTime, DAY } from './events.mjs';

after(closeDb);
const studio = env.catalog === 'video-studio';
const skip = !studio && 'usage pricing lives in the video-studio catalog';

const consume = (uid, key, body) => worker('POST', '/v1/usage/consume', {
  body, headers: { authorization: `Bearer ${userToken(uid)}`, 'idempotency-key': key },
});
const balance = async (uid) =>
  Number((await q(`select coalesce(sum(available), 0) as a from credit_balances where user_id = $1 and pool = 'video_seconds'`, [uid]))[0].a);
const usageEntries = async (uid) =>
  (await q(`select source_key, delta from credit_statement where user_id = $1 and kind = 'usage' order by at, source_key`, [uid]));

/** Store-wide, for one user: no lot gives more than it was granted, the lots record exactly
 * what the charges took, and every charge is covered by what it took and its overage. */
async function conserved(uid) {
  const bad = await q(`select key, granted, remaining, used, revoked, expired from credit_lots
                        where user_id = $1 and granted < remaining + used + revoked + expired`, [uid]);
  assert.deepEqual(bad, [], 'no lot gives more than it was granted');
  const [{ used }] = await q(`select coalesce(sum(used), 0)::int as used from credit_lots where user_id = $1`, [uid]);
  const [{ taken }] = await q(`select coalesce(-sum(delta), 0)::int as taken from credit_statement where user_id = $1 and kind = 'usage'`, [uid]);
  assert.equal(used, taken, 'the lots record exactly what the charges took');
  const [{ units }] = await q(`select coalesce(sum(units - overage_units), 0)::int as units from usage_records where user_id = $1`, [uid]);
  assert.equal(taken, units, 'every charge is covered by what it took and its overage');
}

test('1. a crafted Idempotency-Key is a new charge, paid like any other', { skip }, async () => {
  const uid = await createUser();
  assert.equal((await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 60 }))).json.status, 'applied');
  const first = await consume(uid, 'k1', { model: 'standard', quality: 'standard', seconds: 30 });
  assert.equal(first.status, 200, first.text);
  const [lot] = await q('select key from credit_lots where user_id = $1', [uid]);
  // The first charge's per-lot entry key, readable through RLS, as the second key.
  const crafted = await consume(uid, `k1:${lot.key}`, { model: 'ultra', quality: 'studio', seconds: 86400 });
  assert.equal(crafted.status, 402, `a request no balance covers is refused: ${crafted.text}`);
  const paid = await consume(uid, `k1:${lot.key}`, { model: 'standard', quality: 'standard', seconds: 60 });
  assert.equal(paid.status, 200, paid.text);
  assert.equal(paid.json.replayed, false);
  assert.equal(await balance(uid), 1800 - 90);
  const replay = await consume(uid, 'k1', { model: 'standard', quality: 'standard', seconds: 30 });
  assert.equal(replay.json.status, 'replayed');
  assert.equal(await balance(uid), 1710, 'a retry takes nothing');
  assert.equal((await usageEntries(uid)).length, 2);
  await conserved(uid);
});

test('2. an admin credit is charged once, whatever is delivered later', { skip }, async () => {
  const uid = await createUser();
  const g = await admin({ user_id: uid, credits: [{ pool: 'video_seconds', amount: 100, id: id('comp') }] });
  assert.equal(g.status, 201, g.text);
  const c = await consume(uid, id('k'), { model: 'standard', quality: 'standard', seconds: 30 });
  assert.equal(c.status, 200, c.text);
  assert.equal(await balance(uid), 70);
  // A bundle bought two minutes before the charge, delivered after it.
  const late = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 120 }));
  assert.equal(late.json.status, 'applied', late.text);
  assert.equal(await balance(uid), 1870, '100 - 30 + 1800');
  const tick = await worker('GET', '/__scheduled?cron=*/15+*+*+*+*');
  assert.equal(tick.status, 200);
  assert.equal(await balance(uid), 1870, 'a cron tick changes nothing');
  assert.equal((await usageEntries(uid)).length, 1, 'one usage entry for one request');
  await conserved(uid);
});

test('3. overage billed is never charged again in tokens', { skip }, async () => {
  const uid = await createUser();
  await q(`insert into usage_preferences (user_id, allow_overages, overage_limit_minor) values ($1, true, 10000)`, [uid]);
  assert.equal((await admin({ user_id: uid, credits: [{ pool: 'video_seconds', amount: 1, id: id('one') }] })).status, 201);
  assert.equal((await consume(uid, id('k'), { model: 'standard', quality: 'standard', seconds: 1 })).status, 200);
  const over = await consume(uid, id('k'), { model: 'standard', quality: 'standard', seconds: 30 });
  assert.equal(over.status, 200, over.text);
  assert.equal(over.json.charge.overage_units, 30);
  assert.equal(over.json.record.overage_minor, 81, '30 s x 0.015 x 1.2 x 1.5');
  const late = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 60 }));
  assert.equal(late.json.status, 'applied', late.text);
  assert.equal(await balance(uid), 1800, 'the bundle bought a minute earlier holds all 1800 s');
  const [st] = await q(`select state from billing_subjects where user_id = $1`, [uid]);
  assert.equal((st.state.overage ?? []).length, 0, 'no overage the fold made up');
  await conserved(uid);
});

test('4. a paid event for a user the database does not know yet is kept, then applied', { skip }, async () => {
  const uid = uuid();
  const ev = stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 30 });
  const r = await postStripe(ev);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'kept');
  assert.ok(r.json.waiting_for.includes(`user:${uid}`), r.text);
  assert.doesNotMatch(r.text, /constraint|violat|relation|foreign key|auth\.users/i, 'no store internals');
  assert.equal((await postStripe(ev)).json.status, 'duplicate', 'a redelivery is the same event');
  // The user signs up; the next scheduled run applies what was paid.
  await q('insert into auth.users (id, email, role, aud) values ($1, $2, $3, $3)', [uid, `${id('u')}@example.test`, 'authenticated']);
  const tick = await worker('GET', '/__scheduled?cron=*/15+*+*+*+*');
  assert.equal(tick.status, 200);
  assert.equal(await balance(uid), 1800);
  const open = await q('select 1 from pending_webhook_events where event_id = $1 and resolved_at is null', [ev.id]);
  assert.deepEqual(open, [], 'resolved');
});

test('5. an ended admin grant closes, and the expiry scan gets past rows it cannot fold', { skip }, async () => {
  // 600 lapsed rows no fold can close (written around the functions), oldest first.
  const stuck = await createUser();
  await q(`insert into cloud_entitlements (user_id, grant_key, cloud_id, tier, source, status, valid_from, valid_to)
           select $1, 'manual_grant:stuck-' || i, 'video', 'creator', 'manual_grant', 'active',
                  now() - interval '30 days', now() - interval '20 days' + i * interval '1 second'
             from generate_series(1, 600) i`, [stuck]);
  const uid = await createUser();
  const ends = new Date((now() + 2) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const g = await admin({ user_id: uid, grants: [{ product: 'video', tier: 'agency', source: 'promotion', id: 'spring', valid_to: ends }] });
  assert.equal(g.status, 201, g.text);
  await new Promise((r) => setTimeout(r, 3000));
  const tick = await worker('GET', '/__scheduled?cron=*/15+*+*+*+*');
  assert.equal(tick.status, 200);
  const [row] = await q(`select status, valid_to from cloud_entitlements where user_id = $1`, [uid]);
  assert.equal(row.status, 'canceled', 'closed at its end (access to valid_to, as before)');
  const again = await worker('GET', '/__scheduled?cron=*/15+*+*+*+*');
  assert.equal(again.status, 200);
  const [row2] = await q(`select status, updated_at from cloud_entitlements where user_id = $1`, [uid]);
  assert.equal(row2.status, 'canceled');
  await q(`delete from cloud_entitlements where user_id = $1`, [stuck]);
});

test('6. a subject id that cannot be a user is kept, and the answer names nothing of the store', { skip }, async () => {
  // Outages are checked the same way in webhooks.test.mjs (PostgreSQL stopped mid-run).
  const ev = stripeOneTime({ subject: { user_id: 'not-a-uuid' }, offer: 'VIDEO_TOKENS_30_MIN', at: now() });
  const r = await postStripe(ev);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'kept');
  assert.doesNotMatch(r.text, /constraint|violat|relation|syntax|invalid input/i);
});

test('7. a later event naming another user never moves a subscription: the first subject keeps it', { skip: env.catalog !== 'vcm-suite' && 'one catalog is enough' }, async () => {
  const a = await createUser();
  const b = await createUser();
  const t0 = now() - 5 * DAY;
  const s = new StripeSubscriber({ subject: { user_id: a }, offer: 'CLOUD_CREATION_PRO_MONTHLY', start: t0 });
  for (const e of [s.checkout(), s.created({ periodEnd: t0 + 30 * DAY }), s.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: t0 + 30 * DAY })]) {
    assert.equal((await postStripe(e)).status, 200);
  }
  // What a stand-in checkout, or tampered metadata, would send: the same subscription,
  // cancelled at period end, with another user in its metadata.
  const moved = s.subscription('customer.subscription.updated', { at: now() - 60, periodStart: t0, periodEnd: t0 + 30 * DAY, cancelAtPeriodEnd: true });
  moved.data.object.metadata = { ...moved.data.object.metadata, user_id: b };
  const r = await postStripe(moved);
  assert.equal(r.status, 200, r.text);
  const [sub] = await q('select user_id, cancel_at_period_end from billing_subscriptions where subscription_id = $1', [s.sub]);
  assert.equal(sub.user_id, a, 'the subscription stays with its first subject');
  assert.equal(sub.cancel_at_period_end, true, 'and the event still updated it');
  assert.deepEqual(await q('select grant_key from cloud_entitlements where user_id = $1', [b]), [], 'nothing moved to the other user');
  const ga = await q('select status, valid_to from cloud_entitlements where user_id = $1', [a]);
  assert.ok(ga.length >= 1 && ga.every((g) => g.valid_to !== null), JSON.stringify(ga));
});

test('a hold released into a lot a refund closed meanwhile: the lot is what its facts say, at once', { skip }, async () => {
  const uid = await createUser();
  const auth = { authorization: `Bearer ${userToken(uid)}` };
  const bought = stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 60 });
  assert.equal((await postStripe(bought)).status, 200);
  const balance = async () =>
    Number((await q(`select coalesce(sum(available), 0)::int as a from credit_balances where user_id = $1 and pool = 'video_seconds'`, [uid]))[0].a);
  assert.equal(await balance(), 1800);
  const hold = await worker('POST', '/v1/track', { body: { feature: 'video_seconds', quantity: 1200, hold: true }, headers: { ...auth, 'idempotency-key': id('h') } });
  assert.equal(hold.status, 200, hold.text);
  // Half the payment refunded while 1,200 seconds are held: the refund takes what is left
  // (600) and closes the lot.
  const charge = { id: id('ch'), object: 'charge', amount: 1900, amount_refunded: 950, refunded: false, payment_intent: bought.data.object.payment_intent, currency: 'usd', created: now() };
  assert.equal((await postStripe(stripeEvent('charge.refunded', charge))).status, 200);
  assert.equal(await balance(), 0);
  const released = await worker('POST', `/v1/usage/${hold.json.usage_id}/release`, { body: {}, headers: auth });
  assert.equal(released.status, 200, released.text);
  assert.equal(await balance(), 900, 'half refunded, nothing used: 900, not 0 until some later fold');
  const bad = await q(`select key from credit_lots where user_id = $1 and granted <> remaining + used + revoked + expired`, [uid]);
  assert.deepEqual(bad, [], 'every lot: granted = remaining + used + revoked + expired');
  const [{ released: back }] = await q(`select sum(released)::int as released from credit_lots where user_id = $1`, [uid]);
  assert.equal(back, 1200, 'the lot counts what released holds gave back');
});

test('an open dispute told by .updated before .created is dated by .created, as in the other order', { skip }, async () => {
  const uid = await createUser();
  const bought = stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 120 });
  assert.equal((await postStripe(bought)).status, 200);
  const t0 = now() - 60;
  const dp = id('dp');
  const dispute = { id: dp, object: 'dispute', amount: 1900, charge: id('ch'), payment_intent: bought.data.object.payment_intent,
                    status: 'needs_response', reason: 'general', currency: 'usd', created: t0 };
  // Delivered out of order: the later telling first.
  assert.equal((await postStripe(stripeEvent('charge.dispute.updated', dispute, { created: t0 + 30 }))).status, 200);
  assert.equal((await postStripe(stripeEvent('charge.dispute.created', dispute, { created: t0 }))).status, 200);
  const rows = await q(`select extract(epoch from at)::bigint as at, (fact ->> 'at') as told from billing_facts where fact_key = $1`,
                       [`stripe:dispute:${dp}:created`]);
  assert.equal(rows.length, 1);
  assert.equal(Number(rows[0].at), t0, 'the earliest telling is stored');
  assert.equal(Date.parse(rows[0].told) / 1000, t0, 'and is what a fold reads');
  const [{ a }] = await q(`select coalesce(sum(available), 0)::int as a from credit_balances where user_id = $1`, [uid]);
  assert.equal(a, 0, 'the dispute took the purchase back');
});

test('a release and a refund of the same lot at once, again and again: every lot adds up and the balance is what the facts say', { skip }, async () => {
  const auth = (uid) => ({ authorization: `Bearer ${userToken(uid)}` });
  const rounds = await Promise.all(Array.from({ length: 8 }, async () => {
    const uid = await createUser();
    const bought = stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 60 });
    assert.equal((await postStripe(bought)).status, 200);
    const hold = await worker('POST', '/v1/track', { body: { feature: 'video_seconds', quantity: 1200, hold: true }, headers: { ...auth(uid), 'idempotency-key': id('h') } });
    assert.equal(hold.status, 200, hold.text);
    const charge = { id: id('ch'), object: 'charge', amount: 1900, amount_refunded: 950, refunded: false, payment_intent: bought.data.object.payment_intent, currency: 'usd', created: now() };
    // The refund's fold closes the lot while the release gives the held seconds back to it.
    const [refund, release] = await Promise.all([
      postStripe(stripeEvent('charge.refunded', charge)),
      worker('POST', `/v1/usage/${hold.json.usage_id}/release`, { body: {}, headers: auth(uid) }),
    ]);
    return { uid, refund, release };
  }));
  for (const { uid, refund, release } of rounds) {
    assert.equal(refund.status, 200, refund.text);
    assert.equal(release.status, 200, release.text);
    const bad = await q(`select key from credit_lots where user_id = $1 and granted <> remaining + used + revoked + expired`, [uid]);
    assert.deepEqual(bad, [], 'every lot: granted = remaining + used + revoked + expired');
    const [{ a }] = await q(`select coalesce(sum(available), 0)::int as a from credit_balances where user_id = $1`, [uid]);
    assert.equal(a, 900, 'half refunded, nothing used, whichever came first');
  }
});

test('a refund made before a renewal and told after it withdraws what the renewal carried over', { skip }, async () => {
  const uid = await createUser();
  const start = now() - 40 * DAY;
  const renewal = start + 30 * DAY;
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'VIDEO_CREATOR_MONTHLY', start });
  const first = s.invoicePaid({ at: start + 1, periodStart: start, periodEnd: renewal });
  for (const e of [s.checkout(), s.created({ periodEnd: renewal }), first, s.invoicePaid({ at: renewal + 1, periodStart: renewal, periodEnd: renewal + 30 * DAY })]) {
    const r = await postStripe(e);
    assert.equal(r.status, 200, r.text);
  }
  assert.equal(await balance(uid), 3600, '1800 carried over and 1800 of the renewal');
  // The first payment refunded an hour before the renewal; its event arrives after.
  const pi = first.data.object.payments.data[0].payment.payment_intent;
  const charge = { id: id('ch'), object: 'charge', amount: 2900, amount_refunded: 2900, refunded: true, payment_intent: pi, currency: 'usd', created: renewal - 3600 };
  const r = await postStripe(stripeEvent('charge.refunded', charge, { created: renewal - 3600 }));
  assert.equal(r.json?.status, 'applied', r.text);
  assert.equal(await balance(uid), 1800, 'the refunded period carries nothing over');
  const open = await q(`select key from credit_lots where user_id = $1 and kind = 'rollover' and (not closed or remaining <> 0)`, [uid]);
  assert.deepEqual(open, [], 'the carried-over lot is withdrawn');
  const [{ ledger }] = await q(`select coalesce(sum(delta), 0)::int as ledger from credit_statement where user_id = $1 and pool = 'video_seconds'`, [uid]);
  assert.equal(ledger, 1800, 'the statement adds up to the balance');
  await conserved(uid);
});

test('a paused subscription\'s seconds are left out of credit_balances and of a replayed charge\'s answer, kept, and counted again once it resumes', { skip }, async () => {
  const uid = await createUser();
  const start = now() - 5 * DAY;
  const end = start + 30 * DAY;
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'VIDEO_CREATOR_MONTHLY', start });
  const pack = stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: start + 3600 });
  for (const e of [s.checkout(), s.created({ periodEnd: end }), s.invoicePaid({ at: start + 1, periodStart: start, periodEnd: end }), pack]) {
    const r = await postStripe(e);
    assert.equal(r.status, 200, r.text);
  }
  assert.equal(await balance(uid), 3600, 'the month\'s 1800 seconds and the pack\'s 1800');
  const render = { model: 'standard', quality: 'watermark', seconds: 30 };
  const key = id('k');
  const first = await consume(uid, key, render);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.balances.video_seconds, 3570, 'taken from the month\'s seconds first');
  const held = async () => Number((await q(
    `select coalesce(sum(remaining) filter (where not closed), 0)::int as h from credit_lots where user_id = $1 and pool = 'video_seconds'`, [uid]))[0].h);

  // Paused: the month's seconds are kept, not spendable.
  let r = await postStripe(s.updated({ at: now() - 60, status: 'paused', periodStart: start, periodEnd: end }));
  assert.equal(r.json?.status, 'applied', r.text);
  const grants = await q('select paused_since from cloud_entitlements where user_id = $1', [uid]);
  assert.ok(grants.length > 0 && grants.every((g) => g.paused_since !== null), JSON.stringify(grants));
  assert.equal(await balance(uid), 1800, 'the pack alone may be spent');
  assert.equal(await held(), 3570, 'nothing taken away');
  const replay = await consume(uid, key, render);
  assert.equal(replay.json?.status, 'replayed', replay.text);
  assert.equal(replay.json.balances.video_seconds, 1800, `a retry answers what may be spent: ${replay.text}`);
  const second = await consume(uid, id('k'), render);
  assert.equal(second.status, 200, second.text);
  assert.equal(second.json.balances.video_seconds, 1770, 'taken from the pack');
  assert.equal(await balance(uid), 1770, 'the view says what the charge\'s answer says');

  // Resumed: the month's seconds count again.
  r = await postStripe(s.updated({ at: now() - 30, status: 'active', periodStart: start, periodEnd: end }));
  assert.equal(r.json?.status, 'applied', r.text);
  assert.equal(await balance(uid), 3540);
  const again = await consume(uid, key, render);
  assert.equal(again.json?.status, 'replayed', again.text);
  assert.equal(again.json.balances.video_seconds, 3540, again.text);
  await conserved(uid);
});
