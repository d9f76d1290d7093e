import type { Readable, Writable } from 'node:stream';
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { AccountMachine } from '../../machines/account-machine.js';
import type { AccountEmitted, AccountInput, ClientIdentity } from '../../machines/account-types.js';
import { readAccount, readAuthStatus, type AccountSnapshot, type ViewResult } from '../../machines/account-views.js';
import type { ConfigWarning } from '../config.js';
import { AuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { isMethodName, NOTIFICATIONS, unknownMethodMessage } from '../protocol/methods.js';
import type { InitializeParams } from '../protocol/schemas.js';
import { accountResult, authStatusResult, toEvent, toWireResult, validateParams, type ParamsOf, type Session } from '../protocol/wire.js';
import type { PlatformInfo } from '../user-agent.js';
import { errorFromThrown, toResponseError } from './errors.js';
import type { RpcTrace } from '../inspect/types.js';
import { HostConnection, type HostPort } from './host.js';
import { createStateApi } from './state-api.js';
import type { StoreInfo } from '../effects/store-info.js';
import { initializeResult } from './initialize.js';
import { describeThrown, LineWriter, parseLine, readLines, type JsonRpcId, type LineReaderHandlers, type LineSource } from './ndjson.js';

/** What effects may use that only exists once the connection does. */
export interface Ports {
  /** Server→client requests (`account/chatgptAuthTokens/refresh`). */
  host: HostPort;
}

type ProvidedActors = NonNullable<Parameters<AccountMachine['provide']>[0]['actors']>;

export interface ServerOptions {
  /** A stream to read lines from, or lines already being read (the start-up stage's). */
  input: Readable | LineSource;
  output: Writable;
  /** The account machine; `effects` supplies its actors. */
  machine: AccountMachine;
  /** Builds the machine's effects once the connection exists (so they can ask the host). */
  effects?: (ports: Ports) => ProvidedActors;
  machineInput: AccountInput;
  codexHome: string;
  /** Read on `initialize`, not at start-up. */
  platform: () => PlatformInfo;
  env: NodeJS.ProcessEnv;
  configWarning: ConfigWarning | null;
  log: Logger;
  now?: () => number;
  /** Passed to `createActor` (e.g. the Stately inspector's `inspect`). */
  inspect?: (event: InspectionEvent) => void;
  /** A request the machine has not answered after this long is answered `internal` (a bug guard). */
  maxRequestMs?: number;
  /** Told of each request, response (with timing) and notification; never params or results. */
  rpcTrace?: (trace: RpcTrace) => void;
  /** The credential store backend, for `account/state/read` (which store is in use and why). */
  credentialStore?: { describe(): StoreInfo };
  /**
   * The params of an `initialize` the start-up stage (src/cli.ts) has already
   * answered: the session starts with them before any line is read, exactly
   * as if that request had been handled here (`configWarning` follows), only
   * its answer is not written again.
   */
  initialized?: unknown;
}

/** How long answers to already-received requests may delay exit after stdin EOF. */
export const CLOSE_GRACE_MS = 2_000;
/** No request of this server legitimately takes longer (HTTP and host deadlines are far shorter). */
export const MAX_REQUEST_MS = 300_000;

export interface RunningServer {
  /** The account actor now serving (replaced if it ever fails). */
  readonly actor: Actor<AccountMachine>;
  /** Resolves when the input stream has ended and what was received is answered (or the grace ran out). */
  closed: Promise<void>;
  /** Writes whatever is buffered for stdout now. */
  flush(): void;
}

type Reply = Extract<AccountEmitted, { type: 'reply' }>;

/** Method names and string ids are the only input text that may reach a log line; long ones are cut. */
function shown(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/**
 * Serves newline-delimited JSON-RPC on the given streams (SPEC §1). A small
 * dispatch loop over our reader and writer stands where vscode-jsonrpc's
 * `createMessageConnection` stood: that connection read `params.id` of any
 * `$/cancelRequest` synchronously (one line could end the process), logged
 * stray messages whole, and dispatched one message per event-loop turn.
 * Errors still travel as vscode-jsonrpc `ResponseError`s.
 *
 * Wiring only: a request is either answered from a snapshot through the
 * machine's views (pure reads) or becomes an event; the machine emits its
 * reply (keyed by request) and notifications, written in the order emitted.
 * No queue: requests are in flight together, and the machine decides what
 * waits. Every request gets exactly one reply; no exception raised while
 * handling one message ends the process or stops the reader.
 */
export function startServer(options: ServerOptions): RunningServer {
  const { log } = options;
  const now = options.now ?? Date.now;
  const maxRequestMs = options.maxRequestMs ?? MAX_REQUEST_MS;
  const writer = new LineWriter(options.output, now, (error) =>
    log.error(() => `failed to write to stdout: ${describeThrown(error)}`),
  );
  const host = new HostConnection(writer, log);
  const machine = options.effects ? options.machine.provide({ actors: options.effects({ host }) }) : options.machine;
  const store = options.credentialStore;
  const stateApi = createStateApi({ now, ...(store ? { store: () => store.describe() } : {}) });

  let session: Session | null = null;
  let client: ClientIdentity | null = null;
  /** `capabilities.chatgptAuthTokensRefreshTimeoutMs`, if the host set it. */
  let hostRefreshTimeoutMs: number | undefined;
  let open = 0;
  let nextSeq = 0;
  // Answers of pure reads, serialised once per snapshot: snapshots are immutable, and a burst
  // of reads between two changes repeats the same few answers.
  let viewsOf: AccountSnapshot | null = null;
  const views = new Map<string, string>();

  const notify = (method: string, params: unknown) => {
    if (session?.optOut.has(method)) return;
    options.rpcTrace?.({ dir: 'out', kind: 'notification', method });
    writer.notification(method, params);
  };

  // Replies the machine owes, by request sequence number. Written the moment they are emitted,
  // so a reply always precedes the notifications its transition emits after it.
  const waiting = new Map<string, { respond: (reply: Reply) => void; since: number }>();

  const onEmitted = (emitted: AccountEmitted) => {
    switch (emitted.type) {
      case 'reply': {
        const entry = waiting.get(emitted.requestId);
        if (!entry) {
          log.warn(`machine replied to unknown request ${emitted.requestId}`);
          return;
        }
        waiting.delete(emitted.requestId);
        entry.respond(emitted);
        return;
      }
      case 'login.completed':
        notify(NOTIFICATIONS.loginCompleted, {
          loginId: emitted.loginId,
          success: emitted.success,
          error: emitted.error,
          onboardingEntrypoint: null,
        });
        return;
      case 'account.updated':
        notify(NOTIFICATIONS.accountUpdated, { authMode: emitted.authMode, planType: emitted.planType });
        return;
    }
  };

  const failOwed = (predicate: (since: number) => boolean, why: string) => {
    for (const [requestId, entry] of [...waiting]) {
      if (!predicate(entry.since)) continue;
      waiting.delete(requestId);
      log.error(`request ${requestId} ${why}; answered with an internal error`);
      entry.respond({ type: 'reply', requestId, ok: false, failure: { kind: 'internal' } });
    }
  };

  const inspect = options.inspect
    ? (event: InspectionEvent) => {
        try {
          options.inspect!(event);
        } catch (error) {
          log.warn(() => `inspection callback failed: ${describeThrown(error)}`);
        }
      }
    : undefined;

  /**
   * Starts an account actor. Should one ever fail (a bug in an action), the
   * requests it owed are answered with an internal error and a fresh actor
   * takes over, loading the credentials from storage again.
   */
  const startActor = (): Actor<AccountMachine> => {
    const next = createActor(machine, { input: options.machineInput, ...(inspect ? { inspect } : {}) });
    next.on('*', (emitted: AccountEmitted) => {
      try {
        onEmitted(emitted);
      } catch (error) {
        log.error(() => `failed to deliver ${emitted.type}: ${describeThrown(error)}`);
      }
    });
    next.subscribe({
      error: (error) => {
        log.error(() => `account actor failed, restarting it: ${describeThrown(error)}`);
        failOwed(() => true, 'was owed by the failed actor');
        actor = startActor();
        if (client) actor.send({ type: 'client.identify', client, hostRefreshTimeoutMs });
      },
    });
    next.start();
    stateApi.attach(next);
    return next;
  };
  let actor = startActor();

  // A request the machine never answers would be a bug; answer it anyway, late.
  const watchdog = setInterval(() => failOwed((since) => now() - since > maxRequestMs, `was not answered within ${maxRequestMs} ms`), Math.min(30_000, maxRequestMs));
  watchdog.unref();

  const initialize = (params: InitializeParams) => {
    if (session) throw new AuthError('alreadyInitialized');
    const capabilities = params.capabilities ?? {};
    const result = initializeResult(params.clientInfo, options.codexHome, options.platform(), options.env);
    session = {
      optOut: new Set(capabilities.optOutNotificationMethods ?? []),
      experimentalApi: capabilities.experimentalApi ?? false,
      stateNotifications: capabilities.stateNotifications ?? false,
    };
    if (session.stateNotifications) {
      stateApi.onChange((state) => notify(NOTIFICATIONS.accountStateChanged, state), session.experimentalApi);
    }
    client = { originator: params.clientInfo.name, userAgent: result.userAgent };
    hostRefreshTimeoutMs = capabilities.chatgptAuthTokensRefreshTimeoutMs ?? undefined;
    actor.send({ type: 'client.identify', client, hostRefreshTimeoutMs });
    return result;
  };

  /** Answers one request exactly once: `answer` ignores (and logs) any second attempt. */
  const handleRequest = (id: JsonRpcId, method: string, rawParams: unknown) => {
    const seq = String(nextSeq++);
    open++;
    let answered = false;
    const trace = options.rpcTrace;
    const wireId = trace ? String(id) : '';
    const started = trace ? performance.now() : 0;
    trace?.({ dir: 'in', kind: 'request', method, id: wireId });
    const answer = (write: () => void, errorCode: number | null = null) => {
      if (answered) {
        log.error(`request ${seq} was answered twice; the second answer was dropped`);
        return;
      }
      answered = true;
      open--;
      trace?.({ dir: 'out', kind: 'response', method, id: wireId, ms: performance.now() - started, errorCode });
      try {
        write();
      } catch (error) {
        log.error(() => `failed to write the answer to request ${seq}: ${describeThrown(error)}`);
      }
    };
    const fail = (error: unknown) => {
      const response = errorFromThrown(error, log);
      answer(() => writer.error(id, response.toJson() as never), response.code);
    };
    /** Answers from the snapshot's view if it is known (else `false`: the machine must act first). */
    const fromView = <T>(key: string, read: (s: AccountSnapshot) => ViewResult<T> | null, toResult: (value: T) => unknown) => {
      const snapshot = actor.getSnapshot();
      if (viewsOf !== snapshot) {
        viewsOf = snapshot;
        views.clear();
      }
      let json = views.get(key);
      if (json === undefined) {
        const view = read(snapshot);
        if (view === null) return false;
        if (!view.ok) {
          fail(toResponseError(view.failure));
          return true;
        }
        json = JSON.stringify(toResult(view.value) ?? null);
        views.set(key, json);
      }
      const text = json;
      answer(() => writer.resultJson(id, text));
      return true;
    };
    try {
      if (!isMethodName(method)) throw new AuthError('unknownMethod', unknownMethodMessage(method));
      const params = validateParams(method, rawParams);
      if (method === 'initialize') {
        const result = initialize(params as InitializeParams);
        answer(() => writer.result(id, result));
        // configWarning follows the initialize response (SPEC §4).
        if (options.configWarning) notify(NOTIFICATIONS.configWarning, options.configWarning);
        return;
      }
      if (!session) throw new AuthError('notInitialized');
      // Pure reads: straight from the snapshot when the answer is known (no event, no macrostep).
      if (method === 'account/read') {
        const refreshToken = (params as ParamsOf<'account/read'>).refreshToken ?? false;
        if (fromView(refreshToken ? 'read+refresh' : 'read', (s) => readAccount(s, refreshToken), accountResult)) return;
      } else if (method === 'getAuthStatus') {
        const includeToken = (params as ParamsOf<'getAuthStatus'>).includeToken ?? false;
        if (fromView(includeToken ? 'status+token' : 'status', (s) => readAuthStatus(s, includeToken), authStatusResult)) return;
      } else if (method === 'account/state/read') {
        // Always from the snapshot, loading included: the state is the answer.
        const state = stateApi.read(actor.getSnapshot(), session.experimentalApi);
        return answer(() => writer.result(id, state));
      }
      // The global Web Crypto is loaded on first use, not at start-up (node:crypto costs ~2 ms there).
      const event = toEvent(method, params, seq, session, () => globalThis.crypto.randomUUID());
      waiting.set(seq, {
        since: now(),
        respond: (reply) => (reply.ok ? answer(() => writer.result(id, toWireResult(reply.value))) : fail(toResponseError(reply.failure))),
      });
      actor.send(event);
    } catch (error) {
      waiting.delete(seq);
      fail(error);
    }
  };

  const handleLine = (line: string) => {
    const message = parseLine(line);
    switch (message.kind) {
      case 'invalid':
        // Never text from the line: it may carry a secret (issue 5).
        log.warn(`dropping input line (${line.length} chars): ${message.reason}`);
        return;
      case 'request':
        log.debug(() => `request ${typeof message.id === 'string' ? shown(message.id) : String(message.id)} ${shown(message.method)}`);
        handleRequest(message.id, message.method, message.params);
        return;
      case 'notification':
        // `initialized` needs no answer; unknown notifications (`$/cancelRequest` too) are ignored (SPEC §1).
        log.debug(() => `notification ${shown(message.method)} ignored`);
        return;
      case 'response':
        // An answer to a server→client request; stray, late and repeated ones are ignored (SPEC §1).
        host.handleResponse(message.id, message.error ? { error: message.error } : { result: message.result });
        return;
    }
  };

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const finish = () => {
    clearInterval(watchdog);
    writer.flush();
    resolveClosed();
  };
  if (options.initialized !== undefined) {
    try {
      initialize(validateParams('initialize', options.initialized));
      if (options.configWarning) notify(NOTIFICATIONS.configWarning, options.configWarning);
    } catch (error) {
      // The start-up stage accepts only params the schema accepts (test/unit/plain-initialize.test.ts).
      log.error(() => `the initialize answered at start-up was refused here (a bug): ${describeThrown(error)}`);
    }
  }
  const handlers: LineReaderHandlers = {
    line: handleLine,
    end: () => {
      // Nobody is left to answer our requests; answer what was already received (briefly), then report closed.
      host.close();
      const deadline = now() + CLOSE_GRACE_MS;
      const check = () => (open === 0 || now() >= deadline ? finish() : setTimeout(check, 5));
      check();
    },
    error: (error) => log.warn(() => `input stream error: ${error.message}`),
  };
  if (typeof options.input === 'function') options.input(handlers);
  else readLines(options.input, handlers, log);
  return {
    get actor() {
      return actor;
    },
    closed,
    flush: () => writer.flush(),
  };
}
