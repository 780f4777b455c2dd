// Next.js 16's proxy (Node.js runtime): the package decides before the page renders.
import { NextResponse } from 'next/server';
import type { NextRequest } from 'next/server';
import { hasAccess, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc } from 'tollgate';
import catalogJson from '@/tollgate-catalog.json';
import { rows } from '@/lib/rows';

useCatalog(loadCatalog(catalogJson as CatalogDoc));

export function proxy(req: NextRequest): NextResponse {
  const res = NextResponse.next();
  res.headers.set('x-tollgate-proxy', `creation:pro=${hasAccess(rows, 'creation', 'pro')};video:pro=${hasAccess(rows, 'video', 'pro')};path=${req.nextUrl.pathname}`);
  return res;
}

export const config = { matcher: ['/server', '/api/check'] };
