import { accountMachine } from '../machines/account-machine.js';
import { loadConfig, type Config } from './config.js';
import { createActors } from './effects/actors.js';
import { createFetch } from './effects/http.js';
import { createFileStore, createMemoryStore, createUnavailableKeyringStore, type CredentialStore } from './effects/storage.js';
import { createLogger, type Logger } from './log.js';
import type { InspectSink } from './inspect/types.js';
import { startServer } from './rpc/server.js';
import { detectPlatform, SERVER_VERSION, type PlatformInfo } from './user-agent.js';

const USAGE = `Usage: codex-account-server [app-server] [--inspect[=ws://RELAY]] [--inspect-ui[=PORT]]

Speaks the account part of the Codex app-server JSON-RPC protocol as
newline-delimited JSON on stdin/stdout. Logs go to stderr.

  --inspect            watch the statechart in the Stately inspector (a page on 127.0.0.1;
                       the URL with its token is printed on stderr); =ws://… streams to a relay
  --inspect-ui[=PORT]  a self-contained live state page on 127.0.0.1 (URL on stderr)

Environment: CODEX_HOME, CODEX_APP_SERVER_LOGIN_ISSUER, CODEX_REFRESH_TOKEN_URL_OVERRIDE,
CODEX_REVOKE_TOKEN_URL_OVERRIDE, SSL_CERT_FILE, CODEX_ACCOUNT_SERVER_LOG (error|warn|info|debug),
CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS, CODEX_ACCOUNT_SERVER_INSPECT (1, or a ws:// relay).
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
  // A cheap look only: parsing and everything else of inspection is in dist/inspect.cjs.
  if (!args.some((a) => a.startsWith('--inspect')) && !process.env.CODEX_ACCOUNT_SERVER_INSPECT) {
    serve(config, log);
    return;
  }
  import('./inspect/index.js').then(
    ({ parseInspectRequest, startInspection }) => {
      let request;
      try {
        request = parseInspectRequest(args, process.env);
      } catch (error) {
        process.stderr.write(`codex-account-server: ${(error as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      const announce = (line: string) => process.stderr.write(`${line}\n`);
      serve(config, log, request ? startInspection(request, log, announce) : undefined);
    },
    (error: Error) => {
      log.error(`inspection could not be loaded (${error.message}); serving without it`);
      serve(config, log);
    },
  );
}

function serve(config: Config, log: Logger, sink?: InspectSink): void {
  const machine = accountMachine.provide({
    actors: createActors({
      store: createStore(config, log),
      fetch: createFetch(process.env, log),
      chatgptBaseUrl: config.chatgptBaseUrl,
      revokeTokenUrl: config.revokeTokenUrl,
      timeoutMs: config.httpTimeoutMs,
      defaultUserAgent: `codex-account-server/${SERVER_VERSION}`,
      log,
    }),
  });

  const server = startServer({
    input: process.stdin,
    output: process.stdout,
    machine,
    machineInput: { policy: config.policy },
    codexHome: config.codexHome,
    platform: once<PlatformInfo>(detectPlatform),
    env: process.env,
    configWarning: config.warning,
    log,
    ...(sink ? { inspect: sink.inspect, rpcTrace: sink.rpc } : {}),
  });
  // stdin EOF: exit at once with 0, even with a login pending (SPEC §1).
  void server.closed.then(() => process.exit(0));
  // The host went away mid-write (EPIPE): nobody is left to answer.
  process.stdout.on('error', () => process.exit(0));
  // A stray rejection is a bug to log, not a reason to drop the host's session.
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection:', reason));
}

main(process.argv.slice(2));
