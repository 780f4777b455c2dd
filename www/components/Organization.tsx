'use client';

// One organization of the Org Seats app, as its worker shows it to the signed-in user:
// the plan and its status, seats used of the total, a grace banner while a payment is
// past due, what the user holds through it (decided by the package from their signed
// snapshot: without a seat, the plan's features are locked), and for owners and admins the
// members (role, seat; "Give a seat", "Take the seat", "Remove"; role changes for owners),
// the invite form and the pending invites ("Revoke"). Every change goes to the worker with
// the user's token (POST /v1/orgs/{id}/invites, /seats; PATCH and DELETE
// /v1/orgs/{id}/members/{user}; DELETE /v1/orgs/{id}/invites/{invite}); the worker decides
// and refuses in words (409 no_seat, 403 owner_only, ...), shown here as it says. Then the
// page is rendered again on the server from the worker's new answer.

import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { useMoney } from 'tollgate-react';
import type { CatalogDoc, OrganizationEntitlements } from 'tollgate-react';

import { callWorker, startCheckout } from '@/lib/billing';
import { priceLabel } from '@/lib/offers';
import type { OrgView, Role } from '@/lib/orgs';

const day = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleDateString('en-CA', { timeZone: 'UTC' }) : '—');

const STATUS: Record<OrgView['plan']['status'], string> = {
  active: 'active',
  trialing: 'trialing',
  past_due: 'past due',
  canceled: 'canceled',
  unpaid: 'unpaid (grace period over)',
  none: 'no plan',
};

type Msg = { ok: boolean; text: string } | null;

