import type { StoredChatgpt } from '../../../machines/account-types.js';
import type { ExchangedTokens } from '../../../machines/login-attempt-types.js';
import type { Secret } from '../../../machines/secret.js';
import { OAUTH_CLIENT_ID, randomBase64Url } from './oauth.js';

/** Wall-clock time in nanoseconds since the epoch (microsecond resolution). */
export function epochNanosNow(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** `2026-11-25T00:24:43.123456789Z`: UTC with 9 fractional digits, as Codex writes `last_refresh` (SPEC §5). */
export function formatLastRefresh(epochNanos: bigint): string {
  const ms = epochNanos / 1_000_000n;
  const seconds = new Date(Number(ms)).toISOString().slice(0, 19);
  const fraction = ((epochNanos % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return `${seconds}.${fraction.toString().padStart(9, '0')}Z`;
}

export interface ChatgptRecordOptions {
  issuer: string;
  now?: () => bigint;
}

/**
 * The `auth.json` record of a fresh ChatGPT login (SPEC §5), as the existing
 * `StoredChatgpt`: `account_id` from the id token, the exchanged API key (or
 * `null`), `oauth_provenance` naming this issuer and client, a new
 * `login_owner_id` (32 random bytes), and `last_refresh` now.
 */
export function buildChatgptRecord(tokens: ExchangedTokens, apiKey: Secret | null, o: ChatgptRecordOptions): StoredChatgpt {
  return {
    kind: 'chatgpt',
    idToken: tokens.idToken,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    accountId: tokens.claims.accountId,
    apiKey,
    oauthProvenance: { issuer: o.issuer, clientId: OAUTH_CLIENT_ID },
    loginOwnerId: randomBase64Url(32),
    claims: tokens.claims,
    lastRefresh: formatLastRefresh((o.now ?? epochNanosNow)()),
  };
}
