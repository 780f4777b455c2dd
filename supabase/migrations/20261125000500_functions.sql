-- tollgate: the atomic operations the worker calls through PostgREST
-- (`POST /rest/v1/rpc/<name>` with named JSON arguments; one transaction per call; any
-- error rolls the whole call back).
--
--   tollgate_subject_state(p_subject)            everything the core needs about a subject
--   tollgate_apply_event(...)                    record one provider event AND write its
--                                                effects, in one transaction, idempotently
--   tollgate_keep_event(...)                     keep an event that cannot be attributed yet
--   tollgate_pending_events(...)                 kept events waiting for a customer/subscription
--   tollgate_consume(...)                        charge a usage request, once per request id
--   tollgate_admin_grant(...)                    manual_grant / promotion grants (+ credits)
--   tollgate_allocate_seat / tollgate_release_seat
--   tollgate_expired_grants(p_now)               grants whose window has closed (housekeeping)
--
-- No business rule lives here: the core (Rust) decides what an event means, what a charge
-- takes from which pool and whether a seat may be given. These functions make the
-- decided writes atomic, idempotent and safe under concurrency.
--
-- A subject is `{"user_id": "<uuid>"}` or `{"organization_id": "<uuid>"}`.
-- Errors use PostgREST's status mapping: PT409 -> 409 (version conflict / key reuse),
-- 22023 -> 400 (bad argument).
-- Only service_role may execute them.
-- Idempotent: safe to apply to an empty database and again on top of itself.

-- ------------------------------------------------------------------ helpers

create or replace function public.tollgate_subject_ids(p_subject jsonb, out user_id uuid, out organization_id uuid)
language plpgsql immutable
set search_path = ''
as $fn$
begin
  if p_subject is null or jsonb_typeof(p_subject) <> 'object' then
    raise exception using errcode = '22023', message = 'subject must be an object {"user_id": ...} or {"organization_id": ...}';
  end if;
  user_id := nullif(p_subject ->> 'user_id', '')::uuid;
  organization_id := nullif(p_subject ->> 'organization_id', '')::uuid;
  if num_nonnulls(user_id, organization_id) <> 1 then
    raise exception using errcode = '22023', message = 'subject must name exactly one of user_id and organization_id';
  end if;
end
$fn$;

-- Applies one balance change under a row lock and writes its ledger entry, unless an
-- entry with the same source key exists (then nothing changes). Operations, all decided
-- by the core: {"pool", "source_key", "reason", and one of
--   "delta": n                 add n (may be negative; the CHECK refuses a negative balance),
--   "set": n                   set the balance to n,
--   "cap": c, "delta": n       first cap the balance at c, then add n (capped rollover),
--   "floor_zero": true         with a negative delta: stop at zero instead of failing}.
-- Returns true when the entry was new.
create or replace function public.tollgate_ledger_apply(p_user uuid, p_org uuid, p_entry jsonb)
returns boolean
language plpgsql
set search_path = ''
as $fn$
declare
  v_pool text := p_entry ->> 'pool';
  v_key text := p_entry ->> 'source_key';
  v_reason text := coalesce(p_entry ->> 'reason', '');
  v_current bigint;
  v_new bigint;
  v_id bigint;
begin
  if v_pool is null or v_key is null then
    raise exception using errcode = '22023', message = 'a ledger entry needs pool and source_key';
  end if;
  -- Claim the source key first: a replay stops here.
  insert into public.credit_ledger (user_id, organization_id, pool, delta, balance_after, source_key, reason)
  values (p_user, p_org, v_pool, 0, 0, v_key, v_reason)
  on conflict (source_key) do nothing
  returning id into v_id;
  if v_id is null then
    return false;
  end if;

  insert into public.credit_balances (user_id, organization_id, pool, available)
  values (p_user, p_org, v_pool, 0)
  on conflict (user_id, organization_id, pool) do nothing;
  select b.available into v_current from public.credit_balances b
   where b.user_id is not distinct from p_user and b.organization_id is not distinct from p_org
     and b.pool = v_pool
   for update;

  if p_entry ? 'set' then
    v_new := (p_entry ->> 'set')::bigint;
  else
    v_new := v_current;
    if p_entry ? 'cap' then
      v_new := least(v_new, (p_entry ->> 'cap')::bigint);
    end if;
    v_new := v_new + coalesce((p_entry ->> 'delta')::bigint, 0);
    if coalesce((p_entry ->> 'floor_zero')::boolean, false) then
      v_new := greatest(v_new, 0);
    end if;
  end if;

  if v_new <> v_current then
    update public.credit_balances b set available = v_new, updated_at = now()
     where b.user_id is not distinct from p_user and b.organization_id is not distinct from p_org
       and b.pool = v_pool;
  end if;
  update public.credit_ledger set delta = v_new - v_current, balance_after = v_new where id = v_id;
  return true;
