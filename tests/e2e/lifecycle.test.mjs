// One full lifecycle per example catalog, through the running worker: purchase, renewal,
// failed payment and grace, recovery, cancel at period end, expiry, re-subscribe; token
// purchase and consumption (video studio); seats for organizations (organization
// plans); the same story told by Razorpay (the Razorpay AI app). Rows are checked in
// PostgreSQL and the user's signed snapshot is read back from /v1/entitlements.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { env, q, createUser, worker, userToken, postStripe, postRazorpay, now, closeDb, id, sleep } from './helpers.mjs';
import { StripeSubscriber, RazorpaySubscriber, stripeOneTime, DAY } from './events.mjs';

after(closeDb);

const iso = (s) => new Date(s * 1000).toISOString();
const T = now();
// Periods: two in the past, the current one, and the next.
const t0 = T - 75 * DAY;
const p1 = t0 + 30 * DAY;
const p2 = p1 + 30 * DAY; // 15 days ago
const p3 = p2 + 30 * DAY; // in 15 days

async function post(e) {
  const r = await postStripe(e);
  assert.equal(r.status, 200, `${e.type}: ${r.text}`);
  return r.json;
}
async function rows(col, subjectId) {
  return q(`select grant_key, cloud_id, tier, source, status, valid_from, valid_to, past_due_since, offer_key
            from cloud_entitlements where ${col} = $1 order by valid_to`, [subjectId]);
}
const secs = (d) => (d ? d.getTime() / 1000 : null);
async function snapshot(uid) {
  const r = await worker('GET', '/v1/entitlements', { headers: { authorization: `Bearer ${userToken(uid)}` } });
  assert.equal(r.status, 200, r.text);
  return r.json.snapshot;
}
async function ledgerMatchesBalances(col, subjectId) {
  const l = await q(`select pool, sum(delta)::bigint as s from credit_statement where ${col} = $1 group by pool order by pool`, [subjectId]);
  const lots = await q(`select pool, sum(remaining) filter (where not closed)::bigint as s from credit_lots where ${col} = $1 group by pool order by pool`, [subjectId]);
  const b = await q(`select pool, available::bigint as s from credit_balances where ${col} = $1 order by pool`, [subjectId]);
  assert.deepEqual(l.map((x) => [x.pool, Number(x.s)]), b.map((x) => [x.pool, Number(x.s)]), 'ledger sums = balances');
  assert.deepEqual(lots.map((x) => [x.pool, Number(x.s)]), b.map((x) => [x.pool, Number(x.s)]), 'open lots = balances');
  return Object.fromEntries(b.map((x) => [x.pool, Number(x.s)]));
}

