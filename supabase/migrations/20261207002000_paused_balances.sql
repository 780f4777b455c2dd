-- tollgate: a paused subscription's credits are not in the balances.
--
-- While a subscription is paused the lots it gave (its period's allowance, the rollover
-- carried into it, the credits it gave once: the lots whose `subscription` is the id its
-- grants name as `source_ref`) are kept but not spent (the core's usage::drawable): a
-- charge, a pool check and a snapshot's balances leave them out. credit_balances still
-- summed them, so a replayed charge's answer (tollgate_charge_answer), the subject state's
-- balances and apps reading the view told more than may be spent. From here on
-- credit_balances.available leaves out the open lots of a subscription that a grant of the
-- same subject says is paused at now(), by the core's rule (decide::standing is `Paused`):
-- the grant has `paused_since`, is valid from before now, and does not count now (not
-- active or trial before its valid_to, not canceled before its valid_to, never past due).
-- Nothing is written or taken away: the lots stay as they are (credit_lots shows them
-- whole) and count again once the subscription resumes and its grants no longer say
-- paused. Top-ups, free and admin credits name no subscription and always count.
-- Otherwise the view of 20261206009000 (same columns, rights and read-only trigger).
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace view public.credit_balances with (security_invoker = on) as
select l.user_id, l.organization_id, l.pool,
       (coalesce(sum(l.remaining) filter (
          where not l.closed
            and not (l.subscription is not null and exists (
              select 1 from public.cloud_entitlements g
               where (g.user_id = l.user_id or g.organization_id = l.organization_id)
                 and g.source_ref = l.subscription
                 and g.paused_since is not null
                 and (g.valid_from is null or g.valid_from <= now())
                 and g.status <> 'past_due'
                 and not (g.status in ('active', 'trial') and (g.valid_to is null or now() < g.valid_to))
                 and not (g.status = 'canceled' and g.valid_to is not null and now() < g.valid_to)))), 0))::bigint
         as available,
       max(l.updated_at) as updated_at
  from public.credit_lots l
 group by l.user_id, l.organization_id, l.pool;

revoke all on table public.credit_balances from public, anon, authenticated;
grant select on table public.credit_balances to authenticated, service_role;

drop trigger if exists credit_balances_read_only on public.credit_balances;
create trigger credit_balances_read_only instead of insert or update or delete on public.credit_balances
  for each row execute function public.tollgate_read_only();
