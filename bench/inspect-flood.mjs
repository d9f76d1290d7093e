// JSON-RPC throughput with inspection off and on: N pipelined `account/read`s,
// time from the first request written to the last response read, and the
// server's CPU time for them (from /proc: steadier than wall time on a busy machine).
// Usage: node bench/inspect-flood.mjs [N] [rounds]   (after npm run build)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 5);
const bin = fileURLToPath(new URL('../bin/codex-account-server', import.meta.url));

const VARIANTS = {
  'inspection off': { args: [], watch: [] },
  '--inspect-ui, no page open': { args: ['--inspect-ui'], watch: [] },
  '--inspect-ui, page reading': { args: ['--inspect-ui'], watch: ['/events'] },
  '--inspect --inspect-ui, both feeds reading': { args: ['--inspect', '--inspect-ui'], watch: ['/events', '/stately/events'] },
};

function watch(url, path) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: u.port, path: `${path}?token=${u.searchParams.get('token')}` }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      resolve({ close: () => req.destroy(), bytes: () => bytes });
    });
    req.on('error', () => {});
    req.end();
  });
}

/** utime + stime of a process in ms (Linux). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function once({ args, watch: paths }) {
  const home = mkdtempSync(join(tmpdir(), 'cas-flood-'));
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, CODEX_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const waitOut = (needle) =>
    new Promise((resolve) => {
      const check = () => (out.includes(needle) ? resolve() : setTimeout(check, 2));
      check();
    });
  child.stdout.on('data', (c) => (out += c));
  child.stdin.write(`${JSON.stringify({ id: 0, method: 'initialize', params: { clientInfo: { name: 'flood', version: '1' } } })}\n`);
  await waitOut('"id":0');
  const watchers = [];
  if (paths.length > 0) {
    while (!/open (http:\S+)/.test(err)) await new Promise((r) => setTimeout(r, 5));
    const url = /live state page: open (http:\S+)/.exec(err)[1];
    for (const p of paths) watchers.push(await watch(url, p));
    await new Promise((r) => setTimeout(r, 50));
  }
  out = '';
  const lines = Array.from({ length: N }, (_, i) => `${JSON.stringify({ id: i + 1, method: 'account/read', params: {} })}\n`).join('');
  const cpu0 = cpuMs(child.pid);
  const t0 = performance.now();
  child.stdin.write(lines);
  await waitOut(`"id":${N},`);
  const ms = performance.now() - t0;
  const cpu = cpuMs(child.pid) - cpu0;
  const fed = watchers.reduce((sum, w) => sum + w.bytes(), 0);
  for (const w of watchers) w.close();
  child.kill();
  rmSync(home, { recursive: true, force: true });
  return { ms, cpu, fed };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Round-robin, so drift in the machine's load hits every variant alike.
const results = Object.fromEntries(Object.keys(VARIANTS).map((name) => [name, { runs: [], cpus: [], fed: 0 }]));
for (let i = 0; i < ROUNDS; i++) {
  for (const [name, variant] of Object.entries(VARIANTS)) {
    const r = await once(variant);
    results[name].runs.push(r.ms);
    results[name].cpus.push(r.cpu);
    results[name].fed = r.fed;
  }
}
let base;
let baseCpu;
for (const [name, { runs, cpus, fed }] of Object.entries(results)) {
  const m = median(runs);
  const c = median(cpus);
  base ??= m;
  baseCpu ??= c;
  console.log(
    `${name.padEnd(44)} ${N} reads: wall ${m.toFixed(0)} ms ×${(m / base).toFixed(2)}  cpu ${c.toFixed(0)} ms ×${(c / baseCpu).toFixed(2)}${fed ? `  feed ${(fed / 1024).toFixed(0)} KiB` : ''}`,
  );
}
