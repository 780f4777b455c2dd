-- tollgate: users set their own overage choice, and the cap holds for a billing period;
-- a subject's usage by day.
--
-- `PUT /v1/preferences` (the signed-in user, validated by the core) writes the user's
-- `usage_preferences` row through tollgate_set_preferences. The cap is enforced per
-- billing period by tollgate_charge (20261205000000): a charge's overage is added to the
-- period's row of `usage_counters` (limit `overage:<currency>`) in one statement that may
-- not pass the cap.
-- Idempotent: safe to apply to an empty database and again on top of itself.

-- Sets a subject's overage choice; answers the stored row.
create or replace function public.tollgate_set_preferences(p_subject jsonb, p_allow_overages boolean, p_overage_limit bigint)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_row jsonb;
begin
  s := public.tollgate_subject_ids(p_subject);
  if p_allow_overages is null or p_overage_limit is null or p_overage_limit < 0 then
    raise exception using errcode = '22023', message = 'allow_overages and an overage_limit of 0 or more are required';
  end if;
  insert into public.usage_preferences as p (user_id, organization_id, allow_overages, overage_limit_minor, updated_at)
  values (s.user_id, s.organization_id, p_allow_overages, p_overage_limit, now())
  on conflict (user_id, organization_id) do update
     set allow_overages = excluded.allow_overages, overage_limit_minor = excluded.overage_limit_minor, updated_at = now()
  returning to_jsonb(p) into v_row;
  return v_row;
end
$fn$;

revoke all on function public.tollgate_set_preferences(jsonb, boolean, bigint) from public, anon, authenticated;
grant execute on function public.tollgate_set_preferences(jsonb, boolean, bigint) to service_role;

-- The subject's usage of one feature by UTC day, from `p_from` (inclusive) to `p_to`
-- (exclusive): what `GET /v1/usage` answers. A feature is a limit (uses counted by
-- tollgate_track) or a credit pool (charges). Answers [{"day": "YYYY-MM-DD", "units", "uses"}].
create or replace function public.tollgate_usage_by_day(p_subject jsonb, p_feature text, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  with s as (select * from public.tollgate_subject_ids(p_subject))
  select coalesce(jsonb_agg(jsonb_build_object('day', d.day, 'units', d.units, 'uses', d.uses) order by d.day), '[]'::jsonb)
    from (select to_char(u.created_at at time zone 'UTC', 'YYYY-MM-DD') as day, sum(u.units)::bigint as units, count(*) as uses
            from public.usage_records u, s
           where (u.user_id = s.user_id or u.organization_id = s.organization_id)
             and coalesce(u.feature, u.pool) = p_feature
             and u.created_at >= p_from and u.created_at < p_to
           group by 1) d
$fn$;

revoke all on function public.tollgate_usage_by_day(jsonb, text, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.tollgate_usage_by_day(jsonb, text, timestamptz, timestamptz) to service_role;
