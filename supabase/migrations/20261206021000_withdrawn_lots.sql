-- tollgate: a lot a later fold no longer gives is withdrawn.
--
-- A fold writes each of its subject's lots whole, and the lots an earlier fold had written
-- that a later one no longer gives were kept as they were: a refund made before a renewal
-- but told after it (the renewal had carried the refunded period's unused units over), or
-- a subscription's end told after a payment of a period past it. Such a lot kept its
-- balance, spendable, with no credit for it in the ledger (whose fold-made entries are
-- written whole). Now every open lot of the subject that the fold does not name is
-- withdrawn in the fold's own transaction, as the core's `Lot::withdraw` says: nothing left
-- in it, the rest counted as revoked (granted = remaining + used + revoked + expired still
-- holds), closed. What charges took from it stays taken.
-- tollgate_write_subject_extras, which tollgate_apply_fold calls for each subject it writes
-- once its lots and ledger are written, is redefined (20261205002100's form) to do it first.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_withdraw_lots(p_user uuid, p_org uuid, p_lots jsonb)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
  v_lot bigint;
  v_used bigint;
  v_expired bigint;
  v_n integer := 0;
begin
  -- The terms first, then the balance: the order every writer of a lot takes its two rows in.
  for v_lot in
    select t.id from public.credit_lot_terms t
     where t.owner_id = coalesce(p_user, p_org) and not t.closed
       and not exists (select 1 from jsonb_array_elements(coalesce(p_lots, '[]'::jsonb)) l
                        where l ->> 'key' = t.key)
     order by t.id
       for update
  loop
    update public.credit_lot_balances b set remaining = 0, updated_at = now()
     where b.lot_id = v_lot
    returning b.used, b.expired into v_used, v_expired;
    update public.credit_lot_terms t
       set closed = true, revoked = greatest(t.granted - coalesce(v_used, 0) - coalesce(v_expired, 0), 0)
     where t.id = v_lot;
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$fn$;
revoke all on function public.tollgate_withdraw_lots(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.tollgate_withdraw_lots(uuid, uuid, jsonb) to service_role;

-- What else a fold writes of a subject: as in 20261205002100, after withdrawing the lots
-- the fold no longer gives (its pool alerts then see the balances the facts give).
create or replace function public.tollgate_write_subject_extras(p_user uuid, p_org uuid, p_sub jsonb)
returns void
language plpgsql
set search_path = ''
as $fn$
declare
  v_item jsonb;
begin
  perform public.tollgate_withdraw_lots(p_user, p_org, p_sub -> 'lots');
  for v_item in select * from jsonb_array_elements(coalesce(p_sub -> 'failed_payments', '[]'::jsonb)) loop
    insert into public.failed_payments as fp (
      provider, invoice_id, subscription_id, user_id, organization_id, amount_due, currency, attempt_count,
      next_retry_at, first_failed_at, last_failed_at, grace_until, resolved_at, resolution, resolved_by)
    values (
      v_item ->> 'provider', v_item ->> 'invoice_id', v_item ->> 'subscription_id', p_user, p_org,
      coalesce((v_item ->> 'amount_due')::bigint, 0), coalesce(v_item ->> 'currency', ''),
      coalesce((v_item ->> 'attempt_count')::integer, 0), (v_item ->> 'next_retry_at')::timestamptz,
      (v_item ->> 'first_failed_at')::timestamptz, (v_item ->> 'last_failed_at')::timestamptz,
      (v_item ->> 'grace_until')::timestamptz, (v_item ->> 'resolved_at')::timestamptz,
      v_item ->> 'resolution', v_item ->> 'resolved_by')
    on conflict (provider, invoice_id) do update set
      subscription_id = excluded.subscription_id, user_id = excluded.user_id,
      organization_id = excluded.organization_id, amount_due = excluded.amount_due,
      currency = excluded.currency, attempt_count = excluded.attempt_count,
      next_retry_at = excluded.next_retry_at, first_failed_at = excluded.first_failed_at,
      last_failed_at = excluded.last_failed_at, grace_until = excluded.grace_until,
      resolved_at = excluded.resolved_at, resolution = excluded.resolution,
      resolved_by = excluded.resolved_by, updated_at = now()
    where (fp.subscription_id, fp.user_id, fp.organization_id, fp.amount_due, fp.currency, fp.attempt_count,
           fp.next_retry_at, fp.first_failed_at, fp.last_failed_at, fp.grace_until, fp.resolved_at,
           fp.resolution, fp.resolved_by)
          is distinct from
          (excluded.subscription_id, excluded.user_id, excluded.organization_id, excluded.amount_due,
           excluded.currency, excluded.attempt_count, excluded.next_retry_at, excluded.first_failed_at,
           excluded.last_failed_at, excluded.grace_until, excluded.resolved_at, excluded.resolution,
           excluded.resolved_by);
  end loop;
  if jsonb_array_length(coalesce(p_sub -> 'alerts', '[]'::jsonb)) > 0 then
    perform public.tollgate_apply_alerts(p_user, p_org, p_sub -> 'alerts',
                                         coalesce((p_sub ->> 'alerts_at')::timestamptz, now()));
  end if;
end
$fn$;
revoke all on function public.tollgate_write_subject_extras(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.tollgate_write_subject_extras(uuid, uuid, jsonb) to service_role;
