// Whole pages gated by the app's proxy (www/proxy.ts, tollgate-react/proxy) from the
// signed snapshot cookie the provider writes: a free user asking for /tools/batch (the
// suite's `heavy_tools`) is redirected to the cheapest offer before the page renders,
// decided from the cookie alone; without the cookie the page renders and the worker
// decides there; a subscriber gets in; signing out removes the cookie.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, WORKER, browserWithWorker, checkout, gatingReady, shot, signIn, uniqueEmail, waitForSnapshot } from './lib.mjs';

const browser = browserWithWorker();
const COOKIE = 'tollgate-snapshot';
const GATED = '/tools/batch';
// No service worker: the navigations' redirect chains are then the server's own.
const NO_SW = { serviceWorkers: 'block' };

async function snapshotCookie(context) {
  return (await context.cookies(WWW)).find((c) => c.name === COOKIE) ?? null;
}

/** The cookie's snapshot as signed (read for the test's expectations only; the proxy verifies it). */
function payloadOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8'));
}

/** Opens /tools and waits until the provider has written a cookie whose snapshot satisfies `pred`. */
async function cookieFromPage(context, pred = () => true) {
  const page = await context.newPage();
  await page.goto(`${WWW}/tools`);
  await gatingReady(page);
  const deadline = Date.now() + 10_000;
  let cookie = null;
  while (Date.now() < deadline) {
    cookie = await snapshotCookie(context);
    if (cookie && pred(payloadOf(cookie.value))) return { page, cookie };
    await page.waitForTimeout(100);
  }
  throw new Error(`no snapshot cookie as expected; last: ${cookie ? JSON.stringify(payloadOf(cookie.value)).slice(0, 300) : 'none'}`);
}

test('a free user is sent to the cheapest offer from the cookie alone, and gets in after buying it', async () => {
  const context = await browser().newContext(NO_SW);
  const user = await signIn(context, uniqueEmail('proxy-free'));

  // No page has run yet, so there is no cookie: the proxy lets the request through and the
  // page asks the worker, which refuses.
  const before = await context.request.get(`${WWW}${GATED}`, { maxRedirects: 0 });
  assert.equal(before.status(), 200);
  assert.match(await before.text(), /data-testid="batch-denied"/);

  // Any page: the provider verifies the user's snapshot and keeps it in the cookie.
  const { page, cookie } = await cookieFromPage(context);
  assert.equal(payloadOf(cookie.value).grants.length, 0);
  assert.equal(cookie.path, '/');
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.secure, false, 'http: no Secure');
  const left = cookie.expires - Date.now() / 1000;
  const validity = Date.parse(payloadOf(cookie.value).expires_at) / 1000 - Date.now() / 1000;
  assert.ok(left > 0 && Math.abs(left - validity) < 30, `the cookie lasts as long as the snapshot (${left} s vs ${validity} s)`);

  // Without a browser at all, the cookies alone: the proxy answers, the page never renders.
  const direct = await context.request.get(`${WWW}${GATED}`, { maxRedirects: 0 });
  assert.equal(direct.status(), 307);
  assert.equal(direct.headers()['x-tollgate-proxy'], 'redirect');
  const to = new URL(direct.headers().location, WWW);
  assert.equal(to.pathname, '/tools');
  assert.equal(to.searchParams.get('offer'), 'SUITE_BASIC_MONTHLY');
  assert.equal(to.searchParams.get('from'), GATED);

  // In the browser: the navigation's first answer is that redirect; no request reaches the
  // worker from the browser until the offer page has arrived.
  const workerCalls = [];
  let arrived = false;
  page.on('request', (r) => {
    if (WORKER && r.url().startsWith(WORKER) && !arrived) workerCalls.push(r.url());
  });
  const resp = await page.goto(`${WWW}${GATED}`, { waitUntil: 'commit' });
  arrived = true;
  const hop = resp.request().redirectedFrom();
  assert.ok(hop, 'the navigation was redirected');
  assert.equal(new URL(hop.url()).pathname, GATED);
  assert.equal((await hop.response()).status(), 307);
  assert.deepEqual(workerCalls, []);
  assert.equal(new URL(page.url()).pathname, '/tools');
  const notice = page.locator('[data-testid="offer-notice"]');
  await notice.waitFor();
  assert.equal(await notice.getAttribute('data-offer'), 'SUITE_BASIC_MONTHLY');
  // The price is the core's formatter's, shown once the page has loaded the package.
  await notice.locator('[data-testid="offer-price"]', { hasText: /\$29\.00\/month/ }).waitFor();
  await shot(page, 'proxy-offer');

  // Buying from the notice: the worker's checkout, paid on the providers' stand-in; back
  // on the notice, the new snapshot rewrites the cookie, and the page lets them in.
  await gatingReady(page);
  await page.click('[data-testid="offer-buy"]');
  await page.waitForURL(/\/dev\/checkout\//, { timeout: 20_000 });
  await page.click('[data-testid="standin-pay"]');
  await page.waitForURL(`${WWW}${GATED}`, { timeout: 20_000 });
  await page.waitForSelector('[data-testid="batch-tools"]');
  assert.ok(payloadOf((await snapshotCookie(context)).value).grants.some((g) => g.product === 'suite' && g.tier === 'basic'));
  await shot(page, 'proxy-bought');
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'suite'));
  await context.close();
});

test('a subscriber gets in; signing out removes the cookie', async () => {
  const context = await browser().newContext(NO_SW);
  const user = await signIn(context, uniqueEmail('proxy-sub'));
  await checkout(context, { offer: 'SUITE_PRO_MONTHLY', clouds: [] });
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'suite' && g.tier === 'pro'));
  const { page } = await cookieFromPage(context, (s) => s.grants.some((g) => g.product === 'suite' && g.tier === 'pro'));

  const direct = await context.request.get(`${WWW}${GATED}`, { maxRedirects: 0 });
  assert.equal(direct.status(), 200);
  assert.match(await direct.text(), /data-testid="batch-tools"/);
  const resp = await page.goto(`${WWW}${GATED}`);
  assert.equal(resp.request().redirectedFrom(), null);
  assert.equal(new URL(page.url()).pathname, GATED);
  await page.waitForSelector('[data-testid="batch-tools"] [data-tool="batch-compressor"]');

  // Signing out: the signed-out page's provider removes the cookie.
  await page.click('header.top button[type="submit"]');
  await page.waitForURL(`${WWW}/tools`);
  await gatingReady(page);
  await page.waitForFunction((name) => !document.cookie.split('; ').some((c) => c.startsWith(`${name}=`)), COOKIE);
  assert.equal(await snapshotCookie(context), null);
  await context.close();
});
