// Supabase Auth's access tokens, verified (and, for the local sign-in only, signed) with
// `jose`. A project that signs with asymmetric keys is verified against its published
// keys (`<SUPABASE_URL>/auth/v1/.well-known/jwks.json`); the local stack and projects on
// the legacy shared secret with SUPABASE_JWT_SECRET (HS256).

import { SignJWT, createRemoteJWKSet, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';

export interface AccessClaims extends JWTPayload {
  sub: string;
  email?: string;
  role: string;
  exp: number;
  session_id?: string;
  is_anonymous?: boolean;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
}

const secretKey = (secret: string) => new TextEncoder().encode(secret);

let jwks: { url: string; set: ReturnType<typeof createRemoteJWKSet> } | null = null;

/**
 * The claims of a valid access token (signature, algorithm, expiry, audience), or null.
 * `secret`: the project's JWT secret (HS256); without one, the project's JWKS.
 */
export async function verifyAccessToken(token: string, opts: { secret?: string; supabaseUrl: string }): Promise<AccessClaims | null> {
  try {
    const common = { audience: 'authenticated', requiredClaims: ['sub', 'exp'] };
    let payload: JWTPayload;
    if (opts.secret) {
      ({ payload } = await jwtVerify(token, secretKey(opts.secret), { ...common, algorithms: ['HS256'] }));
    } else {
      const url = `${opts.supabaseUrl.replace(/\/+$/, '')}/auth/v1/.well-known/jwks.json`;
      if (jwks?.url !== url) jwks = { url, set: createRemoteJWKSet(new URL(url)) };
      ({ payload } = await jwtVerify(token, jwks.set, { ...common, algorithms: ['ES256', 'RS256'] }));
    }
    if (typeof payload.sub !== 'string' || typeof payload.role !== 'string') return null;
    return payload as AccessClaims;
  } catch {
    return null;
  }
}

/** An HS256 token with `claims` (the local sign-in's access tokens and API keys). */
export function signHs256(claims: JWTPayload, secret: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secretKey(secret));
}

/** A Supabase API key in the legacy style (anon or service_role) for the local stack: a long-lived JWT with only a role. */
export function localApiKey(role: 'anon' | 'service_role', secret: string): Promise<string> {
  const iat = 1_700_000_000;
  return signHs256({ iss: 'supabase-demo', role, iat, exp: iat + 10 * 365 * 24 * 3600 }, secret);
}
