import { fromPromise, sendParent, setup } from 'xstate';
import type {
  AuthFailure,
  ClientIdentity,
  RefreshedTokens,
  SessionEvent,
  StoredChatgpt,
  TokenClaims,
  WorkspaceRouting,
} from './account-types.js';
import { toFailure } from './account-guards.js';
import { notProvided } from './not-provided.js';
import { HOST_REFRESH_TEXT } from './wording.js';
import type { Secret } from './secret.js';

/**
 * The ChatGPT session: managed credentials (stored, refreshed by us) or host
 * tokens (refreshed by asking the host). One child machine for both modes, so
 * they stop repeating each other. It does the work (routing discovery now,
 * refresh next) and reports to the root with `sendParent`; the root alone
 * talks to the wire. Started by the root in `chatgpt` and `externalTokens`,
 * stopped (its effects aborted) when the root leaves them.
 */

export type SessionMode = 'managed' | 'external';

export interface SessionInput {
  mode: SessionMode;
  accessToken: Secret;
  accountId: string | null;
  client: ClientIdentity | null;
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

export interface RefreshTokensInput {
  stored: StoredChatgpt;
  client: ClientIdentity | null;
}

type SessionContext = SessionInput;

export type SessionRequest = { type: 'session.discover' } | { type: 'session.unauthorized' };

/** The default host deadline (SPEC §9.3); the host may set another in `initialize`. */
export const DEFAULT_HOST_REFRESH_TIMEOUT_MS = 10_000;

const report = (event: SessionEvent) => event;

export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    input: {} as SessionInput,
    events: {} as SessionRequest,
  },
  actors: {
    discoverRouting: fromPromise<WorkspaceRouting, DiscoverRoutingInput>(notProvided('workspace routing discovery')),
    refreshTokens: fromPromise<StoredChatgpt, RefreshTokensInput>(notProvided('token refresh')),
    requestHostRefresh: fromPromise<HostRefreshOutput, HostRefreshInput>(notProvided('host token refresh')),
  },
  guards: {
    shouldDiscoverNow: ({ context }) => context.discoverNow,
    isManaged: ({ context }) => context.mode === 'managed',
  },
  delays: {
    hostRefreshTimeout: ({ context }) => context.hostRefreshTimeoutMs,
  },
  actions: {
    reportRouted: sendParent((_, routing: WorkspaceRouting) => report({ type: 'session.routed', routing })),
    reportUnrouted: sendParent((_, failure: AuthFailure) => report({ type: 'session.unrouted', failure })),
    reportRefreshed: sendParent((_, tokens: RefreshedTokens) => report({ type: 'session.refreshed', tokens })),
    reportRefreshFailed: sendParent((_, failure: AuthFailure) => report({ type: 'session.refreshFailed', failure })),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => input,
  initial: 'starting',
  states: {
    starting: {
      always: [{ guard: 'shouldDiscoverNow', target: 'discovering' }, { target: 'ready' }],
    },
    ready: {
      on: {
        'session.discover': 'discovering',
        'session.unauthorized': 'refreshing',
      },
    },
    /** One discovery however many reads wait for it (the root keeps the waiters). */
    discovering: {
      invoke: {
        id: 'discover',
        src: 'discoverRouting',
        input: ({ context }) => ({ accessToken: context.accessToken, accountId: context.accountId, client: context.client }),
        onDone: { target: 'ready', actions: { type: 'reportRouted', params: ({ event }) => event.output } },
        onError: {
          target: 'ready',
          actions: { type: 'reportUnrouted', params: ({ event }) => toFailure(event.error, 'discoveryFailed') },
        },
      },
    },
    /** A 401: managed mode redeems its refresh token, external mode asks the host (SPEC §8, §9.3). */
    refreshing: {
      initial: 'choosing',
      states: {
        choosing: {
          always: [{ guard: 'isManaged', target: 'managed' }, { target: 'external' }],
        },
        managed: {
          invoke: {
            id: 'refreshTokens',
            src: 'refreshTokens',
            input: ({ context }) => ({ stored: context.stored!, client: context.client }),
            onDone: {
              target: '#session.ready',
              actions: { type: 'reportRefreshed', params: ({ event }) => ({ kind: 'managed', stored: event.output }) },
            },
            onError: {
              target: '#session.ready',
              actions: { type: 'reportRefreshFailed', params: ({ event }) => toFailure(event.error) },
            },
          },
        },
        external: {
          invoke: {
            id: 'hostRefresh',
            src: 'requestHostRefresh',
            input: ({ context }) => ({ previousAccountId: context.accountId, timeoutMs: context.hostRefreshTimeoutMs }),
            onDone: {
              target: '#session.ready',
              actions: { type: 'reportRefreshed', params: ({ event }) => ({ kind: 'external', ...event.output }) },
            },
            onError: {
              target: '#session.ready',
              actions: { type: 'reportRefreshFailed', params: ({ event }) => toFailure(event.error) },
            },
          },
          // The chart owns the deadline: a host that never answers cannot hold the session (SPEC §9.3).
          after: {
            hostRefreshTimeout: {
              target: '#session.ready',
              actions: {
                type: 'reportRefreshFailed',
                params: ({ context }) => ({
                  kind: 'internal',
                  message: HOST_REFRESH_TEXT.timedOut(context.hostRefreshTimeoutMs),
                }),
              },
            },
          },
        },
      },
    },
  },
});

export type SessionMachine = typeof sessionMachine;
