// Writes tests/vectors/stripe.json and tests/vectors/razorpay.json: signature
// vectors made by the providers' own npm libraries, which the Rust tests
// (tests/verify.rs) check tollgate's verifier against.
//
//   npm ci --prefix tests/vectors/gen && node tests/vectors/gen/generate.mjs
//
// Every case states what tollgate must answer (`expect`) and, next to it, what
// the provider's own library answers for the same inputs (`stripe_node_accepts`,
// `razorpay_accepts`), so any difference between the two is visible and tested.
// The output is deterministic: fixed timestamps, fixed secrets, no clock reads.

import { readFileSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const Stripe = require('stripe');
const { validateWebhookSignature } = require('razorpay/dist/utils/razorpay-utils');

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..');
const versionOf = (name) => JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version;

const stripe = new Stripe('sk_test_vectors_only_never_sent');

// 2026-03-01T00:00:00Z
const T = 1772323200;
const SECRET = 'whsec_test_secret';
const SECRET_ROTATED = 'whsec_9pVq3Xr2LmT8sKd4YbN6cF1gHjWz0aEu';
const SECRET_OTHER = 'whsec_Zx7Qw2Er5Ty8Ui1Op4As6Df9Gh3Jk0Lm';

const PRETTY_EVENT = JSON.stringify({ id: 'evt_test_webhook', object: 'event' }, null, 2);
const CHECKOUT_EVENT = JSON.stringify({
  id: 'evt_1QvTollgateVectors01',
  object: 'event',
  api_version: '2025-03-31.basil',
  created: T - 2,
  type: 'checkout.session.completed',
  livemode: false,
  pending_webhooks: 1,
  request: { id: null, idempotency_key: null },
  data: {
    object: {
      id: 'cs_test_a1B2c3D4e5F6',
      object: 'checkout.session',
      amount_total: 2900,
      currency: 'usd',
      customer: 'cus_TollgateVec01',
      client_reference_id: '6f1c2a4e-3b5d-4c7e-9f80-1a2b3c4d5e6f',
      metadata: { offer_key: 'SUITE_PRO_MONTHLY' },
      mode: 'subscription',
      payment_status: 'paid',
      status: 'complete',
      subscription: 'sub_TollgateVec01',
    },
  },
});
const UNICODE_PAYLOAD = JSON.stringify({
  id: 'evt_unicode',
  object: 'event',
  data: { object: { description: 'Café crème ☕ – 日本語のテキスト – emoji 🚀👩🏽‍💻', name: 'Zoë Ñúñez' } },
});
const CRLF_PAYLOAD = '{\r\n  "id": "evt_crlf",\r\n  "object": "event"\r\n}\r\n';

const header = (opts) => stripe.webhooks.generateTestHeaderString({ timestamp: T, payload: PRETTY_EVENT, secret: SECRET, ...opts });
const v1Of = (h) => h.split(',').find((item) => item.startsWith('v1=')).slice(3);

// What Stripe's own verifier says for these inputs, with `now` as the receive time.
// stripe-node reads tolerance 0 as "no check"; null means our "no check" too.
function stripeNodeAccepts(payload, hdr, secrets, tolerance, now) {
  return secrets.some((secret) => {
    try {
      return stripe.webhooks.signature.verifyHeader(payload, hdr, secret, tolerance ?? 0, undefined, now * 1000) === true;
    } catch (e) {
      if (e.type !== 'StripeSignatureVerificationError') throw e;
      return false;
    }
  });
}

/** Builds both vector documents; throws if an expectation contradicts a provider library without a note. */
export function buildVectors() {
  const stripeCases = [];
  function stripeCase({ name, payload = PRETTY_EVENT, header: hdr, secrets = [SECRET], tolerance = 300, now = T, expect, note }) {
    const c = { name, payload, header: hdr, secrets, tolerance, now, expect };
    if (note) c.note = note;
    c.stripe_node_accepts = hdr ? stripeNodeAccepts(payload, hdr, secrets, tolerance, now) : false;
    stripeCases.push(c);
  }

  const ok = { ok: true, timestamp: T };

  stripeCase({ name: 'valid header, pretty-printed event', header: header(), expect: ok });
  stripeCase({ name: 'valid header, realistic checkout.session.completed', payload: CHECKOUT_EVENT,
    header: header({ payload: CHECKOUT_EVENT, secret: SECRET_ROTATED }), secrets: [SECRET_ROTATED], expect: ok });
  stripeCase({ name: 'unicode payload is signed as UTF-8', payload: UNICODE_PAYLOAD, header: header({ payload: UNICODE_PAYLOAD }), expect: ok });
  stripeCase({ name: 'CRLF line endings and trailing newline are part of the signed bytes', payload: CRLF_PAYLOAD,
    header: header({ payload: CRLF_PAYLOAD }), expect: ok });
  stripeCase({ name: 'the same body re-indented no longer matches', payload: CRLF_PAYLOAD.replaceAll('\r\n', '\n'),
    header: header({ payload: CRLF_PAYLOAD }), expect: { error: 'signature_mismatch' } });
  stripeCase({ name: 'body modified after signing', payload: CHECKOUT_EVENT.replace('"amount_total":2900', '"amount_total":1'),
    header: header({ payload: CHECKOUT_EVENT }), expect: { error: 'signature_mismatch' } });
  stripeCase({ name: 'signed with another secret', header: header({ secret: SECRET_OTHER }), expect: { error: 'signature_mismatch' } });
  stripeCase({ name: 'literal bad signature', header: header({ signature: 'bad_signature' }), expect: { error: 'signature_mismatch' } });
  stripeCase({ name: 'only a v0 signature', header: header({ scheme: 'v0' }), expect: { error: 'no_v1_signature' } });
  stripeCase({ name: 'valid v1 followed by a bad v1', header: `${header()},v1=bad_signature`, expect: ok });
  stripeCase({ name: 'bad v1 before a valid v1', header: `t=${T},v1=${'0'.repeat(64)},v1=${v1Of(header())}`, expect: ok });
  stripeCase({ name: 'valid v1 next to a v0 decoy', header: `${header()},v0=${v1Of(header({ secret: SECRET_OTHER }))}`, expect: ok });
  stripeCase({ name: 'unknown scheme is ignored', header: `${header()},v9=${'f'.repeat(64)}`, expect: ok });
  {
    const rotating = `t=${T},v1=${v1Of(header())},v1=${v1Of(header({ secret: SECRET_ROTATED }))}`;
    stripeCase({ name: 'rotation: two v1, verifier knows only the old secret', header: rotating, secrets: [SECRET], expect: ok });
    stripeCase({ name: 'rotation: two v1, verifier knows only the new secret', header: rotating, secrets: [SECRET_ROTATED], expect: ok });
    stripeCase({ name: 'rotation: verifier holds two secrets, header signed with the second', header: header({ secret: SECRET_ROTATED }),
      secrets: [SECRET, SECRET_ROTATED], expect: ok });
    stripeCase({ name: 'rotation: neither secret signed it', header: rotating, secrets: [SECRET_OTHER], expect: { error: 'signature_mismatch' } });
  }
  stripeCase({ name: 'not a signature header', header: "I'm not even a real signature header", expect: { error: 'malformed_signature' } });
  stripeCase({ name: 'bad_header', header: 'bad_header', expect: { error: 'malformed_signature' } });
  stripeCase({ name: 'no timestamp', header: `v1=${v1Of(header())}`, expect: { error: 'malformed_signature' } });
  stripeCase({ name: 'empty header', header: '', expect: { error: 'missing_signature' } });
  stripeCase({ name: 'timestamp at the edge of the tolerance', header: header(), now: T + 300, expect: ok });
  stripeCase({ name: 'timestamp one second past the tolerance', header: header(), now: T + 301,
    expect: { error: 'timestamp_out_of_tolerance' } });
  stripeCase({ name: 'short tolerance: 15 s old with 10 s allowed', header: header(), tolerance: 10, now: T + 15,
    expect: { error: 'timestamp_out_of_tolerance' } });
  stripeCase({ name: 'short tolerance: 9 s old with 10 s allowed', header: header(), tolerance: 10, now: T + 9, expect: ok });
  stripeCase({ name: 'timestamp far in the future', header: header(), now: T - 301, expect: { error: 'timestamp_out_of_tolerance' },
    note: 'stripe-node checks only the age; tollgate also refuses timestamps ahead of now by more than the tolerance' });
  stripeCase({ name: 'old timestamp with the check switched off', header: header({ timestamp: 12345 }), tolerance: null,
    expect: { ok: true, timestamp: 12345 } });
  stripeCase({ name: 'tolerance 0 accepts only the exact second', header: header(), tolerance: 0, now: T, expect: ok });
  stripeCase({ name: 'tolerance 0 refuses one second of age', header: header(), tolerance: 0, now: T + 1,
    expect: { error: 'timestamp_out_of_tolerance' },
    note: 'stripe-node reads tolerance 0 as "skip the check"; tollgate has an explicit switch for that instead' });
  stripeCase({ name: 'wrong secret and stale: the signature is judged first', header: header({ secret: SECRET_OTHER }), now: T + 1000,
    expect: { error: 'signature_mismatch' } });

  // Razorpay: the library validates only (its signer is the dashboard), so signatures
  // are made with node:crypto and every case records the library's own verdict.
  const RZP_SECRET = 'rzp_webhook_secret_7Hq2Lp9';
  const RZP_OTHER = 'rzp_webhook_secret_other';
  const RZP_EVENT = JSON.stringify({
    entity: 'event',
    account_id: 'acc_TollgateVec01',
    event: 'subscription.charged',
    contains: ['subscription', 'payment'],
    payload: {
      subscription: { entity: { id: 'sub_TollgateRzp01', plan_id: 'plan_TollgatePro', status: 'active', current_start: T, current_end: T + 2678400,
        notes: { user_id: '6f1c2a4e-3b5d-4c7e-9f80-1a2b3c4d5e6f', offer_key: 'SUITE_PRO_MONTHLY_INR' } } },
      payment: { entity: { id: 'pay_TollgateRzp01', amount: 249900, currency: 'INR', status: 'captured' } },
    },
    created_at: T,
  });
  const rzpSign = (payload, secret) => createHmac('sha256', secret).update(payload).digest('hex');
  const razorpayCases = [];
  function razorpayCase({ name, payload = RZP_EVENT, signature, secrets = [RZP_SECRET], expect }) {
    const razorpay_accepts = signature ? secrets.some((s) => validateWebhookSignature(payload, signature, s)) : false;
    razorpayCases.push({ name, payload, signature, secrets, expect, razorpay_accepts });
  }
  razorpayCase({ name: 'valid signature', signature: rzpSign(RZP_EVENT, RZP_SECRET), expect: { ok: true } });
  razorpayCase({ name: 'unicode payload', payload: UNICODE_PAYLOAD, signature: rzpSign(UNICODE_PAYLOAD, RZP_SECRET), expect: { ok: true } });
  razorpayCase({ name: 'second of two configured secrets', signature: rzpSign(RZP_EVENT, RZP_SECRET), secrets: [RZP_OTHER, RZP_SECRET],
    expect: { ok: true } });
  razorpayCase({ name: 'wrong secret', signature: rzpSign(RZP_EVENT, RZP_OTHER), expect: { error: 'signature_mismatch' } });
  razorpayCase({ name: 'body modified after signing', payload: RZP_EVENT.replace('249900', '100'), signature: rzpSign(RZP_EVENT, RZP_SECRET),
    expect: { error: 'signature_mismatch' } });
  razorpayCase({ name: 'upper-case hex', signature: rzpSign(RZP_EVENT, RZP_SECRET).toUpperCase(), expect: { error: 'malformed_signature' } });
  razorpayCase({ name: 'truncated signature', signature: rzpSign(RZP_EVENT, RZP_SECRET).slice(0, 63), expect: { error: 'malformed_signature' } });
  razorpayCase({ name: 'empty signature', signature: '', expect: { error: 'missing_signature' } });

  // Sanity: the generator's `expect` must agree with the providers' libraries except
  // where a case explains the difference.
  for (const c of stripeCases) {
    if (c.note) continue;
    if (Boolean(c.expect.ok) !== c.stripe_node_accepts) throw new Error(`stripe case "${c.name}": expect ${JSON.stringify(c.expect)} but stripe-node accepts=${c.stripe_node_accepts}`);
  }
  for (const c of razorpayCases) {
    if (Boolean(c.expect.ok) !== c.razorpay_accepts) throw new Error(`razorpay case "${c.name}": expect ${JSON.stringify(c.expect)} but razorpay accepts=${c.razorpay_accepts}`);
  }

  return {
    'stripe.json': {
      description: 'Stripe-Signature vectors made by the npm stripe library (webhooks.generateTestHeaderString). Times are Unix seconds; tolerance null means no timestamp check. Regenerate with tests/vectors/gen/generate.mjs.',
      generator: `stripe@${versionOf('stripe')}`,
      cases: stripeCases,
    },
    'razorpay.json': {
      description: 'X-Razorpay-Signature vectors; razorpay_accepts is the verdict of the npm razorpay library (validateWebhookSignature). Regenerate with tests/vectors/gen/generate.mjs.',
      generator: `razorpay@${versionOf('razorpay')}`,
      cases: razorpayCases,
    },
  };
}

export const serialize = (doc) => JSON.stringify(doc, null, 2) + '\n';
export const vectorsDir = outDir;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [file, doc] of Object.entries(buildVectors())) {
    writeFileSync(join(outDir, file), serialize(doc));
    console.log(`wrote ${doc.cases.length} cases to ${join(outDir, file)}`);
  }
}
