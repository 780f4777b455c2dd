-- tollgate: the grace and trial scans tell when each row's subject was last folded.
--
-- The scheduled run folds again the subject of every failed payment whose grace rule
-- turned during the last day, and of every trialing subscription whose trial rule did.
-- Those rows stay in the scan for that day, and each run read them from the start of its
-- range: a run whose budget folds fewer subjects than the range holds (21 on Workers Free)
-- folded the same first ones again every run, and the others' alerts never came. Now each
-- row carries `folded_at`, the time its subject's latest fold was written
-- (billing_subjects.updated_at, which every fold sets), and the worker passes a row whose
-- subject was folded after its rule turned. Otherwise the functions of 20261206023000,
-- unchanged (same arguments, order, pages and rights; one more field in each row).
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_failed_payments_due(p_from timestamptz, p_to timestamptz,
                                                               p_after text default null,
                                                               p_limit integer default 200)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(x.r order by x.grace_until, x.id), '[]'::jsonb) from (
    select fp.id, fp.grace_until,
           jsonb_build_object(
             'cursor', to_char(fp.grace_until at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|' || fp.id::text,
             'provider', fp.provider, 'invoice_id', fp.invoice_id, 'subscription_id', fp.subscription_id,
             'subject', case when fp.user_id is not null then jsonb_build_object('user_id', fp.user_id)
                             else jsonb_build_object('organization_id', fp.organization_id) end,
             'amount_due', fp.amount_due, 'currency', fp.currency, 'attempt_count', fp.attempt_count,
             'next_retry_at', fp.next_retry_at, 'first_failed_at', fp.first_failed_at,
             'last_failed_at', fp.last_failed_at, 'grace_until', fp.grace_until,
             'resolved_at', fp.resolved_at, 'resolution', fp.resolution, 'resolved_by', fp.resolved_by,
             'folded_at', (select b.updated_at from public.billing_subjects b
                            where b.user_id = fp.user_id or b.organization_id = fp.organization_id limit 1)) as j
      from public.failed_payments fp
     where fp.resolved_at is null and fp.grace_until is not null
       and fp.grace_until > p_from and fp.grace_until <= p_to
       and (p_after is null
            or (fp.grace_until, fp.id) > (split_part(p_after, '|', 1)::timestamptz, split_part(p_after, '|', 2)::uuid))
     order by fp.grace_until, fp.id
     limit greatest(1, least(coalesce(p_limit, 200), 1000))
  ) x(id, grace_until, r)
$fn$;
revoke all on function public.tollgate_failed_payments_due(timestamptz, timestamptz, text, integer)
  from public, anon, authenticated;
grant execute on function public.tollgate_failed_payments_due(timestamptz, timestamptz, text, integer) to service_role;

-- Trialing subscriptions whose trial ends in (p_from, p_to], by trial end then id.
--   p_after  the `cursor` of the last row of the previous page
-- Returns [{"cursor", "subject", "trial_end"}], the cursor being the trial end and the id.
create or replace function public.tollgate_trials_ending(p_from timestamptz, p_to timestamptz,
                                                         p_after text default null,
                                                         p_limit integer default 200)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(x.r order by x.trial_end, x.id), '[]'::jsonb) from (
    select s.id, s.trial_end,
           jsonb_build_object(
             'cursor', to_char(s.trial_end at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|' || s.id::text,
             'subject', case when s.user_id is not null then jsonb_build_object('user_id', s.user_id)
                             else jsonb_build_object('organization_id', s.organization_id) end,
             'trial_end', s.trial_end,
             'folded_at', (select b.updated_at from public.billing_subjects b
                            where b.user_id = s.user_id or b.organization_id = s.organization_id limit 1)) as r
      from public.billing_subscriptions s
     where s.status = 'trialing' and s.trial_end is not null
       and s.trial_end > p_from and s.trial_end <= p_to
       and (p_after is null
            or (s.trial_end, s.id) > (split_part(p_after, '|', 1)::timestamptz, split_part(p_after, '|', 2)::uuid))
     order by s.trial_end, s.id
     limit greatest(1, least(coalesce(p_limit, 200), 1000))
  ) x(id, trial_end, r)
$fn$;
revoke all on function public.tollgate_trials_ending(timestamptz, timestamptz, text, integer)
  from public, anon, authenticated;
grant execute on function public.tollgate_trials_ending(timestamptz, timestamptz, text, integer) to service_role;
