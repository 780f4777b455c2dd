-- tollgate: limits counted on the server.
--
-- A use of a limited feature (`POST /v1/track`: workflow runs a day, courses authored) is
-- counted per subject, limit and window (the window's first instant, decided by the core
-- from `now` in UTC) in `usage_counters`, and recorded once per request id in
-- `usage_records` (its `feature` and `window_start`; no lots, no pool, no price). The
-- count may not pass the limit the core read from the subject's tier: the increment and
-- the check are one statement on the counter's row, so concurrent uses admit exactly as
-- many as the limit allows. A limit may count per scope (the Org Seats app's students per
-- course): the core names the counter `<limit>:<scope>` and the record keeps it in
-- `counter`. An organization's limit counts for the whole organization, used by its
-- seated members: the record belongs to the organization and `actor_id` names the member.
-- Idempotent: safe to apply to an empty database and again on top of itself.

alter table public.usage_records add column if not exists feature text;
alter table public.usage_records add column if not exists window_start timestamptz;
-- The counter a use went to when it is not its feature's own (`<limit>:<scope>`), and the
-- member who used an organization's limit.
alter table public.usage_records add column if not exists counter text;
alter table public.usage_records add column if not exists actor_id uuid;
-- The member's uses, for its own release and reads (null for most rows: partial).
create index if not exists usage_records_actor_idx on public.usage_records(actor_id) where actor_id is not null;

create table if not exists public.usage_counters (
  owner_id uuid not null,
  user_id uuid references auth.users(id) on delete cascade,
  organization_id uuid references public.organizations(id) on delete cascade,
  limit_id text not null,
  window_start timestamptz not null,
  used bigint not null default 0,
  updated_at timestamptz not null default now(),
  primary key (owner_id, limit_id, window_start)
);
alter table public.usage_counters drop constraint if exists usage_counters_subject_check;
alter table public.usage_counters add constraint usage_counters_subject_check
  check (num_nonnulls(user_id, organization_id) = 1 and owner_id = coalesce(user_id, organization_id));
alter table public.usage_counters drop constraint if exists usage_counters_used_check;
alter table public.usage_counters add constraint usage_counters_used_check check (used >= 0);
create index if not exists usage_counters_user_id_idx on public.usage_counters(user_id) where user_id is not null;
create index if not exists usage_counters_organization_id_idx
  on public.usage_counters(organization_id) where organization_id is not null;

