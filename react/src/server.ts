// Server-side helpers for Next.js server components and route handlers (and Node
// code run with the react-server condition): load the wasm engine synchronously from
// its bytes, answer questions for given grants and a catalog the app hands over,
// and fetch and verify a user's snapshot from the worker.
//
// Nothing here uses React state: it works where hooks do not.
//
// Server only: importing this entry into a Client Component fails the build (the
// `server-only` package; Next resolves it with the `react-server` condition in server
// components and route handlers). Outside Next, run Node with
// `--conditions=react-server` to import it (react/test/server.test.mjs does).

import 'server-only';

import { ask } from './core.js';
import type { TollgateCatalog, TollgateEngine, TollgateModule } from './core.js';
import { getTollgate } from './node.js';
import { deadline } from './deadline.js';
import { parsePublicKeys, verifySnapshot } from './snapshot.js';
import type { PublicKeys, VerifyResult } from './snapshot.js';
import type { AccessQuestion, CatalogDoc, CatalogIds, Decision, FeatureOf, RegisteredIds, Grant, MeterAnswer, OrganizationEntitlements, SnapshotPayload, SnapshotResponse, ToolState, Upgrade } from './types.js';

export { ask, describeReason, questionKey, quoteWith } from './core.js';
export type { TollgateEngine, TollgateModule, TollgateCatalog } from './core.js';
export { parsePublicKeys, verifySnapshot, peekSnapshot } from './snapshot.js';
export { SNAPSHOT_COOKIE } from './storage.js';
export type { PublicKeys, VerifyResult, SnapshotErrorCode } from './snapshot.js';
export type * from './types.js';
// The wasm engine and the package's catalogs, loaded as on any Node server (src/node.ts).
export { getTollgate } from './node.js';

// The catalog document read into the core last, by its JSON text: a server renders page
// after page with one catalog, and reading it is most of a decision's cost. Equal text is
// an equal catalog; a document edited in place has other text and is read again.
let lastRead: { tg: TollgateModule; text: string; catalog: TollgateCatalog } | null = null;

function catalogOf(tg: TollgateModule, doc: CatalogDoc): TollgateCatalog {
  // Anything but a plain document (JSON text, a Catalog already read) goes as it is.
  if (doc === null || typeof doc !== 'object' || Object.getPrototypeOf(doc) !== Object.prototype) return tg.loadCatalog(doc);
  const text = JSON.stringify(doc);
  if (lastRead === null || lastRead.tg !== tg || lastRead.text !== text) {
    lastRead = { tg, text, catalog: tg.loadCatalog(text) };
  }
  return lastRead.catalog;
}

/** An engine over a catalog document and grants (no snapshot needed). */
export async function engineFor(
  catalog: CatalogDoc,
  entitlements: { grants: Grant[]; balances?: Record<string, number>; subject?: string } | null,
): Promise<TollgateEngine> {
  const tg = await getTollgate();
  return new tg.Engine(catalogOf(tg, catalog), entitlements ?? { grants: [] });
}

/** Answers one question for given grants at `now` (default: the request's time). */
export async function decide<I extends CatalogIds = RegisteredIds>(
  catalog: CatalogDoc,
  entitlements: { grants: Grant[]; balances?: Record<string, number> } | null,
  q: AccessQuestion<I>,
  now: number = Date.now(),
): Promise<Decision> {
  const engine = await engineFor(catalog, entitlements);
  try {
    return ask(engine, q, now);
  } finally {
    engine.free?.();
  }
}

/** Every tool of a page for given grants. */
export async function pageState(
  catalog: CatalogDoc,
  entitlements: { grants: Grant[]; balances?: Record<string, number> } | null,
  page: string | null,
  usage: Record<string, number> | null = null,
  now: number = Date.now(),
): Promise<ToolState[]> {
  const engine = await engineFor(catalog, entitlements);
  try {
    return engine.pageState(page, usage, now);
  } finally {
    engine.free?.();
  }
}

