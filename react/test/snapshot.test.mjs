// tollgate-react's snapshot verification is the package's, the core's own verifier: the
// core's test vectors (tests/vectors/snapshot.json) are accepted or refused with the
// core's error codes; this layer adds the signed-in user (in either form), the catalog,
// and answers as values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as tollgate from 'tollgate';

import { verifySnapshot, parsePublicKeys, peekSnapshot } from '../dist/snapshot.js';

const vectors = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
const keys = { [vectors.kid]: vectors.public_key_b64url };

test('the valid vector verifies and yields its payload', async () => {
  const r = await verifySnapshot(vectors.token, keys, { now: vectors.now });
  assert.equal(r.ok, true, r.message);
  assert.deepEqual(r.snapshot, JSON.parse(vectors.payload));
  // The same answer as the package's own verifier, handed in or imported.
  assert.deepEqual(r.snapshot, tollgate.verifySnapshot(vectors.token, keys, null, vectors.now));
  const given = await verifySnapshot(vectors.token, keys, { now: vectors.now, tollgate });
  assert.deepEqual(given, r);
});

test('hex keys are accepted too', async () => {
  const r = await verifySnapshot(vectors.token, { [vectors.kid]: vectors.public_key_hex }, { now: vectors.now });
  assert.equal(r.ok, true);
});

for (const v of vectors.invalid) {
  test(`refused with the core's code: ${v.name}`, async () => {
    const r = await verifySnapshot(v.token, keys, { now: v.now });
    assert.equal(r.ok, false);
    assert.equal(r.code, v.error, r.message);
  });
}

test('another subject or another catalog is refused; the bare user id names the user', async () => {
  const s = JSON.parse(vectors.payload);
  let r = await verifySnapshot(vectors.token, keys, { now: vectors.now, subject: 'someone-else' });
  assert.equal(r.code, 'wrong_subject');
  r = await verifySnapshot(vectors.token, keys, { now: vectors.now, subject: s.subject, catalogId: 'video-studio' });
  assert.equal(r.code, 'catalog_mismatch');
  r = await verifySnapshot(vectors.token, keys, { now: vectors.now, subject: s.subject, catalogId: s.catalog_id });
  assert.equal(r.ok, true);
  if (s.subject.startsWith('user:')) {
    r = await verifySnapshot(vectors.token, keys, { now: vectors.now, subject: s.subject.slice('user:'.length) });
    assert.equal(r.ok, true);
  }
});

test('an edited payload byte fails the signature', async () => {
  const [p, sig] = vectors.token.split('.');
  const text = Buffer.from(p, 'base64url').toString('utf8').replace('"tier":"pro"', '"tier":"enterprise"');
  assert.notEqual(text, Buffer.from(p, 'base64url').toString('utf8'));
  const forged = Buffer.from(text, 'utf8').toString('base64url') + '.' + sig;
  const r = await verifySnapshot(forged, keys, { now: vectors.now });
  assert.equal(r.code, 'bad_signature');
  // Peeking reads the forged payload as it is, without trusting it.
  assert.equal(peekSnapshot(forged).issued_at, JSON.parse(vectors.payload).issued_at);
  assert.equal(peekSnapshot('not a token'), null);
});

test('public key configuration text', () => {
  assert.deepEqual(parsePublicKeys('a:KEY1, b:KEY2'), { a: 'KEY1', b: 'KEY2' });
  assert.deepEqual(parsePublicKeys('{"a":"KEY1"}'), { a: 'KEY1' });
  assert.throws(() => parsePublicKeys('nokid'), /kid:key/);
});
