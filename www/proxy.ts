// Next.js's proxy (the file Next.js 16 renamed from middleware.ts): gates whole pages
// before they render, from the signed snapshot cookie the provider writes, with no
// network call (tollgate-react/proxy). A denied user goes to the tools page with the
// cheapest offer that unlocks the page; anything the proxy cannot decide (no cookie, a
// refused or expired snapshot, another user's) goes on to the page, whose server-side
// check (the worker) decides. The proxy makes pages fast to refuse, the worker enforces.

import type { NextRequest } from 'next/server';
import { createProxy } from 'tollgate-react/proxy';
import type { TollgateProxy } from 'tollgate-react/proxy';

import { suiteCatalog } from '@/lib/catalog';
import { snapshotPublicKeys } from '@/lib/config';
import { sessionFrom } from '@/lib/session';

let gate: TollgateProxy<NextRequest> | null = null;

/** The signed-in user: the session cookie's access token, verified here (jose; locally
 * HS256 with no call out). */
async function sessionUser(request: NextRequest): Promise<string | null> {
  return (await sessionFrom(request.cookies))?.userId ?? null;
}

export async function proxy(request: NextRequest) {
  // Made on the first request: the keys are read from the environment at run time.
  gate ??= createProxy<NextRequest>({
    // The catalog the worker enforces (GET /v1/catalog, or the app's copy when it is down),
    // read on the first request; a snapshot of another catalog version is left to the server.
    catalog: async () => (await suiteCatalog()).doc,
    publicKeys: snapshotPublicKeys(),
    rules: { '/tools/batch': { capability: 'heavy_tools' } },
    upgradePath: '/tools',
    subject: sessionUser,
  });
  return gate(request);
}

export const config = {
  matcher: ['/tools/batch/:path*'],
};
