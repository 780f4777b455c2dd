// Types of the values the tollgate core hands back (snake_case, as the Rust
// structs serialise) and of the catalog document the worker publishes.

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

export interface Money {
  /** Integer minor units (cents). */
  amount: number;
  currency: string;
}

export interface Upgrade {
  offer: string;
  label: string;
  price: Money;
  interval: 'month' | 'year' | 'one_time';
  /** e.g. "Creation Cloud Pro — $59.00/month" */
  display: string;
}

export interface Decision {
  allowed: boolean;
  reason: Reason;
  tier: string | null;
  grant?: string;
  /** RFC 3339; the answer holds until then (exclusive). null: until the entitlements change. */
  holds_until: string | null;
  upgrade?: Upgrade;
}

export interface ToolState {
  tool: string;
  label: string;
  locked: boolean;
  decision: Decision;
}

export type ExportPolicy =
  | { policy: 'full' }
  | { policy: 'watermarked' }
  | { policy: 'refused'; message: string; upgrade: Upgrade | null };

export type LimitValue = number | 'unlimited';

export type Source = 'stripe' | 'razorpay' | 'manual_grant' | 'bundle' | 'promotion';
export type Status = 'active' | 'trial' | 'past_due' | 'canceled';

export interface Grant {
  id: string;
  product: string;
  tier: string;
  source: Source;
  status: Status;
  valid_from: string;
  valid_to: string | null;
  past_due_since?: string;
  offer?: string;
  source_ref?: string;
}

/** The signed content of an entitlement snapshot (format version 1). */
export interface SnapshotPayload {
  v: number;
  kid: string;
  subject: string;
  catalog_id: string;
  catalog_version: string;
  issued_at: string;
  expires_at: string;
  grants: Grant[];
  balances: Record<string, number>;
  /** The subject's open alerts (absent when none): see the package's `ShownAlert`. */
  alerts?: import('tollgate').ShownAlert[];
  /** Its failed payments still due (absent when none): see the package's `DuePayment`. */
  failed_payments?: import('tollgate').DuePayment[];
}

/** What `GET /v1/entitlements` answers. */
export interface SnapshotResponse {
  token: string;
  snapshot?: SnapshotPayload;
  kid?: string;
  public_key?: string;
}

// ------------------------------------------------------------------ catalog document

export interface CatalogProduct {
  id: string;
  name?: string;
  tiers: string[];
  default_tier?: string | null;
}

export interface CatalogOffer {
  key: string;
  label: string;
  price: { amount: number; currency: string; interval: 'month' | 'year' | 'one_time' };
  stripe_price_ids?: string[];
  grants?: Array<{ product?: string; tier?: string; choose?: number; from?: string[]; all_products?: boolean }>;
  credits?: Array<{ pool: string; amount: number; per: 'period' | 'once' }>;
}

export interface CatalogTool {
  id: string;
  label: string;
  page: string;
  description?: string;
  requires: { product?: string; tier?: string; capability?: string; limit?: string };
}

export interface CatalogCapability {
  id: string;
  label?: string;
  product: string;
  min_tier?: string;
  tiers?: string[];
}

export interface CatalogLimit {
  id: string;
  label?: string;
  product: string;
  /** `day`, `month` or `billing_period` (none: counted for ever). */
  period?: 'day' | 'month' | 'billing_period';
  /** `subscription`: monthly windows from the day the subscription started. */
  anchor?: 'calendar' | 'subscription';
  values: Record<string, number | 'unlimited'>;
}

export interface CatalogDoc {
  catalog: { id: string; name: string; version: string; currency: string; grace_period_days?: number; plan_product?: string; hold_minutes?: number;
    provider?: 'stripe' | 'razorpay'; allow_promotion_codes?: boolean; stripe_lookup_keys?: boolean; proration?: 'always_invoice' | 'create_prorations' | 'none' };
  products: CatalogProduct[];
  offers: CatalogOffer[];
  capabilities?: CatalogCapability[];
  limits?: CatalogLimit[];
  credit_pools?: Array<{ id: string; label?: string; unit?: string; rollover?: string }>;
  usage?: {
    pool: string;
    currency: string;
    overage_multiplier: string;
    default_overage_limit?: number;
    rates: Array<{ model: string; quality: string; base_price_per_second: string; multiplier: string }>;
  };
  tools?: CatalogTool[];
  /** Alert rules: thresholds of limits and pools, subscription events. */
  alerts?: Array<{ feature?: string; percent_used?: number[]; units_left?: number[]; event?: string; days?: number }>;
}

/** A usage price (Video Studio), as the core's `quote` returns it. */
export interface Quote {
  model: string;
  quality: string;
  seconds: number;
  base_price_per_second: string;
  multiplier: string;
  cost: Money;
  overage_cost: Money;
  overage_multiplier: string;
  pool: string;
}

/** What a gate asks. Exactly one form. */
export type AccessQuestion =
  | { product: string; tier: string }
  | { capability: string }
  | { tool: string; usage?: Record<string, number> }
  | { limit: string; used: number };
