// Redirects from the app's own route handlers.
//
// The Location is always a path, never an absolute URL: the browser resolves it against
// the URL it asked for, so the user stays on the origin the session cookie was just set
// (or cleared) for, whether that is 127.0.0.1, localhost or a proxy's host name. `req.url`
// in a route handler is not that URL: Next builds it from the host name the server was
// started with (`localhost` by default), not from the request, so `new URL(path, req.url)`
// can send the user to another origin, where the cookie does not exist.

import { NextResponse } from 'next/server';

/**
 * `path` when it is a path of this site (`/tools`, `/account?tab=1`), else `fallback`.
 * Refused: anything not starting with one `/`, `//host` and `/\host` (browsers read both
 * as another host), backslashes anywhere, and characters outside printable ASCII.
 */
export function localPath(path: unknown, fallback: string): string {
  if (typeof path !== 'string') return fallback;
  if (!/^\/(?![/\\])[\x21-\x7e]*$/.test(path) || path.includes('\\')) return fallback;
  return path;
}

/** `303 See Other` to a path of this site, relative to the origin the request came to. */
export function seeOther(path: string): NextResponse {
  return new NextResponse(null, { status: 303, headers: { location: localPath(path, '/') } });
}
