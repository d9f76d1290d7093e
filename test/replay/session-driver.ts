import { fromPromise } from 'xstate';
import type { AccountEvent, ClientIdentity, Policy } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { sessionMachine, type BackendCallOutput, type SessionInput } from '../../machines/session-machine.js';
import { claims, storedChatgpt } from '../machine/harness.js';
import { SAMPLES as ACCOUNT } from '../machine/account-samples.js';
import { ACCOUNT_DRIVERS, answerCalls, type Driver } from './account-driver.js';
import type { GeneratedStep } from './generate.js';
import type { Replay } from './replay.js';

/**
 * The session child, on its own: its events are the root's requests
 * (`session.identify`, `.discover`, `.refresh`, `.call`) and the ends of
 * its effects (discovery, a managed refresh, the host's answer or its
 * deadline, each backend call). In the real world the root's requests come
 * from the host's requests on stdin, and the effects end when the replay
 * lets the held backend, issuer or host answer.
 */
export type SessionEvent = { type: string } & Record<string, unknown>;

export interface SessionStart {
  input: SessionInput;
  /** What the world does first: host tokens, or stored credentials loaded (and `initialize` after them when `late`). */
  world: 'stored' | 'storedThenInitialize' | 'hostTokens';
}

const client: ClientIdentity = { originator: 'codex', userAgent: 'codex/1' };
const REQUEST = 'r';
/** A call's 401 is for the credentials in use (never for ones a refresh replaced): it parks the call. */
const CURRENT = Number.MAX_SAFE_INTEGER;
const job = { requestId: REQUEST, call: { kind: 'rateLimits', params: {} }, retried: false, credentialsVersion: CURRENT } as const;
const callDone = (output: { status: BackendCallOutput['status']; result?: unknown; failure?: object }) => ({ type: `xstate.done.actor.call.${REQUEST}.0`, output: { job, ...output } });
const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}`, output });
const error = (id: string, failure: object) => ({ type: `xstate.error.actor.${id}`, error: failure });
/** The host's answer: new tokens, or the very ones the session has (the external input's `t`). */
const hostAnswer = (accountId: string, token: 'new' | 'same' = 'new') =>
  done('hostRefresh', { accessToken: new Secret(token === 'same' ? 't' : 't2'), accountId, planType: null, claims: claims(accountId) });

export const SESSION_EVENTS: SessionEvent[] = [
  { type: 'session.discover' },
  { type: 'session.refresh', reason: 'forced' },
  { type: 'session.call', requestId: REQUEST, call: job.call },
  callDone({ status: 'ok', result: {} }),
  callDone({ status: 'unauthorized', failure: { kind: 'backendUnauthorized' } }),
  done('discover', { accountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT', workspaceName: 'Acme' }),
  error('discover', { kind: 'backendUnauthorized', message: '401' }),
  error('discover', { kind: 'discoveryFailed', message: '503' }),
  done('refreshTokens', storedChatgpt('ws-1', '-r1')),
  error('refreshTokens', { kind: 'refreshFailed', message: '502' }),
  hostAnswer('ws-1'),
  hostAnswer('ws-1', 'same'),
  hostAnswer('ws-2'),
  error('hostRefresh', { kind: 'hostRefreshFailed', message: 'no tokens' }),
  { type: 'xstate.after.hostRefreshTimeout.session.refreshing.external' },
];

export const SESSION_IDENTIFY: SessionEvent = { type: 'session.identify', client, hostRefreshTimeoutMs: 10_000 };

const base = { client: null, hostRefreshTimeoutMs: 10_000 };
const stored = storedChatgpt('ws-1');
const FORCE_WS_1: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] };
const managed: SessionInput = { ...base, mode: 'managed', accessToken: stored.accessToken, accountId: 'ws-1', policy: { forcedLoginMethod: null, forcedWorkspaceIds: null }, stored, discoverNow: false };

export const SESSION_STARTS: SessionStart[] = [
  { input: managed, world: 'stored' },
  { input: managed, world: 'storedThenInitialize' },
  { input: { ...base, mode: 'external', accessToken: new Secret('t'), accountId: 'ws-1', policy: FORCE_WS_1, stored: null, discoverNow: true }, world: 'hostTokens' },
];

/** The session chart alone: effects never end on their own, reports to the (absent) parent go nowhere. */
export const inertSession = sessionMachine.provide({
  actors: {
    discoverRouting: fromPromise(() => new Promise<never>(() => {})),
    refreshTokens: fromPromise(() => new Promise<never>(() => {})),
    requestHostRefresh: fromPromise(() => new Promise<never>(() => {})),
    backendCall: fromPromise(() => new Promise<never>(() => {})),
  } as never,
  actions: {
    reportRouted: () => {},
    reportUnrouted: () => {},
    reportRefreshed: () => {},
    reportRefreshFailed: () => {},
    reportAnswered: () => {},
    failCall: () => {},
  } as never,
});

/**
 * What the real world can do, which the session chart cannot know: the root
 * asks for a discovery only while it has no routing (none succeeded since
 * the last new tokens), asks for a refresh only for stored credentials, and
 * a call's answer needs a call in flight.
 */
export function sessionPathAdmissible(steps: GeneratedStep<SessionEvent>[], start: SessionStart): boolean {
  let routed = false;
  /** The one call in flight (the world answers every held request of a call at once): whether it is a retry. */
  let call: { retried: boolean } | null = null;
  let parked = false;
  for (const { event, keys } of steps) {
    if (event.type === 'session.discover' && routed) return false;
    if (event.type === 'session.refresh' && start.input.mode !== 'managed') return false;
    if (event.type === 'session.call') {
      if (call || parked) return false;
      call = { retried: false };
    }
    if (event.type.startsWith('xstate.done.actor.call.')) {
      if (!call) return false;
      const unauthorized = (event.output as { status: string }).status === 'unauthorized';
      // A retry that meets a 401 again is answered with the failure; the sample would park it.
      if (unauthorized && call.retried) return false;
      parked = unauthorized;
      call = null;
    }
    for (const key of keys) {
      if (key === 'session.discovering on xstate.done.actor.discover #1') routed = true;
      if (key.startsWith('session.refreshing.managed on xstate.done') || key === 'session.refreshing.external on xstate.done.actor.hostRefresh #0') {
        routed = false;
        if (parked) call = { retried: true };
        parked = false;
      }
      if (/refreshing\.(managed|external) on (xstate\.error|xstate\.after|xstate\.done\.actor\.hostRefresh #1)/.test(key)) parked = false;
    }
  }
  return true;
}

const output = (e: SessionEvent) => e.output as any;

async function discovery(r: Replay) {
  if (!(await r.heldSoon('discover'))) throw new Error('no discovery is in flight');
}

export const SESSION_DRIVERS: Record<string, Driver<SessionEvent>> = {
  'session.identify': (r) => ACCOUNT_DRIVERS['client.identify']!(r, ACCOUNT['client.identify']![0]!, []),
  'session.discover': (r) => void r.request('account/read', { refreshToken: false }),
  'session.refresh': (r) => void r.request('account/read', { refreshToken: true }),
  'session.call': (r) => void r.request('account/rateLimits/read'),
  'xstate.done.actor.call.*': async (r, e) => {
    if (!(await r.heldSoon('call'))) throw new Error('no backend call is in flight');
    await answerCalls(r, output(e).status === 'ok' ? true : 'unauthorized');
  },
  'xstate.done.actor.discover': async (r) => {
    await discovery(r);
    r.release('discover', true);
  },
  'xstate.error.actor.discover': async (r, e) => {
    await discovery(r);
    r.release('discover', (e.error as { kind: string }).kind === 'backendUnauthorized' ? 'unauthorized' : false);
  },
  'xstate.done.actor.refreshTokens': (r) => r.answerRefresh({ accountId: 'ws-1' }),
  'xstate.error.actor.refreshTokens': (r) => r.answerRefresh('error'),
  'xstate.done.actor.hostRefresh': (r, e, _, before) => {
    const same = output(e).accessToken.reveal() === before!.context.accessToken.reveal();
    return r.answerRefresh({ accountId: output(e).accountId, same });
  },
  'xstate.error.actor.hostRefresh': (r) => r.answerRefresh('error'),
  // The short deadline the world was started with runs out (SESSION_DEADLINE_MS).
  'xstate.after.hostRefreshTimeout.session.refreshing.external': () => {},
};

/** The host's deadline in worlds whose path lets it run out (others answer well within it). */
export const HOST_DEADLINE_MS = 1_500;

/** Puts the server in the path's starting session, through the account drivers. */
export async function startSession(r: Replay, start: SessionStart, steps: SessionEvent[]): Promise<void> {
  const timesOut = steps.some((e) => e.type.startsWith('xstate.after.hostRefreshTimeout'));
  await r.start({
    policy: start.input.policy,
    env: timesOut ? { CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS: String(HOST_DEADLINE_MS) } : {},
  });
  const account = (event: AccountEvent) => ACCOUNT_DRIVERS[event.type]!(r, event, []);
  const [loadNull, , loadChatgpt] = ACCOUNT['xstate.done.actor.load']!;
  if (start.world !== 'storedThenInitialize') await account(ACCOUNT['client.identify']![0]!);
  if (start.world === 'hostTokens') {
    await account(loadNull!);
    await account(ACCOUNT['login.externalTokens']![0]!);
  } else await account(loadChatgpt!);
  // The session has started (its first transitions are the path's first step's to check).
  await r.w.took(r.s, start.input.discoverNow ? 'session.starting on always #0' : 'session.starting on always #1');
}
