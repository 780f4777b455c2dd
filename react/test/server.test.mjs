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
