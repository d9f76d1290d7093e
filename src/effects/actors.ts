import * as z from 'zod/mini';
import { fromPromise } from 'xstate';
import type { ClearCredentialsInput } from '../../machines/account-machine.js';
import type { StoredAuth, StoredChatgpt, WorkspaceRouting } from '../../machines/account-types.js';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import { Secret } from '../../machines/secret.js';
import {
  sessionMachine,
  type DiscoverRoutingInput,
  type HostRefreshInput,
  type HostRefreshOutput,
  type BackendCallInput,
  type BackendCallOutput,
  type RefreshTokensInput,
} from '../../machines/session-machine.js';
import { toFailure } from '../../machines/account-guards.js';
import { backendRequest } from './backend.js';
import { readRateLimits } from './rate-limits.js';
import { HOST_REFRESH_TEXT } from '../../machines/wording.js';
import type { Logger } from '../log.js';
import { HostRequestError, type HostPort } from '../rpc/host.js';
import { deadline, issuerHeaders, type HttpDeps } from './backend.js';
import { discoverRouting } from './discovery.js';
import { readClaims } from './jwt.js';
import { createLoginActors } from './login/actors.js';
import { OAUTH_CLIENT_ID } from './login/oauth.js';
import type { CredentialStore } from './store.js';

/** What the real effects need; tests build the same with a temp home and loopback URLs. */
export interface Deps extends HttpDeps {
  store: CredentialStore;
  revokeTokenUrl: string;
  refreshTokenUrl: string;
  issuer: string;
  loginPorts: readonly number[];
  log: Logger;
}

/**
 * The managed refresh (SPEC §8, §8.1) as one credential transaction: under
 * the store's lock (Codex's `auth.lock` across processes), read what is
 * stored; if another process already rotated the tokens, use its result;
 * otherwise redeem the refresh token and persist the rotation before the
 * lock is released. A rotated refresh token is never redeemed twice.
 */
async function refreshManaged(deps: Deps, input: RefreshTokensInput, signal: AbortSignal): Promise<StoredChatgpt> {
  const { refreshChatgptTokens } = await import('./login/refresh.js');
  return deps.store.transact(async (tx) => {
    const current = (await tx.read()).auth;
    if (
      current?.kind === 'chatgpt' &&
      current.refreshToken.reveal() !== input.stored.refreshToken.reveal() &&
      current.accountId === input.stored.accountId
    ) {
      deps.log.info('another process refreshed the tokens; using its result');
      return current;
    }
    const refreshed = await refreshChatgptTokens(deps, { stored: input.stored, client: input.client, reason: input.reason }, signal);
    await tx.write(refreshed);
    return refreshed;
  }, signal);
}

/** The host's answer to `account/chatgptAuthTokens/refresh` (SPEC §9.3). */
export const HostRefreshResultSchema = z.object({
  accessToken: z.string(),
  chatgptAccountId: z.string(),
  chatgptPlanType: z.optional(z.nullable(z.string())),
});

/**
 * Best-effort refresh-token revocation before logout (SPEC §8.3). A failure
 * is logged and the local logout goes on: the user asked to be logged out.
 */
async function revokeRefreshToken(deps: Deps, input: ClearCredentialsInput, signal: AbortSignal): Promise<void> {
  if (input.revokeToken === null) return;
  try {
    const response = await deps.fetch(deps.revokeTokenUrl, {
      method: 'POST',
      headers: issuerHeaders(deps, input.client),
      body: JSON.stringify({ token: input.revokeToken.reveal(), token_type_hint: 'refresh_token', client_id: OAUTH_CLIENT_ID }),
      signal: deadline(deps, signal),
    });
    if (!response.ok) deps.log.warn(`token revocation answered ${response.status}; logging out locally anyway`);
  } catch (error) {
    deps.log.warn(`token revocation failed (${(error as Error).name}); logging out locally anyway`);
  }
}

