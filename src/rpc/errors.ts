import { ResponseError } from 'vscode-jsonrpc/node';
import type { AuthFailure } from '../../machines/account-types.js';
import { errorText, type ErrorKind } from '../../machines/wording.js';
import { AuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { describeThrown } from './ndjson.js';

/** JSON-RPC codes the reference uses (SPEC §1): validation/refusals and internal failures. */
export const ErrorCodes = {
  InvalidRequest: -32600,
  InternalError: -32603,
} as const;

/** What a host can do about an error; documented in the README. */
export type Recovery =
  | 'fix_request'
  | 'initialize'
  | 'none'
  | 'use_chatgpt_login'
  | 'use_api_key_login'
  | 'logout_or_update_tokens'
  | 'enable_experimental_api'
  | 'relogin'
  | 'retry'
  | 'check_codex_home'
  | 'login'
  | 'use_browser_login'
  | 'paste_again'
  | 'start_login'
  | 'check_keyring'
  | 'unlock_keyring';

/** The `data` member this server adds to every error (the reference sends none). */
export interface ErrorData {
  reason: string;
  recovery: Recovery;
}

type Rule = [code: number, reason: string, recovery: Recovery];

const INVALID = ErrorCodes.InvalidRequest;
const INTERNAL = ErrorCodes.InternalError;

/** Code, `data.reason` and `data.recovery` of each failure; the text comes from `machines/wording.ts`. */
const RULES: Record<ErrorKind, Rule> = {
  notInitialized: [INVALID, 'not_initialized', 'initialize'],
  alreadyInitialized: [INVALID, 'already_initialized', 'none'],
  unknownMethod: [INVALID, 'unknown_method', 'fix_request'],
  invalidParams: [INVALID, 'invalid_params', 'fix_request'],
  invalidLoginId: [INVALID, 'invalid_login_id', 'fix_request'],
  apiKeyLoginDisabled: [INVALID, 'login_method_forbidden', 'use_chatgpt_login'],
  chatgptLoginDisabled: [INVALID, 'login_method_forbidden', 'use_api_key_login'],
  externalAuthDisabled: [INVALID, 'login_method_forbidden', 'use_api_key_login'],
  externalAuthActive: [INVALID, 'external_auth_active', 'logout_or_update_tokens'],
  experimentalApiRequired: [INVALID, 'experimental_api_required', 'enable_experimental_api'],
  workspaceNotAllowed: [INVALID, 'workspace_not_allowed', 'relogin'],
  invalidToken: [INTERNAL, 'invalid_token', 'relogin'],
  authFileCorrupt: [INTERNAL, 'auth_file_corrupt', 'relogin'],
  storageFailed: [INTERNAL, 'storage_failed', 'check_codex_home'],
  discoveryFailed: [INTERNAL, 'routing_discovery_failed', 'retry'],
  workspaceMissing: [INTERNAL, 'workspace_missing', 'relogin'],
  accountIdMissing: [INTERNAL, 'account_id_missing', 'relogin'],
  rateLimitsNeedAuth: [INVALID, 'auth_required', 'login'],
  rateLimitsNeedChatgpt: [INVALID, 'chatgpt_auth_required', 'use_chatgpt_login'],
  notImplemented: [INTERNAL, 'not_implemented', 'none'],
  internal: [INTERNAL, 'internal', 'retry'],
  // ChatGPT sign-in (start failures answer account/login/start; the paste kinds account/login/complete).
  loginServerFailed: [INTERNAL, 'login_port_unavailable', 'retry'],
  deviceCodeFailed: [INTERNAL, 'device_code_unavailable', 'retry'],
  deviceCodeDisabled: [INVALID, 'device_code_disabled', 'use_browser_login'],
  loginFailed: [INTERNAL, 'login_failed', 'start_login'],
  loginNotFound: [INVALID, 'login_not_found', 'start_login'],
  loginNotWaiting: [INVALID, 'login_not_waiting', 'none'],
  pasteNotSupported: [INVALID, 'not_browser_login', 'fix_request'],
  redirectStateMismatch: [INVALID, 'state_mismatch', 'paste_again'],
  invalidRedirectUrl: [INVALID, 'invalid_redirect_url', 'paste_again'],
  redirectMissingCode: [INVALID, 'missing_code', 'paste_again'],
  // Managed refresh (SPEC §8.1).
  refreshTokenExpired: [INTERNAL, 'refresh_token_expired', 'relogin'],
  refreshTokenReused: [INTERNAL, 'refresh_token_reused', 'relogin'],
  refreshTokenInvalidated: [INTERNAL, 'refresh_token_invalidated', 'relogin'],
  refreshTokenRejected: [INTERNAL, 'refresh_token_rejected', 'relogin'],
  refreshFailed: [INTERNAL, 'refresh_failed', 'retry'],
  // ChatGPT-backend calls (SPEC §10, §12.3): the message carries the reference's full text.
  backendFailed: [INTERNAL, 'backend_request_failed', 'retry'],
  backendUnauthorized: [INTERNAL, 'backend_unauthorized', 'relogin'],
  backendTimeout: [INTERNAL, 'backend_timeout', 'retry'],
  // The host's answer to account/chatgptAuthTokens/refresh (SPEC §9.3).
  hostRefreshFailed: [INTERNAL, 'host_refresh_failed', 'logout_or_update_tokens'],
  hostRefreshTimeout: [INTERNAL, 'host_refresh_timeout', 'retry'],
  refreshWorkspaceNotAllowed: [INTERNAL, 'workspace_not_allowed', 'logout_or_update_tokens'],
  // The OS keyring (docs/keyring.md).
  keyringUnavailable: [INTERNAL, 'keyring_unavailable', 'check_keyring'],
  keyringLocked: [INTERNAL, 'keyring_locked', 'unlock_keyring'],
  // The rest of the account surface (SPEC-account-surface §12–§18).
  invalidThreadId: [INVALID, 'invalid_thread_id', 'fix_request'],
  emptyIdempotencyKey: [INVALID, 'invalid_params', 'fix_request'],
  emptyCreditId: [INVALID, 'invalid_params', 'fix_request'],
  accountAuthRequired: [INVALID, 'auth_required', 'login'],
  chatgptAuthRequired: [INVALID, 'chatgpt_auth_required', 'use_chatgpt_login'],
  modelProviderNotConfigured: [INVALID, 'model_provider_not_configured', 'fix_request'],
  gatewayOAuthNotUsed: [INVALID, 'gateway_oauth_not_used', 'fix_request'],
};

/** `data` members the reference itself sends for some errors, kept beside ours (SPEC-account-surface §18.2). */
const REFERENCE_DATA: Partial<Record<ErrorKind, (failure: AuthFailure) => Record<string, unknown>>> = {
  modelProviderNotConfigured: (f) => ({ type: 'modelProviderNotConfigured', modelProvider: f.modelProvider ?? null }),
};

/** The single place that turns a failure into a wire error. */
export function toResponseError(failure: AuthFailure | { kind: ErrorKind; message?: string }): ResponseError<ErrorData> {
  const known = Object.hasOwn(RULES, failure.kind);
  const [code, reason, recovery] = RULES[known ? failure.kind : 'internal'];
  const message = errorText(known ? failure : { kind: 'internal' });
  const extra = known ? REFERENCE_DATA[failure.kind]?.(failure as AuthFailure) : undefined;
  return new ResponseError(code, message, { ...extra, reason, recovery });
}

/** Maps anything a handler threw; unknown errors are logged and answered generically. */
export function errorFromThrown(error: unknown, log: Logger): ResponseError<ErrorData> {
  if (error instanceof ResponseError) return error as ResponseError<ErrorData>;
  if (error instanceof AuthError) return toResponseError(error.toFailure());
  // Name and stack frames only: a message may quote input (JSON.parse does).
  log.error(() => `unexpected failure: ${describeThrown(error)}`);
  return toResponseError({ kind: 'internal' });
}
