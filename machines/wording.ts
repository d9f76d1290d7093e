import type { AuthFailure, FailureKind, LoginFlow, Policy } from './account-types.js';

/**
 * Every text that reaches the wire, in one place: error messages (SPEC §3,
 * §9, §10, in the reference's words) and `account/login/completed.error`
 * texts. `src/rpc/errors.ts` adds codes and `data`; the machine uses the
 * login texts. Texts never hold a secret.
 */

/** Failures the adapter detects itself, before the machine sees a request. */
export type ProtocolErrorKind =
  | 'notInitialized'
  | 'alreadyInitialized'
  | 'unknownMethod'
  | 'invalidParams'
  | 'invalidLoginId'
  // Parameter checks of the account surface, made before the auth gate (SPEC-account-surface §12.1).
  | 'invalidThreadId'
  | 'emptyIdempotencyKey'
  | 'emptyCreditId';

export type ErrorKind = FailureKind | ProtocolErrorKind;

type Text = string | ((failure: AuthFailure & { message?: string }) => string);

const given = (fallback: string) => (f: { message?: string }) => f.message ?? fallback;

const HOST_REFRESH_TEXT_INVALID = 'auth refresh returned invalid credentials';

/** Reference texts of failures that effects raise without a message of their own. */
export const FIXED_MESSAGES = {
  discoveryFailed: 'workspace routing discovery failed',
  workspaceMissing: 'selected workspace missing from routing discovery',
  accountIdMissing: 'workspace routing requires a ChatGPT account id',
  // SPEC §8.1: what the user sees after a 401 from the token endpoint, by its code.
  refreshTokenExpired:
    'Your access token could not be refreshed because your refresh token has expired. Please log out and sign in again.',
  refreshTokenReused:
    'Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again.',
  refreshTokenInvalidated:
    'Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.',
  refreshTokenRejected: 'Your access token could not be refreshed. Please log out and sign in again.',
} as const satisfies Partial<Record<ErrorKind, string>>;

export const ERROR_TEXT: Record<ErrorKind, Text> = {
  notInitialized: 'Not initialized',
  alreadyInitialized: 'Already initialized',
  unknownMethod: given('Invalid request'),
  invalidParams: given('Invalid request'),
  invalidLoginId: given('invalid login id'),
  apiKeyLoginDisabled: 'API key login is disabled. Use ChatGPT login instead.',
  chatgptLoginDisabled: 'ChatGPT login is disabled. Use API key login instead.',
  externalAuthDisabled: 'External ChatGPT auth is disabled. Use API key login instead.',
  externalAuthActive:
    'External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.',
  experimentalApiRequired: 'account/login/start.chatgptAuthTokens requires experimentalApi capability',
  // Rust `{:?}` of a Vec<String> and a String; JSON string escaping matches it for printable text.
  workspaceNotAllowed: (f) =>
    `External auth must use one of workspace(s) [${(f.allowed ?? []).map((id) => JSON.stringify(id)).join(', ')}], ` +
    `but received ${JSON.stringify(f.received ?? '')}.`,
  invalidToken: (f) => `failed to set external auth: ${f.message ?? 'invalid ID token format'}`,
  authFileCorrupt: given('auth.json is not valid'),
  storageFailed: given('storage failed'),
  discoveryFailed: given(FIXED_MESSAGES.discoveryFailed),
  workspaceMissing: FIXED_MESSAGES.workspaceMissing,
  accountIdMissing: FIXED_MESSAGES.accountIdMissing,
  rateLimitsNeedAuth: 'codex account authentication required to read rate limits',
  rateLimitsNeedChatgpt: 'chatgpt authentication required to read rate limits',
  notImplemented: given('not implemented'),
  internal: 'internal error',
  loginServerFailed: given('failed to start login server'),
  deviceCodeFailed: given('failed to request device code'),
  deviceCodeDisabled: 'device code login is not enabled for this Codex server. Use the browser login or verify the server URL.',
  loginFailed: given('Login was not completed'),
  loginNotFound: given('no pending login with this id'),
  loginNotWaiting: given('the login is not waiting for a redirect URL any more'),
  pasteNotSupported: 'only a browser login (type "chatgpt") can be completed with a redirect URL',
  redirectStateMismatch: 'State mismatch',
  invalidRedirectUrl: given('invalid redirect URL'),
  redirectMissingCode: 'Missing authorization code. Sign-in could not be completed.',
  refreshTokenExpired: FIXED_MESSAGES.refreshTokenExpired,
  refreshTokenReused: FIXED_MESSAGES.refreshTokenReused,
  refreshTokenInvalidated: FIXED_MESSAGES.refreshTokenInvalidated,
  refreshTokenRejected: FIXED_MESSAGES.refreshTokenRejected,
  refreshFailed: given('Failed to refresh token'),
  backendFailed: given('backend request failed'),
  backendUnauthorized: given('backend request unauthorized'),
  backendTimeout: given('backend request timed out'),
  hostRefreshFailed: given(HOST_REFRESH_TEXT_INVALID),
  hostRefreshTimeout: given('auth refresh request timed out'),
  refreshWorkspaceNotAllowed: given('Login is restricted to another workspace'),
  keyringUnavailable: given('the OS keyring is unavailable'),
  keyringLocked: given('the OS keyring is locked'),
  invalidThreadId: (f) => `invalid thread id: ${f.message ?? ''}`,
  emptyIdempotencyKey: 'idempotencyKey must not be empty',
  emptyCreditId: 'creditId must not be empty',
  accountAuthRequired: given('codex account authentication required'),
  chatgptAuthRequired: given('chatgpt authentication required'),
  // Curly quotes, as the reference (SPEC-account-surface §18.2).
  modelProviderNotConfigured: (f) =>
    `This chat uses model provider “${f.modelProvider ?? ''}”, which is no longer configured. Restore this provider’s configuration to continue.`,
  gatewayOAuthNotUsed: 'The selected provider does not use gateway OAuth',
};

