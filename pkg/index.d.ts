// Types of the tollgate package. The shapes of the values the core reads and
// writes (decisions, upgrades, checks, quotes, snapshots, grants, catalogs,
// organizations) are generated from its Rust types into types.generated.d.ts
// (`cargo xtask ts`) and re-exported here; this file declares the functions and
// classes. The wasm-bindgen bindings in tollgate.d.ts are internal.

import type {
  CatalogDoc,
  Check,
  MeterErrorCode,
  CloudEntitlementRow,
  Decision,
  Entitlements,
  ExportPolicy,
  Grant,
  LimitAnswer,
  LimitValue,
  Money,
  Notices,
  OrgEntitlements,
  OrgMembership,
  PlanUser as PlanUserFields,
  Quote,
  Snapshot,
  SnapshotErrorCode,
  ToolState,
  Unlock,
  UsageErrorCode,
} from './types.generated.js';

export type * from './types.generated.js';

// ------------------------------------------------------------------ values

/** An instant: a Date, an RFC 3339 string ("2026-03-01T00:00:00Z"), or epoch milliseconds. */
export type Now = Date | string | number;

/** A limit's value with the tier it comes from and until when it holds. */
export type LimitInfo = LimitAnswer;

/** The core's codes of a metering error (`MeterErrorCode`, generated). */
export type CheckErrorCode = MeterErrorCode;

/** A metering question the catalog cannot answer; `code` is the core's. */
export interface CheckError extends Error {
  code: CheckErrorCode;
}

/** Used so far in the current period, by limit id (whole numbers). */
export type Usage = Record<string, number>;

/** What a gate asks: a product's tier, a capability, a tool (with its limit's usage), or a limit after `used`. */
export type Question<I extends CatalogIds = RegisteredIds> =
  | { product: I['product']; tier: I['tier'] }
  | { capability: I['capability'] }
  | { tool: I['tool']; usage?: Usage | null }
  | { limit: I['limit']; used: number };

// ------------------------------------------------------------------ entitlements

/** A timestamp in input: an RFC 3339 string or integer Unix seconds. */
export type TimestampInput = string | number;

/**
 * A grant as the core reads it: a {@link Grant} whose `id` and `valid_to` may be left
 * out and whose times may be integer Unix seconds too.
 */
export type GrantInput = Omit<Grant, 'id' | 'valid_from' | 'valid_to' | 'past_due_since'> & {
  id?: string;
  valid_from: TimestampInput;
  valid_to?: TimestampInput | null;
  past_due_since?: TimestampInput | null;
};

/** What a subject holds, as the core reads it (every field may be left out). */
export interface EntitlementsObject {
  subject?: Entitlements['subject'];
  grants?: GrantInput[];
  balances?: Entitlements['balances'];
}

/** Entitlements (a verified {@link Snapshot} is one), a bare list of grants, or either as JSON text. */
export type EntitlementsInput = EntitlementsObject | GrantInput[] | string;

/** A VCM Suite plan user: `subscription_tier`, optionally with grants (which then decide the tier). */
export type PlanUser = (PlanUserFields & { [field: string]: unknown }) | null | undefined;

// ------------------------------------------------------------------ catalogs

/** A validated catalog. */
export declare class Catalog {
  private constructor();
  readonly id: string;
  readonly name: string;
  readonly version: string;
  toJSON(): CatalogDoc;
}

/** A catalog that did not load: `path` names the field, `line` the JSON line when known. */
export interface CatalogError extends Error {
  path: string;
  line: number | null;
}

/**
 * Parses and validates a catalog: JSON text or the parsed object. Throws a
 * {@link CatalogError} naming the field path (and, for JSON text, the line).
 */
export declare function loadCatalog(src: string | CatalogDoc | Catalog): Catalog;

/** Thrown when a call needs the catalog set with {@link useCatalog} and none is set. */
export interface NoCatalogError extends Error {
  code: 'no_catalog';
}

/**
 * Sets the catalog the VCM Suite-compatible helpers (and every call whose catalog
 * is left out) use, and returns it: the text of `GET /v1/catalog`, a catalog JSON
 * file the app built, its parsed object or a {@link Catalog}. The package carries
 * no catalog of its own: until one is set, those calls throw a {@link NoCatalogError}.
 */
