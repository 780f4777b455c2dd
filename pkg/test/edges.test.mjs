// The package at its edges: a key being rotated out refuses nothing signed with a good
// one; a broken, deeply nested catalog text gives the catalog error; init() takes a Promise
// of its input; an Engine refuses another catalog's snapshot and answers from a snapshot no
// longer than it holds; a freed Engine says so.
//
// Snapshots are signed here with the committed test vector's secret key
// (tests/vectors/snapshot.json: the RFC 8032 section 7.1 test key the verifier trusts in
// the package's own tests), so the tokens are genuine, correctly signed snapshots.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPrivateKey, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Engine, loadCatalog, verifySnapshot } from 'tollgate';
import { catalogJson } from './catalogs.mjs';

const vector = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
const KEY = vector.public_key_b64url;
const keys = { [vector.kid]: KEY };

const secret = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(vector.secret_hex, 'hex')]),
  format: 'der',
  type: 'pkcs8',
});
/** A token exactly as the worker issues it: base64url(payload) "." base64url(Ed25519(payload)). */
function signSnapshot(snapshot) {
  const payload = Buffer.from(JSON.stringify(snapshot), 'utf8');
  return `${payload.toString('base64url')}.${sign(null, payload, secret).toString('base64url')}`;
}

const vcm = loadCatalog(catalogJson('vcm-suite'));

// ---------------------------------------------------------------------------------------------
// Key rotation: a key is read only when a token names it, so a retired key left blank or
// unset under another kid refuses nothing signed with the current one.
test('key rotation: a broken or unset key under another kid does not refuse snapshots signed with the valid key', () => {
  // Already ignored today (32 bytes, not a usable public key, under another kid):
  const weak = '0100000000000000000000000000000000000000000000000000000000000000';
  assert.equal(verifySnapshot(vector.token, { 'snap-2025-12': weak, [vector.kid]: KEY }, null, vector.now).kid, vector.kid);
  // The same situation with the retired key blank or unset: every snapshot is refused.
  for (const retired of [undefined, '', 'ab'.repeat(31)]) {
    let snap;
    assert.doesNotThrow(() => {
      snap = verifySnapshot(vector.token, { 'snap-2025-12': retired, [vector.kid]: KEY }, null, vector.now);
    }, `retired key ${JSON.stringify(retired)} under another kid refused a token signed with ${vector.kid}`);
    assert.equal(snap.kid, vector.kid);
  }
});

// ---------------------------------------------------------------------------------------------
// A deeply nested broken catalog text (untrusted input) gives the catalog error with its
// line, not a stack overflow: the error's place is found without recursion.
test('loadCatalog: a deeply nested broken JSON catalog gives the catalog error, not a stack overflow', () => {
  const hostile = '{"catalog":' + '['.repeat(20000);
  let caught;
  try {
    loadCatalog(hostile);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, 'an Error is thrown');
  assert.ok(!(caught instanceof RangeError), `a stack overflow escaped: ${caught.message}`);
  assert.match(caught.message, /catalog error: invalid JSON catalog/);
  assert.equal(typeof caught.line, 'number', 'the JSON line is given');
  assert.equal(caught.path, '');
});

// ---------------------------------------------------------------------------------------------
// init() takes a Promise of its input (index.d.ts: `InitInput | Promise<InitInput>`) as it
// takes the input itself. (In a child process: this file's import loaded the module already.)
test('init(): a Promise of a URL (declared in index.d.ts) loads like the URL itself', () => {
  const pkgDir = fileURLToPath(new URL('../', import.meta.url));
  const script = `
    import { readFileSync } from 'node:fs';
    const dir = ${JSON.stringify(pkgDir)};
    const { init, isReady } = await import(new URL('index.js', 'file://' + dir).href);
    const url = new URL('data:application/wasm;base64,' + readFileSync(dir + 'tollgate_bg.wasm').toString('base64'));
    const how = process.argv[1];
    try {
      await init(how === 'url' ? url : Promise.resolve(url));
      console.log(JSON.stringify({ ready: isReady() }));
    } catch (e) {
      console.log(JSON.stringify({ ready: isReady(), code: e.code, message: e.message }));
    }
  `;
  const run = (how) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, how], { encoding: 'utf8' }));
  assert.deepEqual(run('url'), { ready: true }, 'the URL itself loads (control)');
  assert.deepEqual(run('promise'), { ready: true }, 'a Promise<URL> must load too');
});

