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
// cost of a navigation.
//
// The cases take turns (one navigation of each per round), so a drift of the machine or
// of the servers during the run weighs on every case alike, and each navigation starts
// once the one before it has gone quiet (no request for 500 ms). Each navigation starts from
// the cookies its case names: the snapshot cookie is put back before each cookie case
// and removed before the no-cookie one, and every signed-in page says where its server
// took the snapshot from (`data-snapshot-from`), which is checked, so a case measures
// what its name says. Writes the rows as JSON to $BENCH_OUT when set.

import { writeFileSync } from 'node:fs';

import { WWW, checkout, launch, signIn, uniqueEmail, waitForSnapshot, WORKER } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 25);

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

/** One navigation: ms from its start to the first frame showing `selector`. */
async function navigate(context, { path, selector, from }) {
  const page = await context.newPage();
  await page.addInitScript(`window.__benchSelector = ${JSON.stringify(selector)};\n${WATCH}`);
  await page.goto(`${WWW}${path}`);
  await page.waitForFunction(() => window.__benchDone !== undefined, null, { timeout: 15_000 });
  const [ms, said] = await page.evaluate(() => [
    window.__benchDone,
    document.querySelector('[data-snapshot-from]')?.getAttribute('data-snapshot-from') ?? null,
  ]);
  // What the page does after its first paint (the provider revalidating its snapshot with
  // the worker, say) ends before the next navigation starts, so that it does not land in
  // the next case's time.
  await page.waitForLoadState('networkidle');
  await page.close();
  if (from !== undefined && said !== from) {
    throw new Error(`${path}: the server took the snapshot from ${said ?? 'nowhere'}, the case needs ${from}`);
  }
  return ms;
}

const browser = await launch();
const cases = [];
try {
  const anon = await browser.newContext();
  cases.push({ name: 'baseline: signed out, /signin (no gating)', context: anon, path: '/signin', selector: 'form [data-testid="signin"]' });
  cases.push({ name: 'signed out, /tools (server-rendered free state)', context: anon, path: '/tools', selector: '[data-tool="bg-remover"][data-state="locked"]' });
  if (WORKER) {
    const ctx = await browser.newContext();
    const user = await signIn(ctx, uniqueEmail('bench'));
    await checkout(ctx, { offer: 'CLOUD_CREATION_PRO_MONTHLY', clouds: [] });
    await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'creation'));
    const unlocked = '[data-tool="bg-remover"][data-state="unlocked"]';
    // Warm the cache once: the provider keeps the snapshot and writes its cookie.
    const warm = await ctx.newPage();
    await warm.goto(`${WWW}/tools`);
    await warm.waitForSelector(unlocked);
    await warm.waitForFunction(() => document.cookie.includes('tollgate-snapshot='), null, { timeout: 10_000 });
    await warm.close();
    const cookie = (await ctx.cookies()).find((c) => c.name === 'tollgate-snapshot');
    const withCookie = () => ctx.addCookies([cookie]);
    const withoutCookie = () => ctx.clearCookies({ name: 'tollgate-snapshot' });
    cases.push({ name: 'signed in, warm cache, /tools (server: snapshot cookie)', context: ctx, path: '/tools', selector: unlocked, before: withCookie, from: 'cookie', budget: 1.2 });
    cases.push({ name: 'signed in, no snapshot cookie, /tools (server: fetch + verify)', context: ctx, path: '/tools', selector: unlocked, before: withoutCookie, from: 'worker', budget: 1.1 });
    cases.push({ name: 'signed in, /tools/demo (server: snapshot cookie + decide)', context: ctx, path: '/tools/demo', selector: '[data-testid="pro-tool"]', before: withCookie, from: 'cookie', budget: 1.1 });
  } else {
    console.log('    (TOLLGATE_WORKER_URL not set: signed-in cases skipped)');
  }
  // One unmeasured navigation of each case first (the servers' first answers to a page).
  for (let run = -1; run < RUNS; run++) {
    for (const c of cases) {
      await c.before?.();
      const ms = await navigate(c.context, c);
      if (run >= 0) (c.times ??= []).push(ms);
    }
  }
} finally {
  await browser.close();
}
const rows = cases.map((c) => [c.name, { ...stats(c.times), budget: c.budget ?? null }]);
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
