import type { AuthFailure, FailureKind } from '../machines/account-types.js';
import { FIXED_MESSAGES, type ErrorKind } from '../machines/wording.js';

export type { ErrorKind, ProtocolErrorKind } from '../machines/wording.js';

/**
 * The one error type our code throws. It carries a `kind`; `rpc/errors.ts`
 * alone decides the wire code and `data`, `machines/wording.ts` the text.
 * Messages never hold secrets.
 */
export class AuthError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message?: string) {
    super(message ?? (FIXED_MESSAGES as Partial<Record<ErrorKind, string>>)[kind] ?? '');
    this.kind = kind;
    this.name = 'AuthError';
  }

  /** The shape the machine passes around (`AuthFailure`). */
  toFailure(): AuthFailure {
    return { kind: this.kind as FailureKind, ...(this.message ? { message: this.message } : {}) };
  }
}
