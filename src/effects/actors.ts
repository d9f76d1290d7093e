import { fromPromise } from 'xstate';
import type { ClearCredentialsInput, DiscoverRoutingInput } from '../../machines/account-machine.js';
import type { StoredAuth, WorkspaceRouting } from '../../machines/account-types.js';
import type { Logger } from '../log.js';
import { discoverRouting, type HttpDeps } from './discovery.js';
import type { CredentialStore } from './storage.js';

export const CLIENT_ID = 'app_EMoamEEZ73f0CkXaXp7hrann';

/** What the real effects need; tests build the same with a temp home and loopback URLs. */
export interface Deps extends HttpDeps {
  store: CredentialStore;
  revokeTokenUrl: string;
  log: Logger;
}

/**
 * Best-effort refresh-token revocation before logout (SPEC §8.3). A failure
 * is logged and the local logout goes on: the user asked to be logged out.
 */
async function revokeRefreshToken(deps: Deps, input: ClearCredentialsInput): Promise<void> {
  if (input.revokeToken === null) return;
  try {
    const response = await deps.fetch(deps.revokeTokenUrl, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        originator: input.client?.originator ?? 'codex_cli_rs',
        'User-Agent': input.client?.userAgent ?? deps.defaultUserAgent,
      },
      body: JSON.stringify({ token: input.revokeToken.reveal(), token_type_hint: 'refresh_token', client_id: CLIENT_ID }),
      signal: AbortSignal.timeout(deps.timeoutMs),
    });
    if (!response.ok) deps.log.warn(`token revocation answered ${response.status}; logging out locally anyway`);
  } catch (error) {
    deps.log.warn(`token revocation failed (${(error as Error).message}); logging out locally anyway`);
  }
}

/** The production effects, handed to the machine with `accountMachine.provide({ actors })`. */
export function createActors(deps: Deps) {
  return {
    loadCredentials: fromPromise<StoredAuth | null, void>(() => deps.store.load()),
    saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(({ input }) => deps.store.save(input.auth)),
    clearCredentials: fromPromise<void, ClearCredentialsInput>(async ({ input }) => {
      await revokeRefreshToken(deps, input);
      await deps.store.clear();
    }),
    discoverRouting: fromPromise<WorkspaceRouting, DiscoverRoutingInput>(({ input }) => discoverRouting(deps, input)),
  };
}
