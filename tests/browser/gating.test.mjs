// Live gating in the browser: a purchase (the worker's checkout, paid on the providers'
// stand-in) unlocks within 2 s of coming back; a subscription canceled at period end
// keeps access until the period ends (browser clock moved with playwright's clock); a tampered cached snapshot counts as free and
// is refetched; with the network cut, gating answers from the cached snapshot.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';

import {
  WWW,
  callWorker,
  checkout,
  gatingReady,
  launch,
  needWorker,
  shot,
  signIn,
  uniqueEmail,
  waitForSnapshot,
} from './lib.mjs';

let browser;
before(async () => {
  needWorker();
  browser = await launch();
});
after(async () => browser?.close());

const PRO = '[data-testid="pro-tool"]';
const BANNER = '[data-testid="upgrade-banner"]';

/** A marker that survives only while the page is not reloaded. */
async function markPage(page) {
  await page.evaluate(() => {
    window.__noReload = true;
  });
}
async function notReloaded(page) {
  return page.evaluate(() => window.__noReload === true);
}

async function entitledPage(tag) {
  const context = await browser.newContext();
  const user = await signIn(context, uniqueEmail(tag));
  await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY' });
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'creation' && g.tier === 'pro'));
  const page = await context.newPage();
  await page.goto(`${WWW}/tools/demo`);
  await gatingReady(page);
  await page.waitForSelector(PRO);
  // The fresh snapshot is now the last good one in localStorage.
  await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith('tollgate.v1:snapshot:')));
  return { context, page, user };
}

test('purchase: checkout on the provider\'s page, and the tool unlocks within 2 seconds of coming back', async () => {
  const context = await browser.newContext();
  await signIn(context, uniqueEmail('buy'));
  const page = await context.newPage();
  await page.goto(`${WWW}/tools/demo`);
  await gatingReady(page);
  await page.waitForSelector(BANNER);
  await shot(page, 'purchase-before');
  await page.click('[data-testid="banner-upgrade"]');
  await page.waitForSelector('[data-testid="upgrade-modal"]');
  // Offers and prices come from the catalog: the cheapest one that unlocks is marked.
  const cheapest = page.locator('.offers li.cheapest');
  assert.equal(await cheapest.getAttribute('data-offer'), 'CLOUD_CREATION_PRO_MONTHLY');
  assert.match(await cheapest.locator('[data-testid="price"]').innerText(), /\$59\.00\/month/);
  await shot(page, 'purchase-modal');
  await page.click('[data-testid="buy-CLOUD_CREATION_PRO_MONTHLY"]');
  // The session the worker built, on the stand-in's checkout page.
  await page.waitForURL(/\/dev\/checkout\/cs_test_/);
  await page.click('[data-testid="standin-pay"]');
  await page.waitForURL((u) => u.pathname === '/tools/demo');
  const t0 = Date.now();
  await page.waitForSelector(PRO, { timeout: 2000 });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed <= 2000, `unlocked ${elapsed} ms after coming back`);
  assert.equal(await page.locator(BANNER).count(), 0);
  await page.waitForSelector('[data-testid="checkout-return"][data-state="unlocked"]');
  // The return parameters are gone from the address.
  assert.equal(new URL(page.url()).search, '');
  await shot(page, 'purchase-after');

  // The tools page, same session: the Creation Cloud pro tool is open, an AI tool of
  // another cloud is still locked and explains why.
  await page.goto(`${WWW}/tools`);
  await page.waitForSelector('[data-tool="bg-remover"][data-state="unlocked"]');
  const locked = page.locator('[data-tool="ai-blog-writer"]');
  assert.equal(await locked.getAttribute('data-state'), 'locked');
  await shot(page, 'tools-after-purchase');
  await context.close();
});

test('cancel and resume act only on the signed-in user\'s own subscription', async () => {
  const owner = await browser.newContext();
  const user = await signIn(owner, uniqueEmail('own'));
  const bought = await checkout(owner, { offer: 'CLOUD_CREATION_PRO_MONTHLY' });
  const ref = `stripe:${bought.subscription}`;
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref));
  const other = await browser.newContext();
  await signIn(other, uniqueEmail('other'));
  const r = await callWorker(other, '/v1/subscriptions/cancel', { subscription: bought.subscription });
  assert.equal(r.status, 404, JSON.stringify(r.json));
  assert.equal(r.json.error.code, 'no_subscription');
  await new Promise((res) => setTimeout(res, 500));
  const snap = await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref));
  assert.ok(snap.snapshot.grants.some((g) => g.source_ref === ref && g.status === 'active'), 'the owner keeps the subscription as it was');
  await owner.close();
  await other.close();
});

