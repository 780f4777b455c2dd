'use client';

// <TollgateProvider>: loads the wasm engine, the catalog and the signed
// entitlement snapshot, and answers every gate below it.
//
// Order on mount: the last good snapshot in localStorage is verified (Ed25519,
// expiry, subject, catalog) and used at once; then a fresh one is fetched from
// the worker. A snapshot that fails verification (tampered, expired, someone
// else's) counts as nothing at all (the free tiers) and triggers a refetch.
// Refreshes also happen on window focus, when the browser comes back online,
// after a checkout (`refresh({ until })`), when any decision's `holds_until`
// passes, and shortly before the snapshot expires. With the network gone the
// cached snapshot keeps answering until it expires; after that the gates are locked
// and `problem.code` stays `expired` (with `online: false`) until a fresh one arrives.
//
// The snapshot in force is also written to a cookie (`snapshotCookie`, on by default)
// for the app's proxy (`tollgate-react/proxy`), which gates whole pages from it before
// they render; the cookie is removed when no snapshot of the signed-in subject is in force.

import { createContext, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { ReactNode } from 'react';

import type { TollgateEngine, TollgateModule } from './core.js';
import { isSubject, parsePublicKeys, parseTimestamp, peekSnapshot, verifySnapshot } from './snapshot.js';
import type { PublicKeys, SnapshotErrorCode } from './snapshot.js';
import {
  SNAPSHOT_COOKIE,
  catalogKey,
  clearSnapshotCookie,
  readItem,
  removeItem,
  snapshotKey,
  writeItem,
  writeSnapshotCookie,
} from './storage.js';
import type { CatalogDoc, SnapshotPayload, SnapshotResponse } from './types.js';
import { deadline } from './deadline.js';
import type { Deadline } from './deadline.js';

export type SnapshotSource = 'cache' | 'network' | 'server';

export interface SnapshotProblem {
  code: SnapshotErrorCode | 'unauthorized' | 'network' | 'http' | 'bad_response';
  message: string;
  /** Where the refused token came from. */
  from: SnapshotSource;
}

export interface RefreshOptions {
  /** Why (shown in the debug panel and the event log). */
  reason?: string;
  /**
   * Keep polling until this holds for the new snapshot (e.g. after a checkout, until the
   * purchased grant appears), or until `timeoutMs` (default 15 s) passes. The deadline
   * also bounds each request, so a worker that never answers cannot hold the refresh.
   * Polling stops when the provider unmounts or its user signs out or changes.
   */
  until?: (snapshot: SnapshotPayload) => boolean;
  timeoutMs?: number;
  /** Poll interval while waiting for `until` (default 250 ms). */
  intervalMs?: number;
}

export interface TollgateState {
  /** `loading` until the engine, the catalog and the cached snapshot have been examined. */
  status: 'loading' | 'ready' | 'error';
  /** Set when the engine or the catalog could not be loaded (gates then show their locked state). */
  fatal: string | null;
  tollgate: TollgateModule | null;
  engine: TollgateEngine | null;
  catalog: CatalogDoc | null;
  /** The verified snapshot in force, or null (signed out, none yet, or refused: the free tiers). */
  snapshot: SnapshotPayload | null;
  source: SnapshotSource | null;
  /** Why the last token was refused or could not be fetched (null: all good). */
  problem: SnapshotProblem | null;
  /** False after a fetch failed for network reasons, until one succeeds. */
  online: boolean;
  fetching: boolean;
  /** Epoch ms of the last successful fetch. */
  fetchedAt: number | null;
  subject: string | null;
  signedIn: boolean;
  /** Increases whenever any answer may have changed (a new snapshot, or a boundary passed). */
  version: number;
  /** The provider's clock (epoch ms). */
  now: () => number;
  refresh: (opts?: RefreshOptions) => Promise<SnapshotPayload | null>;
  /** Forget the cached snapshot of this subject (e.g. on sign-out). */
  clear: () => void;
  /**
   * Hands the provider a snapshot token obtained elsewhere (a server component that
   * fetched one). It is verified like any other and used when it is newer.
   */
  offer: (token: string) => void;
}

export const TollgateContext = createContext<TollgateState | null>(null);

export interface TollgateProviderProps {
  children?: ReactNode;
  /** Base URL of the tollgate worker (GET /v1/entitlements, GET /v1/catalog). */
  workerUrl: string;
  /** The user's Supabase access token; null or absent: signed out (free tiers, nothing fetched). */
  accessToken?: string | null;
  /** The signed-in user's id (the snapshot's `subject`). Read from the token's `sub` when omitted. */
  subject?: string | null;
  /** Trusted snapshot keys: `{ kid: key }` or configuration text `kid:key,kid2:key2`. */
  publicKeys: PublicKeys | string;
  /** The catalog document. Fetched from `${workerUrl}/v1/catalog` (and cached) when absent. */
  catalog?: CatalogDoc | null;
  /** A snapshot token the server already has (skips one fetch; still verified here). */
  initialToken?: string | null;
  /** Where the .wasm lives (default: next to the package's JS). */
  wasmUrl?: string;
  /** Loads the tollgate package (default: `import('tollgate')` then `init()`). */
  load?: () => Promise<TollgateModule>;
  /** The clock, epoch ms (default Date.now). */
  now?: () => number;
  /** Refetch when the window regains focus (default true). */
  refreshOnFocus?: boolean;
  /**
   * The cookie the verified snapshot token is kept in for the app's proxy
   * (`tollgate-react/proxy`): its name (default `tollgate-snapshot`), or false to keep
   * no cookie. Path `/`, SameSite=Lax, Secure on https, and it lasts as long as the
   * snapshot is valid. A token too large for a cookie (over 4000 bytes) is not written.
   */
  snapshotCookie?: string | false;
  /** Called after each change of snapshot, for logging or analytics. */
  onChange?: (state: { snapshot: SnapshotPayload | null; source: SnapshotSource | null; problem: SnapshotProblem | null }) => void;
}

/** The `sub` claim of a JWT, read without verification (the worker verifies; this only names the cache entry). */
export function subjectOfToken(token: string | null | undefined): string | null {
  if (!token) return null;
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const bin = atob(part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4));
    // atob gives one character per byte; the claims are UTF-8 (a `sub` may be any text).
    const json = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json) as { sub?: unknown };
    return typeof claims.sub === 'string' ? claims.sub : null;
  } catch {
    return null;
  }
}

