// `cargo xtask bench`: the store's money path, each figure against a baseline measured in
// the same run on the same database.
//
// - charge: `tollgate_charge` called directly against PostgreSQL by 50 concurrent clients,
//   all drawing on one lot (one balance), in charges per second; the baseline is a bare
//   `UPDATE ... SET v = v - 1 WHERE id = 1 AND v >= 1` on one row, from the same 50 clients.
//   Both serialize on one row lock; the budget is the charge within 3x the baseline.
//   Three rounds of each, alternating; the medians are compared. The load comes from
//   pgbench (PostgreSQL's own client, in C, so on these 2 cores the figure is the
//   database's work) and, as a second figure, from 50 node-postgres clients in this
//   process, whose own CPU (building each charge's JSON) competes with the server's.
// - fold: a webhook (a token purchase) delivered through the worker to a subject with 1
//   earlier charge and to one with 10,000: the fold reads the charges as per-lot totals, so
//   its cost must not grow with them (budget: within 1.5x).
//
// Usage: node bench/store.bench.mjs [--quick]   (writes JSON to $BENCH_OUT when set)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { median, stats } from './stats.mjs';

import { chargeRows, createUser, closeDb, env, id, now, postStripe, q, worker } from '../tests/e2e/helpers.mjs';
import { stripeOneTime } from '../tests/e2e/events.mjs';

// The PostgreSQL client the end-to-end suite installs (tests/e2e/node_modules).
const pg = createRequire(new URL('../tests/e2e/package.json', import.meta.url))('pg');

const QUICK = process.argv.includes('--quick');
const CLIENTS = 50;
const SECONDS = QUICK ? 2 : 5;
const ROUNDS = 3;
const FOLDS = QUICK ? 8 : 30;
const MANY = 10_000;
const SEQUENTIAL = QUICK ? 200 : 1000;


