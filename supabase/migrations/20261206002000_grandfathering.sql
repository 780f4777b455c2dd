-- tollgate: grandfathering (issue 14). Every grant records the catalog version it was sold
-- under and the version active at its latest renewal; a worker decides a grant held under
-- an older version with that version's capabilities and limits (tollgate::grandfather), so
-- it reads older versions of its catalog too.
--
--   * cloud_entitlements.catalog_version / renewal_version: written by the fold
--     (tollgate_grant_upsert, as the core's GrantRow carries them), null for a grant sold
--     under a catalog without a version (a file, the embedded one) or before versions.
--   * tollgate_catalog_version: one version with its document, for the service role (RLS
--     lets anyone else read the active version only).
-- Idempotent: safe to apply to an empty database and again on top of itself.

alter table public.cloud_entitlements add column if not exists catalog_version integer;
alter table public.cloud_entitlements add column if not exists renewal_version integer;

-- Upserts one grant row for a subject (by grant_key), with the versions it was sold and
-- renewed under.
create or replace function public.tollgate_grant_upsert(p_user uuid, p_org uuid, p_grant jsonb)
returns void
language plpgsql
set search_path = ''
as $fn$
begin
  insert into public.cloud_entitlements as ce (
    user_id, organization_id, grant_key, cloud_id, tier, source, status,
    valid_from, valid_to, past_due_since, offer_key, source_ref, catalog_version, renewal_version, updated_at)
  values (
    p_user, p_org,
    p_grant ->> 'grant_key', p_grant ->> 'cloud_id', p_grant ->> 'tier',
    p_grant ->> 'source', p_grant ->> 'status',
    coalesce((p_grant ->> 'valid_from')::timestamptz, now()),
    (p_grant ->> 'valid_to')::timestamptz,
    (p_grant ->> 'past_due_since')::timestamptz,
    p_grant ->> 'offer_key', p_grant ->> 'source_ref',
    (p_grant ->> 'catalog_version')::integer, (p_grant ->> 'renewal_version')::integer, now())
  on conflict (user_id, organization_id, grant_key) do update set
    cloud_id = excluded.cloud_id,
    tier = excluded.tier,
    source = excluded.source,
    status = excluded.status,
    valid_from = excluded.valid_from,
    valid_to = excluded.valid_to,
    past_due_since = excluded.past_due_since,
    offer_key = excluded.offer_key,
    source_ref = excluded.source_ref,
    catalog_version = excluded.catalog_version,
    renewal_version = excluded.renewal_version,
    updated_at = now()
  where (ce.cloud_id, ce.tier, ce.source, ce.status, ce.valid_from, ce.valid_to,
         ce.past_due_since, ce.offer_key, ce.source_ref, ce.catalog_version, ce.renewal_version)
        is distinct from
        (excluded.cloud_id, excluded.tier, excluded.source, excluded.status, excluded.valid_from,
         excluded.valid_to, excluded.past_due_since, excluded.offer_key, excluded.source_ref,
         excluded.catalog_version, excluded.renewal_version);
end
$fn$;

-- One version of a catalog with its document (any version, active or not); null when there
-- is no such version. Versions are immutable, so a worker keeps what this answers.
create or replace function public.tollgate_catalog_version(p_catalog text, p_version integer)
returns jsonb
language sql
stable
set search_path = ''
as $fn$
  select public.tollgate_catalog_row(c) || jsonb_build_object('document', c.document)
    from public.tollgate_catalogs c
   where c.id = p_catalog and c.version = p_version
$fn$;

revoke all on function public.tollgate_catalog_version(text, integer) from public, anon, authenticated;
grant execute on function public.tollgate_catalog_version(text, integer) to service_role;
