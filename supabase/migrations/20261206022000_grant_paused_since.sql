-- tollgate: a grant records that its subscription is paused.
--
--   * cloud_entitlements.paused_since: when the subscription behind the grant was paused
--     (Stripe or Razorpay status `paused`), while it is; null otherwise (the core's
--     Grant::paused_since). A paused subscription's grant ends at the pause, like an ended
--     one's, but the subscription still runs with its provider and is resumed, never bought
--     again: the offer a denial or a credit refusal names is never another plan of its
--     product (checkout refuses one beside it), and a denial it leaves says `paused`. The
--     gate reads it with the grant's other columns (to_jsonb of the row).
--   * tollgate_grant_upsert writes it as the core's GrantRow carries it.
-- Idempotent: safe to apply to an empty database and again on top of itself.

alter table public.cloud_entitlements add column if not exists paused_since timestamptz;

-- Upserts one grant row for a subject (by grant_key), with the versions it was sold and
-- renewed under, the start of its current paid period and when its subscription was
-- paused. Replaces the form of 20261206006000.
create or replace function public.tollgate_grant_upsert(p_user uuid, p_org uuid, p_grant jsonb)
returns void
language plpgsql
set search_path = ''
as $fn$
begin
  insert into public.cloud_entitlements as ce (
    user_id, organization_id, grant_key, cloud_id, tier, source, status,
    valid_from, valid_to, past_due_since, offer_key, source_ref, catalog_version, renewal_version,
    period_start, paused_since, updated_at)
  values (
    p_user, p_org,
    p_grant ->> 'grant_key', p_grant ->> 'cloud_id', p_grant ->> 'tier',
    p_grant ->> 'source', p_grant ->> 'status',
    coalesce((p_grant ->> 'valid_from')::timestamptz, now()),
    (p_grant ->> 'valid_to')::timestamptz,
    (p_grant ->> 'past_due_since')::timestamptz,
    p_grant ->> 'offer_key', p_grant ->> 'source_ref',
    (p_grant ->> 'catalog_version')::integer, (p_grant ->> 'renewal_version')::integer,
    (p_grant ->> 'period_start')::timestamptz, (p_grant ->> 'paused_since')::timestamptz, now())
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
    paused_since = excluded.paused_since,
    updated_at = now()
  where (ce.cloud_id, ce.tier, ce.source, ce.status, ce.valid_from, ce.valid_to,
         ce.past_due_since, ce.offer_key, ce.source_ref, ce.catalog_version, ce.renewal_version,
         ce.period_start, ce.paused_since)
        is distinct from
        (excluded.cloud_id, excluded.tier, excluded.source, excluded.status, excluded.valid_from,
         excluded.valid_to, excluded.past_due_since, excluded.offer_key, excluded.source_ref,
         excluded.catalog_version, excluded.renewal_version, excluded.period_start,
         excluded.paused_since);
end
$fn$;

revoke all on function public.tollgate_grant_upsert(uuid, uuid, jsonb) from public, anon, authenticated;
