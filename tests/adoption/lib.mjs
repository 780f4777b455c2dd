// Shared helpers of the adoption tests: scratch apps made from templates/ in a folder
// outside the repository (TOLLGATE_ADOPTION_DIR, where `cargo xtask test adoption` packed
// tollgate.tgz and tollgate-react.tgz), npm install with a download cache kept between
// runs, servers started in their own process group and stopped with it, Debian's
// Chromium, and the code blocks of the packages' READMEs.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { chromiumOptions } from '../chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
const TEMPLATES = path.join(here, 'templates');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through \`cargo xtask test adoption\``);
  return v;
}

export const DIR = need('TOLLGATE_ADOPTION_DIR');
const NPM_CACHE = process.env.TOLLGATE_ADOPTION_NPM_CACHE ?? path.join(DIR, 'npm-cache');
export const PORTS = {
  next: Number(process.env.TOLLGATE_ADOPTION_NEXT_PORT ?? 3001),
  vite: Number(process.env.TOLLGATE_ADOPTION_VITE_PORT ?? 3002),
  worker: Number(process.env.TOLLGATE_ADOPTION_WORKER_PORT ?? 8791),
};

if (path.relative(REPO, DIR).split(path.sep)[0] !== '..') {
  throw new Error(`TOLLGATE_ADOPTION_DIR (${DIR}) must be outside the repository (${REPO})`);
}

/** Where the scratch app `name` lives. */
export const appDir = (name) => path.join(DIR, name);

/** The VCM Suite's catalog as `tollgate catalog check --json` writes it (`cargo xtask build`
 * writes the example catalogs there before this stage). */
const CATALOG_JSON = path.join(REPO, 'target', 'catalogs', 'vcm-suite.json');

/**
 * A fresh scratch app from templates/<name>, with the catalog file at each path of
 * `catalogAt`.
 */
export function scaffold(name, ...catalogAt) {
  const dir = appDir(name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(path.join(TEMPLATES, name), dir, { recursive: true });
  for (const at of catalogAt) {
    mkdirSync(path.dirname(path.join(dir, at)), { recursive: true });
    cpSync(CATALOG_JSON, path.join(dir, at));
  }
  return dir;
}

/** Runs a command to the end; its output is shown when it fails. */
export function sh(cmd, args, opts = {}) {
  const t = Date.now();
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...opts,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', WRANGLER_SEND_METRICS: 'false', ...opts.env },
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) failed (${r.status ?? r.signal}):\n${out.slice(-6000)}`);
  }
  console.log(`# ${path.basename(cmd)} ${args.join(' ')}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return out;
}

/** `npm install` in a scratch app: the registry's packages and the packed tarballs. */
export function npmInstall(dir) {
  return sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--cache', NPM_CACHE], { cwd: dir });
}

async function waitHttp(url, child, log, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited (${child.exitCode}):\n${log().slice(-4000)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return;
    } catch {
      await new Promise((res) => setTimeout(res, 300));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s:\n${log().slice(-4000)}`);
}

/**
 * Starts a server in its own process group and waits until `url` answers. `stop()` ends
 * the group (SIGINT first: wrangler stops its workerd on it, as on Ctrl-C); callers stop
 * it in a `finally`, and the group is ended when this process exits.
 */
export async function start(cmd, args, { cwd, url, timeoutMs = 60_000 }) {
  let log = '';
  const child = spawn(cmd, args, {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', WRANGLER_SEND_METRICS: 'false' },
  });
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const onExit = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  };
  process.on('exit', onExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    for (const [sig, wait] of [['SIGINT', 5000], ['SIGKILL', 2000]]) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      try {
        process.kill(-child.pid, sig);
      } catch {
        break;
      }
      const deadline = Date.now() + wait;
      while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  };
  try {
    await waitHttp(url, child, () => log, timeoutMs);
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop, log: () => log };
}

/** `next start` of the scratch Next app on PORTS.next. */
export function nextStart(dir) {
  const port = String(PORTS.next);
  return start(process.execPath, ['node_modules/next/dist/bin/next', 'start', '-H', '127.0.0.1', '-p', port], {
    cwd: dir,
    url: `http://127.0.0.1:${port}/server`,
  });
}