export declare function useCatalog(catalog: string | CatalogDoc | Catalog): Catalog;

// ------------------------------------------------------------------ loading

/** What `init` loads the WebAssembly from (default: `tollgate_bg.wasm` next to the package's JS). */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/**
 * Loads the WebAssembly module: needed once in browsers and browser bundles
 * before the first call; a no-op in Node and Cloudflare Workers, which load it on import.
 * A failed load rejects with an Error whose `code` is `wasm_load_failed` and whose message
 * says what to pass instead.
 */
export declare function init(input?: InitInput | Promise<InitInput>): Promise<void>;

/** Loads the WebAssembly module synchronously from bytes or a compiled module. */
export declare function initSync(module: BufferSource | WebAssembly.Module): void;

/** Whether the WebAssembly module is loaded. */
export declare function isReady(): boolean;

// ------------------------------------------------------------------ your catalog's ids

/**
 * The kinds of ids a catalog defines. Every function that takes an id takes it as
 * `Ids['capability']`, `Ids['tool']`, ...: plain strings until an app registers its own
 * catalog's ids, which `tollgate catalog types catalog.toml > tollgate-catalog.d.ts` does
 * (`declare module 'tollgate' { interface Register { ids: Ids } }`); from then on a
 * misspelled id fails to compile. An app with several catalogs passes each one's `Ids` as
 * a type parameter instead (`new Engine<StudioIds>(...)`).
 */
export interface CatalogIds {
  product: string;
  tier: string;
  capability: string;
  limit: string;
  pool: string;
  offer: string;
  tool: string;
  page: string;
}

/** Augmented by a catalog's generated types: `interface Register { ids: Ids }`. */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Register {}

/** The registered catalog's ids, or {@link CatalogIds} (any string) when none is registered. */
export type RegisteredIds = Register extends { ids: infer I extends CatalogIds } ? I : CatalogIds;

/** Anything `checkFeature` (and the worker's `/v1/check` and `/v1/track`) takes. */
export type FeatureOf<I extends CatalogIds> = I['capability'] | I['limit'] | I['pool'];

// ------------------------------------------------------------------ stateful engine

/**
 * A catalog and one subject's entitlements, loaded once: answers by name with
 * explained decisions or, on the hot path, by index with {@link Engine.check}.
 */
export declare class Engine<I extends CatalogIds = RegisteredIds> {
  /**
   * `catalog`: null or omitted for the one set with {@link useCatalog}. `entitlements`:
   * grants, or entitlements or a verified snapshot; a snapshot of another catalog is
   * refused (an Error with `code` `wrong_catalog`), and its grants give nothing from its
   * `expires_at` on (no answer from it holds longer).
   */
  constructor(catalog?: string | CatalogDoc | Catalog | null, entitlements?: EntitlementsInput | null);
  readonly catalog: Catalog;
  /** Replaces the entitlements (a new snapshot) and drops the cache. */
  setEntitlements(entitlements: EntitlementsInput): this;
  /**
   * Does the subject hold at least `tier` of `product`? Asked again while the core
   * says the answer holds, the same frozen Decision comes back without a call into
   * WebAssembly.
   */
  hasAccess(product: I['product'], tier: I['tier'], now?: Now): Readonly<Decision>;
  can(capability: I['capability'], now?: Now): Decision;
  limit(name: I['limit'], now?: Now): LimitValue;
  limitInfo(name: I['limit'], now?: Now): LimitInfo;
  /** May one more unit be used, given `used` (a whole number) so far in the limit's period? */
  checkLimit(name: I['limit'], used: number, now?: Now): Decision;
  /**
   * May `quantity` (default 1) of a capability, limit or credit pool be used, given
   * `used` (default 0) so far in a limit's window? The worker's `POST /v1/check`
   * decided from these entitlements alone: a pool reads `balances`, and its `resets_at`
   * is when a subscription among the grants next refills it (null: nothing refills it). Throws a
   * {@link CheckError} for an unknown feature or a quantity outside 1..1e9.
   */
  checkFeature(feature: FeatureOf<I>, quantity?: number | null, used?: number | null, now?: Now): Check;
  exportPolicy(now?: Now): ExportPolicy;
  /**
   * Every tool of `page` (every tool when omitted or null) at once. Each decision's
   * `upgrade` is the catalog's frozen object for that offer, shared between answers.
   */
  pageState(page?: I['page'] | null, usage?: Usage | null, now?: Now): ToolState[];
  toolState(id: I['tool'], usage?: Usage | null, now?: Now): ToolState;
  /**
   * Every offer that would allow a denied question, cheapest first: none the subject
   * holds already, each meeting every requirement (a bundle with the products it
   * preselects); the first is the one the denial names. Empty when it is allowed.
   */
  offersUnlocking(question: Question<I>, now?: Now): Unlock[];
  productIndex(product: I['product']): number;
  tierIndex(product: I['product'], tier: I['tier']): number;
  /**
   * The hot path: does the subject hold at least tier `tierIx` of product
   * `productIx` at `nowMs` (epoch milliseconds, default Date.now())? Indices the
   * catalog does not have answer false.
   */
  check(productIx: number, tierIx: number, nowMs?: number): boolean;
  /** The next instant (RFC 3339) at which any answer can change; null: none. */
  nextChange(now?: Now): string | null;
  /**
   * Releases the WebAssembly memory now (otherwise the garbage collector does). Every
   * later call throws (code `engine_freed`); a second `free()` does nothing.
   */
  free(): void;
}

