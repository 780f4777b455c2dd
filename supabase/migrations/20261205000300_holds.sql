-- tollgate: holds on credits, captured or released.
--
-- A long job (a video render, a model call) holds the credits it may use: tollgate_charge
-- takes them at once (status `held`, counted against the balance), then the job captures
-- the hold (final) or releases it, which gives back exactly what it took, lot by lot:
-- each lot's `used` goes down by its take and its `remaining` up (a lot closed meanwhile
-- takes the units into `expired`, as its end would have). Granted = remaining + used +
-- revoked + expired holds for every lot. A hold not captured by `hold_until` is released
-- by the scheduled run. A counted use of a limit without a window (courses authored: the
-- core counts it from the epoch) is released too: its quantity goes back to its counter
-- (never below 0), once, and the member who used an organization's limit may release its
-- own use; a windowed limit's use is final (it refills when its window resets).
-- Idempotent: safe to apply to an empty database and again on top of itself.

-- Releases the subject's hold `p_usage_id`. Answers {"status": "released", "usage_id",
-- "lots": {"<lot>": remaining after}, "replayed"} (a hold released before answers
-- `replayed`: true), or null when the subject has no such usage. A charge that is not a
-- hold, or a captured hold: PT409 hint not_held. A counted use: {"status": "released",
-- "usage_id", "used": the counter after, "replayed"}; a windowed one: PT409 not_releasable.
create or replace function public.tollgate_release(p_subject jsonb, p_usage_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  u record;
  v_take jsonb;
  v_units bigint;
  v_left bigint;
  v_used bigint;
  v_lots jsonb := '{}'::jsonb;
begin
  s := public.tollgate_subject_ids(p_subject);
  select r.id, r.status, r.charges, r.feature, r.counter, r.window_start, r.units, r.user_id, r.organization_id
    into u from public.usage_records r
   where r.id = p_usage_id
     and (r.user_id = s.user_id or r.organization_id = s.organization_id or r.actor_id = s.user_id)
   for update;
  if not found then
    return null;
  end if;
  if u.status = 'released' then
    return jsonb_build_object('status', 'released', 'usage_id', u.id, 'replayed', true);
  end if;
  if u.feature is not null and u.status = 'charged' and u.window_start <> to_timestamp(0) then
    -- A windowed limit (runs a day) refills by its window: giving a use back would let
    -- the caller run without end.
    raise exception using errcode = 'PT409', message = 'a use of a limit with a window is final: it refills when the window resets',
      hint = 'not_releasable';
  end if;
  if u.feature is not null and u.status = 'charged' then
    update public.usage_counters c
       set used = greatest(c.used - u.units, 0), updated_at = now()
     where c.owner_id = coalesce(u.user_id, u.organization_id) and c.limit_id = coalesce(u.counter, u.feature)
       and c.window_start = u.window_start
    returning c.used into v_used;
    update public.usage_records r set status = 'released', settled_at = now() where r.id = u.id;
    return jsonb_build_object('status', 'released', 'usage_id', u.id, 'used', coalesce(v_used, 0), 'replayed', false);
  end if;
  if u.status <> 'held' then
    raise exception using errcode = 'PT409', message = format('the usage is %s, not a hold: nothing to release', u.status),
      hint = 'not_held';
  end if;
  for i in 0 .. jsonb_array_length(u.charges) - 1 loop
    v_take := u.charges -> i;
    v_units := (v_take ->> 'units')::bigint;
    update public.credit_lots l
       set used = l.used - v_units,
           remaining = l.remaining + case when l.closed then 0 else v_units end,
           expired = l.expired + case when l.closed then v_units else 0 end,
           updated_at = now()
     where l.owner_id = coalesce(s.user_id, s.organization_id) and l.key = v_take ->> 'lot' and l.used >= v_units
    returning l.remaining into v_left;
    if not found then
      raise exception using errcode = 'PT409', message = 'a lot no longer records the take of this hold',
        detail = v_take ->> 'lot', hint = 'lot_short';
    end if;
    v_lots := v_lots || jsonb_build_object(v_take ->> 'lot', v_left);
  end loop;
  update public.usage_records r set status = 'released', settled_at = now() where r.id = u.id;
  return jsonb_build_object('status', 'released', 'usage_id', u.id, 'lots', v_lots, 'replayed', false);
end
$fn$;

-- Captures the subject's hold `p_usage_id`: final from now on. Answers {"status":
-- "captured", "usage_id", "replayed"}, or null when the subject has no such usage. A
-- released hold: PT409 hint released; a charge that never was a hold: PT409 not_held.
create or replace function public.tollgate_capture(p_subject jsonb, p_usage_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  u record;
begin
  s := public.tollgate_subject_ids(p_subject);
  select r.id, r.status into u from public.usage_records r
   where r.id = p_usage_id and (r.user_id = s.user_id or r.organization_id = s.organization_id)
   for update;
  if not found then
    return null;
  end if;
  if u.status = 'captured' then
    return jsonb_build_object('status', 'captured', 'usage_id', u.id, 'replayed', true);
  end if;
  if u.status = 'released' then
    raise exception using errcode = 'PT409', message = 'the hold was released: nothing to capture', hint = 'released';
  end if;
  if u.status <> 'held' then
    raise exception using errcode = 'PT409', message = 'the usage is final, not a hold', hint = 'not_held';
  end if;
  update public.usage_records r set status = 'captured', settled_at = now() where r.id = u.id;
  return jsonb_build_object('status', 'captured', 'usage_id', u.id, 'replayed', false);
end
$fn$;

-- Holds past their end at `p_now`, oldest first, at most `p_limit`: [{"usage_id",
-- "subject"}], for the scheduled run to release.
create or replace function public.tollgate_expired_holds(p_now timestamptz, p_limit integer default 500)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(jsonb_build_object(
           'usage_id', h.id,
           'subject', case when h.user_id is not null then jsonb_build_object('user_id', h.user_id)
                           else jsonb_build_object('organization_id', h.organization_id) end) order by h.hold_until, h.id),
         '[]'::jsonb)
    from (select r.id, r.user_id, r.organization_id, r.hold_until from public.usage_records r
           where r.status = 'held' and r.hold_until <= p_now
           order by r.hold_until, r.id limit greatest(p_limit, 1)) h
$fn$;

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_release(jsonb, uuid)',
    'public.tollgate_capture(jsonb, uuid)',
    'public.tollgate_expired_holds(timestamptz, integer)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
