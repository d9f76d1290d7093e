import { describe, expect, it } from 'vitest';
import type { FailureKind, Policy, StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { externalLogin, NO_POLICY, startMachine, storedChatgpt, type Fakes, type Reply, type RequestInput } from './harness.js';

const apiKey = (key = 'sk-abc'): RequestInput => ({ type: 'login.apiKey', apiKey: new Secret(key) });
const browserLogin: RequestInput = { type: 'login.chatgpt', flow: 'browser' };
const read: RequestInput = { type: 'account.read', refreshToken: false };
const types = (emitted: { type: string }[]) => emitted.map((e) => e.type);
const storedKey = (key = 'sk-old'): StoredAuth => ({ kind: 'apiKey', apiKey: new Secret(key) });
const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const FORCE_CHATGPT: Policy = { forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null };

function loginIdOf(reply: Reply): string {
  if (!reply.ok || reply.value.kind !== 'loginStarted') throw new Error(`not a started login: ${JSON.stringify(reply)}`);
  return reply.value.loginId;
}

/** A machine with host tokens for ws-1 installed and discovered. */
async function withHostTokens(fakes: Fakes = {}) {
  const m = startMachine(NO_POLICY, fakes);
  await m.request(externalLogin('ws-1'));
  return m;
}

describe('policy refusals', () => {
  const refusals: Array<[string, Policy, RequestInput, FailureKind]> = [
    ['an api key login when chatgpt is forced', FORCE_CHATGPT, apiKey(), 'apiKeyLoginDisabled'],
    ['a browser login when api is forced', FORCE_API, browserLogin, 'chatgptLoginDisabled'],
    ['a device code login when api is forced', FORCE_API, { type: 'login.chatgpt', flow: 'device' }, 'chatgptLoginDisabled'],
    ['a host tokens login when api is forced', FORCE_API, externalLogin('ws-1'), 'externalAuthDisabled'],
    ['a host tokens login without the experimental api', NO_POLICY, externalLogin('ws-1', { experimentalApi: false }), 'experimentalApiRequired'],
    ['host tokens for a workspace outside the forced ones', { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-2'] }, externalLogin('ws-1'), 'workspaceNotAllowed'],
    ['host tokens that are not a decodable JWT', NO_POLICY, externalLogin('ws-1', { decodable: false }), 'invalidToken'],
  ];

  it.each(refusals)('should refuse %s without side effects', async (_name, policy, input, kind) => {
    const m = startMachine(policy);
    const reply = await m.request(input);
    expect(reply).toMatchObject({ ok: false, failure: { kind } });
    expect(types(m.emitted)).toEqual(['reply']);
    expect(m.mode()).toBe('loggedOut');
    expect(m.calls).toEqual({ save: 0, clear: [], discover: [], startLogin: 0 });
  });

  it.each<[string, RequestInput]>([
    ['an api key login', apiKey()],
    ['a browser login', browserLogin],
    ['a device code login', { type: 'login.chatgpt', flow: 'device' }],
  ])('should refuse %s while host tokens are active, keeping them', async (_name, input) => {
    const m = await withHostTokens();
    const before = m.emitted.length;
    expect(await m.request(input)).toMatchObject({ ok: false, failure: { kind: 'externalAuthActive' } });
    expect(types(m.emitted.slice(before))).toEqual(['reply']);
    expect(m.mode()).toBe('externalTokens');
  });

  it('should check the experimental api gate before the forced method and the token', async () => {
    const m = startMachine({ forcedLoginMethod: 'api', forcedWorkspaceIds: ['ws-9'] });
    const reply = await m.request(externalLogin('ws-1', { experimentalApi: false, decodable: false }));
    expect(reply).toMatchObject({ failure: { kind: 'experimentalApiRequired' } });
  });

  it('should name the allowed workspaces and the received one when refusing host tokens', async () => {
    const m = startMachine({ forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1', 'ws-3'] });
    const reply = await m.request(externalLogin('ws-2', { decodable: false }));
    expect(reply).toMatchObject({ failure: { kind: 'workspaceNotAllowed', allowed: ['ws-1', 'ws-3'], received: 'ws-2' } });
  });

  it('should accept host tokens for one of the forced workspaces', async () => {
    const m = startMachine({ forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: ['ws-1', 'ws-3'] });
    expect(await m.request(externalLogin('ws-1'))).toMatchObject({ ok: true });
    expect(m.mode()).toBe('externalTokens');
  });

  it('should hide a stored api key when chatgpt login is forced', async () => {
    const m = startMachine(FORCE_CHATGPT, { stored: storedKey() });
    await m.settle();
    expect(m.mode()).toBe('loggedOut');
    expect(m.actor.getSnapshot().context.stored).toBeNull();
  });

  it('should hide stored chatgpt credentials of a workspace outside the forced ones', async () => {
    const m = startMachine({ forcedLoginMethod: null, forcedWorkspaceIds: ['ws-2'] }, { stored: storedChatgpt('ws-1') });
    await m.settle();
    expect(m.mode()).toBe('loggedOut');
  });
});

describe('api key login', () => {
  it('should reply, then report completed and updated', async () => {
    const m = startMachine();
    const reply = await m.request(apiKey());
    expect(reply).toMatchObject({ ok: true, value: { kind: 'login', type: 'apiKey' } });
    expect(m.emitted).toMatchObject([
      { type: 'reply', requestId: reply.requestId },
      { type: 'login.completed', loginId: null, success: true, error: null },
      { type: 'account.updated', authMode: 'apikey', planType: null },
    ]);
    expect(m.mode()).toBe('apiKey');
  });

  it('should keep the previous key and reply with the failure when saving fails', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey('sk-old'), saveFails: true });
    const reply = await m.request(apiKey('sk-new'));
    expect(reply).toMatchObject({ ok: false, failure: { kind: 'storageFailed', message: 'failed to save api key: disk full' } });
    expect(types(m.emitted)).toEqual(['reply']);
    expect(m.mode()).toBe('apiKey');
    const stored = m.actor.getSnapshot().context.stored;
    expect(stored?.kind === 'apiKey' && stored.apiKey.reveal()).toBe('sk-old');
  });

  it('should keep stored chatgpt credentials when saving a key fails', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1'), saveFails: true });
    await m.request(apiKey('sk-new'));
    expect(m.mode()).toBe('chatgpt');
  });

  it('should replace stored chatgpt credentials', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(apiKey('sk-new'));
    expect(m.mode()).toBe('apiKey');
  });

  it('should cancel a pending login first, its completed preceding the reply', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(browserLogin));
    const before = m.emitted.length;
    const reply = await m.request(apiKey());
    expect(m.emitted.slice(before)).toMatchObject([
      { type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' },
      { type: 'reply', requestId: reply.requestId, ok: true },
      { type: 'login.completed', loginId: null, success: true },
      { type: 'account.updated', authMode: 'apikey' },
    ]);
    expect(m.mode()).toBe('apiKey');
  });
});

