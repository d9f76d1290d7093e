import type * as z from 'zod/mini';
import {
  CancelLoginAccountParamsSchema,
  CompleteLoginAccountParamsSchema,
  GetAccountParamsSchema,
  GetAccountStateParamsSchema,
  GetAuthStatusParamsSchema,
  InitializeParamsSchema,
  LoginAccountParamsSchema,
  LogoutParamsSchema,
  RateLimitsReadParamsSchema,
  AddCreditsNudgeParamsSchema,
  GatewayOAuthLoginParamsSchema,
  GatewayOAuthReadParamsSchema,
  NoParamsSchema,
  RateLimitResetCreditConsumeParamsSchema,
  UnitParamsSchema,
  UsageReadParamsSchema,
} from './schemas.js';

/**
 * Whether `params` must be present. `required`: absent or `null` fails with
 * ``missing field `params` `` (SPEC §1); `optional`: absent reads as `{}`.
 */
export type ParamsPresence = 'required' | 'optional';

export interface MethodSpec {
  schema: z.ZodMiniType;
  params: ParamsPresence;
}

/**
 * The client requests this server implements, in the order the reference
 * lists them in its unknown-variant error (SPEC §1).
 */
export const METHODS = {
  initialize: { schema: InitializeParamsSchema, params: 'required' },
  'account/gatewayOAuth/read': { schema: GatewayOAuthReadParamsSchema, params: 'optional' },
  'account/gatewayOAuth/login': { schema: GatewayOAuthLoginParamsSchema, params: 'optional' },
  'account/gatewayOAuth/cancel': { schema: NoParamsSchema, params: 'optional' },
  'account/login/start': { schema: LoginAccountParamsSchema, params: 'required' },
  'account/login/cancel': { schema: CancelLoginAccountParamsSchema, params: 'required' },
  // Not in the reference: completes a browser login from the pasted redirect URL (issue 7).
  'account/login/complete': { schema: CompleteLoginAccountParamsSchema, params: 'required' },
  'account/logout': { schema: LogoutParamsSchema, params: 'optional' },
  'account/securitySetup/read': { schema: UnitParamsSchema, params: 'optional' },
  'account/rateLimits/read': { schema: RateLimitsReadParamsSchema, params: 'optional' },
  'account/rateLimitResetCredit/consume': { schema: RateLimitResetCreditConsumeParamsSchema, params: 'required' },
  'account/usage/read': { schema: UsageReadParamsSchema, params: 'optional' },
  'account/workspaceMessages/read': { schema: NoParamsSchema, params: 'optional' },
  'account/sendAddCreditsNudgeEmail': { schema: AddCreditsNudgeParamsSchema, params: 'required' },
  'account/read': { schema: GetAccountParamsSchema, params: 'required' },
  getAuthStatus: { schema: GetAuthStatusParamsSchema, params: 'required' },
  // Not in the reference: the statechart as a host may see it (issue 9, docs/state-api.md).
  'account/state/read': { schema: GetAccountStateParamsSchema, params: 'optional' },
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof METHODS;

export function isMethodName(method: string): method is MethodName {
  return Object.hasOwn(METHODS, method);
}

/** `` Invalid request: unknown variant `m`, expected one of `initialize`, … `` */
export function unknownMethodMessage(method: string): string {
  const known = Object.keys(METHODS).map((m) => `\`${m}\``).join(', ');
  return `Invalid request: unknown variant \`${method}\`, expected one of ${known}`;
}

/** Notification methods the server sends. */
export const NOTIFICATIONS = {
  loginCompleted: 'account/login/completed',
  accountUpdated: 'account/updated',
  configWarning: 'configWarning',
  /** Opt-in (`capabilities.stateNotifications`); not in the reference. */
  accountStateChanged: 'account/state/changed',
} as const;

/** Requests the server sends to the client (SPEC §9.3). */
export const SERVER_REQUESTS = {
  chatgptAuthTokensRefresh: 'account/chatgptAuthTokens/refresh',
} as const;