/** The ChatGPT-backend methods of SPEC-account-surface §13–§17, by the name their calls carry. */
export type SurfaceMethod = 'usage' | 'threadUsage' | 'securitySetup' | 'workspaceMessages' | 'consume' | 'nudge';

/**
 * Texts of the account surface (SPEC-account-surface §12–§18), in the
 * reference's words: what each refusal names, the prefix of each backend
 * failure, each deadline's answer, and the answers of their own.
 */
export const SURFACE_TEXT = {
  /** `<what>` of `codex account authentication required <what>` (§12.1). */
  what: {
    usage: 'to read token usage',
    threadUsage: 'to read token usage',
    workspaceMessages: 'to read workspace messages',
    consume: 'for rate limit reset credits',
    nudge: 'to notify workspace owner',
  },
  /** `<prefix>` of §12.3 (security setup never shows its own: it answers no notice). */
  prefix: {
    usage: 'failed to fetch token usage profile',
    threadUsage: 'failed to fetch thread usage',
    securitySetup: 'failed to fetch security setup',
    workspaceMessages: 'failed to fetch workspace messages',
    consume: 'failed to consume rate limit reset',
    nudge: 'failed to notify workspace owner',
  },
  /** What a deadline gives (§12.4); the nudge has none there and words ours with `timedOut`. */
  timedOut: {
    usage: 'token usage profile fetch timed out',
    threadUsage: 'thread usage fetch timed out',
    securitySetup: 'security setup fetch timed out',
    workspaceMessages: 'workspace messages fetch timed out',
    consume: 'rate limit reset consume timed out',
  },
  threadOmitted: 'failed to fetch thread usage: thread usage response omitted requested thread',
  threadUnexpected: 'failed to fetch thread usage: thread usage returned unexpected threads',
  threadInvalid: 'failed to fetch thread usage: Invalid thread usage response.',
  workspaceTimestamp: (value: string, why: string) => `failed to parse workspace message timestamp \`${value}\`: ${why}`,
  /** A configured gateway provider: its OAuth flow belongs to model providers, which this server leaves out (§18). */
  gatewayNotImplemented: (id: string) =>
    `gateway OAuth sign-in (model provider "${id}") is not implemented by this server: model providers are out of its scope`,
} as const satisfies {
  what: Record<Exclude<SurfaceMethod, 'securitySetup'>, string>;
  prefix: Record<SurfaceMethod, string>;
  timedOut: Record<Exclude<SurfaceMethod, 'nudge'>, string>;
  [key: string]: unknown;
};

