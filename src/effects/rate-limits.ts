import * as z from 'zod/mini';
import { PLAN_TYPES, type PlanType } from '../../machines/account-types.js';
import { AuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { serdeMessage } from '../protocol/serde.js';
import { backendUrl } from './backend-url.js';
import {
  contentType,
  decodeError,
  parseJson,
  readCapped,
  sendFailed,
  SUCCESS_BODY_BYTES,
  timedOut,
  unexpectedStatus,
} from './backend-response.js';

/**
 * `account/rateLimits/read` (SPEC §10): `GET …/rate-limit-reset-credits` (unless
 * excluded) and `GET …/usage`, mapped to the wire result.
 */

/**
 * The authorised GET of the one backend path: it resolves `path` with
 * `backendUrl(chatgpt_base_url, path)`, adds `Authorization`,
 * `ChatGPT-Account-Id` and `User-Agent` (and recovers from a 401 if it can),
 * and returns the response unread.
 */
export type BackendGet = (path: string, extraHeaders: Record<string, string>, signal: AbortSignal) => Promise<Response>;

/** The request's params, as `RateLimitsReadParamsSchema` parsed them. */
export interface RateLimitsReadParams {
  supportsLunaReserve?: boolean | undefined;
  excludeResetCreditDetails?: boolean | undefined;
}

export interface ReadRateLimitsOptions {
  /** `chatgpt_base_url`, to name the full URL in error texts (the same one `send` resolves against). */
  chatgptBaseUrl: string;
  /** Deadline of the usage call, body included (the configured HTTP deadline). */
  timeoutMs: number;
  /** Deadline of the reset-credit details; past it the usage answer's count is used (§12.4: 5 s). */
  resetCreditsTimeoutMs?: number;
  /** The request's own cancellation. */
  signal?: AbortSignal;
  /** Values that must never be quoted from a body (e.g. the access token just sent). */
  secrets?: readonly string[];
  /** The active identity; `ordinaryUsageAllowed` is only passed on when the usage answer is about it. */
  identity?: { accountId: string | null; userId: string | null };
  log?: Logger;
}

export const DEFAULT_RESET_CREDITS_TIMEOUT_MS = 5_000;
const PREFIX = 'failed to fetch codex rate limits';

// ---- Backend bodies (field names from the reference's backend client) ----

const num = () => z.number();
const WindowSchema = z.looseObject({
  used_percent: num(),
  limit_window_seconds: num(),
  reset_after_seconds: z.optional(num()),
  reset_at: num(),
});
const RateLimitDetailsSchema = z.looseObject({
  allowed: z.optional(z.boolean()),
  limit_reached: z.optional(z.boolean()),
  primary_window: z.nullish(WindowSchema),
  secondary_window: z.nullish(WindowSchema),
});
const CreditsSchema = z.looseObject({
  has_credits: z.boolean(),
  unlimited: z.boolean(),
  balance: z.nullish(z.string()),
});

/** `GET {base}wham/usage`. Only `plan_type` is required; everything else may be absent or null. */
export const UsageBodySchema = z.looseObject({
  plan_type: z.string(),
  rate_limit: z.nullish(RateLimitDetailsSchema),
  credits: z.nullish(CreditsSchema),
  additional_rate_limits: z.nullish(
    z.array(z.looseObject({ limit_name: z.string(), metered_feature: z.string(), rate_limit: z.nullish(RateLimitDetailsSchema) })),
  ),
  rate_limit_reached_type: z.nullish(z.looseObject({ kind: z.string() })),
  rate_limit_reset_credits: z.nullish(z.looseObject({ available_count: z.number() })),
  account_id: z.nullish(z.string()),
  user_id: z.nullish(z.string()),
  ordinary_usage_allowed: z.nullish(z.boolean()),
});
export type UsageBody = z.infer<typeof UsageBodySchema>;

/** `GET {base}wham/rate-limit-reset-credits`. */
export const ResetCreditsBodySchema = z.looseObject({
  available_count: z.number(),
  credits: z.array(
    z.looseObject({
      id: z.string(),
      reset_type: z.string(),
      status: z.string(),
      granted_at: z.string(),
      expires_at: z.nullish(z.string()),
      title: z.nullish(z.string()),
      description: z.nullish(z.string()),
    }),
  ),
});
export type ResetCreditsBody = z.infer<typeof ResetCreditsBodySchema>;

// ---- Wire result ----

// Defined once with the other results (src/protocol/results.ts); types only, nothing loads at start-up.
export type {
  RateLimitResetCredit,
  RateLimitResetCreditsSummary,
  RateLimitSnapshot,
  RateLimitsReadResult,
  RateLimitWindow,
} from '../protocol/results.js';
import type {
  RateLimitResetCreditsSummary,
  RateLimitSnapshot,
  RateLimitsReadResult,
  RateLimitWindow,
} from '../protocol/results.js';

/**
 * Reads the rate limits. The reset-credit details are asked for first (unless
 * `excludeResetCreditDetails`) and the usage right after, both in flight at
 * once as in the reference; any failure of the details (404, 401, 5xx, bad
 * body, 5 s) falls back to the count in the usage answer, or `null`. A failed
 * usage call throws `AuthError` (`backendUnauthorized` for a 401,
 * `backendTimeout`, else `backendFailed`) with the reference's text; an abort
 * of `options.signal` rethrows its reason.
 */
export async function readRateLimits(
  send: BackendGet,
  params: RateLimitsReadParams | undefined,
  options: ReadRateLimitsOptions,
): Promise<RateLimitsReadResult> {
  // The details must not outlive a failed usage call: they share this controller.
  const done = new AbortController();
  const detailsSignal = options.signal ? AbortSignal.any([options.signal, done.signal]) : done.signal;
  const details = params?.excludeResetCreditDetails
    ? Promise.resolve(null)
    : readResetCreditDetails(send, { ...options, signal: detailsSignal }).catch((error: unknown) => {
        if (options.signal?.aborted) throw options.signal.reason;
        if (!done.signal.aborted) {
          options.log?.warn(`failed to fetch rate limit reset credit details; falling back to the usage response: ${(error as Error).message}`);
        }
        return null;
      });
  const usage = getJson(
    send,
    'usage',
    params?.supportsLunaReserve ? { 'x-openai-codex-luna-reserve': '1' } : {},
    options.timeoutMs,
    UsageBodySchema,
    options,
  );
  const usageResult = await usage.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (!usageResult.ok) done.abort();
  const detailsResult = await details;
  if (!usageResult.ok) throw usageResult.error;
  return mapRateLimits(usageResult.value, detailsResult, options.identity);
}

async function readResetCreditDetails(send: BackendGet, options: ReadRateLimitsOptions): Promise<RateLimitResetCreditsSummary> {
  const body = await getJson(
    send,
    'rate-limit-reset-credits',
    {},
    options.resetCreditsTimeoutMs ?? DEFAULT_RESET_CREDITS_TIMEOUT_MS,
    ResetCreditsBodySchema,
    options,
  );
  return mapResetCredits(body);
}

/** One GET under its own deadline (headers and body), decoded with `schema`. */
async function getJson<T>(
  send: BackendGet,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
  schema: z.ZodMiniType<T>,
  options: ReadRateLimitsOptions,
): Promise<T> {
  const url = backendUrl(options.chatgptBaseUrl, path);
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const secrets = options.secrets ?? [];
  const failed = (error: unknown): never => {
    if (options.signal?.aborted) throw options.signal.reason;
    if (deadline.aborted) throw timedOut(PREFIX, 'GET', url, timeoutMs);
    if (error instanceof AuthError) throw error;
    throw sendFailed(PREFIX, url);
  };
  let response: Response;
  try {
    response = await send(path, headers, signal);
  } catch (error) {
    return failed(error);
  }
  let text: string;
  let truncated: boolean;
  try {
    if (!response.ok) throw await unexpectedStatus(PREFIX, 'GET', url, response, secrets);
    ({ text, truncated } = await readCapped(response, SUCCESS_BODY_BYTES));
  } catch (error) {
    return failed(error);
  }
  const ct = contentType(response);
  if (truncated) throw decodeError(PREFIX, url, `body larger than ${SUCCESS_BODY_BYTES} bytes`, ct, text, secrets, true);
  const json = parseJson(text);
  if (!json.ok) throw decodeError(PREFIX, url, json.why, ct, text, secrets);
  const parsed = schema.safeParse(json.value, { reportInput: true });
  if (!parsed.success) throw decodeError(PREFIX, url, serdeMessage(parsed.error), ct, text, secrets);
  return parsed.data;
}

// ---- Mapping (SPEC §10) ----

const KNOWN_PLANS: ReadonlySet<string> = new Set(PLAN_TYPES);
const planType = (value: string): PlanType =>
  value === 'education' ? 'edu' : KNOWN_PLANS.has(value) ? (value as PlanType) : 'unknown';

const REACHED_TYPES: ReadonlySet<string> = new Set([
  'rate_limit_reached',
  'workspace_owner_credits_depleted',
  'workspace_member_credits_depleted',
  'workspace_owner_usage_limit_reached',
  'workspace_member_usage_limit_reached',
]);

function mapWindow(window: z.infer<typeof WindowSchema> | null | undefined): RateLimitWindow | null {
  if (!window) return null;
  const seconds = window.limit_window_seconds;
  return {
    usedPercent: window.used_percent,
    // Rounded up, as the reference does: 18000 s → 300, 604800 s → 10080.
    windowDurationMins: seconds > 0 ? Math.ceil(seconds / 60) : null,
    resetsAt: window.reset_at,
  };
}

function snapshot(
  limitId: string,
  limitName: string | null,
  rateLimit: z.infer<typeof RateLimitDetailsSchema> | null | undefined,
  credits: z.infer<typeof CreditsSchema> | null | undefined,
  plan: PlanType,
  reached: string | null,
): RateLimitSnapshot {
  return {
    limitId,
    limitName,
    normalModelSlug: null,
    primary: mapWindow(rateLimit?.primary_window),
    secondary: mapWindow(rateLimit?.secondary_window),
    credits: credits ? { hasCredits: credits.has_credits, unlimited: credits.unlimited, balance: credits.balance ?? null } : null,
    individualLimit: null,
    spendControlReached: null,
    planType: plan,
    rateLimitReachedType: reached,
  };
}

/** The usage answer (and reset-credit details, if read) as the wire result. */
export function mapRateLimits(
  usage: UsageBody,
  details: RateLimitResetCreditsSummary | null,
  identity?: { accountId: string | null; userId: string | null },
): RateLimitsReadResult {
  const plan = planType(usage.plan_type);
  const reachedKind = usage.rate_limit_reached_type?.kind;
  const reached = reachedKind && REACHED_TYPES.has(reachedKind) ? reachedKind : null;
  const main = snapshot('codex', null, usage.rate_limit, usage.credits, plan, reached);
  const byId: Record<string, RateLimitSnapshot> = { codex: main };
  for (const extra of usage.additional_rate_limits ?? []) {
    byId[extra.metered_feature] = snapshot(extra.metered_feature, extra.limit_name, extra.rate_limit, null, plan, null);
  }
  const fallback = usage.rate_limit_reset_credits
    ? { availableCount: usage.rate_limit_reset_credits.available_count, credits: null }
    : null;
  // As the reference: account-bound fields only when the answer is about the active account.
  const aboutActive =
    identity !== undefined &&
    usage.account_id != null && usage.account_id === identity.accountId &&
    usage.user_id != null && usage.user_id === identity.userId;
  return {
    ordinaryUsageAllowed: aboutActive ? (usage.ordinary_usage_allowed ?? null) : null,
    rateLimits: main,
    rateLimitsByLimitId: byId,
    rateLimitResetCredits: details ?? fallback,
    accountId: usage.account_id ?? null,
    rateLimitUpsell: null,
  };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
function unixSeconds(value: string, what: string, id: string): number {
  const ms = RFC3339.test(value) ? Date.parse(value.replace(' ', 'T')) : NaN;
  if (Number.isNaN(ms)) throw new AuthError('backendFailed', `invalid ${what} for credit \`${id}\`: failed to parse timestamp \`${value}\``);
  return Math.floor(ms / 1000);
}

/** The details body as the wire summary; a bad timestamp rejects it whole (the count fallback applies). */
export function mapResetCredits(body: ResetCreditsBody): RateLimitResetCreditsSummary {
  return {
    availableCount: body.available_count,
    credits: body.credits.map((credit) => ({
      id: credit.id,
      resetType: credit.reset_type === 'codex_rate_limits' ? 'codexRateLimits' : 'unknown',
      status: credit.status === 'available' || credit.status === 'redeeming' || credit.status === 'redeemed' ? credit.status : 'unknown',
      grantedAt: unixSeconds(credit.granted_at, 'granted_at', credit.id),
      expiresAt: credit.expires_at == null ? null : unixSeconds(credit.expires_at, 'expires_at', credit.id),
      title: credit.title ?? null,
      description: credit.description ?? null,
    })),
  };
}
