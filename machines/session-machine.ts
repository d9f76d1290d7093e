import { assign, enqueueActions, fromPromise, sendParent, setup } from 'xstate';
import { isWorkspaceAllowed, toFailure } from './account-guards.js';
import type {
  AuthFailure,
  ClientIdentity,
  Policy,
  RefreshedTokens,
  SessionEvent,
  StoredChatgpt,
  TokenClaims,
  WorkspaceRouting,
} from './account-types.js';
import type { SurfaceCall } from './account-surface.js';
import { notProvided } from './not-provided.js';
import type { Secret } from './secret.js';
import { HOST_REFRESH_TEXT, workspaceRestrictionMessage } from './wording.js';

/**
 * The ChatGPT session: managed credentials (stored, refreshed by us) or host
 * tokens (refreshed by asking the host). One child machine for both modes,
 * so they stop repeating each other. It does the session's work (routing
 * discovery, backend calls, the 401-recovery loop) and reports to the root
 * with `sendParent`; the root alone talks to the wire. Started by the root
 * in `chatgpt` and `externalTokens`, stopped (its effects aborted) when the
 * root leaves them.
 *
 * The 401 loop (issue 8): a backend call that answers 401 is parked, the
 * session refreshes once (managed: redeem the refresh token under the
 * cross-process lock; external: ask the host), and every parked call is
 * retried with the new credentials, or failed with the refresh's failure.
 * However many calls hit a 401 together, there is one refresh in flight.
 */

export type SessionMode = 'managed' | 'external';

export interface SessionInput {
  mode: SessionMode;
  accessToken: Secret;
  accountId: string | null;
  client: ClientIdentity | null;
  policy: Policy;
  /** Managed mode only: what a refresh redeems. */
  stored: StoredChatgpt | null;
  /** Discover at once (a login to announce), instead of on the first read. */
  discoverNow: boolean;
  hostRefreshTimeoutMs: number;
}

export interface DiscoverRoutingInput {
  accessToken: Secret;
  accountId: string | null;
  client: ClientIdentity | null;
}

export interface HostRefreshInput {
  previousAccountId: string | null;
  timeoutMs: number;
}

export interface HostRefreshOutput {
  accessToken: Secret;
  accountId: string;
  planType: string | null;
  claims: TokenClaims | null;
}

/** Why a managed refresh runs (SPEC §8): `forced` for `account/read {refreshToken:true}`, else a 401. */
export type RefreshReason = 'forced' | 'unauthorized_recovery';

export interface RefreshTokensInput {
  stored: StoredChatgpt;
  client: ClientIdentity | null;
  reason: RefreshReason;
}

/** A backend call a request asked for (the result is already in wire shape). */
export type BackendCall =
  | { kind: 'rateLimits'; params: { supportsLunaReserve?: boolean; excludeResetCreditDetails?: boolean } }
  // usage, security setup, workspace messages, reset credit, nudge (SPEC-account-surface §13–§17)
  | SurfaceCall;

export interface BackendJob {
  requestId: string;
  call: BackendCall;
  /** A job retried once after a refresh is not retried again: a second 401 fails it. */
  retried: boolean;
  /**
   * Which credentials the call was sent with (`credentialsVersion` when it started). A 401
   * for credentials a refresh has already replaced needs no refresh: the call is resent.
   */
  credentialsVersion?: number;
}

export interface BackendCallInput extends BackendJob {
  accessToken: Secret;
  accountId: string | null;
  client: ClientIdentity | null;
  /**
   * Managed credentials' `last_refresh` (else `null`): the effect reports a
   * first call whose credentials are due for a refresh (SPEC §8.1: 8 days, or
   * an access token expiring within 5 minutes) as `unauthorized`, so the one
   * refresh of the 401 loop runs before it, under the same lock.
   */
  managedLastRefresh?: string | null;
}

export type BackendCallOutput =
  | { job: BackendJob; status: 'ok'; result: unknown }
  | { job: BackendJob; status: 'unauthorized' | 'failed'; failure: AuthFailure };

interface SessionContext extends SessionInput {
  /** Calls that answered 401, waiting for the refresh to retry them. */
  parked: BackendJob[];
  /** Counts credential changes (each successful refresh), so a late 401 can tell it is stale. */
  credentialsVersion: number;
  refreshReason: RefreshReason;
  /** Discovery itself answered 401 once already: a second 401 fails it instead of looping. */
  discoveryRecovered: boolean;
  /** Discovery runs again after the refresh (it was discovery that hit the 401, or the credentials changed). */
  rediscover: boolean;
  /** Why the last refresh failed (what the parked calls and the root are told). */
  lastFailure: AuthFailure | null;
  /** A refresh asked for while discovery ran; it runs once discovery ends. */
  refreshAfterDiscovery: RefreshReason | null;
}

