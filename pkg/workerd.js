// Cloudflare Workers entry: the runtime (and wrangler's bundler) import a .wasm
// file as a compiled WebAssembly.Module, so the module loads synchronously on import.
import wasmModule from './tollgate_bg.wasm';
import { initSync } from './index.js';

initSync(wasmModule);

export * from './index.js';
