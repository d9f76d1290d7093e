import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { Issuer, storedLogin } from '../helpers/issuer.js';
import { RawServer } from '../helpers/raw-server.js';
import { tempHome } from '../helpers/server-process.js';
import { apiKeyFile, CrashReport, LOCK_FILES, seededRandom } from './crash-helpers.js';

/**
 * Issue 10 item 4: the server is killed with SIGKILL at random moments while
 * it writes credentials. `CRASH_ITERATIONS` (default 200) kills per run,
 * `CRASH_SEED` repeats a run's kill timings and operations.
 */
const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 200);
const SEED = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;
/** Files that stay beside auth.json: Codex's empty lock files and the lanes' config.toml. */
const KEPT = [...LOCK_FILES, 'config.toml'];
/** The stand-ins a managed refresh (and the revoke at logout) talks to. */
const SERVER_ENV = (): Record<string, string> => ({
  CODEX_REFRESH_TOKEN_URL_OVERRIDE: issuer.refreshUrl,
  CODEX_REVOKE_TOKEN_URL_OVERRIDE: issuer.revokeUrl,
  CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS: '3000',
});
/** Independent homes killed in parallel (each spawn costs ~130 ms of mostly waiting). */
const LANES = 4;
/** Every this many kills a lane proves that nothing is left over: restart + one login, then logout. */
const CLEANUP_EVERY = 10;

/** What a killed request does to the credentials, and what `auth.json` holds once it is acknowledged. */
interface Operation {
  name: string;
  weight: number;
  /** Sets the lane up before the server starts (a refresh needs a live managed login on disk). */
  prepare?(lane: LaneState): Promise<void>;
  request(key: string): { method: string; params: unknown };
  /** Whether `text` (`null`: no file) is the file as this operation leaves it. */
  isNew(text: string | null, key: string, lane: LaneState): boolean;
}

let issuer: Issuer;
let backend: FakeBackend;
beforeAll(async () => {
  issuer = await Issuer.start();
  backend = await FakeBackend.start();
  backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
});
afterAll(async () => {
  await issuer.stop();
  await backend.stop();
});

const parsed = (text: string | null): { auth_mode?: string; OPENAI_API_KEY?: string | null; tokens?: Record<string, string> } | null => {
  try {
    return text === null ? null : JSON.parse(text);
  } catch {
    return null;
  }
};

const OPERATIONS: Operation[] = [
  {
    name: 'api-key login',
    weight: 3,
    request: (key) => ({ method: 'account/login/start', params: { type: 'apiKey', apiKey: key } }),
    isNew: (text, key) => text === apiKeyFile(key),
  },
  {
    name: 'logout',
    weight: 1,
    request: () => ({ method: 'account/logout', params: {} }),
    isNew: (text) => text === null,
  },
  {
    // A managed ChatGPT refresh (`account/read {refreshToken: true}`): the file is rewritten with
    // the rotated tokens under Codex's `auth.lock`.
    name: 'chatgpt refresh',
    weight: 2,
    async prepare(lane) {
      // Another process (Codex) signs in while no server runs: a live refresh token to redeem.
      const text = JSON.stringify(await storedLogin(issuer), null, 2);
      const path = join(lane.home, 'auth.json');
      writeFileSync(`${path}.codex`, text, { mode: 0o600 });
      renameSync(`${path}.codex`, path);
      lane.file = text;
    },
    request: () => ({ method: 'account/read', params: { refreshToken: true } }),
    isNew: (text, _key, lane) => {
      const before = parsed(lane.file)?.tokens?.refresh_token;
      const after = parsed(text);
      return after?.auth_mode === 'chatgpt' && after.tokens?.refresh_token !== before && issuer.secrets.has(after.tokens?.refresh_token ?? '');
    },
  },
];

