// Runtime configuration of the demo app, read on the server from the environment
// (`next start` reads it at run time, so one build serves any stack).
//
// | variable | what | local default |
// |---|---|---|
// | TOLLGATE_WORKER_URL | the worker gating the VCM Suite catalog | http://127.0.0.1:8787 |
// | TOLLGATE_STUDIO_WORKER_URL | the worker serving the video-studio catalog (seed 002 usage) | TOLLGATE_WORKER_URL |
// | TOLLGATE_SNAPSHOT_PUBLIC_KEYS | trusted snapshot keys, `kid:base64url,...` | (required for gating signed-in users) |
// | SUPABASE_URL | Supabase project URL, or the local REST gateway | http://127.0.0.1:54321 |
// | SUPABASE_JWT_SECRET | local stand-in sign-in only: signs access tokens (HS256) | the Supabase CLI's local secret |
// | TOLLGATE_DEV_DATABASE_URL | local stand-in sign-in only: where auth.users lives | postgres://postgres@127.0.0.1:54322/postgres |
// | STRIPE_WEBHOOK_SECRET | checkout stand-in only: the worker's endpoint secret | (required for the stand-in) |
// | TOLLGATE_DEV_AUTH | `1` enables the local sign-in and the checkout stand-in | off |

import { localApiKey } from './jwt';

/** The Supabase CLI's local JWT secret (public; never used by a real project). */
export const SUPABASE_LOCAL_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

function env(name: string): string | undefined {
  const v = process.env[name];
  return v && v.trim() ? v.trim() : undefined;
}

export function workerUrl(): string {
  return env('TOLLGATE_WORKER_URL') ?? 'http://127.0.0.1:8787';
}

export function studioWorkerUrl(): string {
  return env('TOLLGATE_STUDIO_WORKER_URL') ?? workerUrl();
}

export function snapshotPublicKeys(): string {
  return env('TOLLGATE_SNAPSHOT_PUBLIC_KEYS') ?? '';
}

export function supabaseUrl(): string {
  return env('SUPABASE_URL') ?? 'http://127.0.0.1:54321';
}

export function jwtSecret(): string {
  return env('SUPABASE_JWT_SECRET') ?? SUPABASE_LOCAL_JWT_SECRET;
}

export function devDatabaseUrl(): string {
  return env('TOLLGATE_DEV_DATABASE_URL') ?? 'postgres://postgres@127.0.0.1:54322/postgres';
}

export function stripeWebhookSecret(): string | undefined {
  return env('STRIPE_WEBHOOK_SECRET');
}

/** The local stand-ins (sign-in, checkout) are for development only. */
export function devStandInsEnabled(): boolean {
  const v = env('TOLLGATE_DEV_AUTH');
  return v === '1' || v === 'true';
}

/** The project's anon key (public). Locally: minted from the local JWT secret, as the Supabase CLI does. */
export function supabaseAnonKey(): string {
  const v = env('SUPABASE_ANON_KEY');
  if (v) return v;
  return localApiKey('anon', jwtSecret());
}
