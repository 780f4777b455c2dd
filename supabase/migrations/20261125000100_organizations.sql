-- tollgate: organizations, their members and seat allocations (seed 004).
--
-- A subject is a user or an organization. Users get an organization's entitlements
-- through membership and an allocated seat; the seat count follows the subscription
-- quantity (written by the webhook path into `seat_count`). Whether an allocation is
-- allowed is the core's decision (src/seats.rs); `tollgate_allocate_seat` only makes
-- the allocation atomic under a row lock on the organization.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null default '',
  -- Seats paid for (subscription quantity x seats included per unit); 0 = none.
  seat_count integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.organizations drop constraint if exists organizations_seat_count_check;
alter table public.organizations add constraint organizations_seat_count_check check (seat_count >= 0);

create table if not exists public.organization_members (
  organization_id uuid not null references public.organizations(id) on delete cascade,
  user_id uuid not null references auth.users(id) on delete cascade,
  role text not null default 'member',
  created_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);
alter table public.organization_members drop constraint if exists organization_members_role_check;
alter table public.organization_members add constraint organization_members_role_check
  check (role in ('owner', 'admin', 'member'));
create index if not exists organization_members_user_id_idx on public.organization_members(user_id);

create table if not exists public.seat_allocations (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations(id) on delete cascade,
  user_id uuid not null references auth.users(id) on delete cascade,
  status text not null default 'active',
  allocated_at timestamptz not null default now(),
  released_at timestamptz,
  allocated_by uuid
);
alter table public.seat_allocations drop constraint if exists seat_allocations_status_check;
alter table public.seat_allocations add constraint seat_allocations_status_check
  check (status in ('active', 'released'));
-- At most one active seat per member.
create unique index if not exists seat_allocations_active_key
  on public.seat_allocations(organization_id, user_id) where status = 'active';
create index if not exists seat_allocations_user_id_idx on public.seat_allocations(user_id);

-- cloud_entitlements rows may belong to an organization.
alter table public.cloud_entitlements drop constraint if exists cloud_entitlements_organization_id_fkey;
alter table public.cloud_entitlements add constraint cloud_entitlements_organization_id_fkey
  foreign key (organization_id) references public.organizations(id) on delete cascade;

-- Membership test for row level security. SECURITY DEFINER so that policies on
-- organization_members can call it without recursing into their own policy.
create or replace function public.tollgate_is_member(p_organization_id uuid)
returns boolean
language sql stable security definer
set search_path = ''
as $fn$
  select exists (
    select 1 from public.organization_members m
    where m.organization_id = p_organization_id and m.user_id = auth.uid()
  )
$fn$;
