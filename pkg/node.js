// Node entry: loads the WebAssembly module synchronously on import, so every
// export is usable at once (no `await init()` needed).
import { readFileSync } from 'node:fs';
import { initSync } from './index.js';

initSync(readFileSync(new URL('./tollgate_bg.wasm', import.meta.url)));

export * from './index.js';