export async function getJson(url) {
  const r = await fetch(url);
  const text = await r.text();
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${text.slice(0, 2000)}`);
  return { headers: r.headers, body: JSON.parse(text) };
}

export async function getText(url) {
  const r = await fetch(url);
  const text = await r.text();
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${text.slice(0, 2000)}`);
  return { headers: r.headers, text };
}

/** Debian's Chromium (the caller closes it: `after(() => browser?.close())` at the top level). */
export async function launch() {
  return chromium.launch(chromiumOptions());
}

/**
 * Opens `url`, collects the page's errors, and returns the page once `selector` is there.
 * A page error (an uncaught exception, a failed wasm load) fails the test.
 */
export async function openPage(browser, url, selector) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  try {
    await page.waitForSelector(selector, { state: 'attached', timeout: 20_000 });
  } catch (e) {
    throw new Error(`${url}: ${selector} did not appear (${e.message}); page errors: ${errors.join(' | ') || 'none'}\n${(await page.content()).slice(0, 3000)}`);
  }
  if (errors.length) throw new Error(`${url}: page errors: ${errors.join(' | ')}`);
  return page;
}

// ---------------------------------------------------------------- README code blocks

/**
 * The code blocks (js, ts, tsx, jsx) of a README, each with its info string's placement:
 * - `next:<path>`: a file of the scratch Next app at <path>, built and (a page or a route
 *   handler) requested over HTTP;
 * - `node`: a plain Node ES module, run;
 * - none: compiled in the scratch Next app under `strict` (readme/<name>-<line>.tsx), with
 *   the names a snippet uses without defining them declared in readme/globals.d.ts.
 */
export function readmeBlocks(rel) {
  const text = readFileSync(path.join(REPO, rel), 'utf8');
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w+)\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, lang, rest] = open;
    const body = [];
    let j = i + 1;
    for (; j < lines.length && !new RegExp(`^\\s*\`\`\`\\s*$`).test(lines[j]); j++) {
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j]);
    }
    if (['js', 'ts', 'tsx', 'jsx'].includes(lang)) {
      const where = rest.trim();
      blocks.push({ file: rel, line: i + 1, lang, where, code: body.join('\n') + '\n' });
    }
    i = j;
  }
  return blocks;
}

/**
 * Both READMEs' blocks of one app: `next` (the `next:<path>` blocks and the unplaced ones,
 * compiled there) or `node`; written into `dir`. Returns what each became.
 */
export function placeReadmeBlocks(app, dir) {
  const placed = [];
  let total = 0;
  for (const rel of ['pkg/README.md', 'react/README.md']) {
    const blocks = readmeBlocks(rel);
    if (!blocks.length) throw new Error(`${rel} has no code blocks`);
    total += blocks.length;
    const stem = rel.split('/')[0];
    for (const b of blocks) {
      let target;
      if (b.where.startsWith('next:')) {
        target = { kind: 'next', path: path.join(dir, b.where.slice(5)) };
      } else if (b.where === 'node') {
        target = { kind: 'node', path: path.join(dir, `readme-${stem}-${b.line}.mjs`) };
      } else if (b.where === '') {
        target = { kind: 'types', path: path.join(dir, 'readme', `${stem}-${b.line}.tsx`) };
      } else {
        throw new Error(`${rel}:${b.line}: unknown placement \`${b.where}\` (next:<path>, node, or none)`);
      }
      if ((app === 'node') !== (target.kind === 'node')) continue;
      if (existsSync(target.path)) throw new Error(`${rel}:${b.line}: ${target.path} is a template file already`);
      mkdirSync(path.dirname(target.path), { recursive: true });
      writeFileSync(target.path, `// From ${rel}, line ${b.line}.\n${b.code}`);
      placed.push({ ...b, ...target });
    }
  }
  return { placed, total };
}

/** The URL path a Next app file answers at (app/x/page.tsx -> /x), or null. */
export function nextRoute(file) {
  const m = /(?:^|\/)app\/(.*?)\/?(page|route)\.(t|j)sx?$/.exec(file.split(path.sep).join('/'));
  return m ? `/${m[1]}` : null;
}
