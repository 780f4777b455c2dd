// `cargo xtask bench`: the worker under `wrangler dev` (workerd) in front of the local
// stack (REST gateway + PostgreSQL), with the video-studio catalog.
//
// - baseline: GET /healthz, the same round trip through wrangler dev with no store work;
// - webhook latency: Stripe-signed deliveries (checkout, subscription created, invoice
//   paid) of fresh subscribers, one at a time: p50 / p99, and as a ratio to the baseline;
// - webhook throughput: the same stories, 16 subscribers in flight at once; a 503 (the
//   worker's answer when concurrent folds keep conflicting) is retried as Stripe retries;
// - consume: 50 concurrent clients charging one balance; requests per second, and the
//   balance, ledger and usage rows checked afterwards (zero lost updates);
// - CPU per request by process (bench/cpu.mjs) for the concurrent /healthz and consume
//   runs: what the worker, the gateway, PostgreSQL, wrangler dev's own plumbing and the
//   load client each spend, and what that allows on this machine's cores.
//
// The stack's coordinates come from the environment (set by `cargo xtask bench`); the
// signing and the event shapes are the end-to-end suite's (tests/e2e), with Stripe's own
// library signing every delivery.
//
// Usage: node bench/worker.bench.mjs [--quick]   (writes JSON to $BENCH_OUT when set)

import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import { cpuPerRequest, findStack } from './cpu.mjs';
import { stats, timed } from './stats.mjs';

import { createUser, closeDb, id, now, postStripe, postStripeUntilAccepted, q, userToken, worker } from '../tests/e2e/helpers.mjs';
import { StripeSubscriber, stripeOneTime, DAY } from '../tests/e2e/events.mjs';

const QUICK = process.argv.includes('--quick');
const SUBSCRIBERS = QUICK ? 20 : 100;
const CONCURRENT_STORIES = 16;
const CLIENTS = 50;
const PER_CLIENT = QUICK ? 6 : 30;
const UNITS = 10;



function story(uid, t0) {
  const s = new StripeSubscriber({ subject: { user_id: uid }, offer: 'VIDEO_PRO_MONTHLY', start: t0 });
  return [s.checkout(), s.created(), s.invoicePaid({ at: t0 + 1, periodStart: t0, periodEnd: t0 + 30 * DAY })];
}

async function deliver(ev) {
  const [ms, r] = await timed(() => postStripe(ev));
  if (r.status !== 200 || r.json?.status !== 'applied') {
    throw new Error(`${ev.type}: ${r.status} ${r.text}`);
  }
  return ms;
}

/** Delivers like Stripe (a 5xx answer is retried after 50 ms, 100 ms, ...) and counts
 * the retries; a retried delivery may find its first attempt applied. */
let retried = 0;
async function deliverWithRetries(ev) {
  const r = await postStripeUntilAccepted(ev, { backoffMs: 50 });
  retried += r.retries;
  if (!(r.json?.status === 'applied' || (r.retries > 0 && r.json?.status === 'duplicate'))) {
    throw new Error(`${ev.type}: ${r.status} ${r.text}`);
  }
}

