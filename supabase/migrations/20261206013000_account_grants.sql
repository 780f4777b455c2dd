-- tollgate: what a running subscription gives, for checkout.
--
-- Checkout refuses a purchase that would bill a product twice. It knew only each running
-- subscription's offer, so a bundle's products were all those the buyer could have chosen:
-- a subscriber of a two-cloud bundle on Creation and Writing was refused a Video Cloud plan
-- (the bundle "could" hold Video). tollgate_account now answers, per subscription, the
-- product and tier of each grant it gives now (`cloud_entitlements` rows whose `source_ref`
-- is the subscription, `<provider>:<id>`, that are active, on trial or past due), so the core compares what is held
-- with what is bought.
-- Returns what 20261205000600's form did, each subscription with
--   "grants": [{"product", "tier"}].
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_account(p_subject jsonb, p_caller uuid)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
begin
  s := public.tollgate_subject_ids(p_subject);
  return jsonb_build_object(
    'exists', case when s.user_id is not null
                   then exists (select 1 from auth.users u where u.id = s.user_id)
                   else exists (select 1 from public.organizations o where o.id = s.organization_id) end,
    'role', case when s.organization_id is null then null else
              (select m.role from public.organization_members m
                where m.organization_id = s.organization_id and m.user_id = p_caller) end,
    'seats_used', case when s.organization_id is null then 0 else
              (select count(*) from public.seat_allocations a
                where a.organization_id = s.organization_id and a.status = 'active') end,
    'subscriptions', coalesce((
      select jsonb_agg(jsonb_build_object(
               'provider', b.provider, 'subscription_id', b.subscription_id, 'offer_key', b.offer_key,
               'status', b.status, 'quantity', b.quantity, 'cancel_at_period_end', b.cancel_at_period_end,
               'current_period_end', b.current_period_end,
               'grants', coalesce((
                 select jsonb_agg(jsonb_build_object('product', e.cloud_id, 'tier', e.tier) order by e.cloud_id, e.tier)
                   from public.cloud_entitlements e
                  where (e.user_id = s.user_id or e.organization_id = s.organization_id)
                    and e.source_ref = b.provider || ':' || b.subscription_id
                    and e.status in ('active', 'trial', 'past_due')), '[]'::jsonb))
             order by b.created_at, b.subscription_id)
        from public.billing_subscriptions b
       where b.user_id = s.user_id or b.organization_id = s.organization_id), '[]'::jsonb),
    'customers', coalesce((
      select jsonb_agg(jsonb_build_object('provider', c.provider, 'customer_id', c.customer_id)
             order by c.created_at, c.customer_id)
        from public.billing_customers c
       where c.user_id = s.user_id or c.organization_id = s.organization_id), '[]'::jsonb));
end
$fn$;

revoke all on function public.tollgate_account(jsonb, uuid) from public, anon, authenticated;
grant execute on function public.tollgate_account(jsonb, uuid) to service_role;
