// The webhook path end to end: signatures, duplicates, concurrency, delivery order, and a
// store outage. Events are signed by Stripe's own library (and in Razorpay's format) and
// posted to the running worker; the rows are checked in PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import crypto from 'node:crypto';
import {
  env, q, createUser, postStripe, postStripeUntilAccepted, postRazorpay, closeDb, now, worker, id, stripeEvent, sleep,
} from './helpers.mjs';
import { StripeSubscriber, stripeOneTime, DAY } from './events.mjs';

after(closeDb);

// A subscription offer of the running catalog, and a one-time credit offer if it has one.
const PLAN = {
  'vcm-suite': { offer: 'SUITE_PRO_MONTHLY', price: 'price_vcm_pro_monthly', product: 'suite', tier: 'pro' },
  'video-studio': { offer: 'VIDEO_PRO_MONTHLY', product: 'video', tier: 'pro' },
  'org-seats': { offer: 'ORG_BUSINESS_MONTHLY', product: 'org', tier: 'BUSINESS', org: true },
  'razorpay-ai': null,
}[env.catalog];
const TOKENS = { 'video-studio': { offer: 'VIDEO_TOKENS_30_MIN', pool: 'video_seconds', units: 1800 } }[env.catalog];

async function subject() {
  if (PLAN?.org) {
    const org = crypto.randomUUID();
    await q('insert into organizations (id, name) values ($1, $2)', [org, 'e2e org']);
    return { organization_id: org };
  }
  return { user_id: await createUser() };
}
const whereSubject = (s) => (s.user_id ? ['user_id = $1', s.user_id] : ['organization_id = $1', s.organization_id]);
async function grants(s) {
  const [w, v] = whereSubject(s);
  return q(`select grant_key, cloud_id, tier, source, status, valid_from, valid_to, past_due_since, offer_key
            from cloud_entitlements where ${w} order by grant_key`, [v]);
}
async function eventsRows(eventId) {
  return q('select * from webhook_events where event_id = $1', [eventId]);
}

function firstPeriod(sub, t0) {
  return [sub.checkout(), sub.created(), sub.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: t0 + 30 * DAY })];
}

test('bad signatures are 400 with a JSON error and store nothing; a signed body the core cannot read is kept, never refused', { skip: !PLAN }, async () => {
  const s = await subject();
  const sub = new StripeSubscriber({ subject: s, ...PLAN, start: now() });
  const ev = sub.checkout();
  const wrong = await postStripe(ev, { secret: 'whsec_not_the_endpoint_secret' });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.json.error.code, 'signature_mismatch');
  const missing = await worker('POST', '/webhooks/stripe', { raw: JSON.stringify(ev), headers: { 'content-type': 'application/json' } });
  assert.equal(missing.status, 400);
  assert.equal(typeof missing.json.error.code, 'string');
  const old = await postStripe(ev, { timestamp: now() - 3600 });
  assert.equal(old.status, 400);
  assert.match(old.json.error.code, /tolerance|timestamp/);
  assert.deepEqual(await eventsRows(ev.id), []);
  assert.deepEqual(await grants(s), []);
  // Correctly signed but unreadable (the second endpoint secret, rotation, is accepted
  // too): kept with the reason, so nothing paid is lost to a 4xx that Stripe would retry
  // for days and then drop.
  const garbage = await postStripe('{"id": "evt_x", "object": "event"', { secret: env.stripeSecrets[1] });
  assert.equal(garbage.status, 200, garbage.text);
  assert.equal(garbage.json.status, 'kept');
  assert.match(garbage.json.event, /^body:[0-9a-f]{32}$/);
  const evtId = id('evt');
  const noObject = await postStripe({ id: evtId, object: 'event', type: 'checkout.session.completed', created: now(), data: {} });
  assert.equal(noObject.status, 200, noObject.text);
  assert.deepEqual([noObject.json.status, noObject.json.event], ['kept', evtId]);
  assert.ok(noObject.json.reason.length > 0);
  const kept = await q('select reason, payload from pending_webhook_events where event_id = $1 and resolved_at is null', [evtId]);
  assert.equal(kept.length, 1);
  assert.match(kept[0].reason, /data/);
  assert.equal(kept[0].payload.id, evtId);
  const again = await postStripe({ id: evtId, object: 'event', type: 'checkout.session.completed', created: now(), data: {} });
  assert.equal(again.status, 200, 'a redelivery is kept once');
  assert.equal((await q('select count(*)::int as n from pending_webhook_events where event_id = $1', [evtId]))[0].n, 1);
  // Razorpay: wrong signature.
  const rz = await worker('POST', '/webhooks/razorpay', { raw: '{}', headers: { 'x-razorpay-signature': 'ab'.repeat(32) } });
  assert.equal(rz.status, env.razorpaySecret ? 400 : 500);
});

