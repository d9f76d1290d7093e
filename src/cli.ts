import { PassThrough, type Readable, type Writable } from 'node:stream';
import { accountMachine } from '../machines/account-machine.js';
import { loadConfig, type Config } from './config.js';
import { createActors } from './effects/actors.js';
import { createFetch } from './effects/http.js';
import { createFileStore, createMemoryStore, createUnavailableKeyringStore, type CredentialStore } from './effects/storage.js';
import { createLogger, type Logger } from './log.js';
import { startServer, type RunningServer } from './rpc/server.js';
import { detectPlatform, SERVER_VERSION, type PlatformInfo } from './user-agent.js';

const USAGE = `Usage: codex-account-server [app-server]

Speaks the account part of the Codex app-server JSON-RPC protocol as
newline-delimited JSON on stdin/stdout. Logs go to stderr.

Environment: CODEX_HOME, CODEX_APP_SERVER_LOGIN_ISSUER, CODEX_REFRESH_TOKEN_URL_OVERRIDE,
CODEX_REVOKE_TOKEN_URL_OVERRIDE, SSL_CERT_FILE, CODEX_ACCOUNT_SERVER_LOG (error|warn|info|debug),
CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS.
`;

function createStore(config: Config, log: Logger): CredentialStore {
  switch (config.credentialsStore) {
    case 'ephemeral':
      return createMemoryStore();
    case 'keyring':
      return createUnavailableKeyringStore();
    default:
      // `auto` falls back to the file, as Codex does where no keyring is available.
      return createFileStore({ authPath: config.authPath, log });
  }
}

function once<T>(fn: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: fn() }).v;
}

/** A running server and the logger it writes to. */
export interface Served {
  server: RunningServer;
  log: Logger;
}

/**
 * Serves the protocol on the given streams with the configuration `env`
 * describes: what `main` runs on stdio, and the build's warm-up on memory streams.
 */
export function serve(input: Readable, output: Writable, env: NodeJS.ProcessEnv): Served {
  const config = loadConfig(env);
  const log = createLogger(config.logLevel);
  if (config.warning) log.warn(`${config.warning.summary} ${config.warning.details}`);

  const machine = accountMachine.provide({
    actors: createActors({
      store: createStore(config, log),
      fetch: createFetch(env, log),
      chatgptBaseUrl: config.chatgptBaseUrl,
      revokeTokenUrl: config.revokeTokenUrl,
      timeoutMs: config.httpTimeoutMs,
      defaultUserAgent: `codex-account-server/${SERVER_VERSION}`,
      log,
    }),
  });

  const server = startServer({
    input,
    output,
    machine,
    machineInput: { policy: config.policy },
    codexHome: config.codexHome,
    platform: once<PlatformInfo>(detectPlatform),
    env,
    configWarning: config.warning,
    log,
  });
  return { server, log };
}

/**
 * Drives one `initialize` and one `account/read` through a server on memory
 * streams with `codexHome`, then closes it. The build calls this before taking
 * the V8 code cache, so the cache holds the functions start-up runs, compiled.
 */
export async function warmUp(codexHome: string): Promise<void> {
  const input = new PassThrough();
  const output = new PassThrough();
  const { server } = serve(input, output, { CODEX_HOME: codexHome, CODEX_ACCOUNT_SERVER_LOG: 'error', TERM: 'xterm' });
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

export function main(argv: readonly string[]): void {
  const args = argv[0] === 'app-server' ? argv.slice(1) : argv;
  // Used by the build to fill the V8 code cache: load everything, serve nothing (it then calls `warmUp`).
  if (args.includes('--warm-up')) return;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (args.includes('--version')) {
    process.stdout.write(`codex-account-server (protocol of codex app-server ${SERVER_VERSION})\n`);
    return;
  }

  const { server, log } = serve(process.stdin, process.stdout, process.env);
  // stdin EOF: exit at once with 0, even with a login pending (SPEC §1).
  void server.closed.then(() => process.exit(0));
  // The host went away mid-write (EPIPE): nobody is left to answer.
  process.stdout.on('error', () => process.exit(0));
  // A stray rejection is a bug to log, not a reason to drop the host's session.
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection:', reason));
}

main(process.argv.slice(2));
