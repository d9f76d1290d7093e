import { and, assertEvent, assign, emit, enqueueActions, fromCallback, fromPromise, raise, sendTo, setup, stateIn } from 'xstate';
import {
  activeAuthMode,
  activePlanType,
  isLoginMethodAllowed,
  isStoredAuthVisible,
  isWorkspaceAllowed,
  resolvePlanType,
  toFailure,
  visibleStoredAuth,
} from './account-guards.js';
import { viewAccount, viewAuthStatus } from './account-views.js';
import type {
  AccountContext,
  AccountEmitted,
  AccountEvent,
  AccountInput,
  AuthFailure,
  ExternalTokens,
  ReplyValue,
  RequestEvent,
  StoredAuth,
  StoredChatgpt,
} from './account-types.js';
import { CHATGPT_GATED, gatedCall, gatewayAnswer, NO_SECURITY_NOTICE, type GatedEvent } from './account-surface.js';
import { loginAttemptMachine, type LoginAttemptOutput } from './login-attempt-machine.js';
import { notProvided } from './not-provided.js';
import type { Secret } from './secret.js';
import { DEFAULT_HOST_REFRESH_TIMEOUT_MS, sessionMachine, type SessionInput } from './session-machine.js';
import { HOST_LOGIN_OVERTAKEN, loginEndedMessage, loginFailedMessage, surfaceRefusal, workspaceRestrictionMessage } from './wording.js';

export type { DiscoverRoutingInput, HostRefreshOutput } from './session-machine.js';

export interface ClearCredentialsInput {
  /** Refresh token to revoke before deleting (managed ChatGPT login only). */
  revokeToken: Secret | null;
  client: AccountContext['client'];
}

type Args = { context: AccountContext; event: AccountEvent };

/** How long a browser or device login waits for the user by default (the reference's 10 minutes). */
export const DEFAULT_LOGIN_TIMEOUT_MS = 600_000;

/** The request a transition answers: the event's own, or the one the busy credentials remembered. */
function requestIdOf({ context, event }: Args): string {
  if ('requestId' in event && typeof event.requestId === 'string') return event.requestId;
  return context.busyWith ?? '';
}

const ok = (requestId: string, value: ReplyValue): AccountEmitted => ({ type: 'reply', requestId, ok: true, value });
const fail = (requestId: string, failure: AuthFailure): AccountEmitted => ({ type: 'reply', requestId, ok: false, failure });

const accountReply = (context: AccountContext, requestId: string) =>
  ok(requestId, { kind: 'account', account: viewAccount(context) });

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

/** Only OpenAI, as without `[model_providers]` in config.toml. */
const OPENAI_ONLY = { selected: 'openai', configured: [] } as const;

/**
 * The auth gate of a ChatGPT-backend method (SPEC-account-surface §12.1), one
 * for all of them: logged out and API key are refused with the method's own
 * words; ChatGPT credentials (managed or host) have the session make the call,
 * so each gets the 401 recovery of the session (issue 8).
 */
const CHATGPT_GATE = [
  { guard: 'isLoading', actions: 'defer' },
  { guard: 'hasNoActiveAuth', actions: { type: 'refuseSurface', params: 'account' } },
  { guard: 'isApiKeyActive', actions: { type: 'refuseSurface', params: 'chatgpt' } },
  { guard: stateIn({ credentials: 'chatgptSession' }), actions: ['addBackendWaiter', 'callSurface'] },
  { actions: { type: 'refuseSurface', params: 'account' } },
] as const;

/** Session input for the active ChatGPT credentials: host tokens first, else the stored login. */
function sessionInput(context: AccountContext): SessionInput {
  const { hostRefreshTimeoutMs } = context;
  const discoverNow = context.announcement !== null && context.announcement.kind !== 'storedCredentials';
  if (context.external) {
    return {
      mode: 'external',
      accessToken: context.external.accessToken,
      accountId: context.external.accountId,
      client: context.client,
      policy: context.policy,
      stored: null,
      discoverNow,
      hostRefreshTimeoutMs,
    };
  }
  const stored = context.stored as StoredChatgpt;
  return {
    mode: 'managed',
    accessToken: stored.accessToken,
    accountId: stored.accountId,
    client: context.client,
    policy: context.policy,
    stored,
    discoverNow,
    hostRefreshTimeoutMs,
  };
}

