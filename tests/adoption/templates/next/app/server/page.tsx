// A server component: the package's Node entry, bundled by Next (no configuration).
import { explainAccess, hasAccess, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc } from 'tollgate';
import catalogJson from '@/tollgate-catalog.json';
import { rows } from '@/lib/rows';

export const dynamic = 'force-dynamic';

export default function Page() {
  useCatalog(loadCatalog(catalogJson as CatalogDoc));
  const video = explainAccess(rows, 'video', 'pro');
  return (
    <p id="answer" data-creation-pro={String(hasAccess(rows, 'creation', 'pro'))} data-video-reason={video.reason ?? ''}>
      {video.upgrade?.offer ?? ''}
    </p>
  );
}
