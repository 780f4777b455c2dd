-- tollgate: organizations run by their members (owners and admins invite, give and take
-- seats, change roles; members leave). Every rule is the core's (src/orgs.rs); these
-- functions read what a decision needs in one call and write its effect atomically,
-- checking under the organization's row lock that nothing the decision read has changed
-- meanwhile (its `stamp`), so two concurrent invites never reserve one last seat and an
-- organization never loses its last owner.
--
--   * organization_invites: an invite (email, role, whether a seat is reserved), its
--     single-use token kept as a SHA-256 digest only, expiry, acceptance, revocation.
--   * organization_changes: the organization's history, one row per change (who, when,
--     by whom): created, invited, invite revoked or accepted, role changed, member
--     removed or left, seat given or taken (written by a trigger on seat_allocations,
--     whoever writes it, so a seat lost because the seat count dropped is recorded too).
--   * seat_allocations.allocated_by: who gave the seat, from the seat fact the billing
--     fold applied (src/billing/facts.rs SeatChange.by); released_by likewise.
-- RLS: members read their organization's history, owners and admins its invites;
-- nobody but the service role (the worker) writes.
-- Idempotent: safe to apply to an empty database and again on top of itself.

create table if not exists public.organization_invites (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations(id) on delete cascade,
  email text not null,
  role text not null default 'member',
  seat boolean not null default false,
  token_digest text not null,
  expires_at timestamptz not null,
  created_by uuid references auth.users(id) on delete set null,
  created_at timestamptz not null default now(),
  accepted_at timestamptz,
  accepted_by uuid references auth.users(id) on delete set null,
  revoked_at timestamptz,
  revoked_by uuid references auth.users(id) on delete set null
);
alter table public.organization_invites drop constraint if exists organization_invites_role_check;
alter table public.organization_invites add constraint organization_invites_role_check
  check (role in ('admin', 'member'));
create unique index if not exists organization_invites_token_key on public.organization_invites(token_digest);
create index if not exists organization_invites_open_idx
  on public.organization_invites(organization_id) where accepted_at is null and revoked_at is null;

create table if not exists public.organization_changes (
  id bigserial primary key,
  organization_id uuid not null references public.organizations(id) on delete cascade,
  kind text not null,
  -- Who made the change (null: the billing fold, e.g. a seat lost to a smaller quantity).
  actor_id uuid,
  -- Whom it concerns (a member), or the invited address.
  user_id uuid,
  email text,
  detail jsonb not null default '{}'::jsonb,
  at timestamptz not null default now()
);
alter table public.organization_changes drop constraint if exists organization_changes_kind_check;
alter table public.organization_changes add constraint organization_changes_kind_check
  check (kind in ('created', 'invited', 'invite_revoked', 'invite_accepted', 'role_changed',
                  'member_removed', 'member_left', 'seat_given', 'seat_taken', 'seat_lost'));
create index if not exists organization_changes_org_idx on public.organization_changes(organization_id, id);

alter table public.seat_allocations add column if not exists released_by uuid;

-- Is the signed-in user an owner or an admin of the organization? (For policies; SECURITY
-- DEFINER so that it reads organization_members without recursing into its policy.)
create or replace function public.tollgate_is_org_admin(p_organization_id uuid)
returns boolean
language sql stable security definer
set search_path = ''
as $fn$
  select exists (
    select 1 from public.organization_members m
    where m.organization_id = p_organization_id and m.user_id = auth.uid() and m.role in ('owner', 'admin')
  )
$fn$;

do $rls$
declare
  t text;
