'use client';

// <Gate>: children when allowed, a locked state (with the reason and the
// cheapest upgrade) when denied, and a neutral placeholder while the engine
// and the cached snapshot are being read, so that neither paid content nor a
// lock flashes before the answer is known.

import type { ReactNode } from 'react';

import { describeReason } from './core.js';
import { useAccess } from './hooks.js';
import type { AccessAnswer } from './hooks.js';
import type { AccessQuestion, CatalogIds, Decision, RegisteredIds, Upgrade } from './types.js';

export interface GateProps<I extends CatalogIds = RegisteredIds> {
  product?: I['product'];
  tier?: I['tier'];
  capability?: I['capability'];
  tool?: I['tool'];
  usage?: Record<string, number>;
  limit?: I['limit'];
  used?: number;
  children?: ReactNode;
  /** What to show when denied. Default: <UpgradePrompt>. */
  locked?: ReactNode | ((answer: AccessAnswer & { decision: Decision }) => ReactNode);
  /** What to show while pending. Default: an empty, busy placeholder. */
  pending?: ReactNode;
  /** A decision the server made for first paint. */
  initial?: Decision | null;
  /** Name of the gated thing, for the default locked text. */
  what?: string;
  onUpgrade?: (upgrade: Upgrade, decision: Decision) => void;
}

function questionOf<I extends CatalogIds>(p: GateProps<I>): AccessQuestion<I> {
  if (p.tool) return { tool: p.tool, usage: p.usage };
  if (p.capability) return { capability: p.capability };
  if (p.limit) return { limit: p.limit, used: p.used ?? 0 };
  if (p.product && p.tier) return { product: p.product, tier: p.tier };
  throw new Error('<Gate> needs product and tier, capability, tool, or limit and used');
}

export function Gate<I extends CatalogIds = RegisteredIds>(props: GateProps<I>) {
  const q = questionOf(props);
  const answer = useAccess<I>(q, { initial: props.initial });
  const gateId = 'tool' in q ? q.tool : 'capability' in q ? q.capability : 'limit' in q ? q.limit : `${q.product}:${q.tier}`;
  const attrs = { 'data-gate': gateId, 'data-gate-state': answer.status, style: { display: 'contents' } } as const;
  if (answer.status === 'pending') {
    return <div {...attrs}>{props.pending ?? <div className="tg-gate-pending" aria-busy="true" />}</div>;
  }
  if (answer.status === 'allowed') return <div {...attrs}>{props.children}</div>;
  if (answer.status === 'error' || !answer.decision) {
    return (
      <div {...attrs}>
        <div className="tg-gate-error" role="alert">
          Access could not be checked: {answer.error}
        </div>
      </div>
    );
  }
  const a = answer as AccessAnswer & { decision: Decision };
  const locked =
    typeof props.locked === 'function'
      ? props.locked(a)
      : props.locked ?? <UpgradePrompt decision={a.decision} what={props.what} onUpgrade={props.onUpgrade} />;
  return <div {...attrs}>{locked}</div>;
}

export interface UpgradePromptProps {
  decision: Decision;
  what?: string;
  onUpgrade?: (upgrade: Upgrade, decision: Decision) => void;
}

/** The reason a decision denies, and the cheapest offer that would allow it (from the catalog). */
export function UpgradePrompt({ decision, what, onUpgrade }: UpgradePromptProps) {
  const up = decision.upgrade;
  return (
    <div className="tg-upgrade" data-reason={decision.reason}>
      <p className="tg-upgrade-reason">{describeReason(decision, what)}</p>
      {up ? (
        onUpgrade ? (
          <button type="button" className="tg-upgrade-button" data-offer={up.offer} onClick={() => onUpgrade(up, decision)}>
            Upgrade: {up.display}
          </button>
        ) : (
          <p className="tg-upgrade-offer" data-offer={up.offer}>
            Included in {up.display}
          </p>
        )
      ) : (
        <p className="tg-upgrade-offer">No plan on sale includes this; contact us.</p>
      )}
    </div>
  );
}
