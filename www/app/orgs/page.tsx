// The Org Seats app's organizations of the signed-in user, from their verified snapshot
// of the Org Seats worker (role, seat, seats used of the total), and a new organization
// (POST /v1/orgs: the user becomes its owner).

import Link from 'next/link';

import { CreateOrganization } from '@/components/CreateOrganization';
import { orgWorkerUrl } from '@/lib/config';
import { myOrganizations } from '@/lib/orgs';
import { getSession } from '@/lib/session';

export default async function OrganizationsPage() {
  const session = await getSession();
  if (!session) {
    return (
      <>
        <h1>Organizations</h1>
        <p className="card">
          <a href="/signin?next=/orgs">Sign in</a> to see your organizations.
        </p>
      </>
    );
  }
  const orgs = await myOrganizations(session);
  return (
    <>
      <h1>Organizations</h1>
      <p className="status-line">
        Org Seats: organization plans sold per seat. Owners and admins invite people, give and take seats; a member uses the
        plan&apos;s features only while holding a seat.
      </p>
      {orgs.ok ? (
        orgs.value.length ? (
          <ul className="offers" data-testid="my-orgs">
            {orgs.value.map((o) => (
              <li key={o.id} data-testid="my-org" data-org={o.id} data-role={o.role ?? ''} data-seat={String(o.seat)}>
                <span>
                  <Link href={`/orgs/${o.id}`}>
                    <strong>{o.name}</strong>
                  </Link>{' '}
                  · {o.role} · {o.seat ? 'you hold a seat' : 'no seat'} · {o.seats.used} of {o.seats.count} seats used
                </span>
              </li>
            ))}
          </ul>
        ) : (
          <p data-testid="no-orgs">You belong to no organization yet.</p>
        )
      ) : (
        <p className="message error">Your organizations could not be read: {orgs.message}</p>
      )}
      <CreateOrganization workerUrl={orgWorkerUrl()} accessToken={session.accessToken} />
    </>
  );
}
