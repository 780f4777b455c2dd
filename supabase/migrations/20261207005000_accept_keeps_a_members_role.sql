-- tollgate: accepting an invite never changes the role of someone already a member.
--
-- The worker decides an acceptance on what it read (the core refuses an invite to a
-- member), then writes it here. Someone who became a member between that read and this
-- write (by another invite accepted at the same moment) had their role overwritten by the
-- invite's: an owner accepting an old member invite was demoted, a member accepting an old
-- admin invite was promoted. Now the membership they hold stays as it is (`do nothing`);
-- the invite is still marked accepted by them, and the history says so. Otherwise the
-- function of 20261205001000, unchanged.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create or replace function public.tollgate_org_change(p_change jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  v_kind text := p_change ->> 'kind';
  v_org uuid := nullif(p_change ->> 'org', '')::uuid;
  v_by uuid := nullif(p_change ->> 'by', '')::uuid;
  v_user uuid := nullif(p_change ->> 'user', '')::uuid;
  v_id uuid;
  v_old text;
begin
  if v_kind = 'create' then
    v_id := coalesce(nullif(p_change ->> 'id', '')::uuid, gen_random_uuid());
    insert into public.organizations (id, name) values (v_id, p_change ->> 'name');
    insert into public.organization_members (organization_id, user_id, role) values (v_id, v_by, 'owner');
    insert into public.organization_changes (organization_id, kind, actor_id, user_id, detail)
    values (v_id, 'created', v_by, v_by, jsonb_build_object('name', p_change ->> 'name'));
    return jsonb_build_object('id', v_id);
  end if;

  perform 1 from public.organizations o where o.id = v_org for update;
  if not found then
    raise exception using errcode = 'PT404', message = 'no such organization', hint = 'unknown_organization';
  end if;
  if p_change ? 'stamp' and (public.tollgate_org(v_org) ->> 'stamp') is distinct from (p_change ->> 'stamp') then
    raise exception using errcode = 'PT409', message = 'the organization changed meanwhile', hint = 'org_stale';
  end if;

  if v_kind = 'invite' then
    insert into public.organization_invites (organization_id, email, role, seat, token_digest, expires_at, created_by)
    values (v_org, p_change ->> 'email', p_change ->> 'role', (p_change ->> 'seat')::boolean,
            p_change ->> 'token_digest', (p_change ->> 'expires_at')::timestamptz, v_by)
    returning id into v_id;
    insert into public.organization_changes (organization_id, kind, actor_id, email, detail)
    values (v_org, 'invited', v_by, p_change ->> 'email',
            jsonb_build_object('invite', v_id, 'role', p_change ->> 'role', 'seat', (p_change ->> 'seat')::boolean));
    return jsonb_build_object('id', v_id);
  elsif v_kind = 'revoke' then
    update public.organization_invites i set revoked_at = now(), revoked_by = v_by
     where i.id = (p_change ->> 'invite')::uuid and i.organization_id = v_org
       and i.accepted_at is null and i.revoked_at is null
    returning i.id into v_id;
    if v_id is not null then
      insert into public.organization_changes (organization_id, kind, actor_id, email, detail)
      select v_org, 'invite_revoked', v_by, i.email, jsonb_build_object('invite', i.id)
        from public.organization_invites i where i.id = v_id;
    end if;
    return jsonb_build_object('revoked', v_id is not null);
  elsif v_kind = 'accept' then
    update public.organization_invites i set accepted_at = now(), accepted_by = v_user
     where i.id = (p_change ->> 'invite')::uuid and i.organization_id = v_org
       and i.accepted_at is null and i.revoked_at is null
       and i.expires_at > (p_change ->> 'now')::timestamptz
    returning i.id into v_id;
    if v_id is null then
      raise exception using errcode = 'PT409', message = 'the invite was accepted, revoked or expired meanwhile',
                            hint = 'invite_closed';
    end if;
    insert into public.organization_members (organization_id, user_id, role)
    values (v_org, v_user, p_change ->> 'role')
    on conflict (organization_id, user_id) do nothing;
    insert into public.organization_changes (organization_id, kind, actor_id, user_id, email, detail)
    select v_org, 'invite_accepted', v_user, v_user, i.email,
           jsonb_build_object('invite', i.id, 'role', p_change ->> 'role', 'invited_by', i.created_by)
      from public.organization_invites i where i.id = v_id;
    return jsonb_build_object('accepted', v_id);
  elsif v_kind = 'role' then
    select m.role into v_old from public.organization_members m
     where m.organization_id = v_org and m.user_id = v_user;
    update public.organization_members m set role = p_change ->> 'role'
     where m.organization_id = v_org and m.user_id = v_user;
    if v_old is distinct from p_change ->> 'role' then
      insert into public.organization_changes (organization_id, kind, actor_id, user_id, detail)
      values (v_org, 'role_changed', v_by, v_user, jsonb_build_object('from', v_old, 'to', p_change ->> 'role'));
    end if;
    return jsonb_build_object('role', p_change ->> 'role');
  elsif v_kind = 'remove' then
    delete from public.organization_members m where m.organization_id = v_org and m.user_id = v_user;
    insert into public.organization_changes (organization_id, kind, actor_id, user_id)
    values (v_org, case when coalesce((p_change ->> 'left')::boolean, false) then 'member_left' else 'member_removed' end,
            v_by, v_user);
    return jsonb_build_object('removed', v_user);
  end if;
  raise exception using errcode = '22023', message = format('unknown change kind %s', v_kind);
end
$fn$;

revoke all on function public.tollgate_org_change(jsonb) from public, anon, authenticated;
grant execute on function public.tollgate_org_change(jsonb) to service_role;
