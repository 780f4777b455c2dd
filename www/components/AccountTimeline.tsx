'use client';

// The user's current entitlements: one row per grant of the signed snapshot, a bar
// from valid_from to valid_to on a shared time axis, coloured by status, with a line
// at "now". (Subscriptions are canceled and resumed in components/Subscriptions.tsx.)

import { useEntitlements } from 'tollgate-react';

const DAY = 86_400_000;

export function AccountTimeline() {
  const t = useEntitlements();
  if (t.status !== 'ready') return <div className="skeleton" />;
  const grants = t.grants;
  if (!grants.length) return <p data-testid="no-grants">No entitlements yet: everything is on the free tiers.</p>;
  const now = t.now();
  const starts = grants.map((g) => Date.parse(g.valid_from));
  const ends = grants.map((g) => (g.valid_to ? Date.parse(g.valid_to) : now + 30 * DAY));
  const lo = Math.min(now - DAY, ...starts);
  const hi = Math.max(now + DAY, ...ends);
  const pct = (x: number) => `${(((x - lo) / (hi - lo)) * 100).toFixed(2)}%`;
  const name = (p: string) => t.catalog?.products.find((x) => x.id === p)?.name ?? p;

  return (
    <section className="card" data-testid="timeline">
      <h2>Current entitlements</h2>
      <div className="timeline">
        {grants.map((g, i) => (
          <div className="row" key={g.id} data-grant={g.id} data-status={g.status}>
            <span>
              {name(g.product)} · {g.tier}
              <br />
              <span className="status-line">{g.status}</span>
            </span>
            <div className="track">
              <div className={`bar ${g.status}`} style={{ left: pct(starts[i]), width: `calc(${pct(ends[i])} - ${pct(starts[i])})` }} title={`${g.valid_from} → ${g.valid_to ?? 'open-ended'}`} />
              <div className="now" style={{ left: pct(now) }} />
            </div>
          </div>
        ))}
      </div>
      <table className="grants">
        <thead>
          <tr>
            <th>Product</th>
            <th>Tier</th>
            <th>Status</th>
            <th>From</th>
            <th>Until</th>
            <th>Source</th>
          </tr>
        </thead>
        <tbody>
          {grants.map((g) => (
            <tr key={g.id}>
              <td>{name(g.product)}</td>
              <td>{g.tier}</td>
              <td>{g.status}</td>
              <td>{new Date(g.valid_from).toLocaleString()}</td>
              <td>{g.valid_to ? new Date(g.valid_to).toLocaleString() : 'open-ended'}</td>
              <td>
                {g.source}
                {g.offer ? ` · ${g.offer}` : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
