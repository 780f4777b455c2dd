// What a user's page pays for tollgate, for `cargo xtask bench`: the scratch Next.js app
// (templates/next) built with Turbopack and with webpack, and in Chromium the JavaScript
// and wasm that /sizes/with (hasAccess after `await init()`) loads, against /sizes/without
// (the same page deciding with a plain comparison). Bytes as served and gzipped (level 9).
// Prints one JSON line per bundler: { bundler, with: {...}, without: {...} }.
import { gzipSync } from 'node:zlib';

import { PORTS, launch, nextStart, npmInstall, scaffold, sh } from './lib.mjs';

const dir = scaffold('next', 'tollgate-catalog.json');
const base = `http://127.0.0.1:${PORTS.next}`;

async function measure(browser, route) {
  const page = await browser.newPage();
  const sizes = { js: 0, js_gzip: 0, wasm: 0, wasm_gzip: 0, requests: 0 };
  const pending = [];
  page.on('response', (r) => {
    const url = new URL(r.url());
    const kind = url.pathname.endsWith('.wasm') ? 'wasm' : url.pathname.endsWith('.js') ? 'js' : null;
    if (!kind) return;
    pending.push(
      r.body().then((b) => {
        sizes[kind] += b.length;
        sizes[`${kind}_gzip`] += gzipSync(b, { level: 9 }).length;
        sizes.requests += 1;
      }),
    );
  });
  await page.goto(`${base}${route}`, { waitUntil: 'networkidle' });
  await page.waitForSelector('#pro-tool[data-decided="true"]:not([disabled])', { state: 'attached', timeout: 20_000 });
  await Promise.all(pending);
  await page.close();
  return sizes;
}

npmInstall(dir);
const browser = await launch();
try {
  for (const [bundler, args] of [['turbopack', []], ['webpack', ['--webpack']]]) {
    sh(process.execPath, ['node_modules/next/dist/bin/next', 'build', ...args], { cwd: dir });
    const server = await nextStart(dir);
    try {
      const without = await measure(browser, '/sizes/without');
      const withTg = await measure(browser, '/sizes/with');
      console.log(JSON.stringify({ bundler, with: withTg, without }));
    } finally {
      await server.stop();
    }
  }
} finally {
  await browser.close();
}
