// tollgate-react/proxy: gates whole pages in a Next.js proxy (`proxy.ts`, the file
// Next.js 16 renamed from `middleware.ts`) before they render, from the signed snapshot
// the provider keeps in a cookie. No network call: the snapshot is verified with the
// package's own verifier (Ed25519 signature, key id against the trusted keys, expiry) and
// the request's page is decided with the package's Engine, the same decisions the
// browser, the server helpers and the worker make.
//
// What this trusts, and why it may let requests through:
//
// - The cookie is whatever the browser sends. Its signature proves the worker issued
//   the snapshot, not that this browser's user is its subject: with a `subject` function
//   (the session's user id, read without a network call) a snapshot of anyone else is
//   ignored; without one, a user who copies someone else's cookie gets past the proxy,
//   and the page's server-side checks stop them.
// - No cookie, a refused one (altered, expired, signed by an unknown key, another
//   catalog or catalog version), another subject, a path without a rule or a request
//   that is not GET or HEAD: the request goes through unchanged. The proxy only spares an
//   allowed user nothing and a denied one a page they cannot use; the worker enforces
//   every paid action, whatever the proxy decided.
// - A snapshot is valid until its `expires_at`, so a purchase made elsewhere (another
//   device) may be missing from the cookie for that long: such a user lands on the
//   upgrade page, whose provider fetches the fresh snapshot and rewrites the cookie.

import { ask } from './core.js';
import type { TollgateCatalog, TollgateModule } from './core.js';
import { getTollgate } from './node.js';
import { isSubject, parsePublicKeys, verifySnapshot } from './snapshot.js';
import type { PublicKeys, SnapshotErrorCode } from './snapshot.js';
import { SNAPSHOT_COOKIE, readCookies } from './storage.js';
import { within } from './deadline.js';
import type { CatalogDoc, Decision } from './types.js';

export { SNAPSHOT_COOKIE, readCookie } from './storage.js';

/** What a gated path needs: a capability, a product at a tier, or a catalog tool's requirement. */
export type ProxyRequirement = { capability: string } | { product: string; tier: string } | { tool: string };

/**
 * The request as the proxy reads it: a `NextRequest` or any `Request`. `nextUrl` is used
 * when present (Next.js's view of the path), the `url` otherwise.
 */
export interface ProxyRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
  /** Next.js's NextURL: `pathname` without the basePath and locale, which the redirect puts back. */
  readonly nextUrl?: { pathname: string; search: string; basePath?: string; locale?: string; defaultLocale?: string };
}

/** Why the proxy let a request through or redirected it (for logs and tests). */
export type ProxyOutcome =
  | { action: 'pass'; path: string; why: 'no_rule' | 'method' | 'upgrade_path' | 'no_cookie' | 'duplicate_cookie' | 'signed_out' | 'subject_error' | 'catalog_unavailable' | SnapshotErrorCode; message?: string }
  | { action: 'allow'; path: string; decision: Decision }
  | { action: 'redirect'; path: string; decision: Decision; location: string };

export interface ProxyOptions<R extends ProxyRequest = ProxyRequest> {
  /**
   * The catalog to decide with: the worker's document (`GET /v1/catalog`) or a JSON file
   * the app built, as the parsed document or its text, or a function giving either
   * (called once, on the first request).
   */
  catalog: CatalogDoc | string | (() => CatalogDoc | string | Promise<CatalogDoc | string>);
  /** Trusted snapshot keys: `{ kid: key }` or configuration text `kid:key,kid2:key2`. */
  publicKeys: PublicKeys | string;
  /**
   * Path prefixes and what they need. A prefix matches itself and the paths below it
   * (`/tools/batch` matches `/tools/batch/x`, not `/tools/batchy`); the longest one wins.
   */
  rules: Record<string, ProxyRequirement>;
  /**
   * Where a denied request is sent (a path of this site, never gated itself), with
   * `?offer=<cheapest offer key>&from=<path and query>`; `offer` is absent when no offer
   * of the catalog unlocks the page.
   */
  upgradePath: string;
  /** The snapshot cookie's name (default `tollgate-snapshot`, as the provider writes it). */
  cookie?: string;
  /**
   * The signed-in user's id from the request, read without a network call (a verified
   * session token in a cookie), or null when signed out. When given, only a snapshot of
   * that user gates. Without it the snapshot's own subject is trusted.
   */
  subject?: (request: R) => string | null | undefined | Promise<string | null | undefined>;
  /** The clock, epoch ms (default Date.now). */
  now?: () => number;
  /** How long the catalog's first load and the `subject` function may take, in ms (default 3000); past it the request goes on. */
  timeoutMs?: number;
  /** Called with every outcome, for logging. */
  onOutcome?: (outcome: ProxyOutcome) => void;
  /** Loads the tollgate package (default: from node_modules, as `tollgate-react/server` does). */
  load?: () => Promise<TollgateModule>;
}

