import { describe, expect, it } from 'vitest';
import { createActor, setup, SimulatedClock } from 'xstate';
import type { Policy, SessionEvent } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import type { BackendCallInput, SessionInput, SessionRequest } from '../../machines/session-machine.js';
import { fakeSession, Gates, NO_POLICY, noCalls, quiet, storedChatgpt, type Fakes } from './harness.js';

// The real session chart with fake HTTP, host and token endpoint, run under a
// stand-in parent that records what the session reports (`sendParent`), on a
// simulated clock so that deadlines are tested without waiting for them.

const RATE_LIMITS = { kind: 'rateLimits', params: {} } as const;

function startSession(input: Partial<SessionInput> & { mode: SessionInput['mode'] }, fakes: Fakes = {}, policy: Policy = NO_POLICY) {
  const calls = noCalls();
  const gates = new Gates();
  const clock = new SimulatedClock();
  const stored = input.mode === 'managed' ? storedChatgpt('ws-1') : null;
  const full: SessionInput = {
    accessToken: stored?.accessToken ?? new Secret('host-token-1'),
    accountId: 'ws-1',
    client: null,
    policy,
    stored,
    discoverNow: false,
    hostRefreshTimeoutMs: 10_000,
    ...input,
  };
  const reports: SessionEvent[] = [];
  const parent = setup({
    types: { events: {} as SessionEvent },
    actors: { session: fakeSession(fakes, calls, gates) },
  }).createMachine({
    invoke: { id: 'session', src: 'session', input: full },
    on: { '*': { actions: ({ event }) => reports.push(event) } },
  });
  const actor = createActor(parent, { clock }).start();
  const child = () => actor.getSnapshot().children.session!;
  const settle = () => {
    let seen: unknown[] = [reports.length, child().getSnapshot()];
    return quiet(() => {
      const now = [reports.length, child().getSnapshot()];
      const changed = now.some((v, i) => v !== seen[i]);
      seen = now;
      return changed;
    });
  };
  return {
    clock,
    calls,
    fakes,
    reports,
    settle,
    send: (event: SessionRequest) => child().send(event),
    state: () => child().getSnapshot().value,
    context: () => (child().getSnapshot() as unknown as { context: SessionInput }).context,
    hold: gates.hold.bind(gates),
    release: gates.release.bind(gates),
    snapshotJson: () => JSON.stringify(child().getSnapshot()),
  };
}

/** The host stays silent: nothing is reported until `deadlineMs` has passed, then the refresh fails with `message`. */
async function expectHostTimeoutAfter(s: ReturnType<typeof startSession>, deadlineMs: number, message: string): Promise<void> {
  await s.settle();
  s.clock.increment(deadlineMs - 1);
  await s.settle();
  expect(s.reports).toEqual([]);
  s.clock.increment(1);
  await s.settle();
  expect(s.reports.at(-1)).toEqual({ type: 'session.refreshFailed', failure: { kind: 'hostRefreshTimeout', message } });
}

const types = (reports: SessionEvent[]) => reports.map((r) => r.type);

