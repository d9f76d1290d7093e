import type { AuthFailure, ClientIdentity, LoginFlow, Policy, StoredAuth, TokenClaims } from './account-types.js';
import type { Secret } from './secret.js';

/** What the parent gives one login attempt. */
export interface LoginAttemptInput {
  loginId: string;
  flow: LoginFlow;
  policy: Policy;
  client: ClientIdentity | null;
  /** How long the attempt may wait for the user once it is ready (`after` delay). */
  deadlineMs: number;
}

/**
 * What the `account/login/start` reply carries once the attempt is ready. The
 * auth URL holds the login's `state` and the user code is what a phisher
 * wants: both stay `Secret` until the adapter writes the reply.
 */
export type LoginReadyDetails =
  | { flow: 'browser'; authUrl: Secret }
  | { flow: 'device'; verificationUrl: string; userCode: Secret };

/** An authorization code and what redeeming it needs (SPEC §6.3; §7 for device codes). */
export interface Grant {
  code: Secret;
  verifier: Secret;
  redirectUri: string;
}

/** Tokens from the code exchange, with the id token's claims already read. */
export interface ExchangedTokens {
  idToken: Secret;
  accessToken: Secret;
  refreshToken: Secret;
  claims: TokenClaims;
}

/** Input of the channel actor (callback server or device poller). */
export interface ChannelInput {
  loginId: string;
  flow: LoginFlow;
  policy: Policy;
  client: ClientIdentity | null;
}

/** What the channel actor (callback server or device poller) reports to the attempt. */
export type ChannelEvent =
  | { type: 'channel.ready'; details: LoginReadyDetails }
  | { type: 'channel.startFailed'; failure: AuthFailure }
  /** A code arrived: from the browser (`requestId` null) or from a pasted URL. */
  | { type: 'channel.code'; grant: Grant; requestId: string | null }
  /** The flow cannot go on (issuer `error=`, missing code, device code expired, poll failure). */
  | { type: 'channel.failed'; detail: string; requestId: string | null }
  /** A pasted URL was refused; the attempt keeps waiting. */
  | { type: 'channel.pasteRejected'; requestId: string; failure: AuthFailure }
  /** `GET /cancel` on the callback server (a newer login server took the port over). */
  | { type: 'channel.cancelled' }
  /** The channel has answered `channel.finish` (for a browser: the success page was served). */
  | { type: 'channel.finished' };

/** What the attempt tells its channel. */
export type ChannelCommand =
  | { type: 'channel.paste'; redirectUrl: Secret; requestId: string }
  | {
      type: 'channel.finish';
      result: { ok: true; idToken: Secret; accessToken: Secret } | { ok: false; message: string };
    };

/** Events the parent sends to a login attempt. */
export type LoginAttemptCommand =
  /** `why` picks the reference text: `notCompleted` (cancel, logout, apiKey login) or `cancelled` (superseded). */
  /** `account/login/complete`: the redirect URL the user pasted. */
  | { type: 'attempt.paste'; redirectUrl: Secret; requestId: string };

export type LoginAttemptEvent = LoginAttemptCommand | ChannelEvent;

/**
 * Events the attempt sends to its parent with `sendParent`:
 * - `loginAttempt.ready` once, when `account/login/start` can be answered;
 * - `loginAttempt.startFailed` instead, when it cannot (the attempt then ends as `notStarted`);
 * - `loginAttempt.pasteAnswered` exactly once per `attempt.paste`.
 */
export type LoginAttemptReport =
  | { type: 'loginAttempt.ready'; loginId: string; details: LoginReadyDetails }
  | { type: 'loginAttempt.startFailed'; loginId: string; failure: AuthFailure }
  | { type: 'loginAttempt.pasteAnswered'; loginId: string; requestId: string; ok: true }
  | { type: 'loginAttempt.pasteAnswered'; loginId: string; requestId: string; ok: false; failure: AuthFailure };

/**
 * How the attempt ended. `succeeded` and `failed` become `account/login/completed`
 * (`error` is its exact text); `notStarted` means `account/login/start` fails with `failure`
 * and no `completed` follows.
 */
export type LoginAttemptOutput =
  | { loginId: string; status: 'succeeded'; auth: StoredAuth }
  | { loginId: string; status: 'failed'; error: string }
  | { loginId: string; status: 'notStarted'; failure: AuthFailure };

export interface ExchangeCodeInput {
  flow: LoginFlow;
  grant: Grant;
}

export interface SaveLoginInput {
  tokens: ExchangedTokens;
  apiKey: Secret | null;
}
