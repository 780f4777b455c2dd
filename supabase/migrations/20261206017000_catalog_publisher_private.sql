-- tollgate: who published a catalog version is the operators' business.
--
-- Anyone may read the active catalog (the worker serves it at GET /v1/catalog; the browser
-- reads it to gate offline), but the rows carried `published_by` too: the free text the
-- CLI's `--by` gives (a name, an address, a CI job). Anonymous and signed-in callers now
-- read every column but that one, and `tollgate_catalog_active` (invoker's rights, open to
-- them) answers the version without it. The service role reads it as before
-- (`tollgate_catalog_versions`, `tollgate_catalog_version`). Otherwise 20261205006000's
-- form.
-- Idempotent: safe to apply to an empty database and again on top of itself.

revoke select on table public.tollgate_catalogs from anon, authenticated;
grant select (id, version, document, digest, published_at, active) on table public.tollgate_catalogs
  to anon, authenticated;

create or replace function public.tollgate_catalog_active(p_catalog text)
returns jsonb
language sql
stable
set search_path = ''
as $fn$
  select jsonb_build_object('id', c.id, 'version', c.version, 'digest', c.digest,
                            'published_at', c.published_at, 'active', c.active, 'document', c.document)
    from public.tollgate_catalogs c
   where c.id = p_catalog and c.active
$fn$;
revoke all on function public.tollgate_catalog_active(text) from public;
grant execute on function public.tollgate_catalog_active(text) to anon, authenticated, service_role;
