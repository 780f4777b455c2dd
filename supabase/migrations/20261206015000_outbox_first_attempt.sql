-- tollgate: a message's three days of retries count from its first attempt.
--
-- They counted from the message's creation, so a message that waited longer than three
-- days for its endpoint (disabled meanwhile, or behind an older message of the same
-- subject) was given up after one failed attempt once it was enabled again. The due
-- messages now carry when each was first attempted (`first_attempt_at`, null: never), from
-- which the worker counts. Otherwise 20261205004100's form.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_outbox_due(p_now timestamptz, p_limit integer default 50)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_out jsonb;
begin
  with due as (
    select m.id
      from public.outbox_messages m
      join public.webhook_endpoints e on e.id = m.endpoint_id and e.enabled
     where m.next_attempt_at is not null and m.next_attempt_at <= p_now
       and not exists (select 1 from public.outbox_messages o
                        where o.endpoint_id = m.endpoint_id and o.subject = m.subject and o.id < m.id
                          and o.delivered_at is null and o.given_up_at is null)
     order by m.id
     limit greatest(1, least(coalesce(p_limit, 50), 500))
     for update of m skip locked
  ), claimed as (
    update public.outbox_messages m set next_attempt_at = p_now + interval '1 minute'
      from due
     where m.id = due.id
    returning m.id, m.msg_id, m.endpoint_id, m.payload, m.created_at, m.attempts
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'msg_id', c.msg_id, 'endpoint_id', e.id, 'url', e.url,
                                               'secret', e.secret, 'payload', c.payload, 'created_at', c.created_at,
                                               'attempts', c.attempts, 'failing_since', e.failing_since,
                                               'first_attempt_at', (select min(a.attempted_at) from public.outbox_attempts a
                                                                     where a.message_id = c.id))
                            order by c.id), '[]'::jsonb)
    into v_out
    from claimed c
    join public.webhook_endpoints e on e.id = c.endpoint_id;
  return v_out;
end
$fn$;

revoke all on function public.tollgate_outbox_due(timestamptz, integer) from public, anon, authenticated;
grant execute on function public.tollgate_outbox_due(timestamptz, integer) to service_role;
