-- tollgate: the billing fact log and the fold's concurrency control.
--
-- The core turns provider events (and the app's own records: usage, seats, credit
-- adjustments) into facts, and folds a set of facts into entitlement state; the fold is
-- idempotent and order-independent. The worker therefore stores every fact once (by
-- its key: two deliveries, or two event ids for one change, are one fact), loads the
-- facts related to a new one (reachable through shared references: subjects,
-- customers, subscriptions, payments), folds them, and writes the resulting grants,
-- subscriptions and credit lots, all in one transaction (tollgate_apply_facts).
--
-- Concurrency: facts form clusters (facts sharing a reference: a subject, customer,
-- subscription, payment...), and a fold reads a whole cluster. Its version is the number of
-- stored facts in it (facts are never deleted). An apply locks the cluster's references and
-- then checks that the count is still the one the fold read, so two folds of one cluster
-- cannot both commit (the loser gets PT409, reloads, folds again), while folds of unrelated
-- clusters (other customers) commit side by side.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.billing_facts (
  id bigserial primary key,
  fact_key text not null,
  provider text not null,
  event_id text not null default '',
  fact_type text not null,
  refs text[] not null default '{}',
  at timestamptz not null,
  fact jsonb not null,
  created_at timestamptz not null default now()
);
alter table public.billing_facts drop constraint if exists billing_facts_fact_key_key;
alter table public.billing_facts add constraint billing_facts_fact_key_key unique (fact_key);
create index if not exists billing_facts_refs_idx on public.billing_facts using gin (refs);

-- An earlier version of this file ordered every apply by one global version number.
drop table if exists public.billing_sync;

-- Kept events remember what they wait for.
alter table public.pending_webhook_events add column if not exists waiting_for text[] not null default '{}';
create index if not exists pending_webhook_events_waiting_idx
  on public.pending_webhook_events using gin (waiting_for) where resolved_at is null;

do $rls$
begin
  alter table public.billing_facts enable row level security;
  revoke all on table public.billing_facts from public, anon, authenticated;
  grant select, insert, update, delete on table public.billing_facts to service_role;
  revoke all on sequence public.billing_facts_id_seq from public, anon, authenticated;
  grant usage, select on sequence public.billing_facts_id_seq to service_role;
end
$rls$;

