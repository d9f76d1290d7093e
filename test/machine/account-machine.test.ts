import { describe, expect, it } from 'vitest';
import type { FailureKind, Policy, StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import {
  chatgptLogin,
  externalLogin,
  NO_POLICY,
  rateLimits,
  startMachine,
  storedChatgpt,
  type Fakes,
  type Harness,
  type Reply,
  type RequestInput,
} from './harness.js';

const apiKey = (key = 'sk-abc'): RequestInput => ({ type: 'login.apiKey', apiKey: new Secret(key) });
const read: RequestInput = { type: 'account.read', refreshToken: false };
const refreshingRead: RequestInput = { type: 'account.read', refreshToken: true };
const logout: RequestInput = { type: 'logout' };
const types = (emitted: { type: string }[]) => emitted.map((e) => e.type);
const storedKey = (key = 'sk-old'): StoredAuth => ({ kind: 'apiKey', apiKey: new Secret(key) });
const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const FORCE_CHATGPT: Policy = { forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null };
const NOT_PENDING_ID = '00000000-0000-4000-8000-ffffffffffff';
const NO_CALLS = { save: 0, clear: [], discover: [], refresh: [], hostRefresh: [], backend: [], loginStart: [], aborted: [] };

function loginIdOf(reply: Reply): string {
  if (!reply.ok || reply.value.kind !== 'loginStarted') throw new Error(`not a started login: ${JSON.stringify(reply)}`);
  return reply.value.loginId;
}

/** A machine with host tokens for ws-1 installed and discovered. */
async function withHostTokens(fakes: Fakes = {}, policy: Policy = NO_POLICY) {
  const m = startMachine(policy, fakes);
  await m.request(externalLogin('ws-1'));
  return m;
}

/**
 * A machine with stored ChatGPT credentials for ws-1 whose routing is already
 * discovered; `then` is how the boundary behaves from there on.
 */
async function withDiscoveredChatgpt(then: Fakes = {}) {
  const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
  await m.request(read);
  expect(m.calls.discover).toHaveLength(1);
  Object.assign(m.fakes, then);
  return m;
}

/** Every request the test sent got exactly one reply. */
function expectEveryRequestAnsweredOnce(m: Harness) {
  expect(m.unanswered()).toEqual({ none: [], several: [] });
}

describe('policy refusals', () => {
  const refusals: Array<[string, Policy, () => RequestInput, FailureKind]> = [
    ['an api key login when chatgpt is forced', FORCE_CHATGPT, () => apiKey(), 'apiKeyLoginDisabled'],
    ['a browser login when api is forced', FORCE_API, () => chatgptLogin('browser'), 'chatgptLoginDisabled'],
    ['a device code login when api is forced', FORCE_API, () => chatgptLogin('device'), 'chatgptLoginDisabled'],
    ['a host tokens login when api is forced', FORCE_API, () => externalLogin('ws-1'), 'externalAuthDisabled'],
    ['a host tokens login without the experimental api', NO_POLICY, () => externalLogin('ws-1', { experimentalApi: false }), 'experimentalApiRequired'],
    ['host tokens for a workspace outside the forced ones', { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-2'] }, () => externalLogin('ws-1'), 'workspaceNotAllowed'],
    ['host tokens that are not a decodable JWT', NO_POLICY, () => externalLogin('ws-1', { decodable: false }), 'invalidToken'],
  ];

  it.each(refusals)('should refuse %s without side effects', async (_name, policy, input, kind) => {
    const m = startMachine(policy);
    const reply = await m.request(input());
    expect(reply).toMatchObject({ ok: false, failure: { kind } });
    expect(types(m.emitted)).toEqual(['reply']);
    expect(m.mode()).toBe('loggedOut');
    expect(m.pending()).toBe('idle');
    expect(m.calls).toEqual(NO_CALLS);
  });

  it.each<[string, () => RequestInput]>([
    ['an api key login', () => apiKey()],
    ['a browser login', () => chatgptLogin('browser')],
    ['a device code login', () => chatgptLogin('device')],
  ])('should refuse %s while host tokens are active, keeping them', async (_name, input) => {
    const m = await withHostTokens();
    const before = m.emitted.length;
    expect(await m.request(input())).toMatchObject({ ok: false, failure: { kind: 'externalAuthActive' } });
    expect(types(m.emitted.slice(before))).toEqual(['reply']);
    expect(m.mode()).toBe('externalTokens');
    expect(m.calls.save).toBe(0);
    expect(m.calls.loginStart).toEqual([]);
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
    expect(m.session()).toBeUndefined();
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

  it('should replace stored chatgpt credentials, stopping their session', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(apiKey('sk-new'));
    expect(m.mode()).toBe('apiKey');
    expect(m.session()).toBeUndefined();
  });

  it('should cancel a pending login first, its completed preceding the reply', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    const before = m.emitted.length;
    const reply = await m.request(apiKey());
    expect(m.emitted.slice(before)).toMatchObject([
      { type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' },
      { type: 'reply', requestId: reply.requestId, ok: true },
      { type: 'login.completed', loginId: null, success: true },
      { type: 'account.updated', authMode: 'apikey' },
    ]);
    expect(m.mode()).toBe('apiKey');
    expect(m.pending()).toBe('idle');
  });
});

describe('host tokens login', () => {
  it('should reply at once, before discovery decides completed and updated', async () => {
    const m = startMachine();
    await m.settle();
    m.hold('discover');
    const reply = await m.send(externalLogin('ws-1', { planType: 'team' }));
    expect(m.emitted).toEqual([reply]);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'login', type: 'chatgptAuthTokens' } });
    m.release('discover');
    await m.settle();
    expect(m.emitted).toMatchObject([
      { type: 'reply', requestId: reply.requestId },
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
    expect(m.calls.discover.map((c) => c.accessToken)).toEqual(['access-ws-1', 'access-ws-2']);
  });

  it('should end a pending login when host tokens are installed', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    await m.request(externalLogin('ws-1'));
    expect(m.emitted).toContainEqual({ type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' });
    expect(m.mode()).toBe('externalTokens');
    expect(m.pending()).toBe('idle');
  });

  it('should ask the host for new tokens after a 401, install them and rediscover', async () => {
    const m = await withHostTokens({ workspaces: ['ws-1', 'ws-3'], hostRefresh: { accountId: 'ws-3', accessToken: 'access-refreshed' } });
    m.fakes.rejectedTokens = ['access-ws-1'];
    const reply = await m.request(rateLimits);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'backend' } });
    expect(m.calls.hostRefresh).toEqual([{ previousAccountId: 'ws-1' }]);
    expect(m.calls.backend.map((c) => [c.accessToken, c.retried])).toEqual([['access-ws-1', false], ['access-refreshed', true]]);
    expect(m.actor.getSnapshot().context.external).toMatchObject({ accountId: 'ws-3' });
    expect(m.actor.getSnapshot().context.routing).toMatchObject({ accountId: 'ws-3' });
    expect(m.calls.discover.at(-1)).toEqual({ accountId: 'ws-3', accessToken: 'access-refreshed' });
  });

  it('should refuse host-refreshed tokens for a workspace outside the forced ones, keeping the old ones', async () => {
    const m = await withHostTokens(
      { hostRefresh: { accountId: 'ws-3', accessToken: 'access-refreshed' } },
      { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] },
    );
    m.fakes.rejectedTokens = ['access-ws-1'];
    const reply = await m.request(rateLimits);
    expect(reply).toMatchObject({
      ok: false,
      failure: { kind: 'refreshWorkspaceNotAllowed', message: 'Login is restricted to workspace(s) ws-1, but current credentials belong to ws-3' },
    });
    expect(m.actor.getSnapshot().context.external).toMatchObject({ accountId: 'ws-1' });
    expect(m.mode()).toBe('externalTokens');
  });

  it('should report a failed completed when discovery meets a 401 and the host cannot refresh', async () => {
    const m = startMachine(NO_POLICY, { rejectedTokens: ['access-ws-1'], hostRefresh: 'fail' });
    const reply = await m.request(externalLogin('ws-1'));
    expect(reply).toMatchObject({ ok: true });
    expect(m.emitted.slice(1)).toEqual([
      { type: 'login.completed', loginId: null, success: false, error: 'auth refresh request failed: code=-32603' },
    ]);
    expect(m.mode()).toBe('externalTokens');
  });

  it('should answer reads with host tokens even when auth.json could not be loaded', async () => {
    const m = startMachine(NO_POLICY, { loadFails: true });
    await m.request(externalLogin('ws-1'));
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { authMode: 'chatgptAuthTokens' } } });
  });
});

