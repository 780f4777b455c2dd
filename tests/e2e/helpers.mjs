// Shared helpers of the end-to-end suite: the stack's coordinates (from cargo xtask),
// signing provider events the way the providers do, Supabase access tokens, database
// checks, and small HTTP helpers. Nothing here fakes a part of the system under test.
import crypto from 'node:crypto';
import pg from 'pg';
import Stripe from 'stripe';

export const env = {
  worker: process.env.TOLLGATE_WORKER_URL ?? 'http://127.0.0.1:8787',
  rest: process.env.TOLLGATE_REST_URL ?? 'http://127.0.0.1:54321',
  // The `iss` the worker expects of users' access tokens: its SUPABASE_URL (the gateway
  // locally) + /auth/v1, as Supabase Auth issues them.
  issuer: process.env.TOLLGATE_JWT_ISSUER
    ?? `${(process.env.TOLLGATE_REST_URL ?? 'http://127.0.0.1:54321').replace(/\/+$/, '')}/auth/v1`,
  db: process.env.TOLLGATE_DB_URL ?? 'postgres://postgres@127.0.0.1:54322/postgres',
  jwtSecret: process.env.TOLLGATE_JWT_SECRET ?? 'super-secret-jwt-token-with-at-least-32-characters-long',
  serviceKey: process.env.TOLLGATE_SERVICE_ROLE_KEY,
  // Supabase's current key style, as the local gateway accepts it.
  secretKey: process.env.TOLLGATE_SECRET_KEY,
  publishableKey: process.env.TOLLGATE_PUBLISHABLE_KEY,
  stripeSecrets: (process.env.TOLLGATE_STRIPE_SECRETS ?? '').split(',').filter(Boolean),
  razorpaySecret: process.env.TOLLGATE_RAZORPAY_SECRET,
  adminSecret: process.env.TOLLGATE_ADMIN_SECRET,
  snapshotSecret: process.env.TOLLGATE_SNAPSHOT_SECRET,
  snapshotKid: process.env.TOLLGATE_SNAPSHOT_KID,
  pgStop: process.env.TOLLGATE_PG_STOP_CMD,
  pgStart: process.env.TOLLGATE_PG_START_CMD,
  catalog: process.env.TOLLGATE_CATALOG ?? 'vcm-suite',
  repo: process.env.TOLLGATE_REPO,
};

// Stripe's own library, used only for its signer (no network).
const stripe = new Stripe('sk_test_unused', { telemetry: false });

export const now = () => Math.floor(Date.now() / 1000);
export const uuid = () => crypto.randomUUID();
export const id = (prefix) => `${prefix}_${crypto.randomBytes(9).toString('hex')}`;

// ------------------------------------------------------------------ database

let pool;
export function db() {
  pool ??= new pg.Pool({ connectionString: env.db, max: 4 });
  return pool;
}
export async function closeDb() {
  if (pool) await pool.end();
  pool = undefined;
}
export async function q(sql, params = []) {
  return (await db().query(sql, params)).rows;
}

/** A user in auth.users (as Supabase Auth would create it). */
export async function createUser(email = `${id('u')}@example.test`) {
  const uid = uuid();
  await q('insert into auth.users (id, email, role, aud) values ($1, $2, $3, $3)', [uid, email, 'authenticated']);
  return uid;
}

// ------------------------------------------------------------------ tokens

const b64 = (x) => Buffer.from(x).toString('base64url');
export function signJwt(claims, secret = env.jwtSecret) {
  const h = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const p = b64(JSON.stringify(claims));
  const s = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
}
/** A Supabase access token of a signed-in user (`iss: null` leaves the issuer out). */
export function userToken(uid, { exp = now() + 3600, secret, iss = env.issuer } = {}) {
  const claims = { sub: uid, role: 'authenticated', aud: 'authenticated', exp, email: `${uid}@example.test` };
  if (iss !== null) claims.iss = iss;
  return signJwt(claims, secret);
}
export function anonToken() {
  return signJwt({ role: 'anon', iss: 'supabase-demo', exp: now() + 3600 });
}

// ------------------------------------------------------------------ HTTP

