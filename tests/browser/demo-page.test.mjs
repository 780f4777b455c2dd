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

test('signed in: /tools is server-rendered in its right state from the snapshot cookie, and a forged cookie is not believed', async () => {
  const context = await browser.newContext();
  const user = await signIn(context, uniqueEmail('tools-cookie'));
  await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY', clouds: [] });
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'creation' && g.tier === 'pro'));
  // Without the cookie the server fetches the snapshot from the worker.
  let raw = await html(context, '/tools');
  assert.match(raw, /data-tool="bg-remover" data-state="unlocked"/);
  assert.match(raw, /data-tool="video-upscaler" data-state="locked"/);
  // A page in the browser: the provider verifies the snapshot and writes the cookie.
  const page = await context.newPage();
  await page.goto(`${WWW}/tools`);
  await gatingReady(page);
  await page.waitForFunction(() => document.cookie.includes('tollgate-snapshot='));
  const cookie = (await context.cookies(WWW)).find((c) => c.name === 'tollgate-snapshot');
  assert.ok(cookie?.value, 'the provider wrote the snapshot cookie');
  raw = await html(context, '/tools');
  assert.match(raw, /data-tool="bg-remover" data-state="unlocked"/, 'the cookie snapshot renders the unlocked tool');
  assert.doesNotMatch(raw, /data-state="pending"/, 'no tool waits for the browser');

  // Another user's valid cookie, and a cookie whose payload was altered, are refused: the
  // server falls back to the worker and still renders this user's own state.
  const other = await browser.newContext();
  await signIn(other, uniqueEmail('tools-cookie-other'));
  const [payload, signature] = cookie.value.split('.');
  const altered = Buffer.from(payload, 'base64url').toString('utf8').replace(/"tier":"pro"/g, '"tier":"enterprise"');
  const forged = `${Buffer.from(altered).toString('base64url')}.${signature}`;
  for (const value of [forged, cookie.value]) {
    await other.addCookies([{ name: 'tollgate-snapshot', value, url: WWW }]);
    const r = await html(other, '/tools');
    assert.match(r, /data-tool="bg-remover" data-state="locked"/, 'a free user stays locked whatever cookie they send');
  }
  await other.close();
  await context.close();
});
