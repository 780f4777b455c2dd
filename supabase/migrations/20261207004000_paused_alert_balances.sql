-- tollgate: a pool's low-balance alert compares what may be spent.
--
-- A pool's alert check (`units_left`, level `{"pool", "below"}`) summed the open lots of
-- credit_lots. Since 20261207002000 a paused subscription's lots (its period's allowance,
-- the rollover carried into it, the credits it gave once) are left out of credit_balances,
-- as the core leaves them out of charges, pool checks and a snapshot's balances
-- (usage::drawable, usage::balances): a pause that left nothing spendable opened no alert,
-- and the alert state disagreed with what a charge sees. Now the check compares
-- credit_balances.available, the same rule (a grant paused at now()), so a pause that
-- leaves the spendable balance below a level opens its alert (on the pause's own fold,
-- whose checks include every pool the subject holds) and the resumption's fold resolves
-- it. A subject that never held the pool still never runs low on it. Otherwise
-- 20261206016000's form, unchanged.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_apply_alerts(p_user uuid, p_org uuid, p_checks jsonb, p_at timestamptz)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_owner uuid := coalesce(p_user, p_org);
  c jsonb;
  v_level jsonb;
  v_crossed boolean;
  v_episode text;
  a public.alerts;
  v_crossed_n integer := 0;
  v_resolved_n integer := 0;
  v_queued integer := 0;
begin
  if v_owner is null or jsonb_array_length(coalesce(p_checks, '[]'::jsonb)) = 0 then
    return jsonb_build_object('crossed', 0, 'resolved', 0, 'queued', 0);
  end if;
  perform pg_advisory_xact_lock(hashtextextended('tollgate:alerts:' || v_owner::text, 0));
  for c in select * from jsonb_array_elements(p_checks) loop
    v_level := c -> 'level';
    v_episode := coalesce(c ->> 'episode', '');
    if v_level ? 'known' then
      v_crossed := (v_level ->> 'known')::boolean;
    elsif v_level ? 'counter' then
      v_crossed := coalesce((select u.used >= (v_level ->> 'at_least')::bigint from public.usage_counters u
                              where u.owner_id = v_owner and u.limit_id = v_level ->> 'counter'
                                and u.window_start = (v_level ->> 'window_start')::timestamptz), false);
    elsif v_level ? 'pool' then
      -- Only a subject that ever held the pool can run low on it (credit_balances has a
      -- row for each pool a subject holds lots in). What runs low is what may be spent:
      -- credit_balances.available, which leaves a paused subscription's lots out.
      v_crossed := coalesce((select count(*) > 0 and coalesce(sum(b.available), 0) < (v_level ->> 'below')::bigint
                               from public.credit_balances b
                              where (b.user_id = p_user or b.organization_id = p_org) and b.pool = v_level ->> 'pool'), false);
    else
      raise exception using errcode = '22023', message = 'an alert check needs a level';
    end if;
    -- Resolve the open alert of this rule: its level is no longer crossed, or it belongs
    -- to an earlier episode (a window that ended). A limit's alert only by a check of its
    -- own window or a later one (a stale check never resolves a newer window's).
    for a in update public.alerts x set resolved_at = p_at
              where coalesce(x.user_id, x.organization_id) = v_owner and x.rule = c ->> 'rule'
                and x.resolved_at is null and (not v_crossed or x.episode <> v_episode)
                and (x.rule not like 'limit:%'
                     or split_part(x.episode, '/', 1) <= split_part(v_episode, '/', 1))
              returning x.* loop
      v_resolved_n := v_resolved_n + 1;
      v_queued := v_queued + public.tollgate_queue_alert(a, 'alert.resolved', p_at);
    end loop;
    if v_crossed then
      a := null;
      insert into public.alerts (user_id, organization_id, rule, episode, kind, body, crossed_at)
      values (p_user, p_org, c ->> 'rule', v_episode, coalesce(c -> 'alert' ->> 'kind', ''),
              coalesce(c -> 'alert', '{}'::jsonb), p_at)
      on conflict do nothing
      returning * into a;
      if a.id is not null then
        v_crossed_n := v_crossed_n + 1;
        v_queued := v_queued + public.tollgate_queue_alert(a, 'alert.crossed', p_at);
      end if;
    end if;
  end loop;
  return jsonb_build_object('crossed', v_crossed_n, 'resolved', v_resolved_n, 'queued', v_queued);
end
$fn$;


revoke all on function public.tollgate_apply_alerts(uuid, uuid, jsonb, timestamptz) from public, anon, authenticated;
grant execute on function public.tollgate_apply_alerts(uuid, uuid, jsonb, timestamptz) to service_role;
