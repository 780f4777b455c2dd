-- tollgate: a charge is one row and its takes.
--
-- A usage record is the charge's fact: its request id, its units, its overage and the
-- lots it took from, unit for unit (`charges`). Until now a charge also wrote the same
-- takes again as ledger entries and as a `usage` billing fact, and every lot change also
-- updated the subject's balance row; on a busy balance those writes were most of the
-- charge's cost and all of them waited on the same row locks. From here on:
--   * tollgate_charge writes the usage record and the lots' takes, nothing else;
--   * the ledger of a subject is the view `credit_statement`: the entries folds write
--     (`credit_ledger`: purchases, renewals, rollovers, adjustments, refunds, expiries)
--     and one entry per take of every charge, derived from the usage records with the
--     keys the core gives them (`usage:<request id>:<lot>`, source `usage:<request id>`);
--   * `credit_balances` is a view: the sum of a subject's open lots per pool.
-- Usage records written before this migration have their takes in `credit_ledger`
-- already (`in_ledger`), so the statement never shows a take twice.
-- Idempotent: safe to apply to an empty database and again on top of itself.

-- ------------------------------------------------------------------ charges' takes

do $in_ledger$
begin
  if not exists (select 1 from information_schema.columns
                  where table_schema = 'public' and table_name = 'usage_records' and column_name = 'in_ledger') then
    -- Every record already stored wrote its ledger entries; every later one does not.
    alter table public.usage_records add column in_ledger boolean not null default true;
    alter table public.usage_records alter column in_ledger set default false;
  end if;
end
$in_ledger$;

-- A charge is final (`charged`), or a hold (`held` until `hold_until`) that is then
-- `captured` (final) or `released` (its takes given back, `settled_at`).
alter table public.usage_records add column if not exists status text not null default 'charged';
alter table public.usage_records add column if not exists hold_until timestamptz;
alter table public.usage_records add column if not exists settled_at timestamptz;
alter table public.usage_records drop constraint if exists usage_records_status_check;
alter table public.usage_records add constraint usage_records_status_check
  check (status in ('charged', 'held', 'captured', 'released') and (status <> 'held' or hold_until is not null));
create index if not exists usage_records_held_idx on public.usage_records(hold_until, id) where status = 'held';

-- ------------------------------------------------------------------ lots

-- The user or the organization a lot belongs to, as one indexed column: a charge finds
-- its lots with one statement, whichever kind of subject it charges.
alter table public.credit_lots add column if not exists owner_id uuid
  generated always as (coalesce(user_id, organization_id)) stored;
create index if not exists credit_lots_owner_key_idx on public.credit_lots(owner_id, key);

-- ------------------------------------------------------------------ balances

drop trigger if exists credit_lots_sync_balance on public.credit_lots;
drop function if exists public.tollgate_sync_balance();

do $balances$
begin
  if exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'public' and c.relname = 'credit_balances' and c.relkind = 'r') then
    drop table public.credit_balances;
  end if;
end
$balances$;

-- Available units per subject and pool: what its open lots hold. Read with the caller's
-- rights (row level security of credit_lots applies).
create or replace view public.credit_balances with (security_invoker = on) as
select l.user_id, l.organization_id, l.pool,
       (coalesce(sum(l.remaining) filter (where not l.closed), 0))::bigint as available,
       max(l.updated_at) as updated_at
  from public.credit_lots l
 group by l.user_id, l.organization_id, l.pool;

-- ------------------------------------------------------------------ the ledger

-- Every movement of a subject's credits: folds' entries, charges' takes, and what a
-- released hold gave back (`release:<request id>:<lot>`). Read with the caller's rights
-- (row level security of credit_ledger and usage_records applies).
create or replace view public.credit_statement with (security_invoker = on) as
select e.user_id, e.organization_id, e.source_key, e.pool, e.lot, e.kind, e.delta, e.at, e.source, e.created_at
  from public.credit_ledger e
