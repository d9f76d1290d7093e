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
 * The one error type our code throws. It carries a `kind`; `rpc/errors.ts`
 * alone decides the wire code, message and `data`. Messages never hold secrets.
 */
export class AuthError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message?: string) {
    super(message ?? '');
    this.kind = kind;
    this.name = 'AuthError';
  }

  /** The shape the machine passes around (`AuthFailure`). */
  toFailure(): AuthFailure {
    return { kind: this.kind as FailureKind, ...(this.message ? { message: this.message } : {}) };
  }
}
