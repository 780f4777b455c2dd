-- tollgate: what a snapshot tells its subject (issue 16, "usage a person can see").
--
--   * tollgate_subject_state: 20261125000500's function, unchanged for a charge or a fold
--     (a `p_ledger_key`); the snapshot's read (no ledger key, the whole ledger) also
--     carries the subject's open alerts (`alerts`: rule, kind, body, crossed_at) and its
--     failed payments still due (`failed_payments`: the table's columns), so
--     GET /v1/entitlements stays one call and the core decides what the snapshot shows
--     (tollgate::notices). Both are read through the subject's indexes
--     (alerts_user_idx / alerts_organization_idx, failed_payments_user_idx /
--     failed_payments_organization_idx), outside the usage stamp.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_subject_state(p_subject jsonb, p_ledger_key text default null)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
  v_ledger jsonb;
  v_out jsonb;
begin
  s := public.tollgate_subject_ids(p_subject);
  -- One request's entries are `<key>` and `<key>:<part>`: a range of the C-ordered
  -- source_key index (the range alone also holds keys like `<key>0`; the exact test
  -- drops them), so a charge reads a handful of rows however long the ledger is.
  if p_ledger_key is null then
    select jsonb_agg(jsonb_build_object('key', e.source_key, 'pool', e.pool, 'lot', e.lot, 'kind', e.kind,
                                        'delta', e.delta, 'at', e.at, 'source', e.source) order by e.id)
      into v_ledger
      from public.credit_ledger e
     where (e.user_id = s.user_id or e.organization_id = s.organization_id);
  else
    select jsonb_agg(jsonb_build_object('key', e.source_key, 'pool', e.pool, 'lot', e.lot, 'kind', e.kind,
                                        'delta', e.delta, 'at', e.at, 'source', e.source) order by e.id)
      into v_ledger
      from public.credit_ledger e
     where e.source_key collate "C" >= p_ledger_key collate "C"
       and e.source_key collate "C" < (p_ledger_key || ';') collate "C"
       and (e.source_key = p_ledger_key or left(e.source_key, length(p_ledger_key) + 1) = p_ledger_key || ':')
       -- a filter on the few rows of that range, on purpose not the indexable form:
       -- scanning the subject's index too would read its whole ledger again
       and e.user_id is not distinct from s.user_id
       and e.organization_id is not distinct from s.organization_id;
  end if;
  select jsonb_build_object(
    'subject', p_subject,
    'version', coalesce((select b.version from public.billing_subjects b
                          where (b.user_id = s.user_id
                            or b.organization_id = s.organization_id)), 0),
    'state', coalesce((select b.state from public.billing_subjects b
                        where (b.user_id = s.user_id
                          or b.organization_id = s.organization_id)), '{}'::jsonb),
    'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key) from public.cloud_entitlements g
                         where (g.user_id = s.user_id
                           or g.organization_id = s.organization_id)), '[]'::jsonb),
    'balances', coalesce((select jsonb_object_agg(c.pool, c.available) from public.credit_balances c
                           where (c.user_id = s.user_id
                             or c.organization_id = s.organization_id)), '{}'::jsonb),
    'wallet', jsonb_build_object(
      'lots', coalesce((select jsonb_agg(jsonb_strip_nulls(to_jsonb(l) - 'id' - 'user_id' - 'organization_id' - 'updated_at')
                                         order by l.id)
                          from public.credit_lots l
                         where (l.user_id = s.user_id
                           or l.organization_id = s.organization_id)), '[]'::jsonb),
      'ledger', coalesce(v_ledger, '[]'::jsonb)),
    'subscriptions', coalesce((select jsonb_agg(to_jsonb(x) order by x.subscription_id)
                                from public.billing_subscriptions x
                               where (x.user_id = s.user_id
                                 or x.organization_id = s.organization_id)), '[]'::jsonb),
    'preferences', (select to_jsonb(p) from public.usage_preferences p
                     where (p.user_id = s.user_id
                       or p.organization_id = s.organization_id)),
    'organization', (select to_jsonb(o) from public.organizations o where o.id = s.organization_id),
    'seats', case when s.organization_id is null then null else
               (select count(*) from public.seat_allocations a
                 where a.organization_id = s.organization_id and a.status = 'active') end,
    -- For a user: each organization it belongs to, whether it holds a seat there, and
    -- that organization's grants (the core decides what they give the user).
    'memberships', case when s.user_id is null then '[]'::jsonb else coalesce((
      select jsonb_agg(jsonb_build_object(
               'organization_id', m.organization_id,
               'role', m.role,
               'seat', exists (select 1 from public.seat_allocations a
                                where a.organization_id = m.organization_id
                                  and a.user_id = m.user_id and a.status = 'active'),
               'seat_count', o.seat_count,
               'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key)
                                     from public.cloud_entitlements g
                                    where g.organization_id = m.organization_id), '[]'::jsonb),
               'balances', coalesce((select jsonb_object_agg(c.pool, c.available)
                                       from public.credit_balances c
                                      where c.organization_id = m.organization_id), '{}'::jsonb))
             order by m.organization_id)
        from public.organization_members m
        join public.organizations o on o.id = m.organization_id
       where m.user_id = s.user_id), '[]'::jsonb) end,
    'customers', coalesce((select jsonb_agg(jsonb_build_object('provider', c.provider, 'customer_id', c.customer_id)
                                            order by c.provider, c.customer_id)
                            from public.billing_customers c
                           where (c.user_id = s.user_id
                             or c.organization_id = s.organization_id)), '[]'::jsonb)
  ) into v_out;
  v_out := v_out || jsonb_build_object('stamp', public.tollgate_usage_stamp(v_out));
  if p_ledger_key is null then
    v_out := v_out || jsonb_build_object(
      'alerts', coalesce((select jsonb_agg(jsonb_build_object('rule', a.rule, 'kind', a.kind, 'body', a.body,
                                                              'crossed_at', a.crossed_at) order by a.crossed_at, a.id)
                            from public.alerts a
                           where (a.user_id = s.user_id or a.organization_id = s.organization_id)
                             and a.resolved_at is null), '[]'::jsonb),
      'failed_payments', coalesce((select jsonb_agg(jsonb_build_object(
                                            'provider', f.provider, 'invoice_id', f.invoice_id,
                                            'subscription_id', f.subscription_id, 'amount_due', f.amount_due,
                                            'currency', f.currency, 'attempt_count', f.attempt_count,
                                            'next_retry_at', f.next_retry_at, 'first_failed_at', f.first_failed_at,
                                            'grace_until', f.grace_until) order by f.first_failed_at, f.id)
                                     from public.failed_payments f
                                    where (f.user_id = s.user_id or f.organization_id = s.organization_id)
                                      and f.resolved_at is null), '[]'::jsonb));
  end if;
  return v_out;
end
$fn$;

revoke all on function public.tollgate_subject_state(jsonb, text) from public, anon, authenticated;
grant execute on function public.tollgate_subject_state(jsonb, text) to service_role;
