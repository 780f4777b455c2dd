-- tollgate: a hold is captured before its end or not at all.
--
-- tollgate_capture (20261205000300) made a hold final whenever it was asked, so a
-- capture after `hold_until` kept the credits if it came before the scheduled run had
-- released the hold and failed after: the same late request had two outcomes. It now
-- takes the caller's `now` and refuses a capture at or after `hold_until` (PT409, hint
-- hold_expired); the scheduled run gives the hold back as before. The two-argument form
-- is dropped: no caller uses it any more.
-- Idempotent: safe to apply to an empty database and again on top of itself.

drop function if exists public.tollgate_capture(jsonb, uuid);

-- Captures the subject's hold `p_usage_id` at `p_now`: final from now on. Answers
-- {"status": "captured", "usage_id", "replayed"}, or null when the subject has no such
-- usage. A released hold: PT409 hint released; a hold at or past its end: PT409
-- hold_expired; a charge that never was a hold: PT409 not_held.
create or replace function public.tollgate_capture(p_subject jsonb, p_usage_id uuid, p_now timestamptz)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  u record;
begin
  if p_now is null then
    raise exception using errcode = '22023', message = 'a capture needs the time it is asked at (p_now)';
  end if;
  s := public.tollgate_subject_ids(p_subject);
  select r.id, r.status, r.hold_until into u from public.usage_records r
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
  if u.hold_until <= p_now then
    raise exception using errcode = 'PT409',
      message = format('the hold ended at %s: what it took is given back, not captured', u.hold_until),
      hint = 'hold_expired';
  end if;
  update public.usage_records r set status = 'captured', settled_at = now() where r.id = u.id;
  return jsonb_build_object('status', 'captured', 'usage_id', u.id, 'replayed', false);
end
$fn$;

revoke all on function public.tollgate_capture(jsonb, uuid, timestamptz) from public, anon, authenticated;
grant execute on function public.tollgate_capture(jsonb, uuid, timestamptz) to service_role;
