// The www app's service worker: a reload works offline.
//
// The browser already gates from the signed snapshot it keeps in localStorage; what
// a reload without network lacks is the app itself. This worker keeps it:
//
// | request | strategy | cache |
// |---|---|---|
// | `/_next/static/**` (JS, CSS, fonts, the tollgate .wasm: content-hashed, immutable) | cache first | static |
// | pages (navigations) and other same-origin `GET /api/**` | network first, cache when offline | pages |
// | the worker's public catalog (`GET .../v1/catalog`, any origin) | network first, cache when offline | pages |
// | anything with an `Authorization` header, the snapshot API (`/v1/entitlements`), `/api/dev/**` and the stand-ins' pages `/dev/**`, RSC payloads, non-GET | network only, never stored | - |
//
// Online users therefore always get fresh pages and data; the cache answers only when
// the network fails (a cached answer then carries `x-tollgate-offline: cache`). The
// snapshot itself is never stored here: it is verified by the page, from localStorage.
//
// Pages carry the signed-in user's session, so the pages cache is emptied when someone
// signs in or out (the local stand-ins' POSTs are seen here; another sign-in flow posts
// `{ type: 'purge' }` to this worker). A page that has never been cached answers 503
// with a short offline notice.
//
// Messages from the app: `{ type: 'cache', urls }` stores the page and the assets it
// loaded before this worker controlled it (the first visit); `{ type: 'purge' }`. Both
// answer on the message's port.

const VERSION = 'v1';
const STATIC = `tollgate-static-${VERSION}`;
const PAGES = `tollgate-pages-${VERSION}`;
const OFFLINE_HEADER = 'x-tollgate-offline';

self.addEventListener('install', () => {
  // A new version takes over at once: the strategies never serve stale code online.
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith('tollgate-') && key !== STATIC && key !== PAGES) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

/** How a request is answered: 'static', 'network-first', or null (network only, never stored). */
function strategy(request) {
  if (request.method !== 'GET') return null;
  if (request.headers.has('authorization')) return null;
  const url = new URL(request.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (/\/v1\/entitlements(\/|$)/.test(url.pathname)) return null;
  if (url.origin !== self.location.origin) {
    return /\/v1\/catalog$/.test(url.pathname) ? 'network-first' : null;
  }
  if (url.pathname.startsWith('/_next/static/')) return 'static';
  if (url.pathname.startsWith('/api/dev/') || url.pathname.startsWith('/dev/')) return null;
  // React Server Component payloads of client-side navigations: a failed one makes
  // Next.js fall back to a full navigation, which is answered below.
  if (request.headers.get('rsc') === '1' || url.searchParams.has('_rsc')) return null;
  if (url.pathname === '/sw.js') return null;
  if (request.mode === 'navigate' || url.pathname.startsWith('/api/')) return 'network-first';
  return null;
}

/** The cache key of a page: its URL without the fragment. */
function pageKey(url) {
  const u = new URL(url);
  u.hash = '';
  return u.href;
}

async function fromStatic(request) {
  const cache = await caches.open(STATIC);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

function offlineCopy(cached) {
  const headers = new Headers(cached.headers);
  headers.set(OFFLINE_HEADER, 'cache');
  return new Response(cached.body, { status: cached.status, statusText: cached.statusText, headers });
}

async function networkFirst(request) {
  const cache = await caches.open(PAGES);
  const key = pageKey(request.url);
  try {
    const response = await fetch(request);
    // Only complete, successful answers replace what the cache holds; redirects
    // (a signed-out visitor sent to sign in) and errors are passed on, not stored.
    if (response.status === 200 && (response.type === 'basic' || response.type === 'cors')) {
      await cache.put(key, response.clone());
    }
    return response;
  } catch (error) {
    const cached = await cache.match(key);
    if (cached) return offlineCopy(cached);
    if (request.mode === 'navigate') {
      return new Response(
        '<!doctype html><meta charset="utf-8"><title>Offline</title>' +
          '<p data-testid="offline-page">You are offline and this page has not been saved on this device yet.</p>',
        { status: 503, headers: { 'content-type': 'text/html; charset=utf-8', [OFFLINE_HEADER]: 'missing' } },
      );
    }
    throw error;
  }
}

async function purgePages() {
  await caches.delete(PAGES);
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  // Someone signs in or out: the pages cached for the previous session go.
  if (request.method === 'POST' && url.origin === self.location.origin && /^\/api\/dev\/sign(in|out)$/.test(url.pathname)) {
    event.respondWith(purgePages().then(() => fetch(request)));
    return;
  }
  const how = strategy(request);
  if (how === 'static') event.respondWith(fromStatic(request));
  else if (how === 'network-first') event.respondWith(networkFirst(request));
});

/** Stores pages and assets the app names (what it loaded before this worker controlled it). */
async function store(urls) {
  let stored = 0;
  const failed = [];
  for (const raw of urls) {
    let url;
    try {
      url = new URL(raw, self.location.origin);
    } catch {
      continue;
    }
    const request = new Request(url.href, { credentials: 'same-origin' });
    // The page itself (the app asks from a document, not a navigation) or one of the above.
    const page = url.origin === self.location.origin && !/^\/(_next|api)\/|^\/sw\.js$/.test(url.pathname);
    const how = strategy(request) ?? (page ? 'page' : null);
    if (!how) continue;
    try {
      if (how === 'static') {
        const cache = await caches.open(STATIC);
        if (!(await cache.match(request))) {
          const r = await fetch(request);
          if (!r.ok) throw new Error(`HTTP ${r.status}`);
          await cache.put(request, r);
        }
      } else {
        const r = await fetch(request);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        await (await caches.open(PAGES)).put(pageKey(url.href), r);
      }
      stored += 1;
    } catch (e) {
      failed.push(`${url.href}: ${e && e.message ? e.message : e}`);
    }
  }
  return { stored, failed };
}

self.addEventListener('message', (event) => {
  const data = event.data || {};
  const reply = (value) => event.ports && event.ports[0] && event.ports[0].postMessage(value);
  if (data.type === 'cache' && Array.isArray(data.urls)) {
    event.waitUntil(store(data.urls).then(reply, (e) => reply({ stored: 0, failed: [String(e)] })));
  } else if (data.type === 'purge') {
    event.waitUntil(purgePages().then(() => reply({ purged: true })));
  }
});
