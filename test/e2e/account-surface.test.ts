import { describe, expect, it } from 'vitest';
import type { Reply } from '../helpers/backend.js';
import { answerHostRefresh, hostToken, silence, useSurface, wham, type Surface } from '../helpers/surface.js';

/**
 * The ChatGPT-backend methods of SPEC-account-surface §13–§17, end to end:
 * the built server as a child process, the backend a real HTTPS server on
 * 127.0.0.1, the refresh URL a real issuer stand-in. Every method goes
 * through the same table: each auth mode, each recorded backend answer
 * (200 full and minimal, 404, 401 then recovery, 5xx, non-JSON, silence).
 */

const THREAD = '00000000-0000-4000-8000-00000000000a';
const NO_SUMMARY = { lifetimeTokens: null, peakDailyTokens: null, longestRunningTurnSec: null, currentStreakDays: null, longestStreakDays: null };
const NO_NOTICE = { notice: null };

interface Case {
  name: string;
  method: string;
  params?: unknown;
  path: string;
  verb: 'GET' | 'POST';
  /** The JSON body the server sends, for POSTs. */
  sent?: unknown;
  full: Reply;
  fullResult: unknown;
  minimal: Reply;
  minimalResult: unknown;
  /** `<what>` of the refusals (§12.1); none for security setup, which answers no notice. */
  what?: string;
  /** The §12.3 prefix; `null` when failures answer `fallback` instead. */
  prefix: string | null;
  fallback?: unknown;
  /** What a 404 answers, when it is no error. */
  on404?: unknown;
  /** What a 2xx non-JSON body answers: the decode error (`undefined`), another text, or a result. */
  nonJson?: { error: string } | { result: unknown };
  /** The deadline's answer (§12.4) and how it is set short. */
  timeout: { env: Record<string, string>; answer: { error: string } | { result: unknown } };
}

const SHORT = { CODEX_ACCOUNT_SERVER_BACKEND_DEADLINE_MS: '300' };

