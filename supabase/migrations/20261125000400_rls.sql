-- tollgate: row level security and privileges on every table.
--
-- Rules:
--   * anon (not signed in) has no privilege on any tollgate table: it reads nothing;
--   * authenticated (a signed-in user) may only SELECT, and row level security shows it
--     its own rows, or rows of an organization it is a member of;
--   * service_role (the worker's key; BYPASSRLS) is the only writer;
--   * webhook_events and pending_webhook_events carry raw provider payloads: service
--     role only, no policy for users.
-- Supabase grants everything on new public tables to anon and authenticated by default;
-- the revokes below undo that for tollgate's tables, and RLS stays on as a second wall.
-- Idempotent: safe to apply to an empty database and again on top of itself.

do $rls$
declare
  t text;
begin
  foreach t in array array[
    'cloud_entitlements', 'organizations', 'organization_members', 'seat_allocations',
    'billing_subjects', 'webhook_events', 'pending_webhook_events', 'billing_customers',
    'billing_subscriptions', 'credit_lots', 'credit_balances', 'credit_ledger', 'usage_records',
    'usage_preferences'
  ] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from public, anon, authenticated', t);
    execute format('grant select, insert, update, delete on table public.%I to service_role', t);
  end loop;

  foreach t in array array[
    'cloud_entitlements', 'organizations', 'organization_members', 'seat_allocations',
    'billing_subjects', 'billing_customers', 'billing_subscriptions', 'credit_lots',
    'credit_balances', 'credit_ledger', 'usage_records', 'usage_preferences'
  ] loop
    execute format('grant select on table public.%I to authenticated', t);
  end loop;
end
$rls$;

revoke all on sequence public.webhook_events_id_seq, public.pending_webhook_events_id_seq,
  public.credit_ledger_id_seq, public.credit_lots_id_seq from public, anon, authenticated;
grant usage, select on sequence public.webhook_events_id_seq, public.pending_webhook_events_id_seq,
  public.credit_ledger_id_seq, public.credit_lots_id_seq to service_role;

-- The membership test runs inside policies, as the signed-in user.
revoke all on function public.tollgate_is_member(uuid) from public, anon;
grant execute on function public.tollgate_is_member(uuid) to authenticated, service_role;

-- Subject-scoped tables: own rows, or rows of an organization the user belongs to.
do $policies$
declare
  t text;
begin
  foreach t in array array[
    'cloud_entitlements', 'billing_subjects', 'billing_customers', 'billing_subscriptions',
    'credit_lots', 'credit_balances', 'credit_ledger', 'usage_records', 'usage_preferences'
  ] loop
    execute format('drop policy if exists tollgate_read_own on public.%I', t);
    execute format(
      'create policy tollgate_read_own on public.%I for select to authenticated using ('
      || 'user_id = (select auth.uid()) '
      || 'or (organization_id is not null and public.tollgate_is_member(organization_id)))', t);
  end loop;
end
$policies$;

drop policy if exists tollgate_read_own on public.organizations;
create policy tollgate_read_own on public.organizations for select to authenticated
  using (public.tollgate_is_member(id));

drop policy if exists tollgate_read_own on public.organization_members;
create policy tollgate_read_own on public.organization_members for select to authenticated
  using (user_id = (select auth.uid()) or public.tollgate_is_member(organization_id));

drop policy if exists tollgate_read_own on public.seat_allocations;
create policy tollgate_read_own on public.seat_allocations for select to authenticated
  using (user_id = (select auth.uid()) or public.tollgate_is_member(organization_id));
