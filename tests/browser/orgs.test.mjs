// Organizations of the Org Seats app, run by their members from the app: an owner creates
// an organization, buys a 2-seat plan on the checkout stand-in, invites three people from
// the organization page (the third seat refused by the worker, in words) and sends each
// a link; each invitee accepts on /invites/<token> (another address and a second use
// are refused); the page shows "2 of 2 seats used", the members with roles and seats; a
// member without a seat sees every feature of the plan locked (decided by the package from
// their signed snapshot), until the owner takes a seat from one member and gives it to
// them. A payment past due shows the grace banner, with the end of the grace period.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import Stripe from 'stripe';

import { ORG, WWW, browserWithWorker, callWorker, checkout, shot, signIn, uniqueEmail } from './lib.mjs';

const browser = browserWithWorker();

const SEATS = '[data-testid="org-seats"]';
const seatsText = (page) => page.innerText(SEATS);
const member = (page, email) => page.locator(`[data-testid="member"][data-email="${email}"]`);

/** Features of the page's "Your access" table: `{ feature: 'locked' | 'unlocked' }`. */
async function features(page) {
  return page.$$eval('[data-testid="feature"]', (rows) => Object.fromEntries(rows.map((r) => [r.dataset.feature, r.dataset.state])));
}

/** Clicks `selector` on the organization page and waits for the worker's answer to it. */
async function answered(page, selector) {
  const before = Number(await page.getAttribute('[data-testid="organization"]', 'data-answers'));
  await page.click(selector);
  await page.waitForSelector(`[data-testid="organization"][data-answers="${before + 1}"]`);
}

/** Invites `email` from the open organization page; answers the invite link, or null and the refusal. */
async function invite(page, email, { seat = true, role = 'member' } = {}) {
  await page.fill('[data-testid="invite-email"]', email);
  await page.selectOption('[data-testid="invite-role"]', role);
  await page.setChecked('[data-testid="invite-seat"]', seat);
  await answered(page, '[data-testid="invite-send"]');
  if (await page.locator('[data-testid="org-message"].error').count()) {
    return { link: null, refusal: await page.innerText('[data-testid="org-message"]') };
  }
  // The new invite is listed once the page is rendered again.
  await page.waitForSelector(`[data-testid="invite"][data-email="${email}"]`);
  return { link: await page.getAttribute(`[data-testid="invite-link"][data-email="${email}"]`, 'href'), refusal: null };
}

/** A signed-in invitee opens the link and accepts; answers what the page shows. */
async function accept(context, link) {
  const page = await context.newPage();
  await page.goto(link);
  await page.click('[data-testid="invite-accept"]');
  const done = page.locator('[data-testid="invite-accepted"], [data-testid="invite-error"]');
  await done.first().waitFor();
  const ok = await page.locator('[data-testid="invite-accepted"]').count();
  const out = ok
    ? { ok: true, seat: await page.getAttribute('[data-testid="invite-accepted"]', 'data-seat'), org: await page.getAttribute('[data-testid="invite-accepted"]', 'data-org') }
    : { ok: false, code: await page.getAttribute('[data-testid="invite-error"]', 'data-code'), text: await page.innerText('[data-testid="invite-error"]') };
  return { page, ...out };
}

