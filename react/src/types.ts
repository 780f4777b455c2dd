// The values the tollgate core hands back and the catalog document, as the tollgate
// package declares them: generated from the core's Rust types (its
// types.generated.d.ts), so this layer never restates a shape.

import type { Offer, Snapshot, Product, Tool, Capability, Limit, CatalogIds, Question, RegisteredIds } from 'tollgate';

export type { CatalogIds, FeatureOf, Register, RegisteredIds } from 'tollgate';

export type {
  CatalogDoc,
  CatalogMeta,
  Check,
  CreditPool,
  Decision,
  ExportPolicy,
  Grant,
  GrantInput,
  Interval,
  LimitValue,
  MeterAnswer,
  Money,
  OrgEntitlements,
  OrgMembership,
  Quote,
  Reason,
  Role as OrgRole,
  Snapshot,
  Source,
  Status,
  ToolState,
  Replaced,
  Unlock,
  Upgrade,
  UsagePricing,
} from 'tollgate';

/** The signed content of an entitlement snapshot: the package's verified {@link Snapshot}. */
export type SnapshotPayload = Snapshot;

/** A member's entitlements through one organization, as a plain value (the package's
 * `getOrganizationEntitlements` without its `hasFeatureAccess` function, so it crosses
 * from a server component to a client one). */
export type OrganizationEntitlements = import('tollgate').OrgEntitlements;

/** What `GET /v1/entitlements` answers: the token and, for display, what it carries. */
export interface SnapshotResponse {
  token: string;
  snapshot?: SnapshotPayload;
  kid?: string;
  public_key?: string;
}

// The catalog document's parts, by the names this layer has always used.
export type CatalogProduct = Product;
export type CatalogOffer = Offer;
export type CatalogTool = Tool;
export type CatalogCapability = Capability;
export type CatalogLimit = Limit;

/** What a gate asks. Exactly one form (the package's `Question`). */
export type AccessQuestion<I extends CatalogIds = RegisteredIds> = Question<I>;
