import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { AccountEmitted, Policy, StoredAuth, StoredChatgpt } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import type { BackendCallInput } from '../../machines/session-machine.js';
import { externalLogin, NO_POLICY, rateLimits, startMachine, storedChatgpt, type Fakes, type Harness } from './harness.js';

/**
 * What the account chart does when another process changes the stored
 * credentials (README "Other processes": serve what is stored now, and send
 * `account/updated` when the mode or plan changed; its own write in flight
 * wins), and when the host names itself after a session started.
 */

const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const key = (value: string): StoredAuth => ({ kind: 'apiKey', apiKey: new Secret(value) });
const read = { type: 'account.read', refreshToken: false } as const;
const unreadable = { kind: 'authFileCorrupt', message: 'auth.json is not valid JSON' } as const;

function withPlan(accountId: string, planType: string, generation = ''): StoredChatgpt {
  const base = storedChatgpt(accountId, generation);
  return { ...base, claims: { ...base.claims, planType } };
}

async function started(fakes: Fakes = {}, policy: Policy = NO_POLICY) {
  const m = startMachine(policy, fakes);
  await m.settle();
  return m;
}

const updates = (emitted: AccountEmitted[]) => emitted.filter((e) => e.type === 'account.updated');

async function token(m: Harness): Promise<string | null> {
  const reply = await m.request({ type: 'authStatus.read', includeToken: true });
  if (!reply.ok || reply.value.kind !== 'authStatus') throw new Error('not an auth status');
  return reply.value.status.token?.reveal() ?? null;
}

async function reloaded(m: Harness, auth: StoredAuth | null) {
  m.actor.send({ type: 'credentials.reloaded', auth });
  await m.settle();
}

describe('another process writes auth.json', () => {
  it('serves an API key stored by another process while logged out, saying so', async () => {
    const m = await started();
    await reloaded(m, key('sk-other'));
    expect(m.mode()).toBe('apiKey');
    expect(updates(m.emitted)).toEqual([{ type: 'account.updated', authMode: 'apikey', planType: null }]);
    expect(await token(m)).toBe('sk-other');
  });

  it('serves a replaced API key without a notification (mode and plan unchanged)', async () => {
    const m = await started({ stored: key('sk-mine') });
    await reloaded(m, key('sk-other'));
    expect(updates(m.emitted)).toEqual([]);
    expect(await token(m)).toBe('sk-other');
  });

  it('says so when only the plan of the stored ChatGPT login changed', async () => {
    const m = await started({ stored: withPlan('ws-1', 'plus') });
    await m.request(read);
    m.emitted.length = 0;
    await reloaded(m, withPlan('ws-1', 'team', '-2'));
    expect(m.mode()).toBe('chatgpt');
    expect(updates(m.emitted)).toEqual([{ type: 'account.updated', authMode: 'chatgpt', planType: 'team' }]);
  });

  it('logs out when another process deletes auth.json, saying so', async () => {
    const m = await started({ stored: key('sk-mine') });
    await reloaded(m, null);
    expect(m.mode()).toBe('loggedOut');
    expect(updates(m.emitted)).toEqual([{ type: 'account.updated', authMode: null, planType: null }]);
  });

  it('ignores credentials the policy hides', async () => {
    const m = await started({}, FORCE_API);
    await reloaded(m, storedChatgpt('ws-1'));
    expect(m.mode()).toBe('loggedOut');
    expect(updates(m.emitted)).toEqual([]);
  });

  it('discovers the routing of reloaded ChatGPT credentials again on the next read, with their tokens', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') });
    await m.request(read);
    await reloaded(m, storedChatgpt('ws-1', '-other'));
    await m.request(read);
    expect(m.calls.discover.map((c) => c.accessToken)).toEqual(['access-token-ws-1', 'access-token-ws-1-other']);
  });

  it('announces reloaded credentials once, not again at their first discovery', async () => {
    const m = await started({ stored: withPlan('ws-1', 'plus') });
    await reloaded(m, withPlan('ws-1', 'team', '-2'));
    await m.request(read);
    expect(updates(m.emitted)).toEqual([{ type: 'account.updated', authMode: 'chatgpt', planType: 'team' }]);
  });

  it('forgets an unreadable auth.json once another process writes a readable one', async () => {
    const m = await started({ loadFails: true });
    await reloaded(m, key('sk-other'));
    const reply = await m.request(read);
    expect(reply).toMatchObject({ ok: true, value: { kind: 'account', account: { authMode: 'apikey' } } });
  });

  it('lets its own write in flight win over a reload', async () => {
    const m = await started();
    m.hold('save');
    const login = m.send({ type: 'login.apiKey', apiKey: new Secret('sk-mine') });
    await m.settle();
    await reloaded(m, key('sk-other'));
    m.release('save');
    expect((await login).ok).toBe(true);
    await m.settle();
    expect(await token(m)).toBe('sk-mine');
  });

  it('keeps host tokens active whatever another process stores', async () => {
    const m = await started();
    await m.request(externalLogin('ws-1'));
    m.emitted.length = 0;
    await reloaded(m, key('sk-other'));
    expect(m.mode()).toBe('externalTokens');
    expect(updates(m.emitted)).toEqual([]);
  });
});