const out = {};
try {
  // Warm-up: the first requests compile and connect.
  for (let i = 0; i < 20; i++) await worker('GET', '/healthz');
  const warm = await createUser();
  for (const ev of story(warm, now() - 60)) await deliver(ev);

  // Baseline.
  const health = [];
  for (let i = 0; i < 300; i++) {
    const [ms, r] = await timed(() => worker('GET', '/healthz'));
    if (r.status !== 200) throw new Error(`/healthz: ${r.status}`);
    health.push(ms);
  }
  out.healthz = stats(health);
  const stack = () => findStack({
    restPort: new URL(process.env.TOLLGATE_REST_URL).port,
    workerPort: new URL(process.env.TOLLGATE_WORKER_URL).port,
    pgData: process.env.TOLLGATE_PG_DATA,
  });
  out.cores = availableParallelism();
  // The ceiling of this setup: GET /healthz from as many concurrent clients as consume
  // uses (wrangler dev's proxy and workerd, no store work).
  {
    const n = CLIENTS * (QUICK ? 6 : 20);
    let left = n;
    const { result: [wall], cpu } = await cpuPerRequest(stack, n, () => timed(() =>
      Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (left-- > 0) {
            const r = await worker('GET', '/healthz');
            if (r.status !== 200) throw new Error(`/healthz: ${r.status}`);
          }
        }),
      ),
    ));
    out.healthz_concurrent = { clients: CLIENTS, requests: n, per_second: n / (wall / 1000), cpu };
  }

  // Webhook latency, one delivery at a time.
  const users = [];
  for (let i = 0; i < SUBSCRIBERS; i++) users.push(await createUser());
  const lat = [];
  const t0 = now() - 3600;
  for (const uid of users) for (const ev of story(uid, t0)) lat.push(await deliver(ev));
  out.webhook = stats(lat);

  // Webhook throughput: stories of fresh subscribers, several in flight.
  const more = [];
  for (let i = 0; i < SUBSCRIBERS; i++) more.push(await createUser());
  const queue = [...more];
  const [wall] = await timed(() =>
    Promise.all(
      Array.from({ length: CONCURRENT_STORIES }, async () => {
        for (let uid = queue.shift(); uid; uid = queue.shift()) for (const ev of story(uid, t0)) await deliverWithRetries(ev);
      }),
    ),
  );
  out.webhook_throughput = {
    deliveries: more.length * 3, seconds: wall / 1000, per_second: (more.length * 3) / (wall / 1000),
    in_flight: CONCURRENT_STORIES, retried_5xx: retried,
  };
  const grants = await q(`select count(*)::int as n from cloud_entitlements where user_id = any($1)`, [[...users, ...more]]);
  if (grants[0].n !== users.length + more.length) throw new Error(`expected one grant per subscriber, found ${grants[0].n}`);

  // Consume: one balance, 50 clients.
  const uid = await createUser();
  for (let i = 0; i < 3; i++) {
    const r = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_5_HOURS', at: now() - 60 + i }));
    if (r.json?.status !== 'applied') throw new Error(`token purchase: ${r.text}`);
  }
  const balance = async () =>
    Number((await q(`select coalesce(sum(available), 0)::bigint as a from credit_balances where user_id = $1 and pool = 'video_seconds'`, [uid]))[0].a);
  const before = await balance();
  const auth = { authorization: `Bearer ${userToken(uid, { exp: now() + 3600 })}` };
  const body = { model: 'standard', quality: 'watermark', seconds: UNITS };
  // Baseline: the same requests from one client, one at a time.
  const seqLat = [];
  const SEQUENTIAL = QUICK ? 20 : 100;
  const [swall] = await timed(async () => {
    for (let i = 0; i < SEQUENTIAL; i++) {
      const [ms, r] = await timed(() => worker('POST', '/v1/usage/consume', { body, headers: { ...auth, 'idempotency-key': id('seq') } }));
      if (r.status !== 200 || r.json?.status !== 'charged') throw new Error(`consume: ${r.status} ${r.text}`);
      seqLat.push(ms);
    }
  });
  out.consume_sequential = { requests: SEQUENTIAL, per_second: SEQUENTIAL / (swall / 1000), latency: stats(seqLat) };
  // /v1/check and /v1/track on the same balance, one at a time: a check against the
  // baseline, a track (a charge of credits) against consume.
  const checkLat = [];
  const trackLat = [];
  const oneCallLat = [];
  const pool = { feature: 'video_seconds', quantity: UNITS };
  for (let i = 0; i < SEQUENTIAL; i++) {
    // The floor of any route that reads the store: GET /v1/usage makes one light store call
    // (a day-by-day sum over an empty range), so what a check costs beyond it is its own.
    const [ums, u] = await timed(() => worker('GET', '/v1/usage?feature=video_seconds&from=2020-01-01&to=2020-01-02', { headers: auth }));
    if (u.status !== 200) throw new Error(`usage: ${u.status} ${u.text}`);
    oneCallLat.push(ums);
    const [cms, c] = await timed(() => worker('POST', '/v1/check', { body: pool, headers: auth }));
    if (c.status !== 200 || c.json?.allowed !== true) throw new Error(`check: ${c.status} ${c.text}`);
    checkLat.push(cms);
    const [tms, t] = await timed(() => worker('POST', '/v1/track', { body: pool, headers: { ...auth, 'idempotency-key': id('trk') } }));
    if (t.status !== 200 || t.json?.allowed !== true) throw new Error(`track: ${t.status} ${t.text}`);
    trackLat.push(tms);
  }
  out.one_store_call = { latency: stats(oneCallLat), ratio: stats(oneCallLat).p50 / out.healthz.p50 };
  out.check = { latency: stats(checkLat), ratio: stats(checkLat).p50 / out.healthz.p50, budget: 1.5,
                vs_one_store_call: stats(checkLat).p50 / stats(oneCallLat).p50 };
  out.track = { latency: stats(trackLat), ratio: stats(trackLat).p50 / out.consume_sequential.latency.p50, budget: 1.2 };
  const start = await balance();
  const consumeLat = [];
  const failures = [];
  const retries = {};
  const outcomes = { charged: 0, replayed: 0 };
  const { result: [cwall], cpu: consumeCpu } = await cpuPerRequest(stack, CLIENTS * PER_CLIENT, () => timed(() =>
    Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < PER_CLIENT; i++) {
          // A client retries a 5xx or a dropped connection with the same Idempotency-Key:
          // the request is charged once whatever happens.
          const key = id('bench');
          const [ms, r] = await timed(async () => {
            for (let attempt = 0; ; attempt++) {
              let res;
              try {
                res = await worker('POST', '/v1/usage/consume', { body, headers: { ...auth, 'idempotency-key': key } });
              } catch (e) {
                res = { status: 0, text: String(e.cause?.code ?? e.message) };
              }
              if ((res.status < 500 && res.status !== 0) || attempt >= 20) return res;
              retries[res.status === 0 ? 'connection' : res.status] = (retries[res.status === 0 ? 'connection' : res.status] ?? 0) + 1;
              await new Promise((done) => setTimeout(done, 50 * (attempt + 1)));
            }
          });
          consumeLat.push(ms);
          if (r.status !== 200 || !['charged', 'replayed'].includes(r.json?.status)) failures.push(`${r.status} ${r.text}`);
          else outcomes[r.json.status] += 1;
        }
      }),
    ),
  ));
  const requests = CLIENTS * PER_CLIENT;
  const after = await balance();
  const usage = await q(`select count(*)::int as n, coalesce(sum(units), 0)::int as u from usage_records where user_id = $1`, [uid]);
  const ledger = await q(`select coalesce(sum(delta), 0)::bigint as s from credit_statement where user_id = $1 and pool = 'video_seconds'`, [uid]);
  const lost = start - requests * UNITS - after;
  out.consume = {
    clients: CLIENTS,
    requests,
    seconds: cwall / 1000,
    per_second: requests / (cwall / 1000),
    latency: stats(consumeLat),
    failures: failures.length,
    balance_before: start,
    balance_after: after,
    usage_rows: usage[0].n,
    ledger_sum: Number(ledger[0].s),
    lost_updates: lost,
    outcomes,
    retries,
    cpu: consumeCpu,
  };
  if (failures.length) throw new Error(`${failures.length} consumes failed, e.g. ${failures[0]}`);
  const total = requests + 2 * SEQUENTIAL; // with the one-at-a-time consumes and tracks
  if (lost !== 0 || before - total * UNITS !== after || usage[0].n !== total || usage[0].u !== total * UNITS || Number(ledger[0].s) !== after) {
    throw new Error(`lost updates: ${JSON.stringify(out.consume)}`);
  }
} finally {
  await closeDb();
}

