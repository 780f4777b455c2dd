// Loading the tollgate package on a Node.js server: the wasm engine, instantiated
// synchronously from its bytes. (Catalogs come from the app: GET /v1/catalog or a
// JSON file it built; the package ships none.) Shared by
// `tollgate-react/server` (server components, route handlers) and
// `tollgate-react/proxy` (Next.js's proxy, which is not a React server environment, so
// it cannot import the `server-only` entry).

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { TollgateModule } from './core.js';

let loaded: TollgateModule | null = null;

/**
 * A file of the installed tollgate package. Looked up from the working directory's
 * node_modules at run time (not resolved by the bundler: the .wasm is data here).
 */
function packageFile(rel: string): string {
  const file = path.join(/*turbopackIgnore: true*/ process.cwd(), 'node_modules', 'tollgate', rel);
  if (!existsSync(/*turbopackIgnore: true*/ file)) {
    throw new Error(`tollgate-react: ${file} is missing (is the tollgate package installed and built?)`);
  }
  return file;
}

/**
 * The tollgate module, ready to use. The package's Node entry loads its wasm on import,
 * also inside server code that Next.js bundles (Turbopack or webpack); a host that gave
 * this import the browser entry instead (no `node` condition) gets the bytes read from
 * node_modules and instantiated synchronously with `initSync`.
 */
export async function getTollgate(): Promise<TollgateModule> {
  if (loaded) return loaded;
  const tg: TollgateModule = await import('tollgate');
  if (!(typeof tg.isReady === 'function' && tg.isReady())) {
    if (typeof tg.initSync !== 'function') throw new Error('tollgate-react: this tollgate build has no initSync');
    tg.initSync(readFileSync(/*turbopackIgnore: true*/ packageFile('tollgate_bg.wasm')));
  }
  loaded = tg;
  return tg;
}
