// A user's cloud_entitlements rows, typed with the package's own row type, their ids
// narrowed by the catalog's generated types (`tollgate catalog types`).
import type { CloudEntitlementRow } from 'tollgate';
import type { ProductId, Tiers } from '@/tollgate-catalog';

type Row<P extends ProductId> = CloudEntitlementRow & { cloud_id: P; tier: Tiers[P] };

const creation: Row<'creation'> = { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null };
const video: Row<'video'> = { cloud_id: 'video', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null };

export const rows: CloudEntitlementRow[] = [creation, video];
