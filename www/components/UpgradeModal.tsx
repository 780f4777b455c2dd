'use client';

// The upgrade modal: the reason a tool is locked, and every catalog offer that
// would unlock it (decided by the core), cheapest first, with prices from the
// catalog. "Buy" runs the checkout stand-in: the server sends the Stripe-signed
// events a real Checkout would send to the worker, and the page unlocks as soon
// as the new snapshot arrives (no reload).

import { createContext, useCallback, useContext, useMemo, useState } from 'react';
import type { ReactNode } from 'react';
import { describeReason, useTollgate } from 'tollgate-react';
import type { AccessQuestion, Decision } from 'tollgate-react';

import { offersUnlocking, priceLabel } from '@/lib/offers';
import type { OfferChoice } from '@/lib/offers';

interface Request {
  q: AccessQuestion;
  decision: Decision;
  what: string;
}

interface UpgradeApi {
  open: (q: AccessQuestion, decision: Decision, what: string) => void;
  buy: (choice: { offer: string; clouds: string[] }) => Promise<{ ok: boolean; message: string }>;
}

const UpgradeContext = createContext<UpgradeApi | null>(null);

/** Runs the checkout stand-in on the server (see app/api/dev/checkout). */
export async function sendCheckout(body: { offer: string; clouds: string[] }): Promise<{ ok: boolean; message: string }> {
  let r: Response;
  try {
    r = await fetch('/api/dev/checkout', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    return { ok: false, message: `checkout failed: ${(e as Error).message}` };
  }
  const answer = (await r.json().catch(() => ({}))) as { message?: string; error?: string };
  if (!r.ok) return { ok: false, message: answer.message ?? answer.error ?? `checkout failed (HTTP ${r.status})` };
  return { ok: true, message: 'Payment sent.' };
}

export function useUpgrade(): UpgradeApi {
  const ctx = useContext(UpgradeContext);
  if (!ctx) throw new Error('useUpgrade needs <UpgradeProvider>');
  return ctx;
}

export function UpgradeProvider({ children, signedIn }: { children: ReactNode; signedIn: boolean }) {
  const t = useTollgate();
  const [req, setReq] = useState<Request | null>(null);
  const open = useCallback((q: AccessQuestion, decision: Decision, what: string) => setReq({ q, decision, what }), []);

  const buy = useCallback(
    async ({ offer, clouds }: { offer: string; clouds: string[] }) => {
      const before = t.snapshot?.grants.length ?? 0;
      const sent = await sendCheckout({ offer, clouds });
      if (!sent.ok) return sent;
      // Stripe delivers webhooks asynchronously: wait for the snapshot that has the purchase.
      const snap = await t.refresh({
        reason: 'checkout',
        until: (s) => s.grants.some((g) => g.offer === offer) || s.grants.length > before,
        timeoutMs: 15_000,
      });
      if (!snap || !(snap.grants.some((g) => g.offer === offer) || snap.grants.length > before)) {
        return { ok: false, message: 'Payment sent; your access will update as soon as the confirmation arrives.' };
      }
      return { ok: true, message: 'Unlocked.' };
    },
    [t],
  );

  const api = useMemo(() => ({ open, buy }), [open, buy]);
  return (
    <UpgradeContext.Provider value={api}>
      {children}
      {req ? <UpgradeModal req={req} signedIn={signedIn} onClose={() => setReq(null)} /> : null}
    </UpgradeContext.Provider>
  );
}

function UpgradeModal({ req, signedIn, onClose }: { req: Request; signedIn: boolean; onClose: () => void }) {
  const t = useTollgate();
  const { buy } = useUpgrade();
  const [busy, setBusy] = useState<string | null>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const choices: OfferChoice[] = useMemo(() => {
    if (!t.tollgate || !t.catalog) return [];
    return offersUnlocking(t.tollgate, t.catalog, t.snapshot?.grants ?? [], req.q, t.now());
  }, [t.tollgate, t.catalog, t.snapshot, req.q, t]);
  const cheapest = req.decision.upgrade?.offer ?? choices[0]?.offer.key;

  async function onBuy(c: OfferChoice) {
    setBusy(c.offer.key);
    setMessage(null);
    const r = await buy({ offer: c.offer.key, clouds: c.clouds });
    setBusy(null);
    setMessage({ ok: r.ok, text: r.message });
    if (r.ok) setTimeout(onClose, 400);
  }

  return (
    <div className="modal-backdrop" role="presentation" onClick={onClose}>
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="upgrade-title" data-testid="upgrade-modal" onClick={(e) => e.stopPropagation()}>
        <h2 id="upgrade-title">Unlock {req.what}</h2>
        <p>{describeReason(req.decision, req.what)}</p>
        {choices.length === 0 ? <p>No plan on sale includes this; contact us.</p> : null}
        <ul className="offers">
          {choices.map((c) => (
            <li key={c.offer.key} className={c.offer.key === cheapest ? 'cheapest' : ''} data-offer={c.offer.key}>
              <span>
                <strong>{c.offer.label}</strong>
                {c.offer.key === cheapest ? ' · cheapest' : ''}
                <br />
                <span data-testid="price">{priceLabel(c.offer.price)}</span>
                {c.clouds.length ? <span className="status-line"> · clouds: {c.clouds.join(', ')}</span> : null}
              </span>
              {signedIn ? (
                <button type="button" disabled={busy !== null} onClick={() => onBuy(c)} data-testid={`buy-${c.offer.key}`}>
                  {busy === c.offer.key ? 'Waiting for payment…' : 'Buy'}
                </button>
              ) : (
                <a className="button" href="/signin">
                  Sign in to buy
                </a>
              )}
            </li>
          ))}
        </ul>
        <p className="status-line">
          Checkout stand-in<span className="standin">local only</span>: “Buy” sends the Stripe-signed events a completed
          Stripe Checkout would send to the local worker. No card, no Stripe account.
        </p>
        {message ? <div className={`message ${message.ok ? 'ok' : 'error'}`}>{message.text}</div> : null}
        <button className="secondary" type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}