end
$fn$;

-- Upserts one grant row for a subject (by grant_key).
create or replace function public.tollgate_grant_upsert(p_user uuid, p_org uuid, p_grant jsonb)
returns void
language plpgsql
set search_path = ''
as $fn$
begin
  insert into public.cloud_entitlements as ce (
    user_id, organization_id, grant_key, cloud_id, tier, source, status,
    valid_from, valid_to, past_due_since, offer_key, source_ref, updated_at)
  values (
    p_user, p_org,
    p_grant ->> 'grant_key', p_grant ->> 'cloud_id', p_grant ->> 'tier',
    p_grant ->> 'source', p_grant ->> 'status',
    coalesce((p_grant ->> 'valid_from')::timestamptz, now()),
    (p_grant ->> 'valid_to')::timestamptz,
    (p_grant ->> 'past_due_since')::timestamptz,
    p_grant ->> 'offer_key', p_grant ->> 'source_ref', now())
  on conflict (user_id, organization_id, grant_key) do update set
    cloud_id = excluded.cloud_id,
    tier = excluded.tier,
    source = excluded.source,
    status = excluded.status,
    valid_from = excluded.valid_from,
    valid_to = excluded.valid_to,
    past_due_since = excluded.past_due_since,
    offer_key = excluded.offer_key,
    source_ref = excluded.source_ref,
    updated_at = now()
  where (ce.cloud_id, ce.tier, ce.source, ce.status, ce.valid_from, ce.valid_to,
         ce.past_due_since, ce.offer_key, ce.source_ref)
        is distinct from
        (excluded.cloud_id, excluded.tier, excluded.source, excluded.status, excluded.valid_from,
         excluded.valid_to, excluded.past_due_since, excluded.offer_key, excluded.source_ref);
end
$fn$;

-- ------------------------------------------------------------------ reads

