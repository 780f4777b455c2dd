'use client';

// The Workflow Runner: runs go through the server (`/api/workflows/run`, the worker's
// `track`), which counts them per UTC day in the database. The card shows the day's count
// from the server and locks, with the cheapest upgrade, once the limit is reached.

import { useCallback, useEffect, useState } from 'react';
// Type only: erased from the client bundle.
import type { MeterAnswer } from 'tollgate-react/server';

export function WorkflowRunner() {
  const [status, setStatus] = useState<MeterAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    const r = await fetch('/api/workflows/run', { cache: 'no-store' });
    if (r.status === 401) return setStatus(null);
    const body = await r.json();
    if (!r.ok) return setError(body?.error?.message ?? `HTTP ${r.status}`);
    setStatus(body);
  }, []);

  // The count is read once the page is idle: the tools' lock state paints first.
  useEffect(() => {
    const run = () => void load();
    if (typeof window.requestIdleCallback === 'function') {
      const id = window.requestIdleCallback(run, { timeout: 1000 });
      return () => window.cancelIdleCallback(id);
    }
    const t = setTimeout(run, 100);
    return () => clearTimeout(t);
  }, [load]);

  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await fetch('/api/workflows/run', { method: 'POST', headers: { 'idempotency-key': crypto.randomUUID() } });
      const body = await r.json();
      if (!r.ok) setError(body?.error?.message ?? `HTTP ${r.status}`);
      await load();
    } finally {
      setBusy(false);
    }
  };

  if (!status) return null;
  const unlimited = status.limit === 'unlimited';
  const locked = !status.allowed;
  return (
    <section className="card" data-testid="workflow-runner" data-locked={locked ? 'true' : 'false'}>
      <h2>Workflow Runner</h2>
      <p data-testid="runs-today">
        {unlimited ? `${status.used ?? 0} runs today (unlimited)` : `${status.used ?? 0} of ${status.limit ?? 0} runs today`}
      </p>
      {locked ? (
        <p className="locked" data-testid="runs-locked">
          {status.message ?? 'No more runs today.'}
          {status.upgrade ? ` ${status.upgrade.display}` : ''}
        </p>
      ) : null}
      <button type="button" data-testid="run-workflow" onClick={run} disabled={busy || locked}>
        Run workflow
      </button>
      {error ? (
        <p className="error" data-testid="run-error">
          {error}
        </p>
      ) : null}
    </section>
  );
}
