-- tollgate: a change of overage preferences that names no limit keeps the limit stored.
--
-- PUT /v1/usage/preferences with `allow_overages` alone wrote back the limit the worker had
-- read before it, so a limit another request set in between (another device lowering the
-- cap) was lost, and overage could be billed up to the old cap. The write now keeps the
-- stored limit when the caller named none (`p_keep_limit`; the limit given is then written
-- only where no preferences are stored yet) and answers the row as stored. The function
-- of 20261205000200 is replaced (dropped: PostgREST would find two functions of one name
-- ambiguous); a call without `p_keep_limit` writes the limit given, as before.
-- Idempotent: safe to apply to an empty database and again on top of itself.

drop function if exists public.tollgate_set_preferences(jsonb, boolean, bigint);

create or replace function public.tollgate_set_preferences(p_subject jsonb, p_allow_overages boolean, p_overage_limit bigint,
                                                           p_keep_limit boolean default false)
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
     set allow_overages = excluded.allow_overages,
         overage_limit_minor = case when coalesce(p_keep_limit, false) then p.overage_limit_minor else excluded.overage_limit_minor end,
         updated_at = now()
  returning to_jsonb(p) into v_row;
  return v_row;
end
$fn$;

revoke all on function public.tollgate_set_preferences(jsonb, boolean, bigint, boolean) from public, anon, authenticated;
grant execute on function public.tollgate_set_preferences(jsonb, boolean, bigint, boolean) to service_role;