/**
 * The account statechart (the root actor, the only one whose events reach
 * the wire). Two parallel regions:
 * - `credentials`: which credentials are active (`loggedOut`, `apiKey`,
 *   `chatgpt`, `externalTokens`) and the busy steps that change them
 *   (`loading`, `saving`, `clearing`); the ChatGPT modes run the session
 *   child (discovery, refresh).
 * - `login`: a browser/device login in progress (`chatgptPending`), run by
 *   the login-attempt child.
 *
 * Requests are events with a `requestId`, each answered by exactly one
 * emitted `reply`. Reads that need discovery wait in `readWaiters` (one
 * discovery for all). State-changing requests that arrive while the
 * credentials are busy wait in `deferred` and are replayed in arrival order:
 * that ordering rule lives here, not in the adapter. Pure reads are answered
 * from the snapshot by `account-views.ts` without an event at all.
 */
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
    session: sessionMachine,
    loginAttempt: loginAttemptMachine,
    /** Reports changes other processes make to the stored credentials; by default nothing watches. */
    watchCredentials: fromCallback<AccountEvent>(() => () => {}),
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
    hasStoredApiKey: ({ context }) => context.stored?.kind === 'apiKey',
    hasStoredChatgpt: ({ context }) => context.stored?.kind === 'chatgpt',
    hasNoActiveAuth: ({ context }) => activeAuthMode(context) === null,
    isApiKeyActive: ({ context }) => activeAuthMode(context) === 'apikey',
    /** An unreadable auth.json only matters while nothing else is active (host tokens never touch it). */
    hasStorageIssue: ({ context }) => context.storageIssue !== null && activeAuthMode(context) === null,
    /** Loading, saving or clearing: state-changing requests wait their turn. */
    areCredentialsBusy: ({ context }) => context.busyWith !== null,
    isLoading: ({ context }) => context.busyWith === 'load',
    lacksRouting: ({ context }) => context.routing === null,
    wantsRefresh: ({ event }) => event.type === 'account.read' && event.refreshToken,
    /** The attempt checks the workspace before saving; checked again here, where the policy lives. */
    isAttemptWorkspaceAllowed: ({ context }, outcome: LoginAttemptOutput) =>
      outcome.status !== 'succeeded' || isStoredAuthVisible(context.policy, outcome.auth),
    isPendingLoginFor: ({ context }, loginId: string) => context.pending !== null && context.pending.loginId === loginId,
    /** Managed ChatGPT credentials that name both the account and the user (SPEC-account-surface §14). */
    hasSecurityIdentity: ({ context }) =>
      context.stored?.kind === 'chatgpt' && context.stored.accountId !== null && context.stored.claims.userId !== null,
  },
  actions: {
    adoptReloaded: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'credentials.reloaded');
      const stored = visibleStoredAuth(context.policy, event.auth);
      const next = { ...context, stored, storageIssue: null };
      enqueue.assign({ stored, storageIssue: null, routing: null, announcement: null });
      const [mode, plan] = [activeAuthMode(next), activePlanType(next)];
      if (mode !== activeAuthMode(context) || plan !== activePlanType(context)) {
        enqueue.emit({ type: 'account.updated', authMode: mode, planType: plan });
      }
    }),
    adoptReloadedBehindHostTokens: assign(({ context, event }) => {
      assertEvent(event, 'credentials.reloaded');
      return { stored: visibleStoredAuth(context.policy, event.auth), storageIssue: null };
    }),
    forgetUnreadableBehindHostTokens: assign(({ event }) => {
      assertEvent(event, 'credentials.unreadable');
      return { stored: null, storageIssue: event.failure };
    }),
    identifyClient: assign(({ context, event }) => {
      assertEvent(event, 'client.identify');
      return { client: event.client, hostRefreshTimeoutMs: event.hostRefreshTimeoutMs ?? context.hostRefreshTimeoutMs };
    }),
    /** Keeps a state-changing request for later; replayed by `replayDeferred`. */
    defer: assign({
      deferred: ({ context, event }) => [...context.deferred, event as RequestEvent],
    }),
    replayDeferred: enqueueActions(({ context, enqueue }) => {
      if (context.deferred.length === 0) return;
      const events = context.deferred;
      enqueue.assign({ deferred: [] });
      for (const event of events) enqueue.raise(event);
    }),
    rememberBusy: assign({ busyWith: ({ event }) => ('requestId' in event ? event.requestId : '') }),
    forgetBusy: assign({ busyWith: null }),
    replyFailure: emit((args, failure: AuthFailure) => fail(requestIdOf(args), failure)),
    replyAccount: emit((args) => accountReply(args.context, requestIdOf(args))),
    replyAuthStatus: emit((args) => {
      assertEvent(args.event, 'authStatus.read');
      return ok(args.event.requestId, { kind: 'authStatus', status: viewAuthStatus(args.context, args.event.includeToken) });
    }),
    replyLogin: emit((args, type: 'apiKey' | 'chatgptAuthTokens') => ok(requestIdOf(args), { kind: 'login', type })),
    replyEmpty: emit((args) => ok(requestIdOf(args), { kind: 'empty' })),
    replyCancel: emit((args, status: 'canceled' | 'notFound') => ok(requestIdOf(args), { kind: 'cancel', status })),
    replyWorkspaceNotAllowed: emit((args) => {
      assertEvent(args.event, 'login.externalTokens');
      return fail(args.event.requestId, {
        kind: 'workspaceNotAllowed',
        allowed: args.context.policy.forcedWorkspaceIds ?? [],
        received: args.event.accountId,
      });
    }),
    replyStorageIssue: emit((args) => fail(requestIdOf(args), args.context.storageIssue!)),
    addReadWaiter: assign({
      readWaiters: ({ context, event }) => [...context.readWaiters, (event as { requestId: string }).requestId],
    }),
    askSessionToDiscover: sendTo('session', { type: 'session.discover' }),
    addBackendWaiter: assign({
      backendWaiters: ({ context, event }) => [...context.backendWaiters, (event as { requestId: string }).requestId],
    }),
    replyBackend: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'session.answered');
      if (!context.backendWaiters.includes(event.requestId)) return;
      const { [event.requestId]: fallback, ...fallbacks } = context.backendFallbacks;
      enqueue.assign({ backendWaiters: context.backendWaiters.filter((id) => id !== event.requestId), backendFallbacks: fallbacks });
      if (event.ok) enqueue.emit(ok(event.requestId, { kind: 'backend', result: event.result }));
      else if (fallback !== undefined) enqueue.emit(ok(event.requestId, { kind: 'backend', result: fallback }));
      else enqueue.emit(fail(event.requestId, event.failure));
    }),
    /** The session ended (logout, another login): the backend calls it ran are abandoned. */
    failBackendWaiters: enqueueActions(({ context, enqueue }) => {
      for (const requestId of context.backendWaiters) {
        const fallback = context.backendFallbacks[requestId];
        enqueue.emit(
          fallback !== undefined
            ? ok(requestId, { kind: 'backend', result: fallback })
            : fail(requestId, { kind: 'backendFailed', message: 'the request was abandoned: the credentials changed (logout or a new login)' }),
        );
      }
      enqueue.assign({ backendWaiters: [], backendFallbacks: {} });
    }),
    /** A ChatGPT-backend method refused by the gate, in its own words (SPEC-account-surface §12.1). */
    refuseSurface: emit(({ event }, who: 'account' | 'chatgpt') => {
      const gated = event as GatedEvent;
      return fail(gated.requestId, surfaceRefusal(who, CHATGPT_GATED[gated.type]));
    }),
    /** Has the session make a gated request's backend call; `session.answered` replies. */
    callSurface: sendTo('session', ({ event }) => {
      const gated = event as GatedEvent;
      return { type: 'session.call' as const, requestId: gated.requestId, call: gatedCall(gated) };
    }),
    /** `account/securitySetup/read` asks with the local identity; any failure answers no notice (§14). */
    callSecuritySetup: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'securitySetup.read');
      const stored = context.stored as StoredChatgpt;
      enqueue.assign({
        backendWaiters: [...context.backendWaiters, event.requestId],
        backendFallbacks: { ...context.backendFallbacks, [event.requestId]: NO_SECURITY_NOTICE },
      });
      enqueue.sendTo('session', {
        type: 'session.call',
        requestId: event.requestId,
        call: { kind: 'securitySetup', accountId: stored.accountId!, userId: stored.claims.userId! },
      });
    }),
    replyNoSecurityNotice: emit((args) => ok(requestIdOf(args), { kind: 'backend', result: NO_SECURITY_NOTICE })),
    /** The gateway-OAuth answers come from config alone (SPEC-account-surface §18). */
    replyGateway: emit(({ context, event }) => {
      assertEvent(event, ['gatewayOAuth.read', 'gatewayOAuth.login', 'gatewayOAuth.cancel']);
      const answer = gatewayAnswer(context.modelProviders, event);
      return answer.ok ? ok(event.requestId, { kind: 'backend', result: answer.result }) : fail(event.requestId, answer.failure);
    }),
    /** Answers every waiting read with the account as it stands (a logout or login is taking over). */
    answerReadWaiters: enqueueActions(({ context, enqueue }) => {
      for (const requestId of context.readWaiters) enqueue.emit(accountReply(context, requestId));
      enqueue.assign({ readWaiters: [] });
    }),
    failReadWaiters: enqueueActions(({ context, enqueue }, failure: AuthFailure) => {
      for (const requestId of context.readWaiters) enqueue.emit(fail(requestId, failure));
      enqueue.assign({ readWaiters: [] });
    }),
    notifyAccountUpdated: emit(({ context }) => ({
      type: 'account.updated' as const,
      authMode: activeAuthMode(context),
      planType: activePlanType(context),
    })),
    notifyTokensLoginSucceeded: emit({ type: 'login.completed', loginId: null, success: true, error: null }),
    /** Ends a pending browser/device login, reporting it as not completed (or cancelled). */
    endPendingLogin: enqueueActions(({ context, enqueue }, why: 'notCompleted' | 'cancelled') => {
      if (context.pending === null) return;
      if (context.startingRequest !== null) {
        // Its start request is still unanswered: it learns the login was cancelled.
        enqueue.emit(fail(context.startingRequest, { kind: 'loginFailed', message: loginEndedMessage(context.pending.flow, why) }));
      } else {
        enqueue.emit({
          type: 'login.completed',
          loginId: context.pending.loginId,
          success: false,
          error: loginEndedMessage(context.pending.flow, why),
        });
      }
      enqueue.assign({ pending: null, startingRequest: null });
    }),
    /**
     * The session ends before the discovery that was to announce a login (a logout, another
     * login): a finished ChatGPT login did succeed (its credentials were stored) and says so now,
     * once; host tokens that were never confirmed say they did not complete.
     */
    reportOvertakenLogin: enqueueActions(({ context, enqueue }) => {
      const a = context.announcement;
      if (a?.kind === 'chatgptLogin') {
        enqueue.emit({ type: 'login.completed', loginId: a.loginId, success: true, error: null });
      } else if (a?.kind === 'externalLogin') {
        // Host tokens whose discovery never ran: nothing confirmed them, so the host hears they did not complete.
        enqueue.emit({ type: 'login.completed', loginId: null, success: false, error: HOST_LOGIN_OVERTAKEN });
      } else {
        return;
      }
      enqueue.assign({ announcement: null });
    }),
    answerAbandonedPastes: enqueueActions(({ context, enqueue }) => {
      const ended = { kind: 'loginNotWaiting' as const, message: 'the login ended before this redirect URL was used' };
      for (const requestId of context.pasteWaiters) enqueue.emit(fail(requestId, ended));
      enqueue.assign({ pasteWaiters: [] });
    }),
    /**
     * Discovery ended (or was abandoned): say what an announced login or
     * loaded credentials need to say, then answer the waiting reads.
     */
    announce: enqueueActions(({ context, enqueue }, failure: AuthFailure | null) => {
      const a = context.announcement;
      if (a?.kind === 'externalLogin') {
        // SPEC §9.1: a failed discovery fails the completed, tokens stay installed; no `updated`.
        if (failure) {
          enqueue.emit({ type: 'login.completed', loginId: null, success: false, error: loginFailedMessage(failure) });
        } else {
          enqueue.emit({ type: 'login.completed', loginId: null, success: true, error: null });
          enqueue.emit({ type: 'account.updated', authMode: activeAuthMode(context), planType: activePlanType(context) });
        }
      } else if (a?.kind === 'chatgptLogin') {
        // The credentials are stored whatever discovery said: the login succeeded; reads retry discovery.
        enqueue.emit({ type: 'login.completed', loginId: a.loginId, success: true, error: null });
        enqueue.emit({ type: 'account.updated', authMode: activeAuthMode(context), planType: activePlanType(context) });
      } else if (a?.kind === 'storedCredentials' && !failure) {
        enqueue.emit({ type: 'account.updated', authMode: activeAuthMode(context), planType: activePlanType(context) });
      }
      if (a && (a.kind !== 'storedCredentials' || !failure)) enqueue.assign({ announcement: null });
      for (const requestId of context.readWaiters) {
        enqueue.emit(failure ? fail(requestId, failure) : accountReply(context, requestId));
      }
      enqueue.assign({ readWaiters: [] });
    }),
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
    busyWith: 'load',
    startingRequest: null,
    readWaiters: [],
    backendWaiters: [],
    pasteWaiters: [],
    backendFallbacks: {},
    modelProviders: input.modelProviders ?? OPENAI_ONLY,
    deferred: [],
    announcement: null,
    hostRefreshTimeoutMs: input.hostRefreshTimeoutMs ?? DEFAULT_HOST_REFRESH_TIMEOUT_MS,
    loginTimeoutMs: input.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS,
  }),
  type: 'parallel',
  invoke: { id: 'watch', src: 'watchCredentials' },
  on: {
    'client.identify': [
      {
        // A session started from stored credentials before `initialize` learns who the client is.
        guard: stateIn({ credentials: 'chatgptSession' }),
        actions: [
          'identifyClient',
          sendTo('session', ({ context, event }) => {
            assertEvent(event, 'client.identify');
            return {
              type: 'session.identify' as const,
              client: event.client,
              hostRefreshTimeoutMs: event.hostRefreshTimeoutMs ?? context.hostRefreshTimeoutMs,
            };
          }),
        ],
      },
      { actions: 'identifyClient' },
    ],
    'authStatus.read': [{ guard: 'isLoading', actions: 'defer' }, { actions: 'replyAuthStatus' }],
    'account.read': [
      { guard: 'isLoading', actions: 'defer' },
      { guard: 'hasStorageIssue', actions: 'replyStorageIssue' },
      {
        // `refreshToken: true` refreshes managed tokens first (SPEC §8); other modes ignore it.
        guard: and(['wantsRefresh', stateIn({ credentials: { chatgptSession: 'chatgpt' } })]),
        actions: ['addReadWaiter', sendTo('session', { type: 'session.refresh', reason: 'forced' })],
      },
      {
        // One discovery for every read that needs it; the waiters are answered together.
        guard: and([stateIn({ credentials: 'chatgptSession' }), 'lacksRouting']),
        actions: ['addReadWaiter', 'askSessionToDiscover'],
      },
      { actions: 'replyAccount' },
    ],
    'rateLimits.read': [
      { guard: 'isLoading', actions: 'defer' },
      { guard: 'hasNoActiveAuth', actions: { type: 'replyFailure', params: { kind: 'rateLimitsNeedAuth' } } },
      { guard: 'isApiKeyActive', actions: { type: 'replyFailure', params: { kind: 'rateLimitsNeedChatgpt' } } },
      {
        // The session fetches them with the current credentials, recovering once from a 401 (SPEC §10, issue 8).
        guard: stateIn({ credentials: 'chatgptSession' }),
        actions: [
          'addBackendWaiter',
          sendTo('session', ({ event }) => {
            assertEvent(event, 'rateLimits.read');
            return { type: 'session.call' as const, requestId: event.requestId, call: { kind: 'rateLimits' as const, params: event.params } };
          }),
        ],
      },
      { actions: { type: 'replyFailure', params: { kind: 'rateLimitsNeedAuth' } } },
    ],
    // The rest of the account surface (SPEC-account-surface §12–§18); none holds up account/read (§12.5).
    'usage.read': [...CHATGPT_GATE],
    'workspaceMessages.read': [...CHATGPT_GATE],
    'resetCredit.consume': [...CHATGPT_GATE],
    'addCreditsNudge.send': [...CHATGPT_GATE],
    'securitySetup.read': [
      { guard: 'isLoading', actions: 'defer' },
      // Host tokens, an API key or nobody: no notice, and no call (§14).
      { guard: and([stateIn({ credentials: { chatgptSession: 'chatgpt' } }), 'hasSecurityIdentity']), actions: 'callSecuritySetup' },
      { actions: 'replyNoSecurityNotice' },
    ],
    'gatewayOAuth.read': { actions: 'replyGateway' },
    'gatewayOAuth.login': { actions: 'replyGateway' },
    'gatewayOAuth.cancel': { actions: 'replyGateway' },
  },
  states: {
    credentials: {
      initial: 'loading',
      // State-changing requests move this region directly (one microstep), so a replayed request
      // never runs before the transitions of the one replayed ahead of it.
      on: {
        'login.apiKey': [
          { guard: 'areCredentialsBusy', actions: 'defer' },
          { guard: 'isExternalAuthActive', actions: { type: 'replyFailure', params: { kind: 'externalAuthActive' } } },
          { guard: 'isApiKeyLoginForbidden', actions: { type: 'replyFailure', params: { kind: 'apiKeyLoginDisabled' } } },
          {
            // A pending ChatGPT login is cancelled first; its completed precedes the reply (SPEC §3.2).
            target: '.saving',
            actions: [{ type: 'endPendingLogin', params: 'notCompleted' }, raise({ type: 'attempt.abandon' }), 'rememberBusy'],
          },
        ],
        'login.externalTokens': [
          { guard: 'isExperimentalApiMissing', actions: { type: 'replyFailure', params: { kind: 'experimentalApiRequired' } } },
          { guard: 'isChatgptLoginForbidden', actions: { type: 'replyFailure', params: { kind: 'externalAuthDisabled' } } },
          { guard: 'isWorkspaceForbidden', actions: 'replyWorkspaceNotAllowed' },
          { guard: 'isTokenUndecodable', actions: { type: 'replyFailure', params: { kind: 'invalidToken' } } },
          { guard: 'areCredentialsBusy', actions: 'defer' },
          {
            // Reply at once; discovery then decides `completed` (SPEC §9.1). Through `route`, the one
            // place that picks the mode: host tokens come first there.
            target: '.route',
            actions: [
              { type: 'endPendingLogin', params: 'notCompleted' },
              raise({ type: 'attempt.abandon' }),
              'answerReadWaiters',
              assign(({ event }) => {
                assertEvent(event, 'login.externalTokens');
                return { external: externalTokensFrom(event), routing: null, announcement: { kind: 'externalLogin' as const } };
              }),
              { type: 'replyLogin', params: 'chatgptAuthTokens' },
            ],
          },
        ],
        logout: [
          { guard: 'areCredentialsBusy', actions: 'defer' },
          {
            // A logout wins over what is in flight: waiting reads are answered first, a pending login ends.
            target: '.clearing',
            actions: [
              'answerReadWaiters',
              { type: 'endPendingLogin', params: 'notCompleted' },
              raise({ type: 'attempt.abandon' }),
              'rememberBusy',
              assign({ external: null, routing: null, announcement: null }),
            ],
          },
        ],
        // A finished login attempt stored new credentials: take the mode they imply.
        'credentials.changed': '.route',
        // Another process signed in, out, or refreshed: serve what is stored now (the reference serves
        // stale memory until restart), and say so when the mode or plan changed. Our own write in flight wins.
        'credentials.reloaded': [
          { guard: 'areCredentialsBusy' },
          // Host tokens stay active over whatever is stored: keep the file's credentials for after a
          // logout of them, and leave the session (and the calls it has in flight) alone.
          { guard: 'isExternalAuthActive', actions: 'adoptReloadedBehindHostTokens' },
          { target: '.route', actions: 'adoptReloaded' },
        ],
        'credentials.unreadable': [
          { guard: 'areCredentialsBusy' },
          { guard: 'isExternalAuthActive', actions: 'forgetUnreadableBehindHostTokens' },
          {
            target: '.route',
            actions: enqueueActions(({ context, event, enqueue }) => {
              assertEvent(event, 'credentials.unreadable');
              enqueue.assign({ stored: null, routing: null, storageIssue: event.failure, announcement: null });
              if (!context.external && activeAuthMode(context) !== null) {
                enqueue.emit({ type: 'account.updated', authMode: null, planType: null });
              }
            }),
          },
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
                target: 'route',
                actions: assign({
                  stored: ({ event }) => event.output,
                  announcement: ({ event }) =>
                    event.output?.kind === 'chatgpt' ? { kind: 'storedCredentials' as const } : null,
                }),
              },
              { target: 'route' },
            ],
            onError: {
              target: 'route',
              actions: assign({ storageIssue: ({ event }) => toFailure(event.error, 'authFileCorrupt') }),
            },
          },
        },
        /** Routes to the mode the context implies; every busy state ends here, and what waited goes next. */
        route: {
          entry: ['forgetBusy', 'replayDeferred'],
          always: [
            { guard: 'isExternalAuthActive', target: 'chatgptSession.externalTokens' },
            { guard: 'hasStoredApiKey', target: 'apiKey' },
            { guard: 'hasStoredChatgpt', target: 'chatgptSession.chatgpt' },
            { target: 'loggedOut' },
          ],
        },
        loggedOut: {},
        apiKey: {},
        /**
         * ChatGPT credentials are active: managed (`chatgpt`) or host-supplied
         * (`externalTokens`). One session child serves both; these handlers are
         * what the root does with its reports.
         */
        chatgptSession: {
          invoke: {
            id: 'session',
            src: 'session',
            input: ({ context }) => sessionInput(context),
          },
          exit: ['answerReadWaiters', 'failBackendWaiters', 'reportOvertakenLogin'],
          on: {
            'session.routed': {
              actions: [assign({ routing: ({ event }) => event.routing }), { type: 'announce', params: null }],
            },
            'session.unrouted': { actions: { type: 'announce', params: ({ event }) => event.failure } },
            // New tokens (rotated, or from the host): the session rediscovers, then the waiting reads are answered.
            'session.refreshed': {
              actions: assign(({ event }) => {
                const t = event.tokens;
                if (t.kind === 'managed') return { stored: t.stored, routing: null };
                return {
                  external: {
                    accessToken: t.accessToken,
                    accountId: t.accountId,
                    planType: resolvePlanType(t.planType, t.claims?.planType ?? null),
                    email: t.claims?.email ?? null,
                    userId: t.claims?.userId ?? null,
                  },
                  routing: null,
                };
              }),
            },
            // The credentials stay (SPEC §8.1): the host or user decides to sign in again.
            'session.refreshFailed': { actions: { type: 'failReadWaiters', params: ({ event }) => event.failure } },
            'session.answered': { actions: 'replyBackend' },
          },
          initial: 'chatgpt',
          states: {
            chatgpt: {},
            externalTokens: {},
          },
        },
        saving: {
          invoke: {
            id: 'saveApiKey',
            src: 'saveCredentials',
            input: ({ event }) => {
              assertEvent(event, 'login.apiKey');
              return { auth: { kind: 'apiKey', apiKey: event.apiKey } };
            },
            onDone: {
              target: 'route',
              actions: [
                assign({ stored: ({ event }) => event.output, routing: null, storageIssue: null, announcement: null }),
                { type: 'replyLogin', params: 'apiKey' },
                'notifyTokensLoginSucceeded',
                'notifyAccountUpdated',
              ],
            },
            onError: {
              target: 'route',
              actions: { type: 'replyFailure', params: ({ event }) => toFailure(event.error, 'storageFailed') },
            },
          },
        },
        clearing: {
          invoke: {
            id: 'clear',
            src: 'clearCredentials',
            input: ({ context }) => ({
              revokeToken: context.stored?.kind === 'chatgpt' ? context.stored.refreshToken : null,
              client: context.client,
            }),
            onDone: {
              target: 'route',
              actions: [assign({ stored: null, storageIssue: null }), 'replyEmpty', 'notifyAccountUpdated'],
            },
            onError: {
              target: 'route',
              actions: { type: 'replyFailure', params: ({ event }) => toFailure(event.error, 'storageFailed') },
            },
          },
        },
      },
    },
    login: {
      initial: 'idle',
      on: {
        'login.chatgpt': [
          { guard: 'isExternalAuthActive', actions: { type: 'replyFailure', params: { kind: 'externalAuthActive' } } },
          { guard: 'isChatgptLoginForbidden', actions: { type: 'replyFailure', params: { kind: 'chatgptLoginDisabled' } } },
          // Behind a load, save or logout in flight, as the other logins are: an attempt that finished meanwhile
          // would move the credentials out of their busy state, and the request it was busy with would go unanswered.
          { guard: 'areCredentialsBusy', actions: 'defer' },
          {
            // A new ChatGPT login supersedes a pending one (SPEC §3.2); the attempt restarts. No `reenter`:
            // a target under this region already exits and re-enters `chatgptPending`, while `reenter: true`
            // would make the parallel root the domain and re-enter `credentials` too (reloading credentials).
            target: '.chatgptPending',
            actions: [
              { type: 'endPendingLogin', params: 'cancelled' },
              assign(({ event }) => {
                assertEvent(event, 'login.chatgpt');
                return { pending: { loginId: event.loginId, flow: event.flow }, startingRequest: event.requestId };
              }),
            ],
          },
        ],
        'login.cancel': [
          {
            guard: 'isPendingLogin',
            // The `canceled` response goes out before the flow's `completed` (SPEC §3.3).
            target: '.idle',
            actions: [{ type: 'replyCancel', params: 'canceled' }, { type: 'endPendingLogin', params: 'notCompleted' }],
          },
          { actions: { type: 'replyCancel', params: 'notFound' } },
        ],
        'login.complete': [
          {
            guard: { type: 'isPendingLoginFor', params: ({ event }) => event.loginId },
            actions: [
              assign({ pasteWaiters: ({ context, event }) => [...context.pasteWaiters, event.requestId] }),
              sendTo('attempt', ({ event }) => ({ type: 'attempt.paste' as const, redirectUrl: event.redirectUrl, requestId: event.requestId })),
            ],
          },
          {
            actions: {
              type: 'replyFailure',
              params: ({ event }) => ({ kind: 'loginNotFound' as const, message: `no pending login with id ${event.loginId}` }),
            },
          },
        ],
        'attempt.abandon': '.idle',
      },
      states: {
        idle: {},
        /** A browser or device login in progress (SPEC §6, §7): the attempt child runs it. */
        chatgptPending: {
          initial: 'starting',
          // However the attempt ends, a paste it had not answered yet still gets its one reply.
          exit: 'answerAbandonedPastes',
          invoke: {
            id: 'attempt',
            src: 'loginAttempt',
            input: ({ context }) => ({
              loginId: context.pending!.loginId,
              flow: context.pending!.flow,
              policy: context.policy,
              client: context.client,
              deadlineMs: context.loginTimeoutMs,
            }),
            onDone: [
              {
                guard: { type: 'isAttemptWorkspaceAllowed', params: ({ event }) => event.output },
                target: 'idle',
                actions: enqueueActions(({ context, event, enqueue }) => {
                  const outcome = event.output;
                  const pending = context.pending!;
                  enqueue.assign({ pending: null, startingRequest: null });
                  if (outcome.status === 'notStarted') {
                    // `loginAttempt.startFailed` answered the start request already; nothing more to say.
                    if (context.startingRequest !== null) enqueue.emit(fail(context.startingRequest, outcome.failure));
                    return;
                  }
                  if (context.startingRequest !== null) {
                    // Ended before it was ready (the chart allows it): the start request still gets its reply.
                    enqueue.emit(fail(context.startingRequest, { kind: 'loginFailed', message: outcome.status === 'failed' ? outcome.error : 'the login ended before it was ready' }));
                  }
                  if (outcome.status === 'failed') {
                    enqueue.emit({ type: 'login.completed', loginId: pending.loginId, success: false, error: outcome.error });
                    return;
                  }
                  // Stored by the attempt; discovery, then completed and updated (SPEC §6.1 `/success`).
                  enqueue.assign({
                    stored: outcome.auth,
                    routing: null,
                    storageIssue: null,
                    announcement: { kind: 'chatgptLogin', loginId: pending.loginId },
                  });
                  enqueue.raise({ type: 'credentials.changed' });
                }),
              },
              {
                // Credentials the policy would hide (another workspace): the login fails.
                target: 'idle',
                actions: enqueueActions(({ context, event, enqueue }) => {
                  const outcome = event.output;
                  const accountId = outcome.status === 'succeeded' && outcome.auth.kind === 'chatgpt' ? outcome.auth.accountId : null;
                  enqueue.emit({
                    type: 'login.completed',
                    loginId: context.pending!.loginId,
                    success: false,
                    error: `Login server error: ${workspaceRestrictionMessage(context.policy, accountId)}`,
                  });
                  enqueue.assign({ pending: null, startingRequest: null });
                }),
              },
            ],
            onError: {
              target: 'idle',
              actions: enqueueActions(({ context, event, enqueue }) => {
                const failure = toFailure(event.error);
                if (context.startingRequest !== null) enqueue.emit(fail(context.startingRequest, failure));
                else {
                  enqueue.emit({
                    type: 'login.completed',
                    loginId: context.pending!.loginId,
                    success: false,
                    error: loginFailedMessage(failure),
                  });
                }
                enqueue.assign({ pending: null, startingRequest: null });
              }),
            },
          },
          on: {
            'loginAttempt.pasteAnswered': {
              actions: [
                assign({ pasteWaiters: ({ context, event }) => context.pasteWaiters.filter((id) => id !== event.requestId) }),
                emit(({ event }) => (event.ok ? ok(event.requestId, { kind: 'empty' }) : fail(event.requestId, event.failure))),
              ],
            },
          },
          states: {
            starting: {
              on: {
                'loginAttempt.ready': {
                  target: 'waiting',
                  actions: enqueueActions(({ context, event, enqueue }) => {
                    enqueue.emit(
                      ok(context.startingRequest!, { kind: 'loginStarted', loginId: context.pending!.loginId, details: event.details }),
                    );
                    enqueue.assign({ startingRequest: null });
                  }),
                },
                'loginAttempt.startFailed': {
                  actions: enqueueActions(({ context, event, enqueue }) => {
                    enqueue.emit(fail(context.startingRequest!, event.failure));
                    enqueue.assign({ startingRequest: null });
                  }),
                },
              },
            },
            waiting: {},
          },
        },
      },
    },
  },
});

export type AccountMachine = typeof accountMachine;
