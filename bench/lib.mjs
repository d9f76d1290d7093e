// Pieces of the side-by-side benchmark (bench/run.mjs): a stdio JSON-RPC client
// for any app-server-like command, start-up and read measurements, statistics,
// peak RSS from /proc, and the tables. Plain Node, no dependencies.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** The `initialize` request of SPEC §2, as a host sends it. */
export const INITIALIZE_PARAMS = {
  clientInfo: { name: 'bench', title: null, version: '1.0.0' },
  capabilities: { experimentalApi: true, requestAttestation: false },
};

/** The key stored in every reused home: `account/read` then answers `{account: {type: "apiKey"}}`. */
export const BENCH_API_KEY = 'sk-bench-not-a-real-key-0000000000';

/** An `account/read` answer counts as ok when it reports the stored API-key login. */
export const isApiKeyAccount = (message) => message.result?.account?.type === 'apiKey';

// Any HTTP(S) a child attempts goes to a closed loopback port (second line of
// defence; run.mjs also isolates the whole run in a network namespace).
const DEAD_PROXY = 'http://127.0.0.1:9';

/**
 * A minimal environment, so the servers see the same world and nothing from
 * the caller's shell (NODE_OPTIONS, OPENAI_API_KEY, RUST_LOG…) skews a figure.
 */
export function childEnv(codexHome) {
  const keep = ['PATH', 'HOME', 'LANG', 'TERM', 'TMPDIR'];
  const env = Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) env[k] = DEAD_PROXY;
  env.NO_PROXY = '';
  env.no_proxy = '';
  env.CODEX_HOME = codexHome;
  return env;
}

/** A new empty CODEX_HOME. */
export function freshHome() {
  return mkdtempSync(join(tmpdir(), 'cas-bench-'));
}

/** A CODEX_HOME with an API-key login stored as Codex writes it. */
export function homeWithApiKey() {
  const home = freshHome();
  writeFileSync(join(home, 'auth.json'), JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: BENCH_API_KEY }, null, 2), {
    mode: 0o600,
  });
  return home;
}

export function removeHome(home) {
  rmSync(home, { recursive: true, force: true });
}

const READ_PARAMS = { refreshToken: false };

/** Every live child, so an interrupted run still kills them all. */
const live = new Set();

