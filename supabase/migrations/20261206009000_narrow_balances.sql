-- tollgate: a lot's balance on its own narrow row, and usage records without foreign keys.
--
-- Every charge of a subject updates the balance of the lot it takes from, so on a busy
-- subject that one row is where concurrent charges queue. It was a row of credit_lots:
-- about twenty columns, a long key, six indexes, checks and a generated column, all
-- copied and checked again on each charge's new version of the row. From here on:
--   * credit_lot_terms (the former table, renamed) holds what a lot is: its key, pool,
--     kind, grant, validity, source, revocation, whether it is closed and its catalog
--     version. Only folds write it.
--   * credit_lot_balances holds what moves: remaining, used, released, expired, one row
--     per lot (its id), one index. Charges, releases and folds write it.
--   * credit_lots is a view joining the two, with the same columns as the table had, so
--     every reader (the functions below and before, the REST API, apps' queries) reads
--     what it read; writing to it is refused (it was writable by the service role only).
--   * usage_records no longer has foreign keys to auth.users and organizations: checking
--     one locked the user's row for every charge, the second queue on a busy subject.
--     Deleting a user or an organization still deletes its usage records (triggers below),
--     and a charge is only written for a subject that holds the lots or the overage
--     counter it takes from, whose foreign keys remain.
-- tollgate_charge, tollgate_release and tollgate_apply_fold are redefined to write the two
-- tables (the forms of 20261205000000, 20261206008000 and 20261206005000). Two more changes
-- of the fold come with it (see their sections): a fact told again earlier replaces the
-- telling stored, and a subscription's trial end is stored for the scheduled run.
-- Idempotent: safe to apply to an empty database and again on top of itself.

-- ------------------------------------------------------------------ the split

do $split$
begin
  if exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'public' and c.relname = 'credit_lots' and c.relkind = 'r') then
    -- credit_balances reads the columns that move; it is defined again over the view below.
    drop view if exists public.credit_balances;
    alter table public.credit_lots rename to credit_lot_terms;
    create table public.credit_lot_balances (
      lot_id bigint primary key references public.credit_lot_terms(id) on delete cascade,
      remaining bigint not null,
      used bigint not null default 0,
      released bigint not null default 0,
      expired bigint not null default 0,
      updated_at timestamptz not null default now(),
      constraint credit_lot_balances_amounts_check
        check (remaining >= 0 and used >= 0 and released >= 0 and expired >= 0)
    );
    insert into public.credit_lot_balances (lot_id, remaining, used, released, expired, updated_at)
    select t.id, t.remaining, t.used, t.released, t.expired, t.updated_at from public.credit_lot_terms t;
    alter table public.credit_lot_terms
      drop column remaining, drop column used, drop column released, drop column expired,
      drop column updated_at;
  end if;
end
$split$;

-- A lot as it was: its terms and its balance. Read with the caller's rights.
create or replace view public.credit_lots with (security_invoker = on) as
select t.id, t.user_id, t.organization_id, t.key, t.pool, t.kind, t.granted, b.remaining, t.valid_from,
       t.valid_to, t.source, t.subscription, t.revoked, b.expired, t.closed, t.rolled_over, b.updated_at,
       b.used, t.owner_id, t.catalog_version, b.released
  from public.credit_lot_terms t
  join public.credit_lot_balances b on b.lot_id = t.id;

-- Available units per subject and pool: what its open lots hold (as in 20261205000000).
create or replace view public.credit_balances with (security_invoker = on) as
select l.user_id, l.organization_id, l.pool,
       (coalesce(sum(l.remaining) filter (where not l.closed), 0))::bigint as available,
       max(l.updated_at) as updated_at
  from public.credit_lots l
 group by l.user_id, l.organization_id, l.pool;

-- Rights: the service role writes both tables; a signed-in user reads the lots of its own
-- and its organizations' (the terms' policy of 20261125000400; a balance is readable when
-- its lot's terms are).
alter table public.credit_lot_balances enable row level security;
revoke all on table public.credit_lot_balances, public.credit_lots, public.credit_balances from public, anon, authenticated;
grant select, insert, update, delete on table public.credit_lot_balances to service_role;
grant select on table public.credit_lots, public.credit_balances to service_role;
grant select on table public.credit_lot_balances, public.credit_lots, public.credit_balances to authenticated;
drop policy if exists tollgate_read_own on public.credit_lot_balances;
create policy tollgate_read_own on public.credit_lot_balances for select to authenticated
  using (exists (select 1 from public.credit_lot_terms t where t.id = lot_id));

