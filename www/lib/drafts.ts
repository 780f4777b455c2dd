// The Razorpay AI app's drafts, on the server: its worker (the razorpay-ai catalog) holds
// two credit pools, `free_drafts` (2 for every signed-in user, from their first request)
// and `ai_credits` (Premium plans and top-ups). A draft spends a free draft while there is
// one, then one AI credit; the worker refuses when both are empty.

import { check, track } from 'tollgate-react/server';
import type { Metered, Upgrade } from 'tollgate-react/server';

import { razorpayWorkerUrl } from './config';

export interface DraftBalances {
  free_drafts: number;
  ai_credits: number;
  /** The cheapest offer that puts AI credits into the pool (null while a draft is allowed). */
  upgrade: Upgrade | null;
}

export type DraftBalancesAnswer = { ok: true; balances: DraftBalances } | { ok: false; status: number; message: string };

/** What a pool holds now. A check of a pool answers, in `limit`, its usable balance (its
 * `remaining` is what one more use would leave). */
function held(r: Metered): number | null {
  const a = r.answer;
  return a && typeof a.limit === 'number' ? a.limit : null;
}

/** Both pools as the worker sees them (`POST /v1/check`, which changes nothing). The free
 * drafts are asked first: that first request is what gives a new user their two. */
export async function draftBalances(accessToken: string): Promise<DraftBalancesAnswer> {
  const opts = { workerUrl: razorpayWorkerUrl(), accessToken };
  const free = await check('free_drafts', opts);
  const ai = await check('ai_credits', opts);
  const f = held(free);
  const c = held(ai);
  if (f === null || c === null) {
    const failed = f === null ? free : ai;
    const status = failed.ok ? 502 : failed.status ?? 503;
    return { ok: false, status, message: failed.ok ? 'the worker gave no balance' : failed.message };
  }
  const upgrade = f > 0 ? null : ai.ok ? null : ai.upgrade;
  return { ok: true, balances: { free_drafts: f, ai_credits: c, upgrade } };
}

export type Spent =
  | { ok: true; pool: 'free_drafts' | 'ai_credits'; remaining: number | null; usage_id: string | null }
  | { ok: false; status: number; code: string; message: string; upgrade: Upgrade | null };

/**
 * Spends one draft for the caller: a free draft, or when none is left one AI credit. `key`
 * is the caller's Idempotency-Key for this draft; each pool gets its own key derived from
 * it, so a retry of the same draft is answered by the pool that took it and never spends
 * twice.
 */
export async function spendDraft(accessToken: string, key: string): Promise<Spent> {
  const opts = { workerUrl: razorpayWorkerUrl(), accessToken };
  const free = await track('free_drafts', { ...opts, idempotencyKey: `${key}:free_drafts` });
  if (free.ok) return { ok: true, pool: 'free_drafts', remaining: num(free.answer.remaining), usage_id: free.answer.usage_id ?? null };
  if (free.status !== 402 && free.status !== 403) return { ok: false, status: free.status ?? 503, code: free.code, message: free.message, upgrade: null };
  const ai = await track('ai_credits', { ...opts, idempotencyKey: `${key}:ai_credits` });
  if (ai.ok) return { ok: true, pool: 'ai_credits', remaining: num(ai.answer.remaining), usage_id: ai.answer.usage_id ?? null };
  if (ai.status !== 402 && ai.status !== 403) return { ok: false, status: ai.status ?? 503, code: ai.code, message: ai.message, upgrade: null };
  return {
    ok: false,
    status: ai.status,
    code: ai.code,
    message:
      ai.code === 'paused'
        ? 'Your free drafts are used and your subscription is paused: resume it to use its AI credits.'
        : ai.status === 402
          ? 'Your free drafts are used and your AI credits are spent.'
          : 'Your free drafts are used and you have no AI credits.',
    upgrade: ai.upgrade,
  };
}

function num(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}
