// The example catalogs as JSON text, for the package's tests: `cargo xtask build`
// writes them from catalogs/*.toml into target/catalogs/ (the package carries none).
import { readFileSync } from 'node:fs';

const DIR = new URL('../../target/catalogs/', import.meta.url);

/** The JSON text of catalogs/<name>.toml, as `cargo xtask build` wrote it. */
export function catalogJson(name) {
  try {
    return readFileSync(new URL(`${name}.json`, DIR), 'utf8');
  } catch (e) {
    throw new Error(`target/catalogs/${name}.json is missing: build the package first (cargo xtask build): ${e.message}`);
  }
}