-- Locks a set of fact references until the end of the transaction. References are hashed
-- into 1024 transaction-level advisory locks (class 7011), taken in ascending order so two
-- appliers never wait on each other in a cycle; every apply also holds lock (7011, -1)
-- shared. A set spanning more than 64 of them takes (7011, -1) exclusively instead, so no
-- transaction holds more than 65 locks (PostgreSQL's lock table is shared and bounded) and
-- a large cluster still excludes every apply it could meet. Two different references in
-- one bucket only make two applies wait for each other.
create or replace function public.tollgate_lock_refs(p_refs text[])
returns void
language plpgsql
set search_path = ''
as $fn$
declare
  v_buckets integer[];
  v_bucket integer;
begin
  select coalesce(array_agg(distinct hashtext(r) & 1023 order by hashtext(r) & 1023), '{}')
    into v_buckets
    from unnest(coalesce(p_refs, '{}')) r;
  if cardinality(v_buckets) > 64 then
    perform pg_advisory_xact_lock(7011, -1);
    return;
  end if;
  perform pg_advisory_xact_lock_shared(7011, -1);
  foreach v_bucket in array v_buckets loop
    perform pg_advisory_xact_lock(7011, v_bucket);
  end loop;
end
$fn$;

-- Every stored fact reachable from `p_refs` through shared references (a fixpoint over
-- the refs index): {"refs": the cluster's references, "version": how many facts the cluster
-- holds, "facts": at most `p_limit` of them, oldest first}. Stable: one snapshot for all.
create or replace function public.tollgate_related_facts(p_refs text[], p_limit integer default 20000)
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
     where f.refs && v_refs and not (r = any (v_refs));
    exit when cardinality(v_more) = 0 or v_rounds >= 64;
    v_refs := v_refs || v_more;
    v_rounds := v_rounds + 1;
  end loop;
  return jsonb_build_object(
    'version', (select count(*) from public.billing_facts f where f.refs && v_refs),
    'refs', to_jsonb(v_refs),
    'facts', coalesce((select jsonb_agg(x.fact order by x.id)
                         from (select f.id, f.fact from public.billing_facts f
                                where f.refs && v_refs order by f.id
                                limit greatest(1, coalesce(p_limit, 20000))) x), '[]'::jsonb));
end
$fn$;

-- Stores new facts and writes the fold's result for every subject it touched, in one
-- transaction.
--   p_event            the delivery {"provider", "event_id", "event_type", "object_id"?,
--                      "payload"?} or null (the app's own facts: usage, seats)
--   p_facts            [{"key", "provider", "event", "type", "refs", "at", "fact"}]
--   p_expected_version the cluster's version the fold was computed from
--   p_refs             the cluster's references (tollgate_related_facts' "refs"); when
--                      null, the new facts' references
--   p_subjects         [{"subject", "state", "grants", "wallet", "subscriptions",
--                        "customers", "seat_count"?, "seats"?}] (see tollgate_apply_event)
--   p_pending          {"keep": bool, "waiting_for": [refs], "reason": text}
--                      whether the event's facts still wait for attribution
--   p_resolved         event ids (provider, event id) of kept events the fold now applied
-- Returns {"status": "applied" | "kept" | "duplicate", "version"}: the cluster's version
-- after this apply.
drop function if exists public.tollgate_apply_facts(jsonb, jsonb, bigint, jsonb, jsonb, jsonb);
create or replace function public.tollgate_apply_facts(p_event jsonb, p_facts jsonb, p_expected_version bigint,
                                                       p_subjects jsonb, p_pending jsonb default null,
                                                       p_resolved jsonb default '[]'::jsonb,
                                                       p_refs text[] default null)
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
  -- The cluster the fold read and everything the new facts touch: another apply whose
  -- facts reach this cluster shares one of these references, so one of the two waits here
  -- for the other's commit and then sees its facts in the count below.
  perform public.tollgate_lock_refs(v_refs || v_new_refs);
  select count(*) into v_version from public.billing_facts f where f.refs && v_refs;
  if v_version <> coalesce(p_expected_version, 0) then
    raise exception using errcode = 'PT409', message = 'billing state changed concurrently',
      detail = jsonb_build_object('expected', p_expected_version, 'actual', v_version)::text,
      hint = 'reload the related facts, fold again and retry';
  end if;

  for v_item in select * from jsonb_array_elements(coalesce(p_facts, '[]'::jsonb)) loop
    insert into public.billing_facts (fact_key, provider, event_id, fact_type, refs, at, fact)
    values (v_item ->> 'key', coalesce(v_item ->> 'provider', ''), coalesce(v_item ->> 'event', ''),
            coalesce(v_item ->> 'type', ''),
            coalesce((select array_agg(r) from jsonb_array_elements_text(v_item -> 'refs') r), '{}'),
            (v_item ->> 'at')::timestamptz, v_item -> 'fact')
    on conflict (fact_key) do nothing;
  end loop;

  for v_sub in select * from jsonb_array_elements(coalesce(p_subjects, '[]'::jsonb)) loop
    s := public.tollgate_subject_ids(v_sub -> 'subject');
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

    perform public.tollgate_wallet_apply(s.user_id, s.organization_id, coalesce(v_sub -> 'wallet', '{}'::jsonb));

    if s.organization_id is not null and v_sub ? 'seat_count' then
      update public.organizations set seat_count = (v_sub ->> 'seat_count')::integer, updated_at = now()
       where id = s.organization_id;
    end if;
    if s.organization_id is not null and v_sub ? 'seats' then
      -- The fold's seat book is the truth: holders get an active seat (and membership),
      -- everyone else's active seat is released.
      for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'seats', '[]'::jsonb)) loop
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

  if p_event is not null and coalesce((p_pending ->> 'keep')::boolean, false) then
    insert into public.pending_webhook_events (provider, event_id, event_type, object_id, reason, payload, waiting_for)
    values (p_event ->> 'provider', p_event ->> 'event_id', coalesce(p_event ->> 'event_type', ''),
            p_event ->> 'object_id', coalesce(p_pending ->> 'reason', ''),
            coalesce(p_event -> 'payload', 'null'::jsonb),
            coalesce((select array_agg(r) from jsonb_array_elements_text(p_pending -> 'waiting_for') r), '{}'))
    on conflict (provider, event_id) do nothing;
    v_status := 'kept';
  end if;

  update public.pending_webhook_events pe set resolved_at = now()
   where pe.resolved_at is null
     and exists (select 1 from jsonb_array_elements(coalesce(p_resolved, '[]'::jsonb)) r
                  where r ->> 'provider' = pe.provider and r ->> 'event_id' = pe.event_id);

  return jsonb_build_object('status', v_status,
    'version', (select count(*) from public.billing_facts f where f.refs && (v_refs || v_new_refs)));
end
$fn$;

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_related_facts(text[], integer)',
    'public.tollgate_apply_facts(jsonb, jsonb, bigint, jsonb, jsonb, jsonb, text[])',
    'public.tollgate_lock_refs(text[])'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