describe('host tokens login', () => {
  it('should reply before discovery decides completed and updated', async () => {
    const m = startMachine();
    const reply = await m.request(externalLogin('ws-1', { planType: 'team' }));
    expect(m.emitted).toMatchObject([
      { type: 'reply', requestId: reply.requestId, ok: true, value: { kind: 'login', type: 'chatgptAuthTokens' } },
      { type: 'login.completed', loginId: null, success: true, error: null },
      { type: 'account.updated', authMode: 'chatgptAuthTokens', planType: 'team' },
    ]);
    expect(m.calls.discover).toEqual([{ accountId: 'ws-1', accessToken: 'access-ws-1' }]);
    expect(m.mode()).toBe('externalTokens');
  });

  it('should report only a failed completed when discovery fails, keeping the tokens', async () => {
    const m = startMachine(NO_POLICY, { workspaces: [] });
    await m.request(externalLogin('ws-1'));
    expect(m.emitted.slice(1)).toEqual([
      { type: 'login.completed', loginId: null, success: false, error: 'workspace routing discovery failed' },
    ]);
    expect(m.mode()).toBe('externalTokens');
    const status = await m.request({ type: 'authStatus.read', includeToken: true });
    expect(status.ok && status.value.kind === 'authStatus' && status.value.status.token?.reveal()).toBe('access-ws-1');
  });

  it('should fail discovery for an empty account id without touching the network', async () => {
    const m = startMachine();
    await m.request(externalLogin(''));
    expect(m.emitted.at(-1)).toEqual({
      type: 'login.completed',
      loginId: null,
      success: false,
      error: 'workspace routing requires a ChatGPT account id',
    });
  });

  it('should re-run discovery on a read while routing is unknown', async () => {
    const fakes: Fakes = { workspaces: [] };
    const m = startMachine(NO_POLICY, fakes);
    await m.request(externalLogin('ws-1'));
    fakes.workspaces = ['ws-1'];
    const reply = await m.request(read);
    expect(reply).toMatchObject({ ok: true, value: { account: { authMode: 'chatgptAuthTokens', routing: { accountId: 'ws-1' } } } });
    expect(m.calls.discover).toHaveLength(2);
  });

  it('should answer a read with the discovery failure while discovery keeps failing', async () => {
    const m = startMachine(NO_POLICY, { workspaces: [] });
    await m.request(externalLogin('ws-1'));
    expect(await m.request(read)).toMatchObject({ ok: false, failure: { kind: 'discoveryFailed' } });
    expect(m.mode()).toBe('externalTokens');
  });

  it('should not re-run discovery once routing is known', async () => {
    const m = await withHostTokens();
    await m.request(read);
    expect(m.calls.discover).toHaveLength(1);
  });

  it('should replace installed host tokens with new ones', async () => {
    const m = await withHostTokens({ workspaces: ['ws-1', 'ws-2'] });
    await m.request(externalLogin('ws-2'));
    expect(m.actor.getSnapshot().context.external?.accountId).toBe('ws-2');
    expect(m.actor.getSnapshot().context.routing?.accountId).toBe('ws-2');
  });

  it('should end a pending login when host tokens are installed', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(browserLogin));
    await m.request(externalLogin('ws-1'));
    expect(m.emitted).toContainEqual({ type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' });
    expect(m.mode()).toBe('externalTokens');
  });

  it('should install host-refreshed tokens after a 401', async () => {
    const m = await withHostTokens({ workspaces: ['ws-1', 'ws-3'], hostRefresh: { accountId: 'ws-3', accessToken: 'access-refreshed' } });
    m.actor.send({ type: 'auth.unauthorized' });
    await m.settle();
    expect(m.actor.getSnapshot().context.external).toMatchObject({ accountId: 'ws-3' });
    expect(m.actor.getSnapshot().context.routing).toBeNull();
  });

  it('should ignore host-refreshed tokens for a workspace outside the forced ones', async () => {
    const m = startMachine(
      { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] },
      { hostRefresh: { accountId: 'ws-3', accessToken: 'access-refreshed' } },
    );
    await m.request(externalLogin('ws-1'));
    m.actor.send({ type: 'auth.unauthorized' });
    await m.settle();
    expect(m.actor.getSnapshot().context.external).toMatchObject({ accountId: 'ws-1' });
    expect(m.mode()).toBe('externalTokens');
  });

  it('should answer reads with host tokens even when auth.json could not be loaded', async () => {
    const m = startMachine(NO_POLICY, { loadFails: true });
    await m.request(externalLogin('ws-1'));
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { authMode: 'chatgptAuthTokens' } } });
  });
});

