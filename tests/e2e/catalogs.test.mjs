// Catalogs published as versioned data, end to end: the `tollgate` CLI pushes and activates
// versions of the Org Seats catalog in PostgreSQL through the REST gateway, and the worker
// (wrangler dev) serves whatever is active, with no rebuild: `GET /v1/catalog` with its
// ETag (304 on If-None-Match), checkouts priced from the active version at once (also back
// to an older one), an invalid push refused with the core's error and its line and nothing
// stored, the same content pushed again a no-op, RLS (anyone reads the active version
// only; only the service role writes); grandfathering: an organization that bought the
// professional plan under v1 keeps `ai_assistant_access` when v2 moves it to Business with
// `keep` while a new buyer pays v2's price and does not get it, and with `at_renewal` loses
// it at its renewal and not before.
//
// The worker's STRIPE_API_BASE points at a recorder here (as in checkout.test.mjs) that
// answers a price search with nothing, so checkout sells from the catalog's own amounts.
// The run ends with the file's own content active, which is the catalog the worker embeds,
// so the files after this one see the Org Seats catalog they expect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { env, q, createUser, userToken, worker, http as request, closeDb, postStripe, now, sleep } from './helpers.mjs';
import { StripeSubscriber, DAY } from './events.mjs';

const port = Number(process.env.TOLLGATE_PROVIDER_RECORDER_PORT ?? 0);
const skip = (!port || !env.repo) ? 'needs cargo xtask test e2e' : env.catalog !== 'org-seats' && 'runs in the org-seats pass';

const recorded = [];
let server;
let bin;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-catalogs-'));

before(async () => {
  if (skip) return;
  // The CLI as a user runs it (built here if `cargo test` has not built it yet).
  execFileSync('cargo', ['build', '-q', '-p', 'tollgate-cli'], { cwd: env.repo, stdio: 'inherit' });
  const target = process.env.CARGO_TARGET_DIR ?? path.join(env.repo, 'target');
  bin = path.join(target, 'debug', 'tollgate');
  server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      const [p, search = ''] = req.url.replace(/^\/stripe/, '').split('?');
      const form = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      recorded.push({ method: req.method, path: p, query: new URLSearchParams(search), body: form ? new URLSearchParams(raw) : null });
      const n = recorded.length;
      const [status, json] = req.method === 'GET' && p === '/v1/prices'
        ? [200, { object: 'list', data: [], has_more: false }]
        : req.method === 'POST' && p === '/v1/checkout/sessions'
          ? [200, { id: `cs_test_catalogs_${n}`, object: 'checkout.session', url: `https://checkout.stripe.com/c/pay/cs_test_catalogs_${n}` }]
          : [404, { error: { message: `no answer for ${req.method} ${p}` } }];
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
});

