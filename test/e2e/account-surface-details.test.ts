import { describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { chatgptJwt, makeJwt } from '../helpers/jwt.js';
import { useServers } from '../helpers/server-process.js';
import { useSurface, wham } from '../helpers/surface.js';

/**
 * What each account-surface method does beyond the common table
 * (test/e2e/account-surface.test.ts): parameter checks before the auth gate,
 * the answers peculiar to one method, the URL rule, concurrency, and the
 * gateway-OAuth answers (SPEC-account-surface §12–§18).
 */

const THREAD = '00000000-0000-4000-8000-00000000000a';
const NO_SUMMARY = { lifetimeTokens: null, peakDailyTokens: null, longestRunningTurnSec: null, currentStreakDays: null, longestStreakDays: null };

describe('parameter checks come before the auth gate (§12.1)', () => {
  const env = useServers();

  it.each([
    ['account/usage/read', { threadId: 'nope' }, -32600, 'invalid thread id: invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1'],
    ['account/usage/read', { threadId: '' }, -32600, 'invalid thread id: invalid length: expected length 32 for simple format, found 0'],
    ['account/usage/read', { threadId: '00000000-0000-4000-8000-00000000000' }, -32600, 'invalid thread id: invalid group length in group 4: expected 12, found 11'],
    ['account/usage/read', { threadId: 7 }, -32600, 'Invalid request: invalid type: integer `7`, expected a string'],
    ['account/rateLimitResetCredit/consume', undefined, -32600, 'Invalid request: missing field `params`'],
    ['account/rateLimitResetCredit/consume', {}, -32600, 'Invalid request: missing field `idempotencyKey`'],
    ['account/rateLimitResetCredit/consume', { idempotencyKey: '' }, -32600, 'idempotencyKey must not be empty'],
    ['account/rateLimitResetCredit/consume', { idempotencyKey: 'k', creditId: '' }, -32600, 'creditId must not be empty'],
    ['account/sendAddCreditsNudgeEmail', {}, -32600, 'Invalid request: missing field `creditType`'],
    ['account/sendAddCreditsNudgeEmail', { creditType: 'CREDITS' }, -32600, 'Invalid request: unknown variant `CREDITS`, expected `credits` or `usage_limit`'],
    ['account/sendAddCreditsNudgeEmail', { creditType: null }, -32600, 'Invalid request: invalid type: null, expected string or map'],
    ['account/securitySetup/read', { x: 1 }, -32600, 'Invalid request: invalid type: map, expected unit'],
    ['account/securitySetup/read', [], -32600, 'Invalid request: invalid type: sequence, expected unit'],
  ])('%s %j → %s', async (method, params, code, message) => {
    const s = await env.start();
    expect((await s.request(method, params)).error).toMatchObject({ code, message, data: { reason: expect.any(String) } });
  });

  it('accepts absent, null and empty params where none are needed', async () => {
    const s = await env.start();
    for (const params of [undefined, null, {}]) {
      expect((await s.request('account/securitySetup/read', params)).result).toEqual({ notice: null });
      expect((await s.request('account/usage/read', params)).error.message).toBe('codex account authentication required to read token usage');
      expect((await s.request('account/workspaceMessages/read', params)).error.message).toBe(
        'codex account authentication required to read workspace messages',
      );
    }
  });

  it('treats a stored ChatGPT login hidden by forced_login_method = "api" as logged out', async () => {
    const s = await env.start({
      config: 'forced_login_method = "api"\n',
      auth: { auth_mode: 'chatgpt', tokens: { id_token: chatgptJwt({ accountId: 'ws-1' }), access_token: chatgptJwt({ accountId: 'ws-1' }), refresh_token: 'rt', account_id: 'ws-1' }, last_refresh: null },
    });
    expect((await s.request('account/rateLimitResetCredit/consume', { idempotencyKey: 'k' })).error.message).toBe(
      'codex account authentication required for rate limit reset credits',
    );
  });
});

describe('account/usage/read for one thread (§13.2)', () => {
  const start = useSurface();
  const read = async (reply: Parameters<FakeBackend['on']>[1], threadId = THREAD) => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham('usage/thread_usage/query'), reply);
    const response = await x.s.request('account/usage/read', { threadId });
    return { x, response };
  };

  it('sends the canonical id of every accepted UUID form and never calls profiles/me', async () => {
    for (const form of [THREAD.replace(/-/g, ''), `urn:uuid:${THREAD}`, `{${THREAD.toUpperCase()}}`]) {
      const { x, response } = await read({ json: { threads: [{ thread_id: THREAD, estimated_usage_credits_micros: 1 }] } }, form);
      expect(response.result.threadUsage.threadId).toBe(THREAD);
      expect(JSON.parse(x.calls('usage/thread_usage/query')[0]!.body)).toEqual({ thread_ids: [THREAD] });
      expect(x.calls('profiles/me')).toHaveLength(0);
    }
  });

  it('answers a 403 as an unavailable billing route', async () => {
    const { response } = await read({ status: 403, text: 'forbidden' });
    expect(response.result).toEqual({ summary: NO_SUMMARY, dailyUsageBuckets: null, threadUsage: null });
  });

  it.each([
    [{ threads: [] }, 'failed to fetch thread usage: thread usage response omitted requested thread'],
    [{ threads: [{ thread_id: THREAD, estimated_usage_credits_micros: null }] }, 'failed to fetch thread usage: thread usage response omitted requested thread'],
    [{ threads: [{ thread_id: THREAD.toUpperCase(), estimated_usage_credits_micros: 1 }] }, 'failed to fetch thread usage: thread usage returned unexpected threads'],
    [
      { threads: [{ thread_id: THREAD, estimated_usage_credits_micros: 1 }, { thread_id: THREAD, estimated_usage_credits_micros: 1 }] },
      'failed to fetch thread usage: thread usage returned unexpected threads',
    ],
    [{}, 'failed to fetch thread usage: Invalid thread usage response.'],
    [{ threads: null }, 'failed to fetch thread usage: Invalid thread usage response.'],
    [{ threads: [{ thread_id: THREAD, estimated_usage_credits_micros: 1.5 }] }, 'failed to fetch thread usage: Invalid thread usage response.'],
    [{ threads: [{ thread_id: THREAD, estimated_usage_credits_micros: 1, groups: [{ model: 'm' }] }] }, 'failed to fetch thread usage: Invalid thread usage response.'],
  ])('answers %j with its own text', async (body, message) => {
    const { response } = await read({ json: body });
    expect(response.error).toMatchObject({ code: -32603, message });
  });
});