describe('host refresh deadline', () => {
  it('fails the parked calls with the timeout text when the host does not answer in time', async () => {
    const s = startSession({ mode: 'external', hostRefreshTimeoutMs: 5_000 }, { rejectedTokens: ['host-token-1'], hostRefresh: 'hang' });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.state()).toEqual({ refreshing: 'external' });
    expect(s.calls.hostRefresh).toEqual([{ previousAccountId: 'ws-1' }]);

    s.clock.increment(4_999);
    await s.settle();
    expect(s.state()).toEqual({ refreshing: 'external' });
    expect(s.reports).toEqual([]);

    s.clock.increment(1);
    await s.settle();
    const failure = { kind: 'hostRefreshTimeout', message: 'auth refresh request timed out after 5s' };
    expect(s.reports).toEqual([
      { type: 'session.answered', requestId: 'r1', ok: false, failure },
      { type: 'session.refreshFailed', failure },
    ]);
    expect(s.state()).toBe('ready');
    // The old tokens stay; nothing was retried.
    expect(s.context().accessToken.reveal()).toBe('host-token-1');
    expect(s.calls.backend).toHaveLength(1);
  });

  it('stops the host request when the deadline passes', async () => {
    const s = startSession({ mode: 'external', hostRefreshTimeoutMs: 5_000 }, { rejectedTokens: ['host-token-1'] });
    s.hold('hostRefresh');
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    s.clock.increment(5_000);
    await s.settle();
    expect(s.calls.aborted).toEqual(['hostRefresh']);
  });

  it('takes the host deadline from the input', async () => {
    const s = startSession({ mode: 'external', hostRefreshTimeoutMs: 30_000 }, { rejectedTokens: ['host-token-1'], hostRefresh: 'hang' });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await expectHostTimeoutAfter(s, 30_000, 'auth refresh request timed out after 30s');
  });

  it('forgets the deadline once the host has answered', async () => {
    const s = startSession(
      { mode: 'external', hostRefreshTimeoutMs: 5_000 },
      { rejectedTokens: ['host-token-1'], hostRefresh: { accountId: 'ws-1', accessToken: 'host-token-2' } },
    );
    s.hold('hostRefresh');
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    s.clock.increment(4_000);
    s.release('hostRefresh');
    await s.settle();
    s.clock.increment(10_000);
    await s.settle();
    expect(types(s.reports)).toEqual(['session.refreshed', 'session.answered', 'session.routed']);
    expect(s.reports[1]).toMatchObject({ requestId: 'r1', ok: true });
    expect(s.state()).toBe('ready');
  });
});

describe('host-refreshed tokens', () => {
  const FORCED_WS_1: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] };

  it('refuses tokens for a workspace outside the forced ones and keeps the old ones', async () => {
    const s = startSession(
      { mode: 'external' },
      { rejectedTokens: ['host-token-1'], hostRefresh: { accountId: 'ws-3', accessToken: 'host-token-ws-3' } },
      FORCED_WS_1,
    );
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    const failure = {
      kind: 'refreshWorkspaceNotAllowed',
      message: 'Login is restricted to workspace(s) ws-1, but current credentials belong to ws-3',
    };
    expect(s.reports).toEqual([
      { type: 'session.answered', requestId: 'r1', ok: false, failure },
      { type: 'session.refreshFailed', failure },
    ]);
    expect(s.context()).toMatchObject({ accountId: 'ws-1' });
    expect(s.context().accessToken.reveal()).toBe('host-token-1');
    expect(s.calls.backend).toHaveLength(1);
  });

  it('installs tokens for an allowed workspace, retries the call with them and rediscovers', async () => {
    const s = startSession(
      { mode: 'external' },
      { rejectedTokens: ['host-token-1'], hostRefresh: { accountId: 'ws-1', accessToken: 'host-token-2' } },
      FORCED_WS_1,
    );
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.reports[0]).toMatchObject({ type: 'session.refreshed', tokens: { kind: 'external', accountId: 'ws-1' } });
    expect(s.calls.backend.map((c) => [c.accessToken, c.retried])).toEqual([['host-token-1', false], ['host-token-2', true]]);
    expect(s.calls.discover).toEqual([{ accountId: 'ws-1', accessToken: 'host-token-2' }]);
    expect(s.reports.at(-1)).toMatchObject({ type: 'session.routed', routing: { accountId: 'ws-1' } });
  });

  it('never shows a token in its snapshot', async () => {
    const s = startSession(
      { mode: 'external' },
      { rejectedTokens: ['host-token-1'], hostRefresh: { accountId: 'ws-1', accessToken: 'host-token-2' } },
    );
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    const json = s.snapshotJson();
    expect(json).not.toContain('host-token');
    expect(json).toContain('[redacted]');
  });
});

