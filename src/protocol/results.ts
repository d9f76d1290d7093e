import * as z from 'zod/mini';
import { PLAN_TYPES } from '../../machines/account-types.js';
import type { MethodName } from './methods.js';

/**
 * What the server sends: the result of every method, every notification's
 * params and the `account/state/*` shape (SPEC §2, §3, §10, docs/state-api.md).
 * Each is defined once here; the code that builds them uses the inferred
 * types (`import type`), so nothing of this module runs at start-up. The
 * schema export (`generate-json-schema`, `generate-ts`) and the tests read
 * the schemas themselves.
 */

const nullable = z.nullable;

export const PlanTypeSchema = z.enum(PLAN_TYPES);
export const AuthModeSchema = z.enum(['apikey', 'chatgpt', 'chatgptAuthTokens']);

export const InitializeResultSchema = z.object({
  userAgent: z.string(),
  codexHome: z.string(),
  platformFamily: z.string(),
  platformOs: z.string(),
});

export const LoginAccountResultSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('apiKey') }),
  z.object({ type: z.literal('chatgpt'), loginId: z.string(), authUrl: z.string() }),
  z.object({ type: z.literal('chatgptDeviceCode'), loginId: z.string(), verificationUrl: z.string(), userCode: z.string() }),
  z.object({ type: z.literal('chatgptAuthTokens') }),
]);
export type LoginAccountResult = z.infer<typeof LoginAccountResultSchema>;

export const CancelLoginAccountResultSchema = z.object({ status: z.enum(['canceled', 'notFound']) });
export const EmptyResultSchema = z.object({});

export const WorkspaceRoutingSchema = z.object({
  chatgptAccountId: z.string(),
  backendOrigin: z.string(),
  accountRoutingOverride: z.enum(['NO_CONSTRAINT', 'us', 'us_cr']),
});

/** `account/read` (SPEC §3.1). */
export const GetAccountResultSchema = z.object({
  account: nullable(
    z.discriminatedUnion('type', [
      z.object({ type: z.literal('apiKey') }),
      z.object({
        type: z.literal('chatgpt'),
        email: nullable(z.string()),
        planType: nullable(PlanTypeSchema),
        workspaceName: nullable(z.string()),
      }),
    ]),
  ),
  userId: nullable(z.string()),
  requiresOpenaiAuth: z.boolean(),
  workspaceRouting: nullable(WorkspaceRoutingSchema),
});
export type GetAccountResult = z.infer<typeof GetAccountResultSchema>;

/** `getAuthStatus` (SPEC §3.6). */
export const GetAuthStatusResultSchema = z.object({
  authMethod: nullable(AuthModeSchema),
  authToken: nullable(z.string()),
  requiresOpenaiAuth: z.boolean(),
});
export type GetAuthStatusResult = z.infer<typeof GetAuthStatusResultSchema>;

// ---- account/rateLimits/read (SPEC §10) ----

export const RateLimitWindowSchema = z.object({
  usedPercent: z.number(),
  windowDurationMins: nullable(z.number()),
  resetsAt: nullable(z.number()),
});
export type RateLimitWindow = z.infer<typeof RateLimitWindowSchema>;

export const RateLimitSnapshotSchema = z.object({
  limitId: z.string(),
  limitName: nullable(z.string()),
  normalModelSlug: z.null(),
  primary: nullable(RateLimitWindowSchema),
  secondary: nullable(RateLimitWindowSchema),
  credits: nullable(z.object({ hasCredits: z.boolean(), unlimited: z.boolean(), balance: nullable(z.string()) })),
  individualLimit: z.null(),
  spendControlReached: z.null(),
  planType: PlanTypeSchema,
  rateLimitReachedType: nullable(z.string()),
});
export type RateLimitSnapshot = z.infer<typeof RateLimitSnapshotSchema>;

export const RateLimitResetCreditSchema = z.object({
  id: z.string(),
  resetType: z.enum(['codexRateLimits', 'unknown']),
  status: z.enum(['available', 'redeeming', 'redeemed', 'unknown']),
  grantedAt: z.number(),
  expiresAt: nullable(z.number()),
  title: nullable(z.string()),
  description: nullable(z.string()),
});
export type RateLimitResetCredit = z.infer<typeof RateLimitResetCreditSchema>;

export const RateLimitResetCreditsSummarySchema = z.object({
  availableCount: z.number(),
  credits: nullable(z.array(RateLimitResetCreditSchema)),
});
export type RateLimitResetCreditsSummary = z.infer<typeof RateLimitResetCreditsSummarySchema>;

export const RateLimitsReadResultSchema = z.object({
  ordinaryUsageAllowed: nullable(z.boolean()),
  rateLimits: RateLimitSnapshotSchema,
  rateLimitsByLimitId: z.record(z.string(), RateLimitSnapshotSchema),
  rateLimitResetCredits: nullable(RateLimitResetCreditsSummarySchema),
  accountId: nullable(z.string()),
  rateLimitUpsell: z.null(),
});
export type RateLimitsReadResult = z.infer<typeof RateLimitsReadResultSchema>;

// ---- account/state/read and account/state/changed (docs/state-api.md) ----

/** A state value: a state name, or an object of regions and compound states. */
export type StateValue = string | { [key: string]: StateValue };
export const StateValueSchema: z.ZodMiniType<StateValue> = z.union([
  z.string(),
  z.record(
    z.string(),
    z.lazy(() => StateValueSchema),
  ),
]);

