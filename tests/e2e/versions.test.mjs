// Credit lots record the catalog version they were sold under (20261206005000), as grants
// do: in the Video Studio pass, the CLI pushes the catalog file the worker embeds (so what
// it sells does not change), a token bundle bought while that version is active opens a lot
// stamped with it, and a lot bought before any version was active stays unstamped. The
// stored version is the file's own content, so the files after this one sell the same.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';

import { env, q, createUser, worker, postStripe, now, sleep } from './helpers.mjs';
import { stripeOneTime } from './events.mjs';

const skip = !env.repo ? 'needs cargo xtask test e2e' : env.catalog !== 'video-studio' && 'runs in the video-studio pass';
let bin;

before(() => {
  if (skip) return;
  execFileSync('cargo', ['build', '-q', '-p', 'tollgate-cli'], { cwd: env.repo, stdio: 'inherit' });
  bin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(env.repo, 'target'), 'debug', 'tollgate');
});

function tollgate(args) {
  const r = spawnSync(bin, args, {
    cwd: env.repo,
    encoding: 'utf8',
    env: { ...process.env, TOLLGATE_SUPABASE_URL: env.rest, TOLLGATE_SERVICE_KEY: env.secretKey, USER: 'e2e' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

const lotsOf = (uid) => q("select kind, catalog_version from credit_lots where user_id = $1 and kind = 'purchase' order by id", [uid]);

async function buyTokens(uid) {
  const r = await postStripe(stripeOneTime({ subject: { user_id: uid }, offer: 'VIDEO_TOKENS_30_MIN', at: now() - 5 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'applied', r.text);
}

test('a credit lot records the catalog version it was sold under', { skip }, async () => {
  const before = await createUser();
  const active = await worker('GET', '/v1/catalog');
  const stored = active.headers.get('tollgate-catalog-version');
  if (!stored) {
    // No version of this catalog in the store yet: the lot is unstamped.
    await buyTokens(before);
    assert.deepEqual((await lotsOf(before)).map((l) => l.catalog_version), [null]);
  }

  const pushed = tollgate(['catalog', 'push', 'catalogs/video-studio.toml', '--json']);
  assert.equal(pushed.code, 0, pushed.stderr);
  const version = pushed.json().version;
  assert.equal(tollgate(['catalog', 'activate', String(version), '--catalog', 'video-studio']).code, 0);
  // Webhooks check the active version at once; give the activation a moment to commit.
  await sleep(200);
  const buyer = await createUser();
  await buyTokens(buyer);
  const lots = await lotsOf(buyer);
  assert.equal(lots.length, 1, JSON.stringify(lots));
  assert.equal(lots[0].kind, 'purchase');
  assert.equal(lots[0].catalog_version, version, 'the lot names the version it was sold under');
  if (!stored) {
    // A second purchase folds the earlier buyer again: the new lot is stamped, the one sold
    // before any version was active is not restamped.
    await buyTokens(before);
    assert.deepEqual((await lotsOf(before)).map((l) => l.catalog_version), [null, version]);
  }
});
