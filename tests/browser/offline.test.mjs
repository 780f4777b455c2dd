// A full reload with the network cut: the service worker (www/public/sw.js) serves the
// app's page and assets from its cache, the page verifies the snapshot it kept in
// localStorage with the wasm package and gates exactly as online; once the snapshot's
// expires_at has passed (the page's clock moved with playwright's clock), everything paid
// is locked and the page says why ("offline, snapshot expired").

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, checkout, gatingReady, launch, needWorker, shot, signIn, uniqueEmail, waitForSnapshot } from './lib.mjs';

let browser;
before(async () => {
  needWorker();
  browser = await launch();
});
after(async () => browser?.close());

const STATUS = '[data-testid="tg-status"]';
const tool = (id) => `[data-tool="${id}"]`;

/** The cached snapshot's payload (the page's localStorage). */
async function cachedSnapshot(page) {
  return page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('tollgate.v1:snapshot:'));
    if (!key) return null;
    const p = localStorage.getItem(key).split('.')[0];
    return JSON.parse(atob(p.replace(/-/g, '+').replace(/_/g, '/')));
  });
}

/**
 * Signs a user in (buying Creation Cloud Pro when `paid`), opens /tools online, and waits until the page gates from a fresh snapshot, that snapshot is
 * in localStorage and the service worker has stored the page and its assets.
 */
async function visitOnline(tag, paid) {
  const context = await browser.newContext();
  const user = await signIn(context, uniqueEmail(tag));
  if (paid) await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY', clouds: [] });
  const snap = await waitForSnapshot(user.access_token, (s) => !paid || s.grants.some((g) => g.product === 'creation' && g.tier === 'pro'));
  const page = await context.newPage();
  await page.goto(`${WWW}/tools`);
  await gatingReady(page);
  await page.waitForSelector(`${STATUS}[data-source="network"], ${STATUS}[data-source="server"]`, { timeout: 10_000 });
  await page.waitForFunction((issued) => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('tollgate.v1:snapshot:'));
    return key && JSON.parse(atob(localStorage.getItem(key).split('.')[0].replace(/-/g, '+').replace(/_/g, '/'))).issued_at >= issued;
  }, snap.snapshot.issued_at);
  await page.waitForSelector('html[data-offline-ready="true"]', { timeout: 15_000 });
  assert.ok(await page.evaluate(() => Boolean(navigator.serviceWorker.controller)), 'the service worker controls the page');
  return { context, page, user };
}

/** Cuts the network and reloads; the page must come from the service worker's cache. */
async function reloadOffline(context, page) {
  // Chromium's HTTP cache would serve the content-hashed assets by itself: empty it, so
  // that everything the reload gets comes from the service worker.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.clearBrowserCache');
  await cdp.detach();
  await context.setOffline(true);
  const response = await page.reload();
  assert.ok(response, 'the reload has a response');
  assert.equal(response.status(), 200);
  assert.equal(response.headers()['x-tollgate-offline'], 'cache', 'served from the cache because the network failed');
  await gatingReady(page);
  // The refetch fails: the answers come from the cached snapshot.
  await page.waitForSelector(`${STATUS}[data-online="false"]`, { timeout: 10_000 });
}

