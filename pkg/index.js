// tollgate: the JavaScript face of the Rust core (compiled to WebAssembly).
//
// This file is the browser / bundler entry and the shared wrapper: `node.js`
// and `workerd.js` load the .wasm synchronously and re-export everything here.
// In a browser, `await init()` once before the first call.
//
// The wrapper converts `now` (Date | RFC 3339 string | epoch ms; omitted:
// Date.now(), read here and never in the core), hands objects to the core as
// they are (JSON text is parsed here first), turns the core's JSON answers into
// plain objects, keeps the default catalog (the bundled VCM Suite catalog) for
// the VCM Suite-compatible helpers, and keeps, per product, the answer of the hot
// path together with the window the core says it holds for.

import initWasm, {
  initSync as initWasmSync,
  CatalogHandle,
  EngineHandle,
  parseTime,
  rowsHasAccess,
  rowsExplainAccess,
  resolveUserTier as wasmResolveUserTier,
  userCan,
  userAllowed,
  userExportPolicy,
  workflowRunAllowed as wasmWorkflowRunAllowed,
  quote as wasmQuote,
  verifySnapshot as wasmVerifySnapshot,
  orgEntitlements as wasmOrgEntitlements,
  orgFeatureAccess as wasmOrgFeatureAccess,
  formatMoney as wasmFormatMoney,
  minorDigits as wasmMinorDigits,
  notices as wasmNotices,
} from './tollgate.js';
import DEFAULT_CATALOG_JSON from './default-catalog.js';

// ------------------------------------------------------------------ loading

let ready = false;
let loading = null;

/**
 * Loads the WebAssembly module. Needed once in browsers (and bundles for them);
 * a no-op where the module loads on import (Node, Cloudflare Workers).
 * `input`: a URL, Response, BufferSource or WebAssembly.Module; default: the
 * package's own `tollgate_bg.wasm` next to this file.
 */
export async function init(input) {
  if (ready) return;
  if (!loading) {
    loading = initWasm(input === undefined ? undefined : { module_or_path: input }).then(
      () => {
        ready = true;
      },
      (e) => {
        loading = null;
        throw loadError(input, e);
      },
    );
  }
  await loading;
}

/**
 * Why `init` failed, in words that say what to do. Without `input` the .wasm is fetched
 * from next to this file, where Next.js and Vite put it; a host that did not copy it
 * answers 404 (or an HTML page, which fails to compile).
 */
function loadError(input, cause) {
  const from = input === undefined ? 'tollgate_bg.wasm next to the package\'s JavaScript' : 'the given input';
  const err = new Error(
    `tollgate: could not load the WebAssembly module from ${from}: ${cause?.message ?? cause}. ` +
      (input === undefined
        ? 'If your bundler did not copy the file, serve node_modules/tollgate/tollgate_bg.wasm yourself and pass its URL: `await init(\'/tollgate_bg.wasm\')`.'
        : 'Pass a URL, a Response, the bytes or a WebAssembly.Module of tollgate_bg.wasm.'),
    { cause },
  );
  err.code = 'wasm_load_failed';
  return err;
}

/** Loads the WebAssembly module from bytes or a compiled module, synchronously. */
export function initSync(module) {
  if (ready) return;
  initWasmSync({ module });
  ready = true;
}

/** Whether the WebAssembly module is loaded. */
export function isReady() {
  return ready;
}

function ensureReady() {
  if (!ready) {
    throw new Error(
      "tollgate: the WebAssembly module is not loaded yet: in a browser, `import { init } from 'tollgate'` " +
        'and `await init()` once before the first call (Node, server bundles and Cloudflare Workers load it on import)',
    );
  }
}

// ------------------------------------------------------------------ inputs

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

function str(what, v) {
  if (typeof v !== 'string') throw new TypeError(`tollgate: \`${what}\` must be a string, got ${describe(v)}`);
  return v;
}

