// Side-by-side benchmark: this server, a do-nothing Node floor, and any
// `--baseline "<command>"`, measured in one run. See docs/bench.md.
//
//   node bench/run.mjs [--runs N] [--only startup|reads] [--baseline "<command>"]… [--json FILE]
//
// Children get a minimal environment, their own process group (killed at the
// end, on Ctrl-C and on any error) and, on Linux, a private network namespace
// with no route out: the whole run is re-executed under `unshare --net`.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  freshHome,
  homeWithApiKey,
  killAll,
  measureReads,
  measureStartup,
  percentile,
  removeHome,
  splitCommand,
  table,
} from './lib.mjs';

const USAGE = `Usage: npm run bench -- [options]
  --runs N              start-up runs per server and home kind (default 20)
  --only startup|reads  one half of the benchmark
  --baseline "<cmd>"    another server to compare with (repeatable), e.g.
                        --baseline "/tmp/codex-ref/node_modules/.bin/codex app-server"
  --name "<label>"      label of the baseline given before it (default: its command)
  --server "<cmd>"      the command for this server (default: node bin/codex-account-server)
  --sequential N        sequential account/read requests (default 500)
  --pipelined N         account/read requests written at once (default 1000)
  --bursts N            pipelined bursts, median reported (default 5)
  --window N            requests kept in flight (default 64)
  --window-total N      requests sent through the window (default 5000)
  --timeout-ms N        bound on each start-up and each read phase (default 30000)
  --json FILE           also write every sample as JSON
  --no-netns            do not isolate the network (HTTP(S) proxies still point at a closed loopback port)
`;