/**
 * A member's entitlements through organization `organizationId` of a verified snapshot,
 * decided by the package (`getOrganizationEntitlements`: the tier's features only with a
 * seat), at `now`; null when the subject is not a member.
 */
export async function organizationEntitlements(
  catalog: CatalogDoc,
  snapshot: SnapshotPayload,
  organizationId: string,
  now: number = Date.now(),
): Promise<OrganizationEntitlements | null> {
  const tg = await getTollgate();
  if (typeof tg.getOrganizationEntitlements !== 'function') {
    throw new Error('tollgate-react: this build of the tollgate package has no getOrganizationEntitlements(); rebuild pkg/');
  }
  const ents = tg.getOrganizationEntitlements(snapshot, organizationId, { catalog, now });
  if (!ents) return null;
  // A plain value: its hasFeatureAccess is a function, which cannot cross to a client component.
  const { hasFeatureAccess: _check, ...plain } = ents;
  return plain;
}

export interface FetchSnapshotOptions {
  workerUrl: string;
  accessToken: string;
  publicKeys: PublicKeys | string;
  subject: string;
  catalogId?: string;
  now?: number;
  /** Abort the request after this many ms (default 3000). */
  timeoutMs?: number;
}

export type FetchedSnapshot =
  | { ok: true; snapshot: SnapshotPayload; token: string }
  | { ok: false; status: number | null; code: string; message: string };

/**
 * Fetches the user's snapshot from the worker (`GET /v1/entitlements` with their access
 * token) and verifies it with the public keys, exactly as the browser does.
 */
export async function fetchSnapshot(opts: FetchSnapshotOptions): Promise<FetchedSnapshot> {
  const got = await workerCall('/v1/entitlements', 'GET', opts);
  if (got instanceof Error) {
    return { ok: false, status: null, code: 'network', message: `the entitlement service is unreachable: ${got.message}` };
  }
  const { resp, text } = got;
  if (!resp.ok) {
    return { ok: false, status: resp.status, code: resp.status === 401 ? 'unauthorized' : 'http', message: `HTTP ${resp.status} ${text.slice(0, 300)}` };
  }
  // A 200 that is not the worker's answer (an HTML page from a proxy, a wrong URL) is a
  // refusal like any other: the page renders the free tiers.
  const body = parseJson(text) as SnapshotResponse | null;
  if (typeof body?.token !== 'string') {
    return { ok: false, status: resp.status, code: 'bad_response', message: `HTTP ${resp.status} without a snapshot token in JSON` };
  }
  return verifiedToken(body.token, opts, resp.status);
}

/** `token` verified for the subject and catalog of `opts`; `status`: the HTTP status it came with. */
async function verifiedToken(
  token: string,
  opts: { publicKeys: PublicKeys | string; subject: string; catalogId?: string; now?: number },
  status: number | null,
): Promise<FetchedSnapshot> {
  // The verifier skips the subject check when given none; here one is required, or a
  // session without a user id (an empty string from an app's fallback) would accept
  // anyone's snapshot from a cookie the browser chose.
  if (typeof opts.subject !== 'string' || opts.subject === '') {
    return { ok: false, status, code: 'wrong_subject', message: 'no signed-in subject to verify the entitlement snapshot for' };
  }
  const r: VerifyResult = await verifySnapshot(token, parsePublicKeys(opts.publicKeys), {
    subject: opts.subject,
    catalogId: opts.catalogId,
    now: opts.now ?? Date.now(),
    tollgate: await getTollgate(),
  });
  if (!r.ok) return { ok: false, status, code: r.code, message: r.message };
  return { ok: true, snapshot: r.snapshot, token };
}

export interface CookieSnapshotOptions {
  /** The snapshot cookie's value (`cookies().get(SNAPSHOT_COOKIE)?.value` in Next.js). */
  cookie: string | null | undefined;
  publicKeys: PublicKeys | string;
  /** The signed-in user: a snapshot of anyone else is refused. */
  subject: string;
  catalogId?: string;
  now?: number;
}

