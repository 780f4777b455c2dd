// A Worker of the user's own, bundled by wrangler: the package's `workerd` entry imports
// the .wasm as a module, so everything is usable at once.
import { explainAccess, hasAccess, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc, CloudEntitlementRow } from 'tollgate';
import catalogJson from './tollgate-catalog.json';

useCatalog(loadCatalog(catalogJson as CatalogDoc));

const rows: CloudEntitlementRow[] = [
  { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
  { cloud_id: 'video', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
];

export default {
  fetch(): Response {
    const video = explainAccess(rows, 'video', 'pro');
    return Response.json({ creation_pro: hasAccess(rows, 'creation', 'pro'), video_reason: video.reason, offer: video.upgrade?.offer ?? null });
  },
};
