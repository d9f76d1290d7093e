import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Issuer } from '../helpers/issuer.js';
import { accountsCheck } from '../helpers/backend.js';
import { chatgptAuthFile, chatgptJwt } from '../helpers/jwt.js';
import { NO_AUTH_STATUS, LOGGED_OUT, settle, useServers, type ServerProcess, type StartOptions } from '../helpers/server-process.js';

const API_KEY = { account: { type: 'apiKey' }, userId: null, requiresOpenaiAuth: true, workspaceRouting: null };
const CHATGPT_ACME = {
  account: { type: 'chatgpt', email: 'a@b.c', planType: 'plus', workspaceName: 'Acme' },
  userId: 'user-1',
  requiresOpenaiAuth: true,
  workspaceRouting: { chatgptAccountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT' },
};
const EXTERNAL_ACTIVE =
  'External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.';
const CHECK = '/backend-api/wham/accounts/check';
const UUID = '0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6a';
const WELL_FORMED = [
  UUID,
  UUID.toUpperCase(),
  '0b9F3B5e-1C1a-4d2E-9a7b-2f1e3D4c5b6A',
  UUID.replaceAll('-', ''),
  UUID.replaceAll('-', '').toUpperCase(),
  `{${UUID}}`,
  `urn:uuid:${UUID}`,
  `URN:UUID:${UUID.toUpperCase()}`,
];
const MALFORMED = ['abc', '', UUID.slice(0, -1), `zzzzzzzz${UUID.slice(8)}`, `${UUID}0`, ` ${UUID}`, `{${UUID}`, `urn:uuid:{${UUID}}`];
const note = (method: string, params: unknown) => ({ method, params, emittedAtMs: expect.any(Number) });


const authText = (s: ServerProcess) => readFileSync(join(s.home, 'auth.json'), 'utf8');
const hasAuthFile = (s: ServerProcess) => existsSync(join(s.home, 'auth.json'));

/** Sends a request, waits a little longer, and returns everything that arrived from the request on. */
async function exchange(s: ServerProcess, method: string, params?: unknown) {
  const from = s.messages.length;
  const response = await s.request(method, params);
  await settle(s);
  return { response, after: s.messages.slice(from) };
}

/** A ChatGPT login against the issuer stand-in, on any free callback port (1455/1457 are test/login/ports.test.ts's). */
const loginEnv = (issuer: Issuer) => ({ CODEX_APP_SERVER_LOGIN_ISSUER: issuer.origin, CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '0' });

describe('account methods (SPEC §3)', () => {
  const env = useServers();
  const start = (options: StartOptions = {}) => env.start(options);

  /** A server whose fake backend answers discovery for ws-1 (named Acme). */
  async function startWithBackend(options: StartOptions = {}, config = '') {
    const backend = await env.backend();
    backend.on(CHECK, accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
    const s = await start({ ...options, config: `chatgpt_base_url = "${backend.baseUrl}"\n${config}` });
    return { s, backend };
  }

  /** Logged in with host tokens (chatgptAuthTokens) for ws-1, discovery done. */
  async function startWithHostTokens(options: StartOptions = {}, config = '') {
    const { s, backend } = await startWithBackend(options, config);
    const token = chatgptJwt({ email: 'a@b.c', accountId: 'ws-1', planType: 'plus', userId: 'user-1' });
    const from = s.messages.length;
    const login = await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: token, chatgptAccountId: 'ws-1' });
    expect(login.result).toEqual({ type: 'chatgptAuthTokens' });
    await s.notification('account/updated', from);
    return { s, token, backend };
  }

  describe('account/read', () => {
    it('reads logged out on a fresh home', async () => {
      const s = await start();
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });

    it('reads apiKey after an API key login, ignoring refreshToken', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-abc' });
      expect((await s.request('account/read', { refreshToken: true })).result).toEqual(API_KEY);
      expect(JSON.parse(authText(s))).toEqual({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-abc' });
    });

    it('sends no notification on the first read of a stored API key', async () => {
      const s = await start({ auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-stored' } });
      const { response, after } = await exchange(s, 'account/read', {});
      expect(response.result).toEqual(API_KEY);
      expect(after).toEqual([response]);
    });

    it('reads stored ChatGPT credentials with the identity from the id token and the workspace from discovery', async () => {
      const { s } = await startWithBackend({ auth: chatgptAuthFile({ planType: 'plus' }) });
      const from = s.messages.length;
      const response = await s.request('account/read', {});
      expect(s.messages.slice(from)).toEqual([note('account/updated', { authMode: 'chatgpt', planType: 'plus' }), response]);
      expect(response.result).toEqual(CHATGPT_ACME);
    });

    it('reads host tokens with the identity from the token and the workspace from discovery', async () => {
      const { s } = await startWithHostTokens();
      expect((await s.request('account/read', {})).result).toEqual(CHATGPT_ACME);
    });

    it('ignores refreshToken for host tokens: no refresh request, no new discovery, no notification', async () => {
      const { s, backend } = await startWithHostTokens();
      const before = backend.requests.length;
      const { response, after } = await exchange(s, 'account/read', { refreshToken: true });
      expect(response.result).toEqual(CHATGPT_ACME);
      expect(after).toEqual([response]);
      expect(backend.requests).toHaveLength(before);
    });
  });

  describe('account/login/start apiKey', () => {
    it('stores the key before answering, then sends completed and updated', async () => {
      const s = await start();
      const from = s.messages.length;
      s.send({ id: 'k', method: 'account/login/start', params: { type: 'apiKey', apiKey: 'sk-abc' } });
      await s.response('k');
      // Read the file as soon as the response line arrives.
      expect(JSON.parse(authText(s))).toEqual({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-abc' });
      await s.notification('account/updated', from);
      expect(s.messages.slice(from)).toEqual([
        { id: 'k', result: { type: 'apiKey' } },
        note('account/login/completed', { loginId: null, success: true, error: null, onboardingEntrypoint: null }),
        note('account/updated', { authMode: 'apikey', planType: null }),
      ]);
    });

    it('replaces the key when repeated, notifying again', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-one' });
      await s.notification('account/updated');
      const from = s.messages.length;
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-two' });
      await s.notification('account/updated', from);
      expect(JSON.parse(authText(s)).OPENAI_API_KEY).toBe('sk-two');
      expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-two');
      expect(s.notifications('account/login/completed')).toHaveLength(2);
    });

    it('accepts an empty key and stores it', async () => {
      const s = await start();
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: '' })).result).toEqual({ type: 'apiKey' });
      expect(JSON.parse(authText(s))).toEqual({ auth_mode: 'apikey', OPENAI_API_KEY: '' });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
        authMethod: 'apikey',
        authToken: '',
        requiresOpenaiAuth: true,
      });
    });

    it('replaces stored ChatGPT credentials with the key', async () => {
      const s = await start({ auth: chatgptAuthFile({ planType: 'plus' }) });
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-new' })).result).toEqual({ type: 'apiKey' });
      expect(JSON.parse(authText(s))).toEqual({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-new' });
      expect((await s.request('account/read', {})).result).toEqual(API_KEY);
    });
  });

  describe('account/login/cancel', () => {
    it('answers notFound for unknown UUIDs in every form and letter case, and sends nothing else', async () => {
      const s = await start();
      const from = s.messages.length;
      for (const loginId of WELL_FORMED) {
        expect((await s.request('account/login/cancel', { loginId })).result, loginId).toEqual({ status: 'notFound' });
      }
      await settle(s);
      expect(s.messages.slice(from).filter((m) => 'method' in m)).toEqual([]);
    });

    it('answers notFound while logged in with an API key, keeping the key', async () => {
      const s = await start({ auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-kept' } });
      expect((await s.request('account/login/cancel', { loginId: UUID })).result).toEqual({ status: 'notFound' });
      expect((await s.request('account/read', {})).result).toEqual(API_KEY);
    });

    it('refuses ids that are not UUIDs with -32600 invalid login id, and sends nothing else', async () => {
      const s = await start();
      const from = s.messages.length;
      for (const loginId of MALFORMED) {
        expect((await s.request('account/login/cancel', { loginId })).error, loginId).toEqual({
          code: -32600,
          message: `invalid login id: ${loginId}`,
          data: { reason: 'invalid_login_id', recovery: 'fix_request' },
        });
      }
      await settle(s);
      expect(s.messages.slice(from).filter((m) => 'method' in m)).toEqual([]);
    });
  });

  describe('account/logout', () => {
    it('answers {} then notifies authMode null even when already logged out', async () => {
      const s = await start();
      const from = s.messages.length;
      const response = await s.request('account/logout');
      await s.notification('account/updated', from);
      await settle(s);
      expect(s.messages.slice(from)).toEqual([
        { id: response.id, result: {} },
        note('account/updated', { authMode: null, planType: null }),
      ]);
    });

    it('deletes auth.json of an API key login before answering, then notifies', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-abc' });
      await s.notification('account/updated');
      const from = s.messages.length;
      expect((await s.request('account/logout')).result).toEqual({});
      expect(hasAuthFile(s)).toBe(false);
      expect((await s.notification('account/updated', from)).params).toEqual({ authMode: null, planType: null });
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });

    it('drops host tokens, notifies, and lets API key logins work again', async () => {
      const { s } = await startWithHostTokens();
      const from = s.messages.length;
      expect((await s.request('account/logout')).result).toEqual({});
      expect((await s.notification('account/updated', from)).params).toEqual({ authMode: null, planType: null });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual(NO_AUTH_STATUS);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-after' })).result).toEqual({ type: 'apiKey' });
    });

    it('clears a stored key that host tokens were shadowing', async () => {
      const { s } = await startWithHostTokens({ auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-old' } });
      expect(JSON.parse(authText(s)).OPENAI_API_KEY).toBe('sk-old');
      await s.request('account/logout');
      expect(hasAuthFile(s)).toBe(false);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });
  });

  describe('getAuthStatus', () => {
    it.each([true, false])('reports nothing when logged out (includeToken %s)', async (includeToken) => {
      const s = await start();
      expect((await s.request('getAuthStatus', { includeToken, refreshToken: false })).result).toEqual(NO_AUTH_STATUS);
    });

    it('reports the API key only when includeToken is true', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-abc' });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
        authMethod: 'apikey',
        authToken: 'sk-abc',
        requiresOpenaiAuth: true,
      });
      expect((await s.request('getAuthStatus', { includeToken: false })).result).toEqual({
        authMethod: 'apikey',
        authToken: null,
        requiresOpenaiAuth: true,
      });
      expect((await s.request('getAuthStatus', {})).result.authToken).toBeNull();
    });

    it('reports a stored ChatGPT login with its access token only when includeToken is true', async () => {
      const auth = chatgptAuthFile({ planType: 'plus' });
      const s = await start({ auth });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
        authMethod: 'chatgpt',
        authToken: auth.tokens.access_token,
        requiresOpenaiAuth: true,
      });
      expect((await s.request('getAuthStatus', { includeToken: false })).result).toEqual({
        authMethod: 'chatgpt',
        authToken: null,
        requiresOpenaiAuth: true,
      });
    });

    it('reports host tokens with the access token only when includeToken is true, ignoring refreshToken', async () => {
      const { s, token, backend } = await startWithHostTokens();
      const before = backend.requests.length;
      expect((await s.request('getAuthStatus', { includeToken: true, refreshToken: true })).result).toEqual({
        authMethod: 'chatgptAuthTokens',
        authToken: token,
        requiresOpenaiAuth: true,
      });
      expect((await s.request('getAuthStatus', { includeToken: false })).result).toEqual({
        authMethod: 'chatgptAuthTokens',
        authToken: null,
        requiresOpenaiAuth: true,
      });
      expect(backend.requests).toHaveLength(before);
    });
  });

  describe('policy refusals (SPEC §3.2)', () => {
    const stored = { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-stored' };
    const refusals = [
      ['api', 'chatgpt', { type: 'chatgpt' }, 'ChatGPT login is disabled. Use API key login instead.', 'use_api_key_login'],
      ['api', 'chatgptDeviceCode', { type: 'chatgptDeviceCode' }, 'ChatGPT login is disabled. Use API key login instead.', 'use_api_key_login'],
      [
        'api',
        'chatgptAuthTokens',
        { type: 'chatgptAuthTokens', accessToken: chatgptJwt({ accountId: 'ws-1' }), chatgptAccountId: 'ws-1' },
        'External ChatGPT auth is disabled. Use API key login instead.',
        'use_api_key_login',
      ],
      ['chatgpt', 'apiKey', { type: 'apiKey', apiKey: 'sk-no' }, 'API key login is disabled. Use ChatGPT login instead.', 'use_chatgpt_login'],
    ] as const;

    it.each(refusals)(
      'forced_login_method=%s refuses %s login without touching auth.json or notifying',
      async (method, _type, params, message, recovery) => {
        const s = await start({ config: `forced_login_method = "${method}"\n`, auth: stored });
        const before = authText(s);
        const readBefore = (await s.request('account/read', {})).result;
        const { response, after } = await exchange(s, 'account/login/start', params);
        expect(response.error).toEqual({ code: -32600, message, data: { reason: 'login_method_forbidden', recovery } });
        expect(after).toEqual([response]);
        expect(authText(s)).toBe(before);
        expect((await s.request('account/read', {})).result).toEqual(readBefore);
      },
    );

    it('refuses on a fresh home without creating auth.json', async () => {
      const s = await start({ config: 'forced_login_method = "chatgpt"\n' });
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-no' })).error?.code).toBe(-32600);
      expect(hasAuthFile(s)).toBe(false);
    });

    it('lets forced_login_method=api through to API key login', async () => {
      const s = await start({ config: 'forced_login_method = "api"\n' });
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' })).result).toEqual({ type: 'apiKey' });
      expect(JSON.parse(authText(s)).OPENAI_API_KEY).toBe('sk');
    });

    it.each([
      ['chatgpt', 'authUrl'],
      ['chatgptDeviceCode', 'userCode'],
    ])('lets forced_login_method=chatgpt through to %s login, which starts against the issuer', async (type, detail) => {
      const issuer = await Issuer.start();
      try {
        const s = await start({ config: 'forced_login_method = "chatgpt"\n', env: loginEnv(issuer) });
        const { response, after } = await exchange(s, 'account/login/start', { type });
        expect(response.result).toMatchObject({ type, loginId: expect.stringMatching(/^[0-9a-f-]{36}$/), [detail]: expect.any(String) });
        expect(after).toEqual([response]);
      } finally {
        await issuer.stop();
      }
    });

    it('lets forced_login_method=chatgpt through to a host tokens login', async () => {
      const { s } = await startWithHostTokens({}, 'forced_login_method = "chatgpt"\n');
      expect((await s.request('account/read', {})).result).toEqual(CHATGPT_ACME);
    });

    it.each([
      ['apiKey', { type: 'apiKey', apiKey: 'sk-x' }],
      ['chatgpt', { type: 'chatgpt' }],
      ['chatgptDeviceCode', { type: 'chatgptDeviceCode' }],
    ])(
      'refuses %s login while host tokens are active, leaving them installed',
      async (_type, params) => {
        const { s, token } = await startWithHostTokens();
        const { response, after } = await exchange(s, 'account/login/start', params);
        expect(response.error).toEqual({
          code: -32600,
          message: EXTERNAL_ACTIVE,
          data: { reason: 'external_auth_active', recovery: 'logout_or_update_tokens' },
        });
        expect(after).toEqual([response]);
        expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(token);
        expect(hasAuthFile(s)).toBe(false);
      },
    );

    it('refuses an API key login under host tokens with the external-auth message even when API keys are forbidden', async () => {
      const { s } = await startWithHostTokens({}, 'forced_login_method = "chatgpt"\n');
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' })).error.message).toBe(EXTERNAL_ACTIVE);
    });

    it('lets a host tokens login replace active host tokens', async () => {
      const { s } = await startWithHostTokens();
      const token = chatgptJwt({ email: 'b@c.d', accountId: 'ws-1', planType: 'pro', userId: 'user-2' });
      const from = s.messages.length;
      const response = await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: token, chatgptAccountId: 'ws-1' });
      expect(response.result).toEqual({ type: 'chatgptAuthTokens' });
      expect((await s.notification('account/updated', from)).params).toEqual({ authMode: 'chatgptAuthTokens', planType: 'pro' });
      expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(token);
    });

    it.each(['chatgpt', 'chatgptDeviceCode'])(
      'starts a %s login that passes the guards, leaving the stored key alone while it is pending',
      async (type) => {
        const issuer = await Issuer.start();
        try {
          const s = await start({ auth: stored, env: loginEnv(issuer) });
          const before = authText(s);
          const { response, after } = await exchange(s, 'account/login/start', { type });
          expect(response.result).toMatchObject({ type, loginId: expect.any(String) });
          expect(after).toEqual([response]);
          expect(authText(s)).toBe(before);
          expect((await s.request('account/read', {})).result).toEqual(API_KEY);
        } finally {
          await issuer.stop();
        }
      },
    );
  });

  describe('account/rateLimits/read (SPEC §10 refusals)', () => {
    it('needs an account when logged out', async () => {
      const s = await start();
      expect((await s.request('account/rateLimits/read', {})).error).toEqual({
        code: -32600,
        message: 'codex account authentication required to read rate limits',
        data: { reason: 'auth_required', recovery: 'login' },
      });
    });

    it('needs ChatGPT auth with an API key, params optional', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' });
      const expected = {
        code: -32600,
        message: 'chatgpt authentication required to read rate limits',
        data: { reason: 'chatgpt_auth_required', recovery: 'use_chatgpt_login' },
      };
      expect((await s.request('account/rateLimits/read')).error).toEqual(expected);
      expect((await s.request('account/rateLimits/read', { supportsLunaReserve: true })).error).toEqual(expected);
    });

    it('treats a key hidden by forced_login_method=chatgpt as no account', async () => {
      const s = await start({ config: 'forced_login_method = "chatgpt"\n', auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk' } });
      expect((await s.request('account/rateLimits/read', {})).error.message).toBe(
        'codex account authentication required to read rate limits',
      );
    });
  });

  it('keeps file mode 0600 on the stored key', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-abc' });
    expect(statSync(join(s.home, 'auth.json')).mode & 0o777).toBe(0o600);
  });
});