describe('account/usage/read account-wide decode errors (§13.1)', () => {
  const start = useSurface();

  it.each([
    ['{}', 'missing field `stats` at line 1 column 2'],
    ['{"stats":{"lifetime_tokens":1.5}}', 'invalid type: floating point `1.5`, expected i64 at line 1 column 31'],
    ['{"stats":{"daily_usage_buckets":[{"start_date":"2026-11-24"}]}}', 'missing field `tokens` at line 1 column 60'],
    ['zz', 'expected value at line 1 column 1'],
  ])('words %s as serde does', async (body, why) => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham('profiles/me'), { text: body, headers: { 'content-type': 'application/json' } });
    expect((await x.s.request('account/usage/read', {})).error.message).toBe(
      `failed to fetch token usage profile: Decode error for ${x.backend.baseUrl}wham/profiles/me: ${why}; content-type=application/json; body=${body}`,
    );
  });
});

/** auth.json of a managed login whose id token carries only `auth` (account and user claims as given). */
const storedWithIdClaims = (auth: Record<string, string>) => ({
  auth_mode: 'chatgpt',
  tokens: { id_token: makeJwt({ 'https://api.openai.com/auth': auth }), access_token: chatgptJwt({ accountId: 'ws-1' }), refresh_token: 'rt', account_id: 'ws-1' },
  last_refresh: null,
});

