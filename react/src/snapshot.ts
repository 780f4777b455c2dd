// Signed entitlement snapshots for browsers, Next.js servers and Node: verified by the
// tollgate package's `verifySnapshot`, the core's own verifier (src/snapshot.rs), and
// nothing else. This module only adds what an app needs around it: trusted keys from
// configuration text, the signed-in user in either form the worker and the app name it,
// the catalog the page gates with, and answers as values rather than throws.
//
// A verified snapshot stops edits to cached entitlements, not a patched page:
// the browser gate is a convenience and every paid action is checked again by
// the worker.

import type { SnapshotErrorCode as CoreSnapshotErrorCode } from 'tollgate';

import type { TollgateModule } from './core.js';
import type { SnapshotPayload } from './types.js';

/** The core's refusal codes, and `catalog_mismatch` (a snapshot for another catalog). */
export type SnapshotErrorCode = CoreSnapshotErrorCode | 'catalog_mismatch';

/** Trusted public keys: key id -> 32-byte Ed25519 key as base64url (43 chars) or 64 hex digits. */
export type PublicKeys = Record<string, string>;

/**
 * Reads trusted keys from configuration text: `kid:key` pairs separated by commas or
 * whitespace, or a JSON object `{ "kid": "key" }`.
 */
export function parsePublicKeys(text: string | PublicKeys | null | undefined): PublicKeys {
  if (!text) return {};
  if (typeof text === 'object') return { ...text };
  const t = text.trim();
  if (t.startsWith('{')) {
    const obj = JSON.parse(t) as unknown;
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new Error('snapshot public keys: expected a JSON object of key id -> key');
    }
    const out: PublicKeys = {};
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      if (typeof v !== 'string') throw new Error(`snapshot public key \`${k}\` must be a string`);
      out[k] = v;
    }
    return out;
  }
  const out: PublicKeys = {};
  for (const part of t.split(/[\s,]+/).filter(Boolean)) {
    const i = part.indexOf(':');
    if (i <= 0) throw new Error(`snapshot public keys: \`${part}\` is not \`kid:key\``);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

// ------------------------------------------------------------------ time

/** Epoch milliseconds of an RFC 3339 timestamp or integer seconds, or NaN. */
export function parseTimestamp(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v * 1000;
  if (typeof v !== 'string') return NaN;
  if (/^-?\d+$/.test(v)) return Number(v) * 1000;
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(v)) return NaN;
  return Date.parse(v);
}

// ------------------------------------------------------------------ verify

export interface VerifyOptions {
  /** The signed-in subject; a snapshot of anyone else is refused (`wrong_subject`). */
  subject?: string | null;
  /** The catalog the page gates with; a snapshot for another catalog is refused (`catalog_mismatch`). */
  catalogId?: string | null;
  /** Verification time: Date, epoch ms or RFC 3339. Default: Date.now(). */
  now?: Date | number | string;
  /**
   * The tollgate module, already initialised (the provider and the server helpers pass
   * theirs). Without it the package is imported here, and initialised when it is not yet.
   */
  tollgate?: TollgateModule | null;
}

export type VerifyResult =
  | { ok: true; snapshot: SnapshotPayload }
  | { ok: false; code: SnapshotErrorCode; message: string };

/**
 * Whether a snapshot's `subject` is the signed-in user. The worker names users
 * `user:<id>` (and organizations `org:<id>`), while an app knows the bare id (the
 * access token's `sub`): both forms name the same user.
 */
export function isSubject(snapshotSubject: string, expected: string): boolean {
  return snapshotSubject === expected || snapshotSubject === `user:${expected}`;
}

async function loaded(tg: TollgateModule | null | undefined): Promise<TollgateModule> {
  const mod: TollgateModule = tg ?? (await import('tollgate'));
  if (!mod.isReady()) await mod.init();
  return mod;
}

/**
 * Verifies a snapshot token against the trusted keys with the core's verifier (the
 * package's `verifySnapshot`: signature over the exact payload, key id, expiry, issue
 * time). Never throws for a bad token: the answer says why it was refused, with the
 * core's error code.
 */
export async function verifySnapshot(token: string, keys: PublicKeys, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const tg = await loaded(opts.tollgate);
  let snapshot: SnapshotPayload;
  try {
    // The subject is compared below (either form of a user id), the rest by the core.
    snapshot = tg.verifySnapshot(token, keys, undefined, opts.now ?? Date.now());
  } catch (e) {
    const err = e as { code?: unknown; message?: string };
    if (typeof err.code !== 'string') throw e;
    return { ok: false, code: err.code as SnapshotErrorCode, message: err.message ?? String(e) };
  }
  if (opts.subject && !isSubject(snapshot.subject, opts.subject)) {
    return {
      ok: false,
      code: 'wrong_subject',
      message: `the entitlement snapshot describes \`${snapshot.subject}\`, not the signed-in subject \`${opts.subject}\``,
    };
  }
  if (opts.catalogId && snapshot.catalog_id !== opts.catalogId) {
    return {
      ok: false,
      code: 'catalog_mismatch',
      message: `the entitlement snapshot is for catalog \`${snapshot.catalog_id}\`, this page gates with \`${opts.catalogId}\``,
    };
  }
  return { ok: true, snapshot };
}

/**
 * Reads a token's payload WITHOUT verifying it (to order tokens by their issue time, or
 * to show what was refused; never for gating).
 */
export function peekSnapshot(token: string): Partial<SnapshotPayload> | null {
  const dot = token.indexOf('.');
  if (dot < 0) return null;
  try {
    const b64 = token.slice(0, dot).replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)) as Partial<SnapshotPayload>;
  } catch {
    return null;
  }
}
