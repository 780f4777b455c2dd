-- tollgate: the scheduled run pages through every expired hold.
--
-- tollgate_expired_holds answered the oldest 500 expired holds and the scheduled run
-- released those. A hold that cannot be released now (its subject's store failing) stays
-- held and expired, so 500 of them were the whole answer on every run and the holds after
-- them were never given back. Now the function takes a keyset cursor (the last row's
-- `hold_until` and `usage_id`) and the run asks page after page, as it does for lapsed
-- lots and grants. The two-argument form is dropped (PostgREST could not choose between
-- two forms that both take `p_now` and `p_limit`).
-- Idempotent: safe to apply to an empty database and again on top of itself.

drop function if exists public.tollgate_expired_holds(timestamptz, integer);

-- Holds past their end at `p_now`, in (hold_until, id) order after the cursor
-- (`p_after_at`, `p_after_id`: the last row of the previous page), at most `p_limit`:
-- [{"usage_id", "hold_until", "subject"}].
create or replace function public.tollgate_expired_holds(p_now timestamptz, p_after_at timestamptz default null,
                                                         p_after_id uuid default null, p_limit integer default 500)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(jsonb_build_object(
           'usage_id', h.id,
           'hold_until', h.hold_until,
           'subject', case when h.user_id is not null then jsonb_build_object('user_id', h.user_id)
                           else jsonb_build_object('organization_id', h.organization_id) end) order by h.hold_until, h.id),
         '[]'::jsonb)
    from (select r.id, r.user_id, r.organization_id, r.hold_until from public.usage_records r
           where r.status = 'held' and r.hold_until <= p_now
             and (p_after_at is null or (r.hold_until, r.id) > (p_after_at, coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid)))
           order by r.hold_until, r.id limit greatest(1, least(coalesce(p_limit, 500), 5000))) h
$fn$;

revoke all on function public.tollgate_expired_holds(timestamptz, timestamptz, uuid, integer) from public, anon, authenticated;
grant execute on function public.tollgate_expired_holds(timestamptz, timestamptz, uuid, integer) to service_role;
