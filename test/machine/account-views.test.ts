import { describe, expect, it } from 'vitest';
import type { AccountContext, Policy, StoredAuth } from '../../machines/account-types.js';
import { allowedLoginMethods, readAccount, readAuthStatus, viewState } from '../../machines/account-views.js';
import { Secret } from '../../machines/secret.js';
import { chatgptLogin, externalLogin, NO_POLICY, routingFor, startMachine, storedChatgpt, type Fakes } from './harness.js';

/**
 * What reads answer straight from a snapshot of the real machine (SPEC §3.1,
 * §3.6) and what `account/state/read` shows, and when a read must go to the
 * machine instead (`null`).
 */

const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const FORCE_CHATGPT: Policy = { forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null };
const storedKey: StoredAuth = { kind: 'apiKey', apiKey: new Secret('sk-stored') };
const read = { type: 'account.read', refreshToken: false } as const;

async function loaded(policy: Policy = NO_POLICY, fakes: Fakes = {}) {
  const m = startMachine(policy, fakes);
  await m.settle();
  return m;
}

const LOGGED_OUT_VIEW = { authMode: null, email: null, planType: null, userId: null, routing: null };

describe('readAccount (SPEC §3.1)', () => {
  it('leaves the read to the machine while the credentials are loading', async () => {
    const m = startMachine(NO_POLICY, {}, { hold: ['load'] });
    expect(readAccount(m.actor.getSnapshot())).toBeNull();
    m.release('load');
    await m.settle();
    expect(readAccount(m.actor.getSnapshot())).toEqual({ ok: true, value: LOGGED_OUT_VIEW });
  });

  it('shows an API key with no identity, plan or routing', async () => {
    const m = await loaded(NO_POLICY, { stored: storedKey });
    expect(readAccount(m.actor.getSnapshot())).toEqual({
      ok: true,
      value: { authMode: 'apikey', email: null, planType: null, userId: null, routing: null },
    });
  });

  it('ignores a refresh request with an API key (only managed mode refreshes)', async () => {
    const m = await loaded(NO_POLICY, { stored: storedKey });
    expect(readAccount(m.actor.getSnapshot(), true)).toEqual({
      ok: true,
      value: { authMode: 'apikey', email: null, planType: null, userId: null, routing: null },
    });
  });

  it('leaves the first read of stored ChatGPT credentials to the machine, which must discover routing', async () => {
    const m = await loaded(NO_POLICY, { stored: storedChatgpt('ws-1') });
    expect(readAccount(m.actor.getSnapshot())).toBeNull();
  });

  it('shows stored ChatGPT credentials with the id token’s identity and the discovered routing', async () => {
    const m = await loaded(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(read);
    expect(readAccount(m.actor.getSnapshot())).toEqual({
      ok: true,
      value: { authMode: 'chatgpt', email: 'a@b.c', planType: 'pro', userId: 'user-1', routing: routingFor('ws-1') },
    });
  });

  it('leaves a read that asks for a managed refresh to the machine', async () => {
    const m = await loaded(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(read);
    expect(readAccount(m.actor.getSnapshot(), true)).toBeNull();
  });

  it('shows host tokens with their routing and ignores a refresh request for them', async () => {
    const m = await loaded();
    await m.request(externalLogin('ws-1', { planType: 'team' }));
    const expected = {
      ok: true,
      value: { authMode: 'chatgptAuthTokens', email: 'a@b.c', planType: 'team', userId: 'user-1', routing: routingFor('ws-1') },
    };
    expect(readAccount(m.actor.getSnapshot())).toEqual(expected);
    expect(readAccount(m.actor.getSnapshot(), true)).toEqual(expected);
  });

  it('answers with the storage failure while an unreadable auth.json leaves the host logged out', async () => {
    const m = await loaded(NO_POLICY, { loadFails: true });
    expect(readAccount(m.actor.getSnapshot())).toEqual({
      ok: false,
      failure: { kind: 'authFileCorrupt', message: 'auth.json is not valid JSON' },
    });
  });

  it('shows host tokens, not the storage failure, when auth.json could not be read (host tokens never touch it)', async () => {
    const m = await loaded(NO_POLICY, { loadFails: true });
    await m.request(externalLogin('ws-1'));
    expect(readAccount(m.actor.getSnapshot())).toMatchObject({ ok: true, value: { authMode: 'chatgptAuthTokens', routing: routingFor('ws-1') } });
  });

  it('shows the active credentials once a login replaces an unreadable auth.json', async () => {
    const m = await loaded(NO_POLICY, { loadFails: true });
    await m.request({ type: 'login.apiKey', apiKey: new Secret('sk-new') });
    expect(readAccount(m.actor.getSnapshot())).toEqual({
      ok: true,
      value: { authMode: 'apikey', email: null, planType: null, userId: null, routing: null },
    });
  });
});

describe('readAuthStatus (SPEC §3.6)', () => {
  it('leaves the read to the machine while the credentials are loading', () => {
    const m = startMachine(NO_POLICY, {}, { hold: ['load'] });
    expect(readAuthStatus(m.actor.getSnapshot(), true)).toBeNull();
  });

  it('reports no mode and no token when logged out', async () => {
    const m = await loaded();
    expect(readAuthStatus(m.actor.getSnapshot(), true)).toEqual({ ok: true, value: { authMode: null, token: null } });
  });

  it('gives the API key as the token when asked for it, and no token otherwise', async () => {
    const m = await loaded(NO_POLICY, { stored: storedKey });
    const withToken = readAuthStatus(m.actor.getSnapshot(), true);
    expect(withToken?.ok && withToken.value.authMode).toBe('apikey');
    expect(withToken?.ok && withToken.value.token?.reveal()).toBe('sk-stored');
    expect(readAuthStatus(m.actor.getSnapshot(), false)).toEqual({ ok: true, value: { authMode: 'apikey', token: null } });
  });

  it('gives the stored access token in managed mode, even before routing is discovered', async () => {
    const m = await loaded(NO_POLICY, { stored: storedChatgpt('ws-1') });
    const status = readAuthStatus(m.actor.getSnapshot(), true);
    expect(status?.ok && status.value.authMode).toBe('chatgpt');
    expect(status?.ok && status.value.token?.reveal()).toBe('access-token-ws-1');
  });

  it('gives the host’s access token in host-token mode, even when discovery failed', async () => {
    const m = await loaded(NO_POLICY, { workspaces: [] });
    await m.request(externalLogin('ws-2', { token: 'host-access' }));
    const status = readAuthStatus(m.actor.getSnapshot(), true);
    expect(status?.ok && status.value.authMode).toBe('chatgptAuthTokens');
    expect(status?.ok && status.value.token?.reveal()).toBe('host-access');
  });

  it('reports a stored API key hidden by a forced ChatGPT login as logged out', async () => {
    const m = await loaded(FORCE_CHATGPT, { stored: storedKey });
    expect(readAuthStatus(m.actor.getSnapshot(), true)).toEqual({ ok: true, value: { authMode: null, token: null } });
  });
});

describe('allowedLoginMethods', () => {
  const ctx = (policy: Policy, external = false) =>
    ({
      policy,
      external: external ? { accessToken: new Secret('t'), accountId: 'ws-1', planType: 'plus', email: null, userId: null } : null,
    }) as AccountContext;

  it('allows every method without a policy when the host opted into the experimental API', () => {
    expect(allowedLoginMethods(ctx(NO_POLICY), true)).toEqual(['apiKey', 'chatgpt', 'chatgptDeviceCode', 'chatgptAuthTokens']);
  });

  it('leaves host tokens out without the experimental API (SPEC §9.1)', () => {
    expect(allowedLoginMethods(ctx(NO_POLICY), false)).toEqual(['apiKey', 'chatgpt', 'chatgptDeviceCode']);
  });

  it('allows only API key login when API login is forced (SPEC §3.2)', () => {
    expect(allowedLoginMethods(ctx(FORCE_API), true)).toEqual(['apiKey']);
  });

  it('allows the ChatGPT methods, host tokens included, when ChatGPT login is forced', () => {
    expect(allowedLoginMethods(ctx(FORCE_CHATGPT), true)).toEqual(['chatgpt', 'chatgptDeviceCode', 'chatgptAuthTokens']);
  });

  it('allows only new host tokens while host tokens are active (SPEC §3.2)', () => {
    expect(allowedLoginMethods(ctx(NO_POLICY, true), true)).toEqual(['chatgptAuthTokens']);
    expect(allowedLoginMethods(ctx(NO_POLICY, true), false)).toEqual([]);
  });

  it('defaults to a host that opted into the experimental API', () => {
    expect(allowedLoginMethods(ctx(NO_POLICY))).toContain('chatgptAuthTokens');
  });
});

describe('viewState (account/state/read)', () => {
  it('shows a loading machine as busy, with no children running', () => {
    const m = startMachine(NO_POLICY, {}, { hold: ['load'] });
    const view = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(view.busy).toBe(true);
    expect(view.authMode).toBeNull();
    expect(view.machines).toEqual({ session: null, loginAttempt: null });
    expect(view.value).toEqual({ credentials: 'loading', login: 'idle' });
  });

  it('shows a logged-out machine at rest', async () => {
    const m = await loaded();
    expect(viewState(m.actor.getSnapshot(), { experimentalApi: false })).toEqual({
      value: { credentials: 'loggedOut', login: 'idle' },
      machines: { session: null, loginAttempt: null },
      authMode: null,
      busy: false,
      pendingLogin: null,
      refreshing: false,
      storageIssue: null,
      refreshFailure: null,
      policy: NO_POLICY,
      allowedLoginMethods: ['apiKey', 'chatgpt', 'chatgptDeviceCode'],
    });
  });

  it('shows the storage failure while it is what account/read answers', async () => {
    const m = await loaded(NO_POLICY, { loadFails: true });
    expect(viewState(m.actor.getSnapshot(), { experimentalApi: true }).storageIssue).toEqual({
      kind: 'authFileCorrupt',
      message: 'auth.json is not valid JSON',
    });
  });

  it('hides the storage failure once credentials are active', async () => {
    const m = await loaded(NO_POLICY, { loadFails: true });
    await m.request({ type: 'login.apiKey', apiKey: new Secret('sk-new') });
    const view = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(view.authMode).toBe('apikey');
    expect(view.storageIssue).toBeNull();
  });

  it('hides the storage failure while host tokens are active', async () => {
    const m = await loaded(NO_POLICY, { loadFails: true });
    await m.request(externalLogin('ws-1'));
    const view = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(view.authMode).toBe('chatgptAuthTokens');
    expect(view.storageIssue).toBeNull();
  });

  it('shows a browser login as starting until it is ready, then as waiting', async () => {
    const m = await loaded(NO_POLICY);
    m.hold('loginStart');
    const login = chatgptLogin('browser');
    const reply = m.send(login);
    await m.settle();
    const starting = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(starting.pendingLogin).toEqual({ loginId: (login as { loginId: string }).loginId, flow: 'browser', step: 'starting' });
    expect(starting.machines.loginAttempt).toBe('starting');
    m.release('loginStart');
    await reply;
    await m.settle();
    const waiting = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(waiting.pendingLogin).toEqual({ loginId: (login as { loginId: string }).loginId, flow: 'browser', step: 'waiting' });
    expect(waiting.machines.loginAttempt).toBe('waiting');
  });

  it('shows the session child and a refresh in flight, then the refresh’s failure', async () => {
    const m = await loaded(NO_POLICY, { stored: storedChatgpt('ws-1') });
    await m.request(read);
    const ready = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(ready.authMode).toBe('chatgpt');
    expect(ready.machines.session).not.toBeNull();
    expect(ready.refreshing).toBe(false);
    expect(ready.refreshFailure).toBeNull();

    m.hold('refresh');
    m.fakes.refreshFails = { kind: 'refreshTokenExpired', message: 'expired' };
    const reply = m.send({ type: 'account.read', refreshToken: true });
    await m.settle();
    const refreshing = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(refreshing.refreshing).toBe(true);
    expect(refreshing.machines.session).toMatchObject({ refreshing: 'managed' });

    m.release('refresh');
    await reply;
    await m.settle();
    const failed = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(failed.refreshing).toBe(false);
    expect(failed.refreshFailure).toEqual({ kind: 'refreshTokenExpired', message: 'expired' });
  });

  it('names the policy it runs under', async () => {
    const m = await loaded(FORCE_API);
    const view = viewState(m.actor.getSnapshot(), { experimentalApi: true });
    expect(view.policy).toEqual(FORCE_API);
    expect(view.allowedLoginMethods).toEqual(['apiKey']);
  });
});
