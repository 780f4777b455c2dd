// Signing in keeps the user on the origin they came to. The sign-in and sign-out stand-ins
// answer 303 with a path (`Location: /tools`), never an absolute URL: in a route handler
// Next's `req.url` carries the host name the server was started with (`localhost` by
// default), not the one the browser asked for, and a redirect built from it sent the user
// to another origin, where the session cookie just set does not exist (signed out).
// The suite runs against http://127.0.0.1:<port>; every check below is on that origin.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

import { AUTH_COOKIE, WWW, gatingReady, launch, sessionCookie, shot, uniqueEmail } from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => browser?.close());

const ORIGIN = new URL(WWW).origin;
const WHO = '[data-testid="signed-in-as"]';
const STATUS = '[data-testid="tg-status"]';
const SIGN_OUT = 'header form[action="/api/dev/signout"] button[type="submit"]';

/** A redirect of the app names a path of this site, so the browser keeps its origin. */
function assertPath(location, want) {
  assert.ok(location, 'a 303 names where to go');
  assert.ok(location.startsWith('/') && !location.startsWith('//') && !location.includes('://'), `Location is a path, not a URL: ${location}`);
  assert.equal(new URL(location, WWW).origin, ORIGIN);
  assert.equal(location, want);
}

/** Submits a form and waits until the page has left `from` (wherever it went). */
async function submitAndLeave(page, from, button) {
  await Promise.all([
    page.waitForURL((u) => u.pathname !== from, { waitUntil: 'domcontentloaded', timeout: 15_000 }),
    page.click(button),
  ]);
}

/** The page is on the test's own origin at `path`, with the text of what it shows in the message. */
async function assertLandedOn(page, path) {
  const url = page.url();
  const body = await page.evaluate(() => document.body?.innerText ?? '').catch(() => '');
  assert.equal(new URL(url).origin, ORIGIN, `the browser left the origin it signed in on: ${url}\n${body.slice(0, 300)}`);
  assert.equal(new URL(url).pathname, path, `landed on ${url}\n${body.slice(0, 300)}`);
}

test('the sign-in and sign-out stand-ins answer 303 with a path of this site', async () => {
  const context = await browser.newContext();
  const email = uniqueEmail('redirect');
  let r = await context.request.post(`${WWW}/api/dev/signin`, { form: { email }, maxRedirects: 0 });
  assert.equal(r.status(), 303, await r.text());
  assertPath(r.headers()['location'], '/tools');
  const session = await sessionCookie(context);
  assert.ok(session?.access_token, 'the Supabase session cookie is set for this origin');
  assert.equal(session.user.email, email);
  assert.ok(session.expires_at > Date.now() / 1000, 'the session has not expired');

  r = await context.request.post(`${WWW}/api/dev/signin`, { form: { email, next: '/account' }, maxRedirects: 0 });
  assert.equal(r.status(), 303);
  assertPath(r.headers()['location'], '/account');
  // Anything that is not a path of this site falls back to /tools.
  for (const next of ['//elsewhere.example/tools', '/\\elsewhere.example', 'https://elsewhere.example/', 'tools']) {
    r = await context.request.post(`${WWW}/api/dev/signin`, { form: { email, next }, maxRedirects: 0 });
    assert.equal(r.status(), 303, `next=${next}`);
    assertPath(r.headers()['location'], '/tools');
  }

  r = await context.request.post(`${WWW}/api/dev/signout`, { maxRedirects: 0 });
  assert.equal(r.status(), 303);
  assertPath(r.headers()['location'], '/tools');
  assert.equal(await sessionCookie(context), null, 'signing out clears the session cookie');
  await context.close();
});

test('signing in through the sign-in page lands signed in, on the same origin; signing out too', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const email = uniqueEmail('signin-form');

  await page.goto(`${WWW}/signin`);
  await page.fill('[data-testid="email"]', email);
  await submitAndLeave(page, '/signin', '[data-testid="signin"]');
  await assertLandedOn(page, '/tools');
  // Signed in: the server rendered the user's email in the header, and the gates run for
  // a signed-in user (not the signed-out free tiers).
  await page.waitForSelector(WHO);
  assert.equal((await page.locator(WHO).innerText()).trim(), email);
  await gatingReady(page);
  assert.doesNotMatch(await page.locator(STATUS).innerText(), /Signed out/);
  assert.ok((await sessionCookie(context))?.access_token, 'the session cookie is set for this origin');
  await shot(page, 'signin-form-landed');

  // Sign out from the header of another page: back on /tools, same origin, signed out.
  await page.goto(`${WWW}/account`);
  await page.waitForSelector(WHO);
  await submitAndLeave(page, '/account', SIGN_OUT);
  await assertLandedOn(page, '/tools');
  await page.waitForSelector('header a[href="/signin"]');
  assert.equal(await page.locator(WHO).count(), 0, 'signed out');
  await gatingReady(page);
  assert.match(await page.locator(STATUS).innerText(), /Signed out/);
  await context.close();
});

test('sign-in with a next page (the account page) lands there, signed in, on the same origin', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const email = uniqueEmail('signin-next');

  // The account page's own link for signed-out visitors.
  await page.goto(`${WWW}/account`);
  await Promise.all([page.waitForURL((u) => u.pathname === '/signin'), page.click('main a[href="/signin?next=/account"]')]);
  await page.fill('[data-testid="email"]', email);
  await submitAndLeave(page, '/signin', '[data-testid="signin"]');
  await assertLandedOn(page, '/account');
  await page.waitForSelector(WHO);
  assert.equal((await page.locator(WHO).innerText()).trim(), email);
  assert.match(await page.locator('main').innerText(), new RegExp(`Signed in as ${email.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  await shot(page, 'signin-next-account');
  await context.close();
});

test('a session cookie whose access token is not signed with the project key is no session', async () => {
  const context = await browser.newContext();
  const email = uniqueEmail('forged-session');
  await context.request.post(`${WWW}/api/dev/signin`, { data: { email } });
  const session = await sessionCookie(context);
  assert.ok(session?.access_token);
  // The same claims, re-signed with a key the app does not trust (HMAC-SHA256 done here,
  // independently of the app's own JWT code).
  const [head, body] = session.access_token.split('.');
  const sig = createHmac('sha256', 'not-the-project-secret').update(`${head}.${body}`).digest('base64url');
  const forged = { ...session, access_token: `${head}.${body}.${sig}` };
  await context.clearCookies();
  await context.addCookies([
    { name: AUTH_COOKIE, value: `base64-${Buffer.from(JSON.stringify(forged)).toString('base64url')}`, url: WWW },
  ]);
  const page = await context.newPage();
  await page.goto(`${WWW}/account`);
  await page.waitForSelector('header a[href="/signin"]');
  assert.equal(await page.locator(WHO).count(), 0, 'the forged session is not believed');
  await context.close();
});
