-- tollgate: an endpoint enabled again gives its messages their retries again, and enabling
-- an enabled endpoint changes nothing.
--
-- A message's three days of retries counted from its first attempt ever (20261206015000),
-- so one that had failed before its endpoint was disabled (a 410, or three days of
-- failures) was given up at its first failure after the operator enabled the endpoint
-- again. An endpoint now records when it was last enabled again (`enabled_at`), and the
-- due messages' `first_attempt_at` counts only attempts since. Enabling an endpoint that is
-- enabled made every open message due at once, those a run was sending included (sent
-- twice) and those waiting for their backoff, and forgot when it began failing: it now
-- does nothing. tollgate_set_endpoint (20261205002100's form otherwise) and
-- tollgate_outbox_due (20261206015000's form otherwise) are redefined.
-- Idempotent: safe to apply to an empty database and again on top of itself.

alter table public.webhook_endpoints add column if not exists enabled_at timestamptz;

create or replace function public.tollgate_set_endpoint(p_id uuid, p_enabled boolean, p_at timestamptz)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  e public.webhook_endpoints;
  v_again boolean;
begin
  select x.* into e from public.webhook_endpoints x where x.id = p_id for update;
  if not found then
    return null;
  end if;
  v_again := p_enabled and not e.enabled;
  update public.webhook_endpoints x set enabled = p_enabled,
         disabled_at = case when v_again then null when p_enabled then x.disabled_at else coalesce(x.disabled_at, p_at) end,
         failing_since = case when v_again then null else x.failing_since end,
         enabled_at = case when v_again then p_at else x.enabled_at end,
         updated_at = now()
   where x.id = p_id returning * into e;
  if v_again then
    update public.outbox_messages m set next_attempt_at = p_at
     where m.endpoint_id = p_id and m.delivered_at is null and m.given_up_at is null;
  end if;
  return jsonb_build_object('id', e.id, 'url', e.url, 'events', to_jsonb(e.events), 'enabled', e.enabled,
                            'failing_since', e.failing_since, 'disabled_at', e.disabled_at);
end
$fn$;

revoke all on function public.tollgate_set_endpoint(uuid, boolean, timestamptz) from public, anon, authenticated;
grant execute on function public.tollgate_set_endpoint(uuid, boolean, timestamptz) to service_role;

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
                                                                     where a.message_id = c.id
                                                                       and a.attempted_at >= coalesce(e.enabled_at, '-infinity'::timestamptz)))
                            order by c.id), '[]'::jsonb)
    into v_out
    from claimed c
    join public.webhook_endpoints e on e.id = c.endpoint_id;
  return v_out;
end
$fn$;

revoke all on function public.tollgate_outbox_due(timestamptz, integer) from public, anon, authenticated;
grant execute on function public.tollgate_outbox_due(timestamptz, integer) to service_role;
