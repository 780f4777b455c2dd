-- tollgate: billing state written by the worker's webhook path.
--
--   billing_subjects        one row per subject: the optimistic-concurrency version and the
--                           core reducer's state (opaque JSON owned by the core);
--   webhook_events          processed provider events: unique event id, and dedupe on the
--                           provider object + event type + object version (Stripe sometimes
--                           sends one change as two event ids);
--   pending_webhook_events  verified events that cannot be attributed to a subject yet;
--                           kept, never dropped, and applied when attribution arrives;
--   billing_customers       provider customer -> subject;
--   billing_subscriptions   provider subscriptions as last seen (newest object version wins).
-- Every write goes through the SQL functions of 20261125000500_functions.sql.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.billing_subjects (
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  version bigint not null default 0,
  state jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.billing_subjects drop constraint if exists billing_subjects_subject_check;
alter table public.billing_subjects add constraint billing_subjects_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.billing_subjects drop constraint if exists billing_subjects_subject_key;
alter table public.billing_subjects add constraint billing_subjects_subject_key
  unique nulls not distinct (user_id, organization_id);
-- The unique key leads with user_id; an organization's row is found through this one.
create index if not exists billing_subjects_organization_id_idx
  on public.billing_subjects(organization_id) where organization_id is not null;

create table if not exists public.webhook_events (
  id bigserial primary key,
  provider text not null,
  event_id text not null,
  event_type text not null,
  object_id text,
  object_version bigint,
  user_id uuid references auth.users(id) on delete set null,
  organization_id uuid references public.organizations(id) on delete set null,
  received_at timestamptz not null default now(),
  applied_at timestamptz not null default now(),
  payload jsonb
);
alter table public.webhook_events drop constraint if exists webhook_events_provider_check;
alter table public.webhook_events add constraint webhook_events_provider_check
  check (provider in ('stripe', 'razorpay'));
alter table public.webhook_events drop constraint if exists webhook_events_event_key;
alter table public.webhook_events add constraint webhook_events_event_key unique (provider, event_id);
create unique index if not exists webhook_events_object_version_key
  on public.webhook_events(provider, object_id, event_type, object_version)
  where object_id is not null and object_version is not null;
create index if not exists webhook_events_user_id_idx on public.webhook_events(user_id);

create table if not exists public.pending_webhook_events (
  id bigserial primary key,
  provider text not null,
  event_id text not null,
  event_type text not null,
  object_id text,
  -- What attribution waits for (a customer id, a subscription id), when known.
  customer_id text,
  reason text not null default '',
  payload jsonb not null,
  received_at timestamptz not null default now(),
  attempts integer not null default 0,
  last_attempt_at timestamptz,
  last_error text,
  resolved_at timestamptz
);
alter table public.pending_webhook_events drop constraint if exists pending_webhook_events_provider_check;
alter table public.pending_webhook_events add constraint pending_webhook_events_provider_check
  check (provider in ('stripe', 'razorpay'));
alter table public.pending_webhook_events drop constraint if exists pending_webhook_events_event_key;
alter table public.pending_webhook_events add constraint pending_webhook_events_event_key
  unique (provider, event_id);
create index if not exists pending_webhook_events_open_idx
  on public.pending_webhook_events(provider, customer_id) where resolved_at is null;

create table if not exists public.billing_customers (
  provider text not null,
  customer_id text not null,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (provider, customer_id)
);
alter table public.billing_customers drop constraint if exists billing_customers_subject_check;
alter table public.billing_customers add constraint billing_customers_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
create index if not exists billing_customers_user_id_idx on public.billing_customers(user_id);
create index if not exists billing_customers_organization_id_idx
  on public.billing_customers(organization_id) where organization_id is not null;

create table if not exists public.billing_subscriptions (
  id uuid primary key default gen_random_uuid(),
  provider text not null,
  subscription_id text not null,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  customer_id text,
  offer_key text,
  status text not null,
  quantity integer not null default 1,
  current_period_start timestamptz,
  current_period_end timestamptz,
  cancel_at_period_end boolean not null default false,
  canceled_at timestamptz,
  ended_at timestamptz,
  object_version bigint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.billing_subscriptions drop constraint if exists billing_subscriptions_subject_check;
alter table public.billing_subscriptions add constraint billing_subscriptions_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.billing_subscriptions drop constraint if exists billing_subscriptions_quantity_check;
alter table public.billing_subscriptions add constraint billing_subscriptions_quantity_check
  check (quantity >= 0);
alter table public.billing_subscriptions drop constraint if exists billing_subscriptions_provider_check;
alter table public.billing_subscriptions add constraint billing_subscriptions_provider_check
  check (provider in ('stripe', 'razorpay'));
alter table public.billing_subscriptions drop constraint if exists billing_subscriptions_subscription_key;
alter table public.billing_subscriptions add constraint billing_subscriptions_subscription_key
  unique (provider, subscription_id);
create index if not exists billing_subscriptions_user_id_idx on public.billing_subscriptions(user_id);
create index if not exists billing_subscriptions_organization_id_idx
  on public.billing_subscriptions(organization_id) where organization_id is not null;
