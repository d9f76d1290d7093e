import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredChatgpt } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { pollDeviceCode, requestDeviceCode } from '../../src/effects/login/device-code.js';
import { buildAuthorizeUrl, callbackUri, createPkce, createState } from '../../src/effects/login/oauth.js';
import { refreshChatgptTokens } from '../../src/effects/login/refresh.js';
import { exchangeApiKey, exchangeCode } from '../../src/effects/login/token-endpoint.js';
import { readClaims } from '../../src/effects/jwt.js';
import { toResponseError } from '../../src/rpc/errors.js';
import { captureLog } from '../helpers/login.js';
import { Issuer, callbackUrlFrom } from '../helpers/issuer.js';

let issuer: Issuer;
beforeEach(async () => (issuer = await Issuer.start()));
afterEach(() => issuer.stop());

function deps(timeoutMs = 2_000) {
  const { log, lines } = captureLog();
  return { deps: { fetch: (i: Parameters<typeof fetch>[0], init?: RequestInit) => fetch(i, init), timeoutMs, log }, logs: lines };
}

/** A code as the issuer hands it out after the user signed in (callback port 1 is never contacted). */
async function authorizationCode() {
  const pkce = createPkce();
  const state = createState();
  const redirectUri = callbackUri(1);
  const url = buildAuthorizeUrl({ issuer: issuer.origin, redirectUri, challenge: pkce.challenge, state, originator: 'my-app', allowedWorkspaceIds: null });
  const callback = new URL(await callbackUrlFrom(url));
  expect(callback.searchParams.get('state')).toBe(state);
  return { code: new Secret(callback.searchParams.get('code')!), verifier: new Secret(pkce.verifier), redirectUri };
}

const message = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error) => e.message);