/** What `getAuthStatus {includeToken: true}` must show for a file: its API key, or its access token. */
const tokenOf = (text: string | null): string | null => {
  const file = parsed(text);
  if (file === null) return null;
  return file.auth_mode === 'chatgpt' ? (file.tokens?.access_token ?? null) : (file.OPENAI_API_KEY ?? null);
};

interface LaneState {
  home: string;
  /** What auth.json holds now (`null`: absent), as last seen on disk. */
  file: string | null;
  keys: string[];
}

it(`keeps auth.json whole, private and acknowledged through ${ITERATIONS} kills -9 during credential writes`, { timeout: 240_000 }, async () => {
  const random = seededRandom(SEED);
  const report = new CrashReport();
  /** Time from sending a write to its response, per operation: kills are spread over that window. */
  const latencies = new Map<string, number[]>(OPERATIONS.map((o) => [o.name, []]));
  const windowMs = (op: Operation) => {
    const seen = latencies.get(op.name)!;
    if (seen.length < 3) return 40;
    // Up to the median answer time: most kills land before the answer, during the write.
    const sorted = [...seen].sort((a, b) => a - b);
    return Math.max(3, sorted[Math.floor(sorted.length / 2)]!);
  };
  const pick = (): Operation => {
    let r = random() * OPERATIONS.reduce((n, o) => n + o.weight, 0);
    for (const op of OPERATIONS) if ((r -= op.weight) < 0) return op;
    return OPERATIONS[0]!;
  };

  /** Reads auth.json and checks it: `accepts` says whether its content may be there now. */
  const checkDisk = (lane: LaneState, where: string, accepts: (text: string | null) => boolean, extraFiles: number): string | null => {
    const path = join(lane.home, 'auth.json');
    let text: string | null = null;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      /* absent */
    }
    if (!accepts(text)) {
      report.fail('torn or unexpected auth.json', `${where}: auth.json is ${text === null ? 'absent' : JSON.stringify(text.slice(0, 120))}, expected the old file ${lane.file === null ? '(absent)' : JSON.stringify(lane.file.slice(0, 60))} or the operation's`);
    }
    if (text !== null) {
      try {
        JSON.parse(text);
      } catch {
        report.fail('auth.json does not parse', `${where}: ${JSON.stringify(text.slice(0, 80))}`);
      }
      const mode = statSync(path).mode & 0o777;
      if (mode !== 0o600) report.fail('auth.json not 0600', `${where}: mode ${mode.toString(8)}`);
    }
    const beside = readdirSync(lane.home).filter((f) => f !== 'auth.json' && !KEPT.includes(f));
    if (beside.length > extraFiles) report.fail('files accumulate beside auth.json', `${where}: ${beside.join(', ')}`);
    return text;
  };

  /** One kill: restart, check the restarted server reads what is on disk, start a write, kill it at a random moment. */
  const killOnce = async (lane: LaneState, n: number): Promise<void> => {
    const op = pick();
    const key = `sk-crash-${randomBytes(12).toString('hex')}`;
    lane.keys.push(key);
    await op.prepare?.(lane);
    const server = RawServer.start(lane.home, SERVER_ENV());
    try {
      await server.request('init', 'initialize', { clientInfo: { name: 'crash', version: '1' } });
      const status = await server.request('status', 'getAuthStatus', { includeToken: true });
      const expectedToken = tokenOf(lane.file);
      if ((status.result as { authToken?: unknown })?.authToken !== expectedToken) {
        report.fail('restart does not see the file', `kill ${n}: getAuthStatus ${JSON.stringify(status)}, file holds ${expectedToken}`);
      }
      const { method, params } = op.request(key);
      const afterAck = random() < 0.15;
      const delay = random() * windowMs(op);
      const sent = performance.now();
      await server.write(`${JSON.stringify({ id: 'op', method, params })}\n`);
      if (afterAck) {
        await server.until(() => server.responseTo('op') !== undefined, 10_000, `${op.name} response`);
        latencies.get(op.name)!.push(performance.now() - sent);
      } else {
        await new Promise((r) => setTimeout(r, delay));
      }
      server.kill();
      await server.closed;
      // Whatever the server managed to write on stdout before dying counts as acknowledged.
      const acknowledged = server.responseTo('op');
      if (acknowledged && !afterAck) latencies.get(op.name)!.push(delay);
      if (acknowledged && !('result' in acknowledged)) report.fail('write refused', `kill ${n}: ${JSON.stringify(acknowledged)}`);
      const where = `kill ${n} (${op.name}, ${afterAck ? 'after the response' : `${delay.toFixed(1)} ms after sending`})`;
      const text = checkDisk(lane, where, (t) => op.isNew(t, key, lane) || (!acknowledged && t === lane.file), 1);
      const tempLeft = readdirSync(lane.home).some((f) => f !== 'auth.json' && !KEPT.includes(f));
      report.outcome(op.name, `${acknowledged ? 'acknowledged' : text === lane.file ? 'old file' : 'new file, unacknowledged'}${tempLeft ? ' (temp file left)' : ''}`);
      lane.file = text;
    } finally {
      server.kill();
    }
  };

  /** Restart + one login leaves no temp file; logout leaves no file and no copy of any key. */
  const proveClean = async (lane: LaneState, n: number): Promise<void> => {
    const key = `sk-crash-${randomBytes(12).toString('hex')}`;
    lane.keys.push(key);
    const server = RawServer.start(lane.home, SERVER_ENV());
    try {
      await server.request('init', 'initialize', { clientInfo: { name: 'crash', version: '1' } });
      const login = await server.request('login', 'account/login/start', { type: 'apiKey', apiKey: key });
      if (!('result' in login)) report.fail('write refused', `cleanup ${n}: ${JSON.stringify(login)}`);
      lane.file = checkDisk(lane, `after restart + one login (cleanup ${n})`, (t) => t === apiKeyFile(key), 0);
      const logout = await server.request('logout', 'account/logout', {});
      if (!('result' in logout)) report.fail('write refused', `cleanup ${n}: ${JSON.stringify(logout)}`);
      lane.file = checkDisk(lane, `after logout (cleanup ${n})`, (t) => t === null, 0);
      for (const f of readdirSync(lane.home)) {
        if (f === 'config.toml') continue;
        const content = readFileSync(join(lane.home, f), 'utf8');
        if (lane.keys.some((k) => content.includes(k))) report.fail('a key survives logout', `cleanup ${n}: ${f} holds a key`);
        if ([...issuer.secrets].some((t) => t.length > 0 && content.includes(t))) report.fail('a token survives logout', `cleanup ${n}: ${f} holds a token`);
      }
      report.cleanups++;
    } finally {
      server.kill();
      await server.closed;
    }
  };

  const started = performance.now();
  let next = 0;
  const lanes: LaneState[] = Array.from({ length: LANES }, () => {
    const home = tempHome();
    writeFileSync(join(home, 'config.toml'), `chatgpt_base_url = "${backend.baseUrl}"\n`);
    return { home, file: null, keys: [] };
  });
  await Promise.all(
    lanes.map(async (lane) => {
      for (let done = 0; next < ITERATIONS; done++) {
        const n = next++;
        await killOnce(lane, n);
        if ((done + 1) % CLEANUP_EVERY === 0) await proveClean(lane, n);
      }
      await proveClean(lane, -1);
    }),
  );
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`crash: seed ${SEED} (CRASH_SEED=${SEED} to repeat), ${ITERATIONS} kills in ${LANES} parallel homes, ${report.cleanups} clean-up proofs, ${seconds} s; kill windows ${OPERATIONS.map((o) => `${o.name} ${windowMs(o).toFixed(1)} ms`).join(', ')}\n  ${report.summary()}`);
  if (report.failed) expect.fail(`seed ${SEED}: ${report.failures()}`);
  expect(report.kills).toBe(ITERATIONS);
});
