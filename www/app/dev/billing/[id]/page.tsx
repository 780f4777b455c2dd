// /dev/billing/<id> — LOCAL STAND-IN FOR STRIPE'S CUSTOMER PORTAL (development and tests
// only; TOLLGATE_DEV_AUTH=1, otherwise 404). The `url` of a Billing Portal session the
// worker created (POST /v1/portal) leads here: the customer's subscriptions as the
// stand-in holds them, cancel at period end and resume, payment collection paused and
// collecting again (as the Dashboard pauses it; each sends `customer.subscription.updated`
// to the app's worker, as the real portal's changes do),
// and the way back to the session's return_url.

import { notFound } from 'next/navigation';

import { devStandInsEnabled } from '@/lib/config';
import { amountFormatter } from '@/lib/standin/money';
import { APP_NAMES, type Obj } from '@/lib/standin/state';
import { portalRecord, priceName, subscriptionsOfCustomer } from '@/lib/standin/stripe';

const day = (s: unknown) => (typeof s === 'number' ? new Date(s * 1000).toISOString().slice(0, 10) : '—');

export default async function StandInPortal({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<{ error?: string }> }) {
  if (!devStandInsEnabled()) notFound();
  const showAmount = await amountFormatter();
  const { id } = await params;
  const { error } = await searchParams;
  const rec = portalRecord(id);
  if (!rec) notFound();
  const s = rec.session;
  const subs = subscriptionsOfCustomer(s.customer as string);
  return (
    <section className="card" data-testid="standin-portal" data-customer={s.customer as string}>
      <h1>Billing</h1>
      <p className="status-line">
        <span className="standin">local stand-in</span> for Stripe&apos;s customer portal, for development only (opened by the{' '}
        {APP_NAMES[rec.app]} worker). A change here goes to the worker of the app that sold the subscription as{' '}
        <code>customer.subscription.updated</code>, as the real portal&apos;s do.
      </p>
      <p className="mono">Customer {s.customer as string}</p>
      {error ? <p className="message error">{error}</p> : null}
      {subs.length === 0 ? <p>No subscriptions.</p> : null}
      <ul className="offers">
        {subs.map(({ subscription: sub }) => {
          const item = (sub.items as { data: Obj[] }).data[0];
          const price = item.price as Obj;
          return (
            <li key={sub.id as string} data-subscription={sub.id as string} data-status={sub.status as string}>
              <span>
                <strong>{priceName(price)}</strong> ·{' '}
                {showAmount(price.unit_amount as number, price.currency as string)} × {item.quantity as number}
                <br />
                <span className="status-line">
                  {sub.status as string}
                  {sub.status === 'canceled'
                    ? ''
                    : sub.cancel_at_period_end
                      ? ` · ends on ${day(item.current_period_end)}`
                      : ` · renews on ${day(item.current_period_end)}`}
                  {sub.pause_collection ? ' · payments paused' : ''}
                </span>
              </span>
              {sub.status !== 'canceled' ? (
                <span className="actions" style={{ display: 'flex', gap: '0.5rem' }}>
                  <form method="post" action={`/api/dev/billing/${id}`}>
                    <input type="hidden" name="subscription" value={sub.id as string} />
                    <input type="hidden" name="cancel_at_period_end" value={sub.cancel_at_period_end ? 'false' : 'true'} />
                    <button type="submit" className="secondary" data-testid={`portal-${sub.cancel_at_period_end ? 'resume' : 'cancel'}-${sub.id as string}`}>
                      {sub.cancel_at_period_end ? 'Renew plan' : 'Cancel plan'}
                    </button>
                  </form>
                  <form method="post" action={`/api/dev/billing/${id}`}>
                    <input type="hidden" name="subscription" value={sub.id as string} />
                    <input type="hidden" name="pause_collection" value={sub.pause_collection ? 'false' : 'true'} />
                    <button type="submit" className="secondary" data-testid={`portal-${sub.pause_collection ? 'collect' : 'pause'}-${sub.id as string}`}>
                      {sub.pause_collection ? 'Collect payments' : 'Pause payments'}
                    </button>
                  </form>
                </span>
              ) : null}
            </li>
          );
        })}
      </ul>
      {s.return_url ? (
        <a className="button" href={s.return_url as string} data-testid="portal-return">
          ← Return to the app
        </a>
      ) : null}
    </section>
  );
}
