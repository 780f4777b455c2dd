// The catalogs the pages gate and price with. The worker publishes the catalog it
// enforces (GET /v1/catalog); the package's bundled copy is the fallback when the
// worker cannot be reached, so pages still render (and say so).

import { bundledCatalog } from 'tollgate-react/server';
import type { CatalogDoc } from 'tollgate-react/server';

import { orgWorkerUrl, razorpayWorkerUrl, studioWorkerUrl, workerUrl } from './config';

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

/** The Razorpay AI app's catalog. */
export async function razorpayCatalog() {
  const r = await fromWorker(razorpayWorkerUrl(), 'razorpay-ai');
  if (r.doc.catalog.id !== 'razorpay-ai') return { doc: bundledCatalog('razorpay-ai'), from: 'package' as const };
  return r;
}

/** The Org Seats catalog: organization plans sold per seat. */
export async function orgCatalog() {
  const r = await fromWorker(orgWorkerUrl(), 'org-seats');
  if (r.doc.catalog.id !== 'org-seats') return { doc: bundledCatalog('org-seats'), from: 'package' as const };
  return r;
}

/** Each app's worker and the offers it sells: a subscription is managed through the
 * worker of the app whose catalog has its offer. */
export async function appWorkers(): Promise<{ app: string; name: string; url: string; offers: { key: string; label: string }[] }[]> {
  const [suite, studio, rzp, org] = await Promise.all([suiteCatalog(), studioCatalog(), razorpayCatalog(), orgCatalog()]);
  return [
    { app: 'vcm-suite', url: workerUrl(), doc: suite.doc },
    { app: 'video-studio', url: studioWorkerUrl(), doc: studio.doc },
    { app: 'razorpay-ai', url: razorpayWorkerUrl(), doc: rzp.doc },
    { app: 'org-seats', url: orgWorkerUrl(), doc: org.doc },
  ].map(({ app, url, doc }) => ({ app, name: doc.catalog.name ?? app, url, offers: doc.offers.map((o) => ({ key: o.key, label: o.label })) }));
}
