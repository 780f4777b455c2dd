-- tollgate: credits and usage (seeds 002 and 003).
--
--   credit_balances   available units per subject and pool; never negative (CHECK);
--   credit_ledger     every change of a balance, keyed by its source (event, payment,
--                     usage request id) so a replay cannot count twice;
--   usage_records     one row per charged request id (Idempotency-Key);
--   usage_preferences seed 002's overage opt-in and cap, per subject.
-- Balances change only through tollgate_apply_event and tollgate_consume, which write the
-- ledger entry and the balance in one transaction.
-- Idempotent: safe to apply to an empty database and again on top of itself.

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

create table if not exists public.credit_ledger (
  id bigserial primary key,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  pool text not null,
  -- 0 records "this source was seen and moved nothing" (so its replay stays a no-op).
  delta bigint not null,
  balance_after bigint not null,
  source_key text not null,
  reason text not null,
  created_at timestamptz not null default now()
);
alter table public.credit_ledger drop constraint if exists credit_ledger_subject_check;
alter table public.credit_ledger add constraint credit_ledger_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.credit_ledger drop constraint if exists credit_ledger_source_key_key;
alter table public.credit_ledger add constraint credit_ledger_source_key_key unique (source_key);
create index if not exists credit_ledger_user_id_idx on public.credit_ledger(user_id, created_at);

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
