// LOCAL DEVELOPMENT STAND-IN FOR SUPABASE AUTH. Never enabled in production.
//
// Supabase Auth (GoTrue) keeps users in auth.users and issues access tokens signed
// with the project's JWT secret. This stand-in does the same two things for the
// local stack: upserts the user into auth.users of the local database, and signs
// an HS256 token with the local secret, with the claims Supabase puts in one
// (sub, email, role "authenticated", aud "authenticated", iss, session_id).

import { createHash, randomUUID } from 'node:crypto';

import pg from 'pg';

import { devDatabaseUrl, jwtSecret, supabaseUrl } from './config';
import { signHs256 } from './jwt';
import type { AuthSession } from '@supabase/supabase-js';

/** A stable user id per email, so signing in again is the same user. */
export function userIdFor(email: string): string {
  const h = createHash('sha256').update(`tollgate-local-user:${email.toLowerCase()}`).digest('hex');
  // Shaped as a version-4 UUID (variant bits set) so it passes any uuid check.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export async function ensureUser(id: string, email: string): Promise<void> {
  const client = new pg.Client({ connectionString: devDatabaseUrl(), connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    await client.query(
      `insert into auth.users (id, aud, role, email, email_confirmed_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data)
       values ($1, 'authenticated', 'authenticated', $2, now(), now(), '{"provider":"email","providers":["email"]}', '{}')
       on conflict (id) do update set last_sign_in_at = now()`,
      [id, email],
    );
  } finally {
    await client.end();
  }
}

export const ACCESS_TOKEN_TTL_SECS = 3600;

export function issueAccessToken(id: string, email: string, nowSecs = Math.floor(Date.now() / 1000)): Promise<string> {
  return signHs256(
    {
      iss: `${supabaseUrl().replace(/\/+$/, '')}/auth/v1`,
      sub: id,
      aud: 'authenticated',
      exp: nowSecs + ACCESS_TOKEN_TTL_SECS,
      iat: nowSecs,
      email,
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: {},
      role: 'authenticated',
      aal: 'aal1',
      amr: [{ method: 'password', timestamp: nowSecs }],
      session_id: randomUUID(),
      is_anonymous: false,
    },
    jwtSecret(),
  );
}

/** The session Supabase Auth would answer a sign-in with (its refresh token is random
 * and never honoured: the local stack has no Auth server, so a session lasts its hour). */
export async function issueSession(id: string, email: string, nowSecs = Math.floor(Date.now() / 1000)): Promise<AuthSession> {
  return {
    access_token: await issueAccessToken(id, email, nowSecs),
    refresh_token: randomUUID(),
    token_type: 'bearer',
    expires_in: ACCESS_TOKEN_TTL_SECS,
    expires_at: nowSecs + ACCESS_TOKEN_TTL_SECS,
    user: {
      id,
      email,
      aud: 'authenticated',
      role: 'authenticated',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: {},
      created_at: new Date(nowSecs * 1000).toISOString(),
    },
  };
}
