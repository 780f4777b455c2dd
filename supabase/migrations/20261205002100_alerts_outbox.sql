-- tollgate: alerts and the outbox of signed outbound webhooks (issue 16).
--
--   * alerts: one row per crossing of a catalog's alert rule by a subject (a limit's or a
--     pool's threshold, a subscription event), open until resolved. The core derives the
--     checks (tollgate::alerts: rule, episode, level, body); tollgate_apply_alerts applies
--     them under one lock per subject: a crossed level opens an alert when none of the rule
--     is open (and, for an episode such as a limit's window, none was ever opened for it),
--     resolves an open one of an earlier episode; a level no longer crossed resolves it.
--     Readable by the user (their own and their organizations', RLS).
--   * webhook_endpoints: the app's endpoints (url, event types, the `whsec_` signing
--     secret, returned once at creation), enabled or disabled. Service role only.
--   * outbox_messages: one row per alert transition and endpoint subscribed to its type,
--     written in the transaction that made the transition; the same `msg_id` (the
--     webhook-id) on every attempt. outbox_attempts: every attempt, with its answer.
--     Service role only.
--   * tollgate_write_subject_extras (20261205002000) also applies a fold's alert checks.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.alerts (
  id bigserial primary key,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  rule text not null,
  episode text not null default '',
  kind text not null default '',
  body jsonb not null default '{}'::jsonb,
  crossed_at timestamptz not null,
  resolved_at timestamptz,
  created_at timestamptz not null default now()
);
alter table public.alerts drop constraint if exists alerts_subject_check;
alter table public.alerts add constraint alerts_subject_check check (num_nonnulls(user_id, organization_id) = 1);
create unique index if not exists alerts_open_idx
  on public.alerts ((coalesce(user_id, organization_id)), rule) where resolved_at is null;
create unique index if not exists alerts_episode_idx
  on public.alerts ((coalesce(user_id, organization_id)), rule, episode) where episode <> '';
create index if not exists alerts_user_idx on public.alerts(user_id) where user_id is not null;
create index if not exists alerts_organization_idx on public.alerts(organization_id) where organization_id is not null;
create index if not exists alerts_windowed_open_idx on public.alerts(((body ->> 'ends_at'))) where resolved_at is null;

