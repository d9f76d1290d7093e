import { describe, expect, it } from 'vitest';
import type { AnyStateNode, SnapshotFrom } from 'xstate';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { accountMachine } from '../../machines/account-machine.js';
import type { AccountEvent, Policy, StoredAuth, WorkspaceRouting } from '../../machines/account-types.js';
import type { LoginAttemptOutput } from '../../machines/login-attempt-types.js';
import { Secret } from '../../machines/secret.js';
import { claims, NO_POLICY, storedChatgpt } from './harness.js';

// The root chart explored by xstate/graph: every event the chart handles is
// derived from its definition (the `on` of every state node, invoke done and
// error events included), and each needs sample payloads from SAMPLES below.
// A renamed state, event or invoke id makes the table and the chart disagree,
// so coverage cannot silently drop.

type Snapshot = SnapshotFrom<typeof accountMachine>;

const apiKey: StoredAuth = { kind: 'apiKey', apiKey: new Secret('sk') };
const routing: WorkspaceRouting = { accountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT', workspaceName: 'Acme' };
const failure = { kind: 'storageFailed', message: 'x' } as const;
const LOGIN_ID = '00000000-0000-4000-8000-000000000001';
const FORCE_CHATGPT: Policy = { forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null };
const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const FORCE_WS_2: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-2'] };

/** Done/error events of an invoke, by id, as the running actors would send them. */
const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}`, output }) as unknown as AccountEvent;
const error = (id: string) => ({ type: `xstate.error.actor.${id}`, error: failure }) as unknown as AccountEvent;
const attemptOutput = (output: LoginAttemptOutput) => done('attempt', output);

const externalTokens: AccountEvent = {
  type: 'login.externalTokens',
  requestId: 'r',
  experimentalApi: true,
  accessToken: new Secret('t'),
  accountId: 'ws-1',
  planType: null,
  claims: claims('ws-1'),
};

/** Sample payloads for every event type the chart handles (asserted below to match the chart exactly). */
const SAMPLES: Record<string, AccountEvent[]> = {
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
  'loginAttempt.pasteAnswered': [{ type: 'loginAttempt.pasteAnswered', loginId: LOGIN_ID, requestId: 'r', ok: true }],
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
const RAISED = ['credentials.changed', 'attempt.abandon'];
const EVENTS = Object.values(SAMPLES).flat();

const ALL_NODES: AnyStateNode[] = [accountMachine.root, ...getStateNodes(accountMachine.root)];
const pathOf = (node: AnyStateNode) => node.path.join('.');
const STATE_PATHS = ALL_NODES.map(pathOf).filter((p) => p !== '');

/** Every event type some state node of the chart handles, done and error events of invokes included. */
function handledEventTypes(): Set<string> {
  const types = new Set<string>();
  for (const node of ALL_NODES) for (const type of Object.keys(node.on)) types.add(type);
  return types;
}

/**
 * Which states count as different while exploring: the state value and what
 * the context says about credentials and work in flight (lists by their
 * shape only, so that repeating a deferred request cannot grow the graph forever).
 */
function serializeState(s: Snapshot): string {
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

/** `{ a: { b: {} } }` → `['a', 'a.b']` */
function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => [prefix + k, ...activePaths(v, `${prefix}${k}.`)]);
}

function explore(policy: Policy, events: AccountEvent[] = EVENTS, toState?: (s: Snapshot) => boolean) {
  return getShortestPaths(accountMachine, { events, input: { policy }, serializeState: (s) => serializeState(s as Snapshot), ...(toState ? { toState } : {}) });
}

describe('account machine graph', () => {
  it('should have sample payloads for exactly the events the chart handles', () => {
    const handled = [...handledEventTypes()].sort();
    expect([...Object.keys(SAMPLES), ...RAISED].sort()).toEqual(handled);
    for (const [type, samples] of Object.entries(SAMPLES)) {
      expect(samples.length, type).toBeGreaterThan(0);
      for (const sample of samples) expect(sample.type).toBe(type);
    }
    // Every invoke with an onDone/onError is among them by its id.
    for (const node of ALL_NODES) {
      for (const invoke of node.invoke) {
        const types = [`xstate.done.actor.${invoke.id}`, `xstate.error.actor.${invoke.id}`].filter((t) => node.on[t]);
        for (const type of types) expect(handled).toContain(type);
      }
    }
  });

  it('should reach every state node but the transient route by some path, and print the coverage', () => {
    const states = (policy: Policy) => explore(policy).flatMap((p) => [p.state, ...p.steps.map((s) => s.state)]) as Snapshot[];
    const open = states(NO_POLICY);
    const reached = new Set(open.flatMap((s) => activePaths(s.value)));
    expect(STATE_PATHS).toContain('credentials.route');
    const expected = STATE_PATHS.filter((p) => p !== 'credentials.route');
    expect(expected.filter((p) => !reached.has(p)), 'unreached state nodes').toEqual([]);
    const routeTargets = accountMachine.root.states.credentials!.states.route!.always!.map((t) => pathOf(t.target![0]!));
    expect(routeTargets.filter((t) => !reached.has(t)), 'modes the route never leads to').toEqual([]);

    // Transition coverage: which transitions of the chart fire in some reachable state, under each kind of policy.
    const all = ALL_NODES.flatMap((node) => [...node.transitions.values()].flat()).filter((t) => !RAISED.includes(t.eventType));
    const fired = new Set<unknown>();
    let distinct = 0;
    const policies = [[NO_POLICY, open], [FORCE_API, states(FORCE_API)], [FORCE_CHATGPT, states(FORCE_CHATGPT)], [FORCE_WS_2, states(FORCE_WS_2)]] as const;
    for (const [policy, reachable] of policies) {
      const unique = new Map(reachable.map((s) => [serializeState(s), s]));
      distinct += unique.size;
      for (const state of unique.values()) {
        for (const event of EVENTS) for (const t of accountMachine.getTransitionData(state, event as never)) fired.add(t);
      }
      expect(unique.size, `states explored with ${JSON.stringify(policy)}`).toBeGreaterThan(1);
    }
    const missed = all.filter((t) => !fired.has(t)).map((t) => `${pathOf(t.source) || '(root)'} on ${t.eventType}`);
    console.log(
      `account machine graph: ${reached.size} of ${STATE_PATHS.length} state nodes reached (route is transient, ` +
        `it leads to all ${routeTargets.length} modes); ${all.length - missed.length} of ${all.length} event transitions ` +
        `fire in some of ${distinct} distinct states under ${policies.length} policies` +
        (missed.length ? `; never: ${missed.join(', ')}` : ''),
    );
    expect(missed, 'transitions that never fire').toEqual([]);
  });

  it('should leave the transient route at once for every mode', () => {
    const route = accountMachine.root.states.credentials!.states.route!;
    const targets = route.always!.flatMap((t) => (t.target ?? []).map(pathOf));
    expect(targets).toEqual([
      'credentials.chatgptSession.externalTokens',
      'credentials.apiKey',
      'credentials.chatgptSession.chatgpt',
      'credentials.loggedOut',
    ]);
    expect(route.always!.at(-1)!.guard, 'the last branch is unconditional').toBeUndefined();
  });

  it('should reach externalTokens only through an external tokens login', () => {
    const target = 'credentials.chatgptSession.externalTokens';
    expect(STATE_PATHS).toContain(target);
    const paths = explore(NO_POLICY, EVENTS, (s) => activePaths(s.value).includes(target));
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) expect(path.steps.map((s) => s.event.type)).toContain('login.externalTokens');
  });

  it('should never reach apiKey when chatgpt login is forced, whatever the events', () => {
    // A stored key is hidden by the policy anyway; drop it so that only logins could reach apiKey.
    const events = EVENTS.filter((e) => (e as { output?: StoredAuth | null }).output?.kind !== 'apiKey' || !e.type.endsWith('.load'));
    const paths = explore(FORCE_CHATGPT, events);
    const reached = new Set(paths.flatMap((p) => activePaths(p.state.value)));
    expect(STATE_PATHS).toContain('credentials.apiKey');
    expect(reached.has('credentials.loggedOut')).toBe(true);
    expect(reached.has('credentials.chatgptSession.chatgpt')).toBe(true);
    expect(reached.has('credentials.apiKey')).toBe(false);
    for (const path of paths) expect(path.state.context.stored?.kind).not.toBe('apiKey');
  });

  it('should raise credentials.changed when a login succeeds and attempt.abandon when a logout ends a pending one', () => {
    // Only the events of one login, so that each state has one way to be reached.
    const login = [done('load', null), SAMPLES['login.chatgpt']![0]!, SAMPLES['loginAttempt.ready']![0]!];
    const succeeded = explore(NO_POLICY, [...login, SAMPLES['xstate.done.actor.attempt']![0]!], (s) => s.matches({ credentials: { chatgptSession: 'chatgpt' } }));
    expect(succeeded).toHaveLength(1);
    expect(succeeded[0]!.steps.map((s) => s.event.type).slice(-2)).toEqual(['login.chatgpt', 'xstate.done.actor.attempt']);
    expect(succeeded[0]!.state.context.announcement).toEqual({ kind: 'chatgptLogin', loginId: LOGIN_ID });

    const [waiting] = explore(NO_POLICY, login, (s) => s.matches({ login: { chatgptPending: 'waiting' } }));
    const ended = getShortestPaths(accountMachine, {
      events: [SAMPLES.logout![0]!],
      fromState: waiting!.state,
      serializeState: (s) => serializeState(s as Snapshot),
      toState: (s) => s.matches({ credentials: 'clearing' }),
    });
    expect(ended).toHaveLength(1);
    expect(ended[0]!.state.value).toEqual({ credentials: 'clearing', login: 'idle' });
    expect(ended[0]!.state.context.pending).toBeNull();
  });
});