/** Kills every child process group still running (on exit, Ctrl-C, or a fatal error). */
export function killAll() {
  for (const child of live) killGroup(child);
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL'); // the group: a wrapper's native child goes too
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Splits a command line on blanks, honouring simple '…' and "…" quoting. */
export function splitCommand(line) {
  const words = [];
  let word = null;
  let quote = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (quote) throw new Error(`unbalanced quote in: ${line}`);
  if (word !== null) words.push(word);
  return words;
}

/**
 * One server process spoken to over stdio: newline-delimited JSON, responses
 * matched to requests by id, notifications counted and otherwise ignored.
 */
export class Peer {
  /** performance.now() just before spawn. */
  spawnedAt;
  child;
  stderrTail = '';
  notifications = 0;
  /** performance.now() of the latest response. */
  lastAnswerAt = 0;
  #buffer = '';
  #nextId = 1;
  #pending = new Map();
  #exited;

  constructor(command, codexHome) {
    this.spawnedAt = performance.now();
    this.child = spawn(command[0], command.slice(1), {
      env: childEnv(codexHome),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, killed as a whole
    });
    live.add(this.child);
    this.#exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.child);
        for (const { reject } of this.#pending.values()) reject(new Error(`exited (${signal ?? code}) with requests pending`));
        this.#pending.clear();
        resolve({ code, signal });
      });
    });
    this.child.on('error', (error) => {
      for (const { reject } of this.#pending.values()) reject(error);
      this.#pending.clear();
    });
    this.child.stdin.on('error', () => {}); // EPIPE when the server exits first: reported via `exit`
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => this.#onData(chunk));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
    });
  }

  get pid() {
    return this.child.pid;
  }

  #onData(chunk) {
    const now = performance.now();
    this.#buffer += chunk;
    let start = 0;
    for (let nl = this.#buffer.indexOf('\n'); nl !== -1; nl = this.#buffer.indexOf('\n', start)) {
      const line = this.#buffer.slice(start, nl);
      start = nl + 1;
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        continue; // not ours to judge here; the test suite checks framing
      }
      if (message === null || typeof message !== 'object') continue;
      if (!('id' in message) || 'method' in message) {
        this.notifications++;
        continue;
      }
      const waiter = this.#pending.get(message.id);
      if (!waiter) continue;
      this.#pending.delete(message.id);
      this.lastAnswerAt = now;
      waiter.resolve({ message, at: now });
    }
    this.#buffer = this.#buffer.slice(start);
  }

  /** Queues one request line (written with the next `flush`); resolves with `{message, at}`. */
  #enqueue(method, params, lines) {
    const id = this.#nextId++;
    lines.push(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  /** Sends one request and resolves with its response and the time it arrived. */
  request(method, params) {
    return this.requestMany(method, params, 1)[0];
  }

  /** Sends `count` requests in one write (pipelined); one promise per request. */
  requestMany(method, params, count) {
    const lines = [];
    const replies = [];
    for (let i = 0; i < count; i++) replies.push(this.#enqueue(method, params, lines));
    this.child.stdin.write(`${lines.join('\n')}\n`);
    return replies;
  }

  /** Gives up on every request not answered yet: each rejects (counted as lost by the caller). */
  abandonPending() {
    for (const { reject } of this.#pending.values()) reject(new Error('abandoned: no answer'));
    this.#pending.clear();
  }

  /** Requests sent and not answered yet. */
  get pendingCount() {
    return this.#pending.size;
  }

  /** Peak resident set of the process and its descendants, in KiB (Linux), else current RSS via `ps`. */
  peakRssKib() {
    return peakRssKib(this.pid);
  }

  /** Closes stdin and waits for exit; kills the group after `graceMs`. */
  async close(graceMs = 2000) {
    this.child.stdin.end();
    let timer;
    const exited = await Promise.race([
      this.#exited.then(() => true),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    killGroup(this.child); // stragglers in the group (helpers a server left behind)
    if (!exited) await this.#exited;
    return exited;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects after `ms` with `what` in the message; the timer never keeps the process alive. */
export function deadline(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

function descendants(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try {
      tasks = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      // gone, or no /proc
    }
    for (const child of tasks) out.push(Number(child));
  }
  return out;
}

function statusField(pid, field) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * CPU time (ms) the process tree has used so far, from /proc/<pid>/task/<tid>/schedstat
 * (nanoseconds on CPU, every thread). Unlike wall time, it barely moves when
 * other work shares the machine. null where /proc is missing.
 */
export function cpuMs(pid) {
  let ns = 0;
  try {
    for (const p of descendants(pid)) {
      let tids = [];
      try {
        tids = readdirSync(`/proc/${p}/task`);
      } catch {
        continue;
      }
      for (const tid of tids) {
        try {
          ns += Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        } catch {
          // thread ended meanwhile
        }
      }
    }
  } catch {
    return null;
  }
  return ns > 0 ? ns / 1e6 : null;
}

/** VmHWM summed over the process tree (a launcher plus the server it runs). */
export function peakRssKib(pid) {
  try {
    return descendants(pid).reduce((sum, p) => {
      try {
        return sum + statusField(p, 'VmHWM');
      } catch {
        return sum;
      }
    }, 0);
  } catch {
    return null;
  }
}

/**
 * spawn → `initialize` reply in ms, with the peak RSS and CPU time used at that
 * moment; then, with `thenRead`, spawn → the reply to an `account/read` sent as
 * soon as `initialize` was answered (what a host does next: work a server puts
 * off until after `initialize` shows up here).
 */
export async function measureStartup(command, codexHome, timeoutMs, thenRead = false) {
  const peer = new Peer(command, codexHome);
  try {
    const { message, at } = await deadline(peer.request('initialize', INITIALIZE_PARAMS), timeoutMs, 'initialize');
    if (!message.result) throw new Error(`initialize failed: ${JSON.stringify(message.error)}`);
    const result = { ms: at - peer.spawnedAt, rssKib: peer.peakRssKib(), cpuMs: cpuMs(peer.pid), readMs: null };
    if (thenRead) {
      const read = await deadline(peer.request('account/read', READ_PARAMS), timeoutMs, 'account/read');
      if (!read.message.result) throw new Error(`account/read failed: ${JSON.stringify(read.message.error)}`);
      result.readMs = read.at - peer.spawnedAt;
    }
    return result;
  } catch (error) {
    throw new Error(`${error.message}${peer.stderrTail ? `\n  stderr: ${peer.stderrTail.trim().split('\n').slice(-3).join('\n  ')}` : ''}`);
  } finally {
    await peer.close();
  }
}


/**
 * The read figures against one process with an API-key login: sequential
 * latency, `pipelined` reads in one write, then `windowTotal` reads with
 * `window` in flight. Bounded by `timeoutMs` per phase.
 */
export async function measureReads(command, codexHome, opts) {
  const { sequential, pipelined, pipelinedRounds, window, windowTotal, timeoutMs, idleMs = 2000 } = opts;
  const peer = new Peer(command, codexHome);
  try {
    const init = await deadline(peer.request('initialize', INITIALIZE_PARAMS), timeoutMs, 'initialize');
    if (!init.message.result) throw new Error(`initialize failed: ${JSON.stringify(init.message.error)}`);
    const first = await deadline(peer.request('account/read', READ_PARAMS), timeoutMs, 'account/read');
    if (!isApiKeyAccount(first.message)) {
      throw new Error(`account/read does not report the stored API key: ${JSON.stringify(first.message).slice(0, 300)}`);
    }

    // Sequential: one request at a time.
    const latencies = [];
    let seqLost = 0;
    const seqEnd = performance.now() + timeoutMs;
    for (let i = 0; i < sequential && performance.now() < seqEnd; i++) {
      const t0 = performance.now();
      try {
        const { at } = await deadline(peer.request('account/read', READ_PARAMS), idleMs, 'account/read');
        latencies.push(at - t0);
      } catch {
        seqLost++;
      }
    }

    // Pipelined: all in one write; answers/s over the time to the last answer.
    // A server may drop requests (the reference does when its queue is full):
    // a burst ends when all are answered or none came for `idleMs`. Several
    // bursts, a pause between them: one burst of 1,000 takes 10-40 ms, so a
    // single one mostly measures what else the machine did in those ms.
    const bursts = [];
    for (let round = 0; round < (pipelinedRounds ?? 1); round++) {
      if (round > 0) await sleep(50);
      const t0 = performance.now();
      const replies = peer.requestMany('account/read', READ_PARAMS, pipelined);
      let answered = 0;
      let ok = 0;
      for (const reply of replies) {
        reply.then(
          ({ message }) => {
            answered++;
            if (isApiKeyAccount(message)) ok++;
          },
          () => {},
        );
      }
      const pipeEnd = t0 + timeoutMs;
      while (peer.pendingCount > 0 && performance.now() < pipeEnd && performance.now() - Math.max(peer.lastAnswerAt, t0) < idleMs) {
        await sleep(5);
      }
      await sleep(0); // let the last answers' callbacks run
      bursts.push({
        answered,
        ok,
        perSecond: answered / ((Math.max(peer.lastAnswerAt, t0) - t0) / 1000),
        timedOut: performance.now() >= pipeEnd,
      });
      if (performance.now() >= pipeEnd) break;
    }
    const pipe = {
      bursts,
      answered: bursts.reduce((n, b) => n + b.answered, 0),
      ok: bursts.reduce((n, b) => n + b.ok, 0),
      sent: bursts.length * pipelined,
      perSecond: percentile(bursts.map((b) => b.perSecond), 0.5),
      firstPerSecond: bursts[0].perSecond,
      timedOut: bursts.some((b) => b.timedOut),
    };

    // Windowed: keep `window` requests in flight until `windowTotal` are sent;
    // a request unanswered for `idleMs` counts as lost and frees its slot.
    let sent = 0;
    let windowAnswered = 0;
    let windowOk = 0;
    const w0 = performance.now();
    const windowEnd = w0 + timeoutMs;
    let lastAt = w0;
    // One watchdog rather than a timer per request (the client must not be what is measured):
    // when nothing was answered for `idleMs`, what is pending counts as lost and frees its slots.
    const watchdog = setInterval(() => {
      if (performance.now() - Math.max(lastAt, peer.lastAnswerAt) >= idleMs) peer.abandonPending();
    }, Math.min(idleMs, 250));
    const lane = async () => {
      while (sent < windowTotal && performance.now() < windowEnd) {
        sent++;
        try {
          const { message, at } = await peer.request('account/read', READ_PARAMS);
          windowAnswered++;
          lastAt = Math.max(lastAt, at);
          if (isApiKeyAccount(message)) windowOk++;
        } catch {
          // lost: counted as sent and not answered
        }
      }
    };
    await Promise.all(Array.from({ length: window }, lane)).finally(() => clearInterval(watchdog));
    const windowed = {
      sent,
      answered: windowAnswered,
      ok: windowOk,
      perSecond: windowAnswered / ((lastAt - w0) / 1000),
      timedOut: performance.now() >= windowEnd,
    };

    return { latencies, seqLost, pipe, windowed, peakRssKib: peer.peakRssKib() };
  } finally {
    await peer.close();
  }
}

/** Nearest-rank percentile (q in 0..1) of unsorted samples. */
export function percentile(samples, q) {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** A markdown table: header row, then rows of cells (strings). */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) => `| ${cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `-${'-'.repeat(w)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
