// The store's hot paths read a subject's rows through indexes: loading a subject's state
// (every snapshot, webhook fold and charge) and charging usage must cost the same however
// many rows other subjects have, and a charge must not read its subject's whole ledger.
//
// Each check runs the SQL functions in one transaction with sequential scans disabled
// (the planner then takes any index path there is, whatever the table sizes) and reads
// that transaction's own table statistics (pg_stat_xact_user_tables), so nothing else
// running on the database can disturb it; the transaction is rolled back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { env, q, createUser, worker, userToken, postStripe, now, closeDb, id, chargeRows } from './helpers.mjs';
import { stripeOneTime } from './events.mjs';

after(closeDb);
const skip = env.catalog !== 'video-studio' && 'usage pricing lives in the video-studio catalog';

const SUBJECT_TABLES = [
  'billing_subjects', 'billing_customers', 'billing_subscriptions', 'cloud_entitlements',
  'credit_lot_terms', 'credit_lot_balances', 'credit_ledger', 'usage_preferences', 'usage_records', 'organizations', 'organization_members',
  'seat_allocations',
];

/** Runs `fn(client)` in a rolled-back transaction with sequential scans disabled and
 * returns the tables it scanned sequentially, with how often. On a connection of its own:
 * a pooled one may hold plans of the functions made earlier with sequential scans allowed
 * (a cached plan is not made again when a planner setting changes), which on these small
 * tables may scan one whole. */
async function seqScansOf(fn) {
  const client = new pg.Client({ connectionString: env.db });
  await client.connect();
  try {
    await client.query('begin');
    await client.query('set local enable_seqscan = off');
    await fn(client);
    const rows = (await client.query(
      `select relname, seq_scan from pg_stat_xact_user_tables where schemaname = 'public' and relname = any($1) and seq_scan > 0`,
      [SUBJECT_TABLES],
    )).rows;
    return Object.fromEntries(rows.map((r) => [r.relname, Number(r.seq_scan)]));
  } finally {
    await client.query('rollback').catch(() => {});
    await client.end();
  }
}

test('subject state and charges use indexes only (no table scan, no whole-ledger read)', { skip }, async () => {
  const uid = await createUser();
  const r = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 30 }));
  assert.equal(r.json?.status, 'applied', r.text);
  // Some history first: earlier charges.
  const keys = [id('idem'), id('idem'), id('idem')];
  const requestIds = [];
  for (const key of keys) {
    const c = await worker('POST', '/v1/usage/consume', {
      body: { model: 'standard', quality: 'watermark', seconds: 10 },
      headers: { authorization: `Bearer ${userToken(uid)}`, 'idempotency-key': key },
    });
    assert.equal(c.status, 200, c.text);
    requestIds.push(c.json.record.request_id);
  }
  // The user is also a member of an organization with a seat (the state's memberships).
  const [org] = await q(`insert into organizations (name, seat_count) values ('Store test', 2) returning id`);
  await q(`insert into organization_members (organization_id, user_id, role) values ($1, $2, 'member')`, [org.id, uid]);
  await q(`insert into seat_allocations (organization_id, user_id) values ($1, $2)`, [org.id, uid]);
  const [lot] = await q(`select key from credit_lots where user_id = $1 and remaining >= 10`, [uid]);
  assert.ok(lot, 'the purchase opened a lot');

  const user = { user_id: uid };
  const requestId = `user:${uid}:${'0'.repeat(32)}`; // the id chargeRows makes of key '0'
  const scans = await seqScansOf(async (c) => {
    const full = (await c.query('select public.tollgate_subject_state($1::jsonb) as s', [user])).rows[0].s;
    // The folds' entries only (the purchase's credit): charges are usage records, so a
    // state is read in the same time however many charges the subject made.
    assert.deepEqual(full.wallet.ledger.map((e) => e.kind), ['purchase'], JSON.stringify(full.wallet.ledger));
    assert.equal(full.memberships.length, 1);
    assert.equal(full.memberships[0].seat, true);
    // The statement: the credit and one entry per charge (`usage:<request id>:<lot>`).
    const statement = (await c.query(
      `select source_key, delta::int as delta from public.credit_statement where user_id = $1 order by at, source_key`, [uid])).rows;
    assert.equal(statement.length, 4, JSON.stringify(statement));
    assert.deepEqual(statement.filter((e) => e.source_key.startsWith('usage:')).map((e) => e.delta), [-10, -10, -10]);
    assert.ok(statement.some((e) => e.source_key === `usage:${requestIds[1]}:${lot.key}`), JSON.stringify(statement));
    const fresh = (await c.query('select public.tollgate_subject_state($1::jsonb, $2) as s', [user, `usage:${requestId}`])).rows[0].s;
    assert.deepEqual(fresh.wallet.ledger, [], 'a new request has no entries yet');
    const orgState = (await c.query('select public.tollgate_subject_state($1::jsonb) as s', [{ organization_id: org.id }])).rows[0].s;
    assert.equal(orgState.seats, 1);
    // What a webhook fold reads: the cluster's facts without charges, and their totals.
    const input = (await c.query('select public.tollgate_fold_input($1::text[]) as r', [[`user:${uid}`]])).rows[0].r;
    assert.ok(input.facts.every((f) => f.type !== 'usage'), 'charges reach a fold as totals');
    assert.equal(input.usage[`user:${uid}`][lot.key], 30, JSON.stringify(input.usage));
    const charged = (await c.query('select public.tollgate_charge($1::jsonb, $2::jsonb) as r', [user, chargeRows(uid, lot.key, '0', 10)])).rows[0].r;
    assert.equal(charged.status, 'charged', JSON.stringify(charged));
  });
  assert.deepEqual(scans, {}, `tables read whole: ${JSON.stringify(scans)}`);
});