describe('routing discovery', () => {
  it('waits for the first read unless asked to discover at once', async () => {
    const s = startSession({ mode: 'managed' });
    await s.settle();
    expect(s.state()).toBe('ready');
    expect(s.calls.discover).toEqual([]);
    s.send({ type: 'session.discover' });
    await s.settle();
    expect(s.reports).toEqual([{ type: 'session.routed', routing: expect.objectContaining({ accountId: 'ws-1' }) }]);
  });

  it('recovers from a 401 by refreshing once and discovering again with the new tokens', async () => {
    const s = startSession({ mode: 'managed', discoverNow: true }, { rejectedTokens: ['access-token-ws-1'] });
    await s.settle();
    expect(s.calls.discover.map((c) => c.accessToken)).toEqual(['access-token-ws-1', 'access-token-ws-1-r1']);
    expect(s.calls.refresh).toEqual([{ reason: 'unauthorized_recovery', refreshToken: 'refresh-token-ws-1' }]);
    expect(types(s.reports)).toEqual(['session.refreshed', 'session.routed']);
    expect(s.state()).toBe('ready');
  });

  it('reports a second 401 in a row as unrouted instead of refreshing again', async () => {
    const s = startSession({ mode: 'managed', discoverNow: true }, { rejectedTokens: ['access-token-ws-1', 'access-token-ws-1-r1'] });
    await s.settle();
    expect(s.calls.discover).toHaveLength(2);
    expect(s.calls.refresh).toHaveLength(1);
    // Reported in discovery's own words (SPEC §9.2), not as a backend call's 401.
    expect(s.reports.at(-1)).toEqual({ type: 'session.unrouted', failure: { kind: 'discoveryFailed' } });
    expect(s.state()).toBe('ready');
  });

  it('reports discovery as failed when the refresh after its 401 fails', async () => {
    const s = startSession({ mode: 'managed', discoverNow: true }, { rejectedTokens: ['access-token-ws-1'], refreshFails: { kind: 'refreshTokenExpired' } });
    await s.settle();
    expect(s.reports).toEqual([
      { type: 'session.refreshFailed', failure: { kind: 'refreshTokenExpired' } },
      { type: 'session.unrouted', failure: { kind: 'refreshTokenExpired' } },
    ]);
    expect(s.state()).toBe('ready');
  });

  it('reports a discovery failure other than a 401 without refreshing', async () => {
    const s = startSession({ mode: 'managed', discoverNow: true }, { workspaces: [] });
    await s.settle();
    expect(s.reports).toEqual([{ type: 'session.unrouted', failure: { kind: 'discoveryFailed', message: 'workspace routing discovery failed' } }]);
    expect(s.calls.refresh).toEqual([]);
  });

  it('asks the host, not the token endpoint, when host tokens meet a 401 in discovery', async () => {
    const s = startSession(
      { mode: 'external', discoverNow: true },
      { rejectedTokens: ['host-token-1'], hostRefresh: { accountId: 'ws-1', accessToken: 'host-token-2' } },
    );
    await s.settle();
    expect(s.calls.refresh).toEqual([]);
    expect(s.calls.hostRefresh).toHaveLength(1);
    expect(s.calls.discover.map((c) => c.accessToken)).toEqual(['host-token-1', 'host-token-2']);
    expect(types(s.reports)).toEqual(['session.refreshed', 'session.routed']);
  });
});

describe('refresh', () => {
  it('joins refresh triggers that arrive while one is in flight', async () => {
    const s = startSession({ mode: 'managed' });
    s.hold('refresh');
    s.send({ type: 'session.refresh', reason: 'forced' });
    s.send({ type: 'session.refresh', reason: 'forced' });
    await s.settle();
    s.send({ type: 'session.refresh', reason: 'forced' });
    s.release('refresh');
    await s.settle();
    expect(s.calls.refresh).toHaveLength(1);
    expect(types(s.reports)).toEqual(['session.refreshed', 'session.routed']);
  });

  it('reports a failed forced refresh and keeps serving with the old tokens', async () => {
    const s = startSession({ mode: 'managed' }, { refreshFails: { kind: 'refreshTokenReused' } });
    s.send({ type: 'session.refresh', reason: 'forced' });
    await s.settle();
    expect(s.reports).toEqual([{ type: 'session.refreshFailed', failure: { kind: 'refreshTokenReused' } }]);
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.reports.at(-1)).toMatchObject({ type: 'session.answered', requestId: 'r1', ok: true });
    expect(s.calls.backend[0]?.accessToken).toBe('access-token-ws-1');
  });
});

