import { ResponseError } from 'vscode-jsonrpc/node';
import type { AuthFailure } from '../../machines/account-types.js';
import { AuthError, FIXED_MESSAGES, type ErrorKind } from '../errors.js';
import type { Logger } from '../log.js';

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
  | 'check_keyring'
  | 'unlock_keyring'
  | 'login';

/** The `data` member this server adds to every error (the reference sends none). */
export interface ErrorData {
  reason: string;
  recovery: Recovery;
}

interface Rule {
  code: number;
  reason: string;
  recovery: Recovery;
  /** Fixed message, or a function of the failure. */
  message: string | ((failure: AuthFailure & { kind: ErrorKind }) => string);
}

const given = (fallback: string) => (f: { message?: string }) => f.message ?? fallback;

const RULES: Record<ErrorKind, Rule> = {
  notInitialized: { code: -32600, reason: 'not_initialized', recovery: 'initialize', message: 'Not initialized' },
  alreadyInitialized: { code: -32600, reason: 'already_initialized', recovery: 'none', message: 'Already initialized' },
  unknownMethod: { code: -32600, reason: 'unknown_method', recovery: 'fix_request', message: given('Invalid request') },
  invalidParams: { code: -32600, reason: 'invalid_params', recovery: 'fix_request', message: given('Invalid request') },
  invalidLoginId: { code: -32600, reason: 'invalid_login_id', recovery: 'fix_request', message: given('invalid login id') },
  apiKeyLoginDisabled: {
    code: -32600, reason: 'login_method_forbidden', recovery: 'use_chatgpt_login',
    message: 'API key login is disabled. Use ChatGPT login instead.',
  },
  chatgptLoginDisabled: {
    code: -32600, reason: 'login_method_forbidden', recovery: 'use_api_key_login',
    message: 'ChatGPT login is disabled. Use API key login instead.',
  },
  externalAuthDisabled: {
    code: -32600, reason: 'login_method_forbidden', recovery: 'use_api_key_login',
    message: 'External ChatGPT auth is disabled. Use API key login instead.',
  },
  externalAuthActive: {
    code: -32600, reason: 'external_auth_active', recovery: 'logout_or_update_tokens',
    message:
      'External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.',
  },
  experimentalApiRequired: {
    code: -32600, reason: 'experimental_api_required', recovery: 'enable_experimental_api',
    message: 'account/login/start.chatgptAuthTokens requires experimentalApi capability',
  },
  workspaceNotAllowed: {
    code: -32600, reason: 'workspace_not_allowed', recovery: 'relogin',
    // Rust `{:?}` of a Vec<String> and a String; JSON string escaping matches it for printable text.
    message: (f) =>
      `External auth must use one of workspace(s) [${(f.allowed ?? []).map((id) => JSON.stringify(id)).join(', ')}], ` +
      `but received ${JSON.stringify(f.received ?? '')}.`,
  },
  invalidToken: {
    code: -32603, reason: 'invalid_token', recovery: 'relogin',
    message: (f) => `failed to set external auth: ${f.message ?? 'invalid ID token format'}`,
  },
  authFileCorrupt: { code: -32603, reason: 'auth_file_corrupt', recovery: 'relogin', message: given('auth.json is not valid') },
  storageFailed: { code: -32603, reason: 'storage_failed', recovery: 'check_codex_home', message: given('storage failed') },
  keyringUnavailable: {
    code: -32603, reason: 'keyring_unavailable', recovery: 'check_keyring', message: given('the OS keyring is unavailable'),
  },
  keyringLocked: { code: -32603, reason: 'keyring_locked', recovery: 'unlock_keyring', message: given('the OS keyring is locked') },
  discoveryFailed: {
    code: -32603, reason: 'routing_discovery_failed', recovery: 'retry',
    message: given(FIXED_MESSAGES.discoveryFailed!),
  },
  workspaceMissing: {
    code: -32603, reason: 'workspace_missing', recovery: 'relogin',
    message: FIXED_MESSAGES.workspaceMissing!,
  },
  accountIdMissing: {
    code: -32603, reason: 'account_id_missing', recovery: 'relogin',
    message: FIXED_MESSAGES.accountIdMissing!,
  },
  rateLimitsNeedAuth: {
    code: -32600, reason: 'auth_required', recovery: 'login',
    message: 'codex account authentication required to read rate limits',
  },
  rateLimitsNeedChatgpt: {
    code: -32600, reason: 'chatgpt_auth_required', recovery: 'use_chatgpt_login',
    message: 'chatgpt authentication required to read rate limits',
  },
  notImplemented: { code: -32603, reason: 'not_implemented', recovery: 'none', message: given('not implemented') },
  internal: { code: -32603, reason: 'internal', recovery: 'retry', message: 'internal error' },
};

/** The single place that turns a failure into a wire error. */
export function toResponseError(failure: AuthFailure | { kind: ErrorKind; message?: string }): ResponseError<ErrorData> {
  const rule = RULES[failure.kind] ?? RULES.internal;
  const message = typeof rule.message === 'string' ? rule.message : rule.message(failure as AuthFailure);
  return new ResponseError(rule.code, message, { reason: rule.reason, recovery: rule.recovery });
}

/** Maps anything a handler threw; unknown errors are logged and answered generically. */
export function errorFromThrown(error: unknown, log: Logger): ResponseError<ErrorData> {
  if (error instanceof ResponseError) return error as ResponseError<ErrorData>;
  if (error instanceof AuthError) return toResponseError(error.toFailure());
  log.error('unexpected failure:', error instanceof Error ? (error.stack ?? error.message) : error);
  return toResponseError({ kind: 'internal' });
}
