// The Workflow Runner's server side: every run goes through the worker's `track`, which
// counts it against the caller's workflow runs a day (Starter: 3) in the database, so the
// limit holds whatever the browser shows. GET answers the day's count without running.

import { NextResponse } from 'next/server';
import { check, track } from 'tollgate-react/server';

import { workerUrl } from '@/lib/config';
import { fromAnotherOrigin, idempotencyKeyOf } from '@/lib/origin';
import { getSession } from '@/lib/session';

const FEATURE = 'workflow_runs_per_day';

export async function GET() {
  const session = await getSession();
  if (!session) return NextResponse.json({ error: { code: 'signed_out', message: 'sign in first' } }, { status: 401 });
  const r = await check(FEATURE, { workerUrl: workerUrl(), accessToken: session.accessToken });
  // A refusal is still an answer here (how many were used, why, what unlocks more).
  if (r.ok || r.answer) return NextResponse.json(r.answer);
  return r.response;
}

export async function POST(req: Request) {
  const refused = fromAnotherOrigin(req);
  if (refused) return refused;
  const session = await getSession();
  if (!session) return NextResponse.json({ error: { code: 'signed_out', message: 'sign in first' } }, { status: 401 });
  // The browser sends one key per click, and the same key when it retries.
  const key = idempotencyKeyOf(req);
  const r = await track(FEATURE, { workerUrl: workerUrl(), accessToken: session.accessToken, idempotencyKey: key });
  if (!r.ok) return r.response;
  // The workflow itself would run here; the demo answers that it ran.
  return NextResponse.json({ ran: true, ...r.answer });
}
