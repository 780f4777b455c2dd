-- tollgate: a limit's alert is resolved only by checks of its own window or a later one.
--
-- A check resolved every open alert of its rule when its level was not crossed (and, when
-- crossed, those of other episodes). The scheduled run's checks of windows that ended are
-- read before they are applied: a use in the next window that opened the rule's alert in
-- between (another isolate) had that new alert resolved by the stale check, and the
-- window, having crossed once, could not open it again. A late use counted in an ended
-- window did the same. Now an alert of a limit (rule `limit:...`, episode `<window
-- start>/<limit>`) is resolved only by a check of the same window or a later one; other
-- rules as before. Otherwise 20261205002100's form.
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
      -- Only a subject that ever held the pool can run low on it.
      v_crossed := coalesce((select count(*) > 0 and coalesce(sum(l.remaining) filter (where not l.closed), 0)
                                                     < (v_level ->> 'below')::bigint
                               from public.credit_lots l
                              where (l.user_id = p_user or l.organization_id = p_org) and l.pool = v_level ->> 'pool'), false);
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
