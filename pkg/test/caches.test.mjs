// The answers pkg/index.js keeps without asking the core (the rows cache of `hasAccess`,
// its packed text beside the JSON text, and the Engine's kept windows and decisions) are
// the core's fresh answers: those for a brand-new array of the same content,
// `explainAccess`, or a new Engine.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Engine, loadCatalog, useCatalog, hasAccess, explainAccess } from '../node.js';
import { catalogJson } from './catalogs.mjs';
import { NOW, row, outcome, agreesWithCore } from './support.mjs';

const vcm = loadCatalog(catalogJson('vcm-suite'));
useCatalog(vcm);
test('rows cache: a row the core reads positionally (an array) is edited in place: the kept answer must follow', () => {
  // The core reads a row given as an array by position (pg's rowMode: 'array'); the named
  // fields kept to notice an edit are not what it read, so such rows are asked about every
  // call: after the edit, hasAccess answers as a new array and explainAccess do (false).
  const tuple = ['r1', 'u1', 'creation', 'pro', 'stripe', 'active', '2026-01-01T00:00:00Z'];
  const rows = [tuple];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
  tuple[3] = 'basic'; // now a basic row
  assert.equal(hasAccess([tuple], 'creation', 'pro', NOW), false, 'a new array of the same content');
  assert.equal(explainAccess(rows, 'creation', 'pro', NOW).allowed, false, 'the core');
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), false, 'the same array, edited in place');
});

test('rows cache: a row with toJSON, packed path declined (U+001F), then its JSON changes: the kept answer must follow', () => {
  // What the core read came from toJSON, not from the fields kept: asked again every call.
  let tier = 'pro';
  const r = { ...row({ id: 'a\u001fb' }), toJSON() { return { ...this, tier }; } };
  const rows = [r];
  assert.equal(hasAccess(rows, 'creation', 'pro', NOW), true);
  tier = 'basic';
  agreesWithCore(rows); // expected: false, as the core says
});

test('packed path vs JSON path: a field inherited from the prototype is read the same way by both', () => {
  // JSON.stringify (what explainAccess and rowsWindow hand the core) reads own enumerable
  // properties only; the packed text must carry no more: the same answer.
  const defaults = { valid_to: '2020-01-01T00:00:00Z' }; // an expired default, inherited
  const r = Object.assign(Object.create(defaults), row());
  delete r.valid_to; // only the inherited one is left
  agreesWithCore([r]); // true: the row has no valid_to of its own
});

test('packed path vs JSON path: rows whose fields are getters (model objects) answer as the core does', () => {
  // The core reads JSON.stringify's `{}` and names the missing field; hasAccess does the same.
  class Row {
    #d;
    constructor(d) {
      this.#d = d;
    }
    get cloud_id() { return this.#d.cloud_id; }
    get tier() { return this.#d.tier; }
    get source() { return this.#d.source; }
    get status() { return this.#d.status; }
    get valid_from() { return this.#d.valid_from; }
  }
  agreesWithCore([new Row(row())]);
});

test('packed path vs JSON path: a lone surrogate in a row field is declined as the core declines it', () => {
  // UTF-8 cannot carry a lone surrogate (encodeInto would write U+FFFD): such rows go as
  // JSON, which the core refuses, so hasAccess throws as explainAccess does.
  agreesWithCore([row({ source_ref: 'ref-\uD800' })]);
  agreesWithCore([row(), row({ id: 'x\uDC00', cloud_id: 'video' })]);
  agreesWithCore(JSON.stringify([row({ id: 'x\uDC00' })]));
});

test('Engine.check: a non-finite or out-of-range nowMs answers false, also after a kept window', () => {
  // A non-finite nowMs, or |nowMs| > 8.64e15, answers false, as the core's check does, also
  // once a window without ends ([-Infinity, +Infinity): no grants) is kept.
  const e = new Engine(vcm, []);
  const p = e.productIndex('creation');
  const free = e.tierIndex('creation', 'free');
  for (const at of [-Infinity, 1e16, -1e16]) assert.equal(new Engine(vcm, []).check(p, free, at), false, `fresh, ${at}`);
  assert.equal(e.check(p, free, Date.parse(NOW)), true);
  for (const at of [-Infinity, 1e16, -1e16]) assert.equal(e.check(p, free, at), false, `after a kept window, ${at}`);
});

test("Engine.hasAccess: a kept denial's upgrade follows another product's grant ending", () => {
  // A denial's `upgrade` depends on the offers held through every product's grants, not only
  // the asked product's window. A two-cloud bundle on video and writing ends at T; `music` has
  // no grants (its window never ends): after T the upgrade is the fresh one, the two-cloud
  // bundle no longer held.
  const T = '2026-03-15T00:00:00Z';
  const g = (product, id) => ({
    id, product, tier: 'pro', source: 'stripe', status: 'active',
    valid_from: '2026-02-01T00:00:00Z', valid_to: T, offer: 'SUITE_PRO_TWO_CLOUDS_MONTHLY',
  });
  const ents = [g('suite', 's'), g('video', 'v'), g('writing', 'w')];
  const e = new Engine(vcm, ents);
  assert.equal(e.hasAccess('music', 'pro', NOW).upgrade.offer, 'SUITE_PRO_THREE_CLOUDS_MONTHLY');
  const later = '2026-03-20T00:00:00Z';
  const fresh = new Engine(vcm, ents).hasAccess('music', 'pro', later);
  assert.equal(fresh.upgrade.offer, 'SUITE_PRO_TWO_CLOUDS_MONTHLY');
  assert.deepEqual(e.hasAccess('music', 'pro', later), fresh);
});
