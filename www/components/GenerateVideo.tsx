'use client';

// The Video Studio app's generate form. The live quote comes from the core's `quote` (wasm, in
// this browser). A generation holds its seconds at the worker first (`POST /v1/track` with
// `"hold": true`: taken from the balance at once), then runs (simulated here); when it
// succeeds the hold is captured (`/v1/usage/{id}/capture`: spent for good), when it fails
// it is released (`/release`: every second given back). The browser calls the worker
// directly with the user's access token, as the overage form does; the worker's 402/403
// answers are shown as readable messages.

import { useMemo, useState } from 'react';
import { useMoney, useQuote } from 'tollgate-react';
import type { CatalogDoc } from 'tollgate-react';

import { BALANCE_CHANGED, formatSeconds } from './BalanceWidget';

interface WorkerError {
  error?: {
    code?: string;
    message?: string;
    available?: number;
    required?: number;
    upgrade?: { display?: string } | null;
  };
}

function explain(status: number, body: WorkerError): string {
  const e = body.error ?? {};
  if (status === 402) {
    // A hold takes seconds the balance has, never overage, whatever the overage choice.
    const offer = e.upgrade?.display ? ` The cheapest offer with more seconds: ${e.upgrade.display}.` : ' Buy a token bundle or a plan.';
    return (
      `Not enough video seconds: ${formatSeconds(e.available ?? 0)} available, ${formatSeconds(e.required ?? 0)} needed. ` +
      `A generation holds seconds from your balance only (overage is never held).${offer}`
    );
  }
  if (status === 403) {
    return `You have no video plan or credits yet.${e.upgrade?.display ? ` Start with ${e.upgrade.display}.` : ''}`;
  }
  if (status === 401) return 'Your session has expired: sign in again.';
  if (status === 409) return `This request conflicts with another one: ${e.message ?? 'try again'}.`;
  if (status >= 500) return `The service is unavailable right now (${status}); nothing was taken. Try again.`;
  return e.message ?? `The request was refused (${status}).`;
}

/** How long the simulated generation takes. */
const GENERATION_MS = 400;

type Outcome =
  | { state: 'holding' | 'captured' | 'released'; text: string; status?: number }
  | { state: 'refused' | 'error'; text: string; status?: number };

export function GenerateVideo({ catalog, workerUrl, accessToken }: { catalog: CatalogDoc; workerUrl: string; accessToken: string | null }) {
  const rates = useMemo(() => catalog.usage?.rates ?? [], [catalog]);
  const models = useMemo(() => [...new Set(rates.map((r) => r.model))], [rates]);
  const [model, setModel] = useState(models[0] ?? '');
  const qualities = rates.filter((r) => r.model === model).map((r) => r.quality);
  const [quality, setQuality] = useState(qualities[0] ?? '');
  const q = qualities.includes(quality) ? quality : qualities[0] ?? '';
  const [seconds, setSeconds] = useState(30);
  const [busy, setBusy] = useState(false);
  const [fail, setFail] = useState(false);
  const [result, setResult] = useState<Outcome | null>(null);
  // Which submission the result belongs to (for tests and screen readers alike: a new result).
  const [run, setRun] = useState(0);
  const live = useQuote(model, q, seconds, { catalog });
  const money = useMoney();
  const base = workerUrl.replace(/\/+$/, '');

  async function post(path: string, body?: unknown, key?: string) {
    const headers: Record<string, string> = { authorization: `Bearer ${accessToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key) headers['idempotency-key'] = key;
    const r = await fetch(`${base}${path}`, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, ok: r.ok, body: (await r.json().catch(() => ({}))) as WorkerError & Record<string, unknown> };
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setResult(null);
    setRun((n) => n + 1);
    if (!accessToken) {
      setResult({ state: 'error', text: 'Please sign in first.' });
      return;
    }
    // An empty or partial field reads as NaN, which the request would send as null.
    if (!Number.isInteger(seconds) || seconds < 1) {
      setResult({ state: 'error', text: 'Enter a duration in whole seconds, 1 or more.' });
      return;
    }
    setBusy(true);
    const held = formatSeconds(seconds);
    let usage: string | null = null;
    try {
      // One key per generation; a retry of the same request reuses it and never holds twice.
      const hold = await post('/v1/track', { feature: 'video_seconds', quantity: seconds, hold: true }, crypto.randomUUID());
      if (!hold.ok) {
        setResult({ state: 'refused', status: hold.status, text: explain(hold.status, hold.body) });
        return;
      }
      usage = String(hold.body.usage_id);
      setResult({ state: 'holding', status: hold.status, text: `Held ${held}; generating…` });
      window.dispatchEvent(new Event(BALANCE_CHANGED));
      // The generation itself would run here; the demo waits a moment and succeeds, or fails
      // when asked to.
      await new Promise((r) => setTimeout(r, GENERATION_MS));
      const failed = fail;
      const settle = await post(`/v1/usage/${encodeURIComponent(usage)}/${failed ? 'release' : 'capture'}`);
      if (!settle.ok) {
        setResult({
          state: 'error',
          status: settle.status,
          text: `Held ${held}, but the worker refused to ${failed ? 'release' : 'capture'} it: ${explain(settle.status, settle.body)} An unsettled hold is released by itself when it ends.`,
        });
      } else if (failed) {
        setResult({ state: 'released', status: settle.status, text: `The generation failed: the hold was released and ${held} given back.` });
      } else {
        setResult({ state: 'captured', status: settle.status, text: `Generated: the hold was captured, ${held} spent.` });
      }
      window.dispatchEvent(new Event(BALANCE_CHANGED));
    } catch (err) {
      const what = usage ? `The hold of ${held} stays until it ends, then is released by itself.` : 'Nothing was taken.';
      setResult({ state: 'error', text: `The video service is unreachable: ${(err as Error).message}. ${what}` });
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
          step={1}
          required
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
            Price: <strong data-testid="quote-cost">{money?.format(live.quote.cost)}</strong> ({live.quote.base_price_per_second}/s ×{' '}
            {live.quote.multiplier}); as overage {money?.format(live.quote.overage_cost)}.
          </>
        ) : live.status === 'error' ? (
          <span className="error">{live.error}</span>
        ) : (
          'Pricing…'
        )}
      </p>
      <p className="status-line">A generation holds its seconds from your balance until it finishes: captured when it succeeds, given back when it fails.</p>
      <label>
        <span>
          <input type="checkbox" checked={fail} onChange={(e) => setFail(e.target.checked)} data-testid="simulate-failure" /> Simulate a
          failure (the hold is released)
        </span>
      </label>
      <button type="submit" disabled={busy || !live.quote} data-testid="submit">
        {busy ? 'Generating…' : 'Generate video'}
      </button>
      {result ? (
        <div
          className={`message ${result.state === 'refused' || result.state === 'error' ? 'error' : 'ok'}`}
          data-testid="generate-result"
          data-state={result.state}
          data-run={run}
          data-status={result.status ?? ''}
        >
          {result.text}
        </div>
      ) : null}
    </form>
  );
}
