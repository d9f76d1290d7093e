import type { Readable, Writable } from 'node:stream';
import { createMessageConnection, type Message, type MessageConnection } from 'vscode-jsonrpc/node';
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
import type { RpcTrace } from '../inspect/types.js';
import { IdTable, NdjsonMessageReader, NdjsonMessageWriter } from './ndjson.js';

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
  /** Told of each request, response (with timing) and notification; never params or results. */
  rpcTrace?: (trace: RpcTrace) => void;
}

/** How long answers to already-received requests may delay exit after stdin EOF. */
export const CLOSE_GRACE_MS = 2_000;

export interface RunningServer {
  connection: MessageConnection;
  actor: Actor<AccountMachine>;
  /** Resolves when the input stream ends. */
  closed: Promise<void>;
}

/**
 * Keeps the wire order the machine decided: a notification emitted after a
 * reply is written only after that reply's response line (SPEC §3.2 order).
 */
class Outbox {
  readonly #items: Array<{ reply: string; written: boolean } | { send: () => void }> = [];

  expectReply(requestId: string): void {
    this.#items.push({ reply: requestId, written: false });
  }

  notify(send: () => void): void {
    this.#items.push({ send });
    this.#drain();
  }

  responseWritten(requestId: string): void {
    const item = this.#items.find((i) => 'reply' in i && i.reply === requestId);
    if (item && 'reply' in item) item.written = true;
    this.#drain();
  }

  #drain(): void {
    while (this.#items.length > 0) {
      const head = this.#items[0]!;
      if ('reply' in head) {
        if (!head.written) return;
        this.#items.shift();
      } else {
        this.#items.shift();
        head.send();
      }
    }
  }
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
  const result = spec.schema.safeParse(params, { reportInput: true });
  if (!result.success) throw new AuthError('invalidParams', `Invalid request: ${serdeMessage(result.error)}`);
  return result.data as ParamsOf<M>;
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
 * Wires vscode-jsonrpc over newline-delimited stdio to the account actor.
 * Holds only the connection's session (initialized, capabilities); account
 * state lives in the machine.
 */
export function startServer(options: ServerOptions): RunningServer {
  const { log } = options;
  const now = options.now ?? Date.now;
  const ids = new IdTable();
  const outbox = new Outbox();
  const reader = new NdjsonMessageReader(options.input, ids, log);
  const writer = new NdjsonMessageWriter(options.output, ids, now, (internal) => outbox.responseWritten(String(internal)));

  // The internal id of the request whose handler vscode-jsonrpc is calling right now.
  let dispatching: number | undefined;
  const connection = createMessageConnection(reader, writer, {
    error: (m) => log.debug(m),
    warn: (m) => log.debug(m),
    info: (m) => log.debug(m),
    log: (m) => log.debug(m),
  }, {
    messageStrategy: {
      handleMessage(message: Message, next: (message: Message) => void) {
        dispatching = (message as { id?: number }).id;
        try {
          next(message);
        } finally {
          dispatching = undefined;
        }
      },
    },
  });

  const actor = createActor(options.machine, {
    input: options.machineInput,
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });

  let session: Session | null = null;
  const waiting = new Map<string, (reply: Extract<AccountEmitted, { type: 'reply' }>) => void>();

  const notify = (method: string, params: unknown) => {
    if (session?.optOut.has(method)) return;
    // Straight to the writer: notifications for answered requests still go out after stdin EOF.
    outbox.notify(() => {
      options.rpcTrace?.({ dir: 'out', kind: 'notification', method });
      void writer.write({ jsonrpc: '2.0', method, params } as Message);
    });
  };

  actor.on('*', (emitted: AccountEmitted) => {
    switch (emitted.type) {
      case 'reply': {
        const resolve = waiting.get(emitted.requestId);
        if (!resolve) {
          log.warn(`machine replied to unknown request ${emitted.requestId}`);
          return;
        }
        waiting.delete(emitted.requestId);
        outbox.expectReply(emitted.requestId);
        resolve(emitted);
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
  });
  actor.start();

  // Account requests are served one at a time, each once the machine is idle.
  let queue: Promise<unknown> = Promise.resolve();
  const ask = (event: RequestEvent): Promise<unknown> => {
    const run = async () => {
      await waitFor(actor, (s) => s.hasTag('idle'), { timeout: Infinity });
      const reply = await new Promise<Extract<AccountEmitted, { type: 'reply' }>>((resolve) => {
        waiting.set(event.requestId, resolve);
        actor.send(event);
      });
      if (!reply.ok) throw toResponseError(reply.failure);
      return toWireResult(reply.value);
    };
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };

  const initialize = (params: InitializeParams, requestId: string) => {
    if (session) throw new AuthError('alreadyInitialized');
    const capabilities = params.capabilities ?? {};
    session = {
      optOut: new Set(capabilities.optOutNotificationMethods ?? []),
      experimentalApi: capabilities.experimentalApi ?? false,
    };
    const platform = options.platform();
    const userAgent = buildUserAgent(params.clientInfo, platform, options.env);
    actor.send({ type: 'client.identify', client: { originator: params.clientInfo.name, userAgent } });
    // configWarning follows the initialize response (SPEC §4).
    outbox.expectReply(requestId);
    if (options.configWarning) notify(NOTIFICATIONS.configWarning, options.configWarning);
    return {
      userAgent,
      codexHome: options.codexHome,
      platformFamily: platform.family,
      platformOs: platform.os,
    };
  };

  const trace = options.rpcTrace;
  connection.onRequest(async (method, rawParams) => {
    const requestId = String(dispatching);
    const wireId = trace ? String(ids.original(dispatching!)) : '';
    const started = trace ? performance.now() : 0;
    let errorCode: number | null = null;
    trace?.({ dir: 'in', kind: 'request', method, id: wireId });
    try {
      if (!isMethodName(method)) throw new AuthError('unknownMethod', unknownMethodMessage(method));
      const params = validate(method, rawParams);
      if (method === 'initialize') return initialize(params as InitializeParams, requestId);
      if (!session) throw new AuthError('notInitialized');
      return await ask(toEvent(method, params, requestId, session));
    } catch (error) {
      const response = errorFromThrown(error, log);
      errorCode = response.code;
      throw response;
    } finally {
      trace?.({ dir: 'out', kind: 'response', method, id: wireId, ms: performance.now() - started, errorCode });
    }
  });
  // Notifications (`initialized` and any other) need no answer; unknown ones are ignored.
  connection.onNotification(() => {});

  // On EOF, answer what was already received (briefly), then report closed.
  const closed = new Promise<void>((resolve) => {
    connection.onClose(() => {
      const deadline = now() + CLOSE_GRACE_MS;
      const check = () => (ids.outstanding === 0 || now() >= deadline ? resolve() : setTimeout(check, 5));
      check();
    });
  });
  connection.listen();
  return { connection, actor, closed };
}