/** The subscription story shared by the Stripe catalogs. Returns the subscriber. */
async function stripeStory({ subject, col, subjectId, offer, price, product, tier, quantity }) {
  const s = new StripeSubscriber({ subject, offer, price, start: t0, quantity });
  // Purchase.
  for (const e of [s.checkout(), s.created({ periodEnd: p1 }), s.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: p1 })]) await post(e);
  let g = await rows(col, subjectId);
  assert.equal(g.length, 1);
  assert.deepEqual([g[0].cloud_id, g[0].tier, g[0].source, g[0].status, g[0].offer_key], [product, tier, 'stripe', 'active', offer]);
  assert.equal(secs(g[0].valid_to), p1, 'paid through the first period');
  // Renewal.
  await post(s.invoicePaid({ at: p1 + 1, periodStart: p1, periodEnd: p2 }));
  await post(s.updated({ at: p1 + 2, periodStart: p1, periodEnd: p2 }));
  g = await rows(col, subjectId);
  assert.equal(secs(g[0].valid_to), p2, 'renewed through the second period');
  // Failed payment: past due, grace counted from the failure.
  await post(s.invoiceFailed({ at: p2 + 1 }));
  await post(s.updated({ at: p2 + 2, status: 'past_due', periodStart: p2, periodEnd: p3 }));
  g = await rows(col, subjectId);
  assert.equal(g[0].status, 'past_due');
  assert.ok(g[0].past_due_since && secs(g[0].past_due_since) >= p2 && secs(g[0].past_due_since) <= p2 + 2, 'grace runs from the failure');
  // Recovery: the retry is paid.
  await post(s.invoicePaid({ at: p2 + DAY, periodStart: p2, periodEnd: p3 }));
  await post(s.updated({ at: p2 + DAY + 1, periodStart: p2, periodEnd: p3 }));
  g = await rows(col, subjectId);
  assert.deepEqual([g[0].status, secs(g[0].valid_to), g[0].past_due_since], ['active', p3, null]);
  // Cancel at period end: access stays until the period ends.
  await post(s.updated({ at: p2 + 2 * DAY, periodStart: p2, periodEnd: p3, cancelAtPeriodEnd: true }));
  g = await rows(col, subjectId);
  assert.equal(g[0].status, 'canceled');
  assert.equal(secs(g[0].valid_to), p3, 'canceled keeps access until the period ends');
  const sub = await q('select status, cancel_at_period_end from billing_subscriptions where subscription_id = $1', [s.sub]);
  assert.deepEqual(sub[0], { status: 'active', cancel_at_period_end: true }, 'Stripe keeps it active until the end');
  // Expiry: the subscription ends (deleted yesterday); a late, older update changes nothing.
  await post(s.deleted({ at: T - DAY, periodStart: p2, periodEnd: p3 }));
  await post(s.updated({ at: p2 + 3 * DAY, periodStart: p2, periodEnd: p3 }));
  g = await rows(col, subjectId);
  assert.equal(g[0].status, 'canceled');
  assert.ok(secs(g[0].valid_to) <= T, 'no access after the end');
  assert.equal((await q('select status from billing_subscriptions where subscription_id = $1', [s.sub]))[0].status, 'ended');
  // Re-subscribe: a new subscription, a new grant from now on.
  const s2 = new StripeSubscriber({ subject, offer, price, start: T - 3600, quantity });
  const end2 = T - 3600 + 30 * DAY;
  for (const e of [s2.checkout(), s2.created({ periodEnd: end2 }), s2.invoicePaid({ at: T - 3599, periodStart: T - 3600, periodEnd: end2 })]) await post(e);
  g = await rows(col, subjectId);
  assert.equal(g.length, 2);
  const live = g.find((r) => r.grant_key.includes(s2.sub));
  assert.deepEqual([live.status, secs(live.valid_to)], ['active', end2]);
  return { s, s2, end2 };
}

test('VCM Suite: the suite plan from purchase to re-subscription', { skip: env.catalog !== 'vcm-suite' }, async () => {
  const uid = await createUser();
  const { s2, end2 } = await stripeStory({
    subject: { user_id: uid }, col: 'user_id', subjectId: uid,
    offer: 'SUITE_PRO_MONTHLY', price: 'price_vcm_pro_monthly', product: 'suite', tier: 'pro',
  });
  const snap = await snapshot(uid);
  const live = snap.grants.filter((g) => Date.parse(g.valid_to) > Date.now());
  assert.deepEqual(live.map((g) => [g.product, g.tier, g.status, g.valid_to]), [['suite', 'pro', 'active', iso(end2).replace('.000Z', 'Z')]]);
  assert.ok(live[0].id.includes(s2.sub));
  // A bundle: the cloud chosen at checkout.
  const uid2 = await createUser();
  const b = new StripeSubscriber({ subject: { user_id: uid2 }, offer: 'SUITE_PRO_TWO_CLOUDS_MONTHLY', price: 'price_vcm_pro_two_clouds', clouds: ['video', 'music'], start: T - 60 });
  for (const e of [b.checkout(), b.created(), b.invoicePaid({ at: T - 59, periodStart: T - 60, periodEnd: T - 60 + 30 * DAY })]) await post(e);
  const products = (await rows('user_id', uid2)).map((r) => `${r.cloud_id}:${r.tier}`).sort();
  assert.ok(products.includes('video:pro') && products.includes('music:pro'), products.join(','));
});

