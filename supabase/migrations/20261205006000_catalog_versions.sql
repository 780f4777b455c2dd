-- tollgate: catalogs published as versioned data (issue 14).
--
--   * tollgate_catalogs: every version of every catalog ever pushed, one row each: the
--     catalog's id (`[catalog] id` of the file), its version (1, 2, ... per id, given by the
--     store), the document (the catalog as the core validated it, JSON), the digest of that
--     document (sha256 of its jsonb text, so the same content in TOML or JSON, in any key
--     order, has one digest), when and by whom it was published, and whether it is the
--     active one (at most one per id). A version is immutable: a trigger refuses any change
--     of its id, version, document, digest or publication, and any delete.
--   * tollgate_catalog_activations: the history of activations (push, rollback), one row
--     each, so who made which version active when is never lost.
--   * tollgate_catalog_push: stores a new version (the same content as an existing version is
--     a no-op answering that version) and, unless told not to, activates it. One lock per
--     catalog id, so two pushes never take one version number.
--   * tollgate_catalog_versions / tollgate_catalog_activate: list, and activate any version
--     (a rollback is an activation of an older one).
--   * tollgate_catalog_active: the active version with its document (anyone may read it, as
--     RLS lets anyone read the active row); tollgate_catalog_active_version: the same
--     without the document, the cheap check a worker makes to notice an activation.
-- The worker only reads; the `tollgate catalog` CLI writes, with the service role. The
-- document is validated by the core (the CLI refuses an invalid file before any call).
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.tollgate_catalogs (
  id text not null,
  version integer not null,
  document jsonb not null,
  digest text not null,
  published_at timestamptz not null default now(),
  published_by text not null default '',
  active boolean not null default false,
  primary key (id, version),
  unique (id, digest)
);
alter table public.tollgate_catalogs drop constraint if exists tollgate_catalogs_version_check;
alter table public.tollgate_catalogs add constraint tollgate_catalogs_version_check check (version >= 1);
alter table public.tollgate_catalogs drop constraint if exists tollgate_catalogs_id_check;
alter table public.tollgate_catalogs add constraint tollgate_catalogs_id_check
  check (id <> '' and id = document -> 'catalog' ->> 'id');
create unique index if not exists tollgate_catalogs_one_active on public.tollgate_catalogs(id) where active;

create table if not exists public.tollgate_catalog_activations (
  seq bigserial primary key,
  catalog_id text not null,
  version integer not null,
  activated_at timestamptz not null default now(),
  activated_by text not null default '',
  foreign key (catalog_id, version) references public.tollgate_catalogs(id, version)
);
create index if not exists tollgate_catalog_activations_catalog_idx
  on public.tollgate_catalog_activations(catalog_id, seq);

-- A version never changes once pushed: only its `active` flag moves.
create or replace function public.tollgate_catalog_immutable()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  if tg_op = 'DELETE' then
    raise exception 'catalog % version % is immutable: it cannot be deleted', old.id, old.version
      using errcode = '55000';
  end if;
  if new.id is distinct from old.id or new.version is distinct from old.version
     or new.document is distinct from old.document or new.digest is distinct from old.digest
     or new.published_at is distinct from old.published_at or new.published_by is distinct from old.published_by then
    raise exception 'catalog % version % is immutable: push a new version instead', old.id, old.version
      using errcode = '55000';
  end if;
  return new;
end
$fn$;
drop trigger if exists tollgate_catalogs_immutable on public.tollgate_catalogs;
create trigger tollgate_catalogs_immutable before update or delete on public.tollgate_catalogs
  for each row execute function public.tollgate_catalog_immutable();

alter table public.tollgate_catalogs enable row level security;
alter table public.tollgate_catalog_activations enable row level security;
revoke all on table public.tollgate_catalogs from public, anon, authenticated;
revoke all on table public.tollgate_catalog_activations from public, anon, authenticated;
grant select, insert, update on table public.tollgate_catalogs to service_role;
grant select, insert on table public.tollgate_catalog_activations to service_role;
grant usage on sequence public.tollgate_catalog_activations_seq_seq to service_role;
grant select on table public.tollgate_catalogs to anon, authenticated;
drop policy if exists tollgate_read_active on public.tollgate_catalogs;
create policy tollgate_read_active on public.tollgate_catalogs for select to anon, authenticated using (active);

-- Makes a version the active one of its catalog and records it; nothing when it already is.
create or replace function public.tollgate_catalog_set_active(p_catalog text, p_version integer, p_by text)
returns boolean
language plpgsql
set search_path = ''
as $fn$
begin
  if exists (select 1 from public.tollgate_catalogs c where c.id = p_catalog and c.version = p_version and c.active) then
    return false;
  end if;
  update public.tollgate_catalogs c set active = false where c.id = p_catalog and c.active;
  update public.tollgate_catalogs c set active = true where c.id = p_catalog and c.version = p_version;
  insert into public.tollgate_catalog_activations (catalog_id, version, activated_by)
  values (p_catalog, p_version, coalesce(p_by, ''));
  return true;