/** A failure as a JSON-RPC error would carry it (`data.reason`, `data.recovery`). */
export const ErrorDataSchema = z.object({ reason: z.string(), recovery: z.string() });

export const AccountStateSchema = z.object({
  /** The root statechart's value: `{credentials: …, login: …}`. */
  value: StateValueSchema,
  /** The child machines' values while they run. */
  machines: z.object({ session: nullable(StateValueSchema), loginAttempt: nullable(StateValueSchema) }),
  authMode: nullable(AuthModeSchema),
  /** Credentials are being loaded, saved or cleared. */
  busy: z.boolean(),
  pendingLogin: nullable(
    z.object({
      loginId: z.string(),
      flow: z.enum(['browser', 'device']),
      step: z.enum(['starting', 'waiting']),
      /** When `account/login/start` was handled (RFC 3339), if this process saw it. */
      startedAt: nullable(z.string()),
      /** When the attempt gives up waiting for the user (RFC 3339); the clock starts once it is ready. */
      deadline: nullable(z.string()),
    }),
  ),
  /** A token refresh is in flight (managed, or asking the host). */
  refreshing: z.boolean(),
  lastError: nullable(
    z.object({
      /** `request`: a failed answer; `login`: a sign-in that failed; `refresh`: a token refresh; `storage`: auth.json unreadable. */
      source: z.enum(['request', 'login', 'refresh', 'storage']),
      /** The JSON-RPC error code it was (or would be) answered with; `null` for a failed sign-in (a notification). */
      code: nullable(z.number()),
      message: z.string(),
      data: ErrorDataSchema,
      at: z.string(),
    }),
  ),
  policy: z.object({
    forcedLoginMethod: nullable(z.enum(['chatgpt', 'api'])),
    forcedWorkspaceIds: nullable(z.array(z.string())),
  }),
  /** `account/login/start` types accepted right now. */
  allowedLoginMethods: z.array(z.enum(['apiKey', 'chatgpt', 'chatgptDeviceCode', 'chatgptAuthTokens'])),
  /** Where credentials are kept and why (`null` when the embedder did not say). */
  credentialStore: nullable(
    z.object({
      configured: z.enum(['file', 'keyring', 'auto', 'ephemeral']),
      backend: z.enum(['file', 'keyring', 'memory']),
      reason: z.enum(['configured', 'keyring_unavailable', 'keyring_locked', 'keyring_empty']),
      location: z.string(),
      problem: nullable(z.string()),
    }),
  ),
});
export type AccountState = z.infer<typeof AccountStateSchema>;

/**
 * Results of the rest of the account surface (SPEC-account-surface §13–§18):
 * their exact shapes are documented in docs/account-surface.md and checked
 * by its end-to-end tests; the export states them as objects.
 */
const SurfaceResultSchema = z.looseObject({});

/** The result schema of every method. */
export const RESULTS = {
  'account/gatewayOAuth/read': SurfaceResultSchema,
  'account/gatewayOAuth/login': SurfaceResultSchema,
  'account/gatewayOAuth/cancel': SurfaceResultSchema,
  'account/securitySetup/read': SurfaceResultSchema,
  'account/rateLimitResetCredit/consume': SurfaceResultSchema,
  'account/usage/read': SurfaceResultSchema,
  'account/workspaceMessages/read': SurfaceResultSchema,
  'account/sendAddCreditsNudgeEmail': SurfaceResultSchema,
  initialize: InitializeResultSchema,
  'account/login/start': LoginAccountResultSchema,
  'account/login/cancel': CancelLoginAccountResultSchema,
  'account/login/complete': EmptyResultSchema,
  'account/logout': EmptyResultSchema,
  'account/rateLimits/read': RateLimitsReadResultSchema,
  'account/read': GetAccountResultSchema,
  getAuthStatus: GetAuthStatusResultSchema,
  'account/state/read': AccountStateSchema,
} as const satisfies Record<MethodName, z.ZodMiniType>;

// ---- Notifications (server → client) ----

export const LoginCompletedNotificationSchema = z.object({
  loginId: nullable(z.string()),
  success: z.boolean(),
  error: nullable(z.string()),
  onboardingEntrypoint: z.null(),
});

export const AccountUpdatedNotificationSchema = z.object({
  authMode: nullable(AuthModeSchema),
  planType: nullable(PlanTypeSchema),
});

const TextPositionSchema = z.object({ line: z.number(), column: z.number() });
export const ConfigWarningNotificationSchema = z.object({
  summary: z.string(),
  details: z.string(),
  path: z.string(),
  range: z.object({ start: TextPositionSchema, end: TextPositionSchema }),
});
export type ConfigWarningNotification = z.infer<typeof ConfigWarningNotificationSchema>;

/** Params of every notification, by method. */
export const NOTIFICATION_PARAMS = {
  'account/login/completed': LoginCompletedNotificationSchema,
  'account/updated': AccountUpdatedNotificationSchema,
  configWarning: ConfigWarningNotificationSchema,
  'account/state/changed': AccountStateSchema,
} as const;

/** A JSON-RPC error as this server sends it: the reference's code and message, plus `data`. */
export const ErrorObjectSchema = z.object({
  code: z.number(),
  message: z.string(),
  data: ErrorDataSchema,
});
