// Row level security through the REST gateway, as anon and as two different signed-in
// users: every verb on every tollgate table and view. Own rows (and rows of an organization the
// user belongs to) are readable, nothing else is, and nothing is writable except by the
// service role. Rows are set up and checked directly in PostgreSQL. entitlement_history
// is filled by a trigger on cloud_entitlements (the inserts below write its rows).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, q, createUser, uuid, id, http, userToken, anonToken, closeDb } from './helpers.mjs';

// Tables a signed-in user may read (own / organization rows) and tables only the
// service role touches.
const USER_READABLE = [
  'cloud_entitlements', 'organizations', 'organization_members', 'seat_allocations',
  'billing_subjects', 'billing_customers', 'billing_subscriptions', 'credit_lots', 'credit_lot_terms',
  'credit_lot_balances', 'credit_balances', 'credit_ledger', 'credit_statement', 'usage_records', 'usage_preferences', 'usage_counters',
  'entitlement_history', 'failed_payments',
];
const SERVICE_ONLY = ['webhook_events', 'pending_webhook_events', 'billing_facts'];
const ALL = [...USER_READABLE, ...SERVICE_ONLY];
// A column each table has, to write requests PostgREST accepts as well-formed (so the
// refusal that comes back is about privileges, not about an unknown column).
const COL = { organizations: 'id', pending_webhook_events: 'id', billing_facts: 'id', credit_lot_balances: 'lot_id' };
const col = (t) => COL[t] ?? 'user_id';
const val = (t, user) => (col(t) === 'user_id' ? user : col(t) === 'id' && t === 'organizations' ? org : 1);
// Upserts name a real unique key (PostgREST, like PostgreSQL, refuses an ON CONFLICT
// target that matches none, before privileges are even looked at).
const UPSERT_KEYS = {
  cloud_entitlements: 'user_id,organization_id,grant_key',
  credit_lot_terms: 'user_id,organization_id,key',
  failed_payments: 'provider,invoice_id',
  usage_preferences: 'user_id,organization_id',
  billing_subjects: 'user_id,organization_id',
  organizations: 'id',
};

let A, B, C, org, otherOrg;
// Catalog-independent: run once, in the VCM Suite pass of `cargo xtask test`.
const onlyOnce = env.catalog !== 'vcm-suite' && 'catalog-independent; runs in the vcm-suite pass';

async function subjectRows(user, orgId) {
  const s = [user, orgId];
  const tag = id('t');
  await q(`insert into cloud_entitlements (user_id, organization_id, grant_key, cloud_id, tier, source, status, valid_to)
           values ($1, $2, $3, 'video', 'pro', 'stripe', 'active', now() + interval '30 days')`, [...s, `rls:${tag}`]);
  await q(`insert into billing_subjects (user_id, organization_id, version) values ($1, $2, 1) on conflict do nothing`, s);
  await q(`insert into billing_customers (provider, customer_id, user_id, organization_id) values ('stripe', $3, $1, $2)`, [...s, id('cus')]);
  await q(`insert into billing_subscriptions (provider, subscription_id, user_id, organization_id, status)
           values ('stripe', $3, $1, $2, 'active')`, [...s, id('sub')]);
  const [lot] = await q(`insert into credit_lot_terms (user_id, organization_id, key, pool, kind, granted, valid_from)
           values ($1, $2, $3, 'video_seconds', 'purchase', 100, now()) returning id`, [...s, `lot:${tag}`]);
  await q(`insert into credit_lot_balances (lot_id, remaining) values ($1, 100)`, [lot.id]);
  await q(`insert into credit_ledger (user_id, organization_id, source_key, pool, lot, kind, delta, at)
           values ($1, $2, $3, 'video_seconds', $3, 'purchase', 100, now())`, [...s, `lot:${tag}`]);
  await q(`insert into usage_records (request_id, user_id, organization_id, request_hash, units)
           values ($3, $1, $2, 'h', 5)`, [...s, id('req')]);
  await q(`insert into usage_preferences (user_id, organization_id, allow_overages) values ($1, $2, true)
           on conflict do nothing`, s);
  await q(`insert into usage_counters (owner_id, user_id, organization_id, limit_id, window_start, used)
           values (coalesce($1::uuid, $2::uuid), $1, $2, 'runs', now(), 1)`, s);
  await q(`insert into failed_payments (provider, invoice_id, subscription_id, user_id, organization_id, amount_due, currency,
           attempt_count, first_failed_at, last_failed_at) values ('stripe', $3, 'sub_x', $1, $2, 2900, 'usd', 1, now(), now())`,
    [...s, id('in')]);
}

