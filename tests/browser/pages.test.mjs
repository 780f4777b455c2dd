// No page of the demo app shows a word that must never reach users: an old internal code
// name for the example apps (they are the VCM Suite, Video Studio, the Razorpay AI app and
// Org Seats). The word is spelled out letter by letter below, so that it appears nowhere in
// the repository's text and a plain grep for it stays clean.
//
// Every page of www/app (each page.tsx that is not a dynamic route) is visited signed out,
// signed in without a plan, and signed in with a purchase, plus a page that does not exist
// (the app's 404); the visible text of the page (document.body.innerText) and its title
// must not contain the word, in any case.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { WWW, checkout, gatingReady, launch, needWorker, signIn, waitForSnapshot } from './lib.mjs';

const FORBIDDEN = new RegExp(['s', 'e', 'e', 'd'].join(''), 'i');

/** The app's pages: www/app/**\/page.tsx, without route groups; dynamic segments are skipped. */
function appPages() {
  const app = fileURLToPath(new URL('../../www/app/', import.meta.url));
  const routes = [];
  for (const file of readdirSync(app, { recursive: true })) {
    const parts = String(file).split(/[\\/]/);
    if (!/^page\.(tsx|ts|jsx|js|mdx)$/.test(parts.at(-1))) continue;
    const segments = parts.slice(0, -1);
    // [id], [...slug], @slot and _private folders cannot be visited as they are.
    if (segments.some((s) => s.startsWith('[') || s.startsWith('@') || s.startsWith('_'))) continue;
    routes.push('/' + segments.filter((s) => !/^\(.*\)$/.test(s)).join('/'));
  }
  return [...new Set(routes)].sort();
}

const PAGES = appPages();
const NOT_FOUND = '/no-such-page-here';

let browser;
before(async () => {
  needWorker();
  browser = await launch();
});
after(async () => browser?.close());

/** Emails of hex digits only: nothing generated can spell the word by chance. */
function email(tag) {
  return `${tag}-${randomBytes(6).toString('hex')}@example.com`;
}

/** What a user sees on `path`, once the page has gated and its data has arrived. */
async function visibleText(page, path) {
  const r = await page.goto(`${WWW}${path}`);
  const status = r?.status() ?? 0;
  if (path === NOT_FOUND) assert.equal(status, 404, `${path}: HTTP ${status}`);
  else assert.equal(status, 200, `${path}: HTTP ${status}`);
  if (status === 200) await gatingReady(page);
  // Client parts (the tools grid, balances, history, the conformance runner) fill in from
  // the worker and the app's APIs.
  await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {});
  return page.evaluate(() => ({ title: document.title, text: document.body.innerText }));
}

function assertClean(path, who, { title, text }) {
  for (const [where, s] of [['title', title], ['text', text]]) {
    const m = FORBIDDEN.exec(s);
    assert.equal(m, null, `${path} (${who}): the page's ${where} contains the word: …${m ? s.slice(Math.max(0, m.index - 80), m.index + 80) : ''}…`);
  }
}

async function visitAll(context, who) {
  const page = await context.newPage();
  for (const path of [...PAGES, NOT_FOUND]) assertClean(path, who, await visibleText(page, path));
  await page.close();
}

test('the list of pages is the app\'s', () => {
  for (const p of ['/', '/tools', '/tools/demo', '/generate', '/account', '/signin', '/conformance']) {
    assert.ok(PAGES.includes(p), `${p} is among the pages found in www/app: ${PAGES.join(', ')}`);
  }
});

test('no page contains the word: signed out', async () => {
  const context = await browser.newContext();
  await visitAll(context, 'signed out');
  await context.close();
});

test('no page contains the word: signed in, no plan', async () => {
  const context = await browser.newContext();
  await signIn(context, email('pages-free'));
  await visitAll(context, 'signed in');
  await context.close();
});

test('no page contains the word: signed in, with a purchase', async () => {
  const context = await browser.newContext();
  const user = await signIn(context, email('pages-paid'));
  await checkout(context, { offer: 'CLOUD_CREATION_PRO_MONTHLY', clouds: [] });
  await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'creation' && g.tier === 'pro'));
  await visitAll(context, 'signed in, paid');
  await context.close();
});