test('unknown event types are acknowledged and ignored', async () => {
  const r = await postStripe(stripeEvent('plan.created', { id: id('plan'), object: 'plan' }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'ignored');
});

test('the same event 5 times: applied once, then duplicates; one grant', { skip: !PLAN }, async () => {
  const s = await subject();
  const t0 = now() - 5 * DAY;
  const sub = new StripeSubscriber({ subject: s, ...PLAN, start: t0 });
  const [checkout, created, paid] = firstPeriod(sub, t0);
  assert.equal((await postStripe(checkout)).json.status, 'applied');
  assert.equal((await postStripe(created)).json.status, 'applied');
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await postStripe(paid)).json.status);
  assert.deepEqual(statuses, ['applied', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
  assert.equal((await eventsRows(paid.id)).length, 1);
  const g = await grants(s);
  assert.equal(g.length, 1, JSON.stringify(g));
  assert.equal(g[0].cloud_id, PLAN.product);
  assert.equal(g[0].tier, PLAN.tier);
  assert.equal(g[0].status, 'active');
  assert.equal(g[0].valid_to.getTime() / 1000, t0 + 30 * DAY);
});

test('20 concurrent deliveries of one event: one applies, one grant', { skip: !PLAN }, async () => {
  const s = await subject();
  const t0 = now() - 2 * DAY;
  const sub = new StripeSubscriber({ subject: s, ...PLAN, start: t0 });
  const [checkout, created, paid] = firstPeriod(sub, t0);
  const results = await Promise.all(Array.from({ length: 20 }, () => postStripe(checkout)));
  const statuses = results.map((r) => `${r.status} ${r.json?.status ?? r.text}`);
  assert.equal(statuses.filter((x) => x === '200 applied').length, 1, statuses.join('\n'));
  assert.equal(statuses.filter((x) => x === '200 duplicate').length, 19, statuses.join('\n'));
  await postStripe(created);
  await postStripe(paid);
  assert.equal((await eventsRows(checkout.id)).length, 1);
  assert.equal((await grants(s)).length, 1);
});

test('20 concurrent deliveries of a token purchase: one ledger entry, one lot', { skip: !TOKENS }, async () => {
  const uid = await createUser();
  const ev = stripeOneTime({ subject: { user_id: uid }, offer: TOKENS.offer, at: now() - 60 });
  const results = await Promise.all(Array.from({ length: 20 }, () => postStripe(ev)));
  assert.ok(results.every((r) => r.status === 200), results.map((r) => r.text).join('\n'));
  assert.equal(results.filter((r) => r.json.status === 'applied').length, 1);
  const ledger = await q('select * from credit_ledger where user_id = $1', [uid]);
  assert.equal(ledger.length, 1, JSON.stringify(ledger));
  assert.equal(Number(ledger[0].delta), TOKENS.units);
  const bal = await q('select available from credit_balances where user_id = $1 and pool = $2', [uid, TOKENS.pool]);
  assert.equal(Number(bal[0].available), TOKENS.units);
});

/** Rows of a subject with the ids that differ between two runs taken out. */
async function normalised(s, sub) {
  const g = (await grants(s)).map((r) => ({ ...r, grant_key: r.grant_key.replace(sub.sub, 'SUB') }));
  const [w, v] = whereSubject(s);
  const subs = await q(`select status, quantity, current_period_start, current_period_end, cancel_at_period_end, offer_key
                        from billing_subscriptions where ${w}`, [v]);
  const bal = await q(`select pool, available from credit_balances where ${w} order by pool`, [v]);
  return { g, subs, bal };
}

function lifecycle(sub, t0) {
  const p1 = t0 + 30 * DAY;
  const p2 = p1 + 30 * DAY;
  return [
    sub.checkout({ at: t0 }),
    sub.created({ at: t0 }),
    sub.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: p1 }),
    sub.invoicePaid({ at: p1 + 1, periodStart: p1, periodEnd: p2 }),
    sub.updated({ at: p1 + 2, periodStart: p1, periodEnd: p2 }),
    sub.updated({ at: p1 + 3 * DAY, periodStart: p1, periodEnd: p2, cancelAtPeriodEnd: true }),
  ];
}

