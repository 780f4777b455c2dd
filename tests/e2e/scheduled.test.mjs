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
  await q(`update credit_lot_balances b set closed = false, remaining = t.granted, expired = 0
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
