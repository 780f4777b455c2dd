-- tollgate: the fold records seats and never makes members.
--
-- tollgate_apply_fold wrote every seat holder of an organization's fold into
-- organization_members as well as seat_allocations. A seat is given only to a member (the
-- routes check), but a give that read the user as a member before the member's removal
-- lands its fact after it: the fold then made the removed member a member again, and every
-- later fold of the organization kept them one. Membership is written only by the
-- organization's own changes (creating it, accepting an invite, removing a member); a seat
-- held by someone who is not a member gives nothing (entitlements need both) and owners,
-- admins and operators free it as any seat.
-- tollgate_apply_fold is redefined: the form of 20261206011000 without that insert.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_apply_fold(p_event jsonb, p_facts jsonb, p_expected_version bigint,
                                                      p_refs text[], p_subjects jsonb,
                                                      p_pending jsonb default null,
                                                      p_resolved jsonb default '[]'::jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_event_row bigint;
  v_version bigint;
  v_new_refs text[];
  v_refs text[];
  v_item jsonb;
  v_sub jsonb;
  s record;
  v_status text := 'applied';
  v_unknown text[] := '{}';
  v_conflicts text[] := '{}';
  v_stored jsonb;
  v_stored_refs text[];
  v_waiting text[];
  v_lot bigint;
begin
  if p_event is not null then
    if coalesce(p_event ->> 'provider', '') = '' or coalesce(p_event ->> 'event_id', '') = '' then
      raise exception using errcode = '22023', message = 'event needs provider and event_id';
    end if;
    -- A redelivery of an event already applied changes nothing.
    insert into public.webhook_events (provider, event_id, event_type, object_id, object_version, payload)
    values (p_event ->> 'provider', p_event ->> 'event_id', coalesce(p_event ->> 'event_type', ''),
            p_event ->> 'object_id', (p_event ->> 'object_version')::bigint, p_event -> 'payload')
    on conflict do nothing
    returning id into v_event_row;
    if v_event_row is null then
      return jsonb_build_object('status', 'duplicate');
    end if;
  end if;

  select coalesce(array_agg(distinct r), '{}') into v_new_refs
    from jsonb_array_elements(coalesce(p_facts, '[]'::jsonb)) x, jsonb_array_elements_text(x -> 'refs') r;
  v_refs := coalesce(p_refs, v_new_refs);
  perform public.tollgate_lock_refs(v_refs || v_new_refs);
  select count(*) into v_version from public.billing_facts f where f.refs && v_refs and f.fact_type <> 'usage';
  if v_version <> coalesce(p_expected_version, 0) then
    raise exception using errcode = 'PT409', message = 'billing state changed concurrently',
      detail = jsonb_build_object('expected', p_expected_version, 'actual', v_version)::text,
      hint = 'fold_stale';
  end if;

  for v_item in select * from jsonb_array_elements(coalesce(p_facts, '[]'::jsonb)) loop
    insert into public.billing_facts as f (fact_key, provider, event_id, fact_type, refs, at, fact)
    values (v_item ->> 'key', coalesce(v_item ->> 'provider', ''), coalesce(v_item ->> 'event', ''),
            coalesce(v_item ->> 'type', ''),
            coalesce((select array_agg(r) from jsonb_array_elements_text(v_item -> 'refs') r), '{}'),
            (v_item ->> 'at')::timestamptz, v_item -> 'fact')
    on conflict (fact_key) do update
       set at = excluded.at, fact = excluded.fact, event_id = excluded.event_id
     where excluded.at < f.at
       and (f.fact - 'at' - 'event' - 'catalog_version') = (excluded.fact - 'at' - 'event' - 'catalog_version');
    if not found then
      select f.fact, f.refs into v_stored, v_stored_refs from public.billing_facts f where f.fact_key = v_item ->> 'key';
      if v_stored is distinct from v_item -> 'fact' then
        -- The stored fact was not part of this fold (another cluster): the fold used the
        -- new content, which must not be written.
        if not (v_stored_refs && v_refs) then
          raise exception using errcode = 'PT409', message = 'a fact with this key was stored before for others',
            detail = v_item ->> 'key', hint = 'fact_conflict';
        end if;
        v_conflicts := v_conflicts || (v_item ->> 'key');
      end if;
    end if;
  end loop;

  for v_sub in select * from jsonb_array_elements(coalesce(p_subjects, '[]'::jsonb)) loop
    s := public.tollgate_subject_ids(v_sub -> 'subject');
    if s.user_id is not null and not exists (select 1 from auth.users u where u.id = s.user_id) then
      v_unknown := v_unknown || ('user:' || s.user_id::text);
      continue;
    end if;
    if s.organization_id is not null then
      insert into public.organizations (id) values (s.organization_id) on conflict do nothing;
    end if;
    insert into public.billing_subjects (user_id, organization_id) values (s.user_id, s.organization_id)
    on conflict (user_id, organization_id) do nothing;
    update public.billing_subjects b set version = b.version + 1,
           state = coalesce(v_sub -> 'state', b.state), updated_at = now()
     where (b.user_id = s.user_id or b.organization_id = s.organization_id);

    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'customers', '[]'::jsonb)) loop
      insert into public.billing_customers (provider, customer_id, user_id, organization_id)
      values (v_item ->> 'provider', v_item ->> 'customer_id', s.user_id, s.organization_id)
      on conflict (provider, customer_id) do nothing;
    end loop;

    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'subscriptions', '[]'::jsonb)) loop
      insert into public.billing_subscriptions as bs (
        provider, subscription_id, user_id, organization_id, customer_id, offer_key, status, quantity,
        current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, object_version,
        trial_end)
      values (
        v_item ->> 'provider', v_item ->> 'subscription_id', s.user_id, s.organization_id,
        v_item ->> 'customer_id', v_item ->> 'offer_key', v_item ->> 'status',
        coalesce((v_item ->> 'quantity')::integer, 1),
        (v_item ->> 'current_period_start')::timestamptz, (v_item ->> 'current_period_end')::timestamptz,
        coalesce((v_item ->> 'cancel_at_period_end')::boolean, false),
        (v_item ->> 'canceled_at')::timestamptz, (v_item ->> 'ended_at')::timestamptz,
        coalesce((v_item ->> 'object_version')::bigint, 0), (v_item ->> 'trial_end')::timestamptz)
      on conflict (provider, subscription_id) do update set
        user_id = excluded.user_id, organization_id = excluded.organization_id,
        customer_id = coalesce(excluded.customer_id, bs.customer_id),
        offer_key = coalesce(excluded.offer_key, bs.offer_key),
        status = excluded.status, quantity = excluded.quantity,
        current_period_start = excluded.current_period_start,
        current_period_end = excluded.current_period_end,
        cancel_at_period_end = excluded.cancel_at_period_end,
        canceled_at = excluded.canceled_at, ended_at = excluded.ended_at,
        object_version = excluded.object_version, trial_end = excluded.trial_end, updated_at = now();
    end loop;

    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'grants', '[]'::jsonb)) loop
      perform public.tollgate_grant_upsert(s.user_id, s.organization_id, v_item);
    end loop;

    -- Lots, whole: the terms, then the balance. A balance is written only while its `used`
    -- is the total the fold read: a charge that committed in between makes this fold start
    -- again.
    for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'lots', '[]'::jsonb)) loop
      v_lot := null;
      select t.id into v_lot from public.credit_lot_terms t
       where t.owner_id = coalesce(s.user_id, s.organization_id) and t.key = v_item ->> 'key';
      if v_lot is null then
        insert into public.credit_lot_terms (user_id, organization_id, key, pool, kind, granted, valid_from, valid_to,
                                             source, subscription, revoked, closed, rolled_over, catalog_version)
        values (s.user_id, s.organization_id, v_item ->> 'key', v_item ->> 'pool', v_item ->> 'kind',
                (v_item ->> 'granted')::bigint,
                (v_item ->> 'valid_from')::timestamptz, (v_item ->> 'valid_to')::timestamptz,
                coalesce(v_item ->> 'source', ''), v_item ->> 'subscription',
                coalesce((v_item ->> 'revoked')::bigint, 0), coalesce((v_item ->> 'closed')::boolean, false),
                coalesce((v_item ->> 'rolled_over')::boolean, false),
                (v_item ->> 'catalog_version')::integer)
        on conflict (user_id, organization_id, key) do nothing
        returning id into v_lot;
        if v_lot is not null then
          insert into public.credit_lot_balances (lot_id, remaining, used, expired)
          values (v_lot, (v_item ->> 'remaining')::bigint, coalesce((v_item ->> 'used_read')::bigint, 0),
                  coalesce((v_item ->> 'expired')::bigint, 0));
        end if;
        continue;
      end if;
      -- The terms first: a release reads whether the lot is closed under a share lock of
      -- its terms before it moves the balance, so both take the two rows in one order.
      update public.credit_lot_terms t set
          pool = v_item ->> 'pool', kind = v_item ->> 'kind', granted = (v_item ->> 'granted')::bigint,
          valid_from = (v_item ->> 'valid_from')::timestamptz, valid_to = (v_item ->> 'valid_to')::timestamptz,
          source = coalesce(v_item ->> 'source', ''), subscription = v_item ->> 'subscription',
          revoked = coalesce((v_item ->> 'revoked')::bigint, 0),
          closed = coalesce((v_item ->> 'closed')::boolean, false),
          rolled_over = coalesce((v_item ->> 'rolled_over')::boolean, false),
          catalog_version = (v_item ->> 'catalog_version')::integer
       where t.id = v_lot
         and (t.granted, t.revoked, t.closed, t.rolled_over, t.valid_to, t.catalog_version)
             is distinct from
             ((v_item ->> 'granted')::bigint, coalesce((v_item ->> 'revoked')::bigint, 0),
              coalesce((v_item ->> 'closed')::boolean, false), coalesce((v_item ->> 'rolled_over')::boolean, false),
              (v_item ->> 'valid_to')::timestamptz, (v_item ->> 'catalog_version')::integer);
      update public.credit_lot_balances b set
          remaining = (v_item ->> 'remaining')::bigint, expired = coalesce((v_item ->> 'expired')::bigint, 0),
          updated_at = now()
       where b.lot_id = v_lot
         and b.used = coalesce((v_item ->> 'used_read')::bigint, 0)
         and (b.remaining, b.expired)
             is distinct from
             ((v_item ->> 'remaining')::bigint, coalesce((v_item ->> 'expired')::bigint, 0));
      if not found and exists (select 1 from public.credit_lot_balances b
                                where b.lot_id = v_lot and b.used <> coalesce((v_item ->> 'used_read')::bigint, 0)) then
        raise exception using errcode = 'PT409', message = 'a charge took from a lot the fold writes',
          detail = v_item ->> 'key', hint = 'fold_stale';
      end if;
    end loop;

    -- The ledger's fold-made entries (credits, refunds, expiry), whole; the entries of
    -- charges are their own facts' rows and are never rewritten.
    delete from public.credit_ledger e
     where (e.user_id = s.user_id or e.organization_id = s.organization_id) and e.kind <> 'usage';
    insert into public.credit_ledger (user_id, organization_id, source_key, pool, lot, kind, delta, at, source)
    select s.user_id, s.organization_id, v.value ->> 'key', v.value ->> 'pool', coalesce(v.value ->> 'lot', ''),
           v.value ->> 'kind', (v.value ->> 'delta')::bigint,
           coalesce((v.value ->> 'at')::timestamptz, now()), coalesce(v.value ->> 'source', '')
      from jsonb_array_elements(coalesce(v_sub -> 'ledger', '[]'::jsonb)) v
     where v.value ->> 'kind' <> 'usage';

    -- What else the fold says of the subject (its failed payments, ...), whole.
    perform public.tollgate_write_subject_extras(s.user_id, s.organization_id, v_sub);

    if s.organization_id is not null and v_sub ? 'seat_count' then
      update public.organizations set seat_count = (v_sub ->> 'seat_count')::integer, updated_at = now()
       where id = s.organization_id;
    end if;
    if s.organization_id is not null and v_sub ? 'seats' then
      for v_item in select * from jsonb_array_elements(coalesce(v_sub -> 'seats', '[]'::jsonb)) loop
        if not exists (select 1 from auth.users u where u.id = (v_item #>> '{}')::uuid) then
          v_unknown := v_unknown || ('user:' || (v_item #>> '{}'));
          continue;
        end if;
        insert into public.seat_allocations (organization_id, user_id)
        select s.organization_id, (v_item #>> '{}')::uuid
         where not exists (select 1 from public.seat_allocations a
                            where a.organization_id = s.organization_id
                              and a.user_id = (v_item #>> '{}')::uuid and a.status = 'active');
      end loop;
      update public.seat_allocations a set status = 'released', released_at = now()
       where a.organization_id = s.organization_id and a.status = 'active'
         and not (a.user_id::text in (select jsonb_array_elements_text(coalesce(v_sub -> 'seats', '[]'::jsonb))));
    end if;
  end loop;

  v_waiting := coalesce((select array_agg(r) from jsonb_array_elements_text(p_pending -> 'waiting_for') r), '{}')
               || v_unknown;
  if p_event is not null and (coalesce((p_pending ->> 'keep')::boolean, false) or cardinality(v_unknown) > 0) then
    insert into public.pending_webhook_events (provider, event_id, event_type, object_id, reason, payload, waiting_for)
    values (p_event ->> 'provider', p_event ->> 'event_id', coalesce(p_event ->> 'event_type', ''),
            p_event ->> 'object_id',
            concat_ws('; ', nullif(p_pending ->> 'reason', ''),
                      case when cardinality(v_unknown) > 0 then 'the user is not in the database yet' end),
            coalesce(p_event -> 'payload', 'null'::jsonb), v_waiting)
    on conflict (provider, event_id) do nothing;
    v_status := 'kept';
  end if;

  -- Kept events are resolved only by a fold that wrote every subject it touched.
  if cardinality(v_unknown) = 0 then
    update public.pending_webhook_events pe set resolved_at = now()
     where pe.resolved_at is null
       and exists (select 1 from jsonb_array_elements(coalesce(p_resolved, '[]'::jsonb)) r
                    where r ->> 'provider' = pe.provider and r ->> 'event_id' = pe.event_id);
  end if;

  return jsonb_build_object('status', v_status,
    'version', (select count(*) from public.billing_facts f
                 where f.refs && (v_refs || v_new_refs) and f.fact_type <> 'usage'),
    'unknown', to_jsonb(v_unknown), 'conflicts', to_jsonb(v_conflicts));
end
$fn$;

revoke all on function public.tollgate_apply_fold(jsonb, jsonb, bigint, text[], jsonb, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.tollgate_apply_fold(jsonb, jsonb, bigint, text[], jsonb, jsonb, jsonb) to service_role;