/** `now` as epoch milliseconds. */
function nowMs(now) {
  if (now === undefined || now === null) return Date.now();
  if (typeof now === 'number') {
    if (!Number.isFinite(now)) throw new TypeError(`tollgate: \`now\` must be finite epoch milliseconds, got ${now}`);
    return now;
  }
  if (now instanceof Date) {
    const t = now.getTime();
    if (Number.isNaN(t)) throw new TypeError('tollgate: `now` is an invalid Date');
    return t;
  }
  if (typeof now === 'string') {
    if (/^\s*-?\d+\s*$/.test(now)) {
      throw new TypeError(
        `tollgate: \`now\` string ${describe(now)} is ambiguous; pass epoch milliseconds as a number or an RFC 3339 string`,
      );
    }
    return parseTime(now);
  }
  throw new TypeError(
    `tollgate: \`now\` must be a Date, an RFC 3339 string or epoch milliseconds, got ${describe(now)}`,
  );
}

/** An object input: objects pass through; a string is JSON text, parsed here. */
function objectOf(what, v) {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch (e) {
    throw new TypeError(`tollgate: invalid ${what}: not valid JSON: ${e.message}`);
  }
}

/** A VCM Suite plan user: only the fields the helpers read cross the boundary. */
function userOf(user) {
  if (user === undefined || user === null) return undefined;
  if (typeof user !== 'object') throw new TypeError(`tollgate: \`user\` must be an object or null, got ${describe(user)}`);
  const tier = typeof user.subscription_tier === 'string' ? user.subscription_tier : null;
  return { subscription_tier: tier, entitlements: user.entitlements ?? null };
}

/**
 * Where JSON text stops being valid: { offset, line, column } (1-based), found
 * by a small scanner because engines word (and place) JSON.parse errors differently.
 */
function jsonErrorAt(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = () => {
    throw i;
  };
  const lit = (w) => (text.startsWith(w, i) ? (i += w.length) : fail());
  const str = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? '')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m[0].length;
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return null;
  } catch (at) {
    if (typeof at !== 'number') throw at;
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    return { offset: at, line, column: at - before.lastIndexOf('\n') };
  }
}

function count(what, v) {
  if (typeof v !== 'number') throw new TypeError(`tollgate: \`${what}\` must be a number, got ${describe(v)}`);
  return v;
}

// ------------------------------------------------------------------ catalogs

const HANDLE = Symbol('tollgate.handle');
const SOURCE = Symbol('tollgate.source');

/** A validated catalog (see `loadCatalog`). */
export class Catalog {
  constructor(handle, source) {
    if (!(handle instanceof CatalogHandle) || typeof source !== 'string') {
      throw new TypeError('tollgate: create catalogs with loadCatalog(source)');
    }
    this[HANDLE] = handle;
    this[SOURCE] = source;
  }
  get id() {
    return this[HANDLE].id;
  }
  get name() {
    return this[HANDLE].name;
  }
  get version() {
    return this[HANDLE].version;
  }
  /** The catalog document as it was loaded, as a plain object. */
  toJSON() {
    return JSON.parse(this[SOURCE]);
  }
}

/**
 * Parses and validates a catalog: JSON text or the parsed object (the package
 * ships its catalogs as JSON in `tollgate/catalogs/*.json`). Errors name the
 * field (`error.path`) and, for JSON text, the line (`error.line`).
 */
export function loadCatalog(src) {
  ensureReady();
  if (src instanceof Catalog) return src;
  if (src === undefined || src === null || (typeof src !== 'string' && typeof src !== 'object')) {
    throw new TypeError(`tollgate: loadCatalog expects JSON text or an object, got ${describe(src)}`);
  }
  let doc = src;
  if (typeof src === 'string') {
    try {
      doc = JSON.parse(src);
    } catch (e) {
      const at = jsonErrorAt(src);
      const where = at ? ` (line ${at.line}, column ${at.column})` : '';
      const hint = src.trimStart().startsWith('{')
        ? ''
        : ' (this package reads JSON catalogs; the TOML ones are converted to JSON at build time)';
      throw catalogError(`catalog error: invalid JSON catalog${where}: ${e.message}${hint}`, '', at?.line ?? null);
    }
  }
  const handle = CatalogHandle.fromObject(doc);
  return new Catalog(handle, typeof src === 'string' ? src : JSON.stringify(src));
}

function catalogError(message, path, line) {
  const e = new Error(message);
  e.path = path;
  e.line = line;
  return e;
}

let current = null;