describe('chatgpt login', () => {
  it('should reply with the login id and the secret details, and wait for the user', async () => {
    const m = startMachine();
    const request = chatgptLogin('browser');
    const reply = await m.request(request);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'loginStarted', loginId: (request as { loginId: string }).loginId, details: { flow: 'browser' } } });
    const details = reply.ok && reply.value.kind === 'loginStarted' ? reply.value.details : null;
    expect(details?.flow === 'browser' && details.authUrl).toBeInstanceOf(Secret);
    expect(types(m.emitted)).toEqual(['reply']);
    expect(m.pending()).toBe('waiting');
    expect(m.mode()).toBe('loggedOut');
  });

  it('should fail the start request when the attempt cannot start, with no completed', async () => {
    const m = startMachine(NO_POLICY, { loginOutcome: 'startFail' });
    const reply = await m.request(chatgptLogin());
    expect(reply).toMatchObject({ ok: false, failure: { kind: 'loginServerFailed' } });
    expect(types(m.emitted)).toEqual(['reply']);
    expect(m.pending()).toBe('idle');
    expect(m.actor.getSnapshot().context.pending).toBeNull();
  });

  it('should cancel a pending login with a matching id, replying before its completed', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    const before = m.emitted.length;
    const reply = await m.request({ type: 'login.cancel', loginId });
    expect(reply).toMatchObject({ ok: true, value: { kind: 'cancel', status: 'canceled' } });
    expect(m.emitted.slice(before)).toEqual([
      reply,
      { type: 'login.completed', loginId, success: false, error: 'Login server error: Login was not completed' },
    ]);
    expect(m.pending()).toBe('idle');
    expect(m.mode()).toBe('loggedOut');
  });

  it('should answer notFound for a login id that is not pending', async () => {
    const m = startMachine();
    await m.request(chatgptLogin());
    const before = m.emitted.length;
    const reply = await m.request({ type: 'login.cancel', loginId: NOT_PENDING_ID });
    expect(reply).toMatchObject({ ok: true, value: { status: 'notFound' } });
    expect(types(m.emitted.slice(before))).toEqual(['reply']);
    expect(m.pending()).toBe('waiting');
  });

  it('should answer notFound when cancelling an already cancelled login', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    await m.request({ type: 'login.cancel', loginId });
    expect(await m.request({ type: 'login.cancel', loginId })).toMatchObject({ value: { status: 'notFound' } });
  });

  it('should report a cancelled device login without the login server prefix', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(chatgptLogin('device')));
    await m.request({ type: 'login.cancel', loginId });
    expect(m.emitted.at(-1)).toEqual({ type: 'login.completed', loginId, success: false, error: 'Login was not completed' });
  });

  it('should supersede a pending login, reporting it cancelled before the new reply', async () => {
    const m = startMachine();
    const firstId = loginIdOf(await m.request(chatgptLogin()));
    const before = m.emitted.length;
    const second = await m.request(chatgptLogin());
    expect(m.emitted.slice(before)).toEqual([
      { type: 'login.completed', loginId: firstId, success: false, error: 'Login server error: Login cancelled' },
      second,
    ]);
    expect(m.actor.getSnapshot().context.pending?.loginId).toBe(loginIdOf(second));
    expect(m.calls.loginStart).toHaveLength(2);
  });

  it('should keep the active api key while a login is pending', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey() });
    await m.request(chatgptLogin());
    const status = await m.request({ type: 'authStatus.read', includeToken: false });
    expect(status).toMatchObject({ ok: true, value: { status: { authMode: 'apikey', token: null } } });
    expect(m.mode()).toBe('apiKey');
  });

  it('should keep stored chatgpt credentials and their session while a login is pending', async () => {
    const m = await withDiscoveredChatgpt();
    await m.request(chatgptLogin());
    expect(m.mode()).toBe('chatgpt');
    expect(m.pending()).toBe('waiting');
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { authMode: 'chatgpt', routing: { accountId: 'ws-1' } } } });
  });

  it('should move to chatgpt when a pending login completes, reporting completed then updated after discovery', async () => {
    const m = startMachine(NO_POLICY, { loginOutcome: storedChatgpt('ws-1') });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    await m.settle();
    expect(m.mode()).toBe('chatgpt');
    expect(m.pending()).toBe('idle');
    expect(m.calls.discover).toEqual([{ accountId: 'ws-1', accessToken: 'access-token-ws-1' }]);
    expect(m.emitted.slice(1)).toEqual([
      { type: 'login.completed', loginId, success: true, error: null },
      { type: 'account.updated', authMode: 'chatgpt', planType: 'pro' },
    ]);
  });

  it('should report a completed login whose discovery met a 401 that no refresh could mend', async () => {
    const m = startMachine(NO_POLICY, { loginOutcome: storedChatgpt('ws-1'), rejectedTokens: ['access-token-ws-1'], refreshFails: { kind: 'refreshTokenExpired' } });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    await m.settle();
    expect(m.emitted.slice(1)).toEqual([
      { type: 'login.completed', loginId, success: true, error: null },
      { type: 'account.updated', authMode: 'chatgpt', planType: 'pro' },
    ]);
    expect(await m.request(read)).toMatchObject({ ok: false });
  });

  it('should fail a completed login whose workspace is not allowed, storing nothing', async () => {
    const m = startMachine({ forcedLoginMethod: null, forcedWorkspaceIds: ['ws-2'] }, { loginOutcome: storedChatgpt('ws-1') });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    await m.settle();
    expect(m.mode()).toBe('loggedOut');
    expect(m.actor.getSnapshot().context.stored).toBeNull();
    expect(m.emitted.at(-1)).toMatchObject({ type: 'login.completed', loginId, success: false, error: expect.stringContaining('ws-1') });
  });

  it('should report a failed login flow and return to the previous mode', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey(), loginOutcome: 'fail' });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    await m.settle();
    expect(m.emitted.at(-1)).toEqual({
      type: 'login.completed',
      loginId,
      success: false,
      error: 'Login server error: Token exchange failed: invalid_grant',
    });
    expect(m.mode()).toBe('apiKey');
    expect(m.pending()).toBe('idle');
  });

  it('should hand a pasted redirect URL to the pending attempt, which answers it', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    const reply = await m.request({ type: 'login.complete', loginId, redirectUrl: new Secret('http://localhost:1455/auth/callback?code=c&state=other') });
    expect(reply).toMatchObject({ ok: false, failure: { kind: 'redirectStateMismatch' } });
    expect(m.pending()).toBe('waiting');
  });

  it('should refuse a pasted redirect URL for a login that is not pending', async () => {
    const m = startMachine();
    await m.request(chatgptLogin());
    const reply = await m.request({ type: 'login.complete', loginId: NOT_PENDING_ID, redirectUrl: new Secret('http://localhost:1455/x') });
    expect(reply).toMatchObject({ ok: false, failure: { kind: 'loginNotFound', message: `no pending login with id ${NOT_PENDING_ID}` } });
  });
});

