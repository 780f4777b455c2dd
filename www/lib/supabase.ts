// Supabase on the server: the session lives in the auth cookie (`AUTH_COOKIE`, chunked and
// base64url-encoded by @supabase/ssr, whose own chunk reader reads it here), and reads go
// through a supabase-js client that sends the session's access token, so row-level
// security decides what each user sees. Tokens are verified with `jose` (lib/jwt.ts).
//
// The server never refreshes a session: supabase-js's `auth.getSession()` refreshes one
// within 90 seconds of its expiry, and a server render can write no cookie back, so the
// browser would keep a refresh token Supabase Auth has already spent (and revokes the
// session when it is used again). The browser's client refreshes and writes the cookie.

import { combineChunks, createChunks, isChunkLike, stringFromBase64URL, stringToBase64URL } from '@supabase/ssr';
import { createClient } from '@supabase/supabase-js';
import type { AuthSession, SupabaseClient } from '@supabase/supabase-js';

import type { Database } from '../../supabase/database.types';
import { supabasePublishableKey, supabaseUrl } from './config';

/** The session cookie's name (a fixed one, so every part of the app and its tests agree). */
export const AUTH_COOKIE = 'sb-tollgate-auth-token';

export type Supabase = SupabaseClient<Database>;

export interface CookieJar {
  getAll(): { name: string; value: string }[];
}

/** The access token the auth cookie holds (as @supabase/ssr writes it), not verified. */
export async function accessTokenIn(jar: CookieJar): Promise<string | null> {
  const all = jar.getAll();
  const raw = await combineChunks(AUTH_COOKIE, (name) => all.find((c) => c.name === name)?.value ?? null);
  if (!raw) return null;
  try {
    const session = JSON.parse(raw.startsWith('base64-') ? stringFromBase64URL(raw.slice('base64-'.length)) : raw) as { access_token?: unknown };
    return typeof session?.access_token === 'string' ? session.access_token : null;
  } catch {
    return null;
  }
}

/** A supabase-js client acting as the holder of `accessToken` (verified by the caller). */
export async function supabaseAs(accessToken: string): Promise<Supabase> {
  return createClient<Database>(supabaseUrl(), await supabasePublishableKey(), {
    accessToken: async () => accessToken,
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
