// `cargo xtask bench catalog`: what serving the catalog as data costs a request on a warm
// isolate. One phase per run (`--phase embedded` while the store holds no version of the
// worker's catalog, `--phase stored` after one was pushed and activated): `GET /healthz` and
// `POST /v1/check` taken in turns, one at a time, so the check's p50 reads as a ratio to the
// same run's round trip; xtask compares the two phases' ratios. The store calls each warm
// check makes are counted from the REST gateway's log, as is (by xtask) a cold isolate's
// first request.
//
// Usage: node bench/catalog.bench.mjs --phase embedded|stored   (JSON to $BENCH_OUT)

import { readFileSync, writeFileSync } from 'node:fs';

import { closeDb, createUser, userToken, worker } from '../tests/e2e/helpers.mjs';
import { stats, timed } from './stats.mjs';

const phase = process.argv[process.argv.indexOf('--phase') + 1];
if (!['embedded', 'stored'].includes(phase)) throw new Error('--phase embedded|stored');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);
const LOG = process.env.TOLLGATE_GATEWAY_LOG;
const calls = () => readFileSync(LOG, 'utf8').split('\n').filter((l) => / -> \d{3} \(/.test(l)).length;



try {
  const uid = await createUser();
  const headers = { authorization: `Bearer ${userToken(uid)}` };
  const body = { feature: 'ai_generation' };
  const served = (await worker('GET', '/healthz')).json?.catalog ?? {};
  if ((phase === 'stored') !== (served.store_version != null)) {
    throw new Error(`phase ${phase}, but the worker serves ${JSON.stringify(served)}`);
  }
  // Warm the isolate (and the subject's state) first.
  for (let i = 0; i < 20; i++) await worker('POST', '/v1/check', { body, headers });
  const before = calls();
  const checks = [];
  const healths = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [hms, h] = await timed(() => worker('GET', '/healthz'));
    if (h.status !== 200) throw new Error(`healthz: ${h.status}`);
    healths.push(hms);
    const [cms, c] = await timed(() => worker('POST', '/v1/check', { body, headers }));
    if (c.status !== 200) throw new Error(`check: ${c.status} ${c.text}`);
    checks.push(cms);
  }
  const out = {
    phase,
    store_version: served.store_version ?? null,
    rounds: ROUNDS,
    healthz_p50: stats(healths).p50,
    check_p50: stats(checks).p50,
    ratio: stats(checks).p50 / stats(healths).p50,
    store_calls_per_check: (calls() - before) / ROUNDS,
  };
  console.log(JSON.stringify(out));
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(out, null, 2));
} finally {
  await closeDb();
}
