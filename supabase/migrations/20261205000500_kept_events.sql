-- Kept events for an operator: `GET /v1/admin/unattributed` lists the correctly signed
-- deliveries that were kept instead of applied (no buyer named, no offer the catalog has,
-- a user the database does not know yet, a body the core cannot read), and
-- `POST /v1/admin/attribute` looks one up before folding the operator's attribution
-- (an `attributed` billing fact) with it. Nothing here writes: the attribution is a fact
-- written by tollgate_apply_fold, which resolves the kept delivery in the same
-- transaction. Idempotent: safe to apply to an empty database and again on top of itself.

-- One kept delivery as an operator sees it.
create or replace function public.tollgate_kept_row(pe public.pending_webhook_events)
returns jsonb
language sql immutable
set search_path = ''
as $fn$
  select jsonb_build_object(
    'id', pe.id, 'provider', pe.provider, 'event_id', pe.event_id, 'event_type', pe.event_type,
    'reason', pe.reason, 'waiting_for', to_jsonb(pe.waiting_for), 'received_at', pe.received_at,
    'attempts', pe.attempts, 'last_error', pe.last_error, 'resolved_at', pe.resolved_at,
    'payload', pe.payload)
$fn$;

-- Open kept deliveries, in the order they were kept, a page at a time.
--   p_provider   'stripe' | 'razorpay' | null (both)
--   p_after      the last `id` of the previous page (null: the first page)
--   p_limit      1 to 200 (default 50)
-- Returns [{"id", "provider", "event_id", "event_type", "reason", "waiting_for",
-- "received_at", "attempts", "last_error", "resolved_at", "payload"}].
create or replace function public.tollgate_kept_events(p_provider text default null, p_after bigint default null,
                                                       p_limit integer default 50)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(public.tollgate_kept_row(x) order by x.id), '[]'::jsonb)
    from (select * from public.pending_webhook_events pe
           where pe.resolved_at is null
             and (p_provider is null or pe.provider = p_provider)
             and (p_after is null or pe.id > p_after)
           order by pe.id
           limit greatest(1, least(coalesce(p_limit, 50), 200))) x
$fn$;

-- One kept delivery, open or resolved (null when the event was never kept).
create or replace function public.tollgate_kept_event(p_provider text, p_event_id text)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select public.tollgate_kept_row(pe)
    from public.pending_webhook_events pe
   where pe.provider = p_provider and pe.event_id = p_event_id
$fn$;

-- Kept deliveries carry raw provider payloads: the worker (service role) only.
do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_kept_row(public.pending_webhook_events)',
    'public.tollgate_kept_events(text, bigint, integer)',
    'public.tollgate_kept_event(text, text)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