const { values: opts, tokens } = parseArgs({
  tokens: true,
  options: {
    runs: { type: 'string', default: '20' },
    only: { type: 'string' },
    baseline: { type: 'string', multiple: true, default: [] },
    name: { type: 'string', multiple: true, default: [] },
    server: { type: 'string' },
    sequential: { type: 'string', default: '500' },
    pipelined: { type: 'string', default: '1000' },
    bursts: { type: 'string', default: '5' },
    window: { type: 'string', default: '64' },
    'window-total': { type: 'string', default: '5000' },
    'timeout-ms': { type: 'string', default: '30000' },
    json: { type: 'string' },
    'no-netns': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (opts.only && opts.only !== 'startup' && opts.only !== 'reads') {
  process.stderr.write(`--only takes startup or reads\n${USAGE}`);
  process.exit(2);
}
const int = (name) => {
  const n = Number(opts[name]);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} takes a positive integer\n`);
    process.exit(2);
  }
  return n;
};
const runs = int('runs');
const timeoutMs = int('timeout-ms');
const readOpts = {
  sequential: int('sequential'),
  pipelined: int('pipelined'),
  pipelinedRounds: int('bursts'),
  window: int('window'),
  windowTotal: int('window-total'),
  timeoutMs,
};

// No network but loopback: run the whole benchmark in a fresh network namespace.
if (process.platform === 'linux' && !opts['no-netns'] && process.env.CAS_BENCH_ISOLATED !== '1') {
  const self = [process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  const env = { ...process.env, CAS_BENCH_ISOLATED: '1' };
  for (const flags of [['--net'], ['--net', '--map-root-user']]) {
    if (spawnSync('unshare', [...flags, 'true'], { stdio: 'ignore' }).status !== 0) continue;
    const result = spawnSync('unshare', [...flags, ...self], { stdio: 'inherit', env });
    process.exit(result.status ?? 1);
  }
  process.stderr.write('bench: cannot create a network namespace (unshare --net); rerun with --no-netns to accept proxies pointed at loopback instead\n');
  process.exit(2);
}

/** Baselines in order, each with the `--name` that follows it, if any; names made unique. */
function baselineTargets() {
  const list = [];
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    if (token.name === 'baseline') {
      const command = splitCommand(token.value);
      list.push({ name: shortName(command), command, baseline: true });
    } else if (token.name === 'name' && list.length > 0) {
      list.at(-1).name = token.value;
    }
  }
  const seen = new Map();
  for (const t of list) {
    const n = (seen.get(t.name) ?? 0) + 1;
    seen.set(t.name, n);
    if (n > 1) t.name = `${t.name} #${n}`;
  }
  return list;
}

const bin = fileURLToPath(new URL('../bin/codex-account-server', import.meta.url));
const floorScript = fileURLToPath(new URL('./floor.cjs', import.meta.url));
const shortName = (argv) => argv.map((w, i) => (i < 2 ? w.split('/').pop() : w)).join(' ');
const targets = [
  { name: 'node floor', command: [process.execPath, floorScript], floor: true },
  { name: 'this server', command: opts.server ? splitCommand(opts.server) : [process.execPath, bin], self: true },
  ...baselineTargets(),
];
const baselines = targets.filter((t) => t.baseline);
const self = targets.find((t) => t.self);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (line) => process.stderr.write(`${line}\n`);
const ms = (v) => (Number.isFinite(v) ? v.toFixed(1) : '—');
const lat = (v) => (Number.isFinite(v) ? v.toFixed(3) : '—');
const mib = (kib) => (kib ? (kib / 1024).toFixed(1) : '—');
const rate = (v) => (Number.isFinite(v) && v > 0 ? Math.round(v).toLocaleString('en-US') : '—');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—');
const results = { node: process.version, runs, readOpts, targets: {} };
for (const t of targets) results.targets[t.name] = { command: t.command };

async function startupPhase() {
  // One reused home per server, warmed by a first run so it holds what that
  // server leaves behind (the reference writes state databases on first start).
  for (const t of targets) {
    t.home = homeWithApiKey();
    await measureStartup(t.command, t.home, timeoutMs);
    t.fresh = [];
    t.reused = [];
    t.rss = [];
    t.cpu = [];
    t.read = [];
  }
  log(`start-up: ${runs} runs × ${targets.length} servers × (fresh, reused)`);
  for (let run = 0; run < runs; run++) {
    // Rotate the order each run so no server always follows the same one.
    const order = targets.map((_, i) => targets[(i + run) % targets.length]);
    for (const t of order) {
      const home = freshHome();
      try {
        t.fresh.push((await measureStartup(t.command, home, timeoutMs)).ms);
      } finally {
        removeHome(home);
      }
      const reused = await measureStartup(t.command, t.home, timeoutMs, !t.floor);
      t.reused.push(reused.ms);
      t.rss.push(reused.rssKib);
      t.cpu.push(reused.cpuMs);
      if (reused.readMs !== null) t.read.push(reused.readMs);
    }
    process.stderr.write(`\r  run ${run + 1}/${runs}`);
  }
  process.stderr.write('\n');

  const rows = targets.map((t) => {
    const r = {
      freshMedian: percentile(t.fresh, 0.5),
      freshP90: percentile(t.fresh, 0.9),
      reusedMedian: percentile(t.reused, 0.5),
      reusedP90: percentile(t.reused, 0.9),
      rssKib: percentile(t.rss, 0.5),
      cpuMs: percentile(t.cpu.filter((v) => v !== null), 0.5),
      readMedian: percentile(t.read, 0.5),
    };
    Object.assign(results.targets[t.name], { startup: { ...r, fresh: t.fresh, reused: t.reused, cpu: t.cpu, read: t.read } });
    t.startup = r;
    return [t.name, ms(r.freshMedian), ms(r.freshP90), ms(r.reusedMedian), ms(r.reusedP90), ms(r.readMedian), ms(r.cpuMs), mib(r.rssKib)];
  });
  const floor = targets.find((t) => t.floor).startup;
  const s = self.startup;
  rows.push([
    'this − floor (ms)',
    ms(s.freshMedian - floor.freshMedian),
    ms(s.freshP90 - floor.freshP90),
    ms(s.reusedMedian - floor.reusedMedian),
    ms(s.reusedP90 - floor.reusedP90),
    '',
    ms(s.cpuMs - floor.cpuMs),
    '',
  ]);
  for (const b of baselines) {
    const r = b.startup;
    rows.push([
      `this ÷ ${b.name}`,
      ratio(s.freshMedian, r.freshMedian),
      ratio(s.freshP90, r.freshP90),
      ratio(s.reusedMedian, r.reusedMedian),
      ratio(s.reusedP90, r.reusedP90),
      ratio(s.readMedian, r.readMedian),
      ratio(s.cpuMs, r.cpuMs),
      ratio(s.rssKib, r.rssKib),
    ]);
  }
  console.log(
    `\nStart-up: spawn → initialize reply, ms (n=${runs} each). Reused home: ` +
      `"+ read" = spawn → reply to the account/read sent right after initialize (median); ` +
      `CPU = CPU time of the process tree until the initialize reply (median; steady when the machine is busy); ` +
      `RSS = VmHWM at the initialize reply.\n`,
  );
  console.log(table(['', 'fresh median', 'fresh p90', 'reused median', 'reused p90', '+ read median', 'CPU ms', 'RSS MiB'], rows));
  for (const t of targets) removeHome(t.home);
}

async function readsPhase() {
  const servers = targets.filter((t) => !t.floor);
  const rows = [];
  // One unmeasured pass first, so the bench's own client code is compiled
  // before the first server is measured (otherwise the first row pays for it).
  const warmHome = homeWithApiKey();
  try {
    await measureReads(servers[0].command, warmHome, { ...readOpts, sequential: 50, pipelined: 200, pipelinedRounds: 1, windowTotal: 1000 });
  } catch {
    // the measured pass reports failures
  } finally {
    removeHome(warmHome);
  }
  for (const t of servers) {
    log(`reads: ${t.name}`);
    const home = homeWithApiKey();
    try {
      // A reused home, as in start-up: a first start writes whatever the server keeps there.
      await measureStartup(t.command, home, timeoutMs);
      const r = await measureReads(t.command, home, readOpts);
      t.reads = {
        p50: percentile(r.latencies, 0.5),
        p99: percentile(r.latencies, 0.99),
        pipePerSecond: r.pipe.perSecond,
        pipeFirstPerSecond: r.pipe.firstPerSecond,
        pipeBursts: r.pipe.bursts.map((b) => b.perSecond),
        pipeOk: r.pipe.ok,
        pipeSent: r.pipe.sent,
        windowPerSecond: r.windowed.perSecond,
        windowOk: r.windowed.ok,
        windowSent: r.windowed.sent,
        seqLost: r.seqLost,
        peakRssKib: r.peakRssKib,
      };
      Object.assign(results.targets[t.name], { reads: { ...t.reads, latencies: r.latencies } });
      if (r.seqLost > 0) log(`  ${t.name}: ${r.seqLost} sequential reads unanswered`);
      rows.push([
        t.name,
        lat(t.reads.p50),
        lat(t.reads.p99),
        rate(t.reads.pipePerSecond),
        rate(t.reads.pipeFirstPerSecond),
        `${t.reads.pipeOk}/${t.reads.pipeSent}${r.pipe.timedOut ? ' (timed out)' : ''}`,
        rate(t.reads.windowPerSecond),
        `${t.reads.windowOk}/${r.windowed.sent}${r.windowed.timedOut ? ' (timed out)' : ''}`,
        mib(t.reads.peakRssKib),
      ]);
    } catch (error) {
      log(`  ${t.name} failed: ${error.message}`);
      rows.push([t.name, 'failed', '', '', '', '', '', '', '']);
    } finally {
      removeHome(home);
    }
  }
  const s = self.reads;
  for (const b of baselines) {
    const r = b.reads;
    if (!s || !r) continue;
    // Latency and memory: lower is better (< 1× wins); throughput: higher is better.
    rows.push([
      `this ÷ ${b.name}`,
      ratio(s.p50, r.p50),
      ratio(s.p99, r.p99),
      ratio(s.pipePerSecond, r.pipePerSecond),
      ratio(s.pipeFirstPerSecond, r.pipeFirstPerSecond),
      '',
      ratio(s.windowPerSecond, r.windowPerSecond),
      '',
      ratio(s.peakRssKib, r.peakRssKib),
    ]);
  }
  console.log(
    `\naccount/read with a stored API key: ${readOpts.sequential} sequential; ${readOpts.pipelinedRounds} bursts of ${readOpts.pipelined} pipelined (one write each; median and first burst), ` +
      `${readOpts.windowTotal} with ${readOpts.window} in flight; peak RSS = VmHWM of the process tree at the end\n`,
  );
  console.log(
    table(
      ['', 'seq p50 ms', 'seq p99 ms', `pipelined ${readOpts.pipelined}/s`, '1st burst/s', 'ok', `${readOpts.window} in flight/s`, 'ok', 'peak RSS MiB'],
      rows,
    ),
  );
}

console.log(`Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${new Date().toISOString()}`);
for (const t of targets) console.log(`- ${t.name}: \`${t.command.join(' ')}\``);
try {
  if (opts.only !== 'reads') await startupPhase();
  if (opts.only !== 'startup') await readsPhase();
} catch (error) {
  log(`bench failed: ${error.message}`);
  process.exitCode = 1;
} finally {
  killAll();
  for (const t of targets) if (t.home) removeHome(t.home);
}
if (opts.json) writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`);