describe('logout', () => {
  const from: Array<[string, string, () => Promise<Harness>]> = [
    ['loggedOut', 'idle', async () => startMachine()],
    ['apiKey', 'idle', async () => startMachine(NO_POLICY, { stored: storedKey() })],
    ['chatgpt', 'idle', async () => startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') })],
    ['externalTokens', 'idle', async () => withHostTokens()],
    [
      'loggedOut',
      'waiting',
      async () => {
        const m = startMachine();
        await m.request(chatgptLogin());
        return m;
      },
    ],
  ];

  it.each(from)('should end in loggedOut with no credentials and notify, from %s with the login region %s', async (mode, login, setup) => {
    const m = await setup();
    await m.settle();
    expect([m.mode(), m.pending()]).toEqual([mode, login]);
    const before = m.emitted.length;
    const reply = await m.request(logout);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'empty' } });
    expect(m.emitted.slice(before).filter((e) => e.type !== 'login.completed')).toEqual([
      reply,
      { type: 'account.updated', authMode: null, planType: null },
    ]);
    expect([m.mode(), m.pending()]).toEqual(['loggedOut', 'idle']);
    const { stored, external, routing, pending } = m.actor.getSnapshot().context;
    expect({ stored, external, routing, pending }).toEqual({ stored: null, external: null, routing: null, pending: null });
    expect(m.session()).toBeUndefined();
  });

  it('should revoke the stored refresh token when logging out of chatgpt', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(logout);
    expect(m.calls.clear).toEqual([{ revokeToken: 'refresh-token-ws-1' }]);
  });

  it('should end a pending login as not completed', async () => {
    const m = startMachine();
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    await m.request(logout);
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

  it('should refresh managed tokens, then rediscover, then reply when asked to refresh', async () => {
    const m = await withDiscoveredChatgpt();
    const reply = await m.request(refreshingRead);
    expect(reply).toMatchObject({ ok: true, value: { account: { authMode: 'chatgpt', routing: { accountId: 'ws-1' } } } });
    expect(m.calls.refresh).toEqual([{ reason: 'forced', refreshToken: 'refresh-token-ws-1' }]);
    // The second discovery used the rotated token, so it ran after the refresh.
    expect(m.calls.discover.map((c) => c.accessToken)).toEqual(['access-token-ws-1', 'access-token-ws-1-r1']);
    const stored = m.actor.getSnapshot().context.stored;
    expect(stored?.kind === 'chatgpt' && stored.refreshToken.reveal()).toBe('refresh-token-ws-1-r1');
  });

  it('should hold a refreshing read until the rediscovery after the refresh has ended', async () => {
    const m = await withDiscoveredChatgpt();
    m.hold('discover');
    const reply = m.send(refreshingRead);
    await m.settle();
    expect(m.calls.refresh).toHaveLength(1);
    expect(m.unanswered().none).toEqual([reply.requestId]);
    m.release('discover');
    expect(await reply).toMatchObject({ ok: true, value: { account: { routing: { accountId: 'ws-1' } } } });
  });

  it('should answer a refreshing read with the refresh failure, keeping the credentials', async () => {
    const m = await withDiscoveredChatgpt({ refreshFails: { kind: 'refreshTokenExpired' } });
    expect(await m.request(refreshingRead)).toMatchObject({ ok: false, failure: { kind: 'refreshTokenExpired' } });
    expect(m.mode()).toBe('chatgpt');
  });

  it.each<[string, () => Promise<Harness>]>([
    ['an api key', async () => startMachine(NO_POLICY, { stored: storedKey() })],
    ['host tokens', async () => withHostTokens()],
  ])('should ignore the refresh flag with %s', async (_name, setup) => {
    const m = await setup();
    expect(await m.request(refreshingRead)).toMatchObject({ ok: true });
    expect(m.calls.refresh).toEqual([]);
    expect(m.calls.hostRefresh).toEqual([]);
  });
});