end
$fn$;

-- One version as the functions answer it.
create or replace function public.tollgate_catalog_row(c public.tollgate_catalogs)
returns jsonb
language sql
immutable
set search_path = ''
as $fn$
  select jsonb_build_object('id', c.id, 'version', c.version, 'digest', c.digest,
                            'published_at', c.published_at, 'published_by', c.published_by, 'active', c.active)
$fn$;

-- Pushes a catalog document:
--   p_document   the catalog as the core validated it (its `catalog.id` names the catalog)
--   p_by         who publishes (free text: a name, an address, a CI job)
--   p_activate   make it the active version (default true)
-- Answers the version ({id, version, digest, published_at, published_by, active, created}):
-- `created` is false when a version with the same content already existed (nothing changed).
create or replace function public.tollgate_catalog_push(p_document jsonb, p_by text default '', p_activate boolean default true)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_id text := p_document -> 'catalog' ->> 'id';
  v_digest text;
  v_row public.tollgate_catalogs;
  v_version integer;
begin
  if jsonb_typeof(p_document) is distinct from 'object' or v_id is null or v_id = '' then
    raise exception 'the document is not a catalog: it has no catalog.id' using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('tollgate_catalogs:' || v_id, 0));
  v_digest := encode(sha256(convert_to(p_document::text, 'UTF8')), 'hex');
  select * into v_row from public.tollgate_catalogs c where c.id = v_id and c.digest = v_digest;
  if found then
    return public.tollgate_catalog_row(v_row) || jsonb_build_object('created', false);
  end if;
  select coalesce(max(c.version), 0) + 1 into v_version from public.tollgate_catalogs c where c.id = v_id;
  insert into public.tollgate_catalogs (id, version, document, digest, published_by)
  values (v_id, v_version, p_document, v_digest, coalesce(p_by, ''));
  if p_activate then
    perform public.tollgate_catalog_set_active(v_id, v_version, p_by);
  end if;
  select * into v_row from public.tollgate_catalogs c where c.id = v_id and c.version = v_version;
  return public.tollgate_catalog_row(v_row) || jsonb_build_object('created', true);
end
$fn$;

-- Every version of a catalog, newest first, with when each was last activated.
create or replace function public.tollgate_catalog_versions(p_catalog text)
returns jsonb
language sql
stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(public.tollgate_catalog_row(c)
           || jsonb_build_object('activated_at',
                (select max(a.activated_at) from public.tollgate_catalog_activations a
                  where a.catalog_id = c.id and a.version = c.version))
           order by c.version desc), '[]'::jsonb)
    from public.tollgate_catalogs c
   where c.id = p_catalog
$fn$;

-- Activates a version (a rollback when it is older than the active one). Answers the version,
-- `changed` false when it already was the active one; null when there is no such version.
create or replace function public.tollgate_catalog_activate(p_catalog text, p_version integer, p_by text default '')
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_changed boolean;
  v_row public.tollgate_catalogs;
begin
  perform pg_advisory_xact_lock(hashtextextended('tollgate_catalogs:' || p_catalog, 0));
  if not exists (select 1 from public.tollgate_catalogs c where c.id = p_catalog and c.version = p_version) then
    return null;
  end if;
  v_changed := public.tollgate_catalog_set_active(p_catalog, p_version, p_by);
  select * into v_row from public.tollgate_catalogs c where c.id = p_catalog and c.version = p_version;
  return public.tollgate_catalog_row(v_row) || jsonb_build_object('changed', v_changed);
end
$fn$;

-- The active version of a catalog with its document; null when none was pushed (the worker
-- then serves the catalog it embeds). Invoker's rights: anyone reads it through RLS.
create or replace function public.tollgate_catalog_active(p_catalog text)
returns jsonb
language sql
stable
set search_path = ''
as $fn$
  select public.tollgate_catalog_row(c) || jsonb_build_object('document', c.document)
    from public.tollgate_catalogs c
   where c.id = p_catalog and c.active
$fn$;

-- The active version without its document: the cheap check of a cached copy.
create or replace function public.tollgate_catalog_active_version(p_catalog text)
returns jsonb
language sql
stable
set search_path = ''
as $fn$
  select jsonb_build_object('id', c.id, 'version', c.version, 'digest', c.digest)
    from public.tollgate_catalogs c
   where c.id = p_catalog and c.active
$fn$;

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_catalog_set_active(text, integer, text)',
    'public.tollgate_catalog_push(jsonb, text, boolean)',
    'public.tollgate_catalog_versions(text)',
    'public.tollgate_catalog_activate(text, integer, text)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
  foreach f in array array[
    'public.tollgate_catalog_row(public.tollgate_catalogs)',
    'public.tollgate_catalog_active(text)',
    'public.tollgate_catalog_active_version(text)'
  ] loop
    execute format('revoke all on function %s from public', f);
    execute format('grant execute on function %s to anon, authenticated, service_role', f);
  end loop;
  execute 'revoke all on function public.tollgate_catalog_immutable() from public, anon, authenticated';
end
$grants$;
