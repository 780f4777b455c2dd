// A migration that moves rows, applied to a database that holds some: what the rows said
// before, they say after. A scratch database on the local cluster gets the bootstrap and
// every migration before 20261206009000 (which splits a credit lot into its terms and its
// balance), then lots and a charge written by the functions of that time, then the split
// and everything after it. Every lot reads the same through `credit_lots`, and the
// functions of now charge and release on the moved rows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { env, uuid } from './helpers.mjs';

const onlyOnce = env.catalog !== 'vcm-suite' && 'catalog-independent; runs in the vcm-suite pass';
const dir = new URL('../../supabase/', import.meta.url);
const SPLIT = '20261206009000';
const NAME = 'tollgate_migrations_test';
const migrations = readdirSync(new URL('migrations/', dir)).filter((f) => f.endsWith('.sql')).sort();
const apply = (c, file) => c.query(readFileSync(new URL(file, dir), 'utf8'));

let admin, c;
before(async () => {
  if (onlyOnce) return;
  admin = new pg.Client({ connectionString: env.db });
  await admin.connect();
  await admin.query(`drop database if exists ${NAME}`);
  await admin.query(`create database ${NAME}`);
  const url = new URL(env.db);
  url.pathname = `/${NAME}`;
  c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  await c.query('set client_min_messages = warning');
  await apply(c, 'bootstrap/00_supabase_local.sql');
  for (const f of migrations.filter((f) => f < SPLIT)) await apply(c, `migrations/${f}`);
});
after(async () => {
  await c?.end();
  if (admin) {
    await admin.query(`drop database if exists ${NAME}`);
    await admin.end();
  }
});

const lots = async () => (await c.query(`select to_jsonb(l) as l from public.credit_lots l order by l.id`)).rows.map((r) => r.l);
const charge = (uid, lot, request, units, hold) => c.query(
  `select public.tollgate_charge($1::jsonb, $2::jsonb) as r`,
  [{ user_id: uid }, {
    request_id: `user:${uid}:${request}`, request_hash: request, takes: [{ lot, units }],
    record: { units, model: 'standard', quality: 'hd', pool: 'video_seconds', cost_minor: 0, overage_minor: 0, overage_units: 0, currency: 'usd' },
    ...(hold ? { hold_until: new Date(Date.now() + 3_600_000).toISOString() } : {}),
  }],
).then((x) => x.rows[0].r);

test('the split of credit lots into terms and balances keeps every lot as it was', { skip: onlyOnce }, async () => {
  const uid = uuid();
  await c.query(`insert into auth.users (id) values ($1)`, [uid]);
  await c.query(`insert into public.credit_lots (user_id, key, pool, kind, granted, remaining, valid_from, valid_to, source,
                   revoked, expired, closed, catalog_version)
                 values ($1, 'purchase:a', 'video_seconds', 'purchase', 1000, 1000, now() - interval '1 day', null, 'stripe:evt_a', 0, 0, false, 2),
                        ($1, 'allowance:b', 'video_seconds', 'allowance', 500, 0, now() - interval '40 days', now() - interval '10 days',
                         'stripe:evt_b', 100, 400, true, null)`, [uid]);
  // Written by the functions of the time: a charge, and a hold released again.
  assert.equal((await charge(uid, 'purchase:a', 'one', 30)).status, 'charged');
  const held = await charge(uid, 'purchase:a', 'two', 20, true);
  const released = await c.query(`select public.tollgate_release($1::jsonb, $2::uuid) as r`, [{ user_id: uid }, held.usage_id]);
  assert.equal(released.rows[0].r.status, 'released');
  const was = await lots();
  assert.equal(was.length, 2);
  assert.deepEqual(was.map((l) => [l.key, l.remaining, l.used, l.released]), [['purchase:a', 970, 30, 20], ['allowance:b', 0, 0, 0]]);

  for (const f of migrations.filter((f) => f >= SPLIT)) await apply(c, `migrations/${f}`);

  assert.deepEqual(await lots(), was, 'every lot reads as it did, column for column');
  const kind = await c.query(`select relkind from pg_class where oid = 'public.credit_lots'::regclass`);
  assert.equal(kind.rows[0].relkind, 'v', 'credit_lots is now the view of terms and balances');
  // The expiry scan still finds open lapsed lots through the index of open lots only.
  const idx = await c.query(`select tablename, indexdef from pg_indexes where indexname = 'credit_lots_open_valid_to_idx'`);
  assert.equal(idx.rows[0]?.tablename, 'credit_lot_terms');
  assert.match(idx.rows[0].indexdef, /NOT closed/);
  // The functions of now, on the moved rows.
  const r = await charge(uid, 'purchase:a', 'three', 70);
  assert.equal(r.status, 'charged');
  assert.deepEqual(r.lots, { 'purchase:a': 900 });
  const closed = await charge(uid, 'allowance:b', 'four', 1).then(() => null, (e) => e);
  assert.equal(closed?.hint, 'lot_short', 'a closed lot takes nothing');
  const bal = await c.query(`select available from public.credit_balances where user_id = $1`, [uid]);
  assert.equal(Number(bal.rows[0].available), 900);
  const after = await lots();
  assert.deepEqual(after.map((l) => [l.key, l.remaining, l.used, l.released, l.expired, l.closed]),
    [['purchase:a', 900, 100, 20, 0, false], ['allowance:b', 0, 0, 0, 400, true]]);
});
