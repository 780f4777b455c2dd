-- tollgate: the scheduled run retries kept events least recently tried first.
--
-- Every run read at most 20 pages of 200 kept events (tollgate_kept_events) in the order
-- they were kept, always from the first. Kept events that never leave (a body the core
-- cannot read, a user who never signs up) stay at the front, so once 4000 of them waited,
-- an event kept after them (a paid purchase whose buyer has signed up since) was never
-- tried again, on any run. Each try is recorded already (tollgate_pending_attempt sets
-- last_attempt_at), so now:
--   * tollgate_kept_to_retry: the open kept events by when they were last tried (one never
--     tried, by when it was kept), then id, in keyset pages. What a run tries goes to the
--     back, so the next run goes on with the others: every kept event is tried within
--     ceil(N / 4000) runs of N waiting. tollgate_kept_events keeps the operator's listing
--     in the order of keeping;
--   * a partial index on that order, so a page reads only its rows.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create index if not exists pending_webhook_events_retry_idx
  on public.pending_webhook_events ((coalesce(last_attempt_at, received_at)), id)
  where resolved_at is null;

-- Open kept deliveries, least recently tried first (never tried: by when kept), then id.
--   p_after  the `cursor` of the last row of the previous page (null: the first page)
--   p_limit  1 to 200 (default 200)
-- Returns tollgate_kept_events' rows with their `cursor` (when last tried or kept, and the
-- id): [{"cursor", "id", "provider", "event_id", "event_type", "reason", "waiting_for",
-- "received_at", "attempts", "last_error", "resolved_at", "payload"}].
create or replace function public.tollgate_kept_to_retry(p_after text default null, p_limit integer default 200)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(x.r order by x.tried, x.id), '[]'::jsonb) from (
    select coalesce(pe.last_attempt_at, pe.received_at), pe.id,
           public.tollgate_kept_row(pe) || jsonb_build_object(
             'cursor', to_char(coalesce(pe.last_attempt_at, pe.received_at) at time zone 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|' || pe.id::text)
      from public.pending_webhook_events pe
     where pe.resolved_at is null
       -- One bound, from the start when there is no cursor: a condition of the index scan.
       and (coalesce(pe.last_attempt_at, pe.received_at), pe.id)
           > (coalesce(split_part(p_after, '|', 1)::timestamptz, '-infinity'),
              coalesce(split_part(p_after, '|', 2)::bigint, 0))
     order by coalesce(pe.last_attempt_at, pe.received_at), pe.id
     limit greatest(1, least(coalesce(p_limit, 200), 200))
  ) x(tried, id, r)
$fn$;

-- Kept deliveries carry raw provider payloads: the worker (service role) only.
revoke all on function public.tollgate_kept_to_retry(text, integer) from public, anon, authenticated;
grant execute on function public.tollgate_kept_to_retry(text, integer) to service_role;