describe('account/securitySetup/read never fails (§14)', () => {
  const start = useSurface();

  it.each([
    [{ notice: null }],
    [{ title: 'flat', description: 'd', action: { label: 'l', url: 'u' } }],
    [{ notice: { title: 't', description: 'd', action: { label: 'l' } } }],
    [{ notice: { title: 't', action: { label: 'l', url: 'u' } } }],
  ])('answers no notice for %j', async (body) => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham('security-setup'), { json: body });
    expect((await x.s.request('account/securitySetup/read')).result).toEqual({ notice: null });
  });

  it('passes values through unvalidated, and fetches again on every call', async () => {
    const x = await start({ mode: 'stored' });
    const notice = { title: ' ', description: '', action: { label: 'go', url: 'javascript:alert(1)' } };
    x.backend.on(wham('security-setup'), { text: JSON.stringify({ notice }), headers: { 'content-type': 'text/plain' } });
    const expected = { notice: { accountId: 'ws-1', userId: 'user-1', ...notice } };
    expect((await x.s.request('account/securitySetup/read')).result).toEqual(expected);
    expect((await x.s.request('account/securitySetup/read')).result).toEqual(expected);
    expect(x.calls('security-setup')).toHaveLength(2);
  });

  it('asks nothing when the stored login names no user', async () => {
    const x = await start({ mode: 'stored', auth: storedWithIdClaims({ chatgpt_account_id: 'ws-1' }) });
    expect((await x.s.request('account/securitySetup/read')).result).toEqual({ notice: null });
    expect(x.calls('security-setup')).toHaveLength(0);
  });

  it('takes the user id from the id token claim user_id when chatgpt_user_id is absent (§20)', async () => {
    const x = await start({ mode: 'stored', auth: storedWithIdClaims({ chatgpt_account_id: 'ws-1', user_id: 'user-legacy' }) });
    x.backend.on(wham('security-setup'), { json: { notice: { title: 't', description: 'd', action: { label: 'l', url: 'u' } } } });
    expect((await x.s.request('account/securitySetup/read')).result.notice).toMatchObject({ accountId: 'ws-1', userId: 'user-legacy' });
  });
});

describe('account/workspaceMessages/read (§15)', () => {
  const start = useSurface();

  it('keeps order and duplicates, and reads an empty sequence or unknown keys as no messages', async () => {
    const x = await start({ mode: 'stored' });
    for (const body of ['[]', '{"other":1}']) {
      x.backend.on(wham('workspace-messages'), { text: body, headers: { 'content-type': 'application/json' } });
      expect((await x.s.request('account/workspaceMessages/read')).result).toEqual({ featureEnabled: true, messages: [] });
    }
  });

  it.each([
    ['2026-11-25 08:00:00', 'premature end of input'],
    ['2026-11-25T08:00:00Zjunk', 'trailing input'],
    ['2026-13-25T08:00:00Z', 'input is out of range'],
    ['yesterday', 'input contains invalid characters'],
  ])('words the timestamp %s without a prefix', async (stamp, why) => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham('workspace-messages'), {
      json: { messages: [{ message_id: 'm', message_type: 'headline', message_body: 'b', created_at: stamp }] },
    });
    expect((await x.s.request('account/workspaceMessages/read')).error).toMatchObject({
      code: -32603,
      message: `failed to parse workspace message timestamp \`${stamp}\`: ${why}`,
    });
  });

  it('gives a decode error for messages:null', async () => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham('workspace-messages'), { json: { messages: null } });
    expect((await x.s.request('account/workspaceMessages/read')).error.message).toMatch(
      /^failed to fetch workspace messages: Decode error for .*wham\/workspace-messages: invalid type: null, expected .* at line 1 column 16; content-type=application\/json; body=\{"messages":null\}$/,
    );
  });
});

