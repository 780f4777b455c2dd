-- tollgate: a use made for an organization is settled only by a member holding a seat, as
-- the settling's own transaction finds it.
--
-- A member gives back (releases) a use it made for its organization only while it acts for
-- it: a member holding a seat (the core's `seats::may_settle`); a retry of a settling done
-- before is answered to any member. The worker decided that from a read of the caller's
-- memberships, then settled in a second call: a removal, or the seat taken, that landed
-- between the two let one release through, and the organization's count went down for a
-- user who no longer acts for it. Now the settling decides it itself:
--   * tollgate_settle_refusal: the core's rule on the membership and the seat of a user in
--     an organization, read under a share lock of their rows (a removal deletes the
--     membership's row, a fold taking the seat updates the seat's row: either waits for
--     the settling, or the settling sees it done);
--   * tollgate_release and tollgate_capture: a use the caller (a user) made for an
--     organization (its actor) is settled only when that rule allows it; else they answer
--     {"status": "refused", "reason": "not_a_member" | "no_seat", "usage_id"} and change
--     nothing (the worker answers 404, as for another's usage). tollgate_capture now finds
--     such a use as tollgate_release does (before, it answered null: 404 for a use the
--     in-memory store answered 409 not_held, as it is no hold).
-- Signatures are unchanged. Replaces tollgate_release of 20261206009000 and
-- tollgate_capture of 20261206007000. Idempotent: safe to apply to an empty database and
-- again on top of itself.

-- Why user `p_user_id` may not settle a use it made for organization `p_organization_id`
-- (`seats::may_settle`): 'not_a_member' (removed since: not even a retry), 'no_seat' (a
-- member without a seat, and the settling not done before, `p_done`), or null: it may.
-- The membership's and the seat's rows are locked (share) until the caller's transaction
-- ends, so neither is removed or taken before the settling commits.
create or replace function public.tollgate_settle_refusal(p_organization_id uuid, p_user_id uuid, p_done boolean)
returns text
language plpgsql
set search_path = ''
as $fn$
declare
  v_member boolean;
  v_seated boolean;
begin
  perform 1 from public.organization_members m
   where m.organization_id = p_organization_id and m.user_id = p_user_id
     for share;
  v_member := found;
  perform 1 from public.seat_allocations a
   where a.organization_id = p_organization_id and a.user_id = p_user_id and a.status = 'active'
     for share;
  v_seated := found;
  if not v_member then
    return 'not_a_member';
  end if;
  if not (v_seated or coalesce(p_done, false)) then
    return 'no_seat';
  end if;
  return null;
end
$fn$;

-- ------------------------------------------------------------------ a release

-- Releases the subject's hold `p_usage_id`: as in 20261206009000, and a use the caller made
-- for an organization only as tollgate_settle_refusal allows ({"status": "refused",
-- "reason", "usage_id"} when not; a release done before is a retry, `done`).
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
  v_closed boolean;
  v_lot bigint;
  v_refold boolean := false;
  v_refusal text;
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
  -- A use the caller made for an organization: only while it acts for it, now.
  if s.user_id is not null and u.organization_id is not null then
    v_refusal := public.tollgate_settle_refusal(u.organization_id, s.user_id, u.status = 'released');
    if v_refusal is not null then
      return jsonb_build_object('status', 'refused', 'reason', v_refusal, 'usage_id', u.id);
    end if;
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
    -- Whether the lot is closed, read under a share lock of its terms: a fold closing it
    -- meanwhile is waited for (a closed lot holds nothing: its remaining is 0).
    v_lot := null;
    select t.id, t.closed into v_lot, v_closed from public.credit_lot_terms t
     where t.owner_id = coalesce(s.user_id, s.organization_id) and t.key = v_take ->> 'lot'
       for share;
    update public.credit_lot_balances b
       set used = b.used - v_units,
           remaining = b.remaining + case when v_closed then 0 else v_units end,
           expired = b.expired + case when v_closed then v_units else 0 end,
           released = b.released + v_units,
           updated_at = now()
     where b.lot_id = v_lot and b.used >= v_units
    returning b.remaining into v_left;
    if not found then
      raise exception using errcode = 'PT409', message = 'a lot no longer records the take of this hold',
        detail = v_take ->> 'lot', hint = 'lot_short';
    end if;
    v_lots := v_lots || jsonb_build_object(v_take ->> 'lot', v_left);
    v_refold := v_refold or v_closed;
  end loop;
  update public.usage_records r set status = 'released', settled_at = now() where r.id = u.id;
  return jsonb_build_object('status', 'released', 'usage_id', u.id, 'lots', v_lots, 'replayed', false,
                            'refold', v_refold);
end
$fn$;

-- ------------------------------------------------------------------ a capture

-- Captures the subject's hold `p_usage_id` at `p_now`: as in 20261206007000, finding a use
-- the caller made for an organization as tollgate_release does, and settling it only as
-- tollgate_settle_refusal allows ({"status": "refused", "reason", "usage_id"} when not; a
-- capture done before is a retry, `done`).
create or replace function public.tollgate_capture(p_subject jsonb, p_usage_id uuid, p_now timestamptz)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  u record;
  v_refusal text;
begin
  if p_now is null then
    raise exception using errcode = '22023', message = 'a capture needs the time it is asked at (p_now)';
  end if;
  s := public.tollgate_subject_ids(p_subject);
  select r.id, r.status, r.hold_until, r.organization_id into u from public.usage_records r
   where r.id = p_usage_id
     and (r.user_id = s.user_id or r.organization_id = s.organization_id or r.actor_id = s.user_id)
   for update;
  if not found then
    return null;
  end if;
  -- A use the caller made for an organization: only while it acts for it, now.
  if s.user_id is not null and u.organization_id is not null then
    v_refusal := public.tollgate_settle_refusal(u.organization_id, s.user_id, u.status = 'captured');
    if v_refusal is not null then
      return jsonb_build_object('status', 'refused', 'reason', v_refusal, 'usage_id', u.id);
    end if;
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
  if u.hold_until <= p_now then
    raise exception using errcode = 'PT409',
      message = format('the hold ended at %s: what it took is given back, not captured', u.hold_until),
      hint = 'hold_expired';
  end if;
  update public.usage_records r set status = 'captured', settled_at = now() where r.id = u.id;
  return jsonb_build_object('status', 'captured', 'usage_id', u.id, 'replayed', false);
end
$fn$;

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_settle_refusal(uuid, uuid, boolean)',
    'public.tollgate_release(jsonb, uuid)',
    'public.tollgate_capture(jsonb, uuid, timestamptz)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
