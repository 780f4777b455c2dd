// GET /api/balance: the signed-in user's video-second credits by kind (allowance,
// rollover, purchased tokens) and the next renewal, read from Supabase with the user's
// own session, so row-level security decides what is visible.

import { NextResponse } from 'next/server';

import { rowsOf } from '@/lib/rest';
import { getSession } from '@/lib/session';

export async function GET(req: Request) {
  const session = await getSession();
  if (!session) return NextResponse.json({ error: 'signed_out', message: 'sign in first' }, { status: 401 });
  const pool = new URL(req.url).searchParams.get('pool') ?? 'video_seconds';
  const got = await rowsOf(
    session.supabase.from('credit_lots').select('kind,pool,remaining,granted,valid_from,valid_to,closed').eq('pool', pool).eq('closed', false),
  );
  if ('error' in got) {
    return NextResponse.json(got, { status: got.error === 'unavailable' ? 503 : 502 });
  }
  const lots = got.rows;
  const now = Date.now();
  // credit_lots is a view: its columns are typed nullable, although a lot has each of these.
  const open = lots.filter((l) => l.valid_from !== null && Date.parse(l.valid_from) <= now && (!l.valid_to || Date.parse(l.valid_to) > now));
  const sum = (kinds: string[]) => open.filter((l) => l.kind !== null && kinds.includes(l.kind)).reduce((s, l) => s + Number(l.remaining), 0);
  const allowanceLots = open.filter((l) => l.kind === 'allowance');
  const renewals = allowanceLots.map((l) => l.valid_to).filter((v): v is string => Boolean(v)).sort();
  return NextResponse.json({
    pool,
    allowance: sum(['allowance']),
    allowance_granted: allowanceLots.reduce((s, l) => s + Number(l.granted), 0),
    rollover: sum(['rollover']),
    tokens: sum(['purchase']),
    other: sum(['free', 'adjustment']),
    total: open.reduce((s, l) => s + Number(l.remaining), 0),
    next_renewal: renewals[0] ?? null,
  });
}
