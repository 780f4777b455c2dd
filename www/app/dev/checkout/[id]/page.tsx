// /dev/checkout/<id> — LOCAL STAND-IN FOR STRIPE CHECKOUT'S AND RAZORPAY'S HOSTED PAGES
// (development and tests only; TOLLGATE_DEV_AUTH=1, otherwise 404).
//
// The `url` of a Checkout Session (or the `short_url` of a Razorpay subscription) that
// the worker created through the stand-in API leads here. The page shows what the worker
// asked for, exactly as recorded; "Pay" completes it (app/api/dev/checkout/[id]): the
// provider's webhooks for this session go to the app's worker, then the browser goes to
// the session's success_url. No card, no provider account.

import { headers } from 'next/headers';
import { notFound } from 'next/navigation';

import { devStandInsEnabled } from '@/lib/config';
import { localPath } from '@/lib/redirect';
import { getSession } from '@/lib/session';
import { amountFormatter } from '@/lib/standin/money';
import { razorpayRecord } from '@/lib/standin/razorpay';
import { APP_NAMES, type Delivery, type Obj } from '@/lib/standin/state';
import { priceName, sessionRecord } from '@/lib/standin/stripe';

function Table({ rows, testid }: { rows: [string, string | null | undefined][]; testid?: string }) {
  return (
    <table className="grants" data-testid={testid}>
      <tbody>
        {rows
          .filter(([, v]) => v !== undefined && v !== null && v !== '')
          .map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td className="mono">{v}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

function Deliveries({ list }: { list: Delivery[] }) {
  if (!list.length) return null;
  return (
    <>
      <h3>Webhooks sent to the worker</h3>
      <ul data-testid="standin-deliveries">
        {list.map((d) => (
          <li key={d.event} data-type={d.type} data-status={d.status}>
            <code>{d.type}</code> → {d.status || 'no answer'} <span className="status-line">{d.body.slice(0, 200)}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

const meta = (m: unknown) =>
  Object.entries((m as Record<string, string>) ?? {}).map(([k, v]) => [k, v] as [string, string]);

export default async function StandInCheckout({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<{ error?: string }> }) {
  if (!devStandInsEnabled()) notFound();
  const showAmount = await amountFormatter();
  const { id } = await params;
  const { error } = await searchParams;
  const who = await getSession();
  const stripe = sessionRecord(id);
  const rzp = stripe ? undefined : razorpayRecord(id);
  if (!stripe && !rzp) notFound();
  const label = (
    <p className="status-line">
      <span className="standin">local stand-in</span> for {stripe ? 'Stripe Checkout' : 'Razorpay Checkout'}, for development only: no card is
      charged. “Pay” sends the webhooks {stripe ? 'Stripe' : 'Razorpay'} sends for exactly this {stripe ? 'session' : rzp!.entity.entity as string},
      signed as it signs them, to the {APP_NAMES[(stripe ?? rzp)!.app]} worker.
    </p>
  );

  if (stripe) {
    const s = stripe.session;
    const open = s.status === 'open';
    const line = stripe.lines[0];
    const price = line.price;
    const recurring = price.recurring as { interval: string } | null;
    const trial = stripe.subscriptionData.trial_period_days;
    const email = (s.customer_email as string | null) ?? who?.email ?? '';
    return (
      <section className="card" data-testid="standin-checkout" data-session={id} data-status={s.status as string}>
        <h1>Checkout</h1>
        {label}
        <p data-testid="standin-line">
          <strong>{priceName(price)}</strong> · {line.quantity} ×{' '}
          {showAmount(price.unit_amount as number, price.currency as string)}
          {recurring ? ` / ${recurring.interval}` : ' once'}
          {trial ? ` · ${trial}-day free trial` : ''}
        </p>
        <p>
          Due today: <strong data-testid="standin-total">{showAmount(s.amount_total as number, s.currency as string)}</strong>
        </p>
        <Table
          testid="standin-session"
          rows={[
            ['session', id],
            ['mode', s.mode as string],
            ['price', price.id as string],
            ['quantity', String(line.quantity)],
            ['client_reference_id', s.client_reference_id as string | null],
            ['customer', s.customer as string | null],
            ...meta(s.metadata).map(([k, v]) => [`metadata[${k}]`, v] as [string, string]),
            ...meta(stripe.subscriptionData.metadata).map(([k, v]) => [`subscription_data[metadata][${k}]`, v] as [string, string]),
            ...meta(stripe.paymentIntentData.metadata).map(([k, v]) => [`payment_intent_data[metadata][${k}]`, v] as [string, string]),
            ['success_url', s.success_url as string | null],
          ]}
        />
        {error ? <p className="message error" data-testid="standin-error">{error}</p> : null}
        {open ? (
          <form className="stack" method="post" action={`/api/dev/checkout/${id}`}>
            <label>
              Email
              <input name="email" type="email" defaultValue={email} required />
            </label>
            <button type="submit" data-testid="standin-pay">
              Pay {showAmount(s.amount_total as number, s.currency as string)}
            </button>
            {s.cancel_url ? (
              <a href={s.cancel_url as string} data-testid="standin-cancel">
                ← Back (cancel)
              </a>
            ) : null}
          </form>
        ) : (
          <p data-testid="standin-done">
            This session is {s.status as string}.{' '}
            {s.status === 'complete' && s.success_url ? <a href={s.success_url as string}>Continue</a> : null}
          </p>
        )}
        <Deliveries list={stripe.deliveries} />
      </section>
    );
  }

  const r = rzp!;
  const e = r.entity as Obj;
  const isSub = e.entity === 'subscription';
  // Razorpay's pages end on their own confirmation; this one links back to where the buyer came from.
  // Only a page of this app: a Referer is whatever the client sends.
  const h = await headers();
  const from = h.get('referer');
  if (from && !r.returnTo) {
    try {
      const u = new URL(from);
      if (u.host === h.get('host')) r.returnTo = localPath(u.pathname + u.search, '/tools');
    } catch {
      // not a URL: no way back but the default
    }
  }
  return (
    <section className="card" data-testid="standin-checkout" data-session={id} data-status={e.status as string}>
      <h1>Checkout</h1>
      {label}
      <Table
        testid="standin-session"
        rows={[
          [isSub ? 'subscription' : 'order', id],
          ['plan_id', e.plan_id as string | undefined],
          ['amount', isSub ? undefined : showAmount(e.amount as number, e.currency as string)],
          ['quantity', isSub ? String(e.quantity) : undefined],
          ['total_count', isSub ? String(e.total_count) : undefined],
          ...meta(e.notes).map(([k, v]) => [`notes[${k}]`, v] as [string, string]),
        ]}
      />
      {error ? <p className="message error" data-testid="standin-error">{error}</p> : null}
      {e.status === 'created' ? (
        <form className="stack" method="post" action={`/api/dev/checkout/${id}`}>
          <label>
            Email
            <input name="email" type="email" defaultValue={who?.email ?? ''} required />
          </label>
          <button type="submit" data-testid="standin-pay">
            Pay
          </button>
          {r.returnTo ? (
            <a href={r.returnTo} data-testid="standin-cancel">
              ← Back
            </a>
          ) : null}
        </form>
      ) : (
        <p data-testid="standin-done">
          Paid ({e.status as string}). {r.returnTo ? <a href={r.returnTo}>Back to the app</a> : null}
        </p>
      )}
      <Deliveries list={r.deliveries} />
    </section>
  );
}
