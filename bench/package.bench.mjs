// `cargo xtask bench` (run after the package is built): the npm package under
// Node against a plain-JavaScript implementation of the VCM Suite's original
// hasAccess on the same data, every figure measured in this one run and reported
// as a ratio to that baseline, plus the gzipped size of the .wasm and what the
// module weighs when it keeps only the exports one use calls (binaryen's
// wasm-metadce drops the rest, then wasm-opt with the build's own options): the
// least a module carrying exactly that use's code could weigh.
//
// Usage: node bench/package.bench.mjs [--quick]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { Engine, hasAccess, loadCatalog, useCatalog } from '../pkg/node.js';

const QUICK = process.argv.includes('--quick');
const ROUND_MS = QUICK ? 60 : 300;
const ROUNDS = QUICK ? 3 : 7;
const WASM = new URL('../pkg/tollgate_bg.wasm', import.meta.url);
const BUDGET_GZIP = 96 * 1024;
// The VCM Suite catalog as `cargo xtask build` writes it for the repository's tests
// (the package carries none): what an app would fetch from GET /v1/catalog.
const CATALOG = loadCatalog(readFileSync(new URL('../target/catalogs/vcm-suite.json', import.meta.url), 'utf8'));
useCatalog(CATALOG);

// ------------------------------------------------------------------ the baseline: the VCM Suite's original hasAccess, as written there

const TIER_ORDER = ['free', 'basic', 'pro', 'enterprise'];

function originalHasAccess(entitlements, cloud, required) {
  if (!entitlements || entitlements.length === 0) return false;
  const record = entitlements.find((e) => e.cloud_id === cloud && e.status === 'active');
  if (!record) return false;
  return TIER_ORDER.indexOf(record.tier) >= TIER_ORDER.indexOf(required);
}

// ------------------------------------------------------------------ the data: one user's rows

