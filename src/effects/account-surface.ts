// The ES module build: the UMD `main` loads its parts with a require() the bundle cannot follow.
import { findNodeAtLocation, parseTree } from 'jsonc-parser/lib/esm/main.js';
import * as z from 'zod/mini';
import type { SurfaceCall } from '../../machines/account-surface.js';
import { SURFACE_TEXT, type SurfaceMethod } from '../../machines/wording.js';
import { AuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { serdeIssue, serdeMessage } from '../protocol/serde.js';
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
import { backendUrl } from './backend-url.js';
import { parseRfc3339 } from './rfc3339.js';

/**
 * The ChatGPT-backend calls of the account surface (SPEC-account-surface
 * §13–§17): usage, security setup, workspace messages, the reset credit and
 * the add-credits nudge. Each is one request through the authorised path,
 * under its own deadline (§12.4), read and mapped to the wire result, with
 * the reference's texts (§12.3). A 401 throws `backendUnauthorized`, which
 * the session recovers from once (refresh, retry).
 */

/** One authorised request under `chatgpt_base_url` (`backendRequest` with the call's deadline). */
export type BackendSend = (
  path: string,
  init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal: AbortSignal; timeoutMs: number },
) => Promise<Response>;

export interface SurfaceOptions {
  /** `chatgpt_base_url`, to name the full URL in texts (the one `send` resolves against). */
  chatgptBaseUrl: string;
  /** The configured HTTP deadline: the nudge's, for which §12.4 lists none. */
  timeoutMs: number;
  /** Replaces every §12.4 deadline when set (`CODEX_ACCOUNT_SERVER_BACKEND_DEADLINE_MS`). */
  deadlineMs?: number | null;
  /** The request's own cancellation. */
  signal: AbortSignal;
  /** Values that must never be quoted from a body (the access token just sent). */
  secrets: readonly string[];
  log?: Logger;
}

/** The reference's deadlines (SPEC-account-surface §12.4, measured). */
export const SURFACE_DEADLINES_MS = {
  usage: 10_000,
  threadUsage: 60_000,
  securitySetup: 3_000,
  workspaceMessages: 1_000,
  consume: 10_000,
} as const satisfies Record<Exclude<SurfaceMethod, 'nudge'>, number>;

// ---- Backend bodies (field names from the reference's decode errors) ----

const i64 = () => z.int({ error: () => 'i64' });
const string = () => z.string({ error: () => 'a string' });

const ProfileBodySchema = z.looseObject({
  stats: z.looseObject({
    lifetime_tokens: z.nullish(i64()),
    peak_daily_tokens: z.nullish(i64()),
    longest_running_turn_sec: z.nullish(i64()),
    current_streak_days: z.nullish(i64()),
    longest_streak_days: z.nullish(i64()),
    daily_usage_buckets: z.nullish(z.array(z.looseObject({ start_date: string(), tokens: i64() }))),
  }),
});

const ThreadGroupSchema = z.looseObject({
  model: z.nullish(string()),
  reasoning_effort: z.nullish(string()),
  speed: z.nullish(string()),
  input_tokens: z.nullish(i64()),
  cached_input_tokens: z.nullish(i64()),
  net_new_input_tokens: z.nullish(i64()),
  output_tokens: z.nullish(i64()),
  total_tokens: z.nullish(i64()),
  estimated_usage_credits_micros: i64(),
});
const ThreadUsageBodySchema = z.looseObject({
  threads: z.array(
    z.looseObject({
      thread_id: string(),
      estimated_usage_credits_micros: z.nullish(i64()),
      estimated_usage_usd_micros: z.nullish(i64()),
      native_usage_usd_micros: z.nullish(i64()),
      groups: z.nullish(z.array(ThreadGroupSchema)),
    }),
  ),
});

const SecurityNoticeBodySchema = z.looseObject({
  notice: z.looseObject({
    title: z.string(),
    description: z.string(),
    action: z.looseObject({ label: z.string(), url: z.string() }),
  }),
});

