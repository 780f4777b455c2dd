-- tollgate: a released hold is seen by every worker, and a release into a closed lot is
-- folded again.
--
--   * credit_lots.released: the units released holds gave back to the lot, over its life.
--     A lot's row is part of the subject's state and so of its usage stamp
--     (tollgate_usage_stamp leaves out `remaining` and `used`, which every charge moves);
--     until now a release changed only those two, so a worker that kept the state from
--     before the release planned its next charge as if the hold still held its units:
--     overage billed, or a later lot spent first, while the user had the credits again.
--     The counter moves the stamp, so such a charge is answered `stale` and planned again.
--   * tollgate_release answers `refold: true` when a take went back to a lot closed
--     meanwhile (by a refund, a renewal's rollover or its end): the units go to `expired`
--     as before, and the worker folds the subject again at once, so the lot is what the
--     fold of its facts says (a refund that closed it counted the held units as spent).
-- Replaces the form of 20261205000300. Idempotent: safe to apply to an empty database and
-- again on top of itself.

alter table public.credit_lots add column if not exists released bigint not null default 0;

-- Releases the subject's hold `p_usage_id`. Answers {"status": "released", "usage_id",
-- "lots": {"<lot>": remaining after}, "replayed", "refold"} (a hold released before answers
-- `replayed`: true; `refold`: a take went back to a closed lot, to be folded again), or null
-- when the subject has no such usage. A charge that is not a hold, or a captured hold:
-- PT409 hint not_held. A counted use: {"status": "released", "usage_id", "used": the
-- counter after, "replayed"}; a windowed one: PT409 not_releasable.
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
  v_refold boolean := false;
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
           released = l.released + v_units,
           updated_at = now()
     where l.owner_id = coalesce(s.user_id, s.organization_id) and l.key = v_take ->> 'lot' and l.used >= v_units
    returning l.remaining, l.closed into v_left, v_closed;
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

