import { describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise, sendParent, setup } from 'xstate';
import { accountMachine } from '../../machines/account-machine.js';
import type { AccountEmitted, Policy, StoredAuth } from '../../machines/account-types.js';
import type { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import type { LoginAttemptInput } from '../../machines/login-attempt-types.js';
import { Secret } from '../../machines/secret.js';
import type { BackendCallInput } from '../../machines/session-machine.js';
import { chatgptLogin, externalLogin, NO_POLICY, startMachine, storedChatgpt, type Fakes, type Reply } from './harness.js';

/**
 * Edges of the account chart the other machine tests leave out: the forced
 * API method, effects that throw a plain error, pasted redirect URLs that are
 * redeemed or never answered, and what reaches the session.
 */

const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const read = { type: 'account.read', refreshToken: false } as const;

async function started(fakes: Fakes = {}, policy: Policy = NO_POLICY) {
  const m = startMachine(policy, fakes);
  await m.settle();
  return m;
}

function loginIdOf(reply: Reply): string {
  if (!reply.ok || reply.value.kind !== 'loginStarted') throw new Error(`not a started login: ${JSON.stringify(reply)}`);
  return reply.value.loginId;
}

const paste = (loginId: string) =>
  ({ type: 'login.complete', loginId, redirectUrl: new Secret('http://127.0.0.1:1455/auth/callback?code=c&state=s') }) as const;

describe('policy', () => {
  it('accepts an API key login when API login is forced (SPEC §3.2)', async () => {
    const m = await started({}, FORCE_API);
    expect(await m.request({ type: 'login.apiKey', apiKey: new Secret('sk-abc') })).toMatchObject({
      ok: true,
      value: { kind: 'login', type: 'apiKey' },
    });
    expect(m.mode()).toBe('apiKey');
  });
});

describe('storage effects that throw a plain error (a bug)', () => {
  it('reads a load that threw as an unreadable auth.json', async () => {
    const m = await started({ buggy: ['load'] });
    expect(await m.request(read)).toMatchObject({ ok: false, failure: { kind: 'authFileCorrupt', message: 'bug in loading' } });
  });

  it('answers an API key login whose save threw as a storage failure', async () => {
    const m = await started({ buggy: ['save'] });
    expect(await m.request({ type: 'login.apiKey', apiKey: new Secret('sk-abc') })).toMatchObject({
      ok: false,
      failure: { kind: 'storageFailed', message: 'bug in saving' },
    });
  });

  it('answers a logout whose clearing threw as a storage failure', async () => {
    const m = await started({ buggy: ['clear'], stored: { kind: 'apiKey', apiKey: new Secret('sk-abc') } });
    expect(await m.request({ type: 'logout' })).toMatchObject({ ok: false, failure: { kind: 'storageFailed', message: 'bug in clearing' } });
  });
});

describe('pasted redirect URLs (account/login/complete)', () => {
  it('answers a paste the attempt redeemed with an empty result, once', async () => {
    const m = await started({ paste: 'accept' });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    const reply = await m.request(paste(loginId));
    expect(reply).toMatchObject({ ok: true, value: { kind: 'empty' } });
    await m.request({ type: 'login.cancel', loginId });
    expect(m.unanswered()).toEqual({ none: [], several: [] });
  });

  it('answers a paste the attempt never answered when the login ends', async () => {
    const m = await started({ paste: 'hang' });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    const pasted = m.send(paste(loginId));
    await m.settle();
    expect(m.unanswered().none).toEqual([pasted.requestId]);
    await m.request({ type: 'login.cancel', loginId });
    expect(await pasted).toMatchObject({
      ok: false,
      failure: { kind: 'loginNotWaiting', message: 'the login ended before this redirect URL was used' },
    });
    expect(m.unanswered()).toEqual({ none: [], several: [] });
  });

  it('answers every unanswered paste once when a new login supersedes the one they were for', async () => {
    const m = await started({ paste: 'hang' });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    const first = m.send(paste(loginId));
    const second = m.send(paste(loginId));
    await m.settle();
    m.fakes.paste = 'refuse';
    const next = loginIdOf(await m.request(chatgptLogin()));
    for (const reply of [await first, await second]) expect(reply).toMatchObject({ ok: false, failure: { kind: 'loginNotWaiting' } });
    // The next login's end does not answer them again.
    await m.request({ type: 'login.cancel', loginId: next });
    expect(m.unanswered()).toEqual({ none: [], several: [] });
  });

  it('still answers an unanswered paste when the login ends after another paste was redeemed', async () => {
    const m = await started({ paste: 'hang' });
    const loginId = loginIdOf(await m.request(chatgptLogin()));
    const waiting = m.send(paste(loginId));
    await m.settle();
    m.fakes.paste = 'accept';
    expect(await m.request(paste(loginId))).toMatchObject({ ok: true, value: { kind: 'empty' } });
    await m.request({ type: 'login.cancel', loginId });
    expect(await waiting).toMatchObject({ ok: false, failure: { kind: 'loginNotWaiting' } });
    expect(m.unanswered()).toEqual({ none: [], several: [] });
  });
});

describe('a ChatGPT login that cannot start', () => {
  it('keeps the active API key', async () => {
    const m = await started({ stored: { kind: 'apiKey', apiKey: new Secret('sk-abc') }, loginOutcome: 'startFail' });
    expect(await m.request(chatgptLogin())).toMatchObject({ ok: false, failure: { kind: 'loginServerFailed' } });
    expect(m.mode()).toBe('apiKey');
    expect(m.emitted.filter((e) => e.type !== 'reply')).toEqual([]);
  });
});

describe('what reaches the login attempt', () => {
  it('gives a login 10 minutes for the user by default (the reference’s deadline)', async () => {
    const m = await started();
    await m.request(chatgptLogin('device'));
    expect(m.calls.loginStart.map((c) => c.deadlineMs)).toEqual([600_000]);
  });
});

describe('announcements (SPEC §3.1, §9.1)', () => {
  it('reports a host-token login once, even when a later read’s discovery succeeds after the first failed', async () => {
    const m = await started({ workspaces: [] });
    await m.request(externalLogin('ws-1'));
    m.fakes.workspaces = ['ws-1'];
    expect(await m.request(read)).toMatchObject({ ok: true });
    expect(m.emitted.filter((e) => e.type === 'login.completed')).toEqual([
      { type: 'login.completed', loginId: null, success: false, error: 'workspace routing discovery failed' },
    ]);
    expect(m.emitted.filter((e) => e.type === 'account.updated')).toEqual([]);
  });

  it('announces stored credentials once, not again at the discovery after a refresh', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') });
    await m.request(read);
    await m.request({ type: 'account.read', refreshToken: true });
    expect(m.calls.discover).toHaveLength(2);
    expect(m.emitted.filter((e) => e.type === 'account.updated')).toHaveLength(1);
  });
});