test('Video Studio: allowance with capped rollover, token purchase, consumption', { skip: env.catalog !== 'video-studio' }, async () => {
  const uid = await createUser();
  await stripeStory({
    subject: { user_id: uid }, col: 'user_id', subjectId: uid,
    offer: 'VIDEO_PRO_MONTHLY', price: 'price_video_pro_monthly', product: 'video', tier: 'pro',
  });
  let bal = await ledgerMatchesBalances('user_id', uid);
  assert.ok(bal.video_seconds > 0, 'the new period\'s allowance');
  // Tokens: bought once (the same purchase delivered twice counts once).
  const buy = stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_2_HOURS', at: T - 30, amount: 5900 });
  assert.equal((await post(buy)).status, 'applied');
  assert.equal((await post(buy)).status, 'duplicate');
  const after = await ledgerMatchesBalances('user_id', uid);
  assert.equal(after.video_seconds, bal.video_seconds + 7200);
  // Consumption: the allowance is spent before the purchased seconds.
  const r = await worker('POST', '/v1/usage/consume', {
    body: { model: 'standard', quality: 'standard', seconds: 120 },
    headers: { authorization: `Bearer ${userToken(uid)}`, 'idempotency-key': id('k') },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.charge.from_allowance, 120);
  assert.equal(r.json.charge.from_purchased, 0);
  bal = await ledgerMatchesBalances('user_id', uid);
  assert.equal(bal.video_seconds, after.video_seconds - 120);
  const purchased = await q(`select remaining from credit_lots where user_id = $1 and kind = 'purchase'`, [uid]);
  assert.deepEqual(purchased.map((l) => Number(l.remaining)), [7200], 'purchased seconds untouched');
  const snap = await snapshot(uid);
  assert.equal(snap.balances.video_seconds, bal.video_seconds);
});

test('Org Seats: the organization\'s subscription, seats that follow its quantity', { skip: env.catalog !== 'org-seats' }, async () => {
  const org = crypto.randomUUID();
  await q('insert into organizations (id, name) values ($1, $2)', [org, 'Acme Learning']);
  const { s2 } = await stripeStory({
    subject: { organization_id: org }, col: 'organization_id', subjectId: org,
    offer: 'ORG_BUSINESS_MONTHLY', price: 'price_org_business_monthly', product: 'org', tier: 'BUSINESS', quantity: 2,
  });
  const orgRow = await q('select seat_count from organizations where id = $1', [org]);
  assert.equal(orgRow[0].seat_count, 2, 'seats follow the subscription quantity');
  const [a, b, c] = [await createUser(), await createUser(), await createUser()];
  for (const u of [a, b, c]) await q(`insert into organization_members (organization_id, user_id) values ($1, $2)`, [org, u]);
  // Seat facts are ordered by the provider-neutral clock (whole seconds) and, within one
  // second, by key; a second apart, they apply in the order they were made.
  const seat = async (user_id, action = 'assign') => {
    await sleep(1100);
    return worker('POST', '/v1/admin/seats', {
      body: { organization_id: org, user_id, action, request_id: id('seat') },
      headers: { authorization: `Bearer ${env.adminSecret}` },
    });
  };
  assert.equal((await seat(a)).status, 200);
  assert.equal((await seat(b)).status, 200);
  const refused = await seat(c);
  assert.equal(refused.status, 409, refused.text);
  assert.equal(refused.json.error.code, 'no_seat');
  // A seated member gets the organization's plan in its snapshot; the others do not.
  const sa = await snapshot(a);
  assert.ok(sa.grants.some((g) => g.product === 'org' && g.tier === 'BUSINESS' && g.id.includes(s2.sub)), JSON.stringify(sa.grants));
  const sc = await snapshot(c);
  assert.deepEqual(sc.grants, []);
  // More seats bought: the quantity goes to 3 and the third member fits.
  await post(s2.updated({ at: T - 60, periodStart: T - 3600, periodEnd: T - 3600 + 30 * DAY, quantity: 3 }));
  assert.equal((await q('select seat_count from organizations where id = $1', [org]))[0].seat_count, 3);
  assert.equal((await seat(c)).status, 200);
  // A released seat is gone from the member's snapshot.
  assert.equal((await seat(b, 'release')).status, 200);
  const held = await q(`select user_id from seat_allocations where organization_id = $1 and status = 'active' order by user_id`, [org]);
  assert.deepEqual(held.map((r) => r.user_id).sort(), [a, c].sort());
  assert.deepEqual((await snapshot(b)).grants, []);
});

test('Razorpay AI app: activation, charges that refill credits, halt, cancel, re-subscribe', { skip: env.catalog !== 'razorpay-ai' }, async () => {
  const uid = await createUser();
  const r = new RazorpaySubscriber({ userId: uid, plan: 'plan_premium_monthly', start: t0 });
  const send = async (type, opts) => {
    const res = await postRazorpay(r.event(type, opts));
    assert.equal(res.status, 200, `${type}: ${res.text}`);
    return res.json;
  };
  await send('subscription.activated', { at: t0, status: 'active', currentStart: t0, currentEnd: p1 });
  await send('subscription.charged', { at: t0 + 1, status: 'active', currentStart: t0, currentEnd: p1, payment: r.payment({ at: t0 + 1 }) });
  let g = await rows('user_id', uid);
  assert.deepEqual([g[0].cloud_id, g[0].tier, g[0].source, g[0].status, secs(g[0].valid_to)], ['premium', 'PREMIUM', 'razorpay', 'active', p1]);
  // Renewal: charged again; the AI credits are reset to the monthly amount.
  await send('subscription.charged', { at: p2 + 1, status: 'active', currentStart: p2, currentEnd: p3, payment: r.payment({ at: p2 + 1 }) });
  g = await rows('user_id', uid);
  assert.equal(secs(g[0].valid_to), p3);
  const bal = await ledgerMatchesBalances('user_id', uid);
  assert.equal(bal.ai_credits, 2000, 'refilled to the monthly 2000, not stacked');
  // Redelivery of the same charge (same event id) changes nothing.
  const dupId = id('evt');
  const charged = r.event('subscription.charged', { at: p2 + 2, status: 'active', currentStart: p2, currentEnd: p3, payment: r.payment({ at: p2 + 2 }) });
  assert.equal((await postRazorpay(charged, { eventId: dupId })).json.status, 'applied');
  assert.equal((await postRazorpay(charged, { eventId: dupId })).json.status, 'duplicate');
  // Halted (payment failures): past due.
  await send('subscription.halted', { at: p2 + 3 * DAY, status: 'halted', currentStart: p2, currentEnd: p3 });
  g = await rows('user_id', uid);
  assert.equal(g[0].status, 'past_due');
  // Cancelled: access kept until the end of the paid period.
  await send('subscription.cancelled', { at: p2 + 4 * DAY, status: 'cancelled', currentStart: p2, currentEnd: p3 });
  g = await rows('user_id', uid);
  assert.equal(g[0].status, 'canceled');
  assert.equal(secs(g[0].valid_to), p3);
  // Re-subscribe: max(existing end, new period end) - no days lost.
  const r2 = new RazorpaySubscriber({ userId: uid, plan: 'plan_premium_monthly', start: T - 60 });
  const end2 = T - 60 + 30 * DAY;
  const res = await postRazorpay(r2.event('subscription.charged', { at: T - 59, status: 'active', currentStart: T - 60, currentEnd: end2, payment: r2.payment({ at: T - 59 }) }));
  assert.equal(res.status, 200, res.text);
  g = await rows('user_id', uid);
  assert.ok(g.some((x) => x.status === 'active' && secs(x.valid_to) >= end2), JSON.stringify(g));
  const snap = await snapshot(uid);
  assert.ok(snap.grants.some((x) => x.tier === 'PREMIUM' && x.status === 'active'));
  assert.equal(snap.balances.ai_credits >= 2000, true);
});
