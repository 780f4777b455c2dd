// The AI Caption Writer's server side: the worker checks `use_ai` (`track`) before the
// model is called, so a plan without AI tools never reaches it.

import { NextResponse } from 'next/server';
import { track } from 'tollgate-react/server';

import { workerUrl } from '@/lib/config';
import { fromAnotherOrigin, idempotencyKeyOf } from '@/lib/origin';
import { getSession } from '@/lib/session';

export async function POST(req: Request) {
  const refused = fromAnotherOrigin(req);
  if (refused) return refused;
  const session = await getSession();
  if (!session) return NextResponse.json({ error: { code: 'signed_out', message: 'sign in first' } }, { status: 401 });
  const r = await track('use_ai', {
    workerUrl: workerUrl(),
    accessToken: session.accessToken,
    idempotencyKey: idempotencyKeyOf(req),
  });
  if (!r.ok) return r.response;
  // A simulated model call: the demo has no model behind it.
  const { topic } = (await req.json().catch(() => ({}))) as { topic?: unknown };
  const about = typeof topic === 'string' && topic.trim() ? topic.trim().slice(0, 120) : 'your video';
  return NextResponse.json({ caption: `A fresh take on ${about} (a demo caption).` });
}
