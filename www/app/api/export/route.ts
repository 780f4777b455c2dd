// An export, as the plan allows it: the worker decides (`exportPolicy`), so a plan without
// exports is refused here with "Upgrade to export." and the cheapest plan that exports,
// and Starter's exports carry a watermark, whatever the page shows.

import { NextResponse } from 'next/server';
import { exportPolicy } from 'tollgate-react/server';

import { workerUrl } from '@/lib/config';
import { getSession } from '@/lib/session';

export async function POST() {
  const session = await getSession();
  if (!session) return NextResponse.json({ error: { code: 'signed_out', message: 'sign in first' } }, { status: 401 });
  const p = await exportPolicy({ workerUrl: workerUrl(), accessToken: session.accessToken });
  if (!p.ok) return p.response;
  // The export itself would be rendered here, with a watermark when the policy says so.
  return NextResponse.json({ exported: true, policy: p.policy, watermark: p.policy === 'watermarked' });
}
