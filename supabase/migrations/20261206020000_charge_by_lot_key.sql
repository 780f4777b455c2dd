-- tollgate: a charge finds its lot's balance by the subject and the lot's key.
--
-- A charge names each lot it takes from by key. The balance's UPDATE found the row through
-- a sub-select on credit_lot_terms, planned from that table's statistics: on a small
-- project the terms were read whole and the balance through a bitmap, and each charge
-- queued behind another ran the lookup again when the one before it committed. The
-- balance row now carries its lot's owner and key, copied from the terms when the row is
-- made (neither changes after), with one index on the two; the charge's UPDATE reads that
-- index alone. A closed lot still takes nothing: its remaining is 0 (the core checks that
-- of every fold, which writes terms and balance in one transaction), and a take needs
-- remaining >= units > 0.
-- tollgate_charge is redefined: the form of 20261206009000, that one statement changed.
-- Idempotent: safe to apply to an empty database and again on top of itself.

alter table public.credit_lot_balances add column if not exists owner_id uuid;
alter table public.credit_lot_balances add column if not exists key text;

-- A new balance row takes its owner and key from its lot's terms, whoever inserts it.
create or replace function public.tollgate_balance_names() returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  select t.owner_id, t.key into new.owner_id, new.key from public.credit_lot_terms t where t.id = new.lot_id;
  return new;
end
$fn$;
revoke all on function public.tollgate_balance_names() from public, anon, authenticated;
drop trigger if exists tollgate_balance_names on public.credit_lot_balances;
create trigger tollgate_balance_names before insert on public.credit_lot_balances
  for each row execute function public.tollgate_balance_names();

update public.credit_lot_balances b set owner_id = t.owner_id, key = t.key
  from public.credit_lot_terms t
 where t.id = b.lot_id and (b.owner_id is distinct from t.owner_id or b.key is distinct from t.key);
alter table public.credit_lot_balances alter column owner_id set not null;
alter table public.credit_lot_balances alter column key set not null;
create index if not exists credit_lot_balances_owner_key_idx on public.credit_lot_balances (owner_id, key);

-- ------------------------------------------------------------------ the charge

-- Records one usage charge decided by the core (tollgate::charge), once per request id:
-- as in 20261206009000, each take's balance found by the subject and the lot's key.
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
     where b.owner_id = coalesce(v_user, v_org) and b.key = v_take ->> 'lot'
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
