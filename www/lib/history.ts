// The signed-in user's entitlement history, from the system of record: the
// `entitlement_history` table (supabase/migrations/20261125000700_entitlement_history.sql,
// one row per change of a grant, written by a trigger on cloud_entitlements), read the
// Supabase way: supabase-js with the user's own session, so row-level security decides
// what is visible. Then each change is named (purchase,
// renewal, past due, cancel, ...) and the expiries that have passed are added, since
// a grant ends without any write.

import type { Database } from '../../supabase/database.types';

import { rowsOf } from './rest';
import type { Session } from './session';

/** One row of `entitlement_history` as it is read here (the generated row type, the
 * columns below, with `operation` as the trigger writes it). */
export type HistoryRow = Omit<Pick<Database['public']['Tables']['entitlement_history']['Row'], (typeof COLUMN_LIST)[number]>, 'operation'> & {
  operation: 'insert' | 'update' | 'delete';
};

export type EventKind =
  | 'purchase'
  | 'grant'
  | 'renewal'
  | 'past_due'
  | 'recovered'
  | 'cancel'
  | 'reactivated'
  | 'tier_change'
  | 'ended_early'
  | 'removed'
  | 'expiry'
  | 'change';

export interface TimelineEvent {
  kind: EventKind;
  /** When it happened (RFC 3339). */
  at: string;
  entitlementId: string;
  grantKey: string;
  product: string;
  tier: string;
  source: string;
  sourceRef: string | null;
  offer: string | null;
  status: string | null;
  validTo: string | null;
  /** The history row it comes from (none for an expiry, which is derived). */
  rowId: number | null;
}

const COLUMN_LIST = [
  'id', 'entitlement_id', 'grant_key', 'operation', 'cloud_id', 'tier', 'old_tier', 'source', 'source_ref',
  'offer_key', 'old_status', 'new_status', 'old_valid_from', 'new_valid_from', 'old_valid_to', 'new_valid_to',
  'old_past_due_since', 'new_past_due_since', 'changed_at',
] as const;
const COLUMNS = COLUMN_LIST.join(',');

/** This user's entitlement_history, oldest first. */
export async function fetchHistory(session: Session): Promise<{ rows: HistoryRow[] } | { error: string }> {
  const got = await rowsOf<HistoryRow>(
    session.supabase
      .from('entitlement_history')
      .select(COLUMNS)
      .eq('user_id', session.userId)
      .order('changed_at', { ascending: true })
      .order('id', { ascending: true })
      .returns<HistoryRow[]>(),
  );
  return 'error' in got ? { error: got.message } : got;
}

const ms = (t: string | null) => (t ? Date.parse(t) : NaN);

/** What one change was. */
export function classify(row: HistoryRow): EventKind {
  if (row.operation === 'insert') {
    if (row.new_status === 'past_due') return 'past_due';
    if (row.new_status === 'canceled') return 'cancel';
    return row.source === 'stripe' || row.source === 'razorpay' ? 'purchase' : 'grant';
  }
  if (row.operation === 'delete') return 'removed';
  const from = row.old_status;
  const to = row.new_status;
  if (to !== from) {
    if (to === 'canceled') return 'cancel';
    if (to === 'past_due') return 'past_due';
    if (from === 'past_due') return 'recovered';
    if (from === 'canceled') return 'reactivated';
  }
  if (row.old_tier && row.old_tier !== row.tier) return 'tier_change';
  const before = ms(row.old_valid_to);
  const after = ms(row.new_valid_to);
  // An open end (null) is later than any date.
  if (row.old_valid_to !== null && (row.new_valid_to === null || after > before)) return 'renewal';
  if (row.new_valid_to !== null && (row.old_valid_to === null || after < before)) return 'ended_early';
  return 'change';
}

/**
 * The timeline: every recorded change in order, plus an `expiry` when a grant's last
 * known end has passed (at that end). `now` in epoch ms.
 */
export function timeline(rows: HistoryRow[], now: number): TimelineEvent[] {
  const events: TimelineEvent[] = rows.map((row) => ({
    kind: classify(row),
    at: row.changed_at,
    entitlementId: row.entitlement_id,
    grantKey: row.grant_key,
    product: row.cloud_id,
    tier: row.tier,
    source: row.source,
    sourceRef: row.source_ref,
    offer: row.offer_key,
    status: row.operation === 'delete' ? row.old_status : row.new_status,
    validTo: row.operation === 'delete' ? row.old_valid_to : row.new_valid_to,
    rowId: row.id,
  }));
  // The latest state of each grant decides whether it has run out.
  const last = new Map<string, TimelineEvent>();
  for (const e of events) last.set(e.entitlementId, e);
  const expiries: TimelineEvent[] = [];
  for (const e of last.values()) {
    if (e.kind === 'removed' || !e.validTo) continue;
    const end = ms(e.validTo);
    if (end <= now && end >= ms(e.at)) expiries.push({ ...e, kind: 'expiry', at: e.validTo, rowId: null });
  }
  // Stable: recorded changes keep the database's order; an expiry goes where its time falls.
  const all = [...events, ...expiries];
  return all
    .map((e, i) => ({ e, i }))
    .sort((a, b) => ms(a.e.at) - ms(b.e.at) || a.i - b.i)
    .map(({ e }) => e);
}

export const EVENT_LABEL: Record<EventKind, string> = {
  purchase: 'Purchased',
  grant: 'Granted',
  renewal: 'Renewed',
  past_due: 'Payment failed (past due)',
  recovered: 'Payment recovered',
  cancel: 'Canceled',
  reactivated: 'Reactivated',
  tier_change: 'Tier changed',
  ended_early: 'Ended early',
  removed: 'Removed',
  expiry: 'Expired',
  change: 'Updated',
};
