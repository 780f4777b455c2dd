// Money in, through the app as a customer uses it: "Buy" asks the worker for a checkout
// (POST /v1/checkout), the browser goes to the checkout page of the providers' local
// stand-in, which shows the very session the worker built, "Pay" sends the provider's
// webhooks for it to the worker and returns to the success_url, and the tool is unlocked.
// On the account page the subscription's state comes from the database; "Cancel at
// period end" and "Resume" go through the worker (access kept to the period end), and
// "Manage billing" opens the portal the worker asked for, which links back.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, browserWithWorker, checkout, gatingReady, shot, signIn, uniqueEmail, waitForSnapshot } from './lib.mjs';

const browser = browserWithWorker();

const PRO = '[data-testid="pro-tool"]';
const ROW = '[data-testid="subscription"]';

/** The stand-in's page: the session's recorded parameters, by name. */
async function sessionFields(page) {
  return page.$$eval('[data-testid="standin-session"] tr', (rows) =>
    Object.fromEntries(rows.map((r) => [r.querySelector('th').textContent, r.querySelector('td').textContent])),
  );
}

/** "YYYY-MM-DD" of an ISO instant, as the account page shows it (UTC). */
const day = (iso) => new Date(iso).toISOString().slice(0, 10);

test('buy a plan through the UI, then cancel at period end, resume, and open the billing portal', async () => {
  const context = await browser().newContext();
  const user = await signIn(context, uniqueEmail('billing'));
  const page = await context.newPage();
  await page.goto(`${WWW}/tools/demo`);
  await gatingReady(page);
  await page.click('[data-testid="banner-upgrade"]');
  await page.click('[data-testid="buy-CLOUD_CREATION_PRO_MONTHLY"]');

  // The stand-in shows the session exactly as the worker asked Stripe for it.
  await page.waitForURL(/\/dev\/checkout\/cs_test_/);
  const fields = await sessionFields(page);
  assert.equal(fields.mode, 'subscription');
  assert.equal(fields.client_reference_id, user.user_id);
  assert.equal(fields['metadata[offer_key]'], 'CLOUD_CREATION_PRO_MONTHLY');
  assert.equal(fields['metadata[subject]'], `user:${user.user_id}`);
  assert.equal(fields['subscription_data[metadata][offer_key]'], 'CLOUD_CREATION_PRO_MONTHLY');
  assert.match(fields.success_url, /\/tools\/demo\?checkout=success&checkout_offer=CLOUD_CREATION_PRO_MONTHLY$/);
  assert.match(await page.innerText('[data-testid="standin-total"]'), /\$59\.00/);
  await shot(page, 'billing-standin-checkout');
  await page.click('[data-testid="standin-pay"]');

  // Back on the success_url: the webhook has been applied, the tool is open.
  await page.waitForURL((u) => u.pathname === '/tools/demo');
  await page.waitForSelector(PRO, { timeout: 5000 });
  await page.waitForSelector('[data-testid="checkout-return"][data-state="unlocked"]');
  await shot(page, 'billing-unlocked');

  // The account page: the subscription as the database holds it.
  await page.goto(`${WWW}/account`);
  const row = page.locator(ROW).filter({ has: page.locator('[data-testid="subscription-cancel"]') });
  await row.waitFor();
  assert.equal(await row.getAttribute('data-offer'), 'CLOUD_CREATION_PRO_MONTHLY');
  assert.equal(await row.getAttribute('data-status'), 'active');
  assert.equal(await row.getAttribute('data-cancel-at-period-end'), 'false');
  const periodEnd = await row.getAttribute('data-period-end');
  assert.ok(Date.parse(periodEnd) > Date.now() + 27 * 86_400_000, `a month's period: ${periodEnd}`);
  assert.match(await row.locator('[data-testid="subscription-state"]').innerText(), new RegExp(`active · renews on ${day(periodEnd)}`));
  const subscription = await row.getAttribute('data-subscription');
  // Stripe's clock counts whole seconds: the customer cancels a second after buying.
  await new Promise((r) => setTimeout(r, 1100));

  // Cancel at period end: the page waits for the provider's webhook, then shows the end.
  await gatingReady(page);
  await row.locator('[data-testid="subscription-cancel"]').click();
  const canceled = page.locator(`${ROW}[data-subscription="${subscription}"][data-cancel-at-period-end="true"]`);
  await canceled.waitFor({ timeout: 15_000 });
  assert.match(await canceled.locator('[data-testid="subscription-state"]').innerText(), new RegExp(`ends on ${day(periodEnd)}`));
  await page.waitForSelector('[data-testid="subscriptions-message"].ok');
  await shot(page, 'billing-canceled');
  // Access is kept to the period end.
  const snap = await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === `stripe:${subscription}` && g.status === 'canceled'));
  const grant = snap.snapshot.grants.find((g) => g.source_ref === `stripe:${subscription}`);
  assert.equal(Date.parse(grant.valid_to), Date.parse(periodEnd));
  const demo = await context.newPage();
  await demo.goto(`${WWW}/tools/demo`);
  await demo.waitForSelector(PRO);
  await demo.close();
  await new Promise((r) => setTimeout(r, 1100));

  // Resume: renews again.
  await page.locator(`${ROW}[data-subscription="${subscription}"] [data-testid="subscription-resume"]`).click();
  const resumed = page.locator(`${ROW}[data-subscription="${subscription}"][data-cancel-at-period-end="false"]`);
  await resumed.waitFor({ timeout: 15_000 });
  assert.match(await resumed.locator('[data-testid="subscription-state"]').innerText(), new RegExp(`renews on ${day(periodEnd)}`));
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === `stripe:${subscription}` && g.status === 'active'));
  await shot(page, 'billing-resumed');

  // Manage billing: the portal the worker asked for, for this customer, and back.
  await page.click('[data-testid="manage-billing-vcm-suite"]');
  await page.waitForURL(/\/dev\/billing\/bps_/);
  await page.waitForSelector(`[data-testid="standin-portal"] li[data-subscription="${subscription}"][data-status="active"]`);
  await shot(page, 'billing-portal');
  await page.click('[data-testid="portal-return"]');
  await page.waitForURL((u) => u.pathname === '/account');
  await page.waitForSelector(ROW);
  await context.close();
});

