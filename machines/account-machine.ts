import { assertEvent, assign, emit, enqueueActions, fromPromise, setup } from 'xstate';
import {
  activeAuthMode,
  activePlanType,
  isLoginMethodAllowed,
  isStoredAuthVisible,
  isWorkspaceAllowed,
  loginEndedMessage,
  resolvePlanType,
  toFailure,
  viewAccount,
  viewAuthStatus,
  workspaceRestrictionMessage,
} from './account-guards.js';
import type {
  AccountContext,
  AccountEmitted,
  AccountEvent,
  AccountInput,
  AuthFailure,
  ClientIdentity,
  ExternalTokens,
  LoginFlow,
  PendingLogin,
  Policy,
  ReplyValue,
  StartedLogin,
  StoredAuth,
  StoredChatgpt,
  TokenClaims,
  WorkspaceRouting,
} from './account-types.js';
import type { Secret } from './secret.js';

/**
 * Default for every effect: reject. Production (`src/effects/actors.ts`) and
 * tests supply real implementations with `accountMachine.provide({ actors })`;
 * an effect nobody provided answers `notImplemented` instead of hanging.
 */
function notProvided(name: string) {
  return async (): Promise<never> => {
    throw { kind: 'notImplemented', message: `${name} is not available in this build` } satisfies AuthFailure;
  };
}

export interface DiscoverRoutingInput {
  accessToken: Secret;
  accountId: string | null;
  client: ClientIdentity | null;
}

export interface ClearCredentialsInput {
  /** Refresh token to revoke before deleting (managed ChatGPT login only). */
  revokeToken: Secret | null;
  client: ClientIdentity | null;
}

export interface StartLoginInput {
  flow: LoginFlow;
  policy: Policy;
  client: ClientIdentity | null;
}

export interface HostRefreshOutput {
  accessToken: Secret;
  accountId: string;
  planType: string | null;
  claims: TokenClaims | null;
}

type Ctx = { context: AccountContext; event: object };

/** The request a transition answers: the event's own, or the one a busy state remembered. */
function requestIdOf({ context, event }: Ctx): string {
  if ('requestId' in event && typeof event.requestId === 'string') return event.requestId;
  return context.requestId ?? '';
}

function okReply(args: Ctx, value: ReplyValue): AccountEmitted {
  return { type: 'reply', requestId: requestIdOf(args), ok: true, value };
}

function failReply(args: Ctx, failure: AuthFailure): AccountEmitted {
  return { type: 'reply', requestId: requestIdOf(args), ok: false, failure };
}

/** `completed` for the pending login: success when `error` is null. */
function pendingLoginEnded(context: AccountContext, error: string | null): AccountEmitted {
  return { type: 'login.completed', loginId: context.pending?.loginId ?? null, success: error === null, error };
}

/** Discovery runs with the active ChatGPT credentials: host tokens first, else the stored login. */
function discoveryInput({ context }: { context: AccountContext }): DiscoverRoutingInput {
  if (context.external) {
    return { accessToken: context.external.accessToken, accountId: context.external.accountId, client: context.client };
  }
  const stored = context.stored as StoredChatgpt;
  return { accessToken: stored.accessToken, accountId: stored.accountId, client: context.client };
}

function externalTokensFrom(event: Extract<AccountEvent, { type: 'login.externalTokens' }>): ExternalTokens {
  const claims = event.claims!;
  return {
    accessToken: event.accessToken,
    accountId: event.accountId,
    planType: resolvePlanType(event.planType, claims.planType),
    email: claims.email,
    userId: claims.userId,
  };
}

