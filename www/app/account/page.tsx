import { AccountTimeline } from '@/components/AccountTimeline';
import { getSession } from '@/lib/session';

export default async function AccountPage() {
  const session = await getSession();
  return (
    <>
      <h1>Account</h1>
      {session ? (
        <>
          <p className="status-line">
            Signed in as {session.email ?? session.userId} (<span className="mono">{session.userId}</span>).
          </p>
          <AccountTimeline />
        </>
      ) : (
        <p>
          <a href="/signin?next=/account">Sign in</a> to see your entitlements.
        </p>
      )}
    </>
  );
}
