'use client';

import { useEffect } from 'react';
import { Gate, useTollgate } from 'tollgate-react';
import type { Decision } from 'tollgate-react';

import { useUpgrade } from './UpgradeModal';

/** The pro part of the demo tool, or the upgrade banner (the VCM Suite's original UpgradeBanner). */
export function DemoProSection(props: {
  cloud: string;
  tier: string;
  initial: Decision | null;
  token: string | null;
  serverProblem: string | null;
}) {
  const t = useTollgate();
  const { open } = useUpgrade();
  const { offer } = t;
  useEffect(() => {
    // The snapshot the server rendered with is the newest one: hand it to the provider.
    if (props.token) offer(props.token);
  }, [props.token, offer]);
  const q = { product: props.cloud, tier: props.tier };
  return (
    <Gate
      product={props.cloud}
      tier={props.tier}
      initial={props.initial}
      pending={<div className="card" data-testid="pro-pending" aria-busy="true"><div className="skeleton" /></div>}
      locked={({ decision }) => (
        <section className="banner" data-testid="upgrade-banner" data-reason={decision.reason}>
          <strong>AI captions are a Creation Cloud {props.tier} feature.</strong>
          <p>
            {decision.upgrade ? (
              <>
                Unlock them with <span data-testid="banner-offer">{decision.upgrade.display}</span>.
              </>
            ) : (
              'No plan on sale includes them.'
            )}
          </p>
          <button type="button" data-testid="banner-upgrade" onClick={() => open(q, decision, 'AI captions')}>
            Upgrade
          </button>
          {props.serverProblem ? <p className="status-line">Server: {props.serverProblem}</p> : null}
        </section>
      )}
    >
      <ProAIToolComponent />
    </Gate>
  );
}

function ProAIToolComponent() {
  const { engine, version, now } = useTollgate();
  let until: string | null = null;
  try {
    until = engine ? engine.hasAccess('creation', 'pro', now()).holds_until : null;
  } catch {
    until = null;
  }
  return (
    <section className="pro" data-testid="pro-tool" data-version={version}>
      <h2>AI caption writer</h2>
      <p>Generates captions for your thumbnail and video from the title and frames.</p>
      <button type="button">Write captions</button>
      {until ? <p className="status-line" data-testid="pro-until">Included until {new Date(until).toLocaleString()}.</p> : null}
    </section>
  );
}
