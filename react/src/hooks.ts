'use client';

// Hooks over <TollgateProvider>. Every answer is the core's Decision, computed
// in wasm at render time from the verified snapshot (a few microseconds), and
// recomputed whenever the provider's `version` moves: a new snapshot, or a
// boundary (`holds_until`) that passed.

import { useContext, useMemo, useRef } from 'react';

import { ask, questionKey, quoteWith } from './core.js';
import type { TollgateCatalog } from './core.js';
import { TollgateContext } from './provider.js';
import type { TollgateState } from './provider.js';
import type { AccessQuestion, CatalogDoc, CatalogIds, Decision, ExportPolicy, LimitValue, Money, Quote, RegisteredIds, ToolState } from './types.js';

export function useTollgate(): TollgateState {
  const ctx = useContext(TollgateContext);
  if (!ctx) throw new Error('tollgate-react: wrap the page in <TollgateProvider>');
  return ctx;
}

/** The verified snapshot and what it holds (grants, balances), plus the provider's controls. */
export function useEntitlements() {
  const t = useTollgate();
  return {
    ...t,
    grants: t.snapshot?.grants ?? [],
    balances: t.snapshot?.balances ?? {},
    expiresAt: t.snapshot?.expires_at ?? null,
    issuedAt: t.snapshot?.issued_at ?? null,
  };
}

export type AccessStatus = 'pending' | 'allowed' | 'denied' | 'error';

export interface AccessAnswer {
  /** `pending` until the engine and the cached snapshot are ready (and no `initial` was given). */
  status: AccessStatus;
  allowed: boolean;
  decision: Decision | null;
  /** A malformed question (unknown product, tier, tool...) or an engine that failed to load. */
  error: string | null;
}

/**
 * Asks one question: `{ product, tier }`, `{ capability }`, `{ tool, usage? }` or `{ limit, used }`.
 * `initial`: a decision the server already made for first paint (used while pending).
 */
export function useAccess<I extends CatalogIds = RegisteredIds>(q: AccessQuestion<I>, opts: { initial?: Decision | null } = {}): AccessAnswer {
  const t = useTollgate();
  const key = questionKey(q);
  const qRef = useRef(q);
  qRef.current = q;
  const initial = opts.initial ?? null;
  return useMemo<AccessAnswer>(() => {
    if (t.status === 'error') return { status: 'error', allowed: false, decision: null, error: t.fatal };
    if (t.status !== 'ready' || !t.engine) {
      if (initial) return { status: initial.allowed ? 'allowed' : 'denied', allowed: initial.allowed, decision: initial, error: null };
      return { status: 'pending', allowed: false, decision: null, error: null };
    }
    try {
      const d = ask(t.engine, qRef.current, t.now());
      return { status: d.allowed ? 'allowed' : 'denied', allowed: d.allowed, decision: d, error: null };
    } catch (e) {
      return { status: 'error', allowed: false, decision: null, error: (e as Error).message };
    }
    // `version` moves whenever an answer may change.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [t.status, t.engine, t.version, t.fatal, key, initial]);
}

/** Every tool of a page (all tools when `page` is null), with usage for limit-gated tools. */
export function useToolStates<I extends CatalogIds = RegisteredIds>(
  page: I['page'] | null,
  usage?: Record<string, number> | null,
  opts: { initial?: ToolState[] | null } = {},
): { status: 'pending' | 'ready' | 'error'; tools: ToolState[]; error: string | null } {
  const t = useTollgate();
  const usageKey = usage ? JSON.stringify(usage) : '';
  const initial = opts.initial ?? null;
  return useMemo(() => {
    if (t.status === 'error') return { status: 'error' as const, tools: initial ?? [], error: t.fatal };
    if (t.status !== 'ready' || !t.engine) {
      return { status: initial ? ('ready' as const) : ('pending' as const), tools: initial ?? [], error: null };
    }
    try {
      return { status: 'ready' as const, tools: t.engine.pageState(page, usage ?? null, t.now()), error: null };
    } catch (e) {
      return { status: 'error' as const, tools: [], error: (e as Error).message };
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [t.status, t.engine, t.version, t.fatal, page, usageKey, initial]);
}

/** A limit's value for the subject now: a whole number or "unlimited"; null while pending. */
export function useLimit<I extends CatalogIds = RegisteredIds>(name: I['limit']): { value: LimitValue | null; error: string | null } {
  const t = useTollgate();
  return useMemo(() => {
    if (t.status !== 'ready' || !t.engine) return { value: null, error: t.fatal };
    try {
      return { value: t.engine.limit(name, t.now()), error: null };
    } catch (e) {
      return { value: null, error: (e as Error).message };
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [t.status, t.engine, t.version, name]);
}

/** The VCM Suite's export policy for the subject now; null while pending. */
export function useExportPolicy(): ExportPolicy | null {
  const t = useTollgate();
  return useMemo(() => {
    if (t.status !== 'ready' || !t.engine) return null;
    try {
      return t.engine.exportPolicy(t.now());
    } catch {
      return null;
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [t.status, t.engine, t.version]);
}

const catalogs = new WeakMap<object, TollgateCatalog>();

/**
 * A live usage quote (Video Studio) from the core's `quote`: the same function the worker
 * charges with. `catalog`: a catalog document with a `[usage]` section (default: the
 * provider's catalog).
 */
export function useQuote(
  model: string,
  quality: string,
  seconds: number,
  opts: { catalog?: CatalogDoc | null } = {},
): { status: 'pending' | 'ready' | 'error'; quote: Quote | null; error: string | null } {
  const t = useTollgate();
  const doc = opts.catalog ?? t.catalog;
  return useMemo(() => {
    if (!t.tollgate || !doc) return { status: 'pending' as const, quote: null, error: null };
    let cat = catalogs.get(doc);
    if (!cat) {
      try {
        cat = t.tollgate.loadCatalog(doc);
        catalogs.set(doc, cat);
      } catch (e) {
        return { status: 'error' as const, quote: null, error: (e as Error).message };
      }
    }
    const r = quoteWith(t.tollgate, cat, model, quality, seconds);
    return r.quote ? { status: 'ready' as const, quote: r.quote, error: null } : { status: 'error' as const, quote: null, error: r.error };
  }, [t.tollgate, doc, model, quality, seconds]);
}

/** The core's money formatter and minor-unit digits (the package's), once it is loaded. */
export interface MoneyFormat {
  /** `{ amount, currency }` in integer minor units as people read it: "$59.00", "1.500 KWD". */
  format: (m: Money) => string;
  /** Digits of a currency's minor unit: 0 (JPY), 3 (KWD) or 2. */
  minorDigits: (currency: string) => number;
}

/**
 * Money as the core writes it (the text of every upgrade's `display`), from the
 * package's `formatMoney`: null until the provider has loaded the package, so a
 * page shows amounts once, in the one format, and server and browser render alike.
 */
export function useMoney(): MoneyFormat | null {
  const tg = useTollgate().tollgate;
  return useMemo(() => (tg ? { format: tg.formatMoney, minorDigits: tg.minorDigits } : null), [tg]);
}