-- Read by the subject (own rows, or its organization's), written by the service role only.
alter table public.usage_counters enable row level security;
revoke all on table public.usage_counters from public, anon, authenticated;
grant select, insert, update, delete on table public.usage_counters to service_role;
grant select on table public.usage_counters to authenticated;
drop policy if exists tollgate_read_own on public.usage_counters;
create policy tollgate_read_own on public.usage_counters for select to authenticated using (
  user_id = (select auth.uid()) or (organization_id is not null and public.tollgate_is_member(organization_id)));

-- How much of `p_limit` the subject used in the window starting at `p_window_start`.
create or replace function public.tollgate_counter(p_subject jsonb, p_limit text, p_window_start timestamptz)
returns bigint
language sql stable
set search_path = ''
as $fn$
  select coalesce((select c.used from public.usage_counters c
                    where c.owner_id = coalesce(nullif(p_subject ->> 'user_id', '')::uuid,
                                                nullif(p_subject ->> 'organization_id', '')::uuid)
                      and c.limit_id = p_limit and c.window_start = p_window_start), 0)
$fn$;

-- The answer of a request id counted before ({"status": "replayed", "usage_id", "used":
-- the window's count now}), or null: what a retry is answered, also once the limit is
-- reached. Another request under the same id: PT409 key_reused.
create or replace function public.tollgate_track_replay(p_subject jsonb, p_request_id text, p_request_hash text)
returns jsonb
language plpgsql stable
set search_path = ''
as $fn$
declare
  s record;
  v record;
begin
  s := public.tollgate_subject_ids(p_subject);
  select u.id, u.request_hash, u.user_id, u.organization_id, u.feature, u.counter, u.window_start into v
    from public.usage_records u where u.request_id = p_request_id;
  if not found then
    return null;
  end if;
  if v.request_hash is distinct from p_request_hash or v.user_id is distinct from s.user_id
     or v.organization_id is distinct from s.organization_id then
    raise exception using errcode = 'PT409', message = 'Idempotency-Key was already used for a different request',
      hint = 'key_reused';
  end if;
  return jsonb_build_object('status', 'replayed', 'usage_id', v.id,
    'used', public.tollgate_counter(p_subject, coalesce(v.counter, v.feature), v.window_start));
end
$fn$;

-- Counts one use decided by the core (tollgate::meter::track), once per request id.
--   p_subject  {"user_id"} or {"organization_id"}
--   p_count    {"request_id", "request_hash", "feature", "quantity", "window_start",
--               "max": the limit, or null for unlimited, "counter"?: `<feature>:<scope>`
--               (default the feature), "actor"?: the `user:<id>` acting for an
--               organization subject}
-- Answers {"status": "counted", "usage_id", "used"} (the window's count after this use),
-- {"status": "limit_reached", "used"} (nothing written: the count would pass the
-- limit), or {"status": "replayed", "usage_id", "used"} for a request id counted before.
-- Another request under the same request id: PT409, hint key_reused.
create or replace function public.tollgate_track(p_subject jsonb, p_count jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $fn$
declare
  s record;
  v_owner uuid;
  v_request_id text := p_count ->> 'request_id';
  v_feature text := p_count ->> 'feature';
  v_counter text := coalesce(nullif(p_count ->> 'counter', ''), p_count ->> 'feature');
  v_actor uuid := nullif(substr(coalesce(p_count ->> 'actor', ''), 6), '')::uuid;
  v_quantity bigint := (p_count ->> 'quantity')::bigint;
  v_window timestamptz := (p_count ->> 'window_start')::timestamptz;
  v_max bigint := (p_count ->> 'max')::bigint;
  v_existing jsonb;
  v_used bigint;
  v_usage_id uuid;
begin
  s := public.tollgate_subject_ids(p_subject);
  v_owner := coalesce(s.user_id, s.organization_id);
  if coalesce(v_request_id, '') = '' or coalesce(p_count ->> 'request_hash', '') = ''
     or coalesce(v_feature, '') = '' or v_window is null then
    raise exception using errcode = '22023', message = 'a count needs request_id, request_hash, feature and window_start';
  end if;
  if v_quantity is null or v_quantity <= 0 or (v_max is not null and v_max < 0) then
    raise exception using errcode = '22023', message = 'a count needs a positive quantity and a limit of 0 or more';
  end if;
  if v_counter <> v_feature and left(v_counter, length(v_feature) + 1) <> v_feature || ':' then
    raise exception using errcode = '22023', message = 'a count''s counter is its feature or `<feature>:<scope>`';
  end if;
  if coalesce(p_count ->> 'actor', '') <> '' and (s.organization_id is null or left(p_count ->> 'actor', 5) <> 'user:') then
    raise exception using errcode = '22023', message = 'an actor is the user:<id> acting for an organization subject';
  end if;

  v_existing := public.tollgate_track_replay(p_subject, v_request_id, p_count ->> 'request_hash');
  if v_existing is not null then
    return v_existing;
  end if;

  if v_max is not null and v_quantity > v_max then
    return jsonb_build_object('status', 'limit_reached', 'used', public.tollgate_counter(p_subject, v_counter, v_window));
  end if;
  insert into public.usage_counters as c (owner_id, user_id, organization_id, limit_id, window_start, used)
  values (v_owner, s.user_id, s.organization_id, v_counter, v_window, v_quantity)
  on conflict (owner_id, limit_id, window_start) do update
     set used = c.used + excluded.used, updated_at = now()
   where v_max is null or c.used + excluded.used <= v_max
  returning c.used into v_used;
  if v_used is null then
    return jsonb_build_object('status', 'limit_reached', 'used', public.tollgate_counter(p_subject, v_counter, v_window));
  end if;

  -- A concurrent use under the same request id fails here (unique request_id) and rolls
  -- its count back; its retry is answered as a replay.
  insert into public.usage_records (request_id, user_id, organization_id, request_hash, units, feature, window_start,
                                    counter, actor_id)
  values (v_request_id, s.user_id, s.organization_id, p_count ->> 'request_hash', v_quantity, v_feature, v_window,
          nullif(v_counter, v_feature), v_actor)
  returning id into v_usage_id;
  return jsonb_build_object('status', 'counted', 'usage_id', v_usage_id, 'used', v_used);
end
$fn$;

do $grants$
declare
  f text;
begin
  foreach f in array array[
    'public.tollgate_counter(jsonb, text, timestamptz)',
    'public.tollgate_track_replay(jsonb, text, text)',
    'public.tollgate_track(jsonb, jsonb)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$grants$;
