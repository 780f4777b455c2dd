// quote(): the Video Studio app's usage pricing through the package, the core's
// usage::quote (the function the worker charges with). Every expected figure
// below is worked out by hand from catalogs/video-studio.toml:
// cost = ceil(seconds x base_price_per_second x multiplier) in cents, rounded
// up once on the total; overage = the same with x 1.5 (overage_multiplier).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { quote, loadCatalog, useCatalog } from 'tollgate';
import { catalogJson } from './catalogs.mjs';

const studioJson = catalogJson('video-studio');
const studio = loadCatalog(studioJson);

function throwsCode(fn, code, ...parts) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `expected an Error with code ${code}`);
  assert.ok(!(caught instanceof WebAssembly.RuntimeError), `a wasm trap escaped: ${caught.message}`);
  assert.equal(caught.code, code, caught.message);
  for (const p of parts) assert.ok(caught.message.includes(p), `${JSON.stringify(caught.message)} lacks ${JSON.stringify(p)}`);
  return caught;
}

test('quote: Video Studio prices, worked out by hand', () => {
  // [model, quality, seconds, cost in cents, overage in cents]
  const cases = [
    // 0.015 x 1.2 x 30 = 0.54 exactly; x 1.5 = 0.81
    ['standard', 'standard', 30, 54, 81],
    // 0.018 for one second: rounded up to 2 cents; overage 0.027 -> 3
    ['standard', 'standard', 1, 2, 3],
    // 7 s = 0.126 -> 13 cents, rounded once on the total (per second it would be 7 x 2 = 14); overage 0.189 -> 19
    ['standard', 'standard', 7, 13, 19],
    // 0.01 x 1.0 x 10 = 0.10; overage 0.15
    ['standard', 'watermark', 10, 10, 15],
    // 0.02 x 1.5 x 7 = 0.21; overage 0.315 -> 32
    ['standard', 'hd', 7, 21, 32],
    // 0.06 x 2.0 x 60 = 7.20; overage 10.80
    ['pro', 'ultra_hd', 60, 720, 1080],
    // 0.07 x 1.3 x 1 = 0.091 -> 10 cents; overage 0.1365 -> 14
    ['ultra', 'hd', 1, 10, 14],
    // 0.15 x 2.5 x 60 = 22.50; overage 33.75
    ['ultra', 'studio', 60, 2250, 3375],
    // the longest request, 86400 s (one day): 0.03 x 1.2 x 86400 = 3110.40; overage 4665.60
    ['pro', 'standard', 86400, 311040, 466560],
  ];
  for (const [model, quality, seconds, cost, overage] of cases) {
    const q = quote(studio, model, quality, seconds);
    const what = `${model} x ${quality}, ${seconds} s`;
    assert.deepEqual(q.cost, { amount: cost, currency: 'usd' }, what);
    assert.deepEqual(q.overage_cost, { amount: overage, currency: 'usd' }, what);
  }
});

test('quote: the whole answer, with the rates as exact decimal strings', () => {
  assert.deepEqual(quote(studio, 'standard', 'standard', 30), {
    model: 'standard',
    quality: 'standard',
    seconds: 30,
    base_price_per_second: '0.015',
    multiplier: '1.2',
    cost: { amount: 54, currency: 'usd' },
    overage_cost: { amount: 81, currency: 'usd' },
    overage_multiplier: '1.5',
    pool: 'video_seconds',
  });
  // JSON text and the parsed object load the same catalog.
  assert.deepEqual(quote(studioJson, 'ultra', 'studio', 60), quote(JSON.parse(studioJson), 'ultra', 'studio', 60));
});

test('quote: questions the catalog cannot answer carry the core error code', () => {
  throwsCode(() => quote(studio, 'ultra', 'watermark', 10), 'unknown_rate', 'ultra', 'watermark', 'ultra x studio');
  throwsCode(() => quote(studio, 'standard', 'standard', 0), 'out_of_range', '0 seconds', '1..=86400');
  throwsCode(() => quote(studio, 'standard', 'standard', 86401), 'out_of_range', '86401');
  // Without a catalog argument, the one set with useCatalog: VCM Suite's prices no usage.
  throwsCode(() => quote(null, 'standard', 'standard', 30), 'no_catalog');
  useCatalog(catalogJson('vcm-suite'));
  throwsCode(() => quote(null, 'standard', 'standard', 30), 'no_usage_pricing');
});

test('quote: malformed arguments are Errors, never traps', () => {
  for (const [args, part] of [
    [[studio, 'standard', 'standard', 1.5], '`seconds` must be a whole number'],
    [[studio, 'standard', 'standard', -1], '`seconds` must be a whole number'],
    [[studio, 'standard', 'standard', '30'], '`seconds` must be a number'],
    [[studio, 'standard', 7, 30], '`quality` must be a string'],
    [[studio, undefined, 'standard', 30], '`model` must be a string'],
  ]) {
    assert.throws(() => quote(...args), (e) => e instanceof Error && !(e instanceof WebAssembly.RuntimeError) && e.message.includes(part));
  }
});