// ------------------------------------------------------------------ VCM Suite-compatible helpers

/**
 * The VCM Suite's `hasAccess(entitlements, cloud, requiredTier)` over
 * `cloud_entitlements` rows, with tollgate's access rules (trials count,
 * expiry and `valid_from` apply, the highest valid row wins).
 */
export declare function hasAccess(
  entitlements: CloudEntitlementRow[] | null | undefined,
  cloud: string,
  requiredTier: string,
  now?: Now,
): boolean;

/** `hasAccess` with its explanation. */
export declare function explainAccess(
  entitlements: CloudEntitlementRow[] | null | undefined,
  cloud: string,
  requiredTier: string,
  now?: Now,
): Decision;

/** The VCM Suite's `resolveUserTier(user)`: the plan tier; unknown or missing: the default tier ("free"). */
export declare function resolveUserTier(user: PlanUser, now?: Now): string;

export declare function canUseAI(user: PlanUser, now?: Now): boolean;
export declare function canExportFullRes(user: PlanUser, now?: Now): boolean;
export declare function shouldWatermarkExports(user: PlanUser, now?: Now): boolean;
export declare function canUseHeavyTools(user: PlanUser, now?: Now): boolean;
export declare function canUseMultiStepHeavyTools(user: PlanUser, now?: Now): boolean;

/** Any capability of the catalog for a VCM Suite plan user, explained. */
export declare function explainUser(user: PlanUser, capability: string, now?: Now): Decision;

/** The VCM Suite's workflow rule: may another run start, given the runs already made today? */
export declare function workflowRunAllowed(user: PlanUser, runsToday: number, now?: Now): boolean;

/** `workflowRunAllowed`, explained. */
export declare function explainWorkflowRun(user: PlanUser, runsToday: number, now?: Now): Decision;

/** The VCM Suite's export policy for a user. */
export declare function applyExportPolicy(user: PlanUser, now?: Date | string | number): ExportPolicy;
/** The original call shape: the payload when the user may export, null when not ("Upgrade to export."). */
export declare function applyExportPolicy<P extends object>(user: PlanUser, payload: P, now?: Now): P | null;

/** The capability ids the VCM Suite plan helpers read from the catalog. */
export declare const CAPABILITIES: Readonly<{
  useAI: 'use_ai';
  exportFullRes: 'export_full_res';
  watermarkExports: 'watermark_exports';
  heavyTools: 'heavy_tools';
  multiStepHeavyTools: 'multi_step_heavy_tools';
}>;