test('a 2-cloud bundle: the buyer chooses the clouds; a wrong choice is refused by the worker, in words', async () => {
  const context = await browser().newContext();
  const user = await signIn(context, uniqueEmail('bundle'));
  const page = await context.newPage();
  await page.goto(`${WWW}/tools`);
  await page.waitForSelector('[data-tool="ai-blog-writer"][data-state="locked"]');
  await page.click('[data-tool="ai-blog-writer"]');
  const offer = page.locator('[data-testid="upgrade-modal"] li[data-offer="SUITE_PRO_TWO_CLOUDS_MONTHLY"]');
  await offer.waitFor();
  const box = (cloud) => offer.locator(`input[type="checkbox"][value="${cloud}"]`);
  // The cloud this tool needs comes preselected; the buyer picks the second.
  assert.equal(await box('writing').isChecked(), true);
  const preselected = await offer.locator('input[type="checkbox"]:checked').evaluateAll((els) => els.map((e) => e.value));
  for (const c of preselected) if (c !== 'writing') await box(c).uncheck();
  await box('music').check();
  await box('video').check();
  // Three clouds for a 2-cloud bundle: the worker refuses before any provider call.
  await offer.locator('[data-testid="buy-SUITE_PRO_TWO_CLOUDS_MONTHLY"]').click();
  const refusal = page.locator('[data-testid="upgrade-modal"] [data-testid="checkout-error"]');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /cloud/i);
  assert.match(page.url(), /\/tools/);
  await shot(page, 'bundle-refused');
  await box('video').uncheck();
  await offer.locator('[data-testid="buy-SUITE_PRO_TWO_CLOUDS_MONTHLY"]').click();

  await page.waitForURL(/\/dev\/checkout\/cs_test_/);
  const fields = await sessionFields(page);
  assert.equal(fields['metadata[clouds]'], 'writing,music');
  assert.equal(fields['subscription_data[metadata][clouds]'], 'writing,music');
  await page.click('[data-testid="standin-pay"]');
  await page.waitForURL((u) => u.pathname === '/tools');
  // The chosen clouds are open at pro; another is not.
  await page.waitForSelector('[data-tool="ai-blog-writer"][data-state="unlocked"]', { timeout: 5000 });
  await page.waitForSelector('[data-testid="checkout-return"][data-state="unlocked"]');
  const snap = await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.offer === 'SUITE_PRO_TWO_CLOUDS_MONTHLY'));
  const products = snap.snapshot.grants.filter((g) => g.offer === 'SUITE_PRO_TWO_CLOUDS_MONTHLY').map((g) => `${g.product}:${g.tier}`).sort();
  // The two clouds chosen, and the bundle's own plan grant.
  assert.deepEqual(products, ['music:pro', 'suite:pro', 'writing:pro']);
  assert.equal(await page.getAttribute('[data-tool="bg-remover"]', 'data-state'), 'locked');
  await shot(page, 'bundle-unlocked');

  // A Creation tool: the three-cloud bundle is a switch of the running bundle (keeping its
  // clouds, priced as the difference), not a second subscription.
  await page.click('[data-tool="bg-remover"]');
  const three = page.locator('[data-testid="upgrade-modal"] li[data-offer="SUITE_PRO_THREE_CLOUDS_MONTHLY"]');
  await three.waitFor();
  assert.equal(await three.locator('[data-testid="buy-SUITE_PRO_THREE_CLOUDS_MONTHLY"]').innerText(), 'Switch');
  assert.match(await three.locator('[data-testid="replaces-SUITE_PRO_THREE_CLOUDS_MONTHLY"]').innerText(), /instead of .*\(\+\$21\.00\/month\)/);
  const kept = await three.locator('input[type="checkbox"]:checked').evaluateAll((els) => els.map((e) => e.value).sort());
  assert.deepEqual(kept, ['creation', 'music', 'writing']);
  await shot(page, 'bundle-switch');
  // What the page logged, told with a failure below (the dialog as it was, its requests).
  const logged = [];
  page.on('console', (m) => logged.push(`${m.type()}: ${m.text()}`));
  page.on('request', (r) => r.url().includes('/v1/') && logged.push(`request: ${r.method()} ${r.url()}`));
  await three.locator('[data-testid="buy-SUITE_PRO_THREE_CLOUDS_MONTHLY"]').click();
  await page.waitForSelector('[data-tool="bg-remover"][data-state="unlocked"]', { timeout: 15000 }).catch(async (e) => {
    const dialog = await page.locator('[data-testid="upgrade-modal"]').innerText({ timeout: 500 }).catch(() => '(no dialog open)');
    throw new Error(`${e.message}\nthe dialog after the Switch: ${dialog}\nthe page: ${logged.join('\n') || '(nothing)'}`);
  });
  const after = await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.offer === 'SUITE_PRO_THREE_CLOUDS_MONTHLY' && g.product === 'creation'));
  const moved = after.snapshot.grants.filter((g) => g.status === 'active').map((g) => `${g.offer}:${g.product}`).sort();
  assert.deepEqual(moved, ['creation', 'music', 'suite', 'writing'].map((p) => `SUITE_PRO_THREE_CLOUDS_MONTHLY:${p}`), 'one subscription, moved');
  await context.close();
});

