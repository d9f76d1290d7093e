// Start-up latency: spawn → `initialize` response, with a fresh CODEX_HOME each run.
// Usage: node bench/startup.mjs [runs] [-- command args…]   (default: this server)
// Prints median/p90/min/max in ms, next to a bare `node -e 0` for scale.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const runs = Number(argv[0] && sep !== 0 ? argv[0] : 30);
const bin = fileURLToPath(new URL('../bin/codex-account-server', import.meta.url));
const command = sep >= 0 ? argv.slice(sep + 1) : [process.execPath, bin];

const INIT = `${JSON.stringify({ id: 1, method: 'initialize', params: { clientInfo: { name: 'bench', version: '1.0.0' } } })}\n`;

function once(cmd, args, waitForLine) {
  return new Promise((resolve, reject) => {
    const home = mkdtempSync(join(tmpdir(), 'cas-bench-'));
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, CODEX_HOME: home }, stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    const done = (ms) => {
      child.kill();
      rmSync(home, { recursive: true, force: true });
      resolve(ms);
    };
    child.on('error', reject);
    if (!waitForLine) {
      child.on('exit', () => done(performance.now() - t0));
      return;
    }
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('"id":1')) done(performance.now() - t0);
    });
    child.stdin.write(INIT);
  });
}

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return `median ${at(0.5).toFixed(1)} ms  p90 ${at(0.9).toFixed(1)} ms  min ${s[0].toFixed(1)}  max ${s.at(-1).toFixed(1)}  (n=${s.length})`;
}

const baseline = [];
const server = [];
for (let i = 0; i < runs; i++) {
  baseline.push(await once(process.execPath, ['-e', '0'], false));
  server.push(await once(command[0], command.slice(1), true));
}
console.log(`node -e 0                 ${stats(baseline)}`);
console.log(`spawn → initialize reply  ${stats(server)}   [${command.map((c) => c.split('/').pop()).join(' ')}]`);