// ------------------------------------------------------------------ usage pricing

/** The core's codes of a usage-pricing error (`UsageErrorCode`, generated). */
export type QuoteErrorCode = UsageErrorCode;

/** A usage question the catalog cannot answer. */
export interface QuoteError extends Error {
  code: QuoteErrorCode;
}

/**
 * The Video Studio app's usage price of `seconds` (a whole number) of `model` at `quality`:
 * the core's `usage::quote`, the function the worker charges with.
 * `catalog`: null or omitted for the one set with {@link useCatalog}. Throws a {@link QuoteError}.
 */
export declare function quote(
  catalog: string | CatalogDoc | Catalog | null | undefined,
  model: string,
  quality: string,
  seconds: number,
): Quote;

// ------------------------------------------------------------------ money

/**
 * `{ amount, currency }` in integer minor units as people read it, by the core's
 * formatter (the one that writes every upgrade's `display`): "$59.00", "₹499.00",
 * "1.500 KWD", "500 JPY". Throws for an amount that is not a whole number or a
 * currency that is not a three-letter code.
 */
export declare function formatMoney(money: Money): string;

/** Digits of a currency's minor unit, as the core counts them: 0 (JPY), 3 (KWD) or 2. */
export declare function minorDigits(currency: string): number;

// ------------------------------------------------------------------ signed entitlement snapshots

/** A refused snapshot token; `code` is the core's stable error code. */
export interface SnapshotError extends Error {
  code: SnapshotErrorCode;
}

/** Trusted Ed25519 public keys by key id: 64 hex digits, base64url (43 characters) or 32 bytes. */
export type PublicKeys =
  | Record<string, string | Uint8Array | ArrayBuffer>
  | Map<string, string | Uint8Array | ArrayBuffer>;

/**
 * Verifies a signed entitlement snapshot with the public keys alone (the
 * core's verifier): signature, key id, expiry and issue time against `now`
 * and, when given, the subject. Returns the snapshot; throws a {@link SnapshotError}.
 */
export declare function verifySnapshot(token: string, keys: PublicKeys, subject?: string | null, now?: Now): Snapshot;

// ------------------------------------------------------------------ organizations

/**
 * A member's entitlements through one organization (the Org Seats app's
 * getUserEntitlements shape), with the check of one feature.
 */
export type OrganizationEntitlements = OrgEntitlements & {
  /** May the member use this capability now (only with a seat)? */
  hasFeatureAccess(feature: string): boolean;
};

export interface OrgOptions {
  catalog?: Catalog | string | object | null;
  now?: Now;
}

/**
 * The member's entitlements through organization `organizationId` (default: the first)
 * of its verified snapshot, decided by the core at `now`; `null` when not a member. The
 * organization's grants hold no longer than the snapshot (`expires_at`), and a snapshot
 * of another catalog than `catalog` throws (`code` `wrong_catalog`).
 */
export function getOrganizationEntitlements(
  snapshot: { organizations?: OrgMembership[]; catalog_id?: string; expires_at?: string },
  organizationId?: string | null,
  options?: OrgOptions,
): OrganizationEntitlements | null;

/** May the member use `feature` through that organization now? As {@link getOrganizationEntitlements}. */
export function hasFeatureAccess(
  snapshot: { organizations?: OrgMembership[]; catalog_id?: string; expires_at?: string },
  feature: string,
  organizationId?: string | null,
  options?: OrgOptions,
): boolean;

// ------------------------------------------------------------------ notices

export interface NoticesOptions {
  catalog?: string | CatalogDoc | Catalog | null;
  /** What each limit's current window used so far (limit id -> count), where known. */
  used?: Record<string, number> | null;
  now?: Now;
}

/**
 * What a verified snapshot tells its subject at `now`: its open alerts and the catalog's
 * thresholds its numbers cross now (the same rules and rule ids as the server's alerts),
 * and the payments due with their amounts written by the core.
 */
export declare function notices(
  snapshot: Pick<Snapshot, 'grants' | 'balances' | 'alerts' | 'failed_payments'> & { subject?: string },
  options?: NoticesOptions,
): Notices;

