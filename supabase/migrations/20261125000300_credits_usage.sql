-- tollgate: credits and usage (seeds 002 and 003).
--
--   credit_lots       credits per source (the core's credits::Lot), remaining >= 0;
--   credit_balances   available units per subject and pool (sum of open lots); never
--                     negative (CHECK);
--   credit_ledger     every change of a lot, keyed by its source (event, payment,
--                     usage request id) so a replay cannot count twice;
--   usage_records     one row per charged request id (Idempotency-Key);
--   usage_preferences seed 002's overage opt-in and cap, per subject.
-- Lots change only through tollgate_apply_event, tollgate_consume and tollgate_admin_grant,
-- which write the lot, its ledger entry and (by trigger) the balance in one transaction.
-- Idempotent: safe to apply to an empty database and again on top of itself.

-- Credits are held in lots (one per source: a period's allowance, its rollover, a token
-- purchase, the free amount, an adjustment), exactly as the core's `credits::Wallet`
-- models them; the balance of a pool is what its open lots hold.
create table if not exists public.credit_lots (
  id bigserial primary key,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  key text not null,
  pool text not null,
  kind text not null,
  granted bigint not null,
  remaining bigint not null,
  valid_from timestamptz not null,
  valid_to timestamptz,
  source text not null default '',
  subscription text,
  revoked bigint not null default 0,
  expired bigint not null default 0,
  closed boolean not null default false,
  rolled_over boolean not null default false,
  updated_at timestamptz not null default now()
);
alter table public.credit_lots drop constraint if exists credit_lots_subject_check;
alter table public.credit_lots add constraint credit_lots_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.credit_lots drop constraint if exists credit_lots_remaining_check;
alter table public.credit_lots add constraint credit_lots_remaining_check check (remaining >= 0);
alter table public.credit_lots drop constraint if exists credit_lots_kind_check;
alter table public.credit_lots add constraint credit_lots_kind_check
  check (kind in ('allowance', 'rollover', 'purchase', 'free', 'adjustment'));
alter table public.credit_lots drop constraint if exists credit_lots_key_key;
alter table public.credit_lots add constraint credit_lots_key_key
  unique nulls not distinct (user_id, organization_id, key);
create index if not exists credit_lots_pool_idx on public.credit_lots(user_id, organization_id, pool);
create index if not exists credit_lots_organization_id_idx
  on public.credit_lots(organization_id) where organization_id is not null;

-- Available units per subject and pool: the sum of the open lots, kept by a trigger in
-- the same transaction as every lot change. Never negative.
create table if not exists public.credit_balances (
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  pool text not null,
  available bigint not null default 0,
  updated_at timestamptz not null default now()
);
alter table public.credit_balances drop constraint if exists credit_balances_available_check;
alter table public.credit_balances add constraint credit_balances_available_check check (available >= 0);
alter table public.credit_balances drop constraint if exists credit_balances_subject_check;
alter table public.credit_balances add constraint credit_balances_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.credit_balances drop constraint if exists credit_balances_pool_key;
alter table public.credit_balances add constraint credit_balances_pool_key
  unique nulls not distinct (user_id, organization_id, pool);
create index if not exists credit_balances_organization_id_idx
  on public.credit_balances(organization_id) where organization_id is not null;

create or replace function public.tollgate_sync_balance() returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  insert into public.credit_balances as b (user_id, organization_id, pool, available, updated_at)
  select new.user_id, new.organization_id, new.pool,
         coalesce(sum(l.remaining) filter (where not l.closed), 0), now()
    from public.credit_lots l
   where (l.user_id = new.user_id
     or l.organization_id = new.organization_id)
     and l.pool = new.pool
  on conflict (user_id, organization_id, pool) do update
    set available = excluded.available, updated_at = now();
  return null;
end
$fn$;
drop trigger if exists credit_lots_sync_balance on public.credit_lots;
create trigger credit_lots_sync_balance after insert or update on public.credit_lots
  for each row execute function public.tollgate_sync_balance();

-- Every change of a lot, keyed by its source (`usage:<request id>:<lot>`,
-- `expire:<lot>`, the lot key for its credit): unique per subject, so a replay cannot
-- count twice. `delta` 0 marks a key as used when nothing moved.
create table if not exists public.credit_ledger (
  id bigserial primary key,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  source_key text not null,
  pool text not null,
  lot text not null default '',
  kind text not null,
  delta bigint not null,
  at timestamptz not null,
  source text not null default '',
  created_at timestamptz not null default now()
);
alter table public.credit_ledger drop constraint if exists credit_ledger_subject_check;
alter table public.credit_ledger add constraint credit_ledger_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.credit_ledger drop constraint if exists credit_ledger_kind_check;
alter table public.credit_ledger add constraint credit_ledger_kind_check
  check (kind in ('allowance', 'rollover', 'purchase', 'free', 'adjustment', 'usage', 'expire', 'revoke'));
alter table public.credit_ledger drop constraint if exists credit_ledger_source_key_key;
alter table public.credit_ledger add constraint credit_ledger_source_key_key
  unique nulls not distinct (user_id, organization_id, source_key);
create index if not exists credit_ledger_user_id_idx on public.credit_ledger(user_id, created_at);
create index if not exists credit_ledger_organization_id_idx
  on public.credit_ledger(organization_id, created_at) where organization_id is not null;
-- Byte order (collation "C"), so that one request's entries (`<key>`, `<key>:<part>`)
-- are a range scan: tollgate_subject_state(p_subject, p_ledger_key).
create index if not exists credit_ledger_source_key_c_idx on public.credit_ledger((source_key collate "C"));

create table if not exists public.usage_records (
  id uuid primary key default gen_random_uuid(),
  request_id text not null,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  -- A digest of the request, so a reused Idempotency-Key with another body is refused.
  request_hash text not null,
  units bigint not null,
  model text,
  quality text,
  cost_minor bigint not null default 0,
  overage_minor bigint not null default 0,
  currency text,
  charges jsonb not null default '[]'::jsonb,
  created_at timestamptz not null default now()
);
alter table public.usage_records drop constraint if exists usage_records_subject_check;
alter table public.usage_records add constraint usage_records_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.usage_records drop constraint if exists usage_records_amounts_check;
alter table public.usage_records add constraint usage_records_amounts_check
  check (units > 0 and cost_minor >= 0 and overage_minor >= 0);
alter table public.usage_records drop constraint if exists usage_records_request_id_key;
alter table public.usage_records add constraint usage_records_request_id_key unique (request_id);
create index if not exists usage_records_user_id_idx on public.usage_records(user_id, created_at);
create index if not exists usage_records_organization_id_idx
  on public.usage_records(organization_id, created_at) where organization_id is not null;

create table if not exists public.usage_preferences (
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  allow_overages boolean not null default false,
  -- Cap on overage spend, integer minor units (seed 002: 100 USD).
  overage_limit_minor bigint not null default 10000,
  updated_at timestamptz not null default now()
);
alter table public.usage_preferences drop constraint if exists usage_preferences_subject_check;
alter table public.usage_preferences add constraint usage_preferences_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.usage_preferences drop constraint if exists usage_preferences_limit_check;
alter table public.usage_preferences add constraint usage_preferences_limit_check
  check (overage_limit_minor >= 0);
alter table public.usage_preferences drop constraint if exists usage_preferences_subject_key;
alter table public.usage_preferences add constraint usage_preferences_subject_key
  unique nulls not distinct (user_id, organization_id);
create index if not exists usage_preferences_organization_id_idx
  on public.usage_preferences(organization_id) where organization_id is not null;
