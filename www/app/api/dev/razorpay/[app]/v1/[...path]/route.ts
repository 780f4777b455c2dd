// /api/dev/razorpay/<app>/v1/... — LOCAL STAND-IN FOR RAZORPAY'S API (development and
// tests only; TOLLGATE_DEV_AUTH=1, otherwise 404). The Razorpay AI app's worker has
// RAZORPAY_API_BASE pointed at its `<app>` base. See lib/standin/razorpay.ts.

import { razorpayApi } from '@/lib/standin/razorpay';
import { standInRoute } from '@/lib/standin/state';

const handle = standInRoute(
  { error: { code: 'BAD_REQUEST_ERROR', description: 'the local Razorpay stand-in is off (TOLLGATE_DEV_AUTH=1 enables it for local development), or no such app' } },
  razorpayApi,
);

export const GET = handle;
export const POST = handle;
export const PATCH = handle;
