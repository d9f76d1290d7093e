import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Recorded, Reply } from '../helpers/backend.js';
import { useChatgptEnv } from '../helpers/chatgpt-env.js';
import { holdWithFlock } from '../helpers/flock.js';
import { CLIENT_ID } from '../helpers/issuer.js';
import { makeJwt } from '../helpers/jwt.js';
import { LOGGED_OUT, settle, type ServerProcess, type Wire } from '../helpers/server-process.js';

// Managed refresh (SPEC §8, §8.1), rate limits (SPEC §10) and the 401-recovery
// loop (issue 8) end to end: the built server, the issuer stand-in rotating
// refresh tokens, an HTTPS backend that refuses stale access tokens, and the
// test playing the host for `account/chatgptAuthTokens/refresh` (SPEC §9.3).

const env = useChatgptEnv();
beforeEach(() => env.setup());

const USAGE = '/backend-api/wham/usage';
const CREDITS = '/backend-api/wham/rate-limit-reset-credits';
const CHECK = '/backend-api/wham/accounts/check';
const AUTH_CLAIM = 'https://api.openai.com/auth';

const USAGE_BODY = {
  plan_type: 'plus',
  rate_limit: {
    allowed: true,
    limit_reached: false,
    primary_window: { used_percent: 12.5, limit_window_seconds: 18_000, reset_after_seconds: 100, reset_at: 1_764_000_000 },
    secondary_window: { used_percent: 40, limit_window_seconds: 604_800, reset_after_seconds: 9_000, reset_at: 1_764_500_000 },
  },
  credits: { has_credits: true, unlimited: false, balance: '12.50' },
};
const SNAPSHOT = {
  limitId: 'codex',
  limitName: null,
  normalModelSlug: null,
  primary: { usedPercent: 12.5, windowDurationMins: 300, resetsAt: 1_764_000_000 },
  secondary: { usedPercent: 40, windowDurationMins: 10_080, resetsAt: 1_764_500_000 },
  credits: { hasCredits: true, unlimited: false, balance: '12.50' },
  individualLimit: null,
  spendControlReached: null,
  planType: 'plus',
  rateLimitReachedType: null,
};
const RATE_LIMITS = {
  ordinaryUsageAllowed: null,
  rateLimits: SNAPSHOT,
  rateLimitsByLimitId: { codex: SNAPSHOT },
  rateLimitResetCredits: null,
  accountId: null,
  rateLimitUpsell: null,
};

const bearer = (r: Recorded) => String(r.headers.authorization ?? '').replace(/^Bearer /, '');

/**
 * The backend's view of access tokens: the ones in `stale` answer 401, the
 * rest are served. `forever` makes every token stale.
 */
function gateBackend(options: { forever?: boolean } = {}) {
  const stale = new Set<string>();
  const unauthorized: Reply = { status: 401, json: { error: { message: 'Your authentication token has expired.', code: 'token_expired' } } };
  env.backend.on(USAGE, (r) => (options.forever || stale.has(bearer(r)) ? unauthorized : { json: USAGE_BODY }));
  env.backend.on(CREDITS, (r) => (options.forever || stale.has(bearer(r)) ? unauthorized : { status: 404, json: { detail: 'Not Found' } }));
  return stale;
}

const nowRfc3339 = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');

/** auth.json of a managed login whose tokens the issuer stand-in issued (its refresh token is live). */
async function storedLogin() {
  const tokens = await env.issuer.issueTokens();
  const file = {
    auth_mode: 'chatgpt',
    OPENAI_API_KEY: 'sk-exchanged',
    tokens: {
      id_token: tokens.id_token,
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      oauth_provenance: { issuer: env.issuer.origin, client_id: CLIENT_ID },
      login_owner_id: 'o'.repeat(43),
      account_id: 'ws-1',
    },
    last_refresh: nowRfc3339(),
  };
  return { tokens, file, text: JSON.stringify(file, null, 2) };
}

/** A server with the stored login, initialized, its first read (discovery, `updated`) done. */
async function managedServer(options: { home?: string; env?: Record<string, string | undefined> } = {}) {
  const login = await storedLogin();
  const s = await env.start({ auth: login.text, ...options });
  expect((await s.request('account/read', {})).result.account.type).toBe('chatgpt');
  return { s, ...login };
}

