import { devStandInsEnabled } from '@/lib/config';

export default async function SignInPage({ searchParams }: { searchParams: Promise<{ next?: string }> }) {
  const { next } = await searchParams;
  if (!devStandInsEnabled()) {
    return (
      <>
        <h1>Sign in</h1>
        <p>The local development sign-in is off. Use your Supabase Auth sign-in (see the README).</p>
      </>
    );
  }
  return (
    <>
      <h1>
        Sign in <span className="standin">local development stand-in for Supabase Auth</span>
      </h1>
      <p className="status-line">
        Issues a Supabase-compatible access token (HS256, the local stack&apos;s JWT secret) for any email and creates the
        user in the local database&apos;s auth.users. No password. Never enabled in production.
      </p>
      <form className="stack card" action="/api/dev/signin" method="post">
        <label>
          Email
          <input name="email" type="email" required placeholder="ana@example.com" data-testid="email" />
        </label>
        <input type="hidden" name="next" value={next ?? '/tools'} />
        <button type="submit" data-testid="signin">
          Sign in
        </button>
      </form>
    </>
  );
}
