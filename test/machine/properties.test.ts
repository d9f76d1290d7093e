import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activeAuthMode, isWorkspaceAllowed } from '../../machines/account-guards.js';
import type { AccountContext, AccountEmitted, Policy, StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { claims, startMachine, storedChatgpt, type Fakes, type RequestInput } from './harness.js';

const WORKSPACES = ['ws-1', 'ws-2', 'ws-3'] as const;
const MODES = ['loggedOut', 'apiKey', 'chatgptPending', 'chatgpt', 'externalTokens'] as const;
const MODE_OF = { apikey: 'apiKey', chatgpt: 'chatgpt', chatgptAuthTokens: 'externalTokens', null: 'loggedOut' } as const;
const NOT_PENDING_ID = '00000000-0000-4000-8000-ffffffffffff';
/** Mostly true, so that sequences get past the refusals often enough to reach the deeper states. */
const mostly = fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 });

/** One request (or the one non-request event the adapter may send while idle), plus what the boundary does meanwhile. */
const stepArb = fc.record({
  request: fc.oneof(
    fc.record({ kind: fc.constant('apiKey' as const), saveFails: fc.boolean() }),
    fc.record({
      kind: fc.constant('chatgpt' as const),
      flow: fc.constantFrom('browser' as const, 'device' as const),
      outcome: fc.constantFrom('hang' as const, 'fail' as const, ...WORKSPACES),
    }),
    fc.record({
      kind: fc.constant('external' as const),
      accountId: fc.constantFrom(...WORKSPACES, ''),
      experimentalApi: mostly,
      decodable: mostly,
      planType: fc.constantFrom(null, 'plus', 'team', 'galaxy'),
    }),
    fc.record({ kind: fc.constant('cancel' as const), matching: fc.boolean() }),
    fc.record({ kind: fc.constant('logout' as const) }),
    fc.record({ kind: fc.constant('read' as const) }),
    fc.record({ kind: fc.constant('status' as const), includeToken: fc.boolean() }),
    fc.record({ kind: fc.constant('rateLimits' as const) }),
    fc.record({ kind: fc.constant('unauthorized' as const), hostAccountId: fc.option(fc.constantFrom(...WORKSPACES), { nil: null }) }),
  ),
  /** Whether workspace routing discovery answers during this step. */
  discoveryUp: fc.boolean(),
});
type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

const scenarioArb = fc.record({
  policy: fc.record({
    forcedLoginMethod: fc.constantFrom(null, 'api' as const, 'chatgpt' as const),
    forcedWorkspaceIds: fc.option(fc.subarray([...WORKSPACES], { minLength: 1 }), { nil: null }),
  }),
  stored: fc.constantFrom('none', 'corrupt', 'apiKey', 'ws-1', 'ws-2'),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 14 }),
});

/** Every string reachable from a value, `Secret`s revealed. */
function stringsIn(value: unknown, out: string[] = [], seen = new Set<unknown>()): string[] {
  if (value instanceof Secret) out.push(value.reveal());
  else if (typeof value === 'string') out.push(value);
  else if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value);
    for (const v of Object.values(value)) stringsIn(v, out, seen);
  }
  return out;
}

function secretsIn(value: unknown, out: Secret[] = [], seen = new Set<unknown>()): Secret[] {
  if (value instanceof Secret) out.push(value);
  else if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value);
    for (const v of Object.values(value)) secretsIn(v, out, seen);
  }
  return out;
}

const topMode = (value: unknown): string => (typeof value === 'string' ? value : Object.keys(value as object)[0]!);

/** The invariants of SPEC §3.2/§3.7/§9.1 that hold whenever the machine is idle. */
function checkIdleInvariants(mode: string, context: AccountContext, policy: Policy): void {
  expect(MODES).toContain(mode);
  const expected = context.pending !== null && context.external === null ? 'chatgptPending' : MODE_OF[String(activeAuthMode(context)) as keyof typeof MODE_OF];
  expect(mode, 'the mode agrees with activeAuthMode(context)').toBe(expected);
  if (context.external !== null) {
    expect(['chatgpt', 'chatgptPending'], 'host tokens exclude managed logins').not.toContain(mode);
    expect(context.pending, 'no login pending under host tokens').toBeNull();
    expect(isWorkspaceAllowed(policy, context.external.accountId), 'host tokens honour the forced workspace').toBe(true);
  }
  if (policy.forcedLoginMethod === 'chatgpt') expect(mode, 'forced chatgpt').not.toBe('apiKey');
  if (policy.forcedLoginMethod === 'api') expect(['externalTokens', 'chatgpt', 'chatgptPending'], 'forced api').not.toContain(mode);
  if (context.stored?.kind === 'chatgpt') expect(isWorkspaceAllowed(policy, context.stored.accountId), 'stored login honours the forced workspace').toBe(true);
  if (context.routing !== null) {
    expect(['chatgpt', 'chatgptAuthTokens'], 'routing only with ChatGPT credentials').toContain(activeAuthMode(context));
  }
}

/** What a read or status reply says must match the state it was answered from. */
function checkReplyAgrees(input: RequestInput, reply: Extract<AccountEmitted, { type: 'reply' }>, context: AccountContext): void {
  const mode = activeAuthMode(context);
  if (input.type === 'authStatus.read') {
    expect(reply).toMatchObject({ ok: true, value: { status: { authMode: mode } } });
  }
  if (input.type === 'account.read') {
    if (reply.ok) expect(reply.value).toMatchObject({ kind: 'account', account: { authMode: mode } });
    else if (mode === null) expect(reply.failure.kind).toBe('authFileCorrupt');
    else {
      expect(['chatgpt', 'chatgptAuthTokens']).toContain(mode);
      expect(['discoveryFailed', 'accountIdMissing']).toContain(reply.failure.kind);
    }
  }
}

