// POST /api/dev/signin (form or JSON: email): the local development sign-in.
// A stand-in for Supabase Auth; see lib/devauth.ts and the README.

import { NextResponse } from 'next/server';

import { configuredJwtSecret, devStandInsEnabled, JWT_SECRET_MISSING } from '@/lib/config';
import { ACCESS_TOKEN_TTL_SECS, ensureUser, issueSession, userIdFor } from '@/lib/devauth';
import { fromAnotherOrigin } from '@/lib/origin';
import { localPath, seeOther } from '@/lib/redirect';
import { sessionCookies } from '@/lib/supabase';

export async function POST(req: Request) {
  if (!devStandInsEnabled()) {
    return NextResponse.json({ error: 'disabled', message: 'the local sign-in is off (set TOLLGATE_DEV_AUTH=1 for local development)' }, { status: 404 });
  }
  // Another origin's form would sign this browser in as someone else.
  const refused = fromAnotherOrigin(req);
  if (refused) return refused;
  if (!configuredJwtSecret()) {
    return NextResponse.json({ error: 'not_configured', message: JWT_SECRET_MISSING }, { status: 500 });
  }
  let email = '';
  let next = '/tools';
  const type = req.headers.get('content-type') ?? '';
  if (type.includes('application/json')) {
    const body = (await req.json().catch(() => ({}))) as { email?: unknown; next?: unknown };
    email = typeof body.email === 'string' ? body.email : '';
    if (typeof body.next === 'string') next = body.next;
  } else {
    const form = await req.formData();
    email = String(form.get('email') ?? '');
    next = String(form.get('next') ?? next);
  }
  email = email.trim().toLowerCase();
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    return NextResponse.json({ error: 'invalid_email', message: 'enter an email address such as ana@example.com' }, { status: 400 });
  }
  next = localPath(next, '/tools');
  const id = userIdFor(email);
  try {
    await ensureUser(id, email);
  } catch (e) {
    console.error('local sign-in:', e);
    return NextResponse.json(
      { error: 'database_unavailable', message: 'could not create the local user: is the local database running? (the server log has the error)' },
      { status: 503 },
    );
  }
  const session = await issueSession(id, email);
  const token = session.access_token;
  const res = type.includes('application/json')
    ? NextResponse.json({ user_id: id, email, access_token: token, expires_in: ACCESS_TOKEN_TTL_SECS })
    : seeOther(next); // a path: the browser stays on the origin it signed in on
  // The session cookie exactly as @supabase/ssr writes one (lib/supabase.ts reads it back).
  for (const c of sessionCookies(session)) {
    res.cookies.set(c.name, c.value, { path: '/', sameSite: 'lax', maxAge: ACCESS_TOKEN_TTL_SECS });
  }
  return res;
}