/** The catalog the VCM Suite-compatible helpers use (default: the bundled VCM Suite catalog). */
/** `catalog` as a Catalog (a Catalog, JSON text or a catalog object); null or undefined: the default. */
function catalogOrDefault(catalog) {
  return catalog === undefined || catalog === null ? defaultCatalog() : loadCatalog(catalog);
}

export function defaultCatalog() {
  if (current === null) current = loadCatalog(DEFAULT_CATALOG_JSON);
  return current;
}

/** Sets the catalog the VCM Suite-compatible helpers use; returns it. */
export function useCatalog(catalog) {
  current = loadCatalog(catalog);
  return current;
}

// ------------------------------------------------------------------ stateful engine

/**
 * A catalog and one subject's entitlements, loaded once. Answers by name
 * (decisions with reasons) or, on the hot path, by index with `check`.
 */
export class Engine {
  #h;
  #catalog;
  // Per product: [effective tier + 1, from ms, until ms), as computed by the core.
  #window;
  constructor(catalog, entitlements) {
    ensureReady();
    this.#catalog = catalogOrDefault(catalog);
    this.#h = new EngineHandle(this.#catalog[HANDLE], objectOf('entitlements', entitlements));
    this.#window = new Float64Array(3 * this.#h.productCount).fill(NaN);
  }
  get catalog() {
    return this.#catalog;
  }
  /** Replaces the entitlements (a new snapshot) and drops the cache. */
  setEntitlements(entitlements) {
    this.#h.setEntitlements(objectOf('entitlements', entitlements));
    this.#window.fill(NaN);
    return this;
  }
  hasAccess(product, tier, now) {
    return JSON.parse(this.#h.hasAccess(str('product', product), str('tier', tier), nowMs(now)));
  }
  can(capability, now) {
    return JSON.parse(this.#h.can(str('capability', capability), nowMs(now)));
  }
  /** A limit's value: a whole number or "unlimited". */
  limit(name, now) {
    return this.limitInfo(name, now).limit;
  }
  /** A limit's value with the tier it comes from and until when it holds. */
  limitInfo(name, now) {
    return JSON.parse(this.#h.limit(str('limit', name), nowMs(now)));
  }
  checkLimit(name, used, now) {
    return JSON.parse(this.#h.checkLimit(str('limit', name), count('used', used), nowMs(now)));
  }
  /**
   * May `quantity` (default 1) of a capability, limit or credit pool be used now,
   * given `used` (default 0) so far in a limit's window? The metered decision of the
   * worker's `POST /v1/check`, from these entitlements alone: a pool reads `balances`,
   * and its `resets_at` is when a subscription among the grants next refills it (null:
   * nothing refills it).
   */
  checkFeature(feature, quantity, used, now) {
    const q = quantity === undefined || quantity === null ? 1 : count('quantity', quantity);
    const u = used === undefined || used === null ? 0 : count('used', used);
    return JSON.parse(this.#h.checkFeature(str('feature', feature), q, u, nowMs(now)));
  }
  exportPolicy(now) {
    return JSON.parse(this.#h.exportPolicy(nowMs(now)));
  }
  /** Every tool of `page` (every tool when `page` is omitted or null) at once. */
  pageState(page, usage, now) {
    const p = page === undefined || page === null ? undefined : str('page', page);
    return JSON.parse(this.#h.pageState(p, objectOf('usage', usage), nowMs(now)));
  }
  toolState(id, usage, now) {
    return JSON.parse(this.#h.toolState(str('tool', id), objectOf('usage', usage), nowMs(now)));
  }
  productIndex(product) {
    return this.#h.productIndex(str('product', product));
  }
  tierIndex(product, tier) {
    return this.#h.tierIndex(str('product', product), str('tier', tier));
  }
  /**
   * The hot path: does the subject hold at least tier `tierIx` of product
   * `productIx` (from `productIndex` / `tierIndex`) at `nowMs` (epoch ms,
   * default Date.now())? Indices the catalog does not have, and a non-finite
   * `nowMs`, answer false; an index that is not a whole number >= 0 is a TypeError.
   */
  check(productIx, tierIx, nowMs) {
    if (productIx >>> 0 !== productIx || tierIx >>> 0 !== tierIx) {
      throw new TypeError('tollgate: check() takes indices from productIndex() and tierIndex()');
    }
    const now = nowMs === undefined ? Date.now() : nowMs;
    // The core computed this product's answer together with the window it
    // holds for: inside that window no call into WebAssembly is needed.
    const w = this.#window;
    const k = 3 * productIx;
    if (w[k + 1] <= now && now < w[k + 2]) return w[k] > tierIx;
    return this.#refresh(productIx, tierIx, now);
  }
  #refresh(productIx, tierIx, now) {
    const w = this.#window;
    const k = 3 * productIx;
    if (k >= w.length || typeof now !== 'number' || !Number.isFinite(now)) return this.#h.check(productIx, tierIx, now);
    const fresh = this.#h.window(productIx, now);
    w[k] = fresh[0];
    w[k + 1] = fresh[1];
    w[k + 2] = fresh[2];
    return fresh[0] > tierIx;
  }
  /** The next instant (RFC 3339) at which any answer can change; null: none. */
  nextChange(now) {
    return this.#h.nextChange(nowMs(now)) ?? null;
  }
  /** Releases the WebAssembly memory now (otherwise the garbage collector does). */
  free() {
    this.#h.free();
  }
}

// ------------------------------------------------------------------ VCM Suite-compatible helpers

function rowsOf(entitlements) {
  if (entitlements === undefined || entitlements === null) return undefined;
  const rows = objectOf('entitlements', entitlements);
  if (!Array.isArray(rows)) {
    throw new TypeError(`tollgate: entitlements must be an array of cloud_entitlements rows, got ${describe(rows)}`);
  }
  return rows;
}

/**
 * The VCM Suite's `hasAccess(entitlements, cloud, requiredTier)` over
 * `cloud_entitlements` rows, with tollgate's access rules (trials count,
 * expiry and `valid_from` apply, the highest valid row wins).
 */
export function hasAccess(entitlements, cloud, requiredTier, now) {
  const c = defaultCatalog()[HANDLE];
  return rowsHasAccess(c, rowsOf(entitlements), str('cloud', cloud), str('requiredTier', requiredTier), nowMs(now));
}

/** `hasAccess` with its explanation: a Decision. */
export function explainAccess(entitlements, cloud, requiredTier, now) {
  const c = defaultCatalog()[HANDLE];
  return JSON.parse(
    rowsExplainAccess(c, rowsOf(entitlements), str('cloud', cloud), str('requiredTier', requiredTier), nowMs(now)),
  );
}

/** The VCM Suite's `resolveUserTier(user)`: the plan tier (unknown or missing: the default tier). */
export function resolveUserTier(user, now) {
  return wasmResolveUserTier(defaultCatalog()[HANDLE], userOf(user), nowMs(now));
}

function userHolds(user, capability, now) {
  return userAllowed(defaultCatalog()[HANDLE], userOf(user), capability, nowMs(now));
}

/** Capability ids the VCM Suite plan helpers read from the catalog. */
export const CAPABILITIES = Object.freeze({
  useAI: 'use_ai',
  exportFullRes: 'export_full_res',
  watermarkExports: 'watermark_exports',
  heavyTools: 'heavy_tools',
  multiStepHeavyTools: 'multi_step_heavy_tools',
});

export function canUseAI(user, now) {
  return userHolds(user, CAPABILITIES.useAI, now);
}
export function canExportFullRes(user, now) {
  return userHolds(user, CAPABILITIES.exportFullRes, now);
}
export function shouldWatermarkExports(user, now) {
  return userHolds(user, CAPABILITIES.watermarkExports, now);
}
export function canUseHeavyTools(user, now) {
  return userHolds(user, CAPABILITIES.heavyTools, now);
}
export function canUseMultiStepHeavyTools(user, now) {
  return userHolds(user, CAPABILITIES.multiStepHeavyTools, now);
}

/** Any capability for a VCM Suite plan user, with its explanation: a Decision. */
export function explainUser(user, capability, now) {
  return JSON.parse(userCan(defaultCatalog()[HANDLE], userOf(user), str('capability', capability), nowMs(now)));
}

/** The VCM Suite's workflow rule: may another run start, given the runs already made today? */
export function workflowRunAllowed(user, runsToday, now) {
  return explainWorkflowRun(user, runsToday, now).allowed;
}

/** `workflowRunAllowed` with its explanation: a Decision. */
export function explainWorkflowRun(user, runsToday, now) {
  const c = defaultCatalog()[HANDLE];
  return JSON.parse(wasmWorkflowRunAllowed(c, userOf(user), count('runsToday', runsToday), nowMs(now)));
}

/**
 * The VCM Suite's export policy.
 * - `applyExportPolicy(user)` (or with `now` as the second argument when it is a
 *   Date, string or number): `{ policy: "full" | "watermarked" | "refused", message?, upgrade? }`.
 * - `applyExportPolicy(user, payload)`, the original call shape: the payload when
 *   the user may export, `null` when not ("Upgrade to export.").
 */
export function applyExportPolicy(user, payloadOrNow, now) {
  const isPayload = payloadOrNow !== null && typeof payloadOrNow === 'object' && !(payloadOrNow instanceof Date);
  const when = isPayload ? now : payloadOrNow;
  const policy = JSON.parse(userExportPolicy(defaultCatalog()[HANDLE], userOf(user), nowMs(when)));
  if (!isPayload) return policy;
  return policy.policy === 'refused' ? null : payloadOrNow;
}

// ------------------------------------------------------------------ usage pricing

/**
 * The Video Studio app's usage price of `seconds` of `model` at `quality`, from the
 * catalog's `[usage]` table: the core's `usage::quote`, the same function the
 * worker charges with, so a price shown in the browser is the price charged.
 * `catalog`: a Catalog, JSON text or a catalog object (null: the default catalog).
 * A question the catalog cannot answer throws an Error whose `code` is
 * `no_usage_pricing`, `unknown_rate`, `out_of_range` or `overflow`.
 */
export function quote(catalog, model, quality, seconds) {
  ensureReady();
  const c = catalogOrDefault(catalog);
  return JSON.parse(wasmQuote(c[HANDLE], str('model', model), str('quality', quality), count('seconds', seconds)));
}

// ------------------------------------------------------------------ money

/**
 * `{ amount, currency }` in integer minor units as people read it, by the core's
 * formatter (the one that writes every upgrade's `display`): "$59.00", "₹499.00",
 * "1.500 KWD" (fils are thousandths), "500 JPY" (yen have no minor unit).
 */
export function formatMoney(money) {
  ensureReady();
  if (money === null || typeof money !== 'object') {
    throw new TypeError(`tollgate: formatMoney takes { amount, currency }, got ${describe(money)}`);
  }
  if (typeof money.amount !== 'number') {
    throw new TypeError(`tollgate: \`amount\` must be a number of minor units, got ${describe(money.amount)}`);
  }
  return wasmFormatMoney(money.amount, str('currency', money.currency));
}

/** Digits of a currency's minor unit, as the core counts them: 0 (JPY), 3 (KWD) or 2. */
export function minorDigits(currency) {
  ensureReady();
  return wasmMinorDigits(str('currency', currency));
}

// ------------------------------------------------------------------ signed entitlement snapshots

function snapshotTypeError(message) {
  const e = new TypeError(`tollgate: ${message}`);
  e.code = 'malformed_snapshot';
  return e;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A trusted public key: text (64 hex digits or base64url) as it is, bytes as hex. */
function publicKeyText(kid, key) {
  if (typeof key === 'string') return key;
  let bytes = null;
  if (key instanceof ArrayBuffer) bytes = new Uint8Array(key);
  else if (ArrayBuffer.isView(key)) bytes = new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
  if (bytes === null) {
    const e = new TypeError(
      `tollgate: trusted public key \`${kid}\` must be text (64 hex digits or base64url) or bytes, got ${describe(key)}`,
    );
    e.code = 'invalid_key';
    throw e;
  }
  let hex = '';
  for (const b of bytes) hex += HEX[b];
  return hex;
}

/**
 * Verifies a signed entitlement snapshot (the token `GET /v1/entitlements`
 * returns) with the public keys alone, using the core's verifier: the Ed25519
 * signature over the exact payload, the key id, the expiry and issue time
 * against `now` and, when `subject` is given, that the snapshot describes it.
 * `keys`: `{ [kid]: publicKey }` (or a Map), each key 64 hex digits, base64url
 * or 32 bytes. Returns the snapshot (its `grants` and `balances` feed an
 * Engine directly); a refusal throws an Error whose `code` is the core's:
 * `malformed_snapshot`, `bad_signature`, `unknown_key`, `invalid_key`,
 * `expired`, `not_yet_valid` or `wrong_subject`.
 */
export function verifySnapshot(token, keys, subject, now) {
  ensureReady();
  if (typeof token !== 'string') throw snapshotTypeError(`the snapshot token must be a string, got ${describe(token)}`);
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) {
    throw new TypeError(`tollgate: \`keys\` must be an object { kid: publicKey }, got ${describe(keys)}`);
  }
  const kids = [];
  const texts = [];
  for (const [kid, key] of keys instanceof Map ? keys : Object.entries(keys)) {
    kids.push(str('key id', kid));
    texts.push(publicKeyText(kid, key));
  }
  const who = subject === undefined || subject === null ? undefined : str('subject', subject);
  return JSON.parse(wasmVerifySnapshot(token, kids, texts, who, nowMs(now)));
}

// ------------------------------------------------------------------ organizations

function membershipOf(snapshot, organizationId) {
  if (snapshot === null || typeof snapshot !== 'object') {
    throw new TypeError(`tollgate: expected a verified snapshot (verifySnapshot's answer), got ${describe(snapshot)}`);
  }
  const orgs = snapshot.organizations ?? [];
  const m = organizationId === undefined || organizationId === null ? orgs[0] : orgs.find((o) => o.id === organizationId);
  return m ?? null;
}

/**
 * A member's entitlements through an organization of its verified snapshot, in the
 * shape the Org Seats app's `getUserEntitlements` returns: `{ organizationId, name,
 * role, tier, status, seatCount, seatsUsed, seatsAvailable, hasSeat, inGracePeriod,
 * gracePeriodEndsAt, features, limits, hasFeatureAccess(feature) }`, decided by the core
 * at `now` (a member without a seat holds none of the plan's features). `organizationId`:
 * which one (default: the first); `null` when the user is not a member.
 * `catalog`: a Catalog, JSON text or a catalog object (null: the default catalog).
 */
export function getOrganizationEntitlements(snapshot, organizationId, { catalog, now } = {}) {
  ensureReady();
  const m = membershipOf(snapshot, organizationId);
  if (!m) return null;
  const c = catalogOrDefault(catalog);
  const at = nowMs(now);
  const ents = JSON.parse(wasmOrgEntitlements(c[HANDLE], m, at));
  Object.defineProperty(ents, 'hasFeatureAccess', {
    value: (feature) => wasmOrgFeatureAccess(c[HANDLE], m, str('feature', feature), at),
    enumerable: false,
  });
  return ents;
}

/**
 * May the member use `feature` through organization `organizationId` (default: the
 * first) of its verified snapshot at `now`? Only with a seat, only what the tier gives.
 */
export function hasFeatureAccess(snapshot, feature, organizationId, { catalog, now } = {}) {
  ensureReady();
  const m = membershipOf(snapshot, organizationId);
  if (!m) return false;
  const c = catalogOrDefault(catalog);
  return wasmOrgFeatureAccess(c[HANDLE], m, str('feature', feature), nowMs(now));
}

// ------------------------------------------------------------------ notices

/**
 * What a verified snapshot tells its subject at `now`: `{ warnings, payments }`, the
 * core's `notices`. `warnings` are the snapshot's open alerts (what the app was sent)
 * and the catalog's thresholds the snapshot's numbers cross now, under the server's
 * rule ids (one crossing, one warning): a limit given `used[limit]` (what its current
 * window used, e.g. from `GET /v1/usage`), a credit pool from the balances, a failed
 * payment's grace. `payments`: each payment due with its amount written by the core
 * (`amount_display`), the grace end and whether it still lasts; a payment due is told
 * there only, never also as a `payment_failed` warning.
 * `catalog`: a Catalog, JSON text or a catalog object (null: the default catalog).
 */
export function notices(snapshot, { catalog, used, now } = {}) {
  ensureReady();
  if (snapshot === null || typeof snapshot !== 'object') {
    throw new TypeError(`tollgate: expected a verified snapshot (verifySnapshot's answer), got ${describe(snapshot)}`);
  }
  const c = catalogOrDefault(catalog);
  return JSON.parse(wasmNotices(c[HANDLE], snapshot, used ?? null, nowMs(now)));
}
