'use client';

import { describeReason, useToolStates, useTollgate } from 'tollgate-react';
import type { CatalogDoc, ToolState } from 'tollgate-react';

import { useUpgrade } from './UpgradeModal';

/** `catalog`: the server's copy, so the server render already lists the tools (and, with
 * `initial`, their states) before the browser has loaded its own. */
export function ToolsGrid({ initial, catalog = null }: { initial: ToolState[] | null; catalog?: CatalogDoc | null }) {
  const t = useTollgate();
  const { status, tools, error } = useToolStates(null, null, { initial });
  const { open } = useUpgrade();
  const doc = t.catalog ?? catalog;
  const catalogTools = doc?.tools ?? [];
  const pages: string[] = [];
  for (const tool of catalogTools) if (!pages.includes(tool.page)) pages.push(tool.page);
  const byId = new Map(tools.map((s) => [s.tool, s]));
  const productName = (p: string) => doc?.products.find((x) => x.id === p)?.name ?? p;

  if (error) return <p className="error">Tools could not be checked: {error}</p>;
  return (
    <div data-testid="tools" data-state={status}>
      {pages.map((page) => (
        <section key={page}>
          <h2>{productName(page)}</h2>
          <div className="grid">
            {catalogTools
              .filter((tool) => tool.page === page)
              .map((tool) => {
                const s = byId.get(tool.id);
                if (status === 'pending' || !s) {
                  return (
                    <div key={tool.id} className="card tool pending" data-tool={tool.id} data-state="pending" aria-busy="true">
                      <h3>{tool.label}</h3>
                      <div className="skeleton" />
                    </div>
                  );
                }
                const q = { tool: tool.id };
                return (
                  <div
                    key={tool.id}
                    className={`card tool ${s.locked ? 'locked' : 'open'}`}
                    data-tool={tool.id}
                    data-state={s.locked ? 'locked' : 'unlocked'}
                    data-reason={s.decision.reason}
                    role={s.locked ? 'button' : undefined}
                    tabIndex={s.locked ? 0 : undefined}
                    onClick={s.locked ? () => open(q, s.decision, tool.label) : undefined}
                    onKeyDown={s.locked ? (e) => (e.key === 'Enter' ? open(q, s.decision, tool.label) : undefined) : undefined}
                  >
                    <span className={`badge ${s.locked ? 'locked' : 'open'}`}>{s.locked ? 'Locked' : 'Open'}</span>
                    <h3>{tool.label}</h3>
                    <p>{tool.description}</p>
                    {s.locked ? (
                      <span className="why">
                        {describeReason(s.decision, tool.label)}
                        {s.decision.upgrade ? ` From ${s.decision.upgrade.display}.` : ''}
                      </span>
                    ) : null}
                  </div>
                );
              })}
          </div>
        </section>
      ))}
    </div>
  );
}
