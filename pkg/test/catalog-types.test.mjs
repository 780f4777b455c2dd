// `tollgate catalog types FILE` writes TypeScript literal unions of a catalog's ids: under
// tsc --strict, an id the catalog has compiles and a misspelled one does not. (That a
// registered catalog types the package's Engine and tollgate-react is held in
// react/test/catalog-types.test.mjs, where React's types are installed.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));

function compile(dir, source) {
  fs.writeFileSync(path.join(dir, 'usage.ts'), source);
  try {
    execFileSync(process.execPath, [tsc, '--strict', '--noEmit', '--target', 'es2022', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', path.join(dir, 'usage.ts')], { encoding: 'utf8' });
    return '';
  } catch (e) {
    return `${e.stdout}${e.stderr}`;
  }
}

test('a misspelled capability id does not compile against the catalog\'s generated types', () => {
  const dts = execFileSync('cargo', ['run', '-q', '-p', 'tollgate-cli', '--', 'catalog', 'types', 'catalogs/vcm-suite.toml'],
    { cwd: repo, encoding: 'utf8' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-types-'));
  try {
    fs.writeFileSync(path.join(dir, 'tollgate-catalog.d.ts'), dts);
    const head = `import type { CapabilityId, FeatureId, OfferKey, Tiers } from './tollgate-catalog.js';\n`;
    assert.equal(compile(dir, `${head}
const cap: CapabilityId = 'export_full_res';
const feature: FeatureId = 'workflow_runs_per_day';
const offer: OfferKey = 'SUITE_PRO_MONTHLY';
const tier: Tiers['suite'] = 'starter';
// @ts-expect-error: not a capability of the VCM Suite's catalog
const typo: CapabilityId = 'exprot_full_res';
// @ts-expect-error: the creation cloud has no starter tier
const wrongTier: Tiers['creation'] = 'starter';
export { cap, feature, offer, tier, typo, wrongTier };
`), '', 'the right ids compile, the wrong ones are errors');
    const out = compile(dir, `${head}const typo: CapabilityId = 'exprot_full_res';\nexport { typo };\n`);
    assert.match(out, /error TS\d+: Type '"exprot_full_res"' is not assignable to type 'CapabilityId'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