test('cancel at period end keeps access until the period ends (test clock)', async () => {
  const context = await browser.newContext();
  const user = await signIn(context, uniqueEmail('cancel'));
  const now = Math.floor(Date.now() / 1000);
  const periodEnd = now + 180;
  // The stand-in's test clock: the first period ends three minutes from now.
  const bought = await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY', period_end: periodEnd });
  assert.ok(bought.subscription, 'a subscription checkout names its subscription');
  // Grants name their source object with its provider: `stripe:sub_...`.
  const ref = `stripe:${bought.subscription}`;
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref));
  // Stripe's clock counts whole seconds, and two snapshots of one subscription made in the
  // same second have no order between them: the customer cancels a second after buying.
  await new Promise((r) => setTimeout(r, 1100));
  // Through the worker, which asks the provider; the stand-in sends customer.subscription.updated.
  const canceled = await callWorker(context, '/v1/subscriptions/cancel', { subscription: bought.subscription });
  assert.equal(canceled.status, 200, JSON.stringify(canceled.json));
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref && g.status === 'canceled'));

  const page = await context.newPage();
  // The browser's clock is under the test's control from here on.
  await page.clock.install({ time: Date.now() });
  await page.goto(`${WWW}/tools/demo`);
  await gatingReady(page);
  await page.waitForSelector(PRO);
  await markPage(page);
  await shot(page, 'cancel-before-period-end');
  // One minute before the end: still included.
  await page.clock.fastForward((periodEnd - now - 60) * 1000);
  await page.waitForTimeout(100);
  assert.equal(await page.locator(PRO).count(), 1, 'access must last until the period ends');
  // Past the end: the decision's holds_until passes and the gate locks, without a reload.
  await page.clock.fastForward(90_000);
  await page.waitForSelector(BANNER, { timeout: 5000 });
  assert.equal(await page.locator(PRO).count(), 0);
  assert.equal(await notReloaded(page), true);
  await shot(page, 'cancel-after-period-end');
  await context.close();
});

test('a tampered snapshot in localStorage counts as free, then a fresh one is fetched', async () => {
  const { context, page: demo } = await entitledPage('tamper');
  // Forge the cache where no app code runs: the demo page may still be storing the fresh
  // snapshot it fetched (which would overwrite the forgery), so it is closed, and the
  // cache is edited from a blank document of the same origin.
  await demo.close();
  await context.route(`${WWW}/__blank`, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>blank</title>' }));
  const page = await context.newPage();
  await page.goto(`${WWW}/__blank`);
  // Forge: keep the signature, change the payload (extend every grant forever).
  await page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('tollgate.v1:snapshot:'));
    const [p, sig] = localStorage.getItem(key).split('.');
    const json = JSON.parse(atob(p.replace(/-/g, '+').replace(/_/g, '/')));
    for (const g of json.grants) g.valid_to = null;
    json.grants.push({ id: 'forged', product: 'video', tier: 'enterprise', source: 'manual_grant', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null });
    const forged = btoa(JSON.stringify(json)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    localStorage.setItem(key, `${forged}.${sig}`);
  });
  // Hold back the refetch so the refused state can be seen.
  let release;
  const held = new Promise((r) => (release = r));
  await context.route(`${needWorker()}/v1/entitlements`, async (route) => {
    await held;
    await route.continue();
  });
  // The tools page gates in the browser from the cache alone (the demo page would be
  // rendered from the server's own fresh snapshot).
  await page.goto(`${WWW}/tools`);
  await page.waitForSelector('[data-testid="tg-status"][data-problem="bad_signature"]', { timeout: 15_000 });
  await page.waitForSelector('[data-tool="bg-remover"][data-state="locked"]');
  assert.equal(await page.locator('[data-tool="long-form-rewriter"]').getAttribute('data-state'), 'locked');
  await shot(page, 'tampered-locked');
  release();
  await page.waitForSelector('[data-tool="bg-remover"][data-state="unlocked"]', { timeout: 10_000 });
  await page.waitForSelector('[data-testid="tg-status"][data-problem=""]');
  // The good snapshot replaced the forged one.
  const stored = await page.evaluate(() => localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('tollgate.v1:snapshot:'))));
  assert.ok(!JSON.parse(atob(stored.split('.')[0].replace(/-/g, '+').replace(/_/g, '/'))).grants.some((g) => g.id === 'forged'));
  await shot(page, 'tampered-refetched');
  await context.unrouteAll({ behavior: 'ignoreErrors' });
  await context.close();
});

test('network cut: gating still answers from the cached snapshot', async () => {
  const { context, page } = await entitledPage('offline');
  await page.goto(`${WWW}/tools`);
  await page.waitForSelector('[data-tool="bg-remover"][data-state="unlocked"]');
  await markPage(page);
  // 1. The browser goes offline; a refresh (window focus) fails; the answers stay.
  await context.setOffline(true);
  await page.evaluate(() => window.dispatchEvent(new Event('focus')));
  await page.waitForSelector('[data-testid="tg-status"][data-online="false"]', { timeout: 10_000 });
  assert.equal(await page.locator('[data-tool="bg-remover"]').getAttribute('data-state'), 'unlocked');
  assert.equal(await page.locator('[data-tool="ai-blog-writer"]').getAttribute('data-state'), 'locked');
  await shot(page, 'offline-tools');
  await context.setOffline(false);
  // 2. The worker unreachable on a fresh load: the page gates from the cache alone.
  await context.route(`${needWorker()}/**`, (route) => route.abort('internetdisconnected'));
  await page.goto(`${WWW}/tools`);
  await page.waitForSelector('[data-tool="bg-remover"][data-state="unlocked"]', { timeout: 10_000 });
  const status = page.locator('[data-testid="tg-status"]');
  assert.equal(await status.getAttribute('data-source'), 'cache');
  await page.waitForSelector('[data-testid="tg-status"][data-online="false"]');
  await shot(page, 'offline-reload-from-cache');
  await context.unrouteAll({ behavior: 'ignoreErrors' });
  await context.close();
});
