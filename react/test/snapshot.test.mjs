// The WebCrypto verifier against the core's test vectors (tests/vectors/snapshot.json):
// the same token must be accepted or refused with the same error code as the Rust core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { verifySnapshot, decodeBase64Url, encodeBase64Url, parsePublicKeys } from '../dist/snapshot.js';

const vectors = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
const keys = { [vectors.kid]: vectors.public_key_b64url };

test('the valid vector verifies and yields its payload', async () => {
  const r = await verifySnapshot(vectors.token, keys, { now: vectors.now });
  assert.equal(r.ok, true, r.message);
  assert.equal(r.verifier, 'webcrypto');
  assert.deepEqual(r.snapshot, JSON.parse(vectors.payload));
});

test('hex keys are accepted too', async () => {
  const r = await verifySnapshot(vectors.token, { [vectors.kid]: vectors.public_key_hex }, { now: vectors.now });
  assert.equal(r.ok, true);
});

for (const v of vectors.invalid) {
  test(`refused like the core: ${v.name}`, async () => {
    const r = await verifySnapshot(v.token, keys, { now: v.now });
    assert.equal(r.ok, false);
    assert.equal(r.code, v.error, r.message);
  });
}

test('another subject or another catalog is refused', async () => {
  const s = JSON.parse(vectors.payload);
  let r = await verifySnapshot(vectors.token, keys, { now: vectors.now, subject: 'someone-else' });
  assert.equal(r.code, 'wrong_subject');
  r = await verifySnapshot(vectors.token, keys, { now: vectors.now, subject: s.subject, catalogId: 'video-studio' });
  assert.equal(r.code, 'catalog_mismatch');
  r = await verifySnapshot(vectors.token, keys, { now: vectors.now, subject: s.subject, catalogId: s.catalog_id });
  assert.equal(r.ok, true);
});

test('an edited payload byte fails the signature', async () => {
  const [p, sig] = vectors.token.split('.');
  const bytes = decodeBase64Url(p);
  const text = new TextDecoder().decode(bytes).replace('"tier":"pro"', '"tier":"enterprise"');
  const forged = encodeBase64Url(new TextEncoder().encode(text)) + '.' + sig;
  const r = await verifySnapshot(forged, keys, { now: vectors.now });
  assert.equal(r.code, 'bad_signature');
});

test('strict base64url: padding, foreign alphabet and non-zero trailing bits are refused', () => {
  assert.equal(decodeBase64Url('QQ=='), null);
  assert.equal(decodeBase64Url('QQ+/'), null);
  assert.deepEqual([...decodeBase64Url('QQ')], [65]);
  assert.equal(decodeBase64Url('QR'), null); // same byte, non-zero unused bits
  for (const n of [0, 1, 2, 3, 31, 32, 33]) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
    assert.deepEqual([...decodeBase64Url(encodeBase64Url(b))], [...b]);
  }
});

test('public key configuration text', () => {
  assert.deepEqual(parsePublicKeys('a:KEY1, b:KEY2'), { a: 'KEY1', b: 'KEY2' });
  assert.deepEqual(parsePublicKeys('{"a":"KEY1"}'), { a: 'KEY1' });
  assert.throws(() => parsePublicKeys('nokid'), /kid:key/);
});
