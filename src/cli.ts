import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
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
import { describeThrown } from './rpc/ndjson.js';
import type { InspectSink } from './inspect/types.js';
import { startServer, type RunningServer } from './rpc/server.js';
import { detectPlatform, SERVER_VERSION, type PlatformInfo } from './user-agent.js';

const USAGE = `Usage: codex-account-server [app-server] [--inspect[=ws://RELAY]] [--inspect-ui[=PORT]]
       codex-account-server generate-json-schema --out DIR
       codex-account-server generate-ts --out DIR

Speaks the account part of the Codex app-server JSON-RPC protocol as
newline-delimited JSON on stdin/stdout. Logs go to stderr.

  --inspect            watch the statechart in the Stately inspector (a page on 127.0.0.1;
                       the URL with its token is printed on stderr); =ws://… streams to a relay
  --inspect-ui[=PORT]  a self-contained live state page on 127.0.0.1 (URL on stderr)
  generate-json-schema, generate-ts
                       export every method's params and result, the notifications, the
                       server→client request and the machines' states (docs/state-api.md)

Environment: CODEX_HOME, CODEX_APP_SERVER_LOGIN_ISSUER, CODEX_REFRESH_TOKEN_URL_OVERRIDE,
CODEX_REVOKE_TOKEN_URL_OVERRIDE, SSL_CERT_FILE, CODEX_ACCOUNT_SERVER_LOG (error|warn|info|debug),
CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS, CODEX_ACCOUNT_SERVER_BACKEND_DEADLINE_MS, CODEX_ACCOUNT_SERVER_KEYRING_TIMEOUT_MS,
CODEX_ACCOUNT_SERVER_LOGIN_PORTS, CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS, CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS,
CODEX_ACCOUNT_SERVER_INSPECT (1, or a ws:// relay), CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS (a file).
`;

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
        // Beside dist/cli.cjs. Only this helper process loads the native module, never the server.
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

export function main(argv: readonly string[]): void {
  const args = argv[0] === 'app-server' ? argv.slice(1) : argv;
  // Used by the build to fill the V8 code cache: load everything, serve nothing (it then calls `warmUp`).
  if (args.includes('--warm-up')) return;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (args[0] === 'generate-json-schema' || args[0] === 'generate-ts') {
    // dist/schema.cjs: schemas as JSON and TypeScript are never on the start-up path.
    const write = (stream: NodeJS.WriteStream) => (text: string) => stream.write(text);
    import('./schema/index.js').then(
      ({ runSchemaCommand }) => (process.exitCode = runSchemaCommand(args, write(process.stdout), write(process.stderr))),
      (error: Error) => {
        process.stderr.write(`codex-account-server: the schema export could not be loaded (${error.message})\n`);
        process.exitCode = 1;
      },
    );
    return;
  }
  if (args.includes('--version')) {
    process.stdout.write(`codex-account-server (protocol of codex app-server ${SERVER_VERSION})\n`);
    return;
  }

  const config = loadConfig(process.env);
  const log = createLogger(config.logLevel);
  if (config.warning) log.warn(`${config.warning.summary} ${config.warning.details}`);
  // A cheap look only: parsing and everything else of inspection is in dist/inspect.cjs.
  // `CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS=<file>`: one JSON line per transition (docs/proof.md), also from that bundle.
  const tracePath = process.env.CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS;
  if (!args.some((a) => a.startsWith('--inspect')) && !process.env.CODEX_ACCOUNT_SERVER_INSPECT && !tracePath) {
    serve(config, log);
    return;
  }
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
      serve(config, log, tracePath ? withTransitionTrace(sink, tracePath, (m) => log.error(m)) : sink);
    },
    (error: Error) => {
      log.error(`inspection could not be loaded (${error.message}); serving without it`);
      serve(config, log);
    },
  );
}

/** Where a server reads, writes and takes its environment from. */
interface Streams {
  input: Readable;
  output: Writable;
  env: NodeJS.ProcessEnv;
}

function serve(config: Config, log: Logger, sink?: InspectSink): void {
  const server = startOn({ input: process.stdin, output: process.stdout, env: process.env }, config, log, sink);
  // stdin EOF: exit at once with 0, even with a login pending (SPEC §1).
  void server.closed.then(() => process.exit(0));
  // The host went away mid-write (EPIPE): nobody is left to answer.
  process.stdout.on('error', () => process.exit(0));
  // A stray rejection is a bug to log, not a reason to drop the host's session.
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection:', describeThrown(reason)));
  // Last line of defence (issue 5): every layer catches its own failures; should a bug slip
  // through, the host keeps its server and stderr says what happened.
  process.on('uncaughtException', (error) => log.error('uncaught exception (a bug):', describeThrown(error)));
}

/** Serves the protocol on `streams` with `config`: stdio for `main`, memory streams for the build's warm-up. */
function startOn({ input, output, env }: Streams, config: Config, log: Logger, sink?: InspectSink): RunningServer {
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
    platform: once<PlatformInfo>(detectPlatform),
    env,
    configWarning: config.warning,
    log,
    credentialStore: backend,
    ...(sink ? { inspect: sink.inspect, rpcTrace: sink.rpc } : {}),
  });
}

/**
 * Drives one `initialize` and one `account/read` through a server on memory
 * streams with `codexHome`, then closes it. The build calls this before taking
 * the V8 code cache, so the cache holds the functions start-up runs, compiled.
 */
export async function warmUp(codexHome: string): Promise<void> {
  const input = new PassThrough();
  const output = new PassThrough();
  const env = { CODEX_HOME: codexHome, CODEX_ACCOUNT_SERVER_LOG: 'error', TERM: 'xterm' };
  const config = loadConfig(env);
  const server = startOn({ input, output, env }, config, createLogger('error'));
  const answered = new Promise<void>((resolve) => {
    let text = '';
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      text += chunk;
      if (/"id":2[,}]/.test(text)) resolve();
    });
  });
  input.write(
    `${JSON.stringify({ id: 1, method: 'initialize', params: { clientInfo: { name: 'warm-up', title: null, version: '0' }, capabilities: { experimentalApi: true } } })}\n` +
      `${JSON.stringify({ id: 2, method: 'account/read', params: { refreshToken: false } })}\n`,
  );
  await answered;
  input.end();
  await server.closed;
}

main(process.argv.slice(2));
