// Cross-checks tollgate's signatures with the providers' own npm libraries:
// - headers made by tollgate's sign_stripe (tests/vectors/tollgate_signed.json)
//   must pass Stripe's constructEvent, and fail it once a byte changes;
// - signatures made by sign_razorpay must pass Razorpay's validateWebhookSignature;
// - the committed stripe.json / razorpay.json must be exactly what generate.mjs
//   builds from the installed libraries today.
//
//   npm ci --prefix tests/vectors/gen && node --test tests/vectors/gen/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { buildVectors, serialize, vectorsDir } from './generate.mjs';

const require = createRequire(import.meta.url);
const Stripe = require('stripe');
const { validateWebhookSignature } = require('razorpay/dist/utils/razorpay-utils');

const stripe = new Stripe('sk_test_vectors_only_never_sent');
const ours = JSON.parse(readFileSync(join(vectorsDir, 'tollgate_signed.json'), 'utf8'));

test('tollgate_signed.json has cases for both providers', () => {
  assert.ok(ours.stripe.length >= 4, 'stripe cases');
  assert.ok(ours.razorpay.length >= 2, 'razorpay cases');
  assert.ok(ours.stripe.some((c) => c.secrets.length > 1), 'a rotation header');
});

for (const c of ours.stripe) {
  test(`stripe constructEvent accepts tollgate's header: ${c.name}`, () => {
    const receivedAt = (c.timestamp + 10) * 1000;
    for (const secret of c.secrets) {
      const event = stripe.webhooks.constructEvent(c.payload, c.header, secret, 300, undefined, receivedAt);
      assert.equal(event.id, JSON.parse(c.payload).id);
      assert.equal(stripe.webhooks.signature.verifyHeader(Buffer.from(c.payload, 'utf8'), c.header, secret, 300, undefined, receivedAt), true);
    }
  });

  test(`stripe constructEvent rejects tollgate's header on other bytes or secrets: ${c.name}`, () => {
    const receivedAt = (c.timestamp + 10) * 1000;
    const secret = c.secrets[0];
    const altered = c.payload.replace('"object":', '"object" :').replace('"object": ', '"object":  ');
    assert.notEqual(altered, c.payload);
    assert.throws(() => stripe.webhooks.constructEvent(altered, c.header, secret, 300, undefined, receivedAt),
      /No signatures found matching the expected signature/);
    assert.throws(() => stripe.webhooks.constructEvent(c.payload, c.header, 'whsec_not_the_secret', 300, undefined, receivedAt),
      /No signatures found matching the expected signature/);
    assert.throws(() => stripe.webhooks.constructEvent(c.payload, c.header, secret, 300, undefined, (c.timestamp + 301) * 1000),
      /Timestamp outside the tolerance zone/);
  });

  test(`stripe's own signer makes the same header: ${c.name}`, () => {
    const v1s = c.secrets.map((secret) =>
      stripe.webhooks.generateTestHeaderString({ payload: c.payload, secret, timestamp: c.timestamp }).split(',v1=')[1]);
    assert.equal(`t=${c.timestamp},${v1s.map((s) => `v1=${s}`).join(',')}`, c.header);
  });
}

for (const c of ours.razorpay) {
  test(`razorpay validateWebhookSignature accepts tollgate's signature: ${c.name}`, () => {
    assert.equal(validateWebhookSignature(c.payload, c.signature, c.secret), true);
    assert.equal(validateWebhookSignature(c.payload + ' ', c.signature, c.secret), false);
    assert.equal(validateWebhookSignature(c.payload, c.signature, c.secret + 'x'), false);
  });
}

test('committed provider vectors are what the installed libraries produce', () => {
  for (const [file, doc] of Object.entries(buildVectors())) {
    assert.equal(readFileSync(join(vectorsDir, file), 'utf8'), serialize(doc), `${file} is stale: run node tests/vectors/gen/generate.mjs`);
  }
});
