import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accountsCheck } from '../helpers/backend.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { settle, useServers, type StartOptions } from '../helpers/server-process.js';

const LOGGED_OUT = { account: null, userId: null, requiresOpenaiAuth: true, workspaceRouting: null };
const API_KEY = { account: { type: 'apiKey' }, userId: null, requiresOpenaiAuth: true, workspaceRouting: null };
const EXTERNAL_ACTIVE =
  'External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.';

describe('account methods (SPEC §3)', () => {
  const env = useServers();
  const start = (options: StartOptions = {}) => env.start(options);

  /** A server whose backend answers discovery for ws-1, logged in with host tokens. */
  async function startWithHostTokens(config = '') {
    const backend = await env.backend();
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
    const s = await start({ config: `chatgpt_base_url = "${backend.baseUrl}"\n${config}` });
    const token = chatgptJwt({ email: 'a@b.c', accountId: 'ws-1', planType: 'plus', userId: 'user-1' });
    const from = s.messages.length;
    const login = await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: token, chatgptAccountId: 'ws-1' });
    expect(login.result).toEqual({ type: 'chatgptAuthTokens' });
    await s.notification('account/updated', from);
    return { s, token };
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
    });

    it('sends no notification on the first read of a stored API key', async () => {
      const s = await start({ auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-stored' } });
      const from = s.messages.length;
      expect((await s.request('account/read', {})).result).toEqual(API_KEY);
      await settle(s);
      expect(s.messages.slice(from)).toHaveLength(1);
    });
  });

  describe('account/login/start apiKey', () => {
    it('stores the key before answering, then sends completed and updated', async () => {
      const s = await start();
      const from = s.messages.length;
      s.send({ id: 'k', method: 'account/login/start', params: { type: 'apiKey', apiKey: 'sk-abc' } });
      const response = await s.response('k');
      expect(existsSync(join(s.home, 'auth.json'))).toBe(true);
      await s.notification('account/updated', from);
      expect(s.messages.slice(from)).toEqual([
        { id: 'k', result: { type: 'apiKey' } },
        {
          method: 'account/login/completed',
          params: { loginId: null, success: true, error: null, onboardingEntrypoint: null },
          emittedAtMs: expect.any(Number),
        },
        { method: 'account/updated', params: { authMode: 'apikey', planType: null }, emittedAtMs: expect.any(Number) },
      ]);
      expect(response.result).toEqual({ type: 'apiKey' });
    });

    it('replaces the key when repeated', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-one' });
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-two' });
      expect(JSON.parse(readFileSync(join(s.home, 'auth.json'), 'utf8')).OPENAI_API_KEY).toBe('sk-two');
      expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-two');
    });

    it('accepts an empty key', async () => {
      const s = await start();
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: '' })).result).toEqual({ type: 'apiKey' });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
        authMethod: 'apikey',
        authToken: '',
        requiresOpenaiAuth: true,
      });
    });
  });

  describe('account/login/cancel', () => {
    it.each([
      '0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6a',
      '0B9F3B5E-1C1A-4D2E-9A7B-2F1E3D4C5B6A',
      '0b9f3b5e1c1a4d2e9a7b2f1e3d4c5b6a',
      '{0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6a}',
      'urn:uuid:0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6a',
    ])('answers notFound for the well-formed UUID %s that is not pending', async (loginId) => {
      const s = await start();
      const from = s.messages.length;
      expect((await s.request('account/login/cancel', { loginId })).result).toEqual({ status: 'notFound' });
      await settle(s);
      expect(s.messages.slice(from)).toHaveLength(1);
    });

    it.each(['abc', '', '0b9f3b5e-1c1a-4d2e-9a7b-2f1e3d4c5b6', 'zzzzzzzz-1c1a-4d2e-9a7b-2f1e3d4c5b6a'])(
      'refuses the malformed login id %j',
      async (loginId) => {
        const s = await start();
        expect((await s.request('account/login/cancel', { loginId })).error).toEqual({
          code: -32600,
          message: `invalid login id: ${loginId}`,
          data: { reason: 'invalid_login_id', recovery: 'fix_request' },
        });
      },
    );
  });

  describe('account/logout', () => {
    it('answers {} and notifies authMode null even when already logged out', async () => {
      const s = await start();
      const from = s.messages.length;
      expect((await s.request('account/logout')).result).toEqual({});
      const note = await s.notification('account/updated', from);
      expect(note.params).toEqual({ authMode: null, planType: null });
    });

    it('deletes auth.json of an API key login', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-abc' });
      await s.request('account/logout');
      expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });

    it('drops host tokens, after which API key logins work again', async () => {
      const { s } = await startWithHostTokens();
      await s.request('account/logout');
      expect((await s.request('getAuthStatus', { includeToken: true })).result.authMethod).toBeNull();
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-after' })).result).toEqual({ type: 'apiKey' });
    });

    it('clears a stored key that host tokens were shadowing', async () => {
      const backend = await env.backend();
      backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1' }]));
      const s = await start({ config: `chatgpt_base_url = "${backend.baseUrl}"\n`, auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-old' } });
      const token = chatgptJwt({ accountId: 'ws-1' });
      await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: token, chatgptAccountId: 'ws-1' });
      expect(JSON.parse(readFileSync(join(s.home, 'auth.json'), 'utf8')).OPENAI_API_KEY).toBe('sk-old');
      await s.request('account/logout');
      expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });
  });

  describe('getAuthStatus', () => {
    it('reports nothing when logged out', async () => {
      const s = await start();
      expect((await s.request('getAuthStatus', { includeToken: true, refreshToken: false })).result).toEqual({
        authMethod: null,
        authToken: null,
        requiresOpenaiAuth: true,
      });
    });

    it('reports the API key only when includeToken is true', async () => {
      const s = await start();
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-abc' });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
        authMethod: 'apikey',
        authToken: 'sk-abc',
        requiresOpenaiAuth: true,
      });
      expect((await s.request('getAuthStatus', { includeToken: false })).result.authToken).toBeNull();
      expect((await s.request('getAuthStatus', {})).result.authToken).toBeNull();
    });

    it('reports host tokens with the access token', async () => {
      const { s, token } = await startWithHostTokens();
      expect((await s.request('getAuthStatus', { includeToken: true, refreshToken: true })).result).toEqual({
        authMethod: 'chatgptAuthTokens',
        authToken: token,
        requiresOpenaiAuth: true,
      });
    });
  });

  describe('policy refusals (SPEC §3.2)', () => {
    const refusals = [
      ['api', { type: 'chatgpt' }, 'ChatGPT login is disabled. Use API key login instead.', 'use_api_key_login'],
      ['api', { type: 'chatgptDeviceCode' }, 'ChatGPT login is disabled. Use API key login instead.', 'use_api_key_login'],
      [
        'api',
        { type: 'chatgptAuthTokens', accessToken: chatgptJwt({ accountId: 'ws-1' }), chatgptAccountId: 'ws-1' },
        'External ChatGPT auth is disabled. Use API key login instead.',
        'use_api_key_login',
      ],
      ['chatgpt', { type: 'apiKey', apiKey: 'sk-no' }, 'API key login is disabled. Use ChatGPT login instead.', 'use_chatgpt_login'],
    ] as const;

    it.each(refusals)('forced_login_method=%s refuses %j with no side effects', async (method, params, message, recovery) => {
      const s = await start({ config: `forced_login_method = "${method}"\n` });
      const from = s.messages.length;
      const response = await s.request('account/login/start', params);
      expect(response.error).toEqual({ code: -32600, message, data: { reason: 'login_method_forbidden', recovery } });
      await settle(s);
      expect(s.messages.slice(from)).toEqual([response]);
      expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
    });

    it('lets forced_login_method=api through to API key login', async () => {
      const s = await start({ config: 'forced_login_method = "api"\n' });
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' })).result).toEqual({ type: 'apiKey' });
    });

    it.each([{ type: 'apiKey', apiKey: 'sk-x' }, { type: 'chatgpt' }, { type: 'chatgptDeviceCode' }])(
      'refuses %j while host tokens are active, leaving them installed',
      async (params) => {
        const { s, token } = await startWithHostTokens();
        const from = s.messages.length;
        const response = await s.request('account/login/start', params);
        expect(response.error).toEqual({
          code: -32600,
          message: EXTERNAL_ACTIVE,
          data: { reason: 'external_auth_active', recovery: 'logout_or_update_tokens' },
        });
        await settle(s);
        expect(s.messages.slice(from)).toEqual([response]);
        expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(token);
        expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
      },
    );

    it('answers not_implemented for a ChatGPT browser login that passes the guards', async () => {
      const s = await start();
      const response = await s.request('account/login/start', { type: 'chatgpt' });
      expect(response.error).toMatchObject({ code: -32603, data: { reason: 'not_implemented' } });
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });
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
      expect((await s.request('account/rateLimits/read')).error).toMatchObject({
        code: -32600,
        message: 'chatgpt authentication required to read rate limits',
      });
    });
  });

  it('keeps file mode 0600 on the stored key', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-abc' });
    expect(statSync(join(s.home, 'auth.json')).mode & 0o777).toBe(0o600);
  });
});
