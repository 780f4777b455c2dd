// tollgate: the JavaScript face of the Rust core (compiled to WebAssembly).
//
// This file is the browser / bundler entry and the shared wrapper: `node.js`
// and `workerd.js` load the .wasm synchronously and re-export everything here.
// In a browser, `await init()` once before the first call.
//
// The wrapper converts `now` (Date | RFC 3339 string | epoch ms; omitted:
// Date.now(), read here and never in the core), turns objects into JSON for the
// core and its JSON answers back into plain objects, and keeps the default
// catalog (the bundled VCM Suite catalog) for the seed-compatible helpers.

import initWasm, {
  initSync as initWasmSync,
  CatalogHandle,
  EngineHandle,
  parseTime,
  seedHasAccess,
  seedExplainAccess,
  resolveUserTier as wasmResolveUserTier,
  userCan,
  userAllowed,
  userExportPolicy,
  workflowRunAllowed as wasmWorkflowRunAllowed,
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
        throw e;
      },
    );
  }
  await loading;
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
      'tollgate: the WebAssembly module is not loaded yet; call `await init()` first ' +
        '(Node and Cloudflare Workers load it on import)',
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

function toJson(what, v) {
  if (typeof v === 'string') return v;
  let s;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    throw new TypeError(`tollgate: ${what} cannot be turned into JSON: ${e.message}`);
  }
  if (s === undefined) throw new TypeError(`tollgate: ${what} must be an object, got ${describe(v)}`);
  return s;
}

/** Seed 001's user: only the fields the helpers read cross the boundary. */
function userJson(user) {
  if (user === undefined || user === null) return undefined;
  if (typeof user !== 'object') throw new TypeError(`tollgate: \`user\` must be an object or null, got ${describe(user)}`);
  const tier = typeof user.subscription_tier === 'string' ? user.subscription_tier : null;
  if (user.entitlements === undefined || user.entitlements === null) {
    return tier === null ? '{}' : `{"subscription_tier":${JSON.stringify(tier)}}`;
  }
  return toJson('user', { subscription_tier: tier, entitlements: user.entitlements });
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
  const json = toJson('catalog', src);
  return new Catalog(CatalogHandle.fromJson(json), json);
}

let current = null;

/** The catalog the seed-compatible helpers use (default: the bundled VCM Suite catalog). */
export function defaultCatalog() {
  if (current === null) current = loadCatalog(DEFAULT_CATALOG_JSON);
  return current;
}

/** Sets the catalog the seed-compatible helpers use; returns it. */
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
  constructor(catalog, entitlements) {
    ensureReady();
    this.#catalog = catalog === undefined || catalog === null ? defaultCatalog() : loadCatalog(catalog);
    const ents = entitlements === undefined || entitlements === null ? undefined : toJson('entitlements', entitlements);
    this.#h = new EngineHandle(this.#catalog[HANDLE], ents);
  }
  get catalog() {
    return this.#catalog;
  }
  /** Replaces the entitlements (a new snapshot) and drops the cache. */
  setEntitlements(entitlements) {
    this.#h.setEntitlements(toJson('entitlements', entitlements ?? { grants: [] }));
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
  exportPolicy(now) {
    return JSON.parse(this.#h.exportPolicy(nowMs(now)));
  }
  /** Every tool of `page` (every tool when `page` is omitted or null) at once. */
  pageState(page, usage, now) {
    const p = page === undefined || page === null ? undefined : str('page', page);
    const u = usage === undefined || usage === null ? undefined : toJson('usage', usage);
    return JSON.parse(this.#h.pageState(p, u, nowMs(now)));
  }
  toolState(id, usage, now) {
    const u = usage === undefined || usage === null ? undefined : toJson('usage', usage);
    return JSON.parse(this.#h.toolState(str('tool', id), u, nowMs(now)));
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
    return this.#h.check(productIx, tierIx, nowMs === undefined ? Date.now() : nowMs);
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

// ------------------------------------------------------------------ seed-compatible helpers

function rowsJson(entitlements) {
  if (entitlements === undefined || entitlements === null) return 'null';
  if (!Array.isArray(entitlements) && typeof entitlements !== 'string') {
    throw new TypeError(`tollgate: entitlements must be an array of cloud_entitlements rows, got ${describe(entitlements)}`);
  }
  return toJson('entitlements', entitlements);
}

/**
 * Seed 000's `hasAccess(entitlements, cloud, requiredTier)` over
 * `cloud_entitlements` rows, with tollgate's access rules (trials count,
 * expiry and `valid_from` apply, the highest valid row wins).
 */
export function hasAccess(entitlements, cloud, requiredTier, now) {
  const c = defaultCatalog()[HANDLE];
  return seedHasAccess(c, rowsJson(entitlements), str('cloud', cloud), str('requiredTier', requiredTier), nowMs(now));
}

/** `hasAccess` with its explanation: a Decision. */
export function explainAccess(entitlements, cloud, requiredTier, now) {
  const c = defaultCatalog()[HANDLE];
  return JSON.parse(
    seedExplainAccess(c, rowsJson(entitlements), str('cloud', cloud), str('requiredTier', requiredTier), nowMs(now)),
  );
}

/** Seed 001's `resolveUserTier(user)`: the plan tier (unknown or missing: the default tier). */
export function resolveUserTier(user, now) {
  return wasmResolveUserTier(defaultCatalog()[HANDLE], userJson(user), nowMs(now));
}

function userHolds(user, capability, now) {
  return userAllowed(defaultCatalog()[HANDLE], userJson(user), capability, nowMs(now));
}

/** Capability ids the seed-001 helpers read from the catalog. */
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

/** Any capability for a seed-001 user, with its explanation: a Decision. */
export function explainUser(user, capability, now) {
  return JSON.parse(userCan(defaultCatalog()[HANDLE], userJson(user), str('capability', capability), nowMs(now)));
}

/** Seed 001's workflow rule: may another run start, given the runs already made today? */
export function workflowRunAllowed(user, runsToday, now) {
  return explainWorkflowRun(user, runsToday, now).allowed;
}

/** `workflowRunAllowed` with its explanation: a Decision. */
export function explainWorkflowRun(user, runsToday, now) {
  const c = defaultCatalog()[HANDLE];
  return JSON.parse(wasmWorkflowRunAllowed(c, userJson(user), count('runsToday', runsToday), nowMs(now)));
}

/**
 * Seed 001's export policy.
 * - `applyExportPolicy(user)` (or with `now` as the second argument when it is a
 *   Date, string or number): `{ policy: "full" | "watermarked" | "refused", message?, upgrade? }`.
 * - `applyExportPolicy(user, payload)`, the seed's call shape: the payload when
 *   the user may export, `null` when not ("Upgrade to export.").
 */
export function applyExportPolicy(user, payloadOrNow, now) {
  const isPayload = payloadOrNow !== null && typeof payloadOrNow === 'object' && !(payloadOrNow instanceof Date);
  const when = isPayload ? now : payloadOrNow;
  const policy = JSON.parse(userExportPolicy(defaultCatalog()[HANDLE], userJson(user), nowMs(when)));
  if (!isPayload) return policy;
  return policy.policy === 'refused' ? null : payloadOrNow;
}