const CASES: Case[] = [
  {
    name: 'account/usage/read (account-wide)',
    method: 'account/usage/read',
    params: {},
    path: 'profiles/me',
    verb: 'GET',
    full: {
      json: {
        stats: {
          lifetime_tokens: 123456789,
          peak_daily_tokens: 5000000,
          longest_running_turn_sec: 3600,
          current_streak_days: 3,
          longest_streak_days: 12,
          daily_usage_buckets: [
            { start_date: '2026-11-24', tokens: 42000 },
            { start_date: '2026-11-25', tokens: 7 },
          ],
        },
      },
    },
    fullResult: {
      summary: { lifetimeTokens: 123456789, peakDailyTokens: 5000000, longestRunningTurnSec: 3600, currentStreakDays: 3, longestStreakDays: 12 },
      dailyUsageBuckets: [
        { startDate: '2026-11-24', tokens: 42000 },
        { startDate: '2026-11-25', tokens: 7 },
      ],
      threadUsage: null,
    },
    minimal: { json: { stats: {} } },
    minimalResult: { summary: NO_SUMMARY, dailyUsageBuckets: null, threadUsage: null },
    what: 'to read token usage',
    prefix: 'failed to fetch token usage profile',
    timeout: { env: SHORT, answer: { error: 'token usage profile fetch timed out' } },
  },
  {
    name: 'account/usage/read (one thread)',
    method: 'account/usage/read',
    params: { threadId: THREAD.toUpperCase() },
    path: 'usage/thread_usage/query',
    verb: 'POST',
    sent: { thread_ids: [THREAD] },
    full: {
      json: {
        threads: [
          {
            thread_id: THREAD,
            estimated_usage_credits_micros: 1500000,
            estimated_usage_usd_micros: 60000,
            native_usage_usd_micros: 55000,
            groups: [
              {
                model: 'gpt-5.5',
                reasoning_effort: 'high',
                speed: 'standard',
                input_tokens: 1000,
                cached_input_tokens: 200,
                net_new_input_tokens: 800,
                output_tokens: 300,
                total_tokens: 1300,
                estimated_usage_credits_micros: 1500000,
                unknown_field: true,
              },
            ],
          },
        ],
      },
    },
    fullResult: {
      summary: NO_SUMMARY,
      dailyUsageBuckets: null,
      threadUsage: {
        threadId: THREAD,
        estimatedUsageCreditsMicros: 1500000,
        estimatedUsageUsdMicros: 60000,
        nativeUsageUsdMicros: 55000,
        groups: [
          {
            model: 'gpt-5.5',
            reasoningEffort: 'high',
            speed: 'standard',
            estimatedUsageCreditsMicros: 1500000,
            netNewInputTokens: 800,
            cachedInputTokens: 200,
            inputTokens: 1000,
            outputTokens: 300,
            totalTokens: 1300,
          },
        ],
      },
    },
    minimal: { json: { threads: [{ thread_id: THREAD, estimated_usage_credits_micros: -5 }] } },
    minimalResult: {
      summary: NO_SUMMARY,
      dailyUsageBuckets: null,
      threadUsage: { threadId: THREAD, estimatedUsageCreditsMicros: -5, estimatedUsageUsdMicros: null, nativeUsageUsdMicros: null, groups: [] },
    },
    what: 'to read token usage',
    prefix: 'failed to fetch thread usage',
    on404: { summary: NO_SUMMARY, dailyUsageBuckets: null, threadUsage: null },
    nonJson: { error: 'failed to fetch thread usage: Invalid thread usage response.' },
    timeout: { env: SHORT, answer: { error: 'thread usage fetch timed out' } },
  },
  {
    name: 'account/securitySetup/read',
    method: 'account/securitySetup/read',
    path: 'security-setup',
    verb: 'GET',
    full: {
      json: {
        notice: {
          title: 'Secure your account',
          description: 'Turn on multi-factor authentication.',
          action: { label: 'Set up MFA', url: 'https://chatgpt.com/#settings/Security' },
          account_id: 'someone-else',
          user_id: 'someone-else',
        },
      },
    },
    fullResult: {
      notice: {
        accountId: 'ws-1',
        userId: 'user-1',
        title: 'Secure your account',
        description: 'Turn on multi-factor authentication.',
        action: { label: 'Set up MFA', url: 'https://chatgpt.com/#settings/Security' },
      },
    },
    minimal: { json: {} },
    minimalResult: NO_NOTICE,
    prefix: null,
    fallback: NO_NOTICE,
    on404: NO_NOTICE,
    nonJson: { result: NO_NOTICE },
    timeout: { env: SHORT, answer: { result: NO_NOTICE } },
  },
  {
    name: 'account/workspaceMessages/read',
    method: 'account/workspaceMessages/read',
    path: 'workspace-messages',
    verb: 'GET',
    full: {
      json: {
        messages: [
          { message_id: 'm1', message_type: 'headline', message_body: 'Maintenance tonight', created_at: '2026-11-25T08:00:00Z', archived_at: null },
          {
            message_id: 'm2',
            message_type: 'HEADLINE',
            message_body: 'Archived',
            created_at: '2026-11-01T12:34:56.789+02:00',
            archived_at: '2026-01-01T00:00:00.5Z',
          },
          { message_id: 'm2', message_type: 'announcement', message_body: 'Twice' },
        ],
      },
    },
    fullResult: {
      featureEnabled: true,
      messages: [
        { messageId: 'm1', messageType: 'headline', messageBody: 'Maintenance tonight', createdAt: 1795593600, archivedAt: null },
        { messageId: 'm2', messageType: 'unknown', messageBody: 'Archived', createdAt: 1793529296, archivedAt: 1767225600 },
        { messageId: 'm2', messageType: 'announcement', messageBody: 'Twice', createdAt: null, archivedAt: null },
      ],
    },
    minimal: { json: {} },
    minimalResult: { featureEnabled: true, messages: [] },
    what: 'to read workspace messages',
    prefix: 'failed to fetch workspace messages',
    on404: { featureEnabled: false, messages: [] },
    timeout: { env: SHORT, answer: { error: 'workspace messages fetch timed out' } },
  },
  {
    name: 'account/rateLimitResetCredit/consume',
    method: 'account/rateLimitResetCredit/consume',
    params: { idempotencyKey: ' key 1 ', creditId: 'credit-1' },
    path: 'rate-limit-reset-credits/consume',
    verb: 'POST',
    sent: { redeem_request_id: ' key 1 ', credit_id: 'credit-1' },
    full: { json: { code: 'reset', windows_reset: 2 } },
    fullResult: { outcome: 'reset' },
    minimal: { json: { code: 'already_redeemed' } },
    minimalResult: { outcome: 'alreadyRedeemed' },
    what: 'for rate limit reset credits',
    prefix: 'failed to consume rate limit reset',
    timeout: { env: SHORT, answer: { error: 'rate limit reset consume timed out' } },
  },
  {
    name: 'account/sendAddCreditsNudgeEmail',
    method: 'account/sendAddCreditsNudgeEmail',
    params: { creditType: 'usage_limit' },
    path: 'accounts/send_add_credits_nudge_email',
    verb: 'POST',
    sent: { credit_type: 'usage_limit' },
    full: { json: { status: 'cooldown_active', extra: 1 } },
    fullResult: { status: 'sent' },
    minimal: { status: 204 },
    minimalResult: { status: 'sent' },
    what: 'to notify workspace owner',
    prefix: 'failed to notify workspace owner',
    nonJson: { result: { status: 'sent' } },
    // §12.4 lists no deadline: the configured HTTP deadline applies (issue 12, item 8).
    timeout: { env: { CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS: '300' }, answer: { error: 'failed to notify workspace owner: POST {url} timed out after 300ms' } },
  },
];

