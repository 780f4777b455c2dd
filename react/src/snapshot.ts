// Signed entitlement snapshots (format version 1, documented in the core's
// src/snapshot.rs): verification for browsers, Next.js servers and Node.
//
// When the tollgate package exports a snapshot verifier (`verifySnapshot`), it is
// used, so the core's own code decides. Otherwise this module checks the same
// steps in the same order with WebCrypto's Ed25519: strict base64url, version,
// key id, the signature over the exact payload bytes, fields, expiry and clock
// skew, then the subject. The error codes are the core's.
//
// A verified snapshot stops edits to cached entitlements, not a patched page:
// the browser gate is a convenience and every paid action is checked again by
// the worker.

import type { Grant, SnapshotPayload } from './types.js';

export const SNAPSHOT_VERSION = 1;
/** Longest token accepted, in bytes (the core's MAX_TOKEN_LEN). */
export const MAX_TOKEN_LEN = 256 * 1024;
/** How far `issued_at` may lie in the future (the core's ISSUED_AT_SKEW_SECS). */
export const ISSUED_AT_SKEW_SECS = 120;

export type SnapshotErrorCode =
  | 'malformed_snapshot'
  | 'bad_signature'
  | 'unknown_key'
  | 'invalid_key'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_subject'
  | 'catalog_mismatch';

export class SnapshotError extends Error {
  readonly code: SnapshotErrorCode;
  constructor(code: SnapshotErrorCode, message: string) {
    super(message);
    this.name = 'SnapshotError';
    this.code = code;
  }
}

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

// ------------------------------------------------------------------ base64url

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const LOOKUP: Record<string, number> = Object.fromEntries([...ALPHABET].map((c, i) => [c, i]));

/** Strict base64url without padding: returns null for any other text (one text per byte string). */
export function decodeBase64Url(s: string): Uint8Array | null {
  if (s.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const v = LOOKUP[s[i]];
    if (v === undefined) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // The unused low bits of the last character must be zero.
  if ((acc & ((1 << bits) - 1)) !== 0) return null;
  return out.subarray(0, o);
}

export function encodeBase64Url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
  }
  return out;
}

/** A 32-byte key from 64 hex digits or base64url / base64 text (with or without padding). */
export function decodeKey(text: string): Uint8Array | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) {
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) out[i] = parseInt(t.slice(i * 2, i * 2 + 2), 16);
    return out;
  }
  const normalised = t.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  const bytes = decodeBase64Url(normalised);
  return bytes && bytes.length === 32 ? bytes : null;
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

function nowMsOf(now: Date | number | string | undefined): number {
  if (now === undefined) return Date.now();
  if (typeof now === 'number') return now;
  if (now instanceof Date) return now.getTime();
  return parseTimestamp(now);
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
   * The tollgate module (already initialised). When it exports `verifySnapshot`,
   * the core's verifier is used instead of WebCrypto.
   */
  tollgate?: unknown;
}

export type VerifyResult =
  | { ok: true; snapshot: SnapshotPayload; verifier: 'core' | 'webcrypto' }
  | { ok: false; code: SnapshotErrorCode; message: string; verifier: 'core' | 'webcrypto' };

type CoreVerify = (token: string, keys: PublicKeys, subject?: string | null, now?: number) => unknown;

/**
 * Whether a snapshot's `subject` is the signed-in user. The worker names users
 * `user:<id>` (and organizations `org:<id>`), while an app knows the bare id (the
 * access token's `sub`): both forms name the same user.
 */
export function isSubject(snapshotSubject: string, expected: string): boolean {
  return snapshotSubject === expected || snapshotSubject === `user:${expected}`;
}

function wrongSubject(found: string, expected: string): string {
  return `the entitlement snapshot describes \`${found}\`, not the signed-in subject \`${expected}\``;
}

function coreVerifier(tollgate: unknown): CoreVerify | null {
  if (tollgate && typeof tollgate === 'object' && 'verifySnapshot' in tollgate) {
    const f = (tollgate as { verifySnapshot: unknown }).verifySnapshot;
    if (typeof f === 'function') return f as CoreVerify;
  }
  return null;
}

const KNOWN_CODES: SnapshotErrorCode[] = [
  'malformed_snapshot',
  'bad_signature',
  'unknown_key',
  'invalid_key',
  'expired',
  'not_yet_valid',
  'wrong_subject',
];