describe('rate limits', () => {
  it('should ask for an account when nothing is active', async () => {
    const m = startMachine();
    expect(await m.request(rateLimits)).toMatchObject({ failure: { kind: 'rateLimitsNeedAuth' } });
  });

  it('should ask for an account while a login is pending with nothing active', async () => {
    const m = startMachine();
    await m.request(chatgptLogin());
    expect(await m.request(rateLimits)).toMatchObject({ failure: { kind: 'rateLimitsNeedAuth' } });
  });

  it('should ask for ChatGPT auth while an api key is active, even with a login pending', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey() });
    await m.request(chatgptLogin());
    expect(await m.request(rateLimits)).toMatchObject({ failure: { kind: 'rateLimitsNeedChatgpt' } });
  });

  it('should fetch them with host tokens that shadow a stored key', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey() });
    await m.request(externalLogin('ws-1'));
    expect(await m.request(rateLimits)).toMatchObject({ ok: true, value: { kind: 'backend', result: { rateLimits: { limitId: 'codex' } } } });
    expect(m.calls.backend).toEqual([{ requestId: expect.any(String), accessToken: 'access-ws-1', retried: false }]);
  });

  it('should pass a backend failure on without refreshing', async () => {
    const m = await withDiscoveredChatgpt({ backendFails: 'unexpected status 500 Internal Server Error' });
    expect(await m.request(rateLimits)).toMatchObject({
      ok: false,
      failure: { kind: 'backendFailed', message: 'unexpected status 500 Internal Server Error' },
    });
    expect(m.calls.refresh).toEqual([]);
  });

  it('should share one refresh among 20 concurrent calls that hit a 401 and retry them all', async () => {
    const m = await withDiscoveredChatgpt({ rejectedTokens: ['access-token-ws-1'] });
    m.hold('refresh');
    const replies = Array.from({ length: 20 }, () => m.send(rateLimits));
    await m.settle();
    expect(m.calls.backend).toHaveLength(20);
    expect(m.calls.refresh).toEqual([{ reason: 'unauthorized_recovery', refreshToken: 'refresh-token-ws-1' }]);
    expect(m.unanswered().none).toHaveLength(20);
    m.release('refresh');
    for (const reply of await Promise.all(replies)) expect(reply).toMatchObject({ ok: true, value: { kind: 'backend' } });
    await m.settle();
    expect(m.calls.refresh).toHaveLength(1);
    const retries = m.calls.backend.slice(20);
    expect(retries).toHaveLength(20);
    expect(new Set(retries.map((c) => `${c.accessToken} ${c.retried}`))).toEqual(new Set(['access-token-ws-1-r1 true']));
    expect(new Set(retries.map((c) => c.requestId))).toEqual(new Set(replies.map((r) => r.requestId)));
    expectEveryRequestAnsweredOnce(m);
  });

  it('should fail a call that hits a second 401 after the refresh, without refreshing again', async () => {
    const m = await withDiscoveredChatgpt({ backendRejects: ['access-token-ws-1', 'access-token-ws-1-r1'] });
    expect(await m.request(rateLimits)).toMatchObject({ ok: false, failure: { kind: 'backendUnauthorized' } });
    expect(m.calls.refresh).toHaveLength(1);
    expect(m.calls.backend.map((c) => [c.accessToken, c.retried])).toEqual([['access-token-ws-1', false], ['access-token-ws-1-r1', true]]);
    // The refreshed credentials were rediscovered (and kept: the 401 belongs to the call).
    expect(m.calls.discover.at(-1)?.accessToken).toBe('access-token-ws-1-r1');
    expect(m.mode()).toBe('chatgpt');
  });

  it('should name a 401 recovery as such even after a forced refresh', async () => {
    const m = await withDiscoveredChatgpt();
    await m.request(refreshingRead);
    m.fakes.rejectedTokens = ['access-token-ws-1-r1'];
    expect(await m.request(rateLimits)).toMatchObject({ ok: true });
    expect(m.calls.refresh.map((c) => c.reason)).toEqual(['forced', 'unauthorized_recovery']);
  });

  it('should fail every parked call with the failure of the refresh', async () => {
    const m = await withDiscoveredChatgpt({
      rejectedTokens: ['access-token-ws-1'],
      refreshFails: { kind: 'refreshTokenExpired' },
    });
    const replies = await Promise.all([m.send(rateLimits), m.send(rateLimits), m.send(rateLimits)]);
    for (const reply of replies) expect(reply).toMatchObject({ ok: false, failure: { kind: 'refreshTokenExpired' } });
    expect(m.calls.refresh).toHaveLength(1);
    expect(m.calls.backend).toHaveLength(3);
    // The credentials stay (SPEC §8.1): the user decides to sign in again.
    await m.settle();
    expect(m.mode()).toBe('chatgpt');
  });
});

