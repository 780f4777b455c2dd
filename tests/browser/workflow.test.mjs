// The Workflow Runner enforced on the server: a Starter subscriber's runs go through the
// worker's `track` (tollgate-react/server in a Next.js route handler), the card shows the
// day's count from the server and locks with the cheapest upgrade after the third run,
// and a fourth run asked for directly is refused 403 whatever the page shows.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, checkout, browserWithWorker, shot, signIn, uniqueEmail, waitForSnapshot } from './lib.mjs';

const browser = browserWithWorker();

const RUNNER = '[data-testid="workflow-runner"]';
const COUNT = '[data-testid="runs-today"]';

test('Starter: 3 workflow runs a day from the server, then locked with the cheapest upgrade', async () => {
  const context = await browser().newContext();
  const user = await signIn(context, uniqueEmail('runs'));
  await checkout(context, { offer: 'SUITE_STARTER_MONTHLY', clouds: [] });
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'suite' && g.tier === 'starter'));
  const page = await context.newPage();
  await page.goto(`${WWW}/tools`);
  await page.waitForSelector(RUNNER);
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes('0 of 3'), COUNT);
  for (let n = 1; n <= 3; n++) {
    await page.click('[data-testid="run-workflow"]');
    await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.textContent?.includes(want), [COUNT, `${n} of 3`]);
  }
  await page.waitForSelector(`${RUNNER}[data-locked="true"]`);
  assert.equal(await page.isDisabled('[data-testid="run-workflow"]'), true);
  const locked = await page.locator('[data-testid="runs-locked"]').innerText();
  assert.match(locked, /Suite Basic|Basic/, `the cheapest plan with more runs is named: ${locked}`);
  await shot(page, 'workflow-locked');
  // Around the page: the route handler refuses the 4th run itself.
  const r = await context.request.post(`${WWW}/api/workflows/run`, { headers: { 'idempotency-key': 'direct-4th' } });
  assert.equal(r.status(), 403, await r.text());
  const body = await r.json();
  assert.equal(body.error.code, 'limit_reached');
  assert.equal(body.error.upgrade.offer, 'SUITE_BASIC_MONTHLY');
  // The server's count is the truth: a fresh page shows 3 of 3 too.
  const again = await context.newPage();
  await again.goto(`${WWW}/tools`);
  await again.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes('3 of 3'), COUNT);
  await context.close();
});

test('signed out, the runner is not offered and its route answers 401', async () => {
  const context = await browser().newContext();
  const page = await context.newPage();
  await page.goto(`${WWW}/tools`);
  await page.waitForSelector('h1');
  assert.equal(await page.locator(RUNNER).count(), 0);
  const r = await context.request.post(`${WWW}/api/workflows/run`);
  assert.equal(r.status(), 401);
  await context.close();
});