before(async () => {
  if (onlyOnce) return;
  A = await createUser();
  B = await createUser();
  C = await createUser(); // member of otherOrg only
  org = uuid();
  otherOrg = uuid();
  await q(`insert into organizations (id, name, seat_count) values ($1, 'A''s org', 3), ($2, 'other org', 1)`, [org, otherOrg]);
  await q(`insert into organization_members (organization_id, user_id, role) values ($1, $2, 'owner'), ($3, $4, 'owner')`, [org, A, otherOrg, C]);
  await q(`insert into seat_allocations (organization_id, user_id) values ($1, $2), ($3, $4)`, [org, A, otherOrg, C]);
  await subjectRows(A, null);
  await subjectRows(B, null);
  await subjectRows(null, org);
  await subjectRows(null, otherOrg);
  await q(`insert into webhook_events (provider, event_id, event_type, user_id) values ('stripe', $1, 'x', $2)`, [id('evt'), A]);
  await q(`insert into pending_webhook_events (provider, event_id, event_type, payload) values ('stripe', $1, 'x', '{}')`, [id('evt')]);
  await q(`insert into billing_facts (fact_key, provider, fact_type, refs, at, fact) values ($1, 'stripe', 'x', $2, now(), '{}')`,
    [id('fact'), [`user:${A}`]]);
});
after(closeDb);

/** The rows as read, with their owner: a lot's balance is owned as its terms are. */
async function owned(t, rows) {
  if (t !== 'credit_lot_balances') return rows;
  const terms = await q(`select id, user_id, organization_id from credit_lot_terms where id = any($1::bigint[])`, [rows.map((x) => x.lot_id)]);
  assert.equal(terms.length, rows.length, 'every balance read has its terms');
  return terms;
}

const rest = (method, path, token, opts = {}) =>
  http(method, `${env.rest}/rest/v1/${path}`, {
    ...opts,
    headers: { apikey: token, authorization: `Bearer ${token}`, ...(opts.headers ?? {}) },
  });

async function snapshotCounts() {
  const out = {};
  for (const t of ALL) out[t] = (await q(`select count(*)::int as n, md5(coalesce(string_agg(x::text, ',' order by x::text), '')) as h from public.${t} x`))[0];
  return out;
}

test('anon can neither read nor write any tollgate table', { skip: onlyOnce }, async () => {
  const before = await snapshotCounts();
  const anon = anonToken();
  for (const t of ALL) {
    const r = await rest('GET', `${t}?select=*`, anon);
    assert.equal(r.status, 401, `anon GET ${t}: ${r.status} ${r.text}`);
    assert.equal(typeof r.json?.code, 'string', 'PostgREST error JSON');
    const ins = await rest('POST', t, anon, { body: { [col(t)]: val(t, A) } });
    assert.equal(ins.status, 401, `anon POST ${t}: ${ins.status} ${ins.text}`);
    const upd = await rest('PATCH', `${t}?${col(t)}=eq.${val(t, A)}`, anon, { body: { [col(t)]: val(t, B) } });
    assert.equal(upd.status, 401, `anon PATCH ${t}: ${upd.status} ${upd.text}`);
    const del = await rest('DELETE', `${t}?${col(t)}=eq.${val(t, A)}`, anon);
    assert.equal(del.status, 401, `anon DELETE ${t}: ${del.status} ${del.text}`);
  }
  assert.deepEqual(await snapshotCounts(), before, 'no row changed');
});

