// verifySnapshot(): signed entitlement snapshots checked with the public key
// alone, by the core's verifier (src/snapshot.rs), against the committed
// vector tests/vectors/snapshot.json (the same one the Rust tests and the
// independent node:crypto verifier in tests/vectors/gen check).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { verifySnapshot, Engine, loadCatalog } from 'tollgate';
import { catalogJson } from './catalogs.mjs';

const vector = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
const keys = { [vector.kid]: vector.public_key_b64url };

function throwsCode(fn, code) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `expected an Error with code ${code}`);
  assert.ok(!(caught instanceof WebAssembly.RuntimeError), `a wasm trap escaped: ${caught.message}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.length > 20, `a clear message: ${caught.message}`);
  return caught;
}

test('the valid token verifies and gives the signed snapshot', () => {
  const snap = verifySnapshot(vector.token, keys, undefined, vector.now);
  assert.deepEqual(snap, vector.snapshot);
  assert.deepEqual(snap, JSON.parse(vector.payload), 'exactly the signed payload');
  assert.equal(snap.v, 1);
  assert.equal(snap.kid, vector.kid);
});

test('keys as hex, base64url or 32 bytes; a Map works too; untrusted kids are ignored', () => {
  const want = vector.snapshot;
  const forms = [
    { [vector.kid]: vector.public_key_hex },
    { [vector.kid]: vector.public_key_hex.toUpperCase() },
    { [vector.kid]: Buffer.from(vector.public_key_hex, 'hex') },
    { [vector.kid]: new Uint8Array(Buffer.from(vector.public_key_hex, 'hex')).buffer },
    new Map([[vector.kid, vector.public_key_b64url]]),
    { 'retired-2025': vector.public_key_hex.replace(/^d7/, 'd8'), [vector.kid]: vector.public_key_b64url },
  ];
  for (const k of forms) assert.deepEqual(verifySnapshot(vector.token, k, null, vector.now), want);
});

test('the subject, when given, must be the one the snapshot describes', () => {
  const subject = vector.snapshot.subject;
  assert.equal(verifySnapshot(vector.token, keys, subject, vector.now).subject, subject);
  const e = throwsCode(() => verifySnapshot(vector.token, keys, 'someone-else', vector.now), 'wrong_subject');
  assert.ok(e.message.includes('someone-else'));
});

test('every invalid token of the vector fails with its code', () => {
  assert.ok(vector.invalid.length >= 8);
  for (const c of vector.invalid) {
    const e = throwsCode(() => verifySnapshot(c.token, keys, undefined, c.now), c.error);
    assert.equal(e.code, c.error, c.name);
  }
});

test('now: the forms of now, and the clock read by the wrapper when omitted', () => {
  const issued = Date.parse(vector.snapshot.issued_at);
  const expires = Date.parse(vector.snapshot.expires_at);
  for (const now of [vector.now, new Date(vector.now), issued, expires - 1000, issued - 120_000]) {
    assert.equal(verifySnapshot(vector.token, keys, null, now).kid, vector.kid, String(now));
  }
  throwsCode(() => verifySnapshot(vector.token, keys, null, expires), 'expired');
  throwsCode(() => verifySnapshot(vector.token, keys, null, issued - 121_000), 'not_yet_valid');
  // Omitted: Date.now(), whatever today is.
  const t = Date.now();
  if (t >= expires) throwsCode(() => verifySnapshot(vector.token, keys), 'expired');
  else if (t < issued - 120_000) throwsCode(() => verifySnapshot(vector.token, keys), 'not_yet_valid');
  else assert.equal(verifySnapshot(vector.token, keys).kid, vector.kid);
});

test('key problems: unknown kid, a key that is not a key, the wrong key', () => {
  throwsCode(() => verifySnapshot(vector.token, {}, null, vector.now), 'unknown_key');
  throwsCode(() => verifySnapshot(vector.token, { other: vector.public_key_b64url }, null, vector.now), 'unknown_key');
  throwsCode(() => verifySnapshot(vector.token, { [vector.kid]: 'not a key' }, null, vector.now), 'invalid_key');
  throwsCode(() => verifySnapshot(vector.token, { [vector.kid]: 'abcd' }, null, vector.now), 'invalid_key');
  throwsCode(() => verifySnapshot(vector.token, { [vector.kid]: new Uint8Array(31) }, null, vector.now), 'invalid_key');
  throwsCode(() => verifySnapshot(vector.token, { [vector.kid]: 42 }, null, vector.now), 'invalid_key');
  // A valid public key (RFC 8032 section 7.1, test 2), but not the signer's: the signature does not match.
  const other = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c';
  throwsCode(() => verifySnapshot(vector.token, { [vector.kid]: other }, null, vector.now), 'bad_signature');
  // 32 bytes that are not a usable Ed25519 public key (a small-order point).
  const weak = '0100000000000000000000000000000000000000000000000000000000000000';
  throwsCode(() => verifySnapshot(vector.token, { [vector.kid]: weak }, null, vector.now), 'invalid_key');
});

test('malformed tokens and arguments are coded Errors, never traps', () => {
  for (const token of ['', 'abc', 'a.b.c', `${vector.token}x`, `${vector.token}=`, '.'.repeat(3)]) {
    throwsCode(() => verifySnapshot(token, keys, null, vector.now), 'malformed_snapshot');
  }
  throwsCode(() => verifySnapshot(undefined, keys, null, vector.now), 'malformed_snapshot');
  throwsCode(() => verifySnapshot(42, keys, null, vector.now), 'malformed_snapshot');
  assert.throws(() => verifySnapshot(vector.token, null, null, vector.now), /`keys` must be an object/);
  assert.throws(() => verifySnapshot(vector.token, 'key', null, vector.now), /`keys` must be an object/);
  assert.throws(() => verifySnapshot(vector.token, keys, 7, vector.now), /`subject` must be a string/);
  assert.throws(() => verifySnapshot(vector.token, keys, null, 'yesterday'), /RFC 3339/);
});

test('a verified snapshot feeds an Engine directly', () => {
  const snap = verifySnapshot(vector.token, keys, null, vector.now);
  const e = new Engine(loadCatalog(catalogJson('vcm-suite')), snap);
  // The snapshot holds suite pro (active until 2026-03-30): AI tools are unlocked.
  const d = e.can('use_ai', vector.now);
  assert.equal(d.allowed, true);
  assert.equal(d.grant, 'stripe:sub_1:suite');
  assert.equal(d.tier, 'pro');
});
