import { AccountTimeline } from '@/components/AccountTimeline';
import { AccountUsage } from '@/components/AccountUsage';
import { EntitlementHistory } from '@/components/EntitlementHistory';
import { Subscriptions } from '@/components/Subscriptions';
import { appWorkers, razorpayCatalog, suiteCatalog } from '@/lib/catalog';
import { razorpayWorkerUrl, snapshotPublicKeys } from '@/lib/config';
import { getSession } from '@/lib/session';
import { fetchSubscriptions } from '@/lib/subscriptions';

export default async function AccountPage() {
  const session = await getSession();
  const { doc } = await suiteCatalog();
  const productNames: Record<string, string> = Object.fromEntries(doc.products.map((p) => [p.id, p.name ?? p.id]));
  const subs = session ? await fetchSubscriptions(session) : null;
  return (
    <>
      <h1>Account</h1>
      {session ? (
        <>
          <p className="status-line">
            Signed in as {session.email ?? session.userId} (<span className="mono">{session.userId}</span>).
          </p>
          {/* Subscriptions, from the database; cancel, resume and the portal through the worker. */}
          <Subscriptions
            initial={subs && 'rows' in subs ? subs.rows : []}
            error={subs && 'error' in subs ? subs.message : null}
            apps={await appWorkers()}
            accessToken={session.accessToken}
          />
          {/* The Razorpay AI app's usage: meters, 30 days by day, warnings and payments due. */}
          <AccountUsage
            workerUrl={razorpayWorkerUrl()}
            publicKeys={snapshotPublicKeys()}
            catalog={(await razorpayCatalog()).doc}
            accessToken={session.accessToken}
            subject={session.userId}
          />
          {/* Current grants, from the signed snapshot (also offline). */}
          <AccountTimeline />
          {/* What happened, from the database (server-rendered on each visit). */}
          <EntitlementHistory session={session} productNames={productNames} />
        </>
      ) : (
        <p>
          <a href="/signin?next=/account">Sign in</a> to see your entitlements.
        </p>
      )}
    </>
  );
}
