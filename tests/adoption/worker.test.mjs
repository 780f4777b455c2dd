// A fresh Cloudflare Worker of a user's own (templates/worker) with the packed tollgate,
// bundled and served by wrangler dev (the `workerd` condition: the .wasm imported as a
// module), read over HTTP. wrangler is the one the repository's worker build uses
// (TOLLGATE_WRANGLER), the tool rather than a part of the app.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';

import { PORTS, getJson, npmInstall, scaffold, start } from './lib.mjs';

const dir = scaffold('worker', 'src/tollgate-catalog.json');
const wrangler = process.env.TOLLGATE_WRANGLER;
const url = `http://127.0.0.1:${PORTS.worker}/`;

before(() => {
  if (!wrangler) throw new Error('TOLLGATE_WRANGLER is not set: run these tests through `cargo xtask test adoption`');
  npmInstall(dir);
});

test('wrangler dev: the Worker decides with the package', async () => {
  const server = await start(process.execPath, [wrangler, 'dev', '--ip', '127.0.0.1', '--port', String(PORTS.worker)], { cwd: dir, url, timeoutMs: 90_000 });
  try {
    const { body } = await getJson(url);
    assert.deepEqual(body, { creation_pro: true, video_reason: 'tier_too_low', offer: 'CLOUD_VIDEO_PRO_MONTHLY' });
  } finally {
    await server.stop();
  }
});
