import { decodeJwt } from 'jose';
import type { TokenClaims } from '../../machines/account-types.js';

const AUTH_CLAIM = 'https://api.openai.com/auth';

const stringOrNull = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * Reads the claims the server uses from a JWT, without checking its signature
 * or expiry (SPEC §3.0). Returns `null` when the token is not a decodable JWT.
 * jose's `decodeJwt` does the base64url/JSON work.
 */
export function readClaims(token: string): TokenClaims | null {
  let payload: Record<string, unknown>;
  try {
    payload = decodeJwt(token);
  } catch {
    return null;
  }
  const auth = payload[AUTH_CLAIM];
  const inner = typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>) : {};
  return {
    email: stringOrNull(payload.email),
    // `user_id` when `chatgpt_user_id` is absent (SPEC-account-surface §20).
    userId: stringOrNull(inner.chatgpt_user_id) ?? stringOrNull(inner.user_id),
    accountId: stringOrNull(inner.chatgpt_account_id),
    planType: stringOrNull(inner.chatgpt_plan_type),
  };
}

/** The `exp` claim of a JWT in milliseconds, or `null` (not a JWT, no `exp`). */
export function expiresAtMs(token: string): number | null {
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** SPEC §8.1: a managed login refreshes before a call once `last_refresh` is 8 days old… */
export const REFRESH_AFTER_MS = 8 * 24 * 60 * 60 * 1000;
/** …or when its access token expires within 5 minutes. */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60 * 1000;

/** Whether managed credentials are due for a proactive refresh at `now` (SPEC §8.1). */
export function isRefreshDue(lastRefresh: string | null, accessToken: string, now: number): boolean {
  const refreshedAt = lastRefresh === null ? Number.NaN : Date.parse(lastRefresh);
  if (!Number.isNaN(refreshedAt) && now - refreshedAt > REFRESH_AFTER_MS) return true;
  const exp = expiresAtMs(accessToken);
  return exp !== null && exp - now < REFRESH_BEFORE_EXPIRY_MS;
}