/** The refusal of a ChatGPT-backend method (§12.1): logged out, or an API key where ChatGPT is needed. */
export function surfaceRefusal(who: 'account' | 'chatgpt', method: keyof typeof SURFACE_TEXT.what): AuthFailure {
  return who === 'account'
    ? { kind: 'accountAuthRequired', message: `codex account authentication required ${SURFACE_TEXT.what[method]}` }
    : { kind: 'chatgptAuthRequired', message: `chatgpt authentication required ${SURFACE_TEXT.what[method]}` };
}

/** The message a failure shows on the wire. */
export function errorText(failure: { kind: ErrorKind; message?: string; allowed?: readonly string[]; received?: string }): string {
  const text = ERROR_TEXT[failure.kind] ?? ERROR_TEXT.internal;
  return typeof text === 'string' ? text : text(failure as AuthFailure);
}

/** The `completed.error` text a cancelled login reports (SPEC §3.2, §3.3). */
export function loginEndedMessage(flow: LoginFlow, why: 'notCompleted' | 'cancelled'): string {
  const text = why === 'cancelled' ? 'Login cancelled' : 'Login was not completed';
  return flow === 'browser' ? `Login server error: ${text}` : text;
}

/**
 * `completed.error` of a host-token login whose discovery never ran: a logout or newer tokens
 * overtook it (not in SPEC; the reference handles requests one at a time and cannot get here).
 */
export const HOST_LOGIN_OVERTAKEN = 'Login was not completed';

/** Why credentials of another workspace were refused (SPEC §9.3 wording). */
export function workspaceRestrictionMessage(policy: Policy, accountId: string | null): string {
  return `Login is restricted to workspace(s) ${(policy.forcedWorkspaceIds ?? []).join(', ')}, but current credentials belong to ${accountId ?? 'no workspace'}`;
}

/** `completed.error` of a login whose flow failed: the failure's own text, else a generic one. */
export function loginFailedMessage(failure: AuthFailure): string {
  return failure.message ?? errorText(failure);
}

/** Why the host's answer to `account/chatgptAuthTokens/refresh` was not used (SPEC §9.3 table). */
export const HOST_REFRESH_TEXT = {
  failed: (code: number) => `auth refresh request failed: code=${code}`,
  invalid: HOST_REFRESH_TEXT_INVALID,
  // Whole seconds as the reference prints them (`10s`); a shorter deadline a host set in ms (`300ms`).
  timedOut: (timeoutMs: number) =>
    `auth refresh request timed out after ${timeoutMs % 1000 === 0 ? `${timeoutMs / 1000}s` : `${timeoutMs}ms`}`,
} as const;

/** Texts of `account/login/completed.error` (SPEC §3.2, §3.3, §6.1; the unconfirmed ones: docs/chatgpt-login.md). */
export const loginErrors = {
  /** Browser failures read `Login server error: …`; device failures bare. */
  flow: (flow: LoginFlow, detail: string) => (flow === 'browser' ? `Login server error: ${detail}` : detail),
  exchange: (flow: LoginFlow, detail: string) =>
    loginErrors.flow(flow, flow === 'browser' ? `Token exchange failed: ${detail}` : `device code exchange failed: ${detail}`),
  workspace: (flow: LoginFlow, allowed: readonly string[], accountId: string | null) =>
    loginErrors.flow(
      flow,
      accountId === null
        ? 'Login is restricted to a specific workspace, but the token did not include an chatgpt_account_id claim.'
        : `Login is restricted to workspace id(s) ${allowed.join(', ')}.`,
    ),
  save: (flow: LoginFlow) => loginErrors.flow(flow, 'Sign-in completed but credentials could not be saved locally.'),
  timedOut: 'Login timed out',
  /** `GET /cancel`: an older login server gives the port up. */
  takenOver: 'Login server error: Login cancelled',
};
