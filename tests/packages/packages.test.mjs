// The npm packages as their users get them: `npm pack` of pkg/ (tollgate) and react/
// (tollgate-react), checked by publint (package.json against the packed files: exports,
// types, files, module format) and by Are the Types Wrong? (every entry point's types
// resolve, and match its JavaScript, under node16 and bundler resolution). Both packages
// are ESM only (Node 20+, bundlers), so attw runs with its `esm-only` profile; the
// package's `tollgate_bg.wasm` export is bytes for a loader, not a module with types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const dir = (rel) => fileURLToPath(new URL(rel, import.meta.url));
const attw = dir('./node_modules/@arethetypeswrong/cli/dist/index.js');

const packages = [
  { name: 'tollgate', dir: dir('../../pkg/'), attw: ['--exclude-entrypoints', './tollgate_bg.wasm'] },
  { name: 'tollgate-react', dir: dir('../../react/'), attw: [] },
];

for (const p of packages) {
  test(`${p.name}: publint finds nothing to fix`, async () => {
    const pkgJson = JSON.parse(readFileSync(`${p.dir}package.json`, 'utf8'));
    assert.equal(pkgJson.name, p.name);
    const { messages } = await publint({ pkgDir: p.dir, pack: 'npm', strict: true });
    assert.deepEqual(
      messages.map((m) => `${m.type}: ${formatMessage(m, pkgJson) ?? m.code}`),
      [],
      'publint messages',
    );
  });

  test(`${p.name}: Are the Types Wrong? finds no problem`, () => {
    const args = [attw, '--pack', p.dir, '--profile', 'esm-only', '--no-color', '--no-emoji', ...p.attw];
    try {
      execFileSync(process.execPath, args, { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      assert.fail(`attw ${args.slice(1).join(' ')} failed:\n${e.stdout}${e.stderr}`);
    }
  });
}
