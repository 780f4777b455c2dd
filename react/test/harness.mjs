// What the provider tests share (sessions.test.mjs, adversarial.test.mjs): a tiny DOM for
// react-dom/client, an in-memory localStorage, React, react-dom/client, tollgate and the
// built package (imported here, after the globals are set: react-dom reads them when it
// loads), snapshots signed with the key of the core's test vector
// (tests/vectors/snapshot.json, RFC 8032 test 1), access tokens, and mounting with `act`.
//
// A test file imports this module before anything of React, and only through it.
import { readFileSync } from 'node:fs';
import { createPrivateKey, sign as edSign } from 'node:crypto';

// ------------------------------------------------------------------ a tiny DOM for react-dom/client
class FakeNode {
  constructor(nodeType, nodeName, doc) {
    this.nodeType = nodeType;
    this.nodeName = nodeName;
    this.ownerDocument = doc;
    this.childNodes = [];
    this.parentNode = null;
  }
  get firstChild() { return this.childNodes[0] ?? null; }
  get lastChild() { return this.childNodes.at(-1) ?? null; }
  get nextSibling() {
    if (!this.parentNode) return null;
    const c = this.parentNode.childNodes;
    return c[c.indexOf(this) + 1] ?? null;
  }
  appendChild(n) { n.parentNode?.removeChild(n); this.childNodes.push(n); n.parentNode = this; return n; }
  insertBefore(n, ref) {
    if (!ref) return this.appendChild(n);
    n.parentNode?.removeChild(n);
    this.childNodes.splice(this.childNodes.indexOf(ref), 0, n);
    n.parentNode = this;
    return n;
  }
  removeChild(n) { const i = this.childNodes.indexOf(n); if (i >= 0) this.childNodes.splice(i, 1); n.parentNode = null; return n; }
  addEventListener() {}
  removeEventListener() {}
  get textContent() {
    if (this.nodeType === 3 || this.nodeType === 8) return this.data;
    return this.childNodes.map((c) => (c.nodeType === 8 ? '' : c.textContent)).join('');
  }
  set textContent(v) {
    if (this.nodeType === 3) { this.data = String(v); return; }
    this.childNodes = [];
    if (v !== '' && v != null) this.appendChild(this.ownerDocument.createTextNode(String(v)));
  }
  get nodeValue() { return this.data ?? null; }
  set nodeValue(v) { this.data = v; }
}
class FakeElement extends FakeNode {
  constructor(tag, doc, ns) {
    super(1, tag.toUpperCase(), doc);
    this.tagName = tag.toUpperCase();
    this.localName = tag;
    this.namespaceURI = ns ?? 'http://www.w3.org/1999/xhtml';
    this.attributes = {};
    this.style = {};
  }
  setAttribute(k, v) { this.attributes[k] = String(v); }
  setAttributeNS(_ns, k, v) { this.attributes[k] = String(v); }
  getAttribute(k) { return this.attributes[k] ?? null; }
  hasAttribute(k) { return k in this.attributes; }
  removeAttribute(k) { delete this.attributes[k]; }
  removeAttributeNS(_ns, k) { delete this.attributes[k]; }
  get innerHTML() {
    return this.childNodes.map((c) => (c.nodeType === 1 ? c.outerHTML : c.nodeType === 3 ? c.data : '')).join('');
  }
  get outerHTML() {
    const a = Object.entries(this.attributes).map(([k, v]) => ` ${k}="${v}"`).join('');
    return `<${this.localName}${a}>${this.innerHTML}</${this.localName}>`;
  }
}
class FakeDocument extends FakeNode {
  constructor() {
    super(9, '#document', null);
    this.cookie = '';
    this.visibilityState = 'visible';
    this.documentElement = this.createElement('html');
    this.body = this.createElement('body');
    this.documentElement.appendChild(this.body);
    this.appendChild(this.documentElement);
  }
  get activeElement() { return this.body; }
  createElement(t) { return new FakeElement(t, this); }
  createElementNS(ns, t) { return new FakeElement(t, this, ns); }
  createTextNode(s) { const n = new FakeNode(3, '#text', this); n.data = String(s); return n; }
  createComment(s) { const n = new FakeNode(8, '#comment', this); n.data = String(s); return n; }
}
class MemoryStorage {
  #m = new Map();
  getItem(k) { return this.#m.has(k) ? this.#m.get(k) : null; }
  setItem(k, v) { this.#m.set(k, String(v)); }
  removeItem(k) { this.#m.delete(k); }
  clear() { this.#m.clear(); }
  keys() { return [...this.#m.keys()]; }
}
/** The page's localStorage (a test may put another one in its place, and `installMemory` back). */
export const memory = new MemoryStorage();
export const installMemory = () =>
  Object.defineProperty(globalThis, 'localStorage', { value: memory, configurable: true, writable: true });
globalThis.document = new FakeDocument();
globalThis.window = globalThis;
installMemory();
globalThis.addEventListener = () => {};
globalThis.removeEventListener = () => {};
globalThis.navigator ??= { userAgent: 'node' };
globalThis.HTMLElement = FakeElement;
globalThis.HTMLIFrameElement = class {};
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

// Only now, with the globals in place.
export const { createElement: h, act } = await import('react');
export const { createRoot } = await import('react-dom/client');
export const tollgate = await import('tollgate');
/** The built package (../dist/index.js). */
export const tollgateReact = await import('../dist/index.js');
export const { createProxy } = await import('../dist/proxy.js');

// ------------------------------------------------------------------ signed snapshots
export const vector = JSON.parse(readFileSync(new URL('../../tests/vectors/snapshot.json', import.meta.url), 'utf8'));
export const KID = vector.kid;
export const keys = { [KID]: vector.public_key_b64url };
const secret = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(vector.secret_hex, 'hex')]),
  format: 'der',
  type: 'pkcs8',
});
export const catalog = JSON.parse(readFileSync(new URL('../../target/catalogs/vcm-suite.json', import.meta.url), 'utf8'));

export const iso = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
/** A token signed as the worker signs: base64url(payload) '.' base64url(Ed25519(payload)). */
export function signToken(payload) {
  const bytes = Buffer.from(JSON.stringify(payload), 'utf8');
  return `${bytes.toString('base64url')}.${edSign(null, bytes, secret).toString('base64url')}`;
}
/** A snapshot of `userId` (suite at `tier`, none for a null tier, or `grants`). */
export function snapshotFor(userId, { tier = 'pro', issuedAt = Date.now() - 1000, ttlMs = 15 * 60_000, catalogId = catalog.catalog.id, grants } = {}) {
  return {
    v: 1,
    kid: KID,
    subject: `user:${userId}`,
    catalog_id: catalogId,
    catalog_version: catalog.catalog.version,
    issued_at: iso(issuedAt),
    expires_at: iso(issuedAt + ttlMs),
    grants: grants ?? (tier
      ? [{ id: `stripe:sub_${userId}:suite`, product: 'suite', tier, source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', valid_to: null }]
      : []),
    balances: {},
  };
}
/** A Supabase-like access token: only its `sub` is read by the provider. */
export const accessTokenOf = (userId) => `h.${Buffer.from(JSON.stringify({ sub: userId })).toString('base64url')}.s`;
/** The `sub` of the access token a request (`init`) carries. */
export const subOf = (init) => JSON.parse(Buffer.from(init.headers.authorization.split('.')[1], 'base64url')).sub;
export const jsonResponse = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

// ------------------------------------------------------------------ rendering
/** `fetch` as it was before any test replaced it. */
export const realFetch = globalThis.fetch;
const mounted = [];
/** Unmounts every root still mounted (which stops the provider's timers, so the process can end after a failure). */
export async function unmountAll() {
  while (mounted.length) {
    const root = mounted.pop();
    await act(async () => root.unmount());
  }
}
/** Renders `element` into a fresh root; returns the container and helpers. */
export async function mount(element) {
  const el = document.createElement('div');
  const root = createRoot(el);
  mounted.push(root);
  await act(async () => root.render(element));
  return {
    el,
    root,
    render: (next) => act(async () => root.render(next)),
    unmount: async () => {
      mounted.splice(mounted.indexOf(root), 1);
      await act(async () => root.unmount());
    },
  };
}
/** Lets pending promises and effects run. */
export const settle = async (rounds = 20) => {
  for (let i = 0; i < rounds; i++) await act(async () => { await new Promise((r) => setTimeout(r, 1)); });
};
/** The state of the gate of capability `id` in `el`'s markup. */
export const gateState = (el, id) => {
  const m = el.innerHTML.match(new RegExp(`data-gate="${id}" data-gate-state="(\\w+)"`));
  return m ? m[1] : null;
};
/** A provider of the worker http://worker.test, the vector's key and the catalog, with `defaults` and then `props`. */
export function providerWith(defaults = {}) {
  return (props, children) => h(
    tollgateReact.TollgateProvider,
    { workerUrl: 'http://worker.test', publicKeys: keys, catalog, load: async () => tollgate, refreshOnFocus: false, ...defaults, ...props },
    children,
  );
}
/** Resolves later, when the test says so. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}
