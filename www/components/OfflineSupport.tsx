'use client';

// Registers the service worker (public/sw.js) that lets a reload work offline, and,
// once the gates are ready (the engine and its .wasm loaded), hands it the page and
// the assets this page loaded before the worker controlled it, so the very first
// visit is already enough. Pages reached by client-side navigation are handed over
// too (their HTML was never fetched as a document). When the worker has stored the
// current page, <html data-offline-ready="true">.
//
// Production builds only: `next dev` serves changing, unhashed assets.

import { usePathname } from 'next/navigation';
import { useEffect, useRef } from 'react';
import { useTollgate } from 'tollgate-react';

/** The page and the build's static files it has loaded (scripts, styles, fonts, the .wasm). */
function assetsLoaded(): string[] {
  const here = window.location.origin;
  const urls = new Set<string>([window.location.href.split('#')[0]]);
  const add = (raw: string | null | undefined) => {
    if (!raw) return;
    const u = new URL(raw, here);
    if (u.origin === here && u.pathname.startsWith('/_next/static/')) urls.add(u.href);
  };
  // Everything fetched so far, including what scripts loaded themselves (the .wasm)...
  for (const e of performance.getEntriesByType('resource')) add(e.name);
  // ...and, where the timing buffer is unavailable or full, what the document names.
  document.querySelectorAll('script[src]').forEach((e) => add(e.getAttribute('src')));
  document.querySelectorAll('link[href]').forEach((e) => add(e.getAttribute('href')));
  return [...urls];
}

function ask(worker: ServiceWorker, message: unknown): Promise<unknown> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (e) => resolve(e.data);
    worker.postMessage(message, [channel.port2]);
  });
}

export function OfflineSupport() {
  const t = useTollgate();
  const done = useRef<string | null>(null);
  const ready = t.status !== 'loading';
  const pathname = usePathname();

  useEffect(() => {
    if (process.env.NODE_ENV !== 'production' || !('serviceWorker' in navigator)) return;
    if (!ready) return;
    const page = window.location.href.split('#')[0];
    if (done.current === page) return;
    done.current = page;
    delete document.documentElement.dataset.offlineReady;
    let cancelled = false;
    (async () => {
      try {
        const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/', updateViaCache: 'none' });
        await navigator.serviceWorker.ready;
        const worker = reg.active ?? navigator.serviceWorker.controller;
        if (!worker || cancelled) return;
        const answer = (await ask(worker, { type: 'cache', urls: assetsLoaded() })) as { stored?: number; failed?: string[] };
        if (answer?.failed?.length) console.warn('tollgate offline cache: not stored:', answer.failed);
        if (!cancelled) document.documentElement.dataset.offlineReady = 'true';
      } catch (e) {
        console.warn('tollgate offline cache: service worker unavailable:', e);
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [ready, pathname]);

  return null;
}
