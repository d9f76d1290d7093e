import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { callbackOrigin, isListening, useChatgptEnv } from '../helpers/chatgpt-env.js';
import { callbackUrlFrom, CLIENT_ID, followAuthUrl } from '../helpers/issuer.js';
import { LOGGED_OUT, settle, type ServerProcess } from '../helpers/server-process.js';

// ChatGPT sign-in end to end (SPEC §3.2–§3.4, §5, §6, §7; issue 7): the built
// server as a child process, the issuer stand-in and the HTTPS backend on
// loopback, and a real HTTP client following authUrl as a browser would.

const env = useChatgptEnv();
beforeEach(() => env.setup());

const BROWSER_NOT_COMPLETED = 'Login server error: Login was not completed';
const BROWSER_CANCELLED = 'Login server error: Login cancelled';

async function startBrowserLogin(s: ServerProcess) {
  const response = await s.request('account/login/start', { type: 'chatgpt' });
  expect(response.result).toMatchObject({ type: 'chatgpt', loginId: expect.any(String), authUrl: expect.any(String) });
  return response.result as { type: 'chatgpt'; loginId: string; authUrl: string };
}

async function startDeviceLogin(s: ServerProcess) {
  const response = await s.request('account/login/start', { type: 'chatgptDeviceCode' });
  expect(response.result).toMatchObject({ type: 'chatgptDeviceCode', loginId: expect.any(String) });
  return response.result as { type: 'chatgptDeviceCode'; loginId: string; verificationUrl: string; userCode: string };
}

const authFile = (s: ServerProcess) => join(s.home, 'auth.json');
const readAuth = (s: ServerProcess) => JSON.parse(readFileSync(authFile(s), 'utf8'));
const completedFor = (s: ServerProcess, loginId: string) =>
  s.waitFor((m) => m.method === 'account/login/completed' && m.params?.loginId === loginId);

