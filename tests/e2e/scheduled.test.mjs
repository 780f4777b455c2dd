// The scheduled handler (cron): expiry housekeeping and retries of kept events, triggered
// through wrangler dev's `/__scheduled` endpoint (`wrangler dev --test-scheduled`).
import { test, after } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import pg from 'pg';
import { env, q, createUser, worker, postStripe, now, closeDb, id, uuid } from './helpers.mjs';
import { StripeSubscriber, DAY, stripeOneTime } from './events.mjs';

after(closeDb);
const skip = env.catalog !== 'video-studio' && 'needs a catalog with period allowances (video-studio)';

async function runScheduled() {
  const r = await worker('GET', '/__scheduled?cron=*/15+*+*+*+*');
  assert.equal(r.status, 200, r.text);
}

test('an allowance whose period ended is closed and its remainder posted as expired', { skip }, async () => {
  const uid = await createUser();
  const t0 = now() - 40 * DAY;
  const end = t0 + 30 * DAY; // ten days ago; no event since
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'VIDEO_CREATOR_MONTHLY', start: t0 });
  // Delivered while the period was still running (the fold then saw an open lot).
  for (const e of [s.checkout(), s.created({ periodEnd: end }), s.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: end })]) {
    assert.equal((await postStripe(e)).status, 200);
  }
  // Open it again as if the fold had run before the end (what a quiet account looks like).
  await q(`update credit_lot_terms set closed = false where user_id = $1`, [uid]);
  await q(`update credit_lot_balances b set remaining = t.granted, expired = 0
           from credit_lot_terms t where b.lot_id = t.id and t.user_id = $1`, [uid]);
  await q(`delete from credit_ledger where user_id = $1 and kind = 'expire'`, [uid]);
  const before = await q(`select key, remaining, closed from credit_lots where user_id = $1`, [uid]);
  assert.ok(before.length > 0 && before.every((l) => !l.closed && Number(l.remaining) > 0));
  await runScheduled();
  const lots = await q(`select key, remaining, expired, closed from credit_lots where user_id = $1`, [uid]);
  assert.ok(lots.every((l) => l.closed && Number(l.remaining) === 0), JSON.stringify(lots));
  const exp = await q(`select sum(delta)::int as s from credit_ledger where user_id = $1 and kind = 'expire'`, [uid]);
  assert.equal(exp[0].s, -before.reduce((a, l) => a + Number(l.remaining), 0));
  const bal = await q(`select available from credit_balances where user_id = $1`, [uid]);
  assert.ok(bal.every((b) => Number(b.available) === 0));
  const ledger = await q(`select sum(delta)::int as s from credit_statement where user_id = $1`, [uid]);
  assert.equal(ledger[0].s, 0, 'ledger sum equals the balance');
});

test('a trialing subscription is listed for the scheduled run with its trial end, until it is no longer trialing', { skip }, async () => {
  const uid = await createUser();
  const t0 = now() - DAY;
  const end = t0 + 14 * DAY;
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'VIDEO_CREATOR_MONTHLY', start: t0 });
  s.attributed = true;
  const trialing = s.subscription('customer.subscription.created', { at: t0, status: 'trialing', periodStart: t0, periodEnd: end });
  trialing.data.object.trial_end = end;
  assert.equal((await postStripe(trialing)).status, 200);
  const listed = async () => {
    const [{ t }] = await q(`select public.tollgate_trials() as t`);
    return t.filter((r) => r.subject.user_id === uid);
  };
  const rows = await listed();
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.equal(Date.parse(rows[0].trial_end) / 1000, end);
  const [sub] = await q(`select status, extract(epoch from trial_end)::bigint as trial_end from billing_subscriptions where subscription_id = $1`, [s.sub]);
  assert.deepEqual([sub.status, Number(sub.trial_end)], ['trialing', end]);
  // The run's scan by time tells when the subject was last folded (the fold just made), so
  // a run passes a row folded after its rule turned.
  const [{ t: ending }] = await q('select public.tollgate_trials_ending(to_timestamp($1), to_timestamp($2)) as t', [end - 1, end + 1]);
  const mine = ending.filter((r) => r.subject.user_id === uid);
  assert.equal(mine.length, 1, JSON.stringify(ending));
  assert.ok(Math.abs(Date.parse(mine[0].folded_at) - Date.now()) < 60_000, `folded_at ${mine[0].folded_at} is the fold's time`);
  // The trial converts: no longer a trial for the scan.
  assert.equal((await postStripe(s.subscription('customer.subscription.updated', { at: end, periodStart: end, periodEnd: end + 30 * DAY }))).status, 200);
  assert.deepEqual(await listed(), []);
  await runScheduled();
});

// More kept events than a run of the local stack's workers (SUBREQUESTS 10,000) shares
// in its first turn; the run goes on with them in its second (worker/src/budget.rs).
const RUN_TRIES = 4000;

/** Keeps `n` correctly signed events the core cannot read (they wait for an operator and
 * never leave by themselves), written the way the worker keeps one; their ids start with
 * the returned prefix. */
async function keepUnreadable(n) {
  const prefix = id('evt_unreadable');
  await q(`insert into pending_webhook_events (provider, event_id, event_type, reason, payload)
           select 'stripe', $1::text || '_' || g, 'checkout.session.completed', 'the event cannot be read',
                  jsonb_build_object('id', $1::text || '_' || g, 'object', 'event', 'type', 'checkout.session.completed',
                                     'created', extract(epoch from now())::bigint, 'data', '{}'::jsonb)
             from generate_series(1, $2::int) g`, [prefix, n]);
  return prefix;
}

