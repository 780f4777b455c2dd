'use client';

// The Video Studio app's generate form. The live quote comes from the core's `quote` (wasm, in
// this browser); submitting goes through the worker's POST /v1/usage/consume, which
// prices and charges with the same function, and its 402/403 answers are shown as
// readable messages.

import { useMemo, useState } from 'react';
import { formatMoney, useQuote } from 'tollgate-react';
import type { CatalogDoc } from 'tollgate-react';

import { BALANCE_CHANGED, formatSeconds } from './BalanceWidget';

interface WorkerError {
  error?: {
    code?: string;
    message?: string;
    available?: number;
    required?: number;
    overage_cost?: number;
    overage_limit?: number;
    currency?: string;
    upgrade?: { display?: string } | null;
  };
}

function explain(status: number, body: WorkerError, currency: string): string {
  const e = body.error ?? {};
  const money = (n: number | undefined) => (typeof n === 'number' ? formatMoney({ amount: n, currency: e.currency ?? currency }) : '');
  if (status === 402) {
    let text = `Not enough video seconds: ${formatSeconds(e.available ?? 0)} available, ${formatSeconds(e.required ?? 0)} needed.`;
    if (e.code === 'overage_over_limit' || (e.overage_cost && e.overage_limit !== undefined)) {
      text += ` The overage would cost ${money(e.overage_cost)}, over your limit of ${money(e.overage_limit)}.`;
    } else {
      text += ' Buy a token bundle or allow overages.';
    }
    return text;
  }
  if (status === 403) {
    return `You have no video plan or credits yet.${e.upgrade?.display ? ` Start with ${e.upgrade.display}.` : ''}`;
  }
  if (status === 401) return 'Your session has expired: sign in again.';
  if (status === 409) return `This request conflicts with another one: ${e.message ?? 'try again'}.`;
  if (status >= 500) return `The service is unavailable right now (${status}); nothing was charged. Try again.`;
  return e.message ?? `The request was refused (${status}).`;
}

export function GenerateVideo({ catalog, workerUrl, accessToken }: { catalog: CatalogDoc; workerUrl: string; accessToken: string | null }) {
  const rates = useMemo(() => catalog.usage?.rates ?? [], [catalog]);
  const models = useMemo(() => [...new Set(rates.map((r) => r.model))], [rates]);
  const [model, setModel] = useState(models[0] ?? '');
  const qualities = rates.filter((r) => r.model === model).map((r) => r.quality);
  const [quality, setQuality] = useState(qualities[0] ?? '');
  const q = qualities.includes(quality) ? quality : qualities[0] ?? '';
  const [seconds, setSeconds] = useState(30);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string; status?: number } | null>(null);
  const live = useQuote(model, q, seconds, { catalog });

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setResult(null);
    if (!accessToken) {
      setResult({ ok: false, text: 'Please sign in first.' });
      return;
    }
    setBusy(true);
    try {
      const r = await fetch(`${workerUrl.replace(/\/+$/, '')}/v1/usage/consume`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${accessToken}`,
          'content-type': 'application/json',
          // One key per request; a retry of the same request reuses it and is never charged twice.
          'idempotency-key': crypto.randomUUID(),
        },
        body: JSON.stringify({ model, quality: q, seconds }),
      });
      const body = (await r.json().catch(() => ({}))) as WorkerError & { charge?: { cost?: number; overage_cost?: number } };
      if (r.ok) {
        setResult({ ok: true, status: r.status, text: `Generation started: ${formatSeconds(seconds)} charged.` });
        window.dispatchEvent(new Event(BALANCE_CHANGED));
      } else {
        setResult({ ok: false, status: r.status, text: explain(r.status, body, catalog.usage?.currency ?? 'usd') });
      }
    } catch (err) {
      setResult({ ok: false, text: `The video service is unreachable: ${(err as Error).message}. Nothing was charged.` });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="stack card" onSubmit={submit} data-testid="generate">
      <h2>Generate video</h2>
      <label>
        Duration (seconds)
        <input
          type="number"
          min={1}
          value={Number.isFinite(seconds) ? seconds : ''}
          onChange={(e) => setSeconds(parseInt(e.target.value, 10))}
          data-testid="seconds"
        />
      </label>
      <label>
        Model
        <select value={model} onChange={(e) => setModel(e.target.value)} data-testid="model">
          {models.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <label>
        Quality
        <select value={q} onChange={(e) => setQuality(e.target.value)} data-testid="quality">
          {qualities.map((x) => (
            <option key={x} value={x}>
              {x}
            </option>
          ))}
        </select>
      </label>
      <p data-testid="quote" data-state={live.status}>
        {live.quote ? (
          <>
            Price: <strong data-testid="quote-cost">{formatMoney(live.quote.cost)}</strong> ({live.quote.base_price_per_second}/s ×{' '}
            {live.quote.multiplier}); as overage {formatMoney(live.quote.overage_cost)}.
          </>
        ) : live.status === 'error' ? (
          <span className="error">{live.error}</span>
        ) : (
          'Pricing…'
        )}
      </p>
      <button type="submit" disabled={busy || !live.quote} data-testid="submit">
        {busy ? 'Generating…' : 'Generate video'}
      </button>
      {result ? (
        <div className={`message ${result.ok ? 'ok' : 'error'}`} data-testid="generate-result" data-status={result.status ?? ''}>
          {result.text}
        </div>
      ) : null}
    </form>
  );
}
