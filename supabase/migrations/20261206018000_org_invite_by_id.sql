-- tollgate: one invite of an organization by its id, whatever its state.
--
-- `tollgate_org` lists an organization's open invites only, so revoking an invite that was
-- accepted or revoked already found none and was answered 404 `unknown_invite`: the worker
-- now reads the invite itself and the core answers 409 `invite_used` for an accepted one
-- and `revoked` again for a revoked one. Same shape as `tollgate_invite`'s `invite`; null
-- when the organization has no such invite. Service role only.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_org_invite(p_org uuid, p_invite uuid)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select jsonb_build_object(
    'id', i.id, 'organization_id', i.organization_id, 'email', i.email, 'role', i.role, 'seat', i.seat,
    'expires_at', i.expires_at, 'created_by', i.created_by, 'created_at', i.created_at,
    'accepted_at', i.accepted_at, 'accepted_by', i.accepted_by, 'revoked_at', i.revoked_at)
    from public.organization_invites i
   where i.id = p_invite and i.organization_id = p_org
$fn$;
revoke all on function public.tollgate_org_invite(uuid, uuid) from public, anon, authenticated;
grant execute on function public.tollgate_org_invite(uuid, uuid) to service_role;