export type SessionRequest =
  /** The host named itself (`initialize`) after the session started: later calls use it. */
  | { type: 'session.identify'; client: ClientIdentity; hostRefreshTimeoutMs: number }
  | { type: 'session.discover' }
  | { type: 'session.refresh'; reason: RefreshReason }
  | { type: 'session.call'; requestId: string; call: BackendCall };

/**
 * Done and error events of the spawned backend calls (one actor per call and
 * credentials, `call.<requestId>.<credentialsVersion>`). The dots matter:
 * XState matches `xstate.done.actor.call.*` token by token, and a descriptor
 * such as `call-*` (a wildcard inside a token) matches nothing at all.
 */
type CallEvent =
  | { type: `xstate.done.actor.call.${string}`; output: BackendCallOutput }
  | { type: `xstate.error.actor.call.${string}`; error: unknown };

/** The default host deadline (SPEC §9.3); the host may set another in `initialize`. */
export const DEFAULT_HOST_REFRESH_TIMEOUT_MS = 10_000;

const report = (event: SessionEvent) => event;

/**
 * A named action of this chart with its params, enqueued from an
 * `enqueueActions` (whose types cannot name the actions they are declared
 * beside). Named, a report can be replaced with `provide`.
 */
const named = (type: 'reportUnrouted' | 'reportAnswered', params: unknown) => ({ type, params }) as never;

/** The backend-call actor for `job` with the session's current credentials. */
function callOf(context: SessionContext, job: BackendJob) {
  const credentialsVersion = context.credentialsVersion;
  return {
    id: `call.${job.requestId}.${credentialsVersion}`,
    input: {
      ...job,
      credentialsVersion,
      accessToken: context.accessToken,
      accountId: context.accountId,
      client: context.client,
      ...(context.mode === 'managed' ? { managedLastRefresh: context.stored?.lastRefresh ?? null } : {}),
    },
  };
}

