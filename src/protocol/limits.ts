/**
 * Bounds of `capabilities.chatgptAuthTokensRefreshTimeoutMs` (and its environment default), in ms.
 * Without zod, so the start-up stage (src/rpc/initialize.ts) checks the same range.
 */
export const HOST_REFRESH_TIMEOUT_RANGE = { min: 1, max: 600_000 } as const;
