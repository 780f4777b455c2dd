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
  // tollgate needs no setting here: its Node entry carries the wasm inline, so the
  // bundler may compile it like any module. `pg` is the local sign-in's.
  serverExternalPackages: ['pg', 'stripe'],
};

export default nextConfig;
