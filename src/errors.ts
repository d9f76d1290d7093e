import type { AuthFailure, FailureKind } from '../machines/account-types.js';

/** Failures the adapter detects itself, before the machine sees a request. */
export type ProtocolErrorKind =
  | 'notInitialized'
  | 'alreadyInitialized'
  | 'unknownMethod'
  | 'invalidParams'
  | 'invalidLoginId';

export type ErrorKind = FailureKind | ProtocolErrorKind;

/**
 * Reference texts of failures that effects raise without a message of their
 * own. They also end up in `account/login/completed.error`, so the error
 * carries them from the start.
 */
export const FIXED_MESSAGES: Partial<Record<ErrorKind, string>> = {
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
};

/**
 * The one error type our code throws. It carries a `kind`; `rpc/errors.ts`
 * alone decides the wire code, message and `data`. Messages never hold secrets.
 */
export class AuthError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message?: string) {
    super(message ?? FIXED_MESSAGES[kind] ?? '');
    this.kind = kind;
    this.name = 'AuthError';
  }

  /** The shape the machine passes around (`AuthFailure`). */
  toFailure(): AuthFailure {
    return { kind: this.kind as FailureKind, ...(this.message ? { message: this.message } : {}) };
  }
}
