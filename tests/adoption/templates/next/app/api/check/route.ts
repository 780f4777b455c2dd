// A route handler.
import { explainAccess, hasAccess, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc } from 'tollgate';
import catalogJson from '@/tollgate-catalog.json';
import { rows } from '@/lib/rows';

export const dynamic = 'force-dynamic';

export function GET(): Response {
  useCatalog(loadCatalog(catalogJson as CatalogDoc));
  const video = explainAccess(rows, 'video', 'pro');
  return Response.json({ creation_pro: hasAccess(rows, 'creation', 'pro'), video_reason: video.reason, offer: video.upgrade?.offer ?? null });
}