after(async () => {
  // Whatever happened above, the files after this one sell the file's own content: pushing
  // it again names its stored version, which is made active.
  if (!skip && bin) {
    const own = tollgate(['catalog', 'push', 'catalogs/org-seats.toml', '--no-activate', '--json']);
    if (own.code === 0) tollgate(['catalog', 'activate', String(own.json().version), '--catalog', 'org-seats']);
  }
  if (server) await new Promise((r) => server.close(r));
  await closeDb();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI with the store's coordinates in its environment, as a deploy script would. */
function tollgate(args, { key = env.secretKey } = {}) {
  const r = spawnSync(bin, args, {
    cwd: env.repo,
    encoding: 'utf8',
    env: { ...process.env, TOLLGATE_SUPABASE_URL: env.rest, TOLLGATE_SERVICE_KEY: key, USER: 'e2e' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

const source = () => fs.readFileSync(path.join(env.repo, 'catalogs', 'org-seats.toml'), 'utf8');
/** The Org Seats catalog with the professional monthly plan at `amount` (minor units). */
function priced(amount) {
  const text = source().replace(
    /(key = "ORG_PROFESSIONAL_MONTHLY"[\s\S]*?price = \{ amount = )\d+/,
    (_, head) => `${head}${amount}`,
  );
  assert.notEqual(text, source());
  const file = path.join(dir, `org-seats-${amount}.toml`);
  fs.writeFileSync(file, text);
  return file;
}
const professional = (doc) => doc.offers.find((o) => o.key === 'ORG_PROFESSIONAL_MONTHLY').price.amount;
const versions = async () => (await q(`select version, active, digest from tollgate_catalogs where id = 'org-seats' order by version`));
const urls = { success_url: 'https://app.example.test/billing/done', cancel_url: 'https://app.example.test/pricing' };

/** A checkout of the professional plan by a new organization's owner: the unit amount sent. */
async function checkoutAmount() {
  const owner = await createUser();
  const [{ id: org }] = await q('insert into organizations (name) values ($1) returning id', ['Catalog Co']);
  await q(`insert into organization_members (organization_id, user_id, role) values ($1, $2, 'owner')`, [org, owner]);
  const r = await worker('POST', '/v1/checkout', {
    body: { offer: 'ORG_PROFESSIONAL_MONTHLY', quantity: 2, organization_id: org, ...urls },
    headers: { authorization: `Bearer ${userToken(owner)}` },
  });
  assert.equal(r.status, 200, r.text);
  const session = recorded.filter((x) => x.path === '/v1/checkout/sessions').at(-1);
  return Number(session.body.get('line_items[0][price_data][unit_amount]'));
}

test('catalogs as data: push, serve, price, roll back; an invalid push changes nothing', { skip }, async () => {
  // Before any push of its own the worker may serve the embedded catalog or a version an
  // earlier run left active; either way GET /v1/catalog answers it with an ETag.
  const first = await worker('GET', '/v1/catalog');
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.catalog.id, 'org-seats');
  const etag0 = first.headers.get('etag');
  assert.ok(etag0, 'an ETag');
  const same = await worker('GET', '/v1/catalog', { headers: { 'if-none-match': etag0 } });
  assert.equal(same.status, 304);
  assert.equal(same.text, '');
  assert.equal(same.headers.get('etag'), etag0);
  const stored0 = await versions();

  // An invalid file: the core's error with its line, exit 1, nothing stored.
  const bad = path.join(dir, 'bad.toml');
  fs.writeFileSync(bad, source().replace(/tiers = \[[^\]]*\]/, 'tiers = "not a list"'));
  const refused = tollgate(['catalog', 'push', bad]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /bad\.toml:\d+: catalog error/);
  assert.deepEqual(await versions(), stored0, 'nothing stored');

  // v1: the file as it is (what the worker embeds); pushing it again is a no-op.
  const v1 = tollgate(['catalog', 'push', 'catalogs/org-seats.toml', '--json']);
  assert.equal(v1.code, 0, v1.stderr);
  const one = v1.json();
  const again = tollgate(['catalog', 'push', 'catalogs/org-seats.toml', '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json().created, false);
  assert.equal(again.json().version, one.version);

  // v2 raises the professional plan's price (to an amount of this run, so the content is
  // new even on a database an earlier run used): active at once for the catalog and checkouts.
  const raised = 2600 + Math.floor(Math.random() * 7000);
  const v2 = tollgate(['catalog', 'push', priced(raised), '--json', '--by', 'pricing-team']);
  assert.equal(v2.code, 0, v2.stderr);
  const two = v2.json();
  assert.deepEqual([two.created, two.active, two.published_by], [true, true, 'pricing-team']);
  assert.ok(two.version > one.version);
  const served = await worker('GET', '/v1/catalog', { headers: { 'if-none-match': etag0 } });
  assert.equal(served.status, 200, 'the old ETag no longer matches');
  assert.equal(served.headers.get('tollgate-catalog-version'), String(two.version));
  assert.equal(professional(served.json), raised);
  const etag2 = served.headers.get('etag');
  assert.notEqual(etag2, etag0);
  assert.equal(await checkoutAmount(), raised, 'a new purchase pays the new price');

  // Rollback: v1 again, and new checkouts price from it at once.
  const back = tollgate(['catalog', 'activate', String(one.version), '--catalog', 'org-seats']);
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stdout, /is now active/);
  assert.equal(await checkoutAmount(), 2500, 'back to the old price at once');
  const rolled = await worker('GET', '/v1/catalog', { headers: { 'if-none-match': etag2 } });
  assert.equal(rolled.status, 200);
  assert.equal(rolled.headers.get('tollgate-catalog-version'), String(one.version));
  assert.equal(professional(rolled.json), 2500);
  const health = await worker('GET', '/healthz');
  assert.equal(health.json.catalog.store_version, one.version);

  const missing = tollgate(['catalog', 'activate', '999999', '--catalog', 'org-seats']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /has no version 999999/);

  // The list names both, the active one marked; the history records each activation.
  const list = tollgate(['catalog', 'list', '--catalog', 'org-seats', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const listed = list.json()[0].versions;
  assert.deepEqual(listed.filter((v) => v.active).map((v) => v.version), [one.version]);
  assert.ok(listed.some((v) => v.version === two.version && v.published_by === 'pricing-team'));
  const history = await q(`select version, activated_by from tollgate_catalog_activations where catalog_id = 'org-seats' order by seq desc limit 2`);
  assert.deepEqual(history.map((h) => h.version), [one.version, two.version]);

  // A version is immutable, even for the database's owner.
  await assert.rejects(q(`update tollgate_catalogs set document = '{}' where id = 'org-seats' and version = $1`, [two.version]), /immutable/);
  await assert.rejects(q(`delete from tollgate_catalogs where id = 'org-seats' and version = $1`, [two.version]), /immutable/);
});

/** Org Seats with `ai_assistant_access` from Business up, the professional monthly plan at
 * `amount` and its subscribers' migration `policy`. */
function moved(policy, amount) {
  const text = source()
    .replace(/(id = "ai_assistant_access"[\s\S]*?min_tier = )"PROFESSIONAL"/, '$1"BUSINESS"')
    .replace(/(key = "ORG_PROFESSIONAL_MONTHLY"\nlabel = [^\n]*\n)price = \{ amount = \d+/, `$1migration = "${policy}"\nprice = { amount = ${amount}`);
  assert.equal((text.match(/migration = /g) ?? []).length, 1);
  assert.match(text, /id = "ai_assistant_access"\nlabel = "AI assistant"\nproduct = "org"\nmin_tier = "BUSINESS"/);
  const file = path.join(dir, `org-seats-${policy}-${amount}.toml`);
  fs.writeFileSync(file, text);
  return file;
}

/** An organization that buys the professional plan now, its owner holding a seat. */
async function professionalOrg() {
  const owner = await createUser();
  const as = { authorization: `Bearer ${userToken(owner)}` };
  const made = await worker('POST', '/v1/orgs', { headers: as, body: { name: 'Grandfathered Co' } });
  assert.equal(made.status, 201, made.text);
  const org = made.json.id;
  const t = now() - 3600;
  const sub = new StripeSubscriber({ subject: { organization_id: org }, offer: 'ORG_PROFESSIONAL_MONTHLY', start: t, quantity: 1 });
  for (const e of [sub.checkout(), sub.created({ periodEnd: t + 30 * DAY }), sub.invoicePaid({ at: t + 1, periodStart: t, periodEnd: t + 30 * DAY })]) {
    const r = await postStripe(e);
    assert.equal(r.status, 200, r.text);
  }
  await sleep(1100);
  const seat = await worker('POST', `/v1/orgs/${org}/seats`, { headers: as, body: { user_id: owner, action: 'give' } });
  assert.equal(seat.status, 200, seat.text);
  return { owner, org, sub, as };
}

/** May the organization's seated owner use the AI assistant (`POST /v1/check`)? */
async function assistant({ org, as }) {
  const r = await worker('POST', '/v1/check', { headers: as, body: { feature: 'ai_assistant_access', organization_id: org } });
  assert.equal(r.status, 200, r.text);
  return r.json.allowed;
}
const soldUnder = async ({ org }) =>
  (await q(`select catalog_version, renewal_version from cloud_entitlements where organization_id = $1 and cloud_id = 'org'`, [org]))[0];

test('grandfathering: keep holds the terms bought under v1, at_renewal until the renewal; new buyers get v2', { skip }, async () => {
  const v1 = tollgate(['catalog', 'push', 'catalogs/org-seats.toml', '--json']);
  assert.equal(v1.code, 0, v1.stderr);
  const one = v1.json().version;
  assert.equal(tollgate(['catalog', 'activate', String(one), '--catalog', 'org-seats']).code, 0);
  assert.equal((await worker('GET', '/v1/catalog')).headers.get('tollgate-catalog-version'), String(one));
  const old = await professionalOrg();
  assert.deepEqual(await soldUnder(old), { catalog_version: one, renewal_version: one });
  assert.equal(await assistant(old), true, 'Professional has the assistant under v1');

  // v2 (keep): the assistant moves to Business, the professional plan costs more.
  const raised = 2600 + Math.floor(Math.random() * 7000);
  const v2 = tollgate(['catalog', 'push', moved('keep', raised), '--json']);
  assert.equal(v2.code, 0, v2.stderr);
  const two = v2.json().version;
  assert.equal(await checkoutAmount(), raised, 'a new purchase pays v2\'s price');
  const fresh = await professionalOrg();
  assert.deepEqual(await soldUnder(fresh), { catalog_version: two, renewal_version: two });
  assert.equal(await assistant(fresh), false, 'a buyer under v2 gets v2\'s Professional');
  assert.equal(await assistant(old), true, 'the v1 buyer keeps the assistant');

  // v3 (at_renewal): the same terms; the v1 buyer keeps them until its renewal under v3.
  const v3 = tollgate(['catalog', 'push', moved('at_renewal', raised + 1), '--json']);
  assert.equal(v3.code, 0, v3.stderr);
  const three = v3.json().version;
  assert.equal(await assistant(old), true, 'not before its renewal');
  const { sub } = old;
  const renewed = await postStripe(sub.invoicePaid({ at: now(), periodStart: sub.start + 30 * DAY, periodEnd: sub.start + 60 * DAY }));
  assert.equal(renewed.status, 200, renewed.text);
  assert.deepEqual(await soldUnder(old), { catalog_version: one, renewal_version: three });
  assert.equal(await assistant(old), false, 'v3\'s terms from its renewal on');

  // The impact report from the store's facts: with `now` both Professional organizations
  // lose the assistant at once, with `keep` neither; no Business organization is named.
  const impact = (file) => {
    const r = tollgate(['catalog', 'diff', 'catalogs/org-seats.toml', file, '--url', env.rest, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return new Map(r.json().subjects.map((s) => [s.subject, s]));
  };
  const lost = (s) => s?.changes.some((c) => c.section === 'access' && c.id === 'ai_assistant_access' && c.before === true && c.after === false);
  const atOnce = impact(moved('now', raised + 2));
  assert.ok(lost(atOnce.get(`org:${old.org}`)) && lost(atOnce.get(`org:${fresh.org}`)), JSON.stringify([...atOnce.keys()]));
  for (const [subject, s] of [...atOnce].filter(([k]) => k.startsWith('org:'))) {
    const tiers = await q(`select tier from cloud_entitlements where organization_id::text = $1 and cloud_id = 'org'`, [subject.slice(4)]);
    if (lost(s)) assert.ok(tiers.some((t) => t.tier === 'PROFESSIONAL'), `${subject} holds Professional`);
  }
  const kept = impact(moved('keep', raised + 3));
  assert.ok(![...kept.values()].some(lost), 'keep: nobody loses the assistant');

  // Back to the file's own content for the files after this one.
  assert.equal(tollgate(['catalog', 'activate', String(one), '--catalog', 'org-seats']).code, 0);
  assert.equal((await worker('GET', '/v1/catalog')).headers.get('tollgate-catalog-version'), String(one));
});

test('RLS: anyone reads the active version only; only the service role writes', { skip }, async () => {
  const anon = { apikey: env.publishableKey };
  const rows = await request('GET', `${env.rest}/rest/v1/tollgate_catalogs?select=id,version,active&id=eq.org-seats`, { headers: anon });
  assert.equal(rows.status, 200, rows.text);
  assert.equal(rows.json.length, 1, 'the active version only');
  assert.equal(rows.json[0].active, true);
  const active = await request('POST', `${env.rest}/rest/v1/rpc/tollgate_catalog_active`, { headers: anon, body: { p_catalog: 'org-seats' } });
  assert.equal(active.status, 200, active.text);
  assert.equal(active.json.document.catalog.id, 'org-seats');
  // Who published it is the operators' business: not in the answer, not readable.
  assert.equal('published_by' in active.json, false, active.text);
  const by = await request('GET', `${env.rest}/rest/v1/tollgate_catalogs?select=published_by&id=eq.org-seats`, { headers: anon });
  assert.ok([401, 403].includes(by.status), by.text);
  const all = await request('GET', `${env.rest}/rest/v1/tollgate_catalogs?select=*&id=eq.org-seats`, { headers: anon });
  assert.ok([401, 403].includes(all.status), all.text);
  const check = await request('GET', `${env.rest}/rest/v1/rpc/tollgate_catalog_active_version?p_catalog=org-seats`, { headers: anon });
  assert.equal(check.status, 200, check.text);
  assert.deepEqual(Object.keys(check.json).sort(), ['digest', 'id', 'version']);

  const before = await versions();
  const push = await request('POST', `${env.rest}/rest/v1/rpc/tollgate_catalog_push`, {
    headers: anon, body: { p_document: active.json.document, p_by: 'anon' },
  });
  assert.ok([401, 403].includes(push.status), push.text);
  const user = await createUser();
  const asUser = await request('POST', `${env.rest}/rest/v1/rpc/tollgate_catalog_activate`, {
    headers: { apikey: env.publishableKey, authorization: `Bearer ${userToken(user)}` },
    body: { p_catalog: 'org-seats', p_version: 1 },
  });
  assert.ok([401, 403].includes(asUser.status), asUser.text);
  const insert = await request('POST', `${env.rest}/rest/v1/tollgate_catalogs`, {
    headers: anon, body: { id: 'org-seats', version: 999, document: active.json.document, digest: 'x' },
  });
  assert.ok([401, 403].includes(insert.status), insert.text);
  assert.deepEqual(await versions(), before);

  // A CLI with a wrong key changes nothing either, and says why.
  const wrong = tollgate(['catalog', 'activate', '1', '--catalog', 'org-seats'], { key: env.publishableKey });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /the store refused the request \(40[13]/);
  assert.deepEqual(await versions(), before);
  // The worker's cache is fresh for the files after this one.
  assert.equal((await worker('GET', '/v1/catalog')).status, 200);
});
