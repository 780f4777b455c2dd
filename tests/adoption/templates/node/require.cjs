// Plain Node, CommonJS: require() of the package (Node 20.19+ loads its ES module).
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { explainAccess, hasAccess, isReady, loadCatalog, useCatalog } = require('tollgate');

useCatalog(loadCatalog(readFileSync(path.join(__dirname, 'tollgate-catalog.json'), 'utf8')));
const rows = [
  { cloud_id: 'creation', tier: 'pro', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
  { cloud_id: 'video', tier: 'basic', source: 'stripe', status: 'active', valid_from: '2020-01-01T00:00:00Z', valid_to: null },
];
const video = explainAccess(rows, 'video', 'pro');
console.log(JSON.stringify({ ready: isReady(), creation_pro: hasAccess(rows, 'creation', 'pro'), video_reason: video.reason }));