describe('a refresh asked for during discovery', () => {
  it('runs once discovery ends, and reports the routing only after it, with the new tokens', async () => {
    const s = startSession({ mode: 'managed' });
    s.hold('discover');
    s.send({ type: 'session.discover' });
    await s.settle();
    expect(s.state()).toBe('discovering');
    s.send({ type: 'session.refresh', reason: 'forced' });
    s.release('discover');
    await s.settle();
    expect(s.calls.refresh).toEqual([{ reason: 'forced', refreshToken: 'refresh-token-ws-1' }]);
    expect(s.calls.discover.map((c) => c.accessToken)).toEqual(['access-token-ws-1', 'access-token-ws-1-r1']);
    expect(types(s.reports)).toEqual(['session.refreshed', 'session.routed']);
  });
});

describe('backend calls', () => {
  it('answers a call whose effect throws with an internal failure for that request, and keeps serving', async () => {
    const s = startSession({ mode: 'managed' }, { buggy: ['backend'] });
    s.send({ type: 'session.call', requestId: '17', call: RATE_LIMITS });
    await s.settle();
    expect(s.reports).toEqual([{ type: 'session.answered', requestId: '17', ok: false, failure: { kind: 'internal' } }]);
    s.fakes.buggy = [];
    s.send({ type: 'session.call', requestId: '18', call: RATE_LIMITS });
    await s.settle();
    expect(s.reports.at(-1)).toMatchObject({ type: 'session.answered', requestId: '18', ok: true });
  });

  it('resends a call whose 401 came for tokens a refresh has replaced since, without refreshing again', async () => {
    const s = startSession({ mode: 'managed' }, { rejectedTokens: ['access-token-ws-1'] });
    // The first call meets the 401 and starts the refresh; the second is sent with the old tokens meanwhile.
    s.hold('refresh');
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.state()).toEqual({ refreshing: 'managed' });
    s.hold('backend');
    s.send({ type: 'session.call', requestId: 'r2', call: RATE_LIMITS });
    await s.settle();
    s.release('refresh');
    await s.settle();
    s.release('backend');
    await s.settle();

    expect(s.calls.refresh).toHaveLength(1);
    expect(s.calls.backend.map((c) => [c.requestId, c.accessToken, c.retried])).toEqual([
      ['r1', 'access-token-ws-1', false],
      ['r2', 'access-token-ws-1', false],
      ['r1', 'access-token-ws-1-r1', true],
      ['r2', 'access-token-ws-1-r1', false],
    ]);
    const answers = s.reports.filter((r) => r.type === 'session.answered');
    expect(answers.map((a) => [a.requestId, a.ok]).sort()).toEqual([['r1', true], ['r2', true]]);
  });

  it('fails a retried call that meets a second 401 instead of refreshing again', async () => {
    const s = startSession({ mode: 'managed' }, { rejectedTokens: ['access-token-ws-1'], backendRejects: ['access-token-ws-1-r1'] });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.calls.refresh).toHaveLength(1);
    expect(s.reports.find((r) => r.type === 'session.answered')).toEqual({
      type: 'session.answered',
      requestId: 'r1',
      ok: false,
      failure: { kind: 'backendUnauthorized', message: 'unexpected status 401 Unauthorized' },
    });
  });

  it('gives a managed call the stored last refresh time, so the effect can refresh due tokens first', async () => {
    const inputs: BackendCallInput[] = [];
    const s = startSession({ mode: 'managed', stored: { ...storedChatgpt('ws-1'), lastRefresh: '2026-01-01T00:00:00Z' } }, {
      onBackendCall: (input) => inputs.push(input),
    });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(inputs[0]?.managedLastRefresh).toBe('2026-01-01T00:00:00Z');
  });

  it('gives a managed call a null last refresh when the credentials never recorded one', async () => {
    const inputs: BackendCallInput[] = [];
    const s = startSession({ mode: 'managed' }, { onBackendCall: (input) => inputs.push(input) });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(inputs[0]).toHaveProperty('managedLastRefresh', null);
  });

  it('gives a host-token call no last refresh time (the host refreshes its own tokens)', async () => {
    const inputs: BackendCallInput[] = [];
    const s = startSession({ mode: 'external' }, { onBackendCall: (input) => inputs.push(input) });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(inputs[0]).not.toHaveProperty('managedLastRefresh');
    expect(inputs[0]).toMatchObject({ requestId: 'r1', accountId: 'ws-1', retried: false, credentialsVersion: 0, call: RATE_LIMITS });
  });
});

