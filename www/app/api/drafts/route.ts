// The Razorpay AI app's "Write a draft", on the server. GET answers what the caller has
// left (free drafts, AI credits) from the worker; POST spends one draft through the
// worker's `track` (a free draft first, then one AI credit) before the model is called, so
// a refused draft never reaches the model. One Idempotency-Key per click, the same on a
// retry: a draft is never spent twice.

import { NextResponse } from 'next/server';

import { draftBalances, spendDraft } from '@/lib/drafts';
import { fromAnotherOrigin, idempotencyKeyOf } from '@/lib/origin';
import { getSession } from '@/lib/session';

const signedOut = () => NextResponse.json({ error: { code: 'signed_out', message: 'sign in first' } }, { status: 401 });

export async function GET() {
  const session = await getSession();
  if (!session) return signedOut();
  const r = await draftBalances(session.accessToken);
  if (!r.ok) return NextResponse.json({ error: { code: 'unavailable', message: r.message } }, { status: r.status });
  return NextResponse.json(r.balances);
}

export async function POST(req: Request) {
  const refused = fromAnotherOrigin(req);
  if (refused) return refused;
  const session = await getSession();
  if (!session) return signedOut();
  const key = idempotencyKeyOf(req) ?? crypto.randomUUID();
  // Each pool's key is this one and a suffix (lib/drafts.ts), within the worker's 200 characters.
  if (key.length > 100) {
    return NextResponse.json({ error: { code: 'invalid_idempotency_key', message: 'an Idempotency-Key of at most 100 characters' } }, { status: 400 });
  }
  const spent = await spendDraft(session.accessToken, key);
  if (!spent.ok) {
    const { status, code, message, upgrade } = spent;
    return NextResponse.json({ error: { code, message, upgrade } }, { status });
  }
  // A simulated model call: the demo has no model behind it.
  const { topic } = (await req.json().catch(() => ({}))) as { topic?: unknown };
  const about = typeof topic === 'string' && topic.trim() ? topic.trim().slice(0, 120) : 'your next launch';
  return NextResponse.json({
    draft: `A first draft about ${about}: open with the problem, show the fix, end with one clear next step.`,
    paid_with: spent.pool,
    remaining: spent.remaining,
    usage_id: spent.usage_id,
  });
}
