// CPU time per request, by process: where the cycles of a request through the local
// stack go (Linux only: read from /proc/<pid>/stat, utime + stime in clock ticks).
//
// The processes are found from the stack's own coordinates, never by name alone:
// - the REST gateway: the process listening on the REST port (`--listen host:port`);
// - PostgreSQL: the postmaster of the stack's data directory (its postmaster.pid) and
//   its children (one backend per connection);
// - wrangler dev: the outermost node process started with `--port <worker port>` and all
//   its descendants (the CLI its launcher starts; the workerd that runs the worker, with
//   miniflare's entry worker in front of it; wrangler's dev proxy, the workerd listening on
//   the worker port);
// - the load client: this process (process.cpuUsage()).
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on Linux

function stat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state(3) ppid(4) ... utime(14) stime(15), 1-based.
    return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return null;
  }
}

function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function pids() {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/** The stack's processes, grouped: `{group: [pid, ...]}`. Call it again after a run:
 * PostgreSQL starts a backend for each new connection the gateway opens under load. */
export function findStack({ restPort, workerPort, pgData }) {
  const all = pids().map((pid) => ({ pid, ...stat(pid), argv: cmdline(pid) })).filter((p) => p.ticks !== undefined);
  const children = (pid) => all.filter((p) => p.ppid === pid);
  const descendants = (pid) => children(pid).flatMap((c) => [c, ...descendants(c.pid)]);
  const groups = { 'worker runtime (workerd)': [], 'wrangler dev plumbing (node + proxy workerd)': [], 'REST gateway': [], PostgreSQL: [] };
  const gw = all.find((p) => p.argv.some((a) => a.endsWith('tollgate-gateway')) && p.argv.includes(`127.0.0.1:${restPort}`));
  if (gw) groups['REST gateway'].push(gw.pid);
  try {
    const postmaster = Number(readFileSync(`${pgData}/postmaster.pid`, 'utf8').split('\n')[0]);
    groups.PostgreSQL.push(postmaster, ...descendants(postmaster).map((p) => p.pid));
  } catch {
    // no PostgreSQL found: its share stays empty (reported as such)
  }
  // The outermost wrangler process for this port (wrangler's launcher starts its CLI as a child).
  const isWrangler = (p) => p.argv.some((a) => a.includes('wrangler')) && p.argv.includes('dev') && p.argv.includes(String(workerPort));
  const wrangler = all.find((p) => isWrangler(p) && !all.some((q) => q.pid === p.ppid && isWrangler(q)));
  if (wrangler) {
    groups['wrangler dev plumbing (node + proxy workerd)'].push(wrangler.pid);
    for (const d of descendants(wrangler.pid)) {
      const workerd = d.argv.some((a) => a.endsWith('/workerd'));
      const proxy = d.argv.some((a) => a.includes(`entry=127.0.0.1:${workerPort}`));
      groups[workerd && !proxy ? 'worker runtime (workerd)' : 'wrangler dev plumbing (node + proxy workerd)'].push(d.pid);
    }
  }
  return groups;
}

function sample(groups) {
  const out = {};
  for (const [name, list] of Object.entries(groups)) {
    out[name] = Object.fromEntries(list.map((pid) => [pid, stat(pid)?.ticks ?? 0]));
  }
  const c = process.cpuUsage();
  out['load client (node)'] = { self: (c.user + c.system) / 1000 / TICK_MS };
  return out;
}

/** Runs `fn` and returns its result with the CPU milliseconds each group of the stack
 * (`find()` gives the groups; it is called before and after) spent per request
 * (`requests` requests) and their sum. A process that appears during the run counts
 * from zero. */
export async function cpuPerRequest(find, requests, fn) {
  const before = sample(find());
  const result = await fn();
  const after = sample(find());
  const per = {};
  let total = 0;
  for (const [group, pids] of Object.entries(after)) {
    const ticks = Object.entries(pids).reduce((sum, [pid, t]) => sum + t - (before[group]?.[pid] ?? 0), 0);
    const ms = (ticks * TICK_MS) / requests;
    per[group] = ms;
    total += ms;
  }
  return { result, cpu: { per_request_ms: per, total_ms: total } };
}