describe('chatgpt login', () => {
  it('should reply with the login id and wait in chatgptPending', async () => {
    const m = startMachine();
    const reply = await m.request(browserLogin);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'loginStarted', flow: 'browser', details: { authUrl: expect.any(String) } } });
    expect(types(m.emitted)).toEqual(['reply']);
    expect(m.mode()).toBe('chatgptPending');
  });

  it('should cancel a pending login with a matching id, replying before its completed', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(browserLogin));
    const before = m.emitted.length;
    const reply = await m.request({ type: 'login.cancel', loginId });
    expect(reply).toMatchObject({ ok: true, value: { kind: 'cancel', status: 'canceled' } });
    expect(m.emitted.slice(before)).toEqual([
      reply,
      { type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' },
    ]);
    expect(m.mode()).toBe('loggedOut');
  });

  it('should answer notFound for a login id that is not pending', async () => {
    const m = startMachine();
    await m.request(browserLogin);
    const before = m.emitted.length;
    const reply = await m.request({ type: 'login.cancel', loginId: '00000000-0000-4000-8000-ffffffffffff' });
    expect(reply).toMatchObject({ ok: true, value: { status: 'notFound' } });
    expect(types(m.emitted.slice(before))).toEqual(['reply']);
    expect(m.mode()).toBe('chatgptPending');
  });

  it('should answer notFound when cancelling an already cancelled login', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(browserLogin));
    await m.request({ type: 'login.cancel', loginId });
    expect(await m.request({ type: 'login.cancel', loginId })).toMatchObject({ value: { status: 'notFound' } });
  });

  it('should report a cancelled device login without the login server prefix', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request({ type: 'login.chatgpt', flow: 'device' }));
    await m.request({ type: 'login.cancel', loginId });
    expect(m.emitted.at(-1)).toEqual({ type: 'login.completed', loginId, success: false, error: 'Login was not completed' });
  });

  it('should supersede a pending login, reporting it cancelled before the new reply', async () => {
    const m = startMachine();
    const firstId = loginIdOf(await m.request(browserLogin));
    const before = m.emitted.length;
    const second = await m.request(browserLogin);
    expect(m.emitted.slice(before)).toEqual([
      { type: 'login.completed', loginId: firstId, success: false, error: 'Login server error: Login cancelled' },
      second,
    ]);
    expect(m.actor.getSnapshot().context.pending?.loginId).toBe(loginIdOf(second));
  });

  it('should keep the active api key while a login is pending', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey() });
    await m.request(browserLogin);
    const status = await m.request({ type: 'authStatus.read', includeToken: false });
    expect(status).toMatchObject({ ok: true, value: { status: { authMode: 'apikey', token: null } } });
  });

  it('should move to chatgpt when a pending login completes, reporting completed then updated', async () => {
    const m = startMachine(NO_POLICY, { loginOutcome: storedChatgpt('ws-1') });
    const loginId = loginIdOf(await m.request(browserLogin));
    await m.settle();
    expect(m.mode()).toBe('chatgpt');
    expect(m.emitted.slice(1)).toEqual([
      { type: 'login.completed', loginId, success: true, error: null },
      { type: 'account.updated', authMode: 'chatgpt', planType: 'pro' },
    ]);
  });

  it('should fail a completed login whose workspace is not allowed, storing nothing', async () => {
    const m = startMachine({ forcedLoginMethod: null, forcedWorkspaceIds: ['ws-2'] }, { loginOutcome: storedChatgpt('ws-1') });
    const loginId = loginIdOf(await m.request(browserLogin));
    await m.settle();
    expect(m.mode()).toBe('loggedOut');
    expect(m.emitted.at(-1)).toMatchObject({ type: 'login.completed', loginId, success: false, error: expect.stringContaining('ws-1') });
  });

  it('should report a failed login flow and return to the previous mode', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey(), loginOutcome: 'fail' });
    const loginId = loginIdOf(await m.request(browserLogin));
    await m.settle();
    expect(m.emitted.at(-1)).toEqual({ type: 'login.completed', loginId, success: false, error: 'Login server error: token exchange failed' });
    expect(m.mode()).toBe('apiKey');
  });
});

