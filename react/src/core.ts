// The parts shared by the client provider and the server helpers: the tollgate
// package's module, engine and catalog types under this layer's names, and one
// function that answers an AccessQuestion with the core's Decision.

import type { Catalog, CatalogIds, Engine } from 'tollgate';

import type { AccessQuestion, CatalogDoc, Decision, Quote } from './types.js';

/** The tollgate package's engine, catalog and module, as the package declares them (the
 * engine over any catalog's ids: the hooks check ids against the app's own). */
export type TollgateEngine = Engine<CatalogIds>;
export type TollgateCatalog = Catalog;
export type TollgateModule = typeof import('tollgate');

/** Answers one question with the engine at `now` (epoch ms). Throws the core's Error for a malformed question. */
export function ask(engine: TollgateEngine, q: AccessQuestion<CatalogIds>, now: number): Decision {
  if ('product' in q) return engine.hasAccess(q.product, q.tier, now);
  if ('capability' in q) return engine.can(q.capability, now);
  if ('tool' in q) return engine.toolState(q.tool, q.usage ?? null, now).decision;
  if ('limit' in q) return engine.checkLimit(q.limit, q.used, now);
  throw new Error('tollgate-react: a question names a product and tier, a capability, a tool, or a limit and its use');
}

/** A stable key for a question (memoisation). */
export function questionKey(q: AccessQuestion<CatalogIds>): string {
  if ('product' in q) return `p:${q.product}:${q.tier}`;
  if ('capability' in q) return `c:${q.capability}`;
  if ('tool' in q) return `t:${q.tool}:${q.usage ? JSON.stringify(q.usage) : ''}`;
  return `l:${q.limit}:${q.used}`;
}

/** Prices usage with the core; a question the catalog cannot answer comes back as its message. */
export function quoteWith(
  tg: TollgateModule,
  catalog: TollgateCatalog | CatalogDoc,
  model: string,
  quality: string,
  seconds: number,
): { quote: Quote; error: null } | { quote: null; error: string } {
  try {
    return { quote: tg.quote(catalog, model, quality, seconds), error: null };
  } catch (e) {
    return { quote: null, error: (e as Error).message };
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
    case 'paused':
      return `Your subscription is paused: resume it to use ${subject}.`;
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
