import { createActor, fromPromise, waitFor } from 'xstate';
import { accountMachine, type ClearCredentialsInput, type StartLoginInput } from '../../machines/account-machine.js';
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

/** The account machine with fake storage/HTTP, started, plus helpers to talk to it. */
export function startMachine(policy: Policy = NO_POLICY, fakes: Fakes = {}) {
  const machine = accountMachine.provide({
    actors: {
      loadCredentials: fromPromise(async () => {
        if (fakes.loadFails) throw { kind: 'authFileCorrupt', message: 'auth.json is not valid JSON' };
        return fakes.stored ?? null;
      }),
      saveCredentials: fromPromise(async ({ input }) => {
        if (fakes.saveFails) throw { kind: 'storageFailed', message: 'failed to save api key: disk full' };
        return input.auth;
      }),
      clearCredentials: fromPromise<void, ClearCredentialsInput>(async () => {}),
      discoverRouting: fromPromise(async ({ input }): Promise<WorkspaceRouting> => {
        if (!input.accountId) throw { kind: 'accountIdMissing', message: 'workspace routing requires a ChatGPT account id' };
        if (!(fakes.workspaces ?? ['ws-1']).includes(input.accountId)) {
          throw { kind: 'discoveryFailed', message: 'workspace routing discovery failed' };
        }
        return { accountId: input.accountId, backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT', workspaceName: 'Acme' };
      }),
      startLogin: fromPromise<StartedLogin, StartLoginInput>(async ({ input }) => {
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
    },
  });
  const actor = createActor(machine, { input: { policy } });
  const emitted: AccountEmitted[] = [];
  actor.on('*', (e: AccountEmitted) => emitted.push(e));
  actor.start();
  let next = 0;

  const idle = () => waitFor(actor, (s) => s.hasTag('idle'), { timeout: 1_000 });

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

  return { actor, emitted, request, idle, mode };
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