describe('logout', () => {
  const from: Array<[string, () => Promise<ReturnType<typeof startMachine>>]> = [
    ['loggedOut', async () => startMachine()],
    ['apiKey', async () => startMachine(NO_POLICY, { stored: storedKey() })],
    ['chatgpt', async () => startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') })],
    ['externalTokens', async () => withHostTokens()],
    [
      'chatgptPending',
      async () => {
        const m = startMachine();
        await m.request(browserLogin);
        return m;
      },
    ],
  ];

  it.each(from)('should end in loggedOut with no credentials and notify, from %s', async (mode, setup) => {
    const m = await setup();
    expect(m.mode()).toBe(mode);
    const before = m.emitted.length;
    const reply = await m.request({ type: 'logout' });
    expect(reply).toMatchObject({ ok: true, value: { kind: 'empty' } });
    expect(m.emitted.slice(before).filter((e) => e.type !== 'login.completed')).toEqual([
      reply,
      { type: 'account.updated', authMode: null, planType: null },
    ]);
    expect(m.mode()).toBe('loggedOut');
    const { stored, external, routing, pending } = m.actor.getSnapshot().context;
    expect({ stored, external, routing, pending }).toEqual({ stored: null, external: null, routing: null, pending: null });
  });

  it('should revoke the stored refresh token when logging out of chatgpt', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request({ type: 'logout' });
    expect(m.calls.clear).toEqual([{ revokeToken: 'refresh-token-ws-1' }]);
  });

  it('should end a pending login as not completed', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(browserLogin));
    await m.request({ type: 'logout' });
    expect(m.emitted).toContainEqual({ type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' });
  });
});

