import * as z from 'zod/mini';
import { fromPromise } from 'xstate';
import type { ClearCredentialsInput } from '../../machines/account-machine.js';
import type { StoredAuth, WorkspaceRouting } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import {
  sessionMachine,
  type DiscoverRoutingInput,
  type HostRefreshInput,
  type HostRefreshOutput,
} from '../../machines/session-machine.js';
import { HOST_REFRESH_TEXT } from '../../machines/wording.js';
import type { Logger } from '../log.js';
import { HostRequestError, type HostPort } from '../rpc/host.js';
import { deadline, issuerHeaders, type HttpDeps } from './backend.js';
import { discoverRouting } from './discovery.js';
import { readClaims } from './jwt.js';
import type { CredentialStore } from './store.js';

export const CLIENT_ID = 'app_EMoamEEZ73f0CkXaXp7hrann';

/** What the real effects need; tests build the same with a temp home and loopback URLs. */
export interface Deps extends HttpDeps {
  store: CredentialStore;
  revokeTokenUrl: string;
  log: Logger;
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
      body: JSON.stringify({ token: input.revokeToken.reveal(), token_type_hint: 'refresh_token', client_id: CLIENT_ID }),
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
      throw { kind: 'internal', message: HOST_REFRESH_TEXT.failed(error.code ?? 0) };
    }
    if (error instanceof HostRequestError && error.why === 'timeout') {
      throw { kind: 'internal', message: HOST_REFRESH_TEXT.timedOut(input.timeoutMs) };
    }
    throw { kind: 'internal', message: HOST_REFRESH_TEXT.invalid };
  }
  const claims = readClaims(answer.accessToken);
  if (claims === null) throw { kind: 'invalidToken', message: HOST_REFRESH_TEXT.invalid };
  return {
    accessToken: new Secret(answer.accessToken),
    accountId: answer.chatgptAccountId,
    planType: answer.chatgptPlanType ?? null,
    claims,
  };
}

/**
 * The production effects, built inside `startServer` once the connection
 * exists, and handed to the machine with `accountMachine.provide({ actors })`.
 * Every effect passes its actor's `signal` on, so a stopped effect stops
 * doing I/O (and a stopped save never writes).
 */
export function createActors(deps: Deps, ports: { host: HostPort }) {
  return {
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
      },
    }),
  };
}
