import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activeAuthMode, isWorkspaceAllowed } from '../../machines/account-guards.js';
import type { AccountContext, AccountEmitted, Policy, StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { claims, fakeLoginId, startMachine, storedChatgpt, type Fakes, type Gate, type Harness, type RequestInput } from './harness.js';

const WORKSPACES = ['ws-1', 'ws-2', 'ws-3'] as const;
const STABLE_MODES = { apikey: 'apiKey', chatgpt: 'chatgpt', chatgptAuthTokens: 'externalTokens', null: 'loggedOut' } as const;
const BUSY_MODES = ['loading', 'saving', 'clearing'];
const LOGIN_REQUESTS = new Set(['login.apiKey', 'login.externalTokens', 'login.chatgpt']);
/** Effects a step may hold open, so that requests pile up behind them (`load` is held from the start, if at all). */
const GATES = ['save', 'clear', 'discover', 'refresh', 'backend', 'loginStart'] as const satisfies readonly Gate[];
const NOT_PENDING_ID = '00000000-0000-4000-8000-ffffffffffff';
/** Mostly true, so that sequences get past the refusals often enough to reach the deeper states. */
const mostly = fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 });

const requestArb = fc.oneof(
  fc.record({ kind: fc.constant('apiKey' as const), saveFails: fc.boolean() }),
  fc.record({
    kind: fc.constant('chatgpt' as const),
    flow: fc.constantFrom('browser' as const, 'device' as const),
    outcome: fc.constantFrom('hang' as const, 'fail' as const, 'startFail' as const, ...WORKSPACES),
  }),
  fc.record({
    kind: fc.constant('external' as const),
    accountId: fc.constantFrom(...WORKSPACES, ''),
    experimentalApi: mostly,
    decodable: mostly,
    planType: fc.constantFrom(null, 'plus', 'team', 'galaxy'),
  }),
  fc.record({ kind: fc.constant('cancel' as const), matching: fc.boolean() }),
  fc.record({ kind: fc.constant('complete' as const), matching: fc.boolean() }),
  fc.record({ kind: fc.constant('logout' as const) }),
  fc.record({ kind: fc.constant('read' as const), refreshToken: fc.boolean() }),
  fc.record({ kind: fc.constant('status' as const), includeToken: fc.boolean() }),
  fc.record({ kind: fc.constant('rateLimits' as const) }),
);

/**
 * One step: send a request (without waiting for anything), let the effects
 * run, or hold / release an effect. Several sends in a row are in flight together.
 */
const stepArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      request: requestArb,
      /** How the boundary behaves from this request on. */
      discoveryUp: mostly,
      /** The backend starts answering 401 for the current access tokens. */
      revokeTokens: fc.boolean(),
      refreshFails: fc.boolean(),
      hostAnswer: fc.option(fc.constantFrom(...WORKSPACES), { nil: null }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('settle' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hold' as const), gate: fc.constantFrom(...GATES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), gate: fc.constantFrom(...GATES) }) },
);
type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;
type SendStep = Extract<Step, { kind: 'send' }>;

const scenarioArb = fc.record({
  policy: fc.record({
    forcedLoginMethod: fc.constantFrom(null, 'api' as const, 'chatgpt' as const),
    forcedWorkspaceIds: fc.option(fc.subarray([...WORKSPACES], { minLength: 1 }), { nil: null }),
  }),
  stored: fc.constantFrom('none', 'corrupt', 'apiKey', 'ws-1', 'ws-2'),
  holdLoad: fc.boolean(),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 24 }),
});

function secretsIn(value: unknown, out: Secret[] = [], seen = new Set<unknown>()): Secret[] {
  if (value instanceof Secret) out.push(value);
  else if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value);
    for (const v of Object.values(value)) secretsIn(v, out, seen);
  }
  return out;
}

/** Everything a snapshot shows when serialized: the root's and its children's (session, login attempt). */
function serializedSnapshots(m: Harness): string {
  const snapshot = m.actor.getSnapshot();
  const children = Object.values(snapshot.children).map((child) => child?.getSnapshot());
  return JSON.stringify([snapshot, ...children]);
}

