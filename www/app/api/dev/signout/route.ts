import { NextResponse } from 'next/server';

import { ACCESS_TOKEN_COOKIE } from '@/lib/session';

export async function POST(req: Request) {
  const res = NextResponse.redirect(new URL('/tools', req.url), 303);
  res.cookies.set(ACCESS_TOKEN_COOKIE, '', { path: '/', maxAge: 0 });
  return res;
}
