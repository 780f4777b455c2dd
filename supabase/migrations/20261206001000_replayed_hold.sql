-- A replayed hold answers as the hold did: the record of a charge's answer
-- (tollgate_charge_answer, which tollgate_charge_replay answers a retry with) also carries
-- the record's `status` as stored now (`charged`, `held`, `captured`, `released`) and, for a
-- hold, `hold_until` (RFC 3339 in UTC with a `Z`, as the worker writes it), so
-- `POST /v1/track` with `"hold": true` retried under the same Idempotency-Key answers the
-- `hold_until` its first answer had. Replaces the form of 20261204000000; the rest is as it was.
create or replace function public.tollgate_charge_answer(p_user uuid, p_org uuid, p_status text, p_usage_id uuid)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select jsonb_build_object(
    'status', p_status,
    'usage_id', p_usage_id,
    'record', (select jsonb_build_object('request_id', u.request_id, 'units', u.units, 'model', u.model,
                                         'quality', u.quality, 'pool', u.pool, 'cost_minor', u.cost_minor,
                                         'overage_minor', u.overage_minor, 'overage_units', u.overage_units,
                                         'currency', u.currency, 'takes', u.charges, 'created_at', u.created_at,
                                         'status', u.status)
                      || case when u.hold_until is null then '{}'::jsonb
                              else jsonb_build_object('hold_until',
                                     to_char(u.hold_until at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) end
                 from public.usage_records u where u.id = p_usage_id),
    'balances', (select coalesce(jsonb_object_agg(c.pool, c.available), '{}'::jsonb)
                   from public.credit_balances c
                  where (c.user_id = p_user or c.organization_id = p_org)))
$fn$;

revoke all on function public.tollgate_charge_answer(uuid, uuid, text, uuid) from public, anon, authenticated;
grant execute on function public.tollgate_charge_answer(uuid, uuid, text, uuid) to service_role;
