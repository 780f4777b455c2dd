// Reads from Supabase as the signed-in user, through the session's supabase-js client
// (lib/session.ts): the user's own access token goes with every request, so row-level
// security decides what is visible.

/** Rows, or why there are none: `unavailable` when Supabase cannot be reached
 * (worth a retry), `supabase_error` when it answered with an error. */
export type Select<T> = { rows: T[] } | { error: 'unavailable' | 'supabase_error'; message: string };

/** A supabase-js query's answer as a `Select`. */
export async function rowsOf<T>(query: PromiseLike<{ data: T[] | null; error: { message: string } | null; status: number }>): Promise<Select<T>> {
  // What failed goes to the server's log; the answer the page shows names nothing of the
  // database (its tables, columns, hosts).
  let r;
  try {
    r = await query;
  } catch (e) {
    console.error('supabase:', e);
    return { error: 'unavailable', message: 'Supabase is unreachable; try again in a moment' };
  }
  // supabase-js answers a failed fetch with status 0 rather than throwing.
  if (r.error) {
    console.error(`supabase: ${r.status} ${r.error.message}`);
    return r.status === 0
      ? { error: 'unavailable', message: 'Supabase is unreachable; try again in a moment' }
      : { error: 'supabase_error', message: `Supabase refused the read (${r.status})` };
  }
  return { rows: r.data ?? [] };
}