describe('account machine properties', () => {
  it('should keep every invariant through random request sequences', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const stored: StoredAuth | null =
          scenario.stored === 'none' || scenario.stored === 'corrupt' ? null
          : scenario.stored === 'apiKey' ? { kind: 'apiKey', apiKey: new Secret('sk-stored-secret') }
          : storedChatgpt(scenario.stored);
        const fakes: Fakes = { stored, loadFails: scenario.stored === 'corrupt' };
        const m = startMachine(scenario.policy, fakes);
        const secrets = secretsIn(stored).map((s) => s.reveal());
        const started = new Set<string>();
        const ended = new Set<string>();
        let requests = 0;
        await m.settle();

        for (const [i, step] of scenario.steps.entries()) {
          const { context } = m.actor.getSnapshot();
          configureBoundary(fakes, step, i, secrets);
          const before = m.emitted.length;
          const input = toRequest(step, i, context, secrets);

          if (input === null) {
            m.actor.send({ type: 'auth.unauthorized' });
          } else {
            requests++;
            const reply = await m.request(input);
            const replies = m.emitted.slice(before).filter((e) => e.type === 'reply');
            expect(replies, 'exactly one reply per request').toEqual([reply]);
            checkReplyAgrees(input, reply, input.type === 'account.read' ? m.actor.getSnapshot().context : context);
            if (reply.ok && reply.value.kind === 'loginStarted') started.add(reply.value.loginId);
            if (input.type === 'logout' && reply.ok) {
              const after = m.actor.getSnapshot();
              expect(topMode(after.value)).toBe('loggedOut');
              const { stored, external, routing, pending } = after.context;
              expect({ stored, external, routing, pending }).toEqual({ stored: null, external: null, routing: null, pending: null });
              expect(secretsIn(after.context), 'no Secret left after logout').toEqual([]);
              const left = stringsIn(after.context);
              for (const secret of secrets) expect(left.some((s) => s.includes(secret)), `secret ${secret} left after logout`).toBe(false);
            }
          }
          await m.settle();
          for (const e of m.emitted.slice(before)) {
            if (e.type !== 'login.completed' || e.loginId === null) continue;
            expect(started.has(e.loginId), 'completed only for a started login').toBe(true);
            expect(ended.has(e.loginId), 'a login ends once').toBe(false);
            ended.add(e.loginId);
          }
          if (input === null) expect(m.emitted.slice(before).filter((e) => e.type === 'reply'), 'no reply without a request').toEqual([]);

          const snapshot = m.actor.getSnapshot();
          for (const loginId of started) {
            if (loginId !== snapshot.context.pending?.loginId) expect(ended.has(loginId), `login ${loginId} ended without completed`).toBe(true);
          }
          checkIdleInvariants(topMode(snapshot.value), snapshot.context, scenario.policy);
          const json = JSON.stringify(snapshot);
          for (const secret of secrets) expect(json.includes(secret), `secret ${secret} in the serialized snapshot`).toBe(false);
        }
        expect(m.emitted.filter((e) => e.type === 'reply')).toHaveLength(requests);
      }),
      { numRuns: 200 },
    );
  });
});

/** Sets what storage and HTTP do during this step. */
function configureBoundary(fakes: Fakes, step: Step, i: number, secrets: string[]): void {
  fakes.workspaces = step.discoveryUp ? [...WORKSPACES] : [];
  const request = step.request;
  if (request.kind === 'apiKey') fakes.saveFails = request.saveFails;
  if (request.kind === 'chatgpt') {
    if (request.outcome === 'hang' || request.outcome === 'fail') fakes.loginOutcome = request.outcome;
    else {
      const login = storedChatgpt(request.outcome);
      fakes.loginOutcome = login;
      secrets.push(...secretsIn(login).map((s) => s.reveal()));
    }
  }
  if (request.kind === 'unauthorized') {
    if (request.hostAccountId === null) fakes.hostRefresh = 'fail';
    else {
      const accessToken = `host-refreshed-secret-${i}-end`;
      secrets.push(accessToken);
      fakes.hostRefresh = { accountId: request.hostAccountId, accessToken };
    }
  }
}

/** The request event for a step; `null` for the non-request `auth.unauthorized`. */
function toRequest(step: Step, i: number, context: AccountContext, secrets: string[]): RequestInput | null {
  const request = step.request;
  switch (request.kind) {
    case 'apiKey': {
      const key = `sk-secret-${i}-end`;
      secrets.push(key);
      return { type: 'login.apiKey', apiKey: new Secret(key) };
    }
    case 'chatgpt':
      return { type: 'login.chatgpt', flow: request.flow };
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
      return { type: 'login.cancel', loginId: request.matching && context.pending ? context.pending.loginId : NOT_PENDING_ID };
    case 'logout':
      return { type: 'logout' };
    case 'read':
      return { type: 'account.read', refreshToken: false };
    case 'status':
      return { type: 'authStatus.read', includeToken: request.includeToken };
    case 'rateLimits':
      return { type: 'rateLimits.read' };
    case 'unauthorized':
      return null;
  }
}
