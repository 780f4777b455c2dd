'use client';

// "Accept the invite": POST /v1/invites/{token}/accept to the Org Seats worker with the
// signed-in user's token. The worker decides (once, before it expires, by the address it
// was sent to) and answers the membership and whether the reserved seat was given; a
// refusal is shown as it says.

import Link from 'next/link';
import { useState } from 'react';

import { postWorker } from '@/lib/billing';

interface Accepted {
  organization_id: string;
  role: string;
  seat: boolean;
  seat_reserved: boolean;
}

export function AcceptInvite({ token, workerUrl, accessToken, email }: { token: string; workerUrl: string; accessToken: string; email: string }) {
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<Accepted | null>(null);
  const [error, setError] = useState<{ code: string; text: string } | null>(null);

  async function accept() {
    setBusy(true);
    setError(null);
    const a = await postWorker<Accepted>(workerUrl, accessToken, `/v1/invites/${encodeURIComponent(token)}/accept`, {});
    setBusy(false);
    if (!a.ok) return setError({ code: a.error, text: a.message });
    setDone(a.body);
  }

  if (done) {
    return (
      <section className="card" data-testid="invite-accepted" data-org={done.organization_id} data-role={done.role} data-seat={String(done.seat)}>
        <p className="message ok">
          You joined as {done.role}
          {done.seat ? ', with a seat.' : done.seat_reserved ? '; the seat reserved for you is no longer free: ask an owner or admin for one.' : ', without a seat.'}
        </p>
        <p>
          <Link href={`/orgs/${done.organization_id}`} data-testid="invite-org-link">
            Go to the organization
          </Link>
        </p>
      </section>
    );
  }
  return (
    <section className="card">
      <p>
        You are signed in as <strong>{email}</strong>. Accepting makes you a member of the organization that invited this
        address.
      </p>
      <button type="button" disabled={busy} onClick={accept} data-testid="invite-accept">
        {busy ? 'Accepting…' : 'Accept the invite'}
      </button>
      {error ? (
        <p className="message error" data-testid="invite-error" data-code={error.code}>
          {error.text} ({error.code})
        </p>
      ) : null}
    </section>
  );
}