test('an owner buys 2 seats and invites by link; the page counts the seats, an unseated member sees the plan locked', async () => {
  const ownerCtx = await browser().newContext();
  const ownerEmail = uniqueEmail('org-owner');
  await signIn(ownerCtx, ownerEmail);
  const page = await ownerCtx.newPage();

  // A new organization: the owner lands on its page, with no plan yet.
  await page.goto(`${WWW}/orgs`);
  await page.waitForSelector('[data-testid="no-orgs"]');
  await page.fill('[data-testid="org-name"]', 'Acme Learning');
  await page.click('[data-testid="create-org-submit"]');
  await page.waitForURL(/\/orgs\/[0-9a-f-]{36}$/);
  const org = new URL(page.url()).pathname.split('/').pop();
  assert.equal(await page.getAttribute('[data-testid="organization"]', 'data-role'), 'owner');
  assert.equal(await page.getAttribute('[data-testid="org-plan"]', 'data-status'), 'none');
  assert.match(await seatsText(page), /0 of 0 seats used/);

  // Two seats of Business, bought for the organization through the worker's checkout.
  await page.selectOption('[data-testid="buy-offer"]', 'ORG_BUSINESS_MONTHLY');
  await page.fill('[data-testid="buy-quantity"]', '2');
  await page.click('[data-testid="buy-plan"]');
  await page.waitForURL(/\/dev\/checkout\/cs_test_/);
  const fields = await page.$$eval('[data-testid="standin-session"] tr', (rows) =>
    Object.fromEntries(rows.map((r) => [r.querySelector('th').textContent, r.querySelector('td').textContent])),
  );
  assert.equal(fields['metadata[subject]'], `org:${org}`);
  assert.equal(fields['metadata[offer_key]'], 'ORG_BUSINESS_MONTHLY');
  assert.equal(fields.quantity, '2');
  assert.match(await page.innerText('[data-testid="standin-total"]'), /90\.00/);
  await page.click('[data-testid="standin-pay"]');
  await page.waitForURL((u) => u.pathname === `/orgs/${org}`);
  await page.waitForSelector('[data-testid="org-plan"][data-tier="BUSINESS"][data-status="active"]');
  assert.match(await seatsText(page), /0 of 2 seats used/);
  assert.equal(await page.locator('[data-testid="grace-banner"]').count(), 0);

  // Three invites with a seat: the worker refuses the third while two are pending.
  const ann = uniqueEmail('org-ann');
  const bob = uniqueEmail('org-bob');
  const cat = uniqueEmail('org-cat');
  const a = await invite(page, ann);
  const b = await invite(page, bob);
  assert.ok(a.link && b.link, JSON.stringify([a, b]));
  assert.match(await seatsText(page), /0 of 2 seats used · 2 reserved by pending invites · 0 available/);
  const refused = await invite(page, cat);
  assert.equal(refused.link, null);
  assert.match(refused.refusal, /no_seat/);
  assert.match(refused.refusal, /all 2 seat\(s\) are taken/);
  const c = await invite(page, cat, { seat: false });
  assert.ok(c.link);
  assert.deepEqual(
    await page.$$eval('[data-testid="invite"]', (xs) => xs.map((x) => [x.dataset.email, x.dataset.seat, x.dataset.state])),
    [[ann, 'true', 'pending'], [bob, 'true', 'pending'], [cat, 'false', 'pending']],
  );
  await shot(page, 'orgs-invited');

  // Each invitee accepts their link; another address and a second use are refused.
  const ctx = {};
  for (const email of [ann, bob, cat]) {
    ctx[email] = await browser().newContext();
    await signIn(ctx[email], email);
  }
  const wrong = await accept(ctx[cat], a.link);
  assert.deepEqual([wrong.ok, wrong.code], [false, 'wrong_email']);
  await shot(wrong.page, 'orgs-invite-wrong-email');
  for (const [email, link, seat] of [[ann, a.link, 'true'], [bob, b.link, 'true'], [cat, c.link, 'false']]) {
    const r = await accept(ctx[email], link);
    assert.deepEqual([r.ok, r.seat, r.org], [true, seat, org], `${email}: ${JSON.stringify(r)}`);
    // Seat facts a second apart apply in the order they were made.
    await new Promise((res) => setTimeout(res, 1100));
  }
  // Ann opening her link again is answered as her acceptance; anyone else is refused.
  const again = await accept(ctx[ann], a.link);
  assert.deepEqual([again.ok, again.seat, again.org], [true, 'true', org], JSON.stringify(again));
  const used = await accept(ctx[bob], a.link);
  assert.deepEqual([used.ok, used.code], [false, 'invite_used']);

  // The owner's page: 2 of 2 seats used, every member with role and seat, no invite left.
  await page.reload();
  assert.match(await seatsText(page), /2 of 2 seats used/);
  assert.deepEqual(
    await page.$$eval('[data-testid="member"]', (xs) => xs.map((x) => [x.dataset.email, x.dataset.role, x.dataset.seat])),
    [[ownerEmail, 'owner', 'false'], [ann, 'member', 'true'], [bob, 'member', 'true'], [cat, 'member', 'false']],
  );
  await page.waitForSelector('[data-testid="no-invites"]');
  await shot(page, 'orgs-owner');

  // Cat holds no seat: the plan's features are all locked for her; Ann's are open.
  const catPage = await ctx[cat].newPage();
  await catPage.goto(`${WWW}/orgs/${org}`);
  assert.equal(await catPage.getAttribute('[data-testid="my-seat"]', 'data-seat'), 'false');
  assert.equal(await catPage.getAttribute('[data-testid="my-access-summary"]', 'data-has-seat'), 'false');
  const locked = await features(catPage);
  assert.equal(Object.keys(locked).length, 6, JSON.stringify(locked));
  assert.ok(Object.values(locked).every((s) => s === 'locked'), JSON.stringify(locked));
  assert.match(await catPage.innerText(SEATS), /2 of 2 seats used/);
  assert.equal(await catPage.locator('[data-testid="members"], [data-testid="invite-form"]').count(), 0, 'a member manages nothing');
  await shot(catPage, 'orgs-member-without-seat');
  const annPage = await ctx[ann].newPage();
  await annPage.goto(`${WWW}/orgs/${org}`);
  const open = await features(annPage);
  for (const f of ['ai_assistant_access', 'custom_branding', 'sso_enabled']) assert.equal(open[f], 'unlocked', f);

  // No seat is free: giving Cat one is refused by the worker. Taking Bob's frees one.
  await answered(page, `[data-testid="member"][data-email="${cat}"] [data-testid="give-seat"]`);
  assert.match(await page.innerText('[data-testid="org-message"].error'), /no_seat/);
  await member(page, bob).locator('[data-testid="take-seat"]').click();
  await page.waitForSelector(`[data-testid="member"][data-email="${bob}"][data-seat="false"]`);
  assert.match(await seatsText(page), /1 of 2 seats used/);
  // A seat fact counts at its second: the next one a second later.
  await new Promise((res) => setTimeout(res, 1100));
  await member(page, cat).locator('[data-testid="give-seat"]').click();
  await page.waitForSelector(`[data-testid="member"][data-email="${cat}"][data-seat="true"]`);
  assert.match(await seatsText(page), /2 of 2 seats used/);
  await catPage.reload();
  const now = await features(catPage);
  assert.ok(Object.values(now).every((s) => s === 'unlocked'), `with a seat, Business opens every feature: ${JSON.stringify(now)}`);
  const bobPage = await ctx[bob].newPage();
  await bobPage.goto(`${WWW}/orgs/${org}`);
  assert.ok(Object.values(await features(bobPage)).every((s) => s === 'locked'), 'Bob lost the plan with his seat');

  // Roles are the owner's: Ann becomes an admin, and then sees the members.
  await member(page, ann).locator('[data-testid="member-role"]').selectOption('admin');
  await page.waitForSelector(`[data-testid="member"][data-email="${ann}"][data-role="admin"]`);
  await annPage.reload();
  await annPage.waitForSelector('[data-testid="members"]');
  assert.equal(await annPage.getAttribute('[data-testid="organization"]', 'data-role'), 'admin');
  // An admin cannot demote the owner: the worker refuses (no role control is offered to
  // admins, so the request is sent as the page would).
  const demote = await callWorker(ctx[ann], `/v1/orgs/${org}/members/${(await member(annPage, ownerEmail).getAttribute('data-user'))}`, { role: 'member' }, ORG, 'PATCH');
  assert.deepEqual([demote.status, demote.json.error.code], [403, 'owner_only']);

  // A pending invite can be revoked.
  const dan = uniqueEmail('org-dan');
  const d = await invite(page, dan, { seat: false });
  assert.ok(d.link);
  await page.locator(`[data-testid="invite"][data-email="${dan}"] [data-testid="revoke-invite"]`).click();
  await page.waitForSelector('[data-testid="no-invites"]');
  const danCtx = await browser().newContext();
  await signIn(danCtx, dan);
  const late = await accept(danCtx, d.link);
  assert.deepEqual([late.ok, late.code], [false, 'invite_revoked']);
  await shot(page, 'orgs-owner-after');

  // The organizations list shows each member's own.
  const list = await ctx[cat].newPage();
  await list.goto(`${WWW}/orgs`);
  const row = list.locator(`[data-testid="my-org"][data-org="${org}"]`);
  assert.deepEqual([await row.getAttribute('data-role'), await row.getAttribute('data-seat')], ['member', 'true']);
  assert.match(await row.innerText(), /2 of 2 seats used/);
  for (const x of [ownerCtx, danCtx, ...Object.values(ctx)]) await x.close();
});