const MAX_TIMEOUT = 2_147_483_647;

/** Tokens ordered by their (unverified) issue time, newest first; verification follows. */
function newestFirst(tokens: string[]): string[] {
  const issued = (t: string) => parseTimestamp(peekSnapshot(t)?.issued_at) || 0;
  return [...tokens].sort((a, b) => issued(b) - issued(a));
}
/** A refusal of the token itself (as opposed to a failure to fetch one). */
function isSnapshotProblem(p: SnapshotProblem): boolean {
  return !['unauthorized', 'network', 'http', 'bad_response'].includes(p.code);
}

/** Renew this long before the snapshot expires. */
const RENEW_BEFORE_MS = 60_000;

/** The longest one request for a snapshot may take (headers and body) before it counts as failed. */
const FETCH_TIMEOUT_MS = 10_000;

async function defaultLoad(wasmUrl?: string): Promise<TollgateModule> {
  const mod: TollgateModule = await import('tollgate');
  if (typeof mod.init === 'function' && !(typeof mod.isReady === 'function' && mod.isReady())) {
    await mod.init(wasmUrl);
  }
  return mod;
}

interface Inner {
  tollgate: TollgateModule | null;
  engine: TollgateEngine | null;
  catalog: CatalogDoc | null;
  snapshot: SnapshotPayload | null;
  token: string | null;
  source: SnapshotSource | null;
  problem: SnapshotProblem | null;
  status: 'loading' | 'ready' | 'error';
  fatal: string | null;
  online: boolean;
  fetching: boolean;
  fetchedAt: number | null;
  version: number;
}

const INITIAL: Inner = {
  tollgate: null,
  engine: null,
  catalog: null,
  snapshot: null,
  token: null,
  source: null,
  problem: null,
  status: 'loading',
  fatal: null,
  online: true,
  fetching: false,
  fetchedAt: null,
  version: 0,
};