test('a Razorpay top-up on the drafts page: the order the worker created, paid on the stand-in, credits the pool', async () => {
  const context = await browser().newContext();
  await signIn(context, uniqueEmail('topup'));
  const page = await context.newPage();
  await page.goto(`${WWW}/drafts`);
  assert.equal(await page.innerText('[data-testid="ai-credits"]'), '0');
  await page.click('[data-testid="buy-offers"] [data-testid="buy-AI_CREDITS_TOPUP_500"]');
  // A one-time Razorpay purchase is an order (no page of its own at Razorpay: checkout.js
  // opens it); locally the stand-in's page pays it.
  await page.waitForURL(/\/dev\/checkout\/order_/);
  const fields = await sessionFields(page);
  assert.equal(fields.amount, '₹99.00');
  assert.equal(fields['notes[offer_key]'], 'AI_CREDITS_TOPUP_500');
  await page.click('[data-testid="standin-pay"]');
  // Back where the buyer came from, with the credits the webhook gave.
  await page.waitForURL((u) => u.pathname === '/drafts');
  await page.waitForFunction(() => document.querySelector('[data-testid="ai-credits"]')?.textContent === '500');
  await shot(page, 'topup-credited');
  await context.close();
});

test('payment collection paused in the portal locks the plan\'s tools; "Resume" on the account page gives them back', async () => {
  const context = await browser().newContext();
  const user = await signIn(context, uniqueEmail('paused'));
  const bought = await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY' });
  const ref = `stripe:${bought.subscription}`;
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref && g.status === 'active'));
  const page = await context.newPage();
  const row = page.locator(`${ROW}[data-subscription="${bought.subscription}"]`);
  await page.goto(`${WWW}/account`);
  await row.waitFor();
  assert.equal(await row.locator('[data-testid="subscription-unpause"]').count(), 0, 'a running plan has nothing to resume');
  // Stripe's clock counts whole seconds: the pause comes a second after the purchase.
  await new Promise((r) => setTimeout(r, 1100));

  // The portal pauses payment collection (Stripe keeps the status active); the worker reads it as a pause.
  await page.click('[data-testid="manage-billing-vcm-suite"]');
  await page.waitForURL(/\/dev\/billing\/bps_/);
  await page.click(`[data-testid="portal-pause-${bought.subscription}"]`);
  await page.waitForSelector(`[data-testid="portal-collect-${bought.subscription}"]`);
  await shot(page, 'billing-portal-paused');
  const paused = await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref && g.paused_since));
  assert.ok(paused.snapshot.grants.filter((g) => g.source_ref === ref).every((g) => g.paused_since), 'every grant of the plan is paused');
  await page.click('[data-testid="portal-return"]');
  await page.waitForURL((u) => u.pathname === '/account');
  await row.waitFor();
  assert.equal(await row.getAttribute('data-status'), 'paused');
  const demo = await context.newPage();
  await demo.goto(`${WWW}/tools/demo`);
  // (The page may paint the cached snapshot of before the pause first; it revalidates.)
  await demo.waitForSelector('[data-testid="upgrade-banner"][data-reason="paused"]', { timeout: 10_000 });
  assert.equal(await demo.locator(PRO).count(), 0, 'a paused plan gives none of its tools');
  await new Promise((r) => setTimeout(r, 1100));

  // "Resume": the worker asks Stripe to collect again; the webhook gives the plan back.
  await gatingReady(page);
  await row.locator('[data-testid="subscription-unpause"]').click();
  await page.locator(`${ROW}[data-subscription="${bought.subscription}"][data-status="active"]`).waitFor({ timeout: 15_000 });
  await page.waitForSelector('[data-testid="subscriptions-message"].ok');
  assert.match(await page.innerText('[data-testid="subscriptions-message"]'), /running again/);
  await shot(page, 'billing-unpaused');
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.source_ref === ref && g.status === 'active' && !g.paused_since));
  await demo.reload();
  await demo.waitForSelector(PRO, { timeout: 10_000 });
  await context.close();
});
