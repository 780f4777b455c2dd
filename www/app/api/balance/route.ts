// GET /api/balance: the signed-in user's video-second credits by kind (allowance,
// rollover, purchased tokens) and the next renewal, read from Supabase's REST API
// with the user's own access token, so row-level security decides what is visible.

import { NextResponse } from 'next/server';

import { supabaseAnonKey, supabaseUrl } from '@/lib/config';
import { getSession } from '@/lib/session';

interface Lot {
  kind: string;
  pool: string;
  remaining: number;
  granted: number;
  valid_from: string;
  valid_to: string | null;
  closed: boolean;
}

export async function GET(req: Request) {
  const session = await getSession();
  if (!session) return NextResponse.json({ error: 'signed_out', message: 'sign in first' }, { status: 401 });
  const pool = new URL(req.url).searchParams.get('pool') ?? 'video_seconds';
  const url = `${supabaseUrl().replace(/\/+$/, '')}/rest/v1/credit_lots?select=kind,pool,remaining,granted,valid_from,valid_to,closed&pool=eq.${encodeURIComponent(pool)}&closed=eq.false`;
  let r: Response;
  try {
    r = await fetch(url, {
      headers: { apikey: supabaseAnonKey(), authorization: `Bearer ${session.accessToken}`, accept: 'application/json' },
      cache: 'no-store',
      signal: AbortSignal.timeout(3000),
    });
  } catch (e) {
    return NextResponse.json({ error: 'unavailable', message: `Supabase is unreachable: ${(e as Error).message}` }, { status: 503 });
  }
  if (!r.ok) {
    return NextResponse.json({ error: 'supabase_error', message: `Supabase answered ${r.status}: ${(await r.text()).slice(0, 300)}` }, { status: 502 });
  }
  const lots = (await r.json()) as Lot[];
  const now = Date.now();
  const open = lots.filter((l) => Date.parse(l.valid_from) <= now && (!l.valid_to || Date.parse(l.valid_to) > now));
  const sum = (kinds: string[]) => open.filter((l) => kinds.includes(l.kind)).reduce((s, l) => s + Number(l.remaining), 0);
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
