-- What the money-in routes (`/v1/checkout`, `/v1/portal`, `/v1/subscriptions/*`) read
-- before building a provider request, in one statement: the subject's subscriptions and
-- provider customers, for an organization the caller's role in it and the seats it has
-- given, and whether the subject exists at all.
--
--   p_subject   {"user_id"} | {"organization_id"}: who buys and holds
--   p_caller    the signed-in user (auth.users.id)
-- Returns {"exists", "role" (null: not a member, or a user subject), "seats_used",
--          "subscriptions": [billing_subscriptions rows], "customers": [{"provider", "customer_id"}]}.
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
               'current_period_end', b.current_period_end)
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