drop trigger if exists credit_balances_read_only on public.credit_balances;
create trigger credit_balances_read_only instead of insert or update or delete on public.credit_balances
  for each row execute function public.tollgate_read_only();
drop trigger if exists credit_lots_read_only on public.credit_lots;
create trigger credit_lots_read_only instead of insert or update or delete on public.credit_lots
  for each row execute function public.tollgate_read_only();

-- ------------------------------------------------------------------ usage records

alter table public.usage_records drop constraint if exists usage_records_user_id_fkey;
alter table public.usage_records drop constraint if exists usage_records_organization_id_fkey;

-- What the foreign keys' cascade did: a deleted user or organization takes its usage
-- records with it. Runs as the owner, whoever deletes (Supabase's auth service deletes
-- users).
create or replace function public.tollgate_forget_usage() returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
  if tg_table_name = 'users' then
    delete from public.usage_records r where r.user_id = old.id;
  else
    delete from public.usage_records r where r.organization_id = old.id;
  end if;
  return old;
end
$fn$;
revoke all on function public.tollgate_forget_usage() from public, anon, authenticated;
drop trigger if exists tollgate_forget_usage on auth.users;
create trigger tollgate_forget_usage after delete on auth.users
  for each row execute function public.tollgate_forget_usage();
drop trigger if exists tollgate_forget_usage on public.organizations;
create trigger tollgate_forget_usage after delete on public.organizations
  for each row execute function public.tollgate_forget_usage();

-- ------------------------------------------------------------------ the charge

-- Records one usage charge decided by the core (tollgate::charge), once per request id:
-- as in 20261205000000, taking from the lots' balance rows.
create or replace function public.tollgate_charge(p_subject jsonb, p_charge jsonb, p_stamp text default null)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_user uuid := nullif(p_subject ->> 'user_id', '')::uuid;
  v_org uuid := nullif(p_subject ->> 'organization_id', '')::uuid;
  v_request_id text := p_charge ->> 'request_id';
  v_record jsonb := coalesce(p_charge -> 'record', '{}'::jsonb);
  v_takes jsonb := coalesce(p_charge -> 'takes', '[]'::jsonb);
  v_units bigint := (v_record ->> 'units')::bigint;
  v_take jsonb;
  v_take_units bigint;
  v_taken bigint := 0;
  v_left bigint;
  v_lots jsonb := '{}'::jsonb;
  v_usage_id uuid;
  v_at timestamptz;
  v_state jsonb;
  v_overage bigint := coalesce((v_record ->> 'overage_minor')::bigint, 0);
  v_hold_until timestamptz := (p_charge ->> 'hold_until')::timestamptz;
  v_cap jsonb := p_charge -> 'overage_cap';
  v_spent bigint;