test('a shuffled delivery order ends in the same rows as the natural order', { skip: !PLAN }, async () => {
  const t0 = now() - 40 * DAY;
  const a = await subject();
  const b = await subject();
  const subA = new StripeSubscriber({ subject: a, ...PLAN, start: t0 });
  const subB = new StripeSubscriber({ subject: b, ...PLAN, start: t0 });
  subB.customer = subA.customer.replace('cus_', 'cus_b'); // distinct objects, same structure
  for (const e of lifecycle(subA, t0)) assert.equal((await postStripe(e)).status, 200);
  const shuffled = lifecycle(subB, t0);
  // A fixed, thorough shuffle: reversed, then the checkout (attribution) last of all.
  shuffled.reverse();
  shuffled.push(shuffled.splice(shuffled.findIndex((e) => e.type === 'checkout.session.completed'), 1)[0]);
  const answers = [];
  for (const e of shuffled) {
    const r = await postStripe(e);
    assert.equal(r.status, 200, r.text);
    answers.push(r.json.status);
  }
  assert.ok(answers.includes('kept'), `events before their attribution are kept: ${answers}`);
  const ra = await normalised(a, subA);
  const rb = await normalised(b, subB);
  assert.deepEqual(rb, ra);
  assert.equal(ra.g.length, 1);
  assert.equal(ra.g[0].valid_to.getTime() / 1000, t0 + 60 * DAY, 'renewed through the second period');
  const pending = await q('select * from pending_webhook_events where event_id = any($1) and resolved_at is null',
    [shuffled.map((e) => e.id)]);
  assert.deepEqual(pending, [], 'kept events were applied once attributed');
});

test('every event of 6 lifecycles in flight at once: each subscriber ends as if delivered one by one', { skip: !PLAN }, async () => {
  // Events of one subscriber share references (their folds must not interleave); events
  // of different subscribers share none (their folds commit side by side).
  const t0 = now() - 40 * DAY;
  const base = await subject();
  const subBase = new StripeSubscriber({ subject: base, ...PLAN, start: t0 });
  for (const e of lifecycle(subBase, t0)) assert.equal((await postStripe(e)).status, 200);
  const expected = await normalised(base, subBase);
  const runs = [];
  for (let i = 0; i < 6; i++) {
    const s = await subject();
    const sub = new StripeSubscriber({ subject: s, ...PLAN, start: t0 });
    runs.push({ s, sub, events: lifecycle(sub, t0) });
  }
  const answers = await Promise.all(runs.flatMap((r) => r.events.map(async (e) => (await postStripeUntilAccepted(e)).json.status)));
  assert.ok(answers.every((a) => ['applied', 'kept', 'duplicate'].includes(a)), answers.join(' '));
  for (const r of runs) {
    assert.deepEqual(await normalised(r.s, r.sub), expected, `subscriber ${JSON.stringify(r.s)}`);
    const kept = await q('select event_id from pending_webhook_events where event_id = any($1) and resolved_at is null',
      [r.events.map((e) => e.id)]);
    assert.deepEqual(kept, [], 'every kept event was applied once attributed');
  }
});

test('PostgreSQL stopped mid-run: 5xx and nothing partial; redelivery after restart applies exactly once',
  { skip: !PLAN || !env.pgStop || !env.pgStart }, async () => {
    const s = await subject();
    const t0 = now() - 3 * DAY;
    const sub = new StripeSubscriber({ subject: s, ...PLAN, start: t0 });
    const [checkout, created, paid] = firstPeriod(sub, t0);
    assert.equal((await postStripe(checkout)).json.status, 'applied');
    const before = await grants(s);
    await closeDb();
    execSync(env.pgStop, { stdio: 'ignore', shell: '/bin/sh' });
    try {
      for (const e of [created, paid]) {
        const r = await postStripe(e);
        assert.ok(r.status >= 500 && r.status < 600, `${e.type} during the outage: ${r.status} ${r.text}`);
        assert.equal(typeof r.json?.error?.code, 'string');
        assert.doesNotMatch(r.text, /postgres|relation|constraint|connection|PT\d|5432|store (unavailable|conflict)/i,
          'an unauthenticated sender learns nothing of the store');
      }
    } finally {
      execSync(env.pgStart, { stdio: 'ignore', shell: '/bin/sh' });
    }
    // Nothing of the failed deliveries was written.
    for (let i = 0; i < 50; i++) {
      try { await q('select 1'); break; } catch { await sleep(200); }
    }
    assert.deepEqual(await eventsRows(created.id), []);
    assert.deepEqual(await eventsRows(paid.id), []);
    assert.deepEqual(await grants(s), before);
    // The provider retries; the gateway reconnects.
    let r;
    for (let i = 0; i < 50; i++) {
      r = await postStripe(created);
      if (r.status === 200) break;
      await sleep(300);
    }
    assert.equal(r.status, 200, r.text);
    assert.equal((await postStripe(paid)).json.status, 'applied');
    assert.equal((await postStripe(paid)).json.status, 'duplicate');
    const g = await grants(s);
    assert.equal(g.length, 1);
    assert.equal(g[0].valid_to.getTime() / 1000, t0 + 30 * DAY);
    assert.equal((await eventsRows(paid.id)).length, 1);
  });

