import * as z from 'zod/mini';
import type { ClientIdentity, FailureKind, StoredChatgpt } from '../../../machines/account-types.js';
import { Secret } from '../../../machines/secret.js';
import { AuthError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { readClaims } from '../jwt.js';
import { epochNanosNow, formatLastRefresh } from './auth-record.js';
import { statusLine, transportDetail } from './http-errors.js';
import { OAUTH_CLIENT_ID } from './oauth.js';
import { withDeadline } from './token-endpoint.js';

/** Why a refresh runs (SPEC §8): `forced` for `account/read {refreshToken:true}`, `unauthorized_recovery` after a 401. */
export type RefreshReason = 'forced' | 'unauthorized_recovery' | (string & {});

export interface RefreshDeps {
  fetch: typeof fetch;
  refreshTokenUrl: string;
  timeoutMs: number;
  log: Logger;
  /** Used until `initialize` names the client. */
  defaultUserAgent: string;
  now?: () => bigint;
}

export interface RefreshInput {
  stored: StoredChatgpt;
  client: ClientIdentity | null;
  reason: RefreshReason;
}

const RefreshResponseSchema = z.looseObject({
  id_token: z.optional(z.nullable(z.string())),
  access_token: z.optional(z.nullable(z.string())),
  refresh_token: z.optional(z.nullable(z.string())),
});

const PERMANENT: Record<string, FailureKind> = {
  refresh_token_expired: 'refreshTokenExpired',
  refresh_token_reused: 'refreshTokenReused',
  refresh_token_invalidated: 'refreshTokenInvalidated',
};

/** The error code of a 401 body: `{"error":{"code":…}}`, `{"error":"…"}` or `{"code":"…"}` (SPEC §8.1). */
export function refreshErrorCode(body: string): string | null {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof json !== 'object' || json === null) return null;
  const o = json as Record<string, unknown>;
  const error = o.error;
  if (typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string') {
    return (error as { code: string }).code;
  }
  if (typeof error === 'string') return error;
  return typeof o.code === 'string' ? o.code : null;
}

/**
 * SPEC §8.1: a 401 is permanent, its code picks the reference text
 * (`refreshTokenExpired|Reused|Invalidated`, else `refreshTokenRejected`);
 * anything else is transient (`refreshFailed`). Stored credentials stay as they are.
 */
export function classifyRefreshFailure(status: number, body: string): AuthError {
  if (status === 401) return new AuthError(PERMANENT[refreshErrorCode(body) ?? ''] ?? 'refreshTokenRejected');
  return new AuthError('refreshFailed', `Failed to refresh token: ${statusLine(status)}`);
}

/**
 * The managed refresh grant (SPEC §8): JSON body in the reference's key order,
 * headers `originator` and `User-Agent`. Resolves with the credentials to store:
 * new tokens (a missing one keeps the old), the id token's claims, the API key
 * kept, `last_refresh` now. Never logs or throws a token.
 */
export async function refreshChatgptTokens(deps: RefreshDeps, input: RefreshInput, signal?: AbortSignal): Promise<StoredChatgpt> {
  const url = deps.refreshTokenUrl;
  let response: Response;
  let text: string;
  try {
    response = await deps.fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        originator: input.client?.originator ?? 'codex_cli_rs',
        'User-Agent': input.client?.userAgent ?? deps.defaultUserAgent,
      },
      body: JSON.stringify({
        client_id: OAUTH_CLIENT_ID,
        grant_type: 'refresh_token',
        refresh_reason: input.reason,
        refresh_token: input.stored.refreshToken.reveal(),
      }),
      signal: withDeadline(signal, deps.timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new AuthError('refreshFailed', `Failed to refresh token: ${transportDetail(url, error)}`);
  }
  if (!response.ok) {
    const failure = classifyRefreshFailure(response.status, text);
    deps.log.warn(`token refresh answered ${statusLine(response.status)} (${failure.kind})`);
    throw failure;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AuthError('refreshFailed', 'Failed to refresh token: error decoding response body: not JSON');
  }
  const parsed = RefreshResponseSchema.safeParse(json);
  if (!parsed.success) throw new AuthError('refreshFailed', 'Failed to refresh token: error decoding response body');
  const { id_token, access_token, refresh_token } = parsed.data;
  const claims = id_token ? readClaims(id_token) : input.stored.claims;
  if (claims === null) throw new AuthError('refreshFailed', 'Failed to refresh token: the new id_token is not a JWT');
  return {
    ...input.stored,
    idToken: id_token ? new Secret(id_token) : input.stored.idToken,
    accessToken: access_token ? new Secret(access_token) : input.stored.accessToken,
    refreshToken: refresh_token ? new Secret(refresh_token) : input.stored.refreshToken,
    accountId: claims.accountId ?? input.stored.accountId,
    claims,
    lastRefresh: formatLastRefresh((deps.now ?? epochNanosNow)()),
  };
}