export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    input: {} as SessionInput,
    events: {} as SessionRequest | CallEvent,
  },
  actors: {
    discoverRouting: fromPromise<WorkspaceRouting, DiscoverRoutingInput>(notProvided('workspace routing discovery')),
    refreshTokens: fromPromise<StoredChatgpt, RefreshTokensInput>(notProvided('token refresh')),
    requestHostRefresh: fromPromise<HostRefreshOutput, HostRefreshInput>(notProvided('host token refresh')),
    backendCall: fromPromise<BackendCallOutput, BackendCallInput>(notProvided('ChatGPT backend calls')),
  },
  guards: {
    shouldDiscoverNow: ({ context }) => context.discoverNow,
    isManaged: ({ context }) => context.mode === 'managed',
    shouldRediscover: ({ context }) => context.rediscover,
    /** A 401 from discovery is recovered once; the second fails (no refresh loop). */
    isRecoverableDiscoveryFailure: ({ context }, failure: AuthFailure) =>
      failure.kind === 'backendUnauthorized' && !context.discoveryRecovered,
    isRefreshedWorkspaceAllowed: ({ context }, output: HostRefreshOutput) => isWorkspaceAllowed(context.policy, output.accountId),
  },
  delays: {
    hostRefreshTimeout: ({ context }) => context.hostRefreshTimeoutMs,
  },
  actions: {
    reportRouted: sendParent((_, routing: WorkspaceRouting) => report({ type: 'session.routed', routing })),
    reportUnrouted: sendParent((_, failure: AuthFailure) => report({ type: 'session.unrouted', failure })),
    reportRefreshed: sendParent((_, tokens: RefreshedTokens) => report({ type: 'session.refreshed', tokens })),
    reportRefreshFailed: sendParent((_, failure: AuthFailure) => report({ type: 'session.refreshFailed', failure })),
    /** Every report to the root goes through a named action, so the chart can run alone (xstate/graph, test/replay). */
    reportAnswered: sendParent((_, answer: Extract<SessionEvent, { type: 'session.answered' }>) => report(answer)),
    /**
     * A discovery that waited for this refresh (it met a 401) cannot run: it failed, and the
     * root hears so, or a login it was to announce would never report its end.
     */
    reportDiscoveryAbandoned: enqueueActions(({ context, enqueue }) => {
      if (context.rediscover) enqueue(named('reportUnrouted', context.lastFailure!));
    }),
    startCall: enqueueActions(({ context, enqueue }, job: BackendJob) => {
      enqueue.spawnChild('backendCall', callOf(context, job));
    }),
    /**
     * A call finished: answered (ok or failed), resent at once when its 401 was for credentials
     * a refresh has replaced since, or parked for the refresh when it hit its first 401.
     */
    settleCall: enqueueActions(({ context, enqueue }, output: BackendCallOutput) => {
      const { requestId } = output.job;
      const sentWith = output.job.credentialsVersion;
      if (output.status === 'unauthorized' && sentWith !== undefined && sentWith < context.credentialsVersion) {
        enqueue.spawnChild('backendCall', callOf(context, output.job));
        return;
      }
      if (output.status === 'unauthorized' && !output.job.retried) {
        enqueue.assign({ parked: [...context.parked, { ...output.job, retried: true }] });
        return;
      }
      const answer: SessionEvent =
        output.status === 'ok'
          ? { type: 'session.answered', requestId, ok: true, result: output.result }
          : { type: 'session.answered', requestId, ok: false, failure: output.failure };
      enqueue(named('reportAnswered', answer));
    }),
    /** A call's effect threw (a bug): its request is answered all the same. */
    failCall: sendParent((_, requestId: string) =>
      report({ type: 'session.answered', requestId, ok: false, failure: { kind: 'internal' } }),
    ),
    retryParked: enqueueActions(({ context, enqueue }) => {
      for (const job of context.parked) enqueue.spawnChild('backendCall', callOf(context, job));
      enqueue.assign({ parked: [] });
    }),
    failParked: enqueueActions(({ context, enqueue }, failure: AuthFailure) => {
      for (const job of context.parked) {
        enqueue(named('reportAnswered', { type: 'session.answered', requestId: job.requestId, ok: false, failure }));
      }
      enqueue.assign({ parked: [] });
    }),
    useManagedTokens: assign(({ context }, stored: StoredChatgpt) => ({
      stored,
      accessToken: stored.accessToken,
      accountId: stored.accountId,
      rediscover: true,
      credentialsVersion: context.credentialsVersion + 1,
    })),
    // Discovery runs again only when the host's answer changed the credentials (SPEC §9.2).
    useHostTokens: assign(({ context }, output: HostRefreshOutput) => ({
      accessToken: output.accessToken,
      accountId: output.accountId,
      rediscover: context.rediscover || output.accessToken.reveal() !== context.accessToken.reveal() || output.accountId !== context.accountId,
      credentialsVersion: context.credentialsVersion + 1,
    })),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({
    ...input,
    parked: [],
    credentialsVersion: 0,
    refreshReason: 'unauthorized_recovery',
    discoveryRecovered: false,
    rediscover: false,
    lastFailure: null,
    refreshAfterDiscovery: null,
  }),
  initial: 'starting',
  on: {
    'session.identify': {
      actions: assign(({ event }) => ({ client: event.client, hostRefreshTimeoutMs: event.hostRefreshTimeoutMs })),
    },
    // Backend calls run side by side in any state; a 401 parks them for the one refresh.
    'session.call': {
      actions: {
        type: 'startCall',
        params: ({ event }) => ({ requestId: event.requestId, call: event.call, retried: false }),
      },
    },
    'xstate.done.actor.call.*': {
      actions: { type: 'settleCall', params: ({ event }) => (event as Extract<CallEvent, { output: unknown }>).output },
    },
    'xstate.error.actor.call.*': {
      actions: {
        type: 'failCall',
        params: ({ event }) => event.type.replace(/^xstate\.error\.actor\.call\./, '').replace(/\.\d+$/, ''),
      },
    },
  },
  states: {
    starting: {
      always: [{ guard: 'shouldDiscoverNow', target: 'discovering' }, { target: 'ready' }],
    },
    ready: {
      // Parked calls mean a 401: the refresh says so (`refresh_reason`), whatever the last one was for.
      always: {
        guard: ({ context }) => context.parked.length > 0,
        target: 'refreshing',
        actions: assign({ refreshReason: 'unauthorized_recovery' }),
      },
      on: {
        'session.discover': 'discovering',
        'session.refresh': { target: 'refreshing', actions: assign({ refreshReason: ({ event }) => event.reason }) },
      },
    },
    /** One discovery however many reads wait for it (the root keeps the waiters). */
    discovering: {
      entry: assign({ rediscover: false }),
      invoke: {
        id: 'discover',
        src: 'discoverRouting',
        input: ({ context }) => ({ accessToken: context.accessToken, accountId: context.accountId, client: context.client }),
        onDone: [
          {
            // A refresh asked for during the discovery (`account/read {refreshToken:true}`) runs now;
            // the routing is reported after it, with the new tokens, so the read waits for both.
            guard: ({ context }) => context.refreshAfterDiscovery !== null,
            target: 'refreshing',
            actions: assign(({ context }) => ({
              discoveryRecovered: false,
              rediscover: true,
              refreshReason: context.refreshAfterDiscovery!,
              refreshAfterDiscovery: null,
            })),
          },
          {
            target: 'ready',
            actions: [assign({ discoveryRecovered: false }), { type: 'reportRouted', params: ({ event }) => event.output }],
          },
        ],
        onError: [
          {
            guard: { type: 'isRecoverableDiscoveryFailure', params: ({ event }) => toFailure(event.error) },
            target: 'refreshing',
            actions: assign({ discoveryRecovered: true, rediscover: true, refreshReason: 'unauthorized_recovery' }),
          },
          {
            target: 'ready',
            actions: {
              type: 'reportUnrouted',
              // Still unauthorized after the recovery: discovery failed, in discovery's words (SPEC §9.2).
              params: ({ event }) => {
                const failure = toFailure(event.error, 'discoveryFailed');
                return failure.kind === 'backendUnauthorized' ? { kind: 'discoveryFailed' as const } : failure;
              },
            },
          },
        ],
      },
      on: {
        'session.refresh': { actions: assign({ refreshAfterDiscovery: ({ event }) => event.reason }) },
      },
    },
    /**
     * One refresh for every waiter: managed mode redeems its refresh token
     * (SPEC §8), external mode asks the host (SPEC §9.3). Success retries
     * the parked calls and re-runs discovery; failure fails them.
     */
    refreshing: {
      initial: 'choosing',
      // Triggers while a refresh is in flight join it.
      on: { 'session.refresh': {} },
      states: {
        choosing: {
          always: [
            { guard: 'isManaged', target: 'managed' },
            { target: 'external' },
          ],
        },
        managed: {
          invoke: {
            id: 'refreshTokens',
            src: 'refreshTokens',
            input: ({ context }) => ({ stored: context.stored!, client: context.client, reason: context.refreshReason }),
            onDone: {
              target: '#session.refreshed',
              actions: [
                { type: 'useManagedTokens', params: ({ event }) => event.output },
                { type: 'reportRefreshed', params: ({ event }) => ({ kind: 'managed', stored: event.output }) },
              ],
            },
            onError: {
              target: '#session.refreshFailed',
              actions: assign({ lastFailure: ({ event }) => toFailure(event.error, 'refreshFailed') }),
            },
          },
        },
        external: {
          invoke: {
            id: 'hostRefresh',
            src: 'requestHostRefresh',
            input: ({ context }) => ({ previousAccountId: context.accountId, timeoutMs: context.hostRefreshTimeoutMs }),
            onDone: [
              {
                guard: { type: 'isRefreshedWorkspaceAllowed', params: ({ event }) => event.output },
                target: '#session.refreshed',
                actions: [
                  { type: 'useHostTokens', params: ({ event }) => event.output },
                  { type: 'reportRefreshed', params: ({ event }) => ({ kind: 'external', ...event.output }) },
                ],
              },
              {
                // Tokens for a workspace outside the forced ones are refused; the old ones stay (SPEC §9.3).
                target: '#session.refreshFailed',
                actions: assign({
                  lastFailure: ({ context, event }) => ({
                    kind: 'refreshWorkspaceNotAllowed' as const,
                    message: workspaceRestrictionMessage(context.policy, event.output.accountId),
                  }),
                }),
              },
            ],
            onError: {
              target: '#session.refreshFailed',
              actions: assign({ lastFailure: ({ event }) => toFailure(event.error, 'hostRefreshFailed') }),
            },
          },
          // The chart owns the deadline: a host that never answers cannot hold the session (SPEC §9.3).
          after: {
            hostRefreshTimeout: {
              target: '#session.refreshFailed',
              actions: assign({
                lastFailure: ({ context }) => ({
                  kind: 'hostRefreshTimeout' as const,
                  message: HOST_REFRESH_TEXT.timedOut(context.hostRefreshTimeoutMs),
                }),
              }),
            },
          },
        },
      },
    },
    refreshed: {
      entry: 'retryParked',
      always: [{ guard: 'shouldRediscover', target: 'discovering' }, { target: 'ready' }],
    },
    refreshFailed: {
      entry: [
        { type: 'failParked', params: ({ context }) => context.lastFailure! },
        { type: 'reportRefreshFailed', params: ({ context }) => context.lastFailure! },
        'reportDiscoveryAbandoned',
        // The next 401 from discovery may try a refresh again.
        assign({ rediscover: false, discoveryRecovered: false, refreshAfterDiscovery: null }),
      ],
      always: 'ready',
    },
  },
});

export type SessionMachine = typeof sessionMachine;
