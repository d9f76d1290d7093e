import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend, type Reply } from '../helpers/backend.js';
import { chatgptJwt, makeJwt } from '../helpers/jwt.js';
import { ServerProcess, settle } from '../helpers/server-process.js';

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

  it('refuses a workspace outside the forced list at once, without any HTTP request', async () => {
    await backend.stop();
    const s = await start('forced_chatgpt_workspace_id = ["ws-1", "ws-3"]\n');
    await expectRefusal(s, tokens('ws-2'), {
      code: -32600,
      message: 'External auth must use one of workspace(s) ["ws-1", "ws-3"], but received "ws-2".',
      data: { reason: 'workspace_not_allowed', recovery: 'relogin' },
    });
    expect(backend.requests).toEqual([]);
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
      expect(completed.params.error).toBe('workspace routing requires a ChatGPT account id');
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

  it('leaves the previous tokens intact when a replacement is refused', async () => {
    const s = await start('forced_chatgpt_workspace_id = "ws-1"\n');
    const first = tokens('ws-1');
    await s.request('account/login/start', first);
    await s.request('account/login/start', { ...tokens('ws-1'), accessToken: 'garbage' });
    await s.request('account/login/start', tokens('ws-2'));
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(first.accessToken);
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
    await server.stderrMatching(/dropping malformed JSON line/);
    expect(server.stderr).not.toContain(params.accessToken);
    expect(server.stderr).not.toContain(params.accessToken.split('.')[1]);
    expect(server.stderr).not.toContain('sk-top-secret-key');
  });
});