test('offline reload: a paying user keeps the paid tools until the snapshot expires, then they lock', async () => {
  const { context, page } = await visitOnline('offline-paid', true);
  const online = await page.$$eval('[data-tool]', (els) => Object.fromEntries(els.map((e) => [e.dataset.tool, e.dataset.state])));
  assert.equal(online['bg-remover'], 'unlocked');
  assert.equal(online['ai-blog-writer'], 'locked');
  const snapshot = await cachedSnapshot(page);

  // The page's clock is the test's from the reload on (a fake clock also hides the
  // resource timing entries the first visit hands to the service worker, so not before).
  await page.clock.install({ time: Date.now() });
  await reloadOffline(context, page);
  await page.waitForSelector(`${tool('bg-remover')}[data-state="unlocked"]`);
  assert.equal(await page.locator(STATUS).getAttribute('data-source'), 'cache');
  assert.equal(await page.locator(STATUS).getAttribute('data-problem'), 'network');
  // Gated exactly as online: every tool in the same state.
  const offline = await page.$$eval('[data-tool]', (els) => Object.fromEntries(els.map((e) => [e.dataset.tool, e.dataset.state])));
  assert.deepEqual(offline, online);
  await shot(page, 'offline-reload-paid');

  // Past expires_at, still offline: locked, and the page says why.
  const fakeNow = await page.evaluate(() => Date.now());
  await page.clock.fastForward(Date.parse(snapshot.expires_at) - fakeNow + 5_000);
  await page.waitForSelector(`${STATUS}[data-offline-expired="true"]`, { timeout: 10_000 });
  await page.waitForSelector(`${tool('bg-remover')}[data-state="locked"]`);
  assert.equal(await page.locator(STATUS).getAttribute('data-problem'), 'expired');
  assert.match(await page.locator(STATUS).innerText(), /Offline, snapshot expired/);
  const lapsed = await page.$$eval('[data-tool]', (els) => Object.fromEntries(els.map((e) => [e.dataset.tool, e.dataset.state])));
  // Nothing opened by the expiry; what the snapshot opened is closed.
  for (const [id, state] of Object.entries(lapsed)) if (online[id] === 'locked') assert.equal(state, 'locked', id);
  await shot(page, 'offline-expired');

  // A reload after expiry, still offline: the expired snapshot gates nothing.
  await reloadOffline(context, page);
  await page.waitForSelector(`${STATUS}[data-offline-expired="true"]`, { timeout: 10_000 });
  await page.waitForSelector(`${tool('bg-remover')}[data-state="locked"]`);
  const reloaded = await page.$$eval('[data-tool]', (els) => Object.fromEntries(els.map((e) => [e.dataset.tool, e.dataset.state])));
  assert.deepEqual(reloaded, lapsed, 'the same locked state as when it expired in the open page');
  await shot(page, 'offline-expired-reload');
  await context.close();
});

test('offline reload: a free user stays locked', async () => {
  const { context, page } = await visitOnline('offline-free', false);
  const online = await page.$$eval('[data-tool]', (els) => Object.fromEntries(els.map((e) => [e.dataset.tool, e.dataset.state])));
  assert.equal(online['bg-remover'], 'locked');
  await reloadOffline(context, page);
  await page.waitForSelector(`${tool('bg-remover')}[data-state="locked"]`);
  const offline = await page.$$eval('[data-tool]', (els) => Object.fromEntries(els.map((e) => [e.dataset.tool, e.dataset.state])));
  assert.deepEqual(offline, online);
  await shot(page, 'offline-reload-free');
  await context.close();
});

test('offline: a page never visited says it is not saved; the snapshot API is never cached', async () => {
  const { context, page } = await visitOnline('offline-unsaved', false);
  const cached = await page.evaluate(async () => {
    const out = [];
    for (const name of await caches.keys()) {
      for (const req of await (await caches.open(name)).keys()) out.push(req.url);
    }
    return out;
  });
  assert.ok(cached.some((u) => u.endsWith('/tools')), 'the tools page is cached');
  assert.ok(cached.some((u) => u.includes('/_next/static/') && u.endsWith('.wasm')), `the wasm package is cached: ${cached.join(' ')}`);
  assert.ok(!cached.some((u) => u.includes('/v1/entitlements')), 'the snapshot API is never cached');
  await context.setOffline(true);
  const response = await page.goto(`${WWW}/generate?never-visited=1`);
  assert.equal(response.status(), 503);
  assert.equal(response.headers()['x-tollgate-offline'], 'missing');
  await page.waitForSelector('[data-testid="offline-page"]');
  await context.close();
});

test('signing out empties the pages cache (they carry the session); the static files stay', async () => {
  const { context, page } = await visitOnline('offline-signout', false);
  const cachedUrls = () =>
    page.evaluate(async () => {
      const out = {};
      for (const name of await caches.keys()) out[name] = (await (await caches.open(name)).keys()).map((r) => r.url);
      return out;
    });
  const before = await cachedUrls();
  assert.ok(Object.values(before).flat().some((u) => u.endsWith('/tools')));
  // The sign-out request goes through the service worker, as the header's form sends it.
  await page.evaluate(() => fetch('/api/dev/signout', { method: 'POST', redirect: 'manual' }));
  const after = await cachedUrls();
  assert.ok(!Object.values(after).flat().some((u) => u.endsWith('/tools')), `no page left: ${JSON.stringify(after)}`);
  assert.ok(Object.values(after).flat().some((u) => u.includes('/_next/static/')), 'static files kept');
  await context.close();
});
