// The Org Seats app's organizations, read on the server with the signed-in user's token:
// the organization as its worker shows it to the caller (`GET /v1/orgs/{id}`: plan,
// status, seats, grace, the tier's features; members and invites for owners and admins),
// and the caller's own entitlements through it, decided by the package from the signed
// snapshot of the Org Seats worker (`getOrganizationEntitlements`: a member without a seat
// holds none of the plan's features). Nothing is decided here.

import { fetchSnapshot, organizationEntitlements } from 'tollgate-react/server';
import type { OrganizationEntitlements, OrgMembership } from 'tollgate-react/server';

import { callWorker } from './billing';
import { orgCatalog } from './catalog';
import { orgWorkerUrl, snapshotPublicKeys } from './config';
import type { Session } from './session';

export type Role = 'owner' | 'admin' | 'member';

/** `GET /v1/orgs/{id}`, as the worker answers it (the core's `OrgView`). */
export interface OrgView {
  id: string;
  name: string;
  role: Role;
  seat: boolean;
  plan: {
    product: string | null;
    tier: string | null;
    status: 'active' | 'trialing' | 'past_due' | 'canceled' | 'unpaid' | 'none';
    offer: string | null;
    valid_to: string | null;
    in_grace: boolean;
    grace_ends_at: string | null;
  };
  seats: { count: number; used: number; reserved: number; available: number };
  grace: { in_grace: boolean; grace_ends_at: string | null };
  features: Record<string, boolean>;
  limits: Record<string, number | 'unlimited'>;
  members?: { user_id: string; role: Role; seat: boolean; email?: string; joined_at?: string }[];
  invites?: {
    id: string;
    email: string;
    role: Role;
    seat: boolean;
    expires_at: string;
    created_at?: string;
    state: 'pending' | 'expired' | 'accepted' | 'revoked';
  }[];
}

export type Read<T> = { ok: true; value: T } | { ok: false; status: number; code: string; message: string };

/** The organization `id` as the worker shows it to the signed-in user. */
export async function readOrg(session: Session, id: string): Promise<Read<OrgView>> {
  const a = await callWorker<OrgView>('GET', orgWorkerUrl(), session.accessToken, `/v1/orgs/${encodeURIComponent(id)}`);
  return a.ok ? { ok: true, value: a.body } : { ok: false, status: a.status, code: a.error, message: a.message };
}

/** The signed-in user's verified Org Seats snapshot, with the catalog it was checked against. */
async function orgSnapshot(session: Session) {
  const { doc } = await orgCatalog();
  const got = await fetchSnapshot({
    workerUrl: orgWorkerUrl(),
    accessToken: session.accessToken,
    publicKeys: snapshotPublicKeys(),
    subject: session.userId,
    catalogId: doc.catalog.id,
  });
  return { doc, got };
}

/** The signed-in user's organizations, from their verified Org Seats snapshot. */
export async function myOrganizations(session: Session): Promise<Read<OrgMembership[]>> {
  const { got } = await orgSnapshot(session);
  if (!got.ok) return { ok: false, status: got.status ?? 503, code: got.code, message: got.message };
  return { ok: true, value: got.snapshot.organizations ?? [] };
}

/** The signed-in user's entitlements through organization `id` (null: not a member), by
 * the package from their verified Org Seats snapshot. */
export async function myEntitlements(session: Session, id: string): Promise<Read<OrganizationEntitlements | null>> {
  const { doc, got } = await orgSnapshot(session);
  if (!got.ok) return { ok: false, status: got.status ?? 503, code: got.code, message: got.message };
  return { ok: true, value: await organizationEntitlements(doc, got.snapshot, id) };
}