export function Organization({
  view,
  mine,
  entitlementsProblem,
  catalog,
  workerUrl,
  accessToken,
  userId,
}: {
  view: OrgView;
  /** The user's entitlements through this organization (the package's getOrganizationEntitlements). */
  mine: OrganizationEntitlements | null;
  entitlementsProblem: string | null;
  catalog: CatalogDoc;
  workerUrl: string;
  accessToken: string;
  userId: string;
}) {
  const router = useRouter();
  const [busy, setBusy] = useState<string | null>(null);
  const [msg, setMsg] = useState<Msg>(null);
  const [link, setLink] = useState<{ email: string; url: string } | null>(null);
  // Answers received so far (tests wait for the next one).
  const [answers, setAnswers] = useState(0);
  const money = useMoney();
  const manages = view.members !== undefined;
  const base = `/v1/orgs/${encodeURIComponent(view.id)}`;
  const label = (cap: string) => catalog.capabilities?.find((c) => c.id === cap)?.label ?? cap;
  const limitLabel = (l: string) => catalog.limits?.find((x) => x.id === l)?.label ?? l;
  const offerLabel = (key: string | null) => catalog.offers.find((o) => o.key === key)?.label ?? key ?? '—';

  /** Sends one change; on success says `done`, runs `then` and renders the page again. */
  async function act(
    key: string,
    method: 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body: object | undefined,
    done: (b: Record<string, unknown>) => string,
    then?: (b: Record<string, unknown>) => void,
  ) {
    setBusy(key);
    setMsg(null);
    const a = await callWorker<Record<string, unknown>>(method, workerUrl, accessToken, path, body);
    setBusy(null);
    if (a.ok) {
      setMsg({ ok: true, text: done(a.body) });
      then?.(a.body);
      router.refresh();
    } else {
      setMsg({ ok: false, text: `${a.message} (${a.error})` });
    }
    setAnswers((n) => n + 1);
    return a.ok;
  }

  async function invite(e: React.FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const email = String(f.get('email') ?? '');
    const body = { email, role: String(f.get('role') ?? 'member'), seat: f.get('seat') === 'on' };
    setLink(null);
    await act(
      'invite',
      'POST',
      `${base}/invites`,
      body,
      () => `Invited ${email}. Send them the link below: it is shown once.`,
      (r) => {
        if (typeof r.token === 'string') setLink({ email, url: `${window.location.origin}/invites/${encodeURIComponent(r.token)}` });
        form.reset();
      },
    );
  }

  async function buy(e: React.FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy('buy');
    setMsg(null);
    // Answers only when the checkout could not start (the page is left otherwise).
    const r = await startCheckout(workerUrl, accessToken, { offer: String(f.get('offer')), quantity: Number(f.get('quantity')), organization_id: view.id }, null);
    setBusy(null);
    setMsg({ ok: false, text: `${r.message} (${r.error})` });
  }

  const s = view.seats;
  const noPlan = view.plan.status === 'none' || view.plan.status === 'canceled' || view.plan.status === 'unpaid';

  return (
    <div data-testid="organization" data-org={view.id} data-role={view.role} data-answers={answers}>
      <h1>{view.name}</h1>
      <p className="status-line">
        Your role: <strong data-testid="org-role">{view.role}</strong> · Plan:{' '}
        <strong data-testid="org-plan" data-tier={view.plan.tier ?? ''} data-status={view.plan.status}>
          {view.plan.tier ?? 'FREE'} ({STATUS[view.plan.status]})
        </strong>
        {view.plan.offer ? ` · ${offerLabel(view.plan.offer)}` : ''}
        {view.plan.valid_to ? ` · paid through ${day(view.plan.valid_to)}` : ''}
      </p>

      {view.grace.in_grace ? (
        <p className="banner" data-testid="grace-banner">
          <strong>Payment past due.</strong> The plan stays on during the grace period, until {day(view.grace.grace_ends_at)}; after
          that every seat loses the plan&apos;s features. An owner or admin can update the payment method under Manage billing.
        </p>
      ) : view.plan.status === 'unpaid' ? (
        <p className="banner" data-testid="grace-banner">
          <strong>The grace period ended on {day(view.grace.grace_ends_at)}.</strong> The plan&apos;s features are off until the
          organization pays.
        </p>
      ) : null}

      <section className="card">
        <h2>Seats</h2>
        <p data-testid="org-seats" data-count={s.count} data-used={s.used} data-reserved={s.reserved} data-available={s.available}>
          <strong>
            {s.used} of {s.count} seats used
          </strong>
          {s.reserved ? ` · ${s.reserved} reserved by pending invites` : ''} · {s.available} available
        </p>
        <p data-testid="my-seat" data-seat={String(view.seat)}>
          {view.seat ? 'You hold a seat.' : 'You do not hold a seat.'}
        </p>
      </section>

      <section className="card" data-testid="my-access">
        <h2>Your access</h2>
        {entitlementsProblem ? (
          <p className="message error">Your entitlements could not be read: {entitlementsProblem}</p>
        ) : mine ? (
          <>
            <p className="status-line" data-testid="my-access-summary" data-has-seat={String(mine.hasSeat)}>
              {mine.hasSeat
                ? `With your seat you use the ${mine.tier ?? 'FREE'} plan's features.`
                : `Without a seat the ${mine.tier ?? 'FREE'} plan's features are locked for you: ask an owner or admin for a seat.`}
            </p>
            <table className="grants">
              <thead>
                <tr>
                  <th>Feature</th>
                  <th>In the plan</th>
                  <th>For you</th>
                </tr>
              </thead>
              <tbody>
                {Object.keys(view.features).map((f) => (
                  <tr key={f} data-testid="feature" data-feature={f} data-state={mine.features[f] ? 'unlocked' : 'locked'}>
                    <td>{label(f)}</td>
                    <td>{view.features[f] ? 'included' : '—'}</td>
                    <td>{mine.features[f] ? 'unlocked' : 'locked'}</td>
                  </tr>
                ))}
                {Object.keys(view.limits).map((l) => (
                  <tr key={l} data-testid="limit" data-limit={l} data-value={String(mine.limits[l] ?? '')}>
                    <td>{limitLabel(l)}</td>
                    <td>{String(view.limits[l])}</td>
                    <td>{String(mine.limits[l] ?? '—')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : (
          <p className="status-line">Your snapshot does not list this organization yet.</p>
        )}
        {view.role !== 'owner' ? (
          <p className="actions">
            <button
              type="button"
              className="secondary"
              disabled={busy !== null}
              data-testid="leave"
              onClick={async () => {
                if (await act('leave', 'DELETE', `${base}/members/${encodeURIComponent(userId)}`, undefined, () => 'You left the organization.')) router.push('/orgs');
              }}
            >
              Leave the organization
            </button>
          </p>
        ) : null}
      </section>

      {manages && noPlan ? (
        <form className="stack card" onSubmit={buy} data-testid="buy-seats">
          <h2>Buy a plan</h2>
          <label>
            Plan
            <select name="offer" data-testid="buy-offer">
              {catalog.offers.map((o) => (
                <option key={o.key} value={o.key}>
                  {o.label} — {priceLabel(o.price, money)}
                </option>
              ))}
            </select>
          </label>
          <label>
            Seats
            <input name="quantity" type="number" min={1} defaultValue={Math.max(1, s.used)} data-testid="buy-quantity" />
          </label>
          <button type="submit" disabled={busy !== null} data-testid="buy-plan">
            {busy === 'buy' ? 'Opening checkout…' : 'Buy'}
          </button>
        </form>
      ) : null}

      {manages ? (
        <section className="card" data-testid="members">
          <h2>Members</h2>
          <table className="grants">
            <thead>
              <tr>
                <th>Member</th>
                <th>Role</th>
                <th>Seat</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {view.members!.map((m) => (
                <tr key={m.user_id} data-testid="member" data-user={m.user_id} data-email={m.email ?? ''} data-role={m.role} data-seat={String(m.seat)}>
                  <td>
                    {m.email ?? m.user_id}
                    {m.user_id === userId ? ' (you)' : ''}
                  </td>
                  <td>
                    {view.role === 'owner' ? (
                      <select
                        value={m.role}
                        disabled={busy !== null}
                        data-testid="member-role"
                        onChange={(e) => {
                          const role = e.target.value as Role;
                          act(`role:${m.user_id}`, 'PATCH', `${base}/members/${encodeURIComponent(m.user_id)}`, { role }, () => `${m.email ?? m.user_id} is now ${role}.`);
                        }}
                      >
                        <option value="owner">owner</option>
                        <option value="admin">admin</option>
                        <option value="member">member</option>
                      </select>
                    ) : (
                      m.role
                    )}
                  </td>
                  <td>{m.seat ? 'seat' : 'no seat'}</td>
                  <td className="actions">
                    <button
                      type="button"
                      className="secondary"
                      disabled={busy !== null}
                      data-testid={m.seat ? 'take-seat' : 'give-seat'}
                      onClick={() =>
                        act(`seat:${m.user_id}`, 'POST', `${base}/seats`, { user_id: m.user_id, action: m.seat ? 'take' : 'give' }, () =>
                          m.seat ? `The seat of ${m.email ?? m.user_id} is free again.` : `${m.email ?? m.user_id} holds a seat.`,
                        )
                      }
                    >
                      {m.seat ? 'Take the seat' : 'Give a seat'}
                    </button>{' '}
                    {m.user_id !== userId ? (
                      <button
                        type="button"
                        className="secondary"
                        disabled={busy !== null}
                        data-testid="remove-member"
                        onClick={() => act(`remove:${m.user_id}`, 'DELETE', `${base}/members/${encodeURIComponent(m.user_id)}`, undefined, () => `${m.email ?? m.user_id} was removed.`)}
                      >
                        Remove
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}

      {manages ? (
        <form className="stack card" onSubmit={invite} data-testid="invite-form">
          <h2>Invite</h2>
          <label>
            Email
            <input name="email" type="email" required data-testid="invite-email" />
          </label>
          <label>
            Role
            <select name="role" defaultValue="member" data-testid="invite-role">
              <option value="member">member</option>
              <option value="admin">admin</option>
            </select>
          </label>
          <label className="inline">
            <span>
              <input name="seat" type="checkbox" defaultChecked data-testid="invite-seat" /> Reserve a seat for them
            </span>
          </label>
          <button type="submit" disabled={busy !== null} data-testid="invite-send">
            {busy === 'invite' ? 'Inviting…' : 'Invite'}
          </button>
        </form>
      ) : null}

      {msg ? (
        <p className={`message ${msg.ok ? 'ok' : 'error'}`} data-testid="org-message">
          {msg.text}
        </p>
      ) : null}
      {link ? (
        <p className="message ok">
          Invite link for {link.email}:{' '}
          <a href={link.url} data-testid="invite-link" data-email={link.email} className="mono">
            {link.url}
          </a>
        </p>
      ) : null}

      {manages ? (
        <section className="card" data-testid="invites">
          <h2>Pending invites</h2>
          {view.invites!.length === 0 ? <p data-testid="no-invites">No pending invites.</p> : null}
          <ul className="offers">
            {view.invites!.map((i) => (
              <li key={i.id} data-testid="invite" data-invite={i.id} data-email={i.email} data-state={i.state} data-seat={String(i.seat)}>
                <span>
                  <strong>{i.email}</strong> · {i.role} · {i.seat ? 'with a seat' : 'no seat'} ·{' '}
                  {i.state === 'expired' ? `expired on ${day(i.expires_at)}` : `expires on ${day(i.expires_at)}`}
                </span>
                <button
                  type="button"
                  className="secondary"
                  disabled={busy !== null}
                  data-testid="revoke-invite"
                  onClick={() => act(`revoke:${i.id}`, 'DELETE', `${base}/invites/${encodeURIComponent(i.id)}`, undefined, () => `The invite of ${i.email} is revoked.`)}
                >
                  Revoke
                </button>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </div>
  );
}
