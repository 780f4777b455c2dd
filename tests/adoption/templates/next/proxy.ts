// Next.js 16's proxy (Node.js runtime): the package decides before the page renders, and
// tollgate-react/proxy checks a snapshot cookie (a malformed one here: refused by the
// core's verifier, so the request passes; the outcome is reported in a header).
import { NextResponse } from 'next/server';
import type { NextRequest } from 'next/server';
import { hasAccess, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc } from 'tollgate';
import { createProxy } from 'tollgate-react/proxy';
import type { ProxyOutcome } from 'tollgate-react/proxy';
import catalogJson from '@/tollgate-catalog.json';
import { rows } from '@/lib/rows';

useCatalog(loadCatalog(catalogJson as CatalogDoc));

let last: ProxyOutcome | null = null;
/** The outcome the gate reported for the request just decided (requests here come one at a time). */
function takeOutcome(): ProxyOutcome | null {
  const o = last;
  last = null;
  return o;
}
const gate = createProxy<NextRequest>({
  catalog: catalogJson as CatalogDoc,
  publicKeys: '',
  rules: { '/server': { capability: 'use_ai' } },
  upgradePath: '/client',
  onOutcome: (o) => {
    last = o;
  },
});

export async function proxy(req: NextRequest): Promise<Response> {
  const refused = await gate(req);
  if (refused) return refused;
  const res = NextResponse.next();
  res.headers.set('x-tollgate-proxy', `creation:pro=${hasAccess(rows, 'creation', 'pro')};video:pro=${hasAccess(rows, 'video', 'pro')};path=${req.nextUrl.pathname}`);
  const o = takeOutcome();
  if (o) res.headers.set('x-tollgate-react-proxy', o.action === 'pass' ? `pass:${o.why}` : o.action);
  return res;
}

export const config = { matcher: ['/server', '/api/check'] };