begin
  foreach t in array array['organization_invites', 'organization_changes'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from public, anon, authenticated', t);
    execute format('grant select, insert, update, delete on table public.%I to service_role', t);
    execute format('grant select on table public.%I to authenticated', t);
  end loop;
end
$rls$;
revoke all on sequence public.organization_changes_id_seq from public, anon, authenticated;
grant usage, select on sequence public.organization_changes_id_seq to service_role;
revoke all on function public.tollgate_is_org_admin(uuid) from public, anon;
grant execute on function public.tollgate_is_org_admin(uuid) to authenticated, service_role;

drop policy if exists tollgate_read_org on public.organization_invites;
create policy tollgate_read_org on public.organization_invites for select to authenticated
  using (public.tollgate_is_org_admin(organization_id));
drop policy if exists tollgate_read_org on public.organization_changes;
create policy tollgate_read_org on public.organization_changes for select to authenticated
  using (public.tollgate_is_member(organization_id));

-- The latest seat fact of (organization, user): who gave or took the seat, and which.
create or replace function public.tollgate_seat_fact(p_organization_id uuid, p_user_id uuid)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select f.fact from public.billing_facts f
   where f.refs @> array['org:' || p_organization_id::text, 'user:' || p_user_id::text]
     and f.fact_type in ('seat_assigned', 'seat_released')
   order by f.at desc, f.fact_key desc
   limit 1
$fn$;

-- A seat given or taken, whoever writes it (the billing fold): who gave it, who took it,
-- and a row of the organization's history.
create or replace function public.tollgate_seat_history()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
  v_fact jsonb;
  v_by uuid;
begin
  v_fact := public.tollgate_seat_fact(new.organization_id, new.user_id);
  v_by := nullif(v_fact ->> 'by', '')::uuid;
  if tg_op = 'INSERT' then
    if v_fact ->> 'type' = 'seat_assigned' then
      new.allocated_by := coalesce(new.allocated_by, v_by);
    end if;
    insert into public.organization_changes (organization_id, kind, actor_id, user_id)
    values (new.organization_id, 'seat_given', new.allocated_by, new.user_id);
  elsif old.status = 'active' and new.status = 'released' then
    if v_fact ->> 'type' = 'seat_released' then
      new.released_by := coalesce(new.released_by, v_by);
      insert into public.organization_changes (organization_id, kind, actor_id, user_id)
      values (new.organization_id, 'seat_taken', new.released_by, new.user_id);
    else
      -- Still assigned, yet released: the seat count dropped below this member's place.
      insert into public.organization_changes (organization_id, kind, actor_id, user_id, detail)
      values (new.organization_id, 'seat_lost', null, new.user_id,
              jsonb_build_object('seat_count', (select o.seat_count from public.organizations o
                                                 where o.id = new.organization_id)));
    end if;
  end if;
  return new;
end
$fn$;

drop trigger if exists tollgate_seat_history on public.seat_allocations;
create trigger tollgate_seat_history before insert or update of status on public.seat_allocations
  for each row execute function public.tollgate_seat_history();

-- What an organization decision reads (the core's `orgs::Org`), with a stamp of it all:
-- {"id", "name", "seat_count", "members": [{"user_id", "role", "seat", "email",
-- "joined_at"}], "invites": [open invites], "grants": [the organization's grants], "stamp"};
-- null when there is no such organization.
create or replace function public.tollgate_org(p_org uuid)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  v jsonb;
begin
  select jsonb_build_object(
    'id', o.id, 'name', o.name, 'seat_count', o.seat_count,
    'members', coalesce((
      select jsonb_agg(jsonb_build_object(
               'user_id', m.user_id, 'role', m.role, 'email', u.email, 'joined_at', m.created_at,
               'seat', exists (select 1 from public.seat_allocations a
                                where a.organization_id = m.organization_id and a.user_id = m.user_id
                                  and a.status = 'active'))
             order by m.created_at, m.user_id)
        from public.organization_members m
        left join auth.users u on u.id = m.user_id
       where m.organization_id = o.id), '[]'::jsonb),
    'invites', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', i.id, 'organization_id', i.organization_id, 'email', i.email, 'role', i.role,
               'seat', i.seat, 'expires_at', i.expires_at, 'created_by', i.created_by,
               'created_at', i.created_at)
             order by i.created_at, i.id)
        from public.organization_invites i
       where i.organization_id = o.id and i.accepted_at is null and i.revoked_at is null), '[]'::jsonb),
    'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key) from public.cloud_entitlements g
                         where g.organization_id = o.id), '[]'::jsonb))
    into v
    from public.organizations o
   where o.id = p_org;
  if v is null then
    return null;
  end if;
  return v || jsonb_build_object('stamp', md5((v - 'grants')::text));