const refreshGrants = () =>
  env.issuer.requestsTo('/oauth/token').filter((r) => (r.headers['content-type'] ?? '').startsWith('application/json'));

const readAuth = (s: ServerProcess) => JSON.parse(readFileSync(join(s.home, 'auth.json'), 'utf8'));

let hostTokenSeq = 0;
/** An access token a host would hand over (unique per call). */
function hostToken(accountId = 'ws-1', planType = 'plus') {
  return makeJwt({
    email: 'a@b.c',
    [AUTH_CLAIM]: { chatgpt_account_id: accountId, chatgpt_plan_type: planType, chatgpt_user_id: 'user-1' },
    exp: Math.floor(Date.now() / 1000) + 3600,
    n: ++hostTokenSeq,
  });
}

/** A server in host-token mode (SPEC §9.1), login announced. */
async function hostTokenServer(options: { configLines?: string; initialize?: Record<string, unknown>; env?: Record<string, string> } = {}) {
  const s = await env.start(options);
  const accessToken = hostToken();
  const response = await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken, chatgptAccountId: 'ws-1' });
  expect(response.result).toEqual({ type: 'chatgptAuthTokens' });
  expect((await s.notification('account/login/completed')).params.success).toBe(true);
  await s.notification('account/updated');
  return { s, accessToken };
}

/** The next `account/chatgptAuthTokens/refresh` the server sends (a request: it has an id). */
const hostRefreshRequest = (s: ServerProcess, from = 0, timeoutMs?: number) =>
  s.waitFor((m) => m.method === 'account/chatgptAuthTokens/refresh' && 'id' in m, { from, timeoutMs });
const hostRefreshRequests = (s: ServerProcess) => s.messages.filter((m) => m.method === 'account/chatgptAuthTokens/refresh' && 'id' in m);

async function authToken(s: ServerProcess): Promise<string> {
  return (await s.request('getAuthStatus', { includeToken: true, refreshToken: false })).result.authToken;
}

