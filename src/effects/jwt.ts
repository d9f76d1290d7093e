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