end
$fn$;

-- An invite by its token's digest, with its organization as tollgate_org reads it:
-- {"invite": {..., "accepted_at", "accepted_by", "revoked_at"}, "org": {...}}; null when
-- no invite has that digest.
create or replace function public.tollgate_invite(p_token_digest text)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select jsonb_build_object(
    'invite', jsonb_build_object(
      'id', i.id, 'organization_id', i.organization_id, 'email', i.email, 'role', i.role, 'seat', i.seat,
      'expires_at', i.expires_at, 'created_by', i.created_by, 'created_at', i.created_at,
      'accepted_at', i.accepted_at, 'accepted_by', i.accepted_by, 'revoked_at', i.revoked_at),
    'org', public.tollgate_org(i.organization_id))
    from public.organization_invites i
   where i.token_digest = p_token_digest
$fn$;

-- Writes one change the core decided, in one transaction, with its history row:
--   {"kind": "create", "id"?, "name", "by"}                      -> {"id"}
--   {"kind": "invite", "org", "email", "role", "seat", "token_digest", "expires_at", "by", "stamp"}
--                                                               -> {"id"}
--   {"kind": "revoke", "org", "invite", "by"}
--   {"kind": "accept", "org", "invite", "user", "role", "now"}
--   {"kind": "role", "org", "user", "role", "by", "stamp"}
--   {"kind": "remove", "org", "user", "by", "left", "stamp"}
-- Under the organization's row lock: a `stamp` that is no longer tollgate_org's is PT409
-- hint org_stale (the worker reads again and the core decides again); an invite already
-- accepted or revoked, or expired at `now`, is PT409 hint invite_closed.
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
    on conflict (organization_id, user_id) do update set role = excluded.role;
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

-- The organizations a user belongs to, for its signed snapshot: each one's name, the
-- user's role and seat, the seat counts (held, and reserved by invites pending at p_now)
-- and the organization's grants.
create or replace function public.tollgate_user_organizations(p_user uuid, p_now timestamptz)
returns jsonb
language sql stable
set search_path = ''
as $fn$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', o.id, 'name', o.name, 'role', m.role, 'seat_count', o.seat_count,
           'seat', exists (select 1 from public.seat_allocations a
                            where a.organization_id = o.id and a.user_id = m.user_id and a.status = 'active'),
           'used', (select count(*) from public.seat_allocations a
                     where a.organization_id = o.id and a.status = 'active'),
           'reserved', (select count(*) from public.organization_invites i
                         where i.organization_id = o.id and i.seat and i.accepted_at is null
                           and i.revoked_at is null and i.expires_at > p_now),
           'grants', coalesce((select jsonb_agg(to_jsonb(g) order by g.grant_key) from public.cloud_entitlements g
                                where g.organization_id = o.id), '[]'::jsonb))
         order by m.created_at, o.id), '[]'::jsonb)
    from public.organization_members m
    join public.organizations o on o.id = m.organization_id
   where m.user_id = p_user
$fn$;

revoke all on function public.tollgate_seat_fact(uuid, uuid) from public, anon, authenticated;
revoke all on function public.tollgate_org(uuid) from public, anon, authenticated;
revoke all on function public.tollgate_invite(text) from public, anon, authenticated;
revoke all on function public.tollgate_org_change(jsonb) from public, anon, authenticated;
revoke all on function public.tollgate_user_organizations(uuid, timestamptz) from public, anon, authenticated;
grant execute on function public.tollgate_seat_fact(uuid, uuid) to service_role;
grant execute on function public.tollgate_org(uuid) to service_role;
grant execute on function public.tollgate_invite(text) to service_role;
grant execute on function public.tollgate_org_change(jsonb) to service_role;
grant execute on function public.tollgate_user_organizations(uuid, timestamptz) to service_role;