/** Resolves the kept events whose ids start with `prefix`, so later runs do not try them. */
const resolveKept = (prefix) =>
  q(`update pending_webhook_events set resolved_at = now() where event_id like $1 and resolved_at is null`, [`${prefix}_%`]);

test('a paid event kept behind more kept events than one run tries is applied within ceil(N / 4000) runs', { skip }, async () => {
  const prefix = await keepUnreadable(RUN_TRIES + 100);
  try {
    // Kept after all of them: a paid purchase naming a user who has not signed up yet.
    const uid = uuid();
    const r = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 30 }));
    assert.equal(r.json?.status, 'kept', r.text);
    await q('insert into auth.users (id, email, role, aud) values ($1, $2, $3, $3)', [uid, `${id('u')}@example.test`, 'authenticated']);
    const [{ n }] = await q(`select count(*)::int as n from pending_webhook_events where resolved_at is null`);
    const runs = Math.ceil(n / RUN_TRIES);
    assert.ok(runs >= 2, `more kept events wait (${n}) than one run tries`);
    const balance = async () =>
      Number((await q(`select coalesce(sum(available), 0) as a from credit_balances where user_id = $1 and pool = 'video_seconds'`, [uid]))[0].a);
    for (let run = 1; run <= runs && (await balance()) === 0; run++) await runScheduled();
    assert.equal(await balance(), 1800, `the purchase, kept behind ${n - 1} events, is applied within ${runs} runs`);
    const open = await q('select 1 from pending_webhook_events where event_id = $1 and resolved_at is null', [r.json.event]);
    assert.deepEqual(open, [], 'resolved');
    // Those kept before it were all tried by then.
    const [{ untried }] = await q(`select count(*)::int as untried from pending_webhook_events where event_id like $1 and attempts = 0`,
      [`${prefix}_%`]);
    assert.equal(untried, 0, 'kept events never tried');
  } finally {
    await resolveKept(prefix);
  }
});

test('the retry order reads its pages through its index, least recently tried first', { skip }, async () => {
  const prefix = await keepUnreadable(450);
  try {
    // Some of them were tried (the store notes the time), in another order than kept.
    for (const g of [7, 3, 5]) await q(`select public.tollgate_pending_attempt('stripe', $1, 'still unreadable')`, [`${prefix}_${g}`]);
    const client = new pg.Client({ connectionString: env.db });
    await client.connect();
    try {
      await client.query('begin');
      await client.query('set local enable_seqscan = off');
      const rows = [];
      let after = null;
      for (;;) {
        const page = (await client.query('select public.tollgate_kept_to_retry($1, 200) as p', [after])).rows[0].p;
        rows.push(...page);
        if (page.length < 200) break;
        after = page[page.length - 1].cursor;
      }
      const ours = rows.filter((r) => r.event_id.startsWith(`${prefix}_`)).map((r) => Number(r.event_id.slice(prefix.length + 1)));
      const untried = Array.from({ length: 450 }, (_, i) => i + 1).filter((g) => ![7, 3, 5].includes(g));
      assert.deepEqual(ours, [...untried, 7, 3, 5], 'never tried by when kept, then by when last tried');
      assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'no row on two pages');
      const [scan] = (await client.query(
        `select seq_scan from pg_stat_xact_user_tables where schemaname = 'public' and relname = 'pending_webhook_events'`)).rows;
      assert.equal(Number(scan?.seq_scan ?? 0), 0, 'no sequential scan of the kept events');
    } finally {
      await client.query('rollback').catch(() => {});
      await client.end();
    }
  } finally {
    await resolveKept(prefix);
  }
});

/** The lines of `file` (empty when it does not exist yet). */
const linesOf = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : []);

test('a scheduled run counts every request it makes: the store calls the gateway answered, within SUBREQUESTS', async () => {
  const gateway = process.env.TOLLGATE_GATEWAY_LOG ?? path.join(env.repo, '.stack', 'gateway.log');
  const wranglerLog = process.env.TOLLGATE_WORKER_LOG ?? path.join(env.repo, '.stack', 'wrangler.log');
  const answered = () => linesOf(gateway).filter((l) => l.includes(' -> ') && l.endsWith(' ms)')).length;
  const reports = () => linesOf(wranglerLog).filter((l) => l.includes('scheduled: {'));
  // Work for the run: kept events it tries (one request each, after its page's read).
  const prefix = await keepUnreadable(30);
  try {
    const [before, told] = [answered(), reports().length];
    await runScheduled();
    let report;
    for (let i = 0; i < 50 && !report; i++) {
      const all = reports();
      if (all.length > told) report = JSON.parse(all[all.length - 1].slice(all[all.length - 1].indexOf('{')));
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(report, `the run's report is in ${wranglerLog}`);
    assert.equal(report.request_budget, 10000, 'the local stack runs with Workers Paid\'s subrequests');
    assert.ok(report.pending_retried >= 30, JSON.stringify(report));
    // Outbound webhooks go elsewhere; every other request is the store's.
    const outbound = report.webhooks_delivered + report.webhooks_failed;
    assert.equal(report.requests - outbound, answered() - before, JSON.stringify(report));
    assert.ok(report.requests <= report.request_budget, JSON.stringify(report));
  } finally {
    await resolveKept(prefix);
  }
});
