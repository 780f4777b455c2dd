// The scheduled handler (cron): expiry housekeeping and retries of kept events, triggered
// through wrangler dev's `/__scheduled` endpoint (`wrangler dev --test-scheduled`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, q, createUser, worker, postStripe, now, closeDb } from './helpers.mjs';
import { StripeSubscriber, DAY } from './events.mjs';

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
  // The trial converts: no longer a trial for the scan.
  assert.equal((await postStripe(s.subscription('customer.subscription.updated', { at: end, periodStart: end, periodEnd: end + 30 * DAY }))).status, 200);
  assert.deepEqual(await listed(), []);
  await runScheduled();
});