union all
select u.user_id, u.organization_id, 'usage:' || u.request_id || ':' || (t.value ->> 'lot'),
       coalesce(u.pool, ''), t.value ->> 'lot', 'usage', -((t.value ->> 'units')::bigint),
       u.created_at, 'usage:' || u.request_id, u.created_at
  from public.usage_records u
 cross join lateral jsonb_array_elements(u.charges) t
 where not u.in_ledger
union all
select u.user_id, u.organization_id, 'release:' || u.request_id || ':' || (t.value ->> 'lot'),
       coalesce(u.pool, ''), t.value ->> 'lot', 'release', (t.value ->> 'units')::bigint,
       u.settled_at, 'release:' || u.request_id, u.settled_at
  from public.usage_records u
 cross join lateral jsonb_array_elements(u.charges) t
 where u.status = 'released';

revoke all on table public.credit_balances, public.credit_statement from public, anon, authenticated;
grant select on table public.credit_balances, public.credit_statement to authenticated, service_role;

-- Both views are read only. Without a trigger PostgreSQL refuses a write to them as "not
-- automatically updatable" before it looks at privileges (a 500 through the REST API);
-- with one, a write is refused for what it is: no privilege (401/403), and this error
-- for anyone who holds one.
create or replace function public.tollgate_read_only() returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  raise exception using errcode = '42501',
    message = format('%s is read only: it is derived from the credit lots, the ledger and the usage records', tg_table_name);
end
$fn$;
revoke all on function public.tollgate_read_only() from public, anon, authenticated;
drop trigger if exists credit_balances_read_only on public.credit_balances;
create trigger credit_balances_read_only instead of insert or update or delete on public.credit_balances
  for each row execute function public.tollgate_read_only();
drop trigger if exists credit_statement_read_only on public.credit_statement;
create trigger credit_statement_read_only instead of insert or update or delete on public.credit_statement
  for each row execute function public.tollgate_read_only();

-- ------------------------------------------------------------------ the charge

-- Records one usage charge decided by the core (tollgate::charge), once per request id.
--   p_subject  {"user_id"} or {"organization_id"}
--   p_charge   {"request_id", "request_hash", "takes": [{"lot", "units"}], "record":
--               {"units", "model", "quality", "pool", "cost_minor", "overage_minor",
--               "overage_units", "currency"}, "overage_cap": {"counter", "limit", "since"},
--               "hold_until"}
--              (the cap, for a charge with overage: its overage is added to the subject's
--              counter of the billing period that starts at `since`, in usage_counters of
--              20261205000100, never past `limit`; PT409 hint overage_cap when it would)
--              (`hold_until`: a hold, credits only, released by tollgate_release unless
--              captured first: see 20261205000300)
--   p_stamp    the stamp of the state the charge was decided from, or null: when given
--              and the subject's state moved since, nothing is written and the answer is
--              {"status": "stale", "state"}.
-- Answers {"status": "charged", "usage_id", "created_at", "lots": {"<lot>": remaining
-- after the take}} (the caller has the record it sent; the worker counts the balances from
-- its state and these), or, for a request id charged before, tollgate_charge_replay's
-- answer (with the record as stored). A take a lot no longer
-- holds rolls the whole charge back (PT409, hint lot_short); another request under the
-- same request id is PT409 key_reused.
-- Two statements: the record, then the takes, so a lot's row lock is held from its take
-- to the commit only. Replaces the form of 20261204000000, which also wrote ledger
-- entries, a fact and (by trigger) a balance row, and read the balances back.
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
    update public.credit_lots l
       set remaining = l.remaining - v_take_units, used = l.used + v_take_units, updated_at = now()
     where l.owner_id = coalesce(v_user, v_org) and l.key = v_take ->> 'lot'
       and not l.closed and l.remaining >= v_take_units
    returning l.remaining into v_left;
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
