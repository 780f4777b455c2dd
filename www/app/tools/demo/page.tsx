// The VCM Suite's demo tool page, rendered on the server with the tollgate package:
// signed out, the free part only; signed in without the entitlement, the free part
// and an upgrade banner; entitled (Creation Cloud pro or better), the pro part.
//
// The server takes the user's signed snapshot from the provider's cookie (or, without
// one, from the worker), verifies it with the public key and decides `creation` / `pro`
// with the core, so the HTML is right before any script runs. The client gate then
// keeps it live (a purchase unlocks it without a reload; the end of a canceled period
// locks it).

import { decide } from 'tollgate-react/server';
import type { Decision } from 'tollgate-react/server';

import { DemoProSection } from '@/components/DemoProSection';
import { FreeToolComponent } from '@/components/FreeToolComponent';
import { suiteCatalog } from '@/lib/catalog';
import { getSession } from '@/lib/session';
import { sessionSnapshot } from '@/lib/snapshot';

const CLOUD = 'creation';
const REQUIRED = 'pro';

export default async function DemoToolPage({ searchParams }: { searchParams: Promise<{ checkout?: string }> }) {
  const session = await getSession();
  const { doc } = await suiteCatalog();

  let decision: Decision | null = null;
  let token: string | null = null;
  let problem: string | null = null;
  // Where the server took the snapshot from (`cookie` or `worker`), said on the page.
  let snapshotFrom: string | undefined;
  if (session) {
    // Back from a checkout: the cookie predates the purchase.
    const fetched = await sessionSnapshot(session, doc.catalog.id, Boolean((await searchParams).checkout));
    snapshotFrom = fetched.from;
    if (fetched.ok) {
      token = fetched.token;
      decision = await decide(doc, fetched.snapshot, { product: CLOUD, tier: REQUIRED });
    } else {
      // Tampered, expired or unreachable: the server does not guess; the browser's
      // cached snapshot (if any) answers, and until then the gate shows nothing paid.
      problem = `${fetched.code}: ${fetched.message}`;
    }
  }

  return (
    <>
      <h1 data-snapshot-from={snapshotFrom}>Caption Studio</h1>
      <p className="status-line">
        The VCM Suite&apos;s demo tool: the free editor for everyone; AI captions need Creation Cloud <code>{REQUIRED}</code>.
      </p>
      <FreeToolComponent />
      {session ? (
        <DemoProSection cloud={CLOUD} tier={REQUIRED} initial={decision} token={token} serverProblem={problem} />
      ) : (
        <p className="status-line" data-testid="signed-out-note">
          <a href="/signin">Sign in</a> to see the pro tools.
        </p>
      )}
    </>
  );
}
