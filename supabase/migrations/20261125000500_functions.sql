-- tollgate: the atomic operations the worker calls through PostgREST
-- (`POST /rest/v1/rpc/<name>` with named JSON arguments; one transaction per call; any
-- error rolls the whole call back).
--
--   tollgate_subject_state(p_subject[, p_ledger_key])  everything the core needs about a subject
--   tollgate_apply_event(...)                    record one provider event AND write its
--                                                effects, in one transaction, idempotently
--   tollgate_keep_event(...)                     keep an event that cannot be attributed yet
--   tollgate_pending_events(...)                 kept events waiting for a customer/subscription
--   tollgate_consume(...)                        charge a usage request, once per request id
--   tollgate_usage_stamp(state)                  (internal) what a charge was planned from
--   tollgate_admin_grant(...)                    manual_grant / promotion grants (+ credits)
--   tollgate_wallet_apply(...)                   (internal) credit lots and ledger entries
--   tollgate_allocate_seat / tollgate_release_seat
--   tollgate_expired_grants(p_now)               grants whose window has closed (housekeeping)
--
-- No business rule lives here: the core (Rust) decides what an event means, what a charge
-- takes from which pool and whether a seat may be given. These functions make the
-- decided writes atomic, idempotent and safe under concurrency.
--
-- A subject is `{"user_id": "<uuid>"}` or `{"organization_id": "<uuid>"}`.
-- A subject's rows are matched with `(t.user_id = s.user_id or t.organization_id =
-- s.organization_id)`: exactly one side of both the subject and every row is set (the
-- tables' num_nonnulls checks), so this is the same as comparing both columns with
-- `is not distinct from`, but unlike that it can use the user_id and organization_id
-- indexes. Every lookup here is an index scan whatever the size of the table.
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

-- Writes a change of a subject's credit lots decided by the core (`credits::Wallet`):
--   {"lots_new":     [lot, ...],                       lots to open
--    "lots_changed": [{"key", "from": {...}, "to": {...}}, ...]
--                                                      lot fields (remaining, granted, revoked,
--                                                      expired, closed, rolled_over) that move
--                                                      from `from` to `to`
--    "entries":      [ledger entry, ...]}              new ledger entries
-- A lot is only changed if it still holds exactly the `from` values, and a lot or entry
-- key that already exists is a conflict: either way PT409 rolls the whole call back and
-- the caller reloads and recomputes (a concurrent consume moved the lot meanwhile).
-- The balance follows by trigger; remaining >= 0 is a CHECK.
create or replace function public.tollgate_wallet_apply(p_user uuid, p_org uuid, p_wallet jsonb)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
  v_item jsonb;
  v_from jsonb;
  v_to jsonb;
  v_n integer := 0;
begin
  for v_item in select * from jsonb_array_elements(coalesce(p_wallet -> 'lots_new', '[]'::jsonb)) loop
    insert into public.credit_lots (user_id, organization_id, key, pool, kind, granted, remaining,
                                    valid_from, valid_to, source, subscription, revoked, expired,
                                    closed, rolled_over)
    values (p_user, p_org, v_item ->> 'key', v_item ->> 'pool', v_item ->> 'kind',
            (v_item ->> 'granted')::bigint, (v_item ->> 'remaining')::bigint,
            (v_item ->> 'valid_from')::timestamptz, (v_item ->> 'valid_to')::timestamptz,
            coalesce(v_item ->> 'source', ''), v_item ->> 'subscription',
            coalesce((v_item ->> 'revoked')::bigint, 0), coalesce((v_item ->> 'expired')::bigint, 0),
            coalesce((v_item ->> 'closed')::boolean, false), coalesce((v_item ->> 'rolled_over')::boolean, false))
    on conflict (user_id, organization_id, key) do nothing;
    if not found then
      raise exception using errcode = 'PT409', message = 'credit lot already exists',
        detail = v_item ->> 'key', hint = 'reload the subject state, recompute and retry';
    end if;
  end loop;

  for v_item in select * from jsonb_array_elements(coalesce(p_wallet -> 'lots_changed', '[]'::jsonb)) loop
    v_from := v_item -> 'from';
    v_to := v_item -> 'to';
    update public.credit_lots l set
        remaining = (v_to ->> 'remaining')::bigint,
        granted = (v_to ->> 'granted')::bigint,
        revoked = (v_to ->> 'revoked')::bigint,
        expired = (v_to ->> 'expired')::bigint,
        closed = (v_to ->> 'closed')::boolean,
        rolled_over = (v_to ->> 'rolled_over')::boolean,
        updated_at = now()
     where (l.user_id = p_user or l.organization_id = p_org)
       and l.key = v_item ->> 'key'
       and l.remaining = (v_from ->> 'remaining')::bigint
       and l.granted = (v_from ->> 'granted')::bigint
       and l.revoked = (v_from ->> 'revoked')::bigint
       and l.expired = (v_from ->> 'expired')::bigint
       and l.closed = (v_from ->> 'closed')::boolean
       and l.rolled_over = (v_from ->> 'rolled_over')::boolean;
    if not found then
      raise exception using errcode = 'PT409', message = 'credit lot changed concurrently',
        detail = v_item ->> 'key', hint = 'reload the subject state, recompute and retry';
    end if;
  end loop;

  for v_item in select * from jsonb_array_elements(coalesce(p_wallet -> 'entries', '[]'::jsonb)) loop
    insert into public.credit_ledger (user_id, organization_id, source_key, pool, lot, kind, delta, at, source)
    values (p_user, p_org, v_item ->> 'key', v_item ->> 'pool', coalesce(v_item ->> 'lot', ''),
            v_item ->> 'kind', (v_item ->> 'delta')::bigint,
            coalesce((v_item ->> 'at')::timestamptz, now()), coalesce(v_item ->> 'source', ''))
    on conflict (user_id, organization_id, source_key) do nothing;
    if not found then
      raise exception using errcode = 'PT409', message = 'ledger key already posted',
        detail = v_item ->> 'key', hint = 'reload the subject state, recompute and retry';
    end if;
    v_n := v_n + 1;
  end loop;
  return v_n;
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

-- With p_ledger_key, the ledger holds only that key's entries (the key itself and
-- `<key>:<lot>`): what a usage charge needs to see whether it was already posted, so
-- charging does not read (and the worker does not parse) the subject's whole history.
-- What a usage charge is planned from, as one value (`stamp` in tollgate_subject_state's
-- answer): the subject's state without what charges themselves change (each lot's
-- remaining units, the balances, ledger entries). A plan made from an older copy of the
-- state holds as long as the stamp is the same: the remaining units are checked lot by
-- lot when the charge takes them (tollgate_consume).
create or replace function public.tollgate_usage_stamp(p_state jsonb)
returns text
language sql immutable
set search_path = ''
as $fn$
  select md5(jsonb_set(p_state - 'balances' - 'stamp', '{wallet}', jsonb_build_object('lots',
    coalesce((select jsonb_agg(l.value - 'remaining' order by l.ordinality)
                from jsonb_array_elements(coalesce(p_state #> '{wallet,lots}', '[]'::jsonb)) with ordinality l),
             '[]'::jsonb)))::text)
$fn$;

-- An earlier version of this file had a one-argument form; it is replaced.
drop function if exists public.tollgate_subject_state(jsonb);
create or replace function public.tollgate_subject_state(p_subject jsonb, p_ledger_key text default null)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
  v_ledger jsonb;
  v_out jsonb;
begin
  s := public.tollgate_subject_ids(p_subject);
  -- One request's entries are `<key>` and `<key>:<part>`: a range of the C-ordered
  -- source_key index (the range alone also holds keys like `<key>0`; the exact test
  -- drops them), so a charge reads a handful of rows however long the ledger is.
  if p_ledger_key is null then
    select jsonb_agg(jsonb_build_object('key', e.source_key, 'pool', e.pool, 'lot', e.lot, 'kind', e.kind,
                                        'delta', e.delta, 'at', e.at, 'source', e.source) order by e.id)
      into v_ledger
      from public.credit_ledger e
     where (e.user_id = s.user_id or e.organization_id = s.organization_id);
  else
    select jsonb_agg(jsonb_build_object('key', e.source_key, 'pool', e.pool, 'lot', e.lot, 'kind', e.kind,
                                        'delta', e.delta, 'at', e.at, 'source', e.source) order by e.id)
      into v_ledger
      from public.credit_ledger e
     where e.source_key collate "C" >= p_ledger_key collate "C"
       and e.source_key collate "C" < (p_ledger_key || ';') collate "C"
       and (e.source_key = p_ledger_key or left(e.source_key, length(p_ledger_key) + 1) = p_ledger_key || ':')
       -- a filter on the few rows of that range, on purpose not the indexable form:
       -- scanning the subject's index too would read its whole ledger again
       and e.user_id is not distinct from s.user_id
       and e.organization_id is not distinct from s.organization_id;
  end if;
  select jsonb_build_object(
    'subject', p_subject,
    'version', coalesce((select b.version from public.billing_subjects b
                          where (b.user_id = s.user_id
                            or b.organization_id = s.organization_id)), 0),
    'state', coalesce((select b.state from public.billing_subjects b
                        where (b.user_id = s.user_id
                          or b.organization_id = s.organization_id)), '{}'::jsonb),
    'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key) from public.cloud_entitlements g
                         where (g.user_id = s.user_id
                           or g.organization_id = s.organization_id)), '[]'::jsonb),
    'balances', coalesce((select jsonb_object_agg(c.pool, c.available) from public.credit_balances c
                           where (c.user_id = s.user_id
                             or c.organization_id = s.organization_id)), '{}'::jsonb),
    'wallet', jsonb_build_object(
      'lots', coalesce((select jsonb_agg(jsonb_strip_nulls(to_jsonb(l) - 'id' - 'user_id' - 'organization_id' - 'updated_at')
                                         order by l.id)
                          from public.credit_lots l
                         where (l.user_id = s.user_id
                           or l.organization_id = s.organization_id)), '[]'::jsonb),
      'ledger', coalesce(v_ledger, '[]'::jsonb)),
    'subscriptions', coalesce((select jsonb_agg(to_jsonb(x) order by x.subscription_id)
                                from public.billing_subscriptions x
                               where (x.user_id = s.user_id
                                 or x.organization_id = s.organization_id)), '[]'::jsonb),
    'preferences', (select to_jsonb(p) from public.usage_preferences p
                     where (p.user_id = s.user_id
                       or p.organization_id = s.organization_id)),
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
                           where (c.user_id = s.user_id
                             or c.organization_id = s.organization_id)), '[]'::jsonb)
  ) into v_out;
  return v_out || jsonb_build_object('stamp', public.tollgate_usage_stamp(v_out));
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
--                       "wallet": {lots_new, lots_changed, entries} (see tollgate_wallet_apply),
--                       "seat_count": n, "resolved_pending": [event ids]}
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
   where (b.user_id = s.user_id or b.organization_id = s.organization_id)
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

  v_new_entries := public.tollgate_wallet_apply(s.user_id, s.organization_id, coalesce(p_effects -> 'wallet', '{}'::jsonb));

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
   where (b.user_id = s.user_id or b.organization_id = s.organization_id);

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
--   p_takes        [{"lot", "units"}]: the core's charge plan (allowance first, then purchased)
--   p_entries      the ledger entries the core posts for it (a 0-delta marker and one per lot)
--   p_usage        {"units", "model", "quality", "cost_minor", "overage_minor", "currency", "pool"}
--   p_fact         the usage as a billing fact (stored in billing_facts with the charge)
--   p_stamp        the `stamp` of the subject state the plan was made from; null: no check
-- Returns {"status": "charged" | "replayed", "usage_id", "balances"}; or, writing nothing,
-- {"status": "stale", "state"} when the subject's state changed since the plan was made
-- (its stamp differs), or {"status": "insufficient", "lot", "available", "required",
-- "state"} when a lot no longer holds what the plan takes. Both carry the fresh state
-- (tollgate_subject_state with this request's ledger entries), so the caller re-plans
-- without another call; a caller that kept the state of its last charge plans and charges
-- in one call.
-- Each take is `UPDATE ... SET remaining = remaining - x WHERE remaining >= x` with its row
-- count checked: a lot (and so a balance) can never go negative, whatever the concurrency.
drop function if exists public.tollgate_consume(text, text, jsonb, jsonb, jsonb, jsonb, jsonb);
create or replace function public.tollgate_consume(p_request_id text, p_request_hash text, p_subject jsonb,
                                                   p_takes jsonb, p_entries jsonb, p_usage jsonb,
                                                   p_fact jsonb default null, p_stamp text default null)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_usage_id uuid;
  v_existing record;
  v_take jsonb;
  v_lot text;
  v_units bigint;
  v_available bigint;
  v_detail text;
  v_state jsonb;
begin
  s := public.tollgate_subject_ids(p_subject);
  if coalesce(p_request_id, '') = '' then
    raise exception using errcode = '22023', message = 'request id (Idempotency-Key) is required';
  end if;
  -- A plan made from an older state: checked unless the request was charged already (a
  -- retry is answered from its record below, whatever changed since).
  if p_stamp is not null
     and not exists (select 1 from public.usage_records u where u.request_id = p_request_id) then
    v_state := public.tollgate_subject_state(p_subject, 'usage:' || p_request_id);
    if v_state ->> 'stamp' is distinct from p_stamp then
      return jsonb_build_object('status', 'stale', 'state', v_state);
    end if;
  end if;

  begin
    insert into public.usage_records (request_id, user_id, organization_id, request_hash, units, model, quality,
                                      cost_minor, overage_minor, currency, charges)
    values (p_request_id, s.user_id, s.organization_id, p_request_hash,
            (p_usage ->> 'units')::bigint, p_usage ->> 'model', p_usage ->> 'quality',
            coalesce((p_usage ->> 'cost_minor')::bigint, 0), coalesce((p_usage ->> 'overage_minor')::bigint, 0),
            p_usage ->> 'currency', coalesce(p_takes, '[]'::jsonb))
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
                      where (c.user_id = s.user_id
                        or c.organization_id = s.organization_id)));
    end if;

    perform public.tollgate_wallet_apply(s.user_id, s.organization_id,
                                         jsonb_build_object('entries', coalesce(p_entries, '[]'::jsonb)));
    -- The usage as a fact, so later folds of this subject's facts include it.
    if p_fact is not null and to_regclass('public.billing_facts') is not null then
      execute 'insert into public.billing_facts (fact_key, provider, event_id, fact_type, refs, at, fact)
               values ($1, $2, '''', $3, $4, $5, $6) on conflict (fact_key) do nothing'
        using p_fact ->> 'key', coalesce(p_fact ->> 'provider', 'app'), coalesce(p_fact ->> 'type', 'usage'),
              coalesce((select array_agg(r) from jsonb_array_elements_text(p_fact -> 'refs') r), '{}'::text[]),
              (p_fact ->> 'at')::timestamptz, p_fact -> 'fact';
    end if;
    -- The lots are taken last: every charge on a balance waits for the row lock of the
    -- lot it draws from, so the lock is held for the updates and the commit only.
    for v_take in select * from jsonb_array_elements(coalesce(p_takes, '[]'::jsonb)) loop
      v_lot := v_take ->> 'lot';
      v_units := (v_take ->> 'units')::bigint;
      if v_lot is null or v_units is null or v_units <= 0 then
        raise exception using errcode = '22023', message = 'each take needs a lot and positive units';
      end if;
      update public.credit_lots l set remaining = l.remaining - v_units, updated_at = now()
       where (l.user_id = s.user_id or l.organization_id = s.organization_id)
         and l.key = v_lot and not l.closed and l.remaining >= v_units;
      if not found then
        select l.remaining into v_available from public.credit_lots l
         where (l.user_id = s.user_id or l.organization_id = s.organization_id)
           and l.key = v_lot and not l.closed;
        raise exception using errcode = 'PT402', message = 'insufficient credits',
          detail = jsonb_build_object('lot', v_lot, 'available', coalesce(v_available, 0),
                                      'required', v_units)::text;
      end if;
    end loop;
  exception when sqlstate 'PT402' then
    get stacked diagnostics v_detail = pg_exception_detail;
    return jsonb_build_object('status', 'insufficient',
                              'state', public.tollgate_subject_state(p_subject, 'usage:' || p_request_id))
           || v_detail::jsonb;
  end;

  return jsonb_build_object('status', 'charged', 'usage_id', v_usage_id,
    'balances', (select coalesce(jsonb_object_agg(c.pool, c.available), '{}'::jsonb)
                   from public.credit_balances c
                  where (c.user_id = s.user_id
                    or c.organization_id = s.organization_id)));
end
$fn$;

-- ------------------------------------------------------------------ admin

-- Writes manual_grant / promotion grants (with their expiry) and optional credits for a
-- subject, in one transaction. Grants are upserted by grant_key; credits are new lots and
-- their ledger entries (see tollgate_wallet_apply), keyed by source.
create or replace function public.tollgate_admin_grant(p_subject jsonb, p_grants jsonb, p_wallet jsonb default '{}'::jsonb)
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
  perform public.tollgate_wallet_apply(s.user_id, s.organization_id, coalesce(p_wallet, '{}'::jsonb));
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
    'public.tollgate_wallet_apply(uuid, uuid, jsonb)',
    'public.tollgate_grant_upsert(uuid, uuid, jsonb)',
    'public.tollgate_subject_state(jsonb, text)',
    'public.tollgate_lookup_subject(text, text, text)',
    'public.tollgate_apply_event(jsonb, jsonb, bigint, jsonb, jsonb)',
    'public.tollgate_keep_event(jsonb, text, text)',
    'public.tollgate_pending_events(text, text, integer)',
    'public.tollgate_pending_attempt(text, text, text)',
    'public.tollgate_consume(text, text, jsonb, jsonb, jsonb, jsonb, jsonb, text)',
    'public.tollgate_usage_stamp(jsonb)',
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
