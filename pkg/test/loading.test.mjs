// Loading the WebAssembly module: the browser entry (index.js) before and after `init`,
// and what a failed load says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { explainAccess, init, isReady } from '../index.js';

test('before init: calls say how to load the module', () => {
  assert.equal(isReady(), false);
  assert.throws(() => explainAccess([], 'creation', 'pro'), /import \{ init \} from 'tollgate'.*await init\(\)/);
});

test('init with bytes that are not wasm: an Error with code wasm_load_failed', async () => {
  await assert.rejects(init(new Uint8Array([1, 2, 3, 4])), (e) => {
    assert.equal(e.code, 'wasm_load_failed');
    assert.match(e.message, /could not load the WebAssembly module from the given input/);
    assert.ok(e.cause);
    return true;
  });
  assert.equal(isReady(), false);
});

test('init without input where the file cannot be fetched names the way out', async () => {
  // Node's fetch cannot read the file: URL init() computes, as a host that did not copy the file.
  await assert.rejects(init(), (e) => {
    assert.equal(e.code, 'wasm_load_failed');
    assert.match(e.message, /tollgate_bg\.wasm next to the package's JavaScript/);
    assert.match(e.message, /await init\('\/tollgate_bg\.wasm'\)/);
    return true;
  });
});

test('init with the bytes loads it; a second init is a no-op', async () => {
  await init(readFileSync(new URL('../tollgate_bg.wasm', import.meta.url)));
  assert.equal(isReady(), true);
  await init();
  assert.equal(isReady(), true);
});
