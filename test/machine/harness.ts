import { assign, createActor, fromPromise, sendParent, setup, type SimulatedClock } from 'xstate';
import { accountMachine, type ClearCredentialsInput } from '../../machines/account-machine.js';
import type {
  AccountEmitted,
  FailureKind,
  LoginFlow,
  ModelProviders,
  Policy,
  RequestEvent,
  StoredAuth,
  StoredChatgpt,
  TokenClaims,
  WorkspaceRouting,
} from '../../machines/account-types.js';
import type { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import type { LoginAttemptInput, LoginAttemptOutput, LoginAttemptReport, LoginReadyDetails } from '../../machines/login-attempt-types.js';
import { Secret } from '../../machines/secret.js';
import {
  sessionMachine,
  type BackendCallInput,
  type BackendCallOutput,
  type DiscoverRoutingInput,
  type HostRefreshInput,
  type HostRefreshOutput,
  type RefreshTokensInput,
} from '../../machines/session-machine.js';

export type Reply = Extract<AccountEmitted, { type: 'reply' }>;
type Omit2<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never;
export type RequestInput = Omit2<RequestEvent, 'requestId'>;

/** Effects a test can hold open (`hold`) and let finish later (`release`), to interleave requests with them. */
export type Gate = 'load' | 'save' | 'clear' | 'discover' | 'refresh' | 'hostRefresh' | 'backend' | 'loginStart';

/** Boundary behaviour the fakes follow; everything else is the real machine. */
export interface Fakes {
  stored?: StoredAuth | null;
  loadFails?: boolean;
  saveFails?: boolean;
  /** Discovery answers for these account ids; others fail. */
  workspaces?: string[];
  /** Access tokens the ChatGPT backend (discovery and backend calls) answers 401 for. */
  rejectedTokens?: string[];
  /** Access tokens only backend calls answer 401 for (discovery accepts them). */
  backendRejects?: string[];
  /** A managed refresh fails with this failure instead of rotating the tokens. */
  refreshFails?: { kind: FailureKind; message?: string };
  /** A backend call fails (not a 401) with this message. */
  backendFails?: string;
  /** Effects that throw a plain `Error` (a bug in them) instead of a failure with a `kind`. */
  buggy?: Array<'load' | 'save' | 'clear' | 'discover' | 'refresh' | 'hostRefresh' | 'backend'>;
  /** How the login attempt answers a pasted redirect URL (default: refused, see `fakeLoginAttempt`). */
  paste?: 'refuse' | 'accept' | 'hang';
  /** Sees each backend call's whole input (client, `managedLastRefresh`, …) before it runs. */
  onBackendCall?: (input: BackendCallInput) => void;
  /**
   * What a started ChatGPT login does once ready: hang (default), succeed with these
   * credentials, or fail; `startFail` never gets ready (the port is taken).
   */
  loginOutcome?: 'hang' | StoredChatgpt | 'fail' | 'startFail';
  /** What the host answers to a token refresh request: new tokens, a failure (default), or nothing at all. */
  hostRefresh?: { accountId: string; accessToken: string; planType?: string | null } | 'fail' | 'hang';
}

/** How often each boundary effect ran, and with what; tests read it to see an effect did (not) happen. */
export interface Calls {
  save: number;
  clear: Array<{ revokeToken: string | null }>;
  discover: Array<{ accountId: string | null; accessToken: string }>;
  refresh: Array<{ reason: string; refreshToken: string }>;
  hostRefresh: Array<{ previousAccountId: string | null }>;
  backend: Array<{ requestId: string; accessToken: string; retried: boolean }>;
  loginStart: Array<{ loginId: string; flow: LoginFlow; deadlineMs: number }>;
  /** Effects whose `signal` was aborted (their actor was stopped) while they ran. */
  aborted: Gate[];
}

export function noCalls(): Calls {
  return { save: 0, clear: [], discover: [], refresh: [], hostRefresh: [], backend: [], loginStart: [], aborted: [] };
}

/** Waits until a few event-loop turns pass with `changed()` false: fake effects settle within promise jobs. */
export async function quiet(changed: () => boolean): Promise<void> {
  for (let turns = 0; turns < 3; ) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    turns = changed() ? 0 : turns + 1;
  }
}

