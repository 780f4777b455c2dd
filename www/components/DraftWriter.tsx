'use client';

// The Razorpay AI app's draft card: what is left (free drafts, AI credits), read from the
// worker through `/api/drafts`, and "Write a draft", which the server spends before its
// (simulated) model call. A refusal says why and names the cheapest offer the worker gave.

import { useCallback, useState } from 'react';
// Types only: erased from the client bundle, so the server modules never reach the browser.
import type { Upgrade } from 'tollgate-react/server';

import type { DraftBalances } from '@/lib/drafts';

export type { DraftBalances };

type Result = { ok: true; text: string } | { ok: false; text: string; status: number; offer: Upgrade | null };

const POOL_NAMES: Record<string, string> = { free_drafts: 'a free draft', ai_credits: '1 AI credit' };

export function DraftWriter({ initial, error: initialError }: { initial: DraftBalances | null; error: string | null }) {
  const [balances, setBalances] = useState<DraftBalances | null>(initial);
  const [error, setError] = useState<string | null>(initialError);
  const [topic, setTopic] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Result | null>(null);
  const [drafts, setDrafts] = useState<string[]>([]);

  const load = useCallback(async () => {
    try {
      const r = await fetch('/api/drafts', { cache: 'no-store' });
      const body = await r.json();
      if (!r.ok) throw new Error(body?.error?.message ?? `HTTP ${r.status}`);
      setBalances(body as DraftBalances);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);

  async function write() {
    setBusy(true);
    setResult(null);
    try {
      const r = await fetch('/api/drafts', {
        method: 'POST',
        // One key per click: a retry of this request is never spent twice.
        headers: { 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
        body: JSON.stringify({ topic }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.ok) {
        setDrafts((d) => [body.draft as string, ...d]);
        setResult({ ok: true, text: `Draft written; it used ${POOL_NAMES[body.paid_with] ?? body.paid_with}.` });
      } else {
        const e = body?.error ?? {};
        setResult({ ok: false, status: r.status, text: e.message ?? `The draft was refused (${r.status}).`, offer: e.upgrade ?? null });
      }
    } catch (e) {
      setResult({ ok: false, status: 0, text: `The app is unreachable: ${(e as Error).message}. Nothing was spent.`, offer: null });
    } finally {
      await load();
      setBusy(false);
    }
  }

  return (
    <section className="card stack" data-testid="drafts">
      <h2>Write a draft</h2>
      {error ? <p className="error">{error}</p> : null}
      {balances ? (
        <dl>
          <dt>Free drafts left</dt>
          <dd data-testid="free-drafts">{balances.free_drafts}</dd>
          <dt>AI credits</dt>
          <dd data-testid="ai-credits">{balances.ai_credits}</dd>
        </dl>
      ) : null}
      {balances?.upgrade ? (
        <p className="status-line" data-testid="drafts-offer">
          Out of drafts. The cheapest way to write more: {balances.upgrade.display}.
        </p>
      ) : null}
      <label>
        Topic
        <input value={topic} onChange={(e) => setTopic(e.target.value)} placeholder="your next launch" data-testid="draft-topic" />
      </label>
      <div>
        <button type="button" onClick={write} disabled={busy} data-testid="write-draft">
          {busy ? 'Writing…' : 'Write a draft'}
        </button>
      </div>
      {result ? (
        <div className={`message ${result.ok ? 'ok' : 'error'}`} data-testid="draft-result" data-status={result.ok ? 200 : result.status}>
          {result.text}
          {!result.ok && result.offer ? <> Cheapest offer: <strong data-testid="draft-refused-offer">{result.offer.display}</strong>.</> : null}
        </div>
      ) : null}
      {drafts.length ? (
        <ol data-testid="draft-list">
          {drafts.map((d, i) => (
            <li key={drafts.length - i}>{d}</li>
          ))}
        </ol>
      ) : null}
    </section>
  );
}