begin
  -- (The subject is read here rather than by tollgate_subject_ids: one function call
  -- less on every charge.)
  if num_nonnulls(v_user, v_org) <> 1 then
    raise exception using errcode = '22023', message = 'subject must name exactly one of user_id and organization_id';
  end if;
  if coalesce(v_request_id, '') = '' or coalesce(p_charge ->> 'request_hash', '') = '' then
    raise exception using errcode = '22023', message = 'a charge needs request_id and request_hash';
  end if;
  if jsonb_typeof(v_takes) <> 'array' then
    raise exception using errcode = '22023', message = 'takes must be an array of {"lot", "units"}';
  end if;
  for i in 0 .. jsonb_array_length(v_takes) - 1 loop
    v_take := v_takes -> i;
    v_take_units := (v_take ->> 'units')::bigint;
    if coalesce(v_take ->> 'lot', '') = '' or v_take_units is null or v_take_units <= 0 then
      raise exception using errcode = '22023', message = 'each take needs a lot and positive units';
    end if;
    v_taken := v_taken + v_take_units;
  end loop;
  if v_units is null or v_units <= 0 or v_taken + coalesce((v_record ->> 'overage_units')::bigint, 0) <> v_units then
    raise exception using errcode = '22023',
      message = 'a charge must account for its units: takes plus overage units equal units';
  end if;

  if p_stamp is not null then
    v_state := public.tollgate_subject_state(p_subject, 'usage:' || v_request_id);
    if v_state ->> 'stamp' is distinct from p_stamp then
      return jsonb_build_object('status', 'stale', 'state', v_state);
    end if;
  end if;

  if v_hold_until is not null and v_overage > 0 then
    raise exception using errcode = '22023', message = 'a hold takes credits only, never overage';
  end if;
  insert into public.usage_records (request_id, user_id, organization_id, request_hash, units, model, quality,
                                    cost_minor, overage_minor, overage_units, pool, currency, charges,
                                    status, hold_until)
  values (v_request_id, v_user, v_org, p_charge ->> 'request_hash', v_units,
          v_record ->> 'model', v_record ->> 'quality',
          coalesce((v_record ->> 'cost_minor')::bigint, 0), coalesce((v_record ->> 'overage_minor')::bigint, 0),
          coalesce((v_record ->> 'overage_units')::bigint, 0), v_record ->> 'pool', v_record ->> 'currency', v_takes,
          case when v_hold_until is null then 'charged' else 'held' end, v_hold_until)
  on conflict (request_id) do nothing
  returning id, created_at into v_usage_id, v_at;
  if v_usage_id is null then
    -- Charged before (a retry), or the same request id committed concurrently.
    return public.tollgate_charge_replay(p_subject, v_request_id, p_charge ->> 'request_hash');
  end if;

  -- Overage is spent against the subject's cap for its billing period: one statement on
  -- the period's counter, so concurrent charges never pass the cap together.
  if v_overage > 0 then
    if v_cap is null or coalesce(v_cap ->> 'counter', '') = '' or (v_cap ->> 'since') is null
       or (v_cap ->> 'limit') is null then
      raise exception using errcode = '22023', message = 'a charge with overage needs its overage_cap {counter, limit, since}';
    end if;
    if v_overage <= (v_cap ->> 'limit')::bigint then
      insert into public.usage_counters as c (owner_id, user_id, organization_id, limit_id, window_start, used)
      values (coalesce(v_user, v_org), v_user, v_org, v_cap ->> 'counter', (v_cap ->> 'since')::timestamptz, v_overage)
      on conflict (owner_id, limit_id, window_start) do update
         set used = c.used + excluded.used, updated_at = now()
       where c.used + excluded.used <= (v_cap ->> 'limit')::bigint
      returning c.used into v_spent;
    end if;
    if v_spent is null then
      raise exception using errcode = 'PT409', message = 'the overage would pass the cap of the billing period',
        hint = 'overage_cap';
    end if;
  end if;

  for i in 0 .. jsonb_array_length(v_takes) - 1 loop
    v_take := v_takes -> i;
    v_take_units := (v_take ->> 'units')::bigint;
    update public.credit_lot_balances b
       set remaining = b.remaining - v_take_units, used = b.used + v_take_units, updated_at = now()
     where b.lot_id = (select t.id from public.credit_lot_terms t
                        where t.owner_id = coalesce(v_user, v_org) and t.key = v_take ->> 'lot' and not t.closed)
       and b.remaining >= v_take_units
    returning b.remaining into v_left;
    if not found then
      raise exception using errcode = 'PT409', message = 'a lot no longer holds what the charge takes',
        detail = v_take ->> 'lot', hint = 'lot_short';
    end if;
    v_lots := v_lots || jsonb_build_object(v_take ->> 'lot', v_left);
  end loop;

  return jsonb_build_object('status', 'charged', 'usage_id', v_usage_id, 'created_at', v_at, 'lots', v_lots);
end
$fn$;

revoke all on function public.tollgate_charge(jsonb, jsonb, text) from public, anon, authenticated;
grant execute on function public.tollgate_charge(jsonb, jsonb, text) to service_role;

-- ------------------------------------------------------------------ a release

-- Releases the subject's hold `p_usage_id`: as in 20261206008000, giving back to the lots'
-- balance rows.
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
  v_lot bigint;
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
    -- Whether the lot is closed, read under a share lock of its terms: a fold closing it
    -- meanwhile is waited for (a closed lot holds nothing: its remaining is 0).
    v_lot := null;
    select t.id, t.closed into v_lot, v_closed from public.credit_lot_terms t
     where t.owner_id = coalesce(s.user_id, s.organization_id) and t.key = v_take ->> 'lot'
       for share;
    update public.credit_lot_balances b
       set used = b.used - v_units,
           remaining = b.remaining + case when v_closed then 0 else v_units end,
           expired = b.expired + case when v_closed then v_units else 0 end,
           released = b.released + v_units,
           updated_at = now()
     where b.lot_id = v_lot and b.used >= v_units
    returning b.remaining into v_left;
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


-- ------------------------------------------------------------------ trials' ends

-- A subscription's trial end, as the core's fold says (written by tollgate_apply_fold
-- below), and the trialing subscriptions for the scheduled run, which folds again the
-- subject of each whose `trial_ending` rule turned during the last day (the core decides:
-- `alerts::turned`). Without it the alert opened only if a fold happened to run in the
-- trial's last days: no event brings that moment.
alter table public.billing_subscriptions add column if not exists trial_end timestamptz;
create index if not exists billing_subscriptions_trialing_idx on public.billing_subscriptions(provider, subscription_id)
  where status = 'trialing';