describe('browser login (SPEC §6)', () => {
  it('signs in through the issuer, writes Codex’s auth.json, then sends completed and updated with the plan', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    expect(authUrl.startsWith(`${env.issuer.origin}/oauth/authorize?response_type=code&client_id=${CLIENT_ID}&redirect_uri=`)).toBe(true);
    expect(new URL(authUrl).searchParams.get('originator')).toBe('test-host');

    const steps = await followAuthUrl(authUrl);
    expect(steps.map((step) => step.status)).toEqual([302, 302, 200]);
    expect(steps[1]!.location).toMatch(new RegExp(`^${callbackOrigin(authUrl)}/success\\?id_token=`));
    expect(steps[2]!.contentType).toBe('text/html; charset=utf-8');
    expect(steps[2]!.body).toContain('<title>Sign into Codex</title>');

    const completed = await completedFor(s, loginId);
    expect(completed.params).toEqual({ loginId, success: true, error: null, onboardingEntrypoint: null });
    const updated = await s.notification('account/updated', s.messages.indexOf(completed));
    expect(updated.params).toEqual({ authMode: 'chatgpt', planType: 'plus' });

    const auth = readAuth(s);
    expect(Object.keys(auth)).toEqual(['auth_mode', 'OPENAI_API_KEY', 'tokens', 'last_refresh']);
    expect(auth.auth_mode).toBe('chatgpt');
    expect(auth.OPENAI_API_KEY).toMatch(/^sk-proj-/);
    expect(Object.keys(auth.tokens)).toEqual(['id_token', 'access_token', 'refresh_token', 'oauth_provenance', 'login_owner_id', 'account_id']);
    expect(auth.tokens.oauth_provenance).toEqual({ issuer: env.issuer.origin, client_id: CLIENT_ID });
    expect(auth.tokens.login_owner_id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.tokens.account_id).toBe('ws-1');
    expect(auth.tokens.refresh_token).toMatch(/^rt-/);
    expect(auth.last_refresh).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(statSync(authFile(s)).mode & 0o777).toBe(0o600);
    expect(readFileSync(authFile(s), 'utf8')).toBe(JSON.stringify(auth, null, 2));

    // Code exchange, then the API-key exchange, then discovery with the new access token.
    expect(env.issuer.requestsTo('/oauth/token').map((r) => new URLSearchParams(r.body).get('grant_type'))).toEqual([
      'authorization_code',
      'urn:ietf:params:oauth:grant-type:token-exchange',
    ]);
    const checks = env.backend.requestsTo('/backend-api/wham/accounts/check');
    expect(checks.at(-1)!.headers.authorization).toBe(`Bearer ${auth.tokens.access_token}`);
    expect((await s.request('account/read', {})).result).toEqual({
      account: { type: 'chatgpt', email: 'a@b.c', planType: 'plus', workspaceName: 'Acme' },
      userId: 'user-1',
      requiresOpenaiAuth: true,
      workspaceRouting: { chatgptAccountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT' },
    });
    expect(await isListening(callbackOrigin(authUrl))).toBe(false);
  });

  it('keeps the signed-in account across a restart', async () => {
    const first = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(first);
    await followAuthUrl(authUrl);
    await completedFor(first, loginId);
    await first.close();

    const second = await env.start({ home: first.home });
    expect((await second.request('account/read', {})).result.account).toEqual({
      type: 'chatgpt',
      email: 'a@b.c',
      planType: 'plus',
      workspaceName: 'Acme',
    });
  });

  it('fails a sign-in to a workspace outside forced_chatgpt_workspace_id, storing nothing', async () => {
    const s = await env.start({ configLines: 'forced_chatgpt_workspace_id = "ws-9"\n' });
    const { loginId, authUrl } = await startBrowserLogin(s);
    expect(new URL(authUrl).searchParams.get('allowed_workspace_id')).toBe('ws-9');
    expect(authUrl.endsWith('&allowed_workspace_id=ws-9')).toBe(true);

    const steps = await followAuthUrl(authUrl);
    expect(steps[1]!.status).toBe(200);
    expect(steps[1]!.body).toContain('Sign-in could not be completed');
    const completed = await completedFor(s, loginId);
    expect(completed.params).toEqual({
      loginId,
      success: false,
      error: 'Login server error: Login is restricted to workspace id(s) ws-9.',
      onboardingEntrypoint: null,
    });
    await settle(s);
    expect(s.notifications('account/updated')).toEqual([]);
    expect(existsSync(authFile(s))).toBe(false);
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect(await isListening(callbackOrigin(authUrl))).toBe(false);
  });

  it('cancels with account/login/cancel: canceled first, then completed, and the port is freed', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    expect(await isListening(callbackOrigin(authUrl))).toBe(true);
    const from = s.messages.length;
    const response = await s.request('account/login/cancel', { loginId });
    expect(response.result).toEqual({ status: 'canceled' });
    const completed = await completedFor(s, loginId);
    expect(s.messages.indexOf(completed)).toBeGreaterThan(s.messages.indexOf(response));
    expect(completed.params).toEqual({ loginId, success: false, error: BROWSER_NOT_COMPLETED, onboardingEntrypoint: null });
    expect(await isListening(callbackOrigin(authUrl))).toBe(false);
    expect((await s.request('account/login/cancel', { loginId })).result).toEqual({ status: 'notFound' });
    await settle(s);
    expect(s.messages.slice(from).filter((m) => m.method)).toEqual([completed]);
  });

  it('ends the login when the callback server receives GET /cancel', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    const response = await fetch(`${callbackOrigin(authUrl)}/cancel`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('Login cancelled');
    const completed = await completedFor(s, loginId);
    expect(completed.params).toEqual({ loginId, success: false, error: BROWSER_CANCELLED, onboardingEntrypoint: null });
    expect(await isListening(callbackOrigin(authUrl))).toBe(false);
    expect((await s.request('account/login/cancel', { loginId })).result).toEqual({ status: 'notFound' });
  });

  it('supersedes a pending login: the old one completes cancelled before the new start answers, and the new one signs in', async () => {
    const s = await env.start();
    const old = await startBrowserLogin(s);
    const fresh = await startBrowserLogin(s);
    expect(fresh.loginId).not.toBe(old.loginId);
    const oldCompleted = s.messages.find((m) => m.method === 'account/login/completed' && m.params.loginId === old.loginId)!;
    expect(oldCompleted.params).toEqual({ loginId: old.loginId, success: false, error: BROWSER_CANCELLED, onboardingEntrypoint: null });
    const freshResponse = s.messages.find((m) => m.result?.loginId === fresh.loginId)!;
    expect(s.messages.indexOf(oldCompleted)).toBeLessThan(s.messages.indexOf(freshResponse));
    expect(await isListening(callbackOrigin(old.authUrl))).toBe(false);

    await followAuthUrl(fresh.authUrl);
    expect((await completedFor(s, fresh.loginId)).params.success).toBe(true);
    expect(readAuth(s).auth_mode).toBe('chatgpt');
  });

  it('times out a login nobody finishes, freeing the port', async () => {
    const s = await env.start({ env: { CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS: '400' } });
    const { loginId, authUrl } = await startBrowserLogin(s);
    const completed = await completedFor(s, loginId);
    expect(completed.params).toEqual({ loginId, success: false, error: 'Login timed out', onboardingEntrypoint: null });
    expect(await isListening(callbackOrigin(authUrl))).toBe(false);
    expect(existsSync(authFile(s))).toBe(false);
    expect((await s.request('account/login/cancel', { loginId })).result).toEqual({ status: 'notFound' });
  });

  it('answers a callback with the wrong state 400 State mismatch and keeps waiting', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    const wrong = await fetch(`${callbackOrigin(authUrl)}/auth/callback?code=abc&state=wrong`);
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toBe('State mismatch');
    await followAuthUrl(authUrl);
    expect((await completedFor(s, loginId)).params.success).toBe(true);
  });
});

