-- tollgate: limits counted per scope and per organization, and a counted use given back.
--
-- A limit may count per scope (the Org Seats app's students per course: one counter per
-- course), as the core names it: `usage_counters.limit_id` is then `<limit>:<scope>`, and
-- the use's record keeps that counter in `counter` (its `feature` stays the limit, so the
-- usage by day of a limit sums every scope). An organization's limit counts for the
-- whole organization, used by its seated members: the record belongs to the organization
-- and `actor_id` names the member who used it. A counted use released
-- (`POST /v1/usage/{id}/release`: a course deleted) gives its quantity
-- back to the counter it went to, once, when the limit has no window (a windowed limit
-- refills when its window resets).
-- Idempotent: safe to apply to an empty database and again on top of itself.

alter table public.usage_records add column if not exists counter text;
alter table public.usage_records add column if not exists actor_id uuid;
-- The member's uses, for its own release and reads (null for most rows: partial).
create index if not exists usage_records_actor_idx on public.usage_records(actor_id) where actor_id is not null;

-- As in 20261205000100, reading the counter a use went to.
create or replace function public.tollgate_track_replay(p_subject jsonb, p_request_id text, p_request_hash text)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
  v record;
begin
  s := public.tollgate_subject_ids(p_subject);
  select u.id, u.request_hash, u.user_id, u.organization_id, u.feature, u.counter, u.window_start into v
    from public.usage_records u where u.request_id = p_request_id;
  if not found then
    return null;
  end if;
  if v.request_hash is distinct from p_request_hash or v.user_id is distinct from s.user_id
     or v.organization_id is distinct from s.organization_id then
    raise exception using errcode = 'PT409', message = 'Idempotency-Key was already used for a different request',
      hint = 'key_reused';
  end if;
  return jsonb_build_object('status', 'replayed', 'usage_id', v.id,
    'used', public.tollgate_counter(p_subject, coalesce(v.counter, v.feature), v.window_start));
end
$fn$;

-- As in 20261205000100, with p_count's "counter" (default: the feature) and "actor"
-- (`user:<id>`, the member acting for an organization subject).
create or replace function public.tollgate_track(p_subject jsonb, p_count jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_owner uuid;
  v_request_id text := p_count ->> 'request_id';
  v_feature text := p_count ->> 'feature';
  v_counter text := coalesce(nullif(p_count ->> 'counter', ''), p_count ->> 'feature');
  v_actor uuid := nullif(substr(coalesce(p_count ->> 'actor', ''), 6), '')::uuid;
  v_quantity bigint := (p_count ->> 'quantity')::bigint;
  v_window timestamptz := (p_count ->> 'window_start')::timestamptz;
  v_max bigint := (p_count ->> 'max')::bigint;
  v_existing jsonb;
  v_used bigint;
  v_usage_id uuid;
begin
  s := public.tollgate_subject_ids(p_subject);
  v_owner := coalesce(s.user_id, s.organization_id);
  if coalesce(v_request_id, '') = '' or coalesce(p_count ->> 'request_hash', '') = ''
     or coalesce(v_feature, '') = '' or v_window is null then
    raise exception using errcode = '22023', message = 'a count needs request_id, request_hash, feature and window_start';
  end if;
  if v_quantity is null or v_quantity <= 0 or (v_max is not null and v_max < 0) then
    raise exception using errcode = '22023', message = 'a count needs a positive quantity and a limit of 0 or more';
  end if;
  if v_counter <> v_feature and left(v_counter, length(v_feature) + 1) <> v_feature || ':' then
    raise exception using errcode = '22023', message = 'a count''s counter is its feature or `<feature>:<scope>`';
  end if;
  if coalesce(p_count ->> 'actor', '') <> '' and (s.organization_id is null or left(p_count ->> 'actor', 5) <> 'user:') then
    raise exception using errcode = '22023', message = 'an actor is the user:<id> acting for an organization subject';
  end if;

  v_existing := public.tollgate_track_replay(p_subject, v_request_id, p_count ->> 'request_hash');
  if v_existing is not null then
    return v_existing;
  end if;

  if v_max is not null and v_quantity > v_max then
    return jsonb_build_object('status', 'limit_reached', 'used', public.tollgate_counter(p_subject, v_counter, v_window));
  end if;
  insert into public.usage_counters as c (owner_id, user_id, organization_id, limit_id, window_start, used)
  values (v_owner, s.user_id, s.organization_id, v_counter, v_window, v_quantity)
  on conflict (owner_id, limit_id, window_start) do update
     set used = c.used + excluded.used, updated_at = now()
   where v_max is null or c.used + excluded.used <= v_max
  returning c.used into v_used;
  if v_used is null then
    return jsonb_build_object('status', 'limit_reached', 'used', public.tollgate_counter(p_subject, v_counter, v_window));
  end if;

  -- A concurrent use under the same request id fails here (unique request_id) and rolls
  -- its count back; its retry is answered as a replay.
  insert into public.usage_records (request_id, user_id, organization_id, request_hash, units, feature, window_start,
                                    counter, actor_id)
  values (v_request_id, s.user_id, s.organization_id, p_count ->> 'request_hash', v_quantity, v_feature, v_window,
          nullif(v_counter, v_feature), v_actor)
  returning id into v_usage_id;
  return jsonb_build_object('status', 'counted', 'usage_id', v_usage_id, 'used', v_used);
end
$fn$;

-- As in 20261205000300, and also a counted use of a limit without a window (courses
-- authored: the core counts it from the epoch): its quantity goes back to its counter
-- (never below 0), once; the member who used an organization's limit may release its own
-- use. A windowed limit's use is final (PT409 not_releasable). Answers as there, with
-- "used": the counter after.
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

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_track_replay(jsonb, text, text)',
    'public.tollgate_track(jsonb, jsonb)',
    'public.tollgate_release(jsonb, uuid)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
