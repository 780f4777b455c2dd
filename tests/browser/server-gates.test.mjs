// The demo app's route handlers gate on the server through tollgate-react/server: an
// export by plan (refused "Upgrade to export.", watermarked on Starter, full on Basic),
// and the AI Caption Writer's `use_ai` check before its (simulated) model call.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WWW, checkout, browserWithWorker, signIn, uniqueEmail, waitForSnapshot } from './lib.mjs';

const browser = browserWithWorker();

async function subscriber(offer, tier) {
  const context = await browser().newContext();
  const user = await signIn(context, uniqueEmail(tier ?? 'free'));
  if (offer) {
    await checkout(context, { offer, clouds: [] });
    await waitForSnapshot(user.access_token, (s) => s.grants.some((g) => g.product === 'suite' && g.tier === tier));
  }
  return context;
}

test('exports: refused with "Upgrade to export." without a plan, watermarked on Starter, full on Basic', async () => {
  const free = await subscriber(null);
  const r = await free.request.post(`${WWW}/api/export`);
  assert.equal(r.status(), 403, await r.text());
  const body = await r.json();
  assert.equal(body.error.message, 'Upgrade to export.');
  assert.ok(body.error.upgrade?.offer, 'the cheapest plan that exports');
  const starter = await subscriber('SUITE_STARTER_MONTHLY', 'starter');
  const s = await (await starter.request.post(`${WWW}/api/export`)).json();
  assert.deepEqual([s.policy, s.watermark], ['watermarked', true]);
  const basic = await subscriber('SUITE_BASIC_MONTHLY', 'basic');
  const b = await (await basic.request.post(`${WWW}/api/export`)).json();
  assert.deepEqual([b.policy, b.watermark], ['full', false]);
  for (const c of [free, starter, basic]) await c.close();
});

test('AI captions: the worker checks use_ai before the model is called', async () => {
  const starter = await subscriber('SUITE_STARTER_MONTHLY', 'starter');
  const no = await starter.request.post(`${WWW}/api/ai/caption`, { data: { topic: 'cats' } });
  assert.equal(no.status(), 403, await no.text());
  const body = await no.json();
  assert.equal(body.error.code, 'not_entitled');
  assert.ok(body.error.upgrade?.offer, 'the cheapest plan with AI tools');
  const pro = await subscriber('SUITE_PRO_MONTHLY', 'pro');
  const yes = await pro.request.post(`${WWW}/api/ai/caption`, { data: { topic: 'cats' } });
  assert.equal(yes.status(), 200, await yes.text());
  assert.match((await yes.json()).caption, /cats/);
  await starter.close();
  await pro.close();
});
