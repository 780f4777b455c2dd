// The signed-in user's subscriptions as the database holds them (`billing_subscriptions`,
// written by the worker from the providers' webhooks), read with supabase-js as the
// signed-in user: row-level security shows each user their own, and those of the
// organizations they belong to.

import type { QueryData } from '@supabase/supabase-js';

import { rowsOf, type Select } from './rest';
import type { Session } from './session';

const COLUMNS = 'provider,subscription_id,offer_key,organization_id,status,quantity,current_period_start,current_period_end,cancel_at_period_end,canceled_at,ended_at';

/** A subscription as this page reads it (typed from supabase/database.types.ts). */
export type SubscriptionRow = QueryData<ReturnType<typeof query>>[number];

function query(session: Session) {
  return session.supabase
    .from('billing_subscriptions')
    .select(COLUMNS)
    .order('created_at', { ascending: false })
    .order('subscription_id', { ascending: true });
}

export function fetchSubscriptions(session: Session): Promise<Select<SubscriptionRow>> {
  return rowsOf(query(session));
}
