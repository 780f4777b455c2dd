'use client';

// The account page's usage of one app (the Razorpay AI app: its monthly AI credits and
// its credit pools): a meter per limit and pool with its reset time, 30 days of use by day,
// and the warnings and payments due of the app's signed snapshot. Its own provider reads
// that app's worker (no cookie: the page's proxy gates the VCM Suite); the numbers are the
// worker's, the warnings and amounts the core's (tollgate-react's useUsage, useAlerts).

import { useCallback, useEffect, useMemo, useState } from 'react';
import { AlertBanner, TollgateProvider, UsageChart, UsageMeter, useAlerts, useTollgate, useUsage } from 'tollgate-react';
import type { CatalogDoc } from 'tollgate-react';

interface Feature {
  id: string;
  label: string;
  kind: 'limit' | 'pool';
  unit?: string;
  marks: number[];
}

function featuresOf(doc: CatalogDoc): Feature[] {
  const marks = (id: string) => (doc.alerts ?? []).filter((a) => a.feature === id).flatMap((a) => a.percent_used ?? []);
  return [
    ...(doc.limits ?? []).map((l) => ({ id: l.id, label: l.label || l.id, kind: 'limit' as const, marks: marks(l.id) })),
    ...(doc.credit_pools ?? []).map((p) => ({ id: p.id, label: p.label || p.id, kind: 'pool' as const, unit: p.unit, marks: [] })),
  ];
}

export function AccountUsage(props: { workerUrl: string; publicKeys: string; catalog: CatalogDoc; accessToken: string; subject: string }) {
  return (
    <section className="card" data-testid="account-usage" data-app={props.catalog.catalog.id}>
      <h2>Usage · {props.catalog.catalog.name}</h2>
      <TollgateProvider
        key={props.subject}
        workerUrl={props.workerUrl}
        publicKeys={props.publicKeys}
        catalog={props.catalog}
        accessToken={props.accessToken}
        subject={props.subject}
        snapshotCookie={false}
      >
        <Usage features={featuresOf(props.catalog)} workerUrl={props.workerUrl} accessToken={props.accessToken} />
      </TollgateProvider>
    </section>
  );
}

function Usage({ features, workerUrl, accessToken }: { features: Feature[]; workerUrl: string; accessToken: string }) {
  const t = useTollgate();
  const [used, setUsed] = useState<Record<string, number>>({});
  const report = useCallback((id: string, n: number) => setUsed((u) => (u[id] === n ? u : { ...u, [id]: n })), []);
  const alerts = useAlerts({ used });
  const limits = useMemo(() => features.filter((f) => f.kind === 'limit').map((f) => f.id), [features]);
  const counted = limits.every((id) => id in used);
  return (
    <div data-testid="usage-state" data-status={t.status === 'ready' && counted ? alerts.status : 'pending'}>
      {alerts.error ? <p className="error">{alerts.error}</p> : null}
      <AlertBanner warnings={alerts.warnings} payments={alerts.payments} />
      <div className="usage-grid">
        {features.map((f) => (
          <FeatureUsage key={f.id} feature={f} workerUrl={workerUrl} accessToken={accessToken} onUsed={report} />
        ))}
      </div>
    </div>
  );
}

function FeatureUsage(props: { feature: Feature; workerUrl: string; accessToken: string; onUsed: (id: string, n: number) => void }) {
  const { feature: f, onUsed } = props;
  const u = useUsage(f.id, { workerUrl: props.workerUrl, accessToken: props.accessToken, days: 30 });
  const used = u.check?.used;
  useEffect(() => {
    if (f.kind === 'limit' && typeof used === 'number') onUsed(f.id, used);
  }, [f.kind, f.id, used, onUsed]);
  return (
    <div className="usage-feature" data-testid="usage-feature" data-feature={f.id} data-status={u.status}>
      {u.error ? <p className="error">{u.error}</p> : null}
      {u.check ? <UsageMeter label={f.label} kind={f.kind} check={u.check} unit={f.unit} marks={f.marks} /> : <p className="muted">Loading {f.label}…</p>}
      {u.status === 'ready' ? <UsageChart label={`${f.label} by day`} days={u.days} /> : null}
    </div>
  );
}
