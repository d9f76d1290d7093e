import { accountMachine } from '../machines/account-machine.js';
import { loadConfig, type Config } from './config.js';
import { createActors } from './effects/actors.js';
import { createFetch } from './effects/http.js';
import { createFileStore, createMemoryStore, createUnavailableKeyringStore } from './effects/storage.js';
import { createCredentialStore, type StoreBackend } from './effects/store.js';
import { createLogger, type Logger } from './log.js';
import { describeThrown } from './rpc/ndjson.js';
import { startServer } from './rpc/server.js';
import { detectPlatform, SERVER_VERSION, type PlatformInfo } from './user-agent.js';

const USAGE = `Usage: codex-account-server [app-server]

Speaks the account part of the Codex app-server JSON-RPC protocol as
newline-delimited JSON on stdin/stdout. Logs go to stderr.

Environment: CODEX_HOME, CODEX_APP_SERVER_LOGIN_ISSUER, CODEX_REFRESH_TOKEN_URL_OVERRIDE,
CODEX_REVOKE_TOKEN_URL_OVERRIDE, SSL_CERT_FILE, CODEX_ACCOUNT_SERVER_LOG (error|warn|info|debug),
CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS.
`;

function createStoreBackend(config: Config, log: Logger): StoreBackend {
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

export function main(argv: readonly string[]): void {
  const args = argv[0] === 'app-server' ? argv.slice(1) : argv;
  // Used by the build to fill the V8 code cache: load everything, serve nothing.
  if (args.includes('--warm-up')) return;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (args.includes('--version')) {
    process.stdout.write(`codex-account-server (protocol of codex app-server ${SERVER_VERSION})\n`);
    return;
  }

  const config = loadConfig(process.env);
  const log = createLogger(config.logLevel);
  if (config.warning) log.warn(`${config.warning.summary} ${config.warning.details}`);

  const deps = {
    store: createCredentialStore(createStoreBackend(config, log)),
    fetch: createFetch(process.env, log),
    chatgptBaseUrl: config.chatgptBaseUrl,
    revokeTokenUrl: config.revokeTokenUrl,
    timeoutMs: config.httpTimeoutMs,
    defaultUserAgent: `codex-account-server/${SERVER_VERSION}`,
    log,
  };

  const server = startServer({
    input: process.stdin,
    output: process.stdout,
    machine: accountMachine,
    effects: (ports) => createActors(deps, ports),
    machineInput: { policy: config.policy },
    codexHome: config.codexHome,
    platform: once<PlatformInfo>(detectPlatform),
    env: process.env,
    configWarning: config.warning,
    log,
  });
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

main(process.argv.slice(2));