const WorkspaceMessagesBodySchema = z.looseObject({
  messages: z.optional(
    z.array(
      z.looseObject({
        message_id: string(),
        message_type: string(),
        message_body: string(),
        created_at: z.nullish(string()),
        archived_at: z.nullish(string()),
      }),
    ),
  ),
});

const CONSUME_CODES = ['reset', 'nothing_to_reset', 'no_credit', 'already_redeemed'] as const;
const ConsumeBodySchema = z.looseObject({
  code: z.enum(CONSUME_CODES, { error: () => 'variant identifier' }),
  windows_reset: z.nullish(i64()),
});
const OUTCOMES = { reset: 'reset', nothing_to_reset: 'nothingToReset', no_credit: 'noCredit', already_redeemed: 'alreadyRedeemed' } as const;

// ---- One exchange ----

interface Exchange<T> {
  method: SurfaceMethod;
  verb: 'GET' | 'POST';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Answers for statuses that are no failure for this method (404 → feature off, 429 → cooldown). */
  onStatus?: (status: number) => T | undefined;
  /** Reads a 2xx body; `decode` words its failures as §12.3 does. */
  read: (text: string, decode: <S>(schema: z.ZodMiniType<S>) => S) => T;
}

/** Runs one exchange under its deadline; throws `AuthError` in the reference's words. */
async function exchange<T>(send: BackendSend, spec: Exchange<T>, options: SurfaceOptions): Promise<T> {
  const prefix = SURFACE_TEXT.prefix[spec.method];
  const url = backendUrl(options.chatgptBaseUrl, spec.path);
  const ms = spec.method === 'nudge' ? options.timeoutMs : (options.deadlineMs ?? SURFACE_DEADLINES_MS[spec.method]);
  const deadline = AbortSignal.timeout(ms);
  const signal = AbortSignal.any([options.signal, deadline]);
  const failed = (error: unknown): never => {
    if (options.signal.aborted) throw options.signal.reason;
    if (deadline.aborted) {
      throw spec.method === 'nudge'
        ? timedOut(prefix, spec.verb, url, ms)
        : new AuthError('backendTimeout', SURFACE_TEXT.timedOut[spec.method]);
    }
    if (error instanceof AuthError) throw error;
    throw sendFailed(prefix, url);
  };
  let response: Response;
  let text: string;
  let truncated: boolean;
  try {
    response = await send(spec.path, {
      method: spec.verb,
      headers: { Accept: '*/*', ...(spec.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...spec.headers },
      ...(spec.body === undefined ? {} : { body: JSON.stringify(spec.body) }),
      signal,
      timeoutMs: ms,
    });
    const special = spec.onStatus?.(response.status);
    if (special !== undefined) {
      await response.body?.cancel().catch(() => {});
      return special;
    }
    if (!response.ok) throw await unexpectedStatus(prefix, spec.verb, url, response, options.secrets);
    ({ text, truncated } = await readCapped(response, SUCCESS_BODY_BYTES));
  } catch (error) {
    return failed(error);
  }
  const ct = contentType(response);
  const fail = (why: string) => decodeError(prefix, url, why, ct, text, options.secrets, truncated);
  return spec.read(text, (schema) => {
    if (truncated) throw fail(`body larger than ${SUCCESS_BODY_BYTES} bytes`);
    const json = parseJson(text);
    if (!json.ok) throw fail(json.why);
    const parsed = schema.safeParse(json.value, { reportInput: true });
    if (!parsed.success) throw fail(`${serdeMessage(parsed.error)}${serdePosition(text, parsed.error)}`);
    return parsed.data;
  });
}

/**
 * ` at line L column C` of serde_json: after the value that was wrong, or
 * after the `}` of the object that lacks a field. Found with jsonc-parser's
 * syntax tree (offsets of every value), and only on this failure path.
 */
function serdePosition(text: string, error: z.core.$ZodError): string {
  const issue = serdeIssue(error);
  if (!issue) return '';
  const root = parseTree(text);
  const path = (issue.missing ? issue.path.slice(0, -1) : issue.path) as Array<string | number>;
  const node = root && (path.length === 0 ? root : findNodeAtLocation(root, path));
  if (!node) return '';
  const end = node.offset + node.length;
  const before = text.slice(0, end);
  const line = before.split('\n').length;
  return ` at line ${line} column ${end - (before.lastIndexOf('\n') + 1)}`;
}

// ---- The methods ----

const SUMMARY_NONE = {
  lifetimeTokens: null,
  peakDailyTokens: null,
  longestRunningTurnSec: null,
  currentStreakDays: null,
  longestStreakDays: null,
};

/** `account/usage/read` without `threadId` (§13.1): `GET …/profiles/me`. */
function readUsage(send: BackendSend, options: SurfaceOptions) {
  return exchange(send, {
    method: 'usage',
    verb: 'GET',
    path: 'profiles/me',
    read: (text, decode) => {
      const { stats } = decode(ProfileBodySchema);
      return {
        summary: {
          lifetimeTokens: stats.lifetime_tokens ?? null,
          peakDailyTokens: stats.peak_daily_tokens ?? null,
          longestRunningTurnSec: stats.longest_running_turn_sec ?? null,
          currentStreakDays: stats.current_streak_days ?? null,
          longestStreakDays: stats.longest_streak_days ?? null,
        },
        dailyUsageBuckets: stats.daily_usage_buckets?.map((b) => ({ startDate: b.start_date, tokens: b.tokens })) ?? null,
        threadUsage: null,
      };
    },
  }, options);
}

/** `account/usage/read` with `threadId` (§13.2): `POST …/usage/thread_usage/query`; 403/404 mean no billing route. */
function readThreadUsage(send: BackendSend, threadId: string, options: SurfaceOptions) {
  const none = { summary: SUMMARY_NONE, dailyUsageBuckets: null, threadUsage: null };
  return exchange<object>(send, {
    method: 'threadUsage',
    verb: 'POST',
    path: 'usage/thread_usage/query',
    body: { thread_ids: [threadId] },
    onStatus: (status) => (status === 403 || status === 404 ? none : undefined),
    read: (text) => {
      const json = parseJson(text);
      const parsed = json.ok ? ThreadUsageBodySchema.safeParse(json.value) : null;
      if (!parsed?.success) throw new AuthError('backendFailed', SURFACE_TEXT.threadInvalid);
      const { threads } = parsed.data;
      if (threads.some((t) => t.thread_id !== threadId) || threads.length > 1) {
        throw new AuthError('backendFailed', SURFACE_TEXT.threadUnexpected);
      }
      const entry = threads[0];
      if (entry?.estimated_usage_credits_micros == null) throw new AuthError('backendFailed', SURFACE_TEXT.threadOmitted);
      return {
        ...none,
        threadUsage: {
          threadId: entry.thread_id,
          estimatedUsageCreditsMicros: entry.estimated_usage_credits_micros,
          estimatedUsageUsdMicros: entry.estimated_usage_usd_micros ?? null,
          nativeUsageUsdMicros: entry.native_usage_usd_micros ?? null,
          groups: (entry.groups ?? []).map((g) => ({
            model: g.model ?? null,
            reasoningEffort: g.reasoning_effort ?? null,
            speed: g.speed ?? null,
            estimatedUsageCreditsMicros: g.estimated_usage_credits_micros,
            netNewInputTokens: g.net_new_input_tokens ?? null,
            cachedInputTokens: g.cached_input_tokens ?? null,
            inputTokens: g.input_tokens ?? null,
            outputTokens: g.output_tokens ?? null,
            totalTokens: g.total_tokens ?? null,
          })),
        },
      };
    },
  }, options);
}

/**
 * `account/securitySetup/read` (§14): `GET …/security-setup`. A body without
 * a complete notice is no notice; a failure throws (the machine answers no
 * notice, after a 401 has had its refresh).
 */
function readSecuritySetup(send: BackendSend, call: Extract<SurfaceCall, { kind: 'securitySetup' }>, options: SurfaceOptions) {
  return exchange(send, {
    method: 'securitySetup',
    verb: 'GET',
    path: 'security-setup',
    read: (text) => {
      const json = parseJson(text);
      const parsed = json.ok ? SecurityNoticeBodySchema.safeParse(json.value) : null;
      if (!parsed?.success) return { notice: null };
      const { title, description, action } = parsed.data.notice;
      return {
        notice: { accountId: call.accountId, userId: call.userId, title, description, action: { label: action.label, url: action.url } },
      };
    },
  }, options);
}

/** `account/workspaceMessages/read` (§15): `GET …/workspace-messages`; 404 means the feature is off. */
function readWorkspaceMessages(send: BackendSend, options: SurfaceOptions) {
  const seconds = (value: string | null | undefined) => {
    if (value == null) return null;
    const parsed = parseRfc3339(value);
    if (!parsed.ok) throw new AuthError('backendFailed', SURFACE_TEXT.workspaceTimestamp(value, parsed.why));
    return parsed.seconds;
  };
  return exchange(send, {
    method: 'workspaceMessages',
    verb: 'GET',
    path: 'workspace-messages',
    headers: { 'Cache-Control': 'no-store' },
    onStatus: (status) => (status === 404 ? { featureEnabled: false, messages: [] } : undefined),
    read: (text, decode) => {
      // serde reads a struct from an empty sequence as all defaults.
      const body = text.trim() === '[]' ? { messages: [] } : decode(WorkspaceMessagesBodySchema);
      return {
        featureEnabled: true,
        messages: (body.messages ?? []).map((m) => ({
          messageId: m.message_id,
          messageType: m.message_type === 'headline' || m.message_type === 'announcement' ? m.message_type : 'unknown',
          messageBody: m.message_body,
          createdAt: seconds(m.created_at),
          archivedAt: seconds(m.archived_at),
        })),
      };
    },
  }, options);
}

/** `account/rateLimitResetCredit/consume` (§16): the key goes in the body only; any non-2xx is an error. */
function consumeResetCredit(send: BackendSend, call: Extract<SurfaceCall, { kind: 'consume' }>, options: SurfaceOptions) {
  return exchange(send, {
    method: 'consume',
    verb: 'POST',
    path: 'rate-limit-reset-credits/consume',
    body: { redeem_request_id: call.idempotencyKey, ...(call.creditId === null ? {} : { credit_id: call.creditId }) },
    read: (text, decode) => ({ outcome: OUTCOMES[decode(ConsumeBodySchema).code] }),
  }, options);
}

/** `account/sendAddCreditsNudgeEmail` (§17): any 2xx is `sent` (body ignored), 429 `cooldown_active`. */
function sendNudge(send: BackendSend, call: Extract<SurfaceCall, { kind: 'nudge' }>, options: SurfaceOptions) {
  return exchange(send, {
    method: 'nudge',
    verb: 'POST',
    path: 'accounts/send_add_credits_nudge_email',
    body: { credit_type: call.creditType },
    onStatus: (status) => (status === 429 ? { status: 'cooldown_active' } : undefined),
    read: () => ({ status: 'sent' }),
  }, options);
}

/** Runs one account-surface call; the result is in wire shape. */
export function callSurface(send: BackendSend, call: SurfaceCall, options: SurfaceOptions): Promise<unknown> {
  switch (call.kind) {
    case 'usage':
      return call.threadId === null ? readUsage(send, options) : readThreadUsage(send, call.threadId, options);
    case 'securitySetup':
      return readSecuritySetup(send, call, options);
    case 'workspaceMessages':
      return readWorkspaceMessages(send, options);
    case 'consume':
      return consumeResetCredit(send, call, options);
    case 'nudge':
      return sendNudge(send, call, options);
  }
}
