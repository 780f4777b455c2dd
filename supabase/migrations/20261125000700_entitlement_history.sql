-- tollgate: the history of every grant, kept by the database itself.
--
-- cloud_entitlements holds each grant's current state only; a renewal, a failed payment
-- or a cancellation overwrites the row. entitlement_history keeps one row per change,
-- written by a trigger on cloud_entitlements in the same transaction as the change, so
-- no writer (the worker's fold, an admin grant, a manual SQL fix) can change a grant
-- without leaving a trace:
--   * which grant (the row id and its stable grant_key), whose (user or organization),
--     the product (cloud_id), tier, source, source_ref and offer;
--   * the operation (insert, update, delete) with the status and the validity window
--     (valid_from, valid_to, past_due_since) before and after (null before an insert,
--     null after a delete);
--   * changed_at = now(), the transaction's time (timestamptz: an instant, UTC).
-- Updates that change none of the tracked columns (updated_at alone) are not recorded.
-- When a subject is deleted (auth.users, organizations), its grants go with it and so
-- does their history (on delete cascade); the cascade's own deletes are not recorded.
--
-- RLS as on cloud_entitlements: a signed-in user reads the rows of its own grants (and
-- of an organization it is a member of), anon reads nothing, only the service role may
-- write (and the trigger, which runs as the table owner).
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.entitlement_history (
  id bigserial primary key,
  entitlement_id uuid not null,
  grant_key text not null,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  operation text not null,
  cloud_id text not null,
  tier text not null,
  old_tier text,
  source text not null,
  source_ref text,
  offer_key text,
  old_status text,
  new_status text,
  old_valid_from timestamptz,
  new_valid_from timestamptz,
  old_valid_to timestamptz,
  new_valid_to timestamptz,
  old_past_due_since timestamptz,
  new_past_due_since timestamptz,
  changed_at timestamptz not null default now()
);

alter table public.entitlement_history drop constraint if exists entitlement_history_operation_check;
alter table public.entitlement_history add constraint entitlement_history_operation_check
  check (operation in ('insert', 'update', 'delete'));
alter table public.entitlement_history drop constraint if exists entitlement_history_subject_check;
alter table public.entitlement_history add constraint entitlement_history_subject_check
  check (num_nonnulls(user_id, organization_id) = 1);

create index if not exists entitlement_history_user_idx
  on public.entitlement_history(user_id, changed_at) where user_id is not null;
create index if not exists entitlement_history_organization_idx
  on public.entitlement_history(organization_id, changed_at) where organization_id is not null;
create index if not exists entitlement_history_grant_idx
  on public.entitlement_history(entitlement_id, id);

-- The trigger function runs as its owner (security definer) so the history is written
-- whoever changes a grant; it is not callable directly (trigger functions never are).
create or replace function public.tollgate_record_entitlement_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
  if tg_op = 'INSERT' then
    insert into public.entitlement_history (
      entitlement_id, grant_key, user_id, organization_id, operation, cloud_id, tier, source,
      source_ref, offer_key, new_status, new_valid_from, new_valid_to, new_past_due_since)
    values (
      new.id, new.grant_key, new.user_id, new.organization_id, 'insert', new.cloud_id, new.tier,
      new.source, new.source_ref, new.offer_key, new.status, new.valid_from, new.valid_to,
      new.past_due_since);
    return null;
  elsif tg_op = 'UPDATE' then
    if (old.cloud_id, old.tier, old.source, old.status, old.valid_from, old.valid_to,
        old.past_due_since, old.source_ref, old.offer_key, old.user_id, old.organization_id)
       is not distinct from
       (new.cloud_id, new.tier, new.source, new.status, new.valid_from, new.valid_to,
        new.past_due_since, new.source_ref, new.offer_key, new.user_id, new.organization_id) then
      return null;
    end if;
    insert into public.entitlement_history (
      entitlement_id, grant_key, user_id, organization_id, operation, cloud_id, tier, old_tier,
      source, source_ref, offer_key, old_status, new_status, old_valid_from, new_valid_from,
      old_valid_to, new_valid_to, old_past_due_since, new_past_due_since)
    values (
      new.id, new.grant_key, new.user_id, new.organization_id, 'update', new.cloud_id, new.tier,
      case when old.tier is distinct from new.tier then old.tier end,
      new.source, new.source_ref, new.offer_key, old.status, new.status, old.valid_from,
      new.valid_from, old.valid_to, new.valid_to, old.past_due_since, new.past_due_since);
    return null;
  else
    -- A subject being deleted takes its history with it: nothing to record (and a row
    -- naming a deleted subject could not be inserted).
    if old.user_id is not null and not exists (select 1 from auth.users u where u.id = old.user_id) then
      return null;
    end if;
    if old.organization_id is not null
       and not exists (select 1 from public.organizations o where o.id = old.organization_id) then
      return null;
    end if;
    insert into public.entitlement_history (
      entitlement_id, grant_key, user_id, organization_id, operation, cloud_id, tier, source,
      source_ref, offer_key, old_status, old_valid_from, old_valid_to, old_past_due_since)
    values (
      old.id, old.grant_key, old.user_id, old.organization_id, 'delete', old.cloud_id, old.tier,
      old.source, old.source_ref, old.offer_key, old.status, old.valid_from, old.valid_to,
      old.past_due_since);
    return null;
  end if;
end
$fn$;
revoke all on function public.tollgate_record_entitlement_change() from public, anon, authenticated;

drop trigger if exists cloud_entitlements_history on public.cloud_entitlements;
create trigger cloud_entitlements_history
  after insert or update or delete on public.cloud_entitlements
  for each row execute function public.tollgate_record_entitlement_change();

-- Grants that existed before this migration get their current state as a first row,
-- once (a second application finds them recorded).
insert into public.entitlement_history (
  entitlement_id, grant_key, user_id, organization_id, operation, cloud_id, tier, source,
  source_ref, offer_key, new_status, new_valid_from, new_valid_to, new_past_due_since, changed_at)
select ce.id, ce.grant_key, ce.user_id, ce.organization_id, 'insert', ce.cloud_id, ce.tier,
       ce.source, ce.source_ref, ce.offer_key, ce.status, ce.valid_from, ce.valid_to,
       ce.past_due_since, coalesce(ce.created_at, now())
  from public.cloud_entitlements ce
 where not exists (select 1 from public.entitlement_history h where h.entitlement_id = ce.id);

-- Privileges and row level security, as in 20261125000400_rls.sql.
do $rls$
begin
  alter table public.entitlement_history enable row level security;
  revoke all on table public.entitlement_history from public, anon, authenticated;
  grant select, insert, update, delete on table public.entitlement_history to service_role;
  grant select on table public.entitlement_history to authenticated;
  revoke all on sequence public.entitlement_history_id_seq from public, anon, authenticated;
  grant usage, select on sequence public.entitlement_history_id_seq to service_role;
end
$rls$;

drop policy if exists tollgate_read_own on public.entitlement_history;
create policy tollgate_read_own on public.entitlement_history for select to authenticated
  using (user_id = (select auth.uid())
         or (organization_id is not null and public.tollgate_is_member(organization_id)));
