// POST /api/dev/checkout/<id> — "Pay" on the checkout stand-in's page (development and
// tests only; TOLLGATE_DEV_AUTH=1, otherwise 404). Completes the Stripe Checkout Session
// or the Razorpay subscription or order the worker created, sending the provider's
// webhooks for exactly it to the app's worker (lib/standin), then sends the browser to
// the session's success_url (Razorpay: back to the page the buyer came from).
//
// Form fields (or JSON): `email`; `period_end` (unix seconds, optional): the stand-in's
// test clock, ending the first period at that instant instead of one interval after the
// payment, so that a test can watch a period end. A JSON request gets a JSON answer:
// `{ ok, subscription, deliveries }`.

import { NextResponse } from 'next/server';

import { devStandInsEnabled } from '@/lib/config';
import { completeRazorpay, razorpayRecord } from '@/lib/standin/razorpay';
import { completeSession, sessionRecord } from '@/lib/standin/stripe';

type Ctx = { params: Promise<{ id: string }> };

export async function POST(req: Request, ctx: Ctx) {
  if (!devStandInsEnabled()) {
    return NextResponse.json({ error: 'disabled', message: 'the checkout stand-in is off (TOLLGATE_DEV_AUTH=1 enables it for local development)' }, { status: 404 });
  }
  const { id } = await ctx.params;
  const json = (req.headers.get('content-type') ?? '').includes('application/json');
  let email: string | null = null;
  let periodEnd: number | undefined;
  if (json) {
    const b = (await req.json().catch(() => ({}))) as { email?: unknown; period_end?: unknown };
    if (typeof b.email === 'string') email = b.email;
    if (typeof b.period_end === 'number') periodEnd = Math.floor(b.period_end);
  } else {
    const f = await req.formData();
    email = typeof f.get('email') === 'string' ? String(f.get('email')) : null;
    const pe = Number(f.get('period_end'));
    if (Number.isFinite(pe) && pe > 0) periodEnd = Math.floor(pe);
  }
  const stripe = sessionRecord(id);
  const r = stripe ? await completeSession(id, { email, periodEnd }) : await completeRazorpay(id, { email, periodEnd });
  if (json) {
    return r.ok
      ? NextResponse.json({ ok: true, subscription: r.subscription, deliveries: r.deliveries })
      : NextResponse.json({ error: r.status === 404 ? 'not_found' : r.status === 409 ? 'not_open' : 'webhook_refused', message: r.message, deliveries: r.deliveries }, { status: r.status });
  }
  // Back to the page, which shows the error; or on to where the provider would send the buyer.
  if (!r.ok) return new NextResponse(null, { status: 303, headers: { location: `/dev/checkout/${encodeURIComponent(id)}?error=${encodeURIComponent(r.message)}` } });
  if (stripe) {
    const success = (stripe.session.success_url as string | null)?.replace('{CHECKOUT_SESSION_ID}', id);
    return new NextResponse(null, { status: 303, headers: { location: success ?? `/dev/checkout/${encodeURIComponent(id)}` } });
  }
  const back = razorpayRecord(id)?.returnTo;
  return new NextResponse(null, { status: 303, headers: { location: back ?? `/dev/checkout/${encodeURIComponent(id)}` } });
}