test('a payment past due: the organization page shows the grace banner, and until when the plan stays', async () => {
  const ownerCtx = await browser().newContext();
  await signIn(ownerCtx, uniqueEmail('grace-owner'));
  const made = await callWorker(ownerCtx, '/v1/orgs', { name: 'Late Payers' }, ORG);
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const org = made.json.id;
  const bought = await checkout(ownerCtx, { offer: 'ORG_PROFESSIONAL_YEARLY', quantity: 1, organization_id: org, worker: ORG });
  assert.ok(bought.subscription, JSON.stringify(bought));

  // Stripe's invoice.payment_failed for the subscription, signed as Stripe signs it, a
  // second after the payment (Stripe's clock counts whole seconds).
  await new Promise((res) => setTimeout(res, 1100));
  const at = Math.floor(Date.now() / 1000);
  const inv = {
    id: `in_${at}grace`, object: 'invoice', customer: null, status: 'open', paid: false, attempt_count: 1,
    amount_due: 25000, currency: 'cad', created: at,
    parent: { type: 'subscription_details', subscription_details: { subscription: bought.subscription, metadata: {} } },
    lines: { object: 'list', data: [] },
  };
  const event = { id: `evt_${at}grace`, object: 'event', api_version: '2025-03-31.basil', created: at, data: { object: inv }, livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type: 'invoice.payment_failed' };
  const payload = JSON.stringify(event);
  const secret = process.env.STRIPE_WEBHOOK_SECRET;
  assert.ok(secret, 'STRIPE_WEBHOOK_SECRET is set by cargo xtask');
  const sig = new Stripe('sk_test_unused', { telemetry: false }).webhooks.generateTestHeaderString({ payload, secret });
  const r = await fetch(`${ORG}/webhooks/stripe`, { method: 'POST', headers: { 'stripe-signature': sig, 'content-type': 'application/json' }, body: payload });
  assert.equal(r.status, 200, await r.text());

  const page = await ownerCtx.newPage();
  await page.goto(`${WWW}/orgs/${org}`);
  await page.waitForSelector('[data-testid="org-plan"][data-tier="PROFESSIONAL"][data-status="past_due"]');
  const banner = await page.innerText('[data-testid="grace-banner"]');
  // The catalog's seven days of grace, counted from the failure.
  const ends = new Date((at + 7 * 86_400) * 1000).toISOString().slice(0, 10);
  assert.match(banner, new RegExp(`Payment past due.*until ${ends}`, 's'));
  await shot(page, 'orgs-grace');
  await ownerCtx.close();
});
