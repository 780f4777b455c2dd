// Types of the tollgate package (hand-written; the generated wasm-bindgen
// bindings in tollgate.d.ts are internal).

// ------------------------------------------------------------------ values

/** An instant: a Date, an RFC 3339 string ("2026-03-01T00:00:00Z"), or epoch milliseconds. */
export type Now = Date | string | number;

/** Why a decision came out the way it did. */
export type Reason =
  | 'active'
  | 'trial'
  | 'grace_period'
  | 'canceled_until_period_end'
  | 'default_tier'
  | 'within_limit'
  | 'no_entitlement'
  | 'tier_too_low'
  | 'not_in_tier'
  | 'expired'
  | 'grace_ended'
  | 'not_yet_valid'
  | 'limit_reached';

export type Interval = 'month' | 'year' | 'one_time';

/** Money in integer minor units (cents, paise) of a lower-case ISO 4217 currency. */
export interface Money {
  amount: number;
  currency: string;
}

/** The cheapest offer in the catalog that would turn a denial into an allow. */
export interface Upgrade {
  /** The offer key (checkout metadata `offer_key`). */
  offer: string;
  label: string;
  price: Money;
  interval: Interval;
  /** Human text, e.g. "Creation Cloud Pro — $59.00/month". */
  display: string;
}

/** An answer with its explanation. */
export interface Decision {
  allowed: boolean;
  reason: Reason;
  /** The effective tier of the product involved; null: no tier at all. */
  tier: string | null;
  /** The id of the grant that decided it, when one did. */
  grant?: string;
  /** The answer holds until this instant (RFC 3339, exclusive); null: until the entitlements change. */
  holds_until: string | null;
  /** When denied: the cheapest offer that would allow it (absent when none does). */
  upgrade?: Upgrade;
}

/** A limit: a whole number, or explicitly unlimited. */
export type LimitValue = number | 'unlimited';

export interface LimitInfo {
  limit: LimitValue;
  tier: string | null;
  holds_until: string | null;
}

/**
 * A metered decision on a capability, a limit or a credit pool: the answer of the
 * worker's `POST /v1/check`, field for field.
 */
export interface Check {
  /** The catalog's id of the capability, limit or pool. */
  feature: string;
  allowed: boolean;
  reason: Reason;
  /** What is left after this use when allowed, else what is left now ("unlimited" for a capability). */
  remaining: LimitValue;
  /** Used so far in a limit's window (0 for a capability or a pool). */
  used: number;
  /** A limit's value at the subject's tier, or what a pool holds now. */
  limit: LimitValue;
  /** When a limit's window starts again (RFC 3339, UTC); for a capability, until when the answer holds; null: never. */
  resets_at: string | null;
  /** The effective tier of the feature's product; null for a pool, or without a tier. */
  tier: string | null;
  /** When denied: the cheapest offer that allows it; null when none does. */
  upgrade: Upgrade | null;
}

export type CheckErrorCode = 'unknown_feature' | 'invalid_quantity';

/** A metering question the catalog cannot answer; `code` is the core's. */
export interface CheckError extends Error {
  code: CheckErrorCode;
}

/** The VCM Suite's export rule. */
export type ExportPolicy =
  | { policy: 'full' }
  | { policy: 'watermarked' }
  | { policy: 'refused'; message: string; upgrade: Upgrade | null };

/** The state of one tool on a page. */
export interface ToolState {
  tool: string;
  label: string;
  locked: boolean;
  decision: Decision;
}

/** Used so far in the current period, by limit id (whole numbers). */
export type Usage = Record<string, number>;

// ------------------------------------------------------------------ entitlements

export type Source = 'stripe' | 'razorpay' | 'manual_grant' | 'bundle' | 'promotion';
export type Status = 'active' | 'trial' | 'past_due' | 'canceled';
/** A timestamp in input: an RFC 3339 string or integer Unix seconds. */
export type TimestampInput = string | number;

