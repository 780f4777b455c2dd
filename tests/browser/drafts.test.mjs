// The Razorpay AI app's drafts page: a user who never paid writes exactly 2 drafts (the
// catalog's free drafts, given on their first request), each spent by the worker's `track`
// in a route handler before the (simulated) model call; the third is refused with the
// cheapest offer that buys more, on the page and when asked for directly.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, browserWithWorker, shot, signIn, uniqueEmail } from './lib.mjs';

const browser = browserWithWorker();

const FREE = '[data-testid="free-drafts"]';
const RESULT = '[data-testid="draft-result"]';

test('a user who never paid writes 2 drafts; the third is refused with the cheapest offer', async () => {
  const context = await browser().newContext();
  await signIn(context, uniqueEmail('drafts'));
  const page = await context.newPage();
  await page.goto(`${WWW}/drafts`);
  await page.waitForSelector(FREE);
  assert.equal(await page.innerText(FREE), '2', 'two free drafts from the first request');
  assert.equal(await page.innerText('[data-testid="ai-credits"]'), '0');
  for (const left of ['1', '0']) {
    await page.click('[data-testid="write-draft"]');
    await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.textContent === want, [FREE, left]);
    await page.waitForSelector(`${RESULT}[data-status="200"]`);
  }
  assert.equal(await page.locator('[data-testid="draft-list"] li').count(), 2);
  await page.click('[data-testid="write-draft"]');
  await page.waitForSelector(`${RESULT}:not([data-status="200"])`);
  const refused = await page.innerText(RESULT);
  assert.match(refused, /free drafts are used/, refused);
  assert.match(await page.innerText('[data-testid="draft-refused-offer"]'), /500 AI credits/, 'the cheapest offer: the top-up');
  assert.equal(await page.locator('[data-testid="draft-list"] li').count(), 2, 'no third draft');
  await shot(page, 'drafts-refused');
  // The server's count is the truth: a fresh page shows none left and the offer.
  const again = await context.newPage();
  await again.goto(`${WWW}/drafts`);
  await again.waitForSelector(FREE);
  assert.equal(await again.innerText(FREE), '0');
  assert.match(await again.innerText('[data-testid="drafts-offer"]'), /500 AI credits/);
  // Around the page: the route handler refuses a third draft itself.
  const r = await context.request.post(`${WWW}/api/drafts`, { headers: { 'idempotency-key': 'direct-third' } });
  assert.ok(r.status() === 402 || r.status() === 403, `${r.status()} ${await r.text()}`);
  assert.equal((await r.json()).error.upgrade.offer, 'AI_CREDITS_TOPUP_500');
  await context.close();
});

test('signed out, the drafts page asks to sign in and its route answers 401', async () => {
  const context = await browser().newContext();
  const page = await context.newPage();
  await page.goto(`${WWW}/drafts`);
  await page.waitForSelector('h1');
  assert.equal(await page.locator('[data-testid="drafts"]').count(), 0);
  assert.match(await page.innerText('main'), /Sign in to write drafts/);
  assert.equal((await context.request.post(`${WWW}/api/drafts`)).status(), 401);
  await context.close();
});
