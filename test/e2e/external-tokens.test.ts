import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend, type Reply } from '../helpers/backend.js';
import { chatgptJwt, makeJwt } from '../helpers/jwt.js';
import { NO_AUTH_STATUS, ServerProcess, settle } from '../helpers/server-process.js';

const CHECK = '/backend-api/wham/accounts/check';
const EXTERNAL_ACTIVE =
  'External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.';

describe('host-supplied tokens (SPEC §9.1, §9.2)', () => {
  let server: ServerProcess;
  let backend: FakeBackend;
  beforeEach(async () => {
    backend = await FakeBackend.start();
    backend.on(CHECK, accountsCheck([{ id: 'ws-1', name: 'Acme', override: 'us' }, { id: 'ws-2', name: 'Other' }]));
  });
  afterEach(async () => {
    server?.kill();
    await backend.stop();
  });

  async function start(config = '', initialize: Record<string, unknown> = {}) {
    server = ServerProcess.start({ config: `chatgpt_base_url = "${backend.baseUrl}"\n${config}` });
    await server.initialize(initialize);
    return server;
  }

  const tokens = (accountId = 'ws-1', extra: Record<string, unknown> = {}) => ({
    type: 'chatgptAuthTokens',
    accessToken: chatgptJwt({ email: 'a@b.c', accountId, planType: 'plus', userId: 'user-1' }),
    chatgptAccountId: accountId,
    ...extra,
  });

  async function expectRefusal(s: ServerProcess, params: unknown, error: unknown) {
    const from = s.messages.length;
    const response = await s.request('account/login/start', params);
    expect(response.error).toEqual(error);
    await settle(s);
    expect(s.messages.slice(from)).toEqual([response]);
    return response;
  }

  it('requires the experimentalApi capability', async () => {
    const s = await start('', { capabilities: { experimentalApi: false } });
    await expectRefusal(s, tokens(), {
      code: -32600,
      message: 'account/login/start.chatgptAuthTokens requires experimentalApi capability',
      data: { reason: 'experimental_api_required', recovery: 'enable_experimental_api' },
    });
  });

  it('checks params before the capability, and the capability before decoding the token', async () => {
    const s = await start('', { capabilities: {} });
    expect((await s.request('account/login/start', { type: 'chatgptAuthTokens', chatgptAccountId: 'ws-1' })).error.message).toBe(
      'Invalid request: missing field `accessToken`',
    );
    const gated = await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: 'nope', chatgptAccountId: 'ws-1' });
    expect(gated.error.data.reason).toBe('experimental_api_required');
  });

  it('refuses a workspace outside the forced list without contacting the backend', async () => {
    const s = await start('forced_chatgpt_workspace_id = ["ws-1", "ws-3"]\n');
    await expectRefusal(s, tokens('ws-2'), {
      code: -32600,
      message: 'External auth must use one of workspace(s) ["ws-1", "ws-3"], but received "ws-2".',
      data: { reason: 'workspace_not_allowed', recovery: 'relogin' },
    });
    expect(backend.requests).toEqual([]);
  });

  it('refuses a workspace outside the forced list at once even with the backend unreachable', async () => {
    await backend.stop();
    const s = await start('forced_chatgpt_workspace_id = ["ws-1", "ws-3"]\n');
    const response = await expectRefusal(s, tokens('ws-2'), expect.objectContaining({ code: -32600 }));
    expect(response.error.message).toBe('External auth must use one of workspace(s) ["ws-1", "ws-3"], but received "ws-2".');
  });

  it('words a single forced workspace as a one-element list', async () => {
    const s = await start('forced_chatgpt_workspace_id = "ws-1"\n');
    const response = await expectRefusal(s, tokens('ws-2'), expect.objectContaining({ code: -32600 }));
    expect(response.error.message).toBe('External auth must use one of workspace(s) ["ws-1"], but received "ws-2".');
  });

  it('refuses host tokens when forced_login_method is "api"', async () => {
    const s = await start('forced_login_method = "api"\n');
    await expectRefusal(s, tokens(), {
      code: -32600,
      message: 'External ChatGPT auth is disabled. Use API key login instead.',
      data: { reason: 'login_method_forbidden', recovery: 'use_api_key_login' },
    });
    expect(backend.requests).toEqual([]);
  });

  it('accepts host tokens when forced_login_method is "chatgpt"', async () => {
    const s = await start('forced_login_method = "chatgpt"\n');
    const from = s.messages.length;
    expect((await s.request('account/login/start', tokens())).result).toEqual({ type: 'chatgptAuthTokens' });
    expect((await s.notification('account/updated', from)).params.authMode).toBe('chatgptAuthTokens');
  });

  it('requires the chatgptAccountId param', async () => {
    const s = await start();
    const { chatgptAccountId: _omitted, ...params } = tokens();
    await expectRefusal(s, params, {
      code: -32600,
      message: 'Invalid request: missing field `chatgptAccountId`',
      data: { reason: 'invalid_params', recovery: 'fix_request' },
    });
  });

  // Relative order beyond "gate before decoding" is unconfirmed (SPEC §9.1); these pin the order the code uses.
  it.each([
    ['the capability before forced_login_method', 'forced_login_method = "api"\n', false, 'ws-1', 'experimental_api_required'],
    [
      'forced_login_method before the forced workspace',
      'forced_login_method = "api"\nforced_chatgpt_workspace_id = "ws-1"\n',
      true,
      'ws-2',
      'login_method_forbidden',
    ],
    ['the forced workspace before decoding the token', 'forced_chatgpt_workspace_id = "ws-1"\n', true, 'ws-2', 'workspace_not_allowed'],
  ])('checks %s', async (_name, config, experimentalApi, accountId, reason) => {
    const s = await start(config, { capabilities: { experimentalApi } });
    const response = await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: 'garbage', chatgptAccountId: accountId });
    expect(response.error.data.reason).toBe(reason);
  });

  it('judges the forced workspace by the chatgptAccountId param, not the claim', async () => {
    const s = await start('forced_chatgpt_workspace_id = "ws-1"\n');
    const params = { type: 'chatgptAuthTokens', accessToken: chatgptJwt({ accountId: 'ws-2' }), chatgptAccountId: 'ws-1' };
    expect((await s.request('account/login/start', params)).result).toEqual({ type: 'chatgptAuthTokens' });
  });

  it.each(['', 'not-a-jwt', 'a.b', 'x.!!!.y'])('refuses the undecodable access token %j', async (accessToken) => {
    const s = await start();
    await expectRefusal(s, { type: 'chatgptAuthTokens', accessToken, chatgptAccountId: 'ws-1' }, {
      code: -32603,
      message: 'failed to set external auth: invalid ID token format',
      data: { reason: 'invalid_token', recovery: 'relogin' },
    });
  });

  it('replies, discovers, then sends completed and updated, in that order', async () => {
    const s = await start();
    const from = s.messages.length;
    const params = tokens();
    s.send({ id: 't', method: 'account/login/start', params });
    await s.notification('account/updated', from);
    expect(s.messages.slice(from)).toEqual([
      { id: 't', result: { type: 'chatgptAuthTokens' } },
      {
        method: 'account/login/completed',
        params: { loginId: null, success: true, error: null, onboardingEntrypoint: null },
        emittedAtMs: expect.any(Number),
      },
      { method: 'account/updated', params: { authMode: 'chatgptAuthTokens', planType: 'plus' }, emittedAtMs: expect.any(Number) },
    ]);
    const [check] = backend.requestsTo(CHECK);
    expect(check!.method).toBe('GET');
    expect(check!.headers.authorization).toBe(`Bearer ${params.accessToken}`);
    expect(check!.headers['chatgpt-account-id']).toBe('ws-1');
    expect(check!.headers['user-agent']).toMatch(/^test-host\/0\.169\.0 /);
    expect(check!.headers.originator).toBeUndefined();
  });

  it('answers the login before discovery finishes and sends completed only after it', async () => {
    let answeredBeforeDiscovery = false;
    let completedBeforeDiscovery = true;
    backend.on(CHECK, async () => {
      answeredBeforeDiscovery = await server.response('t', 2_000).then(() => true, () => false);
      completedBeforeDiscovery = server.notifications('account/login/completed').length > 0;
      return accountsCheck([{ id: 'ws-1', name: 'Acme' }]);
    });
    const s = await start();
    s.send({ id: 't', method: 'account/login/start', params: tokens() });
    await s.notification('account/updated');
    expect(answeredBeforeDiscovery).toBe(true);
    expect(completedBeforeDiscovery).toBe(false);
  });

  it('answers a read sent during login discovery after completed and updated, with the discovered workspace', async () => {
    backend.on(CHECK, async () => {
      await new Promise((r) => setTimeout(r, 100));
      return accountsCheck([{ id: 'ws-1', name: 'Acme' }]);
    });
    const s = await start();
    const from = s.messages.length;
    s.send({ id: 't', method: 'account/login/start', params: tokens() });
    s.send({ id: 'r', method: 'account/read', params: {} });
    const read = await s.response('r');
    expect(s.messages.slice(from).map((m) => m.method ?? m.id)).toEqual(['t', 'account/login/completed', 'account/updated', 'r']);
    expect(read.result.account.workspaceName).toBe('Acme');
    expect(backend.requestsTo(CHECK)).toHaveLength(1);
  });

  it('reads the account from the token and the workspace from discovery', async () => {
    const s = await start();
    await s.request('account/login/start', tokens());
    expect((await s.request('account/read', {})).result).toEqual({
      account: { type: 'chatgpt', email: 'a@b.c', planType: 'plus', workspaceName: 'Acme' },
      userId: 'user-1',
      requiresOpenaiAuth: true,
      workspaceRouting: { chatgptAccountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'us' },
    });
    expect(backend.requestsTo(CHECK)).toHaveLength(1);
  });

  it('lets the chatgptAccountId param override the claim', async () => {
    const s = await start();
    const params = { type: 'chatgptAuthTokens', accessToken: chatgptJwt({ accountId: 'ws-1' }), chatgptAccountId: 'ws-2' };
    await s.request('account/login/start', params);
    const read = await s.request('account/read', {});
    expect(read.result.workspaceRouting.chatgptAccountId).toBe('ws-2');
    expect(read.result.account.workspaceName).toBe('Other');
  });

  it('accepts expired tokens', async () => {
    const s = await start();
    const params = { type: 'chatgptAuthTokens', accessToken: chatgptJwt({ accountId: 'ws-1', exp: 1 }), chatgptAccountId: 'ws-1' };
    expect((await s.request('account/login/start', params)).result).toEqual({ type: 'chatgptAuthTokens' });
  });

  it.each([
    ['a known plan param', 'team', 'plus', 'team'],
    ['an unknown plan param', 'galaxy', 'plus', 'unknown'],
    ['no plan param', undefined, 'pro', 'pro'],
    ['a null plan param and an unknown claim', null, 'weird', 'unknown'],
    ['neither param nor claim', undefined, undefined, 'unknown'],
  ])('resolves the plan from %s', async (_name, param, claim, expected) => {
    const s = await start();
    const from = s.messages.length;
    const accessToken = chatgptJwt({ accountId: 'ws-1', ...(claim === undefined ? {} : { planType: claim }) });
    await s.request('account/login/start', {
      type: 'chatgptAuthTokens',
      accessToken,
      chatgptAccountId: 'ws-1',
      ...(param === undefined ? {} : { chatgptPlanType: param }),
    });
    expect((await s.notification('account/updated', from)).params.planType).toBe(expected);
  });

  it('reads email and userId as null when the token has no such claims', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: makeJwt({ sub: 'x' }), chatgptAccountId: 'ws-1' });
    const read = await s.request('account/read', {});
    expect(read.result).toMatchObject({ account: { email: null, planType: 'unknown' }, userId: null });
  });

  describe('when discovery fails', () => {
    const failures: Array<[string, Reply | null, string]> = [
      ['the backend hangs up', { hangUp: true }, 'workspace routing discovery failed'],
      ['the backend answers 500', { status: 500, text: 'oops' }, 'workspace routing discovery failed'],
      ['the body is not the expected JSON', { json: { nope: true } }, 'workspace routing discovery failed'],
      ['the workspace is missing', accountsCheck([{ id: 'ws-9' }]), 'selected workspace missing from routing discovery'],
    ];

    it.each(failures)('reports completed failure only when %s, and keeps the tokens', async (_name, reply, message) => {
      backend.on(CHECK, reply!);
      const s = await start();
      const from = s.messages.length;
      const params = tokens();
      expect((await s.request('account/login/start', params)).result).toEqual({ type: 'chatgptAuthTokens' });
      const completed = await s.notification('account/login/completed', from);
      expect(completed.params).toEqual({ loginId: null, success: false, error: message, onboardingEntrypoint: null });
      await settle(s);
      expect(s.notifications('account/updated')).toEqual([]);
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
        authMethod: 'chatgptAuthTokens',
        authToken: params.accessToken,
        requiresOpenaiAuth: true,
      });
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' })).error.message).toBe(EXTERNAL_ACTIVE);
      const read = await s.request('account/read', {});
      expect(read.error).toMatchObject({ code: -32603, message });
    });

    it('fails an empty account id without any HTTP request', async () => {
      const s = await start();
      const from = s.messages.length;
      await s.request('account/login/start', tokens(''));
      const completed = await s.notification('account/login/completed', from);
      expect(completed.params).toEqual({
        loginId: null,
        success: false,
        error: 'workspace routing requires a ChatGPT account id',
        onboardingEntrypoint: null,
      });
      await settle(s);
      expect(s.notifications('account/updated')).toEqual([]);
      expect((await s.request('account/read', {})).error).toEqual({
        code: -32603,
        message: 'workspace routing requires a ChatGPT account id',
        data: { reason: 'account_id_missing', recovery: 'relogin' },
      });
      expect(backend.requests).toEqual([]);
    });

    it('retries discovery on every read until it succeeds', async () => {
      let calls = 0;
      backend.on(CHECK, () => (++calls <= 2 ? { status: 503 } : accountsCheck([{ id: 'ws-1', name: 'Acme' }])));
      const s = await start();
      await s.request('account/login/start', tokens());
      await s.notification('account/login/completed');
      expect((await s.request('account/read', {})).error.data.reason).toBe('routing_discovery_failed');
      expect((await s.request('account/read', {})).result.account.workspaceName).toBe('Acme');
      await s.request('account/read', {});
      expect(calls).toBe(3);
    });

    it('clears tokens whose discovery failed at logout', async () => {
      backend.on(CHECK, { status: 500 });
      const s = await start();
      await s.request('account/login/start', tokens());
      await s.notification('account/login/completed');
      expect((await s.request('account/logout')).result).toEqual({});
      expect((await s.request('account/read', {})).result.account).toBeNull();
      expect((await s.request('getAuthStatus', { includeToken: true })).result.authMethod).toBeNull();
    });

    it('lets a new tokens login replace the failed one', async () => {
      backend.on(CHECK, { status: 500 });
      const s = await start();
      await s.request('account/login/start', tokens());
      await s.notification('account/login/completed');
      backend.on(CHECK, accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
      const from = s.messages.length;
      await s.request('account/login/start', tokens());
      expect((await s.notification('account/login/completed', from)).params.success).toBe(true);
      expect((await s.request('account/read', {})).result.account.workspaceName).toBe('Acme');
    });
  });

  it('replaces installed tokens with a new tokens login', async () => {
    const s = await start();
    await s.request('account/login/start', tokens('ws-1'));
    const second = tokens('ws-2');
    await s.request('account/login/start', second);
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(second.accessToken);
    expect((await s.request('account/read', {})).result.workspaceRouting.chatgptAccountId).toBe('ws-2');
  });

  it.each([
    ['apiKey', { type: 'apiKey', apiKey: 'sk-refused' }],
    ['chatgpt', { type: 'chatgpt' }],
    ['chatgptDeviceCode', { type: 'chatgptDeviceCode' }],
  ])('refuses a %s login while host tokens are active', async (_name, params) => {
    const s = await start();
    await s.request('account/login/start', tokens());
    await s.notification('account/updated');
    await expectRefusal(s, params, {
      code: -32600,
      message: EXTERNAL_ACTIVE,
      data: { reason: 'external_auth_active', recovery: 'logout_or_update_tokens' },
    });
    expect((await s.request('getAuthStatus', {})).result.authMethod).toBe('chatgptAuthTokens');
  });

  it('drops host tokens at logout and notifies', async () => {
    const s = await start();
    await s.request('account/login/start', tokens());
    await s.notification('account/updated');
    const from = s.messages.length;
    expect((await s.request('account/logout')).result).toEqual({});
    expect((await s.notification('account/updated', from)).params).toEqual({ authMode: null, planType: null });
    expect((await s.request('account/read', {})).result).toEqual({
      account: null,
      userId: null,
      requiresOpenaiAuth: true,
      workspaceRouting: null,
    });
    expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual(NO_AUTH_STATUS);
  });

  it('allows an API key login once host tokens are logged out', async () => {
    const s = await start();
    await s.request('account/login/start', tokens());
    await s.request('account/logout');
    expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-after' })).result).toEqual({ type: 'apiKey' });
  });

  it('ignores refreshToken on reads in external mode', async () => {
    const s = await start();
    const params = tokens();
    await s.request('account/login/start', params);
    await s.notification('account/updated');
    const plain = await s.request('account/read', {});
    const from = s.messages.length;
    expect((await s.request('account/read', { refreshToken: true })).result).toEqual(plain.result);
    expect((await s.request('getAuthStatus', { includeToken: true, refreshToken: true })).result.authToken).toBe(params.accessToken);
    await settle(s);
    expect(s.messages.slice(from).filter((m) => 'method' in m)).toEqual([]);
    expect(backend.requestsTo(CHECK)).toHaveLength(1);
  });

  it('leaves out the token from getAuthStatus without includeToken', async () => {
    const s = await start();
    await s.request('account/login/start', tokens());
    expect((await s.request('getAuthStatus', { includeToken: false })).result).toEqual({
      authMethod: 'chatgptAuthTokens',
      authToken: null,
      requiresOpenaiAuth: true,
    });
  });

  it('never writes host tokens to auth.json', async () => {
    const s = await start();
    await s.request('account/login/start', tokens());
    await s.notification('account/updated');
    expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
  });

  it('forgets host tokens on restart', async () => {
    const s = await start();
    await s.request('account/login/start', tokens());
    await s.close();
    server = ServerProcess.start({ home: s.home });
    await server.initialize();
    expect((await server.request('account/read', {})).result.account).toBeNull();
  });

  it('leaves the previous tokens intact and notifies nothing when a replacement is refused', async () => {
    const s = await start('forced_chatgpt_workspace_id = "ws-1"\n');
    const first = tokens('ws-1');
    await s.request('account/login/start', first);
    await s.notification('account/updated');
    const before = await s.request('account/read', {});
    await expectRefusal(s, { ...tokens('ws-1'), accessToken: 'garbage' }, expect.objectContaining({ code: -32603 }));
    await expectRefusal(s, tokens('ws-2'), expect.objectContaining({ code: -32600 }));
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(first.accessToken);
    expect((await s.request('account/read', {})).result).toEqual(before.result);
  });

  describe('over a stored API key', () => {
    const KEY_FILE = JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-stored' }, null, 2);

    async function startWithKey() {
      server = ServerProcess.start({ config: `chatgpt_base_url = "${backend.baseUrl}"\n`, auth: KEY_FILE });
      await server.initialize();
      return server;
    }

    // SPEC §3.7 leaves the fate of auth.json unconfirmed; this server leaves it alone.
    it('takes over from the key without touching auth.json', async () => {
      const s = await startWithKey();
      await s.request('account/login/start', tokens());
      await s.notification('account/updated');
      expect((await s.request('getAuthStatus', {})).result.authMethod).toBe('chatgptAuthTokens');
      expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(KEY_FILE);
      expect(statSync(join(s.home, 'auth.json')).mode & 0o777).toBe(0o600);
    });

    it('comes back to the stored key after a restart', async () => {
      const s = await startWithKey();
      await s.request('account/login/start', tokens());
      await s.close();
      server = ServerProcess.start({ home: s.home });
      await server.initialize();
      expect((await server.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-stored');
    });

    // Unconfirmed (SPEC §3.4 only says the tokens are dropped); this server's logout also deletes auth.json.
    it('deletes the stored key too at logout', async () => {
      const s = await startWithKey();
      await s.request('account/login/start', tokens());
      await s.request('account/logout');
      expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
      expect((await s.request('account/read', {})).result.account).toBeNull();
    });
  });

  it('keeps tokens and keys out of stderr even at debug level', async () => {
    server = ServerProcess.start({
      config: `chatgpt_base_url = "${backend.baseUrl}"\n`,
      env: { CODEX_ACCOUNT_SERVER_LOG: 'debug' },
    });
    await server.initialize();
    const params = tokens();
    await server.request('account/login/start', params);
    await server.notification('account/updated');
    await server.request('account/logout');
    await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-top-secret-key' });
    server.sendRaw('{"apiKey":"sk-top-secret-key" broken\n');
    await server.request('account/read', {});
    await server.stderrMatching(/dropping input line \(\d+ chars\): malformed JSON/);
    expect(server.stderr).not.toContain(params.accessToken);
    expect(server.stderr).not.toContain(params.accessToken.split('.')[1]);
    expect(server.stderr).not.toContain('sk-top-secret-key');
  });

  it('keeps tokens and keys out of stderr when discovery fails', async () => {
    backend.on(CHECK, { status: 500 });
    server = ServerProcess.start({
      config: `chatgpt_base_url = "${backend.baseUrl}"\n`,
      env: { CODEX_ACCOUNT_SERVER_LOG: 'debug' },
    });
    await server.initialize();
    const params = tokens();
    await server.request('account/login/start', params);
    await server.notification('account/login/completed');
    await server.request('account/read', {});
    await server.request('getAuthStatus', { includeToken: true });
    await server.request('account/logout');
    await server.request('account/login/start', { type: 'apiKey', apiKey: 'plain-secret-4711' });
    await server.request('getAuthStatus', { includeToken: true });
    await server.stderrMatching(/answered 500/);
    expect(server.stderr).not.toContain(params.accessToken.split('.')[1]);
    expect(server.stderr).not.toContain('plain-secret-4711');
  });
});