/** Invariants that hold after every step, whatever is in flight (SPEC §3.2, §3.7, §9.1). */
function checkInvariants(m: Harness, policy: Policy, secrets: readonly string[]): void {
  const { context } = m.actor.getSnapshot();
  const mode = m.mode();
  const auth = activeAuthMode(context);
  expect(m.unanswered().several, 'no request is answered twice').toEqual([]);
  if (!BUSY_MODES.includes(mode)) {
    expect(mode, 'the credentials state agrees with activeAuthMode(context)').toBe(STABLE_MODES[String(auth) as keyof typeof STABLE_MODES]);
    expect(context.busyWith, 'not busy outside loading, saving, clearing').toBeNull();
  }
  expect(m.pending() === 'idle', 'a login is pending exactly when the login region says so').toBe(context.pending === null);
  expect(m.session() === undefined, 'the session runs exactly with ChatGPT credentials').toBe(mode !== 'chatgpt' && mode !== 'externalTokens');
  for (const [id, child] of Object.entries(m.actor.getSnapshot().children)) {
    expect(child?.getSnapshot().status, `child ${id} is running`).toBe('active');
  }
  if (context.external !== null) {
    expect(context.pending, 'no login pending under host tokens').toBeNull();
    expect(isWorkspaceAllowed(policy, context.external.accountId), 'host tokens honour the forced workspace').toBe(true);
  }
  if (context.stored?.kind === 'chatgpt') {
    expect(isWorkspaceAllowed(policy, context.stored.accountId), 'stored login honours the forced workspace').toBe(true);
  }
  if (policy.forcedLoginMethod === 'chatgpt') {
    expect(mode, 'forced chatgpt: no api key mode').not.toBe('apiKey');
    expect(context.stored?.kind, 'forced chatgpt: no api key').not.toBe('apiKey');
  }
  if (policy.forcedLoginMethod === 'api') {
    expect(['chatgpt', 'externalTokens'], 'forced api: no ChatGPT mode').not.toContain(mode);
    expect(context.pending, 'forced api: no ChatGPT login').toBeNull();
  }
  if (context.routing !== null) {
    expect(['chatgpt', 'chatgptAuthTokens'], 'routing only with ChatGPT credentials').toContain(auth);
  }
  const json = serializedSnapshots(m);
  for (const secret of secrets) expect(json.includes(secret), `secret ${secret} in a serialized snapshot`).toBe(false);
}

/** A read or status answered while the request was being sent must match the state it was answered in. */
function checkImmediateReply(input: RequestInput, reply: Extract<AccountEmitted, { type: 'reply' }>, context: AccountContext): void {
  const mode = activeAuthMode(context);
  if (input.type === 'authStatus.read') expect(reply).toMatchObject({ ok: true, value: { status: { authMode: mode } } });
  if (input.type === 'account.read') {
    if (reply.ok) expect(reply.value).toMatchObject({ kind: 'account', account: { authMode: mode } });
    else expect([reply.failure.kind, mode]).toEqual(['authFileCorrupt', null]);
  }
}

async function runScenario(scenario: typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never): Promise<void> {
  const stored: StoredAuth | null =
    scenario.stored === 'none' || scenario.stored === 'corrupt' ? null
    : scenario.stored === 'apiKey' ? { kind: 'apiKey', apiKey: new Secret('sk-stored-secret') }
    : storedChatgpt(scenario.stored);
  const fakes: Fakes = { stored, loadFails: scenario.stored === 'corrupt' };
  const m = startMachine(scenario.policy, fakes, { hold: scenario.holdLoad ? ['load'] : [] });
  // Login details are secrets too (the auth URL holds the state, the user code is what a phisher wants).
  const secrets = [...secretsIn(stored).map((s) => s.reveal()), 'secret-state', 'ABCD-EFGH'];
  const sent: Array<{ requestId: string; type: string }> = [];
  const started = new Set<string>();
  const ended = new Set<string>();

  m.actor.on('*', (e: AccountEmitted) => {
    if (e.type === 'reply' && e.ok && e.value.kind === 'loginStarted') started.add(e.value.loginId);
    if (e.type === 'login.completed' && e.loginId !== null) {
      expect(started.has(e.loginId), 'completed only for a started login').toBe(true);
      expect(ended.has(e.loginId), 'a login ends once').toBe(false);
      ended.add(e.loginId);
    }
    // Nothing is left after a logout, unless a login sent after it has taken over already.
    if (e.type === 'reply' && e.ok && e.value.kind === 'empty') {
      const at = sent.findIndex((s) => s.requestId === e.requestId);
      if (sent[at]?.type !== 'logout' || sent.slice(at + 1).some((s) => LOGIN_REQUESTS.has(s.type))) return;
      const { context } = m.actor.getSnapshot();
      const { stored: s, external, routing, pending } = context;
      expect({ stored: s, external, routing, pending }, 'nothing left after logout').toEqual({ stored: null, external: null, routing: null, pending: null });
      expect(secretsIn(context), 'no Secret left after logout').toEqual([]);
      expect(m.session(), 'no session after logout').toBeUndefined();
    }
  });

  for (const [i, step] of scenario.steps.entries()) {
    if (step.kind === 'settle') await m.settle();
    else if (step.kind === 'hold') m.hold(step.gate);
    else if (step.kind === 'release') m.release(step.gate);
    else {
      configureBoundary(m, step, i, secrets);
      const input = toRequest(step, i, m.actor.getSnapshot().context, secrets);
      const before = m.emitted.length;
      const reply = m.send(input);
      sent.push({ requestId: reply.requestId, type: input.type });
      const immediate = m.emitted.slice(before).find((e) => e.type === 'reply' && e.requestId === reply.requestId);
      if (immediate?.type === 'reply' && (input.type === 'authStatus.read' || input.type === 'account.read')) {
        checkImmediateReply(input, immediate, m.actor.getSnapshot().context);
      }
    }
    checkInvariants(m, scenario.policy, secrets);
  }

  // Let everything finish: every request is answered exactly once.
  for (const gate of ['load', ...GATES] as const) m.release(gate);
  await m.settle();
  checkInvariants(m, scenario.policy, secrets);
  expect(m.unanswered(), 'every request answered exactly once').toEqual({ none: [], several: [] });
  expect(m.emitted.filter((e) => e.type === 'reply')).toHaveLength(sent.length);
  const pendingId = m.actor.getSnapshot().context.pending?.loginId;
  for (const loginId of started) {
    if (loginId !== pendingId) expect(ended.has(loginId), `login ${loginId} ended without completed`).toBe(true);
  }
  m.actor.stop();
}

