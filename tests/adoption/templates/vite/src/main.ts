// A Vite page: the browser entry; `await init()` fetches the .wasm Vite copied as an asset.
import { explainAccess, init, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc, CloudEntitlementRow } from 'tollgate';
import catalogJson from './tollgate-catalog.json';

const rows: CloudEntitlementRow[] = [
  { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
];

await init();
useCatalog(loadCatalog(catalogJson as CatalogDoc));
const decision = explainAccess(rows, 'creation', 'pro');
const button = document.querySelector<HTMLButtonElement>('#pro-tool');
if (button) {
  button.textContent = decision.allowed ? 'Open the pro tool' : `Locked: ${decision.reason}`;
  button.disabled = !decision.allowed;
}
