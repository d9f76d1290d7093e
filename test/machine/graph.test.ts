import { describe, expect, it } from 'vitest';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { accountMachine } from '../../machines/account-machine.js';
import type { AccountEvent, StoredAuth, WorkspaceRouting } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { claims, NO_POLICY, storedChatgpt } from './harness.js';

const apiKey: StoredAuth = { kind: 'apiKey', apiKey: new Secret('sk') };
const routing: WorkspaceRouting = { accountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT', workspaceName: 'Acme' };
const failure = { kind: 'storageFailed', message: 'x' };
const LOGIN_ID = '00000000-0000-4000-8000-000000000001';

/** Done/error events of each invoke, by id, as the running actors would send them. */
const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}`, output }) as unknown as AccountEvent;
const error = (id: string) => ({ type: `xstate.error.actor.${id}`, error: failure }) as unknown as AccountEvent;

const loadStoredApiKey = done('load', apiKey);

const EVENTS: AccountEvent[] = [
  done('load', null),
  loadStoredApiKey,
  done('load', storedChatgpt('ws-1')),
  error('load'),
  { type: 'login.apiKey', requestId: 'r', apiKey: new Secret('sk') },
  done('saveApiKey', apiKey),
  error('saveApiKey'),
  { type: 'login.chatgpt', requestId: 'r', flow: 'browser' },
  done('startLogin', { loginId: LOGIN_ID, details: { authUrl: 'u' } }),
  error('startLogin'),
  done('awaitLogin', storedChatgpt('ws-1')),
  error('awaitLogin'),
  { type: 'login.cancel', requestId: 'r', loginId: LOGIN_ID },
  {
    type: 'login.externalTokens',
    requestId: 'r',
    experimentalApi: true,
    accessToken: new Secret('t'),
    accountId: 'ws-1',
    planType: null,
    claims: claims('ws-1'),
  },
  done('verifyExternal', routing),
  error('verifyExternal'),
  { type: 'account.read', requestId: 'r', refreshToken: false },
  done('discoverExternal', routing),
  error('discoverExternal'),
  done('discoverStored', routing),
  error('discoverStored'),
  { type: 'auth.unauthorized' },
  done('refreshTokens', storedChatgpt('ws-1')),
  error('refreshTokens'),
  done('hostRefresh', { accessToken: new Secret('t2'), accountId: 'ws-1', planType: 'team', claims: claims('ws-1') }),
  error('hostRefresh'),
  { type: 'logout', requestId: 'r' },
  done('clear'),
  error('clear'),
];

/** `{ a: { b: {} } }` → `['a', 'a.b']` */
function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => [prefix + k, ...activePaths(v, `${prefix}${k}.`)]);
}

describe('account machine graph', () => {
  it('should reach every state node but the transient settle by some path', () => {
    const paths = getShortestPaths(accountMachine, { events: EVENTS, input: { policy: NO_POLICY } });
    const reached = new Set(paths.flatMap((p) => activePaths(p.state.value)));
    const all = getStateNodes(accountMachine.root)
      .map((n) => n.path.join('.'))
      .filter((p) => p !== '' && p !== 'settle');
    expect(all.length).toBeGreaterThanOrEqual(16);
    expect(all.filter((p) => !reached.has(p))).toEqual([]);
  });

  it('should leave the transient settle at once for every mode', () => {
    const settle = accountMachine.root.states.settle!;
    const targets = settle.always!.flatMap((t) => (t.target ?? []).map((n) => n.path.join('.')));
    expect(targets).toEqual(['externalTokens', 'chatgptPending', 'apiKey', 'chatgpt', 'loggedOut']);
    expect(settle.always!.at(-1)!.guard, 'the last branch is unconditional').toBeUndefined();
  });

  it('should reach externalTokens only through an external tokens login', () => {
    const paths = getShortestPaths(accountMachine, {
      events: EVENTS,
      input: { policy: NO_POLICY },
      toState: (s) => activePaths(s.value).includes('externalTokens'),
    });
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) expect(path.steps.map((s) => s.event.type)).toContain('login.externalTokens');
  });

  it('should never reach apiKey when chatgpt login is forced, whatever the events', () => {
    const paths = getShortestPaths(accountMachine, {
      // A stored key is hidden by the policy anyway; drop it so only logins could reach apiKey.
      events: EVENTS.filter((e) => e !== loadStoredApiKey),
      input: { policy: { forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null } },
    });
    const reached = new Set(paths.flatMap((p) => activePaths(p.state.value)));
    expect(reached.has('loggedOut')).toBe(true);
    expect(reached.has('apiKey')).toBe(false);
  });
});