create or replace function public.tollgate_subject_state(p_subject jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
  v_out jsonb;
begin
  s := public.tollgate_subject_ids(p_subject);
  select jsonb_build_object(
    'subject', p_subject,
    'version', coalesce((select b.version from public.billing_subjects b
                          where b.user_id is not distinct from s.user_id
                            and b.organization_id is not distinct from s.organization_id), 0),
    'state', coalesce((select b.state from public.billing_subjects b
                        where b.user_id is not distinct from s.user_id
                          and b.organization_id is not distinct from s.organization_id), '{}'::jsonb),
    'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key) from public.cloud_entitlements g
                         where g.user_id is not distinct from s.user_id
                           and g.organization_id is not distinct from s.organization_id), '[]'::jsonb),
    'balances', coalesce((select jsonb_object_agg(c.pool, c.available) from public.credit_balances c
                           where c.user_id is not distinct from s.user_id
                             and c.organization_id is not distinct from s.organization_id), '{}'::jsonb),
    'subscriptions', coalesce((select jsonb_agg(to_jsonb(x) order by x.subscription_id)
                                from public.billing_subscriptions x
                               where x.user_id is not distinct from s.user_id
                                 and x.organization_id is not distinct from s.organization_id), '[]'::jsonb),
    'preferences', (select to_jsonb(p) from public.usage_preferences p
                     where p.user_id is not distinct from s.user_id
                       and p.organization_id is not distinct from s.organization_id),
    'organization', (select to_jsonb(o) from public.organizations o where o.id = s.organization_id),
    'seats', case when s.organization_id is null then null else
               (select count(*) from public.seat_allocations a
                 where a.organization_id = s.organization_id and a.status = 'active') end,
    -- For a user: each organization it belongs to, whether it holds a seat there, and
    -- that organization's grants (the core decides what they give the user).
    'memberships', case when s.user_id is null then '[]'::jsonb else coalesce((
      select jsonb_agg(jsonb_build_object(
               'organization_id', m.organization_id,
               'role', m.role,
               'seat', exists (select 1 from public.seat_allocations a
                                where a.organization_id = m.organization_id
                                  and a.user_id = m.user_id and a.status = 'active'),
               'seat_count', o.seat_count,
               'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key)
                                     from public.cloud_entitlements g
                                    where g.organization_id = m.organization_id), '[]'::jsonb),
               'balances', coalesce((select jsonb_object_agg(c.pool, c.available)
                                       from public.credit_balances c
                                      where c.organization_id = m.organization_id), '{}'::jsonb))
             order by m.organization_id)
        from public.organization_members m
        join public.organizations o on o.id = m.organization_id
       where m.user_id = s.user_id), '[]'::jsonb) end,
    'customers', coalesce((select jsonb_agg(jsonb_build_object('provider', c.provider, 'customer_id', c.customer_id)
                                            order by c.provider, c.customer_id)
                            from public.billing_customers c
                           where c.user_id is not distinct from s.user_id
                             and c.organization_id is not distinct from s.organization_id), '[]'::jsonb)
  ) into v_out;
  return v_out;
end
$fn$;

-- Who a provider customer (or subscription) belongs to, if known.
create or replace function public.tollgate_lookup_subject(p_provider text, p_customer_id text default null,
                                                          p_subscription_id text default null)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(
    (select case when c.user_id is not null then jsonb_build_object('user_id', c.user_id)
                 else jsonb_build_object('organization_id', c.organization_id) end
       from public.billing_customers c
      where c.provider = p_provider and c.customer_id = p_customer_id),
    (select case when x.user_id is not null then jsonb_build_object('user_id', x.user_id)
                 else jsonb_build_object('organization_id', x.organization_id) end
       from public.billing_subscriptions x
      where x.provider = p_provider and x.subscription_id = p_subscription_id))
$fn$;

-- ------------------------------------------------------------------ webhook path