describe('account/read {refreshToken:true} (SPEC §8)', () => {
  it('redeems the refresh token, stores the rotation, rediscovers with the new token, then replies', async () => {
    const { s, tokens, file } = await managedServer();
    const checksBefore = env.backend.requestsTo(CHECK).length;
    const from = s.messages.length;

    const response = await s.request('account/read', { refreshToken: true });
    expect(response.result).toEqual({
      account: { type: 'chatgpt', email: 'a@b.c', planType: 'plus', workspaceName: 'Acme' },
      userId: 'user-1',
      requiresOpenaiAuth: true,
      workspaceRouting: { chatgptAccountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT' },
    });

    const [grant] = refreshGrants();
    expect(refreshGrants()).toHaveLength(1);
    expect(Object.keys(JSON.parse(grant!.body))).toEqual(['client_id', 'grant_type', 'refresh_reason', 'refresh_token']);
    expect(JSON.parse(grant!.body)).toEqual({
      client_id: CLIENT_ID,
      grant_type: 'refresh_token',
      refresh_reason: 'forced',
      refresh_token: tokens.refresh_token,
    });
    expect(grant!.headers.originator).toBe('test-host');

    const auth = readAuth(s);
    expect(auth.tokens.refresh_token).not.toBe(tokens.refresh_token);
    expect(auth.tokens.access_token).not.toBe(tokens.access_token);
    expect(auth.OPENAI_API_KEY).toBe('sk-exchanged');
    expect(auth.tokens.oauth_provenance).toEqual(file.tokens.oauth_provenance);
    expect(auth.tokens.login_owner_id).toBe(file.tokens.login_owner_id);
    expect(auth.last_refresh > file.last_refresh).toBe(true);
    expect(env.issuer.secrets.has(auth.tokens.refresh_token)).toBe(true);

    const checks = env.backend.requestsTo(CHECK).slice(checksBefore);
    expect(checks.map(bearer)).toEqual([auth.tokens.access_token]);
    expect(await authToken(s)).toBe(auth.tokens.access_token);
    await settle(s);
    // No account/updated after a refresh (SPEC §3.5).
    expect(s.messages.slice(from).filter((m) => m.method)).toEqual([]);
  });

  it.each([
    {
      reason: 'refresh_token_reused',
      spoil: async (rt: string) => {
        // Someone else redeemed it first.
        await fetch(env.issuer.refreshUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', originator: 'other', 'User-Agent': 'other' },
          body: JSON.stringify({ client_id: CLIENT_ID, grant_type: 'refresh_token', refresh_reason: 'forced', refresh_token: rt }),
        });
      },
      message:
        'Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again.',
    },
    {
      reason: 'refresh_token_expired',
      spoil: async (rt: string) => env.issuer.expireRefreshToken(rt),
      message: 'Your access token could not be refreshed because your refresh token has expired. Please log out and sign in again.',
    },
    {
      reason: 'refresh_token_invalidated',
      spoil: async (rt: string) => {
        await fetch(env.issuer.revokeUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ token: rt, token_type_hint: 'refresh_token', client_id: CLIENT_ID }),
        });
      },
      message: 'Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.',
    },
  ])('fails with the reference text and data.reason $reason, leaving auth.json untouched', async ({ reason, spoil, message }) => {
    const { s, tokens, text } = await managedServer();
    await spoil(tokens.refresh_token);
    const response = await s.request('account/read', { refreshToken: true });
    expect(response.error).toEqual({ code: -32603, message, data: { reason, recovery: 'relogin' } });
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(text);
    // Still serving, the credentials still in place.
    expect(await authToken(s)).toBe(tokens.access_token);
    expect((await s.request('getAuthStatus', {})).result.authMethod).toBe('chatgpt');
  });

  it('fails a transient issuer failure with recovery retry, and a later try succeeds', async () => {
    const { s, text } = await managedServer();
    env.issuer.refreshMode = 'serverError';
    const failed = await s.request('account/read', { refreshToken: true });
    expect(failed.error).toMatchObject({ code: -32603, data: { reason: 'refresh_failed', recovery: 'retry' } });
    expect(failed.error.message).toMatch(/^Failed to refresh token: /);
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(text);

    env.issuer.refreshMode = 'normal';
    expect((await s.request('account/read', { refreshToken: true })).result.account.type).toBe('chatgpt');
    expect(readAuth(s).tokens.refresh_token).not.toBe(JSON.parse(text).tokens.refresh_token);
  });
});

