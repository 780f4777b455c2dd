// The account page's history (a server component): every change of the user's grants
// as the database recorded it (entitlement_history, read through the REST API with the
// user's token, so RLS filters), named and in order, and the expiries that have passed.

import { EVENT_LABEL, fetchHistory, timeline } from '@/lib/history';
import type { Session } from '@/lib/session';

const when = (t: string) => new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

export async function EntitlementHistory({ session, productNames }: { session: Session; productNames: Record<string, string> }) {
  const got = await fetchHistory(session);
  if ('error' in got) {
    return (
      <section className="card history" data-testid="history" data-state="error">
        <h2>History</h2>
        <p className="error">The history could not be read: {got.error}</p>
      </section>
    );
  }
  const events = timeline(got.rows, Date.now());
  return (
    <section className="card history" data-testid="history" data-state="ready" data-count={events.length}>
      <h2>History</h2>
      <p className="status-line">
        Every change to your entitlements as the database recorded it (table <span className="mono">entitlement_history</span>,
        read with your own access token), oldest first.
      </p>
      {events.length === 0 ? (
        <p data-testid="no-history">Nothing yet: you have never held a paid plan.</p>
      ) : (
        <ol className="events">
          {events.map((e, i) => (
            <li
              key={`${e.rowId ?? 'expiry'}-${e.entitlementId}-${i}`}
              className={`event ${e.kind}`}
              data-event={e.kind}
              data-grant={e.grantKey}
              data-source-ref={e.sourceRef ?? ''}
              data-at={e.at}
            >
              <time dateTime={e.at}>{when(e.at)}</time>
              <span className="what">
                <strong>{EVENT_LABEL[e.kind]}</strong> · {productNames[e.product] ?? e.product} {e.tier}
                {e.offer ? <span className="mono"> · {e.offer}</span> : null}
              </span>
              <span className="detail">
                {e.status ? `${e.status}` : ''}
                {e.validTo ? `${e.status ? ', ' : ''}${e.kind === 'expiry' ? 'ended' : 'until'} ${when(e.validTo)}` : e.status ? ', open-ended' : ''}
                {e.sourceRef ? <span className="mono"> · {e.sourceRef}</span> : null}
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
