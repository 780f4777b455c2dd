'use client';

// The user's current entitlements: one row per grant of the signed snapshot, a bar
// from valid_from to valid_to on a shared time axis, coloured by status, with a line
// at "now". Subscriptions can be canceled at period end through the checkout stand-in.

import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { useEntitlements } from 'tollgate-react';
import type { Grant } from 'tollgate-react';

const DAY = 86_400_000;

export function AccountTimeline() {
  const t = useEntitlements();
  const [msg, setMsg] = useState<string | null>(null);
  const router = useRouter();
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

  /** The Stripe subscription a grant came from: the core's `source_ref` is `stripe:sub_...`. */
  const stripeSubscription = (g: Grant) => (g.source_ref?.startsWith('stripe:sub_') ? g.source_ref.slice('stripe:'.length) : null);

  async function cancel(g: Grant) {
    setMsg(null);
    const r = await fetch('/api/dev/checkout', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        action: 'cancel_at_period_end',
        offer: g.offer,
        subscription: stripeSubscription(g),
        period_start: Math.floor(Date.parse(g.valid_from) / 1000),
        period_end: g.valid_to ? Math.floor(Date.parse(g.valid_to) / 1000) : undefined,
      }),
    });
    const body = (await r.json().catch(() => ({}))) as { message?: string };
    if (!r.ok) {
      setMsg(body.message ?? `HTTP ${r.status}`);
      return;
    }
    await t.refresh({ reason: 'cancel', until: (s) => s.grants.some((x) => x.source_ref === g.source_ref && x.status === 'canceled') });
    setMsg('Canceled at period end: access stays until the period ends.');
    // The history below is rendered on the server from the database: render it again.
    router.refresh();
  }

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
            <th />
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
              <td>
                {g.source === 'stripe' && g.status === 'active' && stripeSubscription(g) && g.valid_to ? (
                  <button type="button" className="secondary" onClick={() => cancel(g)} data-testid={`cancel-${g.source_ref}`}>
                    Cancel at period end
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {msg ? <p className="message ok">{msg}</p> : null}
    </section>
  );
}
