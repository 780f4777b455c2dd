import { seeOther } from '@/lib/redirect';
import { ACCESS_TOKEN_COOKIE } from '@/lib/session';

export async function POST() {
  // A path, not an absolute URL: the browser stays on the origin whose cookie is cleared.
  const res = seeOther('/tools');
  res.cookies.set(ACCESS_TOKEN_COOKIE, '', { path: '/', maxAge: 0 });
  return res;
}