/** One grant of a tier of a product, for a time window. */
export interface Grant {
  id?: string;
  product: string;
  tier: string;
  source: Source;
  status: Status;
  valid_from: TimestampInput;
  valid_to?: TimestampInput | null;
  past_due_since?: TimestampInput | null;
  offer?: string | null;
  source_ref?: string | null;
}

/** What a subject holds. A bare list of grants is accepted too. */
export interface Entitlements {
  subject?: string;
  grants: Grant[];
  /** Credit balances by pool. */
  balances?: Record<string, number>;
}

export type EntitlementsInput = Entitlements | Grant[] | string;

/** A row of the VCM Suite's `cloud_entitlements` table. */
export interface CloudEntitlementRow {
  id?: string | null;
  user_id?: string | null;
  cloud_id: string;
  tier: string;
  source: Source;
  status: Status;
  valid_from?: TimestampInput | null;
  valid_to?: TimestampInput | null;
  created_at?: TimestampInput | null;
  updated_at?: TimestampInput | null;
  past_due_since?: TimestampInput | null;
  offer_key?: string | null;
  source_ref?: string | null;
}

/** A VCM Suite plan user: `subscription_tier`, optionally with grants (which then decide the tier). */
export type PlanUser = {
  subscription_tier?: string | null;
  entitlements?: Grant[] | null;
  [field: string]: unknown;
} | null | undefined;

// ------------------------------------------------------------------ catalogs

/** The catalog document (see catalogs/*.toml in the repository for every field). */
export interface CatalogDoc {
  catalog: {
    id: string;
    name: string;
    version: string;
    currency: string;
    grace_period_days?: number;
    hold_minutes?: number;
    plan_product?: string;
    provider?: 'stripe' | 'razorpay';
    allow_promotion_codes?: boolean;
    stripe_lookup_keys?: boolean;
    proration?: 'always_invoice' | 'create_prorations' | 'none';
  };
  products: Array<{ id: string; name?: string; tiers: string[]; default_tier?: string }>;
  offers?: Array<Record<string, unknown> & { key: string; label: string }>;
  capabilities?: Array<Record<string, unknown> & { id: string; product: string }>;
  limits?: Array<Record<string, unknown> & { id: string; product: string }>;
  credit_pools?: Array<Record<string, unknown> & { id: string }>;
  usage?: Record<string, unknown>;
  tools?: Array<{
    id: string;
    label: string;
    page?: string;
    description?: string;
    requires: { product?: string; tier?: string; capability?: string; limit?: string };
  }>;
}

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

/** The catalog the VCM Suite-compatible helpers use (default: the bundled VCM Suite catalog). */
export declare function defaultCatalog(): Catalog;

/** Sets the catalog the VCM Suite-compatible helpers use; returns it. */
export declare function useCatalog(catalog: string | CatalogDoc | Catalog): Catalog;

// ------------------------------------------------------------------ loading

/** What `init` loads the WebAssembly from (default: `tollgate_bg.wasm` next to the package's JS). */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/**
 * Loads the WebAssembly module: needed once in browsers and browser bundles
 * before the first call; a no-op in Node and Cloudflare Workers, which load it on import.
 */
export declare function init(input?: InitInput | Promise<InitInput>): Promise<void>;

/** Loads the WebAssembly module synchronously from bytes or a compiled module. */
export declare function initSync(module: BufferSource | WebAssembly.Module): void;

/** Whether the WebAssembly module is loaded. */
export declare function isReady(): boolean;

// ------------------------------------------------------------------ stateful engine

/**
 * A catalog and one subject's entitlements, loaded once: answers by name with
 * explained decisions or, on the hot path, by index with {@link Engine.check}.
 */
