import type { Metadata } from 'next';
import Link from 'next/link';
import type { ReactNode } from 'react';

import { AppProviders } from '@/components/AppProviders';
import { EntitlementStatus } from '@/components/EntitlementStatus';
import { OfflineSupport } from '@/components/OfflineSupport';
import { suiteCatalog } from '@/lib/catalog';
import { devStandInsEnabled, snapshotPublicKeys, workerUrl } from '@/lib/config';
import { getSession } from '@/lib/session';

import './globals.css';

export const metadata: Metadata = {
  title: 'VCM Suite — tollgate demo',
  description: 'Entitlement gating with tollgate: instant locked states from a signed, cached snapshot.',
};

// Every page depends on the session cookie.
export const dynamic = 'force-dynamic';

export default async function RootLayout({ children }: { children: ReactNode }) {
  const session = await getSession();
  const catalog = await suiteCatalog();
  return (
    <html lang="en">
      <body>
        <AppProviders
          workerUrl={workerUrl()}
          publicKeys={snapshotPublicKeys()}
          catalog={catalog.doc}
          accessToken={session?.accessToken ?? null}
          subject={session?.userId ?? null}
          standIns={devStandInsEnabled()}
        >
          <header className="top">
            <span className="brand">VCM Suite</span>
            <nav>
              <Link href="/tools">Tools</Link>
              <Link href="/tools/demo">Demo tool</Link>
              {/* Gated by proxy.ts; not prefetched, so a purchase is seen on the next visit. */}
              <Link href="/tools/batch" prefetch={false}>
                Batch tools
              </Link>
              <Link href="/generate">Generate video</Link>
              <Link href="/drafts">Drafts</Link>
              <Link href="/orgs">Organizations</Link>
              <Link href="/account">Account</Link>
            </nav>
            <span className="who">
              {session ? (
                <>
                  <span data-testid="signed-in-as">{session.email ?? session.userId}</span>
                  <form action="/api/dev/signout" method="post">
                    <button className="secondary" type="submit">
                      Sign out
                    </button>
                  </form>
                </>
              ) : devStandInsEnabled() ? (
                <Link href="/signin">Sign in</Link>
              ) : (
                <span>Signed out</span>
              )}
            </span>
          </header>
          <OfflineSupport />
          <main>
            <EntitlementStatus catalogFrom={catalog.from} />
            {children}
          </main>
        </AppProviders>
      </body>
    </html>
  );
}
