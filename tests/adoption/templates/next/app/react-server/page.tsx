// tollgate-react's server entry in a server component (it imports `server-only`).
import 'server-only';
import { decide } from 'tollgate-react/server';
import type { CatalogDoc, Grant } from 'tollgate-react/server';
import catalogJson from '@/tollgate-catalog.json';

export const dynamic = 'force-dynamic';

const grants: Grant[] = [
  { id: 'stripe:sub_1:creation', product: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
];

export default async function Page() {
  const catalog = catalogJson as CatalogDoc;
  const creation = await decide(catalog, { grants }, { product: 'creation', tier: 'pro' });
  const video = await decide(catalog, { grants }, { product: 'video', tier: 'pro' });
  return <p id="answer" data-creation={String(creation.allowed)} data-video-reason={video.reason ?? ''} />;
}
