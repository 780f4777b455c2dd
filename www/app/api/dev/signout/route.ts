import type { NextRequest } from 'next/server';

import { seeOther } from '@/lib/redirect';
import { sessionCookieNames } from '@/lib/supabase';

// The local sign-in's sign-out: the session cookie (and any chunk of it) is removed. A
// real project calls `supabase.auth.signOut()`, which @supabase/ssr turns into the same.
export async function POST(request: NextRequest) {
  // A path, not an absolute URL: the browser stays on the origin whose cookie is cleared.
  const res = seeOther('/tools');
  for (const name of sessionCookieNames(request.cookies.getAll().map((c) => c.name))) {
    res.cookies.set(name, '', { path: '/', maxAge: 0 });
  }
  return res;
}
