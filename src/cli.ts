import { PassThrough, type Readable, type Writable } from 'node:stream';
import { resolveCodexHome } from './codex-home.js';
import { createLogger, parseLogLevel, type Logger } from './log.js';
import { initializeResult, plainInitializeRequest } from './rpc/initialize.js';
import { describeThrown, LineWriter, readLines, type LineReaderHandlers } from './rpc/ndjson.js';
import type * as ServerStage from './serve.js';
import { detectPlatform, SERVER_VERSION, type PlatformInfo } from './user-agent.js';

/*
 * The start-up stage, dist/cli.cjs: small on purpose. It reads stdin at once
 * and answers a plain first `initialize` itself (the answer depends on neither
 * the credentials nor config.toml), then loads the server proper
 * (src/serve.ts, dist/server.cjs: statecharts, effects, zod schemas) and hands
 * it every other line in order. Any other first line loads the server at once
 * and goes to it, so every error is worded by the one place that words it.
 */

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

/** Loads dist/server.cjs (bin/loader.cjs, with its own code cache); the same module on every call. */
export type LoadServer = () => typeof ServerStage;

export function main(argv: readonly string[], loadServer: LoadServer): void {
  const args = argv[0] === 'app-server' ? argv.slice(1) : argv;
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

  const log = createLogger(parseLogLevel(process.env.CODEX_ACCOUNT_SERVER_LOG));
  // The host went away mid-write (EPIPE): nobody is left to answer.
  process.stdout.on('error', () => process.exit(0));
  // A stray rejection is a bug to log, not a reason to drop the host's session.
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection:', describeThrown(reason)));
  // Last line of defence (issue 5): every layer catches its own failures; should a bug slip
  // through, the host keeps its server and stderr says what happened.
  process.on('uncaughtException', (error) => log.error('uncaught exception (a bug):', describeThrown(error)));
  // A cheap look only: inspection and the transition trace (`CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS`,
  // docs/proof.md) want to see `initialize` too, so the server reads stdin itself.
  const traced = Boolean(process.env.CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS);
  if (args.some((a) => a.startsWith('--inspect')) || process.env.CODEX_ACCOUNT_SERVER_INSPECT || traced) {
    loadServer().serveWithInspection(args);
    return;
  }
  startStaged({
    input: process.stdin,
    output: process.stdout,
    env: process.env,
    log,
    loadServer,
    // stdin EOF: exit at once with 0, even with a login pending (SPEC §1); 1 if the server could not start.
    onClosed: () => process.exit(),
  });
}

interface StagedOptions {
  input: Readable;
  output: Writable;
  env: NodeJS.ProcessEnv;
  log: Logger;
  loadServer: LoadServer;
  /** Input has ended and everything received is answered. */
  onClosed: () => void;
}

/**
 * Reads lines from `input` for good; answers the first line itself when it is
 * a plain `initialize` (src/rpc/initialize.ts), then loads the server on the
 * next turn of the event loop (at once for any other first line, or when no
 * line is there yet). Lines that arrive before the server exists wait in order
 * and reach it before any later line, so each is answered once, in the order
 * the server would have answered them had it been there from the start.
 */
function startStaged({ input, output, env, log, loadServer, onClosed }: StagedOptions): void {
  const codexHome = resolveCodexHome(env);
  let platform: PlatformInfo | undefined;
  const platformOnce = () => (platform ??= detectPlatform());
  let first = true;
  let initialized: unknown;
  let server: LineReaderHandlers | null = null;
  const waiting: string[] = [];
  let ended = false;
  let closed = false;

  const close = () => {
    if (closed) return;
    closed = true;
    onClosed();
  };
  const handOver = (handlers: LineReaderHandlers) => {
    server = handlers;
    for (const line of waiting.splice(0)) {
      try {
        handlers.line(line);
      } catch (error) {
        log.error(() => `failed to handle an input line: ${describeThrown(error)}`);
      }
    }
    if (ended) handlers.end();
  };
  const attach = () => {
    if (server || closed) return;
    try {
      loadServer().serve({ input: handOver, output, env, codexHome, platform: platformOnce, initialized, onClosed: close });
    } catch (error) {
      // Nothing could answer what waits: say why and exit 1 rather than leave the host hanging.
      log.error(() => `the server (dist/server.cjs) could not start: ${describeThrown(error)}`);
      process.exitCode = 1;
      close();
    }
  };

  readLines(
    input,
    {
      line: (line) => {
        if (server) return server.line(line);
        if (first) {
          first = false;
          const plain = plainInitializeRequest(line);
          if (plain) {
            log.debug(() => `request ${typeof plain.id === 'string' ? JSON.stringify(plain.id) : String(plain.id)} "initialize" answered at start-up`);
            const writer = new LineWriter(output, Date.now, (error) => log.error(() => `failed to write to stdout: ${describeThrown(error)}`));
            writer.result(plain.id, initializeResult(plain.params.clientInfo, codexHome, platformOnce(), env));
            writer.flush();
            initialized = plain.params;
            // The answer is written; the server loads on the next turn (lines arriving meanwhile wait).
            setImmediate(attach);
            return;
          }
          waiting.push(line);
          attach();
          return;
        }
        waiting.push(line);
      },
      end: () => {
        if (server) return server.end();
        if (waiting.length === 0) return close(); // nothing left to answer: no need for the server
        ended = true;
        attach();
      },
      error: (error) => (server ? server.error?.(error) : log.warn(() => `input stream error: ${error.message}`)),
    },
    log,
  );
  // Nothing had arrived by the time the event loop first looked at stdin (a host that spawns
  // early and initializes later): load the server while the host is quiet, so it is ready then.
  setImmediate(() => {
    if (!first) return;
    first = false;
    attach();
  });
}

/**
 * Drives one `initialize` and one `account/read` through the start-up stage
 * and the server on memory streams with `codexHome`, then closes them. The
 * build calls this before taking the V8 code cache of dist/server.cjs, so it
 * holds the functions its loading and the first request run, compiled.
 */
export async function warmUp(codexHome: string, loadServer: LoadServer): Promise<void> {
  const input = new PassThrough();
  const output = new PassThrough();
  const env = { CODEX_HOME: codexHome, CODEX_ACCOUNT_SERVER_LOG: 'error', TERM: 'xterm' };
  const answered = new Promise<void>((resolve) => {
    let text = '';
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      text += chunk;
      if (/"id":2[,}]/.test(text)) resolve();
    });
  });
  const closed = new Promise<void>((resolve) => {
    startStaged({ input, output, env, log: createLogger('error'), loadServer, onClosed: resolve });
  });
  input.write(
    `${JSON.stringify({ id: 1, method: 'initialize', params: { clientInfo: { name: 'warm-up', title: null, version: '0' }, capabilities: { experimentalApi: true } } })}\n` +
      `${JSON.stringify({ id: 2, method: 'account/read', params: { refreshToken: false } })}\n`,
  );
  await answered;
  input.end();
  await closed;
}
