// A user's cloud_entitlements rows, typed with the package's own row type.
import type { CloudEntitlementRow } from 'tollgate';

export const rows: CloudEntitlementRow[] = [
  { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
  { cloud_id: 'video', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
];
