// `tollgate catalog types FILE` also registers the catalog with the package (`declare module
// 'tollgate' { interface Register ... }`): under tsc --strict the package's Engine and
// tollgate-react's hooks, components and server helpers then accept the catalog's ids and
// refuse misspelled ones. (It runs here, after tollgate-react's dependencies are installed:
// it compiles against React's types.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));

/** Compiles `source` in `dir` with a tsconfig that resolves the packages to this checkout's
 * sources (the package's declarations, tollgate-react's TypeScript), as an app would see them. */
function compileApp(dir, source) {
  fs.writeFileSync(path.join(dir, 'app.tsx'), source);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM'], jsx: 'react-jsx',
      strict: true, noEmit: true, skipLibCheck: true,
      paths: {
        tollgate: [path.join(repo, 'pkg/index.d.ts')],
        'tollgate-react': [path.join(repo, 'react/src/index.ts')],
        'tollgate-react/server': [path.join(repo, 'react/src/server.ts')],
        'server-only': [path.join(repo, 'react/node_modules/server-only/index.js')],
      },
      typeRoots: [path.join(repo, 'react/node_modules/@types')],
    },
    files: ['app.tsx', 'tollgate-catalog.d.ts'],
  }));
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    return '';
  } catch (e) {
    return `${e.stdout}${e.stderr}`;
  }
}

test('a registered catalog types the package\'s Engine and tollgate-react: misspelled ids do not compile', () => {
  const dts = execFileSync('cargo', ['run', '-q', '-p', 'tollgate-cli', '--', 'catalog', 'types', 'catalogs/vcm-suite.toml'],
    { cwd: repo, encoding: 'utf8' });
  assert.match(dts, /declare module 'tollgate' \{\n  interface Register \{\n    ids: Ids;/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-register-'));
  try {
    fs.writeFileSync(path.join(dir, 'tollgate-catalog.d.ts'), dts);
    const app = `import { Engine } from 'tollgate';
import { Gate, useAccess, useLimit, useToolStates } from 'tollgate-react';
import { check } from 'tollgate-react/server';

declare const engine: Engine;
engine.can('use_ai');
engine.hasAccess('creation', 'pro');
engine.checkFeature('workflow_runs_per_day');
engine.toolState('bg-remover');
// @ts-expect-error: not a capability of the catalog
engine.can('use_aii');
// @ts-expect-error: no such product
engine.hasAccess('creations', 'pro');
// @ts-expect-error: no such tool
engine.toolState('bg-remove');

export function Page() {
  useAccess({ capability: 'export_full_res' });
  // @ts-expect-error: misspelled
  useAccess({ capability: 'exprot_full_res' });
  useLimit('workflow_runs_per_day');
  // @ts-expect-error: a capability is not a limit
  useLimit('use_ai');
  useToolStates('creation');
  // @ts-expect-error: no such page
  useToolStates('creations');
  return (
    <>
      <Gate capability="use_ai">AI</Gate>
      {/* @ts-expect-error: misspelled */}
      <Gate capability="use-ai">AI</Gate>
    </>
  );
}

export async function route() {
  await check('use_ai', { workerUrl: '', accessToken: '' });
  // @ts-expect-error: not a feature of the catalog
  await check('use-ai', { workerUrl: '', accessToken: '' });
}
`;
    assert.equal(compileApp(dir, app), '', 'the right ids compile and every misspelled one is an error');
    // Without the registration (`--no-register`) any string is accepted, as before.
    const plain = execFileSync('cargo', ['run', '-q', '-p', 'tollgate-cli', '--', 'catalog', 'types', '--no-register', 'catalogs/vcm-suite.toml'],
      { cwd: repo, encoding: 'utf8' });
    assert.doesNotMatch(plain, /declare module/);
    fs.writeFileSync(path.join(dir, 'tollgate-catalog.d.ts'), plain);
    assert.equal(compileApp(dir, `import { Engine } from 'tollgate';\ndeclare const e: Engine;\ne.can('anything');\nexport {};\n`), '');
    // An explicit type parameter works without registering.
    const out = compileApp(dir, `import { Engine } from 'tollgate';\nimport type { Ids } from './tollgate-catalog.js';\ndeclare const e: Engine<Ids>;\ne.can('use_aii');\nexport {};\n`);
    assert.match(out, /error TS2345: Argument of type '"use_aii"' is not assignable/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