describe('another process leaves auth.json unreadable', () => {
  it('drops the stored credentials, says so, and answers reads with the failure', async () => {
    const m = await started({ stored: key('sk-mine') });
    m.actor.send({ type: 'credentials.unreadable', failure: unreadable });
    await m.settle();
    expect(m.mode()).toBe('loggedOut');
    expect(updates(m.emitted)).toEqual([{ type: 'account.updated', authMode: null, planType: null }]);
    expect(await m.request(read)).toEqual({ type: 'reply', requestId: expect.any(String), ok: false, failure: unreadable });
  });

  it('says nothing while logged out already', async () => {
    const m = await started();
    m.actor.send({ type: 'credentials.unreadable', failure: unreadable });
    await m.settle();
    expect(updates(m.emitted)).toEqual([]);
    expect((await m.request(read)).ok).toBe(false);
  });

  it('keeps host tokens, which never touch auth.json, without a notification', async () => {
    const m = await started();
    await m.request(externalLogin('ws-1'));
    m.emitted.length = 0;
    m.actor.send({ type: 'credentials.unreadable', failure: unreadable });
    await m.settle();
    expect(m.mode()).toBe('externalTokens');
    expect(updates(m.emitted)).toEqual([]);
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { authMode: 'chatgptAuthTokens' } } });
  });

  it('ignores it while its own write is in flight', async () => {
    const m = await started();
    m.hold('save');
    const login = m.send({ type: 'login.apiKey', apiKey: new Secret('sk-mine') });
    await m.settle();
    m.actor.send({ type: 'credentials.unreadable', failure: unreadable });
    m.release('save');
    await login;
    await m.settle();
    expect(await m.request(read)).toMatchObject({ ok: true, value: { account: { authMode: 'apikey' } } });
  });
});

describe('the host names itself (initialize)', () => {
  const client = { originator: 'codex_vscode', userAgent: 'codex_vscode/1.2' };

  it('names the client to a session started from stored credentials before initialize', async () => {
    const inputs: BackendCallInput[] = [];
    const m = await started({ stored: storedChatgpt('ws-1'), onBackendCall: (input) => inputs.push(input) });
    m.actor.send({ type: 'client.identify', client });
    await m.request(rateLimits);
    expect(inputs[0]?.client).toEqual(client);
  });

  it('gives the client to a session started after initialize', async () => {
    const inputs: BackendCallInput[] = [];
    const m = await started({ onBackendCall: (input) => inputs.push(input) });
    m.actor.send({ type: 'client.identify', client });
    await m.request(externalLogin('ws-1'));
    await m.request(rateLimits);
    expect(inputs[0]?.client).toEqual(client);
  });

  it('gives a running host-token session the deadline the host asked for', async () => {
    const clock = new SimulatedClock();
    const m = startMachine(NO_POLICY, { backendRejects: ['access-ws-1'], hostRefresh: 'hang' }, { clock });
    await m.settle();
    await m.request(externalLogin('ws-1'));
    m.actor.send({ type: 'client.identify', client, hostRefreshTimeoutMs: 2_000 });
    const reply = m.send(rateLimits);
    await m.settle();
    clock.increment(2_000);
    await m.settle();
    expect(m.unanswered().none).not.toContain(reply.requestId);
    expect(await reply).toMatchObject({
      ok: false,
      failure: { kind: 'hostRefreshTimeout', message: 'auth refresh request timed out after 2s' },
    });
  });

  it('keeps the configured host deadline when initialize sets none', async () => {
    const clock = new SimulatedClock();
    const m = startMachine(NO_POLICY, { backendRejects: ['access-ws-1'], hostRefresh: 'hang' }, { clock, hostRefreshTimeoutMs: 5_000 });
    await m.settle();
    m.actor.send({ type: 'client.identify', client });
    await m.request(externalLogin('ws-1'));
    m.actor.send({ type: 'client.identify', client });
    const reply = m.send(rateLimits);
    await m.settle();
    clock.increment(4_999);
    await m.settle();
    expect(m.unanswered().none).toContain(reply.requestId);
    clock.increment(1);
    await m.settle();
    expect(m.unanswered().none).not.toContain(reply.requestId);
    expect(await reply).toMatchObject({ failure: { message: 'auth refresh request timed out after 5s' } });
  });
});

