-- tollgate: money is conserved by construction.
--
-- Every credit change is a fact, and the store's credit rows are folds of facts:
--   * A usage charge records what it actually took, lot by lot (its fact carries the
--     takes and the overage). Each lot keeps `used`, the sum of the takes recorded
--     against it: the charges' fold, kept in the same transaction as each charge.
--   * A fold of the other facts (purchases, renewals, refunds, admin credits, expiry)
--     reads those totals instead of every charge, applies each lot's usage before its
--     refunds, expiry and rollover (the charges were taken from the lot as it stood),
--     and writes the subject's lots and its non-usage ledger entries whole. It never
--     plans a charge again, so a late purchase, a redelivery or a cron tick only adds
--     what it brings. Its cost does not grow with the number of charges.
--   * A lot written by a fold is written only if its `used` is still the total the fold
--     read (checked in the UPDATE itself, so a charge that commits first makes the fold
--     start again, and a charge that waits for the fold takes from the fold's row).
--   * A charge is decided only by its request id (a digest of the caller's key, made by
--     the core): no key a caller chooses can equal a key the system writes.
--
-- The functions of earlier migrations that no caller uses any more are dropped here.
-- Idempotent: safe to apply to an empty database and again on top of itself.

-- ------------------------------------------------------------------ tables

alter table public.credit_lots add column if not exists used bigint not null default 0;
alter table public.credit_lots drop constraint if exists credit_lots_used_check;
alter table public.credit_lots add constraint credit_lots_used_check check (used >= 0);
-- Lots charged before `used` existed: their usage is what their usage entries took.
update public.credit_lots l set used = u.total
  from (select e.user_id, e.organization_id, e.lot, -sum(e.delta) as total
          from public.credit_ledger e
         where e.kind = 'usage' and e.lot <> ''
         group by e.user_id, e.organization_id, e.lot) u
 where l.used = 0 and u.total > 0 and l.key = u.lot
   and (l.user_id = u.user_id or l.organization_id = u.organization_id);

alter table public.usage_records add column if not exists overage_units bigint not null default 0;
alter table public.usage_records add column if not exists pool text;

-- A fold rewrites a subject's ledger entries other than charges': these indexes find them
-- without visiting the charges' entries, however many there are.
create index if not exists credit_ledger_user_fold_idx
  on public.credit_ledger(user_id) where kind <> 'usage';
create index if not exists credit_ledger_organization_fold_idx
  on public.credit_ledger(organization_id) where kind <> 'usage' and organization_id is not null;

-- Folds count and read the facts of a cluster other than charges (charges reach a fold
-- as the lots' `used`), through this index.
create index if not exists billing_facts_refs_nonusage_idx
  on public.billing_facts using gin (refs) where fact_type <> 'usage';

-- The scheduled job's expiry scan: open lots and hand-given grants past their end.
create index if not exists credit_lots_open_valid_to_idx
  on public.credit_lots(valid_to, id) where valid_to is not null and not closed;
create index if not exists cloud_entitlements_hand_valid_to_idx
  on public.cloud_entitlements(valid_to, id)
  where valid_to is not null and source in ('manual_grant', 'promotion') and status in ('active', 'trial', 'past_due');

-- ------------------------------------------------------------------ dropped

drop function if exists public.tollgate_apply_event(jsonb, jsonb, bigint, jsonb, jsonb);
drop function if exists public.tollgate_keep_event(jsonb, text, text);
drop function if exists public.tollgate_lookup_subject(text, text, text);
drop function if exists public.tollgate_allocate_seat(uuid, uuid, integer, uuid);
drop function if exists public.tollgate_release_seat(uuid, uuid);
drop function if exists public.tollgate_admin_grant(jsonb, jsonb, jsonb);
drop function if exists public.tollgate_consume(text, text, jsonb, jsonb, jsonb, jsonb, jsonb, text);
drop function if exists public.tollgate_apply_facts(jsonb, jsonb, bigint, jsonb, jsonb, jsonb, text[]);
drop function if exists public.tollgate_related_facts(text[], integer);
drop function if exists public.tollgate_wallet_apply(uuid, uuid, jsonb);
drop function if exists public.tollgate_expired_grants(timestamptz, integer);

-- ------------------------------------------------------------------ reads

-- What a usage charge is planned from, as one value: the subject's state without what
-- charges themselves change (each lot's remaining and used units, the balances, ledger
-- entries). Replaces the form of 20261125000500, which still counted `used`.
create or replace function public.tollgate_usage_stamp(p_state jsonb)
returns text
language sql immutable
set search_path = ''
as $fn$
  select md5(jsonb_set(p_state - 'balances' - 'stamp', '{wallet}', jsonb_build_object('lots',
    coalesce((select jsonb_agg(l.value - 'remaining' - 'used' order by l.ordinality)
                from jsonb_array_elements(coalesce(p_state #> '{wallet,lots}', '[]'::jsonb)) with ordinality l),
             '[]'::jsonb)))::text)
$fn$;

-- The usage totals of the subjects among `p_refs` (`user:<uuid>`, `org:<uuid>`):
-- {"user:<uuid>": {"<lot>": used, ...}, ...}, lots with usage only.
create or replace function public.tollgate_cluster_usage(p_refs text[])
returns jsonb
language sql stable
set search_path = ''
as $fn$
  with ids as (
    select case when r like 'user:%' then substr(r, 6)::uuid end as user_id,
           case when r like 'org:%' then substr(r, 5)::uuid end as organization_id
      from unnest(coalesce(p_refs, '{}')) r
     where r ~ '^(user|org):[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
  ), lots as (
    select 'user:' || l.user_id as subject, l.key, l.used
      from ids join public.credit_lots l on l.user_id = ids.user_id
     where l.used > 0
    union all
    select 'org:' || l.organization_id, l.key, l.used
      from ids join public.credit_lots l on l.organization_id = ids.organization_id
     where l.used > 0
  )
  select coalesce(jsonb_object_agg(x.subject, x.lots), '{}'::jsonb)
    from (select subject, jsonb_object_agg(key, used) as lots from lots group by subject) x
$fn$;

-- Everything a fold of the facts related to `p_refs` reads: the cluster of facts
-- reachable through shared references (charges excluded: they are in `usage`), as
-- {"refs": the cluster's references, "version": how many such facts it holds, "facts":
-- at most `p_limit` of them, oldest first, "usage": tollgate_cluster_usage}. One snapshot.
create or replace function public.tollgate_fold_input(p_refs text[], p_limit integer default 20000)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  v_refs text[] := coalesce(p_refs, '{}');
  v_more text[];
  v_rounds integer := 0;
begin
  loop
    select coalesce(array_agg(distinct r), '{}') into v_more
      from public.billing_facts f, unnest(f.refs) r
     where f.refs && v_refs and f.fact_type <> 'usage' and not (r = any (v_refs));
    exit when cardinality(v_more) = 0 or v_rounds >= 64;
    v_refs := v_refs || v_more;
    v_rounds := v_rounds + 1;
  end loop;
  return jsonb_build_object(
    'version', (select count(*) from public.billing_facts f where f.refs && v_refs and f.fact_type <> 'usage'),
    'refs', to_jsonb(v_refs),
    'facts', coalesce((select jsonb_agg(x.fact order by x.id)
                         from (select f.id, f.fact from public.billing_facts f
                                where f.refs && v_refs and f.fact_type <> 'usage' order by f.id
                                limit greatest(1, coalesce(p_limit, 20000))) x), '[]'::jsonb),
    'usage', public.tollgate_cluster_usage(v_refs));
end
$fn$;

-- Whether the database knows a subject: a user in auth.users, an organization.
create or replace function public.tollgate_subject_exists(p_subject jsonb)
returns boolean
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
begin
  s := public.tollgate_subject_ids(p_subject);
  return exists (select 1 from auth.users u where u.id = s.user_id)
      or exists (select 1 from public.organizations o where o.id = s.organization_id);
end
$fn$;

-- ------------------------------------------------------------------ folds

-- Stores new facts and writes the fold's result for every subject it touched, whole, in
-- one transaction.
--   p_event            the delivery {"provider", "event_id", "event_type", "object_id"?,
--                      "payload"?} or null (the app's own facts: admin credits, seats)
--   p_facts            [{"key", "provider", "event", "type", "refs", "at", "fact"}]
--   p_expected_version the cluster's version the fold was computed from
--   p_refs             the cluster's references (tollgate_fold_input's "refs")
--   p_subjects         [{"subject", "state", "grants", "lots", "ledger", "subscriptions",
--                        "customers", "seat_count"?, "seats"?}]; each lot carries
--                      "used_read", the usage total the fold read for it
--   p_pending          {"keep": bool, "waiting_for": [refs], "reason": text}
--   p_resolved         [{"provider", "event_id"}] kept events the fold now applied
-- A user the database does not know (yet) is not written: the delivery is kept, waiting
-- for `user:<id>`, and applied by a later fold once the user exists. A fact whose key is
-- stored already with other content is reported in "conflicts" (nothing is replaced); if
-- that stored fact is outside the fold's cluster, nothing is written (PT409, hint
-- fact_conflict).
-- Returns {"status": "applied" | "kept" | "duplicate", "version", "unknown": [refs],
-- "conflicts": [keys]}.
create or replace function public.tollgate_apply_fold(p_event jsonb, p_facts jsonb, p_expected_version bigint,
                                                      p_refs text[], p_subjects jsonb,
                                                      p_pending jsonb default null,
                                                      p_resolved jsonb default '[]'::jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_event_row bigint;
  v_version bigint;
  v_new_refs text[];
  v_refs text[];
  v_item jsonb;
  v_sub jsonb;
  s record;
  v_status text := 'applied';
  v_unknown text[] := '{}';
  v_conflicts text[] := '{}';
  v_stored jsonb;
  v_stored_refs text[];
  v_waiting text[];
begin
  if p_event is not null then
    if coalesce(p_event ->> 'provider', '') = '' or coalesce(p_event ->> 'event_id', '') = '' then
      raise exception using errcode = '22023', message = 'event needs provider and event_id';
    end if;
    -- A redelivery of an event already applied changes nothing.
    insert into public.webhook_events (provider, event_id, event_type, object_id, object_version, payload)
    values (p_event ->> 'provider', p_event ->> 'event_id', coalesce(p_event ->> 'event_type', ''),
            p_event ->> 'object_id', (p_event ->> 'object_version')::bigint, p_event -> 'payload')
    on conflict do nothing
    returning id into v_event_row;
    if v_event_row is null then
      return jsonb_build_object('status', 'duplicate');
    end if;
  end if;

  select coalesce(array_agg(distinct r), '{}') into v_new_refs
    from jsonb_array_elements(coalesce(p_facts, '[]'::jsonb)) x, jsonb_array_elements_text(x -> 'refs') r;
  v_refs := coalesce(p_refs, v_new_refs);
  perform public.tollgate_lock_refs(v_refs || v_new_refs);
  select count(*) into v_version from public.billing_facts f where f.refs && v_refs and f.fact_type <> 'usage';
  if v_version <> coalesce(p_expected_version, 0) then
    raise exception using errcode = 'PT409', message = 'billing state changed concurrently',
      detail = jsonb_build_object('expected', p_expected_version, 'actual', v_version)::text,
      hint = 'fold_stale';
  end if;

  for v_item in select * from jsonb_array_elements(coalesce(p_facts, '[]'::jsonb)) loop
    insert into public.billing_facts (fact_key, provider, event_id, fact_type, refs, at, fact)
    values (v_item ->> 'key', coalesce(v_item ->> 'provider', ''), coalesce(v_item ->> 'event', ''),
            coalesce(v_item ->> 'type', ''),
            coalesce((select array_agg(r) from jsonb_array_elements_text(v_item -> 'refs') r), '{}'),
            (v_item ->> 'at')::timestamptz, v_item -> 'fact')
    on conflict (fact_key) do nothing;
    if not found then
      select f.fact, f.refs into v_stored, v_stored_refs from public.billing_facts f where f.fact_key = v_item ->> 'key';
      if v_stored is distinct from v_item -> 'fact' then
        -- The stored fact was not part of this fold (another cluster): the fold used the
        -- new content, which must not be written.
        if not (v_stored_refs && v_refs) then
          raise exception using errcode = 'PT409', message = 'a fact with this key was stored before for others',
            detail = v_item ->> 'key', hint = 'fact_conflict';
        end if;
        v_conflicts := v_conflicts || (v_item ->> 'key');
      end if;
    end if;
  end loop;

  for v_sub in select * from jsonb_array_elements(coalesce(p_subjects, '[]'::jsonb)) loop
    s := public.tollgate_subject_ids(v_sub -> 'subject');
    if s.user_id is not null and not exists (select 1 from auth.users u where u.id = s.user_id) then
      v_unknown := v_unknown || ('user:' || s.user_id::text);
      continue;
    end if;
    if s.organization_id is not null then
      insert into public.organizations (id) values (s.organization_id) on conflict do nothing;
    end if;
    insert into public.billing_subjects (user_id, organization_id) values (s.user_id, s.organization_id)
    on conflict (user_id, organization_id) do nothing;
    update public.billing_subjects b set version = b.version + 1,
           state = coalesce(v_sub -> 'state', b.state), updated_at = now()
     where (b.user_id = s.user_id or b.organization_id = s.organization_id);

    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'customers', '[]'::jsonb)) loop
      insert into public.billing_customers (provider, customer_id, user_id, organization_id)
      values (v_item ->> 'provider', v_item ->> 'customer_id', s.user_id, s.organization_id)
      on conflict (provider, customer_id) do nothing;
    end loop;

    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'subscriptions', '[]'::jsonb)) loop
      insert into public.billing_subscriptions as bs (
        provider, subscription_id, user_id, organization_id, customer_id, offer_key, status, quantity,
        current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, object_version)
      values (
        v_item ->> 'provider', v_item ->> 'subscription_id', s.user_id, s.organization_id,
        v_item ->> 'customer_id', v_item ->> 'offer_key', v_item ->> 'status',
        coalesce((v_item ->> 'quantity')::integer, 1),
        (v_item ->> 'current_period_start')::timestamptz, (v_item ->> 'current_period_end')::timestamptz,
        coalesce((v_item ->> 'cancel_at_period_end')::boolean, false),
        (v_item ->> 'canceled_at')::timestamptz, (v_item ->> 'ended_at')::timestamptz,
        coalesce((v_item ->> 'object_version')::bigint, 0))
      on conflict (provider, subscription_id) do update set
        user_id = excluded.user_id, organization_id = excluded.organization_id,
        customer_id = coalesce(excluded.customer_id, bs.customer_id),
        offer_key = coalesce(excluded.offer_key, bs.offer_key),
        status = excluded.status, quantity = excluded.quantity,
        current_period_start = excluded.current_period_start,
        current_period_end = excluded.current_period_end,
        cancel_at_period_end = excluded.cancel_at_period_end,
        canceled_at = excluded.canceled_at, ended_at = excluded.ended_at,
        object_version = excluded.object_version, updated_at = now();
    end loop;

    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'grants', '[]'::jsonb)) loop
      perform public.tollgate_grant_upsert(s.user_id, s.organization_id, v_item);
    end loop;

    -- Lots, whole. An existing lot is written only while its `used` is the total the
    -- fold read: a charge that committed in between makes this fold start again.
    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'lots', '[]'::jsonb)) loop
      update public.credit_lots l set
          pool = v_item ->> 'pool', kind = v_item ->> 'kind',
          granted = (v_item ->> 'granted')::bigint, remaining = (v_item ->> 'remaining')::bigint,
          valid_from = (v_item ->> 'valid_from')::timestamptz, valid_to = (v_item ->> 'valid_to')::timestamptz,
          source = coalesce(v_item ->> 'source', ''), subscription = v_item ->> 'subscription',
          revoked = coalesce((v_item ->> 'revoked')::bigint, 0), expired = coalesce((v_item ->> 'expired')::bigint, 0),
          closed = coalesce((v_item ->> 'closed')::boolean, false),
          rolled_over = coalesce((v_item ->> 'rolled_over')::boolean, false),
          updated_at = now()
       where (l.user_id = s.user_id or l.organization_id = s.organization_id)
         and l.key = v_item ->> 'key'
         and l.used = coalesce((v_item ->> 'used_read')::bigint, 0)
         and (l.remaining, l.granted, l.revoked, l.expired, l.closed, l.rolled_over, l.valid_to)
             is distinct from
             ((v_item ->> 'remaining')::bigint, (v_item ->> 'granted')::bigint,
              coalesce((v_item ->> 'revoked')::bigint, 0), coalesce((v_item ->> 'expired')::bigint, 0),
              coalesce((v_item ->> 'closed')::boolean, false), coalesce((v_item ->> 'rolled_over')::boolean, false),
              (v_item ->> 'valid_to')::timestamptz);
      if not found then
        if exists (select 1 from public.credit_lots l
                    where (l.user_id = s.user_id or l.organization_id = s.organization_id)
                      and l.key = v_item ->> 'key'
                      and l.used <> coalesce((v_item ->> 'used_read')::bigint, 0)) then
          raise exception using errcode = 'PT409', message = 'a charge took from a lot the fold writes',
            detail = v_item ->> 'key', hint = 'fold_stale';
        end if;
        insert into public.credit_lots (user_id, organization_id, key, pool, kind, granted, remaining,
                                        valid_from, valid_to, source, subscription, revoked, expired,
                                        closed, rolled_over, used)
        values (s.user_id, s.organization_id, v_item ->> 'key', v_item ->> 'pool', v_item ->> 'kind',
                (v_item ->> 'granted')::bigint, (v_item ->> 'remaining')::bigint,
                (v_item ->> 'valid_from')::timestamptz, (v_item ->> 'valid_to')::timestamptz,
                coalesce(v_item ->> 'source', ''), v_item ->> 'subscription',
                coalesce((v_item ->> 'revoked')::bigint, 0), coalesce((v_item ->> 'expired')::bigint, 0),
                coalesce((v_item ->> 'closed')::boolean, false),
                coalesce((v_item ->> 'rolled_over')::boolean, false),
                coalesce((v_item ->> 'used_read')::bigint, 0))
        on conflict (user_id, organization_id, key) do nothing;
      end if;
    end loop;

    -- The ledger's fold-made entries (credits, refunds, expiry), whole; the entries of
    -- charges are their own facts' rows and are never rewritten.
    delete from public.credit_ledger e
     where (e.user_id = s.user_id or e.organization_id = s.organization_id) and e.kind <> 'usage';
    insert into public.credit_ledger (user_id, organization_id, source_key, pool, lot, kind, delta, at, source)
    select s.user_id, s.organization_id, v.value ->> 'key', v.value ->> 'pool', coalesce(v.value ->> 'lot', ''),
           v.value ->> 'kind', (v.value ->> 'delta')::bigint,
           coalesce((v.value ->> 'at')::timestamptz, now()), coalesce(v.value ->> 'source', '')
      from jsonb_array_elements(coalesce(v_sub -> 'ledger', '[]'::jsonb)) v
     where v.value ->> 'kind' <> 'usage';

    if s.organization_id is not null and v_sub ? 'seat_count' then
      update public.organizations set seat_count = (v_sub ->> 'seat_count')::integer, updated_at = now()
       where id = s.organization_id;
    end if;
    if s.organization_id is not null and v_sub ? 'seats' then
      for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'seats', '[]'::jsonb)) loop
        if not exists (select 1 from auth.users u where u.id = (v_item #>> '{}')::uuid) then
          v_unknown := v_unknown || ('user:' || (v_item #>> '{}'));
          continue;
        end if;
        insert into public.organization_members (organization_id, user_id)
        values (s.organization_id, (v_item #>> '{}')::uuid) on conflict do nothing;
        insert into public.seat_allocations (organization_id, user_id)
        select s.organization_id, (v_item #>> '{}')::uuid
         where not exists (select 1 from public.seat_allocations a
                            where a.organization_id = s.organization_id
                              and a.user_id = (v_item #>> '{}')::uuid and a.status = 'active');
      end loop;
      update public.seat_allocations a set status = 'released', released_at = now()
       where a.organization_id = s.organization_id and a.status = 'active'
         and not (a.user_id::text in (select jsonb_array_elements_text(coalesce(v_sub -> 'seats', '[]'::jsonb))));
    end if;
  end loop;

  v_waiting := coalesce((select array_agg(r) from jsonb_array_elements_text(p_pending -> 'waiting_for') r), '{}')
               || v_unknown;
  if p_event is not null and (coalesce((p_pending ->> 'keep')::boolean, false) or cardinality(v_unknown) > 0) then
    insert into public.pending_webhook_events (provider, event_id, event_type, object_id, reason, payload, waiting_for)
    values (p_event ->> 'provider', p_event ->> 'event_id', coalesce(p_event ->> 'event_type', ''),
            p_event ->> 'object_id',
            concat_ws('; ', nullif(p_pending ->> 'reason', ''),
                      case when cardinality(v_unknown) > 0 then 'the user is not in the database yet' end),
            coalesce(p_event -> 'payload', 'null'::jsonb), v_waiting)
    on conflict (provider, event_id) do nothing;
    v_status := 'kept';
  end if;

  -- Kept events are resolved only by a fold that wrote every subject it touched.
  if cardinality(v_unknown) = 0 then
    update public.pending_webhook_events pe set resolved_at = now()
     where pe.resolved_at is null
       and exists (select 1 from jsonb_array_elements(coalesce(p_resolved, '[]'::jsonb)) r
                    where r ->> 'provider' = pe.provider and r ->> 'event_id' = pe.event_id);
  end if;

  return jsonb_build_object('status', v_status,
    'version', (select count(*) from public.billing_facts f
                 where f.refs && (v_refs || v_new_refs) and f.fact_type <> 'usage'),
    'unknown', to_jsonb(v_unknown), 'conflicts', to_jsonb(v_conflicts));
end
$fn$;

-- Keeps a correctly signed delivery that could not be read (the core's parse error in
-- `p_reason`): it is never answered 4xx, never lost, and listed with the kept events.
create or replace function public.tollgate_keep_delivery(p_event jsonb, p_reason text)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
begin
  if coalesce(p_event ->> 'provider', '') = '' or coalesce(p_event ->> 'event_id', '') = '' then
    raise exception using errcode = '22023', message = 'event needs provider and event_id';
  end if;
  if exists (select 1 from public.webhook_events w
              where w.provider = p_event ->> 'provider' and w.event_id = p_event ->> 'event_id') then
    return jsonb_build_object('status', 'duplicate');
  end if;
  insert into public.pending_webhook_events (provider, event_id, event_type, object_id, reason, payload)
  values (p_event ->> 'provider', p_event ->> 'event_id', coalesce(p_event ->> 'event_type', ''),
          p_event ->> 'object_id', coalesce(p_reason, ''), coalesce(p_event -> 'payload', 'null'::jsonb))
  on conflict (provider, event_id) do update set reason = excluded.reason, payload = excluded.payload;
  return jsonb_build_object('status', 'kept');
end
$fn$;

-- ------------------------------------------------------------------ charges

-- The answer of a charge: its status, the usage record (what it took) and the balances.
create or replace function public.tollgate_charge_answer(p_user uuid, p_org uuid, p_status text, p_usage_id uuid)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select jsonb_build_object(
    'status', p_status,
    'usage_id', p_usage_id,
    'record', (select jsonb_build_object('request_id', u.request_id, 'units', u.units, 'model', u.model,
                                         'quality', u.quality, 'pool', u.pool, 'cost_minor', u.cost_minor,
                                         'overage_minor', u.overage_minor, 'overage_units', u.overage_units,
                                         'currency', u.currency, 'takes', u.charges, 'created_at', u.created_at)
                 from public.usage_records u where u.id = p_usage_id),
    'balances', (select coalesce(jsonb_object_agg(c.pool, c.available), '{}'::jsonb)
                   from public.credit_balances c
                  where (c.user_id = p_user or c.organization_id = p_org)))
$fn$;

-- The answer of a request id already charged (null when it was not): what a refusal is
-- checked against first, so a retry of a charged request is answered as charged even
-- when the balance is spent by now. Another request under the same id: PT409.
create or replace function public.tollgate_charge_replay(p_subject jsonb, p_request_id text, p_request_hash text)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
  v_existing record;
begin
  s := public.tollgate_subject_ids(p_subject);
  select u.id, u.request_hash, u.user_id, u.organization_id into v_existing
    from public.usage_records u where u.request_id = p_request_id;
  if not found then
    return null;
  end if;
  if v_existing.request_hash is distinct from p_request_hash
     or v_existing.user_id is distinct from s.user_id
     or v_existing.organization_id is distinct from s.organization_id then
    raise exception using errcode = 'PT409', message = 'Idempotency-Key was already used for a different request',
        hint = 'key_reused';
  end if;
  return public.tollgate_charge_answer(s.user_id, s.organization_id, 'replayed', v_existing.id);
end
$fn$;

-- Records one usage charge decided by the core (tollgate::charge), once per request id.
--   p_subject  {"user_id"} or {"organization_id"}
--   p_charge   {"request_id", "request_hash", "takes": [{"lot", "units"}],
--               "entries": [ledger entry, one per take], "record": {"units", "model",
--               "quality", "pool", "cost_minor", "overage_minor", "overage_units",
--               "currency"}, "fact": {"key", "provider", "type", "refs", "at", "fact"}}
--   p_stamp    the `stamp` of the subject state the charge was decided from; null: no check
-- Returns {"status": "charged" | "replayed", "usage_id", "record", "balances"}; or,
-- writing nothing, {"status": "stale", "state"} when the subject's state changed since
-- (its stamp differs), or {"status": "insufficient", "lot", "available", "required",
-- "state"} when a lot does not hold what the charge takes. Same request id with another
-- request: PT409 (hint key_reused). A charge whose takes and overage do not add up to its
-- units, or with a non-positive take: 22023 (refused, nothing written).
-- Each take is `UPDATE ... SET remaining = remaining - x, used = used + x WHERE id = ...
-- AND remaining >= x`: a lot can never go negative, whatever the concurrency. The takes
-- come last, so the lot's row lock is held for them and the commit only; a lot emptied
-- by a concurrent charge between the check and the take aborts the charge (PT409, hint
-- lot_short), and the worker decides again from fresh lots.
create or replace function public.tollgate_charge(p_subject jsonb, p_charge jsonb, p_stamp text default null)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_request_id text := p_charge ->> 'request_id';
  v_usage_id uuid;
  v_replay jsonb;
  v_take jsonb;
  v_units bigint;
  v_taken bigint := 0;
  v_available bigint;
  v_lot_id bigint;
  v_lot_ids bigint[] := '{}';
  v_i integer := 0;
  v_state jsonb;
  v_record jsonb := coalesce(p_charge -> 'record', '{}'::jsonb);
  v_fact jsonb := p_charge -> 'fact';
  v_takes jsonb := coalesce(p_charge -> 'takes', '[]'::jsonb);
  v_balances jsonb;
begin
  s := public.tollgate_subject_ids(p_subject);
  if coalesce(v_request_id, '') = '' or coalesce(p_charge ->> 'request_hash', '') = '' then
    raise exception using errcode = '22023', message = 'a charge needs request_id and request_hash';
  end if;

  v_replay := public.tollgate_charge_replay(p_subject, v_request_id, p_charge ->> 'request_hash');
  if v_replay is not null then
    return v_replay;
  end if;

  for v_take in select * from jsonb_array_elements(v_takes) loop
    v_units := (v_take ->> 'units')::bigint;
    if coalesce(v_take ->> 'lot', '') = '' or v_units is null or v_units <= 0 then
      raise exception using errcode = '22023', message = 'each take needs a lot and positive units';
    end if;
    v_taken := v_taken + v_units;
  end loop;
  if (v_record ->> 'units')::bigint is null or (v_record ->> 'units')::bigint <= 0
     or v_taken + coalesce((v_record ->> 'overage_units')::bigint, 0) <> (v_record ->> 'units')::bigint then
    raise exception using errcode = '22023',
      message = 'a charge must account for its units: takes plus overage units equal units';
  end if;
  if v_fact is null or v_fact ->> 'key' is distinct from 'usage:' || v_request_id then
    raise exception using errcode = '22023', message = 'a charge carries its own fact, keyed usage:<request_id>';
  end if;

  if p_stamp is not null then
    v_state := public.tollgate_subject_state(p_subject, 'usage:' || v_request_id);
    if v_state ->> 'stamp' is distinct from p_stamp then
      return jsonb_build_object('status', 'stale', 'state', v_state);
    end if;
  end if;

  -- Each lot must hold its take now (read without a lock; checked again by the take).
  for v_take in select * from jsonb_array_elements(v_takes) loop
    select l.id, l.remaining into v_lot_id, v_available from public.credit_lots l
     where (l.user_id = s.user_id or l.organization_id = s.organization_id)
       and l.key = v_take ->> 'lot' and not l.closed;
    if v_lot_id is null or v_available < (v_take ->> 'units')::bigint then
      return jsonb_build_object('status', 'insufficient', 'lot', v_take ->> 'lot',
                                'available', coalesce(v_available, 0), 'required', (v_take ->> 'units')::bigint,
                                'state', public.tollgate_subject_state(p_subject, 'usage:' || v_request_id));
    end if;
    v_lot_ids := v_lot_ids || v_lot_id;
    v_lot_id := null;
  end loop;

  insert into public.usage_records (request_id, user_id, organization_id, request_hash, units, model, quality,
                                    cost_minor, overage_minor, overage_units, pool, currency, charges)
  values (v_request_id, s.user_id, s.organization_id, p_charge ->> 'request_hash',
          (v_record ->> 'units')::bigint, v_record ->> 'model', v_record ->> 'quality',
          coalesce((v_record ->> 'cost_minor')::bigint, 0), coalesce((v_record ->> 'overage_minor')::bigint, 0),
          coalesce((v_record ->> 'overage_units')::bigint, 0), v_record ->> 'pool',
          v_record ->> 'currency', v_takes)
  on conflict (request_id) do nothing
  returning id into v_usage_id;

  if v_usage_id is null then
    -- The same request id committed concurrently: answered like a retry.
    return public.tollgate_charge_replay(p_subject, v_request_id, p_charge ->> 'request_hash');
  end if;

  insert into public.credit_ledger (user_id, organization_id, source_key, pool, lot, kind, delta, at, source)
  select s.user_id, s.organization_id, e.value ->> 'key', e.value ->> 'pool', e.value ->> 'lot', 'usage',
         (e.value ->> 'delta')::bigint, coalesce((e.value ->> 'at')::timestamptz, now()),
         coalesce(e.value ->> 'source', '')
    from jsonb_array_elements(coalesce(p_charge -> 'entries', '[]'::jsonb)) e;

  insert into public.billing_facts (fact_key, provider, event_id, fact_type, refs, at, fact)
  values (v_fact ->> 'key', coalesce(v_fact ->> 'provider', 'app'), '', 'usage',
          coalesce((select array_agg(r) from jsonb_array_elements_text(v_fact -> 'refs') r), '{}'::text[]),
          (v_fact ->> 'at')::timestamptz, v_fact -> 'fact');

  -- The answer is made before the takes, so nothing but the takes and the commit runs
  -- under the lots' row locks: the record as stored, and the balances as this charge saw
  -- them (read before its takes, less what it takes; a concurrent charge may have taken
  -- more meanwhile).
  select coalesce(jsonb_object_agg(c.pool, c.available - coalesce(t.units, 0)), '{}'::jsonb) into v_balances
    from public.credit_balances c
    left join (select v_record ->> 'pool' as pool, v_taken as units) t on t.pool = c.pool
   where (c.user_id = s.user_id or c.organization_id = s.organization_id);

  -- The takes, last: every charge on a balance waits for the row lock of the lot it draws
  -- from, so the lock is held for these updates and the commit only.
  for v_take in select * from jsonb_array_elements(v_takes) loop
    v_i := v_i + 1;
    v_units := (v_take ->> 'units')::bigint;
    update public.credit_lots l set remaining = l.remaining - v_units, used = l.used + v_units, updated_at = now()
     where l.id = v_lot_ids[v_i] and not l.closed and l.remaining >= v_units;
    if not found then
      raise exception using errcode = 'PT409', message = 'a lot no longer holds what the charge takes',
        detail = v_take ->> 'lot', hint = 'lot_short';
    end if;
  end loop;

  return jsonb_build_object('status', 'charged', 'usage_id', v_usage_id,
    'record', v_record || jsonb_build_object('request_id', v_request_id, 'takes', v_takes, 'created_at', now()),
    'balances', v_balances);
end
$fn$;

-- The balance of a subject's pool follows each change of a lot by its difference (an
-- update of one balance row, not a sum over the lots), in the same transaction. Replaces
-- the form of 20261125000300, which summed the subject's lots on every change.
create or replace function public.tollgate_sync_balance() returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
  v_delta bigint;
begin
  if tg_op = 'UPDATE' and new.pool = old.pool
     and new.user_id is not distinct from old.user_id
     and new.organization_id is not distinct from old.organization_id then
    v_delta := (case when new.closed then 0 else new.remaining end)
             - (case when old.closed then 0 else old.remaining end);
    if v_delta = 0 then
      return null;
    end if;
    update public.credit_balances b set available = b.available + v_delta, updated_at = now()
     where (b.user_id = new.user_id or b.organization_id = new.organization_id) and b.pool = new.pool;
    if found then
      return null;
    end if;
  end if;
  insert into public.credit_balances as b (user_id, organization_id, pool, available, updated_at)
  select new.user_id, new.organization_id, new.pool,
         coalesce(sum(l.remaining) filter (where not l.closed), 0), now()
    from public.credit_lots l
   where (l.user_id = new.user_id or l.organization_id = new.organization_id) and l.pool = new.pool
  on conflict (user_id, organization_id, pool) do update set available = excluded.available, updated_at = now();
  return null;
end
$fn$;


-- ------------------------------------------------------------------ housekeeping

-- Lapsed rows up to `p_now`, after (`p_after_at`, `p_after_id`) in (at, id) order: open
-- credit lots past their end, and grants given by hand (manual_grant, promotion) whose
-- window closed while they still say active. Both are work for a fold (it closes them),
-- so both sets shrink as the scheduled job refolds their subjects; the job pages through
-- them all on every run, so rows it could not fold never hide the others.
-- Returns [{"at", "id", "kind", "user_id", "organization_id"}].
create or replace function public.tollgate_lapsed(p_now timestamptz, p_after_at timestamptz default null,
                                                  p_after_id text default '', p_limit integer default 500)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(to_jsonb(x) order by x.at, x.id), '[]'::jsonb)
    from (select * from (
            select l.valid_to as at, 'lot:' || lpad(l.id::text, 20, '0') as id, 'lot' as kind,
                   l.user_id, l.organization_id
              from public.credit_lots l
             where l.valid_to is not null and not l.closed and l.valid_to <= p_now
               and (p_after_at is null or l.valid_to >= p_after_at)
               and (p_after_at is null or (l.valid_to, 'lot:' || lpad(l.id::text, 20, '0')) > (p_after_at, coalesce(p_after_id, '')))
            union all
            select g.valid_to, 'grant:' || lpad(g.id::text, 20, '0'), 'grant', g.user_id, g.organization_id
              from public.cloud_entitlements g
             where g.valid_to is not null and g.valid_to <= p_now
               and g.source in ('manual_grant', 'promotion') and g.status in ('active', 'trial', 'past_due')
               and (p_after_at is null or g.valid_to >= p_after_at)
               and (p_after_at is null or (g.valid_to, 'grant:' || lpad(g.id::text, 20, '0')) > (p_after_at, coalesce(p_after_id, '')))
          ) y
          order by y.at, y.id
          limit greatest(1, least(coalesce(p_limit, 500), 5000))) x
$fn$;

-- ------------------------------------------------------------------ privileges

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_usage_stamp(jsonb)',
    'public.tollgate_cluster_usage(text[])',
    'public.tollgate_subject_exists(jsonb)',
    'public.tollgate_fold_input(text[], integer)',
    'public.tollgate_apply_fold(jsonb, jsonb, bigint, text[], jsonb, jsonb, jsonb)',
    'public.tollgate_keep_delivery(jsonb, text)',
    'public.tollgate_charge(jsonb, jsonb, text)',
    'public.tollgate_charge_answer(uuid, uuid, text, uuid)',
    'public.tollgate_charge_replay(jsonb, text, text)',
    'public.tollgate_lapsed(timestamptz, timestamptz, text, integer)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