/**
 * Verifies a snapshot token against the trusted keys. Never throws for a bad token:
 * the answer says why it was refused, with the core's error code.
 */
export async function verifySnapshot(token: string, keys: PublicKeys, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const now = nowMsOf(opts.now);
  const core = coreVerifier(opts.tollgate);
  let result: VerifyResult;
  if (core) {
    try {
      // The subject is compared here (either form of a user id), the rest by the core.
      const snap = core(token, keys, undefined, now);
      const payload = (typeof snap === 'string' ? JSON.parse(snap) : snap) as SnapshotPayload;
      result =
        opts.subject && !isSubject(payload.subject, opts.subject)
          ? { ok: false, code: 'wrong_subject', message: wrongSubject(payload.subject, opts.subject), verifier: 'core' }
          : { ok: true, snapshot: payload, verifier: 'core' };
    } catch (e) {
      const err = e as { code?: string; message?: string };
      const code = KNOWN_CODES.includes(err.code as SnapshotErrorCode)
        ? (err.code as SnapshotErrorCode)
        : codeFromMessage(err.message ?? '');
      result = { ok: false, code, message: err.message ?? String(e), verifier: 'core' };
    }
  } else {
    try {
      const snapshot = await verifyWithWebCrypto(token, keys, now, opts.subject ?? null);
      result = { ok: true, snapshot, verifier: 'webcrypto' };
    } catch (e) {
      if (e instanceof SnapshotError) {
        result = { ok: false, code: e.code, message: e.message, verifier: 'webcrypto' };
      } else {
        throw e;
      }
    }
  }
  if (result.ok && opts.catalogId && result.snapshot.catalog_id !== opts.catalogId) {
    return {
      ok: false,
      code: 'catalog_mismatch',
      message: `the entitlement snapshot is for catalog \`${result.snapshot.catalog_id}\`, this page gates with \`${opts.catalogId}\``,
      verifier: result.verifier,
    };
  }
  return result;
}

function codeFromMessage(m: string): SnapshotErrorCode {
  if (/signature does not match/.test(m)) return 'bad_signature';
  if (/not among the trusted keys/.test(m)) return 'unknown_key';
  if (/not a valid Ed25519 public key/.test(m)) return 'invalid_key';
  if (/expired at/.test(m)) return 'expired';
  if (/clock skew/.test(m)) return 'not_yet_valid';
  if (/not the signed-in subject/.test(m)) return 'wrong_subject';
  return 'malformed_snapshot';
}

const malformed = (reason: string) => new SnapshotError('malformed_snapshot', `malformed entitlement snapshot: ${reason}`);

