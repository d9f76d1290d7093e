import * as z from 'zod/mini';
import { HOST_REFRESH_TIMEOUT_RANGE } from './limits.js';
import { bool, describeValue, expecting, str, struct } from './serde.js';

/**
 * Params of every client request this server implements (SPEC §2, §3, §10).
 * Unknown fields are ignored (zod strips them), as the reference ignores them.
 * Types come from `z.infer`; the names in `struct …` are the reference's.
 */

const nullable = <T extends z.core.SomeType>(schema: T) => z.optional(z.nullable(schema));

export const ClientInfoSchema = struct('ClientInfo', {
  name: str(),
  title: nullable(str()),
  version: str(),
});

/** Bounds of `capabilities.chatgptAuthTokensRefreshTimeoutMs` (and its environment default), in ms. */
export { HOST_REFRESH_TIMEOUT_RANGE };

const outOfRange = (issue: { input?: unknown }) =>
  `invalid value: ${describeValue(issue.input)}, expected milliseconds from ${HOST_REFRESH_TIMEOUT_RANGE.min} to ${HOST_REFRESH_TIMEOUT_RANGE.max}`;

export const InitializeCapabilitiesSchema = struct('InitializeCapabilities', {
  experimentalApi: z.optional(bool()),
  requestAttestation: z.optional(bool()),
  optOutNotificationMethods: nullable(z.array(str(), expecting('a sequence'))),
  /** Opt-in: send `account/state/changed` on every change of the statechart (docs/state-api.md). */
  stateNotifications: z.optional(bool()),
  /**
   * This server's own (issue 8): how long to wait for the host's answer to
   * `account/chatgptAuthTokens/refresh`; the reference waits 10 s.
   */
  chatgptAuthTokensRefreshTimeoutMs: nullable(
    z.int(expecting('u64')).check(
      z.gte(HOST_REFRESH_TIMEOUT_RANGE.min, { error: outOfRange }),
      z.lte(HOST_REFRESH_TIMEOUT_RANGE.max, { error: outOfRange }),
    ),
  ),
});

export const InitializeParamsSchema = struct('InitializeParams', {
  clientInfo: ClientInfoSchema,
  capabilities: nullable(InitializeCapabilitiesSchema),
});
export type InitializeParams = z.infer<typeof InitializeParamsSchema>;

export const GetAccountParamsSchema = struct('GetAccountParams', {
  refreshToken: z.optional(bool()),
});

const ApiKeyLoginSchema = struct('ApiKey', { type: z.literal('apiKey'), apiKey: str() });
const ChatgptLoginSchema = struct('Chatgpt', {
  type: z.literal('chatgpt'),
  codexStreamlinedLogin: z.optional(bool()),
  useHostedLoginSuccessPage: z.optional(bool()),
  appBrand: nullable(z.enum(['codex', 'chatgpt'], expecting('enum AppBrand'))),
});
const DeviceCodeLoginSchema = struct('ChatgptDeviceCode', { type: z.literal('chatgptDeviceCode') });
const AuthTokensLoginSchema = struct('ChatgptAuthTokens', {
  type: z.literal('chatgptAuthTokens'),
  accessToken: str(),
  chatgptAccountId: str(),
  chatgptPlanType: nullable(str()),
});

export const LoginAccountParamsSchema = z.discriminatedUnion(
  'type',
  [ApiKeyLoginSchema, ChatgptLoginSchema, DeviceCodeLoginSchema, AuthTokensLoginSchema],
  expecting('internally tagged enum LoginAccountParams'),
);
export type LoginAccountParams = z.infer<typeof LoginAccountParamsSchema>;

export const CancelLoginAccountParamsSchema = struct('CancelLoginAccountParams', { loginId: str() });

/** `account/login/complete` (this server's own, issue 7): the redirect URL the browser ended on. */
export const CompleteLoginAccountParamsSchema = struct('CompleteLoginAccountParams', { loginId: str(), redirectUrl: str() });

export const GetAuthStatusParamsSchema = struct('GetAuthStatusParams', {
  includeToken: nullable(bool()),
  refreshToken: nullable(bool()),
});

export const RateLimitsReadParamsSchema = struct('GetAccountRateLimitsParams', {
  supportsLunaReserve: z.optional(bool()),
  excludeResetCreditDetails: z.optional(bool()),
});

/** `account/state/read` (this server's own, docs/state-api.md) takes no params; `{}` is accepted. */
export const GetAccountStateParamsSchema = struct('GetAccountStateParams', {});

/** `account/logout` takes no params; `{}` (or anything object-like) is accepted. */
export const LogoutParamsSchema = z.object({}, expecting('unit'));

// Login ids: Rust's `Uuid::parse_str` accepts hyphenated, simple, braced and urn forms, any case.
const HEX32 = /^[0-9a-f]{32}$/i;
const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Normalises a login id to lower-case hyphenated form, or returns `null` if it is no UUID. */
export function parseLoginId(value: string): string | null {
  let v = value;
  if (/^urn:uuid:/i.test(v)) v = v.slice(9);
  else if (v.startsWith('{') && v.endsWith('}')) v = v.slice(1, -1);
  if (HYPHENATED.test(v)) return v.toLowerCase();
  if (HEX32.test(v)) {
    const h = v.toLowerCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  return null;
}

// ---- The rest of the account surface (SPEC-account-surface §13–§18) ----

/** `account/usage/read`: `threadId` is checked as a UUID before the auth gate (§13.2). */
export const UsageReadParamsSchema = struct('GetAccountTokenUsageParams', {
  threadId: nullable(str()),
});

/**
 * Params of a method that takes none, read strictly as serde reads `()`:
 * absent, `null` and `{}` pass; `{"x":1}` is `invalid type: map, expected unit` (§14).
 */
export const UnitParamsSchema = z.custom<Record<string, never>>(
  (value) => typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0,
  { error: (issue) => `invalid type: ${describeValue(issue.input)}, expected unit` },
);

/** Params of a method that takes none, read leniently (unknown members ignored), as `account/logout`. */
export const NoParamsSchema = z.object({}, expecting('unit'));

export const RateLimitResetCreditConsumeParamsSchema = struct('ConsumeRateLimitResetCreditParams', {
  idempotencyKey: str(),
  creditId: nullable(str()),
});

export const AddCreditsNudgeParamsSchema = struct('SendAddCreditsNudgeEmailParams', {
  creditType: z.enum(['credits', 'usage_limit'], expecting('string or map')),
});

export const GatewayOAuthReadParamsSchema = struct('GatewayOAuthReadParams', {
  modelProvider: nullable(str()),
});

export const GatewayOAuthLoginParamsSchema = struct('GatewayOAuthLoginParams', {
  modelProvider: nullable(str()),
  deviceAuth: nullable(bool()),
});
