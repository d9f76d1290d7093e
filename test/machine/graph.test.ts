import { describe, expect, it } from 'vitest';
import type { AnyStateNode } from 'xstate';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { accountMachine } from '../../machines/account-machine.js';
import type { AccountEvent, Policy, StoredAuth } from '../../machines/account-types.js';
import { done, EVENTS, FORCE_API, FORCE_CHATGPT, FORCE_WS_2, LOGIN_ID, RAISED, SAMPLES, serializeState, type Snapshot } from './account-samples.js';
import { NO_POLICY } from './harness.js';

// The root chart explored by xstate/graph: every event the chart handles is
// derived from its definition (the `on` of every state node, invoke done and
// error events included), and each needs sample payloads from SAMPLES (account-samples.ts).
// A renamed state, event or invoke id makes the table and the chart disagree,
// so coverage cannot silently drop.

const ALL_NODES: AnyStateNode[] = [accountMachine.root, ...getStateNodes(accountMachine.root)];
const pathOf = (node: AnyStateNode) => node.path.join('.');
const STATE_PATHS = ALL_NODES.map(pathOf).filter((p) => p !== '');

/** Every event type some state node of the chart handles, done and error events of invokes included. */
function handledEventTypes(): Set<string> {
  const types = new Set<string>();
  for (const node of ALL_NODES) for (const type of Object.keys(node.on)) types.add(type);
  return types;
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