-- Records one provider event and writes its effects for one subject, in one transaction.
--   p_event            {"provider", "event_id", "event_type", "object_id"?, "object_version"?, "payload"?}
--   p_subject          {"user_id"} | {"organization_id"}
--   p_expected_version the subject version the effects were computed from
--   p_state            the core's new state for the subject (stored as is)
--   p_effects          {"grants": [...], "subscriptions": [...], "customers": [...],
--                       "ledger": [...], "seat_count": n, "resolved_pending": [event ids]}
-- Returns {"status": "applied", "version": n} or {"status": "duplicate"} (nothing written).
-- Concurrency: the event row is claimed first (a concurrent duplicate waits on the unique
-- index, then sees the conflict); the subject row is then locked and its version compared:
-- a mismatch raises PT409 and rolls everything back, and the caller recomputes and retries.
create or replace function public.tollgate_apply_event(p_event jsonb, p_subject jsonb,
                                                       p_expected_version bigint,
                                                       p_state jsonb, p_effects jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_event_row bigint;
  v_version bigint;
  v_item jsonb;
  v_new_entries integer := 0;
begin
  s := public.tollgate_subject_ids(p_subject);
  if coalesce(p_event ->> 'provider', '') = '' or coalesce(p_event ->> 'event_id', '') = ''
     or coalesce(p_event ->> 'event_type', '') = '' then
    raise exception using errcode = '22023', message = 'event needs provider, event_id and event_type';
  end if;

  if s.organization_id is not null then
    insert into public.organizations (id) values (s.organization_id) on conflict do nothing;
  end if;

  insert into public.webhook_events (provider, event_id, event_type, object_id, object_version,
                                     user_id, organization_id, payload)
  values (p_event ->> 'provider', p_event ->> 'event_id', p_event ->> 'event_type',
          p_event ->> 'object_id', (p_event ->> 'object_version')::bigint,
          s.user_id, s.organization_id, p_event -> 'payload')
  on conflict do nothing
  returning id into v_event_row;
  if v_event_row is null then
    return jsonb_build_object('status', 'duplicate');
  end if;

  insert into public.billing_subjects (user_id, organization_id) values (s.user_id, s.organization_id)
  on conflict (user_id, organization_id) do nothing;
  select b.version into v_version from public.billing_subjects b
   where b.user_id is not distinct from s.user_id and b.organization_id is not distinct from s.organization_id
   for update;
  if v_version <> coalesce(p_expected_version, 0) then
    raise exception using errcode = 'PT409', message = 'subject version conflict',
      detail = jsonb_build_object('expected', p_expected_version, 'actual', v_version)::text,
      hint = 'reload the subject state, recompute and retry';
  end if;

  for v_item in select * from jsonb_array_elements(coalesce(p_effects -> 'customers', '[]'::jsonb)) loop
    insert into public.billing_customers (provider, customer_id, user_id, organization_id)
    values (coalesce(v_item ->> 'provider', p_event ->> 'provider'), v_item ->> 'customer_id',
            s.user_id, s.organization_id)
    on conflict (provider, customer_id) do nothing;
  end loop;

  for v_item in select * from jsonb_array_elements(coalesce(p_effects -> 'subscriptions', '[]'::jsonb)) loop
    insert into public.billing_subscriptions as bs (
      provider, subscription_id, user_id, organization_id, customer_id, offer_key, status, quantity,
      current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, object_version)
    values (
      coalesce(v_item ->> 'provider', p_event ->> 'provider'), v_item ->> 'subscription_id',
      s.user_id, s.organization_id, v_item ->> 'customer_id', v_item ->> 'offer_key',
      v_item ->> 'status', coalesce((v_item ->> 'quantity')::integer, 1),
      (v_item ->> 'current_period_start')::timestamptz, (v_item ->> 'current_period_end')::timestamptz,
      coalesce((v_item ->> 'cancel_at_period_end')::boolean, false),
      (v_item ->> 'canceled_at')::timestamptz, (v_item ->> 'ended_at')::timestamptz,
      coalesce((v_item ->> 'object_version')::bigint, 0))
    on conflict (provider, subscription_id) do update set
      customer_id = coalesce(excluded.customer_id, bs.customer_id),
      offer_key = coalesce(excluded.offer_key, bs.offer_key),
      status = excluded.status,
      quantity = excluded.quantity,
      current_period_start = excluded.current_period_start,
      current_period_end = excluded.current_period_end,
      cancel_at_period_end = excluded.cancel_at_period_end,
      canceled_at = excluded.canceled_at,
      ended_at = excluded.ended_at,
      object_version = excluded.object_version,
      updated_at = now()
    -- An older snapshot of the subscription never overwrites a newer one.
    where bs.object_version <= excluded.object_version;
  end loop;

  for v_item in select * from jsonb_array_elements(coalesce(p_effects -> 'grants', '[]'::jsonb)) loop
    perform public.tollgate_grant_upsert(s.user_id, s.organization_id, v_item);
  end loop;

  for v_item in select * from jsonb_array_elements(coalesce(p_effects -> 'ledger', '[]'::jsonb)) loop
    if public.tollgate_ledger_apply(s.user_id, s.organization_id, v_item) then
      v_new_entries := v_new_entries + 1;
    end if;
  end loop;

  if s.organization_id is not null and p_effects ? 'seat_count' then
    update public.organizations set seat_count = (p_effects ->> 'seat_count')::integer, updated_at = now()
     where id = s.organization_id;
  end if;

  update public.pending_webhook_events pe set resolved_at = now()
   where pe.provider = p_event ->> 'provider'
     and pe.resolved_at is null
     and (pe.event_id = p_event ->> 'event_id'
          or pe.event_id in (select jsonb_array_elements_text(coalesce(p_effects -> 'resolved_pending', '[]'::jsonb))));

  update public.billing_subjects b set version = v_version + 1,
         state = coalesce(p_state, b.state), updated_at = now()
   where b.user_id is not distinct from s.user_id and b.organization_id is not distinct from s.organization_id;

  return jsonb_build_object('status', 'applied', 'version', v_version + 1, 'ledger_entries', v_new_entries);
end
$fn$;

-- Keeps a verified event that cannot be attributed to a subject yet. A redelivery of a
-- kept event, or of one already applied, changes nothing.
create or replace function public.tollgate_keep_event(p_event jsonb, p_customer_id text default null,
                                                      p_reason text default '')
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_id bigint;
begin
  if exists (select 1 from public.webhook_events w
              where w.provider = p_event ->> 'provider' and w.event_id = p_event ->> 'event_id') then
    return jsonb_build_object('status', 'duplicate');
  end if;
  insert into public.pending_webhook_events (provider, event_id, event_type, object_id, customer_id, reason, payload)
  values (p_event ->> 'provider', p_event ->> 'event_id', p_event ->> 'event_type', p_event ->> 'object_id',
          p_customer_id, coalesce(p_reason, ''), coalesce(p_event -> 'payload', 'null'::jsonb))
  on conflict (provider, event_id) do nothing
  returning id into v_id;
  if v_id is null then
    return jsonb_build_object('status', 'duplicate');
  end if;
  return jsonb_build_object('status', 'kept', 'id', v_id);
end
$fn$;

-- Open kept events, oldest first: all of them, or those waiting for one customer id.
create or replace function public.tollgate_pending_events(p_provider text default null,
                                                          p_customer_id text default null,
                                                          p_limit integer default 100)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(to_jsonb(x) order by x.received_at, x.id), '[]'::jsonb)
    from (select * from public.pending_webhook_events pe
           where pe.resolved_at is null
             and (p_provider is null or pe.provider = p_provider)
             and (p_customer_id is null or pe.customer_id = p_customer_id)
           order by pe.received_at, pe.id
           limit greatest(1, least(coalesce(p_limit, 100), 1000))) x