describe('what reaches the session', () => {
  it('asks for rate limits with the request’s parameters (SPEC §10)', async () => {
    const inputs: BackendCallInput[] = [];
    const m = await started({ stored: storedChatgpt('ws-1'), onBackendCall: (input) => inputs.push(input) });
    await m.request({ type: 'rateLimits.read', params: { supportsLunaReserve: true, excludeResetCreditDetails: true } });
    expect(inputs.map((i) => i.call)).toEqual([
      { kind: 'rateLimits', params: { supportsLunaReserve: true, excludeResetCreditDetails: true } },
    ]);
  });

  it('answers a refreshing read once when its refresh failed and a later refresh succeeds', async () => {
    const m = await started({ stored: storedChatgpt('ws-1') });
    await m.request(read);
    m.fakes.refreshFails = { kind: 'refreshFailed', message: 'token endpoint down' };
    expect(await m.request({ type: 'account.read', refreshToken: true })).toMatchObject({ ok: false, failure: { kind: 'refreshFailed' } });
    delete m.fakes.refreshFails;
    expect(await m.request({ type: 'account.read', refreshToken: true })).toMatchObject({ ok: true });
    expect(m.unanswered()).toEqual({ none: [], several: [] });
  });
});

describe('a login attempt that breaks (an action of it throws)', () => {
  /** An attempt that reports ready (or not) and then throws: the chart must still answer and report. */
  function breakingAttempt(readyFirst: boolean) {
    return setup({
      types: { input: {} as LoginAttemptInput, context: {} as LoginAttemptInput },
      actions: {
        ready: sendParent(({ context }) => ({
          type: 'loginAttempt.ready',
          loginId: context.loginId,
          details: { flow: 'device', verificationUrl: 'https://auth.openai.com/codex/device', userCode: new Secret('ABCD-EFGH') },
        })),
        crash: () => {
          throw new TypeError('attempt bug');
        },
      },
    }).createMachine({
      context: ({ input }) => input,
      initial: 'starting',
      states: {
        starting: { entry: readyFirst ? ['ready'] : [], after: { 1: 'broken' } },
        broken: { entry: 'crash' },
      },
    }) as unknown as typeof loginAttemptMachine;
  }

  function withAttempt(attempt: typeof loginAttemptMachine) {
    const emitted: AccountEmitted[] = [];
    const machine = accountMachine.provide({
      actors: { loadCredentials: fromPromise<StoredAuth | null, void>(async () => null), loginAttempt: attempt } as never,
    });
    const actor = createActor(machine, { input: { policy: NO_POLICY } });
    actor.on('*', (e: AccountEmitted) => emitted.push(e));
    actor.start();
    return { actor, emitted };
  }

  it('fails the start request when the attempt breaks before it is ready', async () => {
    const { actor, emitted } = withAttempt(breakingAttempt(false));
    await new Promise((r) => setTimeout(r, 10));
    actor.send({ type: 'login.chatgpt', requestId: 'r1', flow: 'device', loginId: 'login-1' });
    await vi.waitFor(() => expect(emitted).toHaveLength(1));
    expect(emitted).toEqual([{ type: 'reply', requestId: 'r1', ok: false, failure: { kind: 'internal', message: 'attempt bug' } }]);
    expect(actor.getSnapshot().value).toMatchObject({ login: 'idle' });
  });

  it('reports a failed login when the attempt breaks after its start was answered', async () => {
    const { actor, emitted } = withAttempt(breakingAttempt(true));
    await new Promise((r) => setTimeout(r, 10));
    actor.send({ type: 'login.chatgpt', requestId: 'r1', flow: 'device', loginId: 'login-1' });
    await vi.waitFor(() => expect(emitted).toHaveLength(2));
    expect(emitted[0]).toMatchObject({ type: 'reply', requestId: 'r1', ok: true });
    expect(emitted[1]).toEqual({ type: 'login.completed', loginId: 'login-1', success: false, error: 'attempt bug' });
    expect(actor.getSnapshot().value).toMatchObject({ login: 'idle' });
  });
});

describe('effects nobody provided', () => {
  it('answer notImplemented, naming the effect, instead of hanging', async () => {
    const emitted: AccountEmitted[] = [];
    const actor = createActor(accountMachine, { input: { policy: NO_POLICY } });
    actor.on('*', (e: AccountEmitted) => emitted.push(e));
    actor.start();
    await vi.waitFor(() => expect(actor.getSnapshot().context.busyWith).toBeNull());
    actor.send({ type: 'account.read', requestId: 'r1', refreshToken: false });
    expect(emitted).toEqual([
      {
        type: 'reply',
        requestId: 'r1',
        ok: false,
        failure: { kind: 'notImplemented', message: 'loading credentials is not available in this build' },
      },
    ]);
  });
});
