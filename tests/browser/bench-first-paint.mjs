// `cargo xtask bench`: time from navigation start to the correct locked state being
// on screen, in Chromium. Measured inside the page: an init script checks every
// animation frame (i.e. every paint opportunity) whether the expected state is shown
// and records performance.now() of the first frame where it is. Cases:
// - signed out, /tools: the server renders the free state;
// - signed in with a warm cache, /tools: the server verifies the snapshot cookie the
//   provider wrote (Ed25519, no call out) and renders the tools' states;
// - the same with no snapshot cookie: the server fetches the snapshot from the worker;
// - signed in, /tools/demo: the server decides from the snapshot cookie and renders.
// The baseline, measured in the same run: /signin, a page of the same app with no
// gating at all (its form on screen), so each case reads as a ratio to the app's own
// cost of a navigation. Writes the rows as JSON to $BENCH_OUT when set.

import { writeFileSync } from 'node:fs';

import { WWW, checkout, launch, signIn, uniqueEmail, waitForSnapshot, WORKER } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);

const WATCH = `(() => {
  const sel = window.__benchSelector;
  const tick = () => {
    if (window.__benchDone === undefined && sel && document.querySelector(sel)) {
      window.__benchDone = performance.now();
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();`;

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: q(0.5), p95: q(0.95), min: s[0], max: s[s.length - 1] };
}

async function measure(context, path, selector, { withoutSnapshotCookie = false } = {}) {
  const out = [];
  for (let i = 0; i < RUNS; i++) {
    if (withoutSnapshotCookie) await context.clearCookies({ name: 'tollgate-snapshot' });
    const page = await context.newPage();
    await page.addInitScript(`window.__benchSelector = ${JSON.stringify(selector)};\n${WATCH}`);
    await page.goto(`${WWW}${path}`);
    await page.waitForFunction(() => window.__benchDone !== undefined, null, { timeout: 15_000 });
    out.push(await page.evaluate(() => window.__benchDone));
    await page.close();
  }
  return stats(out);
}

const browser = await launch();
const rows = [];
try {
  const anon = await browser.newContext();
  rows.push(['baseline: signed out, /signin (no gating)', await measure(anon, '/signin', 'form [data-testid="signin"]')]);
  rows.push(['signed out, /tools (server-rendered free state)', await measure(anon, '/tools', '[data-tool="bg-remover"][data-state="locked"]')]);
  await anon.close();
  if (WORKER) {
    const ctx = await browser.newContext();
    const user = await signIn(ctx, uniqueEmail('bench'));
    await checkout(ctx, { offer: 'CLOUD_CREATION_PRO_MONTHLY', clouds: [] });
    await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'creation'));
    // Warm the cache once.
    const warm = await ctx.newPage();
    await warm.goto(`${WWW}/tools`);
    await warm.waitForSelector('[data-tool="bg-remover"][data-state="unlocked"]');
    await warm.close();
    const unlocked = '[data-tool="bg-remover"][data-state="unlocked"]';
    rows.push(['signed in, warm cache, /tools (server: snapshot cookie)', await measure(ctx, '/tools', unlocked)]);
    rows.push(['signed in, no snapshot cookie, /tools (server: fetch + verify)', await measure(ctx, '/tools', unlocked, { withoutSnapshotCookie: true })]);
    rows.push(['signed in, /tools/demo (server: snapshot cookie + decide)', await measure(ctx, '/tools/demo', '[data-testid="pro-tool"]')]);
    await ctx.close();
  } else {
    console.log('    (TOLLGATE_WORKER_URL not set: signed-in cases skipped)');
  }
} finally {
  await browser.close();
}
console.log('navigation -> correct locked state on screen (ms, Chromium headless)');
const base = rows[0][1].median;
for (const [name, s] of rows) {
  console.log(
    `  ${name.padEnd(64)} median ${s.median.toFixed(1)}  p95 ${s.p95.toFixed(1)}  min ${s.min.toFixed(1)}  max ${s.max.toFixed(1)}  (n=${s.n})  = ${(s.median / base).toFixed(2)}x baseline`,
  );
}
if (process.env.BENCH_OUT) {
  writeFileSync(process.env.BENCH_OUT, JSON.stringify(rows.map(([name, s]) => ({ name, ...s, ratio: s.median / base })), null, 2));
}
