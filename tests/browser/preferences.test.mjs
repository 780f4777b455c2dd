// A user sets their own overage choice on the generate page: the form reads and writes the
// Video Studio worker's `/v1/preferences` (cross-origin, with the user's token), and the
// choice is what the worker then enforces.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, browserWithWorker, shot, signIn, uniqueEmail } from './lib.mjs';

const browser = browserWithWorker();

const FORM = '[data-testid="overage-preferences"]';

test('the overage form shows the default, saves a choice, and the worker keeps it', async () => {
  const context = await browser().newContext();
  const user = await signIn(context, uniqueEmail('overage'));
  const page = await context.newPage();
  await page.goto(`${WWW}/generate`);
  await page.waitForSelector(FORM);
  assert.equal(await page.isChecked('[data-testid="allow-overages"]'), false);
  assert.equal(await page.inputValue('[data-testid="overage-cap"]'), '100.00', 'the catalog default, $100.00');
  await page.check('[data-testid="allow-overages"]');
  await page.fill('[data-testid="overage-cap"]', '25.5');
  await page.click('[data-testid="save-overage"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="overage-message"]')?.textContent === 'Saved.');
  await shot(page, 'overage-saved');
  // A cap that is not an amount is refused before anything is sent.
  await page.fill('[data-testid="overage-cap"]', '-3');
  await page.click('[data-testid="save-overage"]');
  await page.waitForFunction(() => /Write the cap as an amount/.test(document.querySelector('[data-testid="overage-message"]')?.textContent ?? ''));
  // What the worker stored, read again on a fresh page.
  const again = await context.newPage();
  await again.goto(`${WWW}/generate`);
  await again.waitForSelector(FORM);
  assert.equal(await again.isChecked('[data-testid="allow-overages"]'), true);
  assert.equal(await again.inputValue('[data-testid="overage-cap"]'), '25.50');
  assert.ok(user.access_token);
  await context.close();
});
