'use client';

// The account page's subscriptions: each one's state as the database holds it (active,
// trialing, past due, paused; renews or ends on; canceled at period end), "Cancel at period
// end" and "Resume" through the worker of the app that sold it (POST /v1/subscriptions/cancel
// and /resume; a paused one's "Resume", POST /v1/subscriptions/unpause), and "Manage billing"
// (POST /v1/portal: the provider's customer portal).
// The worker answers once the provider has the request; the row changes only when the
// provider's webhook has reached the worker, so the page reads the rows again until
// then. A refusal is shown as the worker's text.

import { useRouter } from 'next/navigation';
import { useCallback, useState } from 'react';
import { useTollgate } from 'tollgate-react';

import { postWorker } from '@/lib/billing';
import type { SubscriptionRow } from '@/lib/subscriptions';

export interface AppWorker {
  app: string;
  name: string;
  url: string;
  offers: { key: string; label: string }[];
}

const day = (iso: string | null) => (iso ? new Date(iso).toLocaleDateString('en-CA', { timeZone: 'UTC' }) : '—');
const ended = (s: SubscriptionRow) => s.status === 'ended' || s.status === 'canceled' || Boolean(s.ended_at);

/** "renews on", "ends on", "trial ends on", or how it ended. */
function when(s: SubscriptionRow): string {
  if (ended(s)) return s.ended_at ? `ended on ${day(s.ended_at)}` : 'ended';
  if (s.cancel_at_period_end) return `ends on ${day(s.current_period_end)}`;
  if (s.status === 'trialing') return `trial ends on ${day(s.current_period_end)}, then renews`;
  return `renews on ${day(s.current_period_end)}`;
}

