// POST /api/dev/billing/<id> — the customer portal stand-in's "Cancel plan" / "Renew
// plan" and "Pause payments" / "Collect payments" (development and tests only;
// TOLLGATE_DEV_AUTH=1). Updates the subscription as the portal and the Dashboard do (cancel
// at period end or not; `pause_collection` set or cleared), which sends
// `customer.subscription.updated` to the app's worker; then back to the portal page.

import { NextResponse } from 'next/server';

import { devStandInsEnabled } from '@/lib/config';
import { portalRecord, portalUpdate, subscriptionsOfCustomer } from '@/lib/standin/stripe';

type Ctx = { params: Promise<{ id: string }> };

export async function POST(req: Request, ctx: Ctx) {
  if (!devStandInsEnabled()) return NextResponse.json({ error: 'disabled', message: 'the portal stand-in is off' }, { status: 404 });
  const { id } = await ctx.params;
  const rec = portalRecord(id);
  if (!rec) return NextResponse.json({ error: 'not_found', message: `No such billing portal session: '${id}'` }, { status: 404 });
  const f = await req.formData();
  const sub = String(f.get('subscription') ?? '');
  // The portal acts only on its own customer's subscriptions.
  if (!subscriptionsOfCustomer(rec.session.customer as string).some((s) => s.subscription.id === sub)) {
    return NextResponse.json({ error: 'not_found', message: `No such subscription for this customer: '${sub}'` }, { status: 404 });
  }
  const pause = f.get('pause_collection');
  const a = await portalUpdate(sub, pause !== null ? { pause: pause === 'true' } : { cancelAtPeriodEnd: f.get('cancel_at_period_end') === 'true' });
  const page = `/dev/billing/${encodeURIComponent(id)}`;
  if (a.status !== 200) {
    const message = (a.body as { error?: { message?: string } }).error?.message ?? `HTTP ${a.status}`;
    return new NextResponse(null, { status: 303, headers: { location: `${page}?error=${encodeURIComponent(message)}` } });
  }
  return new NextResponse(null, { status: 303, headers: { location: page } });
}
