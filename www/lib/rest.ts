// Reads from Supabase's REST API (PostgREST) as the signed-in user: the user's own
// access token goes with every request, so row-level security decides what is visible.

import { supabaseAnonKey, supabaseUrl } from '@/lib/config';
import type { Session } from '@/lib/session';

/** Rows, or why there are none: `unavailable` when Supabase cannot be reached
 * (worth a retry), `supabase_error` when it answered with an error. */
export type Select<T> = { rows: T[] } | { error: 'unavailable' | 'supabase_error'; message: string };

/** `GET /rest/v1/<table>?<query>` with the user's token. */
export async function selectAsUser<T>(session: Session, table: string, query: string): Promise<Select<T>> {
  const url = `${supabaseUrl().replace(/\/+$/, '')}/rest/v1/${table}?${query}`;
  let r: Response;
  try {
    r = await fetch(url, {
      headers: { apikey: supabaseAnonKey(), authorization: `Bearer ${session.accessToken}`, accept: 'application/json' },
      cache: 'no-store',
      signal: AbortSignal.timeout(3000),
    });
  } catch (e) {
    return { error: 'unavailable', message: `Supabase is unreachable: ${(e as Error).message}` };
  }
  if (!r.ok) return { error: 'supabase_error', message: `Supabase answered ${r.status}: ${(await r.text()).slice(0, 300)}` };
  const rows = (await r.json()) as T[];
  if (!Array.isArray(rows)) return { error: 'supabase_error', message: 'Supabase answered something other than a list of rows' };
  return { rows };
}