describe('the host naming itself after the session started', () => {
  const client = { originator: 'codex_vscode', userAgent: 'codex_vscode/1.2' };

  it('sends later backend calls as the named client', async () => {
    const inputs: BackendCallInput[] = [];
    const s = startSession({ mode: 'managed' }, { onBackendCall: (input) => inputs.push(input) });
    s.send({ type: 'session.identify', client, hostRefreshTimeoutMs: 10_000 });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(inputs[0]?.client).toEqual(client);
  });

  it('waits for the host’s refresh answer as long as the host asked', async () => {
    const s = startSession({ mode: 'external', hostRefreshTimeoutMs: 10_000 }, { rejectedTokens: ['host-token-1'], hostRefresh: 'hang' });
    s.send({ type: 'session.identify', client, hostRefreshTimeoutMs: 2_000 });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await expectHostTimeoutAfter(s, 2_000, 'auth refresh request timed out after 2s');
  });
});

describe('why a refresh runs (SPEC §8: refresh_reason)', () => {
  it('says unauthorized_recovery for a 401 that follows a forced refresh', async () => {
    const s = startSession({ mode: 'managed' });
    s.send({ type: 'session.refresh', reason: 'forced' });
    await s.settle();
    s.fakes.rejectedTokens = ['access-token-ws-1-r1'];
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.calls.refresh.map((c) => c.reason)).toEqual(['forced', 'unauthorized_recovery']);
    expect(s.reports.at(-2)).toMatchObject({ type: 'session.answered', requestId: 'r1', ok: true });
  });

  it('fails every call parked for a refresh that fails, with the refresh’s failure', async () => {
    const s = startSession({ mode: 'managed' }, { rejectedTokens: ['access-token-ws-1'], refreshFails: { kind: 'refreshTokenExpired' } });
    s.hold('backend');
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    s.send({ type: 'session.call', requestId: 'r2', call: RATE_LIMITS });
    await s.settle();
    s.release('backend');
    await s.settle();
    expect(s.calls.refresh).toHaveLength(1);
    expect(s.reports).toEqual([
      { type: 'session.answered', requestId: 'r1', ok: false, failure: { kind: 'refreshTokenExpired' } },
      { type: 'session.answered', requestId: 'r2', ok: false, failure: { kind: 'refreshTokenExpired' } },
      { type: 'session.refreshFailed', failure: { kind: 'refreshTokenExpired' } },
    ]);
    expect(s.state()).toBe('ready');
  });
});

describe('calls that overlap a refresh', () => {
  it('answers a call that succeeded with the tokens a refresh then replaced, without sending it again', async () => {
    const s = startSession({ mode: 'managed' });
    s.hold('refresh');
    s.send({ type: 'session.refresh', reason: 'forced' });
    await s.settle();
    s.hold('backend');
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    s.release('refresh');
    await s.settle();
    s.release('backend');
    await s.settle();
    expect(s.calls.backend.map((c) => [c.requestId, c.accessToken])).toEqual([['r1', 'access-token-ws-1']]);
    expect(s.reports.filter((r) => r.type === 'session.answered')).toEqual([
      { type: 'session.answered', requestId: 'r1', ok: true, result: expect.anything() },
    ]);
  });

  it('resends a call whose 401 came for host tokens the host has replaced since, asking the host once', async () => {
    const s = startSession(
      { mode: 'external' },
      { rejectedTokens: ['host-token-1'], hostRefresh: { accountId: 'ws-1', accessToken: 'host-token-2' } },
    );
    s.hold('hostRefresh');
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    s.hold('backend');
    s.send({ type: 'session.call', requestId: 'r2', call: RATE_LIMITS });
    await s.settle();
    s.release('hostRefresh');
    await s.settle();
    s.release('backend');
    await s.settle();
    expect(s.calls.hostRefresh).toHaveLength(1);
    expect(s.calls.backend.filter((c) => c.requestId === 'r2').map((c) => c.accessToken)).toEqual(['host-token-1', 'host-token-2']);
    const answers = s.reports.filter((r) => r.type === 'session.answered');
    expect(answers.map((a) => [a.requestId, a.ok]).sort()).toEqual([['r1', true], ['r2', true]]);
  });
});