-- Trialing subscriptions, in keyset pages by (provider, subscription_id).
--   p_after  the `cursor` of the last row of the previous page
-- Returns [{"cursor", "subject", "trial_end"}].
create or replace function public.tollgate_trials(p_after text default null, p_limit integer default 200)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(x.r order by x.provider, x.subscription_id), '[]'::jsonb) from (
    select s.provider, s.subscription_id,
           jsonb_build_object(
             'cursor', s.provider || '|' || s.subscription_id,
             'subject', case when s.user_id is not null then jsonb_build_object('user_id', s.user_id)
                             else jsonb_build_object('organization_id', s.organization_id) end,
             'trial_end', s.trial_end) as r
      from public.billing_subscriptions s
     where s.status = 'trialing' and s.trial_end is not null
       and (p_after is null
            or (s.provider, s.subscription_id) > (split_part(p_after, '|', 1), substr(p_after, strpos(p_after, '|') + 1)))
     order by s.provider, s.subscription_id
     limit greatest(1, least(coalesce(p_limit, 200), 1000))
  ) x(provider, subscription_id, r)
$fn$;
revoke all on function public.tollgate_trials(text, integer) from public, anon, authenticated;
grant execute on function public.tollgate_trials(text, integer) to service_role;

-- ------------------------------------------------------------------ the fold

