-- What a gate decision reads, in one statement: `POST /v1/check` (and the first read of
-- `POST /v1/track`) needs the subject's grants, the grants of the organizations where it
-- holds a seat, its credit lots and, for a limit, the window's count. tollgate_subject_state
-- answers everything a fold needs (the reducer's state, subscriptions, customers,
-- balances over the view, a digest of it all), which a decision never looks at.
--
--   p_subject       {"user_id"} | {"organization_id"}
--   p_limit         a limit's counter id
--   p_count_for     whose counter: an organization the user acts for (default p_subject)
-- Returns the subset of tollgate_subject_state's answer a decision reads (same shapes:
-- "grants", "wallet" {"lots", "ledger": []}, "memberships") and "counter", the counter's
-- latest window {"window_start", "used"} or null: the core computes the window that holds
-- now (which may start on the subscription's day) and counts 0 when the latest is older.
drop function if exists public.tollgate_gate_state(jsonb, text, timestamptz, jsonb);
create or replace function public.tollgate_gate_state(p_subject jsonb, p_limit text default null,
                                                      p_count_for jsonb default null)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
  c record;
  v_owner uuid;
begin
  s := public.tollgate_subject_ids(p_subject);
  v_owner := coalesce(s.user_id, s.organization_id);
  c := public.tollgate_subject_ids(coalesce(p_count_for, p_subject));
  return jsonb_build_object(
    'subject', p_subject,
    'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key) from public.cloud_entitlements g
                         where (g.user_id = s.user_id or g.organization_id = s.organization_id)), '[]'::jsonb),
    'wallet', jsonb_build_object(
      'lots', coalesce((select jsonb_agg(jsonb_strip_nulls(to_jsonb(l) - 'id' - 'user_id' - 'organization_id'
                                                           - 'owner_id' - 'updated_at')
                                         order by l.id)
                          from public.credit_lots l
                         where l.owner_id = v_owner), '[]'::jsonb),
      'ledger', '[]'::jsonb),
    'memberships', case when s.user_id is null then '[]'::jsonb else coalesce((
      select jsonb_agg(jsonb_build_object(
               'organization_id', m.organization_id,
               'role', m.role,
               'seat', exists (select 1 from public.seat_allocations a
                                where a.organization_id = m.organization_id
                                  and a.user_id = m.user_id and a.status = 'active'),
               'seat_count', o.seat_count,
               'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key)
                                     from public.cloud_entitlements g
                                    where g.organization_id = m.organization_id), '[]'::jsonb))
             order by m.organization_id)
        from public.organization_members m
        join public.organizations o on o.id = m.organization_id
       where m.user_id = s.user_id), '[]'::jsonb) end,
    'counter', case when p_limit is null then null else
                 (select jsonb_build_object('window_start', u.window_start, 'used', u.used)
                    from public.usage_counters u
                   where u.owner_id = coalesce(c.user_id, c.organization_id) and u.limit_id = p_limit
                   order by u.window_start desc limit 1) end);
end
$fn$;

revoke all on function public.tollgate_gate_state(jsonb, text, jsonb) from public, anon, authenticated;
grant execute on function public.tollgate_gate_state(jsonb, text, jsonb) to service_role;
