// A fresh Next.js 16 app (templates/next plus the READMEs' Next blocks) with the packed
// tollgate and tollgate-react installed and no configuration at all: built with Turbopack
// and with webpack and started, then run by `next dev`, and read over HTTP (server
// components, a route handler, proxy.ts) and in Chromium (client components: `await
// init()`, the React provider).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { PORTS, getJson, getText, launch, nextRoute, nextStart, npmInstall, openPage, placeReadmeBlocks, scaffold, sh, start } from './lib.mjs';

const dir = scaffold('next', 'tollgate-catalog.json', 'readme/tollgate-catalog.json');
const { placed } = placeReadmeBlocks('next', dir);
const base = `http://127.0.0.1:${PORTS.next}`;
let browser;
after(() => browser?.close());

before(async () => {
  assert.equal(existsSync(path.join(dir, 'next.config.ts')) || existsSync(path.join(dir, 'next.config.mjs')), false, 'no next.config');
  npmInstall(dir);
  browser = await launch();
});

/** What every build must answer. */
async function checkApp(bundler) {
  const server = await getText(`${base}/server`);
  assert.match(server.text, /data-creation-pro="true"/, `${bundler}: server component`);
  assert.match(server.text, /data-video-reason="tier_too_low"/, `${bundler}: server component, a denial`);
  assert.match(server.text, /CLOUD_VIDEO_PRO_MONTHLY/, `${bundler}: server component, the cheapest upgrade`);
  assert.equal(server.headers.get('x-tollgate-proxy'), 'creation:pro=true;video:pro=false;path=/server', `${bundler}: proxy.ts`);

  assert.equal(server.headers.get('x-tollgate-react-proxy'), 'pass:no_cookie', `${bundler}: tollgate-react/proxy, no cookie`);
  const refused = await fetch(`${base}/server`, { headers: { cookie: 'tollgate-snapshot=not-a-snapshot' } });
  await refused.text();
  assert.equal(refused.status, 200);
  assert.equal(refused.headers.get('x-tollgate-react-proxy'), 'pass:malformed_snapshot', `${bundler}: tollgate-react/proxy, the core's verifier`);

  const api = await getJson(`${base}/api/check`);
  assert.deepEqual(api.body, { creation_pro: true, video_reason: 'tier_too_low', offer: 'CLOUD_VIDEO_PRO_MONTHLY' }, `${bundler}: route handler`);
  assert.equal(api.headers.get('x-tollgate-proxy'), 'creation:pro=true;video:pro=false;path=/api/check');

  const rs = await getText(`${base}/react-server`);
  assert.match(rs.text, /data-creation="true"/, `${bundler}: tollgate-react/server in a server component`);
  assert.match(rs.text, /data-video-reason="tier_too_low"/, `${bundler}: tollgate-react/server, a denial`);

  const client = await openPage(browser, `${base}/client`, '#pro-tool:not([disabled])');
  assert.equal(await client.textContent('#pro-tool'), 'Open the pro tool', `${bundler}: client component after await init()`);
  await client.close();

  const rc = await openPage(browser, `${base}/react-client`, '#status[data-status="denied"]');
  assert.equal(await rc.getAttribute('#status', 'data-reason'), 'tier_too_low', `${bundler}: the provider, signed out`);
  assert.match(await rc.textContent('#upgrade'), /^Upgrade: \S+/, `${bundler}: <Gate> locked with an upgrade`);
  assert.equal(await rc.$('#pro-tool'), null);
  await rc.close();

  // The READMEs' pages and route handlers answer (their code compiled with the app).
  for (const b of placed.filter((p) => p.kind === 'next')) {
    const route = nextRoute(path.relative(dir, b.path));
    assert.ok(route, `${b.file}:${b.line}: next:${b.where} is neither a page nor a route handler`);
    const r = await fetch(`${base}${route}`);
    const text = await r.text();
    assert.equal(r.status, 200, `${b.file}:${b.line} (${route}): ${text.slice(0, 1500)}`);
  }
}

test('the READMEs have blocks for the Next app', () => {
  assert.ok(placed.some((p) => p.kind === 'next'), 'a next:<path> block');
  assert.ok(placed.some((p) => p.kind === 'types'), 'a block compiled as is');
});

test('next build (Turbopack), next start: server, route handler, proxy, client', async () => {
  sh(process.execPath, ['node_modules/next/dist/bin/next', 'build'], { cwd: dir });
  const server = await nextStart(dir);
  try {
    await checkApp('turbopack');
  } finally {
    await server.stop();
  }
});

test('next build --webpack, next start: server, route handler, proxy, client', async () => {
  sh(process.execPath, ['node_modules/next/dist/bin/next', 'build', '--webpack'], { cwd: dir });
  const server = await nextStart(dir);
  try {
    await checkApp('webpack');
  } finally {
    await server.stop();
  }
});

test('next dev (Turbopack): server component, route handler, proxy, client component', async () => {
  const port = String(PORTS.next);
  const server = await start(process.execPath, ['node_modules/next/dist/bin/next', 'dev', '-H', '127.0.0.1', '-p', port], {
    cwd: dir,
    url: `${base}/api/check`,
    timeoutMs: 120_000,
  });
  try {
    const api = await getJson(`${base}/api/check`);
    assert.deepEqual(api.body, { creation_pro: true, video_reason: 'tier_too_low', offer: 'CLOUD_VIDEO_PRO_MONTHLY' });
    const page = await getText(`${base}/server`);
    assert.match(page.text, /data-creation-pro="true"/);
    assert.equal(page.headers.get('x-tollgate-proxy'), 'creation:pro=true;video:pro=false;path=/server');
    const client = await openPage(browser, `${base}/client`, '#pro-tool:not([disabled])');
    assert.equal(await client.textContent('#pro-tool'), 'Open the pro tool');
    await client.close();
  } finally {
    await server.stop();
  }
});