-- Applies a fold: as in 20261206005000, writing each lot's terms and balance, each
-- subscription's trial end, and a fact told again earlier than the telling stored over
-- it. Some provider events tell one fact at different times (every event of an open
-- Stripe dispute says it is open, under one key); the core's fold keeps the earliest
-- telling, and so does the store now, whichever arrives first: a stored fact is replaced
-- when everything but `at`, `event` and `catalog_version` (what `Fact::restates` leaves
-- out) is equal and the new telling is earlier. The worker sends such a telling, and
-- drops one that is not earlier.
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
  v_lot bigint;
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
    insert into public.billing_facts as f (fact_key, provider, event_id, fact_type, refs, at, fact)
    values (v_item ->> 'key', coalesce(v_item ->> 'provider', ''), coalesce(v_item ->> 'event', ''),
            coalesce(v_item ->> 'type', ''),
            coalesce((select array_agg(r) from jsonb_array_elements_text(v_item -> 'refs') r), '{}'),
            (v_item ->> 'at')::timestamptz, v_item -> 'fact')
    on conflict (fact_key) do update
       set at = excluded.at, fact = excluded.fact, event_id = excluded.event_id
     where excluded.at < f.at
       and (f.fact - 'at' - 'event' - 'catalog_version') = (excluded.fact - 'at' - 'event' - 'catalog_version');
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
        current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, object_version,
        trial_end)
      values (
        v_item ->> 'provider', v_item ->> 'subscription_id', s.user_id, s.organization_id,
        v_item ->> 'customer_id', v_item ->> 'offer_key', v_item ->> 'status',
        coalesce((v_item ->> 'quantity')::integer, 1),
        (v_item ->> 'current_period_start')::timestamptz, (v_item ->> 'current_period_end')::timestamptz,
        coalesce((v_item ->> 'cancel_at_period_end')::boolean, false),
        (v_item ->> 'canceled_at')::timestamptz, (v_item ->> 'ended_at')::timestamptz,
        coalesce((v_item ->> 'object_version')::bigint, 0), (v_item ->> 'trial_end')::timestamptz)
      on conflict (provider, subscription_id) do update set
        user_id = excluded.user_id, organization_id = excluded.organization_id,
        customer_id = coalesce(excluded.customer_id, bs.customer_id),
        offer_key = coalesce(excluded.offer_key, bs.offer_key),
        status = excluded.status, quantity = excluded.quantity,
        current_period_start = excluded.current_period_start,
        current_period_end = excluded.current_period_end,
        cancel_at_period_end = excluded.cancel_at_period_end,
        canceled_at = excluded.canceled_at, ended_at = excluded.ended_at,
        object_version = excluded.object_version, trial_end = excluded.trial_end, updated_at = now();
    end loop;

    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'grants', '[]'::jsonb)) loop
      perform public.tollgate_grant_upsert(s.user_id, s.organization_id, v_item);
    end loop;

    -- Lots, whole: the terms, then the balance. A balance is written only while its `used`
    -- is the total the fold read: a charge that committed in between makes this fold start
    -- again.
    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'lots', '[]'::jsonb)) loop
      v_lot := null;
      select t.id into v_lot from public.credit_lot_terms t
       where t.owner_id = coalesce(s.user_id, s.organization_id) and t.key = v_item ->> 'key';
      if v_lot is null then
        insert into public.credit_lot_terms (user_id, organization_id, key, pool, kind, granted, valid_from, valid_to,
                                             source, subscription, revoked, closed, rolled_over, catalog_version)
        values (s.user_id, s.organization_id, v_item ->> 'key', v_item ->> 'pool', v_item ->> 'kind',
                (v_item ->> 'granted')::bigint,
                (v_item ->> 'valid_from')::timestamptz, (v_item ->> 'valid_to')::timestamptz,
                coalesce(v_item ->> 'source', ''), v_item ->> 'subscription',
                coalesce((v_item ->> 'revoked')::bigint, 0), coalesce((v_item ->> 'closed')::boolean, false),
                coalesce((v_item ->> 'rolled_over')::boolean, false),
                (v_item ->> 'catalog_version')::integer)
        on conflict (user_id, organization_id, key) do nothing
        returning id into v_lot;
        if v_lot is not null then
          insert into public.credit_lot_balances (lot_id, remaining, used, expired)
          values (v_lot, (v_item ->> 'remaining')::bigint, coalesce((v_item ->> 'used_read')::bigint, 0),
                  coalesce((v_item ->> 'expired')::bigint, 0));
        end if;
        continue;
      end if;
      -- The terms first: a release reads whether the lot is closed under a share lock of
      -- its terms before it moves the balance, so both take the two rows in one order.
      update public.credit_lot_terms t set
          pool = v_item ->> 'pool', kind = v_item ->> 'kind', granted = (v_item ->> 'granted')::bigint,
          valid_from = (v_item ->> 'valid_from')::timestamptz, valid_to = (v_item ->> 'valid_to')::timestamptz,
          source = coalesce(v_item ->> 'source', ''), subscription = v_item ->> 'subscription',
          revoked = coalesce((v_item ->> 'revoked')::bigint, 0),
          closed = coalesce((v_item ->> 'closed')::boolean, false),
          rolled_over = coalesce((v_item ->> 'rolled_over')::boolean, false),
          catalog_version = (v_item ->> 'catalog_version')::integer
       where t.id = v_lot
         and (t.granted, t.revoked, t.closed, t.rolled_over, t.valid_to, t.catalog_version)
             is distinct from
             ((v_item ->> 'granted')::bigint, coalesce((v_item ->> 'revoked')::bigint, 0),
              coalesce((v_item ->> 'closed')::boolean, false), coalesce((v_item ->> 'rolled_over')::boolean, false),
              (v_item ->> 'valid_to')::timestamptz, (v_item ->> 'catalog_version')::integer);
      update public.credit_lot_balances b set
          remaining = (v_item ->> 'remaining')::bigint, expired = coalesce((v_item ->> 'expired')::bigint, 0),
          updated_at = now()
       where b.lot_id = v_lot
         and b.used = coalesce((v_item ->> 'used_read')::bigint, 0)
         and (b.remaining, b.expired)
             is distinct from
             ((v_item ->> 'remaining')::bigint, coalesce((v_item ->> 'expired')::bigint, 0));
      if not found and exists (select 1 from public.credit_lot_balances b
                                where b.lot_id = v_lot and b.used <> coalesce((v_item ->> 'used_read')::bigint, 0)) then
        raise exception using errcode = 'PT409', message = 'a charge took from a lot the fold writes',
          detail = v_item ->> 'key', hint = 'fold_stale';
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

    -- What else the fold says of the subject (its failed payments, ...), whole.
    perform public.tollgate_write_subject_extras(s.user_id, s.organization_id, v_sub);

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

revoke all on function public.tollgate_apply_fold(jsonb, jsonb, bigint, text[], jsonb, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.tollgate_apply_fold(jsonb, jsonb, bigint, text[], jsonb, jsonb, jsonb) to service_role;

-- ------------------------------------------------------------------ read only

-- The refusal of a write to a view names what the view is made of (20261205000000's
-- wording named the credit lots, which are now a view themselves).
create or replace function public.tollgate_read_only() returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  raise exception using errcode = '42501',
    message = format('%s is read only: it is derived from the lots'' terms and balances, the ledger and the usage records',
                     tg_table_name);
end
$fn$;
revoke all on function public.tollgate_read_only() from public, anon, authenticated;