const f = (x) => x.toFixed(1);
const h = out.healthz;
const w = out.webhook;
const c = out.consume;
console.log(`worker through wrangler dev + REST gateway + PostgreSQL (ms, ${process.env.TOLLGATE_WORKER_URL})`);
console.log(`  GET /healthz (baseline)            p50 ${f(h.p50)}  p99 ${f(h.p99)}  (n=${h.n})`);
const hc = out.healthz_concurrent;
console.log(`  GET /healthz, ${hc.clients} clients (ceiling)  ${f(hc.per_second)} requests/s (${hc.requests})`);
console.log(`  webhook delivery, one at a time    p50 ${f(w.p50)}  p99 ${f(w.p99)}  (n=${w.n})  = ${f(w.p50 / h.p50)}x / ${f(w.p99 / h.p99)}x the baseline`);
const wt = out.webhook_throughput;
console.log(`  webhook throughput, ${wt.in_flight} in flight     ${f(wt.per_second)} deliveries/s (${wt.deliveries} in ${f(wt.seconds)} s; ${wt.retried_5xx} answers were 503 and retried, as Stripe would)`);
const cs = out.consume_sequential;
console.log(`  consume, one client (baseline)     ${f(cs.per_second)} requests/s (${cs.requests}), p50 ${f(cs.latency.p50)} p99 ${f(cs.latency.p99)}`);
console.log(`  POST /v1/check, one client         p50 ${f(out.check.latency.p50)} = ${out.check.ratio.toFixed(2)}x GET /healthz (budget 1.5x: ${out.check.ratio <= 1.5 ? 'met' : 'NOT met'})`);
console.log(`  GET /v1/usage (one light store call) p50 ${f(out.one_store_call.latency.p50)} = ${out.one_store_call.ratio.toFixed(2)}x GET /healthz: the floor of a route that reads the store; /v1/check = ${out.check.vs_one_store_call.toFixed(2)}x it`);
console.log(`  POST /v1/track, one client         p50 ${f(out.track.latency.p50)} = ${out.track.ratio.toFixed(2)}x consume (budget 1.2x: ${out.track.ratio <= 1.2 ? 'met' : 'NOT met'})`);
console.log(`  consume, ${c.clients} concurrent clients     ${f(c.per_second)} requests/s (${c.requests} in ${f(c.seconds)} s) = ${(c.per_second / hc.per_second).toFixed(2)}x the ceiling, p50 ${f(c.latency.p50)} p99 ${f(c.latency.p99)}; budget 500/s: ${c.per_second >= 500 ? 'met' : 'NOT met'}`);
console.log(`  consume answers                    ${c.outcomes.charged} charged, ${c.outcomes.replayed} replayed after a retry; retried: ${JSON.stringify(c.retries)}`);
console.log(`  consume correctness                ${c.balance_before} - ${c.requests} x ${UNITS} = ${c.balance_after} s; ${c.usage_rows} usage rows in all; ledger sum ${c.ledger_sum}; lost updates: ${c.lost_updates}`);
const cpuLine = (label, x) => {
  const parts = Object.entries(x.cpu.per_request_ms).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  console.log(`  CPU per request, ${label.padEnd(22)} ${x.cpu.total_ms.toFixed(2)} ms = ${parts}; ${out.cores} cores allow at most ${f((out.cores * 1000) / x.cpu.total_ms)}/s`);
};
cpuLine('GET /healthz', hc);
cpuLine('consume', c);
if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(out, null, 2));