/** `CLIENTS` connections each running `sql(client, i)` in a loop for `SECONDS`: per second. */
async function throughput(sql) {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, async () => {
    const c = new pg.Client({ connectionString: env.db });
    await c.connect();
    return c;
  }));
  let done = 0;
  const until = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(clients.map(async (c, k) => {
    for (let i = 0; performance.now() < until; i++) {
      await sql(c, `${k}_${i}`);
      done++;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  await Promise.all(clients.map((c) => c.end()));
  return { ops: done, per_second: done / secs };
}

/** A user holding one big lot: an operator's credit, given through the worker. */
async function userWithLot() {
  const uid = await createUser();
  const r = await worker('POST', '/v1/admin/grants', {
    body: { user_id: uid, credits: [{ pool: 'video_seconds', amount: 1_000_000_000_000, id: id('bench') }] },
    headers: { authorization: `Bearer ${env.adminSecret}` },
  });
  if (r.status !== 201) throw new Error(`admin credit: ${r.status} ${r.text}`);
  const [lot] = await q('select key from credit_lots where user_id = $1', [uid]);
  return { uid, lot: lot.key };
}

/**
 * The same comparison with pgbench as the load: `CLIENTS` connections, `SECONDS` per round,
 * rounds alternating, medians. `before`: the charges the lot has taken so far, to check
 * that every committed charge took exactly its unit.
 */
function pgbenchCharge(uid, lot, before) {
  const bin = process.env.TOLLGATE_PGBENCH ?? 'pgbench';
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-pgbench-'));
  const run = (name, sql) => {
    const file = join(dir, `${name}.sql`);
    writeFileSync(file, sql);
    const text = execFileSync(bin, ['-n', '-M', 'simple', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-f', file, env.db], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tps = Number(/^tps = ([0-9.]+)/m.exec(text)?.[1]);
    const done = Number(/number of transactions actually processed: (\d+)/.exec(text)?.[1]);
    const failed = Number(/number of failed transactions: (\d+)/.exec(text)?.[1] ?? 0);
    if (!(tps > 0) || failed) throw new Error(`pgbench ${name}: ${text}`);
    return { per_second: tps, ops: done };
  };
  const charge = (round) => {
    const record = { units: 1, model: 'standard', quality: 'watermark', pool: 'video_seconds', cost_minor: 1, overage_minor: 0, overage_units: 0, currency: 'usd' };
    // Each transaction its own request id: the client, the round and a random number.
    const head = JSON.stringify({ request_hash: 'direct', takes: [{ lot, units: 1 }], record }).slice(0, -1);
    return `\\set r random(1, 1000000000000000)\n` +
      `select public.tollgate_charge('${JSON.stringify({ user_id: uid })}'::jsonb, ` +
      `('${head},"request_id":"user:${uid}:pgbench${round}:' || :client_id || ':' || :r || '"}')::jsonb);\n`;
  };
  try {
    const bares = [], charges = [];
    for (let round = 0; round < ROUNDS; round++) {
      bares.push(run('bare', 'update bench_counter set v = v - 1 where id = 1 and v >= 1;\n'));
      charges.push(run(`charge${round}`, charge(round)));
    }
    const bare = { per_second: median(bares.map((x) => x.per_second)), rounds: bares };
    const charged = { per_second: median(charges.map((x) => x.per_second)), rounds: charges };
    return { clients: CLIENTS, bare, charge: charged, ratio: bare.per_second / charged.per_second, before, charges: charges.reduce((n, x) => n + x.ops, 0) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const out = {};
try {
  // ---- charge vs bare UPDATE, 50 clients, one row
  await q('create table if not exists bench_counter (id int primary key, v bigint not null)');
  await q('insert into bench_counter values (1, 1000000000000) on conflict (id) do update set v = excluded.v');
  const bareSql = (c) => c.query('update bench_counter set v = v - 1 where id = 1 and v >= 1');
  const { uid, lot } = await userWithLot();
  // One client, one at a time: what each costs without waiting for a lock.
  const one = new pg.Client({ connectionString: env.db });
  await one.connect();
  const seq = async (f) => {
    const t = performance.now();
    for (let i = 0; i < SEQUENTIAL; i++) await f(i);
    return ((performance.now() - t) * 1000) / SEQUENTIAL;
  };
  const bareUs = await seq(() => bareSql(one));
  const chargeUs = await seq((i) =>
    one.query('select public.tollgate_charge($1::jsonb, $2::jsonb) as r', [{ user_id: uid }, chargeRows(uid, lot, `s${i}`)]));
  await one.end();
  // Rounds of each in turn, so a drift of the machine's load touches both alike; the
  // figures are the rounds' medians.
  const bares = [], charges = [];
  for (let round = 0; round < ROUNDS; round++) {
    bares.push(await throughput(bareSql));
    charges.push(await throughput((c, key) =>
      c.query('select public.tollgate_charge($1::jsonb, $2::jsonb) as r', [{ user_id: uid }, chargeRows(uid, lot, `r${round}_${key}`)])));
  }
  const bare = { per_second: median(bares.map((x) => x.per_second)), rounds: bares };
  const charged = { per_second: median(charges.map((x) => x.per_second)), rounds: charges };
  const ops = charges.reduce((n, x) => n + x.ops, 0);
  const [{ used }] = await q('select used from credit_lots where user_id = $1', [uid]);
  if (Number(used) !== ops + SEQUENTIAL) throw new Error(`lost updates: ${used} used, ${ops + SEQUENTIAL} charges`);
  out.charge = {
    clients: CLIENTS, bare, charge: charged, ratio: bare.per_second / charged.per_second, budget: 3,
    sequential_us: { bare: bareUs, charge: chargeUs, ratio: chargeUs / bareUs },
    pgbench: pgbenchCharge(uid, lot, ops + SEQUENTIAL),
  };
  const [{ used: after }] = await q('select used from credit_lots where user_id = $1', [uid]);
  const want = out.charge.pgbench.before + out.charge.pgbench.charges;
  if (Number(after) !== want) throw new Error(`lost updates under pgbench: ${after} used, ${want} charges`);

  // ---- a webhook fold with 1 and with 10,000 earlier charges
  const few = await userWithLot();
  await q('select public.tollgate_charge($1::jsonb, $2::jsonb)', [{ user_id: few.uid }, chargeRows(few.uid, few.lot, 'one')]);
  const many = await userWithLot();
  const c = new pg.Client({ connectionString: env.db });
  await c.connect();
  await c.query('begin');
  for (let i = 0; i < MANY; i++) {
    await c.query('select public.tollgate_charge($1::jsonb, $2::jsonb)', [{ user_id: many.uid }, chargeRows(many.uid, many.lot, `m${i}`)]);
  }
  await c.query('commit');
  await c.end();
  const fold = async (u) => {
    const ms = [];
    for (let i = 0; i < FOLDS; i++) {
      const ev = stripeOneTime({ subject: { user_id: u.uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 60 });
      const t = performance.now();
      const r = await postStripe(ev);
      ms.push(performance.now() - t);
      if (r.json?.status !== 'applied') throw new Error(`fold: ${r.status} ${r.text}`);
    }
    return stats(ms);
  };
  // Alternate, so a change of the machine's load touches both sides alike.
  const a = [], b = [];
  for (let round = 0; round < 2; round++) {
    a.push(await fold(few));
    b.push(await fold(many));
  }
  const p50 = (xs) => xs.map((x) => x.p50).sort((x, y) => x - y)[0];
  out.fold = { charges: [1, MANY], p50_ms: [p50(a), p50(b)], ratio: p50(b) / p50(a), budget: 1.5 };
  const [{ n }] = await q(`select count(*)::int as n from usage_records where user_id = $1`, [many.uid]);
  if (n !== MANY + 0) throw new Error(`expected ${MANY} charges, found ${n}`);
} finally {
  await closeDb();
}

const f = (x) => x.toFixed(1);
console.log(`  charge (tollgate_charge, ${CLIENTS} clients, one lot)  ${f(out.charge.charge.per_second)}/s; bare UPDATE ${f(out.charge.bare.per_second)}/s = ${out.charge.ratio.toFixed(2)}x (budget 3x: ${out.charge.ratio <= 3 ? 'met' : 'NOT met'})`);
console.log(`  one client, one at a time              charge ${f(out.charge.sequential_us.charge)} µs, bare UPDATE ${f(out.charge.sequential_us.bare)} µs = ${out.charge.sequential_us.ratio.toFixed(2)}x`);
console.log(`  webhook fold, 1 vs ${MANY} charges           p50 ${f(out.fold.p50_ms[0])} ms vs ${f(out.fold.p50_ms[1])} ms = ${out.fold.ratio.toFixed(2)}x (budget 1.5x: ${out.fold.ratio <= 1.5 ? 'met' : 'NOT met'})`);
if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(out, null, 2));
