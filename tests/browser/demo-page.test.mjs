// The VCM Suite's demo tool page in its three states, rendered on the server: the HTML
// itself (before any script) already shows the right parts, and the hydrated page agrees.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, checkout, gatingReady, launch, shot, signIn, uniqueEmail, waitForSnapshot } from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => browser?.close());

async function html(context, path) {
  const r = await context.request.get(`${WWW}${path}`);
  assert.equal(r.status(), 200);
  return r.text();
}

test('signed out: the free part only', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const raw = await html(context, '/tools/demo');
  assert.match(raw, /data-testid="free-tool"/);
  assert.doesNotMatch(raw, /data-testid="pro-tool"/);
  assert.doesNotMatch(raw, /data-testid="upgrade-banner"/);
  await page.goto(`${WWW}/tools/demo`);
  await gatingReady(page);
  assert.equal(await page.locator('[data-testid="free-tool"]').count(), 1);
  assert.equal(await page.locator('[data-testid="pro-tool"]').count(), 0);
  assert.equal(await page.locator('[data-testid="upgrade-banner"]').count(), 0);
  await shot(page, 'demo-signed-out');
  await context.close();
});

test('signed in without the entitlement: free part and upgrade banner', async () => {
  const context = await browser.newContext();
  await signIn(context, uniqueEmail('demo-free'));
  const raw = await html(context, '/tools/demo');
  assert.match(raw, /data-testid="free-tool"/);
  assert.match(raw, /data-testid="upgrade-banner"/, 'the server renders the banner (first paint)');
  assert.doesNotMatch(raw, /data-testid="pro-tool"/);
  const page = await context.newPage();
  await page.goto(`${WWW}/tools/demo`);
  await gatingReady(page);
  await page.waitForSelector('[data-testid="upgrade-banner"]');
  assert.equal(await page.locator('[data-testid="pro-tool"]').count(), 0);
  // The banner's offer comes from the catalog through the core's cheapest-upgrade answer.
  assert.match(await page.locator('[data-testid="banner-offer"]').innerText(), /Creation Cloud Pro — \$59\.00\/month/);
  await shot(page, 'demo-signed-in-free');
  await context.close();
});

test('entitled: the pro part, already in the server-rendered HTML', async () => {
  const context = await browser.newContext();
  const user = await signIn(context, uniqueEmail('demo-pro'));
  await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY', clouds: [] });
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'creation' && g.tier === 'pro'));
  const raw = await html(context, '/tools/demo');
  assert.match(raw, /data-testid="pro-tool"/);
  assert.doesNotMatch(raw, /data-testid="upgrade-banner"/);
  const page = await context.newPage();
  await page.goto(`${WWW}/tools/demo`);
  await gatingReady(page);
  await page.waitForSelector('[data-testid="pro-tool"]');
  assert.equal(await page.locator('[data-testid="upgrade-banner"]').count(), 0);
  await shot(page, 'demo-entitled');
  await context.close();
});
