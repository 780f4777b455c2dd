// Plain Node, ESM: the Node entry loads the wasm on import.
import { readFileSync } from 'node:fs';
import { explainAccess, hasAccess, isReady, loadCatalog, useCatalog } from 'tollgate';

useCatalog(loadCatalog(readFileSync(new URL('./tollgate-catalog.json', import.meta.url), 'utf8')));
const rows = [
  { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
  { cloud_id: 'video', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
];
const video = explainAccess(rows, 'video', 'pro');
console.log(JSON.stringify({ ready: isReady(), creation_pro: hasAccess(rows, 'creation', 'pro'), video_reason: video.reason }));
