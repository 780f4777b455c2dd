// Checks the committed entitlement-snapshot vector (tests/vectors/snapshot.json)
// with node:crypto alone, following the format as src/snapshot.rs documents it:
// a second, independent implementation of the verifier, so the format is not
// only what the Rust code happens to do.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const vector = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'snapshot.json'), 'utf8'));
const SKEW_SECS = 120;

class SnapshotError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// Strict unpadded base64url: alphabet only, and canonical (re-encodes to itself).
function b64urlStrict(text, what) {
  const bytes = Buffer.from(text, 'base64url');
  if (text === '' || !/^[A-Za-z0-9_-]+$/.test(text) || bytes.toString('base64url') !== text) {
    throw new SnapshotError('malformed_snapshot', `${what} is not unpadded base64url`);
  }
  return bytes;
}

const publicKey = (raw) => createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
const seconds = (rfc3339) => {
  const ms = Date.parse(rfc3339);
  if (typeof rfc3339 !== 'string' || Number.isNaN(ms)) throw new SnapshotError('malformed_snapshot', 'bad timestamp');
  return Math.floor(ms / 1000);
};

/** keys: { kid: raw 32-byte public key }; now: Unix seconds. */
function verifySnapshot(token, keys, now) {
  const parts = token.split('.');
  if (parts.length !== 2) throw new SnapshotError('malformed_snapshot', 'expected two parts');
  const payload = b64urlStrict(parts[0], 'payload');
  const signature = b64urlStrict(parts[1], 'signature');
  if (signature.length !== 64) throw new SnapshotError('malformed_snapshot', 'signature is not 64 bytes');
  let doc;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    throw new SnapshotError('malformed_snapshot', 'payload is not JSON');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || doc.v !== 1 || typeof doc.kid !== 'string') {
    throw new SnapshotError('malformed_snapshot', 'not a version 1 snapshot');
  }
  const key = keys[doc.kid];
  if (!key) throw new SnapshotError('unknown_key', `unknown key ${doc.kid}`);
  if (!verify(null, payload, publicKey(key), signature)) throw new SnapshotError('bad_signature', 'signature does not match');
  const issuedAt = seconds(doc.issued_at);
  const expiresAt = seconds(doc.expires_at);
  if (typeof doc.subject !== 'string' || !Array.isArray(doc.grants) || typeof doc.balances !== 'object' || expiresAt <= issuedAt) {
    throw new SnapshotError('malformed_snapshot', 'bad fields');
  }
  if (now >= expiresAt) throw new SnapshotError('expired', 'expired');
  if (issuedAt > now + SKEW_SECS) throw new SnapshotError('not_yet_valid', 'issued in the future');
  return doc;
}

const keys = { [vector.kid]: Buffer.from(vector.public_key_hex, 'hex') };

test('the public key is the one the secret key derives (RFC 8032 test 1)', () => {
  const secret = Buffer.from(vector.secret_hex, 'hex');
  assert.equal(Buffer.from(vector.secret_b64url, 'base64url').toString('hex'), vector.secret_hex);
  assert.equal(Buffer.from(vector.public_key_b64url, 'base64url').toString('hex'), vector.public_key_hex);
  const jwk = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), secret]), format: 'der', type: 'pkcs8' })
    .export({ format: 'jwk' });
  assert.equal(Buffer.from(jwk.x, 'base64url').toString('hex'), vector.public_key_hex);
});

test('node:crypto verifies the token and reads the snapshot', () => {
  const doc = verifySnapshot(vector.token, keys, seconds(vector.now));
  assert.deepEqual(doc, vector.snapshot);
  assert.equal(Buffer.from(vector.token.split('.')[0], 'base64url').toString('utf8'), vector.payload);
  assert.equal(doc.subject, vector.snapshot.subject);
  assert.ok(doc.grants.length > 0);
});

test('node:crypto signs the same payload into the same token (Ed25519 is deterministic)', () => {
  const secret = Buffer.from(vector.secret_hex, 'hex');
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), secret]), format: 'der', type: 'pkcs8' });
  const payload = Buffer.from(vector.payload, 'utf8');
  const token = `${payload.toString('base64url')}.${sign(null, payload, privateKey).toString('base64url')}`;
  assert.equal(token, vector.token);
});

for (const c of vector.invalid) {
  test(`refused with ${c.error}: ${c.name}`, () => {
    assert.throws(() => verifySnapshot(c.token, keys, seconds(c.now)), (e) => e instanceof SnapshotError && e.code === c.error);
  });
}
