// A member's entitlements through an organization of its snapshot, as the Org Seats app
// reads them (`getUserEntitlements`'s shape) and `hasFeatureAccess`: the core decides
// tier, status, grace and the features (none of the plan's without a seat) at `now`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { getOrganizationEntitlements, hasFeatureAccess, loadCatalog } from 'tollgate';
import { catalogJson } from './catalogs.mjs';

const catalog = loadCatalog(catalogJson('org-seats'));
const NOW = '2027-01-10T00:00:00Z';
const grant = (status, pastDueSince) => ({
  id: 'stripe:sub_1:org', product: 'org', tier: 'BUSINESS', source: 'stripe', status,
  valid_from: '2027-01-01T00:00:00Z', valid_to: '2027-02-01T00:00:00Z',
  ...(pastDueSince ? { past_due_since: pastDueSince } : {}), offer: 'ORG_BUSINESS_MONTHLY',
});
const snapshot = (seat, g = grant('active')) => ({
  subject: 'user:u1',
  grants: [],
  balances: {},
  organizations: [{ id: 'o1', name: 'Acme', role: 'member', seat, seats: { count: 2, used: 2, reserved: 0, available: 0 }, grants: [g] }],
});

test('a seated member holds the tier\'s features; an unseated one sees the plan with its features locked', () => {
  const seated = getOrganizationEntitlements(snapshot(true), 'o1', { catalog, now: NOW });
  assert.deepEqual(
    [seated.tier, seated.status, seated.seatCount, seated.seatsUsed, seated.seatsAvailable, seated.hasSeat, seated.inGracePeriod, seated.gracePeriodEndsAt],
    ['BUSINESS', 'active', 2, 2, 0, true, false, null],
  );
  assert.equal(seated.features.custom_branding, true);
  assert.equal(seated.hasFeatureAccess('sso_enabled'), true);
  const unseated = getOrganizationEntitlements(snapshot(false), null, { catalog, now: NOW });
  assert.deepEqual([unseated.tier, unseated.hasSeat], ['BUSINESS', false]);
  assert.ok(Object.values(unseated.features).every((held) => held === false), JSON.stringify(unseated.features));
  assert.equal(hasFeatureAccess(snapshot(false), 'custom_branding', 'o1', { catalog, now: NOW }), false);
  assert.equal(hasFeatureAccess(snapshot(true), 'custom_branding', 'o1', { catalog, now: NOW }), true);
  assert.equal(getOrganizationEntitlements(snapshot(true), 'other', { catalog, now: NOW }), null);
  assert.equal(hasFeatureAccess({ grants: [] }, 'custom_branding', null, { catalog, now: NOW }), false);
  assert.throws(() => hasFeatureAccess(snapshot(true), 'nope', 'o1', { catalog, now: NOW }));
});

test('past due: in grace for the catalog\'s 7 days from the failure, then unpaid and locked', () => {
  const s = snapshot(true, grant('past_due', '2027-01-08T00:00:00Z'));
  const inGrace = getOrganizationEntitlements(s, 'o1', { catalog, now: NOW });
  assert.deepEqual([inGrace.status, inGrace.inGracePeriod, inGrace.gracePeriodEndsAt], ['past_due', true, '2027-01-15T00:00:00Z']);
  assert.equal(inGrace.hasFeatureAccess('custom_branding'), true);
  const after = getOrganizationEntitlements(s, 'o1', { catalog, now: '2027-01-15T00:00:00Z' });
  assert.deepEqual([after.status, after.inGracePeriod, after.tier], ['unpaid', false, 'FREE']);
  assert.equal(after.hasFeatureAccess('custom_branding'), false);
});

test('an organization gives nothing from its snapshot\'s end on, and another catalog\'s snapshot is refused', () => {
  const s = { ...snapshot(true), catalog_id: 'org-seats', expires_at: '2027-01-10T01:00:00Z' };
  const inside = getOrganizationEntitlements(s, 'o1', { catalog, now: NOW });
  assert.deepEqual([inside.tier, inside.status, inside.hasFeatureAccess('custom_branding')], ['BUSINESS', 'active', true]);
  const after = getOrganizationEntitlements(s, 'o1', { catalog, now: '2027-01-10T01:00:00Z' });
  assert.equal(after.hasSeat, true);
  assert.equal(after.tier, 'FREE');
  assert.ok(Object.values(after.features).every((held) => held === false), JSON.stringify(after.features));
  assert.equal(hasFeatureAccess(s, 'custom_branding', 'o1', { catalog, now: '2027-01-12T00:00:00Z' }), false);
  assert.equal(hasFeatureAccess(s, 'custom_branding', 'o1', { catalog, now: NOW }), true);
  const other = { ...s, catalog_id: 'vcm-suite' };
  assert.throws(() => hasFeatureAccess(other, 'custom_branding', 'o1', { catalog, now: NOW }), (e) => e.code === 'wrong_catalog');
  assert.throws(() => getOrganizationEntitlements(other, 'o1', { catalog, now: NOW }), (e) => e.code === 'wrong_catalog');
});
