// Where the browser keeps the last good snapshot and the catalog: localStorage,
// one entry per catalog and subject. Every read is verified again before use.

export const STORAGE_PREFIX = 'tollgate.v1';

export function snapshotKey(catalogId: string, subject: string): string {
  return `${STORAGE_PREFIX}:snapshot:${catalogId}:${subject}`;
}

export function catalogKey(catalogId: string): string {
  return `${STORAGE_PREFIX}:catalog:${catalogId}`;
}

function store(): Storage | null {
  try {
    return typeof window !== 'undefined' && window.localStorage ? window.localStorage : null;
  } catch {
    // Storage disabled (privacy settings, sandboxed frames): run without a cache.
    return null;
  }
}

export function readItem(key: string): string | null {
  try {
    return store()?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

export function writeItem(key: string, value: string): void {
  try {
    store()?.setItem(key, value);
  } catch {
    // Quota or disabled storage: the snapshot still works for this page view.
  }
}

export function removeItem(key: string): void {
  try {
    store()?.removeItem(key);
  } catch {
    /* nothing to remove */
  }
}

// ------------------------------------------------------------------ the snapshot cookie
//
// The verified snapshot token is also kept in a cookie, so the app's proxy
// (`tollgate-react/proxy`) can gate whole pages before rendering them, with no network
// call. The token is public data (signed, not secret): the cookie is readable by scripts,
// and the proxy verifies it again on every request.

/** The cookie's default name. */
export const SNAPSHOT_COOKIE = 'tollgate-snapshot';

/**
 * Largest `name=value` written, in bytes. Browsers keep at least 4096 bytes per cookie
 * (name, value and attributes); a snapshot with more grants than fit is not written, and
 * pages are then gated by the server-side checks alone.
 */
export const MAX_COOKIE_BYTES = 4000;

function cookieJar(): Document | null {
  return typeof document !== 'undefined' ? document : null;
}

/** The value of one cookie in a Cookie header (or `document.cookie`), or null. */
export function readCookie(header: string | null, name: string): string | null {
  return readCookies(header, name)[0] ?? null;
}

/** Every value of cookie `name` in a Cookie header, in order (a browser sends one name
 * twice when a sibling subdomain or another path set it too). */
export function readCookies(header: string | null, name: string): string[] {
  const out: string[] = [];
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) out.push(part.slice(i + 1).trim());
  }
  return out;
}

/** The cookie attribute that keeps it to HTTPS, on a page served over HTTPS. */
function secureAttribute(): string {
  return typeof location !== 'undefined' && location.protocol === 'https:' ? '; Secure' : '';
}

/**
 * Writes the token to the cookie for `maxAgeSecs` (the snapshot's remaining validity).
 * Returns false, and removes any older cookie of that name, when it cannot be written:
 * no document, a validity already over, or a token too large for a cookie (an older,
 * smaller snapshot must not go on gating in its place).
 */
export function writeSnapshotCookie(name: string, token: string, maxAgeSecs: number): boolean {
  const doc = cookieJar();
  if (!doc) return false;
  const maxAge = Math.floor(maxAgeSecs);
  // Tokens are base64url and `.`: nothing in them needs escaping in a cookie.
  if (maxAge <= 0 || !/^[A-Za-z0-9_.-]+$/.test(token) || name.length + 1 + token.length > MAX_COOKIE_BYTES) {
    clearSnapshotCookie(name);
    return false;
  }
  const secure = secureAttribute();
  try {
    doc.cookie = `${name}=${token}; Path=/; Max-Age=${maxAge}; SameSite=Lax${secure}`;
  } catch {
    return false;
  }
  return true;
}

/** Removes the snapshot cookie (signed out, another subject, no valid snapshot). */
export function clearSnapshotCookie(name: string): void {
  const doc = cookieJar();
  if (!doc || readCookie(doc.cookie, name) === null) return;
  const secure = secureAttribute();
  try {
    doc.cookie = `${name}=; Path=/; Max-Age=0; SameSite=Lax${secure}`;
  } catch {
    /* cookies disabled: nothing was written either */
  }
}