function isoOf(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function subtle(): SubtleCrypto {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (!c || !c.subtle) {
    throw new Error('snapshot verification needs WebCrypto (a secure context: https or localhost)');
  }
  return c.subtle;
}

async function verifyWithWebCrypto(
  token: string,
  keys: PublicKeys,
  now: number,
  subject: string | null,
): Promise<SnapshotPayload> {
  if (typeof token !== 'string') throw malformed('the token is not a string');
  if (token.length > MAX_TOKEN_LEN) throw malformed(`the token is longer than ${MAX_TOKEN_LEN} bytes`);
  const dot = token.indexOf('.');
  if (dot < 0) throw malformed('expected two base64url parts separated by `.`');
  const p64 = token.slice(0, dot);
  const s64 = token.slice(dot + 1);
  if (s64.includes('.')) throw malformed('expected exactly two parts separated by `.`');
  if (!p64) throw malformed('the payload part is empty');
  if (!s64) throw malformed('the signature part is empty');
  const payload = decodeBase64Url(p64);
  if (!payload) throw malformed('the payload part is not unpadded base64url');
  const signature = decodeBase64Url(s64);
  if (!signature) throw malformed('the signature part is not unpadded base64url');
  if (signature.length !== 64) throw malformed(`the signature is ${signature.length} bytes, not 64`);

  let doc: Record<string, unknown>;
  try {
    const parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    doc = parsed as Record<string, unknown>;
  } catch (e) {
    throw malformed(`the payload is not a snapshot object (${(e as Error).message})`);
  }
  if (typeof doc.v !== 'number' || typeof doc.kid !== 'string') {
    throw malformed('the payload is not a snapshot object (missing `v` or `kid`)');
  }
  if (doc.v !== SNAPSHOT_VERSION) {
    throw malformed(`snapshot version ${doc.v} is not supported (only ${SNAPSHOT_VERSION})`);
  }
  const kid = doc.kid;
  const keyText = Object.prototype.hasOwnProperty.call(keys, kid) ? keys[kid] : undefined;
  if (keyText === undefined) {
    throw new SnapshotError(
      'unknown_key',
      `the entitlement snapshot was signed with key \`${kid}\`, which is not among the trusted keys ` +
        '(an old or foreign key, or the public key list is out of date)',
    );
  }
  const keyBytes = decodeKey(keyText);
  const invalidKey = () =>
    new SnapshotError('invalid_key', `the trusted public key \`${kid}\` is not a valid Ed25519 public key: fix the configuration`);
  if (!keyBytes) throw invalidKey();
  let key: CryptoKey;
  try {
    key = await subtle().importKey('raw', keyBytes as BufferSource, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    throw invalidKey();
  }
  let good = false;
  try {
    good = await subtle().verify({ name: 'Ed25519' }, key, signature as BufferSource, payload as BufferSource);
  } catch {
    good = false;
  }
  if (!good) {
    throw new SnapshotError(
      'bad_signature',
      "the entitlement snapshot's signature does not match its content: it was altered or forged",
    );
  }

  // Fields.
  const str = (k: string) => {
    if (typeof doc[k] !== 'string') throw malformed(`signed payload has bad fields (\`${k}\` must be a string)`);
    return doc[k] as string;
  };
  str('subject');
  str('catalog_id');
  str('catalog_version');
  const issued = parseTimestamp(doc.issued_at);
  const expires = parseTimestamp(doc.expires_at);
  if (Number.isNaN(issued)) throw malformed('signed payload has bad fields (`issued_at`)');
  if (Number.isNaN(expires)) throw malformed('signed payload has bad fields (`expires_at`)');
  if (!Array.isArray(doc.grants)) throw malformed('signed payload has bad fields (`grants` must be a list)');
  for (const [i, g] of (doc.grants as unknown[]).entries()) {
    if (g === null || typeof g !== 'object') throw malformed(`signed payload has bad fields (grants[${i}])`);
    for (const k of ['id', 'product', 'tier', 'source', 'status']) {
      if (typeof (g as Record<string, unknown>)[k] !== 'string') {
        throw malformed(`signed payload has bad fields (grants[${i}].${k})`);
      }
    }
  }
  const balances = doc.balances;
  if (balances === null || typeof balances !== 'object' || Array.isArray(balances)) {
    throw malformed('signed payload has bad fields (`balances` must be an object)');
  }
  for (const [k, v] of Object.entries(balances as Record<string, unknown>)) {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw malformed(`signed payload has bad fields (balances.${k})`);
  }
  if (expires <= issued) throw malformed('expires_at is not after issued_at');
  const nowSecs = Math.floor(now / 1000) * 1000;
  if (nowSecs >= expires) {
    throw new SnapshotError(
      'expired',
      `the entitlement snapshot expired at ${isoOf(expires)} (now ${isoOf(nowSecs)}): fetch a fresh one`,
    );
  }
  if (issued > nowSecs + ISSUED_AT_SKEW_SECS * 1000) {
    throw new SnapshotError(
      'not_yet_valid',
      `the entitlement snapshot is issued at ${isoOf(issued)}, after now (${isoOf(nowSecs)}) by more than the allowed ` +
        `${ISSUED_AT_SKEW_SECS} s of clock skew: check this device's clock`,
    );
  }
  const snap = doc as unknown as SnapshotPayload;
  if (subject !== null && subject !== undefined && !isSubject(snap.subject, subject)) {
    throw new SnapshotError('wrong_subject', wrongSubject(snap.subject, subject));
  }
  return snap;
}

/** Reads a token's payload WITHOUT verifying it (for display of what was refused; never for gating). */
export function peekSnapshot(token: string): Partial<SnapshotPayload> | null {
  const dot = token.indexOf('.');
  if (dot < 0) return null;
  const bytes = decodeBase64Url(token.slice(0, dot));
  if (!bytes) return null;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as Partial<SnapshotPayload>;
  } catch {
    return null;
  }
}

/** The grants and balances of a verified snapshot, shaped for `new Engine(catalog, entitlements)`. */
export function entitlementsOf(s: SnapshotPayload): { subject: string; grants: Grant[]; balances: Record<string, number> } {
  return { subject: s.subject, grants: s.grants, balances: s.balances };
}