$fn$;

-- Notes a failed retry of a kept event (the scheduled handler's bookkeeping).
create or replace function public.tollgate_pending_attempt(p_provider text, p_event_id text, p_error text)
returns void
language sql
set search_path = ''
as $fn$
  update public.pending_webhook_events
     set attempts = attempts + 1, last_attempt_at = now(), last_error = p_error
   where provider = p_provider and event_id = p_event_id
$fn$;

-- ------------------------------------------------------------------ usage

-- Charges one usage request, once per request id.
--   p_request_id   the client's Idempotency-Key
--   p_request_hash a digest of the request; the same key with another request is refused (PT409)
--   p_charges      [{"pool", "amount"}] from the core's charge plan (amount > 0)
--   p_usage        {"units", "model", "quality", "cost_minor", "overage_minor", "currency", "plan"}
-- Returns {"status": "charged" | "replayed", "usage_id", "balances"} or, when a pool is
-- short (the plan was computed from balances that have moved since), the denial
-- {"status": "insufficient", "pool", "available", "required"} and nothing is written.
-- Each debit is `UPDATE ... SET available = available - x WHERE available >= x` with its
-- row count checked: a balance can never go negative, whatever the concurrency.
create or replace function public.tollgate_consume(p_request_id text, p_request_hash text, p_subject jsonb,
                                                   p_charges jsonb, p_usage jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_usage_id uuid;
  v_existing record;
  v_charge jsonb;
  v_pool text;
  v_amount bigint;
  v_after bigint;
  v_available bigint;
  v_detail text;
begin
  s := public.tollgate_subject_ids(p_subject);
  if coalesce(p_request_id, '') = '' then
    raise exception using errcode = '22023', message = 'request id (Idempotency-Key) is required';
  end if;

  begin
    insert into public.usage_records (request_id, user_id, organization_id, request_hash, units, model, quality,
                                      cost_minor, overage_minor, currency, charges)
    values (p_request_id, s.user_id, s.organization_id, p_request_hash,
            (p_usage ->> 'units')::bigint, p_usage ->> 'model', p_usage ->> 'quality',
            coalesce((p_usage ->> 'cost_minor')::bigint, 0), coalesce((p_usage ->> 'overage_minor')::bigint, 0),
            p_usage ->> 'currency', coalesce(p_charges, '[]'::jsonb))
    on conflict (request_id) do nothing
    returning id into v_usage_id;

    if v_usage_id is null then
      select u.id, u.request_hash, u.user_id, u.organization_id into v_existing
        from public.usage_records u where u.request_id = p_request_id;
      if v_existing.request_hash is distinct from p_request_hash
         or v_existing.user_id is distinct from s.user_id
         or v_existing.organization_id is distinct from s.organization_id then
        raise exception using errcode = 'PT409',
          message = 'Idempotency-Key was already used for a different request';
      end if;
      return jsonb_build_object('status', 'replayed', 'usage_id', v_existing.id,
        'balances', (select coalesce(jsonb_object_agg(c.pool, c.available), '{}'::jsonb)
                       from public.credit_balances c
                      where c.user_id is not distinct from s.user_id
                        and c.organization_id is not distinct from s.organization_id));
    end if;

    for v_charge in select * from jsonb_array_elements(coalesce(p_charges, '[]'::jsonb)) loop
      v_pool := v_charge ->> 'pool';
      v_amount := (v_charge ->> 'amount')::bigint;
      if v_pool is null or v_amount is null or v_amount <= 0 then
        raise exception using errcode = '22023', message = 'each charge needs a pool and a positive amount';
      end if;
      update public.credit_balances c set available = c.available - v_amount, updated_at = now()
       where c.user_id is not distinct from s.user_id and c.organization_id is not distinct from s.organization_id
         and c.pool = v_pool and c.available >= v_amount
      returning c.available into v_after;
      if not found then
        select c.available into v_available from public.credit_balances c
         where c.user_id is not distinct from s.user_id and c.organization_id is not distinct from s.organization_id
           and c.pool = v_pool;
        raise exception using errcode = 'PT402', message = 'insufficient credits',
          detail = jsonb_build_object('pool', v_pool, 'available', coalesce(v_available, 0),
                                      'required', v_amount)::text;
      end if;
      insert into public.credit_ledger (user_id, organization_id, pool, delta, balance_after, source_key, reason)
      values (s.user_id, s.organization_id, v_pool, -v_amount, v_after,
              'usage:' || p_request_id || ':' || v_pool, 'usage');
    end loop;
  exception when sqlstate 'PT402' then
    get stacked diagnostics v_detail = pg_exception_detail;
    return jsonb_build_object('status', 'insufficient') || v_detail::jsonb;
  end;

  return jsonb_build_object('status', 'charged', 'usage_id', v_usage_id,
    'balances', (select coalesce(jsonb_object_agg(c.pool, c.available), '{}'::jsonb)
                   from public.credit_balances c
                  where c.user_id is not distinct from s.user_id
                    and c.organization_id is not distinct from s.organization_id));
end
$fn$;

-- ------------------------------------------------------------------ admin

-- Writes manual_grant / promotion grants (with their expiry) and optional credits for a
-- subject, in one transaction. Grants are upserted by grant_key, credits keyed by source.
create or replace function public.tollgate_admin_grant(p_subject jsonb, p_grants jsonb, p_ledger jsonb default '[]'::jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_item jsonb;
  v_count integer := 0;
begin
  s := public.tollgate_subject_ids(p_subject);
  if s.organization_id is not null then
    insert into public.organizations (id) values (s.organization_id) on conflict do nothing;
  end if;
  for v_item in select * from jsonb_array_elements(coalesce(p_grants, '[]'::jsonb)) loop
    if v_item ->> 'source' not in ('manual_grant', 'promotion') then
      raise exception using errcode = '22023', message = 'admin grants have source manual_grant or promotion';
    end if;
    perform public.tollgate_grant_upsert(s.user_id, s.organization_id, v_item);
    v_count := v_count + 1;
  end loop;
  for v_item in select * from jsonb_array_elements(coalesce(p_ledger, '[]'::jsonb)) loop
    perform public.tollgate_ledger_apply(s.user_id, s.organization_id, v_item);
  end loop;
  return jsonb_build_object('status', 'granted', 'grants', v_count);
end
$fn$;

-- ------------------------------------------------------------------ seats

-- Allocates a seat when fewer than p_limit are active (the limit is the core's answer),
-- under a lock on the organization row so concurrent allocations cannot overshoot.
create or replace function public.tollgate_allocate_seat(p_organization_id uuid, p_user_id uuid,
                                                         p_limit integer, p_allocated_by uuid default null)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_used integer;
begin
  perform 1 from public.organizations o where o.id = p_organization_id for update;
  if not found then
    raise exception using errcode = '22023', message = 'unknown organization';
  end if;
  if exists (select 1 from public.seat_allocations a where a.organization_id = p_organization_id
              and a.user_id = p_user_id and a.status = 'active') then
    return jsonb_build_object('status', 'allocated', 'already', true);
  end if;
  select count(*) into v_used from public.seat_allocations a
   where a.organization_id = p_organization_id and a.status = 'active';
  if v_used >= p_limit then
    return jsonb_build_object('status', 'no_seat', 'used', v_used, 'limit', p_limit);
  end if;
  insert into public.organization_members (organization_id, user_id) values (p_organization_id, p_user_id)
  on conflict do nothing;
  insert into public.seat_allocations (organization_id, user_id, allocated_by)
  values (p_organization_id, p_user_id, p_allocated_by);
  return jsonb_build_object('status', 'allocated', 'already', false, 'used', v_used + 1, 'limit', p_limit);
end
$fn$;

create or replace function public.tollgate_release_seat(p_organization_id uuid, p_user_id uuid)
returns jsonb
language sql
set search_path = ''
as $fn$
  with r as (
    update public.seat_allocations set status = 'released', released_at = now()
     where organization_id = p_organization_id and user_id = p_user_id and status = 'active'
    returning 1)
  select jsonb_build_object('status', 'released', 'released', (select count(*) from r))
$fn$;

-- ------------------------------------------------------------------ housekeeping

-- Grants whose window closed at or before p_now and that still say active/trial/past_due:
-- the scheduled handler hands them to the core, which decides what to write.
create or replace function public.tollgate_expired_grants(p_now timestamptz, p_limit integer default 500)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(to_jsonb(g) order by g.valid_to), '[]'::jsonb)
    from (select * from public.cloud_entitlements ce
           where ce.valid_to is not null and ce.valid_to <= p_now
             and ce.status in ('active', 'trial', 'past_due')
           order by ce.valid_to
           limit greatest(1, least(coalesce(p_limit, 500), 5000))) g
$fn$;

-- ------------------------------------------------------------------ privileges

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_subject_ids(jsonb)',
    'public.tollgate_ledger_apply(uuid, uuid, jsonb)',
    'public.tollgate_grant_upsert(uuid, uuid, jsonb)',
    'public.tollgate_subject_state(jsonb)',
    'public.tollgate_lookup_subject(text, text, text)',
    'public.tollgate_apply_event(jsonb, jsonb, bigint, jsonb, jsonb)',
    'public.tollgate_keep_event(jsonb, text, text)',
    'public.tollgate_pending_events(text, text, integer)',
    'public.tollgate_pending_attempt(text, text, text)',
    'public.tollgate_consume(text, text, jsonb, jsonb, jsonb)',
    'public.tollgate_admin_grant(jsonb, jsonb, jsonb)',
    'public.tollgate_allocate_seat(uuid, uuid, integer, uuid)',
    'public.tollgate_release_seat(uuid, uuid)',
    'public.tollgate_expired_grants(timestamptz, integer)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
