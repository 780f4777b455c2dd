-- =====================================================================================
-- TEST / DEV ONLY. NEVER RUN THIS AGAINST A SUPABASE PROJECT.
--
-- Recreates, on a plain Debian PostgreSQL, the pieces of a Supabase database that
-- tollgate's migrations and the local REST gateway rely on:
--   * the API roles: anon, authenticated, service_role (BYPASSRLS) and authenticator
--     (LOGIN NOINHERIT, may SET ROLE to the three);
--   * the `auth` schema pieces: auth.users, auth.uid(), auth.role(), auth.jwt(), auth.email();
--   * the `extensions` schema with pgcrypto and uuid-ossp;
--   * the grants Supabase gives the API roles on schema public (usage, and default
--     privileges on tables, sequences and functions; RLS is what protects rows).
--
-- A real Supabase project already has all of this (managed by Supabase itself); the
-- guard below refuses to run there. The script is idempotent: applying it twice is a
-- no-op. `cargo xtask` (xtask/src/stack.rs) applies it before supabase/migrations/*.sql.
-- =====================================================================================

do $guard$
begin
  if exists (select 1 from pg_roles where rolname in ('supabase_admin', 'supabase_auth_admin')) then
    raise exception 'supabase/bootstrap is for the local test/dev stack only; this database looks like a Supabase project';
  end if;
end
$guard$;

-- ---------------------------------------------------------------- roles
do $roles$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$roles$;

-- Re-assert the attributes in case a role pre-existed with different ones.
alter role anon nologin noinherit;
alter role authenticated nologin noinherit;
alter role service_role nologin noinherit bypassrls;
alter role authenticator login noinherit;

-- The gateway connects as authenticator and switches to the role named by the JWT.
grant anon, authenticated, service_role to authenticator;

-- ---------------------------------------------------------------- extensions
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;

-- ---------------------------------------------------------------- auth schema
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- The columns of Supabase's auth.users that applications commonly read or fill in.
create table if not exists auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  phone text unique default null,
  phone_confirmed_at timestamptz,
  banned_until timestamptz,
  deleted_at timestamptz,
  is_sso_user boolean not null default false,
  is_anonymous boolean not null default false
);
create index if not exists users_email_idx on auth.users (email);

-- The API roles never touch auth.users directly (as on Supabase); the service role may
-- read it so tests and admin tooling can look users up.
revoke all on auth.users from anon, authenticated;
grant select on auth.users to service_role;

-- Claims of the current request, as the gateway (like PostgREST) sets them with a
-- transaction-local set_config. After such a transaction the setting reads as '' rather
-- than NULL, so every reader goes through nullif(..., '') before casting.
create or replace function auth.jwt() returns jsonb
language sql stable
as $fn$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$fn$;

create or replace function auth.uid() returns uuid
language sql stable
as $fn$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$fn$;

create or replace function auth.role() returns text
language sql stable
as $fn$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$fn$;

create or replace function auth.email() returns text
language sql stable
as $fn$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$fn$;

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
  to anon, authenticated, service_role;

-- ---------------------------------------------------------------- schema public
-- Supabase's defaults: the API roles may use schema public, and objects the migration
-- owner creates there are granted to them; row level security decides what each sees.
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