export const accountMachine = setup({
  types: {
    context: {} as AccountContext,
    events: {} as AccountEvent,
    input: {} as AccountInput,
    emitted: {} as AccountEmitted,
  },
  actors: {
    loadCredentials: fromPromise<StoredAuth | null, void>(notProvided('loading credentials')),
    saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(notProvided('saving credentials')),
    clearCredentials: fromPromise<void, ClearCredentialsInput>(notProvided('logout')),
    discoverRouting: fromPromise<WorkspaceRouting, DiscoverRoutingInput>(notProvided('workspace routing discovery')),
    startLogin: fromPromise<StartedLogin, StartLoginInput>(notProvided('ChatGPT login')),
    awaitLogin: fromPromise<StoredAuth, PendingLogin>(notProvided('ChatGPT login')),
    refreshTokens: fromPromise<StoredChatgpt, { stored: StoredChatgpt; client: ClientIdentity | null }>(
      notProvided('token refresh'),
    ),
    requestHostRefresh: fromPromise<HostRefreshOutput, { previousAccountId: string | null }>(
      notProvided('host token refresh'),
    ),
  },
  guards: {
    isExternalAuthActive: ({ context }) => context.external !== null,
    isApiKeyLoginForbidden: ({ context }) => !isLoginMethodAllowed(context.policy, 'api'),
    isChatgptLoginForbidden: ({ context }) => !isLoginMethodAllowed(context.policy, 'chatgpt'),
    isExperimentalApiMissing: ({ event }) => event.type === 'login.externalTokens' && !event.experimentalApi,
    isWorkspaceForbidden: ({ context, event }) =>
      event.type === 'login.externalTokens' && !isWorkspaceAllowed(context.policy, event.accountId),
    isTokenUndecodable: ({ event }) => event.type === 'login.externalTokens' && event.claims === null,
    isStoredAuthVisible: ({ context }, stored: StoredAuth | null) =>
      stored !== null && isStoredAuthVisible(context.policy, stored),
    isPendingLogin: ({ context, event }) =>
      event.type === 'login.cancel' && context.pending !== null && context.pending.loginId === event.loginId,
    hasPendingLogin: ({ context }) => context.pending !== null,
    hasStoredApiKey: ({ context }) => context.stored?.kind === 'apiKey',
    hasNoActiveAuth: ({ context }) => activeAuthMode(context) === null,
    isApiKeyActive: ({ context }) => activeAuthMode(context) === 'apikey',
    hasStoredChatgpt: ({ context }) => context.stored?.kind === 'chatgpt',
    /** An unreadable auth.json only matters while nothing else is active (host tokens never touch it). */
    hasStorageIssue: ({ context }) => context.storageIssue !== null && activeAuthMode(context) === null,
    lacksRouting: ({ context }) => context.routing === null,
    isRefreshedWorkspaceAllowed: ({ context }, accountId: string) => isWorkspaceAllowed(context.policy, accountId),
  },
  actions: {
    rememberRequest: assign({ requestId: ({ event }) => ('requestId' in event ? event.requestId : null) }),
    forgetRequest: assign({ requestId: null }),
    identifyClient: assign({
      client: ({ event }) => {
        assertEvent(event, 'client.identify');
        return event.client;
      },
    }),
    replyFailure: emit((args, failure: AuthFailure) => failReply(args, failure)),
    replyAccount: emit((args) => okReply(args, { kind: 'account', account: viewAccount(args.context) })),
    replyAuthStatus: emit((args) => {
      assertEvent(args.event, 'authStatus.read');
      return okReply(args, { kind: 'authStatus', status: viewAuthStatus(args.context, args.event.includeToken) });
    }),
    replyCancelNotFound: emit((args) => okReply(args, { kind: 'cancel', status: 'notFound' })),
    replyWorkspaceNotAllowed: emit((args) => {
      assertEvent(args.event, 'login.externalTokens');
      return failReply(args, {
        kind: 'workspaceNotAllowed',
        allowed: args.context.policy.forcedWorkspaceIds ?? [],
        received: args.event.accountId,
      });
    }),
    replyStorageIssue: emit((args) => failReply(args, args.context.storageIssue!)),
    replyDiscoveryFailure: emit((args) =>
      failReply(args, toFailure('error' in args.event ? args.event.error : undefined, 'discoveryFailed')),
    ),
    assignRouting: assign({
      routing: ({ context, event }) => ('output' in event ? (event.output as WorkspaceRouting) : context.routing),
    }),
    /** Ends a pending browser/device login, reporting it as not completed (or cancelled). */
    endPendingLogin: enqueueActions(({ context, enqueue }, params: { why: 'notCompleted' | 'cancelled' }) => {
      if (context.pending === null) return;
      enqueue.emit(pendingLoginEnded(context, loginEndedMessage(context.pending.flow, params.why)));
      enqueue.assign({ pending: null });
    }),
    notifyAccountUpdated: emit(({ context }) => ({
      type: 'account.updated' as const,
      authMode: activeAuthMode(context),
      planType: activePlanType(context),
    })),
    notifyLoginSucceeded: emit({ type: 'login.completed', loginId: null, success: true, error: null }),
  },
}).createMachine({
  id: 'account',
  context: ({ input }) => ({
    policy: input.policy,
    client: null,
    stored: null,
    external: null,
    routing: null,
    pending: null,
    storageIssue: null,
    requestId: null,
  }),
  initial: 'loading',
  on: {
    'client.identify': { actions: 'identifyClient' },
    'account.read': [
      { guard: 'hasStorageIssue', actions: 'replyStorageIssue' },
      { actions: 'replyAccount' },
    ],
    'authStatus.read': { actions: 'replyAuthStatus' },
    'login.cancel': { actions: 'replyCancelNotFound' },
    'login.apiKey': [
      { guard: 'isExternalAuthActive', actions: { type: 'replyFailure', params: { kind: 'externalAuthActive' } } },
      { guard: 'isApiKeyLoginForbidden', actions: { type: 'replyFailure', params: { kind: 'apiKeyLoginDisabled' } } },
      { target: '.savingApiKey', actions: 'rememberRequest' },
    ],
    'login.chatgpt': [
      { guard: 'isExternalAuthActive', actions: { type: 'replyFailure', params: { kind: 'externalAuthActive' } } },
      { guard: 'isChatgptLoginForbidden', actions: { type: 'replyFailure', params: { kind: 'chatgptLoginDisabled' } } },
      { target: '.startingLogin', actions: 'rememberRequest' },
    ],
    'login.externalTokens': [
      {
        guard: 'isExperimentalApiMissing',
        actions: { type: 'replyFailure', params: { kind: 'experimentalApiRequired' } },
      },
      { guard: 'isChatgptLoginForbidden', actions: { type: 'replyFailure', params: { kind: 'externalAuthDisabled' } } },
      { guard: 'isWorkspaceForbidden', actions: 'replyWorkspaceNotAllowed' },
      { guard: 'isTokenUndecodable', actions: { type: 'replyFailure', params: { kind: 'invalidToken' } } },
      {
        target: '.externalTokens.verifying',
        actions: [
          'rememberRequest',
          { type: 'endPendingLogin', params: { why: 'notCompleted' } },
          assign({
            external: ({ event }) => {
              assertEvent(event, 'login.externalTokens');
              return externalTokensFrom(event);
            },
            routing: null,
          }),
          emit((args) => okReply(args, { kind: 'login', type: 'chatgptAuthTokens' })),
        ],
      },
    ],
    logout: { target: '.loggingOut', actions: 'rememberRequest' },
    // The ChatGPT fetch itself arrives with the 401-recovery issue.
    'rateLimits.read': [
      { guard: 'hasNoActiveAuth', actions: { type: 'replyFailure', params: { kind: 'rateLimitsNeedAuth' } } },
      { guard: 'isApiKeyActive', actions: { type: 'replyFailure', params: { kind: 'rateLimitsNeedChatgpt' } } },
      { actions: { type: 'replyFailure', params: { kind: 'notImplemented' } } },
    ],
  },
  states: {
    loading: {
      invoke: {
        id: 'load',
        src: 'loadCredentials',
        onDone: [
          {
            guard: { type: 'isStoredAuthVisible', params: ({ event }) => event.output },
            target: 'settle',
            actions: assign({ stored: ({ event }) => event.output }),
          },
          { target: 'settle' },
        ],
        onError: {
          target: 'settle',
          actions: assign({ storageIssue: ({ event }) => toFailure(event.error, 'authFileCorrupt') }),
        },
      },
    },
    /** Routes to the mode the context implies; every busy state ends here. */
    settle: {
      entry: 'forgetRequest',
      always: [
        { guard: 'isExternalAuthActive', target: 'externalTokens' },
        { guard: 'hasPendingLogin', target: 'chatgptPending' },
        { guard: 'hasStoredApiKey', target: 'apiKey' },
        { guard: 'hasStoredChatgpt', target: 'chatgpt' },
        { target: 'loggedOut' },
      ],
    },
    loggedOut: {
      tags: ['idle'],
    },
    apiKey: {
      tags: ['idle'],
    },
    savingApiKey: {
      entry: { type: 'endPendingLogin', params: { why: 'notCompleted' } },
      invoke: {
        id: 'saveApiKey',
        src: 'saveCredentials',
        input: ({ event }) => {
          assertEvent(event, 'login.apiKey');
          return { auth: { kind: 'apiKey', apiKey: event.apiKey } };
        },
        onDone: {
          target: 'settle',
          actions: [
            assign({ stored: ({ event }) => event.output, routing: null, storageIssue: null }),
            emit((args) => okReply(args, { kind: 'login', type: 'apiKey' })),
            'notifyLoginSucceeded',
            'notifyAccountUpdated',
          ],
        },
        onError: {
          target: 'settle',
          actions: emit((args) => failReply(args, toFailure(args.event.error, 'storageFailed'))),
        },
      },
    },
    startingLogin: {
      /** A new ChatGPT login supersedes a pending one (SPEC §3.2). */
      entry: { type: 'endPendingLogin', params: { why: 'cancelled' } },
      invoke: {
        id: 'startLogin',
        src: 'startLogin',
        input: ({ context, event }) => {
          assertEvent(event, 'login.chatgpt');
          return { flow: event.flow, policy: context.policy, client: context.client };
        },
        onDone: {
          target: 'settle',
          actions: [
            assign({
              pending: ({ event }) => ({ loginId: event.output.loginId, flow: pendingFlow(event.output) }),
            }),
            emit((args) => {
              const output = args.event.output;
              return okReply(args, {
                kind: 'loginStarted',
                loginId: output.loginId,
                flow: pendingFlow(output),
                details: output.details,
              });
            }),
          ],
        },
        onError: {
          target: 'settle',
          actions: emit((args) => failReply(args, toFailure(args.event.error))),
        },
      },
    },
    chatgptPending: {
      tags: ['idle'],
      invoke: {
        id: 'awaitLogin',
        src: 'awaitLogin',
        input: ({ context }) => context.pending!,
        onDone: [
          {
            guard: { type: 'isStoredAuthVisible', params: ({ event }) => event.output },
            target: 'settle',
            actions: [
              emit(({ context }) => pendingLoginEnded(context, null)),
              assign({ stored: ({ event }) => event.output, pending: null, routing: null, storageIssue: null }),
              'notifyAccountUpdated',
            ],
          },
          {
            // Credentials the policy would hide (another workspace): the login fails.
            target: 'settle',
            actions: [
              emit(({ context, event }) =>
                pendingLoginEnded(
                  context,
                  `Login server error: ${workspaceRestrictionMessage(
                    context.policy,
                    event.output.kind === 'chatgpt' ? event.output.accountId : null,
                  )}`,
                ),
              ),
              assign({ pending: null }),
            ],
          },
        ],
        onError: {
          target: 'settle',
          actions: [
            emit(({ context, event }) => pendingLoginEnded(context, toFailure(event.error).message ?? 'Login failed')),
            assign({ pending: null }),
          ],
        },
      },
      on: {
        'login.cancel': {
          guard: 'isPendingLogin',
          target: 'settle',
          // The `canceled` response goes out before the flow's `completed` (SPEC §3.3).
          actions: [
            emit((args) => okReply(args, { kind: 'cancel', status: 'canceled' })),
            { type: 'endPendingLogin', params: { why: 'notCompleted' } },
          ],
        },
      },
    },
    chatgpt: {
      initial: 'idle',
      on: {
        'account.read': { guard: 'lacksRouting', target: '.discovering', actions: 'rememberRequest' },
        'auth.unauthorized': { target: '.refreshing' },
      },
      states: {
        idle: { tags: ['idle'] },
        /** First read after start-up with stored credentials (SPEC §3.1). */
        discovering: {
          invoke: {
            id: 'discoverStored',
            src: 'discoverRouting',
            input: discoveryInput,
            onDone: {
              target: 'idle',
              actions: ['assignRouting', 'notifyAccountUpdated', 'replyAccount', 'forgetRequest'],
            },
            onError: { target: 'idle', actions: ['replyDiscoveryFailure', 'forgetRequest'] },
          },
        },
        /** Managed refresh; completed by the refresh issue. */
        refreshing: {
          invoke: {
            id: 'refreshTokens',
            src: 'refreshTokens',
            input: ({ context }) => ({ stored: context.stored as StoredChatgpt, client: context.client }),
            onDone: { target: 'idle', actions: assign({ stored: ({ event }) => event.output, routing: null }) },
            onError: { target: 'idle' },
          },
        },
      },
    },
    externalTokens: {
      initial: 'idle',
      on: {
        'account.read': { guard: 'lacksRouting', target: '.reading', actions: 'rememberRequest' },
        'auth.unauthorized': { target: '.refreshing' },
      },
      states: {
        idle: { tags: ['idle'] },
        /** After a tokens login: the reply is already out; discovery decides `completed` (SPEC §9.1). */
        verifying: {
          entry: 'forgetRequest',
          invoke: {
            id: 'verifyExternal',
            src: 'discoverRouting',
            input: discoveryInput,
            onDone: {
              target: 'idle',
              actions: ['assignRouting', 'notifyLoginSucceeded', 'notifyAccountUpdated'],
            },
            onError: {
              target: 'idle',
              actions: emit(({ event }) => ({
                type: 'login.completed' as const,
                loginId: null,
                success: false,
                error: toFailure(event.error, 'discoveryFailed').message ?? 'workspace routing discovery failed',
              })),
            },
          },
        },
        /** A read while discovery has not succeeded yet: retried on every read (SPEC §3.1). */
        reading: {
          invoke: {
            id: 'discoverExternal',
            src: 'discoverRouting',
            input: discoveryInput,
            onDone: {
              target: 'idle',
              actions: ['assignRouting', 'replyAccount', 'forgetRequest'],
            },
            onError: { target: 'idle', actions: ['replyDiscoveryFailure', 'forgetRequest'] },
          },
        },
        /** Ask the host for new tokens (SPEC §9.3); completed by the 401-recovery issue. */
        refreshing: {
          invoke: {
            id: 'hostRefresh',
            src: 'requestHostRefresh',
            input: ({ context }) => ({ previousAccountId: context.external?.accountId ?? null }),
            onDone: [
              {
                guard: { type: 'isRefreshedWorkspaceAllowed', params: ({ event }) => event.output.accountId },
                target: 'idle',
                actions: assign({
                  external: ({ event }) => ({
                    accessToken: event.output.accessToken,
                    accountId: event.output.accountId,
                    planType: resolvePlanType(event.output.planType, event.output.claims?.planType ?? null),
                    email: event.output.claims?.email ?? null,
                    userId: event.output.claims?.userId ?? null,
                  }),
                  routing: null,
                }),
              },
              { target: 'idle' },
            ],
            onError: { target: 'idle' },
          },
        },
      },
    },
    loggingOut: {
      entry: [
        { type: 'endPendingLogin', params: { why: 'notCompleted' } },
        assign({ external: null, routing: null }),
      ],
      invoke: {
        id: 'clear',
        src: 'clearCredentials',
        input: ({ context }) => ({
          revokeToken: context.stored?.kind === 'chatgpt' ? context.stored.refreshToken : null,
          client: context.client,
        }),
        onDone: {
          target: 'settle',
          actions: [
            assign({ stored: null, storageIssue: null }),
            emit((args) => okReply(args, { kind: 'empty' })),
            'notifyAccountUpdated',
          ],
        },
        onError: {
          target: 'settle',
          actions: emit((args) => failReply(args, toFailure(args.event.error, 'storageFailed'))),
        },
      },
    },
  },
});

function pendingFlow(output: StartedLogin): LoginFlow {
  return 'userCode' in output.details ? 'device' : 'browser';
}

export type AccountMachine = typeof accountMachine;