/**
 * The snapshot the provider keeps in its cookie (`snapshotCookie`), verified for this
 * subject and catalog with no network call: what a server render can gate with at once.
 * It is as fresh as the browser's last verified snapshot, so a page that must reflect a
 * change the browser cannot have seen yet (the return from a checkout) fetches instead.
 */
export async function snapshotFromCookie(opts: CookieSnapshotOptions): Promise<FetchedSnapshot> {
  const token = opts.cookie;
  if (!token) return { ok: false, status: null, code: 'no_cookie', message: 'no snapshot cookie' };
  return verifiedToken(token, opts, null);
}

/**
 * The snapshot to render a signed-in page with: the cookie's when it verifies (no
 * network call), else fetched from the worker and verified (`fetchSnapshot`).
 * `fresh: true` skips the cookie.
 */
export async function renderSnapshot(
  opts: FetchSnapshotOptions & { cookie: string | null | undefined; fresh?: boolean },
): Promise<FetchedSnapshot & { from?: 'cookie' | 'worker' }> {
  if (!opts.fresh) {
    const c = await snapshotFromCookie(opts);
    if (c.ok) return { ...c, from: 'cookie' };
  }
  const f = await fetchSnapshot(opts);
  return f.ok ? { ...f, from: 'worker' } : f;
}

// ---------------------------------------------------------------------------------------
// Server-side gates: the worker decides (`POST /v1/check`, `POST /v1/track`), so a route
// handler enforces exactly what the browser shows.

export interface MeterOptions {
  workerUrl: string;
  /** The caller's Supabase access token (the worker decides for its `sub`). */
  accessToken: string;
  /** How much of the feature (default 1). */
  quantity?: number;
  /** For `track`: one key per use, sent again on a retry (default: a fresh one). */
  idempotencyKey?: string;
  /** For `track` on a credit pool: hold the credits until captured or released. */
  hold?: boolean;
  /** Use an organization's plan and count its limit for the whole organization (the
   * caller must hold a seat there). */
  organizationId?: string;
  /** Count a limit per thing (one course, one project): `<limit>:<scope>`. */
  scope?: string;
  /** Abort the request after this many ms (default 3000). */
  timeoutMs?: number;
}


export type Metered =
  | { ok: true; answer: MeterAnswer }
  | {
      ok: false;
      /** The worker's status (402 short of credits, 403 not entitled or limit reached, ...), null when unreachable. */
      status: number | null;
      code: string;
      message: string;
      upgrade: Upgrade | null;
      /** For `check`: the worker's whole answer (what was used, the limit, when it resets). */
      answer?: MeterAnswer;
      /** A ready answer for a route handler: the same status and a JSON error body. */
      response: Response;
    };

/** A refused answer, with the same status ready as a route handler's JSON response. */
function refusal(status: number | null, code: string, message: string, upgrade: Upgrade | null) {
  return {
    ok: false as const,
    status,
    code,
    message,
    upgrade,
    response: Response.json({ error: { code, message, upgrade } }, { status: status && status >= 400 ? status : 503 }),
  };
}

/**
 * Calls the worker with the caller's token and reads the whole answer, both within
 * `timeoutMs` (default 3000): a worker that sends its headers and then stalls must not
 * hold the page past it. The error when it cannot be reached or does not finish in time.
 */
