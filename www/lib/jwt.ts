// HS256 JSON Web Tokens shaped like Supabase Auth's access tokens, for the local
// development sign-in (a stand-in for Supabase Auth) and for reading the session
// on the server. Real projects verify Supabase's own tokens instead (see README).

import { createHmac, timingSafeEqual } from 'node:crypto';

export interface AccessClaims {
  sub: string;
  email?: string;
  role: string;
  aud: string | string[];
  iss?: string;
  iat: number;
  exp: number;
  session_id?: string;
  is_anonymous?: boolean;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export function signHs256(claims: object, secret: string): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Verifies signature, algorithm and expiry; returns the claims or null. */
export function verifyHs256(token: string, secret: string, nowSecs = Math.floor(Date.now() / 1000)): AccessClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [head, body, sig] = parts;
  let header: { alg?: string };
  let claims: AccessClaims;
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (header.alg !== 'HS256') return null;
  const want = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  const got = Buffer.from(sig, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  if (typeof claims.exp !== 'number' || claims.exp <= nowSecs) return null;
  if (typeof claims.sub !== 'string') return null;
  return claims;
}

/** A Supabase API key (anon or service_role) for the local stack: a long-lived JWT with only a role. */
export function localApiKey(role: 'anon' | 'service_role', secret: string): string {
  const iat = 1_700_000_000;
  return signHs256({ iss: 'supabase-demo', role, iat, exp: iat + 10 * 365 * 24 * 3600 }, secret);
}
