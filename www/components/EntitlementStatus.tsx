'use client';

// One line saying where the gates' answers come from: the cached snapshot, a
// fresh one, or none (free); whether the worker is reachable; why a snapshot was
// refused; and, offline once the cached snapshot has expired, that everything paid is
// locked until the worker can be reached. The data attributes are what the browser tests read.

import { useEntitlements } from 'tollgate-react';

export function EntitlementStatus({ catalogFrom }: { catalogFrom: 'worker' | 'file' }) {
  const t = useEntitlements();
  // The cached snapshot ran out while the worker cannot be reached: nothing paid is open.
  const offlineExpired = t.status === 'ready' && t.signedIn && !t.snapshot && !t.online && t.problem?.code === 'expired';
  let text: string;
  if (t.status === 'loading') text = 'Checking your plan…';
  else if (t.status === 'error') text = `Gating unavailable: ${t.fatal}`;
  else if (!t.signedIn) text = 'Signed out: free tiers.';
  else if (t.snapshot) {
    text = `Entitlements from the ${t.source === 'cache' ? 'cached' : t.source === 'server' ? 'server-rendered' : 'fresh'} signed snapshot (catalog ${t.snapshot.catalog_id} ${t.snapshot.catalog_version}, valid until ${new Date(t.snapshot.expires_at).toLocaleTimeString()}).`;
  } else if (offlineExpired) {
    text = 'Offline, snapshot expired: locked to the free tiers until the entitlement service can be reached again.';
  } else text = 'No valid entitlement snapshot: free tiers.';
  return (
    <p
      className="status-line"
      data-testid="tg-status"
      data-status={t.status}
      data-source={t.source ?? 'none'}
      data-online={String(t.online)}
      data-problem={t.problem?.code ?? ''}
      data-offline-expired={String(offlineExpired)}
      data-version={t.version}
      data-fetching={String(t.fetching)}
      data-issued-at={t.snapshot?.issued_at ?? ''}
    >
      {text}
      {!t.online && t.signedIn && !offlineExpired ? ' Offline: answering from the cached snapshot until it expires.' : ''}
      {t.problem && t.problem.code !== 'network' && !offlineExpired ? <span className="error"> ({t.problem.code}: {t.problem.message})</span> : null}
      {catalogFrom === 'file' ? ' Catalog: the app’s own copy (worker unreachable).' : ''}
    </p>
  );
}
