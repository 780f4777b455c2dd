// /api/dev/razorpay/<app>/v1/... — LOCAL STAND-IN FOR RAZORPAY'S API (development and
// tests only; TOLLGATE_DEV_AUTH=1, otherwise 404). The Razorpay AI app's worker has
// RAZORPAY_API_BASE pointed at its `<app>` base. See lib/standin/razorpay.ts.

import { NextResponse } from 'next/server';

import { devStandInsEnabled } from '@/lib/config';
import { razorpayApi } from '@/lib/standin/razorpay';
import { appOf } from '@/lib/standin/state';

type Ctx = { params: Promise<{ app: string; path: string[] }> };

async function handle(req: Request, ctx: Ctx) {
  const { app: name, path } = await ctx.params;
  const app = appOf(name);
  if (!devStandInsEnabled() || !app) {
    return NextResponse.json(
      { error: { code: 'BAD_REQUEST_ERROR', description: 'the local Razorpay stand-in is off (TOLLGATE_DEV_AUTH=1 enables it for local development), or no such app' } },
      { status: 404 },
    );
  }
  const a = await razorpayApi(app, req, path);
  return NextResponse.json(a.body, { status: a.status });
}

export const GET = handle;
export const POST = handle;
export const PATCH = handle;
