// The generate page holds video seconds at the Video Studio worker for each generation
// (`/v1/track` with `"hold": true`), then captures them when the (simulated) generation
// succeeds or releases them when it fails. The balance is read from the store (the app's
// `/api/balance`, the user's own credit lots through the REST API), not from the form.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { STUDIO, WWW, browserWithWorker, checkout, shot, signIn, uniqueEmail } from './lib.mjs';

const browser = browserWithWorker();

const RESULT = '[data-testid="generate-result"]';

/** The user's video seconds, as the store holds them. */
async function balance(context) {
  const r = await context.request.get(`${WWW}/api/balance`);
  assert.equal(r.status(), 200, await r.text());
  return (await r.json()).total;
}

async function waitForBalance(context, want, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let got;
  while (Date.now() < deadline) {
    got = await balance(context);
    if (got === want) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.fail(`the balance never became ${want} (last: ${got})`);
}

let runs = 0;

/** Submits one generation of `seconds` and waits for how it ended. */
async function generate(page, seconds) {
  await page.fill('[data-testid="seconds"]', String(seconds));
  await page.waitForSelector('[data-testid="submit"]:not([disabled])');
  await page.click('[data-testid="submit"]');
  const done = `${RESULT}[data-run="${++runs}"]:not([data-state="holding"])`;
  await page.waitForSelector(done);
  return { state: await page.getAttribute(done, 'data-state'), text: await page.innerText(done) };
}

test('with token seconds: a generation holds and captures them; a failed one gives them all back', async () => {
  const context = await browser().newContext();
  await signIn(context, uniqueEmail('holds'));
  await checkout(context, { offer: 'VIDEO_TOKENS_30_MIN', worker: STUDIO });
  await waitForBalance(context, 1800);
  const page = await context.newPage();
  await page.goto(`${WWW}/generate`);
  await page.waitForSelector('[data-testid="quote-cost"]');

  const ok = await generate(page, 45);
  assert.equal(ok.state, 'captured', ok.text);
  assert.match(ok.text, /captured, 45s spent/);
  assert.equal(await balance(context), 1800 - 45, 'the captured hold spent exactly its seconds');

  await page.check('[data-testid="simulate-failure"]');
  const failed = await generate(page, 60);
  assert.equal(failed.state, 'released', failed.text);
  assert.match(failed.text, /released and 1m 0s given back/);
  assert.equal(await balance(context), 1800 - 45, 'the released hold gave back exactly what it took');

  // More than the balance: refused, nothing held, and the overage choice does not matter.
  const short = await generate(page, 5000);
  assert.equal(short.state, 'refused', short.text);
  assert.match(short.text, /Not enough video seconds: 29m 15s available/);
  assert.match(short.text, /overage is never held/);
  assert.equal(await balance(context), 1800 - 45);
  await shot(page, 'generate-holds');

  // The page's own balance widget, read afresh, shows the store's figure.
  const again = await context.newPage();
  await again.goto(`${WWW}/generate`);
  await again.waitForFunction(() => document.querySelector('[data-testid="tokens"]')?.textContent === '29m 15s');
  await context.close();
});