// wrangler dev's proxy answers a POST it could not hand to the worker with this 503 (plain
// text, not the worker's JSON); it happens now and then under concurrency although the
// worker never restarted (cloudflare/workers-sdk#14641). Such a request did not reach the
// worker, so it is sent again, as the proxy itself does for GET and HEAD.
const DEV_PROXY_LOST = 'Your worker restarted mid-request.';

export async function http(method, url, { headers = {}, body, raw } = {}) {
  const init = { method, headers: { ...headers } };
  if (raw !== undefined) init.body = raw;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] ??= 'application/json';
  }
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, init);
    const text = await res.text();
    if (res.status === 503 && text.startsWith(DEV_PROXY_LOST) && attempt < 3) continue;
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    return { status: res.status, headers: res.headers, text, json };
  }
}
export const worker = (method, path, opts) => http(method, env.worker + path, opts);
/** `POST /v1/admin/grants` with the admin secret. */
export const admin = (body) => worker('POST', '/v1/admin/grants', { body, headers: { authorization: `Bearer ${env.adminSecret}` } });

// ------------------------------------------------------------------ provider events

/** Posts a Stripe event to the worker, signed by Stripe's library with the first
 * endpoint secret (or all of them, as during rotation). */
export async function postStripe(event, { secret = env.stripeSecrets[0], timestamp = now(), header } = {}) {
  const payload = typeof event === 'string' ? event : JSON.stringify(event);
  const sig = header ?? stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
  return worker('POST', '/webhooks/stripe', { raw: payload, headers: { 'stripe-signature': sig, 'content-type': 'application/json' } });
}

/** Delivers a Stripe event as Stripe does: a 5xx answer is delivered again a little later
 * (after `backoffMs`, twice that, ...; at most 30 deliveries). Returns the 200 answer with
 * `retries`, the deliveries answered 5xx before it; any other answer throws. */
export async function postStripeUntilAccepted(event, { backoffMs = 20 } = {}) {
  for (let attempt = 0; attempt < 30; attempt++) {
    const r = await postStripe(event);
    if (r.status === 200) return { ...r, retries: attempt };
    if (r.status < 500) throw new Error(`${event.type}: ${r.status} ${r.text}`);
    await sleep(backoffMs * (attempt + 1));
  }
  throw new Error(`${event.type}: still 5xx after 30 deliveries`);
}

/** Posts a Razorpay event: hex HMAC-SHA256 of the raw body in X-Razorpay-Signature. */
export async function postRazorpay(event, { secret = env.razorpaySecret, eventId = id('evt') } = {}) {
  const payload = typeof event === 'string' ? event : JSON.stringify(event);
  const sig = crypto.createHmac('sha256', secret).update(payload).digest('hex');
  return worker('POST', '/webhooks/razorpay', {
    raw: payload,
    headers: { 'x-razorpay-signature': sig, 'x-razorpay-event-id': eventId, 'content-type': 'application/json' },
  });
}

/** A Stripe event envelope around an object (the current API shape). */
export function stripeEvent(type, object, { created = now(), eventId = id('evt'), previous } = {}) {
  const data = { object };
  if (previous) data.previous_attributes = previous;
  return {
    id: eventId, object: 'event', api_version: '2025-03-31.basil', created, data, livemode: false,
    pending_webhooks: 1, request: { id: null, idempotency_key: null }, type,
  };
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `fn` over `items` with at most `n` in flight. */
export async function parallel(items, fn) {
  return Promise.all(items.map((x, i) => fn(x, i)));
}

/** The rows of one charge as the core decides them (`tollgate::charge`), for calling
 * `tollgate_charge` directly: `units` taken from `lot` under a request id made of `key`. */
export function chargeRows(uid, lot, key, units = 1) {
  const requestId = `user:${uid}:${key.padStart(32, '0')}`;
  return {
    request_id: requestId, request_hash: 'direct',
    takes: [{ lot, units }],
    record: { units, model: 'standard', quality: 'watermark', pool: 'video_seconds', cost_minor: units, overage_minor: 0, overage_units: 0, currency: 'usd' },
  };
}
