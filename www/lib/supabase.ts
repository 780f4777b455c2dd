// Supabase on the server, the way @supabase/ssr does it: the session lives in the auth
// cookie (`AUTH_COOKIE`, chunked and base64url-encoded by @supabase/ssr), and reads go
// through a supabase-js client that sends the session's access token, so row-level
// security decides what each user sees. Tokens are verified here with `jose`
// (lib/jwt.ts): `auth.getSession()` only reads the cookie.

import { createChunks, createServerClient, isChunkLike, stringToBase64URL } from '@supabase/ssr';
import type { AuthSession, SupabaseClient } from '@supabase/supabase-js';

import type { Database } from '../../supabase/database.types';
import { supabasePublishableKey, supabaseUrl } from './config';

/** The session cookie's name (a fixed one, so every part of the app and its tests agree). */
export const AUTH_COOKIE = 'sb-tollgate-auth-token';

export type Supabase = SupabaseClient<Database>;

export interface CookieJar {
  getAll(): { name: string; value: string }[];
}

/**
 * A supabase-js client over a request's cookies. It never writes them: a server
 * component cannot, and the local stack has no Auth server to refresh a session with,
 * so an expired session is simply no session.
 */
export async function supabaseFor(jar: CookieJar): Promise<Supabase> {
  return createServerClient<Database>(supabaseUrl(), await supabasePublishableKey(), {
    cookieOptions: { name: AUTH_COOKIE },
    cookies: { getAll: () => jar.getAll(), setAll: () => {} },
    auth: { autoRefreshToken: false, persistSession: true, detectSessionInUrl: false },
  });
}

/** The cookies (name, value) that hold `session` as @supabase/ssr writes them. */
export function sessionCookies(session: AuthSession): { name: string; value: string }[] {
  return createChunks(AUTH_COOKIE, `base64-${stringToBase64URL(JSON.stringify(session))}`);
}

/** Which of these cookie names hold the session (the cookie or one of its chunks). */
export function sessionCookieNames(present: string[]): string[] {
  return present.filter((n) => isChunkLike(n, AUTH_COOKIE));
}
