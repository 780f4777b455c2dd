// An invite to an organization of the Org Seats app, opened from its link: the signed-in
// user accepts it (POST /v1/invites/{token}/accept to the Org Seats worker, which checks
// that it is still open, not expired, and sent to this user's address).

import { AcceptInvite } from '@/components/AcceptInvite';
import { orgWorkerUrl } from '@/lib/config';
import { getSession } from '@/lib/session';

export default async function InvitePage({ params }: { params: Promise<{ token: string }> }) {
  const { token } = await params;
  const session = await getSession();
  return (
    <>
      <h1>An invite to an organization</h1>
      {session ? (
        <AcceptInvite token={token} workerUrl={orgWorkerUrl()} accessToken={session.accessToken} email={session.email ?? session.userId} />
      ) : (
        <p className="card">
          <a href={`/signin?next=${encodeURIComponent(`/invites/${token}`)}`} data-testid="invite-signin">
            Sign in
          </a>{' '}
          with the address the invite was sent to, to accept it.
        </p>
      )}
    </>
  );
}
