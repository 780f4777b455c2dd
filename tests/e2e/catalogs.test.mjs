// Catalogs published as versioned data, end to end: the `tollgate` CLI pushes and activates
// versions of the Org Seats catalog in PostgreSQL through the REST gateway, and the worker
// (wrangler dev) serves whatever is active, with no rebuild: `GET /v1/catalog` with its
// ETag (304 on If-None-Match), checkouts priced from the active version at once (also back
// to an older one), an invalid push refused with the core's error and its line and nothing
// stored, the same content pushed again a no-op, RLS (anyone reads the active version
// only; only the service role writes).
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
import { env, q, createUser, userToken, worker, http as request, closeDb } from './helpers.mjs';

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

test('RLS: anyone reads the active version only; only the service role writes', { skip }, async () => {
  const anon = { apikey: env.publishableKey };
  const rows = await request('GET', `${env.rest}/rest/v1/tollgate_catalogs?select=id,version,active&id=eq.org-seats`, { headers: anon });
  assert.equal(rows.status, 200, rows.text);
  assert.equal(rows.json.length, 1, 'the active version only');
  assert.equal(rows.json[0].active, true);
  const active = await request('POST', `${env.rest}/rest/v1/rpc/tollgate_catalog_active`, { headers: anon, body: { p_catalog: 'org-seats' } });
  assert.equal(active.status, 200, active.text);
  assert.equal(active.json.document.catalog.id, 'org-seats');
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
