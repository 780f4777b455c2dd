// POST /api/dev/checkout — CHECKOUT STAND-IN (local development and tests only).
// Body: { offer, clouds?, action?: "purchase" | "cancel_at_period_end", period_end?,
//         subscription?, period_start? }.
// Sends the Stripe-signed events of a completed Checkout (or of a cancellation at
// period end) to the local worker; see lib/stripeEvents.ts.

import { NextResponse } from 'next/server';

import { studioCatalog, suiteCatalog } from '@/lib/catalog';
import { devStandInsEnabled, stripeWebhookSecret, studioWorkerUrl, workerUrl } from '@/lib/config';
import { selectAsUser } from '@/lib/rest';
import { getSession } from '@/lib/session';
import { cancelAtPeriodEndEvent, checkoutEvents, deliver, offerByKey } from '@/lib/stripeEvents';

const bad = (status: number, error: string, message: string) => NextResponse.json({ error, message }, { status });

export async function POST(req: Request) {
  if (!devStandInsEnabled()) return bad(404, 'disabled', 'the checkout stand-in is off (TOLLGATE_DEV_AUTH=1 enables it locally)');
  const secret = stripeWebhookSecret();
  if (!secret) return bad(500, 'not_configured', 'STRIPE_WEBHOOK_SECRET (the worker\'s endpoint secret) is not set');
  const session = await getSession();
  if (!session) return bad(401, 'signed_out', 'sign in first');
  const body = (await req.json().catch(() => null)) as {
    offer?: unknown;
    clouds?: unknown;
    action?: unknown;
    period_end?: unknown;
    period_start?: unknown;
    subscription?: unknown;
  } | null;
  if (!body || typeof body.offer !== 'string') return bad(400, 'invalid_body', '`offer` (an offer key of the catalog) is required');
  const clouds = Array.isArray(body.clouds) ? body.clouds.filter((c): c is string => typeof c === 'string') : [];

  // The offer decides which worker (catalog) the purchase belongs to.
  const suite = await suiteCatalog();
  const studio = await studioCatalog();
  let offer = offerByKey(suite.doc, body.offer);
  let target = workerUrl();
  if (!offer) {
    offer = offerByKey(studio.doc, body.offer);
    target = studioWorkerUrl();
  }
  if (!offer) return bad(400, 'unknown_offer', `no offer \`${body.offer}\` in the catalogs`);
  const now = Math.floor(Date.now() / 1000);
  const periodEnd = typeof body.period_end === 'number' && body.period_end > now ? Math.floor(body.period_end) : undefined;
  const purchase = { userId: session.userId, email: session.email, offer, clouds, now, periodEnd };

  let events: object[];
  let subscription: string | null = null;
  if (body.action === 'cancel_at_period_end') {
    if (typeof body.subscription !== 'string' || !periodEnd || typeof body.period_start !== 'number') {
      return bad(400, 'invalid_body', 'cancel_at_period_end needs `subscription`, `period_start` and a future `period_end`');
    }
    subscription = body.subscription;
    // Only the signed-in user's own subscription: row-level security shows them no other.
    const own = await selectAsUser<{ subscription_id: string }>(
      session,
      'billing_subscriptions',
      `select=subscription_id&subscription_id=eq.${encodeURIComponent(subscription)}`,
    );
    if ('error' in own) return bad(503, own.error, own.message);
    if (own.rows.length === 0) return bad(403, 'not_your_subscription', `subscription ${subscription} is not yours`);
    events = [cancelAtPeriodEndEvent({ ...purchase, subscription, periodStart: body.period_start, periodEnd })];
  } else {
    const c = checkoutEvents(purchase);
    events = c.events;
    subscription = c.subscription;
  }

  const deliveries = [];
  for (const ev of events) {
    let r;
    try {
      r = await deliver(target, secret, ev);
    } catch (e) {
      return bad(502, 'worker_unreachable', `the worker at ${target} did not answer: ${(e as Error).message}`);
    }
    deliveries.push({ type: (ev as { type: string }).type, status: r.status, body: r.body });
    if (r.status >= 300) {
      return NextResponse.json(
        { error: 'webhook_refused', message: `the worker answered ${r.status} to ${(ev as { type: string }).type}: ${r.body}`, deliveries },
        { status: 502 },
      );
    }
  }
  return NextResponse.json({ ok: true, offer: offer.key, subscription, deliveries });
}
