import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// The repository root: `tollgate` (../pkg) and `tollgate-react` (../react) are linked
// from outside this folder, so the bundler and the output tracing must see it.
const repoRoot = path.resolve(here, '..');

/** @type {import('next').NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  // The server loads the package from node_modules as Node does: its Node entry reads
  // and instantiates the .wasm synchronously on import. `pg` is the local sign-in's.
  serverExternalPackages: ['tollgate', 'pg', 'stripe'],
};

export default nextConfig;