export function Subscriptions({ initial, error: initialError, apps, accessToken }: { initial: SubscriptionRow[]; error: string | null; apps: AppWorker[]; accessToken: string }) {
  const t = useTollgate();
  const router = useRouter();
  const [rows, setRows] = useState(initial);
  const [busy, setBusy] = useState<string | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(initialError ? { ok: false, text: initialError } : null);
  const appOf = (offer: string | null) => apps.find((a) => a.offers.some((o) => o.key === offer)) ?? null;
  const label = (offer: string | null) => appOf(offer)?.offers.find((o) => o.key === offer)?.label ?? offer ?? 'unknown offer';

  const load = useCallback(async (): Promise<SubscriptionRow[] | null> => {
    const r = await fetch('/api/subscriptions', { cache: 'no-store' });
    const body = (await r.json().catch(() => ({}))) as { subscriptions?: SubscriptionRow[]; message?: string };
    if (!r.ok || !body.subscriptions) {
      setMsg({ ok: false, text: body.message ?? `The subscriptions could not be read (HTTP ${r.status}).` });
      return null;
    }
    setRows(body.subscriptions);
    return body.subscriptions;
  }, []);

  async function act(s: SubscriptionRow, action: 'cancel' | 'resume' | 'unpause') {
    const resume = action !== 'cancel';
    const app = appOf(s.offer_key);
    if (!app) {
      setMsg({ ok: false, text: `No app here sells ${s.offer_key ?? 'this subscription'}.` });
      return;
    }
    setBusy(s.subscription_id);
    setMsg(null);
    const path = `/v1/subscriptions/${action}`;
    const a = await postWorker(app.url, accessToken, path, {
      subscription: s.subscription_id,
      ...(s.organization_id ? { organization_id: s.organization_id } : {}),
    });
    if (!a.ok) {
      setBusy(null);
      setMsg({ ok: false, text: `${a.message} (${a.error})` });
      return;
    }
    if (s.provider === 'razorpay' && !resume) {
      // Razorpay keeps it active and cancels it when the cycle ends, sending its webhook then.
      setBusy(null);
      setMsg({ ok: true, text: `Razorpay has the cancellation: it ends the subscription when the cycle ends (${day(s.current_period_end)}); access stays until then.` });
      return;
    }
    // The provider has it; the change arrives with its webhook.
    setMsg({ ok: true, text: resume ? 'Resume asked: waiting for the provider’s confirmation…' : 'Cancellation asked: waiting for the provider’s confirmation…' });
    const deadline = Date.now() + 15_000;
    let done = false;
    while (!done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 400));
      const now = await load();
      done = Boolean(now?.some((x) => x.subscription_id === s.subscription_id
        && (action === 'unpause' ? x.status !== 'paused' : x.cancel_at_period_end === !resume)));
    }
    setBusy(null);
    if (!done) {
      setMsg({ ok: false, text: 'The provider has the request, but its confirmation has not arrived yet; this page shows it once it has.' });
      return;
    }
    setMsg({ ok: true, text: action === 'unpause' ? 'Resumed: the subscription is running again.' : resume ? 'Resumed: the subscription renews again.' : 'Canceled at period end: access stays until the period ends.' });
    await t.refresh({ reason: resume ? 'resume' : 'cancel' });
    // The history is rendered on the server from the database: render it again.
    router.refresh();
  }

  async function manage(app: AppWorker) {
    setBusy(`portal:${app.app}`);
    setMsg(null);
    const a = await postWorker<{ url: string }>(app.url, accessToken, '/v1/portal', { return_url: window.location.href });
    if (!a.ok) {
      setBusy(null);
      setMsg({ ok: false, text: `${a.message} (${a.error})` });
      return;
    }
    window.location.assign(a.body.url);
  }

  // "Manage billing" for each app the user holds a Stripe subscription of (the VCM Suite's when none).
  const portalApps = apps.filter((a) => rows.some((s) => s.provider === 'stripe' && appOf(s.offer_key)?.app === a.app));
  const portals = portalApps.length ? portalApps : apps.slice(0, 1);

  return (
    <section className="card" data-testid="subscriptions">
      <h2>Subscriptions</h2>
      {rows.length === 0 ? <p data-testid="no-subscriptions">No subscriptions yet.</p> : null}
      <ul className="offers subscriptions">
        {rows.map((s) => (
          <li
            key={`${s.provider}:${s.subscription_id}`}
            data-testid="subscription"
            data-subscription={s.subscription_id}
            data-offer={s.offer_key ?? ''}
            data-status={s.status}
            data-cancel-at-period-end={String(s.cancel_at_period_end)}
            data-period-end={s.current_period_end ?? ''}
          >
            <span>
              <strong>{label(s.offer_key)}</strong>
              {s.quantity > 1 ? ` × ${s.quantity}` : ''}
              <br />
              <span className="status-line" data-testid="subscription-state">
                {s.status.replace('_', ' ')} · {when(s)} · {s.provider}
              </span>
            </span>
            {ended(s) ? null : (
              <span className="actions">
                {s.status === 'paused' ? (
                  <button type="button" className="secondary" disabled={busy !== null} onClick={() => act(s, 'unpause')} data-testid="subscription-unpause">
                    {busy === s.subscription_id ? 'Waiting…' : 'Resume'}
                  </button>
                ) : null}
                {s.cancel_at_period_end ? (
                  <button type="button" className="secondary" disabled={busy !== null} onClick={() => act(s, 'resume')} data-testid="subscription-resume">
                    {busy === s.subscription_id ? 'Waiting…' : s.status === 'paused' ? 'Keep renewing' : 'Resume'}
                  </button>
                ) : (
                  <button type="button" className="secondary" disabled={busy !== null} onClick={() => act(s, 'cancel')} data-testid="subscription-cancel">
                    {busy === s.subscription_id ? 'Waiting…' : 'Cancel at period end'}
                  </button>
                )}
              </span>
            )}
          </li>
        ))}
      </ul>
      <p className="actions">
        {portals.map((a) => (
          <button key={a.app} type="button" disabled={busy !== null} onClick={() => manage(a)} data-testid={`manage-billing-${a.app}`}>
            {busy === `portal:${a.app}` ? 'Opening…' : portals.length > 1 ? `Manage billing (${a.name})` : 'Manage billing'}
          </button>
        ))}
      </p>
      {msg ? (
        <p className={`message ${msg.ok ? 'ok' : 'error'}`} data-testid="subscriptions-message">
          {msg.text}
        </p>
      ) : null}
    </section>
  );
}