/** Asks the host for new tokens and checks them (SPEC §9.3); the chart owns the deadline. */
async function askHostForTokens(host: HostPort, input: HostRefreshInput, signal: AbortSignal): Promise<HostRefreshOutput> {
  let answer: z.infer<typeof HostRefreshResultSchema>;
  try {
    answer = await host.request({
      method: 'account/chatgptAuthTokens/refresh',
      params: { reason: 'unauthorized', previousAccountId: input.previousAccountId },
      result: HostRefreshResultSchema,
      // A little past the chart's own `after`, which fires first and words the timeout.
      timeoutMs: input.timeoutMs + 1_000,
      signal,
    });
  } catch (error) {
    if (error instanceof HostRequestError && error.why === 'error') {
      throw { kind: 'hostRefreshFailed', message: HOST_REFRESH_TEXT.failed(error.code ?? 0) };
    }
    if (error instanceof HostRequestError && error.why === 'timeout') {
      throw { kind: 'hostRefreshTimeout', message: HOST_REFRESH_TEXT.timedOut(input.timeoutMs) };
    }
    throw { kind: 'hostRefreshFailed', message: HOST_REFRESH_TEXT.invalid };
  }
  const claims = readClaims(answer.accessToken);
  if (claims === null) throw { kind: 'hostRefreshFailed', message: HOST_REFRESH_TEXT.invalid };
  return {
    accessToken: new Secret(answer.accessToken),
    accountId: answer.chatgptAccountId,
    planType: answer.chatgptPlanType ?? null,
    claims,
  };
}

/**
 * One backend call of a request, through the one authorised request path.
 * A 401 is reported as `unauthorized` (the session decides whether to
 * refresh and retry), never thrown.
 */
async function callBackend(deps: Deps, input: BackendCallInput, signal: AbortSignal): Promise<BackendCallOutput> {
  const job = { requestId: input.requestId, call: input.call, retried: input.retried, credentialsVersion: input.credentialsVersion };
  const credentials = { accessToken: input.accessToken, accountId: input.accountId };
  const send = (path: string, headers: Record<string, string>, s: AbortSignal) =>
    backendRequest(deps, credentials, input.client, path, { headers, signal: s });
  try {
    const result = await readRateLimits(send, input.call.params, {
      chatgptBaseUrl: deps.chatgptBaseUrl,
      timeoutMs: deps.timeoutMs,
      signal,
      secrets: [input.accessToken.reveal()],
      log: deps.log,
    });
    return { job, status: 'ok', result };
  } catch (error) {
    const failure = toFailure(error, 'backendFailed');
    return { job, status: failure.kind === 'backendUnauthorized' ? 'unauthorized' : 'failed', failure };
  }
}

/**
 * The production effects, built inside `startServer` once the connection
 * exists, and handed to the machine with `accountMachine.provide({ actors })`.
 * Every effect passes its actor's `signal` on, so a stopped effect stops
 * doing I/O (and a stopped save never writes).
 */
export function createActors(deps: Deps, ports: { host: HostPort }) {
  const loginActors = createLoginActors({
    fetch: deps.fetch,
    issuer: deps.issuer,
    ports: deps.loginPorts,
    timeoutMs: deps.timeoutMs,
    log: deps.log,
    saveCredentials: (auth, signal) => deps.store.save(auth, signal),
  });
  return {
    loginAttempt: loginAttemptMachine.provide({ actors: loginActors }),
    loadCredentials: fromPromise<StoredAuth | null, void>(async () => (await deps.store.read()).auth),
    saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(({ input, signal }) => deps.store.save(input.auth, signal)),
    clearCredentials: fromPromise<void, ClearCredentialsInput>(async ({ input, signal }) => {
      await revokeRefreshToken(deps, input, signal);
      // Logout completes locally even if the revocation was abandoned.
      await deps.store.clear();
    }),
    session: sessionMachine.provide({
      actors: {
        discoverRouting: fromPromise<WorkspaceRouting, DiscoverRoutingInput>(({ input, signal }) =>
          discoverRouting(deps, input, signal),
        ),
        requestHostRefresh: fromPromise<HostRefreshOutput, HostRefreshInput>(({ input, signal }) =>
          askHostForTokens(ports.host, input, signal),
        ),
        refreshTokens: fromPromise<StoredChatgpt, RefreshTokensInput>(({ input, signal }) => refreshManaged(deps, input, signal)),
        backendCall: fromPromise<BackendCallOutput, BackendCallInput>(({ input, signal }) => callBackend(deps, input, signal)),
      },
    }),
  };
}
