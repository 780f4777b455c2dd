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
