// A fresh Vite app (templates/vite) with the packed tollgate: type-checked under strict,
// built, served by `vite preview` and by the dev server, and read in Chromium
// (`await init()` loads the .wasm Vite copied; no Vite configuration at all).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { PORTS, launch, npmInstall, openPage, scaffold, sh, start } from './lib.mjs';

const dir = scaffold('vite', 'src/tollgate-catalog.json');
const url = `http://127.0.0.1:${PORTS.vite}/`;
const vite = ['node_modules/vite/bin/vite.js'];
let browser;
after(() => browser?.close());

before(async () => {
  for (const f of ['vite.config.ts', 'vite.config.js', 'vite.config.mjs']) {
    assert.equal(existsSync(path.join(dir, f)), false, `no ${f}: nothing is configured for tollgate`);
  }
  npmInstall(dir);
  browser = await launch();
});

async function check(what) {
  const page = await openPage(browser, url, '#pro-tool:not([disabled])');
  assert.equal(await page.textContent('#pro-tool'), 'Open the pro tool', what);
  await page.close();
}

test('tsc --noEmit (strict) of the Vite app', () => {
  sh(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], { cwd: dir });
});

test('vite build, vite preview: the page loads the wasm and decides', async () => {
  const out = sh(process.execPath, [...vite, 'build'], { cwd: dir });
  assert.match(out, /tollgate_bg-[\w-]+\.wasm/, 'the .wasm is emitted as an asset');
  const server = await start(process.execPath, [...vite, 'preview', '--host', '127.0.0.1', '--port', String(PORTS.vite), '--strictPort'], { cwd: dir, url });
  try {
    await check('vite preview');
  } finally {
    await server.stop();
  }
});

test('the Vite dev server: the page loads the wasm and decides', async () => {
  const server = await start(process.execPath, [...vite, '--host', '127.0.0.1', '--port', String(PORTS.vite), '--strictPort'], { cwd: dir, url });
  try {
    await check('vite dev');
  } finally {
    await server.stop();
  }
});
