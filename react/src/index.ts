// tollgate-react: React bindings for the tollgate entitlement engine.
//
// Client components: <TollgateProvider>, the hooks and <Gate>.
// Server components and route handlers: `tollgate-react/server`.

export { TollgateProvider, TollgateContext, subjectOfToken } from './provider.js';
export type { TollgateProviderProps, TollgateState, RefreshOptions, SnapshotProblem, SnapshotSource } from './provider.js';
export { useTollgate, useEntitlements, useAccess, useToolStates, useLimit, useExportPolicy, useQuote, useMoney } from './hooks.js';
export type { AccessAnswer, AccessStatus, MoneyFormat } from './hooks.js';
export { Gate, UpgradePrompt } from './gate.js';
export { useUsage, useAlerts, UsageMeter, UsageChart, AlertBanner, fillDays } from './usage.js';
export type {
  UsageDay, UsageState, UseUsageOptions, AlertsState, UseAlertsOptions, UsageMeterProps, UsageChartProps, AlertBannerProps,
} from './usage.js';
export type { GateProps, UpgradePromptProps } from './gate.js';
export { ask, describeReason, questionKey, quoteWith } from './core.js';
export type { TollgateEngine, TollgateModule, TollgateCatalog } from './core.js';
export { verifySnapshot, parsePublicKeys, peekSnapshot } from './snapshot.js';
export type { PublicKeys, VerifyOptions, VerifyResult, SnapshotErrorCode } from './snapshot.js';
export { snapshotKey, catalogKey, STORAGE_PREFIX, SNAPSHOT_COOKIE } from './storage.js';
export type * from './types.js';
