import { describe, expect, it } from 'vitest';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import type { ExchangedTokens, LoginAttemptEvent, LoginAttemptInput } from '../../machines/login-attempt-types.js';
import { Secret } from '../../machines/secret.js';
import { storedChatgpt } from './harness.js';

const tokensFor = (accountId: string): ExchangedTokens => ({
  idToken: new Secret('id'),
  accessToken: new Secret('access'),
  refreshToken: new Secret('refresh'),
  claims: { email: 'a@b.c', userId: 'user-1', accountId, planType: 'plus' },
});
const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}`, output }) as unknown as LoginAttemptEvent;
const error = (id: string) => ({ type: `xstate.error.actor.${id}`, error: { kind: 'loginFailed', message: 'x' } }) as unknown as LoginAttemptEvent;
const after = (delay: string, state: string) => ({ type: `xstate.after.${delay}.loginAttempt.${state}` }) as unknown as LoginAttemptEvent;
const grant = { code: new Secret('c'), verifier: new Secret('v'), redirectUri: 'http://127.0.0.1:1455/auth/callback' };

const EVENTS: LoginAttemptEvent[] = [
  { type: 'channel.ready', details: { flow: 'browser', authUrl: new Secret('u') } },
  { type: 'channel.startFailed', failure: { kind: 'loginServerFailed', message: 'busy' } },
  { type: 'channel.code', grant, requestId: null },
  { type: 'channel.failed', detail: 'Sign-in failed: access_denied', requestId: null },
  { type: 'channel.cancelled' },
  { type: 'channel.finished' },
  done('exchangeCode', tokensFor('ws-1')),
  done('exchangeCode', tokensFor('ws-2')),
  error('exchangeCode'),
  done('exchangeApiKey', new Secret('sk')),
  error('exchangeApiKey'),
  done('saveLogin', storedChatgpt('ws-1')),
  error('saveLogin'),
  after('loginDeadline', 'open.running'),
  after('finishGrace', 'open.reporting'),
  after('successPageGrace', 'open.confirming'),
];

// Graph traversal runs the chart alone, without a parent or a channel: the
// actions that talk to them are muted; every assign and guard stays real.
const silent = () => {};
const chart = loginAttemptMachine.provide({
  actions: {
    reportReady: silent,
    reportStartFailed: silent,
    forwardPaste: silent,
    answerPasteRejected: silent,
    answerPasteNotWaiting: silent,
    answerPasteNotSupported: silent,
    answerPasteOutcome: silent,
    finishChannelWithFailure: silent,
    finishChannelWithSuccess: silent,
  },
});

const input = (forcedWorkspaceIds: string[] | null = null): LoginAttemptInput => ({
  loginId: 'l',
  flow: 'browser',
  policy: { forcedLoginMethod: null, forcedWorkspaceIds },
  client: null,
  deadlineMs: 1_000,
});

function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => [prefix + k, ...activePaths(v, `${prefix}${k}.`)]);
}

describe('login attempt machine graph', () => {
  it('should reach every state node by some path', () => {
    const paths = getShortestPaths(chart, { events: EVENTS, input: input() });
    const reached = new Set(paths.flatMap((p) => activePaths(p.state.value)));
    const all = getStateNodes(loginAttemptMachine.root).map((n) => n.path.join('.')).filter((p) => p !== '');
    expect(all).toHaveLength(12);
    expect(all.filter((p) => !reached.has(p))).toEqual([]);
  });

  it('should reach done only after the credentials were saved', () => {
    const paths = getShortestPaths(chart, { events: EVENTS, input: input(), toState: (s) => s.value === 'done' });
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) expect(path.steps.map((s) => s.event.type)).toContain('xstate.done.actor.saveLogin');
  });

  it('should never save a login to a workspace outside the forced list', () => {
    const allowed = EVENTS[6]!;
    expect((allowed as unknown as { output: ExchangedTokens }).output.claims.accountId).toBe('ws-1');
    const events = EVENTS.filter((e) => e !== allowed);
    const paths = getShortestPaths(chart, { events, input: input(['ws-1']) });
    const reached = new Set(paths.flatMap((p) => activePaths(p.state.value)));
    expect(reached.has('failed')).toBe(true);
    expect(reached.has('open.running.saving')).toBe(false);
    expect(reached.has('done')).toBe(false);
  });
});