describe('interleaved requests', () => {
  it('should share one discovery between two reads sent during it, answering both', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.settle();
    m.hold('discover');
    const first = m.send(read);
    const second = m.send(read);
    await m.settle();
    expect(m.calls.discover).toHaveLength(1);
    expect(m.unanswered().none).toEqual([first.requestId, second.requestId]);
    m.release('discover');
    for (const reply of await Promise.all([first, second])) {
      expect(reply).toMatchObject({ ok: true, value: { account: { authMode: 'chatgpt', routing: { accountId: 'ws-1' } } } });
    }
    expect(m.calls.discover).toHaveLength(1);
    expect(types(m.emitted)).toEqual(['account.updated', 'reply', 'reply']);
  });

  it('should answer reads sent while the credentials load once they are known', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') }, { hold: ['load'] });
    const replies = [m.send(read), m.send({ type: 'authStatus.read', includeToken: false }), m.send(read)];
    await m.settle();
    expect(m.mode()).toBe('loading');
    expect(m.unanswered().none).toHaveLength(3);
    m.release('load');
    expect(await Promise.all(replies)).toMatchObject([
      { ok: true, value: { account: { authMode: 'chatgpt' } } },
      { ok: true, value: { status: { authMode: 'chatgpt' } } },
      { ok: true, value: { account: { authMode: 'chatgpt' } } },
    ]);
    expect(m.calls.discover).toHaveLength(1);
  });

  it('should answer a read pending on discovery first when a logout arrives, then log out', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.settle();
    m.hold('discover');
    const readReply = m.send(read);
    const logoutReply = m.send(logout);
    await m.settle();
    expect(m.emitted).toEqual([
      await readReply,
      await logoutReply,
      { type: 'account.updated', authMode: null, planType: null },
    ]);
    expect(await readReply).toMatchObject({ ok: true, value: { account: { authMode: 'chatgpt', routing: null } } });
    expect(await logoutReply).toMatchObject({ ok: true, value: { kind: 'empty' } });
    expect(m.calls.aborted).toEqual(['discover']);
    m.release('discover');
    await m.settle();
    expect(m.emitted).toHaveLength(3);
    expect(m.mode()).toBe('loggedOut');
    expect(m.actor.getSnapshot().context.routing).toBeNull();
  });

  it('should answer a read at once from the current credentials while a save is in flight', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey('sk-old') });
    await m.settle();
    m.hold('save');
    const saved = m.send(apiKey('sk-new'));
    const status = await m.send({ type: 'authStatus.read', includeToken: true });
    const account = await m.send(read);
    expect(m.mode()).toBe('saving');
    expect(status.ok && status.value.kind === 'authStatus' && status.value.status.token?.reveal()).toBe('sk-old');
    expect(account).toMatchObject({ ok: true, value: { account: { authMode: 'apikey' } } });
    expect(m.unanswered().none).toEqual([saved.requestId]);
    m.release('save');
    expect(await saved).toMatchObject({ ok: true, value: { kind: 'login', type: 'apiKey' } });
    const after = await m.send({ type: 'authStatus.read', includeToken: true });
    expect(after.ok && after.value.kind === 'authStatus' && after.value.status.token?.reveal()).toBe('sk-new');
  });

  it('should replay an api key login and a logout pipelined during loading in their order', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey('sk-old') }, { hold: ['load'] });
    const login = m.send(apiKey('sk-new'));
    const out = m.send(logout);
    await m.settle();
    expect(m.mode()).toBe('loading');
    expect(m.emitted).toEqual([]);
    m.release('load');
    await Promise.all([login, out]);
    await m.settle();
    expect(m.emitted).toMatchObject([
      { type: 'reply', requestId: login.requestId, ok: true, value: { type: 'apiKey' } },
      { type: 'login.completed', loginId: null, success: true },
      { type: 'account.updated', authMode: 'apikey' },
      { type: 'reply', requestId: out.requestId, ok: true, value: { kind: 'empty' } },
      { type: 'account.updated', authMode: null },
    ]);
    expect(m.calls.save).toBe(1);
    expect(m.calls.clear).toEqual([{ revokeToken: null }]);
    expect(m.mode()).toBe('loggedOut');
  });

  it('should defer a logout sent while an api key is being saved until the save has ended', async () => {
    const m = startMachine();
    await m.settle();
    m.hold('save');
    const login = m.send(apiKey());
    const out = m.send(logout);
    await m.settle();
    expect(m.calls.clear).toEqual([]);
    m.release('save');
    await Promise.all([login, out]);
    await m.settle();
    expect(types(m.emitted)).toEqual(['reply', 'login.completed', 'account.updated', 'reply', 'account.updated']);
    expect(m.mode()).toBe('loggedOut');
  });

  it('should start a ChatGPT login sent during a logout only after the logout, answering both', async () => {
    const m = startMachine(NO_POLICY, { stored: storedKey(), loginOutcome: storedChatgpt('ws-1') });
    await m.settle();
    m.hold('clear');
    const out = m.send(logout);
    const start = m.send(chatgptLogin());
    await m.settle();
    expect(m.calls.loginStart).toEqual([]);
    m.release('clear');
    expect(await out).toMatchObject({ ok: true, value: { kind: 'empty' } });
    const loginId = loginIdOf(await start);
    await m.settle();
    expect(types(m.emitted)).toEqual(['reply', 'account.updated', 'reply', 'login.completed', 'account.updated']);
    expect(m.emitted.at(-2)).toEqual({ type: 'login.completed', loginId, success: true, error: null });
    expect(m.mode()).toBe('chatgpt');
    expectEveryRequestAnsweredOnce(m);
  });

  it('should answer an api key login when a ChatGPT login sent after it succeeds during the save', async () => {
    const m = startMachine(NO_POLICY, { loginOutcome: storedChatgpt('ws-1') });
    await m.settle();
    m.hold('save');
    const saved = m.send(apiKey());
    const start = m.send(chatgptLogin());
    await m.settle();
    m.release('save');
    expect(await saved).toMatchObject({ ok: true, value: { type: 'apiKey' } });
    await start;
    await m.settle();
    // The later request wins: the ChatGPT login replaces the key.
    expect(m.mode()).toBe('chatgpt');
    expectEveryRequestAnsweredOnce(m);
  });

  it.each<[string, () => RequestInput]>([
    ['host tokens', () => externalLogin('ws-1')],
    ['a logout', () => logout],
    ['an api key login', () => apiKey()],
  ])('should still report a succeeded ChatGPT login whose discovery %s overtook', async (_name, next) => {
    const m = startMachine(NO_POLICY, { loginOutcome: storedChatgpt('ws-1') });
    await m.settle();
    m.hold('discover');
    const loginId = loginIdOf(await m.send(chatgptLogin()));
    await m.settle();
    expect(m.mode()).toBe('chatgpt');
    await m.send(next());
    m.release('discover');
    await m.settle();
    const completed = m.emitted.filter((e) => e.type === 'login.completed' && e.loginId === loginId);
    expect(completed).toEqual([{ type: 'login.completed', loginId, success: true, error: null }]);
    expectEveryRequestAnsweredOnce(m);
  });

  it('should report a succeeded ChatGPT login once when a failed key save returns to it', async () => {
    const m = startMachine(NO_POLICY, { loginOutcome: storedChatgpt('ws-1'), saveFails: true });
    await m.settle();
    m.hold('discover');
    const loginId = loginIdOf(await m.send(chatgptLogin()));
    await m.settle();
    expect(await m.send(apiKey())).toMatchObject({ ok: false });
    m.release('discover');
    await m.settle();
    expect(m.mode()).toBe('chatgpt');
    expect(m.emitted.filter((e) => e.type === 'login.completed' && e.loginId === loginId)).toHaveLength(1);
  });

  it('should answer both a login start and a cancel sent while the attempt is starting', async () => {
    const m = startMachine();
    await m.settle();
    m.hold('loginStart');
    const start = chatgptLogin('browser');
    const started = m.send(start);
    const cancelled = m.send({ type: 'login.cancel', loginId: (start as { loginId: string }).loginId });
    await m.settle();
    expect(m.emitted).toEqual([await cancelled, await started]);
    expect(await cancelled).toMatchObject({ ok: true, value: { kind: 'cancel', status: 'canceled' } });
    expect(await started).toMatchObject({
      ok: false,
      failure: { kind: 'loginFailed', message: 'Login server error: Login was not completed' },
    });
    expect(m.pending()).toBe('idle');
    m.release('loginStart');
    await m.settle();
    expect(m.emitted).toHaveLength(2);
    expectEveryRequestAnsweredOnce(m);
  });

  it('should drop a refresh that a logout overtook, answering the calls that waited for it', async () => {
    const m = await withDiscoveredChatgpt({ rejectedTokens: ['access-token-ws-1'] });
    m.hold('refresh');
    const calls = [m.send(rateLimits), m.send(rateLimits)];
    await m.settle();
    expect(m.calls.refresh).toHaveLength(1);
    const out = await m.send(logout);
    for (const reply of await Promise.all(calls)) {
      expect(reply).toMatchObject({ ok: false, failure: { kind: 'backendFailed', message: expect.stringContaining('abandoned') } });
    }
    expect(out).toMatchObject({ ok: true });
    expect(m.calls.aborted).toEqual(['refresh']);
    m.release('refresh');
    await m.settle();
    expect(m.mode()).toBe('loggedOut');
    expect(m.actor.getSnapshot().context.stored).toBeNull();
    expect(m.calls.clear).toEqual([{ revokeToken: 'refresh-token-ws-1' }]);
    expect(m.calls.backend).toHaveLength(2);
    expectEveryRequestAnsweredOnce(m);
  });

  it('should answer a backend call in flight when a logout abandons it', async () => {
    const m = await withDiscoveredChatgpt();
    m.hold('backend');
    const call = m.send(rateLimits);
    await m.settle();
    await m.send(logout);
    expect(await call).toMatchObject({ ok: false, failure: { kind: 'backendFailed' } });
    m.release('backend');
    await m.settle();
    expect(m.calls.aborted).toEqual(['backend']);
    expectEveryRequestAnsweredOnce(m);
  });

  it('should answer every one of many requests sent at once exactly once', async () => {
    const m = startMachine(NO_POLICY, { stored: storedChatgpt('ws-1') });
    const all = [
      m.send(read),
      m.send(rateLimits),
      m.send(chatgptLogin()),
      m.send({ type: 'authStatus.read', includeToken: false }),
      m.send(apiKey()),
      m.send(read),
      m.send(externalLogin('ws-1')),
      m.send(logout),
      m.send(read),
    ];
    await Promise.all(all);
    await m.settle();
    expectEveryRequestAnsweredOnce(m);
    expect(m.mode()).toBe('loggedOut');
  });
});
