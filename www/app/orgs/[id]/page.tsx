// One organization of the Org Seats app: what its worker shows the signed-in user
// (GET /v1/orgs/{id}, with their token) and what they hold through it, decided by the
// package from their verified snapshot (getOrganizationEntitlements). Rendered on the
// server, so the first paint already has the seats and the locked features; changes go
// from the browser to the worker (components/Organization.tsx).

import { Organization } from '@/components/Organization';
import { orgCatalog } from '@/lib/catalog';
import { orgWorkerUrl } from '@/lib/config';
import { myEntitlements, readOrg } from '@/lib/orgs';
import { getSession } from '@/lib/session';

export default async function OrganizationPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const session = await getSession();
  if (!session) {
    return (
      <>
        <h1>Organization</h1>
        <p className="card">
          <a href={`/signin?next=/orgs/${encodeURIComponent(id)}`}>Sign in</a> to see this organization.
        </p>
      </>
    );
  }
  const [view, mine, { doc }] = await Promise.all([readOrg(session, id), myEntitlements(session, id), orgCatalog()]);
  if (!view.ok) {
    return (
      <>
        <h1>Organization</h1>
        <p className="message error" data-testid="org-error" data-code={view.code}>
          {view.message} ({view.code})
        </p>
        <p>
          <a href="/orgs">Your organizations</a>
        </p>
      </>
    );
  }
  return (
    <Organization
      view={view.value}
      mine={mine.ok ? mine.value : null}
      entitlementsProblem={mine.ok ? null : `${mine.message} (${mine.code})`}
      catalog={doc}
      workerUrl={orgWorkerUrl()}
      accessToken={session.accessToken}
      userId={session.userId}
    />
  );
}
