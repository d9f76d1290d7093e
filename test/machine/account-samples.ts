import type { SnapshotFrom } from 'xstate';
import { accountMachine } from '../../machines/account-machine.js';
import type { AccountEvent, Policy, StoredAuth, WorkspaceRouting } from '../../machines/account-types.js';
import type { LoginAttemptOutput } from '../../machines/login-attempt-types.js';
import { Secret } from '../../machines/secret.js';
import { claims, storedChatgpt } from './harness.js';

// Sample events of the root chart, for xstate/graph: the graph test explores
// the chart with them, and the replay test (test/replay/) generates its
// real-process paths from them.

export type Snapshot = SnapshotFrom<typeof accountMachine>;

export const apiKey: StoredAuth = { kind: 'apiKey', apiKey: new Secret('sk') };
export const routing: WorkspaceRouting = { accountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT', workspaceName: 'Acme' };
export const failure = { kind: 'storageFailed', message: 'x' } as const;
export const LOGIN_ID = '00000000-0000-4000-8000-000000000001';
export const FORCE_CHATGPT: Policy = { forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null };
export const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
export const FORCE_WS_2: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-2'] };

/** Done/error events of an invoke, by id, as the running actors would send them. */
export const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}`, output }) as unknown as AccountEvent;
export const error = (id: string) => ({ type: `xstate.error.actor.${id}`, error: failure }) as unknown as AccountEvent;
export const attemptOutput = (output: LoginAttemptOutput) => done('attempt', output);

export const externalTokens: AccountEvent = {
  type: 'login.externalTokens',
  requestId: 'r',
  experimentalApi: true,
  accessToken: new Secret('t'),
  accountId: 'ws-1',
  planType: null,
  claims: claims('ws-1'),
};

/** Sample payloads for every event type the chart handles (asserted below to match the chart exactly). */
export const SAMPLES: Record<string, AccountEvent[]> = {
  // Requests (the adapter)
  'client.identify': [{ type: 'client.identify', client: { originator: 'codex', userAgent: 'codex/1' } }],
  'account.read': [
    { type: 'account.read', requestId: 'r', refreshToken: false },
    { type: 'account.read', requestId: 'r', refreshToken: true },
  ],
  'authStatus.read': [{ type: 'authStatus.read', requestId: 'r', includeToken: true }],
  'rateLimits.read': [{ type: 'rateLimits.read', requestId: 'r', params: {} }],
  'login.apiKey': [{ type: 'login.apiKey', requestId: 'r', apiKey: new Secret('sk') }],
  'login.externalTokens': [
    externalTokens,
    { ...externalTokens, experimentalApi: false },
    { ...externalTokens, claims: null },
  ],
  'login.chatgpt': [{ type: 'login.chatgpt', requestId: 'r', flow: 'browser', loginId: LOGIN_ID }],
  'login.cancel': [{ type: 'login.cancel', requestId: 'r', loginId: LOGIN_ID }],
  'login.complete': [{ type: 'login.complete', requestId: 'r', loginId: LOGIN_ID, redirectUrl: new Secret('http://localhost:1455/auth/callback?code=c&state=s') }],
  logout: [{ type: 'logout', requestId: 'r' }],
  // The rest of the account surface (SPEC-account-surface §13–§18)
  'usage.read': [
    { type: 'usage.read', requestId: 'r', threadId: null },
    { type: 'usage.read', requestId: 'r', threadId: '00000000-0000-4000-8000-000000000002' },
  ],
  'securitySetup.read': [{ type: 'securitySetup.read', requestId: 'r' }],
  'workspaceMessages.read': [{ type: 'workspaceMessages.read', requestId: 'r' }],
  'resetCredit.consume': [{ type: 'resetCredit.consume', requestId: 'r', idempotencyKey: 'k', creditId: null }],
  'addCreditsNudge.send': [{ type: 'addCreditsNudge.send', requestId: 'r', creditType: 'credits' }],
  'gatewayOAuth.read': [{ type: 'gatewayOAuth.read', requestId: 'r', modelProvider: null }],
  'gatewayOAuth.login': [{ type: 'gatewayOAuth.login', requestId: 'r', modelProvider: null, deviceAuth: false }],
  'gatewayOAuth.cancel': [{ type: 'gatewayOAuth.cancel', requestId: 'r' }],
  // Effects of the credentials region
  'xstate.done.actor.load': [done('load', null), done('load', apiKey), done('load', storedChatgpt('ws-1'))],
  'xstate.error.actor.load': [error('load')],
  'xstate.done.actor.saveApiKey': [done('saveApiKey', apiKey)],
  'xstate.error.actor.saveApiKey': [error('saveApiKey')],
  'xstate.done.actor.clear': [done('clear')],
  'xstate.error.actor.clear': [error('clear')],
  // The session child's reports
  'session.routed': [{ type: 'session.routed', routing }],
  'session.unrouted': [{ type: 'session.unrouted', failure: { kind: 'discoveryFailed' } }],
  'session.refreshed': [{ type: 'session.refreshed', tokens: { kind: 'managed', stored: storedChatgpt('ws-1', '-r1') } }],
  'session.refreshFailed': [{ type: 'session.refreshFailed', failure: { kind: 'refreshTokenExpired' } }],
  'session.answered': [{ type: 'session.answered', requestId: 'r', ok: true, result: {} }],
  // The login attempt's reports and outcomes
  'loginAttempt.ready': [{ type: 'loginAttempt.ready', loginId: LOGIN_ID, details: { flow: 'browser', authUrl: new Secret('u') } }],
  'loginAttempt.startFailed': [{ type: 'loginAttempt.startFailed', loginId: LOGIN_ID, failure: { kind: 'loginServerFailed' } }],
  // As a device-code login answers any paste (the replay's logins are device-code ones).
  'loginAttempt.pasteAnswered': [
    { type: 'loginAttempt.pasteAnswered', loginId: LOGIN_ID, requestId: 'r', ok: false, failure: { kind: 'pasteNotSupported', message: 'not a browser login' } },
  ],
  'xstate.done.actor.attempt': [
    attemptOutput({ loginId: LOGIN_ID, status: 'succeeded', auth: storedChatgpt('ws-1') }),
    attemptOutput({ loginId: LOGIN_ID, status: 'failed', error: 'Login server error: x' }),
    attemptOutput({ loginId: LOGIN_ID, status: 'notStarted', failure: { kind: 'loginServerFailed' } }),
  ],
  'xstate.error.actor.attempt': [error('attempt')],
  // Another process changed the stored credentials (the watch)
  'credentials.reloaded': [
    { type: 'credentials.reloaded', auth: null },
    { type: 'credentials.reloaded', auth: apiKey },
    { type: 'credentials.reloaded', auth: storedChatgpt('ws-1') },
  ],
  'credentials.unreadable': [{ type: 'credentials.unreadable', failure: { kind: 'authFileCorrupt' } }],
};
/**
 * Raised by one region for the other, always together with the context
 * changes they go with; sent alone they would make states the chart cannot
 * be in. They are covered through the events that raise them (last test).
 */
export const RAISED = ['credentials.changed', 'attempt.abandon'];
export const EVENTS = Object.values(SAMPLES).flat();

/**
 * Which states count as different while exploring: the state value and what
 * the context says about credentials and work in flight (lists by their
 * shape only, so that repeating a deferred request cannot grow the graph forever).
 */
export function serializeState(s: Snapshot): string {
  const c = s.context;
  return JSON.stringify([
    s.value,
    c.stored?.kind ?? null,
    c.external !== null,
    c.routing !== null,
    c.pending !== null,
    c.startingRequest !== null,
    c.busyWith === null ? null : c.busyWith === 'load' ? 'load' : 'request',
    c.storageIssue !== null,
    c.announcement?.kind ?? null,
    c.deferred.slice(0, 2).map((e) => e.type),
  ]);
}