create table if not exists public.webhook_endpoints (
  id uuid primary key default gen_random_uuid(),
  url text not null,
  events text[] not null default '{}',
  secret text not null,
  enabled boolean not null default true,
  failing_since timestamptz,
  disabled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists public.outbox_messages (
  id bigserial primary key,
  endpoint_id uuid not null references public.webhook_endpoints(id) on delete cascade,
  alert_id bigint references public.alerts(id) on delete cascade,
  msg_id text not null,
  event_type text not null,
  subject text not null,
  payload jsonb not null,
  created_at timestamptz not null,
  next_attempt_at timestamptz,
  attempts integer not null default 0,
  delivered_at timestamptz,
  given_up_at timestamptz,
  unique (endpoint_id, msg_id)
);
create index if not exists outbox_messages_due_idx on public.outbox_messages(next_attempt_at, id)
  where next_attempt_at is not null;
create index if not exists outbox_messages_open_idx on public.outbox_messages(endpoint_id, subject, id)
  where delivered_at is null and given_up_at is null;

create table if not exists public.outbox_attempts (
  id bigserial primary key,
  message_id bigint not null references public.outbox_messages(id) on delete cascade,
  attempted_at timestamptz not null,
  status integer,
  error text,
  duration_ms integer
);
create index if not exists outbox_attempts_message_idx on public.outbox_attempts(message_id);

do $rls$
declare
  t text;
begin
  foreach t in array array['alerts', 'webhook_endpoints', 'outbox_messages', 'outbox_attempts'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from public, anon, authenticated', t);
    execute format('grant select, insert, update, delete on table public.%I to service_role', t);
  end loop;
end
$rls$;
grant select on table public.alerts to authenticated;
drop policy if exists tollgate_read_own on public.alerts;
create policy tollgate_read_own on public.alerts for select to authenticated using (
  user_id = (select auth.uid())
  or (organization_id is not null and public.tollgate_is_member(organization_id)));
revoke all on sequence public.alerts_id_seq, public.outbox_messages_id_seq, public.outbox_attempts_id_seq
  from public, anon, authenticated;
grant usage, select on sequence public.alerts_id_seq, public.outbox_messages_id_seq, public.outbox_attempts_id_seq
  to service_role;

-- Queues one alert transition for every endpoint subscribed to its type (an endpoint's
-- `events` holds the type or `*`). Disabled endpoints get it too: re-enabled, they
-- receive everything in order. Returns how many messages were queued.
create or replace function public.tollgate_queue_alert(p_alert public.alerts, p_type text, p_at timestamptz)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
  v_status text := case when p_type = 'alert.resolved' then 'resolved' else 'crossed' end;
  v_subject jsonb := case when p_alert.user_id is not null then jsonb_build_object('user_id', p_alert.user_id)
                          else jsonb_build_object('organization_id', p_alert.organization_id) end;
  v_n integer;
begin
  insert into public.outbox_messages (endpoint_id, alert_id, msg_id, event_type, subject, payload, created_at, next_attempt_at)
  select e.id, p_alert.id, 'msg_alert_' || p_alert.id || '_' || v_status, p_type,
         coalesce(p_alert.user_id, p_alert.organization_id)::text,
         jsonb_build_object('type', p_type,
                            'timestamp', to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                            'data', p_alert.body || jsonb_build_object(
                              'alert_id', p_alert.id, 'status', v_status, 'rule', p_alert.rule,
                              'subject', v_subject, 'crossed_at', p_alert.crossed_at,
                              'resolved_at', p_alert.resolved_at)),
         p_at, p_at
    from public.webhook_endpoints e
   where p_type = any(e.events) or '*' = any(e.events)
  on conflict (endpoint_id, msg_id) do nothing;
  get diagnostics v_n = row_count;
  return v_n;
end
$fn$;

-- Applies the core's alert checks for one subject at p_at (see the header). Returns
-- {"crossed": n, "resolved": n, "queued": n}.
--   p_checks [{"rule", "episode", "level": {"known"} | {"counter", "window_start", "at_least"}
--              | {"pool", "below"}, "alert": {...}}]
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
    -- to an earlier episode (a window that ended).
    for a in update public.alerts x set resolved_at = p_at
              where coalesce(x.user_id, x.organization_id) = v_owner and x.rule = c ->> 'rule'
                and x.resolved_at is null and (not v_crossed or x.episode <> v_episode)
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

-- tollgate_apply_alerts for a subject given as {"user_id"} | {"organization_id"} (after a
-- counted use, a charge, the scheduled run).
create or replace function public.tollgate_record_alerts(p_subject jsonb, p_checks jsonb, p_at timestamptz)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
begin
  s := public.tollgate_subject_ids(p_subject);
  if s.user_id is not null and not exists (select 1 from auth.users u where u.id = s.user_id) then
    return jsonb_build_object('crossed', 0, 'resolved', 0, 'queued', 0);
  end if;
  if s.organization_id is not null and not exists (select 1 from public.organizations o where o.id = s.organization_id) then
    return jsonb_build_object('crossed', 0, 'resolved', 0, 'queued', 0);
  end if;
  return public.tollgate_apply_alerts(s.user_id, s.organization_id, p_checks, p_at);
end
$fn$;

-- What a fold writes besides its tables (20261205002000): failed payments, and the
-- alert checks of the fold (`alerts`, as of `alerts_at`).
create or replace function public.tollgate_write_subject_extras(p_user uuid, p_org uuid, p_sub jsonb)
returns void
language plpgsql
set search_path = ''
as $fn$
declare
  v_item jsonb;
begin
  for v_item in select * from jsonb_array_elements(coalesce(p_sub -> 'failed_payments', '[]'::jsonb)) loop
    insert into public.failed_payments as fp (
      provider, invoice_id, subscription_id, user_id, organization_id, amount_due, currency, attempt_count,
      next_retry_at, first_failed_at, last_failed_at, grace_until, resolved_at, resolution, resolved_by)
    values (
      v_item ->> 'provider', v_item ->> 'invoice_id', v_item ->> 'subscription_id', p_user, p_org,
      coalesce((v_item ->> 'amount_due')::bigint, 0), coalesce(v_item ->> 'currency', ''),
      coalesce((v_item ->> 'attempt_count')::integer, 0), (v_item ->> 'next_retry_at')::timestamptz,
      (v_item ->> 'first_failed_at')::timestamptz, (v_item ->> 'last_failed_at')::timestamptz,
      (v_item ->> 'grace_until')::timestamptz, (v_item ->> 'resolved_at')::timestamptz,
      v_item ->> 'resolution', v_item ->> 'resolved_by')
    on conflict (provider, invoice_id) do update set
      subscription_id = excluded.subscription_id, user_id = excluded.user_id,
      organization_id = excluded.organization_id, amount_due = excluded.amount_due,
      currency = excluded.currency, attempt_count = excluded.attempt_count,
      next_retry_at = excluded.next_retry_at, first_failed_at = excluded.first_failed_at,
      last_failed_at = excluded.last_failed_at, grace_until = excluded.grace_until,
      resolved_at = excluded.resolved_at, resolution = excluded.resolution,
      resolved_by = excluded.resolved_by, updated_at = now()
    where (fp.subscription_id, fp.user_id, fp.organization_id, fp.amount_due, fp.currency, fp.attempt_count,
           fp.next_retry_at, fp.first_failed_at, fp.last_failed_at, fp.grace_until, fp.resolved_at,
           fp.resolution, fp.resolved_by)
          is distinct from
          (excluded.subscription_id, excluded.user_id, excluded.organization_id, excluded.amount_due,
           excluded.currency, excluded.attempt_count, excluded.next_retry_at, excluded.first_failed_at,
           excluded.last_failed_at, excluded.grace_until, excluded.resolved_at, excluded.resolution,
           excluded.resolved_by);
  end loop;
  if jsonb_array_length(coalesce(p_sub -> 'alerts', '[]'::jsonb)) > 0 then
    perform public.tollgate_apply_alerts(p_user, p_org, p_sub -> 'alerts',
                                         coalesce((p_sub ->> 'alerts_at')::timestamptz, now()));
  end if;
end
$fn$;

-- Open alerts of windowed rules, the earliest window end first (the scheduled run asks
-- the core which ended). Returns [{"subject", "rule", "episode", "alert"}].
create or replace function public.tollgate_open_windowed_alerts(p_now timestamptz, p_limit integer default 500)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(x.j order by x.ends_at, x.id), '[]'::jsonb) from (
    select a.id, a.body ->> 'ends_at' as ends_at,
           jsonb_build_object(
             'subject', case when a.user_id is not null then jsonb_build_object('user_id', a.user_id)
                             else jsonb_build_object('organization_id', a.organization_id) end,
             'rule', a.rule, 'episode', a.episode, 'alert', a.body) as j
      from public.alerts a
     where a.resolved_at is null and a.body ->> 'ends_at' is not null
       and a.body ->> 'ends_at' <= to_char(p_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
     order by a.body ->> 'ends_at', a.id
     limit greatest(1, least(coalesce(p_limit, 500), 1000))
  ) x
$fn$;

-- Messages due at p_now on enabled endpoints, oldest first, at most one per endpoint and
-- subject (a subject's messages go in order: the next waits for the one before).
-- Returns [{"id", "msg_id", "endpoint_id", "url", "secret", "payload", "created_at",
--           "attempts", "failing_since"}].
create or replace function public.tollgate_outbox_due(p_now timestamptz, p_limit integer default 50)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(x.j order by x.id), '[]'::jsonb) from (
    select m.id, jsonb_build_object('id', m.id, 'msg_id', m.msg_id, 'endpoint_id', e.id, 'url', e.url,
                                    'secret', e.secret, 'payload', m.payload, 'created_at', m.created_at,
                                    'attempts', m.attempts, 'failing_since', e.failing_since) as j
      from public.outbox_messages m
      join public.webhook_endpoints e on e.id = m.endpoint_id and e.enabled
     where m.next_attempt_at is not null and m.next_attempt_at <= p_now
       and not exists (select 1 from public.outbox_messages o
                        where o.endpoint_id = m.endpoint_id and o.subject = m.subject and o.id < m.id
                          and o.delivered_at is null and o.given_up_at is null)
     order by m.id
     limit greatest(1, least(coalesce(p_limit, 50), 500))
  ) x
$fn$;

-- Records one attempt of a message and what follows, as the core decided it.
--   p_attempt {"status" (HTTP status or null), "error", "duration_ms", "at", "delivered",
--              "retry_at", "give_up", "disable_endpoint"}
create or replace function public.tollgate_outbox_attempt(p_message bigint, p_attempt jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_at timestamptz := (p_attempt ->> 'at')::timestamptz;
  v_delivered boolean := coalesce((p_attempt ->> 'delivered')::boolean, false);
  m public.outbox_messages;
begin
  select * into m from public.outbox_messages where id = p_message for update;
  if not found or m.delivered_at is not null or m.given_up_at is not null then
    return jsonb_build_object('status', 'settled');
  end if;
  insert into public.outbox_attempts (message_id, attempted_at, status, error, duration_ms)
  values (p_message, v_at, (p_attempt ->> 'status')::integer, p_attempt ->> 'error',
          (p_attempt ->> 'duration_ms')::integer);
  update public.outbox_messages set attempts = attempts + 1,
         delivered_at = case when v_delivered then v_at end,
         given_up_at = case when not v_delivered and coalesce((p_attempt ->> 'give_up')::boolean, false) then v_at end,
         next_attempt_at = case when v_delivered then null else (p_attempt ->> 'retry_at')::timestamptz end
   where id = p_message;
  update public.webhook_endpoints e set
         failing_since = case when v_delivered then null else coalesce(e.failing_since, v_at) end,
         enabled = e.enabled and not coalesce((p_attempt ->> 'disable_endpoint')::boolean, false),
         disabled_at = case when coalesce((p_attempt ->> 'disable_endpoint')::boolean, false) then v_at else e.disabled_at end,
         updated_at = now()
   where e.id = m.endpoint_id;
  return jsonb_build_object('status', case when v_delivered then 'delivered'
                                           when coalesce((p_attempt ->> 'give_up')::boolean, false) then 'given_up'
                                           else 'retrying' end);
end
$fn$;

-- A new endpoint with a fresh signing secret (`whsec_` + base64 of 32 random bytes, from
-- gen_random_uuid's strong random source), answered once: listings never show it.
create or replace function public.tollgate_create_endpoint(p_url text, p_events text[])
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  e public.webhook_endpoints;
  v_key bytea := decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex');
begin
  insert into public.webhook_endpoints (url, events, secret)
  values (p_url, p_events, 'whsec_' || encode(v_key, 'base64'))
  returning * into e;
  return jsonb_build_object('id', e.id, 'url', e.url, 'events', to_jsonb(e.events), 'secret', e.secret,
                            'enabled', e.enabled, 'created_at', e.created_at);
end
$fn$;

-- The endpoints, without their secrets, with what waits for each.
create or replace function public.tollgate_endpoints()
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', e.id, 'url', e.url, 'events', to_jsonb(e.events), 'enabled', e.enabled,
           'failing_since', e.failing_since, 'disabled_at', e.disabled_at, 'created_at', e.created_at,
           'pending', (select count(*) from public.outbox_messages m
                        where m.endpoint_id = e.id and m.delivered_at is null and m.given_up_at is null),
           'given_up', (select count(*) from public.outbox_messages m where m.endpoint_id = e.id and m.given_up_at is not null))
         order by e.created_at, e.id), '[]'::jsonb)
    from public.webhook_endpoints e
$fn$;

-- Enables or disables an endpoint. Enabled again, it starts afresh: its failure streak
-- is forgotten and what waits for it is due now. Returns the endpoint, or null.
create or replace function public.tollgate_set_endpoint(p_id uuid, p_enabled boolean, p_at timestamptz)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  e public.webhook_endpoints;
begin
  update public.webhook_endpoints x set enabled = p_enabled,
         disabled_at = case when p_enabled then null else coalesce(x.disabled_at, p_at) end,
         failing_since = case when p_enabled then null else x.failing_since end,
         updated_at = now()
   where x.id = p_id returning * into e;
  if not found then
    return null;
  end if;
  if p_enabled then
    update public.outbox_messages m set next_attempt_at = p_at
     where m.endpoint_id = p_id and m.delivered_at is null and m.given_up_at is null;
  end if;
  return jsonb_build_object('id', e.id, 'url', e.url, 'events', to_jsonb(e.events), 'enabled', e.enabled,
                            'failing_since', e.failing_since, 'disabled_at', e.disabled_at);
end
$fn$;

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_queue_alert(public.alerts, text, timestamptz)',
    'public.tollgate_apply_alerts(uuid, uuid, jsonb, timestamptz)',
    'public.tollgate_record_alerts(jsonb, jsonb, timestamptz)',
    'public.tollgate_write_subject_extras(uuid, uuid, jsonb)',
    'public.tollgate_open_windowed_alerts(timestamptz, integer)',
    'public.tollgate_outbox_due(timestamptz, integer)',
    'public.tollgate_outbox_attempt(bigint, jsonb)',
    'public.tollgate_create_endpoint(text, text[])',
    'public.tollgate_endpoints()',
    'public.tollgate_set_endpoint(uuid, boolean, timestamptz)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
