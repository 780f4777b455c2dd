'use client';

import { TollgateProvider } from 'tollgate-react';
import type { CatalogDoc } from 'tollgate-react';
import type { ReactNode } from 'react';

import { UpgradeProvider } from './UpgradeModal';

export function AppProviders(props: {
  children: ReactNode;
  workerUrl: string;
  publicKeys: string;
  catalog: CatalogDoc;
  accessToken: string | null;
  subject: string | null;
  /** The local checkout stand-in is on (it pays Razorpay orders on its own page). */
  standIns: boolean;
}) {
  return (
    <TollgateProvider
      // A different user (or signing out) starts from a clean provider.
      key={props.subject ?? 'signed-out'}
      workerUrl={props.workerUrl}
      publicKeys={props.publicKeys}
      catalog={props.catalog}
      accessToken={props.accessToken}
      subject={props.subject}
    >
      <UpgradeProvider signedIn={Boolean(props.accessToken)} workerUrl={props.workerUrl} accessToken={props.accessToken} orderPages={props.standIns}>
        {props.children}
      </UpgradeProvider>
    </TollgateProvider>
  );
}
