import * as z from 'zod/mini';
import type { RoutingOverride, WorkspaceRouting } from '../../machines/account-types.js';
import type { DiscoverRoutingInput } from '../../machines/session-machine.js';
import { AuthError } from '../errors.js';
import { backendRequest, type HttpDeps } from './backend.js';
import { backendUrl } from './backend-url.js';

export type { HttpDeps } from './backend.js';

const AccountsCheckSchema = z.object({
  accounts: z.array(
    z.looseObject({
      id: z.string(),
      name: z.nullish(z.string()),
      workspace_backend_origin: z.nullish(z.string()),
      account_routing_override: z.nullish(z.string()),
    }),
  ),
});

const OVERRIDES: readonly RoutingOverride[] = ['NO_CONSTRAINT', 'us', 'us_cr'];

/**
 * Workspace routing discovery (SPEC §9.2): `GET {base}wham/accounts/check`.
 * Every failure to get a usable answer reads `workspace routing discovery failed`
 * (a 401 too, once the session's recovery did not help); the detail goes to stderr.
 */
export async function discoverRouting(deps: HttpDeps, input: DiscoverRoutingInput, signal?: AbortSignal): Promise<WorkspaceRouting> {
  const { accountId } = input;
  if (accountId === null || accountId === '') throw new AuthError('accountIdMissing');
  const url = backendUrl(deps.chatgptBaseUrl, 'accounts/check');
  let body: unknown;
  try {
    const response = await backendRequest(deps, { accessToken: input.accessToken, accountId }, input.client, 'accounts/check', { signal });
    if (!response.ok) {
      deps.log.warn(`routing discovery: GET ${url} answered ${response.status}`);
      // A 401 starts the session's recovery (a refresh, then discovery once more).
      throw new AuthError(response.status === 401 ? 'backendUnauthorized' : 'discoveryFailed');
    }
    body = await response.json();
  } catch (error) {
    if (error instanceof AuthError) throw error;
    deps.log.warn(`routing discovery: GET ${url} failed: ${(error as Error).message}`);
    throw new AuthError('discoveryFailed');
  }
  const parsed = AccountsCheckSchema.safeParse(body);
  if (!parsed.success) {
    deps.log.warn(`routing discovery: GET ${url} returned an unexpected body`);
    throw new AuthError('discoveryFailed');
  }
  const entry = parsed.data.accounts.find((a) => a.id === accountId);
  if (!entry) throw new AuthError('workspaceMissing');
  const override = entry.account_routing_override;
  return {
    accountId,
    backendOrigin: entry.workspace_backend_origin ?? new URL(deps.chatgptBaseUrl).origin,
    accountRoutingOverride: OVERRIDES.includes(override as RoutingOverride) ? (override as RoutingOverride) : 'NO_CONSTRAINT',
    workspaceName: entry.name ?? null,
  };
}
