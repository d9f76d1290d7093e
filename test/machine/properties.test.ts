import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activeAuthMode, isWorkspaceAllowed } from '../../machines/account-guards.js';
import type { AccountContext, Policy, StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { claims, fakeLoginId, startMachine, storedChatgpt, type RequestInput } from './harness.js';

const WORKSPACES = ['ws-1', 'ws-2', 'ws-3'] as const;
const MODES = ['loggedOut', 'apiKey', 'chatgptPending', 'chatgpt', 'externalTokens'] as const;

const stepArb = fc.oneof(
  fc.record({ kind: fc.constant('apiKey' as const) }),
  fc.record({ kind: fc.constant('chatgpt' as const), flow: fc.constantFrom('browser' as const, 'device' as const) }),
  fc.record({
    kind: fc.constant('external' as const),
    accountId: fc.constantFrom(...WORKSPACES, ''),
    experimentalApi: fc.boolean(),
    decodable: fc.boolean(),
    planType: fc.constantFrom(null, 'plus', 'team', 'galaxy'),
  }),
  fc.record({ kind: fc.constant('cancel' as const), matching: fc.boolean() }),
  fc.record({ kind: fc.constant('logout' as const) }),
  fc.record({ kind: fc.constant('read' as const) }),
  fc.record({ kind: fc.constant('status' as const), includeToken: fc.boolean() }),
  fc.record({ kind: fc.constant('rateLimits' as const) }),
);
type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

const scenarioArb = fc.record({
  policy: fc.record({
    forcedLoginMethod: fc.constantFrom(null, 'api' as const, 'chatgpt' as const),
    forcedWorkspaceIds: fc.option(fc.subarray([...WORKSPACES], { minLength: 1 }), { nil: null }),
  }),
  stored: fc.constantFrom('none', 'apiKey', 'ws-1', 'ws-2'),
  saveFails: fc.boolean(),
  workspaces: fc.subarray([...WORKSPACES]),
  loginOutcome: fc.constantFrom('hang', 'ws-1', 'ws-2', 'fail'),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 14 }),
});

/** Every `Secret` reachable from a value, revealed. */
function revealedSecrets(value: unknown, out: string[] = [], seen = new Set<unknown>()): string[] {
  if (value instanceof Secret) out.push(value.reveal());
  else if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value);
    for (const v of Object.values(value)) revealedSecrets(v, out, seen);
  }
  return out;
}

function topMode(value: unknown): string {
  return typeof value === 'string' ? value : Object.keys(value as object)[0]!;
}

/** The invariants of SPEC §3.2/§3.7/§9.1 that must hold in every idle state. */
function checkInvariants(mode: string, context: AccountContext, policy: Policy, secretsSent: string[], snapshotJson: string): void {
  expect(MODES).toContain(mode);
  const expected =
    context.external !== null ? 'externalTokens'
    : context.pending !== null ? 'chatgptPending'
    : { apikey: 'apiKey', chatgpt: 'chatgpt', null: 'loggedOut' }[String(activeAuthMode(context))];
  expect(mode).toBe(expected);
  if (context.external !== null) expect(['chatgpt', 'chatgptPending']).not.toContain(mode);
  if (policy.forcedLoginMethod === 'chatgpt') expect(mode).not.toBe('apiKey');
  if (policy.forcedLoginMethod === 'api') expect(['externalTokens', 'chatgpt', 'chatgptPending']).not.toContain(mode);
  if (context.external !== null) expect(isWorkspaceAllowed(policy, context.external.accountId)).toBe(true);
  if (context.stored?.kind === 'chatgpt') expect(isWorkspaceAllowed(policy, context.stored.accountId)).toBe(true);
  for (const secret of secretsSent) expect(snapshotJson).not.toContain(secret);
}

describe('account machine properties', () => {
  it('keeps every invariant through random request sequences', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const stored: StoredAuth | null =
          scenario.stored === 'none' ? null
          : scenario.stored === 'apiKey' ? { kind: 'apiKey', apiKey: new Secret('sk-stored-secret') }
          : storedChatgpt(scenario.stored);
        const m = startMachine(scenario.policy, {
          stored,
          saveFails: scenario.saveFails,
          workspaces: scenario.workspaces,
          loginOutcome: scenario.loginOutcome === 'hang' || scenario.loginOutcome === 'fail' ? scenario.loginOutcome : storedChatgpt(scenario.loginOutcome),
        });
        const secrets = ['sk-stored-secret', 'access-token-ws-1', 'refresh-token-ws-2'];
        await m.idle();

        for (const [i, step] of scenario.steps.entries()) {
          const input = toRequest(step, i, m.actor.getSnapshot().context, secrets);
          const before = m.emitted.length;
          const reply = await m.request(input);
          const snapshot = m.actor.getSnapshot();
          // Exactly one reply per request.
          expect(m.emitted.slice(before).filter((e) => e.type === 'reply' && e.requestId === reply.requestId)).toHaveLength(1);
          checkInvariants(topMode(snapshot.value), snapshot.context, scenario.policy, secrets, JSON.stringify(snapshot));
          if (step.kind === 'logout' && reply.ok) {
            expect(topMode(snapshot.value)).toBe('loggedOut');
            expect(revealedSecrets(snapshot.context)).toEqual([]);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

function toRequest(step: Step, i: number, context: AccountContext, secrets: string[]): RequestInput {
  switch (step.kind) {
    case 'apiKey': {
      const key = `sk-secret-${i}-${Math.random().toString(36).slice(2)}`;
      secrets.push(key);
      return { type: 'login.apiKey', apiKey: new Secret(key) };
    }
    case 'chatgpt':
      return { type: 'login.chatgpt', flow: step.flow };
    case 'external': {
      const token = `access-secret-${i}-${Math.random().toString(36).slice(2)}`;
      secrets.push(token);
      return {
        type: 'login.externalTokens',
        experimentalApi: step.experimentalApi,
        accessToken: new Secret(token),
        accountId: step.accountId,
        planType: step.planType,
        claims: step.decodable ? claims(step.accountId) : null,
      };
    }
    case 'cancel':
      return { type: 'login.cancel', loginId: step.matching && context.pending ? context.pending.loginId : fakeLoginId() };
    case 'logout':
      return { type: 'logout' };
    case 'read':
      return { type: 'account.read', refreshToken: false };
    case 'status':
      return { type: 'authStatus.read', includeToken: step.includeToken };
    case 'rateLimits':
      return { type: 'rateLimits.read' };
  }
}