describe('another process writes auth.json while host tokens are active', () => {
  async function withHostTokens() {
    const m = await started();
    expect((await m.request(externalLogin('ws-1', { token: 'host-token' }))).ok).toBe(true);
    expect(m.mode()).toBe('externalTokens');
    return m;
  }

  it('keeps the host tokens and their session, remembering what the file now holds', async () => {
    const m = await withHostTokens();
    const session = m.actor.getSnapshot().children.session;
    const before = m.emitted.length;
    await reloaded(m, key('sk-other'));
    expect(m.mode()).toBe('externalTokens');
    expect(m.actor.getSnapshot().children.session).toBe(session); // not restarted: its calls go on
    expect(m.emitted.slice(before)).toEqual([]);
    expect(await token(m)).toBe('host-token');
    expect(m.actor.getSnapshot().context.stored).toEqual(key('sk-other'));
    expect(m.actor.getSnapshot().context.storageIssue).toBeNull();
  });

  it('remembers nothing the policy hides behind host tokens', async () => {
    const m = startMachine({ forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null });
    await m.settle();
    expect((await m.request(externalLogin('ws-1', { token: 'host-token' }))).ok).toBe(true);
    await reloaded(m, key('sk-hidden'));
    expect(m.actor.getSnapshot().context.stored).toBeNull();
  });

  it('remembers an unreadable file behind host tokens without a notification', async () => {
    const m = await withHostTokens();
    const session = m.actor.getSnapshot().children.session;
    const before = m.emitted.length;
    m.actor.send({ type: 'credentials.unreadable', failure: unreadable });
    await m.settle();
    expect(m.mode()).toBe('externalTokens');
    expect(m.actor.getSnapshot().children.session).toBe(session);
    expect(m.emitted.slice(before)).toEqual([]);
    expect(m.actor.getSnapshot().context.stored).toBeNull();
    expect(m.actor.getSnapshot().context.storageIssue).toEqual(unreadable);
    expect(await token(m)).toBe('host-token');
  });
});

describe('a host-token login overtaken before its discovery ran', () => {
  it('reports completed with success false before the logout’s update', async () => {
    const m = await started();
    m.hold('discover');
    expect((await m.send(externalLogin('ws-1'))).ok).toBe(true);
    await m.settle();
    const before = m.emitted.length;
    await m.request({ type: 'logout' });
    const notes = m.emitted.slice(before).filter((e) => e.type !== 'reply');
    expect(notes).toEqual([
      { type: 'login.completed', loginId: null, success: false, error: 'Login was not completed' },
      { type: 'account.updated', authMode: null, planType: null },
    ]);
  });

  it('reports it once when newer host tokens replace it, the newer login completing on its own', async () => {
    const m = await started();
    m.hold('discover');
    expect((await m.send(externalLogin('ws-1', { token: 'first' }))).ok).toBe(true);
    await m.settle();
    const before = m.emitted.length;
    expect((await m.send(externalLogin('ws-1', { token: 'second' }))).ok).toBe(true);
    await m.settle();
    const completed = m.emitted.slice(before).filter((e) => e.type === 'login.completed');
    expect(completed).toEqual([{ type: 'login.completed', loginId: null, success: false, error: 'Login was not completed' }]);
    m.release('discover');
    await m.settle();
    expect(m.emitted.filter((e) => e.type === 'login.completed').at(-1)).toEqual({ type: 'login.completed', loginId: null, success: true, error: null });
  });
});
