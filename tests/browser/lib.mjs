// Shared helpers of the browser tests: Debian's Chromium through playwright-core,
// the app's URLs from the environment (set by `cargo xtask test`), sign-in and the
// checkout (the worker's /v1/checkout, paid on the providers' local stand-in),
// screenshots as artifacts, and the fixtures' comparison rules.

import { after, before } from 'node:test';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

import { chromium } from 'playwright-core';

import { chromiumOptions } from '../chromium.mjs';

export const WWW = need('WWW_URL');
export const WORKER = process.env.TOLLGATE_WORKER_URL ?? '';
/** The Video Studio worker (its token bundles and plans). */
export const STUDIO = process.env.TOLLGATE_STUDIO_WORKER_URL ?? WORKER;
/** The Org Seats worker (organizations, invites, seats). */
export const ORG = process.env.TOLLGATE_ORG_WORKER_URL ?? WORKER;
export const ARTIFACTS = new URL('./artifacts/', import.meta.url);
mkdirSync(ARTIFACTS, { recursive: true });

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests through \`cargo xtask test\` (it starts the stack and the app)`);
  return v.replace(/\/+$/, '');
}

/** Tests that need the worker fail loudly without it (they are not skipped). */
export function needWorker() {
  if (!WORKER) throw new Error('TOLLGATE_WORKER_URL is not set: these tests need the running worker');
  return WORKER;
}

/**
 * One Chromium for a test file that needs the running worker: launched before its tests,
 * closed after them. Returns a getter for it.
 */
export function browserWithWorker() {
  let browser;
  before(async () => {
    needWorker();
    browser = await launch();
  });
  after(async () => browser?.close());
  return () => browser;
}

export async function launch() {
  return chromium.launch(chromiumOptions());
}

export function uniqueEmail(tag) {
  return `${tag}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}@example.com`;
}

/** Signs in through the local sign-in stand-in; the context keeps the cookie. */
export async function signIn(context, email) {
  const r = await context.request.post(`${WWW}/api/dev/signin`, { data: { email } });
  if (!r.ok()) throw new Error(`sign-in failed: ${r.status()} ${await r.text()}`);
  return r.json(); // { user_id, email, access_token }
}

/** The Supabase session cookie's name in the demo app (www/lib/supabase.ts). */
export const AUTH_COOKIE = 'sb-tollgate-auth-token';

/** The session in the context's Supabase auth cookie (as @supabase/ssr writes it:
 * `base64-` and base64url JSON, split into `.0`, `.1`, ... chunks when long), or null. */
export async function sessionCookie(context) {
  const jar = await context.cookies(WWW);
  const whole = jar.find((c) => c.name === AUTH_COOKIE)?.value;
  const chunks = [];
  for (let i = 0; ; i++) {
    const c = jar.find((x) => x.name === `${AUTH_COOKIE}.${i}`);
    if (!c) break;
    chunks.push(c.value);
  }
  const raw = whole ?? (chunks.length ? chunks.join('') : null);
  if (!raw) return null;
  const json = raw.startsWith('base64-') ? Buffer.from(raw.slice('base64-'.length), 'base64url').toString('utf8') : raw;
  return JSON.parse(json);
}

/** The signed-in user's access token, from the context's session cookie. */
export async function accessToken(context) {
  const s = await sessionCookie(context);
  if (!s?.access_token) throw new Error(`not signed in: no ${AUTH_COOKIE} cookie`);
  return s.access_token;
}

/** `POST <worker><path>` as the signed-in user: `{ status, json }`. */
export async function callWorker(context, path, body, worker = needWorker(), method = 'POST') {
  const r = await fetch(`${worker}${path}`, {
    method,
    headers: { authorization: `Bearer ${await accessToken(context)}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}

/**
 * A purchase as the app makes one, without the clicks: the worker builds the checkout
 * (`POST /v1/checkout`), and the providers' local stand-in pays exactly that session
 * (`POST /api/dev/checkout/<id>`), sending the provider's webhooks to the worker.
 * `period_end`: the stand-in's test clock ends the first period then. `worker`: the
 * app's worker (default the VCM Suite's). `organization_id`: bought for that organization.
 * Answers `{ subscription, deliveries, session }`.
 */
export async function checkout(context, { offer, clouds = [], quantity, period_end, worker, organization_id } = {}) {
  const made = await callWorker(
    context,
    '/v1/checkout',
    {
      offer,
      ...(clouds.length ? { clouds } : {}),
      ...(quantity ? { quantity } : {}),
      ...(organization_id ? { organization_id } : {}),
      success_url: `${WWW}/tools?checkout=success`,
      cancel_url: `${WWW}/tools`,
    },
    worker ?? needWorker(),
  );
  if (made.status !== 200) throw new Error(`POST /v1/checkout refused: ${made.status} ${JSON.stringify(made.json)}`);
  const id = made.json.order?.id ?? made.json.id;
  const r = await context.request.post(`${WWW}/api/dev/checkout/${id}`, { data: { email: 'buyer@example.com', ...(period_end ? { period_end } : {}) } });
  const json = await r.json().catch(() => ({}));
  if (!r.ok()) throw new Error(`paying ${id} on the stand-in failed: ${r.status()} ${JSON.stringify(json)}`);
  return { ...json, session: made.json };
}

/** Polls the worker until the user's snapshot satisfies `pred` (webhooks are applied asynchronously). */
export async function waitForSnapshot(accessToken, pred, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    const r = await fetch(`${needWorker()}/v1/entitlements`, { headers: { authorization: `Bearer ${accessToken}` } });
    last = await r.json().catch(() => null);
    if (r.ok && last?.snapshot && pred(last.snapshot)) return last;
    await new Promise((res) => setTimeout(res, 150));
  }
  throw new Error(`the snapshot never satisfied the condition; last answer: ${JSON.stringify(last)?.slice(0, 500)}`);
}

export async function shot(page, name) {
  await page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
}

/** Waits until the provider has examined its cache (and finished loading). */
export async function gatingReady(page) {
  await page.waitForSelector('[data-testid="tg-status"][data-status="ready"]', { timeout: 15_000 });
}

// ------------------------------------------------------------------ fixture comparison (BRIEF rules)

/**
 * Mismatches between a result (or an error) and a partial expectation: only the keys of
 * `expect` are compared; `error` is a substring of the message; a case that expects an
 * error fails when the call succeeds and the other way round.
 */
export function compare(expect, got, error) {
  const out = [];
  if ('error' in expect) {
    if (error === undefined) out.push(`expected an error containing ${JSON.stringify(expect.error)}, got ${JSON.stringify(got)}`);
    else if (!String(error).includes(expect.error)) out.push(`error ${JSON.stringify(error)} does not contain ${JSON.stringify(expect.error)}`);
    return out;
  }
  if (error !== undefined) return [`unexpected error: ${error}`];
  for (const [key, want] of Object.entries(expect)) {
    if (!(key in got)) out.push(`result has no \`${key}\` (result: ${JSON.stringify(got)})`);
    else if (!isDeepStrictEqual(got[key], want)) out.push(`\`${key}\`: got ${JSON.stringify(got[key])}, want ${JSON.stringify(want)}`);
  }
  return out;
}