const NOW = Date.parse('2026-03-01T00:00:00Z');
const rows = [
  { id: 'r1', user_id: 'u1', cloud_id: 'video', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00+00:00', valid_to: '2026-04-01T00:00:00+00:00' },
  { id: 'r2', user_id: 'u1', cloud_id: 'writing', tier: 'pro', source: 'bundle', status: 'active', valid_from: '2026-02-01T00:00:00+00:00', valid_to: null },
  { id: 'r3', user_id: 'u1', cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-02-15T00:00:00+00:00', valid_to: '2026-03-15T00:00:00+00:00' },
];
// The same rows as grants, for the stateful engine.
const grants = rows.map((r) => ({
  id: r.id,
  product: r.cloud_id,
  tier: r.tier,
  source: r.source,
  status: r.status,
  valid_from: r.valid_from,
  valid_to: r.valid_to,
}));

// New rows on every call: a new array each time (the copy is part of the time, as
// a fetch would make one), cycling through distinct rows (own ids and ends).
const FRESH = 1 << 12;
const freshRows = Array.from({ length: FRESH }, (_, i) =>
  rows.map((r) => ({ ...r, id: `${r.id}-${i}`, valid_to: r.valid_to && `2026-04-${String(1 + (i % 28)).padStart(2, '0')}T00:00:00+00:00` })),
);
let fresh = 0;

// ------------------------------------------------------------------ measuring

let sink = 0;

/** Median ns per call of `fn` over several timed rounds. */
function measure(fn) {
  const warm = performance.now() + ROUND_MS;
  while (performance.now() < warm) for (let i = 0; i < 1000; i++) sink ^= fn() ? 1 : 0;
  const results = [];
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    const end = performance.now() + ROUND_MS;
    do {
      for (let i = 0; i < 1000; i++) sink ^= fn() ? 1 : 0;
      n += 1000;
    } while (performance.now() < end);
    results.push(Number(process.hrtime.bigint() - t0) / n);
  }
  results.sort((a, b) => a - b);
  return results[results.length >> 1];
}

// Every implementation must give the same answers on this data before it is timed.
const engine = new Engine(CATALOG, grants);
const pi = engine.productIndex('creation');
const ti = engine.tierIndex('creation', 'pro');
for (const [cloud, tier] of [['creation', 'pro'], ['video', 'pro'], ['writing', 'basic'], ['music', 'basic']]) {
  const want = originalHasAccess(rows, cloud, tier);
  const got = [
    hasAccess(rows, cloud, tier, NOW),
    hasAccess(freshRows[7], cloud, tier, NOW),
    engine.check(engine.productIndex(cloud), engine.tierIndex(cloud, tier), NOW),
  ];
  if (got.some((g) => g !== want)) throw new Error(`answers differ for ${cloud}/${tier}: ${want} vs ${got}`);
}
const page = engine.pageState(null, null, NOW);
if (page.length !== 30) throw new Error(`the VCM catalog should have 30 tools, found ${page.length}`);

const figures = [];
const baseline = measure(() => originalHasAccess(rows, 'creation', 'pro'));
figures.push(['VCM Suite hasAccess, plain JS (baseline)', baseline]);
figures.push(['Engine.check (stateful, by index)', measure(() => engine.check(pi, ti, NOW))]);
figures.push(['Engine.check, now omitted (Date.now())', measure(() => engine.check(pi, ti))]);
figures.push(['Engine.hasAccess (by name, explained)', measure(() => engine.hasAccess('creation', 'pro', NOW).allowed)]);
figures.push(['package hasAccess, the same rows again', measure(() => hasAccess(rows, 'creation', 'pro', NOW))]);
figures.push(['package hasAccess, new rows each call', measure(() => hasAccess(freshRows[fresh++ & (FRESH - 1)].slice(), 'creation', 'pro', NOW))]);
// A floor for any reading of new rows: the platform's own Date.parse of each new row's
// validity (valid_from, valid_to), nothing else read and nothing decided. Not an
// implementation of anything: what any check of new rows' windows costs at the least.
function readWindows(rs) {
  let sum = 0;
  for (let i = 0; i < rs.length; i++) {
    sum += Date.parse(rs[i].valid_from);
    if (rs[i].valid_to != null) sum += Date.parse(rs[i].valid_to);
  }
  return sum > 0;
}
const floorNs = measure(() => readWindows(freshRows[fresh++ & (FRESH - 1)].slice()));
figures.push(['new rows: Date.parse of their windows alone', floorNs]);
const pageNs = measure(() => engine.pageState(null, null, NOW).length === 30);
figures.push([`Engine.pageState, ${page.length} tools`, pageNs]);
figures.push([`  per tool`, pageNs / page.length]);
// The same page for a subscriber (two subscriptions of the catalog's offers): its locked
// tools name only offers checkout would sell beside them, or a change of one.
const subscriber = new Engine(CATALOG, [
  { id: 'stripe:sub_1:video', product: 'video', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', valid_to: '2026-04-01T00:00:00Z', offer: 'CLOUD_VIDEO_PRO_MONTHLY', source_ref: 'stripe:sub_1' },
  { id: 'stripe:sub_2:suite', product: 'suite', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', valid_to: '2026-04-01T00:00:00Z', offer: 'SUITE_BASIC_MONTHLY', source_ref: 'stripe:sub_2' },
]);
figures.push([`Engine.pageState, ${page.length} tools, a subscriber`, measure(() => subscriber.pageState(null, null, NOW).length === 30)]);

// ------------------------------------------------------------------ report

const wasm = readFileSync(WASM);
const gz = gzipSync(wasm, { level: 9 }).length;

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
console.log();
console.log(`Node ${process.version}, ${ROUNDS} rounds of ${ROUND_MS} ms, median per call${QUICK ? ' (quick)' : ''}`);
console.log(`${pad('', 44)}${lpad('ns/op', 10)}${lpad('x baseline', 12)}`);
for (const [name, ns] of figures) {
  console.log(`${pad(name, 44)}${lpad(ns.toFixed(1), 10)}${lpad((ns / baseline).toFixed(2), 12)}`);
}
console.log(`${pad('page of 30 tools vs 30 baseline calls', 44)}${lpad('', 10)}${lpad((pageNs / (30 * baseline)).toFixed(2), 12)}`);
console.log();
console.log(
  `tollgate_bg.wasm: ${(wasm.length / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped ` +
    `(budget ${BUDGET_GZIP / 1024} KB: ${gz <= BUDGET_GZIP ? 'within' : 'OVER'})`,
);

// ------------------------------------------------------------------ what each use of the module weighs

// The exports each use calls (wasm-bindgen's own `__wbindgen_*` and the memory always stay).
const USES = [
  ['reading a catalog (loadCatalog)', /^cataloghandle_fromJson$/],
  ['the VCM Suite rows API (loadCatalog, hasAccess(rows))', /^(cataloghandle_|rowsWindow|rowsHasAccess|rowsExplainAccess)/],
  ['verifying a snapshot (verifySnapshot)', /^verifySnapshot$/],
  ['a catalog and an Engine', /^(cataloghandle_|enginehandle_)/],
  ['the same, a snapshot verified and money formatted', /^(cataloghandle_|enginehandle_|verifySnapshot|formatMoney|minorDigits)/],
];
const BIN = new URL('../pkg/node_modules/.bin/', import.meta.url).pathname;
// The build's wasm-opt options (`cargo xtask bench` passes xtask's list; run by hand, the same list).
const OPT = (process.env.TOLLGATE_WASM_OPT_ARGS ?? '-Oz --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int --enable-sign-ext --enable-reference-types --enable-multivalue --strip-debug --strip-producers --strip-target-features').split(' ');
const FEATURES = OPT.filter((o) => o.startsWith('--enable-'));

/** Gzipped bytes of the shipped module keeping only the exports `keep` matches. */
function keptOnly(keep) {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-metadce-'));
  try {
    const exports = WebAssembly.Module.exports(new WebAssembly.Module(wasm));
    const graph = exports.map((e) => ({
      name: `export:${e.name}`,
      export: e.name,
      ...(e.kind !== 'function' || e.name.startsWith('__') || keep.test(e.name) ? { root: true } : {}),
    }));
    if (!exports.some((e) => keep.test(e.name))) throw new Error(`no export matches ${keep}`);
    writeFileSync(join(dir, 'graph.json'), JSON.stringify(graph));
    const [kept, out] = [join(dir, 'kept.wasm'), join(dir, 'out.wasm')];
    execFileSync(join(BIN, 'wasm-metadce'), ['-f', join(dir, 'graph.json'), WASM.pathname, '-o', kept, ...FEATURES], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync(join(BIN, 'wasm-opt'), [...OPT, kept, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    return gzipSync(readFileSync(out), { level: 9 }).length;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log();
console.log(`the module with only the exports one use calls (gzipped; budget ${BUDGET_GZIP / 1024} KB)`);
for (const [use, keep] of USES) {
  const bytes = keptOnly(keep);
  console.log(`${pad(use, 60)}${lpad((bytes / 1024).toFixed(1) + ' KB', 10)}${lpad((bytes / gz).toFixed(2) + 'x', 8)}  ${bytes <= BUDGET_GZIP ? 'within' : 'over'}`);
}
console.log();

const budget = (name, x, max) =>
  console.log(`${name}: ${x.toFixed(2)}x the plain-JS baseline (budget ${max}x: ${x <= max ? 'met' : 'NOT met'})`);
const fig = (name) => figures.find((f) => f[0] === name)[1] / baseline;
budget('hasAccess(rows), the same rows again', fig('package hasAccess, the same rows again'), 5);
budget('hasAccess(rows), new rows each call', fig('package hasAccess, new rows each call'), 50);
console.log(
  `  a floor for any check of new rows (Date.parse of their windows alone, nothing decided): ${(floorNs / baseline).toFixed(2)}x; ` +
    `hasAccess(rows) with new rows is ${(fig('package hasAccess, new rows each call') * baseline / floorNs).toFixed(2)}x that floor`,
);
budget('Engine.hasAccess by name', fig('Engine.hasAccess (by name, explained)'), 10);
console.log(`page of 30 tools: ${(pageNs / 1000).toFixed(1)} µs (budget 30 µs: ${pageNs <= 30000 ? 'met' : 'NOT met'})`);
const check = figures[1][1];
console.log(`stateful check vs plain-JS baseline: ${(check / baseline).toFixed(2)}x (aim: <= 1.00x: ${check <= baseline ? 'met' : 'NOT met'})`);
if (sink === 42) console.log('');
