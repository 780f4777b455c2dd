'use client';

// Usage a person can see: a limit's or a credit pool's meter with its reset time, the
// last days' use as a small inline SVG chart, and the warnings and payments due of a
// snapshot. Every number is the worker's (`POST /v1/check`, `GET /v1/usage`) and every
// warning and amount the core's (`notices` in the package): these components only draw.

import { useCallback, useContext, useEffect, useMemo, useState } from 'react';
import type { Check, Notices, PaymentNotice, Warning } from 'tollgate';

import type { TollgateCatalog, TollgateModule } from './core.js';
import { deadline } from './deadline.js';
import { TollgateContext } from './provider.js';
import type { CatalogDoc, CatalogIds, FeatureOf, RegisteredIds, SnapshotPayload } from './types.js';

/** One UTC day of `GET /v1/usage`. */
export interface UsageDay {
  /** `YYYY-MM-DD` (UTC). */
  day: string;
  units: number;
  uses: number;
}

export interface UsageState {
  status: 'pending' | 'ready' | 'error';
  /** The worker's decision on one more unit now (`POST /v1/check`): used, limit, remaining, resets_at. */
  check: Check | null;
  /** Every day of the range, oldest first, days without use at 0. */
  days: UsageDay[];
  error: string | null;
  /** Reads both again (after a use). */
  reload: () => void;
}

export interface UseUsageOptions {
  /** The worker serving the feature's catalog. */
  workerUrl: string;
  /** The signed-in user's access token; null: nothing is fetched. */
  accessToken: string | null;
  /** How many days of history, ending today (default 30, at most 366). */
  days?: number;
  /** `fetch` to use (tests). */
  fetch?: typeof fetch;
  /** How long the worker has to answer both requests, in ms (default 10000): past it the
   * state is `error`, not `pending` for good. */
  timeoutMs?: number;
}

const DAY_MS = 86_400_000;

/** The `days` UTC days ending today, with the worker's buckets filled in. */
export function fillDays(buckets: UsageDay[], days: number, now: number = Date.now()): UsageDay[] {
  const byDay = new Map(buckets.map((b) => [b.day, b]));
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const out: UsageDay[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(today - i * DAY_MS).toISOString().slice(0, 10);
    out.push(byDay.get(day) ?? { day, units: 0, uses: 0 });
  }
  return out;
}

