// index.d.ts and the types.generated.d.ts it re-exports (from the core's Rust types):
// TypeScript (strict) must accept the documented uses in types-usage.ts and reject the
// wrong ones marked there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('index.d.ts type-checks the documented uses (tsc --strict)', () => {
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  const project = fileURLToPath(new URL('./tsconfig.json', import.meta.url));
  let out = '';
  try {
    out = execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
  } catch (e) {
    assert.fail(`tsc found type errors:\n${e.stdout}${e.stderr}`);
  }
  assert.equal(out.trim(), '');
});