export const NO_POLICY: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: null };

let uuidCounter = 0;
export function fakeLoginId(): string {
  return `00000000-0000-4000-8000-${String(++uuidCounter).padStart(12, '0')}`;
}

export function claims(accountId: string | null, planType: string | null = 'plus'): TokenClaims {
  return { email: 'a@b.c', userId: 'user-1', accountId, planType };
}

export function storedChatgpt(accountId = 'ws-1', generation = ''): StoredChatgpt {
  return {
    kind: 'chatgpt',
    idToken: new Secret(`id-token-${accountId}${generation}`),
    accessToken: new Secret(`access-token-${accountId}${generation}`),
    refreshToken: new Secret(`refresh-token-${accountId}${generation}`),
    accountId,
    apiKey: new Secret('sk-exchanged'),
    claims: claims(accountId, 'pro'),
    lastRefresh: null,
  };
}

export function routingFor(accountId: string): WorkspaceRouting {
  return { accountId, backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT', workspaceName: 'Acme' };
}

/** Gates: effects that reach a held gate wait until it is released. */
export class Gates {
  readonly #held = new Map<Gate, { promise: Promise<void>; open: () => void }>();

  hold(gate: Gate): void {
    if (this.#held.has(gate)) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.#held.set(gate, { promise, open });
  }

  release(gate: Gate): void {
    this.#held.get(gate)?.open();
    this.#held.delete(gate);
  }

  /** Waits at the gate if it is held; records an abort that happens meanwhile. */
  async pass(gate: Gate, signal: AbortSignal, calls: Calls): Promise<void> {
    const held = this.#held.get(gate);
    if (held) {
      signal.addEventListener('abort', () => calls.aborted.push(gate), { once: true });
      await held.promise;
    }
  }
}

const unauthorized = { kind: 'backendUnauthorized', message: 'unexpected status 401 Unauthorized' } as const;

/** The session child with fake HTTP, host and token endpoint (its chart is the real one). */
export function fakeSession(fakes: Fakes, calls: Calls, gates: Gates) {
  const rejected = (token: Secret) => (fakes.rejectedTokens ?? []).includes(token.reveal());
  let rotations = 0;
  return sessionMachine.provide({
    actors: {
      discoverRouting: fromPromise<WorkspaceRouting, DiscoverRoutingInput>(async ({ input, signal }) => {
        calls.discover.push({ accountId: input.accountId, accessToken: input.accessToken.reveal() });
        await gates.pass('discover', signal, calls);
        if (fakes.buggy?.includes('discover')) throw new TypeError('bug in discovery');
        if (rejected(input.accessToken)) throw unauthorized;
        if (!input.accountId) throw { kind: 'accountIdMissing', message: 'workspace routing requires a ChatGPT account id' };
        if (!(fakes.workspaces ?? ['ws-1']).includes(input.accountId)) {
          throw { kind: 'discoveryFailed', message: 'workspace routing discovery failed' };
        }
        return routingFor(input.accountId);
      }),
      refreshTokens: fromPromise<StoredChatgpt, RefreshTokensInput>(async ({ input, signal }) => {
        calls.refresh.push({ reason: input.reason, refreshToken: input.stored.refreshToken.reveal() });
        await gates.pass('refresh', signal, calls);
        if (fakes.buggy?.includes('refresh')) throw new TypeError('bug in the refresh');
        if (fakes.refreshFails) throw fakes.refreshFails;
        // The token endpoint rotates every token (SPEC §8).
        return storedChatgpt(input.stored.accountId ?? 'ws-1', `-r${++rotations}`);
      }),
      requestHostRefresh: fromPromise<HostRefreshOutput, HostRefreshInput>(async ({ input, signal }) => {
        calls.hostRefresh.push({ previousAccountId: input.previousAccountId });
        await gates.pass('hostRefresh', signal, calls);
        if (fakes.buggy?.includes('hostRefresh')) throw new TypeError('bug in the host refresh');
        const answer = fakes.hostRefresh ?? 'fail';
        if (answer === 'hang') return new Promise<never>(() => {});
        if (answer === 'fail') throw { kind: 'hostRefreshFailed', message: 'auth refresh request failed: code=-32603' };
        return {
          accessToken: new Secret(answer.accessToken),
          accountId: answer.accountId,
          planType: answer.planType ?? null,
          claims: claims(answer.accountId),
        };
      }),
      backendCall: fromPromise<BackendCallOutput, BackendCallInput>(async ({ input, signal }) => {
        calls.backend.push({ requestId: input.requestId, accessToken: input.accessToken.reveal(), retried: input.retried });
        fakes.onBackendCall?.(input);
        await gates.pass('backend', signal, calls);
        if (fakes.buggy?.includes('backend')) throw new TypeError('bug in the backend effect');
        // As the real effect does: the job names the credentials it was sent with.
        const job = { requestId: input.requestId, call: input.call, retried: input.retried, credentialsVersion: input.credentialsVersion };
        if (rejected(input.accessToken) || (fakes.backendRejects ?? []).includes(input.accessToken.reveal())) {
          return { job, status: 'unauthorized', failure: unauthorized };
        }
        if (fakes.backendFails) return { job, status: 'failed', failure: { kind: 'backendFailed', message: fakes.backendFails } };
        return { job, status: 'ok', result: { rateLimits: { limitId: 'codex' }, rateLimitsByLimitId: null } };
      }),
    },
  });
}

const START_FAILURE = { kind: 'loginServerFailed', message: 'failed to start login server: port 1455 in use' } as const;

/**
 * A stand-in login attempt: a tiny chart that gets ready (reports
 * `loginAttempt.ready`), or fails to start, then ends as `fakes.loginOutcome`
 * says. A pasted URL is refused as a state mismatch, as the real channel
 * refuses one for another login. The real attempt has its own tests.
 */
export function fakeLoginAttempt(fakes: Fakes, calls: Calls, gates: Gates) {
  const details = (flow: LoginFlow): LoginReadyDetails =>
    flow === 'browser'
      ? { flow, authUrl: new Secret('http://127.0.0.1:1455/oauth/authorize?state=secret-state') }
      : { flow, verificationUrl: 'https://auth.openai.com/codex/device', userCode: new Secret('ABCD-EFGH') };
  const attempt = setup({
    types: {
      input: {} as LoginAttemptInput,
      context: {} as LoginAttemptInput & { output: LoginAttemptOutput | null },
      events: {} as { type: 'attempt.paste'; requestId: string; redirectUrl: Secret },
      output: {} as LoginAttemptOutput,
    },
    actors: {
      start: fromPromise<void, LoginAttemptInput>(async ({ input, signal }) => {
        calls.loginStart.push({ loginId: input.loginId, flow: input.flow, deadlineMs: input.deadlineMs });
        await gates.pass('loginStart', signal, calls);
        if (fakes.loginOutcome === 'startFail') throw START_FAILURE;
      }),
      finish: fromPromise<LoginAttemptOutput, LoginAttemptInput>(async ({ input }) => {
        const outcome = fakes.loginOutcome ?? 'hang';
        if (outcome === 'hang' || outcome === 'startFail') return new Promise<never>(() => {});
        if (outcome === 'fail') return { loginId: input.loginId, status: 'failed', error: 'Login server error: Token exchange failed: invalid_grant' };
        return { loginId: input.loginId, status: 'succeeded', auth: outcome };
      }),
    },
  }).createMachine({
    context: ({ input }) => ({ ...input, output: null }),
    initial: 'starting',
    // Every paste is answered, as the real attempt answers it in any state: refused as another
    // login's URL while waiting, as not waiting (yet) otherwise.
    // `fakes.paste` changes that: `accept` answers it as redeemed, `hang` leaves it unanswered.
    on: {
      'attempt.paste': [
        { guard: () => fakes.paste === 'hang' },
        {
          actions: sendParent(({ context, event, self }) => {
            const waiting = self.getSnapshot().matches('waiting');
            const answer = { type: 'loginAttempt.pasteAnswered', loginId: context.loginId, requestId: event.requestId } as const;
            if (waiting && fakes.paste === 'accept') return { ...answer, ok: true } satisfies LoginAttemptReport;
            return {
              ...answer,
              ok: false,
              failure: waiting
                ? { kind: 'redirectStateMismatch' }
                : { kind: 'loginNotWaiting', message: 'the login is not waiting for a redirect URL' },
            } satisfies LoginAttemptReport;
          }),
        },
      ],
    },
    states: {
      starting: {
        invoke: {
          src: 'start',
          input: ({ context }) => context,
          onDone: {
            target: 'waiting',
            actions: sendParent(({ context }) => ({ type: 'loginAttempt.ready', loginId: context.loginId, details: details(context.flow) }) satisfies LoginAttemptReport),
          },
          onError: {
            target: 'ended',
            actions: [
              assign({ output: ({ context }) => ({ loginId: context.loginId, status: 'notStarted', failure: START_FAILURE }) as const }),
              sendParent(({ context }) => ({ type: 'loginAttempt.startFailed', loginId: context.loginId, failure: START_FAILURE }) satisfies LoginAttemptReport),
            ],
          },
        },
      },
      waiting: {
        invoke: {
          src: 'finish',
          input: ({ context }) => context,
          onDone: { target: 'ended', actions: assign({ output: ({ event }) => event.output }) },
        },
      },
      ended: { type: 'final' },
    },
    output: ({ context }) => context.output!,
  });
  // `provide` types an actor by the default it replaces; the stand-in keeps its input, reports and output.
  return attempt as unknown as typeof loginAttemptMachine;
}

export interface MachineOptions {
  clock?: SimulatedClock;
  /** Gates held from the start (before the actor starts loading). */
  hold?: Gate[];
  hostRefreshTimeoutMs?: number;
  /** The model providers of config.toml (default: only OpenAI). */
  modelProviders?: ModelProviders;
}

/**
 * The account machine with fake storage, HTTP, host and login attempts,
 * started, plus helpers to talk to it as the adapter does: events are sent
 * at once (never waiting for the machine to be idle) and each reply is
 * matched to its request by id. `fakes` is read when each effect runs, so a
 * test may change it between requests.
 */
export function startMachine(policy: Policy = NO_POLICY, fakes: Fakes = {}, options: MachineOptions = {}) {
  const calls = noCalls();
  const gates = new Gates();
  for (const gate of options.hold ?? []) gates.hold(gate);
  const machine = accountMachine.provide({
    actors: {
      loadCredentials: fromPromise<StoredAuth | null, void>(async ({ signal }) => {
        await gates.pass('load', signal, calls);
        if (fakes.loadFails) throw { kind: 'authFileCorrupt', message: 'auth.json is not valid JSON' };
        if (fakes.buggy?.includes('load')) throw new TypeError('bug in loading');
        return fakes.stored ?? null;
      }),
      saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(async ({ input, signal }) => {
        calls.save++;
        await gates.pass('save', signal, calls);
        if (fakes.saveFails) throw { kind: 'storageFailed', message: 'failed to save api key: disk full' };
        if (fakes.buggy?.includes('save')) throw new TypeError('bug in saving');
        return input.auth;
      }),
      clearCredentials: fromPromise<void, ClearCredentialsInput>(async ({ input, signal }) => {
        calls.clear.push({ revokeToken: input.revokeToken?.reveal() ?? null });
        await gates.pass('clear', signal, calls);
        if (fakes.buggy?.includes('clear')) throw new TypeError('bug in clearing');
      }),
      session: fakeSession(fakes, calls, gates),
      loginAttempt: fakeLoginAttempt(fakes, calls, gates),
    },
  });
  const input = {
    policy,
    ...(options.hostRefreshTimeoutMs === undefined ? {} : { hostRefreshTimeoutMs: options.hostRefreshTimeoutMs }),
    ...(options.modelProviders === undefined ? {} : { modelProviders: options.modelProviders }),
  };
  const actor = createActor(machine, { input, ...(options.clock ? { clock: options.clock } : {}) });
  const emitted: AccountEmitted[] = [];
  const owed = new Map<string, (reply: Reply) => void>();
  const replies = new Map<string, number>();
  actor.on('*', (e: AccountEmitted) => {
    emitted.push(e);
    if (e.type !== 'reply') return;
    replies.set(e.requestId, (replies.get(e.requestId) ?? 0) + 1);
    owed.get(e.requestId)?.(e);
    owed.delete(e.requestId);
  });
  actor.start();
  let next = 0;

  /**
   * Lets every fake effect that is due finish: they settle within promise
   * jobs, so a few event-loop turns without anything new is quiet.
   */
  const settle = () => {
    let seen: unknown[] = [emitted.length, actor.getSnapshot()];
    return quiet(() => {
      const now = [emitted.length, actor.getSnapshot()];
      const changed = now.some((v, i) => v !== seen[i]);
      seen = now;
      return changed;
    });
  };

  /** Sends a request at once, whatever the machine is doing; the promise is its reply. */
  function send(request: RequestInput): Promise<Reply> & { requestId: string } {
    const requestId = `r${++next}`;
    const reply = new Promise<Reply>((resolve) => owed.set(requestId, resolve));
    actor.send({ ...request, requestId } as RequestEvent);
    return Object.assign(reply, { requestId });
  }

  /** Sends a request and resolves with its reply once what followed it has settled (a host waiting for each answer). */
  async function request(input: RequestInput): Promise<Reply> {
    const reply = await send(input);
    await settle();
    return reply;
  }

  /** The credentials mode: `loading`, `loggedOut`, `apiKey`, `chatgpt`, `externalTokens`, `saving` or `clearing`. */
  const mode = (): string => {
    const value = (actor.getSnapshot().value as { credentials: string | { chatgptSession: string } }).credentials;
    return typeof value === 'string' ? value : value.chatgptSession;
  };

  /** The login region: `idle`, or a pending login `starting` or `waiting` for the user. */
  const pending = (): string => {
    const value = (actor.getSnapshot().value as { login: string | { chatgptPending: string } }).login;
    return typeof value === 'string' ? value : value.chatgptPending;
  };

  /** The session child's state value, or `undefined` when no ChatGPT credentials are active. */
  const session = () => (actor.getSnapshot().children.session?.getSnapshot() as { value: unknown } | undefined)?.value;

  /** Requests sent so far that got no reply, and requests that got more than one. */
  const unanswered = () => {
    const ids = Array.from({ length: next }, (_, i) => `r${i + 1}`);
    return { none: ids.filter((id) => !replies.has(id)), several: ids.filter((id) => (replies.get(id) ?? 0) > 1) };
  };

  return {
    actor,
    emitted,
    calls,
    fakes,
    send,
    request,
    settle,
    mode,
    pending,
    session,
    unanswered,
    hold: (gate: Gate) => gates.hold(gate),
    release: (gate: Gate) => gates.release(gate),
  };
}

export type Harness = ReturnType<typeof startMachine>;

export function externalLogin(accountId: string, opts: { experimentalApi?: boolean; decodable?: boolean; planType?: string | null; token?: string } = {}): RequestInput {
  return {
    type: 'login.externalTokens',
    experimentalApi: opts.experimentalApi ?? true,
    accessToken: new Secret(opts.token ?? `access-${accountId}`),
    accountId,
    planType: opts.planType ?? null,
    claims: opts.decodable === false ? null : claims(accountId),
  };
}

/** `account/login/start` for a browser or device login; the adapter makes the login id. */
export function chatgptLogin(flow: LoginFlow = 'browser'): RequestInput {
  return { type: 'login.chatgpt', flow, loginId: fakeLoginId() };
}

export const rateLimits: RequestInput = { type: 'rateLimits.read', params: {} };
