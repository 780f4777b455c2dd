// The catalogs the pages gate and price with. The worker publishes the catalog it
// enforces (GET /v1/catalog); the package's bundled copy is the fallback when the
// worker cannot be reached, so pages still render (and say so).

import { bundledCatalog } from 'tollgate-react/server';
import type { CatalogDoc } from 'tollgate-react/server';

import { studioWorkerUrl, workerUrl } from './config';

async function fromWorker(base: string, fallback: string): Promise<{ doc: CatalogDoc; from: 'worker' | 'package' }> {
  try {
    const r = await fetch(`${base.replace(/\/+$/, '')}/v1/catalog`, {
      next: { revalidate: 60 },
      signal: AbortSignal.timeout(1500),
    });
    if (r.ok) {
      const doc = (await r.json()) as CatalogDoc;
      if (doc && doc.catalog && Array.isArray(doc.products)) return { doc, from: 'worker' };
    }
  } catch {
    /* the worker is down: use the package's copy */
  }
  return { doc: bundledCatalog(fallback), from: 'package' };
}

/** The VCM Suite catalog. */
export function suiteCatalog() {
  return fromWorker(workerUrl(), 'vcm-suite');
}

/** The Video Studio catalog, with usage pricing. */
export async function studioCatalog() {
  const r = await fromWorker(studioWorkerUrl(), 'video-studio');
  // A worker configured with another catalog does not serve this one.
  if (r.doc.catalog.id !== 'video-studio') return { doc: bundledCatalog('video-studio'), from: 'package' as const };
  return r;
}
