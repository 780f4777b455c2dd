import { AccountTimeline } from '@/components/AccountTimeline';
import { EntitlementHistory } from '@/components/EntitlementHistory';
import { suiteCatalog } from '@/lib/catalog';
import { getSession } from '@/lib/session';

export default async function AccountPage() {
  const session = await getSession();
  const { doc } = await suiteCatalog();
  const productNames: Record<string, string> = Object.fromEntries(doc.products.map((p) => [p.id, p.name ?? p.id]));
  return (
    <>
      <h1>Account</h1>
      {session ? (
        <>
          <p className="status-line">
            Signed in as {session.email ?? session.userId} (<span className="mono">{session.userId}</span>).
          </p>
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