describe('account/rateLimitResetCredit/consume (§16)', () => {
  const start = useSurface();
  const consume = async (reply: Parameters<FakeBackend['on']>[1], params: object = { idempotencyKey: 'k' }) => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham('rate-limit-reset-credits/consume'), reply);
    return { x, response: await x.s.request('account/rateLimitResetCredit/consume', params) };
  };

  it('maps every code and leaves credit_id out when it is not given', async () => {
    for (const [code, outcome] of [['reset', 'reset'], ['nothing_to_reset', 'nothingToReset'], ['no_credit', 'noCredit'], ['already_redeemed', 'alreadyRedeemed']]) {
      const { x, response } = await consume({ json: { code } }, { idempotencyKey: 'k', creditId: null });
      expect(response.result).toEqual({ outcome });
      expect(JSON.parse(x.calls('rate-limit-reset-credits/consume')[0]!.body)).toEqual({ redeem_request_id: 'k' });
      expect(x.s.notifications()).toEqual([]);
    }
  });

  it('refuses an unknown code with serde words and position', async () => {
    const { x, response } = await consume({ json: { code: 'redeeming' } });
    expect(response.error.message).toBe(
      `failed to consume rate limit reset: Decode error for ${x.backend.baseUrl}wham/rate-limit-reset-credits/consume: ` +
        'unknown variant `redeeming`, expected one of `reset`, `nothing_to_reset`, `no_credit`, `already_redeemed` at line 1 column 19; ' +
        'content-type=application/json; body={"code":"redeeming"}',
    );
  });

  it('treats a non-2xx with a code body as an error', async () => {
    const { x, response } = await consume({ status: 409, json: { code: 'already_redeemed' } });
    expect(response.error.message).toBe(
      `failed to consume rate limit reset: POST ${x.backend.baseUrl}wham/rate-limit-reset-credits/consume failed: 409 Conflict; content-type=application/json; body={"code":"already_redeemed"}`,
    );
  });

  it('sends a long key as is, and a repeat sends the same body again', async () => {
    const key = 'k'.repeat(600);
    const { x } = await consume({ json: { code: 'reset' } }, { idempotencyKey: key });
    await x.s.request('account/rateLimitResetCredit/consume', { idempotencyKey: key });
    const bodies = x.calls('rate-limit-reset-credits/consume').map((r) => r.body);
    expect(bodies).toEqual([JSON.stringify({ redeem_request_id: key }), JSON.stringify({ redeem_request_id: key })]);
    expect(x.calls('rate-limit-reset-credits/consume')[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('does not hold up account/read or getAuthStatus while the backend is slow (§12.5)', async () => {
    const x = await start({ mode: 'stored' });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    x.backend.on(wham('rate-limit-reset-credits/consume'), async () => {
      await released;
      return { json: { code: 'reset' } };
    });
    x.s.send({ id: 'slow', method: 'account/rateLimitResetCredit/consume', params: { idempotencyKey: 'k' } });
    await x.s.waitFor(() => x.calls('rate-limit-reset-credits/consume').length === 1);
    expect((await x.s.request('account/read', {})).result.account).toMatchObject({ type: 'chatgpt' });
    expect((await x.s.request('getAuthStatus', {})).result.authMethod).toBe('chatgpt');
    expect(x.s.messages.some((m) => m.id === 'slow')).toBe(false);
    release();
    expect((await x.s.response('slow')).result).toEqual({ outcome: 'reset' });
  });
});

describe('account/sendAddCreditsNudgeEmail (§17)', () => {
  const start = useSurface();

  it('answers 429 with any body as cooldown_active', async () => {
    const x = await start({ mode: 'stored' });
    for (const reply of [{ status: 429, json: { e: 1 } }, { status: 429, text: 'slow down' }]) {
      x.backend.on(wham('accounts/send_add_credits_nudge_email'), reply);
      expect((await x.s.request('account/sendAddCreditsNudgeEmail', { creditType: 'credits' })).result).toEqual({ status: 'cooldown_active' });
    }
    expect(JSON.parse(x.calls('accounts/send_add_credits_nudge_email')[0]!.body)).toEqual({ credit_type: 'credits' });
  });
});

describe('where the calls go (§12.2)', () => {
  const start = useSurface();

  it('takes api/codex/ under a base without /backend-api', async () => {
    const x = await start({ mode: 'stored', baseUrl: (b) => `${b.origin}/custom/prefix` });
    x.backend.on('/custom/prefix/api/codex/profiles/me', { json: { stats: {} } });
    expect((await x.s.request('account/usage/read')).result.threadUsage).toBeNull();
    expect(x.calls('/custom/prefix/api/codex/profiles/me')).toHaveLength(1);
  });

  it('uses chatgpt_base_url, never the discovered workspace origin', async () => {
    const x = await start({ mode: 'host' });
    const other = await FakeBackend.start();
    try {
      x.backend.on(wham('accounts/check'), accountsCheck([{ id: 'ws-1', origin: other.origin }]));
      x.backend.on(wham('workspace-messages'), { json: { messages: [] } });
      await x.s.request('account/read', {});
      expect((await x.s.request('account/workspaceMessages/read')).result).toEqual({ featureEnabled: true, messages: [] });
      expect(other.requests).toHaveLength(0);
    } finally {
      await other.stop();
    }
  });

  it('still calls the backend when workspace routing discovery fails', async () => {
    const x = await start({ mode: 'stored' });
    x.backend.on(wham('accounts/check'), { status: 500, text: 'down' });
    x.backend.on(wham('profiles/me'), { json: { stats: {} } });
    expect((await x.s.request('account/read', {})).error).toBeDefined();
    expect((await x.s.request('account/usage/read')).result.summary).toEqual(NO_SUMMARY);
  });
});

describe('account/gatewayOAuth/* (§18)', () => {
  const env = useServers();
  const GATEWAY = [
    'model_provider = "gw"',
    '[model_providers.gw]',
    'name = "Team gateway"',
    'base_url = "https://gateway.example/v1"',
    '[model_providers.gw.gateway_oauth]',
    'authorization_url = "https://idp.example/oauth/authorize"',
    'token_url = "https://idp.example/oauth/token"',
    'client_id = "cid"',
    '',
  ].join('\n');
  const OPENAI = { providerId: 'openai', providerName: 'OpenAI', required: false, supportsDeviceAuth: false, status: null, error: null };

  it('answers the recorded read without a gateway, in any auth mode', async () => {
    for (const auth of [undefined, { auth_mode: 'apikey', OPENAI_API_KEY: 'sk' }]) {
      const s = await env.start(auth ? { auth } : {});
      for (const params of [undefined, null, {}, { modelProvider: 'openai' }]) {
        expect((await s.request('account/gatewayOAuth/read', params)).result).toEqual(OPENAI);
      }
    }
  });

  it('refuses login for a provider without gateway OAuth, and cancel always answers {}', async () => {
    const s = await env.start();
    expect((await s.request('account/gatewayOAuth/login', {})).error).toEqual({
      code: -32600,
      message: 'The selected provider does not use gateway OAuth',
      data: { reason: 'gateway_oauth_not_used', recovery: 'fix_request' },
    });
    expect((await s.request('account/gatewayOAuth/cancel')).result).toEqual({});
    expect(s.notifications()).toEqual([]);
  });

  it('names an unknown provider in the reference error data', async () => {
    const s = await env.start();
    for (const method of ['account/gatewayOAuth/read', 'account/gatewayOAuth/login']) {
      expect((await s.request(method, { modelProvider: 'nope' })).error).toEqual({
        code: -32600,
        message: 'This chat uses model provider “nope”, which is no longer configured. Restore this provider’s configuration to continue.',
        data: { type: 'modelProviderNotConfigured', modelProvider: 'nope', reason: 'model_provider_not_configured', recovery: 'fix_request' },
      });
    }
  });

  it('answers a configured gateway with not_implemented, and cancel still with {}', async () => {
    const s = await env.start({ config: GATEWAY });
    for (const method of ['account/gatewayOAuth/read', 'account/gatewayOAuth/login']) {
      expect((await s.request(method, {})).error).toEqual({
        code: -32603,
        message: 'gateway OAuth sign-in (model provider "gw") is not implemented by this server: model providers are out of its scope',
        data: { reason: 'not_implemented', recovery: 'none' },
      });
    }
    expect((await s.request('account/gatewayOAuth/read', { modelProvider: 'openai' })).result).toEqual(OPENAI);
    expect((await s.request('account/gatewayOAuth/cancel', {})).result).toEqual({});
  });
});