/** Every open kept delivery, page by page, as `GET /v1/admin/unattributed` lists them. */
async function unattributed() {
  const all = [];
  let after = null;
  for (let page = 0; page < 100; page++) {
    const r = await worker('GET', `/v1/admin/unattributed?limit=200${after === null ? '' : `&after=${after}`}`,
      { headers: { authorization: `Bearer ${env.adminSecret}` } });
    assert.equal(r.status, 200, r.text);
    all.push(...r.json.events);
    if (r.json.next === null) return all;
    after = r.json.next;
  }
  throw new Error('more than 100 pages of kept events');
}
const attribute = (body) => worker('POST', '/v1/admin/attribute', { body, headers: { authorization: `Bearer ${env.adminSecret}` } });

test('attribution never lost: a checkout naming no buyer is kept, listed, and granted once an operator attributes it', { skip: !PLAN }, async () => {
  const s = await subject();
  const t0 = now() - 2 * DAY;
  const sub = new StripeSubscriber({ subject: s, ...PLAN, start: t0 });
  const [checkout, created, paid] = firstPeriod(sub, t0);
  checkout.data.object.client_reference_id = null;
  checkout.data.object.metadata = { offer_key: PLAN.offer };
  for (const e of [checkout, created, paid]) {
    const r = await postStripe(e);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'kept', `${e.type}: ${r.text}`);
  }
  assert.deepEqual(await grants(s), []);
  const listed = (await unattributed()).find((e) => e.event === checkout.id);
  assert.ok(listed, 'the checkout is listed');
  assert.equal(listed.type, 'checkout.session.completed');
  assert.equal(listed.known.customer, `stripe:${sub.customer}`);
  assert.equal(listed.known.subscription, `stripe:${sub.sub}`);
  assert.equal(listed.known.offer, PLAN.offer);
  assert.equal(listed.known.amount, 2900);
  assert.ok(listed.received_at, 'the store says when it was kept');
  assert.ok(listed.reason.length > 0);

  const r = await attribute({ event: checkout.id, ...s, by: 'e2e' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'attributed');
  const g = await grants(s);
  assert.equal(g.length, 1, JSON.stringify(g));
  assert.deepEqual([g[0].cloud_id, g[0].tier, g[0].status, g[0].offer_key], [PLAN.product, PLAN.tier, 'active', PLAN.offer]);
  assert.equal(g[0].valid_to.getTime() / 1000, t0 + 30 * DAY);
  const fact = await q("select fact from billing_facts where fact_type = 'attributed' and fact_key = $1", [r.json.fact]);
  assert.equal(fact.length, 1);
  assert.equal(fact[0].fact.by, 'e2e');
  const open = await q('select event_id from pending_webhook_events where event_id = any($1) and resolved_at is null',
    [[checkout.id, created.id, paid.id]]);
  assert.deepEqual(open, [], 'every kept event of the subscription was applied with it');
  assert.ok(!(await unattributed()).some((e) => e.event === checkout.id));

  // A retry answers the same; another subject is refused; an event never kept is 404.
  const again = await attribute({ event: checkout.id, ...s });
  assert.deepEqual([again.status, again.json.status], [200, 'already_attributed'], again.text);
  const other = await subject();
  const refused = await attribute({ event: checkout.id, ...other });
  assert.deepEqual([refused.status, refused.json.error.code], [409, 'attributed_to_other'], refused.text);
  assert.deepEqual(await grants(other), []);
  const unknown = await attribute({ event: id('evt'), ...s });
  assert.deepEqual([unknown.status, unknown.json.error.code], [404, 'unknown_event']);
  const bad = await attribute({ event: checkout.id });
  assert.deepEqual([bad.status, bad.json.error.code], [400, 'invalid_subject']);
  assert.equal((await grants(s)).length, 1);
});

test('a wrong offer key in checkout metadata: granted from the price, with a warning', { skip: !PLAN }, async () => {
  const s = await subject();
  const t0 = now() - DAY;
  const sub = new StripeSubscriber({ subject: s, ...PLAN, start: t0 });
  const [checkout, created, paid] = firstPeriod(sub, t0);
  checkout.data.object.metadata.offer_key = `${PLAN.offer}_TYPO`;
  const r = await postStripe(checkout);
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.warnings.some((w) => w.includes(`${PLAN.offer}_TYPO`)), r.text);
  for (const e of [created, paid]) assert.equal((await postStripe(e)).status, 200);
  const g = await grants(s);
  assert.equal(g.length, 1, JSON.stringify(g));
  assert.deepEqual([g[0].tier, g[0].offer_key], [PLAN.tier, PLAN.offer]);
});
