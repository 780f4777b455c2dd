'use client';
// A client component: the browser entry; `await init()` fetches the .wasm the bundler copied.
import { useEffect, useState } from 'react';
import { explainAccess, init, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc, Decision } from 'tollgate';
import catalogJson from '@/tollgate-catalog.json';
import { rows } from '@/lib/rows';

export default function Client() {
  const [decision, setDecision] = useState<Decision | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    init()
      .then(() => {
        useCatalog(loadCatalog(catalogJson as CatalogDoc));
        setDecision(explainAccess(rows, 'creation', 'pro'));
      })
      .catch((e: Error) => setError(e.message));
  }, []);
  return (
    <main>
      <button id="pro-tool" disabled={!decision?.allowed}>
        {decision ? (decision.allowed ? 'Open the pro tool' : `Locked: ${decision.reason}`) : 'Loading'}
      </button>
      {error && <p id="error">{error}</p>}
    </main>
  );
}
