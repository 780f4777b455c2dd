'use client';

// The upgrade modal: the reason a tool is locked, and every catalog offer that
// would unlock it (decided by the core), cheapest first, with prices from the
// catalog. "Buy" asks the worker for a checkout (POST /v1/checkout: the worker builds
// the provider's session from the catalog) and goes to the provider's page; back on
// the page (`?checkout=success`), the provider waits for the snapshot that has the
// purchase, which the provider's webhook gave the worker. An offer that replaces a
// running subscription (the core says which) is a change of it instead ("Switch",
// POST /v1/subscriptions/change, priced as the difference), never a second subscription.

import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import type { ReactNode } from 'react';
import { describeReason, useMoney, useTollgate } from 'tollgate-react';
import type { AccessQuestion, Decision } from 'tollgate-react';

import { RETURN, changePlan, startCheckout } from '@/lib/billing';
import { offersUnlocking, priceLabel } from '@/lib/offers';
import type { OfferChoice } from '@/lib/offers';

interface Request {
  q: AccessQuestion;
  decision: Decision;
  what: string;
}

/** Back from a checkout: which offer, and whether its access has arrived. */
export interface CheckoutReturn {
  offer: string;
  state: 'waiting' | 'unlocked' | 'paid' | 'late' | 'canceled';
}

interface UpgradeApi {
  open: (q: AccessQuestion, decision: Decision, what: string) => void;
  /** Leaves for the provider's checkout page; answers only with a refusal's message.
   * `workerUrl`: another app's worker (Video Studio's, for its token bundles). */
  buy: (choice: { offer: string; clouds: string[]; workerUrl?: string }) => Promise<{ ok: boolean; message: string }>;
  /** Moves the running subscription the offer replaces; answers when access has followed. */
  change: (choice: { offer: string; clouds: string[]; subscription: string }) => Promise<{ ok: boolean; message: string }>;
  returned: CheckoutReturn | null;
}

const UpgradeContext = createContext<UpgradeApi | null>(null);

/** Refreshes the snapshot until it holds a grant of `offer` (the provider's webhook has
 * reached the worker), for at most 15 s: whether it came. */
async function arrived(refresh: ReturnType<typeof useTollgate>['refresh'], offer: string): Promise<boolean> {
  const has = (s: { grants: { offer?: string | null }[] }) => s.grants.some((g) => g.offer === offer);
  const snap = await refresh({ reason: 'checkout', until: has, timeoutMs: 15_000 });
  return snap !== null && has(snap);
}

export function useUpgrade(): UpgradeApi {
  const ctx = useContext(UpgradeContext);
  if (!ctx) throw new Error('useUpgrade needs <UpgradeProvider>');
  return ctx;
}

const RETURN_TEXT: Record<CheckoutReturn['state'], string> = {
  waiting: 'Payment received: waiting for the confirmation…',
  unlocked: 'Payment confirmed: unlocked.',
  paid: 'Payment received.',
  late: 'Payment received; your access will update as soon as the confirmation arrives.',
  canceled: 'Checkout canceled: nothing was charged.',
};

export function UpgradeProvider({
  children,
  signedIn,
  workerUrl,
  accessToken,
  orderPages,
}: {
  children: ReactNode;
  signedIn: boolean;
  workerUrl: string;
  accessToken: string | null;
  /** The local checkout stand-in pays Razorpay orders on its own page. */
  orderPages: boolean;
}) {
  const t = useTollgate();
  const [req, setReq] = useState<Request | null>(null);
  const [returned, setReturned] = useState<CheckoutReturn | null>(null);
  const open = useCallback((q: AccessQuestion, decision: Decision, what: string) => setReq({ q, decision, what }), []);

  const buy = useCallback(
    async ({ offer, clouds, workerUrl: other }: { offer: string; clouds: string[]; workerUrl?: string }) => {
      if (!accessToken) return { ok: false, message: 'Sign in to buy.' };
      const r = await startCheckout(other ?? workerUrl, accessToken, { offer, clouds }, orderPages ? (id) => `/dev/checkout/${id}` : null);
      return { ok: false, message: r.message };
    },
    [accessToken, workerUrl, orderPages],
  );

  const { refresh } = t;
  const change = useCallback(
    async ({ offer, clouds, subscription }: { offer: string; clouds: string[]; subscription: string }) => {
      if (!accessToken) return { ok: false, message: 'Sign in to change your plan.' };
      const r = await changePlan(workerUrl, accessToken, { offer, clouds, subscription });
      if (!r.ok) return { ok: false, message: r.message };
      if (r.body.effective !== 'now') return { ok: true, message: 'Your plan changes at the end of the current period.' };
      return (await arrived(refresh, offer))
        ? { ok: true, message: 'Plan changed: unlocked.' }
        : { ok: true, message: 'Plan changed; your access will update as soon as the confirmation arrives.' };
    },
    [accessToken, workerUrl, refresh],
  );

  // Back from the provider's page: `?checkout=success|canceled&checkout_offer=<key>`.
  const ready = t.status === 'ready';
  const { catalog } = t;
  useEffect(() => {
    if (!ready) return;
    const u = new URL(window.location.href);
    const state = u.searchParams.get(RETURN.state);
    const offer = u.searchParams.get(RETURN.offer);
    if (!offer || (state !== 'success' && state !== 'canceled')) return;
    u.searchParams.delete(RETURN.state);
    u.searchParams.delete(RETURN.offer);
    u.searchParams.delete('session_id');
    window.history.replaceState(window.history.state, '', u.toString());
    if (state === 'canceled') {
      setReturned({ offer, state: 'canceled' });
      return;
    }
    // Only this catalog's offers with grants show in the snapshot; others (another app's
    // credits) are confirmed where they are shown.
    const grants = catalog?.offers.find((o) => o.key === offer)?.grants?.length ?? 0;
    if (!grants) {
      setReturned({ offer, state: 'paid' });
      return;
    }
    setReturned({ offer, state: 'waiting' });
    void arrived(refresh, offer).then((yes) => setReturned({ offer, state: yes ? 'unlocked' : 'late' }));
  }, [ready, refresh, catalog]);

  const api = useMemo(() => ({ open, buy, change, returned }), [open, buy, change, returned]);
  return (
    <UpgradeContext.Provider value={api}>
      {returned ? (
        <div className={`message ${returned.state === 'late' ? 'error' : 'ok'} checkout-return`} data-testid="checkout-return" data-state={returned.state} data-offer={returned.offer}>
          {RETURN_TEXT[returned.state]}
        </div>
      ) : null}
      {children}
      {req ? <UpgradeModal req={req} signedIn={signedIn} onClose={() => setReq(null)} /> : null}
    </UpgradeContext.Provider>
  );
}

