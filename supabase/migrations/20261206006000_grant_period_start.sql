-- tollgate: a grant records the start of its current paid period.
--
--   * cloud_entitlements.period_start: the provider's current period start of the
--     subscription behind the grant (the core's Grant::period_start), null for grants
--     that are not a subscription's. Billing-period limit windows are counted from it,
--     so they turn with the subscription's invoices (after a trial, from the trial's end)
--     and agree with the period an overage cap counts over.
--   * tollgate_grant_upsert writes it as the core's GrantRow carries it.
-- Idempotent: safe to apply to an empty database and again on top of itself.

alter table public.cloud_entitlements add column if not exists period_start timestamptz;

-- Upserts one grant row for a subject (by grant_key), with the versions it was sold and
-- renewed under and the start of its current paid period. Replaces the form of
-- 20261206002000.
create or replace function public.tollgate_grant_upsert(p_user uuid, p_org uuid, p_grant jsonb)
returns void
language plpgsql
set search_path = ''
as $fn$
begin
  insert into public.cloud_entitlements as ce (
    user_id, organization_id, grant_key, cloud_id, tier, source, status,
    valid_from, valid_to, past_due_since, offer_key, source_ref, catalog_version, renewal_version,
    period_start, updated_at)
  values (
    p_user, p_org,
    p_grant ->> 'grant_key', p_grant ->> 'cloud_id', p_grant ->> 'tier',
    p_grant ->> 'source', p_grant ->> 'status',
    coalesce((p_grant ->> 'valid_from')::timestamptz, now()),
    (p_grant ->> 'valid_to')::timestamptz,
    (p_grant ->> 'past_due_since')::timestamptz,
    p_grant ->> 'offer_key', p_grant ->> 'source_ref',
    (p_grant ->> 'catalog_version')::integer, (p_grant ->> 'renewal_version')::integer,
    (p_grant ->> 'period_start')::timestamptz, now())
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
    period_start = excluded.period_start,
    updated_at = now()
  where (ce.cloud_id, ce.tier, ce.source, ce.status, ce.valid_from, ce.valid_to,
         ce.past_due_since, ce.offer_key, ce.source_ref, ce.catalog_version, ce.renewal_version,
         ce.period_start)
        is distinct from
        (excluded.cloud_id, excluded.tier, excluded.source, excluded.status, excluded.valid_from,
         excluded.valid_to, excluded.past_due_since, excluded.offer_key, excluded.source_ref,
         excluded.catalog_version, excluded.renewal_version, excluded.period_start);
end
$fn$;

revoke all on function public.tollgate_grant_upsert(uuid, uuid, jsonb) from public, anon, authenticated;
