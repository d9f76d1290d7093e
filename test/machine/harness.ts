import { createActor, fromPromise, waitFor } from 'xstate';
import { accountMachine, type ClearCredentialsInput, type HostRefreshOutput, type StartLoginInput } from '../../machines/account-machine.js';
import type {
  AccountEmitted,
  Policy,
  RequestEvent,
  StartedLogin,
  StoredAuth,
  StoredChatgpt,
  TokenClaims,
  WorkspaceRouting,
} from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';

export type Reply = Extract<AccountEmitted, { type: 'reply' }>;
type Omit2<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never;
export type RequestInput = Omit2<RequestEvent, 'requestId'>;

/** Boundary behaviour the fakes follow; everything else is the real machine. */
export interface Fakes {
  stored?: StoredAuth | null;
  loadFails?: boolean;
  saveFails?: boolean;
  /** Discovery answers for these account ids; others fail. */
  workspaces?: string[];
  /** What a started ChatGPT login does: hang (default), succeed with these credentials, or fail. */
  loginOutcome?: 'hang' | StoredChatgpt | 'fail';
  /** What the host answers to a token refresh request: new tokens (fresh secret) or a failure (default). */
  hostRefresh?: { accountId: string; accessToken: string } | 'fail';
}

/** How often each boundary effect ran, and with what; tests read it to see an effect did (not) happen. */
export interface Calls {
  save: number;
  clear: Array<{ revokeToken: string | null }>;
  discover: Array<{ accountId: string | null; accessToken: string }>;
  startLogin: number;
}

export const NO_POLICY: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: null };

let uuidCounter = 0;
export function fakeLoginId(): string {
  return `00000000-0000-4000-8000-${String(++uuidCounter).padStart(12, '0')}`;
}

export function claims(accountId: string | null, planType: string | null = 'plus'): TokenClaims {
  return { email: 'a@b.c', userId: 'user-1', accountId, planType };
}

export function storedChatgpt(accountId = 'ws-1'): StoredChatgpt {
  return {
    kind: 'chatgpt',
    idToken: new Secret(`id-token-${accountId}`),
    accessToken: new Secret(`access-token-${accountId}`),
    refreshToken: new Secret(`refresh-token-${accountId}`),
    accountId,
    apiKey: new Secret('sk-exchanged'),
    claims: claims(accountId, 'pro'),
    lastRefresh: null,
  };
}

/**
 * The account machine with fake storage/HTTP, started, plus helpers to talk to it.
 * `fakes` is read when each effect runs, so a test may change it between requests.
 */
export function startMachine(policy: Policy = NO_POLICY, fakes: Fakes = {}) {
  const calls: Calls = { save: 0, clear: [], discover: [], startLogin: 0 };
  const machine = accountMachine.provide({
    actors: {
      loadCredentials: fromPromise(async () => {
        if (fakes.loadFails) throw { kind: 'authFileCorrupt', message: 'auth.json is not valid JSON' };
        return fakes.stored ?? null;
      }),
      saveCredentials: fromPromise(async ({ input }) => {
        calls.save++;
        if (fakes.saveFails) throw { kind: 'storageFailed', message: 'failed to save api key: disk full' };
        return input.auth;
      }),
      clearCredentials: fromPromise<void, ClearCredentialsInput>(async ({ input }) => {
        calls.clear.push({ revokeToken: input.revokeToken?.reveal() ?? null });
      }),
      discoverRouting: fromPromise(async ({ input }): Promise<WorkspaceRouting> => {
        calls.discover.push({ accountId: input.accountId, accessToken: input.accessToken.reveal() });
        if (!input.accountId) throw { kind: 'accountIdMissing', message: 'workspace routing requires a ChatGPT account id' };
        if (!(fakes.workspaces ?? ['ws-1']).includes(input.accountId)) {
          throw { kind: 'discoveryFailed', message: 'workspace routing discovery failed' };
        }
        return { accountId: input.accountId, backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT', workspaceName: 'Acme' };
      }),
      startLogin: fromPromise<StartedLogin, StartLoginInput>(async ({ input }) => {
        calls.startLogin++;
        const details: Record<string, string> =
          input.flow === 'browser' ? { authUrl: 'http://127.0.0.1:1455/auth' } : { verificationUrl: 'v', userCode: 'ABCD-EFGH' };
        return { loginId: fakeLoginId(), details };
      }),
      awaitLogin: fromPromise(async (): Promise<StoredAuth> => {
        const outcome = fakes.loginOutcome ?? 'hang';
        if (outcome === 'hang') return new Promise<never>(() => {});
        if (outcome === 'fail') throw { kind: 'internal', message: 'Login server error: token exchange failed' };
        return outcome;
      }),
      refreshTokens: fromPromise(async ({ input }) => input.stored),
      requestHostRefresh: fromPromise(async (): Promise<HostRefreshOutput> => {
        const answer = fakes.hostRefresh ?? 'fail';
        if (answer === 'fail') throw { kind: 'internal', message: 'host did not answer' };
        return { accessToken: new Secret(answer.accessToken), accountId: answer.accountId, planType: null, claims: claims(answer.accountId) };
      }),
    },
  });
  const actor = createActor(machine, { input: { policy } });
  const emitted: AccountEmitted[] = [];
  actor.on('*', (e: AccountEmitted) => emitted.push(e));
  actor.start();
  let next = 0;

  const idle = () => waitFor(actor, (s) => s.hasTag('idle'), { timeout: 1_000 });
  /** Lets every fake effect that is due finish (they all settle within microtasks), then waits for idle. */
  const settle = async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await idle();
  };

  /** Sends a request once the machine is idle, as the adapter does, and resolves with its reply. */
  async function request(input: RequestInput): Promise<Reply> {
    await idle();
    const requestId = `r${++next}`;
    const reply = new Promise<Reply>((resolve) => {
      const sub = actor.on('reply', (e) => {
        if (e.requestId === requestId) {
          sub.unsubscribe();
          resolve(e as Reply);
        }
      });
    });
    actor.send({ ...input, requestId } as RequestEvent);
    const result = await reply;
    await idle();
    return result;
  }

  const mode = () => {
    const value = actor.getSnapshot().value;
    return typeof value === 'string' ? value : Object.keys(value)[0]!;
  };

  return { actor, emitted, calls, fakes, request, idle, settle, mode };
}

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
