'use client';

// The user's own overage choice, set on the worker (`GET/PUT /v1/preferences`): whether
// generation may go past the balance, and the cap on what that may cost in a billing
// period. The worker validates it (a cap of 0 or more, in the catalog's currency) and
// enforces the cap per period on every charge.

import { useEffect, useState } from 'react';
import { useMoney } from 'tollgate-react';

interface Prefs {
  allow_overages: boolean;
  overage_limit: number;
  currency: string;
  spent: number;
  period: { start: string; ends_at: string | null };
}

/** Minor units of a typed amount ("25", "25.5", "25.50"), or null when it is not one. */
function toMinor(text: string, digits: number): number | null {
  const m = new RegExp(`^(\\d{1,9})(?:\\.(\\d{0,${digits}}))?$`).exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * 10 ** digits + Number((m[2] ?? '').padEnd(digits, '0') || '0');
}

export function OveragePreferences({ workerUrl, accessToken }: { workerUrl: string; accessToken: string }) {
  const [prefs, setPrefs] = useState<Prefs | null>(null);
  const [allow, setAllow] = useState(false);
  // The cap as typed, in major units; null until it is shown from `prefs` (which needs
  // the currency's minor-unit digits, the core's, once the package is loaded).
  const [cap, setCap] = useState<string | null>(null);
  const money = useMoney();
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const url = `${workerUrl.replace(/\/+$/, '')}/v1/preferences`;
  const auth = { authorization: `Bearer ${accessToken}` };

  const show = (p: Prefs) => {
    setPrefs(p);
    setAllow(p.allow_overages);
    setCap(null);
  };

  useEffect(() => {
    if (prefs && money && cap === null) {
      const d = money.minorDigits(prefs.currency);
      setCap((prefs.overage_limit / 10 ** d).toFixed(d));
    }
  }, [prefs, money, cap]);

  useEffect(() => {
    fetch(url, { headers: auth })
      .then(async (r) => (r.ok ? show(await r.json()) : setMessage({ ok: false, text: `HTTP ${r.status}` })))
      .catch((e) => setMessage({ ok: false, text: `The video service is unreachable: ${(e as Error).message}` }));
  }, [url, accessToken]);

  async function save(e: React.FormEvent) {
    e.preventDefault();
    if (!prefs || !money || cap === null) return;
    const limit = toMinor(cap, money.minorDigits(prefs.currency));
    if (limit === null) {
      setMessage({ ok: false, text: `Write the cap as an amount, e.g. 25.00 (${prefs.currency.toUpperCase()}).` });
      return;
    }
    const r = await fetch(url, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ allow_overages: allow, overage_limit: limit, currency: prefs.currency }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) return setMessage({ ok: false, text: body?.error?.message ?? `HTTP ${r.status}` });
    show(body);
    setMessage({ ok: true, text: 'Saved.' });
  }

  if (!prefs || !money || cap === null) return message ? <p className="message error">{message.text}</p> : null;
  return (
    <form className="stack card" onSubmit={save} data-testid="overage-preferences">
      <h2>Overage</h2>
      <label>
        <input type="checkbox" checked={allow} onChange={(e) => setAllow(e.target.checked)} data-testid="allow-overages" /> Allow
        generation past my balance, billed at the overage rate
      </label>
      <label>
        Cap per billing period ({prefs.currency.toUpperCase()})
        <input value={cap} onChange={(e) => setCap(e.target.value)} inputMode="decimal" data-testid="overage-cap" />
      </label>
      <p className="status-line" data-testid="overage-spent">
        Spent this period: {money.format({ amount: prefs.spent, currency: prefs.currency })} of{' '}
        {money.format({ amount: prefs.overage_limit, currency: prefs.currency })}
      </p>
      <button type="submit" data-testid="save-overage">
        Save
      </button>
      {message ? (
        <p className={`message ${message.ok ? 'ok' : 'error'}`} data-testid="overage-message">
          {message.text}
        </p>
      ) : null}
    </form>
  );
}
