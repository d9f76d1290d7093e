import * as z from 'zod/mini';
import { watch, type FSWatcher } from 'node:fs';
import { fromCallback, fromPromise } from 'xstate';
import type { ClearCredentialsInput } from '../../machines/account-machine.js';
import type { AccountEvent, StoredAuth, StoredChatgpt, WorkspaceRouting } from '../../machines/account-types.js';
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
import type { BackendSend } from './account-surface.js';
import { HOST_REFRESH_TEXT } from '../../machines/wording.js';
import type { Logger } from '../log.js';
import { HostRequestError, type HostPort } from '../rpc/host.js';
import { deadline, issuerHeaders, type HttpDeps } from './backend.js';
import { discoverRouting } from './discovery.js';
import { isRefreshDue, readClaims } from './jwt.js';
import { createLoginActors } from './login/actors.js';
import { OAUTH_CLIENT_ID } from './login/client-id.js';
import type { CredentialStore } from './store.js';
import { SERVER_REQUESTS } from '../protocol/methods.js';
import { ChatgptAuthTokensRefreshResultSchema, type ChatgptAuthTokensRefreshParams } from '../protocol/server-requests.js';

/** What the real effects need; tests build the same with a temp home and loopback URLs. */
export interface Deps extends HttpDeps {
  store: CredentialStore;
  revokeTokenUrl: string;
  refreshTokenUrl: string;
  issuer: string;
  loginPorts: readonly number[];
  log: Logger;
  /** Where `auth.json` lives, to notice other processes' changes; absent: nothing is watched. */
  watchDir?: string;
  /** The OS keyring cannot be watched: with a keyring store, its item is checked this often (ms). */
  pollMs?: number;
  /** Replaces the account surface's per-method deadlines (SPEC-account-surface §12.4) when set. */
  backendDeadlineMs?: number | null;
}

/**
 * Notices when another process (Codex, another server) changes `auth.json`:
 * an inotify watch on `CODEX_HOME`, debounced, then the store's own version
 * check, so this process's writes are not reported back to it.
 */
function watchCredentials(deps: Deps) {
  return fromCallback<AccountEvent>(({ sendBack }) => {
    const dir = deps.watchDir;
    if (!dir) return () => {};
    let timer: NodeJS.Timeout | undefined;
    let watcher: FSWatcher | undefined;
    let poll: NodeJS.Timeout | undefined;
    const check = async () => {
      try {
        const snapshot = await deps.store.changedElsewhere();
        deps.log.debug(() => `watch: auth.json ${snapshot ? 'changed elsewhere' : 'unchanged'}`);
        if (snapshot) sendBack({ type: 'credentials.reloaded', auth: snapshot.auth });
      } catch (error) {
        deps.log.debug(() => 'watch: auth.json unreadable');
        sendBack({ type: 'credentials.unreadable', failure: toFailure(error, 'authFileCorrupt') });
      }
    };
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        deps.log.debug(() => `watch: ${String(name)} changed`);
        if (name !== 'auth.json') return;
        clearTimeout(timer);
        timer = setTimeout(() => void check(), 25);
      });
      watcher.on('error', (error) => deps.log.info(`stopped watching ${dir}: ${error.name}`));
    } catch (error) {
      // No CODEX_HOME yet (nothing stored): changes by other processes are noticed after a restart.
      deps.log.info(`not watching ${dir} for other processes' sign-ins: ${(error as Error).name}`);
    }
    if (deps.pollMs) {
      poll = setInterval(() => void check(), deps.pollMs);
      poll.unref();
    }
    return () => {
      clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    };
  });
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
  let answer: z.infer<typeof ChatgptAuthTokensRefreshResultSchema>;
  try {
    answer = await host.request({
      method: SERVER_REQUESTS.chatgptAuthTokensRefresh,
      params: { reason: 'unauthorized', previousAccountId: input.previousAccountId } satisfies ChatgptAuthTokensRefreshParams,
      result: ChatgptAuthTokensRefreshResultSchema,
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
  const options = { chatgptBaseUrl: deps.chatgptBaseUrl, timeoutMs: deps.timeoutMs, signal, secrets: [input.accessToken.reveal()], log: deps.log };
  // Proactive refresh (SPEC §8.1): a first call with managed credentials that are due goes through the 401 loop's one refresh.
  if (!input.retried && input.managedLastRefresh !== undefined && isRefreshDue(input.managedLastRefresh, input.accessToken.reveal(), Date.now())) {
    deps.log.info('managed credentials are due for a refresh (last_refresh over 8 days, or the access token expires within 5 minutes)');
    return { job, status: 'unauthorized', failure: { kind: 'backendUnauthorized', message: 'credentials due for a refresh' } };
  }
  try {
    let result: unknown;
    switch (input.call.kind) {
      case 'rateLimits':
        result = await readRateLimits(send, input.call.params, options);
        break;
      default: {
        // The account surface (SPEC-account-surface §13–§17), loaded on first use; each call carries its own deadline.
        const { callSurface } = await import('./account-surface.js');
        const sendSurface: BackendSend = (path, { timeoutMs, ...init }) =>
          backendRequest({ ...deps, timeoutMs }, credentials, input.client, path, init);
        result = await callSurface(sendSurface, input.call, { ...options, deadlineMs: deps.backendDeadlineMs ?? null });
      }
    }
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
    watchCredentials: watchCredentials(deps),
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
