import type { ExchangedTokens, LoginAttemptEvent, LoginAttemptInput } from '../../machines/login-attempt-types.js';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import { Secret } from '../../machines/secret.js';
import { storedChatgpt } from './harness.js';

// Sample events of the login attempt chart and the chart run alone, for
// xstate/graph: the graph test explores it, and the replay test
// (test/replay/) generates its real-process paths from them.

export const tokensFor = (accountId: string): ExchangedTokens => ({
  idToken: new Secret('id'),
  accessToken: new Secret('access'),
  refreshToken: new Secret('refresh'),
  claims: { email: 'a@b.c', userId: 'user-1', accountId, planType: 'plus' },
});
export const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}`, output }) as unknown as LoginAttemptEvent;
export const error = (id: string) => ({ type: `xstate.error.actor.${id}`, error: { kind: 'loginFailed', message: 'x' } }) as unknown as LoginAttemptEvent;
export const after = (delay: string, state: string) => ({ type: `xstate.after.${delay}.loginAttempt.${state}` }) as unknown as LoginAttemptEvent;
export const grant = { code: new Secret('c'), verifier: new Secret('v'), redirectUri: 'http://127.0.0.1:1455/auth/callback' };

export const EVENTS: LoginAttemptEvent[] = [
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
export const silent = () => {};
export const chart = loginAttemptMachine.provide({
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

export const input = (forcedWorkspaceIds: string[] | null = null): LoginAttemptInput => ({
  loginId: 'l',
  flow: 'browser',
  policy: { forcedLoginMethod: null, forcedWorkspaceIds },
  client: null,
  deadlineMs: 1_000,
});
