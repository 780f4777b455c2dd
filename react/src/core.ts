// The parts shared by the client provider and the server helpers: the shape of
// the tollgate module as this layer uses it, and one function that answers an
// AccessQuestion with the core's Decision.

import type { AccessQuestion, Decision, ExportPolicy, LimitValue, Quote, ToolState } from './types.js';

/** The engine object of the tollgate package (see pkg/index.d.ts). */
export interface TollgateEngine {
  readonly catalog: TollgateCatalog;
  setEntitlements(e: unknown): unknown;
  hasAccess(product: string, tier: string, now?: number): Decision;
  can(capability: string, now?: number): Decision;
  limit(name: string, now?: number): LimitValue;
  checkLimit(name: string, used: number, now?: number): Decision;
  exportPolicy(now?: number): ExportPolicy;
  pageState(page?: string | null, usage?: Record<string, number> | null, now?: number): ToolState[];
  toolState(id: string, usage?: Record<string, number> | null, now?: number): ToolState;
  nextChange(now?: number): string | null;
  free?(): void;
}

export interface TollgateCatalog {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  toJSON(): unknown;
}

/** The subset of the `tollgate` npm package this layer calls. */
export interface TollgateModule {
  init?(input?: unknown): Promise<void>;
  initSync?(module: unknown): void;
  isReady?(): boolean;
  loadCatalog(src: string | object): TollgateCatalog;
  Engine: new (catalog: TollgateCatalog | object | string, entitlements?: unknown) => TollgateEngine;
  /** Usage pricing (Video Studio): the one function the worker charges with. */
  quote?: (catalog: TollgateCatalog | object | string, model: string, quality: string, seconds: number) => Quote;
  /** The core's snapshot verifier, when the package exports it. */
  verifySnapshot?: (token: string, keys: Record<string, string>, subject?: string | null, now?: number) => unknown;
  /** What a snapshot tells its subject (warnings, payments due), when the package exports it. */
  notices?: (
    snapshot: object,
    options?: { catalog?: TollgateCatalog | object | string | null; used?: Record<string, number> | null; now?: number },
  ) => import('tollgate').Notices;
  /** The core's money formatter, when the package exports it. */
  formatMoney?: (money: { amount: number; currency: string }) => string;
}

/** Answers one question with the engine at `now` (epoch ms). Throws the core's Error for a malformed question. */
export function ask(engine: TollgateEngine, q: AccessQuestion, now: number): Decision {
  if ('product' in q) return engine.hasAccess(q.product, q.tier, now);
  if ('capability' in q) return engine.can(q.capability, now);
  if ('tool' in q) return engine.toolState(q.tool, q.usage ?? null, now).decision;
  if ('limit' in q) return engine.checkLimit(q.limit, q.used, now);
  throw new Error('tollgate-react: a question names a product and tier, a capability, a tool, or a limit and its use');
}

/** A stable key for a question (memoisation). */
export function questionKey(q: AccessQuestion): string {
  if ('product' in q) return `p:${q.product}:${q.tier}`;
  if ('capability' in q) return `c:${q.capability}`;
  if ('tool' in q) return `t:${q.tool}:${q.usage ? JSON.stringify(q.usage) : ''}`;
  return `l:${q.limit}:${q.used}`;
}

/** Prices usage with the core, or explains why this build cannot. */
export function quoteWith(
  tg: TollgateModule,
  catalog: TollgateCatalog | object,
  model: string,
  quality: string,
  seconds: number,
): { quote: Quote; error: null } | { quote: null; error: string } {
  if (typeof tg.quote !== 'function') {
    return { quote: null, error: 'this build of the tollgate package has no quote(); rebuild pkg/' };
  }
  try {
    return { quote: tg.quote(catalog, model, quality, seconds), error: null };
  } catch (e) {
    return { quote: null, error: (e as Error).message };
  }
}

/**
 * Digits of a currency's minor unit, exactly as the core counts them (`minor_digits` in
 * src/money.rs, which the package does not export), so the amounts the core and the
 * billing providers give in minor units print at their value: none for the zero-decimal
 * currencies (JPY, KRW, ...), three (thousandths) for BHD, JOD, KWD, OMR and TND, two
 * (hundredths) for every other currency.
 */
const ZERO_DECIMAL = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** Digits of the minor unit of a currency (ISO code, any case): 0, 2 or 3. */
export function minorDigits(currency: string): 0 | 2 | 3 {
  const c = currency.toLowerCase();
  if (ZERO_DECIMAL.has(c)) return 0;
  if (THREE_DECIMAL.has(c)) return 3;
  return 2;
}

/** "$12.34" for integer minor units ("KWD 1.500" for 1500 fils, "¥500" for 500 yen). */
export function formatMoney(m: { amount: number; currency: string }): string {
  const digits = minorDigits(m.currency);
  const major = m.amount / 10 ** digits;
  const code = m.currency.toUpperCase();
  try {
    return new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: code,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(major);
  } catch {
    return `${major.toFixed(digits)} ${code}`;
  }
}

/** Human text for a denial reason. */
export function describeReason(d: Decision, what?: string): string {
  const subject = what ?? 'this';
  switch (d.reason) {
    case 'no_entitlement':
      return `Your plan does not include ${subject}.`;
    case 'tier_too_low':
      return `Your ${d.tier ?? 'current'} tier does not include ${subject}.`;
    case 'not_in_tier':
      return `The ${d.tier ?? 'current'} plan does not include ${subject}.`;
    case 'expired':
      return 'Your access has ended.';
    case 'grace_ended':
      return 'Your payment failed and the grace period is over.';
    case 'not_yet_valid':
      return 'Your access has not started yet.';
    case 'limit_reached':
      return 'You have used up this limit for now.';
    case 'canceled_until_period_end':
      return d.holds_until ? `Canceled: included until ${new Date(d.holds_until).toLocaleString()}.` : 'Canceled.';
    case 'grace_period':
      return 'Payment failed: still included during the grace period.';
    case 'trial':
      return 'Included in your trial.';
    default:
      return d.allowed ? 'Included.' : 'Not included.';
  }
}
