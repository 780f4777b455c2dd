// The demo app's routes that spend (a draft, a workflow run, an AI caption) and its local
// sign-in take requests from the app's own pages only: a browser's request from another
// origin of the same site (another port of localhost, a sibling subdomain: the SameSite=Lax
// session cookie goes with it) is 403 `cross_origin` and spends nothing. Idempotency keys
// a spend cannot carry are refused before anything is spent.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, browserWithWorker, signIn, uniqueEmail } from './lib.mjs';

const browser = browserWithWorker();

/** The drafts the caller has left (`GET /api/drafts`). */
async function freeDrafts(context) {
  const r = await context.request.get(`${WWW}/api/drafts`);
  assert.equal(r.status(), 200, await r.text());
  return (await r.json()).free_drafts;
}

test('a spend sent by a browser from another origin of the site is refused and spends nothing', async () => {
  const context = await browser().newContext();
  await signIn(context, uniqueEmail('origin'));
  const before = await freeDrafts(context);
  assert.equal(before, 2, 'two free drafts');
  for (const site of ['same-site', 'cross-site']) {
    for (const path of ['/api/drafts', '/api/workflows/run', '/api/ai/caption']) {
      const r = await context.request.post(`${WWW}${path}`, {
        headers: { 'sec-fetch-site': site, 'idempotency-key': `other-origin-${site}`, 'content-type': 'text/plain' },
        data: '{"topic":"x"}',
      });
      assert.equal(r.status(), 403, `${site} ${path}: ${await r.text()}`);
      assert.equal((await r.json()).error.code, 'cross_origin', path);
    }
    const signin = await context.request.post(`${WWW}/api/dev/signin`, {
      headers: { 'sec-fetch-site': site },
      form: { email: uniqueEmail('someone-else') },
      maxRedirects: 0,
    });
    assert.equal(signin.status(), 403, `${site} sign-in: ${await signin.text()}`);
  }
  assert.equal(await freeDrafts(context), before, 'nothing spent');
  // The app's own pages: the same request from this origin spends one draft.
  const r = await context.request.post(`${WWW}/api/drafts`, { headers: { 'sec-fetch-site': 'same-origin', 'idempotency-key': 'own-page' } });
  assert.equal(r.status(), 200, await r.text());
  assert.equal(await freeDrafts(context), before - 1);
  await context.close();
});

test('a draft with an Idempotency-Key the worker could not take is 400 and spends nothing; a blank one is none', async () => {
  const context = await browser().newContext();
  await signIn(context, uniqueEmail('draft-key'));
  const before = await freeDrafts(context);
  const long = await context.request.post(`${WWW}/api/drafts`, { headers: { 'idempotency-key': 'k'.repeat(101) } });
  assert.equal(long.status(), 400, await long.text());
  assert.equal((await long.json()).error.code, 'invalid_idempotency_key');
  assert.equal(await freeDrafts(context), before, 'nothing spent');
  // A blank key is no key: each request is its own draft.
  for (const left of [before - 1, before - 2]) {
    const r = await context.request.post(`${WWW}/api/drafts`, { headers: { 'idempotency-key': '   ' } });
    assert.equal(r.status(), 200, await r.text());
    assert.equal(await freeDrafts(context), left);
  }
  await context.close();
});
