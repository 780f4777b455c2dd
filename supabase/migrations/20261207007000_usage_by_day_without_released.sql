-- GET /v1/usage is the subject's use: a released hold, or a released use of a limit without
-- a window, gave back what it took and is left out.
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
             and u.status <> 'released'
             and u.created_at >= p_from and u.created_at < p_to
           group by 1) d
$fn$;

revoke all on function public.tollgate_usage_by_day(jsonb, text, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.tollgate_usage_by_day(jsonb, text, timestamptz, timestamptz) to service_role;