describe('account machine properties', () => {
  const numRuns = Number(process.env.FC_RUNS ?? 200);
  it('should keep every invariant and answer every request once through random interleaved requests', { timeout: Math.max(20_000, numRuns * 50) }, async () => {
    const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : Date.now() ^ (Math.random() * 0x7fffffff);
    try {
      await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns, seed });
    } catch (error) {
      // fast-check names the seed and path too; this line says how to replay the whole run.
      console.error(`account machine property failed with seed ${seed}; replay with FC_SEED=${seed}`);
      throw error;
    }
  });
});

/** Sets what storage, HTTP, the host and the login attempt do from this step on. */
function configureBoundary(m: Harness, step: SendStep, i: number, secrets: string[]): void {
  const { fakes } = m;
  fakes.workspaces = step.discoveryUp ? [...WORKSPACES] : [];
  fakes.refreshFails = step.refreshFails ? { kind: 'refreshTokenExpired' } : undefined;
  if (step.revokeTokens) {
    const { context } = m.actor.getSnapshot();
    const current = [context.external?.accessToken, context.stored?.kind === 'chatgpt' ? context.stored.accessToken : undefined];
    fakes.rejectedTokens = [...(fakes.rejectedTokens ?? []), ...current.filter((t) => t !== undefined).map((t) => t.reveal())];
  }
  if (step.hostAnswer === null) fakes.hostRefresh = 'fail';
  else {
    const accessToken = `host-refreshed-secret-${i}-end`;
    secrets.push(accessToken);
    fakes.hostRefresh = { accountId: step.hostAnswer, accessToken };
  }
  const request = step.request;
  if (request.kind === 'apiKey') fakes.saveFails = request.saveFails;
  if (request.kind === 'chatgpt') {
    if (request.outcome === 'hang' || request.outcome === 'fail' || request.outcome === 'startFail') fakes.loginOutcome = request.outcome;
    else {
      const login = storedChatgpt(request.outcome, `-login-${i}`);
      fakes.loginOutcome = login;
      secrets.push(...secretsIn(login).map((s) => s.reveal()));
    }
  }
}

function toRequest(step: SendStep, i: number, context: AccountContext, secrets: string[]): RequestInput {
  const request = step.request;
  const pendingId = context.pending?.loginId;
  switch (request.kind) {
    case 'apiKey': {
      const key = `sk-secret-${i}-end`;
      secrets.push(key);
      return { type: 'login.apiKey', apiKey: new Secret(key) };
    }
    case 'chatgpt':
      return { type: 'login.chatgpt', flow: request.flow, loginId: fakeLoginId() };
    case 'external': {
      const token = `access-secret-${i}-end`;
      secrets.push(token);
      return {
        type: 'login.externalTokens',
        experimentalApi: request.experimentalApi,
        accessToken: new Secret(token),
        accountId: request.accountId,
        planType: request.planType,
        claims: request.decodable ? claims(request.accountId) : null,
      };
    }
    case 'cancel':
      return { type: 'login.cancel', loginId: request.matching && pendingId ? pendingId : NOT_PENDING_ID };
    case 'complete': {
      const url = `http://localhost:1455/auth/callback?code=code-secret-${i}-end&state=x`;
      secrets.push(`code-secret-${i}-end`);
      return { type: 'login.complete', loginId: request.matching && pendingId ? pendingId : NOT_PENDING_ID, redirectUrl: new Secret(url) };
    }
    case 'logout':
      return { type: 'logout' };
    case 'read':
      return { type: 'account.read', refreshToken: request.refreshToken };
    case 'status':
      return { type: 'authStatus.read', includeToken: request.includeToken };
    case 'rateLimits':
      return { type: 'rateLimits.read', params: {} };
  }
}