describe('account/rateLimits/read (SPEC §10)', () => {
  it('reads and maps the usage with the stored ChatGPT credentials', async () => {
    gateBackend();
    const { s, tokens } = await managedServer();
    const response = await s.request('account/rateLimits/read', {});
    expect(response.result).toEqual(RATE_LIMITS);
    for (const path of [CREDITS, USAGE]) {
      const [request] = env.backend.requestsTo(path);
      expect(request!.method).toBe('GET');
      expect(request!.headers.authorization).toBe(`Bearer ${tokens.access_token}`);
      expect(request!.headers['chatgpt-account-id']).toBe('ws-1');
      expect(request!.headers['user-agent']).toMatch(/^test-host\/0\.169\.0 /);
      expect(request!.headers.originator).toBeUndefined();
    }
    expect(refreshGrants()).toEqual([]);
  });

  it('reads with the host’s tokens in host-token mode, honouring both optional params', async () => {
    gateBackend();
    const { s, accessToken } = await hostTokenServer();
    const response = await s.request('account/rateLimits/read', { supportsLunaReserve: true, excludeResetCreditDetails: true });
    expect(response.result).toEqual(RATE_LIMITS);
    expect(env.backend.requestsTo(CREDITS)).toEqual([]);
    const [usage] = env.backend.requestsTo(USAGE);
    expect(usage!.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(usage!.headers['chatgpt-account-id']).toBe('ws-1');
    expect(usage!.headers['x-openai-codex-luna-reserve']).toBe('1');
    expect(hostRefreshRequests(s)).toEqual([]);
  });

  it('fails with the reference text when the backend answers 5xx, quoting the body', async () => {
    env.backend.on(USAGE, { status: 503, json: { error: 'overloaded' } });
    env.backend.on(CREDITS, { status: 404, json: {} });
    const { s } = await managedServer();
    const response = await s.request('account/rateLimits/read', {});
    expect(response.error).toEqual({
      code: -32603,
      message: `failed to fetch codex rate limits: GET ${env.backend.baseUrl}wham/usage failed: 503 Service Unavailable; content-type=application/json; body={"error":"overloaded"}`,
      data: { reason: 'backend_request_failed', recovery: 'retry' },
    });
    expect(refreshGrants()).toEqual([]);
  });
});

describe('proactive refresh (SPEC §8.1)', () => {
  it('refreshes before the call when last_refresh is over 8 days old, and calls with the new token only', async () => {
    gateBackend();
    const login = await storedLogin();
    const old = { ...login.file, last_refresh: new Date(Date.now() - 9 * 24 * 3600_000).toISOString().replace('Z', '000000Z') };
    const s = await env.start({ auth: JSON.stringify(old, null, 2) });
    expect((await s.request('account/read', {})).result.account.type).toBe('chatgpt');
    const response = await s.request('account/rateLimits/read', { excludeResetCreditDetails: true });
    expect(response.result).toEqual(RATE_LIMITS);
    expect(refreshGrants()).toHaveLength(1);
    const rotated = readAuth(s);
    expect(Date.now() - Date.parse(rotated.last_refresh)).toBeLessThan(60_000);
    expect(env.backend.requestsTo(USAGE).map(bearer)).toEqual([rotated.tokens.access_token]);
  });

  it('does not refresh fresh credentials before a call', async () => {
    gateBackend();
    const { s } = await managedServer();
    await s.request('account/rateLimits/read', { excludeResetCreditDetails: true });
    expect(refreshGrants()).toEqual([]);
  });
});

describe('the 401 loop with managed credentials (issue 8)', () => {
  it('refreshes once on a 401 (refresh_reason unauthorized_recovery) and retries with the new token', async () => {
    const stale = gateBackend();
    const { s, tokens } = await managedServer();
    stale.add(tokens.access_token);
    const response = await s.request('account/rateLimits/read', { excludeResetCreditDetails: true });
    expect(response.result).toEqual(RATE_LIMITS);

    expect(refreshGrants().map((g) => JSON.parse(g.body).refresh_reason)).toEqual(['unauthorized_recovery']);
    const rotated = readAuth(s).tokens;
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    expect(env.backend.requestsTo(USAGE).map(bearer)).toEqual([tokens.access_token, rotated.access_token]);
    expect(await authToken(s)).toBe(rotated.access_token);
  });

  it('shares one refresh among 20 concurrent reads that hit a 401, and retries them all', async () => {
    const stale = gateBackend();
    const { s, tokens } = await managedServer();
    stale.add(tokens.access_token);
    const ids = Array.from({ length: 20 }, (_, i) => 1000 + i);
    for (const id of ids) s.send({ id, method: 'account/rateLimits/read', params: {} });
    const responses = await Promise.all(ids.map((id) => s.response(id, 10_000)));
    expect(responses.map((r) => r.result)).toEqual(ids.map(() => RATE_LIMITS));
    expect(refreshGrants()).toHaveLength(1);
    const rotated = readAuth(s).tokens.access_token;
    const usage = env.backend.requestsTo(USAGE).map(bearer);
    expect(usage.filter((t) => t === rotated)).toHaveLength(20);
    expect(usage.filter((t) => t !== rotated).every((t) => t === tokens.access_token)).toBe(true);
  });

  it('retries a slow call that answers 401 after the refresh with the new token, without a second refresh', async () => {
    const stale = gateBackend();
    const { s, tokens } = await managedServer();
    stale.add(tokens.access_token);
    // The second call made with the old token is slow: its 401 arrives after the refresh is done.
    let staleSeen = 0;
    env.backend.on(USAGE, async (r) => {
      if (!stale.has(bearer(r))) return { json: USAGE_BODY };
      if (++staleSeen === 2) await new Promise((resolve) => setTimeout(resolve, 800));
      return { status: 401, json: { error: { code: 'token_expired' } } };
    });
    s.send({ id: 30, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    s.send({ id: 31, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const [first, second] = await Promise.all([s.response(30), s.response(31)]);
    expect(first.result).toEqual(RATE_LIMITS);
    expect(second.result).toEqual(RATE_LIMITS);
    expect(refreshGrants()).toHaveLength(1);
  });

  it('uses the client named in initialize even when the stored credentials loaded before it', async () => {
    gateBackend();
    const login = await storedLogin();
    const s = env.spawn({ auth: login.text });
    // Let the credentials load (and the session start) before the host says who it is.
    await settle(s, 500);
    await s.initialize();
    expect((await s.request('account/read', { refreshToken: true })).result.account.type).toBe('chatgpt');
    expect((await s.request('account/rateLimits/read', {})).result).toEqual(RATE_LIMITS);
    expect(refreshGrants()[0]!.headers.originator).toBe('test-host');
    expect(refreshGrants()[0]!.headers['user-agent']).toMatch(/^test-host\//);
    for (const r of [...env.backend.requestsTo(CHECK), ...env.backend.requestsTo(USAGE)]) {
      expect(r.headers['user-agent']).toMatch(/^test-host\//);
    }
  });

  it('fails with the backend’s 401 text after one refresh when the new token is refused too', async () => {
    gateBackend({ forever: true });
    const { s } = await managedServer();
    const response = await s.request('account/rateLimits/read', { excludeResetCreditDetails: true });
    expect(response.error.code).toBe(-32603);
    expect(response.error.message).toMatch(
      new RegExp(`^failed to fetch codex rate limits: GET ${env.backend.baseUrl}wham/usage failed: 401 Unauthorized; content-type=application/json; body=`),
    );
    expect(response.error.data).toEqual({ reason: 'backend_unauthorized', recovery: 'relogin' });
    expect(refreshGrants()).toHaveLength(1);
    expect(env.backend.requestsTo(USAGE)).toHaveLength(2);
  });

  it('fails the waiting read with the refresh’s failure when the refresh token is dead, keeping auth.json', async () => {
    const stale = gateBackend();
    const { s, tokens, text } = await managedServer();
    stale.add(tokens.access_token);
    env.issuer.expireRefreshToken(tokens.refresh_token);
    const response = await s.request('account/rateLimits/read', { excludeResetCreditDetails: true });
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'refresh_token_expired', recovery: 'relogin' } });
    expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(text);
  });

  it('answers reads and a logout at once during a slow refresh; the logout wins and nothing comes back', async () => {
    const stale = gateBackend();
    const { s, tokens } = await managedServer();
    stale.add(tokens.access_token);
    env.issuer.refreshDelayMs = 1_500;
    s.send({ id: 500, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    await expect.poll(() => env.issuer.requestsTo('/oauth/token').length).toBe(1);

    const started = Date.now();
    expect((await s.request('getAuthStatus', {})).result.authMethod).toBe('chatgpt');
    expect((await s.request('account/read', {})).result.account.type).toBe('chatgpt');
    const logout = await s.request('account/logout');
    expect(logout.result).toEqual({});
    expect(Date.now() - started).toBeLessThan(1_000);
    const abandoned = await s.response(500);
    expect(abandoned.error.code).toBe(-32603);
    expect((await s.notification('account/updated', s.messages.indexOf(logout))).params).toEqual({ authMode: null, planType: null });

    await settle(s, 1_800);
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authMethod).toBeNull();
    expect(() => readFileSync(join(s.home, 'auth.json'))).toThrow(/ENOENT/);
  });
});

describe('the 401 loop with host tokens (SPEC §9.3, issue 8)', () => {
  it('asks the host (id 0, reason unauthorized, previousAccountId), swaps the tokens, and retries', async () => {
    const stale = gateBackend();
    const { s, accessToken } = await hostTokenServer();
    stale.add(accessToken);
    s.send({ id: 50, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const ask = await hostRefreshRequest(s);
    expect(ask).toEqual({ id: 0, method: 'account/chatgptAuthTokens/refresh', params: { reason: 'unauthorized', previousAccountId: 'ws-1' } });
    const fresh = hostToken();
    s.send({ id: 0, result: { accessToken: fresh, chatgptAccountId: 'ws-1', chatgptPlanType: 'plus' } });

    const response = await s.response(50);
    expect(response.result).toEqual(RATE_LIMITS);
    expect(env.backend.requestsTo(USAGE).map(bearer)).toEqual([accessToken, fresh]);
    expect(await authToken(s)).toBe(fresh);
    expect(refreshGrants()).toEqual([]);
    await settle(s);
    expect(s.notifications('account/updated')).toHaveLength(1);
  });

  it('retries a slow call that answers 401 after the host answered, without asking again', async () => {
    const stale = gateBackend();
    const { s, accessToken } = await hostTokenServer();
    stale.add(accessToken);
    let staleSeen = 0;
    env.backend.on(USAGE, async (r) => {
      if (!stale.has(bearer(r))) return { json: USAGE_BODY };
      if (++staleSeen === 2) await new Promise((resolve) => setTimeout(resolve, 800));
      return { status: 401, json: { error: { code: 'token_expired' } } };
    });
    s.send({ id: 32, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    s.send({ id: 33, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const ask = await hostRefreshRequest(s);
    s.send({ id: ask.id, result: { accessToken: hostToken(), chatgptAccountId: 'ws-1' } });
    const [first, second] = await Promise.all([s.response(32), s.response(33)]);
    expect(first.result).toEqual(RATE_LIMITS);
    expect(second.result).toEqual(RATE_LIMITS);
    expect(hostRefreshRequests(s)).toHaveLength(1);
  });

  it('sends one host request for 20 concurrent reads that hit a 401', async () => {
    const stale = gateBackend();
    const { s, accessToken } = await hostTokenServer();
    stale.add(accessToken);
    const ids = Array.from({ length: 20 }, (_, i) => 2000 + i);
    for (const id of ids) s.send({ id, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const ask = await hostRefreshRequest(s);
    // Give the other 401s time to arrive while the host has not answered.
    await expect.poll(() => env.backend.requestsTo(USAGE).length).toBe(20);
    await settle(s, 100);
    s.send({ id: ask.id, result: { accessToken: hostToken(), chatgptAccountId: 'ws-1' } });
    const responses = await Promise.all(ids.map((id) => s.response(id, 10_000)));
    expect(responses.map((r) => r.result)).toEqual(ids.map(() => RATE_LIMITS));
    expect(hostRefreshRequests(s)).toHaveLength(1);
  });

  const failures: Array<{ name: string; answer: (id: unknown) => object; message: string; reason: string }> = [
    {
      name: 'a JSON-RPC error',
      answer: (id) => ({ id, error: { code: -32001, message: 'no tokens for you' } }),
      message: 'auth refresh request failed: code=-32001',
      reason: 'host_refresh_failed',
    },
    {
      name: 'a token that is not a JWT',
      answer: (id) => ({ id, result: { accessToken: 'not-a-jwt', chatgptAccountId: 'ws-1' } }),
      message: 'auth refresh returned invalid credentials',
      reason: 'host_refresh_failed',
    },
    {
      name: 'a result of the wrong shape',
      answer: (id) => ({ id, result: { token: hostToken() } }),
      message: 'auth refresh returned invalid credentials',
      reason: 'host_refresh_failed',
    },
  ];

  it.each(failures)('fails the waiting read when the host answers $name, keeps the old tokens, and asks again on the next 401', async ({ answer, message, reason }) => {
    const stale = gateBackend();
    const { s, accessToken } = await hostTokenServer();
    stale.add(accessToken);
    s.send({ id: 60, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const ask = await hostRefreshRequest(s);
    s.send(answer(ask.id));
    const response = await s.response(60);
    expect(response.error).toEqual({ code: -32603, message, data: { reason, recovery: expect.any(String) } });
    expect(await authToken(s)).toBe(accessToken);
    expect((await s.request('getAuthStatus', {})).result.authMethod).toBe('chatgptAuthTokens');

    const from = s.messages.length;
    s.send({ id: 61, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const again = await hostRefreshRequest(s, from);
    expect(again.id).toBe(1);
    const fresh = hostToken();
    s.send({ id: 1, result: { accessToken: fresh, chatgptAccountId: 'ws-1' } });
    expect((await s.response(61)).result).toEqual(RATE_LIMITS);
  });

  it('ignores answers with another id and a second answer to the same request', async () => {
    const stale = gateBackend();
    const { s, accessToken } = await hostTokenServer();
    stale.add(accessToken);
    s.send({ id: 65, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const ask = await hostRefreshRequest(s);
    s.send({ id: 99, result: { accessToken: hostToken(), chatgptAccountId: 'ws-1' } });
    s.send({ id: 'zero', error: { code: -1, message: 'stray' } });
    await settle(s);
    expect(s.messages.find((m) => m.id === 65)).toBeUndefined();
    const fresh = hostToken();
    s.send({ id: ask.id, result: { accessToken: fresh, chatgptAccountId: 'ws-1' } });
    s.send({ id: ask.id, error: { code: -32000, message: 'changed my mind' } });
    expect((await s.response(65)).result).toEqual(RATE_LIMITS);
    await settle(s);
    expect(await authToken(s)).toBe(fresh);
    expect(hostRefreshRequests(s)).toHaveLength(1);
  });

  it('refuses refreshed tokens for a workspace outside the forced list, keeping the old ones', async () => {
    const stale = gateBackend();
    const { s, accessToken } = await hostTokenServer({ configLines: 'forced_chatgpt_workspace_id = "ws-1"\n' });
    stale.add(accessToken);
    s.send({ id: 70, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const ask = await hostRefreshRequest(s);
    s.send({ id: ask.id, result: { accessToken: hostToken('ws-2'), chatgptAccountId: 'ws-2' } });
    const response = await s.response(70);
    expect(response.error).toMatchObject({
      code: -32603,
      message: 'Login is restricted to workspace(s) ws-1, but current credentials belong to ws-2',
      data: { reason: 'workspace_not_allowed' },
    });
    expect(await authToken(s)).toBe(accessToken);
  });

  describe('the host’s deadline', () => {
    async function expectTimeout(s: ServerProcess, accessToken: string, text: string) {
      const stale = gateBackend();
      stale.add(accessToken);
      const started = Date.now();
      s.send({ id: 80, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
      const ask = await hostRefreshRequest(s);
      const response = await s.response(80);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(response.error).toEqual({ code: -32603, message: text, data: { reason: 'host_refresh_timeout', recovery: 'retry' } });
      // A late answer is ignored: the old tokens stay.
      s.send({ id: ask.id, result: { accessToken: hostToken(), chatgptAccountId: 'ws-1' } });
      await settle(s);
      expect(await authToken(s)).toBe(accessToken);
      // The next 401 asks again.
      const from = s.messages.length;
      s.send({ id: 81, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
      expect((await hostRefreshRequest(s, from)).id).toBe(1);
    }

    it('is set by initialize capabilities.chatgptAuthTokensRefreshTimeoutMs', async () => {
      const { s, accessToken } = await hostTokenServer({
        initialize: { capabilities: { experimentalApi: true, chatgptAuthTokensRefreshTimeoutMs: 300 } },
      });
      await expectTimeout(s, accessToken, 'auth refresh request timed out after 300ms');
    });

    it('defaults to CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS', async () => {
      const { s, accessToken } = await hostTokenServer({ env: { CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS: '1000' } });
      await expectTimeout(s, accessToken, 'auth refresh request timed out after 1s');
    });

    it.each([0, 600_001, 1.5, '300', -1])('refuses chatgptAuthTokensRefreshTimeoutMs %j as invalid params', async (value) => {
      const s = env.spawn();
      const response = await s.request('initialize', {
        clientInfo: { name: 'test-host', version: '1.0.0' },
        capabilities: { chatgptAuthTokensRefreshTimeoutMs: value },
      });
      expect(response.error).toMatchObject({ code: -32600, data: { reason: 'invalid_params' } });
      expect(response.error.message).toMatch(/^Invalid request: invalid (type|value): /);
      // A later valid initialize still works (SPEC §2).
      expect((await s.initialize()).result.codexHome).toBe(s.home);
    });
  });

  it('answers a logout at once while the host is silent; a late answer brings nothing back', async () => {
    const stale = gateBackend();
    const { s, accessToken } = await hostTokenServer();
    stale.add(accessToken);
    s.send({ id: 90, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const ask = await hostRefreshRequest(s);
    const started = Date.now();
    const logout = await s.request('account/logout');
    expect(logout.result).toEqual({});
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((await s.response(90)).error.code).toBe(-32603);
    s.send({ id: ask.id, result: { accessToken: hostToken(), chatgptAccountId: 'ws-1' } });
    await settle(s);
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({ authMethod: null, authToken: null, requiresOpenaiAuth: true });
  });
});

describe('across processes (issue 8, SPEC §8.1 locks)', () => {
  it('redeems the refresh token once when two servers on one CODEX_HOME hit a 401 together; both serve the new token', async () => {
    const stale = gateBackend();
    const login = await storedLogin();
    stale.add(login.tokens.access_token);
    env.issuer.refreshDelayMs = 300;
    const a = await env.start({ auth: login.text });
    const b = await env.start({ home: a.home });
    for (const s of [a, b]) s.send({ id: 7, method: 'account/rateLimits/read', params: { excludeResetCreditDetails: true } });
    const [ra, rb] = await Promise.all([a.response(7, 10_000), b.response(7, 10_000)]);
    expect(ra.result).toEqual(RATE_LIMITS);
    expect(rb.result).toEqual(RATE_LIMITS);

    expect(refreshGrants()).toHaveLength(1);
    const rotated = readAuth(a).tokens;
    expect(rotated.refresh_token).not.toBe(login.tokens.refresh_token);
    expect(await authToken(a)).toBe(rotated.access_token);
    expect(await authToken(b)).toBe(rotated.access_token);
    const served = env.backend.requestsTo(USAGE).map(bearer).filter((t) => t === rotated.access_token);
    expect(served).toHaveLength(2);
  });

  it('waits for auth.lock held by flock(1), then uses what the other writer stored instead of redeeming', async () => {
    const { s, tokens } = await managedServer();
    // Codex (played by flock(1)) refreshes meanwhile: it holds auth.lock and writes the rotation before letting go.
    const rotated = await storedLogin();
    const next = join(s.home, 'next-auth.json');
    writeFileSync(next, rotated.text, { mode: 0o600 });
    const lock = await holdWithFlock(join(s.home, 'auth.lock'), `mv "${next}" "${join(s.home, 'auth.json')}"`);
    try {
      s.send({ id: 40, method: 'account/read', params: { refreshToken: true } });
      await settle(s, 400);
      expect(s.messages.find((m: Wire) => m.id === 40)).toBeUndefined();
      expect(refreshGrants()).toEqual([]);
    } finally {
      await lock.release();
    }
    expect((await s.response(40)).result.account.type).toBe('chatgpt');
    expect(refreshGrants()).toEqual([]);
    expect(await authToken(s)).toBe(rotated.tokens.access_token);
    expect(await authToken(s)).not.toBe(tokens.access_token);
  });

  it('waits for auth.lock held by flock(1), then redeems once it is free', async () => {
    const { s, tokens } = await managedServer();
    const lock = await holdWithFlock(join(s.home, 'auth.lock'));
    let released = 0;
    try {
      s.send({ id: 41, method: 'account/read', params: { refreshToken: true } });
      await settle(s, 400);
      expect(refreshGrants()).toEqual([]);
      released = Date.now();
    } finally {
      await lock.release();
    }
    expect((await s.response(41)).result.account.type).toBe('chatgpt');
    const grants = refreshGrants();
    expect(grants).toHaveLength(1);
    expect(grants[0]!.at).toBeGreaterThanOrEqual(released);
    expect(readAuth(s).tokens.refresh_token).not.toBe(tokens.refresh_token);
  });
});
