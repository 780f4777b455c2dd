'use client';

// The Video Studio app's balance widget: allowance, rollover, purchased tokens and
// the next renewal, read through Supabase's REST API (row-level security: the user's own rows).

import { useCallback, useEffect, useState } from 'react';
import { useMoney } from 'tollgate-react';
import type { CatalogDoc } from 'tollgate-react';

import { priceLabel } from '@/lib/offers';

import { useUpgrade } from './UpgradeModal';

export interface Balance {
  allowance: number;
  allowance_granted: number;
  rollover: number;
  tokens: number;
  other: number;
  total: number;
  next_renewal: string | null;
}

export const BALANCE_CHANGED = 'tollgate:balance-changed';

export function formatSeconds(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
}

/** `workerUrl`: the Video Studio worker, which sells its token bundles and plans. */
export function BalanceWidget({ catalog, workerUrl }: { catalog: CatalogDoc; workerUrl: string }) {
  const money = useMoney();
  const { buy, returned } = useUpgrade();
  const [balance, setBalance] = useState<Balance | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [buying, setBuying] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await fetch('/api/balance', { cache: 'no-store' });
      const body = await r.json();
      if (!r.ok) throw new Error(body.message ?? `HTTP ${r.status}`);
      setBalance(body as Balance);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);

  useEffect(() => {
    void load();
    const onChange = () => void load();
    window.addEventListener(BALANCE_CHANGED, onChange);
    window.addEventListener('focus', onChange);
    return () => {
      window.removeEventListener(BALANCE_CHANGED, onChange);
      window.removeEventListener('focus', onChange);
    };
  }, [load]);

  // Back from a paid checkout of one of these offers: the provider's webhook may still be
  // on its way, so look again a few times.
  const paidHere = returned?.state === 'paid' && catalog.offers.some((o) => o.key === returned.offer);
  useEffect(() => {
    if (!paidHere) return;
    let stop = false;
    void (async () => {
      for (let i = 0; i < 8 && !stop; i++) {
        await new Promise((r) => setTimeout(r, 500));
        await load();
      }
    })();
    return () => {
      stop = true;
    };
  }, [paidHere, load]);

  async function onBuy(offer: string) {
    setBuying(offer);
    setError(null);
    // Answers only when the checkout could not start (the page is left otherwise).
    const r = await buy({ offer, clouds: [], workerUrl });
    setError(r.message);
    setBuying(null);
  }

  return (
    <section className="card" data-testid="balance">
      <h2>Your balance</h2>
      {error ? <p className="error">{error}</p> : null}
      {balance ? (
        <dl>
          <dt>Plan allowance</dt>
          <dd data-testid="allowance">
            {formatSeconds(balance.allowance)}
            {balance.allowance_granted ? ` of ${formatSeconds(balance.allowance_granted)}` : ''}
          </dd>
          <dt>Rolled over</dt>
          <dd data-testid="rollover">{formatSeconds(balance.rollover)}</dd>
          <dt>Purchased tokens</dt>
          <dd data-testid="tokens">{formatSeconds(balance.tokens)}</dd>
          <dt>Next renewal</dt>
          <dd data-testid="renewal">{balance.next_renewal ? new Date(balance.next_renewal).toLocaleDateString() : '—'}</dd>
        </dl>
      ) : !error ? (
        <div className="skeleton" />
      ) : null}
      <h3>Top up</h3>
      <ul className="offers">
        {catalog.offers.map((o) => (
          <li key={o.key} data-offer={o.key}>
            <span>
              {o.label} — {priceLabel(o.price, money)}
            </span>
            <button type="button" className="secondary" disabled={buying !== null} onClick={() => onBuy(o.key)} data-testid={`buy-${o.key}`}>
              {buying === o.key ? '…' : 'Buy'}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
