import { defineConfig } from 'vite';

// Top-level await in src/main.ts needs an ES2022 build target; nothing for tollgate.
export default defineConfig({ build: { target: 'es2022' } });
