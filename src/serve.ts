import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { accountMachine } from '../machines/account-machine.js';
import { loadConfig, type Config } from './config.js';
import { createActors } from './effects/actors.js';
import { createFetch } from './effects/http.js';
import { createAutoStore, createKeyringStore } from './effects/keyring-store.js';
import { createFileStore, createMemoryStore } from './effects/storage.js';
import { describedStore, type DescribedStore } from './effects/store-info.js';
import { createCredentialStore } from './effects/store.js';
import { credentialTransactionLock, withAuthLock } from './effects/lock.js';
import { createLogger, type Logger } from './log.js';
import type { InspectSink } from './inspect/types.js';
import type { LineSource } from './rpc/ndjson.js';
import { startServer, type RunningServer } from './rpc/server.js';
import { detectPlatform, SERVER_VERSION, type PlatformInfo } from './user-agent.js';

/**
 * The server proper, bundled apart as dist/server.cjs: the statecharts, the
 * effects, zod schemas and `config.toml`. The start-up stage (src/cli.ts,
 * dist/cli.cjs) loads it once `initialize` is answered, or at once for any
 * other first line, and hands it the lines it read.
 */

/**
 * The credential store `cli_auth_credentials_store` asks for. `describe()`
 * says which is in use and why (for the state API).
 */
function createStore(config: Config, log: Logger): DescribedStore {
  const configured = config.credentialsStore;
  switch (configured) {
    case 'ephemeral':
      return describedStore(createMemoryStore(), { configured, backend: 'memory', reason: 'configured', location: 'memory', problem: null });
    case 'file':
      return describedStore(createFileStore({ authPath: config.authPath, log }), {
        configured, backend: 'file', reason: 'configured', location: config.authPath, problem: null,
      });
    case 'keyring':
    case 'auto': {
      const keyring = createKeyringStore({
        codexHome: config.codexHome,
        log,
        timeoutMs: config.keyringTimeoutMs,
        // Beside dist/server.cjs. Only this helper process loads the native module, never the server.
        helperPath: join(__dirname, 'keyring-helper.cjs'),
        // Codex's cross-process lock around every keyring write, as for auth.json (SPEC §5.1, §8.1).
        withWriteLock: (write) => withAuthLock(config.codexHome, write),
      });
      if (configured === 'keyring') return keyring;
      return createAutoStore({ keyring, file: createFileStore({ authPath: config.authPath, log }), authPath: config.authPath, log });
    }
  }
}

function once<T>(fn: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: fn() }).v;
}

/** Where a server reads, writes and takes its environment from. */
interface Streams {
  input: Readable | LineSource;
  output: Writable;
  env: NodeJS.ProcessEnv;
}

/** What the start-up stage already knows: the platform it answered with, an `initialize` it answered. */
interface Known {
  platform?: () => PlatformInfo;
  initialized?: unknown;
}

/** Serves the protocol on `streams` with `config`. */
function startOn({ input, output, env }: Streams, config: Config, log: Logger, known: Known = {}, sink?: InspectSink): RunningServer {
  // `backend.describe()` says which store is in use and why (for `account/state/read`).
  const backend = createStore(config, log);
  const deps = {
    // Each credential transaction (reload, decide, write: a refresh above all) holds Codex's auth.lock
    // across processes (SPEC §8.1), so a rotated refresh token is never redeemed twice. Memory-only
    // credentials are nobody else's business.
    store: createCredentialStore(
      backend,
      config.credentialsStore === 'ephemeral' ? undefined : credentialTransactionLock(config.codexHome),
    ),
    fetch: createFetch(env, log),
    chatgptBaseUrl: config.chatgptBaseUrl,
    revokeTokenUrl: config.revokeTokenUrl,
    refreshTokenUrl: config.refreshTokenUrl,
    issuer: config.issuer,
    loginPorts: config.loginPorts,
    timeoutMs: config.httpTimeoutMs,
    backendDeadlineMs: config.backendDeadlineMs,
    defaultUserAgent: `codex-account-server/${SERVER_VERSION}`,
    log,
    ...(config.credentialsStore === 'ephemeral' ? {} : { watchDir: config.codexHome }),
    // Another process's keyring writes are only seen by looking (one helper call per look).
    ...(config.credentialsStore === 'keyring' || config.credentialsStore === 'auto'
      ? { pollMs: Number(env.CODEX_ACCOUNT_SERVER_KEYRING_POLL_MS) || 5_000 }
      : {}),
  };

  return startServer({
    input,
    output,
    machine: accountMachine,
    effects: (ports) => createActors(deps, ports),
    machineInput: {
      policy: config.policy,
      loginTimeoutMs: config.loginTimeoutMs,
      hostRefreshTimeoutMs: config.hostRefreshTimeoutMs,
      modelProviders: config.modelProviders,
    },
    codexHome: config.codexHome,
    platform: known.platform ?? once<PlatformInfo>(detectPlatform),
    env,
    configWarning: config.warning,
    log,
    credentialStore: backend,
    ...(known.initialized !== undefined ? { initialized: known.initialized } : {}),
    ...(sink ? { inspect: sink.inspect, rpcTrace: sink.rpc } : {}),
  });
}

/** How the start-up stage hands over. */
export interface HandOver {
  /** Every line read so far, then every later one. */
  input: LineSource;
  output: Writable;
  env: NodeJS.ProcessEnv;
  /** As resolved for the `initialize` answer. */
  codexHome: string;
  platform: () => PlatformInfo;
  /** The params of the `initialize` the start-up stage answered, if it did. */
  initialized?: unknown;
  /** Called once input has ended and what was received is answered. */
  onClosed: () => void;
}

/** Serves the lines the start-up stage hands over (src/cli.ts). */
export function serve({ input, output, env, codexHome, platform, initialized, onClosed }: HandOver): void {
  const config = loadConfig(env, codexHome);
  const log = createLogger(config.logLevel);
  if (config.warning) log.warn(`${config.warning.summary} ${config.warning.details}`);
  const server = startOn({ input, output, env }, config, log, { platform, initialized });
  void server.closed.then(onClosed);
}

/**
 * Serves stdio with inspection (`--inspect`, `--inspect-ui`,
 * `CODEX_ACCOUNT_SERVER_INSPECT`) and/or the transition trace
 * (`CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS=<file>`: one JSON line per
 * transition, docs/proof.md): parsing and everything else of both is in
 * dist/inspect.cjs. Exits with 2 on a bad inspection request.
 */
export function serveWithInspection(args: readonly string[]): void {
  const config = loadConfig(process.env);
  const log = createLogger(config.logLevel);
  if (config.warning) log.warn(`${config.warning.summary} ${config.warning.details}`);
  const streams = { input: process.stdin, output: process.stdout, env: process.env };
  const start = (sink?: InspectSink) => {
    const server = startOn(streams, config, log, {}, sink);
    // stdin EOF: exit at once with 0, even with a login pending (SPEC §1).
    void server.closed.then(() => process.exit(0));
  };
  const tracePath = process.env.CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS;
  import('./inspect/index.js').then(
    ({ parseInspectRequest, startInspection, withTransitionTrace }) => {
      let request;
      try {
        request = parseInspectRequest(args, process.env);
      } catch (error) {
        process.stderr.write(`codex-account-server: ${(error as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      const announce = (line: string) => process.stderr.write(`${line}\n`);
      const sink = request ? startInspection(request, log, announce) : undefined;
      start(tracePath ? withTransitionTrace(sink, tracePath, (m) => log.error(m)) : sink);
    },
    (error: Error) => {
      log.error(`inspection could not be loaded (${error.message}); serving without it`);
      start();
    },
  );
}