describe.each(CASES)('$name', (c) => {
  const start = useSurface();
  const url = (x: Surface) => `${x.backend.baseUrl}wham/${c.path}`;
  const call = (x: Surface) => x.s.request(c.method, c.params);
  const expectAnswer = (response: { result?: unknown; error?: { message: string } }, answer: { error: string } | { result: unknown }, x: Surface) => {
    if ('result' in answer) expect(response.result).toEqual(answer.result);
    else expect(response.error).toMatchObject({ code: -32603, message: answer.error.replace('{url}', url(x)) });
  };
  const failure = async (reply: Reply, expected: (x: Surface) => string) => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham(c.path), reply);
    const response = await call(x);
    if (c.prefix === null) expect(response.result).toEqual(c.fallback);
    else expect(response.error).toMatchObject({ code: -32603, message: expected(x), data: { reason: expect.any(String) } });
  };

  it.each([
    ['a logged-out server', 'loggedOut', 'codex account authentication required', { reason: 'auth_required', recovery: 'login' }],
    ['an API key', 'apiKey', 'chatgpt authentication required', { reason: 'chatgpt_auth_required', recovery: 'use_chatgpt_login' }],
  ] as const)('refuses %s without calling the backend', async (_, mode, text, data) => {
    const x = await start({ mode });
    const response = await call(x);
    if (c.what) expect(response.error).toEqual({ code: -32600, message: `${text} ${c.what}`, data });
    else expect(response.result).toEqual(NO_NOTICE);
    expect(x.calls(c.path)).toHaveLength(0);
  });

  it('maps a full answer with stored ChatGPT credentials, sending the reference headers', async () => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham(c.path), c.full);
    expect((await call(x)).result).toEqual(c.fullResult);
    const [sent] = x.calls(c.path);
    expect(sent).toMatchObject({ method: c.verb });
    expect(sent!.headers).toMatchObject({
      authorization: `Bearer ${x.accessToken}`,
      'chatgpt-account-id': 'ws-1',
      'user-agent': (await x.s.response(1)).result.userAgent,
      accept: '*/*',
    });
    expect(sent!.headers.originator).toBeUndefined();
    if (c.sent !== undefined) {
      expect(sent!.headers['content-type']).toBe('application/json');
      expect(JSON.parse(sent!.body)).toEqual(c.sent);
    }
    expect(sent!.headers['cache-control']).toBe(c.method === 'account/workspaceMessages/read' ? 'no-store' : undefined);
    expect(x.s.notifications('account/updated')).toHaveLength(0);
  });

  it('answers with host tokens as the host gave them', async () => {
    const x = await start({ mode: 'host' });
    x.backend.on(wham(c.path), c.full);
    const response = await call(x);
    if (c.what) {
      expect(response.result).toEqual(c.fullResult);
      expect(x.calls(c.path)[0]!.headers.authorization).toBe(`Bearer ${x.accessToken}`);
    } else {
      // Host tokens get no security notice, and no call (§14).
      expect(response.result).toEqual(NO_NOTICE);
      expect(x.calls(c.path)).toHaveLength(0);
    }
  });

  it('maps a minimal answer', async () => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham(c.path), c.minimal);
    expect((await call(x)).result).toEqual(c.minimalResult);
  });

  it('answers a 404 as the reference does', async () => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham(c.path), { status: 404, json: { detail: 'Not Found' } });
    const response = await call(x);
    if (c.on404 !== undefined) expect(response.result).toEqual(c.on404);
    else {
      expect(response.error).toMatchObject({
        code: -32603,
        message: `${c.prefix}: ${c.verb} ${url(x)} failed: 404 Not Found; content-type=application/json; body={"detail":"Not Found"}`,
        data: { reason: 'backend_request_failed', recovery: 'retry' },
      });
    }
  });

  it('recovers from a 401 with stored credentials: one refresh, one retry with the new token', async () => {
    const x = await start({ mode: 'stored' });
    const first = x.accessToken;
    x.backend.on(wham(c.path), (req) => (req.headers.authorization === `Bearer ${first}` ? { status: 401, json: { e: 1 } } : c.full));
    expect((await call(x)).result).toEqual(c.fullResult);
    expect(x.issuer.requestsTo('/oauth/token')).toHaveLength(1);
    const [before, after] = x.calls(c.path);
    expect(before!.headers.authorization).toBe(`Bearer ${first}`);
    expect(after!.headers.authorization).not.toBe(`Bearer ${first}`);
    if (c.sent !== undefined) expect(JSON.parse(after!.body)).toEqual(c.sent);
  });

  it('gives a second 401 after the refresh as the §12.3 error', async () => {
    await failure(
      { status: 401, json: { e: 1 } },
      (x) => `${c.prefix}: ${c.verb} ${url(x)} failed: 401 Unauthorized; content-type=application/json; body={"e":1}`,
    );
  });

  it('words a 5xx with status, content type and body', async () => {
    await failure(
      { status: 502, text: 'upstream <b>down</b>', headers: { 'content-type': 'text/html' } },
      (x) => `${c.prefix}: ${c.verb} ${url(x)} failed: 502 Bad Gateway; content-type=text/html; body=upstream <b>down</b>`,
    );
  });

  it('answers a non-JSON 2xx body as the reference does', async () => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham(c.path), { text: 'not json', headers: { 'content-type': 'text/plain' } });
    const response = await call(x);
    const expected = c.nonJson ?? {
      error: `${c.prefix}: Decode error for ${url(x)}: expected ident at line 1 column 2; content-type=text/plain; body=not json`,
    };
    expectAnswer(response, expected, x);
  });

  it('gives up on a silent backend at its deadline', async () => {
    const x = await start({ mode: 'stored', env: c.timeout.env });
    x.backend.on(wham(c.path), silence);
    const started = Date.now();
    const response = await call(x);
    expect(Date.now() - started).toBeLessThan(3_000);
    expectAnswer(response, c.timeout.answer, x);
    if ('error' in c.timeout.answer) expect(response.error.data.reason).toBe('backend_timeout');
  });
});

// Security setup asks nothing with host tokens (§14); every other method recovers through the host.
describe.each(CASES.filter((c) => c.what !== undefined))('$name with host tokens', (c) => {
  const start = useSurface();

  it('recovers from a 401 with host tokens by asking the host once', async () => {
    const x = await start({ mode: 'host' });
    const second = hostToken('second');
    x.backend.on(wham(c.path), (req) => (req.headers.authorization === `Bearer ${second}` ? c.full : { status: 401, json: { e: 1 } }));
    x.s.send({ id: 'call', method: c.method, ...(c.params === undefined ? {} : { params: c.params }) });
    const asked = await answerHostRefresh(x.s, second);
    expect(asked.params).toEqual({ reason: 'unauthorized', previousAccountId: 'ws-1' });
    expect((await x.s.response('call')).result).toEqual(c.fullResult);
    expect(x.calls(c.path).map((r) => r.headers.authorization)).toEqual([`Bearer ${x.accessToken}`, `Bearer ${second}`]);
  });

});
