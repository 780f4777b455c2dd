import { pageState } from 'tollgate-react/server';

import { OfferNotice } from '@/components/OfferNotice';
import { ToolsGrid } from '@/components/ToolsGrid';
import { WorkflowRunner } from '@/components/WorkflowRunner';
import { suiteCatalog } from '@/lib/catalog';
import { localPath } from '@/lib/redirect';
import { getSession } from '@/lib/session';

export default async function ToolsPage({ searchParams }: { searchParams: Promise<{ offer?: string; from?: string }> }) {
  const session = await getSession();
  const { doc } = await suiteCatalog();
  // Sent here by proxy.ts: the page asked for (`from`) and the cheapest offer that unlocks it.
  const params = await searchParams;
  const offer = doc.offers.find((o) => o.key === params.offer) ?? null;
  const from = localPath(params.from, '/tools');
  // Signed out, the answer is known on the server (no grants: the free tiers), so the
  // first paint is already right. Signed in, the browser answers from its cached snapshot.
  const initial = session ? null : await pageState(doc, null, null);
  return (
    <>
      <h1>Tools</h1>
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
