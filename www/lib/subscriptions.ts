// The signed-in user's subscriptions as the database holds them (`billing_subscriptions`,
// written by the worker from the providers' webhooks), read through the REST API with
// the user's own token: row-level security shows each user their own, and those of the
// organizations they belong to.

import { selectAsUser, type Select } from './rest';
import type { Session } from './session';

export interface SubscriptionRow {
  provider: string;
  subscription_id: string;
  offer_key: string | null;
  organization_id: string | null;
  status: string;
  quantity: number;
  current_period_start: string | null;
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  canceled_at: string | null;
  ended_at: string | null;
}

const COLUMNS = 'provider,subscription_id,offer_key,organization_id,status,quantity,current_period_start,current_period_end,cancel_at_period_end,canceled_at,ended_at';

export function fetchSubscriptions(session: Session): Promise<Select<SubscriptionRow>> {
  return selectAsUser<SubscriptionRow>(session, 'billing_subscriptions', `select=${COLUMNS}&order=created_at.desc,subscription_id.asc`);
}
