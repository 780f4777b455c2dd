// The signed-in user's snapshot for a server render (/tools, /tools/demo).

import { cookies } from 'next/headers';
import { SNAPSHOT_COOKIE, renderSnapshot } from 'tollgate-react/server';

import { snapshotPublicKeys, workerUrl } from '@/lib/config';
import type { Session } from '@/lib/session';

/** From the provider's cookie, verified here with no call out; else fetched from the
 * worker. `fresh`: fetched in any case (back from a checkout, the cookie predates it). */
export async function sessionSnapshot(session: Session, catalogId: string, fresh: boolean) {
  return renderSnapshot({
    workerUrl: workerUrl(),
    accessToken: session.accessToken,
    publicKeys: snapshotPublicKeys(),
    subject: session.userId,
    catalogId,
    cookie: (await cookies()).get(SNAPSHOT_COOKIE)?.value,
    fresh,
  });
}