function UpgradeModal({ req, signedIn, onClose }: { req: Request; signedIn: boolean; onClose: () => void }) {
  const t = useTollgate();
  const money = useMoney();
  const { buy, change } = useUpgrade();
  const [busy, setBusy] = useState<string | null>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  // A bundle's clouds as the buyer picks them (preselected: the one this question needs first).
  const [picked, setPicked] = useState<Record<string, string[]>>({});
  const choices: OfferChoice[] = useMemo(() => {
    if (!t.tollgate || !t.catalog) return [];
    return offersUnlocking(t.tollgate, t.catalog, t.snapshot?.grants ?? [], req.q, t.now());
  }, [t.tollgate, t.catalog, t.snapshot, req.q, t]);
  const cheapest = req.decision.upgrade?.offer ?? choices[0]?.offer.key;
  const cloudsOf = (c: OfferChoice) => picked[c.offer.key] ?? c.clouds;
  const productName = (id: string) => t.catalog?.products.find((p) => p.id === id)?.name ?? id;

  function toggle(c: OfferChoice, cloud: string) {
    const now = cloudsOf(c);
    setPicked({ ...picked, [c.offer.key]: now.includes(cloud) ? now.filter((x) => x !== cloud) : [...now, cloud] });
  }

  async function onBuy(c: OfferChoice) {
    setBusy(c.offer.key);
    setMessage(null);
    // Answers only when the checkout could not start (the page is left otherwise). The
    // worker decides whether the clouds chosen are a valid choice for the bundle.
    const r = c.replaces
      ? await change({ offer: c.offer.key, clouds: cloudsOf(c), subscription: c.replaces.subscription })
      : await buy({ offer: c.offer.key, clouds: cloudsOf(c) });
    setBusy(null);
    setMessage({ ok: r.ok, text: r.message });
  }
  const offerLabel = (key: string) => t.catalog?.offers.find((o) => o.key === key)?.label ?? key;

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
                <span data-testid="price">{priceLabel(c.offer.price, money)}</span>
                {c.replaces ? (
                  <span className="status-line" data-testid={`replaces-${c.offer.key}`}>
                    {' '}
                    instead of {offerLabel(c.replaces.offer)}
                    {c.replaces.difference && money ? ` (${c.replaces.difference.amount >= 0 ? '+' : '−'}${money.format({ ...c.replaces.difference, amount: Math.abs(c.replaces.difference.amount) })}${c.replaces.per_seat ? ' a seat' : ''}/month)` : ''}
                  </span>
                ) : null}
                {c.clouds.length && t.catalog ? (
                  <fieldset className="clouds" data-testid={`clouds-${c.offer.key}`}>
                    <legend className="status-line">Choose {c.choose} clouds</legend>
                    {c.eligible.map((cloud) => (
                      <label key={cloud} className="inline">
                        <input type="checkbox" name={`cloud-${c.offer.key}`} value={cloud} checked={cloudsOf(c).includes(cloud)} onChange={() => toggle(c, cloud)} />
                        {productName(cloud)}
                      </label>
                    ))}
                  </fieldset>
                ) : null}
              </span>
              {signedIn ? (
                <button type="button" disabled={busy !== null} onClick={() => onBuy(c)} data-testid={`buy-${c.offer.key}`}>
                  {busy === c.offer.key ? (c.replaces ? 'Switching…' : 'Opening checkout…') : c.replaces ? 'Switch' : 'Buy'}
                </button>
              ) : (
                <a className="button" href="/signin">
                  Sign in to buy
                </a>
              )}
            </li>
          ))}
        </ul>
        <p className="status-line">“Buy” opens the checkout the worker creates for this offer at the payment provider.</p>
        {message ? (
          <div className={`message ${message.ok ? 'ok' : 'error'}`} data-testid="checkout-error">
            {message.text}
          </div>
        ) : null}
        <button className="secondary" type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}
