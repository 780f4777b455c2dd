'use client';

import { useEffect, useState } from 'react';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function decisionView(d: Any) {
  return {
    allowed: d.allowed,
    reason: d.reason,
    tier: d.tier ?? null,
    grant: d.grant ?? null,
    holds_until: d.holds_until ?? null,
    upgrade: d.upgrade ? d.upgrade.offer : null,
  };
}

function checkView(c: Any) {
  return {
    allowed: c.allowed,
    reason: c.reason,
    remaining: c.remaining,
    used: c.used,
    limit: c.limit,
    resets_at: c.resets_at ?? null,
    tier: c.tier ?? null,
    upgrade: c.upgrade ? c.upgrade.offer : null,
  };
}

/** One case through the package's public API, as every host runs it. */
function run(tg: Any, engine: Any, now: string, c: Any): Any {
  switch (c.op) {
    case 'has_access': {
      const d = engine.hasAccess(c.product, c.tier, now);
      const fast = engine.check(engine.productIndex(c.product), engine.tierIndex(c.product, c.tier), Date.parse(now));
      if (fast !== d.allowed) throw new Error(`check() disagrees with hasAccess() for ${c.product}/${c.tier}`);
      return decisionView(d);
    }
    case 'can':
      return decisionView(engine.can(c.capability, now));
    case 'limit': {
      const value = engine.limit(c.limit, now);
      const info = typeof engine.limitInfo === 'function' ? engine.limitInfo(c.limit, now) : { limit: value };
      return { limit: value, tier: info.tier ?? null, holds_until: info.holds_until ?? null };
    }
    case 'check_limit':
      return decisionView(engine.checkLimit(c.limit, c.used, now));
    case 'check':
      return checkView(engine.checkFeature(c.feature, c.quantity ?? 1, c.used ?? 0, now));
    case 'export_policy': {
      const p = engine.exportPolicy(now);
      return { policy: p.policy, message: p.message ?? null, upgrade: p.upgrade ? p.upgrade.offer : null };
    }
    case 'page': {
      const tools = engine.pageState(c.page ?? null, c.usage ?? null, now);
      return { locked: tools.filter((t: Any) => t.locked).map((t: Any) => t.tool), unlocked: tools.filter((t: Any) => !t.locked).map((t: Any) => t.tool) };
    }
    case 'rows_has_access':
      return decisionView(tg.explainAccess(c.rows, c.cloud, c.required, now));
    case 'resolve_user_tier':
      return { tier: tg.resolveUserTier(c.user ?? null, now) };
    case 'user_can':
      return decisionView(tg.explainUser(c.user ?? null, c.capability, now));
    case 'quote': {
      if (typeof tg.quote !== 'function') throw new Error('unknown op `quote`: this build of the package has no quote()');
      const q = tg.quote(engine.catalog, c.model, c.quality, c.seconds);
      return { ...q, cost: q.cost?.amount ?? q.cost, overage_cost: q.overage_cost?.amount ?? q.overage_cost };
    }
    default:
      throw new Error(`unknown op \`${c.op}\`: every host must fail on an op it does not know`);
  }
}

declare global {
  interface Window {
    __tollgateConformance?: (fixture: Any, catalog: Any) => Array<{ got?: Any; error?: string; fatal?: string }>;
  }
}

export function ConformanceRunner() {
  const [state, setState] = useState('loading');
  useEffect(() => {
    (async () => {
      // @ts-ignore -- the package's own types may not be built yet
      const tg: Any = await import('tollgate');
      await tg.init();
      window.__tollgateConformance = (fx: Any, catalogDoc: Any) => {
        const catalog = tg.loadCatalog(catalogDoc);
        tg.useCatalog(catalog);
        const base = new tg.Engine(catalog, fx.entitlements ?? null);
        return fx.cases.map((c: Any) => {
          const now = c.now ?? fx.now;
          try {
            const engine = c.entitlements === undefined ? base : new tg.Engine(catalog, c.entitlements);
            return { got: run(tg, engine, now, c) };
          } catch (e) {
            const msg = (e as Error).message;
            if (/^unknown op/.test(msg) || /disagrees/.test(msg)) return { fatal: msg };
            return { error: msg };
          }
        });
      };
      setState('ready');
    })().catch((e) => setState(`error: ${(e as Error).message}`));
  }, []);
  return <p data-testid="conformance" data-state={state}>Runner: {state}</p>;
}