test('no request at all (no apikey, no token) reads nothing', { skip: onlyOnce }, async () => {
  for (const t of ['cloud_entitlements', 'credit_balances']) {
    const r = await http('GET', `${env.rest}/rest/v1/${t}?select=*`);
    assert.ok([401, 403].includes(r.status) || (r.status === 200 && r.json.length === 0), `${t}: ${r.status} ${r.text}`);
  }
});

for (const who of ['A', 'B']) {
  test(`signed-in user ${who} reads only own and own-organization rows, and writes nothing`, { skip: onlyOnce }, async () => {
    const me = who === 'A' ? A : B;
    const other = who === 'A' ? B : A;
    const myOrgs = who === 'A' ? [org] : [];
    const token = userToken(me);
    const before = await snapshotCounts();
    for (const t of USER_READABLE) {
      const r = await rest('GET', `${t}?select=*`, token);
      assert.equal(r.status, 200, `${who} GET ${t}: ${r.status} ${r.text}`);
      assert.ok(Array.isArray(r.json));
      const idOf = (row) => (t === 'organizations' ? row.id : row.organization_id);
      for (const row of await owned(t, r.json)) {
        const mine = row.user_id === me || myOrgs.includes(idOf(row));
        assert.ok(mine, `${who} must not see ${t} row ${JSON.stringify(row)}`);
        assert.notEqual(row.user_id, other);
        assert.notEqual(idOf(row), otherOrg);
      }
      // Each readable table shows the caller something: its own rows exist in all of them.
      const expectOwn = !(t === 'organizations' || t === 'organization_members' || t === 'seat_allocations') || who === 'A';
      if (expectOwn) assert.ok(r.json.length > 0, `${who} sees its own ${t} rows`);
      // Filtering for someone else's rows returns nothing.
      if (t === 'credit_lot_balances') {
        const ids = (await q(`select id from credit_lot_terms where user_id = $1 or organization_id = $2`, [other, otherOrg])).map((x) => x.id);
        const theirs = await rest('GET', `${t}?select=*&lot_id=in.(${ids.join(',')})`, token);
        assert.equal(theirs.status, 200);
        assert.equal(theirs.json.length, 0, `${who} filtered for ${t} of the other user and organization`);
      } else if (t !== 'organizations') {
        const theirs = await rest('GET', `${t}?select=*&user_id=eq.${other}`, token);
        assert.equal(theirs.status, 200);
        assert.equal(theirs.json.length, 0, `${who} filtered for ${t} of the other user`);
      }
      const ins = await rest('POST', t, token, { body: { [col(t)]: val(t, me) }, headers: { prefer: 'return=minimal' } });
      assert.equal(ins.status, 403, `${who} POST ${t}: ${ins.status} ${ins.text}`);
      const upd = await rest('PATCH', `${t}?${col(t)}=eq.${val(t, me)}`, token, { body: { [col(t)]: val(t, me) } });
      assert.equal(upd.status, 403, `${who} PATCH ${t}: ${upd.status} ${upd.text}`);
      const del = await rest('DELETE', `${t}?${col(t)}=eq.${val(t, me)}`, token);
      assert.equal(del.status, 403, `${who} DELETE ${t}: ${del.status} ${del.text}`);
      if (UPSERT_KEYS[t]) {
        const ups = await rest('POST', `${t}?on_conflict=${UPSERT_KEYS[t]}`, token, {
          body: t === 'organizations' ? { id: org } : { user_id: me, organization_id: null },
          headers: { prefer: 'resolution=merge-duplicates' },
        });
        assert.equal(ups.status, 403, `${who} upsert ${t}: ${ups.status} ${ups.text}`);
      }
    }
    for (const t of SERVICE_ONLY) {
      const r = await rest('GET', `${t}?select=*`, token);
      assert.equal(r.status, 403, `${who} GET ${t} (service only): ${r.status} ${r.text}`);
      const ins = await rest('POST', t, token, { body: {} });
      assert.equal(ins.status, 403, `${who} POST ${t}: ${ins.status}`);
      const del = await rest('DELETE', `${t}?id=eq.1`, token);
      assert.equal(del.status, 403, `${who} DELETE ${t}: ${del.status}`);
    }
    assert.deepEqual(await snapshotCounts(), before, 'no row changed');
  });
}

