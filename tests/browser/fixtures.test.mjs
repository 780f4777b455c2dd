// The shared conformance fixtures (tests/fixtures/*.json), evaluated by the tollgate
// package inside a real page in Chromium, compared with the same rules as Rust and Node.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

import { WWW, compare, launch, shot } from './lib.mjs';

const FIXTURES = new URL('../fixtures/', import.meta.url);
// The example catalogs as JSON, written by `cargo xtask build` (the package carries none).
const CATALOGS = new URL('../../target/catalogs/', import.meta.url);
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();

let browser;
let page;
before(async () => {
  browser = await launch();
  page = await browser.newPage();
  await page.goto(`${WWW}/conformance`);
  await page.waitForSelector('[data-testid="conformance"][data-state="ready"]', { timeout: 20_000 });
});
after(async () => {
  await shot(page, 'conformance');
  await browser?.close();
});

test('the fixtures are there', () => assert.ok(files.length > 0));

for (const file of files) {
  const fx = JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8'));
  test(`in the browser: ${file}: ${fx.name}`, async () => {
    const catalog = JSON.parse(readFileSync(new URL(`${fx.catalog}.json`, CATALOGS), 'utf8'));
    const results = await page.evaluate(([f, c]) => window.__tollgateConformance(f, c), [fx, catalog]);
    assert.equal(results.length, fx.cases.length);
    const failures = [];
    results.forEach((r, i) => {
      const c = fx.cases[i];
      // An op the page does not know fails the run, as in every host.
      if (r.fatal) failures.push(`case ${i} (${c.op}): ${r.fatal}`);
      else for (const p of compare(c.expect, r.got, r.error)) failures.push(`case ${i} (${c.op}${c.note ? ' ' + c.note : ''}): ${p}`);
    });
    assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
  });
}

test('an unknown op fails loudly in the page too', async () => {
  const catalog = JSON.parse(readFileSync(new URL('vcm-suite.json', CATALOGS), 'utf8'));
  const r = await page.evaluate(
    ([c]) => window.__tollgateConformance({ now: '2026-03-01T00:00:00Z', cases: [{ op: 'no_such_op', expect: { allowed: true } }] }, c),
    [catalog],
  );
  assert.match(r[0].fatal, /unknown op `no_such_op`/);
});
