// Batch tools: a whole page for plans with `heavy_tools` (the suite at basic or above).
//
// proxy.ts gates it first, from the signed snapshot cookie and with no network call: a
// user whose snapshot lacks `heavy_tools` is redirected to the offer before this page
// renders. Whatever reaches this page (no cookie yet, a snapshot the proxy could not use)
// is decided again here by the worker (`check`), which is what enforces.

import { check } from 'tollgate-react/server';

import { suiteCatalog } from '@/lib/catalog';
import { workerUrl } from '@/lib/config';
import { getSession } from '@/lib/session';

const CAPABILITY = 'heavy_tools';

export default async function BatchToolsPage() {
  const session = await getSession();
  const { doc } = await suiteCatalog();
  const tools = (doc.tools ?? []).filter((t) => t.requires.capability === CAPABILITY);

  let body;
  if (!session) {
    body = (
      <p className="status-line" data-testid="signed-out-note">
        <a href="/signin?next=/tools/batch">Sign in</a> to use the batch tools.
      </p>
    );
  } else {
    const answer = await check(CAPABILITY, { workerUrl: workerUrl(), accessToken: session.accessToken });
    if (answer.ok) {
      body = (
        <div className="grid" data-testid="batch-tools">
          {tools.map((t) => (
            <div key={t.id} className="card tool" data-tool={t.id}>
              <h3>{t.label}</h3>
              {t.description ? <p>{t.description}</p> : null}
            </div>
          ))}
        </div>
      );
    } else {
      const upgrade = answer.upgrade;
      body = (
        <p className="card" data-testid="batch-denied" data-code={answer.code}>
          {answer.message}{' '}
          {upgrade ? <a href={`/tools?offer=${encodeURIComponent(upgrade.offer)}&from=/tools/batch`}>See {upgrade.label}</a> : null}
        </p>
      );
    }
  }

  return (
    <>
      <h1>Batch tools</h1>
      <p className="status-line">Heavy tools that work on many files at once: plans with heavy tools (the suite at basic or above).</p>
      {body}
    </>
  );
}