test('organization rows are readable by members only', { skip: onlyOnce }, async () => {
  const a = await rest('GET', `cloud_entitlements?select=*&organization_id=eq.${org}`, userToken(A));
  assert.equal(a.status, 200);
  assert.ok(a.json.length >= 1, 'a member reads its organization grants');
  const b = await rest('GET', `cloud_entitlements?select=*&organization_id=eq.${org}`, userToken(B));
  assert.deepEqual(b.json, [], 'a non-member reads none');
  const c = await rest('GET', `organization_members?select=*`, userToken(C));
  assert.ok(c.json.every((m) => m.organization_id === otherOrg), 'members see only their organization');
});

test('users cannot call the write functions; the service role can', { skip: onlyOnce }, async () => {
  const calls = [
    ['tollgate_charge', { p_subject: { user_id: A }, p_charge: { request_id: id('r'), request_hash: 'h', takes: [], record: { units: 1, overage_units: 1 } } }],
    ['tollgate_apply_fold', { p_event: null, p_facts: [], p_expected_version: 0, p_refs: [], p_subjects: [] }],
    ['tollgate_fold_input', { p_refs: [`user:${A}`] }],
    ['tollgate_keep_delivery', { p_event: { provider: 'stripe', event_id: id('evt') }, p_reason: 'x' }],
    ['tollgate_lapsed', { p_now: new Date().toISOString() }],
    ['tollgate_subject_state', { p_subject: { user_id: B } }],
  ];
  for (const [fn, args] of calls) {
    for (const [token, expected] of [[anonToken(), 401], [userToken(A), 403]]) {
      const r = await rest('POST', `rpc/${fn}`, token, { body: args });
      assert.equal(r.status, expected, `${fn}: ${r.status} ${r.text}`);
    }
  }
  const ok = await rest('POST', 'rpc/tollgate_subject_state', env.serviceKey, { body: { p_subject: { user_id: A } } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.grants.length, 1);
});

test('no sequence grants anon or authenticated anything (setting one to its end would stop every insert that draws from it)', { skip: onlyOnce }, async () => {
  const open = await q(`select c.relname, r.rolname
                          from pg_class c join pg_namespace n on n.oid = c.relnamespace
                          cross join (values ('anon'), ('authenticated')) r(rolname)
                         where n.nspname = 'public' and c.relkind = 'S'
                           and (has_sequence_privilege(r.rolname, c.oid, 'USAGE') or has_sequence_privilege(r.rolname, c.oid, 'UPDATE')
                                or has_sequence_privilege(r.rolname, c.oid, 'SELECT'))`);
  assert.deepEqual(open, []);
});

test('tokens the gateway must refuse: expired, wrongly signed', { skip: onlyOnce }, async () => {
  const expired = userToken(A, { exp: Math.floor(Date.now() / 1000) - 3600 });
  const r1 = await rest('GET', 'cloud_entitlements?select=*', expired);
  assert.equal(r1.status, 401, r1.text);
  const forged = userToken(A, { secret: 'not-the-project-secret-not-the-project-secret' });
  const r2 = await rest('GET', 'cloud_entitlements?select=*', forged);
  assert.equal(r2.status, 401, r2.text);
});

test('entitlement_history: the trigger records each change of a grant; users read only their own', { skip: onlyOnce }, async () => {
  const key = `history:${id('g')}`;
  const [{ id: grant }] = await q(
    `insert into cloud_entitlements (user_id, grant_key, cloud_id, tier, source, status, valid_from, valid_to, source_ref, offer_key)
     values ($1, $2, 'creation', 'pro', 'stripe', 'active', '2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z', 'stripe:sub_h', 'CLOUD_CREATION_PRO_MONTHLY')
     returning id`, [A, key]);
  // A renewal, a write that changes nothing tracked (not recorded), a failed payment, a cancel, a delete.
  await q(`update cloud_entitlements set valid_from = '2026-04-01T00:00:00Z', valid_to = '2026-05-01T00:00:00Z' where id = $1`, [grant]);
  await q(`update cloud_entitlements set updated_at = now() where id = $1`, [grant]);
  await q(`update cloud_entitlements set status = 'past_due', past_due_since = '2026-05-01T00:00:00Z' where id = $1`, [grant]);
  await q(`update cloud_entitlements set status = 'canceled', past_due_since = null where id = $1`, [grant]);
  await q(`delete from cloud_entitlements where id = $1`, [grant]);

  const path = `entitlement_history?select=*&entitlement_id=eq.${grant}&order=changed_at.asc,id.asc`;
  const mine = await rest('GET', path, userToken(A));
  assert.equal(mine.status, 200, mine.text);
  const rows = mine.json;
  assert.deepEqual(rows.map((r) => [r.operation, r.old_status, r.new_status]), [
    ['insert', null, 'active'],
    ['update', 'active', 'active'],
    ['update', 'active', 'past_due'],
    ['update', 'past_due', 'canceled'],
    ['delete', 'canceled', null],
  ]);
  assert.ok(rows.every((r) => r.user_id === A && r.grant_key === key && r.cloud_id === 'creation' && r.tier === 'pro'));
  assert.ok(rows.every((r) => r.source === 'stripe' && r.source_ref === 'stripe:sub_h' && r.offer_key === 'CLOUD_CREATION_PRO_MONTHLY'));
  // Validity before and after, as instants.
  assert.equal(Date.parse(rows[1].old_valid_to), Date.parse('2026-04-01T00:00:00Z'));
  assert.equal(Date.parse(rows[1].new_valid_to), Date.parse('2026-05-01T00:00:00Z'));
  assert.equal(Date.parse(rows[2].new_past_due_since), Date.parse('2026-05-01T00:00:00Z'));
  assert.equal(rows[4].new_valid_to, null);
  assert.equal(Date.parse(rows[4].old_valid_to), Date.parse('2026-05-01T00:00:00Z'));
  // changed_at is the database's now(), an instant (within a minute of this machine's clock).
  for (const r of rows) assert.ok(Math.abs(Date.parse(r.changed_at) - Date.now()) < 60_000, r.changed_at);
  const ordered = [...rows].sort((a, b) => Date.parse(a.changed_at) - Date.parse(b.changed_at) || a.id - b.id);
  assert.deepEqual(ordered.map((r) => r.id), rows.map((r) => r.id), 'order=changed_at.asc,id.asc');
  const desc = await rest('GET', `entitlement_history?select=id&entitlement_id=eq.${grant}&order=changed_at.desc,id.desc`, userToken(A));
  assert.deepEqual(desc.json.map((r) => r.id), rows.map((r) => r.id).reverse(), 'order=...desc');

  // Someone else sees none of it, anon is refused, and nobody but the service role writes.
  const theirs = await rest('GET', path, userToken(B));
  assert.equal(theirs.status, 200);
  assert.deepEqual(theirs.json, []);
  assert.equal((await rest('GET', path, anonToken())).status, 401);
  const forged = { entitlement_id: grant, grant_key: key, user_id: A, operation: 'insert', cloud_id: 'video', tier: 'enterprise', source: 'manual_grant', new_status: 'active' };
  assert.equal((await rest('POST', 'entitlement_history', userToken(A), { body: forged })).status, 403);
  assert.equal((await rest('PATCH', `entitlement_history?entitlement_id=eq.${grant}`, userToken(A), { body: { new_status: 'active' } })).status, 403);
  assert.equal((await rest('DELETE', `entitlement_history?entitlement_id=eq.${grant}`, userToken(A))).status, 403);
  assert.equal((await q(`select count(*)::int as n from entitlement_history where entitlement_id = $1`, [grant]))[0].n, 5);
  const svc = await rest('POST', 'entitlement_history', env.serviceKey, { body: { ...forged, grant_key: `${key}:service` } });
  assert.equal(svc.status, 201, svc.text);
  await q(`delete from entitlement_history where grant_key = $1`, [`${key}:service`]);
});

test('entitlement_history: deleting a user takes its history with it', { skip: onlyOnce }, async () => {
  const gone = await createUser();
  await q(`insert into cloud_entitlements (user_id, grant_key, cloud_id, tier, source, status) values ($1, 'history:gone', 'video', 'pro', 'manual_grant', 'active')`, [gone]);
  assert.equal((await q(`select count(*)::int as n from entitlement_history where user_id = $1`, [gone]))[0].n, 1);
  await q(`delete from auth.users where id = $1`, [gone]);
  assert.equal((await q(`select count(*)::int as n from entitlement_history where user_id = $1`, [gone]))[0].n, 0);
  assert.equal((await q(`select count(*)::int as n from cloud_entitlements where user_id = $1`, [gone]))[0].n, 0);
});

test('deleting a user or an organization takes its lots and usage records with it', { skip: onlyOnce }, async () => {
  const gone = await createUser();
  const goneOrg = uuid();
  await q(`insert into organizations (id, name, seat_count) values ($1, 'gone', 1)`, [goneOrg]);
  await subjectRows(gone, null);
  await subjectRows(null, goneOrg);
  const count = async (column, subject) => Object.fromEntries(await Promise.all(
    ['credit_lot_terms', 'credit_lots', 'usage_records'].map(async (t) =>
      [t, (await q(`select count(*)::int as n from ${t} where ${column} = $1`, [subject]))[0].n])));
  const balances = async () => (await q(`select count(*)::int as n from credit_lot_balances b
    where not exists (select 1 from credit_lot_terms t where t.id = b.lot_id)`))[0].n;
  assert.deepEqual(await count('user_id', gone), { credit_lot_terms: 1, credit_lots: 1, usage_records: 1 });
  assert.deepEqual(await count('organization_id', goneOrg), { credit_lot_terms: 1, credit_lots: 1, usage_records: 1 });
  await q(`delete from auth.users where id = $1`, [gone]);
  await q(`delete from organizations where id = $1`, [goneOrg]);
  assert.deepEqual(await count('user_id', gone), { credit_lot_terms: 0, credit_lots: 0, usage_records: 0 });
  assert.deepEqual(await count('organization_id', goneOrg), { credit_lot_terms: 0, credit_lots: 0, usage_records: 0 });
  assert.equal(await balances(), 0, 'no balance outlives its lot');
});

test('Supabase\'s current API keys: the secret key is the service role (never from a browser), the publishable key is anon', { skip: onlyOnce || !env.secretKey }, async () => {
  const key = (k, headers = {}) => http('GET', `${env.rest}/rest/v1/cloud_entitlements?select=grant_key&user_id=eq.${A}`, { headers: { apikey: k, ...headers } });
  const svc = await key(env.secretKey);
  assert.equal(svc.status, 200, svc.text);
  assert.equal(svc.json.length, 1, 'the secret key reads past RLS');
  const anon = await key(env.publishableKey);
  assert.equal(anon.status, 401, anon.text);
  assert.equal(anon.json.code, '42501', 'the publishable key alone is anon, which may read no tollgate table');
  const user = await key(env.publishableKey, { authorization: `Bearer ${userToken(A)}` });
  assert.equal(user.json.length, 1, 'with a user\'s token, the user\'s own rows');
  const browser = await key(env.secretKey, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36' });
  assert.equal(browser.status, 401, 'a secret key is refused from a browser');
  const bearer = await key(env.secretKey, { authorization: `Bearer ${env.secretKey}` });
  assert.equal(bearer.status, 401, 'a key is not a JWT');
  assert.equal((await key('sb_secret_unknown')).status, 401);
});

// Every table, view and function of the public schema, read from PostgreSQL's catalog, so
// that one added later is held to the same rules without being named here first: users
// (anon, authenticated) write nothing, read only what a policy shows them, and call only the
// functions listed.
const READABLE_BY_USERS = new Set([
  ...USER_READABLE,
  'alerts', 'organization_invites', 'organization_changes', // own / own organization's rows, by policy
  'tollgate_catalogs', // the active versions only, by policy (anon too: GET /v1/catalog's source)
]);

test('no table or view of the public schema is writable by anon or a signed-in user', { skip: onlyOnce }, async () => {
  const open = await q(`select c.relname, r.rolname, p.priv
                          from pg_class c join pg_namespace n on n.oid = c.relnamespace
                          cross join (values ('anon'), ('authenticated')) r(rolname)
                          cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) p(priv)
                         where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
                           and has_table_privilege(r.rolname, c.oid, p.priv)
                         order by 1, 2, 3`);
  assert.deepEqual(open, []);
});

test('every table and view a user may read is one this suite reads as a user, and every table has row level security', { skip: onlyOnce }, async () => {
  const readable = await q(`select distinct c.relname, c.relkind::text as kind
                              from pg_class c join pg_namespace n on n.oid = c.relnamespace
                              cross join (values ('anon'), ('authenticated')) r(rolname)
                             where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
                               and has_table_privilege(r.rolname, c.oid, 'SELECT')
                             order by 1`);
  const unknown = readable.map((r) => r.relname).filter((t) => !READABLE_BY_USERS.has(t));
  assert.deepEqual(unknown, [], 'readable by users but not checked by the row tests: classify them in this file');
  const noRls = await q(`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                          where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity order by 1`);
  assert.deepEqual(noRls.map((r) => r.relname), [], 'tables without row level security');
  // A view runs with its owner's rights unless it is security_invoker: one users read must be,
  // or its owner's rights would show every subject's rows.
  const ownerViews = await q(`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                               where n.nspname = 'public' and c.relkind = 'v'
                                 and (has_table_privilege('anon', c.oid, 'SELECT') or has_table_privilege('authenticated', c.oid, 'SELECT'))
                                 and not exists (select 1 from unnest(coalesce(c.reloptions, '{}')) o
                                                  where o ~* '^security_invoker=(true|on|yes|1)$')
                               order by 1`);
  assert.deepEqual(ownerViews.map((r) => r.relname), [], 'views users read that run with the rights of their owner');
});

test('anon and signed-in users may execute only the functions row level security and the app need', { skip: onlyOnce }, async () => {
  // The active catalog (public: GET /v1/catalog serves it) to both; the membership tests the
  // policies call (they answer for the caller, auth.uid(), only) to signed-in users.
  const allowed = {
    anon: ['tollgate_catalog_active', 'tollgate_catalog_active_version'],
    authenticated: ['tollgate_catalog_active', 'tollgate_catalog_active_version', 'tollgate_is_member', 'tollgate_is_org_admin'],
  };
  for (const role of ['anon', 'authenticated']) {
    const callable = await q(`select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                               where n.nspname = 'public' and has_function_privilege($1, p.oid, 'EXECUTE')
                               order by 1`, [role]);
    assert.deepEqual(callable.map((r) => r.proname), allowed[role], `functions ${role} may execute`);
  }
  // A version's publisher is not theirs to read, by any function either.
  for (const token of [anonToken(), userToken(A)]) {
    const r = await rest('GET', 'tollgate_catalogs?select=id,version,published_by', token);
    assert.ok(r.status >= 400, `published_by read: ${r.status} ${r.text}`);
  }
});
