// /api/dev/stripe/<app>/v1/... — LOCAL STAND-IN FOR STRIPE'S API (development and tests
// only; TOLLGATE_DEV_AUTH=1, otherwise 404). Each app worker's STRIPE_API_BASE points at
// its own `<app>` base (vcm-suite, video-studio, razorpay-ai, org-seats), so the webhooks
// go back to that worker. See lib/standin/stripe.ts.

import { standInRoute } from '@/lib/standin/state';
import { stripeApi } from '@/lib/standin/stripe';

const handle = standInRoute(
  { error: { type: 'invalid_request_error', message: 'the local Stripe stand-in is off (TOLLGATE_DEV_AUTH=1 enables it for local development), or no such app' } },
  stripeApi,
  { 'request-id': 'req_local_stand_in', 'stripe-version': '2025-09-30.clover' },
);

export const GET = handle;
export const POST = handle;
export const DELETE = handle;