async function workerCall(
  path: string,
  method: 'GET' | 'POST',
  opts: { workerUrl: string; accessToken: string; timeoutMs?: number },
  body?: unknown,
  key?: string,
): Promise<{ resp: Response; text: string } | Error> {
  const ms = opts.timeoutMs ?? 3000;
  const d = deadline(ms);
  const headers: Record<string, string> = { authorization: `Bearer ${opts.accessToken}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key) headers['idempotency-key'] = key;
  try {
    const resp = await d.bound(
      fetch(`${opts.workerUrl.replace(/\/+$/, '')}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        signal: d.signal,
      }),
    );
    return { resp, text: await d.bound(resp.text()) };
  } catch (e) {
    return d.timedOut ? new Error(`no complete answer within ${ms} ms`) : e instanceof Error ? e : new Error(String(e));
  } finally {
    d.done();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

async function meterCall(path: string, feature: string, opts: MeterOptions, key?: string): Promise<Metered> {
  const asked = {
    feature,
    quantity: opts.quantity ?? 1,
    ...(opts.hold ? { hold: true } : {}),
    ...(opts.organizationId ? { organization_id: opts.organizationId } : {}),
    ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
  };
  const got = await workerCall(path, 'POST', opts, asked, key);
  if (got instanceof Error) return refusal(null, 'unavailable', `the entitlement service is unreachable: ${got.message}`, null);
  const resp = got.resp;
  const body = parseJson(got.text) as (MeterAnswer & { error?: { code?: string; message?: string; upgrade?: Upgrade } }) | null;
  if (resp.ok && body && typeof body.allowed === 'boolean') {
    if (body.allowed) return { ok: true, answer: body as MeterAnswer };
    // A check that says no: the same answer a track would give.
    const code = body.reason === 'limit_reached' ? 'limit_reached' : 'not_entitled';
    return { ...refusal(403, code, body.message ?? `${body.feature}: ${body.reason}`, body.upgrade ?? null), answer: body as MeterAnswer };
  }
  const err: { code?: string; message?: string; upgrade?: Upgrade } = body?.error ?? {};
  return refusal(resp.status, err.code ?? 'http', err.message ?? `HTTP ${resp.status}`, err.upgrade ?? null);
}

/**
 * May the caller use `feature` now? The worker's decision, with no side effects. A denial
 * comes with a ready 403 `response`.
 */
export function check<I extends CatalogIds = RegisteredIds>(feature: FeatureOf<I>, opts: MeterOptions): Promise<Metered> {
  return meterCall('/v1/check', feature, opts);
}

/**
 * Performs one use of `feature` for the caller: counts a limit's use, spends (or holds)
 * credits, or checks a capability. Refused uses come back with a ready `response`
 * (403 `limit_reached` / `not_entitled`, 402 `insufficient_balance` / `paused`) to return as is.
 */
export function track<I extends CatalogIds = RegisteredIds>(feature: FeatureOf<I>, opts: MeterOptions): Promise<Metered> {
  return meterCall('/v1/track', feature, opts, opts.idempotencyKey ?? globalThis.crypto.randomUUID());
}

export type ExportAnswer =
  | { ok: true; policy: 'full' | 'watermarked' }
  | { ok: false; status: number | null; code: string; message: string; upgrade: Upgrade | null; response: Response };

/**
 * How the caller may export now, decided by the worker (`POST /v1/export`): full
 * resolution, watermarked (the caller must watermark), or refused ("Upgrade to export.",
 * with the cheapest plan that exports, and a ready 403 `response`).
 */
export async function exportPolicy(opts: Omit<MeterOptions, 'quantity' | 'idempotencyKey' | 'hold'>): Promise<ExportAnswer> {
  const got = await workerCall('/v1/export', 'POST', opts);
  if (got instanceof Error) return refusal(null, 'unavailable', `the entitlement service is unreachable: ${got.message}`, null);
  const resp = got.resp;
  const body = parseJson(got.text) as { policy?: string; error?: { code?: string; message?: string; upgrade?: Upgrade } } | null;
  if (resp.ok && (body?.policy === 'full' || body?.policy === 'watermarked')) return { ok: true, policy: body.policy };
  const err = body?.error ?? {};
  return refusal(resp.status, err.code ?? 'http', err.message ?? `HTTP ${resp.status}`, err.upgrade ?? null);
}
