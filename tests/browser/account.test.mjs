// The account page's history comes from the database: entitlement_history (filled by a
// trigger on cloud_entitlements), read on the server through the REST API with the
// user's own token. A purchase then a cancel at period end show as two events, in order.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, checkout, gatingReady, launch, needWorker, shot, signIn, uniqueEmail, waitForSnapshot } from './lib.mjs';

let browser;
before(async () => {
  needWorker();
  browser = await launch();
});
after(async () => browser?.close());

const events = (page) =>
  page.$$eval('[data-testid="history"] li[data-event]', (els) =>
    els.map((e) => ({ kind: e.dataset.event, ref: e.dataset.sourceRef, at: e.dataset.at })),
  );

test('account history: purchase, then cancel, in order, from the database', async () => {
  const context = await browser.newContext();
  const user = await signIn(context, uniqueEmail('history'));
  const page = await context.newPage();
  await page.goto(`${WWW}/account`);
  await page.waitForSelector('[data-testid="history"][data-state="ready"]');
  assert.equal(await page.locator('[data-testid="no-history"]').count(), 1, 'a new user has no history');

  const bought = await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY' });
  const ref = `stripe:${bought.subscription}`;
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref));
  await page.reload();
  await page.waitForSelector(`[data-testid="history"] li[data-event="purchase"][data-source-ref="${ref}"]`);
  // Two snapshots of one subscription made in the same second have no order (see gating.test.mjs).
  await new Promise((r) => setTimeout(r, 1100));

  // Cancel at period end from the page itself; the history re-renders from the database.
  await gatingReady(page);
  await page.click(`[data-testid="subscription"][data-subscription="${bought.subscription}"] [data-testid="subscription-cancel"]`);
  await page.waitForSelector(`[data-testid="history"] li[data-event="cancel"][data-source-ref="${ref}"]`, { timeout: 15_000 });
  const all = await events(page);
  const kinds = all.map((e) => e.kind);
  assert.ok(all.every((e) => e.ref === ref), `only this user's subscription: ${JSON.stringify(all)}`);
  const purchase = kinds.indexOf('purchase');
  const cancel = kinds.indexOf('cancel');
  assert.ok(purchase >= 0 && cancel > purchase, `purchase before cancel: ${kinds.join(', ')}`);
  for (let i = 1; i < all.length; i++) assert.ok(Date.parse(all[i - 1].at) <= Date.parse(all[i].at), `in time order: ${JSON.stringify(all)}`);
  assert.ok(!kinds.includes('expiry'), 'canceled at period end: not expired yet');
  await shot(page, 'account-history');
  await context.close();
});
