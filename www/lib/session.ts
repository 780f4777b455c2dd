// The signed-in user, read from the access token cookie on the server.
//
// Locally the token comes from the development sign-in (a stand-in for Supabase
// Auth, HS256 with the local JWT secret). With real Supabase Auth the session
// cookie is set by @supabase/ssr and read with `supabase.auth.getClaims()`; the
// rest of the app only needs `{ userId, email, accessToken }` (see README).

import { cookies } from 'next/headers';

import { configuredJwtSecret } from './config';
import { verifyHs256 } from './jwt';

export const ACCESS_TOKEN_COOKIE = 'sb-access-token';

export interface Session {
  userId: string;
  email: string | null;
  accessToken: string;
  expiresAt: number;
}

export async function getSession(): Promise<Session | null> {
  const jar = await cookies();
  return sessionFromToken(jar.get(ACCESS_TOKEN_COOKIE)?.value);
}

/** The session an access token stands for: verified here (HS256, locally), no call out. */
export function sessionFromToken(token: string | undefined): Session | null {
  // Without SUPABASE_JWT_SECRET no token can be verified here, so there is no session.
  const secret = configuredJwtSecret();
  if (!token || !secret) return null;
  const claims = verifyHs256(token, secret);
  if (!claims || claims.role !== 'authenticated') return null;
  return { userId: claims.sub, email: claims.email ?? null, accessToken: token, expiresAt: claims.exp };
}
