// Compiled (never run) by types.test.mjs: the declarations in index.d.ts, and the
// shapes generated from the core's Rust types it re-exports, accept the documented
// uses and reject wrong ones.

import {
  Engine,
  loadCatalog,
  useCatalog,
  init,
  initSync,
  isReady,
  hasAccess,
  explainAccess,
  resolveUserTier,
  canUseAI,
  canExportFullRes,
  shouldWatermarkExports,
  canUseHeavyTools,
  canUseMultiStepHeavyTools,
  explainUser,
  workflowRunAllowed,
  explainWorkflowRun,
  applyExportPolicy,
  CAPABILITIES,
  quote,
  verifySnapshot,
  getOrganizationEntitlements,
  formatMoney,
  minorDigits,
  type Check,
  type CheckError,
  type CheckErrorCode,
  type Quote,
  type QuoteError,
  type Snapshot,
  type SnapshotError,
  type Catalog,
  type CatalogError,
  type Decision,
  type ExportPolicy,
  type LimitValue,
  type ToolState,
  type CloudEntitlementRow,
  type Grant,
  type GrantInput,
  type OrganizationEntitlements,
  type Upgrade,
} from 'tollgate';

async function usage(bytes: Uint8Array): Promise<void> {
  await init();
  await init(new URL('https://example.invalid/tollgate_bg.wasm'));
  initSync(bytes);
  const ready: boolean = isReady();

  const catalog: Catalog = loadCatalog('{}');
  const again: Catalog = useCatalog(catalog.toJSON());
  const id: string = again.id + again.name + again.version;

  const grants: GrantInput[] = [
    { product: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00Z', valid_to: null },
  ];
  const engine = new Engine(catalog, { grants });
  new Engine();
  new Engine(null, grants);
  engine.setEntitlements({ grants: [], balances: { credits: 3 } });

  const d: Decision = engine.hasAccess('creation', 'pro', new Date());
  const until: string | null = d.holds_until;
  const offer: string | undefined = d.upgrade?.offer;
  const c: Decision = engine.can('use_ai', '2026-03-01T00:00:00Z');
  const lim: LimitValue = engine.limit('workflow_runs_per_day', Date.now());
  const n: number = typeof lim === 'number' ? lim : Infinity;
  engine.checkLimit('workflow_runs_per_day', 3);
  const metered: Check = engine.checkFeature('workflow_runs_per_day', 1, 2, new Date());
  const left: number = metered.remaining === 'unlimited' ? Infinity : metered.remaining;
  const resets: string | null = metered.resets_at;
  const cheapest: string | null = metered.upgrade ? metered.upgrade.offer : null;
  engine.checkFeature('free_drafts');
  try {
    engine.checkFeature('teleport', 0);
  } catch (err) {
    // The codes are the core's MeterErrorCode (generated): comparing with a code it
    // does not have would not compile.
    const mc: CheckErrorCode = (err as CheckError).code;
    if (mc === 'unknown_feature' || mc === 'invalid_quantity') void mc;
  }
  const pol: ExportPolicy = engine.exportPolicy();
  if (pol.policy === 'refused') {
    const m: string = pol.message;
  }
  const page: ToolState[] = engine.pageState('creation', { workflow_runs_per_day: 2 });
  engine.pageState();
  engine.toolState('bg-remover');
  const p: number = engine.productIndex('creation');
  const t: number = engine.tierIndex('creation', 'pro');
  const yes: boolean = engine.check(p, t, Date.now()) && engine.check(p, t);
  const next: string | null = engine.nextChange();
  engine.free();

  const rows: CloudEntitlementRow[] = [
    { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2026-01-01T00:00:00+00:00', valid_to: null },
  ];
  const b: boolean = hasAccess(rows, 'creation', 'pro') && hasAccess(undefined, 'creation', 'pro', new Date());
  const e: Decision = explainAccess(rows, 'creation', 'pro');
  const user = { id: 'u1', subscription_tier: 'starter' };
  const tier: string = resolveUserTier(user);
  const flags: boolean[] = [
    canUseAI(user),
    canExportFullRes(null),
    shouldWatermarkExports(undefined),
    canUseHeavyTools(user, Date.now()),
    canUseMultiStepHeavyTools(user),
    workflowRunAllowed(user, 2),
  ];
  const w: Decision = explainWorkflowRun(user, 3);
  const u: Decision = explainUser(user, CAPABILITIES.useAI);
  const policy: ExportPolicy = applyExportPolicy(user);
  const payload = { buffer: new Uint8Array(1), mimeType: 'image/png', filename: 'a.png' };
  const out: typeof payload | null = applyExportPolicy(user, payload);

  try {
    loadCatalog('{');
  } catch (err) {
    const ce = err as CatalogError;
    const where: string = ce.path + String(ce.line);
  }

  const q: Quote = quote(catalog, 'standard', 'standard', 30);
  const cents: number = q.cost.amount + q.overage_cost.amount;
  const rate: string = q.base_price_per_second;
  const shown: string = formatMoney(q.cost) + minorDigits(q.cost.currency);
  // @ts-expect-error: formatMoney takes Money, not a bare amount
  formatMoney(100);
  quote(null, 'ultra', 'studio', 60);
  const snap: Snapshot = verifySnapshot('token', { 'snap-2026-03': 'key' }, 'user-id', new Date());
  verifySnapshot('token', new Map([['k', new Uint8Array(32)]]));
  const expires: string = snap.expires_at;
  // The generated shapes: a snapshot's grants carry their id; an upgrade its price.
  const firstGrant: Grant | undefined = snap.grants[0];
  const grantId: string | undefined = firstGrant?.id;
  const up: Upgrade | undefined = d.upgrade;
  const price: number | undefined = up?.price.amount;
  const orgs: OrganizationEntitlements | null = getOrganizationEntitlements(snap, null, { now: new Date() });
  const seated: boolean = orgs !== null && orgs.hasSeat && orgs.hasFeatureAccess('ai_coach_access');
  const orgStatus: 'active' | 'trialing' | 'past_due' | 'canceled' | 'unpaid' | 'none' | undefined = orgs?.status;
  const fromSnapshot = new Engine(catalog, snap);
  try {
    verifySnapshot('token', { k: 'key' }, null, Date.now());
  } catch (err) {
    const code: 'bad_signature' | 'expired' | string = (err as SnapshotError).code;
    const qc: string = (err as QuoteError).code;
    void [code, qc];
  }

  // @ts-expect-error: seconds is a number
  quote(catalog, 'standard', 'standard', '30');
  // @ts-expect-error: keys map key ids to keys
  verifySnapshot('token', ['key']);
  // @ts-expect-error: a quantity is a number
  engine.checkFeature('use_ai', '1');
  // @ts-expect-error: a Check has no holds_until (a capability's end is its resets_at)
  metered.holds_until;
  // @ts-expect-error: indices are numbers
  engine.check('creation', 'pro', Date.now());
  // @ts-expect-error: `now` is a Date, a string or a number
  engine.hasAccess('creation', 'pro', {});
  // @ts-expect-error: rows need cloud_id
  hasAccess([{ tier: 'pro', source: 'stripe', status: 'active' }], 'creation', 'pro');
  // @ts-expect-error: not a status
  new Engine(null, [{ product: 'x', tier: 'y', source: 'stripe', status: 'paused', valid_from: 0 }]);
  // @ts-expect-error: decisions are read-only shapes with known keys
  d.holdsUntil;
  // @ts-expect-error: a decision's grant is absent when none decided it, never null
  const noGrant: string | undefined = null as Decision['grant'] | null;
  // @ts-expect-error: a snapshot's grant always has its id
  const noId: undefined = firstGrant!.id;
  // @ts-expect-error: money is integer minor units, not text
  const text: string = q.cost.amount;

  void [shown, noGrant, noId, text, grantId, price, seated, orgStatus, left, resets, cheapest, cents, rate, expires, fromSnapshot, ready, id, until, offer, c, n, page, yes, next, b, e, tier, flags, w, u, policy, out];
}

void usage;
