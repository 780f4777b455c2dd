// The WebAssembly side of the core benchmark (`cargo xtask bench`): the crate in
// bench/core built for wasm32 and bound with wasm-bindgen (--target web), loaded
// in Node with initSync, timed exactly like the native side (src/main.rs).
// Prints one JSON line: {"host":"wasm","bytes":N,"ns_per_op":[...one per round]}.
//
// Usage: node bench/core.bench.mjs <dir with tollgate_bench_core.js and _bg.wasm>

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? '');
const mod = await import(pathToFileURL(join(dir, 'tollgate_bench_core.js')).href);
mod.initSync({ module: readFileSync(join(dir, 'tollgate_bench_core_bg.wasm')) });

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ms = () => Number(process.hrtime.bigint()) / 1e6;

const bytes = mod.setup();
let sink = 0;
let batch = 1;
for (;;) {
  const t = ms();
  sink ^= mod.run(batch);
  if (ms() - t >= 10) break;
  batch *= 2;
}
const perOp = [];
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.hrtime.bigint();
  const end = ms() + ROUND_MS;
  let n = 0;
  do {
    sink ^= mod.run(batch);
    n += batch;
  } while (ms() < end);
  perOp.push(Number(process.hrtime.bigint() - t0) / n);
}
console.log(JSON.stringify({ host: 'wasm', node: process.version, bytes, sink, ns_per_op: perOp.map((x) => Math.round(x * 10) / 10) }));