/** The function `createProxy` returns: a redirect for a denied page, undefined to go on. */
export type TollgateProxy<R extends ProxyRequest = ProxyRequest> = (request: R) => Promise<Response | undefined>;

interface Rule {
  prefix: string;
  need: ProxyRequirement;
}

function normalisePrefix(p: string): string {
  if (typeof p !== 'string' || !p.startsWith('/') || p.startsWith('//')) {
    throw new Error(`tollgate-react/proxy: rule \`${p}\` must be a path starting with one \`/\``);
  }
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

function matches(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

function describeRequirement(need: ProxyRequirement): string {
  if ('capability' in need) return `capability \`${need.capability}\``;
  if ('tool' in need) return `tool \`${need.tool}\``;
  return `\`${need.product}\` at \`${need.tier}\``;
}

/**
 * A gate for Next.js's proxy: `await gate(request)` is a redirect to the upgrade path
 * when the snapshot cookie proves the page is not included in the user's plan, and
 * undefined otherwise (go on to the page, whose server-side checks still hold).
 *
 * ```ts
 * // proxy.ts
 * const gate = createProxy({ catalog: catalogJsonText, publicKeys, rules: { '/tools/batch': { capability: 'heavy_tools' } }, upgradePath: '/tools' });
 * export async function proxy(request: NextRequest) {
 *   return (await gate(request)) ?? NextResponse.next();
 * }
 * export const config = { matcher: ['/tools/batch/:path*'] };
 * ```
 *
 * The wasm engine and the catalog are loaded on the first request; a rule the catalog
 * cannot answer (an unknown capability, product, tier or tool) fails that request and
 * every later one with an Error naming the rule. What the proxy cannot decide goes on to
 * the page, whose server-side check decides: a catalog that fails to load or takes longer
 * than `timeoutMs` (`catalog_unavailable`; the next request loads it again), a `subject`
 * function that throws or does not answer in time (`subject_error`), two different
 * snapshot cookies of one name (`duplicate_cookie`: which is this browser's own cannot
 * be told). An `onOutcome` that throws changes nothing. A redirect keeps Next.js's
 * basePath and locale, and its `from` is always a path of this site.
 */
export function createProxy<R extends ProxyRequest = ProxyRequest>(opts: ProxyOptions<R>): TollgateProxy<R> {
  const keys = parsePublicKeys(opts.publicKeys);
  const cookieName = opts.cookie ?? SNAPSHOT_COOKIE;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? 3000;
  const upgradePath = normalisePrefix(opts.upgradePath.split(/[?#]/)[0]);
  const rules: Rule[] = Object.entries(opts.rules)
    .map(([prefix, need]) => ({ prefix: normalisePrefix(prefix), need }))
    .sort((a, b) => b.prefix.length - a.prefix.length);

  let ready: Promise<{ tg: TollgateModule; catalog: TollgateCatalog; doc: CatalogDoc }> | null = null;
  const load = () =>
    (ready ??= (async () => {
      const tg = await (opts.load ?? getTollgate)();
      const given = typeof opts.catalog === 'function' ? await opts.catalog() : opts.catalog;
      const catalog = tg.loadCatalog(given);
      const doc = (typeof given === 'string' ? catalog.toJSON() : given) as CatalogDoc;
      // Every rule is asked once with no grants, so a rule the catalog does not know
      // fails here, loudly, rather than on some user's request.
      const engine = new tg.Engine(catalog, { grants: [] });
      try {
        for (const r of rules) {
          try {
            ask(engine, r.need, now());
          } catch (e) {
            throw new RuleError(`tollgate-react/proxy: the rule for \`${r.prefix}\` (${describeRequirement(r.need)}): ${(e as Error).message}`);
          }
        }
      } finally {
        engine.free?.();
      }
      return { tg, catalog, doc };
    })().catch((e: unknown) => {
      // A failure (the catalog's fetch, say) is not kept: the next request tries again.
      ready = null;
      throw e;
    }));

  return async function gate(request: R): Promise<Response | undefined> {
    const url = request.nextUrl ?? new URL(request.url);
    const path = url.pathname;
    const done = (o: ProxyOutcome) => {
      try {
        opts.onOutcome?.(o);
      } catch {
        /* a logger's failure is no reason to fail the page */
      }
      return o.action === 'redirect' ? redirect(o.location) : undefined;
    };
    const pass = (why: Extract<ProxyOutcome, { action: 'pass' }>['why'], message?: string) =>
      done({ action: 'pass', path, why, ...(message ? { message } : {}) });

    const rule = rules.find((r) => matches(r.prefix, path));
    if (!rule) return pass('no_rule');
    // The upgrade page itself is never redirected (under a broad rule it would loop), also
    // as `/upgrade/`: an app with `trailingSlash: true` serves it there, and a redirect to
    // `/upgrade` would come back to the proxy as `/upgrade/` again.
    if (path === upgradePath || (path.length > 1 && path.replace(/\/+$/, '') === upgradePath)) return pass('upgrade_path');
    if (request.method !== 'GET' && request.method !== 'HEAD') return pass('method');
    const values = readCookies(request.headers.get('cookie'), cookieName);
    // Several values (a cookie tossed by a sibling subdomain, another Path): which one is
    // this browser's own cannot be told, so none decides.
    if (new Set(values).size > 1) return pass('duplicate_cookie');
    const token = values[0];
    if (!token) return pass('no_cookie');

    let loaded: Awaited<ReturnType<typeof load>>;
    try {
      loaded = await within(load(), timeoutMs, () => {
        ready = null; // a load that hangs is not kept either
      });
    } catch (e) {
      if (e instanceof RuleError) throw e; // a rule the catalog cannot answer stays loud
      return pass('catalog_unavailable', (e as Error).message);
    }
    const { tg, catalog, doc } = loaded;
    const t = now();
    // The core's verifier (`load` made sure the package has one). The catalog and the
    // subject are checked here, after it, with the proxy's own messages.
    const verified = await verifySnapshot(token, keys, { now: t, tollgate: tg });
    if (!verified.ok) return pass(verified.code, verified.message);
    const snapshot = verified.snapshot;
    if (snapshot.catalog_id !== doc.catalog.id || snapshot.catalog_version !== doc.catalog.version) {
      return pass(
        'catalog_mismatch',
        `the snapshot is for ${snapshot.catalog_id} ${snapshot.catalog_version}, the proxy decides with ${doc.catalog.id} ${doc.catalog.version}`,
      );
    }
    if (opts.subject) {
      let user: string | null | undefined;
      try {
        user = await within(Promise.resolve().then(() => opts.subject!(request)), timeoutMs);
      } catch (e) {
        return pass('subject_error', (e as Error).message);
      }
      if (!user) return pass('signed_out');
      if (!isSubject(snapshot.subject, user)) return pass('wrong_subject', `the snapshot describes \`${snapshot.subject}\`, not \`${user}\``);
    }

    // The verified snapshot itself: its grants, balances and the terms of older catalog
    // versions its grants are held under (tollgate::grandfather), so the page is decided as the worker would.
    const engine = new tg.Engine(catalog, snapshot);
    let decision: Decision;
    try {
      decision = ask(engine, rule.need, t);
    } finally {
      engine.free?.();
    }
    if (decision.allowed) return done({ action: 'allow', path, decision });

    // Next.js's pathname has the basePath and the locale taken off: the upgrade page is
    // under them. `from` stays a path of this site (never `//host`).
    const n = request.nextUrl;
    const prefix = (n?.basePath ?? '') + (n?.locale && n.locale !== n.defaultLocale ? `/${n.locale}` : '');
    const to = new URL(prefix + upgradePath, request.url);
    if (decision.upgrade) to.searchParams.set('offer', decision.upgrade.offer);
    to.searchParams.set('from', `/${path.replace(/^[/\\]+/, '')}${url.search}`);
    return done({ action: 'redirect', path, decision, location: to.href });
  };
}

class RuleError extends Error {}

/**
 * A temporary redirect that no cache keeps (the answer depends on the cookie). The
 * location is absolute on the request's own origin; Next.js sends it as a path.
 */
function redirect(location: string): Response {
  return new Response(null, {
    status: 307,
    headers: { location, 'cache-control': 'private, no-store', 'x-tollgate-proxy': 'redirect' },
  });
}