export declare class Engine {
  /** `catalog`: null or omitted for the default catalog. */
  constructor(catalog?: string | CatalogDoc | Catalog | null, entitlements?: EntitlementsInput | null);
  readonly catalog: Catalog;
  /** Replaces the entitlements (a new snapshot) and drops the cache. */
  setEntitlements(entitlements: EntitlementsInput): this;
  hasAccess(product: string, tier: string, now?: Now): Decision;
  can(capability: string, now?: Now): Decision;
  limit(name: string, now?: Now): LimitValue;
  limitInfo(name: string, now?: Now): LimitInfo;
  /** May one more unit be used, given `used` (a whole number) so far in the limit's period? */
  checkLimit(name: string, used: number, now?: Now): Decision;
  /**
   * May `quantity` (default 1) of a capability, limit or credit pool be used, given
   * `used` (default 0) so far in a limit's window? The worker's `POST /v1/check`
   * decided from these entitlements alone: a pool reads `balances`. Throws a
   * {@link CheckError} for an unknown feature or a quantity outside 1..1e9.
   */
  checkFeature(feature: string, quantity?: number | null, used?: number | null, now?: Now): Check;
  exportPolicy(now?: Now): ExportPolicy;
  /** Every tool of `page` (every tool when omitted or null) at once. */
  pageState(page?: string | null, usage?: Usage | null, now?: Now): ToolState[];
  toolState(id: string, usage?: Usage | null, now?: Now): ToolState;
  productIndex(product: string): number;
  tierIndex(product: string, tier: string): number;
  /**
   * The hot path: does the subject hold at least tier `tierIx` of product
   * `productIx` at `nowMs` (epoch milliseconds, default Date.now())? Indices the
   * catalog does not have answer false.
   */
  check(productIx: number, tierIx: number, nowMs?: number): boolean;
  /** The next instant (RFC 3339) at which any answer can change; null: none. */
  nextChange(now?: Now): string | null;
  /** Releases the WebAssembly memory now (otherwise the garbage collector does). */
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

/** The price of a usage request (Video Studio): money in integer minor units, rates as exact decimal strings. */
export interface Quote {
  model: string;
  quality: string;
  seconds: number;
  /** Major currency units per second, e.g. "0.015". */
  base_price_per_second: string;
  /** e.g. "1.2". */
  multiplier: string;
  /** `ceil(seconds x base_price_per_second x multiplier)`, rounded up once on the total. */
  cost: Money;
  /** What the same seconds cost as overage (`x overage_multiplier`). */
  overage_cost: Money;
  overage_multiplier: string;
  /** The credit pool the request draws on. */
  pool: string;
}

export type QuoteErrorCode = 'no_usage_pricing' | 'unknown_rate' | 'out_of_range' | 'overflow';

/** A usage question the catalog cannot answer. */
export interface QuoteError extends Error {
  code: QuoteErrorCode;
}

/**
 * The Video Studio app's usage price of `seconds` (a whole number) of `model` at `quality`:
 * the core's `usage::quote`, the function the worker charges with.
 * `catalog`: null or omitted for the default catalog. Throws a {@link QuoteError}.
 */
export declare function quote(
  catalog: string | CatalogDoc | Catalog | null | undefined,
  model: string,
  quality: string,
  seconds: number,
): Quote;

// ------------------------------------------------------------------ signed entitlement snapshots

/** A verified entitlement snapshot: one subject's grants and balances at `issued_at`. */
export interface Snapshot {
  v: 1;
  kid: string;
  subject: string;
  catalog_id: string;
  catalog_version: string;
  /** RFC 3339, UTC. */
  issued_at: string;
  /** RFC 3339, UTC; the snapshot is refused from this instant on. */
  expires_at: string;
  grants: Array<Grant & { id: string; valid_from: string; valid_to: string | null }>;
  balances: Record<string, number>;
  /** The organizations the user belongs to (absent when none). */
  organizations?: OrgMembership[];
  /** The subject's open alerts still in force (absent when none). */
  alerts?: ShownAlert[];
  /** Its failed payments still due (absent when none). */
  failed_payments?: DuePayment[];
}

/** An open alert as a snapshot carries it (what the app was sent as `alert.crossed`). */
export interface ShownAlert {
  /** The rule id: `limit:<feature>:80%`, `limit:<feature>:10left`, `pool:<pool>:100left`, `payment_failed:0:<provider>:<invoice>`, ... */
  rule: string;
  kind: 'limit' | 'pool' | 'trial_ending' | 'payment_failed' | 'grace_ending' | 'grace_ended' | 'subscription_canceled';
  /** RFC 3339, UTC. */
  crossed_at: string;
  feature?: string;
  percent_used?: number;
  units_left?: number;
  /** The limit when it was crossed. */
  limit?: number;
  /** A windowed limit's alert ends with its window (RFC 3339). */
  ends_at?: string;
  subscription?: string;
  invoice?: string;
}

/** A failed payment still due, as a snapshot carries it. */
export interface DuePayment {
  provider: 'stripe' | 'razorpay';
  /** The invoice (or Razorpay cycle) id without its provider. */
  invoice: string;
  subscription: string;
  /** Minor units of `currency`. */
  amount_due: number;
  currency: string;
  attempts: number;
  next_retry?: string;
  first_failed_at: string;
  /** Access lasts until here (RFC 3339). */
  grace_until?: string;
}

export type SnapshotErrorCode =
  | 'malformed_snapshot'
  | 'bad_signature'
  | 'unknown_key'
  | 'invalid_key'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_subject';

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

/** One organization of a snapshot (`snapshot.organizations[i]`). */
export interface OrgMembership {
  id: string;
  name: string;
  role: 'owner' | 'admin' | 'member' | null;
  seat: boolean;
  seats: { count: number; used: number; reserved: number; available: number };
  grants: unknown[];
}

/** A member's entitlements through one organization (the Org Seats app's getUserEntitlements shape). */
export interface OrganizationEntitlements {
  organizationId: string;
  name: string;
  role: 'owner' | 'admin' | 'member' | null;
  tier: string | null;
  status: 'active' | 'trialing' | 'past_due' | 'canceled' | 'unpaid' | 'none';
  seatCount: number;
  seatsUsed: number;
  seatsAvailable: number;
  hasSeat: boolean;
  inGracePeriod: boolean;
  gracePeriodEndsAt: string | null;
  features: Record<string, boolean>;
  limits: Record<string, number | 'unlimited'>;
  /** May the member use this capability now (only with a seat)? */
  hasFeatureAccess(feature: string): boolean;
}

export interface OrgOptions {
  catalog?: Catalog | string | object | null;
  now?: Now;
}

export function getOrganizationEntitlements(
  snapshot: { organizations?: OrgMembership[] },
  organizationId?: string | null,
  options?: OrgOptions,
): OrganizationEntitlements | null;

export function hasFeatureAccess(
  snapshot: { organizations?: OrgMembership[] },
  feature: string,
  organizationId?: string | null,
  options?: OrgOptions,
): boolean;

// ------------------------------------------------------------------ notices and money

/** One warning to show, decided by the core. */
export interface Warning {
  /** The server's rule id: the same crossing is the same warning. */
  rule: string;
  kind: ShownAlert['kind'];
  severity: 'critical' | 'warning';
  /** The core's words, amounts written by its money formatter. */
  message: string;
  feature: string | null;
  /** When the server opened it; null: derived from the snapshot's numbers now. */
  since: string | null;
  /** When it stops by itself (a limit's window end, a grace end), if known. */
  until: string | null;
}

/** A payment due, ready to show. */
export interface PaymentNotice {
  invoice: string;
  subscription: string;
  amount_due: Money;
  /** `amount_due` written by the core ("₹499.00"). */
  amount_display: string;
  attempts: number;
  next_retry: string | null;
  grace_until: string | null;
  /** Access still lasts (before `grace_until`). */
  in_grace: boolean;
  message: string;
}

export interface Notices {
  /** Critical first, then by rule. */
  warnings: Warning[];
  payments: PaymentNotice[];
}

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

/** An amount in minor units written by the core ("$29.00", "₹499.00", "1500 JPY"). */
export declare function formatMoney(money: Money): string;
