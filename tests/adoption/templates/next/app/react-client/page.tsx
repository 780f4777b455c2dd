'use client';
// tollgate-react's provider in a client component: signed out, so only free tiers count.
import { Gate, TollgateProvider, useAccess } from 'tollgate-react';
import type { CatalogDoc } from 'tollgate-react';
import catalogJson from '@/tollgate-catalog.json';

function Status() {
  const { status, allowed, decision } = useAccess({ product: 'creation', tier: 'pro' });
  return <p id="status" data-status={status} data-allowed={String(allowed)} data-reason={decision?.reason ?? ''} />;
}

export default function Page() {
  return (
    <TollgateProvider workerUrl="http://127.0.0.1:9" accessToken={null} publicKeys="" catalog={catalogJson as CatalogDoc} refreshOnFocus={false}>
      <Status />
      <Gate product="creation" tier="pro" locked={({ decision }) => <button id="upgrade">Upgrade: {decision.upgrade?.offer}</button>}>
        <button id="pro-tool">Open the pro tool</button>
      </Gate>
    </TollgateProvider>
  );
}
