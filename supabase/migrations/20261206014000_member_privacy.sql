-- tollgate: a member of an organization reads what concerns it; owners and admins read all.
--
-- The core shows a plain member only its own membership and seat (`orgs::view`), yet the
-- policies let any member read every member's row, every seat (who gave and took it) and
-- the whole history, whose invite rows carry invited addresses (pending and revoked ones
-- too) and the address of each member who joined by invite. Now, as the core shows it:
--   * organization_members, seat_allocations: a member reads its own rows; owners and
--     admins every row of the organization;
--   * organization_changes: owners and admins every row; a member the rows about itself.
-- Also: the sequence of tollgate_catalog_activations kept the default grants of anon and
-- authenticated (who could set it to its end and stop every later activation); revoked as
-- every other sequence is.
-- Idempotent: safe to apply to an empty database and again on top of itself.

drop policy if exists tollgate_read_own on public.organization_members;
create policy tollgate_read_own on public.organization_members for select to authenticated
  using (user_id = (select auth.uid()) or public.tollgate_is_org_admin(organization_id));

drop policy if exists tollgate_read_own on public.seat_allocations;
create policy tollgate_read_own on public.seat_allocations for select to authenticated
  using (user_id = (select auth.uid()) or public.tollgate_is_org_admin(organization_id));

drop policy if exists tollgate_read_org on public.organization_changes;
create policy tollgate_read_org on public.organization_changes for select to authenticated
  using (user_id = (select auth.uid()) or public.tollgate_is_org_admin(organization_id));

revoke all on sequence public.tollgate_catalog_activations_seq_seq from public, anon, authenticated;
grant usage, select on sequence public.tollgate_catalog_activations_seq_seq to service_role;
