import { pageState } from 'tollgate-react/server';
import type { ToolState } from 'tollgate-react/server';

import { OfferNotice } from '@/components/OfferNotice';
import { ToolsGrid } from '@/components/ToolsGrid';
import { WorkflowRunner } from '@/components/WorkflowRunner';
import { suiteCatalog } from '@/lib/catalog';
import { localPath } from '@/lib/redirect';
import { getSession } from '@/lib/session';
import { sessionSnapshot } from '@/lib/snapshot';

export default async function ToolsPage({
  searchParams,
}: {
  searchParams: Promise<{ offer?: string; from?: string; checkout?: string }>;
}) {
  const session = await getSession();
  const { doc } = await suiteCatalog();
  // Sent here by proxy.ts: the page asked for (`from`) and the cheapest offer that unlocks it.
  const params = await searchParams;
  const offer = doc.offers.find((o) => o.key === params.offer) ?? null;
  const from = localPath(params.from, '/tools');
  // The first paint is already right. Signed out: no grants, the free tiers. Signed in:
  // the snapshot the provider keeps in its cookie, verified here with no call out (else
  // fetched from the worker; fetched too on the return from a checkout, which the cookie
  // cannot have seen yet). The browser's provider then keeps the page live.
  let initial: ToolState[] | null = null;
  // Where the server took the snapshot from (`cookie` or `worker`), said on the page.
  let snapshotFrom: string | undefined;
  if (!session) {
    initial = await pageState(doc, null, null);
  } else {
    const snap = await sessionSnapshot(session, doc.catalog.id, Boolean(params.checkout));
    if (snap.ok) initial = await pageState(doc, snap.snapshot, null);
    snapshotFrom = snap.from;
  }
  return (
    <>
      <h1 data-snapshot-from={snapshotFrom}>Tools</h1>
      <p className="status-line">
        Each tool declares the cloud tier, plan capability or limit it needs in the catalog ({doc.catalog.name}{' '}
        {doc.catalog.version}). Locked tools say why; click one to see what unlocks it.
      </p>
      {offer ? <OfferNotice offer={offer} from={from} signedIn={Boolean(session)} /> : null}
      <ToolsGrid initial={initial} catalog={doc} />
      {session && doc.limits?.some((l) => l.id === 'workflow_runs_per_day') ? <WorkflowRunner /> : null}
    </>
  );
}
