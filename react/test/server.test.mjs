// tollgate-react/server is for the server only: its entry imports `server-only`, which
// throws where the `react-server` condition is not set (a Client Component's bundle, plain
// Node) and is an empty module where it is (Next's server components and route handlers,
// or Node run with `--conditions=react-server`). The condition is a flag of the process,
// so each case imports the built entry in a Node process of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const reactDir = fileURLToPath(new URL('..', import.meta.url));
const entry = new URL('../dist/server.js', import.meta.url).href;

/** Imports dist/server.js in a fresh Node with `flags`; prints its export names. */
function importServer(flags) {
  const script = `const m = await import(${JSON.stringify(entry)}); console.log(JSON.stringify(Object.keys(m).sort()));`;
  return spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { cwd: reactDir, encoding: 'utf8' });
}

test('server-only is installed with the package', () => {
  const require = createRequire(new URL('../package.json', import.meta.url));
  assert.doesNotThrow(() => require.resolve('server-only'), 'react/node_modules/server-only is missing: run `npm ci` in react/');
});

test('outside a React Server environment the server entry refuses to load', () => {
  const r = importServer([]);
  assert.notEqual(r.status, 0, `it loaded: ${r.stdout}`);
  assert.match(r.stderr, /cannot be imported from a Client Component module/);
});

test('with the react-server condition the server entry loads, with its helpers', () => {
  const r = importServer(['--conditions=react-server']);
  assert.equal(r.status, 0, r.stderr);
  const names = JSON.parse(r.stdout.trim().split('\n').at(-1));
  for (const name of ['decide', 'engineFor', 'fetchSnapshot', 'getTollgate', 'organizationEntitlements', 'pageState', 'verifySnapshot']) {
    assert.ok(names.includes(name), `${name} is exported: ${names.join(', ')}`);
  }
});

test('decide reads a catalog document edited in place again, and an equal copy the same', () => {
  // The server keeps the catalog it read last by the document's text: an edit must not be
  // answered from the catalog read before it.
  const script = `
    import { readFileSync } from 'node:fs';
    const { decide } = await import(${JSON.stringify(entry)});
    const doc = JSON.parse(readFileSync(new URL('../target/catalogs/vcm-suite.json', ${JSON.stringify(new URL('../', import.meta.url).href)}), 'utf8'));
    const grants = [{ id: 'g1', product: 'creation', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', valid_to: null }];
    const now = Date.parse('2026-03-01T00:00:00Z');
    const q = { product: 'creation', tier: 'pro' };
    const first = await decide(doc, { grants }, q, now);
    const offer = doc.offers.find((o) => o.key === first.upgrade.offer);
    offer.price.amount += 100;
    const edited = await decide(doc, { grants }, q, now);
    const copy = await decide(JSON.parse(JSON.stringify(doc)), { grants }, q, now);
    console.log(JSON.stringify([first.upgrade, edited.upgrade, copy.upgrade]));
  `;
  const r = spawnSync(process.execPath, ['--conditions=react-server', '--input-type=module', '-e', script], { cwd: reactDir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [first, edited, copy] = JSON.parse(r.stdout.trim().split('\n').at(-1));
  assert.equal(first.offer, 'CLOUD_CREATION_PRO_MONTHLY');
  assert.equal(first.price.amount, 5900);
  assert.equal(edited.offer, first.offer);
  assert.equal(edited.price.amount, 6000, 'the edited price is read');
  assert.deepEqual(copy, edited);
});