export function TollgateProvider(props: TollgateProviderProps) {
  const {
    children,
    workerUrl,
    accessToken = null,
    catalog: catalogProp = null,
    initialToken = null,
    wasmUrl,
    load,
    refreshOnFocus = true,
    snapshotCookie = SNAPSHOT_COOKIE,
    onChange,
  } = props;
  const subject = props.subject ?? subjectOfToken(accessToken);
  const signedIn = Boolean(accessToken && subject);
  const nowFn = props.now;
  const now = useCallback(() => (nowFn ? nowFn() : Date.now()), [nowFn]);
  const keysText = typeof props.publicKeys === 'string' ? props.publicKeys : JSON.stringify(props.publicKeys);
  const keys = useMemo(() => parsePublicKeys(keysText), [keysText]);
  const base = workerUrl.replace(/\/+$/, '');

  const [inner, setInner] = useState<Inner>(INITIAL);
  const ref = useRef(inner);
  ref.current = inner;
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;
  const fetchSeq = useRef(0);
  // Requests in flight (`fetching` is true while any is), to abort on unmount or a change of user.
  const inFlight = useRef(new Set<Deadline>());
  // False once unmounted: nothing is fetched, polled or set after that.
  const live = useRef(true);
  const offered = useRef<string[]>([]);
  // The subject now: an answer for another (a fetch begun before a sign-out or a switch of
  // user) is dropped when it arrives.
  const subjectNow = useRef(subject);
  subjectNow.current = signedIn ? subject : null;

  const update = useCallback((patch: Partial<Inner> | ((s: Inner) => Partial<Inner>)) => {
    setInner((s) => {
      const p = typeof patch === 'function' ? patch(s) : patch;
      return { ...s, ...p };
    });
  }, []);

  /** Applies a verified snapshot (or none) to the engine. */
  const apply = useCallback(
    (engine: TollgateEngine, snapshot: SnapshotPayload | null) => {
      // The snapshot itself, so the terms its grants are held under come with them.
      engine.setEntitlements(snapshot ?? { grants: [] });
    },
    [],
  );

  /** Verifies a token; on success installs it (and stores it when it came from elsewhere than the cache). */
  const accept = useCallback(
    async (token: string, from: SnapshotSource): Promise<SnapshotPayload | null> => {
      const s = ref.current;
      if (!s.engine || !s.catalog || !subject) return null;
      const result = await verifySnapshot(token, keys, {
        subject,
        catalogId: s.catalog.catalog.id,
        now: now(),
        tollgate: s.tollgate,
      });
      if (subjectNow.current !== subject) return null;
      const key = snapshotKey(s.catalog.catalog.id, subject);
      if (!result.ok) {
        const problem: SnapshotProblem = { code: result.code, message: result.message, from };
        if (from === 'cache' && result.code !== 'expired') {
          // Not a good snapshot: it must not be kept as "the last good one". An expired
          // one was good and stays, so that a reload offline can still say why it is locked.
          removeItem(key);
        }
        // A refused token counts as nothing: the free tiers.
        if (from === 'cache' || !ref.current.snapshot || s.token === token) {
          apply(s.engine, null);
          update((x) => ({ snapshot: null, token: null, source: null, problem, version: x.version + 1 }));
        } else {
          update({ problem });
        }
        return null;
      }
      // Never an older snapshot of the subject over a newer one (a slow answer to an
      // earlier fetch arriving after a later one was installed).
      const cur = ref.current.snapshot;
      if (cur && isSubject(cur.subject, subject) && parseTimestamp(result.snapshot.issued_at) < parseTimestamp(cur.issued_at)) {
        return cur;
      }
      if (from !== 'cache') writeItem(key, token);
      apply(s.engine, result.snapshot);
      update((x) => ({
        snapshot: result.snapshot,
        token,
        source: from,
        problem: null,
        version: x.version + 1,
      }));
      return result.snapshot;
    },
    [apply, keys, now, subject, update],
  );

  const fetchOnce = useCallback(
    async (until: number = Infinity): Promise<SnapshotPayload | null> => {
      if (!accessToken || !subject || !live.current) return null;
      const seq = ++fetchSeq.current;
      // An answer changes nothing once a later fetch began, its user signed out or changed,
      // or the provider is gone: a late failure must not mark the provider offline or show
      // its problem, and `fetching` is left to the requests still in flight.
      const stale = () => seq !== fetchSeq.current || subjectNow.current !== subject || !live.current;
      const limit = Math.max(0, Math.min(FETCH_TIMEOUT_MS, until - Date.now()));
      // The deadline also ends a wait for the body, and a `fetch` that ignores the signal.
      const d = deadline(limit);
      inFlight.current.add(d);
      update({ fetching: true });
      try {
        let resp: Response;
        try {
          resp = await d.bound(
            fetch(`${base}/v1/entitlements`, {
              headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
              cache: 'no-store',
              signal: d.signal,
            }),
          );
        } catch (e) {
          if (stale()) return ref.current.snapshot;
          const why = d.timedOut
            ? `the entitlement service did not answer within ${limit} ms`
            : `the entitlement service is unreachable (${e instanceof Error ? e.message : String(e)})`;
          update((x) => ({
            online: false,
            // While no snapshot is in force, why the last one was refused (e.g. `expired`)
            // explains the locked state better than the failed fetch, which `online` shows.
            problem: !x.snapshot && x.problem && isSnapshotProblem(x.problem) ? x.problem : { code: 'network', message: why, from: 'network' },
          }));
          return ref.current.snapshot;
        }
        if (stale()) return ref.current.snapshot;
        if (!resp.ok) {
          let message = `HTTP ${resp.status}`;
          try {
            const body = (await d.bound(resp.json())) as { error?: { message?: string } | string; message?: string };
            const m = typeof body.error === 'object' ? body.error?.message : body.message ?? body.error;
            if (m) message = `${message}: ${m}`;
          } catch {
            /* not JSON */
          }
          if (stale()) return ref.current.snapshot;
          update({ online: true, problem: { code: resp.status === 401 ? 'unauthorized' : 'http', message, from: 'network' } });
          return ref.current.snapshot;
        }
        let body: SnapshotResponse;
        try {
          body = (await d.bound(resp.json())) as SnapshotResponse;
          if (typeof body?.token !== 'string') throw new Error('no `token` in the answer');
        } catch (e) {
          if (stale()) return ref.current.snapshot;
          const message = d.timedOut ? `the entitlement service did not finish its answer within ${limit} ms` : (e as Error).message;
          update({ online: true, problem: { code: 'bad_response', message, from: 'network' } });
          return ref.current.snapshot;
        }
        if (stale()) return ref.current.snapshot;
        update({ online: true, fetchedAt: now() });
        if (body.token === ref.current.token) return ref.current.snapshot;
        return await accept(body.token, 'network');
      } finally {
        d.done();
        inFlight.current.delete(d);
        if (live.current) update({ fetching: inFlight.current.size > 0 });
      }
    },
    [accept, accessToken, base, now, subject, update],
  );

  const refresh = useCallback(
    async (opts: RefreshOptions = {}): Promise<SnapshotPayload | null> => {
      if (ref.current.status !== 'ready') return null;
      const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
      // Polling is for this user on this page: it ends with the provider or the session.
      const over = () => !live.current || !signedIn || subjectNow.current !== subject || Date.now() >= deadline;
      let snap = await fetchOnce(deadline);
      if (!opts.until) return snap;
      while (!(snap && opts.until(snap)) && !over()) {
        await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
        if (over()) break;
        snap = await fetchOnce(deadline);
      }
      return snap;
    },
    [fetchOnce, signedIn, subject],
  );

  const clear = useCallback(() => {
    const s = ref.current;
    if (s.catalog && subject) removeItem(snapshotKey(s.catalog.catalog.id, subject));
    if (s.engine) apply(s.engine, null);
    update((x) => ({ snapshot: null, token: null, source: null, version: x.version + 1 }));
  }, [apply, subject, update]);

  const offer = useCallback(
    (token: string) => {
      const s = ref.current;
      if (s.status !== 'ready') {
        offered.current.push(token);
        return;
      }
      if (token === s.token) return;
      // A refused token offered is ignored; a good one older than the snapshot in force is
      // refused by `accept`.
      void verifySnapshot(token, keys, { subject, catalogId: s.catalog?.catalog.id, now: now(), tollgate: s.tollgate }).then((r) => {
        if (r.ok) void accept(token, 'server');
      });
    },
    [accept, keys, now, subject],
  );

  // Unmounted: polling ends and nothing more is set (set again on a remount, as React's
  // StrictMode does in development).
  useEffect(() => {
    live.current = true;
    return () => {
      live.current = false;
    };
  }, []);

  // Unmounted, signed out or another user: the requests in flight for the previous one
  // are of no use (their answers would be dropped), so they are aborted rather than left
  // to hold `fetching` and a connection until they time out.
  const session = signedIn ? subject : null;
  useEffect(() => {
    const requests = inFlight.current;
    return () => {
      for (const c of requests) c.abort();
    };
  }, [session]);

  // ---------------------------------------------------------------- load engine, catalog, cached snapshot
  useEffect(() => {
    let cancelled = false;
    (async () => {
      let tg: TollgateModule;
      try {
        tg = load ? await load() : await defaultLoad(wasmUrl);
      } catch (e) {
        if (!cancelled) update({ status: 'error', fatal: `could not load the tollgate engine: ${(e as Error).message}` });
        return;
      }
      let doc = catalogProp;
      if (!doc) {
        try {
          const r = await fetch(`${base}/v1/catalog`, { headers: { accept: 'application/json' } });
          if (!r.ok) throw new Error(`HTTP ${r.status}`);
          doc = (await r.json()) as CatalogDoc;
          writeItem(catalogKey('last'), JSON.stringify(doc));
        } catch (e) {
          // The last catalog read, when storage still holds a readable one (it may hold
          // anything: a truncated write, another app's data).
          let cached: CatalogDoc | null = null;
          try {
            cached = JSON.parse(readItem(catalogKey('last')) ?? 'null') as CatalogDoc | null;
          } catch {
            removeItem(catalogKey('last'));
          }
          if (cached) {
            doc = cached;
          } else {
            if (!cancelled) update({ status: 'error', fatal: `could not load the catalog: ${(e as Error).message}` });
            return;
          }
        }
      }
      let engine: TollgateEngine;
      try {
        engine = new tg.Engine(tg.loadCatalog(doc), { grants: [] });
      } catch (e) {
        if (!cancelled) update({ status: 'error', fatal: `the catalog was refused: ${(e as Error).message}` });
        return;
      }
      if (cancelled) return;
      ref.current = { ...ref.current, tollgate: tg, engine, catalog: doc };
      update({ tollgate: tg, engine, catalog: doc });
      if (signedIn && subject) {
        // The server's token first (newest), then the cache.
        const cached = readItem(snapshotKey(doc.catalog.id, subject));
        // Tokens from the server (the provider's own and any a page offered before this
        // point), newest first; the cache when none of them is good.
        const fromServer = [initialToken, ...offered.current].filter((x): x is string => Boolean(x));
        offered.current = [];
        let ok = null;
        for (const tok of newestFirst(fromServer)) {
          ok = await accept(tok, 'server');
          if (ok) break;
        }
        if (!ok && cached) await accept(cached, 'cache');
      }
      if (cancelled) return;
      update((x) => ({ status: 'ready', version: x.version + 1 }));
    })();
    return () => {
      cancelled = true;
    };
    // The engine is loaded once per provider; a new user is handled below, a new catalog remounts it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Signed out, or another user signed in: the snapshot in force is not theirs. It is left
  // out of every answer at once (below) and dropped here; the new user's cached one, if
  // any, is examined, and a fresh one fetched (next effect).
  const foreign = inner.snapshot !== null && !(signedIn && subject !== null && isSubject(inner.snapshot.subject, subject));
  useEffect(() => {
    const s = ref.current;
    if (!foreign || !s.engine) return;
    fetchSeq.current++;
    apply(s.engine, null);
    update((x) => ({ snapshot: null, token: null, source: null, problem: null, version: x.version + 1 }));
    if (signedIn && subject && s.catalog) {
      const cached = readItem(snapshotKey(s.catalog.catalog.id, subject));
      if (cached) void accept(cached, 'cache');
    }
  }, [foreign, signedIn, subject, apply, accept, update]);

  // Revalidate once ready (stale-while-revalidate), and whenever the access token changes.
  useEffect(() => {
    if (inner.status !== 'ready' || !signedIn) return;
    void refresh({ reason: 'load' });
  }, [inner.status, signedIn, accessToken, refresh]);

  // Focus, visibility and connectivity.
  useEffect(() => {
    if (!refreshOnFocus || !signedIn || typeof window === 'undefined') return;
    const onFocus = () => void refresh({ reason: 'focus' });
    const onVisible = () => {
      if (document.visibilityState === 'visible') void refresh({ reason: 'visible' });
    };
    const onOnline = () => void refresh({ reason: 'online' });
    window.addEventListener('focus', onFocus);
    window.addEventListener('online', onOnline);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      window.removeEventListener('focus', onFocus);
      window.removeEventListener('online', onOnline);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [refresh, refreshOnFocus, signedIn]);

  // Boundaries: when any answer can change (a grant starts, ends, leaves grace) the
  // gates re-render and a fresh snapshot is fetched; the snapshot is renewed before it expires.
  useEffect(() => {
    const { engine, snapshot, status } = inner;
    if (status !== 'ready' || !engine) return;
    const t = now();
    let next = Infinity;
    let nextIsExpiry = false;
    try {
      const nc = engine.nextChange(t);
      if (nc) next = parseTimestamp(nc);
    } catch {
      /* no boundary */
    }
    if (snapshot) {
      const exp = parseTimestamp(snapshot.expires_at);
      const renewAt = exp - RENEW_BEFORE_MS;
      if (renewAt > t && renewAt < next) next = renewAt;
      if (exp <= next) {
        next = exp;
        nextIsExpiry = true;
      }
    }
    if (!Number.isFinite(next)) return;
    const delay = Math.min(Math.max(next - t, 0) + 5, MAX_TIMEOUT);
    const id = setTimeout(() => {
      const s = ref.current;
      if (s.snapshot && now() >= parseTimestamp(s.snapshot.expires_at) && s.engine) {
        // Expired: counts as nothing until a fresh one arrives.
        apply(s.engine, null);
        update((x) => ({
          snapshot: null,
          token: null,
          source: null,
          problem: { code: 'expired', message: 'the entitlement snapshot expired: fetching a fresh one', from: x.source ?? 'cache' },
          version: x.version + 1,
        }));
      } else {
        update((x) => ({ version: x.version + 1 }));
      }
      void refresh({ reason: nextIsExpiry ? 'expired' : 'boundary' });
    }, delay);
    return () => clearTimeout(id);
  }, [inner, apply, now, refresh, update]);

  // The snapshot cookie follows the snapshot in force: written while one of the signed-in
  // subject is, removed otherwise (signed out, another subject, refused or expired). It is
  // left alone while loading, when the cached snapshot has not been examined yet.
  useEffect(() => {
    if (!snapshotCookie || inner.status !== 'ready') return;
    const { snapshot, token } = inner;
    if (signedIn && subject && snapshot && token && isSubject(snapshot.subject, subject)) {
      writeSnapshotCookie(snapshotCookie, token, (parseTimestamp(snapshot.expires_at) - now()) / 1000);
    } else {
      clearSnapshotCookie(snapshotCookie);
    }
  }, [snapshotCookie, inner.status, inner.snapshot, inner.token, signedIn, subject, now]);

  useEffect(() => {
    onChangeRef.current?.({ snapshot: inner.snapshot, source: inner.source, problem: inner.problem });
  }, [inner.snapshot, inner.source, inner.problem]);

  const value = useMemo<TollgateState>(
    () => ({
      status: inner.status,
      fatal: inner.fatal,
      tollgate: inner.tollgate,
      // Another subject's snapshot answers nothing, not even for the render before it is dropped.
      engine: foreign ? null : inner.engine,
      catalog: inner.catalog,
      snapshot: foreign ? null : inner.snapshot,
      source: inner.source,
      problem: inner.problem,
      online: inner.online,
      fetching: inner.fetching,
      fetchedAt: inner.fetchedAt,
      subject,
      signedIn,
      version: inner.version,
      now,
      refresh,
      clear,
      offer,
    }),
    [inner, foreign, subject, signedIn, now, refresh, clear, offer],
  );

  return <TollgateContext.Provider value={value}>{children}</TollgateContext.Provider>;
}
