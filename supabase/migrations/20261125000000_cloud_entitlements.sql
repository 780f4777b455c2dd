-- tollgate: seed 000's cloud_entitlements table, extended.
--
-- Kept from the seed: every column, the source/status checks and the three indexes.
-- Extended, on purpose:
--   * a subject is a user (seed 000) or an organization (seed 004): `user_id` stays and
--     `organization_id` joins it; exactly one of the two is set;
--   * `grant_key` is the grant's stable key from the core (`stripe:sub_123:video`), unique
--     per subject, so writing a grant is a real upsert instead of a blind insert;
--   * `razorpay` is a source (seed 003);
--   * `offer_key` (the catalog offer that granted it), `source_ref` (the provider object it
--     came from: sub_..., cs_..., pay_...) and `past_due_since` (when grace started);
--   * product and tier checks are generalised from the seed's fixed lists to identifier
--     syntax, so every shipped catalog fits (VCM Suite's lower-case clouds, seed 003's
--     `PREMIUM`, seed 004's `BUSINESS_PLUS`); the catalog, not the table, says which
--     products and tiers exist.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.cloud_entitlements (
  id uuid primary key default gen_random_uuid(),
  user_id uuid references auth.users(id) on delete cascade,
  cloud_id text not null,
  tier text not null,
  source text not null,
  status text not null,
  valid_from timestamptz default now(),
  valid_to timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

-- A table created from seed 000 has `user_id not null`; organizations need it nullable.
alter table public.cloud_entitlements alter column user_id drop not null;
alter table public.cloud_entitlements add column if not exists organization_id uuid;
alter table public.cloud_entitlements add column if not exists grant_key text;
alter table public.cloud_entitlements add column if not exists offer_key text;
alter table public.cloud_entitlements add column if not exists source_ref text;
alter table public.cloud_entitlements add column if not exists past_due_since timestamptz;

-- Rows written before grant keys existed get one derived from their id.
update public.cloud_entitlements set grant_key = 'legacy:' || id::text where grant_key is null;
alter table public.cloud_entitlements alter column grant_key set not null;

-- Seed 000's inline checks carry generated names; replace them with named ones.
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_cloud_id_check;
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_tier_check;
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_source_check;
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_status_check;
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_subject_check;
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_window_check;

alter table public.cloud_entitlements add constraint cloud_entitlements_cloud_id_check
  check (cloud_id ~ '^[A-Za-z][A-Za-z0-9_.-]{0,63}$');
alter table public.cloud_entitlements add constraint cloud_entitlements_tier_check
  check (tier ~ '^[A-Za-z][A-Za-z0-9_.-]{0,63}$');
alter table public.cloud_entitlements add constraint cloud_entitlements_source_check
  check (source in ('stripe', 'razorpay', 'manual_grant', 'bundle', 'promotion'));
alter table public.cloud_entitlements add constraint cloud_entitlements_status_check
  check (status in ('active', 'past_due', 'canceled', 'trial'));
alter table public.cloud_entitlements add constraint cloud_entitlements_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);
alter table public.cloud_entitlements add constraint cloud_entitlements_window_check
  check (valid_to is null or valid_from is null or valid_to >= valid_from);

-- One row per subject and grant key. NULLS NOT DISTINCT (PostgreSQL 15+) makes the
-- absent half of the subject compare equal, so the pair really is unique.
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_grant_key_key;
alter table public.cloud_entitlements add constraint cloud_entitlements_grant_key_key
  unique nulls not distinct (user_id, organization_id, grant_key);

create index if not exists cloud_entitlements_user_id_idx on public.cloud_entitlements(user_id);
create index if not exists cloud_entitlements_cloud_id_idx on public.cloud_entitlements(cloud_id);
create index if not exists cloud_entitlements_status_idx on public.cloud_entitlements(status);
create index if not exists cloud_entitlements_organization_id_idx
  on public.cloud_entitlements(organization_id) where organization_id is not null;
create index if not exists cloud_entitlements_valid_to_idx
  on public.cloud_entitlements(valid_to) where valid_to is not null;
