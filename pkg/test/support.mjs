// What several of the package's tests share: the moment they decide at, a subscription row
// as the store holds it, and the check that an answer of the wrapper (pkg/index.js) is the
// core's (caches.test.mjs, adversarial.test.mjs, api.test.mjs).
import assert from 'node:assert/strict';

import { hasAccess, explainAccess } from '../node.js';

export const NOW = '2026-03-01T00:00:00Z';

/** A subscription row as the store holds it (creation at pro, active since 2026-01-01), with `over`. */
export const row = (over = {}) => ({
  id: 'row-1',
  user_id: 'u1',
  cloud_id: 'creation',
  tier: 'pro',
  source: 'stripe',
  status: 'active',
  valid_from: '2026-01-01T00:00:00+00:00',
  valid_to: null,
  ...over,
});

/** What a call gives: its value, or the message of what it threw. */
export function outcome(fn) {
  try {
    return { value: fn() };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * hasAccess must give what the core gives for the same input (explainAccess asks it every
 * call, with the rows converted afresh); `what` starts the message of a failure.
 */
export function agreesWithCore(rows, cloud = 'creation', tier = 'pro', at = NOW, what = '') {
  const cached = outcome(() => hasAccess(rows, cloud, tier, at));
  const core = outcome(() => explainAccess(rows, cloud, tier, at).allowed);
  assert.deepEqual(cached, core, `${what ? `${what} ` : ''}hasAccess ${JSON.stringify(cached)} vs the core ${JSON.stringify(core)}`);
}