describe('a refresh asked for during discovery, continued', () => {
  it('reports discovery as failed, as well as the refresh, when that refresh fails', async () => {
    const s = startSession({ mode: 'managed' }, { refreshFails: { kind: 'refreshTokenExpired' } });
    s.hold('discover');
    s.send({ type: 'session.discover' });
    await s.settle();
    s.send({ type: 'session.refresh', reason: 'forced' });
    s.release('discover');
    await s.settle();
    expect(s.reports).toEqual([
      { type: 'session.refreshFailed', failure: { kind: 'refreshTokenExpired' } },
      { type: 'session.unrouted', failure: { kind: 'refreshTokenExpired' } },
    ]);
    expect(s.state()).toBe('ready');
  });

  it('still recovers once from a 401 of the discovery that follows it', async () => {
    const s = startSession({ mode: 'managed' }, { rejectedTokens: ['access-token-ws-1-r1'] });
    s.hold('discover');
    s.send({ type: 'session.discover' });
    await s.settle();
    s.send({ type: 'session.refresh', reason: 'forced' });
    s.release('discover');
    await s.settle();
    expect(s.calls.refresh.map((c) => c.reason)).toEqual(['forced', 'unauthorized_recovery']);
    expect(s.calls.discover.map((c) => c.accessToken)).toEqual(['access-token-ws-1', 'access-token-ws-1-r1', 'access-token-ws-1-r2']);
    expect(s.reports.at(-1)).toMatchObject({ type: 'session.routed', routing: { accountId: 'ws-1' } });
  });
});

describe('effects that throw a plain error (a bug)', () => {
  it('reports a discovery that threw as a failed discovery', async () => {
    const s = startSession({ mode: 'managed', discoverNow: true }, { buggy: ['discover'] });
    await s.settle();
    expect(s.reports).toEqual([{ type: 'session.unrouted', failure: { kind: 'discoveryFailed', message: 'bug in discovery' } }]);
  });

  it('reports a managed refresh that threw as a failed refresh', async () => {
    const s = startSession({ mode: 'managed' }, { buggy: ['refresh'] });
    s.send({ type: 'session.refresh', reason: 'forced' });
    await s.settle();
    expect(s.reports).toEqual([{ type: 'session.refreshFailed', failure: { kind: 'refreshFailed', message: 'bug in the refresh' } }]);
  });

  it('reports a host refresh that threw as a failed host refresh', async () => {
    const s = startSession({ mode: 'external' }, { rejectedTokens: ['host-token-1'], buggy: ['hostRefresh'] });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.reports.at(-1)).toEqual({
      type: 'session.refreshFailed',
      failure: { kind: 'hostRefreshFailed', message: 'bug in the host refresh' },
    });
  });
});

describe('host refresh answers', () => {
  it('retries with the same tokens and skips discovery when the host answers with the tokens it has (SPEC §9.2)', async () => {
    const s = startSession({ mode: 'external' }, { backendRejects: ['host-token-1'], hostRefresh: { accountId: 'ws-1', accessToken: 'host-token-1' } });
    s.hold('hostRefresh');
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.state()).toEqual({ refreshing: 'external' });
    s.fakes.backendRejects = []; // the 401 was the backend's hiccup
    s.release('hostRefresh');
    await s.settle();
    expect(s.calls.discover).toEqual([]);
    expect(s.calls.backend.map((c) => c.accessToken)).toEqual(['host-token-1', 'host-token-1']);
    expect(types(s.reports)).toEqual(['session.refreshed', 'session.answered']);
    expect(s.state()).toBe('ready');
  });

  it('discovers again when the host answers with other tokens for the same workspace', async () => {
    const s = startSession({ mode: 'external' }, { backendRejects: ['host-token-1'], hostRefresh: { accountId: 'ws-1', accessToken: 'host-token-2' } });
    s.send({ type: 'session.call', requestId: 'r1', call: RATE_LIMITS });
    await s.settle();
    expect(s.calls.discover.map((c) => c.accessToken)).toEqual(['host-token-2']);
    expect(s.state()).toBe('ready');
  });
});
