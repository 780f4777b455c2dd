// Plain Node with the packed tollgate (templates/node): import and require(), and the
// READMEs' `node` blocks run as they are.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';

import { npmInstall, placeReadmeBlocks, scaffold, sh } from './lib.mjs';

const dir = scaffold('node', 'tollgate-catalog.json');
const { placed } = placeReadmeBlocks('node', dir);
const expected = { ready: true, creation_pro: true, video_reason: 'tier_too_low' };

before(() => npmInstall(dir));

test('node: import', () => {
  assert.deepEqual(JSON.parse(sh(process.execPath, ['esm.mjs'], { cwd: dir })), expected);
});

test('node: require()', () => {
  assert.deepEqual(JSON.parse(sh(process.execPath, ['require.cjs'], { cwd: dir })), expected);
});

test('the READMEs\' node blocks run', () => {
  assert.ok(placed.length > 0, 'a README block marked `node`');
  for (const b of placed) sh(process.execPath, [b.path], { cwd: dir });
});
