// The catalogs the pages gate and price with. The worker publishes the catalog it
// enforces (GET /v1/catalog); when it cannot be reached, the app's own copy is the
// fallback (catalogs/<name>.json, built from the repository's catalogs/*.toml before
// `next build`, as `tollgate catalog check --json FILE` prints them), so pages still
// render (and say so).
// The tollgate package carries no catalog.

import { readFileSync } from 'node:fs';
import path from 'node:path';

import { cache } from 'react';

import type { CatalogDoc } from 'tollgate-react/server';

import { orgWorkerUrl, razorpayWorkerUrl, studioWorkerUrl, workerUrl } from './config';

const files = new Map<string, CatalogDoc>();

/** The app's own copy of catalog `name` (a JSON file written before the build). */
function catalogFile(name: string): CatalogDoc {
  let doc = files.get(name);
  if (!doc) {
    const file = path.join(/*turbopackIgnore: true*/ process.cwd(), 'catalogs', `${name}.json`);
    doc = JSON.parse(readFileSync(/*turbopackIgnore: true*/ file, 'utf8')) as CatalogDoc;
    files.set(name, doc);
  }
  return doc;
}

async function fromWorker(base: string, fallback: string): Promise<{ doc: CatalogDoc; from: 'worker' | 'file' }> {
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
    /* the worker is down: use the app's copy */
  }
  return { doc: catalogFile(fallback), from: 'file' };
}

/** The VCM Suite catalog: read once per request, so the layout and the page hold the
 * same object and the page's payload carries it once. */
export const suiteCatalog = cache(() => fromWorker(workerUrl(), 'vcm-suite'));

/** The Video Studio catalog, with usage pricing. */
export async function studioCatalog() {
  const r = await fromWorker(studioWorkerUrl(), 'video-studio');
  // A worker configured with another catalog does not serve this one.
  if (r.doc.catalog.id !== 'video-studio') return { doc: catalogFile('video-studio'), from: 'file' as const };
  return r;
}

/** The Razorpay AI app's catalog. */
export async function razorpayCatalog() {
  const r = await fromWorker(razorpayWorkerUrl(), 'razorpay-ai');
  if (r.doc.catalog.id !== 'razorpay-ai') return { doc: catalogFile('razorpay-ai'), from: 'file' as const };
  return r;
}

/** The Org Seats catalog: organization plans sold per seat. */
export async function orgCatalog() {
  const r = await fromWorker(orgWorkerUrl(), 'org-seats');
  if (r.doc.catalog.id !== 'org-seats') return { doc: catalogFile('org-seats'), from: 'file' as const };
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
