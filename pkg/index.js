// tollgate: the JavaScript face of the Rust core (compiled to WebAssembly).
//
// This file is the browser / bundler entry and the shared wrapper: `node.js`
// and `workerd.js` load the .wasm synchronously and re-export everything here.
// In a browser, `await init()` once before the first call.
//
// The wrapper converts `now` (Date | RFC 3339 string | epoch ms; omitted:
// Date.now(), read here and never in the core), hands objects to the core as
// they are (JSON text is parsed here first), turns the core's answers into
// plain objects, keeps the catalog set with `useCatalog` for the VCM Suite-compatible
// helpers (the package carries none of its own), and keeps answers of the core
// together with the window the core says they hold for, so that asking again
// inside it does not cross into WebAssembly. It decides nothing itself.

import initWasm, {
  initSync as initWasmSync,
  CatalogHandle,
  EngineHandle,
  parseTime,
  rowsHasAccess,
  rowsExplainAccess,
  rowsWindow,
  rowsWindowPacked,
  formatTime,
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

/** The largest `now` the core accepts (JS Date's own limit, in epoch ms). */
const MAX_MS = 8.64e15;

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
    // `input` may be a Promise of any of them (as a `fetch` is).
    loading = Promise.resolve(input).then((x) => initWasm(x === undefined ? undefined : { module_or_path: x })).then(
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

/**
 * An object input as the JSON text the core reads: null or undefined stay absent,
 * a string is JSON text (checked here, passed as it is), anything else is written
 * with JSON.stringify.
 */
function jsonOf(what, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') return textOf(what, v);
  try {
    JSON.parse(v);
  } catch (e) {
    throw new TypeError(`tollgate: invalid ${what}: not valid JSON: ${e.message}`);
  }
  return v;
}

/**
 * An object as JSON text. A value JSON cannot write is refused here, never passed on as
 * absent: `JSON.stringify` gives nothing for a symbol or a function (nor for a `toJSON`
 * that returns nothing), which would read as "no entitlements", and NaN or Infinity
 * become `null`; a BigInt or a cycle throws without naming the input.
 */
function textOf(what, v) {
  if (typeof v !== 'object') {
    throw new TypeError(`tollgate: invalid ${what}: an object or JSON text is needed, got ${describe(v)}`);
  }
  let text;
  try {
    text = JSON.stringify(v);
  } catch (e) {
    throw new TypeError(`tollgate: invalid ${what}: cannot be written as JSON: ${e.message}`, { cause: e });
  }
  if (text === undefined) throw new TypeError(`tollgate: invalid ${what}: its toJSON() gave nothing`);
  return text;
}

/** An object input as an object: a string is JSON text, parsed here. */
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
  const grants = user.entitlements;
  // Grants that are not a list are the core's to name, but a number, symbol or function
  // would be written as `null` or left out, read as "no grants": refused here.
  if (grants !== undefined && grants !== null && typeof grants !== 'object') {
    throw new TypeError(`tollgate: \`user.entitlements\` must be a list of grants, got ${describe(grants)}`);
  }
  return textOf('user', { subscription_tier: tier, entitlements: grants ?? null });
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
  // A value, with the objects and arrays it opens kept on a stack (not the call stack:
  // a deeply nested text is scanned to its error like any other).
  const value = () => {
    const open = [];
    const key = () => {
      ws();
      if (text[i] !== '"') fail();
      str();
      ws();
      if (text[i] !== ':') fail();
      i++;
    };
    for (;;) {
      ws();
      const c = text[i];
      if (c === '{' || c === '[') {
        i++;
        ws();
        if (text[i] !== (c === '{' ? '}' : ']')) {
          open.push(c);
          if (c === '{') key();
          continue;
        }
        i++;
      } else if (c === '"') str();
      else if (c === 't') lit('true');
      else if (c === 'f') lit('false');
      else if (c === 'n') lit('null');
      else {
        const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
        if (!m) fail();
        i += m[0].length;
      }
      // A value ended: close what it ended, then the next member or element.
      for (;;) {
        if (open.length === 0) return;
        ws();
        const top = open[open.length - 1];
        if (text[i] === ',') {
          i++;
          if (top === '{') key();
          break;
        }
        if (text[i] !== (top === '{' ? '}' : ']')) fail();
        i++;
        open.pop();
      }
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

const TABLES = Symbol('tollgate.tables');

/**
 * The names the core's compact answers refer to by index, read from the core once
 * per catalog: product and tier indices by name, tool ids and labels, each offer's
 * upgrade (frozen: shared by every answer that names it), reason names by code.
 */
function tablesOf(catalog) {
  let t = catalog[TABLES];
  if (t === undefined) {
    const raw = JSON.parse(catalog[HANDLE].tables());
    const products = new Map();
    raw.products.forEach((p, i) => {
      const tiers = new Map();
      p.tiers.forEach((tier, j) => tiers.set(tier, j));
      products.set(p.id, { index: i, tiers });
    });
    t = {
      // The names asked last, resolved: a shortcut for the VCM Suite helpers' hot calls.
      lastCloud: undefined,
      lastTier: undefined,
      lastProduct: undefined,
      lastTierIx: undefined,
      products,
      tierNames: raw.products.map((p) => p.tiers),
      tools: raw.tools,
      upgrades: raw.upgrades.map(deepFreeze),
      reasons: raw.reasons,
    };
    catalog[TABLES] = t;
  }
  return t;
}

function deepFreeze(v) {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const k of Object.keys(v)) deepFreeze(v[k]);
    Object.freeze(v);
  }
  return v;
}

/** An instant as the core writes it (RFC 3339, UTC), remembered: answers repeat a few. */
const TIME_TEXT = new Map();
function timeText(ms) {
  let s = TIME_TEXT.get(ms);
  if (s === undefined) {
    if (TIME_TEXT.size >= 256) TIME_TEXT.clear();
    s = formatTime(ms);
    TIME_TEXT.set(ms, s);
  }
  return s;
}

/**
 * Parses and validates a catalog: JSON text (`GET /v1/catalog`'s body, or a file the
 * app built with `tollgate catalog check --json`) or the parsed object. Errors name
 * the field (`error.path`) and, for JSON text, the line (`error.line`).
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
  const text = typeof src === 'string' ? src : textOf('catalog', doc);
  return new Catalog(CatalogHandle.fromJson(text), text);
}

function catalogError(message, path, line) {
  const e = new Error(message);
  e.path = path;
  e.line = line;
  return e;
}

let current = null;

/**
 * The catalog set with `useCatalog`. The package carries no catalog of its own:
 * without one set, this throws an Error whose `code` is `no_catalog`.
 */
function currentCatalog() {
  if (current === null) {
    ensureReady();
    const e = new Error(
      'tollgate: no catalog is set; call useCatalog(loadCatalog(json)) first, with the text of ' +
        'GET /v1/catalog (or a catalog JSON file your app built)',
    );
    e.code = 'no_catalog';
    throw e;
  }
  return current;
}

/** `catalog` as a Catalog (a Catalog, JSON text or a catalog object); null or undefined: the one set with `useCatalog`. */
function catalogOrCurrent(catalog) {
  return catalog === undefined || catalog === null ? currentCatalog() : loadCatalog(catalog);
}

/**
 * Sets the catalog the VCM Suite-compatible helpers (and every call whose catalog
 * is omitted) use: a Catalog, JSON text (e.g. GET /v1/catalog's body) or a catalog
 * object. Returns it.
 */
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
  #handle;
  #catalog;
  // Per product: [effective tier + 1, from ms, until ms), as computed by the core.
  #window;
  // Per product name, per tier name: { d: the core's Decision (frozen), lo, hi }:
  // the answer holds for lo <= now < hi, the window the core gives with it.
  #decisions = new Map();
  #grantIds = null;
  constructor(catalog, entitlements) {
    ensureReady();
    this.#catalog = catalogOrCurrent(catalog);
    this.#handle = new EngineHandle(this.#catalog[HANDLE], jsonOf('entitlements', entitlements));
    this.#window = new Float64Array(3 * this.#h.productCount).fill(NaN);
  }
  /** The core's engine; after `free()`, an Error that says so. */
  get #h() {
    if (this.#handle === null) {
      const e = new Error('tollgate: this Engine was freed (free() was called): make a new Engine');
      e.code = 'engine_freed';
      throw e;
    }
    return this.#handle;
  }
  get catalog() {
    return this.#catalog;
  }
  /** Replaces the entitlements (a new snapshot) and drops the cache. */
  setEntitlements(entitlements) {
    this.#h.setEntitlements(jsonOf('entitlements', entitlements));
    this.#window.fill(NaN);
    this.#decisions.clear();
    this.#grantIds = null;
    return this;
  }
  /**
   * Does the subject hold at least `tier` of `product`? A Decision (frozen: the
   * same answer is handed out again while the core says it holds).
   */
  hasAccess(product, tier, now) {
    const at = nowMs(now);
    let byTier = this.#decisions.get(product);
    const hit = byTier?.get(tier);
    if (hit !== undefined && hit.lo <= at && at < hit.hi && Math.abs(at) <= MAX_MS) return hit.d;
    const d = deepFreeze(JSON.parse(this.#h.hasAccess(str('product', product), str('tier', tier), at)));
    // The product exists (the core answered): its window is the answer's.
    const w = this.#h.window(tablesOf(this.#catalog).products.get(product).index, at);
    let [lo, hi] = [w[1], w[2]];
    if (!d.allowed) {
      // The offer shown (or its absence) depends on what is held of every product: kept
      // from now until the next change of any grant.
      const next = this.#h.nextChange(at);
      lo = at;
      if (next != null) hi = Math.min(hi, Date.parse(next));
    }
    if (byTier === undefined) this.#decisions.set(product, (byTier = new Map()));
    byTier.set(tier, { d, lo, hi });
    return d;
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
  /**
   * Every tool of `page` (every tool when `page` is omitted or null) at once. The
   * core answers in numbers; the names come from tables it gave once per catalog,
   * and each `upgrade` is the catalog's (frozen) object for that offer.
   */
  pageState(page, usage, now) {
    const p = page === undefined || page === null ? undefined : str('page', page);
    const v = this.#h.pageVerdicts(p, jsonOf('usage', usage), nowMs(now));
    const t = tablesOf(this.#catalog);
    const out = new Array(v.length / 8);
    for (let i = 0, k = 0; k < v.length; i++, k += 8) {
      const tool = t.tools[v[k]];
      const allowed = v[k + 1] === 1;
      const decision = {
        allowed,
        reason: t.reasons[v[k + 2]],
        tier: v[k + 4] === 0 ? null : t.tierNames[v[k + 3]][v[k + 4] - 1],
      };
      if (v[k + 5] !== 0) decision.grant = this.#grantId(v[k + 5] - 1);
      decision.holds_until = Number.isNaN(v[k + 6]) ? null : timeText(v[k + 6]);
      if (v[k + 7] !== 0) decision.upgrade = t.upgrades[v[k + 7] - 1];
      out[i] = { tool: tool.id, label: tool.label, locked: !allowed, decision };
    }
    return out;
  }
  #grantId(i) {
    if (this.#grantIds === null) this.#grantIds = this.#h.grantIds();
    return this.#grantIds[i];
  }
  toolState(id, usage, now) {
    return JSON.parse(this.#h.toolState(str('tool', id), jsonOf('usage', usage), nowMs(now)));
  }
  /**
   * Every offer that would allow a denied question, cheapest first, decided by the core
   * (`offers_unlocking`): none the subject holds already, each meeting every requirement;
   * the first is the one the denial names. Empty when the question is allowed.
   */
  offersUnlocking(question, now) {
    const q = question;
    if (q === null || typeof q !== 'object') throw new TypeError('a question is an object: {product, tier}, {capability}, {tool, usage?} or {limit, used}');
    const at = nowMs(now);
    const h = this.#h;
    let text;
    if ('product' in q) text = h.offersUnlocking('product', str('product', q.product), str('tier', q.tier), 0, undefined, at);
    else if ('capability' in q) text = h.offersUnlocking('capability', str('capability', q.capability), '', 0, undefined, at);
    else if ('tool' in q) text = h.offersUnlocking('tool', str('tool', q.tool), '', 0, jsonOf('usage', q.usage), at);
    else if ('limit' in q) text = h.offersUnlocking('limit', str('limit', q.limit), '', count('used', q.used), undefined, at);
    else throw new TypeError('a question names a product and tier, a capability, a tool, or a limit and its use');
    return JSON.parse(text);
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
  check(productIx, tierIx, at) {
    if (productIx >>> 0 !== productIx || tierIx >>> 0 !== tierIx) {
      throw new TypeError('tollgate: check() takes indices from productIndex() and tierIndex()');
    }
    // Epoch ms as it is (NaN included: false); anything else as every other `now` is read
    // (null and omitted: the clock), never coerced by WebAssembly (null would be 1970).
    const now = typeof at === 'number' ? at : nowMs(at);
    // The core computed this product's answer together with the window it
    // holds for: inside that window no call into WebAssembly is needed.
    const w = this.#window;
    const k = 3 * productIx;
    if (typeof now === 'number' && w[k + 1] <= now && now < w[k + 2]) return w[k] > tierIx;
    return this.#refresh(productIx, tierIx, now);
  }
  #refresh(productIx, tierIx, now) {
    const w = this.#window;
    const k = 3 * productIx;
    if (k >= w.length || typeof now !== 'number' || !Number.isFinite(now)) return this.#h.check(productIx, tierIx, now);
    const fresh = this.#h.window(productIx, now);
    w[k] = fresh[0];
    // Kept within the times the core answers for (|now| <= MAX_MS): outside them it is
    // asked, and answers false.
    w[k + 1] = Math.max(fresh[1], -MAX_MS);
    w[k + 2] = Math.min(fresh[2], MAX_MS + 1);
    return fresh[0] > tierIx;
  }
  /** The next instant (RFC 3339) at which any answer can change; null: none. */
  nextChange(now) {
    return this.#h.nextChange(nowMs(now)) ?? null;
  }
  /**
   * Releases the WebAssembly memory now (otherwise the garbage collector does). Every
   * later call throws (code `engine_freed`); a second `free()` does nothing.
   */
  free() {
    if (this.#handle === null) return;
    this.#handle.free();
    this.#handle = null;
    this.#window.fill(NaN);
    this.#decisions.clear();
  }
}

// ------------------------------------------------------------------ VCM Suite-compatible helpers

/** Rows as the JSON text the core reads (absent: none). */
function rowsText(entitlements) {
  const rows = rowsOf(entitlements);
  return rows === undefined ? undefined : typeof entitlements === 'string' ? entitlements : JSON.stringify(rows);
}

function rowsOf(entitlements) {
  if (entitlements === undefined || entitlements === null) return undefined;
  const rows = objectOf('entitlements', entitlements);
  if (!Array.isArray(rows)) {
    throw new TypeError(`tollgate: entitlements must be an array of cloud_entitlements rows, got ${describe(rows)}`);
  }
  return rows;
}

// What the core answered about a rows array, kept per array: the catalog, every
// field of the rows the core reads (in order) and, per product, the effective tier
// with the window the core says it holds for. A later call with the same array
// whose fields are all still the same values answers from there inside the window
// (an exact check, no copy into the core); otherwise the core is asked again.
// The last few arrays are kept in a small ring; one that was asked about again
// moves on to a WeakMap when it leaves the ring (arrays used once never reach it:
// weak entries cost the garbage collector more than the answer they keep).
const RING = 4;
const ring = [];
let ringAt = 0;
const ROWS = new WeakMap();
let lastEntry = null; // the entry asked about last (a shortcut into the ring or the map)
const UTF8 = new TextEncoder();
let packBuf = new Uint8Array(4096);
const NO_ROWS = new WeakMap(); // per catalog: the same for no rows at all

/** The fields of the rows the core reads (see `rowsWindowPacked`), 12 per row in order. */
function rowFields(rows) {
  const vals = new Array(rows.length * 12);
  for (let i = 0, k = 0; i < rows.length; i++, k += 12) {
    const r = rows[i];
    if (r === null || typeof r !== 'object') continue;
    vals[k] = r.id;
    vals[k + 1] = r.cloud_id;
    vals[k + 2] = r.tier;
    vals[k + 3] = r.source;
    vals[k + 4] = r.status;
    vals[k + 5] = r.valid_from;
    vals[k + 6] = r.valid_to;
    vals[k + 7] = r.created_at;
    vals[k + 8] = r.updated_at;
    vals[k + 9] = r.past_due_since;
    vals[k + 10] = r.offer_key;
    vals[k + 11] = r.source_ref;
  }
  return vals;
}

/**
 * The rows as one string for the core: each field after U+001F, null as nothing,
 * a string as "=" and its text. null when a row is not an object or a value is
 * neither a string nor null (then the objects themselves go, and the core names
 * what is wrong); the core also declines text it cannot read exactly.
 */
function packRows(rows, vals) {
  if (rows.toJSON !== undefined) return null;
  let packed = '';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!plainRow(r) || !(r.user_id == null || typeof r.user_id === 'string')) return null;
  }
  for (let k = 0; k < vals.length; k++) {
    const v = vals[k];
    if (v === undefined || v === null) packed += '\u001f';
    else if (typeof v === 'string') packed += '\u001f=' + v;
    else return null;
  }
  // UTF-8 cannot carry a lone surrogate (encodeInto would put U+FFFD in its place): such
  // text goes as JSON, which the core declines exactly.
  return wellFormed(packed) ? packed : null;
}

/**
 * A row whose fields read here are the ones its JSON text carries: a plain object (an
 * array row, a class instance with getters or inherited fields, a row with `toJSON`
 * go to the core as JSON, every call).
 */
function plainRow(r) {
  if (r === null || typeof r !== 'object' || r.toJSON !== undefined) return false;
  const proto = Object.getPrototypeOf(r);
  return proto === Object.prototype || proto === null;
}

const wellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (s) => s.isWellFormed()
    : (s) => !/[\uD800-\uDFFF]/.test(s);

function sameRows(rows, vals) {
  if (rows.length * 12 !== vals.length || rows.toJSON !== undefined) return false;
  for (let i = 0, k = 0; i < rows.length; i++, k += 12) {
    const r = rows[i];
    if (
      r === null ||
      typeof r !== 'object' ||
      !plainRow(r) ||
      !(r.user_id == null || typeof r.user_id === 'string') ||
      r.id !== vals[k] ||
      r.cloud_id !== vals[k + 1] ||
      r.tier !== vals[k + 2] ||
      r.source !== vals[k + 3] ||
      r.status !== vals[k + 4] ||
      r.valid_from !== vals[k + 5] ||
      r.valid_to !== vals[k + 6] ||
      r.created_at !== vals[k + 7] ||
      r.updated_at !== vals[k + 8] ||
      r.past_due_since !== vals[k + 9] ||
      r.offer_key !== vals[k + 10] ||
      r.source_ref !== vals[k + 11]
    ) {
      return false;
    }
  }
  return true;
}

/** The kept answers for `entitlements` (rows, JSON text or nothing) under `catalog`. */
function rowsEntry(entitlements, catalog) {
  if (entitlements === undefined || entitlements === null) {
    let e = NO_ROWS.get(catalog);
    if (e === undefined) NO_ROWS.set(catalog, (e = newEntry([], catalog)));
    return e;
  }
  let cached = lastEntry !== null && lastEntry.rows === entitlements ? lastEntry : undefined;
  if (cached === undefined) {
    for (let i = 0; i < ring.length; i++) {
      if (ring[i].rows === entitlements) {
        cached = ring[i];
        break;
      }
    }
  }
  if (cached === undefined) cached = ROWS.get(entitlements);
  if (cached !== undefined && cached.catalog === catalog && cached.vals !== null && sameRows(entitlements, cached.vals)) {
    if (cached.hits === 0) cached.hits = 1;
    lastEntry = cached;
    return cached;
  }
  const rows = rowsOf(entitlements);
  const entry = newEntry(rows, catalog);
  if (rows === entitlements && entry.vals !== null) {
    const leaving = ring[ringAt];
    if (leaving !== undefined && leaving.hits > 0) ROWS.set(leaving.rows, leaving);
    ring[ringAt] = entry;
    ringAt = (ringAt + 1) % RING;
    // The array's latest answers (it may have been edited in place since the last ones).
    lastEntry = entry;
  }
  return entry;
}

/**
 * The kept answers for `rows`. Rows whose values are all strings and nulls are kept and
 * checked field by field on the next call; a row holding another value (a `Date`, say)
 * could change in place unseen, so such rows are asked about every time (`vals` null).
 */
function newEntry(rows, catalog) {
  const vals = rowFields(rows);
  const packed = packRows(rows, vals);
  return { catalog, rows, vals: packed === null ? null : vals, packed, windows: [], hits: 0 };
}

/**
 * The VCM Suite's `hasAccess(entitlements, cloud, requiredTier)` over
 * `cloud_entitlements` rows, with tollgate's access rules (trials count,
 * expiry and `valid_from` apply, the highest valid row wins). The core's answer
 * is kept per rows array for as long as the core says it holds, and is asked for
 * again when any field it read has changed.
 */
export function hasAccess(entitlements, cloud, requiredTier, now) {
  const at = nowMs(now);
  const catalog = currentCatalog();
  const names = tablesOf(catalog);
  let p, t;
  if (cloud === names.lastCloud && requiredTier === names.lastTier) {
    p = names.lastProduct;
    t = names.lastTierIx;
  } else {
    p = names.products.get(cloud);
    t = p?.tiers.get(requiredTier);
    if (t !== undefined) {
      names.lastCloud = cloud;
      names.lastTier = requiredTier;
      names.lastProduct = p;
      names.lastTierIx = t;
    }
  }
  if (t === undefined || !(Math.abs(at) <= MAX_MS) || typeof entitlements === 'string') {
    // Unknown names, an out-of-range `now`, JSON text (read by the core as it is, a key
    // written twice included, as explainAccess reads it): the core's own answer and errors.
    return rowsHasAccess(catalog[HANDLE], rowsText(entitlements), str('cloud', cloud), str('requiredTier', requiredTier), at);
  }
  const e = rowsEntry(entitlements, catalog);
  const w = e.windows;
  const k = 3 * p.index;
  if (w[k + 1] <= at && at < w[k + 2]) return w[k] > t;
  let fresh;
  if (e.packed !== null) {
    if (packBuf.length < 3 * e.packed.length) packBuf = new Uint8Array(3 * e.packed.length + 1024);
    const { written } = UTF8.encodeInto(e.packed, packBuf);
    fresh = rowsWindowPacked(catalog[HANDLE], packBuf.subarray(0, written), e.rows.length, p.index, at);
  }
  if (fresh === undefined || fresh.length === 0) {
    fresh = rowsWindow(catalog[HANDLE], JSON.stringify(e.rows), p.index, at);
    // Not read from the fields kept here: nothing tells when it changes, so ask every time.
    e.vals = null;
    e.packed = null;
  }
  w[k] = fresh[0];
  w[k + 1] = fresh[1];
  w[k + 2] = fresh[2];
  return fresh[0] > t;
}

/** `hasAccess` with its explanation: a Decision. */
export function explainAccess(entitlements, cloud, requiredTier, now) {
  const c = currentCatalog()[HANDLE];
  return JSON.parse(
    rowsExplainAccess(c, rowsText(entitlements), str('cloud', cloud), str('requiredTier', requiredTier), nowMs(now)),
  );
}

/** The VCM Suite's `resolveUserTier(user)`: the plan tier (unknown or missing: the default tier). */
export function resolveUserTier(user, now) {
  return wasmResolveUserTier(currentCatalog()[HANDLE], userOf(user), nowMs(now));
}

function userHolds(user, capability, now) {
  return userAllowed(currentCatalog()[HANDLE], userOf(user), capability, nowMs(now));
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
  return JSON.parse(userCan(currentCatalog()[HANDLE], userOf(user), str('capability', capability), nowMs(now)));
}

/** The VCM Suite's workflow rule: may another run start, given the runs already made today? */
export function workflowRunAllowed(user, runsToday, now) {
  return explainWorkflowRun(user, runsToday, now).allowed;
}

/** `workflowRunAllowed` with its explanation: a Decision. */
export function explainWorkflowRun(user, runsToday, now) {
  const c = currentCatalog()[HANDLE];
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
  const policy = JSON.parse(userExportPolicy(currentCatalog()[HANDLE], userOf(user), nowMs(when)));
  if (!isPayload) return policy;
  return policy.policy === 'refused' ? null : payloadOrNow;
}

// ------------------------------------------------------------------ usage pricing

/**
 * The Video Studio app's usage price of `seconds` of `model` at `quality`, from the
 * catalog's `[usage]` table: the core's `usage::quote`, the same function the
 * worker charges with, so a price shown in the browser is the price charged.
 * `catalog`: a Catalog, JSON text or a catalog object (null: the one set with `useCatalog`).
 * A question the catalog cannot answer throws an Error whose `code` is
 * `no_usage_pricing`, `unknown_rate`, `out_of_range` or `overflow`.
 */
export function quote(catalog, model, quality, seconds) {
  ensureReady();
  const c = catalogOrCurrent(catalog);
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
  // Neither (an unset variable during a rotation, say): empty text, which the core refuses
  // as a key only when a token names it.
  if (bytes === null) return '';
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

/** An options argument: omitted or null, the defaults. */
function optionsOf(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError(`tollgate: options must be an object, got ${describe(options)}`);
  return options;
}

function membershipOf(snapshot, organizationId) {
  if (snapshot === null || typeof snapshot !== 'object') {
    throw new TypeError(`tollgate: expected a verified snapshot (verifySnapshot's answer), got ${describe(snapshot)}`);
  }
  const orgs = snapshot.organizations ?? [];
  // Which entry is the member's is chosen here, so a list that is not one, or an entry that
  // is not an object, is refused here rather than read as "not a member".
  if (!Array.isArray(orgs)) {
    throw snapshotTypeError(`the snapshot's \`organizations\` must be a list, got ${describe(orgs)}`);
  }
  orgs.forEach((o, i) => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) {
      throw snapshotTypeError(`the snapshot's \`organizations[${i}]\` must be an object, got ${describe(o)}`);
    }
  });
  if (organizationId === undefined || organizationId === null) return orgs[0] ?? null;
  const id = str('organizationId', organizationId);
  return orgs.find((o) => o.id === id) ?? null;
}

/**
 * A member's entitlements through an organization of its verified snapshot, in the
 * shape the Org Seats app's `getUserEntitlements` returns: `{ organizationId, name,
 * role, tier, status, seatCount, seatsUsed, seatsAvailable, hasSeat, inGracePeriod,
 * gracePeriodEndsAt, features, limits, hasFeatureAccess(feature) }`, decided by the core
 * at `now` (a member without a seat holds none of the plan's features). `organizationId`:
 * which one (default: the first); `null` when the user is not a member.
 * `catalog`: a Catalog, JSON text or a catalog object (null: the one set with `useCatalog`).
 */
export function getOrganizationEntitlements(snapshot, organizationId, options) {
  ensureReady();
  const { catalog, now } = optionsOf(options);
  const m = membershipOf(snapshot, organizationId);
  if (!m) return null;
  const c = catalogOrCurrent(catalog);
  const at = nowMs(now);
  const mText = textOf('organization membership', m);
  const [id, end] = snapshotBounds(snapshot);
  const ents = JSON.parse(wasmOrgEntitlements(c[HANDLE], mText, id, end, at));
  Object.defineProperty(ents, 'hasFeatureAccess', {
    value: (feature) => wasmOrgFeatureAccess(c[HANDLE], mText, id, end, str('feature', feature), at),
    enumerable: false,
  });
  return ents;
}

/**
 * May the member use `feature` through organization `organizationId` (default: the
 * first) of its verified snapshot at `now`? Only with a seat, only what the tier gives.
 */
export function hasFeatureAccess(snapshot, feature, organizationId, options) {
  ensureReady();
  const { catalog, now } = optionsOf(options);
  const m = membershipOf(snapshot, organizationId);
  if (!m) return false;
  const c = catalogOrCurrent(catalog);
  const [id, end] = snapshotBounds(snapshot);
  return wasmOrgFeatureAccess(c[HANDLE], textOf('organization membership', m), id, end, str('feature', feature), nowMs(now));
}

/**
 * The snapshot's catalog id and end, as the core reads them with an organization's entry
 * (its grants give nothing from the end on; another catalog's entry is refused).
 */
function snapshotBounds(snapshot) {
  // A field of another type is refused, never dropped: dropped, another catalog's entry or
  // one without an end would be read as if the snapshot said nothing. `expires_at` may be
  // integer Unix seconds, as the core reads a snapshot's times.
  const { catalog_id: id, expires_at: end } = snapshot;
  if (id !== undefined && id !== null && typeof id !== 'string') {
    throw snapshotTypeError(`the snapshot's \`catalog_id\` must be a string, got ${describe(id)}`);
  }
  if (end !== undefined && end !== null && typeof end !== 'string' && !Number.isSafeInteger(end)) {
    throw snapshotTypeError(`the snapshot's \`expires_at\` must be an RFC 3339 string or Unix seconds, got ${describe(end)}`);
  }
  return [id ?? undefined, end === undefined || end === null ? undefined : String(end)];
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
 * `catalog`: a Catalog, JSON text or a catalog object (null: the one set with `useCatalog`).
 */
export function notices(snapshot, options) {
  ensureReady();
  const { catalog, used, now } = optionsOf(options);
  if (snapshot === null || typeof snapshot !== 'object') {
    throw new TypeError(`tollgate: expected a verified snapshot (verifySnapshot's answer), got ${describe(snapshot)}`);
  }
  const c = catalogOrCurrent(catalog);
  return JSON.parse(wasmNotices(c[HANDLE], textOf('snapshot', snapshot), jsonOf('used', used), nowMs(now)));
}