async function workerJson(f: typeof fetch, url: string, token: string, signal: AbortSignal, body?: unknown): Promise<any> {
  const r = await f(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const json = await r.json().catch(() => null);
  // A refusal of one more unit is still the answer (used, limit, resets_at).
  if (!r.ok && !(json && typeof json === 'object' && 'allowed' in json)) {
    throw new Error(json?.error?.message ?? `${url}: HTTP ${r.status}`);
  }
  return json?.error?.check ?? json;
}

const PENDING: Omit<UsageState, 'reload'> = { status: 'pending', check: null, days: [], error: null };

/**
 * A limit's or credit pool's use for the signed-in user, from its worker: the decision on
 * one more unit (`POST /v1/check`: used and limit of the window and when it resets, or
 * what a pool holds) and the use by day (`GET /v1/usage`).
 */
export function useUsage<I extends CatalogIds = RegisteredIds>(feature: FeatureOf<I>, opts: UseUsageOptions): UsageState {
  const { workerUrl, accessToken, timeoutMs } = opts;
  const span = Math.min(Math.max(Math.trunc(opts.days ?? 30), 1), 366);
  const f = opts.fetch ?? (typeof fetch === 'function' ? fetch : null);
  const [tick, setTick] = useState(0);
  // What was read, and for whom: another user's numbers are never shown (a new token
  // shows `pending` until its own answer).
  const [read, setState] = useState<{ token: string | null; state: Omit<UsageState, 'reload'> }>({ token: null, state: PENDING });
  const state = read.token === accessToken ? read.state : PENDING;
  useEffect(() => {
    if (!accessToken || !f) return;
    let live = true;
    const base = workerUrl.replace(/\/+$/, '');
    const today = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS + DAY_MS);
    const from = new Date(today.getTime() - span * DAY_MS);
    const q = `feature=${encodeURIComponent(feature)}&from=${from.toISOString()}&to=${today.toISOString()}`;
    // Both requests end by the deadline (a worker that never answers is an error to show,
    // not a meter pending for good) and when the effect is left (another token, unmount).
    const ms = timeoutMs ?? 10_000;
    const d = deadline(ms);
    const late = (e: Error) => (d.timedOut && live ? new Error(`${base} did not answer within ${ms} ms`) : e);
    d.bound(
      Promise.all([
        workerJson(f, `${base}/v1/check`, accessToken, d.signal, { feature, quantity: 1 }),
        workerJson(f, `${base}/v1/usage?${q}`, accessToken, d.signal),
      ]),
    ).finally(() => d.done()).then(
      ([check, usage]) => {
        if (live) setState({ token: accessToken, state: { status: 'ready', check: check as Check, days: fillDays(usage?.days ?? [], span), error: null } });
      },
      (e: Error) => {
        if (live) {
          const err = late(e);
          setState((r) => ({ token: accessToken, state: { ...(r.token === accessToken ? r.state : PENDING), status: 'error', error: err.message } }));
        }
      },
    );
    return () => {
      live = false;
      d.abort();
    };
  }, [feature, workerUrl, accessToken, span, f, tick, timeoutMs]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export interface AlertsState {
  status: 'pending' | 'ready' | 'error';
  warnings: Warning[];
  payments: PaymentNotice[];
  error: string | null;
}

export interface UseAlertsOptions {
  /** A verified snapshot (default: the provider's). */
  snapshot?: SnapshotPayload | null;
  /** The snapshot's catalog (a document or a loaded catalog; default: the provider's). */
  catalog?: CatalogDoc | TollgateCatalog | null;
  /** The loaded tollgate package (default: the provider's). */
  tollgate?: TollgateModule | null;
  /** What each limit's window used so far (limit id -> count), e.g. `useUsage(...).check.used`. */
  used?: Record<string, number> | null;
  /** Epoch ms (default: now). */
  now?: number;
}

/**
 * The warnings and payments due of a snapshot, decided by the core (the package's
 * `notices`): the alerts the server opened and the catalog's thresholds the snapshot's
 * numbers cross now, under the same rule ids, and each payment due with its amount
 * written by the core. Inside a `<TollgateProvider>` it reads the provider's snapshot by default.
 */
export function useAlerts(opts: UseAlertsOptions = {}): AlertsState {
  const ctx = useContext(TollgateContext);
  const tg = opts.tollgate ?? ctx?.tollgate ?? null;
  const snapshot = opts.snapshot !== undefined ? opts.snapshot : (ctx?.snapshot ?? null);
  const catalog = opts.catalog ?? ctx?.catalog ?? null;
  const usedKey = opts.used ? JSON.stringify(opts.used) : '';
  const version = ctx?.version ?? 0;
  return useMemo<AlertsState>(() => {
    if (!tg || !snapshot || !catalog) return { status: 'pending', warnings: [], payments: [], error: null };
    if (typeof tg.notices !== 'function') {
      return { status: 'error', warnings: [], payments: [], error: 'this build of the tollgate package has no notices(); rebuild pkg/' };
    }
    try {
      const n: Notices = tg.notices(snapshot, { catalog, used: opts.used ?? null, now: opts.now ?? Date.now() });
      return { status: 'ready', warnings: n.warnings, payments: n.payments, error: null };
    } catch (e) {
      return { status: 'error', warnings: [], payments: [], error: (e as Error).message };
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tg, snapshot, catalog, usedKey, opts.now, version]);
}

/** `YYYY-MM-DD` of an RFC 3339 instant (UTC), as the core writes dates in its messages. */
function utcDay(iso: string): string {
  return iso.slice(0, 10);
}

export interface UsageMeterProps {
  /** What is measured ("AI credits per month"). */
  label: string;
  /** A limit (used of the window's limit) or a credit pool (what it holds). */
  kind: 'limit' | 'pool';
  /** The worker's check of the feature (`useUsage(...).check`). */
  check: Check;
  /** The unit, for the text ("credit"). */
  unit?: string;
  /** Percent marks to draw (the catalog's `percent_used` alert rules). */
  marks?: number[];
}

/**
 * A meter of one limit (used of the window's limit, and when it resets) or credit pool (what
 * it holds now, and when it refills: the worker's `resets_at`, set for a pool a subscription
 * refills every period, null for credits given once). A limit's meter is a `role="meter"`
 * with the used share; a pool shows its balance.
 */
export function UsageMeter({ label, kind, check, unit, marks = [] }: UsageMeterProps) {
  const limit = typeof check.limit === 'number' ? check.limit : null;
  const isPool = kind === 'pool';
  const used = isPool ? null : check.used;
  const share = limit && used !== null ? Math.min(used / limit, 1) : isPool ? 1 : 0;
  const units = unit ? ` ${unit}${(isPool ? limit : used) === 1 ? '' : 's'}` : '';
  const text = isPool
    ? `${limit ?? 0}${units} left`
    : limit === null
      ? `${used}${units} used (unlimited)`
      : `${used} of ${limit}${units} used`;
  const level = !isPool && limit !== null && used !== null && used >= limit ? 'full' : marks.some((m) => limit !== null && used !== null && used * 100 >= m * limit) ? 'high' : 'ok';
  return (
    <div
      className="tg-meter"
      data-testid="usage-meter"
      data-feature={check.feature}
      data-kind={isPool ? 'pool' : 'limit'}
      data-used={used ?? undefined}
      data-limit={limit ?? 'unlimited'}
      data-level={level}
      data-resets-at={check.resets_at ?? undefined}
    >
      <div className="tg-meter-label">{label}</div>
      <svg
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={limit ?? undefined}
        aria-valuenow={isPool ? (limit ?? 0) : (used ?? 0)}
        viewBox="0 0 100 8"
        width="100%"
        height="10"
        preserveAspectRatio="none"
      >
        <rect x="0" y="0" width="100" height="8" rx="2" fill="#e5e7eb" />
        <rect x="0" y="0" width={(share * 100).toFixed(2)} height="8" rx="2" fill={level === 'full' ? '#dc2626' : level === 'high' ? '#d97706' : '#2563eb'} />
        {isPool ? null : marks.map((m) => <line key={m} x1={m} x2={m} y1="0" y2="8" stroke="#111827" strokeWidth="0.4" />)}
      </svg>
      <div className="tg-meter-text" data-testid="usage-meter-text">
        {text}
        {check.resets_at ? <span data-testid="usage-meter-resets">{` · ${isPool ? 'refills' : 'resets'} ${utcDay(check.resets_at)}`}</span> : null}
      </div>
    </div>
  );
}

export interface UsageChartProps {
  label: string;
  /** Oldest first (`useUsage(...).days`). */
  days: UsageDay[];
  width?: number;
  height?: number;
}

/** The use by day as an inline SVG bar chart (one bar per day, the day and units in its title). */
export function UsageChart({ label, days, width = 300, height = 60 }: UsageChartProps) {
  const max = Math.max(1, ...days.map((d) => d.units));
  const bw = days.length ? width / days.length : width;
  const total = days.reduce((s, d) => s + d.units, 0);
  return (
    <figure className="tg-chart" data-testid="usage-chart" data-days={days.length} data-total={total}>
      <svg role="img" aria-label={`${label}: ${total} in ${days.length} days`} viewBox={`0 0 ${width} ${height}`} width={width} height={height}>
        {days.map((d, i) => {
          const h = d.units ? Math.max(1, (d.units / max) * (height - 2)) : 0;
          return (
            <rect key={d.day} data-day={d.day} data-units={d.units} x={(i * bw + 0.5).toFixed(2)} y={(height - h).toFixed(2)} width={Math.max(bw - 1, 0.5).toFixed(2)} height={h.toFixed(2)} fill="#2563eb">
              <title>{`${d.day}: ${d.units}`}</title>
            </rect>
          );
        })}
        <line x1="0" x2={width} y1={height - 0.5} y2={height - 0.5} stroke="#9ca3af" strokeWidth="1" />
      </svg>
      <figcaption>
        {label}: {total} in the last {days.length} days
      </figcaption>
    </figure>
  );
}

export interface AlertBannerProps {
  warnings: Warning[];
  payments?: PaymentNotice[];
}

/** The warnings and payments due (`useAlerts`), in the core's words; nothing when there are none. */
export function AlertBanner({ warnings, payments = [] }: AlertBannerProps) {
  if (!warnings.length && !payments.length) return null;
  const critical = warnings.some((w) => w.severity === 'critical') || payments.some((p) => !p.in_grace);
  return (
    <div className="tg-alerts" role="alert" data-testid="alert-banner" data-severity={critical ? 'critical' : 'warning'}>
      {payments.map((p) => (
        <p
          key={p.invoice}
          data-testid="payment-notice"
          data-invoice={p.invoice}
          data-amount={p.amount_due.amount}
          data-currency={p.amount_due.currency}
          data-grace-until={p.grace_until ?? undefined}
          data-in-grace={p.in_grace}
        >
          {p.message}
        </p>
      ))}
      {warnings.length ? (
        <ul>
          {warnings.map((w) => (
            <li key={w.rule} data-testid="alert" data-rule={w.rule} data-kind={w.kind} data-severity={w.severity} data-from={w.since ? 'server' : 'snapshot'}>
              {w.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
