// The signed-in user, on the server: the Supabase session in the auth cookie, read with
// @supabase/ssr's chunk reader (lib/supabase.ts, never refreshed here) and its access
// token verified with jose (lib/jwt.ts).
//
// Locally the session comes from the development sign-in (a stand-in for Supabase Auth
// that writes the same cookie); with real Supabase Auth, @supabase/ssr writes it. The rest
// of the app only needs `{ userId, email, accessToken }`.

import { cookies } from 'next/headers';
import { cache } from 'react';

import { configuredJwtSecret, supabaseUrl } from './config';
import { verifyAccessToken } from './jwt';
import { accessTokenIn, supabaseAs } from './supabase';
import type { CookieJar, Supabase } from './supabase';

export interface Session {
  userId: string;
  email: string | null;
  accessToken: string;
  expiresAt: number;
  /** A supabase-js client acting as this user (row-level security applies). */
  supabase: Supabase;
}

/** This request's session (read once per request, however many components ask). */
export const getSession = cache(async (): Promise<Session | null> => sessionFrom(await cookies()));

/** The session a request's cookies hold, with its access token verified; null when there is none or it does not verify. */
export async function sessionFrom(jar: CookieJar): Promise<Session | null> {
  if (!jar.getAll().length) return null;
  const token = await accessTokenIn(jar);
  if (!token) return null;
  const claims = await verifyAccessToken(token, { secret: configuredJwtSecret(), supabaseUrl: supabaseUrl() });
  if (!claims || claims.role !== 'authenticated') return null;
  return { userId: claims.sub, email: claims.email ?? null, accessToken: token, expiresAt: claims.exp, supabase: await supabaseAs(token) };
}
