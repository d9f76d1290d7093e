import { describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';
import { externalLogin, NO_POLICY, startMachine, storedChatgpt } from './harness.js';

const apiKey = (key = 'sk-abc') => ({ type: 'login.apiKey' as const, apiKey: new Secret(key) });
const types = (emitted: { type: string }[]) => emitted.map((e) => e.type);

describe('account machine', () => {
  it('should start logged out with nothing stored', async () => {
    const m = startMachine();
    await m.idle();
    expect(m.mode()).toBe('loggedOut');
  });

  it('should reply to an api key login, then report completed and updated', async () => {
    const m = startMachine();
    const reply = await m.request(apiKey());
    expect(reply).toMatchObject({ ok: true, value: { kind: 'login', type: 'apiKey' } });
    expect(m.emitted.slice(-3)).toMatchObject([
      { type: 'reply' },
      { type: 'login.completed', loginId: null, success: true, error: null },
      { type: 'account.updated', authMode: 'apikey', planType: null },
    ]);
    expect(m.mode()).toBe('apiKey');
  });

  it('should refuse an api key login when chatgpt is forced, without side effects', async () => {
    const m = startMachine({ forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null });
    const reply = await m.request(apiKey());
    expect(reply).toMatchObject({ ok: false, failure: { kind: 'apiKeyLoginDisabled' } });
    expect(types(m.emitted)).toEqual(['reply']);
    expect(m.mode()).toBe('loggedOut');
  });

  it('should refuse chatgpt logins when api is forced', async () => {
    const m = startMachine({ forcedLoginMethod: 'api', forcedWorkspaceIds: null });
    expect(await m.request({ type: 'login.chatgpt', flow: 'browser' })).toMatchObject({ failure: { kind: 'chatgptLoginDisabled' } });
    expect(await m.request(externalLogin('ws-1'))).toMatchObject({ failure: { kind: 'externalAuthDisabled' } });
  });

  it('should keep the previous mode and reply with the failure when saving fails', async () => {
    const m = startMachine(NO_POLICY, { stored: { kind: 'apiKey', apiKey: new Secret('sk-old') }, saveFails: true });
    const reply = await m.request(apiKey('sk-new'));
    expect(reply).toMatchObject({ ok: false, failure: { kind: 'storageFailed', message: 'failed to save api key: disk full' } });
    expect(m.mode()).toBe('apiKey');
    const status = await m.request({ type: 'authStatus.read', includeToken: true });
    expect(status.ok && status.value.kind === 'authStatus' && status.value.status.token?.reveal()).toBe('sk-old');
  });

  it('should refuse host tokens without the experimental api, before any other check', async () => {
    const m = startMachine({ forcedLoginMethod: 'api', forcedWorkspaceIds: ['ws-9'] });
    expect(await m.request(externalLogin('ws-1', { experimentalApi: false, decodable: false }))).toMatchObject({
      failure: { kind: 'experimentalApiRequired' },
    });
  });

  it('should check the forced workspace before decoding the token', async () => {
    const m = startMachine({ forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1', 'ws-3'] });
    expect(await m.request(externalLogin('ws-2', { decodable: false }))).toMatchObject({
      failure: { kind: 'workspaceNotAllowed', allowed: ['ws-1', 'ws-3'], received: 'ws-2' },
    });
    expect(await m.request(externalLogin('ws-1', { decodable: false }))).toMatchObject({ failure: { kind: 'invalidToken' } });
  });

  it('should reply to a host tokens login before discovery decides completed and updated', async () => {
    const m = startMachine();
    await m.request(externalLogin('ws-1', { planType: 'team' }));
    expect(m.emitted).toMatchObject([
      { type: 'reply', ok: true, value: { kind: 'login', type: 'chatgptAuthTokens' } },
      { type: 'login.completed', success: true },
      { type: 'account.updated', authMode: 'chatgptAuthTokens', planType: 'team' },
    ]);
    expect(m.mode()).toBe('externalTokens');
  });

  it('should keep host tokens but report failure when discovery fails', async () => {
    const m = startMachine(NO_POLICY, { workspaces: [] });
    await m.request(externalLogin('ws-1'));
    expect(m.emitted.slice(1)).toMatchObject([{ type: 'login.completed', success: false, error: 'workspace routing discovery failed' }]);
    expect(m.mode()).toBe('externalTokens');
    expect(await m.request({ type: 'account.read', refreshToken: false })).toMatchObject({ ok: false, failure: { kind: 'discoveryFailed' } });
  });

  it('should block api key and chatgpt logins while host tokens are active', async () => {
    const m = startMachine();
    await m.request(externalLogin('ws-1'));
    expect(await m.request(apiKey())).toMatchObject({ failure: { kind: 'externalAuthActive' } });
    expect(await m.request({ type: 'login.chatgpt', flow: 'device' })).toMatchObject({ failure: { kind: 'externalAuthActive' } });
    expect(m.mode()).toBe('externalTokens');
  });

  it('should end in loggedOut with nothing in context after logout from every mode', async () => {
    for (const setup of [
      async () => startMachine(),
      async () => startMachine(NO_POLICY, { stored: { kind: 'apiKey', apiKey: new Secret('sk') } }),
      async () => startMachine(NO_POLICY, { stored: storedChatgpt() }),
      async () => {
        const m = startMachine();
        await m.request(externalLogin('ws-1'));
        return m;
      },
      async () => {
        const m = startMachine();
        await m.request({ type: 'login.chatgpt', flow: 'browser' });
        return m;
      },
    ]) {
      const m = await setup();
      const reply = await m.request({ type: 'logout' });
      expect(reply).toMatchObject({ ok: true, value: { kind: 'empty' } });
      expect(m.emitted.at(-1)).toEqual({ type: 'account.updated', authMode: null, planType: null });
      expect(m.mode()).toBe('loggedOut');
      const { stored, external, routing, pending } = m.actor.getSnapshot().context;
      expect({ stored, external, routing, pending }).toEqual({ stored: null, external: null, routing: null, pending: null });
    }
  });

  it('should cancel a pending login with a matching id and report it not completed', async () => {
    const m = startMachine();
    const started = await m.request({ type: 'login.chatgpt', flow: 'browser' });
    expect(m.mode()).toBe('chatgptPending');
    const loginId = started.ok && started.value.kind === 'loginStarted' ? started.value.loginId : '';
    const before = m.emitted.length;
    expect(await m.request({ type: 'login.cancel', loginId })).toMatchObject({ ok: true, value: { status: 'canceled' } });
    expect(m.emitted.slice(before)).toMatchObject([
      { type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' },
      { type: 'reply' },
    ]);
    expect(m.mode()).toBe('loggedOut');
    expect(await m.request({ type: 'login.cancel', loginId })).toMatchObject({ value: { status: 'notFound' } });
  });

  it('should report a cancelled device login without the login server prefix', async () => {
    const m = startMachine();
    const started = await m.request({ type: 'login.chatgpt', flow: 'device' });
    const loginId = started.ok && started.value.kind === 'loginStarted' ? started.value.loginId : '';
    await m.request({ type: 'login.cancel', loginId });
    expect(m.emitted).toContainEqual({ type: 'login.completed', loginId, success: false, error: 'Login was not completed' });
  });

  it('should supersede a pending chatgpt login with a new one', async () => {
    const m = startMachine();
    const first = await m.request({ type: 'login.chatgpt', flow: 'browser' });
    const firstId = first.ok && first.value.kind === 'loginStarted' ? first.value.loginId : '';
    const before = m.emitted.length;
    await m.request({ type: 'login.chatgpt', flow: 'browser' });
    expect(m.emitted.slice(before)).toMatchObject([
      { type: 'login.completed', loginId: firstId, success: false, error: 'Login server error: Login cancelled' },
      { type: 'reply', ok: true, value: { kind: 'loginStarted' } },
    ]);
    expect(m.actor.getSnapshot().context.pending?.loginId).not.toBe(firstId);
  });

  it('should cancel a pending login before answering an api key login', async () => {
    const m = startMachine();
    await m.request({ type: 'login.chatgpt', flow: 'browser' });
    const before = m.emitted.length;
    await m.request(apiKey());
    expect(types(m.emitted.slice(before))).toEqual(['login.completed', 'reply', 'login.completed', 'account.updated']);
    expect(m.mode()).toBe('apiKey');
  });

  it('should move to chatgpt when a pending login completes', async () => {
    const m = startMachine(NO_POLICY, { loginOutcome: storedChatgpt('ws-1') });
    await m.request({ type: 'login.chatgpt', flow: 'browser' });
    await m.idle();
    expect(m.mode()).toBe('chatgpt');
    expect(m.emitted.slice(-2)).toMatchObject([
      { type: 'login.completed', success: true, error: null },
      { type: 'account.updated', authMode: 'chatgpt', planType: 'pro' },
    ]);
  });

  it('should hide a stored api key when chatgpt login is forced', async () => {
    const m = startMachine({ forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null }, { stored: { kind: 'apiKey', apiKey: new Secret('sk') } });
    await m.idle();
    expect(m.mode()).toBe('loggedOut');
    expect(m.actor.getSnapshot().context.stored).toBeNull();
  });

  it('should discover on the first read of stored chatgpt credentials and notify before replying', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    const reply = await m.request({ type: 'account.read', refreshToken: false });
    expect(types(m.emitted)).toEqual(['account.updated', 'reply']);
    expect(reply).toMatchObject({ ok: true, value: { account: { authMode: 'chatgpt', routing: { workspaceName: 'Acme' } } } });
    await m.request({ type: 'account.read', refreshToken: false });
    expect(types(m.emitted)).toEqual(['account.updated', 'reply', 'reply']);
  });

  it('should answer reads with the storage problem when loading failed', async () => {
    const m = startMachine(NO_POLICY, { loadFails: true });
    expect(await m.request({ type: 'account.read', refreshToken: false })).toMatchObject({ ok: false, failure: { kind: 'authFileCorrupt' } });
    await m.request(apiKey());
    expect(await m.request({ type: 'account.read', refreshToken: false })).toMatchObject({ ok: true });
  });
});

describe('rate limits refusals', () => {
  it('should ask for an account when nothing is active, also while a login is pending', async () => {
    const m = startMachine();
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'rateLimitsNeedAuth' } });
    await m.request({ type: 'login.chatgpt', flow: 'browser' });
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'rateLimitsNeedAuth' } });
  });

  it('should ask for ChatGPT auth while an api key is active, even with a login pending', async () => {
    const m = startMachine(NO_POLICY, { stored: { kind: 'apiKey', apiKey: new Secret('sk') } });
    await m.request({ type: 'login.chatgpt', flow: 'browser' });
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'rateLimitsNeedChatgpt' } });
  });

  it('should not treat a key shadowed by host tokens as the active credential', async () => {
    const m = startMachine(NO_POLICY, { stored: { kind: 'apiKey', apiKey: new Secret('sk') } });
    await m.request(externalLogin('ws-1'));
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'notImplemented' } });
  });
});