describe('reads', () => {
  it('should discover on the first read of stored chatgpt credentials and notify before replying', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    const reply = await m.request(read);
    expect(m.emitted).toEqual([{ type: 'account.updated', authMode: 'chatgpt', planType: 'pro' }, reply]);
    expect(reply).toMatchObject({ ok: true, value: { account: { authMode: 'chatgpt', routing: { workspaceName: 'Acme' } } } });
  });

  it('should not discover again on later reads of stored chatgpt credentials', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(read);
    await m.request(read);
    expect(m.calls.discover).toHaveLength(1);
    expect(types(m.emitted)).toEqual(['account.updated', 'reply', 'reply']);
  });

  it('should read a stored api key without any notification', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey() });
    const reply = await m.request(read);
    expect(reply).toMatchObject({ ok: true, value: { account: { authMode: 'apikey', routing: null } } });
    expect(m.emitted).toEqual([reply]);
  });

  it('should answer reads with the storage problem while logged out after a failed load', async () => {
    const m = startMachine(NO_POLICY, { loadFails: true });
    expect(await m.request(read)).toMatchObject({ ok: false, failure: { kind: 'authFileCorrupt' } });
  });

  it('should forget the storage problem once a new key is saved', async () => {
    const m = startMachine(NO_POLICY, { loadFails: true });
    await m.request(apiKey());
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { authMode: 'apikey' } } });
  });
});

describe('rate limits refusals', () => {
  it('should ask for an account when nothing is active', async () => {
    const m = startMachine();
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'rateLimitsNeedAuth' } });
  });

  it('should ask for an account while a login is pending with nothing active', async () => {
    const m = startMachine();
    await m.request(browserLogin);
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'rateLimitsNeedAuth' } });
  });

  it('should ask for ChatGPT auth while an api key is active, even with a login pending', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey() });
    await m.request(browserLogin);
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'rateLimitsNeedChatgpt' } });
  });

  it('should not treat a key shadowed by host tokens as the active credential', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey() });
    await m.request(externalLogin('ws-1'));
    expect(await m.request({ type: 'rateLimits.read' })).toMatchObject({ failure: { kind: 'notImplemented' } });
  });
});