describe('code exchange (SPEC §6.3)', () => {
  it('redeems a code with the verifier, posting the form fields in the reference order', async () => {
    const grant = await authorizationCode();
    const tokens = await exchangeCode(deps().deps, issuer.origin, grant);
    expect(tokens.claims).toEqual({ email: 'a@b.c', userId: 'user-1', accountId: 'ws-1', planType: 'plus' });
    const [post] = issuer.requestsTo('/oauth/token');
    expect(post!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(post!.headers.originator).toBeUndefined();
    expect([...new URLSearchParams(post!.body).keys()]).toEqual(['grant_type', 'client_id', 'code', 'redirect_uri', 'code_verifier']);
  });

  it('is refused by the issuer with a verifier that does not match the challenge', async () => {
    const grant = await authorizationCode();
    const wrong = { ...grant, verifier: new Secret(createPkce().verifier) };
    expect(await message(exchangeCode(deps().deps, issuer.origin, wrong))).toBe(
      'token endpoint returned status 400 Bad Request: PKCE verification failed',
    );
  });

  it('cannot redeem the same code twice', async () => {
    const grant = await authorizationCode();
    await exchangeCode(deps().deps, issuer.origin, grant);
    expect(await message(exchangeCode(deps().deps, issuer.origin, grant))).toBe(
      'token endpoint returned status 400 Bad Request: authorization code already used',
    );
  });

  it.each([
    ['notJson', 'error decoding response body: not JSON'],
    ['missingRefreshToken', 'error decoding response body: missing field `refresh_token`'],
    ['idTokenNotJwt', 'the token endpoint returned an id_token that is not a JWT'],
    ['serverError', 'token endpoint returned status 500 Internal Server Error: the issuer is having a bad day'],
  ] as const)('fails a %s answer with a message that holds no secret', async (mode, text) => {
    const grant = await authorizationCode();
    issuer.tokenMode = mode;
    const error = await exchangeCode(deps().deps, issuer.origin, grant).catch((e: Error) => e);
    expect((error as Error).message).toBe(text);
    expect((error as { kind?: string }).kind).toBe('loginFailed');
  });

  it('fails when the issuer hangs up', async () => {
    const grant = await authorizationCode();
    issuer.tokenMode = 'down';
    expect(await message(exchangeCode(deps().deps, issuer.origin, grant))).toMatch(
      new RegExp(`^error sending request for url \\(${issuer.origin}/oauth/token\\): `),
    );
  });

  it('gives up on a slow issuer at the configured deadline', async () => {
    const grant = await authorizationCode();
    issuer.tokenDelayMs = 2_000;
    const started = Date.now();
    expect(await message(exchangeCode(deps(200).deps, issuer.origin, grant))).toBe(
      `error sending request for url (${issuer.origin}/oauth/token): operation timed out`,
    );
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('stops when its signal aborts', async () => {
    const grant = await authorizationCode();
    issuer.tokenMode = 'hang';
    const abort = new AbortController();
    const pending = message(exchangeCode(deps().deps, issuer.origin, grant, abort.signal));
    setTimeout(() => abort.abort(), 50);
    expect(await pending).toMatch(/: aborted$/);
  });
});

describe('API key exchange (SPEC §6.4)', () => {
  it('trades the id token for an API key, posting the fields in the reference order', async () => {
    const tokens = await issuer.issueTokens();
    const key = await exchangeApiKey(deps().deps, issuer.origin, new Secret(tokens.id_token));
    expect(key?.reveal()).toMatch(/^sk-proj-/);
    const post = issuer.requestsTo('/oauth/token').at(-1)!;
    expect([...new URLSearchParams(post.body)]).toEqual([
      ['grant_type', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      ['client_id', 'app_EMoamEEZ73f0CkXaXp7hrann'],
      ['requested_token', 'openai-api-key'],
      ['subject_token', tokens.id_token],
      ['subject_token_type', 'urn:ietf:params:oauth:token-type:id_token'],
    ]);
  });

  it('rejects and warns (without the token) when the issuer refuses', async () => {
    const tokens = await issuer.issueTokens();
    issuer.apiKeyMode = 'fail';
    const { deps: d, logs } = deps();
    await expect(exchangeApiKey(d, issuer.origin, new Secret(tokens.id_token))).rejects.toThrow(/403 Forbidden: no API organization/);
    expect(logs.join()).toContain('API key exchange failed (token endpoint returned status 403 Forbidden: no API organization)');
    expect(logs.join()).not.toContain(tokens.id_token);
  });
});

describe('device code (SPEC §7)', () => {
  it('asks for a user code with the client id as JSON and no originator', async () => {
    const device = await requestDeviceCode(deps().deps, issuer.origin);
    expect(device.verificationUrl).toBe(`${issuer.origin}/codex/device`);
    expect(device.userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    expect(device.intervalMs).toBe(50);
    const [post] = issuer.requestsTo('/api/accounts/deviceauth/usercode');
    expect(post!.headers['content-type']).toBe('application/json');
    expect(post!.headers.originator).toBeUndefined();
    expect(JSON.parse(post!.body)).toEqual({ client_id: 'app_EMoamEEZ73f0CkXaXp7hrann' });
  });

  it('polls while the issuer answers 403, then yields a code that redeems with the issuer verifier', async () => {
    const { deps: d } = deps();
    const device = await requestDeviceCode(d, issuer.origin);
    const polling = pollDeviceCode(d, issuer.origin, device);
    await expect.poll(() => issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeGreaterThanOrEqual(3);
    issuer.approveDevice(device.userCode);
    const grant = await polling;
    expect(grant.redirectUri).toBe(`${issuer.origin}/deviceauth/callback`);
    expect(JSON.parse(issuer.requestsTo('/api/accounts/deviceauth/token')[0]!.body)).toEqual({
      device_auth_id: device.deviceAuthId.reveal(),
      user_code: device.userCode,
    });
    const tokens = await exchangeCode(d, issuer.origin, grant);
    expect(tokens.claims.accountId).toBe('ws-1');
  });

  it('honours the server-given interval', async () => {
    issuer.deviceInterval = '0.2';
    const { deps: d } = deps();
    const device = await requestDeviceCode(d, issuer.origin);
    const abort = new AbortController();
    const polling = pollDeviceCode(d, issuer.origin, device, abort.signal).catch(() => null);
    await expect.poll(() => issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeGreaterThanOrEqual(3);
    abort.abort();
    await polling;
    // Right away, then each `interval` after the previous answer.
    const times = issuer.requestsTo('/api/accounts/deviceauth/token').map((r) => r.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(190);
  });

  it('ends with device code expired at expires_at', async () => {
    issuer.deviceExpiresInMs = 300;
    const { deps: d } = deps();
    const device = await requestDeviceCode(d, issuer.origin);
    expect(await message(pollDeviceCode(d, issuer.origin, device))).toBe('device code expired');
  });

  it('ends with the reference text when polling fails', async () => {
    const { deps: d } = deps();
    const device = await requestDeviceCode(d, issuer.origin);
    issuer.deviceMode = 'pollServerError';
    expect(await message(pollDeviceCode(d, issuer.origin, device))).toBe('device auth failed with status 500 Internal Server Error');
  });

  it('stops polling when its signal aborts', async () => {
    const { deps: d } = deps();
    const device = await requestDeviceCode(d, issuer.origin);
    const abort = new AbortController();
    const polling = pollDeviceCode(d, issuer.origin, device, abort.signal).catch((e: Error) => e.name);
    await expect.poll(() => issuer.requestsTo('/api/accounts/deviceauth/token').length).toBeGreaterThanOrEqual(2);
    abort.abort();
    expect(await polling).toBe('AbortError');
    const count = issuer.requestsTo('/api/accounts/deviceauth/token').length;
    await new Promise((r) => setTimeout(r, 200));
    expect(issuer.requestsTo('/api/accounts/deviceauth/token')).toHaveLength(count);
  });

  it('reports a missing device endpoint as device_code_disabled (-32600)', async () => {
    issuer.deviceMode = 'disabled';
    const error = await requestDeviceCode(deps().deps, issuer.origin).catch((e) => e);
    expect(toResponseError(error.toFailure())).toMatchObject({
      code: -32600,
      message: 'device code login is not enabled for this Codex server. Use the browser login or verify the server URL.',
      data: { reason: 'device_code_disabled' },
    });
  });

  it('reports another user-code failure as failed to request device code (-32603)', async () => {
    issuer.deviceMode = 'serverError';
    const error = await requestDeviceCode(deps().deps, issuer.origin).catch((e) => e);
    expect(toResponseError(error.toFailure())).toMatchObject({
      code: -32603,
      message: 'failed to request device code: device code request failed with status 503 Service Unavailable',
      data: { reason: 'device_code_unavailable', recovery: 'retry' },
    });
  });
});

describe('managed refresh (SPEC §8)', () => {
  async function stored(): Promise<StoredChatgpt> {
    const t = await issuer.issueTokens();
    return {
      kind: 'chatgpt',
      idToken: new Secret(t.id_token),
      accessToken: new Secret(t.access_token),
      refreshToken: new Secret(t.refresh_token),
      accountId: 'ws-1',
      apiKey: new Secret('sk-kept'),
      oauthProvenance: { issuer: issuer.origin, clientId: 'app_EMoamEEZ73f0CkXaXp7hrann' },
      loginOwnerId: 'o'.repeat(43),
      claims: readClaims(t.id_token)!,
      lastRefresh: '2026-01-01T00:00:00.000000000Z',
    };
  }
  const refreshDeps = (timeoutMs = 2_000) => {
    const { log, lines } = captureLog();
    return {
      deps: {
        fetch: (i: Parameters<typeof fetch>[0], init?: RequestInit) => fetch(i, init),
        refreshTokenUrl: issuer.refreshUrl,
        timeoutMs,
        log,
        defaultUserAgent: 'codex-account-server/0.169.0',
        now: () => 1_795_566_283_123_456_789n,
      },
      logs: lines,
    };
  };
  const client = { originator: 'my-app', userAgent: 'my-app/0.169.0 (test)' };

  it('posts the JSON body in the reference key order with originator and User-Agent', async () => {
    const before = await stored();
    await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' });
    const [post] = issuer.requestsTo('/oauth/token');
    expect(post!.body).toBe(
      JSON.stringify({ client_id: 'app_EMoamEEZ73f0CkXaXp7hrann', grant_type: 'refresh_token', refresh_reason: 'forced', refresh_token: before.refreshToken.reveal() }),
    );
    expect(post!.headers).toMatchObject({ 'content-type': 'application/json', originator: 'my-app', 'user-agent': 'my-app/0.169.0 (test)' });
  });

  it('stores the rotated tokens, keeps the API key and provenance, and stamps last_refresh', async () => {
    const before = await stored();
    const after = await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'unauthorized_recovery' });
    expect(after.refreshToken.reveal()).not.toBe(before.refreshToken.reveal());
    expect(after.accessToken.reveal()).not.toBe(before.accessToken.reveal());
    expect(after).toMatchObject({ apiKey: before.apiKey, oauthProvenance: before.oauthProvenance, loginOwnerId: before.loginOwnerId, accountId: 'ws-1' });
    expect(after.lastRefresh).toBe('2026-11-25T00:24:43.123456789Z');
  });

  it('is refused with refresh_token_reused when an old refresh token is used again', async () => {
    const before = await stored();
    const after = await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' });
    const error = await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' }).catch((e) => e);
    expect(toResponseError(error.toFailure())).toMatchObject({
      code: -32603,
      message: 'Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again.',
      data: { reason: 'refresh_token_reused', recovery: 'relogin' },
    });
    // The rotated one still works.
    await expect(refreshChatgptTokens(refreshDeps().deps, { stored: after, client, reason: 'forced' })).resolves.toBeTruthy();
  });

  it('reads an expired refresh token as refresh_token_expired', async () => {
    const before = await stored();
    issuer.expireRefreshToken(before.refreshToken.reveal());
    const error = await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' }).catch((e) => e);
    expect(error.kind).toBe('refreshTokenExpired');
    expect(error.message).toMatch(/refresh token has expired/);
  });

  it('reads a revoked refresh token as refresh_token_invalidated', async () => {
    const before = await stored();
    await fetch(issuer.revokeUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: before.refreshToken.reveal(), token_type_hint: 'refresh_token', client_id: 'app_EMoamEEZ73f0CkXaXp7hrann' }),
    });
    const error = await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' }).catch((e) => e);
    expect(error.kind).toBe('refreshTokenInvalidated');
  });

  it('reads a refresh token the issuer does not know as refresh_token_rejected', async () => {
    const before = { ...(await stored()), refreshToken: new Secret('rt-unknown-to-the-issuer') };
    const error = await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' }).catch((e) => e);
    expect(error.kind).toBe('refreshTokenRejected');
    expect(error.message).toBe('Your access token could not be refreshed. Please log out and sign in again.');
  });

  it.each([
    ['serverError', 'Failed to refresh token: 502 Bad Gateway'],
    ['notJson', 'Failed to refresh token: error decoding response body: not JSON'],
  ] as const)('treats a %s answer as transient', async (mode, text) => {
    const before = await stored();
    issuer.refreshMode = mode;
    const error = await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' }).catch((e) => e);
    expect([error.kind, error.message]).toEqual(['refreshFailed', text]);
  });

  it('treats an unreachable refresh URL as transient', async () => {
    const before = await stored();
    const { deps: d } = refreshDeps();
    const error = await refreshChatgptTokens({ ...d, refreshTokenUrl: 'http://127.0.0.1:9/oauth/token' }, { stored: before, client, reason: 'forced' }).catch(
      (e) => e,
    );
    expect(error.kind).toBe('refreshFailed');
    expect(error.message).toMatch(/^Failed to refresh token: error sending request for url \(http:\/\/127\.0\.0\.1:9\/oauth\/token\): /);
  });

  it('never puts a token in its errors or log lines', async () => {
    const before = await stored();
    await refreshChatgptTokens(refreshDeps().deps, { stored: before, client, reason: 'forced' });
    const { deps: d, logs } = refreshDeps();
    const error = await refreshChatgptTokens(d, { stored: before, client, reason: 'forced' }).catch((e) => e);
    const texts = [error.message, JSON.stringify(error), ...logs];
    expect(logs.length).toBeGreaterThan(0);
    expect([...issuer.secrets].filter((s) => texts.join('\n').includes(s))).toEqual([]);
  });
});
