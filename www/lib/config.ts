// Runtime configuration of the demo app, read on the server from the environment
// (`next start` reads it at run time, so one build serves any stack).
//
// | variable | what | local default |
// |---|---|---|
// | TOLLGATE_WORKER_URL | the worker gating the VCM Suite catalog | http://127.0.0.1:8787 |
// | TOLLGATE_STUDIO_WORKER_URL | the worker serving the video-studio catalog (Video Studio usage) | TOLLGATE_WORKER_URL |
// | TOLLGATE_RAZORPAY_WORKER_URL | the worker serving the razorpay-ai catalog (the Razorpay AI app's free drafts and AI credits) | TOLLGATE_WORKER_URL |
// | TOLLGATE_ORG_WORKER_URL | the worker serving the org-seats catalog (Org Seats: organizations, invites, seats) | TOLLGATE_WORKER_URL |
// | TOLLGATE_SNAPSHOT_PUBLIC_KEYS | trusted snapshot keys, `kid:base64url,...` | (required for gating signed-in users) |
// | SUPABASE_URL | Supabase project URL, or the local REST gateway | http://127.0.0.1:54321 |
// | SUPABASE_PUBLISHABLE_KEY | the project's public API key (`sb_publishable_...`; the legacy SUPABASE_ANON_KEY also works) | minted from SUPABASE_JWT_SECRET |
// | SUPABASE_JWT_SECRET | the legacy shared JWT secret: verifies access tokens (HS256), and the local sign-in signs with it; unset, tokens are verified against the project's JWKS | none: the stand-in refuses without it (cargo xtask passes the local stack's) |
// | TOLLGATE_DEV_DATABASE_URL | local stand-in sign-in only: where auth.users lives | postgres://postgres@127.0.0.1:54322/postgres |
// | STRIPE_WEBHOOK_SECRET | Stripe stand-in only: the workers' endpoint secret, to sign the events it sends | (required for the stand-in) |
// | RAZORPAY_WEBHOOK_SECRET | Razorpay stand-in only: the Razorpay AI app worker's webhook secret | (required for its stand-in) |
// | TOLLGATE_DEV_AUTH | `1` enables the local stand-ins: sign-in, and Stripe's and Razorpay's APIs with their checkout and portal pages | off |

import { localApiKey } from './jwt';

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

export function razorpayWorkerUrl(): string {
  return env('TOLLGATE_RAZORPAY_WORKER_URL') ?? workerUrl();
}

export function orgWorkerUrl(): string {
  return env('TOLLGATE_ORG_WORKER_URL') ?? workerUrl();
}

export function snapshotPublicKeys(): string {
  return env('TOLLGATE_SNAPSHOT_PUBLIC_KEYS') ?? '';
}

export function supabaseUrl(): string {
  return env('SUPABASE_URL') ?? 'http://127.0.0.1:54321';
}

/** The JWT secret, if set. There is no default: a well-known secret would let anyone
 * mint a session the app accepts. */
export function configuredJwtSecret(): string | undefined {
  return env('SUPABASE_JWT_SECRET');
}

/** What the local sign-in answers when SUPABASE_JWT_SECRET is not set. */
export const JWT_SECRET_MISSING =
  'SUPABASE_JWT_SECRET is not set: the local sign-in stand-in signs access tokens with it (HS256). ' +
  'Set it to the JWT secret the worker and the REST API verify tokens with (cargo xtask sets the local stack\'s).';

/** The JWT secret the local stand-ins sign and verify access tokens with; throws, naming
 * the variable, when SUPABASE_JWT_SECRET is not set. */
export function jwtSecret(): string {
  const secret = configuredJwtSecret();
  if (!secret) throw new Error(JWT_SECRET_MISSING);
  return secret;
}

export function devDatabaseUrl(): string {
  return env('TOLLGATE_DEV_DATABASE_URL') ?? 'postgres://postgres@127.0.0.1:54322/postgres';
}

export function stripeWebhookSecret(): string | undefined {
  return env('STRIPE_WEBHOOK_SECRET');
}

export function razorpayWebhookSecret(): string | undefined {
  return env('RAZORPAY_WEBHOOK_SECRET');
}

/** The local stand-ins (sign-in, the providers' APIs) are for development only. */
export function devStandInsEnabled(): boolean {
  const v = env('TOLLGATE_DEV_AUTH');
  return v === '1' || v === 'true';
}

/** The project's public API key: SUPABASE_PUBLISHABLE_KEY (`sb_publishable_...`), or the
 * legacy SUPABASE_ANON_KEY; locally, without either, an anon key minted from
 * SUPABASE_JWT_SECRET as the Supabase CLI does. */
export async function supabasePublishableKey(): Promise<string> {
  const v = env('SUPABASE_PUBLISHABLE_KEY') ?? env('SUPABASE_ANON_KEY');
  if (v) return v;
  const secret = configuredJwtSecret();
  if (!secret) throw new Error('SUPABASE_PUBLISHABLE_KEY is not set (nor, for the local stack, SUPABASE_JWT_SECRET to mint an anon key from)');
  return localApiKey('anon', secret);
}