// ---------------------------------------------------------------------------------------------
// A verified snapshot of another catalog (its `catalog_id`) is refused by an Engine: its
// products are not this catalog's, though ids may match.
test('Engine: a verified snapshot of another catalog does not unlock this catalog\'s products', () => {
  const studioSnapshot = {
    v: 1,
    kid: vector.kid,
    subject: 'user-1',
    catalog_id: 'video-studio',
    catalog_version: '2026.03.0',
    issued_at: '2026-03-01T00:00:00Z',
    expires_at: '2026-03-01T00:15:00Z',
    grants: [
      {
        id: 'stripe:sub_9:video',
        product: 'video',
        tier: 'pro',
        source: 'stripe',
        status: 'active',
        valid_from: '2026-02-15T00:00:00Z',
        valid_to: '2026-03-15T00:00:00Z',
        offer: 'VIDEO_PRO_MONTHLY',
      },
    ],
    balances: {},
  };
  const snap = verifySnapshot(signSnapshot(studioSnapshot), keys, 'user-1', '2026-03-01T00:00:00Z');
  assert.equal(snap.catalog_id, 'video-studio');
  assert.equal(vcm.id, 'vcm-suite');
  let decision;
  try {
    decision = new Engine(vcm, snap).hasAccess('video', 'pro', '2026-03-01T00:00:00Z');
  } catch (e) {
    assert.match(e.message, /video-studio|catalog/, 'refused with a clear message');
    return;
  }
  assert.equal(
    decision.allowed,
    false,
    `a video-studio snapshot unlocked vcm-suite video/pro (reason ${decision.reason}, grant ${decision.grant})`,
  );
});

// ---------------------------------------------------------------------------------------------
// An Engine's answers from a snapshot hold no longer than the snapshot (its `expires_at`):
// `holds_until` and `nextChange` come no later, and after it the snapshot grants nothing.
test('Engine from a verified snapshot: answers never hold past the snapshot\'s expires_at', () => {
  const snap = verifySnapshot(vector.token, keys, null, vector.now); // expires 2026-03-01T00:15:00Z
  const expires = Date.parse(snap.expires_at);
  const e = new Engine(vcm, snap);
  const d = e.hasAccess('suite', 'pro', vector.now);
  assert.equal(d.allowed, true, 'the snapshot holds suite pro now');
  assert.ok(
    d.holds_until !== null && Date.parse(d.holds_until) <= expires,
    `holds_until ${d.holds_until} is after the snapshot's expires_at ${snap.expires_at}`,
  );
  const next = e.nextChange(vector.now);
  assert.ok(next !== null && Date.parse(next) <= expires, `nextChange ${next} is after expires_at ${snap.expires_at}`);
  // A day after the snapshot expired.
  let later;
  try {
    later = e.hasAccess('suite', 'pro', '2026-03-02T00:00:00Z');
  } catch (err) {
    assert.equal(err.code, 'expired');
    return;
  }
  assert.equal(later.allowed, false, 'an expired snapshot still unlocks suite pro a day later');
});

// ---------------------------------------------------------------------------------------------
// After free(), no answer is given from what the Engine kept: every call throws an Error
// saying it was freed.
test('Engine after free(): no stale answers from the kept windows, and a clear error', () => {
  const grant = { id: 'g', product: 'video', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-02-01T00:00:00Z', valid_to: '2026-04-01T00:00:00Z' };
  const e = new Engine(vcm, [grant]);
  const now = Date.parse('2026-03-01T00:00:00Z');
  const p = e.productIndex('video');
  const t = e.tierIndex('video', 'pro');
  assert.equal(e.check(p, t, now), true);
  assert.equal(e.hasAccess('video', 'pro', now).allowed, true);
  e.free();
  const freedError = (fn, what) =>
    assert.throws(fn, (err) => err instanceof Error && /free/i.test(err.message), `${what}: a clear "freed" error`);
  freedError(() => e.check(p, t, now), 'check() inside the kept window');
  freedError(() => e.hasAccess('video', 'pro', now), 'hasAccess() with a kept Decision');
  freedError(() => e.can('use_ai', now), 'can()');
});
