import type { Readable, Writable } from 'node:stream';
import { createActor, waitFor, type Actor, type InspectionEvent } from 'xstate';
import type { AccountMachine } from '../../machines/account-machine.js';
import type { AccountEmitted, AccountInput, RequestEvent, ReplyValue } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import type { ConfigWarning } from '../config.js';
import { readClaims } from '../effects/jwt.js';
import { AuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { isMethodName, METHODS, NOTIFICATIONS, unknownMethodMessage, type MethodName } from '../protocol/methods.js';
import { parseLoginId, type InitializeParams, type LoginAccountParams } from '../protocol/schemas.js';
import { serdeMessage } from '../protocol/serde.js';
import { buildUserAgent, type PlatformInfo } from '../user-agent.js';
import { errorFromThrown, toResponseError } from './errors.js';
import { describeThrown, LineWriter, parseLine, readLines, type JsonRpcId } from './ndjson.js';

export interface ServerOptions {
  input: Readable;
  output: Writable;
  /** The account machine with its effects already provided. */
  machine: AccountMachine;
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
}

/** How long answers to already-received requests may delay exit after stdin EOF. */
export const CLOSE_GRACE_MS = 2_000;

export interface RunningServer {
  /** The account actor now serving (replaced if it ever fails). */
  readonly actor: Actor<AccountMachine>;
  /** Resolves when the input stream has ended and what was received is answered (or the grace ran out). */
  closed: Promise<void>;
  /** Writes whatever is buffered for stdout now. */
  flush(): void;
}

/** Method names and string ids are the only input text that may reach a log line; long ones are cut. */
function shown(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

interface Session {
  optOut: ReadonlySet<string>;
  experimentalApi: boolean;
}

/** Params as parsed by each method's schema. */
type ParamsOf<M extends MethodName> = import('zod/mini').infer<(typeof METHODS)[M]['schema']>;

function validate<M extends MethodName>(method: M, raw: unknown): ParamsOf<M> {
  const spec = METHODS[method];
  let params = raw === null ? undefined : raw;
  if (params === undefined) {
    if (spec.params === 'required') throw new AuthError('invalidParams', 'Invalid request: missing field `params`');
    params = {};
  }
  // serde reads a struct from a sequence positionally (`[]` is an empty struct).
  if (Array.isArray(params) && 'shape' in spec.schema) {
    const keys = Object.keys((spec.schema as unknown as { shape: object }).shape);
    params = Object.fromEntries(keys.map((k, i) => [k, (params as unknown[])[i]]).filter(([, v]) => v !== undefined));
  }
  const result = spec.schema.safeParse(params);
  if (result.success) return result.data as ParamsOf<M>;
  // Parsed again only to word the error: `reportInput` costs ~20× a plain parse.
  const worded = spec.schema.safeParse(params, { reportInput: true });
  throw new AuthError('invalidParams', `Invalid request: ${serdeMessage(worded.error ?? result.error)}`);
}

/** Wire shapes of the machine's replies (SPEC §3). */
function toWireResult(value: ReplyValue): unknown {
  switch (value.kind) {
    case 'account': {
      const { authMode, email, planType, userId, routing } = value.account;
      return {
        account:
          authMode === null
            ? null
            : authMode === 'apikey'
              ? { type: 'apiKey' }
              : { type: 'chatgpt', email, planType, workspaceName: routing?.workspaceName ?? null },
        userId,
        requiresOpenaiAuth: true,
        workspaceRouting: routing
          ? {
              chatgptAccountId: routing.accountId,
              backendOrigin: routing.backendOrigin,
              accountRoutingOverride: routing.accountRoutingOverride,
            }
          : null,
      };
    }
    case 'authStatus':
      return {
        authMethod: value.status.authMode,
        authToken: value.status.token?.reveal() ?? null,
        requiresOpenaiAuth: true,
      };
    case 'login':
      return { type: value.type };
    case 'loginStarted':
      return value.flow === 'browser'
        ? { type: 'chatgpt', loginId: value.loginId, ...value.details }
        : { type: 'chatgptDeviceCode', loginId: value.loginId, ...value.details };
    case 'cancel':
      return { status: value.status };
    case 'empty':
      return {};
  }
}

/** Request → machine event. Mode logic stays in the machine; this only translates. */
function toEvent(method: Exclude<MethodName, 'initialize'>, params: unknown, requestId: string, session: Session): RequestEvent {
  switch (method) {
    case 'account/read':
      return { type: 'account.read', requestId, refreshToken: (params as ParamsOf<'account/read'>).refreshToken ?? false };
    case 'getAuthStatus':
      return {
        type: 'authStatus.read',
        requestId,
        includeToken: (params as ParamsOf<'getAuthStatus'>).includeToken ?? false,
      };
    case 'account/logout':
      return { type: 'logout', requestId };
    case 'account/rateLimits/read':
      return { type: 'rateLimits.read', requestId };
    case 'account/login/cancel': {
      const { loginId } = params as ParamsOf<'account/login/cancel'>;
      const normalized = parseLoginId(loginId);
      if (normalized === null) throw new AuthError('invalidLoginId', `invalid login id: ${loginId}`);
      return { type: 'login.cancel', requestId, loginId: normalized };
    }
    case 'account/login/start': {
      const login = params as LoginAccountParams;
      switch (login.type) {
        case 'apiKey':
          return { type: 'login.apiKey', requestId, apiKey: new Secret(login.apiKey) };
        case 'chatgpt':
          return { type: 'login.chatgpt', requestId, flow: 'browser' };
        case 'chatgptDeviceCode':
          return { type: 'login.chatgpt', requestId, flow: 'device' };
        case 'chatgptAuthTokens':
          return {
            type: 'login.externalTokens',
            requestId,
            experimentalApi: session.experimentalApi,
            accessToken: new Secret(login.accessToken),
            accountId: login.chatgptAccountId,
            planType: login.chatgptPlanType ?? null,
            claims: readClaims(login.accessToken),
          };
      }
    }
  }
}

/**
 * Serves newline-delimited JSON-RPC on the given streams (SPEC §1). A small
 * dispatch loop over our reader and writer stands where vscode-jsonrpc's
 * `createMessageConnection` stood: that connection read `params.id` of any
 * `$/cancelRequest` synchronously (one line could end the process), logged
 * stray messages whole, and dispatched one message per event-loop turn.
 * Errors still travel as vscode-jsonrpc `ResponseError`s.
 *
 * Every request gets exactly one reply, whatever a handler, the machine or
 * an effect does; no exception raised while handling one message ends the
 * process or stops the reader.
 */
export function startServer(options: ServerOptions): RunningServer {
  const { log } = options;
  const now = options.now ?? Date.now;
  const writer = new LineWriter(options.output, now, (error) =>
    log.error(() => `failed to write to stdout: ${describeThrown(error)}`),
  );

  let session: Session | null = null;
  let open = 0;
  let nextSeq = 0;

  const notify = (method: string, params: unknown) => {
    if (session?.optOut.has(method)) return;
    writer.notification(method, params);
  };

  // Replies the machine owes, by request sequence number; written the moment it emits them,
  // so a reply always precedes the notifications the same transition emits.
  const waiting = new Map<string, (reply: Extract<AccountEmitted, { type: 'reply' }>) => void>();

  const onEmitted = (emitted: AccountEmitted) => {
    switch (emitted.type) {
      case 'reply': {
        const respond = waiting.get(emitted.requestId);
        if (!respond) {
          log.warn(`machine replied to unknown request ${emitted.requestId}`);
          return;
        }
        waiting.delete(emitted.requestId);
        respond(emitted);
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
    const next = createActor(options.machine, { input: options.machineInput, ...(inspect ? { inspect } : {}) });
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
        const owed = [...waiting.entries()];
        waiting.clear();
        for (const [requestId, respond] of owed) respond({ type: 'reply', requestId, ok: false, failure: { kind: 'internal' } });
        actor = startActor();
        if (client) actor.send({ type: 'client.identify', client });
      },
    });
    next.start();
    return next;
  };
  let client: { originator: string; userAgent: string } | null = null;
  let actor = startActor();

  // Account requests are served one at a time, each once the machine is idle.
  let queue: Promise<unknown> = Promise.resolve();
  const ask = (event: RequestEvent, respond: (reply: Extract<AccountEmitted, { type: 'reply' }>) => void): void => {
    const run = async () => {
      await waitFor(actor, (s) => s.hasTag('idle'), { timeout: Infinity });
      await new Promise<void>((resolve) => {
        waiting.set(event.requestId, (reply) => {
          resolve();
          respond(reply);
        });
        actor.send(event);
      });
    };
    queue = queue.then(run, run).catch((error) => {
      log.error(() => `request ${event.requestId} failed: ${describeThrown(error)}`);
      if (waiting.delete(event.requestId)) respond({ type: 'reply', requestId: event.requestId, ok: false, failure: { kind: 'internal' } });
    });
  };

  const initialize = (params: InitializeParams) => {
    if (session) throw new AuthError('alreadyInitialized');
    const capabilities = params.capabilities ?? {};
    const platform = options.platform();
    const userAgent = buildUserAgent(params.clientInfo, platform, options.env);
    session = {
      optOut: new Set(capabilities.optOutNotificationMethods ?? []),
      experimentalApi: capabilities.experimentalApi ?? false,
    };
    client = { originator: params.clientInfo.name, userAgent };
    actor.send({ type: 'client.identify', client });
    return {
      userAgent,
      codexHome: options.codexHome,
      platformFamily: platform.family,
      platformOs: platform.os,
    };
  };

  /** Answers one request exactly once: `answer` ignores (and logs) any second attempt. */
  const handleRequest = (id: JsonRpcId, method: string, rawParams: unknown) => {
    const seq = String(nextSeq++);
    open++;
    let answered = false;
    const answer = (write: () => void) => {
      if (answered) {
        log.error(`request ${seq} was answered twice; the second answer was dropped`);
        return;
      }
      answered = true;
      open--;
      try {
        write();
      } catch (error) {
        log.error(() => `failed to write the answer to request ${seq}: ${describeThrown(error)}`);
      }
    };
    const fail = (error: unknown) => answer(() => writer.error(id, errorFromThrown(error, log).toJson() as never));
    try {
      if (!isMethodName(method)) throw new AuthError('unknownMethod', unknownMethodMessage(method));
      const params = validate(method, rawParams);
      if (method === 'initialize') {
        const result = initialize(params as InitializeParams);
        answer(() => writer.result(id, result));
        // configWarning follows the initialize response (SPEC §4).
        if (options.configWarning) notify(NOTIFICATIONS.configWarning, options.configWarning);
        return;
      }
      if (!session) throw new AuthError('notInitialized');
      const event = toEvent(method, params, seq, session);
      ask(event, (reply) => {
        if (reply.ok) {
          const result = toWireResult(reply.value);
          answer(() => writer.result(id, result));
        } else {
          fail(toResponseError(reply.failure));
        }
      });
    } catch (error) {
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
        // This server has sent no requests yet: a response is stray and ignored (SPEC §1).
        log.debug('ignoring a response to a request this server never sent');
        return;
    }
  };

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const finish = () => {
    writer.flush();
    resolveClosed();
  };
  readLines(
    options.input,
    {
      line: handleLine,
      end: () => {
        // On EOF, answer what was already received (briefly), then report closed.
        const deadline = now() + CLOSE_GRACE_MS;
        const check = () => (open === 0 || now() >= deadline ? finish() : setTimeout(check, 5));
        check();
      },
      error: (error) => log.warn(() => `input stream error: ${error.message}`),
    },
    log,
  );
  return {
    get actor() {
      return actor;
    },
    closed,
    flush: () => writer.flush(),
  };
}
