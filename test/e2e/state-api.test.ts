import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeBackend } from '../helpers/backend.js';
import { chatgptAuthFile } from '../helpers/jwt.js';
import { ServerProcess, type StartOptions } from '../helpers/server-process.js';

const LOGIN_ENV = { CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '0', CODEX_APP_SERVER_LOGIN_ISSUER: 'http://127.0.0.1:9' };
const ALL_METHODS = ['apiKey', 'chatgpt', 'chatgptDeviceCode', 'chatgptAuthTokens'];

describe('account/state/read and account/state/changed', () => {
  const servers: ServerProcess[] = [];
  const backends: FakeBackend[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) s.kill();
    for (const b of backends.splice(0)) await b.stop();
  });

  async function start(options: StartOptions = {}, capabilities: Record<string, unknown> = {}) {
    const s = ServerProcess.start(options);
    servers.push(s);
    await s.initialize({ capabilities: { experimentalApi: true, ...capabilities } });
    // The state API answers while credentials load (it shows `loading`); getAuthStatus waits for them.
    await s.request('getAuthStatus', {});
    return s;
  }

  const state = async (s: ServerProcess, params: unknown = {}) => {
    const response = await s.request('account/state/read', params);
    expect(response.error).toBeUndefined();
    return response.result;
  };

  it('answers the statechart value, the policy, the login methods it allows and the credential store in use', async () => {
    const s = await start();
    expect(await state(s)).toEqual({
      value: { credentials: 'loggedOut', login: 'idle' },
      machines: { session: null, loginAttempt: null },
      authMode: null,
      busy: false,
      pendingLogin: null,
      refreshing: false,
      lastError: null,
      policy: { forcedLoginMethod: null, forcedWorkspaceIds: null },
      allowedLoginMethods: ALL_METHODS,
      credentialStore: { configured: 'file', backend: 'file', reason: 'configured', location: join(s.home, 'auth.json'), problem: null },
    });
  });

  it('accepts absent params as well as {}', async () => {
    const s = await start();
    expect((await s.request('account/state/read')).result.value).toEqual({ credentials: 'loggedOut', login: 'idle' });
  });

  it('names the ephemeral store when config.toml asks for it', async () => {
    const s = await start({ config: 'cli_auth_credentials_store = "ephemeral"\n' });
    expect((await state(s)).credentialStore).toEqual({
      configured: 'ephemeral', backend: 'memory', reason: 'configured', location: 'memory', problem: null,
    });
  });

  it('allows only what the forced login method and workspace leave, and host tokens only with the experimental API', async () => {
    const s = await start({ config: 'forced_login_method = "chatgpt"\nforced_chatgpt_workspace_id = "ws-1"\n' }, { experimentalApi: false });
    const view = await state(s);
    expect(view.policy).toEqual({ forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: ['ws-1'] });
    expect(view.allowedLoginMethods).toEqual(['chatgpt', 'chatgptDeviceCode']);
  });

  it('shows the session child and the ChatGPT mode, without a token, for stored ChatGPT credentials', async () => {
    const auth = chatgptAuthFile();
    const s = await start({ auth });
    const view = await state(s);
    expect(view).toMatchObject({
      value: { credentials: { chatgptSession: 'chatgpt' }, login: 'idle' },
      machines: { session: 'ready', loginAttempt: null },
      authMode: 'chatgpt',
      refreshing: false,
    });
    const raw = s.rawLines.join('\n');
    for (const secret of [auth.tokens.access_token, auth.tokens.id_token, auth.tokens.refresh_token, auth.OPENAI_API_KEY]) {
      expect(raw).not.toContain(secret);
    }
  });

  it('gives a pending browser login its id, step, start time and deadline, and the failed login once cancelled', async () => {
    const s = await start({ env: { ...LOGIN_ENV, CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS: '120000' } });
    const before = Date.now();
    const { loginId, authUrl } = (await s.request('account/login/start', { type: 'chatgpt' })).result;
    const view = await state(s);
    expect(view.value).toEqual({ credentials: 'loggedOut', login: { chatgptPending: 'waiting' } });
    expect(view.machines.loginAttempt).toEqual({ open: { running: 'waiting' } });
    expect(view.pendingLogin).toMatchObject({ loginId, flow: 'browser', step: 'waiting' });
    const startedAt = Date.parse(view.pendingLogin.startedAt);
    const deadline = Date.parse(view.pendingLogin.deadline);
    expect(startedAt).toBeGreaterThanOrEqual(before - 5);
    expect(startedAt).toBeLessThanOrEqual(Date.now());
    expect(deadline - startedAt).toBeGreaterThanOrEqual(120_000);
    expect(deadline - startedAt).toBeLessThan(125_000);
    expect(JSON.stringify(view)).not.toContain(new URL(authUrl).searchParams.get('state'));

    await s.request('account/login/cancel', { loginId });
    const completed = await s.notification('account/login/completed');
    const after = await state(s);
    expect(after.pendingLogin).toBeNull();
    expect(after.machines.loginAttempt).toBeNull();
    expect(after.lastError).toMatchObject({
      source: 'login',
      code: null,
      message: completed.params.error,
      data: { reason: 'login_failed', recovery: 'start_login' },
    });
  });

  it('keeps the ChatGPT session while a new browser login starts (the credentials region is not re-entered)', async () => {
    const s = await start({ auth: chatgptAuthFile(), env: LOGIN_ENV }, { stateNotifications: true });
    const from = s.messages.length;
    await s.request('account/login/start', { type: 'chatgpt' });
    const waiting = await s.waitFor((m) => m.method === 'account/state/changed' && m.params.pendingLogin?.step === 'waiting', { from });
    expect(waiting.params.value).toEqual({ credentials: { chatgptSession: 'chatgpt' }, login: { chatgptPending: 'waiting' } });
    const seen = s.messages.slice(from).filter((m) => m.method === 'account/state/changed').map((m) => m.params.value.credentials);
    expect(seen.every((c) => JSON.stringify(c) === JSON.stringify({ chatgptSession: 'chatgpt' }))).toBe(true);
  });

  it('says a refresh is in flight while the token endpoint is slow, then the refresh failure with its reason', async () => {
    const issuer = await FakeBackend.start();
    backends.push(issuer);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    issuer.on('/oauth/token', async () => {
      await held;
      return { status: 401, json: { error: { code: 'refresh_token_expired' } } };
    });
    const s = await start({ auth: chatgptAuthFile(), env: { CODEX_REFRESH_TOKEN_URL_OVERRIDE: `${issuer.origin}/oauth/token` } });
    s.send({ id: 'forced', method: 'account/read', params: { refreshToken: true } });
    await waitUntil(() => issuer.requestsTo('/oauth/token').length === 1);
    const during = await state(s);
    expect(during.refreshing).toBe(true);
    expect(during.machines.session).toEqual({ refreshing: 'managed' });
    release();
    expect((await s.response('forced')).error.data.reason).toBe('refresh_token_expired');
    const after = await state(s);
    expect(after.refreshing).toBe(false);
    expect(after.lastError).toMatchObject({ source: 'refresh', code: -32603, data: { reason: 'refresh_token_expired', recovery: 'relogin' } });
    expect(Date.parse(after.lastError.at)).toBeLessThanOrEqual(Date.now());
  });

  it('reports an unreadable auth.json as the last error, with its reason', async () => {
    const s = await start({ auth: '{ not json' });
    const view = await state(s);
    expect(view.value).toEqual({ credentials: 'loggedOut', login: 'idle' });
    expect(view.lastError).toMatchObject({ source: 'storage', code: -32603, data: { reason: 'auth_file_corrupt' } });
  });

  it('sends account/state/changed on each change once the host opted in, after the reply, with the same shape as the read', async () => {
    const s = await start({}, { stateNotifications: true });
    const from = s.messages.length;
    const login = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-state-notify-123456' });
    const changed = await s.waitFor((m) => m.method === 'account/state/changed' && m.params.value.credentials === 'apiKey', { from });
    expect(s.messages.indexOf(changed)).toBeGreaterThan(s.messages.indexOf(login));
    expect(changed.params).toEqual(await state(s));
    expect(s.rawLines.join('\n')).not.toContain('sk-state-notify-123456');
  });

  it('coalesces changes and stays quiet when nothing changed', async () => {
    const s = await start({}, { stateNotifications: true });
    const before = s.messages.length;
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-state-notify-654321' });
    await s.waitFor((m) => m.method === 'account/state/changed' && m.params.value.credentials === 'apiKey');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const from = s.messages.length;
    for (let i = 0; i < 20; i++) s.send({ id: `r${i}`, method: 'account/read', params: {} });
    await s.response('r19');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(s.messages.slice(from).filter((m) => m.method === 'account/state/changed')).toEqual([]);
    // saving → apiKey happened within one turn or two: at most one notification per turn, never one per microstep.
    const all = s.messages.slice(before, from).filter((m) => m.method === 'account/state/changed');
    expect(all.length).toBeGreaterThanOrEqual(1);
    expect(all.length).toBeLessThanOrEqual(2);
    expect(new Set(all.map((m) => JSON.stringify(m.params))).size).toBe(all.length);
  });

  it('sends no account/state/changed without the capability, or when the host opted out of it', async () => {
    for (const capabilities of [{}, { stateNotifications: true, optOutNotificationMethods: ['account/state/changed'] }]) {
      const s = await start({}, capabilities);
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-state-quiet-111222' });
      await s.notification('account/updated');
      await s.request('account/logout', {});
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(s.messages.filter((m) => m.method === 'account/state/changed')).toEqual([]);
    }
  });

  it('refuses a non-boolean stateNotifications the way the reference words serde errors', async () => {
    const s = ServerProcess.start();
    servers.push(s);
    const response = await s.request('initialize', {
      clientInfo: { name: 'h', version: '1' },
      capabilities: { stateNotifications: 'yes' },
    });
    expect(response.error).toMatchObject({ code: -32600, data: { reason: 'invalid_params' } });
    expect(response.error.message).toContain('expected a boolean');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