describe('device-code login (SPEC §7)', () => {
  it('shows the verification URL and code, polls while pending, and signs in once approved', async () => {
    const s = await env.start();
    const { loginId, verificationUrl, userCode } = await startDeviceLogin(s);
    expect(verificationUrl).toBe(`${env.issuer.origin}/codex/device`);
    expect(userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    // Pending: the issuer answers 403 and the server keeps polling at the given interval.
    await expect.poll(() => env.issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeGreaterThanOrEqual(3);
    expect(s.notifications('account/login/completed')).toEqual([]);

    env.issuer.approveDevice(userCode);
    const completed = await completedFor(s, loginId);
    expect(completed.params).toEqual({ loginId, success: true, error: null, onboardingEntrypoint: null });
    expect((await s.notification('account/updated', s.messages.indexOf(completed))).params).toEqual({ authMode: 'chatgpt', planType: 'plus' });
    const auth = readAuth(s);
    expect(auth.auth_mode).toBe('chatgpt');
    expect(auth.OPENAI_API_KEY).toBeNull();
    expect(auth.tokens.account_id).toBe('ws-1');
    const exchange = env.issuer.requestsTo('/oauth/token').find((r) => new URLSearchParams(r.body).get('grant_type') === 'authorization_code')!;
    expect(new URLSearchParams(exchange.body).get('redirect_uri')).toBe(`${env.issuer.origin}/deviceauth/callback`);
  });

  it('stops polling once account/login/cancel ends a device login', async () => {
    const s = await env.start();
    const { loginId } = await startDeviceLogin(s);
    await expect.poll(() => env.issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeGreaterThanOrEqual(1);
    expect((await s.request('account/login/cancel', { loginId })).result).toEqual({ status: 'canceled' });
    expect((await completedFor(s, loginId)).params).toEqual({ loginId, success: false, error: 'Login was not completed', onboardingEntrypoint: null });
    const polls = env.issuer.requestsTo('/api/accounts/deviceauth/token').length;
    await new Promise((r) => setTimeout(r, 400)); // eight of the stand-in's 50 ms poll intervals
    expect(env.issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeLessThanOrEqual(polls + 1);
  });

  it('fails with device code expired once expires_at has passed', async () => {
    env.issuer.deviceExpiresInMs = 300;
    const s = await env.start();
    const { loginId } = await startDeviceLogin(s);
    const completed = await completedFor(s, loginId);
    expect(completed.params).toEqual({ loginId, success: false, error: 'device code expired', onboardingEntrypoint: null });
    expect(existsSync(authFile(s))).toBe(false);
  });

  it('cancels with account/login/cancel and stops polling', async () => {
    const s = await env.start();
    const { loginId } = await startDeviceLogin(s);
    await expect.poll(() => env.issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeGreaterThanOrEqual(1);
    expect((await s.request('account/login/cancel', { loginId })).result).toEqual({ status: 'canceled' });
    expect((await completedFor(s, loginId)).params).toEqual({
      loginId,
      success: false,
      error: 'Login was not completed',
      onboardingEntrypoint: null,
    });
    await settle(s, 100);
    const polls = env.issuer.requestsTo('/api/accounts/deviceauth/token').length;
    await settle(s, 300);
    expect(env.issuer.requestsTo('/api/accounts/deviceauth/token').length).toBe(polls);
  });
});

describe('pasted redirect URL (account/login/complete, issue 7)', () => {
  it('completes a browser login from the URL the browser ended on', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    const redirectUrl = await callbackUrlFrom(authUrl);
    const response = await s.request('account/login/complete', { loginId, redirectUrl });
    expect(response.result).toEqual({});
    const completed = await completedFor(s, loginId);
    expect(s.messages.indexOf(completed)).toBeGreaterThan(s.messages.indexOf(response));
    expect(completed.params).toEqual({ loginId, success: true, error: null, onboardingEntrypoint: null });
    expect((await s.notification('account/updated', s.messages.indexOf(completed))).params).toEqual({ authMode: 'chatgpt', planType: 'plus' });
    expect(readAuth(s).tokens.account_id).toBe('ws-1');
    expect(await isListening(callbackOrigin(authUrl))).toBe(false);
  });

  it('refuses a URL with another state and keeps the login waiting for the right one', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    const redirectUrl = new URL(await callbackUrlFrom(authUrl));
    const right = redirectUrl.toString();
    redirectUrl.searchParams.set('state', 'x'.repeat(43));
    const response = await s.request('account/login/complete', { loginId, redirectUrl: redirectUrl.toString() });
    expect(response.error).toEqual({ code: -32600, message: 'State mismatch', data: { reason: 'state_mismatch', recovery: 'paste_again' } });
    expect(s.notifications('account/login/completed')).toEqual([]);
    expect(existsSync(authFile(s))).toBe(false);

    expect((await s.request('account/login/complete', { loginId, redirectUrl: right })).result).toEqual({});
    expect((await completedFor(s, loginId)).params.success).toBe(true);
  });

  it('refuses a URL for a login that is not pending', async () => {
    const s = await env.start();
    const response = await s.request('account/login/complete', {
      loginId: '00000000-0000-4000-8000-000000000000',
      redirectUrl: 'http://127.0.0.1:1455/auth/callback?code=a&state=b',
    });
    expect(response.error).toMatchObject({ code: -32600, data: { reason: 'login_not_found' } });
  });
});

describe('logout (SPEC §3.4, §8.3)', () => {
  it('wins over a code exchange in flight: the login ends not completed and nothing is stored', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    env.issuer.tokenDelayMs = 800;
    const browser = followAuthUrl(authUrl);
    await expect.poll(() => env.issuer.requestsTo('/oauth/token').length).toBe(1);

    const response = await s.request('account/logout');
    expect(response.result).toEqual({});
    const completed = await completedFor(s, loginId);
    expect(completed.params).toEqual({ loginId, success: false, error: BROWSER_NOT_COMPLETED, onboardingEntrypoint: null });
    expect((await s.notification('account/updated', s.messages.indexOf(response))).params).toEqual({ authMode: null, planType: null });

    await browser;
    await settle(s, 1_000);
    expect(existsSync(authFile(s))).toBe(false);
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect(s.notifications('account/login/completed')).toHaveLength(1);
    expect(await isListening(callbackOrigin(authUrl))).toBe(false);
  });

  it('revokes the refresh token at the issuer, then deletes auth.json', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    await followAuthUrl(authUrl);
    await completedFor(s, loginId);
    const refreshToken = readAuth(s).tokens.refresh_token;

    const response = await s.request('account/logout');
    expect(response.result).toEqual({});
    // Revoked before the reply: the issuer had the request by the time the reply arrived.
    const [revoke] = env.issuer.requestsTo('/oauth/revoke');
    expect(JSON.parse(revoke!.body)).toEqual({ token: refreshToken, token_type_hint: 'refresh_token', client_id: CLIENT_ID });
    expect(revoke!.headers.originator).toBe('test-host');
    expect(revoke!.headers['user-agent']).toMatch(/^test-host\//);
    expect(existsSync(authFile(s))).toBe(false);
    expect((await s.notification('account/updated', s.messages.indexOf(response))).params).toEqual({ authMode: null, planType: null });

    // The issuer no longer honours the token.
    const refused = await fetch(env.issuer.refreshUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', originator: 'x', 'User-Agent': 'x' },
      body: JSON.stringify({ client_id: CLIENT_ID, grant_type: 'refresh_token', refresh_reason: 'forced', refresh_token: refreshToken }),
    });
    expect(refused.status).toBe(401);
  });
});

describe('secrets', () => {
  it('keeps every code, token, verifier, state and key off stderr through a sign-in, a refresh and a logout', async () => {
    const s = await env.start();
    const { loginId, authUrl } = await startBrowserLogin(s);
    await followAuthUrl(authUrl);
    await completedFor(s, loginId);
    expect((await s.request('account/read', { refreshToken: true })).result.account.type).toBe('chatgpt');
    await s.request('account/logout');
    expect(s.stderr.length).toBeGreaterThan(0);
    const secrets = [...env.issuer.secrets].filter((secret) => secret.length >= 8);
    expect(secrets.length).toBeGreaterThan(5);
    expect(secrets.filter((secret) => s.stderr.includes(secret))).toEqual([]);
    expect(s.stderr).not.toContain(new URL(authUrl).searchParams.get('state'));
  });
});
