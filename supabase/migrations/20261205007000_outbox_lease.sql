-- tollgate: a message of the outbox is sent by one deliverer at a time.
--
-- Delivery runs after every request that queued something and on every scheduled run, so
-- two runs may overlap. Until now tollgate_outbox_due only read what was due: two
-- overlapping runs could both send the same message (the same webhook-id twice). From here
-- on it claims what it answers: each message it returns is leased to the caller for two
-- minutes (`next_attempt_at` moved to p_now + 2 minutes, far beyond one delivery's
-- timeout), read with `for update skip locked`, so an overlapping run neither waits for
-- nor answers it. tollgate_outbox_attempt then sets what follows (delivered, the retry
-- time, given up) as before; a deliverer that died mid-send leaves its message to be sent
-- again when the lease ends. A subject's messages still go to an endpoint in order: a
-- message is due only when every earlier one of its endpoint and subject is settled.
-- Idempotent: safe to apply to an empty database and again on top of itself.

drop function if exists public.tollgate_outbox_due(timestamptz, integer);

create or replace function public.tollgate_outbox_due(p_now timestamptz, p_limit integer default 50)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $fn$
declare
  v_ids bigint[];
  v_out jsonb;
begin
  select coalesce(array_agg(c.id order by c.id), '{}') into v_ids from (
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
  ) c;
  update public.outbox_messages set next_attempt_at = p_now + interval '2 minutes'
   where id = any(v_ids);
  select coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'msg_id', m.msg_id, 'endpoint_id', e.id, 'url', e.url,
                                               'secret', e.secret, 'payload', m.payload, 'created_at', m.created_at,
                                               'attempts', m.attempts, 'failing_since', e.failing_since)
                            order by m.id), '[]'::jsonb)
    into v_out
    from public.outbox_messages m
    join public.webhook_endpoints e on e.id = m.endpoint_id
   where m.id = any(v_ids);
  return v_out;
end
$fn$;

revoke all on function public.tollgate_outbox_due(timestamptz, integer) from public, anon, authenticated;
grant execute on function public.tollgate_outbox_due(timestamptz, integer) to service_role;
