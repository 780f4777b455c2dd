// /api/dev/stripe/<app>/v1/... — LOCAL STAND-IN FOR STRIPE'S API (development and tests
// only; TOLLGATE_DEV_AUTH=1, otherwise 404). Each app worker's STRIPE_API_BASE points at
// its own `<app>` base (vcm-suite, video-studio, razorpay-ai), so the webhooks go back to
// that worker. See lib/standin/stripe.ts.

import { NextResponse } from 'next/server';

import { devStandInsEnabled } from '@/lib/config';
import { appOf } from '@/lib/standin/state';
import { stripeApi } from '@/lib/standin/stripe';

type Ctx = { params: Promise<{ app: string; path: string[] }> };

async function handle(req: Request, ctx: Ctx) {
  const { app: name, path } = await ctx.params;
  const app = appOf(name);
  if (!devStandInsEnabled() || !app) {
    return NextResponse.json(
      { error: { type: 'invalid_request_error', message: 'the local Stripe stand-in is off (TOLLGATE_DEV_AUTH=1 enables it for local development), or no such app' } },
      { status: 404 },
    );
  }
  const a = await stripeApi(app, req, path);
  return NextResponse.json(a.body, { status: a.status, headers: { 'request-id': `req_local_stand_in`, 'stripe-version': '2025-09-30.clover' } });
}

export const GET = handle;
export const POST = handle;
export const DELETE = handle;
