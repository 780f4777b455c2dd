'use client';

// Another app's offers with "Buy" (the Razorpay AI app's plans and top-ups on the drafts
// page): the worker of that app builds the checkout (a Razorpay subscription, or an order
// for a one-time top-up) and the browser goes to its page.

import { useState } from 'react';
import { useMoney } from 'tollgate-react';
import type { CatalogOffer } from 'tollgate-react';

import { priceLabel } from '@/lib/offers';

import { useUpgrade } from './UpgradeModal';

export function BuyOffers({ offers, workerUrl, title }: { offers: CatalogOffer[]; workerUrl: string; title: string }) {
  const money = useMoney();
  const { buy } = useUpgrade();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function onBuy(offer: string) {
    setBusy(offer);
    setError(null);
    // Answers only when the checkout could not start (the page is left otherwise).
    const r = await buy({ offer, clouds: [], workerUrl });
    setError(r.message);
    setBusy(null);
  }

  return (
    <section className="card" data-testid="buy-offers">
      <h2>{title}</h2>
      <ul className="offers">
        {offers.map((o) => (
          <li key={o.key} data-offer={o.key}>
            <span>
              {o.label} — {priceLabel(o.price, money)}
            </span>
            <button type="button" className="secondary" disabled={busy !== null} onClick={() => onBuy(o.key)} data-testid={`buy-${o.key}`}>
              {busy === o.key ? 'Opening checkout…' : 'Buy'}
            </button>
          </li>
        ))}
      </ul>
      {error ? (
        <p className="error" data-testid="checkout-error">
          {error}
        </p>
      ) : null}
    </section>
  );
}
