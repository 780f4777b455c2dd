// GET /api/subscriptions: the signed-in user's subscriptions from the database (see
// lib/subscriptions.ts); the account page reads them again after asking the worker to
// cancel or resume, until the provider's webhook has changed them.

import { NextResponse } from 'next/server';

import { getSession } from '@/lib/session';
import { fetchSubscriptions } from '@/lib/subscriptions';

export async function GET() {
  const session = await getSession();
  if (!session) return NextResponse.json({ error: 'signed_out', message: 'sign in first' }, { status: 401 });
  const got = await fetchSubscriptions(session);
  if ('error' in got) return NextResponse.json({ error: got.error, message: got.message }, { status: 503 });
  return NextResponse.json({ subscriptions: got.rows }, { headers: { 'cache-control': 'no-store' } });
}
