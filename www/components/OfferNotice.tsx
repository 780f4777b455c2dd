'use client';

// The notice on the upgrade page (/tools?offer=<key>&from=<path>) where the app's proxy
// (proxy.ts) sends a user whose plan does not include the page they asked for: the
// cheapest offer that unlocks it, with its price, and "Buy" (the worker's checkout, on
// the provider's page). Back from a paid checkout, once the new snapshot has arrived, the
// provider has rewritten the snapshot cookie, so going back to the page passes the proxy.

import { useEffect, useState } from 'react';
import { useMoney } from 'tollgate-react';
import type { CatalogOffer } from 'tollgate-react';

import { priceLabel } from '@/lib/offers';

import { useUpgrade } from './UpgradeModal';

export function OfferNotice({ offer, from, signedIn }: { offer: CatalogOffer; from: string; signedIn: boolean }) {
  const money = useMoney();
  const { buy, returned } = useUpgrade();
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  // Back from the checkout, and the provider holds the snapshot with the purchase.
  const bought = returned?.offer === offer.key && returned.state === 'unlocked';

  useEffect(() => {
    if (!bought) return;
    // After this commit's effects (the provider's cookie write among them).
    const id = setTimeout(() => window.location.assign(from), 0);
    return () => clearTimeout(id);
  }, [bought, from]);

  async function onBuy() {
    setBusy(true);
    setMessage(null);
    // Answers only when the checkout could not start (the page is left otherwise).
    const r = await buy({ offer: offer.key, clouds: [] });
    setBusy(false);
    setMessage({ ok: r.ok, text: r.message });
  }

  return (
    <div className="card" data-testid="offer-notice" data-offer={offer.key}>
      <p>
        Your plan does not include <code>{from}</code>. <strong>{offer.label}</strong> unlocks it for{' '}
        <span data-testid="offer-price">{priceLabel(offer.price, money)}</span>
        .
      </p>
      {signedIn ? (
        <button type="button" disabled={busy} onClick={onBuy} data-testid="offer-buy">
          {busy ? 'Opening checkout…' : `Buy ${offer.label}`}
        </button>
      ) : null}
      {message ? (
        <p className={message.ok ? 'status-line' : 'error'} data-testid="checkout-error">
          {message.text}
        </p>
      ) : null}
    </div>
  );
}
