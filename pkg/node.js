// Node entry (also what bundlers pick for server code: Next.js server components,
// route handlers and proxy.ts under Turbopack or webpack): the
// WebAssembly module is instantiated synchronously on import from bytes carried in
// JavaScript (tollgate_bg_base64.js), so every export is usable at once and no
// bundler has to copy or locate a .wasm file.
import { Buffer } from 'node:buffer';
import wasmBase64 from './tollgate_bg_base64.js';
import { initSync } from './index.js';

initSync(Buffer.from(wasmBase64, 'base64'));

export * from './index.js';
