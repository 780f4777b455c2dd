// Requests that change what a user holds (spend a draft, run a workflow, call the model,
// sign in) come from this app's own pages. The session cookie is SameSite=Lax, which keeps
// other sites out but not another origin of the same site (another port of localhost, a
// sibling subdomain): the browser's `Sec-Fetch-Site` says where a request came from, and
// anything but this origin is refused. A request without the header (a server, a test, an
// old browser) is left to the session check.

import { NextResponse } from 'next/server';

/** A 403 for a request a browser sent from another origin, else null. */
export function fromAnotherOrigin(req: Request): NextResponse | null {
  const site = req.headers.get('sec-fetch-site');
  if (site === null || site === 'same-origin' || site === 'none') return null;
  return NextResponse.json(
    { error: { code: 'cross_origin', message: 'this request must come from the app\u2019s own pages' } },
    { status: 403 },
  );
}

/** The client's Idempotency-Key, blank ones left out. */
export function idempotencyKeyOf(req: Request): string | undefined {
  return req.headers.get('idempotency-key')?.trim() || undefined;
}
